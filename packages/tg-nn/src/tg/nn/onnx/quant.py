"""ONNX quantization ops: (De)QuantizeLinear (per tensor, per axis, blocked), DynamicQuantizeLinear and the
integer/QLinear MatMul and Conv. Integer products are computed in float64, exact for the int8/int16 ranges
these ops use (8-bit matrix products over up to 258 terms in float32, exact there too: `_work_dtype`), and rounded
half to even as the spec says."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from tg.core import Tensor
from tg.core import dtype as dt

from . import lowp
from .ops import Context, OnnxError, _conv, _dtype, axis_index, op


def _broadcast(param: Tensor, x: Tensor, axis: int, block_size: int) -> Tensor:
    """A scale or zero point shaped to broadcast against x: scalar, per-axis 1-D, or blocked along axis."""
    if param.ndim == 0 or (param.numel() == 1 and param.ndim <= 1):
        return param.reshape(())
    a = axis_index(axis, x.ndim)
    if block_size:
        n = x.shape[a]
        rep = param.unsqueeze(a + 1).expand(*param.shape[:a + 1], block_size, *param.shape[a + 1:])
        return rep.reshape(*param.shape[:a], param.shape[a] * block_size, *param.shape[a + 1:]).narrow(a, 0, n)
    if param.ndim == 1:
        return param.reshape(*(param.shape[0] if k == a else 1 for k in range(x.ndim)))
    return param


def _saturate(v: Tensor, d: dt.DType) -> Tensor:
    info = np.iinfo(d.np)
    return v.clamp(float(info.min), float(info.max)).cast(d)


def quantize(x: Tensor, scale: Tensor, zero: Optional[Tensor], d: dt.DType, axis: int = 1,
             block_size: int = 0) -> Tensor:
    if d.is_float or d == dt.bool_:
        raise OnnxError(f"onnx: quantizing to {d.name} is not supported (int8, uint8, int16 are)")
    work = x.dtype if x.dtype.is_float else dt.float32  # divide in x's precision, as the reference rounds
    q = (x.cast(work) / _broadcast(scale, x, axis, block_size).cast(work)).round().cast(dt.float64)
    if zero is not None:
        q = q + _broadcast(zero, x, axis, block_size).cast(dt.float64)
    return _saturate(q, d)


def dequantize(x: Tensor, scale: Tensor, zero: Optional[Tensor], axis: int = 1, block_size: int = 0,
               out: Optional[dt.DType] = None) -> Tensor:
    v = x.cast(dt.float64)
    if zero is not None:
        v = v - _broadcast(zero, x, axis, block_size).cast(dt.float64)
    return (v * _broadcast(scale, x, axis, block_size).cast(dt.float64)).cast(out or scale.dtype)


@op("QuantizeLinear")
def _quantize_linear(ctx: Context, x: Tensor, scale: Tensor, zero: Optional[Tensor] = None, axis: int = 1,
                     block_size: int = 0, output_dtype: int = 0, saturate: int = 1, precision: int = 0) -> Tensor:
    code = ctx.logical(2) if zero is not None else (output_dtype if output_dtype in lowp.EMULATED else None)
    if code is not None:  # a narrow int or float format, held in its carrier
        ctx.mark(0, code)
        return quantize_emulated(x, scale, zero, code, axis, block_size, bool(saturate))
    d = zero.dtype if zero is not None else (_dtype(output_dtype) if output_dtype else dt.uint8)
    return quantize(x, scale, zero, d, axis, block_size)


def quantize_emulated(x: Tensor, scale: Tensor, zero: Optional[Tensor], code: int, axis: int, block_size: int,
                      saturate: bool) -> Tensor:
    work = x.dtype if x.dtype.is_float else dt.float32
    q = x.cast(work) / _broadcast(scale, x, axis, block_size).cast(work)
    carrier = lowp.carrier(code)
    if carrier.is_float:  # float8/float4: the zero point is added in float, then the format rounds
        if zero is not None:
            q = q + _broadcast(zero, x, axis, block_size).cast(work)
        return lowp.round_to(q.cast(dt.float32), code, saturate)
    q = q.round().cast(dt.float64)
    if zero is not None:
        q = q + _broadcast(zero, x, axis, block_size).cast(dt.float64)
    bits = lowp.INT_BITS[code]
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if carrier.kind == "i" else (0, (1 << bits) - 1)
    return q.clamp(lo, hi).cast(carrier)


@op("DequantizeLinear")
def _dequantize_linear(ctx: Context, x: Tensor, scale: Tensor, zero: Optional[Tensor] = None, axis: int = 1,
                       block_size: int = 0, output_dtype: int = 0) -> Tensor:
    return dequantize(x, scale, zero, axis, block_size, _dtype(output_dtype) if output_dtype else None)


@op("DynamicQuantizeLinear")
def _dynamic_quantize(ctx: Context, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    lo, hi = x.amin().minimum(0.0), x.amax().maximum(0.0)
    scale = ((hi - lo) / 255).cast(dt.float32)
    zero = _saturate((-lo / scale).round(), dt.uint8)
    return quantize(x, scale, zero, dt.uint8), scale, zero


EXACT_F32 = 1 << 24  # integers up to this magnitude are exact in float32, and so are sums that stay below it


def _work_dtype(a: Tensor, b: Tensor) -> dt.DType:
    """float32 where every partial sum of a @ b (zero points taken off) is an integer below 2^24, so exact: 8-bit
    operands (|a - a_zero|, |b - b_zero| <= 255) summed over at most 258 terms (a BERT layer's 128 or 256); float64
    otherwise (exact for these ranges far beyond)."""
    small = a.dtype.itemsize == 1 and b.dtype.itemsize == 1
    return dt.float32 if small and a.shape[-1] * 255 * 255 < EXACT_F32 else dt.float64


def _centered(x: Tensor, zero: Optional[Tensor], axis: int, work: dt.DType = dt.float64) -> Tensor:
    v = x.cast(work)
    if zero is None:
        return v
    z = zero.cast(work)
    if z.ndim == 1 and z.numel() > 1:  # per row of a (axis -2) or per column of b (axis -1)
        z = z.reshape(-1, 1) if axis == -2 else z
    return v - z


@op("MatMulInteger")
def _matmul_integer(ctx: Context, a: Tensor, b: Tensor, a_zero: Optional[Tensor] = None,
                    b_zero: Optional[Tensor] = None) -> Tensor:
    work = _work_dtype(a, b)
    return (_centered(a, a_zero, -2, work) @ _centered(b, b_zero, -1, work)).cast(dt.int32)


@op("QLinearMatMul")
def _qlinear_matmul(ctx: Context, a: Tensor, a_scale: Tensor, a_zero: Tensor, b: Tensor, b_scale: Tensor,
                    b_zero: Tensor, y_scale: Tensor, y_zero: Tensor) -> Tensor:
    work = _work_dtype(a, b)
    prod = (_centered(a, a_zero, -2, work) @ _centered(b, b_zero, -1, work)).cast(dt.float64)
    sa = a_scale.cast(dt.float64).reshape(-1, 1) if a_scale.numel() > 1 else a_scale.cast(dt.float64).reshape(())
    sb = b_scale.cast(dt.float64).reshape(-1) if b_scale.numel() > 1 else b_scale.cast(dt.float64).reshape(())
    real = prod * sa * sb
    return _saturate((real / y_scale.cast(dt.float64)).round() + y_zero.cast(dt.float64), y_zero.dtype)


def _per_channel(t: Optional[Tensor], nd: int) -> Optional[Tensor]:
    if t is None:
        return None
    v = t.cast(dt.float64)
    return v.reshape(-1, *(1,) * (nd - 1)) if v.numel() > 1 else v.reshape(())


@op("ConvInteger")
def _conv_integer(ctx: Context, x: Tensor, w: Tensor, x_zero: Optional[Tensor] = None,
                  w_zero: Optional[Tensor] = None, **attrs: Any) -> Tensor:
    xv = x.cast(dt.float64) - (x_zero.cast(dt.float64).reshape(()) if x_zero is not None else 0.0)
    wz = _per_channel(w_zero, w.ndim)
    wv = w.cast(dt.float64) - (wz if wz is not None else 0.0)
    return _conv(ctx, xv, wv, None, **attrs).round().cast(dt.int32)


@op("QLinearConv")
def _qlinear_conv(ctx: Context, x: Tensor, x_scale: Tensor, x_zero: Tensor, w: Tensor, w_scale: Tensor,
                  w_zero: Tensor, y_scale: Tensor, y_zero: Tensor, bias: Optional[Tensor] = None,
                  **attrs: Any) -> Tensor:
    xv = (x.cast(dt.float64) - x_zero.cast(dt.float64).reshape(()))
    wz = _per_channel(w_zero, w.ndim)
    wv = w.cast(dt.float64) - (wz if wz is not None else 0.0)
    acc = _conv(ctx, xv, wv, bias.cast(dt.float64) if bias is not None else None, **attrs)
    ws = _per_channel(w_scale, acc.ndim - 1)
    assert ws is not None
    real = acc * x_scale.cast(dt.float64).reshape(()) * ws
    return _saturate((real / y_scale.cast(dt.float64).reshape(())).round() + y_zero.cast(dt.float64).reshape(()),
                     y_zero.dtype)
