"""The conformance suite: every op on the device under test, forward against float64 NumPy, gradients
against finite differences, over broadcasting, size-1 and zero-size dims and non-contiguous views.
"""
from __future__ import annotations

import numpy as np
import pytest

from tg.core import Tensor
from tg.core.testing import check

BROADCAST_SHAPES = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((1,), (5,)), ((2, 1, 3), (4, 1)),
                    ((), (3,)), ((0, 3), (1, 3)), ((2, 0), (2, 1))]

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "maximum": (lambda a, b: a.maximum(b), np.maximum),
    "minimum": (lambda a, b: a.minimum(b), np.minimum),
}


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=str)
def test_binary(name: str, shapes: tuple, device: str) -> None:
    fn, ref = BINARY[name]
    low = 0.5 if name == "div" else -2.0
    check(fn, ref, list(shapes), device, low=low)


UNARY = {
    "neg": (lambda x: -x, lambda x: -x, -2, 2),
    "exp": (lambda x: x.exp(), np.exp, -2, 2),
    "log": (lambda x: x.log(), np.log, 0.2, 3),
    "sqrt": (lambda x: x.sqrt(), np.sqrt, 0.2, 3),
    "rsqrt": (lambda x: x.rsqrt(), lambda x: 1 / np.sqrt(x), 0.2, 3),
    "reciprocal": (lambda x: x.reciprocal(), lambda x: 1 / x, 0.3, 3),
    "sin": (lambda x: x.sin(), np.sin, -3, 3),
    "cos": (lambda x: x.cos(), np.cos, -3, 3),
    "tanh": (lambda x: x.tanh(), np.tanh, -2, 2),
    "sigmoid": (lambda x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), -3, 3),
    "relu": (lambda x: x.relu(), lambda x: np.maximum(x, 0), -2, 2),
    "abs": (lambda x: x.abs(), np.abs, -2, 2),
    "square": (lambda x: x.square(), np.square, -2, 2),
    "pow3": (lambda x: x ** 3, lambda x: x ** 3, -2, 2),
    "pow_half": (lambda x: x ** 0.5, np.sqrt, 0.2, 3),
    "pow_neg2": (lambda x: x ** -2, lambda x: x ** -2.0, 0.5, 2),
    "rpow": (lambda x: 2 ** x, lambda x: 2 ** x, -2, 2),
    "clamp": (lambda x: x.clamp(-0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7), -2, 2),
    "exp2": (lambda x: x.exp2(), np.exp2, -2, 2),
    "log2": (lambda x: x.log2(), np.log2, 0.2, 3),
}


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("shape", [(3, 4), (1,), (), (0, 2), (2, 1, 3)], ids=str)
def test_unary(name: str, shape: tuple, device: str) -> None:
    fn, ref, low, high = UNARY[name]
    check(fn, ref, [shape], device, low=low, high=high)


REDUCE = {
    "sum": (lambda x, d, k: x.sum(d, keepdim=k), lambda x, d, k: np.sum(x, axis=d, keepdims=k)),
    "mean": (lambda x, d, k: x.mean(d, keepdim=k), lambda x, d, k: np.mean(x, axis=d, keepdims=k)),
    "amax": (lambda x, d, k: x.amax(d, keepdim=k), lambda x, d, k: np.max(x, axis=d, keepdims=k)),
    "amin": (lambda x, d, k: x.amin(d, keepdim=k), lambda x, d, k: np.min(x, axis=d, keepdims=k)),
    "max_values": (lambda x, d, k: x.amax(None, keepdim=k) if d is None else
                   x.max(d[0] if isinstance(d, tuple) else d, keepdim=k).values,
                   lambda x, d, k: np.max(x, axis=d[0] if isinstance(d, tuple) else d, keepdims=k)),
    "logsumexp": (lambda x, d, k: x.logsumexp(d, keepdim=k),
                  lambda x, d, k: np.log(np.sum(np.exp(x), axis=d, keepdims=k))),
}


@pytest.mark.parametrize("name", REDUCE)
@pytest.mark.parametrize("shape,dim", [((3, 4), None), ((3, 4), 0), ((3, 4), 1), ((2, 3, 4), (0, 2)),
                                       ((2, 3, 4), -1), ((5,), 0), ((1, 4), 0), ((3, 1, 2), 1)], ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
def test_reduce(name: str, shape: tuple, dim: object, keepdim: bool, device: str) -> None:
    fn, ref = REDUCE[name]
    check(lambda x: fn(x, dim, keepdim), lambda x: ref(x, dim, keepdim), [shape], device)


def test_sum_of_zero_size_dims(device: str) -> None:
    check(lambda x: x.sum(0), lambda x: x.sum(0), [(0, 3)], device)
    check(lambda x: x.sum(), lambda x: x.sum(), [(2, 0)], device)
    check(lambda x: x.mean(1), lambda x: np.full(2, np.nan), [(2, 0)], device, grad=False)  # torch: nan


def test_max_gradient_is_shared_on_ties(device: str) -> None:
    x = Tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], device=device, requires_grad=True)
    x.amax(1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [1, 0, 0]])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax(dim: int, device: str) -> None:
    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(dim, keepdims=True))
        return e / e.sum(dim, keepdims=True)

    check(lambda x: x.softmax(dim), softmax, [(3, 5)], device)
    check(lambda x: x.log_softmax(dim), lambda x: np.log(softmax(x)), [(3, 5)], device)


# reductions long enough that a GPU shares each output among a work-group (opt.group_size): divisible by the group
# and not, over one dim and several, into few outputs and many, along memory and across it
LONG_REDUCE = [((3, 1000), 1), ((2, 4096), -1), ((5000,), 0), ((30, 7, 40), (0, 2)), ((1000, 3), 0),
               ((1 << 18,), 0), ((4, 3, 333), (1, 2)), ((2048, 100), 0)]  # the last: strips of rows on GPUs


@pytest.mark.parametrize("shape,dim", LONG_REDUCE, ids=str)
def test_long_reductions(shape: tuple, dim: object, device: str) -> None:
    for name in ("sum", "amax", "logsumexp"):
        fn, ref = REDUCE[name]
        check(lambda x, fn=fn: fn(x, dim, False), lambda x, ref=ref: ref(x, dim, False), [shape], device, grad=False,
              atol=1e-4)
    check(lambda x: x.softmax(-1), lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True), [shape], device,
          grad=False)


@pytest.mark.parametrize("n", [1000, 4096])
def test_long_reductions_keep_the_semantics(n: int, device: str) -> None:
    """Gradients, integers, NaN and inf through reductions that GPUs share among a work-group."""
    check(lambda x: x.softmax(1), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True), [(2, n)], device)
    check(lambda x: (x * x).sum(1), lambda x: (x * x).sum(1), [(2, n)], device)
    rng = np.random.default_rng(1)
    ints = rng.integers(-(2**31), 2**31 - 1, (3, n), dtype=np.int64).astype(np.int32)
    t = Tensor(ints, device=device)
    np.testing.assert_array_equal(t.amax(1).numpy(), ints.max(1))
    np.testing.assert_array_equal(t.amin(1).numpy(), ints.min(1))
    np.testing.assert_array_equal(t.sum(1).numpy(), ints.astype(np.int64).sum(1))  # int64 accumulation
    x = rng.standard_normal((4, n)).astype(np.float32)
    x[0, n // 3] = np.nan  # a NaN anywhere wins max and spoils the sum
    x[1, n - 1] = np.inf
    x[2, :] = -np.inf
    got = Tensor(x, device=device)
    np.testing.assert_array_equal(got.amax(1).numpy(), x.max(1))
    np.testing.assert_array_equal(np.isnan(got.sum(1).numpy()), np.isnan(x.sum(1)))
    np.testing.assert_allclose((got * np.float32(np.inf)).sum(1).numpy()[1:], (x * np.inf).sum(1)[1:])


MOVEMENT = {
    "reshape": ((2, 3, 4), lambda x: x.reshape(4, -1), lambda x: x.reshape(4, -1)),
    "permute": ((2, 3, 4), lambda x: x.permute(2, 0, 1), lambda x: x.transpose(2, 0, 1)),
    "transpose": ((2, 3, 4), lambda x: x.transpose(0, 2), lambda x: np.swapaxes(x, 0, 2)),
    "T": ((3, 4), lambda x: x.T, lambda x: x.T),
    "expand": ((3, 1), lambda x: x.expand(2, 3, 4), lambda x: np.broadcast_to(x, (2, 3, 4))),
    "pad": ((2, 3), lambda x: x.pad((1, 2, 0, 1)), lambda x: np.pad(x, ((0, 1), (1, 2)))),
    "pad_value": ((2, 3), lambda x: x.pad((1, 1), value=2.5), lambda x: np.pad(x, ((0, 0), (1, 1)),
                                                                             constant_values=2.5)),
    "pad_negative": ((4, 5), lambda x: x.pad((-1, 2, 1, -2)), lambda x: np.pad(x[:2, 1:], ((1, 0), (0, 2)))),
    "shrink": ((4, 5), lambda x: x.shrink(((1, 3), None)), lambda x: x[1:3]),
    "flip": ((3, 4), lambda x: x.flip(1), lambda x: x[:, ::-1]),
    "flip_both": ((3, 4), lambda x: x.flip(0, 1), lambda x: x[::-1, ::-1]),
    "squeeze": ((3, 1, 4, 1), lambda x: x.squeeze(), lambda x: x.squeeze()),
    "unsqueeze": ((3, 4), lambda x: x.unsqueeze(1), lambda x: x[:, None]),
    "flatten": ((2, 3, 4), lambda x: x.flatten(1), lambda x: x.reshape(2, 12)),
    "slice_step": ((7, 6), lambda x: x[1:, ::2], lambda x: x[1:, ::2]),
    "slice_step3": ((10,), lambda x: x[1:9:3], lambda x: x[1:9:3]),
    "slice_neg_step": ((7, 6), lambda x: x[::-2, 4:0:-3], lambda x: x[::-2, 4:0:-3]),
    "int_index": ((3, 4, 5), lambda x: x[1, :, -1], lambda x: x[1, :, -1]),
    "ellipsis_none": ((3, 4, 5), lambda x: x[..., None, 2], lambda x: x[..., None, 2]),
    "empty_slice": ((3, 4), lambda x: x[2:1], lambda x: x[2:1]),
    "view_chain": ((2, 3, 4), lambda x: x.reshape(4, 6).permute(1, 0)[1:, ::2] * 2,
                   lambda x: x.reshape(4, 6).T[1:, ::2] * 2),
    "pad_then_reshape": ((2, 3), lambda x: x.pad((0, 0, 1, 1)).reshape(12) + 1,
                         lambda x: np.pad(x, ((1, 1), (0, 0))).reshape(12) + 1),
    "strided_then_reshape": ((6, 4), lambda x: x[::2].reshape(12).exp(), lambda x: np.exp(x[::2].reshape(12))),
    "permute_then_reshape": ((3, 4), lambda x: x.T.reshape(12) * 3, lambda x: x.T.reshape(12) * 3),
    "pad_exp": ((2, 3), lambda x: x.exp().pad((1, 1)), lambda x: np.pad(np.exp(x), ((0, 0), (1, 1)))),
}


@pytest.mark.parametrize("name", MOVEMENT)
def test_movement(name: str, device: str) -> None:
    shape, fn, ref = MOVEMENT[name]
    check(fn, ref, [shape], device)


MATMUL_SHAPES = [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)),
                 ((2, 1, 3, 4), (5, 4, 2)), ((1, 4), (4, 1)), ((3, 0), (0, 2))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes: tuple, device: str) -> None:
    check(lambda a, b: a @ b, lambda a, b: a @ b, list(shapes), device)


def test_linear(device: str) -> None:
    check(lambda x, w, b: x.linear(w, b), lambda x, w, b: x @ w.T + b, [(3, 4), (5, 4), (5,)], device)


def test_where_and_comparisons(device: str) -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(4,)).astype(np.float32)
    ta, tb = Tensor(a, device=device), Tensor(b, device=device)
    for tg_op, np_op in [(ta < tb, a < b), (ta <= tb, a <= b), (ta > tb, a > b), (ta >= tb, a >= b),
                         (ta == ta, a == a), (ta != tb, a != b)]:
        assert tg_op.dtype.name == "bool"
        np.testing.assert_array_equal(tg_op.numpy(), np_op)
    check(lambda x, y: (x > y).if_else(x, y * 2), lambda x, y: np.where(x > y, x, y * 2), [(3, 4), (4,)], device)


def test_integer_division_and_modulo_follow_torch(device: str) -> None:
    a = np.array([7, -7, 7, -7, 0, 5], np.int64)
    b = np.array([2, 2, -2, -2, 3, 5], np.int64)
    ta, tb = Tensor(a, device=device), Tensor(b, device=device)
    np.testing.assert_array_equal((ta // tb).numpy(), a // b)
    np.testing.assert_array_equal((ta % tb).numpy(), a % b)
    np.testing.assert_array_equal(ta.div(tb, rounding_mode="trunc").numpy(), np.trunc(a / b).astype(np.int64))
    np.testing.assert_allclose((ta / tb).numpy(), a / b, rtol=1e-6)


def test_division_is_correctly_rounded(device: str) -> None:
    # x * (1/y) can be an ulp off; true division must match NumPy bit for bit
    rng = np.random.default_rng(7)
    a = rng.standard_normal(4096).astype(np.float32) * 100
    b = rng.uniform(0.01, 10, 4096).astype(np.float32)
    assert np.array_equal((Tensor(a, device=device) / Tensor(b, device=device)).numpy(), a / b)
    scale = np.float32(5 / 255)
    assert (Tensor(np.float32(-2.5), device=device) / scale).item() == np.float32(-2.5) / scale


@pytest.mark.parametrize("op", ["trunc", "floor", "ceil", "round"])
def test_rounding_keeps_huge_and_special_values(op: str, device: str) -> None:
    v = np.array([np.inf, -np.inf, np.nan, 1e20, -3e9, 2.5, -2.5, -0.4, 8388607.5, 0.5], np.float32)
    got = getattr(Tensor(v, device=device), op)().numpy()
    np.testing.assert_array_equal(got, getattr(np, op)(v))


def test_gradient_accumulates_and_detach_stops_it(device: str) -> None:
    x = Tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    (x * 2).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 6.0, 8.0])
    y = Tensor([1.0, 2.0], device=device, requires_grad=True)
    (y.detach() * y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [1.0, 2.0])


def test_no_grad(device: str) -> None:
    from tg.core import no_grad

    x = Tensor([1.0, 2.0], device=device, requires_grad=True)
    with no_grad():
        y = x * 2
    assert not y.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_dtype_promotion() -> None:
    i = Tensor([1, 2, 3])
    f = Tensor([0.5, 1.5, 2.5])
    assert i.dtype.name == "int64" and f.dtype.name == "float32"
    assert (i + f).dtype.name == "float32"
    assert (i + 1).dtype.name == "int64"
    assert (i * 1.5).dtype.name == "float32"
    assert (i / 2).dtype.name == "float32"
    assert (Tensor([True, False]) + 1).dtype.name == "int64"
    assert (i.sum()).dtype.name == "int64"
    assert Tensor(np.zeros(2, np.float64)).dtype.name == "float64"
    np.testing.assert_allclose((i * 1.5).numpy(), [1.5, 3.0, 4.5])


def test_item_tolist_repr() -> None:
    t = Tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.sum().item() == 10.0
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert repr(Tensor([1.5, 2.0])).startswith("tensor([1.5")
    with pytest.raises(RuntimeError, match="4 elements"):
        t.item()


def test_deep_graph_does_not_recurse(device: str) -> None:
    x = Tensor([1.0], device=device, requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(y.numpy(), [1.0001 ** 3000], rtol=1e-3)
    np.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 3000], rtol=1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64, np.bool_])
def test_where_is_exact_for_every_value(dtype: type, device: str) -> None:
    rng = np.random.default_rng(3)
    cond = rng.random((5, 6)) > 0.5
    x = (rng.normal(size=(5, 6)) * 10).astype(dtype)
    y = (rng.normal(size=(6,)) * 10).astype(dtype)
    if dtype == np.float32:
        x[0, :3] = [np.nan, np.inf, -np.inf]
    out = Tensor(cond, device=device).if_else(Tensor(x, device=device), Tensor(y, device=device)).numpy()
    np.testing.assert_array_equal(out, np.where(cond, x, y))
    zero = Tensor(cond, device=device).if_else(Tensor(x, device=device), 0).numpy()
    np.testing.assert_array_equal(zero, np.where(cond, x, 0).astype(zero.dtype))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_unsigned_integers_wrap_and_compare_like_numpy(dtype: type, device: str) -> None:
    from tg.core import registry, to_dtype

    info = np.iinfo(dtype)
    if to_dtype(dtype) not in registry.open(device).dtypes:  # a device may not store it, but must say so
        with pytest.raises(TypeError, match="does not support dtype"):
            Tensor(np.zeros(3, dtype), device=device)
        return
    a = np.array([0, 1, 7, info.max, info.max // 2 + 3], dtype)
    b = np.array([3, info.max, 2, 2, 5], dtype)
    ta, tb = Tensor(a, device=device), Tensor(b, device=device)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal((ta + tb).numpy(), a + b)  # wraps around
        np.testing.assert_array_equal((ta * tb).numpy(), a * b)
    np.testing.assert_array_equal((ta // tb).numpy(), a // b)
    np.testing.assert_array_equal((ta % tb).numpy(), a % b)
    np.testing.assert_array_equal((ta < tb).numpy(), a < b)  # unsigned comparison, not signed
    np.testing.assert_array_equal(ta.maximum(tb).numpy(), np.maximum(a, b))
    np.testing.assert_array_equal(ta.cast("float64").numpy(), a.astype(np.float64))
    assert ta.amax().item() == int(a.max())
