"""Capture and replay: run a function's kernels again without rebuilding its graph.

    step = TinyJit(train_step)      # or @TinyJit
    for x, y in loader:
        loss = step(x, y)

The first call runs normally (kernels compile, optimizer state appears). The second call is captured:
every kernel launch and copy is recorded with the buffers it used, and so is every tensor whose data the
call replaced (a parameter after an optimizer step, BatchNorm's running statistics). From the third call
on, only the recorded launches run, on the new inputs' buffers; replaced tensors get their new values
copied back into the buffers they had, so the next replay reads them. No Python tensor code runs then:
no graph building, autograd or scheduling.

What a replay cannot see, it refuses or warns about: inputs must match the captured call's shapes,
dtypes and devices (and non-tensor arguments its values); random numbers drawn inside the function are
drawn once, at capture, and a warning says so. Outputs are the captured tensors, overwritten by the next
call: copy what you keep (`.numpy()`).
"""
from __future__ import annotations

import functools
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Optional, TypeVar

from . import capture, stats
from .capture import Launch, on_replay
from .device import Buffer, get_device
from .multi import shards_of
from .ops import Op
from .tensor import Tensor
from .uop import Node, lazy
from .view import View

__all__ = ["Launch", "TinyJit", "on_replay"]

R = TypeVar("R")


@dataclass
class _Handoff:
    """A tensor whose data the call replaced: after each replay, `new` is copied into `old`."""

    tensor: Tensor
    old: Buffer
    new: Buffer


def _without_constants(launches: list[Launch], handoffs: list[_Handoff]) -> list[Launch]:
    """The launches a replay must run: a kernel that reads no buffer (zeros, ones) wrote the same values at capture as
    it would every time, so it is left out, unless something else writes its buffer too. (A Python scalar is a
    buffer the kernel reads: an arange or a full() still runs.)"""
    writes = Counter(id(b) for launch in launches for b in (launch.buffers if launch.host else launch.buffers[:1]))
    writes.update(id(h.old) for h in handoffs)

    def constant(launch: Launch) -> bool:
        return launch.kernel is not None and len(launch.buffers) == 1 and writes[id(launch.buffers[0])] == 1
    return [launch for launch in launches if not constant(launch)]


@dataclass
class _Plan:
    launches: list[Launch]
    runners: list[Optional[Callable[[Sequence[Buffer]], None]]]  # per launch: its device's bound kernel (None: a copy)
    inputs: list[Buffer]  # the buffers of the captured call's tensor arguments, in argument order
    signature: list[Any]  # per argument: (shape, dtype, device) for tensors, the value otherwise
    handoffs: list[_Handoff]
    hooks: list[Callable[[], None]]
    result: Any
    checks: list[tuple[Buffer, View, Callable[[Any], None]]] = field(default_factory=list)

    @property
    def devices(self) -> set[str]:
        """The devices the replay queues work on (each is flushed once at its end)."""
        return {launch.buffers[0].device for launch in self.launches}


class TinyJit(Generic[R]):
    """Wrap `fn` (tensors in, tensors out) so that calls after the second replay its captured kernels."""

    def __init__(self, fn: Callable[..., R]):
        self.fn = fn
        self.calls = 0
        self.plan: Optional[_Plan] = None
        functools.update_wrapper(self, fn)

    def reset(self) -> None:
        """Forget the capture: the next call runs normally and the one after captures again."""
        self.calls, self.plan = 0, None

    def __call__(self, *args: Any) -> R:

        args = tuple(_prepared(a) if isinstance(a, Tensor) else a for a in args)
        self.calls += 1
        if self.calls == 1:
            return _realized(self.fn(*args))
        if self.plan is None:
            return self._capture(args)
        return self._replay(args)

    # ---- capture -------------------------------------------------------------------------------------
    def _capture(self, args: tuple[Any, ...]) -> R:

        if capture.RECORDER.get() is not None:
            raise RuntimeError("TinyJit: a jitted function cannot call another one while it is being captured")
        rec = capture.Recorder()
        token = capture.RECORDER.set(rec)
        try:
            result = _realized(self.fn(*args))
            result = _own_buffers(result, {id(b) for a in args if isinstance(a, Tensor) for b in _buffers_of(a)})
            for t, _ in rec.rebinds:
                t.realize()
        finally:
            capture.RECORDER.reset(token)
        if rec.random:
            warnings.warn(f"TinyJit: {getattr(self.fn, '__name__', 'the function')} draws random numbers; its "
                          "replays reuse the draw made at capture. Draw them outside and pass them in.",
                          stacklevel=3)
        inputs = [b for a in args if isinstance(a, Tensor) for b in _buffers_of(a)]
        signature = [(a.shape, a.dtype, a.device) if isinstance(a, Tensor) else a for a in args]
        handoffs = _handoffs(rec.rebinds)
        launches = _without_constants(rec.launches, handoffs)
        runners = [launch.host or (get_device(launch.device).bind(launch.kernel) if launch.kernel is not None else None)
                   for launch in launches]
        self.plan = _Plan(launches, runners, inputs, signature, handoffs, rec.hooks, result, rec.checks)
        if stats.debug_level() >= 1:
            stats.log(f"tg: TinyJit captured {len(rec.launches)} launch(es), {len(handoffs)} replaced tensor(s)")
        return result

    # ---- replay --------------------------------------------------------------------------------------
    def _replay(self, args: tuple[Any, ...]) -> R:

        plan = self.plan
        assert plan is not None
        self._check(args, plan)
        swap = {id(old): new for old, new in zip(plan.inputs, (b for a in args if isinstance(a, Tensor)
                                                                 for b in _buffers_of(a)))}
        for hook in plan.hooks:
            hook()
        for launch, run in zip(plan.launches, plan.runners):
            bufs = [swap.get(id(b), b) for b in launch.buffers]
            if run is None:
                bufs[0].copyin(bufs[1].numpy())
            else:
                run(bufs)
        for buffer, view, check in plan.checks:
            from .numpy_device import strided

            check(strided(swap.get(id(buffer), buffer).numpy(), view))
        for h in plan.handoffs:
            h.old.copy_from(h.new)
        for device in plan.devices:
            get_device(device).flush()
        stats.counters.kernels += sum(launch.kernel is not None for launch in plan.launches)
        return plan.result

    def _check(self, args: tuple[Any, ...], plan: _Plan) -> None:

        name = getattr(self.fn, "__name__", "the function")
        if len(args) != len(plan.signature):
            raise TypeError(f"TinyJit: {name} was captured with {len(plan.signature)} argument(s), got {len(args)}")
        for i, (a, want) in enumerate(zip(args, plan.signature)):
            got = (a.shape, a.dtype, a.device) if isinstance(a, Tensor) else a
            if got != want:
                what = "shape, dtype and device" if isinstance(a, Tensor) else "value"
                raise ValueError(f"TinyJit: argument {i} of {name} has {what} {got}, but the captured call had "
                                 f"{want}; a capture replays one signature (call jit.reset() or use a new TinyJit)")


def _prepared(t: Tensor) -> Tensor:
    """The argument as a realized contiguous tensor (its own buffer is what a replay swaps in). A view that reads
    a whole realized buffer in order (a reshape of it) is that buffer in the argument's shape, not a copy: a
    reshaped input cost a full copy every replay (a row sum of 64M floats on an H200 ran at a third of its speed)."""
    if all(n.op is Op.BUFFER and n.buffer is not None for n in shards_of(t.node)):
        return t
    node = t.node
    base = node.base if isinstance(node, Node) else None
    if base is not None and base.op is Op.BUFFER and base.buffer is not None and node.view.is_contiguous and \
            node.view.numel == base.buffer.size and node.dtype == base.dtype:
        whole = lazy(Op.BUFFER, (), None, node.dtype, node.shape, node.device, buffer=base.buffer)
        return Tensor(whole)
    return t.contiguous().realize()


def _buffers_of(t: Tensor) -> list[Buffer]:
    """The buffers holding a realized tensor's data: one, or one per device for a tensor spread over several."""
    out = []
    for node in shards_of(t.node):
        assert node.base.buffer is not None, "a realized tensor has a buffer"
        out.append(node.base.buffer)
    return out


def _realized(result: Any) -> Any:

    tensors = [r for r in (result if isinstance(result, (tuple, list)) else (result,)) if isinstance(r, Tensor)]
    if tensors:
        tensors[0].realize(*tensors[1:])
    return result


def _own_buffers(result: Any, inputs: set[int]) -> Any:
    """The result with every tensor that is an argument, or a view of one, replaced by a recorded copy: a replay
    writes the copy from the new argument (else it would keep returning the captured call's data)."""

    def own(r: Any) -> Any:
        if isinstance(r, Tensor) and any(n.base.op is Op.BUFFER and id(n.base.buffer) in inputs
                                         for n in shards_of(r.node)):
            return r.clone().realize()
        return r

    if isinstance(result, tuple) and hasattr(result, "_fields"):  # a namedtuple
        return type(result)(*map(own, result))
    if isinstance(result, (tuple, list)):
        return type(result)(map(own, result))
    return own(result)


def _handoffs(rebinds: list[tuple[Tensor, Node]]) -> list[_Handoff]:
    """Tensors that pointed at data from before the call and now point at data the call computed: put
    the new data back into the old buffer (and the tensor back on it), so that a replay reads it there."""
    out: list[_Handoff] = []
    first: dict[int, tuple[Tensor, Node]] = {}  # each tensor with the node it had before the call
    for t, old in rebinds:
        first.setdefault(id(t), (t, old))
    for t, old in first.values():
        if t.node is old or any(n.base.op is not Op.BUFFER for n in shards_of(old)):
            continue  # unchanged, or not data from before the call (nor a view of it)
        olds, news = shards_of(old), shards_of(t.node)
        if t.node.shape != old.shape or len(olds) != len(news):
            raise _relaid(old, t.node)
        moved = []
        for o, n in zip(olds, news):
            held, new = o.base.buffer, n.base.buffer
            assert held is not None and new is not None, "realized tensors have buffers"
            if new is held:
                continue
            if o.shape != n.shape or not (n.view.is_contiguous and o.view.is_contiguous) or new.size != held.size:
                raise _relaid(old, t.node)
            moved.append(_Handoff(t, held, new))
        for h in moved:
            h.old.copy_from(h.new)
        if moved:
            t._node = old  # back on its own buffers, which now hold the new value
        out.extend(moved)
    return out


def _relaid(old: Node, new: Node) -> RuntimeError:
    return RuntimeError(f"TinyJit: a tensor of shape {old.shape} was replaced by one of shape {new.shape} (or a "
                        "different layout, or other devices) inside the captured call; a replay needs the same layout")
