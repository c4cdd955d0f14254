import pandas as pd
import pytest
import torch

from mnist_lib import robustness
from mnist_lib.data import denormalize, normalize
from mnist_lib.runs import load_checkpoint, model_from_checkpoint
from mnist_lib.training import evaluate


@pytest.fixture(scope="module")
def model(trained_checkpoint):
    return model_from_checkpoint(load_checkpoint(trained_checkpoint))


def one_pixel(row: int, col: int) -> torch.Tensor:
    pixels = torch.zeros(1, 1, 28, 28)
    pixels[0, 0, row, col] = 1
    return normalize(pixels)


def bright(images: torch.Tensor) -> list[list[int]]:
    return (denormalize(images)[0, 0] > 0.5).nonzero().tolist()


def test_zero_perturbations_return_the_images_untouched():
    images = one_pixel(3, 4)
    assert robustness.add_noise(images, 0) is images
    assert robustness.rotate(images, 0) is images
    assert robustness.translate(images, 0, 0) is images


def test_rotation_turns_clockwise_and_translation_shifts_whole_pixels():
    right_of_centre = one_pixel(14, 24)
    assert bright(robustness.rotate(right_of_centre, 90)) == [[24, 13]]  # now below the centre (13.5, 13.5)
    shifted = robustness.translate(right_of_centre, 2, -3)
    assert bright(shifted) == [[11, 26]]
    assert denormalize(shifted).max().item() == pytest.approx(1, abs=1e-5)


def test_noise_is_seeded_and_stays_in_pixel_range():
    images = one_pixel(10, 10).repeat(4, 1, 1, 1)
    noisy = robustness.add_noise(images, 0.3, seed=5)
    assert torch.equal(noisy, robustness.add_noise(images, 0.3, seed=5))
    assert not torch.equal(noisy, robustness.add_noise(images, 0.3, seed=6))
    pixels = denormalize(noisy)
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6


def test_accuracy_at_zero_perturbation_equals_plain_test_accuracy(model, small_test):
    plain = evaluate(model, small_test)["accuracy"]
    noise = robustness.noise_robustness(model, small_test, stds=(0.0, 0.4))
    rotation = robustness.rotation_robustness(model, small_test, degrees=(0, 45))
    translation = robustness.translation_robustness(model, small_test, shifts=(0, 6))
    assert noise.set_index("std").loc[0.0, "accuracy"] == plain
    assert rotation.set_index("degrees").loc[0, "accuracy"] == plain
    assert translation.set_index(["dx", "dy"]).loc[(0, 0), "accuracy"] == plain
    assert translation[["dx", "dy"]].values.tolist() == [[0, 0], [6, 0], [0, 6], [6, 6]]
    # A trained model loses accuracy under strong perturbations.
    assert noise["accuracy"].iloc[1] < plain - 10
    assert rotation["accuracy"].iloc[1] < plain - 5
    assert translation["accuracy"].iloc[1:].max() < plain
    assert translation["accuracy"].iloc[3] < plain - 5


def test_prediction_stability_is_seeded_and_high_under_small_noise(model, small_test):
    first = robustness.prediction_stability(model, small_test, stds=(0.01, 0.05), seed=3)
    assert first.equals(robustness.prediction_stability(model, small_test, stds=(0.01, 0.05), seed=3))
    assert list(first.columns) == ["std", "unchanged", "accuracy"]
    assert first["unchanged"].between(95, 100).all()
    assert first["unchanged"].iloc[0] >= first["unchanged"].iloc[1]


def test_compare_puts_each_labelled_report_side_by_side():
    reports = {
        name: {"stability": pd.DataFrame({"std": [0.01, 0.05], "unchanged": [u, u - 1], "accuracy": [a, a - 1]})}
        for name, u, a in (("light", 99.0, 98.0), ("superlight", 99.5, 99.0))
    }
    table = robustness.compare(reports, "stability")
    assert table.index.tolist() == [0.01, 0.05]
    assert table[("superlight", "accuracy")].tolist() == [99.0, 98.0]
    assert table[("light", "unchanged")].tolist() == [99.0, 98.0]
