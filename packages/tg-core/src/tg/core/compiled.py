"""The compile pipeline every compiled backend shares, and the small contract a backend fills in.

For each kernel the scheduler hands over, a `CompiledDevice` picks lowering options (the heuristics of
`opt.py`, or a cached choice of the search), lowers the kernel to the loop IR, renders it to source with the
backend's renderer, turns the source into a binary through the backend's compiler and the verified disk cache
(`cache.py`), loads it and launches it. Programs are kept per kernel structure (the most recent
TG_PROGRAM_CACHE of them), so a training loop's next step reuses everything. A backend supplies only:

- an `Allocator` (device memory),
- a renderer per kernel (`target()`): an object with `render(program, name) -> source`,
- a `Compiler`: `compile(source, name, program) -> bytes` and `load(bytes, name, program) -> runner`,
- `launch(compiled, buffers)`: run a loaded program on its buffers (global sizes, threads, queues).

See tg-llvm and tg-opencl for two complete backends in a page or two each.
"""
from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol

from . import cache, config, search, stats, workers
from .check import check
from .device import Allocator, Buffer, Device
from .ir import Program
from .kernel import AST, Kernel
from .lower import lower
from .opt import Opts


class Renderer(Protocol):
    """Turns a lowered program into the source text of one kernel function named `name`."""

    def render(self, prog: Program, name: str) -> str: ...


class Compiler(ABC):
    """Source -> binary -> something the device's `launch` can run.

    `fingerprint` names everything besides the source that changes the binary (compiler and driver
    versions, the target, flags): cached binaries are only reused under the same one.
    """

    fingerprint: str = ""
    suffix: str = ".bin"
    cache_name: str = "compiled"  # the folder of its binaries in the cache directory

    @abstractmethod
    def compile(self, source: str, name: str, prog: Program) -> bytes:
        """Build `source`, whose kernel function is named `name`, into a binary. Raise with the source shown
        when the compiler rejects it."""

    @abstractmethod
    def load(self, binary: bytes, name: str, prog: Program) -> Any:
        """Make a binary runnable. A binary that cannot be loaded raises; the device then rebuilds it."""

    def variant(self, prog: Program) -> str:
        """What besides the source and `fingerprint` this program's binary depends on: options the compiler picks
        per program (its size, its kind). Part of the cache key, so that one source compiled two ways is two
        binaries."""
        return ""

    def job(self, source: str, name: str, prog: Program) -> Optional[tuple[str, str, tuple[Any, ...]]]:
        """The compile as a job another process can run (tg.core.workers): (module, function name, arguments),
        the function returning what `compile` would. None (the default): this compiler works in-process only."""
        return None


@dataclass(frozen=True)
class Target:
    """How the device builds one kernel: its renderer, and the kind of lowering that suits it."""

    renderer: Renderer
    gpu: bool = False  # one work-item per output tile, GPU-style options (flattened loops, local memory)
    narrow: bool = False  # 32-bit index arithmetic where every index fits (native on GPUs)
    tile: Optional[tuple[int, int]] = None  # CPUs: the largest register tile (contiguous dim, reused dim)
    vectors: bool = False  # the renderer writes vector values (UOp.width > 1): tiles are lowered to them
    # exp2/log2 of float32 as arithmetic (softmath.py): for CPUs, whose math library is a scalar call per element
    soft_math: bool = False


@dataclass(frozen=True)
class CompiledProgram:
    """A kernel ready to launch: its loop program, its source, and what the compiler's `load` returned."""

    prog: Program
    source: str
    name: str
    runner: Any
    target: Target
    # iterations of the outer loop as rendered, the `end` a launch passes: prog.outer_size, or fewer where the
    # renderer handles several elements per iteration (CStyleRenderer.items)
    items: int


@dataclass(frozen=True)
class _Rendered:
    """A kernel lowered and rendered, and where its binary is cached: what compiling and loading it need."""

    kernel_name: str
    prog: Program
    source: str
    name: str
    target: Target
    items: int
    path: Optional[Path]
    cache_key: str


PARALLEL_MIN = 4  # new kernels in one schedule from which they compile in running worker processes (prepare)
# ... and from which the workers are started: ~24 small kernels compile in-process in the time one worker takes to
# start (the README MLP step's 19 took 0.30-0.34 s in-process, 0.45-0.51 s while starting two workers)
WORKERS_START_MIN = 24
KERNEL_NAME = "tg_kernel"  # the function name renderers are given; compilers may rename it (`name`) to be unique


class CompiledDevice(Device):
    """A device that runs kernels as compiled programs. Subclasses give `target`, `launch` and a compiler."""

    def __init__(self, name: str, allocator: Allocator, compiler: Compiler):
        super().__init__(name, allocator)
        self.compiler = compiler
        # by kernel structure, least recently used first; bounded (TG_PROGRAM_CACHE) so that kernels that
        # keep changing (a Python int in the graph, shapes that vary) cannot grow memory without end
        self.programs: OrderedDict[tuple[AST, tuple[int, ...]], CompiledProgram] = OrderedDict()
        self.program_limit = config.program_cache()
        self.lock = threading.RLock()  # compiles (renderers keep per-kernel state) and launches
        # TG_CHECK_IR: programs built ahead of their run (prepare) are checked again against their first buffers
        self.unsized: set[tuple[AST, tuple[int, ...]]] = set()

    def split_reduces_for_a_gpu(self) -> None:
        """Ask the scheduler to split reduces as a GPU needs them: into 1,024 partial results where a reduce has a
        few outputs (a work-group each: 1,024 groups of 256 work-items fill a GPU of a hundred or more compute units),
        into 64 strips of rows where it runs down columns into too few outputs (`schedule._split_reduces`)."""
        self.reduce_parts, self.column_parts = 1024, 64

    @abstractmethod
    def target(self, kernel: Kernel) -> Target:
        """The renderer and lowering style for `kernel`."""

    @abstractmethod
    def launch(self, program: CompiledProgram, buffers: Sequence[Buffer]) -> None:
        """Queue one run of `program` over its outer loop [0, prog.outer_size) with `buffers` (output first)."""

    def launch_notes(self, program: CompiledProgram) -> list[str]:
        """How the device launches `program` (threads, work-group size), for TG_DEBUG=3."""
        return []

    @property
    def search_key(self) -> str:
        """Names this device and its compiler for the search's stored choices."""
        return f"{type(self).__name__}|{self.compiler.fingerprint}"

    # ---- the pipeline ------------------------------------------------------------------------------
    def program(self, kernel: Kernel, buffers: Optional[Sequence[Buffer]] = None) -> CompiledProgram:
        """The compiled program for `kernel`; built on first use (with `buffers`, a search may time candidates)."""
        key = (kernel.ast, kernel.full_shape)
        with self.lock:
            found = self.programs.get(key)
            if found is not None:
                self.programs.move_to_end(key)
                if self.unsized and buffers is not None and key in self.unsized:  # built ahead by prepare()
                    self.unsized.discard(key)
                    check(found.prog, [b.size for b in buffers])
                return found
            measure = None if buffers is None else (lambda opts: self.measure(kernel, opts, buffers))
            target = self.target(kernel)
            program = self.build(kernel, search.choose(kernel, target.gpu, self.search_key, measure, target.tile))
            self._keep(key, program, buffers)
            return program

    def _keep(self, key: tuple[AST, tuple[int, ...]], program: CompiledProgram,
              buffers: Optional[Sequence[Buffer]] = None, ahead: bool = False) -> None:
        if config.check_ir():
            check(program.prog, [b.size for b in buffers] if buffers is not None else None)
            if ahead:  # built by prepare(): its indices are checked against the buffers when it first runs
                self.unsized.add(key)
        self.programs[key] = program
        while len(self.programs) > self.program_limit:  # the backend frees code no program refers to
            self.unsized.discard(self.programs.popitem(last=False)[0])

    def prepare(self, kernels: Sequence[Kernel]) -> None:
        """Build the programs of a schedule's kernels before it runs them: where WORKERS_START_MIN or more are new (or
        PARALLEL_MIN once the workers run) and the compiler can work in another process (`Compiler.job`), their
        sources compile side by side in worker processes (tg.core.workers) while this thread lowers and renders the
        next ones (ResNet-50's first call on a 2-core machine: 4.7 -> 2.7-3.3 s). A search (TG_SEARCH) times
        candidates itself: then nothing is done ahead."""
        if len(kernels) < PARALLEL_MIN or config.search():
            return
        with self.lock:
            new = {(k.ast, k.full_shape): k for k in kernels if (k.ast, k.full_shape) not in self.programs}
        # a worker takes ~0.3 s to start (Python, tg, the compiler): started only for a batch worth it
        pool = workers.pool() if len(new) >= (PARALLEL_MIN if workers.running() else WORKERS_START_MIN) else None
        if pool is None:
            return
        jobs = []
        with self.lock:
            for key, kernel in new.items():
                target = self.target(kernel)
                rendered = self._render(kernel, search.choose(kernel, target.gpu, self.search_key, None, target.tile))
                cached = self._cached(rendered)
                job = self.compiler.job(rendered.source, rendered.name, rendered.prog) if cached is None else None
                if cached is not None:
                    self._keep(key, cached, ahead=True)
                elif job is None:
                    self._keep(key, self._compiled(rendered, self.compiler.compile(rendered.source, rendered.name,
                                                                                    rendered.prog)), ahead=True)
                else:
                    jobs.append((key, rendered, pool.submit(*job)))
        for key, rendered, future in jobs:
            try:
                binary = future.result()
            except workers.WorkerLost:
                binary = self.compiler.compile(rendered.source, rendered.name, rendered.prog)
            with self.lock:
                self._keep(key, self._compiled(rendered, binary), ahead=True)

    def build(self, kernel: Kernel, opts: Opts) -> CompiledProgram:
        """Lower with `opts`, render, and compile (or take the binary from the disk cache), then load."""
        rendered = self._render(kernel, opts)
        cached = self._cached(rendered)
        if cached is not None:
            return cached
        return self._compiled(rendered, self.compiler.compile(rendered.source, rendered.name, rendered.prog))

    def _render(self, kernel: Kernel, opts: Opts) -> _Rendered:
        target = self.target(kernel)
        prog = lower(kernel, opts, gpu=target.gpu, narrow=target.narrow, vectorize=target.vectors,
                     soft_math=target.soft_math)
        source = target.renderer.render(prog, KERNEL_NAME)
        items = target.renderer.items(prog) if hasattr(target.renderer, "items") else prog.outer_size
        options = f"{self.compiler.fingerprint}|tiled={prog.tiled}|{self.compiler.variant(prog)}"
        digest = hashlib.sha256(f"{source}|{options}".encode()).hexdigest()[:20]
        folder = cache.directory(self.compiler.cache_name)
        path = folder / f"{digest}{self.compiler.suffix}" if folder is not None else None
        return _Rendered(kernel.name, prog, source, f"tg_{digest}", target, items, path,
                         f"{digest}|{self.compiler.fingerprint}")

    def _cached(self, r: _Rendered) -> Optional[CompiledProgram]:
        """The program from the binary in the disk cache, or None (none there, or one the driver refuses)."""
        binary = cache.read(r.path, r.cache_key) if r.path is not None else None
        if binary is None:
            return None
        try:
            return CompiledProgram(r.prog, r.source, r.name, self.compiler.load(binary, r.name, r.prog), r.target,
                                   r.items)
        except Exception as e:  # a binary the driver no longer takes: build from source
            stats.log(f"tg: {self.name}: rebuilding kernel {r.kernel_name} (cached binary refused: {e})")
            return None

    def _compiled(self, r: _Rendered, binary: bytes) -> CompiledProgram:
        """The program from a freshly compiled binary, which goes to the disk cache too."""
        stats.counters.compiles += 1
        if r.path is not None:
            cache.write(r.path, r.cache_key, binary)
        return CompiledProgram(r.prog, r.source, r.name, self.compiler.load(binary, r.name, r.prog), r.target,
                               r.items)

    def measure(self, kernel: Kernel, opts: Opts, buffers: Sequence[Buffer]) -> float:
        """Seconds one run of `kernel` takes when lowered with `opts` (for the search)."""
        program = self.build(kernel, opts)
        return search.time_best_of(lambda: self.launch(program, buffers), self.synchronize)

    # ---- the Device contract -----------------------------------------------------------------------
    def execute(self, kernel: Kernel, buffers: Sequence[Buffer]) -> None:
        self.launch(self.program(kernel, buffers), buffers)

    def bind(self, kernel: Kernel) -> Callable[[Sequence[Buffer]], None]:
        program = self.program(kernel)  # held here: a replay never looks it up again, even after the cache drops it
        return lambda buffers: self.launch(program, buffers)

    def render(self, kernel: Kernel) -> str:
        return self.program(kernel).source

    def choices(self, kernel: Kernel) -> list[str]:
        program = self.program(kernel)
        return [*program.prog.notes, *self.launch_notes(program)]
