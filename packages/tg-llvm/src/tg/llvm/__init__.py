"""tg.llvm: tg kernels compiled by LLVM (through llvmlite) for the host CPU, run on all cores.

Importing this module is cheap: llvmlite is imported only when the `llvm` device is opened.

>>> from tg.core import Tensor
>>> (Tensor([1.0, 2.0], device="llvm") * 3).tolist()
[3.0, 6.0]
"""
from __future__ import annotations

from tg.core import DeviceSpec, hookimpl
from tg.core.device import PRIORITY_COMPILED_CPU, opener

__version__ = "0.1.0"


@hookimpl
def tg_devices() -> list[DeviceSpec]:
    return [DeviceSpec("llvm", opener("tg.llvm.device", "LLVMDevice", "llvmlite"), PRIORITY_COMPILED_CPU,
                       "LLVM JIT for the host CPU, all cores", instances=True)]


def export(*args: object, **kwargs: object) -> object:
    """Compile a tg computation to an object file / shared library and a C header (see tg.llvm.export)."""
    from .export import export as _export

    return _export(*args, **kwargs)
