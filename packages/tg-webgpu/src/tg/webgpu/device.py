"""The `webgpu` device: kernels rendered to WGSL and run as compute pipelines through wgpu-py (Vulkan, Metal, D3D12).

The core's compile pipeline (tg.core.compiled) lowers and renders; this module keeps what makes WebGPU fast:
pipelines are made once per kernel source, bind groups once per tuple of buffers, and every dispatch and copy
between two synchronisations goes into one command encoder (one compute pass while only dispatches follow each
other), submitted as one batch when the host needs data, when `flush()` is called (the end of each realize and
each TinyJit replay) or every `stream.BATCH` dispatches.
"""
from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple, Optional

import numpy as np
import wgpu

from tg.core import config
from tg.core import dtype as dt
from tg.core.compiled import KERNEL_NAME, CompiledDevice, CompiledProgram, Compiler, Target
from tg.core.device import Allocator, Buffer, DeviceError
from tg.core.ir import Program
from tg.core.kernel import Kernel
from tg.core.ops import Op

from .renderer import WGSLRenderer
from .stream import Stream

INSTALL_HINT = ("no WebGPU adapter found. wgpu-py needs a Vulkan, Metal or D3D12 driver: on Debian/Ubuntu "
                "apt-get install mesa-vulkan-drivers (lavapipe runs Vulkan on the CPU); for an NVIDIA GPU, "
                "its driver's Vulkan ICD (libnvidia-gl)")
FEATURES = ("shader-f16", "shader-int64", "shader-f64", "subgroup")
LIMITS = ("max-storage-buffers-per-shader-stage", "max-storage-buffer-binding-size", "max-buffer-size",
          "max-compute-workgroup-storage-size", "max-compute-invocations-per-workgroup",
          "max-compute-workgroup-size-x", "max-compute-workgroups-per-dimension")
# A GPU's queue is polled without blocking for this long before a synchronisation blocks: the blocking wait woke
# ~40 µs late on an H200, which held a 64M-float chain replayed once per wait at 68-83% of PyTorch's copy
# (96-98% spinning). Not on CPU adapters (lavapipe): there the spinning thread would take a core from the shader's.
SPIN_SECONDS = 0.002
STORAGE = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST


def open_adapter() -> Any:
    try:
        adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
    except Exception as e:  # wgpu-native raises when no backend has an adapter
        raise DeviceError(f"{INSTALL_HINT} ({e})") from e
    if adapter is None:
        raise DeviceError(INSTALL_HINT)
    return adapter


def wait_for_queue(device: Any, fence: Any) -> None:
    """Block until the GPU has finished everything submitted to `device`'s queue.

    The public way, queue.on_submitted_work_done_sync(), fails in wgpu-py 0.32 (its callback has the wrong C
    signature). wgpu-native's wgpuDevicePoll(wait=True) is documented to block until all submitted work is done;
    wgpu-py reaches it as `_poll_wait` (3 us on lavapipe). Without it, a 4-byte readback waits the same (0.5 ms)."""
    poll = getattr(device, "_poll_wait", None)
    if poll is not None:
        poll()
    else:
        device.queue.read_buffer(fence, 0, 4)


def padded(nbytes: int) -> int:
    """WebGPU copies and buffers come in multiples of 4 bytes, and a binding must hold at least one element of
    its array: 16 bytes at least, so that an empty tensor binds as array<i64> or array<vec4<f32>> too."""
    return max(16, -(-nbytes // 4) * 4)


class WebGPUAllocator(Allocator):
    def __init__(self, device: "WebGPUDevice"):
        super().__init__()
        self.dev = device

    def _alloc(self, nbytes: int) -> Any:
        limit = min(self.dev.limits["max-storage-buffer-binding-size"], self.dev.limits["max-buffer-size"])
        if padded(nbytes) > limit:
            raise MemoryError(f"webgpu: a buffer of {nbytes / 2**20:.1f} MiB is larger than this adapter's "
                              f"max-storage-buffer-binding-size / max-buffer-size ({limit / 2**20:.0f} MiB, "
                              f"{self.dev.adapter_name}); split the tensor or use another device")
        return self.dev.gpu.create_buffer(size=padded(nbytes), usage=STORAGE)

    def _free(self, handle: Any, nbytes: int) -> None:
        with self.dev.lock:
            self.dev.forget(handle)
            self.dev.stream.after_submit.append(handle)  # recorded commands may still use it

    def copyin(self, handle: Any, src: np.ndarray) -> None:
        data = np.ascontiguousarray(src).view(np.uint8).reshape(-1)
        if data.size % 4:
            data = np.concatenate([data, np.zeros(4 - data.size % 4, np.uint8)])
        with self.dev.lock:
            self.dev.stream.submit()  # queue writes run before the next submit: recorded reads must go first
            self.dev.gpu.queue.write_buffer(handle, 0, data)

    def copyout(self, dst: np.ndarray, handle: Any) -> None:
        with self.dev.lock:
            self.dev.stream.submit()
            self.dev.stream.prepare()  # overlaps the GPU's work, as in synchronize
            data = self.dev.gpu.queue.read_buffer(handle, 0, padded(dst.nbytes))
        dst.reshape(-1).view(np.uint8)[:] = np.frombuffer(data, np.uint8, dst.nbytes)

    def copy(self, dst: Any, src: Any, nbytes: int) -> None:
        with self.dev.lock:
            self.dev.stream.copy(dst, src, padded(nbytes))


class Runner(NamedTuple):
    """A loaded kernel: its compute pipeline and the work-groups a dispatch of it needs in x and y."""

    pipeline: Any
    x: int
    y: int


class WGSLCompiler(Compiler):
    """WGSL -> a shader module checked by the driver's compiler (naga) -> a compute pipeline.

    WebGPU has no binaries: the "binary" is the source, and a pipeline is made from it per process."""

    cache_name = "webgpu"
    suffix = ".wgsl"

    def __init__(self, device: "WebGPUDevice"):
        self.dev = device
        self.fingerprint = f"{device.adapter_name}|wgpu {wgpu.__version__}"
        self.modules: dict[str, Any] = {}

    def module(self, source: str, prog: Optional[Program]) -> Any:
        try:
            return self.dev.gpu.create_shader_module(code=source)
        except Exception as e:
            listing = f"\n--- IR ---\n{prog.listing()}" if prog is not None else ""
            raise RuntimeError(f"WGSL compile failed on {self.dev.adapter_name}:\n{e}\n--- source ---\n{source}"
                               f"{listing}") from e

    def compile(self, source: str, name: str, prog: Optional[Program] = None) -> bytes:
        if prog is not None:
            shared = sum(u.arg * u.dtype.itemsize for u in prog.uops if u.op is Op.DEFINE_LOCAL and u.dtype)
            limit = self.dev.limits["max-compute-workgroup-storage-size"]
            if shared > limit:
                raise ValueError(f"webgpu: kernel {prog.name} shares {shared} bytes of workgroup memory; this "
                                 f"adapter's max-compute-workgroup-storage-size is {limit} (TG_GPU_LOCAL=0: none)")
        self.modules[source] = self.module(source, prog)
        return source.encode()

    def load(self, binary: bytes, name: str, prog: Program) -> Any:
        source = binary.decode()
        module = self.modules.pop(source, None) or self.module(source, prog)
        layout = self.dev.pipeline_layout(len(prog.buffer_dtypes))
        pipeline = self.dev.gpu.create_compute_pipeline(layout=layout, compute={"module": module,
                                                                               "entry_point": KERNEL_NAME})
        groups = self.dev.renderer.groups(prog)
        x = min(groups, self.dev.limits["max-compute-workgroups-per-dimension"])  # the rest go on in y
        return Runner(pipeline, x, -(-groups // x))


class WebGPUDevice(CompiledDevice):
    """The WebGPU adapter wgpu-py picks (high performance first), as one tg device."""

    def __init__(self, name: str):
        adapter = open_adapter()
        self.adapter_name = f"{adapter.info['device']} ({adapter.info['backend_type']})"
        self.spin_seconds = 0.0 if adapter.info.get("adapter_type") == "CPU" else SPIN_SECONDS
        features = [f for f in FEATURES if f in adapter.features]
        self.limits = {k: adapter.limits[k] for k in LIMITS}
        self.gpu = adapter.request_device_sync(required_features=features, required_limits=self.limits)
        self.stream = Stream(self.gpu)
        self.fence = self.gpu.create_buffer(size=4, usage=STORAGE)
        self.layouts: dict[int, Any] = {}
        self.bind_groups: OrderedDict[tuple[int, ...], tuple[Any, Sequence[Any]]] = OrderedDict()
        super().__init__(name, WebGPUAllocator(self), WGSLCompiler(self))
        supported = {dt.bool_, dt.int8, dt.uint8, dt.int16, dt.uint16, dt.int32, dt.uint32, dt.float32}
        supported |= {dt.float16} if "shader-f16" in features else set()
        supported |= {dt.int64, dt.uint64} if "shader-int64" in features else set()
        supported |= {dt.float64} if {"shader-f64", "shader-int64"} <= set(features) else set()  # f64 math uses u64
        self.dtypes = frozenset(supported)
        self.max_buffers = self.limits["max-storage-buffers-per-shader-stage"]  # the scheduler splits kernels to fit
        self.split_reduces_for_a_gpu()
        local = min(config.webgpu_workgroup(), self.limits["max-compute-invocations-per-workgroup"])
        exact = self.division_is_exact()
        if not exact and not self.fma_is_fused():
            warnings.warn(f"webgpu: {self.name}'s float32 division is not correctly rounded and its fma is not fused, "
                          "so tg's correction step cannot make it exact: quotients may be an ulp off tg's semantics "
                          "on this driver", stacklevel=2)
        self.renderer = WGSLRenderer(workgroup_size=local, exact_division=exact, subgroups="subgroup" in features)
        self.per_thread = Target(self.renderer, gpu=True, narrow=True, vectors=True)  # vec4 reads of staged tiles

    def division_is_exact(self) -> bool:
        """Whether this driver's float32 division is correctly rounded (Vulkan allows 2.5 ulp): 4,096 quotients
        checked against NumPy's."""
        rng = np.random.default_rng(0)
        a = (rng.standard_normal(4096) * 100).astype(np.float32)
        b = rng.uniform(0.01, 10, 4096).astype(np.float32)
        return bool(np.array_equal(self.probe("a[i] / b[i]", a, b), a / b))

    def fma_is_fused(self) -> bool:
        """Whether fma(a, b, c) rounds once, as the division's correction step needs (Vulkan does not require it;
        lavapipe's rounds twice): (1 + 2^-12)^2 - (1 + 2^-11) is 2^-24 when fused, 0 when the product is rounded."""
        a = np.full(64, 1 + 2.0**-12, np.float32)
        c = np.full(64, -(1 + 2.0**-11), np.float32)
        return bool((self.probe("fma(a[i], a[i], b[i])", a, c) == np.float32(2.0**-24)).all())

    def probe(self, expression: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """`expression` of a[i] and b[i] (float32, a multiple of 64 long) computed on this device, read back."""
        source = f"""@group(0) @binding(0) var<storage, read_write> q: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@compute @workgroup_size(64) fn tg_kernel(@builtin(global_invocation_id) g: vec3<u32>) {{
  let i = g.x; q[i] = {expression};
}}"""
        pipeline = self.gpu.create_compute_pipeline(layout=self.pipeline_layout(3), compute={
            "module": self.gpu.create_shader_module(code=source), "entry_point": KERNEL_NAME})
        handles = [self.gpu.create_buffer(size=a.nbytes, usage=STORAGE) for _ in range(3)]
        self.gpu.queue.write_buffer(handles[1], 0, a)
        self.gpu.queue.write_buffer(handles[2], 0, b)
        self.stream.dispatch(pipeline, self.bind_group(handles), a.size // 64, 1)
        self.stream.submit()
        result = np.frombuffer(self.gpu.queue.read_buffer(handles[0]), np.float32).copy()
        for h in handles:
            self.forget(h)
        return result

    def target(self, kernel: Kernel) -> Target:
        return self.per_thread

    # ---- layouts, bind groups, dispatch ---------------------------------------------------------------
    def pipeline_layout(self, count: int) -> Any:
        """Buffer 0 written, the others read: one layout per buffer count, shared by every kernel."""
        if count not in self.layouts:
            entries = [{"binding": i, "visibility": wgpu.ShaderStage.COMPUTE,
                        "buffer": {"type": wgpu.BufferBindingType.storage if i == 0 else
                                   wgpu.BufferBindingType.read_only_storage}} for i in range(count)]
            group = self.gpu.create_bind_group_layout(entries=entries)
            self.layouts[count] = (self.gpu.create_pipeline_layout(bind_group_layouts=[group]), group)
        return self.layouts[count][0]

    def bind_group(self, handles: Sequence[Any]) -> Any:
        key = tuple(id(h) for h in handles)
        found = self.bind_groups.get(key)
        if found is not None:
            self.bind_groups.move_to_end(key)
            return found[0]
        self.pipeline_layout(len(handles))
        entries = [{"binding": i, "resource": {"buffer": h, "offset": 0, "size": h.size}}
                   for i, h in enumerate(handles)]
        group = self.gpu.create_bind_group(layout=self.layouts[len(handles)][1], entries=entries)
        self.bind_groups[key] = (group, tuple(handles))
        if len(self.bind_groups) > 4096:
            self.bind_groups.popitem(last=False)
        return group

    def forget(self, handle: Any) -> None:
        """Drop the bind groups that use a buffer going back to the driver."""
        for key in [k for k in self.bind_groups if id(handle) in k]:
            del self.bind_groups[key]

    def launch(self, program: CompiledProgram, buffers: Sequence[Buffer]) -> None:
        run: Runner = program.runner
        with self.lock:
            self.stream.dispatch(run.pipeline, self.bind_group([b.handle for b in buffers]), run.x, run.y)

    def launch_notes(self, program: CompiledProgram) -> list[str]:
        return [f"workgroup size {self.renderer.workgroup(program.prog)}"]

    def flush(self) -> None:
        with self.lock:
            self.stream.submit()

    def synchronize(self) -> None:
        with self.lock:
            self.stream.submit()
            self.stream.prepare()  # overlaps the GPU's work
            self.stream.spin(self.spin_seconds)
            wait_for_queue(self.gpu, self.fence)  # returns at once when the spin saw the queue idle
