"""Algebraic simplification of integer (index) arithmetic in the loop IR, as rewrite rules.

Lowering writes every index the plain way: `offset + sum(position * stride)`, where an unrolled copy's
position is `loop * U + u`. These rules fold the constants outwards (`(x + 2) + 3 -> x + 5`, `(x + c) * s ->
x * s + c * s`, `(x + c) + y -> (x + y) + c`), so that the copies of an unrolled body share everything but a
final `+ constant`, and the lowering's value table (`lower.py`) finds the shared part once. A comparison that
the loops' ranges decide is a constant (a padding check on a position that is never in the padding). Constants are
folded with the semantics spec's integer rules (two's complement wrapping, division truncating toward
zero, x // 0 == x % 0 == 0). Rules apply to integer and bool values only: float arithmetic is never
reassociated (it would change results).

`ctx` is the builder that emits replacement nodes: it offers `alu(op, *src)` and `const(value, dtype)`.
"""
from __future__ import annotations

from typing import Any

from .dtype import DType, bool_
from .ops import Op
from .rewrite import ANY, Pat, Rule, RuleSet
from .uop import UOp


def wrap(value: int, d: DType) -> Any:
    """An integer wrapped to dtype `d` (two's complement), or a bool."""
    if d.kind == "b":
        return bool(value)
    bits = 8 * d.itemsize
    value &= (1 << bits) - 1
    return value - (1 << bits) if d.kind == "i" and value >= 1 << (bits - 1) else value


def fold(op: Op, d: DType, args: list[Any]) -> Any:
    """The value of `op` on constant integer or bool operands, as the semantics spec defines it."""
    a = args[0]
    b: Any = args[1] if len(args) > 1 else None
    if op is Op.WHERE:
        return args[1] if a else args[2]
    if op is Op.NEG:
        return wrap(-a, d) if d.kind != "b" else not a
    if op is Op.CMPLT:
        return a < b
    if op is Op.CMPEQ:
        return a == b
    if d.kind == "b":
        table = {Op.ADD: a or b, Op.MUL: a and b, Op.MAX: a or b, Op.AND: a and b, Op.OR: a or b, Op.XOR: a != b}
        return bool(table[op])
    if op is Op.IDIV or op is Op.MOD:
        if b == 0:
            return 0
        q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)  # truncating toward zero, like C
        return wrap(q if op is Op.IDIV else a - q * b, d)
    table = {Op.ADD: a + b, Op.MUL: a * b, Op.MAX: max(a, b), Op.AND: a & b, Op.OR: a | b, Op.XOR: a ^ b}
    return wrap(table[op], d)


def _integer(u: UOp) -> bool:
    return u.dtype is not None and not u.dtype.is_float


FOLDABLE = {Op.ADD, Op.MUL, Op.MAX, Op.CMPLT, Op.CMPEQ, Op.IDIV, Op.MOD, Op.AND, Op.OR, Op.XOR, Op.NEG, Op.WHERE}
COMMUTATIVE = {Op.ADD, Op.MUL, Op.MAX, Op.CMPEQ, Op.AND, Op.OR, Op.XOR}


def _recombined(a: UOp, b: UOp) -> UOp | None:
    """x where a + b is (x // c) * c + x % c (in either order), which a flattened loop's index splits into and
    joins again; the identity holds for any c != 0 with division and remainder of the same rounding."""
    for mul, mod in ((a, b), (b, a)):
        if mul.op is Op.MUL and mod.op is Op.MOD:
            div, c = mul.src
            if div.op is not Op.IDIV or div.src[0] is not mod.src[0]:
                continue
            if all(s.op is Op.CONST and s.arg == c.arg for s in (c, div.src[1], mod.src[1])) and c.arg != 0:
                return mod.src[0]
    return None


MAX_RANGE_DEPTH = 8  # index expressions are shallow sums of products; deeper ones are not bounded


def value_range(u: UOp, depth: int = 0) -> tuple[int, int] | None:
    """The least and greatest value of an integer index expression over the ranges of the loops it uses (None
    where unknown: a loop with bounds only known at run time, or an op not followed)."""
    if u.op is Op.CONST:
        return (u.arg, u.arg) if type(u.arg) is int else None
    if u.op is Op.RANGE:
        if len(u.src) != 2 or any(s.op is not Op.CONST for s in u.src) or u.src[1].arg <= u.src[0].arg:
            return None
        return u.src[0].arg, u.src[1].arg - 1
    if u.op not in (Op.ADD, Op.MUL) or depth >= MAX_RANGE_DEPTH or not _integer(u) or u.dtype.kind == "b":
        return None
    a, b = (value_range(s, depth + 1) for s in u.src)
    if a is None or b is None:
        return None
    if u.op is Op.ADD:
        lo, hi = a[0] + b[0], a[1] + b[1]
    else:
        corners = [x * y for x in a for y in b]
        lo, hi = min(corners), max(corners)
    bits = 8 * u.dtype.itemsize
    least, most = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if u.dtype.kind == "i" else (0, (1 << bits) - 1)
    return (lo, hi) if least <= lo and hi <= most else None  # past the dtype's range the value wraps


def _decided(a: UOp, b: UOp) -> bool | None:
    """a < b when the ranges of a and b decide it, else None."""
    ra, rb = value_range(a), value_range(b)
    if ra is None or rb is None:
        return None
    return True if ra[1] < rb[0] else False if ra[0] >= rb[1] else None


def _const(name: str, value: Any = None) -> Pat:
    return Pat(Op.CONST, name=name) if value is None else Pat(Op.CONST, value, name=name)


def _alu(op: Op, *src: Pat, name: str | None = None) -> Pat:
    return Pat(op, ANY, src, name, when=_integer)


x, y = Pat(name="x"), Pat(name="y", when=lambda u: u.op is not Op.CONST)
c1, c2 = _const("c1"), _const("c2")

INDEX_RULES = RuleSet([
    Rule("fold constants", Pat(name="root", when=lambda u: u.op in FOLDABLE and _integer(u) and
                               all(s.op is Op.CONST for s in u.src)),
         lambda ctx, root: ctx.const(fold(root.op, root.src[-1].dtype if root.op is not Op.WHERE else root.dtype,
                                          [s.arg for s in root.src]), root.dtype)),
    Rule("where with a constant condition", Pat(Op.WHERE, ANY, (_const("c"), Pat(name="a"), Pat(name="b"))),
         lambda ctx, c, a, b: a if c.arg else b),
    Rule("constant first -> constant last", Pat(name="root", when=lambda u: u.op in COMMUTATIVE and _integer(u) and
                                                len(u.src) == 2 and
                                                u.src[0].op is Op.CONST and u.src[1].op is not Op.CONST),
         lambda ctx, root: ctx.alu(root.op, root.src[1], root.src[0])),
    Rule("x + 0 -> x", _alu(Op.ADD, x, _const("z", 0)), lambda ctx, x, z: x),
    Rule("a < b decided by ranges", _alu(Op.CMPLT, Pat(name="a"), Pat(name="b")),
         lambda ctx, a, b: None if (known := _decided(a, b)) is None else ctx.const(known, bool_)),
    Rule("x and true -> x", _alu(Op.AND, x, _const("t", True)), lambda ctx, x, t: x),
    Rule("x and false -> false", _alu(Op.AND, x, _const("f", False)), lambda ctx, x, f: f),
    Rule("x * 1 -> x", _alu(Op.MUL, x, _const("one", 1)), lambda ctx, x, one: x),
    Rule("x * 0 -> 0", _alu(Op.MUL, x, _const("z", 0)), lambda ctx, x, z: z),
    Rule("x // 1 -> x", _alu(Op.IDIV, x, _const("one", 1)), lambda ctx, x, one: x),
    Rule("x % 1 -> 0", _alu(Op.MOD, x, _const("one", 1)), lambda ctx, x, one: ctx.const(0, one.dtype)),
    Rule("(x + c1) + c2 -> x + (c1 + c2)", _alu(Op.ADD, _alu(Op.ADD, x, c1), c2),
         lambda ctx, x, c1, c2: ctx.alu(Op.ADD, x, ctx.const(fold(Op.ADD, c1.dtype, [c1.arg, c2.arg]), c1.dtype))),
    Rule("(x * c1) * c2 -> x * (c1 * c2)", _alu(Op.MUL, _alu(Op.MUL, x, c1), c2),
         lambda ctx, x, c1, c2: ctx.alu(Op.MUL, x, ctx.const(fold(Op.MUL, c1.dtype, [c1.arg, c2.arg]), c1.dtype))),
    Rule("(x + c1) * c2 -> x * c2 + c1 * c2", _alu(Op.MUL, _alu(Op.ADD, x, c1), c2),
         lambda ctx, x, c1, c2: ctx.alu(Op.ADD, ctx.alu(Op.MUL, x, c2),
                                        ctx.const(fold(Op.MUL, c1.dtype, [c1.arg, c2.arg]), c1.dtype))),
    Rule("(x // c) * c + x % c -> x", _alu(Op.ADD, Pat(name="a"), Pat(name="b")), lambda ctx, a, b: _recombined(a, b)),
    Rule("(x + c) + y -> (x + y) + c", _alu(Op.ADD, _alu(Op.ADD, x, _const("c")), y),
         lambda ctx, x, c, y: ctx.alu(Op.ADD, ctx.alu(Op.ADD, x, y), c)),
    Rule("x + (y + c) -> (x + y) + c", _alu(Op.ADD, Pat(name="a"), _alu(Op.ADD, y, _const("c"))),
         lambda ctx, a, y, c: ctx.alu(Op.ADD, ctx.alu(Op.ADD, a, y), c)),
])
