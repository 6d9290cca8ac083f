"""Real ONNX models shipped inside PyPI packages: tg (llvm) against onnxruntime on the same seeded input.

Install the packages without their dependencies, only for their model files, then run:

    pip install --no-deps rapidocr-onnxruntime ddddocr silero-vad
    python bench/bench_onnx_packages.py

Each model: the largest error against onnxruntime (relative to the output's scale, at least 1), load time, the
first call (compiles, unless the kernel cache has them), then the median of later calls (replayed) beside
onnxruntime's. A model with an operator tg does not implement is listed with it.
"""
from __future__ import annotations

import importlib.util
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime

from tg.core import Tensor, synchronize
from tg.nn.onnx import load

# package -> its models, with the input shape each is used at (their dynamic dims filled as the package does)
MODELS = {
    "rapidocr_onnxruntime": {"ch_PP-OCRv4_det_infer.onnx": [1, 3, 320, 320],
                             "ch_PP-OCRv4_rec_infer.onnx": [1, 3, 48, 320],
                             "ch_ppocr_mobile_v2.0_cls_infer.onnx": [1, 3, 48, 192]},
    "ddddocr": {"common.onnx": [1, 1, 64, 256], "common_old.onnx": [1, 1, 64, 256],
                "common_det.onnx": [1, 3, 416, 416]},
}


def median_ms(fn: object, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def check(path: Path, shape: list[int], device: str = "llvm") -> str:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)
    want = session.run(None, {name: x})
    start = time.perf_counter()
    model = load(str(path), device=device)
    loaded = time.perf_counter()
    tx = Tensor(x, device=device).realize()
    got = [model({name: tx})[o.name].numpy() for o in session.get_outputs()]
    first = time.perf_counter() - loaded
    error = max(float(np.abs(g.astype(np.float64) - w).max() / max(float(np.abs(w).max()), 1.0))
                for g, w in zip(got, want))

    def run() -> None:
        for out in model({name: tx}).values():
            out.realize()
        synchronize(device)

    for _ in range(3):
        run()
    tg_ms, ort_ms = median_ms(run), median_ms(lambda: session.run(None, {name: x}))
    return (f"{path.name:<38} {shape!s:<18} err {error:8.1e}  load {loaded - start:5.2f} s  first {first:5.2f} s"
            f"  tg {tg_ms:7.1f} ms  onnxruntime {ort_ms:6.1f} ms  ({tg_ms / ort_ms:.1f}x)")


def main() -> None:
    for package, models in MODELS.items():
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            print(f"{package}: not installed (pip install --no-deps {package.replace('_', '-')})")
            continue
        root = Path(next(iter(spec.submodule_search_locations)))
        for file, shape in models.items():
            found = sorted(root.rglob(file))
            if not found:
                print(f"{package}: {file} not in this version")
                continue
            try:
                print(check(found[0], shape), flush=True)
            except Exception as e:  # an unsupported operator: reported, the next model runs
                print(f"{file:<38} {shape!s:<18} {type(e).__name__}: {str(e)[:160]}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
