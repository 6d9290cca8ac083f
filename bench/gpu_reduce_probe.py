"""Reductions on a GPU through TinyJit, beside nothing but themselves: row max, row sum, column sum, row softmax
of an 8192x8192 matrix and the sum of all 64M floats (GB/s of one read; the softmax's of a read and a write), then
row sums of 64M floats shaped from 131072x512 to 64x1M. `TG_GPU_GROUP=n` (or 0) sets the work-items per output.

    python bench/gpu_reduce_probe.py opencl      (or webgpu; on a GPU machine)
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tg.core import Tensor, TinyJit, synchronize


def timed(fn: Callable[[], Any], device: str, repeat: int = 10) -> float:
    for _ in range(3):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(device: str) -> None:
    m = 64 * 2**20
    flat = Tensor(np.random.default_rng(0).standard_normal(m).astype(np.float32), device=device).realize()
    mat = flat.reshape(8192, 8192)
    rows = {"rowmax": (lambda p: p.amax(1), mat, 4), "rowsum": (lambda p: p.sum(1), mat, 4),
            "colsum": (lambda p: p.sum(0), mat, 4), "softmax": (lambda p: p.softmax(1), mat, 8),
            "sum": (lambda p: p.sum(), flat, 4)}
    cells = []
    for name, (fn, arg, per) in rows.items():
        jit = TinyJit(fn)
        cells.append(f"{name} {per * m / timed(lambda j=jit, a=arg: j(a), device) / 1e9:.0f}")
    print(f"{device} group {os.environ.get('TG_GPU_GROUP', 'auto')} (GB/s):", "  ".join(cells), flush=True)
    shapes = []
    for cols in (512, 2048, 8192, 65536, 1 << 20):
        jit = TinyJit(lambda p: p.sum(1))
        shaped = flat.reshape(m // cols, cols)
        shapes.append(f"{m // cols}x{cols} {4 * m / timed(lambda j=jit, s=shaped: j(s), device) / 1e9:.0f}")
    print(f"{device} row sums (GB/s):", "  ".join(shapes), flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "opencl")
