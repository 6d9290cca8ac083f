"""`UOp`: the one immutable, hash-consed node type of the kernel AST and the loop IR.

A scheduled kernel is a tree of UOps over `Op.LOAD`s and `Op.CONST`s ending in an `Op.STORE` (kernel.py); lowering
turns it into UOps of the loop IR (ir.py), where arithmetic keeps its op and only its sources change. Both levels are
the same type, so the rewrite engine (rewrite.py), the checker (check.py) and the printers work on either.

Values are hash-consed: building a node equal to a live one returns that one. Equal subexpressions are therefore one
object, a kernel built again by the next training step is the same AST (finding its compiled program is an identity
check), and a lowering that builds an index twice gets the one it has. Equality is exact structure: constants
compare by their bits (0.0 and -0.0 differ, NaN equals NaN, 1 and 1.0 and True differ).

Statements of the loop IR that happen at a place in the program (a loop, an accumulator and its updates, local
memory, a barrier) are distinct by that place, not by their parts: each one built is a new node (`UNIQUE`).
"""
from __future__ import annotations

import functools
import itertools
import weakref
from typing import Any, Optional

from .dtype import DType
from .ops import Op, postorder

UNIQUE = frozenset({Op.RANGE, Op.END, Op.DEFINE_ACC, Op.ACC_UPDATE, Op.ACC_FMA, Op.ACC_READ, Op.DEFINE_LOCAL,
                    Op.BARRIER, Op.GROUP_FOLD})


class UOp:
    """One node: `op` applied to `src` with `arg`, of type `dtype` (`void` for statements without a value) and
    `width` vector lanes (1: a scalar; only the loop IR of renderers with vectors has more)."""

    __slots__ = ("__weakref__", "_hash", "_key", "_walk", "arg", "dtype", "op", "src", "width")

    op: Op
    dtype: DType
    src: tuple[UOp, ...]
    arg: Any
    width: int
    _key: tuple[Any, ...]
    _hash: int
    _walk: Optional[list[UOp]]

    def __new__(cls, op: Op, dtype: DType, src: tuple[UOp, ...] = (), arg: Any = None,
                width: int = 1) -> UOp:
        if op in UNIQUE:
            key: tuple[Any, ...] = (op, next(_serial))
        else:  # sources are interned already, so they are named by identity: no walk over the tree (and the
            # dtype by name, whose hash is cached, where DType's own is Python code)
            key = (op, dtype.name, _const_key(arg) if op is Op.CONST else arg, width, *map(id, src))
            ref = _INTERNED.get(key)
            node = ref() if ref is not None else None
            if node is not None:
                return node
        node = super().__new__(cls)
        init = object.__setattr__  # past the __setattr__ that keeps nodes immutable
        init(node, "op", op)
        init(node, "dtype", dtype)
        init(node, "src", src)
        init(node, "arg", arg)
        init(node, "width", width)
        init(node, "_key", key)
        init(node, "_hash", hash(key))
        init(node, "_walk", None)
        if op not in UNIQUE:
            _INTERNED[key] = weakref.ref(node, functools.partial(_forget, key))
        return node

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"UOps are immutable (tried to set {name})")

    def __getnewargs__(self) -> tuple[Any, ...]:
        return (self.op, self.dtype, self.src, self.arg, self.width)

    def __getstate__(self) -> None:
        return None

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return isinstance(other, UOp) and self._hash == other._hash and self._key == other._key

    def __repr__(self) -> str:
        lanes = f"x{self.width}" if self.width > 1 else ""
        return f"UOp({self.op.name}, {self.dtype.name}{lanes}, {len(self.src)} src, {self.arg!r})"

    def walk(self) -> list[UOp]:
        """Every distinct node once, sources before users (computed once: UOps never change; do not modify it)."""
        if self._walk is None:
            object.__setattr__(self, "_walk", postorder([self], lambda n: n.src))
        assert self._walk is not None
        return self._walk


def _const_key(arg: Any) -> Any:
    """A constant's value by type and bits (repr tells -0.0 from 0.0 and makes NaN equal itself); a kernel AST's
    CONST carries (value, View)."""
    if isinstance(arg, tuple):
        return (type(arg[0]), repr(arg[0]), *arg[1:])
    return (type(arg), repr(arg))


# live nodes by structure. A node keeps its sources alive, so the ids in a live node's key stay unique; a node's
# entry goes when it dies (its weak reference's callback)
_INTERNED: dict[tuple[Any, ...], weakref.ref[UOp]] = {}
_serial = itertools.count()


def _forget(key: tuple[Any, ...], ref: weakref.ref[UOp]) -> None:
    if _INTERNED.get(key) is ref:  # not a newer node's entry under the same key
        del _INTERNED[key]
