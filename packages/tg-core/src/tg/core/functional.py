"""Composite ops with torch.nn.functional's names: activations, statistics, losses, normalisation,
attention and indexing helpers. Each is built from Tensor methods only, so it gets gradients,
fusion and every device for free. Each is also a `Tensor` method of the same name
(tensor.py binds them), so `x.gelu()` and `functional.gelu(x)` are the same call.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Union

import numpy as np

from . import autograd as F
from . import dtype as dt
from .autograd import Grads, no_grad
from .indexing import check_range, pick, take_along
from .ops import Op
from .pointwise import keep_zero_sign
from .sampling import CUBIC_A, affine_grid, grid_sample  # noqa: F401  (torch.nn.functional's names)
from .uop import Node
from .view import broadcast_shape

if TYPE_CHECKING:
    from .tensor import Tensor

Dims = Optional[Union[int, Sequence[int]]]


class ValuesIndices(NamedTuple):
    """What max/min/median/sort with a `dim` return, like torch.return_types."""

    values: Tensor
    indices: Tensor


def _tensor(x: Tensor) -> type[Tensor]:
    """The Tensor class, taken from an argument (this module sits below tensor.py and does not import it): Tensor
    itself, also when x is a subclass such as tg.nn.Parameter."""
    return x.tensor_class


# ---- activations --------------------------------------------------------------------------------
def _written(x: Tensor, out: Tensor, inplace: bool) -> Tensor:
    """torch.nn.functional's `inplace=True`: the result written into x, and x returned."""
    return x.copy_(out) if inplace else out


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return _written(x, (x > 0).if_else(x, x * negative_slope), inplace)


def _elu_derivative(x: Tensor, y: Tensor, alpha: float = 1.0) -> Tensor:
    return (x <= 0).if_else(x.exp() * alpha, 1.0)


@F.with_derivative(_elu_derivative)
def _elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    return (x > 0).if_else(x, x.expm1() * alpha)  # expm1: accurate near 0, and elu(-0.0) is -0.0 (torch)


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _written(x, _elu(x, alpha), inplace)


def relu6(x: Tensor, inplace: bool = False) -> Tensor:
    return _written(x, x.relu().minimum(6.0), inplace)


def silu(x: Tensor, inplace: bool = False) -> Tensor:
    return _written(x, x * x.sigmoid(), inplace)


@dt.computed_in_float32
def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, linear above `threshold` as torch does."""
    bx = x * beta
    soft = bx.minimum(threshold).exp().log1p() / beta  # log1p: 1 + e^-7 would round away e^-7's digits
    return (bx > threshold).if_else(x, soft)


def mish(x: Tensor, inplace: bool = False) -> Tensor:
    return _written(x, _mish(x), inplace)


@dt.computed_in_float32
def _mish(x: Tensor) -> Tensor:
    return x * x.softplus().tanh()


def softsign(x: Tensor) -> Tensor:
    return x / (x.abs() + 1)


def hardsigmoid(x: Tensor, inplace: bool = False) -> Tensor:
    return _written(x, (x / 6 + 0.5).clamp(0.0, 1.0), inplace)


def hardswish(x: Tensor, inplace: bool = False) -> Tensor:
    return _written(x, x * x.hardsigmoid(), inplace)


def _hardtanh_derivative(x: Tensor, y: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return ((x <= min_val).logical_or(x >= max_val)).if_else(0.0, 1.0)  # 0 at the corners too, as torch


@F.with_derivative(_hardtanh_derivative)
def _hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return x.clamp(min_val, max_val)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    return _written(x, _hardtanh(x, min_val, max_val), inplace)


ERF_SCALE = 2 / math.sqrt(math.pi)  # erf'(0)


@dt.computed_in_float32
@F.with_derivative(lambda x, y: (-(x * x)).exp() * ERF_SCALE)
def erf(x: Tensor) -> Tensor:
    """Error function: below |x| = 0.5 its Taylor series (accurate relative to erf(x) itself, which the formula
    for the rest would lose near 0), else Abramowitz-Stegun 7.1.26 (|error| < 2e-7); odd, erf(-0.0) = -0.0."""
    x = x._float()
    a = x.abs()
    small = a < 0.5
    s = small.if_else(x, 0.0)  # the series only where chosen: no overflow in s^k, no NaN in its gradient
    s2 = s * s
    series = s * (ERF_SCALE * (1 - s2 * (1 / 3 - s2 * (1 / 10 - s2 * (1 / 42 - s2 * (1 / 216 - s2 * (
        1 / 1320 - s2 * (1 / 9360))))))))
    t = 1 / (1 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    tail = 1 - poly * (-(a * a)).exp()
    return small.if_else(series, (x < 0).if_else(-tail, tail))



@dt.computed_in_float32
def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU, exact (erf) or approximate="tanh", as torch.nn.functional.gelu."""
    if approximate == "tanh":
        return 0.5 * x * (1 + (math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)).tanh())
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * x * (1 + (x * (1 / math.sqrt(2))).erf())


@dt.computed_in_float32
@F.with_derivative(lambda x, y: 1 / (x + 1))
def log1p(x: Tensor) -> Tensor:
    """log(1 + x), accurate for small x (the Kahan correction: log(u) * x / (u - 1))."""
    x = x._float()
    u = x + 1
    plain = (u == 1).logical_or(u == math.inf)  # log1p(-inf) stays NaN, as in torch
    safe = plain.if_else(2.0, u)  # the unselected branch stays finite, and so does its (discarded) gradient
    return plain.if_else(x, safe.log() * x / (safe - 1))


@dt.computed_in_float32
@F.with_derivative(lambda x, y: y + 1)
def expm1(x: Tensor) -> Tensor:
    """exp(x) - 1: near 0 (|x| < 0.5) Kahan's (u - 1) * x / log(u) with u = exp(x), which keeps the digits that
    u - 1 cancels; elsewhere u - 1 itself (exact enough, and -1 once exp underflows: Kahan's form would divide by the
    log of a subnormal there)."""
    x = x._float()
    u = x.exp()
    near = (x.abs() < 0.5).logical_and(u != 1)
    safe = near.if_else(u, 2.0)  # no 0/0 where u == 1 (x tiny: expm1 is x)
    return near.if_else((safe - 1) * x / safe.log(), (u == 1).if_else(x, u - 1))


def where_finite(x: Tensor, other: Tensor) -> Tensor:
    """x where it is finite, else other (a helper for the accurate exp/log forms)."""
    return (x - x == 0).if_else(x, other)


def isinf(x: Tensor) -> Tensor:
    return x.abs() == math.inf


def isnan(x: Tensor) -> Tensor:
    return x != x


def isfinite(x: Tensor) -> Tensor:
    """|x| < inf (false for NaN). Not (x - x) == 0: NVIDIA's Vulkan compiler folds x - x to 0 inside a fused
    kernel, and (-inf) ** 0.3 came out NaN on the H200 through WebGPU."""
    return x.abs() < math.inf


def round_half_even(x: Tensor, decimals: int = 0) -> Tensor:
    """Round half to even, like torch.round."""
    if not x.dtype.is_float:
        return x
    x = x * (10 ** decimals) if decimals else x
    f = x.floor()
    diff = x - f
    half_even = (f * 0.5).floor() * 2 == f
    r = (diff > 0.5).logical_or((diff == 0.5).logical_and(half_even.logical_not())).if_else(f + 1, f)
    r = keep_zero_sign(r, x)  # -0.3 rounds to -0.0, not to the +0.0 that -1 + 1 gives
    return r / (10 ** decimals) if decimals else r


def lerp(x: Tensor, end: Tensor, weight: Union[float, Tensor]) -> Tensor:
    """x + weight * (end - x), from the nearer end as torch computes it (so lerp(x, end, 1) is end exactly)."""
    diff = end - x
    if isinstance(weight, (int, float)):
        return x + diff * weight if abs(weight) < 0.5 else end - diff * (1 - weight)
    return (weight.abs() < 0.5).if_else(x + diff * weight, end - diff * (1 - weight))


# ---- reductions and statistics ------------------------------------------------------------------
def pad_with(x: Tensor, dim: int, before: int, after: int, value: Any) -> Tensor:
    """x padded along `dim` with `value` (exactly: a select, not arithmetic on the padded zeros)."""
    pads = [(before, after) if k == dim else (0, 0) for k in range(x.ndim)]
    inside = _tensor(x).ones(x.shape, dtype=dt.bool_, device=x.device)._pad_dims(pads)
    return inside.if_else(x._pad_dims(pads), value)


def prod(x: Tensor, dim: Optional[int] = None, keepdim: bool = False,
         dtype: Optional[Union[dt.DType, str]] = None) -> Tensor:
    """Product over `dim` (all elements when None), by multiplying halves until one is left: exact products
    for integers (int64 for ints and bools, as torch), and the gradient of each element is the product of
    the others, zeros included."""
    if dtype is not None:
        x = x.cast(dtype)
    elif not x.dtype.is_float:
        x = x.cast(dt.int64)
    if dim is None:
        out = prod(x.reshape(-1), 0)
        return out.reshape((1,) * x.ndim) if keepdim else out
    d = x._dim(dim)
    if x.ndim == 0:
        return x
    while x.shape[d] > 1:
        n = x.shape[d]
        if n % 2:
            x = pad_with(x, d, 0, 1, 1)
        halves = x.unflatten(d, (2, (n + 1) // 2))
        x = halves.narrow(d, 0, 1).squeeze(d) * halves.narrow(d, 1, 1).squeeze(d)
    if x.shape[d] == 0:  # the empty product is 1 (the sum of nothing keeps the graph: an empty gradient)
        x = x._reduce_sum_keep((d,)) * 0 + 1
    return x if keepdim else x.squeeze(d)


@dt.computed_in_float32
def var(x: Tensor, dim: Dims = None, correction: float = 1, keepdim: bool = False,
        unbiased: Optional[bool] = None) -> Tensor:
    """Variance with torch's `correction` (1 = unbiased; `unbiased=False` means 0)."""
    if unbiased is not None:
        correction = 1 if unbiased else 0
    axes = x._axes(dim)
    n = math.prod(x.shape[a] for a in axes) if x.ndim else 1
    centered = x - x.mean(dim, keepdim=True)
    return (centered * centered).sum(dim, keepdim=keepdim) / max(n - correction, 0)


@dt.computed_in_float32
def std(x: Tensor, dim: Dims = None, correction: float = 1, keepdim: bool = False,
        unbiased: Optional[bool] = None) -> Tensor:
    """sqrt(var); where the variance is 0 the gradient is 0 (torch), not the inf * 0 of sqrt's own rule."""
    v = x.var(dim, correction, keepdim, unbiased)
    zero = v == 0
    return zero.if_else(v.detach(), zero.if_else(1.0, v).sqrt())


def _arg_extreme(x: Tensor, dim: Optional[int], keepdim: bool, largest: bool) -> Tensor:
    tensor = _tensor(x)
    if dim is None:
        return x.flatten()._arg_extreme(0, False, largest)
    if x.ndim == 0:  # dim 0 or -1 of a 0-d tensor: its one element (torch)
        x._dim(dim, 1)
        return tensor.zeros((), dtype=dt.int64, device=x.device)
    d = x._dim(dim)
    n = x.shape[d]
    if n == 0:
        raise IndexError(f"{'argmax' if largest else 'argmin'}: cannot take it over a zero-size dim {d} of shape "
                         f"{x.shape}")
    best = x.amax(d, keepdim=True) if largest else x.amin(d, keepdim=True)
    hit = (x == best).logical_or(x.isnan()) if x.dtype.is_float else x == best
    positions = tensor.arange(n, device=x.device).reshape(*(n if i == d else 1 for i in range(x.ndim)))
    first = hit.if_else(positions, n).amin(d, keepdim=keepdim)  # torch returns the first occurrence
    return first


def argmax(x: Tensor, dim: Optional[int] = None, keepdim: bool = False) -> Tensor:
    """Index of the first maximum (of the flattened tensor when dim is None)."""
    return x._arg_extreme(dim, keepdim, True)


def argmin(x: Tensor, dim: Optional[int] = None, keepdim: bool = False) -> Tensor:
    return x._arg_extreme(dim, keepdim, False)


def all_true(x: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    """True where every element along `dim` is nonzero (Tensor.all); uint8 in, uint8 out (torch's exception)."""
    out = any_true(x.logical_not(), dim, keepdim).logical_not()
    return out.cast(dt.uint8) if x.dtype == dt.uint8 else out


def any_true(x: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    """True where some element along `dim` is nonzero (Tensor.any); uint8 in, uint8 out (torch's exception)."""
    if x.numel():
        out = x.cast(dt.bool_).amax(dim, keepdim)
    else:
        axes = x._axes(dim)
        shape = tuple(1 if k in axes else n for k, n in enumerate(x.shape)) if keepdim else \
            tuple(n for k, n in enumerate(x.shape) if k not in axes)
        out = _tensor(x).full(shape, False, device=x.device)
    return out.cast(dt.uint8) if x.dtype == dt.uint8 else out


def cumsum(x: Tensor, dim: int = 0) -> Tensor:
    """Running sum along `dim`: a sum over left-padded windows, one fused kernel (ints and bools as int64)."""
    d = x._dim(dim)
    x = x if x.dtype.is_float else x.cast(dt.int64)
    if x.ndim == 0:
        return x
    if x.shape[d] <= 1:
        return x + 0.0 if x.dtype.is_float else x  # a running sum starts at 0.0: -0.0 gives 0.0 (torch)
    n = x.shape[d]
    x = x.transpose(d, -1)
    win = x._pad_dims([(0, 0)] * (x.ndim - 1) + [(n - 1, 0)]).unfold(-1, n, 1)
    return win.sum(-1).transpose(d, -1)


def repeat_interleave(x: Tensor, repeats: Union[int, Tensor], dim: Optional[int] = None) -> Tensor:
    """Each element repeated `repeats` times along `dim` (flattened when None), like torch.repeat_interleave:
    with an int an expand and a reshape, no copy until used; with a tensor of counts (one per element of dim, or
    one for all) an index_select, whose length is read from the counts (as torch does)."""
    if dim is None:
        x, dim = x.reshape(-1), 0
    d = x._dim(dim)
    if not isinstance(repeats, int):
        counts = np.asarray(repeats.numpy(), np.int64).reshape(-1)
        if counts.size == 1:
            counts = np.full(x.shape[d], counts[0])
        if counts.size != x.shape[d] or np.any(counts < 0):
            raise RuntimeError(f"repeat_interleave: repeats must be non-negative and one per element of dim {d} "
                               f"(size {x.shape[d]}), got {counts.tolist()}")
        return x.index_select(d, _tensor(x)(np.repeat(np.arange(x.shape[d]), counts), device=x.device))
    shape = x.shape
    grown = x.unsqueeze(d + 1).expand(*shape[:d + 1], repeats, *shape[d + 1:])
    return grown.reshape(*shape[:d], shape[d] * repeats, *shape[d + 1:])


def cumprod(x: Tensor, dim: int = 0) -> Tensor:
    """Running product along `dim` (torch.cumprod): a product over left-padded windows (ints as int64)."""
    d = x._dim(dim)
    x = x if x.dtype.is_float else x.cast(dt.int64)
    if x.ndim == 0 or x.shape[d] <= 1:
        return x
    n = x.shape[d]
    x = x.transpose(d, -1)
    padded = pad_with(x, x.ndim - 1, n - 1, 0, 1)
    return padded.unfold(-1, n, 1).prod(-1).cast(x.dtype).transpose(d, -1)


@dt.computed_in_float32
def atan(x: Tensor) -> Tensor:
    """Arc tangent: two angle halvings bring |x| under tan(pi/16), where six series terms reach float64."""
    x = x._float()
    t = x.abs()
    big = t > 1
    t = big.if_else(1 / t.maximum(1e-30), t)
    for _ in range(2):  # atan(t) = 2 atan(t / (1 + sqrt(1 + t^2)))
        t = t / (1 + (1 + t * t).sqrt())
    t2 = t * t
    series = t * (1 - t2 * (1 / 3 - t2 * (1 / 5 - t2 * (1 / 7 - t2 * (1 / 9 - t2 * (1 / 11 - t2 / 13))))))
    angle = series * 4
    angle = big.if_else(math.pi / 2 - angle, angle)
    return (x == 0).if_else(x, (x < 0).if_else(-angle, angle))  # atan(-0.0) is -0.0


@dt.computed_in_float32
def asin(x: Tensor) -> Tensor:
    """Arc sine, as atan(x / sqrt(1 - x^2)); NaN outside [-1, 1]."""
    x = x._float()
    out = atan(x / (1 - x * x).sqrt())
    return (x.abs() == 1).if_else(x * (math.pi / 2), out)


@dt.computed_in_float32
def acos(x: Tensor) -> Tensor:
    """Arc cosine, pi/2 - asin(x)."""
    return math.pi / 2 - asin(x)


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = True) -> tuple[Tensor, Tensor]:
    """(values, indices) sorted along `dim`, ties in input order (torch.sort with stable=True).

    The order is data-dependent, so it is computed from the realized values; the values are then gathered
    from x, so gradients flow to the elements they came from."""
    d = x._dim(dim)
    if x.ndim == 0:
        return x, _tensor(x).zeros((), dtype=dt.int64, device=x.device)
    data = x.numpy()
    if descending:  # no negation (it wraps unsigned and minimal ints): a stable sort of the reversed data, reversed
        flipped_order = np.argsort(np.flip(data, d), axis=d, kind="stable")
        order = data.shape[d] - 1 - np.flip(flipped_order, d)  # ties keep input order; NaN first, as in torch
    else:
        order = np.argsort(data, axis=d, kind="stable")  # NaN last, as in torch
    idx = _tensor(x)(order.astype(np.int64), device=x.device)
    return x.gather(d, idx), idx


def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = True) -> Tensor:
    """Indices that sort x along `dim` (torch.argsort)."""
    return sort(x, dim, descending)[1]


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True,
         sorted: bool = True) -> tuple[Tensor, Tensor]:  # noqa: A002 - torch's name
    """(values, indices) of the k largest (or smallest) along `dim`; equal values keep their input order."""
    d = x._dim(dim)
    if x.ndim == 0:  # a scalar is its own top element (torch: for k 0 or 1 alike)
        if k not in (0, 1):
            raise RuntimeError(f"topk: k={k} is out of range for a 0-d tensor (k must be 0 or 1)")
        return x, _tensor(x).zeros((), dtype=dt.int64, device=x.device)
    if not 0 <= k <= x.shape[d]:
        raise RuntimeError(f"topk: k={k} is out of range for dim {d} of size {x.shape[d]} (shape {x.shape})")
    values, idx = sort(x, d, descending=largest)
    return values.narrow(d, 0, k), idx.narrow(d, 0, k)


@dt.computed_in_float32
def norm(x: Tensor, p: Union[float, str] = "fro", dim: Dims = None, keepdim: bool = False) -> Tensor:
    """Vector p-norm (2 by default; inf, -inf, 0, 1 and any p > 0)."""
    x = x._float()
    if p in ("fro", 2, 2.0):
        return _root((x * x).sum(dim, keepdim=keepdim), 2)
    if p == math.inf:
        return x.abs().amax(dim, keepdim)
    if p == -math.inf:
        return x.abs().amin(dim, keepdim)
    if p == 0:
        return (x != 0).float().sum(dim, keepdim=keepdim)
    if isinstance(p, str):
        raise ValueError(f"norm: unsupported p={p!r}")
    return _root((x.abs() ** p).sum(dim, keepdim=keepdim), p)


def _root(total: Tensor, p: float) -> Tensor:
    """total ** (1/p), with a zero gradient where total is 0 (torch), not the inf * 0 of the power's rule."""
    zero = total == 0
    safe = zero.if_else(1.0, total)
    return zero.if_else(total.detach(), safe.sqrt() if p == 2 else safe ** (1 / p))


# ---- losses --------------------------------------------------------------------------------------
def _reduce_loss(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _weighted_loss(loss: Tensor, x: Tensor, weight: Optional[Tensor], reduction: str, op: str,
                   mean_by_weight: bool = True) -> Tensor:
    """Elementwise losses times `weight` (x's shape), reduced; torch's weighted mean divides by the weights' sum
    (mse, l1) or by the count (huber)."""
    if weight is None:
        return _reduce_loss(loss, reduction, op)
    if tuple(weight.shape) != tuple(x.shape):
        raise ValueError(f"{op}: weight {tuple(weight.shape)} must have the input's shape {tuple(x.shape)}")
    weighted = loss * weight
    if reduction == "mean" and mean_by_weight:
        return weighted.sum() / weight.sum()
    return _reduce_loss(weighted, reduction, op)


def mse_loss(x: Tensor, target: Tensor, reduction: str = "mean", weight: Optional[Tensor] = None) -> Tensor:
    d = x - target
    return _weighted_loss(d * d, x, weight, reduction, "mse_loss")


def l1_loss(x: Tensor, target: Tensor, reduction: str = "mean", weight: Optional[Tensor] = None) -> Tensor:
    return _weighted_loss((x - target).abs(), x, weight, reduction, "l1_loss")


def smooth_l1_loss(x: Tensor, target: Tensor, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = x - target); beta 0 is the L1 loss."""
    d = (x - target).abs()
    loss = d if beta == 0 else (d < beta).if_else(d * d * (0.5 / beta), d - 0.5 * beta)
    return _reduce_loss(loss, reduction, "smooth_l1_loss")


def huber_loss(x: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Optional[Tensor] = None) -> Tensor:
    """0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta): smooth_l1_loss scaled by delta."""
    d = (x - target).abs()
    loss = (d <= delta).if_else(d * d * 0.5, (d - 0.5 * delta) * delta)
    return _weighted_loss(loss, x, weight, reduction, "huber_loss", mean_by_weight=False)


def kl_div(x: Tensor, target: Tensor, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL divergence with x given as log-probabilities (torch.nn.functional.kl_div): target (log target -
    x) pointwise; a target of 0 contributes 0. 'batchmean' divides the sum by the first dim."""
    if log_target:
        loss = target.exp() * (target - x)
    else:
        loss = (target > 0).if_else(target * (target.maximum(1e-45).log() - x), target * 0)
    if reduction == "batchmean":
        return loss.sum() / (x.shape[0] if x.ndim else 1)
    return _reduce_loss(loss, reduction, "kl_div")


def _bce(x: Tensor, target: Tensor) -> Tensor:
    return -(target * x.log().maximum(-100) + (1 - target) * (1 - x).log().maximum(-100))


def _bce_derivative(x: Tensor, y: Tensor, target: Tensor) -> Tensor:
    return (x - target) / ((1 - x) * x).maximum(BCE_EPSILON)  # torch's: finite at x = 0 and 1, where the logs clamp


BCE_EPSILON = 1e-12
_bce_explicit = F.with_derivative(_bce_derivative)(_bce)  # the loss per element, with torch's gradient in x


def binary_cross_entropy(x: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                         reduction: str = "mean") -> Tensor:
    """BCE on probabilities; logs are clamped at -100 and the gradient is torch's (x - t) / max(x (1 - x), 1e-12)."""
    loss = _bce_explicit(x, target.detach())
    if target.requires_grad:  # the target's gradient through the formula's pieces, zero in value
        loss = loss + (_bce(x.detach(), target) - _bce(x.detach(), target.detach()))
    return _reduce_loss(loss * weight if weight is not None else loss, reduction, "binary_cross_entropy")


def _bce_logits(x: Tensor, target: Tensor, pos_weight: Optional[Tensor] = None) -> Tensor:
    log_sig_neg = (-x.abs()).exp().log1p() + (-x).relu()  # -log(sigmoid(x)), stably
    if pos_weight is not None:
        return (1 - target) * x + (1 + (pos_weight - 1) * target) * log_sig_neg
    return (1 - target) * x + log_sig_neg


def _bce_logits_derivative(x: Tensor, y: Tensor, target: Tensor, pos_weight: Optional[Tensor] = None) -> Tensor:
    if pos_weight is None:
        return x.sigmoid() - target
    t = pos_weight * target
    return (t + 1 - target) * x.sigmoid() - t


_bce_logits_explicit = F.with_derivative(_bce_logits_derivative)(_bce_logits)


def binary_cross_entropy_with_logits(x: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                                     reduction: str = "mean", pos_weight: Optional[Tensor] = None) -> Tensor:
    """BCE on logits, computed stably: max(x, 0) - x*t + log(1 + exp(-|x|)), with torch's gradient sigmoid(x) - t
    (the pieces' kinks at 0 would not add up to it)."""
    plain = pos_weight.detach() if pos_weight is not None else None
    loss = _bce_logits_explicit(x, target.detach(), plain)
    if target.requires_grad or (pos_weight is not None and pos_weight.requires_grad):  # their gradients through the
        loss = loss + (_bce_logits(x.detach(), target, pos_weight) -  # pieces, zero in value
                       _bce_logits(x.detach(), target.detach(), plain))
    return _reduce_loss(loss * weight if weight is not None else loss, reduction, "binary_cross_entropy_with_logits")


def nll_loss(x: Tensor, target: Tensor, weight: Optional[Tensor] = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices; input (N, C) or (N, C, d1, ...), target (N, d1, ...)."""
    c = x.shape[1] if x.ndim > 1 else x.shape[0]
    if target.dtype.is_float:
        raise RuntimeError(f"nll_loss: target must hold class indices (an integer dtype), got {target.dtype.name}")
    batched = x.ndim > 1
    inp = x if batched else x.unsqueeze(0)
    t = target if batched else target.unsqueeze(0)
    if inp.shape[:1] + inp.shape[2:] != t.shape:
        raise RuntimeError(f"nll_loss: input {x.shape} and target {target.shape} do not match; the target "
                           "must be the input's shape without the class dim")
    check_range("nll_loss (target)", t, c, ignore=ignore_index)
    shape = (1, c, *(1,) * (inp.ndim - 2))
    with no_grad():  # which entry each position picks (none where the target is ignored): no gradient
        hit = t.unsqueeze(1) == _tensor(x).arange(c, device=x.device).reshape(shape)
        if 0 <= ignore_index < c:  # an ignored target that names a class picks nothing either
            hit = hit.logical_and((t != ignore_index).unsqueeze(1))
    w = weight.reshape(shape) if weight is not None else None
    picked = (inp * w if w is not None else inp)._apply(PickClasses, mask=hit.node)
    if reduction == "mean":  # over the weights of the picked entries (their count, unweighted)
        with no_grad():
            denom = (hit.cast(x.dtype) * w if w is not None else hit.cast(x.dtype)).sum()
        return -picked.sum() / denom
    out = _reduce_loss(-picked, reduction, "nll_loss")
    return out if batched or reduction != "none" else out.squeeze(0)


class PickClasses(F.Function):
    """The entries of x (N, C, ...) that `mask` selects, at most one class per position, summed over the classes:
    nll_loss's differentiable part as one rule (a select and a sum recorded apart cost 5 rules to build). The
    gradient goes to the selected entries; a select, so the -inf log-probabilities elsewhere never meet a 0."""

    def forward(self, x: Node, mask: Node) -> Node:
        self.mask, self.x_shape = mask, x.shape
        picked = mask.alu(Op.WHERE, x, x.const_like(0)).reduce(Op.SUM, (1,))
        self.kept = picked.shape
        return picked.movement(Op.RESHAPE, x.shape[:1] + x.shape[2:])

    def backward(self, grad: Node) -> Node:
        spread = grad.movement(Op.RESHAPE, self.kept).movement(Op.EXPAND, self.x_shape)
        return self.mask.alu(Op.WHERE, spread, spread.const_like(0))


def cross_entropy(x: Tensor, target: Tensor, weight: Optional[Tensor] = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits against class indices or class probabilities, as torch's."""
    logp = x.log_softmax(1 if x.ndim > 1 else 0)
    c = x.shape[1] if x.ndim > 1 else x.shape[0]
    cdim = 1 if x.ndim > 1 else 0
    wshape = [1] * x.ndim
    wshape[cdim] = c
    if target.dtype.is_float:  # probabilities
        if target.shape != x.shape:
            raise RuntimeError(f"cross_entropy: class probabilities {target.shape} must have the input's shape "
                               f"{x.shape} (or pass class indices of an integer dtype)")
        t = target * (1 - label_smoothing) + label_smoothing / c if label_smoothing else target
        terms = logp * t * (weight.reshape(*wshape) if weight is not None else 1)
        return _reduce_loss(-terms.sum(cdim), reduction, "cross_entropy") if reduction != "mean" \
            else -terms.sum() / (math.prod(x.shape) // c)
    nll = logp.nll_loss(target, weight, ignore_index, reduction)
    if not label_smoothing:
        return nll
    valid = (target != ignore_index).cast(x.dtype)
    w = weight.reshape(*wshape) if weight is not None else None
    smooth = -(logp * w if w is not None else logp).sum(cdim) * valid
    if reduction == "mean":
        if w is not None:
            classes = _tensor(x).arange(c, device=x.device).reshape(*wshape)
            onehot = (target.unsqueeze(cdim) == classes).cast(x.dtype)
            smooth = smooth.sum() / ((onehot * w).sum(cdim) * valid).sum()
        else:
            smooth = smooth.sum() / valid.sum()
    else:
        smooth = _reduce_loss(smooth, reduction, "cross_entropy")
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / c)


# ---- normalisation -------------------------------------------------------------------------------
@dt.computed_in_float32  # halves: statistics in float32, rounded once (as torch; up to 29 ulps off before)
def layer_norm(x: Tensor, normalized_shape: Union[int, Sequence[int]], weight: Optional[Tensor] = None,
               bias: Optional[Tensor] = None, eps: float = 1e-5) -> Tensor:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if x.shape[-len(shape):] != shape:
        raise RuntimeError(f"layer_norm: input {x.shape} does not end with normalized_shape {shape}")
    dims = tuple(range(x.ndim - len(shape), x.ndim))
    mean = x.mean(dims, keepdim=True)
    centered = x - mean
    out = centered * ((centered * centered).mean(dims, keepdim=True) + eps).rsqrt()
    out = out * weight if weight is not None else out
    return out + bias if bias is not None else out


@dt.computed_in_float32
def rms_norm(x: Tensor, normalized_shape: Union[int, Sequence[int]], weight: Optional[Tensor] = None,
             eps: Optional[float] = None) -> Tensor:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    dims = tuple(range(x.ndim - len(shape), x.ndim))
    e = eps if eps is not None else float(np.finfo(x.dtype.np).eps)
    out = x * ((x * x).mean(dims, keepdim=True) + e).rsqrt()
    return out * weight if weight is not None else out


@dt.computed_in_float32
def batch_norm(x: Tensor, running_mean: Optional[Tensor], running_var: Optional[Tensor],
               weight: Optional[Tensor] = None, bias: Optional[Tensor] = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch norm over dim 1. In training, batch statistics are used and the running ones updated."""
    shape = [1, x.shape[1], *[1] * (x.ndim - 2)]
    dims = tuple(i for i in range(x.ndim) if i != 1)
    if training:
        mean = x.mean(dims)
        var = x.var(dims, correction=0)
        if running_mean is not None and running_var is not None:
            n = x.numel() // x.shape[1]
            new_mean = (running_mean * (1 - momentum) + mean.detach() * momentum).cast(running_mean.dtype).realize()
            new_var = (running_var * (1 - momentum) + var.detach() * (n / max(n - 1, 1)) * momentum) \
                .cast(running_var.dtype).realize()
            running_mean.node, running_var.node = new_mean.node, new_var.node
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("batch_norm: running_mean and running_var are needed when training=False")
        mean, var = running_mean, running_var
    out = (x - mean.reshape(*shape)) * (var.reshape(*shape) + eps).rsqrt()
    out = out * weight.reshape(*shape) if weight is not None else out
    return out + bias.reshape(*shape) if bias is not None else out


@dt.computed_in_float32
def group_norm(x: Tensor, num_groups: int, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
               eps: float = 1e-5) -> Tensor:
    n, c = x.shape[:2]
    if c % num_groups:
        raise RuntimeError(f"group_norm: {c} channels cannot be split into {num_groups} groups")
    grouped = x.reshape(n, num_groups, c // num_groups * math.prod(x.shape[2:]))  # not -1: a batch may be empty
    centered = grouped - grouped.mean(-1, keepdim=True)
    out = (centered * ((centered * centered).mean(-1, keepdim=True) + eps).rsqrt()).reshape(x.shape)
    shape = [1, c, *[1] * (x.ndim - 2)]
    out = out * weight.reshape(*shape) if weight is not None else out
    return out + bias.reshape(*shape) if bias is not None else out


@dt.computed_in_float32
def instance_norm(x: Tensor, running_mean: Optional[Tensor] = None, running_var: Optional[Tensor] = None,
                  weight: Optional[Tensor] = None, bias: Optional[Tensor] = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Each (sample, channel) normalised over its spatial dims (torch.nn.functional.instance_norm); with running
    statistics and use_input_stats=False, those are used instead (and are updated when given with input stats)."""
    if x.ndim < 3:
        raise RuntimeError(f"instance_norm: expected (N, C, ...) with spatial dims, got shape {x.shape}")
    c = x.shape[1]
    shape = [1, c, *[1] * (x.ndim - 2)]
    dims = tuple(range(2, x.ndim))
    if use_input_stats:
        mean, var = x.mean(dims, keepdim=True), x.var(dims, correction=0, keepdim=True)
        if running_mean is not None and running_var is not None:
            n = math.prod(x.shape[2:])
            batch_mean = mean.detach().mean(0).reshape(c)
            batch_var = var.detach().mean(0).reshape(c) * (n / max(n - 1, 1))
            new_mean = (running_mean * (1 - momentum) + batch_mean * momentum).cast(running_mean.dtype).realize()
            new_var = (running_var * (1 - momentum) + batch_var * momentum).cast(running_var.dtype).realize()
            running_mean.node, running_var.node = new_mean.node, new_var.node
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("instance_norm: running_mean and running_var are needed when use_input_stats=False")
        mean, var = running_mean.reshape(*shape), running_var.reshape(*shape)
    out = (x - mean) * (var + eps).rsqrt()
    out = out * weight.reshape(*shape) if weight is not None else out
    return out + bias.reshape(*shape) if bias is not None else out


def local_response_norm(x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """x / (k + alpha * mean of x^2 over `size` neighbouring channels)^beta (torch's local_response_norm)."""
    if x.ndim < 3:
        raise RuntimeError(f"local_response_norm: expected (N, C, ...) with spatial dims, got shape {x.shape}")
    sq = (x * x).unsqueeze(1)  # (N, 1, C, ...): the channels become a dim to pool over
    pads = [(0, 0)] * 2 + [(size // 2, (size - 1) // 2)] + [(0, 0)] * (x.ndim - 2)
    windows = sq._pad_dims(pads).unfold(2, size, 1)  # (N, 1, C, ..., size)
    div = windows.mean(-1).squeeze(1)
    return x / (div * alpha + k) ** beta


def normalize(x: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """x divided by its p-norm along `dim`, the norm at least eps (torch.nn.functional.normalize)."""
    return x / x.norm(p, dim, keepdim=True).maximum(eps)


def glu(x: Tensor, dim: int = -1) -> Tensor:
    """The first half of `dim` gated by the sigmoid of the second (torch.nn.functional.glu)."""
    d = x._dim(dim)
    if x.shape[d] % 2:
        raise RuntimeError(f"glu: dim {d} of shape {x.shape} must have an even size")
    a, b = x.split(x.shape[d] // 2, d)
    return a * b.sigmoid()


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """The p-norm of x1 - x2 + eps along the last dim (torch.nn.functional.pairwise_distance)."""
    return (x1 - x2 + eps).norm(p, -1, keepdim=keepdim)


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0) -> Tensor:
    """The p-norm distance between each row of x1 (..., P, M) and each of x2 (..., R, M): (..., P, R)."""
    if x1.ndim < 2 or x2.ndim < 2 or x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"cdist: expected (..., P, M) and (..., R, M), got {x1.shape} and {x2.shape}")
    return (x1.unsqueeze(-2) - x2.unsqueeze(-3)).norm(p, -1)


def margin_ranking_loss(x1: Tensor, x2: Tensor, target: Tensor, margin: float = 0.0,
                        reduction: str = "mean") -> Tensor:
    """max(0, -target * (x1 - x2) + margin)."""
    return _reduce_loss((-target * (x1 - x2) + margin).relu(), reduction, "margin_ranking_loss")


def hinge_embedding_loss(x: Tensor, target: Tensor, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """x where target is 1, max(0, margin - x) where it is -1; any other target gets both terms, as torch's."""
    loss = (target != -1).if_else(x, 0) + (target != 1).if_else((margin - x).clamp(min=0), 0)
    return _reduce_loss(loss, reduction, "hinge_embedding_loss")


def soft_margin_loss(x: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """log(1 + exp(-target * x)), as softplus: no overflow, and the gradient sigmoid(z) also at z = 0 (where the
    pieces relu(z) + log1p(exp(-|z|)) each have a kink, and their gradients added up to 0)."""
    return _reduce_loss(softplus(-target * x), reduction, "soft_margin_loss")


def cosine_embedding_loss(x1: Tensor, x2: Tensor, target: Tensor, margin: float = 0.0,
                          reduction: str = "mean") -> Tensor:
    """1 - cos(x1, x2) where target is 1, max(0, cos(x1, x2) - margin) where it is -1 (cos along the last dim)."""
    cos = (x1 * x2).sum(-1) / ((x1 * x1).sum(-1) * (x2 * x2).sum(-1) + 1e-12).sqrt()
    loss = (target == 1).if_else(1 - cos, 0) + (target == -1).if_else((cos - margin).relu(), 0)
    return _reduce_loss(loss, reduction, "cosine_embedding_loss")


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2.0,
                        eps: float = 1e-6, swap: bool = False, reduction: str = "mean") -> Tensor:
    """max(0, d(anchor, positive) - d(anchor, negative) + margin), d the pairwise p-distance."""
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = d_neg.minimum(pairwise_distance(positive, negative, p, eps))
    return _reduce_loss((d_pos - d_neg + margin).clamp(min=0), reduction, "triplet_margin_loss")


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor,
                                      distance_function: Optional[Any] = None, margin: float = 1.0,
                                      swap: bool = False, reduction: str = "mean") -> Tensor:
    """triplet_margin_loss with any distance (a function of two tensors; pairwise_distance by default)."""
    d = distance_function if distance_function is not None else pairwise_distance
    d_pos, d_neg = d(anchor, positive), d(anchor, negative)
    if swap:
        d_neg = d_neg.minimum(d(positive, negative))
    return _reduce_loss((d_pos - d_neg + margin).clamp(min=0), reduction, "triplet_margin_with_distance_loss")


def multilabel_margin_loss(x: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Per sample, the sum over its target classes j and the other classes i of max(0, 1 - (x[j] - x[i])), over
    the class count (torch's). `target` lists class indices, the first -1 ending the list."""
    x2 = x.reshape(1, -1) if x.ndim == 1 else x
    t = target.reshape(x2.shape)
    if t.dtype.is_float:
        raise RuntimeError(f"multilabel_margin_loss: target must hold class indices, got {t.dtype.name}")
    c = x2.shape[1]
    check_range("multilabel_margin_loss (target)", t, c, ignore=-1)
    with no_grad():  # which classes are targets: the entries before the first -1
        listed = (t != -1).cast(dt.int64).cumprod(1) > 0
        classes = _tensor(x).arange(c, device=x.device).reshape(1, 1, c)
        is_target = (listed.unsqueeze(2).logical_and(t.unsqueeze(2) == classes)).any(1)  # (n, c)
        pairs = is_target.unsqueeze(2).logical_and(is_target.logical_not().unsqueeze(1))  # (n, j, i)
    gap = (1 - (x2.unsqueeze(2) - x2.unsqueeze(1))).clamp(min=0)  # (n, j, i)
    loss = pairs.if_else(gap, 0).sum((1, 2)) / c
    return _reduce_loss(loss.reshape(()) if x.ndim == 1 else loss, reduction, "multilabel_margin_loss")


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1) -> Tensor:
    """softmax((logits + g) / tau) with Gumbel(0, 1) noise g (seeded by manual_seed); `hard` gives the one-hot of
    the largest, with the soft sample's gradient (straight-through), as torch's."""
    u = _tensor(logits).rand(*logits.shape, device=logits.device).cast(logits.dtype)
    gumbels = -(-(u.clamp(min=eps)).log()).log()  # -log(E), E ~ Exp(1) as -log(U)
    soft = ((logits + gumbels) / tau).softmax(dim)
    if not hard:
        return soft
    index = soft.argmax(dim, keepdim=True)
    d = dim % soft.ndim
    classes = _tensor(logits).arange(soft.shape[d], device=logits.device).reshape(
        *(soft.shape[d] if k == d else 1 for k in range(soft.ndim)))
    one_hot = (index == classes).cast(soft.dtype)
    return one_hot - soft.detach() + soft


def poisson_nll_loss(x: Tensor, target: Tensor, log_input: bool = True, full: bool = False, eps: float = 1e-8,
                     reduction: str = "mean") -> Tensor:
    """The negative log-likelihood of target under Poisson(x) (x a log-rate with log_input); `full` adds
    Stirling's term for targets above 1."""
    loss = x.exp() - target * x if log_input else x - target * (x + eps).log()
    if full:
        t = target._float()
        stirling = t * t.maximum(1).log() - t + 0.5 * (2 * math.pi * t.maximum(1)).log()
        loss = loss + (t > 1).if_else(stirling, 0)
    return _reduce_loss(loss, reduction, "poisson_nll_loss")


def gaussian_nll_loss(x: Tensor, target: Tensor, var: Union[Tensor, float], full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """0.5 (log(max(var, eps)) + (x - target)^2 / max(var, eps)), plus 0.5 log(2 pi) with `full`."""
    v = var if not isinstance(var, (int, float)) else _tensor(x).full((), var, x.dtype, x.device)
    if v.ndim and v.shape != x.shape and v.shape == x.shape[:-1]:  # one variance per sample
        v = v.unsqueeze(-1)
    v = v.detach().clamp(min=eps) + (v - v.detach())  # clamped without cutting the gradient, as torch
    loss = 0.5 * (v.log() + (x - target) ** 2 / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce_loss(loss, reduction, "gaussian_nll_loss")


def multilabel_soft_margin_loss(x: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                                reduction: str = "mean") -> Tensor:
    """The mean over classes of binary cross-entropy on logits, per sample."""
    loss = -(target * x.logsigmoid() + (1 - target) * (-x).logsigmoid())
    loss = (loss * weight if weight is not None else loss).mean(-1)
    return _reduce_loss(loss, reduction, "multilabel_soft_margin_loss")


def multi_margin_loss(x: Tensor, target: Tensor, p: int = 1, margin: float = 1.0, weight: Optional[Tensor] = None,
                      reduction: str = "mean") -> Tensor:
    """The mean over the wrong classes j of max(0, margin - x[y] + x[j])^p (times weight[y]), per sample."""
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: p must be 1 or 2, got {p}")
    x2 = x.reshape(1, -1) if x.ndim == 1 else x
    t = target.reshape(-1, 1)
    correct = x2.gather(1, t)
    gap = (margin - correct + x2).relu()
    gap = gap * gap if p == 2 else gap
    if weight is not None:
        gap = gap * weight[t.reshape(-1)].reshape(-1, 1)
    wrong = t != _tensor(x).arange(x2.shape[1], device=x.device).reshape(1, -1)
    loss = wrong.if_else(gap, 0).sum(1) / x2.shape[1]
    return _reduce_loss(loss.reshape(()) if x.ndim == 1 else loss, reduction, "multi_margin_loss")


# ---- others --------------------------------------------------------------------------------------
def dropout(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (seeded by manual_seed)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: probability must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return _written(x, x * 0, inplace)
    keep = _tensor(x).rand(*x.shape, device=x.device) >= p
    return _written(x, keep.if_else(x * (1 / (1 - p)), 0.0), inplace)


def _channel_dropout(op: str, x: Tensor, p: float, training: bool, spatial: int) -> Tensor:
    """Zero whole channels (dim 1 of (N, C, *spatial), or dim 0 of unbatched (C, *spatial)) with probability p."""
    if not 0 <= p <= 1:
        raise ValueError(f"{op}: probability must be in [0, 1], got {p}")
    if x.ndim not in (spatial + 1, spatial + 2):
        raise RuntimeError(f"{op}: expected a {spatial + 1}-D or {spatial + 2}-D input, got {x.shape}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    lead = x.ndim - spatial
    keep = _tensor(x).rand(*x.shape[:lead], *([1] * spatial), device=x.device) >= p
    return keep.if_else(x * (1 / (1 - p)), 0.0)


def dropout1d(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, L) with probability p, scaling the rest by 1/(1-p)."""
    return _written(x, _channel_dropout("dropout1d", x, p, training, 1), inplace)


def dropout2d(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, H, W) with probability p, scaling the rest by 1/(1-p)."""
    return _written(x, _channel_dropout("dropout2d", x, p, training, 2), inplace)


def dropout3d(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) with probability p, scaling the rest by 1/(1-p)."""
    return _written(x, _channel_dropout("dropout3d", x, p, training, 3), inplace)


def alpha_dropout(x: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """Dropout that keeps SELU's zero mean and unit variance: dropped elements become SELU's negative saturation
    value, then an affine map restores the moments (torch.nn.functional.alpha_dropout)."""
    if not 0 <= p <= 1:
        raise ValueError(f"alpha_dropout: probability must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    saturation = -1.7580993408473766  # -SELU scale * alpha
    a = ((1 - p) * (1 + p * saturation ** 2)) ** -0.5
    keep = _tensor(x).rand(*x.shape, device=x.device) >= p
    return _written(x, keep.if_else(x, saturation) * a + (-a * saturation * p), inplace)


def threshold(x: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value (torch.nn.functional.threshold)."""
    return _written(x, (x > threshold).if_else(x, value), inplace)


def prelu(x: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else weight * x, with one weight per channel (dim 1) or one for all."""
    w = weight
    if weight.numel() != 1:
        if x.ndim < 2 or x.shape[1] != weight.numel():
            raise RuntimeError(f"prelu: {weight.numel()} weights need an input with that many channels in dim 1, "
                               f"got {x.shape}")
        w = weight.reshape(weight.numel(), *([1] * (x.ndim - 2)))
    return (x > 0).if_else(x, w * x)


def rrelu(x: Tensor, lower: float = 1 / 8, upper: float = 1 / 3, training: bool = False,
          inplace: bool = False) -> Tensor:
    """Leaky ReLU with a random negative slope from U(lower, upper) per element in training, their mean otherwise."""
    if not training:
        return leaky_relu(x, (lower + upper) / 2, inplace)
    slope = _tensor(x).rand(*x.shape, device=x.device) * (upper - lower) + lower
    return _written(x, (x >= 0).if_else(x, x * slope), inplace)


def bilinear(x1: Tensor, x2: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """y_k = x1^T A_k x2 + b_k over the last dim of both inputs; weight (out, in1, in2)."""
    out = einsum("...i,kij,...j->...k", x1, weight, x2)
    return out + bias if bias is not None else out


def adaptive_avg_pool1d(x: Tensor, output_size: int) -> Tensor:
    return _adaptive_pool(x, output_size, 1, "mean")


def adaptive_avg_pool3d(x: Tensor, output_size: Union[int, Sequence[Optional[int]]]) -> Tensor:
    return _adaptive_pool(x, output_size, 3, "mean")


def adaptive_max_pool3d(x: Tensor, output_size: Union[int, Sequence[Optional[int]]]) -> Tensor:
    return _adaptive_pool(x, output_size, 3, "max")


def one_hot(x: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding along a new last dim, like torch.nn.functional.one_hot."""
    if x.dtype.is_float:
        raise RuntimeError("one_hot: only integer tensors are supported")
    n = num_classes if num_classes >= 0 else (int(x.max().item()) + 1 if x.numel() else 0)
    check_range("one_hot", x, n)
    classes = _tensor(x).arange(n, device=x.device)
    return (x.unsqueeze(-1) == classes).cast(dt.int64)


def embedding(x: Tensor, weight: Tensor, padding_idx: Optional[int] = None, max_norm: Optional[float] = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of `weight` at the indices in x (torch.nn.functional.embedding). The row at `padding_idx` gets no
    gradient; with `max_norm`, the rows looked up whose norm exceeds it are first scaled down to it in the weight
    itself (in place, as torch's). `sparse` changes only torch's gradient format: tg's gradient is dense."""
    if x.dtype.is_float:
        raise RuntimeError(f"embedding: indices must be integers, got {x.dtype.name}")
    if scale_grad_by_freq:
        raise NotImplementedError("embedding: scale_grad_by_freq=True is not supported; scale the gradient yourself")
    vocab = weight.shape[0]
    check_range("embedding", x, vocab)
    if max_norm is not None:
        with no_grad():
            used = (x.reshape(-1, 1) == _tensor(x).arange(vocab, device=x.device)).any(0).reshape(vocab, 1)
            norms = weight.norm(norm_type, dim=1, keepdim=True)
            too_long = used.logical_and(norms > max_norm)
            weight.copy_(too_long.if_else(weight * (max_norm / (norms + 1e-7)), weight))
    row = None
    if padding_idx is not None:
        row = padding_idx + vocab if padding_idx < 0 else padding_idx
        if not 0 <= row < vocab:
            raise ValueError(f"embedding: padding_idx {padding_idx} is outside the {vocab} rows")
    rows = x.reshape(-1, 1).expand(x.numel(), weight.shape[1]) if weight.ndim == 2 else None
    taken = take_along(weight, 0, rows) if rows is not None else None
    if taken is None:  # tensors over several devices: a contraction (non-finite weights would spread NaN)
        onehot = (x.unsqueeze(-1) == _tensor(x).arange(vocab, device=x.device)).cast(weight.dtype)
        if row is not None:
            keep = _tensor(x).arange(vocab, device=x.device).reshape(vocab, 1) != row
            weight = keep.if_else(weight, weight.detach())
        return onehot @ weight
    out = taken.reshape(*x.shape, weight.shape[1])
    if row is not None:  # the same values; no gradient reaches the padding row from where it was read
        out = (x.unsqueeze(-1) == row).if_else(out.detach(), out)
    return out


def masked_fill(x: Tensor, mask: Tensor, value: Union[float, int, bool, Tensor]) -> Tensor:
    """`value` where mask is true, else x."""
    tensor = _tensor(x)
    fill = tensor.full((), value, x.dtype, x.device) if isinstance(value, (int, float, bool)) else value
    return mask.if_else(fill, x)


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    r, c = x.shape[-2:]
    tensor = _tensor(x)
    keep = tensor.arange(r, device=x.device).reshape(r, 1) + diagonal >= tensor.arange(c, device=x.device)
    return keep.if_else(x, tensor.zeros((), dtype=x.dtype, device=x.device))


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    r, c = x.shape[-2:]
    tensor = _tensor(x)
    keep = tensor.arange(r, device=x.device).reshape(r, 1) + diagonal <= tensor.arange(c, device=x.device)
    return keep.if_else(x, tensor.zeros((), dtype=x.dtype, device=x.device))


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """out[..., i, ...] = x[..., index[..., i, ...], ...] along `dim` (torch.gather)."""
    d = x._dim(dim)
    if index.ndim != x.ndim or any(i > s for k, (i, s) in enumerate(zip(index.shape, x.shape)) if k != d):
        raise RuntimeError(f"gather: index {index.shape} must have the input's {x.ndim} dims and be no "
                           f"larger than input {x.shape} outside dim {d}")
    n = x.shape[d]
    check_range("gather", index, n, dim=d)
    x = x.shrink(tuple(None if k == d else (0, i) for k, i in enumerate(index.shape)))
    if (taken := take_along(x, d, index)) is not None:
        return taken
    onehot = index.unsqueeze(-1) == _tensor(x).arange(n, device=x.device)  # (..., n)
    src = x.unsqueeze(-1).transpose(d, -1)  # dim d moved to the end, where onehot's classes are
    return pick(onehot, src, (onehot.ndim - 1,)).squeeze(-1)


def _scatter_parts(x: Tensor, dim: int, index: Tensor, src: Any, last_wins: bool = False) -> tuple[Tensor, Tensor]:
    """(sum of the values sent to each position of x, whether any value was sent there)."""
    tensor = _tensor(x)
    d = x._dim(dim)
    if index.ndim != x.ndim or any(i > s for k, (i, s) in enumerate(zip(index.shape, x.shape)) if k != d):
        raise RuntimeError(f"scatter: index {index.shape} must have the input's {x.ndim} dims and be no larger than "
                           f"input {x.shape} outside dim {d}")
    values = src.shrink(tuple((0, n) for n in index.shape)) if isinstance(src, tensor) else \
        tensor.full(index.shape, src, x.dtype, x.device)
    n = x.shape[d]
    check_range("scatter", index, n, dim=d)
    onehot = index.unsqueeze(-1) == tensor.arange(n, device=x.device)  # index.shape + (n,)
    if last_wins:  # of the values sent to one position keep the last in index order (torch's CPU scatter)
        order = tensor.arange(index.shape[d], device=x.device).reshape(
            *(index.shape[d] if k == d else 1 for k in range(index.ndim)), 1)
        latest = onehot.if_else(order, -1).amax(d, keepdim=True)
        onehot = onehot.logical_and(order == latest)
    sent = onehot.if_else(values.cast(x.dtype).unsqueeze(-1), 0).sum(d, dtype=x.dtype).movedim(-1, d)
    hit = onehot.any(d).movedim(-1, d)
    pads = [(0, 0 if k == d else x.shape[k] - sent.shape[k]) for k in range(x.ndim)]
    return sent._pad_dims(pads), hit._pad_dims(pads)


def scatter(x: Tensor, dim: int, index: Tensor, src: Any, reduce: Optional[str] = None) -> Tensor:
    """x with src (a tensor or a number) written at index along dim, like torch.scatter.

    Where several values go to one position (torch leaves it undefined), the last in index order is written,
    as torch's CPU kernel does. reduce="add" or "multiply" combines them with x instead (torch's legacy form).
    """
    if reduce is not None:
        if reduce not in ("add", "multiply"):
            raise RuntimeError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r}")
        values = src if isinstance(src, _tensor(x)) else _tensor(x).full(index.shape, src, x.dtype, x.device)
        return scatter_reduce(x, dim, index, values, "sum" if reduce == "add" else "prod")
    if isinstance(src, _tensor(x)):
        _same_dtype("scatter", x, src)
        return x._apply(Scatter, src, dim=dim, index=index)
    _, hit = _scatter_parts(x, dim, index, src, last_wins=True)
    return hit.if_else(src, x)


class Scatter(F.Function):
    """scatter of a tensor, with torch's gradients: x's where nothing was written, and for src the gradient at
    each index it was sent to (gather), for the writes a later duplicate overwrote too."""

    def __init__(self, *tensors: Tensor):
        super().__init__(*tensors)
        self.tensor = tensors[0].tensor_class

    def forward(self, x: Node, src: Node, dim: int, index: Tensor) -> Node:
        target, values = self.tensor(x), self.tensor(src)
        self.dim, self.index, self.src_shape = target._dim(dim), index, values.shape
        with F.no_grad():
            sent, self.hit = _scatter_parts(target, dim, index, values, last_wins=True)
            return self.hit.if_else(sent, target).node

    def backward(self, grad: Node) -> F.Grads:
        with F.no_grad():
            g = self.tensor(grad)
            gx = self.hit.if_else(0, g) if self.needs_input_grad[0] else None
            gs = None
            if self.needs_input_grad[1]:
                picked = g.gather(self.dim, self.index)
                gs = picked._pad_dims([(0, n - m) for n, m in zip(self.src_shape, picked.shape)])
        return (gx.node if gx is not None else None, gs.node if gs is not None else None)


def _same_dtype(op: str, x: Tensor, src: Tensor) -> None:
    if src.dtype != x.dtype:
        raise RuntimeError(f"{op}: src is {src.dtype.name} but the tensor written to is {x.dtype.name}; they must "
                           f"match (torch's rule): cast src with .to({x.dtype.name})")


def scatter_add(x: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """x plus src added at index along dim, duplicates summed (torch.scatter_add)."""
    _same_dtype("scatter_add", x, src)
    sent, hit = _scatter_parts(x, dim, index, src)
    return hit.if_else(x + sent, x)  # positions nothing is sent to keep their value (-0.0 too)


@dt.computed_in_float32
def scaled_dot_product_attention(x: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor] = None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: Optional[float] = None, enable_gqa: bool = False) -> Tensor:
    """softmax(q k^T * scale + mask) v, like torch.nn.functional.scaled_dot_product_attention. With `enable_gqa`
    the key/value heads (dim -3) are shared by groups of query heads."""
    tensor = _tensor(x)
    if enable_gqa and x.ndim >= 3 and key.shape[-3] != x.shape[-3]:
        heads, kv_heads = x.shape[-3], key.shape[-3]
        if heads % kv_heads:
            raise RuntimeError(f"scaled_dot_product_attention: {heads} query heads cannot share {kv_heads} key/value "
                               "heads (enable_gqa needs a multiple)")
        key = key.repeat_interleave(heads // kv_heads, -3)
        value = value.repeat_interleave(heads // kv_heads, -3)
    s = scale if scale is not None else 1 / math.sqrt(x.shape[-1])
    scores = (x @ key.transpose(-2, -1)) * s
    lq, lk = x.shape[-2], key.shape[-2]
    if is_causal and attn_mask is not None:
        raise RuntimeError("scaled_dot_product_attention: give is_causal=True or an attn_mask, not both (torch "
                           "refuses the pair too); fold the causal mask into attn_mask instead")
    if is_causal:
        causal = tensor.ones(lq, lk, dtype=dt.bool_, device=x.device).tril()
        scores = causal.if_else(scores, -math.inf)
    if attn_mask is not None:
        scores = attn_mask.if_else(scores, -math.inf) if attn_mask.dtype == dt.bool_ else scores + attn_mask
    weights = scores.softmax(-1)
    if dropout_p:
        weights = weights.dropout(dropout_p)
    return weights @ value


# ---- linear maps built as matrices: einsum, resampling, transposed convolution --------------------
def _expand_ellipsis(specs: list[str], output: Optional[str], operands: Sequence[Tensor]) -> tuple[list[str], str]:
    """Name the dims an ellipsis covers with fresh capital letters, broadcast from the right."""
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in "".join(specs) + (output or "")]
    widest = max((t.ndim - len(s) + 3 for s, t in zip(specs, operands) if "..." in s), default=0)
    names = "".join(free[:widest])
    specs = [s.replace("...", names[widest - (t.ndim - len(s) + 3):]) if "..." in s else s
             for s, t in zip(specs, operands)]
    if output is None:
        letters = "".join(specs)
        return specs, names + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c not in names))
    return specs, output.replace("...", names)


def _diagonals(spec: str, t: Tensor) -> tuple[str, Tensor]:
    """Fold a subscript repeated within one operand ("ii") into its diagonal."""
    while len(set(spec)) != len(spec):
        c = next(ch for ch in spec if spec.count(ch) > 1)
        i, j = spec.index(c), spec.index(c, spec.index(c) + 1)
        n = t.shape[i]
        shape = [1] * t.ndim
        shape[i], shape[j] = n, n
        eye = (_tensor(t).arange(n, device=t.device).reshape(n, 1) == _tensor(t).arange(n, device=t.device))
        t = eye.reshape(*shape).if_else(t, 0).sum(j, dtype=t.dtype)
        spec = spec[:j] + spec[j + 1:]
    return spec, t


def einsum(equation: str, *operands: Tensor) -> Tensor:
    """Einstein summation ("ij,jk->ik", "...ij->...ji", "ii->i"); implicit output when "->" is absent."""
    eq = equation.replace(" ", "")
    inputs, arrow, output = eq.partition("->")
    specs = inputs.split(",")
    if len(specs) != len(operands):
        raise RuntimeError(f"einsum: {equation!r} names {len(specs)} operands, {len(operands)} were given")
    if "..." in eq:
        specs, output = _expand_ellipsis(specs, output if arrow else None, operands)
    elif not arrow:
        letters = "".join(specs)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    folded = [_diagonals(spec, t) for spec, t in zip(specs, operands)]
    specs, operands = [f[0] for f in folded], tuple(f[1] for f in folded)
    order = sorted(set("".join(specs)), key=lambda c: (c not in output, output.find(c), c))
    sizes: dict[str, int] = {}
    aligned = []
    for spec, t in zip(specs, operands):
        if len(spec) != t.ndim:
            raise RuntimeError(f"einsum: subscripts {spec!r} do not fit an operand of shape {t.shape}")
        for c, n in zip(spec, t.shape):
            if sizes.setdefault(c, n) != n and 1 not in (n, sizes[c]):
                raise RuntimeError(f"einsum: subscript {c!r} is {sizes[c]} in one operand and {n} in another")
            sizes[c] = max(sizes[c], n)
        perm = sorted(range(len(spec)), key=lambda i: order.index(spec[i]))
        moved = t.permute(*perm) if perm else t
        present = [spec[i] for i in perm]
        aligned.append(moved.reshape(*(moved.shape[present.index(c)] if c in present else 1 for c in order)))
    out = aligned[0]
    for t in aligned[1:]:
        out = out * t
    reduce_axes = tuple(i for i, c in enumerate(order) if c not in output)
    if reduce_axes:  # integer products keep their dtype (torch's; a sum alone widens to int64)
        out = out.sum(reduce_axes, dtype=out.dtype if out.dtype.is_int else None)
    return out




def _cubic_weights(t: float) -> list[float]:
    """Weights of the 4 neighbours (at -1, 0, 1, 2) of a point t in [0, 1) past the second (Keys' kernel, A=-0.75)."""
    a = CUBIC_A

    def near(x: float) -> float:
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: float) -> float:
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _resample_terms(n_in: int, n_out: int, mode: str, align_corners: bool,
                    scale: Optional[float]) -> list[tuple[np.ndarray, Optional[np.ndarray]]]:
    """torch's interpolation along one axis as terms (source index per output, weight per output or None for a plain
    selection): out[i] = sum over terms of weight[i] * x[index[i]]. Nearest modes pick exactly (no arithmetic, so an
    inf or NaN stays where it is), linear blends two neighbours, cubic four (clamped at the borders)."""
    ratio = (1 / scale) if scale else n_in / n_out
    out = np.arange(n_out)
    if mode in ("nearest", "nearest-exact"):
        shift = 0.5 if mode == "nearest-exact" else 0.0  # pixel centres: torch's fix of "nearest"'s half-pixel shift
        return [(np.minimum(np.floor((out + shift) * ratio).astype(np.int64), n_in - 1), None)]
    if align_corners:
        src = out * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        src = (out + 0.5) * ratio - 0.5
        if mode != "cubic":
            src = np.maximum(src, 0.0)
    first = np.floor(src).astype(np.int64)
    frac = src - first
    if mode == "cubic":
        weights = np.array([_cubic_weights(t) for t in frac]).T
        return [(np.clip(first + k - 1, 0, n_in - 1), weights[k]) for k in range(4)]
    i0 = np.minimum(first, n_in - 1)
    return [(i0, 1 - frac), (np.minimum(i0 + 1, n_in - 1), frac)]


def _resample_axis(x: Tensor, d: int, terms: list[tuple[np.ndarray, Optional[np.ndarray]]]) -> Tensor:
    tensor = _tensor(x)
    out: Optional[Tensor] = None
    for index, weight in terms:
        part = x.index_select(d, tensor(index, device=x.device))
        if weight is not None:
            shape = [1] * x.ndim
            shape[d] = len(weight)
            part = part * tensor(weight.astype(x.dtype.np), device=x.device).reshape(*shape)
        out = part if out is None else out + part
    assert out is not None
    return out


INTERPOLATE_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}  # modes made for one spatial rank


@dt.computed_in_float32
def interpolate(x: Tensor, size: Optional[Union[int, Sequence[int]]] = None,
                scale_factor: Optional[Union[float, Sequence[float]]] = None, mode: str = "nearest",
                align_corners: Optional[bool] = None, recompute_scale_factor: Optional[bool] = None,
                antialias: bool = False) -> Tensor:
    """Resize the spatial dims of (N, C, ...) input (torch.nn.functional.interpolate): modes nearest, nearest-exact,
    linear (3-D input), bilinear and bicubic (4-D), trilinear (5-D) and area (adaptive average pooling). With
    recompute_scale_factor, a scale_factor only sets the output size, from which the sampling scale follows."""
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported; blur before downsampling, or resize "
                                  "with mode='area'")
    if recompute_scale_factor and scale_factor is not None:
        factors = [scale_factor] * (x.ndim - 2) if isinstance(scale_factor, (int, float)) else list(scale_factor)
        size, scale_factor = [math.floor(n * f) for n, f in zip(x.shape[2:], factors)], None
    nd = x.ndim - 2
    if nd < 1:
        raise RuntimeError(f"interpolate: expected (N, C, ...) input with spatial dims, got {x.shape}")
    if mode not in ("nearest", "nearest-exact", "area", *INTERPOLATE_DIMS):
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported; use nearest, nearest-exact, linear, "
                                  "bilinear, bicubic, trilinear or area")
    if mode in INTERPOLATE_DIMS and INTERPOLATE_DIMS[mode] != nd:
        raise NotImplementedError(f"interpolate: mode {mode!r} needs {INTERPOLATE_DIMS[mode] + 2}-D input, got "
                                  f"{x.ndim}-D {x.shape}")
    if align_corners is not None and mode not in INTERPOLATE_DIMS:
        raise ValueError(f"interpolate: align_corners only applies to linear, bilinear, bicubic and trilinear modes, "
                         f"not {mode!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    spatial = x.shape[2:]
    scales: list[Optional[float]]
    if size is not None:
        outs = [size] * nd if isinstance(size, int) else list(size)
        scales = [None] * nd
    else:
        sf = [scale_factor] * nd if isinstance(scale_factor, (int, float)) else list(scale_factor)  # type: ignore
        outs = [math.floor(n * f) for n, f in zip(spatial, sf)]
        scales = [float(f) for f in sf]
    if mode == "area":
        return _adaptive(x._float(), outs, "mean")
    kind = "cubic" if mode == "bicubic" else ("linear" if mode in INTERPOLATE_DIMS else mode)
    if kind in ("nearest", "nearest-exact") or x.dtype.is_float:  # selections keep any dtype
        out = x if kind in ("nearest", "nearest-exact") else x._float()
        for k, (n, o, sc) in enumerate(zip(spatial, outs, scales)):
            out = _resample_axis(out, 2 + k, _resample_terms(n, o, kind, bool(align_corners), sc))
        return out
    # an integer image stays one, as in torch: each axis in turn, the last first, blended in float32 and rounded back
    out, info = x, np.iinfo(x.dtype.np) if x.dtype != dt.bool_ else np.iinfo(np.uint8)
    for k in reversed(range(nd)):
        blend = _resample_axis(out.cast(dt.float32), 2 + k, _resample_terms(spatial[k], outs[k], kind,
                                                                             bool(align_corners), scales[k]))
        out = blend.round().clamp(int(info.min), int(info.max)).cast(x.dtype)
    return out


def _adaptive(x: Tensor, outs: Sequence[Optional[int]], how: str) -> Tensor:
    """Mean or max over torch's adaptive windows [floor(i*n/o), ceil((i+1)*n/o)) of the last len(outs) dims, one dim
    at a time (a box's mean or max is that of its rows'). Each window is a select over a mask, not a product with
    zeros: an inf or NaN stays in the windows that hold it."""
    tensor = _tensor(x)
    for k, o in enumerate(outs):
        d = x.ndim - len(outs) + k
        n = x.shape[d]
        o = n if o is None else o
        inside = _adaptive_windows(n, o)
        mask = tensor(inside, device=x.device)
        rows = x.movedim(d, -1).unsqueeze(-2)  # (..., 1, n) against (o, n)
        if how == "mean":
            pooled = mask.if_else(rows, 0.0).sum(-1) / tensor(inside.sum(1).astype(x.dtype.np), device=x.device)
        else:
            pooled = mask.if_else(rows, -math.inf).amax(-1)
        x = pooled.movedim(-1, d)
    return x


def _adaptive_windows(n: int, o: int) -> np.ndarray:
    """(o, n): which of n positions each of o adaptive windows covers, [floor(i*n/o), ceil((i+1)*n/o)) (torch's)."""
    inside = np.zeros((o, n), bool)
    for i in range(o):
        inside[i, (i * n) // o:-((-(i + 1) * n) // o)] = True
    return inside


def adaptive_avg_pool2d(x: Tensor, output_size: Union[int, Sequence[Optional[int]]]) -> Tensor:
    """Average over torch's adaptive windows [floor(i*n/o), ceil((i+1)*n/o)) of the last two dims."""
    return _adaptive_pool(x, output_size, 2, "mean")


def adaptive_max_pool2d(x: Tensor, output_size: Union[int, Sequence[Optional[int]]],
                        return_indices: bool = False) -> Any:
    """Maximum over torch's adaptive windows of the last two dims (torch.nn.functional.adaptive_max_pool2d); with
    `return_indices`, also each maximum's flat index over H*W."""
    if return_indices:
        return _adaptive_max_with_indices(x, output_size, 2)
    return _adaptive_pool(x, output_size, 2, "max")


def adaptive_max_pool1d(x: Tensor, output_size: int, return_indices: bool = False) -> Any:
    if return_indices:
        return _adaptive_max_with_indices(x, output_size, 1)
    return _adaptive_pool(x, output_size, 1, "max")


def _adaptive_max_with_indices(x: Tensor, output_size: Union[int, Sequence[Optional[int]]],
                               nd: int) -> ValuesIndices:
    """Adaptive max pooling with the flat index of each window's maximum (the first; a NaN wins, as torch): every
    window as a mask over the flattened spatial dims, so it costs outputs x inputs per channel."""
    spatial = x.shape[-nd:]
    outs = [output_size] * nd if isinstance(output_size, int) else list(output_size)
    outs = [n if o is None else o for n, o in zip(spatial, outs)]
    windows = np.ones((1,) * nd + (1,) * nd, bool)
    for k, (n, o) in enumerate(zip(spatial, outs)):
        shape = [1] * (2 * nd)
        shape[k], shape[nd + k] = o, n
        windows = windows & _adaptive_windows(n, o).reshape(shape)
    mask = _tensor(x)(windows.reshape(*outs, -1), device=x.device)  # (*outs, H*W)
    lead = x.shape[:-nd]
    flat = x.reshape(*lead, *(1,) * nd, math.prod(spatial))
    lowest = -math.inf if x.dtype.is_float else int(np.iinfo(x.dtype.np).min)
    values, indices = mask.if_else(flat, lowest).max(-1)
    return ValuesIndices(values, indices)


def _adaptive_pool(x: Tensor, output_size: Union[int, Sequence[Optional[int]]], nd: int, how: str) -> Tensor:
    """An adaptive pool over the last `nd` dims: an int size is every dim's; a mean is computed in floats."""
    outs = [output_size] * nd if isinstance(output_size, int) else list(output_size)
    return _adaptive(x._float() if how == "mean" else x, outs, how)


def lp_pool2d(x: Tensor, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False) -> Tensor:
    """(sum over each window of x ** p) ** (1 / p) (torch.nn.functional.lp_pool2d, computed as torch does: from the
    window average times its size)."""
    kh, kw = _pair(kernel_size, 2)
    out = (x ** norm_type).avg_pool2d((kh, kw), stride, 0, ceil_mode)
    return (out.sign() * out.abs().relu() * (kh * kw)) ** (1.0 / norm_type)


def lp_pool1d(x: Tensor, norm_type: float, kernel_size: int, stride: Optional[int] = None,
              ceil_mode: bool = False) -> Tensor:
    return lp_pool2d(x.unsqueeze(-2), norm_type, (1, kernel_size), (1, stride or kernel_size), ceil_mode).squeeze(-2)


def _conv_transpose(op: str, nd: int, x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: Any, padding: Any,
                    output_padding: Any, groups: int, dilation: Any) -> Tensor:
    """Transposed convolution over nd spatial dims: weight (C_in, C_out/groups, *kernel).

    The input is spread out by the stride (zeros between elements), padded, and convolved with the
    flipped kernel whose in/out channels are swapped.
    """
    batched = x.ndim == nd + 2
    inp = x if batched else x.unsqueeze(0)
    if inp.ndim != nd + 2 or weight.ndim != nd + 2:
        raise RuntimeError(f"{op}: expected input of {nd + 1} or {nd + 2} dims and weight of {nd + 2}, got input "
                           f"{x.shape} and weight {weight.shape}")
    c_in, og, ks = weight.shape[0], weight.shape[1], weight.shape[2:]
    if inp.shape[1] != c_in:
        raise RuntimeError(f"{op}: input has {inp.shape[1]} channels, weight {weight.shape} expects {c_in}")
    st, pd = inp._spatial(op, nd, stride, "stride", 1), inp._spatial(op, nd, padding, "padding")
    opad, dil = inp._spatial(op, nd, output_padding, "output_padding"), inp._spatial(op, nd, dilation, "dilation", 1)
    spread = inp
    for d, s in zip(range(2, nd + 2), st):
        if s > 1:
            size, shape = spread.shape[d], spread.shape
            spread = spread.reshape(*shape[:d + 1], 1, *shape[d + 1:])
            spread = spread._pad_dims([(0, s - 1) if i == d + 1 else (0, 0) for i in range(spread.ndim)])
            spread = spread.reshape(*shape[:d], size * s, *shape[d + 1:]).narrow(d, 0, (size - 1) * s + 1)
    pads = [(dl * (k - 1) - p, dl * (k - 1) - p + o) for k, p, o, dl in zip(ks, pd, opad, dil)]
    spread = spread._pad_dims([(0, 0), (0, 0), *pads])
    wt = weight.reshape(groups, c_in // groups, og, *ks).transpose(1, 2)
    wt = wt.reshape(groups * og, c_in // groups, *ks).flip(*range(2, nd + 2))
    out = spread._conv(op, nd, wt, bias, 1, 0, dil, groups)
    return out if batched else out.squeeze(0)


def conv_transpose1d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> Tensor:
    """Transposed 1-D convolution (torch.nn.functional.conv_transpose1d): weight (C_in, C_out/groups, K)."""
    return _conv_transpose("conv_transpose1d", 1, x, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose2d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> Tensor:
    """Transposed 2-D convolution (torch.nn.functional.conv_transpose2d): weight (C_in, C_out/groups, KH, KW)."""
    return _conv_transpose("conv_transpose2d", 2, x, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose3d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> Tensor:
    """Transposed 3-D convolution (torch.nn.functional.conv_transpose3d)."""
    return _conv_transpose("conv_transpose3d", 3, x, weight, bias, stride, padding, output_padding, groups, dilation)


# ---- torch.nn.functional spellings of ops that live on Tensor --------------------------------------------
def conv1d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    return x.conv1d(weight, bias, stride, padding, dilation, groups)


def conv2d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    return x.conv2d(weight, bias, stride, padding, dilation, groups)


def conv3d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    return x.conv3d(weight, bias, stride, padding, dilation, groups)


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    return x.max_pool2d(kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_unpool2d(x: Tensor, indices: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 output_size: Optional[Sequence[int]] = None) -> Tensor:
    """The inverse of max_pool2d with return_indices (torch.nn.functional.max_unpool2d): zeros, with each value put
    back at its flat (H*W) index. The size is (in - 1) * stride - 2 * padding + kernel unless `output_size` says."""
    ks, st, pad = _pair(kernel_size, 2), _pair(stride if stride is not None else kernel_size, 2), _pair(padding, 2)
    size = tuple((n - 1) * s - 2 * p + k for n, s, p, k in zip(x.shape[-2:], st, pad, ks))
    if output_size is not None:
        size = tuple(output_size)[-2:]
    if indices.shape != x.shape:
        raise RuntimeError(f"max_unpool2d: indices of shape {indices.shape} must match the input's {x.shape}")
    lead = x.shape[:-2]
    flat = _tensor(x).zeros(*lead, size[0] * size[1], dtype=x.dtype, device=x.device)
    out = flat.scatter(-1, indices.reshape(*lead, -1).cast(dt.int64), x.reshape(*lead, -1))
    return out.reshape(*lead, *size)


def max_unpool1d(x: Tensor, indices: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 output_size: Optional[Sequence[int]] = None) -> Tensor:
    """max_unpool2d over the last dim of (N, C, L) or (C, L)."""
    size = None if output_size is None else (1, tuple(output_size)[-1])
    out = max_unpool2d(x.unsqueeze(-2), indices.unsqueeze(-2), (1, _pair(kernel_size, 1)[0]),
                       (1, _pair(stride if stride is not None else kernel_size, 1)[0]), (0, _pair(padding, 1)[0]), size)
    return out.squeeze(-2)


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: Optional[int] = None) -> Tensor:
    return x.avg_pool2d(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    return x.linear(weight, bias)


def unfold(x: Tensor, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1) -> Tensor:
    """Sliding blocks as columns (torch.nn.functional.unfold, im2col): input (N, C, H, W) or (C, H, W), output
    (N, C * kh * kw, L) with L the number of block positions; a window view over the padding, copied once by the
    final reshape. (Tensor.unfold is torch's Tensor.unfold: windows along one dim.)"""
    batched = x if x.ndim == 4 else x.unsqueeze(0) if x.ndim == 3 else None
    if batched is None:
        raise RuntimeError(f"unfold: expected a 3-D or 4-D input (N, C, H, W), got shape {x.shape}")
    ks = batched._spatial("unfold", 2, kernel_size, "kernel_size", 1)
    dil, st = batched._spatial("unfold", 2, dilation, "dilation", 1), batched._spatial("unfold", 2, stride, "stride", 1)
    pd = batched._spatial("unfold", 2, padding, "padding")
    padded = [m + 2 * p for m, p in zip(batched.shape[2:], pd)]
    if any(m < d * (k - 1) + 1 for m, k, d in zip(padded, ks, dil)):
        raise RuntimeError(f"unfold: kernel {ks} (dilation {dil}) is larger than the padded input {tuple(padded)}")
    n, c = batched.shape[:2]
    win = batched._pad_dims([(0, 0), (0, 0), *[(p, p) for p in pd]])._windows(ks, st, dil)  # (n, c, oh, ow, kh, kw)
    out = win.permute(0, 1, 4, 5, 2, 3).reshape(n, c * ks[0] * ks[1], win.shape[2] * win.shape[3])
    return out if x.ndim == 4 else out.squeeze(0)


def fold(x: Tensor, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
         stride: Any = 1) -> Tensor:
    """Columns of sliding blocks summed back into an image (torch.nn.functional.fold, col2im): input
    (N, C * kh * kw, L) or (C * kh * kw, L), output (N, C, *output_size); overlapping blocks add up. The adjoint of
    unfold, whose gradient it is, and that unfold is its gradient."""
    batched = x if x.ndim == 3 else x.unsqueeze(0) if x.ndim == 2 else None
    if batched is None:
        raise RuntimeError(f"fold: expected a 2-D or 3-D input (N, C * kh * kw, L), got shape {x.shape}")
    size = batched._spatial("fold", 2, output_size, "output_size", 1)
    ks = batched._spatial("fold", 2, kernel_size, "kernel_size", 1)
    dil, st = batched._spatial("fold", 2, dilation, "dilation", 1), batched._spatial("fold", 2, stride, "stride", 1)
    pd = batched._spatial("fold", 2, padding, "padding")
    out = col2im(batched, size, ks, dil, [(p, p) for p in pd], st, "fold")
    return out if x.ndim == 3 else out.squeeze(0)


def col2im(x: Tensor, size: Sequence[int], ks: Sequence[int], dil: Sequence[int], pads: Sequence[tuple[int, int]],
           st: Sequence[int], op: str = "col2im") -> Tensor:
    """fold over any number of spatial dims (ONNX's Col2Im): x (N, C * prod(ks), L) -> (N, C, *size)."""
    padded = [m + lo + hi for m, (lo, hi) in zip(size, pads)]
    outs = [(m - d * (k - 1) - 1) // s + 1 for m, k, d, s in zip(padded, ks, dil, st)]
    blocks = math.prod(ks)
    if x.shape[1] % blocks or x.shape[2] != math.prod(outs) or min(outs, default=1) < 1:
        raise RuntimeError(f"{op}: input {x.shape} does not hold C x {blocks} block values (kernel {tuple(ks)}) at "
                           f"{math.prod(outs)} positions ({tuple(outs)} for output {tuple(size)}, padding "
                           f"{tuple(pads)}, stride {tuple(st)}, dilation {tuple(dil)})")
    n, c, nd = x.shape[0], x.shape[1] // blocks, len(ks)
    cols = x.reshape(n, c, *ks, *outs).permute(0, 1, *range(2 + nd, 2 + 2 * nd), *range(2, 2 + nd))
    image = cols._apply(Col2Im, arg=tuple(zip(ks, st, dil)), shape=(n, c, *padded))
    return image._pad_dims([(0, 0), (0, 0), *[(-lo, -hi) for lo, hi in pads]])


class Col2Im(F.Function):
    """Blocks (..., *outs, *kernel) summed into an image: the window view's adjoint, whose gradient is that view."""

    def forward(self, x: Node, arg: tuple[tuple[int, int, int], ...], shape: tuple[int, ...]) -> Node:
        self.arg = arg
        return F.window_adjoint(x, arg, shape)

    def backward(self, grad: Node) -> Node:
        return grad.movement(Op.WINDOW, self.arg)


def pad(x: Tensor, padding: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    return x.pad(padding, mode, value)


def relu(x: Tensor, inplace: bool = False) -> Tensor:
    return _written(x, x.relu(), inplace)


def celu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _written(x, x.celu(alpha), inplace)


def selu(x: Tensor, inplace: bool = False) -> Tensor:
    return _written(x, x.selu(), inplace)


def hardshrink(x: Tensor, lambd: float = 0.5) -> Tensor:
    return x.hardshrink(lambd)


def softshrink(x: Tensor, lambd: float = 0.5) -> Tensor:
    return x.softshrink(lambd)


def tanhshrink(x: Tensor) -> Tensor:
    return x.tanhshrink()


def logsigmoid(x: Tensor) -> Tensor:
    return x.logsigmoid()


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave the channels of (N, C, ...) from `groups` groups (torch.nn.functional.channel_shuffle)."""
    n, c = x.shape[:2]
    if c % groups:
        raise RuntimeError(f"channel_shuffle: {c} channels do not split into {groups} groups")
    return x.reshape(n, groups, c // groups, *x.shape[2:]).transpose(1, 2).reshape(x.shape)


def pdist(x: Tensor, p: float = 2.0) -> Tensor:
    """The p-norm distance of every pair of rows i < j of (N, M), in row-major pair order (torch.pdist)."""
    n = x.shape[0]
    rows, cols = np.triu_indices(n, 1)
    tensor = _tensor(x)
    a, b = x.index_select(0, tensor(rows, device=x.device)), x.index_select(0, tensor(cols, device=x.device))
    return (a - b).norm(p, dim=-1)


def upsample(x: Tensor, size: Optional[Union[int, Sequence[int]]] = None,
             scale_factor: Optional[Union[float, Sequence[float]]] = None, mode: str = "nearest",
             align_corners: Optional[bool] = None) -> Tensor:
    """interpolate's old name."""
    return interpolate(x, size, scale_factor, mode, align_corners)


def pixel_shuffle(x: Tensor, upscale_factor: int) -> Tensor:
    return x.pixel_shuffle(upscale_factor)


def pixel_unshuffle(x: Tensor, downscale_factor: int) -> Tensor:
    return x.pixel_unshuffle(downscale_factor)


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def softmax(x: Tensor, dim: int = -1, dtype: Optional[Union[dt.DType, str]] = None) -> Tensor:
    return x.softmax(dim, dtype=dtype)


def log_softmax(x: Tensor, dim: int = -1, dtype: Optional[Union[dt.DType, str]] = None) -> Tensor:
    return x.log_softmax(dim, dtype=dtype)


# ---- more of torch's names: selections with data-dependent shapes, statistics, matrices -----------------------
def nonzero(x: Tensor, as_tuple: bool = False) -> Any:
    """Indices of the nonzero elements, (count, ndim) int64 (or one tensor per dim with `as_tuple`). The count
    depends on the data, so x is read here (as torch does)."""
    tensor = _tensor(x)
    positions = np.nonzero(x.numpy().reshape(x.shape) if x.ndim else x.numpy().reshape(1))
    if as_tuple:
        return tuple(tensor(p.astype(np.int64), device=x.device) for p in positions)
    if x.ndim == 0:  # (1, 0) for a nonzero scalar, (0, 0) for a zero one: a row per hit, no coordinates (torch)
        return tensor(np.zeros((len(positions[0]), 0), np.int64), device=x.device)
    return tensor(np.stack(positions, -1).astype(np.int64).reshape(-1, x.ndim), device=x.device)


def masked_select(x: Tensor, mask: Tensor) -> Tensor:
    """The elements of x where mask (broadcast with x) holds, as a 1-D tensor (torch.masked_select)."""
    shape = broadcast_shape("masked_select", x.shape, mask.shape)
    return x.expand(*shape)[mask.cast(dt.bool_).expand(*shape)]


def var_mean(x: Tensor, dim: Dims = None, correction: float = 1, keepdim: bool = False) -> tuple[Tensor, Tensor]:
    return x.var(dim, correction, keepdim), x.mean(dim, keepdim)


def std_mean(x: Tensor, dim: Dims = None, correction: float = 1, keepdim: bool = False) -> tuple[Tensor, Tensor]:
    return x.std(dim, correction, keepdim), x.mean(dim, keepdim)


def cummax(x: Tensor, dim: int) -> Any:
    """(running maximum, index of the latest maximum) along `dim` (torch.cummax; NaN, once seen, stays)."""
    d = x._dim(dim)
    if x.ndim == 0 or x.shape[d] == 0:
        return ValuesIndices(x, _tensor(x).zeros(*x.shape, dtype=dt.int64, device=x.device))
    n = x.shape[d]
    moved = x.transpose(d, -1)
    fill = -math.inf if x.dtype.is_float else (False if x.dtype == dt.bool_ else int(np.iinfo(x.dtype.np).min))
    win = pad_with(moved, moved.ndim - 1, n - 1, 0, fill).unfold(-1, n, 1)  # (..., n, n): the prefix ending at i
    values = win.amax(-1)
    positions = _tensor(x).arange(n, device=x.device) - (n - 1)  # window slot k holds element i - (n - 1) + k
    hit = (win == values.unsqueeze(-1))
    if x.dtype.is_float:
        hit = hit.logical_or(win.isnan().logical_and(values.isnan().unsqueeze(-1)))
    index = hit.if_else(positions + _tensor(x).arange(n, device=x.device).unsqueeze(-1), -1).amax(-1)
    return ValuesIndices(values.transpose(d, -1), index.transpose(d, -1))


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """x1 . x2 / (max(|x1|, eps) * max(|x2|, eps)) along `dim`, the inputs broadcast against each other
    (torch.nn.functional.cosine_similarity: each norm is clamped on its own)."""
    a, b = x1._float(), x2._float()
    n1 = (a * a).sum(dim).sqrt().maximum(eps)
    n2 = (b * b).sum(dim).sqrt().maximum(eps)
    return (a * b).sum(dim) / (n1 * n2)


def bincount(x: Tensor, weights: Optional[Tensor] = None, minlength: int = 0) -> Tensor:
    """How often each value 0..max(x) occurs in a 1-D tensor of non-negative ints (summing `weights` instead
    when given), at least `minlength` long. The length depends on the data: this reads max(x) from the device."""
    if x.ndim != 1 or x.dtype.is_float or x.dtype == dt.bool_:
        raise RuntimeError(f"bincount: expected a 1-D tensor of non-negative integers, got {x.dtype.name} of shape "
                           f"{tuple(x.shape)}")
    if weights is not None and tuple(weights.shape) != tuple(x.shape):
        raise RuntimeError(f"bincount: weights of shape {tuple(weights.shape)} must match input {tuple(x.shape)}")
    lo, hi = x.min().stack(x.max()).tolist() if x.numel() else (0, -1)  # one read from the device for both
    if lo < 0:
        raise RuntimeError("bincount: expected non-negative integers, got a negative value")
    n = max(int(hi) + 1, minlength)
    hits = x.unsqueeze(1) == _tensor(x).arange(n, device=x.device)  # (len, n)
    if weights is None:
        return hits.sum(0, dtype=dt.int64)
    w = weights if weights.dtype.is_float else weights.cast(dt.float64)
    return hits.if_else(w.unsqueeze(1), 0).sum(0, dtype=w.dtype)


def cummin(x: Tensor, dim: int) -> Any:
    """(running minimum, index of the latest minimum) along `dim` (torch.cummin; NaN, once seen, stays)."""
    if x.dtype.is_float:
        values, index = cummax(-x, dim)
        return ValuesIndices(-values, index)
    # integers and bools through their bitwise complement, which reverses the order and never overflows
    # (-x would wrap INT_MIN onto itself and lose it)
    values, index = cummax(~x, dim)
    return ValuesIndices(~values, index)


@dt.computed_in_float32
def logcumsumexp(x: Tensor, dim: int) -> Tensor:
    """log(cumsum(exp(x))) along `dim`. Each prefix is shifted by its own maximum (its NaNs left out), so that
    nothing overflows and a small early value is not lost beside a large later one; a NaN poisons the prefixes
    that hold it, as in torch."""
    d = x._dim(dim)
    x = x._float()
    if x.ndim == 0 or x.shape[d] == 0:
        return x
    n = x.shape[d]
    moved = x.transpose(d, -1)
    prefixes = pad_with(moved, moved.ndim - 1, n - 1, 0, -math.inf).unfold(-1, n, 1)  # (..., n, n): up to i
    top = prefixes.isnan().if_else(-math.inf, prefixes).amax(-1, keepdim=True).detach()
    top = top.isinf().if_else(0, top)  # all -inf (or an inf): no shift, the sum says what it is
    out = (prefixes - top).exp().sum(-1).log() + top.squeeze(-1)
    return out.transpose(d, -1)


def count_nonzero(x: Tensor, dim: Dims = None) -> Tensor:
    """How many entries are not zero (NaN counts), over `dim` or all of x, as int64."""
    return (x != 0).sum(dim, dtype=dt.int64)


def bucketize(x: Tensor, boundaries: Tensor, right: bool = False) -> Tensor:
    """For each x, the index i such that boundaries[i - 1] < x <= boundaries[i] (right=True: boundaries[i - 1] <= x
    < boundaries[i]), as int64; `boundaries` is 1-D and sorted."""
    if boundaries.ndim != 1:
        raise RuntimeError(f"bucketize: boundaries must be 1-D, got shape {tuple(boundaries.shape)}")
    return _count_before(boundaries, x.unsqueeze(-1), right)


def searchsorted(sorted_sequence: Tensor, values: Tensor, right: bool = False) -> Tensor:
    """Where each value would be inserted to keep the last dim of sorted_sequence sorted (leftmost place, or
    rightmost with right=True), as int64; a 1-D sequence serves every value."""
    seq = sorted_sequence
    if seq.ndim > 1 and seq.shape[:-1] != values.shape[:-1]:
        raise RuntimeError(f"searchsorted: leading dims of sorted_sequence {tuple(seq.shape)} and values "
                           f"{tuple(values.shape)} differ")
    s = seq.unsqueeze(-2) if seq.ndim > 1 else seq  # (..., 1, n) against values (..., m, 1)
    return _count_before(s, values.unsqueeze(-1), right)


def _count_before(seq: Tensor, v: Tensor, right: bool) -> Tensor:
    """How many entries of seq (last dim) sort before v (right: or equal to it). NaN sorts after every number, as
    in torch: a NaN value goes after all numbers (with right, after NaN entries too)."""
    before = (seq <= v) if right else (seq < v)
    if v.dtype.is_float:
        nan_after = v.isnan() if right else v.isnan().logical_and(seq.isnan().logical_not())
        before = before.logical_or(nan_after)
    return before.sum(-1, dtype=dt.int64)


def diag(x: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-D x as the diagonal `diagonal` of a square matrix, or a 2-D x's diagonal as 1-D (torch.diag)."""
    tensor = _tensor(x)
    if x.ndim == 1:
        n, k = x.shape[0] + abs(diagonal), diagonal
        rows, cols = tensor.arange(n, device=x.device).reshape(n, 1), tensor.arange(n, device=x.device)
        along = x._pad_dims([(0, abs(k))])
        spread = along.reshape(n, 1).expand(n, n) if k >= 0 else along.reshape(1, n).expand(n, n)
        return (cols - rows == k).if_else(spread, tensor.zeros((), dtype=x.dtype, device=x.device))
    if x.ndim != 2:
        raise RuntimeError(f"diag: expected a 1-D or 2-D tensor, got shape {x.shape}")
    return x.diagonal(diagonal)


def diagonal(x: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal `offset` of the (dim1, dim2) matrices as the last dim: a strided view, no copy."""
    d1, d2 = x._dim(dim1), x._dim(dim2)
    if d1 == d2:
        raise RuntimeError(f"diagonal: dim1 and dim2 must differ, got {dim1} and {dim2}")
    rest = [i for i in range(x.ndim) if i not in (d1, d2)]
    m = x.permute(*rest, d1, d2)
    r, c = m.shape[-2:]
    start_r, start_c = max(0, -offset), max(0, offset)
    length = max(0, min(r - start_r, c - start_c))
    lead = m.shape[:-2]
    if length == 0:
        return m.reshape(*lead, r * c).shrink([None] * len(lead) + [(0, 0)])
    flat = m.reshape(*lead, r * c)
    first = start_r * c + start_c
    return flat.shrink([None] * len(lead) + [(first, first + (length - 1) * (c + 1) + 1, c + 1)])


def meshgrid(*tensors: Tensor, indexing: str = "ij") -> list[Tensor]:
    """Coordinate grids from 1-D tensors (torch.meshgrid): views, no copies. indexing "ij" or "xy"."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    sizes = [t.numel() for t in tensors]
    if indexing == "xy" and len(tensors) >= 2:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for i, t in enumerate(tensors):
        pos = i if indexing == "ij" or len(tensors) < 2 else {0: 1, 1: 0}.get(i, i)
        shape = [1] * len(tensors)
        shape[pos] = t.numel()
        out.append(t.reshape(*shape).expand(*sizes))
    return out


def softmin(x: Tensor, dim: int = -1) -> Tensor:
    return (-x).softmax(dim)


SCATTER_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


def scatter_reduce(x: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, include_self: bool = True) -> Tensor:
    """Reduce the values src sends to each position of x along `dim` (torch.scatter_reduce): sum, prod, mean,
    amax or amin, with x's own value included unless include_self=False. Positions nothing is sent to keep x."""
    if reduce not in SCATTER_REDUCTIONS:
        raise RuntimeError(f"scatter_reduce: reduce must be one of {', '.join(SCATTER_REDUCTIONS)}, got {reduce!r}")
    tensor = _tensor(x)
    d = x._dim(dim)
    if index.ndim != x.ndim or src.ndim != x.ndim:
        raise RuntimeError(f"scatter_reduce: index {index.shape} and src {src.shape} must have the input's "
                           f"{x.ndim} dims")
    _same_dtype("scatter_reduce", x, src)
    n = x.shape[d]
    check_range("scatter_reduce", index, n, dim=d)
    values = src.shrink(tuple((0, k) for k in index.shape)).cast(x.dtype)
    onehot = index.unsqueeze(-1) == tensor.arange(n, device=x.device)  # index.shape + (n,)
    spread = values.unsqueeze(-1)
    if x.dtype.is_float:
        big = math.inf
    elif x.dtype == dt.bool_:
        big = True
    else:
        big = int(np.iinfo(x.dtype.np).max)
    if reduce in ("sum", "mean"):
        parts = onehot.if_else(spread, 0).sum(d, dtype=x.dtype)
    elif reduce == "prod":
        parts = onehot.if_else(spread, 1).prod(d).cast(x.dtype)
    elif reduce == "amax":
        parts = onehot.if_else(spread, -big if x.dtype != dt.bool_ else False).amax(d)
    else:
        parts = onehot.if_else(spread, big).amin(d)
    counts = onehot.sum(d)
    parts, counts = parts.movedim(-1, d), counts.movedim(-1, d)
    pads = [(0, 0 if k == d else x.shape[k] - parts.shape[k]) for k in range(x.ndim)]
    parts, counts = parts._pad_dims(pads), counts._pad_dims(pads)
    hit = counts > 0
    if include_self:
        if reduce in ("sum", "mean"):
            parts = parts + x
        elif reduce == "prod":
            parts = parts * x
        else:
            parts = parts.maximum(x) if reduce == "amax" else parts.minimum(x)
        counts = counts + 1
    if reduce == "mean":
        parts = (parts / counts.maximum(1)) if x.dtype.is_float else parts.div(counts.maximum(1), rounding_mode="floor")
    return hit.if_else(parts.cast(x.dtype), x)


def max_pool2d_with_indices(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                            ceil_mode: bool = False) -> tuple[Tensor, Tensor]:
    """max_pool2d and, per output, the flat index (over H*W) of the first maximum in its window (torch's
    return_indices=True; a NaN counts as the maximum)."""
    tensor = _tensor(x)
    h, w = x.shape[-2:]
    fill = -math.inf if x.dtype.is_float else int(np.iinfo(x.dtype.np).min)
    win, _ = x._pool_windows("max_pool2d", kernel_size, stride, padding, dilation, ceil_mode, fill)
    where = tensor.arange(h * w, device=x.device).reshape(1, h, w)
    pos, _ = where._pool_windows("max_pool2d", kernel_size, stride, padding, dilation, ceil_mode, -1)
    best = win.amax((-2, -1), keepdim=True)
    hit = win == best
    if x.dtype.is_float:
        hit = hit.logical_or(win.isnan())
    index = hit.if_else(pos, h * w).amin((-2, -1))
    return x.max_pool2d(kernel_size, stride, padding, dilation, ceil_mode), index  # the values' gradient: max_pool's


# ---- 1-D and 3-D pooling, from the 2-D kind (a max or an average over a box is one over each axis in turn) ----
def _pair(v: Any, n: int) -> tuple[int, ...]:
    return (v,) * n if isinstance(v, int) else tuple(v)


def max_pool1d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """1-D max pooling over the last dim of (N, C, L) or (C, L) (torch.nn.functional.max_pool1d)."""
    k, s = _pair(kernel_size, 1)[0], _pair(stride if stride else kernel_size, 1)[0]
    out = x.unsqueeze(-2).max_pool2d((1, k), (1, s), (0, _pair(padding, 1)[0]), (1, _pair(dilation, 1)[0]),
                                     ceil_mode, return_indices)
    return (out[0].squeeze(-2), out[1].squeeze(-2)) if return_indices else out.squeeze(-2)


def avg_pool1d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """1-D average pooling (torch.nn.functional.avg_pool1d)."""
    k, s = _pair(kernel_size, 1)[0], _pair(stride if stride else kernel_size, 1)[0]
    return x.unsqueeze(-2).avg_pool2d((1, k), (1, s), (0, _pair(padding, 1)[0]), ceil_mode,
                                      count_include_pad).squeeze(-2)


def _pool3d(x: Tensor, kind: str, kernel_size: Any, stride: Any, padding: Any, ceil_mode: bool,
            extra: dict[str, Any]) -> Tensor:
    if x.ndim not in (4, 5):
        raise RuntimeError(f"{kind}_pool3d: expected a 4-D or 5-D input, got shape {x.shape}")
    k, p = _pair(kernel_size, 3), _pair(padding, 3)
    s = _pair(stride if stride else kernel_size, 3)
    lead, (d, h, w) = x.shape[:-3], x.shape[-3:]
    pool = (lambda t, *a: t.max_pool2d(*a, ceil_mode=ceil_mode, **extra)) if kind == "max" else \
        (lambda t, *a: t.avg_pool2d(*a, ceil_mode=ceil_mode, **extra))
    planes = pool(x.reshape(-1, d, h, w), k[1:], s[1:], p[1:])  # over (h, w) for every depth
    h2, w2 = planes.shape[-2:]
    deep = planes.reshape(-1, d, h2 * w2).transpose(-1, -2).unsqueeze(-3)  # (B, 1, h2*w2, d)
    out = pool(deep, (1, k[0]), (1, s[0]), (0, p[0]))  # over depth
    return out.squeeze(-3).transpose(-1, -2).reshape(*lead, out.shape[-1], h2, w2)


def max_pool3d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False) -> Tensor:
    """3-D max pooling over (D, H, W) (torch.nn.functional.max_pool3d)."""
    if dilation not in (1, (1, 1, 1), [1, 1, 1]):
        raise NotImplementedError("max_pool3d: dilation other than 1 is not supported")
    return _pool3d(x, "max", kernel_size, stride, padding, ceil_mode, {})


def avg_pool3d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """3-D average pooling (torch.nn.functional.avg_pool3d); the counts factor over the axes, so it is separable."""
    return _pool3d(x._float(), "avg", kernel_size, stride, padding, ceil_mode,
                   {"count_include_pad": count_include_pad})


def trace(x: Tensor) -> Tensor:
    """The sum of a matrix's diagonal (torch.trace)."""
    if x.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, got shape {x.shape}")
    return x.diagonal().sum()


def median(x: Tensor, dim: Optional[int] = None, keepdim: bool = False) -> Any:
    """The lower median (torch.median): of all elements, or (values, indices) along `dim`; NaN if any is NaN."""
    if dim is None:
        flat = x.reshape(-1)
        if flat.numel() == 0:  # torch: NaN for floats
            if not x.dtype.is_float:
                raise RuntimeError(f"median: the median of an empty {x.dtype.name} tensor is undefined")
            return _tensor(x).full((), math.nan, x.dtype, x.device)
        return median(flat, 0)[0]
    d = x._dim(dim)
    if x.ndim == 0:  # a scalar is its own median, at index 0 (torch)
        return ValuesIndices(x, _tensor(x).zeros((), dtype=dt.int64, device=x.device))
    values, indices = x.sort(d)
    n = x.shape[d]
    if n == 0:
        raise IndexError(f"median: dim {d} of shape {x.shape} is empty")
    pick = (n - 1) // 2
    v, i = values.narrow(d, pick, 1), indices.narrow(d, pick, 1)
    if x.dtype.is_float:  # NaN sorts last; torch's median is NaN as soon as a slice holds one
        has_nan = x.isnan().any(d, keepdim=True)
        first_nan = (x.isnan().if_else(_tensor(x).arange(n, device=x.device).reshape(
            *(n if k == d else 1 for k in range(x.ndim))), n)).amin(d, keepdim=True)
        v, i = has_nan.if_else(math.nan, v), has_nan.if_else(first_nan, i)
    return ValuesIndices(v if keepdim else v.squeeze(d), i if keepdim else i.squeeze(d))


# ---- convolution as a contraction over windows, and its gradient rule ------------------------------------
def conv_tensors(x: Tensor, w: Tensor, stride: Sequence[int], pads: Sequence[tuple[int, int]],
                 dilation: Sequence[int], groups: int) -> Tensor:
    """An N-d convolution as a sum over a sliding-window view of the padded input (differentiable)."""
    nd = len(stride)
    n, o, cg, ks = x.shape[0], w.shape[0], w.shape[1], w.shape[2:]
    win = x._pad_dims([(0, 0), (0, 0), *pads])._windows(ks, stride, dilation)  # (n, c, *outs, *ks)
    outs = win.shape[2:2 + nd]
    win = win.reshape(n, groups, 1, cg, *outs, *ks)
    wt = w.reshape(1, groups, o // groups, cg, *(1,) * nd, *ks)
    return contract(win, wt, (3, *range(4 + nd, 4 + 2 * nd))).reshape(n, o, *outs)


def contract(a: Tensor, b: Tensor, axes: tuple[int, ...]) -> Tensor:
    """sum(a * b) over axes: one reduce of a product (an FMA per step on compiled devices). float16 operands are
    multiplied and summed in float32 (exact products; torch's accumulate type) and rounded once at the end."""
    if a.dtype == dt.float16:
        return contract(a.cast(dt.float32), b.cast(dt.float32), axes).cast(dt.float16)
    return (a * b)._reduce(F.Sum, axes, keepdim=False)


def conv_graph(x: Node, w: Node, stride: Sequence[int], pads: Sequence[tuple[int, int]], dilation: Sequence[int],
               groups: int) -> Node:
    """The lazy graph of conv_tensors built from nodes directly, without autograd (the Conv2d rule supplies the
    gradient; a convolution without one needs none): a tenth of the Python cost of the Tensor ops (70 -> ~20 us for
    a depthwise convolution), the same values and the same kernels."""
    if x.dtype == dt.float16:  # summed in float32, as contract does
        return conv_graph(x.cast(dt.float32), w.cast(dt.float32), stride, pads, dilation, groups).cast(dt.float16)
    nd = len(stride)
    n, o, cg, ks = x.shape[0], w.shape[0], w.shape[1], w.shape[2:]
    # (Tensor._windows makes exact tiles a reshape for their gradient's sake; as a view they are the same layout)
    win = x.movement(Op.PAD, ((0, 0), (0, 0), *pads)).movement(Op.WINDOW, tuple(zip(ks, stride, dilation)))
    outs = win.shape[2:2 + nd]
    full = (n, groups, o // groups, cg, *outs, *ks)
    a = win.movement(Op.RESHAPE, (n, groups, 1, cg, *outs, *ks)).movement(Op.EXPAND, full)
    b = w.movement(Op.RESHAPE, (1, groups, o // groups, cg, *(1,) * nd, *ks)).movement(Op.EXPAND, full)
    summed = a.alu(Op.MUL, b).reduce(Op.SUM, (3, *range(4 + nd, 4 + 2 * nd)))
    return summed.movement(Op.RESHAPE, (n, o, *outs))


def _spread(v: Node, shape: tuple[int, ...]) -> Node:
    """v broadcast to `shape` (leading dims added, size-1 dims expanded), as the Tensor ops broadcast."""
    if len(v.shape) < len(shape):
        v = v.movement(Op.RESHAPE, (1,) * (len(shape) - len(v.shape)) + v.shape)
    return v.movement(Op.EXPAND, shape)


def _broadcast_axes(shape: tuple[int, ...], full: tuple[int, ...]) -> tuple[int, ...]:
    """The dims of `full` that broadcasting `shape` (batch dims) to it added or expanded."""
    lead = len(full) - len(shape)
    return tuple(range(lead)) + tuple(lead + d for d, n in enumerate(shape) if n == 1 and full[lead + d] != 1)


def _product_mnk(a: Node, b: Node, axes: tuple[int, ...], out: tuple[int, ...]) -> Node:
    """sum over `axes` of a * b, both of one (..., m, n, k) shape, reshaped to `out`."""
    return a.alu(Op.MUL, b).reduce(Op.SUM, axes).movement(Op.RESHAPE, out)


def _mnk(x: Node, w: Node) -> tuple[int, ...]:
    batch = broadcast_shape("matmul", x.shape[:-2], w.shape[:-2])
    return (*batch, x.shape[-2], w.shape[-1], x.shape[-1])


def _swap_last(v: Node) -> Node:
    """v with its last two dims swapped (a transpose)."""
    return v.movement(Op.PERMUTE, (*range(len(v.shape) - 2), len(v.shape) - 1, len(v.shape) - 2))


def _x_spread(x: Node, full: tuple[int, ...]) -> Node:
    """x (..., m, k) as the (..., m, n, k) product's operand."""
    return _spread(x.movement(Op.RESHAPE, x.shape[:-1] + (1, x.shape[-1])), full)


def _w_spread(w: Node, full: tuple[int, ...]) -> Node:
    """w (..., k, n) as the (..., m, n, k) product's operand."""
    wt = _swap_last(w)
    return _spread(wt.movement(Op.RESHAPE, wt.shape[:-2] + (1,) + wt.shape[-2:]), full)


def matmul_node(x: Node, w: Node) -> Node:
    """x @ w for x (..., m, k), w (..., k, n) of one dtype, as the sum over k of a (..., m, n, k) product."""
    full = _mnk(x, w)
    return _product_mnk(_x_spread(x, full), _w_spread(w, full), (len(full) - 1,), full[:-1])


class MatMul(F.Function):
    """x @ w (x (..., m, k), w (..., k, n), one dtype, batch dims broadcast) as one rule whose gradients are products
    over the same (..., m, n, k) shape: grad @ w.T sums over n, x.T @ grad over m. Recorded as the reshape, transpose,
    broadcast, multiply and sum it is made of, a product took 8 rules (~56 us of Python to build, and as long again to
    differentiate); the kernels are the same."""

    def forward(self, x: Node, w: Node) -> Node:
        self.x, self.w = x, w
        return matmul_node(x, w)

    def backward(self, grad: Node) -> Grads:
        x, w = self.x, self.w
        full = _mnk(x, w)
        g = _spread(grad.movement(Op.RESHAPE, grad.shape + (1,)), full)
        gx = gw = None
        batch = full[:-3]
        if self.needs_input_grad[0]:  # summed over n, and over the batch dims x was broadcast along
            gx = _product_mnk(g, _w_spread(w, full), (*_broadcast_axes(x.shape[:-2], batch), len(full) - 2), x.shape)
        if self.needs_input_grad[1]:  # summed over m, and over the batch dims w was broadcast along
            axes = (*_broadcast_axes(w.shape[:-2], batch), len(full) - 3)
            gw = _swap_last(_product_mnk(_x_spread(x, full), g, axes, w.shape[:-2] + full[-2:]))
        return gx, gw


CHANNELS_LAST_MIN = 8  # input channels per group from which the weight gradient reads a channels-last copy


class Conv2d(F.Function):
    """2-D convolution as one rule: forward over a window view; the input gradient is the transposed
    convolution of the output gradient, the weight gradient a contraction of it with the windows."""

    def __init__(self, *tensors: Tensor):
        super().__init__(*tensors)
        self.tensor = tensors[0].tensor_class  # both directions are built from tensor ops

    def forward(self, x: Node, w: Node, stride: tuple[int, ...], pads: tuple[tuple[int, int], ...],
                dilation: tuple[int, ...], groups: int) -> Node:
        self.x, self.w, self.args = x, w, (stride, pads, dilation, groups)
        return conv_graph(x, w, stride, pads, dilation, groups)

    def backward(self, grad: Node) -> Grads:
        stride, pads, dilation, groups = self.args
        g, w, x = self.tensor(grad), self.tensor(self.w), self.tensor(self.x)
        gx = gw = None
        with no_grad():
            if self.needs_input_grad[0]:
                padded = [n + lo + hi for n, (lo, hi) in zip(x.shape[2:], pads)]
                spans = [(m - 1) * s + d * (k - 1) + 1 for m, s, d, k in
                         zip(g.shape[2:], stride, dilation, w.shape[2:])]
                full = conv_transpose2d(g, w, None, stride, 0, [p - sp for p, sp in zip(padded, spans)], groups,
                                        dilation)  # the gradient of the padded input
                gx = full._pad_dims([(0, 0), (0, 0), *[(-lo, -hi) for lo, hi in pads]]).node
            if self.needs_input_grad[1]:
                n, o = g.shape[:2]
                cg, ks = w.shape[1], w.shape[2:]
                padded_x = x._pad_dims([(0, 0), (0, 0), *pads])
                if cg >= CHANNELS_LAST_MIN:  # channels innermost: the contraction then vectorises over them
                    padded_x = padded_x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
                win = padded_x._windows(ks, stride, dilation)
                outs = win.shape[2:4]
                win = win.reshape(n, groups, 1, cg, *outs, *ks)
                if cg >= CHANNELS_LAST_MIN:  # the output channels a tile reuses then sit side by side too
                    g = g.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
                gg = g.reshape(n, groups, o // groups, 1, *outs, 1, 1)
                gw = (win * gg)._reduce(F.Sum, (0, 4, 5), keepdim=False).reshape(o, cg, *ks).node
        return gx, gw
