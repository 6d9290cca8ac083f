"""Data-parallel training over the devices of one machine (Tensor.shard): the demo's MNIST CNN, trained on real
digits with the batch split over two devices and the parameters replicated, ends with the weights one device
reaches on the same global batches."""
from __future__ import annotations

import numpy as np
import pytest

import tg.nn as nn
from tg.core import Tensor, TinyJit, manual_seed
from tg.nn.demo import make_model

STEPS, BATCH = 4, 32


def train(devices: tuple[str, ...], jit: bool, bn: bool = False) -> tuple[list[float], list[np.ndarray]]:
    manual_seed(0)
    model = make_model("numpy")
    if bn:  # BatchNorm over a split batch: its statistics all-reduce (synchronised BatchNorm)
        model = nn.Sequential(model[0], nn.BatchNorm2d(16, device="numpy"), *list(model)[1:])
    home = devices[0] if len(devices) == 1 else devices
    model.to(home)
    # Adam, except under BatchNorm: the conv bias before it has a gradient of rounding noise only, which Adam's
    # normalisation turns into full-size steps that differ with the summation order
    opt = nn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9) if bn else nn.optim.Adam(model.parameters(), lr=2e-3)
    sched = nn.optim.StepLR(opt, step_size=2, gamma=0.5)  # a learning rate that changes between replays
    x_all, y_all, _, _ = nn.mnist()

    def step(x: Tensor, y: Tensor) -> Tensor:
        opt.zero_grad()
        loss = model(x).cross_entropy(y)
        loss.backward()
        opt.step()
        return loss.realize()

    run = TinyJit(step) if jit else step
    losses = []
    for i in range(STEPS):
        x = Tensor(x_all[i * BATCH:(i + 1) * BATCH], device="numpy")
        y = Tensor(y_all[i * BATCH:(i + 1) * BATCH].astype(np.int64), device="numpy")
        if len(devices) > 1:
            x, y = x.shard(devices, 0), y.shard(devices, 0)
        else:
            x, y = x.to(home), y.to(home)
        losses.append(run(x, y).item())
        sched.step()
    return losses, [t.numpy() for t in [*model.parameters(), *model.buffers()]]  # BatchNorm running stats too


@pytest.mark.parametrize("devices", [("llvm", "numpy:1"), ("llvm:0", "llvm:1")])
@pytest.mark.parametrize("jit", [False, True])
def test_two_devices_train_the_cnn_as_one_does(devices: tuple[str, ...], jit: bool) -> None:
    one_losses, one = train(("llvm",), jit)
    two_losses, two = train(devices, jit)
    np.testing.assert_allclose(two_losses, one_losses, rtol=1e-5)
    for a, b in zip(one, two):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    assert one_losses[-1] < one_losses[0]  # it trains


def test_batchnorm_statistics_span_the_whole_batch() -> None:
    one_losses, one = train(("numpy",), False, bn=True)
    two_losses, two = train(("numpy", "numpy:1"), False, bn=True)
    np.testing.assert_allclose(two_losses, one_losses, rtol=1e-5)
    for a, b in zip(one, two):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
