"""Optional search over lowering options, with its choices cached on disk.

The heuristics in `opt.choose_opts` pick register tiles and loop orders without running anything. With
TG_SEARCH=1 a compiled device times a handful of alternatives for each new contraction on its real
buffers and keeps the fastest; the choice is stored in `search.json` under the cache directory
(TG_CACHE_DIR, else ~/.cache/tg), keyed by the kernel's structure, its shape and the device, and
every later process on that device uses it without timing again (whether or not TG_SEARCH is set).
TG_DEBUG=3 shows the choice and the timings.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from . import cache, config, stats
from .kernel import Kernel
from .opt import Opts, choose_opts, choose_upcasts, gpu_local

TILE_LIMITS = [(32, 8), (16, 8), (16, 4), (8, 8), (32, 4), (16, 16), (8, 4), (4, 8), (2, 16), (4, 16), (4, 4), (1, 1)]
_cache: Optional[dict[str, Any]] = None


def enabled() -> bool:
    return config.search()


def cache_path() -> Optional[Path]:
    folder = cache.directory("search")
    return folder / "search.json" if folder is not None else None


def _load() -> dict[str, Any]:
    global _cache
    if _cache is None:
        path = cache_path()
        data = cache.read(path, "search") if path is not None else None
        try:
            loaded = json.loads(data) if data is not None else {}
        except ValueError:
            loaded = {}
        _cache = loaded if isinstance(loaded, dict) else {}
    return _cache


def _store(key: str, opts: Opts) -> None:
    choices = _load()
    choices[key] = encode(opts)
    path = cache_path()
    if path is None:
        return
    with contextlib.suppress(ValueError, TypeError):  # merge with what other processes wrote meanwhile
        theirs = cache.read(path, "search")
        choices = {**(json.loads(theirs) if theirs is not None else {}), **choices}
    cache.write(path, "search", json.dumps(choices).encode())


def encode(opts: Opts) -> dict[str, Any]:
    return {"upcasts": {str(d): u for d, u in opts.upcasts.items()}, "order": opts.order, "flatten": opts.flatten,
            "block": list(opts.block) if opts.block else None, "local": list(opts.local) if opts.local else None}


def decode(data: dict[str, Any]) -> Opts:
    block, local = data.get("block"), data.get("local")
    return Opts({int(d): u for d, u in data["upcasts"].items()}, data.get("order"), data.get("flatten", False),
                tuple(block) if block else None, tuple(local) if local else None)


def _valid(kernel: Kernel, data: Any, gpu: bool) -> Optional[Opts]:
    """The cached choice if it is one the lowering can use for this kernel (every output row written), else None."""
    try:
        opts = decode(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    full = kernel.full_shape
    axes = set(kernel.reduce.arg) if kernel.reduce is not None else set()
    out_dims = [d for d, n in enumerate(full) if n > 1 and d not in axes]
    for d, u in opts.upcasts.items():
        if not (isinstance(d, int) and isinstance(u, int)) or d not in out_dims or u < 1 or full[d] % u:
            return None
    if opts.order is not None and sorted(opts.order) != out_dims:
        return None
    if opts.block is not None and (len(opts.block) != 2 or not gpu or min(opts.block) < 1):
        return None
    if opts.local is not None and (not gpu or opts != gpu_local(kernel, ",".join(map(str, (*opts.local,
                                                                                          *_tile(opts)))))):
        return None
    return opts


def _tile(opts: Opts) -> tuple[int, ...]:
    return tuple(opts.upcasts.get(d, 1) for d in sorted(opts.upcasts))


def key_of(kernel: Kernel, device_key: str) -> str:
    text = f"{kernel.describe()}|{kernel.full_shape}|{device_key}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def candidates(kernel: Kernel, gpu: bool, tile: Optional[tuple[int, int]] = None) -> list[Opts]:
    """The heuristic choice first, then other register tiles (and, on CPUs, the natural loop order)."""
    base = choose_opts(kernel, gpu, tile)
    out = [base]
    if kernel.reduce is None:
        return out
    if gpu:
        out += [o for o in local_candidates(kernel) if o not in out]
    for limits in TILE_LIMITS:
        upcasts = choose_upcasts(kernel, gpu, limits)
        for order in ([None] if gpu else [None, base.order]):
            o = Opts(upcasts, order, base.flatten, base.block if upcasts == base.upcasts else None)
            if o not in out:
                out.append(o)
    return out


LOCAL_SPECS = ["16,16,8,8,4", "16,8,16,8,8", "8,16,16,8,8", "16,16,16,8,8", "16,16,16,4,4"]


def local_candidates(kernel: Kernel) -> list[Opts]:
    """Local-memory stagings (opt.gpu_local) that fit the kernel, for GPUs."""
    return [o for o in (gpu_local(kernel, spec) for spec in LOCAL_SPECS) if o is not None]


def choose(kernel: Kernel, gpu: bool, device_key: str, measure: Optional[Callable[[Opts], float]],
           tile: Optional[tuple[int, int]] = None) -> Opts:
    """Cached choice, else (TG_SEARCH and a way to measure) the fastest candidate, else the heuristic."""
    key = key_of(kernel, device_key)
    cached = _load().get(key)
    if cached is not None:
        opts = _valid(kernel, cached, gpu)
        if opts is not None:
            return opts
        _load().pop(key, None)
        stats.log(f"tg: ignoring a cached search choice that does not fit kernel {kernel.name}: {cached!r}")
    heuristic = choose_opts(kernel, gpu, tile)
    if not enabled() or measure is None or kernel.reduce is None:
        return heuristic
    timings: list[tuple[float, int, Opts]] = []
    for i, opts in enumerate(candidates(kernel, gpu, tile)):
        try:
            timings.append((measure(opts), i, opts))
        except Exception:
            continue
    if not timings:
        return heuristic
    best = min(timings)[2]
    if stats.debug_level() >= 3:
        listed = ", ".join(f"{t * 1e6:.0f} us {sorted(o.upcasts.items())}" for t, _, o in sorted(timings))
        stats.log(f"tg: search {kernel.name}: {listed}")
    _store(key, best)
    return best


def time_best_of(run: Callable[[], None], sync: Callable[[], None], repeat: int = 3) -> float:
    """The fastest of `repeat` timed runs after one warm-up."""
    run()
    sync()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        sync()
        best = min(best, time.perf_counter() - start)
    return best
