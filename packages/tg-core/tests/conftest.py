"""tg-core's own tests run on every device that opens, chosen as the conformance kit chooses."""
from tg.core.testing.conftest import pytest_generate_tests

__all__ = ["pytest_generate_tests"]
