"""tg.core: lazy tensors, autodiff, a fusing scheduler, the device registry and the NumPy device.

>>> from tg.core import Tensor
>>> (Tensor([1.0, 2.0]) * 3).tolist()
[3.0, 6.0]
"""
from .device import (
    Allocator,
    Buffer,
    Device,
    DeviceError,
    DeviceSpec,
    TgPluginWarning,
    get_device,
    hookimpl,
    registry,
    synchronize,
)
from .dtype import DType, bool_, float16, float32, float64, int8, int16, int32, int64, promote, to_dtype, uint8
from .stats import counters
from .stats import reset as reset_counters
from .tensor import Tensor, manual_seed, no_grad

__version__ = "0.1.0"
bool = bool_  # noqa: A001 - torch's spelling, tg.core.bool

__all__ = ["Tensor", "DType", "Device", "DeviceSpec", "DeviceError", "Allocator", "Buffer", "TgPluginWarning",
           "hookimpl", "registry", "get_device", "synchronize", "counters", "reset_counters", "manual_seed",
           "no_grad", "promote", "to_dtype", "bool_", "uint8", "int8", "int16", "int32", "int64", "float16",
           "float32", "float64", "default_device"]


def default_device() -> str:
    """The device new tensors go to: TG_DEVICE, or the highest-priority device that opens."""
    return registry.default
