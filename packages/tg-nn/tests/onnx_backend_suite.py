"""ONNX's backend test suite (node tests and the other offline categories) run against tg.

    pytest packages/tg-nn/tests/onnx_backend_suite.py -q     (what `nox -s onnx` runs)

EXCLUDE lists what tg cannot support by design (data types it has no device type for). Everything
else runs, and what fails is work still to do: the pass count is the figure to watch. (The file is
not named test_*.py so that `nox -s tests` does not collect it.)
"""
from __future__ import annotations

import onnx.backend.test

from tg.nn.onnx.backend import TgBackend

backend_test = onnx.backend.test.BackendTest(TgBackend, __name__)

# Not supported, by reason (regular expressions over test names):
EXCLUDE = [
    r"test_.*_cuda",                                   # tg's ONNX backend reports CPU only
    r"test_.*(string|STRING).*",                       # no string tensors
    r"test_.*(complex64|complex128).*",                # no complex dtypes
]
for pattern in EXCLUDE:
    backend_test.exclude(pattern)

globals().update(backend_test.enable_report().test_cases)
