import sys, time
import numpy as np
from tg.core import Tensor, synchronize
import tg.core.render as R
import tg.opencl.renderer as OR
from tg.core.ir import U

def timed(fn, n=5):
    fn(); synchronize("opencl")
    ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); synchronize("opencl"); ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]

mode = sys.argv[1]
if mode == "contract":  # the old rendering: a*b+c left to the compiler, contraction allowed
    old_pre = OR.OpenCLRenderer.preamble
    OR.OpenCLRenderer.preamble = lambda self, prog: [l for l in old_pre(self, prog) if "FP_CONTRACT" not in l]
    old_emit = R.CStyleRenderer.emit
    def emit(self, u):
        if u.op is U.ACC_FMA:
            acc, a, b = u.src
            self.line(f"{acc.name} = ({acc.name} + ({self.ref(a)} * {self.ref(b)}));")
            return
        return old_emit(self, u)
    R.CStyleRenderer.emit = emit
rng = np.random.default_rng(0)
x = Tensor(rng.standard_normal((32, 64, 56, 56)).astype(np.float32), device="opencl")
w1 = Tensor(rng.standard_normal((64, 64, 3, 3)).astype(np.float32) * 0.05, device="opencl")
w2 = Tensor(rng.standard_normal((64, 64, 3, 3)).astype(np.float32) * 0.05, device="opencl")
t = timed(lambda: (x.conv2d(w1, padding=1).relu().conv2d(w2, padding=1) + x).relu().realize())
t1 = timed(lambda: x.conv2d(w1, padding=1).realize())
a = Tensor(rng.standard_normal((4096, 4096)).astype(np.float32), device="opencl")
tm = timed(lambda: (a @ a).realize())
print(f"{mode}: block {t*1e3:.2f} ms, one conv {t1*1e3:.2f} ms, matmul {2*4096**3/tm/1e12:.1f} TFLOP/s")
