"""Indexing with torch's semantics: `x[...]` and `x[...] = v`.

Basic indices (ints, slices with any step, None, Ellipsis) become views: no kernel. Integer-tensor
indices (and lists, and boolean masks, which become integer indices) select through GATHER, the primitive
that reads a buffer at positions computed from data (so they fuse with what computes the positions, run on
every device and have gradients); tensors spread over several devices select through a one-hot mask instead.
Assignment writes through the selection: the value is scattered by a one-hot selection's backward pass and
merged with `where`.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from . import autograd as F
from . import capture
from . import dtype as dt
from .autograd import GRAD_MODE, no_grad
from .multi import shards_of
from .ops import Op
from .uop import Node, lazy
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
        if isinstance(it, (list, tuple, np.ndarray, tensor)):  # a tuple inside the index is a sequence, as in torch
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
    """Advanced indexing of y's `dims` by integer tensors (broadcast together): one GATHER over those dims flattened
    into one (a one-hot pick where GATHER does not apply)."""
    batch = broadcast_shape("index", *(i.shape for i in indices))
    sizes = [y.shape[d] for d in dims]
    rest = [d for d in range(y.ndim) if d not in dims]
    moved = y.permute(*rest, *dims)  # (rest..., n1..nm)
    lead = len(rest)
    positions: list[Tensor] = []
    for k, (idx, n) in enumerate(zip(indices, sizes)):
        check_range("index", idx, n, negative=True, dim=dims[k])
        pos = idx.cast(dt.int64)
        positions.append((pos < 0).if_else(pos + n, pos))  # negative indices count from the end
    flat = positions[0]
    for pos, n in zip(positions[1:], sizes[1:]):
        flat = flat * n + pos  # the position in the indexed dims flattened, row-major
    kept = moved.shape[:lead]
    table = moved.reshape(*kept, *(1,) * len(batch), math.prod(sizes)).expand(*kept, *batch, math.prod(sizes))
    at = flat._broadcast_to(batch).reshape(*(1,) * lead, *batch, 1).expand(*kept, *batch, 1)
    taken = take_along(table, lead + len(batch), at)
    out = taken.reshape(*kept, *batch) if taken is not None else _pick_positions(moved, positions, batch, sizes)
    adjacent = dims == list(range(dims[0], dims[0] + len(dims)))
    first = dims[0] if adjacent else 0  # torch: adjacent tensor indices keep their place, else go first
    order = list(range(lead, lead + len(batch)))
    perm = list(range(first)) + order + list(range(first, lead))
    return out.permute(*perm)


def _pick_positions(moved: Tensor, positions: list[Tensor], batch: tuple[int, ...], sizes: list[int]) -> Tensor:
    """_select's result through a one-hot mask over the indexed dims (tensors spread over several devices)."""
    tensor = moved.tensor_class
    lead = moved.ndim - len(sizes)
    expanded = moved.reshape(*moved.shape[:lead], *(1,) * len(batch), *sizes)
    weight: Tensor | None = None
    for k, (pos, n) in enumerate(zip(positions, sizes)):
        onehot = pos.reshape(*(1,) * (len(batch) - pos.ndim), *pos.shape, *(1,) * k, 1, *(1,) * (len(sizes) - k - 1))
        onehot = onehot == tensor.arange(n, device=moved.device).reshape(*(1,) * (len(batch) + k), n,
                                                                         *(1,) * (len(sizes) - k - 1))
        weight = onehot if weight is None else weight.logical_and(onehot)
    assert weight is not None
    out = pick(weight, expanded, tuple(range(lead + len(batch), lead + len(batch) + len(sizes))))
    return out.reshape(*moved.shape[:lead], *batch)


def pick(mask: Tensor, values: Tensor, axes: tuple[int, ...]) -> Tensor:
    """The value at the one position along `axes` where `mask` holds (mask and values broadcast together; the
    axes are kept, as size 1): exactly, -0.0, inf and NaN included. Not a sum over a select (0.0 + -0.0 is 0.0)
    and not a product with a one-hot (inf * 0 is NaN): a maximum over a select, whose gradient goes to the
    picked position only."""
    shape = broadcast_shape("pick", mask.shape, values.shape)
    if any(shape[a] == 0 for a in axes):  # nothing to pick from (then there is nothing to pick for, either)
        return values._broadcast_to(shape)._reduce_sum_keep(axes)  # zeros, still linked to values for backward()
    full_mask = mask._broadcast_to(shape)
    if values.dtype == dt.bool_:
        return full_mask.logical_and(values._broadcast_to(shape)).any(axes, keepdim=True)
    return values._broadcast_to(shape)._apply(Pick, mask=full_mask.node, axes=axes)


class Pick(F.Function):
    """`pick` as one rule: forward a maximum over the selected values, backward the gradient at the mask."""

    def __init__(self, *tensors: Tensor):
        super().__init__(*tensors)
        self.tensor = tensors[0].tensor_class

    def forward(self, values: Node, mask: Node, axes: tuple[int, ...]) -> Node:
        self.mask = self.tensor(mask)
        v = self.tensor(values)
        lowest = -math.inf if v.dtype.is_float else int(np.iinfo(v.dtype.np).min)
        with no_grad():
            return self.mask.if_else(v, lowest).amax(axes, keepdim=True).node

    def backward(self, grad: Node) -> F.Grads:
        with no_grad():
            return (self.mask.if_else(self.tensor(grad), 0).node,)


def take_along(table: Tensor, dim: int, positions: Tensor) -> Optional[Tensor]:
    """table's entries at `positions` along `dim`: out[..., i, ...] = table[..., positions[..., i, ...], ...], where
    positions is an integer tensor of table's shape outside `dim` whose entries the caller has checked to lie in
    [0, table.shape[dim]). One GATHER: each value is read once, exactly (NaN, inf and -0.0 stay in their rows), in
    time and memory of the output, not of the table. None where GATHER does not apply (tensors spread over several
    devices, empty selections): the caller then picks through a one-hot mask."""
    if not isinstance(table.node, Node) or not isinstance(positions.node, Node) or positions.numel() == 0 \
            or table.shape[dim] == 0:
        return None
    if positions.device != table.device:
        positions = positions.to(table.device)
    return table._apply(Gather, positions=positions.node, dim=dim)


class Gather(F.Function):
    """The GATHER primitive: forward one read per output, backward the gradient summed into each position it was
    read from (a contraction with the one-hot of the positions: BLAS on the numpy device)."""

    def __init__(self, *tensors: Tensor):
        super().__init__(*tensors)
        self.tensor = tensors[0].tensor_class

    def forward(self, table: Node, positions: Node, dim: int) -> Node:
        self.positions, self.dim, self.size = positions, dim, table.shape[dim]
        return lazy(Op.GATHER, (table, positions), dim, table.dtype, positions.shape, table.device)

    def backward(self, grad: Node) -> F.Grads:
        tensor, d = self.tensor, self.dim
        with no_grad():
            g = tensor(grad).unsqueeze(d + 1)  # (..., n, 1, ...)
            classes = tensor.arange(self.size, device=g.device).reshape(*(1,) * (d + 1), self.size,
                                                                         *(1,) * (g.ndim - d - 2))
            onehot = (tensor(self.positions).unsqueeze(d + 1) == classes).cast(g.dtype)  # (..., n, size, ...)
            return ((onehot * g).sum(d).node,)  # a NaN or inf in one gradient reaches every class (0 * inf)


def _advanced(index: Any) -> bool:
    """Whether an index selects through tensors (and so may name one position several times)."""
    return any(isinstance(i, (list, tuple, np.ndarray)) or hasattr(i, "node") for i in
               (index if isinstance(index, tuple) else (index,)))


def _repeats(covered: Tensor) -> bool:
    """Whether some position is written more than once (read on the host, as the indices were)."""
    with capture.checked_read():
        return bool(covered.max().item() > 1)


def _last_writes(x: Tensor, index: Any, shape: tuple[int, ...]) -> Tensor:
    """For a selection that names some positions of x several times: True at the last element of the selected
    region (in row-major order) that names each position, as torch's CPU index_put writes them."""
    tensor = x.tensor_class
    numbered = tensor(np.arange(x.numel(), dtype=np.int32 if x.numel() < 2**31 else np.int64).reshape(x.shape),
                      device=x.device)
    with no_grad(), capture.checked_read():
        positions = getitem(numbered, index).expand(*shape).numpy().reshape(-1)
    last = np.zeros(positions.size, bool)
    _, first_of_reversed = np.unique(positions[::-1], return_index=True)
    last[positions.size - 1 - first_of_reversed] = True
    return tensor(last.reshape(shape), device=x.device)


def setitem(x: Tensor, index: Any, value: Any) -> None:
    """x[index] = value: the selection's backward scatters the value; `where` merges it into x."""
    tensor = x.tensor_class  # Tensor itself (this module sits below tensor.py)
    if x.requires_grad and x._ctx is None and GRAD_MODE.enabled:
        raise RuntimeError("a leaf tensor that requires grad cannot be assigned to in place; assign under no_grad() "
                           "or to a detached copy")
    v = value if isinstance(value, tensor) else tensor.full((), value, x.dtype, x.device)
    assign(x, written(x, lambda t: getitem(t, index), v, index if _advanced(index) else None))


def written(x: Tensor, view: Callable[[Tensor], Tensor], value: Tensor, index: Any = None) -> Tensor:
    """x with `value` (broadcast to the view's shape) written where view(x) reads. The view's backward pass over a
    probe finds those positions and carries the values there; for an advanced `index`, of the writes that name one
    position the last wins. Gradients flow to x where nothing was written and to the value through the view."""
    tensor = x.tensor_class
    probe_dtype = x.dtype if x.dtype.is_float else dt.float32  # float32: every device has it
    prev = GRAD_MODE.enabled
    GRAD_MODE.enabled = True
    try:
        probe = tensor.zeros(*x.shape, dtype=probe_dtype, device=x.device, requires_grad=True)
        region = view(probe)
        region.backward(tensor.ones(*region.shape, dtype=probe_dtype, device=x.device), retain_graph=True)
        covered = probe.grad
        probe.grad = None
    finally:
        GRAD_MODE.enabled = prev
    try:
        v = value.cast(x.dtype)._broadcast_to(region.shape) if value.shape != region.shape else value.cast(x.dtype)
    except RuntimeError as e:
        raise RuntimeError(f"setitem: value of shape {value.shape} cannot be broadcast to the selected region "
                           f"{region.shape}") from e
    assert covered is not None
    if index is not None and covered.numel() and _repeats(covered):
        v = _last_writes(x, index, region.shape).if_else(v, 0)  # positions named again: the last write wins

    def carried(values: Tensor) -> Tensor:
        """values (region-shaped, probe dtype) moved to the positions of x they are written to."""
        GRAD_MODE.enabled = True
        try:
            region.backward(values, retain_graph=True)
            assert probe.grad is not None
            out, probe.grad = probe.grad, None
            return out
        finally:
            GRAD_MODE.enabled = prev

    if x.dtype.is_float or x.dtype == dt.bool_:
        scattered = carried(v.detach().cast(probe_dtype)).cast(x.dtype)
    else:  # integers in 16-bit pieces, each exact in float32, put together again (wrapping, as integers do)
        wide = dt.int64 if x.dtype.itemsize == 8 else dt.int32
        bits = v.detach().cast(wide)
        pieces = [carried(((bits >> shift) & 0xFFFF).cast(probe_dtype)).cast(wide) << shift
                  for shift in range(0, x.dtype.itemsize * 8, 16)]
        scattered = functools.reduce(lambda a, b: a | b, pieces).cast(x.dtype)
    return _before(x)._apply(WriteThrough, v, view=view, covered=covered.node, scattered=scattered.node)


class WriteThrough(F.Function):
    """x with values written at the positions a view of x reads (found beforehand: `covered`, `scattered`). The
    gradient goes to x where nothing was written, and to the written values through the view."""

    def __init__(self, *tensors: Tensor):
        super().__init__(*tensors)
        self.tensor = tensors[0].tensor_class

    def forward(self, x: Node, value: Node, view: Callable[[Tensor], Tensor], covered: Node, scattered: Node) -> Node:
        self.view, self.untouched = view, self.tensor(covered) == 0
        with no_grad():
            return self.untouched.if_else(self.tensor(x), self.tensor(scattered)).node

    def backward(self, grad: Node) -> F.Grads:
        g = self.tensor(grad)
        with no_grad():
            gx = self.untouched.if_else(g, 0).node if self.needs_input_grad[0] else None
            gv = self.view(g).node if self.needs_input_grad[1] else None
        return gx, gv


def _before(x: Tensor) -> Tensor:
    """Another Tensor for x's current value and its place in the graph: what an in-place write reads from. (Reading
    x itself would make x its own parent once the write rebinds it, and cut its gradient.)"""
    old = x.tensor_class._of_node(x.node)
    old._ctx, old.requires_grad = x._ctx, x.requires_grad
    return old


def assign(x: Tensor, value: Tensor) -> Tensor:
    """Make `value` (computed from `_before(x)`) x's new value in place, as torch's in-place ops do: a leaf keeps
    being a leaf (a write to one that requires grad is only allowed under no_grad), anything else takes value's
    place in the graph."""
    if value.shape != x.shape:
        raise RuntimeError(f"in-place op: the result has shape {value.shape}, the tensor written to {x.shape}; an "
                           "in-place op cannot change a tensor's shape")
    if value.dtype != x.dtype:
        if value.dtype.is_float and not x.dtype.is_float:
            raise RuntimeError(f"in-place op: a {value.dtype.name} result cannot be written to a {x.dtype.name} "
                               "tensor; use the out-of-place op")
        value = value.cast(x.dtype)
    if x._view_of is not None:  # a view: the write goes into the tensor it views, and the view reads it back
        base, path, _ = x._view_of
        if path.data_only:  # through a detach(): new data for the viewed tensor, its graph untouched
            with no_grad():
                base.node = written(base.detach(), path.moves, value.detach()).node
        else:
            assign(base, written(base, path, value))
        x._refresh()
        return x
    if x._ctx is None and x.requires_grad:  # a leaf (under no_grad): new data, same leaf
        if GRAD_MODE.enabled:
            raise RuntimeError("a leaf tensor that requires grad cannot be changed in place; do it under no_grad() "
                               "or on a detached copy")
        x.node = value.node
        return x
    x.node, x._ctx, x.requires_grad = value.node, value._ctx, value.requires_grad
    return x


# ---- index_* with torch's names: functional forms of writes along one dim -----------------------------------------
def _along(op: str, x: Tensor, dim: int, index: Tensor, source: Optional[Tensor] = None) -> tuple[int, Tensor]:
    """(dim, index shaped like source along dim and expanded to it) after torch's checks."""
    d = x._dim(dim) if x.ndim else 0
    if index.ndim > 1 or index.dtype.is_float or index.dtype == dt.bool_:
        raise RuntimeError(f"{op}: index must be a 0-D or 1-D integer tensor, got {index.dtype.name} of shape "
                           f"{tuple(index.shape)}")
    index = index.reshape(-1)
    check_range(op, index, x.shape[d] if x.ndim else 1, negative=True, dim=d)
    index = (index < 0).if_else(index + (x.shape[d] if x.ndim else 1), index)
    if source is None:
        return d, index
    want = tuple(len(index) if k == d else n for k, n in enumerate(x.shape))
    if source.shape != want and not (x.ndim == 0 and source.numel() == len(index)):
        raise RuntimeError(f"{op}: source of shape {tuple(source.shape)} must be {want} (the input's shape with "
                           f"dim {d} as long as index)")
    shape = tuple(len(index) if k == d else 1 for k in range(x.ndim))
    return d, index.reshape(*shape).expand(*want)


def index_add(x: Tensor, dim: int, index: Tensor, source: Tensor, alpha: float = 1) -> Tensor:
    """x with alpha * source[..., i, ...] added at index[i] of dim (duplicates add up), as torch.index_add."""
    d, idx = _along("index_add", x, dim, index, source)
    scaled = source if alpha == 1 else source * alpha
    return x.scatter_add(d, idx, scaled.cast(x.dtype)) if x.ndim else x + scaled.sum()


def index_copy(x: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """x with source[..., i, ...] written at index[i] of dim, as torch.index_copy."""
    d, idx = _along("index_copy", x, dim, index, source)
    return x.scatter(d, idx, source.cast(x.dtype)) if x.ndim else source.reshape(()).cast(x.dtype)


def index_fill(x: Tensor, dim: int, index: Tensor, value: Any) -> Tensor:
    """x with `value` at the positions `index` of dim, as torch.index_fill."""
    d, idx = _along("index_fill", x, dim, index)
    if x.ndim == 0:
        return x if idx.numel() == 0 else x.full_like(value) if not isinstance(value, x.tensor_class) else \
            value.reshape(()).cast(x.dtype)
    n = x.shape[d]
    hit = (x.tensor_class.arange(n, device=x.device).unsqueeze(-1) == idx.unsqueeze(0)).any(-1)
    return hit.reshape(*(n if k == d else 1 for k in range(x.ndim))).if_else(value, x)


def index_put(x: Tensor, indices: Any, values: Any, accumulate: bool = False) -> Tensor:
    """A copy of x with x[indices] = values, or += with `accumulate` (repeated indices then add up), as
    torch.index_put. `indices` is a tuple of integer (or bool) tensors for the leading dims."""
    tensor = x.tensor_class
    parts: list[Tensor] = []
    for i in indices:
        i = i if isinstance(i, tensor) else tensor(i, device=x.device)
        parts.extend(i.nonzero(as_tuple=True) if i.dtype == dt.bool_ else (i,))
    if not accumulate:
        out = x.clone()
        setitem(out, tuple(parts), values)
        return out
    if len(parts) > x.ndim:
        raise IndexError(f"index_put: {len(parts)} index tensors for a tensor of shape {x.shape}")
    lead, rest = x.shape[:len(parts)], x.shape[len(parts):]
    linear: Optional[Tensor] = None
    for k, (p, n) in enumerate(zip(parts, lead)):
        check_range("index_put", p, n, negative=True, dim=k)
        p = (p < 0).if_else(p + n, p).cast(dt.int64)
        linear = p if linear is None else linear * n + p
    if linear is None:
        return x + values
    flat = linear.reshape(-1)
    v = values if isinstance(values, tensor) else tensor.full((), values, x.dtype, x.device)
    v = v.cast(x.dtype).expand(*linear.shape, *rest).reshape(flat.shape[0], *rest)
    return index_add(x.reshape(-1, *rest), 0, flat, v).reshape(*x.shape)


def masked_scatter(x: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """x with the positions where mask (broadcast to x) holds filled by source's elements in order, as
    torch.masked_scatter."""
    if mask.dtype != dt.bool_:
        raise RuntimeError(f"masked_scatter: mask must be a bool tensor, got {mask.dtype.name}")
    shape = broadcast_shape("masked_scatter", x.shape, mask.shape)
    if shape != x.shape:
        raise RuntimeError(f"masked_scatter: mask of shape {mask.shape} must broadcast to the input's {x.shape}")
    m = mask.expand(*shape).reshape(-1)
    needed = int(m.sum().item())
    if needed > source.numel():
        raise RuntimeError(f"masked_scatter: the mask selects {needed} elements but source has {source.numel()}")
    if needed == 0:
        return x
    position = (m.cast(dt.int64).cumsum(0) - 1).clamp(0, source.numel() - 1)
    taken = source.reshape(-1)[position].cast(x.dtype)
    return m.if_else(taken, x.reshape(-1)).reshape(*shape)
