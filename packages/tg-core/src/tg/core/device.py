"""The device contract and the plugin registry.

A device plugin is a module with a `tg_devices` hook implementation returning `DeviceSpec`s; it is
found through the entry-point group `tg.devices`. A device is an allocator plus `execute(kernel,
buffers)`; compiled backends build that from a renderer and a compiler, the NumPy device interprets
the kernel AST directly. Plugins are loaded one by one on first device use: a broken one is reported
once and the others keep working.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import threading
import warnings
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np
import pluggy

from . import config, stats
from . import dtype as dt
from .dtype import DType
from .kernel import Kernel

hookspec = pluggy.HookspecMarker("tg")
hookimpl = pluggy.HookimplMarker("tg")
ENTRY_POINT_GROUP = "tg.devices"

# default-device preference: GPUs first, then compiled CPU devices, then the NumPy device
PRIORITY_GPU, PRIORITY_COMPILED_CPU, PRIORITY_NUMPY = 300, 200, 100


class TgPluginWarning(UserWarning):
    """A device plugin failed to load or to open its device; the other devices keep working."""


class DeviceError(RuntimeError):
    """A device cannot be found or opened."""


# ---- the contract a backend implements ------------------------------------------------------------
class Allocator(ABC):
    """Device memory: raw allocations of a byte size, copies to and from host NumPy arrays.

    Freed allocations are kept in a cache keyed by size and handed out again, so that a training loop that
    allocates the same sizes every step stops calling the driver after the first one. The cache holds at most
    `cache_limit` bytes (TG_ALLOC_CACHE_MB, 256 by default): past that the allocations freed longest ago go back
    to the driver, and an allocation the driver refuses is retried once after emptying the cache. Safe to use
    from several threads.
    """

    def __init__(self) -> None:
        self._cache: OrderedDict[int, list[Any]] = OrderedDict()  # size -> free handles, least recently freed first
        self._cached_bytes = 0
        self.cache_limit = config.alloc_cache_bytes()
        self._lock = threading.Lock()

    @abstractmethod
    def _alloc(self, nbytes: int) -> Any: ...

    def _free(self, handle: Any, nbytes: int) -> None:  # noqa: B027 - optional hook
        """Release memory to the driver (default: let garbage collection do it)."""

    @abstractmethod
    def copyin(self, handle: Any, src: np.ndarray) -> None:
        """Copy a contiguous host array into device memory."""

    @abstractmethod
    def copyout(self, dst: np.ndarray, handle: Any) -> None:
        """Copy device memory into a contiguous host array (waits for queued work)."""

    def host_view(self, handle: Any) -> Optional[np.ndarray]:
        """The allocation as a writable uint8 NumPy array, where device memory is host memory (CPU devices): data
        can then be read and written in place, with no copy (tg.distributed reduces it there). None otherwise."""
        return None

    def copy(self, dst: Any, src: Any, nbytes: int) -> None:
        """Copy one buffer into another on the device (by default through host memory; override it)."""
        staging = np.empty(nbytes, np.uint8)
        self.copyout(staging, src)
        self.copyin(dst, staging)

    def alloc(self, nbytes: int) -> Any:
        with self._lock:
            handles = self._cache.get(nbytes)
            if handles:
                self._cached_bytes -= nbytes
                handle = handles.pop()
                if not handles:
                    del self._cache[nbytes]
                return handle
        stats.allocated(nbytes)
        try:
            return self._alloc(nbytes)
        except Exception:
            if not self._cached_bytes:
                raise
            self.clear_cache()  # out of memory, perhaps only because of what the cache holds: once more
            return self._alloc(nbytes)

    def free(self, handle: Any, nbytes: int) -> None:
        evicted: list[tuple[Any, int]] = []
        with self._lock:
            self._cache.setdefault(nbytes, []).append(handle)
            self._cache.move_to_end(nbytes)
            self._cached_bytes += nbytes
            while self._cached_bytes > self.cache_limit and self._cache:
                size, handles = next(iter(self._cache.items()))
                evicted.append((handles.pop(0), size))
                self._cached_bytes -= size
                if not handles:
                    del self._cache[size]
        for h, size in evicted:
            self._free(h, size)
            stats.freed(size)

    def clear_cache(self) -> None:
        """Give every cached allocation back to the driver (for example after an out-of-memory error)."""
        with self._lock:
            entries, self._cache, self._cached_bytes = list(self._cache.items()), OrderedDict(), 0
        for nbytes, handles in entries:
            for h in handles:
                self._free(h, nbytes)
                stats.freed(nbytes)


class Device(ABC):
    """A place that stores buffers and runs kernels. Subclass this in a device plugin.

    `name` is the full device name (`"opencl:1"`), `dtypes` the element types it supports.
    """

    dtypes: frozenset[DType] = frozenset()
    max_buffers: Optional[int] = None  # buffers one kernel may bind (output included); the scheduler splits to fit
    # CPU caches: a big contraction whose operand rows lie a multiple of 1 KiB apart reads that operand from a copy
    # with padded rows (the scheduler decides; rows that far apart share a few cache sets and evict each other)
    pad_aliased_rows: bool = False
    # register tiles vectorise their contiguous dim: a contraction whose output dim there is long but not a multiple
    # of 32 runs over it padded, through a zero-padded view (the scheduler decides; schedule._pad_ragged_contractions)
    pad_ragged_dims: bool = False
    # a window over padding (a convolution's input) read no more than 4 times per element is read through bounds on
    # sums of dims, with compares at each load, instead of from a padded copy (schedule._copy_padded_windows); a
    # device whose loads are whole arrays (the NumPy device: a padded copy's windows are a view of it) says False
    reads_windows_through_padding: bool = True
    # a huge reduce into a few outputs is split into up to this many partial results computed side by side: the
    # threads of a CPU; a GPU wants enough work-groups to fill it (the scheduler decides)
    reduce_parts: int = 32
    # a reduce down columns into too few outputs to fill the device is split into up to this many strips of rows
    # (0: never; GPUs ask for it, see schedule._split_reduces)
    column_parts: int = 0

    def __init__(self, name: str, allocator: Allocator):
        self.name, self.allocator = name, allocator

    @abstractmethod
    def execute(self, kernel: Kernel, buffers: Sequence[Buffer]) -> None:
        """Queue `kernel` with `buffers[0]` as output and the rest as its inputs, in AST order."""

    def prepare(self, kernels: Sequence[Kernel]) -> None:  # noqa: B027 - interpreting devices build nothing
        """Called with a schedule's kernels on this device before they run: a compiled device may build their
        programs ahead, side by side."""

    def synchronize(self) -> None:  # noqa: B027 - synchronous devices have nothing to wait for
        """Wait until all queued work on this device has finished."""

    def flush(self) -> None:  # noqa: B027 - devices that start work as it is queued have nothing to hand over
        """Start the work queued so far without waiting for it (called after each realize and TinyJit replay):
        a device that records commands into batches submits its batch here."""

    def bind(self, kernel: Kernel) -> Callable[[Sequence[Buffer]], None]:
        """`kernel` ready to run again and again (a TinyJit replay calls this once per captured launch): a function
        of the buffers that queues it. Compiled devices resolve the program here, once."""
        return lambda buffers: self.execute(kernel, buffers)

    def render(self, kernel: Kernel) -> Optional[str]:
        """The source code a kernel compiles to, for TG_DEBUG=4; None where there is none."""
        return None

    def choices(self, kernel: Kernel) -> list[str]:
        """The optimisation choices made for a kernel, for TG_DEBUG=3 (none by default)."""
        return []

    def __repr__(self) -> str:
        return f"<Device {self.name}>"


class Buffer:
    """`size` elements of `dtype` in a device's memory; allocated on first use, cached when freed."""

    __slots__ = ("__weakref__", "_allocator", "_handle", "device", "dtype", "size")

    def __init__(self, device: str, size: int, dtype: DType):
        self.device, self.size, self.dtype = device, size, dtype
        self._handle: Any = None
        self._allocator: Optional[Allocator] = None

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def handle(self) -> Any:
        if self._handle is None:
            self._allocator = get_device(self.device).allocator
            self._handle = self._allocator.alloc(self.nbytes)
        return self._handle

    def copyin(self, data: np.ndarray) -> Buffer:
        get_device(self.device).allocator.copyin(self.handle, np.ascontiguousarray(data, self.dtype.np))
        return self

    def copy_from(self, other: Buffer) -> Buffer:
        """Make this buffer's contents those of `other` (same device, size and dtype), on the device."""
        if (other.device, other.size, other.dtype) != (self.device, self.size, self.dtype):
            raise ValueError(f"copy_from: {other!r} does not match {self!r}")
        if self.size:
            get_device(self.device).allocator.copy(self.handle, other.handle, self.nbytes)
        return self

    def host_view(self) -> Optional[np.ndarray]:
        """This buffer's memory as a writable NumPy array of its dtype, after the device's queued work, where the
        device keeps it in host memory (no copy); None on devices with memory of their own."""
        dev = get_device(self.device)
        raw = dev.allocator.host_view(self.handle) if self.size else None
        if raw is None:
            return None
        dev.synchronize()
        return raw[:self.nbytes].view(self.dtype.np)

    def numpy(self) -> np.ndarray:
        out = np.empty(self.size, self.dtype.np)
        if self.size:
            get_device(self.device).allocator.copyout(out, self.handle)
        return out

    def __del__(self) -> None:
        if self._handle is not None and self._allocator is not None:
            self._allocator.free(self._handle, self.nbytes)

    def __repr__(self) -> str:
        return f"<Buffer {self.device} {self.dtype.name}[{self.size}]>"


# ---- the plugin registry ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceSpec:
    """What a plugin's `tg_devices` hook returns for each device family it provides.

    `open(name)` returns the `Device` for a full name (`"opencl"` or `"opencl:1"`) or raises with a
    message that says how to fix it. `enumerate()` lists the full names present on this machine
    (default: just `name`). `priority` orders the default choice (see PRIORITY_*). `instances`: any index opens
    another, independent instance (`numpy:1`, `llvm:1`): host devices offer it, so that code spread over several
    devices (Tensor.shard) runs and is tested on one CPU.
    """

    name: str
    open: Callable[[str], Device]
    priority: int = PRIORITY_NUMPY
    description: str = ""
    enumerate: Optional[Callable[[], list[str]]] = None
    instances: bool = False


def opener(module: str, class_name: str, requirement: str) -> Callable[[str], Device]:
    """`DeviceSpec.open` for a plugin whose device class lives in `module` beside its driver's import: the module
    is imported when a device is first opened, so importing the plugin stays cheap, and a driver that is not
    installed gives an error that says which package to install (`requirement`, a pip name)."""

    def open_device(name: str) -> Device:
        try:
            device_class = getattr(importlib.import_module(module), class_name)
        except ImportError as e:
            raise RuntimeError(f"{requirement} is not importable ({e}); "
                               f"install it with pip install {requirement}") from e
        return device_class(name)

    return open_device


class DeviceHooks:
    """The hook specification a device plugin implements."""

    @hookspec
    def tg_devices(self) -> list[DeviceSpec]:  # type: ignore[empty-body]
        """Return the device families this plugin provides."""


@dataclass
class PluginInfo:
    """One plugin as `python -m tg.core` shows it."""

    name: str
    dist: str
    version: str
    devices: list[str] = field(default_factory=list)
    error: Optional[str] = None


def _plugin_filter() -> tuple[Optional[set[str]], set[str]]:
    """TG_PLUGINS: comma list; `no:NAME` denies a plugin, plain names allow only those."""
    return config.plugins()


# the plugins tg-core itself ships, as (name, module): the NumPy device, added by tg.core's __init__ (it imports
# this module, so this module cannot import it)
BUILTIN_PLUGINS: list[tuple[str, Any]] = []


class Registry:
    """Finds device plugins through entry points, opens devices on demand and picks the default."""

    def __init__(self) -> None:
        self.plugins: dict[str, PluginInfo] = {}
        self.specs: dict[str, tuple[DeviceSpec, str]] = {}
        self._devices: dict[str, Device] = {}
        self._failed: dict[str, str] = {}
        self._default: Optional[str] = None
        self._loaded = False
        # loading, opening and choosing the default happen once, whichever thread touches tg first
        self._lock = threading.RLock()
        # given by tg.core's __init__, which sits above this module: the check a device must pass to become the
        # default (it computes with tensors)
        self.self_check: Optional[Callable[[str], Optional[str]]] = None

    def load(self) -> None:
        """Import every allowed plugin, each on its own so one failure does not stop the others."""
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self._load()

    def _load(self) -> None:
        self.plugins, self.specs = {}, {}
        pm = pluggy.PluginManager("tg")
        pm.add_hookspecs(DeviceHooks)
        for name, module in BUILTIN_PLUGINS:  # the embedded default registers through the same hook
            self._add_plugin(pm, name, "tg-core", _version("tg-core"), module)
        allow, deny = _plugin_filter()
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else "?"
            version = ep.dist.version if ep.dist is not None else "?"
            if ep.name in deny or (allow is not None and ep.name not in allow) or ep.name in self.plugins:
                continue
            try:
                module = ep.load()
            except (Exception, SystemExit) as e:  # a plugin's import error (even sys.exit) must not break tg
                self._report(ep.name, dist, version, f"import of {ep.value!r} failed: {type(e).__name__}: {e}")
                continue
            self._add_plugin(pm, ep.name, dist, version, module)
        self._loaded = True

    def _add_plugin(self, pm: pluggy.PluginManager, name: str, dist: str, version: str, module: Any) -> None:
        info = PluginInfo(name, dist, version)
        try:
            pm.register(module, name=name)
            specs = module.tg_devices()
        except (Exception, SystemExit) as e:
            self._report(name, dist, version, f"its tg_devices hook failed: {type(e).__name__}: {e}")
            return
        problem = _check_specs(specs)
        if problem is None:
            taken = [s.name for s in specs if s.name in self.specs]
            if taken:
                problem = (f"it registers device {taken[0]!r}, which plugin {self.specs[taken[0]][1]!r} registered "
                           "first; uninstall one of them")
        if problem is not None:
            self._report(name, dist, version, problem)
            return
        for spec in specs:
            self.specs[spec.name] = (spec, name)
            info.devices.append(spec.name)
        self.plugins[name] = info

    def _report(self, name: str, dist: str, version: str, error: str) -> None:
        self.plugins[name] = PluginInfo(name, dist, version, error=error)
        warnings.warn(f"tg device plugin {name!r} ({dist} {version}) is disabled: {error}. Fix: reinstall it "
                      f"(pip install --force-reinstall {dist}) or turn it off with TG_PLUGINS=no:{name}.",
                      TgPluginWarning, stacklevel=3)

    def names(self) -> list[str]:
        """Every registered device family, highest priority first."""
        self.load()
        return sorted(self.specs, key=lambda n: -self.specs[n][0].priority)

    def available(self) -> list[str]:
        """Full names of the devices that open on this machine, highest priority first."""
        out: list[str] = []
        for family in self.names():
            spec = self.specs[family][0]
            try:
                full = spec.enumerate() if spec.enumerate else [family]
            except Exception as e:
                self._failed.setdefault(family, f"{type(e).__name__}: {e}")
                continue
            out.extend(n for n in full if self.try_open(n) is not None)
        return out

    def try_open(self, name: str) -> Optional[Device]:
        try:
            return self.open(name)
        except DeviceError:
            return None

    def open(self, name: str) -> Device:
        """The Device for a full name such as `numpy` or `opencl:1`; opened once, then cached."""
        if name in self._devices:
            return self._devices[name]
        with self._lock:
            return self._open(name)

    def _open(self, name: str) -> Device:
        if name in self._devices:
            return self._devices[name]
        self.load()
        family = name.split(":")[0]
        if family not in self.specs:
            raise DeviceError(f"unknown device {name!r}; registered devices: {', '.join(self.names())}. "
                              "Install the backend's package (for example pip install tg-llvm).")
        if name in self._failed:
            raise DeviceError(f"device {name!r} could not be opened: {self._failed[name]}")
        spec, plugin = self.specs[family]
        index = name.partition(":")[2]
        if ":" in name and (not index.isdigit() or (spec.enumerate is None and not spec.instances and int(index) != 0)):
            raise DeviceError(f"unknown device {name!r}: {family!r} has one device, {family!r}"
                              if index.isdigit() else f"device {name!r}: what follows ':' must be a device index")
        try:
            dev = spec.open(name)
            if not isinstance(dev, Device):
                raise TypeError(f"its open() returned {type(dev).__name__}, not a tg Device")
        except (Exception, SystemExit) as e:
            self._failed[name] = f"{type(e).__name__}: {e}"
            warnings.warn(f"tg device {name!r} (plugin {plugin!r}) could not be opened: {e}", TgPluginWarning,
                          stacklevel=3)
            raise DeviceError(f"device {name!r} (plugin {plugin!r}) could not be opened: {e}") from e
        self._devices[name] = dev
        return dev

    def opened(self) -> list[Device]:
        return list(self._devices.values())

    @property
    def default(self) -> str:
        """TG_DEVICE if set (and it must open), else the highest-priority device that opens."""
        if self._default is None:
            with self._lock:
                if self._default is None:
                    self._default = self._choose_default()
        return self._default

    @default.setter
    def default(self, name: str) -> None:
        self.open(canonical_name(name))
        self._default = canonical_name(name)

    def _choose_default(self) -> str:
        wanted = config.device()
        if wanted:
            self.open(canonical_name(wanted))
            return canonical_name(wanted)
        for n in self.names():
            if self.try_open(n) is None:
                continue
            check = self.self_check if self is registry else None  # tensors are made on the global registry
            problem = check(n) if check is not None else None
            if problem is None:
                return n
            self._failed[n] = f"it opened but computed wrong values ({problem})"
            warnings.warn(f"tg device {n!r} (plugin {self.specs[n][1]!r}) is not used as the default: its self-check "
                          f"failed: {problem}. Name it with TG_DEVICE or device= to use it anyway.", TgPluginWarning,
                          stacklevel=3)
        return "numpy"



def _check_specs(specs: Any) -> Optional[str]:
    """What is wrong with a tg_devices hook's return value, or None."""
    if not isinstance(specs, (list, tuple)):
        return f"its tg_devices hook returned {type(specs).__name__}, not a list of DeviceSpec"
    for spec in specs:
        if not isinstance(spec, DeviceSpec):
            return f"its tg_devices hook returned {spec!r}, not a DeviceSpec"
        if not isinstance(spec.name, str) or not spec.name or ":" in spec.name or not callable(spec.open):
            return f"its DeviceSpec {spec.name!r} needs a plain name (no ':') and a callable open"
    names = [s.name for s in specs]
    return f"it registers device {names[0]!r} twice" if len(set(names)) != len(names) else None


def canonical_name(name: str) -> str:
    """Device names are case-insensitive; `opencl:0` is `opencl`'s first device."""
    return name.strip().lower()


def resolve(device: Union[str, Sequence[str], None]) -> Union[str, tuple[str, ...]]:
    """A device argument as tg keeps it: the canonical name, a tuple of them (a tensor spread over several
    devices), or the default device when None."""
    if device is None:
        return registry.default
    if isinstance(device, str):
        return canonical_name(device)
    names = tuple(canonical_name(d) for d in device)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"a tensor spreads over distinct devices, got {tuple(device)}")
    return names


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "source"


registry = Registry()


def get_device(name: str) -> Device:
    """Open (once) and return the device called `name`."""
    return registry.open(name)


def synchronize(device: Optional[str] = None) -> None:
    """Wait for all queued work on `device`, or on every opened device when none is named."""
    for dev in ([get_device(canonical_name(device))] if device else registry.opened()):
        dev.synchronize()


def widest_float(device: Union[str, tuple[str, ...]]) -> DType:
    """float64 where `device` (every one of several) stores it, else float32: the type for a computation that
    needs more than its inputs' digits (integer differences near the limits, O(n^2) sums)."""
    names = device if isinstance(device, tuple) else (device,)
    stored = [get_device(d).dtypes for d in names]
    return dt.float64 if all(not s or dt.float64 in s for s in stored) else dt.float32


def check_dtype(dtype: DType, device: Union[str, tuple[str, ...]]) -> None:
    """Raise TypeError when `device` (or one of several) cannot store `dtype`, naming what it supports."""
    if isinstance(device, tuple):
        for d in device:
            check_dtype(dtype, d)
        return
    supported = get_device(device).dtypes
    if supported and dtype not in supported:
        raise TypeError(f"device {device!r} does not support dtype {dtype.name}; it supports "
                        f"{', '.join(sorted(d.name for d in supported))}. Cast to one of those, or use another device.")
