"""The batch backend: a checked condition compiled into one polars column expression.

The whole batch is evaluated column by column in polars' Rust engine, with no
Python code per row. Null is polars' null: arithmetic and comparisons
propagate it, and ``&`` / ``|`` on booleans follow the same three-valued
(Kleene) logic as the online backend (:mod:`.online`). Where polars would
differ from that meaning the compiler spells the meaning out (division by zero
is null, membership of a null is null, an empty list never matches).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from .expr import (
    BOOL,
    DATE,
    DURATION,
    NUMBER,
    TEXT,
    Binary,
    Call,
    Field,
    In,
    IsNull,
    ListRef,
    Literal,
    Node,
    TextOp,
    Unary,
    text_pattern,
)

_FEW = 4
"""Text lists up to this long are compiled to comparisons (see ``_Compiler._in``)."""

_DTYPES = {
    BOOL: pl.Boolean,
    NUMBER: pl.Float64,
    DATE: pl.Float64,
    DURATION: pl.Float64,
    TEXT: pl.String,
}


def compile_vector(
    node: Node,
    *,
    lists: Mapping[str, frozenset[Any]],
    tables: Mapping[str, Mapping[str, float]],
) -> pl.Expr:
    """Compiles a type-checked condition into a polars expression over declaration columns.

    Args:
        node: The checked tree (:func:`.expr.check` has run on it).
        lists: Reference lists by name.
        tables: Reference tables by name.
    """
    return _Compiler(lists, tables).compile(node)


class _Compiler:
    def __init__(
        self, lists: Mapping[str, frozenset[Any]], tables: Mapping[str, Mapping[str, float]]
    ) -> None:
        self.lists = lists
        self.tables = tables

    def compile(self, node: Node) -> pl.Expr:
        method = getattr(self, f"_{type(node).__name__.lower()}")
        return method(node)

    def _literal(self, node: Literal) -> pl.Expr:
        if node.value is None:  # polars casts an untyped null to whatever it meets
            return pl.lit(None)
        dtype = _DTYPES.get(node.type) or _DTYPES.get(node.kind) or pl.Float64
        return pl.lit(node.value, dtype=dtype)

    def _field(self, node: Field) -> pl.Expr:
        return pl.col(node.name)

    def _unary(self, node: Unary) -> pl.Expr:
        operand = self.compile(node.operand)  # type: ignore[arg-type]
        return ~operand if node.op == "not" else -operand

    def _binary(self, node: Binary) -> pl.Expr:
        a = self.compile(node.left)  # type: ignore[arg-type]
        b = self.compile(node.right)  # type: ignore[arg-type]
        op = node.op
        if op == "and":
            return a & b
        if op == "or":
            return a | b
        if op == "/":
            return pl.when(b == 0).then(None).otherwise(a / b)
        return {
            "+": lambda: a + b,
            "-": lambda: a - b,
            "*": lambda: a * b,
            "==": lambda: a == b,
            "!=": lambda: a != b,
            "<": lambda: a < b,
            "<=": lambda: a <= b,
            ">": lambda: a > b,
            ">=": lambda: a >= b,
        }[op]()

    def _in(self, node: In) -> pl.Expr:
        operand = self.compile(node.operand)  # type: ignore[arg-type]
        if isinstance(node.items, ListRef):
            values = list(self.lists[node.items.name])
        else:
            values = [item.value for item in node.items.items]  # type: ignore[union-attr]
        dtype = pl.String if node.operand.type == TEXT else pl.Float64  # type: ignore[union-attr]
        few = 0 < len(values) <= _FEW and all(isinstance(v, str) for v in values)
        if node.operand.type == TEXT and few:  # type: ignore[union-attr]
            # A few literals (a rule's kinds): comparisons, which polars shares between the
            # rules that repeat them; it does not share is_in with a literal list.
            member = pl.any_horizontal([operand == pl.lit(v, dtype=pl.String) for v in values])
        else:
            member = operand.is_in(pl.Series(values, dtype=dtype).implode())
        if node.negate:
            member = ~member
        return pl.when(operand.is_null()).then(None).otherwise(member)

    def _textop(self, node: TextOp) -> pl.Expr:
        operand = self.compile(node.operand)  # type: ignore[arg-type]
        pattern = node.pattern
        if isinstance(pattern, ListRef):
            values = sorted(str(v) for v in self.lists[pattern.name])
        else:
            values = [str(pattern.value)]  # type: ignore[union-attr]
        if not values:
            return pl.when(operand.is_null()).then(None).otherwise(pl.lit(False))
        regex = text_pattern(node.op, values)
        if regex is None:
            (needle,) = values
            if node.op == "contains":
                return operand.str.contains(needle, literal=True)
            if node.op == "startswith":
                return operand.str.starts_with(needle)
            return operand.str.ends_with(needle)
        return operand.str.contains(regex)

    def _isnull(self, node: IsNull) -> pl.Expr:
        operand = self.compile(node.operand)  # type: ignore[arg-type]
        return operand.is_not_null() if node.negate else operand.is_null()

    def _call(self, node: Call) -> pl.Expr:
        if node.agg_column:
            return pl.col(node.agg_column)
        name = node.name
        if name == "lookup":
            table = self.tables[node.args[0].name]  # type: ignore[attr-defined]
            key = self.compile(node.args[1])
            if not table:
                return pl.lit(None, dtype=pl.Float64)
            return key.replace_strict(dict(table), default=None, return_dtype=pl.Float64)
        args = [self.compile(a) for a in node.args]
        if name == "lower":
            return args[0].str.to_lowercase()
        if name == "upper":
            return args[0].str.to_uppercase()
        if name == "len":
            return args[0].str.len_chars().cast(pl.Float64)
        if name == "abs":
            return args[0].abs()
        if name == "days_between":
            return args[1] - args[0]
        if name == "coalesce":
            return pl.coalesce(args)
        if name == "min":
            return pl.min_horizontal(args)
        return pl.max_horizontal(args)
