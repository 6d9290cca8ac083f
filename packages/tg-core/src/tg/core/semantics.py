"""What every op returns at the edges: tg's one semantics, on every device.

Each device (numpy, llvm, opencl, any plugin) computes exactly this; `CASES` below states every rule as inputs
and exact expected outputs, and the conformance kit (`pytest --pyargs tg.core.testing --tg-device NAME`,
test_semantics.py) runs all of them on the device under test, compared bit for bit (NaN with NaN, the sign of
zero included). Where the rules follow torch, they say so; where torch leaves a case undefined, tg defines it.

Floating point (IEEE 754, round to nearest even)
- NaN propagates through arithmetic, `maximum`/`minimum`, `max`/`min`/`amax`/`amin`, `sum`/`prod`, `relu`,
  `clamp`; `argmax`/`argmin` point at the first NaN (torch). Comparisons with NaN are false, `!=` is true;
  `x <= y` is never `not (x > y)`. `sort` puts NaN last ascending and first descending (torch).
- inf: 1/0 = inf, -1/0 = -inf, 0/0 = inf - inf = inf * 0 = NaN, exp(-inf) = 0, log(0) = -inf; functions with a
  limit at infinity return it (sigmoid, tanh, softmax, logsumexp([inf, inf]) = inf).
- -0.0: negation and multiplication keep the sign; -0.0 == 0.0; 1 / -0.0 = -inf; sqrt(-0.0) = -0.0.
  `maximum`/`minimum` of equal values return the first operand (torch): maximum(-0.0, 0.0) = -0.0,
  maximum(0.0, -0.0) = 0.0, so relu(-0.0) = clamp(-0.0, min=0) = -0.0 (torch); abs(-0.0) = 0.0. Which zero a
  reduction (`amax` over -0.0 and 0.0) returns is not specified, like the order of a sum's terms. A sum starts
  at 0.0, so sums of -0.0 (one element too) are 0.0, and sign(-0.0) = 0.0 (torch). Selections (indexing,
  gather, embedding, sort) return the selected value exactly, -0.0 included, and read nothing else: a NaN
  elsewhere in the table stays there. The sign bit of a NaN is not observed:
  `signbit` and `copysign` take every NaN as positive (torch reads the bit).
- Division is correctly rounded (never x * (1/y)). exp2/log2/sin/sqrt are the device's math library, within a
  few ulp: they are checked against float64 with a tolerance, not bitwise.
- No implicit contraction or reassociation: `a * b + c` rounds the product, then the sum, on every device.
  The only fused multiply-add is the explicit one in a reduction of products (IR op ACC_FMA: matmul and
  convolution accumulate `acc + a*b` rounded once). The order in which a reduction adds its terms is not
  specified (devices split and vectorise it), so sums agree within rounding, not bitwise.

Accumulation
- float16 sums, means and contractions accumulate in float32 and round once at the end (torch's accumulate
  type). Integer and bool sums and products are int64 (torch); float32 stays float32.

Integers (two's complement)
- Overflow wraps: int32 max + 1 = min, -min = min, min * -1 = min, uint8 0 - 1 = 255.
- `//` floors and `%` takes the divisor's sign (torch, Python); `div(rounding_mode="trunc")` truncates.
  min // -1 = min (wraps, never traps). Division or remainder by a zero *tensor* element gives 0 (torch's CPU
  raises, its GPUs return garbage; a lazy device cannot raise from inside a kernel); by a Python 0 it raises
  ZeroDivisionError at once.
- `minimum`/`amin` never negate (which would wrap): min(0, int32 min) = int32 min, min of uint8 [0, 255] = 0.

Casts
- float -> int truncates toward zero and saturates to the target's range; NaN -> 0 (C and NumPy leave this
  undefined: x86 gives INT_MIN, GPUs saturate). float -> float rounds to nearest even, overflowing to inf.
- int -> narrower int keeps the low bits (wraps); anything -> bool is `!= 0` (NaN -> True, -0.0 -> False).
- `bitcast(dtype)` / `view(dtype)` keeps the bits (-0.0's sign, inf, subnormals); between sizes the bytes are in
  little-endian order (torch on every machine it runs on). A NaN stays a NaN; its payload is kept except for
  halves on WebGPU (WGSL has no 16-bit integers: the bits go through a float32).

Shapes at the edges
- A sum over nothing is 0, a product 1, `all` True, `any` False; `max`/`min`/`argmax` over nothing raise.
- Out-of-range indices raise IndexError (indexing, gather, scatter, embedding, one_hot, loss targets), before
  any kernel runs; a kernel that reads at positions computed from data (GATHER) clamps them into its table as
  well, so no data makes it read outside a buffer.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .tensor import Tensor


# ---- reference implementations that devices share (the NumPy device runs these) ----------------------------
def cast(x: np.ndarray, to: np.dtype) -> np.ndarray:
    """x as `to`: floats to ints truncate toward zero and saturate, NaN becomes 0; everything else as astype."""
    if x.dtype.kind != "f" or to.kind not in "iu":
        return x.astype(to)
    info = np.iinfo(to)
    out = np.asarray(np.trunc(x)).astype(to)  # asarray: a 0-d ufunc result is a scalar
    wide = x.astype(np.float64)
    out[wide >= float(info.max)] = info.max  # float(max) rounds up to a power of two for 64-bit ints
    out[wide <= float(info.min)] = info.min
    out[np.isnan(x)] = 0
    return out


# ---- the rules as cases ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One rule checked on a device: `fn(*inputs)` must equal `expected` exactly (NaN, sign of zero, dtype)."""

    rule: str  # the section above: nan, inf, zero, accumulate, contract, integer, cast, empty
    name: str
    fn: Callable[..., Tensor]
    inputs: tuple[np.ndarray, ...]
    expected: np.ndarray

    @property
    def dtypes(self) -> set[str]:
        return {a.dtype.name for a in (*self.inputs, self.expected)}


nan, inf = math.nan, math.inf
f32, f16, i32 = np.float32, np.float16, np.int32
I32_MIN, I32_MAX = np.iinfo(np.int32).min, np.iinfo(np.int32).max


def _a(values: Any, dtype: Any) -> np.ndarray:
    return np.array(values, dtype)


ONE_PLUS = 1 + 2.0 ** -12  # (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24: a tie, which an FMA would not round away

CASES: list[Case] = [
    # NaN
    Case("nan", "maximum", lambda a, b: a.maximum(b), (_a([nan, 1, nan], f32), _a([1, nan, nan], f32)),
         _a([nan, nan, nan], f32)),
    Case("nan", "minimum", lambda a, b: a.minimum(b), (_a([nan, 1], f32), _a([1, nan], f32)), _a([nan, nan], f32)),
    Case("nan", "amax", lambda a: a.amax(), (_a([1, nan, 3], f32),), _a(nan, f32)),
    Case("nan", "amin", lambda a: a.amin(), (_a([1, nan, 3], f32),), _a(nan, f32)),
    Case("nan", "argmax points at the NaN", lambda a: a.argmax(), (_a([1, nan, 3, nan], f32),), _a(1, np.int64)),
    Case("nan", "sum", lambda a: a.sum(), (_a([1, nan], f32),), _a(nan, f32)),
    Case("nan", "relu", lambda a: a.relu(), (_a([nan, -1, 2], f32),), _a([nan, 0, 2], f32)),
    Case("nan", "clamp", lambda a: a.clamp(0, 1), (_a([nan, -1, 2], f32),), _a([nan, 0, 1], f32)),
    Case("nan", "x < nan", lambda a, b: a < b, (_a([1, nan], f32), _a([nan, 1], f32)), _a([False, False], bool)),
    Case("nan", "x <= nan", lambda a, b: a <= b, (_a([1, nan], f32), _a([nan, 1], f32)), _a([False, False], bool)),
    Case("nan", "x > nan", lambda a, b: a > b, (_a([1, nan], f32), _a([nan, 1], f32)), _a([False, False], bool)),
    Case("nan", "x >= nan", lambda a, b: a >= b, (_a([1, nan], f32), _a([nan, 1], f32)), _a([False, False], bool)),
    Case("nan", "x == nan", lambda a: a == a, (_a([nan, 1], f32),), _a([False, True], bool)),
    Case("nan", "x != nan", lambda a: a != a, (_a([nan, 1], f32),), _a([True, False], bool)),
    Case("nan", "where selects it", lambda c, a: c.if_else(a, 0.0), (_a([True, False], bool), _a([nan, nan], f32)),
         _a([nan, 0], f32)),
    # inf
    Case("inf", "x / 0", lambda a, b: a / b, (_a([1, -1, 0, 1], f32), _a([0, 0, 0, -0.0], f32)),
         _a([inf, -inf, nan, -inf], f32)),
    Case("inf", "inf - inf, inf * 0", lambda a: (a - a).cat(a * 0), (_a([inf], f32),), _a([nan, nan], f32)),
    Case("inf", "exp, log", lambda a: a.exp().cat(a.abs().log()), (_a([-inf, inf, 0], f32),),
         _a([0, inf, 1, inf, inf, -inf], f32)),
    Case("inf", "sigmoid, tanh limits", lambda a: a.sigmoid().cat(a.tanh()), (_a([-inf, inf], f32),),
         _a([0, 1, -1, 1], f32)),
    Case("inf", "logsumexp of infinities", lambda a: a.logsumexp(1), (_a([[inf, inf], [-inf, -inf]], f32),),
         _a([inf, -inf], f32)),
    Case("nan", "a lookup reads only the rows it names", lambda w, i: w[i],
         (_a([[nan, 1], [2, -0.0], [inf, 4]], f32), _a([1, 2, 1], np.int64)),
         _a([[2, -0.0], [inf, 4], [2, -0.0]], f32)),
    Case("inf", "indexing picks inf exactly", lambda a, i: a[i], (_a([inf, -inf, 1], f32), _a([1, 0, 2], np.int64)),
         _a([-inf, inf, 1], f32)),
    # signed zero
    Case("zero", "negation", lambda a: -a, (_a([0.0, -0.0], f32),), _a([-0.0, 0.0], f32)),
    Case("zero", "-0.0 == 0.0", lambda a, b: a == b, (_a([-0.0], f32), _a([0.0], f32)), _a([True], bool)),
    Case("zero", "1 / -0.0", lambda a: 1 / a, (_a([-0.0], f32),), _a([-inf], f32)),
    Case("zero", "sqrt(-0.0)", lambda a: a.sqrt(), (_a([-0.0], f32),), _a([-0.0], f32)),
    Case("zero", "maximum keeps the first of equal values", lambda a, b: a.maximum(b).cat(a.minimum(b)),
         (_a([0.0, -0.0, -0.0], f32), _a([-0.0, 0.0, -0.0], f32)), _a([0.0, -0.0, -0.0, 0.0, -0.0, -0.0], f32)),
    Case("zero", "where keeps -0.0", lambda c, a: c.if_else(1.0, a), (_a([False, False], bool), _a([-0.0, -0.0], f32)),
         _a([-0.0, -0.0], f32)),
    Case("zero", "sum and sign of -0.0", lambda a: a.sum(1).cat(a[:, 0].sign()), (_a([[-0.0], [-0.0]], f32),),
         _a([0.0, 0.0, 0.0, 0.0], f32)),
    Case("zero", "indexing picks -0.0", lambda a, i: a[i].cat(a.gather(0, i)), (_a([1.0, -0.0], f32),
         _a([1, 0], np.int64)), _a([-0.0, 1.0, -0.0, 1.0], f32)),
    Case("zero", "relu, clamp, abs", lambda a: a.relu().cat(a.clamp(0, 1), a.abs()), (_a([-0.0, 0.0], f32),),
         _a([-0.0, 0.0, -0.0, 0.0, 0.0, 0.0], f32)),
    # no contraction, correctly rounded division
    Case("contract", "a*b + c rounds the product", lambda a, c: a * a + c,
         (_a([ONE_PLUS], f32), _a([-(1 + 2.0 ** -11)], f32)), _a([0.0], f32)),
    Case("contract", "a*b - a*b is 0", lambda a, b: a * b - a * b, (_a([ONE_PLUS, 0.1], f32), _a([ONE_PLUS, 3.3], f32)),
         _a([0.0, 0.0], f32)),
    Case("contract", "division is correctly rounded", lambda a, b: a / b,
         (_a([-2.5, 1, 7], f32), _a([5 / 255, 3, 10], f32)),
         (_a([-2.5, 1, 7], np.float64) / _a([5 / 255, 3, 10], f32).astype(np.float64)).astype(f32)),
    Case("contract", "division by a divisor near the float32 limit", lambda a, b: a / b,
         (_a([3e38, -inf, 1.5e38, 2.5], f32), _a([3e38, 3e38, 1.5e38, -2e38], f32)),
         (_a([3e38, -inf, 1.5e38, 2.5], f32).astype(np.float64) / _a([3e38, 3e38, 1.5e38, -2e38], f32)).astype(f32)),
    # accumulation
    Case("accumulate", "float16 sum in float32", lambda a: a.sum(), (np.ones(4096, f16),), _a(4096, f16)),
    Case("accumulate", "float16 mean in float32", lambda a: a.mean(), (_a([60000, 60000], f16),), _a(60000, f16)),
    Case("accumulate", "float16 matmul in float32", lambda a, b: a @ b,
         (np.ones((1, 4096), f16), np.ones((4096, 1), f16)), _a([[4096]], f16)),
    Case("accumulate", "int8 sum is int64", lambda a: a.sum(), (_a([127, 127], np.int8),), _a(254, np.int64)),
    Case("accumulate", "bool sum counts", lambda a: a.sum(), (_a([True, True, False], bool),), _a(2, np.int64)),
    # integers
    Case("integer", "int32 overflow wraps", lambda a: (a + 1).cat(-a, a * -1), (_a([I32_MAX, I32_MIN, I32_MIN], i32),),
         _a([I32_MIN, I32_MIN + 1, I32_MIN + 1, I32_MIN + 1, I32_MIN, I32_MIN, I32_MIN + 1, I32_MIN, I32_MIN], i32)),
    Case("integer", "a wrapped result is the value the kernel keeps",
         lambda a: (-a).cast("int64").cat((a + a).cast("int64")), (_a([I32_MIN], i32),), _a([I32_MIN, 0], np.int64)),
    Case("integer", "uint8 wraps", lambda a, b: (a + b).cat(b - a), (_a([255], np.uint8), _a([1], np.uint8)),
         _a([0, 2], np.uint8)),
    Case("integer", "floor division and remainder", lambda a, b: (a // b).cat(a % b),
         (_a([7, -7, 7, -7], i32), _a([2, 2, -2, -2], i32)), _a([3, -4, -4, 3, 1, 1, -1, -1], i32)),
    Case("integer", "division by a zero element is 0",
         lambda a, b: (a // b).cat(a % b, a.div(b, rounding_mode="trunc")),
         (_a([7, -7], i32), _a([0, 0], i32)), _a([0, 0, 0, 0, 0, 0], i32)),
    Case("integer", "min // -1 wraps", lambda a, b: a // b, (_a([I32_MIN], i32), _a([-1], i32)), _a([I32_MIN], i32)),
    Case("integer", "minimum at the limits", lambda a, b: a.minimum(b).cat(a.amin(0, keepdim=True)),
         (_a([0, I32_MIN], i32), _a([5, 3], i32)), _a([0, I32_MIN, I32_MIN], i32)),
    Case("integer", "uint8 min and max", lambda a: a.amin(0, keepdim=True).cat(a.amax(0, keepdim=True)),
         (_a([0, 128, 255, 64], np.uint8),), _a([0, 255], np.uint8)),
    # casts
    Case("cast", "float -> int32 truncates and saturates", lambda a: a.cast("int32"),
         (_a([-2.7, 2.7, 1e10, -1e10, inf, -inf, nan], f32),), _a([-2, 2, I32_MAX, I32_MIN, I32_MAX, I32_MIN, 0], i32)),
    Case("cast", "float -> uint8 saturates", lambda a: a.cast("uint8"), (_a([-1, 300, 2.9, nan], f32),),
         _a([0, 255, 2, 0], np.uint8)),
    Case("cast", "int -> narrower int wraps", lambda a: a.cast("int8"), (_a([200, -129, 256], i32),),
         _a([-56, 127, 0], np.int8)),
    Case("cast", "-> bool is != 0", lambda a: a.cast("bool"), (_a([nan, 0.0, -0.0, 0.1], f32),),
         _a([True, False, False, True], bool)),
    Case("cast", "float64 -> float32 overflows to inf", lambda a: a.cast("float32"),
         (_a([1e300, -1e300, 0.1], np.float64),), _a([inf, -inf, 0.1], f32)),
    Case("cast", "bitcast keeps the bits", lambda a: a.bitcast("int32"),
         (_a([1.0, -0.0, inf, -inf, 1e-45, -2.5], f32),), _a([1.0, -0.0, inf, -inf, 1e-45, -2.5], f32).view(i32)),
    Case("cast", "bitcast back", lambda a: a.bitcast("float32"), (_a([1, -2**31, 0x7F800000, 0x3F800000], i32),),
         _a([1, -2**31, 0x7F800000, 0x3F800000], i32).view(f32)),
    Case("cast", "bitcast to bytes is little-endian", lambda a: a.view("uint8"), (_a([1.0, -2.5], f32),),
         _a([1.0, -2.5], f32).view(np.uint8)),
    Case("cast", "bitcast from bytes", lambda a: a.view("float32"), (_a([0, 0, 128, 63, 1, 2, 3, 4], np.uint8),),
         _a([0, 0, 128, 63, 1, 2, 3, 4], np.uint8).view(f32)),
    Case("cast", "bitcast of halves", lambda a: a.view("int16").cat(a.view("int16").view("float16").view("int16")),
         (_a([1.5, -2, 65504, -0.0, 6e-8], f16),), np.tile(_a([1.5, -2, 65504, -0.0, 6e-8], f16).view(np.int16), 2)),
    Case("cast", "bitcast of float64", lambda a: a.view("int64").cat(a.view("int32").view("int64")),
         (_a([1.0, -3.25, 5e-324], np.float64),), np.tile(_a([1.0, -3.25, 5e-324], np.float64).view(np.int64), 2)),
    # empty reductions
    Case("empty", "sum and prod of nothing", lambda a: a.sum(1).cat(a.prod(1)), (np.zeros((2, 0), f32),),
         _a([0, 0, 1, 1], f32)),
    Case("empty", "all and any of nothing", lambda a: a.all(1).cat(a.any(1)), (np.zeros((2, 0), bool),),
         _a([True, True, False, False], bool)),
]
