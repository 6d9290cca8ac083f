"""Calls of an imported model replayed as a compiled program, one per input signature (shapes, dtypes, device).

The first call of a signature runs eagerly (kernels compile), the second is captured by a TinyJit, and later calls
replay its kernels without building or scheduling a graph — the reason an eager call costs tens of microseconds per
ONNX node. A replay freezes whatever the captured call decided in Python, so the capture watches the model run:

- values read back to Python are fine when they come from constants, initializers and input *shapes* (the shape
  arithmetic of exported models: Shape → Gather → Concat → Reshape), which a signature fixes;
- a read of anything computed from input *data* (an If on a computed condition, NonZero, a data-dependent
  TopK k: its lazy graph reaches an input), random draws, or outputs that are not tensors make the signature
  run eagerly from then on.

Outputs are copied out of the replay's buffers, so a result the caller keeps is never overwritten by a later call.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Optional

from tg.core import Tensor, TinyJit, capture, stats
from tg.core.device import Buffer
from tg.core.multi import shards_of
from tg.core.ops import Node, Op

SIGNATURES_KEPT = 8  # compiled signatures per model (the least recently used is dropped)


class NotReplayable(Exception):
    """The captured call did something a replay cannot repeat; this signature runs eagerly."""


class Taint:
    """Watches the reads of a captured call: a read of data computed from the inputs' data (its lazy graph reaches
    an input's buffer) stops the capture. Shape and Size start new values from shapes alone, so the shape
    arithmetic after them reads freely. Index checks may read input data (a replay repeats them); the buffers they
    compute become sources too, since computing them cuts their graphs."""

    def __init__(self, inputs: list[Tensor]):
        self.sources = {id(n) for t in inputs for n in _nodes(t)}

    def __call__(self, tensor: Tensor, checked: bool) -> None:
        if not self._depends(tensor):
            return
        if not checked:
            raise NotReplayable(f"it reads data computed from the inputs (a {tensor.dtype.name}{list(tensor.shape)})")
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
        """The outputs, or None where this signature runs eagerly (the caller then does)."""
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
        except NotReplayable as e:
            with self.lock:
                self.jits[key] = None
            if stats.debug_level() >= 1:
                stats.log(f"tg: onnx: inputs {[k[0] for k in key]} run eagerly from now on: {e}")
            return None
        finally:
            entry.lock.release()
        return [_own_copy(t) for t in outs] if entry.jit.calls > 1 else list(outs)

    def _traced(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        if capture.capturing():
            with capture.watching_reads(Taint(list(tensors))):
                outs = self.run(list(tensors))
        else:
            outs = self.run(list(tensors))
        rec = capture.RECORDER.get()
        if rec is not None and rec.random:
            raise NotReplayable("the model draws random numbers")
        if not all(isinstance(o, Tensor) for o in outs):
            raise NotReplayable("an output is a sequence or an empty optional")
        return tuple(o.contiguous() for o in outs)


class _Entry:
    def __init__(self, fn: Callable[..., tuple[Tensor, ...]]):
        self.jit = TinyJit(fn)
        self.lock = threading.Lock()


_NEW: Any = object()


def _own_copy(t: Tensor) -> Tensor:
    """A replay output in a buffer of its own (the replay writes the same buffers again next call)."""
    node = t.node
    assert node.op is Op.BUFFER and node.buffer is not None, "replay outputs are realized dense buffers"
    buf = Buffer(node.device, node.numel, node.dtype)
    if node.numel:
        buf.copy_from(node.buffer)
    return Tensor(Node(Op.BUFFER, (), None, node.dtype, node.shape, node.device, buffer=buf))
