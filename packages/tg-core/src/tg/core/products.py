"""Matrix-product forms that torch users write, composed from matmul, einsum and elementwise ops: mm, bmm, t,
addmm, baddbmm, outer, tensordot, kron and cross. Each checks the shapes torch checks, so an error names the op.

These are functions written as methods: `Tensor` binds each one (its first argument is the tensor).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from .tensor import Tensor


def _need_dims(op: str, n: int, *tensors: Tensor) -> None:
    for t in tensors:
        if t.ndim != n:
            raise RuntimeError(f"{op}: expected {n}-D tensors, got shapes {[tuple(x.shape) for x in tensors]}")


def mm(self: Tensor, other: Tensor) -> Tensor:
    """The product of two matrices (2-D only; matmul broadcasts)."""
    _need_dims("mm", 2, self, other)
    return self.matmul(other)


def bmm(self: Tensor, other: Tensor) -> Tensor:
    """Batched matrix product of (b, n, m) and (b, m, p), with equal batch sizes."""
    _need_dims("bmm", 3, self, other)
    if self.shape[0] != other.shape[0]:
        raise RuntimeError(f"bmm: batch sizes differ: {tuple(self.shape)} and {tuple(other.shape)}")
    return self.matmul(other)


def t(self: Tensor) -> Tensor:
    """The transpose of a matrix; a 0-D or 1-D tensor as it is."""
    if self.ndim > 2:
        raise RuntimeError(f"t: expects a tensor of at most 2 dims, got shape {tuple(self.shape)}; use transpose")
    return self.transpose(0, 1) if self.ndim == 2 else self


def addmm(self: Tensor, mat1: Tensor, mat2: Tensor, beta: float = 1, alpha: float = 1) -> Tensor:
    """beta * self + alpha * (mat1 @ mat2); with beta 0 self is not read (NaN in it does not propagate)."""
    _need_dims("addmm", 2, mat1, mat2)
    return _scaled_sum(self, mat1.matmul(mat2), beta, alpha)


def baddbmm(self: Tensor, batch1: Tensor, batch2: Tensor, beta: float = 1, alpha: float = 1) -> Tensor:
    """beta * self + alpha * bmm(batch1, batch2)."""
    return _scaled_sum(self, bmm(batch1, batch2), beta, alpha)


def _scaled_sum(base: Tensor, product: Tensor, beta: float, alpha: float) -> Tensor:
    scaled = product if alpha == 1 else product * alpha
    if beta == 0:  # torch ignores the input (NaN in it stays out) but still broadcasts the result to its shape
        return scaled + base.zeros_like()
    return scaled + (base if beta == 1 else base * beta)


def outer(self: Tensor, other: Tensor) -> Tensor:
    """The outer product of two vectors: (n,) and (m,) give (n, m)."""
    _need_dims("outer", 1, self, other)
    return self.reshape(-1, 1) * other.reshape(1, -1)


def tensordot(self: Tensor, other: Tensor, dims: Union[int, Sequence[Sequence[int]]] = 2) -> Tensor:
    """Sum over the last `dims` dims of self and the first `dims` of other, or over the listed pairs of dims."""
    if isinstance(dims, int):
        if dims < 0 or dims > min(self.ndim, other.ndim):
            raise RuntimeError(f"tensordot: dims {dims} out of range for shapes {tuple(self.shape)} and "
                               f"{tuple(other.shape)}")
        left, right = list(range(self.ndim - dims, self.ndim)), list(range(dims))
    else:
        left, right = [self._dim(d) for d in dims[0]], [other._dim(d) for d in dims[1]]
    if len(left) != len(right) or any(self.shape[a] != other.shape[b] for a, b in zip(left, right)):
        raise RuntimeError(f"tensordot: contracted dims {left} of {tuple(self.shape)} and {right} of "
                           f"{tuple(other.shape)} differ in size")
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    a = letters[:self.ndim]
    b = [letters[self.ndim + i] for i in range(other.ndim)]
    for i, j in zip(left, right):
        b[j] = a[i]
    kept = [c for i, c in enumerate(a) if i not in left] + [c for j, c in enumerate(b) if j not in right]
    return self.einsum(f"{a},{''.join(b)}->{''.join(kept)}", self, other)


def kron(self: Tensor, other: Tensor) -> Tensor:
    """The Kronecker product: block (i, j, ...) is self[i, j, ...] * other (the fewer dims padded with 1s in front)."""
    n = max(self.ndim, other.ndim)
    a = self.reshape(*(1,) * (n - self.ndim), *self.shape)
    b = other.reshape(*(1,) * (n - other.ndim), *other.shape)
    spread_a = a.reshape(*[s for d in a.shape for s in (d, 1)])  # (a0, 1, a1, 1, ...)
    spread_b = b.reshape(*[s for d in b.shape for s in (1, d)])  # (1, b0, 1, b1, ...)
    return (spread_a * spread_b).reshape(*(x * y for x, y in zip(a.shape, b.shape)))


def cross(self: Tensor, other: Tensor, dim: int = -1) -> Tensor:
    """The cross product of 3-vectors along `dim` (both inputs broadcast)."""
    if self.shape[self._dim(dim)] != 3 or other.shape[other._dim(dim)] != 3:
        raise RuntimeError(f"cross: dim {dim} must have size 3, got shapes {tuple(self.shape)} and "
                           f"{tuple(other.shape)}")
    a = [self.narrow(dim, i, 1) for i in range(3)]
    b = [other.narrow(dim, i, 1) for i in range(3)]
    parts = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    return parts[0].cat(*parts[1:], dim=dim)


def mv(self: Tensor, vec: Tensor) -> Tensor:
    """Matrix times vector: (n, m) and (m,) give (n,)."""
    _need_dims("mv", 2, self)
    _need_dims("mv", 1, vec)
    return self.matmul(vec)


def addmv(self: Tensor, mat: Tensor, vec: Tensor, beta: float = 1, alpha: float = 1) -> Tensor:
    """beta * self + alpha * (mat @ vec)."""
    return _scaled_sum(self, mv(mat, vec), beta, alpha)


def addr(self: Tensor, vec1: Tensor, vec2: Tensor, beta: float = 1, alpha: float = 1) -> Tensor:
    """beta * self + alpha * outer(vec1, vec2)."""
    return _scaled_sum(self, outer(vec1, vec2), beta, alpha)


def addbmm(self: Tensor, batch1: Tensor, batch2: Tensor, beta: float = 1, alpha: float = 1) -> Tensor:
    """beta * self + alpha * the sum over the batch of batch1[i] @ batch2[i]."""
    return _scaled_sum(self, bmm(batch1, batch2).sum(0), beta, alpha)


def inner(self: Tensor, other: Tensor) -> Tensor:
    """The sum of products over the last dims of both (torch.inner); a scalar operand multiplies."""
    if self.ndim == 0 or other.ndim == 0:
        return self * other
    if self.shape[-1] != other.shape[-1]:
        raise RuntimeError(f"inner: last dims differ: {tuple(self.shape)} and {tuple(other.shape)}")
    return tensordot(self, other, ([self.ndim - 1], [other.ndim - 1]))


def vdot(self: Tensor, other: Tensor) -> Tensor:
    """The dot product of two 1-D tensors of equal length."""
    _need_dims("vdot", 1, self, other)
    return self.dot(other)


def addcmul(self: Tensor, tensor1: Tensor, tensor2: Tensor, value: float = 1) -> Tensor:
    """self + value * tensor1 * tensor2."""
    return self + tensor1 * tensor2 * value if value != 1 else self + tensor1 * tensor2


def addcdiv(self: Tensor, tensor1: Tensor, tensor2: Tensor, value: float = 1) -> Tensor:
    """self + value * tensor1 / tensor2 (integer tensors are refused, as torch does)."""
    if not (tensor1.dtype.is_float or tensor2.dtype.is_float):
        raise RuntimeError("addcdiv: integer division of tensors is not supported; use floats (or torch.floor_divide)")
    return self + tensor1 / tensor2 * value if value != 1 else self + tensor1 / tensor2


def matrix_power(self: Tensor, n: int) -> Tensor:
    """The square matrix (or batch of them) to the integer power n by repeated squaring; n = 0 gives identities,
    a negative n powers the inverse (torch.matrix_power)."""
    if self.ndim < 2 or self.shape[-1] != self.shape[-2]:
        raise RuntimeError(f"matrix_power: expected a square matrix or a batch of them, got shape {tuple(self.shape)}")
    if n == 0:
        eye = self.tensor_class.eye(self.shape[-1], dtype=self.dtype, device=self.device)
        return self._constant_of(eye._broadcast_to(self.shape))  # NaN in self stays out (torch), a zero gradient
    base = self if n > 0 else self.inverse()
    result, k = None, abs(n)
    while k:
        if k & 1:
            result = base if result is None else result @ base
        k >>= 1
        if k:
            base = base @ base
    assert result is not None
    return result


def renorm(self: Tensor, p: float, dim: int, maxnorm: float) -> Tensor:
    """Each slice along `dim` whose p-norm exceeds maxnorm scaled down to it (torch.renorm)."""
    d = self._dim(dim)
    others = tuple(i for i in range(self.ndim) if i != d)
    norms = self.norm(p, others, keepdim=True) if others else self.abs()
    return self * (norms > maxnorm).if_else(maxnorm / (norms + 1e-7), 1.0)
