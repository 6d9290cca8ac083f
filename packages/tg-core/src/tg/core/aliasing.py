"""Views that alias and in-place ops, as in torch.

A tensor made by a view op (reshape, permute, narrow, basic indexing, split, detach, ...) remembers the tensor it
views and the `ViewPath` of ops from it (`Tensor._view_of`). An in-place op computes its result and
`indexing.assign` writes it: into a view, through to the viewed tensor, whose version then goes up so that its
views read it again on their next use. `tensor.py` binds the methods made here.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Optional

from . import indexing

if TYPE_CHECKING:
    from .tensor import Tensor


def _in_place(fn: Callable[..., Tensor], name: str) -> Callable[..., Tensor]:
    """torch's in-place form of an op as a method: x.name_(...) computes x.name(...) and writes it into x (same
    shape; a float result is not written to an integer tensor). A write to a view reaches the tensor it views."""

    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return indexing.assign(self, fn(indexing._before(self), *args, **kwargs))

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"In place: `x.{name}(...)` writes `x.{name[:-1]}(...)` into x, as torch's `Tensor.{name}`."
    return method


class ViewPath:
    """The view ops that lead from a tensor to a view of it, oldest first when applied: a linked list, so a view of a
    view extends its parent's path in O(1) and a loop of views (`x = x[1:]`) stays linear."""

    __slots__ = ("data_only", "fn", "parent")

    def __init__(self, fn: Callable[[Tensor], Tensor], parent: Optional[ViewPath]):
        self.fn, self.parent = fn, parent
        # through a detach(): a write changes the viewed tensor's data, not its place in the graph (torch)
        self.data_only: bool = fn is _detached or (parent is not None and parent.data_only)

    def __call__(self, base: Tensor) -> Tensor:
        for apply in self.steps():
            base = apply(base)
        return base

    def steps(self) -> list[Callable[[Tensor], Tensor]]:
        out: list[Callable[[Tensor], Tensor]] = []
        step: Optional[ViewPath] = self
        while step is not None:
            out.append(step.fn)
            step = step.parent
        return out[::-1]

    def moves(self, base: Tensor) -> Tensor:
        """The path without its detach() steps: where a write lands, found by a backward pass through it."""
        for apply in self.steps():
            if apply is not _detached:
                base = apply(base)
        return base


def _detached(base: Tensor) -> Tensor:
    return base.tensor_class(base.node)


def _viewed(out: Tensor, source: Tensor, fn: Callable[[Tensor], Tensor]) -> None:
    """Mark `out` = fn(source) as a view of what `source` views (or of source itself)."""
    if source._view_of is not None:
        base, path, _ = source._view_of
        out._view_of = (base, ViewPath(fn, path), base._version)
    else:
        out._view_of = (source, ViewPath(fn, None), source._version)


def _view(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """A movement op whose result is a view of its input, as in torch: in-place writes to it reach the input."""

    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        out = fn(self, *args, **kwargs)
        if out is not self:
            _viewed(out, self, lambda base: fn(base, *args, **kwargs))
        return out

    method.__name__ = method.__qualname__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method


def _piece(fn: Callable[..., Sequence[Tensor]], i: int, args: tuple[Any, ...], kwargs: dict[str, Any]
           ) -> Callable[[Tensor], Tensor]:
    return lambda base: fn(base, *args, **kwargs)[i]


def _views(fn: Callable[..., Sequence[Tensor]]) -> Callable[..., Any]:
    """`_view` for ops that return several views (split, chunk, unbind)."""

    def method(self: Tensor, *args: Any, **kwargs: Any) -> Any:
        out = fn(self, *args, **kwargs)
        for i, piece in enumerate(out):
            if piece is not self:
                _viewed(piece, self, _piece(fn, i, args, kwargs))
        return out

    method.__name__ = method.__qualname__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method
