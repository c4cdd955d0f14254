"""The command line: `python -m mnist_lib COMMAND ...` with COMMAND one of train, evaluate, predict, study,
series, promote, records.

One convention for all: a bad argument or input prints one line `python -m mnist_lib COMMAND: error: ...`
naming what was wrong and what is allowed, and exits 2 (1 when a resource is missing or an image unreadable);
nothing already written is touched. Unexpected errors are bugs and keep their traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from datetime import datetime
from pathlib import Path

from . import images, records, runs, studies
from .config import TrainConfig
from .data import load_split
from .errors import ConfigError, UserError
from .training import evaluate as evaluate_model
from .training import pick_device

PROG = "python -m mnist_lib"
SETTING_HELP = {spec.name: spec.metadata["help"] for spec in dataclasses.fields(TrainConfig)}


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument prints one line (no usage block) and exits 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{text!r} is not a JSON object such as '{{\"dropout\": 0.1}}'")
    return value


def _local_time(text: str) -> str:
    """An ISO date/time without a timezone (as runs record their start), normalised for comparison."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO time such as 2026-11-24T09:00") from None
    if value.tzinfo is not None:
        raise argparse.ArgumentTypeError(f"{text!r} has a timezone; give local time, as runs record it")
    return value.isoformat(timespec="seconds")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """A flag for every TrainConfig field (`--batch-size`, `--augment/--no-augment`, ...), help from its field.

    Flags left out are absent from the parsed namespace, so a resumed run can tell what was asked for."""
    hints = typing.get_type_hints(TrainConfig)
    for spec in dataclasses.fields(TrainConfig):
        flag = "--" + spec.name.replace("_", "-")
        default = spec.default_factory() if spec.default is dataclasses.MISSING else spec.default
        kwargs = {"default": argparse.SUPPRESS, "help": f"{SETTING_HELP[spec.name]} (default: {default!r})"}
        kind = hints[spec.name]
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _json_object if kind is dict else next(t for t in typing.get_args(kind) or (kind,)
                                                                  if t is not type(None))
            kwargs["metavar"] = spec.name.upper()
        parser.add_argument(flag, **kwargs)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder holding MNIST/raw (default: $MNIST_DATA_DIR, else data/)")
    parser.add_argument("--no-download", action="store_true", help="never download MNIST; fail if it is absent")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the train flags ask for; with --resume, the run's recorded one with the given flags on top
    (runs.train refuses any that differ, except --device)."""
    given = {spec.name: getattr(args, spec.name) for spec in dataclasses.fields(TrainConfig)
             if hasattr(args, spec.name)}
    if not args.resume:
        return TrainConfig(**given)
    if args.out:
        raise ConfigError("--out cannot be used with --resume: a resumed run stays in its own folder")
    return dataclasses.replace(TrainConfig.from_dict(runs.load_checkpoint(args.resume)["config"]), **given)


def train_command(args: argparse.Namespace) -> int:
    run = runs.train(config_from_args(args), data_dir=args.data_dir, download=not args.no_download,
                     runs_dir=args.out, resume=args.resume)
    if run.metrics["status"] == "complete":
        from . import plots  # matplotlib and seaborn: imported only by the commands that draw

        plots.save_run_figures(run.run_dir, run.metrics, run.test_logits, run.test_labels)
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    state = runs.load_checkpoint(args.checkpoint)
    device = pick_device(args.device)
    model = runs.model_from_checkpoint(state, device, source=args.checkpoint)
    result = {"checkpoint": args.checkpoint, "model": state["model_name"], "parameters": state["parameters"],
              "epoch": len(state["history"]),
              **evaluate_model(model, load_split(False, args.data_dir, device, not args.no_download))}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['model']} ({result['parameters']:,} parameters, epoch {result['epoch']}) on "
          f"{result['count']:,} test images: loss {result['loss']:.4f}, accuracy {result['accuracy']:.2f}%")
    print("per class: " + "  ".join(f"{d}: {a:.2f}%" for d, a in enumerate(result["per_class_accuracy"])))
    return 0


def predict_command(args: argparse.Namespace) -> int:
    model = runs.load_model(args.checkpoint)
    readable, inputs = [], []
    for path in args.images:
        try:
            inputs.append(images.preprocess(images.read_image(path)))
            readable.append(path)
        except images.ImageError as error:
            print(f"{path}: error: {error}", file=sys.stderr)
    for path, top3 in zip(readable, images.top3(model, inputs) if inputs else [], strict=True):
        if args.json:
            print(json.dumps({"path": path, **top3[0], "top3": top3}))
        else:
            print(f"{path}: {top3[0]['digit']} (p={top3[0]['probability']:.3f})")
    return 1 if len(readable) < len(args.images) else 0


def records_command(args: argparse.Namespace) -> int:
    if args.root and not Path(args.root).is_dir():
        raise ConfigError(f"--root {args.root} is not a folder (leave it out for the repo's training-logs/)")
    if args.check:
        if not records.sync_readme(write=False, root=args.root):
            print("README.md's generated tables are stale: run python -m mnist_lib records --update-readme")
            return 1
        return 0
    if args.update_readme:
        changed = not records.sync_readme(write=True, root=args.root)
        print("README.md's generated tables " + ("rewritten" if changed else "were already up to date"))
        return 0
    print(records.readme_table(args.root))
    return 0


def promote_command(args: argparse.Namespace) -> int:
    destination = records.promote(args.run, replace_existing=args.replace, data_dir=args.data_dir,
                                  download=not args.no_download)
    from . import plots

    plots.save_figures_of(destination, args.data_dir, not args.no_download)
    print(f"{destination.name} is in the committed series ({records.committed_runs_dir() / records.SERIES}); "
          f"now run python -m mnist_lib records --update-readme and commit training-logs/ and README.md")
    return 0


def series_command(args: argparse.Namespace) -> int:
    from . import plots

    augments = (True, False) if args.augment is None else (args.augment,)
    promoted = records.fill_series(
        args.seeds, tuple(args.models), augments, since=args.since, device=args.device, data_dir=args.data_dir,
        download=not args.no_download,
        on_promoted=lambda run_dir: plots.save_figures_of(run_dir, args.data_dir, not args.no_download))
    print(f"promoted {len(promoted)} run(s): {', '.join(promoted) or 'the series was complete'}")
    if promoted:
        print("now run python -m mnist_lib records --update-readme and commit training-logs/ and README.md")
    return 0


def study_command(args: argparse.Namespace) -> int:
    table = studies.run_study(args.name, device=args.device, data_dir=args.data_dir, download=not args.no_download)
    print(table.round(2).to_string(index=False))
    return 0


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description="Tiny MNIST CNNs: train, evaluate, predict, and the record.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    train = commands.add_parser("train", help="train a model and record the run in a new run folder",
                                description="Train a model and record the run (train.log, metrics.json, "
                                            "checkpoint.pt, figures) in a new run folder.")
    add_config_arguments(train)
    train.add_argument("--out", help="folder for run folders (default: $MNIST_RUNS_DIR, else runs/ in the repo)")
    train.add_argument("--resume", metavar="CHECKPOINT",
                       help="continue a run from its checkpoint.pt with its recorded settings (only --device "
                            "may change; a setting that differs is refused)")
    add_data_arguments(train)
    train.set_defaults(handler=train_command)

    evaluate = commands.add_parser("evaluate", help="test-set loss and accuracy of a checkpoint")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--device", default="auto", help=SETTING_HELP["device"])
    add_data_arguments(evaluate)
    evaluate.set_defaults(handler=evaluate_command)

    predict = commands.add_parser("predict", help="classify image files of single digits",
                                  description="Classify image files (any size or colour) of single digits. "
                                              "Exit 0: all predicted; 1: some file unreadable or blank.")
    predict.add_argument("checkpoint", help="checkpoint.pt of a training run")
    predict.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...) of single digits")
    predict.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    predict.set_defaults(handler=predict_command)

    study = commands.add_parser("study", help="train the runs of a named study (resumable) and print its table",
                                description="Train every run of a named study into training-logs/studies/NAME/ "
                                            "one after another: complete runs are skipped, cut-off ones resumed.")
    study.add_argument("name", choices=list(studies.STUDIES))
    study.add_argument("--device", default="auto", help=SETTING_HELP["device"])
    add_data_arguments(study)
    study.set_defaults(handler=study_command)

    promote = commands.add_parser("promote", help="put a finished run into the committed series (training-logs/)",
                                  description="Copy a complete 15-epoch run of the standard recipe into "
                                              "training-logs/ and list it in training-logs/series.json, the "
                                              "committed series that the README, notebooks and tests read.")
    promote.add_argument("run", help="the run folder, e.g. runs/superlight-aug-seed3-20261123-101500")
    promote.add_argument("--replace", action="store_true",
                         help="replace the series' run of the same model, augmentation and seed")
    add_data_arguments(promote)
    promote.set_defaults(handler=promote_command)

    series = commands.add_parser("series", help="train and promote the series members that are missing (resumable)",
                                 description="Train every committed-series member (model x with/without "
                                             "augmentation x seed, seed by seed) that training-logs/series.json "
                                             "lacks, or that is stale, and promote each as it finishes. Run the "
                                             "same command again after a kill: it resumes.")
    series.add_argument("--seeds", type=int, nargs="+", required=True, metavar="SEED", help="e.g. --seeds 1 2 3 4 5")
    series.add_argument("--models", nargs="+", default=list(records.SERIES_MODELS), choices=records.SERIES_MODELS)
    series.add_argument("--augment", action=argparse.BooleanOptionalAction,
                        help="only the members with (--augment) or without (--no-augment) augmentation (default: both)")
    series.add_argument("--since", metavar="ISO_TIME", type=_local_time,
                        help="members started before this time count as stale, e.g. 2026-11-24T09:00 to "
                             "regenerate the whole series after a recipe change")
    series.add_argument("--device", default="auto", help=SETTING_HELP["device"])
    add_data_arguments(series)
    series.set_defaults(handler=series_command)

    record = commands.add_parser("records", help="the committed results table and README.md's generated blocks")
    record.add_argument("--root", help="runs folder (default: the repo's training-logs/, not $MNIST_RUNS_DIR)")
    action = record.add_mutually_exclusive_group()
    action.add_argument("--update-readme", action="store_true", help="rewrite README.md's generated blocks")
    action.add_argument("--check", action="store_true", help="exit 1 if any of README.md's generated blocks is stale")
    record.set_defaults(handler=records_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except UserError as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
