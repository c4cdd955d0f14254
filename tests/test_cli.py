import hashlib
import json
import subprocess
import sys

import pytest
import torch

from mnist_lib import evaluate, train
from mnist_lib.engine import TrainConfig, fit


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def bad_files(tmp_path, small_train, full_test):
    good = fit(TrainConfig(epochs=1, seed=3), train=small_train, test=full_test, runs_dir=tmp_path / "runs",
               verbose=False).checkpoint
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    foreign = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), foreign)
    return {"good": good, "truncated": truncated, "text": text, "foreign": foreign, "missing": tmp_path / "nope.pt"}


def run_main(main, argv, capsys):
    try:
        status = main(argv)
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
        (["--model", "vgg"], "model must be one of light, lightest, superlight"),
        (["--batch-size", "0"], "batch_size must be a positive integer"),
        (["--lr", "-1"], "lr must be a number"),
    ],
)
def test_train_rejects_bad_values_in_one_line(argv, expected, capsys, tmp_path):
    status, err = run_main(train.main, [*argv, "--out", str(tmp_path / "runs"), "--no-download"], capsys)
    assert status != 0 and len(err) == 1 and expected in err[0]
    assert not (tmp_path / "runs").exists()  # nothing written


@pytest.mark.parametrize("kind", ["missing", "truncated", "text", "foreign"])
def test_bad_checkpoints_are_rejected_and_left_untouched(kind, bad_files, capsys, data_dir):
    path = bad_files[kind]
    before = digest(path) if path.exists() else None
    for main, argv in ((train.main, ["--resume", str(path)]), (evaluate.main, [str(path)])):
        status, err = run_main(main, [*argv, "--data-dir", str(data_dir), "--no-download"], capsys)
        assert status == 2 and len(err) == 1 and str(path) in err[0], err
    assert (digest(path) if path.exists() else None) == before


def test_missing_data_is_one_clear_line(tmp_path, capsys):
    status, err = run_main(train.main, ["--epochs", "1", "--data-dir", str(tmp_path), "--no-download",
                                        "--out", str(tmp_path / "runs")], capsys)
    assert status == 1 and len(err) == 1 and "MNIST not found" in err[0] and "MNIST_DATA_DIR" in err[0]


def test_evaluate_prints_the_accuracy_the_run_recorded(bad_files, data_dir, capsys):
    status, _ = run_main(evaluate.main, [str(bad_files["good"]), "--data-dir", str(data_dir), "--no-download",
                                         "--json"], capsys)
    # run_main consumed stderr only; the JSON went to stdout before capture was read
    assert status == 0
    recorded = json.loads((bad_files["good"].parent / "metrics.json").read_text())["summary"]["final_test_acc"]
    result = evaluate.evaluate_checkpoint(bad_files["good"], data_dir, download=False)
    assert result["accuracy"] == pytest.approx(recorded, abs=1e-9) and result["count"] == 10000
    assert len(result["per_class_accuracy"]) == 10


def test_module_entry_points_run(tmp_path, data_dir):
    done = subprocess.run([sys.executable, "-m", "mnist_lib.train", "--epochs", "1", "--train-limit", "500",
                           "--data-dir", str(data_dir), "--no-download", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "done: final-epoch test acc" in done.stdout + done.stderr
    checkpoint = next(tmp_path.glob("*/checkpoint.pt"))
    shown = subprocess.run([sys.executable, "-m", "mnist_lib.evaluate", str(checkpoint), "--data-dir",
                            str(data_dir), "--no-download"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "accuracy" in shown.stdout and "per class" in shown.stdout
