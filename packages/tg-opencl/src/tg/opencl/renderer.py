"""OpenCL C: the core's C-like renderer with OpenCL's spelling (one work-item per outer iteration)."""
from __future__ import annotations

from typing import ClassVar, Optional

from tg.core import dtype as dt
from tg.core.dtype import DType
from tg.core.ir import Program
from tg.core.ops import ALU, Op
from tg.core.render import CStyleRenderer

# exp2 and log2 for float32 in plain arithmetic. CPU OpenCL runtimes (PoCL) call a scalar libm per
# work-item for these, which made a fused chain ending in exp 11x slower than without it; these vectorise.
SOFT_MATH = {
    Op.EXP2: """inline float tg_exp2f(float x) {
  float c = clamp(x, -150.0f, 128.0f), n = rint(c), f = c - n;  /* 2^x = 2^n * 2^f, |f| <= 1/2 */
  float p = 1.5252733804059841e-05f;  /* 2^f = e^(f ln2): Taylor to degree 7, error < 1e-8 */
  p = p * f + 1.5403530393381606e-04f; p = p * f + 1.3333558146428441e-03f;
  p = p * f + 9.6181291076284772e-03f; p = p * f + 5.5504108664821580e-02f;
  p = p * f + 2.4022650695910071e-01f; p = p * f + 6.9314718055994531e-01f; p = p * f + 1.0f;
  int k = (int)n, k1 = k >> 1, k2 = k - k1;  /* two scalings keep each power of two a normal float */
  float r = p * as_float((k1 + 127) << 23) * as_float((k2 + 127) << 23);
  return isnan(x) ? x : r;
}""",
    Op.LOG2: """inline float tg_log2f(float x) {
  int tiny = x < 1.17549435e-38f;  /* subnormals: scale into the normal range first */
  int b = as_int(tiny ? x * 8388608.0f : x);
  int e = ((b >> 23) & 255) - 127 - (tiny ? 23 : 0);
  float m = as_float((b & 0x007fffff) | 0x3f800000);  /* x = m 2^e, m in [1, 2) */
  int big = m > 1.41421356f;
  m = big ? m * 0.5f : m; e += big;
  float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;  /* log2 m = 2 atanh(s) / ln 2, |s| < 0.172 */
  float p = 1.0f / 9; p = p * s2 + 1.0f / 7; p = p * s2 + 1.0f / 5; p = p * s2 + 1.0f / 3; p = p * s2 + 1.0f;
  float r = (float)e + 2.8853900817779268f * s * p;
  r = x == 0.0f ? -INFINITY : r; r = x < 0.0f ? NAN : r;
  return (isinf(x) || isnan(x)) && !(x < 0.0f) ? x : r;
}""",
}


class OpenCLRenderer(CStyleRenderer):
    types: ClassVar[dict[DType, str]] = {**CStyleRenderer.types, dt.int64: "long", dt.uint8: "uchar",
                                         dt.uint16: "ushort", dt.uint32: "uint", dt.uint64: "ulong"}
    memory_types: ClassVar[dict[DType, str]] = {dt.bool_: "uchar"}
    kernel_prefix = "__kernel "
    buffer_qualifier = "__global "
    index_type = "long"
    gpu = True
    lanes_allowed = True  # elementwise programs: vload4/vstore4, the body once per lane

    soft_math = False  # set for CPU devices: exp2/log2 of float32 from SOFT_MATH instead of the runtime's

    def cast(self, x: str, a: DType, b: DType) -> str:
        if a.is_float and not b.is_float and b != dt.bool_:  # the semantics spec: truncate, saturate, NaN -> 0
            return f"convert_{self.types[b]}_sat({x})"
        return super().cast(x, a, b)

    def global_id(self) -> str:
        return "(long)get_global_id(0)"

    def local_array(self, ctype: str, name: str, size: int) -> str:
        return f"__local {ctype} {name}[{size}];"

    def barrier(self) -> str:
        return "barrier(CLK_LOCAL_MEM_FENCE);"

    def inner_loop_hint(self, trips: Optional[int]) -> Optional[str]:
        # GPUs: long reduce loops of register-tiled kernels unrolled by 8 (an H100 4096^2 matmul: 20.5 -> 22.2
        # TFLOP/s); short ones (a 3x3 kernel's) are left to the compiler
        return "#pragma unroll 8" if self.gpu and self.prog.tiled and trips is not None and trips >= 32 else None

    def math_call(self, op: Op, x: str, d: DType) -> str:
        if self.soft_math and d == dt.float32 and op in SOFT_MATH:
            return f"tg_{op.name.lower()}f({x})"
        return super().math_call(op, x, d)

    def preamble(self, prog: Program) -> list[str]:
        used: set[DType] = set(prog.buffer_dtypes) | {u.dtype for u in prog.uops if u.dtype is not None}
        lines = ["#pragma OPENCL FP_CONTRACT OFF"]  # the semantics spec: no implicit a*b+c fusion (ACC_FMA is explicit)
        if dt.float16 in used:
            lines.append("#pragma OPENCL EXTENSION cl_khr_fp16 : enable")
        if dt.float64 in used:
            lines.append("#pragma OPENCL EXTENSION cl_khr_fp64 : enable")
        if self.soft_math:
            ops = {u.op for u in prog.uops if u.op in ALU and u.dtype == dt.float32}
            lines += [SOFT_MATH[o] for o in SOFT_MATH if o in ops]
        return lines


class OpenCLCPURenderer(OpenCLRenderer):
    """For OpenCL on a CPU (PoCL): each work-item loops over a contiguous chunk of the outer loop, so the
    inner loops stay loops that the device compiler vectorises, as on the llvm device."""

    gpu = False

    def outer_loop(self, var: str, lo: str, hi: str, ctype: str) -> str:
        chunk = f"(({hi}) - ({lo}) + (long)get_global_size(0) - 1) / (long)get_global_size(0)"
        first = f"{lo} + (long)get_global_id(0) * ({chunk})"
        return (f"long {var}_lo = {first}; long {var}_hi = min({var}_lo + ({chunk}), (long)({hi})); "
                f"for (long {var} = {var}_lo; {var} < {var}_hi; {var}++) {{")
