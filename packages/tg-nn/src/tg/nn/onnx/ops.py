"""ONNX operators as tg Tensor compositions, with their versioned semantics. One function per op:
`fn(ctx, *inputs, **attributes) -> Tensor | tuple`; inputs that hold shapes or indices are read as
constants (they are small), everything else stays lazy and differentiable."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from tg.core import Tensor
from tg.core import dtype as dt
from tg.core.functional import einsum
from tg.core.ops import Op

from . import lowp

OPS: dict[str, Callable[..., Any]] = {}
TENSOR_TYPES = {1: dt.float32, 2: dt.uint8, 3: dt.int8, 4: dt.uint16, 5: dt.int16, 6: dt.int32, 7: dt.int64,
                9: dt.bool_, 10: dt.float16, 11: dt.float64, 12: dt.uint32, 13: dt.uint64}


class OnnxError(RuntimeError):
    """A model that cannot be loaded or run, naming the op, its node and the reason."""


@dataclass
class Context:
    node: Any
    opset: int
    device: Optional[str]
    env: dict[str, Any]
    opsets: dict[str, int]
    types: dict[str, int] = field(default_factory=dict)  # value name -> emulated ONNX type code (see lowp)
    # value name -> its value on the host, for the 0-d integer constants and initializers (an index that is known
    # needs no read back from the device, and makes a view instead of a gather)
    known: dict[str, np.ndarray] = field(default_factory=dict)

    def logical(self, i: int) -> Optional[int]:
        """The emulated ONNX type of input i, if it has one."""
        return self.types.get(self.node.input[i]) if i < len(self.node.input) else None

    def mark(self, i: int, code: Optional[int]) -> None:
        """Record that output i holds the emulated ONNX type `code`."""
        if code in lowp.EMULATED and i < len(self.node.output):
            self.types[self.node.output[i]] = code

    def ints(self, t: Optional[Tensor]) -> Optional[list[int]]:
        return None if t is None else [int(v) for v in t.numpy().reshape(-1)]


def axis_index(axis: int, rank: int) -> int:
    """An ONNX axis in [-rank, rank) as a dim index; anything else is a malformed model, not something to wrap."""
    if not -max(rank, 1) <= axis < max(rank, 1):
        raise OnnxError(f"onnx: axis {axis} is out of range for a tensor of rank {rank} (ONNX allows "
                        f"[{-max(rank, 1)}, {max(rank, 1) - 1}])")
    return axis % max(rank, 1)


def op(*names: str, domain: str = "ai.onnx") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register fn as the implementation of the named ops (keys outside ai.onnx are 'domain::Op')."""
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        for n in names:
            OPS[n if domain == "ai.onnx" else f"{domain}::{n}"] = fn
        return fn
    return register


def find_op(domain: str, op_type: str) -> Optional[Callable[..., Any]]:
    """The implementation of domain::op_type, or None."""
    d = domain or "ai.onnx"
    return OPS.get(op_type if d == "ai.onnx" else f"{d}::{op_type}")


def _dtype(code: int) -> dt.DType:
    if code not in TENSOR_TYPES:
        raise OnnxError(f"onnx: tensor type {code} is not supported by tg (supported: float16/32/64, int8/16/32/64, "
                        "uint8/16/32/64, bool)")
    return TENSOR_TYPES[code]


# ---- elementwise ---------------------------------------------------------------------------------------
UNARY: dict[str, Callable[[Tensor], Tensor]] = {
    "Abs": lambda x: x.abs(), "Ceil": lambda x: x.ceil(), "Cos": lambda x: x.cos(), "Erf": lambda x: x.erf(),
    "Exp": lambda x: x.exp(), "Floor": lambda x: x.floor(), "Log": lambda x: x.log(), "Neg": lambda x: -x,
    "Not": lambda x: x.logical_not(), "Reciprocal": lambda x: x.reciprocal(), "Relu": lambda x: x.relu(),
    "Round": lambda x: x.round(), "Sigmoid": lambda x: x.sigmoid(), "Sign": lambda x: x.sign(),
    "Sin": lambda x: x.sin(), "Softplus": lambda x: (x.exp() + 1).log(), "Softsign": lambda x: x.softsign(),
    "Sqrt": lambda x: x.sqrt(), "Tan": lambda x: x.tan(), "Tanh": lambda x: x.tanh(),
    "Mish": lambda x: x.mish(), "IsNaN": lambda x: x.isnan(), "HardSwish": lambda x: x.hardswish(),
    "Sinh": lambda x: (x.exp() - (-x).exp()) * 0.5, "Cosh": lambda x: (x.exp() + (-x).exp()) * 0.5,
    "Asinh": lambda x: (x + (x * x + 1).sqrt()).log(), "Acosh": lambda x: (x + (x * x - 1).sqrt()).log(),
    "Atanh": lambda x: ((1 + x) / (1 - x)).log() * 0.5,
}
for _name, _fn in UNARY.items():
    OPS[_name] = (lambda f: lambda ctx, x, **kw: f(x))(_fn)


@op("Elu")
def _elu(ctx: Context, x: Tensor, alpha: float = 1.0) -> Tensor:
    return x.elu(alpha)


@op("Celu")
def _celu(ctx: Context, x: Tensor, alpha: float = 1.0) -> Tensor:
    return x.relu() + ((x / alpha).exp() - 1).minimum(0.0) * alpha


SELU_ALPHA, SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875


@op("Selu")
def _selu(ctx: Context, x: Tensor, alpha: float = SELU_ALPHA, gamma: float = SELU_GAMMA) -> Tensor:
    return (x > 0).if_else(x, (x.exp() - 1) * alpha) * gamma


@op("LeakyRelu")
def _leaky(ctx: Context, x: Tensor, alpha: float = 0.01) -> Tensor:
    return x.leaky_relu(alpha)


@op("ThresholdedRelu")
def _thresholded(ctx: Context, x: Tensor, alpha: float = 1.0) -> Tensor:
    return (x > alpha).if_else(x, 0.0)


@op("HardSigmoid")
def _hardsigmoid(ctx: Context, x: Tensor, alpha: float = 0.2, beta: float = 0.5) -> Tensor:
    return (x * alpha + beta).clamp(0.0, 1.0)


@op("Gelu")
def _gelu(ctx: Context, x: Tensor, approximate: str = "none") -> Tensor:
    return x.gelu(approximate)


@op("PRelu")
def _prelu(ctx: Context, x: Tensor, slope: Tensor) -> Tensor:
    if ctx.opset < 7 and slope.ndim == 1 and slope.shape[0] not in (1, x.shape[-1]) and x.ndim > 1:
        # before opset 7 there was no broadcasting: a 1-D slope is one per channel (dim 1), as PyTorch exported it
        slope = slope.reshape(slope.shape[0], *([1] * (x.ndim - 2)))
    return (x < 0).if_else(x * slope, x)


@op("IsInf")
def _isinf(ctx: Context, x: Tensor, detect_negative: int = 1, detect_positive: int = 1) -> Tensor:
    pos, neg = x == math.inf, x == -math.inf
    return (pos if detect_positive else pos.logical_and(False)).logical_or(neg if detect_negative else
                                                                          neg.logical_and(False))


@op("Shrink")
def _shrink(ctx: Context, x: Tensor, bias: float = 0.0, lambd: float = 0.5) -> Tensor:
    return (x < -lambd).if_else(x + bias, (x > lambd).if_else(x - bias, 0.0)).cast(x.dtype)


@op("Clip")
def _clip(ctx: Context, x: Tensor, lo: Optional[Tensor] = None, hi: Optional[Tensor] = None,
          min: Optional[float] = None, max: Optional[float] = None) -> Tensor:  # noqa: A002
    low = lo if lo is not None else min
    high = hi if hi is not None else max
    out = x
    if low is not None:
        out = out.maximum(low.cast(x.dtype) if isinstance(low, Tensor) else low)
    if high is not None:
        out = out.minimum(high.cast(x.dtype) if isinstance(high, Tensor) else high)
    return out


BINARY: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mul": lambda a, b: a * b,
    "Equal": lambda a, b: a == b, "Greater": lambda a, b: a > b, "GreaterOrEqual": lambda a, b: a >= b,
    "Less": lambda a, b: a < b, "LessOrEqual": lambda a, b: a <= b, "And": lambda a, b: a.logical_and(b),
    "Or": lambda a, b: a.logical_or(b), "Xor": lambda a, b: a.logical_xor(b),
    "BitwiseAnd": lambda a, b: a & b, "BitwiseOr": lambda a, b: a | b, "BitwiseXor": lambda a, b: a ^ b,
}
for _name, _bfn in BINARY.items():
    OPS[_name] = (lambda f: lambda ctx, a, b, **kw: f(a, b))(_bfn)


@op("BitwiseNot")
def _bitnot(ctx: Context, x: Tensor) -> Tensor:
    return ~x


@op("Div")
def _div(ctx: Context, a: Tensor, b: Tensor) -> Tensor:
    return a.div(b, rounding_mode="trunc") if not a.dtype.is_float else a / b


@op("Pow")
def _pow(ctx: Context, a: Tensor, b: Tensor) -> Tensor:
    if a.dtype.is_float and b.numel() == 1 and b.node.base.op is Op.BUFFER:
        # a stored exponent (the common x ** 2 of a variance): read once, so that a small integer power is tg's
        # exact repeated products instead of exp2/log2 with every special case (Silero VAD: 46 -> 30 kernels a chunk).
        # A replay that captured this read checks it again when the exponent is computed from an input.
        e = float(b.numpy().reshape(-1)[0])
        if e.is_integer() and abs(e) <= 64:
            shape = tuple(np.broadcast_shapes(a.shape, b.shape))
            return (a ** int(e)).reshape((1,) * (len(shape) - a.ndim) + tuple(a.shape))
    work = a.dtype if a.dtype.is_float else dt.float64
    out = a.cast(work) ** b.cast(work)
    return out if a.dtype.is_float else out.round().cast(a.dtype)  # 3**6 in float64 may be 728.99...


@op("Mod")
def _mod(ctx: Context, a: Tensor, b: Tensor, fmod: int = 0) -> Tensor:
    if not a.dtype.is_float:
        return a - a.div(b, rounding_mode="trunc") * b if fmod else a % b
    # C's fmod (sign of a), with a finite a over an infinite b giving a back
    r = (b.isinf() & a.isfinite()).if_else(a, a - (a / b).trunc() * b)
    if fmod:
        return r
    return ((r != 0) & ((r < 0) != (b < 0))).if_else(r + b, r)  # Python/NumPy mod takes the sign of b


@op("Max", "Min", "Sum", "Mean")
def _variadic(ctx: Context, *xs: Tensor) -> Tensor:
    kind = ctx.node.op_type
    out = xs[0]
    for x in xs[1:]:
        out = out.maximum(x) if kind == "Max" else out.minimum(x) if kind == "Min" else out + x
    return out / len(xs) if kind == "Mean" else out


@op("Where")
def _where(ctx: Context, c: Tensor, x: Tensor, y: Tensor) -> Tensor:
    return c.if_else(x, y)


@op("Cast")
def _cast(ctx: Context, x: Tensor, to: int, saturate: int = 1, round_mode: str = "up") -> Tensor:
    if to in lowp.EMULATED:
        ctx.mark(0, to)
        return lowp.round_to(x, to, bool(saturate))
    return x.cast(_dtype(to))


@op("CastLike")
def _castlike(ctx: Context, x: Tensor, like: Tensor, saturate: int = 1, round_mode: str = "up") -> Tensor:
    code = ctx.logical(1)
    if code is not None:
        ctx.mark(0, code)
        return lowp.round_to(x, code, bool(saturate))
    return x.cast(like.dtype)


# ---- reductions ----------------------------------------------------------------------------------------
def _axes(ctx: Context, x: Tensor, axes_input: Optional[Tensor], axes_attr: Optional[list[int]],
          noop_with_empty_axes: int) -> Optional[tuple[int, ...]]:
    axes = ctx.ints(axes_input) if axes_input is not None else axes_attr
    if not axes:
        return () if noop_with_empty_axes else tuple(range(x.ndim))
    return tuple(axis_index(a, x.ndim) for a in axes)


def _reduce(fn: Callable[[Tensor, tuple[int, ...], bool], Tensor]) -> Callable[..., Tensor]:
    def run(ctx: Context, x: Tensor, axes_input: Optional[Tensor] = None, axes: Optional[list[int]] = None,
            keepdims: int = 1, noop_with_empty_axes: int = 0) -> Tensor:
        ax = _axes(ctx, x, axes_input, axes, noop_with_empty_axes)
        if ax and any(x.shape[a] == 0 for a in ax):  # reducing nothing gives the op's identity
            return _empty_reduction(ctx.node.op_type, x, ax, bool(keepdims))
        if not ax:
            return fn(x, (), True) if ax == () and noop_with_empty_axes else x
        return fn(x, ax, bool(keepdims))
    return run


OPS["ReduceSum"] = _reduce(lambda x, a, k: x.sum(a, keepdim=k, dtype=x.dtype) if a else x)
OPS["ReduceMean"] = _reduce(lambda x, a, k: x.mean(a, keepdim=k) if a else x)
OPS["ReduceMax"] = _reduce(lambda x, a, k: x.amax(a, keepdim=k) if a else x)
OPS["ReduceMin"] = _reduce(lambda x, a, k: x.amin(a, keepdim=k) if a else x)
OPS["ReduceProd"] = _reduce(lambda x, a, k: _prod(x, a, k) if a else x)
OPS["ReduceL1"] = _reduce(lambda x, a, k: x.abs().sum(a, keepdim=k, dtype=x.dtype) if a else x.abs())
OPS["ReduceL2"] = _reduce(lambda x, a, k: (x * x).sum(a, keepdim=k, dtype=x.dtype).sqrt() if a else x.abs())
OPS["ReduceSumSquare"] = _reduce(lambda x, a, k: (x * x).sum(a, keepdim=k, dtype=x.dtype) if a else x * x)
OPS["ReduceLogSum"] = _reduce(lambda x, a, k: x.sum(a, keepdim=k).log() if a else x.log())
OPS["ReduceLogSumExp"] = _reduce(lambda x, a, k: x.logsumexp(a, keepdim=k) if a else x)


EMPTY_IDENTITY = {"ReduceMax": -math.inf, "ReduceMin": math.inf, "ReduceLogSumExp": -math.inf,
                  "ReduceLogSum": -math.inf, "ReduceProd": 1.0}


def _empty_reduction(kind: str, x: Tensor, axes: tuple[int, ...], keep: bool) -> Tensor:
    shape = [1 if i in axes else n for i, n in enumerate(x.shape) if keep or i not in axes]
    value = EMPTY_IDENTITY.get(kind, 0.0)
    if not x.dtype.is_float and math.isinf(value):
        info = np.iinfo(x.dtype.np) if x.dtype != dt.bool_ else None
        value = (info.min if value < 0 else info.max) if info else float(value > 0)
    return Tensor.full(tuple(shape), value, dtype=x.dtype, device=x.device)


def _prod(x: Tensor, axes: tuple[int, ...], keep: bool) -> Tensor:
    out = x
    for a in sorted(axes, reverse=True):
        out = out.prod(a, keepdim=True)
    return out if keep else out.reshape(*(n for i, n in enumerate(x.shape) if i not in axes))


@op("ArgMax", "ArgMin")
def _argext(ctx: Context, x: Tensor, axis: int = 0, keepdims: int = 1, select_last_index: int = 0) -> Tensor:
    largest = ctx.node.op_type == "ArgMax"
    if select_last_index:
        n = x.shape[axis]
        idx = (x.flip(axis).argmax(axis, bool(keepdims)) if largest else x.flip(axis).argmin(axis, bool(keepdims)))
        return (n - 1) - idx
    return x.argmax(axis, bool(keepdims)) if largest else x.argmin(axis, bool(keepdims))


@op("Softmax", "LogSoftmax", "Hardmax")
def _softmax(ctx: Context, x: Tensor, axis: Optional[int] = None) -> Tensor:
    kind = ctx.node.op_type
    if ctx.opset < 13:  # before 13: flatten to 2-D at axis (default 1) and normalise the second part
        a = 1 if axis is None else axis_index(axis, max(x.ndim, 1))
        flat = x.reshape(math.prod(x.shape[:a]), -1)
        return _softmax_along(flat, 1, kind).reshape(x.shape)
    return _softmax_along(x, -1 if axis is None else axis, kind)


def _softmax_along(x: Tensor, axis: int, kind: str) -> Tensor:
    if kind == "Softmax":
        return x.softmax(axis)
    if kind == "LogSoftmax":
        return x.log_softmax(axis)
    return x.argmax(axis).one_hot(x.shape[axis]).movedim(-1, axis_index(axis, x.ndim)).cast(x.dtype)  # Hardmax


@op("CumSum")
def _cumsum(ctx: Context, x: Tensor, axis: Tensor, exclusive: int = 0, reverse: int = 0) -> Tensor:
    a = axis_index(int(axis.numpy().reshape(-1)[0]), x.ndim)
    y = x.flip(a) if reverse else x
    out = y.cumsum(a)
    if exclusive:
        out = out - y
    out = out.cast(x.dtype)
    return out.flip(a) if reverse else out


# ---- shapes and movement -------------------------------------------------------------------------------
@op("Reshape")
def _reshape(ctx: Context, x: Tensor, shape: Tensor, allowzero: int = 0) -> Tensor:
    dims = ctx.ints(shape) or []
    if not allowzero:
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return x.reshape(*dims)


@op("Transpose")
def _transpose(ctx: Context, x: Tensor, perm: Optional[list[int]] = None) -> Tensor:
    return x.permute(*(perm if perm is not None else reversed(range(x.ndim))))


@op("Flatten")
def _flatten(ctx: Context, x: Tensor, axis: int = 1) -> Tensor:
    # the axis may also be the rank itself (everything in the first dim): ONNX allows [-rank, rank]
    a = x.ndim if axis == x.ndim else axis_index(axis, x.ndim) if x.ndim else 0
    return x.reshape(math.prod(x.shape[:a]), math.prod(x.shape[a:]))


@op("Squeeze")
def _squeeze(ctx: Context, x: Tensor, axes_input: Optional[Tensor] = None, axes: Optional[list[int]] = None) -> Tensor:
    ax = ctx.ints(axes_input) if axes_input is not None else axes
    return x.squeeze() if not ax else x.squeeze(tuple(axis_index(a, x.ndim) for a in ax))


@op("Unsqueeze")
def _unsqueeze(ctx: Context, x: Tensor, axes_input: Optional[Tensor] = None,
               axes: Optional[list[int]] = None) -> Tensor:
    ax = ctx.ints(axes_input) if axes_input is not None else axes
    assert ax is not None
    rank = x.ndim + len(ax)
    out = x
    for a in sorted(axis_index(a, rank) for a in ax):
        out = out.unsqueeze(a)
    return out


@op("Concat")
def _concat(ctx: Context, *xs: Tensor, axis: int) -> Tensor:
    return xs[0].cat(*xs[1:], dim=axis)


@op("Split")
def _split(ctx: Context, x: Tensor, split_input: Optional[Tensor] = None, axis: int = 0,
           split: Optional[list[int]] = None, num_outputs: Optional[int] = None) -> tuple[Tensor, ...]:
    sizes = ctx.ints(split_input) if split_input is not None else split
    n = x.shape[axis]
    if not sizes:
        parts = num_outputs or len(ctx.node.output)
        each = -(-n // parts)
        sizes = [min(each, n - i * each) for i in range(parts)]
    return tuple(x.split(sizes, axis))


@op("Slice")
def _slice(ctx: Context, x: Tensor, starts: Any = None, ends: Any = None, axes: Any = None, steps: Any = None,
           **attrs: Any) -> Tensor:
    if ctx.opset < 10:
        st, en, ax, sp = attrs.get("starts", starts), attrs.get("ends", ends), attrs.get("axes", axes), None
    else:
        st, en, ax, sp = ctx.ints(starts), ctx.ints(ends), ctx.ints(axes), ctx.ints(steps)
    ax = [axis_index(a, x.ndim) for a in ax] if ax is not None else list(range(len(st)))
    sp = sp or [1] * len(st)
    index: list[Any] = [slice(None)] * x.ndim
    for a, s, e, p in zip(ax, st, en, sp):
        n = x.shape[a]
        s, e = max(-n - 1, min(s, n + 1)), max(-n - 1, min(e, n + 1))  # clamp the huge ONNX sentinels
        index[a] = slice(s, e, p)
    return x[tuple(index)]


@op("Gather")
def _gather(ctx: Context, x: Tensor, idx: Tensor, axis: int = 0) -> Tensor:
    a = axis_index(axis, x.ndim)
    known = ctx.known.get(ctx.node.input[1])
    if known is not None and -x.shape[a] <= int(known) < x.shape[a]:
        # a constant index (PyTorch's attention exports pick q, k and v this way): a view of one slice, where an
        # index tensor compares every position with it (a kernel reading the whole input for each of q, k, v)
        return x[(slice(None),) * a + (int(known),)]
    pos = idx.cast(dt.int64)
    return x[(slice(None),) * a + (pos,)]


@op("GatherElements")
def _gather_elements(ctx: Context, x: Tensor, idx: Tensor, axis: int = 0) -> Tensor:
    a = axis_index(axis, x.ndim)
    pos = idx.cast(dt.int64)
    return x.gather(a, (pos < 0).if_else(pos + x.shape[a], pos))


@op("Expand")
def _expand(ctx: Context, x: Tensor, shape: Tensor) -> Tensor:
    dims = ctx.ints(shape) or []
    ndim = max(len(dims), x.ndim)
    xs = (1,) * (ndim - x.ndim) + x.shape
    ds = [1] * (ndim - len(dims)) + dims
    target = [max(a, b) if 1 in (a, b) else a for a, b in zip(xs, ds)]
    return x.reshape(*xs).expand(*target)


@op("Shape")
def _shape(ctx: Context, x: Tensor, start: int = 0, end: Optional[int] = None) -> Tensor:
    return Tensor(np.array(x.shape[start:end], np.int64), device=ctx.device)


@op("Size")
def _size(ctx: Context, x: Tensor) -> Tensor:
    return Tensor(np.array(x.numel(), np.int64), device=ctx.device)


@op("Tile")
def _tile(ctx: Context, x: Tensor, repeats: Tensor) -> Tensor:
    return x.repeat(*(ctx.ints(repeats) or []))


@op("Pad")
def _pad(ctx: Context, x: Tensor, pads: Any = None, value: Optional[Tensor] = None, axes: Optional[Tensor] = None,
         mode: str = "constant", **attrs: Any) -> Tensor:
    p = ctx.ints(pads) if isinstance(pads, Tensor) else attrs.get("pads", pads)
    if isinstance(value, Tensor):
        fill = float(value.numpy().reshape(-1)[0]) if value.numel() else 0.0
    else:
        fill = float(value) if value is not None else 0.0  # before opset 11, value was an attribute
    ax = [axis_index(a, x.ndim) for a in (ctx.ints(axes) or [])] if isinstance(axes, Tensor) else list(range(x.ndim))
    k = len(ax)
    if p is None:
        raise OnnxError("onnx: Pad needs pads")
    pairs = {a: (p[i], p[i + k]) for i, a in enumerate(ax)}
    flat: list[int] = []
    for d in reversed(range(x.ndim)):
        flat += list(pairs.get(d, (0, 0)))
    m = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}[mode]
    return x.pad(flat, mode=m, value=fill) if m == "constant" else x.pad(flat, mode=m)


@op("Constant")
def _constant(ctx: Context, **attrs: Any) -> Tensor:
    from onnx import numpy_helper

    if "value" in attrs:
        ctx.mark(0, attrs["value"].data_type)
        value = numpy_helper.to_array(attrs["value"])
    else:
        found = [(key, dtype) for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                                                 ("value_int", np.int64), ("value_ints", np.int64)) if key in attrs]
        if not found:
            raise OnnxError(f"onnx: Constant node {ctx.node.name!r} uses an unsupported attribute {list(attrs)}")
        value = np.array(attrs[found[0][0]], found[0][1])
    remember(ctx.known, ctx.node.output[0], value)
    return lowp.tensor(value, ctx.device) if "value" in attrs else Tensor(value, device=ctx.device)


def remember(known: dict[str, np.ndarray], name: str, value: np.ndarray) -> None:
    """Record a constant's host value in `known` when it is a 0-d integer (see Context.known)."""
    if value.ndim == 0 and value.dtype.kind in "iu":
        known[name] = value


@op("ConstantOfShape")
def _constant_of_shape(ctx: Context, shape: Tensor, value: Any = None) -> Tensor:
    from onnx import numpy_helper

    v = numpy_helper.to_array(value) if value is not None else np.zeros(1, np.float32)
    dims = ctx.ints(shape) or []
    return Tensor(np.full(dims, v.reshape(-1)[0], v.dtype), device=ctx.device)


@op("Range")
def _range(ctx: Context, start: Tensor, limit: Tensor, delta: Tensor) -> Tensor:
    s, lim, d = (t.numpy().reshape(-1)[0] for t in (start, limit, delta))
    return Tensor(np.arange(s, lim, d).astype(start.dtype.np), device=ctx.device)


@op("Dropout")
def _dropout(ctx: Context, x: Tensor, ratio: Any = None, training_mode: Any = None, **attrs: Any) -> Any:
    return (x, x.ones_like(dt.bool_)) if len(ctx.node.output) > 1 else x


@op("Trilu")
def _trilu(ctx: Context, x: Tensor, k: Optional[Tensor] = None, upper: int = 1) -> Tensor:
    kk = int(k.numpy().reshape(-1)[0]) if k is not None else 0
    return x.triu(kk) if upper else x.tril(kk)


@op("OneHot")
def _onehot(ctx: Context, indices: Tensor, depth: Tensor, values: Tensor, axis: int = -1) -> Tensor:
    d = int(depth.numpy().reshape(-1)[0])
    idx = indices.cast(dt.int64)
    idx = (idx < 0).if_else(idx + d, idx)
    hot = idx.unsqueeze(-1) == Tensor.arange(d, device=ctx.device)
    off, on = values[0], values[1]
    out = hot.if_else(on, off)
    return out.movedim(-1, axis_index(axis, out.ndim)) if axis != -1 else out


@op("DepthToSpace")
def _depth_to_space(ctx: Context, x: Tensor, blocksize: int, mode: str = "DCR") -> Tensor:
    n, c, h, w = x.shape
    b = blocksize
    if mode == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (b * b), b, b, h, w).permute(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (b * b), h * b, w * b)


@op("SpaceToDepth")
def _space_to_depth(ctx: Context, x: Tensor, blocksize: int, mode: str = "DCR") -> Tensor:
    n, c, h, w = x.shape
    b = blocksize
    blocks = x.reshape(n, c, h // b, b, w // b, b)
    order = (0, 3, 5, 1, 2, 4) if mode == "DCR" else (0, 1, 3, 5, 2, 4)  # CRD keeps channels outermost
    return blocks.permute(*order).reshape(n, c * b * b, h // b, w // b)


@op("EyeLike")
def _eyelike(ctx: Context, x: Tensor, dtype: Optional[int] = None, k: int = 0) -> Tensor:
    r, c = x.shape
    out = np.eye(r, c, k)
    return Tensor(out, dtype=_dtype(dtype) if dtype is not None else x.dtype, device=ctx.device)


# ---- linear algebra and neural-network ops ---------------------------------------------------------------
@op("MatMul")
def _matmul(ctx: Context, a: Tensor, b: Tensor) -> Tensor:
    return a @ b


@op("Gemm")
def _gemm(ctx: Context, a: Tensor, b: Tensor, c: Optional[Tensor] = None, alpha: float = 1.0, beta: float = 1.0,
          transA: int = 0, transB: int = 0, broadcast: int = 1) -> Tensor:  # noqa: N803 - ONNX attribute names
    # `broadcast` (Gemm before opset 7): C broadcasts or has the output's shape; the newer rule covers both
    out = (a.T if transA else a) @ (b.T if transB else b)
    out = out * alpha if alpha != 1.0 else out
    return out + c * beta if c is not None else out


@op("Einsum")
def _einsum(ctx: Context, *xs: Tensor, equation: Any) -> Tensor:
    return einsum(equation.decode() if isinstance(equation, bytes) else equation, *xs)


def _conv_pads(x: Tensor, kernel: list[int], strides: list[int], dilations: list[int], pads: Optional[list[int]],
               auto_pad: str) -> list[tuple[int, int]]:
    nd = len(kernel)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for n, k, s, d in zip(x.shape[2:], kernel, strides, dilations):
            total = max(0, (-(-n // s) - 1) * s + d * (k - 1) + 1 - n)
            lo = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            out.append((lo, total - lo))
        return out
    p = pads or [0] * (2 * nd)
    return [(p[i], p[i + nd]) for i in range(nd)]


@op("Conv")
def _conv(ctx: Context, x: Tensor, w: Tensor, b: Optional[Tensor] = None, auto_pad: str = "NOTSET",
          dilations: Optional[list[int]] = None, group: int = 1, kernel_shape: Optional[list[int]] = None,
          pads: Optional[list[int]] = None, strides: Optional[list[int]] = None) -> Tensor:
    nd = w.ndim - 2
    ks = list(w.shape[2:])
    st, dil = strides or [1] * nd, dilations or [1] * nd
    pairs = _conv_pads(x, ks, st, dil, pads, auto_pad)
    xp = x._pad_dims([(0, 0), (0, 0), *pairs])
    if nd not in (1, 2, 3):
        raise OnnxError(f"onnx: Conv with {nd} spatial dims is not supported (1, 2 and 3 are)")
    return xp._conv(f"conv{nd}d", nd, w, b, st, 0, dil, group)


@op("ConvTranspose")
def _conv_transpose(ctx: Context, x: Tensor, w: Tensor, b: Optional[Tensor] = None, auto_pad: str = "NOTSET",
                    dilations: Optional[list[int]] = None, group: int = 1, kernel_shape: Optional[list[int]] = None,
                    output_padding: Optional[list[int]] = None, output_shape: Optional[list[int]] = None,
                    pads: Optional[list[int]] = None, strides: Optional[list[int]] = None) -> Tensor:
    nd = w.ndim - 2
    if nd not in (1, 2, 3):
        raise OnnxError(f"onnx: ConvTranspose with {nd} spatial dims is not supported (1, 2 and 3 are)")
    st, dil = strides or [1] * nd, dilations or [1] * nd
    op_ = output_padding or [0] * nd
    ks = list(w.shape[2:])
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = output_shape or [n * s for n, s in zip(x.shape[2:], st)]
        totals = [s * (n - 1) + o + ((k - 1) * d + 1) - t for n, s, o, k, d, t in
                  zip(x.shape[2:], st, op_, ks, dil, target)]
        lows = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in totals]
        pairs = [(lo, t - lo) for lo, t in zip(lows, totals)]
    else:
        p = pads or [0] * (2 * nd)
        pairs = [(p[i], p[i + nd]) for i in range(nd)]
    full = getattr(x, f"conv_transpose{nd}d")(w, b, st, 0, op_, group, dil)
    return full._pad_dims([(0, 0), (0, 0), *[(-lo, -hi) for lo, hi in pairs]])


@op("BatchNormalization")
def _batchnorm(ctx: Context, x: Tensor, scale: Tensor, bias: Tensor, mean: Tensor, var: Tensor,
               epsilon: float = 1e-5, momentum: float = 0.9, training_mode: int = 0, **attrs: Any) -> Any:
    shape = [1, x.shape[1]] + [1] * (x.ndim - 2)
    if training_mode:  # normalise with the batch statistics and return the updated running ones
        dims = (0, *range(2, x.ndim))
        bmean = x.mean(dims)
        bvar = ((x - bmean.reshape(*shape)) ** 2).mean(dims)
        y = (x - bmean.reshape(*shape)) * (bvar.reshape(*shape) + epsilon).rsqrt() * scale.reshape(*shape) + \
            bias.reshape(*shape)
        return y, mean * momentum + bmean * (1 - momentum), var * momentum + bvar * (1 - momentum)
    return (x - mean.reshape(*shape)) * (var.reshape(*shape) + epsilon).rsqrt() * scale.reshape(*shape) + \
        bias.reshape(*shape)


@op("LayerNormalization")
def _layernorm(ctx: Context, x: Tensor, scale: Tensor, bias: Optional[Tensor] = None, axis: int = -1,
               epsilon: float = 1e-5, stash_type: int = 1) -> Any:
    a = axis_index(axis, x.ndim)
    dims = tuple(range(a, x.ndim))
    mean = x.mean(dims, keepdim=True)
    inv = ((x - mean) * (x - mean)).mean(dims, keepdim=True).add(epsilon).rsqrt()
    out = (x - mean) * inv * scale
    out = out + bias if bias is not None else out
    return (out, mean, inv) if len(ctx.node.output) > 1 else out


@op("InstanceNormalization")
def _instancenorm(ctx: Context, x: Tensor, scale: Tensor, bias: Tensor, epsilon: float = 1e-5) -> Tensor:
    dims = tuple(range(2, x.ndim))
    mean = x.mean(dims, keepdim=True)
    var = ((x - mean) * (x - mean)).mean(dims, keepdim=True)
    shape = [1, x.shape[1]] + [1] * (x.ndim - 2)
    return (x - mean) * (var + epsilon).rsqrt() * scale.reshape(*shape) + bias.reshape(*shape)


@op("GroupNormalization")
def _groupnorm(ctx: Context, x: Tensor, scale: Tensor, bias: Tensor, num_groups: int, epsilon: float = 1e-5,
               stash_type: int = 1) -> Tensor:
    n, c = x.shape[:2]
    work = x.cast(dt.float32) if stash_type == 1 and x.dtype != dt.float64 else x
    g = work.reshape(n, num_groups, -1)
    mean = g.mean(-1, keepdim=True)
    normed = ((g - mean) * ((g - mean) ** 2).mean(-1, keepdim=True).add(epsilon).rsqrt()).reshape(*x.shape)
    normed = normed.cast(x.dtype)
    shape = [1, -1] + [1] * (x.ndim - 2)
    if scale.shape[0] != c:  # opset 18 gave scale and bias per group
        scale, bias = (t.repeat_interleave(c // num_groups) for t in (scale, bias))
    return normed * scale.reshape(*shape) + bias.reshape(*shape)


@op("LRN")
def _lrn(ctx: Context, x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, bias: float = 1.0) -> Tensor:
    """x / (bias + alpha/size * sum of squares over `size` neighbouring channels) ** beta."""
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    sq = (x * x).movedim(1, -1)
    window = sq._pad_dims([(0, 0)] * (sq.ndim - 1) + [(lo, hi)]).unfold(-1, size, 1).sum(-1).movedim(-1, 1)
    return x / (window * (alpha / size) + bias) ** beta


@op("MeanVarianceNormalization")
def _mvn(ctx: Context, x: Tensor, axes: Optional[list[int]] = None) -> Tensor:
    ax = tuple(axes if axes is not None else [0, 2, 3])
    mean = x.mean(ax, keepdim=True)
    return (x - mean) / (((x - mean) * (x - mean)).mean(ax, keepdim=True)).sqrt().add(1e-9)


@op("LpNormalization")
def _lpnorm(ctx: Context, x: Tensor, axis: int = -1, p: int = 2) -> Tensor:
    n = x.abs().sum(axis, keepdim=True) if p == 1 else (x * x).sum(axis, keepdim=True).sqrt()
    return (n == 0).if_else(0.0, x / n)


@op("RMSNormalization")
def _rmsnorm(ctx: Context, x: Tensor, scale: Tensor, axis: int = -1, epsilon: float = 1e-5,
             stash_type: int = 1) -> Tensor:
    dims = tuple(range(axis_index(axis, x.ndim), x.ndim))
    return x * ((x * x).mean(dims, keepdim=True) + epsilon).rsqrt() * scale


def _nll(logp: Tensor, target: Tensor, weight: Optional[Tensor], ignore_index: Optional[int], reduction: str) -> Tensor:
    """ONNX NegativeLogLikelihoodLoss on (N, C, d1, ...) log-probabilities."""
    c = logp.shape[1]
    t = target.cast(dt.int64)
    valid = (t != ignore_index) if ignore_index is not None else t.ones_like(dt.bool_)
    safe = valid.if_else(t, 0)
    classes = Tensor.arange(c, device=logp.device).reshape(1, c, *(1,) * (logp.ndim - 2))
    onehot = (safe.unsqueeze(1) == classes).cast(logp.dtype)
    w = (onehot * weight.reshape(1, c, *(1,) * (logp.ndim - 2))).sum(1) if weight is not None else \
        onehot.sum(1)
    w = w * valid.cast(logp.dtype)
    loss = -(logp * onehot).sum(1) * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / w.sum()


@op("NegativeLogLikelihoodLoss")
def _nllloss(ctx: Context, x: Tensor, target: Tensor, weight: Optional[Tensor] = None,
             ignore_index: Optional[int] = None, reduction: str = "mean") -> Tensor:
    return _nll(x, target, weight, ignore_index, reduction)


@op("SoftmaxCrossEntropyLoss")
def _sce(ctx: Context, x: Tensor, target: Tensor, weight: Optional[Tensor] = None,
         ignore_index: Optional[int] = None, reduction: str = "mean") -> Any:
    logp = x.log_softmax(1)
    loss = _nll(logp, target, weight, ignore_index, reduction)
    return (loss, logp) if len(ctx.node.output) > 1 else loss


def _attention_frontier(q: Tensor, lq: int, lk: int, past_key: Optional[Tensor], nonpad: Optional[Tensor],
                        causal: bool, left: int, right: int) -> Optional[Tensor]:
    """Which keys each query may see, (B or 1, 1, Lq, Lk), from padding, causality and the window bounds."""
    if nonpad is None and not causal and left < 0 and right < 0:
        return None
    keys = Tensor.arange(lk, device=q.device).reshape(1, 1, 1, lk)
    rows = Tensor.arange(lq, device=q.device).reshape(1, 1, lq, 1)
    if past_key is not None:
        pos = rows + past_key.shape[2]
    elif nonpad is not None:  # an external cache: the queries are the last tokens of each sample's valid keys
        pos = rows + (nonpad.cast(dt.int64).reshape(-1, 1, 1, 1) - lq)
    else:
        pos = rows
    allowed = keys.ones_like(dt.bool_)
    if nonpad is not None:
        allowed = allowed & (keys < nonpad.cast(dt.int64).reshape(-1, 1, 1, 1))
    if causal:
        allowed = allowed & (keys <= pos)
    if left >= 0:
        allowed = allowed & (keys >= pos - left)
    if right >= 0:
        allowed = allowed & (keys <= pos + right)
    return allowed


@op("Attention")
def _attention(ctx: Context, q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor] = None,
               past_key: Optional[Tensor] = None, past_value: Optional[Tensor] = None,
               nonpad_kv_seqlen: Optional[Tensor] = None, scale: Optional[float] = None, is_causal: int = 0,
               q_num_heads: Optional[int] = None, kv_num_heads: Optional[int] = None,
               softmax_precision: Optional[int] = None, softcap: Optional[float] = None,
               qk_matmul_output_mode: int = 0, left_window_size: int = -1, right_window_size: int = -1) -> Any:
    """ONNX Attention (opsets 23-25): 3-D or 4-D inputs, masks, causal, past key/value, grouped KV heads,
    padded external caches (nonpad_kv_seqlen) and sliding windows."""
    orig = q.dtype  # half inputs are computed in float32, as the reference does
    if orig == dt.float16:
        q, k, v = q.cast(dt.float32), k.cast(dt.float32), v.cast(dt.float32)
        past_key = past_key.cast(dt.float32) if past_key is not None else None
        past_value = past_value.cast(dt.float32) if past_value is not None else None
        if attn_mask is not None and attn_mask.dtype != dt.bool_:
            attn_mask = attn_mask.cast(dt.float32)
    three_d = q.ndim == 3
    if three_d:
        assert q_num_heads is not None and kv_num_heads is not None
        b = q.shape[0]
        q = q.reshape(b, q.shape[1], q_num_heads, -1).transpose(1, 2)
        k = k.reshape(b, k.shape[1], kv_num_heads, -1).transpose(1, 2)
        v = v.reshape(b, v.shape[1], kv_num_heads, -1).transpose(1, 2)
    s = math.sqrt(scale if scale is not None else 1 / math.sqrt(q.shape[3]))
    present_k = past_key.cat(k, dim=2) if past_key is not None else k
    present_v = past_value.cat(v, dim=2) if past_value is not None else v
    lq, lk = q.shape[2], present_k.shape[2]
    bias: Optional[Tensor] = None
    if attn_mask is not None:
        mask = attn_mask
        if mask.shape[-1] < lk:  # a short mask covers the first keys; the rest are masked out
            extra = lk - mask.shape[-1]
            mask = mask.pad((0, extra), value=False) if mask.dtype == dt.bool_ else \
                mask.pad((0, extra), value=-math.inf)
        bias = mask.if_else(0.0, -math.inf).cast(q.dtype) if mask.dtype == dt.bool_ else mask.cast(q.dtype)
    allowed = _attention_frontier(q, lq, lk, past_key, nonpad_kv_seqlen, bool(is_causal), left_window_size,
                                  right_window_size)
    if allowed is not None:
        frontier = allowed.if_else(0.0, -math.inf).cast(q.dtype)
        bias = frontier if bias is None else bias + frontier
    heads_q, heads_k = q.shape[1], present_k.shape[1]
    kk, vv = present_k, present_v
    if heads_q != heads_k and heads_q % heads_k == 0:  # grouped-query attention: share each KV head
        reps = heads_q // heads_k
        kk = kk.unsqueeze(2).expand(kk.shape[0], heads_k, reps, *kk.shape[2:]).reshape(kk.shape[0], heads_q,
                                                                                        *kk.shape[2:])
        vv = vv.unsqueeze(2).expand(vv.shape[0], heads_k, reps, *vv.shape[2:]).reshape(vv.shape[0], heads_q,
                                                                                        *vv.shape[2:])
    scores = (q * s) @ (kk.transpose(2, 3) * s)
    if softcap:
        scores = (scores / softcap).tanh() * softcap
    qk_out = scores
    with_bias = scores + bias if bias is not None else scores
    if qk_matmul_output_mode == 2:
        qk_out = with_bias
    top = with_bias.amax(-1, keepdim=True).detach()
    safe = (top == -math.inf).if_else(0.0, top)
    e = (with_bias - safe).exp()
    total = e.sum(-1, keepdim=True)
    probs = e / (total == 0).if_else(1.0, total)
    if qk_matmul_output_mode == 3:
        qk_out = probs
    out = probs.cast(q.dtype) @ vv
    if three_d:
        out = out.transpose(1, 2).reshape(out.shape[0], out.shape[2], -1)
    outs = [t.cast(orig) for t in (out, present_k, present_v, qk_out)]
    return tuple(outs[:len(ctx.node.output)])
