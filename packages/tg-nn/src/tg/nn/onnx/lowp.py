"""ONNX's low-precision element types (bfloat16, float8 variants, float4, int4/uint4, int2/uint2), emulated.

tg has no device storage for them, so such a value lives in a carrier: a float32 tensor holding exactly
the values the narrow float format can represent, or an int8/uint8 tensor holding the narrow ints. A Cast
(or QuantizeLinear) into one of these types rounds and saturates by the format's rules; arithmetic on the
carriers then runs at float32 precision and the graph's outputs are converted to the declared type at the
boundary.

The rules are written here, from ONNX's specification (the Cast operator and the "float stored in 8/4 bits"
and "4 bit integer types" notes), not taken from a library: `ml_dtypes` (installed with `onnx`) only names
the NumPy dtypes of graph inputs and outputs, and every value handed to it is one its type represents
exactly. Its own float->int4/int2 casts changed between 0.6 and 0.7 (wrapping became 0), which is why.

- Floats round to nearest, ties to even. A value beyond the format's largest finite one (after rounding),
  or an infinity, becomes +-max when saturating (float8's `saturate=1`, ONNX's default; float4 always);
  otherwise inf where the format has one (float8e5m2, bfloat16) and NaN where it has not. NaN stays NaN,
  except float4 (no NaN): +6. The "fnuz" formats have no -0: it becomes +0.
- Float -> narrow int rounds to nearest even and saturates to the type's range; NaN becomes 0.
- Int -> narrow int keeps the low bits (two's complement), as ONNX's fixed-point casts do.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from tg.core import Tensor
from tg.core import dtype as dt


@dataclass(frozen=True)
class FloatFormat:
    """A narrow binary float: `mantissa` stored bits, smallest normal exponent `emin`, largest finite `max`."""
    name: str  # the ml_dtypes name, for converting at the graph's boundary
    mantissa: int
    emin: int
    max: float
    has_inf: bool
    has_nan: bool = True
    negative_zero: bool = True
    saturating: bool = True  # whether Cast's `saturate` attribute applies (float8) or overflow is IEEE (bfloat16)


@dataclass(frozen=True)
class IntFormat:
    """A narrow two's complement (signed) or plain binary (unsigned) integer of `bits` bits."""
    name: str
    bits: int
    signed: bool

    @property
    def range(self) -> tuple[int, int]:
        return (-(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1) if self.signed else (0, (1 << self.bits) - 1)


# ONNX TensorProto codes -> the format and the tg dtype that carries its values
FORMATS: dict[int, FloatFormat | IntFormat] = {
    16: FloatFormat("bfloat16", 7, -126, float.fromhex("0x1.fep127"), has_inf=True, saturating=False),
    17: FloatFormat("float8_e4m3fn", 3, -6, 448.0, has_inf=False),
    18: FloatFormat("float8_e4m3fnuz", 3, -7, 240.0, has_inf=False, negative_zero=False),
    19: FloatFormat("float8_e5m2", 2, -14, 57344.0, has_inf=True),
    20: FloatFormat("float8_e5m2fnuz", 2, -15, 57344.0, has_inf=False, negative_zero=False),
    23: FloatFormat("float4_e2m1fn", 1, 0, 6.0, has_inf=False, has_nan=False),
    21: IntFormat("uint4", 4, signed=False), 22: IntFormat("int4", 4, signed=True),
    25: IntFormat("uint2", 2, signed=False), 26: IntFormat("int2", 2, signed=True),
}
EMULATED: dict[int, tuple[str, dt.DType]] = {
    code: (f.name, dt.float32 if isinstance(f, FloatFormat) else dt.int8 if f.signed else dt.uint8)
    for code, f in FORMATS.items()}
INT_BITS = {code: f.bits for code, f in FORMATS.items() if isinstance(f, IntFormat)}


def np_type(code: int) -> np.dtype:
    import ml_dtypes

    return np.dtype(getattr(ml_dtypes, EMULATED[code][0]))


def carrier(code: int) -> dt.DType:
    return EMULATED[code][1]


def code_of(arr: np.ndarray) -> Optional[int]:
    """The ONNX code of an array holding an emulated type, or None."""
    name = arr.dtype.name
    return next((c for c, (n, _) in EMULATED.items() if n == name), None)


def to_carrier(arr: np.ndarray) -> np.ndarray:
    code = code_of(arr)
    return arr if code is None else arr.astype(carrier(code).np)  # widening: exact in every ml_dtypes


def from_carrier(arr: np.ndarray, code: int) -> np.ndarray:
    """A carrier's values in the narrow NumPy dtype; values the format cannot hold are first rounded by its
    rules (non-saturating, as arithmetic overflow is), so the conversion itself is always exact."""
    fmt = FORMATS[code]
    exact = round_float(arr, fmt, saturate=False) if isinstance(fmt, FloatFormat) else wrap_int(arr, fmt)
    return exact.astype(np_type(code))


def round_float(values: np.ndarray, fmt: FloatFormat, saturate: bool = True) -> np.ndarray:
    """`values` rounded to the nearest value of `fmt` (ties to even), as float32, by the rules above."""
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    _, exp = np.frexp(np.where(finite, x, 0.0))  # |x| = m * 2**exp with m in [0.5, 1): floor(log2|x|) = exp - 1
    quantum = np.exp2(np.maximum(exp - 1, fmt.emin) - fmt.mantissa).astype(np.float64)
    with np.errstate(invalid="ignore"):
        rounded = np.round(np.where(finite, x, 0.0) / quantum) * quantum  # np.round: half to even; exact in float64
    rounded = np.where(finite, rounded, x)
    sign = np.where(np.signbit(x), -1.0, 1.0)
    too_big = ~np.isnan(x) & (np.abs(rounded) > fmt.max)
    clamp = (saturate and fmt.saturating) or not (fmt.has_nan or fmt.has_inf)  # float4 has neither: always clamps
    overflow = sign * fmt.max if clamp else sign * np.inf if fmt.has_inf else np.nan
    out = np.where(too_big, overflow, rounded)
    if not fmt.has_nan:  # float4: ONNX maps NaN to +max
        out = np.where(np.isnan(x), fmt.max, out)
    if not fmt.negative_zero:
        out = np.where(out == 0, 0.0, out)
    return out.astype(np.float32)


def wrap_int(values: np.ndarray, fmt: IntFormat) -> np.ndarray:
    """Integers reduced to `fmt`'s low bits, two's complement when signed (as int64)."""
    low = np.asarray(values).astype(np.int64) & ((1 << fmt.bits) - 1)
    return np.where(fmt.signed & (low >= 1 << (fmt.bits - 1)), low - (1 << fmt.bits), low)


def round_int(values: np.ndarray, fmt: IntFormat) -> np.ndarray:
    """Floats rounded to nearest even and saturated to `fmt`'s range, NaN as 0 (as int64)."""
    lo, hi = fmt.range
    x = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=hi, neginf=lo)
    return np.clip(np.round(x), lo, hi).astype(np.int64)


def round_to(t: Tensor, code: int, saturate: bool = True) -> Tensor:
    """t's values as the emulated type `code` represents them (in the carrier dtype), by the rules above."""
    fmt, data = FORMATS[code], t.numpy()
    if isinstance(fmt, FloatFormat):
        narrow: np.ndarray = round_float(data, fmt, saturate)
    else:
        narrow = round_int(data, fmt) if data.dtype.kind == "f" else wrap_int(data, fmt)
    return Tensor(narrow.astype(carrier(code).np), device=t.device)


def tensor(arr: np.ndarray, device: Any) -> Tensor:
    """A Tensor from a NumPy array that may hold an emulated type."""
    return Tensor(to_carrier(arr), device=device)
