"""Shared fixtures: the devices every test runs on, and a float64 reference checker."""
from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytest

from tg.core import Tensor, registry


def _devices() -> list[str]:
    """Every device that opens here; TG_REQUIRE_DEVICES (set by CI) must all be among them."""
    available = registry.available()
    required = [d for d in os.environ.get("TG_REQUIRE_DEVICES", "").split(",") if d]
    missing = [d for d in required if d not in available]
    if missing:
        raise RuntimeError(f"TG_REQUIRE_DEVICES lists {missing}, which did not open; available: {available}")
    return available


DEVICES = _devices()


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    return request.param


def check(fn: Callable[..., Tensor], ref: Callable[..., np.ndarray], shapes: list[tuple[int, ...]], device: str,
          grad: bool = True, low: float = -2.0, high: float = 2.0, seed: int = 0, atol: float = 1e-5,
          rtol: float = 1e-4) -> None:
    """Compare fn's forward with a float64 NumPy reference, and its gradients with finite differences."""
    rng = np.random.default_rng(seed)
    xs = [rng.uniform(low, high, s) for s in shapes]
    ts = [Tensor(x.astype(np.float32), device=device, requires_grad=grad) for x in xs]
    out = fn(*ts)
    expected = np.asarray(ref(*xs), dtype=np.float64)
    assert out.shape == expected.shape, f"shape {out.shape} != reference {expected.shape}"
    np.testing.assert_allclose(out.numpy(), expected, atol=atol, rtol=rtol)
    if not grad or out.numel() == 0:
        return
    weights = rng.uniform(-1, 1, expected.shape)
    (out * Tensor(weights.astype(np.float32), device=device)).sum().backward()
    for i, (x, t) in enumerate(zip(xs, ts)):
        def loss(v: np.ndarray, i: int = i) -> float:
            return float((np.asarray(ref(*xs[:i], v, *xs[i + 1:])) * weights).sum())

        numeric = _finite_difference(loss, x)
        analytic = t.grad.numpy() if t.grad is not None else np.zeros_like(x)
        np.testing.assert_allclose(analytic, numeric, atol=2e-3, rtol=2e-3, err_msg=f"gradient of input {i}")


def _finite_difference(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        up = f(x)
        x[idx] = old - h
        down = f(x)
        x[idx] = old
        grad[idx] = (up - down) / (2 * h)
    return grad
