"""The llvm device's spinning thread pool: every chunk of every launch runs exactly once, whoever claims it, with
workers awake, asleep, or racing other launching threads."""
from __future__ import annotations

import ctypes
import threading

import llvmlite.binding as llvm
import numpy as np
import pytest

from tg.llvm.pool import SpinPool, packed_entry

# out[i] += i + 1 over [start, end): a chunk run twice or skipped shows in the sums
_KERNEL = """
define void @add_index_packed(i64 %start, i64 %end, ptr %args) {
entry:
  %out = load ptr, ptr %args
  br label %loop
loop:
  %i = phi i64 [ %start, %entry ], [ %i1, %body ]
  %more = icmp slt i64 %i, %end
  br i1 %more, label %body, label %done
body:
  %p = getelementptr inbounds i64, ptr %out, i64 %i
  %v = load i64, ptr %p
  %i1 = add i64 %i, 1
  %v1 = add i64 %v, %i1
  store i64 %v1, ptr %p
  br label %loop
done:
  ret void
}
"""


_ENGINES: list[object] = []


@pytest.fixture(scope="module")
def kernel() -> tuple[int, object]:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_default_triple()
    module = llvm.parse_assembly(_KERNEL)
    engine = llvm.create_mcjit_compiler(module, target.create_target_machine())
    engine.finalize_object()
    _ENGINES.append(engine)  # its code stays loaded for the module's tests
    address = engine.get_function_address("add_index_packed")
    return address, packed_entry(address)


def _pool(threads: int, spin_seconds: float) -> SpinPool:
    target = llvm.Target.from_default_triple()
    return SpinPool(threads, target.create_target_machine(), target.triple, spin_seconds)


@pytest.mark.parametrize("threads,spin", [(2, 0.01), (4, 0.01), (3, 0.0)])
def test_every_chunk_runs_exactly_once(kernel: tuple[int, object], threads: int, spin: float) -> None:
    """Many launches of uneven sizes, more chunks than cores, and workers that sleep at once (spin 0: the launching
    thread runs what no worker has claimed): each element is added to once per launch."""
    address, call = kernel
    pool = _pool(threads, spin)
    rng = np.random.default_rng(0)
    out = np.zeros(1000, np.int64)
    args = (ctypes.c_void_p * 1)(out.ctypes.data)
    expected = np.zeros(1000, np.int64)
    for _ in range(3000):
        lo, hi = sorted(int(v) for v in rng.integers(0, 1001, 2))
        chunks = int(rng.integers(1, 9))
        pool.run(address, call, lo, hi, chunks, args)
        expected[lo:hi] += np.arange(lo + 1, hi + 1)
    pool.stop()
    pool.run(address, call, 0, 1000, 4, args)  # after stop (at exit): the launching thread runs it all
    np.testing.assert_array_equal(out, expected + np.arange(1, 1001))


def test_launching_threads_race_for_one_pool(kernel: tuple[int, object]) -> None:
    """Four Python threads launching into one pool at once: one uses the workers, the others run their launch
    whole; no chunk is lost or run twice."""
    address, call = kernel
    pool = _pool(3, 0.01)
    outs = [np.zeros(512, np.int64) for _ in range(4)]

    def launches(out: np.ndarray) -> None:
        args = (ctypes.c_void_p * 1)(out.ctypes.data)
        for _ in range(500):
            pool.run(address, call, 0, 512, 3, args)

    threads = [threading.Thread(target=launches, args=(o,)) for o in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pool.stop()
    for out in outs:
        np.testing.assert_array_equal(out, 500 * np.arange(1, 513))


def test_a_launch_with_the_wrong_number_of_buffers_raises_instead_of_reading_past_them() -> None:
    from tg.core import Tensor
    from tg.core.device import Buffer, get_device
    from tg.core.schedule import schedule

    dev = get_device("llvm")
    a = Tensor(np.ones((4, 4), np.float32), device="llvm").realize()
    (item,) = schedule([(a.relu() * 1.5 + 0.5).node])  # reads a and one scalar argument
    assert item.kernel is not None and len(item.inputs) == 2
    out = Buffer("llvm", 16, a.dtype)
    dev.program(item.kernel)  # compiled first (under TG_CHECK_IR the checker would name the count first)
    with pytest.raises(ValueError, match="takes 3 buffers, got 2"):
        dev.execute(item.kernel, [out, item.inputs[0].buffer])
    with pytest.raises(ValueError, match="takes 3 buffers, got 4"):
        dev.bind(item.kernel)([out, *[n.buffer for n in item.inputs], out])


def _matmul_in_child(data: np.ndarray, queue: object) -> None:
    from tg.core import Tensor

    t = Tensor(data, device="llvm")
    queue.put((t @ t).numpy())  # type: ignore[attr-defined]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_runs_kernels_without_the_parents_workers() -> None:
    """A fork copies the pool's state but not its threads: the child's launches run every chunk themselves."""
    import multiprocessing

    from tg.core import Tensor

    data = np.random.default_rng(5).standard_normal((256, 256)).astype(np.float32)
    t = Tensor(data, device="llvm")
    expected = (t @ t).numpy()  # the parent's workers are started (and spinning) before the fork
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_matmul_in_child, args=(data, queue))
    child.start()
    got = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(got, expected)
