"""Every TG_* environment variable, read in this one place.

Each is read when it is used (not at import), so a test or a user can change it while tg runs. A value that
does not parse raises a ValueError naming the variable and what it accepts, instead of being ignored.

| variable | meaning | default |
|---|---|---|
| TG_DEVICE | the default device | the highest-priority device that opens and passes its self-check |
| TG_PLUGINS | `no:NAME` turns a plugin off, plain names load only those (comma-separated) | all |
| TG_DEBUG | 1 schedules, 2 kernel timings, 3 kernel ASTs and choices, 4 generated source | 0 |
| TG_CHECK_IR | 1: check every program a compiled device builds (tg.core.check); implied by TG_DEBUG | 0 |
| TG_CACHE_DIR | the on-disk cache (compiled kernels, binaries, search choices) | ~/.cache/tg |
| TG_SEARCH | 1: time lowering alternatives of new contractions and cache the fastest | 0 |
| TG_ALLOC_CACHE_MB | freed device memory kept for reuse, per device | 256 |
| TG_SCRATCH_MB | the numpy device's reusable temporaries | 128 |
| TG_PROGRAM_CACHE | compiled programs a device keeps in memory (least recently used dropped) | 4096 |
| TG_LLVM_THREADS | threads the llvm device splits a kernel over | the CPU count |
| TG_COMPILE_WORKERS | processes compiling a schedule's new kernels side by side (below 2: none) | CPUs, at most 8 |
| TG_LOCAL_SIZE | OpenCL work-group size on GPUs | 128 |
| TG_WEBGPU_WORKGROUP | work-items per WebGPU work-group (kernels that share local memory choose their own) | 256 |
| TG_DIST_TIMEOUT | seconds a tg.distributed collective waits for the other ranks before it raises | 300 |
| TG_RING_ALLREDUCE_BYTES | from this size in bytes, tensors spread over 3+ devices all-reduce around a ring | 262144 |
| TG_CL_NARROW | 0: keep 64-bit index arithmetic on OpenCL GPUs | 1 |
| TG_TILE | the register tile's largest unrolls, `j,i` | heuristics |
| TG_GPU_BLOCK | GPU thread patches, `rows,cols` | none |
| TG_GPU_LOCAL | local-memory staging `rows,cols,chunk,ui,uj`, or 0 | heuristics |
| TG_GPU_GROUP | work-items sharing each output of a long GPU reduction (a power of two), or 0 | heuristics |
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional


def _text(name: str) -> str:
    return os.environ.get(name, "").strip()


def _int(name: str, default: int, least: int = 0) -> int:
    raw = _text(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if value < least:
        raise ValueError(f"{name}={raw!r} must be at least {least}")
    return value


def _number(name: str, default: float) -> float:
    raw = _text(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r} must not be negative")
    return value


def _ints(name: str, count: int) -> Optional[tuple[int, ...]]:
    raw = _text(name)
    if not raw:
        return None
    try:
        values = tuple(int(v) for v in raw.split(","))
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected {count} comma-separated integers") from None
    if len(values) != count or any(v < 0 for v in values):
        raise ValueError(f"{name}={raw!r}: expected {count} comma-separated integers >= 0")
    return values


def device() -> Optional[str]:
    return _text("TG_DEVICE") or None


def plugins() -> tuple[Optional[set[str]], set[str]]:
    """(allowed plugin names or None for all, denied names) from TG_PLUGINS."""
    allow: set[str] = set()
    deny: set[str] = set()
    for item in filter(None, (s.strip() for s in _text("TG_PLUGINS").split(","))):
        (deny.add(item[3:]) if item.startswith("no:") else allow.add(item))
    return (allow or None), deny


def debug() -> int:
    return _int("TG_DEBUG", 0)


def cache_root() -> Path:
    return Path(_text("TG_CACHE_DIR") or Path.home() / ".cache" / "tg")


def check_ir() -> bool:
    """TG_CHECK_IR=1 (or TG_DEBUG>=1): check every lowered program before it runs (tg.core.check)."""
    return _int("TG_CHECK_IR", 0) > 0 or debug() >= 1


def search() -> bool:
    return _int("TG_SEARCH", 0) > 0


def alloc_cache_bytes() -> int:
    return int(_number("TG_ALLOC_CACHE_MB", 256) * (1 << 20))


def program_cache() -> int:
    """TG_PROGRAM_CACHE: compiled programs a device keeps in memory (least recently used dropped first)."""
    return _int("TG_PROGRAM_CACHE", 4096, least=1)


def scratch_bytes() -> int:
    return int(_number("TG_SCRATCH_MB", 128) * (1 << 20))


def llvm_threads() -> int:
    return _int("TG_LLVM_THREADS", os.cpu_count() or 1, least=1)


def compile_workers() -> int:
    """TG_COMPILE_WORKERS: worker processes that compile a schedule's new kernels side by side (default: one per
    core, at most 8: each holds its own LLVM, ~100 MB, and a model's first call rarely has work for more; below 2,
    kernels compile in the calling process)."""
    return _int("TG_COMPILE_WORKERS", min(os.cpu_count() or 1, 8), least=0)


def llvm_spin_seconds() -> float:
    """TG_LLVM_SPIN_MS: how long an idle llvm worker thread waits for the next kernel awake (spinning) before it
    sleeps; 0 makes workers sleep at once (they then join only long kernels)."""
    return max(0.0, _number("TG_LLVM_SPIN_MS", 5)) / 1000


def local_size() -> int:
    return _int("TG_LOCAL_SIZE", 128, least=1)


def webgpu_workgroup() -> int:
    return _int("TG_WEBGPU_WORKGROUP", 256, least=1)


def dist_timeout() -> float:
    return _number("TG_DIST_TIMEOUT", 300.0)


def ring_allreduce_bytes() -> int:
    return _int("TG_RING_ALLREDUCE_BYTES", 1 << 18, least=0)


def cl_narrow() -> bool:
    return _int("TG_CL_NARROW", 1) > 0


def tile() -> Optional[tuple[int, ...]]:
    return _ints("TG_TILE", 2)


def gpu_block() -> Optional[tuple[int, ...]]:
    return _ints("TG_GPU_BLOCK", 2)


def gpu_group() -> Optional[int]:
    """TG_GPU_GROUP as given (None when unset: opt.group_size decides; 0 turns group reductions off)."""
    value = _text("TG_GPU_GROUP")
    if not value:
        return None
    group = _int("TG_GPU_GROUP", 0)
    if group and (group & (group - 1) or group < 2):
        raise ValueError(f"TG_GPU_GROUP={value!r}: expected 0 or a power of two of at least 2")
    return group


def gpu_local() -> str:
    """TG_GPU_LOCAL as given ("" when unset; "0" turns staging off); opt.gpu_local parses it."""
    return _text("TG_GPU_LOCAL")
