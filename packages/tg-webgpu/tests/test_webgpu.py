"""tg-webgpu specifics: registration, WGSL's gaps (packed small types, dispatch limits, binding limits), the
runtime's batching and caches, errors. (The conformance kit, run by tg-core's test session on every device,
covers the ops and tg's semantics spec.)"""
from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tg.core import Tensor, TinyJit, counters, get_device, reset_counters
from tg.core.device import DeviceError
from tg.core.render import vector_lanes
from tg.webgpu.stream import NativeCalls, PublicCalls

DEV = "webgpu"


@pytest.fixture
def submits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the command buffers submitted to the queue (one per batch of dispatches)."""
    dev = get_device(DEV)
    dev.synchronize()
    seen: list[int] = []
    submit = dev.stream.calls.submit

    def counted(encoder: Any) -> None:
        seen.append(1)
        submit(encoder)

    monkeypatch.setattr(dev.stream.calls, "submit", counted)
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


@pytest.mark.parametrize("n", [65535 + 1002, 4 * 65535 + 1000])  # one element a work-item; vec4 lanes
def test_more_work_groups_than_one_dispatch_dimension_allows(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    renderer = get_device(DEV).renderer
    monkeypatch.setattr(renderer, "workgroup_size", 1)
    monkeypatch.setattr(renderer, "per_thread", lambda prog: 1)
    x = np.arange(n, dtype=np.float32)  # past 65,535 groups of one item: the dispatch goes on in y
    out = (Tensor(x, device=DEV) * 2 + 1).numpy()
    np.testing.assert_array_equal(out, x * 2 + 1)
    prog = get_device(DEV).programs[next(reversed(get_device(DEV).programs))].prog
    assert renderer.groups(prog) > 65535 and vector_lanes(prog) == (4 if n % 4 == 0 else 1)


def test_long_reductions_fold_through_subgroups_where_the_adapter_has_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long reduction shares each output among a work-group; the group's partial results are folded through
    workgroup memory and, where the adapter has the `subgroup` feature (lavapipe has), a subgroup operation at the
    end. Both ways give NumPy's results."""
    dev = get_device(DEV)
    assert dev.renderer.subgroups  # lavapipe and NVIDIA's Vulkan driver offer the feature
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 3000)).astype(np.float32)
    ints = rng.integers(-1000, 1000, (5, 3000)).astype(np.int32)
    sources = []
    for subgroups in (True, False):
        monkeypatch.setattr(dev.renderer, "subgroups", subgroups)
        monkeypatch.setattr(dev, "programs", OrderedDict())
        t = Tensor(x, device=DEV)
        np.testing.assert_allclose(t.sum(1).numpy(), x.astype(np.float64).sum(1), rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(Tensor(ints, device=DEV).amax(1).numpy(), ints.max(1))
        np.testing.assert_array_equal(t.amax(1).numpy(), x.max(1))
        sources.append(" ".join(p.source for p in dev.programs.values()))
    assert "subgroupAdd" in sources[0] and "subgroupMax" in sources[0] and "subgroup" not in sources[1]


@pytest.mark.parametrize("spec", ["8,8,8,4,4", "4,8,16,2,4", "16,16,8,4,4"])
def test_local_memory_staged_contractions(spec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Contractions with both operands staged in workgroup memory (TG_GPU_LOCAL): with tiles in multiples of 4 the
    arrays are held as vec4s and read a vec4 at a time; plain, batched, transposed and misaligned operands, and
    the gradients, against NumPy."""
    dev = get_device(DEV)
    monkeypatch.setenv("TG_GPU_LOCAL", spec)
    monkeypatch.setattr(dev, "programs", OrderedDict())
    rng = np.random.default_rng(0)
    cases = [((64, 32), (32, 64), "plain"), ((3, 32, 64), (3, 64, 32), "plain"), ((32, 64), (64, 96), "transposed"),
             ((128, 32), (32, 64), "shifted")]
    for sa, sb, how in cases:
        a, b = rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32)
        given = np.ascontiguousarray(a.T) if how == "transposed" else np.pad(a, ((0, 0), (1, 3))) if how == "shifted" \
            else a
        ta = Tensor(given, device=DEV, requires_grad=True)
        tb = Tensor(b, device=DEV, requires_grad=True)
        left = ta.T if how == "transposed" else ta[:, 1:-3] if how == "shifted" else ta
        out = left @ tb
        np.testing.assert_allclose(out.numpy(), a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)
        (out * out).sum().backward()
        grad_b = a.astype(np.float64).swapaxes(-1, -2) @ (2 * (a.astype(np.float64) @ b))
        np.testing.assert_allclose(tb.grad.numpy(), grad_b, rtol=1e-3, atol=1e-3)
    sources = [p.source for p in dev.programs.values() if p.prog.local_size]
    assert sources
    wide = all(int(v) % 4 == 0 for v in spec.split(",")[2:])
    assert any("array<vec4<f32>" in src for src in sources) == wide


def test_group_reductions_past_one_dispatch_dimension(monkeypatch: pytest.MonkeyPatch) -> None:
    """More outputs than groups fit in x: the dispatch goes on in y, and the groups past the end skip the whole
    kernel together (a work-item alone may not skip a barrier)."""
    from tg.webgpu import renderer

    dev = get_device(DEV)
    monkeypatch.setattr(renderer, "MAX_GROUPS", 100)
    monkeypatch.setitem(dev.limits, "max-compute-workgroups-per-dimension", 100)
    monkeypatch.setattr(dev, "programs", OrderedDict())
    x = np.random.default_rng(3).standard_normal((301, 300)).astype(np.float32)
    np.testing.assert_allclose(Tensor(x, device=DEV).sum(1).numpy(), x.astype(np.float64).sum(1), rtol=1e-5,
                               atol=1e-4)
    prog = next(p for p in dev.programs.values() if p.prog.local_size)
    assert dev.renderer.groups(prog.prog) == 301 and "< 301u" in prog.source


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


def test_the_next_encoder_is_made_while_the_gpu_works(monkeypatch: pytest.MonkeyPatch) -> None:
    """synchronize() and reading back make the next command encoder before they wait (lavapipe: ~30 us a replay
    less to record), and the next recorded dispatch takes it; results are unchanged."""
    dev = get_device(DEV)
    made: list[str] = []
    calls = dev.stream.calls
    original = calls.encoder

    def counted() -> Any:
        made.append("encoder")
        return original()

    monkeypatch.setattr(calls, "encoder", counted)
    step = TinyJit(lambda p: (p * 3).exp())
    x = Tensor(np.linspace(-1, 1, 1024, dtype=np.float32), device=DEV).realize()
    for _ in range(3):
        step(x)
    dev.synchronize()
    assert dev.stream.spare is not None and dev.stream.encoder is None
    before = len(made)
    out = step(x)  # recorded into the encoder made ahead
    assert len(made) == before and dev.stream.spare is None
    np.testing.assert_allclose(out.numpy(), np.exp(np.linspace(-1, 1, 1024, dtype=np.float32) * 3), rtol=1e-6)
    assert len(made) == before + 1 and dev.stream.spare is not None  # reading back waits too: it made the next


def test_synchronize_spins_on_gpus_and_waits_for_the_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GPU adapter's synchronize polls the queue without blocking before the blocking wait; CPU adapters
    (lavapipe) do not spin. The non-blocking poll returns a C bool that cffi reads as 32 bits: only the low byte
    counts (the upper ones held garbage). A spin forced on here still leaves nothing running, and the results hold."""
    dev = get_device(DEV)
    assert dev.spin_seconds == 0.0  # lavapipe is a CPU adapter
    calls = dev.stream.calls

    class Poll:  # what wgpu-native returned on lavapipe and on NVIDIA: garbage above the bool's byte
        def __init__(self, value: int) -> None:
            self.value = value

        def wgpuDevicePoll(self, *args: Any) -> int:  # noqa: N802 - the C function's name
            return self.value

    for raw, idle in ((0x4A656700, False), (0x4A656701, True), (1, True), (0, False)):
        monkeypatch.setattr(calls, "c", Poll(raw))
        assert calls.idle() is idle
    monkeypatch.undo()
    monkeypatch.setattr(dev, "spin_seconds", 5.0)
    spun: list[float] = []
    original = dev.stream.spin
    monkeypatch.setattr(dev.stream, "spin", lambda s: (spun.append(s), original(s)))
    x = Tensor(np.linspace(-1, 1, 1 << 20, dtype=np.float32), device=DEV).realize()
    chain = ((x * 1.5 + 1).exp() * x).sin()
    for _ in range(4):
        chain = (chain * 0.5 + x).cos()  # separate kernels, submitted as they are realized
        chain.realize()
    spun.clear()
    dev.synchronize()
    assert spun == [5.0] and dev.stream.calls.idle()
    want = np.linspace(-1, 1, 1 << 20, dtype=np.float32).astype(np.float64)
    ref = np.sin(np.exp(want * 1.5 + 1) * want)
    for _ in range(4):
        ref = np.cos(ref * 0.5 + want)
    np.testing.assert_allclose(chain.numpy(), ref, atol=1e-5)


def test_dispatches_are_recorded_through_wgpu_natives_handles() -> None:
    # the pinned wgpu-py has what the fast recording path needs: an upgrade that loses it fails here, not silently
    assert isinstance(get_device(DEV).stream.calls, NativeCalls)


@pytest.mark.parametrize("calls", [PublicCalls, NativeCalls.find])
def test_both_recording_paths_compute_the_same(monkeypatch: pytest.MonkeyPatch, calls: Any) -> None:
    dev = get_device(DEV)
    dev.synchronize()
    monkeypatch.setattr(dev.stream, "calls", calls(dev.gpu))
    x = np.linspace(-3, 3, 5000, dtype=np.float32)
    t = Tensor(x, device=DEV)
    out = (t.exp() * 2 + t.flip(0)).contiguous() * 1.5  # kernels, then a copy between them, then one more
    np.testing.assert_allclose(out.numpy(), (np.exp(x) * 2 + x[::-1]) * 1.5, rtol=1e-6)


def test_an_invalid_dispatch_raises_and_the_stream_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # WebGPU reports a bad command when its encoder is finished: that call is checked, so Python sees the error
    dev = get_device(DEV)
    a = Tensor(np.ones(64, np.float32), device=DEV)
    (a + 1).realize()
    dev.synchronize()
    program = dev.programs[next(reversed(dev.programs))]
    group = next(iter(dev.bind_groups.values()))[0]
    dev.stream.dispatch(program.runner.pipeline, group, 70000, 1)  # past the 65,535 groups a dimension allows
    with pytest.raises(Exception, match="65535"):
        dev.synchronize()
    np.testing.assert_array_equal((a * 3).numpy(), np.full(64, 3, np.float32))


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


def test_the_driver_probes_read_what_the_device_computes() -> None:
    """The probes behind the division's correction step: a product is exact on any IEEE device; a fused fma gives
    2^-24 for (1 + 2^-12)^2 - (1 + 2^-11) and an unfused one 0 (lavapipe's), nothing else."""
    dev = get_device(DEV)
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(128).astype(np.float32), rng.standard_normal(128).astype(np.float32)
    np.testing.assert_array_equal(dev.probe("a[i] * b[i]", a, b), a * b)
    one = np.full(64, 1 + 2.0**-12, np.float32)
    fma = dev.probe("fma(a[i], a[i], b[i])", one, np.full(64, -(1 + 2.0**-11), np.float32))
    assert set(fma.tolist()) <= {0.0, 2.0**-24} and dev.fma_is_fused() == (fma[0] == 2.0**-24)


def test_an_inexact_division_without_a_fused_fma_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from tg.webgpu import device

    monkeypatch.setattr(device.WebGPUDevice, "division_is_exact", lambda self: False)
    monkeypatch.setattr(device.WebGPUDevice, "fma_is_fused", lambda self: False)
    with pytest.warns(UserWarning, match="an ulp off"):
        device.WebGPUDevice("webgpu")


# ---- export for the browser, run in headless Chromium (SwiftShader's WebGPU without a GPU) -------------------------
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:  # CI installs it: a missing browser fails, it does not skip
        pytest.fail("no Chromium to run the exported page: apt-get install chromium")
    return found


def run_page(directory: Path, timeout: float = 120) -> dict:
    """Serve `directory` on localhost, open its index.html in headless Chromium, return what the page posts."""
    posted: list[bytes] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_POST(self) -> None:
            posted.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen([chromium(), "--headless=new", "--no-sandbox", "--enable-unsafe-webgpu",
                                    f"--user-data-dir={profile}", url],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + timeout
            while not posted and browser.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            browser.kill()
            log = browser.communicate()[1].decode(errors="replace")
            server.shutdown()
    assert posted, f"the page posted nothing; Chromium said:\n{log[-3000:]}"
    result = json.loads(posted[0])
    assert "error" not in result, result["error"]
    return result


def test_an_exported_function_runs_in_the_browser(tmp_path: Path) -> None:
    from tg.webgpu import export

    rng = np.random.default_rng(3)
    w = Tensor(rng.standard_normal((8, 6)).astype(np.float32), device=DEV)
    scale = Tensor(np.float32([0.5]), device=DEV)

    def fn(x: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        h = (x @ w).relu() * scale - 0.25
        return h.softmax(1), (h > 0), k * 3 // 2, v.softmax(1)  # v's rows are long: work-groups share them

    x = rng.standard_normal((5, 8)).astype(np.float32)
    k = np.array([-7, 5, 2**30, -(2**31)], np.int32)
    v = rng.standard_normal((3, 700)).astype(np.float32)
    export(fn, [x, k, v], tmp_path)
    assert "subgroup" not in (tmp_path / "model.js").read_text()  # browsers offer subgroups only when asked
    page = run_page(tmp_path)
    want = [t.numpy() for t in fn(Tensor(x, device=DEV), Tensor(k, device=DEV), Tensor(v, device=DEV))]
    np.testing.assert_allclose(np.float32(page["outputs"][0]).reshape(5, 6), want[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(np.array(page["outputs"][1], bool).reshape(5, 6), want[1])
    np.testing.assert_array_equal(np.array(page["outputs"][2], np.int32), want[2])  # wraps like tg
    np.testing.assert_allclose(np.float32(page["outputs"][3]).reshape(3, 700), want[3], rtol=1e-5, atol=1e-8)


def test_the_mnist_demo_model_classifies_real_digits_in_the_browser(tmp_path: Path) -> None:
    import tg.nn as nn
    from tg.core import default_device, manual_seed
    from tg.nn.demo import make_model
    from tg.webgpu import export

    manual_seed(0)
    x_train, y_train, x_test, y_test = nn.mnist()
    model = make_model(default_device())  # trained briefly on the CPU, then moved
    opt = nn.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()

    @TinyJit
    def step(x: Tensor, y: Tensor) -> Tensor:
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    for i in range(0, 64 * 60, 64):
        step(Tensor(x_train[i:i + 64]), Tensor(y_train[i:i + 64].astype(np.int64)))
    model.to(DEV).eval()
    digits, labels = x_test[:64], y_test[:64]
    export(model, [digits], tmp_path)
    page = run_page(tmp_path)
    logits = np.float32(page["outputs"][0]).reshape(64, 10)
    ours = model(Tensor(digits, device=DEV)).numpy()
    np.testing.assert_allclose(logits, ours, rtol=1e-4, atol=1e-4)
    assert (logits.argmax(1) == labels).mean() >= 0.85  # real test digits, after 60 steps of training


def test_export_refuses_what_browsers_lack(tmp_path: Path) -> None:
    from tg.webgpu import export

    if "shader-int64" not in get_device(DEV).gpu.features:
        pytest.fail("this test needs an adapter with int64 to build the kernel it refuses")
    with pytest.raises(ValueError, match="int64"):
        export(lambda x: x.argmax(1), [np.zeros((2, 3), np.float32)], tmp_path)


@pytest.mark.parametrize("name", ["arith", "max", "where", "divide", "exp", "log", "sin", "sqrt"])
def test_large_kernels_keep_the_semantics(name: str) -> None:
    # 2^21 elements: past the size where each work-item runs several outer iterations. No subnormals: WGSL lets
    # an implementation flush them to zero, and NVIDIA's Vulkan driver does (tg's other devices keep them)
    rng = np.random.default_rng(11)
    special = np.float32([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.5, 1e-30, 3e38, -7.0, 0.1, 2.0])
    n = 1 << 21
    x = np.where(rng.random(n) < 0.3, rng.choice(special, n), rng.standard_normal(n) * 10).astype(np.float32)
    y = np.where(rng.random(n) < 0.3, rng.choice(special, n), rng.standard_normal(n) * 10).astype(np.float32)
    fns = {"arith": lambda a, b: (a * b + a) - a * 0 - (b - b),
           "max": lambda a, b: a.maximum(b).relu() + a.clamp(-1, 1),
           "where": lambda a, b: (a < b).if_else(a, b * 3),
           "divide": lambda a, b: a / b + 1 / a,
           "exp": lambda a, b: a.exp(), "log": lambda a, b: b.abs().log(), "sin": lambda a, b: a.sin(),
           "sqrt": lambda a, b: b.abs().sqrt()}
    fn = fns[name]
    got = fn(Tensor(x, device=DEV), Tensor(y, device=DEV)).numpy()
    want = fn(Tensor(x, device="numpy"), Tensor(y, device="numpy")).numpy()
    # results in the subnormal range may come back as zero of the same sign: WGSL lets an implementation flush
    # them, and NVIDIA's Vulkan driver does (3e38 stays in the inputs: its reciprocal is one such result)
    flushed = (np.abs(want) < np.finfo(np.float32).tiny) & (got == 0) & (np.signbit(got) == np.signbit(want))
    want = np.where(flushed, got, want)
    if name in ("exp", "log", "sin", "sqrt"):
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want)  # NaN where NaN, the sign of zero, every bit


def test_empty_tensors_of_eight_byte_and_vec4_elements_bind() -> None:
    # a binding must hold one element of its array: an empty int64 input (found by the fuzzer) and vec4 lanes
    dev = get_device(DEV)
    if "shader-int64" in dev.gpu.features:
        assert Tensor(np.zeros(0, np.int64), device=DEV).sum().item() == 0
    empty = Tensor(np.zeros((0, 4), np.float32), device=DEV)
    assert (empty * 2 + 1).numpy().shape == (0, 4) and empty.sum().item() == 0.0
