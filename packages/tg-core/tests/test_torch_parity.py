"""The Tensor API against PyTorch itself: same names, same arguments, same values and gradients.

Runs where torch is installed; CI installs it and sets TG_REQUIRE_TORCH=1 so that it cannot skip.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

if os.environ.get("TG_REQUIRE_TORCH"):
    import torch
else:
    torch = pytest.importorskip("torch")

from tg.core import Tensor, get_device, to_dtype

torch.manual_seed(0)


def compare(fn: Callable[..., Any], shapes: list[tuple[int, ...]], device: str, grad: bool = True,
            low: float = -2.0, high: float = 2.0, atol: float = 1e-5, rtol: float = 1e-4, seed: int = 0,
            extra: tuple = ()) -> None:
    """Run fn(tensors..., *extra) in torch and tg on the same float32 data; compare outputs and grads."""
    rng = np.random.default_rng(seed)
    data = [rng.uniform(low, high, s).astype(np.float32) for s in shapes]
    tt = [torch.tensor(d, requires_grad=grad) for d in data]
    gt = [Tensor(d, device=device, requires_grad=grad) for d in data]
    ref, out = fn(*tt, *extra), fn(*gt, *extra)
    refs, outs = (ref, out) if isinstance(ref, tuple) else ((ref,), (out,))
    for r, o in zip(refs, outs):
        assert tuple(o.shape) == tuple(r.shape), f"shape {o.shape} != torch {tuple(r.shape)}"
        np.testing.assert_allclose(o.numpy(), r.detach().numpy(), atol=atol, rtol=rtol)
    if not grad:
        return
    w = rng.uniform(-1, 1, tuple(refs[0].shape)).astype(np.float32)
    (refs[0] * torch.tensor(w)).sum().backward()
    (outs[0] * Tensor(w, device=device)).sum().backward()
    for i, (a, b) in enumerate(zip(tt, gt)):
        expected = a.grad.numpy() if a.grad is not None else np.zeros(a.shape, np.float32)
        got = b.grad.numpy() if b.grad is not None else np.zeros(a.shape, np.float32)
        np.testing.assert_allclose(got, expected, atol=max(atol, 1e-4), rtol=1e-3, err_msg=f"grad of input {i}")


F = torch.nn.functional

ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "leaky_relu": lambda x: x.leaky_relu(0.1) if isinstance(x, Tensor) else F.leaky_relu(x, 0.1),
    "elu": lambda x: x.elu() if isinstance(x, Tensor) else F.elu(x),
    "gelu": lambda x: x.gelu() if isinstance(x, Tensor) else F.gelu(x),
    "gelu_tanh": lambda x: x.gelu(approximate="tanh") if isinstance(x, Tensor) else F.gelu(x, approximate="tanh"),
    "silu": lambda x: x.silu() if isinstance(x, Tensor) else F.silu(x),
    "softplus": lambda x: x.softplus() if isinstance(x, Tensor) else F.softplus(x),
    "mish": lambda x: x.mish() if isinstance(x, Tensor) else F.mish(x),
    "softsign": lambda x: x.softsign() if isinstance(x, Tensor) else F.softsign(x),
    "hardswish": lambda x: x.hardswish() if isinstance(x, Tensor) else F.hardswish(x),
    "hardsigmoid": lambda x: x.hardsigmoid() if isinstance(x, Tensor) else F.hardsigmoid(x),
    "erf": lambda x: x.erf(),
    "log1p": lambda x: x.log1p(),
    "expm1": lambda x: x.expm1(),
    "sigmoid": lambda x: x.sigmoid(),
    "tanh": lambda x: x.tanh(),
    "relu6": lambda x: x.relu6() if isinstance(x, Tensor) else F.relu6(x),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations(name: str, device: str) -> None:
    low = -0.9 if name == "log1p" else -3.0
    compare(ACTIVATIONS[name], [(4, 5)], device, low=low, high=3.0, atol=2e-6)


def test_round_floor_ceil_trunc_sign(device: str) -> None:
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.7, -2.7, 0.0], np.float32)
    for name in ("round", "floor", "ceil", "trunc", "sign"):
        np.testing.assert_array_equal(getattr(Tensor(x, device=device), name)().numpy(),
                                      getattr(torch.tensor(x), name)().numpy(), err_msg=name)


@pytest.mark.parametrize("dim,keepdim", [(None, False), (0, False), (1, True), (-1, False)])
def test_statistics(dim: Any, keepdim: bool, device: str) -> None:
    kw = {} if dim is None else {"dim": dim, "keepdim": keepdim}
    compare(lambda x: x.var(**kw), [(4, 5)], device)
    compare(lambda x: x.std(**kw, correction=0), [(4, 5)], device)
    compare(lambda x: x.prod(**kw) if dim is not None else x.prod(), [(3, 4)], device, low=0.5, high=1.5)
    compare(lambda x: x.norm(dim=dim, keepdim=keepdim), [(3, 4)], device)
    if dim is not None:
        compare(lambda x: x.cumsum(dim), [(4, 5)], device)


def test_max_min_with_indices_and_argmax(device: str) -> None:
    x = np.array([[1.0, 5.0, 5.0, 2.0], [7.0, 0.0, 7.0, -1.0], [3.0, 3.0, 3.0, 3.0]], np.float32)
    for fn in ("max", "min"):
        r = getattr(torch.tensor(x), fn)(1)
        o = getattr(Tensor(x, device=device), fn)(1)
        np.testing.assert_array_equal(o.values.numpy(), r.values.numpy())
        np.testing.assert_array_equal(o.indices.numpy(), r.indices.numpy())
    for fn in ("argmax", "argmin"):
        np.testing.assert_array_equal(getattr(Tensor(x, device=device), fn)(0).numpy(),
                                      getattr(torch.tensor(x), fn)(0).numpy())
        assert getattr(Tensor(x, device=device), fn)().item() == getattr(torch.tensor(x), fn)().item()
    b = Tensor(x > 2, device=device)
    assert b.any().item() and not b.all().item()
    np.testing.assert_array_equal(b.all(1).numpy(), (x > 2).all(1))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses(reduction: str, device: str) -> None:
    rng = np.random.default_rng(3)
    target = rng.integers(0, 5, 6)
    target[1] = -100
    tgt_t, tgt_g = torch.tensor(target), Tensor(target, device=device)
    weight = rng.uniform(0.5, 2, 5).astype(np.float32)
    w_t, w_g = torch.tensor(weight), Tensor(weight, device=device)

    def ce(x: Any, smoothing: float = 0.0, w: bool = False) -> Any:
        if isinstance(x, Tensor):
            return x.cross_entropy(tgt_g, w_g if w else None, reduction=reduction, label_smoothing=smoothing)
        return F.cross_entropy(x, tgt_t, w_t if w else None, reduction=reduction, label_smoothing=smoothing)

    compare(ce, [(6, 5)], device)
    compare(lambda x: ce(x, 0.1), [(6, 5)], device)
    compare(lambda x: ce(x, 0.2, True), [(6, 5)], device)
    probs = rng.dirichlet(np.ones(5), 6).astype(np.float32)
    compare(lambda x: x.cross_entropy(Tensor(probs, device=device), reduction=reduction) if isinstance(x, Tensor)
            else F.cross_entropy(x, torch.tensor(probs), reduction=reduction), [(6, 5)], device)
    compare(lambda x: x.log_softmax(1).nll_loss(tgt_g, reduction=reduction) if isinstance(x, Tensor) else
            F.nll_loss(x.log_softmax(1), tgt_t, reduction=reduction), [(6, 5)], device)
    y = rng.uniform(0, 1, (4, 3)).astype(np.float32)
    y_t, y_g = torch.tensor(y), Tensor(y, device=device)
    for name in ("mse_loss", "l1_loss", "binary_cross_entropy_with_logits"):
        compare(lambda x, n=name: getattr(x, n)(y_g, reduction=reduction) if isinstance(x, Tensor) else
                getattr(F, n)(x, y_t, reduction=reduction), [(4, 3)], device)
    compare(lambda x: x.sigmoid().binary_cross_entropy(y_g, reduction=reduction) if isinstance(x, Tensor) else
            F.binary_cross_entropy(x.sigmoid(), y_t, reduction=reduction), [(4, 3)], device)


def test_normalisation(device: str) -> None:
    compare(lambda x, w, b: x.layer_norm(5, w, b) if isinstance(x, Tensor) else F.layer_norm(x, (5,), w, b),
            [(3, 4, 5), (5,), (5,)], device)
    compare(lambda x, w, b: x.group_norm(2, w, b) if isinstance(x, Tensor) else F.group_norm(x, 2, w, b),
            [(2, 4, 3, 3), (4,), (4,)], device)
    compare(lambda x, w, b: x.batch_norm(None, None, w, b, training=True) if isinstance(x, Tensor) else
            F.batch_norm(x, None, None, w, b, training=True), [(4, 3, 2, 2), (3,), (3,)], device)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    tm, tv = torch.tensor(rm), torch.tensor(rv)
    gm, gv = Tensor(rm, device=device), Tensor(rv, device=device)
    x = np.random.default_rng(1).standard_normal((4, 3, 2)).astype(np.float32)
    F.batch_norm(torch.tensor(x), tm, tv, training=True)
    Tensor(x, device=device).batch_norm(gm, gv, training=True)
    np.testing.assert_allclose(gm.numpy(), tm.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gv.numpy(), tv.numpy(), rtol=1e-5, atol=1e-6)
    compare(lambda x: x.batch_norm(gm, gv) if isinstance(x, Tensor) else F.batch_norm(x, tm, tv),
            [(4, 3, 2)], device)


def test_attention_embedding_one_hot_gather(device: str) -> None:
    compare(lambda q, k, v: q.scaled_dot_product_attention(k, v, is_causal=True) if isinstance(q, Tensor) else
            F.scaled_dot_product_attention(q, k, v, is_causal=True), [(2, 3, 4, 8), (2, 3, 4, 8), (2, 3, 4, 8)],
            device)
    mask = np.random.default_rng(2).random((4, 4)) > 0.3
    mask[:, 0] = True
    compare(lambda q, k, v: q.scaled_dot_product_attention(k, v, Tensor(mask, device=device))
            if isinstance(q, Tensor) else F.scaled_dot_product_attention(q, k, v, torch.tensor(mask)),
            [(2, 4, 8), (2, 4, 8), (2, 4, 8)], device)
    idx = np.array([[0, 2, 4], [1, 1, 3]])
    compare(lambda w: Tensor(idx, device=device).embedding(w) if isinstance(w, Tensor) else
            F.embedding(torch.tensor(idx), w), [(5, 3)], device)
    np.testing.assert_array_equal(Tensor(idx, device=device).one_hot(6).numpy(),
                                  F.one_hot(torch.tensor(idx), 6).numpy())
    gi = np.array([[0, 2, 1], [2, 0, 0]])
    compare(lambda x: x.gather(1, Tensor(gi, device=device)) if isinstance(x, Tensor) else
            x.gather(1, torch.tensor(gi)), [(2, 4)], device)
    compare(lambda x: x.tril(-1) + x.triu(1) * 2, [(4, 5)], device)
    m = np.random.default_rng(4).random((3, 4)) > 0.5
    compare(lambda x: x.masked_fill(Tensor(m, device=device), 2.5) if isinstance(x, Tensor) else
            x.masked_fill(torch.tensor(m), 2.5), [(3, 4)], device)


def test_conv_and_pool_match_torch(device: str) -> None:
    compare(lambda x, w, b: x.conv2d(w, b, stride=2, padding=1, groups=2) if isinstance(x, Tensor) else
            F.conv2d(x, w, b, stride=2, padding=1, groups=2), [(2, 4, 7, 6), (6, 2, 3, 3), (6,)], device, atol=1e-4)
    compare(lambda x: x.max_pool2d(3, 2, 1, ceil_mode=True) if isinstance(x, Tensor) else
            F.max_pool2d(x, 3, 2, 1, ceil_mode=True), [(2, 3, 7, 8)], device)
    compare(lambda x: x.avg_pool2d(3, 2, 1, ceil_mode=True, count_include_pad=False) if isinstance(x, Tensor)
            else F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), [(2, 3, 7, 8)], device)


INDICES = [([0, 2],), (slice(None), [1, 3]), ([0, 2], [1, 3]), ([[0, 1], [2, 0]], slice(None), [4, -1]),
           (Ellipsis, [1, 0]), (1, [0, 3], slice(1, 3)), (slice(None), [0, 1], [2, 3]),
           (slice(None, None, -2), None, 1), (np.array([True, False, True]),)]


@pytest.mark.parametrize("index", INDICES, ids=str)
def test_getitem_with_tensors_lists_and_masks(index: tuple, device: str) -> None:
    torch_index = tuple(torch.tensor(i) if isinstance(i, (list, np.ndarray)) else i for i in index)
    if any(isinstance(i, slice) and i.step and i.step < 0 for i in index):  # torch has no negative steps
        t = Tensor(np.arange(60, dtype=np.float32).reshape(3, 4, 5), device=device)
        np.testing.assert_array_equal(t[index].numpy(), np.arange(60, dtype=np.float32).reshape(3, 4, 5)[index])
        return
    compare(lambda x: x[torch_index] if isinstance(x, torch.Tensor) else x[index], [(3, 4, 5)], device)


@pytest.mark.parametrize("index,value", [((0,), 7.0), ((slice(None), slice(1, 3)), -1.0),
                                         ((Ellipsis, slice(None, None, 2)), np.arange(3, dtype=np.float32)),
                                         (([0, 2],), 9.0), ((1, [0, 3]), np.arange(5, dtype=np.float32))], ids=str)
def test_setitem(index: tuple, value: Any, device: str) -> None:
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    t, r = Tensor(x, device=device), torch.tensor(x)
    torch_index = tuple(torch.tensor(i) if isinstance(i, list) else i for i in index)
    r[torch_index] = torch.tensor(value) if isinstance(value, np.ndarray) else value
    t[index] = Tensor(value, device=device) if isinstance(value, np.ndarray) else value
    np.testing.assert_array_equal(t.numpy(), r.numpy())


def test_setitem_on_a_leaf_that_requires_grad_is_an_error(device: str) -> None:
    t = Tensor([1.0, 2.0], device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        t[0] = 3.0


def test_movement_extras(device: str) -> None:
    compare(lambda x: x.repeat(2, 1, 3), [(2, 3, 4)], device)
    compare(lambda x: x.repeat(2, 2, 1, 1), [(2, 3, 4)], device)
    compare(lambda x: x.roll((2, -1), (1, 2)), [(2, 3, 4)], device)
    compare(lambda x: x.roll(5), [(2, 3, 4)], device)
    compare(lambda x: x.narrow(2, 1, 2) * 2, [(2, 3, 4)], device)
    compare(lambda x: x.movedim(0, 2), [(2, 3, 4)], device)
    for mode in ("reflect", "replicate", "circular"):
        compare(lambda x, m=mode: x.pad((1, 2, 2, 1), mode=m) if isinstance(x, Tensor) else
                F.pad(x, (1, 2, 2, 1), mode=m), [(2, 3, 4)], device)


@pytest.mark.parametrize("kw", [{"size": (8, 9), "mode": "nearest"}, {"scale_factor": 2, "mode": "nearest"},
                                {"size": (8, 4), "mode": "bilinear"},
                                {"size": (8, 4), "mode": "bilinear", "align_corners": True},
                                {"scale_factor": 1.5, "mode": "bilinear"}], ids=str)
def test_interpolate(kw: dict, device: str) -> None:
    compare(lambda x: x.interpolate(**kw) if isinstance(x, Tensor) else F.interpolate(x, **kw), [(2, 3, 5, 7)],
            device)


def test_adaptive_pool_conv_transpose_einsum(device: str) -> None:
    from tg.core.functional import einsum

    for size in [(2, 3), (5, 7), 1]:
        compare(lambda x, s=size: x.adaptive_avg_pool2d(s) if isinstance(x, Tensor) else
                F.adaptive_avg_pool2d(x, s), [(2, 3, 5, 7)], device)
    for kw in [{}, {"stride": 2, "padding": 1, "output_padding": 1}, {"stride": (2, 3), "padding": (0, 1)},
               {"dilation": 2, "padding": 2}]:
        compare(lambda x, w, b, k=kw: x.conv_transpose2d(w, b, **k) if isinstance(x, Tensor) else
                F.conv_transpose2d(x, w, b, **k), [(2, 3, 5, 6), (3, 4, 3, 3), (4,)], device, atol=1e-4)
    compare(lambda x, w: x.conv_transpose2d(w, groups=2, stride=2) if isinstance(x, Tensor) else
            F.conv_transpose2d(x, w, groups=2, stride=2), [(2, 4, 4, 4), (4, 2, 3, 3)], device, atol=1e-4)
    for eq, shapes in [("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,jk->bik", [(2, 3, 4), (4, 5)]), ("ij->ji", [(3, 4)]),
                       ("bij,ij->b", [(2, 3, 4), (3, 4)]), ("i,j", [(3,), (4,)])]:
        compare(lambda *ts, e=eq: einsum(e, *ts) if isinstance(ts[0], Tensor) else torch.einsum(e, *ts), shapes,
                device)


def test_creation_matches_torch_shapes_and_statistics() -> None:
    from tg.core import manual_seed

    manual_seed(0)
    assert Tensor.linspace(0, 1, 5).tolist() == torch.linspace(0, 1, 5).tolist()
    r = Tensor.randint(3, 7, (1000,))
    assert r.dtype.name == "int64" and r.min().item() >= 3 and r.max().item() <= 6
    n = Tensor.normal(2.0, 3.0, (20000,)).numpy()
    assert abs(n.mean() - 2.0) < 0.1 and abs(n.std() - 3.0) < 0.1
    k = Tensor.kaiming_uniform(64, 32, 3, 3, a=math.sqrt(5)).numpy()
    bound = 1 / math.sqrt(32 * 9)  # what nn.Conv2d's default init gives
    assert k.shape == (64, 32, 3, 3) and np.abs(k).max() <= bound and np.abs(k).max() > 0.9 * bound
    x = Tensor.xavier_uniform(30, 40).numpy()
    assert np.abs(x).max() <= math.sqrt(6 / 70)


def test_scatter_and_scatter_add(device: str) -> None:
    idx = np.array([[0, 1, 2, 0], [1, 2, 0, 4]])
    unique = np.array([[0, 1, 2, 3], [4, 2, 0, 1]])
    compare(lambda x, s: x.scatter(1, Tensor(unique, device=device), s) if isinstance(x, Tensor) else
            x.scatter(1, torch.tensor(unique), s), [(3, 5), (2, 4)], device)
    compare(lambda x: x.scatter(1, Tensor(idx, device=device), 9.0) if isinstance(x, Tensor) else
            x.scatter(1, torch.tensor(idx), 9.0), [(3, 5)], device)
    compare(lambda x, s: x.scatter_add(1, Tensor(idx, device=device), s) if isinstance(x, Tensor) else
            x.scatter_add(1, torch.tensor(idx), s), [(3, 5), (2, 4)], device)


def test_this_sessions_ops_match_torch(device: str) -> None:
    """sort/topk/cumprod, inverse trigonometry, repeat_interleave, conv3d and the 1-D/3-D transposed
    convolutions, einsum with ellipsis and a diagonal: values and gradients against torch."""
    compare(lambda x: x.atan(), [(4, 5)], device, low=-6, high=6)
    compare(lambda x: x.asin(), [(4, 5)], device, low=-0.95, high=0.95)
    compare(lambda x: x.acos(), [(4, 5)], device, low=-0.95, high=0.95)
    compare(lambda x: x.cumprod(1), [(3, 6)], device, low=0.5, high=1.5)
    compare(lambda x: x.sort(1, descending=True)[0], [(3, 7)], device)
    compare(lambda x: x.topk(3, 0)[0], [(6, 4)], device)
    data = np.random.default_rng(3).standard_normal((4, 9)).astype(np.float32)
    assert (Tensor(data, device=device).topk(4, 1)[1].numpy() == torch.tensor(data).topk(4, 1)[1].numpy()).all()
    order = torch.tensor(data).argsort(dim=0, stable=True).numpy()
    assert (Tensor(data, device=device).argsort(0).numpy() == order).all()
    compare(lambda x: x.repeat_interleave(3, 1), [(2, 4)], device)
    compare(lambda x, w: F.conv3d(x, w, padding=1, stride=(1, 2, 1)) if not isinstance(x, Tensor)
            else x.conv3d(w, padding=1, stride=(1, 2, 1)), [(2, 3, 5, 6, 4), (4, 3, 3, 3, 2)], device, atol=1e-4)
    compare(lambda x, w: F.conv_transpose1d(x, w, stride=2, padding=1) if not isinstance(x, Tensor)
            else x.conv_transpose1d(w, stride=2, padding=1), [(2, 4, 7), (4, 3, 3)], device, atol=1e-4)
    compare(lambda x, w: F.conv_transpose3d(x, w, stride=2) if not isinstance(x, Tensor)
            else x.conv_transpose3d(w, stride=2), [(1, 2, 3, 4, 3), (2, 3, 2, 2, 2)], device, atol=1e-4)
    from tg.core.functional import einsum as tg_einsum

    def einsum(eq: str, *ops: Any) -> Any:
        return tg_einsum(eq, *ops) if isinstance(ops[0], Tensor) else torch.einsum(eq, *ops)

    compare(lambda a, b: einsum("...ij,...jk->...ik", a, b), [(2, 3, 4, 5), (2, 3, 5, 2)], device)
    compare(lambda a: einsum("bii->bi", a), [(3, 4, 4)], device)


@pytest.mark.parametrize("dtype", ["uint8", "uint64", "int32", "float32", "bool"])
def test_sort_at_the_limits_of_its_dtype(device: str, dtype: str) -> None:
    """Descending sorts used to negate the keys: unsigned values and the minimal int came out in the wrong order;
    NaN sorts as the largest value, as in torch; ties keep their input order (torch's stable=True)."""
    from tg.core import registry, to_dtype

    if to_dtype(dtype) not in registry.open(device).dtypes:
        pytest.skip(f"device {device!r} stores no {dtype}")
    info = np.iinfo(dtype) if dtype[0] in "ui" else None
    data = np.array([3, 0, 2, 3, 1, 0], dtype)
    if info is not None:
        data[1], data[4] = info.min, info.max
    if dtype == "float32":
        data[2] = np.nan
    for descending in (True, False):
        values, indices = Tensor(data, device=device).sort(descending=descending)
        if dtype == "uint64":  # torch cannot sort it: Python's stable sort of the exact integers is the reference
            want = np.array(sorted(range(len(data)), key=lambda i: int(data[i]), reverse=descending))
        else:
            want = torch.from_numpy(data).sort(descending=descending, stable=True)[1].numpy()
        np.testing.assert_array_equal(indices.numpy(), want)
        np.testing.assert_array_equal(values.numpy(), data[want])
        if descending:
            np.testing.assert_array_equal(Tensor(data, device=device).topk(2)[1].numpy(), want[:2])


def _ints(like: Any, values: list) -> Any:
    """An int64 tensor of `values` beside `like` (a tg Tensor on its device, or a torch tensor)."""
    return Tensor(np.array(values), device=like.device) if isinstance(like, Tensor) else torch.tensor(values)


PRODUCTS: dict[str, tuple[Callable[..., Any], list[tuple[int, ...]]]] = {
    "mm": (lambda a, b: a.mm(b), [(3, 4), (4, 5)]),
    "bmm": (lambda a, b: a.bmm(b), [(2, 3, 4), (2, 4, 5)]),
    "t": (lambda a: a.t(), [(3, 4)]),
    "addmm": (lambda c, a, b: c.addmm(a, b, beta=0.5, alpha=2.0), [(3, 5), (3, 4), (4, 5)]),
    "baddbmm": (lambda c, a, b: c.baddbmm(a, b, alpha=-1.5), [(2, 3, 5), (2, 3, 4), (2, 4, 5)]),
    "outer": (lambda a, b: a.outer(b), [(4,), (3,)]),
    "tensordot": (lambda a, b: a.tensordot(b, dims=([2, 0], [0, 1])) if isinstance(a, Tensor) else
                  torch.tensordot(a, b, dims=([2, 0], [0, 1])), [(3, 4, 5), (5, 3, 2)]),
    "tensordot_int": (lambda a, b: a.tensordot(b, 1) if isinstance(a, Tensor) else torch.tensordot(a, b, 1),
                      [(3, 4), (4, 2)]),
    "einsum": (lambda a, b: (Tensor.einsum if isinstance(a, Tensor) else torch.einsum)("bij,bjk->bik", a, b),
               [(2, 3, 4), (2, 4, 5)]),
    "cross": (lambda a, b: a.cross(b, dim=1) if isinstance(a, Tensor) else torch.linalg.cross(a, b, dim=1),
              [(2, 3, 4), (2, 3, 4)]),
    "index_select": (lambda a: a.index_select(1, _ints(a, [2, 0, 2])), [(3, 4, 2)]),
    "take_along_dim": (lambda a: a.take_along_dim(_ints(a, [[1], [0], [3]]), 1), [(3, 4)]),
    "rot90": (lambda a: a.rot90(1, (1, 2)), [(2, 3, 4)]),
    "rot90_k3": (lambda a: a.rot90(-1, (0, 2)), [(2, 3, 4)]),
    "pixel_shuffle": (lambda a: a.pixel_shuffle(2) if isinstance(a, Tensor) else F.pixel_shuffle(a, 2),
                      [(1, 8, 2, 3)]),
    "pixel_unshuffle": (lambda a: a.pixel_unshuffle(2) if isinstance(a, Tensor) else F.pixel_unshuffle(a, 2),
                        [(1, 2, 4, 6)]),
    "diff": (lambda a: a.diff(2, dim=0), [(5, 3)]),
    "logsigmoid": (lambda a: a.logsigmoid() if isinstance(a, Tensor) else F.logsigmoid(a), [(4, 5)]),
    "logcumsumexp": (lambda a: a.logcumsumexp(1), [(3, 6)]),
    "cummin": (lambda a: a.cummin(1)[0], [(3, 6)]),
    "smooth_l1": (lambda a, b: a.smooth_l1_loss(b, beta=0.5) if isinstance(a, Tensor) else
                  F.smooth_l1_loss(a, b, beta=0.5), [(4, 5), (4, 5)]),
    "huber": (lambda a, b: a.huber_loss(b, delta=0.7) if isinstance(a, Tensor) else F.huber_loss(a, b, delta=0.7),
              [(4, 5), (4, 5)]),
    "kl_div": (lambda a, b: a.log_softmax(1).kl_div(b.softmax(1), reduction="batchmean") if isinstance(a, Tensor)
               else F.kl_div(a.log_softmax(1), b.softmax(1), reduction="batchmean"), [(4, 5), (4, 5)]),
}


@pytest.mark.parametrize("name", PRODUCTS)
def test_torch_names_composed_from_other_ops(name: str, device: str) -> None:
    fn, shapes = PRODUCTS[name]
    compare(fn, shapes, device, atol=1e-5)


def test_composed_ops_on_edges_and_integers(device: str) -> None:
    x = np.array([[np.inf, -np.inf, np.nan, -2.5, 3.25, -0.0]], np.float32)
    for name in ("frac",):
        np.testing.assert_array_equal(getattr(Tensor(x, device=device), name)().numpy(),
                                      getattr(torch.tensor(x), name)().numpy())
    np.testing.assert_allclose(Tensor(np.array([-100, 100, 0], np.float32), device=device).logsigmoid().numpy(),
                               F.logsigmoid(torch.tensor([-100.0, 100, 0])).numpy(), rtol=1e-6, atol=1e-30)
    z = np.array([[-np.inf, -np.inf], [1.0, -np.inf], [np.inf, 2.0], [np.nan, 0.0]], np.float32)
    np.testing.assert_array_equal(Tensor(z, device=device).logcumsumexp(1).numpy(),
                                  torch.tensor(z).logcumsumexp(1).numpy())
    wide = np.array([[-200.0, 0.0, 100.0, -300.0], [1.0, np.nan, 2.0, 3.0]], np.float32)  # a shift per prefix
    np.testing.assert_allclose(Tensor(wide, device=device).logcumsumexp(1).numpy(),
                               torch.tensor(wide).logcumsumexp(1).numpy(), rtol=1e-6)
    lowest = np.array([0, np.iinfo(np.int32).min, 5], np.int32)  # -x would wrap INT_MIN onto itself
    np.testing.assert_array_equal(Tensor(lowest, device=device).cummin(0)[0].numpy(),
                                  torch.tensor(lowest).cummin(0)[0].numpy())
    ints = np.array([[3, -7, 5, -7, 2], [0, 0, 1, 0, -1]], np.int32)
    kinds = [ints] + ([ints.astype(np.uint8)] if to_dtype("uint8") in get_device(device).dtypes else [])
    for data in kinds:  # unsigned: the running minimum cannot be a negated running maximum
        values, want = Tensor(data, device=device).cummin(1), torch.tensor(data).cummin(1)
        np.testing.assert_array_equal(values[0].numpy(), want[0].numpy())
        np.testing.assert_array_equal(values[1].numpy(), want[1].numpy())
    np.testing.assert_array_equal(Tensor(ints, device=device).count_nonzero(1).numpy(),
                                  torch.tensor(ints).count_nonzero(1).numpy())
    np.testing.assert_array_equal(Tensor(ints, device=device).diff().numpy(), torch.tensor(ints).diff().numpy())
    np.testing.assert_array_equal((Tensor(ints, device=device) > 0).diff().numpy(),
                                  (torch.tensor(ints) > 0).diff().numpy())
    signed = np.array([-0.0, -0.5, -0.3, 0.5, -2.5, np.nan], np.float32)  # zero results keep the input's sign
    for name in ("trunc", "floor", "ceil", "round", "frac"):
        got, want = getattr(Tensor(signed, device=device), name)().numpy(), getattr(torch.tensor(signed), name)()
        np.testing.assert_array_equal(got, want.numpy())
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want.numpy()), err_msg=name)
    v = np.array([1, 3, 5, 7, 9, 0.5, 10, np.nan], np.float32)  # NaN sorts after every boundary
    edges = np.array([1, 5, 9], np.float32)
    for right in (False, True):
        np.testing.assert_array_equal(Tensor(v, device=device).bucketize(Tensor(edges, device=device), right=right)
                                      .numpy(), torch.bucketize(torch.tensor(v), torch.tensor(edges), right=right))
        from tg.core import searchsorted
        rows = np.array([[1, 3, 5], [2, 4, 6]], np.float32)
        q = np.array([[3, 6], [1, 4]], np.float32)
        np.testing.assert_array_equal(searchsorted(Tensor(rows, device=device), Tensor(q, device=device),
                                                   right=right).numpy(),
                                      torch.searchsorted(torch.tensor(rows), torch.tensor(q), right=right).numpy())
    c = Tensor(np.full((2, 2), np.nan, np.float32), device=device)
    out = c.addmm(Tensor(np.ones((2, 3), np.float32), device=device), Tensor(np.ones((3, 2), np.float32),
                                                                               device=device), beta=0)
    np.testing.assert_array_equal(out.numpy(), np.full((2, 2), 3, np.float32))  # beta 0: NaN in c not read
    filled = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3), device=device)
    assert filled.fill_(2.5) is filled and filled.numpy().tolist() == [[2.5] * 3] * 2
    assert filled.zero_().numpy().sum() == 0 and filled.nbytes == 24 and filled.element_size() == 4
    with pytest.raises(RuntimeError, match="mm: expected 2-D"):
        Tensor(np.ones((2, 3, 4), np.float32), device=device).mm(Tensor(np.ones((4, 2), np.float32), device=device))
    with pytest.raises(RuntimeError, match="cross: dim"):
        Tensor(np.ones((2, 4), np.float32), device=device).cross(Tensor(np.ones((2, 4), np.float32), device=device))


def test_kron_bincount_cosine_similarity_and_random_fills(device: str) -> None:
    rng = np.random.default_rng(5)
    a, b = rng.integers(-3, 4, (2, 3)).astype(np.int32), rng.integers(-3, 4, (3,)).astype(np.int32)
    np.testing.assert_array_equal(Tensor(a, device=device).kron(Tensor(b, device=device)).numpy(),
                                  torch.kron(torch.tensor(a), torch.tensor(b)).numpy())
    compare(lambda x, y: x.kron(y), [(2, 3), (2, 1, 2)], device)
    x1, x2 = rng.standard_normal((4, 6)).astype(np.float32), rng.standard_normal((1, 6)).astype(np.float32)
    x1[0] = 1e-9  # a norm under eps: clamped on its own, as torch does
    from tg.core.functional import cosine_similarity
    np.testing.assert_allclose(cosine_similarity(Tensor(x1, device=device), Tensor(x2, device=device)).numpy(),
                               F.cosine_similarity(torch.tensor(x1), torch.tensor(x2)).numpy(), rtol=1e-5, atol=1e-6)
    values = np.array([1, 1, 3, 0, 7, 3], np.int32)
    weights = rng.standard_normal(6).astype(np.float32)
    for kwargs in ({}, {"minlength": 10}):
        np.testing.assert_array_equal(Tensor(values, device=device).bincount(**kwargs).numpy(),
                                      torch.tensor(values).bincount(**kwargs).numpy())
    np.testing.assert_allclose(Tensor(values, device=device).bincount(Tensor(weights, device=device)).numpy(),
                               torch.tensor(values).bincount(torch.tensor(weights)).numpy(), rtol=1e-6)
    assert Tensor(np.zeros(0, np.int32), device=device).bincount().numpy().shape == (0,)
    with pytest.raises(RuntimeError, match="non-negative"):
        Tensor(np.array([2, -1], np.int32), device=device).bincount()
    from tg.core import manual_seed
    manual_seed(7)
    t = Tensor(np.zeros((200, 50), np.float32), device=device)
    assert t.uniform_(-2, 3) is t and t.shape == (200, 50)
    u = t.numpy()
    assert u.min() >= -2 and u.max() < 3 and abs(u.mean() - 0.5) < 0.05
    manual_seed(7)
    assert np.array_equal(Tensor(np.zeros((200, 50), np.float32), device=device).uniform_(-2, 3).numpy(), u)
    n = t.normal_(1.0, 2.0).numpy()
    assert abs(n.mean() - 1.0) < 0.05 and abs(n.std() - 2.0) < 0.05


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 1, 3, 4), (3, 4, 2)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,)),
                                    ((1, 3, 4), (5, 4, 2))])
def test_matmul_is_one_rule_with_torchs_gradients(shapes: tuple, device: str) -> None:
    """A matrix product is one recorded rule (its gradients are products too: 8 rules before, for the reshape,
    transpose, broadcast, multiply and sum), with torch's values and gradients under batch broadcasting and 1-D
    operands, against float64."""
    from tg.core.functional import MatMul

    rng = np.random.default_rng(11)
    a, b = (rng.standard_normal(s) for s in shapes)
    ta, tb = (Tensor(v.astype(np.float32), device=device, requires_grad=True) for v in (a, b))
    out = ta @ tb
    rules, stack = [], [out._ctx]
    while stack:  # the rules recorded between the inputs and the product (before backward releases them)
        ctx = stack.pop()
        if ctx is not None and ctx not in rules:
            rules.append(ctx)
            stack.extend(ctx.sources)
    assert sum(isinstance(r, MatMul) for r in rules) == 1 and len(rules) <= 3, [type(r).__name__ for r in rules]
    ref_a, ref_b = (torch.tensor(v, requires_grad=True) for v in (a, b))
    ref = ref_a @ ref_b
    g = rng.standard_normal(ref.shape)
    (ref * torch.tensor(g)).sum().backward()
    (out * Tensor(g.astype(np.float32), device=device)).sum().backward()
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ta.grad.numpy(), ref_a.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tb.grad.numpy(), ref_b.grad.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kw", [{"kernel_size": 3, "padding": 1},
                                {"kernel_size": (2, 3), "stride": 2, "dilation": (2, 1)},
                                {"kernel_size": 2, "stride": (1, 3), "padding": (1, 0)}])
def test_unfold_and_fold_match_torch(kw: dict, device: str) -> None:
    """torch.nn.functional.unfold (im2col, a window view over the padding) and fold (col2im, its adjoint: overlapping
    blocks add up), batched and not, values and gradients against float64 torch; a wrong block count is an error
    naming the shapes."""
    from tg.core import functional

    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 6))
    xt = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.unfold(xt, **kw)
    g = rng.standard_normal(tuple(ref.shape))
    (ref * torch.tensor(g)).sum().backward()
    tx = Tensor(x.astype(np.float32), device=device, requires_grad=True)
    out = functional.unfold(tx, **kw)
    (out * Tensor(g.astype(np.float32), device=device)).sum().backward()
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tx.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-5)
    cols = rng.standard_normal(tuple(ref.shape))
    ct = torch.tensor(cols, requires_grad=True)
    folded = torch.nn.functional.fold(ct, (7, 6), **kw)
    gf = rng.standard_normal(tuple(folded.shape))
    (folded * torch.tensor(gf)).sum().backward()
    tc = Tensor(cols.astype(np.float32), device=device, requires_grad=True)
    out = functional.fold(tc, (7, 6), **kw)
    (out * Tensor(gf.astype(np.float32), device=device)).sum().backward()
    np.testing.assert_allclose(out.numpy(), folded.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tc.grad.numpy(), ct.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(functional.fold(Tensor(cols[0].astype(np.float32), device=device), (7, 6), **kw).numpy(),
                               folded[0].detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(functional.unfold(Tensor(x[0].astype(np.float32), device=device), **kw).numpy(),
                               ref[0].detach().numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="fold: input"):
        functional.fold(Tensor(cols[:, :-1].astype(np.float32), device=device), (7, 6), **kw)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_with_ignored_targets_weights_and_smoothing(reduction: str, device: str) -> None:
    """cross_entropy / nll_loss with ignore_index among the targets, class weights and label smoothing, every
    reduction: values and gradients against float64 torch (ignored rows add nothing, and the mean divides by the
    weights of the rows kept)."""
    from tg.core import functional

    rng = np.random.default_rng(4)
    x, t = rng.standard_normal((6, 5)), np.array([0, 4, -100, 2, -100, 1])
    for w in (None, rng.uniform(0.5, 2, 5)):
        for smoothing in (0.0, 0.1):
            xt = torch.tensor(x, requires_grad=True)
            ref = torch.nn.functional.cross_entropy(xt, torch.tensor(t), None if w is None else torch.tensor(w),
                                                    reduction=reduction, label_smoothing=smoothing)
            ref.sum().backward()
            tx = Tensor(x.astype(np.float32), device=device, requires_grad=True)
            out = functional.cross_entropy(tx, Tensor(t, device=device),
                                           None if w is None else Tensor(w.astype(np.float32), device=device),
                                           reduction=reduction, label_smoothing=smoothing)
            out.sum().backward()
            np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(tx.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_nll_loss_with_an_ignored_class_index_and_spatial_targets(device: str) -> None:
    """ignore_index naming a real class (0 <= ignore_index < C) picks nothing there; (N, C, d) inputs; both
    against float64 torch, values and gradients, every reduction."""
    from tg.core import functional

    rng = np.random.default_rng(5)
    x, t = rng.standard_normal((4, 3, 5)), rng.integers(0, 3, (4, 5))
    for reduction in ("mean", "sum", "none"):
        for w in (None, rng.uniform(0.5, 2, 3)):
            xt = torch.tensor(x, requires_grad=True)
            ref = torch.nn.functional.nll_loss(xt, torch.tensor(t), None if w is None else torch.tensor(w),
                                               ignore_index=1, reduction=reduction)
            ref.sum().backward()
            tx = Tensor(x.astype(np.float32), device=device, requires_grad=True)
            out = functional.nll_loss(tx, Tensor(t, device=device),
                                      None if w is None else Tensor(w.astype(np.float32), device=device),
                                      ignore_index=1, reduction=reduction)
            out.sum().backward()
            np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(tx.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_exp_and_log_gradients_are_torchs_formulas(device: str) -> None:
    """d exp(x) = grad * exp(x) and d log(x) = grad / x, bit for bit against tg's own forward values (torch's rules;
    through exp2/log2's rules the gradient was scaled by ln 2 and back, an extra rounding)."""
    rng = np.random.default_rng(6)
    data = rng.uniform(0.05, 4, 4096).astype(np.float32)
    g = rng.uniform(-2, 2, 4096).astype(np.float32)
    x = Tensor(data, device=device, requires_grad=True)
    y = x.exp()
    (y * Tensor(g, device=device)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), g * y.numpy())
    x = Tensor(data, device=device, requires_grad=True)
    (x.log() * Tensor(g, device=device)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), g / data)


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
def test_grid_sample_and_affine_grid_match_torch(mode: str, device: str) -> None:
    """F.grid_sample in every padding mode, with and without align_corners, coordinates well outside [-1, 1]
    included (bicubic with border padding clamps each tap, not the coordinate): values and gradients for both the
    image and the grid; affine_grid in 2-D and 3-D."""
    from tg.core import functional

    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)
    grid = rng.uniform(-3.5, 3.5, (2, 4, 6, 2)).astype(np.float32)
    w = rng.standard_normal((2, 3, 4, 6)).astype(np.float32)
    for padding in ("zeros", "border", "reflection"):
        for align in (False, True):
            tx, tgrid = torch.tensor(x, requires_grad=True), torch.tensor(grid, requires_grad=True)
            ref = F.grid_sample(tx, tgrid, mode=mode, padding_mode=padding, align_corners=align)
            (ref * torch.tensor(w)).sum().backward()
            gx, ggrid = Tensor(x, device=device, requires_grad=True), Tensor(grid, device=device, requires_grad=True)
            out = functional.grid_sample(gx, ggrid, mode=mode, padding_mode=padding, align_corners=align)
            (out * Tensor(w, device=device)).sum().backward()
            what = f"{mode} {padding} align_corners={align}"
            np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), atol=2e-5, err_msg=what)
            np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), atol=2e-5, err_msg=what)
            if mode != "nearest":
                np.testing.assert_allclose(ggrid.grad.numpy(), tgrid.grad.numpy(), atol=2e-4, rtol=1e-4, err_msg=what)
    for size in ((2, 3, 4, 5), (2, 3, 4, 5, 6)):
        theta = rng.standard_normal((2, len(size) - 2, len(size) - 1)).astype(np.float32)
        for align in (False, True):
            np.testing.assert_allclose(functional.affine_grid(Tensor(theta, device=device), size, align).numpy(),
                                       F.affine_grid(torch.tensor(theta), size, align_corners=align).numpy(),
                                       atol=1e-6)


def test_stft_and_windows_match_torch(device: str) -> None:
    """tg.core.stft (torch's return_complex=False layout: real and imaginary parts last) against torch.stft with
    every option that shapes the frames: hop, a shorter window centred in n_fft, center on/off, pad modes, normalized,
    two-sided; values and the signal's gradient. The window functions against torch's, periodic and symmetric."""
    import tg.core as tc

    x = np.random.default_rng(14).standard_normal((2, 300)).astype(np.float32)
    cases: list[dict[str, Any]] = [{"n_fft": 64}, {"n_fft": 64, "hop_length": 10, "win_length": 40, "window": "hann"},
                                   {"n_fft": 32, "center": False, "normalized": True},
                                   {"n_fft": 16, "onesided": False, "window": "hamming"},
                                   {"n_fft": 50, "pad_mode": "constant", "window": "blackman"}]
    for case in cases:
        kw = dict(case)
        name = kw.pop("window", None)
        length = kw.get("win_length", kw["n_fft"])
        tx = torch.tensor(x, requires_grad=True)
        window = getattr(torch, f"{name}_window")(length) if name else torch.ones(length)
        ref = torch.view_as_real(torch.stft(tx, window=window, return_complex=True, **kw))
        (ref * ref).sum().backward()
        gx = Tensor(x, device=device, requires_grad=True)
        gw = getattr(tc, f"{name}_window")(length, device=device) if name else None
        out = gx.stft(window=gw, return_complex=False, **kw)
        (out * out).sum().backward()
        np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), atol=1e-4, err_msg=str(case))
        np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-3, err_msg=str(case))
    with pytest.raises(RuntimeError, match="return_complex=False"):
        Tensor(x, device=device).stft(16)
    for name in ("hann", "hamming", "blackman", "bartlett"):
        for periodic in (True, False):
            for n in (1, 2, 7, 16):
                np.testing.assert_allclose(getattr(tc, f"{name}_window")(n, periodic, device=device).numpy(),
                                           getattr(torch, f"{name}_window")(n, periodic).numpy(), atol=1e-6)


def test_istft_inverts_stft_as_torchs(device: str) -> None:
    """istft of stft's output against torch.istft: hop, a shorter window, center off, normalized, a longer and a
    shorter `length`; values and the spectrum's gradient (two-sided spectra: values only, torch reads half of a
    Hermitian spectrum there). A window whose overlap-add vanishes is refused, as torch refuses it."""
    import tg.core as tc

    x = np.random.default_rng(15).standard_normal((2, 300)).astype(np.float32)
    cases: list[dict[str, Any]] = [{"n_fft": 64, "window": "hann"},
                                   {"n_fft": 64, "hop_length": 16, "win_length": 40, "window": "hann"},
                                   {"n_fft": 32, "center": False, "window": "hamming", "normalized": True},
                                   {"n_fft": 64, "window": "hann", "length": 310},
                                   {"n_fft": 64, "window": "hann", "length": 200},
                                   {"n_fft": 16, "onesided": False, "window": "hamming"}]
    for case in cases:
        kw = dict(case)
        name, length = kw.pop("window"), kw.pop("length", None)
        wl = kw.get("win_length", kw["n_fft"])
        tw = getattr(torch, f"{name}_window")(wl)
        spec = torch.view_as_real(torch.stft(torch.tensor(x), window=tw, return_complex=True, **kw)).numpy()
        ts = torch.tensor(spec, requires_grad=True)
        ref = torch.istft(torch.view_as_complex(ts), window=tw, length=length, **kw)
        (ref * ref).sum().backward()
        gs = Tensor(spec, device=device, requires_grad=True)
        out = tc.istft(gs, window=getattr(tc, f"{name}_window")(wl, device=device), length=length, **kw)
        (out * out).sum().backward()
        np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), atol=1e-4, err_msg=str(case))
        if kw.get("onesided", True):
            np.testing.assert_allclose(gs.grad.numpy(), ts.grad.numpy(), rtol=1e-3, atol=1e-3, err_msg=str(case))
    spec = tc.stft(Tensor(x, device=device), 32, center=False, window=tc.hann_window(32, device=device),
                   return_complex=False)
    with pytest.raises(RuntimeError, match="NOLA"):
        tc.istft(spec, 32, center=False, window=tc.hann_window(32, device=device))
