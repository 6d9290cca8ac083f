"""Bad input raises errors that name the op, the shapes and the fix."""
from __future__ import annotations

import numpy as np
import pytest

from tg.core import Tensor


def test_broadcast_mismatch_names_the_op_and_both_shapes() -> None:
    with pytest.raises(RuntimeError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        Tensor.ones(2, 3) + Tensor.ones(4)
    with pytest.raises(RuntimeError, match=r"mul: shapes \(5, 2\) and \(3, 1\)"):
        Tensor.ones(5, 2) * Tensor.ones(3, 1)


def test_matmul_shape_mismatch() -> None:
    with pytest.raises(RuntimeError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) cannot be multiplied"):
        Tensor.ones(2, 3) @ Tensor.ones(4, 5)
    with pytest.raises(RuntimeError, match="at least 1D"):
        Tensor.ones(()) @ Tensor.ones(3)


def test_reshape_and_dims() -> None:
    with pytest.raises(RuntimeError, match=r"shape \(4, 4\) is invalid for input of shape \(2, 3\)"):
        Tensor.ones(2, 3).reshape(4, 4)
    with pytest.raises(IndexError, match="Dimension out of range"):
        Tensor.ones(2, 3).sum(2)
    with pytest.raises(IndexError, match="out of bounds for dimension 0 with size 2"):
        Tensor.ones(2, 3)[2]
    with pytest.raises(IndexError, match="too many indices"):
        Tensor.ones(2)[0, 0]
    with pytest.raises(RuntimeError, match="expanded size"):
        Tensor.ones(2, 3).expand(4, 3)


def test_dtypes() -> None:
    with pytest.raises(RuntimeError, match="floating point"):
        Tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="unsupported dtype"):
        Tensor([1.0], dtype="complex64")
    with pytest.raises(ValueError, match="rectangular"):
        Tensor([[1.0], [2.0, 3.0]])


def test_backward_needs_a_scalar_or_a_gradient() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(Tensor([1.0, 1.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_max_of_nothing() -> None:
    with pytest.raises(RuntimeError, match="zero-size"):
        Tensor.ones(0, 3).max(0)
