"""tg-core benchmarks: ratios against references measured in the same process, medians after warm-up.

    python bench/bench_core.py [--device numpy] [--quick]

Prints a table (tg, NumPy, and PyTorch / tinygrad where installed) and writes bench/results/core.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tg.core import Tensor, TinyJit, synchronize
from tg.core.schedule import schedule
from tg.core.uop import Node

SETTLE_S = 0.3  # idle time before each measurement: see median_time


def median_time(fn: Callable[[], Any], repeat: int, warmup: int = 2) -> float:
    """The median of `repeat` timed calls of fn after `warmup` calls. It first waits SETTLE_S: the libraries measured
    before keep their worker threads spinning for a while after a call (OpenBLAS, OpenMP), and on a 2-core machine
    the next library measured then gets half the cores (tg's 512x512 7x7 convolution right after NumPy matmuls: 72
    GFLOP/s, 130-137 alone or after a 0.3 s pause)."""
    time.sleep(SETTLE_S)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def optional(name: str) -> Optional[Any]:
    try:
        return __import__(name)
    except Exception:
        return None


torch = optional("torch")
tinygrad = optional("tinygrad")
TINYGRAD_DEVICE = "CPU"  # its clang-compiled CPU device (PoCL would be its default where installed)


def tiny(arr: np.ndarray) -> Any:
    """A realized tinygrad tensor on its CPU device."""
    return tinygrad.Tensor(arr, device=TINYGRAD_DEVICE).realize()


def bench_matmul(device: str, n: int, repeat: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    ta, tb = Tensor(a, device=device).realize(), Tensor(b, device=device).realize()

    def tg_run() -> None:
        (ta @ tb).realize()
        synchronize(device)

    flop = 2 * n ** 3
    row = {"name": f"matmul {n}x{n} fp32", "unit": "GFLOP/s",
           "tg": flop / median_time(tg_run, repeat) / 1e9,
           "numpy": flop / median_time(lambda: np.matmul(a, b), repeat) / 1e9}
    if torch is not None:
        xa, xb = torch.from_numpy(a), torch.from_numpy(b)
        row["torch"] = flop / median_time(lambda: torch.matmul(xa, xb), repeat) / 1e9
    if tinygrad is not None:
        ya, yb = tiny(a), tiny(b)
        row["tinygrad"] = flop / median_time(lambda: (ya @ yb).realize(), repeat) / 1e9
    np.testing.assert_allclose((ta @ tb).numpy(), a @ b, rtol=1e-3, atol=1e-3)
    return row


def bench_chain(device: str, n: int, repeat: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    ta, tb, tc = (Tensor(v, device=device).realize() for v in (a, b, c))

    def tg_run() -> None:
        ((ta * tb + tc).relu() * 0.5).exp().realize()
        synchronize(device)

    traffic = 4 * n * 4  # three reads and one write, the minimum
    row = {"name": f"fused ((a*b+c).relu()*0.5).exp() {n // 2**20}M", "unit": "GB/s",
           "tg": traffic / median_time(tg_run, repeat) / 1e9,
           "numpy": traffic / median_time(lambda: np.exp(np.maximum(a * b + c, 0) * 0.5), repeat) / 1e9}
    if torch is not None:
        xa, xb, xc = (torch.from_numpy(v) for v in (a, b, c))
        row["torch"] = traffic / median_time(lambda: ((xa * xb + xc).relu() * 0.5).exp(), repeat) / 1e9
    if tinygrad is not None:
        ya, yb, yc = tiny(a), tiny(b), tiny(c)
        row["tinygrad"] = traffic / median_time(lambda: ((ya * yb + yc).relu() * 0.5).exp().realize(), repeat) / 1e9
    return row


def bench_lookup(device: str, repeat: int) -> dict[str, Any]:
    """An embedding lookup: 512 rows of a 30,000 x 256 table (a text model's first layer; ONNX Gather)."""
    rng = np.random.default_rng(0)
    table, ids = rng.standard_normal((30000, 256)).astype(np.float32), rng.integers(0, 30000, 512)
    tw, ti = Tensor(table, device=device).realize(), Tensor(ids, device=device).realize()
    from tg.core import functional as fn

    def tg_run() -> None:
        fn.embedding(ti, tw).realize()
        synchronize(device)

    traffic = 2 * 4 * 512 * 256  # each looked-up row read once and written once
    row = {"name": "embedding 512 of 30000x256", "unit": "GB/s", "tg": traffic / median_time(tg_run, repeat) / 1e9,
           "numpy": traffic / median_time(lambda: table[ids], repeat) / 1e9}
    if torch is not None:
        xw, xi = torch.from_numpy(table), torch.from_numpy(ids)
        row["torch"] = traffic / median_time(lambda: torch.nn.functional.embedding(xi, xw), repeat) / 1e9
    return row


def bench_sum(device: str, n: int, repeat: int) -> dict[str, Any]:
    a = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    ta = Tensor(a, device=device).realize()

    def tg_run() -> None:
        ta.sum().realize()
        synchronize(device)

    row = {"name": f"sum {n // 2**20}M fp32", "unit": "GB/s", "tg": 4 * n / median_time(tg_run, repeat) / 1e9,
           "numpy": 4 * n / median_time(lambda: a.sum(), repeat) / 1e9}
    if torch is not None:
        xa = torch.from_numpy(a)
        row["torch"] = 4 * n / median_time(lambda: xa.sum(), repeat) / 1e9
    if tinygrad is not None:
        ya = tiny(a)
        row["tinygrad"] = 4 * n / median_time(lambda: ya.sum().realize(), repeat) / 1e9
    return row


def bench_conv(device: str, repeat: int, quick: bool, stride: int = 1, shape: str = "first") -> dict[str, Any]:
    """conv2d forward, 3x3, padding 1: N=16, C=32->64 at 32x32 (the first issue's reference shape); "resnet":
    1x256->256 at 28x28, at stride 1 and 2 (strided convolutions were 15x slower than stride 1 on llvm; the speed
    issue asks for at least half); "late": 1x512->512 at 7x7 (rows 7 wide, ResNet's last stage); "depthwise":
    8x32 at 56x56 with groups = channels (MobileNet's), at stride 1 and 2."""
    groups = 1
    if shape == "first":
        n, c, o, hw = (4, 16, 32, 16) if quick else (16, 32, 64, 32)
    elif shape == "resnet":
        n, c, o, hw = (1, 64, 64, 28) if quick else (1, 256, 256, 28)
    elif shape == "depthwise":
        n, c, o, hw = (2, 16, 16, 28) if quick else (8, 32, 32, 56)
        groups = c
    else:
        n, c, o, hw = (1, 128, 128, 7) if quick else (1, 512, 512, 7)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    w = rng.standard_normal((o, c // groups, 3, 3)).astype(np.float32)
    tx, tw = Tensor(x, device=device).realize(), Tensor(w, device=device).realize()

    def tg_run() -> None:
        tx.conv2d(tw, stride=stride, padding=1, groups=groups).realize()
        synchronize(device)

    def numpy_im2col() -> np.ndarray:
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        cols = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))[:, :, ::stride, ::stride]
        if groups > 1:  # depthwise: each channel with its own filter
            return np.einsum("nchwij,cij->nchw", cols, w[:, 0])
        return np.tensordot(cols, w, axes=((1, 4, 5), (1, 2, 3))).transpose(0, 3, 1, 2)

    out_hw = (hw - 1) // stride + 1
    flop = 2 * n * o * out_hw * out_hw * (c // groups) * 9
    kind = " depthwise" if groups > 1 else ""
    row = {"name": f"conv2d{kind} {n}x{c}->{o} {hw}x{hw} 3x3 pad 1" + (f" stride {stride}" if stride > 1 else ""),
           "unit": "GFLOP/s", "tg": flop / median_time(tg_run, repeat) / 1e9,
           "numpy": flop / median_time(numpy_im2col, repeat) / 1e9}
    if torch is not None:
        xt, wt = torch.from_numpy(x), torch.from_numpy(w)
        row["torch"] = flop / median_time(lambda: torch.nn.functional.conv2d(xt, wt, stride=stride, padding=1,
                                                                             groups=groups), repeat) / 1e9
    if tinygrad is not None:
        yx, yw = tiny(x), tiny(w)
        row["tinygrad"] = flop / median_time(lambda: yx.conv2d(yw, stride=stride, padding=1, groups=groups).realize(),
                                             repeat) / 1e9
    np.testing.assert_allclose(tx.conv2d(tw, stride=stride, padding=1, groups=groups).numpy(), numpy_im2col(),
                               rtol=1e-3, atol=1e-3)
    return row


def bench_cnn_step(device: str, repeat: int) -> list[dict[str, Any]]:
    """One Adam step of the demo's MNIST CNN at batch 128 (tg.nn), beside the same model in PyTorch."""
    try:
        import tg.nn as nn
        from tg.nn.demo import make_model
    except ImportError:
        return [{"name": "CNN train step (tg-nn not installed)", "unit": "ms", "tg": float("nan")}]
    rng = np.random.default_rng(0)
    x = rng.random((128, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 128)
    model = make_model(device)
    opt = nn.optim.Adam(model.parameters(), lr=1e-3)
    tx, ty = Tensor(x, device=device), Tensor(y, device=device)

    def train_step(x: Tensor, y: Tensor) -> Tensor:
        loss = model(x).cross_entropy(y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    jitted = TinyJit(train_step)

    def tg_step() -> None:
        train_step(tx, ty)
        synchronize(device)

    def tg_jit_step() -> None:
        jitted(tx, ty)
        synchronize(device)

    row = {"name": "MNIST CNN Adam step, batch 128", "unit": "ms", "tg": median_time(tg_step, repeat) * 1e3}
    jit_row = {"name": "the same step replayed by TinyJit", "unit": "ms", "tg": median_time(tg_jit_step, repeat) * 1e3}
    if torch is not None:
        tnn = torch.nn
        tmodel = tnn.Sequential(tnn.Conv2d(1, 16, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
                                tnn.Conv2d(16, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                                tnn.Linear(32 * 7 * 7, 10))
        topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def torch_step() -> None:
            loss = tnn.functional.cross_entropy(tmodel(xt), yt)
            topt.zero_grad()
            loss.backward()
            topt.step()

        row["torch"] = jit_row["torch"] = median_time(torch_step, repeat) * 1e3
    return [row, jit_row]


def bench_linear_mlp(device: str, repeat: int) -> dict[str, Any]:
    """The same MLP as users write it with tg.nn: Linear layers store their weight (out, in), so the forward is
    x @ w.T; SGD, cross-entropy, batch 128; beside torch.nn."""
    import tg.nn as tnn

    rng = np.random.default_rng(0)
    model = tnn.Sequential(tnn.Linear(784, 256, device=device), tnn.ReLU(), tnn.Linear(256, 10, device=device))
    opt = tnn.optim.SGD(model.parameters(), lr=0.01)
    x = Tensor(rng.standard_normal((128, 784)).astype(np.float32), device=device)
    y = Tensor(rng.integers(0, 10, 128), device=device)

    def step() -> None:
        opt.zero_grad()
        model(x).cross_entropy(y).backward()
        opt.step()
        synchronize(device)

    row: dict[str, Any] = {"name": "MLP step with tg.nn.Linear, batch 128", "unit": "ms",
                           "tg": median_time(step, repeat) * 1e3}
    if torch is not None:
        tmodel = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.01)
        tx, ty = torch.tensor(x.numpy()), torch.tensor(y.numpy())

        def torch_step() -> None:
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tmodel(tx), ty).backward()
            topt.step()

        row["torch"] = median_time(torch_step, repeat) * 1e3
    return row


def bench_overhead(device: str, ops: int, repeat: int) -> list[dict[str, Any]]:
    """Python cost of building the graph and scheduling it, per op, on tiny tensors."""
    x = Tensor(np.ones((4, 4), np.float32), device=device).realize()
    holder: list[Tensor] = []

    def build() -> None:
        y = x
        for i in range(ops):
            y = (y * 1.5 + i) if i % 2 else y.relu()
        holder[:] = [y]

    build_s = median_time(build, repeat)
    nodes: list[Node] = [holder[0].node]
    plans = getattr(sys.modules["tg.core.schedule"], "_plans", {})

    def fresh() -> None:  # a structure not seen before: the kernels are decided and built
        plans.clear()
        schedule(nodes)

    first_s = median_time(fresh, repeat)
    again_s = median_time(lambda: schedule(nodes), repeat)  # the same structure again (a training loop's steps)
    return [{"name": f"graph build per op ({ops} ops)", "unit": "us", "tg": build_s / ops * 1e6},
            {"name": "schedule per op, new structure", "unit": "us", "tg": first_s / ops * 1e6},
            {"name": "schedule per op, structure seen before", "unit": "us", "tg": again_s / ops * 1e6}]


MLP_CHILD = """
import sys, time, json
t0 = time.perf_counter()
import numpy as np
from tg.core import Tensor, no_grad, synchronize
dev = sys.argv[1]
rng = np.random.default_rng(0)
params = [Tensor(rng.standard_normal(s).astype(np.float32) * 0.05, device=dev, requires_grad=True)
          for s in [(784, 256), (256,), (256, 10), (10,)]]
x = Tensor(rng.standard_normal((128, 784)).astype(np.float32), device=dev)
y = Tensor(rng.integers(0, 10, 128), device=dev)
def step():
    w1, b1, w2, b2 = params
    logits = (x @ w1 + b1).relu() @ w2 + b2
    onehot = (Tensor.arange(10, device=dev).reshape(1, 10) == y.reshape(-1, 1)).float()
    loss = -(logits.log_softmax(1) * onehot).sum(1).mean()
    loss.backward()
    with no_grad():
        new = [p - 0.01 * p.grad for p in params]
    Tensor.realize(loss, *new)
    for p, n in zip(params, new):
        p.node, p.grad = n.node, None
    synchronize(dev)
t1 = time.perf_counter(); step(); first = time.perf_counter() - t1
times = []
for _ in range(10):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
print(json.dumps({"first": first, "steady": sorted(times)[len(times) // 2]}))
"""


def bench_mlp_step(device: str, cache_dir: str) -> list[dict[str, Any]]:
    """A 784-256-10 MLP SGD step at batch 128: first call in a fresh process (cold compile cache), then steady."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, TG_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", MLP_CHILD, device], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    r = json.loads(out.stdout)
    rows = [{"name": "MLP step, first call (cold cache)", "unit": "s", "tg": r["first"]},
            {"name": "MLP step 784-256-10 batch 128", "unit": "ms", "tg": r["steady"] * 1e3}]
    if torch is not None:
        rows[1]["torch"] = torch_mlp_step() * 1e3
    return rows


def torch_mlp_step() -> float:
    assert torch is not None
    g = torch.Generator().manual_seed(0)
    params = [(torch.randn(s, generator=g) * 0.05).requires_grad_() for s in [(784, 256), (256,), (256, 10), (10,)]]
    x, y = torch.randn(128, 784, generator=g), torch.randint(0, 10, (128,), generator=g)

    def step() -> None:
        w1, b1, w2, b2 = params
        loss = torch.nn.functional.cross_entropy((x @ w1 + b1).relu() @ w2 + b2, y)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= 0.01 * p.grad
                p.grad = None

    return median_time(step, 10)


def bench_codegen(device: str, repeat: int) -> list[dict[str, Any]]:
    """What the engine does before a compiler starts: lowering and rendering a 512x512 matmul for the device's
    target (the numpy device interprets kernels: it has no source, so its rows are 0)."""
    from tg.core import get_device
    from tg.core.lower import lower
    from tg.core.schedule import schedule

    a, b = Tensor.rand(512, 512, device=device).realize(), Tensor.rand(512, 512, device=device).realize()
    kernel = [i.kernel for i in schedule([(a @ b).node]) if i.kernel is not None][-1]
    dev = get_device(device)
    target = getattr(dev, "target", None)
    if target is None:
        return [{"name": "512^2 matmul: lower + render", "unit": "ms", "tg": 0.0},
                {"name": "512^2 matmul: lines of source", "unit": "lines", "tg": 0.0}]
    from tg.core.opt import choose_opts

    t = target(kernel)
    opts = choose_opts(kernel, t.gpu, t.tile)

    def build() -> str:
        prog = lower(kernel, opts, gpu=t.gpu, narrow=t.narrow, vectorize=t.vectors)
        return str(t.renderer.render(prog, "tg_kernel"))

    return [{"name": "512^2 matmul: lower + render", "unit": "ms", "tg": median_time(build, repeat) * 1e3},
            {"name": "512^2 matmul: lines of source", "unit": "lines", "tg": float(build().count("\n") + 1)}]


def time_ratio(row: dict[str, Any]) -> str:
    """tg's time over the reference's for one row (throughput units are inverted), or "" without a reference."""
    ref = next((k for k in ("torch", "numpy") if row.get(k)), None)
    if ref is None or not row["tg"]:
        return ""
    ratio = row["tg"] / row[ref] if row["unit"] in ("ms", "s", "us") else row[ref] / row["tg"]
    return f"{ratio:.2f}x {ref}"


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", action="append", help="device(s) to measure (default: numpy and llvm if present)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    args = parser.parse_args()
    from tg.core import registry

    devices = args.device or [d for d in ("numpy", "llvm") if registry.try_open(d) is not None]
    r = 3 if args.quick else 10
    size = 2**20 if args.quick else 16 * 2**20
    results: dict[str, list[dict[str, Any]]] = {}
    for device in devices:
        with tempfile.TemporaryDirectory() as cache:
            results[device] = [bench_matmul(device, 512 if args.quick else 1024, r), bench_conv(device, r, args.quick),
                               bench_conv(device, r, args.quick, shape="resnet"),
                               bench_conv(device, r, args.quick, stride=2, shape="resnet"),
                               bench_conv(device, r, args.quick, shape="late"),
                               bench_conv(device, r, args.quick, shape="depthwise"),
                               bench_conv(device, r, args.quick, stride=2, shape="depthwise"),
                               bench_chain(device, size, r),
                               bench_sum(device, size, r), bench_lookup(device, r), *bench_mlp_step(device, cache),
                               bench_linear_mlp(device, r),
                               *bench_cnn_step(device, r),
                               *bench_overhead(device, 200, r), *bench_codegen(device, r)]
    names = [row["name"] for row in results[devices[0]]]
    refs = [k for k in ("numpy", "torch", "tinygrad") if any(k in row for rows in results.values() for row in rows)]
    cols = [f"tg {d}" for d in devices] + refs
    print(f"{platform.machine()}, {os.cpu_count()} cores; medians of {r} runs after warm-up; one process")
    print(f"{'benchmark':<44} {'unit':>8}" + "".join(f" {c:>11}" for c in cols) + f" {'ratio':>16}")
    for i, name in enumerate(names):
        rows = [results[d][i] for d in devices]
        cells = [f" {row['tg']:11.2f}" for row in rows]
        cells += [f" {rows[-1][k]:11.2f}" if k in rows[-1] else f" {'':>11}" for k in refs]  # as the ratio reads them
        print(f"{name:<44} {rows[0]['unit']:>8}" + "".join(cells) + f" {time_ratio(rows[-1]):>16}")
    print(f"ratio: tg {devices[-1]}'s time over PyTorch's (NumPy's where PyTorch has no row); below 1 is faster")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "core.json").write_text(json.dumps({"time": time.time(), "machine": platform.machine(),
                                               "results": results}, indent=2))


if __name__ == "__main__":
    main()
