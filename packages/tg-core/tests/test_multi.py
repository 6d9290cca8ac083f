"""Tensors spread over several devices (Tensor.shard): every op against float64 NumPy and against the same op on one
device, the collectives the split inserts, gradients, TinyJit replays and the errors. Each test spreads over the
device under test and a second NumPy instance (numpy:1), so copies cross between different backends."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tg.core import Tensor, TinyJit, registry
from tg.core.device import DeviceError
from tg.core.multi import MultiNode

inf, nan = math.inf, math.nan


def pair(device: str) -> tuple[str, str]:
    return (device, "numpy:1")


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def close(t: Tensor, ref: np.ndarray, tol: float = 2e-5) -> None:
    assert t.shape == ref.shape
    np.testing.assert_allclose(t.numpy().astype(np.float64), ref, rtol=tol, atol=tol)


def layout(t: Tensor) -> tuple:
    node = t.node
    assert isinstance(node, MultiNode)
    return node.axis, (node.sizes if node.axis is not None else None)


def test_host_devices_open_as_separate_instances() -> None:
    assert registry.open("numpy:1") is not registry.open("numpy")
    assert registry.open("numpy:2") is registry.open("numpy:2")


@pytest.mark.parametrize("dim, sizes", [(0, [4, 3]), (1, [3, 2]), (None, None)])
def test_shard_round_trip(device: str, dim: int, sizes: list) -> None:
    a = rand(7, 5)
    t = Tensor(a, device=device).shard(pair(device), dim)
    assert t.device == pair(device) and t.shape == (7, 5) and layout(t) == (dim, sizes)
    np.testing.assert_array_equal(t.numpy(), a)
    np.testing.assert_array_equal(t.to("numpy").numpy(), a)
    for dtype in (np.int32, np.bool_):
        b = (a * 100).astype(dtype)
        np.testing.assert_array_equal(Tensor(b, device=device).shard(pair(device), dim).numpy(), b)
    assert Tensor(a).to(list(pair(device))).device == pair(device)  # to(devices) replicates
    assert layout(Tensor(a).to(pair(device))) == (None, None)


def test_elementwise_and_reductions(device: str) -> None:
    a, b, w = rand(7, 5), rand(5, seed=1), rand(5, 3, seed=2)
    x = Tensor(a, device=device).shard(pair(device), 0)
    y, v = Tensor(b).to(pair(device)), Tensor(w).to(pair(device))
    a64, b64, w64 = a.astype(np.float64), b.astype(np.float64), w.astype(np.float64)
    close(x * y + 1, a64 * b64 + 1)
    assert layout(x * y) == (0, [4, 3])  # the replicated operand is cut locally: no gather
    close((x * y).sum(0), (a64 * b64).sum(0))
    assert layout(x.sum(0)) == (None, None)  # a reduce over the split dim all-reduces: replicated
    close(x.sum(1), a64.sum(1))
    assert layout(x.sum(1)) == (0, [4, 3])
    close(x.max(0).values, a64.max(0))
    np.testing.assert_array_equal(x.argmax(0).numpy(), a.argmax(0))
    close(x.mean(), a64.mean())
    close(x.softmax(1), np.exp(a64) / np.exp(a64).sum(1, keepdims=True))
    close(x @ v, a64 @ w64)
    close(x.T @ x, a64.T @ a64)  # the contraction runs over the split dim
    xs = Tensor(a, device=device).shard(pair(device), 1)
    close(xs @ v, a64 @ w64)  # split along the contracted dim of the left operand


def test_movements_across_the_split(device: str) -> None:
    a = rand(6, 4)
    x, a64 = Tensor(a, device=device).shard(pair(device), 0), a.astype(np.float64)
    close(x.reshape(24), a64.reshape(24))
    assert layout(x.reshape(24)) == (0, [12, 12])  # merged with the dims after it: still split
    close(x.reshape(2, 3, 4), a64.reshape(2, 3, 4))
    assert layout(x.reshape(2, 3, 4)) == (0, [1, 1])
    close(x.reshape(1, 6, 4), a64.reshape(1, 6, 4))
    assert layout(x.reshape(1, 6, 4)) == (1, [3, 3])
    close(x.reshape(4, 6), a64.reshape(4, 6))  # crosses the shards: gathered first
    close(x.permute(1, 0), a64.T)
    assert layout(x.permute(1, 0)) == (1, [3, 3])
    close(x[1:6:2], a64[1:6:2])
    assert layout(x[1:6:2]) == (0, [1, 2])
    close(x[4:], a64[4:])
    close(x.flip(0), a64[::-1])
    close(x.flip(1), a64[:, ::-1])
    close(x.pad((1, 1, 2, 0)), np.pad(a64, ((2, 0), (1, 1))))
    close(x.cat(x, dim=0), np.concatenate([a64, a64]))
    close(x.cat(x, dim=1), np.concatenate([a64, a64], 1))
    close(x.unsqueeze(1).expand(6, 3, 4), np.broadcast_to(a64[:, None], (6, 3, 4)))
    img = rand(4, 2, 6, 6, seed=3)
    k = rand(3, 2, 3, 3, seed=4)
    out = Tensor(img, device=device).shard(pair(device), 0).conv2d(Tensor(k).to(pair(device)), stride=2, padding=1)
    ref = Tensor(img, device=device).conv2d(Tensor(k, device=device), stride=2, padding=1)
    assert layout(out) == (0, [2, 2])
    close(out, ref.numpy().astype(np.float64), 1e-4)


def test_special_values_cross_devices_intact(device: str) -> None:
    a = np.array([[-0.0, nan], [inf, -inf], [1.0, -0.0]], np.float32)
    x = Tensor(a, device=device).shard(pair(device), 0)
    out = x.numpy()
    assert np.array_equal(np.signbit(out), np.signbit(a)) and np.array_equal(out, a, equal_nan=True)
    np.testing.assert_array_equal(x.max(0).values.numpy(), [inf, nan])  # NaN wins a max, also across devices
    np.testing.assert_array_equal(x.sum(0).numpy(), [inf, nan])  # nan + -inf + -0.0
    np.testing.assert_array_equal(x.sum(1).numpy(), [nan, nan, 1.0])  # inf + -inf
    big = np.array([2**31 - 1, 1, -5, 7], np.int32)
    single = Tensor(big, device=device).sum().item()
    assert Tensor(big, device=device).shard(pair(device), 0).sum().item() == single  # one integer semantics


@pytest.mark.parametrize("ring", [False, True])
def test_replicas_hold_the_same_bits(monkeypatch: pytest.MonkeyPatch, ring: bool) -> None:
    monkeypatch.setenv("TG_RING_ALLREDUCE_BYTES", "0" if ring else str(1 << 40))
    devices = ("numpy", "numpy:1", "numpy:2")
    a = rand(9, 1000) * 1000
    out = Tensor(a).shard(devices, 0).sum(0)
    assert isinstance(out.node, MultiNode)
    replicas = [Tensor(s).numpy() for s in out.node.shards]
    for r in replicas[1:]:
        assert np.array_equal(r, replicas[0])
    np.testing.assert_allclose(replicas[0], a.astype(np.float64).sum(0), rtol=1e-5, atol=1e-2)
    np.testing.assert_array_equal(Tensor(a).shard(devices, 0).max(0).values.numpy(), a.max(0))


def test_empty_shards(device: str) -> None:
    devices = (device, "numpy:1", "numpy:2")
    a = rand(2, 3)
    x = Tensor(a, device=device).shard(devices, 0)
    assert layout(x) == (0, [1, 1, 0])
    close(x.sum(0), a.astype(np.float64).sum(0))
    close(x.max(0).values, a.astype(np.float64).max(0))
    close(x.mean(0), a.astype(np.float64).mean(0))
    np.testing.assert_array_equal(x.numpy(), a)


def test_gradients_match_one_device(device: str) -> None:
    a, w = rand(6, 4), rand(4, 3, seed=1)

    def loss(x: Tensor, v: Tensor) -> Tensor:
        h = (x @ v).relu()
        return (h[1:5] * h[1:5]).mean() + x.max(0).values.sum()

    grads = []
    for spread in (False, True):
        x = Tensor(a, device=device, requires_grad=True)
        v = Tensor(w, device=device, requires_grad=True)
        xs, vs = (x.shard(pair(device), 0), v.to(pair(device))) if spread else (x, v)
        loss(xs, vs).backward()
        assert x.grad is not None and v.grad is not None and x.grad.device == device
        grads.append((x.grad.numpy(), v.grad.numpy()))
    for one, many in zip(*grads):
        np.testing.assert_allclose(many, one, rtol=1e-5, atol=1e-6)


def test_tinyjit_replays_a_sharded_training_step(device: str) -> None:
    devices, rng = pair(device), np.random.default_rng(0)
    batches = [(rng.standard_normal((8, 4)).astype(np.float32), rng.standard_normal((8, 1)).astype(np.float32))
               for _ in range(4)]

    def train(jit: bool) -> np.ndarray:
        w = Tensor(np.ones((4, 1), np.float32), requires_grad=True).shard_(devices)

        def step(x: Tensor, y: Tensor) -> Tensor:
            loss = ((x @ w - y) ** 2).mean()
            loss.backward()
            assert w.grad is not None
            w.node, w.grad = (w.detach() - 0.1 * w.grad).realize().node, None
            return loss.realize()

        run = TinyJit(step) if jit else step
        for x, y in batches:
            run(Tensor(x).shard(devices, 0), Tensor(y).shard(devices, 0))
        return w.numpy()

    np.testing.assert_allclose(train(True), train(False), rtol=1e-6)


def test_clear_errors(device: str) -> None:
    x = Tensor(rand(4, 2), device=device).shard(pair(device), 0)
    with pytest.raises(RuntimeError, match="different devices"):
        x + Tensor(rand(4, 2), device=device)
    with pytest.raises(RuntimeError, match="different devices"):
        x + Tensor(rand(4, 2)).shard(("numpy:1", "numpy:2"), 0)
    with pytest.raises(ValueError, match="distinct devices"):
        Tensor(rand(4)).shard(("numpy:1", "numpy:1"), 0)
    with pytest.raises(RuntimeError, match="0-d"):
        Tensor(1.0).shard(pair(device), 0)
    with pytest.raises(DeviceError, match="unknown device"):
        Tensor(rand(4)).shard(("numpy", "nosuch"), 0)
    with pytest.raises(IndexError):
        Tensor(rand(4)).shard(pair(device), 3)
