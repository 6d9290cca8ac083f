"""Soak: does memory stay flat over long runs? RSS at steps 10, 100 and N of an MLP training loop (eager, and
replayed by TinyJit) and of N calls of an imported ONNX model, per device.

    python bench/soak.py [--steps 1000] [--devices numpy,llvm,opencl] [--json out.json]
"""
from __future__ import annotations

import argparse
import gc
import io
import json
import resource
from collections.abc import Callable

import numpy as np

import tg.nn as nn
from tg.core import Tensor, TinyJit, manual_seed


def rss_mb() -> float:
    """Resident set size now (from /proc; ru_maxrss would only ever grow)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / (1 << 20)


def soak(step: Callable[[int], None], steps: int) -> dict[str, float]:
    marks: dict[str, float] = {}
    for i in range(1, steps + 1):
        step(i)
        if i in (10, 100, steps):
            gc.collect()
            marks[f"step {i}"] = round(rss_mb(), 1)
    return marks


def mlp_step(device: str, jit: bool) -> Callable[[int], None]:
    manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256, device=device), nn.ReLU(), nn.Linear(256, 10, device=device))
    opt = nn.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    xs = [Tensor(rng.standard_normal((64, 784)).astype(np.float32), device=device) for _ in range(4)]
    ys = [Tensor(rng.integers(0, 10, 64), device=device) for _ in range(4)]

    def train(x: Tensor, y: Tensor) -> Tensor:
        loss = nn.CrossEntropyLoss()(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    run = TinyJit(train) if jit else train
    def step(i: int) -> None:
        run(xs[i % 4], ys[i % 4]).item()

    return step


def onnx_call(device: str) -> Callable[[int], None]:
    import torch

    from tg.nn import onnx

    net = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.LayerNorm(64), torch.nn.Linear(64, 8))
    buf = io.BytesIO()
    torch.onnx.export(net.eval(), (torch.zeros(4, 32),), buf, input_names=["x"], output_names=["y"], dynamo=False)
    model = onnx.load(buf.getvalue(), device=device)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((4, 32)).astype(np.float32) for _ in range(4)]
    def call(i: int) -> None:
        model(x=inputs[i % 4])["y"].numpy()

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--devices", default="numpy,llvm,opencl")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    results = []
    for device in args.devices.split(","):
        makers: list[tuple[str, Callable[[str], Callable[[int], None]]]] = [
            ("MLP step eager", lambda d: mlp_step(d, False)), ("MLP step TinyJit", lambda d: mlp_step(d, True)),
            ("ONNX model call", onnx_call)]
        for name, make in makers:
            marks = soak(make(device), args.steps)
            row = {"device": device, "what": name, **marks}
            results.append(row)
            print(f"{device:8s} {name:18s} RSS MB " + "  ".join(f"{k}: {v}" for k, v in marks.items()), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
