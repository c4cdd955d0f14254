"""Train a model from the command line: python -m mnist_lib.train --model superlight --epochs 15"""

from __future__ import annotations

from .cli import ArgumentParser, add_data_arguments, fail
from .data import DataNotFoundError
from .engine import CheckpointError, TrainConfig, fit
from .models import MODELS

PROG = "python -m mnist_lib.train"


def parse_args(argv: list[str] | None = None):
    defaults = TrainConfig()
    parser = ArgumentParser(prog=PROG, description="Train an MNIST model and record the run.")
    parser.add_argument("--model", default=defaults.model, help=f"one of: {', '.join(sorted(MODELS))}")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr, help="OneCycleLR max learning rate")
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--no-augment", dest="augment", action="store_false", help="train on the plain images")
    parser.add_argument("--erase-prob", type=float, default=defaults.erase_prob, help="random-erasing probability")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--device", default=defaults.device, help="auto (cuda > mps > cpu), cpu, cuda, mps")
    parser.add_argument("--train-limit", type=int, help="train on the first N images only (quick runs)")
    parser.add_argument("--out", help="folder for run directories (default: $MNIST_RUNS_DIR, else training-logs/)")
    parser.add_argument("--resume", metavar="CKPT", help="continue a run from its checkpoint.pt")
    add_data_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = TrainConfig(
        model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, augment=args.augment, erase_prob=args.erase_prob,
        seed=args.seed, device=args.device, train_limit=args.train_limit,
    )
    try:
        if not args.resume:
            config.validate()
        fit(config, data_dir=args.data_dir, download=not args.no_download, runs_dir=args.out, resume=args.resume)
    except (ValueError, CheckpointError) as error:
        return fail(PROG, str(error))
    except DataNotFoundError as error:
        return fail(PROG, str(error), status=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
