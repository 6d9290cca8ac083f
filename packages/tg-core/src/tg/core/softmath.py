"""exp2 and log2 of float32 as plain arithmetic on the float's bits, for targets whose math library is a call.

On CPUs a kernel's `exp2f` or `log2f` is a scalar call per element: LLVM's loop vectoriser gives up on a loop
that makes one (an elementwise exp over 4M floats on llvm: 9.5 ms, NumPy 2.0), and PoCL calls a scalar libm
per work-item (a chain ending in exp ran 11x slower). Written as multiplies, adds, selects, casts and bitcasts,
the same function vectorises like the rest of the kernel. Lowering uses these where the target asks
(`Target.soft_math`); they keep the semantics spec (NaN, inf, 0, negative inputs, subnormal results) and are
within a few ulp of the exact result, as the spec allows the math library.

Each function builds its UOps through `emit(op, dtype, *sources)` and `const(value, dtype)`, so the same code
serves any lowering.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

from . import dtype as dt
from .ops import Op
from .uop import UOp

F32, I32 = dt.float32, dt.int32
# 2^f = e^(f ln 2) for |f| <= 1/2: Taylor coefficients (ln 2)^k / k!, highest first; the error is below 1e-8
EXP2_TAYLOR = tuple(math.log(2) ** k / math.factorial(k) for k in range(7, -1, -1))
# log2(m) = 2 atanh(s) / ln 2 with s = (m - 1) / (m + 1): the odd series 1, 1/3, 1/5, ... in s^2, highest first
ATANH_SERIES = (1 / 9, 1 / 7, 1 / 5, 1 / 3, 1.0)
SHIFTER, SHIFTER_BITS = 12582912.0, 0x4B400000  # 1.5 * 2^23 and its bits


class Builder(Protocol):
    """What the functions build with (the lowering): a value from an op and its sources, and constants."""

    def emit(self, op: Op, dtype: dt.DType, src: tuple[UOp, ...]) -> UOp: ...
    def const(self, value: Any, dtype: dt.DType) -> UOp: ...


def exp2(b: Builder, x: UOp) -> UOp:
    """2^x for a float32 x: 2^n * 2^f with n the nearest integer, 2^f a polynomial, 2^n built from its bits."""
    e, c = _emitter(b), b.const
    # beyond these the result is 0 or inf anyway; NaN takes the lower bound (the end returns x for it)
    clamped = e(Op.WHERE, F32, e(Op.CMPLT, dt.bool_, c(-150.0, F32), x), x, c(-150.0, F32))
    clamped = e(Op.WHERE, F32, e(Op.CMPLT, dt.bool_, c(128.0, F32), clamped), c(128.0, F32), clamped)
    # adding 1.5 * 2^23 rounds to the nearest integer n (|f| <= 1/2), which lands in the sum's low mantissa bits:
    # no float -> int conversion, which keeps LLVM's loop vectoriser away (and relies on no reassociation, which
    # the semantics spec forbids)
    shifted = e(Op.ADD, F32, clamped, c(SHIFTER, F32))
    n = e(Op.ADD, I32, e(Op.BITCAST, I32, shifted), c(-SHIFTER_BITS, I32))
    f = e(Op.ADD, F32, clamped, e(Op.NEG, F32, e(Op.ADD, F32, shifted, c(-SHIFTER, F32))))
    p = _horner(b, f, EXP2_TAYLOR)
    # 2^n as two powers of two, each a normal float even where 2^n is not (n down to -150: subnormal results)
    low = e(Op.IDIV, I32, n, c(2, I32))  # n / 2 toward zero, and the rest: both in [-75, 64]
    high = e(Op.ADD, I32, n, e(Op.NEG, I32, low))
    result = e(Op.MUL, F32, e(Op.MUL, F32, p, _power_of_two(b, low)), _power_of_two(b, high))
    return e(Op.WHERE, F32, _is_nan(b, x), x, result)


def log2(b: Builder, x: UOp) -> UOp:
    """log2 of a float32 x: its exponent plus log2 of its mantissa m in [sqrt(1/2), sqrt(2)) by the atanh series."""
    e, c = _emitter(b), b.const
    tiny = e(Op.CMPLT, dt.bool_, x, c(1.17549435e-38, F32))  # subnormal (or zero, negative): scaled by 2^23
    scaled = e(Op.WHERE, F32, tiny, e(Op.MUL, F32, x, c(8388608.0, F32)), x)
    bits = e(Op.BITCAST, I32, scaled)
    biased = e(Op.IDIV, I32, e(Op.AND, I32, bits, c(0x7FFFFFFF, I32)), c(1 << 23, I32))  # not negative: a shift
    exponent = e(Op.ADD, I32, biased, e(Op.WHERE, I32, tiny, c(-150, I32), c(-127, I32)))
    mantissa = e(Op.BITCAST, F32, e(Op.OR, I32, e(Op.AND, I32, bits, c(0x007FFFFF, I32)), c(0x3F800000, I32)))
    big = e(Op.CMPLT, dt.bool_, c(1.41421356, F32), mantissa)  # m in [1, 2): take m/2 and one more in the exponent
    m = e(Op.WHERE, F32, big, e(Op.MUL, F32, mantissa, c(0.5, F32)), mantissa)
    exponent = e(Op.ADD, I32, exponent, e(Op.CAST, I32, big))
    s = e(Op.FDIV, F32, e(Op.ADD, F32, m, c(-1.0, F32)), e(Op.ADD, F32, m, c(1.0, F32)))
    series = _horner(b, e(Op.MUL, F32, s, s), ATANH_SERIES)
    log_m = e(Op.MUL, F32, e(Op.MUL, F32, c(2 / math.log(2), F32), s), series)
    result = e(Op.ADD, F32, e(Op.CAST, F32, exponent), log_m)
    result = e(Op.WHERE, F32, e(Op.CMPEQ, dt.bool_, x, c(0.0, F32)), c(-math.inf, F32), result)
    result = e(Op.WHERE, F32, e(Op.CMPLT, dt.bool_, x, c(0.0, F32)), c(math.nan, F32), result)
    keep = e(Op.OR, dt.bool_, _is_nan(b, x), e(Op.CMPEQ, dt.bool_, x, c(math.inf, F32)))  # NaN, +inf: themselves
    return e(Op.WHERE, F32, keep, x, result)


EXPANSIONS: dict[Op, Callable[[Builder, UOp], UOp]] = {Op.EXP2: exp2, Op.LOG2: log2}


def _emitter(b: Builder) -> Callable[..., UOp]:
    return lambda op, dtype, *src: b.emit(op, dtype, src)


def _horner(b: Builder, x: UOp, coefficients: tuple[float, ...]) -> UOp:
    e, p = _emitter(b), b.const(coefficients[0], F32)
    for k in coefficients[1:]:
        p = e(Op.ADD, F32, e(Op.MUL, F32, p, x), b.const(k, F32))
    return p


def _power_of_two(b: Builder, k: UOp) -> UOp:
    """2^k for an int32 k in [-126, 127], from its bits: the biased exponent k + 127 in bits 23-30."""
    e = _emitter(b)
    return e(Op.BITCAST, F32, e(Op.MUL, I32, e(Op.ADD, I32, k, b.const(127, I32)), b.const(1 << 23, I32)))


def _is_nan(b: Builder, x: UOp) -> UOp:
    e = _emitter(b)
    return e(Op.NEG, dt.bool_, e(Op.CMPEQ, dt.bool_, x, x))
