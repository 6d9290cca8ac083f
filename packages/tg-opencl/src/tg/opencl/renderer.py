"""OpenCL C: the core's C-like renderer with OpenCL's spelling (one work-item per outer iteration)."""
from __future__ import annotations

from typing import ClassVar

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

    def global_id(self) -> str:
        return "(long)get_global_id(0)"


class OpenCLCPURenderer(OpenCLRenderer):
    """For OpenCL on a CPU (PoCL): each work-item loops over a contiguous chunk of the outer loop, so the
    inner loops stay loops that the device compiler vectorises, as on the llvm device."""

    gpu = False

    def outer_loop(self, var: str, lo: str, hi: str) -> str:
        chunk = f"(({hi}) - ({lo}) + (long)get_global_size(0) - 1) / (long)get_global_size(0)"
        first = f"{lo} + (long)get_global_id(0) * ({chunk})"
        return (f"long {var}_lo = {first}; long {var}_hi = min({var}_lo + ({chunk}), (long)({hi})); "
                f"for (long {var} = {var}_lo; {var} < {var}_hi; {var}++) {{")

    def preamble(self, prog: Program) -> list[str]:
        used: set[DType] = set(prog.buffer_dtypes) | {u.dtype for u in prog.uops if u.dtype is not None}
        lines = []
        if dt.float16 in used:
            lines.append("#pragma OPENCL EXTENSION cl_khr_fp16 : enable")
        if dt.float64 in used:
            lines.append("#pragma OPENCL EXTENSION cl_khr_fp64 : enable")
        return lines
