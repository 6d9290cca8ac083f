"""Reductions: sum, max and what is composed from them (mean, var, softmax, argmax, ...).

These are functions written as methods: `Tensor` binds each one (its first argument is the tensor).
This module sits below tensor.py and does not import it at runtime: new tensors come from
`self.tensor_class` (Tensor itself, also for subclasses such as tg.nn.Parameter).

sum, max, min are named as NumPy names them; Python's own are builtins.sum etc. here.
"""
from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional, Union

from . import autograd as F
from . import dtype as dt
from .dtype import DType
from .functional import ValuesIndices
from .ops import Op

if TYPE_CHECKING:
    from .tensor import Tensor


def _dim(self: Tensor, dim: int, ndim: Optional[int] = None) -> int:
    n = self.ndim if ndim is None else ndim
    lo, hi = (-builtins.max(n, 1), builtins.max(n, 1) - 1)
    if not lo <= dim <= hi:
        raise IndexError(f"Dimension out of range (expected to be in range of [{lo}, {hi}], but got {dim})")
    return dim % builtins.max(n, 1)


def _axes(self: Tensor, dim: Optional[Union[int, Sequence[int]]]) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(self.ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if self.ndim == 0:  # a 0-d tensor accepts dim 0 or -1 (torch), and has nothing to reduce
        for d in dims:
            self._dim(d)
        return ()
    return tuple(sorted({self._dim(d) for d in dims}))


def _reduce(self: Tensor, fn: type[F.Function], dim: Optional[Union[int, Sequence[int]]], keepdim: bool) -> Tensor:
    axes = self._axes(dim)
    if self.ndim == 0:
        return self
    if keepdim:
        return self._apply(fn, axes=axes)
    return self._apply(fn, axes=axes, shape=tuple(n for i, n in enumerate(self.shape) if i not in axes))


def sum(self: Tensor, dim: Optional[Union[int, Sequence[int]]] = None, keepdim: bool = False,
        dtype: Optional[Union[DType, str]] = None, axis: Optional[Union[int, Sequence[int]]] = None) -> Tensor:
    """Sum over `dim` (all dims when None). Bool and int tensors sum as int64, like torch."""
    dim = axis if dim is None else dim
    x = self.cast(dtype) if dtype is not None else (self.cast(dt.int64) if not self.dtype.is_float else self)
    if x.dtype == dt.float16:  # accumulate halves in float32, as torch does; the casts fuse into the kernel
        out = x.cast(dt.float32)._reduce(F.Sum, dim, keepdim).cast(dt.float16)
    else:
        out = x._reduce(F.Sum, dim, keepdim)
    if x.dtype.is_float and (x.ndim == 0 or all(x.shape[a] == 1 for a in x._axes(dim))):
        return out + 0.0  # nothing was added up, but a sum starts at 0.0: -0.0 sums to 0.0 (torch)
    return out


def mean(self: Tensor, dim: Optional[Union[int, Sequence[int]]] = None, keepdim: bool = False,
         axis: Optional[Union[int, Sequence[int]]] = None) -> Tensor:
    """Mean over `dim` (all dims when None)."""
    dim = axis if dim is None else dim
    if not self.dtype.is_float:
        raise RuntimeError(f"mean: could not infer output dtype; input dtype {self.dtype.name} must be floating "
                           "point. Cast with .float() first.")
    count = math.prod(self.shape[a] for a in self._axes(dim)) if self.ndim else 1
    if self.dtype == dt.float16:  # sum and scale in float32 (torch's accumulate type), then round once
        return (self.cast(dt.float32).sum(dim, keepdim) * (1.0 / count if count else math.nan)).cast(dt.float16)
    return self.sum(dim, keepdim) * (1.0 / count if count else math.nan)


def amax(self: Tensor, dim: Optional[Union[int, Sequence[int]]] = None, keepdim: bool = False) -> Tensor:
    """Maximum over `dim`; ties share the gradient evenly."""
    axes = self._axes(dim)
    if any(self.shape[a] == 0 for a in axes):
        raise RuntimeError(f"amax: cannot reduce over a zero-size dim of a tensor of shape {self.shape}; "
                           "the maximum of nothing is undefined")
    return self._reduce(F.ReduceMax, dim, keepdim)


def amin(self: Tensor, dim: Optional[Union[int, Sequence[int]]] = None, keepdim: bool = False) -> Tensor:
    """Minimum over `dim` (integers as ~amax(~x): no wrap at the limits)."""
    if self.dtype == dt.bool_:
        return self.logical_not().amax(dim, keepdim).logical_not()
    return -((-self).amax(dim, keepdim)) if self.dtype.is_float else ~((~self).amax(dim, keepdim))


def max(self: Tensor, dim: Optional[Union[int, Tensor]] = None, keepdim: bool = False) -> Any:
    """The maximum of all elements (a NaN wins; the gradient is shared by the positions holding it); with `dim`,
    (values, indices) like torch, the gradient going to the index returned; with a tensor, maximum."""
    if dim is not None and not isinstance(dim, int):  # a tensor: elementwise
        return self.maximum(dim)
    if dim is None:
        return _extreme_of_all(self, "max")
    _nonempty(self, dim, "max")
    return _values_at(self, dim, keepdim, self.argmax(dim, keepdim=True))


def min(self: Tensor, dim: Optional[Union[int, Tensor]] = None, keepdim: bool = False) -> Any:
    """The minimum of all elements; with `dim`, (values, indices) like torch; with a tensor, minimum (see max)."""
    if dim is not None and not isinstance(dim, int):  # a tensor: elementwise
        return self.minimum(dim)
    if dim is None:
        return _extreme_of_all(self, "min")
    _nonempty(self, dim, "min")
    return _values_at(self, dim, keepdim, self.argmin(dim, keepdim=True))


def _nonempty(x: Tensor, dim: int, op: str) -> None:
    if x.ndim and x.shape[x._dim(dim)] == 0:
        raise RuntimeError(f"{op}: cannot reduce over the zero-size dim {dim} of a tensor of shape {x.shape}; "
                           f"the {op}imum of nothing is undefined")


def _extreme_of_all(x: Tensor, which: str) -> Tensor:
    """max() or min() of every element: amax's value, and torch's gradient for it, which shares the gradient among
    the positions equal to the result, or among the NaNs when the result is NaN (amax's would be NaN everywhere)."""
    if x.numel() == 0:
        raise RuntimeError(f"{which}(): cannot reduce an empty tensor of shape {x.shape} (it has no {which}imum); "
                           "use amax/amin with a dim, or check for empty inputs")
    if not (x.requires_grad and x.dtype.is_float) or x.ndim == 0:
        return x.amax() if which == "max" else x.amin()
    flipped = x if which == "max" else -x
    out = flipped._apply(F.ReduceMax, axes=tuple(range(x.ndim)), nan_shares=True).reshape(())
    return out if which == "max" else -out


def _values_at(x: Tensor, dim: int, keepdim: bool, index: Tensor) -> ValuesIndices:
    """(the values of x at `index` along dim, index): max(dim)/min(dim)'s pair, whose gradient goes to that index
    only (torch), not shared among ties as amax's is."""
    d = x._dim(dim)
    if x.ndim == 0:
        return ValuesIndices(x, index)
    values = x.gather(d, index)
    return ValuesIndices(values, index) if keepdim else ValuesIndices(values.squeeze(d), index.squeeze(d))


def softmax(self: Tensor, dim: int = -1, dtype: Optional[Union[DType, str]] = None) -> Tensor:
    """exp(x) / sum(exp(x)) along dim, shifted by the maximum (computed in `dtype` if given, as torch)."""
    if dtype is not None:
        return self.cast(dtype).softmax(dim)
    if self.dtype == dt.float16:  # in float32, rounded once, as torch (float16 throughout was 5 ulps off)
        return self.cast(dt.float32).softmax(dim).cast(dt.float16)
    if self.numel() == 0:  # nothing to normalise (torch returns the empty tensor)
        return self._float() * 1
    e = (self - _shift(self, dim)).exp()
    return e / e.sum(dim, keepdim=True)


def log_softmax(self: Tensor, dim: int = -1, dtype: Optional[Union[DType, str]] = None) -> Tensor:
    """x - logsumexp(x) along dim (computed in `dtype` if given, as torch)."""
    if dtype is not None:
        return self.cast(dtype).log_softmax(dim)
    if self.dtype == dt.float16:
        return self.cast(dt.float32).log_softmax(dim).cast(dt.float16)
    if self.numel() == 0:
        return self._float() * 1
    shifted = self - _shift(self, dim)
    return shifted - shifted.exp().sum(dim, keepdim=True).log()


def _shift(x: Tensor, dim: Optional[Union[int, Sequence[int]]]) -> Tensor:
    """The maximum along `dim` (kept), outside the autograd graph: the shift of a stable softmax (its gradient
    cancels out, so recording it, then detaching it, only cost time)."""
    return x._of_node(x.node.reduce(Op.RMAX, x._axes(dim)))


def logsumexp(self: Tensor, dim: Optional[Union[int, Sequence[int]]] = None, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) over `dim`, shifted by the maximum; integers and bools in the default float type (torch:
    an integer shift would wrap, int32's -2**31 - 7 turning positive)."""
    if not self.dtype.is_float:
        return self._float().logsumexp(dim, keepdim)
    if any(self.shape[a] == 0 for a in self._axes(dim)):  # the log of an empty sum: -inf (torch)
        return self._float().sum(dim, keepdim=keepdim) - math.inf
    m = _shift(self, dim)
    m = m.isinf().if_else(0, m)  # all -inf (or an inf) in a slice: shift by 0, so inf - inf never makes NaN
    out = (self - m).exp().sum(dim, keepdim=True).log() + m
    return out if keepdim else out.reshape(tuple(n for i, n in enumerate(self.shape) if i not in self._axes(dim)))
