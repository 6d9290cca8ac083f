"""ONNX sampling and detection ops: GridSample, AffineGrid, RoiAlign, NonMaxSuppression.

GridSample is separable: per spatial dim, a weight for every pixel index is computed from the (lazy) grid
coordinates with the interpolation kernel, folded through a constant matrix that applies the padding
mode; the input is then contracted with those weights. It stays lazy and differentiable in both the image
and the grid. RoiAlign and NonMaxSuppression read the boxes as values (their geometry decides the shapes)."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from tg.core import Tensor
from tg.core import dtype as dt

from .ops import Context, OnnxError, op

CUBIC_A = -0.75
HALO = 2  # virtual pixels either side: the cubic kernel reaches two pixels out


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
    """Reflect coordinates off the borders [lo, hi] until they fall inside, as the spec's reference does."""
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
    if padding == "border":
        x = outside.if_else(x.clamp(0, n - 1), x)
    elif padding == "reflection":
        x = outside.if_else(_reflect(x, lo, hi), x)
    virt = Tensor(np.arange(-HALO, n + HALO, dtype=np.float64), dtype=x.dtype, device=x.device)
    w = _kernel(x.unsqueeze(-1) - virt, mode).cast(x.dtype)
    return w @ Tensor(_fold_matrix(n, padding, lo, hi), dtype=x.dtype, device=x.device)


def grid_sample(x: Tensor, grid: Tensor, mode: str = "linear", padding: str = "zeros", align: bool = False) -> Tensor:
    """Sample x (N, C, *spatial) at grid (N, *out, r) holding normalized (x, y, ...) coordinates in [-1, 1]."""
    r = x.ndim - 2
    if grid.ndim != r + 2 or grid.shape[-1] != r:
        raise OnnxError(f"onnx: GridSample grid {list(grid.shape)} does not fit input {list(x.shape)}: it needs "
                        f"shape (N, *output, {r})")
    n, c, spatial = x.shape[0], x.shape[1], x.shape[2:]
    out = grid.shape[1:-1]
    o = math.prod(out)
    g = grid.reshape(n, o, r).cast(x.dtype)
    weights = [_axis_weights(g[:, :, r - 1 - i], spatial[i], mode, padding, align) for i in range(r)]
    # the last dim by a batched matmul, then each earlier dim by a broadcast multiply-and-sum
    acc = x.reshape(n, -1, spatial[-1]) @ weights[-1].transpose(1, 2)  # (N, C*rest, O)
    acc = acc.reshape(n, c, *spatial[:-1], o)
    for i in reversed(range(r - 1)):
        w = weights[i].transpose(1, 2).reshape(n, 1, *(1,) * i, spatial[i], o)  # acc is (N, C, *spatial[:i+1], O)
        acc = (acc * w).sum(2 + i)
    return acc.reshape(n, c, *out)


@op("GridSample")
def _grid_sample(ctx: Context, x: Tensor, grid: Tensor, align_corners: int = 0, mode: str = "linear",
                 padding_mode: str = "zeros") -> Tensor:
    kind = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    if kind not in ("linear", "nearest", "cubic"):
        raise OnnxError(f"onnx: GridSample mode={mode!r} is not defined (linear, nearest, cubic are)")
    return grid_sample(x, grid, kind, padding_mode, bool(align_corners))


@op("AffineGrid")
def _affine_grid(ctx: Context, theta: Tensor, size: Tensor, align_corners: int = 0) -> Tensor:
    dims = ctx.ints(size) or []
    n, spatial = dims[0], dims[2:]

    def base(k: int) -> np.ndarray:
        return np.linspace(-1, 1, k) if align_corners else (np.arange(k) * 2 + 1) / k - 1

    axes = np.meshgrid(*[base(k) for k in spatial], indexing="ij")  # spatial order: (z,) y, x
    coords = np.stack([*reversed([a.reshape(-1) for a in axes]), np.ones(math.prod(spatial))], axis=1)
    pts = Tensor(coords, dtype=theta.dtype, device=theta.device)  # (P, r + 1) as (x, y, (z,) 1)
    out = pts @ theta.transpose(1, 2)  # (N, P, r)
    return out.reshape(n, *spatial, len(spatial))


@op("RoiAlign")
def _roi_align(ctx: Context, x: Tensor, rois: Tensor, batch_indices: Tensor,
               coordinate_transformation_mode: str = "half_pixel", mode: str = "avg", output_height: int = 1,
               output_width: int = 1, sampling_ratio: int = 0, spatial_scale: float = 1.0) -> Tensor:
    """Average (or max) of bilinear samples per output bin; sample weights come from the box values."""
    boxes = rois.numpy().astype(np.float64)
    batch = batch_indices.numpy().astype(np.int64).reshape(-1)
    _, c, h, w = x.shape
    oh, ow = output_height, output_width
    offset = 0.5 if coordinate_transformation_mode == "half_pixel" else 0.0
    samples: list[list[list[list[tuple[int, float]]]]] = []  # roi -> bin -> sample -> corners
    for box in boxes:
        x1, y1, x2, y2 = box * spatial_scale - offset
        rh, rw = (y2 - y1, x2 - x1) if offset else (max(y2 - y1, 1.0), max(x2 - x1, 1.0))
        bh, bw = rh / oh, rw / ow
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(rh / oh)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(rw / ow)
        samples.append([[_bilinear_corners(y1 + ph * bh + (iy + 0.5) * bh / gh, x1 + pw * bw + (ix + 0.5) * bw / gw,
                                           h, w)
                         for iy in range(gh) for ix in range(gw)]
                        for ph in range(oh) for pw in range(ow)])
    most = max((len(bins[0]) for bins in samples), default=1) or 1
    # one row per (sample, corner); rows past a roi's own sample count are padding
    weights = np.zeros((len(boxes), oh * ow, most * 4, h * w))
    real = np.zeros((len(boxes), 1, 1, most * 4), bool)
    for r, bins in enumerate(samples):
        real[r, ..., :len(bins[0]) * 4] = True
        for b, points in enumerate(bins):
            for k, corners in enumerate(points):
                for j, (pix, wt) in enumerate(corners):
                    weights[r, b, k * 4 + j, pix] += wt / (1 if mode == "max" else len(points))
    feats = x[Tensor(batch, device=x.device)].reshape(len(boxes), 1, c, h * w)  # (R, 1, C, HW)
    vals = feats @ Tensor(weights, dtype=x.dtype, device=x.device).transpose(2, 3)  # (R, bins, C, rows)
    if mode == "max":
        out = Tensor(real, device=x.device).if_else(vals, -math.inf).amax(-1)
    else:
        out = vals.sum(-1)
    return out.permute(0, 2, 1).reshape(len(boxes), c, oh, ow)


def _bilinear_corners(y: float, x: float, h: int, w: int) -> list[tuple[int, float]]:
    """The four (flat pixel, weight) pairs of a bilinear sample, with RoiAlign's edge rules."""
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return []
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        xl = xh = w - 1
        x = float(xl)
    else:
        xl, xh = x0, x0 + 1
    ly, lx = y - y0, x - xl
    hy, hx = 1 - ly, 1 - lx
    return [(y0 * w + xl, hy * hx), (y0 * w + xh, hy * lx), (y1 * w + xl, ly * hx), (y1 * w + xh, ly * lx)]


@op("NonMaxSuppression")
def _nms(ctx: Context, boxes: Tensor, scores: Tensor, max_output: Optional[Tensor] = None,
         iou_threshold: Optional[Tensor] = None, score_threshold: Optional[Tensor] = None,
         center_point_box: int = 0) -> Tensor:
    bx, sc = boxes.numpy().astype(np.float64), scores.numpy().astype(np.float64)
    limit = int(max_output.numpy().reshape(-1)[0]) if max_output is not None and max_output.numel() else 0
    iou_t = float(iou_threshold.numpy().reshape(-1)[0]) if iou_threshold is not None and iou_threshold.numel() else 0.0
    score_t = (float(score_threshold.numpy().reshape(-1)[0]) if score_threshold is not None and
               score_threshold.numel() else None)
    if center_point_box:
        xc, yc, bw, bh = np.moveaxis(bx, -1, 0)
        y1, x1, y2, x2 = yc - bh / 2, xc - bw / 2, yc + bh / 2, xc + bw / 2
    else:
        a, b, c, d = np.moveaxis(bx, -1, 0)
        y1, x1, y2, x2 = np.minimum(a, c), np.minimum(b, d), np.maximum(a, c), np.maximum(b, d)
    area = (y2 - y1) * (x2 - x1)
    picked: list[list[int]] = []
    for bi in range(sc.shape[0]):
        for ci in range(sc.shape[1]):
            s = sc[bi, ci]
            order = [i for i in np.argsort(-s, kind="stable") if score_t is None or s[i] > score_t]
            keep: list[int] = []
            for i in order:
                if len(keep) >= limit:  # the default limit, 0, selects nothing
                    break
                ok = True
                for j in keep:
                    ih = max(0.0, min(y2[bi, i], y2[bi, j]) - max(y1[bi, i], y1[bi, j]))
                    iw = max(0.0, min(x2[bi, i], x2[bi, j]) - max(x1[bi, i], x1[bi, j]))
                    inter = ih * iw
                    union = area[bi, i] + area[bi, j] - inter
                    if union > 0 and inter / union > iou_t:
                        ok = False
                        break
                if ok:
                    keep.append(int(i))
            picked += [[bi, ci, k] for k in keep]
    return Tensor(np.array(picked, np.int64).reshape(-1, 3), device=ctx.device)

