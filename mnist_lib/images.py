"""Image files of single digits to MNIST-style input, and the model's top-3 answer for them."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import nn

from .data import normalize
from .errors import UserError

DIGIT_BOX = 20  # MNIST digits were fitted into 20x20, then centred by mass in 28x28
SIDE = 28
WORK_PIXELS = 384 * 384  # larger pictures are shrunk to this many pixels first (strokes fade below ~1/200 of it)
COARSE_PIXELS = 64 * 64  # paper and lighting vary slowly: they are measured on a copy this small
MNIST_STROKE = 0.125  # an MNIST stroke is about 2.5 px wide in the 20 px digit box
MIN_CONTRAST = 0.1  # ink that stands out from the paper by less than this (on [0, 1] pixels): no digit
MIN_SIGNAL = 6  # ... or by less than this many times the picture's noise level


class ImageError(UserError):
    """A file that cannot be read as a picture of a digit."""

    exit_code = 1


class BlankImageError(ImageError):
    """The image holds no visible digit."""


def grey_pixels(image: Image.Image) -> torch.Tensor:
    """An image as (H, W) greyscale floats in [0, 1]."""
    return torch.from_numpy(np.array(image.convert("L"))).float() / 255


def _grayscale(image: Image.Image) -> torch.Tensor:
    """(H, W) float pixels in [0, 1]; transparency is composited onto white (drawing apps' exports); 16-bit and
    float greyscale scaled by their own range."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32).copy())
        low, high = pixels.min(), pixels.max()
        return (pixels - low) / (high - low) if high > low else torch.zeros_like(pixels)
    if "A" in image.getbands() or "transparency" in image.info:
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    return grey_pixels(image)


def _odd(size: float) -> int:
    return max(1, int(size) // 2 * 2 + 1)


def _max_filter(pixels: torch.Tensor, size: int) -> torch.Tensor:
    """Grey-level dilation of a (1, 1, H, W) image over a size x size window (max_pool's padding is -inf, so the
    window just ends at the edge)."""
    pixels = F.max_pool2d(pixels, (1, size), stride=1, padding=(0, size // 2))
    return F.max_pool2d(pixels, (size, 1), stride=1, padding=(size // 2, 0))


def _min_filter(pixels: torch.Tensor, size: int) -> torch.Tensor:
    return -_max_filter(-pixels, size)


def _blur(pixels: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a (1, 1, H, W) image, edges replicated."""
    radius = math.ceil(2.5 * sigma)
    taps = torch.exp(-(torch.arange(-radius, radius + 1) / sigma) ** 2 / 2)
    taps = (taps / taps.sum()).view(1, 1, 1, -1)
    pixels = F.pad(pixels, (radius, radius, radius, radius), mode="replicate")
    return F.conv2d(F.conv2d(pixels, taps), taps.transpose(2, 3))


def _shrink(pixels: torch.Tensor, most: int) -> torch.Tensor:
    """A (1, 1, H, W) image scaled down (antialiased, aspect kept) to at most `most` pixels."""
    height, width = pixels.shape[-2:]
    if height * width <= most:
        return pixels
    scale = math.sqrt(most / (height * width))
    size = [max(1, round(side * scale)) for side in pixels.shape[-2:]]
    return F.interpolate(pixels, size=size, mode="bilinear", antialias=True, align_corners=False)


def _robust_level(values: torch.Tensor) -> tuple[float, float]:
    """Median and noise (1.4826 x median absolute deviation) of a mostly-background image."""
    median = values.median()
    return median.item(), 1.4826 * (values - median).abs().median().item()


def ink_map(image: Image.Image) -> torch.Tensor:
    """(H, W) ink strength in [0, 1] of a picture of one digit, light ink on 0, paper and lighting removed.

    Polarity comes from the picture itself: after the light falling across it (a wide blur) is taken out,
    the ink is the side with the stronger extremes. The paper under uneven light is then a grey-level opening
    wider than any stroke; what rises above it by more than the noise is ink. Raises BlankImageError.
    """
    pixels = _shrink(_grayscale(image)[None, None], WORK_PIXELS)
    smooth = _blur(pixels, 1.0) if min(pixels.shape[-2:]) >= 48 else pixels  # camera noise; small ones stay sharp
    coarse = _shrink(smooth, COARSE_PIXELS)
    short_side = min(coarse.shape[-2:])  # a digit is about as tall as the picture's short side, or less
    detail = coarse - _blur(coarse, max(1.0, short_side / 6))
    if -detail.quantile(0.002) > detail.quantile(0.998):  # dark ink on light paper
        smooth, coarse = 1 - smooth, 1 - coarse
    window = max(3, _odd(0.3 * short_side))  # wider than a stroke: the opening keeps paper and light only
    paper = _max_filter(_min_filter(coarse, window), window)
    paper = F.interpolate(paper, size=smooth.shape[-2:], mode="bilinear", align_corners=False)
    ink = smooth - paper
    level, noise = _robust_level(ink)
    peak = ink.max().item()
    contrast = peak - level
    if contrast < MIN_CONTRAST or contrast < MIN_SIGNAL * noise:
        raise BlankImageError("blank image: no digit found")
    floor = level + 2 * noise
    return ((ink - floor) / (peak - floor)).clamp(0, 1)[0, 0]


def preprocess(image: Image.Image) -> torch.Tensor:
    """Any picture of one digit to a normalised (1, 28, 28) tensor made the way MNIST digits were.

    Ink map (see ink_map); cropped to the digit (ink above a quarter of its peak, isolated specks ignored);
    strokes thinner than MNIST's widened; fitted into 20x20 keeping the aspect ratio and stretched so its
    strongest stroke is 1; pasted into 28x28 with its centre of mass at the centre. Raises BlankImageError.
    """
    ink = ink_map(image)[None, None]
    mask = ink > 0.25
    mask &= F.avg_pool2d(mask.float(), 3, stride=1, padding=1) > 0.3  # a 1 px line has 3 of 9; specks 1 or 2
    if not mask.any():
        raise BlankImageError("blank image: no digit found")
    ink = ink * _max_filter(mask.float(), _odd(min(ink.shape[-2:]) / 40) + 2)  # nothing far from a stroke
    rows = mask[0, 0].any(1).nonzero().flatten()
    cols = mask[0, 0].any(0).nonzero().flatten()
    digit = ink[..., rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    box = mask[..., rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].float()

    edge = box - _min_filter(box, 3)
    width = 2 * box.sum() / edge.sum().clamp(min=1)  # stroke width: area over half the outline
    wanted = MNIST_STROKE * max(digit.shape[-2:])
    if width < wanted - 1:  # a k x k dilation widens a stroke by k - 1
        digit = _max_filter(digit, _odd(wanted - width + 1))

    scale = DIGIT_BOX / max(digit.shape[-2:])
    height, width = (max(1, round(side * scale)) for side in digit.shape[-2:])
    digit = F.interpolate(digit, size=(height, width), mode="bilinear", antialias=True, align_corners=False)[0, 0]
    digit = (digit / digit.max()).clamp(0, 1)

    mass = digit.sum()
    centre_y = (digit.sum(1) * torch.arange(height)).sum() / mass
    centre_x = (digit.sum(0) * torch.arange(width)).sum() / mass
    # MNIST's centres of mass sit on pixel (14, 14); keep the whole box inside the frame.
    top = min(max(round(SIDE // 2 - centre_y.item()), 0), SIDE - height)
    left = min(max(round(SIDE // 2 - centre_x.item()), 0), SIDE - width)
    canvas = torch.zeros(SIDE, SIDE)
    canvas[top : top + height, left : left + width] = digit
    return normalize(canvas).unsqueeze(0)


def read_image(path: str) -> Image.Image:
    """Open and decode an image file, upright per its EXIF orientation; ImageError with a short reason."""
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise ImageError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # big phone photos are fine here
            with Image.open(path) as image:
                image.draft("L", (2 * 384, 2 * 384))  # JPEG: decode at a reduced size, much less memory
                image.load()
                return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except IsADirectoryError:
        raise ImageError("a folder, not an image file") from None
    except UnidentifiedImageError:
        raise ImageError("not a readable image file") from None
    except Image.DecompressionBombError:
        raise ImageError(f"image too large: over {2 * Image.MAX_IMAGE_PIXELS:,} pixels (Pillow's safety limit); "
                         "shrink it first") from None
    except OSError as error:
        raise ImageError(f"cannot decode image ({error})") from None


@torch.inference_mode()
def top3(model: nn.Module, inputs: list[torch.Tensor]) -> list[list[dict]]:
    """For each preprocessed (1, 28, 28) input: the three likeliest digits with their probabilities."""
    batch = torch.stack(inputs).to(next(model.parameters()).device)  # one batch for all images
    values, digits = model.eval()(batch).softmax(1).topk(3)
    return [[{"digit": d, "probability": round(p, 4)} for d, p in zip(top_digits, top_values, strict=True)]
            for top_values, top_digits in zip(values.tolist(), digits.tolist(), strict=True)]
