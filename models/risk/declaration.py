"""The declaration schema, validation and currency conversion, for one record and for a batch.

One field table (:data:`FIELDS`) covers express and e-commerce list clearances,
general imports and travellers' declarations. :func:`normalize` checks one
record (a mapping, as the server will receive it) and :func:`normalize_frame`
checks a whole polars frame; both produce the same values for the same input:

* text is stripped of surrounding white space (Unicode White_Space); empty text is null;
* codes read case-insensitively (currency, countries, route, PCCC) are held upper-case,
  and phone numbers as their digits only (``010-1234-5678`` is ``01012345678``), a
  Korean number in international form as dialled at home (``+82 10-1234-5678`` and
  ``0082 10 1234 5678`` are ``01012345678`` too);
* codes whose leading zeros matter (:data:`TEXT_ONLY`: HS code, postal codes, phones,
  AWB, bag tag) must be text: a number (``901`` for ``0901``) is an error, not a guess;
* ids, AWBs, bag tags, suppliers, consignee names and PCCCs are at most
  :data:`MAX_LENGTH` characters (the width of the history's SQL columns);
* numbers are finite, non-negative and at most 1e12; text that looks like a
  number (``"12.50"``) is read as one, anything else is an error;
* dates are ``YYYY-MM-DD`` between 1900 and 2100 and are held as days since
  1970-01-01 (a float, so date arithmetic is plain arithmetic in both backends);
* money is converted to USD through the pack's rate table (USD per unit of the
  currency); an unknown currency is an error for that declaration;
* derived fields (:data:`DERIVED`) are computed the same way in both: the
  customs value ``total_usd`` (goods + foreign shipping + foreign sales tax,
  rounded half up to the cent), ``unit_value_usd``, HS prefixes and the
  consignee key used by the anti-splitting aggregations.

A record with errors is not scored: online the caller gets a
:class:`DeclarationError` listing every problem; in a batch each problem
becomes a row of the errors table (row number, declaration id, field, value,
message) and the other declarations are scored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from cv.errors import DataValidationError

from .expr import DATE, EPOCH_ORDINAL, NUMBER, TEXT, suggest

if TYPE_CHECKING:
    import polars as pl

KINDS = ("express", "list", "general", "traveller")
"""``express``: express cargo with a simplified declaration; ``list``: e-commerce
list clearance for personal use; ``general``: a general import declaration;
``traveller``: a traveller's customs declaration."""

MAX_NUMBER = 1e12
MIN_YEAR, MAX_YEAR = 1900, 2100
STRIP = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
"""Unicode White_Space: what polars' default strip removes (Python's own default adds \x1c-\x1f)."""
_NUMBER_RE = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_DATE_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_HS_RE = r"[0-9]{2,10}"
_CHECKED_TEXT = frozenset({"id", "kind", "currency", "hs_code"})
"""Text fields that validation reads: their empty values become null before the checks run."""
_CHECKED_TYPED = frozenset({"hs_code"})
"""Fields whose check reads the field's typed value (its column after the values are computed)."""
_UPPER = frozenset({"currency", "origin", "shipped_from", "route", "pccc"})
"""Codes read case-insensitively, held upper-case (``us`` is ``US``; ``p1234...`` is ``P1234...``)."""
_DIGITS = frozenset({"consignee_phone", "pccc_owner_phone"})
"""Phones, held as their digits only, so ``010-1234-5678`` and ``01012345678`` are one number,
and Korean numbers as dialled at home (:func:`_phone`)."""
_DIGITS_RE = r"[^0-9]"
_KR_PREFIX_RE = r"^00820?"
"""Korea's country code after the international prefix (``+`` read as ``00``), with the trunk
``0`` some write after it (``+82 (0)10...``): the number at home is ``0`` and the rest."""
TEXT_ONLY = frozenset(
    {
        "hs_code",
        "consignee_postal",
        "pccc_owner_postal",
        "consignee_phone",
        "pccc_owner_phone",
        "awb",
        "bag_tag",
    }
)
"""Codes a number may not stand for: it has lost its leading zeros (HS 0901, postal 04524,
bag tag 0180...)."""
NOT_TEXT = "must be text (a quoted string), not a number: a number loses leading zeros"
_NUMBER = re.compile(_NUMBER_RE)
_DATE = re.compile(_DATE_RE)
_HS = re.compile(_HS_RE)
_NON_DIGIT = re.compile(_DIGITS_RE)
_KR_PREFIX = re.compile(_KR_PREFIX_RE)

ID_LENGTH = 64
"""Longest declaration id, AWB or bag tag, in characters: the history's SQL key columns."""
NAME_LENGTH = 200
"""Longest supplier, consignee name or PCCC, in characters: the history's aggregation keys."""
MAX_LENGTH: dict[str, int] = {
    "id": ID_LENGTH,
    "awb": ID_LENGTH,
    "bag_tag": ID_LENGTH,
    "supplier": NAME_LENGTH,
    "consignee_name": NAME_LENGTH,
    "pccc": NAME_LENGTH,  # the consignee key is the PCCC, else the name
}
"""Longest value of a text field (after normalisation), in characters; longer is a field error
rather than a database error when the history stores it."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One declaration field.

    Attributes:
        name: The key in a record, the column in a file, the name in a condition.
        type: ``text``, ``number`` or ``date``.
        description: What it holds.
        money: Whether it is an amount in the declaration's currency.
    """

    name: str
    type: str
    description: str
    money: bool = False


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("id", TEXT, "Declaration id, unique; required."),
    FieldSpec("kind", TEXT, f"One of {', '.join(KINDS)}; required."),
    FieldSpec("awb", TEXT, "Air waybill or bill of lading number (master or house)."),
    FieldSpec("bag_tag", TEXT, "Checked-baggage tag number (travellers)."),
    FieldSpec("flight", TEXT, "Flight or voyage number."),
    FieldSpec("consignee_name", TEXT, "Name of the consignee or traveller."),
    FieldSpec("consignee_phone", TEXT, "Phone number of the consignee."),
    FieldSpec("consignee_postal", TEXT, "Delivery postal code."),
    FieldSpec("pccc", TEXT, "Personal customs clearance code (P + 12 digits)."),
    FieldSpec("pccc_owner_name", TEXT, "Registered owner's name of the PCCC (from the registry)."),
    FieldSpec("pccc_owner_phone", TEXT, "Registered owner's phone of the PCCC."),
    FieldSpec("pccc_owner_postal", TEXT, "Registered owner's postal code of the PCCC."),
    FieldSpec("pccc_valid_to", DATE, "Last day the PCCC is valid (from the registry)."),
    FieldSpec("supplier", TEXT, "Overseas supplier or seller."),
    FieldSpec("platform", TEXT, "E-commerce platform the goods were bought on."),
    FieldSpec("origin", TEXT, "Country of origin, ISO 3166 alpha-2."),
    FieldSpec("shipped_from", TEXT, "Country the goods were shipped from, alpha-2."),
    FieldSpec("route", TEXT, "Countries on the way, alpha-2 separated by '-' (CN-HK-KR)."),
    FieldSpec("hs_code", TEXT, "Commodity code, 2 to 10 digits (dots allowed)."),
    FieldSpec("description", TEXT, "Description of the goods as declared."),
    FieldSpec("quantity", NUMBER, "Number of units."),
    FieldSpec("unit", TEXT, "Unit of quantity (pcs, bottles, kg...)."),
    FieldSpec("value", NUMBER, "Price of the goods, in `currency`.", money=True),
    FieldSpec("currency", TEXT, "ISO 4217 code of every amount on the declaration."),
    FieldSpec("shipping", NUMBER, "Foreign shipping cost, in `currency`.", money=True),
    FieldSpec("sales_tax", NUMBER, "Foreign sales tax, in `currency`.", money=True),
    FieldSpec("purchase_date", DATE, "Date the goods were bought."),
    FieldSpec("arrival_date", DATE, "Date the goods or the traveller arrived."),
    FieldSpec("traveller_age", NUMBER, "Traveller's age in years."),
    FieldSpec("alcohol_litres", NUMBER, "Alcoholic drinks carried, litres."),
    FieldSpec("alcohol_value", NUMBER, "Value of the alcoholic drinks, in `currency`.", money=True),
    FieldSpec("perfume_ml", NUMBER, "Perfume carried, millilitres."),
    FieldSpec("cigarettes", NUMBER, "Cigarettes carried, sticks."),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
FIELD_TYPES: dict[str, str] = {f.name: f.type for f in FIELDS}

DERIVED: dict[str, tuple[str, str]] = {
    "value_usd": (NUMBER, "value in USD"),
    "shipping_usd": (NUMBER, "shipping in USD"),
    "total_usd": (NUMBER, "customs value in USD: goods + shipping + sales tax, to the cent"),
    "unit_value_usd": (NUMBER, "value_usd / quantity (null when quantity is 0 or null)"),
    "alcohol_value_usd": (NUMBER, "alcohol_value in USD"),
    "hs6": (TEXT, "first 6 digits of the HS code (null if shorter)"),
    "hs4": (TEXT, "first 4 digits of the HS code"),
    "hs2": (TEXT, "HS chapter: first 2 digits"),
    "consignee_key": (TEXT, "pccc, or the consignee name when there is no PCCC"),
}
"""Fields computed from the declared ones, usable in conditions."""

SCHEMA: dict[str, str] = {**FIELD_TYPES, **{k: v[0] for k, v in DERIVED.items()}}
"""Every name a condition may use, with its type."""

CENTS = "__cents"
"""Internal column: total_usd in integer cents, summed exactly by the aggregations."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one declaration.

    Attributes:
        row: 1-based row in the batch file (0 for a problem with the whole file).
        id: Declaration id, when readable.
        field: Field at fault.
        value: The offending value as text (may be empty).
        message: What is wrong.
    """

    row: int
    id: str | None
    field: str
    value: str
    message: str


class DeclarationError(DataValidationError):
    """A declaration failed validation; ``problems`` lists every fault found."""

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0]
        extra = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        who = f"declaration {first.id}: " if first.id else ""
        super().__init__(f"{who}{first.message}{extra}", field=first.field)
        self.problems = problems


def epoch_days(day: date) -> float:
    """Days since 1970-01-01 of ``day``, as the engine holds dates."""
    return float(day.toordinal() - EPOCH_ORDINAL)


def to_date(days: float | None) -> date | None:
    """The calendar date of ``days`` since 1970-01-01."""
    return None if days is None else date.fromordinal(int(days) + EPOCH_ORDINAL)


# --------------------------------------------------------------------------- one record


def type_problem(name: str, raw: Any) -> str | None:
    """Why field ``name`` refuses a value of ``raw``'s type, as :func:`normalize` says it;
    None when the type is accepted: text and null always, a number where a number may
    stand (a number field, or text that is not :data:`TEXT_ONLY`, as an integer: an id),
    a ``date`` for a date. The JSON-lines reader asks the same of every value."""
    if raw is None or isinstance(raw, str):
        return None
    kind = FIELD_TYPES[name]
    if kind == TEXT:
        if name in TEXT_ONLY:
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                return NOT_TEXT
            return f"must be text (a quoted string), not {_json_kind(raw)}"
        if isinstance(raw, bool) or not isinstance(raw, int):
            return f"expected text, got {type(raw).__name__}"
        return None
    if kind == NUMBER:
        if isinstance(raw, bool):
            return "expected a number, got true/false"
        if isinstance(raw, int | float):
            return None
        return f"expected a number, got {type(raw).__name__}"
    return None if isinstance(raw, date) else f"expected a date, got {type(raw).__name__}"


def _json_kind(raw: Any) -> str:
    if isinstance(raw, bool):
        return "true/false"
    if isinstance(raw, list | tuple):
        return "an array"
    if isinstance(raw, Mapping):
        return "an object"
    return type(raw).__name__


def _text(name: str, raw: Any) -> tuple[str | None, str | None]:
    if raw is None:
        return None, None
    if (problem := type_problem(name, raw)) is not None:
        return None, problem
    text = str(raw).strip(STRIP)
    if name in _UPPER:
        text = text.upper()
    elif name in _DIGITS:
        text = _phone(text)
    return (text or None), None


def _phone(text: str) -> str:
    """A phone's digits; a Korean number in international form (``+82``, ``0082``) as dialled
    at home. The same steps as :func:`_phone_expr`, which sees the text without its dashes."""
    digits = _NON_DIGIT.sub("", text)
    dialled = "00" + digits if text.replace("-", "").startswith("+") else digits
    return _KR_PREFIX.sub("0", dialled) if dialled.startswith("0082") else digits


def _number(name: str, raw: Any) -> tuple[float | None, str | None]:
    if raw is None:
        return None, None
    if (problem := type_problem(name, raw)) is not None:
        return None, problem
    if isinstance(raw, str):
        text = raw.strip(STRIP)
        if not text:
            return None, None
        if not _NUMBER.fullmatch(text):
            return None, f"not a number: {raw!r}"
        value = float(text)
    else:
        value = float(raw)
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        return None, f"out of range (at most {MAX_NUMBER:g}): {raw!r}"
    if value < 0:
        return None, f"negative value: {raw!r}"
    return value + 0.0, None  # + 0.0 turns -0.0 into 0.0, as polars' comparisons see it


def _date(name: str, raw: Any) -> tuple[float | None, str | None]:
    if raw is None:
        return None, None
    if (problem := type_problem(name, raw)) is not None:
        return None, problem
    if isinstance(raw, date):
        day = raw if type(raw) is date else raw.date()  # type: ignore[attr-defined]
    else:
        text = raw.strip(STRIP)
        if not text:
            return None, None
        if not _DATE.fullmatch(text):
            return None, f"malformed date {raw!r}: write YYYY-MM-DD"
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return None, f"malformed date {raw!r}: no such day"
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        return None, f"date out of range ({MIN_YEAR}-{MAX_YEAR}): {raw!r}"
    return epoch_days(day), None


_READERS = {TEXT: _text, NUMBER: _number, DATE: _date}


def normalize(
    record: Mapping[str, Any], *, rates: Mapping[str, float], row: int = 0
) -> dict[str, Any]:
    """Validates one declaration and returns its values as the engine holds them.

    Args:
        record: Field name to value (text, number, ``date`` or None); missing
            keys are null.
        rates: USD per unit of each known currency (from the pack).
        row: Row number reported with problems (0 online).

    Returns:
        Every field of :data:`SCHEMA` plus the internal cents column.

    Raises:
        DeclarationError: Listing every problem (unknown or mistyped field,
            unknown currency, negative value, malformed date, ...).
    """
    raw_id = record.get("id")
    ident = str(raw_id).strip(STRIP) if isinstance(raw_id, str | int) else None
    problems: list[Problem] = []

    def bad(name: str, message: str) -> None:
        value = record.get(name)
        problems.append(Problem(row, ident, name, "" if value is None else str(value), message))

    for key in record:
        if key not in FIELD_TYPES:
            bad(key, f"unknown field '{key}'{suggest(str(key), FIELD_NAMES)}")
    out: dict[str, Any] = {}
    for spec in FIELDS:
        value, error = _READERS[spec.type](spec.name, record.get(spec.name))
        if error:
            bad(spec.name, error)
        elif spec.name == "hs_code" and value is not None:
            value = value.replace(".", "")
            if not _HS.fullmatch(value):
                bad(spec.name, f"HS code must be 2 to 10 digits: {record.get(spec.name)!r}")
        limit = MAX_LENGTH.get(spec.name)
        if limit is not None and value is not None and len(value) > limit:
            bad(spec.name, _too_long(limit))
        out[spec.name] = value
    _check_required(out, lambda f, m: bad(f, m))
    rate = None
    if out["currency"] is not None:
        rate = rates.get(out["currency"])
        if rate is None:
            bad("currency", f"unknown currency {out['currency']!r}")
    if problems:
        raise DeclarationError(problems)
    _derive(out, rate)
    return out


def _too_long(limit: int) -> str:
    return f"too long: at most {limit} characters"


def _check_required(out: Mapping[str, Any], bad: Any) -> None:
    if out["id"] is None:
        bad("id", "missing declaration id")
    kind = out["kind"]
    if kind is None:
        bad("kind", f"missing declaration kind (one of {', '.join(KINDS)})")
    elif kind not in KINDS:
        bad("kind", f"unknown kind {kind!r}{suggest(kind, KINDS)}")
    elif kind != "traveller" and out["value"] is None:
        bad("value", f"missing value (required for a {kind} declaration)")
    has_money = any(out[f.name] is not None for f in FIELDS if f.money)
    if has_money and out["currency"] is None:
        bad("currency", "missing currency for the amounts declared")


def _derive(out: dict[str, Any], rate: float | None) -> None:
    value, quantity = out["value"], out["quantity"]

    def usd(amount: float | None) -> float | None:
        return None if amount is None or rate is None else amount * rate

    out["value_usd"] = value_usd = usd(value)
    out["shipping_usd"] = usd(out["shipping"])
    out["alcohol_value_usd"] = usd(out["alcohol_value"])
    if value is None or rate is None:
        cents = None
    else:
        total = (value + (out["shipping"] or 0.0) + (out["sales_tax"] or 0.0)) * rate
        cents = math.floor(total * 100.0 + 0.5)
    out[CENTS] = cents
    out["total_usd"] = None if cents is None else cents / 100.0
    out["unit_value_usd"] = (
        None if value_usd is None or quantity is None or quantity == 0 else value_usd / quantity
    )
    hs = out["hs_code"]
    for name, n in (("hs6", 6), ("hs4", 4), ("hs2", 2)):
        out[name] = hs[:n] if hs is not None and len(hs) >= n else None
    out["consignee_key"] = out["pccc"] if out["pccc"] is not None else out["consignee_name"]


# --------------------------------------------------------------------------- a batch

ERROR_COLUMNS = ("row", "id", "field", "value", "message")


def errors_frame(problems: list[Problem]) -> pl.DataFrame:
    """The errors table of a list of problems."""
    import polars as pl

    return pl.DataFrame(
        {
            "row": [p.row for p in problems],
            "id": [p.id for p in problems],
            "field": [p.field for p in problems],
            "value": [p.value for p in problems],
            "message": [p.message for p in problems],
        },
        schema={
            "row": pl.Int64,
            "id": pl.String,
            "field": pl.String,
            "value": pl.String,
            "message": pl.String,
        },
    )


def normalize_frame(
    frame: pl.DataFrame,
    *,
    rates: Mapping[str, float],
    row_column: str | None = None,
    text_fields: Collection[str] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validates a batch of declarations with column expressions.

    Args:
        frame: One declaration per row, columns named after :data:`FIELDS`
            (any dtype that holds the value: text, numbers or dates).
        rates: USD per unit of each known currency.
        row_column: Column holding each row's 1-based row number in its file;
            by default the position in ``frame`` plus one.
        text_fields: The text fields to return (None: all). The others are still
            validated (text has nothing to check but its dtype) but not stripped or
            returned: scoring needs only the fields its rules read, and stripping
            text is most of the cost of validation.

    Returns:
        ``(valid, errors)``: the declarations without problems, normalised
        with derived fields and a ``__row`` column, and the errors table
        (:data:`ERROR_COLUMNS`), one row per problem, sorted by row.
    """
    import polars as pl

    col = pl.col
    problems_extra: list[Problem] = []
    for column in frame.columns:
        if column not in FIELD_TYPES and column != row_column:
            problems_extra.append(
                Problem(
                    0,
                    None,
                    column,
                    "",
                    f"unknown column '{column}'{suggest(column, FIELD_NAMES)}: ignored",
                )
            )
    row_expr = (
        col(row_column).cast(pl.Int64)
        if row_column
        else pl.int_range(1, pl.len() + 1, dtype=pl.Int64)
    )
    # Two steps: text is stripped once per column (polars would not share a strip between a
    # value and its checks), then each field is typed and checked from its stripped text.
    prepared: list[pl.Expr] = []
    values: list[pl.Expr] = [col("__row")]
    field_checks: list[tuple[str, pl.Expr, pl.Expr]] = []  # field, is-bad, message (prepared)
    # Validation reads the checked text; the derived fields read pccc and consignee_name.
    keep = None if text_fields is None else {*text_fields, *_CHECKED_TEXT, "pccc", "consignee_name"}
    returned = []
    late: set[int] = set()  # field checks over the typed value
    for spec in FIELDS:
        present = spec.name in frame.columns
        dtype = frame.schema[spec.name] if present else pl.String
        raw = col(spec.name) if present else pl.lit(None, dtype=pl.String)
        value, bad, message = _column(spec, col(spec.name), dtype)
        if bad is None and keep is not None and spec.name not in keep:
            continue  # text with nothing to check, not wanted
        returned.append(spec.name)
        prepared.append(_prepare(spec, raw, dtype).alias(spec.name))
        values.append(value.alias(spec.name))
        if bad is not None and present:
            field_checks.append((spec.name, bad, message))  # type: ignore[arg-type]
            if spec.name in _CHECKED_TYPED and _is_text(spec, dtype):
                late.add(len(field_checks) - 1)
    # A check over the field's own typed value (hs_code's) runs after the values are computed,
    # so the value is computed once; the others run beside the values.
    flags = [
        bad.fill_null(False).alias(f"__bad_{i}")
        for i, (_, bad, _) in enumerate(field_checks)
        if i not in late
    ]
    late_flags = [
        bad.fill_null(False).alias(f"__bad_{i}")
        for i, (_, bad, _) in enumerate(field_checks)
        if i in late
    ]

    kind = col("kind")
    money_present = pl.any_horizontal([col(f.name).is_not_null() for f in FIELDS if f.money])
    rate = col("__rate")
    rule_checks: list[
        tuple[str, pl.Expr, pl.Expr]
    ] = [  # field, is-bad, message (over typed values)
        ("id", col("id").is_null(), pl.lit("missing declaration id")),
        # The first row with an id is scored; later rows with the same id are errors.
        (
            "id",
            col("id").is_not_null() & ~col("id").is_first_distinct(),
            pl.format("duplicate declaration id {}", col("id")),
        ),
        ("kind", kind.is_null(), pl.lit(f"missing declaration kind (one of {', '.join(KINDS)})")),
        (
            "kind",
            kind.is_not_null() & ~_one_of(kind, KINDS),
            pl.format("unknown kind '{}'", kind),
        ),
        (
            "value",
            _one_of(kind, [k for k in KINDS if k != "traveller"]) & col("value").is_null(),
            pl.format("missing value (required for a {} declaration)", kind),
        ),
        (
            "currency",
            money_present & col("currency").is_null(),
            pl.lit("missing currency for the amounts declared"),
        ),
        (
            "currency",
            col("currency").is_not_null() & rate.is_null(),
            pl.format("unknown currency '{}'", col("currency")),
        ),
    ]
    n_field = len(field_checks)
    flag_names = [f"__bad_{i}" for i in range(n_field + len(rule_checks))]
    # One lazy query for values, checks and derived fields, materialised once.
    typed = _with_derived(
        frame.lazy()
        .select(row_expr.alias("__row"), *prepared)
        .select(*values, *flags)
        .with_columns(_rate(rates))
        .with_columns(
            *late_flags,
            *[
                bad.fill_null(False).alias(f"__bad_{n_field + i}")
                for i, (_, bad, _) in enumerate(rule_checks)
            ],
        )
        .with_columns(pl.any_horizontal(flag_names).alias("__bad")),
        rates=rates,
        bad=col("__bad"),
    ).collect()
    bad_any = typed.get_column("__bad")
    # Phones keep their digits only. The query removed the usual dashes; the rows where
    # anything else is left, or that dial Korea from abroad (0082...), are fixed here, as a
    # regex over every row would cost more than the rest of a phone's validation.
    for name in sorted(_DIGITS.intersection(returned)):
        phone = typed.get_column(name)
        odd = phone.str.contains(_DIGITS_RE) | phone.str.starts_with("0082")
        rows = odd.fill_null(False).arg_true()
        if rows.len():
            fixed = phone.gather(rows).to_frame().select(_phone_expr(col(name))).to_series()
            typed = typed.with_columns(phone.clone().scatter(rows, fixed))
    # Empty text is null. Testing which columns hold any empty text is cheap (lengths are
    # stored), so only those columns are rewritten.
    unchecked = [
        f.name
        for f in FIELDS
        if f.type == TEXT and f.name not in _CHECKED_TEXT and f.name in returned
    ]
    empty = typed.select([(col(n).str.len_bytes() == 0).any().alias(n) for n in unchecked]).row(
        0, named=True
    )
    if any(empty.values()):
        typed = typed.with_columns(
            [
                pl.when(col(n).str.len_bytes() > 0).then(col(n)).alias(n)
                for n, e in empty.items()
                if e
            ]
        )
    errors = errors_frame(problems_extra)
    if bad_any.any():
        pieces = []
        # The field checks' messages read the prepared (stripped) values: again, bad rows only.
        prepared_bad = frame.filter(bad_any).lazy().select(prepared).collect()
        for i, (name, _, message) in enumerate(field_checks + rule_checks):
            flag = typed.get_column(flag_names[i])
            if not flag.any():
                continue
            source, source_flag = (
                (prepared_bad, flag.filter(bad_any)) if i < n_field else (typed, flag)
            )
            raw_value = (
                frame.filter(flag).get_column(name).cast(pl.String, strict=False)
                if name in frame.columns
                else pl.Series([None] * int(flag.sum()), dtype=pl.String)
            )
            pieces.append(
                pl.DataFrame(
                    {
                        "row": typed.get_column("__row").filter(flag),
                        "id": typed.get_column("id").filter(flag),
                        "field": [name] * int(flag.sum()),
                        "value": raw_value,
                        # with_columns, not select: a literal message is broadcast to every row
                        "message": source.filter(source_flag)
                        .with_columns(message.cast(pl.String).alias("__m"))
                        .get_column("__m"),
                    }
                )
            )
        errors = pl.concat([errors, *pieces], how="vertical_relaxed").sort(
            "row", maintain_order=True
        )
        typed = typed.filter(~bad_any)
    return typed.drop(*flag_names, "__bad", "__rate"), errors


def _phone_expr(text: pl.Expr) -> pl.Expr:
    """:func:`_phone` over a column of stripped phones without their dashes."""
    import polars as pl

    digits = text.str.replace_all(_DIGITS_RE, "")
    dialled = pl.when(text.str.starts_with("+")).then("00" + digits).otherwise(digits)
    return (
        pl.when(dialled.str.starts_with("0082"))
        .then(dialled.str.replace(_KR_PREFIX_RE, "0"))
        .otherwise(digits)
    )


def _one_of(text: pl.Expr, values: Collection[str]) -> pl.Expr:
    """``text`` is one of a few ``values`` (null if null): comparisons, which polars shares
    between the checks that repeat them (it does not share ``is_in`` with a literal list)."""
    import polars as pl

    return pl.any_horizontal([text == pl.lit(v, dtype=pl.String) for v in values])


def _rate(rates: Mapping[str, float]) -> pl.Expr:
    """The ``__rate`` column: USD per unit of the declaration's currency (null if unknown)."""
    import polars as pl

    return (
        pl.col("currency")
        .replace_strict(dict(rates), default=None, return_dtype=pl.Float64)
        .alias("__rate")
    )


def _is_text(spec: FieldSpec, dtype: pl.DataType) -> bool:
    """Whether the field's input is read as text (then stripped): a string, or an integer
    where text is expected and a number may stand for it (an id, not a postal code)."""
    import polars as pl

    return dtype == pl.String or (
        spec.type == TEXT and dtype.is_integer() and spec.name not in TEXT_ONLY
    )


def _prepare(spec: FieldSpec, raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """The first step of :func:`_column`: text stripped, other values as they are."""
    import polars as pl

    if dtype == pl.Null:
        return raw.cast(pl.String)
    if _is_text(spec, dtype):
        return raw.cast(pl.String).str.strip_chars()
    return raw


def _column(
    spec: FieldSpec, raw: pl.Expr, dtype: pl.DataType
) -> tuple[pl.Expr, pl.Expr | None, pl.Expr | None]:
    """(value, is-bad, message) expressions for one field of any input dtype.

    Args:
        spec: The field.
        raw: The field's column after :func:`_prepare` (text stripped).
        dtype: The field's dtype in the input.
    """
    import polars as pl

    if dtype == pl.Null:
        dtype = pl.String
    if spec.type == TEXT:
        if not _is_text(spec, dtype):
            message = NOT_TEXT if spec.name in TEXT_ONLY else f"expected text, got {dtype}"
            return pl.lit(None, dtype=pl.String), raw.is_not_null(), pl.lit(message)
        text = raw  # stripped
        if spec.name in _UPPER:
            text = text.str.to_uppercase()
        elif spec.name in _DIGITS:
            # The usual separator here; any other non-digit in normalize_frame's second pass.
            text = text.str.replace_all("-", "", literal=True)
        if spec.name in _CHECKED_TEXT:
            text = pl.when(text.str.len_bytes() > 0).then(text)
        # else: empty text becomes null in normalize_frame's second pass
        if spec.name == "hs_code":
            text = text.str.replace_all(".", "", literal=True)
            # Over the typed value (see _CHECKED_TYPED); null is not flagged (flags fill
            # nulls with False).
            bad = ~pl.col(spec.name).str.contains(f"^{_HS_RE}$")
            return text, bad, pl.lit("HS code must be 2 to 10 digits")
        limit = MAX_LENGTH.get(spec.name)
        if limit is not None:
            return text, text.str.len_chars() > limit, pl.lit(_too_long(limit))
        return text, None, None
    if spec.type == NUMBER:
        if dtype == pl.String:
            stripped = raw
            text = pl.when(stripped.str.len_bytes() > 0).then(stripped)
            unparsable = text.is_not_null() & ~text.str.contains(f"^{_NUMBER_RE}$")
            number = pl.when(unparsable).then(None).otherwise(text).cast(pl.Float64, strict=False)
        elif dtype.is_numeric():
            unparsable = pl.lit(False)
            number = raw.cast(pl.Float64)
        else:
            return (
                pl.lit(None, dtype=pl.Float64),
                raw.is_not_null(),
                pl.lit(f"expected a number, got {dtype}"),
            )
        out_of_range = ~number.is_finite() | (number.abs() > MAX_NUMBER)
        negative = number < 0
        bad = unparsable | out_of_range | negative
        message = (
            pl.when(unparsable)
            .then(pl.lit("not a number"))
            .when(out_of_range)
            .then(pl.lit(f"out of range (at most {MAX_NUMBER:g})"))
            .otherwise(pl.lit("negative value"))
        )
        value = pl.when(bad.fill_null(False)).then(None).otherwise(number + 0.0)
        return value, bad, message
    # dates
    if dtype == pl.String:
        stripped = raw
        text = pl.when(stripped.str.len_bytes() > 0).then(stripped)
        malformed = text.is_not_null() & ~text.str.contains(f"^{_DATE_RE}$")
        parsed = text.str.to_date("%Y-%m-%d", strict=False)
        no_day = text.is_not_null() & ~malformed & parsed.is_null()
    elif dtype == pl.Date or isinstance(dtype, pl.Datetime):
        parsed = raw.cast(pl.Date)
        malformed = no_day = pl.lit(False)
    else:
        return (
            pl.lit(None, dtype=pl.Float64),
            raw.is_not_null(),
            pl.lit(f"expected a date, got {dtype}"),
        )
    days = parsed.cast(pl.Int32).cast(pl.Float64)
    lo = float(date(MIN_YEAR, 1, 1).toordinal() - EPOCH_ORDINAL)
    hi = float(date(MAX_YEAR, 12, 31).toordinal() - EPOCH_ORDINAL)
    out_of_range = (days < lo) | (days > hi)
    bad = malformed | no_day | out_of_range
    message = (
        pl.when(malformed)
        .then(pl.lit("malformed date: write YYYY-MM-DD"))
        .when(no_day)
        .then(pl.lit("malformed date: no such day"))
        .otherwise(pl.lit(f"date out of range ({MIN_YEAR}-{MAX_YEAR})"))
    )
    return pl.when(bad.fill_null(False)).then(None).otherwise(days), bad, message


def derive_frame(frame: pl.DataFrame, *, rates: Mapping[str, float]) -> pl.DataFrame:
    """Adds the derived fields (:data:`DERIVED`) and the cents column to valid declarations."""
    return _with_derived(frame.lazy(), rates=rates).drop("__rate").collect()


def _with_derived(
    lazy: pl.LazyFrame, *, rates: Mapping[str, float], bad: pl.Expr | None = None
) -> pl.LazyFrame:
    """``lazy`` with the derived fields and the cents column appended.

    Args:
        lazy: Typed declarations.
        rates: USD per unit of each known currency.
        bad: Rows that will be rejected: their cents are not computed, so a value
            that is refused anyway cannot overflow the cast.
    """
    import polars as pl

    col = pl.col

    def nonempty(name: str) -> pl.Expr:
        # Empty text is null; normalize_frame nulls the unchecked text columns after this query.
        return pl.when(col(name).str.len_bytes() > 0).then(col(name))

    rate = col("__rate")
    total = (col("value") + col("shipping").fill_null(0.0) + col("sales_tax").fill_null(0.0)) * rate
    if bad is not None:
        total = pl.when(bad).then(None).otherwise(total)
    cents = (total * 100.0 + 0.5).floor().cast(pl.Int64)
    hs = col("hs_code")
    if "__rate" not in lazy.collect_schema():
        lazy = lazy.with_columns(_rate(rates))
    return lazy.with_columns(
        (col("value") * rate).alias("value_usd"),
        (col("shipping") * rate).alias("shipping_usd"),
        (col("alcohol_value") * rate).alias("alcohol_value_usd"),
        cents.alias(CENTS),
        *[
            pl.when(hs.str.len_chars() >= n).then(hs.str.slice(0, n)).alias(name)
            for name, n in (("hs6", 6), ("hs4", 4), ("hs2", 2))
        ],
        pl.coalesce(nonempty("pccc"), nonempty("consignee_name")).alias("consignee_key"),
    ).with_columns(
        (col(CENTS) / 100.0).alias("total_usd"),
        pl.when(col("quantity") == 0)
        .then(None)
        .otherwise(col("value_usd") / col("quantity"))
        .alias("unit_value_usd"),
    )
