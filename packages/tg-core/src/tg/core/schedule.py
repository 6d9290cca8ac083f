"""The scheduler: the lazy graph a realize needs -> an ordered list of fused kernels.

This is the only place that decides fusion. A node gets its own buffer (it is "materialized") when
it is a realize target, when more than one node reads it, when it is a CONTIGUOUS or COPY, or when
building a kernel finds it cannot be inlined: a second reduce in one kernel, a reduce read through
a view, padding pushed into an op with f(0) != 0, or a movement path with no single View. All other
nodes are inlined into the kernel of the one node that reads them, with movement paths pushed down
to the loads.
"""
from __future__ import annotations

import itertools
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .device import Buffer, get_device
from .dtype import DType, bool_
from .kernel import AST, Kernel
from .ops import CONVERSIONS, ELEMENTWISE, PAD_SAFE, REDUCE, Op, Path, apply_movement, replay
from .uop import Node, lazy
from .view import Shape, View


@dataclass
class ScheduleItem:
    """One step of a schedule: run `kernel` (or copy, when kernel is None) to fill `out`'s buffer."""

    out: Node
    inputs: list[Node] = field(default_factory=list)
    kernel: Optional[Kernel] = None


MAX_FUSION_DEPTH = 100  # ops on one path from a kernel's store to a load


SCALARS_KEPT = 1024  # distinct hoisted constants kept on each device (the oldest are dropped first)
_scalars: OrderedDict[tuple[str, str, Any], Node] = OrderedDict()
_scalars_lock = threading.Lock()


IN_CODE = (0.0, 1.0, -1.0, 2.0, 0.5)  # float constants that stay in the code: structural, never a changing scalar
IN_CODE_INTS = (-1, 0, 1, 2)


def hoisted(n: Node, divisors: frozenset[int]) -> bool:
    """Whether a constant becomes a kernel argument: the values that change between calls (learning rates, scales,
    step counts, positions, any Python scalar), so that a new value is new data, not a new kernel. Kept in the code:
    the few structural values in IN_CODE and IN_CODE_INTS (0.0 also covers -0.0), inf, NaN, bools, and integer
    divisors (`divisors`: ids of constants that divide, for which the renderers have an exact fast path)."""
    if n.dtype.is_float:
        return math.isfinite(n.arg) and n.arg not in IN_CODE
    return n.dtype != bool_ and n.arg not in IN_CODE_INTS and id(n) not in divisors


def divisors_in(order: list[Node]) -> frozenset[int]:
    """The constants that are the right operand of an integer division or modulo in `order`."""
    return frozenset(id(m.src[1].base) for m in order if m.op in (Op.IDIV, Op.MOD) and m.src[1].base.op is Op.CONST)


def _scalar_key(n: Node) -> tuple[str, str, Any]:
    return (n.device, n.dtype.name, n.arg)


def scalar_buffer(n: Node) -> Node:
    """A realized one-element buffer holding constant n's value on its device, shared by every kernel that reads
    the same value."""
    key = _scalar_key(n)
    with _scalars_lock:
        found = _scalars.get(key)
        if found is not None:
            _scalars.move_to_end(key)
            return found
    buf = Buffer(n.device, 1, n.dtype)
    buf.copyin(np.array([n.arg], n.dtype.np))
    node = lazy(Op.BUFFER, (), None, n.dtype, (1,), n.device, buffer=buf)
    with _scalars_lock:
        _scalars[key] = node
        while len(_scalars) > SCALARS_KEPT:
            _scalars.popitem(last=False)
    return node


class _Materialize(Exception):
    """Raised while building a kernel: `node` cannot be inlined here and needs a buffer of its own."""

    def __init__(self, node: Node):
        self.node = node


def _toposort(roots: list[Node]) -> list[Node]:
    """Unrealized nodes reachable from roots (and the buffers they read), sources first: the order `postorder`
    gives, walked here without its generality (the schedule of every step walks its whole graph)."""
    order: list[Node] = []
    seen: set[int] = set()
    for root in roots:
        if id(root) in seen:
            continue
        seen.add(id(root))
        stack = [(root, iter(root.src))]
        while stack:
            node, children = stack[-1]
            for c in children:
                if id(c) not in seen:
                    seen.add(id(c))
                    stack.append((c, iter(c.src if c.op is not Op.BUFFER else ())))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def _is_compute(n: Node) -> bool:
    return n.op in ELEMENTWISE or n.op in REDUCE or n.op in (Op.CONTIGUOUS, Op.COPY, Op.GATHER)


def _root_of(target: Node) -> Optional[Node]:
    """What realizing `target` computes: its base (a view stays a view of it), or nothing if realized."""
    if target.base.op is Op.BUFFER:
        return None
    return target.base if _is_compute(target.base) else target


SPLIT_OUTPUTS, SPLIT_MIN, SPLIT_PART_MIN = 32, 1 << 17, 1 << 11  # see _split_reduces
COLUMN_OUTPUTS, COLUMN_ROWS, COLUMN_PART_MIN = 1 << 14, 1 << 10, 64  # see _split_reduces


def _split_reduces(order: list[Node], roots: list[Node], replaced: dict[int, Node]) -> None:
    """A huge reduce (SPLIT_MIN elements or more) that a device would run on too few threads becomes two kernels:
    partial results computed side by side, then one small reduce of those, which replaces the reduce node, so
    everything that reads it follows.

    - Into a few outputs (fewer than SPLIT_OUTPUTS, or than the device's `reduce_parts`): about `reduce_parts`
      partial results in all (each at least SPLIT_PART_MIN long): threads of a CPU, work-groups of a GPU (64 row
      sums of 1M floats each: 16 parts a row).
    - Down columns on devices that ask for it (`Device.column_parts`: GPUs): a reduce over a dim that is not the
      last, of COLUMN_ROWS or more rows (shorter ones, such as a bias gradient over a batch, cost less than another
      kernel) into fewer than COLUMN_OUTPUTS outputs, which one work-item per output would run on too few work-items
      (8,192 column sums of 8,192 rows: 8,192 work-items with 8,192 loads each); each part is then a strip of
      rows that neighbouring work-items read along a row.
    Part counts are powers of two that divide the reduce."""
    for n in order:
        if n.op not in REDUCE or len(n.arg) != 1:
            continue
        axis, (src,) = n.arg[0], n.src
        size, outputs, dev = src.shape[axis], math.prod(n.shape), get_device(n.device)
        column = any(d > 1 for d in src.shape[axis + 1:])
        if 0 < outputs < max(SPLIT_OUTPUTS, dev.reduce_parts):
            parts = _parts(size, min(max(dev.reduce_parts // outputs, 2), size // SPLIT_PART_MIN))
        elif column and outputs < COLUMN_OUTPUTS and size >= COLUMN_ROWS:
            parts = _parts(size, min(dev.column_parts, size // COLUMN_PART_MIN))
        else:
            continue
        if size * outputs < SPLIT_MIN or parts < 2:
            continue
        wide = src.shape[:axis] + (parts, size // parts) + src.shape[axis + 1:]
        partials = src.movement(Op.RESHAPE, wide).reduce(n.op, (axis + 1,))
        replaced[id(n)] = _with_sources(n, (partials.movement(Op.RESHAPE, wide[:axis + 1] + wide[axis + 2:]),))


def _parts(size: int, most: int) -> int:
    """The largest power of two not above `most` that divides `size` (1: none)."""
    parts = 1 << (most.bit_length() - 1) if most > 0 else 1
    while parts > 1 and size % parts:
        parts //= 2
    return parts


def _reduce_in_read_order(order: list[Node], roots: list[Node], replaced: dict[int, Node]) -> None:
    """A reduce that every reader reads through the same permutation of its dims (a weight gradient: autograd
    transposes the reduce of x.T @ grad back to the weight's (in, out) layout) computes its output in that order
    instead, so that the readers, and the buffer, see it contiguous: the optimiser step read it 784 floats apart.
    The values, and the order of each sum, stay the same."""
    root_ids = {id(r) for r in roots}
    reduces = [n for n in order if n.op in REDUCE and id(n) not in root_ids]
    if not reduces:
        return
    # the readers of those reduces and of their sources (the permute may go down to the loads)
    readers: dict[int, list[Node]] = {id(x): [] for n in reduces for x in (n, n.src[0])}
    for m in order:
        for s in m.src:
            if id(s) in readers:
                readers[id(s)].append(m)
    for n in reduces:
        if not readers[id(n)]:
            continue
        first, *rest = readers[id(n)]
        read, kept = _read_order(first, n), [d for d, m in enumerate(n.shape) if m > 1]
        if read is None or list(read) == kept or any(_read_order(m, n) != read for m in rest):
            continue
        perm = list(range(len(n.shape)))
        for d, r in zip(kept, read):
            perm[d] = r
        (src,) = n.src
        if src.op in ELEMENTWISE and len(readers[id(src)]) == 1:  # the permute goes down to the loads
            shape = tuple(src.shape[p] for p in perm)
            moved = lazy(src.op, tuple(s.movement(Op.PERMUTE, tuple(perm)) for s in src.src), src.arg, src.dtype,
                         shape, src.device)
        else:
            moved = src.movement(Op.PERMUTE, tuple(perm))
        new = lazy(n.op, (moved,), n.arg, n.dtype, tuple(n.shape[p] for p in perm), n.device)
        for m in readers[id(n)]:  # each reader: the new reduce, reshaped to the reader's shape
            replaced[id(m)] = lazy(Op.VIEW, (new,), (((Op.RESHAPE, m.shape),), View.contiguous(m.shape)), m.dtype,
                                   m.shape, m.device)


def _read_order(m: Node, n: Node) -> Optional[tuple[int, ...]]:
    """When view m shows all of reduce n's values with its dims permuted (size-1 dims aside): n's dims in the
    order m reads them. None for any other reader."""
    if m.op is not Op.VIEW or any(op not in (Op.RESHAPE, Op.PERMUTE) for op, _ in m.path):
        return None
    view = m.view
    if view.masked or view.offset:
        return None
    strides = View.contiguous(n.shape).strides
    read = []
    for size, stride in zip(view.shape, view.strides):
        if size == 1:
            continue
        dim = next((d for d, (m_, st) in enumerate(zip(n.shape, strides)) if m_ == size and st == stride), None)
        if dim is None or dim in read:
            return None
        read.append(dim)
    return tuple(read) if len(read) == sum(m_ > 1 for m_ in n.shape) else None


DOT_MIN_ROWS = 8  # a contraction is re-laid out when the operand it keeps has at least this many rows


# a window view that reads more than this many elements per element of its padded input reads a padded copy instead
# (llvm, a depthwise 3x3 conv over 8x32x56x56: stride 1, 9 reads an element, 136 us from a copy (+65 for the copy)
# against 267 through the bounds; stride 2, 2.25 reads an element, 67 + 58 against 98)
WINDOW_READS_PER_COPY = 4


def _copy_padded_windows(order: list[Node], roots: list[Node], replaced: dict[int, Node]) -> None:
    """A window over padding (a convolution's input) is read through bounds on sums of dims, which cost a few
    compares per load, instead of from a padded copy. Where it reads each element of the padded input more than
    WINDOW_READS_PER_COPY times over (a convolution with more than a few output channels, or stride 1), the copy
    costs less than the compares: the window then reads a padded copy (made once, read without compares). A strided
    depthwise convolution or pooling reads through the bounds, as does a convolution computed as a matrix product
    (_im2col_contractions, before this), whose copy of the windows reads the input once."""
    for v in order:
        if v.op is not Op.VIEW or not v.view.bounds or v.base.op is Op.CONST:
            continue
        path, layout = v.path, View.contiguous(v.base.shape)
        split = 0
        while not layout.bounds:  # the first movement that puts a bound on the view (a window over padding)
            moved = apply_movement(layout, *path[split])
            assert moved is not None, "a VIEW's path replays on its base's contiguous layout"
            layout, split = moved, split + 1
        padded = v.base
        for op, arg in path[:split - 1]:
            padded = padded.movement(op, arg)
        if math.prod(v.shape) <= WINDOW_READS_PER_COPY * math.prod(padded.shape) and \
                get_device(v.device).reads_windows_through_padding:
            continue
        copy = padded.contiguous()
        for op, arg in path[split - 1:]:
            copy = copy.movement(op, arg)
        replaced[id(v)] = copy


def _relay_contractions(order: list[Node], roots: list[Node], replaced: dict[int, Node]) -> None:
    """A contraction where neither operand runs along an output dim with unit stride gives a register tile no dim
    to vectorise: x @ w.T with w stored as torch's Linear stores it, (out, in), computed one dot product at a
    time; a stride-2 convolution read its input two apart. One operand is then copied first (a small kernel of
    its own) with one of its output dims innermost, so that the tile runs along it: preferably the output's own
    innermost dim (the stores stay contiguous), else the longest. The values, and the order of each sum, stay
    the same."""
    for n in order:
        if n.op is not Op.SUM or n.src[0].op is not Op.MUL:
            continue
        axes, prod = set(n.arg), n.src[0]
        if not all(v.op is Op.VIEW and not _unit_output_dims(v, axes) for v in prod.src):
            continue
        # the copy whose innermost dim is the output's innermost keeps the stores contiguous too; else the longest
        last = max((d for d, m in enumerate(n.shape) if m > 1), default=-1)
        side = max((v for v in prod.src if v.view.mask is None and v.base.op is not Op.CONST),
                   key=lambda v: (_inner_dim(v, axes) == last, _last_varying(v, axes)), default=None)
        if side is None or not _last_varying(side, axes):
            continue
        other = prod.src[1] if side is prod.src[0] else prod.src[0]
        # the rows of the other operand that each read the whole copy (a depthwise convolution has none: each
        # channel reads its own input, and copying it costs as much as the convolution)
        if math.prod(m for d, m in enumerate(other.shape) if d not in axes and other.view.strides[d] and
                     not side.view.strides[d]) < DOT_MIN_ROWS:
            continue
        replaced[id(prod)] = _with_sources(prod, tuple(_relaid(v, axes) if v is side else v for v in prod.src))


IM2COL_MAX_BYTES = 16 << 20  # a bigger copy streams through memory (4x64 channels at 56x56, 29 MB: 170 -> 130 GFLOP/s)
IM2COL_MULTIPLE = 16  # the flattened dim is padded to a multiple of this: two vectors of 8 lanes
# The copy costs a pass over the windows (depth x columns) and the view back one over the output (rows x columns);
# the product does rows x depth multiply-adds per column. It pays where rows * depth / (rows + depth) is at least
# this: a first layer's 64 channels over 3x3x3 inputs (19) ran 190 -> 240 us as a matrix product, a 512x512x3x3
# weight gradient summed over 7x7 (45) 19 -> 2 ms, ResNet's convolutions are 58 and more
IM2COL_MIN_REUSE = 32
# the summed length at most: longer, a tile's stripe of the copy (16 columns) no longer stays in a core's L2 cache
# between the tiles of rows that read it (a weight gradient over batch x height x width, 25,088 terms: 4x slower)
IM2COL_MAX_DEPTH = 8192


def _im2col_contractions(order: list[Node], roots: list[Node], replaced: dict[int, Node]) -> None:
    """On CPUs (`Device.pad_ragged_dims`): a convolution whose output rows are 7, 14, 28 or 56 wide (ResNets) gives a
    register tile a ragged vector dim (7 or 14 lanes where vectors hold 8). It is then computed as a matrix
    product: its input windows copied out with every spatial output dim innermost (im2col), those dims padded so
    that their product is a multiple of 16 and flattened into one, and the weights broadcast along it. The values
    and the order of each sum stay the same; the readers see the output through a view without the padding."""
    whole = {id(r) for r in roots} | {id(m.src[0]) for m in order if m.op is Op.COPY}  # read as a whole buffer
    for n in order:
        if n.op is not Op.SUM or n.src[0].op is not Op.MUL or not get_device(n.device).pad_ragged_dims:
            continue
        axes, prod = set(n.arg), n.src[0]
        if not all(v.op is Op.VIEW for v in prod.src):
            continue
        for x, w in ((prod.src[0], prod.src[1]), (prod.src[1], prod.src[0])):
            spatial = [d for d, m in enumerate(prod.shape) if d not in axes and m > 1 and x.view.strides[d] and
                       not w.view.strides[d]]
            rows = math.prod(m for d, m in enumerate(prod.shape) if d not in axes and m > 1 and
                             w.view.strides[d] and not x.view.strides[d])
            depth = math.prod(prod.shape[a] for a in axes)
            if len(spatial) < 2 or x.base.op is Op.CONST or depth > IM2COL_MAX_DEPTH or \
                    rows * depth < IM2COL_MIN_REUSE * (rows + depth) or \
                    prod.shape[spatial[-1]] % IM2COL_MULTIPLE == 0:
                continue  # (a row a multiple of 16 wide already gets whole vectors)
            copied = math.prod(m for d, m in enumerate(prod.shape) if x.view.strides[d]) * x.dtype.itemsize
            if copied > IM2COL_MAX_BYTES:
                continue
            out = _as_matrix_product(n, x, w, spatial)
            replaced[id(n)] = out.contiguous() if id(n) in whole else out
            break


def _spatial_padding(sizes: list[int]) -> list[int]:
    """Sizes at least `sizes` (only the last two grown) whose product is the smallest multiple of IM2COL_MULTIPLE."""
    *outer, h, w = sizes
    rest = math.prod(outer)
    return min((outer + [h + a, w + b] for a in range(IM2COL_MULTIPLE) for b in range(IM2COL_MULTIPLE)
                if rest * (h + a) * (w + b) % IM2COL_MULTIPLE == 0),
               key=lambda s: (math.prod(s), s[-2] - h))


def _as_matrix_product(n: Node, x: Node, w: Node, spatial: list[int]) -> Node:
    """Reduce n = sum(x * w) recomputed as a matrix product: its `spatial` output dims (those only x varies along)
    flattened into one padded last dim, its summed dims into one before it where w's layout allows (as a GPU's
    staged matrix product needs); a view of it in n's shape."""
    prod, full = n.src[0], n.src[0].shape
    reduced = sorted(n.arg)
    outer = [d for d in range(len(full)) if d not in spatial and d not in n.arg]
    sizes = [full[d] for d in spatial]
    padded = _spatial_padding(sizes)
    flat = math.prod(padded)
    merge = not w.view.masked and all(w.view.strides[a] == w.view.strides[b] * full[b]
                                        for a, b in itertools.pairwise(reduced))
    depth = (math.prod(full[d] for d in reduced),) if merge else tuple(full[d] for d in reduced)
    shape = tuple(full[d] for d in outer) + depth + (flat,)
    perm = tuple(outer + reduced + spatial)
    xs = x.movement(Op.SHRINK, tuple((0, 1 if st == 0 else m, 1) for st, m in zip(x.view.strides, full)))
    xs = xs.movement(Op.PERMUTE, perm)
    xs = xs.movement(Op.PAD, tuple((0, 0) for _ in outer + reduced) + tuple((0, p - m) for p, m in zip(padded, sizes)))
    xs = xs.contiguous().movement(Op.RESHAPE, xs.shape[:len(outer)] + depth + (flat,)).movement(Op.EXPAND, shape)
    ws = w.movement(Op.SHRINK, tuple((0, 1 if d in spatial else m, 1) for d, m in enumerate(full)))
    ws = ws.movement(Op.PERMUTE, perm).movement(Op.RESHAPE, shape[:-1] + (1,)).movement(Op.EXPAND, shape)
    product = lazy(Op.MUL, (xs, ws) if x is prod.src[0] else (ws, xs), None, prod.dtype, shape, prod.device)
    axes = tuple(range(len(outer), len(outer) + len(depth)))
    summed = lazy(Op.SUM, (product,), axes, n.dtype, tuple(1 if i in axes else m for i, m in enumerate(shape)),
                  n.device)
    out = summed.movement(Op.RESHAPE, tuple(full[d] for d in outer) + (1,) * len(reduced) + tuple(padded))
    out = out.movement(Op.SHRINK, tuple((0, m, 1) for m in out.shape[:-len(spatial)]) + tuple((0, m, 1) for m in sizes))
    return out.movement(Op.PERMUTE, tuple(perm.index(d) for d in range(len(full))))


ALIASED_ROW_BYTES = 1024  # operand rows a multiple of this apart map to a few cache sets
PAD_MIN_ROWS, PAD_MIN_DEPTH = 256, 64  # the contraction reuses each operand row this often, over this long a sum
ROW_PAD_BYTES = 64  # one cache line: the copy's rows then fall in different sets


def _pad_aliased_rows(order: list[Node], roots: list[Node], replaced: dict[int, Node]) -> None:
    """On CPUs (`Device.pad_aliased_rows`): in a big contraction, the operand read along the output's unit-stride
    dim walks the summed dim one row at a time; when its rows lie a multiple of 1 KiB apart (a 1024x1024 matrix:
    4 KiB) they share a few cache sets and evict each other, and each row is read again for every tile of the
    other operand (matmul 1024^2 on a 2-core AVX2 EPYC: 52 GFLOP/s; 121 from rows padded by a cache line). That
    operand is then read from a copy whose rows are one cache line longer. Values and sums stay the same."""
    for n in order:
        if n.op is not Op.SUM or n.src[0].op is not Op.MUL or not get_device(n.device).pad_aliased_rows:
            continue  # (cheap tests first: this walks every node of every step's graph)
        axes, prod = [a for a in n.arg if n.src[0].shape[a] > 1], n.src[0]
        if len(axes) != 1 or prod.shape[axes[0]] < PAD_MIN_DEPTH or not all(v.op is Op.VIEW for v in prod.src):
            continue
        k = axes[0]
        for v, other in ((prod.src[0], prod.src[1]), (prod.src[1], prod.src[0])):
            view, item = v.view, v.dtype.itemsize
            if v.base.op is Op.CONST or view.masked or not _unit_output_dims(v, {k}) or \
                    view.strides[k] <= 0 or (view.strides[k] * item) % ALIASED_ROW_BYTES:
                continue
            rows = math.prod(m for d, m in enumerate(other.shape) if d != k and other.view.strides[d] and
                             not view.strides[d])
            if rows >= PAD_MIN_ROWS:
                replaced[id(prod)] = _with_sources(prod, tuple(_row_padded(s, ROW_PAD_BYTES // item) if s is v else s
                                                               for s in prod.src))
                break


RAGGED_MIN = 256  # a contraction's vector dim at least this long that is not a multiple of RAGGED_MULTIPLE is padded
RAGGED_MULTIPLE = 32  # (the widest register tile: 32 lanes; the padding wastes under 12% of the work)
# ... where each element of its operand is used by at least this many rows of the other: a matrix-vector product
# (1x2048 @ 2048x1000) ran 0.40 -> 1.04 ms padded, 4 rows 0.23 -> 0.33, 8x1024 @ 1024x8210 8.2 -> 6.7
RAGGED_MIN_ROWS = 8


def _pad_ragged_contractions(order: list[Node], roots: list[Node], replaced: dict[int, Node]) -> None:
    """On CPUs (`Device.pad_ragged_dims`): a register tile covers its contiguous dim exactly, so an output dim of
    8,210 (an OCR vocabulary) got a tile of 10 lanes and 1,000 (ImageNet's classes) one of 25, both vectorised
    badly (32x1024 @ 1024x8210: 16-17 ms, against 6.7-7.3 for 8,224 columns). The contraction then runs over that
    dim padded to a multiple of 32: the operand read along it through a padded view (zeros past the end, no copy),
    the other one broadcast further; its readers see the first columns. Values and sums of the kept outputs stay
    the same (32x1024 @ 1024x8210: 6.6-8.5 ms)."""
    root_ids = {id(r) for r in roots}
    for n in order:
        if n.op is not Op.SUM or n.src[0].op is not Op.MUL or id(n) in root_ids or \
                not get_device(n.device).pad_ragged_dims:
            continue
        axes, prod = set(n.arg), n.src[0]
        for side, other in ((prod.src[0], prod.src[1]), (prod.src[1], prod.src[0])):
            if side.op is not Op.VIEW or side.view.masked:
                continue
            strides = side.view.strides
            j = next((d for d, st in enumerate(strides) if st == 1 and d not in axes and n.shape[d] > 1), None)
            if j is None or n.shape[j] < RAGGED_MIN or n.shape[j] % RAGGED_MULTIPLE == 0:
                continue
            rows = math.prod(m for d, m in enumerate(n.shape) if d not in axes and strides[d] == 0)
            if rows < RAGGED_MIN_ROWS:
                continue
            pad = -n.shape[j] % RAGGED_MULTIPLE
            wide = tuple(m + pad if d == j else m for d, m in enumerate(prod.shape))
            broadcast = _widened(other, j, wide)
            if broadcast is None:
                continue
            grown = side.movement(Op.PAD, tuple((0, pad if d == j else 0) for d in range(len(wide))))
            product = lazy(Op.MUL, (grown, broadcast) if side is prod.src[0] else
                           (broadcast, grown), None, prod.dtype, wide, prod.device)
            summed = lazy(Op.SUM, (product,), n.arg, n.dtype, tuple(m + pad if d == j else m
                                                                     for d, m in enumerate(n.shape)), n.device)
            replaced[id(n)] = summed.movement(Op.SHRINK, tuple((0, m, 1) for m in n.shape))  # the first columns
            break


def _widened(x: Node, j: int, shape: Shape) -> Optional[Node]:
    """x (constant along dim j) in `shape`, which is wider along j: its views broadcast further, its constants and
    elementwise ops rebuilt. None where x varies along j or is something else."""
    if x.op is Op.VIEW:
        if x.view.strides[j] != 0:
            return None
        one = x.movement(Op.SHRINK, tuple((0, 1 if d == j else m, 1) for d, m in enumerate(x.shape)))
        return one.movement(Op.EXPAND, shape)
    if x.op is Op.CONST and not x.src:
        return lazy(Op.CONST, (), x.arg, x.dtype, shape, x.device)
    if x.op in ELEMENTWISE:
        srcs = [_widened(s, j, shape) for s in x.src]
        if any(s is None for s in srcs):
            return None
        return lazy(x.op, tuple(s for s in srcs if s is not None), x.arg, x.dtype, shape, x.device)
    return None


def _row_padded(v: Node, pad: int) -> Node:
    """The same values as view v, read from a copy in v's own memory order whose innermost dim is `pad` longer."""
    strides = v.view.strides
    dims = sorted(range(len(v.shape)), key=lambda d: (strides[d] != 0, -abs(strides[d])))  # memory order
    return _copied(v, dims, pad)


def _unit_output_dims(v: Node, axes: set[int]) -> bool:
    return any(st == 1 for d, (st, m) in enumerate(zip(v.view.strides, v.shape)) if d not in axes and m > 1)


def _varying_output_dims(v: Node, axes: set[int]) -> list[int]:
    return [d for d, (st, m) in enumerate(zip(v.view.strides, v.shape)) if d not in axes and st != 0 and m > 1]


def _inner_dim(v: Node, axes: set[int]) -> int:
    """The output dim v's copy would run along (-1 if none)."""
    dims = _varying_output_dims(v, axes)
    return dims[-1] if dims else -1


def _last_varying(v: Node, axes: set[int]) -> int:
    """The extent of the output dim that v's copy would run along (its last varying one; 0 if none)."""
    dims = _varying_output_dims(v, axes)
    return v.shape[dims[-1]] if dims else 0


def _relaid(v: Node, axes: set[int]) -> Node:
    """The same values as the view v, read from a copy whose innermost dim is v's last varying output dim."""
    inner = _varying_output_dims(v, axes)[-1]
    return _copied(v, [d for d in range(len(v.shape)) if d != inner] + [inner])


def _copied(v: Node, dims: list[int], pad: int = 0) -> Node:
    """The same values as the view v, read from a copy of them laid out in the dim order `dims` (innermost last,
    that one `pad` elements longer). Dims v repeats (stride 0, a broadcast) are copied once and expanded again."""
    full = v.shape
    one = v.movement(Op.SHRINK, tuple((0, 1 if st == 0 else m, 1) for st, m in zip(v.view.strides, full)))
    moved = one.movement(Op.PERMUTE, tuple(dims))
    padding = tuple((0, pad if i == len(dims) - 1 else 0) for i in range(len(dims)))
    copy = moved.movement(Op.PAD, padding).contiguous().movement(Op.SHRINK, tuple((0, m, 1) for m in moved.shape))
    inverse = tuple(dims.index(d) for d in range(len(full)))
    return copy.movement(Op.PERMUTE, inverse).movement(Op.EXPAND, full)


def schedule(targets: list[Node]) -> list[ScheduleItem]:
    """Kernels (and copies) that realize `targets`, in an order that respects their dependencies.

    The schedule is looked up by the graph's structure as the user built it, before the layout rewrites below
    (which are themselves decided by that structure), so a repeated training step neither rewrites nor groups
    again: it gets the kernels of the first step, with fresh buffers for the copies the rewrites added."""
    roots = list({id(r): r for r in map(_root_of, targets) if r is not None}.values())
    built = _toposort(roots)
    position = {id(n): i for i, n in enumerate(built)}
    key = _structure(built, roots, position, divisors_in(built))
    with _plans_lock:
        plan = _plans.get(key)
        if plan is not None:
            _plans.move_to_end(key)
    if plan is not None:
        return plan.items(built)
    order, origin = built, dict[int, tuple[Node, Node]]()
    # the layout rewrites, in order, each on the graph as the ones before left it: each records replacements for
    # nodes (the same values, sums in the same order), which _substituted applies to a copy of the graph
    for rewrite in (_reduce_in_read_order, _split_reduces, _im2col_contractions, _copy_padded_windows,
                    _relay_contractions, _pad_aliased_rows, _pad_ragged_contractions):
        replaced: dict[int, Node] = {}
        rewrite(order, roots, replaced)
        if replaced:
            roots, order = _substituted(order, roots, replaced, origin)
    divisors = divisors_in(order)
    items = _schedule(order, roots, {id(n): i for i, n in enumerate(order)}, divisors)
    for it in items:  # what stands for a node of the graph as built fills that node: the tensors hold those
        it.out, it.inputs = _original(it.out, origin), [_original(n, origin) for n in it.inputs]
    plan = _Plan.of(items, built, position, divisors)
    if plan is not None:
        with _plans_lock:
            _plans[key] = plan
            while len(_plans) > PLANS_KEPT:
                _plans.popitem(last=False)
    return items


def _with_sources(n: Node, src: tuple[Node, ...]) -> Node:
    return lazy(n.op, src, n.arg, n.dtype, n.shape, n.device)


def _original(n: Node, origin: dict[int, tuple[Node, Node]]) -> Node:
    found = origin.get(id(n))
    return found[1] if found is not None else n


def _substituted(order: list[Node], roots: list[Node], replaced: dict[int, Node],
                 origin: dict[int, tuple[Node, Node]]) -> tuple[list[Node], list[Node]]:
    """The graph under `roots` with each node in `replaced` swapped for its replacement, every node that reads one
    rebuilt up to the roots; the user's graph is left as it was. A replacement is built from nodes below the one it
    replaces (earlier in `order`), which are rebuilt too. `origin` learns, for each rebuilt node, the node of the
    graph as built that it stands for (the same values): that node gets its buffer. It keeps the rebuilt node too, so
    that its id stays its own while the schedule is built. Returns (roots, order)."""
    new: dict[int, Node] = {}

    def rebuilt(x: Node) -> Node:  # a node of a replacement: its few new nodes are walked recursively
        if id(x) in new:
            return new[id(x)]
        src = tuple(rebuilt(s) for s in x.src)
        out = x if all(a is b for a, b in zip(src, x.src)) else _with_sources(x, src)
        new[id(x)] = out
        return out

    for n in order:
        if id(n) in replaced:
            out = rebuilt(replaced[id(n)])
        else:
            src = tuple(new[id(s)] for s in n.src)
            out = n if all(a is b for a, b in zip(src, n.src)) else _with_sources(n, src)
        if out is not n:
            origin[id(out)] = (out, _original(n, origin))
        new[id(n)] = out
    roots = [new[id(r)] for r in roots]
    return roots, _toposort(roots)


# ---- the schedule cache: a step of a training loop builds a graph of the same structure every time ----------------
PLANS_KEPT = 512  # graph structures whose schedules are kept (the least recently used is dropped)
_plans: OrderedDict[tuple, _Plan] = OrderedDict()
_plans_lock = threading.Lock()


def _structure(order: list[Node], roots: list[Node], position: dict[int, int], divisors: frozenset[int]) -> tuple:
    """Everything that decides the schedule of `order`, with nodes named by their position: equal keys, equal
    kernels. Data is left out (buffers are leaves known by shape, dtype and device) and so are the values of
    constants that become kernel arguments; constants kept in the code count by their bits, as kernels do."""
    parts: list[tuple] = []
    scalars: dict[tuple, int] = {}  # kernel arguments equal in value share one buffer: which ones do counts
    for n in order:
        if n.op is Op.CONST and hoisted(n, divisors):
            arg: object = ("arg", scalars.setdefault((n.device, n.dtype, n.arg), len(scalars)))
        elif n.op is Op.CONST:
            arg = (type(n.arg), repr(n.arg))
        elif n.op is Op.VIEW:
            arg = n.arg[0]  # the movement path (the view follows from it and the base's shape)
        else:
            arg = n.arg
        # the dtype by name: a str caches its hash, and the key is hashed whole at every lookup
        parts.append((n.op, n.dtype.name, n.shape, n.device, arg, tuple([position[id(s)] for s in n.src])))
    return (tuple(parts), tuple([position[id(r)] for r in roots]))


@dataclass
class _Plan:
    """A schedule with its nodes named by their position in the graph as built (before the layout rewrites): the
    same kernels serve every graph of that structure. An input is ("node", position), ("scalar", position of a
    constant whose value a one-element buffer holds) or ("new", k): the k-th node the rewrites added (a re-laid
    operand, a partial reduce), which gets a fresh node each time, filled by an earlier step of the plan."""

    steps: list[tuple[tuple[str, int], list[tuple[str, int]], Optional[Kernel]]]
    added: list[tuple[DType, Shape, str]]  # dtype, shape and device of each added node

    @staticmethod
    def of(items: list[ScheduleItem], built: list[Node], position: dict[int, int],
           divisors: frozenset[int]) -> Optional[_Plan]:
        """The plan of a schedule just built from graph `built` (None if a scalar buffer it reads was dropped
        meanwhile, or it reads an added node that no step fills)."""
        with _scalars_lock:  # each kept scalar buffer, by identity -> the position of a constant holding its value
            scalars = {id(_scalars[k]): i for i, c in enumerate(built) if c.op is Op.CONST and hoisted(c, divisors)
                       and (k := _scalar_key(c)) in _scalars}
        added: dict[int, int] = {}
        plan = _Plan([], [])
        for it in items:
            refs = []
            for n in it.inputs:
                if id(n) in position:
                    refs.append(("node", position[id(n)]))
                elif id(n) in scalars:
                    refs.append(("scalar", scalars[id(n)]))
                elif id(n) in added:
                    refs.append(("new", added[id(n)]))
                else:
                    return None
            out = it.out
            if id(out) in position:
                plan.steps.append((("node", position[id(out)]), refs, it.kernel))
            else:
                added[id(out)] = len(plan.added)
                plan.added.append((out.dtype, out.shape, out.device))
                plan.steps.append((("new", added[id(out)]), refs, it.kernel))
        return plan

    def items(self, built: list[Node]) -> list[ScheduleItem]:
        fresh = [lazy(Op.CONTIGUOUS, (), None, dtype, shape, device) for dtype, shape, device in self.added]

        def node(kind: str, i: int) -> Node:
            return built[i] if kind == "node" else fresh[i] if kind == "new" else scalar_buffer(built[i])

        return [ScheduleItem(node(*out), [node(*ref) for ref in refs], kernel) for out, refs, kernel in self.steps]


def _schedule(order: list[Node], roots: list[Node], position: dict[int, int],
              divisors: frozenset[int]) -> list[ScheduleItem]:
    """Decide the kernels: materialize what must be, then build each kernel's AST."""
    materialized = {id(r): r for r in roots}
    for n in order:
        if n.op in (Op.CONTIGUOUS, Op.COPY):
            materialized[id(n)] = n
        if n.op is Op.COPY and _is_compute(n.src[0]):
            materialized[id(n.src[0])] = n.src[0]
    _group(order, materialized)
    items: dict[int, ScheduleItem] = {}
    pending = list(materialized.values())
    while pending:
        root = pending.pop()
        if id(root) in items:
            continue
        try:
            items[id(root)] = _build(root, materialized, divisors)
        except _Materialize as e:
            materialized[id(e.node)] = e.node
            pending += [root, e.node]
    return sorted(items.values(), key=lambda it: position[id(it.out)])


def _group(order: list[Node], materialized: dict[int, Node]) -> None:
    """Materialize every compute node whose readers fall in different kernels or read it differently.

    Walking consumers before producers, each inlined node joins the kernel of its readers. A node
    read the same way (same node or same view of it) by readers of one kernel stays inlined: that is
    how `x` in `(x > 0).if_else(x, 0)` is computed once inside one kernel.
    """
    readers: dict[int, list[tuple[Node, Node]]] = {}
    for n in order:
        if n.op in (Op.BUFFER, Op.VIEW):
            continue
        for s in {id(s): s for s in n.src}.values():
            readers.setdefault(id(s.base), []).append((n, s))
    kernel_of: dict[int, int] = {}
    for n in reversed(order):
        if not _is_compute(n):
            continue
        if id(n) not in materialized:
            reads = readers.get(id(n), [])
            kernels = {kernel_of.get(id(r), -1) for r, _ in reads}
            accesses = {id(via) for _, via in reads}
            if len(kernels) != 1 or len(accesses) != 1 or -1 in kernels:
                materialized[id(n)] = n
        kernel_of[id(n)] = id(n) if id(n) in materialized else kernel_of[id(readers[id(n)][0][0])]


def _only_unit_reshapes(path: Path, shape: tuple[int, ...]) -> bool:
    if any(op is not Op.RESHAPE for op, _ in path):
        return False
    return [n for n in path[-1][1] if n != 1] == [n for n in shape if n != 1]


class _KernelBuilder:
    """Builds the AST of one kernel, top down, pushing movement paths towards the loads.

    A device may bind only so many buffers to one kernel (`Device.max_buffers`; WebGPU in browsers: 8). A kernel
    that would read more gets the innermost op with several sources on the path to the extra buffer computed by a
    kernel of its own, which it then reads as one buffer (so a chain of 40 additions makes two kernels, not nine);
    that kernel is split the same way if it needs to be.
    """

    def __init__(self, root: Node, materialized: dict[int, Node], divisors: frozenset[int]):
        self.root, self.materialized, self.divisors = root, materialized, divisors
        self.buffers: list[Node] = [root]
        self.reduce_input: Optional[Node] = None
        self.memo: dict[tuple[int, Path, bool], AST] = {}
        self.max_buffers = get_device(root.device).max_buffers
        self.path: list[Node] = []  # the elementwise ops being visited, outermost first

    def buffer_index(self, node: Node) -> int:
        for i, b in enumerate(self.buffers):
            if b is node:
                return i
        if self.max_buffers is not None and len(self.buffers) >= self.max_buffers:
            inner = [n for n in self.path if n is not self.root]
            outer = next((n for n in reversed(inner) if len(n.src) > 1), inner[0] if inner else None)
            if outer is None:  # the root's own source is the extra buffer: compute another of its sources apart
                outer = next((s.base for s in self.root.src if _is_compute(s.base)
                              and id(s.base) not in self.materialized), None)
            if outer is None:
                raise ValueError(f"a kernel of {self.root.op.name} {self.root.shape} reads more buffers than device "
                                 f"{self.root.device!r} binds at once ({self.max_buffers}); compute it in parts")
            raise _Materialize(outer)
        self.buffers.append(node)
        return len(self.buffers) - 1

    def visit(self, n: Node, path: Path, in_reduce: bool, depth: int = 0) -> AST:
        """The AST of node `n` read through `path`; the same read twice gives the same AST object."""
        key = (id(n), path, in_reduce)
        if key not in self.memo:
            if depth > MAX_FUSION_DEPTH and n.op in ELEMENTWISE and id(n) not in self.materialized:
                raise _Materialize(n)  # very long chains are split: kernels stay small, nothing recurses deeply
            self.memo[key] = self._visit(n, path, in_reduce, depth)
        return self.memo[key]

    def _visit(self, n: Node, path: Path, in_reduce: bool, depth: int) -> AST:
        if n is not self.root and (n.op is Op.BUFFER or id(n) in self.materialized):
            view = replay(path, View.contiguous(n.shape))
            assert view is not None, "a path valid on this shape must replay on its contiguous layout"
            return AST(Op.LOAD, n.dtype, (), (self.buffer_index(n), view))
        if n.op is Op.VIEW:
            full = n.path + path
            if path and replay(full, View.contiguous(n.base.shape)) is None:
                raise _Materialize(n)
            if in_reduce and _costly_to_repeat(n, self.materialized):
                raise _Materialize(n.base)
            return self.visit(n.base, full, in_reduce, depth)
        if n.op is Op.CONST:
            view = replay(path, View.contiguous(n.shape))
            assert view is not None
            if hoisted(n, self.divisors):  # read from a one-element buffer: a new value is new data, not a new kernel
                everywhere = View.make(view.shape, (0,) * len(view.shape), 0, view.mask, view.bounds)
                return AST(Op.LOAD, n.dtype, (), (self.buffer_index(scalar_buffer(n)), everywhere))
            return AST(Op.CONST, n.dtype, (), (n.arg, view))
        if n.op is Op.CONTIGUOUS:
            return self.visit(n.src[0], path, in_reduce, depth)
        if n.op in REDUCE:
            return self.visit_reduce(n, path, in_reduce, depth)
        if n.op is Op.GATHER:
            return self.visit_gather(n, path, in_reduce, depth)
        if any(op is Op.PAD for op, _ in path) and n.op not in PAD_SAFE:
            raise _Materialize(n)
        self.path.append(n)
        srcs = tuple(self.visit(s, path, in_reduce, depth + 1) for s in n.src)
        self.path.pop()
        return AST(n.op, n.dtype, srcs, n.arg if n.op in CONVERSIONS else None)

    def visit_reduce(self, n: Node, path: Path, in_reduce: bool, depth: int) -> AST:
        if in_reduce or self.reduce_input is not None or (path and not _only_unit_reshapes(path, n.shape)):
            raise _Materialize(n)
        self.reduce_input = n.src[0]
        ast = AST(n.op, n.dtype, (self.visit(n.src[0], (), True, depth + 1),), n.arg)
        return AST(Op.RESHAPE, n.dtype, (ast,), path[-1][1]) if path else ast

    def visit_gather(self, n: Node, path: Path, in_reduce: bool, depth: int) -> AST:
        """A GATHER reads its table, a buffer, through a plain strided View (no padding): a table still to be
        computed, or one read through padding, gets a kernel of its own first. The gathered values read through a
        movement path are a buffer too: the path would move the table's dims and the index's alike."""
        if path:
            raise _Materialize(n)
        table, index = n.src
        copied = id(table) in self.materialized  # a view given a buffer of its own (below)
        base, table_path = (table.base, table.path) if table.op is Op.VIEW and not copied else (table, ())
        if base.op is not Op.BUFFER and id(base) not in self.materialized:
            raise _Materialize(base)
        view = replay(table_path, View.contiguous(base.shape))
        if view is None or view.masked or view.bounds:
            raise _Materialize(table)
        self.path.append(n)
        positions = self.visit(index, (), in_reduce, depth + 1)
        self.path.pop()
        return AST(Op.GATHER, n.dtype, (positions,), (self.buffer_index(base), view, n.arg, n.shape[n.arg]))


COSTLY = {Op.EXP2, Op.LOG2, Op.SIN, Op.SQRT, Op.RECIP, Op.FDIV}  # tens of operations each, or a slow instruction
REPEAT_LIMIT = 4  # a reduce may compute a value this many times over (a broadcast operand) before it gets a buffer
REPEAT_MIN_WORK = 1 << 16  # ... once it reads that many elements: below, recomputing costs less than a kernel launch


def _costly_to_repeat(v: Node, materialized: dict[int, Node]) -> bool:
    """Whether the view v, read inside a reduce, repeats a computed node REPEAT_LIMIT+ times (a broadcast) whose own
    kernel part holds a costly op: attention's softmax @ v had the softmax (an exp and a division per element)
    computed once per output column (16x over: 128 us of a 180 us kernel). That node then gets a buffer."""
    base = v.base
    work = math.prod(v.shape)
    if not _is_compute(base) or id(base) in materialized or work < REPEAT_MIN_WORK or \
            work < REPEAT_LIMIT * math.prod(base.shape):
        return False
    stack, seen = [base], set()
    while stack:
        n = stack.pop()
        if id(n) in seen or n.op is Op.BUFFER or (n is not base and id(n) in materialized) or n.op in REDUCE:
            continue
        seen.add(id(n))
        if n.op in COSTLY:
            return True
        stack.extend(s.base if s.op is Op.VIEW else s for s in n.src)
    return False


def _build(root: Node, materialized: dict[int, Node], divisors: frozenset[int]) -> ScheduleItem:
    if root.op is Op.COPY:
        return ScheduleItem(root, [root.src[0]])
    builder = _KernelBuilder(root, materialized, divisors)
    value = builder.visit(root, (), False)
    ast = AST(Op.STORE, root.dtype, (value,), (0, View.contiguous(root.shape)))
    full = builder.reduce_input.shape if builder.reduce_input is not None else root.shape
    kind = "reduce" if builder.reduce_input is not None else "elementwise"
    name = f"{kind}_{'x'.join(map(str, full)) or 'scalar'}"
    return ScheduleItem(root, builder.buffers[1:], Kernel(ast, root.shape, full, name))
