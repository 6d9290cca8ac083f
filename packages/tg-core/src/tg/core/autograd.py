"""Reverse-mode autodiff: one gradient rule per primitive op, and `backward` over the tape.

Each rule is a `Function` whose `forward` builds lazy nodes from its inputs' nodes and whose
`backward` maps the output's gradient node to one gradient node per input (None where the input
needs none). Gradients are lazy too, so the backward pass fuses like any other graph.
"""
from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from . import multi
from .dtype import DType
from .ops import Op, postorder
from .uop import Node, const, lazy

if TYPE_CHECKING:
    from .tensor import Tensor

Grads = tuple[Optional[Node], ...]


class _GradMode(threading.local):
    """Whether ops record what backward() needs: per thread, as torch's grad mode is, so that no_grad() in
    one thread never turns off training in another."""

    enabled: bool = True


GRAD_MODE = _GradMode()


class _GradSwitch:
    """Grad mode set to `mode` inside a `with` block (or a decorated function's call), restored after."""

    mode = True

    def __enter__(self) -> None:
        self.prev = GRAD_MODE.enabled
        GRAD_MODE.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        GRAD_MODE.enabled = self.prev

    def __call__(self, fn: Callable) -> Callable:
        mode = self.mode

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            prev = GRAD_MODE.enabled
            GRAD_MODE.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                GRAD_MODE.enabled = prev
        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        return wrapper


class no_grad(_GradSwitch):  # noqa: N801 - torch's name
    """Context manager and decorator that turns off gradient tracking, like torch.no_grad."""

    mode = False


class enable_grad(_GradSwitch):  # noqa: N801 - torch's name
    """Context manager and decorator that turns gradient tracking on (inside a no_grad block), like torch's."""

    mode = True


class inference_mode(_GradSwitch):  # noqa: N801 - torch's name
    """torch.inference_mode: no gradient tracking (as no_grad); inference_mode(False) leaves the mode as it is."""

    def __init__(self, mode: bool = True):
        self.turns_off = mode

    def __enter__(self) -> None:
        self.mode = False if self.turns_off else GRAD_MODE.enabled
        super().__enter__()

    def __call__(self, fn: Callable) -> Callable:
        if not self.turns_off:
            return fn
        return no_grad()(fn)


class set_grad_enabled(_GradSwitch):  # noqa: N801 - torch's name
    """Set grad mode now (a plain call), or for a `with` block, after which it is restored (torch's)."""

    def __init__(self, mode: bool):
        self.mode, self.prev = bool(mode), GRAD_MODE.enabled
        GRAD_MODE.enabled = self.mode

    def __enter__(self) -> None:
        pass  # set already, by the constructor; __exit__ restores the mode from before it

    def __exit__(self, *exc: object) -> None:
        GRAD_MODE.enabled = self.prev


def is_grad_enabled() -> bool:
    """Whether ops record gradients in this thread now."""
    return GRAD_MODE.enabled


class Function:
    """A differentiable primitive. Subclasses define `forward(*nodes, **args)` and `backward(grad)`."""

    def __init__(self, *tensors: Tensor):
        self.needs_input_grad = [t.requires_grad for t in tensors]
        self.requires_grad = True in self.needs_input_grad
        self.parents: tuple[Tensor, ...] = tensors if self.requires_grad else ()
        # where each input's gradient goes on: the Function that made it, as it was when this op read it (an in-place
        # write rebinds a tensor to a new Function later; this op's gradient still belongs to the old one)
        self.sources: tuple[Optional[Function], ...] = tuple([t._ctx for t in tensors]) if self.requires_grad else ()

    released: Optional[str] = None  # after a backward() without retain_graph: the Function's name, nothing saved
    hooks: Optional[list[GradHook]] = None  # register_hook() on the tensor this made: called with its gradient
    retained: Optional[weakref.ref] = None  # retain_grad() on the tensor this made: its gradient goes to its .grad

    def hooks_list(self) -> list[GradHook]:
        if self.hooks is None:
            self.hooks = []
        return self.hooks

    def release(self) -> None:
        """Let go of what forward() saved (a backward() without retain_graph is done with it)."""
        self.__dict__ = {"released": type(self).__name__, "parents": (), "sources": (), "needs_input_grad": (),
                         "retained": self.retained}

    def forward(self, *args: Any, **kwargs: Any) -> Node:
        raise NotImplementedError

    def backward(self, grad: Node) -> Node | Grads:
        raise NotImplementedError(f"{type(self).__name__} has no gradient")


class Explicit(Function):
    """An elementwise op computed without recording its pieces, whose gradient is a formula: grad * derivative(x, y).
    Composite ops get torch's derivative this way instead of the chain rule through their pieces, which multiplies
    inf by 0 where a piece overflows (tanh'(inf), the unselected exp of elu at x = 400) and gives NaN."""

    def __init__(self, *tensors: Tensor):
        super().__init__(*tensors)
        self.tensor = tensors[0].tensor_class

    def forward(self, x: Node, value: Callable[[Tensor], Tensor],
                derivative: Callable[[Tensor, Tensor], Tensor]) -> Node:
        self.x, self.derivative = self.tensor(x), derivative
        with no_grad():
            self.y = value(self.x)
        return self.y.node

    def backward(self, grad: Node) -> Node:
        with no_grad():
            return (self.tensor(grad) * self.derivative(self.x, self.y)).node


def with_derivative(derivative: Callable[..., Tensor]) -> Callable[[Callable[..., Tensor]], Callable[..., Tensor]]:
    """Decorator for an elementwise `fn(x, *args)`: its gradient is `grad * derivative(x, fn(x, *args), *args)`."""
    def wrap(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        def op(x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
            if not (x.requires_grad and GRAD_MODE.enabled):
                return fn(x, *args, **kwargs)
            return x._apply(Explicit, value=lambda t: fn(t, *args, **kwargs),
                            derivative=lambda t, y: derivative(t, y, *args, **kwargs))
        op.__name__, op.__qualname__, op.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
        op.__wrapped__ = fn  # type: ignore[attr-defined]
        return op
    return wrap


# ---- unary --------------------------------------------------------------------------------------------
class Neg(Function):
    def forward(self, x: Node) -> Node:
        return x.alu(Op.NEG)

    def backward(self, grad: Node) -> Node:
        return grad.alu(Op.NEG)


class Recip(Function):
    def forward(self, x: Node) -> Node:
        self.ret = x.alu(Op.RECIP)
        return self.ret

    def backward(self, grad: Node) -> Node:
        return grad.alu(Op.MUL, self.ret.alu(Op.MUL, self.ret)).alu(Op.NEG)


class Sqrt(Function):
    def forward(self, x: Node) -> Node:
        self.ret = x.alu(Op.SQRT)
        return self.ret

    def backward(self, grad: Node) -> Node:
        return grad.alu(Op.MUL, self.ret.alu(Op.MUL, self.ret.const_like(2)).alu(Op.RECIP))


class Exp(Function):
    """e**x as exp2(x / ln 2), with torch's gradient grad * e**x (through exp2's rule it was multiplied by ln 2, then
    by 1 / ln 2: an extra rounding, and two ops more to build)."""

    def forward(self, x: Node) -> Node:
        self.ret = x.alu(Op.MUL, x.const_like(1 / math.log(2))).alu(Op.EXP2)
        return self.ret

    def backward(self, grad: Node) -> Node:
        return grad.alu(Op.MUL, self.ret)


class Log(Function):
    """The natural log as log2(x) * ln 2, with torch's gradient grad / x."""

    def forward(self, x: Node) -> Node:
        self.x = x
        return x.alu(Op.LOG2).alu(Op.MUL, x.const_like(math.log(2)))

    def backward(self, grad: Node) -> Node:
        return grad.alu(Op.FDIV, self.x)


class Exp2(Function):
    def forward(self, x: Node) -> Node:
        self.ret = x.alu(Op.EXP2)
        return self.ret

    def backward(self, grad: Node) -> Node:
        return grad.alu(Op.MUL, self.ret.alu(Op.MUL, self.ret.const_like(math.log(2))))


class Log2(Function):
    def forward(self, x: Node) -> Node:
        self.x = x
        return x.alu(Op.LOG2)

    def backward(self, grad: Node) -> Node:
        return grad.alu(Op.MUL, self.x.alu(Op.MUL, self.x.const_like(math.log(2))).alu(Op.RECIP))


class Sin(Function):
    def forward(self, x: Node) -> Node:
        self.x = x
        return x.alu(Op.SIN)

    def backward(self, grad: Node) -> Node:  # cos(x) = sin(pi/2 - x)
        return grad.alu(Op.MUL, self.x.const_like(math.pi / 2).alu(Op.ADD, self.x.alu(Op.NEG)).alu(Op.SIN))


class Cast(Function):
    def forward(self, x: Node, dtype: DType) -> Node:
        self.input_dtype = x.dtype
        return x.cast(dtype)

    def backward(self, grad: Node) -> Node:
        return grad.cast(self.input_dtype)


class Bitcast(Function):
    """The same bits as another dtype. Its input is detached: the bits carry no gradient (torch's view(dtype)
    neither)."""

    def forward(self, x: Node, dtype: DType) -> Node:
        return x.bitcast(dtype)


class Contiguous(Function):
    def forward(self, x: Node) -> Node:
        return x.contiguous()

    def backward(self, grad: Node) -> Node:
        return grad


class Clone(Function):
    """A copy in a new buffer, even of data that is already contiguous (torch's clone)."""

    def forward(self, x: Node) -> Node:
        return lazy(Op.CONTIGUOUS, (x,), None, x.dtype, x.shape, x.device)

    def backward(self, grad: Node) -> Node:
        return grad


class Copy(Function):
    """To one device (from one, or gathered from several); the gradient goes back to where the input was."""

    def forward(self, x: Node, device: str) -> Node:
        self.input_layout = multi.layout_of(x)
        return x.copy_to(device)

    def backward(self, grad: Node) -> Node:
        return multi.relayout(grad, self.input_layout)  # type: ignore[return-value]  # stands where a Node does


class Shard(Function):
    """Spread over several devices, split along `axis` or replicated (None); the gradient goes back to where the
    input was."""

    def forward(self, x: Node, devices: tuple[str, ...], axis: Optional[int]) -> Node:
        self.input_layout = multi.layout_of(x)
        return multi.shard(x, devices, axis)  # type: ignore[return-value]  # stands where a Node does

    def backward(self, grad: Node) -> Node:
        return multi.relayout(grad, self.input_layout)  # type: ignore[return-value]


# ---- binary and ternary -----------------------------------------------------------------------------
class Add(Function):
    def forward(self, x: Node, y: Node) -> Node:
        return x.alu(Op.ADD, y)

    def backward(self, grad: Node) -> Grads:
        return grad, grad


class Sub(Function):
    def forward(self, x: Node, y: Node) -> Node:
        return x.alu(Op.ADD, y.alu(Op.NEG))

    def backward(self, grad: Node) -> Grads:
        return grad, grad.alu(Op.NEG) if self.needs_input_grad[1] else None


class Mul(Function):
    def forward(self, x: Node, y: Node) -> Node:
        self.x, self.y = x, y
        return x.alu(Op.MUL, y)

    def backward(self, grad: Node) -> Grads:
        return (grad.alu(Op.MUL, self.y) if self.needs_input_grad[0] else None,
                grad.alu(Op.MUL, self.x) if self.needs_input_grad[1] else None)


class Div(Function):
    """True division of floats: d(x/y) = grad/y and -grad*(x/y)/y."""

    def forward(self, x: Node, y: Node) -> Node:
        self.y = y
        self.ret = x.alu(Op.FDIV, y)
        return self.ret

    def backward(self, grad: Node) -> Grads:
        return (grad.alu(Op.FDIV, self.y) if self.needs_input_grad[0] else None,
                grad.alu(Op.MUL, self.ret).alu(Op.FDIV, self.y).alu(Op.NEG) if self.needs_input_grad[1] else None)


class Max(Function):
    """Elementwise maximum; on ties each input gets half the gradient, as torch.maximum does."""

    def forward(self, x: Node, y: Node) -> Node:
        self.x, self.y = x, y
        return x.alu(Op.MAX, y)

    def backward(self, grad: Node) -> Grads:
        # torch's rule, as selects (a product with a 0 share would turn an infinite gradient into NaN): half each on
        # a tie, nothing to the smaller input, the whole gradient to both where a NaN makes them incomparable
        half, zero = grad.alu(Op.MUL, grad.const_like(0.5)), grad.const_like(0)
        tie = self.x.alu(Op.CMPEQ, self.y)
        x_loses, y_loses = self.x.alu(Op.CMPLT, self.y), self.y.alu(Op.CMPLT, self.x)
        return (tie.alu(Op.WHERE, half, x_loses.alu(Op.WHERE, zero, grad)) if self.needs_input_grad[0] else None,
                tie.alu(Op.WHERE, half, y_loses.alu(Op.WHERE, zero, grad)) if self.needs_input_grad[1] else None)


class Relu(Function):
    """max(x, 0), NaN kept (the MAX primitive propagates it); the gradient is 1 where x > 0 and 0 elsewhere,
    at 0 included (torch), where Max's rule would split a tie. The mask is read from the result (0 < relu(x) exactly
    where 0 < x, NaN included), as torch does: the input need not be kept, so relu fuses into the op before it
    (a matmul's epilogue) instead of a kernel of its own."""

    def forward(self, x: Node) -> Node:
        self.ret = x.alu(Op.MAX, x.const_like(0))
        return self.ret

    def backward(self, grad: Node) -> Node:
        return self.ret.const_like(0).alu(Op.CMPLT, self.ret).alu(Op.WHERE, grad, grad.const_like(0))


class Where(Function):
    def forward(self, cond: Node, x: Node, y: Node) -> Node:
        self.cond = cond
        return cond.alu(Op.WHERE, x, y)

    def backward(self, grad: Node) -> Grads:
        zero = grad.const_like(0)
        return (None,
                self.cond.alu(Op.WHERE, grad, zero) if self.needs_input_grad[1] else None,
                self.cond.alu(Op.WHERE, zero, grad) if self.needs_input_grad[2] else None)


# ---- reduce -------------------------------------------------------------------------------------------
class Sum(Function):
    """Sum over axes; with `shape`, the result reshaped to it (keepdim=False: the reduced dims dropped in one rule)."""

    def forward(self, x: Node, axes: tuple[int, ...], shape: Optional[tuple[int, ...]] = None) -> Node:
        self.input_shape = x.shape
        out = x.reduce(Op.SUM, axes)
        self.kept = out.shape
        return out if shape is None else out.movement(Op.RESHAPE, shape)

    def backward(self, grad: Node) -> Node:
        return grad.movement(Op.RESHAPE, self.kept).movement(Op.EXPAND, self.input_shape)


class ReduceMax(Function):
    """Max over axes; the gradient is shared evenly among the positions that hold the maximum (amax's rule; with
    `nan_shares`, max()'s: a NaN maximum's gradient goes to the NaNs, and only the maxima get anything)."""

    def forward(self, x: Node, axes: tuple[int, ...], nan_shares: bool = False,
                shape: Optional[tuple[int, ...]] = None) -> Node:
        self.x, self.axes, self.nan_shares = x, axes, nan_shares
        self.ret = x.reduce(Op.RMAX, axes)
        return self.ret if shape is None else self.ret.movement(Op.RESHAPE, shape)

    def backward(self, grad: Node) -> Node:
        grad = grad.movement(Op.RESHAPE, self.ret.shape)
        full = self.ret.movement(Op.EXPAND, self.x.shape)
        hit = self.x.alu(Op.CMPEQ, full)
        if self.nan_shares:
            no = hit.const_like(False)
            x_nan, max_nan = (v.alu(Op.CMPEQ, v).alu(Op.CMPEQ, no) for v in (self.x, full))
            hit = hit.alu(Op.OR, x_nan.alu(Op.AND, max_nan))
        count = hit.cast(grad.dtype).reduce(Op.SUM, self.axes).movement(Op.EXPAND, self.x.shape)
        share = grad.movement(Op.EXPAND, self.x.shape).alu(Op.MUL, count.alu(Op.RECIP))
        if self.nan_shares:  # only the maxima: a select, so an infinite gradient leaves the rest at 0
            return hit.alu(Op.WHERE, share, share.const_like(0))
        return hit.cast(grad.dtype).alu(Op.MUL, share)


# ---- movement -----------------------------------------------------------------------------------------
class Reshape(Function):
    def forward(self, x: Node, shape: tuple[int, ...]) -> Node:
        self.input_shape = x.shape
        return x.movement(Op.RESHAPE, shape)

    def backward(self, grad: Node) -> Node:
        return grad.movement(Op.RESHAPE, self.input_shape)


class Permute(Function):
    def forward(self, x: Node, order: tuple[int, ...]) -> Node:
        self.inverse = tuple(sorted(range(len(order)), key=lambda i: order[i]))
        return x.movement(Op.PERMUTE, order)

    def backward(self, grad: Node) -> Node:
        return grad.movement(Op.PERMUTE, self.inverse)


class Expand(Function):
    """Broadcast to `shape`, leading dims added as needed (one rule: broadcasting a bias is one op, not two)."""

    def forward(self, x: Node, shape: tuple[int, ...]) -> Node:
        self.input_shape = x.shape
        if len(shape) > len(x.shape):
            x = x.movement(Op.RESHAPE, (1,) * (len(shape) - len(x.shape)) + x.shape)
        return x.movement(Op.EXPAND, shape)

    def backward(self, grad: Node) -> Node:
        lead = len(grad.shape) - len(self.input_shape)
        axes = tuple(i for i, n in enumerate(grad.shape) if i < lead or self.input_shape[i - lead] != n)
        summed = grad.reduce(Op.SUM, axes)
        return summed.movement(Op.RESHAPE, self.input_shape) if lead else summed


class Pad(Function):
    def forward(self, x: Node, padding: tuple[tuple[int, int], ...]) -> Node:
        self.bounds = tuple((b, b + n, 1) for (b, _), n in zip(padding, x.shape))
        return x.movement(Op.PAD, padding)

    def backward(self, grad: Node) -> Node:
        return grad.movement(Op.SHRINK, self.bounds)


class Shrink(Function):
    def forward(self, x: Node, bounds: tuple[tuple[int, int, int], ...]) -> Node:
        self.bounds, self.input_shape = bounds, x.shape
        return x.movement(Op.SHRINK, bounds)

    def backward(self, grad: Node) -> Node:
        """Scatter the gradient back: interleave zeros for steps, then pad to the input's size."""
        for d, ((lo, _, step), n) in enumerate(zip(self.bounds, self.input_shape)):
            count = grad.shape[d]
            if step > 1 and count > 0:
                shape = grad.shape
                grad = grad.movement(Op.RESHAPE, shape[:d + 1] + (1,) + shape[d + 1:])
                grad = grad.movement(Op.PAD, tuple((0, step - 1) if i == d + 1 else (0, 0)
                                                   for i in range(len(shape) + 1)))
                grad = grad.movement(Op.RESHAPE, shape[:d] + (count * step,) + shape[d + 1:])
                keep = min(count * step, n - lo)
                grad = grad.movement(Op.SHRINK, tuple((0, keep if i == d else m, 1) for i, m in
                                                      enumerate(grad.shape)))
            span = grad.shape[d]
            grad = grad.movement(Op.PAD, tuple((lo, n - lo - span) if i == d else (0, 0)
                                               for i in range(len(grad.shape))))
        return grad


class Window(Function):
    """Sliding windows; the gradient adds each kernel offset's slice back where it was read from."""

    def forward(self, x: Node, arg: tuple[tuple[int, int, int], ...]) -> Node:
        self.arg, self.input_shape = arg, x.shape
        return x.movement(Op.WINDOW, arg)

    def backward(self, grad: Node) -> Node:
        return window_adjoint(grad, self.arg, self.input_shape)


def window_adjoint(grad: Node, arg: tuple[tuple[int, int, int], ...], input_shape: tuple[int, ...]) -> Node:
    """The adjoint of sliding windows `arg` over an input of `input_shape`: each kernel offset's slice of `grad`
    (..., *outs, *kernel) added back where the windows read it (the windows' gradient; col2im, torch's fold)."""
    import itertools

    k = len(arg)
    lead, outs = grad.shape[:-2 * k], grad.shape[-2 * k:-k]
    total: Optional[Node] = None
    for offsets in itertools.product(*(range(kk) for kk, _, _ in arg)):
        # the slice of windows at these kernel offsets is shrink(x, o*d : ... : stride) of the input
        g = grad.movement(Op.SHRINK, tuple((0, n, 1) for n in lead + outs) + tuple((o, o + 1, 1) for o in offsets))
        g = g.movement(Op.RESHAPE, lead + outs)
        bounds = tuple((0, n, 1) for n in lead) + tuple(
            (o * d, o * d + s * (m - 1) + 1, s) for o, m, (_, s, d) in zip(offsets, outs, arg))
        scatter = Shrink()
        scatter.bounds, scatter.input_shape = bounds, input_shape
        part = scatter.backward(g)
        total = part if total is None else total.alu(Op.ADD, part)
    if total is None:  # windows of size 0 read nothing
        return const(0, grad.dtype, input_shape, grad.device)
    return total


class Flip(Function):
    def forward(self, x: Node, axes: tuple[int, ...]) -> Node:
        self.axes = axes
        return x.movement(Op.FLIP, axes)

    def backward(self, grad: Node) -> Node:
        return grad.movement(Op.FLIP, self.axes)


# ---- the backward pass --------------------------------------------------------------------------------
GradHook = Callable[["Tensor"], Optional["Tensor"]]


class HookHandle:
    """What register_hook returns: `remove()` takes the hook off (torch's RemovableHandle)."""

    def __init__(self, hooks: list[GradHook], hook: GradHook):
        self.hooks, self.hook = hooks, hook
        hooks.append(hook)

    def remove(self) -> None:
        if self.hook in self.hooks:
            self.hooks.remove(self.hook)


def _hooked(hooks: list[GradHook], grad: Node, tensor: type[Tensor]) -> Node:
    """The gradient after each hook in turn: a Tensor a hook returns replaces it (same shape)."""
    for hook in list(hooks):
        out = hook(tensor(grad))
        if out is not None:
            if tuple(out.shape) != grad.shape:
                raise RuntimeError(f"backward: a hook returned a gradient of shape {tuple(out.shape)} for a tensor "
                                   f"of shape {grad.shape}; it must keep the shape")
            grad = out.node.cast(grad.dtype)
    return grad


def backward(root: Tensor, grad: Node, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into `.grad` of every leaf that requires grad.

    The walk is over gradient nodes: the Functions that made the values, and the leaf tensors at the ends."""
    start: GradNode = root._ctx if root._ctx is not None else root
    order = _tape(start)
    grads: dict[int, Node] = {id(start): grad}
    tensor = root.tensor_class  # Tensor itself, also for subclasses (tg.nn.Parameter)
    for node in reversed(order):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        if not isinstance(node, Function):  # a leaf tensor
            if node._hooks:
                g = _hooked(node._hooks, g, tensor)
            node.grad = tensor(g) if node.grad is None else tensor(node.grad.node.alu(Op.ADD, g))
            for hook in node._grad_hooks or ():
                hook(node)
            continue
        if node.released is not None:
            raise RuntimeError(f"backward: trying to backward through the graph a second time (through "
                               f"{node.released}); the first backward() released the values it saved. Pass "
                               "retain_graph=True to it.")
        if node.hooks:
            g = _hooked(node.hooks, g, tensor)
        if node.retained is not None and (kept := node.retained()) is not None:  # retain_grad(): kept like a leaf's
            kept.grad = tensor(g) if kept.grad is None else tensor(kept.grad.node.alu(Op.ADD, g))
        parent_grads = node.backward(g)
        if not isinstance(parent_grads, tuple):
            parent_grads = (parent_grads,)
        for parent, source, needs, pg in zip(node.parents, node.sources, node.needs_input_grad, parent_grads):
            if pg is None or not needs:
                continue
            assert pg.shape == parent.shape, f"grad shape {pg.shape} != {parent.shape} in {type(node).__name__}"
            target = source if source is not None else parent
            prev = grads.get(id(target))
            grads[id(target)] = pg if prev is None else prev.alu(Op.ADD, pg)
        if not retain_graph:
            node.release()


GradNode = Any  # a Function, or a leaf Tensor


def _tape(start: GradNode) -> list[GradNode]:
    """The gradient nodes on the path to start, inputs before their users."""

    def inputs(node: GradNode) -> list[GradNode]:
        if not isinstance(node, Function) or node.released is not None:
            return []
        return [source if source is not None else parent
                for parent, source, needs in zip(node.parents, node.sources, node.needs_input_grad) if needs]

    return postorder([start], inputs)
