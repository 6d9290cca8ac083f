"""GPU benchmark: tg through OpenCL beside PyTorch CUDA on the same card, in one run.

    python bench/bench_gpu.py [--device opencl] [--out results.json]

Medians after warm-up; both sides synchronise before the clock stops. PyTorch runs with TF32 off,
so both compute true fp32.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tg.core import Tensor, TinyJit, no_grad, synchronize

torch: Any
try:
    import torch
except ImportError:  # the tg side still runs
    torch = None


def timed(fn: Callable[[], Any], sync: Callable[[], None], repeat: int = 10, warmup: int = 3,
          warm_s: float = 0.25) -> float:
    """The median time of `repeat` calls, each waited for, after `warmup` calls and at least `warm_s` seconds of
    them: a GPU raises its clocks only after some work (the first row after a machine start ran at 55-70% of its
    later speed with three calls of warm-up)."""
    start = time.perf_counter()
    for _ in range(warmup):
        fn()
    while time.perf_counter() - start < warm_s:
        fn()
        sync()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(row: dict[str, Any]) -> None:
    """One row as a line, printed as soon as it is measured (a long run shows its progress)."""
    extra = "  ".join(f"{k} {v:.3g}" for k, v in row.items() if k not in ("name", "unit"))
    print(f"{row['name']:<40} {row['unit']:>8}  {extra}", flush=True)


def cuda_sync() -> None:
    torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="opencl")
    parser.add_argument("--out", default="bench/results/gpu.json")
    parser.add_argument("--mega", type=int, default=64, help="elements (in 2^20) of the chain and reduce rows")
    parser.add_argument("--rows", default="matmul,chain,reduce,conv,mlp", help="which rows, comma-separated")
    args = parser.parse_args()
    wanted = set(args.rows.split(","))
    dev = args.device
    sync = lambda: synchronize(dev)  # noqa: E731
    has_cuda = torch is not None and torch.cuda.is_available()
    if has_cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []

    if "matmul" in wanted:
        # fp32 matmul 4096^2
        n = 4096
        a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
        ta, tb = Tensor(a, device=dev).realize(), Tensor(b, device=dev).realize()
        t = timed(lambda: (ta @ tb).realize(), sync, repeat=5)
        row = {"name": "matmul 4096^2 fp32", "unit": "TFLOP/s", "tg": 2 * n**3 / t / 1e12}
        if has_cuda:
            xa, xb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
            row["torch"] = 2 * n**3 / timed(lambda: xa @ xb, cuda_sync) / 1e12
        check = (ta[:64] @ tb).numpy()
        row["max_abs_err_vs_numpy"] = float(np.abs(check - a[:64] @ b).max())
        rows.append(row)
        report(row)

    if "chain" in wanted:
        # fused elementwise chain over 64M float32, and the copy bandwidth it is judged against
        m = args.mega * 2**20
        xs = [rng.standard_normal(m).astype(np.float32) for _ in range(3)]
        tx = [Tensor(v, device=dev).realize() for v in xs]
        t = timed(lambda: ((tx[0] * tx[1] + tx[2]).relu() * 0.5).exp().realize(), sync)
        row = {"name": f"fused ((a*b+c).relu()*0.5).exp() {args.mega}M", "unit": "GB/s", "tg": 16 * m / t / 1e9}
        chain = TinyJit(lambda p, q, r: ((p * q + r).relu() * 0.5).exp())  # the kernel alone, no Python per call
        row["tg TinyJit"] = 16 * m / timed(lambda: chain(*tx), sync) / 1e9
        # ten replays queued, one wait: what a loop that does not wait every step sees (one replay waited on alone
        # also pays the queue's submit-to-completion latency: ~150 us through wgpu-native on an H200)
        row["tg TinyJit x10/sync"] = 160 * m / timed(lambda: [chain(*tx) for _ in range(10)], sync) / 1e9
        t_copy = timed(lambda: (tx[0] + 0).realize(), sync)
        row["tg copy (x+0)"] = 8 * m / t_copy / 1e9
        if has_cuda:
            cx = [torch.from_numpy(v).cuda() for v in xs]
            row["torch"] = 16 * m / timed(lambda: ((cx[0] * cx[1] + cx[2]).relu() * 0.5).exp(), cuda_sync) / 1e9
            row["torch copy"] = 8 * m / timed(lambda: cx[0].clone(), cuda_sync) / 1e9
            row["torch copy x10/sync"] = 80 * m / timed(lambda: [cx[0].clone() for _ in range(10)], cuda_sync) / 1e9
        rows.append(row)
        report(row)

    if "reduce" in wanted:
        # reductions: a full sum of 64M floats, and a softmax over the rows of an 8192x8192 matrix (GB/s of
        # minimal traffic: each element read once, the softmax's written once)
        m = args.mega * 2**20
        v = rng.standard_normal(m).astype(np.float32)
        tv = Tensor(v, device=dev).realize()
        total = TinyJit(lambda p: p.sum())
        row = {"name": f"sum {args.mega}M", "unit": "GB/s", "tg": 4 * m / timed(lambda: tv.sum().realize(), sync) / 1e9,
               "tg TinyJit": 4 * m / timed(lambda: total(tv), sync) / 1e9,
               "rel_err_vs_numpy": float(abs(tv.sum().item() - v.astype(np.float64).sum()) / np.abs(v).sum())}
        mat = tv.reshape(m // 8192, 8192)
        soft = TinyJit(lambda p: p.softmax(1))
        row2 = {"name": f"softmax rows {m // 8192}x8192", "unit": "GB/s",
                "tg": 8 * m / timed(lambda: mat.softmax(1).realize(), sync) / 1e9,
                "tg TinyJit": 8 * m / timed(lambda: soft(mat), sync) / 1e9}
        e = np.exp(v[:8 * 8192].reshape(8, 8192).astype(np.float64))
        row2["max_abs_err_vs_numpy"] = float(np.abs(mat[:8].softmax(1).numpy() - e / e.sum(1, keepdims=True)).max())
        if has_cuda:
            cv = torch.from_numpy(v).cuda()
            row["torch"] = 4 * m / timed(lambda: cv.sum(), cuda_sync) / 1e9
            cm = cv.reshape(m // 8192, 8192)
            row2["torch"] = 8 * m / timed(lambda: cm.softmax(1), cuda_sync) / 1e9
        rows += [row, row2]
        report(row)
        report(row2)

    if "conv" in wanted:
        # a ResNet-style basic block forward (no norm): conv3x3 -> relu -> conv3x3 -> + x -> relu
        x = rng.standard_normal((32, 64, 56, 56)).astype(np.float32)
        w1, w2 = (rng.standard_normal((64, 64, 3, 3)).astype(np.float32) * 0.05 for _ in range(2))
        gx, g1, g2 = (Tensor(v, device=dev).realize() for v in (x, w1, w2))
        t = timed(lambda: (gx.conv2d(g1, padding=1).relu().conv2d(g2, padding=1) + gx).relu().realize(), sync, 5)
        row = {"name": "conv block fwd 32x64x56x56", "unit": "ms", "tg": t * 1e3}
        if has_cuda:
            cx_, c1, c2 = (torch.from_numpy(v).cuda() for v in (x, w1, w2))
            conv = torch.nn.functional.conv2d
            row["torch"] = timed(lambda: (conv(conv(cx_, c1, padding=1).relu(), c2, padding=1) + cx_).relu(),
                                 cuda_sync) * 1e3
        rows.append(row)
        report(row)

    if "mlp" in wanted:
        # an MLP training step 784-512-512-10 at batch 256 (SGD)
        shapes = [(784, 512), (512,), (512, 512), (512,), (512, 10), (10,)]
        init = [rng.standard_normal(s).astype(np.float32) * 0.05 for s in shapes]
        params = [Tensor(v, device=dev, requires_grad=True) for v in init]
        xb_ = Tensor(rng.standard_normal((256, 784)).astype(np.float32), device=dev)
        yb = rng.integers(0, 10, 256)
        onehot = Tensor(np.eye(10, dtype=np.float32)[yb], device=dev)

        def mlp_step(x: Tensor, target: Tensor) -> Tensor:
            w1_, b1_, w2_, b2_, w3_, b3_ = params
            h = ((x @ w1_ + b1_).relu() @ w2_ + b2_).relu()
            loss = -((h @ w3_ + b3_).log_softmax(1) * target).sum(1).mean()
            loss.backward()
            with no_grad():
                new = [p - 0.01 * p.grad for p in params]
            Tensor.realize(loss, *new)
            for p, q in zip(params, new):
                p.node, p.grad = q.node, None
            return loss

        replayed = TinyJit(mlp_step)
        row = {"name": "MLP SGD step 784-512-512-10 b256", "unit": "ms",
               "tg": timed(lambda: mlp_step(xb_, onehot), sync) * 1e3,
               "tg TinyJit": timed(lambda: replayed(xb_, onehot), sync) * 1e3}
        if has_cuda:
            cp = [torch.from_numpy(v).cuda().requires_grad_() for v in init]
            cxb, cyb = torch.from_numpy(xb_.numpy()).cuda(), torch.from_numpy(yb).cuda()

            def torch_step() -> None:
                w1_, b1_, w2_, b2_, w3_, b3_ = cp
                h = ((cxb @ w1_ + b1_).relu() @ w2_ + b2_).relu()
                loss = torch.nn.functional.cross_entropy(h @ w3_ + b3_, cyb)
                loss.backward()
                with torch.no_grad():
                    for p in cp:
                        p -= 0.01 * p.grad
                        p.grad = None

            row["torch"] = timed(torch_step, cuda_sync) * 1e3
        rows.append(row)
        report(row)

    name = torch.cuda.get_device_name() if has_cuda else "?"
    print(f"device {dev} ({name})")
    for r in rows:
        report(r)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)  # bench/results is not in git
    with open(args.out, "w") as f:
        json.dump({"device": dev, "card": name, "time": time.time(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
