import hashlib
import json
import subprocess
import sys

import pytest
import torch

from mnist_lib import cli
from mnist_lib.config import TrainConfig
from mnist_lib.runs import train


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, small_train, full_test):
    """One real one-epoch checkpoint and four broken files; tests that use it must leave them untouched."""
    tmp_path = tmp_path_factory.mktemp("checkpoints")
    good = train(TrainConfig(epochs=1, seed=3), train_split=small_train, test_split=full_test,
                 runs_dir=tmp_path / "runs", verbose=False).checkpoint
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    foreign = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), foreign)
    return {"good": good, "truncated": truncated, "text": text, "foreign": foreign, "missing": tmp_path / "nope.pt"}


def run_main(argv, capsys):
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # argparse errors
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.err.strip().splitlines()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--epochs", "0"], "epochs must be a positive integer"),
        (["--epochs", "-3"], "epochs must be a positive integer"),
        (["--epochs", "ten"], "--epochs: invalid int value"),
        (["--model-args", "dropout"], "is not a JSON object"),
        (["--model", "light", "--model-args", '{"width": 4}'], "light takes norm, dropout"),
        (["--model", "vgg"], "model must be one of light, lightest, superlight"),
        (["--batch-size", "0"], "batch_size must be a positive integer"),
        (["--lr", "-1"], "lr must be a number"),
    ],
)
def test_train_rejects_bad_values_in_one_line(argv, expected, capsys, tmp_path):
    status, err = run_main(["train", *argv, "--out", str(tmp_path / "runs"), "--no-download"], capsys)
    assert status == 2 and len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "runs").exists()  # nothing written


@pytest.mark.parametrize("kind", ["missing", "truncated", "text", "foreign"])
def test_bad_checkpoints_are_rejected_and_left_untouched(kind, bad_files, capsys, data_dir):
    path = bad_files[kind]
    before = digest(path) if path.exists() else None
    for argv in (["train", "--resume", str(path)], ["evaluate", str(path)]):
        status, err = run_main([*argv, "--data-dir", str(data_dir), "--no-download"], capsys)
        assert status == 2 and len(err) == 1 and str(path) in err[0], err
    assert (digest(path) if path.exists() else None) == before


def test_missing_data_is_one_clear_line(tmp_path, capsys):
    status, err = run_main(["train", "--epochs", "1", "--data-dir", str(tmp_path), "--no-download",
                            "--out", str(tmp_path / "runs")], capsys)
    assert status == 1 and len(err) == 1 and "MNIST not found" in err[0] and "MNIST_DATA_DIR" in err[0]


def test_evaluate_prints_the_accuracy_the_run_recorded(bad_files, data_dir, capsys):
    assert cli.main(["evaluate", str(bad_files["good"]), "--data-dir", str(data_dir), "--no-download", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    recorded = json.loads((bad_files["good"].parent / "metrics.json").read_text())["summary"]["final_test_acc"]
    assert result["accuracy"] == pytest.approx(recorded, abs=1e-9) and result["count"] == 10000
    assert len(result["per_class_accuracy"]) == 10


def test_resume_refuses_changed_settings_and_a_complete_run(bad_files, data_dir, capsys, tmp_path):
    run_dir = bad_files["good"].parent
    before = {p.name: digest(p) for p in run_dir.iterdir()}
    common = ["--data-dir", str(data_dir), "--no-download"]
    for extra, expected in ((["--epochs", "4"], "epochs differ from the run's"),
                            ([], "is complete (1/1 epochs)"),
                            (["--out", str(tmp_path)], "--out cannot be used with --resume")):
        status, err = run_main(["train", "--resume", str(bad_files["good"]), *extra, *common], capsys)
        assert status == 2 and len(err) == 1 and expected in err[0], err
    assert {p.name: digest(p) for p in run_dir.iterdir()} == before


@pytest.mark.parametrize("argv, expected", [
    (["train", "--device", "cuda:99"], "no such CUDA device"),
    (["evaluate", "GOOD", "--device", "cuda:99"], "no such CUDA device"),
    (["evaluate", "GOOD", "--device", "tpu"], "device must be 'auto'"),
    (["train", "--model", "lightest", "--model-args", '{"dropout": 2}'], "invalid for lightest"),
    (["train", "--epochs", "1", "--train-limit", "300", "--out", "FILE"], "cannot create a run folder"),
])
def test_unusable_devices_and_paths_are_one_line(argv, expected, bad_files, data_dir, capsys, tmp_path):
    afile = tmp_path / "a-file"
    afile.write_text("keep me")
    argv = [str(bad_files["good"]) if a == "GOOD" else str(afile / "runs") if a == "FILE" else a for a in argv]
    status, err = run_main([*argv, "--data-dir", str(data_dir), "--no-download"], capsys)
    assert status == 2 and len(err) == 1 and expected in err[0], err
    assert afile.read_text() == "keep me"


def test_module_entry_point_runs(tmp_path, data_dir):
    done = subprocess.run([sys.executable, "-m", "mnist_lib", "train", "--epochs", "1", "--train-limit", "500",
                           "--data-dir", str(data_dir), "--no-download", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "done: final-epoch test acc" in done.stdout + done.stderr
    checkpoint = next(tmp_path.glob("*/checkpoint.pt"))
    assert (checkpoint.parent / "curves.png").stat().st_size > 0
    shown = subprocess.run([sys.executable, "-m", "mnist_lib", "evaluate", str(checkpoint), "--data-dir",
                            str(data_dir), "--no-download"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "accuracy" in shown.stdout and "per class" in shown.stdout
