"""A/B on an OpenCL GPU: tg's explicit fused multiply-add in sums of products (IR op ACC_FMA, with
FP_CONTRACT OFF everywhere else) against the old rendering that left a*b+c to the compiler.

    python bench/gpu_fma_ab.py fma          # what tg renders
    python bench/gpu_fma_ab.py contract     # acc + a*b with contraction allowed (the old way)
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import tg.core.render as render
import tg.opencl.renderer as cl_renderer
from tg.core import Tensor, synchronize
from tg.core.ir import U


def timed(fn: Callable[[], Any], n: int = 7) -> float:
    """Median seconds of n calls after a warm-up."""
    fn()
    synchronize("opencl")
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        synchronize("opencl")
        times.append(time.perf_counter() - start)
    return sorted(times)[n // 2]


def render_contracted() -> None:
    """Patch the OpenCL renderer back to `acc + a*b` without the FP_CONTRACT OFF pragma."""
    preamble, emit = cl_renderer.OpenCLRenderer.preamble, render.CStyleRenderer.emit

    def no_pragma(self: Any, prog: Any) -> list[str]:
        return [line for line in preamble(self, prog) if "FP_CONTRACT" not in line]

    def plain_mad(self: Any, u: Any) -> None:
        if u.op is not U.ACC_FMA:
            return emit(self, u)
        acc, a, b = u.src
        self.line(f"{acc.name} = ({acc.name} + ({self.ref(a)} * {self.ref(b)}));")
        return None

    cl_renderer.OpenCLRenderer.preamble = no_pragma  # type: ignore[method-assign]
    render.CStyleRenderer.emit = plain_mad  # type: ignore[method-assign]


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "fma"
    if mode == "contract":
        render_contracted()
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((32, 64, 56, 56)).astype(np.float32), device="opencl")
    w1, w2 = (Tensor(rng.standard_normal((64, 64, 3, 3)).astype(np.float32) * 0.05, device="opencl") for _ in "ab")
    block = timed(lambda: (x.conv2d(w1, padding=1).relu().conv2d(w2, padding=1) + x).relu().realize())
    conv = timed(lambda: x.conv2d(w1, padding=1).realize())
    a = Tensor(rng.standard_normal((4096, 4096)).astype(np.float32), device="opencl")
    mm = timed(lambda: (a @ a).realize())
    print(f"{mode}: conv block {block * 1e3:.2f} ms, one conv {conv * 1e3:.2f} ms, "
          f"matmul 4096^2 {2 * 4096 ** 3 / mm / 1e12:.1f} TFLOP/s")


if __name__ == "__main__":
    main()
