"""ONNX Resize (and the older Upsample) as one weight matrix per resized axis.

Interpolation is separable, so every mode (nearest, linear, cubic, with antialias, exclude_outside and
each coordinate transformation) becomes, per axis, an (out, in) matrix of weights computed once in NumPy
from the static shapes; the tensor is contracted with it. The result stays differentiable and runs as a
matmul on every device."""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from tg.core import Tensor
from tg.core import dtype as dt

from .ops import Context, OnnxError, axis_index, op


def _source_coords(mode: str, n_in: int, n_out: int, scale: float, roi: Optional[tuple[float, float]]
                   ) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Input coordinate of each output position, and for tf_crop_and_resize which fall outside."""
    y = np.arange(n_out, dtype=np.float64)
    width = scale * n_in  # the real-valued output width the scale implies
    if mode == "align_corners":
        return (np.zeros(n_out) if width == 1 else y * (n_in - 1) / (width - 1)), None
    if mode == "asymmetric":
        return y / scale, None
    if mode == "pytorch_half_pixel":
        return (np.full(n_out, -0.5) if width == 1 else (y + 0.5) / scale - 0.5), None
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5, None
    if mode == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / width)
        return offset + (y + 0.5) / scale - 0.5, None
    if mode == "tf_crop_and_resize":
        lo, hi = roi if roi is not None else (0.0, 1.0)
        x = (np.full(n_out, (hi - lo) * (n_in - 1) / 2) if width == 1 else y * (hi - lo) * (n_in - 1) / (width - 1))
        x = x + lo * (n_in - 1)
        return x, (x < 0) | (x > n_in - 1)
    raise OnnxError(f"onnx: Resize coordinate_transformation_mode={mode!r} is not defined")


def _nearest_index(x: np.ndarray, rule: str) -> np.ndarray:
    frac = x - np.floor(x)
    if rule == "round_prefer_floor":
        return np.where(frac <= 0.5, np.floor(x), np.ceil(x))
    if rule == "round_prefer_ceil":
        return np.where(frac < 0.5, np.floor(x), np.ceil(x))
    if rule == "floor":
        return np.floor(x)
    if rule == "ceil":
        return np.ceil(x)
    raise OnnxError(f"onnx: Resize nearest_mode={rule!r} is not defined")


def _kernel(mode: str, a: float) -> tuple[float, Any]:
    """(support radius, weight function of the distance) of the linear or cubic filter."""
    if mode == "linear":
        return 1.0, lambda t: np.clip(1 - np.abs(t), 0, None)

    def cubic(t: np.ndarray) -> np.ndarray:
        t = np.abs(t)
        near = ((a + 2) * t - (a + 3)) * t * t + 1
        far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
        return np.where(t <= 1, near, np.where(t < 2, far, 0.0))
    return 2.0, cubic


def axis_weights(n_in: int, n_out: int, scale: float, mode: str, coord_mode: str,
                 nearest_mode: str = "round_prefer_floor", cubic_a: float = -0.75, antialias: bool = False,
                 exclude_outside: bool = False,
                 roi: Optional[tuple[float, float]] = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """The (n_out, n_in) interpolation matrix of one axis, and the rows to fill with the extrapolation value."""
    x, outside = _source_coords(coord_mode, n_in, n_out, scale, roi)
    w = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    if mode == "nearest":
        w[rows, np.clip(_nearest_index(x, nearest_mode), 0, n_in - 1).astype(np.int64)] = 1.0
        return w, outside
    if mode not in ("linear", "cubic"):
        raise OnnxError(f"onnx: Resize mode={mode!r} is not defined (nearest, linear, cubic are)")
    radius, k = _kernel(mode, cubic_a)
    s = min(scale, 1.0) if antialias else 1.0  # antialias widens the filter when downsampling
    start = math.floor(-radius / s) + 1
    taps = np.arange(start, 1 - start + 1)  # offsets from the left neighbour
    base = np.floor(x)
    base = np.where(base == x, x - 1, base)  # an exact hit counts as the right end of the window
    idx = base[:, None] + taps[None, :]
    coef = k((taps[None, :] - (x - base)[:, None]) * s)
    if antialias:
        coef = coef / coef.sum(1, keepdims=True)
    if exclude_outside:
        coef = np.where((idx < 0) | (idx >= n_in), 0.0, coef)
        total = coef.sum(1, keepdims=True)
        coef = coef / np.where(total == 0, 1.0, total)
    np.add.at(w, (np.repeat(rows, len(taps)), np.clip(idx, 0, n_in - 1).astype(np.int64).reshape(-1)),
              coef.reshape(-1))
    return w, outside


def _plan(shape: tuple[int, ...], scales: Optional[list[float]], sizes: Optional[list[int]], axes: list[int],
          policy: str) -> tuple[list[float], list[int]]:
    """Per-axis scale and output size, as the spec derives them from either input."""
    r = len(shape)
    if sizes is not None:
        out = list(shape)
        for a, n in zip(axes, sizes):
            out[a] = n
        sc = [out[i] / shape[i] if shape[i] else 1.0 for i in range(r)]
        if policy != "stretch":
            pick = min if policy == "not_larger" else max
            common = pick(sc[a] for a in axes)
            sc = [common if i in axes else 1.0 for i in range(r)]
            out = [int(common * shape[i] + 0.5) if i in axes else shape[i] for i in range(r)]
        return sc, out
    assert scales is not None
    sc = [1.0] * r
    for a, v in zip(axes, scales):
        sc[a] = v
    return sc, [math.floor(shape[i] * sc[i] + 1e-9) if sc[i] != 1.0 else shape[i] for i in range(r)]


def resize(x: Tensor, scales: Optional[list[float]], sizes: Optional[list[int]], axes: Optional[list[int]] = None,
           roi: Optional[list[float]] = None, mode: str = "nearest", coord_mode: str = "half_pixel",
           nearest_mode: str = "round_prefer_floor", cubic_a: float = -0.75, antialias: bool = False,
           exclude_outside: bool = False, extrapolation: float = 0.0, policy: str = "stretch") -> Tensor:
    """Resize x along `axes` (default: all) to `sizes` or by `scales`, with ONNX's semantics."""
    ax = [axis_index(a, x.ndim) for a in axes] if axes else list(range(x.ndim))
    sc, out_shape = _plan(x.shape, scales, sizes, ax, policy)
    k = len(ax)
    rois = {a: (roi[i], roi[i + k]) for i, a in enumerate(ax)} if roi and len(roi) == 2 * k else {}
    if roi and len(roi) == 2 * x.ndim and not axes:
        rois = {a: (roi[a], roi[a + x.ndim]) for a in ax}
    work = x.dtype if x.dtype.is_float else dt.float32
    y = x.cast(work)
    for a in ax:
        if out_shape[a] == x.shape[a] and sc[a] == 1.0 and rois.get(a, (0.0, 1.0)) == (0.0, 1.0):
            continue
        w, outside = axis_weights(x.shape[a], out_shape[a], sc[a], mode, coord_mode, nearest_mode, cubic_a, antialias,
                                  exclude_outside, rois.get(a))
        moved = y.movedim(a, -1) @ Tensor(w.T, dtype=work, device=x.device)
        if outside is not None and outside.any():
            moved = Tensor(outside, device=x.device).if_else(extrapolation, moved)
        y = moved.movedim(-1, a)
    if x.dtype.is_float:
        return y
    return y.round().clamp(*_int_range(x.dtype)).cast(x.dtype)


def _int_range(d: dt.DType) -> tuple[float, float]:
    info = np.iinfo(d.np)
    return float(info.min), float(info.max)


def _floats(t: Any) -> Optional[list[float]]:
    if isinstance(t, Tensor):
        return [float(v) for v in t.numpy().reshape(-1)] if t.numel() else None
    return [float(v) for v in t] if t else None


@op("Resize", "Upsample")
def _resize(ctx: Context, x: Tensor, roi: Any = None, scales: Any = None, sizes: Any = None, mode: str = "nearest",
            coordinate_transformation_mode: str = "half_pixel", nearest_mode: str = "round_prefer_floor",
            cubic_coeff_a: float = -0.75, antialias: int = 0, exclude_outside: int = 0,
            extrapolation_value: float = 0.0, keep_aspect_ratio_policy: str = "stretch",
            axes: Optional[list[int]] = None, **attrs: Any) -> Tensor:
    if ctx.node.op_type == "Upsample" or ctx.opset < 11:
        # Upsample and Resize-10 take (X, scales), or scales as an attribute; both use asymmetric coordinates
        sc = _floats(roi if roi is not None else attrs.get("scales", scales))
        kind = "linear" if mode in ("linear", "bilinear") else mode
        return resize(x, sc, None, None, None, kind, "asymmetric", "floor" if kind == "nearest" else nearest_mode)
    sc, sz = _floats(scales), (ctx.ints(sizes) if isinstance(sizes, Tensor) and sizes.numel() else None)
    if sz is None and sc is None:
        raise OnnxError(f"onnx: Resize node {ctx.node.name!r} needs scales or sizes")
    return resize(x, sc, sz, axes, _floats(roi), mode, coordinate_transformation_mode, nearest_mode, cubic_coeff_a,
                  bool(antialias), bool(exclude_outside), extrapolation_value, keep_aspect_ratio_policy)
