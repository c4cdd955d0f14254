"""The committed series changes only by `promote`: user runs land elsewhere, and promote takes standard runs only."""

import json
import shutil
import subprocess
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from mnist_lib import plots, records
from mnist_lib.cli import main
from mnist_lib.config import TrainConfig
from mnist_lib.runs import RunError, default_runs_dir, train

REPO = Path(__file__).resolve().parents[1]


def test_user_runs_go_to_the_git_ignored_runs_folder(monkeypatch):
    monkeypatch.delenv("MNIST_RUNS_DIR", raising=False)
    assert default_runs_dir() == REPO / "runs"
    ignored = subprocess.run(["git", "check-ignore", "-q", "runs/some-run"], cwd=REPO)
    assert ignored.returncode == 0


@pytest.fixture
def series_root(tmp_path) -> Path:
    """A copy of the committed series' SuperLight seed-1 run as the only member of a series in tmp_path."""
    root = tmp_path / "training-logs"
    root.mkdir()
    run = records.committed_run("superlight")
    shutil.copytree(run["path"], root / run["run"])
    (root / records.SERIES).write_text(json.dumps({"runs": [run["run"]]}))
    return root


def standard_run_copy(tmp_path: Path, seed: int, name: str) -> Path:
    """A committed standard run of that seed copied under tmp_path/runs as `name`."""
    source = Path(records.committed_run("superlight", seed=seed)["path"])
    destination = tmp_path / "runs" / name
    shutil.copytree(source, destination)
    return destination


def test_promote_adds_a_standard_run_and_replaces_only_when_asked(series_root, tmp_path):
    before = records.series_runs(series_root)
    seed2 = standard_run_copy(tmp_path, 2, "superlight-aug-seed2-20990101-000000")
    records.promote(seed2, series_root)
    assert [m["config"]["seed"] for m in records.series_runs(series_root)] == [1, 2]
    assert (series_root / seed2.name / "checkpoint.pt").exists()

    other_seed1 = standard_run_copy(tmp_path, 1, "superlight-aug-seed1-20990101-000000")
    with pytest.raises(RunError, match="already holds .* pass --replace"):
        records.promote(other_seed1, series_root)
    assert records.series_runs(series_root)[0]["run"] == before[0]["run"]
    records.promote(other_seed1, series_root, replace_existing=True)
    assert records.committed_run("superlight", seed=1, root=series_root)["path"] == str(series_root / other_seed1.name)
    assert (series_root / before[0]["run"]).exists()  # replaced in the series, its folder kept


def test_promote_refuses_what_is_not_a_complete_standard_run(series_root, tmp_path, data_dir, capsys):
    quick = train(TrainConfig(epochs=1, train_limit=500, test_limit=200, device="cpu"), data_dir=data_dir,
                  runs_dir=tmp_path / "runs", verbose=False).run_dir
    with pytest.raises(RunError, match="differs from the standard recipe in epochs=1, train_limit=500"):
        records.promote(quick, series_root)
    with pytest.raises(RunError, match="not a run folder"):
        records.promote(tmp_path, series_root)
    series = (series_root / records.SERIES).read_text()
    assert main(["promote", str(quick)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert (series_root / records.SERIES).read_text() == series
    assert not (records.committed_runs_dir() / quick.name).exists()


def test_since_must_be_a_local_iso_time(capsys):
    for bad in ("24/11/2026", "2026-11-24T09:00+01:00"):
        with pytest.raises(SystemExit) as exit_:
            main(["series", "--seeds", "1", "--since", bad])
        assert exit_.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_promote_completes_a_copy_a_kill_cut_short(series_root, tmp_path):
    seed2 = standard_run_copy(tmp_path, 2, "superlight-aug-seed2-20990101-000000")
    (series_root / (seed2.name + ".partial")).mkdir()  # a copy killed half way
    records.promote(seed2, series_root)
    records.promote(seed2, series_root)  # promoting it again (a kill after the copy) changes nothing
    assert [m["config"]["seed"] for m in records.series_runs(series_root)] == [1, 2]
    assert not (series_root / (seed2.name + ".partial")).exists()


def test_a_missing_series_member_is_named(series_root):
    (series_root / records.SERIES).write_text(json.dumps({"runs": ["superlight-aug-seed9-20990101-000000"]}))
    with pytest.raises(RunError, match="names superlight-aug-seed9"):
        records.series_runs(series_root)
    with pytest.raises(FileNotFoundError, match="promote one"):
        records.committed_run("light", root=series_root.parent)


def test_fill_series_trains_what_is_missing_resumes_and_regenerates(series_root, tmp_path, monkeypatch, data_dir):
    tiny = {"epochs": 2, "train_limit": 600, "test_limit": 300, "device": "cpu"}
    standard = records.series_config
    monkeypatch.setattr(records, "series_config", lambda *key: replace(standard(*key), **tiny))
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path / "runs"))
    cut_off = train(records.series_config("light", True, 1), data_dir=data_dir, stop_after=1, verbose=False).run_dir

    def fill(**kwargs):
        return records.fill_series([1], ("light",), (True,), device="cpu", data_dir=data_dir, download=False,
                                   root=series_root, on_promoted=lambda d: plots.save_figures_of(d, data_dir, False),
                                   **kwargs)

    assert fill() == [cut_off.name]  # the cut-off run resumed in place, then promoted
    assert records.committed_run("light", root=series_root)["summary"]["epochs_run"] == 2
    promoted = series_root / cut_off.name
    assert (promoted / plots.CURVES).exists() and (promoted / "robustness.json").exists()
    assert fill() == []  # complete: nothing trained
    since = datetime.now().isoformat(timespec="seconds")
    time.sleep(1)
    regenerated = fill(since=since)
    assert len(regenerated) == 1 and regenerated != [cut_off.name]
    assert records.committed_run("light", root=series_root)["run"] == regenerated[0]
    assert fill(since=since) == []


def test_the_frontier_table_is_one_row_per_size_smallest_first_over_its_seeds():
    def frontier_run(model, seed, final, last3_min, parameters):
        return {"run": f"{model}-aug-seed{seed}-x", "path": f"/r/studies/frontier/{model}-aug-seed{seed}-x",
                "model": model, "parameters": parameters, "config": {"seed": seed, "model_args": {}},
                "summary": {"final_test_acc": final, "last3_min": last3_min, "final_train_acc": final - 0.5}}

    runs = [frontier_run("superlight", 1, 99.5, 99.45, 4994), frontier_run("gap-1.4k", 1, 98.6, 98.5, 1363),
            frontier_run("gap-1.4k", 2, 98.8, 98.7, 1363), frontier_run("superlight", 2, 99.4, 99.38, 4994)]
    table = records.frontier_table(runs)
    assert list(table["model"]) == ["gap-1.4k", "superlight"] and list(table["seeds"]) == [2, 2]
    assert list(table["MACs per image"]) == ["336,240", "1,288,312"]
    assert list(table["final-epoch acc (%)"]) == ["98.70 ± 0.14", "99.45 ± 0.07"]
    assert list(table["worst seed, min of last 3 (%)"]) == ["98.50", "99.38"]
    assert list(table["seeds >= 99.4% in each of last 3"]) == ["0 of 2", "1 of 2"]
    assert list(table["train - test, final (pp)"]) == ["-0.50", "-0.50"]
    assert list(table["trained on"]) == ["CPU not recorded, native input grads"] * 2


def test_regeneration_table_pairs_the_two_series_seed_by_seed(tmp_path):
    def fake_run(name: str, seed: int, final: float, last3_min: float, augment: bool = True, **engine) -> str:
        (tmp_path / name).mkdir()
        config = {key: value for key, value in TrainConfig(model="superlight", seed=seed, augment=augment).to_dict()
                  .items() if key != "conv_input_grads"}  # as the native runs recorded it: before the key existed
        if "conv_input_grads" in engine:
            config["conv_input_grads"] = engine["conv_input_grads"]
        (tmp_path / name / "metrics.json").write_text(json.dumps({
            "run": name, "model": "superlight", "config": config, **engine,
            "summary": {"final_test_acc": final, "last3_min": last3_min}}))
        return name

    before = [fake_run(f"old{seed}", seed, final, low, cpu_capability="AVX2")
              for seed, final, low in ((1, 99.50, 99.45), (2, 99.40, 99.34), (3, 99.48, 99.41), (5, 99.0, 98.0))]
    before.append(fake_run("old-noaug1", 1, 99.3, 99.2, augment=False, cpu_capability="AVX2"))
    now = [fake_run(f"new{seed}", seed, final, low, cpu_capability="AVX512", conv_input_grads="forward-conv")
           for seed, final, low in ((1, 99.45, 99.44), (2, 99.38, 99.38), (3, 99.44, 99.35), (4, 99.0, 98.0))]
    (tmp_path / records.NATIVE_SERIES).write_text(json.dumps({"runs": before}))
    (tmp_path / records.SERIES).write_text(json.dumps({"runs": now}))
    (row,) = records.regeneration_table(tmp_path).to_dict("records")  # no configuration without augmentation now
    assert row["seeds"] == 3  # seeds 4 and 5: one series each
    assert row["before: final-epoch acc (%)"] == "99.46 ± 0.05" and row["now: final-epoch acc (%)"] == "99.42 ± 0.04"
    assert row["now vs before"] == "-0.04, within noise"
    assert row["same seed, now - before (pp): mean, largest size"] == "-0.04, 0.05"
    assert row["worst seed, min of last 3 (%)"] == "99.34 -> 99.35"
    assert row["seeds meeting the target"] == "2 -> 1 of 3"
    assert row["before: trained on"] == "AVX2, native input grads"
    assert row["now: trained on"] == "AVX512, forward-conv input grads"
    (tmp_path / records.SERIES).write_text(json.dumps({"runs": ["new4"]}))
    assert records.regeneration_block(tmp_path) == "(the two series hold no seed in common)"
