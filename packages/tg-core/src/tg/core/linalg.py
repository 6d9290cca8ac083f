"""Linear algebra with torch.linalg's names: inv, det, slogdet, solve (batched over leading dims).

Each is Gauss-Jordan elimination with partial pivoting, written with Tensor ops (so it runs lazily on every
device; a step is a few fused kernels, n steps for an n x n matrix: meant for the small matrices of geometry,
statistics and models, not for large dense solves). Gradients are the closed forms (d inv(A) = -inv(A) dA inv(A)),
not a backward pass through the elimination. A singular matrix raises where torch raises (inv, solve) and gives
a determinant of 0.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from . import autograd as F
from . import dtype as dt
from .autograd import no_grad
from .uop import Node

if TYPE_CHECKING:
    from .tensor import Tensor


class SignLogAbsDet(NamedTuple):
    """What slogdet returns, like torch.return_types.slogdet."""

    sign: Tensor
    logabsdet: Tensor


def _square(op: str, a: Tensor) -> int:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise RuntimeError(f"linalg.{op}: expected square matrices (..., n, n), got shape {a.shape}")
    if not a.dtype.is_float:
        raise RuntimeError(f"linalg.{op}: expected a float tensor, got {a.dtype.name}")
    return a.shape[-1]


def _eliminate(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Gauss-Jordan with partial pivoting on [a | b]: (a^-1 b, det(a), whether a is singular). No gradients."""
    tensor = a.tensor_class
    n = a.shape[-1]
    m = a.cat(b, dim=-1)
    rows = tensor.arange(n, device=a.device)
    det = a.new_ones(*a.shape[:-2])
    singular = tensor.zeros(*a.shape[:-2], dtype=dt.bool_, device=a.device)
    for k in range(n):
        column = m[..., :, k]
        candidates = (rows >= k).if_else(column.abs().nan_to_num(nan=-1.0), -2.0)  # rows k.. only
        p = candidates.argmax(-1, keepdim=True)  # the largest pivot (the first of equal ones)
        is_k, is_p = (rows == k).unsqueeze(-1), (rows == p).unsqueeze(-1)  # (n, 1), (..., n, 1)
        row_k, row_p = m[..., k:k + 1, :], is_p.if_else(m, 0.0).sum(-2, keepdim=True)
        m = is_k.if_else(row_p, is_p.if_else(row_k, m))  # swap rows k and p (selects: exact, inf-safe)
        pivot = m[..., k, k]
        det = (p.squeeze(-1) != k).if_else(-det, det) * pivot
        zero = pivot == 0
        singular = singular.logical_or(zero)
        row = m[..., k:k + 1, :] / zero.if_else(1.0, pivot).unsqueeze(-1).unsqueeze(-1)
        factor = is_k.if_else(0.0, m[..., :, k:k + 1])
        m = is_k.if_else(row, m - factor * row)
    return m[..., :, n:], det, singular


def _check_invertible(op: str, a: Tensor, singular: Tensor) -> None:
    if bool(singular.any().item()):
        raise RuntimeError(f"linalg.{op}: the input of shape {a.shape} is singular (a zero pivot in the elimination); "
                           "it has no inverse")


def inv(a: Tensor) -> Tensor:
    """The inverse of each square matrix (torch.linalg.inv); raises for a singular one."""
    n = _square("inv", a)
    return a._apply(Inverse, n=n)


def solve(a: Tensor, b: Tensor) -> Tensor:
    """x with a @ x = b (torch.linalg.solve): b of shape (..., n, k), or (..., n) for one vector."""
    n = _square("solve", a)
    vector = b.ndim == a.ndim - 1
    bb = b.unsqueeze(-1) if vector else b
    if bb.shape[-2] != n:
        raise RuntimeError(f"linalg.solve: b of shape {b.shape} does not fit a of shape {a.shape}")
    x = a._apply(Solve, bb.cast(a.dtype), n=n)
    return x.squeeze(-1) if vector else x


def det(a: Tensor) -> Tensor:
    """The determinant of each square matrix (torch.linalg.det); 0 for a singular one."""
    _square("det", a)
    return a._apply(Determinant)


def slogdet(a: Tensor) -> SignLogAbsDet:
    """(sign, log |det|) of each square matrix (torch.linalg.slogdet): no overflow for large determinants."""
    d = det(a)
    return SignLogAbsDet(d.detach().sign(), d.abs().log())


def logdet(a: Tensor) -> Tensor:
    """log(det(a)): NaN for a negative determinant, -inf for a singular matrix (torch.logdet)."""
    return det(a).log()


class Inverse(F.Function):
    def __init__(self, *tensors: Tensor):
        super().__init__(*tensors)
        self.tensor = tensors[0].tensor_class

    def forward(self, a: Node, n: int) -> Node:
        x = self.tensor(a)
        with no_grad():
            eye = self.tensor.eye(n, dtype=x.dtype, device=x.device).expand(*x.shape)
            inverse, _, singular = _eliminate(x, eye)
            _check_invertible("inv", x, singular)
            self.inverse = inverse.realize()
        return self.inverse.node

    def backward(self, grad: Node) -> Node:
        xt = self.inverse.transpose(-1, -2)
        with no_grad():
            return (-(xt @ self.tensor(grad) @ xt)).node


class Solve(F.Function):
    def __init__(self, *tensors: Tensor):
        super().__init__(*tensors)
        self.tensor = tensors[0].tensor_class

    def forward(self, a: Node, b: Node, n: int) -> Node:
        self.a = self.tensor(a)
        with no_grad():
            x, _, singular = _eliminate(self.a, self.tensor(b).expand(*self.a.shape[:-2], *self.tensor(b).shape[-2:]))
            _check_invertible("solve", self.a, singular)
            self.x = x.realize()
        return self.x.node

    def backward(self, grad: Node) -> F.Grads:
        with no_grad():
            gb = solve(self.a.transpose(-1, -2), self.tensor(grad))
            ga = -(gb @ self.x.transpose(-1, -2))
        return (ga.node if self.needs_input_grad[0] else None, gb.node if self.needs_input_grad[1] else None)


class Determinant(F.Function):
    def __init__(self, *tensors: Tensor):
        super().__init__(*tensors)
        self.tensor = tensors[0].tensor_class

    def forward(self, a: Node) -> Node:
        self.a = self.tensor(a)
        with no_grad():
            eye = self.tensor.eye(a.shape[-1], dtype=self.a.dtype, device=self.a.device).expand(*self.a.shape)
            inverse, d, _ = _eliminate(self.a, eye)
            self.inverse, self.det = inverse, d.realize()
        return self.det.node

    def backward(self, grad: Node) -> Node:
        # d det(A) = det(A) inv(A)^T dA (where A is invertible)
        with no_grad():
            scale = (self.tensor(grad) * self.det).unsqueeze(-1).unsqueeze(-1)
            return (scale * self.inverse.transpose(-1, -2)).node
