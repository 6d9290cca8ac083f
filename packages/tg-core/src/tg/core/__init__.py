"""tg.core: lazy tensors, autodiff, a fusing scheduler, the device registry and the NumPy device.

>>> from tg.core import Tensor
>>> (Tensor([1.0, 2.0]) * 3).tolist()
[3.0, 6.0]
"""
import builtins

from . import functional, functions, linalg, numpy_device, selfcheck
from .autograd import no_grad
from .creation import manual_seed
from .device import (
    BUILTIN_PLUGINS,
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
from .dtype import (
    DType,
    bool_,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    promote,
    to_dtype,
    uint8,
    uint16,
    uint32,
    uint64,
)
from .functional import bucketize, einsum, searchsorted
from .functions import *  # noqa: F403 - torch's function spellings of Tensor methods (functions.__all__)
from .jit import TinyJit
from .stats import counters
from .stats import reset as reset_counters
from .tensor import Tensor

BUILTIN_PLUGINS.append(("numpy", numpy_device))
registry.self_check = selfcheck.self_check

__version__ = "0.1.0"

__all__ = ["Tensor", "TinyJit", "DType", "Device", "DeviceSpec", "DeviceError", "Allocator", "Buffer",
           "TgPluginWarning",
           "hookimpl", "registry", "get_device", "synchronize", "counters", "reset_counters", "manual_seed",
           "no_grad", "promote", "to_dtype", "bool_", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32",
           "int64", "float16",
           "float32", "float64", "default_device", "functional", "linalg", "einsum", "bucketize", "searchsorted",
           "tensor",
           "cat", "stack", "where",
           "matmul", "zeros", "ones", "full", "empty", "arange", "linspace", "eye", "rand", "randn", "randint",
           "normal", "uniform", "meshgrid", "isclose", "allclose", *functions.__all__]


def tensor(data: object, dtype: object = None, device: object = None, requires_grad: builtins.bool = False) -> Tensor:
    """A tensor holding a copy of `data` (torch.tensor)."""
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)  # type: ignore[arg-type]


def cat(tensors: list[Tensor], dim: int = 0) -> Tensor:
    """Concatenate along an existing dim (torch.cat)."""
    if not tensors:
        raise RuntimeError("cat: expected a non-empty list of tensors")
    return tensors[0].cat(*tensors[1:], dim=dim)


def stack(tensors: list[Tensor], dim: int = 0) -> Tensor:
    """Join along a new dim (torch.stack)."""
    if not tensors:
        raise RuntimeError("stack: expected a non-empty list of tensors")
    return tensors[0].stack(*tensors[1:], dim=dim)


def meshgrid(*tensors: Tensor, indexing: str = "ij") -> list[Tensor]:
    """Coordinate grids from 1-D tensors (torch.meshgrid)."""
    return functional.meshgrid(*tensors, indexing=indexing)


def isclose(a: Tensor, b: object, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: builtins.bool = False) -> Tensor:
    """Elementwise closeness (torch.isclose)."""
    return a.isclose(b, rtol, atol, equal_nan)  # type: ignore[arg-type]


def allclose(a: Tensor, b: object, rtol: float = 1e-5, atol: float = 1e-8,
             equal_nan: builtins.bool = False) -> builtins.bool:
    """Whether every element is close (torch.allclose)."""
    return a.allclose(b, rtol, atol, equal_nan)  # type: ignore[arg-type]


def where(condition: Tensor, x: object, y: object) -> Tensor:
    """x where condition holds, else y (torch.where)."""
    return condition.if_else(x, y)  # type: ignore[arg-type]


def matmul(a: Tensor, b: Tensor) -> Tensor:
    return a.matmul(b)


zeros, ones, full, empty, arange, linspace, eye = (Tensor.zeros, Tensor.ones, Tensor.full, Tensor.empty,
                                                   Tensor.arange, Tensor.linspace, Tensor.eye)
rand, randn, randint, normal, uniform = Tensor.rand, Tensor.randn, Tensor.randint, Tensor.normal, Tensor.uniform


def default_device() -> str:
    """The device new tensors go to: TG_DEVICE, or the highest-priority device that opens."""
    return registry.default


bool = bool_  # noqa: A001 - torch's spelling, tg.core.bool (last: the builtin is used in annotations above)
