"""The device plugin registry: discovery through entry points, failures, selection, the CLI."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from tg.core import DeviceError, Tensor, TgPluginWarning
from tg.core.device import Registry


def _fake_dist(root: Path, name: str, entry: str, module_source: str) -> None:
    """A real installed distribution on sys.path: a dist-info with a tg.devices entry point, and its module."""
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[tg.devices]\n{entry} = {name}_mod\n")
    (root / f"{name}_mod.py").write_text(textwrap.dedent(module_source))


GOOD_PLUGIN = """
from tg.core import DeviceSpec, hookimpl
from tg.core.numpy_device import NumpyDevice

@hookimpl
def tg_devices():
    return [DeviceSpec("{device}", NumpyDevice, priority={priority})]
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("TG_DEVICE", raising=False)
    monkeypatch.delenv("TG_PLUGINS", raising=False)
    return tmp_path


def test_a_broken_plugin_warns_once_and_the_others_keep_working(site: Path) -> None:
    _fake_dist(site, "broken_plugin", "broken", "raise ImportError('libfoo.so not found')\n")
    reg = Registry()
    with pytest.warns(TgPluginWarning, match=r"'broken'.*libfoo.so not found.*TG_PLUGINS=no:broken") as record:
        reg.load()
        reg.load()
    assert len([w for w in record if issubclass(w.category, TgPluginWarning)]) == 1
    assert reg.plugins["broken"].error is not None
    assert reg.open("numpy") is not None


def test_a_plugin_whose_hook_raises_is_reported(site: Path) -> None:
    _fake_dist(site, "hook_fails", "hookfails", """
        from tg.core import hookimpl
        @hookimpl
        def tg_devices():
            raise RuntimeError("no driver")
    """)
    reg = Registry()
    with pytest.warns(TgPluginWarning, match="no driver"):
        reg.load()
    assert "numpy" in reg.names()


def test_a_device_that_fails_to_open_is_skipped_for_the_default(site: Path) -> None:
    _fake_dist(site, "gpu_plugin", "fakegpu", """
        from tg.core import DeviceSpec, hookimpl
        def _open(name):
            raise RuntimeError("no GPU found; install the driver")
        @hookimpl
        def tg_devices():
            return [DeviceSpec("fakegpu", _open, priority=300)]
    """)
    reg = Registry()
    with pytest.warns(TgPluginWarning, match="no GPU found"):
        assert reg.default != "fakegpu"
    with pytest.raises(DeviceError, match="no GPU found"):
        reg.open("fakegpu")


def test_tg_device_that_cannot_open_fails_loudly(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dist(site, "gpu_plugin", "fakegpu", """
        from tg.core import DeviceSpec, hookimpl
        def _open(name):
            raise RuntimeError("no GPU found")
        @hookimpl
        def tg_devices():
            return [DeviceSpec("fakegpu", _open, priority=300)]
    """)
    monkeypatch.setenv("TG_DEVICE", "fakegpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DeviceError, match="no GPU found"):
            _ = Registry().default


def test_the_highest_priority_device_is_the_default(site: Path) -> None:
    _fake_dist(site, "fast_plugin", "fast", GOOD_PLUGIN.format(device="fastcpu", priority=200))
    reg = Registry()
    assert reg.default == "fastcpu"


def test_tg_device_picks_the_default(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dist(site, "fast_plugin", "fast", GOOD_PLUGIN.format(device="fastcpu", priority=200))
    monkeypatch.setenv("TG_DEVICE", "numpy")
    assert Registry().default == "numpy"


def test_unknown_device_lists_the_available_ones(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DeviceError, match=r"unknown device 'nosuch'.*registered devices: .*numpy"):
        Registry().open("nosuch")
    with pytest.raises(DeviceError, match="unknown device 'nosuch'"):
        Tensor([1.0], device="nosuch")


def test_duplicate_device_names_name_both_plugins(site: Path) -> None:
    _fake_dist(site, "first_plugin", "first", GOOD_PLUGIN.format(device="twin", priority=10))
    _fake_dist(site, "second_plugin", "second", GOOD_PLUGIN.format(device="twin", priority=10))
    reg = Registry()
    with pytest.warns(TgPluginWarning, match=r"device .twin., which plugin .(first|second). registered first"):
        reg.load()
    assert reg.specs["twin"][1] in ("first", "second") and "numpy" in reg.names()
    assert sum(p.error is not None for p in reg.plugins.values()) == 1


def test_plugins_can_be_denied_and_allowed(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dist(site, "broken_plugin", "broken", "raise ImportError('boom')\n")
    _fake_dist(site, "fast_plugin", "fast", GOOD_PLUGIN.format(device="fastcpu", priority=200))
    monkeypatch.setenv("TG_PLUGINS", "no:broken")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg = Registry()
        reg.load()
    assert "broken" not in reg.plugins and "fastcpu" in reg.names()
    monkeypatch.setenv("TG_PLUGINS", "numpy")  # allow-list: only these plugins load
    reg = Registry()
    reg.load()
    assert reg.names() == ["numpy"]


def test_import_is_cheap_and_discovers_nothing() -> None:
    code = ("import sys, tg.core; from tg.core.device import registry; "
            "print(registry._loaded, sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pyopencl', 'llvmlite', 'wgpu', 'tg_demo_device', 'tg') and m.count('.') < 2))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("False") and "pyopencl" not in out and "tg_demo_device" not in out


def test_the_tg_namespace_has_no_init() -> None:
    import tg

    assert getattr(tg, "__file__", None) is None


def test_cli_reports_plugins_devices_and_smoke_tests() -> None:
    out = subprocess.run([sys.executable, "-m", "tg.core", "--json"], capture_output=True, text=True)
    info = json.loads(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    numpy_entry = next(d for d in info["devices"] if d["name"] == "numpy")
    assert numpy_entry["status"] == "PASS"
    assert any(p["name"] == "numpy" and p["distribution"] == "tg-core" for p in info["plugins"])
    assert info["default"]
    text = subprocess.run([sys.executable, "-m", "tg.core"], capture_output=True, text=True).stdout
    assert "default device:" in text and "PASS" in text


def test_tensors_move_between_devices(device: str) -> None:
    x = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3), device=device, requires_grad=True)
    y = x.to("numpy") * 2
    assert y.device == "numpy"
    y.sum().backward()
    assert x.grad.device == device
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3), 2.0))
    if device != "numpy":
        with pytest.raises(RuntimeError, match=r"add: tensors are on different devices.*\.to\(device\)"):
            _ = x + Tensor([1.0], device="numpy")


@pytest.mark.parametrize("body", [
    "@hookimpl\ndef tg_devices():\n    return [42]\n",
    "@hookimpl\ndef tg_devices():\n    return None\n",
    "@hookimpl\ndef tg_devices():\n    raise SystemExit(3)\n",
    "import sys\nsys.exit(2)\n",
    "@hookimpl\ndef tg_devices():\n    return [DeviceSpec('numpy', NumpyDevice)]\n",
    "@hookimpl\ndef tg_devices():\n    return [DeviceSpec('a:b', NumpyDevice)]\n",
], ids=["not a spec", "None", "SystemExit in hook", "sys.exit at import", "takes numpy", "bad name"])
def test_a_bad_plugin_is_skipped_and_numpy_keeps_working(site: Path, body: str) -> None:
    _fake_dist(site, "bad_plugin", "bad", "from tg.core import DeviceSpec, hookimpl\n"
                                          "from tg.core.numpy_device import NumpyDevice\n" + body)
    reg = Registry()
    with pytest.warns(TgPluginWarning, match="'bad'"):
        reg.load()
    assert reg.plugins["bad"].error is not None and reg.specs["numpy"][1] == "numpy"
    assert reg.open("numpy") is not None


WRONG_DEVICE = '''
import numpy as np
from tg.core import DeviceSpec, hookimpl
from tg.core.numpy_device import NumpyDevice

class Wrong(NumpyDevice):
    def execute(self, kernel, buffers):
        super().execute(kernel, buffers)
        buffers[0].handle[:] = 0  # every result zero: it opens, then lies

@hookimpl
def tg_devices():
    return [DeviceSpec("liar", Wrong, priority=500)]
'''


def test_a_device_that_fails_its_self_check_is_not_the_default(site: Path) -> None:
    """Checked in a fresh process: the global registry is the one that chooses the default."""
    _fake_dist(site, "liar_plugin", "liar", WRONG_DEVICE)
    code = ("import warnings; warnings.simplefilter('always')\n"
            "from tg.core import registry, Tensor\n"
            "print(registry.default, (Tensor([1.0, 2.0]) * 3).tolist())\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(site), "TG_PLUGINS": "liar,numpy"}
    env.pop("TG_DEVICE", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "numpy" and "[3.0, 6.0]" in out.stdout
    assert "self-check failed" in out.stderr


def test_threads_that_touch_tg_first_share_one_registry() -> None:
    """Plugin loading under a lock: eight threads open devices at once in a fresh process, 20 times."""
    code = textwrap.dedent("""
        import threading
        from tg.core import Tensor, registry
        errors, results = [], []
        def work():
            try:
                results.append((Tensor([1.0, 2.0]) * 2).sum().item())
            except Exception as e:
                errors.append(repr(e))
        threads = [threading.Thread(target=work) for _ in range(8)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print(len(errors), sorted(set(results)), errors[:1])
    """)
    for _ in range(20):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("0 [6.0]"), out.stdout


def test_a_plugin_opener_imports_the_device_late_and_names_the_missing_driver() -> None:
    """`device.opener`: the backends' open hook imports their device module on first use; a driver that is not
    installed (here a module that does not exist) raises with the pip command that fixes it."""
    from tg.core.device import opener

    with pytest.raises(RuntimeError, match="pip install not-a-driver"):
        opener("tg.core.no_such_device_module", "NoDevice", "not-a-driver")("nodev")
    numpy_device = opener("tg.core.numpy_device", "NumpyDevice", "numpy")("numpy:7")
    assert numpy_device.name == "numpy:7"
