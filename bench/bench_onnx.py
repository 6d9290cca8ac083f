"""Inference time of ONNX models exported from PyTorch: tg (each CPU device) beside onnxruntime, one process;
then, where the `silero-vad` package is installed (`pip install --no-deps silero-vad`: its ONNX files), the Silero
voice-activity model streaming 32 ms chunks of 16 kHz audio with its state carried from chunk to chunk.

    python bench/bench_onnx.py          (needs torch, onnx and onnxruntime)
"""
from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime
import torch
from bench_core import median_time  # this folder is on sys.path when run as a script

from tg.core import Tensor, registry, synchronize
from tg.nn.onnx import load


def median_ms(fn: Callable[[], Any], repeat: int = 10) -> float:
    return median_time(fn, repeat, warmup=3) * 1e3


def models() -> dict[str, tuple[torch.nn.Module, tuple[int, ...]]]:
    torch.manual_seed(0)
    nn = torch.nn
    cnn = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    mobile = nn.Sequential(nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.ReLU6(),
                           nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.BatchNorm2d(32), nn.ReLU6(),
                           nn.Conv2d(32, 64, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer(x)

    class TextClassifier(nn.Module):  # token ids in: a vocabulary-sized embedding (ONNX Gather) first
        vocab = 30000

        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(self.vocab, 64)
            self.layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)
            self.head = nn.Linear(64, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.layer(self.embed(x)).mean(1))

    return {"small CNN 8x3x32x32": (cnn, (8, 3, 32, 32)), "MobileNet-style 8x3x32x32": (mobile, (8, 3, 32, 32)),
            "TransformerEncoderLayer 8x32x64": (Encoder(), (8, 32, 64)),
            "text classifier, 8x32 ids of 30000": (TextClassifier(), (8, 32))}


def example(model: torch.nn.Module, shape: tuple[int, ...]) -> np.ndarray:
    """The model's input: token ids (int64) for a model with a `vocab`, else float32 values."""
    rng = np.random.default_rng(0)
    vocab = getattr(model, "vocab", None)
    return rng.integers(0, vocab, shape) if vocab else rng.standard_normal(shape).astype(np.float32)


def main() -> None:
    devices = [d for d in ("numpy", "llvm", "opencl") if registry.try_open(d) is not None]
    eager_dev = "llvm" if "llvm" in devices else devices[0]
    print(f"{'model':<34}" + "".join(f" {'tg ' + d:>12}" for d in devices) + f" {'eager':>12}"
          + f" {'onnxruntime':>12} {'ratio':>8}   (ms; tg as loaded, which replays from the third call; eager: tg "
          f"{eager_dev}, jit=False; ratio: tg {eager_dev} as loaded over onnxruntime)")
    for name, (model, shape) in models().items():
        x = example(model, shape)
        buf = io.BytesIO()
        torch.onnx.export(model.eval(), (torch.tensor(x),), buf, input_names=["x"], output_names=["y"],
                          dynamo=False, opset_version=17)
        session = onnxruntime.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
        reference = session.run(None, {"x": x})[0]
        cells = []
        for d in [*devices, eager_dev]:
            tg_model = load(buf.getvalue(), device=d, jit=len(cells) < len(devices))
            tx = Tensor(x, device=d).realize()

            def run(m: Any = tg_model, t: Tensor = tx, dev: str = d) -> None:
                m(x=t)["y"].realize()
                synchronize(dev)

            np.testing.assert_allclose(tg_model(x=tx)["y"].numpy(), reference, rtol=1e-3, atol=1e-4)
            cells.append(median_ms(run))
        ort = median_ms(lambda s=session, feed={"x": x}: s.run(None, feed))
        ratio = cells[devices.index(eager_dev)] / ort
        print(f"{name:<34}" + "".join(f" {c:12.2f}" for c in cells) + f" {ort:12.2f} {ratio:7.1f}x")


def silero_vad(chunks: int = 60) -> None:
    """Per-chunk time of the packaged Silero VAD model (an If over the sample rate, an LSTM state): the issue's
    real-time case, where a chunk must take well under its 32 ms."""
    import importlib.resources
    import time

    try:
        path = importlib.resources.files("silero_vad") / "data" / "silero_vad.onnx"
    except ModuleNotFoundError:
        print("silero VAD: the silero-vad package is not installed (pip install --no-deps silero-vad)")
        return
    model, session = load(str(path), device="llvm"), onnxruntime.InferenceSession(str(path))
    audio = (np.random.default_rng(0).standard_normal(512 * chunks) * 0.1).astype(np.float32)
    rate = np.array(16000, np.int64)

    def tg_chunk(chunk: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = model({"input": chunk, "state": state, "sr": rate})
        return out["output"].numpy(), out["stateN"].numpy()

    def ort_chunk(chunk: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prob, new_state = session.run(None, {"input": chunk, "state": state, "sr": rate})
        return prob, new_state

    # each library streams all chunks alone (interleaved, each one's idle worker threads, which spin for a while
    # after a call as OpenMP-style pools do, take a core from the other's next call), then the outputs are compared
    times_tg, times_ort, probs_tg, probs_ort = [], [], [], []
    for run, times, probs in ((tg_chunk, times_tg, probs_tg), (ort_chunk, times_ort, probs_ort)):
        state = np.zeros((2, 1, 128), np.float32)
        for i in range(chunks):
            start = time.perf_counter()
            prob, state = run(audio[i * 512:(i + 1) * 512].reshape(1, 512), state)
            times.append(time.perf_counter() - start)
            probs.append(prob)
    np.testing.assert_allclose(np.concatenate(probs_tg), np.concatenate(probs_ort), rtol=1e-4, atol=1e-5)
    print(f"silero VAD, ms per 512-sample chunk: tg llvm first {times_tg[0] * 1e3:.1f}, then "
          f"{np.median(times_tg[5:]) * 1e3:.2f}; onnxruntime {np.median(times_ort[5:]) * 1e3:.2f}")


def resnet50_model() -> torch.nn.Module:
    """ResNet-50 in torchvision's layout (bottlenecks 3-4-6-3, stride on the 3x3 conv), seeded random weights and
    batch-norm statistics: the size of the ImageNet CNNs the speed issue measured, without torchvision."""
    nn = torch.nn

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, width: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                nn.Conv2d(width, width * 4, 1, bias=False), nn.BatchNorm2d(width * 4))
            self.down = nn.Sequential(nn.Conv2d(cin, width * 4, 1, stride, bias=False), nn.BatchNorm2d(width * 4)) \
                if stride != 1 or cin != width * 4 else nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.body(x) + self.down(x))

    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                               nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            layers.append(Bottleneck(cin, width, stride if i == 0 else 1))
            cin = width * 4
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000)).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


COLD_CALL = """
import sys, time, numpy as np
start = time.perf_counter()
from tg.core import Tensor
from tg.nn.onnx import load
model = load(sys.argv[1], device="llvm")
loaded = time.perf_counter()
model(x=Tensor(np.load(sys.argv[2]), device="llvm"))["y"].numpy()
print(f"{loaded - start:.2f} {time.perf_counter() - loaded:.2f}")
"""


def resnet50(repeat: int = 10) -> None:
    """ResNet-50 at 1x3x224x224 on llvm: import and load, then the first call with an empty kernel cache (a new
    process), then calls beside onnxruntime in this one."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path, xpath = Path(tmp) / "resnet50.onnx", Path(tmp) / "x.npy"
        torch.onnx.export(resnet50_model(), (torch.tensor(x),), str(path), input_names=["x"], output_names=["y"],
                          dynamo=False, opset_version=17)
        np.save(xpath, x)
        env = {**__import__("os").environ, "TG_CACHE_DIR": str(Path(tmp) / "cache")}
        cold = subprocess.run([sys.executable, "-c", COLD_CALL, str(path), str(xpath)], env=env, check=True,
                              capture_output=True, text=True).stdout.split()
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        model = load(str(path), device="llvm")
    tx = Tensor(x, device="llvm").realize()
    np.testing.assert_allclose(model(x=tx)["y"].numpy(), session.run(None, {"x": x})[0], rtol=1e-3, atol=1e-4)
    tg_ms = median_ms(lambda: (model(x=tx)["y"].realize(), synchronize("llvm")), repeat)
    ort_ms = median_ms(lambda: session.run(None, {"x": x}), repeat)
    print(f"ResNet-50 1x3x224x224, llvm: load {cold[0]} s, first call with an empty kernel cache {cold[1]} s; then "
          f"{tg_ms:.1f} ms a call, onnxruntime {ort_ms:.1f} ({tg_ms / ort_ms:.1f}x)")


if __name__ == "__main__":
    main()
    silero_vad()
    resnet50()
