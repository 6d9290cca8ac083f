"""Tensors spread over several devices of one machine: one lazy Node per device, split along one dim or replicated.

A `MultiNode` stands where a `Node` stands under a Tensor. It offers the graph-building methods the autograd rules
call (`alu`, `reduce`, `movement`, `cast`, `copy_to`, `const_like`, `contiguous`) and applies each to its shards, so
every op, and its gradient, runs per shard on the shard's device. Where an op crosses the split, the communication is
added to the lazy graph here:

- a reduce over the split dim reduces each shard, then **all-reduces** the partial results, which every device then
  holds (replicated): naive (each device reads every other's partial) for small tensors, a ring (reduce-scatter and
  all-gather of 1/n-sized chunks) for large ones (`TG_RING_ALLREDUCE_BYTES`);
- an elementwise op between a split and a replicated operand cuts the replicated one locally (no traffic);
- a movement the shards cannot express (padding or flipping the split dim, a reshape that moves it across shards)
  gathers the tensor first.

The communication is ordinary lazy graph (copies between devices, adds), so the scheduler orders and fuses it like
any other work, and its gradient comes from the same rules. Replicas are computed in one order on every device, so
they hold the same bits. Data-parallel training is then: parameters replicated (`shard_(devices)`), the batch split
along dim 0 (`shard(devices, 0)`); the loss's mean over the batch all-reduces forward, and the gradient's sum over
the batch all-reduces the weight gradients backward.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Optional, Union

from . import config
from .dtype import DType, bool_
from .ops import Op
from .uop import Node
from .uop import const as node_const
from .view import Shape

DeviceLike = Union[str, tuple[str, ...]]
Lazy = Union[Node, "MultiNode"]


def split_sizes(n: int, parts: int) -> list[int]:
    """Sizes of `parts` pieces of `n`, as equal as can be, larger ones first (numpy.array_split's rule)."""
    return [n // parts + (i < n % parts) for i in range(parts)]


class MultiNode:
    """One tensor as `shards` (a lazy Node on each device, in device order) split along `axis`, or replicated on
    every device when `axis` is None (then every shard holds the whole tensor)."""

    __slots__ = ("axis", "shape", "shards")

    def __init__(self, shards: Sequence[Node], axis: Optional[int]):
        self.shards, self.axis = tuple(shards), axis
        first = self.shards[0].shape
        self.shape: Shape = first if axis is None else \
            first[:axis] + (sum(s.shape[axis] for s in self.shards),) + first[axis + 1:]

    def __repr__(self) -> str:
        split = "replicated" if self.axis is None else f"split on dim {self.axis} as {self.sizes}"
        return f"<MultiNode {self.dtype.name}{list(self.shape)} on {self.device}, {split}>"

    # ---- what a Node offers -------------------------------------------------------------------------------
    @property
    def device(self) -> tuple[str, ...]:
        return tuple(s.device for s in self.shards)

    @property
    def dtype(self) -> DType:
        return self.shards[0].dtype

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def is_realized(self) -> bool:
        return all(s.is_realized for s in self.shards)

    @property
    def sizes(self) -> list[int]:
        """Each shard's extent along the split dim."""
        assert self.axis is not None
        return [s.shape[self.axis] for s in self.shards]

    def const_like(self, value: Any, dtype: Optional[DType] = None) -> MultiNode:
        return MultiNode([s.const_like(value, dtype) for s in self.shards], self.axis)

    def cast(self, dtype: DType) -> MultiNode:
        return MultiNode([s.cast(dtype) for s in self.shards], self.axis)

    def bitcast(self, dtype: DType) -> MultiNode:
        return MultiNode([s.bitcast(dtype) for s in self.shards], self.axis)

    def contiguous(self) -> MultiNode:
        return MultiNode([s.contiguous() for s in self.shards], self.axis)

    def alu(self, op: Op, *others: Lazy) -> MultiNode:
        operands = [self]
        for o in others:
            if not isinstance(o, MultiNode) or o.device != self.device:
                raise RuntimeError(f"{op.name}: one operand is spread over {self.device}, another is on {o.device}; "
                                   "put both on the same devices (Tensor.shard or .to)")
            operands.append(o)
        lead = next((o for o in operands if o.axis is not None), self)
        aligned = [o.aligned(lead.axis, lead.sizes if lead.axis is not None else None) for o in operands]
        return MultiNode([first.alu(op, *rest) for first, *rest in zip(*(a.shards for a in aligned))], lead.axis)

    def reduce(self, op: Op, axes: tuple[int, ...]) -> MultiNode:
        partial = [s.reduce(op, axes) if s.numel else _identity(op, s, axes) for s in self.shards]
        if self.axis is None or self.axis not in axes:
            return MultiNode(partial, self.axis)
        return MultiNode(all_reduce(op, partial), None)

    def copy_to(self, device: str) -> Node:
        """The whole tensor on one device (gathered there)."""
        return self.gathered_on(device)

    def movement(self, op: Op, arg: Any) -> MultiNode:
        if self.axis is None:
            return MultiNode([s.movement(op, arg) for s in self.shards], None)
        per_shard = self._per_shard_args(op, arg)
        if per_shard is None:  # the op crosses the split: every device gets the whole tensor first
            return self.aligned(None, None).movement(op, arg)
        args, axis = per_shard
        return MultiNode([s.movement(op, a) for s, a in zip(self.shards, args)], axis)

    # ---- layouts ----------------------------------------------------------------------------------------
    def aligned(self, axis: Optional[int], sizes: Optional[list[int]]) -> MultiNode:
        """This tensor split along `axis` into `sizes` (replicated when `axis` is None), moving data only when it
        is split some other way now."""
        if axis == self.axis and (axis is None or sizes == self.sizes):
            return self
        if self.axis is not None:  # all-gather: every device joins every shard; then cut as asked
            everywhere = MultiNode([self.gathered_on(d) for d in self.device], None)
            return everywhere.aligned(axis, sizes)
        if axis is None:
            return self
        assert sizes is not None
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        return MultiNode([_slice(s, axis, lo, lo + n) for s, lo, n in zip(self.shards, starts, sizes)], axis)

    def gathered_on(self, device: str) -> Node:
        """The whole tensor as one Node on `device` (one of the shards' devices or any other)."""
        if self.axis is None:
            mine = [s for s in self.shards if s.device == device]
            return mine[0] if mine else self.shards[0].copy_to(device)
        return concat([s if s.device == device else s.copy_to(device) for s in self.shards], self.axis)

    def _per_shard_args(self, op: Op, arg: Any) -> Optional[tuple[list[Any], Optional[int]]]:
        """The movement `op(arg)` as one argument per shard and the split dim after it, or None when the shards
        cannot do it alone."""
        axis, shape, sizes = self.axis, self.shape, self.sizes
        assert axis is not None
        n = len(self.shards)
        if op is Op.PERMUTE:
            return [arg] * n, tuple(arg).index(axis)
        if op is Op.EXPAND:
            if arg[axis] != shape[axis]:
                return None
            return [tuple(sz if d == axis else m for d, m in enumerate(arg)) for sz in sizes], axis
        if op is Op.PAD:
            return ([arg] * n, axis) if tuple(arg[axis]) == (0, 0) else None
        if op is Op.FLIP:
            return ([arg] * n, axis) if axis not in arg else None
        if op is Op.WINDOW:
            return ([arg] * n, axis) if axis < len(shape) - len(arg) else None
        if op is Op.SHRINK:
            return self._shrink_args(arg)
        if op is Op.RESHAPE:
            return self._reshape_args(tuple(arg))
        raise NotImplementedError(f"movement {op.name} on a tensor spread over devices")

    def _shrink_args(self, arg: Any) -> tuple[list[Any], int]:
        """Each shard keeps the selected positions that fall inside it (some shards may keep none)."""
        axis = self.axis
        assert axis is not None
        lo, hi, step = arg[axis]
        args, start = [], 0
        for size in self.sizes:
            first = max(lo, start)
            first += (lo - first) % step  # the first selected position at or after this shard's start
            end = min(hi, start + size)
            local = (first - start, end - start, step) if first < end else (0, 0, 1)
            args.append(tuple(local if d == axis else b for d, b in enumerate(arg)))
            start += size
        return args, axis

    def _reshape_args(self, new: Shape) -> Optional[tuple[list[Any], int]]:
        """A reshape the shards can do alone: the split dim maps onto one new dim, whose extent each shard holds in
        proportion to its share (merging the split dim with the dims after it, or splitting it into a block of
        rows each shard owns whole)."""
        axis, old, sizes = self.axis, self.shape, self.sizes
        assert axis is not None
        before, total = math.prod(old[:axis]), old[axis]
        for new_axis in range(len(new)):
            if math.prod(new[:new_axis]) != before or total == 0 or any(new[new_axis] * sz % total for sz in sizes):
                continue
            args = [new[:new_axis] + (new[new_axis] * sz // total,) + new[new_axis + 1:] for sz in sizes]
            if all(math.prod(a) == math.prod(s.shape) for a, s in zip(args, self.shards)):
                return args, new_axis
        return None


def _identity(op: Op, empty: Node, axes: tuple[int, ...]) -> Node:
    """What an empty shard contributes to a reduce: the reduction's start value (a max of nothing is no error
    when other shards hold values)."""
    from .lower import reduce_identity  # here: importing the lowering with tg.core would slow the import

    shape = tuple(1 if d in axes else n for d, n in enumerate(empty.shape))
    return node_const(reduce_identity(op, empty.dtype), empty.dtype, shape, empty.device)


def _slice(node: Node, axis: int, lo: int, hi: int) -> Node:
    return node.movement(Op.SHRINK, tuple((lo, hi, 1) if d == axis else (0, n, 1) for d, n in enumerate(node.shape)))


def concat(parts: Sequence[Node], axis: int) -> Node:
    """Nodes on one device joined along `axis`. Each position selects its part (adding zero padding would turn
    -0.0 into +0.0)."""
    total, offset, out = sum(p.shape[axis] for p in parts), 0, None
    for p in parts:
        pads = tuple((offset, total - offset - p.shape[axis]) if d == axis else (0, 0) for d in range(len(p.shape)))
        padded = p.movement(Op.PAD, pads)
        if out is None:
            out = padded
        else:
            inside = node_const(True, bool_, p.shape, p.device).movement(Op.PAD, pads)
            out = inside.alu(Op.WHERE, padded, out)
        offset += p.shape[axis]
    assert out is not None
    return out


# ---- all-reduce ---------------------------------------------------------------------------------------------
_COMBINE = {Op.SUM: Op.ADD, Op.RMAX: Op.MAX}


def all_reduce(op: Op, partials: Sequence[Node]) -> list[Node]:
    """Combine the per-device `partials` (SUM or RMAX) so that every device holds the result, bit for bit the same
    everywhere: a ring for tensors of at least TG_RING_ALLREDUCE_BYTES on more than two devices, else naive."""
    ring = len(partials) > 2 and partials[0].numel * partials[0].dtype.itemsize >= config.ring_allreduce_bytes()
    return ring_all_reduce(op, partials) if ring else naive_all_reduce(op, partials)


def naive_all_reduce(op: Op, partials: Sequence[Node]) -> list[Node]:
    """Each device reads every other device's partial and combines all of them in device order."""
    out = []
    for dev in (p.device for p in partials):
        total: Optional[Node] = None
        for p in partials:
            local = p if p.device == dev else p.copy_to(dev)
            total = local if total is None else total.alu(_COMBINE[op], local)
        assert total is not None
        out.append(total)
    return out


def ring_all_reduce(op: Op, partials: Sequence[Node]) -> list[Node]:
    """Reduce-scatter then all-gather around the ring of devices, in chunks of 1/n of the tensor: each device sends
    and receives 2(n-1)/n of the tensor, where the naive way moves n-1 tensors to each device."""
    n, shape = len(partials), partials[0].shape
    flat = [p.movement(Op.RESHAPE, (p.numel,)) for p in partials]
    sizes = split_sizes(partials[0].numel, n)
    starts = [sum(sizes[:i]) for i in range(n)]
    reduced: list[Node] = []  # chunk c, combined along the ring starting at device c + 1, ending on device c
    for c in range(n):
        chunk: Optional[Node] = None
        for step in range(1, n + 1):
            dev = (c + step) % n
            mine = _slice(flat[dev], 0, starts[c], starts[c] + sizes[c])
            chunk = mine if chunk is None else chunk.copy_to(partials[dev].device).alu(_COMBINE[op], mine)
        assert chunk is not None
        reduced.append(chunk)
    out = []
    for dev in range(n):  # all-gather: chunk c travels on from device c
        chunks = [reduced[c] if c == dev else reduced[c].copy_to(partials[dev].device) for c in range(n)]
        out.append(concat(chunks, 0).movement(Op.RESHAPE, shape))
    return out


# ---- making multi-device tensors ----------------------------------------------------------------------------
def shard(node: Lazy, devices: tuple[str, ...], axis: Optional[int], sizes: Optional[list[int]] = None) -> MultiNode:
    """`node` split along `axis` over `devices` (in `sizes`, or nearly equal pieces, larger first), or replicated
    (axis None)."""
    if isinstance(node, MultiNode):
        if node.device == devices:
            return node.aligned(axis, sizes or (split_sizes(node.shape[axis], len(devices)) if axis is not None
                                                else None))
        node = node.gathered_on(devices[0])
    if axis is None:
        return MultiNode([node if d == node.device else node.copy_to(d) for d in devices], None)
    sizes, start, shards = sizes or split_sizes(node.shape[axis], len(devices)), 0, []
    for dev, size in zip(devices, sizes):
        piece = _slice(node, axis, start, start + size)
        shards.append(piece if dev == node.device else piece.copy_to(dev))
        start += size
    return MultiNode(shards, axis)


def const(value: Any, dtype: DType, shape: Shape, device: DeviceLike) -> Lazy:
    """A constant on one device, or replicated on several (it costs no memory either way)."""
    if isinstance(device, tuple):
        return MultiNode([node_const(value, dtype, shape, d) for d in device], None)
    return node_const(value, dtype, shape, device)


def shards_of(node: Lazy) -> tuple[Node, ...]:
    """The per-device Nodes of a tensor's data (just the one for a single-device tensor)."""
    return node.shards if isinstance(node, MultiNode) else (node,)


Layout = Union[str, tuple[tuple[str, ...], Optional[int], Optional[list[int]]]]


def layout_of(node: Lazy) -> Layout:
    """Where a tensor's data lives: one device's name, or (devices, split dim, shard sizes)."""
    if isinstance(node, MultiNode):
        return node.device, node.axis, node.sizes if node.axis is not None else None
    return node.device


def relayout(node: Lazy, layout: Layout) -> Lazy:
    """`node`'s data laid out as `layout` says (what a gradient needs to match its input)."""
    if isinstance(layout, str):
        if isinstance(node, MultiNode):
            return node.gathered_on(layout)
        return node if node.device == layout else node.copy_to(layout)
    devices, axis, sizes = layout
    if isinstance(node, MultiNode) and node.device == devices:
        return node.aligned(axis, sizes)
    return shard(node, devices, axis, sizes)
