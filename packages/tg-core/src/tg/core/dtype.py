"""Data types: what a tensor element is, and how two of them combine (torch's promotion rules)."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

import numpy as np

if TYPE_CHECKING:
    from .tensor import Tensor

Scalar = Union[int, float, bool]
TensorLike = Union["Tensor", Scalar]  # what elementwise ops accept beside a tensor


@dataclass(frozen=True, eq=True)
class DType:
    """An element type. `priority` orders types inside a category (bool < int < float) for promotion."""

    name: str
    itemsize: int
    kind: str  # "b" bool, "i" signed int, "u" unsigned int, "f" float
    priority: int

    @property
    def np(self) -> np.dtype:
        """The matching NumPy dtype."""
        return np.dtype(self.name)

    @property
    def is_float(self) -> bool:
        return self.kind == "f"

    @property
    def is_int(self) -> bool:
        return self.kind in "iu"

    @property
    def limits(self) -> tuple[int, int]:
        """The smallest and largest value of an integer or bool dtype."""
        bits = 8 * self.itemsize
        if self.kind in "bu":
            return 0, 1 if self.kind == "b" else 2**bits - 1
        return -2**(bits - 1), 2**(bits - 1) - 1

    def __repr__(self) -> str:
        return f"tg.{self.name}"

    def __hash__(self) -> int:  # the name is unique; hashing it alone keeps dict lookups cheap in hot paths
        return hash(self.name)

    def __eq__(self, other: object) -> bool:  # the same: each dtype is one object, compared very often
        return self is other or (isinstance(other, DType) and self.name == other.name)


bool_ = DType("bool", 1, "b", 0)
uint8 = DType("uint8", 1, "u", 1)
int8 = DType("int8", 1, "i", 2)
uint16 = DType("uint16", 2, "u", 3)
int16 = DType("int16", 2, "i", 4)
uint32 = DType("uint32", 4, "u", 5)
int32 = DType("int32", 4, "i", 6)
uint64 = DType("uint64", 8, "u", 7)
int64 = DType("int64", 8, "i", 8)
float16 = DType("float16", 2, "f", 9)
float32 = DType("float32", 4, "f", 10)
float64 = DType("float64", 8, "f", 11)
void = DType("void", 0, "v", -1)  # the type of the loop IR's statements that have no value (a store, a loop's end)

ALL_DTYPES: tuple[DType, ...] = (bool_, uint8, int8, uint16, int16, uint32, int32, uint64, int64, float16, float32,
                                 float64)
_SIGNED_BY_SIZE = {1: int8, 2: int16, 4: int32, 8: int64}
_BY_NAME = {d.name: d for d in ALL_DTYPES} | {"bool_": bool_, "half": float16, "float": float32,
                                               "double": float64, "int": int32, "long": int64}
default_float = float32
default_int = int64  # torch.tensor([1, 2]).dtype is int64


def signed_of_size(itemsize: int) -> DType:
    """The signed integer type of `itemsize` bytes (the bits of any type of that size)."""
    return _SIGNED_BY_SIZE[itemsize]


def to_dtype(x: DType | str | np.dtype | type | None, default: DType = default_float) -> DType:
    """Accept a tg dtype, a name, a NumPy dtype or a Python type and return the tg dtype."""
    if x is None:
        return default
    if isinstance(x, DType):
        return x
    if x is bool:
        return bool_
    if x is int:
        return default_int
    if x is float:
        return default_float
    name = x if isinstance(x, str) else np.dtype(x).name
    if name not in _BY_NAME:
        raise TypeError(f"unsupported dtype {x!r}; tg supports {', '.join(d.name for d in ALL_DTYPES)}")
    return _BY_NAME[name]


def _category(d: DType) -> int:
    return {"b": 0, "u": 1, "i": 1, "f": 2}[d.kind]


def promote(a: DType, b: DType) -> DType:
    """The result type of a binary op between two tensors (torch.promote_types)."""
    if a == b:
        return a
    if _category(a) != _category(b):
        return a if _category(a) > _category(b) else b
    if a.kind != b.kind and a.is_int and b.is_int:  # signed with unsigned: a signed type holding both
        u, s = (a, b) if a.kind == "u" else (b, a)
        if u.itemsize < s.itemsize:
            return s
        if u.itemsize == 8:
            raise TypeError(f"promotion of {u.name} with {s.name} is not defined (no signed type holds both); "
                            "cast one of them first")
        return _SIGNED_BY_SIZE[u.itemsize * 2]
    return a if a.priority > b.priority else b


def result_type(a: DType, a_is_0d: bool, b: DType, b_is_0d: bool) -> DType:
    """The result type of a binary op between two tensors, torch's rule: a 0-d tensor acts like a Python number
    beside a tensor with dims (it lifts the category only: float16 * tensor(2.0) stays float16, int32 +
    tensor(1) stays int32, int32 + tensor(1.5, float64) is float64)."""
    if a_is_0d == b_is_0d:
        return promote(a, b)
    dimmed, zero_d = (b, a) if a_is_0d else (a, b)
    return zero_d if _category(zero_d) > _category(dimmed) else dimmed


def scalar_result_type(t: DType, scalar: object) -> DType:
    """The result type of `tensor op python_scalar`: a scalar only lifts the category (int -> float)."""
    if isinstance(scalar, bool):
        return t
    if isinstance(scalar, int):
        return default_int if t == bool_ else t
    if isinstance(scalar, float):
        return t if t.is_float else default_float
    raise TypeError(f"unsupported scalar {scalar!r} of type {type(scalar).__name__}")


def computed_in_float32(fn: Any) -> Any:
    """A composite float function (a chain of exp, log, divisions...) that runs float16 inputs in float32 and
    rounds once at the end, as torch computes half-precision math: its intermediates would overflow or lose
    every digit in float16 (expm1(10) needs (e^10 - 1) * 10 > 65504)."""

    @functools.wraps(fn)
    def wrapper(x: Any, *args: Any, **kwargs: Any) -> Any:
        other = args[0] if args and isinstance(args[0], x.tensor_class) else None  # a second operand (atan2...)
        if other is None:
            if x.dtype == float16:
                return fn(x.cast(float32), *args, **kwargs).cast(float16)
            return fn(x, *args, **kwargs)
        target = result_type(x.dtype, x.ndim == 0, other.dtype, other.ndim == 0)  # the result's type, as torch's
        if target != float16:
            return fn(x, *args, **kwargs)
        return fn(x.cast(float32), other.cast(float32), *args[1:], **kwargs).cast(float16)

    return wrapper
