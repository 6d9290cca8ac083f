"""The Tensor front end: a PyTorch-like API where every method is a composition of primitive ops.

Nothing here talks to a device. Each method builds lazy nodes through the autograd Functions; data
is computed only by `realize()`, `numpy()`, `item()` or `tolist()`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Optional, Union

import numpy as np

from . import autograd as F
from . import capture as _capture
from . import dtype as dt
from . import elementwise as ew
from . import functional as fn
from . import indexing, stats
from .autograd import GRAD_MODE
from .device import Buffer, canonical_name, get_device, registry
from .dtype import DType
from .functional import ValuesIndices
from .ops import Node, Op, const
from .realize import realize as _realize_nodes
from .view import Shape, broadcast_shape

Scalar = Union[int, float, bool]
TensorLike = Union["Tensor", Scalar]


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


def _shape_arg(shape: Sequence[Any]) -> Shape:
    """Accept f(2, 3) and f((2, 3)) alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


class Tensor:
    """A lazy n-dimensional array on a device, with reverse-mode autodiff.

    >>> from tg.core import Tensor
    >>> x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad.tolist()
    [[2.0, 4.0], [6.0, 8.0]]
    """

    __slots__ = ("__weakref__", "_ctx", "_node", "grad", "requires_grad")
    # Tensor itself, also on subclasses (tg.nn.Parameter): what the modules below this one, which do not import it,
    # use to make new tensors and to recognise tensors
    tensor_class: ClassVar[type[Tensor]]

    def __init__(self, data: Any, dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None,
                 requires_grad: bool = False):
        if isinstance(data, Node):
            node = data
        elif isinstance(data, Tensor):
            node = data.detach().to(device or data.device).node
            if dtype is not None:
                node = node.cast(dt.to_dtype(dtype))
        else:
            node = _node_from_data(data, dtype, canonical_name(device) if device else registry.default)
        self._node: Node = node
        self.grad: Optional[Tensor] = None
        self._ctx: Optional[F.Function] = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ---- properties -------------------------------------------------------------------------------
    @property
    def node(self) -> Node:
        """The lazy-graph node holding (or computing) this tensor's data."""
        return self._node

    @node.setter
    def node(self, new: Node) -> None:
        if _capture.capturing():  # a capture must know which tensors got new data
            _capture.record_rebind(self, self._node)
        self._node = new

    @property
    def shape(self) -> tuple[int, ...]:
        return self.node.shape

    @property
    def dtype(self) -> DType:
        return self.node.dtype

    @property
    def device(self) -> str:
        return self.node.device

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        """Number of elements."""
        return self.node.numel

    def size(self, dim: Optional[int] = None) -> Union[tuple[int, ...], int]:
        """The shape, or the size of one dim."""
        return self.shape if dim is None else self.shape[self._dim(dim)]

    def dim(self) -> int:
        return self.ndim

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    @property
    def T(self) -> Tensor:  # noqa: N802 - torch's name
        """The tensor with its dims reversed."""
        return self.permute(*reversed(range(self.ndim)))

    # ---- creation ---------------------------------------------------------------------------------
    @staticmethod
    def full(shape: Sequence[int], fill_value: Scalar, dtype: Optional[Union[DType, str]] = None,
             device: Optional[str] = None, requires_grad: bool = False) -> Tensor:
        """A tensor of `shape` filled with `fill_value` (costs no memory until realized)."""
        shape = _shape_arg((shape,)) if not isinstance(shape, int) else (shape,)
        if any(n < 0 for n in shape):
            raise RuntimeError(f"full: negative dimension {min(shape)} in shape {tuple(shape)}; sizes must be >= 0")
        if dtype is None:
            dtype = dt.bool_ if isinstance(fill_value, bool) else (
                dt.default_int if isinstance(fill_value, int) else dt.default_float)
        node = const(fill_value, dt.to_dtype(dtype), shape, canonical_name(device) if device else registry.default)
        return Tensor(node, requires_grad=requires_grad)

    @staticmethod
    def zeros(*shape: Any, dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None,
              requires_grad: bool = False) -> Tensor:
        """Zeros of `shape` (float32 unless `dtype` says otherwise)."""
        return Tensor.full(_shape_arg(shape), 0, dt.to_dtype(dtype), device, requires_grad)

    @staticmethod
    def ones(*shape: Any, dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None,
             requires_grad: bool = False) -> Tensor:
        """Ones of `shape` (float32 unless `dtype` says otherwise)."""
        return Tensor.full(_shape_arg(shape), 1, dt.to_dtype(dtype), device, requires_grad)

    @staticmethod
    def empty(*shape: Any, dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None) -> Tensor:
        """An uninitialised tensor (tg fills it with zeros)."""
        return Tensor.zeros(*shape, dtype=dtype, device=device)

    def zeros_like(self, dtype: Optional[Union[DType, str]] = None) -> Tensor:
        return Tensor.zeros(self.shape, dtype=dtype or self.dtype, device=self.device)

    def ones_like(self, dtype: Optional[Union[DType, str]] = None) -> Tensor:
        return Tensor.ones(self.shape, dtype=dtype or self.dtype, device=self.device)

    def full_like(self, fill_value: Scalar, dtype: Optional[Union[DType, str]] = None) -> Tensor:
        return Tensor.full(self.shape, fill_value, dtype or self.dtype, self.device)

    @staticmethod
    def arange(start: Scalar, end: Optional[Scalar] = None, step: Scalar = 1,
               dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None) -> Tensor:
        """Values from `start` to `end` (exclusive) in steps of `step`, like torch.arange."""
        if end is None:
            start, end = 0, start
        if step == 0:
            raise RuntimeError("arange: step must be nonzero")
        is_int = all(isinstance(v, int) for v in (start, end, step))
        dtype = dt.to_dtype(dtype, dt.default_int if is_int else dt.default_float)
        count = max(0, math.ceil((end - start) / step))
        return Tensor(np.arange(count, dtype=np.float64) * step + start, dtype=dtype, device=device)

    @staticmethod
    def eye(n: int, m: Optional[int] = None, dtype: Optional[Union[DType, str]] = None,
            device: Optional[str] = None) -> Tensor:
        """The identity matrix (n x m)."""
        return Tensor(np.eye(n, m), dtype=dt.to_dtype(dtype), device=device)

    @staticmethod
    def rand(*shape: Any, dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None,
             requires_grad: bool = False) -> Tensor:
        """Uniform samples in [0, 1) from tg's seeded generator (`manual_seed`)."""
        data = _Random.draw().random(_shape_arg(shape))
        return Tensor(data, dtype=dt.to_dtype(dtype), device=device, requires_grad=requires_grad)

    @staticmethod
    def randn(*shape: Any, dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None,
              requires_grad: bool = False) -> Tensor:
        """Standard normal samples from tg's seeded generator (`manual_seed`)."""
        data = _Random.draw().standard_normal(_shape_arg(shape))
        return Tensor(data, dtype=dt.to_dtype(dtype), device=device, requires_grad=requires_grad)

    @staticmethod
    def linspace(start: float, end: float, steps: int, dtype: Optional[Union[DType, str]] = None,
                 device: Optional[str] = None) -> Tensor:
        """`steps` evenly spaced values from start to end inclusive."""
        return Tensor(np.linspace(start, end, steps), dtype=dt.to_dtype(dtype), device=device)

    @staticmethod
    def randint(low: int, high: Optional[int] = None, size: Sequence[int] = (),
                dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None) -> Tensor:
        """Integers in [low, high) (or [0, low) when high is None), int64 by default."""
        lo, hi = (0, low) if high is None else (low, high)
        return Tensor(_Random.draw().integers(lo, hi, tuple(size)), dtype=dt.to_dtype(dtype, dt.int64),
                      device=device)

    @staticmethod
    def normal(mean: float = 0.0, std: float = 1.0, size: Sequence[int] = (), dtype: Optional[Union[DType, str]] = None,
               device: Optional[str] = None, requires_grad: bool = False) -> Tensor:
        """Samples of N(mean, std^2)."""
        return Tensor(_Random.draw().normal(mean, std, tuple(size)), dtype=dt.to_dtype(dtype), device=device,
                      requires_grad=requires_grad)

    @staticmethod
    def uniform(low: float = 0.0, high: float = 1.0, size: Sequence[int] = (),
                dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None,
                requires_grad: bool = False) -> Tensor:
        """Samples of U[low, high)."""
        return Tensor(_Random.draw().uniform(low, high, tuple(size)), dtype=dt.to_dtype(dtype), device=device,
                      requires_grad=requires_grad)

    def rand_like(self) -> Tensor:
        return Tensor.rand(*self.shape, dtype=self.dtype, device=self.device)

    def randn_like(self) -> Tensor:
        return Tensor.randn(*self.shape, dtype=self.dtype, device=self.device)

    @staticmethod
    def _fans(shape: Sequence[int]) -> tuple[int, int]:
        receptive = math.prod(shape[2:])
        return (shape[1] * receptive if len(shape) > 1 else shape[0]), shape[0] * receptive

    @staticmethod
    def kaiming_uniform(*shape: Any, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                        device: Optional[str] = None, requires_grad: bool = False) -> Tensor:
        """torch.nn.init.kaiming_uniform_'s distribution (what nn.Linear and nn.Conv2d use with a=sqrt(5))."""
        shape = _shape_arg(shape)
        fan_in, fan_out = Tensor._fans(shape)
        bound = _gain(nonlinearity, a) * math.sqrt(3.0 / (fan_in if mode == "fan_in" else fan_out))
        return Tensor.uniform(-bound, bound, shape, device=device, requires_grad=requires_grad)

    @staticmethod
    def kaiming_normal(*shape: Any, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                       device: Optional[str] = None, requires_grad: bool = False) -> Tensor:
        shape = _shape_arg(shape)
        fan_in, fan_out = Tensor._fans(shape)
        std = _gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)
        return Tensor.normal(0.0, std, shape, device=device, requires_grad=requires_grad)

    @staticmethod
    def xavier_uniform(*shape: Any, gain: float = 1.0, device: Optional[str] = None,
                       requires_grad: bool = False) -> Tensor:
        shape = _shape_arg(shape)
        fan_in, fan_out = Tensor._fans(shape)
        bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
        return Tensor.uniform(-bound, bound, shape, device=device, requires_grad=requires_grad)

    @staticmethod
    def xavier_normal(*shape: Any, gain: float = 1.0, device: Optional[str] = None,
                      requires_grad: bool = False) -> Tensor:
        shape = _shape_arg(shape)
        fan_in, fan_out = Tensor._fans(shape)
        return Tensor.normal(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), shape, device=device,
                             requires_grad=requires_grad)

    @staticmethod
    def from_numpy(array: np.ndarray, device: Optional[str] = None) -> Tensor:
        """A tensor holding a copy of `array`, keeping its dtype."""
        return Tensor(array, device=device)

    # ---- realizing and reading data -----------------------------------------------------------------
    def realize(self, *others: Tensor) -> Tensor:
        """Compute this tensor (and `others`) now; returns self. Work is queued on the device."""
        _realize_nodes([t.node for t in (self, *others)])
        return self

    def numpy(self) -> np.ndarray:
        """A NumPy copy of the data."""
        from .numpy_device import strided

        self.realize()
        base = self.node.base
        flat = base.buffer.numpy()
        return np.array(strided(flat, self.node.view)).reshape(self.shape)

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    def item(self) -> Scalar:
        """The value of a one-element tensor as a Python number."""
        if self.numel() != 1:
            raise RuntimeError(f"item: a Tensor with {self.numel()} elements cannot be converted to a Scalar")
        return self.numpy().reshape(()).item()

    def tolist(self) -> Any:
        """The data as (nested) Python lists."""
        return self.numpy().tolist()

    def __bool__(self) -> bool:
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of a Tensor with {self.numel()} elements is ambiguous")
        return bool(self.item())

    def __repr__(self) -> str:
        arr = self.numpy()
        body = np.array2string(arr, separator=", ", prefix="tensor(", threshold=1000, edgeitems=3,
                               formatter=_torch_formatter(arr))  # type: ignore[arg-type]
        extras = []
        if self.device != registry.default:
            extras.append(f"device='{self.device}'")
        if self.dtype not in (dt.float32, dt.int64, dt.bool_):
            extras.append(f"dtype={self.dtype!r}")
        if self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}{''.join(', ' + e for e in extras)})"

    def __dlpack__(self, stream: Any = None) -> Any:
        """DLPack export of a host copy (for np.from_dlpack, torch.from_dlpack)."""
        return self.numpy().__dlpack__()

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)  # kDLCPU: the export above is always a host copy

    def to(self, device: Optional[Union[str, DType]] = None, dtype: Optional[Union[DType, str]] = None) -> Tensor:
        """The tensor on `device` and/or cast to `dtype` (self if nothing changes)."""
        out = self
        if isinstance(device, DType) or (isinstance(device, str) and device.strip().lower() in dt._BY_NAME):
            device, dtype = None, device  # x.to(tg.core.uint8), x.to("float16"), as in torch
        if dtype is not None:
            out = out.cast(dt.to_dtype(dtype))
        if device is not None and canonical_name(device) != self.device:
            name = canonical_name(device)
            get_device(name)  # fail here, naming the device, rather than inside the schedule
            out = out._apply(F.Copy, device=name)
        return out

    def cpu(self) -> Tensor:
        """The tensor on the NumPy device."""
        return self.to("numpy")

    # ---- autograd ---------------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not self.dtype.is_float:
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients, not {self.dtype.name}")
        self.requires_grad = requires_grad
        return self

    def detach(self) -> Tensor:
        """The same data, cut off from the autograd graph."""
        return Tensor(self.node)

    def backward(self, gradient: Optional[Tensor] = None, retain_graph: bool = False) -> None:
        """Accumulate gradients of this tensor into `.grad` of the leaves that require them."""
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no input had requires_grad=True)")
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError(f"backward: grad can be implicitly created only for scalar outputs, "
                                   f"got shape {self.shape}; pass gradient=")
            grad = self.node.const_like(1.0)
        else:
            if gradient.shape != self.shape:
                raise RuntimeError(f"backward: gradient shape {gradient.shape} does not match {self.shape}")
            grad = gradient.node.cast(self.dtype)
        F.backward(self, grad, retain_graph)

    def _apply(self, fn: type[F.Function], *others: Tensor, **kwargs: Any) -> Tensor:
        ctx = fn(self, *others)
        out = Tensor(ctx.forward(self.node, *(o.node for o in others), **kwargs))
        stats.counters.ops += 1
        if ctx.requires_grad and GRAD_MODE.enabled:
            out.requires_grad, out._ctx = True, ctx
        return out

    # ---- elementwise: the primitives ----------------------------------------------------------------
    def _float(self) -> Tensor:
        return self if self.dtype.is_float else self.cast(dt.default_float)

    def neg(self) -> Tensor:
        """-x"""
        if self.dtype == dt.bool_:
            raise RuntimeError("neg: negation, the `-` operator, on a bool tensor is not supported; to invert a mask "
                               "use the `~` operator or logical_not()")
        return self._apply(F.Neg)

    def reciprocal(self) -> Tensor:
        """1 / x"""
        return self._float()._apply(F.Recip)

    def sqrt(self) -> Tensor:
        return self._float()._apply(F.Sqrt)

    def exp2(self) -> Tensor:
        return self._float()._apply(F.Exp2)

    def log2(self) -> Tensor:
        return self._float()._apply(F.Log2)

    def sin(self) -> Tensor:
        return self._float()._apply(F.Sin)

    def cast(self, dtype: Union[DType, str]) -> Tensor:
        """The values converted to `dtype` (floats to ints truncate toward zero)."""
        dtype = dt.to_dtype(dtype)
        if dtype == self.dtype:
            return self
        _check_dtype(dtype, self.device)
        if self.requires_grad and not dtype.is_float:
            return self.detach()._apply(F.Cast, dtype=dtype)
        return self._apply(F.Cast, dtype=dtype)

    def clone(self) -> Tensor:
        """A copy with its own buffer (torch.clone); gradients flow through it."""
        return self._apply(F.Clone)

    def contiguous(self) -> Tensor:
        """A tensor whose data is laid out in its own buffer (a view is copied when realized)."""
        return self._apply(F.Contiguous)

    def _binary(self, op: str, other: TensorLike, reverse: bool = False,
                result: Optional[DType] = None) -> tuple[Tensor, Tensor]:
        """Both operands promoted to one dtype (torch's rules, or `result`) and broadcast to one shape."""
        if isinstance(other, Tensor):
            if other.device != self.device:
                raise RuntimeError(f"{op}: tensors are on different devices, {self.device!r} and "
                                   f"{other.device!r}; move one with .to(device)")
            dtype = result or dt.promote(self.dtype, other.dtype)
            y = other.cast(dtype)
        elif isinstance(other, (int, float, bool, np.number)):
            other = other.item() if isinstance(other, np.number) else other
            dtype = result or dt.scalar_result_type(self.dtype, other)
            x, y = self.cast(dtype), Tensor(const(other, dtype, self.shape, self.device))  # already broadcast
            return (y, x) if reverse else (x, y)
        else:
            raise TypeError(f"{op}: unsupported operand type {type(other).__name__}")
        x = self.cast(dtype)
        x, y = (y, x) if reverse else (x, y)
        shape = broadcast_shape(op, x.shape, y.shape)
        return x._broadcast_to(shape), y._broadcast_to(shape)

    def _broadcast_to(self, shape: Shape) -> Tensor:
        if self.shape == shape:
            return self
        x = self.reshape((1,) * (len(shape) - self.ndim) + self.shape) if self.ndim < len(shape) else self
        return x._apply(F.Expand, shape=tuple(shape))

    def add(self, other: TensorLike, alpha: Scalar = 1) -> Tensor:
        """x + alpha * other"""
        x, y = self._binary("add", other if alpha == 1 else other * alpha)
        return x._apply(F.Add, y)

    def sub(self, other: TensorLike, alpha: Scalar = 1) -> Tensor:
        """x - alpha * other"""
        other_bool = other.dtype == dt.bool_ if isinstance(other, Tensor) else isinstance(other, bool)
        if self.dtype == dt.bool_ and other_bool:
            raise RuntimeError("sub: subtraction, the `-` operator, with two bool tensors is not supported; use the "
                               "`^` operator or logical_xor() instead")
        x, y = self._binary("sub", other if alpha == 1 else other * alpha)
        return x._apply(F.Add, y.neg())

    def mul(self, other: TensorLike) -> Tensor:
        x, y = self._binary("mul", other)
        return x._apply(F.Mul, y)

    def div(self, other: TensorLike, rounding_mode: Optional[str] = None) -> Tensor:
        """True division (floats); rounding_mode "trunc" or "floor" as torch.div."""
        if rounding_mode is not None:
            return self._int_div(other, rounding_mode)
        x, y = self._binary("div", other)
        x, y = x._float(), y._float()
        return x._apply(F.Div, y)

    def _int_div(self, other: TensorLike, mode: str, reverse: bool = False) -> Tensor:
        _check_python_zero("div", self, other, reverse)
        x, y = self._binary("div", other, reverse)
        if x.dtype.is_float:
            return _floor_divide(x, y) if mode == "floor" else x.div(y).trunc()
        q = x._nograd(Op.IDIV, y)
        if mode == "trunc":
            return q
        if mode != "floor":
            raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {mode!r}")
        r = x._nograd(Op.MOD, y)
        needs_fix = (r != 0).logical_and((r < 0) != (y < 0))
        return needs_fix.if_else(q - 1, q)

    def _nograd(self, op: Op, other: Tensor) -> Tensor:
        return self._apply(F.NoGradBinary, other, op=op).detach()

    def maximum(self, other: TensorLike) -> Tensor:
        x, y = self._binary("maximum", other)
        return x._apply(F.Max, y)

    def minimum(self, other: TensorLike) -> Tensor:
        """Elementwise minimum; NaN wins, as in torch. Integers go through ~max(~x, ~y): bitwise not reverses the
        order without overflowing, where -max(-x, -y) wraps at the smallest int and for every unsigned value."""
        x, y = self._binary("minimum", other)
        if x.dtype == dt.bool_:
            return x.logical_and(y)
        if not x.dtype.is_float:
            return ~((~x)._apply(F.Max, ~y))
        return x.neg()._apply(F.Max, y.neg()).neg()

    def where(self, condition: TensorLike, other: TensorLike) -> Tensor:
        """This tensor where `condition` holds, else `other` (torch.Tensor.where; tg.core.where(cond, x, y) is
        torch.where). tg's own code reads as `cond.if_else(x, y)`."""
        if not isinstance(condition, Tensor):
            condition = Tensor(const(bool(condition), dt.bool_, (), self.device))
        return condition.if_else(self, other)

    def if_else(self, x: TensorLike, y: TensorLike) -> Tensor:
        """`x` where this (a condition) is true, else `y`: tinygrad's `cond.where(x, y)`, spelled so that it cannot
        be mistaken for torch's `x.where(cond, y)`."""
        for v in (x, y):
            if isinstance(v, Tensor) and v.device != self.device:
                raise RuntimeError(f"where: the condition is on {self.device!r} and a value on {v.device!r}; move "
                                   "one with .to(device)")
        cond = self.cast(dt.bool_)
        if not isinstance(x, Tensor):
            x = Tensor(const(x, y.dtype if isinstance(y, Tensor) else dt.scalar_result_type(dt.bool_, x), (),
                             self.device)) if not isinstance(x, bool) else Tensor(const(x, dt.bool_, (), self.device))
        xb, yb = x._binary("where", y)
        shape = broadcast_shape("where", cond.shape, xb.shape)
        return cond._broadcast_to(shape)._apply(F.Where, xb._broadcast_to(shape), yb._broadcast_to(shape))

    # comparisons and logic: no gradients
    def _compare(self, op: str, other: TensorLike, reverse: bool = False) -> Tensor:
        x, y = self._binary(op, other, reverse)
        if op in ("gt", "le"):
            x, y = y, x
        if op in ("le", "ge") and x.dtype.is_float:  # x >= y is not !(x < y): both are false when one is NaN
            return y._nograd(Op.CMPLT, x).logical_or(x._nograd(Op.CMPEQ, y))
        prim = Op.CMPLT if op in ("lt", "gt", "le", "ge") else Op.CMPEQ
        out = x._nograd(prim, y)
        return out.logical_not() if op in ("le", "ge", "ne") else out

    def lt(self, other: TensorLike) -> Tensor:
        return self._compare("lt", other)

    def gt(self, other: TensorLike) -> Tensor:
        return self._compare("gt", other)

    def le(self, other: TensorLike) -> Tensor:
        return self._compare("le", other)

    def ge(self, other: TensorLike) -> Tensor:
        return self._compare("ge", other)

    def eq(self, other: TensorLike) -> Tensor:
        return self._compare("eq", other)

    def ne(self, other: TensorLike) -> Tensor:
        return self._compare("ne", other)

    def logical_not(self) -> Tensor:
        return self.cast(dt.bool_)._nograd(Op.CMPEQ, Tensor(const(False, dt.bool_, (), self.device))
                                           ._broadcast_to(self.shape))

    def logical_and(self, other: TensorLike) -> Tensor:
        x, y = self._binary("logical_and", other, result=dt.bool_)
        return x._nograd(Op.AND, y)

    def logical_or(self, other: TensorLike) -> Tensor:
        x, y = self._binary("logical_or", other, result=dt.bool_)
        return x._nograd(Op.OR, y)

    def logical_xor(self, other: TensorLike) -> Tensor:
        x, y = self._binary("logical_xor", other, result=dt.bool_)
        return x._nograd(Op.XOR, y)

    # ---- elementwise: compositions ----------------------------------------------------------------
    def exp(self) -> Tensor:
        return (self._float() * (1 / math.log(2))).exp2()

    def log(self) -> Tensor:
        return self._float().log2() * math.log(2)

    def rsqrt(self) -> Tensor:
        return self.sqrt().reciprocal()

    def cos(self) -> Tensor:
        """1 - 2 sin^2(x/2): x/2 is exact, so large arguments keep their value (pi/2 - x would round it away)."""
        half = (self._float() * 0.5).sin()
        return 1 - 2 * half * half

    def tan(self) -> Tensor:
        return self.sin() / self.cos()

    def square(self) -> Tensor:
        return self * self

    def abs(self) -> Tensor:
        return self.maximum(-self) if self.dtype != dt.bool_ else self

    def _constant_of(self, value: Tensor) -> Tensor:
        """`value` (computed without gradients) still linked to self with a zero gradient, as torch's piecewise
        constant functions (sign, x**0) are: backward() through them works and gives zeros."""
        if not self.requires_grad:
            return value
        never = Tensor(const(False, dt.bool_, (), self.device))._broadcast_to(self.shape)
        return never.if_else(self, value.detach().cast(self.dtype))

    def sign(self) -> Tensor:
        """-1, 0 or 1 by the sign (NaN gives 0, -0.0 gives -0.0, as in torch); its gradient is zero."""
        if self.dtype == dt.bool_:
            return self
        x = self.detach()
        s = (x > 0).cast(self.dtype) - (x < 0).cast(self.dtype) if self.dtype.kind != "u" else (x > 0).cast(self.dtype)
        if self.dtype.is_float:
            s = (x == 0).if_else(x, s)
        return self._constant_of(s)

    def relu(self) -> Tensor:
        """max(x, 0) with NaN kept (torch.relu(nan) is nan) and a zero gradient at 0, from ops that keep 0 at 0
        (so zero padding still fuses through it)."""
        return self._apply(F.Relu) if self.dtype.is_float else self.maximum(0)

    def sigmoid(self) -> Tensor:
        """1 / (1 + exp(-x)), from e = exp(-|x|) <= 1 so that no intermediate value (or gradient) overflows."""
        x = self._float()
        e = (x < 0).if_else(x, -x).exp()  # -|x|, chosen by a select so the gradient at 0 is one-sided, not 0
        return (x < 0).if_else(e, 1) / (1 + e)

    def tanh(self) -> Tensor:
        """(1 - e) / (1 + e) with e = exp(-2|x|) <= 1, signed: exact limits and finite gradients everywhere.
        Below |x| = 1/16, where 1 - e would cancel, the Taylor series to x^7 (float64-accurate there)."""
        x = self._float()
        a = (x < 0).if_else(-x, x)  # |x| with a one-sided gradient at 0
        e = (-2 * a).exp()
        x2 = x * x
        series = x * (1 - x2 * (1 / 3 - x2 * (2 / 15 - x2 * (17 / 315))))
        magnitude = (1 - e) / (1 + e)
        return (a < 0.0625).if_else(series, (x < 0).if_else(-magnitude, magnitude))

    def trunc(self) -> Tensor:
        """Round toward zero. Floats at or beyond 2**mantissa bits are integers already (and inf and NaN stay
        as they are): only the smaller ones go through an int64 cast, which could not hold the others."""
        if not self.dtype.is_float:
            return self
        exact = float(2 ** {2: 10, 4: 23, 8: 52}[self.dtype.itemsize])
        return (self.abs() < exact).if_else(self.cast(dt.int64).cast(self.dtype), self)

    def floor(self) -> Tensor:
        t = self.trunc()
        return (self < t).if_else(t - 1, t) if self.dtype.is_float else t

    def ceil(self) -> Tensor:
        t = self.trunc()
        return (self > t).if_else(t + 1, t) if self.dtype.is_float else t

    def clamp(self, min: Optional[TensorLike] = None, max: Optional[TensorLike] = None) -> Tensor:  # noqa: A002
        """Limit values to [min, max] (NaN stays NaN). As in torch, the gradient passes where min <= x <= max,
        boundaries included, and goes to a tensor bound where it is the one taken."""
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        out = self
        if min is not None:
            low = out < min
            if isinstance(min, Tensor) and min.dtype.is_float:
                low = low.logical_or(min.isnan())  # a NaN bound gives NaN, as in torch
            out = low.if_else(min, out)
        if max is not None:
            high = out > max
            if isinstance(max, Tensor) and max.dtype.is_float:
                high = high.logical_or(max.isnan())
            out = high.if_else(max, out)
        return out

    clip = clamp

    def pow(self, exponent: TensorLike) -> Tensor:
        """x ** exponent: exact repeated products for small integer powers, exp2/log2 otherwise."""
        if isinstance(exponent, (int, float)) and not isinstance(exponent, bool) and float(exponent).is_integer() \
                and abs(exponent) <= 64:
            n, base, out = abs(int(exponent)), self, None
            while n:
                if n & 1:
                    out = base if out is None else out * base
                n >>= 1
                if n:
                    base = base * base
            if out is None:  # x ** 0 is 1, NaN and inf included; its gradient is zero
                return self._constant_of(self.ones_like())
            return out.reciprocal() if exponent < 0 else out
        x, e = self._binary("pow", exponent)
        x, e = x._float(), e._float()
        # C's pow for the special cases: x**0 = 1 and 1**y = 1 (even NaN), (-1)**(+-inf) = 1, a negative finite base
        # to a non-integer power is NaN, -inf to a non-integer power is +inf (or +0 for y < 0)
        one = (e == 0).logical_or(x == 1).logical_or((x.abs() == 1).logical_and(e.isinf()))
        safe_x = one.if_else(1.0, x)  # keeps log2(0) * 0 and inf * 0 out of the value and the gradient
        magnitude = (e * safe_x.abs().log2()).exp2()
        odd = (e.abs() % 2 == 1)
        sign = ((x < 0).logical_and(odd)).if_else(-1.0, 1.0)
        integral = e.floor() == e
        undefined = (x < 0).logical_and(x.isfinite()).logical_and(integral.logical_not())
        return one.if_else(1.0, undefined.if_else(math.nan, magnitude * sign))

    def __mod__(self, other: TensorLike) -> Tensor:
        _check_python_zero("remainder", self, other, False)
        x, y = self._binary("remainder", other)
        if x.dtype.is_float:
            return _float_remainder(x, y)
        r = x._nograd(Op.MOD, y)
        return ((r != 0).logical_and((r < 0) != (y < 0))).if_else(r + y, r)

    # operators
    def __add__(self, other: TensorLike) -> Tensor:
        return self.add(other)

    def __radd__(self, other: TensorLike) -> Tensor:
        x, y = self._binary("add", other, reverse=True)
        return x._apply(F.Add, y)

    def __sub__(self, other: TensorLike) -> Tensor:
        return self.sub(other)

    def __rsub__(self, other: TensorLike) -> Tensor:
        x, y = self._binary("sub", other, reverse=True)
        return x._apply(F.Add, y.neg())

    def __mul__(self, other: TensorLike) -> Tensor:
        return self.mul(other)

    def __rmul__(self, other: TensorLike) -> Tensor:
        x, y = self._binary("mul", other, reverse=True)
        return x._apply(F.Mul, y)

    def __truediv__(self, other: TensorLike) -> Tensor:
        return self.div(other)

    def __rtruediv__(self, other: TensorLike) -> Tensor:
        x, y = self._binary("div", other, reverse=True)
        return x._float()._apply(F.Div, y._float())

    def __floordiv__(self, other: TensorLike) -> Tensor:
        return self._int_div(other, "floor")

    def __rfloordiv__(self, other: TensorLike) -> Tensor:
        return self._int_div(other, "floor", reverse=True)

    def __pow__(self, exponent: TensorLike) -> Tensor:
        return self.pow(exponent)

    def __rpow__(self, base: TensorLike) -> Tensor:
        x, e = self._binary("pow", base, reverse=True)
        return x.pow(e)

    def __neg__(self) -> Tensor:
        return self.neg()

    def __matmul__(self, other: Tensor) -> Tensor:
        return self.matmul(other)

    def __rmatmul__(self, other: Tensor) -> Tensor:
        return other.matmul(self)

    def __lt__(self, other: TensorLike) -> Tensor:
        return self.lt(other)

    def __gt__(self, other: TensorLike) -> Tensor:
        return self.gt(other)

    def __le__(self, other: TensorLike) -> Tensor:
        return self.le(other)

    def __ge__(self, other: TensorLike) -> Tensor:
        return self.ge(other)

    def __eq__(self, other: TensorLike) -> Tensor:  # type: ignore[override]
        return self.eq(other)

    def __ne__(self, other: TensorLike) -> Tensor:  # type: ignore[override]
        return self.ne(other)

    def __invert__(self) -> Tensor:
        if self.dtype == dt.bool_:
            return self.logical_not()
        ones = -1 if self.dtype.kind == "i" else int(np.iinfo(self.dtype.np).max)  # every bit set
        return self._nograd(Op.XOR, Tensor(const(ones, self.dtype, (), self.device))._broadcast_to(self.shape))

    def __and__(self, other: TensorLike) -> Tensor:
        x, y = self._binary("bitwise_and", other)
        return x._nograd(Op.AND, y)

    def __or__(self, other: TensorLike) -> Tensor:
        x, y = self._binary("bitwise_or", other)
        return x._nograd(Op.OR, y)

    def __xor__(self, other: TensorLike) -> Tensor:
        x, y = self._binary("bitwise_xor", other)
        return x._nograd(Op.XOR, y)

    __hash__ = object.__hash__

    # ---- reductions ---------------------------------------------------------------------------------
    def _dim(self, dim: int, ndim: Optional[int] = None) -> int:
        n = self.ndim if ndim is None else ndim
        lo, hi = (-max(n, 1), max(n, 1) - 1)
        if not lo <= dim <= hi:
            raise IndexError(f"Dimension out of range (expected to be in range of [{lo}, {hi}], but got {dim})")
        return dim % max(n, 1)

    def _axes(self, dim: Optional[Union[int, Sequence[int]]]) -> tuple[int, ...]:
        if dim is None:
            return tuple(range(self.ndim))
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        if self.ndim == 0:  # a 0-d tensor accepts dim 0 or -1 (torch), and has nothing to reduce
            for d in dims:
                self._dim(d)
            return ()
        return tuple(sorted({self._dim(d) for d in dims}))

    def _reduce(self, fn: type[F.Function], dim: Optional[Union[int, Sequence[int]]], keepdim: bool) -> Tensor:
        axes = self._axes(dim)
        if self.ndim == 0:
            return self
        out = self._apply(fn, axes=axes)
        if keepdim:
            return out
        return out.reshape(tuple(n for i, n in enumerate(self.shape) if i not in axes))

    def sum(self, dim: Optional[Union[int, Sequence[int]]] = None, keepdim: bool = False,
            dtype: Optional[Union[DType, str]] = None, axis: Optional[Union[int, Sequence[int]]] = None) -> Tensor:
        """Sum over `dim` (all dims when None). Bool and int tensors sum as int64, like torch."""
        dim = axis if dim is None else dim
        x = self.cast(dtype) if dtype is not None else (self.cast(dt.int64) if not self.dtype.is_float else self)
        if x.dtype == dt.float16:  # accumulate halves in float32, as torch does; the casts fuse into the kernel
            return x.cast(dt.float32)._reduce(F.Sum, dim, keepdim).cast(dt.float16)
        return x._reduce(F.Sum, dim, keepdim)

    def mean(self, dim: Optional[Union[int, Sequence[int]]] = None, keepdim: bool = False,
             axis: Optional[Union[int, Sequence[int]]] = None) -> Tensor:
        """Mean over `dim` (all dims when None)."""
        dim = axis if dim is None else dim
        if not self.dtype.is_float:
            raise RuntimeError(f"mean: could not infer output dtype; input dtype {self.dtype.name} must be floating "
                               "point. Cast with .float() first.")
        count = math.prod(self.shape[a] for a in self._axes(dim)) if self.ndim else 1
        if self.dtype == dt.float16:  # sum and scale in float32 (torch's accumulate type), then round once
            return (self.cast(dt.float32).sum(dim, keepdim) * (1.0 / count if count else math.nan)).cast(dt.float16)
        return self.sum(dim, keepdim) * (1.0 / count if count else math.nan)

    def amax(self, dim: Optional[Union[int, Sequence[int]]] = None, keepdim: bool = False) -> Tensor:
        """Maximum over `dim`; ties share the gradient evenly."""
        axes = self._axes(dim)
        if any(self.shape[a] == 0 for a in axes):
            raise RuntimeError(f"amax: cannot reduce over a zero-size dim of a tensor of shape {self.shape}; "
                               "the maximum of nothing is undefined")
        return self._reduce(F.ReduceMax, dim, keepdim)

    def amin(self, dim: Optional[Union[int, Sequence[int]]] = None, keepdim: bool = False) -> Tensor:
        """Minimum over `dim` (integers as ~amax(~x): no wrap at the limits)."""
        if self.dtype == dt.bool_:
            return self.logical_not().amax(dim, keepdim).logical_not()
        return -((-self).amax(dim, keepdim)) if self.dtype.is_float else ~((~self).amax(dim, keepdim))

    def max(self, dim: Optional[Union[int, Tensor]] = None, keepdim: bool = False) -> Any:
        """The maximum of all elements; with `dim`, (values, indices) like torch; with a tensor, maximum."""
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        if dim is None:
            return self.amax()
        return ValuesIndices(self.amax(dim, keepdim), self.argmax(dim, keepdim))

    def min(self, dim: Optional[Union[int, Tensor]] = None, keepdim: bool = False) -> Any:
        """The minimum of all elements; with `dim`, (values, indices) like torch; with a tensor, minimum."""
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        if dim is None:
            return self.amin()
        return ValuesIndices(self.amin(dim, keepdim), self.argmin(dim, keepdim))

    def softmax(self, dim: int = -1) -> Tensor:
        if self.numel() == 0:  # nothing to normalise (torch returns the empty tensor)
            return self._float() * 1
        e = (self - self.amax(dim, keepdim=True).detach()).exp()
        return e / e.sum(dim, keepdim=True)

    def log_softmax(self, dim: int = -1) -> Tensor:
        if self.numel() == 0:
            return self._float() * 1
        shifted = self - self.amax(dim, keepdim=True).detach()
        return shifted - shifted.exp().sum(dim, keepdim=True).log()

    def logsumexp(self, dim: Optional[Union[int, Sequence[int]]] = None, keepdim: bool = False) -> Tensor:
        if any(self.shape[a] == 0 for a in self._axes(dim)):  # the log of an empty sum: -inf (torch)
            return self._float().sum(dim, keepdim=keepdim) - math.inf
        m = self.amax(dim, keepdim=True).detach()
        m = m.isinf().if_else(0, m)  # all -inf (or an inf) in a slice: shift by 0, so inf - inf never makes NaN
        out = (self - m).exp().sum(dim, keepdim=True).log() + m
        return out if keepdim else out.reshape(tuple(n for i, n in enumerate(self.shape) if i not in self._axes(dim)))

    # ---- movement ------------------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> Tensor:
        """The same elements in a new shape; one dim may be -1. Costs no kernel where a view suffices."""
        new = list(_shape_arg(shape))
        if new.count(-1) > 1:
            raise RuntimeError(f"reshape: only one dimension can be inferred, got shape {tuple(new)}")
        if -1 in new:
            known = math.prod(n for n in new if n != -1)
            if known == 0 or self.numel() % known:
                raise RuntimeError(f"reshape: shape {tuple(new)} is invalid for input of size {self.numel()}")
            new[new.index(-1)] = self.numel() // known
        if any(n < 0 for n in new) or math.prod(new) != self.numel():
            raise RuntimeError(f"reshape: shape {tuple(new)} is invalid for input of shape {self.shape} "
                               f"({self.numel()} elements)")
        return self._apply(F.Reshape, shape=tuple(new)) if tuple(new) != self.shape else self

    view = reshape

    def permute(self, *dims: Any) -> Tensor:
        order = tuple(self._dim(d) for d in _shape_arg(dims)) if dims else ()
        if sorted(order) != list(range(self.ndim)):
            raise RuntimeError(f"permute: dims {tuple(_shape_arg(dims))} are not a permutation of the "
                               f"{self.ndim} dims of shape {self.shape}")
        return self._apply(F.Permute, order=order)

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        order = list(range(self.ndim))
        a, b = self._dim(dim0), self._dim(dim1)
        order[a], order[b] = order[b], order[a]
        return self.permute(*order)

    def expand(self, *shape: Any) -> Tensor:
        """Repeat size-1 dims to `shape` without copying (-1 keeps a dim)."""
        new = _shape_arg(shape)
        if len(new) < self.ndim:
            raise RuntimeError(f"expand: the number of sizes provided ({len(new)}) must be greater or equal to "
                               f"the number of dimensions in the tensor ({self.ndim})")
        old = (1,) * (len(new) - self.ndim) + self.shape
        target = tuple(o if n == -1 else n for o, n in zip(old, new))
        for o, n in zip(old, target):
            if o != n and o != 1:
                raise RuntimeError(f"expand: the expanded size of the tensor ({n}) must match the existing size "
                                   f"({o}) at a non-singleton dimension; shape {self.shape} -> {tuple(new)}")
        return self._broadcast_to(target)

    def expand_as(self, other: Tensor) -> Tensor:
        return self.expand(other.shape)

    def _pad_dims(self, padding: Sequence[tuple[int, int]]) -> Tensor:
        """Zero padding, (before, after) per dim; negative amounts crop."""
        padding = tuple((int(b), int(a)) for b, a in padding)
        crop = tuple((max(0, -b), n - max(0, -a), 1) for (b, a), n in zip(padding, self.shape))
        x = self.shrink(crop) if any(b < 0 or a < 0 for b, a in padding) else self
        grow = tuple((max(0, b), max(0, a)) for b, a in padding)
        return x._apply(F.Pad, padding=grow) if any(b or a for b, a in grow) else x

    def pad(self, padding: Sequence[int], mode: str = "constant", value: Scalar = 0) -> Tensor:
        """Pad with torch.nn.functional.pad's order: (left, right) of the last dim, then the dim before..."""
        if len(padding) % 2 or len(padding) // 2 > self.ndim:
            raise RuntimeError(f"pad: padding {tuple(padding)} must have an even length of at most "
                               f"2 * ndim = {2 * self.ndim}")
        pairs = [(0, 0)] * self.ndim
        for i in range(len(padding) // 2):
            pairs[self.ndim - 1 - i] = (padding[2 * i], padding[2 * i + 1])
        if mode != "constant":
            return self._pad_mode(pairs, mode)
        out = self._pad_dims(pairs)
        if value == 0:
            return out
        inside = self.ones_like(dt.bool_)._pad_dims(pairs)
        return inside.if_else(out, value)

    def _pad_mode(self, pairs: list[tuple[int, int]], mode: str) -> Tensor:
        """reflect, replicate and circular padding, built from slices, flips and cat; negative amounts crop first."""
        x = self._pad_dims([(min(b, 0), min(a, 0)) for b, a in pairs])
        for d, (before, after) in enumerate((max(b, 0), max(a, 0)) for b, a in pairs):
            n = x.shape[d]
            if not before and not after:
                continue
            if mode == "reflect":
                if before >= n or after >= n:
                    raise RuntimeError(f"pad: reflect padding ({before}, {after}) must be smaller than the dim "
                                       f"size {n}")
                left, right = x.narrow(d, 1, before).flip(d), x.narrow(d, n - 1 - after, after).flip(d)
            elif mode == "replicate":
                shape = list(x.shape)
                left = x.narrow(d, 0, 1).expand(*shape[:d], before, *shape[d + 1:])
                right = x.narrow(d, n - 1, 1).expand(*shape[:d], after, *shape[d + 1:])
            elif mode == "circular":
                if before > n or after > n:
                    raise RuntimeError(f"pad: circular padding ({before}, {after}) can be at most the dim size {n}")
                left, right = x.narrow(d, n - before, before), x.narrow(d, 0, after)
            else:
                raise NotImplementedError(f"pad: mode {mode!r} is not supported; use constant, reflect, replicate "
                                          "or circular")
            x = left.cat(x, right, dim=d)
        return x

    def shrink(self, bounds: Sequence[Optional[tuple[int, ...]]]) -> Tensor:
        """Keep `range(lo, hi[, step])` of each dim (None keeps a dim whole); a view, no kernel."""
        full = tuple((0, n, 1) if b is None else (int(b[0]), int(b[1]), int(b[2]) if len(b) > 2 else 1)
                     for b, n in zip(bounds, self.shape))
        for (lo, hi, st), n in zip(full, self.shape):
            if not (0 <= lo <= hi <= n) or st < 1:
                raise RuntimeError(f"shrink: bounds {full} do not fit shape {self.shape}")
        return self._apply(F.Shrink, bounds=full)

    def flip(self, *dims: Any) -> Tensor:
        axes = tuple(sorted({self._dim(d) for d in _shape_arg(dims)}))
        return self._apply(F.Flip, axes=axes) if axes else self

    def squeeze(self, dim: Optional[Union[int, Sequence[int]]] = None) -> Tensor:
        axes = self._axes(dim) if dim is not None else tuple(range(self.ndim))
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if not (i in axes and n == 1)))

    def unsqueeze(self, dim: int) -> Tensor:
        d = self._dim(dim, self.ndim + 1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        if self.ndim == 0:
            return self.reshape(1)
        s, e = self._dim(start_dim), self._dim(end_dim)
        return self.reshape(self.shape[:s] + (math.prod(self.shape[s:e + 1]),) + self.shape[e + 1:])

    def __getitem__(self, index: Any) -> Tensor:
        """Indexing like torch: ints, slices (any step), None, Ellipsis (views, no kernel), and integer
        tensors, lists and boolean masks (a fused one-hot selection)."""
        return indexing.getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        """x[index] = value, for any index that x[index] accepts."""
        indexing.setitem(self, index, value)

    def _reduce_sum_keep(self, axes: tuple[int, ...]) -> Tensor:
        """Sum over axes keeping them as size 1, with no dtype promotion (for internal compositions)."""
        return self._apply(F.Sum, axes=axes) if axes else self

    def repeat(self, *repeats: Any) -> Tensor:
        """Tile the tensor `repeats` times along each dim (torch.Tensor.repeat)."""
        reps = _shape_arg(repeats)
        if len(reps) < self.ndim:
            raise RuntimeError(f"repeat: number of repeat dims ({len(reps)}) can not be smaller than the number of "
                               f"dims of the tensor ({self.ndim})")
        x = self.reshape((1,) * (len(reps) - self.ndim) + self.shape)
        expanded = x.reshape(*(v for n in x.shape for v in (1, n))).expand(*(v for r, n in zip(reps, x.shape)
                                                                             for v in (r, n)))
        return expanded.reshape(*(r * n for r, n in zip(reps, x.shape)))

    def roll(self, shifts: Union[int, Sequence[int]], dims: Optional[Union[int, Sequence[int]]] = None) -> Tensor:
        """Rotate elements along dims (the flattened tensor when dims is None)."""
        if dims is None:
            return self.flatten().roll(shifts, 0).reshape(self.shape)
        sh = (shifts,) if isinstance(shifts, int) else tuple(shifts)
        ds = (dims,) if isinstance(dims, int) else tuple(dims)
        x = self
        for s_, d in zip(sh, ds):
            d = x._dim(d)
            n = x.shape[d]
            if n == 0 or s_ % n == 0:
                continue
            k = s_ % n
            a = x.narrow(d, n - k, k)
            b = x.narrow(d, 0, n - k)
            x = a.cat(b, dim=d)
        return x

    def narrow(self, dim: int, start: int, length: int) -> Tensor:
        """`length` elements of `dim` from `start` (a view)."""
        d = self._dim(dim)
        start = start % self.shape[d] if start < 0 else start
        if start + length > self.shape[d] or length < 0:
            raise RuntimeError(f"narrow: start ({start}) + length ({length}) exceeds dimension size "
                               f"({self.shape[d]})")
        return self.shrink(tuple((start, start + length) if i == d else None for i in range(self.ndim)))

    def unflatten(self, dim: int, sizes: Sequence[int]) -> Tensor:
        d = self._dim(dim)
        return self.reshape(*self.shape[:d], *sizes, *self.shape[d + 1:])

    def movedim(self, source: int, destination: int) -> Tensor:
        s_, d = self._dim(source), self._dim(destination)
        order = [i for i in range(self.ndim) if i != s_]
        order.insert(d, s_)
        return self.permute(*order)

    def unfold(self, dimension: int, size: int, step: int) -> Tensor:
        """All windows of `size` along `dimension`, `step` apart, as a new last dim (torch.Tensor.unfold)."""
        d = self._dim(dimension)
        if size > self.shape[d] or size < 0 or step < 1:
            raise RuntimeError(f"unfold: size {size} and step {step} do not fit dimension {d} of size {self.shape[d]}")
        order = [i for i in range(self.ndim) if i != d] + [d]
        win = self.permute(*order)._apply(F.Window, arg=((size, step, 1),))  # (..., n_windows, size)
        back = list(range(self.ndim - 1))
        back.insert(d, self.ndim - 1)
        return win.permute(*back, self.ndim)

    # ---- joining and splitting --------------------------------------------------------------------
    def cat(self, *others: Tensor, dim: int = 0) -> Tensor:
        """Concatenate along `dim` (torch.cat([self, *others], dim)). One fused kernel of padded views."""
        tensors = [self, *others]
        for i, t in enumerate(tensors):
            if t.ndim == 0:
                raise RuntimeError(f"cat: zero-dimensional tensor (at position {i}) cannot be concatenated; use "
                                   "stack, or reshape it to (1,)")
        d = self._dim(dim)
        for t in tensors[1:]:
            if t.ndim != self.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, self.shape)) if i != d):
                raise RuntimeError(f"cat: shapes {self.shape} and {t.shape} differ outside dim {d}; every tensor "
                                   "must have the same shape except in the concatenated dim")
        dtype = tensors[0].dtype
        for t in tensors[1:]:
            dtype = dt.promote(dtype, t.dtype)
        total, offset, out = sum(t.shape[d] for t in tensors), 0, None
        for t in tensors:
            pads = [(0, 0)] * self.ndim
            pads[d] = (offset, total - offset - t.shape[d])
            part = t.cast(dtype)._pad_dims(pads)
            out = part if out is None else out + part
            offset += t.shape[d]
        assert out is not None
        return out

    def stack(self, *others: Tensor, dim: int = 0) -> Tensor:
        """Join along a new dim (torch.stack([self, *others], dim))."""
        d = self._dim(dim, self.ndim + 1)
        return self.unsqueeze(d).cat(*(t.unsqueeze(d) for t in others), dim=d)

    def split(self, split_size_or_sections: Union[int, Sequence[int]], dim: int = 0) -> list[Tensor]:
        """Pieces of `split_size` along `dim` (the last may be smaller), or of the listed sizes."""
        d = self._dim(dim)
        n = self.shape[d]
        if isinstance(split_size_or_sections, int):
            if split_size_or_sections <= 0:
                raise RuntimeError(f"split: split_size must be positive, got {split_size_or_sections}")
            sizes = [min(split_size_or_sections, n - i) for i in range(0, n, split_size_or_sections)] or [0]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != n:
                raise RuntimeError(f"split: sizes {sizes} do not add up to {n}, the size of dim {d}")
        out, start = [], 0
        for size in sizes:
            out.append(self.shrink(tuple((start, start + size) if i == d else None for i in range(self.ndim))))
            start += size
        return out

    def chunk(self, chunks: int, dim: int = 0) -> list[Tensor]:
        """`chunks` nearly equal pieces along `dim` (fewer if the dim is small), like torch.chunk."""
        n = self.shape[self._dim(dim)]
        return self.split(max(1, -(-n // chunks)), dim)

    # ---- convolution and pooling ----------------------------------------------------------------------
    def _spatial(self, op: str, nd: int, value: Union[int, Sequence[int]], name: str = "",
                 least: int = 0) -> tuple[int, ...]:
        """An int or nd ints as nd ints, each at least `least` (strides, dilations and kernels are positive)."""
        out = (value,) * nd if isinstance(value, int) else tuple(value)
        if len(out) != nd:
            raise RuntimeError(f"{op}: expected {nd} values{' for ' + name if name else ''}, got {value!r}")
        if any(v < least for v in out):
            raise RuntimeError(f"{op}: {name or 'every value'} must be at least {least}, got {value!r}")
        return out

    def _conv(self, op: str, nd: int, weight: Tensor, bias: Optional[Tensor], stride: Any, padding: Any,
              dilation: Any, groups: int) -> Tensor:
        x = self.unsqueeze(0) if self.ndim == nd + 1 else self
        if x.ndim != nd + 2 or weight.ndim != nd + 2:
            raise RuntimeError(f"{op}: expected input of {nd + 1} or {nd + 2} dims and weight of {nd + 2} dims, got "
                               f"input {self.shape} and weight {weight.shape}")
        c = x.shape[1]
        o, cg, ks = weight.shape[0], weight.shape[1], weight.shape[2:]
        if c != cg * groups or o % groups:
            raise RuntimeError(f"{op}: input {self.shape} with groups={groups} has {c} channels, weight "
                               f"{weight.shape} expects {cg * groups} (and out channels divisible by groups)")
        st, dil = self._spatial(op, nd, stride, "stride", 1), self._spatial(op, nd, dilation, "dilation", 1)
        if groups < 1:
            raise RuntimeError(f"{op}: groups must be positive, got {groups}")
        if any(k < 1 for k in ks):
            raise RuntimeError(f"{op}: the kernel {tuple(ks)} (weight {weight.shape}) has an empty spatial dim")
        if isinstance(padding, str):
            if padding == "valid":
                pads = [(0, 0)] * nd
            elif padding == "same":
                if any(s != 1 for s in st):
                    raise RuntimeError(f"{op}: padding='same' is not supported for strided convolutions")
                totals = [d * (k - 1) for d, k in zip(dil, ks)]
                pads = [(t // 2, t - t // 2) for t in totals]
            else:
                raise RuntimeError(f"{op}: padding must be 'valid', 'same', an int or a tuple, got {padding!r}")
        else:
            pads = [(p, p) for p in self._spatial(op, nd, padding, "padding")]
        for size, k, d, (lo, hi) in zip(x.shape[2:], ks, dil, pads):
            if size + lo + hi < d * (k - 1) + 1:
                raise RuntimeError(f"{op}: kernel {tuple(ks)} (dilation {dil}) is larger than the padded input "
                                   f"{tuple(n + a + b for n, (a, b) in zip(x.shape[2:], pads))}")
        weight = weight.cast(x.dtype) if weight.dtype != x.dtype else weight
        if nd == 2 and (x.requires_grad or weight.requires_grad) and GRAD_MODE.enabled:
            # one autograd rule for the whole convolution: its input gradient is a transposed convolution
            # (one contraction), not the windows' gradient scattered back offset by offset
            out = x._apply(fn.Conv2d, weight, stride=st, pads=tuple(pads), dilation=dil, groups=groups)
        else:
            out = fn.conv_tensors(x, weight, st, tuple(pads), dil, groups)
        if bias is not None:
            out = out + bias.reshape(1, o, *(1,) * nd)
        return out if self.ndim == nd + 2 else out.squeeze(0)

    def conv1d(self, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1, padding: Any = 0,
               dilation: Any = 1, groups: int = 1) -> Tensor:
        """1-D convolution (torch.nn.functional.conv1d): input (N, C, L), weight (O, C/groups, K)."""
        return self._conv("conv1d", 1, weight, bias, stride, padding, dilation, groups)

    def conv2d(self, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1, padding: Any = 0,
               dilation: Any = 1, groups: int = 1) -> Tensor:
        """2-D convolution (torch.nn.functional.conv2d): input (N, C, H, W), weight (O, C/groups, KH, KW).

        A sum over a sliding-window view of the input: no im2col copy is made for the compiled devices.
        """
        return self._conv("conv2d", 2, weight, bias, stride, padding, dilation, groups)

    def conv3d(self, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1, padding: Any = 0,
               dilation: Any = 1, groups: int = 1) -> Tensor:
        """3-D convolution (torch.nn.functional.conv3d): input (N, C, D, H, W), weight (O, C/groups, KD, KH, KW)."""
        return self._conv("conv3d", 3, weight, bias, stride, padding, dilation, groups)

    def _pool_windows(self, op: str, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool,
                      fill: float) -> tuple[Tensor, list[tuple[int, int]]]:
        """Padded sliding windows over the last two dims, and the (before, after) padding used."""
        if self.ndim not in (3, 4):
            raise RuntimeError(f"{op}: expected a 3-D or 4-D input, got shape {self.shape}")
        ks = self._spatial(op, 2, kernel_size, "kernel_size", 1)
        st = self._spatial(op, 2, stride if stride is not None and stride != [] else ks, "stride", 1)
        pd, dil = self._spatial(op, 2, padding, "padding"), self._spatial(op, 2, dilation, "dilation", 1)
        if any(p > k // 2 for p, k in zip(pd, ks)):
            raise RuntimeError(f"{op}: padding {pd} should be at most half of kernel size {ks}")
        pads = []
        for n, k, s, p, d in zip(self.shape[-2:], ks, st, pd, dil):
            span = n + 2 * p - d * (k - 1) - 1
            out = (-(-span // s) if ceil_mode else span // s) + 1
            if ceil_mode and (out - 1) * s >= n + p:  # the last window must start inside input or left padding
                out -= 1
            pads.append((p, (out - 1) * s + d * (k - 1) + 1 - n - p))
        padded = self._pad_dims([(0, 0)] * (self.ndim - 2) + pads)
        if fill != 0:
            inside = self.ones_like(dt.bool_)._pad_dims([(0, 0)] * (self.ndim - 2) + pads)
            padded = inside.if_else(padded, fill)
        return padded._windows(ks, st, dil), pads

    def _windows(self, ks: Sequence[int], st: Sequence[int], dil: Sequence[int]) -> Tensor:
        """Sliding windows over the last len(ks) dims: (..., *outs, *ks). Windows that tile the input
        exactly (stride == kernel, no dilation) are a reshape and a permute, so their gradient is a view too."""
        nd = len(ks)
        spatial = self.shape[-nd:]
        if all(s == k and d == 1 and n % k == 0 for n, k, s, d in zip(spatial, ks, st, dil)):
            lead = self.shape[:-nd]
            split = self.reshape(*lead, *(v for n, k in zip(spatial, ks) for v in (n // k, k)))
            b = len(lead)
            return split.permute(*range(b), *(b + 2 * i for i in range(nd)), *(b + 2 * i + 1 for i in range(nd)))
        return self._apply(F.Window, arg=tuple(zip(ks, st, dil)))

    def max_pool2d(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                   ceil_mode: bool = False, return_indices: bool = False) -> Any:
        """2-D max pooling (torch.nn.functional.max_pool2d), padding with -inf; with `return_indices`, also the
        flat (H*W) index of each maximum."""
        if return_indices:
            return fn.max_pool2d_with_indices(self, kernel_size, stride, padding, dilation, ceil_mode)
        fill = -math.inf if self.dtype.is_float else int(np.iinfo(self.dtype.np).min)
        win, _ = self._pool_windows("max_pool2d", kernel_size, stride, padding, dilation, ceil_mode, fill)
        return win.amax((-2, -1))

    def avg_pool2d(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                   count_include_pad: bool = True, divisor_override: Optional[int] = None) -> Tensor:
        """2-D average pooling (torch.nn.functional.avg_pool2d)."""
        x = self._float()
        win, pads = x._pool_windows("avg_pool2d", kernel_size, stride, padding, 1, ceil_mode, 0.0)
        total = win.sum((-2, -1))
        if divisor_override is not None:
            return total / divisor_override
        # how many positions each window covers: the input, plus the explicit padding if it counts
        ks = self._spatial("avg_pool2d", 2, kernel_size)
        st = self._spatial("avg_pool2d", 2, stride if stride is not None and stride != [] else ks)
        pd = self._spatial("avg_pool2d", 2, padding)
        if count_include_pad:
            ones = Tensor.ones(*(n + 2 * p for n, p in zip(self.shape[-2:], pd)), device=self.device)
            extra = [(0, after - p) for (_, after), p in zip(pads, pd)]
        else:
            ones, extra = Tensor.ones(*self.shape[-2:], device=self.device), pads
        counts = ones._pad_dims(extra)._apply(F.Window, arg=tuple(zip(ks, st, (1, 1)))).sum((-2, -1))
        return total / counts

    # ---- linear algebra ------------------------------------------------------------------------------
    def matmul(self, other: Tensor) -> Tensor:
        """Matrix product with torch's broadcasting and 1-D rules. Runs as one reduce-of-product kernel."""
        if self.ndim == 0 or other.ndim == 0:
            raise RuntimeError(f"matmul: both arguments need to be at least 1D, got shapes {self.shape} and "
                               f"{other.shape}")
        x = self.unsqueeze(0) if self.ndim == 1 else self
        w = other.unsqueeze(-1) if other.ndim == 1 else other
        if x.shape[-1] != w.shape[-2]:
            raise RuntimeError(f"matmul: shapes {self.shape} and {other.shape} cannot be multiplied "
                               f"({x.shape[-1]} != {w.shape[-2]}); the last dim of the first must equal the "
                               "second-to-last dim of the second")
        dtype = dt.promote(x.dtype, w.dtype)
        x = x.cast(dtype).reshape(x.shape[:-1] + (1, x.shape[-1]))
        w = w.cast(dtype).transpose(-1, -2)
        w = w.reshape(w.shape[:-2] + (1,) + w.shape[-2:])
        out = fn.contract(x, w, (-1,))
        if self.ndim == 1:
            out = out.squeeze(-2)
        return out.squeeze(-1) if other.ndim == 1 else out

    dot = matmul

    def linear(self, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
        """x @ weight.T + bias, as torch.nn.functional.linear."""
        out = self.matmul(weight.T)
        return out + bias if bias is not None else out

    # ---- composite ops from functional.py, bound as methods --------------------------------------------
    leaky_relu = fn.leaky_relu
    elu = fn.elu
    relu6 = fn.relu6
    silu = fn.silu
    softplus = fn.softplus
    mish = fn.mish
    softsign = fn.softsign
    hardsigmoid = fn.hardsigmoid
    hardswish = fn.hardswish
    hardtanh = fn.hardtanh
    erf = fn.erf
    gelu = fn.gelu
    log1p = fn.log1p
    expm1 = fn.expm1
    where_finite = fn.where_finite
    isinf = fn.isinf
    isnan = fn.isnan
    isfinite = fn.isfinite
    round = fn.round_half_even
    lerp = fn.lerp
    prod = fn.prod
    var = fn.var
    std = fn.std
    argmax = fn.argmax
    argmin = fn.argmin
    all = fn.all_true
    any = fn.any_true
    cumsum = fn.cumsum
    cumprod = fn.cumprod
    repeat_interleave = fn.repeat_interleave
    atan = fn.atan
    asin = fn.asin
    acos = fn.acos
    sort = fn.sort
    argsort = fn.argsort
    topk = fn.topk
    norm = fn.norm
    mse_loss = fn.mse_loss
    l1_loss = fn.l1_loss
    binary_cross_entropy = fn.binary_cross_entropy
    binary_cross_entropy_with_logits = fn.binary_cross_entropy_with_logits
    nll_loss = fn.nll_loss
    cross_entropy = fn.cross_entropy
    layer_norm = fn.layer_norm
    rms_norm = fn.rms_norm
    batch_norm = fn.batch_norm
    group_norm = fn.group_norm
    dropout = fn.dropout
    one_hot = fn.one_hot
    embedding = fn.embedding
    masked_fill = fn.masked_fill
    tril = fn.tril
    triu = fn.triu
    gather = fn.gather
    scatter = fn.scatter
    scatter_add = fn.scatter_add
    scaled_dot_product_attention = fn.scaled_dot_product_attention
    interpolate = fn.interpolate
    adaptive_avg_pool2d = fn.adaptive_avg_pool2d
    conv_transpose1d = fn.conv_transpose1d
    conv_transpose2d = fn.conv_transpose2d
    conv_transpose3d = fn.conv_transpose3d
    _arg_extreme = fn._arg_extreme
    nonzero = fn.nonzero
    max_pool1d = fn.max_pool1d
    avg_pool1d = fn.avg_pool1d
    max_pool3d = fn.max_pool3d
    avg_pool3d = fn.avg_pool3d
    trace = fn.trace
    median = fn.median
    masked_select = fn.masked_select
    var_mean = fn.var_mean
    std_mean = fn.std_mean
    cummax = fn.cummax
    diag = fn.diag
    diagonal = fn.diagonal
    softmin = fn.softmin
    scatter_reduce = fn.scatter_reduce
    sinh = ew.sinh
    cosh = ew.cosh
    asinh = arcsinh = ew.asinh
    acosh = arccosh = ew.acosh
    atanh = arctanh = ew.atanh
    log10 = ew.log10
    logaddexp = ew.logaddexp
    isclose = ew.isclose
    allclose = ew.allclose
    fmod = ew.fmod
    fmax = ew.fmax
    fmin = ew.fmin
    nan_to_num = ew.nan_to_num
    hypot = ew.hypot
    atan2 = arctan2 = ew.atan2
    selu = ew.selu
    celu = ew.celu
    bitwise_left_shift = __lshift__ = ew.shift_left
    bitwise_right_shift = __rshift__ = ew.shift_right

    def __rlshift__(self, other: int) -> Tensor:
        return ew.shift_left(self.full_like(other), self)

    def __rrshift__(self, other: int) -> Tensor:
        return ew.shift_right(self.full_like(other), self)

    def __rand__(self, other: TensorLike) -> Tensor:
        return self & other

    def __ror__(self, other: TensorLike) -> Tensor:
        return self | other

    def __rxor__(self, other: TensorLike) -> Tensor:
        return self ^ other

    # ---- dtype shortcuts -----------------------------------------------------------------------------
    def float(self) -> Tensor:
        return self.cast(dt.float32)

    def half(self) -> Tensor:
        return self.cast(dt.float16)

    def double(self) -> Tensor:
        return self.cast(dt.float64)

    def int(self) -> Tensor:
        return self.cast(dt.int32)

    def long(self) -> Tensor:
        return self.cast(dt.int64)

    def bool(self) -> Tensor:
        return self.cast(dt.bool_)


Tensor.tensor_class = Tensor


def _node_from_data(data: Any, dtype: Optional[Union[DType, str]], device: str) -> Node:
    """Upload Python or NumPy data to `device` as a realized buffer node."""
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
    _check_dtype(target, device)
    arr = np.asarray(arr, dtype=target.np, order="C")
    buf = Buffer(device, arr.size, target)
    if arr.size:
        buf.copyin(arr)
    return Node(Op.BUFFER, (), None, target, arr.shape, device, buffer=buf)


def _float_remainder(x: Tensor, y: Tensor) -> Tensor:
    """x - floor(x / y) * y with the divisor's sign (torch, Python), computed exactly from fmod: 1.5 % inf is 1.5,
    where the product form gives NaN. Its gradient is 1 for x and -floor(x / y) for y, as torch's."""
    r = x.detach()._nograd(Op.MOD, y.detach())
    r = (r != 0).logical_and((r < 0) != (y.detach() < 0)).if_else(r + y.detach(), r)
    if not (x.requires_grad or y.requires_grad):
        return r
    q = ((x.detach() - r) / y.detach()).round()
    finite = x.isfinite().logical_and(y.isfinite()).logical_and(q.isfinite())
    link = finite.if_else((x - x.detach()) - q * (y - y.detach()), 0.0)  # zero in value, the gradient in form
    return r + link


def _floor_divide(x: Tensor, y: Tensor) -> Tensor:
    """floor(x / y) for floats as torch computes it, from fmod (inf // 2 is NaN, 7 // 0.1 is 69, not 70)."""
    x, y = x.detach(), y.detach()
    mod = x._nograd(Op.MOD, y)
    div = (x - mod) / y
    div = (mod != 0).logical_and((y < 0) != (mod < 0)).if_else(div - 1, div)
    floor = div.floor()
    floor = (div - floor > 0.5).if_else(floor + 1, floor)
    zero = (x / y) * 0  # a signed zero where the quotient is zero
    out = (div == 0).if_else(zero, floor)
    return (y == 0).if_else(x / y, out)


def _check_python_zero(op: str, x: Tensor, other: TensorLike, reverse: bool) -> None:
    """Integer division or remainder by a Python 0 raises at once (as torch); by zero elements of a tensor it gives
    0 (tg.core.semantics: a kernel cannot raise)."""
    if not reverse and not x.dtype.is_float and isinstance(other, (int, bool, np.integer)) and other == 0:
        raise ZeroDivisionError(f"{op}: integer division or remainder of a {x.dtype.name} tensor {x.shape} by zero")


def _gain(nonlinearity: str, a: float) -> float:
    """torch.nn.init.calculate_gain for the nonlinearities the kaiming helpers accept."""
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + a * a))
    return {"relu": math.sqrt(2.0), "linear": 1.0, "sigmoid": 1.0, "tanh": 5 / 3}.get(nonlinearity, 1.0)


def _torch_formatter(arr: np.ndarray) -> Optional[dict[str, Callable[[Any], str]]]:
    """Float formatting as torch prints it: `1.` for whole numbers, 4 decimals, or scientific."""
    if arr.dtype.kind != "f" or arr.size == 0:
        return None
    finite = np.abs(arr[np.isfinite(arr)].astype(np.float64))
    if finite.size and np.all(finite == np.round(finite)) and finite.max() < 1e8:
        fmt = "{:.0f}."
    elif finite.size and (finite.max() >= 1e8 or (finite[finite > 0].min(initial=1) < 1e-4)):
        fmt = "{:.4e}"
    else:
        fmt = "{:.4f}"

    def one(v: Any) -> str:
        return ("nan" if np.isnan(v) else ("inf" if v > 0 else "-inf")) if not np.isfinite(v) else fmt.format(v)

    width = max(len(one(v)) for v in arr.reshape(-1)[:2000])
    return {"float_kind": lambda v: one(v).rjust(width)}


def _check_dtype(dtype: DType, device: str) -> None:
    supported = get_device(device).dtypes
    if supported and dtype not in supported:
        raise TypeError(f"device {device!r} does not support dtype {dtype.name}; it supports "
                        f"{', '.join(sorted(d.name for d in supported))}. Cast to one of those, or use another device.")
