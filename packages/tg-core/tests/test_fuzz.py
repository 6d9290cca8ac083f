"""Differential fuzzing: Hypothesis draws small op programs (elementwise, reductions, movement, indexing) over
int, bool, float16 and float32 data with special values and edge shapes, runs them on the device under test
and on PyTorch, and compares values (and, for float32 data, gradients). A failure shrinks to a minimal
program, printed as the list of ops.

Deterministic in CI (derandomized, TG_FUZZ_EXAMPLES examples per device, 100 by default); `nox -s fuzz` runs it
long (TG_FUZZ_EXAMPLES=2000).
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

if os.environ.get("TG_REQUIRE_TORCH"):
    import torch
else:
    torch = pytest.importorskip("torch")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tg.core import Tensor, registry, to_dtype

EXAMPLES = int(os.environ.get("TG_FUZZ_EXAMPLES", "100"))
SPECIAL = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1.0, -1.0, 0.5, 3.0, -2.5, 1e-3]
TOLERANCE = {"float32": (2e-4, 1e-5), "float16": (2e-2, 2e-3)}


@dataclass(frozen=True)
class Step:
    """One op of a program: the same call on a tg tensor and a torch tensor."""

    name: str
    fn: Callable[[Any], Any]
    kinds: str  # which element kinds it takes: f(loat), i(nt), b(ool)
    first_only: bool = False  # ops that amplify rounding (floor, comparisons) only act on the raw data
    grad: bool = True
    binary: bool = False  # fn(t, y): y is a second input of a shape that broadcasts against the first
    zero_sign: bool = True  # False: which zero it gives for -0.0 against 0.0 is not specified (max reductions)

    def __repr__(self) -> str:
        return self.name


def _both(ours: Callable[[Any], Any], theirs: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda t: theirs(t) if isinstance(t, torch.Tensor) else ours(t)


def _with_y(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """op(t, y) where y broadcasts against t's shape now (earlier ops may have changed it), else t unchanged."""
    def run(t: Any, y: Any) -> Any:
        try:
            np.broadcast_shapes(tuple(t.shape), tuple(y.shape))
        except ValueError:
            return t
        return op(t, y)
    return run


def _last(t: Any) -> int:
    return max(t.ndim - 1, 0)


STEPS = [
    Step("neg", lambda t: -t, "fi"),
    Step("abs", lambda t: t.abs(), "fi"),
    Step("relu", lambda t: t.relu(), "fi"),
    Step("sigmoid", lambda t: t.sigmoid(), "f"),
    Step("tanh", lambda t: t.tanh(), "f"),
    Step("exp", lambda t: t.exp(), "f"),
    Step("log", lambda t: t.log(), "f"),
    Step("sqrt", lambda t: t.sqrt(), "f"),
    Step("sin", lambda t: t.sin(), "f"),
    Step("square", lambda t: t * t, "fi"),
    Step("add self", lambda t: t + t, "fi"),
    Step("sub flip", lambda t: t - t.flip(0) if t.ndim else t - t, "fi"),
    Step("mul flip", lambda t: t * t.flip(0) if t.ndim else t * t, "fi"),
    Step("div 3", lambda t: t / 3, "f"),
    Step("maximum flip", lambda t: t.maximum(t.flip(0)) if t.ndim else t, "fi"),
    Step("minimum flip", lambda t: t.minimum(t.flip(0)) if t.ndim else t, "fi"),
    Step("clamp", lambda t: t.clamp(-1, 2), "fi"),
    Step("where pos", lambda t: t.where(t > 0, t * 2), "fi"),
    Step("add y", _with_y(lambda t, y: t + y), "fi", binary=True),
    Step("mul y", _with_y(lambda t, y: t * y), "fi", binary=True),
    Step("sub y", _with_y(lambda t, y: t - y), "fi", binary=True),
    Step("maximum y", _with_y(lambda t, y: t.maximum(y)), "fi", binary=True),
    Step("where y", _with_y(lambda t, y: t.where(t > y, y)), "fi", binary=True),
    Step("div y", _with_y(lambda t, y: t / y), "f", binary=True, first_only=True),
    Step("floor", lambda t: t.floor(), "f", first_only=True, grad=False),
    Step("ceil", lambda t: t.ceil(), "f", first_only=True, grad=False),
    Step("round", lambda t: t.round(), "f", first_only=True, grad=False),
    Step("lt 0.5", lambda t: t < 0.5, "fi", first_only=True, grad=False),
    Step("eq flip", lambda t: t == t.flip(0) if t.ndim else t == t, "fib", first_only=True, grad=False),
    Step("floordiv 3", lambda t: t // 3, "i", grad=False),
    Step("mod 3", lambda t: t % 3, "i", grad=False),
    Step("to float", lambda t: t.float(), "ib", grad=False),
    Step("logical not", lambda t: ~t, "b", grad=False),
    Step("xor flip", lambda t: t ^ t.flip(0) if t.ndim else t, "b", grad=False),
    Step("sum", lambda t: t.sum(), "fib"),
    Step("sum last", lambda t: t.sum(_last(t)), "fib"),
    Step("mean last", lambda t: t.mean(_last(t)), "f"),
    Step("amax last", lambda t: t.amax(_last(t)) if t.ndim == 0 or t.shape[-1] else t, "fi", zero_sign=False),
    Step("amin last", lambda t: t.amin(_last(t)) if t.ndim == 0 or t.shape[-1] else t, "fi", zero_sign=False),
    Step("prod last", lambda t: t.prod(_last(t)), "fi"),
    Step("cumsum last", lambda t: t.cumsum(_last(t)), "fi"),
    Step("softmax last", lambda t: t.softmax(_last(t)), "f"),
    Step("logsumexp last", lambda t: t.logsumexp(_last(t)), "f"),
    Step("any last", lambda t: t.any(_last(t)), "b", grad=False),
    Step("all last", lambda t: t.all(_last(t)), "b", grad=False),
    Step("reshape -1", lambda t: t.reshape(-1), "fib"),
    Step("transpose", lambda t: t.transpose(0, -1) if t.ndim >= 2 else t, "fib"),
    Step("flip", lambda t: t.flip(-1) if t.ndim else t, "fib"),
    Step("every other", lambda t: t[..., ::2] if t.ndim else t, "fib"),
    Step("pad", _both(lambda t: t.pad((1, 2)) if t.ndim else t,
                      lambda t: torch.nn.functional.pad(t, (1, 2)) if t.ndim else t), "fi"),
    Step("unsqueeze expand", lambda t: t.unsqueeze(0).expand(2, *t.shape), "fib"),
    Step("index", lambda t: t[t.new_tensor([0, -1, 0], dtype=torch.int64) if isinstance(t, torch.Tensor) else
                              Tensor(np.array([0, -1, 0]), device=t.device)] if t.ndim and t.shape[0] else t, "fib"),
    # (a NaN's sign bit is not observed by tg: the sign source has none)
    Step("copysign flip", lambda t: t.copysign(t.flip(0).nan_to_num(1.0)) if t.ndim else t.copysign(-1.0), "f"),
    Step("sgn", lambda t: t.sgn(), "fi", grad=False),
    Step("hardshrink", _both(lambda t: t.hardshrink(0.5), lambda t: torch.nn.functional.hardshrink(t, 0.5)), "f"),
    Step("xlogy y", _with_y(lambda t, y: t.xlogy(y)), "f", binary=True, first_only=True),
    Step("logaddexp2 y", _with_y(lambda t, y: t.logaddexp2(y)), "f", binary=True, zero_sign=False),
    Step("atan2 y", _with_y(lambda t, y: t.atan2(y)), "f", binary=True, first_only=True),
    Step("remainder y", _with_y(lambda t, y: t.remainder(y)), "f", binary=True, first_only=True, grad=False),
    Step("nansum last", lambda t: t.nansum(_last(t)), "f"),
    Step("var last", lambda t: t.var(_last(t)) if t.ndim == 0 or t.shape[-1] > 1 else t, "f"),
    Step("sort last", lambda t: t.sort(_last(t))[0] if t.ndim else t, "fi"),
    Step("cummax last", lambda t: t.cummax(_last(t))[0] if t.ndim else t, "fi", grad=False, zero_sign=False),
    Step("matmul T", lambda t: t @ t.transpose(0, 1) if t.ndim == 2 else t, "fi", first_only=True),
    Step("cat flip", _both(lambda t: t.cat(t.flip(0)) if t.ndim else t,
                           lambda t: torch.cat([t, t.flip(0)]) if t.ndim else t), "fib"),
    Step("pow 3", lambda t: t ** 3, "fi"),
    Step("pow y", _with_y(lambda t, y: t.pow(y)), "f", binary=True, first_only=True),
    Step("rsqrt", lambda t: t.rsqrt(), "f"),
    Step("reciprocal", lambda t: t.reciprocal(), "f", first_only=True),
    Step("log1p", lambda t: t.log1p(), "f"),
    Step("expm1", lambda t: t.expm1(), "f"),
    Step("erf", lambda t: t.erf(), "f"),
    # (torch's CPU gelu(inf) is NaN; tg's is inf: compared on finite values)
    Step("gelu", _both(lambda t: t.clamp(-1e4, 1e4).gelu(), lambda t: torch.nn.functional.gelu(t.clamp(-1e4, 1e4))),
         "f"),
    Step("silu", _both(lambda t: t.silu(), torch.nn.functional.silu), "f"),
    Step("softplus", _both(lambda t: t.softplus(), torch.nn.functional.softplus), "f"),
    Step("elu", _both(lambda t: t.elu(), torch.nn.functional.elu), "f"),
    Step("logsigmoid", _both(lambda t: t.logsigmoid(), torch.nn.functional.logsigmoid), "f"),
    Step("atan", lambda t: t.atan(), "f"),
    Step("asinh", lambda t: t.asinh(), "f"),
    Step("sinh", lambda t: t.sinh(), "f"),
    Step("mul wraps", lambda t: t * 1000003 * 1000003, "i", grad=False),
    Step("shift left 3", lambda t: t << 3, "i", grad=False),
    Step("shift right 1", lambda t: t >> 1, "i", grad=False),
    Step("and y", _with_y(lambda t, y: t & y), "ib", binary=True, grad=False),
    Step("max_pool1d", _both(lambda t: t.reshape(1, 1, -1).max_pool1d(2) if t.numel() >= 2 else t,
                             lambda t: torch.nn.functional.max_pool1d(t.reshape(1, 1, -1), 2) if t.numel() >= 2
                             else t), "f"),
    Step("avg_pool1d", _both(lambda t: t.reshape(1, 1, -1).avg_pool1d(2) if t.numel() >= 2 else t,
                             lambda t: torch.nn.functional.avg_pool1d(t.reshape(1, 1, -1), 2) if t.numel() >= 2
                             else t), "f"),
    Step("std last", lambda t: t.std(_last(t)) if t.ndim == 0 or t.shape[-1] > 1 else t, "f"),
    Step("norm last", lambda t: t.norm(dim=_last(t)) if t.ndim else t, "f"),
    Step("argmax last", lambda t: t.argmax(_last(t)) if t.ndim == 0 or t.shape[-1] else (t == t).long(), "fi",
         grad=False),
    Step("log_softmax last", lambda t: t.log_softmax(_last(t)), "f"),
    Step("cumprod last", lambda t: t.cumprod(_last(t)), "f"),
    Step("logcumsumexp last", lambda t: t.logcumsumexp(_last(t)) if t.ndim else t, "f"),
    Step("tril", lambda t: t.tril() if t.ndim == 2 else t, "fib"),
    Step("roll", lambda t: t.roll(1, 0) if t.ndim else t, "fib"),
    Step("masked_fill", lambda t: t.masked_fill(t > 1, -1), "fi"),
    Step("gather", lambda t: _gather(t), "fi"),
    Step("scatter_add", lambda t: _scatter_add(t), "fi"),
    Step("median last", lambda t: t.median(_last(t))[0] if t.ndim and t.shape[-1] else t, "fi", zero_sign=False),
    Step("quantile last", lambda t: t.quantile(0.3, _last(t)) if t.ndim and t.numel() and t.dtype.itemsize == 4
         else t, "f",
         zero_sign=False),
    Step("write view", lambda t: _write_view(t), "fi"),
    Step("write index", lambda t: _write_index(t), "fi"),
]


def _index_like(t: Any, values: list[int]) -> Any:
    """An int64 index tensor of t's shape, cycling through `values`."""
    data = np.resize(np.array(values, np.int64), t.shape) if t.numel() else np.zeros(t.shape, np.int64)
    return torch.from_numpy(data) if isinstance(t, torch.Tensor) else Tensor(data, device=t.device)


def _gather(t: Any) -> Any:
    if not t.ndim or not t.shape[-1]:
        return t
    n = t.shape[-1]
    return t.gather(t.ndim - 1, _index_like(t, [n - 1, 0, n // 2]))


def _scatter_add(t: Any) -> Any:
    if not t.ndim or not t.shape[-1]:
        return t
    n = t.shape[-1]
    # (sums in tg start at 0.0, so a -0.0 sent to a -0.0 gives 0.0 where torch's in-place += keeps -0.0: abs)
    return t.scatter_add(t.ndim - 1, _index_like(t, [0, n - 1, 0]), (t * 2).abs())


def _write_view(t: Any) -> Any:
    """An in-place op through a view of a view: it must land in the tensor viewed."""
    y = t * 1
    if y.ndim:
        y.reshape(-1)[::2].mul_(2)
    return y


def _write_index(t: Any) -> Any:
    """x[i] = v with a repeated index (the last write wins) and negative indices."""
    y = t * 1
    if y.ndim and y.shape[0]:
        index = [0, -1, 0]
        value = [2, 3, 4]
        if isinstance(y, torch.Tensor):
            y[torch.tensor(index)] = torch.tensor(value, dtype=y.dtype).reshape(3, *[1] * (y.ndim - 1))
        else:
            y[Tensor(np.array(index), device=y.device)] = Tensor(np.array(value), device=y.device).cast(
                y.dtype).reshape(3, *[1] * (y.ndim - 1))
    return y


@st.composite
def programs(draw: Any, dtypes: list[str]) -> tuple[np.ndarray, np.ndarray, list[Step]]:
    dtype = draw(st.sampled_from(dtypes))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))
    n = math.prod(shape)
    if dtype == "bool":
        data = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
    elif dtype.startswith("int"):
        info = np.iinfo(dtype)
        values = st.one_of(st.integers(-20, 20), st.sampled_from([int(info.min), int(info.max), 0]))
        data = np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype)
    else:
        values = st.one_of(st.sampled_from(SPECIAL), st.floats(-8, 8, width=16 if dtype == "float16" else 32))
        data = np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype)
    kind = {"b": "b", "i": "i", "f": "f"}[data.dtype.kind]
    other_shape = tuple(1 if draw(st.booleans()) else n for n in shape)[draw(st.integers(0, len(shape))):]
    m = math.prod(other_shape)
    if dtype == "bool":
        other = np.array(draw(st.lists(st.booleans(), min_size=m, max_size=m)), bool)
    elif dtype.startswith("int"):
        other = np.array(draw(st.lists(st.integers(-20, 20), min_size=m, max_size=m)), dtype)
    else:
        other = np.array(draw(st.lists(st.one_of(st.sampled_from(SPECIAL), st.floats(-8, 8, width=32)), min_size=m,
                                       max_size=m)), dtype)
    steps: list[Step] = []
    for k in range(draw(st.integers(1, 3))):
        fits = [s for s in STEPS if kind in s.kinds and (k == 0 or not s.first_only)
                and (not s.binary or kind == data.dtype.kind.replace("u", "i"))]  # y keeps the data's dtype
        step = draw(st.sampled_from(fits))
        steps.append(step)
        kind = _kind_after(step, kind)
    return data.reshape(shape), other.reshape(other_shape), steps


def _kind_after(step: Step, kind: str) -> str:
    if step.name in ("lt 0.5", "eq flip"):
        return "b"
    if step.name == "argmax last":
        return "i"
    if step.name in ("to float", "sum", "sum last") and kind == "b":
        return "f" if step.name == "to float" else "i"
    if step.name == "to float":
        return "f"
    return kind


def _run(steps: list[Step], t: Any, y: Any) -> Any:
    for s in steps:
        t = s.fn(t, y) if s.binary else s.fn(t)
    return t


def _compare(ours: np.ndarray, ref: np.ndarray, dtype: str, what: str, zero_sign: bool = True) -> None:
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != torch's {ref.shape}"
    if ref.dtype.kind == "f":
        rtol, atol = TOLERANCE.get(ref.dtype.name, TOLERANCE["float32"])
        np.testing.assert_allclose(ours.astype(np.float64), ref.astype(np.float64), rtol=rtol, atol=atol,
                                   equal_nan=True, err_msg=what)
        # the sign of an exact zero is part of the value (1/-0.0 is -inf); float32 only: lavapipe's float16
        # arithmetic turns some 0.0 results into -0.0 (log_softmax of a 0-d half 0.0)
        zero = (ref == 0) & zero_sign & (ref.dtype == np.float32)
        np.testing.assert_array_equal(np.signbit(ours[zero & (ours == 0)]), np.signbit(ref[zero & (ours == 0)]),
                                      err_msg="sign of zero in " + what)
    else:
        np.testing.assert_array_equal(ours, ref, err_msg=what)


def _fuzz(device: str) -> None:
    stored = registry.open(device).dtypes
    dtypes = [d for d in ("float32", "float16", "int32", "int64", "bool") if to_dtype(d) in stored]

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(programs(dtypes))
    def check(program: tuple[np.ndarray, np.ndarray, list[Step]]) -> None:
        data, other, steps = program
        what = (f"program {steps} on {data.dtype} {data.shape} {data.ravel()[:8].tolist()} with y {other.shape} "
                f"{other.ravel()[:8].tolist()} (device {device!r})")
        ty, gy = torch.from_numpy(other.copy()), Tensor(other, device=device)
        ref = _run(steps, torch.from_numpy(data.copy()), ty)
        out = _run(steps, Tensor(data, device=device), gy)
        _compare(out.numpy(), ref.numpy(), data.dtype.name, what, all(s.zero_sign for s in steps))
        if data.dtype == np.float32 and all(s.grad for s in steps) and np.isfinite(data).all() and \
                ref.dtype == torch.float32 and np.isfinite(ref.numpy()).all():
            x_ref = torch.from_numpy(data.copy()).requires_grad_()
            _run(steps, x_ref, ty).sum().backward()
            x = Tensor(data, device=device, requires_grad=True)
            _run(steps, x, gy).sum().backward()
            assert x.grad is not None and x_ref.grad is not None
            if np.isfinite(x_ref.grad.numpy()).all():
                _compare(x.grad.numpy(), x_ref.grad.numpy(), "float32", "gradient of " + what, zero_sign=False)

    check()


def test_programs_match_torch(device: str) -> None:
    _fuzz(device)
