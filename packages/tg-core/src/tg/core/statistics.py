"""Statistics and order statistics with torch's names: NaN-ignoring sums and means, k-th values, modes,
quantiles, histograms, unique values, covariance.

Order statistics need the data's order, which depends on the values: like `sort`, they read the tensor once and
then gather the chosen elements from it, so gradients flow to the elements picked. Results whose shape depends on
the data (`unique`) are built from the values read.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from . import dtype as dt
from .functional import ValuesIndices

if TYPE_CHECKING:
    from .tensor import Tensor

Dims = Optional[Union[int, Sequence[int]]]
QUANTILE_MODES = ("linear", "lower", "higher", "nearest", "midpoint")


def nansum(x: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    """The sum with NaN counted as 0 (torch.nansum)."""
    return (x.isnan().if_else(0, x) if x.dtype.is_float else x).sum(dim, keepdim)


def nanmean(x: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    """The mean of the elements that are not NaN (NaN where all are), as torch.nanmean."""
    if not x.dtype.is_float:
        raise RuntimeError(f"nanmean: needs a float tensor, got {x.dtype.name}")
    present = x.isnan().logical_not()
    return nansum(x, dim, keepdim) / present.sum(dim, keepdim).cast(x.dtype)


def aminmax(x: Tensor, dim: Optional[int] = None, keepdim: bool = False) -> tuple[Tensor, Tensor]:
    """(min, max) at once (torch.aminmax)."""
    if x.numel() == 0 and dim is None:
        raise RuntimeError(f"aminmax: cannot reduce an empty tensor of shape {x.shape} without a dim")
    return x.amin(dim, keepdim), x.amax(dim, keepdim)


def msort(x: Tensor) -> Tensor:
    """x sorted along dim 0 (torch.msort)."""
    return x.sort(0)[0]


def argwhere(x: Tensor) -> Tensor:
    """The indices of the nonzero elements, one row each (torch.argwhere)."""
    return x.nonzero()


def dist(x: Tensor, other: Tensor, p: float = 2.0) -> Tensor:
    """The p-norm of x - other (torch.dist)."""
    return (x - other).norm(p)


def _pick(x: Tensor, d: int, position: np.ndarray, keepdim: bool) -> ValuesIndices:
    """The values of sorted x along d at `position` (one per slice, keepdim shape), and their original indices."""
    values, indices = x.sort(d)
    at = x.tensor_class(position.astype(np.int64), device=x.device)
    v, i = values.gather(d, at), indices.gather(d, at)
    return ValuesIndices(v if keepdim else v.squeeze(d), i if keepdim else i.squeeze(d))


def _slice_shape(x: Tensor, d: int) -> tuple[int, ...]:
    return tuple(1 if k == d else n for k, n in enumerate(x.shape))


def kthvalue(x: Tensor, k: int, dim: int = -1, keepdim: bool = False) -> ValuesIndices:
    """The k-th smallest value along `dim` (1-based) and its index (torch.kthvalue)."""
    d = x._dim(dim) if x.ndim else 0
    x1 = x.reshape(1) if x.ndim == 0 else x
    n = x1.shape[d]
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue: k={k} is out of range for dim {d} of size {n} (shape {x.shape})")
    out = _pick(x1, d, np.full(_slice_shape(x1, d), k - 1), keepdim or x.ndim == 0)
    return out if x.ndim else ValuesIndices(out.values.reshape(()), out.indices.reshape(()))


def nanmedian(x: Tensor, dim: Optional[int] = None, keepdim: bool = False) -> Any:
    """The lower median of the values that are not NaN (NaN where all are), as torch.nanmedian."""
    if dim is None:
        flat = x.reshape(-1)
        if flat.numel() == 0:
            return x.median()  # NaN for floats, as torch
        return nanmedian(flat, 0)[0]
    d = x._dim(dim)
    if x.shape[d] == 0:
        raise IndexError(f"nanmedian: dim {d} of shape {x.shape} is empty")
    if not x.dtype.is_float:
        return x.median(d, keepdim)
    present = np.sum(~np.isnan(x.numpy()), axis=d, keepdims=True)
    return _pick(x, d, np.maximum(present - 1, 0) // 2, keepdim)  # NaN sorts last: all-NaN slices pick a NaN


def _quantile(x: Tensor, q: Union[float, Tensor, Sequence[float]], dim: Optional[int], keepdim: bool,
              interpolation: str, op: str, ignore_nan: bool) -> Tensor:
    if interpolation not in QUANTILE_MODES:
        raise RuntimeError(f"{op}: interpolation must be one of {QUANTILE_MODES}, got {interpolation!r}")
    if not x.dtype.is_float:
        raise RuntimeError(f"{op}: needs a float tensor, got {x.dtype.name}")
    qs = np.asarray(q.numpy() if isinstance(q, x.tensor_class) else q, np.float64)
    if qs.ndim > 1 or np.any((qs < 0) | (qs > 1)) or np.any(np.isnan(qs)):
        raise RuntimeError(f"{op}: q must be a scalar or 1-D with values in [0, 1], got {qs.tolist()}")
    src = x.reshape(-1) if dim is None else x
    d = 0 if dim is None else x._dim(dim)
    if src.shape[d] == 0:
        raise RuntimeError(f"{op}: cannot compute quantiles of an empty dim (shape {x.shape})")
    data = src.numpy()
    nan = np.isnan(data)
    count = np.sum(~nan, axis=d, keepdims=True) if ignore_nan else np.full(_slice_shape(src, d), src.shape[d])
    has_nan = np.any(nan, axis=d, keepdims=True)
    values = src.sort(d)[0]  # NaN last
    outs = []
    for qv in qs.reshape(-1):
        pos = qv * np.maximum(count - 1, 0)
        lo, hi = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
        if interpolation == "nearest":
            lo = hi = np.round(pos).astype(np.int64)  # halves to even, as torch
        a = values.gather(d, x.tensor_class(lo, device=x.device))
        b = values.gather(d, x.tensor_class(hi, device=x.device))
        if interpolation in ("lower", "nearest"):
            r = a
        elif interpolation == "higher":
            r = b
        elif interpolation == "midpoint":
            r = a + (b - a) * 0.5
        else:
            r = a.lerp(b, x.tensor_class((pos - lo).astype(x.dtype.np), device=x.device))  # torch's two-sided form
        undefined = (count == 0) if ignore_nan else has_nan
        if undefined.any():
            r = x.tensor_class(undefined, device=x.device).if_else(math.nan, r)
        outs.append(r if keepdim and dim is not None else r.squeeze(d) if dim is not None else r.reshape(()))
    if qs.ndim == 0:
        return outs[0]
    out = outs[0].stack(*outs[1:], dim=0)
    return out.reshape(len(outs), *([1] * x.ndim)) if keepdim and dim is None else out


def quantile(x: Tensor, q: Union[float, Tensor, Sequence[float]], dim: Optional[int] = None, keepdim: bool = False,
             interpolation: str = "linear") -> Tensor:
    """The q-th quantiles along `dim` (of all elements without one), NaN where a slice holds NaN (torch.quantile).
    A 1-D q puts its values in a new first dim."""
    return _quantile(x, q, dim, keepdim, interpolation, "quantile", ignore_nan=False)


def nanquantile(x: Tensor, q: Union[float, Tensor, Sequence[float]], dim: Optional[int] = None,
                keepdim: bool = False, interpolation: str = "linear") -> Tensor:
    """quantile over the values that are not NaN (NaN where all are), as torch.nanquantile."""
    return _quantile(x, q, dim, keepdim, interpolation, "nanquantile", ignore_nan=True)


def mode(x: Tensor, dim: int = -1, keepdim: bool = False) -> ValuesIndices:
    """The most frequent value along `dim` (the smallest of equally frequent ones; NaNs never equal each other)
    and the index of its last occurrence, as torch.mode."""
    x1 = x.reshape(1) if x.ndim == 0 else x
    d = x1._dim(dim)
    if x1.shape[d] == 0:
        raise IndexError(f"mode: dim {d} of shape {x.shape} is empty")
    data = np.moveaxis(x1.numpy(), d, -1)
    flat = data.reshape(-1, data.shape[-1])
    picks = np.empty(len(flat), np.int64)
    for r, row in enumerate(flat):
        order = np.argsort(row, kind="stable")  # NaN last; each NaN is its own run below
        s = row[order]
        starts = np.flatnonzero(np.r_[True, (s[1:] != s[:-1])])
        counts = np.diff(np.r_[starts, len(s)])
        best = int(np.argmax(counts))  # the first (smallest) of the most frequent
        picks[r] = order[starts[best]:starts[best] + counts[best]].max()  # its last occurrence
    at = np.moveaxis(picks.reshape(data.shape[:-1] + (1,)), -1, d)
    index = x.tensor_class(at, device=x.device)
    values = x1.gather(d, index)
    if x.ndim == 0:
        return ValuesIndices(values.reshape(()), index.reshape(()))
    return ValuesIndices(values if keepdim else values.squeeze(d), index if keepdim else index.squeeze(d))


def histc(x: Tensor, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:  # noqa: A002 - torch's names
    """Counts of x in `bins` equal bins over [min, max] (the data's range when both are 0), as torch.histc:
    values outside the range and NaN are not counted, the top edge counts in the last bin."""
    if bins <= 0:
        raise RuntimeError(f"histc: bins must be positive, got {bins}")
    if not x.dtype.is_float:
        raise RuntimeError(f"histc: needs a float tensor, got {x.dtype.name}")
    lo, hi = float(min), float(max)
    if lo == hi and x.numel():
        finite = x.isfinite()
        lo, hi = float(finite.if_else(x, math.inf).amin().item()), float(finite.if_else(x, -math.inf).amax().item())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise RuntimeError(f"histc: range of [{lo}, {hi}] is not finite or min > max")
    flat = x.reshape(-1).detach()
    inside = (flat >= lo).logical_and(flat <= hi)
    b = ((flat - lo) * (bins / (hi - lo))).floor().cast(dt.int64).clamp(0, bins - 1)
    which = x.tensor_class.arange(bins, device=x.device)
    return (inside.unsqueeze(-1).logical_and(b.unsqueeze(-1) == which)).sum(0, dtype=x.dtype)


def unique(x: Tensor, sorted: bool = True, return_inverse: bool = False,  # noqa: A002 - torch's name
           return_counts: bool = False, dim: Optional[int] = None) -> Any:
    """The distinct values (sorted; each NaN distinct), optionally with the inverse indices and the counts
    (torch.unique). With `dim`, the distinct slices along it."""
    data = x.numpy()
    if dim is None:
        values, inverse, counts = np.unique(data.reshape(-1), return_inverse=True, return_counts=True,
                                            equal_nan=False)
        inverse = inverse.reshape(x.shape)
    else:
        d = x._dim(dim)
        values, inverse, counts = np.unique(data, return_inverse=True, return_counts=True, axis=d, equal_nan=False)
        inverse = inverse.reshape(-1)
    return _unique_result(x, values, inverse, counts, return_inverse, return_counts)


def unique_consecutive(x: Tensor, return_inverse: bool = False, return_counts: bool = False,
                       dim: Optional[int] = None) -> Any:
    """The values with consecutive repeats collapsed to one (torch.unique_consecutive)."""
    data = x.numpy()
    d = 0 if dim is None else x._dim(dim)
    moved = np.moveaxis(data.reshape(-1) if dim is None else data, d, 0)
    rows = moved.reshape(len(moved), -1)
    new = np.r_[True, np.any(rows[1:] != rows[:-1], axis=1)] if len(rows) else np.zeros(0, bool)
    starts = np.flatnonzero(new)
    values = np.moveaxis(moved[starts], 0, d) if dim is not None else moved[starts]
    inverse = np.cumsum(new) - 1
    counts = np.diff(np.r_[starts, len(rows)])
    return _unique_result(x, values, inverse.reshape(x.shape) if dim is None else inverse, counts,
                          return_inverse, return_counts)


def _unique_result(x: Tensor, values: np.ndarray, inverse: np.ndarray, counts: np.ndarray, return_inverse: bool,
                   return_counts: bool) -> Any:
    t = x.tensor_class
    out: list[Tensor] = [t(values.astype(x.dtype.np), device=x.device)]
    if return_inverse:
        out.append(t(inverse.astype(np.int64), device=x.device))
    if return_counts:
        out.append(t(counts.astype(np.int64), device=x.device))
    return out[0] if len(out) == 1 else tuple(out)


def cov(x: Tensor, correction: int = 1, fweights: Optional[Tensor] = None,
        aweights: Optional[Tensor] = None) -> Tensor:
    """The covariance matrix of the variables in x's rows, observed in its columns (torch.cov), with optional
    integer frequency weights and float observation weights per column."""
    if x.ndim > 2:
        raise RuntimeError(f"cov: expected a tensor of at most 2 dims, got shape {x.shape}")
    m = x._float().reshape(1, -1) if x.ndim < 2 else x._float()
    n = m.shape[1]
    w: Optional[Tensor] = None
    for name, weights in (("fweights", fweights), ("aweights", aweights)):
        if weights is None:
            continue
        if weights.shape != (n,):
            raise RuntimeError(f"cov: {name} must be 1-D with one weight per observation ({n}), got {weights.shape}")
        w = weights.cast(m.dtype) if w is None else w * weights.cast(m.dtype)
    if w is None:
        total = m.tensor_class.full((), n, m.dtype, m.device)
        mean = m.mean(1, keepdim=True)
        norm = total - correction
    else:
        total = w.sum()
        mean = (m * w).sum(1, keepdim=True) / total
        norm = total - correction * ((w * aweights.cast(m.dtype)).sum() / total if aweights is not None else 1)
    centred = m - mean
    weighted = centred if w is None else centred * w
    out = (weighted @ centred.T) / norm.maximum(0)
    return out.reshape(()) if x.ndim < 2 else out


def corrcoef(x: Tensor) -> Tensor:
    """Pearson correlation coefficients of the variables in x's rows (torch.corrcoef), clipped to [-1, 1]."""
    c = cov(x)
    if c.ndim == 0:
        return c / c
    d = c.diagonal().sqrt()
    return (c / d.unsqueeze(1) / d.unsqueeze(0)).clamp(-1, 1)
