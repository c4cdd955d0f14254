from pathlib import Path

import pytest

from mnist_lib.data import MNIST_FILES, load_split, resolve_data_dir
from mnist_lib.records import committed_run


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """MNIST from $MNIST_DATA_DIR (CI: ../shared/data). Tests never download."""
    root = resolve_data_dir()
    missing = [f for f in MNIST_FILES if not (root / "MNIST" / "raw" / f).exists()]
    if missing:
        pytest.fail(f"MNIST not found under {root}/MNIST/raw; set MNIST_DATA_DIR (missing {missing})")
    return root


@pytest.fixture(scope="session")
def small_train(data_dir):
    return load_split(True, data_dir, download=False, limit=2000)


@pytest.fixture(scope="session")
def small_test(data_dir):
    return load_split(False, data_dir, download=False, limit=1000)


@pytest.fixture(scope="session")
def full_test(data_dir):
    return load_split(False, data_dir, download=False)


@pytest.fixture(scope="session")
def trained_checkpoint() -> Path:
    """The committed series' SuperLight run (augmentation, seed 1)."""
    return Path(committed_run("superlight", augment=True, seed=1)["checkpoint"])
