"""Convolution, pooling and joining ops against float64 NumPy references, with gradients."""
from __future__ import annotations

import numpy as np
import pytest

from tg.core.testing import check


def conv_ref(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, pad: int, dil: int,
             groups: int) -> np.ndarray:
    """Direct N-d convolution in float64 with sliding_window_view."""
    nd = w.ndim - 2
    x = np.pad(x, [(0, 0), (0, 0)] + [(pad, pad)] * nd)
    ks = w.shape[2:]
    span = tuple(dil * (k - 1) + 1 for k in ks)
    win = np.lib.stride_tricks.sliding_window_view(x, span, axis=tuple(range(2, 2 + nd)))
    win = win[(..., *[slice(None, None, stride)] * nd, *[slice(None, None, dil)] * nd)]
    n = x.shape[0]
    o, cg = w.shape[:2]
    win = win.reshape(n, groups, cg, *win.shape[2:])
    wg = w.reshape(groups, o // groups, cg, *ks)
    letters = "hijk"[:nd]
    kl = "pqrs"[:nd]
    out = np.einsum(f"ngc{letters}{kl},goc{kl}->ngo{letters}", win, wg).reshape(n, o, *win.shape[3:3 + nd])
    return out + b.reshape(1, o, *(1,) * nd) if b is not None else out


CONV2D = [((1, 2, 5, 6), (3, 2, 3, 3), 1, 0, 1, 1), ((2, 4, 6, 5), (4, 2, 3, 2), 2, 1, 1, 2),
          ((1, 3, 7, 7), (2, 3, 2, 2), 1, 2, 2, 1), ((2, 2, 4, 4), (2, 1, 1, 1), 1, 0, 1, 2)]


@pytest.mark.parametrize("xs,ws,stride,pad,dil,groups", CONV2D, ids=str)
def test_conv2d(xs: tuple, ws: tuple, stride: int, pad: int, dil: int, groups: int, device: str) -> None:
    check(lambda x, w, b: x.conv2d(w, b, stride=stride, padding=pad, dilation=dil, groups=groups),
          lambda x, w, b: conv_ref(x, w, b, stride, pad, dil, groups), [xs, ws, (ws[0],)], device)


def test_conv1d_and_same_padding(device: str) -> None:
    check(lambda x, w: x.conv1d(w, stride=2, padding=1), lambda x, w: conv_ref(x, w, None, 2, 1, 1, 1),
          [(2, 3, 9), (4, 3, 3)], device)
    check(lambda x, w: x.conv2d(w, padding="same"), lambda x, w: conv_ref(x, w, None, 1, 1, 1, 1),
          [(1, 2, 5, 5), (2, 2, 3, 3)], device)


def pool_ref(x: np.ndarray, k: int, s: int, p: int, fn: str) -> np.ndarray:
    fill = -np.inf if fn == "max" else 0.0
    xp = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(p, p)] * 2, constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(-2, -1))[..., ::s, ::s, :, :]
    return win.max((-2, -1)) if fn == "max" else win.mean((-2, -1))


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 1, 0)])
def test_pools(k: int, s: int, p: int, device: str) -> None:
    check(lambda x: x.max_pool2d(k, s, p), lambda x: pool_ref(x, k, s, p, "max"), [(2, 3, 6, 7)], device)
    check(lambda x: x.avg_pool2d(k, s, p), lambda x: pool_ref(x, k, s, p, "avg"), [(2, 3, 6, 7)], device)


def test_cat_stack_split_chunk_unfold(device: str) -> None:
    check(lambda a, b: a.cat(b, dim=1), lambda a, b: np.concatenate([a, b], 1), [(2, 3), (2, 4)], device)
    check(lambda a, b: a.stack(b, dim=-1), lambda a, b: np.stack([a, b], -1), [(2, 3), (2, 3)], device)
    check(lambda a: a.split(2, dim=1)[1] * 2, lambda a: a[:, 2:4] * 2, [(3, 5)], device)
    check(lambda a: a.split([1, 4], dim=1)[1].exp(), lambda a: np.exp(a[:, 1:]), [(3, 5)], device)
    check(lambda a: a.chunk(3, dim=0)[2], lambda a: a[4:], [(5, 2)], device)
    check(lambda a: a.unfold(1, 3, 2), lambda a: np.lib.stride_tricks.sliding_window_view(a, 3, axis=1)[:, ::2],
          [(2, 7)], device)
