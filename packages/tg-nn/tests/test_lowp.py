"""ONNX's narrow types: tg's rounding rules, written out by hand from ONNX's spec, whatever ml_dtypes is installed."""
from __future__ import annotations

import math

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from tg.core import Tensor  # noqa: E402
from tg.nn.onnx import load, lowp  # noqa: E402

nan, inf = math.nan, math.inf
CASES = [  # (ONNX type code, saturate, inputs, expected)
    (22, True, [-9, -8.5, -7.5, 2.5, 3.5, 7.4, 7.6, 100, nan, inf, -inf], [-8, -8, -8, 2, 4, 7, 7, 7, 0, 7, -8]),
    (21, True, [-3, 0.5, 1.5, 14.5, 15.5, 300], [0, 0, 2, 14, 15, 15]),
    (25, True, [-1, 0.5, 1.5, 2.5, 3.6, 9], [0, 0, 2, 2, 3, 3]),
    (26, True, [-3, -1.5, 1.5, 2, nan], [-2, -2, 1, 1, 0]),
    (17, True, [1000, inf, -inf, nan, 0.3, 464, 465, -0.0], [448, 448, -448, nan, 0.3125, 448, 448, -0.0]),
    (17, False, [1000, inf, -inf, 464, 465], [nan, nan, nan, 448, nan]),
    (18, True, [-0.0, -1e-9, 241, 0.3], [0.0, 0.0, 240, 0.3125]),
    (19, False, [1e6, 61440, -inf, 57344], [inf, inf, -inf, 57344]),
    (19, True, [1e6, 61440, -inf], [57344, 57344, -57344]),
    (20, False, [inf, 1e6, -0.0], [nan, nan, 0.0]),
    (23, True, [nan, 0.25, 0.75, 2.5, 5, 7, -inf, -0.0], [6, 0, 1, 2, 4, 6, -6, -0.0]),
    (16, True, [1.00390625, 1.01171875, inf, 3.4e38, -0.0], [1.0, 1.015625, inf, inf, -0.0]),
]


@pytest.mark.parametrize("code,saturate,x,want", CASES)
def test_round_to_follows_onnx_rules(code: int, saturate: bool, x: list, want: list) -> None:
    got = lowp.round_to(Tensor(np.array(x, np.float32), device="numpy"), code, saturate).numpy()
    assert got.dtype == lowp.carrier(code).np
    np.testing.assert_array_equal(got, np.array(want, got.dtype))
    if got.dtype.kind == "f":  # the sign of zero too
        np.testing.assert_array_equal(np.signbit(got), np.signbit(np.array(want, got.dtype)))


def test_int_to_narrow_int_keeps_low_bits() -> None:
    x = Tensor(np.array([9, -9, 200, 7, -8], np.int32), device="numpy")
    np.testing.assert_array_equal(lowp.round_to(x, 22).numpy(), [-7, 7, -8, 7, -8])
    np.testing.assert_array_equal(lowp.round_to(x, 21).numpy(), [9, 7, 8, 7, 8])


def test_cast_to_int4_through_a_model() -> None:
    """A Cast graph end to end: the output comes back as ml_dtypes' int4 holding the saturated values."""
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.INT4)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.INT4, [4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    from tg.nn.onnx.backend import TgBackend

    (out,) = TgBackend.prepare(model, tg_device="numpy").run([np.array([-9, 2.5, 7.6, 20], np.float32)])
    assert out.dtype.name == "int4"
    np.testing.assert_array_equal(out.astype(np.int8), [-8, 2, 7, 7])
    assert load(model)(x=np.array([1.4, -1.6, 0, 9], np.float32))["y"].numpy().tolist() == [1, -2, 0, 7]
