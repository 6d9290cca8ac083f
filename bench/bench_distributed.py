"""tg.distributed beside raw mpi4py, and data-parallel step time: run under MPI.

    mpirun -n 2 python bench/bench_distributed.py [--out results/distributed.json]
    mpirun -n 1 python bench/bench_distributed.py --steps-only     # the one-rank step time, to compare

All-reduce (sum) of float32 arrays of 4 KiB .. 64 MiB: raw mpi4py's in-place Allreduce on NumPy arrays, then
tg's all_reduce on tensors of the numpy and llvm devices (shape check + the reduction on the device's own
memory). Bus bandwidth as NCCL reports it: 2 (n-1)/n bytes / time. Then the MNIST CNN training step (Adam,
global batch 128) data-parallel through DistributedDataParallel: median step time per rank. Medians after
warm-up; rank 0 prints.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from mpi4py import MPI

import tg.distributed as dist
import tg.nn as nn
from tg.core import Tensor, TinyJit, manual_seed


def median_time(fn: Callable[[], Any], repeat: int, comm: Any) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeat):
        comm.Barrier()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def allreduce_rows(comm: Any) -> list[dict[str, Any]]:
    n = comm.Get_size()
    rows = []
    for size in (4 << 10, 64 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20):
        data = np.random.default_rng(0).standard_normal(size // 4).astype(np.float32)
        repeat = 50 if size <= 1 << 20 else 10
        bus = 2 * (n - 1) / n * size
        raw = data.copy()
        row = {"bytes": size, "mpi4py GB/s": bus / median_time(
            lambda raw=raw: comm.Allreduce(MPI.IN_PLACE, raw, op=MPI.SUM), repeat, comm) / 1e9}
        for device in ("numpy", "llvm"):
            t = Tensor(data, device=device).realize()
            row[f"tg {device} GB/s"] = bus / median_time(lambda t=t: dist.all_reduce(t), repeat, comm) / 1e9
        row["tg llvm / mpi4py"] = row["tg llvm GB/s"] / row["mpi4py GB/s"]
        rows.append(row)
    return rows


def step_time(world: int) -> float:
    x, y = nn.mnist()[:2]
    manual_seed(0)
    model = nn.parallel.DistributedDataParallel(nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 7 * 7, 10)))
    opt = nn.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    @TinyJit
    def step(xb: Tensor, yb: Tensor) -> Tensor:
        loss = loss_fn(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    per = 128 // world
    xb, yb = Tensor(x[:per]), Tensor(y[:per].astype(np.int64))
    return median_time(lambda: step(xb, yb).realize(), 20, MPI.COMM_WORLD)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="bench/results/distributed.json")
    parser.add_argument("--steps-only", action="store_true")
    args = parser.parse_args()
    dist.init_process_group("mpi")
    comm, rank, world = MPI.COMM_WORLD, dist.get_rank(), dist.get_world_size()
    rows = [] if args.steps_only or world < 2 else allreduce_rows(comm)
    step = step_time(world)
    if rank == 0:
        for r in rows:
            print("  ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()))
        print(f"data-parallel MNIST CNN Adam step, global batch 128, {world} rank(s): {step * 1e3:.1f} ms")
        with open(args.out, "w") as f:
            json.dump({"ranks": world, "allreduce": rows, "step_ms": step * 1e3, "time": time.time()}, f, indent=2)


if __name__ == "__main__":
    main()
