"""Parametrizes the conformance kit's tests by device (the `--tg-device` option comes from plugin.py)."""
from __future__ import annotations

import os

import pytest

from tg.core import registry


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", devices_under_test(metafunc.config))


def devices_under_test(config: pytest.Config) -> list[str]:
    """--tg-device, else every device that opens; each of TG_REQUIRE_DEVICES (set by CI) must open."""
    asked = config.getoption("--tg-device", default=None) or []
    available = registry.available()
    required = [d for d in os.environ.get("TG_REQUIRE_DEVICES", "").split(",") if d]
    missing = [d for d in [*asked, *required] if registry.try_open(d) is None]
    if missing:
        raise pytest.UsageError(f"device(s) {missing} did not open (available: {available}); "
                                "python -m tg.core says why")
    return asked or available
