"""onnx.backend interface for tg, so that ONNX's own backend test suite can run against it."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
from onnx.backend.base import Backend, BackendRep

from .model import OnnxModel
from .ops import find_op


class TgRep(BackendRep):
    def __init__(self, model: OnnxModel):
        self.model = model

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        feed = inputs if isinstance(inputs, dict) else dict(zip(self.model.input_names, inputs))
        out = self.model(feed)
        return tuple(_to_numpy(out[n]) for n in self.model.output_names)


def _to_numpy(value: Any) -> Any:
    if isinstance(value, list):
        return [v.numpy() for v in value]
    return None if value is None else value.numpy()


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
