"""Where the WebGPU chain's time goes: ((a*b+c).relu()*0.5).exp() over 64M floats, hand-written in WGSL.

tg's scalar rendering (8 floats per work-item, the exp2 of `wgsl_math`, the bit-exact helpers) beside vec4
variants with 1, 2, 4 or 8 vec4s per work-item and plain copies, first 20 dispatches in one encoder (the kernel's
own speed), then one dispatch per submit and wait (what a replay that is waited on alone pays), and tg's TinyJit
replay of the same chain split into its Python + submit part and its wait. GB/s of minimal traffic. A one-off
exploration on a GPU machine (see ../shared/gpu/README.md): `python bench/webgpu_chain_probe.py`.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import wgpu

from tg.core import Tensor, TinyJit, get_device, synchronize

N = 64 * 2**20
GROUP = 256

EXP2_F32 = """
fn tg_isnan_f32(x: f32) -> bool { return (bitcast<u32>(x) & ~(u32(1) << 31u)) > (u32(2 * 127 + 1) << 23u); }
fn tg_pow2_f32(k: i32) -> f32 { return bitcast<f32>(u32(k + 127) << 23u); }
fn tg_exp2_f32(x: f32) -> f32 {
  let c = clamp(x, -1100.0f, 1100.0f);
  let n = round(c);
  let f = (c - n) * 0.69314718055994531f;
  var p = 1.0f / 6227020800.0f;
  p = p * f + 1.0f / 479001600.0f; p = p * f + 1.0f / 39916800.0f; p = p * f + 1.0f / 3628800.0f;
  p = p * f + 1.0f / 362880.0f; p = p * f + 1.0f / 40320.0f; p = p * f + 1.0f / 5040.0f;
  p = p * f + 1.0f / 720.0f; p = p * f + 1.0f / 120.0f; p = p * f + 1.0f / 24.0f; p = p * f + 1.0f / 6.0f;
  p = p * f + 0.5f; p = p * f + 1.0f; p = p * f + 1.0f;
  let k = clamp(i32(n), -2 * 127 - 23, 2 * 127);
  let k1 = k / 2;
  let r = p * tg_pow2_f32(clamp(k1, 1 - 127, 127)) * tg_pow2_f32(clamp(k - k1, 1 - 127, 127));
  return select(r, x, tg_isnan_f32(x));
}
"""
EXP2_V4 = """
fn tg_isnan_v4(x: vec4<f32>) -> vec4<bool> {
  return (bitcast<vec4<u32>>(x) & vec4<u32>(~(1u << 31u))) > vec4<u32>((2u * 127u + 1u) << 23u);
}
fn tg_pow2_v4(k: vec4<i32>) -> vec4<f32> { return bitcast<vec4<f32>>(vec4<u32>(k + vec4<i32>(127)) << vec4<u32>(23u)); }
fn tg_exp2_v4(x: vec4<f32>) -> vec4<f32> {
  let c = clamp(x, vec4<f32>(-1100.0f), vec4<f32>(1100.0f));
  let n = round(c);
  let f = (c - n) * 0.69314718055994531f;
  var p = vec4<f32>(1.0f / 6227020800.0f);
  p = p * f + 1.0f / 479001600.0f; p = p * f + 1.0f / 39916800.0f; p = p * f + 1.0f / 3628800.0f;
  p = p * f + 1.0f / 362880.0f; p = p * f + 1.0f / 40320.0f; p = p * f + 1.0f / 5040.0f;
  p = p * f + 1.0f / 720.0f; p = p * f + 1.0f / 120.0f; p = p * f + 1.0f / 24.0f; p = p * f + 1.0f / 6.0f;
  p = p * f + 0.5f; p = p * f + 1.0f; p = p * f + 1.0f;
  let k = clamp(vec4<i32>(n), vec4<i32>(-2 * 127 - 23), vec4<i32>(2 * 127));
  let k1 = k / vec4<i32>(2);
  let lo = vec4<i32>(1 - 127);
  let hi = vec4<i32>(127);
  let r = p * tg_pow2_v4(clamp(k1, lo, hi)) * tg_pow2_v4(clamp(k - k1, lo, hi));
  return select(r, x, tg_isnan_v4(x));
}
"""
ENTRY = ("@compute @workgroup_size(256)\nfn tg_kernel(@builtin(workgroup_id) wid: vec3<u32>, "
         "@builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) lid: u32) {\n"
         "  let tg_zero = groups.z - 1u;\n")


def bindings(element: str) -> str:
    """b0 written, b1..b3 the operands, b4 the scalar log2(e) (a kernel argument, as tg passes it)."""
    lines = [f"@group(0) @binding({i}) var<storage, {'read_write' if i == 0 else 'read'}> b{i}: array<{element}>;"
             for i in range(4)]
    return "\n".join([*lines, "@group(0) @binding(4) var<storage, read> b4: array<f32>;", ""])


def loop(per: int, count: int) -> str:
    """`per` iterations per work-item, a group's width apart (as tg's renderer does)."""
    return (f"  for (var r = 0u; r < {per}u; r++) {{\n"
            f"    let i = i32((wid.x + wid.y * groups.x) * {GROUP * per}u + r * {GROUP}u + lid);\n"
            f"    if (i < {count}i) {{\n")


def scalar_chain(per: int) -> tuple[str, int]:
    body = """      let v13 = bitcast<f32>(bitcast<u32>(b1[i] * b2[i]) | u32(tg_zero));
      let v15 = v13 + b3[i];
      let z = bitcast<f32>(0u + tg_zero);
      let v16 = select(z, v15, v15 > z || tg_isnan_f32(v15));
      let v17 = bitcast<f32>(bitcast<u32>(v16 * bitcast<f32>(1056964608u + tg_zero)) | u32(tg_zero));
      let v19 = bitcast<f32>(bitcast<u32>(v17 * b4[0]) | u32(tg_zero));
      b0[i] = tg_exp2_f32(v19);
    }
  }
}"""
    return bindings("f32") + EXP2_F32 + ENTRY + loop(per, N) + body, N // (GROUP * per)


def vec4_chain(per: int) -> tuple[str, int]:
    body = """      let zv = vec4<u32>(tg_zero);
      let v13 = bitcast<vec4<f32>>(bitcast<vec4<u32>>(b1[i] * b2[i]) | zv);
      let v15 = v13 + b3[i];
      let z = bitcast<vec4<f32>>(zv);
      let v16 = select(z, v15, (v15 > z) | tg_isnan_v4(v15));
      let v17 = bitcast<vec4<f32>>(bitcast<vec4<u32>>(v16 * bitcast<vec4<f32>>(vec4<u32>(1056964608u) + zv)) | zv);
      let v19 = bitcast<vec4<f32>>(bitcast<vec4<u32>>(v17 * b4[0]) | zv);
      b0[i] = tg_exp2_v4(v19);
    }
  }
}"""
    return bindings("vec4<f32>") + EXP2_F32 + EXP2_V4 + ENTRY + loop(per, N // 4) + body, N // 4 // (GROUP * per)


def copy(element: str, count: int) -> tuple[str, int]:
    body = f"  let i = (wid.x + wid.y * groups.x) * {GROUP}u + lid;\n  if (i < {count}u) {{ b0[i] = b1[i]; }}\n}}"
    return bindings(element) + ENTRY + body, count // GROUP


def median_seconds(fn: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[repeat // 2]


def main() -> None:
    dev = get_device("webgpu")
    gpu = dev.gpu  # type: ignore[attr-defined]
    usage = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST
    rng = np.random.default_rng(0)
    host = [rng.standard_normal(N).astype(np.float32) for _ in range(3)]
    buffers = [gpu.create_buffer(size=4 * N, usage=usage) for _ in range(4)]
    for buf, data in zip(buffers[1:], host):
        gpu.queue.write_buffer(buf, 0, data)
    log2e = gpu.create_buffer(size=16, usage=usage)
    gpu.queue.write_buffer(log2e, 0, np.array([1.4426950408889634, 0, 0, 0], np.float32))
    head = [h[:4096].astype(np.float64) for h in host]
    want = np.exp(np.maximum(head[0] * head[1] + head[2], 0) * 0.5)
    layout, group = dev.pipeline_layout(5), dev.bind_group([*buffers, log2e])  # type: ignore[attr-defined]
    variants = {"copy f32": copy("f32", N), "copy vec4": copy("vec4<f32>", N // 4),
                "tg scalar x8": scalar_chain(8), "scalar x4": scalar_chain(4),
                **{f"vec4 x{per}": vec4_chain(per) for per in (1, 2, 4, 8)}}
    pipelines = {}
    for name, (source, groups) in variants.items():
        pipeline = gpu.create_compute_pipeline(layout=layout, compute={
            "module": gpu.create_shader_module(code=source), "entry_point": "tg_kernel"})
        pipelines[name] = pipeline
        x = min(groups, 65535)
        y = -(-groups // x)

        def run(count: int, pipeline: object = pipeline, x: int = x, y: int = y) -> None:
            encoder = gpu.create_command_encoder()
            compute = encoder.begin_compute_pass()
            compute.set_pipeline(pipeline)
            compute.set_bind_group(0, group)
            for _ in range(count):
                compute.dispatch_workgroups(x, y)
            compute.end()
            gpu.queue.submit([encoder.finish()])
            gpu._poll_wait()

        gpu.queue.write_buffer(buffers[0], 0, np.zeros(4096, np.float32))  # a variant that writes nothing shows
        run(3)
        in_one = median_seconds(lambda run=run: run(20), 5) / 20
        alone = median_seconds(lambda run=run: run(1), 9)
        traffic = 8 * N if name.startswith("copy") else 16 * N
        got = np.frombuffer(gpu.queue.read_buffer(buffers[0], 0, 4 * 4096), np.float32)
        error = np.abs(got - (host[0][:4096] if name.startswith("copy") else want)).max()
        print(f"{name:14s} one encoder of 20: {traffic / in_one / 1e9:6.0f} GB/s | one per submit + wait: "
              f"{alone * 1e6:5.0f} us, {traffic / alone / 1e9:6.0f} GB/s | max error {error:.1e}", flush=True)
    tensors = [Tensor(h, device="webgpu").realize() for h in host]
    chain = TinyJit(lambda p, q, r: ((p * q + r).relu() * 0.5).exp())
    for _ in range(4):
        chain(*tensors)
    synchronize("webgpu")
    calls, waits = [], []
    for _ in range(10):
        start = time.perf_counter()
        chain(*tensors)
        middle = time.perf_counter()
        synchronize("webgpu")
        calls.append(middle - start)
        waits.append(time.perf_counter() - middle)
    total = sorted(c + w for c, w in zip(calls, waits))[5]
    print(f"tg TinyJit chain: {total * 1e6:.0f} us a call ({16 * N / total / 1e9:.0f} GB/s): Python + submit "
          f"{sorted(calls)[5] * 1e6:.0f} us, wait {sorted(waits)[5] * 1e6:.0f} us")
    try:
        import torch

        src, dst = torch.empty(N, device="cuda"), torch.empty(N, device="cuda")
        torch.cuda.synchronize()
        t = median_seconds(lambda: (dst.copy_(src), torch.cuda.synchronize()), 9)  # type: ignore[func-returns-value]
        print(f"torch copy, one per synchronize: {8 * N / t / 1e9:.0f} GB/s")
    except Exception as e:  # no CUDA here: the column is left out
        print(f"torch copy: not measured ({e})")


if __name__ == "__main__":
    main()
