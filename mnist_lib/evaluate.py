"""Evaluate a checkpoint on the full test set: python -m mnist_lib.evaluate RUN/checkpoint.pt"""

from __future__ import annotations

import json

from .cli import ArgumentParser, add_data_arguments, fail
from .data import DataNotFoundError, load_split
from .engine import CheckpointError, evaluate, load_checkpoint, model_from_checkpoint, pick_device

PROG = "python -m mnist_lib.evaluate"


def evaluate_checkpoint(path, data_dir=None, download: bool = True, device: str = "auto") -> dict:
    """Test loss, accuracy and per-class accuracy of a saved model."""
    state = load_checkpoint(path)
    target = pick_device(device)
    model = model_from_checkpoint(state, target)
    result = evaluate(model, load_split(False, data_dir, target, download))
    return {"checkpoint": str(path), "model": state["model_name"], "parameters": state["parameters"],
            "epoch": len(state["history"]), **result}


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description="Test-set loss and accuracy of a checkpoint.")
    parser.add_argument("checkpoint")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--device", default="auto")
    add_data_arguments(parser)
    args = parser.parse_args(argv)
    try:
        result = evaluate_checkpoint(args.checkpoint, args.data_dir, not args.no_download, args.device)
    except CheckpointError as error:
        return fail(PROG, str(error))
    except DataNotFoundError as error:
        return fail(PROG, str(error), status=1)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['model']} ({result['parameters']:,} parameters, epoch {result['epoch']}) on "
          f"{result['count']:,} test images: loss {result['loss']:.4f}, accuracy {result['accuracy']:.2f}%")
    print("per class: " + "  ".join(f"{d}: {a:.2f}%" for d, a in enumerate(result["per_class_accuracy"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
