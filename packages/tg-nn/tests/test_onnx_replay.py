"""Imported models replay a compiled program per input signature (tg.nn.onnx.compiled): every call still gives
onnxruntime's answer, also when the model decides something from its input data, and a replay builds no graph."""
from __future__ import annotations

import io
import os
import threading

import numpy as np
import pytest

if os.environ.get("TG_REQUIRE_TORCH"):
    import onnx
    import onnxruntime
    import torch
else:
    torch = pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper

from tg.core import counters
from tg.nn.onnx import load


def encoder_model() -> bytes:
    """A TransformerEncoderLayer exported by torch: its reshapes compute their shapes from Shape nodes."""
    torch.manual_seed(0)

    class Encoder(torch.nn.Module):  # called with one argument: the tracing exporter cannot pass optional flags
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer(x)

    layer = Encoder().eval()
    buf = io.BytesIO()
    torch.onnx.export(layer, (torch.zeros(2, 5, 16),), buf, input_names=["x"], output_names=["y"], dynamo=False,
                      opset_version=17, dynamic_axes={"x": {0: "batch", 1: "seq"}})
    return buf.getvalue()


def graph(nodes: list, inputs: list, outputs: list, initializers: tuple = ()) -> bytes:
    g = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def sign_branch_model() -> bytes:
    """y = x + 1 where sum(x) > 0, else x * -2: an If on a condition computed from the input."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    minus2 = helper.make_tensor("minus2", TensorProto.FLOAT, [], [-2.0])
    then = helper.make_graph([helper.make_node("Add", ["x", "one"], ["a"])], "then", [],
                             [helper.make_tensor_value_info("a", TensorProto.FLOAT, [3])])
    other = helper.make_graph([helper.make_node("Mul", ["x", "minus2"], ["b"])], "else", [],
                              [helper.make_tensor_value_info("b", TensorProto.FLOAT, [3])])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0), helper.make_node("Greater", ["s", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)]
    return graph(nodes, [x], [y], (zero, one, minus2))


def rate_model() -> bytes:
    """y = x * 2 at a sample rate of 16000, else x * 3: an If on an input that rarely changes (as in Silero VAD)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    sr = helper.make_tensor_value_info("sr", TensorProto.INT64, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])
    rate = helper.make_tensor("rate", TensorProto.INT64, [], [16000])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    three = helper.make_tensor("three", TensorProto.FLOAT, [], [3.0])
    then = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["a"])], "then", [],
                             [helper.make_tensor_value_info("a", TensorProto.FLOAT, [3])])
    other = helper.make_graph([helper.make_node("Mul", ["x", "three"], ["b"])], "else", [],
                              [helper.make_tensor_value_info("b", TensorProto.FLOAT, [3])])
    nodes = [helper.make_node("Equal", ["sr", "rate"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)]
    return graph(nodes, [x, sr], [y], (rate, two, three))


def nonzero_model() -> bytes:
    """The positions of the positive entries: an output whose shape depends on the data."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [6])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, [1, None])
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    nodes = [helper.make_node("Greater", ["x", "zero"], ["p"]), helper.make_node("NonZero", ["p"], ["y"])]
    return graph(nodes, [x], [y], (zero,))


def gather_model() -> bytes:
    """Rows of a table picked by the input's indices (checked against the table's size on every call)."""
    idx = helper.make_tensor_value_info("i", TensorProto.INT64, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    table = helper.make_tensor("table", TensorProto.FLOAT, [4, 3], np.arange(12, dtype=np.float32).tolist())
    return graph([helper.make_node("Gather", ["table", "i"], ["y"])], [idx], [y], (table,))


def reference(data: bytes, feed: dict) -> np.ndarray:
    return onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feed)[0]


def test_replay_matches_onnxruntime_and_builds_no_graph() -> None:
    data, model = encoder_model(), None
    model = load(data)
    kept = []
    for i in range(5):
        x = np.random.default_rng(i).standard_normal((2, 5, 16)).astype(np.float32)
        ops = counters.ops
        out = model(x=x)["y"]
        if i >= 2:
            assert counters.ops == ops, "a replay builds no graph"
        kept.append((out, reference(data, {"x": x})))
    for out, ref in kept:  # earlier results are not overwritten by later calls
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-5)
    x = np.random.default_rng(9).standard_normal((3, 5, 16)).astype(np.float32)  # a new signature (batch 3)
    for _ in range(3):
        np.testing.assert_allclose(model(x=x)["y"].numpy(), reference(data, {"x": x}), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make", [sign_branch_model, nonzero_model])
def test_decisions_on_input_data_are_taken_every_call(make) -> None:  # type: ignore[no-untyped-def]
    data = make()
    model = load(data)
    for i in range(6):
        x = np.random.default_rng(i).standard_normal(3 if make is sign_branch_model else 6).astype(np.float32)
        x *= 1 if i % 2 else -1
        np.testing.assert_array_equal(model(x=x)["y"].numpy(), reference(data, {"x": x}))


def test_a_decision_on_an_input_replays_while_the_input_stays_the_same() -> None:
    model = load(rate_model())
    x = np.array([1.0, -2.0, 3.0], np.float32)
    for i, rate in enumerate([16000, 16000, 16000, 16000, 8000, 16000, 8000, 8000, 8000, 8000, 16000]):
        ops = counters.ops
        out = model(x=x * (i + 1), sr=np.array(rate, np.int64))["y"].numpy()
        np.testing.assert_array_equal(out, x * (i + 1) * (2 if rate == 16000 else 3))
        if i in (2, 3, 5):
            assert counters.ops == ops, "replayed: the rate is the captured one"
        if i == 4:
            assert counters.ops > ops, "the rate changed: computed eagerly"


def test_index_checks_run_in_replays() -> None:
    model = load(gather_model())
    for i in ([0, 3], [1, 2], [2, 0], [3, 3]):
        np.testing.assert_array_equal(model(i=np.array(i))["y"].numpy(), np.arange(12.0).reshape(4, 3)[i])
    with pytest.raises(IndexError, match="out of bounds"):
        model(i=np.array([0, 4]))


def test_threads_calling_one_model_get_their_own_answers() -> None:
    data = encoder_model()
    model = load(data)
    xs = [np.random.default_rng(i).standard_normal((2, 5, 16)).astype(np.float32) for i in range(8)]
    refs = [reference(data, {"x": x}) for x in xs]
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for j in range(4):
                i = (k + j) % len(xs)
                np.testing.assert_allclose(model(x=xs[i])["y"].numpy(), refs[i], rtol=1e-4, atol=1e-5)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_jit_false_runs_every_call_eagerly() -> None:
    model = load(encoder_model(), jit=False)
    x = np.zeros((2, 5, 16), np.float32)
    for _ in range(3):
        ops = counters.ops
        model(x=x)
        assert counters.ops > ops


def test_a_model_inside_the_callers_own_tinyjit() -> None:
    """A user's TinyJit around the model call (the way to replay before this existed) still captures and replays."""
    from tg.core import Tensor, TinyJit

    data = encoder_model()
    model = load(data)
    step = TinyJit(lambda t: model(x=t)["y"])
    for i in range(4):
        x = np.random.default_rng(i).standard_normal((2, 5, 16)).astype(np.float32)
        np.testing.assert_allclose(step(Tensor(x)).numpy(), reference(data, {"x": x}), rtol=1e-4, atol=1e-5)


def test_pow_by_a_stored_or_a_fed_exponent() -> None:
    """A stored integer exponent is read once (exact products, broadcast to the exponent's rank); one fed as an
    input is read again by every replay: the answers follow it."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    e = helper.make_tensor_value_info("e", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [4])
    three = helper.make_tensor("three", TensorProto.FLOAT, [1, 1], [3.0])
    data = graph([helper.make_node("Pow", ["x", "three"], ["y"]), helper.make_node("Pow", ["x", "e"], ["z"])],
                 [x, e], [y, z], (three,))
    model, session = load(data), onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    base = np.array([1.5, -2.0, 0.0, np.nan], np.float32)
    for i, power in enumerate([2.0, 2.0, 2.0, 3.0, -1.0, 0.5, 2.0]):  # replays from the third call
        feed = {"x": base * (i + 1), "e": np.array([power], np.float32)}
        out, want = model(**feed), session.run(None, feed)
        assert out["y"].shape == (1, 4)
        np.testing.assert_allclose(out["y"].numpy(), want[0], rtol=1e-6)
        np.testing.assert_allclose(out["z"].numpy(), want[1], rtol=1e-6)


@pytest.mark.parametrize("rows", [16, 1])
def test_a_gemm_weight_read_transposed_is_stored_in_the_layout_its_product_reads(rows: int) -> None:
    """A Gemm with transB=1 (torch's Linear) reads its initializer transposed: once the first call has shown the
    Gemm 8 or more rows, tg keeps that initializer as a transposed view of an (in, out) buffer, so the product reads
    the buffer directly and no call copies the weight into that layout first; a matrix-vector product (one row)
    reads the weight as given, a contiguous row per output. Every reader (here also a MatMul of the weight as
    given) still sees the same values."""
    from onnx import numpy_helper

    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((5, 7)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "b"], ["h"], transB=1), helper.make_node("MatMul", ["h", "W"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, 7])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    x = rng.standard_normal((rows, 7)).astype(np.float32)
    want = onnxruntime.InferenceSession(proto).run(None, {"x": x})[0]
    model = load(proto)
    assert model.initializers["W"].node.base.shape == (5, 7)  # as given until a call shows the rows
    for _ in range(4):
        np.testing.assert_allclose(model(x=x)["y"].numpy(), want, rtol=1e-5, atol=1e-5)
    weight = model.initializers["W"]
    assert weight.shape == (5, 7) and weight.node.base.shape == ((7, 5) if rows >= 8 else (5, 7))
