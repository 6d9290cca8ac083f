"""What a TinyJit capture records while the captured call runs: kernel launches and copies, tensors whose data
the call replaced, index checks to repeat, hooks to run before each replay. The front end and the realizer
report here; `jit.py` (TinyJit) starts a capture and turns the record into a replay plan.

The record in progress belongs to the current thread (or asyncio task): other threads keep running eagerly.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .device import Buffer
    from .kernel import Kernel
    from .tensor import Tensor
    from .uop import Node
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


_CHECKING: contextvars.ContextVar[bool] = contextvars.ContextVar("tg_checked_read", default=False)
ReadHook = Callable[["Tensor", bool], None]
_READ_HOOK: contextvars.ContextVar[Optional[ReadHook]] = contextvars.ContextVar("tg_read_hook", default=None)


def record_read(tensor: Tensor) -> None:
    """`tensor`'s data is about to be read back to Python (Tensor.numpy), before it is computed. A replay reads
    nothing back, so whatever a call decides from such data is frozen in its replay: a caller that replays
    automatically (tg.nn.onnx) watches the reads with `watching_reads`."""
    if (hook := _READ_HOOK.get()) is not None:
        hook(tensor, _CHECKING.get())


@contextlib.contextmanager
def watching_reads(hook: ReadHook) -> Iterator[None]:
    """Call hook(tensor, checked) at each read in this block; `checked`: an index check a replay repeats."""
    token = _READ_HOOK.set(hook)
    try:
        yield
    finally:
        _READ_HOOK.reset(token)


@contextlib.contextmanager
def checked_read() -> Iterator[None]:
    """Reads inside this block are validations a replay repeats (record_check), not decisions it freezes."""
    token = _CHECKING.set(True)
    try:
        yield
    finally:
        _CHECKING.reset(token)


def record_random() -> None:
    if (rec := RECORDER.get()) is not None:
        rec.random = True


def on_replay(hook: Callable[[], None]) -> None:
    """Run `hook` before every replay of the function being captured (an optimizer uses it to upload
    hyper-parameters that Python code changed between steps, like a scheduled learning rate)."""
    if (rec := RECORDER.get()) is not None and hook not in rec.hooks:
        rec.hooks.append(hook)
