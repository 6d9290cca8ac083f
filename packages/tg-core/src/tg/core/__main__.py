"""`python -m tg.core`: installed device plugins, their devices, the default, and a smoke test on each."""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any, Optional

import numpy as np

from .device import registry


def smoke_test(device: str) -> Optional[str]:
    """Run a small forward and backward pass on `device`; None if it matches NumPy, else what went wrong."""
    from .tensor import Tensor

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 8)).astype(np.float32), rng.standard_normal((8, 3)).astype(np.float32)
    try:
        ta = Tensor(a, device=device, requires_grad=True)
        out = ((ta @ Tensor(b, device=device)).relu() + 1).sum(0)
        out.sum().backward()
        expected = (np.maximum(a @ b, 0) + 1).sum(0)
        grad = ((a @ b) > 0).astype(np.float32) @ b.T
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-4)
        assert ta.grad is not None, "backward produced no gradient"
        np.testing.assert_allclose(ta.grad.numpy(), grad, rtol=1e-4, atol=1e-4)
    except Exception as e:  # the report must show every device, whatever breaks
        return f"{type(e).__name__}: {e}"
    return None


def report() -> dict[str, Any]:
    """Everything `python -m tg.core` shows, as a dict."""
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        registry.load()
        devices = []
        for family in registry.names():
            spec, plugin = registry.specs[family]
            try:
                names = spec.enumerate() if spec.enumerate else [family]
            except Exception as e:
                devices.append({"name": family, "plugin": plugin, "status": "FAIL", "error": f"{e}"})
                continue
            for name in names:
                entry: dict[str, Any] = {"name": name, "plugin": plugin, "priority": spec.priority,
                                         "description": spec.description}
                if registry.try_open(name) is None:
                    entry |= {"status": "FAIL", "error": registry._failed.get(name, "could not open")}
                else:
                    error = smoke_test(name)
                    entry |= {"status": "PASS" if error is None else "FAIL"} | ({"error": error} if error else {})
                devices.append(entry)
        try:
            default: Optional[str] = registry.default
        except Exception as e:
            default = None
            devices.append({"name": "TG_DEVICE", "status": "FAIL", "error": str(e)})
    plugins = [{"name": p.name, "distribution": p.dist, "version": p.version, "devices": p.devices,
                "error": p.error} for p in registry.plugins.values()]
    return {"plugins": plugins, "devices": devices, "default": default}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tg.core", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    info = report()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print("plugins:")
        for p in info["plugins"]:
            state = f"ERROR {p['error']}" if p["error"] else f"devices: {', '.join(p['devices'])}"
            print(f"  {p['name']:<10} {p['distribution']} {p['version']:<8} {state}")
        print("devices:")
        for d in info["devices"]:
            extra = f"  {d['error']}" if d.get("error") else f"  {d.get('description', '')}"
            print(f"  {d['name']:<10} {d['status']:<5}{extra}")
        print(f"default device: {info['default']}")
    ok = all(d["status"] == "PASS" for d in info["devices"]) and info["default"] is not None
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
