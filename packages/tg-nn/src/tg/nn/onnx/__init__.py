"""tg.nn.onnx: ONNX models as tg Tensor graphs (extra `tg-nn[onnx]`, which brings the `onnx` package).

>>> from tg.nn import onnx
>>> model = onnx.load("model.onnx", device="llvm")      # doctest: +SKIP
>>> outputs = model(input=x)                             # doctest: +SKIP
"""
from __future__ import annotations

from .model import OnnxModel, load
from .ops import OPS, OnnxError

__all__ = ["OPS", "OnnxError", "OnnxModel", "load"]
