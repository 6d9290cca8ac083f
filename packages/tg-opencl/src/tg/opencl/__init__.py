"""tg.opencl: tg kernels as OpenCL C, run through pyopencl on any OpenCL platform.

Importing this module is cheap: pyopencl is imported only when an `opencl` device is opened.
Devices: `opencl` (the first device of all platforms) and `opencl:N`.
"""
from __future__ import annotations

from tg.core import DeviceSpec, hookimpl
from tg.core.device import PRIORITY_COMPILED_CPU, opener

__version__ = "0.1.0"


def _names() -> list[str]:
    from .device import device_names

    return device_names()


@hookimpl
def tg_devices() -> list[DeviceSpec]:
    return [DeviceSpec("opencl", opener("tg.opencl.device", "OpenCLDevice", "pyopencl"), PRIORITY_COMPILED_CPU - 10,
                       "OpenCL through pyopencl (GPUs, or PoCL on the CPU)", enumerate=_names)]
