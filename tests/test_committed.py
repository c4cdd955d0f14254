"""The committed record: every run's files are consistent, its checkpoint re-evaluates to the accuracy it
recorded, the notebooks show those numbers, and the README table is generated from them."""

import json
import re
from pathlib import Path

import nbformat
import pytest
import torch

from mnist_lib import records, robustness, runs, studies
from mnist_lib.config import TrainConfig
from mnist_lib.runs import CHECKPOINT, METRICS, TRAIN_LOG, load_checkpoint, model_from_checkpoint, run_splits
from mnist_lib.training import evaluate

REPO = Path(__file__).resolve().parents[1]
RUNS = runs.list_runs(records.committed_runs_dir())


def same_images(accuracy: float, recorded: float) -> bool:
    """The same number of correctly classified images out of 10,000 (0.01 points each). Digits past that are
    the float32 mean's rounding, which differs between a GPU and a CPU in the 7th digit."""
    return round(accuracy * 100) == round(recorded * 100)


def test_the_series_is_committed_with_and_without_augmentation():
    series = records.series_runs()
    assert {(m["model"], m["config"]["augment"]) for m in series} == {
        (model, augment) for model in ("light", "lightest", "superlight") for augment in (True, False)
    }


SERIES = {m["run"] for m in records.series_runs()}


@pytest.mark.parametrize("metrics", RUNS, ids=[m["run"] for m in RUNS])
def test_checkpoint_reproduces_recorded_accuracy(metrics, full_test):
    """Every top-level run's files agree; its checkpoint re-evaluates to its final accuracy (for the series' runs,
    test_checkpoint_reproduces_its_accuracy_clean_and_under_noise does that, so they are evaluated once)."""
    run_dir = Path(metrics["path"])
    state = load_checkpoint(run_dir / CHECKPOINT)
    assert state["history"] == metrics["history"]
    if metrics["run"] not in SERIES:
        result = evaluate(model_from_checkpoint(state), full_test)
        assert same_images(result["accuracy"], metrics["summary"]["final_test_acc"])
    assert torch.load(run_dir / CHECKPOINT, weights_only=True)["parameters"] == metrics["parameters"]
    epoch_lines = [line for line in (run_dir / TRAIN_LOG).read_text().splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == len(metrics["history"]) == metrics["config"]["epochs"]
    for line, row in zip(epoch_lines, metrics["history"], strict=True):
        assert f"acc {row['test_acc']:.2f}%" in line.split("| test ")[1]
    assert (run_dir / "curves.png").stat().st_size > 0 and (run_dir / "confusion.png").stat().st_size > 0


NOTEBOOKS = ["01_light.ipynb", "02_lightest.ipynb", "03_superlight.ipynb"]


def notebook_run(name: str) -> tuple[dict, str]:
    """The committed run an executed iteration notebook trained (its "run directory:" line), and the text of
    its outputs."""
    notebook = nbformat.read(REPO / "notebooks" / name, as_version=4)
    text = "\n".join(
        o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
        for c in notebook.cells if c.cell_type == "code" for o in c.outputs
    )
    run_name = re.search(r"run directory: (\S+)", text).group(1)
    return json.loads((records.committed_runs_dir() / run_name / METRICS).read_text()), text


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_shows_its_committed_run(name):
    metrics, text = notebook_run(name)
    assert metrics["config"]["augment"] is True and metrics["config"]["epochs"] == 15
    assert f"{metrics['summary']['final_test_acc']:.2f}%" in text.split("run directory:")[1]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_run_has_the_history_of_the_series_run_of_its_seed(name):
    """README, What reproduces where: the same settings, seed, CPU kind and input gradients give the same history,
    bit for bit; the notebooks' committed runs and the series' runs of their seed were made apart."""
    run, _ = notebook_run(name)
    series = records.committed_run(run["model"], run["config"]["augment"], run["config"]["seed"])
    assert run["run"] != series["run"]
    assert runs.settings_of(run["config"]) == runs.settings_of(series["config"])
    for key in ("cpu_capability", "conv_input_grads", "torch"):
        assert run.get(key) == series.get(key), key

    def without_time(history: list[dict]) -> list[dict]:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in history]

    assert without_time(run["history"]) == without_time(series["history"])


def test_readme_results_table_is_generated_from_the_record():
    assert records.sync_readme(write=False)


# Each committed study run once, though several studies may share it (a run of the same settings is reused).
STUDY_RUNS = list({m["path"]: m for name in studies.STUDIES
                   for m in studies.study_runs(name, root=records.committed_runs_dir())}.values())


def test_the_noise_study_is_complete():
    assert len(studies.study_runs("noise", root=records.committed_runs_dir())) == len(studies.study_configs("noise"))


@pytest.fixture(scope="module")
def held_out_split(data_dir):
    """A run config's evaluation split (test set or validation split), each kind loaded once."""
    loaded = {}

    def split(config: TrainConfig):
        key = (config.validation, config.train_limit, config.test_limit)
        if key not in loaded:
            loaded[key] = run_splits(config, data_dir, download=False)[1]
        return loaded[key]

    return split


@pytest.mark.parametrize("metrics", STUDY_RUNS + records.series_runs(),
                         ids=[m["run"] for m in STUDY_RUNS + records.series_runs()])
def test_checkpoint_reproduces_its_accuracy_clean_and_under_noise(metrics, held_out_split):
    """Study runs (validation or test split) and the series: final accuracy and robustness.json re-derived."""
    config = TrainConfig.from_dict(metrics["config"])
    assert metrics.get("evaluated_on", "test") == ("validation" if config.validation else "test")
    held_out = held_out_split(config)
    model = runs.load_model(Path(metrics["path"]) / CHECKPOINT)
    assert same_images(evaluate(model, held_out)["accuracy"], metrics["summary"]["final_test_acc"])
    assert same_images(metrics["noise"][0.0], metrics["summary"]["final_test_acc"])
    noisy = robustness.noise_robustness(model, held_out, stds=(0.2,))["accuracy"].item()
    assert noisy == pytest.approx(metrics["noise"][0.2], abs=1e-6)
    state = torch.load(Path(metrics["path"]) / CHECKPOINT, weights_only=True)  # CPU tensors, even from a GPU run
    if "trained_state_dict" in state:  # evaluated through a moving average: the trained weights' accuracy too
        trained = model_from_checkpoint({**state, "state_dict": state["trained_state_dict"]})
        assert same_images(evaluate(trained, held_out)["accuracy"], metrics["history"][-1]["trained_weights_test_acc"])


def test_the_series_holds_complete_standard_runs_once_each():
    series = records.series_runs()
    keys = [(m["model"], m["config"]["augment"], m["config"]["seed"]) for m in series]
    assert len(keys) == len(set(keys))
    for metrics in series:
        config = TrainConfig.from_dict(metrics["config"])
        assert metrics["status"] == "complete" and metrics.get("evaluated_on", "test") == "test"
        assert config == TrainConfig(model=config.model, augment=config.augment, seed=config.seed,
                                     device=config.device)
        # One engine for the whole series, the default one (regenerated with it on 2026-12-03).
        assert metrics.get("conv_input_grads", "native") == "forward-conv", metrics["run"]


def test_the_series_before_its_regeneration_is_kept_whole():
    """README, The committed series: the native series of 2026-11 stays listed, complete, to compare engines."""
    runs = records.series_runs(listing=records.NATIVE_SERIES)
    assert sorted((m["model"], m["config"]["augment"], m["config"]["seed"]) for m in runs) == sorted(
        (model, augment, seed) for model in records.SERIES_MODELS for augment in (True, False)
        for seed in studies.SERIES_SEEDS)
    assert all(m["status"] == "complete" and m.get("conv_input_grads", "native") == "native" for m in runs)
    assert not {m["run"] for m in runs} & {m["run"] for m in records.series_runs()}


def test_committed_notebooks_hold_no_absolute_paths_of_the_machine_that_ran_them():
    """The executed notebooks kept beside their runs (e.g. one made on a borrowed GPU), text outputs and metadata."""
    notebooks = sorted((REPO / "training-logs").rglob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        texts = [json.dumps(notebook.metadata)] + [
            json.dumps({key: value for key, value in output.items() if key != "data"})
            + json.dumps({mime: value for mime, value in output.get("data", {}).items() if mime.startswith("text")})
            for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
        found = re.findall(r"(?<![\w.])/(?:root|home|tmp|opt|work|Users|content)/[^\s\"']*", "\n".join(texts))
        assert not found, f"{path.relative_to(REPO)}: {sorted(set(found))[:3]}"
