"""ONNX's low-precision element types (bfloat16, float8 variants, float4, int4/uint4, int2/uint2), emulated.

tg has no device storage for them, so such a value lives in a carrier: a float32 tensor holding exactly
the values the narrow float format can represent, or an int8/uint8 tensor holding the narrow ints. A Cast
(or QuantizeLinear) into one of these types rounds and saturates by the format's rules; arithmetic on the
carriers then runs at float32 precision and the graph's outputs are converted to the declared type at the
boundary. The roundings come from `ml_dtypes` (installed with `onnx`), the library NumPy-based stacks use
for these formats.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from tg.core import Tensor
from tg.core import dtype as dt

# ONNX TensorProto codes -> (ml_dtypes name, carrier dtype)
EMULATED: dict[int, tuple[str, dt.DType]] = {
    16: ("bfloat16", dt.float32), 17: ("float8_e4m3fn", dt.float32), 18: ("float8_e4m3fnuz", dt.float32),
    19: ("float8_e5m2", dt.float32), 20: ("float8_e5m2fnuz", dt.float32), 21: ("uint4", dt.uint8),
    22: ("int4", dt.int8), 23: ("float4_e2m1fn", dt.float32), 25: ("uint2", dt.uint8), 26: ("int2", dt.int8),
}
INT_BITS = {21: 4, 22: 4, 25: 2, 26: 2}  # the narrow integer formats' widths (uint4, int4, uint2, int2)


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
    return arr if code is None else arr.astype(carrier(code).np)


def from_carrier(arr: np.ndarray, code: int) -> np.ndarray:
    return arr.astype(np_type(code))


def round_to(t: Tensor, code: int, saturate: bool = True) -> Tensor:
    """t's values as the emulated type `code` represents them (in the carrier dtype).

    Floats round to nearest even; with `saturate` out-of-range values and infinities clamp to the largest
    finite value (ONNX's default), without it they become inf or NaN as the format allows. Integers wrap."""
    target = np_type(code)
    data = t.numpy()
    if carrier(code).is_float:
        import ml_dtypes

        wide = data.astype(np.float64)
        if saturate and code != 16:  # bfloat16 has no saturating cast: it keeps its infinities
            top = float(ml_dtypes.finfo(target).max)
            wide = np.clip(wide, -top, top)
        with np.errstate(over="ignore", invalid="ignore"):
            narrow = wide.astype(np.float32).astype(target)
    else:
        info_bits = INT_BITS[code]
        ints = np.trunc(np.nan_to_num(data.astype(np.float64))).astype(np.int64) if data.dtype.kind == "f" else \
            data.astype(np.int64)
        wrapped = ints & ((1 << info_bits) - 1)
        if code in (22, 26):  # signed: the top bit is the sign
            wrapped = np.where(wrapped >= 1 << (info_bits - 1), wrapped - (1 << info_bits), wrapped)
        narrow = wrapped.astype(target)
    return Tensor(narrow.astype(carrier(code).np), device=t.device)


def tensor(arr: np.ndarray, device: Any) -> Tensor:
    """A Tensor from a NumPy array that may hold an emulated type."""
    return Tensor(to_carrier(arr), device=device)
