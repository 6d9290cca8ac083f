"""Creating tensors: from data, constants, ranges, random draws and initialisers (torch's factory functions).

These are functions written as class methods: `Tensor` binds each one (`Tensor.zeros(2, 3)`; the first argument
is the class). This module sits below tensor.py and does not import it at runtime: new tensors come from
`cls.tensor_class` (Tensor itself, also when called on a subclass such as tg.nn.Parameter).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from . import capture as _capture
from . import dtype as dt
from .device import Buffer, check_dtype, resolve
from .dtype import DType, Scalar
from .multi import DeviceLike, Lazy, MultiNode, const
from .ops import Op
from .uop import lazy
from .view import Shape

if TYPE_CHECKING:
    from .tensor import Tensor


class _Random:
    """The global generator behind rand/randn; `manual_seed` resets it."""

    generator = np.random.default_rng(0)

    @classmethod
    def draw(cls) -> np.random.Generator:
        _capture.record_random()  # a capture replays this draw: it warns
        return cls.generator


def manual_seed(seed: int) -> None:
    """Seed tg's random number generator, for reproducible rand/randn/dropout."""
    _Random.generator = np.random.default_rng(seed)


def shape_arg(shape: Sequence[Any]) -> Shape:
    """Accept f(2, 3) and f((2, 3)) alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def node_from_data(data: Any, dtype: Optional[Union[DType, str]], device: DeviceLike) -> Lazy:
    """Upload Python or NumPy data to `device` as a realized buffer node (to each of several devices: replicated)."""
    if isinstance(device, tuple):
        return MultiNode([node_from_data(data, dtype, d) for d in device], None)  # type: ignore[misc]
    if isinstance(data, np.ndarray):
        arr = data
        target = dt.to_dtype(dtype or arr.dtype)
    else:
        try:
            arr = np.asarray(data)
        except ValueError as e:
            raise ValueError(f"Tensor: nested lists must be rectangular ({e})") from None
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__} data; "
                            "it must be numbers or rectangular nested lists of numbers")
        kind = arr.dtype.kind
        default = dt.bool_ if kind == "b" else (dt.default_int if kind in "iu" else dt.default_float)
        target = dt.to_dtype(dtype, default)
    check_dtype(target, device)
    arr = np.asarray(arr, dtype=target.np, order="C")
    buf = Buffer(device, arr.size, target)
    if arr.size:
        buf.copyin(arr)
    return lazy(Op.BUFFER, (), None, target, arr.shape, device, buffer=buf)


def _gain(nonlinearity: str, a: float) -> float:
    """torch.nn.init.calculate_gain for the nonlinearities the kaiming helpers accept."""
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + a * a))
    return {"relu": math.sqrt(2.0), "linear": 1.0, "sigmoid": 1.0, "tanh": 5 / 3}.get(nonlinearity, 1.0)


def full(cls: type[Tensor], shape: Sequence[int], fill_value: Scalar, dtype: Optional[Union[DType, str]] = None,
         device: Optional[str] = None, requires_grad: bool = False) -> Tensor:
    """A tensor of `shape` filled with `fill_value` (costs no memory until realized)."""
    shape = shape_arg((shape,)) if not isinstance(shape, int) else (shape,)
    if any(n < 0 for n in shape):
        raise RuntimeError(f"full: negative dimension {min(shape)} in shape {tuple(shape)}; sizes must be >= 0")
    if dtype is None:
        dtype = dt.bool_ if isinstance(fill_value, bool) else (
            dt.default_int if isinstance(fill_value, int) else dt.default_float)
    dtype = dt.to_dtype(dtype)
    if dtype.is_int and not isinstance(fill_value, bool) and math.isfinite(fill_value):
        lo, hi = int(np.iinfo(dtype.np).min), int(np.iinfo(dtype.np).max)
        if not lo <= int(fill_value) <= hi:  # arithmetic wraps a scalar into the type, a fill refuses (torch)
            raise RuntimeError(f"full: value {fill_value} cannot be converted to {dtype.name} without overflow "
                               f"(its range is {lo}..{hi})")
    node = const(fill_value, dtype, shape, resolve(device))
    return cls.tensor_class(node, requires_grad=requires_grad)


def zeros(cls: type[Tensor], *shape: Any, dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None,
          requires_grad: bool = False) -> Tensor:
    """Zeros of `shape` (float32 unless `dtype` says otherwise)."""
    return cls.tensor_class.full(shape_arg(shape), 0, dt.to_dtype(dtype), device, requires_grad)


def ones(cls: type[Tensor], *shape: Any, dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None,
         requires_grad: bool = False) -> Tensor:
    """Ones of `shape` (float32 unless `dtype` says otherwise)."""
    return cls.tensor_class.full(shape_arg(shape), 1, dt.to_dtype(dtype), device, requires_grad)


def empty(cls: type[Tensor], *shape: Any, dtype: Optional[Union[DType, str]] = None,
          device: Optional[str] = None) -> Tensor:
    """An uninitialised tensor (tg fills it with zeros)."""
    return cls.tensor_class.zeros(*shape, dtype=dtype, device=device)


def zeros_like(self: Tensor, dtype: Optional[Union[DType, str]] = None) -> Tensor:
    return self.tensor_class.zeros(self.shape, dtype=dtype or self.dtype, device=self.device)


def ones_like(self: Tensor, dtype: Optional[Union[DType, str]] = None) -> Tensor:
    return self.tensor_class.ones(self.shape, dtype=dtype or self.dtype, device=self.device)


def full_like(self: Tensor, fill_value: Scalar, dtype: Optional[Union[DType, str]] = None) -> Tensor:
    return self.tensor_class.full(self.shape, fill_value, dtype or self.dtype, self.device)


def arange(cls: type[Tensor], start: Scalar, end: Optional[Scalar] = None, step: Scalar = 1,
           dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None) -> Tensor:
    """Values from `start` to `end` (exclusive) in steps of `step`, like torch.arange."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    is_int = all(isinstance(v, int) for v in (start, end, step))
    dtype = dt.to_dtype(dtype, dt.default_int if is_int else dt.default_float)
    count = max(0, math.ceil((end - start) / step))
    return cls.tensor_class(np.arange(count, dtype=np.float64) * step + start, dtype=dtype, device=device)


def eye(cls: type[Tensor], n: int, m: Optional[int] = None, dtype: Optional[Union[DType, str]] = None,
        device: Optional[str] = None) -> Tensor:
    """The identity matrix (n x m)."""
    return cls.tensor_class(np.eye(n, m), dtype=dt.to_dtype(dtype), device=device)


def rand(cls: type[Tensor], *shape: Any, dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from tg's seeded generator (`manual_seed`)."""
    data = _Random.draw().random(shape_arg(shape))
    return cls.tensor_class(data, dtype=dt.to_dtype(dtype), device=device, requires_grad=requires_grad)


def randn(cls: type[Tensor], *shape: Any, dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples from tg's seeded generator (`manual_seed`)."""
    data = _Random.draw().standard_normal(shape_arg(shape))
    return cls.tensor_class(data, dtype=dt.to_dtype(dtype), device=device, requires_grad=requires_grad)


def linspace(cls: type[Tensor], start: float, end: float, steps: int, dtype: Optional[Union[DType, str]] = None,
             device: Optional[str] = None) -> Tensor:
    """`steps` evenly spaced values from start to end inclusive."""
    return cls.tensor_class(np.linspace(start, end, steps), dtype=dt.to_dtype(dtype), device=device)


def randint(cls: type[Tensor], low: int, high: Optional[int] = None, size: Sequence[int] = (),
            dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None) -> Tensor:
    """Integers in [low, high) (or [0, low) when high is None), int64 by default."""
    lo, hi = (0, low) if high is None else (low, high)
    return cls.tensor_class(_Random.draw().integers(lo, hi, tuple(size)), dtype=dt.to_dtype(dtype, dt.int64),
                  device=device)


def normal(cls: type[Tensor], mean: float = 0.0, std: float = 1.0, size: Sequence[int] = (),
           dtype: Optional[Union[DType, str]] = None,
           device: Optional[str] = None, requires_grad: bool = False) -> Tensor:
    """Samples of N(mean, std^2)."""
    return cls.tensor_class(_Random.draw().normal(mean, std, tuple(size)), dtype=dt.to_dtype(dtype), device=device,
                  requires_grad=requires_grad)


def uniform(cls: type[Tensor], low: float = 0.0, high: float = 1.0, size: Sequence[int] = (),
            dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None,
            requires_grad: bool = False) -> Tensor:
    """Samples of U[low, high)."""
    return cls.tensor_class(_Random.draw().uniform(low, high, tuple(size)), dtype=dt.to_dtype(dtype), device=device,
                  requires_grad=requires_grad)


def rand_like(self: Tensor) -> Tensor:
    return self.tensor_class.rand(*self.shape, dtype=self.dtype, device=self.device)


def randn_like(self: Tensor) -> Tensor:
    return self.tensor_class.randn(*self.shape, dtype=self.dtype, device=self.device)


def _fans(cls: type[Tensor], shape: Sequence[int]) -> tuple[int, int]:
    receptive = math.prod(shape[2:])
    return (shape[1] * receptive if len(shape) > 1 else shape[0]), shape[0] * receptive


def kaiming_uniform(cls: type[Tensor], *shape: Any, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    device: Optional[str] = None, requires_grad: bool = False) -> Tensor:
    """torch.nn.init.kaiming_uniform_'s distribution (what nn.Linear and nn.Conv2d use with a=sqrt(5))."""
    shape = shape_arg(shape)
    fan_in, fan_out = cls.tensor_class._fans(shape)
    bound = _gain(nonlinearity, a) * math.sqrt(3.0 / (fan_in if mode == "fan_in" else fan_out))
    return cls.tensor_class.uniform(-bound, bound, shape, device=device, requires_grad=requires_grad)


def kaiming_normal(cls: type[Tensor], *shape: Any, a: float = 0.0, mode: str = "fan_in",
                   nonlinearity: str = "leaky_relu",
                   device: Optional[str] = None, requires_grad: bool = False) -> Tensor:
    shape = shape_arg(shape)
    fan_in, fan_out = cls.tensor_class._fans(shape)
    std = _gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    return cls.tensor_class.normal(0.0, std, shape, device=device, requires_grad=requires_grad)


def xavier_uniform(cls: type[Tensor], *shape: Any, gain: float = 1.0, device: Optional[str] = None,
                   requires_grad: bool = False) -> Tensor:
    shape = shape_arg(shape)
    fan_in, fan_out = cls.tensor_class._fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return cls.tensor_class.uniform(-bound, bound, shape, device=device, requires_grad=requires_grad)


def xavier_normal(cls: type[Tensor], *shape: Any, gain: float = 1.0, device: Optional[str] = None,
                  requires_grad: bool = False) -> Tensor:
    shape = shape_arg(shape)
    fan_in, fan_out = cls.tensor_class._fans(shape)
    return cls.tensor_class.normal(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), shape, device=device,
                         requires_grad=requires_grad)


def from_numpy(cls: type[Tensor], array: np.ndarray, device: Optional[str] = None) -> Tensor:
    """A tensor holding a copy of `array`, keeping its dtype."""
    return cls.tensor_class(array, device=device)


def randperm(cls: type[Tensor], n: int, dtype: Optional[Union[DType, str]] = None,
             device: Optional[str] = None) -> Tensor:
    """A random permutation of 0..n-1 (int64 by default), from tg's seeded generator."""
    if n < 0:
        raise RuntimeError(f"randperm: n must be non-negative, got {n}")
    return cls.tensor_class(_Random.draw().permutation(n), dtype=dt.to_dtype(dtype, dt.int64), device=device)


def multinomial(self: Tensor, num_samples: int, replacement: bool = False) -> Tensor:
    """Indices drawn from the categories of each row by their (unnormalised, non-negative) weights (torch.multinomial):
    without `replacement` each index at most once per row, so only categories of non-zero weight are drawn."""
    if self.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: expected 1-D or 2-D weights, got shape {self.shape}")
    if not self.dtype.is_float:
        raise RuntimeError(f"multinomial: weights must be a float tensor, got {self.dtype.name}")
    weights = self.numpy().astype(np.float64).reshape(-1, self.shape[-1])
    if weights.shape[1] == 0:
        raise RuntimeError("multinomial: there are no categories to draw from (the last dim is empty)")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise RuntimeError("multinomial: weights must be finite and non-negative")
    totals = weights.sum(1)
    if np.any(totals <= 0):
        raise RuntimeError("multinomial: each row of weights must have a positive sum")
    if num_samples <= 0:
        raise RuntimeError(f"multinomial: num_samples must be positive, got {num_samples}")
    if not replacement and np.any((weights > 0).sum(1) < num_samples):
        raise RuntimeError(f"multinomial: cannot draw {num_samples} samples without replacement from rows with "
                           f"fewer categories of non-zero weight ({int((weights > 0).sum(1).min())})")
    rng = _Random.draw()
    rows = [rng.choice(weights.shape[1], num_samples, replace=replacement, p=w / t) for w, t in zip(weights, totals)]
    out = np.stack(rows).astype(np.int64)
    return self.tensor_class(out.reshape(num_samples) if self.ndim == 1 else out, device=self.device)


def bernoulli(self: Tensor, p: Optional[float] = None) -> Tensor:
    """1 with probability p (or each element's own value as its probability), else 0, in self's dtype."""
    probs = np.full(self.shape, p) if p is not None else self.numpy().astype(np.float64)
    if np.any((probs < 0) | (probs > 1)) or np.any(np.isnan(probs)):
        raise RuntimeError("bernoulli: probabilities must be in [0, 1]")
    drawn = _Random.draw().random(self.shape) < probs
    return self.tensor_class(drawn, dtype=self.dtype, device=self.device)


def new_full(self: Tensor, size: Sequence[int], fill_value: Scalar, dtype: Optional[Union[DType, str]] = None,
             device: Optional[str] = None) -> Tensor:
    """A tensor of `size` filled with fill_value, in this tensor's dtype and on its device unless given."""
    return self.tensor_class.full(shape_arg(tuple(size) if not isinstance(size, int) else (size,)), fill_value,
                                  dtype or self.dtype, device or self.device)


def new_zeros(self: Tensor, *size: Any, dtype: Optional[Union[DType, str]] = None,
              device: Optional[str] = None) -> Tensor:
    return new_full(self, shape_arg(size), 0, dtype, device)


def new_ones(self: Tensor, *size: Any, dtype: Optional[Union[DType, str]] = None,
             device: Optional[str] = None) -> Tensor:
    return new_full(self, shape_arg(size), 1, dtype, device)


def new_tensor(self: Tensor, data: Any, dtype: Optional[Union[DType, str]] = None,
               device: Optional[str] = None) -> Tensor:
    """A new tensor holding data, in this tensor's dtype and on its device unless given."""
    return self.tensor_class(data, dtype=dtype or self.dtype, device=device or self.device)
