"""Indexing with torch's semantics: `x[...]` and `x[...] = v`.

Basic indices (ints, slices with any step, None, Ellipsis) become views: no kernel. Integer-tensor
indices (and lists, and boolean masks, which become integer indices) select through a one-hot
contraction, so they fuse, run on every device and have gradients. Assignment writes through the
same selection: the value is scattered by the selection's own backward pass and merged with `where`.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from . import capture
from . import dtype as dt
from .autograd import GRAD_MODE, no_grad
from .multi import shards_of
from .view import broadcast_shape

if TYPE_CHECKING:
    from .tensor import Tensor


def check_range(op: str, index: Tensor, size: int, negative: bool = False, ignore: Optional[int] = None,
                dim: Optional[int] = None) -> None:
    """Raise IndexError if an index is outside [0, size) (or [-size, size) with `negative`), naming the op, the
    first bad index and the size. The indices are read (realized) here: tg never lets a kernel use them unchecked,
    and a one-hot selection would otherwise turn them into silent zeros."""
    if index.numel() == 0:
        return

    def check(values: np.ndarray) -> None:
        bad = (values < (-size if negative else 0)) | (values >= size)
        if ignore is not None:
            bad &= values != ignore
        if bad.any():
            where = f" for dimension {dim}" if dim is not None else ""
            raise IndexError(f"{op}: index {int(values[bad].flat[0])} is out of bounds{where} with size {size}")

    with capture.checked_read():
        values = index.numpy()
    check(values)
    for node in shards_of(index.node):  # each device's part, for a tensor spread over several
        base = node.base
        if capture.capturing() and base.buffer is not None:  # a TinyJit replay checks the new indices too
            capture.record_check(base.buffer, node.view, check)


def _normalize(x: Tensor, index: Any) -> list[Any]:
    """The index as a list: lists and arrays become tensors, boolean masks become integer tensors."""
    tensor = x.tensor_class  # Tensor itself (this module sits below tensor.py)

    items = list(index) if isinstance(index, tuple) else [index]
    out: list[Any] = []
    for it in items:
        if isinstance(it, (list, np.ndarray, tensor)):
            t = it if isinstance(it, tensor) else tensor(np.asarray(it), device=x.device)
            if t.dtype == dt.bool_:  # data-dependent shape: read the mask, like torch's nonzero
                at = sum(1 for i in out if i is not None)  # the dim the mask starts at (after no Ellipsis)
                covered = tuple(x.shape[at:at + t.ndim])
                if not any(i is Ellipsis for i in out) and covered != t.shape:  # else a prefix, silently
                    raise IndexError(f"index: the boolean mask of shape {t.shape} does not match the indexed dims "
                                     f"{covered} of the tensor of shape {x.shape} (from dim {at})")
                positions = np.nonzero(t.numpy())
                out.extend(tensor(p.astype(np.int64), device=x.device) for p in positions)
                continue
            if t.dtype.is_float:
                raise IndexError(f"tensors used as indices must be integer or bool, got {t.dtype.name}")
            out.append(t)
        elif isinstance(it, bool):
            raise IndexError("indexing with a Python bool is not supported; use a boolean tensor")
        else:
            out.append(it)
    return out


def getitem(x: Tensor, index: Any) -> Tensor:
    """x[index] with torch's rules for basic and advanced (tensor) indices."""
    tensor = x.tensor_class  # Tensor itself (this module sits below tensor.py)

    items = _normalize(x, index)
    ellipses = [k for k, i in enumerate(items) if i is Ellipsis]  # by identity: == on tensors is elementwise
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    consumed = sum(1 for i in items if i is not None and i is not Ellipsis)
    if consumed > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim}")
    at = ellipses[0] if ellipses else len(items)
    items[at:at + 1] = [slice(None)] * (x.ndim - consumed)
    bounds, flips, out_shape, tensor_dims, tensors = [], [], [], [], []
    dim = 0
    for it in items:
        if it is None:
            out_shape.append(1)
            continue
        n = x.shape[dim]
        if isinstance(it, tensor):  # keep the dim whole for now; select after the views
            tensor_dims.append(len(out_shape))
            tensors.append(it)
            bounds.append((0, n, 1))
            out_shape.append(n)
        elif isinstance(it, slice):
            start, stop, step = it.indices(n)
            count = len(range(start, stop, step))
            if step < 0:
                flips.append(dim)
                start, step = n - 1 - start, -step
            bounds.append((start, start + (count - 1) * step + 1, step) if count else (0, 0, 1))
            out_shape.append(count)
        elif isinstance(it, (int, np.integer)):
            if not -n <= it < n:
                raise IndexError(f"index {it} is out of bounds for dimension {dim} with size {n}")
            bounds.append((int(it) % n, int(it) % n + 1, 1))
        else:
            raise IndexError(f"unsupported index {it!r} of type {type(it).__name__}")
        dim += 1
    y = (x.flip(*flips) if flips else x).shrink(bounds).reshape(tuple(out_shape))
    return _select(y, tensor_dims, tensors) if tensors else y


def _select(y: Tensor, dims: list[int], indices: list[Tensor]) -> Tensor:
    """Advanced indexing of y's `dims` by integer tensors (broadcast together), via a one-hot contraction."""
    tensor = y.tensor_class  # Tensor itself (this module sits below tensor.py)
    batch = broadcast_shape("index", *(i.shape for i in indices))
    sizes = [y.shape[d] for d in dims]
    rest = [d for d in range(y.ndim) if d not in dims]
    moved = y.permute(*rest, *dims)  # (rest..., n1..nm)
    lead = len(rest)
    expanded = moved.reshape(*moved.shape[:lead], *(1,) * len(batch), *sizes)
    weight: Tensor | None = None
    for k, (idx, n) in enumerate(zip(indices, sizes)):
        check_range("index", idx, n, negative=True, dim=dims[k])
        pos = idx.cast(dt.int64)
        pos = (pos < 0).if_else(pos + n, pos)  # negative indices count from the end
        onehot = pos.reshape(*(1,) * (len(batch) - idx.ndim), *idx.shape, *(1,) * k, 1, *(1,) * (len(sizes) - k - 1))
        onehot = onehot == tensor.arange(n, device=y.device).reshape(*(1,) * (len(batch) + k), n,
                                                                     *(1,) * (len(sizes) - k - 1))
        weight = onehot if weight is None else weight.logical_and(onehot)
    assert weight is not None
    # a select, not a product with the one-hot: inf * 0 would be NaN
    picked = weight.if_else(expanded, 0) if y.dtype != dt.bool_ else weight.logical_and(expanded)
    out = picked._reduce_sum_keep(tuple(range(lead + len(batch), lead + len(batch) + len(sizes))))
    out = out.reshape(*moved.shape[:lead], *batch)  # (rest..., batch...)
    adjacent = dims == list(range(dims[0], dims[0] + len(dims)))
    first = dims[0] if adjacent else 0  # torch: adjacent tensor indices keep their place, else go first
    order = list(range(lead, lead + len(batch)))
    perm = list(range(first)) + order + list(range(first, lead))
    return out.permute(*perm)


def setitem(x: Tensor, index: Any, value: Any) -> None:
    """x[index] = value: the selection's backward scatters the value; `where` merges it into x."""
    tensor = x.tensor_class  # Tensor itself (this module sits below tensor.py)
    if x.requires_grad and x._ctx is None and GRAD_MODE.enabled:
        raise RuntimeError("a leaf tensor that requires grad cannot be assigned to in place; assign under no_grad() "
                           "or to a detached copy")
    v = value if isinstance(value, tensor) else tensor.full((), value, x.dtype, x.device)
    probe_dtype = x.dtype if x.dtype.is_float else dt.float64
    prev = GRAD_MODE.enabled
    GRAD_MODE.enabled = True
    try:
        probe = tensor.zeros(*x.shape, dtype=probe_dtype, device=x.device, requires_grad=True)
        region = getitem(probe, index)
        try:
            target_shape = v._broadcast_to(region.shape).shape if v.shape != region.shape else region.shape
        except RuntimeError as e:
            raise RuntimeError(f"setitem: value of shape {v.shape} cannot be broadcast to the selected region "
                               f"{region.shape}") from e
        spread = v.detach().cast(probe_dtype)._broadcast_to(target_shape)
        region.backward(spread, retain_graph=True)
        scattered = probe.grad
        probe.grad = None
        region.backward(tensor.ones(*region.shape, dtype=probe_dtype, device=x.device))
        covered = probe.grad
    finally:
        GRAD_MODE.enabled = prev
    assert scattered is not None and covered is not None
    with no_grad() if not x.requires_grad else contextlib.nullcontext():
        merged = (covered != 0).if_else(scattered.cast(x.dtype), x)
    x.node, x._ctx, x.requires_grad = merged.node, merged._ctx, merged.requires_grad
