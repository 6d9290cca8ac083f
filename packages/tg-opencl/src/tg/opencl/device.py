"""The `opencl` device: kernels rendered to OpenCL C and run through pyopencl on any OpenCL platform.

`opencl` is the first device of all platforms, `opencl:N` the N-th. The core's compile pipeline
(tg.core.compiled) lowers, renders with the OpenCL C renderer and caches binaries on disk (keyed by the
source, the device and the driver), so a second process skips the OpenCL compiler.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import pyopencl as cl

from tg.core import config
from tg.core import dtype as dt
from tg.core.compiled import KERNEL_NAME, CompiledDevice, CompiledProgram, Compiler, Target
from tg.core.device import Allocator, Buffer, DeviceError
from tg.core.ir import Program
from tg.core.kernel import Kernel

from .renderer import OpenCLCPURenderer, OpenCLRenderer

INSTALL_HINT = ("no OpenCL device found. For the CPU: apt-get install pocl-opencl-icd (Debian/Ubuntu); for a GPU, "
                "install its vendor's OpenCL driver (NVIDIA: the CUDA driver's libnvidia-opencl)")


def all_devices() -> list[Any]:
    """Every OpenCL device on every platform, in platform order."""
    try:
        platforms = cl.get_platforms()
    except (cl.Error, cl.LogicError, cl.RuntimeError) as e:
        raise DeviceError(f"{INSTALL_HINT} ({e})") from e
    return [d for p in platforms for d in p.get_devices()]


def device_names() -> list[str]:
    count = len(all_devices())
    return ["opencl", *(f"opencl:{i}" for i in range(1, count))]


class CLAllocator(Allocator):
    def __init__(self, context: Any, queue: Any, device_name: str):
        super().__init__()
        self.context, self.queue, self.device_name = context, queue, device_name

    def _alloc(self, nbytes: int) -> Any:
        try:
            buf = cl.Buffer(self.context, cl.mem_flags.READ_WRITE, max(nbytes, 1))
            # allocation is lazy in OpenCL: touch it so that out-of-memory shows here, with the size
            cl.enqueue_fill_buffer(self.queue, buf, np.uint8(0), 0, max(nbytes, 1))
            return buf
        except cl.MemoryError as e:
            raise MemoryError(f"opencl: out of memory allocating {nbytes / 2**20:.1f} MiB on {self.device_name}; "
                              "free tensors or use smaller batches") from e

    def copyin(self, handle: Any, src: np.ndarray) -> None:
        cl.enqueue_copy(self.queue, handle, np.ascontiguousarray(src), is_blocking=True)

    def copyout(self, dst: np.ndarray, handle: Any) -> None:
        cl.enqueue_copy(self.queue, dst, handle, is_blocking=True)

    def copy(self, dst: Any, src: Any, nbytes: int) -> None:
        cl.enqueue_copy(self.queue, dst, src, byte_count=nbytes)  # queued, in order with the kernels


class CLCompiler(Compiler):
    """OpenCL C -> a device binary (through the driver's compiler) -> a kernel object."""

    cache_name = "opencl"

    def __init__(self, context: Any, device: Any):
        self.context, self.device = context, device
        # division must round like the CPU backends; OpenCL allows 2.5 ulp unless asked (where the device can)
        correct = device.single_fp_config & cl.device_fp_config.CORRECTLY_ROUNDED_DIVIDE_SQRT
        self.options = ["-cl-fp32-correctly-rounded-divide-sqrt"] if correct else []
        self.fingerprint = f"{device.name}|{device.driver_version}|{device.platform.name}|{' '.join(self.options)}"

    def compile(self, source: str, name: str, prog: Optional[Program] = None) -> bytes:
        try:
            with warnings.catch_warnings():  # compiler chatter; a failed build raises with its full log below
                warnings.simplefilter("ignore", cl.CompilerWarning)
                program = cl.Program(self.context, source).build(options=self.options)
        except cl.RuntimeError as e:
            raise RuntimeError(f"OpenCL build failed on {self.device.name}:\n{e}\n--- source ---\n{source}") from e
        return bytes(program.get_info(cl.program_info.BINARIES)[0])

    def load(self, binary: bytes, name: str, prog: Program) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", cl.CompilerWarning)
            return getattr(cl.Program(self.context, [self.device], [binary]).build(options=self.options), KERNEL_NAME)


class OpenCLDevice(CompiledDevice):
    """One OpenCL device (a GPU, or PoCL on the CPU)."""

    def __init__(self, name: str):
        index = int(name.split(":")[1]) if ":" in name else 0
        devices = all_devices()
        if not devices:
            raise DeviceError(INSTALL_HINT)
        if index >= len(devices):
            raise DeviceError(f"{name}: there are only {len(devices)} OpenCL device(s)")
        self.cl_device = devices[index]
        self.context = cl.Context([self.cl_device])
        self.queue = cl.CommandQueue(self.context)
        super().__init__(name, CLAllocator(self.context, self.queue, self.cl_device.name),
                         CLCompiler(self.context, self.cl_device))
        ext = self.cl_device.extensions
        supported = {dt.bool_, dt.int8, dt.uint8, dt.int16, dt.uint16, dt.int32, dt.uint32, dt.int64, dt.uint64,
                     dt.float32}
        supported |= {dt.float16} if "cl_khr_fp16" in ext else set()
        supported |= {dt.float64} if "cl_khr_fp64" in ext else set()
        self.dtypes = frozenset(supported)
        self.is_gpu = bool(self.cl_device.type & cl.device_type.GPU)
        if self.is_gpu:
            self.split_reduces_for_a_gpu()
        local = config.local_size()  # work-items per group on GPUs (TG_LOCAL_SIZE to explore)
        self.local_size = min(local, self.cl_device.max_work_group_size) if self.is_gpu else None
        # one work-item per output tile (GPUs; and elementwise kernels on CPUs, which PoCL vectorises across
        # work-items), or on CPUs for reductions one work-item per chunk of the outer loop (measured on PoCL:
        # matmul 1024^2 54 -> 65 GFLOP/s; the elementwise chain fell from 3.1 to 1.6 GB/s that way)
        # CPUs: a register tile that fits the vector registers (16 floats wide: AVX-512, else AVX2's 16 registers)
        wide = self.cl_device.preferred_vector_width_float >= 16
        # CPUs: exp2/log2 as arithmetic that vectorises (PoCL calls a scalar libm per work-item: a chain ending in exp
        # ran 11x slower)
        self.per_tile = Target(OpenCLRenderer(), gpu=True, narrow=config.cl_narrow(), vectors=True,
                               soft_math=not self.is_gpu)
        self.per_chunk = Target(OpenCLCPURenderer(), tile=(32, 8) if wide else (16, 4), soft_math=True)
        self.work_items = max(1, self.cl_device.max_compute_units)

    @property
    def search_key(self) -> str:
        return f"opencl|{self.compiler.fingerprint}|{self.local_size}"

    def target(self, kernel: Kernel) -> Target:
        return self.per_tile if self.is_gpu or kernel.reduce is None else self.per_chunk

    def launch(self, program: CompiledProgram, buffers: Sequence[Buffer]) -> None:
        n, prog = program.items, program.prog
        local = prog.local_size or self.local_size  # a program that shares local memory fixes its group size
        if not program.target.gpu:  # a few work-items, each looping over its chunk
            global_size: tuple[int, ...] = (max(1, min(n, self.work_items)),)
        else:
            global_size = (-(-n // local) * local,) if local else (n,)
        with self.lock:  # a kernel object's arguments are set, then it is enqueued: not atomic across threads
            program.runner(self.queue, global_size, (local,) if local else None, np.int64(0), np.int64(n),
                           *(b.handle for b in buffers))

    def launch_notes(self, program: CompiledProgram) -> list[str]:
        return [f"local size {self.local_size or 'driver default'}"]

    def synchronize(self) -> None:
        self.queue.finish()
