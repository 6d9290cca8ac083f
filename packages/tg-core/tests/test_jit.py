"""TinyJit: capture a function's kernels once, replay them on new inputs; replays match eager runs."""
from __future__ import annotations

import numpy as np
import pytest

from tg.core import Tensor, TinyJit, no_grad
from tg.core import schedule as schedule_module


def test_replays_match_eager_calls(device: str) -> None:
    rng = np.random.default_rng(0)
    w = Tensor(rng.standard_normal((8, 5)).astype(np.float32), device=device)

    def f(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        h = (x @ w).relu()
        return h.sum(1), (h * y).mean()

    jitted = TinyJit(f)
    for _ in range(5):
        x = Tensor(rng.standard_normal((3, 8)).astype(np.float32), device=device)
        y = Tensor(rng.standard_normal((3, 5)).astype(np.float32), device=device)
        got = [t.numpy() for t in jitted(x, y)]
        want = [t.numpy() for t in f(x, y)]
        for g, e in zip(got, want):
            np.testing.assert_allclose(g, e, rtol=1e-6)


def test_kernels_of_constants_run_once(device: str) -> None:
    """A kernel that reads no buffer (here ones realized on their own) computes the same values every call: the
    replay leaves it out and keeps its captured output; one whose buffer the call replaces each time stays."""
    state = Tensor(np.zeros(4, np.float32), device=device)

    def f(x: Tensor) -> Tensor:
        ones = Tensor.ones(4, device=device).realize()
        out = x * ones * Tensor(np.arange(4, dtype=np.float32), device=device) + state
        state.node = (state + 1).realize().node  # the call's own state: its kernel reads a buffer, so it runs
        return out

    jitted = TinyJit(f)
    for i in range(6):
        x = Tensor(np.full(4, float(i + 1), np.float32), device=device)
        np.testing.assert_array_equal(jitted(x).numpy(), (i + 1) * np.arange(4, dtype=np.float32) + i)
    assert jitted.plan is not None
    assert all(len(launch.buffers) > 1 for launch in jitted.plan.launches if launch.kernel is not None)


def test_training_step_state_carries_across_replays(device: str) -> None:
    """A hand-written SGD-with-momentum step: the weight and the momentum are replaced every step; replays
    must read the values the previous replay wrote, exactly as eager steps do."""
    rng = np.random.default_rng(1)
    data = [(rng.standard_normal((4, 6)).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32))
            for _ in range(6)]
    w0 = rng.standard_normal((6, 2)).astype(np.float32)

    def run(jit: bool) -> tuple[list[float], np.ndarray]:
        w = Tensor(w0, device=device, requires_grad=True)
        momentum = Tensor(np.zeros((6, 2), np.float32), device=device)

        def step(x: Tensor, y: Tensor) -> Tensor:
            loss = ((x @ w - y) ** 2).mean()
            loss.backward()
            with no_grad():
                assert w.grad is not None
                buf = momentum * 0.9 + w.grad
                momentum.node = buf.node
                w.node = (w - 0.1 * buf).node
                w.grad = None
            Tensor.realize(w, momentum)
            return loss

        f = TinyJit(step) if jit else step
        losses = [f(Tensor(x, device=device), Tensor(y, device=device)).item() for x, y in data]
        return losses, w.numpy()

    eager, jitted = run(False), run(True)
    np.testing.assert_allclose(jitted[0], eager[0], rtol=1e-6)
    np.testing.assert_allclose(jitted[1], eager[1], rtol=1e-6)


def test_replay_builds_no_graph_and_schedules_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    w = Tensor(np.ones((4, 4), np.float32))
    f = TinyJit(lambda x: (x @ w).exp().sum())
    for _ in range(2):
        f(Tensor(np.ones((2, 4), np.float32)))

    def fail(*args: object) -> None:
        raise AssertionError("a replay scheduled kernels")

    monkeypatch.setattr(schedule_module, "schedule", fail)
    import tg.core.realize as realize_module

    monkeypatch.setattr(realize_module, "schedule", fail)
    out = f(Tensor(np.full((2, 4), 0.5, np.float32)))
    np.testing.assert_allclose(out.numpy(), np.exp(np.full((2, 4), 2.0)).sum(), rtol=1e-6)


def test_a_reshaped_input_is_its_buffer_not_a_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A view reading a whole realized buffer in order (a reshape) goes into a replay as that buffer; other views
    (a slice, a transpose) are copied into a buffer of their own, as before. Every replay computes the new data."""
    f = TinyJit(lambda x: x.sum(1))
    flat = np.arange(24, dtype=np.float32)
    for i in range(2):
        f(Tensor(flat + i).realize().reshape(4, 6))

    def fail(*args: object) -> None:
        raise AssertionError("a replay scheduled a copy of its input")

    import tg.core.realize as realize_module

    for i in range(2, 4):
        x = Tensor(flat + i).realize().reshape(4, 6)
        with monkeypatch.context() as m:
            m.setattr(realize_module, "schedule", fail)
            out = f(x)
        np.testing.assert_allclose(out.numpy(), (flat + i).reshape(4, 6).sum(1))
    g, h = TinyJit(lambda x: x.sum(1)), TinyJit(lambda x: x.sum(1))
    for i in range(3):
        base = Tensor((flat + i).reshape(6, 4)).realize()
        np.testing.assert_allclose(g(base.T).numpy(), (flat + i).reshape(6, 4).T.sum(1))  # copied, still right
        np.testing.assert_allclose(h(base[1:5]).numpy(), (flat + i).reshape(6, 4)[1:5].sum(1))


def test_replays_check_their_inputs() -> None:
    f = TinyJit(lambda x, k: x * k)
    for _ in range(2):
        f(Tensor(np.ones(3, np.float32)), 2.0)
    with pytest.raises(ValueError, match=r"argument 0 of <lambda> has shape, dtype and device \(\(4,\)"):
        f(Tensor(np.ones(4, np.float32)), 2.0)
    with pytest.raises(ValueError, match=r"argument 1 of <lambda> has value 3\.0"):
        f(Tensor(np.ones(3, np.float32)), 3.0)
    with pytest.raises(TypeError, match="captured with 2 argument"):
        f(Tensor(np.ones(3, np.float32)))
    f.reset()
    assert f(Tensor(np.ones(4, np.float32)), 3.0).numpy().tolist() == [3.0] * 4


def test_random_draws_inside_warn() -> None:
    f = TinyJit(lambda x: x * Tensor.rand(3))
    f(Tensor(np.ones(3, np.float32)))
    with pytest.warns(UserWarning, match="draws random numbers"):
        f(Tensor(np.ones(3, np.float32)))
