"""tg's op semantics (tg.core.semantics), rule by rule, on the device under test: bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from tg.core import Tensor, registry, to_dtype
from tg.core.semantics import CASES, Case


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.rule}: {c.name}")
def test_rule(case: Case, device: str) -> None:
    missing = sorted(d for d in case.dtypes if to_dtype(d) not in registry.open(device).dtypes)
    if missing:
        pytest.skip(f"device {device!r} stores no {', '.join(missing)}")
    got = case.fn(*(Tensor(a, device=device) for a in case.inputs)).numpy()
    want = case.expected
    assert got.dtype == want.dtype, f"{case.name}: dtype {got.dtype}, the spec says {want.dtype}"
    assert got.shape == want.shape, f"{case.name}: shape {got.shape}, the spec says {want.shape}"
    np.testing.assert_array_equal(got, want, err_msg=f"{case.rule}: {case.name}")
    if want.dtype.kind == "f":  # the sign of zero (a NaN's sign bit means nothing)
        number = ~np.isnan(want)
        np.testing.assert_array_equal(np.signbit(got)[number], np.signbit(want)[number], err_msg=f"{case.name}: sign")


def test_every_rule_names_a_section_of_the_spec() -> None:
    import tg.core.semantics as spec

    sections = {"nan", "inf", "zero", "contract", "accumulate", "integer", "cast", "empty"}
    assert {c.rule for c in CASES} == sections
    assert spec.__doc__ and "No implicit contraction" in spec.__doc__


def _ulps(got: np.ndarray, exact: np.ndarray) -> float:
    """The largest error in units of the last place of the float32 results (exact: float64, all finite)."""
    spacing = np.spacing(np.abs(exact.astype(np.float32))).astype(np.float64)
    return float(np.max(np.abs(got.astype(np.float64) - exact) / spacing))


def test_exp2_and_log2_within_a_few_ulp(device: str) -> None:
    """The math library (or tg's own polynomials, where a device's is a scalar call) over float32's whole range
    of normal results, and the special values exactly."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-126, 127.9, 20000), rng.uniform(-1, 1, 5000)]).astype(np.float32)
    assert _ulps(Tensor(x, device=device).exp2().numpy(), np.exp2(x.astype(np.float64))) <= 4
    y = np.concatenate([np.exp2(rng.uniform(-125, 127.9, 20000)), rng.uniform(0.5, 2, 5000)]).astype(np.float32)
    y = y[np.abs(np.log2(y.astype(np.float64))) > 1e-3]  # near 1 the result is tiny: an absolute bound below
    assert _ulps(Tensor(y, device=device).log2().numpy(), np.log2(y.astype(np.float64))) <= 4
    near = np.float32(1) + np.arange(-64, 65, dtype=np.float32) * np.float32(2**-20)
    error = np.abs(Tensor(near, device=device).log2().numpy() - np.log2(near.astype(np.float64)))
    assert error.max() <= 4 * 2**-24 * 2**-14, error.max()
    special = np.array([-np.inf, np.inf, np.nan, 0.0, -0.0, 128.0, -1e9, 1e9], np.float32)
    log_special = np.array([0.0, -0.0, -1.0, -np.inf, np.inf, np.nan, 1.0, 2.0, 0.5, 2.0**127], np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        np.testing.assert_array_equal(Tensor(special, device=device).exp2().numpy(), np.exp2(special))
        np.testing.assert_array_equal(Tensor(log_special, device=device).log2().numpy(), np.log2(log_special))
