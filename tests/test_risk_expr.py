"""The rule condition language: parsing, positions, type checking, and one meaning in two backends."""

from __future__ import annotations

import polars as pl
import pytest

from cv.models.risk.declaration import SCHEMA
from cv.models.risk.expr import (
    LIST_TEXT,
    Binary,
    ExprError,
    Scope,
    check,
    parse,
    tokenize,
)
from cv.models.risk.online import compile_online
from cv.models.risk.vector import compile_vector

LISTS = {
    "codes": frozenset({"P100000000001", "P100000000002"}),
    "words": frozenset({"Sibutramine", "dmaa"}),
}
TABLES = {"prices": {"851712": 350.0}}
SCOPE = Scope(
    fields=dict(SCHEMA), lists={"codes": LIST_TEXT, "words": LIST_TEXT}, tables={"prices"}
)


def compiled(text: str):
    node = parse(text)
    assert check(node, SCOPE) in ("bool", "number", "text", "date", "duration")
    return compile_online(node, lists=LISTS, tables=TABLES), compile_vector(
        node, lists=LISTS, tables=TABLES
    )


def both(text: str, rows: list[dict]) -> list:
    """The condition's value on each row, online and in batch; asserts they agree."""
    online, vector = compiled(text)
    frame = pl.DataFrame(rows, schema={k: _dtype(SCHEMA[k]) for k in rows[0]})
    full = [{**dict.fromkeys(SCHEMA), **r} for r in rows]
    a = [online(r) for r in full]
    b = frame.select(vector.alias("v")).to_series().to_list()
    assert a == b, (text, a, b)
    return a


def _dtype(t: str):
    return pl.String if t == "text" else pl.Float64


def test_tokens_carry_line_and_column():
    toks = tokenize("value >\n  150 days", line=10, column=7)
    assert [(t.text, t.line, t.column) for t in toks[:-1]] == [
        ("value", 10, 7),
        (">", 10, 13),
        ("150", 11, 3),
        ("days", 11, 7),
    ]


def test_precedence_and_or_not():
    node = parse("not a == 1 or b == 2 and c == 3")
    assert isinstance(node, Binary) and node.op == "or"
    assert isinstance(node.right, Binary) and node.right.op == "and"


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("value > ", 1, 9, "expected a value"),
        ("value >> 3", 1, 8, "expected a value"),
        ("a < b < c", 1, 7, "do not chain"),
        ("value && 3", 1, 7, "use 'and'"),
        ("'open", 1, 1, "unterminated"),
        ("x in (1, 2)", 1, 6, "expected a @list"),
        ("date '2026-02-30' > arrival_date", 1, 6, "invalid date"),
        ("(value > 1", 1, 11, "expected ')'"),
    ],
)
def test_syntax_errors_name_line_and_column(text, line, column, fragment):
    with pytest.raises(ExprError) as err:
        parse(text)
    assert (err.value.line, err.value.column) == (line, column)
    assert fragment in err.value.message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("valeu > 150", "unknown field 'valeu' (did you mean 'value'?)"),
        ("pccc in @stolen", "unknown list '@stolen'"),
        ("arrival_date - purchase_date > 30", "write a duration as '30 days'"),
        ("value == null", "write 'is null'"),
        ("description > 3", "cannot compare text with number"),
        ("value and true", "'and' joins conditions"),
        ("lower(value) == 'x'", "lower(text)"),
        ("totl_usd() > 1", "unknown function 'totl_usd'"),
        ("count_same_buyer(30) > 1", "literal like 30 days"),
        ("description matches '(?<=a)b'", "look-around"),
        ("description matches '[a-'", "invalid regular expression"),
        ("value + 1", None),
    ],
)
def test_type_errors_are_caught_at_load(text, fragment):
    node = parse(text)
    if fragment is None:  # a number is not a condition: the pack loader refuses it (tested there)
        assert check(node, SCOPE) == "number"
        return
    with pytest.raises(ExprError) as err:
        check(node, SCOPE)
    assert fragment in err.value.message


def test_three_valued_logic_is_the_same_online_and_in_batch():
    rows = [{"value": v, "quantity": q} for v in (None, 1.0, 5.0) for q in (None, 0.0, 2.0)]
    # and / or with nulls: false and null = false, true or null = true, else null.
    got = both("value > 2 and quantity > 1", rows)
    assert got == [None, False, None, False, False, False, None, False, True]
    got = both("value > 2 or quantity > 1", rows)
    assert got == [None, None, True, None, False, True, True, True, True]
    assert both("not (value > 2)", rows)[:3] == [None, None, None]
    assert both("value is null", rows)[:4] == [True, True, True, False]
    # division by zero is null, and arithmetic with null is null
    assert both("value / quantity", rows) == [None, None, None, None, None, 0.5, None, None, 2.5]
    assert both("coalesce(value, quantity, 7)", rows)[:3] == [7.0, 0.0, 2.0]
    assert both("min(value, quantity)", rows) == [None, 0.0, 2.0, 1.0, 0.0, 1.0, 5.0, 0.0, 2.0]
    assert both("max(value, quantity)", rows)[:4] == [None, 0.0, 2.0, 1.0]


def test_membership_text_tests_and_functions_agree():
    rows = [
        {"pccc": p, "description": d, "hs6": h}
        for p, d in (
            ("P100000000001", "Slimming tea with SIBUTRAMINE"),
            (None, None),
            ("X1", "cotton t-shirt"),
        )
        for h in ("851712", None)
    ]
    assert both("pccc in @codes", rows) == [True, True, None, None, False, False]
    assert both("pccc not in @codes", rows) == [False, False, None, None, True, True]
    assert both("pccc in ['X1', 'Y']", rows)[4] is True
    assert both("description icontains @words", rows) == [True, True, None, None, False, False]
    assert both("description contains 'SIBUTRAMINE'", rows)[0] is True
    assert both("description contains 'sibutramine'", rows)[0] is False
    assert both("description imatches '^slim.*tea'", rows)[0] is True
    assert both("description matches '^slim'", rows)[0] is False
    assert both("pccc startswith 'P1'", rows)[0] is True
    assert both("description endswith 'shirt'", rows)[4] is True
    assert both("len(pccc)", rows)[::2] == [13.0, None, 2.0]
    assert both("upper(description) contains 'COTTON'", rows)[4] is True
    assert both("lookup(@prices, hs6)", rows)[:2] == [350.0, None]


def test_dates_and_durations():
    rows = [
        {"arrival_date": 20517.0, "purchase_date": 20400.0},  # 117 days apart
        {"arrival_date": 20517.0, "purchase_date": None},
    ]
    assert both("arrival_date - purchase_date > 90 days", rows) == [True, None]
    assert both("days_between(purchase_date, arrival_date) <= 17 weeks", rows) == [True, None]
    assert both("arrival_date >= date '2026-03-05'", rows) == [
        True,
        True,
    ]  # 2026-03-05 is day 20517
    assert both("purchase_date + 2 weeks < arrival_date", rows) == [True, None]
    assert both("abs(purchase_date - arrival_date) == 117 days", rows) == [True, None]
