"""The primitive ops, and what movement ops do to shapes and Views.

Every Tensor method is a composition of these ops. The nodes of every level (the lazy graph, kernel ASTs, the loop
IR) are `uop.UOp`s; this module holds the op vocabulary they share and the pure functions over Views that the lazy
graph's movement ops use.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Optional, TypeVar

from .view import Shape, View


class Op:
    """Every op of every level: sources, unary, binary, ternary, reduce, movement, three graph markers, and the
    loop IR's statements. The lazy graph, the kernel AST and the loop IR share one vocabulary: arithmetic is the
    same op at each level, only its sources change (nodes, then AST nodes, then loop values).

    Members are singletons compared by identity (`op is Op.ADD`), with a `name`. Not an `Enum`: on Python 3.11
    reading `Op.ADD` from an Enum class goes through EnumType's attribute hook (~100 ns, four times a plain class
    attribute), and the engine reads ops in every hot path: building a node, scheduling, lowering."""

    __slots__ = ("name",)

    BUFFER: ClassVar[Op]
    CONST: ClassVar[Op]
    EXP2: ClassVar[Op]
    LOG2: ClassVar[Op]
    SIN: ClassVar[Op]
    SQRT: ClassVar[Op]
    RECIP: ClassVar[Op]
    NEG: ClassVar[Op]
    CAST: ClassVar[Op]
    BITCAST: ClassVar[Op]  # the same bits read as another dtype of the same size (float <-> int)
    ADD: ClassVar[Op]
    MUL: ClassVar[Op]
    FDIV: ClassVar[Op]  # correctly rounded float division (x * recip(y) can be off by an ulp)
    MAX: ClassVar[Op]
    CMPLT: ClassVar[Op]
    CMPEQ: ClassVar[Op]
    IDIV: ClassVar[Op]
    MOD: ClassVar[Op]
    AND: ClassVar[Op]
    OR: ClassVar[Op]
    XOR: ClassVar[Op]
    WHERE: ClassVar[Op]
    SUM: ClassVar[Op]
    RMAX: ClassVar[Op]
    RESHAPE: ClassVar[Op]
    PERMUTE: ClassVar[Op]
    EXPAND: ClassVar[Op]
    PAD: ClassVar[Op]
    SHRINK: ClassVar[Op]
    FLIP: ClassVar[Op]
    WINDOW: ClassVar[Op]  # sliding windows (convolution and pooling): a view with overlapping strides
    GATHER: ClassVar[Op]  # read a buffer at positions computed from data along one dim (arg: that dim)
    VIEW: ClassVar[Op]
    CONTIGUOUS: ClassVar[Op]
    COPY: ClassVar[Op]
    LOAD: ClassVar[Op]  # kernel: read a buffer through a View; loop IR: src = (param, index) or (param, index, valid)
    STORE: ClassVar[Op]  # kernel: write the kernel's output; loop IR: src = (param, index, value) or (..., valid)
    PARAM: ClassVar[Op]
    BOUND: ClassVar[Op]
    RANGE: ClassVar[Op]
    END: ClassVar[Op]
    DEFINE_ACC: ClassVar[Op]
    ACC_UPDATE: ClassVar[Op]
    ACC_FMA: ClassVar[Op]
    ACC_READ: ClassVar[Op]
    DEFINE_LOCAL: ClassVar[Op]
    BARRIER: ClassVar[Op]
    GROUP_FOLD: ClassVar[Op]
    BROADCAST: ClassVar[Op]
    VECTOR: ClassVar[Op]
    LANE: ClassVar[Op]

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"Op.{self.name}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (getattr, (Op, self.name))  # unpickles to the same member (compile workers receive programs)


for _name, _kind in Op.__annotations__.items():
    if _kind.startswith("ClassVar"):
        setattr(Op, _name, Op(_name))


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
