"""Optimisation choices for lowering, by heuristics: which output dims to upcast, and by how much.

A contraction (a reduce of a product, like matmul or conv) gets a register tile: the output dim
that some input reads contiguously (or, failing that, a few elements apart: strided convolutions) is
upcast by up to 32 (one or two vector registers of accumulators), and an output dim along which that
input is reused is upcast by up to 8. Each loaded value then feeds several multiply-adds instead of one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from . import config
from . import dtype as dt
from .kernel import AST, Kernel
from .ops import Op
from .view import View


@dataclass(frozen=True)
class Opts:
    """How to lower one kernel: unroll factors of output dims, and the order of the output loops."""

    upcasts: dict[int, int] = field(default_factory=dict)
    order: Optional[list[int]] = None  # output dims, outermost first (None: the natural order)
    # one loop over all output positions (GPUs: one thread each, neighbours on the innermost dim)
    flatten: bool = False
    # GPUs, flattened: consecutive threads cover a (rows, cols) patch of the last two loop dims instead
    # of a strip of the last one, so that a work-group shares both operands' rows in cache
    block: Optional[tuple[int, int]] = None
    # GPUs: (rows, cols, chunk) stages chunk-deep slices of both operands of a 2-D tiled contraction in
    # local memory, shared by a rows x cols work-group (block must then be (rows, cols))
    local: Optional[tuple[int, int, int]] = None
    # GPUs: this many work-items (a work-group) share each output of a long reduction, each folding every
    # group-th element, then combining their accumulators (ir.Op.GROUP_FOLD); needs flatten and no upcasts
    group: Optional[int] = None


def choose_opts(kernel: Kernel, gpu: bool = False, tile: Optional[tuple[int, int]] = None) -> Opts:
    """Heuristic options for a kernel (see the module docstring). GPUs get one thread per output tile. `tile` is
    the device's largest register tile (contiguous dim, reused dim), from its vector registers."""
    if gpu:
        staged = gpu_local(kernel)
        if staged is not None:
            return staged
        group = group_size(kernel)
        upcasts = choose_upcasts(kernel, gpu=True) if not group or _contraction(kernel) else {}
        if not upcasts and group:
            return Opts({}, None, flatten=True, group=group)
        return Opts(upcasts, None, flatten=True, block=_gpu_block(kernel, upcasts))
    column = column_tile(kernel, tile)
    if column:
        return Opts(column)
    row = row_unroll(kernel)
    if math.prod(kernel.full_shape) < MIN_TILED_WORK:
        return Opts(row)
    if kernel.reduce is None:
        return Opts(transpose_tile(kernel))
    upcasts = choose_upcasts(kernel, limits=_tile_limits(False, tile))
    if not upcasts and row:
        return Opts(row)
    out_dims = [d for d, n in enumerate(kernel.full_shape) if n > 1 and d not in kernel.reduce.arg]
    j = max(upcasts, key=lambda d: upcasts[d]) if len(upcasts) == 2 else None
    # the contiguous dim's loop outermost keeps its panel of the reused input in cache, but the outermost
    # loop is also what threads split: only when it has enough iterations to share
    if j is not None and kernel.full_shape[j] // upcasts[j] >= MIN_OUTER_ITERATIONS:
        return Opts(upcasts, [j, *(d for d in out_dims if d != j)])
    return Opts(upcasts)

# CPUs: below this many iterations (output x reduce) a kernel is not unrolled into tiles: it runs in microseconds
# either way, while each unrolled copy costs compile time (the README MLP step's 128x10 kernels: 35-75 ms each tiled,
# 10-20 untiled)
MIN_TILED_WORK = 2**16

TRANSPOSE_TILE = 4  # measured on a 2-core AVX2 EPYC, transposing copies 1024^2-4096^2: 4x4 blocks 3.2-4.4x faster
# than none (7.4-7.8 GB/s; NumPy's x.T.copy(): 1 GB/s), 8x8 2.8-4x


def transpose_tile(kernel: Kernel) -> dict[int, int]:
    """CPUs: an elementwise kernel that reads some input along another dim than it writes (a transposing copy)
    walks one of them a row apart at every step; a small block of both dims keeps each touched cache line in
    use for several steps."""
    full = kernel.full_shape
    j = max((d for d, n in enumerate(full) if n > 1), default=None)
    if j is None:
        return {}
    for n in kernel.ast.walk():
        if n.op is not Op.LOAD:
            continue
        i = next((d for d, st in enumerate(n.arg[1].strides) if st == 1 and full[d] > 1 and d != j), None)
        if i is not None and abs(n.arg[1].strides[j]) > 1:  # it walks j a row apart (0: a broadcast, no transpose)
            tile = {d: _largest_divisor(full[d], TRANSPOSE_TILE) for d in (i, j)}
            return {d: u for d, u in tile.items() if u > 1}
    return {}


ROW_UNROLL = 8  # independent accumulators of a CPU reduce along a row (see row_unroll) ...
ROW_UNROLL_WIDE = 16  # ... or this many, where the row's length is a multiple of it (an AVX-512 vector)
ROW_REUSE = 4  # rows of a dot-product contraction folded side by side, sharing the other operand's loads
ROW_UNROLL_MAX = 1 << 13  # longer rows keep one accumulator, summed in blocks (lower.SUM_BLOCK) for precision


def row_unroll(kernel: Kernel) -> dict[int, int]:
    """CPUs: a float reduce along a row that its input reads contiguously (a softmax's max and sum, a layer norm's
    mean) folds each step into the one accumulator the last step wrote: a chain of dependent operations, one
    element at a time (a max of 32K floats in rows of 32 took 175 us on llvm, LLVM's NaN-propagating maximum being
    several cycles long). Upcasting the row's dim by ROW_UNROLL (ROW_UNROLL_WIDE where it divides the row) gives that
    many independent accumulators, folded together after the loop: vector lanes on llvm (lower.vector_dim). Rows up
    to ROW_UNROLL_MAX long whose length it divides; contractions get their register tile instead (choose_upcasts),
    except a dot product (x @ w.T with w stored (out, in), too few rows of x to copy w for a tile), which also folds
    ROW_REUSE rows of w side by side, each load of x serving all of them (1x512 @ 2048x512 on llvm, the kernel
    alone: 96 us with 8 lanes, 62 with 16 lanes by 4 rows)."""
    red = kernel.reduce
    if red is None or not red.dtype.is_float:
        return {}
    full = kernel.full_shape
    reduced = [d for d in red.arg if full[d] > 1]
    if not reduced:
        return {}
    d = reduced[-1]
    n = full[d]
    loads = _reduce_reads(kernel, red)[2]
    if n % ROW_UNROLL or n < 2 * ROW_UNROLL or n > ROW_UNROLL_MAX or not any(v.strides[d] == 1 for v in loads):
        return {}
    up = {d: ROW_UNROLL_WIDE if n % ROW_UNROLL_WIDE == 0 and n >= 2 * ROW_UNROLL_WIDE else ROW_UNROLL}
    kept = [i for i, m in enumerate(full) if m > 1 and i not in red.arg]
    shared = [i for i in kept if full[i] % ROW_REUSE == 0 and any(v.strides[i] == 0 and v.strides[d] for v in loads)
              and any(v.strides[i] and v.strides[d] for v in loads)]
    if shared:
        up[shared[-1]] = ROW_REUSE
    return up


def column_tile(kernel: Kernel, tile: Optional[tuple[int, int]] = None) -> dict[int, int]:
    """CPUs: a reduce of one input over a dim it reads strided, keeping a dim it reads contiguously (a bias
    gradient: a column sum of a (batch, features) matrix) runs one output at a time down a column, a cache line
    per term; its innermost kept dim is upcast instead (vector lanes on llvm), so that each step of the sum reads
    a row of the tile's outputs at once. A contraction (two loads) gets its register tile in choose_upcasts."""
    if kernel.reduce is None:
        return {}
    full, axes, loads, kept = _reduce_reads(kernel, kernel.reduce)
    if len(loads) != 1 or not kept or any(loads[0].strides[a] == 1 for a in axes if full[a] > 1):
        return {}
    j = kept[-1]
    u = _largest_divisor(full[j], _tile_limits(False, tile)[0])
    return {j: u} if loads[0].strides[j] == 1 and u >= 4 else {}


def _reduce_reads(kernel: Kernel, red: AST) -> tuple[tuple[int, ...], set[int], list[View], list[int]]:
    """(iteration shape, reduced dims, views of the loads over the whole iteration space, kept dims of size > 1).
    A constant through padding counts as a load: its mask is computed per position as a load's address is (a max
    pool's "inside the padding" flag, a buffer until windows over padding became views, still asks for the tile)."""
    full, axes = kernel.full_shape, set(red.arg)
    loads = [n.arg[1] for n in red.walk() if (n.op is Op.LOAD or (n.op is Op.CONST and n.arg[1].masked)) and
             n.arg[1].shape == full]
    return full, axes, loads, [d for d, n in enumerate(full) if n > 1 and d not in axes]


MAX_BODY_COPIES = 256
MAX_TILE_STRIDE = 4  # the step between neighbours of the tile's contiguous dim, at most (strided convolutions)
MIN_OUTER_ITERATIONS = 8


def _largest_divisor(n: int, limit: int) -> int:
    """The largest divisor of n that is at most `limit` (a tile must cover its dim exactly)."""
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def _tile_limits(gpu: bool, device_default: Optional[tuple[int, int]] = None) -> tuple[int, int]:
    """The largest unroll of (the contiguous dim, the reused dim). TG_TILE="j,i" overrides them."""
    override = config.tile()
    if override:
        return override[0], override[1]
    if device_default is not None:
        return device_default
    # GPUs: register tiles serve what local-memory staging does not take (convolutions, matmuls too small to fill
    # a GPU with staged groups). Measured on an H200 (OpenCL, alternating runs): a 3x3 conv 32x64x56x56 took
    # 0.48-0.67 ms with 4x8 tiles against 0.64-0.73 with 2x16 (8x16 0.47-0.67, 4x16 0.56-0.67, 8x8 0.58-0.68,
    # 2x32 0.80); a ResNet-style block 0.89-1.21 ms against 1.08-1.35; an MLP SGD step 1.80 against 2.55 ms. (The
    # H100's 4096^2 matmul by register tiles alone had 2x16 slightly ahead of 4x8, 18.3-19.3 TFLOP/s against
    # 17.2-18.4: that matmul is staged in local memory now.) On CPUs 32x8 fills 16 of AVX-512's 32 registers
    # with accumulators (CPU devices with fewer registers pass their own).
    return (4, 8) if gpu else (32, 8)


def local_operands(kernel: Kernel) -> Optional[tuple[AST, AST, int, int, int]]:
    """(A load, B load, i, j, k) when the kernel is a contraction tg can stage in local memory: a sum over
    one dim k of values read from exactly two unmasked loads, A constant along the last output dim j and B
    along the one before, i."""
    red = kernel.reduce
    if red is None or red.op is not Op.SUM:
        return None
    full = kernel.full_shape
    ks = [d for d in red.arg if full[d] > 1]
    out = [d for d, n in enumerate(full) if n > 1 and d not in red.arg]
    loads = [n for n in red.walk() if n.op is Op.LOAD]
    if len(ks) != 1 or len(out) < 2 or len(loads) != 2 or any(n.arg[1].shape != full or n.arg[1].masked
                                                                for n in loads):
        return None
    k, i, j = ks[0], out[-2], out[-1]
    a, b = sorted(loads, key=lambda n: n.arg[1].strides[j] != 0)  # A first: it does not move along j
    va, vb = a.arg[1], b.arg[1]
    if va.strides[j] != 0 or vb.strides[i] != 0 or not va.strides[i] or not vb.strides[j] or \
            not va.strides[k] or not vb.strides[k]:
        return None
    return a, b, i, j, k


# measured on an H200 (4096^2 fp32, OpenCL, staging with vector accesses): 16x8 work-groups of 8x8 tiles staged
# 16 deep 36.1-38.2 TFLOP/s (25.6 with the scalar staging before), 8x16 36.1-38.6, 16x16 groups 8 deep 36.9, 16x8
# 32 deep 31.3. Earlier, on an H100 with scalar staging: 16x8 of 8x8 24.1, 16x16 of 8x4 22.1, register tiles alone 20.5
DEFAULT_LOCAL = "16,8,16,8,8"
MIN_LOCAL_GROUPS = 256


def gpu_local(kernel: Kernel, spec: Optional[str] = None) -> Optional[Opts]:
    """Local-memory staging for a contraction on a GPU, when `spec` (default: TG_GPU_LOCAL)
    "rows,cols,chunk,ui,uj" asks for it (a rows x cols work-group of ui x uj register tiles, operands
    staged chunk deep) and it fits. The search (TG_SEARCH) tries a few specs on its own."""
    default = spec is None and not config.gpu_local()
    spec = (config.gpu_local() or DEFAULT_LOCAL) if spec is None else spec
    found = local_operands(kernel) if spec and spec != "0" else None
    if found is None:
        return None
    rows, cols, chunk, ui, uj = (int(v) for v in spec.split(","))
    _, _, i, j, k = found
    full, threads = kernel.full_shape, rows * cols
    groups = math.prod(n for d, n in enumerate(full) if d != k) // (rows * ui * cols * uj)
    if default and groups < MIN_LOCAL_GROUPS:
        return None  # too few work-groups to fill a GPU: register tiles spread the work wider
    if full[i] % (rows * ui) or full[j] % (cols * uj) or full[k] % chunk or (rows * ui * chunk) % threads or \
            (cols * uj * chunk) % threads:
        return None
    return Opts({i: ui, j: uj}, None, flatten=True, block=(rows, cols), local=(rows, cols, chunk))


GROUP_MIN_REDUCE = 256  # shorter reductions keep one work-item per output
GROUP_FEW_OUTPUTS = 1 << 14  # below this many outputs a GPU is not filled by one work-item per output


def group_size(kernel: Kernel) -> Optional[int]:
    """Work-items per output for a GPU reduction that one work-item per output would run badly, else None.

    That is a reduction of at least GROUP_MIN_REDUCE elements that either walks memory contiguously along its
    innermost reduced dim (one work-item per output would read rows far apart: a row softmax, a row sum) or has
    too few outputs to fill a GPU (a full sum's partial sums). A column sum of many columns stays as it is: there
    neighbouring work-items already read neighbouring elements. TG_GPU_GROUP sets the size, 0 turns it off."""
    red = kernel.reduce
    override = config.gpu_group()
    if red is None or red.dtype == dt.bool_ or override == 0:
        return None
    full = kernel.full_shape
    reduced = [d for d in red.arg if full[d] > 1]
    size = math.prod(full[d] for d in reduced)
    if not reduced or size < GROUP_MIN_REDUCE:
        return None
    outputs = math.prod(full) // size
    along = any(v.strides[reduced[-1]] == 1 for v in _reduce_reads(kernel, red)[2])
    if not along and outputs >= GROUP_FEW_OUTPUTS:
        return None
    return override or (256 if size >= 4096 else 128)


def _contraction(kernel: Kernel) -> bool:
    """Whether two or more inputs move along the reduce (a matmul, a convolution), so that a register tile reuses
    each load; a softmax's sum reads one input along it and its row's maximum across it."""
    assert kernel.reduce is not None
    _, axes, loads, _ = _reduce_reads(kernel, kernel.reduce)
    return sum(any(v.strides[d] for d in axes) for v in loads) >= 2


def _gpu_block(kernel: Kernel, upcasts: dict[int, int]) -> Optional[tuple[int, int]]:
    """A (rows, cols) patch of output tiles per run of consecutive threads, for 2-D register-tiled
    contractions whose tile counts it divides. TG_GPU_BLOCK="rows,cols" overrides it ("0,0": none)."""
    override = config.gpu_block()
    # measured on an H100 (4096^2 fp32): patches lift 8x8 register tiles from 12-13 to 16-18 TFLOP/s but do
    # not beat 2x16 tiles in strips (18.6-19.3), so they are off unless asked for
    rows, cols = override if override else (0, 0)
    if len(upcasts) != 2 or not rows or not cols:
        return None
    dims = [d for d, n in enumerate(kernel.full_shape) if n > 1 and (kernel.reduce is None or
                                                                     d not in kernel.reduce.arg)]
    if len(dims) < 2:
        return None
    i, j = dims[-2], dims[-1]
    n_i, n_j = kernel.full_shape[i] // upcasts.get(i, 1), kernel.full_shape[j] // upcasts.get(j, 1)
    return (rows, cols) if n_i % rows == 0 and n_j % cols == 0 else None


def choose_upcasts(kernel: Kernel, gpu: bool = False, limits: Optional[tuple[int, int]] = None) -> dict[int, int]:
    """Output dim -> unroll factor, for kernels where a register tile pays off (`limits` overrides the
    largest unroll of the contiguous and the reused dim, as the search does)."""
    if kernel.reduce is None:
        return {}
    full, _, loads, out_dims = _reduce_reads(kernel, kernel.reduce)
    contiguous = [d for d in out_dims if any(v.strides[d] == 1 for v in loads)]
    if not contiguous:  # a strided convolution reads its input 2 or 3 apart: a tile still reuses every load
        contiguous = [d for d in out_dims if any(0 < abs(v.strides[d]) <= MAX_TILE_STRIDE for v in loads)]
    if not contiguous or len(loads) < 2:
        return {}
    j = contiguous[-1]
    j_limit, i_limit = limits or _tile_limits(gpu)
    upcasts = {j: _largest_divisor(full[j], j_limit)}
    # a dim that one load walks and another repeats along (a matmul's rows): the tile reuses that load's values; a
    # depthwise convolution's channels, which every load walks, would only multiply the accumulators
    reused = [d for d in out_dims if d != j and any(v.strides[j] == 0 and v.strides[d] != 0 for v in loads) and
              any(v.strides[d] == 0 for v in loads)]
    if reused:
        i = reused[-1]
        upcasts[i] = _largest_divisor(full[i], i_limit)
    upcasts = {d: u for d, u in upcasts.items() if u > 1}
    total = 1
    for u in upcasts.values():
        total *= u
    return upcasts if total <= MAX_BODY_COPIES else {}
