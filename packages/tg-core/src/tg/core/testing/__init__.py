"""tg.core.testing: the conformance kit that every device plugin runs against its device.

    pytest --pyargs tg.core.testing --tg-device NAME

checks every op, forward and backward, on device NAME against float64 NumPy references and finite
differences, over broadcasting, size-1 and zero-size dims and non-contiguous views. Without
`--tg-device` it runs on every device that opens. `check` is importable for a plugin's own tests.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..tensor import Tensor

__all__ = ["check", "finite_difference"]


def check(fn: Callable[..., Tensor], ref: Callable[..., np.ndarray], shapes: list[tuple[int, ...]], device: str,
          grad: bool = True, low: float = -2.0, high: float = 2.0, seed: int = 0, atol: float = 1e-5,
          rtol: float = 1e-4) -> None:
    """Compare fn's forward with a float64 NumPy reference, and its gradients with finite differences.

    `fn` gets float32 tensors on `device`, `ref` the same values as float64 arrays.
    """
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

        numeric = finite_difference(loss, x)
        analytic = t.grad.numpy() if t.grad is not None else np.zeros_like(x)
        np.testing.assert_allclose(analytic, numeric, atol=2e-3, rtol=2e-3, err_msg=f"gradient of input {i}")


def finite_difference(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of a scalar function of `x` (float64), element by element."""
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
