"""Recurrent layers with torch's parameter names (weight_ih_l0, ...): LSTM, GRU and RNN, multi-layer, and their
single-step cells (LSTMCell, GRUCell, RNNCell).

Time steps are unrolled in Python: each step's small matmuls join one lazy graph that the scheduler
fuses, and autodiff runs back through time over it.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Optional

from tg.core import Tensor

from .module import Module, Parameter


def lstm_step(x: Tensor, h: Tensor, c: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Optional[Tensor],
              b_hh: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    """One LSTM time step: the new (h, c)."""
    i, f, g, o = (x.linear(w_ih, b_ih) + h.linear(w_hh, b_hh)).chunk(4, dim=-1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


def gru_step(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Optional[Tensor],
             b_hh: Optional[Tensor]) -> Tensor:
    """One GRU time step: the new h."""
    xr, xz, xn = x.linear(w_ih, b_ih).chunk(3, dim=-1)
    hr, hz, hn = h.linear(w_hh, b_hh).chunk(3, dim=-1)
    r, z = (xr + hr).sigmoid(), (xz + hz).sigmoid()
    return (1 - z) * (xn + r * hn).tanh() + z * h


def rnn_step(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Optional[Tensor], b_hh: Optional[Tensor],
             nonlinearity: str = "tanh") -> Tensor:
    """One Elman RNN time step: the new h."""
    pre = x.linear(w_ih, b_ih) + h.linear(w_hh, b_hh)
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


def _nonlinearity(name: str, value: str) -> str:
    if value not in ("tanh", "relu"):
        raise ValueError(f"{name}: nonlinearity must be 'tanh' or 'relu', got {value!r}")
    return value


class _RNNBase(Module):
    gates = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: Optional[str] = None):
        super().__init__()
        if bidirectional:
            raise NotImplementedError(f"{type(self).__name__}: bidirectional=True is not supported yet")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        bound = 1 / math.sqrt(hidden_size)
        for layer in range(num_layers):
            fan_in = input_size if layer == 0 else hidden_size
            g = self.gates * hidden_size
            setattr(self, f"weight_ih_l{layer}", Parameter(Tensor.uniform(-bound, bound, (g, fan_in), device=device)))
            setattr(self, f"weight_hh_l{layer}",
                    Parameter(Tensor.uniform(-bound, bound, (g, hidden_size), device=device)))
            if bias:
                setattr(self, f"bias_ih_l{layer}", Parameter(Tensor.uniform(-bound, bound, (g,), device=device)))
                setattr(self, f"bias_hh_l{layer}", Parameter(Tensor.uniform(-bound, bound, (g,), device=device)))

    def _weights(self, layer: int) -> tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor]]:
        get = self.__getattr__
        return (get(f"weight_ih_l{layer}"), get(f"weight_hh_l{layer}"),
                get(f"bias_ih_l{layer}") if self.bias else None, get(f"bias_hh_l{layer}") if self.bias else None)

    def _sequence(self, x: Tensor) -> tuple[Tensor, bool]:
        batched = x.ndim == 3
        x = x if batched else x.unsqueeze(0 if self.batch_first else 1)
        return (x.transpose(0, 1) if self.batch_first else x), batched  # (time, batch, features)

    def _run(self, x: Tensor, hx: Optional[Tensor], step: Callable[..., Tensor]) -> tuple[Tensor, Tensor]:
        """The layers of a recurrence with one state h (RNN, GRU): step(x_t, h, w_ih, w_hh, b_ih, b_hh) -> new h."""
        seq, batched = self._sequence(x)
        h0 = hx if hx is not None else Tensor.zeros(self.num_layers, seq.shape[1], self.hidden_size, device=x.device)
        if not batched and hx is not None:
            h0 = h0.unsqueeze(1)
        layer_input = [seq[t] for t in range(seq.shape[0])]
        hn = []
        for layer in range(self.num_layers):
            weights = self._weights(layer)
            h, outputs = h0[layer], []
            for xt in layer_input:
                h = step(xt, h, *weights)
                outputs.append(h)
            hn.append(h)
            layer_input = [o.dropout(self.dropout, self.training) if layer < self.num_layers - 1 else o
                           for o in outputs]
        h_n = hn[0].stack(*hn[1:])
        return self._output(layer_input, batched), (h_n if batched else h_n.squeeze(1))

    def _output(self, steps: list[Tensor], batched: bool) -> Tensor:
        out = steps[0].stack(*steps[1:], dim=0)  # (time, batch, hidden)
        out = out.transpose(0, 1) if self.batch_first else out
        return out if batched else out.squeeze(0 if self.batch_first else 1)


class LSTM(_RNNBase):
    """Long short-term memory (gates i, f, g, o as torch orders them)."""

    gates = 4

    def forward(self, x: Tensor, hx: Optional[tuple[Tensor, Tensor]] = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        seq, batched = self._sequence(x)
        n, hs = seq.shape[1], self.hidden_size
        h0 = hx[0] if hx is not None else Tensor.zeros(self.num_layers, n, hs, device=x.device)
        c0 = hx[1] if hx is not None else Tensor.zeros(self.num_layers, n, hs, device=x.device)
        if not batched and hx is not None:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        layer_input = [seq[t] for t in range(seq.shape[0])]
        hn, cn = [], []
        for layer in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self._weights(layer)
            h, c = h0[layer], c0[layer]
            outputs = []
            for xt in layer_input:
                h, c = lstm_step(xt, h, c, w_ih, w_hh, b_ih, b_hh)
                outputs.append(h)
            hn.append(h)
            cn.append(c)
            layer_input = [o.dropout(self.dropout, self.training) if layer < self.num_layers - 1 else o
                           for o in outputs]
        h_n, c_n = hn[0].stack(*hn[1:]), cn[0].stack(*cn[1:])
        if not batched:
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        return self._output(layer_input, batched), (h_n, c_n)


class GRU(_RNNBase):
    """Gated recurrent unit (gates r, z, n as torch orders them)."""

    gates = 3

    def forward(self, x: Tensor, hx: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        return self._run(x, hx, gru_step)


class RNN(_RNNBase):
    """Elman RNN, h = tanh (or relu) of x W_ih^T + b_ih + h W_hh^T + b_hh, multi-layer."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: Optional[str] = None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device)
        self.nonlinearity = _nonlinearity("RNN", nonlinearity)

    def forward(self, x: Tensor, hx: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        return self._run(x, hx, functools.partial(rnn_step, nonlinearity=self.nonlinearity))


class _Cell(Module):
    """One time step of a recurrent layer, with torch's parameter names (weight_ih, weight_hh, bias_ih, bias_hh)."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Optional[str] = None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        bound, g = 1 / math.sqrt(hidden_size), self.gates * hidden_size
        self.weight_ih = Parameter(Tensor.uniform(-bound, bound, (g, input_size), device=device))
        self.weight_hh = Parameter(Tensor.uniform(-bound, bound, (g, hidden_size), device=device))
        self.bias_ih = Parameter(Tensor.uniform(-bound, bound, (g,), device=device)) if bias else None
        self.bias_hh = Parameter(Tensor.uniform(-bound, bound, (g,), device=device)) if bias else None

    def _zeros(self, x: Tensor) -> Tensor:
        return Tensor.zeros(*x.shape[:-1], self.hidden_size, device=x.device)


class RNNCell(_Cell):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device: Optional[str] = None):
        super().__init__(input_size, hidden_size, bias, device)
        self.nonlinearity = _nonlinearity("RNNCell", nonlinearity)

    def forward(self, x: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        h = hx if hx is not None else self._zeros(x)
        return rnn_step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.nonlinearity)


class LSTMCell(_Cell):
    gates = 4

    def forward(self, x: Tensor, hx: Optional[tuple[Tensor, Tensor]] = None) -> tuple[Tensor, Tensor]:
        h, c = hx if hx is not None else (self._zeros(x), self._zeros(x))
        return lstm_step(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class GRUCell(_Cell):
    gates = 3

    def forward(self, x: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        h = hx if hx is not None else self._zeros(x)
        return gru_step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
