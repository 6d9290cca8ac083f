"""ONNX sampling and detection ops: GridSample, AffineGrid (tg.core.sampling's), RoiAlign, NonMaxSuppression.

RoiAlign and NonMaxSuppression read the boxes as values (their geometry decides the shapes)."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from tg.core import Tensor, sampling

from .ops import Context, OnnxError, op


@op("GridSample")
def _grid_sample(ctx: Context, x: Tensor, grid: Tensor, align_corners: int = 0, mode: str = "linear",
                 padding_mode: str = "zeros") -> Tensor:
    if mode not in sampling.MODES:
        raise OnnxError(f"onnx: GridSample mode={mode!r} is not defined (linear, nearest, cubic are)")
    return sampling.grid_sample(x, grid, mode, padding_mode, bool(align_corners))


@op("AffineGrid")
def _affine_grid(ctx: Context, theta: Tensor, size: Tensor, align_corners: int = 0) -> Tensor:
    return sampling.affine_grid(theta, ctx.ints(size) or [], bool(align_corners))


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

