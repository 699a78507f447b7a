"""A stand-in training script for `foresize profile run`: a few seconds of NumPy work.

    foresize profile run -o train.parquet -- python examples/train.py --epochs 1

Each epoch multiplies matrices for about two seconds and holds a growing buffer, so the
sampled CPU and memory series have something to show; it needs nothing beyond NumPy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    """Run ``--epochs`` epochs of matrix products, then exit 0."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per epoch")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    buffers = []
    for _ in range(args.epochs):
        end = time.monotonic() + args.seconds
        a = rng.standard_normal((256, 256))
        while time.monotonic() < end:
            a = np.tanh(a @ a.T / 256.0)
        buffers.append(np.ones(4_000_000))  # 32 MB more resident memory each epoch


if __name__ == "__main__":
    main()
