"""Session set-up shared by tests/ and the nbval-collected notebooks/."""

import os
import tempfile

import pytest


def pytest_configure(config):
    os.environ.setdefault("TQDM_DISABLE", "1")
    # Runs made by tests, nbval-executed notebooks and papermill go to a scratch folder, never training-logs/.
    os.environ.setdefault("MNIST_RUNS_DIR", tempfile.mkdtemp(prefix="mnist-runs-"))
    config.addinivalue_line("markers", "slow: trains for minutes (notebooks, fresh-run targets)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
