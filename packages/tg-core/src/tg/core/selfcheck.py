"""The check a device must pass before the registry makes it the default: a small computation with tensors."""
from __future__ import annotations

from typing import Optional

from .tensor import Tensor


def self_check(name: str) -> Optional[str]:
    """None if device `name` computes a small elementwise chain and a sum right, else what it got."""
    try:
        x = Tensor([1.0, 2.0, 3.0], device=name)
        got = ((x * 2 + 1).tolist(), (x * x).sum().item())
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return None if got == ([3.0, 5.0, 7.0], 14.0) else f"[1, 2, 3] * 2 + 1 and sum(x * x) gave {got}"
