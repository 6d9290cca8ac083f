"""Tensors spread over the devices of one machine (Tensor.shard): data-parallel step time and all-reduce cost.

    python bench/bench_shard.py [--devices llvm:0,llvm:1] [--out results/shard.json]

1. The MNIST CNN training step (Adam, global batch 128, TinyJit replay and eager) on one device and with the batch
   split over the listed devices (parameters replicated): median step time and the scaling efficiency,
   throughput(n devices) / (n * throughput(1 device)).
2. All-reduce of float32 tensors (a sum over the split dim, every device ends with the result) beside NumPy doing
   the same arithmetic and copies on the host: bus bandwidth as NCCL reports it, 2 (n-1)/n bytes / time.

Medians after warm-up. On one CPU the devices share the same cores and memory, so this measures the overhead of
the split, not a speed-up; with several GPUs the same code spreads the work.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from bench_core import median_time  # this folder is on sys.path when run as a script

import tg.nn as nn
from tg.core import Tensor, TinyJit, manual_seed, synchronize
from tg.nn.demo import make_model


def synced_median(fn: Callable[[], Any], repeat: int) -> float:
    """bench_core's median, timing each call until the devices are done."""
    return median_time(lambda: (fn(), synchronize()), repeat, warmup=3)


def step_time(devices: tuple[str, ...], jit: bool, batch: int = 128) -> float:
    manual_seed(0)
    home: Any = devices[0] if len(devices) == 1 else devices
    model = make_model(devices[0]).to(home)
    opt = nn.optim.Adam(model.parameters(), lr=1e-3)
    x_all, y_all = nn.mnist()[:2]

    def step(x: Tensor, y: Tensor) -> Tensor:
        opt.zero_grad()
        loss = model(x).cross_entropy(y)
        loss.backward()
        opt.step()
        return loss.realize()

    run = TinyJit(step) if jit else step
    i = 0

    def one() -> None:
        nonlocal i
        x = Tensor(x_all[i * batch:(i + 1) * batch], device=devices[0])
        y = Tensor(y_all[i * batch:(i + 1) * batch].astype(np.int64), device=devices[0])
        if len(devices) > 1:
            x, y = x.shard(devices, 0), y.shard(devices, 0)
        run(x, y)
        i += 1

    return synced_median(one, 10)


def allreduce_rows(devices: tuple[str, ...]) -> list[dict[str, Any]]:
    n, rows = len(devices), []
    for size in (64 << 10, 1 << 20, 4 << 20, 16 << 20):
        data = np.random.default_rng(0).standard_normal((n, size // 4)).astype(np.float32)
        x = Tensor(data, device=devices[0]).shard(devices, 0).realize()
        bus = 2 * (n - 1) / n * size
        tg_s = synced_median(lambda x=x: x.sum(0).realize(), 10)
        host_s = synced_median(lambda data=data: [data.sum(0).copy() for _ in range(n)], 10)
        rows.append({"bytes": size, "tg GB/s": bus / tg_s / 1e9, "numpy host GB/s": bus / host_s / 1e9,
                     "tg / numpy": host_s / tg_s})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", default="llvm:0,llvm:1")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    devices = tuple(args.devices.split(","))
    result: dict[str, Any] = {"devices": devices, "steps": {}, "allreduce": allreduce_rows(devices)}
    for mode, jit in (("TinyJit", True), ("eager", False)):
        one, many = step_time(devices[:1], jit), step_time(devices, jit)
        result["steps"][mode] = {"1 device ms": one * 1e3, f"{len(devices)} devices ms": many * 1e3,
                                 "scaling efficiency": one / many / len(devices)}
        print(f"CNN step ({mode}, batch 128): 1 device {one * 1e3:.1f} ms, {len(devices)} devices {many * 1e3:.1f} ms "
              f"(scaling efficiency {one / many / len(devices):.2f})")
    for row in result["allreduce"]:
        print(f"all-reduce {row['bytes'] >> 10:6d} KiB over {len(devices)} devices: tg {row['tg GB/s']:.2f} GB/s, "
              f"numpy on the host {row['numpy host GB/s']:.2f} GB/s ({row['tg / numpy']:.2f}x)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
