"""ONNX signal processing: DFT and STFT (tg.core.spectral's DFT, real and imaginary parts in a trailing dim of 2,
as ONNX keeps them), the window generators and MelWeightMatrix."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from tg.core import Tensor
from tg.core.spectral import dft

from .ops import Context, _dtype, axis_index, op


@op("DFT")
def _dft(ctx: Context, x: Tensor, dft_length: Optional[Tensor] = None, axis_input: Optional[Tensor] = None,
         axis: int = 1, inverse: int = 0, onesided: int = 0) -> Tensor:
    a = int(axis_input.numpy().reshape(-1)[0]) if axis_input is not None else (axis if ctx.opset < 20 else -2)
    a = axis_index(a, x.ndim)
    if dft_length is not None:
        n = int(dft_length.numpy().reshape(-1)[0])
    else:
        n = 2 * (x.shape[a] - 1) if inverse and onesided else x.shape[a]
    return dft(x, n, a, bool(inverse), bool(onesided))


@op("STFT")
def _stft(ctx: Context, signal: Tensor, frame_step: Tensor, window: Optional[Tensor] = None,
          frame_length: Optional[Tensor] = None, onesided: int = 1) -> Tensor:
    step = int(frame_step.numpy().reshape(-1)[0])
    if frame_length is not None:
        n = int(frame_length.numpy().reshape(-1)[0])
    else:
        n = window.shape[0] if window is not None else signal.shape[1]
    frames = signal.unfold(1, n, step)  # (B, F, C, n)
    frames = frames.movedim(-1, 2)  # (B, F, n, C)
    if window is not None:
        frames = frames * window.cast(frames.dtype).reshape(1, 1, n, 1)
    return dft(frames, n, 2, False, bool(onesided))


def _window(ctx: Context, size: Tensor, periodic: int, output_datatype: int, coeffs: list[float]) -> Tensor:
    n = int(size.numpy().reshape(-1)[0])
    denom = n if periodic else n - 1
    k = np.arange(n)
    w = sum(c * np.cos(2 * math.pi * i * k / max(denom, 1)) for i, c in enumerate(coeffs))
    return Tensor(np.asarray(w, np.float64), dtype=_dtype(output_datatype), device=ctx.device)


@op("HannWindow")
def _hann(ctx: Context, size: Tensor, periodic: int = 1, output_datatype: int = 1) -> Tensor:
    return _window(ctx, size, periodic, output_datatype, [0.5, -0.5])


@op("HammingWindow")
def _hamming(ctx: Context, size: Tensor, periodic: int = 1, output_datatype: int = 1) -> Tensor:
    return _window(ctx, size, periodic, output_datatype, [25 / 46, -(1 - 25 / 46)])


@op("BlackmanWindow")
def _blackman(ctx: Context, size: Tensor, periodic: int = 1, output_datatype: int = 1) -> Tensor:
    return _window(ctx, size, periodic, output_datatype, [0.42, -0.5, 0.08])


@op("MelWeightMatrix")
def _mel(ctx: Context, num_mel_bins: Tensor, dft_length: Tensor, sample_rate: Tensor, lower_edge_hertz: Tensor,
         upper_edge_hertz: Tensor, output_datatype: int = 1) -> Tensor:
    """Triangular filters evenly spaced on the mel scale, mel(f) = 2595 log10(1 + f/700), peaks of 1."""
    bins, length, rate = (int(t.numpy().reshape(-1)[0]) for t in (num_mel_bins, dft_length, sample_rate))
    lo, hi = (float(t.numpy().reshape(-1)[0]) for t in (lower_edge_hertz, upper_edge_hertz))
    def to_mel(f: float) -> float:
        return 2595 * math.log10(1 + f / 700)

    mels = to_mel(lo) + np.arange(bins + 2) * (to_mel(hi) - to_mel(lo)) / (bins + 2)
    edges = (((length + 1) * (700 * (10 ** (mels / 2595) - 1))) // rate).astype(np.int64)
    out = np.zeros((length // 2 + 1, bins))
    for i in range(bins):
        left, center, right = edges[i], edges[i + 1], edges[i + 2]
        if center == left:
            out[center, i] = 1
        else:
            out[left:center + 1, i] = (np.arange(left, center + 1) - left) / (center - left)
        if right > center:
            out[center:right, i] = (right - np.arange(center, right)) / (right - center)
    return Tensor(out, dtype=_dtype(output_datatype), device=ctx.device)

