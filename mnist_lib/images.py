"""Image files of single digits to MNIST-style input, and the model's top-3 answer for them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import nn
from torchvision.transforms.functional import pil_to_tensor

from .data import normalize
from .errors import UserError

DIGIT_BOX = 20  # MNIST digits were fitted into 20x20, then centred by mass in 28x28
SIDE = 28
INK_THRESHOLD = 0.25  # of the contrast-stretched image: what counts as digit for the bounding box
MIN_CONTRAST = 0.1  # brightest pixel above the background by less than this: no digit


class ImageError(UserError):
    """A file that cannot be read as a picture of a digit."""

    exit_code = 1


class BlankImageError(ImageError):
    """The image holds no visible digit."""


def _grayscale(image: Image.Image) -> torch.Tensor:
    """(H, W) float pixels in [0, 1]; transparency is composited onto white (drawing apps' exports)."""
    if "A" in image.getbands() or "transparency" in image.info:
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    return pil_to_tensor(image.convert("L"))[0].float() / 255


def preprocess(image: Image.Image) -> torch.Tensor:
    """Any picture of one digit to a normalised (1, 28, 28) tensor made the way MNIST digits were.

    Grayscale; inverted when the border is light, so the digit is white on black; background stretched to 0
    and the brightest ink to 1; cropped to the digit's bounding box; fitted into 20x20 keeping the aspect
    ratio; pasted into 28x28 so that its centre of mass is at the centre. Raises BlankImageError.
    """
    pixels = _grayscale(image)
    border = torch.cat([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if border.median() > 0.5:
        pixels, border = 1 - pixels, 1 - border
    background = border.median()
    contrast = pixels.max() - background
    if contrast < MIN_CONTRAST:
        raise BlankImageError("blank image: no digit found")
    pixels = ((pixels - background) / contrast).clamp(0, 1)

    rows = (pixels > INK_THRESHOLD).any(1).nonzero().flatten()
    cols = (pixels > INK_THRESHOLD).any(0).nonzero().flatten()
    digit = pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = DIGIT_BOX / max(digit.shape)
    height, width = (max(1, round(side * scale)) for side in digit.shape)
    digit = F.interpolate(digit[None, None], size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    digit = digit[0, 0].clamp(0, 1)

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
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except IsADirectoryError:
        raise ImageError("a folder, not an image file") from None
    except UnidentifiedImageError:
        raise ImageError("not a readable image file") from None
    except (OSError, Image.DecompressionBombError) as error:
        raise ImageError(f"cannot decode image ({error})") from None


@torch.inference_mode()
def top3(model: nn.Module, inputs: list[torch.Tensor]) -> list[list[dict]]:
    """For each preprocessed (1, 28, 28) input: the three likeliest digits with their probabilities."""
    values, digits = model.eval()(torch.stack(inputs)).softmax(1).topk(3)  # one batch for all images
    return [[{"digit": d, "probability": round(p, 4)} for d, p in zip(top_digits, top_values, strict=True)]
            for top_values, top_digits in zip(values.tolist(), digits.tolist(), strict=True)]
