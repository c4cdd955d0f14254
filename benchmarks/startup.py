"""Start-up time of the command line: fresh interpreters importing what a command loads before its work.

Run from the repository root: `python -m benchmarks.startup [--runs 5]`. Rows, each timed in fresh processes taken
in turn: `import torch` alone (the floor), `import mnist_lib.cli` (what every command loads; `predict` needs
nothing more; `evaluate` and training add torchvision to read MNIST, training plots and torch._dynamo too) and the
same plus torchvision, matplotlib and seaborn (what the CLI loaded before 2026-12-07, whatever the command).
Prints the median seconds of each and `startup_ratio=<before / now>`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

IMPORTS = {
    "torch alone": "import torch",
    "mnist_lib.cli now": "import mnist_lib.cli",
    "mnist_lib.cli + torchvision, matplotlib, seaborn (before)":
        "import mnist_lib.cli, torchvision, matplotlib.pyplot, seaborn",
}


def seconds(statement: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per row")
    args = parser.parse_args(argv)
    times = {label: [] for label in IMPORTS}
    for _ in range(args.runs):  # rows in turn, so that the machine's drift spreads over all of them
        for label, statement in IMPORTS.items():
            times[label].append(seconds(statement))
    medians = {label: statistics.median(values) for label, values in times.items()}
    print(f"python {sys.version.split()[0]}, median of {args.runs} fresh processes per row")
    for label, median in medians.items():
        print(f"    {label:<58} {median:6.2f} s")
    labels = list(IMPORTS)
    print(f"startup_ratio={medians[labels[2]] / medians[labels[1]]:.2f}")


if __name__ == "__main__":
    main()
