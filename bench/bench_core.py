"""tg-core benchmarks: ratios against references measured in the same process, medians after warm-up.

    python bench/bench_core.py [--device numpy] [--quick]

Prints a table (tg, NumPy, and PyTorch / tinygrad where installed) and writes bench/results/core.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tg.core import Tensor, synchronize
from tg.core.ops import Node
from tg.core.schedule import schedule


def median_time(fn: Callable[[], Any], repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def optional(name: str) -> Optional[Any]:
    try:
        return __import__(name)
    except Exception:
        return None


torch = optional("torch")


def bench_matmul(device: str, n: int, repeat: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    ta, tb = Tensor(a, device=device).realize(), Tensor(b, device=device).realize()

    def tg_run() -> None:
        (ta @ tb).realize()
        synchronize(device)

    flop = 2 * n ** 3
    row = {"name": f"matmul {n}x{n} fp32", "unit": "GFLOP/s",
           "tg": flop / median_time(tg_run, repeat) / 1e9,
           "numpy": flop / median_time(lambda: np.matmul(a, b), repeat) / 1e9}
    if torch is not None:
        xa, xb = torch.from_numpy(a), torch.from_numpy(b)
        row["torch"] = flop / median_time(lambda: torch.matmul(xa, xb), repeat) / 1e9
    np.testing.assert_allclose((ta @ tb).numpy(), a @ b, rtol=1e-3, atol=1e-3)
    return row


def bench_chain(device: str, n: int, repeat: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    ta, tb, tc = (Tensor(v, device=device).realize() for v in (a, b, c))

    def tg_run() -> None:
        ((ta * tb + tc).relu() * 0.5).exp().realize()
        synchronize(device)

    traffic = 4 * n * 4  # three reads and one write, the minimum
    row = {"name": f"fused ((a*b+c).relu()*0.5).exp() {n // 2**20}M", "unit": "GB/s",
           "tg": traffic / median_time(tg_run, repeat) / 1e9,
           "numpy": traffic / median_time(lambda: np.exp(np.maximum(a * b + c, 0) * 0.5), repeat) / 1e9}
    if torch is not None:
        xa, xb, xc = (torch.from_numpy(v) for v in (a, b, c))
        row["torch"] = traffic / median_time(lambda: ((xa * xb + xc).relu() * 0.5).exp(), repeat) / 1e9
    return row


def bench_sum(device: str, n: int, repeat: int) -> dict[str, Any]:
    a = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    ta = Tensor(a, device=device).realize()

    def tg_run() -> None:
        ta.sum().realize()
        synchronize(device)

    row = {"name": f"sum {n // 2**20}M fp32", "unit": "GB/s", "tg": 4 * n / median_time(tg_run, repeat) / 1e9,
           "numpy": 4 * n / median_time(lambda: a.sum(), repeat) / 1e9}
    if torch is not None:
        xa = torch.from_numpy(a)
        row["torch"] = 4 * n / median_time(lambda: xa.sum(), repeat) / 1e9
    return row


def bench_overhead(device: str, ops: int, repeat: int) -> list[dict[str, Any]]:
    """Python cost of building the graph and scheduling it, per op, on tiny tensors."""
    x = Tensor(np.ones((4, 4), np.float32), device=device).realize()
    holder: list[Tensor] = []

    def build() -> None:
        y = x
        for i in range(ops):
            y = (y * 1.5 + i) if i % 2 else y.relu()
        holder[:] = [y]

    build_s = median_time(build, repeat)
    nodes: list[Node] = [holder[0].node]
    schedule_s = median_time(lambda: schedule(nodes), repeat)
    return [{"name": f"graph build per op ({ops} ops)", "unit": "us", "tg": build_s / ops * 1e6},
            {"name": "schedule per op", "unit": "us", "tg": schedule_s / ops * 1e6}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="numpy")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    args = parser.parse_args()
    r = 3 if args.quick else 10
    size = 2**20 if args.quick else 16 * 2**20
    rows = [bench_matmul(args.device, 512 if args.quick else 1024, r), bench_chain(args.device, size, r),
            bench_sum(args.device, size, r), *bench_overhead(args.device, 200, r)]
    refs = [k for k in ("numpy", "torch") if any(k in row for row in rows)]
    print(f"device {args.device}  ({platform.processor() or platform.machine()}, medians of {r} runs)")
    print(f"{'benchmark':<44} {'unit':>8} {'tg':>9}" + "".join(f" {k:>9}" for k in refs) + "   tg/numpy")
    for row in rows:
        cells = "".join(f" {row[k]:9.2f}" if k in row else f" {'':>9}" for k in refs)
        ratio = f"   {row['tg'] / row['numpy']:.2f}x" if "numpy" in row else ""
        print(f"{row['name']:<44} {row['unit']:>8} {row['tg']:9.2f}{cells}{ratio}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "core.json").write_text(json.dumps({"device": args.device, "time": time.time(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
