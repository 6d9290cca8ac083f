"""The scheduler: what fuses into one kernel, what costs none, what is computed once."""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from tg.core import Tensor, counters, no_grad, numpy_device, registry, reset_counters, to_dtype
from tg.core.device import get_device
from tg.core.ops import Op


def _realized(*shapes: tuple[int, ...], device: str = "numpy") -> list[Tensor]:
    rng = np.random.default_rng(0)
    return [Tensor(rng.standard_normal(s).astype(np.float32), device=device).realize() for s in shapes]


def test_elementwise_chain_and_its_reduce_run_as_one_kernel(device: str) -> None:
    a, b, c = _realized((16, 32), (16, 32), (16, 32), device=device)
    reset_counters()
    out = ((a * b + c).relu() * 0.5).exp().sum(1)
    result = out.numpy()
    assert counters.kernels == 1
    an, bn, cn = a.numpy(), b.numpy(), c.numpy()
    np.testing.assert_allclose(result, np.exp(np.maximum(an * bn + cn, 0) * 0.5).sum(1), rtol=1e-5)


def test_movement_ops_cost_no_kernel(device: str) -> None:
    (x,) = _realized((2, 3, 4), device=device)
    reset_counters()
    y = x.reshape(4, 6).permute(1, 0)[1:, ::2]
    y.realize()
    assert counters.kernels == 0
    np.testing.assert_array_equal(y.numpy(), x.numpy().reshape(4, 6).T[1:, ::2])
    assert counters.kernels == 0


def test_a_tensor_used_twice_is_computed_once(device: str) -> None:
    a, b = _realized((8, 8), (8, 8), device=device)
    reset_counters()
    shared = (a + b).exp()
    left, right = shared * 2, shared.sum(0)
    Tensor.realize(left, right)
    # shared gets a buffer of its own, so it runs once: add, mul and exp2 (exp is exp2(x / ln 2)) over
    # 64 elements, then the mul of `left` and the sum of `right`
    assert counters.kernels == 3
    assert counters.flops == 64 * 3 + 64 + 64
    assert shared.node.is_realized


def test_value_read_twice_in_one_kernel_is_inlined(device: str) -> None:
    (a,) = _realized((8, 8), device=device)
    reset_counters()
    x = a * 3
    (x > 0).if_else(x, 0).sum().realize()  # relu: x is read twice, by ops of the same kernel
    assert counters.kernels == 1


def test_reduce_then_elementwise_fuses(device: str) -> None:
    (a,) = _realized((8, 8), device=device)
    reset_counters()
    out = (a.sum(1) * 2 + 1).abs().sqrt().numpy()
    assert counters.kernels == 1
    np.testing.assert_allclose(out, np.sqrt(np.abs(a.numpy().sum(1) * 2 + 1)), rtol=1e-5)


def test_two_layer_mlp_training_step_kernel_count() -> None:
    """Forward, backward and SGD of a 2-layer MLP with softmax cross-entropy: 17 kernels (relu fused into the first
    matmul, its gradient masked by the result; one kernel copies w2
    transposed, so that the input gradient grad @ w2.T gets a register tile; each weight gradient is computed in
    the weight's layout, with its SGD update in the same kernel)."""
    rng = np.random.default_rng(0)
    params = [Tensor(rng.standard_normal(s).astype(np.float32) * 0.1, requires_grad=True)
              for s in [(16, 32), (32,), (32, 10), (10,)]]
    x = Tensor(rng.standard_normal((8, 16)).astype(np.float32))
    y = Tensor(rng.integers(0, 10, 8))

    def step() -> Tensor:
        w1, b1, w2, b2 = params
        logits = (x @ w1 + b1).relu() @ w2 + b2
        onehot = (Tensor.arange(10).reshape(1, 10) == y.reshape(8, 1)).float()
        loss = -(logits.log_softmax(1) * onehot).sum(1).mean()
        loss.backward()
        with no_grad():
            new = [p - 0.1 * p.grad for p in params]
        Tensor.realize(loss, *new)
        for p, n in zip(params, new):
            p.node, p.grad = n.node, None
        return loss

    step()
    reset_counters()
    step()
    # if fusion improves, lower this number; it must never silently grow
    assert counters.kernels == 17


def test_numpy_device_hands_contractions_to_matmul(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = np.matmul

    def counting(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        calls.append((a.shape, b.shape))
        return real(a, b)

    monkeypatch.setattr(numpy_device.np, "matmul", counting)
    a, b = _realized((64, 48), (48, 32))
    out = (a @ b).numpy()
    assert calls == [((1, 64, 48), (1, 48, 32))]
    np.testing.assert_allclose(out, a.numpy() @ b.numpy(), rtol=1e-4, atol=1e-4)


def test_buffers_are_reused() -> None:
    a, b = _realized((32, 32), (32, 32))
    ((a + b) * 2).realize()  # first run: allocates, then the result is dropped
    reset_counters()
    for _ in range(3):
        ((a + b) * 2).realize()
    assert counters.allocations == 0


def test_debug_output_shows_schedule_kernels_and_ast(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    a, b = _realized((4, 4), (4, 4))
    monkeypatch.setenv("TG_DEBUG", "3")
    (a * b).sum(0).realize()
    err = capsys.readouterr().err
    assert "schedule of 1 item(s): 1 kernel(s)" in err
    assert "= mul float32" in err and "= sum float32" in err and " us" in err


def test_zero_size_results() -> None:
    x = Tensor.zeros(0, 3)
    assert (x + 1).numpy().shape == (0, 3)
    assert x.sum(0).numpy().tolist() == [0.0, 0.0, 0.0]


def test_very_long_chains_are_split_not_recursed() -> None:
    x = Tensor([1.0, 2.0])
    y = x
    for _ in range(1000):
        y = y + 1
    np.testing.assert_allclose(y.numpy(), [1001.0, 1002.0])


def test_a_lookup_costs_the_rows_it_reads_not_the_table(device: str) -> None:
    """x[idx], F.embedding and gather read the table at the positions (GATHER): their work grows with the output,
    not with the table (a one-hot selection compared each of 8 indices with 4,096 rows: 500K+ operations)."""
    from tg.core import functional as fn

    (w,) = _realized((4096, 16), device=device)
    positions = np.array([7, 4095, 0, 7, 100, 2, 3, 9])
    idx = Tensor(positions, device=device).realize()
    for lookup in (lambda: w[idx], lambda: fn.embedding(idx, w), lambda: w.gather(0, idx.reshape(8, 1).expand(8, 16))):
        reset_counters()
        out = lookup().numpy()
        assert counters.flops < 4096, counters.flops
        np.testing.assert_array_equal(out, w.numpy()[positions])


def test_huge_reductions_into_few_outputs_are_split(device: str) -> None:
    """A reduce of 2^18 elements to one value runs as 32 partial sums, then their sum: two kernels that
    threads or work-items can share instead of one serial loop."""
    data = np.random.default_rng(0).standard_normal(1 << 18).astype(np.float32)
    x = Tensor(data, device=device, requires_grad=True)
    reset_counters()
    total = (x * 2).exp().sum()
    value = total.item()
    assert counters.kernels == 2
    np.testing.assert_allclose(value, np.exp(data.astype(np.float64) * 2).sum(), rtol=1e-5)
    total.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp(data * 2), rtol=1e-5)
    np.testing.assert_allclose(Tensor(data, device=device).max().item(), data.max())


def test_a_changing_scalar_reuses_one_kernel(device: str) -> None:
    """x * lr with a new lr each step: the kernel is the same (the value is an argument), the results are not."""
    from tg.core.schedule import schedule

    x = Tensor(np.arange(6, dtype=np.float32), device=device)
    values = (0.1, 0.25, 3.7, 3, 40, -7, 1e6)  # whole numbers too: a step count changes as often as a rate
    kernels = [schedule([(x * lr + 1).sum().node])[0].kernel for lr in values]
    assert kernels[0] is not None and all(k is not None and k.ast == kernels[0].ast for k in kernels)
    for lr in values:
        assert abs((x * lr + 1).sum().item() - (15 * lr + 6)) < 1e-4 * max(1, abs(lr))
    for c in (2, 0.5, -1):  # structural constants stay in the code: x is the only buffer the kernel reads
        kernel = schedule([(x * c).node])[0].kernel
        assert kernel is not None
        assert [n.arg[0] for n in kernel.ast.walk() if n.op is Op.CONST] == [c]
        assert sum(n.op is Op.LOAD for n in kernel.ast.walk()) == 1


def test_a_graph_of_the_same_structure_reuses_its_schedule(device: str) -> None:
    """The schedule cache: equal structure, equal kernels; anything that changes the kernels changes the key."""
    sched = importlib.import_module("tg.core.schedule")  # the module (tg.core.schedule is also a name in it)
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((4, 5)).astype(np.float32) for _ in range(2))

    def step(x: np.ndarray, y: np.ndarray, scale: float, same: bool = False) -> Tensor:
        tx = Tensor(x, device=device)
        ty = tx if same else Tensor(y, device=device)
        return ((tx * scale + ty).relu() * (tx - ty)).sum(1)

    sched._plans.clear()
    for scale in (0.3, 0.7):  # a new scalar is a new kernel argument, not a new plan
        out = step(a, b, scale).numpy()
        np.testing.assert_allclose(out, ((a * scale + b).clip(0) * (a - b)).sum(1), rtol=1e-5, atol=1e-6)
    assert len(sched._plans) == 1
    np.testing.assert_allclose(step(a, b, 0.3, same=True).numpy(), ((a * 0.3 + a).clip(0) * 0).sum(1))
    assert len(sched._plans) == 2  # one buffer read twice is another structure than two buffers
    for s1, s2 in ((0.3, 0.3), (0.3, 0.7), (0.7, 0.3)):  # equal scalars share one argument: not a cached pattern
        tx, ty = Tensor(a, device=device), Tensor(b, device=device)
        np.testing.assert_allclose((tx * s1 + ty * s2).numpy(), a * s1 + b * s2, rtol=1e-6)
    ints = Tensor(np.arange(6, dtype=np.int32), device=device)
    np.testing.assert_array_equal((ints * 3).numpy(), np.arange(6) * 3)
    np.testing.assert_array_equal((ints * 4).numpy(), np.arange(6) * 4)  # integer constants are in the code
    zeros = Tensor(np.array([1.0, -1.0], np.float32), device=device)
    assert np.signbit((zeros * 0.0).numpy()).tolist() == [False, True]
    assert np.signbit((zeros * -0.0).numpy()).tolist() == [True, False]  # -0.0 is not 0.0


def test_a_repeated_step_reuses_the_rewritten_schedule_without_rewriting(device: str, monkeypatch) -> None:
    """The cache is keyed on the graph as built, before the layout rewrites: a repeated step whose schedule holds
    re-laid operands (x @ w.T) and a weight gradient computed in its reader's order gets the first step's
    kernels, fresh buffers for the added copies, the right values each time, and no rewrite runs again."""
    sched = importlib.import_module("tg.core.schedule")
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((16, 24)).astype(np.float32) for _ in range(3)]
    w, g = rng.standard_normal((12, 24)).astype(np.float32), rng.standard_normal((16, 12)).astype(np.float32)

    def step(x: np.ndarray) -> tuple[Tensor, Tensor]:
        tx, tw, tg_ = (Tensor(a, device=device) for a in (x, w, g))
        return (tx @ tw.T).relu() * 2, (tx.T @ tg_).T - tw  # a layer's output; an update by the weight gradient

    def reference(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x64 = x.astype(np.float64)
        return np.maximum(x64 @ w.T, 0) * 2, (x64.T @ g).T - w

    sched._plans.clear()
    calls: list[str] = []
    for name in ("_reduce_in_read_order", "_relay_contractions", "_pad_aliased_rows", "_split_reduces"):
        original = getattr(sched, name)
        monkeypatch.setattr(sched, name, lambda order, *a, _f=original, _n=name: calls.append(_n) or _f(order, *a))
    kernels = []
    for i, x in enumerate(xs):
        reset_counters()
        out = step(x)
        Tensor.realize(*out)
        kernels.append(counters.kernels)
        for got, ref in zip(out, reference(x)):
            np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5, atol=1e-5)
        if i == 0:
            assert sorted(set(calls)) == ["_pad_aliased_rows", "_reduce_in_read_order", "_relay_contractions",
                                          "_split_reduces"]
            calls.clear()
    assert calls == [] and len(sched._plans) == 1 and kernels[0] == kernels[1] == kernels[2] >= 3


def test_layout_rewrites_leave_the_users_graph_as_built(device: str, monkeypatch) -> None:
    """The layout rewrites (re-laid operands, a weight gradient in its reader's order, split reduces) work on a copy
    of the graph: scheduling changes no node a tensor holds, and the nodes the kernels fill are the built ones."""
    sched = importlib.import_module("tg.core.schedule")
    from tg.core.ops import postorder

    rng = np.random.default_rng(4)
    x, w, g = (rng.standard_normal(s).astype(np.float32) for s in ((16, 24), (12, 24), (16, 12)))
    tx, tw, tg_ = (Tensor(a, device=device) for a in (x, w, g))
    out = [(tx @ tw.T).relu() * 2, (tx.T @ tg_).T - tw, Tensor(np.ones(1 << 18, np.float32), device=device).sum()]
    roots = [t.node for t in out]
    nodes = postorder(roots, lambda n: n.src)
    before = [(n.op, n.src, n.arg) for n in nodes]
    rewrites = []
    for name in ("_reduce_in_read_order", "_relay_contractions", "_split_reduces"):
        original = getattr(sched, name)
        monkeypatch.setattr(sched, name, lambda order, roots_, replaced, _f=original, _n=name:
                            _f(order, roots_, replaced) or (replaced and rewrites.append(_n)))
    sched._plans.clear()
    items = sched.schedule(roots)
    assert sorted(rewrites) == ["_reduce_in_read_order", "_relay_contractions", "_split_reduces"]
    assert [(n.op, n.src, n.arg) for n in nodes] == before
    built = {id(n) for n in nodes}
    assert all(id(sched._root_of(r)) in {id(it.out) for it in items} for r in roots)
    assert all(id(n) in built for it in items for n in it.inputs if n.op is Op.BUFFER)
    Tensor.realize(*out)
    np.testing.assert_allclose(out[0].numpy(), np.maximum(x.astype(np.float64) @ w.T, 0) * 2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[1].numpy(), (x.T.astype(np.float64) @ g).T - w, rtol=1e-5, atol=1e-5)
    assert out[2].item() == 1 << 18


def test_column_reduces_tile_their_contiguous_dim_and_match_numpy(device: str) -> None:
    """A bias gradient's column sum (and max, mean, an int sum, a padded view, NaN) walks its column a row apart;
    on CPUs its contiguous kept dim is tiled instead. Values as NumPy's in float64, for shapes the tile divides
    and shapes it does not."""
    from tg.core.opt import column_tile
    from tg.core.schedule import schedule

    rng = np.random.default_rng(4)
    for shape in ((128, 256), (37, 10), (5, 48, 3), (1000, 16)):
        x = rng.standard_normal(shape).astype(np.float32)
        x.flat[7] = np.nan if shape == (37, 10) else x.flat[7]
        t = Tensor(x, device=device)
        np.testing.assert_allclose(t.sum(0).numpy(), x.astype(np.float64).sum(0), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(t.amax(0).numpy(), x.max(0))
        np.testing.assert_allclose((t._pad_dims([(0, 0)] * (len(shape) - 1) + [(1, 2)]) * 2).mean(0).numpy(),
                                   np.pad(x, [(0, 0)] * (len(shape) - 1) + [(1, 2)]).astype(np.float64).mean(0) * 2,
                                   rtol=1e-5, atol=1e-5)
    ints = rng.integers(-2**31, 2**31 - 1, (64, 32), dtype=np.int64).astype(np.int32)
    np.testing.assert_array_equal(Tensor(ints, device=device).sum(0).numpy(), ints.astype(np.int64).sum(0))
    a = Tensor(rng.standard_normal((128, 256)).astype(np.float32), device=device).realize()
    (col,) = [it.kernel for it in schedule([a.sum(0).node])]
    (row,) = [it.kernel for it in schedule([a.sum(1).node])]
    assert col is not None and row is not None
    assert column_tile(col) == {1: 32} and column_tile(col, (16, 4)) == {1: 16} and column_tile(row) == {}


def test_linear_layer_contraction_reads_a_transposed_copy(device: str) -> None:
    """x @ w.T with w stored (out, in), as Linear stores it: both operands run along the summed dim, which leaves a
    register tile nothing to run along; one operand is copied transposed first (one small kernel) and the sum
    then reads a unit-stride output dim. Values as NumPy's in float64."""
    sched = importlib.import_module("tg.core.schedule")
    x, w = _realized((16, 24), (12, 24), device=device)
    out = x @ w.T
    items = sched.schedule([out.node])
    assert len(items) == 2 and items[0].kernel is not None and items[0].kernel.reduce is None
    loads = [a.arg[1] for a in items[1].kernel.ast.walk() if a.op is Op.LOAD]
    assert any(st == 1 for v in loads for d, st in enumerate(v.strides) if d not in items[1].kernel.reduce.arg)
    ref = x.numpy().astype(np.float64) @ w.numpy().astype(np.float64).T
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-5)
    v = _realized((1, 24), device=device)[0]  # one row: a dot product per output, nothing to copy
    assert len(sched.schedule([(v @ w.T).node])) == 1


def test_strided_convolution_reads_its_weight_with_output_channels_innermost(device: str) -> None:
    """A stride-2 convolution reads its input two apart: no output dim with unit stride. Its weight is copied with
    the output channels innermost (one kernel), and the contraction's tile runs along them."""
    sched = importlib.import_module("tg.core.schedule")
    x, w = _realized((2, 8, 9, 9), (16, 8, 3, 3), device=device)
    out = x.conv2d(w, stride=2, padding=1)
    items = sched.schedule([out.node])
    contraction = next(it.kernel for it in items if it.kernel is not None and it.kernel.reduce is not None)
    loads = [a.arg[1] for a in contraction.ast.walk() if a.op is Op.LOAD]
    assert any(st == 1 for v in loads for d, st in enumerate(v.strides) if d not in contraction.reduce.arg)
    xs, ws = x.numpy().astype(np.float64), w.numpy().astype(np.float64)
    padded = np.pad(xs, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))[:, :, ::2, ::2]
    ref = np.einsum("nchwij,ocij->nohw", windows, ws)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-5)


def test_a_changing_integer_is_a_kernel_argument(device: str) -> None:
    """Positions and step counters (a Python int that changes every call) compile once; integer divisors stay in
    the code (exact fast paths) and still give the right quotients for every value."""
    sched = importlib.import_module("tg.core.schedule")
    t = Tensor(np.arange(-6, 6, dtype=np.int32), device=device)
    asts = {sched.schedule([(t * 3 + (1000 + i)).node])[0].kernel.ast for i in range(3)}
    assert len(asts) == 1  # one kernel (so one program) for every value
    for i in range(12):
        np.testing.assert_array_equal((t * 3 + (1000 + i)).numpy(), np.arange(-6, 6) * 3 + 1000 + i)
    for d in (3, 4, 7, -5):
        np.testing.assert_array_equal((t // d).numpy(), np.arange(-6, 6) // d)
        np.testing.assert_array_equal((t % d).numpy(), np.arange(-6, 6) % d)
    big = Tensor(np.array([2**62, -(2**62)], np.int64), device=device) if to_dtype("int64") in \
        registry.open(device).dtypes else None
    if big is not None:  # an int64 argument keeps all its bits
        np.testing.assert_array_equal((big + (2**62 - 7)).numpy(), np.array([2**62, -(2**62)]) + (2**62 - 7))


def test_reduce_computed_in_the_order_its_reader_reads(device: str) -> None:
    """(x.T @ g).T + 1 reads the product transposed: the product is computed in that order, fused with the add."""
    x, g = _realized((16, 24), (16, 8), device=device)
    reset_counters()
    out = ((x.T @ g).T + 1).numpy()
    assert counters.kernels == 1
    np.testing.assert_allclose(out, (x.numpy().astype(np.float64).T @ g.numpy()).T + 1, rtol=1e-5, atol=1e-5)


def test_reduce_read_two_ways_keeps_its_order(device: str) -> None:
    x, g = _realized((16, 24), (16, 8), device=device)
    p = x.T @ g
    both = (p.T.sum(0) * 2, p + 1)
    reset_counters()
    Tensor.realize(*both)
    ref = x.numpy().astype(np.float64).T @ g.numpy()
    np.testing.assert_allclose(both[0].numpy(), ref.T.sum(0) * 2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(both[1].numpy(), ref + 1, rtol=1e-5, atol=1e-5)
    realized = (x.T @ g).realize()  # a realized target keeps its own layout; a transposed read of it stays right
    np.testing.assert_allclose(realized.T.numpy(), ref.T, rtol=1e-5, atol=1e-5)


def test_contraction_operand_rows_aliasing_in_cache_are_read_from_padded_copy(device: str) -> None:
    """256x256 @ 256x256: b's rows lie 1 KiB apart. Devices that ask for it (llvm) read b from a copy with padded
    rows (one more kernel); the values are the same everywhere, also for a computed or transposed operand."""
    from tg.core.device import get_device

    a, b = _realized((256, 256), (256, 256), device=device)
    extra = 1 if get_device(device).pad_aliased_rows else 0
    ref = a.numpy().astype(np.float64) @ b.numpy()
    for out, expect, kernels in (((a @ b), ref, 1), ((a @ (b * 2)), ref * 2, 1),
                                 ((a.T @ b).T, (a.numpy().astype(np.float64).T @ b.numpy()).T, 1)):
        reset_counters()
        np.testing.assert_allclose(out.numpy(), expect, rtol=1e-4, atol=1e-3)
        assert counters.kernels == kernels + extra


def test_transposing_copies_are_blocked_and_exact(device: str) -> None:
    """A copy that reads along another dim than it writes gets a small block of both dims on CPUs; the values
    are exact for any shape (odd sizes, padding, 3-D permutes, a computed input)."""
    from tg.core.opt import transpose_tile

    rng = np.random.default_rng(1)
    for shape, perm in (((64, 48), (1, 0)), ((7, 10), (1, 0)), ((5, 8, 12), (2, 0, 1)), ((1, 9, 1), (2, 1, 0))):
        x = rng.standard_normal(shape).astype(np.float32)
        t = Tensor(x, device=device).realize()
        np.testing.assert_array_equal(t.permute(*perm).contiguous().numpy(), x.transpose(perm))
        np.testing.assert_array_equal((t * 2).permute(*perm).pad((1, 2) * len(shape)).numpy(),
                                      np.pad(x.transpose(perm) * 2, [(1, 2)] * len(shape)))
    a = Tensor(rng.standard_normal((64, 48)).astype(np.float32), device=device).realize()
    from tg.core.schedule import schedule

    (kernel,) = [it.kernel for it in schedule([a.T.contiguous().node])]
    assert kernel is not None and transpose_tile(kernel) == {0: 4, 1: 4}
    (kernel,) = [it.kernel for it in schedule([(a + 1).node])]
    assert kernel is not None and transpose_tile(kernel) == {}


def test_gpu_renderers_give_four_lanes_only_to_elementwise_programs_over_32_bit_buffers() -> None:
    """vector_lanes: a program reads and writes four neighbouring elements per access only where every buffer is
    32-bit and read at the loop's position (or at a constant: a scalar argument), the loop does nothing else with
    its position, and the size divides by four."""
    from tg.core.lower import lower
    from tg.core.render import vector_lanes
    from tg.core.schedule import schedule
    from tg.core.search import choose

    def lanes(t: Tensor) -> int:
        (kernel,) = [it.kernel for it in schedule([t.node]) if it.kernel is not None]
        return vector_lanes(lower(kernel, choose(kernel, True, "a GPU", None), gpu=True, narrow=True))

    rng = np.random.default_rng(0)
    a = Tensor(rng.standard_normal((8, 16)).astype(np.float32), device="numpy").realize()
    b = Tensor(rng.standard_normal((8, 16)).astype(np.float32), device="numpy").realize()
    lr = Tensor(np.float32(0.5), device="numpy").realize()
    assert lanes((a * b + 1).exp()) == 4
    assert lanes(a * lr.reshape(1, 1).expand(8, 16)) == 4  # a scalar every lane shares
    assert lanes((a + 1).cast(to_dtype("int32"))) == 4
    assert lanes(a.flip(1) + 1) == 1  # read backwards: not at the loop's position
    assert lanes(a.T + 1) == 1
    assert lanes(a + b[:, :1]) == 1  # broadcast along the lanes
    assert lanes(a[:, :15] * 2) == 1  # 120 elements would do, but the reads are strided rows
    assert lanes(Tensor(np.ones(30, np.float32), device="numpy") * 2) == 1  # 30 is no multiple of 4
    assert lanes(a.cast(to_dtype("int8")) + 1) == 1  # 8-bit buffers
    assert lanes(Tensor.arange(64, device="numpy") * 2) == 1  # the position is a value
    assert lanes(a.sum(1)) == 1


def test_kernel_asts_are_hash_consed() -> None:
    """Building an AST equal to a live one returns that one (a repeated step's kernels are found in a device's
    program cache by identity); constants stay apart by their bits, and pickling keeps the identity."""
    import pickle

    from tg.core.dtype import float32
    from tg.core.kernel import AST
    from tg.core.view import View

    view = View.contiguous((4,))

    def kernel(value: float) -> AST:
        load = AST(Op.LOAD, float32, (), (1, view))
        return AST(Op.STORE, float32, (AST(Op.ADD, float32, (load, AST(Op.CONST, float32, (), (value, view)))),),
                   (0, view))

    a = kernel(1.5)
    assert kernel(1.5) is a and kernel(float("nan")) is kernel(float("nan"))
    assert kernel(0.0) is not kernel(-0.0) and kernel(0.0) != kernel(-0.0) and kernel(2.5) is not a
    assert pickle.loads(pickle.dumps(a)) is a
    with pytest.raises(AttributeError, match="immutable"):
        a.arg = None  # type: ignore[misc]


def test_the_lazy_graph_is_hash_consed_and_changes_only_into_data(device: str) -> None:
    """Lazy nodes are UOps: one written twice is one node (computed once), -0.0 and 0.0 and NaN constants keep their
    identity by bits, nodes refuse changes, and realizing makes the node data in place (every holder sees it)."""
    from tg.core.uop import UOp

    x = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3), device=device)
    a, b = (x * 2 + 1).exp(), (x * 2 + 1).exp()
    assert a.node is b.node and isinstance(a.node, UOp) and a.node.shape == (2, 3) and a.node.device == device
    assert (x * 0.0).node is not (x * -0.0).node and (x + float("nan")).node is (x + float("nan")).node
    with pytest.raises(AttributeError, match="immutable"):
        a.node.arg = None  # type: ignore[misc]
    reset_counters()
    both = a + b
    np.testing.assert_allclose(both.numpy(), 2 * np.exp(np.arange(6).reshape(2, 3) * 2.0 + 1), rtol=1e-5)
    assert counters.kernels == 1
    node = a.node
    a.realize()
    assert node.op is Op.BUFFER and node.buffer is not None and b.node is node and not node.src
    assert (x * 2 + 1).exp().node is not node  # a realized node leaves the table: a new graph is new nodes


def test_gpus_share_long_reductions_among_a_work_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """opt.group_size: a reduce of 256 or more elements that walks memory along its reduced dim (a row sum, a
    softmax's sums, also the one reading the row maxima across it) or has few outputs gets a work-group per
    output on GPUs; a contraction keeps its register tile, a column sum of many columns one work-item per output,
    CPUs never share. The program's IR checks, its group fold has the program's local size, and only the
    group's first work-item stores."""
    from tg.core.check import check
    from tg.core.lower import lower
    from tg.core.opt import choose_opts
    from tg.core.schedule import schedule

    def opts(t: Tensor, gpu: bool = True) -> list:
        return [choose_opts(it.kernel, gpu) for it in schedule([t.node]) if it.kernel is not None]

    rng = np.random.default_rng(0)
    rows = Tensor(rng.standard_normal((64, 1000)).astype(np.float32), device="numpy").realize()
    assert [o.group for o in opts(rows.sum(1))] == [128]
    assert [o.group for o in opts(rows.softmax(1))] == [128, 128, None]  # max, sum of exp, the division
    assert [o.group for o in opts(rows.sum(1), gpu=False)] == [None]
    assert [o.group for o in opts(rows[:, :100].sum(1))] == [None]  # short
    cols = Tensor(rng.standard_normal((300, 20000)).astype(np.float32), device="numpy").realize()
    assert [o.group for o in opts(cols.sum(0))] == [None]  # neighbours read neighbours already
    assert [o.group for o in opts(cols[:, :50].sum(0))] == [128]  # few outputs
    a = Tensor(rng.standard_normal((64, 512)).astype(np.float32), device="numpy").realize()
    matmul = opts(a @ a.T)[-1]  # after the copy that lays an operand out for the tile
    assert matmul.group is None and matmul.upcasts
    monkeypatch.setenv("TG_GPU_GROUP", "0")
    assert [o.group for o in opts(rows.sum(1))] == [None]
    monkeypatch.setenv("TG_GPU_GROUP", "64")
    (kernel,) = [it.kernel for it in schedule([rows.sum(1).node]) if it.kernel is not None]
    prog = lower(kernel, choose_opts(kernel, True), gpu=True, narrow=True)
    check(prog, [64, 64 * 1000])
    (fold,) = [u for u in prog.uops if u.op is Op.GROUP_FOLD]
    (store,) = [u for u in prog.uops if u.op is Op.STORE and u.src[0].op is Op.PARAM]
    assert fold.arg == (Op.ADD, 64) and prog.local_size == 64 and prog.outer_size == 64 * 64
    assert len(store.src) == 4  # the valid flag: lane 0
    monkeypatch.setenv("TG_GPU_GROUP", "48")
    with pytest.raises(ValueError, match="TG_GPU_GROUP"):
        opts(rows.sum(1))


def test_a_huge_reduce_is_split_into_the_parts_its_device_asks_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """Device.reduce_parts: 32 partial results for a CPU's threads, up to 1,024 for a GPU's work-groups, over all
    the outputs (each at least 2,048 long, a power of two dividing the reduce); the total stays exact."""
    from tg.core.schedule import schedule

    dev = registry.open("numpy")
    for parts, size, want in [(32, 3 << 18, 32), (1024, 3 << 19, 512)]:  # 3 * 2^19 / 2048 = 768 -> 512
        monkeypatch.setattr(dev, "reduce_parts", parts)  # (a new size each time: schedules are cached by structure)
        x = np.random.default_rng(0).standard_normal(size).astype(np.float32)
        t = Tensor(x, device="numpy").realize()
        first = next(it.kernel for it in schedule([t.sum().node]) if it.kernel is not None)
        assert first.out_shape == (want, 1)
        np.testing.assert_allclose(t.sum().item(), x.astype(np.float64).sum(), rtol=1e-5)
    rows = np.random.default_rng(1).standard_normal((64, 1 << 15)).astype(np.float32)
    t = Tensor(rows, device="numpy").realize()  # 64 outputs: about 1,024 parts in all, 16 a row
    first = next(it.kernel for it in schedule([t.sum(1).node]) if it.kernel is not None)
    assert first.out_shape == (64, 16, 1)
    np.testing.assert_allclose(t.sum(1).numpy(), rows.astype(np.float64).sum(1), rtol=1e-4, atol=1e-3)


def test_gpus_split_a_reduce_down_columns_into_strips_of_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Device.column_parts: a reduce over a dim that is not the last, into too few outputs to fill a GPU, becomes
    partial sums over strips of rows (each at least 64 long), then their sum; a row reduce, and every reduce on a
    device that does not ask, stay one kernel."""
    from tg.core.schedule import schedule

    dev = registry.open("numpy")
    x = np.random.default_rng(0).standard_normal((4096, 100)).astype(np.float32)

    def first_output(t: Tensor) -> tuple[int, ...]:
        return next(it.kernel for it in schedule([t.node]) if it.kernel is not None).out_shape

    t = Tensor(x, device="numpy").realize()
    assert first_output(t.sum(0)) == (1, 100)
    monkeypatch.setattr(dev, "column_parts", 64)
    u = Tensor(x[:2048], device="numpy").realize()  # a new structure: schedules are cached by structure
    assert first_output(u.sum(0)) == (32, 1, 100)  # 2048 rows / 64 per strip
    np.testing.assert_allclose(u.sum(0).numpy(), x[:2048].astype(np.float64).sum(0), rtol=1e-5, atol=1e-4)
    assert first_output(Tensor(x.T.copy(), device="numpy").realize().sum(1)) == (100, 1)


def test_cpus_fold_a_row_into_independent_accumulators() -> None:
    """opt.row_unroll: a float reduce along a contiguous row, short enough (rows of 16 to 8,192 that 8 divides),
    gets 8 accumulators on CPUs (16 where 16 divides the row), folded after the loop, and a dot product folds 4 rows
    side by side; the programs check, and a NaN anywhere still wins the max."""
    from tg.core.check import check
    from tg.core.lower import lower
    from tg.core.opt import choose_opts, row_unroll
    from tg.core.schedule import schedule

    def kernels(t: Tensor) -> list:
        return [it.kernel for it in schedule([t.node]) if it.kernel is not None]

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 32)).astype(np.float32)
    x[5, 17] = np.nan
    t = Tensor(x, device="numpy").realize()
    (kernel,) = kernels(t.amax(1))
    opts = choose_opts(kernel)
    assert opts.upcasts == {1: 16}
    check(lower(kernel, opts), [64, 64 * 32])
    assert choose_opts(kernels(t[:, :24].amax(1))[0]).upcasts == {1: 8}  # 16 does not divide 24
    assert choose_opts(kernels(t[:, :30].amax(1))[0]).upcasts == {}  # 8 does not divide 30
    w = Tensor(rng.standard_normal((48, 32)).astype(np.float32), device="numpy").realize()
    (dot,) = kernels(t[:1] @ w.T)  # one row of x against w's rows: a dot product per output
    assert choose_opts(dot).upcasts == {2: 16, 1: 4}
    check(lower(dot, choose_opts(dot), vectorize=True), [48, 32, 48 * 32])
    assert row_unroll(kernels(t.T.amax(1))[0]) == {}  # down a column: not a row
    assert choose_opts(kernels(t.amax(1))[0], gpu=True).upcasts == {}
    if registry.try_open("llvm") is None:
        pytest.skip("llvm is not installed here")  # CI installs it: TG_REQUIRE_DEVICES makes it fail there
    np.testing.assert_array_equal(Tensor(x, device="llvm").amax(1).numpy(), x.max(1))  # NaN in row 5 only
    ref = np.nan_to_num(x[:1]).astype(np.float64) @ w.numpy().T
    got = Tensor(np.nan_to_num(x[:1]), device="llvm") @ Tensor(w.numpy(), device="llvm").T
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5, atol=1e-5)


def test_a_contraction_over_a_ragged_dim_runs_padded_on_cpus(device: str) -> None:
    """x @ w + b with 1,000 output columns: devices that ask for it (llvm) run the product over 1,024 columns (a
    register tile of 32 lanes instead of 25), through a padded view of w, and its reader sees the first 1,000. The
    values, a repeat of the same structure with new data, and the gradients match float64 NumPy everywhere."""
    from tg.core.device import get_device
    from tg.core.schedule import schedule

    rng = np.random.default_rng(5)
    w, b = rng.standard_normal((300, 1000)).astype(np.float32), rng.standard_normal(1000).astype(np.float32)
    for step in range(2):
        x = rng.standard_normal((32, 300)).astype(np.float32)
        tx, tw, tb = (Tensor(a, device=device, requires_grad=True) for a in (x, w, b))
        out = tx @ tw + tb
        if step == 0:
            shapes = {it.kernel.full_shape for it in schedule([out.node]) if it.kernel and it.kernel.reduce}
            padded = any(1024 in s for s in shapes)
            assert padded == get_device(device).pad_ragged_dims and any(1000 in s for s in shapes) != padded
        np.testing.assert_allclose(out.numpy(), x.astype(np.float64) @ w + b, rtol=1e-4, atol=1e-4)
        g = rng.standard_normal((32, 1000)).astype(np.float32)
        (out * Tensor(g, device=device)).sum().backward()
        assert tw.grad is not None and tx.grad is not None
        np.testing.assert_allclose(tw.grad.numpy(), x.astype(np.float64).T @ g, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(tx.grad.numpy(), g.astype(np.float64) @ w.T, rtol=1e-4, atol=1e-3)
    alone = Tensor(x, device=device) @ Tensor(w, device=device)  # the product itself as the result: not padded
    np.testing.assert_allclose(alone.numpy(), x.astype(np.float64) @ w, rtol=1e-4, atol=1e-4)


def _conv_reference(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[-1]
    cols = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nchwij,ocij->nohw", cols, w.astype(np.float64))


@pytest.mark.parametrize("n, c, o, hw, k, stride", [(1, 32, 64, 7, 3, 1), (2, 32, 48, 14, 3, 2), (1, 64, 96, 7, 1, 1),
                                                    (1, 32, 48, 5, 3, 1)])
def test_a_convolution_with_short_rows_runs_as_a_matrix_product_on_cpus(device: str, n: int, c: int, o: int, hw: int,
                                                                        k: int, stride: int) -> None:
    """Output rows 7 wide (ResNet's last stage) give a register tile 7 lanes: devices that pad ragged dims (llvm) copy
    the input windows out with the spatial dims flattened and padded to a multiple of 16 (7x7 -> 8x8) and run a
    matrix product over them; the readers see the unpadded output. Forward (as the result and read by a bias add),
    a second step of the same structure and the gradients match float64 NumPy on every device."""
    from tg.core.device import get_device
    from tg.core.schedule import IM2COL_MULTIPLE, schedule

    rng = np.random.default_rng(11)
    w, b = rng.standard_normal((o, c, k, k)).astype(np.float32), rng.standard_normal(o).astype(np.float32)
    for step in range(2):
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        tx, tw, tb = (Tensor(a, device=device, requires_grad=True) for a in (x, w, b))
        out = tx.conv2d(tw, tb, stride=stride, padding=k // 2)
        ref = _conv_reference(x, w, stride, k // 2)
        if step == 0:
            flat = [s[-1] for s in (it.kernel.full_shape for it in schedule([out.node]) if it.kernel and
                                    it.kernel.reduce)]
            assert any(f % IM2COL_MULTIPLE == 0 and f >= n * ref.shape[2] * ref.shape[3] for f in flat) == \
                get_device(device).pad_ragged_dims, flat
        np.testing.assert_allclose(out.numpy(), ref + b[:, None, None], rtol=1e-4, atol=1e-4)
        g = rng.standard_normal(ref.shape).astype(np.float32)
        (out * Tensor(g, device=device)).sum().backward()
        assert tw.grad is not None and tx.grad is not None and tb.grad is not None
        np.testing.assert_allclose(tb.grad.numpy(), g.astype(np.float64).sum((0, 2, 3)), rtol=1e-4, atol=1e-3)
        xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (k // 2, k // 2), (k // 2, k // 2)))
        cols = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
        np.testing.assert_allclose(tw.grad.numpy(), np.einsum("nchwij,nohw->ocij", cols, g), rtol=1e-4, atol=1e-3)
    alone = Tensor(x, device=device).conv2d(Tensor(w, device=device), stride=stride, padding=k // 2)
    np.testing.assert_allclose(alone.numpy(), _conv_reference(x, w, stride, k // 2), rtol=1e-4, atol=1e-4)


def test_a_depthwise_convolution_is_not_copied_or_tiled_along_its_channels(device: str) -> None:
    """A depthwise convolution (groups = channels) reuses no load across channels: its strided input used to be copied
    first (as a convolution's is, for the output channels that each read all of it: here none) and its register
    tile spanned 8 channels (8x the accumulators, no reuse), and its padded input was copied out. Now: one
    contraction that reads the input through its padding, no channel upcast; forward and gradients match float64
    NumPy."""
    from tg.core.opt import choose_upcasts
    from tg.core.schedule import schedule

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 16, 14, 14)).astype(np.float32)
    w = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)
    tx, tw = Tensor(x, device=device, requires_grad=True), Tensor(w, device=device, requires_grad=True)
    out = tx.conv2d(tw, stride=2, padding=1, groups=16)
    kernels = [it.kernel for it in schedule([out.node]) if it.kernel is not None]
    through = get_device(device).reads_windows_through_padding  # else a padded copy first (the NumPy device)
    assert len(kernels) == (1 if through else 2), [k.name for k in kernels]
    conv = kernels[-1]
    assert 1 not in choose_upcasts(conv), choose_upcasts(conv)  # dim 1: the channels
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))[:, :, ::2, ::2]
    ref = np.einsum("nchwij,cij->nchw", cols, w[:, 0].astype(np.float64))
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-5)
    g = rng.standard_normal(ref.shape).astype(np.float32)
    (out * Tensor(g, device=device)).sum().backward()
    assert tw.grad is not None
    np.testing.assert_allclose(tw.grad.numpy()[:, 0], np.einsum("nchwij,nchw->cij", cols, g), rtol=1e-4, atol=1e-4)


def test_windows_over_padding_are_read_through_bounds_unless_read_many_times(device: str) -> None:
    """A window over padding has no strided View: its padding is a bound on a sum of dims (out * stride + k). A
    strided depthwise convolution or a padded max pool reads each input element about twice: one kernel, no padded
    copy (the NumPy device, whose loads are whole arrays, copies the convolution's padded input). A convolution with
    16 output channels (or a stride-1 depthwise one, 9 reads an element) reads a padded copy instead, made once.
    Values against float64 NumPy."""
    from tg.core.schedule import schedule

    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 16, 13, 13)).astype(np.float32)
    tx = Tensor(x, device=device)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))

    def kernels(t: Tensor) -> int:
        return sum(it.kernel is not None for it in schedule([t.node]))

    copied = 0 if get_device(device).reads_windows_through_padding else 1  # the NumPy device copies the padded input
    pooled = tx.max_pool2d(3, stride=2, padding=1)
    assert kernels(pooled) == 1  # its windows are over a select of the padding and -inf: the loads take the bounds
    from tg.core.opt import choose_upcasts

    pool_kernel = next(it.kernel for it in schedule([pooled.node]) if it.kernel is not None)
    # the "inside the padding" flag is a constant through the bounds now, not a buffer: it still counts as a read,
    # so the pool keeps its register tile along the output row (8x64x56x56 on llvm: 1.39 ms untiled, 0.61 tiled)
    assert choose_upcasts(pool_kernel), pool_kernel.describe()
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))[:, :, ::2, ::2]
    np.testing.assert_allclose(pooled.numpy(), windows.max(axis=(4, 5)), rtol=1e-6)
    cols = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
    for groups, stride, expected in ((16, 2, 1), (16, 1, 2), (1, 1, 2)):
        w = rng.standard_normal((16, 16 // groups, 3, 3)).astype(np.float32)
        out = tx.conv2d(Tensor(w, device=device), stride=stride, padding=1, groups=groups)
        assert kernels(out) == max(expected, 1 + copied), (groups, stride)
        picked = cols[:, :, ::stride, ::stride]
        ref = np.einsum("ngchwij,gocij->ngohw", picked.reshape(2, groups, 16 // groups, *picked.shape[2:]),
                        w.astype(np.float64).reshape(groups, 16 // groups, 16 // groups, 3, 3)).reshape(out.shape)
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-4)


def test_a_costly_value_repeated_by_a_reduce_is_computed_once(device: str) -> None:
    """Attention's softmax(scores) @ v: the softmax (an exp and a division per element) was inlined into the product
    and so computed once per output column (16x over; 128 of the kernel's 180 us on llvm). A costly value that a
    reduce reads 4+ times over, 64K+ reads in all, now gets a kernel of its own; a small graph keeps it inlined (the
    MLP step's kernel count above). Values match float64 NumPy."""
    from tg.core.schedule import schedule

    rng = np.random.default_rng(9)
    s = rng.standard_normal((8, 4, 32, 32)).astype(np.float32)
    v = rng.standard_normal((8, 4, 32, 16)).astype(np.float32)

    def exps_in_products(out: Tensor) -> list[bool]:
        kernels = [it.kernel for it in schedule([out.node]) if it.kernel is not None]
        return [any(n.op is Op.EXP2 for n in k.ast.walk()) for k in kernels if k.reduce is not None and
                k.reduce.op is Op.SUM and 16 in k.full_shape]

    out = Tensor(s, device=device).softmax(-1) @ Tensor(v, device=device)
    assert exps_in_products(out) == [False]
    e = np.exp(s.astype(np.float64) - s.max(-1, keepdims=True))
    np.testing.assert_allclose(out.numpy(), (e / e.sum(-1, keepdims=True)) @ v, rtol=1e-5, atol=1e-5)
    small = Tensor(s[:1, :1], device=device).softmax(-1) @ Tensor(v[:1, :1], device=device)
    assert exps_in_products(small) == [True]
