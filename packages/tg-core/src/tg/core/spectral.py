"""Fourier transforms as contractions: the DFT along one dim (real and imaginary parts in a trailing dim of 2, as
ONNX keeps them; tg has no complex dtype), torch's stft on top of it, and the window functions.

A DFT here is a product with constant cosine/sine matrices, computed in float64 where the device stores it (O(n^2)
sums lose float32 digits), so it runs on every device and is differentiable; O(n^2) is fine for the frame sizes of
audio front ends."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

from . import dtype as dt
from .device import widest_float
from .dtype import DType

if TYPE_CHECKING:
    from .tensor import Tensor


def _parts(x: Tensor) -> tuple[Tensor, Optional[Tensor]]:
    """Real and imaginary parts of a signal whose last dim is 1 (real) or 2 (complex)."""
    if x.shape[-1] == 1:
        return x.squeeze(-1), None
    return x[..., 0], x[..., 1]


def _fit(t: Tensor, axis: int, n: int) -> Tensor:
    """Zero-pad or truncate t along axis to length n."""
    have = t.shape[axis]
    if have == n:
        return t
    if have > n:
        return t.narrow(axis, 0, n)
    return t._pad_dims([(0, n - have) if k == axis else (0, 0) for k in range(t.ndim)])


def _along(t: Tensor, axis: int, m: np.ndarray) -> Tensor:
    """Contract t's `axis` with the matrix m (in, out)."""
    return (t.movedim(axis, -1) @ t.tensor_class(m, dtype=t.dtype, device=t.device)).movedim(-1, axis)


def dft(x: Tensor, length: int, axis: int, inverse: bool = False, onesided: bool = False) -> Tensor:
    """The DFT of x (..., 1 or 2) along `axis` (of x without its last dim), zero-padded or cut to `length`: (..., 2)
    real and imaginary parts (onesided: the first length // 2 + 1 bins; inverse and onesided: the real signal of a
    half spectrum, (..., 1)). Computed in float64 where the device has it, returned in x's dtype."""
    return _dft_wide(x.cast(widest_float(x.device)), length, axis, inverse, onesided).cast(x.dtype)


def _dft_wide(x: Tensor, length: int, axis: int, inverse: bool, onesided: bool) -> Tensor:
    xr, xi = _parts(x)
    a = axis % xr.ndim
    if inverse and onesided:  # irfft: rebuild the Hermitian spectrum from its first half, return the real part
        half = length // 2 + 1
        xr, xi = _fit(xr, a, half), _fit(xi, a, half) if xi is not None else None
        ext_r, ext_i = np.zeros((half, length)), np.zeros((half, length))
        for k in range(length):
            src = k if k < half else length - k
            ext_r[src, k] = 1
            ext_i[src, k] = 1 if k < half else -1
        xr, xi = _along(xr, a, ext_r), (_along(xi, a, ext_i) if xi is not None else None)
    else:
        xr, xi = _fit(xr, a, length), (_fit(xi, a, length) if xi is not None else None)
    k_out = length // 2 + 1 if onesided and not inverse else length
    angle = 2 * math.pi * np.outer(np.arange(length), np.arange(k_out)) / length
    cos, sin = np.cos(angle), np.sin(angle)
    sign = 1.0 if inverse else -1.0
    real = _along(xr, a, cos) + (_along(xi, a, -sign * sin) if xi is not None else 0)
    imag = _along(xr, a, sign * sin) + (_along(xi, a, cos) if xi is not None else 0)
    if inverse:
        real, imag = real / length, imag / length
    if inverse and onesided:
        return real.unsqueeze(-1)
    return real.stack(imag, dim=-1) if not isinstance(imag, int) else real.stack(real.zeros_like(), dim=-1)


def stft(x: Tensor, n_fft: int, hop_length: Optional[int] = None, win_length: Optional[int] = None,
         window: Optional[Tensor] = None, center: bool = True, pad_mode: str = "reflect", normalized: bool = False,
         onesided: Optional[bool] = None, return_complex: Optional[bool] = None) -> Tensor:
    """torch.stft of a real signal (L,) or (B, L): (B?, n_fft // 2 + 1, frames, 2), the real and imaginary parts in
    the last dim (torch's return_complex=False layout: tg has no complex dtype). Frames `hop_length` apart (n_fft // 4
    by default), the window (ones by default) centred in n_fft, the signal reflect-padded by n_fft // 2 when
    `center`, bins scaled by n_fft ** -0.5 when `normalized`, all n_fft bins unless `onesided`."""
    if return_complex is not False:
        raise RuntimeError("stft: tg has no complex dtype; pass return_complex=False for real and imaginary parts in "
                           "a trailing dim of 2 (the magnitude is then out.pow(2).sum(-1).sqrt())")
    if x.ndim not in (1, 2):
        raise RuntimeError(f"stft: expected a 1-D or 2-D (batch, length) signal, got shape {tuple(x.shape)}")
    hop = hop_length if hop_length is not None else n_fft // 4
    wl = win_length if win_length is not None else n_fft
    if not 0 < wl <= n_fft or hop <= 0:
        raise RuntimeError(f"stft: need 0 < win_length ({wl}) <= n_fft ({n_fft}) and hop_length ({hop}) > 0")
    signal = (x if x.ndim == 2 else x.unsqueeze(0))._float()
    w = window.cast(signal.dtype) if window is not None else signal.tensor_class.ones(wl, dtype=signal.dtype,
                                                                                      device=signal.device)
    if tuple(w.shape) != (wl,):
        raise RuntimeError(f"stft: window has shape {tuple(w.shape)}, expected ({wl},) (win_length)")
    left = (n_fft - wl) // 2
    w = w._pad_dims([(left, n_fft - wl - left)])
    if center:
        signal = signal.unsqueeze(1).pad((n_fft // 2, n_fft // 2), mode=pad_mode).squeeze(1)
    if signal.shape[-1] < n_fft:
        raise RuntimeError(f"stft: the signal ({signal.shape[-1]} samples after padding) is shorter than n_fft {n_fft}")
    frames = signal.unfold(-1, n_fft, hop) * w  # (B, F, n_fft)
    spec = dft(frames.unsqueeze(-1), n_fft, 2, onesided=True if onesided is None else onesided)  # (B, F, bins, 2)
    out = spec.transpose(1, 2) * (n_fft ** -0.5) if normalized else spec.transpose(1, 2)
    return out if x.ndim == 2 else out.squeeze(0)


def istft(x: Tensor, n_fft: int, hop_length: Optional[int] = None, win_length: Optional[int] = None,
          window: Optional[Tensor] = None, center: bool = True, normalized: bool = False,
          onesided: Optional[bool] = None, length: Optional[int] = None, return_complex: bool = False) -> Tensor:
    """torch.istft of stft's output (B?, bins, frames, 2): each frame's inverse DFT, windowed, overlap-added and
    divided by the summed squared window (which must not vanish inside the signal: torch's NOLA check), then cut
    to `length` (centre padding removed)."""
    if return_complex:
        raise RuntimeError("istft: tg has no complex dtype; return_complex=True is not supported")
    if x.ndim not in (3, 4) or x.shape[-1] != 2:
        raise RuntimeError(f"istft: expected (bins, frames, 2) or (batch, bins, frames, 2), got {tuple(x.shape)}")
    spec = (x if x.ndim == 4 else x.unsqueeze(0))._float()
    batch, bins, count = spec.shape[:3]
    hop = hop_length if hop_length is not None else n_fft // 4
    wl = win_length if win_length is not None else n_fft
    one_side = onesided if onesided is not None else bins != n_fft
    if bins != (n_fft // 2 + 1 if one_side else n_fft):
        raise RuntimeError(f"istft: {bins} frequency bins do not fit n_fft {n_fft} (onesided={one_side})")
    if normalized:
        spec = spec * math.sqrt(n_fft)
    frames = dft(spec.transpose(1, 2), n_fft, 2, inverse=True, onesided=one_side)[..., 0]  # (B, frames, n_fft)
    w = window.numpy().astype(np.float64) if window is not None else np.ones(wl)
    left = (n_fft - wl) // 2
    w = np.pad(w, (left, n_fft - wl - left))
    frames = frames * frames.tensor_class(w, dtype=frames.dtype, device=frames.device)
    total = n_fft + hop * (count - 1)
    from .functional import fold

    signal = fold(frames.transpose(1, 2), (1, total), (1, n_fft), stride=(1, hop)).reshape(batch, total)
    envelope = np.zeros(total)
    for m in range(count):
        envelope[m * hop:m * hop + n_fft] += w * w
    start = n_fft // 2 if center else 0
    end = start + length if length is not None else (total - n_fft // 2 if center else total)
    kept = envelope[start:min(end, total)]
    if (np.abs(kept) < 1e-11).any():
        raise RuntimeError("istft: the window's overlap-add vanishes inside the signal (torch's NOLA condition); "
                           "use a window and hop_length whose squared windows overlap everywhere")
    out = signal[:, start:min(end, total)] / signal.tensor_class(kept, dtype=signal.dtype, device=signal.device)
    if end > total:  # a longer `length` than the frames cover: zeros after (torch pads too)
        out = out._pad_dims([(0, 0), (0, end - total)])
    return out if x.ndim == 4 else out.squeeze(0)


def _cosine_window(n: int, periodic: bool, coeffs: tuple[float, ...]) -> np.ndarray:
    if n <= 1:  # torch: a window of one sample is [1]
        return np.ones(n)
    denom = n if periodic else n - 1
    k = np.arange(n)
    return sum(c * np.cos(2 * math.pi * i * k / max(denom, 1)) for i, c in enumerate(coeffs)) * np.ones(n)


def _window(values: np.ndarray, dtype: Optional[Union[DType, str]], device: Optional[str]) -> Tensor:
    from .tensor import Tensor

    return Tensor(values, dtype=dt.to_dtype(dtype or dt.default_float), device=device)


def hann_window(window_length: int, periodic: bool = True, dtype: Optional[Union[DType, str]] = None,
                device: Optional[str] = None) -> Tensor:
    """0.5 - 0.5 cos(2 pi k / N) (N the length when periodic, the length - 1 otherwise), as torch.hann_window."""
    return _window(_cosine_window(window_length, periodic, (0.5, -0.5)), dtype, device)


def hamming_window(window_length: int, periodic: bool = True, alpha: float = 0.54, beta: float = 0.46,
                   dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None) -> Tensor:
    return _window(_cosine_window(window_length, periodic, (alpha, -beta)), dtype, device)


def blackman_window(window_length: int, periodic: bool = True, dtype: Optional[Union[DType, str]] = None,
                    device: Optional[str] = None) -> Tensor:
    return _window(_cosine_window(window_length, periodic, (0.42, -0.5, 0.08)), dtype, device)


def bartlett_window(window_length: int, periodic: bool = True, dtype: Optional[Union[DType, str]] = None,
                    device: Optional[str] = None) -> Tensor:
    """The triangle 1 - |2k / N - 1|, as torch.bartlett_window."""
    n = window_length if periodic else window_length - 1
    k = np.arange(window_length)
    return _window(1 - np.abs(2 * k / max(n, 1) - 1) if window_length > 1 else np.ones(window_length), dtype, device)
