"""The optional search (TG_SEARCH=1): it times candidates on a compiled device, keeps the fastest, and
stores the choice so that a later process reuses it without timing."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tg.core import Tensor, registry, search


@pytest.mark.parametrize("name", ["llvm", "opencl"])
def test_search_chooses_caches_and_reuses(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if registry.try_open(name) is None:
        pytest.skip(f"{name} is not installed here")  # CI installs both: TG_REQUIRE_DEVICES makes it fail there
    dev = registry.open(name)
    monkeypatch.setenv("TG_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TG_SEARCH", "1")
    monkeypatch.setattr(search, "_cache", None)
    dev.programs.clear()
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((96, 80)).astype(np.float32), rng.standard_normal((80, 112)).astype(np.float32)
    timed: list[object] = []
    real_measure = dev.measure
    monkeypatch.setattr(dev, "measure", lambda *args: timed.append(args) or real_measure(*args))
    out = (Tensor(a, device=name) @ Tensor(b, device=name)).numpy()
    np.testing.assert_allclose(out, a @ b, rtol=1e-4, atol=1e-4)
    assert len(timed) > 1 and (tmp_path / "search" / "search.json").exists()

    # a new process: nothing in memory, the choice comes from the file without timing anything
    monkeypatch.setattr(search, "_cache", None)
    dev.programs.clear()
    monkeypatch.setattr(dev, "measure", lambda *args: pytest.fail("the cached choice was timed again"))
    out = (Tensor(a, device=name) @ Tensor(b, device=name)).numpy()
    np.testing.assert_allclose(out, a @ b, rtol=1e-4, atol=1e-4)
    dev.programs.clear()


def test_candidates_start_with_the_heuristic() -> None:
    from tg.core.opt import choose_opts
    from tg.core.schedule import schedule

    a, b = Tensor(np.ones((64, 32), np.float32)), Tensor(np.ones((32, 48), np.float32))
    kernel = schedule([(a @ b).node])[-1].kernel
    assert kernel is not None
    options = search.candidates(kernel, gpu=False)
    assert options[0] == choose_opts(kernel) and len(options) > 3 and len(set(map(repr, options))) == len(options)
