"""tg.webgpu: tg kernels as WGSL compute shaders, run through wgpu-py on Vulkan, Metal or D3D12.

Importing this module is cheap: wgpu is imported only when the `webgpu` device is opened.
`export(fn_or_model, example_inputs, "dir/")` writes a model as an ES module that runs in a browser's WebGPU.
"""
from __future__ import annotations

from tg.core import DeviceSpec, hookimpl
from tg.core.device import PRIORITY_GPU, opener

from .export import export

__all__ = ["export"]
__version__ = "0.1.0"


@hookimpl
def tg_devices() -> list[DeviceSpec]:
    # below OpenCL and the CPU backends by default: on a machine with only lavapipe it is a CPU in disguise
    return [DeviceSpec("webgpu", opener("tg.webgpu.device", "WebGPUDevice", "wgpu"), PRIORITY_GPU - 150,
                       "WebGPU through wgpu-py (Vulkan, Metal, D3D12; lavapipe on the CPU)")]
