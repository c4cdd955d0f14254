"""Classify image files with a trained checkpoint: `python -m mnist_lib.predict CKPT IMAGE [IMAGE ...] [--json]`.

Images of any size and colour are turned into MNIST-like digits first (see `preprocess`).
Exit status: 0 all predicted, 1 some image could not be read or held no digit, 2 unusable checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.transforms.functional import pil_to_tensor

from .data import normalize
from .engine import CheckpointError, load_checkpoint, model_from_checkpoint

DIGIT_BOX = 20  # MNIST digits were fitted into 20x20, then centred by mass in 28x28
SIDE = 28
INK_THRESHOLD = 0.25  # of the contrast-stretched image: what counts as digit for the bounding box
MIN_CONTRAST = 0.1  # brightest pixel above the background by less than this: no digit


class BlankImageError(ValueError):
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
    """Open and decode an image file, upright per its EXIF orientation; ValueError with a short reason."""
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except UnidentifiedImageError:
        raise ValueError("not a readable image file") from None
    except (OSError, Image.DecompressionBombError) as error:
        raise ValueError(f"cannot decode image ({error})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnist_lib.predict", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="checkpoint.pt of a training run")
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...) of single digits")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    args = parser.parse_args(argv)

    try:
        model = model_from_checkpoint(load_checkpoint(args.checkpoint))
    except (ValueError, RuntimeError) as error:  # CheckpointError, an unknown model name, weights of another shape
        reason = str(error).splitlines()[0]
        if not isinstance(error, CheckpointError):
            reason = f"{args.checkpoint} does not fit the current model code ({reason.rstrip(':')})"
        print(f"error: {reason}", file=sys.stderr)
        return 2

    readable, inputs = [], []
    for path in args.images:
        try:
            inputs.append(preprocess(read_image(path)))
            readable.append(path)
        except ValueError as error:
            print(f"{path}: error: {error}", file=sys.stderr)
    if inputs:
        with torch.inference_mode():  # one batch: much faster than image by image on a busy CPU
            values, digits = model(torch.stack(inputs)).softmax(1).topk(3)
        for path, top_values, top_digits in zip(readable, values.tolist(), digits.tolist(), strict=True):
            top3 = [{"digit": d, "probability": round(p, 4)} for d, p in zip(top_digits, top_values, strict=True)]
            if args.json:
                print(json.dumps({"path": path, **top3[0], "top3": top3}))
            else:
                print(f"{path}: {top_digits[0]} (p={top_values[0]:.3f})")
    return 1 if len(readable) < len(args.images) else 0


if __name__ == "__main__":
    sys.exit(main())
