"""Try register-tile shapes for the OpenCL matmul on this GPU (a one-off exploration; prints TFLOP/s)."""
import os
import statistics
import sys
import time

import numpy as np

from tg.core import Tensor, synchronize

n = 4096
rng = np.random.default_rng(0)
a, b = (Tensor(rng.standard_normal((n, n)).astype(np.float32), device="opencl").realize() for _ in range(2))
for tile in sys.argv[1:]:
    os.environ["TG_TILE"] = tile
    from tg.core import get_device

    get_device("opencl").programs.clear()
    (a @ b).realize()
    synchronize("opencl")
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        (a @ b).realize()
        synchronize("opencl")
        ts.append(time.perf_counter() - t)
    print(f"tile {tile}: {2 * n**3 / statistics.median(ts) / 1e12:.1f} TFLOP/s", flush=True)
