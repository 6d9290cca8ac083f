"""Train a small CNN on MNIST, report test accuracy, save the weights and check them after reloading.

    python -m tg.nn.demo [--device llvm] [--epochs 1] [--batch 128] [--no-jit]
    python -m tg.nn.demo --device opencl:0,opencl:1     # data-parallel over the devices of this machine
    mpirun -n 2 python -m tg.nn.demo --distributed      # data-parallel over MPI ranks (srun under Slurm)

The training step is captured once and replayed (tg.core.TinyJit): after the second batch no Python
tensor code runs per step, only the step's kernels. With --distributed every rank trains on its share of each
global batch of --batch images and the gradients are averaged (tg.nn.parallel.DistributedDataParallel), so the
result matches one process; rank 0 evaluates and saves. With several devices (--device a,b) the parameters are
copied to each, every batch is split over them (Tensor.shard) and the gradients all-reduce in the backward pass.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

import tg.nn as nn
from tg.core import Tensor, TinyJit, default_device, manual_seed, no_grad


def make_model(device: str) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, device=device), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, device=device), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10, device=device))


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, device: str, batch: int = 1000,
             devices: tuple[str, ...] = ()) -> float:
    """Test accuracy on `device`, or with each batch split over `devices` (a model spread over them)."""
    model.eval()
    correct = 0
    with no_grad():
        for i in range(0, len(x), batch):
            inputs = Tensor(x[i:i + batch], device=device)
            logits = model(inputs.shard(devices, 0) if devices else inputs)
            correct += int((logits.argmax(1).numpy() == y[i:i + batch]).sum())
    model.train()
    return correct / len(x)


def train_epoch(step: Callable[[Tensor, Tensor], Tensor], loader: Iterable[tuple[Tensor, Tensor]], desc: str,
                batch: int, live: bool = True) -> None:
    """One pass over the loader: a live bar with the loss and images/s on a terminal; in a log (not a terminal)
    one line a quarter of the way, so a CI log gets a handful of lines instead of thousands of bar updates."""
    live = live and sys.stderr.isatty()
    bar = tqdm(loader, desc=desc, unit="batch", disable=not live)
    total, start = len(bar), time.perf_counter()
    for n, (x, y) in enumerate(bar, 1):
        loss = step(x, y)
        if live:
            bar.set_postfix(loss=f"{loss.item():.3f}", img_s=f"{n * batch / max(bar.format_dict['elapsed'], 1e-9):.0f}")
        elif n == total or n % max(total // 4, 1) == 0:
            elapsed = time.perf_counter() - start
            print(f"{desc}: {n}/{total} batches, loss {loss.item():.3f}, {n * batch / elapsed:.0f} img/s, "
                  f"{elapsed:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="any installed device (default: tg's default device), or "
                        "several, comma-separated, to train data-parallel over them")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--out", default=None, help="where to save the weights (.safetensors)")
    parser.add_argument("--no-jit", action="store_true", help="run every step eagerly instead of replaying it")
    parser.add_argument("--distributed", action="store_true", help="data-parallel over the MPI ranks (mpirun -n N)")
    args = parser.parse_args()
    names = tuple(d.strip() for d in (args.device or default_device()).split(","))
    device, devices = names[0], (names if len(names) > 1 else ())  # several: data-parallel over them
    if devices and args.distributed:
        raise SystemExit("--distributed takes one device per rank; give --device one name")
    manual_seed(0)
    x_train, y_train, x_test, y_test = nn.mnist()
    model = make_model(device)
    if devices:
        model.to(devices)
    rank, world, sampler = 0, 1, None
    if args.distributed:
        import tg.distributed as dist

        dist.init_process_group("mpi")
        rank, world = dist.get_rank(), dist.get_world_size()
        if args.batch % world:
            raise SystemExit(f"--batch {args.batch} must divide among {world} ranks")
        model = nn.parallel.DistributedDataParallel(model)
        sampler = nn.parallel.DistributedSampler(len(x_train), seed=0, drop_last=True)
    opt = nn.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    loader = nn.DataLoader([x_train, y_train], batch_size=args.batch // world, shuffle=sampler is None,
                           drop_last=True, seed=0, device=device, sampler=sampler)
    where = f" on {world} ranks (global batch {args.batch})" if args.distributed else ""
    if rank == 0:
        on = f"devices {', '.join(devices)} (each batch split over them)" if devices else f"device {device!r}"
        print(f"training a 2-conv CNN on {len(x_train):,} MNIST images on {on}{where}")

    def train_step(x: Tensor, y: Tensor) -> Tensor:
        if devices:
            x, y = x.shard(devices, 0), y.shard(devices, 0)
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    step = train_step if args.no_jit else TinyJit(train_step)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        desc = f"{f'rank {rank}: ' if args.distributed else ''}epoch {epoch + 1}/{args.epochs}"
        train_epoch(step, loader, desc, args.batch // world, live=rank == 0)
    train_time = time.perf_counter() - start
    if args.distributed:
        print(f"rank {rank}: {len(loader) * args.batch // world * args.epochs / train_time:.0f} img/s", flush=True)
        model = model.module
        if rank != 0:
            return
    acc = accuracy(model, x_test, y_test, device, devices=devices)
    print(f"test accuracy {acc:.4f} after {train_time:.0f} s of training")
    path = Path(args.out) if args.out else Path(tempfile.mkdtemp()) / "mnist_cnn.safetensors"
    nn.save(model, path)
    reloaded = make_model(device)
    if devices:
        reloaded.to(devices)
    nn.load(path, reloaded)
    again = accuracy(reloaded, x_test, y_test, device, devices=devices)
    print(f"saved to {path}; reloaded model's accuracy {again:.4f}")
    if abs(again - acc) > 1e-9:
        raise SystemExit("reloaded weights disagree with the trained model")


if __name__ == "__main__":
    main()
