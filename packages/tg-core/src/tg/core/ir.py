"""The loop IR: a typed, linear, loop-level program that compiled backends render to source.

`lower.py` produces it from a kernel AST. A program is a list of `UOp`s (the one node type, uop.py) in execution
order; loops are bracketed by RANGE and END, sources are earlier UOps. Values are SSA except accumulators:
DEFINE_ACC declares one, ACC_UPDATE folds a value into it inside a loop (ACC_FMA a product of two, rounded
once), ACC_READ reads it after.

A value may be a vector of `width` lanes (renderers that declare `vectors = True` get them; the others never
do): BROADCAST repeats a scalar, VECTOR gathers scalars, LANE takes one lane out, and LOAD/STORE of width W touch W
consecutive elements.
Arithmetic, CAST and the accumulator ops work lane by lane; all their operands have the op's width.

A GPU program with `local_size` may reduce cooperatively: each work-item of a group folds its share of a long
reduce into an accumulator, and GROUP_FOLD combines the group's accumulators (through local memory, or the
device's subgroup operations where the renderer has them).

Every program has the signature `kernel(start, end, buf0, buf1, ...)`: it runs the outermost loop
over [start, end), which is how a CPU backend splits the work over threads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .dtype import DType, int64
from .ops import Op
from .uop import UOp

# the loop IR's statements (ops.Op), what their parts mean:
# PARAM: arg = buffer index; dtype = element type; a pointer
# BOUND: arg = "start" or "end": the outer loop's range, given by the caller
# RANGE: src = (start, end); dtype int64; the loop variable.  END: src = (range,): closes the loop
# CONST: arg = value.  CAST: src = (value,), dtype = target.  Arithmetic (ops.ALU): the op itself, src = operands
# LOAD: src = (param, index) or (param, index, valid): valid=False reads zero; arg = the block it is read in (a
#   load is not moved out of its loop, so equal loads in two loops are two values)
# STORE: src = (param, index, value) or (param, index, value, valid): nothing is written where not valid
# DEFINE_ACC: arg = initial value.  ACC_UPDATE: arg = ADD or MAX, src = (acc, value).  ACC_READ: src = (acc,)
# ACC_FMA: src = (acc, a, b): acc + a*b rounded once; the only fused multiply-add a renderer may emit
# DEFINE_LOCAL: arg = element count, dtype = element type: a work-group's shared array (GPUs)
# BARRIER: every work-item of the group waits here; local memory writes become visible
# GROUP_FOLD: src = (value, local array of arg[1] elements, lane), arg = (ADD or MAX, work-items per group): the fold
#   of `value` over the group's work-items (lane: this one's place, 0 to arg[1] - 1), given to each of them; every
#   work-item of the group reaches it (it waits at barriers)
# BROADCAST: src = (scalar,): a vector of `width` copies.  VECTOR: src = `width` scalars, in lane order.
# LANE: src = (vector,), arg = lane index: that lane as a scalar


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

    # the name of each UOp in this program (by id), stable for renderers: its place, "v12". A value may sit in
    # several programs (it is hash-consed), so its name belongs to the program, not to the node
    names: dict[int, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.names = {id(u): f"v{i}" for i, u in enumerate(self.uops)}

    def listing(self) -> str:
        """The program as text, one UOp per line, indented by loop depth."""
        lines, depth = [], 0
        for u in self.uops:
            if u.op is Op.END:
                depth -= 1
            lines.append("  " * (depth + 1) + self.describe(u))
            if u.op is Op.RANGE:
                depth += 1
        return "\n".join(lines)

    def describe(self, u: UOp) -> str:
        """One UOp as a line of the listing: `v3 = add (v1, v2) : float32`."""
        srcs = ", ".join(self.names.get(id(s), "?") for s in u.src)
        arg = f" {self.arg_text(u)}" if u.arg is not None and u.op is not Op.LOAD else ""
        lanes = f"x{u.width}" if u.width > 1 else ""
        return f"{self.names.get(id(u), '?')} = {u.op.name.lower()}{arg} ({srcs}) : {u.dtype.name}{lanes}"

    @staticmethod
    def arg_text(u: UOp) -> str:
        return u.arg.name if isinstance(u.arg, Op) else repr(u.arg)


INDEX = int64  # the dtype of every index computation
