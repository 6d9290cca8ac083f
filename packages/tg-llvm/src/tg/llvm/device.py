"""The `llvm` device: kernels compiled by LLVM for the host CPU, run on all cores.

Each kernel is lowered to tg's loop IR, rendered to LLVM IR, optimised at -O3 for this CPU (its
vector width, FMA) and JIT-compiled with llvmlite. Compiled object code is cached in memory and on
disk (keyed by the LLVM IR, the CPU and llvmlite's version), so a second process skips LLVM
entirely. The outermost loop is split over a small thread pool; ctypes releases the GIL for each
call, so the chunks run in parallel.
"""
from __future__ import annotations

import ctypes
import hashlib
import itertools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

import llvmlite
import llvmlite.binding as llvm
import numpy as np

from tg.core import cache, config, search, stats
from tg.core import dtype as dt
from tg.core.device import Buffer, Device
from tg.core.kernel import AST, Kernel
from tg.core.lower import Program, lower
from tg.core.numpy_device import NumpyAllocator
from tg.core.opt import Opts

from .render import LLVMRenderer

MIN_WORK_PER_THREAD = 1 << 15  # below this many elements per thread, threads cost more than they save


# JIT code: the large code model with static relocations. MCJIT may place an object's sections more than
# 2 GiB apart in a big process (torch loaded, many kernels), where the default model's 32-bit relocations
# abort LLVM; and large + PIC miscompiles under MCJIT (a later kernel wrote nothing). Exported objects
# (tg.llvm.export) are position-independent with the default model, as shared libraries need.
JIT_MODEL, JIT_RELOC = "large", "static"


class HostAllocator(NumpyAllocator):
    """Host memory as 64-byte-aligned NumPy byte arrays (compiled code gets their address)."""

    def _alloc(self, nbytes: int) -> np.ndarray:
        raw = np.empty(nbytes + 64, np.uint8)
        offset = (-raw.ctypes.data) % 64
        return raw[offset:offset + nbytes]


def cache_dir() -> Optional[Path]:
    """Where compiled kernels are kept (TG_CACHE_DIR, else ~/.cache/tg; see tg.core.cache), or None."""
    return cache.directory("llvm")


class LLVMCompiler:
    """LLVM IR text -> a callable, through an in-memory and an on-disk cache of object code."""

    def __init__(self) -> None:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self.cpu = llvm.get_host_cpu_name()
        self.features = llvm.get_host_cpu_features().flatten()
        target = llvm.Target.from_default_triple()
        self.machine = target.create_target_machine(cpu=self.cpu, features=self.features, opt=3,
                                                    reloc=JIT_RELOC, codemodel=JIT_MODEL)
        self.export_machine = target.create_target_machine(cpu=self.cpu, features=self.features, opt=3,
                                                           reloc="pic", codemodel="default")
        self.renderer = LLVMRenderer(target.triple, str(self.machine.target_data), self.cpu, self.features)
        self.engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), self.machine)
        self.lock = threading.Lock()
        self.functions: dict[str, Callable[..., None]] = {}

    def source(self, prog: Program) -> tuple[str, str]:
        """(function name, LLVM IR) of a program; the name is derived from the IR itself."""
        probe = self.renderer.render(prog, "kernel")
        flags = f"{self.cpu}|{self.features}|{llvmlite.__version__}|tiled={prog.tiled}|{JIT_MODEL}|{JIT_RELOC}"
        key = hashlib.sha256(f"{probe}|{flags}".encode()).hexdigest()[:20]
        name = f"tg_{key}"
        return name, probe.replace("@kernel(", f"@{name}(", 1)

    def compile(self, prog: Program) -> Callable[..., None]:
        name, ir = self.source(prog)
        with self.lock:
            if name not in self.functions:
                obj = self.object_code(name, ir, vectorize_loops=not prog.tiled)
                self.engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
                self.engine.finalize_object()
                address = self.engine.get_function_address(name)
                if not address:  # never call address 0
                    raise RuntimeError(f"tg-llvm: the object code for kernel {name} does not define it")
                argtypes = [ctypes.c_int64, ctypes.c_int64] + [ctypes.c_void_p] * len(prog.buffer_dtypes)
                self.functions[name] = ctypes.CFUNCTYPE(None, *argtypes)(address)
            return self.functions[name]

    def object_code(self, name: str, ir: str, vectorize_loops: bool = True, export: bool = False) -> bytes:
        """Object code for `ir`: for the JIT, or position-independent for an exported library."""
        machine = self.export_machine if export else self.machine
        folder, key = cache_dir(), f"{name}|{'pic' if export else 'jit'}|{llvmlite.__version__}"
        path = folder / f"{name}{'.pic' if export else ''}.o" if folder is not None else None
        cached = cache.read(path, key) if path is not None else None
        if cached is not None:
            return cached
        try:
            module = llvm.parse_assembly(ir)
            module.verify()
        except RuntimeError as e:
            raise RuntimeError(f"LLVM rejected the generated IR for kernel {name}: {e}\n--- source ---\n{ir}") from e
        options = llvm.create_pipeline_tuning_options(speed_level=3)
        options.loop_vectorization = vectorize_loops  # a register tile vectorises across its copies instead
        options.slp_vectorization = True
        builder = llvm.create_pass_builder(machine, options)
        builder.getModulePassManager().run(module, builder)
        obj = machine.emit_object(module)
        stats.counters.compiles += 1
        if path is not None:
            cache.write(path, key, obj)
        return obj


class LLVMDevice(Device):
    """Runs tg kernels as native code on the host CPU, on all cores."""

    dtypes = frozenset(dt.ALL_DTYPES)

    def __init__(self, name: str = "llvm"):
        super().__init__(name, HostAllocator())
        self.compiler = LLVMCompiler()
        self.threads = config.llvm_threads()
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="tg-llvm") if self.threads > 1 else None
        self.lock = threading.RLock()
        # ASTs compare by structure, so a kernel scheduled again (a training loop's next step) hits this
        self.programs: dict[tuple[AST, tuple[int, ...]], tuple[Program, Callable[..., None]]] = {}

    def program(self, kernel: Kernel,
                buffers: Optional[Sequence[Buffer]] = None) -> tuple[Program, Callable[..., None]]:
        key = (kernel.ast, kernel.full_shape)
        found = self.programs.get(key)
        if found is not None:
            return found
        with self.lock:  # the renderer and the search keep per-kernel state: one compile at a time
            if key not in self.programs:
                measure = None if buffers is None else (lambda opts: self.measure(kernel, opts, buffers))
                opts = search.choose(kernel, False, f"llvm|{self.compiler.cpu}|{self.threads}", measure)
                prog = lower(kernel, opts)
                self.programs[key] = (prog, self.compiler.compile(prog))
            return self.programs[key]

    def measure(self, kernel: Kernel, opts: Opts, buffers: Sequence[Buffer]) -> float:
        """Seconds one run of the kernel takes when lowered with `opts` (for the search)."""
        prog = lower(kernel, opts)
        fn = self.compiler.compile(prog)
        args = [b.handle.ctypes.data for b in buffers]
        return search.time_best_of(lambda: self.launch(prog, fn, args), lambda: None)

    def render(self, kernel: Kernel) -> str:
        prog = self.program(kernel)[0]
        with self.lock:
            return self.compiler.source(prog)[1]

    def choices(self, kernel: Kernel) -> list[str]:
        prog = self.program(kernel)[0]
        threads = len(self.split(prog))
        return [*prog.notes, f"{threads} thread(s) over {prog.outer_size} outer iterations"]

    def execute(self, kernel: Kernel, buffers: Sequence[Buffer]) -> None:
        prog, fn = self.program(kernel, buffers)
        self.launch(prog, fn, [b.handle.ctypes.data for b in buffers])

    def launch(self, prog: Program, fn: Callable[..., None], args: list[int]) -> None:
        chunks = self.split(prog)
        if len(chunks) == 1 or self.pool is None:
            fn(0, prog.outer_size, *args)
            return
        for f in [self.pool.submit(fn, lo, hi, *args) for lo, hi in chunks]:
            f.result()

    def split(self, prog: Program) -> list[tuple[int, int]]:
        """Chunks of the outer loop, one per thread, when the work is large enough to share."""
        n = prog.outer_size
        parts = min(self.threads, n, max(1, n * prog.inner_size // MIN_WORK_PER_THREAD))
        bounds = [n * i // parts for i in range(parts + 1)]
        return [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]


def open_device(name: str) -> Any:
    return LLVMDevice(name)
