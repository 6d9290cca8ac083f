"""tg-llvm has no code yet: check that it installs into the shared `tg` namespace."""
import importlib


def test_installs_into_the_tg_namespace() -> None:
    mod = importlib.import_module("tg.llvm")
    assert mod.__version__ == "0.1.0"
    tg = importlib.import_module("tg")
    assert getattr(tg, "__file__", None) is None, "no distribution may ship tg/__init__.py (PEP 420 namespace)"
