"""ONNX training ops (domain ai.onnx.preview.training): one optimizer step of Adagrad, Momentum or Adam
over any number of tensors, each its own elementwise update exactly as the spec's pseudo code."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tg.core import Tensor

from .ops import Context, op

DOMAIN = "ai.onnx.preview.training"


def _groups(ctx: Context, tensors: tuple[Tensor, ...], per: int) -> list[tuple[Tensor, ...]]:
    n = len(tensors) // per
    return [tuple(tensors[k * n + i] for k in range(per)) for i in range(n)]


def _ordered(results: Sequence[tuple[Tensor, ...]]) -> tuple[Tensor, ...]:
    """Outputs come grouped by kind: all new X, then all new first moments, and so on."""
    return tuple(r[k] for k in range(len(results[0])) for r in results)


@op("Adagrad", domain=DOMAIN)
def _adagrad(ctx: Context, r: Tensor, t: Tensor, *tensors: Tensor, decay_factor: float = 0.0, epsilon: float = 0.0,
             norm_coefficient: float = 0.0) -> tuple[Tensor, ...]:
    rate = r / (t.cast(r.dtype) * decay_factor + 1)
    out = []
    for x, g, h in _groups(ctx, tensors, 3):
        reg = x * norm_coefficient + g
        h_new = h + reg * reg
        out.append((x - rate * reg / (h_new.sqrt() + epsilon), h_new))
    return _ordered(out)


@op("Momentum", domain=DOMAIN)
def _momentum(ctx: Context, r: Tensor, t: Tensor, *tensors: Tensor, alpha: float, beta: float, mode: str,
              norm_coefficient: float) -> tuple[Tensor, ...]:
    first = (t.cast(r.dtype) > 0).if_else(beta, 1.0)  # beta is 1 on the first step
    out = []
    for x, g, v in _groups(ctx, tensors, 3):
        reg = x * norm_coefficient + g
        v_new = v * alpha + first * reg
        step = reg + v_new * alpha if mode == "nesterov" else v_new
        out.append((x - r * step, v_new))
    return _ordered(out)


@op("Adam", domain=DOMAIN)
def _adam(ctx: Context, r: Tensor, t: Tensor, *tensors: Tensor, alpha: float = 0.9, beta: float = 0.999,
          epsilon: float = 0.0, norm_coefficient: float = 0.0, norm_coefficient_post: float = 0.0,
          **attrs: Any) -> tuple[Tensor, ...]:
    tt = t.cast(r.dtype)
    corrected = r * (1 - Tensor(beta, dtype=r.dtype, device=r.device) ** tt).sqrt() / \
        (1 - Tensor(alpha, dtype=r.dtype, device=r.device) ** tt)
    rate = (tt > 0).if_else(corrected, r)
    out = []
    for x, g, v, h in _groups(ctx, tensors, 4):
        reg = x * norm_coefficient + g
        v_new = v * alpha + reg * (1 - alpha)
        h_new = h * beta + reg * reg * (1 - beta)
        x_new = x - rate * v_new / (h_new.sqrt() + epsilon)
        out.append((x_new * (1 - norm_coefficient_post), v_new, h_new))
    return _ordered(out)
