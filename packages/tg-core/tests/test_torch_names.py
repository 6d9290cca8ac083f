"""More of torch's names against torch itself: elementwise math, views and pieces, index writes, order statistics,
products, distances, losses and sampling. Values and gradients, edge cases included (NaN, -0.0, ties, empty)."""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pytest

if os.environ.get("TG_REQUIRE_TORCH"):
    import torch
else:
    torch = pytest.importorskip("torch")

from test_torch_parity import compare

from tg.core import Tensor, functional, linalg, manual_seed, registry, to_dtype

F = torch.nn.functional


def both(name: str, *args: Any, **kwargs: Any) -> Any:
    """A function calling the method `name` on a tg or torch tensor with the same arguments."""
    return lambda x, *rest: getattr(x, name)(*rest, *args, **kwargs)


def fn_both(name: str, *args: Any, **kwargs: Any) -> Any:
    """functional.name in tg, torch.nn.functional.name in torch."""
    return lambda *xs: (getattr(functional, name) if isinstance(xs[0], Tensor) else getattr(F, name))(
        *xs, *args, **kwargs)


def supports(device: str, dtype: str) -> bool:
    return to_dtype(dtype) in registry.open(device).dtypes


SPECIAL = np.array([0.0, -0.0, 1.5, -2.25, np.inf, -np.inf, np.nan, 3.0], np.float32)


@pytest.mark.parametrize("name", ["signbit", "sinc", "erfc", "deg2rad", "rad2deg", "isposinf", "isneginf",
                                  "absolute", "negative", "sgn", "fix", "hardshrink", "logit", "bitwise_not"])
def test_unary_names_on_special_values(name: str, device: str) -> None:
    x = SPECIAL if name != "bitwise_not" else np.array([0, -1, 5, 2**31 - 1, -(2**31)], np.int32)
    if name == "logit":
        x = np.array([0.0, 0.25, 0.5, 1.0, np.nan], np.float32)
    got = getattr(Tensor(x, device=device), name)().numpy()
    ref = getattr(torch.tensor(x), name)().numpy()
    np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-7)
    np.testing.assert_array_equal(np.signbit(got[ref == 0]), np.signbit(ref[ref == 0]), err_msg=f"{name}: sign of 0")


@pytest.mark.parametrize("name", ["sinc", "erfc", "logit", "hardshrink", "softshrink", "tanhshrink", "deg2rad"])
def test_unary_gradients(name: str, device: str) -> None:
    low, high = (0.05, 0.95) if name == "logit" else (-2.0, 2.0)
    fn = (lambda x: getattr(x, name)()) if name not in ("softshrink", "tanhshrink") else \
        (lambda x: getattr(x, name)() if isinstance(x, Tensor) else getattr(F, name)(x))
    compare(fn, [(4, 5)], device, low=low, high=high, atol=2e-6)


def test_binary_names(device: str) -> None:
    a = np.array([0.0, -0.0, 1.5, -2.0, np.inf, np.nan, 0.0, 2.0], np.float32)
    b = np.array([-1.0, 1.0, -0.0, 0.0, -np.inf, 3.0, np.nan, 0.5], np.float32)
    for name in ("copysign", "xlogy", "heaviside", "logaddexp2", "float_power", "ldexp"):
        if name == "float_power" and not supports(device, "float64"):
            continue  # float64 is optional
        bb = b if name != "ldexp" else np.array([1, -2, 3, 0, 1, 2, 0, 5], np.float32)
        got = getattr(Tensor(a, device=device), name)(Tensor(bb, device=device))
        ref = getattr(torch.tensor(a), name)(torch.tensor(bb))
        assert got.dtype.name == str(ref.dtype).removeprefix("torch."), name
        np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-6, err_msg=name)
        number = ~np.isnan(ref.numpy())
        np.testing.assert_array_equal(np.signbit(got.numpy())[number], np.signbit(ref.numpy())[number],
                                      err_msg=f"{name}: signs")
    compare(lambda x, y: x.copysign(y), [(3, 4), (3, 4)], device)
    compare(lambda x, y: x.xlogy(y), [(3, 4), (3, 4)], device, low=0.1, high=2.0)
    compare(lambda x, y: x.logaddexp2(y), [(3, 4), (3, 4)], device)


@pytest.mark.parametrize("dtype", ["int32", "int64", "int16"])
def test_gcd_lcm(dtype: str, device: str) -> None:
    rng = np.random.default_rng(1)
    hi = {"int16": 2**15 - 1, "int32": 2**31 - 1, "int64": 2**62}[dtype]
    a = np.concatenate([rng.integers(-hi, hi, 50), [0, 0, 7, -12, 832040, hi]]).astype(dtype)
    b = np.concatenate([rng.integers(-hi, hi, 50), [0, 5, 0, 18, 514229, hi - 1]]).astype(dtype)
    if not supports(device, dtype):
        pytest.skip(f"{device} stores no {dtype}")
    np.testing.assert_array_equal(Tensor(a, device=device).gcd(Tensor(b, device=device)).numpy(),
                                  torch.gcd(torch.tensor(a), torch.tensor(b)).numpy())
    small_a, small_b = (a % 1000).astype(dtype), (b % 1000).astype(dtype)
    np.testing.assert_array_equal(Tensor(small_a, device=device).lcm(Tensor(small_b, device=device)).numpy(),
                                  torch.lcm(torch.tensor(small_a), torch.tensor(small_b)).numpy())


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64"])
def test_gcd_at_the_limits_of_its_dtype(dtype: str, device: str) -> None:
    """gcd against Python's math.gcd (wrapped to the dtype: gcd(min, 0) = 2**(bits-1) is min) for every pair of the
    type's extremes and small values: |min| wraps, so Euclid on absolute values with a floored remainder gave -1 for
    gcd(1, min)."""
    if not supports(device, dtype):
        pytest.skip(f"{device} stores no {dtype}")
    info = np.iinfo(dtype)
    v = np.array([0, 1, -1, 7, -12, 18, info.min, info.max, info.min + 1], dtype)
    a, b = np.repeat(v, len(v)), np.tile(v, len(v))
    half = 2 ** (info.bits - 1)
    expected = np.array([(math.gcd(int(x), int(y)) + half) % (2 * half) - half for x, y in zip(a, b)], dtype)
    np.testing.assert_array_equal(Tensor(a, device=device).gcd(Tensor(b, device=device)).numpy(), expected)


def test_views_and_pieces(device: str) -> None:
    compare(both("tile", (2, 1, 3)), [(2, 3)], device)
    compare(both("tile", (2,)), [(2, 3)], device)
    compare(lambda x: x.broadcast_to((4, 2, 3)), [(2, 3)], device)
    compare(both("select", 1, -1), [(2, 3, 4)], device)
    compare(both("swapaxes", 0, 2), [(2, 3, 4)], device)
    compare(both("moveaxis", (0, 1), (2, 0)), [(2, 3, 4)], device)
    compare(both("ravel"), [(2, 3)], device)
    compare(both("fliplr"), [(2, 3)], device)
    compare(both("flipud"), [(2, 3)], device)
    compare(both("diag_embed"), [(2, 3)], device)
    for offset, d1, d2 in ((1, -2, -1), (-2, 0, 2), (0, 2, 0)):
        compare(both("diag_embed", offset, d1, d2), [(2, 3)], device)
    compare(both("diagflat", -1), [(2, 2)], device)
    for sections in (3, 4, [1, 3], [-1], [5, 2]):
        compare(lambda x, s=sections: x.tensor_split(s, 1), [(2, 5)], device, grad=False)
    compare(lambda x: x.hsplit(2), [(2, 4)], device, grad=False)
    compare(lambda x: x.vsplit([1]), [(3, 4)], device, grad=False)
    compare(lambda x: x.dsplit(2), [(2, 2, 4)], device, grad=False)
    compare(lambda x: x.unbind(1), [(2, 3)], device, grad=False)
    compare(lambda x: x.unbind(1)[2] * 2, [(2, 3)], device)
    index = np.array([[0, -1], [5, 2]])
    compare(lambda x: x.take(Tensor(index, device=device) if isinstance(x, Tensor) else torch.tensor(index)),
            [(2, 3)], device)


def test_view_errors(device: str) -> None:
    x = Tensor(np.zeros((2, 3), np.float32), device=device)
    with pytest.raises(IndexError, match="select"):
        x.select(1, 3)
    with pytest.raises(RuntimeError, match="hsplit"):
        x.hsplit(2)
    with pytest.raises(RuntimeError, match="movedim"):
        x.movedim((0, 0), (1, 0))


def test_products(device: str) -> None:
    compare(lambda m, v: m.mv(v), [(3, 4), (4,)], device)
    compare(lambda b, m, v: b.addmv(m, v, beta=0.5, alpha=2), [(3,), (3, 4), (4,)], device)
    compare(lambda b, u, v: b.addr(u, v, alpha=-1), [(3, 4), (3,), (4,)], device)
    compare(lambda b, x, y: b.addbmm(x, y), [(3, 5), (2, 3, 4), (2, 4, 5)], device)
    compare(lambda a, b: a.inner(b), [(2, 4), (3, 4)], device)
    compare(lambda a, b: a.vdot(b), [(4,), (4,)], device)
    compare(lambda a, b, c: a.addcmul(b, c, value=0.5), [(3, 4), (3, 4), (1, 4)], device)
    compare(lambda a, b, c: a.addcdiv(b, c, value=2), [(3, 4), (3, 4), (3, 4)], device, low=0.5, high=2.0)


def test_index_writes(device: str) -> None:
    idx = np.array([0, 2, 0, 3])
    ti, gi = torch.tensor(idx), Tensor(idx, device=device)
    pick = lambda x: gi if isinstance(x, Tensor) else ti  # noqa: E731
    compare(lambda x, s: x.index_add(1, pick(x), s, alpha=2), [(3, 4), (3, 4)], device)
    uniq = np.array([2, 0])
    u = lambda x: Tensor(uniq, device=device) if isinstance(x, Tensor) else torch.tensor(uniq)  # noqa: E731
    compare(lambda x, s: x.index_copy(0, u(x), s), [(3, 4), (2, 4)], device)
    compare(lambda x: x.index_fill(1, pick(x), -1.5), [(3, 4)], device)
    rows, cols = np.array([0, 2, 0]), np.array([1, 3, 1])
    ind = lambda x: (Tensor(rows, device=device), Tensor(cols, device=device)) if isinstance(x, Tensor) else \
        (torch.tensor(rows), torch.tensor(cols))  # noqa: E731
    compare(lambda x, v: x.index_put(ind(x), v, accumulate=True), [(3, 4), (3,)], device)
    compare(lambda x, v: x.index_put(ind(x)[:1], v, accumulate=True), [(3, 4), (4,)], device)
    compare(lambda x: x.index_put(ind(x)[1:], torch.tensor(7.0) if not isinstance(x, Tensor) else
                                  Tensor(7.0, device=device)), [(4, 3)], device)
    mask = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, False]])
    mk = lambda x: Tensor(mask, device=device) if isinstance(x, Tensor) else torch.tensor(mask)  # noqa: E731
    compare(lambda x, s: x.masked_scatter(mk(x), s), [(3, 4), (10,)], device)
    with pytest.raises(IndexError, match="index_add"):
        Tensor(np.zeros((2, 2), np.float32), device=device).index_add(0, Tensor([2], device=device),
                                                                     Tensor(np.ones((1, 2), np.float32)))
    with pytest.raises(RuntimeError, match="masked_scatter"):
        Tensor(np.zeros(3, np.float32), device=device).masked_scatter(Tensor([True, True, True], device=device),
                                                                      Tensor([1.0], device=device))


def test_order_statistics(device: str) -> None:
    x = np.array([[3.0, 1.0, 2.0, 1.0, 5.0], [np.nan, 2.0, 2.0, -1.0, np.nan], [4.0, 4.0, 4.0, 4.0, 4.0]],
                 np.float32)
    tx, gx = torch.tensor(x), Tensor(x, device=device)
    r, o = tx.kthvalue(2, 1), gx.kthvalue(2, 1)
    np.testing.assert_array_equal(o.values.numpy(), r.values.numpy())
    r, o = tx.mode(1), gx.mode(1)
    np.testing.assert_array_equal(o.values.numpy(), r.values.numpy())
    np.testing.assert_array_equal(o.indices.numpy(), r.indices.numpy())
    r, o = tx.nanmedian(1), gx.nanmedian(1)
    np.testing.assert_array_equal(o.values.numpy(), r.values.numpy())
    assert gx.nanmedian().item() == tx.nanmedian().item()
    for interp in ("linear", "lower", "higher", "nearest", "midpoint"):
        for q in (0.5, [0.0, 0.3, 1.0]):
            for dim, keep in ((1, False), (None, False), (0, True), (None, True)):
                qt = q if isinstance(q, float) else torch.tensor(q)
                for name in ("quantile", "nanquantile"):
                    ref = getattr(tx, name)(qt, dim, keep, interpolation=interp).numpy()
                    got = getattr(gx, name)(q, dim, keep, interpolation=interp).numpy()
                    np.testing.assert_allclose(got, ref, rtol=1e-6, err_msg=f"{name} {interp} {q} {dim} {keep}")
    compare(lambda a: a.quantile(0.3, 1), [(3, 6)], device)
    compare(lambda a: a.kthvalue(3, 0)[0], [(4, 3)], device)
    compare(lambda a: a.nansum(1) + a.nanmean(0).sum(), [(3, 4)], device)
    n = np.array([1.0, np.nan, 3.0, np.nan], np.float32)
    assert Tensor(n, device=device).nansum().item() == 4.0 and Tensor(n, device=device).nanmean().item() == 2.0
    _, hi = gx.aminmax(dim=1)
    np.testing.assert_array_equal(hi.numpy(), tx.aminmax(dim=1).max.numpy())
    np.testing.assert_array_equal(gx.msort().numpy(), tx.msort().numpy())


def test_unique_and_histograms(device: str) -> None:
    x = np.array([3.0, np.nan, 1.0, 3.0, -0.5, 1.0, np.nan], np.float32)
    r, o = torch.unique(torch.tensor(x), return_inverse=True, return_counts=True), \
        Tensor(x, device=device).unique(return_inverse=True, return_counts=True)
    for a, b in zip(o, r):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    m = np.array([[3, 1], [2, 1], [3, 1]])
    for a, b in zip(Tensor(m, device=device).unique(dim=0, return_inverse=True, return_counts=True),
                    torch.unique(torch.tensor(m), dim=0, return_inverse=True, return_counts=True)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    c = np.array([1, 1, 2, 2, 3, 1, 1])
    for a, b in zip(Tensor(c, device=device).unique_consecutive(return_inverse=True, return_counts=True),
                    torch.unique_consecutive(torch.tensor(c), return_inverse=True, return_counts=True)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    h = np.array([1.0, 2.0, 1.0, 4.0, 5.0, np.nan, 0.0, 3.0, 2.999], np.float32)
    for bins, lo, hi in ((4, 0, 3), (4, 0, 0), (7, -1, 6), (1, 0, 0)):
        np.testing.assert_array_equal(Tensor(h[~np.isnan(h)] if lo == hi else h, device=device).histc(bins, lo, hi)
                                      .numpy(), torch.histc(torch.tensor(h[~np.isnan(h)] if lo == hi else h), bins,
                                                            lo, hi).numpy())


def test_covariance(device: str) -> None:
    compare(lambda a: a.cov(), [(3, 6)], device)
    compare(lambda a: a.cov(correction=0), [(6,)], device)
    compare(lambda a: a.corrcoef(), [(3, 6)], device)
    fw, aw = np.array([1, 2, 1, 3, 1, 1]), np.array([0.5, 1.0, 2.0, 1.0, 0.25, 1.0], np.float32)
    compare(lambda a: a.cov(fweights=Tensor(fw, device=device), aweights=Tensor(aw, device=device))
            if isinstance(a, Tensor) else a.cov(fweights=torch.tensor(fw), aweights=torch.tensor(aw)), [(3, 6)],
            device)


def test_distances_and_norms(device: str) -> None:
    compare(lambda a, b: a.dist(b, 3), [(3, 4), (3, 4)], device)
    compare(lambda a, b: (functional if isinstance(a, Tensor) else torch).cdist(a, b), [(2, 3, 4), (2, 5, 4)], device)
    compare(fn_both("pairwise_distance"), [(3, 4), (3, 4)], device)
    compare(fn_both("normalize", 1.5, 0), [(3, 4)], device)
    compare(fn_both("glu", 1), [(3, 4)], device)
    compare(fn_both("instance_norm"), [(2, 3, 5, 4)], device, atol=1e-4)
    compare(lambda x, w, b: (functional if isinstance(x, Tensor) else F).instance_norm(x, weight=w, bias=b),
            [(2, 3, 6), (3,), (3,)], device, atol=1e-4)
    compare(fn_both("local_response_norm", 3), [(2, 5, 3, 3)], device, low=-1, high=1)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_more_losses(reduction: str, device: str) -> None:
    rng = np.random.default_rng(5)
    sign = np.where(rng.uniform(size=(6,)) > 0.5, 1.0, -1.0).astype(np.float32)
    target = np.array([0, 2, 1, 2, 0, 1])

    def s(x: Any) -> Any:
        return Tensor(sign, device=device) if isinstance(x, Tensor) else torch.tensor(sign)

    def tt(x: Any) -> Any:
        return Tensor(target, device=device) if isinstance(x, Tensor) else torch.tensor(target)

    compare(lambda a, b: fn_both("margin_ranking_loss", reduction=reduction, margin=0.3)(a, b, s(a)),
            [(6,), (6,)], device)
    compare(lambda a: fn_both("hinge_embedding_loss", reduction=reduction)(a, s(a)), [(6,)], device)
    compare(lambda a: fn_both("soft_margin_loss", reduction=reduction)(a * 30, s(a)), [(6,)], device)
    compare(lambda a, b: fn_both("cosine_embedding_loss", reduction=reduction, margin=0.1)(a, b, s(a)),
            [(6, 3), (6, 3)], device)
    compare(fn_both("triplet_margin_loss", reduction=reduction, swap=True), [(6, 3), (6, 3), (6, 3)], device)
    compare(lambda a, t: fn_both("poisson_nll_loss", reduction=reduction, full=True)(a, t.abs() * 3),
            [(6,), (6,)], device)
    compare(lambda a, t, v: fn_both("gaussian_nll_loss", reduction=reduction, full=True)(a, t, v.abs()),
            [(6, 2), (6, 2), (6,)], device)
    compare(lambda a, t: fn_both("multilabel_soft_margin_loss", reduction=reduction)(a, (t > 0).float()),
            [(6, 3), (6, 3)], device)
    for p in (1, 2):
        compare(lambda a, p=p: fn_both("multi_margin_loss", p=p, reduction=reduction)(a, tt(a)), [(6, 3)], device)


def test_sampling(device: str) -> None:
    manual_seed(0)
    w = np.array([[0.0, 1.0, 3.0, 0.0], [2.0, 0.0, 0.0, 2.0]], np.float32)
    draws = Tensor(w, device=device).multinomial(4000, replacement=True).numpy()
    assert draws.shape == (2, 4000) and draws.dtype == np.int64
    assert set(np.unique(draws[0])) == {1, 2} and set(np.unique(draws[1])) == {0, 3}  # zero weight never drawn
    assert abs((draws[0] == 2).mean() - 0.75) < 0.04 and abs((draws[1] == 0).mean() - 0.5) < 0.04
    once = Tensor(w, device=device).multinomial(2).numpy()
    assert sorted(once[0]) == [1, 2] and sorted(once[1]) == [0, 3]  # without replacement: each category once
    with pytest.raises(RuntimeError, match="without replacement"):
        Tensor(w, device=device).multinomial(3)
    with pytest.raises(RuntimeError, match="non-negative"):
        Tensor([1.0, -1.0], device=device).multinomial(1)
    perm = Tensor.randperm(50, device=device).numpy()
    assert sorted(perm.tolist()) == list(range(50))
    b = Tensor(np.array([0.0, 1.0, 0.5] * 200, np.float32), device=device).bernoulli().numpy()
    assert b[0::3].sum() == 0 and b[1::3].sum() == 200 and 70 < b[2::3].sum() < 130


def test_gradient_through_order_statistics_reaches_picked_elements(device: str) -> None:
    x = Tensor(np.array([[4.0, 1.0, 3.0], [2.0, 2.0, 9.0]], np.float32), device=device, requires_grad=True)
    x.mode(1).values.sum().backward()
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [0, 1, 0]])
    assert math.isnan(Tensor([np.nan, 1.0], device=device).quantile(0.5).item())


IN_PLACE = [("add_", (2.0,), {"alpha": 3}), ("sub_", (0.5,), {}), ("mul_", (-2.0,), {}), ("div_", (4.0,), {}),
            ("pow_", (2,), {}), ("neg_", (), {}), ("abs_", (), {}), ("exp_", (), {}), ("sqrt_", (), {}),
            ("tanh_", (), {}), ("sigmoid_", (), {}), ("relu_", (), {}), ("clamp_", (-0.5, 0.5), {}),
            ("clamp_min_", (0.1,), {}), ("clamp_max_", (0.1,), {}), ("floor_", (), {}), ("round_", (), {}),
            ("square_", (), {}), ("fmod_", (0.7,), {}), ("remainder_", (0.7,), {})]


@pytest.mark.parametrize("name,args,kwargs", IN_PLACE, ids=[n for n, _, _ in IN_PLACE])
def test_in_place_ops_match_torch_and_keep_gradients(name: str, args: tuple, kwargs: dict, device: str) -> None:
    low = 0.1 if name == "sqrt_" else -2.0

    def fn(x: Any) -> Any:
        y = x * 1.5  # a non-leaf, as torch requires for in-place ops in a graph
        out = getattr(y, name)(*args, **kwargs)
        assert out is y
        return y

    compare(fn, [(3, 4)], device, low=low, atol=2e-6)


def test_in_place_rules(device: str) -> None:
    w = Tensor([1.0, 2.0], device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        w.add_(1)
    from tg.core import no_grad

    with no_grad():
        w.mul_(3).add_(Tensor([1.0, 1.0], device=device))
    assert w.requires_grad and w.tolist() == [4.0, 7.0]  # still a leaf that trains
    (w * w).sum().backward()
    assert w.grad is not None and w.grad.tolist() == [8.0, 14.0]
    i = Tensor([1, 2], device=device)
    with pytest.raises(RuntimeError, match="float32 result cannot be written to a int64"):
        i.mul_(0.5)
    with pytest.raises(RuntimeError, match="shape"):
        Tensor([1.0], device=device).add_(Tensor([1.0, 2.0], device=device))
    x = Tensor(np.zeros((2, 3), np.float32), device=device)
    x.index_add_(1, Tensor([0, 0], device=device), Tensor(np.ones((2, 2), np.float32), device=device))
    x.masked_fill_(Tensor([[False, True, False]] * 2, device=device), 5.0)
    x.copy_(x + Tensor([1.0, 0.0, 0.0], device=device))
    assert x.tolist() == [[3.0, 5.0, 0.0], [3.0, 5.0, 0.0]]
    src = Tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    y = Tensor(np.zeros((2, 3), np.float32), device=device).copy_(src)
    y.sum().backward()
    assert src.grad is not None and src.grad.tolist() == [2.0, 2.0, 2.0]  # copy_ passes gradients to its source


def test_setitem_repeated_positions_and_gradients(device: str) -> None:
    x = Tensor(np.zeros(5, np.float32), device=device)
    x[Tensor([1, 1, 3], device=device)] = Tensor([2.0, 7.0, 4.0], device=device)  # the last write wins (torch CPU)
    assert x.tolist() == [0.0, 7.0, 0.0, 4.0, 0.0]
    a = Tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    y = a * 2
    y[1] = 5.0  # writing into a non-leaf keeps the gradient of what is left
    (y * y).sum().backward()
    assert a.grad is not None and a.grad.tolist() == [8.0, 0.0, 24.0]


def test_new_and_as(device: str) -> None:
    x = Tensor(np.ones((2, 3), np.int32), device=device)
    z = x.new_zeros(4, 1)
    assert z.shape == (4, 1) and z.dtype == x.dtype and z.device == x.device
    assert x.new_full((2,), 7).tolist() == [7, 7] and x.new_tensor([1.5]).dtype == x.dtype
    assert x.float().type_as(x).dtype == x.dtype and x.reshape_as(z.new_ones(3, 2)).shape == (3, 2)
    assert x.float().clamp_min(2).tolist() == [[2.0] * 3] * 2


def _run_writes(lib: Any, device: str) -> list[Any]:
    """The same program of writes through views in torch (lib=torch) and tg: every intermediate value."""
    if lib is torch:
        x = torch.zeros(3, 4)
    else:
        x = Tensor(np.zeros((3, 4), np.float32), device=device)
    seen = []
    x[0][1] = 5.0  # chained indexing writes into x
    row = x[1]
    row.add_(2)
    col = x.T[3]
    col.fill_(7.0)
    flat = x.reshape(-1)
    x.mul_(2)  # flat reads x again
    seen.append(flat[:6] * 1)
    for r in x:
        r.mul_(0.5)
    a, b = x.split(2, dim=1)
    b.sub_(1)
    seen.append(a * 1)
    narrowed = x.narrow(0, 1, 2).unsqueeze(0)[0][:, 1:]
    narrowed.copy_(narrowed * 10)
    q = x.reshape(-1)
    for _ in range(4):
        q = q[1:]
    q[0] = -3.0
    seen.append(x * 1)
    return [t.numpy() if hasattr(t, "numpy") else t for t in seen]


def test_writes_through_views_reach_the_viewed_tensor(device: str) -> None:
    for got, want in zip(_run_writes(Tensor, device), _run_writes(torch, device)):
        np.testing.assert_array_equal(got, want)


def test_gradients_through_in_place_writes(device: str) -> None:
    def program(lib: Any, a: Any) -> Any:
        b = a * 2
        v = b[1:]
        v.mul_(10)  # a write through a view of a non-leaf
        y = a * 3
        z = y * 3  # (torch refuses y * y here: y, saved for its gradient, changes next; tg keeps the old value)
        y[0] = 5.0  # y is rebound; z's gradient still goes through the old y
        w = lib.zeros(3) if lib is torch else Tensor(np.zeros(3, np.float32), device=device)
        w[1] = a[0] * 4  # the written value's gradient flows
        return (b * b).sum() + z.sum() + y.sum() + (w * w).sum()

    ta = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    program(torch, ta).backward()
    ga = Tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    program(Tensor, ga).backward()
    assert ga.grad is not None and ta.grad is not None
    np.testing.assert_allclose(ga.grad.numpy(), ta.grad.numpy(), rtol=1e-6)


def test_in_place_write_to_a_view_of_a_leaf_is_refused(device: str) -> None:
    w = Tensor([1.0, 2.0], device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        w[0:1].add_(1)
    from tg.core import no_grad

    with no_grad():
        w[0:1].add_(1)
    assert w.tolist() == [2.0, 2.0] and w.requires_grad


def test_detach_and_data_share_the_data(device: str) -> None:
    def program(lib: Any) -> list[Any]:
        if lib is torch:
            p = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        else:
            p = Tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
        (p * p).sum().backward()
        assert p.grad is not None
        p.grad.detach().mul_(0.5)  # as torch.nn.utils.clip_grad_norm_ scales gradients
        p.data.mul_(2)
        p.detach()[0] = 7.0
        q = p * 2
        q.detach().zero_()
        return [p.grad.numpy(), p.detach().numpy(), q.detach().numpy(), p.requires_grad]

    for got, want in zip(program(Tensor), program(torch)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", [1, 4])
def test_linear_algebra(n: int, device: str) -> None:
    rng = np.random.default_rng(n)
    a = (rng.standard_normal((2, n, n)) + n * np.eye(n) * rng.choice([-1, 1], (2, 1, 1))).astype(np.float32)
    b = rng.standard_normal((2, n, 3)).astype(np.float32)
    def lin(name: str) -> Any:
        return lambda *xs: getattr(linalg if isinstance(xs[0], Tensor) else torch.linalg, name)(*xs)

    for name in ("inv", "det"):
        ta, ga = torch.tensor(a, requires_grad=True), Tensor(a, device=device, requires_grad=True)
        ref, out = lin(name)(ta), lin(name)(ga)
        np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
        ref.sum().backward()
        out.sum().backward()
        assert ga.grad is not None and ta.grad is not None
        np.testing.assert_allclose(ga.grad.numpy(), ta.grad.numpy(), rtol=1e-3, atol=1e-4, err_msg=f"grad of {name}")
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    ga, gb = Tensor(a, device=device, requires_grad=True), Tensor(b, device=device, requires_grad=True)
    ref, out = lin("solve")(ta, tb), lin("solve")(ga, gb)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-4, atol=1e-5)
    (ref * ref).sum().backward()
    (out * out).sum().backward()
    assert ga.grad is not None and gb.grad is not None and ta.grad is not None and tb.grad is not None
    np.testing.assert_allclose(ga.grad.numpy(), ta.grad.numpy(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(gb.grad.numpy(), tb.grad.numpy(), rtol=1e-3, atol=1e-3)
    sign, logabs = Tensor(a, device=device).slogdet()
    rs, rl = torch.linalg.slogdet(torch.tensor(a))
    np.testing.assert_array_equal(sign.numpy(), rs.numpy())
    np.testing.assert_allclose(logabs.numpy(), rl.numpy(), rtol=1e-5, atol=1e-5)


def test_singular_matrices(device: str) -> None:
    s = Tensor(np.array([[1.0, 2.0], [2.0, 4.0]], np.float32), device=device)
    assert s.det().item() == 0.0
    with pytest.raises(RuntimeError, match="singular"):
        s.inverse()
    with pytest.raises(RuntimeError, match="square"):
        Tensor(np.zeros((2, 3), np.float32), device=device).det()


def test_special_functions(device: str) -> None:
    x = np.array([-3.5, -2.5, -0.5, -1e-3, 1e-3, 0.1, 0.5, 1.0, 1.5, 2.0, 3.0, 7.5, 30.0, 1e3, 1e6, 0.0, -1.0, -2.0,
                  np.inf, np.nan], np.float32)
    for name in ("lgamma", "digamma"):
        np.testing.assert_allclose(getattr(Tensor(x, device=device), name)().numpy(),
                                   getattr(torch.tensor(x), name)().numpy(), rtol=5e-6, atol=2e-6, err_msg=name)
    y = np.array([-1.0, -0.999, -0.5, -1e-5, 0.0, 1e-5, 0.3, 0.9, 0.99, 0.9999, 1.0, 1.5, np.nan], np.float32)
    np.testing.assert_allclose(Tensor(y, device=device).erfinv().numpy(), torch.tensor(y).erfinv().numpy(),
                               rtol=2e-6, atol=1e-7)
    compare(lambda t: t.lgamma(), [(3, 4)], device, low=0.2, high=6.0, atol=1e-5)
    compare(lambda t: t.digamma(), [(3, 4)], device, low=0.2, high=6.0, atol=1e-4)
    compare(lambda t: t.erfinv(), [(3, 4)], device, low=-0.95, high=0.95, atol=1e-5)


def test_edge_shapes_of_order_statistics(device: str) -> None:
    x = Tensor(np.array(1.5, np.float32), device=device)
    values, indices = x.sort()
    assert values.item() == 1.5 and indices.item() == 0 and x.msort().item() == 1.5
    empty = Tensor(np.zeros(0, np.float32), device=device)
    assert math.isnan(empty.median().item()) and math.isnan(empty.nanmedian().item())  # torch: NaN, no error
    with pytest.raises(RuntimeError, match="diag_embed"):
        x.diag_embed()


def test_acosh_and_logit_outside_their_domains(device: str) -> None:
    """acosh below 1 is NaN, -1e30 too (its square overflowed to inf, which hid the NaN); logit's gradient is NaN
    outside [0, 1] and, with eps, 0 outside [eps, 1 - eps]: torch's, values and gradients."""
    x = np.array([-1e30, -3.0, 0.5, 1.0, 2.0, 1e30], np.float32)
    np.testing.assert_allclose(Tensor(x, device=device).acosh().numpy(), torch.tensor(x).acosh().numpy(), rtol=1e-6)
    p = np.array([-0.5, 0.0, 0.02, 0.3, 0.97, 1.0, 1.5], np.float32)
    for eps in (None, 0.05):
        tt = torch.tensor(p, requires_grad=True)
        torch.logit(tt, eps).sum().backward()
        t = Tensor(p, device=device, requires_grad=True)
        t.logit(eps).sum().backward()
        np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-5)


def test_integer_edges_of_shifts_isclose_einsum_and_logsumexp(device: str) -> None:
    """Against torch: shifts by negative counts in a tensor give 0 (<<) or the sign (>>); isclose of integers at
    the type's limits does not wrap (0 vs -2**31 is far); integer einsum/inner keep their dtype; logsumexp of
    integers and bools runs in float (an integer shift wrapped to inf)."""
    x = np.array([5, -5, 1, -2**31, 2**31 - 1], np.int32)
    n = np.array([-1, -3, 31, 1, -1], np.int32)
    for op in ("__lshift__", "__rshift__"):
        np.testing.assert_array_equal(getattr(Tensor(x, device=device), op)(Tensor(n, device=device)).numpy(),
                                      getattr(torch.tensor(x), op)(torch.tensor(n)).numpy(), err_msg=op)
    a, b = np.array([0, 5, -2**31, 2**31 - 1], np.int32), np.array([-2**31, 5, 2**31 - 1, -2**31], np.int32)
    np.testing.assert_array_equal(Tensor(a, device=device).isclose(Tensor(b, device=device)).numpy(),
                                  torch.tensor(a).isclose(torch.tensor(b)).numpy())
    m = np.array([[2**30, 3], [-7, 2**31 - 1]], np.int32)
    got = Tensor(m, device=device).inner(Tensor(m, device=device))
    ref = torch.tensor(m).inner(torch.tensor(m))
    assert got.dtype.name == "int32"
    np.testing.assert_array_equal(got.numpy(), ref.numpy())
    ints = np.array([[2**31 - 1, 1, -2**31, 5], [3, -3, 7, 0]], np.int32)
    for data in (ints, *([ints.astype(np.int8)] if supports(device, "int8") else []), ints > 0):
        for dim in (0, 1):
            np.testing.assert_allclose(Tensor(data, device=device).logsumexp(dim).numpy(),
                                       torch.tensor(data).logsumexp(dim).numpy(), rtol=1e-6)


def test_fmax_fmin_gradients_on_ties_and_nan(device: str) -> None:
    """fmax/fmin give the whole gradient to the value picked: to the first operand on ties and where both are NaN
    (torch's rule), unlike maximum, which splits a tie."""
    a = np.array([1.0, 2.0, np.nan, np.nan, 0.5], np.float32)
    b = np.array([1.0, 3.0, np.nan, 4.0, np.nan], np.float32)
    g = np.array([0.5, -1.0, 2.0, 3.0, -2.0], np.float32)
    for name in ("fmax", "fmin"):
        ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        (getattr(torch, name)(ta, tb) * torch.tensor(g)).sum().backward()
        xa, xb = Tensor(a, device=device, requires_grad=True), Tensor(b, device=device, requires_grad=True)
        (getattr(xa, name)(xb) * Tensor(g, device=device)).sum().backward()
        np.testing.assert_array_equal(xa.grad.numpy(), ta.grad.numpy(), err_msg=name)
        np.testing.assert_array_equal(xb.grad.numpy(), tb.grad.numpy(), err_msg=name)


def test_python_numbers_beside_small_integer_tensors(device: str) -> None:
    """A Python number wraps into an integer tensor's type for integer ops (uint8 + -2 adds 254, == -2 compares with
    254) and is a float for float ops (uint8 / -2, copysign, xlogy): torch's rules; a fill refuses to wrap."""
    if not supports(device, "uint8"):
        pytest.skip(f"{device} stores no uint8")
    x = np.array([0, 3, 254, 255], np.uint8)
    t, r = Tensor(x, device=device), torch.tensor(x)
    for op in ("__add__", "__sub__", "__mul__", "__eq__", "__lt__", "__truediv__", "__rtruediv__", "copysign",
               "xlogy", "__and__"):
        got, ref = getattr(t, op)(-2).numpy(), getattr(r, op)(-2).numpy()
        assert str(got.dtype) == str(ref.dtype), op
        np.testing.assert_allclose(got, ref, rtol=1e-6, err_msg=op)
    np.testing.assert_array_equal((Tensor(np.array([5], np.int32), device=device) + 2**40).numpy(), [5])
    with pytest.raises(RuntimeError, match="full: value 300 cannot be converted to uint8"):
        Tensor.zeros(2, dtype="uint8", device=device).fill_(300)


def test_unsigned_abs_bool_square_uint8_all_any_and_bool_diag_embed(device: str) -> None:
    """abs of unsigned values is the value (max(x, -x) wrapped: |1| was 255); a bool squares to int64 and all/any of
    uint8 give uint8 (torch's exceptions); diag_embed keeps bools."""
    if not supports(device, "uint8"):
        pytest.skip(f"{device} stores no uint8")
    u = np.array([0, 1, 7, 128, 255], np.uint8)
    np.testing.assert_array_equal(Tensor(u, device=device).abs().numpy(), u)
    b = np.array([True, False])
    sq = Tensor(b, device=device).square()
    assert sq.dtype.name == "int64" and sq.numpy().tolist() == [1, 0]
    for name in ("all", "any"):
        got = getattr(Tensor(u, device=device), name)()
        assert got.dtype.name == "uint8" and got.item() == getattr(torch.tensor(u), name)().item()
    emb = Tensor(b, device=device).diag_embed()
    assert emb.dtype.name == "bool"
    np.testing.assert_array_equal(emb.numpy(), torch.tensor(b).diag_embed().numpy())


def test_ldexp_is_exact_where_the_power_alone_overflows(device: str) -> None:
    """ldexp against NumPy's (C's) for exponents whose power of two alone is outside float32: finite results stay
    finite, a zero stays a signed zero, subnormals come out exactly."""
    x = np.array([1e-30, -0.0, 1.0, 1e30, 2.0**-149, 5.0, 0.0, -3.0], np.float32)
    e = np.array([200, 255, -149, -200, 276, 1000, 1000, -140], np.int32)
    np.testing.assert_array_equal(Tensor(x, device=device).ldexp(Tensor(e, device=device)).numpy(), np.ldexp(x, e))


def test_soft_margin_gradient_at_zero_and_hinge_embedding_of_other_targets(device: str) -> None:
    """soft_margin_loss has gradient -target * sigmoid(-target * x), also at x = 0 (relu + log1p(exp(-|z|)) had
    two kinks there and gave 0); hinge_embedding_loss applies both terms to a target that is neither 1 nor -1 and
    takes clamp's gradient at the margin, as torch does. Values and gradients, every reduction."""
    x = np.array([0.0, 1.0, 0.5, -2.0, 0.0, 1.0, 3.0, -0.25], np.float32)
    t = np.array([1.0, -1.0, 0.0, 1.0, -1.0, 0.0, 0.5, -1.0], np.float32)
    for name in ("soft_margin_loss", "hinge_embedding_loss"):
        for reduction in ("mean", "sum", "none"):
            xt = torch.tensor(x, requires_grad=True)
            ref = getattr(F, name)(xt, torch.tensor(t), reduction=reduction)
            ref.sum().backward()
            xg = Tensor(x, device=device, requires_grad=True)
            out = getattr(functional, name)(xg, Tensor(t, device=device), reduction=reduction)
            out.sum().backward()
            np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-6, err_msg=name)
            np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-6, err_msg=f"{name} gradient")


def test_register_hook_retain_grad_is_leaf_and_grad_fn(device: str) -> None:
    """Gradient hooks on a result and on a leaf (a returned tensor replaces the gradient; remove() takes a hook off),
    retain_grad on a result, is_leaf and grad_fn: against torch on the same graph."""
    def run(make: Any) -> tuple:
        x = make([1.0, -2.0, 3.0])
        y = x * 2
        y.retain_grad()
        seen: list = []
        y.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10)
        gone = y.register_hook(lambda g: g * 1000)
        gone.remove()
        x.register_hook(lambda g: g + 1)
        (y * y).sum().backward()
        return (np.asarray(x.grad.numpy()), np.asarray(y.grad.numpy()), seen[0], x.is_leaf, y.is_leaf,
                x.grad_fn is None, y.grad_fn is not None)

    got = run(lambda d: Tensor(np.array(d, np.float32), device=device, requires_grad=True))
    want = run(lambda d: torch.tensor(d, requires_grad=True))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    x = Tensor(np.ones(3, np.float32), device=device, requires_grad=True)
    y = x * 3
    y.register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match="hook returned a gradient of shape"):
        y.sum().backward()
    with pytest.raises(RuntimeError, match="register_hook: cannot register"):
        Tensor(np.ones(3, np.float32), device=device).register_hook(lambda g: g)


def test_small_torch_names(device: str) -> None:
    """mT/mH/H, frexp (C's: zeros, infinities, NaN, subnormals), slice_scatter/select_scatter with gradients for
    both inputs, sum_to_size, split_with_sizes, narrow_copy, equal, dtype shortcuts and size names, against torch."""
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t, r = Tensor(a, device=device), torch.tensor(a)
    np.testing.assert_array_equal(t.mT.numpy(), r.mT.numpy())
    np.testing.assert_array_equal(t.mH.numpy(), r.mH.numpy())
    np.testing.assert_array_equal(t[0].H.numpy(), r[0].H.numpy())
    x = np.array([0.0, -0.0, 1.0, -3.5, 0.75, 1e-40, 3e38, np.inf, -np.inf, np.nan, 0.49999997, 2.0**-149], np.float32)
    (m, e), (tm, te) = Tensor(x, device=device).frexp(), torch.frexp(torch.tensor(x))
    np.testing.assert_array_equal(m.numpy(), tm.numpy())
    np.testing.assert_array_equal(e.numpy(), te.numpy())
    assert e.dtype.name == "int32"
    cases: list[dict[str, Any]] = [{"dim": 2, "start": 1, "end": 4, "step": 2}, {"dim": 1, "start": 0, "step": 2},
                                   {"dim": 2, "start": -3, "end": -1}]
    for kw in cases:
        shape = r[(slice(None),) * kw["dim"] + (slice(kw.get("start"), kw.get("end"), kw.get("step", 1)),)].shape
        s = np.random.default_rng(0).standard_normal(tuple(shape)).astype(np.float32)
        ta, ts = torch.tensor(a, requires_grad=True), torch.tensor(s, requires_grad=True)
        (torch.slice_scatter(ta, ts, **kw) * torch.tensor(a)).sum().backward()
        ga, gs = Tensor(a, device=device, requires_grad=True), Tensor(s, device=device, requires_grad=True)
        out = ga.slice_scatter(gs, **kw)
        (out * Tensor(a, device=device)).sum().backward()
        np.testing.assert_array_equal(out.numpy(), torch.slice_scatter(torch.tensor(a), torch.tensor(s), **kw).numpy())
        np.testing.assert_array_equal(ga.grad.numpy(), ta.grad.numpy())
        np.testing.assert_array_equal(gs.grad.numpy(), ts.grad.numpy())
    ones = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(t.select_scatter(Tensor(ones, device=device), 1, -1).numpy(),
                                  torch.select_scatter(r, torch.tensor(ones), 1, -1).numpy())
    np.testing.assert_array_equal(t.sum_to_size(3, 1).numpy(), r.sum_to_size(3, 1).numpy())
    assert [p.shape for p in t.split_with_sizes([1, 3], 2)] == [tuple(p.shape) for p in r.split_with_sizes([1, 3], 2)]
    np.testing.assert_array_equal(t.narrow_copy(2, 1, 2).numpy(), r.narrow_copy(2, 1, 2).numpy())
    assert t.equal(t * 1) and not t.equal(t + 1) and not t.equal(t[0])
    if all(supports(device, d) for d in ("int16", "int8", "uint8")):
        assert (t.short().dtype.name, t.char().dtype.name, t.byte().dtype.name) == ("int16", "int8", "uint8")
    assert (t.itemsize, t.nelement(), t.ndimension()) == (r.itemsize, r.nelement(), r.ndimension())


def test_torch_functions_beyond_tensor_methods(device: str) -> None:
    """Joining lists (hstack, vstack, dstack, column_stack, concat), atleast_Nd, index sets (tril/triu_indices,
    cartesian_prod, combinations), block_diag, vander, logspace, finfo/iinfo: tg.core's against torch's."""
    import tg.core as tc

    a, b = np.arange(3.0, dtype=np.float32), np.arange(6.0, dtype=np.float32).reshape(2, 3)
    for name in ("hstack", "vstack", "dstack", "column_stack", "concat"):
        for args in ([a, a], [b, b]):
            got = getattr(tc, name)([Tensor(x, device=device) for x in args]).numpy()
            np.testing.assert_array_equal(got, getattr(torch, name)([torch.tensor(x) for x in args]).numpy())
    for name in ("atleast_1d", "atleast_2d", "atleast_3d"):
        for x in (np.float32(3), a, b):
            want = tuple(getattr(torch, name)(torch.tensor(x)).shape)
            assert getattr(tc, name)(Tensor(x, device=device)).shape == want
    for rows, cols, offset in ((4, 5, 1), (4, 3, -1)):
        for name in ("tril_indices", "triu_indices"):
            np.testing.assert_array_equal(getattr(tc, name)(rows, cols, offset, device=device).numpy(),
                                          getattr(torch, name)(rows, cols, offset).numpy())
    t, r = Tensor(a + 1, device=device), torch.tensor(a + 1)
    np.testing.assert_array_equal(tc.cartesian_prod(t, t[:2]).numpy(), torch.cartesian_prod(r, r[:2]).numpy())
    for replace in (False, True):
        np.testing.assert_array_equal(tc.combinations(t, 2, replace).numpy(), torch.combinations(r, 2, replace).numpy())
    np.testing.assert_array_equal(tc.block_diag(Tensor(b, device=device), t).numpy(),
                                  torch.block_diag(torch.tensor(b), r).numpy())
    np.testing.assert_array_equal(tc.vander(t, 4, True).numpy(), torch.vander(r, 4, True).numpy())
    np.testing.assert_allclose(tc.logspace(0, 2, 5, device=device).numpy(), torch.logspace(0, 2, 5).numpy(), rtol=1e-6)
    assert tc.finfo(tc.float16).max == torch.finfo(torch.float16).max and tc.iinfo("int8").min == -128


def test_grad_mode_switches() -> None:
    """enable_grad inside no_grad, set_grad_enabled as a call and as a `with`, inference_mode, decorators,
    is_grad_enabled: torch's behaviour."""
    import tg.core as tc

    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    with tc.no_grad():
        assert not tc.is_grad_enabled()
        with tc.enable_grad():
            assert (x * 2).requires_grad
    tc.set_grad_enabled(False)
    assert not (x * 2).requires_grad
    tc.set_grad_enabled(True)
    with tc.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert tc.is_grad_enabled()
    with tc.inference_mode():
        assert not (x * 2).requires_grad
    with tc.inference_mode(False):
        assert (x * 2).requires_grad
    assert tc.inference_mode()(lambda: (x * 2).requires_grad)() is False
    assert tc.no_grad()(tc.enable_grad()(lambda: (x * 2).requires_grad))() is True
    assert tc.is_grad_enabled()


@pytest.mark.parametrize("name,args", [("relu", ()), ("relu6", ()), ("leaky_relu", (0.2,)), ("elu", (0.7,)),
                                       ("hardtanh", (-0.5, 0.5)), ("hardsigmoid", ()), ("hardswish", ()),
                                       ("silu", ()), ("mish", ()), ("selu", ()), ("celu", (0.5,)),
                                       ("threshold", (0.1, -2.0))])
def test_functional_activations_take_inplace(name: str, args: tuple, device: str) -> None:
    """F.<activation>(x, ..., inplace=True) writes into x and returns x (torch code passes it everywhere); on a
    result that requires grad, the gradient is torch's."""
    x = np.random.default_rng(8).standard_normal((3, 5)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    th = tx * 1.5
    tout = getattr(F, name)(th, *args, inplace=True)
    (tout * tout).sum().backward()
    gx = Tensor(x, device=device, requires_grad=True)
    gh = gx * 1.5
    gout = getattr(functional, name)(gh, *args, inplace=True)
    assert gout is gh
    (gout * gout).sum().backward()
    np.testing.assert_allclose(gh.numpy(), th.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
def test_losses_with_elementwise_weights(name: str, device: str) -> None:
    """weight= on mse/l1/huber (torch 2.13): the weighted mean divides by the weights' sum for mse and l1, by the
    count for huber, as torch's; values and gradients for every reduction."""
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((3, 4)).astype(np.float32) * 2, rng.standard_normal((3, 4)).astype(np.float32)
    w = rng.uniform(0.1, 2, (3, 4)).astype(np.float32)
    for reduction in ("mean", "sum", "none"):
        ta = torch.tensor(a, requires_grad=True)
        ref = getattr(F, name)(ta, torch.tensor(b), reduction=reduction, weight=torch.tensor(w))
        ref.sum().backward()
        ga = Tensor(a, device=device, requires_grad=True)
        out = getattr(functional, name)(ga, Tensor(b, device=device), reduction=reduction,
                                        weight=Tensor(w, device=device))
        out.sum().backward()
        np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-5)
        np.testing.assert_allclose(ga.grad.numpy(), ta.grad.numpy(), rtol=1e-5)


@pytest.mark.parametrize("name", ["exp", "log", "tanh", "sigmoid", "cos", "tan", "sin", "expm1", "log1p", "rsqrt",
                                  "softmax", "log_softmax"])
def test_half_precision_math_rounds_once(name: str, device: str) -> None:
    """float16 math is computed in float32 and rounded once, as torch's: within 1 ulp of torch's half results
    (exp and sigmoid were 10 ulps off through the float16 product x * log2(e); tan 12 through float16 sin/cos;
    softmax 5)."""
    if not supports(device, "float16"):
        pytest.skip(f"{device} has no float16")
    x = np.random.default_rng(10).uniform(-12, 12, 4096).astype(np.float16)
    if name in ("log", "log1p", "rsqrt"):
        x = np.abs(x) + np.float16(0.01)
    args = (-1,) if "softmax" in name else ()
    x = x.reshape(16, 256) if args else x
    got = getattr(Tensor(x, device=device), name)(*args).numpy().astype(np.float64)
    ref = getattr(torch.tensor(x), name)(*args).numpy().astype(np.float64)
    finite = np.isfinite(ref) & (ref != 0)
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(ref))
    ulps = np.abs(got - ref)[finite] / np.spacing(np.abs(ref[finite]).astype(np.float16)).astype(np.float64)
    assert ulps.max() <= 1, f"{name}: {ulps.max()} ulps from torch's float16"


@pytest.mark.parametrize("name", ["layer_norm", "group_norm", "rms_norm", "batch_norm", "instance_norm", "avg_pool2d",
                                  "interpolate", "scaled_dot_product_attention"])
def test_half_precision_nn_ops_are_correctly_rounded(name: str, device: str) -> None:
    """float16 normalisations, average pooling, resizing and attention compute in float32 and round once: within
    1 ulp of the float64 result (torch's own half CPU kernels are 22-64 ulps off for batch/instance norm and
    attention; tg's layer/group norm were 24-29 ulps off, and avg_pool2d returned float32)."""
    if not supports(device, "float16"):
        pytest.skip(f"{device} has no float16")
    x = np.random.default_rng(11).standard_normal((4, 8, 6, 6)).astype(np.float16)
    calls = {"layer_norm": lambda f, t: f.layer_norm(t, (6, 6)), "group_norm": lambda f, t: f.group_norm(t, 2),
             "rms_norm": lambda f, t: f.rms_norm(t, (6, 6), eps=1e-6),
             "batch_norm": lambda f, t: f.batch_norm(t, None, None, training=True),
             "instance_norm": lambda f, t: f.instance_norm(t), "avg_pool2d": lambda f, t: f.avg_pool2d(t, 3, 1, 1),
             "interpolate": lambda f, t: f.interpolate(t, scale_factor=2, mode="bilinear"),
             "scaled_dot_product_attention": lambda f, t: f.scaled_dot_product_attention(t, t, t)}
    got = calls[name](functional, Tensor(x, device=device))
    assert got.dtype.name == "float16"
    exact = calls[name](F, torch.tensor(x.astype(np.float64))).numpy()
    big = np.abs(exact) > 1e-3
    ulps = np.abs(got.numpy().astype(np.float64) - exact)[big] / np.spacing(np.abs(exact[big]).astype(np.float16))
    assert ulps.max() <= 1, f"{name}: {ulps.max()} ulps from the float64 result"


def test_matrix_power_renorm_and_more_losses(device: str) -> None:
    """matrix_power (0, positive and negative powers, batched), renorm, multilabel_margin_loss (targets ended by
    -1), triplet_margin_with_distance_loss (a custom distance, swap) and gumbel_softmax(hard): values and
    gradients against torch (gumbel's shape and one-hot only: its noise is tg's own)."""
    rng = np.random.default_rng(12)
    a = rng.standard_normal((2, 3, 3)).astype(np.float32)
    for n in (0, 1, 3, -2):
        ta = torch.tensor(a, requires_grad=True)
        torch.linalg.matrix_power(ta, n).sum().backward()
        ga = Tensor(a, device=device, requires_grad=True)
        out = ga.matrix_power(n)
        out.sum().backward()
        np.testing.assert_allclose(out.numpy(), torch.linalg.matrix_power(torch.tensor(a), n).numpy(), rtol=1e-4,
                                   atol=1e-5)
        np.testing.assert_allclose(ga.grad.numpy(), ta.grad.numpy(), rtol=1e-3, atol=1e-4)
    x = rng.standard_normal((3, 4, 5)).astype(np.float32) * 3
    for p, dim, most in ((2, 0, 5.0), (1, 2, 2.0)):
        tx = torch.tensor(x, requires_grad=True)
        (tx.renorm(p, dim, most) * torch.tensor(x)).sum().backward()
        gx = Tensor(x, device=device, requires_grad=True)
        out = gx.renorm(p, dim, most)
        (out * Tensor(x, device=device)).sum().backward()
        np.testing.assert_allclose(out.numpy(), torch.tensor(x).renorm(p, dim, most).numpy(), rtol=1e-5)
        np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    s = rng.standard_normal((4, 6)).astype(np.float32)
    t = np.array([[3, 0, -1, 1, 2, 4], [1, 2, 3, -1, 0, 0], [5, 4, 3, 2, 1, 0], [-1, 0, 0, 0, 0, 0]])
    triple = [rng.standard_normal((5, 4)).astype(np.float32) for _ in range(3)]
    for reduction in ("mean", "none"):
        ts = torch.tensor(s, requires_grad=True)
        F.multilabel_margin_loss(ts, torch.tensor(t), reduction=reduction).sum().backward()
        gs = Tensor(s, device=device, requires_grad=True)
        out = functional.multilabel_margin_loss(gs, Tensor(t, device=device), reduction=reduction)
        out.sum().backward()
        np.testing.assert_allclose(out.numpy(), F.multilabel_margin_loss(torch.tensor(s), torch.tensor(t),
                                                                         reduction=reduction).numpy(), rtol=1e-5)
        np.testing.assert_allclose(gs.grad.numpy(), ts.grad.numpy(), rtol=1e-5, atol=1e-6)
        for swap in (False, True):
            tt = [torch.tensor(v, requires_grad=True) for v in triple]
            ref = F.triplet_margin_with_distance_loss(*tt, distance_function=lambda u, v: (u - v).abs().sum(-1),
                                                      swap=swap, reduction=reduction)
            ref.sum().backward()
            gt = [Tensor(v, device=device, requires_grad=True) for v in triple]
            out = functional.triplet_margin_with_distance_loss(
                *gt, distance_function=lambda u, v: (u - v).abs().sum(-1), swap=swap, reduction=reduction)
            out.sum().backward()
            np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-5)
            for g, r in zip(gt, tt):
                np.testing.assert_allclose(g.grad.numpy(), r.grad.numpy(), rtol=1e-5, atol=1e-6)
    hard = functional.gumbel_softmax(Tensor(s, device=device), hard=True).numpy()
    assert hard.shape == s.shape and (hard.sum(1) == 1).all() and set(np.unique(hard)) <= {0.0, 1.0}


def test_adaptive_max_pool_returns_torchs_indices(device: str) -> None:
    """adaptive_max_pool1d/2d(return_indices=True): values, flat indices (a NaN wins its window, as torch) and the
    gradient, which goes to the index returned."""
    x = np.random.default_rng(13).standard_normal((2, 3, 7, 5)).astype(np.float32)
    x[0, 0, 2, 2] = np.nan
    for size in ((3, 2), 4, (None, 3)):
        tx = torch.tensor(x, requires_grad=True)
        ref_v, ref_i = F.adaptive_max_pool2d(tx, size, return_indices=True)
        ref_v.nan_to_num().sum().backward()
        gx = Tensor(x, device=device, requires_grad=True)
        v, i = functional.adaptive_max_pool2d(gx, size, return_indices=True)
        v.nan_to_num().sum().backward()
        np.testing.assert_array_equal(v.numpy(), ref_v.detach().numpy())
        np.testing.assert_array_equal(i.numpy(), ref_i.numpy())
        np.testing.assert_array_equal(gx.grad.numpy(), tx.grad.numpy())
    v, i = functional.adaptive_max_pool1d(Tensor(x[0], device=device), 3, return_indices=True)
    ref_v, ref_i = F.adaptive_max_pool1d(torch.tensor(x[0]), 3, return_indices=True)
    np.testing.assert_array_equal(i.numpy(), ref_i.numpy())


def test_scalars_through_topk_median_flip_and_nonzero(device: str) -> None:
    """0-d tensors: topk (k 0 or 1), median along dim 0, flip over dim 0 and nonzero give torch's results (they
    raised IndexError, or nonzero gave a (1, 1) coordinate for a tensor with no dims)."""
    x, r = Tensor(np.float32(2.5), device=device), torch.tensor(2.5)
    for k in (0, 1):
        v, i = x.topk(k)
        rv, ri = r.topk(k)
        assert v.shape == tuple(rv.shape) and v.item() == rv.item() and i.item() == ri.item()
    v, i = x.median(0)
    assert v.shape == () and v.item() == 2.5 and i.item() == 0
    assert x.flip(0).item() == 2.5
    for value in (2.5, 0.0):
        got = Tensor(np.float32(value), device=device).nonzero()
        assert got.shape == tuple(torch.tensor(value).nonzero().shape)


def test_group_norm_of_an_empty_batch(device: str) -> None:
    """group_norm of a (0, C, H, W) batch is an empty (0, C, H, W) result, as torch's (a reshape to -1 raised)."""
    out = functional.group_norm(Tensor(np.zeros((0, 4, 3, 3), np.float32), device=device), 2)
    assert out.shape == (0, 4, 3, 3) and out.numpy().size == 0


def test_matrix_power_zero_is_the_identity_even_for_nan(device: str) -> None:
    """matrix_power(A, 0) is the identity whatever A holds (torch's), with a zero gradient: A * 0 would turn a NaN or
    inf in A into NaN."""
    a = np.array([[np.nan, 1.0], [2.0, np.inf]], np.float32)
    x = Tensor(a, device=device, requires_grad=True)
    out = x.matrix_power(0)
    np.testing.assert_array_equal(out.numpy(), np.eye(2, dtype=np.float32))
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 2), np.float32))
