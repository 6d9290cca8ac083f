"""What a TinyJit capture records while the captured call runs: kernel launches and copies, tensors whose data
the call replaced, index checks to repeat, hooks to run before each replay. The front end and the realizer
report here; `jit.py` (TinyJit) starts a capture and turns the record into a replay plan.

The record in progress belongs to the current thread (or asyncio task): other threads keep running eagerly.
"""
from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .device import Buffer
    from .kernel import Kernel
    from .ops import Node
    from .tensor import Tensor
    from .view import View


@dataclass
class Launch:
    """One recorded step: a kernel on `device`, a host step (`host(buffers)`, e.g. a collective across processes
    that updates the buffers in place), or (neither) a copy of buffers[1] into buffers[0]."""

    device: str
    kernel: Optional[Kernel]
    buffers: list[Buffer]
    host: Optional[Callable[[Sequence[Buffer]], None]] = None


@dataclass
class Recorder:
    """Everything one capture saw."""

    launches: list[Launch] = field(default_factory=list)
    rebinds: list[tuple[Tensor, Node]] = field(default_factory=list)
    hooks: list[Callable[[], None]] = field(default_factory=list)
    checks: list[tuple[Buffer, View, Callable[[Any], None]]] = field(default_factory=list)
    random: bool = False


# the capture in progress in this thread (or asyncio task): other threads keep running eagerly meanwhile
RECORDER: contextvars.ContextVar[Optional[Recorder]] = contextvars.ContextVar("tg_jit_recorder", default=None)


def capturing() -> bool:
    """Whether a TinyJit is recording right now."""
    return RECORDER.get() is not None


def record_launch(device: str, kernel: Optional[Kernel], buffers: list[Buffer]) -> None:
    if (rec := RECORDER.get()) is not None:
        rec.launches.append(Launch(device, kernel, buffers))


def record_host(device: str, step: Callable[[Sequence[Buffer]], None], buffers: list[Buffer]) -> None:
    """A step the host runs on device buffers (tg.distributed's collectives): a replay calls step(buffers) again."""
    if (rec := RECORDER.get()) is not None:
        rec.launches.append(Launch(device, None, buffers, host=step))


def record_rebind(tensor: Tensor, old: Node) -> None:
    """A tensor is about to point at new data (called from Tensor.node's setter while capturing)."""
    if (rec := RECORDER.get()) is not None:
        rec.rebinds.append((tensor, old))


def record_check(buffer: Buffer, view: View, check: Callable[[Any], None]) -> None:
    """Data the call validated (indices against their bounds): a replay reads it again through `view` and runs
    `check` on it, so a replay raises where the eager call would have."""
    if (rec := RECORDER.get()) is not None:
        rec.checks.append((buffer, view, check))


def record_random() -> None:
    if (rec := RECORDER.get()) is not None:
        rec.random = True


def on_replay(hook: Callable[[], None]) -> None:
    """Run `hook` before every replay of the function being captured (an optimizer uses it to upload
    hyper-parameters that Python code changed between steps, like a scheduled learning rate)."""
    if (rec := RECORDER.get()) is not None and hook not in rec.hooks:
        rec.hooks.append(hook)
