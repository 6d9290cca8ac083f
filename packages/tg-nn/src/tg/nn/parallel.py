"""Data-parallel training across processes: DistributedDataParallel and DistributedSampler, as in torch.

    mpirun -n 2 python train.py
    dist.init_process_group("mpi")
    model = DistributedDataParallel(make_model())     # rank 0's initial weights on every rank
    loader = DataLoader([x, y], batch_size=64, sampler=DistributedSampler(len(x)))
    ... loss.backward()                                  # gradients are now averaged over the ranks
    opt.step()

Each rank trains on its own shard of every global batch; after backward() the gradients are averaged, so every
rank applies the same update and the weights stay identical, equal to one process training on the whole global
batch (within float rounding). Gradients are reduced in buckets of about `bucket_mb` MB, in the order backward
produces them: a bucket goes out as soon as its last gradient is accumulated (tg's graph is lazy, so "produced"
means computed on demand: the bucket's gradients are realized, then averaged).
"""
from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, Optional

import numpy as np

import tg.distributed as dist
from tg.core import Tensor

from .module import Module


class DistributedDataParallel(Module):
    """Wraps `module`: broadcasts its parameters and buffers from rank 0, then averages gradients after backward."""

    def __init__(self, module: Module, bucket_mb: float = 25.0, broadcast_buffers: bool = True):
        super().__init__()
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: call tg.distributed.init_process_group('mpi') first")
        self.module = module
        self.world = dist.get_world_size()
        shared: list[Tensor] = [*module.parameters(), *(module.buffers() if broadcast_buffers else [])]
        for t in shared:
            dist.broadcast(t.realize(), src=0)
        params = [p for p in module.parameters() if p.requires_grad]
        self.buckets: list[list[Tensor]] = []
        size, limit = 0, bucket_mb * 2**20
        for p in reversed(params):  # backward reaches the last layers first
            if not self.buckets or size + p.numel() * p.dtype.itemsize > limit:
                self.buckets.append([])
                size = 0
            self.buckets[-1].append(p)
            size += p.numel() * p.dtype.itemsize
        self.pending: dict[int, set[int]] = {}
        for b, bucket in enumerate(self.buckets):
            for t in bucket:
                t.register_post_accumulate_grad_hook(functools.partial(self._ready, b))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def _ready(self, b: int, p: Tensor) -> None:
        """Gradient of p accumulated: once its whole bucket is, average the bucket across ranks."""
        seen = self.pending.setdefault(b, set())
        seen.add(id(p))
        if len(seen) == len(self.buckets[b]):
            del self.pending[b]
            self._reduce(self.buckets[b])

    def _reduce(self, bucket: list[Tensor]) -> None:
        grads = [p.grad for p in bucket]
        assert all(g is not None for g in grads)
        flat = Tensor.cat(*(g.reshape(-1) for g in grads if g is not None)).contiguous().realize()
        dist.all_reduce(flat, op=dist.ReduceOp.AVG)
        start = 0
        for p in bucket:
            n = p.numel()
            p.grad = flat[start:start + n].reshape(p.shape)
            start += n


class DistributedSampler:
    """The indices of this rank's share of a dataset of `n` items, a new order each epoch (`set_epoch`), as torch's:
    the epoch's permutation (seeded by seed + epoch, the same on every rank), padded to a multiple of the ranks,
    and every `num_replicas`-th index from position `rank`."""

    def __init__(self, n: int, num_replicas: Optional[int] = None, rank: Optional[int] = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        self.n, self.shuffle, self.seed, self.drop_last, self.epoch = n, shuffle, seed, drop_last, 0
        self.replicas = num_replicas if num_replicas is not None else dist.get_world_size()
        self.rank = rank if rank is not None else dist.get_rank()
        if not 0 <= self.rank < self.replicas:
            raise ValueError(f"DistributedSampler: rank {self.rank} is not in [0, {self.replicas})")
        self.per_rank = n // self.replicas if drop_last else -(-n // self.replicas)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self) -> Iterator[int]:
        order = np.random.default_rng(self.seed + self.epoch).permutation(self.n) if self.shuffle else np.arange(self.n)
        total = self.per_rank * self.replicas
        order = order[:total] if self.drop_last else np.concatenate([order, order[:total - len(order)]])
        return iter(order[self.rank:total:self.replicas].tolist())
