"""Renderers: the IR program -> source text. `CStyleRenderer` is the base for C-like targets.

OpenCL C, WGSL, CUDA, Metal and plain C differ in spelling, not in structure: a subclass sets the
type names, the kernel signature and how the outer loop is mapped (a loop on a CPU, the global
thread index on a GPU), and the rest of the program (loops, loads with validity masks, accumulators,
ALU expressions, casts) is rendered here once.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Optional

from . import dtype as dt
from .dtype import DType
from .ir import Program
from .ops import ALU, CONVERSIONS, Op
from .uop import UOp

UNSIGNED_OF = {dt.int8: dt.uint8, dt.int16: dt.uint16, dt.int32: dt.uint32, dt.int64: dt.uint64}
LANES = 4  # elements per access of an elementwise program on a GPU renderer (16 bytes)
LANE_DTYPES = {dt.float32, dt.int32, dt.uint32}  # buffer types a program with lanes may have
LANE_NAMES = "xyzw"


def vector_lanes(prog: Program) -> int:
    """LANES when the program is elementwise over its outer loop in 32-bit types, so that each work-item of a GPU
    can load and store four neighbouring elements at once (16-byte accesses), else 1.

    That is: no inner loops, accumulators or local memory; the outer size a multiple of LANES; every buffer 32-bit
    and either read at the outer loop's position or only at constant positions (a scalar argument), the output
    written at the loop's position; the position used for nothing else. An H200 ran a fused chain over 64M floats
    through WGSL at 4,050 GB/s with vec4 accesses against 3,440 one float at a time (session 8's probe)."""
    outer = next((u for u in prog.uops if u.op is Op.RANGE), None)
    if prog.outer_size % LANES or prog.local_size or outer is None or outer.src[0].op is not Op.BOUND:
        return 1
    at_position: dict[int, bool] = {}  # buffer -> read at the loop's position (else only at constants)
    return LANES if all(_fits_lanes(u, outer, at_position) for u in prog.uops) else 1


def _fits_lanes(u: UOp, outer: UOp, at_position: dict[int, bool]) -> bool:
    """Whether one UOp leaves a program fit for lanes (see vector_lanes); notes how each buffer is read."""
    if u is outer or u.op in (Op.BOUND, Op.CONST, Op.END):
        return True
    if u.op is Op.PARAM:
        return u.dtype in LANE_DTYPES
    if u.op in ALU or u.op in CONVERSIONS:  # the position itself as a value (arange) would need a value per lane
        return (u.dtype in LANE_DTYPES or u.dtype == dt.bool_) and outer not in u.src
    if u.op in (Op.LOAD, Op.STORE):
        buf, idx = u.src[0], u.src[1]
        here = idx is outer
        if buf.op is not Op.PARAM or (u.op is Op.LOAD and len(u.src) > 2) or outer in u.src[2:]:
            return False  # a local array, a masked load, or the position stored as a value
        if not here and not (u.op is Op.LOAD and idx.op is Op.CONST):
            return False
        return at_position.setdefault(buf.arg, here) == here
    return False  # inner loops, accumulators, local memory, barriers, vector values


def safe_divisor(u: UOp) -> bool:
    """Whether an integer IDIV or MOD divides by a constant that cannot trap or overflow (not 0, not -1): it needs
    none of the guards the semantics spec asks of x // 0 and INT_MIN // -1."""
    d = u.src[1].dtype
    return d is not None and not d.is_float and u.src[1].op is Op.CONST and u.src[1].arg not in (0, -1)


class CStyleRenderer:
    """Renders a Program as a C-like function. Subclasses override the class attributes and hooks."""

    types: ClassVar[dict[DType, str]] = {
        dt.bool_: "bool", dt.int8: "char", dt.uint8: "unsigned char", dt.int16: "short", dt.int32: "int",
        dt.int64: "long long", dt.uint16: "unsigned short", dt.uint32: "unsigned int", dt.uint64: "unsigned long long",
        dt.float16: "half", dt.float32: "float", dt.float64: "double"}
    memory_types: ClassVar[dict[DType, str]] = {dt.bool_: "unsigned char"}  # how a dtype is stored, where that differs
    kernel_prefix = ""
    buffer_qualifier = ""
    index_type = "long long"
    restrict = "restrict"
    gpu = False  # True: the outer loop becomes one thread per iteration
    lanes_allowed = False  # True: elementwise programs move LANES elements per access (see vector_lanes)

    def render(self, prog: Program, name: str) -> str:
        """The source of one kernel function, `name`."""
        self.names: dict[int, str] = dict(prog.names)  # a program's value names; lanes get their own below
        self.lines: list[str] = []
        self.depth = 1
        self.prog = prog
        self.emit_program(prog)
        return "\n".join([*self.preamble(prog), self.signature(prog, name) + " {", *self.lines, "}"])

    def lanes(self, prog: Program) -> int:
        """Elements each outer iteration of `prog` handles: LANES for an elementwise program where allowed."""
        return vector_lanes(prog) if self.lanes_allowed else 1

    def items(self, prog: Program) -> int:
        """Iterations of the rendered outer loop: what a launch passes as `end`, and the work-items it needs."""
        return prog.outer_size // self.lanes(prog)

    def emit_program(self, prog: Program) -> None:
        self.lanes_now = self.lanes(prog)
        self.vector_buffers: set[int] = set()  # buffers read or written a vector at a time (for the preamble)
        if self.lanes_now == 1:
            for u in prog.uops:
                self.emit(u)
            return
        # the body once per lane, between vector loads and stores at the loop's position
        outer = next(u for u in prog.uops if u.op is Op.RANGE)
        self.vector_buffers = {u.src[0].arg for u in prog.uops if u.op in (Op.LOAD, Op.STORE) and u.src[1] is outer}
        self.emit(outer)
        body = [u for u in prog.uops if u.op in ALU or u.op in CONVERSIONS or u.op is Op.LOAD]
        stores = [u for u in prog.uops if u.op is Op.STORE]
        for u in body:
            if u.op is Op.LOAD:  # a vector at the loop's position, or a scalar every lane shares
                assert u.dtype is not None
                at_position = u.src[1] is outer
                read = self.vector_load(u.src[0], self.index(u.src[1]), u.dtype) if at_position else \
                    f"{self.memory(u.src[0])}[{self.index(u.src[1])}]"
                self.line(self.declare(self.name(u), self.vector_type(u.dtype) if at_position else self.types[u.dtype],
                                       read))
        values: dict[int, list[str]] = {id(st): [] for st in stores}
        for lane in range(self.lanes_now):
            for u in body:
                if u.op is Op.LOAD:
                    self.names[id(u)] = f"{prog.names[id(u)]}.{LANE_NAMES[lane]}" if u.src[1] is outer else \
                        prog.names[id(u)]
                else:
                    self.names[id(u)] = f"{prog.names[id(u)]}_{lane}"
                    self.emit(u)
            for st in stores:
                values[id(st)].append(self.ref(st.src[2]))
        for st in stores:
            d = st.src[2].dtype
            assert d is not None
            self.line(self.vector_store(st.src[0], self.index(st.src[1]), self.vector_of(values[id(st)], d), d))
        self.emit(next(u for u in prog.uops if u.op is Op.END))

    # ---- hooks for dialects ------------------------------------------------------------------------
    def preamble(self, prog: Program) -> list[str]:
        """Lines before the kernel (extensions, includes, helpers)."""
        return []

    def signature(self, prog: Program, name: str) -> str:
        params = [f"{self.buffer_qualifier}{self.mem_type(d)}* {self.restrict} b{i}".replace("  ", " ")
                  for i, d in enumerate(prog.buffer_dtypes)]
        return f"{self.kernel_prefix}void {name}({self.index_type} start, {self.index_type} end, {', '.join(params)})"

    def outer_loop(self, var: str, lo: str, hi: str, ctype: str) -> str:
        """The opening of the outermost loop (its variable of C type `ctype`); on a GPU, one thread per
        iteration."""
        if self.gpu:
            return f"{ctype} {var} = ({ctype})({lo} + {self.global_id()}); if ({var} < {hi}) {{"
        return f"for ({ctype} {var} = {lo}; {var} < {hi}; {var}++) {{"

    def local_array(self, ctype: str, name: str, size: int) -> str:
        """The declaration of a work-group's shared array (GPU dialects)."""
        raise NotImplementedError(f"{type(self).__name__}: no local memory")

    def barrier(self) -> str:
        raise NotImplementedError(f"{type(self).__name__}: no work-group barrier")

    def memory(self, buf: UOp) -> str:
        """The name a load or store uses for its buffer: a parameter, or a local array."""
        return self.name(buf) if buf.op is Op.DEFINE_LOCAL else f"b{buf.arg}"

    def inner_loop_hint(self, trips: Optional[int]) -> Optional[str]:
        """A line before an inner loop of `trips` iterations (None: not a constant), e.g. an unroll pragma."""
        return None

    def global_id(self) -> str:
        raise NotImplementedError

    # spellings of what a program with lanes needs (OpenCL C's here)
    def vector_type(self, d: DType, width: int = LANES) -> str:
        return f"{self.types[d]}{width}"

    def aligned_vector(self, buf: UOp, index: str, d: DType, width: int) -> str:
        """The `width` elements of `buf` from `index`, a multiple of `width`, as one access (an lvalue)."""
        space = "__local" if buf.op is Op.DEFINE_LOCAL else self.buffer_qualifier.strip()
        return f"(*({space} {self.vector_type(d, width)}*)({self.memory(buf)} + {index}))"

    def vector_load(self, buf: UOp, index: str, d: DType) -> str:
        return f"vload{LANES}({index}, {self.memory(buf)})"

    def vector_store(self, buf: UOp, index: str, value: str, d: DType) -> str:
        return f"vstore{LANES}({value}, {index}, {self.memory(buf)});"

    def vector_of(self, lanes: list[str], d: DType) -> str:
        return f"({self.vector_type(d)})({', '.join(lanes)})"

    def declare(self, name: str, ctype: str, expr: str) -> str:
        """The line that names a value."""
        return f"{ctype} {name} = {expr};"

    def literal(self, value: Any, d: DType) -> str:
        if d == dt.bool_:
            return "1" if value else "0"
        if d.is_float:
            v = float(value)
            if math.isnan(v):
                return f"(({self.types[d]})NAN)"
            if math.isinf(v):
                return f"(({self.types[d]}){'-' if v < 0 else ''}INFINITY)"
            text = v.hex()
            return f"{text}f" if d == dt.float32 else (f"(({self.types[d]}){text}f)" if d == dt.float16 else text)
        suffix = "L" if d.itemsize == 8 and self.index_type == "long" else ("LL" if d.itemsize == 8 else "")
        if d.kind == "u":
            suffix = "U" + suffix
        return f"{int(value)}{suffix}" if value != -(1 << 63) else f"({-(1 << 63) + 1}{suffix} - 1)"

    def mem_type(self, d: DType) -> str:
        return self.memory_types.get(d, self.types[d])

    def math_call(self, op: Op, x: str, d: DType) -> str:
        name = {Op.EXP2: "exp2", Op.LOG2: "log2", Op.SIN: "sin", Op.SQRT: "sqrt"}[op]
        return f"{name}({x})"

    # ---- the program ---------------------------------------------------------------------------------
    def ref(self, u: UOp) -> str:
        if u.op is Op.CONST:
            assert u.dtype is not None
            return self.literal(u.arg, u.dtype)
        if u.op is Op.BOUND:
            return str(u.arg)
        return self.names[id(u)]

    def name(self, u: UOp) -> str:
        """The name a value or statement of the program has in the source (a loop variable, an accumulator)."""
        return self.names[id(u)]

    def index(self, idx: UOp) -> str:
        """An index expression as a load or store writes it."""
        return self.ref(idx)

    def line(self, text: str) -> None:
        self.lines.append("  " * self.depth + text)

    def assign(self, u: UOp, expr: str) -> None:
        assert u.dtype is not None
        self.line(self.declare(self.ref(u), self.types[u.dtype], expr))

    def emit(self, u: UOp) -> None:
        op = u.op
        if op in (Op.PARAM, Op.BOUND, Op.CONST):
            return
        if op is Op.RANGE:
            lo, hi = (self.ref(s) for s in u.src)
            first = u.src[0].op is Op.BOUND
            assert u.dtype is not None
            ctype = self.types[u.dtype]
            trips = u.src[1].arg if u.src[1].op is Op.CONST and u.src[0].op is Op.CONST else None
            if not first and (hint := self.inner_loop_hint(trips)):
                self.line(hint)
            var = self.name(u)
            self.line(self.outer_loop(var, lo, hi, ctype) if first else
                      f"for ({ctype} {var} = {lo}; {var} < {hi}; {var}++) {{")
            self.depth += 1
        elif op is Op.END:
            self.depth -= 1
            self.line("}")
        elif op is Op.DEFINE_LOCAL:
            assert u.dtype is not None
            self.line(self.local_array(self.mem_type(u.dtype), self.name(u), u.arg))
        elif op is Op.BARRIER:
            self.line(self.barrier())
        elif op is Op.LOAD and u.width > 1:  # W aligned elements (the lowering proves the alignment)
            assert u.dtype is not None
            self.line(self.declare(self.name(u), self.vector_type(u.dtype, u.width),
                                   self.aligned_vector(u.src[0], self.ref(u.src[1]), u.dtype, u.width)))
        elif op is Op.STORE and u.src[2].width > 1:
            buf, idx, value = u.src[:3]
            assert value.dtype is not None
            self.line(f"{self.aligned_vector(buf, self.ref(idx), value.dtype, value.width)} = {self.ref(value)};")
        elif op is Op.LANE:
            self.assign(u, f"{self.ref(u.src[0])}.{LANE_NAMES[u.arg]}")
        elif op is Op.LOAD:
            buf, idx = u.src[0], u.src[1]
            read = f"{self.memory(buf)}[{self.ref(idx)}]"
            if u.dtype == dt.bool_:
                read = f"({read} != 0)"
            if len(u.src) > 2:
                assert u.dtype is not None
                read = f"({self.ref(u.src[2])} ? {read} : {self.literal(0, u.dtype)})"
            self.assign(u, read)
        elif op is Op.STORE:
            buf, idx, value = u.src[:3]
            self.line(self.guarded(u, f"{self.memory(buf)}[{self.ref(idx)}] = {self.ref(value)};"))
        elif op is Op.GROUP_FOLD:
            self.group_fold(u)
        elif op is Op.DEFINE_ACC:
            assert u.dtype is not None
            self.line(f"{self.types[u.dtype]} {self.name(u)} = {self.literal(u.arg, u.dtype)};")
        elif op is Op.ACC_UPDATE:
            acc, value = u.src
            assert u.dtype is not None
            self.line(f"{self.name(acc)} = {self.binary(u.arg, u.dtype, self.name(acc), self.ref(value))};")
        elif op is Op.ACC_FMA:
            acc, a, b = u.src
            self.line(f"{self.name(acc)} = fma({self.ref(a)}, {self.ref(b)}, {self.name(acc)});")
        elif op is Op.ACC_READ:
            self.assign(u, self.name(u.src[0]))
        elif op is Op.CAST:
            self.assign(u, self.cast(self.ref(u.src[0]), u.src[0].dtype, u.dtype))
        elif op is Op.BITCAST:
            self.assign(u, self.bitcast(self.ref(u.src[0]), u.src[0].dtype, u.dtype))
        elif op in ALU:
            self.assign(u, self.alu(u))
        else:
            raise NotImplementedError(f"{type(self).__name__}: no rule for IR op {op}")

    def guarded(self, store: UOp, text: str) -> str:
        """A store's statement, under its valid flag if it has one."""
        return f"if ({self.ref(store.src[3])}) {{ {text} }}" if len(store.src) > 3 else text

    def group_fold(self, u: UOp) -> None:
        """GROUP_FOLD through local memory: each work-item writes its value, then halves of the group fold the
        other half into theirs (a tree of log2(size) steps, each ended by a barrier that every work-item reaches);
        every work-item reads the result (`group_result`). A dialect may skip steps (`tree_step_guard`)."""
        value, array, lane = u.src
        fold, size = u.arg
        assert u.dtype is not None
        at, arr = self.index(lane), self.memory(array)
        self.line(f"{arr}[{at}] = {self.ref(value)};")
        self.line(self.barrier())
        step = size // 2
        while step:
            both = self.binary(fold, u.dtype, f"{arr}[{at}]", f"{arr}[{at} + {step}]")
            body = f"if ({at} < {step}) {{ {arr}[{at}] = {both}; }} {self.barrier()}"
            guard = self.tree_step_guard(u, step)
            self.line(f"if ({guard}) {{ {body} }}" if guard else body)
            step //= 2
        self.assign(u, self.group_result(u, arr))

    def tree_step_guard(self, u: UOp, step: int) -> Optional[str]:
        """A condition, the same for the whole group, under which a group fold's tree step `step` runs (None: it
        always runs)."""
        return None

    def group_result(self, u: UOp, arr: str) -> str:
        """The expression every work-item reads a group fold's result with, once the tree is done."""
        return f"{arr}[0]"

    def cast(self, x: str, a: DType, b: DType) -> str:
        if b == dt.bool_:
            return f"({x} != 0)"
        return f"(({self.types[b]})({x}))"

    def bitcast(self, x: str, a: DType, b: DType) -> str:
        """The bits of `x` (of dtype a) read as dtype b, a float and an integer type of one size."""
        raise NotImplementedError(f"{type(self).__name__}: no bitcast from {a.name} to {b.name}")

    def alu(self, u: UOp) -> str:
        op = u.op
        srcs = [self.ref(s) for s in u.src]
        if id(u) in self.prog.wrapping:  # signed overflow is undefined in C: compute in the unsigned type
            return self.wrapped(op, u.dtype, srcs)
        d = u.src[-1].dtype if op is not Op.WHERE else u.dtype
        assert d is not None
        if op is Op.WHERE:
            return f"({srcs[0]} ? {srcs[1]} : {srcs[2]})"
        if op in (Op.EXP2, Op.LOG2, Op.SIN, Op.SQRT):
            return self.math_call(op, srcs[0], d)
        if op is Op.RECIP:
            return f"({self.literal(1.0, d)} / {srcs[0]})"
        if op is Op.NEG:
            return f"(!{srcs[0]})" if d == dt.bool_ else f"(-({srcs[0]}))"  # a negative literal: not `--x`
        if op in (Op.IDIV, Op.MOD) and safe_divisor(u):
            return f"({srcs[0]} {'/' if op is Op.IDIV else '%'} {srcs[1]})"  # a divisor that cannot trap or overflow
        return self.binary(op, d, srcs[0], srcs[1])

    def wrapped(self, op: Op, d: DType, srcs: list[str]) -> str:
        """ADD, MUL or NEG of signed ints with two's complement wrapping, through the unsigned type of d's width."""
        t, u = self.types[d], self.types[UNSIGNED_OF[d]]
        if op is Op.NEG:
            return f"(({t})(({u})0 - ({u}){srcs[0]}))"
        sym = "+" if op is Op.ADD else "*"
        return f"(({t})(({u}){srcs[0]} {sym} ({u}){srcs[1]}))"

    def binary(self, op: Op, d: DType, a: str, b: str) -> str:
        if op is Op.ADD:
            return f"({a} || {b})" if d == dt.bool_ else f"({a} + {b})"
        if op is Op.MUL:
            return f"({a} && {b})" if d == dt.bool_ else f"({a} * {b})"
        if op is Op.FDIV:
            return f"({a} / {b})"
        if op is Op.MAX:
            if d.is_float:  # NaN wins and a tie keeps the first operand, as in torch.maximum (the semantics spec)
                return f"(({a} < {b} || {b} != {b}) ? {b} : {a})"
            return f"({a} || {b})" if d == dt.bool_ else f"({a} > {b} ? {a} : {b})"
        if op is Op.CMPLT:
            return f"({a} < {b})"
        if op is Op.CMPEQ:
            return f"({a} == {b})"
        if op in (Op.AND, Op.OR, Op.XOR):
            sym = {Op.AND: "&", Op.OR: "|", Op.XOR: "^"}[op]
            return f"({a} {sym} {b})"
        if op is Op.IDIV:
            if d.is_float:
                return f"trunc({a} / {b})"
            zero = self.literal(0, d)
            if d.kind == "u":
                return f"({b} == {zero} ? {zero} : {a} / {b})"
            return f"({b} == {zero} ? {zero} : ({b} == -1 ? -{a} : {a} / {b}))"  # never trap
        if op is Op.MOD:
            if d.is_float:
                return f"fmod({a}, {b})"
            zero = self.literal(0, d)
            guard = f"{b} == {zero}" if d.kind == "u" else f"{b} == {zero} || {b} == -1"
            return f"(({guard}) ? {zero} : {a} % {b})"
        raise NotImplementedError(f"{type(self).__name__}: no rule for {op} on {d.name}")
