"""The kernel AST: what the scheduler hands to a device.

A kernel computes one output buffer: loads through views, elementwise ops, at most one reduce,
more elementwise ops on the reduced values, and one store. Buffers are named by index (0 is the
output), so the same AST, and the same compiled program, serves any buffers of the right layout.
"""
from __future__ import annotations

import functools
import math
import weakref
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Optional

from .dtype import DType
from .ops import ELEMENTWISE, REDUCE, Op, postorder
from .view import Shape, View


class AST:
    """One node of a kernel AST.

    LOAD: arg = (buffer index, View). CONST: arg = (value, View); the View's mask zeroes padding.
    SUM/RMAX: arg = reduced axes (kept as size 1). CAST: arg = dtype. RESHAPE: arg = new shape, which
    only adds or removes size-1 dims. STORE: arg = (0, contiguous View of the output), src = (value,).

    Nodes are immutable and hash-consed: building a node equal to a live one returns that one, so a kernel's AST
    built again by the next training step is the same object, and finding its compiled program in a device's cache
    is an identity check instead of a walk over both trees. Equality is exact structure: constants compare by their
    bits (0.0 and -0.0 differ, NaN equals NaN, 1 and 1.0 and True differ).
    """

    __slots__ = ("__weakref__", "_hash", "_key", "_walk", "arg", "dtype", "op", "src")

    op: Op
    src: tuple[AST, ...]
    arg: Any
    dtype: DType
    _key: tuple[Any, ...]
    _hash: int
    _walk: Optional[list[AST]]

    def __new__(cls, op: Op, src: tuple[AST, ...], arg: Any, dtype: DType) -> AST:
        # sources are interned already, so they are named by identity: a key is hashed without walking the tree
        key = (op, tuple(map(id, src)), (type(arg[0]), repr(arg[0]), arg[1]) if op is Op.CONST else arg, dtype)
        ref = _INTERNED.get(key)
        node = ref() if ref is not None else None
        if node is not None:
            return node
        node = super().__new__(cls)
        for name, value in (("op", op), ("src", src), ("arg", arg), ("dtype", dtype), ("_key", key),
                            ("_hash", hash(key)), ("_walk", None)):
            object.__setattr__(node, name, value)
        _INTERNED[key] = weakref.ref(node, functools.partial(_forget, key))
        return node

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"AST nodes are immutable (tried to set {name})")

    def __getnewargs__(self) -> tuple[Any, ...]:
        return (self.op, self.src, self.arg, self.dtype)

    def __getstate__(self) -> None:
        return None

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return isinstance(other, AST) and self._hash == other._hash and self._key == other._key

    def __repr__(self) -> str:
        return f"AST({self.op.name}, {len(self.src)} src, {self.arg!r}, {self.dtype.name})"

    def walk(self) -> list[AST]:
        """Every distinct node once, sources before users (computed once: ASTs never change; do not modify it)."""
        if self._walk is None:
            object.__setattr__(self, "_walk", postorder([self], lambda n: n.src))
        assert self._walk is not None
        return self._walk


# live AST nodes by structure. A node keeps its sources alive, so the ids in a live node's key stay unique; a
# node's entry goes when it dies (its weak reference's callback)
_INTERNED: dict[tuple[Any, ...], weakref.ref[AST]] = {}


def _forget(key: tuple[Any, ...], ref: weakref.ref[AST]) -> None:
    if _INTERNED.get(key) is ref:  # not a newer node's entry under the same key
        del _INTERNED[key]


@dataclass
class Kernel:
    """A scheduled kernel: its AST and the shapes a device needs to run it."""

    ast: AST
    out_shape: Shape
    full_shape: Shape  # the iteration space: the reduce input's shape, or out_shape without a reduce
    name: str = field(default="")

    @cached_property
    def reduce(self) -> AST | None:
        return next((n for n in self.ast.walk() if n.op in REDUCE), None)

    @cached_property
    def flops(self) -> int:
        """Scalar ALU ops (a multiply-add counts two), for the counters and TG_DEBUG."""
        red = self.reduce
        inner = {id(n) for n in red.walk()} if red is not None else set()
        total = 0
        for n in self.ast.walk():
            if n.op in ELEMENTWISE or n.op in REDUCE:
                total += math.prod(self.full_shape if id(n) in inner else self.out_shape)
        return total

    def describe(self) -> str:
        """A linear listing of the AST, one line per node (shown at TG_DEBUG=3)."""
        names: dict[int, str] = {}
        lines = []
        for i, n in enumerate(self.ast.walk()):
            names[id(n)] = f"%{i}"
            args = " ".join(names[id(s)] for s in n.src)
            extra = _describe_arg(n)
            lines.append(f"  %{i} = {n.op.name.lower()} {n.dtype.name} {args} {extra}".rstrip())
        return "\n".join(lines)


def _describe_arg(n: AST) -> str:
    if n.op in (Op.LOAD, Op.STORE, Op.CONST):
        what, view = n.arg
        where = f"buf{what}" if n.op is not Op.CONST else repr(what)
        mask = f" mask={list(view.mask)}" if view.mask is not None else ""
        return f"{where} shape={list(view.shape)} strides={list(view.strides)} offset={view.offset}{mask}"
    if n.op in REDUCE:
        return f"axes={list(n.arg)}"
    if n.op is Op.CAST:
        return n.arg.name
    if n.op is Op.RESHAPE:
        return f"shape={list(n.arg)}"
    return ""


def view_of(ast: AST) -> View:
    """The View of a LOAD, CONST or STORE node."""
    return ast.arg[1]
