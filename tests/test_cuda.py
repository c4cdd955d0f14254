"""The CUDA path, on a machine with a GPU (skipped elsewhere): no host sync per batch, restored settings, a
run that reproduces on the same GPU, and a GPU checkpoint that evaluates the same on the CPU."""

import warnings

import pytest
import torch

from mnist_lib.config import TrainConfig
from mnist_lib.data import TensorSplit
from mnist_lib.runs import CHECKPOINT, train
from mnist_lib.training import TrainState, deterministic, fit, logits, steps_per_epoch, train_one_epoch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def on_cuda(split: TensorSplit) -> TensorSplit:
    return TensorSplit(split.images.to(CUDA), split.labels.to(CUDA))


def host_syncs(images: int, small_train: TensorSplit) -> int:
    """How many synchronising CUDA calls one augmented training epoch over `images` images makes."""
    config = TrainConfig(model="superlight", batch_size=64, epochs=2)  # two epochs: a warm-up, then the one counted
    split = on_cuda(small_train.head(images))
    state = TrainState.new(config, steps_per_epoch(len(split), config.batch_size), CUDA)
    generator = torch.Generator(device=CUDA).manual_seed(1)
    train_one_epoch(state, split, config, generator, progress=False)  # warm-up: lazy initialisation syncs once
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train_one_epoch(state, split, config, generator, progress=False)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing" in str(warning.message) for warning in caught)


def test_a_training_epoch_syncs_with_the_host_a_fixed_number_of_times_not_per_batch(small_train):
    host_syncs(128, small_train)  # the process's first epochs initialise CUDA libraries, which syncs once more
    # 2 batches and 16 batches: the same syncs, the epoch's loss and accuracy totals read once at its end.
    assert host_syncs(128, small_train) == host_syncs(1024, small_train) == 2


def test_the_same_seed_on_the_same_gpu_gives_the_same_history_and_settings_are_restored(small_train, small_test):
    config = TrainConfig(model="superlight", epochs=2, batch_size=64, seed=3)
    train_split, test_split = on_cuda(small_train), on_cuda(small_test)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    first, second = (fit(config, train_split, test_split, progress=False) for _ in range(2))
    assert [row["test_acc"] for row in first.history] == [row["test_acc"] for row in second.history]
    assert [row["train_loss"] for row in first.history] == [row["train_loss"] for row in second.history]
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before


def test_a_model_trained_on_the_gpu_gives_the_same_logits_on_the_cpu(small_train, small_test):
    state = fit(TrainConfig(model="superlight", epochs=1, batch_size=64), on_cuda(small_train), on_cuda(small_test),
                progress=False)
    with deterministic(CUDA):  # as a run evaluates: full-precision convolutions (no TF32)
        on_gpu = logits(state.model, on_cuda(small_test)).cpu()
    on_cpu = logits(state.model.cpu(), small_test)
    assert torch.allclose(on_gpu, on_cpu, atol=1e-4)
    assert torch.equal(on_gpu.argmax(1), on_cpu.argmax(1))


def test_deterministic_mode_is_scoped_to_the_run_on_a_gpu():
    torch.use_deterministic_algorithms(False)
    with deterministic(CUDA):
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    assert not torch.are_deterministic_algorithms_enabled()


def test_a_gpu_runs_checkpoint_holds_cpu_tensors_and_resumes_on_the_gpu(data_dir, tmp_path):
    config = TrainConfig(model="superlight", epochs=2, train_limit=512, test_limit=256, device="cuda")
    first = train(config, data_dir=data_dir, download=False, runs_dir=tmp_path, stop_after=1, verbose=False)
    state = torch.load(first.run_dir / CHECKPOINT, weights_only=True)  # no map_location
    tensors = [t for t in [*state["state_dict"].values(), *state["optimizer"]["state"][0].values()]
               if isinstance(t, torch.Tensor)]
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    resumed = train(config, data_dir=data_dir, download=False, resume=first.run_dir / CHECKPOINT, verbose=False)
    assert len(resumed.metrics["history"]) == 2
