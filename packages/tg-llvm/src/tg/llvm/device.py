"""The `llvm` device: kernels compiled by LLVM for the host CPU, run on all cores.

The core's compile pipeline (tg.core.compiled) lowers each kernel and caches its object code; this module
gives it a renderer to LLVM IR, a compiler (-O3 for this CPU's vector width, through llvmlite's MCJIT) and a
launcher. The outermost loop is split into chunks that the launching thread and the pool's workers (tg.llvm.pool)
run side by side, in native code without the GIL.
"""
from __future__ import annotations

import ctypes
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Optional

import llvmlite
import llvmlite.binding as llvm
import numpy as np

from tg.core import config
from tg.core import dtype as dt
from tg.core.compiled import KERNEL_NAME, CompiledDevice, CompiledProgram, Compiler, Target
from tg.core.device import Buffer
from tg.core.ir import Program
from tg.core.kernel import Kernel
from tg.core.numpy_device import NumpyAllocator
from tg.core.ops import Op

from .pool import SpinPool, packed_entry
from .render import LLVMRenderer

MIN_WORK_PER_THREAD = 1 << 15  # below this many elements per thread, threads cost more than they save
SMALL_WORK = 1 << 16  # iterations (output x reduce) below which a kernel is compiled for a short compile, not speed
BODY_UOPS = 32  # a kernel body shorter than twice this counts its iterations as they are (see passes)
TINY_WORK = 1 << 12  # below this, even instruction selection is the fast one: the kernel runs in about a microsecond


# JIT code: the large code model with static relocations. MCJIT may place an object's sections more than
# 2 GiB apart in a big process (torch loaded, many kernels), where the default model's 32-bit relocations
# abort LLVM; and large + PIC miscompiles under MCJIT (a later kernel wrote nothing). Exported objects
# (tg.llvm.export) are position-independent with the default model, as shared libraries need.
JIT_MODEL, JIT_RELOC = "large", "static"


class HostAllocator(NumpyAllocator):
    """Host memory as 64-byte-aligned NumPy byte arrays (compiled code gets their address).

    Each allocation's address is kept beside it: asking NumPy for it costs ~2.5 us, a launch passes several."""

    def __init__(self) -> None:
        super().__init__()
        self._addresses: dict[int, tuple[np.ndarray, int]] = {}  # id -> (the handle, kept alive here; its address)

    def _alloc(self, nbytes: int) -> np.ndarray:
        raw = np.empty(nbytes + 64, np.uint8)
        offset = (-raw.ctypes.data) % 64
        handle = raw[offset:offset + nbytes]
        self._addresses[id(handle)] = (handle, raw.ctypes.data + offset)
        return handle

    def _free(self, handle: np.ndarray, nbytes: int) -> None:
        self._addresses.pop(id(handle), None)

    def address(self, handle: np.ndarray) -> int:
        # an id found here is this handle's: the entry keeps it alive, and live objects never share an id
        found = self._addresses.get(id(handle))
        return found[1] if found is not None else handle.ctypes.data

    def host_view(self, handle: np.ndarray) -> np.ndarray:
        return handle  # kernels run on host memory: it can be read and written in place


KERNELS_PER_ENGINE = 256  # kernels linked into one MCJIT engine before the next one starts


class JitKernel:
    """A compiled kernel and the engine that holds its code: the engine (all of its kernels' machine code) is
    freed when the last kernel loaded into it is dropped, e.g. from the device's bounded program cache.
    `packed` is the address of its packed entry (buffers in one array), `call_packed` that entry from Python."""

    __slots__ = ("__weakref__", "call_packed", "engine", "packed")

    def __init__(self, engine: Any, packed: int):
        self.engine, self.packed, self.call_packed = engine, packed, packed_entry(packed)


class LLVMCompiler(Compiler):
    """LLVM IR text -> object code (optimised at -O3 for this CPU) -> a ctypes function in one MCJIT engine."""

    suffix, cache_name = ".o", "llvm"

    def __init__(self) -> None:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self.cpu = llvm.get_host_cpu_name()
        self.features = llvm.get_host_cpu_features().flatten()
        self.target = llvm.Target.from_default_triple()
        self.machine = self.jit_machine()  # emits object code; each engine gets a machine of its own
        self.quick_machine = self.jit_machine(opt=0)  # for tiny kernels: fast instruction selection (2.5x quicker)
        self.export_machine = self.target.create_target_machine(cpu=self.cpu, features=self.features, opt=3,
                                                           reloc="pic", codemodel="default")
        self.renderer = LLVMRenderer(self.target.triple, str(self.machine.target_data), self.cpu, self.features)
        self.engine = self.new_engine()
        self.engine_kernels = 0
        # everything besides the source that decides the object code (the disk cache's key): the pass options
        # depend on the kernel's size through SMALL_WORK and TINY_WORK
        self.fingerprint = (f"{self.cpu}|{self.features}|{llvmlite.__version__}|{JIT_MODEL}|{JIT_RELOC}|"
                            f"{SMALL_WORK}|{TINY_WORK}|{BODY_UOPS}")
        self.functions: weakref.WeakValueDictionary[str, JitKernel] = weakref.WeakValueDictionary()

    def jit_machine(self, opt: int = 3) -> Any:
        return self.target.create_target_machine(cpu=self.cpu, features=self.features, opt=opt, reloc=JIT_RELOC,
                                                 codemodel=JIT_MODEL)

    def new_engine(self) -> Any:
        return llvm.create_mcjit_compiler(llvm.parse_assembly(""), self.jit_machine())  # it owns that machine

    def compile(self, source: str, name: str, prog: Program) -> bytes:
        return self.object_code(name, source.replace(f"@{KERNEL_NAME}", f"@{name}"), **self.passes(prog))

    def job(self, source: str, name: str, prog: Program) -> tuple[str, str, tuple[Any, ...]]:
        """The same compile in a worker process (llvmlite runs one LLVM call at a time per process)."""
        return __name__, "compile_in_worker", (source.replace(f"@{KERNEL_NAME}", f"@{name}"), name, self.passes(prog))

    def variant(self, prog: Program) -> str:
        # the same source (sizes are launch arguments) is compiled without vectorising when small: a binary made
        # for 16 elements, cached by source alone, ran 4M elements 8x slower than NumPy
        return ",".join(f"{k}={v}" for k, v in sorted(self.passes(prog).items()))

    @staticmethod
    def passes(prog: Program) -> dict[str, bool]:
        """The optimisation options for a kernel (object_code's keywords), from its size and kind."""
        # iterations times the body's length in BODY_UOPS: a small kernel with a long body (exp and log are ~30
        # operations each as arithmetic) is worth the longer compile; a softmax's 32-term sums over 1,024 rows
        # (~800 operations) ran 145 us as scalar code, 28 us vectorised
        work = prog.outer_size * prog.inner_size * max(1, len(prog.uops) // BODY_UOPS)
        if work < SMALL_WORK:
            # it runs in microseconds either way, while vectorising and unrolling a loop costs compile time
            # (a 128x10 row sum: 38 -> 11 ms, most of it in instruction selection for the vector code)
            return {"vectorize_loops": False, "slp": False, "unroll": False, "quick": work < TINY_WORK}
        return {"vectorize_loops": not prog.tiled, "unroll": any(u.op is Op.DEFINE_ACC for u in prog.uops)}

    def load(self, binary: bytes, name: str, prog: Program) -> JitKernel:
        found = self.functions.get(name)  # an engine links each symbol once: reuse a kernel still loaded
        if found is not None:
            return found
        if self.engine_kernels >= KERNELS_PER_ENGINE:  # a fresh engine; the old one goes with its last kernel
            self.engine, self.engine_kernels = self.new_engine(), 0
        self.engine.add_object_file(llvm.ObjectFileRef.from_data(binary))
        self.engine.finalize_object()
        address = self.engine.get_function_address(f"{name}_packed")
        if not address:  # never call address 0
            raise RuntimeError(f"tg-llvm: the object code for kernel {name} does not define it")
        self.engine_kernels += 1
        kernel = JitKernel(self.engine, address)
        self.functions[name] = kernel
        return kernel

    def object_code(self, name: str, ir: str, vectorize_loops: bool = True, export: bool = False,
                    unroll: bool = True, slp: bool = True, quick: bool = False) -> bytes:
        """Object code for `ir`: for the JIT, or position-independent for an exported library."""
        machine = self.export_machine if export else self.quick_machine if quick else self.machine
        module = self.optimised(name, ir, machine, vectorize_loops, unroll, slp)
        return bytes(machine.emit_object(module))

    @staticmethod
    def optimised(name: str, ir: str, machine: Any, vectorize_loops: bool = True, unroll: bool = True,
                  slp: bool = True) -> Any:
        """The module of `ir` after LLVM's -O3 pipeline with these options. Without `unroll`, vectorised loops are
        neither unrolled nor interleaved: elementwise kernels are bound by memory, and their unrolled copies doubled
        the compile time (a relu: 20 -> 11 ms)."""
        try:
            module = llvm.parse_assembly(ir)
            module.verify()
        except RuntimeError as e:
            raise RuntimeError(f"LLVM rejected the generated IR for kernel {name}: {e}\n--- source ---\n{ir}") from e
        options = llvm.create_pipeline_tuning_options(speed_level=3)
        options.loop_vectorization = vectorize_loops  # a register tile vectorises across its copies instead
        options.slp_vectorization = slp
        options.loop_unrolling = options.loop_interleaving = unroll
        builder = llvm.create_pass_builder(machine, options)
        builder.getModulePassManager().run(module, builder)
        return module


_worker_compiler: Optional[LLVMCompiler] = None


def compile_in_worker(ir: str, name: str, passes: dict[str, bool]) -> bytes:
    """A compile worker's job (tg.core.workers): object code for a kernel's LLVM IR, as LLVMCompiler.compile."""
    global _worker_compiler
    if _worker_compiler is None:
        _worker_compiler = LLVMCompiler()
    return _worker_compiler.object_code(name, ir, **passes)


class LLVMDevice(CompiledDevice):
    """Runs tg kernels as native code on the host CPU, on all cores."""

    dtypes = frozenset(dt.ALL_DTYPES)
    pad_aliased_rows = True
    pad_ragged_dims = True

    def __init__(self, name: str = "llvm"):
        self.host = HostAllocator()
        super().__init__(name, self.host, LLVMCompiler())
        self.threads = config.llvm_threads()
        self.pool = SpinPool(self.threads, self.compiler.jit_machine(), self.compiler.target.triple,
                             config.llvm_spin_seconds())
        # register tiles that keep their accumulators in registers: 32 vector registers (AVX-512) hold an 8x32 tile
        # of floats, 16 (AVX2) a 4x16 one (measured on a 2-core AVX2 EPYC, matmul 1024^2: 8x32 28.6 GFLOP/s with
        # accumulators spilled, 4x16 57.4, 8x16 54.8)
        wide = "+avx512f" in self.compiler.features.split(",")
        self.cpu_target = Target(self.compiler.renderer, tile=(32, 8) if wide else (16, 4), vectors=True,
                                 soft_math=True)

    @property
    def search_key(self) -> str:
        return f"llvm|{self.compiler.cpu}|{self.compiler.features}|{self.threads}"

    def target(self, kernel: Kernel) -> Target:
        return self.cpu_target

    def launch(self, program: CompiledProgram, buffers: Sequence[Buffer]) -> None:
        kernel, prog = program.runner, program.prog
        self.pool.run(kernel.packed, kernel.call_packed, 0, prog.outer_size, self.chunks(prog),
                      self.pointers(program, buffers))

    def pointers(self, program: CompiledProgram, buffers: Sequence[Buffer]) -> ctypes.Array:
        """The buffers' addresses as the array a packed entry takes (checked: the code reads exactly that many)."""
        count = len(program.prog.buffer_dtypes)
        if len(buffers) != count:
            raise ValueError(f"llvm: kernel {program.name} takes {count} buffers, got {len(buffers)}")
        address = self.host.address
        return (ctypes.c_void_p * count)(*[address(b.handle) for b in buffers])

    def bind(self, kernel: Kernel) -> Callable[[Sequence[Buffer]], None]:
        """A replay's launcher: the program, its chunks and the packed entry looked up once (a replay of 46 small
        kernels spent as long in the lookups as in the kernels)."""
        program = self.program(kernel)  # held by the launcher: its code stays loaded while a replay can run it
        kernel_code, run, pointers = program.runner, self.pool.run, self.pointers
        n, chunks = program.prog.outer_size, self.chunks(program.prog)

        def launch(buffers: Sequence[Buffer]) -> None:
            run(kernel_code.packed, kernel_code.call_packed, 0, n, chunks, pointers(program, buffers))
        return launch

    def launch_notes(self, program: CompiledProgram) -> list[str]:
        return [f"{self.chunks(program.prog)} thread(s) over {program.prog.outer_size} outer iterations"]

    def chunks(self, prog: Program) -> int:
        """How many chunks the outer loop is split into (one per thread), when the work is large enough to share."""
        n = prog.outer_size
        return max(1, min(self.threads, n, n * prog.inner_size // MIN_WORK_PER_THREAD))
