"""Targets asserted on runs CI just produced (the nbval-executed notebooks and a second-seed papermill run).

Fresh runs live in $MNIST_RUNS_DIR (conftest points it at a scratch folder). Without them these tests
skip, unless MNIST_REQUIRE_FRESH_RUNS=1 (set by .ci/run), where a missing run is a failure.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_lib.config import TrainConfig
from mnist_lib.records import TARGETS, committed_run, meets_target, superlight_series
from mnist_lib.runs import find_run

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
SECOND_SEED = 2


def fresh_run(model: str, seed: int = 1) -> dict:
    try:
        return find_run(model, augment=True, seed=seed, root=os.environ["MNIST_RUNS_DIR"])
    except FileNotFoundError as missing:
        if os.environ.get("MNIST_REQUIRE_FRESH_RUNS") == "1":
            raise
        pytest.skip(f"{missing}; run `pytest` on the whole repo (notebooks first) to produce it")


def assert_targets(metrics: dict) -> None:
    assert metrics["parameters"] < 8000
    if metrics["model"] == "superlight":
        assert metrics["parameters"] <= 5000
    assert metrics["summary"]["epochs_run"] == 15
    for key, minimum in TARGETS[metrics["model"]].items():
        assert metrics["summary"][key] >= minimum, f"{metrics['run']}: {key} {metrics['summary'][key]:.2f} < {minimum}"


@pytest.mark.parametrize("model", sorted(TARGETS))
def test_fresh_notebook_run_meets_its_target(model):
    assert_targets(fresh_run(model))


@pytest.mark.parametrize("model", sorted(TARGETS))
def test_fresh_run_reproduces_the_committed_run(model):
    fresh = fresh_run(model)
    committed = committed_run(model, augment=True, seed=1)
    assert TrainConfig.from_dict(fresh["config"]) == TrainConfig.from_dict(committed["config"])
    assert abs(fresh["summary"]["final_test_acc"] - committed["summary"]["final_test_acc"]) <= 0.1


def test_second_seed_superlight_meets_the_targets():
    """The used-by command with another seed: papermill notebooks/03_superlight.ipynb out -p seed N.

    The executed notebook is kept beside the run records (CI uploads both). The run must complete with the
    parameter budget and end within 0.1 points of the committed run of the same seed. Where the committed run of
    this seed misses the accuracy target too (the record says so: README headline), a miss is reported as an
    expected failure, with its numbers, instead of being hidden or the bar lowered; where the committed run meets
    it, a miss fails."""
    executed = Path(os.environ["MNIST_RUNS_DIR"]) / f"03_superlight-seed{SECOND_SEED}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "papermill", "notebooks/03_superlight.ipynb", str(executed),
         "-p", "epochs", "15", "-p", "seed", str(SECOND_SEED), "--log-level", "WARNING"],
        cwd=REPO, capture_output=True, text=True, timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = find_run("superlight", augment=True, seed=SECOND_SEED, root=os.environ["MNIST_RUNS_DIR"])
    assert metrics["parameters"] <= 5000 and metrics["summary"]["epochs_run"] == 15
    committed = committed_run("superlight", augment=True, seed=SECOND_SEED)
    # The record reproduces (issue 9): the same settings, and a final accuracy within 0.1 points of the committed
    # run of this seed (bit for bit where code and CPU kind are the same; across CPU kinds, kernels differ).
    assert TrainConfig.from_dict(metrics["config"]) == TrainConfig.from_dict(committed["config"])
    assert abs(metrics["summary"]["final_test_acc"] - committed["summary"]["final_test_acc"]) <= 0.1, committed["run"]
    s = metrics["summary"]
    if s["last3_min"] < TARGETS["superlight"]["last3_min"] and not meets_target(committed):
        series = superlight_series()
        pytest.xfail(f"known miss: seed {SECOND_SEED} last 3 epochs {s['last3_min']:.2f}-{s['last3_max']:.2f}% "
                     f"< 99.4% (the committed series: {sum(map(meets_target, series))} of {len(series)} seeds "
                     f"meet it)")
    assert_targets(metrics)
