"""onnxruntime's com.microsoft ops that its graph optimiser writes into the models it saves (a transformer or CNN
"optimized for onnxruntime" ships with them): fused activations, skip layer norms, FusedMatMul, FusedConv. Each is
what onnxruntime computes, composed from tg's ops; the tests compare with onnxruntime itself."""
from __future__ import annotations

import math
from typing import Any, Optional

from tg.core import Tensor
from tg.core import dtype as dt

from .ops import Context, OnnxError, _conv, op

MS = "com.microsoft"


@op("Gelu", domain=MS)
def _gelu(ctx: Context, x: Tensor) -> Tensor:
    return x.gelu()


@op("BiasGelu", domain=MS)
def _bias_gelu(ctx: Context, x: Tensor, bias: Tensor) -> Tensor:
    return (x + bias).gelu()


@op("FastGelu", domain=MS)
def _fast_gelu(ctx: Context, x: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    return (x + bias if bias is not None else x).gelu("tanh")


@op("QuickGelu", domain=MS)
def _quick_gelu(ctx: Context, x: Tensor, alpha: float = 1.702) -> Tensor:
    return x * (x * alpha).sigmoid()


@op("BiasAdd", domain=MS)
def _bias_add(ctx: Context, x: Tensor, bias: Tensor, skip: Tensor) -> Tensor:
    return x + bias + skip


def _skip_sum(x: Tensor, skip: Tensor, bias: Optional[Tensor]) -> Tensor:
    if skip.shape != x.shape and (skip.ndim != 2 or skip.shape != x.shape[-2:]):
        raise OnnxError(f"onnx: SkipLayerNormalization: skip {list(skip.shape)} must have the input's shape "
                        f"{list(x.shape)} or its last two dims")
    total = x + skip
    return total + bias if bias is not None else total


@op("SkipLayerNormalization", domain=MS)
def _skip_layer_norm(ctx: Context, x: Tensor, skip: Tensor, gamma: Tensor, beta: Optional[Tensor] = None,
                     bias: Optional[Tensor] = None, epsilon: float = 1e-12) -> Any:
    """LayerNormalization over the last dim of x + skip (+ bias); outputs: the result, then optionally the mean,
    the inverse standard deviation (both with the last dim kept as 1) and the sum itself."""
    total = _skip_sum(x, skip, bias)
    mean = total.mean(-1, keepdim=True)
    centred = total - mean
    inv = (centred * centred).mean(-1, keepdim=True).add(epsilon).rsqrt()
    out = centred * inv * gamma
    return _outputs(ctx, out + beta if beta is not None else out, mean, inv, total)


@op("SkipSimplifiedLayerNormalization", domain=MS)
def _skip_rms_norm(ctx: Context, x: Tensor, skip: Tensor, gamma: Tensor, bias: Optional[Tensor] = None,
                   epsilon: float = 1e-12) -> Any:
    """RMS normalisation over the last dim of x + skip (+ bias): outputs the result, optionally a placeholder
    mean slot, the inverse root mean square and the sum."""
    total = _skip_sum(x, skip, bias)
    inv = (total * total).mean(-1, keepdim=True).add(epsilon).rsqrt()
    return _outputs(ctx, total * inv * gamma, None, inv, total)


def _outputs(ctx: Context, *values: Optional[Tensor]) -> Any:
    wanted = len(ctx.node.output)
    if wanted == 1:
        return values[0]
    if any(values[i] is None and ctx.node.output[i] for i in range(wanted)):
        raise OnnxError(f"onnx: {ctx.node.op_type} has no output {wanted}")
    return tuple(values[:wanted])


@op("FusedMatMul", domain=MS)
def _fused_matmul(ctx: Context, a: Tensor, b: Tensor, alpha: float = 1.0, transA: int = 0, transB: int = 0,  # noqa: N803
                  transBatchA: int = 0, transBatchB: int = 0) -> Tensor:  # noqa: N803 - onnxruntime's names
    if transBatchA or transBatchB:
        raise OnnxError("onnx: FusedMatMul with transBatchA or transBatchB is not supported")
    a = a.transpose(-1, -2) if transA and a.ndim >= 2 else a
    b = b.transpose(-1, -2) if transB and b.ndim >= 2 else b
    out = a @ b
    return out * alpha if alpha != 1.0 else out


ACTIVATIONS = {
    "Relu": lambda x, p: x.relu(),
    "Tanh": lambda x, p: x.tanh(),
    "Sigmoid": lambda x, p: x.sigmoid(),
    "LeakyRelu": lambda x, p: (x < 0).if_else(x * (p[0] if p else 0.01), x),
    "Clip": lambda x, p: x.clamp(p[0], p[1]) if p else x,
    "HardSigmoid": lambda x, p: (x * (p[0] if p else 0.2) + (p[1] if len(p) > 1 else 0.5)).clamp(0.0, 1.0),
}


@op("FusedConv", domain=MS)
def _fused_conv(ctx: Context, x: Tensor, w: Tensor, b: Optional[Tensor] = None, z: Optional[Tensor] = None,
                activation: Any = b"", activation_params: Optional[list[float]] = None, **conv: Any) -> Tensor:
    """Conv, plus z where given, then the activation named by `activation` with its `activation_params`."""
    out = _conv(ctx, x, w, b, **conv)
    out = out + z if z is not None else out
    name = activation.decode() if isinstance(activation, bytes) else activation
    if not name:
        return out
    if name not in ACTIVATIONS:
        raise OnnxError(f"onnx: FusedConv activation {name!r} is not supported ({', '.join(sorted(ACTIVATIONS))})")
    return ACTIVATIONS[name](out, list(activation_params or []))



@op("SimplifiedLayerNormalization")
def _rms_norm(ctx: Context, x: Tensor, scale: Tensor, axis: int = -1, epsilon: float = 1e-5,
              stash_type: int = 1) -> Any:
    """onnxruntime's RMS normalisation (registered in the ONNX domain): x / sqrt(mean(x^2) + epsilon) * scale over
    the dims from `axis`; outputs the result and optionally the inverse root mean square."""
    a = axis % x.ndim
    inv = (x * x).mean(tuple(range(a, x.ndim)), keepdim=True).add(epsilon).rsqrt()
    return _outputs(ctx, x * inv * scale, inv)


def _heads(t: Tensor, heads: int) -> Tensor:
    """(batch, length, heads * size) -> (batch, heads, length, size)."""
    b, n, width = t.shape
    if width % heads:
        raise OnnxError(f"onnx: attention: hidden size {width} is not a multiple of num_heads={heads}")
    return t.reshape(b, n, heads, width // heads).permute(0, 2, 1, 3)


def _attend(q: Tensor, k: Tensor, v: Tensor, heads: int, scale: float, keep: Optional[Tensor], causal: bool,
            filler: float) -> Tensor:
    """Scaled dot-product attention over heads; `keep` (batch, keys) marks the keys to attend to, the others get
    `filler` added (onnxruntime's mask_filter_value) as onnxruntime does."""
    qh, kh, vh = _heads(q, heads), _heads(k, heads), _heads(v, heads)
    scores = (qh @ kh.transpose(-1, -2)) * (scale or 1.0 / math.sqrt(qh.shape[-1]))
    if keep is not None:
        scores = scores + (keep.reshape(keep.shape[0], 1, 1, keep.shape[1]) == 0).float() * filler
    if causal:
        s, n = scores.shape[-2:]
        future = Tensor.ones(s, n, device=scores.device).triu(n - s + 1)
        scores = scores + future * filler
    out = scores.softmax(-1) @ vh
    b, _, s, size = out.shape
    return out.permute(0, 2, 1, 3).reshape(b, s, heads * size)


def _key_mask(mask: Optional[Tensor], batch: int, keys: int, op_name: str) -> Optional[Tensor]:
    if mask is None:
        return None
    if mask.shape != (batch, keys):
        raise OnnxError(f"onnx: {op_name}: only a (batch, keys) mask of ones and zeros is supported, got "
                        f"{list(mask.shape)} for batch {batch} and {keys} keys")
    return mask


@op("Attention", domain=MS)
def _attention(ctx: Context, x: Tensor, weights: Tensor, bias: Optional[Tensor] = None,
               mask_index: Optional[Tensor] = None, past: Optional[Tensor] = None, *rest: Any, num_heads: int = 1,
               unidirectional: int = 0, scale: float = 0.0, mask_filter_value: float = -10000.0,
               qkv_hidden_sizes: Optional[list[int]] = None, do_rotary: int = 0, past_present_share_buffer: int = 0,
               rotary_embedding_dim: int = 0) -> Tensor:
    """BERT-style self-attention with packed weights (input_hidden, q + k + v hidden): x @ weights + bias split
    into queries, keys and values, then attention over `num_heads` heads. Masks as (batch, length) ones and zeros."""
    if past is not None or any(r is not None for r in rest) or do_rotary or len(ctx.node.output) > 1:
        raise OnnxError("onnx: com.microsoft::Attention with past state, attention bias or rotary embeddings is not "
                        "supported")
    sizes = qkv_hidden_sizes or [weights.shape[1] // 3] * 3
    proj = x @ weights + bias if bias is not None else x @ weights
    q, k, v = proj[..., :sizes[0]], proj[..., sizes[0]:sizes[0] + sizes[1]], proj[..., sizes[0] + sizes[1]:]
    keep = _key_mask(mask_index, x.shape[0], x.shape[1], "Attention")
    return _attend(q, k, v, num_heads, scale, keep, bool(unidirectional), mask_filter_value)


@op("MultiHeadAttention", domain=MS)
def _multi_head_attention(ctx: Context, query: Tensor, key: Tensor, value: Tensor, bias: Optional[Tensor] = None,
                          key_padding_mask: Optional[Tensor] = None, *rest: Any, num_heads: int = 1,
                          scale: float = 0.0, mask_filter_value: float = -10000.0, unidirectional: int = 0) -> Tensor:
    """Attention of (batch, length, hidden) queries over keys and values of the same layout, with an optional
    bias of q + k + v hidden and a (batch, keys) padding mask of ones and zeros."""
    if key.ndim != 3 or value.ndim != 3 or any(r is not None for r in rest) or len(ctx.node.output) > 1:
        raise OnnxError("onnx: com.microsoft::MultiHeadAttention is supported with 3-D queries, keys and values, "
                        "no past state and no attention bias")
    if bias is not None:
        d, dk = query.shape[-1], key.shape[-1]
        query, key, value = query + bias[:d], key + bias[d:d + dk], value + bias[d + dk:]
    keep = _key_mask(key_padding_mask, key.shape[0], key.shape[1], "MultiHeadAttention")
    return _attend(query, key, value, num_heads, scale, keep, bool(unidirectional), mask_filter_value)


@op("EmbedLayerNormalization", domain=MS)
def _embed_layer_norm(ctx: Context, input_ids: Tensor, segment_ids: Optional[Tensor], word: Tensor,
                      position: Tensor, segment: Optional[Tensor] = None, gamma: Optional[Tensor] = None,
                      beta: Optional[Tensor] = None, mask: Optional[Tensor] = None,
                      position_ids: Optional[Tensor] = None, epsilon: float = 1e-12, mask_index_type: int = 1) -> Any:
    """BERT's embeddings: word + position (+ segment) embeddings, layer-normalised; outputs the result, the mask's
    count of kept tokens per sequence (int32), and optionally the embeddings' sum before the norm."""
    if gamma is None or beta is None:
        raise OnnxError("onnx: EmbedLayerNormalization needs gamma and beta")
    batch, length = input_ids.shape
    positions = position_ids if position_ids is not None else \
        Tensor.arange(length, device=input_ids.device).reshape(1, length).expand(batch, length)
    total = word[input_ids.cast(dt.int64)] + position[positions.cast(dt.int64)]
    if segment is not None and segment_ids is not None:
        total = total + segment[segment_ids.cast(dt.int64)]
    mean = total.mean(-1, keepdim=True)
    centred = total - mean
    out = centred * (centred * centred).mean(-1, keepdim=True).add(epsilon).rsqrt() * gamma + beta
    kept = (mask != 0).cast(dt.int32).sum(1) if mask is not None else Tensor.zeros(batch, dtype=dt.int32,
                                                                                   device=input_ids.device)
    wanted = len(ctx.node.output)
    return (out, kept, total)[:wanted] if wanted > 1 else out
