"""Render a tg IR program as LLVM IR text.

Loop counters and accumulators live in allocas that LLVM's mem2reg turns into registers; the
optimiser then vectorises the loops for the host CPU. A register tile arrives already in vector values
(`<16 x float>`: see lower.py), so the optimiser has a few dozen instructions to work on instead of hundreds.
Every pointer parameter is `noalias`: tg never passes overlapping buffers to one kernel.
"""
from __future__ import annotations

import math
import struct
from typing import Any

from tg.core import dtype as dt
from tg.core.dtype import DType
from tg.core.lower import Program
from tg.core.ops import ALU, Op
from tg.core.render import safe_divisor
from tg.core.uop import UOp

LLVM_TYPES = {dt.bool_: "i1", dt.int8: "i8", dt.uint8: "i8", dt.int16: "i16", dt.int32: "i32", dt.int64: "i64",
              dt.uint16: "i16", dt.uint32: "i32", dt.uint64: "i64",
              dt.float16: "half", dt.float32: "float", dt.float64: "double"}
FLOAT_SUFFIX = {dt.float16: "f16", dt.float32: "f32", dt.float64: "f64"}


def ltype(d: DType, memory: bool = False) -> str:
    """The LLVM type of a dtype; bools are i1 in registers and i8 in memory."""
    return "i8" if memory and d == dt.bool_ else LLVM_TYPES[d]


def vtype(d: DType, width: int, memory: bool = False) -> str:
    """The LLVM type of `width` lanes of a dtype (the scalar type for one lane)."""
    return ltype(d, memory) if width == 1 else f"<{width} x {ltype(d, memory)}>"


def splat(value: Any, d: DType, width: int) -> str:
    """A constant: `value` in every lane."""
    if width == 1:
        return literal(value, d)
    if value == 0 and math.copysign(1.0, float(value)) > 0:  # every bit zero (not -0.0)
        return "zeroinitializer"
    return "<" + ", ".join([f"{ltype(d)} {literal(value, d)}"] * width) + ">"


def literal(value: Any, d: DType) -> str:
    if d == dt.bool_:
        return "true" if value else "false"
    if d.is_float:
        v = float(value)
        if d == dt.float32:
            v = float(struct.unpack("f", struct.pack("f", v))[0]) if math.isfinite(v) else v
        if d == dt.float16:
            return "0xH" + struct.pack(">e", v).hex().upper()
        return "0x" + struct.pack(">d", v).hex().upper()
    return str(int(value))


class LLVMRenderer:
    """Program -> LLVM IR module text with one function, `name`."""

    def __init__(self, triple: str, datalayout: str, cpu: str, features: str):
        self.triple, self.datalayout, self.cpu, self.features = triple, datalayout, cpu, features

    def render(self, prog: Program, name: str) -> str:
        """A whole module holding one function, `name`."""
        # only the packed entry is called: the kernel is inlined into it first thing (alwaysinline), so that LLVM
        # optimises its body once (inlined by the ordinary inliner, it was optimised before and after: +50% compile)
        function, declares = self.function(prog, name, linkage="internal", inline=True)
        return "\n".join([f'target triple = "{self.triple}"', f'target datalayout = "{self.datalayout}"', "",
                          *sorted(declares), "", function, "", self.packed(prog, name), "", self.attributes()])

    @staticmethod
    def packed(prog: Program, name: str) -> str:
        """`name_packed(start, end, ptr *buffers)`: the kernel with its buffers in one array, the one signature that
        the thread pool calls every kernel through."""
        n = len(prog.buffer_dtypes)
        loads = [f"  %a{i}.p = getelementptr inbounds ptr, ptr %args, i64 {i}\n  %a{i} = load ptr, ptr %a{i}.p"
                 for i in range(n)]
        params = "".join(f", ptr %a{i}" for i in range(n))
        return "\n".join([f"define void @{name}_packed(i64 %start, i64 %end, ptr %args) #0 {{", *loads,
                          f"  call void @{name}(i64 %start, i64 %end{params})", "  ret void", "}"])

    def attributes(self) -> str:
        return f'attributes #0 = {{ nounwind "target-cpu"="{self.cpu}" "target-features"="{self.features}" }}'

    def function(self, prog: Program, name: str, linkage: str = "", inline: bool = False) -> tuple[str, set[str]]:
        """(the function's text, the intrinsic declarations it needs)."""
        self.lines: list[str] = []
        self.allocas: list[str] = []
        self.declares: set[str] = set()
        self.tmp = 0
        self.block = "begin"  # the basic block being written (a masked load's phi names it)
        self.names = prog.names
        self.unrolled = self.vector_loops(prog)
        params = ", ".join(f"ptr noalias %b{i}" for i in range(len(prog.buffer_dtypes)))
        for u in prog.uops:
            self.emit(u)
        body = "\n".join(["entry:", *self.allocas, "  br label %begin", "begin:", *self.lines, "  ret void"])
        head = (f"define {linkage + ' ' if linkage else ''}void @{name}(i64 %start, i64 %end, {params})"
                f"{' alwaysinline' if inline else ''} #0 {{")
        return "\n".join([head, body, "}"]), self.declares

    @staticmethod
    def vector_loops(prog: Program) -> set[int]:
        """The loops that accumulate vectors directly in their body (a tile's reduce loop)."""
        found, open_loops = set(), []
        for u in prog.uops:
            if u.op is Op.RANGE:
                open_loops.append(u)
            elif u.op is Op.END:
                open_loops.pop()
            elif u.op in (Op.ACC_FMA, Op.ACC_UPDATE) and u.width > 1 and open_loops:
                found.add(id(open_loops[-1]))
        return found

    # ---- helpers ---------------------------------------------------------------------------------
    def ref(self, u: UOp) -> str:
        """How an operand is written: constants inline, everything else by name."""
        if u.op is Op.CONST:
            assert u.dtype is not None
            return literal(u.arg, u.dtype)
        if u.op is Op.BOUND:
            return f"%{u.arg}"
        return f"%{self.name(u)}"

    def name(self, u: UOp) -> str:
        """A value's (or a loop's, an accumulator's) name in the function: its place in the program."""
        return self.names[id(u)]

    def fresh(self) -> str:
        self.tmp += 1
        return f"%t{self.tmp}"

    def line(self, text: str) -> None:
        self.lines.append("  " + text)

    def label(self, name: str) -> None:
        self.lines.append(f"{name}:")
        self.block = name

    def intrinsic(self, base: str, d: DType, n_args: int = 1, width: int = 1) -> str:
        t = vtype(d, width)
        suffix = FLOAT_SUFFIX.get(d) or ltype(d)
        name = f"@llvm.{base}.{suffix if width == 1 else f'v{width}{suffix}'}"
        self.declares.add(f"declare {t} {name}({', '.join([t] * n_args)})")
        return name

    # ---- instructions ----------------------------------------------------------------------------
    def emit(self, u: UOp) -> None:
        op, d = u.op, u.dtype
        if op in (Op.PARAM, Op.BOUND, Op.CONST):
            return
        if op is Op.BROADCAST:
            assert d is not None
            one = self.fresh()
            self.line(f"{one} = insertelement <1 x {ltype(d)}> undef, {ltype(d)} {self.ref(u.src[0])}, i64 0")
            self.line(f"%{self.name(u)} = shufflevector <1 x {ltype(d)}> {one}, <1 x {ltype(d)}> undef, "
                      f"<{u.width} x i32> zeroinitializer")
        elif op is Op.LANE:
            assert d is not None
            vector = u.src[0]
            self.line(f"%{self.name(u)} = extractelement {vtype(d, vector.width)} {self.ref(vector)}, i64 {u.arg}")
        elif op is Op.VECTOR:
            assert d is not None
            t, v = vtype(d, u.width), "undef"
            for lane, s in enumerate(u.src):
                nxt = f"%{self.name(u)}" if lane == u.width - 1 else self.fresh()
                self.line(f"{nxt} = insertelement {t} {v}, {ltype(d)} {self.ref(s)}, i64 {lane}")
                v = nxt
        elif op is Op.RANGE:
            name = self.name(u)
            self.allocas.append(f"  %{name}.ptr = alloca i64")
            self.line(f"store i64 {self.ref(u.src[0])}, ptr %{name}.ptr")
            self.line(f"br label %{name}.head")
            self.label(f"{name}.head")
            self.line(f"%{name} = load i64, ptr %{name}.ptr")
            self.line(f"%{name}.go = icmp slt i64 %{name}, {self.ref(u.src[1])}")
            self.line(f"br i1 %{name}.go, label %{name}.body, label %{name}.exit")
            self.label(f"{name}.body")
        elif op is Op.END:
            name = self.name(u.src[0])
            self.line(f"%{name}.next = add nsw i64 %{name}, 1")
            self.line(f"store i64 %{name}.next, ptr %{name}.ptr")
            if id(u.src[0]) in self.unrolled:
                # a tile's reduce loop, unrolled by 4: the optimiser's cost model leaves vector bodies rolled
                # (the scalar tiles it replaced were unrolled by 4; with and without, matmul speed was within noise)
                n = len([d for d in self.declares if d.startswith("!")])  # two metadata nodes per loop
                self.declares |= {f"!{n} = distinct !{{!{n}, !{n + 1}}}",
                                  f'!{n + 1} = !{{!"llvm.loop.unroll.count", i32 4}}'}
                self.line(f"br label %{name}.head, !llvm.loop !{n}")
            else:
                self.line(f"br label %{name}.head")
            self.label(f"{name}.exit")
        elif op is Op.LOAD:
            self.load(u)
        elif op is Op.STORE:
            param, idx, value = u.src
            assert param.dtype is not None
            mt, w = ltype(param.dtype, memory=True), u.width
            ptr = self.fresh()
            self.line(f"{ptr} = getelementptr inbounds {mt}, ptr %b{param.arg}, i64 {self.ref(idx)}")
            v = self.ref(value)
            if param.dtype == dt.bool_:
                wide = self.fresh()
                self.line(f"{wide} = zext {vtype(dt.bool_, w)} {v} to {vtype(dt.bool_, w, memory=True)}")
                v = wide
            self.line(f"store {vtype(param.dtype, w, memory=True)} {v}, ptr {ptr}, align {param.dtype.itemsize}")
        elif op is Op.DEFINE_ACC:
            assert d is not None
            t = vtype(d, u.width)
            self.allocas.append(f"  %{self.name(u)}.ptr = alloca {t}")
            self.line(f"store {t} {splat(u.arg, d, u.width)}, ptr %{self.name(u)}.ptr")
        elif op is Op.ACC_UPDATE:
            acc, value = u.src
            assert d is not None
            old = self.fresh()
            self.line(f"{old} = load {vtype(d, u.width)}, ptr %{self.name(acc)}.ptr")
            new = self.binary(u.arg, d, old, self.ref(value), accumulate=True, width=u.width)
            self.line(f"store {vtype(d, u.width)} {new}, ptr %{self.name(acc)}.ptr")
        elif op is Op.ACC_FMA and u.width > 1:
            acc, a, b = u.src
            assert d is not None and d != dt.float16
            t, old, new = vtype(d, u.width), self.fresh(), self.fresh()
            self.line(f"{old} = load {t}, ptr %{self.name(acc)}.ptr")
            fma = self.intrinsic("fma", d, 3, u.width)
            self.line(f"{new} = call {t} {fma}({t} {self.ref(a)}, {t} {self.ref(b)}, {t} {old})")
            self.line(f"store {t} {new}, ptr %{self.name(acc)}.ptr")
        elif op is Op.ACC_FMA:
            acc, a, b = u.src
            assert d is not None
            t, old, new = ltype(d), self.fresh(), self.fresh()
            self.line(f"{old} = load {t}, ptr %{self.name(acc)}.ptr")
            if d == dt.float16:  # no half-precision fma without a runtime library: widen (exact products)
                wa, wb, wo, wide = self.fresh(), self.fresh(), self.fresh(), self.fresh()
                for w, v in ((wa, self.ref(a)), (wb, self.ref(b)), (wo, old)):
                    self.line(f"{w} = fpext half {v} to float")
                fma = self.intrinsic("fma", dt.float32, 3)
                self.line(f"{wide} = call float {fma}(float {wa}, float {wb}, float {wo})")
                self.line(f"{new} = fptrunc float {wide} to half")
            else:
                fma = self.intrinsic("fma", d, 3)
                self.line(f"{new} = call {t} {fma}({t} {self.ref(a)}, {t} {self.ref(b)}, {t} {old})")
            self.line(f"store {t} {new}, ptr %{self.name(acc)}.ptr")
        elif op is Op.ACC_READ:
            assert d is not None
            self.line(f"%{self.name(u)} = load {vtype(d, u.width)}, ptr %{self.name(u.src[0])}.ptr")
        elif op is Op.CAST:
            self.cast(u)
        elif op is Op.BITCAST:
            assert d is not None and u.src[0].dtype is not None
            self.line(f"%{self.name(u)} = bitcast {ltype(u.src[0].dtype)} {self.ref(u.src[0])} to {ltype(d)}")
        elif op in ALU:
            self.alu(u)
        else:
            raise NotImplementedError(f"LLVM renderer: no rule for IR op {op}")

    def load(self, u: UOp) -> None:
        param, idx = u.src[0], u.src[1]
        assert u.dtype is not None and param.dtype is not None
        if u.width > 1:
            self.vector_load(u)
            return
        mt = ltype(param.dtype, memory=True)
        index, ptr = self.ref(idx), self.fresh()
        raw = self.fresh() if u.dtype == dt.bool_ else f"%{self.name(u)}"  # a bool is loaded as a byte
        if len(u.src) > 2:
            # a masked read touches no memory outside the buffer: the load sits in a block of its own, entered when
            # the mask holds (the loop vectoriser turns that into masked vector loads; a load from a clamped address
            # instead was a gather, one lane at a time: a padded copy ran at 2 GB/s), and a phi gives 0 otherwise
            at, here = self.fresh()[1:], self.block
            self.line(f"{ptr} = getelementptr {mt}, ptr %b{param.arg}, i64 {index}")
            self.line(f"br i1 {self.ref(u.src[2])}, label %{at}.load, label %{at}.done")
            self.label(f"{at}.load")
            loaded = self.fresh()
            self.line(f"{loaded} = load {mt}, ptr {ptr}")
            self.line(f"br label %{at}.done")
            self.label(f"{at}.done")
            zero = 0 if param.dtype == dt.bool_ else literal(0, param.dtype)
            self.line(f"{raw} = phi {mt} [ {loaded}, %{at}.load ], [ {zero}, %{here} ]")
        else:
            self.line(f"{ptr} = getelementptr inbounds {mt}, ptr %b{param.arg}, i64 {index}")
            self.line(f"{raw} = load {mt}, ptr {ptr}")
        if u.dtype == dt.bool_:
            self.line(f"%{self.name(u)} = icmp ne i8 {raw}, 0")

    def vector_load(self, u: UOp) -> None:
        """W consecutive elements. A masked one is LLVM's masked load, which touches no memory in a masked-off lane
        (a padded row's first lanes may lie before the buffer: so no `inbounds` on its address either)."""
        param, idx, w = u.src[0], u.src[1], u.width
        assert u.dtype is not None and param.dtype is not None
        mt, vt, ptr = ltype(param.dtype, True), vtype(param.dtype, w, True), self.fresh()
        raw = self.fresh() if u.dtype == dt.bool_ else f"%{self.name(u)}"
        align = param.dtype.itemsize
        if len(u.src) > 2:
            self.line(f"{ptr} = getelementptr {mt}, ptr %b{param.arg}, i64 {self.ref(idx)}")
            name = f"@llvm.masked.load.v{w}{FLOAT_SUFFIX.get(param.dtype) or mt}.p0"
            self.declares.add(f"declare {vt} {name}(ptr, i32, <{w} x i1>, {vt})")
            self.line(f"{raw} = call {vt} {name}(ptr {ptr}, i32 {align}, <{w} x i1> {self.ref(u.src[2])}, "
                      f"{vt} zeroinitializer)")
        else:
            self.line(f"{ptr} = getelementptr inbounds {mt}, ptr %b{param.arg}, i64 {self.ref(idx)}")
            self.line(f"{raw} = load {vt}, ptr {ptr}, align {align}")
        if u.dtype == dt.bool_:
            self.line(f"%{self.name(u)} = icmp ne {vt} {raw}, zeroinitializer")

    def cast(self, u: UOp) -> None:
        src = u.src[0]
        a, b = src.dtype, u.dtype
        assert a is not None and b is not None
        if dt.float16 in (a, b) and dt.float32 not in (a, b) and a != b and dt.bool_ not in (a, b):
            # conversions between half and anything but float become runtime-library calls
            # (__truncdfhf2, __floatdihf, ...) that a JIT cannot resolve: go through float32
            mid = self.fresh()
            self.line(f"{mid} = {self.cast_instr(self.ref(src), a, dt.float32)}")
            self.line(f"%{self.name(u)} = {self.cast_instr(mid, dt.float32, b)}")
            return
        self.line(f"%{self.name(u)} = {self.cast_instr(self.ref(src), a, b)}")

    def cast_instr(self, v: str, a: DType, b: DType) -> str:
        """The instruction that converts value v from dtype a to dtype b."""
        ta, tb = ltype(a), ltype(b)
        if ta == tb:  # same bits (int8 <-> uint8)
            instr = f"add {tb} {v}, 0"
        elif b == dt.bool_:
            instr = f"fcmp une {ta} {v}, {literal(0, a)}" if a.is_float else f"icmp ne {ta} {v}, 0"
        elif a.is_float and b.is_float:
            instr = f"{'fpext' if b.itemsize > a.itemsize else 'fptrunc'} {ta} {v} to {tb}"
        elif a.is_float:  # the semantics spec: truncate toward zero, saturate, NaN -> 0 (plain fptosi is poison)
            name = f"@llvm.{'fptoui' if b.kind == 'u' else 'fptosi'}.sat.{tb}.{FLOAT_SUFFIX.get(a) or ta}"
            self.declares.add(f"declare {tb} {name}({ta})")
            instr = f"call {tb} {name}({ta} {v})"
        elif b.is_float:
            instr = f"{'uitofp' if a.kind in 'ub' else 'sitofp'} {ta} {v} to {tb}"
        elif b.itemsize > a.itemsize or a == dt.bool_:
            instr = f"{'zext' if a.kind in 'ub' else 'sext'} {ta} {v} to {tb}"
        else:
            instr = f"trunc {ta} {v} to {tb}"
        return instr

    def alu(self, u: UOp) -> None:
        op = u.op
        srcs = [self.ref(s) for s in u.src]
        d = u.src[-1].dtype if op is not Op.WHERE else u.dtype
        assert d is not None and u.dtype is not None
        if u.width > 1:  # lower.py vectorises only ops that LLVM writes alike for vectors (see VECTOR_OPS)
            self.vector_alu(u, op, d, srcs)
            return
        t = ltype(d)
        if op is Op.WHERE:
            self.line(f"%{self.name(u)} = select i1 {srcs[0]}, {t} {srcs[1]}, {t} {srcs[2]}")
        elif op in (Op.EXP2, Op.LOG2, Op.SIN, Op.SQRT):
            self.unary_math(u, {Op.EXP2: "exp2", Op.LOG2: "log2", Op.SIN: "sin", Op.SQRT: "sqrt"}[op], srcs[0])
        elif op is Op.RECIP:
            self.line(f"%{self.name(u)} = fdiv {t} {literal(1.0, d)}, {srcs[0]}")
        elif op is Op.NEG:
            if d.is_float:
                self.line(f"%{self.name(u)} = fneg {t} {srcs[0]}")
            else:
                zero = "true" if d == dt.bool_ else 0
                self.line(f"%{self.name(u)} = {'xor' if d == dt.bool_ else 'sub'} {t} {zero}, {srcs[0]}")
        elif op in (Op.IDIV, Op.MOD) and safe_divisor(u):  # no guards needed (see safe_divisor)
            kind = ("udiv" if d.kind in "ub" else "sdiv") if op is Op.IDIV else ("urem" if d.kind in "ub" else "srem")
            self.line(f"%{self.name(u)} = {kind} {t} {srcs[0]}, {srcs[1]}")
        else:
            self.binary(op, d, srcs[0], srcs[1], out=f"%{self.name(u)}")

    def vector_alu(self, u: UOp, op: Op, d: DType, srcs: list[str]) -> None:
        t, w = vtype(d, u.width), u.width
        if op is Op.WHERE:
            self.line(f"%{self.name(u)} = select {vtype(dt.bool_, w)} {srcs[0]}, {t} {srcs[1]}, {t} {srcs[2]}")
        elif op is Op.NEG:
            instr = f"fneg {t} {srcs[0]}" if d.is_float else f"xor {t} {splat(True, d, w)}, {srcs[0]}"
            assert d.is_float or d == dt.bool_
            self.line(f"%{self.name(u)} = {instr}")
        else:
            self.binary(op, d, srcs[0], srcs[1], out=f"%{self.name(u)}", width=w)

    def unary_math(self, u: UOp, name: str, x: str) -> None:
        d = u.dtype
        assert d is not None
        if d == dt.float16:  # compute in float32: libm has no half-precision entry points
            wide, res = self.fresh(), self.fresh()
            self.line(f"{wide} = fpext half {x} to float")
            self.line(f"{res} = call float {self.intrinsic(name, dt.float32)}(float {wide})")
            self.line(f"%{self.name(u)} = fptrunc float {res} to half")
        else:
            self.line(f"%{self.name(u)} = call {ltype(d)} {self.intrinsic(name, d)}({ltype(d)} {x})")

    def binary(self, op: Op, d: DType, a: str, b: str, accumulate: bool = False, out: str = "", width: int = 1) -> str:
        """Emit a binary op on operands of dtype d (`width` lanes) into `out` (a fresh name by default); returns it."""
        t, out = vtype(d, width), out or self.fresh()
        is_float, is_bool, unsigned = d.is_float, d == dt.bool_, d.kind == "u"
        if op is Op.ADD:
            instr = (f"fadd {'reassoc ' if accumulate else ''}{t} {a}, {b}" if is_float else
                     f"{'or' if is_bool else 'add'} {t} {a}, {b}")
        elif op is Op.MUL:
            instr = f"fmul {t} {a}, {b}" if is_float else f"{'and' if is_bool else 'mul'} {t} {a}, {b}"
        elif op is Op.FDIV:
            instr = f"fdiv {t} {a}, {b}"
        elif op is Op.MAX:
            if is_bool:
                instr = f"or {t} {a}, {b}"
            elif is_float and not accumulate:  # the spec's maximum: NaN wins, a tie keeps the first operand
                less, nan, pick = self.fresh(), self.fresh(), self.fresh()
                c = vtype(dt.bool_, width)
                self.line(f"{less} = fcmp olt {t} {a}, {b}")
                self.line(f"{nan} = fcmp uno {t} {b}, {b}")
                self.line(f"{pick} = or {c} {less}, {nan}")
                instr = f"select {c} {pick}, {t} {b}, {t} {a}"
            else:  # a reduction's fold: NaN wins; which zero a max over -0.0 and 0.0 gives is not specified
                base = "maximum" if is_float else ("umax" if unsigned else "smax")
                instr = f"call {t} {self.intrinsic(base, d, 2, width)}({t} {a}, {t} {b})"
        elif op is Op.CMPLT:
            cmp = "ult" if unsigned or is_bool else "slt"
            instr = f"fcmp olt {t} {a}, {b}" if is_float else f"icmp {cmp} {t} {a}, {b}"
        elif op is Op.CMPEQ:
            instr = f"fcmp oeq {t} {a}, {b}" if is_float else f"icmp eq {t} {a}, {b}"
        elif op in (Op.AND, Op.OR, Op.XOR):
            instr = f"{op.name.lower()} {t} {a}, {b}"
        elif op in (Op.IDIV, Op.MOD):
            assert width == 1, "lower.py does not vectorise integer division"
            return self.division(op, d, a, b, out)
        else:
            raise NotImplementedError(f"LLVM renderer: no rule for {op} on {d.name}")
        self.line(f"{out} = {instr}")
        return out

    def division(self, op: Op, d: DType, a: str, b: str, out: str) -> str:
        """Integer division and remainder that never trap: x/0 gives 0, like NumPy."""
        t = ltype(d)
        if d.is_float:
            if op is Op.MOD:
                self.line(f"{out} = frem {t} {a}, {b}")
            else:
                q = self.fresh()
                self.line(f"{q} = fdiv {t} {a}, {b}")
                self.line(f"{out} = call {t} {self.intrinsic('trunc', d)}({t} {q})")
            return out
        unsigned = d.kind in "ub"
        zero, safe, raw = self.fresh(), self.fresh(), self.fresh()
        self.line(f"{zero} = icmp eq {t} {b}, 0")
        bad = zero
        if not unsigned:  # INT_MIN / -1 traps too: divide by 1 instead and fix the sign below
            minus1, either = self.fresh(), self.fresh()
            self.line(f"{minus1} = icmp eq {t} {b}, -1")
            self.line(f"{either} = or i1 {zero}, {minus1}")
            bad = either
        self.line(f"{safe} = select i1 {bad}, {t} 1, {t} {b}")
        kind = ("udiv" if unsigned else "sdiv") if op is Op.IDIV else ("urem" if unsigned else "srem")
        self.line(f"{raw} = {kind} {t} {a}, {safe}")
        if not unsigned:
            neg, fixed = self.fresh(), self.fresh()
            self.line(f"{neg} = sub {t} 0, {a}")
            self.line(f"{fixed} = select i1 {minus1}, {t} {neg if op is Op.IDIV else 0}, {t} {raw}")
            raw = fixed
        self.line(f"{out} = select i1 {zero}, {t} 0, {t} {raw}")
        return out
