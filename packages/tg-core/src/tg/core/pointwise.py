"""Elementwise ops: the primitives (one autograd Function each) and what is composed from them, with torch's
type promotion and broadcasting.

These are functions written as methods: `Tensor` binds each one (its first argument is the tensor).
This module sits below tensor.py and does not import it at runtime: new tensors come from
`self.tensor_class` (Tensor itself, also for subclasses such as tg.nn.Parameter).

abs, pow are named as NumPy names them; Python's own are builtins.abs etc. here.
"""
from __future__ import annotations

import builtins
import math
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

from . import autograd as F
from . import dtype as dt
from . import stats
from .device import check_dtype
from .dtype import DType, Scalar, TensorLike
from .multi import const
from .ops import Op
from .view import Shape, broadcast_shape

if TYPE_CHECKING:
    from .tensor import Tensor
    from .uop import Node


def _float_remainder(x: Tensor, y: Tensor) -> Tensor:
    """x - floor(x / y) * y with the divisor's sign (torch, Python), computed exactly from fmod: 1.5 % inf is 1.5,
    where the product form gives NaN. Its gradient is 1 for x and -floor(x / y) for y, as torch's."""
    r = x.detach()._nograd(Op.MOD, y.detach())
    r = (r != 0).logical_and((r < 0) != (y.detach() < 0)).if_else(r + y.detach(), r)
    if not (x.requires_grad or y.requires_grad):
        return r
    q = ((x.detach() - r) / y.detach()).round()
    finite = x.isfinite().logical_and(y.isfinite()).logical_and(q.isfinite())
    link = finite.if_else((x - x.detach()) - q * (y - y.detach()), 0.0)  # zero in value, the gradient in form
    return r + link


def _floor_divide(x: Tensor, y: Tensor) -> Tensor:
    """floor(x / y) for floats as torch computes it, from fmod (inf // 2 is NaN, 7 // 0.1 is 69, not 70)."""
    x, y = x.detach(), y.detach()
    mod = x._nograd(Op.MOD, y)
    div = (x - mod) / y
    div = (mod != 0).logical_and((y < 0) != (mod < 0)).if_else(div - 1, div)
    floor = div.floor()
    floor = (div - floor > 0.5).if_else(floor + 1, floor)
    zero = (x / y) * 0  # a signed zero where the quotient is zero
    out = (div == 0).if_else(zero, floor)
    return (y == 0).if_else(x / y, out)


def _check_python_zero(op: str, x: Tensor, other: TensorLike, reverse: bool) -> None:
    """Integer division or remainder by a Python 0 raises at once (as torch); by zero elements of a tensor it gives
    0 (tg.core.semantics: a kernel cannot raise)."""
    if not reverse and not x.dtype.is_float and isinstance(other, (int, bool, np.integer)) and other == 0:
        raise ZeroDivisionError(f"{op}: integer division or remainder of a {x.dtype.name} tensor {x.shape} by zero")


def _float(self: Tensor) -> Tensor:
    return self if self.dtype.is_float else self.cast(dt.default_float)


def neg(self: Tensor) -> Tensor:
    """-x"""
    if self.dtype == dt.bool_:
        raise RuntimeError("neg: negation, the `-` operator, on a bool tensor is not supported; to invert a mask "
                           "use the `~` operator or logical_not()")
    return self._apply(F.Neg)


def reciprocal(self: Tensor) -> Tensor:
    """1 / x"""
    return self._float()._apply(F.Recip)


def sqrt(self: Tensor) -> Tensor:
    return self._float()._apply(F.Sqrt)


def exp2(self: Tensor) -> Tensor:
    return self._float()._apply(F.Exp2)


def log2(self: Tensor) -> Tensor:
    return self._float()._apply(F.Log2)


def sin(self: Tensor) -> Tensor:
    return self._float()._apply(F.Sin)


def cast(self: Tensor, dtype: Union[DType, str]) -> Tensor:
    """The values converted to `dtype` (floats to ints truncate toward zero)."""
    dtype = dt.to_dtype(dtype)
    if dtype == self.dtype:
        return self
    check_dtype(dtype, self.device)
    if self.requires_grad and not dtype.is_float:
        return self.detach()._apply(F.Cast, dtype=dtype)
    return self._apply(F.Cast, dtype=dtype)


def bitcast(self: Tensor, dtype: Union[DType, str]) -> Tensor:
    """The same bytes read as `dtype` (torch's `view(dtype)`, tinygrad's `bitcast`), e.g. a float32's bits as an
    int32. Between types of different sizes the last dim shrinks or grows by the ratio of the sizes, bytes in
    little-endian order as torch on every machine it runs on. The result carries no gradient. Unlike torch's
    view it is a new tensor: writing into it does not change this one.

    >>> Tensor([1.0]).bitcast(tg.core.int32).tolist()
    [1065353216]
    """
    dtype = dt.to_dtype(dtype)
    check_dtype(dtype, self.device)
    x = self.detach()
    if dtype == x.dtype:
        return x
    size, new = x.dtype.itemsize, dtype.itemsize
    if size == new:
        return _same_size_bitcast(x, dtype)
    if x.ndim == 0 or (x.shape[-1] * size) % new:
        raise RuntimeError(f"bitcast/view: a tensor of shape {x.shape} and dtype {x.dtype.name} cannot be read as "
                           f"{dtype.name}: the last dim's {x.shape[-1] if x.ndim else 0} elements of {size} bytes "
                           f"must make whole elements of {new} bytes (a 0-d tensor keeps its dtype's size)")
    # signed integers carry the bits: the devices that have a size have its signed type (the demo plugin no uint64)
    bits = _same_size_bitcast(x, dt.signed_of_size(size))
    if size > new:  # each element becomes size // new narrower ones, the lowest bytes first
        narrow = dt.signed_of_size(new)  # floor division is an arithmetic shift; the cast keeps the low bits
        pieces = [(bits // (1 << (8 * new * k)) if k else bits).cast(narrow) for k in range(size // new)]
        joined = pieces[0].stack(*pieces[1:], dim=-1).reshape(*x.shape[:-1], x.shape[-1] * (size // new))
        return _same_size_bitcast(joined, dtype)
    count = new // size  # narrow elements to one wide one, each widened without its sign
    grouped = bits.reshape(*x.shape[:-1], x.shape[-1] // count, count).cast(dt.signed_of_size(new))
    grouped = grouped & ((1 << (8 * size)) - 1)
    out = grouped[..., 0]
    for k in range(1, count):
        out = out | grouped[..., k] * (1 << (8 * size * k))  # wraps into the sign bit for the top piece
    return _same_size_bitcast(out, dtype)


def _same_size_bitcast(x: Tensor, dtype: DType) -> Tensor:
    """`x`'s bits as `dtype` of its size: integers (and bools) convert by a cast, which keeps the bits."""
    if x.dtype == dtype:
        return x
    if x.dtype.is_float and dtype.is_float:  # e.g. float16 <-> bfloat16: through the integer of that size
        x = _same_size_bitcast(x, dt.signed_of_size(x.dtype.itemsize))
    if not x.dtype.is_float and not dtype.is_float:
        return x.cast(dtype)
    return x._apply(F.Bitcast, dtype=dtype)


def clone(self: Tensor) -> Tensor:
    """A copy with its own buffer (torch.clone); gradients flow through it."""
    return self._apply(F.Clone)


def contiguous(self: Tensor) -> Tensor:
    """A tensor whose data is laid out in its own buffer (a view is copied when realized)."""
    return self._apply(F.Contiguous)


def _binary(self: Tensor, op: str, other: TensorLike, reverse: bool = False,
            result: Optional[DType] = None, float_result: bool = False) -> tuple[Tensor, Tensor]:
    """Both operands promoted to one dtype (torch's rules, or `result`) and broadcast to one shape. An op whose
    result is a float whatever its operands says `float_result`: a Python number beside an integer tensor is then
    read as a float (torch: a uint8 tensor / -2 is x / -2.0; an integer op wraps the number into the type)."""
    if isinstance(other, self.tensor_class):
        if result is None and other._node.dtype is self._node.dtype and other._node.shape == self._node.shape and \
                other._node.device == self._node.device:  # the usual case, decided without the rules below
            return (other, self) if reverse else (self, other)
        if other.device != self.device:
            raise RuntimeError(f"{op}: tensors are on different devices, {self.device!r} and "
                               f"{other.device!r}; move one with .to(device)")
        dtype = result or dt.result_type(self.dtype, self.ndim == 0, other.dtype, other.ndim == 0)
        y = other.cast(dtype)
    elif isinstance(other, (int, float, bool, np.number)):
        other = other.item() if isinstance(other, np.number) else other
        dtype = result or dt.scalar_result_type(self.dtype, other)
        if float_result and not dtype.is_float:  # computed in floats: the number must not wrap into an int type
            dtype = dt.default_float
        x, y = self.cast(dtype), self._of_node(const(other, dtype, self.shape, self.device))  # already broadcast
        return (y, x) if reverse else (x, y)
    else:
        raise TypeError(f"{op}: unsupported operand type {type(other).__name__}")
    x = self.cast(dtype)
    x, y = (y, x) if reverse else (x, y)
    shape = broadcast_shape(op, x.shape, y.shape)
    return x._broadcast_to(shape), y._broadcast_to(shape)


def _broadcast_to(self: Tensor, shape: Shape) -> Tensor:
    if self.shape == shape:
        return self
    return self._apply(F.Expand, shape=tuple(shape))


def add(self: Tensor, other: TensorLike, alpha: Scalar = 1) -> Tensor:
    """x + alpha * other"""
    x, y = self._binary("add", other if alpha == 1 else other * alpha)
    return x._apply(F.Add, y)


def sub(self: Tensor, other: TensorLike, alpha: Scalar = 1) -> Tensor:
    """x - alpha * other"""
    _no_bool_sub(self, other)
    x, y = self._binary("sub", other if alpha == 1 else other * alpha)
    return x._apply(F.Sub, y)


def mul(self: Tensor, other: TensorLike) -> Tensor:
    x, y = self._binary("mul", other)
    return x._apply(F.Mul, y)


def div(self: Tensor, other: TensorLike, rounding_mode: Optional[str] = None) -> Tensor:
    """True division (floats); rounding_mode "trunc" or "floor" as torch.div."""
    if rounding_mode is not None:
        return self._int_div(other, rounding_mode)
    x, y = self._binary("div", other, float_result=True)
    x, y = x._float(), y._float()
    return x._apply(F.Div, y)


def _int_div(self: Tensor, other: TensorLike, mode: str, reverse: bool = False) -> Tensor:
    _check_python_zero("div", self, other, reverse)
    x, y = self._binary("div", other, reverse)
    if x.dtype.is_float:
        return _floor_divide(x, y) if mode == "floor" else x.div(y).trunc()
    q = x._nograd(Op.IDIV, y)
    if mode == "trunc":
        return q
    if mode != "floor":
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {mode!r}")
    r = x._nograd(Op.MOD, y)
    needs_fix = (r != 0).logical_and((r < 0) != (y < 0))
    return needs_fix.if_else(q - 1, q)


def _nograd(self: Tensor, op: Op, other: Tensor) -> Tensor:
    """A binary op whose result carries no gradient (comparisons, integer division, bitwise ops): built as a node
    alone, with nothing recorded for autograd."""
    stats.counters.ops += 1
    return self._of_node(self.node.alu(op, other.node))


def maximum(self: Tensor, other: TensorLike) -> Tensor:
    x, y = self._binary("maximum", other)
    return x._apply(F.Max, y)


def minimum(self: Tensor, other: TensorLike) -> Tensor:
    """Elementwise minimum; NaN wins, as in torch. Integers go through ~max(~x, ~y): bitwise not reverses the
    order without overflowing, where -max(-x, -y) wraps at the smallest int and for every unsigned value."""
    x, y = self._binary("minimum", other)
    if x.dtype == dt.bool_:
        return x.logical_and(y)
    if not x.dtype.is_float:
        return ~((~x)._apply(F.Max, ~y))
    return x.neg()._apply(F.Max, y.neg()).neg()


def where(self: Tensor, condition: TensorLike, other: TensorLike) -> Tensor:
    """This tensor where `condition` holds, else `other` (torch.Tensor.where; tg.core.where(cond, x, y) is
    torch.where). tg's own code reads as `cond.if_else(x, y)`."""
    if not isinstance(condition, self.tensor_class):
        condition = self.tensor_class(const(bool(condition), dt.bool_, (), self.device))
    return condition.if_else(self, other)


def if_else(self: Tensor, x: TensorLike, y: TensorLike) -> Tensor:
    """`x` where this (a condition) is true, else `y`: tinygrad's `cond.where(x, y)`, spelled so that it cannot
    be mistaken for torch's `x.where(cond, y)`."""
    for v in (x, y):
        if isinstance(v, self.tensor_class) and v.device != self.device:
            raise RuntimeError(f"where: the condition is on {self.device!r} and a value on {v.device!r}; move "
                               "one with .to(device)")
    cond, tensor = self.cast(dt.bool_), self.tensor_class
    if not isinstance(x, tensor):
        kind = dt.bool_ if isinstance(x, bool) else (y.dtype if isinstance(y, tensor) else
                                                     dt.scalar_result_type(dt.bool_, x))
        x = tensor(const(x, kind, (), self.device))
    xb, yb = x._binary("where", y)
    shape = broadcast_shape("where", cond.shape, xb.shape)
    return cond._broadcast_to(shape)._apply(F.Where, xb._broadcast_to(shape), yb._broadcast_to(shape))


# comparisons and logic: no gradients
def _compare(self: Tensor, op: str, other: TensorLike, reverse: bool = False) -> Tensor:
    x, y = self._binary(op, other, reverse)
    if op in ("gt", "le"):
        x, y = y, x
    if op in ("le", "ge") and x.dtype.is_float:  # x >= y is not !(x < y): both are false when one is NaN
        return y._nograd(Op.CMPLT, x).logical_or(x._nograd(Op.CMPEQ, y))
    prim = Op.CMPLT if op in ("lt", "gt", "le", "ge") else Op.CMPEQ
    out = x._nograd(prim, y)
    return out.logical_not() if op in ("le", "ge", "ne") else out


def lt(self: Tensor, other: TensorLike) -> Tensor:
    return self._compare("lt", other)


def gt(self: Tensor, other: TensorLike) -> Tensor:
    return self._compare("gt", other)


def le(self: Tensor, other: TensorLike) -> Tensor:
    return self._compare("le", other)


def ge(self: Tensor, other: TensorLike) -> Tensor:
    return self._compare("ge", other)


def eq(self: Tensor, other: TensorLike) -> Tensor:
    return self._compare("eq", other)


def ne(self: Tensor, other: TensorLike) -> Tensor:
    return self._compare("ne", other)


def logical_not(self: Tensor) -> Tensor:
    x = self.cast(dt.bool_).node
    stats.counters.ops += 1
    return self._of_node(x.alu(Op.CMPEQ, x.const_like(False)))


def logical_and(self: Tensor, other: TensorLike) -> Tensor:
    x, y = self._binary("logical_and", other, result=dt.bool_)
    return x._nograd(Op.AND, y)


def logical_or(self: Tensor, other: TensorLike) -> Tensor:
    x, y = self._binary("logical_or", other, result=dt.bool_)
    return x._nograd(Op.OR, y)


def logical_xor(self: Tensor, other: TensorLike) -> Tensor:
    x, y = self._binary("logical_xor", other, result=dt.bool_)
    return x._nograd(Op.XOR, y)


@dt.computed_in_float32  # halves in float32, rounded once (as torch): in float16 up to 10 ulps off
def exp(self: Tensor) -> Tensor:
    return self._float()._apply(F.Exp)


@dt.computed_in_float32
def log(self: Tensor) -> Tensor:
    return self._float()._apply(F.Log)


def rsqrt(self: Tensor) -> Tensor:
    return self.sqrt().reciprocal()


@dt.computed_in_float32
def cos(self: Tensor) -> Tensor:
    """1 - 2 sin^2(x/2): x/2 is exact, so large arguments keep their value (pi/2 - x would round it away).
    Halves in float32, rounded once (in float16 the formula's cancellation cost up to a dozen ulps)."""
    half = (self._float() * 0.5).sin()
    return 1 - 2 * half * half


@dt.computed_in_float32
def tan(self: Tensor) -> Tensor:
    """sin / cos; halves in float32, rounded once (in float16, tan(11) came out 12 ulps off)."""
    return self.sin() / self.cos()


def square(self: Tensor) -> Tensor:
    """x * x; bools square as int64 (torch: square is pow(x, 2), and a bool power is an integer)."""
    x = self.cast(dt.int64) if self.dtype == dt.bool_ else self
    return x * x


def abs(self: Tensor) -> Tensor:
    """|x|; abs(-0.0) is 0.0 (the maximum of -0.0 and 0.0 is its first operand, -0.0: adding 0.0 clears it)."""
    if self.dtype == dt.bool_ or self.dtype.kind == "u":  # unsigned: -x wraps, and max(1, 255) is not |1|
        return self
    return self.maximum(-self) + 0.0 if self.dtype.is_float else self.maximum(-self)


def _constant_of(self: Tensor, value: Tensor) -> Tensor:
    """`value` (computed without gradients) still linked to self with a zero gradient, as torch's piecewise
    constant functions (sign, x**0) are: backward() through them works and gives zeros."""
    if not self.requires_grad:
        return value
    never = self.tensor_class(const(False, dt.bool_, (), self.device))._broadcast_to(self.shape)
    return never.if_else(self, value.detach().cast(self.dtype))


def sign(self: Tensor) -> Tensor:
    """-1, 0 or 1 by the sign (NaN and -0.0 give 0.0, as in torch); its gradient is zero."""
    if self.dtype == dt.bool_:
        return self
    x = self.detach()
    s = (x > 0).cast(self.dtype) - (x < 0).cast(self.dtype) if self.dtype.kind != "u" else (x > 0).cast(self.dtype)
    return self._constant_of(s)


def relu(self: Tensor) -> Tensor:
    """max(x, 0) with NaN kept (torch.relu(nan) is nan) and a zero gradient at 0, from ops that keep 0 at 0
    (so zero padding still fuses through it)."""
    return self._apply(F.Relu) if self.dtype.is_float else self.maximum(0)


@dt.computed_in_float32
def sigmoid(self: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), from e = exp(-|x|) <= 1 so that no intermediate value (or gradient) overflows."""
    x = self._float()
    e = (x < 0).if_else(x, -x).exp()  # -|x|, chosen by a select so the gradient at 0 is one-sided, not 0
    return (x < 0).if_else(e, 1) / (1 + e)


@dt.computed_in_float32
@F.with_derivative(lambda x, y: 1 - y * y)
def tanh(self: Tensor) -> Tensor:
    """(1 - e) / (1 + e) with e = exp(-2|x|) <= 1, signed: exact limits and finite gradients everywhere.
    Below |x| = 1/16, where 1 - e would cancel, the Taylor series to x^7 (float64-accurate there)."""
    x = self._float()
    a = (x < 0).if_else(-x, x)  # |x| with a one-sided gradient at 0
    e = (-2 * a).exp()
    x2 = x * x
    series = x * (1 - x2 * (1 / 3 - x2 * (2 / 15 - x2 * (17 / 315))))
    magnitude = (1 - e) / (1 + e)
    return (a < 0.0625).if_else(series, (x < 0).if_else(-magnitude, magnitude))


def trunc(self: Tensor) -> Tensor:
    """Round toward zero. Floats at or beyond 2**mantissa bits are integers already (and inf and NaN stay
    as they are): only the smaller ones go through an int64 cast, which could not hold the others."""
    if not self.dtype.is_float:
        return self
    exact = float(2 ** {2: 10, 4: 23, 8: 52}[self.dtype.itemsize])
    return keep_zero_sign((self.abs() < exact).if_else(self.cast(dt.int64).cast(self.dtype), self), self)


def keep_zero_sign(result: Tensor, x: Tensor) -> Tensor:
    """`result` where it is a zero with x's sign (x * 0), as IEEE rounding gives and torch keeps: trunc(-0.5) and
    round(-0.3) are -0.0 (the int64 round trip above, and f + 1 in rounding, would give +0.0)."""
    return (result == 0).if_else(x * 0, result)


def floor(self: Tensor) -> Tensor:
    t = self.trunc()
    return (self < t).if_else(t - 1, t) if self.dtype.is_float else t


def ceil(self: Tensor) -> Tensor:
    t = self.trunc()
    return (self > t).if_else(t + 1, t) if self.dtype.is_float else t


def clamp(self: Tensor, min: Optional[TensorLike] = None, max: Optional[TensorLike] = None) -> Tensor:  # noqa: A002
    """Limit values to [min, max] (NaN stays NaN). As in torch, the gradient passes where min <= x <= max,
    boundaries included, and goes to a tensor bound where it is the one taken."""
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
    dtype = self.dtype  # torch promotes with the bounds: an int tensor clamped to 2.5 is float
    for bound in (min, max):
        if isinstance(bound, self.tensor_class):
            dtype = dt.result_type(dtype, False, bound.dtype, bound.ndim == 0)
        elif bound is not None:
            dtype = dt.scalar_result_type(dtype, bound)
    self = self.cast(dtype)
    out = self
    if min is not None:
        low = out < min
        if isinstance(min, self.tensor_class) and min.dtype.is_float:
            low = low.logical_or(min.isnan())  # a NaN bound gives NaN, as in torch
        out = low.if_else(min, out)
    if max is not None:
        high = out > max
        if isinstance(max, self.tensor_class) and max.dtype.is_float:
            high = high.logical_or(max.isnan())
        out = high.if_else(max, out)
    if self.requires_grad and self.dtype.is_float:  # a NaN passes through with no gradient (torch's mask is
        out = self.isnan().if_else(self.detach(), out)  # min <= x <= max, false for NaN)
    return out


clip = clamp


def pow(self: Tensor, exponent: TensorLike) -> Tensor:
    """x ** exponent, as torch: integer tensors stay integers (exact, wrapping like their products), floats follow
    C's pow (exact repeated products for small integer powers, exp2/log2 otherwise), and torch's gradients:
    d/dx = e * x ** (e - 1) (0 where e == 0), d/de = x ** e * log(x) (0 where x == 0 and e >= 0)."""
    if self.dtype == dt.bool_ and isinstance(exponent, bool):  # torch: x ** True is x, x ** False is all True
        return self if exponent else self.ones_like()
    if self.dtype == dt.bool_ and isinstance(exponent, (int, float)):  # as an int64 (or float) tensor
        return self.cast(dt.int64 if isinstance(exponent, int) else dt.default_float).pow(exponent)
    if self.dtype == dt.bool_ and isinstance(exponent, self.tensor_class) and exponent.dtype == dt.bool_:
        raise RuntimeError("pow: not implemented for two bool tensors; cast to an integer or float dtype first")
    if isinstance(exponent, (int, float)) and not isinstance(exponent, bool):
        if not self.dtype.is_float and isinstance(exponent, int):
            if exponent < 0:
                raise RuntimeError(f"pow: integers to negative integer powers are not allowed (a {self.dtype.name} "
                                   f"tensor ** {exponent}); cast to a float dtype first")
            return _int_pow(self, exponent)
        x = self._float()
        if x.dtype == dt.float16:  # in float32, rounded once (the semantics spec's float16 rule)
            return x.cast(dt.float32).pow(exponent).cast(dt.float16)
        return x._apply(Pow, exponent=float(exponent))
    x, e = self._binary("pow", exponent)
    if not x.dtype.is_float:
        return _int_pow(x, e)
    if x.dtype == dt.float16:
        return x.cast(dt.float32).pow(e.cast(dt.float32)).cast(dt.float16)
    return x._apply(Pow, e)


class Pow(F.Function):
    """x ** e for floats (e a tensor of x's shape, or a number), with torch's gradients (see pow)."""

    def __init__(self, *tensors: Tensor):
        super().__init__(*tensors)
        self.tensor = tensors[0].tensor_class

    def forward(self, x: Node, e: Optional[Node] = None, exponent: float = 0.0) -> Node:
        self.x = self.tensor(x)
        self.e: Union[Tensor, float] = self.tensor(e) if e is not None else exponent
        with F.no_grad():
            self.out = _float_pow(self.x, self.e)
        return self.out.node

    def backward(self, grad: Node) -> F.Grads:
        with F.no_grad():
            g, x, e = self.tensor(grad), self.x, self.e
            gx = ge = None
            if self.needs_input_grad[0]:
                if isinstance(e, float):
                    gx = (x.zeros_like() if e == 0 else g * (e * _float_pow(x, e - 1))).node
                else:
                    gx = (e == 0).if_else(0.0, g * (e * _float_pow(x, e - 1))).node
            if len(self.needs_input_grad) > 1 and self.needs_input_grad[1]:
                assert not isinstance(e, float)
                flat = (x == 0).logical_and(e >= 0)
                ge = (g * flat.if_else(0.0, self.out * x.log())).node
        return (gx,) if isinstance(e, float) else (gx, ge)


def _float_pow(x: Tensor, e: Union[Tensor, float]) -> Tensor:
    """C's pow of float tensors (no gradient): exact repeated products for integer powers up to 64, sqrt and rsqrt
    for a number exponent of 0.5 and -0.5 (as torch: (-inf) ** 0.5 is NaN, (-0.0) ** 0.5 is -0.0), else
    exp2(e * log2|x|) with C's special cases."""
    if isinstance(e, float) and builtins.abs(e) == 0.5:
        return x.sqrt() if e > 0 else x.rsqrt()
    if isinstance(e, float) and e.is_integer() and builtins.abs(e) <= 64:
        n, base, out = builtins.abs(int(e)), x, None
        while n:
            if n & 1:
                out = base if out is None else out * base
            n >>= 1
            if n:
                base = base * base
        if out is None:  # x ** 0 is 1, NaN and inf included
            return x.ones_like()
        return out.reciprocal() if e < 0 else out
    if isinstance(e, float):
        e = x._of_node(const(e, x.dtype, x.shape, x.device))
    # C's pow for the special cases: x**0 = 1 and 1**y = 1 (even NaN), (-1)**(+-inf) = 1, a negative finite base
    # to a non-integer power is NaN, -inf to a non-integer power is +inf (or +0 for y < 0)
    one = (e == 0).logical_or(x == 1).logical_or((x.abs() == 1).logical_and(e.isinf()))
    safe_x = one.if_else(1.0, x)  # keeps log2(0) * 0 and inf * 0 out of the value
    magnitude = (e * safe_x.abs().log2()).exp2()
    odd = (e.abs() % 2 == 1)
    negative = (x < 0).logical_or((x == 0).logical_and(x.reciprocal() < 0))  # -0.0 too: (-0.0)**3 = -0.0
    sign = negative.logical_and(odd).if_else(-1.0, 1.0)
    integral = e.floor() == e
    undefined = (x < 0).logical_and(x.isfinite()).logical_and(integral.logical_not())
    return one.if_else(1.0, undefined.if_else(math.nan, magnitude * sign))


def _int_pow(x: Tensor, e: Union[Tensor, int]) -> Tensor:
    """x ** e of integer tensors by repeated squaring, wrapping like the products it is made of (torch). A negative
    exponent in a tensor gives 1 ** e = 1, (-1) ** e = +-1 and 0 otherwise (0 ** -n too), as torch."""
    with F.no_grad():
        if isinstance(e, int):
            out, base = x.ones_like(), x
            while e:
                if e & 1:
                    out = out * base
                e >>= 1
                if e:
                    base = base * base
            return out
        out, base, rest = x.ones_like(), x, e.abs()
        for _ in range(8 * e.dtype.itemsize - (e.dtype.kind == "i")):  # every bit an exponent of this dtype has
            out = ((rest & 1) == 1).if_else(out * base, out)
            base, rest = base * base, rest >> 1
        odd = (e & 1) == 1
        negative = (x == 1).if_else(1, (x == -1).if_else(odd.if_else(-1, 1), 0)).cast(x.dtype)
        return (e < 0).if_else(negative, out)


def remainder(self: Tensor, other: TensorLike) -> Tensor:
    _check_python_zero("remainder", self, other, False)
    x, y = self._binary("remainder", other)
    if x.dtype.is_float:
        return _float_remainder(x, y)
    r = x._nograd(Op.MOD, y)
    return ((r != 0).logical_and((r < 0) != (y < 0))).if_else(r + y, r)


def radd(self: Tensor, other: TensorLike) -> Tensor:
    x, y = self._binary("add", other, reverse=True)
    return x._apply(F.Add, y)


def _no_bool_sub(x: Tensor, other: TensorLike) -> None:
    """torch refuses a subtraction with a bool operand (it is a mask's inversion in disguise)."""
    other_bool = other.dtype == dt.bool_ if isinstance(other, x.tensor_class) else isinstance(other, bool)
    if x.dtype == dt.bool_ or other_bool:
        raise RuntimeError("sub: subtraction, the `-` operator, with a bool tensor is not supported; to invert a "
                           "mask use the `~` operator or logical_not(), to compare two use `^` or logical_xor()")


def rsub(self: Tensor, other: TensorLike) -> Tensor:
    _no_bool_sub(self, other)
    x, y = self._binary("sub", other, reverse=True)
    return x._apply(F.Sub, y)


def rmul(self: Tensor, other: TensorLike) -> Tensor:
    x, y = self._binary("mul", other, reverse=True)
    return x._apply(F.Mul, y)


def rtruediv(self: Tensor, other: TensorLike) -> Tensor:
    x, y = self._binary("div", other, reverse=True, float_result=True)
    return x._float()._apply(F.Div, y._float())


def floordiv(self: Tensor, other: TensorLike) -> Tensor:
    return self._int_div(other, "floor")


def rfloordiv(self: Tensor, other: TensorLike) -> Tensor:
    return self._int_div(other, "floor", reverse=True)


def rpow(self: Tensor, base: TensorLike) -> Tensor:
    x, e = self._binary("pow", base, reverse=True)
    return x.pow(e)


def rremainder(self: Tensor, other: TensorLike) -> Tensor:
    """other % self, for a number on the left (torch's __rmod__)."""
    x, y = self._binary("remainder", other, reverse=True)
    return x.remainder(y)


def rmatmul(self: Tensor, other: Tensor) -> Tensor:
    return other.matmul(self)


def _bitwise(op: str, x: Tensor) -> Tensor:
    """x, when its dtype has bits to work on (integers and bools); floats are refused, as torch does."""
    if x.dtype.is_float:
        raise RuntimeError(f"{op}: needs integer or bool tensors, got {x.dtype.name}; floats have no bitwise ops "
                           "(use logical_* for masks, or cast to an integer dtype)")
    return x


def invert(self: Tensor) -> Tensor:
    """~x: every bit flipped (integers), not (bools)."""
    if self.dtype.is_float:
        raise TypeError(f"~ (bitwise_not) is only implemented on integer and bool tensors, got {self.dtype.name}")
    if self.dtype == dt.bool_:
        return self.logical_not()
    ones = -1 if self.dtype.kind == "i" else int(np.iinfo(self.dtype.np).max)  # every bit set
    return self._nograd(Op.XOR, self.tensor_class(const(ones, self.dtype, (), self.device))._broadcast_to(self.shape))


def bitwise_not(self: Tensor) -> Tensor:
    """Every bit flipped (torch.bitwise_not; the ~ operator)."""
    return invert(_bitwise("bitwise_not", self))


def bitwise_and(self: Tensor, other: TensorLike) -> Tensor:
    x, y = self._binary("bitwise_and", other)
    return _bitwise("bitwise_and", x)._nograd(Op.AND, y)


def bitwise_or(self: Tensor, other: TensorLike) -> Tensor:
    x, y = self._binary("bitwise_or", other)
    return _bitwise("bitwise_or", x)._nograd(Op.OR, y)


def bitwise_xor(self: Tensor, other: TensorLike) -> Tensor:
    x, y = self._binary("bitwise_xor", other)
    return _bitwise("bitwise_xor", x)._nograd(Op.XOR, y)


__hash__ = object.__hash__


def clamp_min(self: Tensor, min: TensorLike) -> Tensor:  # noqa: A002 - torch's name
    return clamp(self, min, None)


def clamp_max(self: Tensor, max: TensorLike) -> Tensor:  # noqa: A002 - torch's name
    return clamp(self, None, max)


def positive(self: Tensor) -> Tensor:
    """The tensor itself (torch.positive; bool tensors are refused, as there)."""
    if self.dtype == dt.bool_:
        raise RuntimeError("positive: not supported for bool tensors")
    return self


def type_as(self: Tensor, other: Tensor) -> Tensor:
    """This tensor in other's dtype."""
    return self.cast(other.dtype)
