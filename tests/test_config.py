"""TrainConfig is the one declaration of every setting; the CLI flags and notebook checks come from it."""

import dataclasses

import pytest

from mnist_lib import cli, config, notebook
from mnist_lib.config import TrainConfig
from mnist_lib.errors import ConfigError


@pytest.mark.parametrize(
    "change, message",
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"epochs": "abc"}, "epochs must be a positive integer"),
        ({"epochs": True}, "epochs must be a positive integer"),
        ({"batch_size": -1}, "batch_size must be a positive integer"),
        ({"model": "resnet"}, "model must be one of light, lightest, superlight"),
        ({"lr": 0}, "lr must be a number"),
        ({"augment": "yes"}, "augment must be True or False"),
        ({"train_limit": 0}, "train_limit must be a positive integer"),
        ({"test_limit": -5}, "test_limit must be a positive integer"),
        ({"device": "tpu"}, "device must be 'auto', 'cpu'"),
        ({"model_args": {"dropout": 0.1}}, "superlight takes no arguments"),
        ({"model": "lightest", "model_args": {"width": 3}}, "lightest takes dropout"),
        ({"model": "lightest", "model_args": {"dropout": 2}}, "invalid for lightest: dropout probability"),
        ({"model": ["light"]}, "model must be a registered model name"),
        ({"weight_decay": float("inf")}, "weight_decay must be a number >= 0"),
        ({"noise_std": 1.5}, "noise_std must be a number in \\[0, 1\\] or None"),
        ({"validation": 1}, "validation must be True or False"),
    ],
)
def test_validation_names_the_setting_and_what_is_allowed(change, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**change).validate()


def test_every_setting_has_a_flag_with_its_help():
    parser = cli.build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    flags = {action.dest: action for action in train._actions}
    for spec in dataclasses.fields(TrainConfig):
        assert spec.name in flags, spec.name
        assert spec.metadata["help"] in flags[spec.name].help


def test_flags_parse_to_the_config_they_name():
    args = cli.build_parser().parse_args(["train", "--model", "lightest", "--model-args", '{"dropout": 0.1}',
                                          "--epochs", "3", "--no-augment", "--test-limit", "500", "--lr", "0.02"])
    assert cli.config_from_args(args) == TrainConfig(model="lightest", model_args={"dropout": 0.1}, epochs=3,
                                               augment=False, test_limit=500, lr=0.02)


def test_notebook_parameters_are_the_config_settings():
    defaults = notebook.parameter_defaults()
    names = {spec.name for spec in dataclasses.fields(TrainConfig)} - {"model", "model_args"}
    assert set(defaults) == names | {"data_dir", "out_dir"}
    assert defaults["epochs"] == TrainConfig().epochs


def test_notebook_configure_reads_settings_by_name():
    namespace = {**notebook.parameter_defaults(), "epochs": 2, "seed": 9, "unrelated": object()}
    assert notebook.configure("light", namespace) == TrainConfig(model="light", epochs=2, seed=9)
    with pytest.raises(ConfigError, match="epochs must be a positive integer"):
        notebook.configure("light", {**namespace, "epochs": "abc"})
    with pytest.raises(ConfigError, match="data_dir must be a path string"):
        notebook.configure("light", {**namespace, "data_dir": 3})


def test_a_setting_left_at_none_takes_the_model_recipe(monkeypatch):
    assert TrainConfig(model="superlight").noise_std == 0.0 and TrainConfig().noise_prob == 1.0  # no recipe yet
    monkeypatch.setitem(config.MODEL_RECIPES, "superlight", {"noise_std": 0.3, "noise_prob": 0.5})
    superlight = TrainConfig(model="superlight")
    assert (superlight.noise_std, superlight.noise_prob) == (0.3, 0.5)
    assert (TrainConfig(model="light").noise_std, TrainConfig(model="light").noise_prob) == (0.0, 1.0)
    assert TrainConfig(model="superlight", noise_std=0.0).noise_std == 0.0  # an explicit value wins
    args = cli.build_parser().parse_args(["train", "--model", "superlight", "--noise-std", "0.1", "--validation"])
    assert cli.config_from_args(args) == TrainConfig(noise_std=0.1, noise_prob=0.5, validation=True)


def test_records_written_before_a_setting_existed_read_back_as_they_ran():
    old = TrainConfig(model="superlight").to_dict()
    del old["noise_std"], old["noise_prob"], old["validation"]
    assert TrainConfig.from_dict(old) == TrainConfig(noise_std=0.0, noise_prob=1.0, validation=False)
