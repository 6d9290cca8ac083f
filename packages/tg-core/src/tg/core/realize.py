"""Running a schedule: allocate each output, launch its kernel or copy, and turn the node into data."""
from __future__ import annotations

import threading
import time

from . import capture, stats
from .device import Buffer, get_device
from .kernel import Kernel
from .ops import Op
from .schedule import ScheduleItem, schedule
from .uop import Node, become_buffer

# One realize at a time in the process: running a schedule turns its nodes into data (the one change a node ever
# sees), so two threads realizing graphs that share lazy nodes would compute them twice or read one half-done (an
# IndexError in 2 of 400 shared-graph iterations on llvm, when scheduling still rewrote nodes in place too). Kernels
# still use every core inside one realize.
_realize_lock = threading.RLock()


def realize(nodes: list[Node]) -> None:
    """Compute every node in `nodes` (queued on its device; `synchronize` waits for it)."""
    if all(n.base.op is Op.BUFFER for n in nodes):  # already data (or views of it): nothing to schedule
        return
    with _realize_lock:
        _realize(nodes)


def _realize(nodes: list[Node]) -> None:
    items = schedule(nodes)
    debug = stats.debug_level()
    if debug >= 1 and items:
        stats.log(f"tg: schedule of {len(items)} item(s): "
                  f"{sum(it.kernel is not None for it in items)} kernel(s), "
                  f"{sum(it.kernel is None for it in items)} copy(ies)")
    kernels: dict[str, list[Kernel]] = {}
    for it in items:
        if it.kernel is not None and it.out.numel:
            kernels.setdefault(it.out.device, []).append(it.kernel)
    for device, ks in kernels.items():
        get_device(device).prepare(ks)
    for i, item in enumerate(items):
        _run(item, i, debug)
    for device in {it.out.device for it in items}:
        get_device(device).flush()


def _run(item: ScheduleItem, index: int, debug: int) -> None:
    out, kernel = item.out, item.kernel
    buf = Buffer(out.device, out.numel, out.dtype)
    buffers = [buf, *[n.buffer for n in item.inputs]]
    start = time.perf_counter() if debug >= 2 else 0.0
    if kernel is None:
        if out.numel:
            buf.copyin(buffers[1].numpy())
            capture.record_launch(out.device, None, buffers)
        stats.counters.copies += 1
    else:
        dev = get_device(out.device)
        if debug >= 3:
            stats.log(f"tg: kernel {index} {kernel.name}\n{kernel.describe()}")
        if out.numel:  # before asking for choices: a search (TG_SEARCH) times candidates on these buffers
            dev.execute(kernel, buffers)
            capture.record_launch(out.device, kernel, buffers)
            stats.counters.kernels += 1
            stats.counters.flops += kernel.flops
        if debug >= 3 and (choices := dev.choices(kernel)):
            stats.log(f"tg: choices: {', '.join(choices)}")
        if debug >= 4 and (source := dev.render(kernel)) is not None:
            stats.log(source)
    if debug >= 2:
        get_device(out.device).synchronize()
        elapsed = time.perf_counter() - start
        stats.counters.kernel_time_s += elapsed
        what = (f"copy {buffers[1].device} -> {out.device} {out.dtype.name}{list(out.shape)}" if kernel is None else
                f"{kernel.name} -> {out.dtype.name}{list(out.shape)} on {out.device}")
        stats.log(f"tg: {index:4d} {what:<60s} {elapsed * 1e6:10.1f} us")
    become_buffer(out, buf)
