"""Calls of an imported model replayed as a compiled program, one per input signature (shapes, dtypes, device).

The first call of a signature runs eagerly (kernels compile), the second is captured by a TinyJit, and later calls
replay its kernels without building or scheduling a graph — the reason an eager call costs tens of microseconds per
ONNX node. A replay freezes whatever the captured call decided in Python, so the capture watches the model run:

- values read back to Python are fine when they come from constants, initializers and input *shapes* (the shape
  arithmetic of exported models: Shape → Gather → Concat → Reshape), which a signature fixes;
- a read of anything computed from input *data* (an If on a computed condition, NonZero, a data-dependent
  TopK k: its lazy graph reaches an input) becomes a guard: each replay computes the value again and compares;
  where it differs, that call runs eagerly (and after three misses in a row, every call of the signature);
- random draws, outputs that are not tensors, or more than GUARDED_ELEMENTS guarded values make the signature
  run eagerly from then on.

Outputs are copied out of the replay's buffers, so a result the caller keeps is never overwritten by a later call.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Optional

import numpy as np

from tg.core import Tensor, TinyJit, capture, stats
from tg.core.device import Buffer
from tg.core.multi import shards_of
from tg.core.ops import Op
from tg.core.uop import Node, lazy

SIGNATURES_KEPT = 8  # compiled signatures per model (the least recently used is dropped)


GUARDED_ELEMENTS = 4096  # input-dependent values a capture may read and check on each replay (else: eager)
MISSES_KEPT = 3  # replays in a row whose guards failed before a signature runs eagerly for good


class NotReplayable(Exception):
    """The captured call did something a replay cannot repeat; this signature runs eagerly."""


class GuardMiss(Exception):
    """A value the captured call read (and decided on) came out different in this replay."""


class Taint:
    """Watches the reads of a captured call. A read of data computed from the inputs' data (its lazy graph reaches
    an input's buffer) becomes a guard: the replay computes that value again and compares it with the captured
    one (an If on a sample-rate input replays while the rate stays the same). Shape and Size start new values from
    shapes alone, so the shape arithmetic after them reads freely. Index checks may read input data (a replay
    repeats them); the buffers they compute become sources too, since computing them cuts their graphs."""

    def __init__(self, inputs: list[Tensor]):
        self.sources = {id(n) for t in inputs for n in _nodes(t)}
        self.guards: list[Tensor] = []

    def __call__(self, tensor: Tensor, checked: bool) -> None:
        if not self._depends(tensor):
            return
        if not checked:
            self.guards.append(tensor)
            if sum(t.numel() for t in self.guards) > GUARDED_ELEMENTS:
                raise NotReplayable(f"it reads more than {GUARDED_ELEMENTS} values computed from its inputs")
        self.sources.update(id(n) for n in _nodes(tensor))

    def _depends(self, tensor: Tensor) -> bool:
        seen: set[int] = set()
        stack = list(_nodes(tensor))
        while stack:
            n = stack.pop()
            if id(n) in self.sources:
                return True
            if id(n) not in seen:
                seen.add(id(n))
                stack.extend(n.src)
        return False

    def record_guards(self) -> None:
        """Ask the replay to compare each guarded value with what the capture read."""
        for t in self.guards:
            node, seen = t.node, t.numpy()
            assert node.base.buffer is not None, "a value read back is realized"
            capture.record_check(node.base.buffer, node.view, _Guard(seen))


class _Guard:
    def __init__(self, seen: np.ndarray):
        self.seen = seen

    def __call__(self, now: np.ndarray) -> None:
        now = np.asarray(now).reshape(self.seen.shape)
        if not np.array_equal(now, self.seen, equal_nan=self.seen.dtype.kind == "f"):
            raise GuardMiss("a value the model decided on changed")


def _nodes(t: Tensor) -> list[Node]:
    return [m for n in shards_of(t.node) for m in (n, n.base)]


class SignatureRuns:
    """The compiled calls of one model: one TinyJit per input signature, bounded, each used by one thread at a
    time (another thread meanwhile runs eagerly)."""

    def __init__(self, run: Callable[[list[Tensor]], list[Any]]):
        self.run = run
        self.jits: OrderedDict[tuple[Any, ...], Optional[_Entry]] = OrderedDict()
        self.lock = threading.Lock()

    def __call__(self, tensors: list[Tensor]) -> Optional[list[Tensor]]:
        """The outputs, or None where this call runs eagerly (the caller then does)."""
        if capture.capturing():  # inside the caller's own TinyJit: its capture records this call's kernels
            return None
        key = tuple((t.shape, t.dtype, t.device) for t in tensors)
        with self.lock:
            entry = self.jits.get(key, _NEW)
            if entry is _NEW:
                entry = self.jits[key] = _Entry(self._traced)
                while len(self.jits) > SIGNATURES_KEPT:
                    self.jits.popitem(last=False)
            self.jits.move_to_end(key)
        if entry is None or not entry.lock.acquire(blocking=False):
            return None
        try:
            outs = entry.jit(*tensors)
            entry.misses = 0
            # copied before the lock goes: the next replay, perhaps another thread's, writes these buffers again
            return [_own_copy(t) for t in outs] if entry.jit.calls > 1 else list(outs)
        except GuardMiss:  # inference changes no state: the caller computes this call eagerly instead
            entry.misses += 1
            if entry.misses >= MISSES_KEPT:
                self._give_up(key, f"the values it decides on changed in {MISSES_KEPT} replays in a row")
            return None
        except NotReplayable as e:
            self._give_up(key, str(e))
            return None
        finally:
            entry.lock.release()

    def _give_up(self, key: tuple[Any, ...], why: str) -> None:
        with self.lock:
            self.jits[key] = None
        if stats.debug_level() >= 1:
            stats.log(f"tg: onnx: inputs {[k[0] for k in key]} run eagerly from now on: {why}")

    def _traced(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        if not capture.capturing():
            return self._checked(self.run(list(tensors)))
        taint = Taint(list(tensors))
        with capture.watching_reads(taint):
            outs = self.run(list(tensors))
        rec = capture.RECORDER.get()
        if rec is not None and rec.random:
            raise NotReplayable("the model draws random numbers")
        checked = self._checked(outs)
        taint.record_guards()
        return checked

    @staticmethod
    def _checked(outs: list[Any]) -> tuple[Tensor, ...]:
        if not all(isinstance(o, Tensor) for o in outs):
            raise NotReplayable("an output is a sequence or an empty optional")
        return tuple(o.contiguous() for o in outs)


class _Entry:
    def __init__(self, fn: Callable[..., tuple[Tensor, ...]]):
        self.jit = TinyJit(fn)
        self.lock = threading.Lock()
        self.misses = 0


_NEW: Any = object()


def _own_copy(t: Tensor) -> Tensor:
    """A replay output in a buffer of its own (the replay writes the same buffers again next call)."""
    node = t.node
    assert node.op is Op.BUFFER and node.buffer is not None, "replay outputs are realized dense buffers"
    buf = Buffer(node.device, node.numel, node.dtype)
    if node.numel:
        buf.copy_from(node.buffer)
    return Tensor(lazy(Op.BUFFER, (), None, node.dtype, node.shape, node.device, buffer=buf))
