"""Counters and TG_DEBUG: what the engine did, for users, tests and benchmarks.

`counters` holds running totals (kernels launched, copies, bytes allocated, FLOPs, graph ops);
`reset()` zeroes them. TG_DEBUG=1 prints each schedule, 2 adds a line per kernel with its time,
3 the kernel AST, 4 the generated source where the device has one.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, fields


@dataclass
class Counters:
    """Running totals since the last `reset()`."""

    kernels: int = 0  # kernels launched
    copies: int = 0  # copies between devices
    allocations: int = 0  # fresh allocations (cache hits are not counted)
    bytes_allocated: int = 0  # bytes fresh allocations asked for
    bytes_in_use: int = 0  # bytes held by live allocations, cached ones included
    flops: int = 0  # scalar ALU ops executed by kernels
    ops: int = 0  # graph nodes created by Tensor ops
    kernel_time_s: float = 0.0  # time spent in kernels, measured only at TG_DEBUG>=2
    compiles: int = 0  # kernels compiled (cache misses of compiled backends)

    def reset(self) -> None:
        for f in fields(self):
            if f.name != "bytes_in_use":
                setattr(self, f.name, f.default)


counters = Counters()


def reset() -> None:
    """Zero the counters (bytes in use stays: it is a level, not a total)."""
    counters.reset()


def allocated(nbytes: int) -> None:
    counters.allocations += 1
    counters.bytes_allocated += nbytes
    counters.bytes_in_use += nbytes


def freed(nbytes: int) -> None:
    counters.bytes_in_use -= nbytes


def debug_level() -> int:
    """TG_DEBUG, read on every call so that tests and users can change it at run time."""
    from . import config

    return config.debug()


def log(msg: str) -> None:
    print(msg, file=sys.stderr)
