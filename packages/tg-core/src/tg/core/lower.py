"""Lowering: a kernel AST -> a linear loop program (`ir.Program`) that compiled backends render.

The kernel's iteration space is its full shape: one loop per dim of size > 1, the output dims
outside and the reduced dims inside. Because every View in the AST already has the shape of that
space (or of the reduced output), each load's index is `offset + sum(var * stride)` and its
validity a conjunction of range checks: no division or modulo is ever needed.
"""
from __future__ import annotations

import math
from typing import Any, Optional

from . import dtype as dt
from .dtype import DType
from .ir import INDEX, U, UOp
from .ir import Program as Program
from .kernel import AST, Kernel
from .ops import REDUCE, Op
from .view import View


def lower(kernel: Kernel) -> Program:
    """The loop program for `kernel`: `kernel(start, end, out, in1, ...)` over the outermost loop."""
    return _Lowerer(kernel).run()


def reduce_identity(op: Op, dtype: DType) -> Any:
    if op is Op.SUM:
        return False if dtype == dt.bool_ else (0.0 if dtype.is_float else 0)
    if dtype.is_float:
        return -math.inf
    return False if dtype == dt.bool_ else (0 if dtype.kind == "u" else -(1 << (8 * dtype.itemsize - 1)))


class _Lowerer:
    def __init__(self, kernel: Kernel):
        self.kernel = kernel
        red = kernel.reduce
        self.reduce = red
        full = kernel.full_shape
        axes = set(red.arg) if red is not None else set()
        self.out_dims = [d for d, n in enumerate(full) if n != 1 and d not in axes]
        self.red_dims = [d for d in sorted(axes) if full[d] != 1]
        self.uops: list[UOp] = []
        self.vars: dict[int, UOp] = {}
        self.values: dict[int, UOp] = {}
        self.params: list[UOp] = []

    def emit(self, op: U, dtype: Optional[DType], src: tuple[UOp, ...] = (), arg: Any = None) -> UOp:
        u = UOp(op, dtype, src, arg)
        self.uops.append(u)
        return u

    def const(self, value: Any, dtype: DType) -> UOp:
        return self.emit(U.CONST, dtype, (), value)

    # ---- index arithmetic -------------------------------------------------------------------------
    def dim_vars(self, shape: tuple[int, ...]) -> list[Optional[UOp]]:
        """The loop variable for each dim of `shape` (None for size-1 dims)."""
        if shape == self.kernel.full_shape:
            return [self.vars.get(d) for d in range(len(shape))]
        out = iter(self.vars[d] for d in self.out_dims)
        return [next(out) if n != 1 else None for n in shape]

    def index(self, view: View) -> tuple[UOp, Optional[UOp]]:
        """(index, valid) of a view at the current loop position; valid is None when always true."""
        vars_ = self.dim_vars(view.shape)
        terms: list[UOp] = []
        for v, stride in zip(vars_, view.strides):
            if v is not None and stride != 0:
                terms.append(v if stride == 1 else self.alu(Op.MUL, v, self.const(stride, INDEX)))
        idx = self.const(view.offset, INDEX) if not terms or view.offset else None
        for t in terms:
            idx = t if idx is None else self.alu(Op.ADD, idx, t)
        assert idx is not None
        valid: Optional[UOp] = None
        for v, (lo, hi), n in zip(vars_, view.mask or (), view.shape):
            checks = []
            if lo > 0:
                checks.append(self.alu(Op.CMPLT, self.const(lo - 1, INDEX), v))  # type: ignore[arg-type]
            if hi < n:
                checks.append(self.alu(Op.CMPLT, v, self.const(hi, INDEX)))  # type: ignore[arg-type]
            for c in checks:
                valid = c if valid is None else self.alu(Op.AND, valid, c)
        return idx, valid

    def alu(self, op: Op, *src: UOp) -> UOp:
        dtype = dt.bool_ if op in (Op.CMPLT, Op.CMPEQ) else src[-1].dtype
        return self.emit(U.ALU, dtype, src, op)

    # ---- the program -----------------------------------------------------------------------------
    def run(self) -> Program:
        k = self.kernel
        bufs = [k.ast.dtype] + self.input_dtypes()
        self.params = [self.emit(U.PARAM, d, (), i) for i, d in enumerate(bufs)]
        start, end = self.emit(U.BOUND, INDEX, (), "start"), self.emit(U.BOUND, INDEX, (), "end")
        loops = []
        for i, d in enumerate(self.out_dims):
            bounds = (start, end) if i == 0 else (self.const(0, INDEX), self.const(k.full_shape[d], INDEX))
            self.vars[d] = self.emit(U.RANGE, INDEX, bounds, d)
            loops.append(self.vars[d])
        value = self.value(k.ast.src[0])
        idx, _ = self.index(View.contiguous(k.out_shape))
        self.emit(U.STORE, None, (self.params[0], idx, value))
        for loop in reversed(loops):
            self.emit(U.END, None, (loop,))
        outer = k.full_shape[self.out_dims[0]] if self.out_dims else 1
        name = k.name or "kernel"
        return Program(name, self.uops, bufs, outer, max(1, math.prod(k.full_shape) // max(outer, 1)))

    def input_dtypes(self) -> list[DType]:
        found: dict[int, DType] = {}
        for n in self.kernel.ast.walk():
            if n.op is Op.LOAD:
                found[n.arg[0]] = n.dtype
        return [found[i] for i in range(1, len(found) + 1)]

    def value(self, n: AST) -> UOp:
        if id(n) not in self.values:
            self.values[id(n)] = self.lower_node(n)
        return self.values[id(n)]

    def lower_node(self, n: AST) -> UOp:
        if n.op is Op.LOAD:
            buf, view = n.arg
            if view.is_empty_mask:
                return self.const(reduce_identity(Op.SUM, n.dtype), n.dtype)
            idx, valid = self.index(view)
            return self.emit(U.LOAD, n.dtype, (self.params[buf], idx) + ((valid,) if valid else ()))
        if n.op is Op.CONST:
            value, view = n.arg
            c = self.const(value, n.dtype)
            if view.mask is None:
                return c
            if view.is_empty_mask:
                return self.const(reduce_identity(Op.SUM, n.dtype), n.dtype)
            _, valid = self.index(view)
            assert valid is not None
            return self.alu(Op.WHERE, valid, c, self.const(reduce_identity(Op.SUM, n.dtype), n.dtype))
        if n.op in REDUCE:
            return self.lower_reduce(n)
        if n.op is Op.RESHAPE:  # only adds or removes size-1 dims: the loop position is the same
            return self.value(n.src[0])
        src = tuple(self.value(s) for s in n.src)
        if n.op is Op.CAST:
            return self.emit(U.CAST, n.dtype, src)
        return self.emit(U.ALU, n.dtype, src, n.op)

    def lower_reduce(self, n: AST) -> UOp:
        acc = self.emit(U.DEFINE_ACC, n.dtype, (), reduce_identity(n.op, n.dtype))
        loops = []
        for d in self.red_dims:
            self.vars[d] = self.emit(U.RANGE, INDEX, (self.const(0, INDEX), self.const(self.kernel.full_shape[d], INDEX)), d)
            loops.append(self.vars[d])
        self.emit(U.ACC_UPDATE, n.dtype, (acc, self.value(n.src[0])), Op.ADD if n.op is Op.SUM else Op.MAX)
        for loop in reversed(loops):
            self.emit(U.END, None, (loop,))
            del self.vars[loop.arg]
        return self.emit(U.ACC_READ, n.dtype, (acc,))
