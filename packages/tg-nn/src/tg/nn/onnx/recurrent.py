"""ONNX recurrent and stateful sequence ops: RNN, GRU, LSTM, LinearAttention, CausalConvWithState.

The time loop is unrolled into tensor ops (sequence lengths are static), so the result is lazy and
differentiable like any other graph."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import numpy as np

from tg.core import Tensor
from tg.core import dtype as dt

from .ops import Context, OnnxError, op

Activation = Callable[[Tensor], Tensor]


def _activation(name: str, alpha: Optional[float], beta: Optional[float]) -> Activation:
    a = {"LeakyRelu": 0.01, "ThresholdedRelu": 1.0, "Elu": 1.0, "HardSigmoid": 0.2, "Affine": 1.0,
         "ScaledTanh": 1.0}.get(name, 0.0) if alpha is None else alpha
    b = {"HardSigmoid": 0.5, "ScaledTanh": 1.0}.get(name, 0.0) if beta is None else beta
    table: dict[str, Activation] = {
        "Sigmoid": lambda x: x.sigmoid(), "Tanh": lambda x: x.tanh(), "Relu": lambda x: x.relu(),
        "LeakyRelu": lambda x: x.leaky_relu(a), "ThresholdedRelu": lambda x: (x > a).if_else(x, 0.0),
        "Elu": lambda x: x.elu(a), "Softsign": lambda x: x.softsign(), "Softplus": lambda x: x.softplus(),
        "HardSigmoid": lambda x: (x * a + b).clamp(0.0, 1.0), "Affine": lambda x: x * a + b,
        "ScaledTanh": lambda x: (x * b).tanh() * a,
    }
    if name not in table:
        raise OnnxError(f"onnx: recurrent activation {name!r} is not supported ({sorted(table)} are)")
    return table[name]


def _activations(attrs: dict[str, Any], defaults: list[str], num_dir: int) -> list[list[Activation]]:
    names = attrs.get("activations") or defaults * num_dir
    alphas, betas = attrs.get("activation_alpha") or [], attrs.get("activation_beta") or []
    fns = [_activation(n, alphas[i] if i < len(alphas) else None, betas[i] if i < len(betas) else None)
           for i, n in enumerate(names)]
    k = len(defaults)
    return [fns[d * k:(d + 1) * k] for d in range(num_dir)]


class _Setup:
    """What every recurrent op reads the same way: layout, directions, lengths, initial state."""

    def __init__(self, x: Tensor, w: Tensor, attrs: dict[str, Any], seq_lens: Optional[Tensor]):
        self.layout = attrs.get("layout", 0)
        self.x = x.transpose(0, 1) if self.layout else x  # (T, B, I)
        self.direction = attrs.get("direction", "forward")
        self.num_dir = 2 if self.direction == "bidirectional" else 1
        self.hidden = attrs.get("hidden_size") or w.shape[1] // {"RNN": 1, "GRU": 3, "LSTM": 4}[attrs["_kind"]]
        self.clip = attrs.get("clip")
        self.steps, self.batch = self.x.shape[0], self.x.shape[1]
        self.lens = seq_lens.cast(dt.int64).reshape(self.batch, 1) if seq_lens is not None else None

    def initial(self, t: Optional[Tensor], d: int) -> Tensor:
        if t is None:
            return Tensor.zeros(self.batch, self.hidden, dtype=self.x.dtype, device=self.x.device)
        return (t.transpose(0, 1) if self.layout else t)[d]

    def order(self, d: int) -> list[int]:
        backward = self.direction == "reverse" or d == 1
        return list(range(self.steps))[::-1] if backward else list(range(self.steps))

    def valid(self, t: int) -> Optional[Tensor]:
        return None if self.lens is None else self.lens > t

    def gate(self, v: Tensor) -> Tensor:
        return v.clamp(-self.clip, self.clip) if self.clip is not None else v

    def outputs(self, ys: list[list[Tensor]], finals: list[list[Tensor]], n_out: int) -> tuple[Tensor, ...]:
        y = Tensor.stack(*[ys[d][0].stack(*ys[d][1:], dim=0) if self.steps > 1 else ys[d][0].unsqueeze(0)
                           for d in range(self.num_dir)], dim=1)  # (T, D, B, H)
        states = [Tensor.stack(*[finals[d][k] for d in range(self.num_dir)], dim=0) for k in range(len(finals[0]))]
        if self.layout:
            y = y.permute(2, 0, 1, 3)
            states = [s.transpose(0, 1) for s in states]
        return (y, *states)[:max(n_out, 1)]


def _step_keep(valid: Optional[Tensor], new: Tensor, old: Tensor) -> Tensor:
    return new if valid is None else valid.if_else(new, old)


def _split_bias(b: Optional[Tensor], d: int, n: int) -> tuple[Optional[Tensor], Optional[Tensor]]:
    if b is None:
        return None, None
    return b[d, :n], b[d, n:]


def _lin(x: Tensor, w: Tensor, bias: Optional[Tensor]) -> Tensor:
    out = x @ w.T
    return out + bias if bias is not None else out


def _run(ctx: Context, kind: str, x: Tensor, w: Tensor, r: Tensor, b: Optional[Tensor],
         seq_lens: Optional[Tensor], h0: Optional[Tensor], c0: Optional[Tensor], p: Optional[Tensor],
         attrs: dict[str, Any]) -> tuple[Tensor, ...]:
    s = _Setup(x, w, {**attrs, "_kind": kind}, seq_lens)
    defaults = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}[kind]
    acts = _activations(attrs, defaults, s.num_dir)
    hs, n = s.hidden, w.shape[1]
    ys: list[list[Tensor]] = []
    finals: list[list[Tensor]] = []
    for d in range(s.num_dir):
        wb, rb = _split_bias(b, d, n)
        h, c = s.initial(h0, d), s.initial(c0, d)
        out: list[Optional[Tensor]] = [None] * s.steps
        for t in s.order(d):
            xw = _lin(s.x[t], w[d], wb)
            valid = s.valid(t)
            if kind == "RNN":
                new_h = acts[d][0](s.gate(xw + _lin(h, r[d], rb)))
            elif kind == "GRU":
                new_h = _gru_cell(s, acts[d], xw, h, r[d], rb, hs, attrs.get("linear_before_reset", 0))
            else:
                new_h, new_c = _lstm_cell(s, acts[d], xw, h, c, r[d], rb, p[d] if p is not None else None, hs,
                                          attrs.get("input_forget", 0))
                c = _step_keep(valid, new_c, c)
            h = _step_keep(valid, new_h, h)
            out[t] = new_h if valid is None else valid.if_else(new_h, 0.0)
        ys.append([o for o in out if o is not None])
        finals.append([h, c] if kind == "LSTM" else [h])
    return s.outputs(ys, finals, len(ctx.node.output))


def _gru_cell(s: _Setup, acts: list[Activation], xw: Tensor, h: Tensor, r: Tensor, rb: Optional[Tensor], hs: int,
              linear_before_reset: int) -> Tensor:
    f, g = acts
    rz, rr, rh = r[:hs], r[hs:2 * hs], r[2 * hs:]
    bz, br, bh = (rb[:hs], rb[hs:2 * hs], rb[2 * hs:]) if rb is not None else (None, None, None)
    z = f(s.gate(xw[:, :hs] + _lin(h, rz, bz)))
    reset = f(s.gate(xw[:, hs:2 * hs] + _lin(h, rr, br)))
    if linear_before_reset:
        cand = g(s.gate(xw[:, 2 * hs:] + reset * _lin(h, rh, bh)))
    else:
        cand = g(s.gate(xw[:, 2 * hs:] + _lin(reset * h, rh, bh)))
    return (1 - z) * cand + z * h


def _lstm_cell(s: _Setup, acts: list[Activation], xw: Tensor, h: Tensor, c: Tensor, r: Tensor, rb: Optional[Tensor],
               p: Optional[Tensor], hs: int, input_forget: int) -> tuple[Tensor, Tensor]:
    f, g, hact = acts
    pre = xw + _lin(h, r, rb)  # gates in the order i, o, f, c
    pi, po, pf = (p[:hs], p[hs:2 * hs], p[2 * hs:]) if p is not None else (None, None, None)
    i = f(s.gate(pre[:, :hs] + (pi * c if pi is not None else 0)))
    fg = 1 - i if input_forget else f(s.gate(pre[:, 2 * hs:3 * hs] + (pf * c if pf is not None else 0)))
    cand = g(s.gate(pre[:, 3 * hs:]))
    new_c = fg * c + i * cand
    o = f(s.gate(pre[:, hs:2 * hs] + (po * new_c if po is not None else 0)))
    return o * hact(new_c), new_c


@op("RNN")
def _rnn(ctx: Context, x: Tensor, w: Tensor, r: Tensor, b: Optional[Tensor] = None,
         sequence_lens: Optional[Tensor] = None, initial_h: Optional[Tensor] = None,
         **attrs: Any) -> tuple[Tensor, ...]:
    return _run(ctx, "RNN", x, w, r, b, sequence_lens, initial_h, None, None, attrs)


@op("GRU")
def _gru(ctx: Context, x: Tensor, w: Tensor, r: Tensor, b: Optional[Tensor] = None,
         sequence_lens: Optional[Tensor] = None, initial_h: Optional[Tensor] = None,
         **attrs: Any) -> tuple[Tensor, ...]:
    return _run(ctx, "GRU", x, w, r, b, sequence_lens, initial_h, None, None, attrs)


@op("LSTM")
def _lstm(ctx: Context, x: Tensor, w: Tensor, r: Tensor, b: Optional[Tensor] = None,
          sequence_lens: Optional[Tensor] = None, initial_h: Optional[Tensor] = None,
          initial_c: Optional[Tensor] = None, p: Optional[Tensor] = None, **attrs: Any) -> tuple[Tensor, ...]:
    return _run(ctx, "LSTM", x, w, r, b, sequence_lens, initial_h, initial_c, p, attrs)


# ---- state-space / linear-attention building blocks --------------------------------------------------------
@op("CausalConvWithState")
def _causal_conv(ctx: Context, x: Tensor, w: Tensor, bias: Optional[Tensor] = None,
                 past_state: Optional[Tensor] = None, activation: str = "none") -> tuple[Tensor, Tensor]:
    k = w.shape[2]
    past = past_state if past_state is not None else Tensor.zeros(x.shape[0], x.shape[1], k - 1, dtype=x.dtype,
                                                                  device=x.device)
    full = past.cat(x, dim=2) if k > 1 else x
    y = full.conv1d(w, bias, groups=x.shape[1])
    if activation in ("silu", "swish"):  # in float32, rounded once, like the reference
        wide = y.cast(dt.float32)
        y = (wide * wide.sigmoid()).cast(y.dtype)
    present = full.narrow(2, full.shape[2] - (k - 1), k - 1) if k > 1 else full.narrow(2, 0, 0)
    return y, present


def _heads(t: Tensor, n: int) -> Tensor:
    b, length, hd = t.shape
    return t.reshape(b, length, n, hd // n).transpose(1, 2)  # (B, H, T, D)


@op("LinearAttention")
def _linear_attention(ctx: Context, q: Tensor, k: Tensor, v: Tensor, past_state: Optional[Tensor] = None,
                      decay: Optional[Tensor] = None, beta: Optional[Tensor] = None, q_num_heads: int = 0,
                      kv_num_heads: int = 0, scale: float = 0.0, update_rule: str = "gated_delta",
                      chunk_size: int = 64) -> tuple[Tensor, Tensor]:
    """The recurrence S_t = decay * S + k (x) v (with the delta rule's correction), read as o_t = scale q_t S_t."""
    hq, hk = q_num_heads, kv_num_heads
    if not hq or not hk or hq % hk:
        raise OnnxError(f"onnx: LinearAttention needs q_num_heads ({hq}) to be a positive multiple of "
                        f"kv_num_heads ({hk})")
    out_dtype = q.dtype
    b, steps = q.shape[0], q.shape[1]
    q4, k4, v4 = (_heads(t.cast(dt.float32), n) for t, n in ((q, hq), (k, hk), (v, hk)))
    dk, dv = q4.shape[3], v4.shape[3]
    gating, delta = update_rule in ("gated", "gated_delta"), update_rule in ("delta", "gated_delta")
    g4 = None
    if decay is not None:
        g4 = decay.cast(dt.float32).reshape(b, steps, hk, -1).transpose(1, 2)  # (B, Hk, T, 1 or dk)
    b4 = beta.cast(dt.float32).reshape(b, steps, beta.shape[-1], 1).transpose(1, 2) if beta is not None else None
    state = past_state.cast(dt.float32) if past_state is not None else Tensor.zeros(b, hk, dk, dv, device=q.device)
    sc = scale or 1 / float(np.sqrt(dk))
    outs = []
    for t in range(steps):
        qt, kt, vt = q4[:, :, t], k4[:, :, t], v4[:, :, t]
        if gating and g4 is not None:
            state = state * g4[:, :, t].exp().unsqueeze(-1)
        if delta and b4 is not None:
            retrieved = (state * kt.unsqueeze(-1)).sum(2)  # S^T k
            vt = b4[:, :, t] * (vt - retrieved)
        state = state + kt.unsqueeze(-1) * vt.unsqueeze(-2)
        read = state if hq == hk else state.unsqueeze(2).expand(b, hk, hq // hk, dk, dv).reshape(b, hq, dk, dv)
        outs.append((qt.unsqueeze(-1) * read).sum(2) * sc)  # (B, Hq, dv)
    out = Tensor.stack(*outs, dim=2) if len(outs) > 1 else outs[0].unsqueeze(2)
    y = out.transpose(1, 2).reshape(b, steps, hq * dv).cast(out_dtype)
    return y, state.cast(past_state.dtype if past_state is not None else out_dtype)
