"""Train a small MLP with tg.core on a synthetic 3-class spiral, on any installed device.

    python examples/spiral_mlp.py [--device numpy] [--epochs 30]

Uses nothing but tg.core: Tensor ops, autograd and a hand-written SGD-with-momentum update.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from tg.core import Tensor, default_device, manual_seed, no_grad


def spiral(n_per_class: int, classes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The classic interleaved-spirals toy problem: not linearly separable."""
    xs, ys = [], []
    for c in range(classes):
        r = np.linspace(0.05, 1, n_per_class)
        t = np.linspace(c * 4.2, (c + 1) * 4.2, n_per_class) + rng.normal(0, 0.2, n_per_class)
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], 1))
        ys.append(np.full(n_per_class, c))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="device name (default: tg's default device)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    device = args.device or default_device()
    manual_seed(0)
    rng = np.random.default_rng(0)
    x_all, y_all = spiral(400, 3, rng)
    order = rng.permutation(len(x_all))
    x_all, y_all = x_all[order], y_all[order]
    split = int(0.8 * len(x_all))
    sizes = [(2, 64), (64,), (64, 64), (64,), (64, 3), (3,)]
    params = [Tensor(rng.normal(0, np.sqrt(2 / s[0]), s).astype(np.float32) if len(s) == 2 else
                     np.zeros(s, np.float32), device=device, requires_grad=True) for s in sizes]
    velocity = [Tensor.zeros(p.shape, device=device) for p in params]

    def forward(x: Tensor) -> Tensor:
        w1, b1, w2, b2, w3, b3 = params
        return ((x @ w1 + b1).relu() @ w2 + b2).relu() @ w3 + b3

    print(f"training a 2-64-64-3 MLP on {split} spiral points on device {device!r}")
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        perm = rng.permutation(split)
        total = 0.0
        for i in range(0, split - args.batch + 1, args.batch):
            idx = perm[i:i + args.batch]
            x, y = Tensor(x_all[idx], device=device), Tensor(y_all[idx], device=device)
            onehot = (Tensor.arange(3, device=device).reshape(1, 3) == y.reshape(-1, 1)).float()
            loss = -(forward(x).log_softmax(1) * onehot).sum(1).mean()
            loss.backward()
            with no_grad():
                for k, p in enumerate(params):
                    velocity[k] = (velocity[k] * 0.9 + p.grad).realize()
                    p.node, p.grad = (p - 0.05 * velocity[k]).realize().node, None
            total += loss.item()
        if epoch % 10 == 0 or epoch == 1:
            steps = split // args.batch
            print(f"epoch {epoch:3d}  loss {total / steps:.4f}  {time.perf_counter() - start:6.1f} s")
    with no_grad():
        pred = forward(Tensor(x_all[split:], device=device)).numpy().argmax(1)
    accuracy = float((pred == y_all[split:]).mean())
    print(f"test accuracy {accuracy:.3f} on {len(pred)} held-out points")
    if accuracy < 0.9:
        raise SystemExit("demo failed: accuracy below 0.9")


if __name__ == "__main__":
    main()
