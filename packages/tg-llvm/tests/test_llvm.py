"""tg-llvm specifics: compile cache, threads, dtypes, generated source, errors. (The conformance kit,
run by tg-core's test session on every device, covers the ops.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tg.core import Tensor, counters, get_device, reset_counters


def test_registered_through_the_entry_point() -> None:
    import tg.core.device as device

    device.registry.load()
    assert device.registry.specs["llvm"][1] == "llvm"
    assert type(get_device("llvm")).__name__ == "LLVMDevice"


def test_large_kernels_split_over_threads_match_numpy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((1000, 300)).astype(np.float32), rng.standard_normal(300).astype(np.float32)
    ta, tb = Tensor(a, device="llvm"), Tensor(b, device="llvm")
    out = ((ta * tb + 1).relu().sum(1)).numpy()
    np.testing.assert_allclose(out, np.maximum(a * b + 1, 0).sum(1), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose((ta * 2).exp().numpy(), np.exp(a * 2), rtol=1e-5)
    dev = get_device("llvm")
    from tg.core.lower import lower
    from tg.core.schedule import schedule

    prog = lower(schedule([(ta * 2).exp().node])[0].kernel)
    assert dev.chunks(prog) == min(dev.threads, 1000)


def spec_cast(x: np.ndarray, to: str) -> np.ndarray:
    """NumPy's astype, except floats to ints: truncated and saturated, NaN as 0 (tg's semantics; NumPy leaves
    out-of-range values to the CPU)."""
    if x.dtype.kind != "f" or np.dtype(to).kind not in "iu":
        return x.astype(to)
    info = np.iinfo(to)
    wide = np.nan_to_num(np.trunc(x.astype(np.float64)), nan=0.0)
    out = np.clip(wide, info.min, info.max).astype(to)
    out[wide >= float(info.max)] = info.max  # 64-bit maxima round up as floats
    return out


@pytest.mark.parametrize("dtype", ["float16", "float64", "int8", "uint8", "int16", "int32", "int64", "bool"])
def test_dtypes_and_casts_match_numpy(dtype: str) -> None:
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(64) * 50).astype(dtype)
    t = Tensor(x, device="llvm")
    np.testing.assert_array_equal(t.cast("float32").numpy(), x.astype(np.float32))
    if dtype != "bool":
        np.testing.assert_array_equal((t + t).numpy(), x + x)
        np.testing.assert_array_equal(t.maximum(t * 0).numpy(), np.maximum(x, x * 0))
    np.testing.assert_array_equal((t < t * 0).numpy(), x < x * 0)
    np.testing.assert_array_equal(Tensor(x.astype(np.float32) * 1.7, device="llvm").cast(dtype).numpy(),
                                  spec_cast(x.astype(np.float32) * 1.7, dtype))


def test_integer_division_by_zero_does_not_crash() -> None:
    a = Tensor(np.array([7, -7, np.iinfo(np.int32).min, 5], np.int32), device="llvm")
    b = Tensor(np.array([0, 2, -1, 0], np.int32), device="llvm")
    out = a.div(b, rounding_mode="trunc").numpy()
    assert out[1] == -3 and out[0] == 0 and out[3] == 0


def test_debug_4_prints_the_llvm_ir(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("TG_DEBUG", "4")
    Tensor([1.0, 2.0], device="llvm").sin().realize()
    err = capsys.readouterr().err
    assert "define void @tg_" in err and "llvm.sin.f32" in err
    Tensor([1.0, 2.0], device="llvm").exp().realize()  # exp2 as arithmetic on the bits (softmath.py): no libm call
    err = capsys.readouterr().err
    assert "bitcast i32" in err and "llvm.exp2" not in err


CHILD = """
import json, numpy as np
from tg.core import Tensor, counters
out = (Tensor(np.arange(8, dtype=np.float32), device="llvm") * 3 + 1).sum().item()
print(json.dumps({"out": out, "compiles": counters.compiles}))
"""


def test_second_process_reuses_the_disk_cache(tmp_path: Path) -> None:
    # the caller's environment (Python's paths) without its TG_ settings, and an empty cache
    env = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    env.update(TG_CACHE_DIR=str(tmp_path))
    runs = [json.loads(subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                                      check=True).stdout) for _ in range(2)]
    assert runs[0]["out"] == runs[1]["out"] == 92.0
    assert runs[0]["compiles"] >= 1 and runs[1]["compiles"] == 0
    assert list((tmp_path / "llvm").glob("*.o"))


def test_compiles_once_per_kernel_shape() -> None:
    a = Tensor(np.ones(100, np.float32), device="llvm")
    (a * 2 + 5).realize()
    reset_counters()
    for _ in range(3):
        (a * 2 + 5).realize()
    assert counters.compiles == 0 and counters.kernels == 3


@pytest.mark.parametrize("shapes", [((64, 96), (96, 128)), ((3, 37, 50), (50, 33)), ((8, 64), (64, 32)),
                                    ((2, 5, 16, 8), (8, 64))], ids=str)
def test_register_tiled_contractions_match_numpy(shapes: tuple) -> None:
    rng = np.random.default_rng(2)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in shapes)
    bias = rng.standard_normal(shapes[1][-1]).astype(np.float32)
    ta, tb, tbias = (Tensor(v, device="llvm") for v in (a, b, bias))
    out = ((ta @ tb) * 0.5 + tbias).relu().numpy()  # post-reduce ops run inside the tile too
    np.testing.assert_allclose(out, np.maximum((a @ b) * 0.5 + bias, 0), rtol=1e-4, atol=1e-4)
    padded = (ta.pad((1, 2)) @ tb.pad((0, 0, 1, 2))).numpy()  # masked loads inside the tile
    np.testing.assert_allclose(padded, np.pad(a, [(0, 0)] * (a.ndim - 1) + [(1, 2)]) @
                               np.pad(b, [(0, 0)] * (b.ndim - 2) + [(1, 2), (0, 0)]), rtol=1e-4, atol=1e-4)
    ints = (Tensor(a.astype(np.int32), device="llvm") @ Tensor(b.astype(np.int32), device="llvm")).numpy()
    np.testing.assert_array_equal(ints, a.astype(np.int32) @ b.astype(np.int32))
    assert not ta.requires_grad


def test_matmul_gets_a_register_tile() -> None:
    from tg.core.lower import lower
    from tg.core.schedule import schedule

    a, b = Tensor.rand(64, 64, device="llvm"), Tensor.rand(64, 512, device="llvm")
    prog = lower(schedule([(a @ b).node])[0].kernel)
    assert prog.tiled and prog.notes == ["upcast dim 0 by 8", "upcast dim 1 by 32", "loop order [1, 0]"]
    small = lower(schedule([(a @ b[:, :64]).node])[0].kernel)  # too few column tiles to share: rows outermost
    assert small.notes == ["upcast dim 0 by 8", "upcast dim 1 by 32"] and small.outer_size == 8


def test_every_cast_matches_numpy_and_needs_no_runtime_library() -> None:
    """Casts to and from half would call compiler-rt helpers that a JIT cannot resolve (a crash): checked."""
    names = ["float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bool"]
    x = np.concatenate([np.random.default_rng(0).standard_normal(16) * 20, [300.0, -300.0, 1e30, -1e30]])
    for a in names:
        for b in names:
            src = x.astype(a)
            got, expected = Tensor(src, device="llvm").cast(b).numpy(), spec_cast(src, b)
            np.testing.assert_array_equal(got, expected, err_msg=f"{a} -> {b}")
    h = Tensor(np.array([5.5, -7.25, 3.0], np.float16), device="llvm")
    np.testing.assert_array_equal((h % 2).numpy(), np.array([5.5, -7.25, 3.0], np.float16) % 2)


def test_evicted_programs_free_their_machine_code(monkeypatch) -> None:
    """The device keeps TG_PROGRAM_CACHE programs; the MCJIT engines whose kernels were all evicted are freed, and
    an evicted kernel that is needed again is rebuilt and still right."""
    import gc
    import weakref

    import tg.llvm.device as llvm_device
    from tg.core import registry

    dev = registry.open("llvm")
    monkeypatch.setattr(dev, "programs", type(dev.programs)())
    monkeypatch.setattr(dev, "program_limit", 16)
    monkeypatch.setattr(llvm_device, "KERNELS_PER_ENGINE", 8)
    engines: list[weakref.ref] = []
    original = dev.compiler.new_engine

    def tracked():
        engine = original()
        engines.append(weakref.ref(engine))
        return engine

    monkeypatch.setattr(dev.compiler, "new_engine", tracked)
    x = Tensor(np.arange(6, dtype=np.int32), device="llvm")
    for i in range(120):  # an integer divisor stays in the code: a new kernel per value
        assert (x * 3 // (i + 3)).tolist() == [3 * v // (i + 3) for v in range(6)]
    gc.collect()
    assert len(dev.programs) <= 16
    assert len(engines) >= 10 and sum(e() is not None for e in engines) <= 16 // 8 + 2
    assert (x * 3 + 0).tolist() == [0, 3, 6, 9, 12, 15]


def test_one_source_compiled_for_two_sizes_is_two_binaries() -> None:
    """Sizes are launch arguments, so x * x over 16 and over 1M elements is one source; the small one is compiled
    without vectorising (compile time). The binary cache keyed the source alone, so every later x * x ran that
    scalar code: 4M elements 8x slower than NumPy. The compile options are part of the key now."""
    from tg.core.schedule import schedule

    dev = get_device("llvm")
    programs = []
    for n in (16, 1 << 20):
        x = Tensor(np.ones(n, np.float32), device="llvm")
        programs.append(dev.program(schedule([(x * x).node])[-1].kernel))
    small, big = programs
    assert small.source == big.source and small.name != big.name
    assert dev.compiler.passes(big.prog)["vectorize_loops"] and not dev.compiler.passes(small.prog)["vectorize_loops"]


def test_a_padded_copy_vectorises_its_masked_loads() -> None:
    """A read through a padding mask used to load from a clamped address, which LLVM can only gather lane by lane (a
    padded copy at 2 GB/s); the load now sits in a block entered when the mask holds, and the loop vectoriser makes
    masked vector loads of it. The optimised module has them; the values, edges and a negative offset included, match
    NumPy (a masked-off lane reads no memory: lanes before the buffer's start are masked)."""
    from tg.core.schedule import schedule

    dev = get_device("llvm")
    x = np.arange(64 * 30 * 30, dtype=np.float32).reshape(64, 30, 30) - 5.0
    t = Tensor(x, device="llvm").realize()
    padded = t.pad((3, 2, 1, 4))
    kernel = [it.kernel for it in schedule([padded.contiguous().node]) if it.kernel is not None][-1]
    program = dev.program(kernel)
    passes = dev.compiler.passes(program.prog)  # the options the compiler runs this kernel with
    assert passes == {"vectorize_loops": True, "unroll": False}
    module = dev.compiler.optimised(program.name, program.source, dev.compiler.machine, **passes)
    assert "llvm.masked.load" in str(module)
    np.testing.assert_array_equal(padded.numpy(), np.pad(x, ((0, 0), (1, 4), (3, 2))))
    np.testing.assert_array_equal(t.pad((-2, 5, 0, 0)).numpy(), np.pad(x[:, :, 2:], ((0, 0), (0, 0), (0, 5))))


def test_a_small_kernel_with_a_long_body_is_vectorised() -> None:
    """Small kernels compile quickly, without the vectorisers. Their size now counts the body's length too: a
    softmax's 32-term sums over 1,024 rows (exp as ~30 operations of arithmetic, ~800 in all) ran 145 us as scalar
    code and 28 with its accumulators vectorised, while a plain add of as many elements stays a quick compile. Values
    match NumPy either way."""
    from tg.core.schedule import schedule

    dev = get_device("llvm")
    x = np.random.default_rng(2).standard_normal((1024, 32)).astype(np.float32)
    t = Tensor(x, device="llvm")
    long_body = t.exp().sum(1).log()
    short_body = t + 1.0
    for out, vectorised in ((long_body, True), (short_body, False)):
        kernel = [it.kernel for it in schedule([out.node]) if it.kernel is not None][-1]
        passes = dev.compiler.passes(dev.program(kernel).prog)  # the quick compile turns both vectorisers off
        assert (passes.get("slp", True) or passes["vectorize_loops"]) == vectorised, passes
    np.testing.assert_allclose(long_body.numpy(), np.log(np.exp(x.astype(np.float64)).sum(1)), rtol=1e-5)
    np.testing.assert_array_equal(short_body.numpy(), x + np.float32(1.0))
