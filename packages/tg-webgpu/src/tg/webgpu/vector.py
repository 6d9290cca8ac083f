"""Large float32 elementwise kernels as vec4 code: each work-item loads, computes and stores four neighbours at once.

Scalar 32-bit loads leave an H200 at 1,247-1,919 GB/s through Vulkan (64M floats copied, by work-group size);
`vec4<f32>` loads reach 2,994, 78% of PyTorch's copy. A kernel qualifies when every buffer is float32, it has no
loop but the outer one, every load and the store use the outer position itself (or, for a hoisted scalar, a
constant index), and its ops are ones WGSL has for vectors; exp2/log2/sin and (where the driver's is inexact)
division apply the scalar functions per lane. The semantics rules of the scalar renderer carry over: literals are
opaque, NaN is tested by its bits, products and selects go through their bits, negation flips the sign bit.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from tg.core import dtype as dt
from tg.core.ir import Program, U, UOp
from tg.core.ops import Op

if TYPE_CHECKING:
    from .renderer import WGSLRenderer

LANES = 4
MIN_SIZE = 1 << 20  # outer iterations: smaller kernels keep one element per work-item (more groups to spread)
VECTOR_OPS = {Op.ADD, Op.MUL, Op.NEG, Op.MAX, Op.CMPLT, Op.CMPEQ, Op.WHERE, Op.EXP2, Op.LOG2, Op.SIN, Op.SQRT,
              Op.FDIV, Op.RECIP}
PER_LANE = {Op.EXP2: "exp2", Op.LOG2: "log2", Op.SIN: "sin"}
ISNAN = ("fn tg_isnan_v4(x: vec4<f32>) -> vec4<bool> "
         "{ return (bitcast<vec4<u32>>(x) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u); }")


def vectorizable(prog: Program) -> bool:
    """Whether `prog` is a large float32 elementwise kernel whose every access is at the outer position."""
    if prog.local_size or prog.outer_size < MIN_SIZE or prog.outer_size % LANES:
        return False
    if any(d != dt.float32 for d in prog.buffer_dtypes):
        return False
    ranges = [u for u in prog.uops if u.op is U.RANGE]
    if len(ranges) != 1:
        return False
    outer = ranges[0]
    kinds: dict[int, bool] = {}  # buffer -> read as vectors
    for u in prog.uops:
        if u.op in (U.DEFINE_ACC, U.DEFINE_LOCAL, U.CAST, U.BARRIER) or (u.op is U.ALU and u.arg not in VECTOR_OPS):
            return False
        if u.op is U.ALU and any(s is outer for s in u.src):
            return False  # the position itself in arithmetic: only loads and the store may use it
        if u.op is U.ALU and any(s.dtype != dt.float32 for s in (u.src[1:] if u.arg is Op.WHERE else u.src)):
            return False  # float32 operands only (a WHERE's condition aside)
        if u.op is U.LOAD:
            if len(u.src) > 2 or u.src[0].op is not U.PARAM or (u.src[1] is not outer and u.src[1].op is not U.CONST):
                return False
            vector = u.src[1] is outer
            if kinds.setdefault(u.src[0].arg, vector) != vector:
                return False
        if u.op is U.STORE and u.src[1] is not outer:
            return False
    return True


class VectorBody:
    """Renders the body of a vectorizable program; values that depend on the position are vec4, others scalar."""

    def __init__(self, r: WGSLRenderer, prog: Program):
        self.r, self.prog = r, prog
        self.vector: set[int] = set()
        self.lines: list[str] = []

    def ref(self, u: UOp, vector: bool) -> str:
        text = self.r.ref(u)
        if vector and id(u) not in self.vector:
            return f"vec4<{'bool' if u.dtype == dt.bool_ else 'f32'}>({text})"
        return text

    def typename(self, u: UOp) -> str:
        scalar = "bool" if u.dtype == dt.bool_ else "f32"
        return f"vec4<{scalar}>" if id(u) in self.vector else scalar

    def opaque(self, x: str, vector: bool) -> str:
        if not vector:
            return self.r.opaque(x, dt.float32)
        return f"bitcast<vec4<f32>>(bitcast<vec4<u32>>({x}) | vec4<u32>(tg_zero))"

    def per_lane(self, fn: str, *args: str) -> str:
        lanes = ", ".join(f"{fn}({', '.join(f'{a}.{c}' for a in args)})" for c in "xyzw")
        return f"vec4<f32>({lanes})"

    def alu(self, u: UOp) -> str:
        op: Op = u.arg
        vec = any(id(s) in self.vector for s in u.src)
        if not vec:
            return self.r.alu(u)
        a, *rest = (self.ref(s, True) for s in u.src)
        b = rest[0] if rest else ""
        if op is Op.ADD:
            return f"({a} + {b})"
        if op is Op.MUL:
            return self.opaque(f"{a} * {b}", True)
        if op is Op.NEG:
            return f"bitcast<vec4<f32>>(bitcast<vec4<u32>>({a}) ^ vec4<u32>(0x80000000u))"
        if op is Op.MAX:
            return f"select({b}, {a}, ({a} > {b}) | tg_isnan_v4({a}))"
        if op is Op.CMPLT:
            return f"({a} < {b})"
        if op is Op.CMPEQ:
            return f"({a} == {b})"
        if op is Op.WHERE:
            return f"select({self.opaque(rest[1], True)}, {self.opaque(b, True)}, {a})"
        if op is Op.SQRT:
            return f"sqrt({a})"
        if op in (Op.FDIV, Op.RECIP):
            num, den = (a, b) if op is Op.FDIV else ("vec4<f32>(1.0f)", a)
            if self.r.exact_division:
                return f"({num} / {den})"
            self.r.math.add(("div", dt.float32))
            return self.per_lane("tg_div_f32", num, den)
        self.r.math.add((PER_LANE[op], dt.float32))
        return self.per_lane(f"tg_{PER_LANE[op]}_f32", a)

    def render(self, thread: str) -> list[str]:
        prog, r = self.prog, self.r
        outer = next(u for u in prog.uops if u.op is U.RANGE)
        lines = self.lines
        for u in prog.uops:
            if u.op in (U.PARAM, U.BOUND, U.CONST, U.RANGE, U.END):
                continue
            if u.op is U.LOAD:
                if u.src[1] is outer:
                    self.vector.add(id(u))
                    lines.append(f"let {u.name}: vec4<f32> = b{u.src[0].arg}[tg_i];")
                else:
                    lines.append(f"let {u.name}: f32 = b{u.src[0].arg}[{r.ref(u.src[1])}];")
            elif u.op is U.STORE:
                lines.append(f"b0[tg_i] = {self.ref(u.src[2], True)};")
            else:  # ALU
                expr = self.alu(u)
                if any(id(s) in self.vector for s in u.src):
                    self.vector.add(id(u))
                lines.append(f"let {u.name}: {self.typename(u)} = {expr};")
        count = prog.outer_size // LANES
        return [f"  let tg_i = {thread}; if (tg_i < {count}u) {{", *("    " + line for line in lines), "  }"]
