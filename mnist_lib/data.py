"""MNIST held as tensors on the training device, with batched per-sample augmentation."""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .errors import UserError

if TYPE_CHECKING:
    from torchvision import datasets, transforms

MEAN, STD = 0.1307, 0.3081
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class DataNotFoundError(UserError, FileNotFoundError):
    """MNIST is not on disk and may not be downloaded."""

    exit_code = 1


def repo_root() -> Path:
    """The checkout this package lives in (so notebooks/ and the repo root agree), else the current folder."""
    checkout = Path(__file__).resolve().parents[1]
    return checkout if (checkout / "pyproject.toml").is_file() else Path.cwd()


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Explicit argument, else $MNIST_DATA_DIR, else data/ in the repo (see repo_root)."""
    if data_dir is None:
        data_dir = os.environ.get("MNIST_DATA_DIR") or repo_root() / "data"
    return Path(data_dir).expanduser().resolve()


def mnist_dataset(
    train: bool, data_dir: str | os.PathLike | None = None, download: bool = True, transform=None
) -> datasets.MNIST:
    """torchvision's MNIST, with one clear error when the files are missing."""
    root = resolve_data_dir(data_dir)
    raw = root / "MNIST" / "raw"
    if not download and not all((raw / name).exists() for name in MNIST_FILES):
        raise DataNotFoundError(
            f"MNIST not found in {raw}: expected the files {', '.join(MNIST_FILES)}. "
            "Set MNIST_DATA_DIR (or --data-dir) to a folder holding MNIST/raw/, "
            "or allow the download (drop --no-download)."
        )
    from torchvision import datasets  # imported here: torchvision's import takes seconds (it loads torch._dynamo)

    try:
        return datasets.MNIST(str(root), train=train, download=download, transform=transform)
    except (RuntimeError, OSError) as error:
        raise DataNotFoundError(
            f"MNIST could not be loaded or downloaded into {raw} ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no detail'}). "
            f"Put {', '.join(MNIST_FILES)} there, or set MNIST_DATA_DIR to a folder that has them."
        ) from None


def pixel_statistics(data_dir: str | os.PathLike | None = None, download: bool = True) -> tuple[float, float]:
    """Mean and standard deviation of the raw training pixels scaled to [0, 1] (what MEAN and STD round)."""
    pixels = mnist_dataset(True, data_dir, download).data.double().div_(255)
    return pixels.mean().item(), pixels.std().item()


@dataclass
class TensorSplit:
    """One split as a normalised (N, 1, 28, 28) float tensor and (N,) int64 labels."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, limit: int | None) -> TensorSplit:
        """The first `limit` images (all with None)."""
        return self if limit is None else TensorSplit(self.images[:limit], self.labels[:limit])

    def batches(self, batch_size: int, generator: torch.Generator | None = None):
        """Yield (images, labels) slices; shuffled when a generator is given."""
        n = len(self)
        if generator is None:
            for start in range(0, n, batch_size):
                yield self.images[start : start + batch_size], self.labels[start : start + batch_size]
            return
        order = torch.randperm(n, generator=generator, device=generator.device)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            yield self.images.index_select(0, index), self.labels.index_select(0, index)


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """[0, 1] pixels to the network's input scale."""
    return (pixels - MEAN) / STD


def denormalize(images: torch.Tensor) -> torch.Tensor:
    return images * STD + MEAN


VALIDATION_SIZE = 10_000  # the last 10,000 training images: the validation split for design decisions


def split_validation(train: TensorSplit) -> tuple[TensorSplit, TensorSplit]:
    """The full training split as (first 50,000 to train on, last 10,000 to validate on)."""
    if len(train) != 60_000:
        raise ValueError(f"the validation split is carved from all 60,000 training images, not {len(train)}")
    cut = len(train) - VALIDATION_SIZE
    return (TensorSplit(train.images[:cut], train.labels[:cut]),
            TensorSplit(train.images[cut:], train.labels[cut:]))


def load_split(
    train: bool,
    data_dir: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    download: bool = True,
    limit: int | None = None,
) -> TensorSplit:
    """Load one split into memory on `device`; `limit` keeps the first N images."""
    dataset = mnist_dataset(train, data_dir, download)
    pixels = dataset.data[:limit].unsqueeze(1).float().div_(255)
    labels = dataset.targets[:limit].long()
    return TensorSplit(normalize(pixels).to(device), labels.to(device))


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random affine transform, drawn independently for every image."""

    degrees: float = 7.0
    translate: float = 0.07  # fraction of the image side
    scale: tuple[float, float] = (0.95, 1.05)
    shear: float = 5.0  # degrees
    erase_prob: float = 0.0
    erase_area: tuple[float, float] = (0.02, 0.12)
    noise_std: float = 0.0  # each image's Gaussian pixel-noise std is drawn from U(0, noise_std) ...
    noise_prob: float = 1.0  # ... for this share of the images (the others stay clean)
    warp: float = 0.0  # smooth random warp: displacements up to this many pixels (0: none)
    warp_points: int = 5  # ... drawn on a warp_points x warp_points grid over the image, bicubically interpolated

    def describe_affine(self) -> str:
        """The affine ranges in words, e.g. for help texts."""
        return (f"rotation up to {self.degrees:g} degrees, shift up to {self.translate * 100:g} percent of the side, "
                f"zoom {self.scale[0]:g}-{self.scale[1]:g}, shear up to {self.shear:g} degrees")

    def scaled(self, strength: float) -> AugmentConfig:
        """The affine ranges (rotation, shift, zoom, shear) times `strength`; erasing and noise unchanged."""
        if strength == 1:
            return self
        low, high = self.scale
        return replace(self, degrees=self.degrees * strength, translate=self.translate * strength,
                       scale=(1 - (1 - low) * strength, 1 + (high - 1) * strength), shear=self.shear * strength)


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=device) * (high - low) + low


def affine_matrices(
    n: int, config: AugmentConfig, generator: torch.Generator, device
) -> torch.Tensor:
    """(n, 2, 3) matrices in affine_grid's normalised coordinates, one random draw per image."""
    angle = torch.deg2rad(_uniform(n, -config.degrees, config.degrees, generator, device))
    shear = torch.deg2rad(_uniform(n, -config.shear, config.shear, generator, device))
    scale = _uniform(n, *config.scale, generator, device)
    shift = _uniform(2 * n, -config.translate, config.translate, generator, device).view(n, 2) * 2
    # The forward map x -> A x + t has A = scale * rotation @ shear, i.e.
    #   A = scale * [[cos, cos*tan - sin], [sin, sin*tan + cos]]  with det(A) = scale**2.
    # affine_grid wants the inverse (output -> input): A^-1 (x - t), written out in closed form so that a GPU
    # never waits for a batched matrix inverse (torch.linalg.inv checks its result on the host).
    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    inverse = torch.stack([sin * tan + cos, sin - cos * tan, -sin, cos], dim=1).view(n, 2, 2) / scale.view(n, 1, 1)
    offset = -(inverse @ shift.unsqueeze(2))
    return torch.cat([inverse, offset], dim=2)


@functools.lru_cache(maxsize=8)
def _base_grid(height: int, width: int, device: torch.device) -> torch.Tensor:
    """affine_grid's (1, H*W, 3) grid of output pixel centres (align_corners=False), built once."""

    def centres(n: int) -> torch.Tensor:
        return torch.linspace(-1, 1, n, device=device) * (n - 1) / n

    base = torch.empty(1, height, width, 3, device=device)
    base[..., 0].copy_(centres(width))
    base[..., 1].copy_(centres(height).unsqueeze(-1))
    base[..., 2] = 1
    return base.view(1, height * width, 3)


def sampling_grid(matrices: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bit-for-bit F.affine_grid(matrices, (N, C, H, W), align_corners=False), without rebuilding the base grid
    on every call (that rebuild was half the cost of augmenting a batch on the CPU)."""
    n = len(matrices)
    base = _base_grid(height, width, matrices.device).expand(n, height * width, 3)
    return base.bmm(matrices.transpose(1, 2)).view(n, height, width, 2)


def warp_field(n: int, height: int, width: int, config: AugmentConfig, generator: torch.Generator,
               device) -> torch.Tensor:
    """(n, H, W, 2) smooth random displacements in grid_sample's normalised units, for an elastic distortion of
    handwriting (Simard et al. 2003 blur a per-pixel random field; a coarse random grid upsampled is smooth alike
    and cheaper): each control point moves up to config.warp pixels in x and y."""
    points = config.warp_points
    coarse = torch.rand(n, 2, points, points, generator=generator, device=device) * 2 - 1
    # clamp: bicubic interpolation overshoots its control points by up to a third
    field = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True).clamp_(-1, 1)
    pixel = torch.tensor([2 / width, 2 / height], device=device).view(1, 2, 1, 1)  # one pixel in grid units
    return (field * config.warp * pixel).permute(0, 2, 3, 1)


def add_pixel_noise(pixels: torch.Tensor, std: torch.Tensor | float, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise on [0, 1] pixels, clamped back to [0, 1]; `std` is one number or one per image."""
    if not isinstance(std, torch.Tensor):
        std = torch.tensor(float(std), device=pixels.device)
    noise = torch.randn(pixels.shape, generator=generator, device=pixels.device)
    return (pixels + std.view(-1, *[1] * (pixels.dim() - 1)) * noise).clamp_(0, 1)


def random_erase(images: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Blank one random rectangle (to the background value) in a random subset of images."""
    n, _, h, w = images.shape
    device = images.device
    area = _uniform(n, *config.erase_area, generator, device) * h * w
    aspect = torch.exp(_uniform(n, math.log(0.3), math.log(3.3), generator, device))
    eh = (area * aspect).sqrt().clamp(1, h)
    ew = (area / aspect).sqrt().clamp(1, w)
    top = torch.rand(n, generator=generator, device=device) * (h - eh)
    left = torch.rand(n, generator=generator, device=device) * (w - ew)
    chosen = torch.rand(n, generator=generator, device=device) < config.erase_prob
    rows = torch.arange(h, device=device).view(1, h, 1)
    cols = torch.arange(w, device=device).view(1, 1, w)
    box = (
        (rows >= top.view(n, 1, 1))
        & (rows < (top + eh).view(n, 1, 1))
        & (cols >= left.view(n, 1, 1))
        & (cols < (left + ew).view(n, 1, 1))
        & chosen.view(n, 1, 1)
    )
    return images.masked_fill(box.unsqueeze(1), normalize(torch.tensor(0.0)).item())


def augment_batch(
    images: torch.Tensor, generator: torch.Generator, config: AugmentConfig = AugmentConfig()
) -> torch.Tensor:
    """Random affine (optionally with a smooth random warp), optional pixel noise and optional erasing for a whole
    normalised batch, each image its own draw."""
    matrices = affine_matrices(len(images), config, generator, images.device)
    grid = sampling_grid(matrices, *images.shape[-2:])
    if config.warp > 0:
        grid = grid + warp_field(len(images), *images.shape[-2:], config, generator, images.device)
    # Sample the [0,1] image so that pixels pulled in from outside the frame are background (0).
    pixels = F.grid_sample(denormalize(images), grid, align_corners=False, padding_mode="zeros")
    if config.noise_std > 0:
        std = _uniform(len(pixels), 0, config.noise_std, generator, pixels.device)
        if config.noise_prob < 1:
            std = std * (torch.rand(len(pixels), generator=generator, device=pixels.device) < config.noise_prob)
        pixels = add_pixel_noise(pixels, std, generator)
    augmented = normalize(pixels)
    if config.erase_prob > 0:
        augmented = random_erase(augmented, config, generator)
    return augmented


def torchvision_transform(config: AugmentConfig = AugmentConfig()) -> transforms.Compose:
    """The equivalent per-sample PIL pipeline (benchmark baseline, galleries)."""
    from torchvision import transforms

    steps = [
        transforms.RandomAffine(
            degrees=config.degrees,
            translate=(config.translate, config.translate),
            scale=config.scale,
            shear=config.shear,
        ),
        transforms.ToTensor(),
        transforms.Normalize((MEAN,), (STD,)),
    ]
    if config.erase_prob > 0:
        background = normalize(torch.tensor(0.0)).item()
        steps.append(transforms.RandomErasing(p=config.erase_prob, scale=config.erase_area, value=background))
    return transforms.Compose(steps)
