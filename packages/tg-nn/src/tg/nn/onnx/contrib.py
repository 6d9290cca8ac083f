"""onnxruntime's com.microsoft ops that its graph optimiser writes into the models it saves (a transformer or CNN
"optimized for onnxruntime" ships with them): fused activations, skip layer norms, FusedMatMul, FusedConv. Each is
what onnxruntime computes, composed from tg's ops; the tests compare with onnxruntime itself."""
from __future__ import annotations

from typing import Any, Optional

from tg.core import Tensor

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

