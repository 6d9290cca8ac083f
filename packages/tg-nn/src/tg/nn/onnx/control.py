"""ONNX control flow (If, Loop, Scan), sequences and optionals.

Sequences are Python lists of Tensors and an empty optional is None. Conditions and trip counts are read
as values when the node runs, so a Loop unrolls into plain tensor ops: what it computes stays lazy and
differentiable, like everything else."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from tg.core import Tensor, stats

from .ops import Context, OnnxError, axis_index, op, remember


def run_subgraph(ctx: Context, graph: Any, inputs: list[Any]) -> list[Any]:
    """Run a body graph with the outer scope visible and its formal inputs bound; return its outputs."""
    from onnx import numpy_helper

    from .model import run_graph

    scope = dict(ctx.env)
    known = dict(ctx.known)  # host values of constants; a formal input is a value of its own, even if one shadows
    for formal, value in zip(graph.input, inputs):
        scope[formal.name] = value
        known.pop(formal.name, None)
    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        scope[init.name] = Tensor(array, device=ctx.device)
        remember(known, init.name, array)
    run_graph(graph, scope, ctx.opsets, ctx.device, ctx.types, known)
    return [scope[o.name] for o in graph.output]


def _scalar(t: Tensor) -> Any:
    return t.numpy().reshape(-1)[0]


@op("If")
def _if(ctx: Context, cond: Tensor, then_branch: Any, else_branch: Any) -> tuple[Any, ...]:
    return tuple(run_subgraph(ctx, then_branch if bool(_scalar(cond)) else else_branch, []))


def _stack(values: list[Any], device: Optional[str]) -> Any:
    if not values:
        return Tensor(np.zeros((0,), np.float32), device=device)
    if isinstance(values[0], list):  # a sequence per iteration is not stackable: keep the last
        return values[-1]
    return values[0].stack(*values[1:], dim=0) if len(values) > 1 else values[0].unsqueeze(0)


@op("Loop")
def _loop(ctx: Context, trip: Optional[Tensor], cond: Optional[Tensor], *carried: Any, body: Any) -> tuple[Any, ...]:
    limit = int(_scalar(trip)) if trip is not None else None
    go = bool(_scalar(cond)) if cond is not None else True
    state = list(carried)
    n_scan = len(body.output) - 1 - len(state)
    scans: list[list[Any]] = [[] for _ in range(n_scan)]
    i = 0
    while go and (limit is None or i < limit):
        outs = run_subgraph(ctx, body, [Tensor(np.array(i, np.int64), device=ctx.device),
                                        Tensor(np.array(go), device=ctx.device), *state])
        go = bool(_scalar(outs[0]))
        state = outs[1:1 + len(state)]
        for k, v in enumerate(outs[1 + len(state):]):
            scans[k].append(v)
        i += 1
        if i % 100_000 == 0:  # no cap (a model may loop that long on purpose), but say so; Ctrl-C stops it
            stats.log(f"tg: onnx Loop node {ctx.node.name!r}: {i:,} iterations so far")
    return (*state, *(_stack(s, ctx.device) for s in scans))


@op("Scan")
def _scan(ctx: Context, *args: Any, body: Any, num_scan_inputs: int, scan_input_axes: Optional[list[int]] = None,
          scan_input_directions: Optional[list[int]] = None, scan_output_axes: Optional[list[int]] = None,
          scan_output_directions: Optional[list[int]] = None) -> tuple[Any, ...]:
    if ctx.opset < 9:
        raise OnnxError("onnx: Scan before opset 9 (with sequence_lens and a batch axis) is not supported")
    m = num_scan_inputs
    state, xs = list(args[:len(args) - m]), list(args[len(args) - m:])
    axes = [axis_index(a, x.ndim) for a, x in zip(scan_input_axes or [0] * m, xs)]
    dirs = scan_input_directions or [0] * m
    steps = xs[0].shape[axes[0]] if xs else 0
    collected: list[list[Tensor]] = [[] for _ in range(len(body.output) - len(state))]
    for t in range(steps):
        slices = [x.narrow(a, steps - 1 - t if d else t, 1).squeeze(a) for x, a, d in zip(xs, axes, dirs)]
        outs = run_subgraph(ctx, body, [*state, *slices])
        state = outs[:len(state)]
        for k, v in enumerate(outs[len(state):]):
            collected[k].append(v)
    n_out = len(collected)
    out_axes = scan_output_axes or [0] * n_out
    out_dirs = scan_output_directions or [0] * n_out
    results = []
    for k in range(n_out):
        vals = collected[k]
        if out_dirs[k]:
            vals = vals[::-1]
        stacked = _stack(vals, ctx.device)
        results.append(stacked.movedim(0, out_axes[k] % stacked.ndim) if out_axes[k] else stacked)
    return (*state, *results)


# ---- sequences ------------------------------------------------------------------------------------------
@op("SequenceConstruct")
def _seq_construct(ctx: Context, *xs: Tensor) -> list[Tensor]:
    return list(xs)


@op("SequenceEmpty")
def _seq_empty(ctx: Context, dtype: Optional[int] = None) -> list[Tensor]:
    return []


def _pos(seq: list[Any], pos: Optional[Tensor], default: int) -> int:
    p = int(_scalar(pos)) if pos is not None else default
    return p + len(seq) if p < 0 else p


@op("SequenceInsert")
def _seq_insert(ctx: Context, seq: list[Tensor], t: Tensor, pos: Optional[Tensor] = None) -> list[Tensor]:
    out = list(seq)
    out.insert(_pos(seq, pos, len(seq)), t)
    return out


@op("SequenceErase")
def _seq_erase(ctx: Context, seq: list[Tensor], pos: Optional[Tensor] = None) -> list[Tensor]:
    out = list(seq)
    del out[_pos(seq, pos, len(seq) - 1)]
    return out


@op("SequenceAt")
def _seq_at(ctx: Context, seq: list[Tensor], pos: Tensor) -> Tensor:
    return seq[_pos(seq, pos, 0)]


@op("SequenceLength")
def _seq_length(ctx: Context, seq: list[Tensor]) -> Tensor:
    return Tensor(np.array(len(seq), np.int64), device=ctx.device)


@op("ConcatFromSequence")
def _concat_from_seq(ctx: Context, seq: list[Tensor], axis: int, new_axis: int = 0) -> Tensor:
    if new_axis:
        return seq[0].stack(*seq[1:], dim=axis if axis >= 0 else axis + seq[0].ndim + 1)
    return seq[0].cat(*seq[1:], dim=axis)


@op("SplitToSequence")
def _split_to_seq(ctx: Context, x: Tensor, split: Optional[Tensor] = None, axis: int = 0,
                  keepdims: int = 1) -> list[Tensor]:
    a = axis_index(axis, x.ndim)
    if split is None:
        parts = x.split(1, a)
        return [p.squeeze(a) for p in parts] if not keepdims else list(parts)
    sizes = ctx.ints(split) or []
    return list(x.split(sizes[0] if split.ndim == 0 else sizes, a))


@op("SequenceMap")
def _seq_map(ctx: Context, seq: list[Tensor], *extra: Any, body: Any) -> tuple[list[Any], ...]:
    outs: list[list[Any]] = [[] for _ in body.output]
    for i in range(len(seq)):
        args = [seq[i], *(e[i] if isinstance(e, list) else e for e in extra)]
        for k, v in enumerate(run_subgraph(ctx, body, args)):
            outs[k].append(v)
    return tuple(outs)


# ---- optionals ------------------------------------------------------------------------------------------
@op("Optional")
def _optional(ctx: Context, x: Any = None, type: Any = None) -> Any:  # noqa: A002 - ONNX's name
    return x


@op("OptionalHasElement")
def _optional_has(ctx: Context, x: Any = None) -> Tensor:
    return Tensor(np.array(x is not None), device=ctx.device)


@op("OptionalGetElement")
def _optional_get(ctx: Context, x: Any) -> Any:
    if x is None:
        raise OnnxError(f"onnx: OptionalGetElement node {ctx.node.name!r} got an empty optional")
    return x


@op("Identity")
def _identity(ctx: Context, x: Any) -> Any:
    return x

