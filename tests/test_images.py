import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from mnist_lib import cli, images, photos
from mnist_lib.data import load_split, mnist_dataset
from mnist_lib.runs import load_model

REPO = Path(__file__).resolve().parents[1]
DIGITS = 20


@pytest.fixture(scope="module")
def mnist_test(data_dir):
    return mnist_dataset(False, data_dir, download=False)


def pictures(mnist_test) -> dict[str, list[Image.Image]]:
    """The first test digits redrawn three ways a user's picture might look."""
    raw = [Image.fromarray(mnist_test.data[i].numpy()) for i in range(DIGITS)]

    def coloured(image: Image.Image) -> Image.Image:  # dark blue ink on cream, off centre on a 90x120 canvas
        canvas = Image.new("RGB", (90, 120), (250, 240, 200))
        ink = Image.new("RGB", (56, 56), (20, 30, 120))
        canvas.paste(ink, (30, 10), mask=image.resize((56, 56), Image.BILINEAR))
        return canvas

    return {
        "white-on-black": [image.resize((100, 100), Image.BILINEAR) for image in raw],
        "black-on-white": [Image.eval(image, lambda v: 255 - v).resize((100, 100), Image.BILINEAR) for image in raw],
        "colour-jpeg": [coloured(image) for image in raw],
    }


def test_preprocess_reproduces_mnist_from_an_mnist_digit(data_dir, mnist_test):
    split = load_split(False, data_dir, download=False, limit=200)
    remade = torch.stack([images.preprocess(Image.fromarray(mnist_test.data[i].numpy())) for i in range(200)])
    assert remade.shape == (200, 1, 28, 28)
    assert (remade - split.images).abs().mean() < 0.02  # normalised units; pixels span 3.2


def test_predict_recovers_mnist_labels_from_rescaled_and_recoloured_pictures(
    trained_checkpoint, mnist_test, tmp_path, capsys
):
    paths = {}
    for style, drawn in pictures(mnist_test).items():
        suffix = ".jpg" if style == "colour-jpeg" else ".png"
        paths[style] = [tmp_path / f"{style}-{i}{suffix}" for i in range(DIGITS)]
        for image, path in zip(drawn, paths[style], strict=True):
            image.save(path)
    all_paths = [str(p) for style in paths.values() for p in style]

    assert cli.main(["predict", str(trained_checkpoint), *all_paths, "--json"]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in results] == all_paths
    assert all(set(r) == {"path", "digit", "probability", "top3"} and len(r["top3"]) == 3 for r in results)
    assert all(r["top3"][0] == {"digit": r["digit"], "probability": r["probability"]} for r in results)
    truth = mnist_test.targets[:DIGITS].tolist()
    for index, style in enumerate(paths):
        predicted = [r["digit"] for r in results[index * DIGITS : (index + 1) * DIGITS]]
        correct = sum(p == t for p, t in zip(predicted, truth, strict=True))
        assert correct >= 18, f"{style}: {correct}/{DIGITS} correct"


def test_transparent_png_with_dark_ink_is_read_on_white(trained_checkpoint, mnist_test, tmp_path, capsys):
    alpha = Image.fromarray(mnist_test.data[0].numpy()).resize((64, 64))
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    image.paste(Image.new("RGBA", (64, 64), (0, 0, 0, 255)), mask=alpha)
    image.save(tmp_path / "seven.png")
    assert cli.main(["predict", str(trained_checkpoint), str(tmp_path / "seven.png")]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'seven.png'}: {mnist_test.targets[0].item()} (p=")


def test_bad_images_give_one_error_line_each_and_the_rest_are_predicted(trained_checkpoint, mnist_test, tmp_path,
                                                                         capsys):
    good, corrupt, blank, missing = (tmp_path / name for name in ("good.png", "corrupt.png", "blank.png", "no.png"))
    Image.fromarray(mnist_test.data[1].numpy()).save(good)
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    Image.new("L", (40, 30), 255).save(blank)

    status = cli.main(["predict", str(trained_checkpoint), str(corrupt), str(good), str(blank), str(missing)])
    out, err = capsys.readouterr()
    assert status == 1
    assert re.fullmatch(rf"{re.escape(str(good))}: {mnist_test.targets[1].item()} \(p=[01]\.\d{{3}}\)\n", out)
    assert err.splitlines() == [
        f"{corrupt}: error: not a readable image file",
        f"{blank}: error: blank image: no digit found",
        f"{missing}: error: no such file",
    ]


@pytest.mark.parametrize("content", ["garbage", "foreign weights"])
def test_bad_checkpoint_gives_one_error_line_and_exit_2(content, mnist_test, tmp_path, capsys):
    checkpoint, image = tmp_path / "checkpoint.pt", tmp_path / "digit.png"
    if content == "garbage":
        checkpoint.write_bytes(b"not a checkpoint")
    else:  # a well-formed record whose weights do not fit the model
        torch.save({"model_name": "superlight", "config": {}, "state_dict": {}, "history": [], "parameters": 0},
                   checkpoint)
    Image.fromarray(mnist_test.data[0].numpy()).save(image)
    assert cli.main(["predict", str(checkpoint), str(image)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("python -m mnist_lib predict: error: ")
    assert str(checkpoint) in err or "does not fit" in err


def test_command_line_entry_point(trained_checkpoint, mnist_test, tmp_path):
    Image.fromarray(mnist_test.data[0].numpy()).save(tmp_path / "seven.png")
    command = [sys.executable, "-m", "mnist_lib", "predict", str(trained_checkpoint), str(tmp_path / "seven.png")]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{tmp_path / 'seven.png'}: 7 (p=")


@pytest.fixture(scope="module")
def photo_set(data_dir):
    return photos.photo_set(data_dir)


@pytest.fixture(scope="module")
def committed_superlight(trained_checkpoint):
    return load_model(trained_checkpoint)


@pytest.fixture(scope="module")
def readings_of(photo_set, committed_superlight, data_dir):
    """The committed SuperLight's readings of the photo set of a seed, each set read once per module."""
    cache = {}

    def read(seed: int):
        if seed not in cache:
            pictures = photo_set if seed == 0 else photos.photo_set(data_dir, seed=seed)
            cache[seed] = photos.read_photos(committed_superlight, pictures)
        return cache[seed]

    return read


def test_the_photo_set_is_seeded_and_covers_every_condition(photo_set, data_dir):
    assert len(photo_set) >= 200
    assert {p.condition for p in photo_set} == set(photos.CONDITIONS)
    assert {p.source.split(" #")[0] for p in photo_set} == {"MNIST test", "font", "pen"}
    assert {p.image.mode for p in photo_set} >= {"L", "RGB", "RGBA", "P"}
    assert any(p.image.format == "JPEG" for p in photo_set)
    again = photos.photo_set(data_dir)
    assert [p.image.tobytes() for p in again] == [p.image.tobytes() for p in photo_set]
    assert [p.image.tobytes() for p in photos.photo_set(data_dir, seed=1)[:5]] != [
        p.image.tobytes() for p in photo_set[:5]]


UNSEEN = pytest.mark.parametrize("seed", [0, 1, 2], ids=["the set the preprocessing was tuned on", "unseen set 1",
                                                          "unseen set 2"])


def test_the_committed_superlight_reads_the_tuned_set_counting_every_picture(readings_of):
    """The bar set for predict, >= 97% of all pictures and >= 95% under every condition, counting every picture
    of the set the preprocessing was tuned on, the printed 1 included (the README's photo-sets table shows the
    unseen sets, where it is missed)."""
    table = photos.accuracy_by_condition(readings_of(0)).set_index("condition")
    assert table.loc["all", "accuracy (%)"] >= 97, table
    assert (table["accuracy (%)"] >= 95).all(), table


@UNSEEN
def test_the_committed_superlight_reads_photographed_digits(seed, readings_of):
    """>= 97% of all pictures but the printed 1 (test_the_printed_one_is_a_known_miss), on the tuned set and on sets
    of other MNIST test digits; >= 99% of the handwritten ones (MNIST and pen)."""
    readings = readings_of(seed)
    table = photos.accuracy_by_condition(readings[~photos.is_printed_one(readings)]).set_index("condition")
    assert table.loc["all", "accuracy (%)"] >= 97, table
    handwritten = readings[readings["source"] != "font"]
    assert handwritten["correct"].mean() >= 0.99, handwritten[~handwritten["correct"]]


@UNSEEN
def test_the_preprocessing_loses_no_digit_the_model_reads(seed, readings_of, committed_superlight, data_dir):
    """Every MNIST picture whose raw 28x28 test image the model reads correctly is read correctly as a photo, under
    every condition: the MNIST misses left are the model's own."""
    readings = readings_of(seed)
    mnist = readings[readings["source"].str.startswith("MNIST test")]
    index = torch.tensor([int(source.split("#")[1]) for source in mnist["source"]])
    raw = load_split(False, data_dir, download=False)
    with torch.no_grad():
        raw_right = (committed_superlight.eval()(raw.images[index]).argmax(1) == raw.labels[index]).numpy()
    assert len(mnist) == 140 and raw_right.sum() >= 135
    lost = mnist[raw_right & ~mnist["correct"].to_numpy()]
    assert lost.empty, lost


def test_the_printed_one_is_a_known_miss(readings_of):
    """A limit of the training data, not of the preprocessing: when a model reads the flagged 1, this test fails
    and the README's note on it should go."""
    readings = readings_of(0)
    ones = readings[photos.is_printed_one(readings)]
    assert (ones["predicted"] == 7).mean() >= 0.5, ones


def test_preprocess_survives_what_broke_the_old_one(mnist_test):
    """Dark ink on dark-grey paper (the old fixed threshold saw a blank) and a 3 px pen on a 280 px canvas (the
    old pipeline made a faint stroke that read as 1)."""
    seven = mnist_test.data[0].float() / 255  # a 7
    paper = 0.35 - 0.3 * torch.nn.functional.interpolate(seven[None, None], size=(140, 140), mode="bilinear")[0, 0]
    dark = images.preprocess(Image.fromarray((paper * 255).byte().numpy()))
    thin = images.preprocess(photos.pen_digit(7, 280, 3, random.Random(0)))
    for made in (dark, thin):
        pixels = made * 0.3081 + 0.1307
        assert pixels.max() > 0.99  # the strongest stroke is full ink after the stretch
        assert (pixels > 0.5).sum() > 60  # strokes as wide as MNIST's, not a hairline
