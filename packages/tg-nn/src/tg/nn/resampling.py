"""Pooling, unpooling, padding, upsampling and pixel shuffling as modules, with torch's constructor arguments.

Each module keeps its arguments and calls one function of tg.core.functional (which is torch.nn.functional's
namesake), so a model ported from PyTorch keeps its structure and its state_dict."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

from tg.core import Tensor
from tg.core import functional as F

from .module import Module

IntOrTuple = Union[int, Sequence[int]]


def _module(name: str, fn: Any, params: Sequence[str], defaults: dict[str, Any], doc: str) -> type[Module]:
    """A module with the named constructor arguments (in torch's order, with torch's defaults) whose forward is
    fn(x, *those arguments)."""

    def init(self: Module, *args: Any, **kwargs: Any) -> None:
        Module.__init__(self)
        if len(args) > len(params):
            raise TypeError(f"{name}: takes at most {len(params)} arguments ({', '.join(params)}), got {len(args)}")
        values = dict(defaults)
        values.update(zip(params, args))
        unknown = set(kwargs) - set(params)
        if unknown:
            raise TypeError(f"{name}: unexpected argument(s) {sorted(unknown)}; it takes {', '.join(params)}")
        values.update(kwargs)
        missing = [p for p in params if p not in values]
        if missing:
            raise TypeError(f"{name}: missing argument(s) {missing}")
        for p in params:
            object.__setattr__(self, p, values[p])

    def forward(self: Module, x: Tensor, *extra: Any) -> Tensor:
        return fn(x, *extra, *(getattr(self, p) for p in params))

    def extra_repr(self: Module) -> str:
        return ", ".join(f"{p}={getattr(self, p)!r}" for p in params)

    return type(name, (Module,), {"__init__": init, "forward": forward, "extra_repr": extra_repr, "__doc__": doc})


_POOL = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
_POOL_DEFAULTS = {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False}
_AVG = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")
_AVG_DEFAULTS = {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True}

MaxPool1d = _module("MaxPool1d", lambda x, *a: F.max_pool1d(x, *a), _POOL, _POOL_DEFAULTS, "max over windows of L")
MaxPool3d = _module("MaxPool3d", lambda x, *a: F.max_pool3d(x, *a), _POOL, _POOL_DEFAULTS, "max over 3-D windows")
AvgPool1d = _module("AvgPool1d", lambda x, *a: F.avg_pool1d(x, *a), _AVG, _AVG_DEFAULTS, "mean over windows of L")
AvgPool3d = _module("AvgPool3d", lambda x, *a: F.avg_pool3d(x, *a), _AVG, _AVG_DEFAULTS, "mean over 3-D windows")
AdaptiveAvgPool1d = _module("AdaptiveAvgPool1d", F.adaptive_avg_pool1d, ("output_size",), {}, "mean to a size")
AdaptiveAvgPool3d = _module("AdaptiveAvgPool3d", F.adaptive_avg_pool3d, ("output_size",), {}, "mean to a size")
AdaptiveMaxPool1d = _module("AdaptiveMaxPool1d", F.adaptive_max_pool1d, ("output_size", "return_indices"),
                            {"return_indices": False}, "max to a size")
AdaptiveMaxPool2d = _module("AdaptiveMaxPool2d", F.adaptive_max_pool2d, ("output_size", "return_indices"),
                            {"return_indices": False}, "max to a size")
AdaptiveMaxPool3d = _module("AdaptiveMaxPool3d", F.adaptive_max_pool3d, ("output_size",), {}, "max to a size")
LPPool1d = _module("LPPool1d", F.lp_pool1d, ("norm_type", "kernel_size", "stride", "ceil_mode"),
                   {"stride": None, "ceil_mode": False}, "the p-norm of each window of L")
LPPool2d = _module("LPPool2d", F.lp_pool2d, ("norm_type", "kernel_size", "stride", "ceil_mode"),
                   {"stride": None, "ceil_mode": False}, "the p-norm of each 2-D window")
MaxUnpool1d = _module("MaxUnpool1d", lambda x, indices, *a: F.max_unpool1d(x, indices, *a),
                      ("kernel_size", "stride", "padding"), {"stride": None, "padding": 0},
                      "max_pool1d's inverse: forward(x, indices)")
MaxUnpool2d = _module("MaxUnpool2d", lambda x, indices, *a: F.max_unpool2d(x, indices, *a),
                      ("kernel_size", "stride", "padding"), {"stride": None, "padding": 0},
                      "max_pool2d's inverse: forward(x, indices)")
PixelShuffle = _module("PixelShuffle", F.pixel_shuffle, ("upscale_factor",), {}, "(C r^2, H, W) -> (C, H r, W r)")
PixelUnshuffle = _module("PixelUnshuffle", F.pixel_unshuffle, ("downscale_factor",), {}, "PixelShuffle's inverse")


class Upsample(Module):
    """Resize the spatial dims (torch.nn.Upsample): interpolate with a size or a scale factor."""

    def __init__(self, size: Optional[IntOrTuple] = None, scale_factor: Optional[Union[float, Sequence[float]]] = None,
                 mode: str = "nearest", align_corners: Optional[bool] = None,
                 recompute_scale_factor: Optional[bool] = None):
        super().__init__()
        self.size, self.scale_factor, self.mode, self.align_corners = size, scale_factor, mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor)


class UpsamplingNearest2d(Upsample):
    def __init__(self, size: Optional[IntOrTuple] = None, scale_factor: Optional[float] = None):
        super().__init__(size, scale_factor, "nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear upsampling with align_corners=True, as torch's (deprecated) module does."""

    def __init__(self, size: Optional[IntOrTuple] = None, scale_factor: Optional[float] = None):
        super().__init__(size, scale_factor, "bilinear", align_corners=True)


class _Pad(Module):
    mode, dims = "constant", 1

    def __init__(self, padding: IntOrTuple, value: float = 0.0):
        super().__init__()
        self.padding = (padding,) * (2 * self.dims) if isinstance(padding, int) else tuple(padding)
        if len(self.padding) != 2 * self.dims:
            raise ValueError(f"{type(self).__name__}: padding needs {2 * self.dims} numbers (left, right, ...), got "
                             f"{self.padding}")
        self.value = value

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x, self.padding, self.mode, self.value) if self.mode == "constant" else \
            F.pad(x, self.padding, self.mode)

    def extra_repr(self) -> str:
        return f"{self.padding}" + (f", value={self.value}" if self.mode == "constant" else "")


def _pad(name: str, mode: str, dims: int) -> type[Module]:
    return type(name, (_Pad,), {"mode": mode, "dims": dims, "__doc__": f"{mode} padding of the last {dims} dim(s)"})


ZeroPad1d, ZeroPad2d, ZeroPad3d = (_pad(f"ZeroPad{n}d", "constant", n) for n in (1, 2, 3))
ConstantPad1d, ConstantPad2d, ConstantPad3d = (_pad(f"ConstantPad{n}d", "constant", n) for n in (1, 2, 3))
ReflectionPad1d, ReflectionPad2d, ReflectionPad3d = (_pad(f"ReflectionPad{n}d", "reflect", n) for n in (1, 2, 3))
ReplicationPad1d, ReplicationPad2d, ReplicationPad3d = (_pad(f"ReplicationPad{n}d", "replicate", n) for n in (1, 2, 3))
CircularPad1d, CircularPad2d, CircularPad3d = (_pad(f"CircularPad{n}d", "circular", n) for n in (1, 2, 3))
