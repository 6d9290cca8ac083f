"""The IR checker: proves a lowered program well formed before a device runs it.

It checks that every source is defined earlier and still in scope (not inside a loop that has ended), that
loops open and close in order, that operand types agree (an ALU's operands share a dtype, comparisons give
bools, a WHERE's condition is a bool, loads and stores match their buffer), and, by interval arithmetic over
the index expressions, that every unmasked load and every store stays inside its buffer. It runs under
TG_CHECK_IR=1 (the test suites set it) and TG_DEBUG>=1, on each program when it is first built, with the
sizes of the buffers it is about to run on.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from . import dtype as dt
from .ir import Program
from .ops import ALU, CONVERSIONS, Op
from .uop import UOp

Interval = Optional[tuple[int, int]]  # inclusive bounds of an integer value; None: unknown; lo > hi: never computed


class IRError(AssertionError):
    """A lowered program is malformed: a bug in tg's lowering or optimisation, never in user code."""


def check(prog: Program, sizes: Optional[Sequence[int]] = None) -> None:
    """Raise IRError naming the first problem in `prog` (with `sizes`, the element count of each buffer)."""
    _Checker(prog, sizes).run()


class _Checker:
    def __init__(self, prog: Program, sizes: Optional[Sequence[int]]):
        self.prog, self.sizes = prog, sizes
        self.bounds: dict[int, Interval] = {}
        self.live: list[set[int]] = [set()]  # ids defined in each open loop (and the kernel scope)

    def fail(self, u: UOp, why: str) -> None:
        raise IRError(f"IR check failed in kernel {self.prog.name} at `{self.prog.describe(u)}`: {why}\n"
                      f"{self.prog.listing()}")

    def run(self) -> None:
        if self.sizes is not None and len(self.sizes) != len(self.prog.buffer_dtypes):
            raise IRError(f"IR check of kernel {self.prog.name}: it takes {len(self.prog.buffer_dtypes)} buffers, "
                          f"{len(self.sizes)} were given")
        placed: set[int] = set()
        for u in self.prog.uops:
            if id(u) in placed:  # a hash-consed value sits in one place; a second would be a second definition
                self.fail(u, "appears twice in the program")
            placed.add(id(u))
            for s in u.src:
                if not any(id(s) in scope for scope in self.live):
                    name = self.prog.names.get(id(s), repr(s))
                    self.fail(u, f"source {name} is not defined before it, or its loop has ended")
            self.types(u)
            self.bounds[id(u)] = self.interval(u)
            if u.op in (Op.LOAD, Op.STORE):
                self.in_buffer(u)
            if u.op is Op.END:
                if len(self.live) == 1 or u.src[0].op is not Op.RANGE or id(u.src[0]) not in self.live[-1]:
                    self.fail(u, "END does not close the innermost open loop")
                self.live.pop()
            if u.op is Op.RANGE:
                self.live.append(set())
            if u.op is not Op.END:
                self.live[-1].add(id(u))
        if len(self.live) != 1:
            raise IRError(f"IR check failed in kernel {self.prog.name}: {len(self.live) - 1} loop(s) never end")

    def types(self, u: UOp) -> None:
        self.widths(u)
        if u.op in ALU:
            op = u.op
            values = u.src[1:] if op is Op.WHERE else u.src
            if op is Op.WHERE and u.src[0].dtype != dt.bool_:
                self.fail(u, "the condition of a WHERE must be a bool")
            if len({s.dtype for s in values}) != 1:
                self.fail(u, f"operands of {op.name} differ in dtype: {[s.dtype for s in values]}")
            want = dt.bool_ if op in (Op.CMPLT, Op.CMPEQ) else values[0].dtype
            if u.dtype != want:
                self.fail(u, f"{op.name} of {values[0].dtype} gives {want}, not {u.dtype}")
        elif u.op is Op.BITCAST and (u.src[0].dtype.itemsize != u.dtype.itemsize or u.src[0].dtype == dt.bool_):
            self.fail(u, f"bitcasts {u.src[0].dtype} to {u.dtype}: only types of one size, not bool")
        elif u.op is Op.LOAD and u.src[0].dtype != u.dtype:
            self.fail(u, f"loads {u.dtype} from a buffer of {u.src[0].dtype}")
        elif u.op is Op.STORE and u.src[0].dtype != u.src[2].dtype:
            self.fail(u, f"stores {u.src[2].dtype} into a buffer of {u.src[0].dtype}")
        elif u.op is Op.STORE and len(u.src) > 3 and u.src[3].dtype != dt.bool_:
            self.fail(u, "a store's valid flag must be a bool")
        elif u.op is Op.GROUP_FOLD:
            self.group_fold(u)
        elif u.op in (Op.ACC_UPDATE, Op.ACC_FMA) and any(s.dtype != u.src[0].dtype for s in u.src[1:]):
            self.fail(u, "accumulates a value of another dtype")

    def group_fold(self, u: UOp) -> None:
        """A group fold folds a value of its own dtype through a local array with a slot per work-item of a group
        the program launches."""
        value, array, _ = u.src
        fold, size = u.arg
        if value.dtype != u.dtype or array.dtype != u.dtype or array.op is not Op.DEFINE_LOCAL:
            self.fail(u, "folds a value of another dtype, or not through a local array of its dtype")
        if fold not in (Op.ADD, Op.MAX) or size != self.prog.local_size or array.arg < size or size & (size - 1):
            self.fail(u, f"folds by {fold} over {size} work-items: needs ADD or MAX, the program's local size "
                         f"({self.prog.local_size}), a power of two, and a slot per work-item ({array.arg})")

    def widths(self, u: UOp) -> None:
        """Vector lanes line up: lane-wise ops take operands of their own width, indices and masks are scalars."""
        if u.op is Op.BROADCAST:
            wanted = [1]
        elif u.op is Op.VECTOR:
            wanted = [1] * u.width
            if len(u.src) != u.width:
                self.fail(u, f"a vector of {u.width} lanes built from {len(u.src)} values")
        elif u.op is Op.LANE:
            wanted = []
            if u.width != 1 or len(u.src) != 1 or not 0 <= u.arg < u.src[0].width or u.src[0].width < 2:
                self.fail(u, f"takes lane {u.arg} out of a value of {u.src[0].width if u.src else 0} lane(s)")
        elif u.op in (Op.LOAD, Op.STORE):
            wanted = [1, 1, u.width]  # (buffer, index, value) or (buffer, index, valid): lanes read W elements
        else:
            lanewise = u.op in ALU or u.op in CONVERSIONS or u.op in (Op.ACC_UPDATE, Op.ACC_FMA, Op.ACC_READ)
            wanted = [u.width] * len(u.src) if lanewise else []
        for s, w in zip(u.src, wanted):
            if s.op is not Op.PARAM and s.width != w:
                self.fail(u, f"operand {self.prog.names[id(s)]} has {s.width} lane(s) where {w} are needed")

    def interval(self, u: UOp) -> Interval:
        """Inclusive bounds of an integer value, by interval arithmetic; where that cannot tell, or the value may
        wrap (data read from memory, products of data), its dtype's whole range. None for other values."""
        if u.dtype is not None and u.dtype.is_float:
            return None
        found = self.arithmetic(u)
        if u.dtype is None or u.width > 1 or (found is not None and found[0] > found[1]):
            return found
        lo, hi = u.dtype.limits
        return found if found is not None and lo <= found[0] and found[1] <= hi else (lo, hi)

    def arithmetic(self, u: UOp) -> Interval:
        b = [self.bounds.get(id(s)) for s in u.src]
        if u.op is Op.CONST and isinstance(u.arg, (int, bool)):
            return int(u.arg), int(u.arg)
        if u.op is Op.BOUND:
            return 0, self.prog.outer_size
        if u.op is Op.RANGE:
            return (b[0][0], b[1][1] - 1) if b[0] is not None and b[1] is not None else None
        if any(x is not None and x[0] > x[1] for x in b):
            return 1, 0  # inside a loop that never runs: never computed
        if u.op is Op.CAST:
            return b[0]  # an integer that fits the new type keeps its value (else interval() widens it)
        if u.op not in ALU or u.width > 1 or any(x is None for x in b):
            return None
        op = u.op
        if op in (Op.CMPLT, Op.CMPEQ) or u.dtype == dt.bool_:
            return 0, 1
        if op is Op.WHERE:
            cond = u.src[0]
            if cond.op is Op.CMPLT and all(map(_same, cond.src, u.src[1:])):  # min(a, b)
                return min(b[1][0], b[2][0]), min(b[1][1], b[2][1])  # type: ignore[index]
            return min(b[1][0], b[2][0]), max(b[1][1], b[2][1])  # type: ignore[index]
        if op is Op.ADD:
            return b[0][0] + b[1][0], b[0][1] + b[1][1]  # type: ignore[index]
        if op is Op.MUL:
            products = [x * y for x in b[0] for y in b[1]]  # type: ignore[union-attr]
            return min(products), max(products)
        if op is Op.NEG:
            return -b[0][1], -b[0][0]  # type: ignore[index]
        if op is Op.MAX:
            return max(b[0][0], b[1][0]), max(b[0][1], b[1][1])  # type: ignore[index]
        if len(b) != 2:
            return None
        (lo, hi), divisor = b[0], b[1]  # type: ignore[misc]
        if divisor is None or divisor[0] != divisor[1] or divisor[0] <= 0 or lo < 0:
            return None  # only what indices use: non-negative values by a positive constant
        c = divisor[0]
        if op is Op.IDIV:
            return lo // c, hi // c
        if op is Op.MOD:
            return (lo, hi) if hi < c else (0, c - 1)
        return None

    def in_buffer(self, u: UOp) -> None:
        buf, idx = u.src[0], u.src[1]
        if buf.op is not Op.PARAM or self.sizes is None or (u.op is Op.LOAD and len(u.src) > 2):
            return  # local memory, no sizes given, or a masked load (it reads nothing where the mask is false)
        size = self.sizes[buf.arg]
        bounds = self.bounds.get(id(idx))
        if bounds is None:
            self.fail(u, f"cannot bound the index into buffer {buf.arg} ({size} elements)")
        elif bounds[0] > bounds[1]:
            return  # in a loop that never runs
        elif bounds[0] < 0 or bounds[1] + u.width - 1 >= size:  # a vector touches `width` elements from there
            self.fail(u, f"index range [{bounds[0]}, {bounds[1] + u.width - 1}] leaves buffer {buf.arg} of {size} "
                         "elements")


def _same(a: UOp, b: UOp) -> bool:
    """The same value: one UOp, or equal constants."""
    return a is b or (a.op is b.op is Op.CONST and a.dtype == b.dtype and a.arg == b.arg)
