"""A small pattern-rewrite engine: named rules, each a pattern over a node and its sources and a function that
builds the replacement.

It works on `UOp`s (uop.py) of either level, kernel AST or loop IR (any node with `op`, `src`, `arg`, `dtype`). A
pattern names the parts it binds; a rule's builder receives them by name and returns the replacement, or
None when the rule does not apply after all; it also receives a context first (whoever builds new nodes, such
as the lowering). `RuleSet.apply` tries the rules registered for a node's op in order and returns the first
replacement.

>>> from tg.core.uop import UOp
>>> from tg.core.dtype import int64
>>> from tg.core.ops import Op
>>> plus_zero = Rule("x + 0 -> x", Pat(Op.ADD, src=(Pat(name="x"), Pat(Op.CONST, 0))), lambda ctx, x: x)
>>> x = UOp(Op.RANGE, int64, (), 0)
>>> RuleSet([plus_zero]).apply(UOp(Op.ADD, int64, (x, UOp(Op.CONST, int64, (), 0))), None) is x
True
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

ANY = object()  # a pattern field that matches everything


@dataclass(frozen=True)
class Pat:
    """Matches a node whose op is `op` (None: any), whose arg equals `arg` (ANY: any; a tuple of choices
    when `arg_in`), whose sources match `src` (None: any sources), and for which `when(node)` holds. A
    `name` binds the matched node for the rule's builder."""

    op: Any = None
    arg: Any = ANY
    src: Optional[tuple[Pat, ...]] = None
    name: Optional[str] = None
    when: Optional[Callable[[Any], bool]] = None
    arg_in: bool = False

    def match(self, node: Any, bound: dict[str, Any]) -> bool:
        if self.op is not None and node.op is not self.op:
            return False
        if self.arg is not ANY:
            if self.arg_in and node.arg not in self.arg:
                return False
            if not self.arg_in and (type(node.arg) is not type(self.arg) or node.arg != self.arg):
                return False  # type first: 0 == False == 0.0 would let a float rule match an int
        if self.when is not None and not self.when(node):
            return False
        if self.src is not None:
            if len(self.src) != len(node.src):
                return False
            if not all(p.match(s, bound) for p, s in zip(self.src, node.src)):
                return False
        if self.name is not None:
            if self.name in bound and bound[self.name] is not node:
                return False  # a name used twice must bind the same node
            bound[self.name] = node
        return True


@dataclass(frozen=True)
class Rule:
    """`name` documents the rewrite; `build(ctx, **bound)` returns the replacement or None."""

    name: str
    pattern: Pat
    build: Callable[..., Any]


class RuleSet:
    """An ordered list of rules; for each (op, arg) of a node only the rules whose root could match are tried."""

    def __init__(self, rules: Sequence[Rule]):
        self.rules = list(rules)
        self.fired: dict[str, int] = {}  # rule name -> times applied, for tests and TG_DEBUG
        self._candidates: dict[tuple[Any, Any], list[Rule]] = {}

    def candidates(self, op: Any, arg: Any) -> list[Rule]:
        """The rules whose root pattern can match a node of this op and arg, in order (computed once)."""
        key = (op, arg if isinstance(arg, Hashable) else None)
        found = self._candidates.get(key)
        if found is None:
            found = [r for r in self.rules if r.pattern.op in (None, op) and
                     (r.pattern.arg is ANY or r.pattern.arg_in or key[1] is None or r.pattern.arg == arg)]
            self._candidates[key] = found
        return found

    def apply(self, node: Any, ctx: Any) -> Any:
        """The replacement of the first rule that applies to `node` (built with `ctx`), or None."""
        for rule in self.candidates(node.op, node.arg):
            bound: dict[str, Any] = {}
            if rule.pattern.match(node, bound):
                out = rule.build(ctx, **bound)
                if out is not None:
                    self.fired[rule.name] = self.fired.get(rule.name, 0) + 1
                    return out
        return None

    def __add__(self, other: RuleSet) -> RuleSet:
        return RuleSet(self.rules + other.rules)
