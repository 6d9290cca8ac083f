"""ONNX gather/scatter, ordering and data-dependent selection ops.

Scatters are one-hot contractions (lazy, differentiable). Ops whose output shape depends on the data
(NonZero, Unique, Compress) or whose order does (TopK) read the values they need; the values they return
are still gathered from the lazy input, so gradients flow."""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from tg.core import Tensor, functional
from tg.core import dtype as dt
from tg.core.indexing import check_range

from .ops import Context, OnnxError, axis_index, op


def _wrap(idx: Tensor, n: int) -> Tensor:
    idx = idx.cast(dt.int64)
    return (idx < 0).if_else(idx + n, idx)


def _fill(kind: str, d: dt.DType) -> float:
    if kind == "mul":
        return 1.0
    big = math.inf if d.is_float else float(np.iinfo(d.np).max)
    return -big if kind == "max" else big


def _combine(x: Tensor, sent: Tensor, hit: Tensor, reduction: str) -> Tensor:
    """x updated at the hit positions with the reduced values sent there."""
    if reduction == "none":
        return hit.if_else(sent, x)
    if reduction == "add":
        return x + sent
    if reduction == "mul":
        return x * sent
    return x.maximum(sent) if reduction == "max" else x.minimum(sent)


def _reduce_sent(values: Tensor, onehot: Tensor, axis: int, reduction: str, d: dt.DType) -> Tensor:
    """Reduce values (broadcast against onehot's trailing class dim) over `axis` per class."""
    v = values.cast(d).unsqueeze(-1)
    if reduction in ("none", "add"):
        return onehot.if_else(v, 0).sum(axis, dtype=d)
    filled = onehot.if_else(v, _fill(reduction, d))
    if reduction == "mul":
        return filled.prod(axis).cast(d)
    return filled.amax(axis) if reduction == "max" else filled.amin(axis)


def scatter_elements(x: Tensor, axis: int, idx: Tensor, upd: Tensor, reduction: str = "none") -> Tensor:
    a = axis_index(axis, x.ndim)
    n = x.shape[a]
    check_range("ScatterElements", idx, n, negative=True, dim=a)
    onehot = _wrap(idx, n).unsqueeze(-1) == Tensor.arange(n, device=x.device)  # idx.shape + (n,)
    sent = _reduce_sent(upd, onehot, a, reduction, x.dtype).movedim(-1, a)
    hit = onehot.any(a).movedim(-1, a)
    pads = [(0, 0 if k == a else x.shape[k] - sent.shape[k]) for k in range(x.ndim)]
    return _combine(x, sent._pad_dims(pads), hit._pad_dims(pads), reduction)


@op("ScatterElements", "Scatter")
def _scatter_elements(ctx: Context, x: Tensor, idx: Tensor, upd: Tensor, axis: int = 0,
                      reduction: str = "none") -> Tensor:
    return scatter_elements(x, axis, idx, upd, reduction)


def _flat_index(op: str, idx: Tensor, dims: tuple[int, ...]) -> Tensor:
    """Row-major offset of the index tuples in idx's last dim into a block of shape `dims` (each index checked:
    an out-of-range one could otherwise land on another element)."""
    flat = idx.zeros_like().sum(-1)
    stride = 1
    for k in reversed(range(len(dims))):
        check_range(op, idx[..., k], dims[k], negative=True, dim=k)
        flat = flat + _wrap(idx[..., k], dims[k]) * stride
        stride *= dims[k]
    return flat


@op("ScatterND")
def _scatter_nd(ctx: Context, x: Tensor, idx: Tensor, upd: Tensor, reduction: str = "none") -> Tensor:
    m = idx.shape[-1]
    block, rest = x.shape[:m], x.shape[m:]
    p = math.prod(block)
    flat = _flat_index("ScatterND", idx, block).reshape(-1)  # (K,)
    values = upd.reshape(flat.shape[0], *rest)  # (K, *rest)
    onehot = flat.reshape(-1, *(1,) * len(rest), 1) == Tensor.arange(p, device=x.device)  # (K, 1.., P)
    sent = _reduce_sent(values, onehot, 0, reduction, x.dtype).movedim(-1, 0)  # (P, *rest)
    hit = onehot.any(0).movedim(-1, 0)
    return _combine(x.reshape(p, *rest), sent, hit, reduction).reshape(*x.shape)


@op("GatherND")
def _gather_nd(ctx: Context, x: Tensor, idx: Tensor, batch_dims: int = 0) -> Tensor:
    b, m = batch_dims, idx.shape[-1]
    lead, block, rest = x.shape[:b], x.shape[b:b + m], x.shape[b + m:]
    nb, p, r = math.prod(lead), math.prod(block), math.prod(rest)
    flat = _flat_index("GatherND", idx, block).reshape(nb, -1)  # (B, K)
    data = x.reshape(nb, p, r)
    picked = data.gather(1, flat.unsqueeze(-1).expand(nb, flat.shape[1], r))
    return picked.reshape(*idx.shape[:-1], *rest)


@op("TensorScatter")
def _tensor_scatter(ctx: Context, past: Tensor, update: Tensor, write_indices: Optional[Tensor] = None,
                    axis: int = -2, mode: str = "linear") -> Tensor:
    a = axis_index(axis, past.ndim)
    n, s = past.shape[a], update.shape[a]
    start = write_indices.cast(dt.int64) if write_indices is not None else \
        Tensor.zeros(past.shape[0], dtype=dt.int64, device=past.device)
    pos = start.reshape(-1, *(1,) * (past.ndim - 1)) + Tensor.arange(s, device=past.device).reshape(
        *(1,) * a, s, *(1,) * (past.ndim - a - 1))
    if mode == "circular":
        pos = pos % n
    idx = pos.expand(*update.shape)
    return scatter_elements(past, a, idx, update, "none")


@op("Compress")
def _compress(ctx: Context, x: Tensor, condition: Tensor, axis: Optional[int] = None) -> Tensor:
    keep = np.nonzero(condition.numpy().reshape(-1))[0]
    src = x.reshape(-1) if axis is None else x
    a = 0 if axis is None else axis_index(axis, x.ndim)
    return src[(slice(None),) * a + (Tensor(keep.astype(np.int64), device=x.device),)]


@op("NonZero")
def _nonzero(ctx: Context, x: Tensor) -> Tensor:
    return Tensor(np.array(np.nonzero(x.numpy()), dtype=np.int64).reshape(x.ndim, -1), device=x.device)


@op("TopK")
def _topk(ctx: Context, x: Tensor, k: Any, axis: int = -1, largest: int = 1,
          sorted: int = 1) -> tuple[Tensor, Tensor]:  # noqa: A002 - ONNX's name
    kk = int(k.numpy().reshape(-1)[0]) if isinstance(k, Tensor) else int(k)  # an attribute before opset 10
    return x.topk(kk, axis, bool(largest))


@op("Unique")
def _unique(ctx: Context, x: Tensor, axis: Optional[int] = None,
            sorted: int = 1) -> tuple[Tensor, ...]:  # noqa: A002 - ONNX's name
    data = x.numpy()
    a = None if axis is None else axis_index(axis, x.ndim)
    _, first, inverse, counts = np.unique(data if a is not None else data.reshape(-1), return_index=True,
                                          return_inverse=True, return_counts=True, axis=a)
    order = np.arange(len(first)) if sorted else np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    first, counts, inverse = first[order], counts[order], rank[inverse.reshape(-1)]
    pos = Tensor(first.astype(np.int64), device=x.device)
    values = x.reshape(-1)[pos] if a is None else x[(slice(None),) * a + (pos,)]
    ints = [Tensor(np.asarray(v, np.int64), device=x.device) for v in (first, inverse, counts)]
    return (values, *ints)


@op("ReverseSequence")
def _reverse_sequence(ctx: Context, x: Tensor, lens: Tensor, batch_axis: int = 1, time_axis: int = 0) -> Tensor:
    n_t, n_b = x.shape[time_axis], x.shape[batch_axis]
    src = np.tile(np.arange(n_t)[:, None], (1, n_b))
    for b, n in enumerate(lens.numpy().reshape(-1)):
        src[:n, b] = np.arange(n)[::-1]
    shape = [1] * x.ndim
    shape[time_axis], shape[batch_axis] = n_t, n_b
    order = src if time_axis < batch_axis else src.T
    idx = Tensor(order.reshape(shape).astype(np.int64), device=x.device).expand(*x.shape)
    return x.gather(time_axis, idx)


@op("CumProd")
def _cumprod(ctx: Context, x: Tensor, axis: Tensor, exclusive: int = 0, reverse: int = 0) -> Tensor:
    a = axis_index(int(axis.numpy().reshape(-1)[0]), x.ndim)
    y = x.flip(a) if reverse else x
    if exclusive:  # shift right by one, a one entering first
        n = y.shape[a]
        y = ((y - 1)._pad_dims([(1, 0) if k == a else (0, 0) for k in range(y.ndim)]) + 1).narrow(a, 0, n)
    out = y.cumprod(a).cast(x.dtype)
    return out.flip(a) if reverse else out


@op("CenterCropPad")
def _center_crop_pad(ctx: Context, x: Tensor, shape: Tensor, axes: Optional[list[int]] = None) -> Tensor:
    target = ctx.ints(shape) or []
    ax = [axis_index(a, x.ndim) for a in axes] if axes else list(range(x.ndim))
    pads = [(0, 0)] * x.ndim
    for a, t in zip(ax, target):
        diff = t - x.shape[a]  # pad (positive) or crop (negative), the odd one on the right
        half = diff // 2 if diff >= 0 else -((-diff) // 2)
        pads[a] = (half, diff - half)
    return x._pad_dims(pads)


@op("Col2Im")
def _col2im(ctx: Context, x: Tensor, image_shape: Tensor, block_shape: Tensor, dilations: Optional[list[int]] = None,
            pads: Optional[list[int]] = None, strides: Optional[list[int]] = None) -> Tensor:
    """Sum sliding blocks back into an image (torch's fold, over any number of spatial dims)."""
    img, blk = ctx.ints(image_shape) or [], ctx.ints(block_shape) or []
    nd = len(img)
    dil, st, p = dilations or [1] * nd, strides or [1] * nd, pads or [0] * (2 * nd)
    try:
        return functional.col2im(x, img, blk, dil, [(p[i], p[i + nd]) for i in range(nd)], st, "onnx: Col2Im")
    except RuntimeError as e:
        raise OnnxError(str(e)) from e


@op("BitShift")
def _bitshift(ctx: Context, x: Tensor, y: Tensor, direction: str = "LEFT") -> Tensor:
    bits = 8 * x.dtype.itemsize
    amount = ((y < 0) | (y >= bits)).if_else(bits, y).cast(dt.float64)  # out-of-range shifts push every bit out
    power = Tensor(2.0, dtype=dt.float64, device=x.device) ** amount
    if direction == "LEFT":  # wraps around in x's width, like the hardware shift
        shifted = (x.cast(dt.float64) * power) % float(2 ** bits)
        if x.dtype.kind != "u":
            shifted = (shifted >= 2 ** (bits - 1)).if_else(shifted - 2 ** bits, shifted)
        return shifted.cast(x.dtype)
    return x.cast(dt.float64).div(power, rounding_mode="floor").cast(x.dtype)


@op("BitCast")
def _bitcast(ctx: Context, x: Tensor, to: int) -> Tensor:
    from .ops import _dtype

    target = _dtype(to)
    if target.itemsize != x.dtype.itemsize:
        raise OnnxError(f"onnx: BitCast from {x.dtype.name} to {target.name} changes the bit width")
    return Tensor(x.numpy().copy().view(target.np), device=x.device)


@op("Det")
def _det(ctx: Context, x: Tensor) -> Tensor:
    return Tensor(np.linalg.det(x.numpy().astype(np.float64)).astype(x.dtype.np), device=x.device)


@op("Acos", "Asin", "Atan")
def _arc(ctx: Context, x: Tensor) -> Tensor:
    return getattr(x, ctx.node.op_type.lower())().cast(x.dtype)


@op("Swish")
def _swish(ctx: Context, x: Tensor, alpha: float = 1.0) -> Tensor:
    return x * (x * alpha).sigmoid()


@op("SwiGLU")
def _swiglu(ctx: Context, a: Tensor, b: Tensor, alpha: float = 1.0) -> Tensor:
    return a * (a * alpha).sigmoid() * b


@op("RotaryEmbedding")
def _rotary(ctx: Context, x: Tensor, cos: Tensor, sin: Tensor, position_ids: Optional[Tensor] = None,
            interleaved: int = 0, num_heads: int = 0, rotary_embedding_dim: int = 0) -> Tensor:
    shape = x.shape
    y = x.transpose(1, 2) if x.ndim == 4 else x.reshape(shape[0], shape[1], num_heads, -1)  # (B, S, H, D)
    d = rotary_embedding_dim or y.shape[3]
    rot, keep = y[..., :d], y[..., d:]
    if position_ids is not None:
        cos, sin = cos[position_ids.cast(dt.int64)], sin[position_ids.cast(dt.int64)]
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    if interleaved:
        x1, x2 = rot[..., 0::2], rot[..., 1::2]
    else:
        x1, x2 = rot[..., :d // 2], rot[..., d // 2:]
    real, imag = cos * x1 - sin * x2, sin * x1 + cos * x2
    rotated = real.stack(imag, dim=-1).reshape(*rot.shape) if interleaved else real.cat(imag, dim=-1)
    out = rotated.cat(keep, dim=-1) if keep.shape[-1] else rotated
    return out.transpose(1, 2) if x.ndim == 4 else out.reshape(*shape)
