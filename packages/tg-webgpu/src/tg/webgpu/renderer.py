"""WGSL: the core's C-like renderer with WebGPU's spelling, making up for what WGSL lacks.

- Storage has no bool, no 8- or 16-bit integers: those buffers are arrays of u32 words (four bytes or two halves
  to a word). A kernel writes its output of such a type with atomicAnd/atomicOr on the word, because the
  neighbouring work-items write the other parts of it. In registers they are i32/u32, renormalised (sign-extended
  or masked) after every op, so that they wrap like the real type.
- int64 and float64 exist only where the adapter has `shader-int64`/`shader-f64` (native wgpu; browsers have
  neither); the device offers those dtypes only then.
- No `?:` but select(), which evaluates both sides: a masked load reads its index anyway, which WebGPU keeps
  inside the buffer (out-of-range reads are clamped), and the value is dropped.
- NaN and inf literals would be constant-expression errors: they come from a function of their bits.
- exp2, log2, sin and float `%` follow tg's semantics spec through `wgsl_math` (WGSL leaves them loose).
- WGSL's integer `/` and `%` never trap (x / 0 = x, MIN / -1 = MIN): only a zero divisor needs a guard.
- A kernel that reads and writes every buffer one element per outer iteration (an elementwise chain) moves four
  elements per access (the core's `vector_lanes`): its buffers are bound as arrays of vec4.
"""
from __future__ import annotations

import math
import struct
from typing import Any, ClassVar, Optional

from tg.core import dtype as dt
from tg.core.dtype import DType
from tg.core.ir import Program
from tg.core.lower import reduce_identity
from tg.core.ops import ALU, Op
from tg.core.render import CStyleRenderer, safe_divisor
from tg.core.uop import UOp

from . import wgsl_math

PACKED = {dt.bool_: 8, dt.int8: 8, dt.uint8: 8, dt.int16: 16, dt.uint16: 16}  # bits, in u32 words
NARROW_INTS = {dt.int8: 8, dt.int16: 16, dt.uint8: 8, dt.uint16: 16}
# Vulkan compilers simplify floats as if there were no NaN, inf or -0.0 (x * 0 -> 0, x + 0 -> x, x - x -> 0,
# x != x -> false). Float literals are made from their bits plus this zero, which only the dispatch knows (it
# always has one group in z), so no such rule can fire; the compiler still hoists them out of loops.
OPAQUE_ZERO = "  let tg_zero = groups.z - 1u;"
MAX_GROUPS = 65535  # work-groups per dispatch dimension (WebGPU's default limit)
SOFT_MATH = {Op.EXP2: "exp2", Op.LOG2: "log2", Op.SIN: "sin"}
VECTOR_TYPES = {dt.float32: "vec4<f32>", dt.int32: "vec4<i32>", dt.uint32: "vec4<u32>"}


class WGSLRenderer(CStyleRenderer):
    types: ClassVar[dict[DType, str]] = {
        dt.bool_: "bool", dt.int8: "i32", dt.int16: "i32", dt.int32: "i32", dt.int64: "i64", dt.uint8: "u32",
        dt.uint16: "u32", dt.uint32: "u32", dt.uint64: "u64", dt.float16: "f16", dt.float32: "f32",
        dt.float64: "f64"}
    memory_types: ClassVar[dict[DType, str]] = dict.fromkeys(PACKED, "u32")
    gpu = True
    lanes_allowed = True

    def __init__(self, workgroup_size: int = 64, exact_division: bool = True, subgroups: bool = False):
        self.workgroup_size = workgroup_size
        # False where the driver's float division is not correctly rounded (NVIDIA): a correction step follows it
        self.exact_division = exact_division
        self.subgroups = subgroups  # the device has the `subgroup` feature: group folds end in subgroupAdd/Max

    def render(self, prog: Program, name: str) -> str:
        self.module: list[str] = []  # workgroup arrays: WGSL declares them at module scope
        self.math: set[tuple[str, DType]] = set()
        self.names, self.lines, self.depth, self.prog = dict(prog.names), [OPAQUE_ZERO], 1, prog
        # workgroup arrays read or written four at a time (a staged contraction's): held as vec4s
        self.vec4_locals = {id(u.src[0]) for u in prog.uops if u.src and u.src[0].op is Op.DEFINE_LOCAL and
                            ((u.op is Op.LOAD and u.width > 1) or (u.op is Op.STORE and u.src[2].width > 1))}
        self.emit_program(prog)
        return "\n".join([*self.preamble(prog), self.signature(prog, name) + " {", *self.lines, "}"])

    # ---- the module around the kernel ------------------------------------------------------------------
    def workgroup(self, prog: Program) -> int:
        """Work-items per group: the program's own (it shares local memory) or the device's."""
        return prog.local_size or self.workgroup_size

    def per_thread(self, prog: Program) -> int:
        """Outer iterations each work-item runs, a group's width apart (so neighbours still read neighbouring
        addresses). Large kernels run 8: more loads in flight per thread (an H200 copying 64M floats: 1,844 GB/s
        with one, 2,657 with eight); small ones keep one, so that every compute unit gets groups. Programs with
        vec4 lanes run 2: 16-byte accesses keep enough in flight (a hand-written vec4 chain over 64M floats on an
        H200: 3,530 GB/s with one, 4,050 with two, 3,900 with eight)."""
        if prog.local_size:
            return 1
        items = self.items(prog)
        if self.lanes(prog) > 1:
            return 2 if items >= 1 << 20 else 1
        return 8 if items >= 1 << 23 else 4 if items >= 1 << 21 else 1

    def groups(self, prog: Program) -> int:
        """Work-groups a dispatch of `prog` needs."""
        return -(-self.items(prog) // (self.workgroup(prog) * self.per_thread(prog)))

    def preamble(self, prog: Program) -> list[str]:
        used = set(prog.buffer_dtypes) | {u.dtype for u in prog.uops if u.dtype is not None}
        lines = ["enable f16;"] if dt.float16 in used else []
        for i, d in enumerate(prog.buffer_dtypes):
            element = ("atomic<u32>" if i == 0 else "u32") if d in PACKED else self.types[d]
            if i in self.vector_buffers:
                element = VECTOR_TYPES[d]
            access = "read_write" if i == 0 else "read"
            lines.append(f"@group(0) @binding({i}) var<storage, {access}> b{i}: array<{element}>;")
            if d in PACKED:
                lines.append(self.packed_store(d) if i == 0 else self.packed_load(i, d))
        lines += self.module
        lines += wgsl_math.functions(self.math)
        return lines

    def packed_load(self, i: int, d: DType) -> str:
        bits, per = PACKED[d], 32 // PACKED[d]
        word = f"(b{i}[i >> {per.bit_length() - 1}u] >> (u32(i & {per - 1}) * {bits}u))"
        value = {dt.bool_: f"({word} & 255u) != 0u", dt.uint8: f"{word} & 255u", dt.uint16: f"{word} & 65535u",
                 dt.int8: f"bitcast<i32>({word} << 24u) >> 24u", dt.int16: f"bitcast<i32>({word} << 16u) >> 16u"}[d]
        return f"fn tg_load_b{i}(i: i32) -> {self.types[d]} {{ return {value}; }}"

    def packed_store(self, d: DType) -> str:
        bits, per = PACKED[d], 32 // PACKED[d]
        mask = (1 << bits) - 1
        value = "select(0u, 1u, v)" if d == dt.bool_ else f"(u32(v) & {mask}u)"
        return (f"fn tg_store_b0(i: i32, v: {self.types[d]}) {{\n  let shift = u32(i & {per - 1}) * {bits}u;\n"
                f"  atomicAnd(&b0[i >> {per.bit_length() - 1}u], ~({mask}u << shift));\n"
                f"  atomicOr(&b0[i >> {per.bit_length() - 1}u], {value} << shift);\n}}")

    def signature(self, prog: Program, name: str) -> str:
        sub = ", @builtin(subgroup_size) tg_sgs: u32, @builtin(subgroup_invocation_id) tg_sid: u32" \
            if self.uses_subgroups(prog) else ""
        return (f"@compute @workgroup_size({self.workgroup(prog)})\nfn {name}(@builtin(workgroup_id) wid: vec3<u32>, "
                f"@builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) lid: u32{sub})")

    def uses_subgroups(self, prog: Program) -> bool:
        """Whether `prog` is rendered with subgroup operations (the device must have enabled the feature)."""
        return self.subgroups and any(u.op is Op.GROUP_FOLD and self.subgroup_fold(u) for u in prog.uops)

    @staticmethod
    def subgroup_fold(u: UOp) -> bool:
        """Whether a group fold can end in a subgroup operation: sums of f32, i32, u32 and maxima of the integers
        (a float subgroupMax leaves NaN to the driver; tg's max lets NaN win)."""
        return u.dtype in (dt.int32, dt.uint32) or (u.dtype == dt.float32 and u.arg[0] is Op.ADD)

    # With subgroups, a group fold's local-memory tree runs only while its halves are at least a subgroup wide,
    # then each subgroup folds the partial results left (one per lane) with one subgroup operation, so every
    # work-item holds the result. Subgroup sizes differ by device (8 on lavapipe, 32 on NVIDIA): `tg_sgs`, uniform
    # over the group, decides at run time, so every work-item still takes the same steps and barriers.
    def tree_step_guard(self, u: UOp, step: int) -> Optional[str]:
        return f"tg_sgs <= {step}u" if self.subgroups and self.subgroup_fold(u) else None

    def group_result(self, u: UOp, arr: str) -> str:
        if not (self.subgroups and self.subgroup_fold(u)):
            return super().group_result(u, arr)
        assert u.dtype is not None
        fold, size = u.arg
        identity = self.literal(reduce_identity(Op.SUM if fold is Op.ADD else Op.RMAX, u.dtype), u.dtype)
        left = f"tg_sid < min({size}u, tg_sgs)"  # the partial results the tree left, one per lane
        mine = f"select({identity}, {arr}[min(tg_sid, {size - 1}u)], {left})"
        return f"subgroup{'Add' if fold is Op.ADD else 'Max'}({mine})"

    def outer_loop(self, var: str, lo: str, hi: str, ctype: str) -> str:
        # groups past 65,535 in x go on in y (the dispatch limit per dimension)
        size, width, per = self.prog.outer_size, self.workgroup(self.prog), self.per_thread(self.prog)
        group = "(wid.x + wid.y * groups.x)"
        if per > 1:
            first = f"{lo} + {ctype}({group} * {width * per}u + tg_r * {width}u + lid)"
            return f"for (var tg_r = 0u; tg_r < {per}u; tg_r++) {{ let {var} = {first}; if ({var} < {hi}) {{"
        first = f"let {var} = {lo} + {ctype}({group} * {width}u + lid);"
        if self.prog.local_size and size % width == 0:
            # a program that syncs its group (barriers must be reached by all of it) checks whole groups, a uniform
            # condition, and only where the dispatch has groups to spare (it is split over y)
            groups = self.groups(self.prog)
            return first + (" {" if groups <= MAX_GROUPS else f" if ({group} < {groups}u) {{")
        return first + f" if ({var} < {hi}) {{"

    def vector_type(self, d: DType, width: int = 4) -> str:
        assert width == 4, "WGSL programs move vec4s"
        return VECTOR_TYPES[d]

    def vector_load(self, buf: UOp, index: str, d: DType) -> str:
        return f"{self.memory(buf)}[{index}]"  # the buffer is bound as an array of vec4 (preamble)

    def vector_store(self, buf: UOp, index: str, value: str, d: DType) -> str:
        return f"{self.memory(buf)}[{index}] = {value};"

    def vector_of(self, lanes: list[str], d: DType) -> str:
        return f"{VECTOR_TYPES[d]}({', '.join(lanes)})"

    def declare(self, name: str, ctype: str, expr: str) -> str:
        return f"let {name}: {ctype} = {expr};"

    def local_array(self, ctype: str, name: str, size: int) -> str:
        self.module.append(f"var<workgroup> {name}: array<{ctype}, {size}>;")
        return ""

    def barrier(self) -> str:
        return "workgroupBarrier();"

    # ---- values ---------------------------------------------------------------------------------------
    def ref(self, u: UOp) -> str:
        if u.op is Op.BOUND:  # the whole outer loop in one dispatch: start 0, end its size
            return self.literal(0 if u.arg == "start" else self.items(self.prog), self.prog.index_dtype)
        return super().ref(u)

    def literal(self, value: Any, d: DType) -> str:
        if d == dt.bool_:
            return "true" if value else "false"
        if d.is_float:  # from its bits plus an integer zero the compiler cannot see through (see OPAQUE_ZERO)
            wide = d == dt.float64
            bits = struct.unpack("<Q", struct.pack("<d", value))[0] if wide else \
                struct.unpack("<I", struct.pack("<f", value))[0]
            text = f"bitcast<{'f64' if wide else 'f32'}>({bits}{'lu + u64' if wide else 'u + '}(tg_zero))"
            return f"f16({text})" if d == dt.float16 else text
        suffix = {"i32": "i", "u32": "u", "i64": "li", "u64": "lu"}[self.types[d]]
        low = -(1 << (63 if suffix == "li" else 31))
        return f"({low + 1}{suffix} - 1{suffix})" if int(value) == low else f"{int(value)}{suffix}"

    def assign(self, u: UOp, expr: str) -> None:
        assert u.dtype is not None
        if u.dtype in NARROW_INTS and (u.op in ALU or u.op in (Op.CAST, Op.BITCAST)):
            expr = self.narrowed(expr, u.dtype)
        self.line(self.declare(self.ref(u), self.types[u.dtype], expr))

    def narrowed(self, expr: str, d: DType) -> str:
        """An int8/16 or uint8/16 value kept in 32 bits, wrapped to its width."""
        bits = NARROW_INTS[d]
        return f"(({expr} << {32 - bits}u) >> {32 - bits}u)" if d.kind == "i" else f"({expr} & {(1 << bits) - 1}u)"

    def index(self, idx: UOp) -> str:
        return f"i32({self.ref(idx)})" if idx.dtype is not None and idx.dtype.itemsize == 8 else self.ref(idx)

    def element(self, buf: UOp, idx: UOp) -> str:
        """One element of a buffer or workgroup array, as an lvalue (a component of a vec4 array where the
        array is held as vec4s)."""
        if id(buf) in self.vec4_locals:
            return f"{self.memory(buf)}[({self.index(idx)}) / 4][({self.index(idx)}) % 4]"
        return f"{self.memory(buf)}[{self.index(idx)}]"

    def vector_access(self, buf: UOp, idx: UOp, d: DType) -> str:
        """Four elements from idx (a multiple of 4): one vec4 of a vec4 workgroup array, else four loads."""
        if id(buf) in self.vec4_locals:
            return f"{self.memory(buf)}[({self.index(idx)}) / 4]"
        at = self.index(idx)
        return f"{VECTOR_TYPES[d]}({', '.join(f'{self.memory(buf)}[{at} + {k}]' for k in range(4))})"

    def emit(self, u: UOp) -> None:
        op = u.op
        if op is Op.LOAD and u.width > 1:
            assert u.dtype is not None
            read = self.vector_access(u.src[0], u.src[1], u.dtype)
            self.line(f"let {self.name(u)}: {VECTOR_TYPES[u.dtype]} = {read};")
        elif op is Op.STORE and u.src[2].width > 1:
            buf, idx, value = u.src[:3]
            assert id(buf) in self.vec4_locals, "vector stores go to workgroup arrays"
            self.line(f"{self.memory(buf)}[({self.index(idx)}) / 4] = {self.ref(value)};")
        elif op is Op.LOAD:
            buf, idx = u.src[0], u.src[1]
            assert u.dtype is not None
            packed = buf.op is Op.PARAM and u.dtype in PACKED
            read = f"tg_load_b{buf.arg}({self.index(idx)})" if packed else self.element(buf, idx)
            if len(u.src) > 2:
                read = f"select({self.literal(0, u.dtype)}, {read}, {self.ref(u.src[2])})"
            self.line(f"let {self.name(u)}: {self.types[u.dtype]} = {read};")
        elif op is Op.STORE:
            buf, idx, value = u.src[:3]
            if buf.op is Op.PARAM and value.dtype in PACKED:
                self.line(self.guarded(u, f"tg_store_b0({self.index(idx)}, {self.ref(value)});"))
            else:
                self.line(self.guarded(u, f"{self.element(buf, idx)} = {self.ref(value)};"))
        elif op is Op.DEFINE_LOCAL and id(u) in self.vec4_locals:
            assert u.dtype is not None and u.arg % 4 == 0
            self.local_array(VECTOR_TYPES[u.dtype], self.name(u), u.arg // 4)
        elif op is Op.DEFINE_LOCAL:
            assert u.dtype is not None
            self.local_array(self.types[u.dtype], self.name(u), u.arg)
        elif op is Op.DEFINE_ACC:
            assert u.dtype is not None
            self.line(f"var {self.name(u)}: {self.types[u.dtype]} = {self.literal(u.arg, u.dtype)};")
        elif op is Op.ACC_UPDATE:
            acc, value = u.src
            assert u.dtype is not None
            update = self.binary(u.arg, u.dtype, self.name(acc), self.ref(value))
            self.line(f"{self.name(acc)} = {self.narrowed(update, u.dtype) if u.dtype in NARROW_INTS else update};")
        elif op is Op.END and u.src[0].src[0].op is Op.BOUND and self.per_thread(self.prog) > 1:
            self.depth -= 1
            self.line("} }")
        elif op is Op.RANGE and u.src[0].op is not Op.BOUND:
            lo, hi = (self.ref(s) for s in u.src)
            var = self.name(u)
            self.line(f"for (var {var}: {self.types[u.dtype]} = {lo}; {var} < {hi}; {var}++) {{")
            self.depth += 1
        else:
            super().emit(u)

    def math_call(self, op: Op, x: str, d: DType) -> str:
        if op is Op.SQRT:  # WGSL leaves sqrt of a negative number indeterminate (lavapipe: sqrt(-inf) = inf)
            return f"select(sqrt({x}), {self.literal(math.nan, d)}, {x} < {self.literal(0, d)})"
        wide = dt.float64 if d == dt.float64 else dt.float32
        self.math.add((SOFT_MATH[op], wide))
        call = f"tg_{SOFT_MATH[op]}_{self.types[wide]}({x if d == wide else f'f32({x})'})"
        return f"f16({call})" if d == dt.float16 else call

    def bitcast(self, x: str, a: DType, b: DType) -> str:
        # WGSL has no 16-bit integers (and naga no bitcast of vec2<f16>): a half's bits through the pack functions,
        # exact for every half (a NaN may come back as the canonical one)
        if a == dt.float16:
            bits = f"pack2x16float(vec2<f32>(f32({x}), 0.0))"
            return bits if b == dt.uint16 else f"bitcast<i32>({bits})"  # narrowed to 16 bits after
        if b == dt.float16:
            return f"f16(unpack2x16float(u32({x}) & 65535u).x)"
        return f"bitcast<{self.types[b]}>({x})"

    def cast(self, x: str, a: DType, b: DType) -> str:
        if b == dt.bool_ and a.is_float:  # by the bits: NaN is True, -0.0 False
            return f"(!({x} == {self.literal(0, a)}) || {self.isnan(x, a)})"
        if b == dt.bool_:
            return f"({x} != {self.literal(0, a)})"
        if a == dt.bool_:
            return f"select({self.literal(0, b)}, {self.literal(1, b)}, {x})"
        if a == dt.float16 and not b.is_float:  # compared in float32: the bounds of b's range overflow float16
            x, a = f"f32({x})", dt.float32
        if a.is_float and b.is_float and b.itemsize < a.itemsize:
            # rounded for sure, through the narrow type's bits: NVIDIA kept f16(x) at float32 precision inside a
            # kernel (x.half().float() of 2049 gave 2049, 65519 stayed 65519), and f32(f64) the same way
            if b == dt.float16:
                wide = x if a == dt.float32 else f"f32({x})"
                return f"f16(unpack2x16float(pack2x16float(vec2<f32>({wide}, 0.0)) | tg_zero).x)"
            return self.opaque(f"f32({x})", dt.float32)
        if a.is_float and not b.is_float:  # truncate, saturate to b's range, NaN -> 0 (the semantics spec)
            lo, hi = (0, (1 << (8 * b.itemsize)) - 1) if b.kind == "u" else (-(1 << (8 * b.itemsize - 1)),
                                                                             (1 << (8 * b.itemsize - 1)) - 1)
            top, bottom = self.literal(float(hi + 1), a), self.literal(float(lo), a)
            conv = f"{self.types[b]}({x})"
            return (f"select(select(select({conv}, {self.literal(hi, b)}, {x} >= {top}), {self.literal(lo, b)}, "
                    f"{x} <= {bottom}), {self.literal(0, b)}, {self.isnan(x, a)})")
        if not a.is_float and not b.is_float and a.kind != b.kind and a.itemsize == b.itemsize == 4:
            return f"bitcast<{self.types[b]}>({x})"
        if not a.is_float and a != dt.bool_ and a.itemsize <= 4 and b.itemsize == 8 and not b.is_float:
            # naga picks sign or zero extension by the target's signedness (u64(-1i) was 4294967295, i64(3000000000u)
            # negative): signed sources widen to i64, unsigned ones are masked to their 32 bits. And on lavapipe a
            # compare of i64(x) with a constant (x[-1]'s `index < 0`) came out false: the opaque zero stops that fold
            wide = f"(i64({x}) + i64(tg_zero))"
            if a.kind != "i":
                wide = f"({wide} & 4294967295li)"
            return wide if b == dt.int64 else f"bitcast<u64>({wide})"
        return f"{self.types[b]}({x})"

    def alu(self, u: UOp) -> str:
        op = u.op
        srcs = [self.ref(s) for s in u.src]
        if op is Op.WHERE and u.dtype in (dt.float32, dt.float64):
            # through the bits: NVIDIA's compiler turns select(x, c, x < c) into max(x, c), which drops NaN
            return f"select({self.opaque(srcs[2], u.dtype)}, {self.opaque(srcs[1], u.dtype)}, {srcs[0]})"
        if op is Op.WHERE:
            return f"select({srcs[2]}, {srcs[1]}, {srcs[0]})"
        d = u.src[-1].dtype
        assert d is not None
        if op is Op.NEG and d.kind == "u":
            return f"({self.literal(0, d)} - {srcs[0]})"
        if op is Op.NEG and d in (dt.float32, dt.float64):  # flip the sign bit: x + -x stays x - x (NaN for inf)
            b = "u64" if d == dt.float64 else "u32"
            sign = "0x8000000000000000lu" if d == dt.float64 else "0x80000000u"
            return f"bitcast<{self.types[d]}>(bitcast<{b}>({srcs[0]}) ^ {sign})"
        if op in (Op.IDIV, Op.MOD) and d.kind == "i" and not (self.nonnegative(u.src[0]) and safe_divisor(u)
                                                            and u.src[1].arg > 0):
            return self.signed_division(op, d, srcs[0], srcs[1])
        if op in (Op.IDIV, Op.MOD) and d.kind == "u" and not safe_divisor(u):
            zero = self.literal(0, d)
            return f"select({srcs[0]} {'/' if op is Op.IDIV else '%'} {srcs[1]}, {zero}, {srcs[1]} == {zero})"
        if op is Op.MUL and d in (dt.float32, dt.float64):  # through the bits: never fused into an FMA with an add
            return self.opaque(f"{srcs[0]} * {srcs[1]}", d)
        if op in (Op.FDIV, Op.RECIP) and d in (dt.float32, dt.float64):
            # a function (wgsl_math DIV): a correction step where the driver's division is inexact, and on every
            # driver NaN for 0 / 0 and inf / inf decided at run time (NVIDIA's compiler folds x / x to 1)
            a = srcs[0] if op is Op.FDIV else self.literal(1.0, d)
            self.math.add(("exact_div" if self.exact_division else "div", d))
            return f"tg_div_{self.types[d]}({a}, {srcs[-1]})"
        if op is Op.MOD and d.is_float:
            wide = dt.float64 if d == dt.float64 else dt.float32
            self.math.add(("fmod", wide))
            if d == wide:
                return f"tg_fmod_{self.types[wide]}({srcs[0]}, {srcs[1]})"
            return f"f16(tg_fmod_f32(f32({srcs[0]}), f32({srcs[1]})))"
        return super().alu(u)

    def opaque(self, x: str, d: DType) -> str:
        """x, through its bits and the dispatch's zero: the compiler can no longer match it in a pattern."""
        bits = "u64" if d == dt.float64 else "u32"
        return f"bitcast<{self.types[d]}>(bitcast<{bits}>({x}) | {bits}(tg_zero))"

    def signed_division(self, op: Op, d: DType, a: str, b: str) -> str:
        """a / b (truncating) or a % b (the dividend's sign) of signed ints, on the magnitudes in unsigned arithmetic:
        Vulkan leaves signed division and remainder of negative operands undefined. x / 0 = x % 0 = 0; MIN / -1
        wraps to MIN."""
        u = "u64" if d.itemsize == 8 else "u32"
        zero, t = self.literal(0, d), self.types[d]
        ua, ub = (f"select({u}({x}), {u}(0) - {u}({x}), {x} < {zero})" for x in (a, b))
        if op is Op.IDIV:
            value, negative = f"{ua} / {ub}", f"({a} < {zero}) != ({b} < {zero})"
        else:
            value, negative = f"{ua} % {ub}", f"{a} < {zero}"
        signed = f"bitcast<{t}>(select({value}, {u}(0) - ({value}), {negative}))"
        return f"select({signed}, {zero}, {b} == {zero})"

    def nonnegative(self, u: UOp) -> bool:
        """Whether an integer value is never negative: loop positions, and sums, products and quotients of them
        with non-negative constants (index arithmetic)."""
        if u.op in (Op.RANGE, Op.BOUND):
            return True
        if u.op is Op.CONST:
            return bool(u.arg >= 0)
        return u.op in (Op.ADD, Op.MUL, Op.IDIV, Op.MOD) and all(map(self.nonnegative, u.src))

    def isnan(self, x: str, d: DType) -> str:
        wide = dt.float64 if d == dt.float64 else dt.float32
        self.math.add(("edges", wide))
        return f"tg_isnan_{self.types[wide]}({x if d == wide else f'f32({x})'})"

    def wrapped(self, op: Op, d: DType, srcs: list[str]) -> str:
        # WGSL's integer arithmetic wraps: no detour through unsigned types
        return f"(-({srcs[0]}))" if op is Op.NEG else f"({srcs[0]} {'+' if op is Op.ADD else '*'} {srcs[1]})"

    def binary(self, op: Op, d: DType, a: str, b: str) -> str:
        if d == dt.bool_ and op in (Op.MAX, Op.XOR, Op.CMPLT):
            return {Op.MAX: f"({a} || {b})", Op.XOR: f"({a} != {b})", Op.CMPLT: f"(!{a} && {b})"}[op]
        if op is Op.MAX:
            return f"select({a}, {b}, {a} < {b} || {self.isnan(b, d)})" if d.is_float else f"max({a}, {b})"
        if op is Op.IDIV and d.is_float:
            return f"trunc({a} / {b})"
        return super().binary(op, d, a, b)
