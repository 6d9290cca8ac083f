"""Ahead-of-time export: build the exported model into a C program with gcc and compare with tg."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tg.core import Tensor
from tg.llvm import export

MAIN_C = """
#include <stdio.h>
#include "model.h"
int main(void) {
    float x[%(n_in)d], y[%(n_out)d];
    if (fread(x, sizeof(float), %(n_in)d, stdin) != %(n_in)d) return 2;
    model(x, y);
    fwrite(y, sizeof(float), %(n_out)d, stdout);
    return 0;
}
"""


def test_exported_mlp_runs_from_c(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal((16, 32)).astype(np.float32), rng.standard_normal(32).astype(np.float32)
    w2 = rng.standard_normal((32, 10)).astype(np.float32)
    x = Tensor(rng.standard_normal((4, 16)).astype(np.float32), device="llvm")

    def forward(inp: Tensor) -> Tensor:
        h = (inp @ Tensor(w1, device="llvm") + Tensor(b1, device="llvm")).relu()
        return (h @ Tensor(w2, device="llvm")).log_softmax(1)

    result = export([forward(x)], [x], tmp_path / "model", name="model")
    assert result.signature == "void model(const float *in0, float *out0);"
    (tmp_path / "main.c").write_text(MAIN_C % {"n_in": 4 * 16, "n_out": 4 * 10})
    exe = tmp_path / "main"
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(tmp_path / "main.c"), str(result.object_path), "-lm"],
                   check=True, cwd=tmp_path)
    for trial in range(2):  # fresh inputs: the exported code reads them, nothing is baked in
        data = rng.standard_normal((4, 16)).astype(np.float32)
        out = subprocess.run([str(exe)], input=data.tobytes(), capture_output=True, check=True).stdout
        got = np.frombuffer(out, np.float32).reshape(4, 10)
        expected = forward(Tensor(data, device="llvm")).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=f"trial {trial}")
    assert result.library_path is not None and result.library_path.exists()


def test_export_rejects_unrealized_inputs(tmp_path: Path) -> None:
    x = Tensor.ones(2, 2, device="llvm") * 2
    with pytest.raises(ValueError, match="must be realized data"):
        export([x + 1], [x], tmp_path / "m")
