"""One rank of the distributed tests (test_distributed.py starts it under `mpirun -n 2`); exits non-zero on failure.

    mpirun -n 2 python distributed_worker.py collectives|training|mismatch|timeout
"""
from __future__ import annotations

import sys
import time

import numpy as np

import tg.distributed as dist
import tg.nn as nn
from tg.core import Tensor, TinyJit, manual_seed, registry


def data(rank: int, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """What `rank` contributes: every rank can compute every other rank's data, so results are checked locally."""
    rng = np.random.default_rng(100 + rank)
    return (rng.standard_normal(shape) * 10).astype(dtype)


def collectives(rank: int, size: int) -> None:
    devices = [d for d in ("numpy", "llvm", "opencl") if d in registry.available()]
    for device in devices:
        for dtype in (np.float32, np.int32):
            everyone = [data(r, (3, 5), dtype) for r in range(size)]
            for op, ref in ((dist.ReduceOp.SUM, np.sum), (dist.ReduceOp.MAX, np.max), (dist.ReduceOp.MIN, np.min),
                            (dist.ReduceOp.PRODUCT, np.prod)):
                t = Tensor(everyone[rank], device=device)
                dist.all_reduce(t, op=op)
                want = ref(np.stack(everyone), axis=0).astype(dtype)
                np.testing.assert_allclose(t.numpy(), want, rtol=1e-6, err_msg=f"{device} {op} {dtype}")
            t = Tensor(everyone[rank], device=device)
            dist.all_reduce(t, op=dist.ReduceOp.AVG)
            avg = np.mean(np.stack(everyone), axis=0) if dtype == np.float32 else np.sum(np.stack(everyone), 0) // size
            np.testing.assert_allclose(t.numpy(), avg.astype(dtype), rtol=1e-6)
            b = Tensor(everyone[rank], device=device)
            dist.broadcast(b, src=size - 1)
            np.testing.assert_array_equal(b.numpy(), everyone[size - 1])
            outs = [Tensor(np.zeros((3, 5), dtype), device=device).contiguous().realize() for _ in range(size)]
            dist.all_gather(outs, Tensor(everyone[rank], device=device))
            for r in range(size):
                np.testing.assert_array_equal(outs[r].numpy(), everyone[r])
        # a collective captured by TinyJit runs again, on new data, at every replay
        step = TinyJit(lambda x: dist.all_reduce((x * 2).contiguous().realize()))
        for i in range(4):
            mine = np.full(4, rank + i, np.float32)
            got = step(Tensor(mine, device=device)).numpy()
            np.testing.assert_array_equal(got, np.full(4, 2 * sum(r + i for r in range(size)), np.float32))
    dist.barrier()
    print(f"rank {rank}: collectives on {', '.join(devices)} agree with NumPy", flush=True)


def make_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(8 * 14 * 14, 10))


def train(model: nn.Module, batches: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    opt = nn.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for x, y in batches:
        loss = loss_fn(model(Tensor(x)), Tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def training(rank: int, size: int) -> None:
    """Data-parallel training on `size` ranks ends with the weights one process gets from the whole global batch."""
    x, y = nn.mnist()[:2]
    x, y = x[:1024], y[:1024].astype(np.int64)
    global_batch, steps = 64, 8
    manual_seed(rank + 7)  # different initial weights per rank: DDP must broadcast rank 0's
    ddp = nn.parallel.DistributedDataParallel(make_model())
    sampler = nn.parallel.DistributedSampler(len(x), seed=3)
    loader = nn.DataLoader([x, y], batch_size=global_batch // size, sampler=sampler, drop_last=True)
    shards = [tuple(t.numpy() for t in batch) for _, batch in zip(range(steps), loader)]
    start = time.perf_counter()
    train(ddp, shards)
    elapsed = time.perf_counter() - start
    # the reference: one process, the same initial weights, the global batches in the same order
    manual_seed(7)
    single = make_model()
    whole = nn.parallel.DistributedSampler(len(x), num_replicas=1, rank=0, seed=3)
    order = list(whole)
    batches = []
    for s in range(steps):
        parts = [order[r::size][s * global_batch // size:(s + 1) * global_batch // size] for r in range(size)]
        idx = np.concatenate(parts)
        batches.append((x[idx], y[idx]))
    train(single, batches)
    for (name, a), (_, b) in zip(single.state_dict().items(), ddp.module.state_dict().items()):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
    print(f"rank {rank}: {steps} data-parallel steps equal one process's ({global_batch // size * steps / elapsed:.0f} "
          "img/s on this rank)", flush=True)


def mismatch(rank: int, size: int) -> None:
    try:
        dist.all_reduce(Tensor(np.zeros(3 + rank, np.float32)))
    except dist.DistributedError as e:
        assert "rank 0 float32[3]" in str(e) and "rank 1 float32[4]" in str(e), e
        print(f"rank {rank}: mismatch reported: {e}", flush=True)
        return
    raise AssertionError("a shape mismatch across ranks went through")


def timeout(rank: int, size: int) -> None:
    if rank == 1:
        time.sleep(30)  # stuck; mpirun ends it once rank 0 has failed
        return
    try:
        dist.all_reduce(Tensor(np.zeros(3, np.float32)))
    except dist.DistributedError as e:
        print(f"rank {rank}: {e}", flush=True)
        sys.exit(3)


if __name__ == "__main__":
    dist.init_process_group("mpi")
    me, world = dist.get_rank(), dist.get_world_size()
    {"collectives": collectives, "training": training, "mismatch": mismatch, "timeout": timeout}[sys.argv[1]](me, world)
