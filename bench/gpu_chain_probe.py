"""How fast can the fused chain ((a*b+c).relu()*0.5).exp() go on this GPU? Hand-written OpenCL variants
(index width, vector width, bounds guard) beside a device-to-device copy, in GB/s of minimal traffic.
A one-off exploration that decides how tg renders elementwise kernels for GPUs."""
import time

import numpy as np
import pyopencl as cl

ctx = cl.create_some_context(interactive=False)
q = cl.CommandQueue(ctx)
n = 64 * 2**20
mf = cl.mem_flags
bufs = [cl.Buffer(ctx, mf.READ_WRITE, n * 4) for _ in range(4)]
for b in bufs[1:]:
    cl.enqueue_copy(q, b, np.random.rand(n).astype(np.float32))
BODY = "float x = a[i] * b[i] + c[i]; x = (0.0f < x ? x : 0.0f) * 0.5f; o[i] = exp2(x * 1.4426950408889634f);"
VEC = ("float{w} x = vload{w}(i, a) * vload{w}(i, b) + vload{w}(i, c); x = fmax(x, 0.0f) * 0.5f;"
       " vstore{w}(exp2(x * 1.4426950408889634f), i, o);")


def timed(fn):
    fn()
    q.finish()
    ts = []
    for _ in range(20):
        t = time.perf_counter()
        fn()
        q.finish()
        ts.append(time.perf_counter() - t)
    return sorted(ts)[10]


copy_t = timed(lambda: cl.enqueue_copy(q, bufs[0], bufs[1]))
print(f"copy: {8 * n / copy_t / 1e9:.0f} GB/s (read + write)")
variants = {
    "long index, guard (tg today)": ("long", True, 1),
    "int index, guard": ("int", True, 1),
    "int index, no guard": ("int", False, 1),
    "int index, float2": ("int", False, 2),
    "int index, float4": ("int", False, 4),
    "long index, float4": ("long", False, 4),
}
for name, (it, guard, w) in variants.items():
    body = BODY if w == 1 else VEC.format(w=w)
    check = "if (i < end) " if guard else ""
    src = (f"__kernel void k({it} end, __global float* restrict o, __global const float* restrict a, "
           f"__global const float* restrict b, __global const float* restrict c) {{ {it} i = ({it})get_global_id(0);"
           f" {check}{{ {body} }} }}")
    k = cl.Program(ctx, src).build().k
    count = np.int64(n // w) if it == "long" else np.int32(n // w)
    for local in (128, 256, 512):
        t = timed(lambda k=k, w=w, local=local, count=count: k(q, (n // w,), (local,), count, *bufs))
        share = 16 * n / t / (8 * n / copy_t)
        print(f"{name:32s} local {local:4d}: {16 * n / t / 1e9:6.0f} GB/s ({share:.0%} of copy)")
