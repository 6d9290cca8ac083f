"""Attention layers with torch's parameter names: MultiheadAttention, TransformerEncoderLayer and
TransformerEncoder."""
from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Optional, Union

from tg.core import Tensor

from .layers import Dropout, LayerNorm, Linear
from .module import Module, ModuleList, Parameter


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention: self- and cross-attention, keys and values of other sizes (kdim, vdim), a
    learned bias key/value (add_bias_kv) and a zero key/value (add_zero_attn) appended to the sequence.

    A boolean attn_mask or key_padding_mask marks positions that may NOT be attended (torch's meaning
    here); a float mask is added to the scores.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: Optional[int] = None,
                 vdim: Optional[int] = None, batch_first: bool = False, device: Optional[str] = None):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.dropout, self.batch_first = embed_dim, num_heads, dropout, batch_first
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self.add_zero_attn = add_zero_attn
        if self.kdim == embed_dim and self.vdim == embed_dim:  # one packed projection, as torch stores it
            self.in_proj_weight: Optional[Parameter] = Parameter(
                Tensor.xavier_uniform(3 * embed_dim, embed_dim, device=device))
        else:
            self.in_proj_weight = None
            self.q_proj_weight = Parameter(Tensor.xavier_uniform(embed_dim, embed_dim, device=device))
            self.k_proj_weight = Parameter(Tensor.xavier_uniform(embed_dim, self.kdim, device=device))
            self.v_proj_weight = Parameter(Tensor.xavier_uniform(embed_dim, self.vdim, device=device))
        self.in_proj_bias = Parameter(Tensor.zeros(3 * embed_dim, device=device)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, device=device)
        if bias:
            self.out_proj.bias = Parameter(Tensor.zeros(embed_dim, device=device))
        self.bias_k: Optional[Parameter] = None
        self.bias_v: Optional[Parameter] = None
        if add_bias_kv:
            self.bias_k = Parameter(Tensor.xavier_normal(1, 1, embed_dim, device=device))
            self.bias_v = Parameter(Tensor.xavier_normal(1, 1, embed_dim, device=device))

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Optional[Tensor] = None,
                need_weights: bool = True, attn_mask: Optional[Tensor] = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Optional[Tensor]]:
        batched = query.ndim == 3
        q, k, v = (t if batched else t.unsqueeze(1 if not self.batch_first else 0) for t in (query, key, value))
        if not self.batch_first:
            q, k, v = (t.transpose(0, 1) for t in (q, k, v))
        n, lq, e = q.shape
        h, d = self.num_heads, e // self.num_heads
        if self.in_proj_weight is not None:
            wq, wk, wv = self.in_proj_weight.split(e, 0)
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        b = self.in_proj_bias
        bq, bk, bv = b.split(e, 0) if b is not None else (None, None, None)
        q, k, v = q.linear(wq, bq), k.linear(wk, bk), v.linear(wv, bv)  # (n, L, e)
        extra = []  # key positions appended after the sequence: the bias key/value, then a zero key/value
        if self.bias_k is not None and self.bias_v is not None:
            k, v = k.cat(self.bias_k.expand(n, 1, e), dim=1), v.cat(self.bias_v.expand(n, 1, e), dim=1)
            extra.append(1)
        if self.add_zero_attn:
            k, v = k.pad((0, 0, 0, 1)), v.pad((0, 0, 0, 1))
            extra.append(1)
        ls = k.shape[1]
        heads = [t.reshape(n, t.shape[1], h, d).transpose(1, 2) for t in (q, k, v)]
        scores = (heads[0] @ heads[1].transpose(-2, -1)) * (1 / math.sqrt(d))  # (n, h, lq, ls)
        if is_causal and attn_mask is None:
            attn_mask = Tensor.ones(lq, ls - len(extra), dtype="bool", device=q.device).triu(1)
        if attn_mask is not None:
            mask = attn_mask if attn_mask.ndim == 2 else attn_mask.reshape(n, h, lq, attn_mask.shape[-1])
            mask = mask.pad((0, ls - mask.shape[-1])) if mask.shape[-1] < ls else mask  # the extra keys: allowed
            scores = mask.if_else(-math.inf, scores) if mask.dtype.name == "bool" else scores + mask
        if key_padding_mask is not None:
            pad = key_padding_mask.reshape(n, 1, 1, key_padding_mask.shape[-1])
            pad = pad.pad((0, ls - pad.shape[-1])) if pad.shape[-1] < ls else pad
            scores = pad.if_else(-math.inf, scores) if pad.dtype.name == "bool" else scores + pad
        weights = scores.softmax(-1)
        attended = weights.dropout(self.dropout, self.training) @ heads[2]  # (n, h, lq, d)
        out = self.out_proj(attended.transpose(1, 2).reshape(n, lq, e))
        if not self.batch_first:
            out = out.transpose(0, 1)
        if not batched:
            out = out.squeeze(1 if not self.batch_first else 0)
        if not need_weights:
            return out, None
        avg = weights.mean(1) if average_attn_weights else weights
        return out, (avg if batched else avg.squeeze(0))


class TransformerEncoderLayer(Module):
    """torch.nn.TransformerEncoderLayer: self-attention and a feed-forward block, post- or pre-norm."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: Union[str, Callable[[Tensor], Tensor]] = "relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device: Optional[str] = None):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout, bias, batch_first=batch_first, device=device)
        self.linear1 = Linear(d_model, dim_feedforward, bias, device)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias, device)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, layer_norm_eps, bias=bias, device=device)
        self.norm2 = LayerNorm(d_model, layer_norm_eps, bias=bias, device=device)
        self.dropout1, self.dropout2 = Dropout(dropout), Dropout(dropout)
        if isinstance(activation, str):
            if activation not in ("relu", "gelu"):
                raise ValueError(f"TransformerEncoderLayer: activation must be relu or gelu, got {activation!r}")
            self.activation = (lambda x: x.relu()) if activation == "relu" else (lambda x: x.gelu())
        else:
            self.activation = activation

    def _sa(self, x: Tensor, mask: Optional[Tensor], pad: Optional[Tensor], is_causal: bool) -> Tensor:
        out, _ = self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=pad, need_weights=False,
                                is_causal=is_causal)
        return self.dropout1(out)

    def _ff(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src: Tensor, src_mask: Optional[Tensor] = None, src_key_padding_mask: Optional[Tensor] = None,
                is_causal: bool = False) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff(self.norm2(x))
        x = self.norm1(x + self._sa(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff(x))


class TransformerEncoder(Module):
    """A stack of num_layers copies of encoder_layer (each with its own weights, as torch deep-copies it) and an
    optional final norm; parameter names layers.0...., as torch's."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: Optional[Module] = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers, self.norm = num_layers, norm

    def forward(self, src: Tensor, mask: Optional[Tensor] = None, src_key_padding_mask: Optional[Tensor] = None,
                is_causal: Optional[bool] = None) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        return self.norm(x) if self.norm is not None else x
