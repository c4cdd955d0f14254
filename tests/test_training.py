"""The loop (training.fit) and the run record around it (runs.train): seeds, resume, kills, the files."""

import json
import os
import subprocess
import sys
import types
from dataclasses import replace

import pytest
import torch

from mnist_lib import cli, models
from mnist_lib.config import TrainConfig
from mnist_lib.data import load_split
from mnist_lib.errors import ConfigError
from mnist_lib.records import committed_run
from mnist_lib.runs import (
    CHECKPOINT,
    METRICS,
    TRAIN_LOG,
    CheckpointError,
    RunError,
    load_checkpoint,
    model_from_checkpoint,
    train,
)
from mnist_lib.training import deterministic, fit, lr_schedule, pick_device

QUICK = dict(model="superlight", epochs=3, batch_size=128, lr=0.01, seed=7, device="cpu")


def without_timing(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_same_seed_same_history(tmp_path, small_train, small_test):
    first = train(TrainConfig(**QUICK), train_split=small_train, test_split=small_test, runs_dir=tmp_path,
                  verbose=False)
    again = train(TrainConfig(**QUICK), train_split=small_train, test_split=small_test, runs_dir=tmp_path,
                  verbose=False)
    assert first.run_dir != again.run_dir  # never overwrites an earlier run
    assert without_timing(first.history) == without_timing(again.history)
    other = fit(TrainConfig(**{**QUICK, "seed": 8, "epochs": 1}), small_train, small_test, progress=False)
    assert other.history[0]["train_loss"] != first.history[0]["train_loss"]


def test_clean_last_epochs_train_the_last_epochs_without_augmentation(small_train, small_test):
    def history(**changes):
        config = TrainConfig(**{**QUICK, "epochs": 2, **changes})
        return without_timing(fit(config, small_train, small_test, progress=False).history)

    augmented, last_clean = history(), history(clean_last_epochs=1)
    assert last_clean[0] == augmented[0]  # the same run up to its first clean epoch
    assert last_clean[1] != augmented[1]
    assert history(clean_last_epochs=2) == history(augment=False)  # every epoch clean: no augmentation at all
    with pytest.raises(ConfigError, match="clean_last_epochs must be an integer from 0 to epochs"):
        TrainConfig(**{**QUICK, "clean_last_epochs": 4}).validate()
    with pytest.raises(ConfigError, match="invalid with augment=False: every epoch is clean already"):
        TrainConfig(**{**QUICK, "augment": False, "clean_last_epochs": 1}).validate()


def test_resume_keeps_the_runs_input_gradients_and_clean_epochs(tmp_path, small_train, small_test):
    """Cut off before the clean epoch, a forward-conv run resumes into exactly the uninterrupted run."""
    config = TrainConfig(**{**QUICK, "epochs": 2, "clean_last_epochs": 1, "conv_input_grads": "forward-conv"})
    splits = dict(train_split=small_train, test_split=small_test, verbose=False)
    whole = train(config, runs_dir=tmp_path / "a", **splits)
    resumed = train(resume=train(config, runs_dir=tmp_path / "b", stop_after=1, **splits).checkpoint, **splits)
    assert without_timing(resumed.history) == without_timing(whole.history)
    assert resumed.metrics["conv_input_grads"] == "forward-conv"
    assert resumed.metrics["cpu_capability"] == whole.metrics["cpu_capability"]  # no ", then ...": same machine


def test_a_run_records_which_input_gradients_trained_it(tmp_path, small_train, small_test):
    config = TrainConfig(**{**QUICK, "epochs": 1, "device": "cpu"})  # the default: forward-conv
    native = train(replace(config, conv_input_grads="native"), train_split=small_train, test_split=small_test,
                   runs_dir=tmp_path, verbose=False)
    flipped = train(config, train_split=small_train, test_split=small_test, runs_dir=tmp_path, verbose=False)
    assert (native.metrics["conv_input_grads"], flipped.metrics["conv_input_grads"]) == ("native", "forward-conv")
    assert not models._input_grad_by_conv  # scoped to the run
    weights = [(a, b) for a, b in zip(native.model.parameters(), flipped.model.parameters(), strict=True)]
    assert not all(torch.equal(a, b) for a, b in weights)  # the sums' order differs: another trajectory


@pytest.mark.parametrize("model", ["lightest", "superlight"])
def test_the_engine_retraces_the_committed_series_on_its_cpu_kind(model, data_dir):
    """An engine change that moves a value (a kernel, a summation order) would leave the committed series
    unreproducible by `train`: its first epoch here must equal the committed run's, bit for bit, where the CPU
    kind is the one that trained it."""
    committed = committed_run(model, augment=True, seed=1)
    here = {"CPU kind": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "threads": f"{torch.get_num_threads()} threads"}
    there = {"CPU kind": committed["cpu_capability"], "torch": committed["torch"],
             "threads": committed["machine"].split(" ", 1)[1]}
    differ = [f"{key} {there[key]} (here {here[key]})" for key in here if here[key] != there[key]]
    if differ:
        pytest.skip(f"the committed run was trained with {', '.join(differ)}: kernels and their sums differ")
    config = replace(TrainConfig.from_dict(committed["config"]), device="cpu")
    train_split, test_split = load_split(True, data_dir, download=False), load_split(False, data_dir, download=False)
    state = fit(config, train_split, test_split, stop_after=1, progress=False)
    assert without_timing(state.history) == without_timing(committed["history"][:1])


def test_fit_alone_writes_nothing_and_reports_each_epoch(tmp_path, small_train, small_test, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seen = []
    state = fit(TrainConfig(**{**QUICK, "epochs": 2}), small_train, small_test, progress=False,
                on_epoch=lambda state, test_logits: seen.append((len(state.history), tuple(test_logits.shape))))
    assert seen == [(1, (len(small_test), 10)), (2, (len(small_test), 10))]
    assert len(state.history) == 2 and list(tmp_path.iterdir()) == []


def test_an_epoch_augments_with_the_configs_strength(small_train, small_test, monkeypatch):
    from mnist_lib import training

    used = []
    monkeypatch.setattr(training, "augment_batch", lambda images, generator, augment: used.append(augment) or images)
    fit(TrainConfig(**{**QUICK, "epochs": 1, "augment_strength": 0.5}), small_train, small_test, progress=False)
    assert used and all(augment.degrees == 3.5 and augment.translate == 0.035 for augment in used)


def test_logged_learning_rates_are_the_ones_each_epoch_trained_with(small_train, small_test):
    config = TrainConfig(**QUICK)
    state = fit(config, small_train, small_test, progress=False)
    steps = -(-len(small_train) // config.batch_size)
    rates = lr_schedule(config, steps)
    for row in state.history:
        first_step = (row["epoch"] - 1) * steps
        assert row["lr_start"] == pytest.approx(rates[first_step])
        assert row["lr_end"] == pytest.approx(rates[first_step + steps - 1])


def test_run_record_and_checkpoint_round_trip(tmp_path, small_train, small_test):
    run = train(TrainConfig(**{**QUICK, "epochs": 2}), train_split=small_train, test_split=small_test,
                runs_dir=tmp_path, verbose=False)
    metrics = json.loads((run.run_dir / METRICS).read_text())
    assert metrics["status"] == "complete" and len(metrics["history"]) == 2 and metrics == run.metrics
    assert {"config", "parameters", "history", "wall_seconds", "torch", "device", "summary"} <= metrics.keys()
    assert set(metrics["history"][0]) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr_start",
                                          "lr_end", "seconds"}
    log = (run.run_dir / TRAIN_LOG).read_text().splitlines()
    assert sum(line.startswith("epoch ") for line in log) == 2 and log[-1].startswith("done: final-epoch test acc")

    state = torch.load(run.checkpoint, weights_only=True)  # plain types only
    assert state["model_name"] == "superlight" and state["parameters"] == metrics["parameters"]
    restored = model_from_checkpoint(load_checkpoint(run.checkpoint))
    with torch.no_grad():
        assert torch.equal(restored(small_test.images[:50]), run.model(small_test.images[:50]))


def test_model_args_reach_the_model_and_its_checkpoint(tmp_path, small_train, small_test):
    config = TrainConfig(**{**QUICK, "model": "lightest", "model_args": {"dropout": 0.2}, "epochs": 1})
    run = train(config, train_split=small_train, test_split=small_test, runs_dir=tmp_path, verbose=False)
    restored = model_from_checkpoint(load_checkpoint(run.checkpoint))
    assert {m.p for m in restored.modules() if isinstance(m, torch.nn.Dropout)} == {0.2}


def test_resume_equals_uninterrupted_run(tmp_path, small_train, small_test):
    splits = dict(train_split=small_train, test_split=small_test, verbose=False)
    whole = train(TrainConfig(**QUICK), runs_dir=tmp_path / "a", **splits)
    part = train(TrainConfig(**QUICK), runs_dir=tmp_path / "b", stop_after=1, **splits)
    assert len(part.history) == 1
    resumed = train(resume=part.checkpoint, **splits)
    assert resumed.run_dir == part.run_dir
    assert without_timing(resumed.history) == without_timing(whole.history)
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


def test_resume_survives_a_kill_between_checkpoint_and_metrics(tmp_path, small_train, small_test):
    """Epoch 1 saved its checkpoint, then the process died before metrics.json and train.log were written."""
    splits = dict(train_split=small_train, test_split=small_test, verbose=False)
    whole = train(TrainConfig(**QUICK), runs_dir=tmp_path / "a", **splits)
    part = train(TrainConfig(**QUICK), runs_dir=tmp_path / "b", stop_after=1, **splits)
    (part.run_dir / METRICS).unlink()
    log = part.run_dir / TRAIN_LOG
    log.write_text(log.read_text().splitlines()[0] + "\n")  # the header line only
    resumed = train(resume=part.checkpoint, **splits)
    assert without_timing(resumed.history) == without_timing(whole.history)
    assert json.loads((part.run_dir / METRICS).read_text())["status"] == "complete"
    assert sum(line.startswith("epoch ") for line in log.read_text().splitlines()) == 3


def test_resume_refuses_a_complete_run_and_changed_settings(tmp_path, small_train, small_test):
    splits = dict(train_split=small_train, test_split=small_test, verbose=False)
    done = train(TrainConfig(**{**QUICK, "epochs": 1}), runs_dir=tmp_path, **splits)
    before = {p.name: p.read_bytes() for p in done.run_dir.iterdir()}
    with pytest.raises(RunError, match="is complete"):
        train(resume=done.checkpoint, **splits)
    part = train(TrainConfig(**QUICK), runs_dir=tmp_path, stop_after=1, **splits)
    part_before = {p.name: p.read_bytes() for p in part.run_dir.iterdir()}
    with pytest.raises(ConfigError, match="epochs differ"):
        train(TrainConfig(**{**QUICK, "epochs": 5}), resume=part.checkpoint, **splits)
    assert {p.name: p.read_bytes() for p in done.run_dir.iterdir()} == before
    assert {p.name: p.read_bytes() for p in part.run_dir.iterdir()} == part_before


def test_a_kill_after_the_last_checkpoint_is_finished_by_resume(tmp_path, small_train, small_test):
    splits = dict(train_split=small_train, test_split=small_test, verbose=False)
    run = train(TrainConfig(**{**QUICK, "epochs": 2}), runs_dir=tmp_path, **splits)
    record = json.loads((run.run_dir / METRICS).read_text())
    (run.run_dir / METRICS).write_text(json.dumps({**record, "status": "running", "history": record["history"][:1]}))
    log = run.run_dir / TRAIN_LOG
    log.write_text("\n".join(log.read_text().splitlines()[:2]) + "\n")  # header and epoch 1 only
    finished = train(resume=run.checkpoint, **splits)
    assert json.loads((run.run_dir / METRICS).read_text())["status"] == "complete"
    assert without_timing(finished.history) == without_timing(record["history"])
    lines = log.read_text().splitlines()
    assert sum(line.startswith("epoch ") for line in lines) == 2 and lines[-1].startswith("done:")
    with pytest.raises(RunError, match="is complete"):
        train(resume=run.checkpoint, **splits)


def test_a_checkpoint_without_training_state_is_refused_for_resume(tmp_path, small_train, small_test):
    splits = dict(train_split=small_train, test_split=small_test, verbose=False)
    run = train(TrainConfig(**{**QUICK, "epochs": 2}), runs_dir=tmp_path, stop_after=1, **splits)
    old = {k: v for k, v in torch.load(run.checkpoint, weights_only=True).items()
           if k not in ("optimizer", "scheduler", "metrics")}
    torch.save(old, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="older mnist_lib"):
        train(resume=tmp_path / "old.pt", **splits)


KILL_ARGS = ["--model", "superlight", "--epochs", "3", "--train-limit", "3000", "--test-limit", "2000", "--seed", "5",
             "--no-download"]
DYING_TRAIN = """
import os, sys
from mnist_lib import cli, runs

real_write, writes = runs.atomic_write, []
def write_then_die(path, payload):  # the process is killed at the {kill_at}th atomic write
    writes.append(path.name)
    if len(writes) == {kill_at}:
        if {mid_write}:  # ... after the temp file is written, before the rename
            path.with_name(path.name + ".tmp").write_bytes(payload[: len(payload) // 2])
        os._exit(137)
    real_write(path, payload)
runs.atomic_write = write_then_die
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def uninterrupted_cli_run(tmp_path_factory, data_dir):
    # In this process (the same code and thread count as a subprocess, without its seconds of start-up); only
    # the run that is killed needs a process of its own.
    out = tmp_path_factory.mktemp("whole")
    assert cli.main(["train", *KILL_ARGS, "--data-dir", str(data_dir), "--out", str(out)]) == 0
    return load_checkpoint(next(out.glob(f"*/{CHECKPOINT}")))


@pytest.mark.parametrize("kill_at, mid_write", [(2, False), (3, True), (4, False)],
                         ids=["after checkpoint 1, before its metrics.json", "halfway through writing checkpoint 2",
                              "after checkpoint 2, before its metrics.json"])
def test_a_cli_run_killed_at_any_write_resumes_to_the_uninterrupted_result(kill_at, mid_write, tmp_path, data_dir,
                                                                            uninterrupted_cli_run):
    env = {**os.environ, "TQDM_DISABLE": "1"}
    script = DYING_TRAIN.format(kill_at=kill_at, mid_write=mid_write)
    killed = subprocess.run([sys.executable, "-c", script, "train", *KILL_ARGS, "--data-dir", str(data_dir), "--out",
                             str(tmp_path)], env=env, capture_output=True, text=True)
    assert killed.returncode == 137, killed.stderr
    checkpoint = next(tmp_path.glob(f"*/{CHECKPOINT}"))
    assert (checkpoint.parent / METRICS).exists() == (kill_at > 2)
    assert cli.main(["train", "--resume", str(checkpoint), "--no-download", "--data-dir", str(data_dir)]) == 0
    state = load_checkpoint(checkpoint)
    assert without_timing(state["history"]) == without_timing(uninterrupted_cli_run["history"])
    for name, tensor in uninterrupted_cli_run["state_dict"].items():
        assert torch.equal(tensor, state["state_dict"][name]), name
    log = (checkpoint.parent / TRAIN_LOG).read_text()
    assert [line.split(" |")[0] for line in log.splitlines() if line.startswith("epoch ")] == [
        "epoch  1/3", "epoch  2/3", "epoch  3/3"]
    assert json.loads((checkpoint.parent / METRICS).read_text())["status"] == "complete"


def test_missing_or_unknown_devices_are_config_errors():
    with pytest.raises(ConfigError, match="device must be"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no such CUDA device"):
            pick_device("cuda")
    with pytest.raises(ConfigError, match="no such CUDA device"):
        pick_device(f"cuda:{torch.cuda.device_count() + 3}")


def test_deterministic_settings_are_restored_after_a_run():
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.allow_tf32
    with deterministic(torch.device("cuda")):  # sets flags only; no GPU needed
        assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.allow_tf32
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.allow_tf32) == before


def test_lr_schedule_is_one_cycle():
    rates = lr_schedule(TrainConfig(epochs=2, lr=0.01), steps_per_epoch=10)
    assert len(rates) == 20
    assert max(rates) == pytest.approx(0.01, rel=0.05) and rates[0] < 0.001 and rates[-1] < 1e-4


def test_progress_bars_are_widgets_only_where_a_front_end_shows_them(monkeypatch):
    from mnist_lib.training import progress_style

    class Kernel:  # an IPython shell attached to a kernel, as in JupyterLab, Colab and papermill
        kernel = object()

    ipython = types.ModuleType("IPython")
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    for name in ("JPY_SESSION_NAME", "VSCODE_PID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    ipython.get_ipython = lambda: None
    assert progress_style() == "text"  # a terminal
    ipython.get_ipython = Kernel
    assert progress_style() == "none"  # papermill / nbval: nothing saved into the notebook
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/03_superlight.ipynb")
    assert progress_style() == "widget"  # JupyterLab
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress_style() == "none"


def test_moving_average_warms_up_then_follows_its_decay():
    from mnist_lib.training import update_average

    average, model = torch.nn.BatchNorm1d(2), torch.nn.BatchNorm1d(2)
    with torch.no_grad():
        average.weight.fill_(0.0)
        model.weight.fill_(1.0)
        model.running_mean.fill_(3.0)  # the average's starts at 0
        model.num_batches_tracked.fill_(5)
    update_average(average, model, decay=0.99, step=1)  # warm-up: d = 2/11
    assert torch.allclose(average.weight, torch.full((2,), 9 / 11))
    assert torch.allclose(average.running_mean, torch.full((2,), 3 * 9 / 11))  # BatchNorm statistics averaged too
    assert average.num_batches_tracked.item() == 5  # integer buffers are copied, not averaged
    update_average(average, model, decay=0.99, step=10_000)  # past the warm-up: d = decay
    assert torch.allclose(average.weight, torch.full((2,), 9 / 11 + 2 / 11 * 0.01))


def test_a_run_with_a_moving_average_reports_and_saves_the_average(tmp_path, small_train, small_test):
    config = TrainConfig(**{**QUICK, "epochs": 1, "ema_decay": 0.99})
    run = train(config, train_split=small_train, test_split=small_test, runs_dir=tmp_path, verbose=False)
    state = load_checkpoint(run.checkpoint)
    restored = model_from_checkpoint(state)
    from mnist_lib.training import accuracy, logits

    assert accuracy(logits(restored, small_test), small_test.labels) == run.history[-1]["test_acc"]
    assert not torch.equal(state["state_dict"]["head.1.weight"], state["trained_state_dict"]["head.1.weight"])
    trained = model_from_checkpoint({**state, "state_dict": state["trained_state_dict"]})
    assert accuracy(logits(trained, small_test), small_test.labels) == run.history[-1]["trained_weights_test_acc"]
    assert "trained weights" in (run.run_dir / TRAIN_LOG).read_text()


@pytest.mark.parametrize("decay", [0.5, 1.0, -0.1, True])
def test_ema_decay_outside_its_range_is_refused(decay):
    with pytest.raises(ConfigError, match="ema_decay"):
        TrainConfig(ema_decay=decay).validate()


def test_batchnorm_recalibration_sets_the_exact_statistics_of_the_given_images():
    from mnist_lib.training import recalibrate_batchnorm

    torch.manual_seed(0)
    # Dropout before the BatchNorm: if it were left on, it would change the statistics.
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.Dropout(0.5), torch.nn.BatchNorm2d(3))
    images = torch.randn(40, 1, 8, 8) * 2 + 1
    model.train()
    model(torch.randn(8, 1, 8, 8))  # running statistics of some other batch
    recalibrate_batchnorm(model, images, batch_size=10)
    features = model[0](images)
    batches = features.split(10)
    assert torch.allclose(model[2].running_mean, features.mean((0, 2, 3)), atol=1e-5)
    expected_var = torch.stack([batch.var((0, 2, 3)) for batch in batches]).mean(0)  # unbiased, per batch
    assert torch.allclose(model[2].running_var, expected_var, atol=1e-5)
    assert model.training and model[1].training and model[2].momentum == 0.1  # mode and momentum restored
    model.eval()
    recalibrate_batchnorm(model, images, batch_size=10)
    assert not model.training and not model[2].training  # an evaluating model stays in eval mode


def test_recalibration_changes_the_evaluation_not_the_training(tmp_path, small_train, small_test):
    splits = dict(train_split=small_train, test_split=small_test, verbose=False)
    plain = train(TrainConfig(**{**QUICK, "epochs": 2}), runs_dir=tmp_path / "a", **splits)
    recalibrated = train(TrainConfig(**{**QUICK, "epochs": 2, "recalibrate_bn": 500}), runs_dir=tmp_path / "b",
                         **splits)
    before = load_checkpoint(plain.checkpoint)["state_dict"]
    after = load_checkpoint(recalibrated.checkpoint)["state_dict"]
    statistics = [name for name in before if "running" in name]
    assert statistics and all(torch.equal(before[name], after[name]) for name in before if name not in statistics
                              and "num_batches" not in name)
    assert not all(torch.equal(before[name], after[name]) for name in statistics)
    # Epoch 1 alone: later epochs' running averages start from the recalibrated statistics, which a few batches
    # (these splits) do not wash out; a full epoch's 391+ batches at momentum 0.1 do.
    assert plain.history[0]["test_acc"] == recalibrated.history[0]["running_bn_test_acc"]
    restored = model_from_checkpoint(load_checkpoint(recalibrated.checkpoint))
    from mnist_lib.training import accuracy, logits

    assert accuracy(logits(restored, small_test), small_test.labels) == recalibrated.history[-1]["test_acc"]
    assert "running BatchNorm statistics" in (recalibrated.run_dir / TRAIN_LOG).read_text()


@pytest.mark.parametrize("option", [{"ema_decay": 0.99}, {"recalibrate_bn": 500}], ids=["average", "recalibration"])
def test_resume_with_an_evaluation_option_equals_uninterrupted_run(tmp_path, small_train, small_test, option):
    splits = dict(train_split=small_train, test_split=small_test, verbose=False)
    config = TrainConfig(**{**QUICK, "epochs": 2, **option})
    whole = train(config, runs_dir=tmp_path / "a", **splits)
    part = train(config, runs_dir=tmp_path / "b", stop_after=1, **splits)
    resumed = train(resume=part.checkpoint, **splits)
    assert without_timing(resumed.history) == without_timing(whole.history)
    finished_state, again_state = load_checkpoint(whole.checkpoint), load_checkpoint(resumed.checkpoint)
    assert ("trained_state_dict" in finished_state) == ("ema_decay" in option)
    for key in ("state_dict", "trained_state_dict"):  # the trained weights are kept apart from an average
        finished, again = finished_state.get(key, {}), again_state.get(key, {})
        assert finished.keys() == again.keys() and all(torch.equal(finished[name], again[name]) for name in finished)


def test_recalibration_refuses_what_it_cannot_do(small_train, small_test):
    with pytest.raises(ConfigError, match="recalibrate_bn=100 is invalid for light: it has no BatchNorm layers"):
        TrainConfig(model="light", recalibrate_bn=100).validate()
    with pytest.raises(ConfigError, match="recalibrate_bn=100 is invalid with ema_decay=0.99"):
        TrainConfig(recalibrate_bn=100, ema_decay=0.99).validate()
    with pytest.raises(ConfigError, match="the training split has only 2,000 images"):
        fit(TrainConfig(**{**QUICK, "recalibrate_bn": 5000}).validate(), small_train, small_test)
