"""Lowering: a kernel AST -> a linear loop program (`ir.Program`) that compiled backends render.

The kernel's iteration space is its full shape: one loop per dim of size > 1, the output dims
outside and the reduced dims inside. Because every View in the AST already has the shape of that
space (or of the reduced output), each load's index is `offset + sum(var * stride)` and its
validity a conjunction of range checks: no division or modulo is ever needed.

Optimisation (`opt.py` chooses, this module applies): an output dim can be *upcast* by U: its loop
steps by U and the kernel body is emitted U times with the dim at `outer*U + u`. Upcasting two dims
of a contraction gives a register tile of accumulators, each load reused across the tile.

For renderers with vector types (`vectorize=True`), a contraction's upcast innermost output dim becomes the
lanes of vector values instead of copies of the body: a load that walks that dim one element per lane is one
vector load, one that does not move along it stays a scalar (broadcast where it meets a vector), and any other
(strided or masked along it) is gathered lane by lane. A 16x4 tile is then 4 vector accumulators, not 64.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Optional

from . import dtype as dt
from . import softmath
from .dtype import DType
from .ir import INDEX, Program
from .kernel import AST, Kernel
from .ops import ALU, CONVERSIONS, REDUCE, Op
from .opt import Opts, choose_opts, local_operands
from .simplify import INDEX_RULES
from .uop import UOp
from .view import View

__all__ = ["Program", "lower", "reduce_identity"]

Combo = tuple[tuple[int, int], ...]  # (dim, offset) for each upcast dim: one copy of the kernel body


def lower(kernel: Kernel, opts: Optional[Opts] = None, gpu: bool = False, narrow: bool = False,
          vectorize: bool = False, soft_math: bool = False) -> Program:
    """The loop program for `kernel`: `kernel(start, end, out, in1, ...)` over the outermost loop.

    `opts` (upcasts, loop order, flattening) default to what `opt.choose_opts` picks for the target;
    `vectorize` lets a contraction's tile use vector values (for renderers that have them; on GPUs: vector
    accesses where operands are staged in local memory); `soft_math` writes
    exp2/log2 of float32 as arithmetic (softmath.py).
    """
    chosen = choose_opts(kernel, gpu) if opts is None else opts
    index = dt.int32 if narrow and _fits_int32(kernel) else INDEX
    return _Lowerer(kernel, chosen, index, vectorize and not gpu, soft_math, wide_staging=vectorize and gpu).run()


def _fits_int32(kernel: Kernel) -> bool:
    """Whether every index the kernel computes (loop positions, buffer offsets) fits in 32 bits: on GPUs
    32-bit index arithmetic is native and 64-bit is emulated."""
    limit = 2**31 - 1
    axes = set(kernel.reduce.arg) if kernel.reduce is not None else set()
    if math.prod(n for d, n in enumerate(kernel.full_shape) if d not in axes) > limit or max(kernel.full_shape,
                                                                                          default=0) > limit:
        return False  # the flattened output loop, or one loop, would not fit
    views = [n.arg[1] for n in kernel.ast.walk() if n.op in (Op.LOAD, Op.STORE, Op.CONST, Op.GATHER)]
    return all(abs(v.offset) + sum((n - 1) * abs(s) for n, s in zip(v.shape, v.strides)) <= limit for v in views)


# what a vectorised kernel may contain: ops every vector renderer has lane by lane, on float dtypes
VECTOR_OPS = frozenset({Op.LOAD, Op.CONST, Op.RESHAPE, Op.SUM, Op.RMAX, Op.MAX, Op.ADD, Op.MUL, Op.NEG, Op.CMPLT,
                        Op.CMPEQ, Op.WHERE, Op.FDIV})
VECTOR_DTYPES = frozenset({dt.float32, dt.float64, dt.bool_})
# lanes a vector may have: other widths are split unevenly into registers (a conv's 14-wide rows as <14 x float>
# ran at 10-13 GFLOP/s on AVX2, against 16-24 as scalar copies that LLVM's SLP vectoriser packs)
VECTOR_WIDTHS = (4, 8, 16, 32)


# what a program does; any other UOp is a value, kept only while something uses it
EFFECTS = {Op.PARAM, Op.BOUND, Op.RANGE, Op.END, Op.STORE, Op.DEFINE_ACC, Op.ACC_UPDATE, Op.ACC_FMA, Op.DEFINE_LOCAL,
           Op.BARRIER, Op.GROUP_FOLD}


def _live(uops: list[UOp]) -> list[UOp]:
    """`uops` without the values nothing uses, such as the pieces of an index the simplifier joined again."""
    live: set[int] = set()
    for u in reversed(uops):  # users come after their sources
        if u.op in EFFECTS or id(u) in live:
            live.add(id(u))
            live.update(id(s) for s in u.src)
    return [u for u in uops if id(u) in live]


def vector_dim(kernel: Kernel, opts: Opts) -> Optional[int]:
    """The full dim whose upcast becomes vector lanes: the innermost output dim (so stores are contiguous) of a
    register-tiled contraction, or else a reduce dim upcast into a row's accumulators (opt.row_unroll: the lanes
    then sum every W-th element, and are folded in lane order after the loop), where the kernel's ops are all in
    VECTOR_OPS and its loads include one contiguous along that dim."""
    red = kernel.reduce
    if red is None or opts.local or opts.flatten:
        return None
    full, axes = kernel.full_shape, set(red.arg)
    out_dims = [d for d, n in enumerate(full) if n != 1 and d not in axes]
    rows = [d for d in sorted(axes) if full[d] != 1 and opts.upcasts.get(d) in VECTOR_WIDTHS]
    candidates = [out_dims[-1]] if out_dims and opts.upcasts.get(out_dims[-1]) in VECTOR_WIDTHS else []
    if rows and red.op in (Op.SUM, Op.RMAX):
        candidates.append(rows[-1])
    if not candidates:
        return None
    nodes = list(kernel.ast.walk())
    if any((n.op not in VECTOR_OPS and n.op is not Op.STORE) or n.dtype not in VECTOR_DTYPES for n in nodes):
        return None
    loads = [n.arg[1] for n in nodes if n.op is Op.LOAD and n.arg[1].shape == full]
    return next((v for v in candidates if any(view.strides[v] == 1 for view in loads)), None)


VECTOR_STAGING = 4  # elements per vector access of wide local staging (16 bytes of float32)
GROUP_UNROLL = 4  # positions each work-item of a cooperative reduction folds per turn (see lower_reduce_group)
SUM_BLOCK = 4096  # terms per partial sum in a long float reduction (see lower_reduce)


def reduce_identity(op: Op, dtype: DType) -> Any:
    """The value a reduction starts from (0 for sums, the lowest value for max)."""
    if op is Op.SUM:
        return False if dtype == dt.bool_ else (0.0 if dtype.is_float else 0)
    if dtype.is_float:
        return -math.inf
    return False if dtype == dt.bool_ else (0 if dtype.kind == "u" else -(1 << (8 * dtype.itemsize - 1)))


# ops whose value depends on their sources only
PURE = ALU | CONVERSIONS | {Op.CONST, Op.BROADCAST, Op.VECTOR, Op.LANE}


class _Lowerer:
    def __init__(self, kernel: Kernel, opts: Opts, index: DType = INDEX, vectorize: bool = False,
                 soft_math: bool = False, wide_staging: bool = False):
        self.index_dtype = index
        self.soft_math = soft_math
        self.vdim = vector_dim(kernel, opts) if vectorize else None  # the dim held in vector lanes
        self.width = opts.upcasts[self.vdim] if self.vdim is not None else 1
        # the lanes run along a reduce dim: the accumulators are vectors, folded to scalars after the loop
        self.lanes_reduce = self.vdim is not None and kernel.reduce is not None and self.vdim in kernel.reduce.arg
        self.kernel, self.upcasts, self.flatten, self.block = kernel, opts.upcasts, opts.flatten, opts.block
        self.local = opts.local
        self.group = opts.group  # work-items per output of a cooperative reduction (GPUs)
        self.lane: Optional[UOp] = None  # group mode: this work-item's place in its group
        self.guard: Optional[UOp] = None  # group mode: whether this work-item's reduce position is inside the reduce
        # (A, B, i, j, k) of a contraction staged in local memory
        self.operands = local_operands(kernel) if self.local else None
        # local staging with vector accesses (renderers that spell them), where the register tile and chunk come in
        # runs of 4 and the operands are 4-byte types (a local array is 16-byte aligned: 4 of them to a vector)
        self.wide = wide_staging and self.operands is not None and opts.local is not None and all(
            u % VECTOR_STAGING == 0 for u in opts.upcasts.values()) and opts.local[2] % VECTOR_STAGING == 0 and \
            all(load.dtype.itemsize == 4 for load in self.operands[:2])
        self.coords: tuple[UOp, ...] = ()  # blocked_loop: (row in patch, col in patch, patch row, patch col)
        self.tile_values: dict[int, UOp] = {}  # local mode: AST load -> the value read from local memory
        self.reduce = kernel.reduce
        full = kernel.full_shape
        axes = set(self.reduce.arg) if self.reduce is not None else set()
        self.out_dims = [d for d, n in enumerate(full) if n != 1 and d not in axes]
        self.loop_order = opts.order or self.out_dims  # the order of the output loops, outermost first
        self.red_dims = [d for d in sorted(axes) if full[d] != 1]
        # the program under construction: one block per open loop, each appended to its parent when it ends
        self.blocks: list[list[UOp]] = [[]]
        self.level: dict[int, int] = {}  # id(uop) -> the loop depth of the block it was placed in
        self.scopes = [0]  # a number for each open block: the arg of the loads read in it
        self.serial = itertools.count(1)  # numbers for blocks and for loads and stores that stay apart
        self.rewritten: dict[int, tuple[UOp, UOp]] = {}  # id(value) -> (value, what the index rules made of it)
        self.loop_vars: dict[int, UOp] = {}  # dim -> loop variable (the outer part, for upcast dims)
        self.combo: dict[int, int] = {}  # upcast dim -> offset of the body copy being emitted
        self.values: dict[tuple[int, Combo], UOp] = {}
        self.acc_reads: dict[Combo, UOp] = {}
        self.params: list[UOp] = []
        self.wrapping: set[int] = set()  # signed-int data ops that must wrap (see Program.wrapping)
        # (loop variable, stride) terms -> their sum (the loop variables are never freed, so their ids stay unique)
        self.index_sums: dict[tuple[tuple[int, int], ...], Optional[UOp]] = {}

    # ---- building the program: value numbering, simplification, hoisting ----------------------------------
    def emit(self, op: Op, dtype: DType, src: tuple[UOp, ...] = (), arg: Any = None,
             simplify: bool = False, width: int = 1) -> UOp:
        """Append one UOp. A pure value (constant, arithmetic, a load of an input) is hash-consed: one the program
        already has is that one, not computed again; arithmetic is placed in the outermost loop whose variables it
        uses (so loop invariants are computed once per outer iteration); `simplify` applies the index rules first.

        A value's place follows from its parts: it is in the block of its innermost source. Loads are the
        exception (they stay in the loop they are read in), so a load's arg is its block's number: equal loads
        in two loops are two values. Loads of local memory and stores are statements: each gets a number of
        its own."""
        if op is Op.RANGE:  # opens a block: what is hoisted out of the loop goes before it, in the parent block
            u = UOp(op, dtype, src, arg, width)
            self.blocks.append([])
            self.scopes.append(next(self.serial))
            self.place(u, len(self.blocks) - 1)
            return u
        if op is Op.END:
            u = UOp(op, dtype, src, arg, width)
            self.place(u, len(self.blocks) - 1)
            block = self.blocks.pop()
            self.blocks[-1].extend(block)
            self.scopes.pop()
            return u
        if not self.is_pure(op, src):
            u = UOp(op, dtype, src, next(self.serial) if op in (Op.LOAD, Op.STORE) else arg, width)
            self.place(u, len(self.blocks) - 1)
            return u
        u = UOp(op, dtype, src, self.scopes[-1] if op is Op.LOAD else arg, width)
        if id(u) in self.level:  # the program has it, in a block still open (its parts are)
            return u
        if (done := self.rewritten.get(id(u))) is not None:
            return done[1]
        depth = len(self.blocks) - 1 if op is Op.LOAD else max((self.level[id(s)] for s in src), default=0)
        if simplify and (better := INDEX_RULES.apply(u, self)) is not None:
            self.rewritten[id(u)] = (u, better)  # kept alive with it, so the id stays u's; the rules run once
            return better
        self.place(u, depth)
        return u

    def place(self, u: UOp, depth: int) -> None:
        self.blocks[depth].append(u)
        self.level[id(u)] = depth

    @staticmethod
    def is_pure(op: Op, src: tuple[UOp, ...]) -> bool:
        """Values that only depend on their sources: loads of inputs (a kernel never writes them; local memory
        changes at barriers, so it is excluded), constants, arithmetic and casts."""
        if op is Op.LOAD:
            return src[0].op is Op.PARAM and src[0].arg != 0
        return op in PURE

    def widen(self, u: UOp) -> UOp:
        """`u` as a vector of the kernel's width (a scalar is broadcast)."""
        return u if u.width == self.width else self.emit(Op.BROADCAST, u.dtype, (u,), width=self.width)

    def const(self, value: Any, dtype: DType) -> UOp:
        return self.emit(Op.CONST, dtype, (), value)

    def alu(self, op: Op, *src: UOp) -> UOp:
        """Index arithmetic (and masks): simplified by the rules of simplify.py."""
        dtype = dt.bool_ if op in (Op.CMPLT, Op.CMPEQ) else src[-1].dtype
        return self.emit(op, dtype, src, simplify=True)

    # ---- index arithmetic -------------------------------------------------------------------------
    def dim_affine(self, d: int) -> Optional[tuple[Optional[UOp], int, int]]:
        """The index along full dim d at the current loop position and body copy, as (var, mult, off) meaning
        var * mult + off (var None: the constant off); None for a dim of size 1."""
        if d in self.upcasts:
            if d not in self.loop_vars:  # the whole dim is upcast: no loop
                return None, 0, self.combo[d]
            return self.loop_vars[d], self.upcasts[d], self.combo[d]
        v = self.loop_vars.get(d)
        return (v, 1, 0) if v is not None else None

    def dim_value(self, d: int) -> Optional[UOp]:
        """The index along full dim d as a value (None: size 1)."""
        a = self.dim_affine(d)
        if a is None:
            return None
        v, mult, off = a
        if v is None:
            return self.const(off, self.index_dtype)
        c = lambda value: self.const(value, self.index_dtype)  # noqa: E731
        return self.alu(Op.ADD, self.alu(Op.MUL, v, c(mult)), c(off))

    def dims_of(self, shape: tuple[int, ...]) -> list[Optional[int]]:
        """The full dim behind each dim of `shape`: the full shape, or the reduced output's shape."""
        if shape == self.kernel.full_shape:
            return list(range(len(shape)))
        out = iter(self.out_dims)
        return [next(out) if n != 1 else None for n in shape]

    def dim_values(self, shape: tuple[int, ...]) -> list[Optional[UOp]]:
        """The index for each dim of `shape`: the full shape, or the reduced output's shape."""
        return [self.dim_value(d) if d is not None else None for d in self.dims_of(shape)]

    def index(self, view: View) -> tuple[UOp, Optional[UOp]]:
        """(index, valid) of a view at the current position; valid is None when always true.

        The index is written as (sum of loop variable * stride, in dim order) + constant: every copy of an
        unrolled body shares the sum and adds its own constant."""
        dims = self.dims_of(view.shape)
        const, terms = view.offset, []
        for d, stride in zip(dims, view.strides):
            a = self.dim_affine(d) if d is not None and stride != 0 else None
            if a is not None:
                v, mult, off = a
                const += stride * off
                if v is not None:
                    terms.append((v, stride * mult))
        key = tuple((id(v), step) for v, step in terms)  # the same sum in every copy of the body: built once
        if (idx := self.index_sums.get(key)) is None and terms:
            for v, step in terms:
                term = v if step == 1 else self.alu(Op.MUL, v, self.const(step, self.index_dtype))
                idx = term if idx is None else self.alu(Op.ADD, idx, term)
            self.index_sums[key] = idx
        if const:
            c = self.const(const, self.index_dtype)
            idx = c if idx is None else self.alu(Op.ADD, idx, c)
        values = [self.dim_value(d) if d is not None else None for d in dims] if view.mask else []
        valid: Optional[UOp] = None
        for v, (lo, hi), n in zip(values, view.mask or (), view.shape):
            assert v is not None or (lo, hi) == (0, 1)
            for check in ([self.alu(Op.CMPLT, self.const(lo - 1, self.index_dtype), v)] if lo > 0 and v else []) + \
                         ([self.alu(Op.CMPLT, v, self.const(hi, self.index_dtype))] if hi < n and v else []):
                valid = check if valid is None else self.alu(Op.AND, valid, check)
        for check in self.bound_checks(view, dims):
            valid = check if valid is None else self.alu(Op.AND, valid, check)
        return (idx if idx is not None else self.const(0, self.index_dtype)), valid

    def bound_checks(self, view: View, dims: list[Optional[int]]) -> list[UOp]:
        """The comparisons that keep a position inside each of the view's bounds (lo <= sum(c * index) < hi)."""
        checks = []
        for coeffs, lo, hi in view.bounds:
            const, total = 0, None
            for d, c in zip(dims, coeffs):
                a = self.dim_affine(d) if c and d is not None else None
                if a is None:
                    continue
                v, mult, off = a
                const += c * off
                if v is not None:
                    term = self.alu(Op.MUL, v, self.const(c * mult, self.index_dtype))
                    total = term if total is None else self.alu(Op.ADD, total, term)
            if total is None:
                checks += [] if lo <= const < hi else [self.const(False, dt.bool_)]
                continue
            checks += [self.alu(Op.CMPLT, self.const(lo - const - 1, self.index_dtype), total),
                       self.alu(Op.CMPLT, total, self.const(hi - const, self.index_dtype))]
        return checks

    # ---- the program -----------------------------------------------------------------------------
    def loop(self, d: int, bounds: Optional[tuple[UOp, UOp]] = None) -> Optional[UOp]:
        """Open the loop over dim d (its outer part when upcast); None when there is nothing to loop."""
        size = self.kernel.full_shape[d] // self.upcasts.get(d, 1)
        if bounds is None:
            if size == 1:
                return None
            bounds = (self.const(0, self.index_dtype), self.const(size, self.index_dtype))
        self.loop_vars[d] = self.emit(Op.RANGE, self.index_dtype, bounds, d)
        return self.loop_vars[d]

    def flat_size(self) -> int:
        return math.prod(self.kernel.full_shape[d] // self.upcasts.get(d, 1) for d in self.loop_order)

    def flat_loop(self, bounds: tuple[UOp, UOp]) -> UOp:
        """One loop over every output position; each dim's index is recovered by division and modulo."""
        flat = self.emit(Op.RANGE, self.index_dtype, bounds, -1)
        if self.block and len(self.loop_order) >= 2:
            return self.blocked_loop(flat)
        position = flat
        if self.group:  # a group of work-items per output: the lane is the place in the group
            self.lane = self.alu(Op.MOD, flat, self.const(self.group, self.index_dtype))
            position = self.alu(Op.IDIV, flat, self.const(self.group, self.index_dtype))
        stride = 1
        for d in reversed(self.loop_order):  # the innermost dim varies fastest: neighbours read neighbours
            size = self.kernel.full_shape[d] // self.upcasts.get(d, 1)
            v = position if stride == 1 else self.alu(Op.IDIV, position, self.const(stride, self.index_dtype))
            outermost = d == self.loop_order[0]
            self.loop_vars[d] = v if outermost else self.alu(Op.MOD, v, self.const(size, self.index_dtype))
            stride *= size
        return flat

    def blocked_loop(self, flat: UOp) -> UOp:
        """Like flat_loop, but runs of rows*cols consecutive positions cover a patch of the last two dims."""
        assert self.block is not None
        rows, cols = self.block
        *outer, i, j = self.loop_order
        size = {d: self.kernel.full_shape[d] // self.upcasts.get(d, 1) for d in self.loop_order}
        c = lambda v: self.const(v, self.index_dtype)  # noqa: E731
        in_j = self.alu(Op.MOD, flat, c(cols))
        rest = self.alu(Op.IDIV, flat, c(cols))
        in_i = self.alu(Op.MOD, rest, c(rows))
        rest = self.alu(Op.IDIV, rest, c(rows))
        block_j = self.alu(Op.MOD, rest, c(size[j] // cols))
        rest = self.alu(Op.IDIV, rest, c(size[j] // cols))
        block_i = self.alu(Op.MOD, rest, c(size[i] // rows)) if outer else rest
        rest = self.alu(Op.IDIV, rest, c(size[i] // rows))
        self.coords = (in_i, in_j, block_i, block_j)
        self.loop_vars[j] = self.alu(Op.ADD, self.alu(Op.MUL, block_j, c(cols)), in_j)
        self.loop_vars[i] = self.alu(Op.ADD, self.alu(Op.MUL, block_i, c(rows)), in_i)
        for k, d in enumerate(reversed(outer)):
            last = k == len(outer) - 1
            self.loop_vars[d] = rest if last else self.alu(Op.MOD, rest, c(size[d]))
            rest = rest if last else self.alu(Op.IDIV, rest, c(size[d]))
        return flat

    def combos(self, outputs_only: bool = False) -> list[Combo]:
        """The copies of the body: one per offset of each upcast dim (the vector dim's lanes are one copy, at 0);
        with `outputs_only`, of the output dims alone (what is stored after a reduce)."""
        dims = sorted(d for d in self.upcasts if not (outputs_only and d in self.red_dims))
        counts = [1 if d == self.vdim else self.upcasts[d] for d in dims]
        return [tuple(zip(dims, offsets)) for offsets in itertools.product(*(range(n) for n in counts))]

    def run(self) -> Program:
        k = self.kernel
        bufs = [k.ast.dtype, *self.input_dtypes()]
        self.params = [self.emit(Op.PARAM, d, (), i) for i, d in enumerate(bufs)]
        bounds = (self.emit(Op.BOUND, self.index_dtype, (), "start"), self.emit(Op.BOUND, self.index_dtype, (), "end"))
        arrays = self.define_locals() if self.local else []  # at kernel scope, before any loop
        if self.group and self.reduce is not None:
            arrays = [self.emit(Op.DEFINE_LOCAL, self.reduce.dtype, (), self.group)]
        outer_dim = self.loop_order[0] if self.loop_order else None
        loops: list[Optional[UOp]]
        if self.flatten and (self.loop_order or self.group):
            loops, outer = [self.flat_loop(bounds)], self.flat_size() * (self.group or 1)
        else:
            loops = [self.loop(d, bounds if d == outer_dim else None) for d in self.loop_order]
            outer = k.full_shape[outer_dim] // self.upcasts.get(outer_dim, 1) if outer_dim is not None else 1
        if self.reduce is not None and self.local:
            self.lower_reduce_local(self.reduce, arrays)
        elif self.reduce is not None and self.group:
            self.lower_reduce_group(self.reduce, arrays[0])
        elif self.reduce is not None:
            self.lower_reduce(self.reduce)
        # group mode: every work-item of the group holds the result, the first one writes it
        first = (self.alu(Op.CMPEQ, self.lane, self.const(0, self.index_dtype)),) if self.lane is not None else ()
        for combo in self.combos(outputs_only=True):
            self.combo = dict(combo)
            value = self.value(k.ast.src[0])
            idx, _ = self.index(View.contiguous(k.out_shape))
            if self.lanes_reduce:  # the lanes were folded: one value per output
                self.emit(Op.STORE, dt.void, (self.params[0], idx, value, *first))
            else:
                self.emit(Op.STORE, dt.void, (self.params[0], idx, self.widen(value), *first), width=self.width)
        for loop in reversed(loops):
            if loop is not None:
                self.emit(Op.END, dt.void, (loop,))
        notes = [f"upcast dim {d} by {u}" + (" (vector lanes)" if d == self.vdim else "")
                 for d, u in sorted(self.upcasts.items())]
        if self.loop_order != self.out_dims:
            notes.append(f"loop order {self.loop_order}")
        if self.flatten and self.group:
            notes.append(f"one loop of {outer} over the output dims, {self.group} work-items per output folding "
                         "their partial results as a group")
        elif self.flatten:
            notes.append(f"one loop of {outer} over the output dims" +
                         (f", in patches of {self.block[0]}x{self.block[1]}" if self.block else ""))
        inner = max(1, math.prod(k.full_shape) // outer)
        if self.local:
            notes.append(f"operands staged in local memory, {self.local[2]} deep, by {self.local[0]}x{self.local[1]} "
                         "work-groups")
        assert len(self.blocks) == 1, "every loop is closed"
        return Program(k.name or "kernel", _live(self.blocks[0]), bufs, outer, inner, notes, tiled=bool(self.upcasts),
                       index_dtype=self.index_dtype,
                       local_size=self.local[0] * self.local[1] if self.local else self.group,
                       wrapping=frozenset(self.wrapping))

    def input_dtypes(self) -> list[DType]:
        found: dict[int, DType] = {}
        for n in self.kernel.ast.walk():
            if n.op in (Op.LOAD, Op.GATHER):
                found[n.arg[0]] = n.dtype
        return [found[i] for i in range(1, len(found) + 1)]

    def lower_reduce(self, red: AST) -> None:
        """Accumulators for every body copy, the reduce loops, and the reads after them.

        A long float sum is accumulated in blocks of about SUM_BLOCK terms, each into a fresh accumulator that
        is then added to the total: a float32 running sum stops growing once it is 2^24 times its terms (a
        billion ones summed to 1.7e7), two levels keep every partial sum small against what it adds."""
        combos = self.combos()
        init = reduce_identity(red.op, red.dtype)
        accs = {c: self.emit(Op.DEFINE_ACC, red.dtype, (), init, width=self.width) for c in combos}
        fold = Op.ADD if red.op is Op.SUM else Op.MAX
        split = self.sum_block(red)
        loops: list[tuple[int, Optional[UOp]]] = []
        totals = accs
        for d in self.red_dims:
            if split is not None and d == split[0]:
                block, bounds = self.block_loop(d, split[1])
                loops.append((-1, block))
                accs = {c: self.emit(Op.DEFINE_ACC, red.dtype, (), init, width=self.width) for c in combos}  # per block
                loops.append((d, self.loop(d, bounds)))
            else:
                loops.append((d, self.loop(d)))
        for c in combos:
            self.combo = dict(c)
            self.accumulate(red, accs[c], fold)
        for d, loop in reversed(loops):
            if d == -1:  # a block is done: fold its sum into the total
                for c in combos:
                    part = self.emit(Op.ACC_READ, red.dtype, (accs[c],), width=self.width)
                    self.emit(Op.ACC_UPDATE, red.dtype, (totals[c], part), fold, width=self.width)
            if loop is not None:
                self.emit(Op.END, dt.void, (loop,))
            self.loop_vars.pop(d, None)
        self.acc_reads = {c: self.emit(Op.ACC_READ, red.dtype, (totals[c],), width=self.width) for c in combos}
        if any(d in self.upcasts for d in self.red_dims):  # a row's independent accumulators (opt.row_unroll)
            merged: dict[Combo, UOp] = {}
            for c, part in self.acc_reads.items():
                out = tuple((d, o) for d, o in c if d not in self.red_dims)
                merged[out] = part if out not in merged else \
                    self.emit(fold, red.dtype, (merged[out], part), width=self.width)
            self.acc_reads = merged
        if self.lanes_reduce:
            self.acc_reads = {c: self.fold_lanes(v, fold) for c, v in self.acc_reads.items()}

    def fold_lanes(self, v: UOp, fold: Op) -> UOp:
        """A vector accumulator's lanes folded into one value, in lane order."""
        total = self.emit(Op.LANE, v.dtype, (v,), 0)
        for lane in range(1, v.width):
            total = self.emit(fold, v.dtype, (total, self.emit(Op.LANE, v.dtype, (v,), lane)))
        return total

    def sum_block(self, red: AST) -> Optional[tuple[int, int]]:
        """(reduce dim, its steps per block) for a float sum long enough to need blocks, else None."""
        if red.op is not Op.SUM or not red.dtype.is_float or any(d in self.upcasts for d in self.red_dims):
            return None
        full, inner = self.kernel.full_shape, 1
        for d in reversed(self.red_dims):
            if full[d] * inner > 2 * SUM_BLOCK:
                steps = max(1, SUM_BLOCK // inner)
                return (d, steps) if steps < full[d] else None
            inner *= full[d]
        return None

    def block_loop(self, d: int, steps: int) -> tuple[UOp, tuple[UOp, UOp]]:
        """Open the loop over blocks of `steps` along dim d; returns it and the bounds of the current block."""
        c = lambda v: self.const(v, self.index_dtype)  # noqa: E731
        size = self.kernel.full_shape[d]
        block = self.emit(Op.RANGE, self.index_dtype, (c(0), c(-(-size // steps))), -2)
        lo = self.alu(Op.MUL, block, c(steps))
        hi = self.alu(Op.ADD, lo, c(steps))
        return block, (lo, self.alu(Op.WHERE, self.alu(Op.CMPLT, hi, c(size)), hi, c(size)))

    def accumulate(self, red: AST, acc: UOp, fold: Op) -> None:
        """Fold the reduce's body into `acc`. A float sum of products is one fused multiply-add per step (the
        semantics spec: the only FMA a backend emits, so every device rounds a contraction alike). Under a guard
        (a cooperative reduction's positions past the end) the values folded are the identity there; for a product
        both factors are 0, so the product adds nothing even where the other factor is inf."""
        body, init = red.src[0], reduce_identity(red.op, red.dtype)

        def value(n: AST) -> UOp:
            v = self.value(n)
            if self.guard is not None:
                v = self.emit(Op.WHERE, n.dtype, (self.guard, v, self.const(init, n.dtype)))
            return self.widen(v)

        if red.op is Op.SUM and body.op is Op.MUL and body.dtype.is_float and body.dtype == red.dtype:
            self.emit(Op.ACC_FMA, red.dtype, (acc, *(value(s) for s in body.src)), width=acc.width)
        else:
            self.emit(Op.ACC_UPDATE, red.dtype, (acc, value(body)), fold, width=acc.width)

    def lower_reduce_group(self, red: AST, array: UOp) -> None:
        """A cooperative reduction: the group's work-items take the reduce's positions in turn (lane, lane + group,
        ...: neighbours read neighbours), each folds its share into an accumulator, and GROUP_FOLD combines them.
        A turn covers GROUP_UNROLL group-widths, so that each work-item has that many loads in flight (one at a
        time left an H200 at a third of its bandwidth); positions past the reduce's end are masked out."""
        assert self.group is not None and self.lane is not None
        c = lambda v: self.const(v, self.index_dtype)  # noqa: E731
        group = self.group
        size = math.prod(self.kernel.full_shape[d] for d in self.red_dims)
        unroll = GROUP_UNROLL if size >= 2 * GROUP_UNROLL * group else 1
        acc = self.emit(Op.DEFINE_ACC, red.dtype, (), reduce_identity(red.op, red.dtype))
        turn = self.emit(Op.RANGE, self.index_dtype, (c(0), c(-(-size // (group * unroll)))), -2)
        start = self.alu(Op.ADD, self.alu(Op.MUL, turn, c(group * unroll)), self.lane)
        fold = Op.ADD if red.op is Op.SUM else Op.MAX
        for copy in range(unroll):
            position = self.alu(Op.ADD, start, c(copy * group)) if copy else start
            self.fold_position(red, acc, fold, position, size if size % (group * unroll) else None)
        self.emit(Op.END, dt.void, (turn,))
        for d in self.red_dims:
            self.loop_vars.pop(d, None)
        part = self.emit(Op.ACC_READ, red.dtype, (acc,))
        self.acc_reads = {(): self.emit(Op.GROUP_FOLD, red.dtype, (part, array, self.lane), (fold, group))}

    def fold_position(self, red: AST, acc: UOp, fold: Op, position: UOp, size: Optional[int]) -> None:
        """Fold the reduce's body at one flat position of the reduced dims into `acc`; with `size`, only where the
        position is below it (the loads are masked, and the value folded is the identity there)."""
        c = lambda v: self.const(v, self.index_dtype)  # noqa: E731
        full = self.kernel.full_shape
        self.guard = self.alu(Op.CMPLT, position, c(size)) if size is not None else None
        for d in reversed(self.red_dims):  # the innermost reduced dim varies fastest
            outermost = d == self.red_dims[0]
            self.loop_vars[d] = position if outermost else self.alu(Op.MOD, position, c(full[d]))
            position = position if outermost else self.alu(Op.IDIV, position, c(full[d]))
        self.values = {}  # the body's values at the previous position are not these
        self.accumulate(red, acc, fold)
        self.guard = None
        self.values = {}

    # ---- local memory (GPUs): both operands of a 2-D tiled contraction staged per work-group ---------------
    # Per chunk of k, A's rows x chunk slice is kept transposed (kk, row) and B's chunk x cols slice as (kk, col),
    # so that each work-item reads its tile's rows and columns at one kk as runs. With `wide` staging (vector
    # accesses, and tiles in multiples of 4) those runs are 4-wide vector reads, and B's columns are laid out
    # so that the work-items of a group read consecutive vectors (a work-item's 4-column groups are cols*4
    # apart): no two work-items of a warp's quarter hit the same bank.
    def define_locals(self) -> list[UOp]:
        assert self.local is not None and self.operands is not None
        a, b, i, j, _ = self.operands
        rows, cols, chunk = self.local
        return [self.emit(Op.DEFINE_LOCAL, a.dtype, (), (chunk + (0 if self.wide else 1)) * rows * self.upcasts[i]),
                self.emit(Op.DEFINE_LOCAL, b.dtype, (), chunk * cols * self.upcasts[j])]

    def read_at(self, view: View, at: dict[int, UOp]) -> UOp:
        """The index of `view` with the dims in `at` set explicitly (the others at the loop position)."""
        idx: Optional[UOp] = self.const(view.offset, self.index_dtype) if view.offset else None
        for d, stride in enumerate(view.strides):
            v = at[d] if d in at else (self.dim_value(d) if stride else None)
            if v is not None and stride != 0:
                term = v if stride == 1 else self.alu(Op.MUL, v, self.const(stride, self.index_dtype))
                idx = term if idx is None else self.alu(Op.ADD, idx, term)
        return idx if idx is not None else self.const(0, self.index_dtype)

    def staging_width(self, load: AST, along: int, elements: int, threads: int) -> int:
        """Elements per access when copying `load`'s slice of `elements` in with `threads` work-items:
        VECTOR_STAGING where its dim `along` is contiguous, every other stride and its offset keep 4-element runs
        aligned, and the slice splits into whole vectors per work-item; else 1."""
        view: View = load.arg[1]
        w = VECTOR_STAGING
        aligned = view.strides[along] == 1 and view.offset % w == 0 and \
            all(s % w == 0 for d, s in enumerate(view.strides) if d != along)
        return w if self.wide and aligned and elements % (threads * w) == 0 else 1

    def a_slot(self, row: UOp, kk: UOp) -> UOp:
        """Where A's element (row, kk) of a chunk lives in local memory: transposed (kk-major) with wide staging,
        else row-major with rows padded by one, so that a warp's rows fall in different banks."""
        assert self.local is not None and self.operands is not None
        c = lambda v: self.const(v, self.index_dtype)  # noqa: E731
        rows, _, chunk = self.local
        if self.wide:
            return self.alu(Op.ADD, self.alu(Op.MUL, kk, c(rows * self.upcasts[self.operands[2]])), row)
        return self.alu(Op.ADD, self.alu(Op.MUL, row, c(chunk + 1)), kk)

    def b_slot(self, along: UOp) -> UOp:
        """Where B's column `along` (0 to cols*uj - 1) of a chunk row lives in local memory: in place, or with
        wide staging, its work-item's 4-column groups spread cols*4 apart."""
        assert self.local is not None and self.operands is not None
        if not self.wide:
            return along
        c = lambda v: self.const(v, self.index_dtype)  # noqa: E731
        uj, cols = self.upcasts[self.operands[3]], self.local[1]
        w = VECTOR_STAGING
        owner, q = self.alu(Op.IDIV, along, c(uj)), self.alu(Op.MOD, along, c(uj))
        group, within = self.alu(Op.IDIV, q, c(w)), self.alu(Op.MOD, q, c(w))
        return self.alu(Op.ADD, self.alu(Op.ADD, self.alu(Op.MUL, group, c(cols * w)), self.alu(Op.MUL, owner, c(w))),
                        within)

    def stage(self, load: AST, array: UOp, dim: int, block: UOp, k_base: UOp) -> None:
        """This work-item's share of copying `load`'s slice for the chunk at `k_base` into local `array`."""
        assert self.local is not None and self.operands is not None
        a, _, i, j, k = self.operands
        rows, cols, chunk = self.local
        c = lambda v: self.const(v, self.index_dtype)  # noqa: E731
        threads = rows * cols
        in_i, in_j = self.coords[:2]
        me = self.alu(Op.ADD, self.alu(Op.MUL, in_i, c(cols)), in_j)  # this work-item's place in the group
        span = rows * self.upcasts[i] if load is a else cols * self.upcasts[j]
        w = self.staging_width(load, k if load is a else j, span * chunk, threads)
        for e in range(span * chunk // (threads * w)):
            slot = self.alu(Op.ADD, me, c(e * threads)) if e else me
            if load is a:  # consecutive work-items read along k (contiguous in A)
                along, kk = self.alu(Op.IDIV, slot, c(chunk // w)), self.alu(Op.MUL, self.alu(Op.MOD, slot,
                                                                                         c(chunk // w)), c(w))
            else:  # along B's columns
                kk, along = self.alu(Op.IDIV, slot, c(span // w)), self.alu(Op.MUL, self.alu(Op.MOD, slot,
                                                                                         c(span // w)), c(w))
            pos = self.alu(Op.ADD, self.alu(Op.MUL, block, c(span)), along)
            idx = self.read_at(load.arg[1], {dim: pos, k: self.alu(Op.ADD, k_base, kk)})
            value = self.emit(Op.LOAD, load.dtype, (self.params[load.arg[0]], idx), width=w)
            if load is a:  # one store per k (the layout may be transposed)
                for t in range(w):
                    part = self.emit(Op.LANE, load.dtype, (value,), t) if w > 1 else value
                    at = self.a_slot(along, self.alu(Op.ADD, kk, c(t)) if t else kk)
                    self.emit(Op.STORE, dt.void, (array, at, part))
            else:
                at = self.alu(Op.ADD, self.alu(Op.MUL, kk, c(span)), self.b_slot(along))
                self.emit(Op.STORE, dt.void, (array, at, value), width=w)

    def tile_reads(self, array: UOp, dtype: DType, start: UOp, count: int, step: int) -> list[UOp]:
        """`count` values of local `array` from `start`: runs of 4 `step` apart as vector reads with wide staging
        (step 4: consecutive), else one by one."""
        c = lambda v: self.const(v, self.index_dtype)  # noqa: E731
        if not self.wide:
            return [self.emit(Op.LOAD, dtype, (array, self.alu(Op.ADD, start, c(n)))) for n in range(count)]
        w, out = VECTOR_STAGING, []
        for g in range(count // w):
            vec = self.emit(Op.LOAD, dtype, (array, self.alu(Op.ADD, start, c(g * step))), width=w)
            out += [self.emit(Op.LANE, dtype, (vec,), t) for t in range(w)]
        return out

    def lower_reduce_local(self, red: AST, arrays: list[UOp]) -> None:
        """Per chunk of k: the work-group copies A's rows x chunk and B's chunk x cols slices into local
        memory (each work-item a few elements), waits, then every work-item accumulates its register tile
        from local memory, and waits again before the next chunk overwrites the slices."""
        assert self.local is not None and self.operands is not None
        a, b, i, j, k = self.operands
        _, cols, chunk = self.local
        ui, uj = self.upcasts[i], self.upcasts[j]
        in_i, in_j, block_i, block_j = self.coords
        c = lambda v: self.const(v, self.index_dtype)  # noqa: E731
        combos = self.combos()
        accs = {cb: self.emit(Op.DEFINE_ACC, red.dtype, (), reduce_identity(red.op, red.dtype)) for cb in combos}
        outer_k = self.emit(Op.RANGE, self.index_dtype, (c(0), c(self.kernel.full_shape[k] // chunk)), k)
        k_base = self.alu(Op.MUL, outer_k, c(chunk))
        self.stage(a, arrays[0], i, block_i, k_base)
        self.stage(b, arrays[1], j, block_j, k_base)
        self.emit(Op.BARRIER, dt.void)
        inner = self.emit(Op.RANGE, self.index_dtype, (c(0), c(chunk)), -2)
        row0 = self.alu(Op.MUL, in_i, c(ui))
        if self.wide:
            a_vals = self.tile_reads(arrays[0], a.dtype, self.a_slot(row0, inner), ui, VECTOR_STAGING)
        else:
            a_vals = [self.emit(Op.LOAD, a.dtype, (arrays[0], self.a_slot(self.alu(Op.ADD, row0, c(r)), inner)))
                      for r in range(ui)]
        b_row = self.alu(Op.MUL, inner, c(cols * uj))
        b_vals = self.tile_reads(arrays[1], b.dtype, self.alu(Op.ADD, b_row, self.b_slot(self.alu(
            Op.MUL, in_j, c(uj)))), uj, cols * VECTOR_STAGING)
        for cb in combos:
            self.combo = dict(cb)
            self.tile_values = {id(a): a_vals[self.combo[i]], id(b): b_vals[self.combo[j]]}
            self.accumulate(red, accs[cb], Op.ADD)
        self.tile_values = {}
        self.emit(Op.END, dt.void, (inner,))
        self.emit(Op.BARRIER, dt.void)
        self.emit(Op.END, dt.void, (outer_k,))
        self.values = {key: v for key, v in self.values.items() if key[0] != id(red.src[0])}
        self.acc_reads = {cb: self.emit(Op.ACC_READ, red.dtype, (accs[cb],)) for cb in combos}

    def value(self, n: AST) -> UOp:
        key = (id(n), tuple(sorted(self.combo.items())))
        if key not in self.values:
            self.values[key] = self.lower_vector(n) if self.vdim is not None else self.lower_node(n)
        return self.values[key]

    def lower_vector(self, n: AST) -> UOp:
        """The value of `n` for all lanes of the vector dim: a vector, or a scalar when every lane is the same."""
        if n.op in (Op.LOAD, Op.CONST):
            view: View = n.arg[1]
            dims = self.dims_of(view.shape)
            at = dims.index(self.vdim) if self.vdim in dims else None
            step = view.strides[at] if at is not None else 0
            masked = at is not None and view.masked_along(at)
            if (step == 0 or n.op is Op.CONST) and not masked:
                return self.lower_node(n)  # the same in every lane
            if n.op is Op.LOAD and step == 1 and not view.is_empty_mask:
                idx, valid = self.index(view)
                if masked:  # lane by lane: a padded row's lanes are valid in part
                    valid = self.emit(Op.VECTOR, dt.bool_, tuple(self.lane_valid(view)), width=self.width)
                mask = () if valid is None else (self.widen(valid),)
                return self.emit(Op.LOAD, n.dtype, (self.params[n.arg[0]], idx, *mask), width=self.width)
            return self.emit(Op.VECTOR, n.dtype, tuple(self.lanes(self.lower_node, n)), width=self.width)
        if n.op in REDUCE or n.op is Op.RESHAPE:
            return self.lower_node(n)
        src = tuple(self.value(s) for s in n.src)
        if any(s.width > 1 for s in src):
            src = tuple(self.widen(s) for s in src)
        return self.compute(n, src)

    def lanes(self, fn: Any, *args: Any) -> list[Any]:
        """fn(*args) at each lane of the vector dim, as scalars (strided or masked along the lanes)."""
        assert self.vdim is not None
        found = []
        for lane in range(self.width):
            self.combo[self.vdim] = lane
            found.append(fn(*args))
        self.combo[self.vdim] = 0
        return found

    def lane_valid(self, view: View) -> list[UOp]:
        """Whether each lane of a load through `view` is inside its mask."""
        return [valid if valid is not None else self.const(True, dt.bool_)
                for _, valid in self.lanes(self.index, view)]

    def lower_node(self, n: AST) -> UOp:
        if id(n) in self.tile_values:
            return self.tile_values[id(n)]
        if n.op is Op.LOAD:
            buf, view = n.arg
            if view.is_empty_mask:
                return self.const(reduce_identity(Op.SUM, n.dtype), n.dtype)
            idx, valid = self.index(view)
            if self.guard is not None:  # a cooperative reduction's last turn: positions past the end read nothing
                valid = self.guard if valid is None else self.alu(Op.AND, valid, self.guard)
            return self.emit(Op.LOAD, n.dtype, (self.params[buf], idx) + ((valid,) if valid else ()))
        if n.op is Op.CONST:
            value, view = n.arg
            zero = reduce_identity(Op.SUM, n.dtype)
            if not view.masked or view.is_empty_mask:
                return self.const(value if not view.masked else zero, n.dtype)
            _, valid = self.index(view)
            c = self.const(value, n.dtype)
            return c if valid is None else self.alu(Op.WHERE, valid, c, self.const(zero, n.dtype))
        if n.op in REDUCE:
            return self.acc_reads[tuple(sorted(self.combo.items()))]
        if n.op is Op.GATHER:
            return self.gather(n)
        if n.op is Op.RESHAPE:  # only adds or removes size-1 dims: the loop position is the same
            return self.value(n.src[0])
        return self.compute(n, tuple(self.value(s) for s in n.src))

    def gather(self, n: AST) -> UOp:
        """A GATHER: the table's View at the loop's position along every dim but `dim`, plus the computed position
        along `dim`, clamped into the table (the front end rejects indices outside it before any kernel runs; the
        clamp keeps a kernel from reading outside its buffer whatever the data)."""
        buf, view, dim, size = n.arg
        position = self.value(n.src[0])
        kind = position.dtype
        assert kind is not None and kind.is_int and position.width == 1, "a GATHER's positions are integer scalars"
        lo, hi = max(0, kind.limits[0]), min(view.shape[dim] - 1, kind.limits[1])
        position = self.alu(Op.WHERE, self.alu(Op.CMPLT, position, self.const(hi, kind)), position,
                            self.const(hi, kind))
        position = self.alu(Op.MAX, position, self.const(lo, kind))
        if kind != self.index_dtype:
            position = self.emit(Op.CAST, self.index_dtype, (position,))
        here = View.make(tuple(size if d == dim else n for d, n in enumerate(view.shape)),
                         tuple(0 if d == dim else st for d, st in enumerate(view.strides)), view.offset)
        idx, _ = self.index(here)  # the table's View has no padding: always valid
        step = self.const(view.strides[dim], self.index_dtype)
        return self.emit(Op.LOAD, n.dtype, (self.params[buf], self.alu(Op.ADD, idx, self.alu(Op.MUL, position, step))))

    def compute(self, n: AST, src: tuple[UOp, ...]) -> UOp:
        """An elementwise node applied to the values of its sources (of one width)."""
        width = src[0].width if src else 1
        if n.op in CONVERSIONS:
            return self.emit(n.op, n.dtype, src, width=width)
        if self.soft_math and n.op in softmath.EXPANSIONS and n.dtype == dt.float32 and width == 1:
            return softmath.EXPANSIONS[n.op](self, src[0])
        u = self.emit(n.op, n.dtype, src, width=width)
        if n.op in (Op.ADD, Op.MUL, Op.NEG) and n.dtype.kind == "i":
            self.wrapping.add(id(u))
        return u
