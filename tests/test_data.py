import pytest
import torch

from mnist_lib.data import (
    MNIST_FILES,
    AugmentConfig,
    DataNotFoundError,
    augment_batch,
    denormalize,
    load_split,
    resolve_data_dir,
)


def test_splits_are_normalised_tensors(data_dir):
    train = load_split(True, data_dir, download=False)
    assert train.images.shape == (60000, 1, 28, 28) and train.labels.shape == (60000,)
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert abs(train.images.mean().item()) < 0.01 and abs(train.images.std().item() - 1) < 0.01
    assert len(load_split(False, data_dir, download=False)) == 10000


def test_augmentation_keeps_shape_changes_pixels_and_differs_per_sample(small_test):
    images = small_test.images[:1].repeat(16, 1, 1, 1)
    out = augment_batch(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == images.dtype
    assert not torch.equal(out, images)
    flat = out.flatten(1)
    assert torch.cdist(flat, flat).triu(1)[torch.ones(16, 16).triu(1).bool()].min() > 0  # all 16 copies differ
    pixels = denormalize(out)
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5


def test_augmentation_is_seeded(small_test):
    images = small_test.images[:64]
    first = augment_batch(images, torch.Generator().manual_seed(3))
    again = augment_batch(images, torch.Generator().manual_seed(3))
    other = augment_batch(images, torch.Generator().manual_seed(4))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_batches_keep_labels_with_their_images(small_test):
    generator = torch.Generator().manual_seed(0)
    lookup = {tuple(img.flatten()[:400].tolist()): label.item()
              for img, label in zip(small_test.images, small_test.labels, strict=True)}
    seen = 0
    for images, labels in small_test.batches(128, generator):
        for img, label in zip(images, labels, strict=True):
            assert lookup[tuple(img.flatten()[:400].tolist())] == label.item()
            seen += 1
    assert seen == len(small_test)


def test_random_erasing_blanks_a_patch(small_test):
    images = small_test.images[:32]
    config = AugmentConfig(degrees=0, translate=0, scale=(1, 1), shear=0, erase_prob=1.0, erase_area=(0.1, 0.1))
    out = augment_batch(images, torch.Generator().manual_seed(0), config)
    background = images.min()
    assert ((out == background).sum(dim=(1, 2, 3)) > (images == background).sum(dim=(1, 2, 3))).float().mean() > 0.5


def test_missing_data_without_download_gives_one_clear_error(tmp_path):
    with pytest.raises(DataNotFoundError) as error:
        load_split(False, tmp_path, download=False)
    message = str(error.value)
    assert str(tmp_path) in message and all(name in message for name in MNIST_FILES)
    assert "MNIST_DATA_DIR" in message


def test_data_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path))
    assert resolve_data_dir() == tmp_path.resolve()
    assert resolve_data_dir("elsewhere").name == "elsewhere"


@pytest.mark.parametrize("n", [128, 96, 1])
def test_sampling_grid_matches_affine_grid_bit_for_bit(n):
    from mnist_lib.data import affine_matrices, sampling_grid

    matrices = affine_matrices(n, AugmentConfig(), torch.Generator().manual_seed(n), "cpu")
    expected = torch.nn.functional.affine_grid(matrices, [n, 1, 28, 28], align_corners=False)
    assert torch.equal(sampling_grid(matrices, 28, 28), expected)


def test_closed_form_inverse_equals_inverting_the_forward_matrix():
    from mnist_lib.data import _uniform, affine_matrices

    config, n = AugmentConfig(), 2048
    closed = affine_matrices(n, config, torch.Generator().manual_seed(5), "cpu")
    generator = torch.Generator().manual_seed(5)  # the same draws, in the same order, built as a forward matrix
    angle = torch.deg2rad(_uniform(n, -config.degrees, config.degrees, generator, "cpu"))
    shear = torch.deg2rad(_uniform(n, -config.shear, config.shear, generator, "cpu"))
    scale = _uniform(n, *config.scale, generator, "cpu")
    shift = _uniform(2 * n, -config.translate, config.translate, generator, "cpu").view(n, 2) * 2
    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    zero, one = torch.zeros_like(scale), torch.ones_like(scale)
    forward = torch.stack([scale * cos, scale * (cos * tan - sin), shift[:, 0],
                           scale * sin, scale * (sin * tan + cos), shift[:, 1], zero, zero, one], 1).view(n, 3, 3)
    assert torch.allclose(closed, torch.linalg.inv(forward)[:, :2], atol=1e-6)


def test_pixel_noise_augmentation_is_seeded_bounded_and_varies_per_image(small_test):
    images = small_test.images[:1].repeat(256, 1, 1, 1)
    still = AugmentConfig(degrees=0, translate=0, scale=(1, 1), shear=0)
    clean = augment_batch(images, torch.Generator().manual_seed(0), still)
    noisy = augment_batch(images, torch.Generator().manual_seed(0), AugmentConfig(**{**still.__dict__,
                                                                                      "noise_std": 0.3}))
    again = augment_batch(images, torch.Generator().manual_seed(0), AugmentConfig(**{**still.__dict__,
                                                                                      "noise_std": 0.3}))
    assert torch.equal(noisy, again)
    pixels = denormalize(noisy)
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    spread = (denormalize(noisy) - denormalize(clean)).flatten(1).std(1)  # each image its own std in U(0, 0.3)
    assert spread.min() < 0.05 and spread.max() > 0.15 and spread.max() < 0.3


def test_validation_split_is_the_last_10000_training_images(data_dir):
    from mnist_lib.data import split_validation

    full = load_split(True, data_dir, download=False)
    train, validation = split_validation(full)
    assert len(train) == 50_000 and len(validation) == 10_000
    assert torch.equal(validation.images, full.images[50_000:]) and torch.equal(train.labels, full.labels[:50_000])
    with pytest.raises(ValueError, match="60,000"):
        split_validation(full.head(100))


def test_augment_strength_scales_the_affine_ranges_only():
    standard = AugmentConfig(noise_std=0.2)
    assert standard.scaled(1) is standard  # the standard recipe draws exactly what it drew before the setting
    half = standard.scaled(0.5)
    assert (half.degrees, half.translate, half.shear) == (3.5, 0.035, 2.5)
    assert half.scale == pytest.approx((0.975, 1.025)) and half.noise_std == 0.2
    from mnist_lib.data import affine_matrices

    def spread(config):  # how far the drawn matrices stray from the identity
        matrices = affine_matrices(4096, config, torch.Generator().manual_seed(0), "cpu")
        return (matrices - torch.tensor([[1.0, 0, 0], [0, 1, 0]])).abs().mean().item()

    assert spread(half) == pytest.approx(spread(standard) / 2, rel=0.05)


def test_the_affine_ranges_read_in_words_without_percent_signs():  # argparse help text formats % itself
    words = AugmentConfig().describe_affine()
    assert words == "rotation up to 7 degrees, shift up to 7 percent of the side, zoom 0.95-1.05, shear up to 5 degrees"


def test_the_warp_moves_pixels_smoothly_within_its_bound_and_draws_nothing_when_off(small_test):
    from mnist_lib.data import warp_field

    config = AugmentConfig(warp=1.5)
    field = warp_field(64, 28, 28, config, torch.Generator().manual_seed(0), "cpu")
    in_pixels = field * 14  # a grid unit is half the side: 14 pixels
    assert field.shape == (64, 28, 28, 2)
    assert in_pixels.abs().max() <= 1.5 + 1e-5
    assert in_pixels.abs().amax((1, 2, 3)).min() > 0.5  # every image is warped
    # neighbours move together in both directions (under a pixel per pixel: the warp never folds the image)
    assert (in_pixels[:, 1:] - in_pixels[:, :-1]).abs().max() < 0.75
    assert (in_pixels[:, :, 1:] - in_pixels[:, :, :-1]).abs().max() < 0.75
    images = small_test.images[:16]
    identity = dict(degrees=0.0, translate=0.0, scale=(1.0, 1.0), shear=0.0)
    plain = augment_batch(images, torch.Generator().manual_seed(3), AugmentConfig(**identity))
    warped = augment_batch(images, torch.Generator().manual_seed(3), AugmentConfig(**identity, warp=1.5))
    assert torch.allclose(plain, images, atol=1e-5) and not torch.allclose(warped, images, atol=1e-2)
    # Off, the warp draws no random numbers: augment_batch draws the affine matrices' numbers and nothing else,
    # so runs without a warp augment exactly as before it existed.
    from mnist_lib.data import affine_matrices

    generator = torch.Generator().manual_seed(5)
    augment_batch(images, generator, AugmentConfig(warp=0.0))
    reference = torch.Generator().manual_seed(5)
    affine_matrices(len(images), AugmentConfig(), reference, "cpu")
    assert torch.equal(generator.get_state(), reference.get_state())
    generator = torch.Generator().manual_seed(5)
    augment_batch(images, generator, AugmentConfig(warp=1.5))
    assert not torch.equal(generator.get_state(), reference.get_state())
