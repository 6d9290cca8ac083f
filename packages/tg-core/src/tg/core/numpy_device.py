"""The NumPy device: the embedded default that works everywhere.

It interprets each kernel AST with whole-array NumPy calls. Loads become strided views of the
buffer in which broadcast (stride-0) dims stay size 1, so elementwise work happens at the smallest
shape NumPy broadcasting allows, and a sum of a product is handed to `np.matmul` (BLAS) instead of
materialising the broadcast product.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from . import config
from . import dtype as dt
from .device import PRIORITY_NUMPY, Allocator, Buffer, Device, DeviceSpec, hookimpl
from .kernel import AST, Kernel
from .ops import Op
from .semantics import cast
from .view import View


class NumpyAllocator(Allocator):
    """Host memory as flat uint8 arrays."""

    def _alloc(self, nbytes: int) -> np.ndarray:
        return np.empty(nbytes, np.uint8)

    def copyin(self, handle: np.ndarray, src: np.ndarray) -> None:
        handle[:] = src.reshape(-1).view(np.uint8)

    def host_view(self, handle: np.ndarray) -> np.ndarray:
        return handle

    def copyout(self, dst: np.ndarray, handle: np.ndarray) -> None:
        dst.reshape(-1).view(np.uint8)[:] = handle

    def copy(self, dst: np.ndarray, src: np.ndarray, nbytes: int) -> None:
        dst[:nbytes] = src[:nbytes]


def strided(flat: np.ndarray, view: View, broadcast: bool = False) -> np.ndarray:
    """Read `view` out of a flat array: a no-copy view where possible, zero-filled where masked.

    With `broadcast`, dims that repeat one element (stride 0, unmasked) come back as size 1.
    """
    keep = [not (broadcast and s == 0 and not view.masked_along(i)) for i, s in enumerate(view.strides)]
    out_shape = tuple(n if k else 1 for n, k in zip(view.shape, keep))
    if view.is_empty_mask or 0 in out_shape:
        return np.zeros(out_shape, flat.dtype)
    mask = view.mask or tuple((0, n) for n in view.shape)
    region = tuple((lo, hi) if k else (0, 1) for (lo, hi), k in zip(mask, keep))
    start = view.offset + sum(lo * s for (lo, _), s in zip(region, view.strides))
    if view.bounds:  # the box holds positions outside the bounds, which may lie outside the buffer: widen it
        reach = [sum(s * (hi - 1 - lo) for (lo, hi), s in zip(region, view.strides) if (s > 0) == high)
                 for high in (False, True)]
        before, after = max(0, -(start + reach[0])), max(0, start + reach[1] + 1 - flat.size)
        if before or after:
            flat, start = np.concatenate([np.zeros(before, flat.dtype), flat, np.zeros(after, flat.dtype)]), \
                start + before
    item = flat.itemsize
    arr = np.lib.stride_tricks.as_strided(flat[start:] if start < flat.size else flat[:0],
                                          tuple(hi - lo for lo, hi in region),
                                          tuple(s * item for s in view.strides), writeable=False)
    if not view.masked:
        return arr
    out = np.zeros(out_shape, flat.dtype)
    out[tuple(slice(lo, hi) for lo, hi in region)] = arr
    for coeffs, lo, hi in view.bounds:  # zero where a bound fails
        total = sum(np.arange(n).reshape([-1 if d == i else 1 for d in range(len(out_shape))]) * c
                    for i, (c, n) in enumerate(zip(coeffs, out_shape)) if c)
        out = np.where((lo <= total) & (total < hi), out, np.zeros((), flat.dtype))
    return out


def _idiv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division that truncates toward zero, as C does."""
    q = np.floor_divide(a, b)
    return q + ((np.remainder(a, b) != 0) & ((a < 0) != (b < 0)))


def _maximum(a: np.ndarray, b: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
    """The spec's maximum: NaN wins, a tie keeps the first operand (max(-0.0, 0.0) is -0.0, as torch's). NumPy's
    maximum leaves the zero of a tie unspecified, so a zero result takes a's zero where a is one (read before `out`,
    which may be a, is written)."""
    zero_a = a == 0 if a.dtype.kind == "f" else None
    if zero_a is None or not zero_a.any():
        return np.maximum(a, b, out=out)
    negative_zero = np.signbit(a) & zero_a
    r = np.maximum(a, b, out=out)
    take_a = np.broadcast_to(zero_a, r.shape) & (r == 0)
    np.copyto(r, np.where(np.broadcast_to(negative_zero, r.shape), r.dtype.type(-0.0), r.dtype.type(0.0)),
              where=take_a)
    return r


_ALU: dict[Op, Any] = {
    Op.EXP2: np.exp2, Op.LOG2: np.log2, Op.SIN: np.sin, Op.SQRT: np.sqrt, Op.RECIP: np.reciprocal,
    Op.NEG: lambda x: np.logical_not(x) if x.dtype == np.bool_ else np.negative(x),
    Op.ADD: lambda a, b: np.logical_or(a, b) if a.dtype == np.bool_ else np.add(a, b),
    Op.MUL: lambda a, b: np.logical_and(a, b) if a.dtype == np.bool_ else np.multiply(a, b),
    Op.MAX: _maximum, Op.CMPLT: np.less, Op.CMPEQ: np.equal, Op.FDIV: np.divide,
    Op.IDIV: lambda a, b: _idiv(a, b) if a.dtype.kind in "iu" else np.trunc(a / b),
    Op.MOD: np.fmod, Op.AND: np.bitwise_and, Op.OR: np.bitwise_or, Op.XOR: np.bitwise_xor,
    Op.WHERE: np.where,
}


_UFUNCS: dict[Op, Any] = {Op.EXP2: np.exp2, Op.LOG2: np.log2, Op.SIN: np.sin, Op.SQRT: np.sqrt, Op.ADD: np.add,
           Op.MUL: np.multiply, Op.FDIV: np.divide, Op.MAX: _maximum, Op.CMPLT: np.less, Op.CMPEQ: np.equal}


class ScratchPool:
    """Reusable temporaries by (shape, dtype): fresh large arrays cost a page fault per 4 KiB touched.

    It keeps only arrays of a (shape, dtype) that was asked for before (a temporary nobody will ask for again is
    left to the garbage collector), at most four of each, and at most `max_bytes` in all (TG_SCRATCH_MB, 128 by
    default), dropping the arrays returned longest ago; safe to share between threads."""

    PER_KEY = 4

    def __init__(self, max_bytes: Optional[int] = None):
        self.free: OrderedDict[tuple[tuple[int, ...], np.dtype], list[np.ndarray]] = OrderedDict()
        self.max_bytes, self.held = (max_bytes if max_bytes is not None else config.scratch_bytes()), 0
        self.wanted: set[tuple[tuple[int, ...], np.dtype]] = set()
        self.lock = threading.Lock()

    def get(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        with self.lock:
            self.wanted.add((shape, dtype))
            arrays = self.free.get((shape, dtype))
            if arrays:
                arr = arrays.pop()
                self.held -= arr.nbytes
                if not arrays:
                    del self.free[(shape, dtype)]
                return arr
        return np.empty(shape, dtype)

    def put(self, arr: np.ndarray) -> None:
        if arr.base is not None or arr.nbytes > self.max_bytes:
            return
        key = (arr.shape, arr.dtype)
        with self.lock:
            if key not in self.wanted or len(self.free.get(key, ())) >= self.PER_KEY:
                return
            self.free.setdefault(key, []).append(arr)
            self.free.move_to_end(key)
            self.held += arr.nbytes
            while self.held > self.max_bytes:
                oldest, arrays = next(iter(self.free.items()))
                self.held -= arrays.pop(0).nbytes
                if not arrays:
                    del self.free[oldest]


def _select(cond: np.ndarray, x: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """where(cond, x, y) by bit masks: exact, and far faster than np.where on unpredictable masks."""
    if x.dtype.itemsize not in (1, 2, 4, 8):
        return np.where(cond, x, y)
    as_int = np.dtype(f"i{x.dtype.itemsize}")
    view = out.view(as_int)
    mask = np.asarray(np.subtract(0, cond.view(np.uint8), dtype=as_int))  # all ones where cond holds
    np.bitwise_and(x.view(as_int), mask, out=view)
    y_bits = y.view(as_int)
    if np.any(y_bits):  # by bits: -0.0 is not zero there (np.any(y) would drop it)
        view |= np.bitwise_and(y_bits, np.invert(mask))
    return out


class KernelInterpreter:
    """Evaluates one kernel AST over host arrays. Reused by any device that keeps data on the host.

    Values are computed on demand, so a product that a sum contracts with np.matmul is never
    materialised, and a temporary that has no other reader is overwritten in place.
    """

    def __init__(self, kernel: Kernel, inputs: Sequence[np.ndarray], scratch: Optional[ScratchPool] = None):
        self.kernel, self.inputs, self.scratch = kernel, inputs, scratch or ScratchPool(0)
        self.values: dict[int, np.ndarray] = {}
        self.readers: dict[int, int] = {}
        self.temporaries: dict[int, np.ndarray] = {}  # arrays this interpreter allocated, by id
        for node in kernel.ast.walk():
            for s in {id(s): s for s in node.src}.values():
                self.readers[id(s)] = self.readers.get(id(s), 0) + 1

    def run(self, out: np.ndarray) -> None:
        """Compute the kernel into `out`, an array of the output shape."""
        with np.errstate(all="ignore"):
            root = self.kernel.ast.src[0]
            result = self.value(root, out)
            if result is not out:
                np.copyto(out, result, casting="unsafe")
        for arr in self.temporaries.values():  # one array may hold several nodes' values: return it once
            self.scratch.put(arr)

    def value(self, n: AST, out: Optional[np.ndarray] = None) -> np.ndarray:
        if id(n) not in self.values:
            self.values[id(n)] = self.eval(n, out)
        return self.values[id(n)]

    def eval(self, n: AST, out: Optional[np.ndarray]) -> np.ndarray:
        if n.op is Op.LOAD:
            return strided(self.inputs[n.arg[0]], n.arg[1], broadcast=True)
        if n.op is Op.CONST:
            value, view = n.arg
            flat = np.full(1, value, n.dtype.np)
            everywhere = View.make(view.shape, (0,) * len(view.shape), 0, view.mask, view.bounds)
            return strided(flat, everywhere, broadcast=True)
        if n.op is Op.SUM:
            return self.sum(n)
        if n.op is Op.GATHER:
            return self.gather(n)
        src = [self.value(s) for s in n.src]
        if n.op is Op.CAST:
            return self.fresh(cast(src[0], n.dtype.np))
        if n.op is Op.BITCAST:
            return np.asarray(src[0]).view(n.dtype.np)  # not a temporary: it shares its source's memory
        if n.op is Op.RESHAPE:  # only ever applied to the reduce's keepdim output
            red_shape = tuple(1 if d in n.src[0].arg else s for d, s in enumerate(self.kernel.full_shape))
            return _unit_reshape(src[0], red_shape, n.arg)
        if n.op is Op.RMAX:
            return self.fresh(np.max(src[0], axis=tuple(a for a in n.arg if src[0].shape[a] != 1), keepdims=True))
        ufunc = _UFUNCS.get(n.op)
        shape = np.broadcast_shapes(*(s.shape for s in src))
        if (ufunc is not None and src[0].dtype != np.bool_) or (n.op is Op.WHERE and src[1].dtype == src[2].dtype):
            target = out if out is not None and out.shape == shape and out.dtype == n.dtype.np else None
            target = target if target is not None else self.reusable(n, src, shape)
            if target is None:
                target = self.fresh(self.scratch.get(shape, n.dtype.np))
            if n.op is Op.WHERE:
                return _select(src[0], src[1], src[2], target)
            assert ufunc is not None
            return ufunc(*src, out=target)
        result = _ALU[n.op](*src)
        return self.fresh(result if result.dtype == n.dtype.np else result.astype(n.dtype.np))

    def gather(self, n: AST) -> np.ndarray:
        """The table at the computed positions along `dim` (clamped into it, as on every device)."""
        buf, view, dim, _ = n.arg
        table = strided(self.inputs[buf], view, broadcast=True)  # a dim the table repeats comes back as size 1
        positions, kind = self.value(n.src[0]), n.src[0].dtype
        lo, hi = max(0, kind.limits[0]), min(table.shape[dim] - 1, kind.limits[1])  # as lower._Lowerer.gather
        positions = np.clip(positions, positions.dtype.type(lo), positions.dtype.type(hi)).astype(np.intp)
        if all(size == 1 for d, size in enumerate(positions.shape) if d != dim):  # whole rows (embedding, index_select)
            return self.fresh(np.take(table, positions.reshape(-1), axis=dim))
        return self.fresh(np.take_along_axis(table, positions, dim))

    def fresh(self, arr: np.ndarray) -> np.ndarray:
        arr = np.asarray(arr)  # NumPy turns 0-d results into scalars
        self.temporaries[id(arr)] = arr
        return arr

    def reusable(self, n: AST, src: list[np.ndarray], shape: tuple[int, ...]) -> Optional[np.ndarray]:
        """A source temporary that nothing else reads, with the output's shape and dtype: write into it."""
        for node, arr in zip(n.src, src):
            if id(arr) in self.temporaries and self.readers.get(id(node)) == 1 and arr.shape == shape \
                    and arr.dtype == n.dtype.np and n.op is not Op.WHERE:
                return arr
        return None

    def sum(self, n: AST) -> np.ndarray:
        full, axes, x = self.kernel.full_shape, n.arg, n.src[0]
        if x.op is Op.MUL and x.dtype != dt.bool_ and self.readers.get(id(x)) == 1:
            a, b = (self.value(s) for s in x.src)
            if any(a.shape[d] > 1 and b.shape[d] > 1 for d in axes):
                return self.fresh(contract(a, b, full, axes).astype(n.dtype.np, copy=False))
        v = self.value(x)
        real = tuple(d for d in axes if v.shape[d] != 1)
        repeat = math.prod(full[d] for d in axes if v.shape[d] == 1)  # summing a broadcast dim multiplies
        out = np.sum(v, axis=real, keepdims=True, dtype=n.dtype.np)
        return self.fresh(out * np.asarray(repeat, n.dtype.np) if repeat != 1 else out)


def _unit_reshape(x: np.ndarray, src_shape: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Reshape `x` (broadcastable to src_shape) to `shape`, which only adds or removes size-1 dims."""
    kept = iter(x.shape[d] for d, n in enumerate(src_shape) if n != 1)
    return x.reshape(tuple(next(kept) if n != 1 else 1 for n in shape))


def contract(a: np.ndarray, b: np.ndarray, full: tuple[int, ...], axes: tuple[int, ...]) -> np.ndarray:
    """sum(a * b, axes) for broadcastable a, b of the full shape, through one batched np.matmul."""
    if 0 in full:  # an empty sum (or an empty result): zeros, as the plain reduce gives
        return np.zeros(tuple(1 if d in axes else n for d, n in enumerate(full)), np.result_type(a, b))
    batch, m_dims, n_dims, k_dims = [], [], [], []
    # summed dims that neither operand varies along multiply the result (decided before the pre-sums below)
    repeat = math.prod(full[d] for d in axes if a.shape[d] == 1 and b.shape[d] == 1)
    for d in range(len(full)):
        ra, rb = a.shape[d] > 1, b.shape[d] > 1
        if d in axes:
            if ra and rb:
                k_dims.append(d)
            elif ra:
                a = a.sum(axis=d, keepdims=True)
            elif rb:
                b = b.sum(axis=d, keepdims=True)
        elif ra and rb:
            batch.append(d)
        elif ra:
            m_dims.append(d)
        elif rb:
            n_dims.append(d)
    size = lambda dims: math.prod(full[d] for d in dims)  # noqa: E731
    rest = [d for d in range(len(full)) if d not in batch + m_dims + n_dims + k_dims]
    a2 = a.transpose(batch + m_dims + k_dims + n_dims + rest).reshape(size(batch), size(m_dims), size(k_dims))
    b2 = b.transpose(batch + k_dims + n_dims + m_dims + rest).reshape(size(batch), size(k_dims), size(n_dims))
    out = np.matmul(a2, b2)
    order = batch + m_dims + n_dims
    out = out.reshape([full[d] for d in order] + [1] * (len(full) - len(order)))
    out = out.transpose(np.argsort(order + [d for d in range(len(full)) if d not in order]))
    return out * repeat if repeat != 1 else out


class NumpyDevice(Device):
    """Runs kernels on the host with NumPy; supports every tg dtype."""

    dtypes = frozenset(dt.ALL_DTYPES)
    reads_windows_through_padding = False  # a masked window is a full temporary here; a padded copy's is a view

    def __init__(self, name: str = "numpy"):
        super().__init__(name, NumpyAllocator())
        self.scratch = ScratchPool()

    def execute(self, kernel: Kernel, buffers: Sequence[Buffer]) -> None:
        flats = [b.handle.view(b.dtype.np) for b in buffers]
        KernelInterpreter(kernel, flats, self.scratch).run(flats[0].reshape(kernel.out_shape))


@hookimpl
def tg_devices() -> list[DeviceSpec]:
    return [DeviceSpec("numpy", NumpyDevice, PRIORITY_NUMPY, "NumPy on the host CPU (always available)",
                       instances=True)]
