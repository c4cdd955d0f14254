"""The committed record: every run's files are consistent, its checkpoint re-evaluates to the accuracy it
recorded, the notebooks show those numbers, and the README table is generated from them."""

import json
import re
from pathlib import Path

import nbformat
import pytest
import torch

from mnist_lib import records, runs
from mnist_lib.runs import CHECKPOINT, METRICS, TRAIN_LOG, load_checkpoint, model_from_checkpoint
from mnist_lib.training import evaluate

REPO = Path(__file__).resolve().parents[1]
RUNS = runs.list_runs(records.committed_runs_dir())


def test_the_series_is_committed_with_and_without_augmentation():
    series = records.series_runs()
    assert {(m["model"], m["config"]["augment"]) for m in series} == {
        (model, augment) for model in ("light", "lightest", "superlight") for augment in (True, False)
    }


@pytest.mark.parametrize("metrics", RUNS, ids=[m["run"] for m in RUNS])
def test_checkpoint_reproduces_recorded_accuracy(metrics, full_test):
    run_dir = Path(metrics["path"])
    state = load_checkpoint(run_dir / CHECKPOINT)
    assert state["history"] == metrics["history"]
    result = evaluate(model_from_checkpoint(state), full_test)
    assert result["accuracy"] == pytest.approx(metrics["summary"]["final_test_acc"], abs=1e-6)
    assert torch.load(run_dir / CHECKPOINT, weights_only=True)["parameters"] == metrics["parameters"]
    epoch_lines = [line for line in (run_dir / TRAIN_LOG).read_text().splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == len(metrics["history"]) == metrics["config"]["epochs"]
    for line, row in zip(epoch_lines, metrics["history"], strict=True):
        assert f"acc {row['test_acc']:.2f}%" in line.split("| test ")[1]
    assert (run_dir / "curves.png").stat().st_size > 0 and (run_dir / "confusion.png").stat().st_size > 0


@pytest.mark.parametrize("name", ["01_light.ipynb", "02_lightest.ipynb", "03_superlight.ipynb"])
def test_notebook_shows_its_committed_run(name):
    notebook = nbformat.read(REPO / "notebooks" / name, as_version=4)
    text = "\n".join(
        o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
        for c in notebook.cells if c.cell_type == "code" for o in c.outputs
    )
    run_name = re.search(r"run directory: (\S+)", text).group(1)
    metrics = json.loads((records.committed_runs_dir() / run_name / METRICS).read_text())
    assert metrics["config"]["augment"] is True and metrics["config"]["epochs"] == 15
    assert f"{metrics['summary']['final_test_acc']:.2f}%" in text.split("run directory:")[1]


def test_readme_results_table_is_generated_from_the_record():
    assert records.sync_readme(write=False)
