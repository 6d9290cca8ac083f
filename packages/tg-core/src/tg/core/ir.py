"""The kernel IR: a typed, linear, loop-level program that compiled backends render to source.

`lower.py` produces it from a kernel AST. A program is a list of `UOp`s in execution order; loops
are bracketed by RANGE and END, sources are earlier UOps. Values are SSA except accumulators:
DEFINE_ACC declares one, ACC_UPDATE folds a value into it inside a loop (ACC_FMA a product of two, rounded
once), ACC_READ reads it after.

A value may be a vector of `width` lanes (renderers that declare `vectors = True` get them; the others never
do): BROADCAST repeats a scalar, VECTOR gathers scalars, LANE takes one lane out, and LOAD/STORE of width W touch W
consecutive elements.
ALU, CAST and the accumulator ops work lane by lane; all their operands have the op's width.

A GPU program with `local_size` may reduce cooperatively: each work-item of a group folds its share of a long
reduce into an accumulator, and GROUP_FOLD combines the group's accumulators (through local memory, or the
device's subgroup operations where the renderer has them).

Every program has the signature `kernel(start, end, buf0, buf1, ...)`: it runs the outermost loop
over [start, end), which is how a CPU backend splits the work over threads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any, Optional

from .dtype import DType, int64
from .ops import Op


class U(Enum):
    """IR ops. ALU uses the primitive `Op` of the kernel AST in `arg`."""

    __hash__ = object.__hash__  # identity hashing (see Op)

    PARAM = auto()  # arg = buffer index; dtype = element type; a pointer
    BOUND = auto()  # arg = "start" or "end": the outer loop's range, given by the caller
    RANGE = auto()  # src = (start, end); dtype int64; the loop variable
    END = auto()  # src = (range,): closes the loop
    CONST = auto()  # arg = value
    LOAD = auto()  # src = (param, index) or (param, index, valid): valid=False reads zero
    STORE = auto()  # src = (param, index, value) or (param, index, value, valid): nothing is written where not valid
    ALU = auto()  # arg = Op, src = operands
    CAST = auto()  # src = (value,), dtype = target
    DEFINE_ACC = auto()  # arg = initial value
    ACC_UPDATE = auto()  # arg = Op (ADD or MAX), src = (acc, value)
    ACC_FMA = auto()  # src = (acc, a, b): acc + a*b rounded once; the only fused multiply-add a renderer may emit
    ACC_READ = auto()  # src = (acc,)
    DEFINE_LOCAL = auto()  # arg = element count, dtype = element type: a work-group's shared array (GPUs)
    BARRIER = auto()  # every work-item of the group waits here; local memory writes become visible
    # src = (value, local array of arg[1] elements, lane), arg = (Op ADD or MAX, work-items per group): the fold of
    # `value` over the group's work-items (lane: this one's place, 0 to arg[1] - 1), given to each of them; every
    # work-item of the group reaches it (it waits at barriers)
    GROUP_FOLD = auto()
    BROADCAST = auto()  # src = (scalar,): a vector of `width` copies
    VECTOR = auto()  # src = `width` scalars: a vector of them, in lane order
    LANE = auto()  # src = (vector,), arg = lane index: that lane as a scalar


class UOp:
    """One IR instruction."""

    __slots__ = ("arg", "dtype", "name", "op", "src", "width")

    def __init__(self, op: U, dtype: Optional[DType], src: tuple[UOp, ...] = (), arg: Any = None, width: int = 1):
        self.op, self.dtype, self.src, self.arg, self.width = op, dtype, src, arg, width
        self.name = ""  # set by Program: a stable name renderers can use

    def __repr__(self) -> str:
        srcs = ", ".join(s.name for s in self.src)
        arg = f" {self.arg.name if isinstance(self.arg, (Op, U)) else self.arg!r}" if self.arg is not None else ""
        lanes = f"x{self.width}" if self.width > 1 else ""
        return f"{self.name} = {self.op.name.lower()}{arg} ({srcs}) : {self.dtype.name if self.dtype else '-'}{lanes}"


@dataclass
class Program:
    """A lowered kernel: its UOps, its buffers (dtype per parameter) and the outer loop's size."""

    name: str
    uops: list[UOp]
    buffer_dtypes: list[DType]
    outer_size: int  # iterations of the outermost loop: callers split [0, outer_size) into chunks
    inner_size: int  # work per outer iteration, to decide whether threads are worth it
    notes: list[str] = field(default_factory=list)  # optimisation choices, shown at TG_DEBUG=3
    # the body is already unrolled into a register tile: vectorise across the copies (SLP), not the loops
    tiled: bool = False
    index_dtype: DType = int64  # of every index computation: int32 where every index fits (narrow=True)
    local_size: Optional[int] = None  # work-items per group the program needs (it shares local memory)
    # ids of the signed-int data ops (ADD, MUL, NEG) whose overflow must wrap (the semantics spec); C-like
    # renderers write them in unsigned arithmetic, where C makes signed overflow undefined
    wrapping: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        for i, u in enumerate(self.uops):
            u.name = f"v{i}"

    def listing(self) -> str:
        """The program as text, one UOp per line, indented by loop depth."""
        lines, depth = [], 0
        for u in self.uops:
            if u.op is U.END:
                depth -= 1
            lines.append("  " * (depth + 1) + repr(u))
            if u.op is U.RANGE:
                depth += 1
        return "\n".join(lines)


INDEX = int64  # the dtype of every index computation
