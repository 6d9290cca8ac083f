"""The primitive ops and the lazy graph node.

Every Tensor method is a composition of these ops. A `Node` is one op applied to source nodes; it
holds no data until the scheduler turns it into a `BUFFER` node backed by device memory. Movement
ops make `VIEW` nodes that point at the node they view (their base) and carry the movement path,
so they never cost a kernel unless the path cannot be expressed as one View.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from enum import Enum, auto
from typing import Any, Optional, TypeVar

from .dtype import DType, bool_
from .view import Shape, View


class Op(Enum):
    """Every op of every level: sources, unary, binary, ternary, reduce, movement, three graph markers, and the
    loop IR's statements. The lazy graph, the kernel AST and the loop IR share one vocabulary: arithmetic is the
    same op at each level, only its sources change (nodes, then AST nodes, then loop values)."""

    __hash__ = object.__hash__  # members are singletons: identity hashing, much cheaper than Enum's (by name)

    BUFFER = auto()
    CONST = auto()
    EXP2 = auto()
    LOG2 = auto()
    SIN = auto()
    SQRT = auto()
    RECIP = auto()
    NEG = auto()
    CAST = auto()
    BITCAST = auto()  # the same bits read as another dtype of the same size (float <-> int)
    ADD = auto()
    MUL = auto()
    FDIV = auto()  # correctly rounded float division (x * recip(y) can be off by an ulp)
    MAX = auto()
    CMPLT = auto()
    CMPEQ = auto()
    IDIV = auto()
    MOD = auto()
    AND = auto()
    OR = auto()
    XOR = auto()
    WHERE = auto()
    SUM = auto()
    RMAX = auto()
    RESHAPE = auto()
    PERMUTE = auto()
    EXPAND = auto()
    PAD = auto()
    SHRINK = auto()
    FLIP = auto()
    WINDOW = auto()  # sliding windows (convolution and pooling): a view with overlapping strides
    VIEW = auto()
    CONTIGUOUS = auto()
    COPY = auto()
    LOAD = auto()  # kernel: read a buffer through a View; loop IR: src = (param, index) or (param, index, valid)
    STORE = auto()  # kernel: write the kernel's output; loop IR: src = (param, index, value) or (..., valid)
    # the loop IR only (ir.py says what each does): parameters, loops, accumulators, local memory, vector lanes
    PARAM = auto()
    BOUND = auto()
    RANGE = auto()
    END = auto()
    DEFINE_ACC = auto()
    ACC_UPDATE = auto()
    ACC_FMA = auto()
    ACC_READ = auto()
    DEFINE_LOCAL = auto()
    BARRIER = auto()
    GROUP_FOLD = auto()
    BROADCAST = auto()
    VECTOR = auto()
    LANE = auto()


UNARY = {Op.EXP2, Op.LOG2, Op.SIN, Op.SQRT, Op.RECIP, Op.NEG, Op.CAST, Op.BITCAST}
BINARY = {Op.ADD, Op.MUL, Op.FDIV, Op.MAX, Op.CMPLT, Op.CMPEQ, Op.IDIV, Op.MOD, Op.AND, Op.OR, Op.XOR}
ELEMENTWISE = UNARY | BINARY | {Op.WHERE}
REDUCE = {Op.SUM, Op.RMAX}
CONVERSIONS = {Op.CAST, Op.BITCAST}  # unary ops whose arg is the target dtype
ALU = (UNARY - CONVERSIONS) | BINARY | {Op.WHERE}  # arithmetic in the loop IR; conversions are UOps of their own
MOVEMENT = {Op.RESHAPE, Op.PERMUTE, Op.EXPAND, Op.PAD, Op.SHRINK, Op.FLIP, Op.WINDOW}
COMPARISON = {Op.CMPLT, Op.CMPEQ}
# f(0, 0, ...) == 0: padding can be pushed through these ops, the padded area stays zero
PAD_SAFE = {Op.ADD, Op.MUL, Op.NEG, Op.MAX, Op.CMPLT, Op.CAST, Op.BITCAST, Op.SQRT, Op.SIN, Op.AND, Op.OR, Op.XOR,
            Op.WHERE}

Path = tuple[tuple[Op, Any], ...]
T = TypeVar("T")


def postorder(roots: Sequence[T], children: Callable[[T], Iterable[T]]) -> list[T]:
    """Every node reachable from roots once, children before parents. Iterative: deep graphs are fine."""
    order: list[T] = []
    seen: set[int] = set()
    stack: list[tuple[T, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in reversed(list(children(node))) if id(c) not in seen)
    return order


def apply_movement(view: View, op: Op, arg: Any) -> Optional[View]:
    """One movement op on a View; None only when a reshape cannot be expressed."""
    if op is Op.RESHAPE:
        return view.reshape(arg)
    if op is Op.PERMUTE:
        return view.permute(arg)
    if op is Op.EXPAND:
        return view.expand(arg)
    if op is Op.PAD:
        return view.pad(arg)
    if op is Op.SHRINK:
        return view.shrink(arg)
    if op is Op.FLIP:
        return view.flip(arg)
    if op is Op.WINDOW:
        return view.window(arg)
    raise ValueError(f"{op} is not a movement op")


def replay(path: Path, view: View) -> Optional[View]:
    """Apply a movement path to a view, or None if some reshape on the way is not expressible."""
    for op, arg in path:
        nv = apply_movement(view, op, arg)
        if nv is None:
            return None
        view = nv
    return view


def movement_shape(shape: Shape, op: Op, arg: Any) -> Shape:
    """The shape after one movement op (arguments are already validated by the Tensor front end)."""
    if op in (Op.RESHAPE, Op.EXPAND):
        return tuple(arg)
    if op is Op.PERMUTE:
        return tuple(shape[i] for i in arg)
    if op is Op.PAD:
        return tuple(n + b + a for n, (b, a) in zip(shape, arg))
    if op is Op.SHRINK:
        return tuple(max(0, -(-(hi - lo) // st)) for lo, hi, st in arg)
    if op is Op.WINDOW:
        k = len(arg)
        outs = tuple((n - d * (kk - 1) - 1) // s + 1 for n, (kk, s, d) in zip(shape[-k:], arg))
        return shape[:-k] + outs + tuple(kk for kk, _, _ in arg)
    return shape


class Node:
    """One lazy value: `op` applied to `src`. A realized node has op BUFFER and a `buffer`.

    For VIEW nodes `src[0]` is the base and `arg` is `(path, view)`: the movement ops from the base's
    contiguous layout, and the View they produce. For reduce nodes `arg` is the reduced axes (kept as
    size 1), for CONST the value, for CAST the target dtype, for COPY the target device.
    """

    __slots__ = ("__weakref__", "arg", "buffer", "device", "dtype", "op", "shape", "src")

    def __init__(self, op: Op, src: tuple[Node, ...], arg: Any, dtype: DType, shape: Shape, device: str,
                 buffer: Any = None):
        self.op, self.src, self.arg, self.dtype = op, src, arg, dtype
        self.shape, self.device, self.buffer = tuple(shape), device, buffer

    def __repr__(self) -> str:
        return f"<Node {self.op.name} {self.dtype.name}{list(self.shape)} on {self.device}>"

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def base(self) -> Node:
        return self.src[0] if self.op is Op.VIEW else self

    @property
    def path(self) -> Path:
        return self.arg[0] if self.op is Op.VIEW else ()

    @property
    def view(self) -> View:
        return self.arg[1] if self.op is Op.VIEW else View.contiguous(self.shape)

    @property
    def is_realized(self) -> bool:
        """True when reading this node needs no kernel: a buffer, or a view of one."""
        return self.base.op is Op.BUFFER

    # ---- building the graph -----------------------------------------------------------------
    def const_like(self, value: Any, dtype: Optional[DType] = None) -> Node:
        return const(value, dtype or self.dtype, self.shape, self.device)

    def alu(self, op: Op, *others: Node) -> Node:
        srcs = (self, *others)
        dtype = bool_ if op in COMPARISON else srcs[-1].dtype
        return Node(op, srcs, None, dtype, self.shape, self.device)

    def cast(self, dtype: DType) -> Node:
        return self if dtype == self.dtype else Node(Op.CAST, (self,), dtype, dtype, self.shape, self.device)

    def bitcast(self, dtype: DType) -> Node:
        """The same bits as `dtype`, a float and an integer type of one size (integer pairs are casts)."""
        assert dtype.itemsize == self.dtype.itemsize and dtype.is_float != self.dtype.is_float, (self.dtype, dtype)
        return Node(Op.BITCAST, (self,), dtype, dtype, self.shape, self.device)

    def reduce(self, op: Op, axes: tuple[int, ...]) -> Node:
        axes = tuple(sorted(a for a in axes if self.shape[a] != 1))
        if not axes:
            return self
        shape = tuple(1 if i in axes else n for i, n in enumerate(self.shape))
        if self.op is Op.CONST and not self.src:  # a constant reduces to a constant: no kernel, exact count
            count = math.prod(self.shape[a] for a in axes)
            value = self.arg if op is Op.RMAX else (self.arg * count if count else 0)
            if op is Op.RMAX or self.dtype.is_float or self.dtype == bool_ or _fits(value, self.dtype):
                return const(value, self.dtype, shape, self.device)
        return Node(op, (self,), axes, self.dtype, shape, self.device)

    def contiguous(self) -> Node:
        if self.op is not Op.VIEW and self.op is not Op.CONST:
            return self
        return Node(Op.CONTIGUOUS, (self,), None, self.dtype, self.shape, self.device)

    def copy_to(self, device: str) -> Node:
        return Node(Op.COPY, (self.contiguous(),), device, self.dtype, self.shape, device)

    def movement(self, op: Op, arg: Any) -> Node:
        shape, noop, view = _moved(self.view, op, arg)
        if noop:
            return self
        if self.op is Op.CONST and op is not Op.PAD and not self.src:
            return const(self.arg, self.dtype, shape, self.device)  # a constant has no layout to track
        path = self.path + ((op, arg),)
        if view is None:  # not expressible over the base: copy the current view out first
            base = self.contiguous()
            path, view = ((op, arg),), apply_movement(View.contiguous(self.shape), op, arg)
            assert view is not None
        else:
            base = self.base
        if base.op is not Op.CONST and view.is_contiguous and view.shape == base.shape:
            return base
        return Node(Op.VIEW, (base,), (path, view), self.dtype, shape, self.device)


def _moved(view: View, op: Op, arg: Any) -> tuple[Shape, bool, Optional[View]]:
    """(shape after the op, whether it changes nothing, the View after it or None): remembered, since a training
    loop moves the same views the same way every step (computing a View costs microseconds, finding it less)."""
    try:
        return _moved_cached(view, op, arg)
    except TypeError:  # an unhashable argument (a list): compute it
        return _moved_uncached(view, op, arg)


def _moved_uncached(view: View, op: Op, arg: Any) -> tuple[Shape, bool, Optional[View]]:
    if _is_noop(op, arg, view.shape):
        return view.shape, True, view
    return movement_shape(view.shape, op, arg), False, apply_movement(view, op, arg)


_moved_cached = functools.lru_cache(maxsize=16384)(_moved_uncached)


def _fits(value: int, dtype: DType) -> bool:
    bits = dtype.itemsize * 8
    return (-(1 << (bits - 1)) if dtype.kind == "i" else 0) <= value < (1 << (bits - (dtype.kind == "i")))


def _is_noop(op: Op, arg: Any, shape: Shape) -> bool:
    if op in (Op.RESHAPE, Op.EXPAND):
        return tuple(arg) == shape
    if op is Op.PERMUTE:
        return tuple(arg) == tuple(range(len(shape)))
    if op is Op.PAD:
        return all(b == 0 and a == 0 for b, a in arg)
    if op is Op.SHRINK:
        return all((lo, hi, st) == (0, n, 1) for (lo, hi, st), n in zip(arg, shape))
    return op is Op.FLIP and not any(shape[a] > 1 for a in arg)  # WINDOW is never a no-op


def const(value: Any, dtype: DType, shape: Shape, device: str) -> Node:
    """A constant of any shape: no memory, it is folded into the kernels that read it."""
    value = bool(value) if dtype == bool_ else (float(value) if dtype.is_float else int(value))
    return Node(Op.CONST, (), value, dtype, shape, device)
