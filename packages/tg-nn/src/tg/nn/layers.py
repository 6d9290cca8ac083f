"""Layers with torch's constructor arguments, default initialisation and parameter names."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Optional, Union

from tg.core import Tensor
from tg.core import functional as F

from .module import Module, Parameter

IntOrPair = Union[int, Sequence[int]]


def _uniform(shape: Sequence[int], bound: float, device: Optional[str]) -> Parameter:
    return Parameter(Tensor.uniform(-bound, bound, tuple(shape), device=device))


class Linear(Module):
    """y = x W^T + b, initialised like torch (kaiming_uniform with a=sqrt(5), bias U(+-1/sqrt(fan_in)))."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Optional[str] = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(Tensor.kaiming_uniform(out_features, in_features, a=math.sqrt(5), device=device))
        self.bias = _uniform((out_features,), 1 / math.sqrt(in_features), device) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return x.linear(self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _ConvNd(Module):
    def __init__(self, nd: int, in_channels: int, out_channels: int, kernel_size: IntOrPair, stride: IntOrPair,
                 padding: Union[IntOrPair, str], dilation: IntOrPair, groups: int, bias: bool,
                 device: Optional[str], transposed: bool = False, output_padding: IntOrPair = 0):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{type(self).__name__}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must be divisible by groups ({groups})")
        ks = (kernel_size,) * nd if isinstance(kernel_size, int) else tuple(kernel_size)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, ks
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.output_padding = output_padding
        shape = (in_channels, out_channels // groups, *ks) if transposed else (out_channels, in_channels // groups, *ks)
        self.weight = Parameter(Tensor.kaiming_uniform(*shape, a=math.sqrt(5), device=device))
        fan_in = shape[1] * math.prod(ks)
        self.bias = _uniform((out_channels,), 1 / math.sqrt(fan_in), device) if bias else None

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}")


class _Conv(_ConvNd):
    """Convolution over the last `nd` dims; a subclass sets `nd` and the Tensor method (`conv`) it runs."""

    nd = 2
    conv = staticmethod(Tensor.conv2d)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: Union[IntOrPair, str] = 0, dilation: IntOrPair = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Optional[str] = None):
        super().__init__(self.nd, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         device)
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"{type(self).__name__}: padding_mode must be zeros, reflect, replicate or circular, "
                             f"got {padding_mode!r}")
        self.padding_mode = padding_mode

    def forward(self, x: Tensor) -> Tensor:
        if self.padding_mode == "zeros":
            return self.conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        padded = F.pad(x, self._pad_pairs(), mode=self.padding_mode)  # torch's order: the last dim first
        return self.conv(padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def _pad_pairs(self) -> list[int]:
        """The padding as F.pad's flat (left, right) list, last dim first ('same' split as torch splits it)."""
        dil = (self.dilation,) * self.nd if isinstance(self.dilation, int) else tuple(self.dilation)
        if self.padding == "same":
            totals = [d * (k - 1) for d, k in zip(dil, self.kernel_size)]
            pairs = [(t // 2, t - t // 2) for t in totals]
        elif self.padding == "valid":
            pairs = [(0, 0)] * self.nd
        else:
            pads: tuple[int, ...] = (self.padding,) * self.nd if isinstance(self.padding, int) else \
                tuple(int(p) for p in self.padding)
            pairs = [(p, p) for p in pads]
        return [v for pair in reversed(pairs) for v in pair]


class _ConvTranspose(_ConvNd):
    """Transposed convolution over the last `nd` dims (torch's argument order: output_padding before groups)."""

    nd = 2
    conv = staticmethod(Tensor.conv_transpose2d)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: IntOrPair = 0, output_padding: IntOrPair = 0, groups: int = 1, bias: bool = True,
                 dilation: IntOrPair = 1, device: Optional[str] = None):
        super().__init__(self.nd, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         device, transposed=True, output_padding=output_padding)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x, self.weight, self.bias, self.stride, self.padding, self.output_padding, self.groups,
                         self.dilation)


class Conv1d(_Conv):
    nd, conv = 1, staticmethod(Tensor.conv1d)


class Conv2d(_Conv):
    """2-D convolution; groups=in_channels makes it depthwise."""


class Conv3d(_Conv):
    nd, conv = 3, staticmethod(Tensor.conv3d)


class ConvTranspose1d(_ConvTranspose):
    nd, conv = 1, staticmethod(Tensor.conv_transpose1d)


class ConvTranspose2d(_ConvTranspose):
    pass


class ConvTranspose3d(_ConvTranspose):
    nd, conv = 3, staticmethod(Tensor.conv_transpose3d)


class _BatchNorm(Module):
    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: Optional[str] = None, bias: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(Tensor.ones(num_features, device=device)) if affine else None
        self.bias = Parameter(Tensor.zeros(num_features, device=device)) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", Tensor.zeros(num_features, device=device).realize())
            self.register_buffer("running_var", Tensor.ones(num_features, device=device).realize())
            self.register_buffer("num_batches_tracked", Tensor(0, device=device))
        else:
            self.running_mean = self.running_var = None

    def forward(self, x: Tensor) -> Tensor:
        use_batch = self.training or self.running_mean is None
        if self.training and self.running_mean is not None:
            self.num_batches_tracked.node = (self.num_batches_tracked + 1).realize().node
        return x.batch_norm(self.running_mean, self.running_var, self.weight, self.bias, use_batch, self.momentum,
                            self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L)."""


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W)."""


class BatchNorm3d(_BatchNorm):
    """Batch norm over (N, C, D, H, W)."""


class _InstanceNorm(Module):
    """Normalise each channel of each sample over its spatial dims (affine and running stats off by default)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = False,
                 track_running_stats: bool = False, device: Optional[str] = None, bias: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(Tensor.ones(num_features, device=device)) if affine else None
        self.bias = Parameter(Tensor.zeros(num_features, device=device)) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", Tensor.zeros(num_features, device=device).realize())
            self.register_buffer("running_var", Tensor.ones(num_features, device=device).realize())
        else:
            self.running_mean = self.running_var = None

    def forward(self, x: Tensor) -> Tensor:
        use_input_stats = self.training or self.running_mean is None
        return F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias, use_input_stats,
                               self.momentum, self.eps)


class InstanceNorm1d(_InstanceNorm):
    """Instance norm over (N, C, L)."""


class InstanceNorm2d(_InstanceNorm):
    """Instance norm over (N, C, H, W)."""


class InstanceNorm3d(_InstanceNorm):
    """Instance norm over (N, C, D, H, W)."""


class LocalResponseNorm(Module):
    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: Tensor) -> Tensor:
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)


class LayerNorm(Module):
    def __init__(self, normalized_shape: IntOrPair, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device: Optional[str] = None):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps = eps
        self.weight = Parameter(Tensor.ones(*self.normalized_shape, device=device)) if elementwise_affine else None
        self.bias = Parameter(Tensor.zeros(*self.normalized_shape, device=device)) \
            if elementwise_affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        return x.layer_norm(self.normalized_shape, self.weight, self.bias, self.eps)


class RMSNorm(Module):
    def __init__(self, normalized_shape: IntOrPair, eps: Optional[float] = None, elementwise_affine: bool = True,
                 device: Optional[str] = None):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps = eps
        self.weight = Parameter(Tensor.ones(*self.normalized_shape, device=device)) if elementwise_affine else None

    def forward(self, x: Tensor) -> Tensor:
        return x.rms_norm(self.normalized_shape, self.weight, self.eps)


class GroupNorm(Module):
    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device: Optional[str] = None, bias: bool = True):
        super().__init__()
        self.num_groups, self.eps = num_groups, eps
        self.weight = Parameter(Tensor.ones(num_channels, device=device)) if affine else None
        self.bias = Parameter(Tensor.zeros(num_channels, device=device)) if affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        return x.group_norm(self.num_groups, self.weight, self.bias, self.eps)


class Embedding(Module):
    """A lookup table of `num_embeddings` rows (torch.nn.Embedding): N(0, 1) rows, the `padding_idx` row zeros and
    without gradient; `max_norm` renormalizes the rows looked up (see functional.embedding)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None,
                 max_norm: Optional[float] = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight: Optional[Tensor] = None, _freeze: bool = False,
                 device: Optional[str] = None):
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} must be within num_embeddings "
                                 f"({num_embeddings})")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse = max_norm, norm_type, \
            scale_grad_by_freq, sparse
        if _weight is not None:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight has shape {tuple(_weight.shape)}, expected "
                                 f"{(num_embeddings, embedding_dim)}")
            data = _weight.detach().to(device) if device is not None else _weight.detach()
        else:
            data = Tensor.randn(num_embeddings, embedding_dim, device=device)
            if padding_idx is not None:
                data = (Tensor.arange(num_embeddings, device=device).reshape(-1, 1) != padding_idx).if_else(data, 0.0)
        self.weight = Parameter(data, requires_grad=not _freeze)

    def forward(self, idx: Tensor) -> Tensor:
        return idx.embedding(self.weight, self.padding_idx, self.max_norm, self.norm_type, self.scale_grad_by_freq,
                             self.sparse)


class Dropout(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        self.p, self.inplace = p, inplace

    def forward(self, x: Tensor) -> Tensor:
        return x.dropout(self.p, self.training, self.inplace)


class _ChannelDropout(Module):
    drop: Any = None

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return type(self).drop(x, self.p, self.training)


class Dropout1d(_ChannelDropout):
    """Zero whole channels of (N, C, L)."""

    drop = staticmethod(F.dropout1d)


class Dropout2d(_ChannelDropout):
    """Zero whole channels of (N, C, H, W)."""

    drop = staticmethod(F.dropout2d)


class Dropout3d(_ChannelDropout):
    """Zero whole channels of (N, C, D, H, W)."""

    drop = staticmethod(F.dropout3d)


class AlphaDropout(_ChannelDropout):
    """Dropout that keeps SELU's self-normalisation."""

    drop = staticmethod(F.alpha_dropout)


class PReLU(Module):
    """x if x > 0 else a * x, with a learned slope per channel (num_parameters) or one for all."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device: Optional[str] = None):
        super().__init__()
        self.num_parameters = num_parameters
        self.weight = Parameter(Tensor.full((num_parameters,), init, device=device))

    def forward(self, x: Tensor) -> Tensor:
        return F.prelu(x, self.weight)


class Bilinear(Module):
    """y = x1^T A x2 + b, initialised like torch (U(+-1/sqrt(in1_features)))."""

    def __init__(self, in1_features: int, in2_features: int, out_features: int, bias: bool = True,
                 device: Optional[str] = None):
        super().__init__()
        bound = 1 / math.sqrt(in1_features)
        self.weight = _uniform((out_features, in1_features, in2_features), bound, device)
        self.bias = _uniform((out_features,), bound, device) if bias else None

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.bilinear(x1, x2, self.weight, self.bias)


class CosineSimilarity(Module):
    def __init__(self, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
        super().__init__()
        self.p, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.pairwise_distance(x1, x2, self.p, self.eps, self.keepdim)


class Unflatten(Module):
    def __init__(self, dim: int, unflattened_size: Sequence[int]):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        return x.unflatten(self.dim, self.unflattened_size)


class MaxPool2d(Module):
    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None, padding: IntOrPair = 0,
                 dilation: IntOrPair = 1, return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        self.args = (kernel_size, stride, padding, dilation, ceil_mode)
        self.return_indices = return_indices

    def forward(self, x: Tensor) -> Any:
        return x.max_pool2d(*self.args, return_indices=self.return_indices)


class AvgPool2d(Module):
    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None, padding: IntOrPair = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: Optional[int] = None):
        super().__init__()
        self.args = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)

    def forward(self, x: Tensor) -> Tensor:
        return x.avg_pool2d(*self.args)


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size: IntOrPair):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return x.adaptive_avg_pool2d(self.output_size)


class Flatten(Module):
    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)


class Identity(Module):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x


def _activation(name: str, method: str, doc: str) -> type[Module]:
    """A parameterless module that calls one Tensor method (ReLU, GELU, ...)."""

    def init(self: Module, *args: Any, **kwargs: Any) -> None:
        Module.__init__(self)
        object.__setattr__(self, "args", args)
        object.__setattr__(self, "kwargs", {k: v for k, v in kwargs.items() if k != "inplace"})

    def forward(self: Module, x: Tensor) -> Tensor:
        return getattr(x, method)(*self.args, **self.kwargs)

    return type(name, (Module,), {"__init__": init, "forward": forward, "__doc__": doc})


ReLU = _activation("ReLU", "relu", "max(x, 0)")
ReLU6 = _activation("ReLU6", "relu6", "min(max(x, 0), 6)")
LeakyReLU = _activation("LeakyReLU", "leaky_relu", "x if x > 0 else negative_slope * x")
ELU = _activation("ELU", "elu", "x if x > 0 else alpha * (exp(x) - 1)")
GELU = _activation("GELU", "gelu", "x * Phi(x); approximate='tanh' for the tanh form")
SiLU = _activation("SiLU", "silu", "x * sigmoid(x)")
Sigmoid = _activation("Sigmoid", "sigmoid", "1 / (1 + exp(-x))")
Tanh = _activation("Tanh", "tanh", "tanh(x)")
Softplus = _activation("Softplus", "softplus", "log(1 + exp(beta x)) / beta")
Mish = _activation("Mish", "mish", "x * tanh(softplus(x))")
Hardswish = _activation("Hardswish", "hardswish", "x * relu6(x + 3) / 6")
Hardsigmoid = _activation("Hardsigmoid", "hardsigmoid", "relu6(x + 3) / 6")
Softsign = _activation("Softsign", "softsign", "x / (1 + |x|)")
Softmax = _activation("Softmax", "softmax", "softmax over dim")
LogSoftmax = _activation("LogSoftmax", "log_softmax", "log_softmax over dim")
CELU = _activation("CELU", "celu", "x if x > 0 else alpha * (exp(x / alpha) - 1)")
SELU = _activation("SELU", "selu", "scale * elu(x, alpha) with the self-normalising constants")
Hardtanh = _activation("Hardtanh", "hardtanh", "clamp(x, min_val, max_val)")
Hardshrink = _activation("Hardshrink", "hardshrink", "x if |x| > lambd else 0")
Softshrink = _activation("Softshrink", "softshrink", "x - lambd * sign(x) if |x| > lambd else 0")
Tanhshrink = _activation("Tanhshrink", "tanhshrink", "x - tanh(x)")
LogSigmoid = _activation("LogSigmoid", "logsigmoid", "log(sigmoid(x))")
Softmin = _activation("Softmin", "softmin", "softmax(-x) over dim")


class GLU(Module):
    """a * sigmoid(b) for the halves a, b of dim."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.glu(x, self.dim)


class Threshold(Module):
    def __init__(self, threshold: float, value: float, inplace: bool = False):
        super().__init__()
        self.threshold, self.value = threshold, value

    def forward(self, x: Tensor) -> Tensor:
        return F.threshold(x, self.threshold, self.value)


class RReLU(Module):
    """Leaky ReLU with a random slope in U(lower, upper) while training, their mean in eval mode."""

    def __init__(self, lower: float = 1 / 8, upper: float = 1 / 3, inplace: bool = False):
        super().__init__()
        self.lower, self.upper = lower, upper

    def forward(self, x: Tensor) -> Tensor:
        return F.rrelu(x, self.lower, self.upper, self.training)


class Softmax2d(Module):
    """softmax over the channel dim (-3) of (N, C, H, W) or (C, H, W)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.softmax(-3)

__all__ = ["F"]
