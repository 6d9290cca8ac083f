"""A schedule's new kernels compile side by side in worker processes (tg.core.workers, CompiledDevice.prepare)."""
from __future__ import annotations

import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tg.core import Tensor, compiled, counters, get_device, reset_counters, workers
from tg.llvm.device import LLVMCompiler


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """The llvm device with no programs in memory or on disk, and compile workers allowed (two)."""
    monkeypatch.setenv("TG_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TG_COMPILE_WORKERS", "2")
    monkeypatch.setattr(compiled, "WORKERS_START_MIN", 4)  # six kernels are enough to start them here
    dev = get_device("llvm")
    monkeypatch.setattr(dev, "programs", OrderedDict())
    return dev


def many_kernels(seed: int, rows: int = 40) -> tuple[list[Tensor], list[np.ndarray]]:
    """Six different kernels realized together, and their values in NumPy."""
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((rows, 33)).astype(np.float32), rng.standard_normal((33, 17)).astype(np.float32)
    ta, tb = Tensor(a, device="llvm"), Tensor(b, device="llvm")
    outs = [ta @ tb, ta.exp().sum(1), (ta * 3 - 1).relu(), ta.amax(0), tb.T.contiguous() * 2, (ta @ tb).sin() + 1]
    want = [a @ b, np.exp(a).sum(1), np.maximum(a * 3 - 1, 0), a.max(0), b.T * 2, np.sin(a @ b) + 1]
    return outs, want


def test_a_schedule_of_new_kernels_compiles_in_worker_processes(fresh: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    submitted: list[str] = []
    original = workers.Workers.submit

    def counted(self: workers.Workers, module: str, function: str, args: tuple[Any, ...]) -> Any:
        submitted.append(function)
        return original(self, module, function, args)

    monkeypatch.setattr(workers.Workers, "submit", counted)
    outs, want = many_kernels(0)
    reset_counters()
    Tensor.realize(*outs)
    assert submitted and set(submitted) == {"compile_in_worker"}
    assert counters.compiles == len(submitted)  # each one compiled once, out there
    pool = workers.pool()
    assert pool is not None and pool.processes and all(p.poll() is None for p in pool.processes)
    for out, w in zip(outs, want):
        np.testing.assert_allclose(out.numpy(), w, rtol=1e-5, atol=1e-5)


def test_a_compile_error_in_a_worker_is_raised_here_with_the_source(fresh: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LLVMCompiler, "job", lambda self, source, name, prog: (
        "tg.llvm.device", "compile_in_worker", ("define void @broken( {", name, {})))
    outs, _ = many_kernels(1)
    with pytest.raises(RuntimeError, match="LLVM rejected the generated IR"):
        Tensor.realize(*outs)


def test_a_worker_that_dies_leaves_the_compile_to_this_process(fresh: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LLVMCompiler, "job", lambda self, source, name, prog: ("os", "_exit", (3,)))
    monkeypatch.setattr(workers, "MAX_LOSSES", 10**6)  # this test kills every worker it asks
    outs, want = many_kernels(2)
    reset_counters()
    Tensor.realize(*outs)
    assert counters.compiles >= 4
    for out, w in zip(outs, want):
        np.testing.assert_allclose(out.numpy(), w, rtol=1e-5, atol=1e-5)


def test_workers_end_with_the_process(tmp_path: Path) -> None:
    script = (
        "import numpy as np\n"
        "from tg.core import Tensor, compiled, workers\n"
        "compiled.WORKERS_START_MIN = 4\n"
        "a = Tensor(np.arange(12, dtype=np.float32).reshape(3, 4), device='llvm')\n"
        "outs = [a.exp(), a.sum(0), a.amax(1), a @ a.T, a.sin() * 2]\n"
        "Tensor.realize(*outs)\n"
        "assert workers.pool().processes, 'no worker started'\n"
        "print(float(outs[3].numpy().sum()))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "TG_CACHE_DIR": str(tmp_path), "TG_COMPILE_WORKERS": "2"})
    assert done.returncode == 0, done.stderr
    a = np.arange(12.0).reshape(3, 4)
    assert float(done.stdout) == float((a @ a.T).sum())


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork is POSIX")
def test_a_forked_child_gets_workers_of_its_own(fresh: Any) -> None:
    """A child forked after the pool started has none of its threads: it must not queue jobs nobody takes."""
    import multiprocessing

    Tensor.realize(*many_kernels(3)[0])  # the parent's pool is running
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as children:
        got = children.apply_async(_realize_in_child, (4,)).get(timeout=120)
    want = many_kernels(4, rows=24)[1]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def _realize_in_child(seed: int) -> list[np.ndarray]:
    outs, _ = many_kernels(seed, rows=24)  # kernels of other shapes: compiled here, in the child
    Tensor.realize(*outs)
    return [o.numpy() for o in outs]


def test_where_workers_cannot_start_kernels_compile_here(fresh: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sandbox that forbids new processes: the pool gives up and every compile runs in this process."""
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError("no new processes here")

    monkeypatch.setattr(workers, "_pool", None)
    monkeypatch.setattr(workers.subprocess, "Popen", refuse)
    outs, want = many_kernels(6, rows=28)
    Tensor.realize(*outs)
    for out, w in zip(outs, want):
        np.testing.assert_allclose(out.numpy(), w, rtol=1e-5, atol=1e-5)
    assert workers.pool() is None  # given up: later schedules do not try again
