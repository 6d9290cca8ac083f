"""Sampling an image at arbitrary coordinates: grid_sample and affine_grid (torch.nn.functional's; ONNX GridSample
and AffineGrid read them too).

grid_sample is separable: per spatial dim, a weight for every pixel index is computed from the (lazy) grid
coordinates with the interpolation kernel (nearest, linear or Keys' cubic), folded through a constant matrix that
applies the padding mode; the input is then contracted with those weights. It stays lazy and differentiable in both
the image and the grid, and costs a contraction over each spatial dim per output position."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

import numpy as np

from . import dtype as dt

if TYPE_CHECKING:
    from .tensor import Tensor

CUBIC_A = -0.75  # torch's (and OpenCV's) bicubic convolution constant
HALO = 3  # virtual pixels either side: the cubic kernel reaches two pixels out from a coordinate down to -2
MODES = {"bilinear": "linear", "linear": "linear", "nearest": "nearest", "bicubic": "cubic", "cubic": "cubic"}
PADDINGS = ("zeros", "border", "reflection")


def _reflect_np(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    rng = max(hi - lo, 1e-12)
    below, above = lo - x, x - hi
    out = x.astype(np.float64).copy()
    for mask, dist, near, far in ((below > 0, below, lo, hi), (above > 0, above, hi, lo)):
        n = np.floor(dist / rng)
        r = dist - n * rng
        flip = np.where(n % 2 == 0, near + np.sign(far - near) * r, far - np.sign(far - near) * r)
        out = np.where(mask, flip, out)
    return out


def _reflect(x: Tensor, lo: float, hi: float) -> Tensor:
    """Reflect coordinates off the borders [lo, hi] until they fall inside."""
    rng = max(hi - lo, 1e-12)
    below, above = lo - x, x - hi
    out = x
    for mask, dist, near, far in ((below > 0, below, lo, hi), (above > 0, above, hi, lo)):
        n = (dist / rng).floor()
        r = dist - n * rng
        even = (n - (n / 2).floor() * 2) == 0
        step = 1.0 if far > near else -1.0
        out = mask.if_else(even.if_else(near + step * r, far - step * r), out)
    return out


def _fold_matrix(n: int, padding: str, lo: float, hi: float) -> np.ndarray:
    """(n + 2*HALO, n): which real pixel each virtual pixel index reads under the padding mode."""
    virt = np.arange(-HALO, n + HALO)
    m = np.zeros((len(virt), n))
    if padding == "zeros":
        inside = (virt >= 0) & (virt < n)
        m[np.nonzero(inside)[0], virt[inside]] = 1
    elif padding == "border":
        m[np.arange(len(virt)), np.clip(virt, 0, n - 1)] = 1
    else:
        real = np.clip(_reflect_np(virt.astype(np.float64), lo, hi).astype(np.int64), 0, n - 1)
        m[np.arange(len(virt)), real] = 1
    return m


def _kernel(d: Tensor, mode: str) -> Tensor:
    if mode == "nearest":
        return (d == 0).cast(dt.float32)
    t = d.abs()
    if mode == "linear":
        return (1 - t).relu()
    a = CUBIC_A
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return (t <= 1).if_else(near, (t < 2).if_else(far, 0.0))


def _axis_weights(coord: Tensor, n: int, mode: str, padding: str, align: bool) -> Tensor:
    """(N, O, n) weights of each real pixel for each output position along one spatial dim."""
    lo, hi = (0.0, n - 1.0) if align else (-0.5, n - 0.5)
    x = (coord + 1) / 2 * (n - 1) if align else ((coord + 1) * n - 1) / 2
    if mode == "nearest":
        x = x.round()
    outside = (x < lo) | (x > hi)
    if padding == "border" and mode == "cubic":  # each tap reads the nearest border pixel (the fold matrix), as
        x = x.clamp(-2, n + 1)  # torch's; a coordinate 2 past the edge reads that pixel alone, so no further
    elif padding == "border":
        x = outside.if_else(x.clamp(0, n - 1), x)
    elif padding == "reflection":
        x = outside.if_else(_reflect(x, lo, hi), x)
    make = coord.tensor_class
    virt = make(np.arange(-HALO, n + HALO, dtype=np.float64), dtype=x.dtype, device=x.device)
    w = _kernel(x.unsqueeze(-1) - virt, mode).cast(x.dtype)
    return w @ make(_fold_matrix(n, padding, lo, hi), dtype=x.dtype, device=x.device)


def grid_sample(x: Tensor, grid: Tensor, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: Optional[bool] = None) -> Tensor:
    """Sample x (N, C, *spatial) at grid (N, *out, r), which holds normalized (x, y[, z]) coordinates in [-1, 1],
    as torch.nn.functional.grid_sample: mode bilinear, nearest or bicubic; padding_mode zeros, border or
    reflection; align_corners False by default. Differentiable in x and in the grid."""
    kind = MODES.get(mode)
    if kind is None or padding_mode not in PADDINGS:
        raise ValueError(f"grid_sample: mode must be bilinear, nearest or bicubic and padding_mode zeros, border or "
                         f"reflection; got {mode!r}, {padding_mode!r}")
    r = x.ndim - 2
    if r < 1 or grid.ndim != r + 2 or grid.shape[-1] != r or grid.shape[0] != x.shape[0]:
        raise RuntimeError(f"grid_sample: grid {tuple(grid.shape)} does not fit input {tuple(x.shape)}: it needs "
                           f"shape ({x.shape[0]}, *output, {r})")
    n, c, spatial = x.shape[0], x.shape[1], x.shape[2:]
    out = grid.shape[1:-1]
    o = math.prod(out)
    g = grid.reshape(n, o, r).cast(x.dtype)
    weights = [_axis_weights(g[:, :, r - 1 - i], spatial[i], kind, padding_mode, bool(align_corners))
               for i in range(r)]
    # the last dim by a batched matmul, then each earlier dim by a broadcast multiply-and-sum
    acc = x.reshape(n, -1, spatial[-1]) @ weights[-1].transpose(1, 2)  # (N, C*rest, O)
    acc = acc.reshape(n, c, *spatial[:-1], o)
    for i in reversed(range(r - 1)):
        w = weights[i].transpose(1, 2).reshape(n, 1, *(1,) * i, spatial[i], o)  # acc is (N, C, *spatial[:i+1], O)
        acc = (acc * w).sum(2 + i)
    return acc.reshape(n, c, *out)


def affine_grid(theta: Tensor, size: Sequence[int], align_corners: Optional[bool] = None) -> Tensor:
    """The sampling grid (N, *spatial, r) of the affine maps theta (N, r, r + 1) over an output of `size`
    (N, C, *spatial), in grid_sample's normalized coordinates, as torch.nn.functional.affine_grid."""
    n, spatial = size[0], list(size[2:])
    r = len(spatial)
    if r not in (2, 3) or tuple(theta.shape) != (n, r, r + 1):
        raise RuntimeError(f"affine_grid: theta {tuple(theta.shape)} must be (N, {r}, {r + 1}) for size {tuple(size)}"
                           " (N, C, H, W) or (N, C, D, H, W)")

    def base(k: int) -> np.ndarray:
        return np.linspace(-1, 1, k) if align_corners else (np.arange(k) * 2 + 1) / k - 1

    axes = np.meshgrid(*[base(k) for k in spatial], indexing="ij")  # spatial order: (z,) y, x
    coords = np.stack([*reversed([a.reshape(-1) for a in axes]), np.ones(math.prod(spatial))], axis=1)
    pts = theta.tensor_class(coords, dtype=theta.dtype, device=theta.device)  # (P, r + 1) as (x, y, (z,) 1)
    out = pts @ theta.transpose(1, 2)  # (N, P, r)
    return out.reshape(n, *spatial, r)
