"""OpenCL C: the core's C-like renderer with OpenCL's spelling (one work-item per outer iteration)."""
from __future__ import annotations

from typing import ClassVar, Optional

from tg.core import dtype as dt
from tg.core.dtype import DType
from tg.core.ir import Program
from tg.core.render import CStyleRenderer


class OpenCLRenderer(CStyleRenderer):
    types: ClassVar[dict[DType, str]] = {**CStyleRenderer.types, dt.int64: "long", dt.uint8: "uchar",
                                         dt.uint16: "ushort", dt.uint32: "uint", dt.uint64: "ulong"}
    memory_types: ClassVar[dict[DType, str]] = {dt.bool_: "uchar"}
    kernel_prefix = "__kernel "
    buffer_qualifier = "__global "
    index_type = "long"
    gpu = True
    lanes_allowed = True  # elementwise programs: vload4/vstore4, the body once per lane

    def cast(self, x: str, a: DType, b: DType) -> str:
        if a.is_float and not b.is_float and b != dt.bool_:  # the semantics spec: truncate, saturate, NaN -> 0
            return f"convert_{self.types[b]}_sat({x})"
        return super().cast(x, a, b)

    def bitcast(self, x: str, a: DType, b: DType) -> str:
        return f"as_{self.types[b]}({x})"

    def global_id(self) -> str:
        return "(long)get_global_id(0)"

    def local_array(self, ctype: str, name: str, size: int) -> str:
        return f"__local {ctype} {name}[{size}] __attribute__((aligned(16)));"  # for vector accesses

    def barrier(self) -> str:
        return "barrier(CLK_LOCAL_MEM_FENCE);"

    def inner_loop_hint(self, trips: Optional[int]) -> Optional[str]:
        # GPUs: long reduce loops of register-tiled kernels unrolled by 8 (an H100 4096^2 matmul: 20.5 -> 22.2
        # TFLOP/s); short ones (a 3x3 kernel's) are left to the compiler
        return "#pragma unroll 8" if self.gpu and self.prog.tiled and trips is not None and trips >= 32 else None

    def preamble(self, prog: Program) -> list[str]:
        used: set[DType] = set(prog.buffer_dtypes) | {u.dtype for u in prog.uops if u.dtype is not None}
        lines = ["#pragma OPENCL FP_CONTRACT OFF"]  # the semantics spec: no implicit a*b+c fusion (ACC_FMA is explicit)
        if dt.float16 in used:
            lines.append("#pragma OPENCL EXTENSION cl_khr_fp16 : enable")
        if dt.float64 in used:
            lines.append("#pragma OPENCL EXTENSION cl_khr_fp64 : enable")
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
