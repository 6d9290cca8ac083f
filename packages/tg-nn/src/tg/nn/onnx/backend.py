"""onnx.backend interface for tg, so that ONNX's own backend test suite can run against it."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
from onnx.backend.base import Backend, BackendRep

from . import lowp
from .model import OnnxModel
from .ops import find_op


class TgRep(BackendRep):
    def __init__(self, model: OnnxModel):
        self.model = model

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        feed = inputs if isinstance(inputs, dict) else dict(zip(self.model.input_names, inputs))
        out = self.model(feed)
        declared = [o.type.tensor_type.elem_type for o in self.model.outputs]
        return tuple(_to_numpy(out[n], code) for n, code in zip(self.model.output_names, declared))


def _to_numpy(value: Any, code: int) -> Any:
    """An output as NumPy, in its declared type where tg emulated it (see lowp)."""
    if isinstance(value, list):
        return [v.numpy() for v in value]
    if value is None:
        return None
    arr = value.numpy()
    return lowp.from_carrier(arr, code) if code in lowp.EMULATED else arr


class TgBackend(Backend):
    @classmethod
    def is_compatible(cls, model: Any, device: str = "CPU", **kwargs: Any) -> bool:
        return all(find_op(n.domain, n.op_type) is not None for n in model.graph.node)

    @classmethod
    def prepare(cls, model: Any, device: str = "CPU", **kwargs: Any) -> TgRep:
        super().prepare(model, device, **kwargs)
        return TgRep(OnnxModel(model, kwargs.get("tg_device")))

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"

    @classmethod
    def run_model(cls, model: Any, inputs: Any, device: str = "CPU", **kwargs: Any) -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: Any, inputs: Any, device: str = "CPU", outputs_info: Optional[Any] = None,
                 **kwargs: Any) -> Any:
        raise NotImplementedError("tg runs whole models; use run_model")
