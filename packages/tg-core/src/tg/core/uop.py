"""`UOp`: the one immutable, hash-consed node type of the whole path: the lazy graph, kernel ASTs, the loop IR.

- The lazy graph (what tensors hold): UOps with a `shape` and a `device`, built by `lazy` and the methods below
  (`Node` names them in annotations). A VIEW's `src[0]` is its base and its `arg` is `(path, view)`: the movement
  ops from the base's contiguous layout, and the View they produce; a reduce's `arg` is the reduced axes (kept as
  size 1), a CONST's its value, a CAST's the target dtype, a COPY's the target device. Running a schedule turns a
  node into data (`become_buffer`): the one change a node ever sees, tinygrad's "becomes" done in place, so every
  reader sees the data without rebuilding the graphs that hold it.
- A scheduled kernel is a tree of UOps over `Op.LOAD`s and `Op.CONST`s ending in an `Op.STORE` (kernel.py);
  lowering turns it into UOps of the loop IR (ir.py), where arithmetic keeps its op and only its sources change.
  All levels are the same type, so the rewrite engine (rewrite.py), the checker (check.py) and the printers work
  on any of them.

Values are hash-consed: building a node equal to a live one returns that one. Equal subexpressions are therefore one
object, a kernel built again by the next training step is the same AST (finding its compiled program is an identity
check), and a lowering that builds an index twice gets the one it has. Equality is exact structure: constants
compare by their bits (0.0 and -0.0 differ, NaN equals NaN, 1 and 1.0 and True differ).

Statements of the loop IR that happen at a place in the program (a loop, an accumulator and its updates, local
memory, a barrier) are distinct by that place, not by their parts: each one built is a new node (`UNIQUE`), and so
are the lazy graph's buffers and its placeholders (nodes without sources that are not constants).
"""
from __future__ import annotations

import itertools
import math
import weakref
from typing import Any, Optional

from .dtype import DType, bool_
from .ops import COMPARISON, Op, Path, _moved, apply_movement, postorder
from .view import Shape, View

UNIQUE = frozenset({Op.RANGE, Op.END, Op.DEFINE_ACC, Op.ACC_UPDATE, Op.ACC_FMA, Op.ACC_READ, Op.DEFINE_LOCAL,
                    Op.BARRIER, Op.GROUP_FOLD})
# the ops the lazy graph's hot paths test, as plain names: `Op.CONST` goes through EnumType's attribute hook and
# costs ~100 ns on Python 3.11, several times per node built
_BUFFER, _CONST, _VIEW, _PAD = Op.BUFFER, Op.CONST, Op.VIEW, Op.PAD


class _Fields:
    """A UOp's fields, assignable while `UOp.__new__` builds one: a node is built as this class and then becomes a
    UOp, whose `__setattr__` refuses every change. (Setting eleven fields through `object.__setattr__` cost 2 us a
    node, a third of the time to build an op of the lazy graph; plain assignment and the class change 0.45 us.)"""

    __slots__ = ("__weakref__", "_key", "_walk", "arg", "buffer", "device", "dtype", "op", "shape", "src", "width")

    op: Op
    dtype: DType
    src: tuple[UOp, ...]
    arg: Any
    width: int
    shape: Shape
    device: str
    buffer: Any
    _key: tuple[Any, ...]
    _walk: Optional[list[UOp]]


class UOp(_Fields):
    """One node: `op` applied to `src` with `arg`, of type `dtype` (`void` for statements without a value) and
    `width` vector lanes (1: a scalar; only the loop IR of renderers with vectors has more). Nodes of the lazy graph
    also have a `shape` and a `device` (the empty string elsewhere), and a `buffer` once they are data."""

    __slots__ = ()

    def __new__(cls, op: Op, dtype: DType, src: tuple[UOp, ...] = (), arg: Any = None, width: int = 1,
                shape: Shape = (), device: str = "", buffer: Any = None) -> UOp:
        if device:
            return lazy(op, src, arg, dtype, shape, device, buffer)
        if op in UNIQUE:
            return _built(op, dtype, src, arg, width, (), "", None, (op, next(_serial)))
        # sources are interned already, so they are named by identity: no walk over the tree (and the dtype by
        # name, whose hash is cached, where DType's own is Python code)
        key = (op, dtype.name, _const_key(arg) if op is _CONST else arg, width, *map(id, src))
        ref = _INTERNED.get(key)
        node = ref() if ref is not None else None
        return node if node is not None else _built(op, dtype, src, arg, width, (), "", None, key)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"UOps are immutable (tried to set {name})")

    def __getnewargs__(self) -> tuple[Any, ...]:
        return (self.op, self.dtype, self.src, self.arg, self.width, self.shape, self.device)

    def __getstate__(self) -> None:
        return None

    def __hash__(self) -> int:  # computed when asked: most nodes are only ever found by identity
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return isinstance(other, UOp) and self._key == other._key

    def __repr__(self) -> str:
        if self.device:
            return f"<Node {self.op.name} {self.dtype.name}{list(self.shape)} on {self.device}>"
        lanes = f"x{self.width}" if self.width > 1 else ""
        return f"UOp({self.op.name}, {self.dtype.name}{lanes}, {len(self.src)} src, {self.arg!r})"

    def walk(self) -> list[UOp]:
        """Every distinct node once, sources before users (computed once: kernel and loop UOps never change; do not
        modify it). For kernel ASTs and the loop IR: the lazy graph is walked with `postorder`."""
        if self._walk is None:
            object.__setattr__(self, "_walk", postorder([self], lambda n: n.src))
        assert self._walk is not None
        return self._walk

    # ---- the lazy graph ---------------------------------------------------------------------------
    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def base(self) -> Node:
        return self.src[0] if self.op is _VIEW else self

    @property
    def path(self) -> Path:
        return self.arg[0] if self.op is _VIEW else ()

    @property
    def view(self) -> View:
        return self.arg[1] if self.op is _VIEW else View.contiguous(self.shape)

    @property
    def is_realized(self) -> bool:
        """True when reading this node needs no kernel: a buffer, or a view of one."""
        return self.base.op is _BUFFER

    # ---- building the graph -----------------------------------------------------------------
    def const_like(self, value: Any, dtype: Optional[DType] = None) -> Node:
        return const(value, dtype or self.dtype, self.shape, self.device)

    def alu(self, op: Op, *others: Node) -> Node:
        srcs = (self, *others)
        dtype = bool_ if op in COMPARISON else srcs[-1].dtype
        return lazy(op, srcs, None, dtype, self.shape, self.device)

    def cast(self, dtype: DType) -> Node:
        return self if dtype == self.dtype else lazy(Op.CAST, (self,), dtype, dtype, self.shape, self.device)

    def bitcast(self, dtype: DType) -> Node:
        """The same bits as `dtype`, a float and an integer type of one size (integer pairs are casts)."""
        assert dtype.itemsize == self.dtype.itemsize and dtype.is_float != self.dtype.is_float, (self.dtype, dtype)
        return lazy(Op.BITCAST, (self,), dtype, dtype, self.shape, self.device)

    def reduce(self, op: Op, axes: tuple[int, ...]) -> Node:
        axes = tuple(sorted(a for a in axes if self.shape[a] != 1))
        if not axes:
            return self
        shape = tuple(1 if i in axes else n for i, n in enumerate(self.shape))
        if self.op is _CONST and not self.src:  # a constant reduces to a constant: no kernel, exact count
            count = math.prod(self.shape[a] for a in axes)
            value = self.arg if op is Op.RMAX else (self.arg * count if count else 0)
            if op is Op.RMAX or self.dtype.is_float or self.dtype == bool_ or _fits(value, self.dtype):
                return const(value, self.dtype, shape, self.device)
        return lazy(op, (self,), axes, self.dtype, shape, self.device)

    def contiguous(self) -> Node:
        if self.op is not _VIEW and self.op is not _CONST:
            return self
        return lazy(Op.CONTIGUOUS, (self,), None, self.dtype, self.shape, self.device)

    def copy_to(self, device: str) -> Node:
        return lazy(Op.COPY, (self.contiguous(),), device, self.dtype, self.shape, device)

    def movement(self, op: Op, arg: Any) -> Node:
        shape, noop, view = _moved(self.view, op, arg)
        if noop:
            return self
        if self.op is _CONST and op is not _PAD and not self.src:
            return const(self.arg, self.dtype, shape, self.device)  # a constant has no layout to track
        path = self.path + ((op, arg),)
        if view is None:  # not expressible over the base: copy the current view out first
            base = self.contiguous()
            path, view = ((op, arg),), apply_movement(View.contiguous(self.shape), op, arg)
            assert view is not None
        else:
            base = self.base
        if base.op is not _CONST and view.is_contiguous and view.shape == base.shape:
            return base
        return lazy(_VIEW, (base,), (path, view), self.dtype, shape, self.device)


Node = UOp  # a node of the lazy graph (a UOp with a shape and a device): the name annotations use for them


def lazy(op: Op, src: tuple[UOp, ...], arg: Any, dtype: DType, shape: Shape, device: str,
         buffer: Any = None) -> UOp:
    """A node of the lazy graph: `op` of `src` with `arg`, a value of `dtype` and `shape` on `device`; with `buffer`,
    data already (op BUFFER). Buffers and placeholders (no sources, not a constant) are each a node of their own."""
    shape = tuple(shape)
    if buffer is not None or (not src and op is not _CONST):
        return _built(op, dtype, src, arg, 1, shape, device, buffer, (op, next(_serial)))
    # a VIEW by its movement path: its View follows from the path and the base's shape (and hashing a View is
    # Python code, a path's tuples are not); sources by identity, spelled out for the usual counts (a tuple
    # built from a generator costs twice as much, and this runs for every op of every step)
    arg_key = _const_key(arg) if op is _CONST else arg[0] if op is _VIEW else arg
    n, name = len(src), dtype.name
    key = (op, name, arg_key, shape, device) if n == 0 else (op, name, arg_key, shape, device, id(src[0])) if n == 1 \
        else (op, name, arg_key, shape, device, id(src[0]), id(src[1])) if n == 2 else \
        (op, name, arg_key, shape, device, *map(id, src))
    try:
        ref = _INTERNED.get(key)
    except TypeError:  # an unhashable argument (a list in a movement path): a node of its own
        return _built(op, dtype, src, arg, 1, shape, device, None, (op, next(_serial)))
    node = ref() if ref is not None else None
    return node if node is not None else _built(op, dtype, src, arg, 1, shape, device, None, key)


def _built(op: Op, dtype: DType, src: tuple[UOp, ...], arg: Any, width: int, shape: Shape, device: str,
           buffer: Any, key: tuple[Any, ...]) -> UOp:
    """A new node under `key` (interned unless the key is a serial number)."""
    built = object.__new__(_Fields)
    built.op, built.dtype, built.src, built.arg, built.width = op, dtype, src, arg, width
    built.shape, built.device, built.buffer = shape, device, buffer
    built._key, built._walk = key, None
    built.__class__ = UOp  # from here on immutable
    node: UOp = built  # type: ignore[assignment]
    if len(key) > 2:
        _INTERNED[key] = weakref.ref(node)
        if len(_INTERNED) > _sweep_at:
            _sweep()
    return node


def become_buffer(node: UOp, buffer: Any) -> None:
    """Running a schedule filled `buffer` with `node`'s values: the node becomes that data (op BUFFER, no sources),
    the one change a node ever sees. The buffer is set before the op says BUFFER, so a reader that sees BUFFER finds
    its data; the node leaves the table of live structures (its sources go, so their ids may be reused)."""
    init = object.__setattr__
    init(node, "buffer", buffer)
    init(node, "src", ())
    init(node, "arg", None)
    init(node, "op", _BUFFER)
    init(node, "_walk", None)
    old = node._key
    init(node, "_key", (_BUFFER, next(_serial)))
    ref = _INTERNED.get(old)
    if ref is not None and ref() is node:
        _INTERNED.pop(old, None)


def const(value: Any, dtype: DType, shape: Shape, device: str) -> Node:
    """A constant of any shape: no memory, it is folded into the kernels that read it. An integer outside the
    dtype's range wraps into it, as the type's arithmetic does (torch: a uint8 tensor + -2 adds 254)."""
    if dtype is bool_:
        value = bool(value)
    elif dtype.is_float:
        value = float(value)
    else:
        value = int(value)
        if not _fits(value, dtype):
            bits = dtype.itemsize * 8
            value &= (1 << bits) - 1
            value -= (1 << bits) if dtype.kind == "i" and value >> (bits - 1) else 0
    return lazy(_CONST, (), value, dtype, shape, device)


def _fits(value: int, dtype: DType) -> bool:
    bits = dtype.itemsize * 8
    return (-(1 << (bits - 1)) if dtype.kind == "i" else 0) <= value < (1 << (bits - (dtype.kind == "i")))


def _const_key(arg: Any) -> Any:
    """A constant's value by type and bits; a kernel AST's CONST carries (value, View)."""
    if isinstance(arg, tuple):
        return (*_value_key(arg[0]), *arg[1:])
    return _value_key(arg)


def _value_key(value: Any) -> tuple[type, Any]:
    """(type, value), where == on the value would mix up constants: repr tells -0.0 from 0.0 and makes NaN equal
    itself (1, 1.0 and True differ by type)."""
    return (type(value), value if value == value and value != 0 else repr(value))


# live nodes by structure, by weak reference. A live node keeps its sources alive, so the ids in its key stay
# unique; an entry whose node died is passed over (a lookup finds it dead and builds anew) and swept out when the
# table has doubled since the last sweep (cheaper than a callback per node: a training step lets ~100 nodes go)
_INTERNED: dict[tuple[Any, ...], weakref.ref[UOp]] = {}
_serial = itertools.count()
_sweep_at = 4096


def _sweep() -> None:
    global _sweep_at
    for key, ref in _INTERNED.copy().items():  # a copy made in one step (no Python code runs while it is made):
        # other threads may add nodes meanwhile
        if ref() is None and _INTERNED.get(key) is ref:
            _INTERNED.pop(key, None)
    _sweep_at = max(4096, 2 * len(_INTERNED))
