"""tg-opencl specifics: registration, device listing, caches, errors. (The conformance kit, run by
tg-core's test session on every device, covers the ops.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from tg.core import Tensor, counters, get_device, reset_counters


def test_registered_and_listed_by_the_cli() -> None:
    out = subprocess.run([sys.executable, "-m", "tg.core", "--json"], capture_output=True, text=True)
    info = json.loads(out.stdout)
    entry = next(d for d in info["devices"] if d["name"] == "opencl")
    assert entry["status"] == "PASS", entry
    assert any(p["name"] == "opencl" and p["distribution"] == "tg-opencl" for p in info["plugins"])


def test_device_reports_its_dtypes() -> None:
    dev = get_device("opencl")
    assert {"float32", "int32", "bool"} <= {d.name for d in dev.dtypes}


def test_kernels_compile_once_per_shape() -> None:
    a = Tensor(np.ones(1000, np.float32), device="opencl")
    (a * 3 + 1).realize()
    reset_counters()
    for _ in range(3):
        (a * 3 + 1).realize()
    assert counters.compiles == 0 and counters.kernels == 3


def test_generated_source_is_shown_at_debug_4(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("TG_DEBUG", "4")
    Tensor([1.0, 2.0], device="opencl").exp().realize()
    err = capsys.readouterr().err
    assert "__kernel void tg_kernel" in err and "exp2" in err  # exp2( on GPUs, tg_exp2f( on CPU devices


def test_a_build_failure_shows_the_log_and_the_source() -> None:
    dev = get_device("opencl")
    with pytest.raises(RuntimeError, match=r"(?s)OpenCL build failed.*--- source ---.*this_is_not_c"):
        dev.compiler.compile("__kernel void tg_kernel(__global float* b0) { this_is_not_c; }", "tg_kernel")  # type: ignore[attr-defined]


def test_no_platform_gives_install_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyopencl as cl

    from tg.core.device import DeviceError
    from tg.opencl import device

    def fail() -> list:
        raise cl.LogicError("clGetPlatformIDs failed: PLATFORM_NOT_FOUND_KHR")

    monkeypatch.setattr(device.cl, "get_platforms", fail)
    with pytest.raises(DeviceError, match="pocl-opencl-icd"):
        device.all_devices()


CHILD = """
import json, numpy as np
from tg.core import Tensor, counters
out = (Tensor(np.arange(8, dtype=np.float32), device="opencl") * 5 - 1).sum().item()
print(json.dumps({"out": out, "compiles": counters.compiles}))
"""


def test_second_process_reuses_the_binary_cache(tmp_path: Path) -> None:
    # the caller's environment (the driver's and Python's paths) without its TG_ settings, and an empty cache
    env = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    env.update(TG_CACHE_DIR=str(tmp_path), HOME=str(tmp_path))
    runs = [json.loads(subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                                      check=True).stdout) for _ in range(2)]
    assert runs[0]["out"] == runs[1]["out"] == 132.0
    assert runs[0]["compiles"] >= 1 and runs[1]["compiles"] == 0


@pytest.mark.parametrize("spec", ["8,8,8,4,4", "4,8,16,2,4", "16,8,16,8,8", "16,16,8,4,4"])
def test_local_memory_staged_contractions(spec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU lowering that stages both operands of a contraction in local memory (TG_GPU_LOCAL), run
    through the real OpenCL driver (PoCL here, forced onto the GPU code path): plain, batched and
    transposed matmuls and their gradients against NumPy."""
    from tg.core import registry

    monkeypatch.setenv("TG_GPU_LOCAL", spec)
    dev = registry.open("opencl")
    monkeypatch.setattr(dev, "is_gpu", True)
    monkeypatch.setattr(dev, "programs", OrderedDict())
    rng = np.random.default_rng(0)
    # (A's shape, B's shape, A given transposed, A a view one element into each row of a wider matrix); the
    # last two read A with scalar loads (k not contiguous, rows not 4-aligned), the others 4 at a time
    cases = [((64, 32), (32, 64), False, False), ((3, 32, 64), (3, 64, 32), False, False),
             ((256, 48), (48, 128), False, False), ((32, 64), (64, 96), True, False),
             ((128, 32), (32, 64), False, True)]
    for sa, sb, transposed, shifted in cases:
        a, b = rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32)
        given = np.ascontiguousarray(a.T) if transposed else np.pad(a, ((0, 0), (1, 3))) if shifted else a
        ta = Tensor(given, device="opencl", requires_grad=True)
        tb = Tensor(b, device="opencl", requires_grad=True)
        left = ta.T if transposed else ta[:, 1:-3] if shifted else ta
        out = left @ tb
        np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-4, atol=1e-4)
        (out * out).sum().backward()
        grad_b = a.swapaxes(-1, -2) @ (2 * (a @ b))
        np.testing.assert_allclose(tb.grad.numpy(), grad_b, rtol=1e-3, atol=1e-3)
    assert any("local memory" in " ".join(p.prog.notes) for p in dev.programs.values())
    wide = all(int(v) % 4 == 0 for v in spec.split(",")[2:])  # chunk and tile multiples of 4: vector accesses
    assert any("(__local float4*)" in p.source for p in dev.programs.values()) == wide


def test_group_reductions_on_the_gpu_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long reductions share each output among a work-group on GPUs (a local-memory tree of partial results):
    run through the real OpenCL driver, forced onto the GPU code path, against NumPy, with their gradients."""
    from tg.core import registry

    dev = registry.open("opencl")
    monkeypatch.setattr(dev, "is_gpu", True)
    monkeypatch.setattr(dev, "programs", OrderedDict())
    rng = np.random.default_rng(0)
    for shape, dim in [((3, 1000), 1), ((5000,), 0), ((30, 7, 40), (0, 2)), ((1000, 3), 0)]:
        x = rng.standard_normal(shape).astype(np.float32)
        t = Tensor(x, device="opencl", requires_grad=True)
        np.testing.assert_allclose(t.sum(dim).numpy(), x.astype(np.float64).sum(dim), rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(t.amax(dim).numpy(), x.max(dim))
        e = np.exp(x.astype(np.float64) - x.max(-1, keepdims=True))
        soft = t.softmax(-1)
        np.testing.assert_allclose(soft.numpy(), e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-6)
        (soft * soft).sum().backward()
        s = e / e.sum(-1, keepdims=True)
        np.testing.assert_allclose(t.grad.numpy(), s * (2 * s - (2 * s * s).sum(-1, keepdims=True)), atol=1e-5)
    assert any("work-items per output" in " ".join(p.prog.notes) for p in dev.programs.values())
