"""A damaged, foreign or tampered cache never crashes a process or changes a result (each case in a fresh
process, so that nothing comes from memory)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import warnings, numpy as np
from tg.core import Tensor
warnings.simplefilter("always")
rng = np.random.default_rng(0)
a, b = rng.standard_normal((64, 48)).astype(np.float32), rng.standard_normal((48, 40)).astype(np.float32)
out = (Tensor(a, device="llvm") @ Tensor(b, device="llvm")).relu().sum(1).numpy()
print(repr(out.tolist()))
"""


def run(cache: Path, search: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "TG_CACHE_DIR": str(cache), "TG_SEARCH": "1" if search else "0"}
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("damage", ["truncate", "empty", "random", "flip", "swap", "old format"])
def test_damaged_kernel_objects_are_rebuilt(tmp_path: Path, damage: str) -> None:
    first = run(tmp_path)
    assert first.returncode == 0, first.stderr
    objects = sorted((tmp_path / "llvm").glob("*.o"))
    assert objects
    rng = __import__("random").Random(0)
    for i, path in enumerate(objects):
        data = path.read_bytes()
        if damage == "truncate":
            data = data[: len(data) // 2]
        elif damage == "empty":
            data = b""
        elif damage == "random":
            data = bytes(rng.randrange(256) for _ in range(len(data)))
        elif damage == "flip":
            data = bytearray(data)
            for _ in range(4):
                data[rng.randrange(len(data))] ^= 0xFF
            data = bytes(data)
        elif damage == "swap":  # another kernel's (valid) entry under this name
            data = objects[(i + 1) % len(objects)].read_bytes()
        else:  # what older tg versions wrote: bare object code
            data = data.partition(b"\n")[2]
        path.write_bytes(data)
    again = run(tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    assert "TgCacheWarning" in again.stderr


def test_tampered_search_choices_are_ignored(tmp_path: Path) -> None:
    first = run(tmp_path, search=True)
    assert first.returncode == 0, first.stderr
    path = tmp_path / "search" / "search.json"
    payload = json.loads(path.read_bytes().partition(b"\n")[2])
    assert payload
    for key in payload:  # an unroll of 3 on dims of 64 or 40 would leave rows unwritten; -2 is nonsense
        payload[key] = {"upcasts": {"0": 3, "1": -2}, "order": None, "flatten": False, "block": None, "local": None}
    from tg.core import cache

    cache.write(path, "search", json.dumps(payload).encode())
    again = run(tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout


def test_a_cache_others_can_write_is_not_used(tmp_path: Path) -> None:
    (tmp_path / "llvm").mkdir(mode=0o777)
    os.chmod(tmp_path / "llvm", 0o777)
    out = run(tmp_path)
    assert out.returncode == 0, out.stderr
    assert "writable by other users" in out.stderr
    assert not list((tmp_path / "llvm").glob("*.o"))
