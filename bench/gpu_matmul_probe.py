"""Variants of tg's own OpenCL matmul kernel (4096^2 fp32, 2x16 register tiles), timed on this GPU:
64- vs 32-bit index arithmetic, unroll hints, work-group sizes. A one-off exploration; the kernel text
comes from `mm_long.cl` (tg's rendering, TG_DEBUG=4)."""
import re
import time
from pathlib import Path

import numpy as np
import pyopencl as cl

base = (Path(__file__).parent / "mm_long.cl").read_text()
n = 4096
ctx = cl.create_some_context(interactive=False)
q = cl.CommandQueue(ctx)
mf = cl.mem_flags
a, b = (np.random.default_rng(i).standard_normal((n, n)).astype(np.float32) for i in range(2))
bufs = [cl.Buffer(ctx, mf.READ_WRITE, n * n * 4)] + [cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=x)
                                                     for x in (a, b)]


def as_int(src: str) -> str:
    src = re.sub(r"\blong\b", "int", src)
    return re.sub(r"(\d)L\b", r"\1", src)


def unrolled(src: str, k: int) -> str:
    return src.replace("    for (", f"    #pragma unroll {k}\n    for (", 1)


variants = {"tg (long index)": base, "int index": as_int(base), "long, unroll 4": unrolled(base, 4),
            "int, unroll 4": unrolled(as_int(base), 4), "int, unroll 8": unrolled(as_int(base), 8)}
outer = n * n // 32
for name, src in variants.items():
    k = cl.Program(ctx, src).build(options=["-cl-fp32-correctly-rounded-divide-sqrt"]).tg_kernel
    wide = "int" not in name
    lo, hi = (np.int64(0), np.int64(outer)) if wide else (np.int32(0), np.int32(outer))
    for local in (128, 256):
        def run(k=k, local=local, lo=lo, hi=hi):
            k(q, (outer,), (local,), lo, hi, *bufs)
        run()
        q.finish()
        ts = []
        for _ in range(7):
            t = time.perf_counter()
            run()
            q.finish()
            ts.append(time.perf_counter() - t)
        out = np.empty((n, n), np.float32)
        cl.enqueue_copy(q, out, bufs[0])
        err = float(np.abs(out[:8] - a[:8] @ b).max())
        print(f"{name:18s} local {local}: {2 * n**3 / sorted(ts)[3] / 1e12:5.1f} TFLOP/s (err {err:.1e})", flush=True)
