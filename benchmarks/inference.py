"""CPU inference speed of every registered model: single-image latency and batch throughput.

Run from the repository root: `python -m benchmarks.inference [--calls 300] [--threads 1] [--compile]`.
Weights are untrained (speed does not depend on them). Variants: eager, TorchScript (traced and frozen)
and, with --compile, torch.compile (skipped with a note when it fails). Prints a table, then one
`latency_ms_<model>_<variant>=<x>` and `throughput_<model>_<variant>=<x>` line per measurement.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

from mnist_lib.models import MODELS, count_parameters, create_model

# TorchScript is deprecated in favour of torch.compile/export but still the fastest cold path here; keep it quiet.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")

BATCH = 1000
TARGET_MS = 1.0

Forward = Callable[[torch.Tensor], torch.Tensor]


def call_times(forward: Forward, inputs: torch.Tensor, calls: int, warmup: int) -> list[float]:
    """Seconds of each of `calls` timed forward passes, after `warmup` untimed ones."""
    with torch.inference_mode():
        for _ in range(warmup):
            forward(inputs)
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            forward(inputs)
            times.append(time.perf_counter() - started)
    return times


def variants(model: nn.Module, example: torch.Tensor, compile_too: bool) -> dict[str, Forward]:
    """The ways to run the model that compute the same logits as eager mode; failures are reported and skipped."""
    builders: dict[str, Callable[[], Forward]] = {
        "eager": lambda: model,
        "torchscript": lambda: torch.jit.freeze(torch.jit.trace(model, example)),
    }
    if compile_too:
        builders["compile"] = lambda: torch.compile(model)
    with torch.no_grad():
        expected = model(example)
    ready = {}
    for name, build in builders.items():
        try:
            with torch.no_grad():
                forward = build()
                if not torch.allclose(forward(example), expected, atol=1e-5):
                    raise RuntimeError("logits differ from eager mode")
        except Exception as error:  # any backend failure only drops that variant
            print(f"skipping {name}: {type(error).__name__}: {str(error).splitlines()[0][:200]}", file=sys.stderr)
            continue
        ready[name] = forward
    return ready


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="timed single-image calls per variant")
    # A 28x28 image gains nothing from intra-op threads, and when another process keeps the cores busy every
    # OpenMP barrier waits for a descheduled thread (about 100x slower on 2 busy cores); hence 1 by default.
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile on CPU)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    single, batch = torch.randn(1, 1, 28, 28), torch.randn(BATCH, 1, 28, 28)
    rows = []
    for model_name in MODELS:
        model = create_model(model_name).eval()
        for variant, forward in variants(model, single, args.compile).items():
            latency = call_times(forward, single, args.calls, warmup=50)
            batch_seconds = statistics.median(call_times(forward, batch, calls=5, warmup=2))
            rows.append({
                "model": model_name,
                "parameters": count_parameters(model),
                "variant": variant,
                "latency_ms": statistics.median(latency) * 1000,
                "p90_ms": statistics.quantiles(latency, n=10)[-1] * 1000,
                "throughput": BATCH / batch_seconds,
            })

    print(f"torch {torch.__version__}, intra-op threads: {torch.get_num_threads()}, {args.calls} single-image calls "
          f"(median and 90th percentile), throughput at batch {BATCH}")
    print(f"{'model':<11} {'params':>6} {'variant':<12} {'latency ms':>10} {'p90 ms':>7} {'images/s':>9}")
    for row in rows:
        flag = "" if row["latency_ms"] < TARGET_MS else f"  (over the {TARGET_MS:g} ms target)"
        print(f"{row['model']:<11} {row['parameters']:>6} {row['variant']:<12} {row['latency_ms']:>10.3f} "
              f"{row['p90_ms']:>7.3f} {row['throughput']:>9.0f}{flag}")
    for row in rows:
        print(f"latency_ms_{row['model']}_{row['variant']}={row['latency_ms']:.4f}")
    for row in rows:
        print(f"throughput_{row['model']}_{row['variant']}={row['throughput']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
