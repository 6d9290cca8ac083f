"""tg-webgpu specifics: registration, WGSL's gaps (packed small types, dispatch limits, binding limits), the
runtime's batching and caches, errors. (The conformance kit, run by tg-core's test session on every device,
covers the ops and tg's semantics spec.)"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tg.core import Tensor, TinyJit, counters, get_device, reset_counters
from tg.core.device import DeviceError

DEV = "webgpu"


@pytest.fixture
def submits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the command buffers submitted to the queue (one per batch of dispatches)."""
    dev = get_device(DEV)
    dev.synchronize()
    seen: list[int] = []
    queue_submit = dev.gpu.queue.submit

    def counted(buffers: list) -> None:
        seen.append(len(buffers))
        queue_submit(buffers)

    monkeypatch.setattr(dev.gpu.queue, "submit", counted)
    return seen


def test_registered_and_listed_by_the_cli() -> None:
    out = subprocess.run([sys.executable, "-m", "tg.core", "--json"], capture_output=True, text=True)
    info = json.loads(out.stdout)
    entry = next(d for d in info["devices"] if d["name"] == DEV)
    assert entry["status"] == "PASS", entry
    assert any(p["name"] == DEV and p["distribution"] == "tg-webgpu" for p in info["plugins"])


def test_dtypes_follow_the_adapter() -> None:
    dev = get_device(DEV)
    names = {d.name for d in dev.dtypes}
    assert {"bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "float32"} <= names
    assert ("int64" in names) == ("shader-int64" in dev.gpu.features)
    assert ("float64" in names) == ({"shader-f64", "shader-int64"} <= set(dev.gpu.features))


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint8, np.int16, np.uint16])
def test_small_types_packed_in_words_are_written_by_neighbouring_threads(dtype: type) -> None:
    # every work-item writes one element; four (or two) of them share each 32-bit word of the output
    rng = np.random.default_rng(0)
    n = 64 * 37 + 3  # not a whole number of words
    if dtype is np.bool_:
        a, b = rng.random(n) < 0.5, rng.random(n) < 0.5
        ta, tb = Tensor(a, device=DEV), Tensor(b, device=DEV)
        np.testing.assert_array_equal((ta ^ tb).numpy(), a ^ b)
        np.testing.assert_array_equal((ta & ~tb).numpy(), a & ~b)
        return
    info = np.iinfo(dtype)
    a = rng.integers(info.min, info.max, n, endpoint=True).astype(dtype)
    b = rng.integers(info.min, info.max, n, endpoint=True).astype(dtype)
    ta, tb = Tensor(a, device=DEV), Tensor(b, device=DEV)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal((ta + tb).numpy(), a + b)  # wraps at the type's width, not at 32 bits
        np.testing.assert_array_equal((ta * tb).numpy(), a * b)
        np.testing.assert_array_equal((-ta).numpy(), -a)
    np.testing.assert_array_equal((ta < tb).numpy(), a < b)
    np.testing.assert_array_equal(ta[1::3].numpy(), a[1::3])  # reads at every offset inside a word
    np.testing.assert_array_equal(Tensor(a.astype(np.float32) * 3.5, device=DEV).cast(ta.dtype).numpy(),
                                  np.clip(np.trunc(a.astype(np.float32) * 3.5), info.min, info.max).astype(dtype))


def test_more_work_groups_than_one_dispatch_dimension_allows() -> None:
    n = 64 * 65535 + 1000  # past 65,535 groups of 64: the dispatch goes on in y
    x = np.arange(n, dtype=np.float32)
    out = (Tensor(x, device=DEV) * 2 + 1).numpy()
    np.testing.assert_array_equal(out, x * 2 + 1)


def test_kernels_that_read_more_buffers_than_a_stage_binds_are_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_device(DEV), "max_buffers", 8)  # the WebGPU default, what browsers give
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=50).astype(np.float32) for _ in range(30)]
    ts = [Tensor(x, device=DEV) for x in xs]
    left = ts[0]
    for t in ts[1:]:
        left = left + t * 2
    reset_counters()
    np.testing.assert_allclose(left.numpy(), xs[0] + 2 * sum(xs[1:]), rtol=1e-5, atol=1e-5)
    assert counters.kernels >= 5  # 30 inputs, at most 7 per kernel


def test_one_submit_per_realize_and_per_replay(submits: list[int]) -> None:
    a = Tensor(np.arange(1000, dtype=np.float32), device=DEV)
    b = ((a * 3).exp2().sum() + (a - 1).amax()).contiguous()  # several kernels
    reset_counters()
    b.realize()
    assert counters.kernels >= 2 and len(submits) == 1

    @TinyJit
    def step(x: Tensor) -> Tensor:
        return ((x * 2).relu().sum() + x.amax()).realize()

    for _ in range(3):  # capture, then replays
        step(a)
    before = len(submits)
    step(a)
    assert len(submits) == before + 1


def test_pipelines_and_bind_groups_are_made_once() -> None:
    dev = get_device(DEV)
    a = Tensor(np.ones(256, np.float32), device=DEV)
    (a * 5 + 2).realize()
    reset_counters()
    groups = len(dev.bind_groups)
    for _ in range(5):
        (a * 5 + 2).numpy()
    assert counters.compiles == 0
    assert len(dev.bind_groups) <= groups + 5  # new outputs; never one per pipeline and call twice


def test_buffers_freed_while_work_is_recorded_stay_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    dev = get_device(DEV)
    monkeypatch.setattr(dev.allocator, "cache_limit", 0)  # every free goes back to the driver at once
    x = np.arange(4096, dtype=np.float32)
    t = Tensor(x, device=DEV)
    for _ in range(20):
        t = (t + 1) * 1
    np.testing.assert_array_equal(t.numpy(), x + 20)


def test_a_wgsl_error_shows_the_source() -> None:
    dev = get_device(DEV)
    with pytest.raises(RuntimeError, match=r"(?s)WGSL compile failed.*--- source ---.*this_is_not_wgsl"):
        dev.compiler.compile("fn tg_kernel() { this_is_not_wgsl; }", "tg_kernel")  # type: ignore[attr-defined]


def test_generated_source_is_shown_at_debug_4(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("TG_DEBUG", "4")
    Tensor([1.0, 2.0], device=DEV).exp().realize()
    err = capsys.readouterr().err
    assert "@compute @workgroup_size" in err and "tg_exp2_f32" in err


def test_a_buffer_past_the_binding_limit_names_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    dev = get_device(DEV)
    monkeypatch.setitem(dev.limits, "max-storage-buffer-binding-size", 1 << 16)
    with pytest.raises(MemoryError, match="max-storage-buffer-binding-size"):
        Tensor(np.zeros(1 << 15, np.float32), device=DEV).realize()


def test_no_adapter_gives_install_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    from tg.webgpu import device

    monkeypatch.setattr(device.wgpu.gpu, "request_adapter_sync", lambda **kw: None)
    with pytest.raises(DeviceError, match="mesa-vulkan-drivers"):
        device.WebGPUDevice("webgpu")
