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
