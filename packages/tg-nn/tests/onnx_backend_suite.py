"""ONNX's backend test suite (node tests and the other offline categories) run against tg.

    pytest packages/tg-nn/tests/onnx_backend_suite.py -q     (what `nox -s onnx` runs)

EXCLUDE lists what tg does not support, each with the reason; everything else must pass.
"""
from __future__ import annotations

import onnx.backend.test

from tg.nn.onnx.backend import TgBackend

backend_test = onnx.backend.test.BackendTest(TgBackend, __name__)

# Not supported, by reason (regular expressions over test names):
EXCLUDE = [
    r"test_.*_cuda",                       # tg's ONNX backend reports CPU only
]
for pattern in EXCLUDE:
    backend_test.exclude(pattern)

globals().update(backend_test.enable_report().test_cases)
