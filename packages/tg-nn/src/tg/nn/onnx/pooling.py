"""ONNX pooling over any number of spatial dims: MaxPool (with Indices), AveragePool, LpPool, their global
forms and MaxUnpool. Each is a reduction over a sliding-window view of the padded input."""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from tg.core import Tensor
from tg.core import dtype as dt

from .ops import Context, OnnxError, _conv_pads, op


def _geometry(x: Tensor, ks: list[int], st: list[int], dil: list[int], pairs: list[tuple[int, int]],
              ceil_mode: bool) -> list[tuple[int, int]]:
    """(before, after) padding per spatial dim so that the windows give exactly ONNX's output size."""
    out = []
    for n, k, s, d, (lo, hi) in zip(x.shape[2:], ks, st, dil, pairs):
        span = n + lo + hi - d * (k - 1) - 1
        count = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (count - 1) * s >= n + lo:  # a window may not start in the right padding
            count -= 1
        out.append((lo, (count - 1) * s + d * (k - 1) + 1 - n - lo))
    return out


def _windows(t: Tensor, pads: list[tuple[int, int]], ks: list[int], st: list[int], dil: list[int]) -> Tensor:
    return t._pad_dims([(0, 0), (0, 0), *pads])._windows(ks, st, dil)


def pool(x: Tensor, kind: str, ks: list[int], st: list[int], dil: list[int], pairs: list[tuple[int, int]],
         ceil_mode: bool = False, count_include_pad: bool = False, p: int = 2) -> Tensor:
    """Max, average or Lp pooling of (N, C, *spatial) with ONNX's padding and ceil rules."""
    nd = len(ks)
    pads = _geometry(x, ks, st, dil, pairs, ceil_mode)
    red = tuple(range(-nd, 0))
    if kind == "max":
        fill = -math.inf if x.dtype.is_float else int(np.iinfo(x.dtype.np).min)
        inside = _windows(x.ones_like(dt.bool_), pads, ks, st, dil)
        return inside.if_else(_windows(x, pads, ks, st, dil), fill).amax(red)
    if kind == "lp":
        return (_windows(x.abs(), pads, ks, st, dil) ** p).sum(red) ** (1.0 / p)
    total = _windows(x, pads, ks, st, dil).sum(red)
    if count_include_pad:  # the explicit padding counts, the extra ceil-mode overhang does not
        ones = Tensor.ones(*x.shape[:2], *(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], pairs)), device=x.device)
        counted = _windows(ones, [(0, a + b - lo - hi) for (lo, hi), (a, b) in zip(pairs, pads)], ks, st, dil)
    else:
        counted = _windows(x.ones_like(), pads, ks, st, dil)
    return total / counted.sum(red)


def _args(x: Tensor, kernel_shape: Optional[list[int]], strides: Optional[list[int]], dilations: Optional[list[int]],
          pads: Optional[list[int]], auto_pad: str, name: str) -> tuple[list[int], list[int], list[int], list[Any]]:
    if kernel_shape is None:
        raise OnnxError(f"onnx: {name} needs kernel_shape")
    nd = len(kernel_shape)
    if x.ndim != nd + 2:
        raise OnnxError(f"onnx: {name} with kernel_shape {kernel_shape} needs a {nd + 2}-D input, got {list(x.shape)}")
    st, dil = strides or [1] * nd, dilations or [1] * nd
    return kernel_shape, st, dil, _conv_pads(x, kernel_shape, st, dil, pads, auto_pad)


@op("MaxPool")
def _maxpool(ctx: Context, x: Tensor, auto_pad: str = "NOTSET", ceil_mode: int = 0,
             dilations: Optional[list[int]] = None, kernel_shape: Optional[list[int]] = None,
             pads: Optional[list[int]] = None, storage_order: int = 0, strides: Optional[list[int]] = None) -> Any:
    ks, st, dil, pairs = _args(x, kernel_shape, strides, dilations, pads, auto_pad, "MaxPool")
    out = pool(x, "max", ks, st, dil, pairs, bool(ceil_mode))
    if len(ctx.node.output) < 2 or not ctx.node.output[1]:
        return out
    return out, _argmax_indices(x, ks, st, dil, pairs, bool(ceil_mode), storage_order)


def _argmax_indices(x: Tensor, ks: list[int], st: list[int], dil: list[int], pairs: list[tuple[int, int]],
                    ceil_mode: bool, storage_order: int) -> Tensor:
    """MaxPool's Indices: the flat (row-major, or column-major over the spatial dims) input offset of each max."""
    nd = len(ks)
    pads = _geometry(x, ks, st, dil, pairs, ceil_mode)
    n_c, spatial = x.shape[:2], x.shape[2:]
    pos = np.arange(math.prod(spatial)).reshape(spatial)
    if storage_order:
        pos = pos.reshape(spatial[::-1]).T if nd == 2 else pos
    offsets = np.arange(math.prod(n_c)).reshape(*n_c, *(1,) * nd) * math.prod(spatial) + pos
    fill = -math.inf if x.dtype.is_float else int(np.iinfo(x.dtype.np).min)
    inside = _windows(x.ones_like(dt.bool_), pads, ks, st, dil)
    vals = inside.if_else(_windows(x, pads, ks, st, dil), fill)
    idx = _windows(Tensor(offsets.astype(np.float64), device=x.device), pads, ks, st, dil)
    flat = vals.reshape(*vals.shape[:-nd], -1)
    best = flat.argmax(-1, keepdim=True)
    return idx.reshape(*idx.shape[:-nd], -1).gather(-1, best).squeeze(-1).cast(dt.int64)


@op("AveragePool")
def _avgpool(ctx: Context, x: Tensor, auto_pad: str = "NOTSET", ceil_mode: int = 0, count_include_pad: int = 0,
             dilations: Optional[list[int]] = None, kernel_shape: Optional[list[int]] = None,
             pads: Optional[list[int]] = None, strides: Optional[list[int]] = None) -> Tensor:
    ks, st, dil, pairs = _args(x, kernel_shape, strides, dilations, pads, auto_pad, "AveragePool")
    return pool(x, "avg", ks, st, dil, pairs, bool(ceil_mode), bool(count_include_pad))


@op("LpPool")
def _lppool(ctx: Context, x: Tensor, auto_pad: str = "NOTSET", ceil_mode: int = 0,
            dilations: Optional[list[int]] = None, kernel_shape: Optional[list[int]] = None, p: int = 2,
            pads: Optional[list[int]] = None, strides: Optional[list[int]] = None) -> Tensor:
    ks, st, dil, pairs = _args(x, kernel_shape, strides, dilations, pads, auto_pad, "LpPool")
    return pool(x, "lp", ks, st, dil, pairs, bool(ceil_mode), p=p)


@op("GlobalAveragePool")
def _gap(ctx: Context, x: Tensor) -> Tensor:
    return x.mean(tuple(range(2, x.ndim)), keepdim=True)


@op("GlobalMaxPool")
def _gmp(ctx: Context, x: Tensor) -> Tensor:
    return x.amax(tuple(range(2, x.ndim)), keepdim=True)


@op("GlobalLpPool")
def _glp(ctx: Context, x: Tensor, p: int = 2) -> Tensor:
    return (x.abs() ** p).sum(tuple(range(2, x.ndim)), keepdim=True) ** (1.0 / p)


@op("MaxUnpool")
def _maxunpool(ctx: Context, x: Tensor, indices: Tensor, output_shape: Optional[Tensor] = None,
               kernel_shape: Optional[list[int]] = None, pads: Optional[list[int]] = None,
               strides: Optional[list[int]] = None) -> Tensor:
    """Scatter each pooled value to the flat input offset MaxPool recorded for it."""
    assert kernel_shape is not None
    nd = len(kernel_shape)
    st, p = strides or [1] * nd, pads or [0] * (2 * nd)
    natural = [*x.shape[:2], *((n - 1) * s - p[i] - p[i + nd] + k
                               for i, (n, s, k) in enumerate(zip(x.shape[2:], st, kernel_shape)))]
    shape = (ctx.ints(output_shape) or natural) if output_shape is not None else natural
    idx = indices.reshape(-1).cast(dt.int64)
    if shape != natural:  # the indices address the natural shape: move each to the same coordinates in shape
        rest, moved, stride = idx, idx.zeros_like(), 1
        for n_nat, n_out in zip(reversed(natural), reversed(shape)):
            moved = moved + (rest % n_nat) * stride
            rest, stride = rest.div(n_nat, rounding_mode="floor"), stride * n_out
        idx = moved
    flat = Tensor.zeros(math.prod(shape), dtype=x.dtype, device=x.device)
    return flat.scatter_add(0, idx, x.reshape(-1)).reshape(*shape)
