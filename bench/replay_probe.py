"""Where a replayed kernel's time goes on a device: the replay call (Python and the driver's submit), the wait for
the GPU, and a profile of both; the fused chain over 64M floats, as in bench_gpu.py.

    python bench/replay_probe.py webgpu      (or opencl; on a GPU machine)
"""
from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time

import numpy as np

from tg.core import Tensor, TinyJit, synchronize


def main(device: str, n: int = 64 * 2**20, repeat: int = 30) -> None:
    rng = np.random.default_rng(0)
    xs = [Tensor(rng.standard_normal(n).astype(np.float32), device=device).realize() for _ in range(3)]
    chain = TinyJit(lambda p, q, r: ((p * q + r).relu() * 0.5).exp())
    for _ in range(5):
        chain(*xs)
    synchronize(device)
    calls, waits = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        chain(*xs)
        called = time.perf_counter()
        synchronize(device)
        calls.append(called - start)
        waits.append(time.perf_counter() - called)
    total = np.median(np.add(calls, waits))
    print(f"{device}: replay call {np.median(calls) * 1e6:.0f} us, wait {np.median(waits) * 1e6:.0f} us, "
          f"total {total * 1e6:.0f} us ({16 * n / total / 1e9:.0f} GB/s of minimal traffic)")
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(repeat):
        chain(*xs)
        synchronize(device)
    profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(18)
    print(text.getvalue())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "opencl")
