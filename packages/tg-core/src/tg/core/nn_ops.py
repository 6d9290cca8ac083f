"""Matrix products, convolutions and pooling, as contractions over views.

These are functions written as methods: `Tensor` binds each one (its first argument is the tensor).
This module sits below tensor.py and does not import it at runtime: new tensors come from
`self.tensor_class` (Tensor itself, also for subclasses such as tg.nn.Parameter).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from . import autograd as F
from . import dtype as dt
from . import functional as fn
from .autograd import GRAD_MODE
from .indexing import pick
from .uop import Node

if TYPE_CHECKING:
    from .tensor import Tensor


def _spatial(self: Tensor, op: str, nd: int, value: Union[int, Sequence[int]], name: str = "",
             least: int = 0) -> tuple[int, ...]:
    """An int or nd ints as nd ints, each at least `least` (strides, dilations and kernels are positive)."""
    out = (value,) * nd if isinstance(value, int) else tuple(value)
    if len(out) != nd:
        raise RuntimeError(f"{op}: expected {nd} values{' for ' + name if name else ''}, got {value!r}")
    if any(v < least for v in out):
        raise RuntimeError(f"{op}: {name or 'every value'} must be at least {least}, got {value!r}")
    return out


def _conv(self: Tensor, op: str, nd: int, weight: Tensor, bias: Optional[Tensor], stride: Any, padding: Any,
          dilation: Any, groups: int) -> Tensor:
    x = self.unsqueeze(0) if self.ndim == nd + 1 else self
    if x.ndim != nd + 2 or weight.ndim != nd + 2:
        raise RuntimeError(f"{op}: expected input of {nd + 1} or {nd + 2} dims and weight of {nd + 2} dims, got "
                           f"input {self.shape} and weight {weight.shape}")
    c = x.shape[1]
    o, cg, ks = weight.shape[0], weight.shape[1], weight.shape[2:]
    if c != cg * groups or o % groups:
        raise RuntimeError(f"{op}: input {self.shape} with groups={groups} has {c} channels, weight "
                           f"{weight.shape} expects {cg * groups} (and out channels divisible by groups)")
    st, dil = self._spatial(op, nd, stride, "stride", 1), self._spatial(op, nd, dilation, "dilation", 1)
    if groups < 1:
        raise RuntimeError(f"{op}: groups must be positive, got {groups}")
    if any(k < 1 for k in ks):
        raise RuntimeError(f"{op}: the kernel {tuple(ks)} (weight {weight.shape}) has an empty spatial dim")
    if isinstance(padding, str):
        if padding == "valid":
            pads = [(0, 0)] * nd
        elif padding == "same":
            if any(s != 1 for s in st):
                raise RuntimeError(f"{op}: padding='same' is not supported for strided convolutions")
            totals = [d * (k - 1) for d, k in zip(dil, ks)]
            pads = [(t // 2, t - t // 2) for t in totals]
        else:
            raise RuntimeError(f"{op}: padding must be 'valid', 'same', an int or a tuple, got {padding!r}")
    else:
        pads = [(p, p) for p in self._spatial(op, nd, padding, "padding")]
    for size, k, d, (lo, hi) in zip(x.shape[2:], ks, dil, pads):
        if size + lo + hi < d * (k - 1) + 1:
            raise RuntimeError(f"{op}: kernel {tuple(ks)} (dilation {dil}) is larger than the padded input "
                               f"{tuple(n + a + b for n, (a, b) in zip(x.shape[2:], pads))}")
    weight = weight.cast(x.dtype) if weight.dtype != x.dtype else weight
    recording = (x.requires_grad or weight.requires_grad) and GRAD_MODE.enabled
    if nd == 2 and recording:
        # one autograd rule for the whole convolution: its input gradient is a transposed convolution
        # (one contraction), not the windows' gradient scattered back offset by offset
        out = x._apply(fn.Conv2d, weight, stride=st, pads=tuple(pads), dilation=dil, groups=groups)
    elif recording or not isinstance(x.node, Node) or not isinstance(weight.node, Node):
        out = fn.conv_tensors(x, weight, st, tuple(pads), dil, groups)  # (sharded tensors: the Tensor ops align them)
    else:  # the graph from nodes directly (a tenth of the Python cost)
        out = x._of_node(fn.conv_graph(x.node, weight.node, st, tuple(pads), dil, groups))
    if bias is not None:
        out = out + bias.reshape(1, o, *(1,) * nd)
    return out if self.ndim == nd + 2 else out.squeeze(0)


def conv1d(self: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """1-D convolution (torch.nn.functional.conv1d): input (N, C, L), weight (O, C/groups, K)."""
    return self._conv("conv1d", 1, weight, bias, stride, padding, dilation, groups)


def conv2d(self: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D convolution (torch.nn.functional.conv2d): input (N, C, H, W), weight (O, C/groups, KH, KW).

    A sum over a sliding-window view of the input: no im2col copy is made for the compiled devices.
    """
    return self._conv("conv2d", 2, weight, bias, stride, padding, dilation, groups)


def conv3d(self: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """3-D convolution (torch.nn.functional.conv3d): input (N, C, D, H, W), weight (O, C/groups, KD, KH, KW)."""
    return self._conv("conv3d", 3, weight, bias, stride, padding, dilation, groups)


def _pool_windows(self: Tensor, op: str, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool,
                  fill: float) -> tuple[Tensor, list[tuple[int, int]]]:
    """Padded sliding windows over the last two dims, and the (before, after) padding used."""
    if self.ndim not in (3, 4):
        raise RuntimeError(f"{op}: expected a 3-D or 4-D input, got shape {self.shape}")
    ks = self._spatial(op, 2, kernel_size, "kernel_size", 1)
    st = self._spatial(op, 2, stride if stride is not None and stride != [] else ks, "stride", 1)
    pd, dil = self._spatial(op, 2, padding, "padding"), self._spatial(op, 2, dilation, "dilation", 1)
    if any(p > k // 2 for p, k in zip(pd, ks)):
        raise RuntimeError(f"{op}: padding {pd} should be at most half of kernel size {ks}")
    pads = []
    for n, k, s, p, d in zip(self.shape[-2:], ks, st, pd, dil):
        span = n + 2 * p - d * (k - 1) - 1
        out = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (out - 1) * s >= n + p:  # the last window must start inside input or left padding
            out -= 1
        pads.append((p, (out - 1) * s + d * (k - 1) + 1 - n - p))
    padded = self._pad_dims([(0, 0)] * (self.ndim - 2) + pads)
    if fill != 0 and any(before or after for before, after in pads):  # no padding: nothing to fill
        inside = self.ones_like(dt.bool_)._pad_dims([(0, 0)] * (self.ndim - 2) + pads)
        padded = inside.if_else(padded, fill)
    return padded._windows(ks, st, dil), pads


def _windows(self: Tensor, ks: Sequence[int], st: Sequence[int], dil: Sequence[int]) -> Tensor:
    """Sliding windows over the last len(ks) dims: (..., *outs, *ks). Windows that tile the input
    exactly (stride == kernel, no dilation) are a reshape and a permute, so their gradient is a view too."""
    nd = len(ks)
    spatial = self.shape[-nd:]
    if all(s == k and d == 1 and n % k == 0 for n, k, s, d in zip(spatial, ks, st, dil)):
        lead = self.shape[:-nd]
        split = self.reshape(*lead, *(v for n, k in zip(spatial, ks) for v in (n // k, k)))
        b = len(lead)
        return split.permute(*range(b), *(b + 2 * i for i in range(nd)), *(b + 2 * i + 1 for i in range(nd)))
    return self._apply(F.Window, arg=tuple(zip(ks, st, dil)))


def max_pool2d(self: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """2-D max pooling (torch.nn.functional.max_pool2d), padding with -inf; with `return_indices`, also the
    flat (H*W) index of each maximum."""
    if return_indices:
        return fn.max_pool2d_with_indices(self, kernel_size, stride, padding, dilation, ceil_mode)
    fill = -math.inf if self.dtype.is_float else int(np.iinfo(self.dtype.np).min)
    win, _ = self._pool_windows("max_pool2d", kernel_size, stride, padding, dilation, ceil_mode, fill)
    if not win.requires_grad:
        return win.amax((-2, -1))
    # torch gives a window's gradient to its first maximum (a NaN counts as one), not shared among equal ones
    plain = win.detach()
    hit = plain == plain.amax((-2, -1), keepdim=True)
    if plain.dtype.is_float:
        hit = hit.logical_or(plain.isnan())
    kh, kw = win.shape[-2:]
    slots = self.tensor_class.arange(kh * kw, device=self.device).reshape(kh, kw)
    first = slots == hit.if_else(slots, kh * kw).amin((-2, -1), keepdim=True)
    return pick(first, win, (win.ndim - 2, win.ndim - 1)).squeeze(-1).squeeze(-1)


@dt.computed_in_float32  # halves: summed in float32 and rounded once, and still float16 out (as torch)
def avg_pool2d(self: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: Optional[int] = None) -> Tensor:
    """2-D average pooling (torch.nn.functional.avg_pool2d)."""
    x = self._float()
    win, pads = x._pool_windows("avg_pool2d", kernel_size, stride, padding, 1, ceil_mode, 0.0)
    total = win.sum((-2, -1))
    if divisor_override is not None:
        return total / divisor_override
    # how many positions each window covers: the input, plus the explicit padding if it counts
    ks = self._spatial("avg_pool2d", 2, kernel_size)
    st = self._spatial("avg_pool2d", 2, stride if stride is not None and stride != [] else ks)
    pd = self._spatial("avg_pool2d", 2, padding)
    if count_include_pad:
        ones = self.tensor_class.ones(*(n + 2 * p for n, p in zip(self.shape[-2:], pd)), device=self.device)
        extra = [(0, after - p) for (_, after), p in zip(pads, pd)]
    else:
        ones, extra = self.tensor_class.ones(*self.shape[-2:], device=self.device), pads
    counts = ones._pad_dims(extra)._apply(F.Window, arg=tuple(zip(ks, st, (1, 1)))).sum((-2, -1))
    return total / counts


def matmul(self: Tensor, other: Tensor) -> Tensor:
    """Matrix product with torch's broadcasting and 1-D rules. Runs as one reduce-of-product kernel."""
    if self.ndim == 0 or other.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need to be at least 1D, got shapes {self.shape} and "
                           f"{other.shape}")
    x = self.unsqueeze(0) if self.ndim == 1 else self
    w = other.unsqueeze(-1) if other.ndim == 1 else other
    if x.shape[-1] != w.shape[-2]:
        raise RuntimeError(f"matmul: shapes {self.shape} and {other.shape} cannot be multiplied "
                           f"({x.shape[-1]} != {w.shape[-2]}); the last dim of the first must equal the "
                           "second-to-last dim of the second")
    dtype = dt.promote(x.dtype, w.dtype)
    if dtype == dt.float16:  # multiplied and summed in float32 (fn.contract), rounded once
        out = x.cast(dt.float32).matmul(w.cast(dt.float32)).cast(dt.float16)
    elif isinstance(x.node, Node) and isinstance(w.node, Node):
        out = x.cast(dtype)._apply(fn.MatMul, w.cast(dtype))  # one rule: the gradients are products too
    else:  # sharded tensors: the Tensor ops align the shards
        x = x.cast(dtype).reshape(x.shape[:-1] + (1, x.shape[-1]))
        w = w.cast(dtype).transpose(-1, -2)
        out = fn.contract(x, w.reshape(w.shape[:-2] + (1,) + w.shape[-2:]), (-1,))
    if self.ndim == 1:
        out = out.squeeze(-2)
    return out.squeeze(-1) if other.ndim == 1 else out


dot = matmul


def linear(self: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """x @ weight.T + bias, as torch.nn.functional.linear."""
    # the transpose as a plain rule: weight.T would make an aliasing view, tracked for in-place writes nobody does here
    wt = weight._apply(F.Permute, order=(1, 0)) if weight.ndim == 2 else weight.T
    out = self.matmul(wt)
    return out + bias if bias is not None else out
