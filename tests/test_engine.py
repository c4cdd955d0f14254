import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from mnist_lib.engine import (
    CHECKPOINT,
    METRICS,
    TRAIN_LOG,
    TrainConfig,
    fit,
    load_checkpoint,
    lr_schedule,
    model_from_checkpoint,
)

QUICK = dict(model="superlight", epochs=3, batch_size=128, lr=0.01, seed=7, device="cpu")


def without_timing(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_same_seed_same_history(tmp_path, small_train, small_test):
    first = fit(TrainConfig(**QUICK), train=small_train, test=small_test, runs_dir=tmp_path, verbose=False)
    again = fit(TrainConfig(**QUICK), train=small_train, test=small_test, runs_dir=tmp_path, verbose=False)
    assert first.run_dir != again.run_dir  # never overwrites an earlier run
    assert without_timing(first.history) == without_timing(again.history)
    other = fit(TrainConfig(**{**QUICK, "seed": 8, "epochs": 1}), train=small_train, test=small_test,
                runs_dir=tmp_path, verbose=False)
    assert other.history[0]["train_loss"] != first.history[0]["train_loss"]


def test_run_record_and_checkpoint_round_trip(tmp_path, small_train, small_test):
    result = fit(TrainConfig(**{**QUICK, "epochs": 2}), train=small_train, test=small_test, runs_dir=tmp_path,
                 verbose=False)
    metrics = json.loads((result.run_dir / METRICS).read_text())
    assert metrics["status"] == "complete" and len(metrics["history"]) == 2
    assert {"config", "parameters", "history", "wall_seconds", "torch", "device", "summary"} <= metrics.keys()
    assert set(metrics["history"][0]) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"}
    log = (result.run_dir / TRAIN_LOG).read_text().splitlines()
    assert sum(line.startswith("epoch ") for line in log) == 2 and log[-1].startswith("done: final-epoch test acc")
    assert (result.run_dir / "curves.png").stat().st_size > 0 and (result.run_dir / "confusion.png").stat().st_size > 0

    state = torch.load(result.checkpoint, weights_only=True)  # plain types only
    assert state["model_name"] == "superlight" and state["parameters"] == metrics["parameters"]
    restored = model_from_checkpoint(load_checkpoint(result.checkpoint))
    with torch.no_grad():
        assert torch.equal(restored(small_test.images[:50]), result.model(small_test.images[:50]))


def test_resume_equals_uninterrupted_run(tmp_path, small_train, small_test):
    whole = fit(TrainConfig(**QUICK), train=small_train, test=small_test, runs_dir=tmp_path / "a", verbose=False)
    part = fit(TrainConfig(**QUICK), train=small_train, test=small_test, runs_dir=tmp_path / "b", verbose=False,
               stop_after=1)
    assert len(part.history) == 1
    resumed = fit(resume=part.checkpoint, train=small_train, test=small_test, verbose=False)
    assert resumed.run_dir == part.run_dir
    assert without_timing(resumed.history) == without_timing(whole.history)
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


def test_killed_cli_run_resumes_to_the_same_result(tmp_path, data_dir):
    args = ["--model", "superlight", "--epochs", "3", "--train-limit", "3000", "--seed", "5", "--no-download",
            "--data-dir", str(data_dir)]
    env = {**os.environ, "TQDM_DISABLE": "1"}

    def train(*extra):
        return subprocess.Popen([sys.executable, "-m", "mnist_lib.train", *args, *extra], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    assert train("--out", str(tmp_path / "whole")).wait(timeout=120) == 0
    victim = train("--out", str(tmp_path / "killed"))
    deadline = time.time() + 120
    while not list((tmp_path / "killed").glob(f"*/{CHECKPOINT}")) and time.time() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    checkpoint = next((tmp_path / "killed").glob(f"*/{CHECKPOINT}"))
    assert len(load_checkpoint(checkpoint)["history"]) < 3, "the run finished before it could be killed"
    assert subprocess.run([sys.executable, "-m", "mnist_lib.train", "--resume", str(checkpoint), "--no-download",
                           "--data-dir", str(data_dir)], env=env, capture_output=True).returncode == 0
    whole = load_checkpoint(next((tmp_path / "whole").glob(f"*/{CHECKPOINT}")))
    resumed = load_checkpoint(checkpoint)
    assert without_timing(resumed["history"]) == without_timing(whole["history"])
    for name, tensor in whole["state_dict"].items():
        assert torch.equal(tensor, resumed["state_dict"][name]), name


@pytest.mark.parametrize(
    "change, message",
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"epochs": "abc"}, "epochs must be a positive integer"),
        ({"batch_size": -1}, "batch_size must be a positive integer"),
        ({"model": "resnet"}, "model must be one of light, lightest, superlight"),
        ({"lr": 0}, "lr must be a number"),
        ({"augment": "yes"}, "augment must be True or False"),
        ({"train_limit": 0}, "train_limit must be a positive integer"),
    ],
)
def test_config_validation_names_the_parameter(change, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**change).validate()


def test_lr_schedule_is_one_cycle():
    rates = lr_schedule(TrainConfig(epochs=2, lr=0.01), steps_per_epoch=10)
    assert len(rates) == 20
    assert max(rates) == pytest.approx(0.01, rel=0.05) and rates[0] < 0.001 and rates[-1] < 1e-4
