"""The rule condition language: tokenizer, parser, typed AST and type checker.

Analysts write conditions such as::

    kind == "list" and total_usd > 150 and shipped_from != "US"
    pccc is not null and not (pccc matches "^P[0-9]{12}$")
    description icontains @banned_ingredients
    arrival_date - purchase_date > 30 days
    sum_value_same_supplier_day() > 150 and count_same_buyer(30 days) >= 5

The text is tokenized and parsed here by our own recursive-descent parser into
a tree of small dataclasses, each carrying the 1-based line and column where it
starts, then type-checked against the declaration schema. User text never
reaches Python's ``eval`` or ``ast``; the two backends (:mod:`.online`,
:mod:`.vector`) compile the checked tree.

Semantics, shared by both backends:

* **Types**: ``bool``, ``number`` (64-bit float), ``text``, ``date`` and
  ``duration`` (both counted in days), lists of text or numbers, and tables
  (text key to number). A date minus a date is a duration; a date plus a
  duration is a date; ``30 days`` and ``2 weeks`` are duration literals, so
  ``arrival_date - purchase_date > 30`` is a type error that says to write
  ``30 days``.
* **Nulls** follow SQL's three-valued logic: arithmetic, comparisons,
  membership and text tests with a null operand are null; ``false and null`` is
  false, ``true or null`` is true, ``not null`` is null; ``is null`` / ``is not
  null`` are never null. A rule fires only when its condition is *true*.
  ``x == null`` is refused at load time (it would always be null): write
  ``x is null``. Division by zero is null.
* **Text tests**: ``contains``, ``startswith``, ``endswith`` are
  case-sensitive substring tests; ``icontains`` is case-insensitive;
  ``matches`` / ``imatches`` search a regular expression anywhere in the text
  (anchor with ``^`` and ``$``). The right side is a text literal or a named
  list (true when any item matches). Patterns are compiled once at load and
  must be valid for both Python's ``re`` and the Rust ``regex`` engine that
  polars uses, so look-arounds and back-references are refused.
* **Functions** come from a fixed list (:data:`FUNCTIONS`), plus the windowed
  aggregations in :data:`AGGREGATES` whose values come from the history
  (online) or group-bys over the batch.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import date

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

BOOL, NUMBER, TEXT, DATE, DURATION, NULL = "bool", "number", "text", "date", "duration", "null"
LIST_TEXT, LIST_NUMBER, TABLE = "list[text]", "list[number]", "table"
SCALAR_TYPES = (BOOL, NUMBER, TEXT, DATE, DURATION)

KEYWORDS = frozenset(
    {
        "and",
        "or",
        "not",
        "in",
        "is",
        "null",
        "true",
        "false",
        "date",
        "days",
        "day",
        "weeks",
        "week",
        "contains",
        "icontains",
        "startswith",
        "endswith",
        "matches",
        "imatches",
    }
)
TEXT_OPS = ("contains", "icontains", "startswith", "endswith", "matches", "imatches")
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")

FUNCTIONS: dict[str, str] = {
    "lower": "lower(text) -> text",
    "upper": "upper(text) -> text",
    "len": "len(text) -> number of characters",
    "abs": "abs(number or duration)",
    "min": "min(a, b, ...) -> smallest non-null argument",
    "max": "max(a, b, ...) -> largest non-null argument",
    "coalesce": "coalesce(a, b, ...) -> first non-null argument",
    "days_between": "days_between(earlier_date, later_date) -> duration",
    "lookup": "lookup(@table, key) -> number from a reference table, null if absent",
}

AGGREGATES: dict[str, str] = {
    "sum_value_same_awb": (
        "sum_value_same_awb() -> total USD of every declaration on the same AWB / B/L"
    ),
    "sum_value_same_supplier_day": (
        "sum_value_same_supplier_day() -> total USD bought from the same supplier by "
        "the same consignee on the same purchase date"
    ),
    "count_same_buyer": (
        "count_same_buyer(N days) -> declarations of the same consignee arriving in "
        "the N days up to and including this one's arrival date"
    ),
    "sum_value_same_buyer": (
        "sum_value_same_buyer(N days) -> total USD of the same consignee's declarations "
        "arriving in the N days up to and including this one's arrival date"
    ),
}


class ExprError(Exception):
    """A syntax or type error in a condition, at a 1-based line and column.

    Args:
        message: What is wrong.
        line: Line of the offending token.
        column: Column of the offending token.
    """

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token: ``kind`` is num, str, ident, kw, op, ref or eof."""

    kind: str
    text: str
    value: object
    line: int
    column: int


_OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "(", ")", "[", "]", ",")
_NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def tokenize(text: str, *, line: int = 1, column: int = 1) -> list[Token]:
    """Splits ``text`` into tokens.

    Args:
        text: The condition.
        line: File line of the first character of ``text``.
        column: File column of the first character of ``text``; later lines of a
            multi-line condition count columns from 1, since the text given
            includes their indentation.

    Raises:
        ExprError: On a character or string literal that cannot be read.
    """
    tokens: list[Token] = []
    i, n = 0, len(text)
    ln, col = line, column
    while i < n:
        ch = text[i]
        if ch == "\n":
            i += 1
            ln, col = ln + 1, 1
            continue
        if ch in " \t\r":
            i += 1
            col += 1
            continue
        start_ln, start_col = ln, col
        if ch.isdigit():
            m = _NUMBER_RE.match(text, i)
            assert m is not None
            lexeme = m.group()
            tokens.append(Token("num", lexeme, float(lexeme), start_ln, start_col))
        elif ch.isalpha() or ch == "_":
            m = _IDENT_RE.match(text, i)
            assert m is not None
            lexeme = m.group()
            kind = "kw" if lexeme in KEYWORDS else "ident"
            tokens.append(Token(kind, lexeme, lexeme, start_ln, start_col))
        elif ch == "@":
            m = _IDENT_RE.match(text, i + 1)
            if m is None:
                raise ExprError("expected a list name after '@'", start_ln, start_col)
            lexeme = "@" + m.group()
            tokens.append(Token("ref", lexeme, m.group(), start_ln, start_col))
        elif ch in "\"'":
            j, chars = i + 1, []
            while True:
                if j >= n or text[j] == "\n":
                    raise ExprError("unterminated string literal", start_ln, start_col)
                c = text[j]
                if c == "\\" and j + 1 < n and text[j + 1] in (ch, "\\"):
                    chars.append(text[j + 1])
                    j += 2
                    continue
                if c == ch:
                    break
                chars.append(c)
                j += 1
            lexeme = text[i : j + 1]
            tokens.append(Token("str", lexeme, "".join(chars), start_ln, start_col))
        else:
            op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
            if op is None:
                hint = " (use 'and', 'or', 'not')" if ch in "&|!" else ""
                raise ExprError(f"unexpected character {ch!r}{hint}", start_ln, start_col)
            lexeme = op
            tokens.append(Token("op", op, op, start_ln, start_col))
        i += len(lexeme)
        col += len(lexeme)
    tokens.append(Token("eof", "", None, ln, col))
    return tokens


# --------------------------------------------------------------------------- AST


@dataclass(slots=True, eq=False)
class Node:
    """Base of every tree node; ``type`` is set by :func:`check`."""

    line: int
    column: int
    type: str = field(default="", init=False)


@dataclass(slots=True, eq=False)
class Literal(Node):
    """A constant: number, text, bool, null, date (epoch days) or duration (days)."""

    value: object = None
    kind: str = NULL


@dataclass(slots=True, eq=False)
class Field(Node):
    """A declaration field (or derived field) by name."""

    name: str = ""


@dataclass(slots=True, eq=False)
class ListRef(Node):
    """A named reference list or table of the pack: ``@stolen_codes``."""

    name: str = ""


@dataclass(slots=True, eq=False)
class ListLit(Node):
    """A literal list: ``["CN", "HK"]``."""

    items: list[Literal] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Unary(Node):
    """``not x`` or ``-x``."""

    op: str = ""
    operand: Node | None = None


@dataclass(slots=True, eq=False)
class Binary(Node):
    """Arithmetic, comparison, ``and`` or ``or``."""

    op: str = ""
    left: Node | None = None
    right: Node | None = None


@dataclass(slots=True, eq=False)
class In(Node):
    """``x in list`` or ``x not in list``."""

    operand: Node | None = None
    items: Node | None = None
    negate: bool = False


@dataclass(slots=True, eq=False)
class TextOp(Node):
    """``x contains|icontains|startswith|endswith|matches|imatches pattern``."""

    op: str = ""
    operand: Node | None = None
    pattern: Node | None = None


@dataclass(slots=True, eq=False)
class IsNull(Node):
    """``x is null`` or ``x is not null``."""

    operand: Node | None = None
    negate: bool = False


@dataclass(slots=True, eq=False)
class Call(Node):
    """A whitelisted function or an aggregation; ``agg_column`` names an aggregation's value."""

    name: str = ""
    args: list[Node] = field(default_factory=list)
    agg_column: str = ""


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def at(self, kind: str, *texts: str) -> bool:
        tok = self.peek()
        return tok.kind == kind and (not texts or tok.text in texts)

    def expect(self, kind: str, text: str, what: str) -> Token:
        if not self.at(kind, text):
            tok = self.peek()
            found = "end of condition" if tok.kind == "eof" else repr(tok.text)
            raise ExprError(f"expected {what}, found {found}", tok.line, tok.column)
        return self.next()

    def parse(self) -> Node:
        node = self.or_()
        tok = self.peek()
        if tok.kind != "eof":
            raise ExprError(
                f"unexpected {tok.text!r} after a complete condition", tok.line, tok.column
            )
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.at("kw", "or"):
            tok = self.next()
            node = Binary(tok.line, tok.column, op="or", left=node, right=self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.at("kw", "and"):
            tok = self.next()
            node = Binary(tok.line, tok.column, op="and", left=node, right=self.not_())
        return node

    def not_(self) -> Node:
        if self.at("kw", "not"):
            tok = self.next()
            return Unary(tok.line, tok.column, op="not", operand=self.not_())
        return self.predicate()

    def predicate(self) -> Node:
        left = self.additive()
        tok = self.peek()
        if tok.kind == "op" and tok.text in COMPARISONS:
            self.next()
            right = self.additive()
            nxt = self.peek()
            if nxt.kind == "op" and nxt.text in COMPARISONS:
                raise ExprError(
                    "comparisons do not chain: write 'a < b and b < c'", nxt.line, nxt.column
                )
            return Binary(tok.line, tok.column, op=tok.text, left=left, right=right)
        if tok.kind == "kw" and tok.text == "in":
            self.next()
            return In(tok.line, tok.column, operand=left, items=self.list_operand())
        if tok.kind == "kw" and tok.text == "not" and self.peek(1).text == "in":
            self.next()
            self.next()
            return In(tok.line, tok.column, operand=left, items=self.list_operand(), negate=True)
        if tok.kind == "kw" and tok.text == "is":
            self.next()
            negate = False
            if self.at("kw", "not"):
                self.next()
                negate = True
            self.expect("kw", "null", "'null' after 'is'")
            return IsNull(tok.line, tok.column, operand=left, negate=negate)
        if tok.kind == "kw" and tok.text in TEXT_OPS:
            self.next()
            pat = self.peek()
            if pat.kind == "str":
                self.next()
                pattern: Node = Literal(pat.line, pat.column, value=pat.value, kind=TEXT)
            elif pat.kind == "ref":
                self.next()
                pattern = ListRef(pat.line, pat.column, name=str(pat.value))
            else:
                raise ExprError(
                    f"'{tok.text}' needs a text literal or a @list on its right",
                    pat.line,
                    pat.column,
                )
            return TextOp(tok.line, tok.column, op=tok.text, operand=left, pattern=pattern)
        return left

    def list_operand(self) -> Node:
        tok = self.peek()
        if tok.kind == "ref":
            self.next()
            return ListRef(tok.line, tok.column, name=str(tok.value))
        if tok.kind == "op" and tok.text == "[":
            self.next()
            items: list[Literal] = []
            while not self.at("op", "]"):
                item = self.unary()
                if not isinstance(item, Literal) or item.kind not in (NUMBER, TEXT):
                    raise ExprError(
                        "list items must be text or number literals", item.line, item.column
                    )
                items.append(item)
                if not self.at("op", "]"):
                    self.expect("op", ",", "',' or ']'")
            self.next()
            return ListLit(tok.line, tok.column, items=items)
        raise ExprError("expected a @list or [literal, ...] after 'in'", tok.line, tok.column)

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.at("op", "+", "-"):
            tok = self.next()
            node = Binary(tok.line, tok.column, op=tok.text, left=node, right=self.multiplicative())
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while self.at("op", "*", "/"):
            tok = self.next()
            node = Binary(tok.line, tok.column, op=tok.text, left=node, right=self.unary())
        return node

    def unary(self) -> Node:
        if self.at("op", "-"):
            tok = self.next()
            operand = self.unary()
            if isinstance(operand, Literal) and operand.kind in (NUMBER, DURATION):
                # Fold negative constants so `[-1, 2]` stays a literal list.
                return Literal(tok.line, tok.column, value=-operand.value, kind=operand.kind)  # type: ignore[operator]
            return Unary(tok.line, tok.column, op="-", operand=operand)
        return self.primary()

    def primary(self) -> Node:
        tok = self.next()
        if tok.kind == "num":
            if self.at("kw", "days", "day", "weeks", "week"):
                unit = self.next().text
                days = float(tok.value) * (7.0 if unit.startswith("week") else 1.0)  # type: ignore[arg-type]
                return Literal(tok.line, tok.column, value=days, kind=DURATION)
            return Literal(tok.line, tok.column, value=tok.value, kind=NUMBER)
        if tok.kind == "str":
            return Literal(tok.line, tok.column, value=tok.value, kind=TEXT)
        if tok.kind == "kw" and tok.text in ("true", "false"):
            return Literal(tok.line, tok.column, value=tok.text == "true", kind=BOOL)
        if tok.kind == "kw" and tok.text == "null":
            return Literal(tok.line, tok.column, value=None, kind=NULL)
        if tok.kind == "kw" and tok.text == "date":
            lit = self.peek()
            if lit.kind != "str":
                raise ExprError(
                    "expected a date like date '2026-02-02' after 'date'", lit.line, lit.column
                )
            self.next()
            return Literal(tok.line, tok.column, value=parse_date_literal(lit), kind=DATE)
        if tok.kind == "ident":
            if self.at("op", "("):
                self.next()
                args: list[Node] = []
                while not self.at("op", ")"):
                    args.append(self.or_())
                    if not self.at("op", ")"):
                        self.expect("op", ",", "',' or ')'")
                self.next()
                return Call(tok.line, tok.column, name=tok.text, args=args)
            return Field(tok.line, tok.column, name=tok.text)
        if tok.kind == "ref":
            return ListRef(tok.line, tok.column, name=str(tok.value))
        if tok.kind == "op" and tok.text == "(":
            node = self.or_()
            self.expect("op", ")", "')'")
            return node
        if tok.kind == "op" and tok.text == "[":
            self.i -= 1
            return self.list_operand()
        found = "end of condition" if tok.kind == "eof" else repr(tok.text)
        raise ExprError(f"expected a value, found {found}", tok.line, tok.column)


def parse_date_literal(tok: Token) -> float:
    """Epoch days of a ``YYYY-MM-DD`` string token.

    Raises:
        ExprError: If the text is not a valid ISO date.
    """
    text = str(tok.value)
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        raise ExprError(f"dates are written YYYY-MM-DD, got {text!r}", tok.line, tok.column)
    try:
        return float(date.fromisoformat(text).toordinal() - EPOCH_ORDINAL)
    except ValueError as exc:
        raise ExprError(f"invalid date {text!r}: {exc}", tok.line, tok.column) from None


def parse(text: str, *, line: int = 1, column: int = 1) -> Node:
    """Parses a condition into an unchecked tree.

    Raises:
        ExprError: On a syntax error, with its line and column.
    """
    return _Parser(tokenize(text, line=line, column=column)).parse()


# --------------------------------------------------------------------------- type checker


def suggest(name: str, candidates: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` for the nearest candidate, or an empty string."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_regex(pattern: str, *, line: int, column: int) -> None:
    """Refuses a pattern that either regex engine cannot compile.

    Python's ``re`` checks the syntax; constructs the Rust engine lacks
    (look-arounds, back-references, possessive quantifiers) are refused so that
    both backends mean the same thing. polars is asked too, when importable.
    """
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ExprError(f"invalid regular expression {pattern!r}: {exc}", line, column) from None
    if re.search(r"\(\?<?[=!]|\\[1-9]|\(\?P=|[*+?}]\+|\\Z", pattern):
        raise ExprError(
            f"regular expression {pattern!r} uses a look-around, back-reference, possessive "
            "quantifier or \\Z, which the batch engine does not support",
            line,
            column,
        )
    try:
        import polars as pl
    except ImportError:  # the online engine alone does not need polars
        return
    try:
        pl.Series([""], dtype=pl.String).str.contains(pattern)
    except Exception as exc:
        raise ExprError(
            f"regular expression {pattern!r} is not valid for the batch engine: {exc}",
            line,
            column,
        ) from None


@dataclass(slots=True)
class Scope:
    """What names a condition may use.

    Attributes:
        fields: Field name to scalar type.
        lists: Reference list name to ``list[text]`` / ``list[number]``.
        tables: Reference table name (text key to number).
    """

    fields: dict[str, str]
    lists: dict[str, str]
    tables: set[str]


def aggregate_column(name: str, args: list[Node]) -> str:
    """Column name under which an aggregation's value is computed."""
    if args:
        days = args[0].value  # type: ignore[attr-defined]
        return f"__agg_{name}_{int(days)}d"
    return f"__agg_{name}"


def check(node: Node, scope: Scope) -> str:
    """Type-checks ``node`` in place (setting ``type`` on every node) and returns its type.

    Raises:
        ExprError: On an unknown name or a type mismatch, at the node's position.
    """
    t = _check(node, scope)
    node.type = t
    return t


def _fail(node: Node, message: str) -> ExprError:
    return ExprError(message, node.line, node.column)


def _same(a: str, b: str) -> bool:
    return a == b or NULL in (a, b)


def _check(node: Node, scope: Scope) -> str:
    if isinstance(node, Literal):
        return node.kind
    if isinstance(node, Field):
        if node.name in scope.fields:
            return scope.fields[node.name]
        if node.name in AGGREGATES or node.name in FUNCTIONS:
            raise _fail(node, f"'{node.name}' is a function: write {node.name}(...)")
        raise _fail(node, f"unknown field '{node.name}'{suggest(node.name, tuple(scope.fields))}")
    if isinstance(node, ListRef):
        if node.name in scope.lists:
            return scope.lists[node.name]
        if node.name in scope.tables:
            return TABLE
        known = tuple(scope.lists) + tuple(scope.tables)
        raise _fail(node, f"unknown list '@{node.name}'{suggest(node.name, known)}")
    if isinstance(node, ListLit):
        kinds = {item.kind for item in node.items}
        if len(kinds) > 1:
            raise _fail(node, "a literal list mixes text and numbers")
        for item in node.items:
            item.type = item.kind
        return LIST_NUMBER if kinds == {NUMBER} else LIST_TEXT
    if isinstance(node, Unary):
        t = check(node.operand, scope)  # type: ignore[arg-type]
        if node.op == "not":
            if not _same(t, BOOL):
                raise _fail(node, f"'not' needs a condition, got {t}")
            return BOOL
        if t not in (NUMBER, DURATION, NULL):
            raise _fail(node, f"'-' needs a number or duration, got {t}")
        return t
    if isinstance(node, Binary):
        return _check_binary(node, scope)
    if isinstance(node, In):
        t = check(node.operand, scope)  # type: ignore[arg-type]
        lt = check(node.items, scope)  # type: ignore[arg-type]
        if lt not in (LIST_TEXT, LIST_NUMBER):
            raise _fail(node.items, f"'in' needs a list, got {lt}")  # type: ignore[arg-type]
        want = TEXT if lt == LIST_TEXT else NUMBER
        if isinstance(node.items, ListLit) and not node.items.items:
            want = t
        if not _same(t, want):
            raise _fail(node, f"cannot look up a {t} in a {lt}")
        return BOOL
    if isinstance(node, TextOp):
        t = check(node.operand, scope)  # type: ignore[arg-type]
        if not _same(t, TEXT):
            raise _fail(node, f"'{node.op}' needs text on its left, got {t}")
        pt = check(node.pattern, scope)  # type: ignore[arg-type]
        if pt not in (TEXT, LIST_TEXT):
            raise _fail(node.pattern, f"'{node.op}' needs text or a list of text, got {pt}")  # type: ignore[arg-type]
        if node.op in ("matches", "imatches") and isinstance(node.pattern, Literal):
            check_regex(str(node.pattern.value), line=node.pattern.line, column=node.pattern.column)
        return BOOL
    if isinstance(node, IsNull):
        check(node.operand, scope)  # type: ignore[arg-type]
        return BOOL
    if isinstance(node, Call):
        return _check_call(node, scope)
    raise _fail(node, f"unsupported expression {type(node).__name__}")


def _check_binary(node: Binary, scope: Scope) -> str:
    lt = check(node.left, scope)  # type: ignore[arg-type]
    rt = check(node.right, scope)  # type: ignore[arg-type]
    op = node.op
    if op in ("and", "or"):
        for side, t in ((node.left, lt), (node.right, rt)):
            if not _same(t, BOOL):
                raise _fail(side, f"'{op}' joins conditions, got {t}")  # type: ignore[arg-type]
        return BOOL
    if op in COMPARISONS:
        if NULL in (lt, rt):
            raise _fail(
                node,
                f"comparing with null is always null: write 'is null' or 'is not null' instead of '{op} null'",
            )
        if lt != rt:
            hint = ""
            if {lt, rt} == {DURATION, NUMBER}:
                hint = " (write a duration as '30 days')"
            raise _fail(node, f"cannot compare {lt} with {rt}{hint}")
        if lt == BOOL and op not in ("==", "!="):
            raise _fail(node, f"cannot order conditions with '{op}'")
        if lt not in SCALAR_TYPES:
            raise _fail(node, f"cannot compare {lt} values")
        return BOOL
    table = {
        "+": {
            (NUMBER, NUMBER): NUMBER,
            (DATE, DURATION): DATE,
            (DURATION, DATE): DATE,
            (DURATION, DURATION): DURATION,
        },
        "-": {
            (NUMBER, NUMBER): NUMBER,
            (DATE, DATE): DURATION,
            (DATE, DURATION): DATE,
            (DURATION, DURATION): DURATION,
        },
        "*": {(NUMBER, NUMBER): NUMBER, (DURATION, NUMBER): DURATION, (NUMBER, DURATION): DURATION},
        "/": {(NUMBER, NUMBER): NUMBER, (DURATION, NUMBER): DURATION},
    }[op]
    if lt == NULL or rt == NULL:
        other = rt if lt == NULL else lt
        if other not in (NUMBER, DATE, DURATION, NULL):
            raise _fail(node, f"'{op}' needs numbers, dates or durations, got {other}")
        return other if other != NULL else NUMBER
    result = table.get((lt, rt))
    if result is None:
        hint = " (write a duration as '30 days')" if {lt, rt} == {DATE, NUMBER} else ""
        raise _fail(node, f"cannot apply '{op}' to {lt} and {rt}{hint}")
    return result


def _check_call(node: Call, scope: Scope) -> str:
    name, args = node.name, node.args
    if name in AGGREGATES:
        windowed = name in ("count_same_buyer", "sum_value_same_buyer")
        if windowed:
            if len(args) != 1 or not (isinstance(args[0], Literal) and args[0].kind == DURATION):
                raise _fail(node, f"{AGGREGATES[name]}: give the window as a literal like 30 days")
            days = float(args[0].value)  # type: ignore[arg-type]
            if days < 1 or days > 3650 or days != int(days):
                raise _fail(args[0], "the window must be a whole number of days, 1 to 3650")
            args[0].type = DURATION
        elif args:
            raise _fail(node, f"{name}() takes no arguments")
        node.agg_column = aggregate_column(name, args)
        return NUMBER
    if name not in FUNCTIONS:
        known = tuple(FUNCTIONS) + tuple(AGGREGATES)
        raise _fail(node, f"unknown function '{name}'{suggest(name, known)}")
    if name == "lookup":
        if len(args) != 2 or not isinstance(args[0], ListRef):
            raise _fail(node, "lookup(@table, key) takes a reference table and a text key")
        if args[0].name not in scope.tables:
            raise _fail(
                args[0],
                f"unknown table '@{args[0].name}'{suggest(args[0].name, tuple(scope.tables))}",
            )
        args[0].type = TABLE
        kt = check(args[1], scope)
        if not _same(kt, TEXT):
            raise _fail(args[1], f"a table key is text, got {kt}")
        return NUMBER
    types = [check(a, scope) for a in args]
    if name in ("lower", "upper", "len"):
        if len(args) != 1 or not _same(types[0], TEXT):
            raise _fail(node, f"{FUNCTIONS[name]}")
        return NUMBER if name == "len" else TEXT
    if name == "abs":
        if len(args) != 1 or types[0] not in (NUMBER, DURATION, NULL):
            raise _fail(node, FUNCTIONS[name])
        return NUMBER if types[0] == NULL else types[0]
    if name == "days_between":
        if len(args) != 2 or not all(_same(t, DATE) for t in types):
            raise _fail(node, FUNCTIONS[name])
        return DURATION
    # min, max, coalesce: two or more arguments of one type
    if len(args) < 2:
        raise _fail(node, f"{FUNCTIONS[name]}: needs at least two arguments")
    concrete = {t for t in types if t != NULL}
    if len(concrete) > 1:
        raise _fail(node, f"{name}() arguments mix {' and '.join(sorted(concrete))}")
    t = concrete.pop() if concrete else NUMBER
    if name in ("min", "max") and t not in (NUMBER, DATE, DURATION, TEXT):
        raise _fail(node, f"{name}() needs numbers, dates, durations or text, got {t}")
    if t not in SCALAR_TYPES:
        raise _fail(node, f"{name}() cannot take {t}")
    return t


def walk(node: Node):
    """Yields ``node`` and every node below it, parents first."""
    yield node
    for child in children(node):
        yield from walk(child)


def children(node: Node) -> list[Node]:
    """The direct children of ``node``."""
    if isinstance(node, Unary):
        return [node.operand]  # type: ignore[list-item]
    if isinstance(node, Binary):
        return [node.left, node.right]  # type: ignore[list-item]
    if isinstance(node, In):
        return [node.operand, node.items]  # type: ignore[list-item]
    if isinstance(node, TextOp):
        return [node.operand, node.pattern]  # type: ignore[list-item]
    if isinstance(node, IsNull):
        return [node.operand]  # type: ignore[list-item]
    if isinstance(node, Call):
        return list(node.args)
    if isinstance(node, ListLit):
        return list(node.items)
    return []


def escape_regex(text: str) -> str:
    """Escapes the characters special to both regex engines, and only those."""
    return re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", text)


def text_pattern(op: str, values: list[str]) -> str | None:
    """The one regex a text test compiles to, or ``None`` for a plain substring test.

    Both backends call this, so they search for the same thing. A single
    ``contains``, ``startswith`` or ``endswith`` value stays a plain string test.
    """
    if not values:
        raise ValueError("an empty list has no pattern; callers treat it as never matching")
    if len(values) == 1 and op in ("contains", "startswith", "endswith"):
        return None
    if op in ("matches", "imatches"):
        body = "|".join(f"(?:{v})" for v in values) if len(values) > 1 else values[0]
    else:
        body = "|".join(escape_regex(v) for v in values)
        if op == "startswith":
            body = f"^(?:{body})"
        elif op == "endswith":
            # `$` in Python also matches before a final newline; text fields have
            # their surrounding whitespace stripped, so no final newline remains.
            body = f"(?:{body})$"
    if op in ("icontains", "imatches"):
        body = "(?i)" + body
    return body
