"""Register tiles lowered to vector values (lower.py's vector dim, rendered as LLVM vectors): every way a load can
meet the lanes (contiguous, uniform, strided, masked) against float64 NumPy, and a check that the path is taken."""
from __future__ import annotations

import numpy as np
import pytest

from tg.core import Tensor, get_device
from tg.core.schedule import schedule

RNG = np.random.default_rng(7)


def rand(*shape: int, dtype: type = np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def notes(t: Tensor) -> list[list[str]]:
    """The lowering notes of every kernel that realizing `t` runs."""
    dev = get_device("llvm")
    return [dev.choices(item.kernel) for item in schedule([t.node]) if item.kernel is not None]


def vectorised(t: Tensor) -> bool:
    return any("vector lanes" in note for kernel in notes(t) for note in kernel)


@pytest.mark.parametrize("m,k,n", [(64, 96, 128), (128, 784, 256), (48, 30, 64), (96, 300, 32), (256, 17, 16)])
def test_matmul_in_vector_lanes(m: int, k: int, n: int) -> None:
    a, b = rand(m, k), rand(k, n)
    out = Tensor(a, device="llvm") @ Tensor(b, device="llvm")
    assert vectorised(out)
    np.testing.assert_allclose(out.numpy(), a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


def test_epilogue_with_bias_relu_and_division() -> None:
    a, b, bias, d = rand(64, 80), rand(80, 128), rand(128), np.abs(rand(64, 128)) + 0.5
    ta, tb = Tensor(a, device="llvm"), Tensor(b, device="llvm")
    out = ((ta @ tb + Tensor(bias, device="llvm")).relu() / Tensor(d, device="llvm"))
    assert vectorised(out)
    want = np.maximum(a.astype(np.float64) @ b + bias, 0) / d
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-4)


def test_transposed_operand_is_gathered_lane_by_lane() -> None:
    a, b = rand(64, 96), rand(128, 96)  # b.T walks 96 elements per lane: gathered, not one vector load
    out = Tensor(a, device="llvm") @ Tensor(b, device="llvm").T
    np.testing.assert_allclose(out.numpy(), a.astype(np.float64) @ b.T, rtol=1e-4, atol=1e-4)


def test_epilogue_reads_strided_and_masked_lanes() -> None:
    a, b, c, d = rand(64, 80), rand(80, 128), rand(128, 64), rand(64, 120)
    ta, tb = Tensor(a, device="llvm"), Tensor(b, device="llvm")
    out = ta @ tb + Tensor(c, device="llvm").T + Tensor(d, device="llvm").pad((3, 5))  # gathered lane by lane
    progs = [get_device("llvm").program(i.kernel).prog for i in schedule([out.node]) if i.kernel is not None]
    assert any(u.op.name == "VECTOR" for p in progs for u in p.uops)
    want = a.astype(np.float64) @ b + c.T + np.pad(d, ((0, 0), (3, 5)))
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-4)


def test_padded_operands_read_nothing_outside() -> None:
    a, b = rand(60, 90), rand(90, 120)
    ta = Tensor(a, device="llvm").pad((3, 3, 2, 2))  # masked along the reduce and the rows
    tb = Tensor(b, device="llvm").pad((4, 4, 3, 3))  # masked along the lanes too
    out = ta @ tb
    want = np.pad(a, ((2, 2), (3, 3))).astype(np.float64) @ np.pad(b, ((3, 3), (4, 4)))
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size,stride,padding", [(18, 1, 0), (16, 1, 1), (33, 2, 1), (20, 1, 0)])
def test_convolutions(size: int, stride: int, padding: int) -> None:
    x, w = rand(4, 16, size, size), rand(32, 16, 3, 3)
    out = Tensor(x, device="llvm").conv2d(Tensor(w, device="llvm"), stride=stride, padding=padding)
    if size == 18:  # 16 outputs a row, read contiguously
        assert vectorised(out)
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))[:, :, ::stride, ::stride]
    want = np.einsum("ncyxij,ocij->noyx", windows, w.astype(np.float64))
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-4)


def test_max_of_products_keeps_nan_and_signs() -> None:
    a, b = rand(64, 40), rand(40, 64)
    a[3, 7] = np.nan
    b[5, 9] = -np.inf
    prod = Tensor(a, device="llvm").reshape(64, 40, 1) * Tensor(b, device="llvm").reshape(1, 40, 64)
    out = prod.amax(1)
    assert vectorised(out)
    with np.errstate(invalid="ignore"):
        want = (a.astype(np.float64)[:, :, None] * b[None]).max(1)
    np.testing.assert_array_equal(np.isnan(out.numpy()), np.isnan(want))
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6)


def test_float64_and_comparisons_in_lanes() -> None:
    a, b = rand(32, 70, dtype=np.float64), rand(70, 64, dtype=np.float64)
    ta, tb = Tensor(a, device="llvm"), Tensor(b, device="llvm")
    out = ta @ tb
    assert vectorised(out)
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-12)
    gated = (ta @ tb).where((ta @ tb) > 0, -(ta @ tb))  # comparisons, WHERE and NEG on vectors
    np.testing.assert_allclose(gated.numpy(), np.abs(a @ b), rtol=1e-12)


def test_weight_gradient_of_a_linear_layer() -> None:
    x, w = rand(128, 300), rand(300, 64)
    tx, tw = Tensor(x, device="llvm"), Tensor(w, device="llvm", requires_grad=True)
    ((tx @ tw).relu() * 2).sum().backward()
    assert tw.grad is not None
    mask = (x.astype(np.float64) @ w > 0) * 2.0
    np.testing.assert_allclose(tw.grad.numpy(), x.T.astype(np.float64) @ mask, rtol=1e-4, atol=1e-3)


def test_vector_source_is_small() -> None:
    """The issue's measure: a 512x512 matmul renders to a few hundred lines at most (a scalar 16x4 tile was 688)."""
    a, b = Tensor.rand(512, 512, device="llvm"), Tensor.rand(512, 512, device="llvm")
    out = a.realize() @ b.realize()
    dev = get_device("llvm")
    kernel = [i.kernel for i in schedule([out.node]) if i.kernel is not None][-1]
    assert dev.render(kernel).count("\n") < 300
