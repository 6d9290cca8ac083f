"""A third-party tg device plugin, written only against tg.core's public contract.

Device `demo` keeps each buffer in a Python `bytearray` (its own allocator, not tg's NumPy one)
and runs kernels with tg.core's host-side kernel interpreter over views of those bytes. It shows
what a plugin needs: one module with a `tg_devices` hook, registered through the `tg.devices`
entry point, and no change to tg-core.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tg.core import Allocator, Buffer, Device, DeviceSpec, hookimpl
from tg.core import dtype as dt
from tg.core.kernel import Kernel
from tg.core.numpy_device import KernelInterpreter


class BytearrayAllocator(Allocator):
    def _alloc(self, nbytes: int) -> bytearray:
        return bytearray(nbytes)

    def copyin(self, handle: bytearray, src: np.ndarray) -> None:
        handle[:] = src.tobytes()

    def copyout(self, dst: np.ndarray, handle: bytearray) -> None:
        dst.reshape(-1).view(np.uint8)[:] = np.frombuffer(handle, np.uint8)


class DemoDevice(Device):
    dtypes = frozenset({dt.bool_, dt.int32, dt.int64, dt.float32})

    def __init__(self, name: str):
        super().__init__(name, BytearrayAllocator())
        self.launched = 0

    def execute(self, kernel: Kernel, buffers: Sequence[Buffer]) -> None:
        flats = [np.frombuffer(b.handle, b.dtype.np) for b in buffers]
        KernelInterpreter(kernel, flats).run(flats[0].reshape(kernel.out_shape))
        self.launched += 1


@hookimpl
def tg_devices() -> list[DeviceSpec]:
    return [DeviceSpec("demo", DemoDevice, priority=50, description="out-of-tree demo plugin (bytearray memory)")]
