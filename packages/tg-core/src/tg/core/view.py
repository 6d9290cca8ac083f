"""Views: how a tensor of some shape reads a flat buffer, so that movement ops cost no kernel.

A `View` maps an index of its `shape` to `offset + sum(index * strides)` in the buffer. Where a
`mask` is set, indices outside `[lo, hi)` on some dim read as zero instead (that is padding).
Sliding windows over padding need more: the padded dim's index is `out * stride + k * dilation`, a
sum of two dims, so its padding is a `Bound` on that sum (`lo <= sum(coeffs * index) < hi`).
Every movement op (reshape, permute, expand, pad, shrink, flip, window) turns a View into another
View; only a reshape can fail, and then the caller makes the data contiguous first.
"""
from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Optional

Shape = tuple[int, ...]
Strides = tuple[int, ...]
Mask = Optional[tuple[tuple[int, int], ...]]
Bound = tuple[tuple[int, ...], int, int]  # (a coefficient per dim, lo, hi): valid where lo <= sum(c * i) < hi


@functools.lru_cache(maxsize=4096)
def contiguous_strides(shape: Shape) -> Strides:
    """Row-major strides for `shape`; size-1 dims get stride 0 so equal views compare equal."""
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc if n != 1 else 0)
        acc *= n
    return tuple(reversed(strides))


def _normalize_mask(shape: Shape, mask: Mask) -> Mask:
    if mask is None:
        return None
    if any(lo >= hi for lo, hi in mask):  # nothing is valid: one canonical empty mask
        return tuple((0, 0) for _ in shape)
    return None if all(m == (0, n) for m, n in zip(mask, shape)) else mask


def _single_dim_range(c: int, lo: int, hi: int) -> tuple[int, int]:
    """The indices i with lo <= c * i < hi (c != 0), as a range [a, b)."""
    if c > 0:
        return -(-lo // c), -(-hi // c)
    return hi // c + 1, lo // c + 1


def _normalize_bounds(shape: Shape, mask: Mask, bounds: tuple[Bound, ...]) -> tuple[Mask, tuple[Bound, ...]]:
    """Canonical (mask, bounds): a bound on one dim becomes part of the mask, a bound that holds (or fails) across
    the whole masked box is dropped (or empties the mask), the rest are sorted."""
    if not bounds:
        return mask, ()
    box = list(mask) if mask is not None else [(0, n) for n in shape]
    kept: set[Bound] = set()
    for coeffs, lo, hi in bounds:
        coeffs = tuple(0 if n == 1 else c for c, n in zip(coeffs, shape))  # a size-1 dim's index is always 0
        used = [d for d, c in enumerate(coeffs) if c]
        if len(used) == 1:
            a, b = _single_dim_range(coeffs[used[0]], lo, hi)
            m_lo, m_hi = box[used[0]]
            first = max(a, m_lo)
            box[used[0]] = (first, max(min(b, m_hi), first))  # the intersection (empty: lo == hi)
            continue
        least = sum(c * (m_lo if c > 0 else m_hi - 1) for c, (m_lo, m_hi) in zip(coeffs, box) if c)
        most = sum(c * (m_hi - 1 if c > 0 else m_lo) for c, (m_lo, m_hi) in zip(coeffs, box) if c)
        if most < lo or least >= hi:
            box = [(0, 0) for _ in shape]
        elif least < lo or most >= hi:
            kept.add((coeffs, lo, hi))
    mask = _normalize_mask(shape, tuple(box))
    if mask is not None and any(lo >= hi for lo, hi in mask):
        return mask, ()
    return mask, tuple(sorted(kept))


@dataclass(frozen=True)
class View:
    """A strided, optionally masked window over a flat buffer."""

    shape: Shape
    strides: Strides
    offset: int = 0
    mask: Mask = None
    bounds: tuple[Bound, ...] = ()

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def contiguous(shape: Shape) -> View:
        """The row-major layout of `shape` (cached: Views are immutable and this is asked for often)."""
        return View(tuple(shape), contiguous_strides(tuple(shape)))

    @staticmethod
    def make(shape: Shape, strides: Strides, offset: int = 0, mask: Mask = None, bounds: tuple[Bound, ...] = ()) \
            -> View:
        """Build a View in canonical form (size-1 dims stride 0, trivial masks and bounds dropped)."""
        shape = tuple(shape)
        strides = tuple(0 if n == 1 else s for n, s in zip(shape, strides))
        mask, bounds = _normalize_bounds(shape, _normalize_mask(shape, mask), bounds)
        return View(shape, strides, offset, mask, bounds)

    @property
    def masked(self) -> bool:
        """Whether some index reads as zero (a mask or a bound)."""
        return self.mask is not None or bool(self.bounds)

    def masked_along(self, d: int) -> bool:
        """Whether an index is read or zero can change along dim d."""
        return (self.mask is not None and self.mask[d] != (0, self.shape[d])) or \
            any(coeffs[d] for coeffs, _, _ in self.bounds)

    @property
    def is_contiguous(self) -> bool:
        return self.offset == 0 and not self.masked and self.strides == contiguous_strides(self.shape)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def is_empty_mask(self) -> bool:
        return self.mask is not None and any(lo >= hi for lo, hi in self.mask)

    def _full_mask(self) -> tuple[tuple[int, int], ...]:
        return self.mask if self.mask is not None else tuple((0, n) for n in self.shape)

    # ---- the movement ops -------------------------------------------------------------------
    def permute(self, order: tuple[int, ...]) -> View:
        mask = tuple(self.mask[i] for i in order) if self.mask is not None else None
        bounds = tuple((tuple(c[i] for i in order), lo, hi) for c, lo, hi in self.bounds)
        return View.make(tuple(self.shape[i] for i in order), tuple(self.strides[i] for i in order),
                         self.offset, mask, bounds)

    def expand(self, shape: Shape) -> View:
        mask = None
        if self.mask is not None:
            mask = tuple(m if old == new else ((0, new) if m[0] < m[1] else (0, 0))
                         for m, old, new in zip(self.mask, self.shape, shape))
        strides = tuple(s if old == new else 0 for s, old, new in zip(self.strides, self.shape, shape))
        return View.make(shape, strides, self.offset, mask, self.bounds)  # expanded dims had size 1: coefficient 0

    def _substituted(self, scale: tuple[int, ...], shift: tuple[int, ...]) -> tuple[Bound, ...]:
        """The bounds in terms of new indices j, where the old index is i = shift + scale * j on each dim."""
        return tuple((tuple(c * k for c, k in zip(coeffs, scale)), lo - sum(c * b for c, b in zip(coeffs, shift)),
                      hi - sum(c * b for c, b in zip(coeffs, shift))) for coeffs, lo, hi in self.bounds)

    def pad(self, padding: tuple[tuple[int, int], ...]) -> View:
        shape = tuple(n + b + a for n, (b, a) in zip(self.shape, padding))
        mask = tuple((lo + b, hi + b) for (lo, hi), (b, _) in zip(self._full_mask(), padding))
        offset = self.offset - sum(b * s for (b, _), s in zip(padding, self.strides))
        bounds = self._substituted((1,) * len(shape), tuple(-b for b, _ in padding))
        return View.make(shape, self.strides, offset, mask, bounds)

    def shrink(self, bounds: tuple[tuple[int, int, int], ...]) -> View:
        """Keep `range(lo, hi, step)` of each dim (step >= 1)."""
        shape = tuple(max(0, -(-(hi - lo) // st)) for lo, hi, st in bounds)
        offset = self.offset + sum(lo * s for (lo, _, _), s in zip(bounds, self.strides))
        strides = tuple(s * st for s, (_, _, st) in zip(self.strides, bounds))
        mask = None
        if self.mask is not None:  # the kept indices i with lo + i*step in [mlo, mhi)
            mask = tuple((max(0, -(-(mlo - lo) // st)), max(0, min(n, -(-(mhi - lo) // st))))
                         for (mlo, mhi), (lo, _, st), n in zip(self.mask, bounds, shape))
        sums = self._substituted(tuple(st for _, _, st in bounds), tuple(lo for lo, _, _ in bounds))
        return View.make(shape, strides, offset, mask, sums)

    def flip(self, axes: tuple[int, ...]) -> View:
        offset = self.offset + sum((self.shape[a] - 1) * self.strides[a] for a in axes if self.shape[a] > 0)
        strides = tuple(-s if i in axes else s for i, s in enumerate(self.strides))
        mask = None
        if self.mask is not None:
            mask = tuple((n - hi, n - lo) if i in axes else (lo, hi)
                         for i, ((lo, hi), n) in enumerate(zip(self.mask, self.shape)))
        scale = tuple(-1 if i in axes else 1 for i in range(len(self.shape)))
        shift = tuple(n - 1 if i in axes else 0 for i, n in enumerate(self.shape))
        return View.make(self.shape, strides, offset, mask, self._substituted(scale, shift))

    def window(self, arg: tuple[tuple[int, int, int], ...]) -> View:
        """Sliding windows over the last len(arg) dims, each (kernel, stride, dilation).

        Shape (..., n) becomes (..., out, kernel) with out = (n - dilation*(kernel-1) - 1) // stride + 1:
        element [..., o, k] is the input's [..., o*stride + k*dilation]. Windows overlap, so the
        strides do too; a mask (padding) on a windowed dim becomes a bound on o*stride + k*dilation.
        """
        k = len(arg)
        lead, dims = self.shape[:-k], self.shape[-k:]
        outs = tuple((n - d * (kk - 1) - 1) // s + 1 for n, (kk, s, d) in zip(dims, arg))
        base = self.strides[-k:]
        strides = self.strides[:-k] + tuple(st * s for st, (_, s, _) in zip(base, arg)) + \
            tuple(st * d for st, (_, _, d) in zip(base, arg))
        shape = lead + outs + tuple(kk for kk, _, _ in arg)
        mask = self._full_mask()
        bounds = [(c[:-k] + tuple(ci * s for ci, (_, s, _) in zip(c[-k:], arg)) +
                   tuple(ci * d for ci, (_, _, d) in zip(c[-k:], arg)), lo, hi) for c, lo, hi in self.bounds]
        for j, ((lo, hi), n, (_, s, d)) in enumerate(zip(mask[-k:], dims, arg)):
            if (lo, hi) != (0, n):  # the padding of windowed dim j
                coeffs = [0] * len(shape)
                coeffs[len(lead) + j], coeffs[len(lead) + k + j] = s, d
                bounds.append((tuple(coeffs), lo, hi))
        new_mask = mask[:-k] + tuple((0, n) for n in shape[len(lead):])
        return View.make(shape, strides, self.offset, new_mask if self.mask is not None else None, tuple(bounds))

    def reshape(self, shape: Shape) -> Optional[View]:
        """The same elements in a new shape, or None when no single View can express it."""
        shape = tuple(shape)
        if shape == self.shape:
            return self
        if self.is_contiguous or 0 in shape:
            return View.contiguous(shape)
        if self.is_empty_mask:  # all padding: 0-d has no dim to carry an empty mask, so it takes a copy
            return View.make(shape, contiguous_strides(shape), 0, tuple((0, 0) for _ in shape)) if shape else None
        old_dims = [d for d, n in enumerate(self.shape) if n != 1]
        old = [(self.shape[d], self.strides[d], self._full_mask()[d]) for d in old_dims]
        new_dims = [i for i, n in enumerate(shape) if n != 1]
        strides, mask = [0] * len(shape), [(0, n) for n in shape]
        coeffs = [[0] * len(shape) for _ in self.bounds]  # the bounds' coefficients on the new dims
        i = 0
        j = 0
        while i < len(old):  # walk groups of old dims and new dims whose sizes multiply to the same
            gi, gj, po, pn = [i], [new_dims[j]], old[i][0], shape[new_dims[j]]
            while po != pn:
                if po < pn:
                    i += 1
                    gi.append(i)
                    po *= old[i][0]
                else:
                    j += 1
                    gj.append(new_dims[j])
                    pn *= shape[new_dims[j]]
            group = _reshape_group([old[k] for k in gi], [shape[k] for k in gj])
            if group is None:
                return None
            for k, (s, m) in zip(gj, group):
                strides[k], mask[k] = s, m
            if not self._split_bounds([old_dims[k] for k in gi], gj, shape, coeffs):
                return None
            i, j = i + 1, j + 1
        bounds = tuple((tuple(c), lo, hi) for c, (_, lo, hi) in zip(coeffs, self.bounds))
        return View.make(shape, tuple(strides), self.offset, tuple(mask), bounds)

    def _split_bounds(self, old: list[int], new: list[int], shape: Shape, coeffs: list[list[int]]) -> bool:
        """The bounds' coefficients on new dims `new`, which old dims `old` became, into `coeffs`; False when a bound
        runs along a dim merged with others (its index is then a quotient, no sum of dims)."""
        for (c, _, _), out in zip(self.bounds, coeffs):
            if not any(c[d] for d in old):
                continue
            if len(old) > 1:
                return False
            inner = math.prod(shape[k] for k in new)
            for k in new:  # old index i = sum(new index * the sizes inside it)
                inner //= shape[k]
                out[k] = c[old[0]] * inner
        return True


def _reshape_group(old: list[tuple[int, int, tuple[int, int]]],
                   new: list[int]) -> Optional[list[tuple[int, tuple[int, int]]]]:
    """Merge the old dims into one, split it into the new sizes: (stride, mask) per new dim, or None."""
    for (_, s, _), (n2, s2, _) in itertools.pairwise(old):
        if s != s2 * n2:
            return None
    lo, hi = _merged_range(old)
    if lo is None:
        return None
    stride = old[-1][1]
    out: list[tuple[int, tuple[int, int]]] = []
    inner = math.prod(new)
    for n in new:
        inner //= n
        out_lo, out_hi = _split_range(lo, hi, n, inner)
        if out_lo is None:
            return None
        out.append((stride * inner, (out_lo, out_hi)))
        lo, hi = (lo - out_lo * inner, hi - out_lo * inner) if out_hi - out_lo == 1 else (0, inner)
    return out


def _merged_range(old: list[tuple[int, int, tuple[int, int]]]) -> tuple[Optional[int], int]:
    """The valid indices of the merged dim as one range, if the masked box is one linear range."""
    lo = hi = 0
    for k, (_, _, (mlo, mhi)) in enumerate(old):
        inner = math.prod(d[0] for d in old[k + 1:])
        if mhi - mlo == 1 and k < len(old) - 1:
            lo += mlo * inner
            continue
        if any(m != (0, d) for d, _, m in old[k + 1:]):
            return None, 0
        return lo + mlo * inner, lo + mhi * inner
    return lo, hi


def _split_range(lo: int, hi: int, n: int, inner: int) -> tuple[Optional[int], int]:
    """Range of the outer index (size n, each step `inner` elements) covering [lo, hi), if exact."""
    if lo % inner == 0 and hi % inner == 0:
        return lo // inner, hi // inner
    if lo // inner == (hi - 1) // inner:
        return lo // inner, lo // inner + 1
    return None, 0


def broadcast_shape(op: str, *shapes: Shape) -> Shape:
    """The shape `shapes` broadcast to (NumPy's rules); `op` names the operation in the error."""
    ndim = max(len(s) for s in shapes)
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in shapes]
    out = []
    for d, sizes in enumerate(zip(*padded)):
        big = {n for n in sizes if n != 1}
        if len(big) > 1:
            raise RuntimeError(f"{op}: shapes {' and '.join(str(tuple(s)) for s in shapes)} cannot be broadcast: "
                               f"dim {d - ndim} is {' vs '.join(map(str, sizes))}. Each dim must match or be 1; "
                               "reshape or unsqueeze an operand.")
        out.append(big.pop() if big else 1)
    return tuple(out)
