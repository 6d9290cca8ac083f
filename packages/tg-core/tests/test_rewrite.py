"""The rewrite engine, the index simplification rules, the lowering's value numbering and the IR checker."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tg.core import Tensor
from tg.core import dtype as dt
from tg.core.check import IRError, check
from tg.core.ir import Program
from tg.core.lower import lower
from tg.core.ops import Op
from tg.core.opt import choose_opts
from tg.core.schedule import schedule
from tg.core.simplify import INDEX_RULES, fold
from tg.core.uop import UOp

INTS = [dt.int8, dt.uint8, dt.int16, dt.int32, dt.uint32, dt.int64]


def edge_values(d: dt.DType) -> list[int]:
    info = np.iinfo(d.np)
    return [int(info.min), int(info.min) + 1, -7, -1, 0, 1, 3, 7, int(info.max) - 1, int(info.max)]


@pytest.mark.parametrize("d", INTS, ids=lambda d: d.name)
def test_constant_folding_follows_the_integer_semantics(d: dt.DType) -> None:
    """Folded constants equal what a device computes: NumPy's wrapping arithmetic, C's truncating division and
    remainder, and 0 for a division or remainder by zero (the semantics spec)."""
    values = [v for v in edge_values(d) if np.iinfo(d.np).min <= v <= np.iinfo(d.np).max]
    a, b = (np.array(x, d.np) for x in zip(*[(p, q) for p in values for q in values]))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        remainder = np.where(b == 0, 0, np.fmod(a, np.where(b == 0, 1, b)))
        safe_b = np.where(b == 0, 1, b)
        quotient = np.where(b == 0, 0, ((a - remainder) // safe_b).astype(d.np))
        expected = {Op.ADD: a + b, Op.MUL: a * b, Op.MAX: np.maximum(a, b), Op.XOR: a ^ b, Op.AND: a & b,
                    Op.OR: a | b, Op.CMPLT: a < b, Op.CMPEQ: a == b, Op.MOD: remainder, Op.IDIV: quotient}
    for op, want in expected.items():
        got = [fold(op, d, [int(x), int(y)]) for x, y in zip(a, b)]
        assert got == [w.item() for w in want], op


def test_division_of_the_lowest_value_by_minus_one_wraps() -> None:
    assert fold(Op.IDIV, dt.int32, [-2**31, -1]) == -2**31
    assert fold(Op.MOD, dt.int32, [-2**31, -1]) == 0
    assert fold(Op.NEG, dt.int8, [-128]) == -128


class Builder:
    """The smallest rewrite context: builds UOps, simplified or not, and shares equal ones."""

    def __init__(self, simplify: bool):
        self.simplify = simplify
        self.seen: dict[Any, UOp] = {}

    def make(self, u: UOp) -> UOp:
        if self.simplify and (better := INDEX_RULES.apply(u, self)) is not None:
            return better
        return self.seen.setdefault((u.op, u.dtype, tuple(map(id, u.src)), u.arg), u)

    def const(self, value: Any, d: dt.DType) -> UOp:
        return self.make(UOp(Op.CONST, d, (), value))

    def alu(self, op: Op, *src: UOp) -> UOp:
        d = dt.bool_ if op in (Op.CMPLT, Op.CMPEQ) else src[-1].dtype
        return self.make(UOp(op, d, src))


def evaluate(u: UOp, env: dict[int, int]) -> Any:
    if u.op is Op.CONST:
        return u.arg
    if u.op is Op.RANGE:
        return env[id(u)]
    args = [evaluate(s, env) for s in u.src]
    return fold(u.op, u.src[-1].dtype if u.op is not Op.WHERE else u.dtype, args)


def count(u: UOp) -> int:
    return 1 + sum(count(s) for s in u.src)


OPS = [Op.ADD, Op.MUL, Op.ADD, Op.MUL, Op.IDIV, Op.MOD, Op.MAX, Op.CMPLT, Op.WHERE]


@st.composite
def expressions(draw: Any) -> list[tuple[Any, ...]]:
    """A random index expression as a little program: ('var', k), ('const', c) or (op, i, j[, k])."""
    steps: list[tuple[Any, ...]] = [("var", 0), ("var", 1)]
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["const", "op", "op", "op"]))
        if kind == "const":
            steps.append(("const", draw(st.integers(-40, 40))))
        else:
            op = draw(st.sampled_from(OPS))
            picks = [draw(st.integers(0, len(steps) - 1)) for _ in range(3)]
            steps.append((op, *picks))
    return steps


def build(b: Builder, steps: list[tuple[Any, ...]], d: dt.DType, loops: list[UOp]) -> UOp:
    values: list[UOp] = []
    for step in steps:
        if step[0] == "var":
            values.append(loops[step[1]])
        elif step[0] == "const":
            values.append(b.const(step[1], d))
        elif step[0] is Op.WHERE:
            cond = b.alu(Op.CMPLT, values[step[1]], values[step[2]])
            values.append(b.alu(Op.WHERE, cond, values[step[2]], values[step[3]]))
        elif step[0] is Op.CMPLT:  # keep every value an integer: compare, then select
            values.append(b.alu(Op.WHERE, b.alu(Op.CMPLT, values[step[1]], values[step[2]]), values[step[1]],
                                values[step[2]]))
        else:
            values.append(b.alu(step[0], values[step[1]], values[step[2]]))
    return values[-1]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(expressions(), st.sampled_from([dt.int32, dt.int8, dt.int64]))
def test_simplified_index_expressions_compute_the_same_values(steps: list[tuple[Any, ...]], d: dt.DType) -> None:
    """Every rule is an identity in wrapping integer arithmetic: the simplified expression equals the plain one
    at every loop position, and is never larger."""
    loops = [UOp(Op.RANGE, d, (), k) for k in range(2)]
    plain, simple = build(Builder(False), steps, d, loops), build(Builder(True), steps, d, loops)
    for i in range(-3, 4):
        for j in (-128, -5, 0, 2, 9, 127):
            env = {id(loops[0]): i, id(loops[1]): j}
            assert evaluate(simple, env) == evaluate(plain, env)
    assert count(simple) <= count(plain)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(expressions(), st.sampled_from([dt.int32, dt.int8, dt.int64]), st.integers(-4, 4), st.integers(1, 6),
       st.integers(-40, 40), st.integers(1, 40))
def test_comparisons_decided_by_loop_ranges_hold_at_every_position(steps: list[tuple[Any, ...]], d: dt.DType,
                                                                    lo0: int, n0: int, lo1: int, n1: int) -> None:
    """With loops of known bounds, comparisons that the ranges decide fold to constants (a padding check on a
    position never in the padding): the simplified expression equals the plain one at every position of the
    loops, in wrapping arithmetic (int8 wraps within the ranges drawn here)."""
    b_plain, b_simple = Builder(False), Builder(True)
    loops = [UOp(Op.RANGE, d, (b_plain.const(lo, d), b_plain.const(lo + n, d)), k)
             for k, (lo, n) in enumerate(((lo0, n0), (lo1, n1)))]
    plain, simple = build(b_plain, steps, d, loops), build(b_simple, steps, d, loops)
    for i in range(lo0, lo0 + n0):
        for j in range(lo1, lo1 + n1):
            env = {id(loops[0]): i, id(loops[1]): j}
            assert evaluate(simple, env) == evaluate(plain, env)
    assert count(simple) <= count(plain)


def test_a_padding_check_that_the_loop_ranges_decide_is_folded() -> None:
    """0 < i + 1 for i in [0, 3) is always true, i + 1 < 3 is not: the first folds to a constant."""
    b = Builder(True)
    i = UOp(Op.RANGE, dt.int32, (b.const(0, dt.int32), b.const(3, dt.int32)), 0)
    pos = b.alu(Op.ADD, i, b.const(1, dt.int32))
    assert b.alu(Op.CMPLT, b.const(0, dt.int32), pos).op is Op.CONST
    assert b.alu(Op.CMPLT, pos, b.const(3, dt.int32)).op is Op.CMPLT
    assert b.alu(Op.CMPLT, pos, b.const(4, dt.int32)).arg is True


def matmul_kernel(n: int = 512) -> Any:
    a, b = Tensor.rand(n, n, device="numpy").realize(), Tensor.rand(n, n, device="numpy").realize()
    return next(i.kernel for i in schedule([(a @ b).node]) if i.kernel is not None)


@pytest.mark.parametrize("gpu", [False, True])
def test_an_unrolled_matmul_lowers_to_a_compact_program(gpu: bool) -> None:
    """Body copies share their index arithmetic (sum + constant) and nothing is computed twice in a scope: a
    512^2 matmul with an 8x32 register tile (CPU) or 2x16 (GPU) lowers to a few UOps per multiply-add."""
    kernel = matmul_kernel()
    prog = lower(kernel, choose_opts(kernel, gpu), gpu=gpu)
    fmas = sum(u.op is Op.ACC_FMA for u in prog.uops)
    assert fmas == (32 if gpu else 256)
    assert len(prog.uops) <= 7 * fmas + 60, len(prog.uops)
    check(prog, [512 * 512] * 3)


def test_loop_invariant_arithmetic_is_hoisted() -> None:
    """The index arithmetic of A's row (which only the outer loops move) sits outside the reduce loop."""
    kernel = matmul_kernel(64)
    prog = lower(kernel, choose_opts(kernel, False))
    depth, inner_muls = 0, 0
    for u in prog.uops:
        depth += (u.op is Op.RANGE) - (u.op is Op.END)
        if depth == 3 and u.op is Op.MUL and u.dtype == dt.int64:
            inner_muls += 1
    assert inner_muls <= 2  # k * stride for each operand; nothing that depends on i or j only


def program(uops: list[UOp], sizes: int = 1) -> Program:
    return Program("probe", uops, [dt.float32] * sizes, 4, 1)


def test_the_checker_finds_out_of_range_stores_and_scope_errors() -> None:
    out = UOp(Op.PARAM, dt.float32, (), 0)
    start, end = UOp(Op.BOUND, dt.int64, (), "start"), UOp(Op.BOUND, dt.int64, (), "end")
    loop = UOp(Op.RANGE, dt.int64, (start, end), 0)
    value = UOp(Op.CONST, dt.float32, (), 1.0)
    good = [out, start, end, loop, value, UOp(Op.STORE, dt.void, (out, loop, value)), UOp(Op.END, dt.void, (loop,))]
    check(program(good), [4])
    with pytest.raises(IRError, match="leaves buffer 0 of 3 elements"):
        check(program(good), [3])
    with pytest.raises(IRError, match="takes 1 buffers, 2 were given"):
        check(program(good), [4, 4])
    shifted = UOp(Op.ADD, dt.int64, (loop, UOp(Op.CONST, dt.int64, (), 1)))
    late = [*good[:-1], UOp(Op.END, dt.void, (loop,)), UOp(Op.STORE, dt.void, (out, shifted, value))]
    with pytest.raises(IRError, match="not defined before it, or its loop has ended"):
        check(program(late), [8])
    two = UOp(Op.CONST, dt.float64, (), 2.0)
    mixed = UOp(Op.ADD, dt.float32, (value, two))
    with pytest.raises(IRError, match="differ in dtype"):
        check(program([out, value, two, mixed]))
    unclosed = [out, start, end, loop]
    with pytest.raises(IRError, match="never end"):
        check(program(unclosed))


def test_every_kernel_of_a_training_step_passes_the_checker() -> None:
    """Lower each kernel of a small conv + matmul training step for CPU and GPU targets and check it with the
    sizes the scheduler gives its buffers."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3, 9, 9)).astype(np.float32))
    w = Tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    v = Tensor(rng.standard_normal((4 * 2 * 2, 5)).astype(np.float32), requires_grad=True)
    y = x.conv2d(w, stride=2, padding=1).relu().max_pool2d(2).reshape(2, -1) @ v
    loss = y.log_softmax(-1).mean()
    loss.backward()
    nodes = [loss.node, w.grad.node, v.grad.node]  # type: ignore[union-attr]
    kernels = [i for i in schedule(nodes) if i.kernel is not None]
    assert kernels
    for item in kernels:
        sizes = [item.out.numel, *(n.buffer.size if n.buffer is not None else n.numel for n in item.inputs)]
        for gpu in (False, True):
            check(lower(item.kernel, choose_opts(item.kernel, gpu), gpu=gpu), sizes)


def test_the_checker_bounds_a_block_loop_clamped_by_min() -> None:
    # a long float sum runs in blocks: for b in [0, 3): for k in [b*4, min(b*4 + 4, 10)) reads buffer[k], 10
    # elements. (b*4 + 4 < 10 ? b*4 + 4 : 10) is a min: at most 10, not 12 (the checker used to say 12)
    out, data = UOp(Op.PARAM, dt.float32, (), 0), UOp(Op.PARAM, dt.float32, (), 1)
    c = lambda v: UOp(Op.CONST, dt.int64, (), v)  # noqa: E731
    start, end = UOp(Op.BOUND, dt.int64, (), "start"), UOp(Op.BOUND, dt.int64, (), "end")
    outer = UOp(Op.RANGE, dt.int64, (start, end), 0)
    block = UOp(Op.RANGE, dt.int64, (c(0), c(3)), -2)
    lo = UOp(Op.MUL, dt.int64, (block, c(4)))
    hi = UOp(Op.ADD, dt.int64, (lo, c(4)))
    clamped = UOp(Op.WHERE, dt.int64, (UOp(Op.CMPLT, dt.bool_, (hi, c(10))), hi, c(10)))
    k = UOp(Op.RANGE, dt.int64, (lo, clamped), 1)
    acc = UOp(Op.DEFINE_ACC, dt.float32, (), 0.0)
    load = UOp(Op.LOAD, dt.float32, (data, k))
    read = UOp(Op.ACC_READ, dt.float32, (acc,))
    ordered: list[UOp] = []

    def emit(u: UOp) -> None:  # sources first, each once
        for s in u.src:
            if s not in ordered:
                emit(s)
        if u not in ordered:
            ordered.append(u)

    for u in [out, data, outer, acc, block, k, load, UOp(Op.ACC_UPDATE, dt.float32, (acc, load), Op.ADD),
              UOp(Op.END, dt.void, (k,)), UOp(Op.END, dt.void, (block,)), read,
              UOp(Op.STORE, dt.void, (out, outer, read)),
              UOp(Op.END, dt.void, (outer,))]:
        emit(u)
    prog = Program("probe", ordered, [dt.float32, dt.float32], 1, 10)
    check(prog, [1, 10])
    with pytest.raises(IRError, match="leaves buffer 1 of 9 elements"):
        check(prog, [1, 9])
