"""The `opencl` device: kernels rendered to OpenCL C and run through pyopencl on any OpenCL platform.

`opencl` is the first device of all platforms, `opencl:N` the N-th. Programs are built once per
device and their binaries cached on disk (keyed by the source and the device and driver), so a
second process skips the OpenCL compiler.
"""
from __future__ import annotations

import hashlib
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyopencl as cl

from tg.core import cache, config, search, stats
from tg.core import dtype as dt
from tg.core.device import Allocator, Buffer, Device, DeviceError
from tg.core.ir import Program
from tg.core.kernel import AST, Kernel
from tg.core.lower import lower
from tg.core.opt import Opts

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


def cache_dir() -> Optional[Path]:
    """Where built binaries are kept (TG_CACHE_DIR, else ~/.cache/tg; see tg.core.cache), or None."""
    return cache.directory("opencl")


class OpenCLDevice(Device):
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
        super().__init__(name, CLAllocator(self.context, self.queue, self.cl_device.name))
        ext = self.cl_device.extensions
        supported = {dt.bool_, dt.int8, dt.uint8, dt.int16, dt.uint16, dt.int32, dt.uint32, dt.int64, dt.uint64,
                     dt.float32}
        supported |= {dt.float16} if "cl_khr_fp16" in ext else set()
        supported |= {dt.float64} if "cl_khr_fp64" in ext else set()
        self.dtypes = frozenset(supported)
        self.is_gpu = bool(self.cl_device.type & cl.device_type.GPU)
        local = config.local_size()  # work-items per group on GPUs (TG_LOCAL_SIZE to explore)
        self.local_size = min(local, self.cl_device.max_work_group_size) if self.is_gpu else None
        # one work-item per output tile (GPUs; and elementwise kernels on CPUs, which PoCL vectorises across
        # work-items), or on CPUs for reductions one work-item per chunk of the outer loop (measured on PoCL:
        # matmul 1024^2 54 -> 65 GFLOP/s; the elementwise chain fell from 3.1 to 1.6 GB/s that way)
        self.tile_renderer, self.chunk_renderer = OpenCLRenderer(), OpenCLCPURenderer()
        self.tile_renderer.soft_math = self.chunk_renderer.soft_math = not self.is_gpu
        self.work_items = max(1, self.cl_device.max_compute_units)
        self.programs: dict[tuple[AST, tuple[int, ...]], tuple[Program, Any, str]] = {}
        self.lock = threading.RLock()
        # division must round like the CPU backends; OpenCL allows 2.5 ulp unless asked (where the device can)
        correct = self.cl_device.single_fp_config & cl.device_fp_config.CORRECTLY_ROUNDED_DIVIDE_SQRT
        self.build_options = ["-cl-fp32-correctly-rounded-divide-sqrt"] if correct else []
        self.fingerprint = (f"{self.cl_device.name}|{self.cl_device.driver_version}|{self.cl_device.platform.name}|"
                            f"{' '.join(self.build_options)}")

    def program(self, kernel: Kernel, buffers: Optional[Sequence[Buffer]] = None) -> tuple[Program, Any, str]:
        key = (kernel.ast, kernel.full_shape)
        found = self.programs.get(key)
        if found is not None:
            return found
        with self.lock:  # the renderers and the search keep per-kernel state: one compile at a time
            if key not in self.programs:
                per_tile = self.per_tile(kernel)
                measure = None if buffers is None else (lambda opts: self.measure(kernel, opts, buffers))
                opts = search.choose(kernel, per_tile, f"opencl|{self.fingerprint}|{self.local_size}", measure)
                self.programs[key] = self.compile(kernel, opts)
            return self.programs[key]

    def compile(self, kernel: Kernel, opts: Opts) -> tuple[Program, Any, str]:
        per_tile = self.per_tile(kernel)
        narrow = per_tile and config.cl_narrow()  # 32-bit index arithmetic where it fits
        prog = lower(kernel, opts, narrow=narrow)
        source = (self.tile_renderer if per_tile else self.chunk_renderer).render(prog, "tg_kernel")
        return prog, self.build(source), source

    def measure(self, kernel: Kernel, opts: Opts, buffers: Sequence[Buffer]) -> float:
        """Seconds one run of the kernel takes when lowered with `opts` (for the search)."""
        prog, fn, _ = self.compile(kernel, opts)
        return search.time_best_of(lambda: self.launch(kernel, prog, fn, buffers), self.synchronize)

    def per_tile(self, kernel: Kernel) -> bool:
        return self.is_gpu or kernel.reduce is None

    def build(self, source: str) -> Any:
        """The kernel built from `source`: from the verified binary cache (tg.core.cache) when it has it."""
        digest = hashlib.sha256(f"{source}|{self.fingerprint}".encode()).hexdigest()[:24]
        folder = cache_dir()
        path = folder / f"{digest}.bin" if folder is not None else None
        binary = cache.read(path, f"{digest}|{self.fingerprint}") if path is not None else None
        if binary is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", cl.CompilerWarning)
                    program = cl.Program(self.context, [self.cl_device], [binary]).build(options=self.build_options)
                return program.tg_kernel
            except cl.Error:
                pass  # a binary the driver no longer takes: build from source
        try:
            with warnings.catch_warnings():  # compiler chatter; a failed build raises with its full log below
                warnings.simplefilter("ignore", cl.CompilerWarning)
                program = cl.Program(self.context, source).build(options=self.build_options)
        except cl.RuntimeError as e:
            raise RuntimeError(f"OpenCL build failed on {self.cl_device.name}:\n{e}\n--- source ---\n{source}") from e
        stats.counters.compiles += 1
        if path is not None:
            cache.write(path, f"{digest}|{self.fingerprint}", program.get_info(cl.program_info.BINARIES)[0])
        return program.tg_kernel

    def render(self, kernel: Kernel) -> str:
        return self.program(kernel)[2]

    def choices(self, kernel: Kernel) -> list[str]:
        return [*self.program(kernel)[0].notes, f"local size {self.local_size or 'driver default'}"]

    def execute(self, kernel: Kernel, buffers: Sequence[Buffer]) -> None:
        prog, fn, _ = self.program(kernel, buffers)
        self.launch(kernel, prog, fn, buffers)

    def launch(self, kernel: Kernel, prog: Program, fn: Any, buffers: Sequence[Buffer]) -> None:
        n = prog.outer_size
        local = prog.local_size or self.local_size  # a program that shares local memory fixes its group size
        if not self.per_tile(kernel):  # a few work-items, each looping over its chunk
            global_size: tuple[int, ...] = (max(1, min(n, self.work_items)),)
        else:
            global_size = (-(-n // local) * local,) if local else (n,)
        with self.lock:  # a kernel object's arguments are set, then it is enqueued: not atomic across threads
            fn(self.queue, global_size, (local,) if local else None, np.int64(0), np.int64(n),
               *(b.handle for b in buffers))

    def synchronize(self) -> None:
        self.queue.finish()
