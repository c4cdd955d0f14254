"""Session set-up shared by tests/ and the nbval-collected notebooks/."""

import os
import shutil
import tempfile

import pytest

_scratch_runs_dir = None


def pytest_configure(config):
    global _scratch_runs_dir
    os.environ.setdefault("TQDM_DISABLE", "1")
    # Runs made by tests, nbval-executed notebooks and papermill go to a scratch folder, never training-logs/.
    if "MNIST_RUNS_DIR" not in os.environ:
        _scratch_runs_dir = tempfile.mkdtemp(prefix="mnist-runs-")
        os.environ["MNIST_RUNS_DIR"] = _scratch_runs_dir
    config.addinivalue_line("markers", "slow: trains for minutes (notebooks, fresh-run targets)")


def pytest_unconfigure(config):
    if _scratch_runs_dir:  # only a folder this session made; one named by the caller is theirs to keep
        shutil.rmtree(_scratch_runs_dir, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
