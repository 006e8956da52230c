"""The online backend: a checked condition compiled once into nested Python closures.

Each node becomes a small function of the declaration's value dict (as
:func:`.declaration.normalize` makes it, with aggregation values added), so a
decision costs a few function calls per rule and no parsing. Null is
``None``; the three-valued logic is spelled out in :mod:`.expr` and matched
by :mod:`.vector`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .expr import (
    Binary,
    Call,
    Field,
    In,
    IsNull,
    ListLit,
    ListRef,
    Literal,
    Node,
    TextOp,
    Unary,
    text_pattern,
)

Row = Mapping[str, Any]
Fn = Callable[[Row], Any]


def compile_online(
    node: Node,
    *,
    lists: Mapping[str, frozenset[Any]],
    tables: Mapping[str, Mapping[str, float]],
) -> Fn:
    """Compiles a type-checked condition into a function of one declaration.

    Args:
        node: The checked tree (:func:`.expr.check` has run on it).
        lists: Reference lists by name.
        tables: Reference tables by name.

    Returns:
        A function from the declaration's values to True, False, None (null)
        or, for a sub-expression, its value.
    """
    return _Compiler(lists, tables).compile(node)


class _Compiler:
    def __init__(
        self, lists: Mapping[str, frozenset[Any]], tables: Mapping[str, Mapping[str, float]]
    ) -> None:
        self.lists = lists
        self.tables = tables

    def compile(self, node: Node) -> Fn:
        method = getattr(self, f"_{type(node).__name__.lower()}")
        return method(node)

    def _literal(self, node: Literal) -> Fn:
        value = node.value
        return lambda r: value

    def _field(self, node: Field) -> Fn:
        name = node.name
        return lambda r: r[name]

    def _unary(self, node: Unary) -> Fn:
        f = self.compile(node.operand)  # type: ignore[arg-type]
        if node.op == "not":

            def not_(r: Row) -> Any:
                v = f(r)
                return None if v is None else not v

            return not_

        def neg(r: Row) -> Any:
            v = f(r)
            return None if v is None else -v

        return neg

    def _binary(self, node: Binary) -> Fn:
        a = self.compile(node.left)  # type: ignore[arg-type]
        b = self.compile(node.right)  # type: ignore[arg-type]
        op = node.op
        if op == "and":

            def and_(r: Row) -> Any:
                x = a(r)
                if x is False:
                    return False
                y = b(r)
                if y is False:
                    return False
                return None if x is None or y is None else True

            return and_
        if op == "or":

            def or_(r: Row) -> Any:
                x = a(r)
                if x is True:
                    return True
                y = b(r)
                if y is True:
                    return True
                return None if x is None or y is None else False

            return or_
        fn = _BINARY[op]

        def binary(r: Row) -> Any:
            x = a(r)
            if x is None:
                return None
            y = b(r)
            if y is None:
                return None
            return fn(x, y)

        return binary

    def _in(self, node: In) -> Fn:
        f = self.compile(node.operand)  # type: ignore[arg-type]
        items = self._items(node.items)  # type: ignore[arg-type]
        negate = node.negate

        def in_(r: Row) -> Any:
            v = f(r)
            if v is None:
                return None
            return (v in items) != negate

        return in_

    def _items(self, node: Node) -> frozenset[Any]:
        if isinstance(node, ListRef):
            return self.lists[node.name]
        assert isinstance(node, ListLit)
        return frozenset(item.value for item in node.items)

    def _textop(self, node: TextOp) -> Fn:
        f = self.compile(node.operand)  # type: ignore[arg-type]
        pattern = node.pattern
        if isinstance(pattern, ListRef):
            values = sorted(str(v) for v in self.lists[pattern.name])
        else:
            values = [str(pattern.value)]  # type: ignore[union-attr]
        if not values:
            return lambda r: None if f(r) is None else False
        regex = text_pattern(node.op, values)
        if regex is None:
            (needle,) = values
            test: Callable[[str], bool]
            if node.op == "contains":
                test = lambda s: needle in s  # noqa: E731
            elif node.op == "startswith":
                test = lambda s: s.startswith(needle)  # noqa: E731
            else:
                test = lambda s: s.endswith(needle)  # noqa: E731
        else:
            search = re.compile(regex).search
            test = lambda s: search(s) is not None  # noqa: E731

        def text_op(r: Row) -> Any:
            v = f(r)
            return None if v is None else test(v)

        return text_op

    def _isnull(self, node: IsNull) -> Fn:
        f = self.compile(node.operand)  # type: ignore[arg-type]
        if node.negate:
            return lambda r: f(r) is not None
        return lambda r: f(r) is None

    def _call(self, node: Call) -> Fn:
        if node.agg_column:  # an aggregation: its value was computed before the rules run
            column = node.agg_column
            return lambda r: r[column]
        name = node.name
        if name == "lookup":
            table = self.tables[node.args[0].name]  # type: ignore[attr-defined]
            key = self.compile(node.args[1])
            return lambda r: table.get(key(r))
        args = [self.compile(a) for a in node.args]
        if name in ("lower", "upper", "len", "abs"):
            (g,) = args
            fn = {
                "lower": str.lower,
                "upper": str.upper,
                "len": lambda s: float(len(s)),
                "abs": abs,
            }[name]

            def one(r: Row) -> Any:
                v = g(r)
                return None if v is None else fn(v)

            return one
        if name == "days_between":
            first, second = args

            def days_between(r: Row) -> Any:
                x, y = first(r), second(r)
                return None if x is None or y is None else y - x

            return days_between
        if name == "coalesce":

            def coalesce(r: Row) -> Any:
                for g in args:
                    v = g(r)
                    if v is not None:
                        return v
                return None

            return coalesce
        pick = min if name == "min" else max

        def extreme(r: Row) -> Any:
            values = [v for v in (g(r) for g in args) if v is not None]
            return pick(values) if values else None

        return extreme


def _div(x: float, y: float) -> float | None:
    return None if y == 0 else x / y


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda x, y: x + y,
    "-": lambda x, y: x - y,
    "*": lambda x, y: x * y,
    "/": _div,
    "==": lambda x, y: x == y,
    "!=": lambda x, y: x != y,
    "<": lambda x, y: x < y,
    "<=": lambda x, y: x <= y,
    ">": lambda x, y: x > y,
    ">=": lambda x, y: x >= y,
}
