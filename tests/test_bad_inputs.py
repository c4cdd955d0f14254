"""Every bad input of the README's reliability table: one line naming what is wrong, the exit status it lists,
nothing already written touched. Each row of the table is a case here, and the table is checked against them."""

import hashlib
from pathlib import Path

import pytest
import torch
from PIL import Image

from mnist_lib import cli
from mnist_lib.config import TrainConfig
from mnist_lib.runs import train

REPO = Path(__file__).resolve().parents[1]

# (what the user did, argv with placeholders, exit status, the message the README table quotes)
CASES = [
    ("invalid setting", ["train", "--epochs", "0"], 2, "epochs=0 is invalid: epochs must be a positive integer"),
    ("unknown model", ["train", "--model", "vgg"], 2, "model must be one of light, lightest, superlight"),
    ("model argument the model does not take", ["train", "--model", "lightest", "--model-args", '{"width": 3}'], 2,
     "lightest takes dropout"),
    ("GPU that is not there", ["train", "--device", "cuda:7"], 2, "no such CUDA device here"),
    ("BatchNorm recalibration for a model without BatchNorm", ["train", "--model", "light", "--recalibrate-bn",
                                                               "1000"], 2, "light: it has no BatchNorm layers"),
    ("BatchNorm recalibration with a moving average", ["train", "--recalibrate-bn", "1000", "--ema-decay", "0.998"],
     2, "is invalid with ema_decay=0.998: use one of the two"),
    ("--out names a file", ["train", "--out", "{file}"], 2, "is a file; pass a folder"),
    ("MNIST missing, --no-download", ["train", "--data-dir", "{empty_dir}"], 1, "MNIST not found in"),
    ("checkpoint path that does not exist", ["evaluate", "{missing}"], 2, "does not exist (pass the checkpoint.pt"),
    ("truncated checkpoint", ["train", "--resume", "{truncated}"], 2, "is not a readable checkpoint"),
    ("text file as checkpoint", ["evaluate", "{text}"], 2, "is not a readable checkpoint"),
    ("torch file that is not a checkpoint", ["evaluate", "{foreign}"], 2,
     "is a torch file but not an mnist_lib checkpoint"),
    ("weights that do not fit the model code", ["evaluate", "{misfit}"], 2, "does not fit the model code"),
    ("checkpoint of an unknown model", ["train", "--resume", "{unknown}"], 2, "does not fit the model code"),
    ("evaluating a checkpoint of an unknown model", ["evaluate", "{unknown}"], 2, "'vgg', model='vgg' is invalid"),
    ("resuming weights that do not fit the model code", ["train", "--resume", "{misfit}"], 2,
     "does not fit the model code"),
    ("resuming a complete run", ["train", "--resume", "{complete}"], 2, "there is nothing to resume"),
    ("resuming with a changed setting", ["train", "--resume", "{partial}", "--epochs", "20"], 2,
     "epochs differ from the run's (only device may change)"),
    ("resuming into another folder", ["train", "--resume", "{partial}", "--out", "{tmp}"], 2,
     "--out cannot be used with --resume"),
    ("unknown device for evaluate", ["evaluate", "{complete}", "--device", "tpu"], 2,
     "device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    ("blank picture", ["predict", "{complete}", "{blank}", "{digit}"], 1, "blank image: no digit found"),
    ("text file as picture", ["predict", "{complete}", "{text}", "{digit}"], 1, "not a readable image file"),
    ("empty picture file", ["predict", "{complete}", "{empty}", "{digit}"], 1, "empty file (0 bytes)"),
    ("picture over Pillow's size limit", ["predict", "{complete}", "{huge}", "{digit}"], 1, "image too large"),
    ("folder as picture", ["predict", "{complete}", "{tmp}", "{digit}"], 1, "a folder, not an image file"),
    ("missing picture", ["predict", "{complete}", "{missing}", "{digit}"], 1, "no such file"),
    ("records --root names a file", ["records", "--root", "{file}"], 2, "is not a folder"),
]
NEEDS_DATA = {"train", "evaluate"}


def digest_tree(folder: Path) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def files(tmp_path_factory, small_train, small_test, data_dir):
    tmp = tmp_path_factory.mktemp("bad-inputs")
    quick = dict(train_split=small_train, test_split=small_test, runs_dir=tmp / "runs", verbose=False)
    complete = train(TrainConfig(epochs=1, seed=3, device="cpu"), **quick).checkpoint
    partial = train(TrainConfig(epochs=3, seed=4, device="cpu"), stop_after=1, **quick).checkpoint
    paths = {"tmp": tmp, "complete": complete, "partial": partial, "missing": tmp / "nope.pt",
             "truncated": tmp / "truncated.pt", "text": tmp / "notes.txt", "foreign": tmp / "tensor.pt",
             "misfit": tmp / "misfit.pt", "unknown": tmp / "unknown.pt", "file": tmp / "a-file",
             "empty_dir": tmp / "no-mnist", "blank": tmp / "blank.png", "digit": tmp / "digit.png",
             "empty": tmp / "empty.png", "huge": tmp / "huge.png"}
    paths["truncated"].write_bytes(complete.read_bytes()[: complete.stat().st_size // 2])
    paths["text"].write_text("hello")
    paths["file"].write_text("keep me")
    paths["empty_dir"].mkdir()
    torch.save(torch.zeros(3), paths["foreign"])
    state = torch.load(complete, weights_only=True)
    state["state_dict"] = {k: v[..., :1] if v.dim() else v for k, v in state["state_dict"].items()}
    torch.save(state, paths["misfit"])
    torch.save({**state, "model_name": "vgg"}, paths["unknown"])
    Image.new("L", (40, 30), 200).save(paths["blank"])
    Image.fromarray((small_test.images[0, 0] * 80 + 20).clamp(0, 255).byte().numpy()).save(paths["digit"])
    paths["empty"].write_bytes(b"")
    Image.new("1", (20_000, 20_000)).save(paths["huge"])  # 400 M pixels, a 50 kB file
    return paths


@pytest.mark.parametrize("what, argv, status, message", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_one_line_and_touches_nothing(what, argv, status, message, files, data_dir, capsys):
    argv = [str(files[a[1:-1]]) if a[1:-1] in files and a[0] == "{" else a for a in argv]
    if argv[0] in NEEDS_DATA and "--data-dir" not in argv:
        argv += ["--data-dir", str(data_dir)]
    if argv[0] == "train":
        argv += ["--no-download"]
        if "--resume" not in argv:  # a new run: kept small in case a bug lets it start
            argv += ["--train-limit", "200"] + ([] if "--epochs" in argv else ["--epochs", "1"])
    before = digest_tree(files["tmp"])
    try:
        got = cli.main(argv)
    except SystemExit as exit_:
        got = exit_.code
    out, err = capsys.readouterr()
    assert got == status, err
    assert len(err.splitlines()) == 1 and message in err, err
    if argv[0] == "predict":  # the good picture is still predicted
        assert err.startswith(argv[2] + ": error: ") and out.startswith(files["digit"].as_posix() + ": ")
    else:
        assert err.startswith(f"python -m mnist_lib {argv[0]}: error: ") and out == ""
    assert digest_tree(files["tmp"]) == before


def test_a_bug_is_not_disguised_as_a_usage_error(tmp_path, data_dir, monkeypatch):
    """Only the library's own errors become one line: a ValueError from inside a run (a bug) keeps its traceback."""
    def broken_fit(*args, **kwargs):
        raise ValueError("a bug deep inside the loop")

    monkeypatch.setattr("mnist_lib.runs.fit", broken_fit)
    with pytest.raises(ValueError, match="a bug deep inside the loop"):
        cli.main(["train", "--epochs", "1", "--train-limit", "200", "--no-download", "--data-dir", str(data_dir),
                  "--out", str(tmp_path)])


def test_the_readme_reliability_table_lists_every_case():
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Reliability"):]
    table = table[: table.index("\n## ", 1)]
    for what, _, status, message in CASES:
        row = next((line for line in table.splitlines() if line.startswith(f"| {what} |")), None)
        assert row is not None, f"README reliability table lacks a row '{what}'"
        assert message in row and f"| {status} |" in row, row
