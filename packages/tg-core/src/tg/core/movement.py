"""Movement: views that cost no kernel (reshape, permute, expand, pad, shrink, flip, windows), joining and
splitting.

These are functions written as methods: `Tensor` binds each one (its first argument is the tensor).
This module sits below tensor.py and does not import it at runtime: new tensors come from
`self.tensor_class` (Tensor itself, also for subclasses such as tg.nn.Parameter).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional, Union

from . import autograd as F
from . import dtype as dt
from . import indexing
from .creation import shape_arg
from .dtype import Scalar

if TYPE_CHECKING:
    from .tensor import Tensor


def reshape(self: Tensor, *shape: Any) -> Tensor:
    """The same elements in a new shape; one dim may be -1. Costs no kernel where a view suffices."""
    new = list(shape_arg(shape))
    if new.count(-1) > 1:
        raise RuntimeError(f"reshape: only one dimension can be inferred, got shape {tuple(new)}")
    if -1 in new:
        known = math.prod(n for n in new if n != -1)
        if known == 0 or self.numel() % known:
            raise RuntimeError(f"reshape: shape {tuple(new)} is invalid for input of size {self.numel()}")
        new[new.index(-1)] = self.numel() // known
    if any(n < 0 for n in new) or math.prod(new) != self.numel():
        raise RuntimeError(f"reshape: shape {tuple(new)} is invalid for input of shape {self.shape} "
                           f"({self.numel()} elements)")
    return self._apply(F.Reshape, shape=tuple(new)) if tuple(new) != self.shape else self


view = reshape


def permute(self: Tensor, *dims: Any) -> Tensor:
    order = tuple(self._dim(d) for d in shape_arg(dims)) if dims else ()
    if sorted(order) != list(range(self.ndim)):
        raise RuntimeError(f"permute: dims {tuple(shape_arg(dims))} are not a permutation of the "
                           f"{self.ndim} dims of shape {self.shape}")
    return self._apply(F.Permute, order=order)


def transpose(self: Tensor, dim0: int = -2, dim1: int = -1) -> Tensor:
    order = list(range(self.ndim))
    a, b = self._dim(dim0), self._dim(dim1)
    order[a], order[b] = order[b], order[a]
    return self.permute(*order)


def expand(self: Tensor, *shape: Any) -> Tensor:
    """Repeat size-1 dims to `shape` without copying (-1 keeps a dim)."""
    new = shape_arg(shape)
    if len(new) < self.ndim:
        raise RuntimeError(f"expand: the number of sizes provided ({len(new)}) must be greater or equal to "
                           f"the number of dimensions in the tensor ({self.ndim})")
    old = (1,) * (len(new) - self.ndim) + self.shape
    target = tuple(o if n == -1 else n for o, n in zip(old, new))
    for o, n in zip(old, target):
        if o != n and o != 1:
            raise RuntimeError(f"expand: the expanded size of the tensor ({n}) must match the existing size "
                               f"({o}) at a non-singleton dimension; shape {self.shape} -> {tuple(new)}")
    return self._broadcast_to(target)


def expand_as(self: Tensor, other: Tensor) -> Tensor:
    return self.expand(other.shape)


def _pad_dims(self: Tensor, padding: Sequence[tuple[int, int]]) -> Tensor:
    """Zero padding, (before, after) per dim; negative amounts crop."""
    padding = tuple((int(b), int(a)) for b, a in padding)
    crop = tuple((max(0, -b), n - max(0, -a), 1) for (b, a), n in zip(padding, self.shape))
    x = self.shrink(crop) if any(b < 0 or a < 0 for b, a in padding) else self
    grow = tuple((max(0, b), max(0, a)) for b, a in padding)
    return x._apply(F.Pad, padding=grow) if any(b or a for b, a in grow) else x


def pad(self: Tensor, padding: Sequence[int], mode: str = "constant", value: Scalar = 0) -> Tensor:
    """Pad with torch.nn.functional.pad's order: (left, right) of the last dim, then the dim before..."""
    if len(padding) % 2 or len(padding) // 2 > self.ndim:
        raise RuntimeError(f"pad: padding {tuple(padding)} must have an even length of at most "
                           f"2 * ndim = {2 * self.ndim}")
    pairs = [(0, 0)] * self.ndim
    for i in range(len(padding) // 2):
        pairs[self.ndim - 1 - i] = (padding[2 * i], padding[2 * i + 1])
    if mode != "constant":
        return self._pad_mode(pairs, mode)
    out = self._pad_dims(pairs)
    if value == 0:
        return out
    inside = self.ones_like(dt.bool_)._pad_dims(pairs)
    return inside.if_else(out, value)


def _pad_mode(self: Tensor, pairs: list[tuple[int, int]], mode: str) -> Tensor:
    """reflect, replicate and circular padding, built from slices, flips and cat. Negative amounts crop as torch
    does: after reflect and replicate (they reflect or repeat the whole input), before circular (it wraps the
    cropped input)."""
    crops = [(min(b, 0), min(a, 0)) for b, a in pairs]
    x = self._pad_dims(crops) if mode == "circular" else self
    for d, (before, after) in enumerate((max(b, 0), max(a, 0)) for b, a in pairs):
        n = x.shape[d]
        if not before and not after:
            continue
        if mode == "reflect":
            if before >= n or after >= n:
                raise RuntimeError(f"pad: reflect padding ({before}, {after}) must be smaller than the dim "
                                   f"size {n}")
            left, right = x.narrow(d, 1, before).flip(d), x.narrow(d, n - 1 - after, after).flip(d)
        elif mode == "replicate":
            shape = list(x.shape)
            left = x.narrow(d, 0, 1).expand(*shape[:d], before, *shape[d + 1:])
            right = x.narrow(d, n - 1, 1).expand(*shape[:d], after, *shape[d + 1:])
        elif mode == "circular":
            if before > n or after > n:
                raise RuntimeError(f"pad: circular padding ({before}, {after}) can be at most the dim size {n}")
            left, right = x.narrow(d, n - before, before), x.narrow(d, 0, after)
        else:
            raise NotImplementedError(f"pad: mode {mode!r} is not supported; use constant, reflect, replicate "
                                      "or circular")
        x = left.cat(x, right, dim=d)
    return x if mode == "circular" else x._pad_dims(crops)


def shrink(self: Tensor, bounds: Sequence[Optional[tuple[int, ...]]]) -> Tensor:
    """Keep `range(lo, hi[, step])` of each dim (None keeps a dim whole); a view, no kernel."""
    full = tuple((0, n, 1) if b is None else (int(b[0]), int(b[1]), int(b[2]) if len(b) > 2 else 1)
                 for b, n in zip(bounds, self.shape))
    for (lo, hi, st), n in zip(full, self.shape):
        if not (0 <= lo <= hi <= n) or st < 1:
            raise RuntimeError(f"shrink: bounds {full} do not fit shape {self.shape}")
    return self._apply(F.Shrink, bounds=full)


def flip(self: Tensor, *dims: Any) -> Tensor:
    """Reverse the order of elements along dims."""
    named = [self._dim(d) for d in shape_arg(dims)]
    if len(set(named)) != len(named):
        raise RuntimeError(f"flip: dims {tuple(shape_arg(dims))} name a dim more than once (tensor of shape "
                           f"{self.shape}); list each dim once")
    axes = tuple(sorted(named))
    return self._apply(F.Flip, axes=axes) if axes and self.ndim else self  # a 0-d tensor flips to itself


def squeeze(self: Tensor, dim: Optional[Union[int, Sequence[int]]] = None) -> Tensor:
    axes = self._axes(dim) if dim is not None else tuple(range(self.ndim))
    return self.reshape(tuple(n for i, n in enumerate(self.shape) if not (i in axes and n == 1)))


def unsqueeze(self: Tensor, dim: int) -> Tensor:
    d = self._dim(dim, self.ndim + 1)
    return self.reshape(self.shape[:d] + (1,) + self.shape[d:])


def flatten(self: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if self.ndim == 0:
        return self.reshape(1)
    s, e = self._dim(start_dim), self._dim(end_dim)
    return self.reshape(self.shape[:s] + (math.prod(self.shape[s:e + 1]),) + self.shape[e + 1:])


def getitem(self: Tensor, index: Any) -> Tensor:
    """Indexing like torch: ints, slices (any step), None, Ellipsis (views, no kernel), and integer
    tensors, lists and boolean masks (a fused one-hot selection)."""
    return indexing.getitem(self, index)


def setitem(self: Tensor, index: Any, value: Any) -> None:
    """x[index] = value, for any index that x[index] accepts."""
    indexing.setitem(self, index, value)


def _reduce_sum_keep(self: Tensor, axes: tuple[int, ...]) -> Tensor:
    """Sum over axes keeping them as size 1, with no dtype promotion (for internal compositions)."""
    return self._apply(F.Sum, axes=axes) if axes else self


def repeat(self: Tensor, *repeats: Any) -> Tensor:
    """Tile the tensor `repeats` times along each dim (torch.Tensor.repeat)."""
    reps = shape_arg(repeats)
    if len(reps) < self.ndim:
        raise RuntimeError(f"repeat: number of repeat dims ({len(reps)}) can not be smaller than the number of "
                           f"dims of the tensor ({self.ndim})")
    x = self.reshape((1,) * (len(reps) - self.ndim) + self.shape)
    expanded = x.reshape(*(v for n in x.shape for v in (1, n))).expand(*(v for r, n in zip(reps, x.shape)
                                                                         for v in (r, n)))
    return expanded.reshape(*(r * n for r, n in zip(reps, x.shape)))


def roll(self: Tensor, shifts: Union[int, Sequence[int]], dims: Optional[Union[int, Sequence[int]]] = None) -> Tensor:
    """Rotate elements along dims (the flattened tensor when dims is None)."""
    sh = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    if dims is None:
        if len(sh) != 1:
            raise RuntimeError(f"roll: {len(sh)} shifts {sh} need as many dims (without dims there is one shift, of "
                               "the flattened tensor)")
        return self.flatten().roll(sh[0], 0).reshape(self.shape)
    ds = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(sh) != len(ds):
        raise RuntimeError(f"roll: shifts {sh} and dims {ds} must have the same length (one shift per dim)")
    x = self
    for s_, d in zip(sh, ds):
        d = x._dim(d)
        n = x.shape[d]
        if n == 0 or s_ % n == 0:
            continue
        k = s_ % n
        a = x.narrow(d, n - k, k)
        b = x.narrow(d, 0, n - k)
        x = a.cat(b, dim=d)
    return x


def narrow(self: Tensor, dim: int, start: int, length: int) -> Tensor:
    """`length` elements of `dim` from `start` (a view)."""
    d = self._dim(dim)
    start = start % self.shape[d] if start < 0 else start
    if start + length > self.shape[d] or length < 0:
        raise RuntimeError(f"narrow: start ({start}) + length ({length}) exceeds dimension size "
                           f"({self.shape[d]})")
    return self.shrink(tuple((start, start + length) if i == d else None for i in range(self.ndim)))


def unflatten(self: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    d = self._dim(dim)
    return self.reshape(*self.shape[:d], *sizes, *self.shape[d + 1:])


def movedim(self: Tensor, source: Union[int, Sequence[int]], destination: Union[int, Sequence[int]]) -> Tensor:
    """Dims moved from `source` to `destination` (one dim or sequences of equal length), the rest in order."""
    src = [self._dim(d) for d in ((source,) if isinstance(source, int) else source)]
    dst = [self._dim(d) for d in ((destination,) if isinstance(destination, int) else destination)]
    if len(src) != len(dst) or len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise RuntimeError(f"movedim: source {source} and destination {destination} must be distinct dims, as many "
                           "of each")
    rest = iter(i for i in range(self.ndim) if i not in src)
    placed = dict(zip(dst, src))
    return self.permute(*(placed[i] if i in placed else next(rest) for i in range(self.ndim)))


def unfold(self: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """All windows of `size` along `dimension`, `step` apart, as a new last dim (torch.Tensor.unfold)."""
    d = self._dim(dimension)
    if size > self.shape[d] or size < 0 or step < 1:
        raise RuntimeError(f"unfold: size {size} and step {step} do not fit dimension {d} of size {self.shape[d]}")
    order = [i for i in range(self.ndim) if i != d] + [d]
    win = self.permute(*order)._apply(F.Window, arg=((size, step, 1),))  # (..., n_windows, size)
    back = list(range(self.ndim - 1))
    back.insert(d, self.ndim - 1)
    return win.permute(*back, self.ndim)


def cat(self: Tensor, *others: Tensor, dim: int = 0) -> Tensor:
    """Concatenate along `dim` (torch.cat([self, *others], dim)). One fused kernel of padded views."""
    tensors = [self, *others]
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise RuntimeError(f"cat: zero-dimensional tensor (at position {i}) cannot be concatenated; use "
                               "stack, or reshape it to (1,)")
    d = self._dim(dim)
    for t in tensors[1:]:
        if t.ndim != self.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, self.shape)) if i != d):
            raise RuntimeError(f"cat: shapes {self.shape} and {t.shape} differ outside dim {d}; every tensor "
                               "must have the same shape except in the concatenated dim")
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = dt.promote(dtype, t.dtype)
    # each position takes its part's value by a select, not by adding the other parts' zero padding, which
    # would turn -0.0 into +0.0
    total, offset, out = sum(t.shape[d] for t in tensors), 0, None
    for t in tensors:
        pads = [(0, 0)] * self.ndim
        pads[d] = (offset, total - offset - t.shape[d])
        part = t.cast(dtype)._pad_dims(pads)
        if out is None:
            out = part
        else:
            inside = self.tensor_class.ones(t.shape, dtype=dt.bool_, device=self.device)._pad_dims(pads)
            out = inside.if_else(part, out)
        offset += t.shape[d]
    assert out is not None
    return out


def stack(self: Tensor, *others: Tensor, dim: int = 0) -> Tensor:
    """Join along a new dim (torch.stack([self, *others], dim))."""
    d = self._dim(dim, self.ndim + 1)
    return self.unsqueeze(d).cat(*(t.unsqueeze(d) for t in others), dim=d)


def split(self: Tensor, split_size_or_sections: Union[int, Sequence[int]], dim: int = 0) -> list[Tensor]:
    """Pieces of `split_size` along `dim` (the last may be smaller), or of the listed sizes."""
    d = self._dim(dim)
    n = self.shape[d]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise RuntimeError(f"split: split_size must be positive, got {split_size_or_sections}")
        sizes = [min(split_size_or_sections, n - i) for i in range(0, n, split_size_or_sections)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise RuntimeError(f"split: sizes {sizes} do not add up to {n}, the size of dim {d}")
    out, start = [], 0
    for size in sizes:
        out.append(self.shrink(tuple((start, start + size) if i == d else None for i in range(self.ndim))))
        start += size
    return out


def chunk(self: Tensor, chunks: int, dim: int = 0) -> list[Tensor]:
    """`chunks` nearly equal pieces along `dim` (fewer if the dim is small), like torch.chunk."""
    n = self.shape[self._dim(dim)]
    return self.split(max(1, -(-n // chunks)), dim)


def index_select(self: Tensor, dim: int, index: Tensor) -> Tensor:
    """The entries of `dim` at the positions of a 1-D integer `index`, in its order (repeats allowed)."""
    d = self._dim(dim)
    if index.ndim > 1 or index.dtype.is_float or index.dtype == dt.bool_:
        raise RuntimeError(f"index_select: index must be a 0-D or 1-D integer tensor, got {index.dtype.name} "
                           f"of shape {tuple(index.shape)}")
    return self[(slice(None),) * d + (index.reshape(-1),)]


def take_along_dim(self: Tensor, indices: Tensor, dim: int) -> Tensor:
    """gather along `dim` with self and indices broadcast against each other outside `dim`."""
    d = self._dim(dim)
    if indices.ndim != self.ndim:
        raise RuntimeError(f"take_along_dim: indices of shape {tuple(indices.shape)} need the input's "
                           f"{self.ndim} dims")
    lead = [max(a, b) for i, (a, b) in enumerate(zip(self.shape, indices.shape)) if i != d]
    shape_x, shape_i = list(lead), list(lead)
    shape_x.insert(d, self.shape[d])
    shape_i.insert(d, indices.shape[d])
    return self.expand(*shape_x).gather(d, indices.expand(*shape_i))


def rot90(self: Tensor, k: int = 1, dims: Sequence[int] = (0, 1)) -> Tensor:
    """Rotate by 90 degrees k times in the plane of `dims`, from the first dim toward the second."""
    if len(dims) != 2 or self._dim(dims[0]) == self._dim(dims[1]):
        raise RuntimeError(f"rot90: dims must be two different dims, got {tuple(dims)}")
    a, b = self._dim(dims[0]), self._dim(dims[1])
    k %= 4
    if k == 1:
        return self.flip(b).transpose(a, b)
    if k == 2:
        return self.flip(a, b)
    return self.transpose(a, b).flip(b) if k == 3 else self


def pixel_shuffle(self: Tensor, upscale_factor: int) -> Tensor:
    """(..., C * r * r, H, W) -> (..., C, H * r, W * r): sub-pixel convolution's rearrangement."""
    r = upscale_factor
    if self.ndim < 3 or self.shape[-3] % (r * r):
        raise RuntimeError(f"pixel_shuffle: channels of shape {tuple(self.shape)} must be a multiple of "
                           f"upscale_factor^2 = {r * r}")
    *lead, c, h, w = self.shape
    n = len(lead)
    x = self.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(self: Tensor, downscale_factor: int) -> Tensor:
    """The inverse of pixel_shuffle: (..., C, H * r, W * r) -> (..., C * r * r, H, W)."""
    r = downscale_factor
    if self.ndim < 3 or self.shape[-2] % r or self.shape[-1] % r:
        raise RuntimeError(f"pixel_unshuffle: height and width of shape {tuple(self.shape)} must be multiples of "
                           f"downscale_factor = {r}")
    *lead, c, h, w = self.shape
    n = len(lead)
    x = self.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)


def diff(self: Tensor, n: int = 1, dim: int = -1) -> Tensor:
    """The n-th forward difference along `dim` (x[i + 1] - x[i], n times; bools compare with !=)."""
    d = self._dim(dim)
    out = self
    for _ in range(n):
        m = out.shape[d]
        if m == 0:
            break
        hi, lo = out.narrow(d, 1, m - 1), out.narrow(d, 0, m - 1)
        out = (hi != lo) if out.dtype == dt.bool_ else hi - lo
    return out


# ---- more of torch's names for views and pieces -----------------------------------------------------------------
def broadcast_to(self: Tensor, *shape: Any) -> Tensor:
    """The tensor broadcast to `shape` (a view; -1 keeps a dim), as torch.broadcast_to."""
    return self.expand(*shape)


def tile(self: Tensor, *dims: Any) -> Tensor:
    """Repeat along each dim (torch.tile): fewer `dims` than the tensor has are padded with 1s in front."""
    reps = shape_arg(dims)
    return self.repeat(*((1,) * (self.ndim - len(reps)) + tuple(reps)))


def select(self: Tensor, dim: int, index: int) -> Tensor:
    """The slice at `index` of `dim`, which is removed (a view)."""
    d = self._dim(dim)
    n = self.shape[d]
    if not -n <= index < n:
        raise IndexError(f"select: index {index} is out of range for dim {d} of size {n} (shape {self.shape})")
    return self.narrow(d, index % n, 1).squeeze(d)


def unbind(self: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """Every slice along `dim`, with the dim removed (torch.unbind)."""
    d = self._dim(dim)
    return tuple(select(self, d, i) for i in range(self.shape[d]))


def tensor_split(self: Tensor, indices_or_sections: Union[int, Sequence[int]], dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces along `dim` (torch.tensor_split): `n` sections (the first `size % n` one longer), or cut before
    each listed index."""
    d = self._dim(dim)
    size = self.shape[d]
    if isinstance(indices_or_sections, int):
        n = indices_or_sections
        if n <= 0:
            raise RuntimeError(f"tensor_split: the number of sections must be positive, got {n}")
        cuts = [i * (size // n) + min(i, size % n) for i in range(1, n)]
    else:
        cuts = list(indices_or_sections)
    bounds = [0, *(min(max(c + size if c < 0 else c, 0), size) for c in cuts), size]
    return tuple(self.narrow(d, lo, max(hi - lo, 0)) for lo, hi in itertools.pairwise(bounds))


def _split_dim(op: str, x: Tensor, sections: Union[int, Sequence[int]], dim: int, min_ndim: int) -> tuple[Tensor, ...]:
    if x.ndim < min_ndim:
        raise RuntimeError(f"{op}: needs a tensor of at least {min_ndim} dims, got shape {x.shape}")
    if isinstance(sections, int) and x.shape[dim] % sections:
        raise RuntimeError(f"{op}: dim {dim} of size {x.shape[dim]} does not split into {sections} equal parts")
    return tensor_split(x, sections, dim)


def hsplit(self: Tensor, sections: Union[int, Sequence[int]]) -> tuple[Tensor, ...]:
    return _split_dim("hsplit", self, sections, 1 if self.ndim > 1 else 0, 1)


def vsplit(self: Tensor, sections: Union[int, Sequence[int]]) -> tuple[Tensor, ...]:
    return _split_dim("vsplit", self, sections, 0, 2)


def dsplit(self: Tensor, sections: Union[int, Sequence[int]]) -> tuple[Tensor, ...]:
    return _split_dim("dsplit", self, sections, 2, 3)


def fliplr(self: Tensor) -> Tensor:
    if self.ndim < 2:
        raise RuntimeError(f"fliplr: needs at least 2 dims, got shape {self.shape}")
    return self.flip(1)


def flipud(self: Tensor) -> Tensor:
    if self.ndim < 1:
        raise RuntimeError("flipud: needs at least 1 dim, got a 0-d tensor")
    return self.flip(0)


def ravel(self: Tensor) -> Tensor:
    return self.reshape(-1)


def take(self: Tensor, index: Tensor) -> Tensor:
    """The elements of the flattened tensor at `index` (any shape; negative counts from the end), as torch.take."""
    return self.reshape(-1)[index]


def diag_embed(self: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices whose diagonal `offset` (above the main one; below when negative) holds the last dim, placed at
    output dims dim1 and dim2 (torch.diag_embed)."""
    if self.ndim == 0:
        raise RuntimeError("diag_embed: expected a tensor of at least 1 dim, got a 0-d tensor")
    x = self
    n = x.shape[-1] + abs(offset)
    nd = x.ndim + 1
    d1, d2 = dim1 % nd, dim2 % nd
    if d1 == d2:
        raise RuntimeError(f"diag_embed: dim1 and dim2 must differ, got {dim1} and {dim2}")
    rows = self.tensor_class.arange(n, device=self.device).reshape(n, 1)
    on_diagonal = (rows.reshape(1, n) - rows) == offset  # (n, n): column - row == offset
    padded = x.pad((0, abs(offset)))  # (..., n): element p sits in row p (offset >= 0) or column p (offset < 0)
    out = on_diagonal.if_else(padded.unsqueeze(-1) if offset >= 0 else padded.unsqueeze(-2), 0).cast(x.dtype)
    rest = iter(range(nd - 2))
    return out.permute(*(nd - 2 if i == d1 else nd - 1 if i == d2 else next(rest) for i in range(nd)))


def diagflat(self: Tensor, offset: int = 0) -> Tensor:
    """The flattened tensor as diagonal `offset` of a square matrix (torch.diagflat)."""
    return self.reshape(-1).diag(offset)


def reshape_as(self: Tensor, other: Tensor) -> Tensor:
    return self.reshape(other.shape)


def split_with_sizes(self: Tensor, split_sizes: Sequence[int], dim: int = 0) -> list[Tensor]:
    """Pieces of the listed sizes along `dim` (torch's name for split with a list)."""
    return split(self, list(split_sizes), dim)


def narrow_copy(self: Tensor, dim: int, start: int, length: int) -> Tensor:
    """narrow() with its own buffer instead of a view."""
    return narrow(self, dim, start, length).contiguous()


def sum_to_size(self: Tensor, *size: Any) -> Tensor:
    """Summed down to `size`, which must broadcast to this shape: the gradient of a broadcast (torch's)."""
    target = shape_arg(size)
    lead = self.ndim - len(target)
    if lead < 0 or any(t not in (1, n) for t, n in zip(target, self.shape[lead:])):
        raise RuntimeError(f"sum_to_size: size {tuple(target)} is not expandable to the tensor's shape {self.shape}")
    axes = [*range(lead), *(lead + i for i, (t, n) in enumerate(zip(target, self.shape[lead:])) if t == 1 and n != 1)]
    return self.sum(axes, keepdim=True).reshape(target) if axes else self


def slice_scatter(self: Tensor, src: Tensor, dim: int = 0, start: Optional[int] = None, end: Optional[int] = None,
                  step: int = 1) -> Tensor:
    """A copy of self with self[..., start:end:step, ...] (along `dim`) replaced by src; both get gradients."""
    d = self._dim(dim)
    n = self.shape[d]
    first, stop, step = slice(start, end, step).indices(n)
    count = len(range(first, stop, step))
    expected = self.shape[:d] + (count,) + self.shape[d + 1:]
    if tuple(src.shape) != expected:
        raise RuntimeError(f"slice_scatter: src has shape {tuple(src.shape)}, the slice {expected}")

    def placed(t: Tensor) -> Tensor:  # t's entries at first, first + step, ... of a dim of size n, zeros elsewhere
        spread = t.unsqueeze(d + 1)._pad_dims([(0, step - 1) if i == d + 1 else (0, 0) for i in range(t.ndim + 1)])
        spread = spread.reshape(*t.shape[:d], count * step, *t.shape[d + 1:])
        rest = n - first - count * step  # negative: the last gap runs past the end
        return spread._pad_dims([(first, rest) if i == d else (0, 0) for i in range(t.ndim)])

    mask = placed(src.ones_like().cast(dt.bool_)) if count else self.zeros_like().cast(dt.bool_)
    return mask.if_else(placed(src.cast(self.dtype)), self) if count else self * 1


def select_scatter(self: Tensor, src: Tensor, dim: int, index: int) -> Tensor:
    """A copy of self with self.select(dim, index) replaced by src (which has that slice's shape)."""
    d = self._dim(dim)
    i = index + self.shape[d] if index < 0 else index
    if not 0 <= i < self.shape[d]:
        raise IndexError(f"select_scatter: index {index} is out of range for dim {d} of size {self.shape[d]}")
    return slice_scatter(self, src.unsqueeze(d), d, i, i + 1)
