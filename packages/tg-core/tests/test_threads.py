"""Several threads on one device: kernels compiled once and never corrupted, launches that do not interleave,
grad mode per thread. Bounded and deterministic: each thread checks its own exact answers."""
from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import numpy as np

from tg.core import Tensor, no_grad

ITERATIONS = 1000


def _hammer(work: Callable[[int, int], None], threads: int = 2) -> list[str]:
    errors: list[str] = []

    def run(t: int) -> None:
        for i in range(ITERATIONS):
            try:
                work(t, i)
            except Exception as e:  # collected: the test asserts there are none
                errors.append(f"thread {t} iteration {i}: {type(e).__name__}: {e}")
                return

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return errors


def test_two_threads_compute_exactly(device: str) -> None:
    """Each iteration builds its own graph with constants that change (new kernels keep being compiled while
    the other thread launches), and checks the exact integer-valued result."""
    base = np.arange(12, dtype=np.float32).reshape(3, 4)

    def work(t: int, i: int) -> None:
        k = float(i % 7 + t)
        x = Tensor(base, device=device)
        got = ((x * k + t).relu().sum(1) - x.amax(1)).numpy()
        want = (base * k + t).sum(1) - base.max(1)
        if not np.array_equal(got, want):
            raise AssertionError(f"got {got.tolist()}, want {want.tolist()}")

    assert _hammer(work) == []


def test_threads_realizing_one_shared_lazy_graph(device: str) -> None:
    """Both threads realize graphs built on the same lazy nodes at the same moment: the scheduler rewrites those
    nodes in place and the realizer turns them into data, which must not be seen half done (it was: IndexError)."""
    base = (np.arange(64 * 48, dtype=np.float32) % 13).reshape(64, 48)
    meet, shared, errors = threading.Barrier(2), [Tensor(0.0)], []

    def run(t: int) -> None:
        for i in range(300):
            if t == 0:
                x, w = Tensor(base, device=device), Tensor(base.T.copy(), device=device)
                shared[0] = ((x * float(i % 5 + 1)) @ w).relu() + x.sum()  # lazy: realized by both threads
            meet.wait(60)
            try:
                got = (shared[0] * (t + 1)).sum(1).numpy()
                b = base.astype(np.float64)
                want = ((np.maximum((b * (i % 5 + 1)) @ b.T, 0) + b.sum()) * (t + 1)).sum(1)
                np.testing.assert_allclose(got, want, rtol=1e-5)
            except Exception as e:  # collected: the test asserts there are none
                errors.append(f"thread {t} iteration {i}: {type(e).__name__}: {e}")
            meet.wait(60)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the races show within a few hundred steps
    try:
        pool = [threading.Thread(target=run, args=(t,)) for t in range(2)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
    finally:
        sys.setswitchinterval(switch)
    assert errors == []


def test_no_grad_in_one_thread_leaves_the_other_training(device: str) -> None:
    def work(t: int, i: int) -> None:
        x = Tensor(np.array([1.0, 2.0, 3.0], np.float32), device=device, requires_grad=True)
        if t == 0:
            with no_grad():
                assert not (x * 2).requires_grad
        else:
            (x * x).sum().backward()
            assert x.grad is not None and x.grad.tolist() == [2.0, 4.0, 6.0]

    assert _hammer(work) == []


def test_a_capture_in_one_thread_records_only_that_thread() -> None:
    """While a TinyJit captures in one thread, another thread's eager work runs normally and is not recorded."""
    from tg.core import TinyJit

    inside, other_done = threading.Event(), threading.Event()

    @TinyJit
    def double(x: Tensor) -> Tensor:
        y = (x * 2).realize()
        inside.set()
        assert other_done.wait(60)
        return y

    results: dict[str, list[float]] = {}

    def other() -> None:
        assert inside.wait(60)
        results["other"] = (Tensor([1.0, 2.0]) + 10).tolist()
        other_done.set()

    inside.set(), other_done.set()
    double(Tensor([0.0, 0.0]))  # the first call runs eagerly; the second captures
    inside.clear(), other_done.clear()
    worker = threading.Thread(target=other)
    worker.start()
    results["jit"] = double(Tensor([1.0, 2.0])).tolist()
    worker.join()
    assert results == {"jit": [2.0, 4.0], "other": [11.0, 12.0]}
    assert double.plan is not None and len(double.plan.launches) == 1
    other_done.set()
    for v in (3.0, 5.0):  # replays run the one recorded kernel on new inputs
        assert double(Tensor([v, -v])).tolist() == [2 * v, -2 * v]
