"""Weights on disk in safetensors format (no pickle): save, load, and PyTorch state dicts."""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
from safetensors.numpy import load_file, save_file

from tg.core import Tensor

from .module import Module

PathLike = Union[str, Path]


def save(module_or_state: Union[Module, dict[str, Tensor]], path: PathLike) -> None:
    """Write a module's state_dict (or a dict of tensors) to a .safetensors file."""
    state = module_or_state.state_dict() if isinstance(module_or_state, Module) else module_or_state
    arrays = {k: np.asarray(v.numpy(), order="C") for k, v in state.items()}  # (ascontiguousarray makes 0-d 1-d)
    save_file(arrays, str(path))


def load(path: PathLike, module: Module | None = None, strict: bool = True,
         device: str | None = None) -> dict[str, Tensor]:
    """Read a .safetensors file (ours, or a PyTorch state_dict saved with safetensors.torch.save_file);
    load it into `module` when given. Returns the tensors by name."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"load: no such file {p}")
    try:
        arrays = load_file(str(p))
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise ValueError(f"load: {p} is not a valid safetensors file ({e})") from e
    if module is not None:
        module.load_state_dict(arrays, strict=strict)
    return {k: Tensor(v, device=device) for k, v in arrays.items()}
