"""Random chains of movement ops and elementwise ops against NumPy, found by Hypothesis.

Views are where a framework like this hides its bugs (a mask or a stride off by one only shows on
some shapes), so these tests draw the shapes and the op sequence at random.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tg.core import Tensor

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def movement_chain(draw: st.DrawFn) -> tuple[tuple[int, ...], list[tuple[str, object]]]:
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    ops: list[tuple[str, object]] = []
    cur = shape
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["reshape", "permute", "pad", "slice", "flip", "expand", "sin", "unfold"]))
        if kind == "reshape":
            n = int(np.prod(cur))
            a = draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
            new = (a, n // a) if draw(st.booleans()) else (n,)
            ops.append((kind, new))
            cur = new
        elif kind == "permute":
            order = tuple(draw(st.permutations(range(len(cur)))))
            ops.append((kind, order))
            cur = tuple(cur[i] for i in order)
        elif kind == "pad":
            pads = [(draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in cur]
            ops.append((kind, pads))
            cur = tuple(n + a + b for n, (a, b) in zip(cur, pads))
        elif kind == "slice":
            sl = []
            for n in cur:
                start = draw(st.integers(0, n - 1))
                stop = draw(st.integers(start + 1, n))
                step = draw(st.integers(1, 3))
                sl.append(slice(start, stop, step) if draw(st.booleans()) else slice(stop - 1, start - n - 1 if
                                                                                    start == 0 else start - 1, -step))
            ops.append((kind, tuple(sl)))
            cur = np.empty(cur)[tuple(sl)].shape
        elif kind == "flip":
            dim = draw(st.integers(0, len(cur) - 1))
            ops.append((kind, dim))
        elif kind == "expand":
            ops.append((kind, None))
            cur = (2, *cur)
        elif kind == "unfold":  # windows over padding read through bounds on sums of dims (no padded copy)
            if len(cur) > 4:
                continue
            dim = draw(st.integers(0, len(cur) - 1))
            size, step = draw(st.integers(1, cur[dim])), draw(st.integers(1, 3))
            ops.append((kind, (dim, size, step)))
            cur = (*cur[:dim], (cur[dim] - size) // step + 1, *cur[dim + 1:], size)
        else:
            ops.append((kind, None))
    return shape, ops


def _apply(x: object, ops: list[tuple[str, object]], is_np: bool) -> object:
    for kind, arg in ops:
        if kind == "reshape":
            x = x.reshape(arg)
        elif kind == "permute":
            x = x.transpose(arg) if is_np else x.permute(arg)
        elif kind == "pad":
            x = np.pad(x, arg) if is_np else x.pad(tuple(v for pair in reversed(arg) for v in pair))
        elif kind == "slice":
            x = x[arg]
        elif kind == "flip":
            x = np.flip(x, arg) if is_np else x.flip(arg)
        elif kind == "expand":
            x = np.broadcast_to(x[None], (2, *x.shape)) if is_np else x.unsqueeze(0).expand(2, *x.shape)
        elif kind == "unfold":
            dim, size, step = arg
            x = np.moveaxis(np.lib.stride_tricks.sliding_window_view(x, size, axis=dim), -1, -1).take(
                range(0, x.shape[dim] - size + 1, step), axis=dim) if is_np else x.unfold(dim, size, step)
        else:
            x = np.sin(x) * 2 if is_np else x.sin() * 2
    return x


@SETTINGS
@given(case=movement_chain())
def test_random_movement_chains_match_numpy(case: tuple[tuple[int, ...], list[tuple[str, object]]],
                                            device: str) -> None:
    shape, ops = case
    data = np.arange(1, np.prod(shape) + 1, dtype=np.float64).reshape(shape) / 7
    expected = _apply(data, ops, True)
    t = Tensor(data.astype(np.float32), device=device, requires_grad=True)
    out = _apply(t, ops, False)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)
    weights = np.linspace(-1, 1, max(1, int(np.prod(expected.shape)))).reshape(expected.shape)
    (out * Tensor(weights.astype(np.float32), device=device)).sum().backward()
    # d/dx of sum(w * f(x)) by finite differences on the float64 reference
    grad = np.zeros_like(data)
    for idx in np.ndindex(shape):
        old = data[idx]
        data[idx] = old + 1e-6
        up = float((_apply(data, ops, True) * weights).sum())
        data[idx] = old - 1e-6
        down = float((_apply(data, ops, True) * weights).sum())
        data[idx] = old
        grad[idx] = (up - down) / 2e-6
    np.testing.assert_allclose(t.grad.numpy(), grad, rtol=1e-3, atol=1e-3)


@st.composite
def broadcast_pair(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    ndim = draw(st.integers(0, 4))
    out = draw(st.lists(st.integers(0, 3), min_size=ndim, max_size=ndim))
    a = [n if draw(st.booleans()) else 1 for n in out]
    b = [n if draw(st.booleans()) else 1 for n in out]
    return tuple(a[draw(st.integers(0, ndim)):]), tuple(b)


@SETTINGS
@given(shapes=broadcast_pair(), op=st.sampled_from(["add", "mul", "sub", "maximum"]), dim=st.integers(-1, 3))
def test_random_broadcasting_and_reductions(shapes: tuple, op: str, dim: int, device: str) -> None:
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(s) for s in shapes)
    ta, tb = Tensor(a.astype(np.float32), device=device), Tensor(b.astype(np.float32), device=device)
    out = getattr(ta, op)(tb)
    ref = {"add": np.add, "mul": np.multiply, "sub": np.subtract, "maximum": np.maximum}[op](a, b)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-6)
    if ref.ndim and dim < ref.ndim:
        np.testing.assert_allclose(out.sum(dim).numpy(), ref.sum(dim), rtol=1e-4, atol=1e-5)
