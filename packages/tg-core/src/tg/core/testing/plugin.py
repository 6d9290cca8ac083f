"""pytest plugin (entry point `pytest11`): adds `--tg-device NAME` for the conformance kit.

It only adds the option; the kit's own conftest decides which tests run on which device.
"""
from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--tg-device", action="append", default=[],
                     help="tg device to run the conformance kit on (repeatable); default: every device that opens")
