"""Pictures of single digits as a phone camera, a scanner or a paint program would give them, made from MNIST
*test* digits, a printed font and pen strokes: the test set of `images.preprocess` and the notebooks' gallery.

Every picture is drawn from an ink mask (white digit on black, any size) under one named condition, with a
seeded random paper, ink, canvas and placement; `photo_set()` returns the same pictures for the same seed.
"""

from __future__ import annotations

import io
import math
import os
import random
from dataclasses import dataclass

import pandas as pd
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from .data import mnist_dataset
from .images import BlankImageError, grey_pixels, preprocess, top3

CONDITIONS = (
    "dark ink on white paper",
    "dark ink on grey paper",
    "light on dark",
    "uneven light",
    "camera noise",
    "JPEG quality 60",
    "thin strokes on a large canvas",
    "RGB, RGBA, palette; odd sizes",
)

# Pen-stroke digits: polylines in a unit box (x right, y down), drawn the way MNIST writers wrote them.
_ARC = 24  # points per ellipse


def _ellipse(cx: float, cy: float, rx: float, ry: float, start: float = 0, end: float = 360) -> list:
    steps = [start + (end - start) * i / _ARC for i in range(_ARC + 1)]
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a))) for a in steps]


PEN_DIGITS = {
    0: [_ellipse(0.5, 0.5, 0.3, 0.45)],
    1: [[(0.55, 0.03), (0.45, 0.97)]],
    2: [_ellipse(0.5, 0.3, 0.32, 0.25, 190, 360) + [(0.7, 0.58), (0.15, 0.95), (0.9, 0.95)]],
    3: [_ellipse(0.48, 0.27, 0.3, 0.22, 200, 450), _ellipse(0.48, 0.72, 0.34, 0.25, 270, 500)],
    4: [[(0.25, 0.03), (0.15, 0.6), (0.88, 0.6)], [(0.72, 0.05), (0.7, 0.97)]],
    5: [[(0.85, 0.05), (0.3, 0.05), (0.25, 0.45)], _ellipse(0.5, 0.68, 0.34, 0.28, 230, 500)],
    6: [[(0.72, 0.03), (0.45, 0.2), (0.27, 0.45), (0.2, 0.7)], _ellipse(0.5, 0.72, 0.3, 0.25, 180, 540)],
    7: [[(0.1, 0.06), (0.9, 0.06), (0.42, 0.97)]],
    8: [_ellipse(0.5, 0.26, 0.25, 0.22), _ellipse(0.5, 0.72, 0.3, 0.25)],
    9: [_ellipse(0.5, 0.28, 0.28, 0.24), [(0.78, 0.28), (0.74, 0.6), (0.68, 0.97)]],
}


def pen_digit(digit: int, side: int, width: int, rng: random.Random) -> Image.Image:
    """A digit drawn with a `width`-pixel pen on a `side`x`side` canvas (white on black), slightly slanted."""
    slant, stretch = rng.uniform(-0.15, 0.15), rng.uniform(0.75, 0.95)
    image = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(image)
    for stroke in PEN_DIGITS[digit]:
        points = [(side * (0.5 + stretch * 0.7 * ((x - 0.5) + slant * (0.5 - y))), side * (0.15 + 0.7 * y))
                  for x, y in stroke]
        draw.line(points, fill=255, width=width, joint="curve")
    return image


def font_digit(digit: int, size: int) -> Image.Image:
    """A printed digit in Pillow's built-in font (white on black, tight canvas with a margin)."""
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(str(digit))
    margin = size // 4
    image = Image.new("L", (right - left + 2 * margin, bottom - top + 2 * margin), 0)
    ImageDraw.Draw(image).text((margin - left, margin - top), str(digit), fill=255, font=font)
    return image


@dataclass
class Photo:
    image: Image.Image
    label: int
    condition: str
    source: str  # "MNIST test #i", "font", "pen"


def _place(ink: Image.Image, canvas: tuple[int, int], digit_height: int, rng: random.Random) -> torch.Tensor:
    """The ink mask scaled to `digit_height`, at a random spot of a canvas: (H, W) coverage in [0, 1]."""
    scale = digit_height / ink.height
    ink = ink.resize((max(1, round(ink.width * scale)), digit_height), Image.BICUBIC)
    width, height = canvas
    coverage = Image.new("L", canvas, 0)
    coverage.paste(ink, (rng.randint(0, max(0, width - ink.width)), rng.randint(0, max(0, height - ink.height))))
    return grey_pixels(coverage)


def _light(height: int, width: int, rng: random.Random, darkest: float) -> torch.Tensor:
    """Illumination falling linearly from 1 to `darkest` across the picture in a random direction."""
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
    ramp = xs * math.cos(angle) + ys * math.sin(angle)
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    return 1 - (1 - darkest) * ramp


def _to_image(pixels: torch.Tensor) -> Image.Image:
    """(H, W) floats as an L image, rounding down like torchvision's to_pil_image."""
    return Image.fromarray(pixels.clamp(0, 1).mul(255).byte().numpy())


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def render(ink: Image.Image, condition: str, rng: random.Random, generator: torch.Generator) -> Image.Image:
    """One picture of the ink mask under `condition` (see CONDITIONS)."""
    side = rng.randint(90, 400)
    canvas = (side, side)
    if condition == "RGB, RGBA, palette; odd sizes":
        canvas = rng.choice([(rng.randint(45, 90), rng.randint(150, 600)), (rng.randint(150, 700), rng.randint(45, 90)),
                             (rng.randint(29, 45), rng.randint(29, 45))])
    if condition == "thin strokes on a large canvas":
        canvas = (ink.width, ink.height)
    coverage = _place(ink, canvas, int(min(canvas) * rng.uniform(0.6, 0.9)), rng) if (
        condition != "thin strokes on a large canvas") else grey_pixels(ink)
    height, width = coverage.shape

    paper, ink_level = rng.uniform(0.85, 1.0), rng.uniform(0.0, 0.2)
    if condition == "dark ink on grey paper":
        paper = rng.uniform(0.3, 0.95)
        ink_level = paper * rng.uniform(0.0, 0.35)
    if condition == "light on dark":
        paper, ink_level = rng.uniform(0.0, 0.3), rng.uniform(0.7, 1.0)
    pixels = paper + (ink_level - paper) * coverage
    if condition == "uneven light":
        pixels = pixels * _light(height, width, rng, darkest=rng.uniform(0.25, 0.45))
    if condition in ("camera noise", "uneven light"):
        std = rng.uniform(0.08, 0.15) if condition == "camera noise" else 0.03
        pixels = pixels + std * torch.randn(pixels.shape, generator=generator)
    image = _to_image(pixels)
    if condition == "JPEG quality 60":
        image = _jpeg(image.convert("RGB"), 60)
    if condition == "RGB, RGBA, palette; odd sizes":
        mode = rng.choice(["RGB", "RGBA", "P"])
        if mode == "RGBA":  # a drawing app's export: dark ink, transparent paper
            alpha = _to_image(coverage)
            image = Image.merge("RGBA", [_to_image(torch.full_like(coverage, ink_level))] * 3 + [alpha])
        else:
            tint = [rng.uniform(0.7, 1.0) for _ in range(3)]
            image = Image.merge("RGB", [_to_image(pixels * t) for t in tint])
            image = image.convert("P") if mode == "P" else image
    return image


def photo_set(data_dir: str | os.PathLike | None = None, per_condition: int = 30, seed: int = 0,
              download: bool = False) -> list[Photo]:
    """`per_condition` pictures under each of CONDITIONS: two thirds MNIST test digits (different ones for each
    condition and each seed), one third printed digits; pen strokes for the thin-stroke condition."""
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    test = mnist_dataset(False, data_dir, download)
    # Each seed draws its own block of MNIST test digits (seed 1 the block after seed 0's, ...), so that another
    # seed's set is new handwriting, not the same digits rendered again.
    photos, next_digit = [], seed * len(CONDITIONS) * per_condition % len(test)
    for condition in CONDITIONS:
        for i in range(per_condition):
            label = i % 10
            if condition == "thin strokes on a large canvas":
                side = rng.randint(250, 600)
                ink, source = pen_digit(label, side, rng.randint(2, 4), rng), "pen"
            elif i < per_condition * 2 // 3:
                ink = Image.fromarray(test.data[next_digit].numpy())
                label, source = int(test.targets[next_digit]), f"MNIST test #{next_digit}"
                next_digit += 1
            else:
                ink, source = font_digit(label, rng.randint(30, 120)), "font"
            photos.append(Photo(render(ink, condition, rng, generator), label, condition, source))
    return photos


def read_photos(model: nn.Module, photos: list[Photo]) -> pd.DataFrame:
    """One row per picture: condition, source, label, the model's answer and its probability (blank: None)."""
    inputs, rows = [], []
    for photo in photos:
        try:
            inputs.append(preprocess(photo.image))
        except BlankImageError:
            inputs.append(None)
        rows.append({"condition": photo.condition, "source": photo.source, "label": photo.label})
    readable = [x for x in inputs if x is not None]
    answers = iter(top3(model, readable) if readable else [])
    for row, x in zip(rows, inputs, strict=True):
        best = next(answers)[0] if x is not None else {"digit": None, "probability": None}
        row.update(predicted=best["digit"], probability=best["probability"], correct=best["digit"] == row["label"])
    return pd.DataFrame(rows)


def is_printed_one(readings: pd.DataFrame) -> pd.Series:
    """Which rows of read_photos are the font's 1, whose flag MNIST-trained models read as 7 (MNIST's ones are bare
    strokes): a limit of the training data that preprocessing does not paper over."""
    return (readings["source"] == "font") & (readings["label"] == 1)


def accuracy_by_condition(readings: pd.DataFrame) -> pd.DataFrame:
    """Pictures, correct answers and accuracy (%) per condition, in CONDITIONS order, then all together."""
    rows = [{"condition": c, "pictures": len(g), "correct": int(g["correct"].sum()),
             "accuracy (%)": round(100 * g["correct"].mean(), 1)}
            for c, g in readings.groupby("condition", sort=False)]
    rows.append({"condition": "all", "pictures": len(readings), "correct": int(readings["correct"].sum()),
                 "accuracy (%)": round(100 * readings["correct"].mean(), 1)})
    return pd.DataFrame(rows)
