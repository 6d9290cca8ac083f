"""The kernel AST: what the scheduler hands to a device.

A kernel computes one output buffer: loads through views, elementwise ops, at most one reduce,
more elementwise ops on the reduced values, and one store. Buffers are named by index (0 is the
output), so the same AST, and the same compiled program, serves any buffers of the right layout.

The AST is made of `UOp`s (uop.py), hash-consed: LOAD: arg = (buffer index, View). CONST: arg = (value, View);
the View's mask and bounds zero padding (a load reads 0 there, and touches no memory). SUM/RMAX: arg = reduced
axes (kept as size 1). CAST: arg = dtype. RESHAPE: arg = new shape, which only adds or removes size-1 dims. STORE:
arg = (0, contiguous View of the output), src = (value,). GATHER: arg = (buffer index, View of the table, dim,
the gather's size along dim), src = (positions,): the table read at the position its source computes along `dim`
(the View's size there is the table's), at the loop's position along every other dim.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

from .ops import CONVERSIONS, ELEMENTWISE, REDUCE, Op
from .uop import UOp
from .view import Shape, View

AST = UOp  # a kernel's tree: UOps from LOAD and CONST leaves to one STORE (the name says which level is meant)


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
    if n.op in (Op.LOAD, Op.STORE, Op.CONST, Op.GATHER):
        what, view = n.arg[:2]
        where = f"buf{what}" if n.op is not Op.CONST else repr(what)
        mask = f" mask={list(view.mask)}" if view.mask is not None else ""
        mask += "".join(f" {lo}<={'+'.join(f'{c}*i{d}' for d, c in enumerate(coeffs) if c)}<{hi}"
                        for coeffs, lo, hi in view.bounds)
        along = f" along={n.arg[2]}" if n.op is Op.GATHER else ""
        return f"{where} shape={list(view.shape)} strides={list(view.strides)} offset={view.offset}{mask}{along}"
    if n.op in REDUCE:
        return f"axes={list(n.arg)}"
    if n.op in CONVERSIONS:
        return n.arg.name
    if n.op is Op.RESHAPE:
        return f"shape={list(n.arg)}"
    return ""


def view_of(ast: AST) -> View:
    """The View of a LOAD, CONST or STORE node."""
    return ast.arg[1]
