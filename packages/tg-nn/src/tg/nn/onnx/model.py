"""An ONNX model translated to tg Tensor ops: load it once, call it with inputs, differentiate through it."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from tg.core import Tensor

from . import contrib, control, indexing, lowp, pooling, quant, recurrent, resize, signal, training, vision  # noqa: F401  (each module registers its ops in OPS)
from .compiled import NotReplayable, SignatureRuns
from .ops import TENSOR_TYPES, Context, OnnxError, find_op, remember

MIN_OPSET = 7  # the oldest ai.onnx opset whose semantics tg implements
# a Gemm of at least this many rows reads its transB weight from a transposed copy made once (as tg.core's scheduler
# re-lays out a contraction's operand per call from this many rows on)
GEMM_ROWS = 8
ONNX_DTYPES = {code: d.name for code, d in TENSOR_TYPES.items()} | {code: c.name for code, (_, c) in
                                                                   lowp.EMULATED.items()}


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as e:
        raise ImportError("ONNX import needs the onnx package: pip install 'tg-nn[onnx]' (or pip install onnx)") from e
    return onnx


class OnnxModel:
    """A runnable ONNX graph: `model(name=tensor, ...)` or `model({name: array})` -> {output name: Tensor}.

    With `jit` (the default), calls are replayed as a compiled program per input signature from the third call on
    (see tg.nn.onnx.compiled): signatures where the model decides something from its input data run eagerly, as
    do calls that need gradients."""

    def __init__(self, proto: Any, device: Optional[str] = None, jit: bool = True):
        onnx = _onnx()
        try:
            onnx.checker.check_model(proto)
        except Exception as e:
            raise OnnxError(f"onnx: the model does not pass onnx.checker: {e}") from e
        self.proto, self.device = proto, device
        self.opsets = {o.domain or "ai.onnx": o.version for o in proto.opset_import}
        version, newest = self.opsets.get("ai.onnx"), onnx.defs.onnx_opset_version()
        if version is not None and not 1 <= version <= newest:
            raise OnnxError(f"onnx: the model imports ai.onnx opset {version}, which does not exist (the installed "
                            f"onnx {onnx.__version__} knows 1 to {newest}); tg runs opsets {MIN_OPSET} to {newest}")
        if version is not None and version < MIN_OPSET:
            warnings.warn(f"onnx: the model imports ai.onnx opset {version}; tg implements opsets {MIN_OPSET} to "
                          f"{newest}, and ops whose definition changed since may differ (onnx.version_converter "
                          "can update the model)", stacklevel=3)
        graph = proto.graph
        numpy_helper = onnx.numpy_helper
        arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.initializers = {name: lowp.tensor(a, device) for name, a in arrays.items()}
        self.known: dict[str, np.ndarray] = {}  # the host values of 0-d integer initializers (Context.known)
        for name, a in arrays.items():
            remember(self.known, name, a)
        self.layouts_chosen = False  # see _store_transposed
        self.types = {t.name: t.data_type for t in graph.initializer if t.data_type in lowp.EMULATED}
        self.types |= {v.name: v.type.tensor_type.elem_type for v in graph.input
                       if v.type.tensor_type.elem_type in lowp.EMULATED}
        self.inputs = [i for i in graph.input if i.name not in self.initializers]
        self.outputs = list(graph.output)
        self.input_names = [i.name for i in self.inputs]
        self.output_names = [o.name for o in self.outputs]
        unsupported = sorted({(n.domain or "ai.onnx", n.op_type) for n in graph.node
                              if find_op(n.domain, n.op_type) is None})
        self.unsupported = unsupported
        self.jit = jit
        self._runs = SignatureRuns(self._run)

    def _store_transposed(self, env: dict[str, Any]) -> None:
        """After the first call, when the rows each Gemm multiplies are known: keep each 2-D float initializer that a
        Gemm with GEMM_ROWS or more rows reads transposed (transB=1: a Linear layer's (out, in) weight) as a
        transposed view of an (in, out) buffer: the same values for every reader, and the product `a @ b.T` then
        reads that buffer with its output dim contiguous, as tg's register tiles want (stored as given, every call
        would first copy the weight into that layout: the scheduler's relayout of a contraction's operand). With
        fewer rows (a batch of one: a matrix-vector product) the weight stays as given, each output reading one
        contiguous row: ResNet-50's classifier read its 8 MB transposed a column at a time."""
        rows: dict[str, int] = {}
        for n in self.proto.graph.node:
            attrs = {a.name: a.i for a in n.attribute if a.name in ("transA", "transB")}
            a = env.get(n.input[0]) if n.op_type == "Gemm" and len(n.input) > 1 else None
            if isinstance(a, Tensor) and a.ndim == 2 and attrs.get("transB") == 1 and n.input[1] in self.initializers:
                m = a.shape[1] if attrs.get("transA") == 1 else a.shape[0]
                rows[n.input[1]] = max(rows.get(n.input[1], 0), m)
        for name, m in rows.items():
            t = self.initializers[name]
            if m >= GEMM_ROWS and t.ndim == 2 and t.dtype.is_float:
                self.initializers[name] = t.T.contiguous().realize().T

    def input_info(self) -> list[tuple[str, Optional[str], list[Union[int, str]]]]:
        """(name, dtype, shape) of each input; symbolic dims as strings."""
        return [_value_info(i) for i in self.inputs]

    def output_info(self) -> list[tuple[str, Optional[str], list[Union[int, str]]]]:
        return [_value_info(o) for o in self.outputs]

    def __call__(self, inputs: Optional[dict[str, Any]] = None, **kwargs: Any) -> dict[str, Tensor]:
        feed = {**(inputs or {}), **kwargs}
        unknown = sorted(set(feed) - set(self.input_names))
        if unknown:
            raise OnnxError(f"onnx: unknown input(s) {unknown}; the model takes {self.input_names}")
        values = []
        for info in self.inputs:
            if info.name not in feed:
                raise OnnxError(f"onnx: missing input {info.name!r}; the model takes {self.input_names}")
            values.append(self._convert(info, feed[info.name]))
        if self.unsupported:
            ops = ", ".join(f"{d}::{op} (opset {self.opsets.get(d, '?')})" for d, op in self.unsupported)
            raise OnnxError(f"onnx: unsupported operator(s) {ops}")
        outs = self._runs(values) if self._replayable(values) else None
        if outs is None:
            outs = self._run(values)
        return dict(zip(self.output_names, outs))

    def _replayable(self, values: list[Any]) -> bool:
        """Whether this call may go through a compiled replay: tensors in, no gradients wanted."""
        if not self.jit or not all(isinstance(v, Tensor) for v in values):
            return False
        return not any(t.requires_grad for t in [*values, *self.initializers.values()] if isinstance(t, Tensor))

    def _run(self, values: list[Any]) -> list[Any]:
        """One eager evaluation of the graph on the inputs `values` (in input order)."""
        env: dict[str, Any] = dict(self.initializers)
        env.update(zip(self.input_names, values))
        run_graph(self.proto.graph, env, self.opsets, self.device, dict(self.types), dict(self.known))
        if not self.layouts_chosen:
            self.layouts_chosen = True
            self._store_transposed(env)
        return [env[name] for name in self.output_names]

    def _convert(self, info: Any, value: Any) -> Any:
        """A fed value as the graph holds it: a Tensor, a list of them (sequence) or None (empty optional)."""
        if value is None or isinstance(value, list):
            return None if value is None else [v if isinstance(v, Tensor) else lowp.tensor(np.asarray(v), self.device)
                                               for v in value]
        t = value if isinstance(value, Tensor) else lowp.tensor(np.asarray(value), self.device)
        return self._check_input(info, t) if info.type.HasField("tensor_type") else t

    def _check_input(self, info: Any, t: Tensor) -> Tensor:
        name, dtype, shape = _value_info(info)
        if dtype is not None and t.dtype.name != dtype:
            raise OnnxError(f"onnx: input {name!r} must be {dtype}, got {t.dtype.name}")
        if shape and (len(shape) != t.ndim or any(isinstance(d, int) and d != n for d, n in zip(shape, t.shape))):
            raise OnnxError(f"onnx: input {name!r} must have shape {shape}, got {list(t.shape)}")
        return t


def run_graph(graph: Any, env: dict[str, Any], opsets: dict[str, int], device: Optional[str],
              types: Optional[dict[str, int]] = None, known: Optional[dict[str, np.ndarray]] = None) -> None:
    """Evaluate the graph's nodes in order into env (name -> Tensor); `types` tracks emulated element types, `known`
    the host values of small integer constants."""
    types = {} if types is None else types
    known = {} if known is None else known
    onnx = _onnx()
    for node in graph.node:
        fn = find_op(node.domain, node.op_type)
        if fn is None:
            raise OnnxError(f"onnx: unsupported operator {node.domain or 'ai.onnx'}::{node.op_type} (opset "
                            f"{opsets.get(node.domain or 'ai.onnx', '?')}) in node {node.name!r}")
        attrs = {a.name: _attribute(onnx.helper.get_attribute_value(a)) for a in node.attribute}
        args = [env[n] if n else None for n in node.input]
        ctx = Context(node, opsets.get("ai.onnx", 1), device, env, opsets, types, known)
        try:
            out = fn(ctx, *args, **attrs)
        except OnnxError:
            raise
        except NotReplayable as e:
            raise NotReplayable(f"{node.op_type} node {node.name!r}: {e}") from None
        except Exception as e:
            shapes = [tuple(a.shape) if isinstance(a, Tensor) else None for a in args]
            message = f"onnx: {node.op_type} node {node.name!r} failed on inputs {shapes}: {type(e).__name__}: {e}"
            raise (IndexError(message) if isinstance(e, IndexError) else OnnxError(message)) from e
        outs = out if isinstance(out, tuple) else (out,)  # a list is one sequence value
        for name, value in zip(node.output, outs):
            if name:
                env[name] = value


def _attribute(value: Any) -> Any:
    """ONNX string attributes arrive as bytes; ops compare them with str."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode() for v in value]
    return value


def _value_info(v: Any) -> tuple[str, Optional[str], list[Union[int, str]]]:
    t = v.type.tensor_type
    # a negative dim_value (exporters write -1) is a dynamic size, like a dim_param
    dims: list[Union[int, str]] = [d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else (d.dim_param or "?")
                                   for d in t.shape.dim]
    return v.name, ONNX_DTYPES.get(t.elem_type), dims


def load(model: Union[str, Path, bytes, Any], device: Optional[str] = None, jit: bool = True) -> OnnxModel:
    """Load an ONNX model from a path, bytes or a ModelProto, ready to run on `device`; with `jit`, repeated calls
    with one input signature replay a compiled program (OnnxModel)."""
    onnx = _onnx()
    if isinstance(model, (str, Path)):
        if not Path(model).exists():
            raise FileNotFoundError(f"onnx: no such file {model}")
        try:
            proto = onnx.load(str(model))
        except Exception as e:
            raise OnnxError(f"onnx: {model} is not a readable ONNX model ({e})") from e
    elif isinstance(model, bytes):
        try:
            proto = onnx.load_from_string(model)
        except Exception as e:
            raise OnnxError(f"onnx: the bytes are not an ONNX model ({e})") from e
    else:
        proto = model
    return OnnxModel(proto, device, jit)
