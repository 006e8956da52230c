"""Batch scoring: millions of declarations through polars column expressions, no per-row Python.

:func:`score_frame` validates a frame (:func:`.declaration.normalize_frame`),
computes the aggregations the pack uses as group-bys over the batch (plus
optional prior history), evaluates every rule as one column expression,
then assigns lanes with NumPy (:mod:`.lanes`): the same decisions as the
online engine on the same declarations, in the same order. Fired and
selecting rules are kept as bit masks while scoring and spelled out as rule
ids and readable reasons only when written (:func:`expand`).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from cv.errors import DataFormatError, NotFoundError

from .declaration import (
    CENTS,
    FIELD_NAMES,
    FIELD_TYPES,
    SCHEMA,
    STRIP,
    TEXT_ONLY,
    Problem,
    errors_frame,
    normalize_frame,
    suggest,
    to_date,
    type_problem,
)
from .expr import DATE, NUMBER, TEXT, Field, walk
from .lanes import (
    LANE_MEANING,
    LANES,
    RANDOM_SALT,
    RANK,
    FiredRule,
    draw_many,
    explain,
    id_hashes,
    quota_ranks,
    rule_salt,
    streak_select,
)
from .pack import RulePack
from .vector import compile_vector

FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_WORD = 62  # rules per mask column: bits 0..61 of an Int64 stay positive
ENGINE = "in-memory"
"""polars engine of the aggregation and rule queries. Measured on the default pack
(polars 2.1): the window sums and distinct counts run about twice as fast, and the whole
re-scoring 15-20 % faster, than on the streaming engine, the default since polars 2.0.
(Validation keeps the default: its error path hit a polars panic on in-memory output.)"""


@dataclass(slots=True)
class BatchResult:
    """A scored batch.

    Attributes:
        decisions: One row per valid declaration, in input order: ``row``,
            ``id``, ``lane``, ``score``, ``random``, ``topped_up`` and the
            ``fired_k`` / ``selected_k`` rule bit masks.
        errors: One row per problem (:data:`.declaration.ERROR_COLUMNS`).
        pack: The pack that scored it.
        streaks: Each sampling rule's unselected streak after the batch.
    """

    decisions: pl.DataFrame
    errors: pl.DataFrame
    pack: RulePack
    streaks: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Counts per lane, rejected rows, random and topped-up selections, against the rates."""
        n = self.decisions.height
        lanes = dict.fromkeys(reversed(LANES), 0)
        for lane, count in self.decisions.group_by("lane").len().iter_rows():
            lanes[lane] = count
        rejected = self.errors.filter(pl.col("row") > 0).get_column("row").n_unique()
        expected = self.pack.lanes.expected_rates
        return {
            "pack": self.pack.label,
            "scored": n,
            "rejected_rows": rejected,
            "problems": self.errors.height,
            "lanes": lanes,
            "lane_rates": {k: (v / n if n else 0.0) for k, v in lanes.items()},
            "expected_rates": dict(expected),
            "over_expected": [k for k, r in expected.items() if n and lanes[k] / n > r],
            "random": int(self.decisions.get_column("random").sum()),
            "topped_up": int(self.decisions.get_column("topped_up").sum()),
        }


def vector_exprs(pack: RulePack) -> list[pl.Expr]:
    """Every rule's condition as a polars expression (null counts as not fired)."""
    return [
        compile_vector(rule.node, lists=pack.lists, tables=pack.tables)
        .fill_null(False)
        .alias(f"__rule_{i}")
        for i, rule in enumerate(pack.rules)
    ]


def fields_read(pack: RulePack) -> set[str]:
    """The declaration fields scoring reads: the rules' and the aggregations' (keys and id)."""
    read = {node.name for rule in pack.rules for node in walk(rule.node) if isinstance(node, Field)}
    return read | set(_AGGREGATE_KEYS)


_AGGREGATE_KEYS = ("id", "awb", "supplier", "consignee_key", "purchase_date", "arrival_date", CENTS)


def add_aggregates(
    frame: pl.DataFrame, wanted: dict[str, tuple[str, int]], *, prior: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Adds each aggregation column the pack uses, as group-bys over the batch.

    Args:
        frame: Normalised declarations.
        wanted: Column name to (aggregation, window days), from the pack.
        prior: Earlier normalised declarations that count in the aggregations
            but are not scored; a declaration in both counts once.
    """
    if not wanted:
        return frame
    keys = list(_AGGREGATE_KEYS)
    universe = frame.select(keys).with_columns(pl.lit(True).alias("__scored"))
    if prior is not None and prior.height:
        old = prior.select(keys).filter(~pl.col("id").is_in(frame.get_column("id").implode()))
        universe = pl.concat(
            [old.with_columns(pl.lit(False).alias("__scored")), universe], how="vertical_relaxed"
        )
    col = pl.col
    exprs = []
    for column, (name, _days) in wanted.items():
        if name == "sum_value_same_awb":
            exprs.append(
                pl.when(col("awb").is_null())
                .then(None)
                .otherwise(col(CENTS).sum().over("awb") / 100.0)
                .alias(column)
            )
        elif name == "sum_value_same_supplier_day":
            group = ["supplier", "consignee_key", "purchase_date"]
            missing = pl.any_horizontal([col(g).is_null() for g in group])
            exprs.append(
                pl.when(missing)
                .then(None)
                .otherwise(col(CENTS).sum().over(group) / 100.0)
                .alias(column)
            )
    windows = [
        (c, n, d)
        for c, (n, d) in wanted.items()
        if n in ("count_same_buyer", "sum_value_same_buyer")
    ]
    if windows:
        exprs += _buyer_day_exprs()
    # One query: the group-bys and the buyer-window keys run side by side.
    universe = universe.lazy().with_columns(exprs).collect(engine=ENGINE) if exprs else universe
    if windows:
        universe = _window_aggregates(universe, windows)
    if universe.height != frame.height:
        universe = universe.filter(col("__scored"))
    added = universe.select(list(wanted))
    if any(c in frame.columns for c in added.columns):
        return frame.with_columns(added)
    # Side by side, without aligning the chunks of every column of the frame.
    return frame.hstack(added)


_DAY_OFFSET = 40_000  # days since 1970 of 1900-01-01 is -25,567; of 2100-12-31 is 47,482
_DAY_SPAN = 1 << 18


def _arrival_day() -> pl.Expr:
    """The low bits of a buyer-window key: the arrival day, made non-negative."""
    day = pl.col("arrival_date").fill_null(0.0).cast(pl.Int64) + _DAY_OFFSET
    return day.cast(pl.UInt64)


def _buyer_day_exprs() -> list[pl.Expr]:
    """The columns :func:`_window_aggregates` reads: ``__key`` (the high 46 bits of a hash
    of the consignee, then the arrival day), ``__known`` (both present) and
    ``__consignees`` (distinct consignees among the known rows)."""
    col = pl.col
    known = col("consignee_key").is_not_null() & col("arrival_date").is_not_null()
    span = pl.lit(_DAY_SPAN, dtype=pl.UInt64)
    return [
        (col("consignee_key").hash() // span * span + _arrival_day()).alias("__key"),
        known.alias("__known"),
        col("consignee_key").filter(known).n_unique().alias("__consignees"),
    ]


def _window_aggregates(universe: pl.DataFrame, windows: list[tuple[str, str, int]]) -> pl.DataFrame:
    """count/sum over the same consignee's arrivals in (d - N, d], by binary search over sorted keys.

    Each declaration's (consignee, arrival day) becomes one sortable UInt64:
    a code of the consignee in the high bits, the day in the low 18. The
    declarations in its window are then a contiguous run of the sorted keys,
    found with two binary searches, and sums come from a prefix sum of the
    cents: O(n log n) in NumPy, exact. The code only has to tell consignees
    apart: the high 46 bits of a hash of the key, used when the sorted keys
    show as many distinct codes as there are consignees (almost always), else
    a dense rank of the keys (a sort of the text, slower). ``universe`` holds
    the columns of :func:`_buyer_day_exprs`.
    """
    col = pl.col
    hashed, known_rows = universe.get_column("__key"), universe.get_column("__known")
    consignees = universe.get_column("__consignees").head(1)
    known = known_rows.to_numpy()
    key = hashed.to_numpy()[known]
    order = np.argsort(key)  # ties are equal keys, whose results are equal: any order will do
    sorted_keys = key[order]
    codes = sorted_keys // np.uint64(_DAY_SPAN)
    distinct = int(np.count_nonzero(codes[1:] != codes[:-1])) + 1 if len(codes) else 0
    if distinct != (consignees[0] if len(consignees) else 0):  # two consignees share a prefix
        code = col("consignee_key").rank("dense").cast(pl.UInt64).fill_null(0)
        ranked = universe.select(code * pl.lit(_DAY_SPAN, dtype=pl.UInt64) + _arrival_day())
        key = ranked.to_series().to_numpy()[known]
        order = np.argsort(key)
        sorted_keys = key[order]
    cents = universe.get_column(CENTS).fill_null(0).to_numpy()[known][order]
    prefix = np.concatenate([[0], np.cumsum(cents, dtype=np.int64)])
    # Queries in sorted order: the binary searches then walk memory forwards (several times faster).
    hi = np.searchsorted(sorted_keys, sorted_keys, side="right")
    columns = []
    for column, name, days in windows:
        # Never below the consignee's own keys, however long the window.
        back = np.minimum(sorted_keys % np.uint64(_DAY_SPAN), np.uint64(days))
        lo = np.searchsorted(sorted_keys, sorted_keys - back, side="right")
        in_order = (
            (hi - lo).astype(np.float64)
            if name == "count_same_buyer"
            else (prefix[hi] - prefix[lo]) / 100.0
        )
        value = np.full(len(known), np.nan)
        known_values = np.empty(len(order))
        known_values[order] = in_order
        value[known] = known_values
        columns.append(pl.Series(column, value, dtype=pl.Float64, nan_to_null=True))
    return universe.with_columns(columns)


def score_frame(
    pack: RulePack,
    frame: pl.DataFrame,
    *,
    prior: pl.DataFrame | None = None,
    quotas: bool = True,
    streaks: dict[str, int] | None = None,
    row_column: str | None = None,
    read_problems: pl.DataFrame | None = None,
) -> BatchResult:
    """Validates and scores a batch of declarations.

    Args:
        pack: The compiled pack.
        frame: Declarations, one per row (see :data:`.declaration.FIELDS`).
        prior: Earlier normalised declarations for the aggregations.
        quotas: Top lanes up to their expected rates (:func:`.lanes.apply_quotas`).
        streaks: Each sampling rule's unselected streak before the batch.
        row_column: Column with each row's number in its file.
        read_problems: The problems :func:`read_declarations` found (see :func:`validate_frame`).
    """
    valid, errors = validate_frame(
        pack,
        frame,
        row_column=row_column,
        text_fields=fields_read(pack),
        read_problems=read_problems,
    )
    result = score_normalized(pack, valid, prior=prior, quotas=quotas, streaks=streaks)
    result.errors = errors
    return result


def validate_frame(
    pack: RulePack,
    frame: pl.DataFrame,
    *,
    row_column: str | None = None,
    text_fields: set[str] | None = None,
    read_problems: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validates a batch for ``pack``: :func:`.declaration.normalize_frame`, then the
    pack's validity window (:func:`.engine.check_in_window`, the online check).

    A declaration arriving outside the pack's validity dates is not scored: it
    becomes a problem on ``arrival_date`` naming the pack's dates.

    Args:
        pack: The compiled pack (its rates and validity dates).
        frame: Declarations, one per row.
        row_column: Column with each row's number in its file.
        text_fields: The text fields to return (None: all).
        read_problems: The problems :func:`read_declarations` found: they join the
            errors, and a row they name is not valid, though the rest of it is
            validated (a field that could not be read is null in ``frame``), so
            that every problem of the row is reported, as online.

    Returns:
        ``(valid, errors)`` as :func:`.declaration.normalize_frame` returns them.
    """
    valid, errors = normalize_frame(
        frame, rates=pack.rates, row_column=row_column, text_fields=text_fields
    )
    if read_problems is not None and read_problems.height:
        unread = read_problems.filter(pl.col("row") > 0).get_column("row").unique()
        if unread.len():
            valid = valid.filter(~pl.col("__row").is_in(unread.implode()))
        errors = pl.concat([read_problems, errors], how="vertical_relaxed").sort(
            "row", maintain_order=True
        )
    first, last = pack.validity_days()
    if (first is None and last is None) or not valid.height:
        return valid, errors
    day = pl.col("arrival_date")
    outside = pl.lit(False)
    if first is not None:
        outside = outside | (day < first)
    if last is not None:
        outside = outside | (day > last)
    flags = valid.select(outside.fill_null(False)).to_series()
    if not flags.any():
        return valid, errors
    problems = []
    for row, ident, arrival in (
        valid.filter(flags).select("__row", "id", "arrival_date").iter_rows()
    ):
        message = pack.declaration_problem(arrival)
        problems.append(Problem(row, ident, "arrival_date", str(to_date(arrival)), message or ""))
    errors = pl.concat([errors, errors_frame(problems)], how="vertical_relaxed").sort(
        "row", maintain_order=True
    )
    return valid.filter(~flags), errors


def score_normalized(
    pack: RulePack,
    valid: pl.DataFrame,
    *,
    prior: pl.DataFrame | None = None,
    quotas: bool = True,
    streaks: dict[str, int] | None = None,
) -> BatchResult:
    """Scores declarations already validated by :func:`.declaration.normalize_frame`.

    This is the re-scoring path: a history validated once at intake is scored
    again after a rule change without validating it again.

    Args:
        pack: The compiled pack (its rates must be those the history was validated with).
        valid: Normalised declarations, with their ``__row`` column.
        prior: Earlier normalised declarations for the aggregations.
        quotas: Top lanes up to their expected rates.
        streaks: Each sampling rule's unselected streak before the batch.
    """
    valid = add_aggregates(valid, pack.aggregates, prior=prior)
    n, rules, config = valid.height, pack.rules, pack.lanes
    words = range(max(1, -(-len(rules) // _WORD)))
    sampled = [i for i, rule in enumerate(rules) if rule.lane is not None and rule.select_rate < 1]

    def bits(indices: list[int], word: int) -> pl.Expr:
        terms = [
            pl.when(pl.col(f"__rule_{i}"))
            .then(pl.lit(1 << (i % _WORD), dtype=pl.Int64))
            .otherwise(0)
            for i in indices
            if i // _WORD == word
        ]
        return pl.sum_horizontal(terms) if terms else pl.lit(0, dtype=pl.Int64)

    always = [i for i, rule in enumerate(rules) if rule.lane is not None and i not in sampled]
    rank_terms = [
        pl.when(pl.col(f"__rule_{i}")).then(pl.lit(RANK[rules[i].lane], dtype=pl.Int8)).otherwise(0)  # type: ignore[index]
        for i in always
    ]
    # One lazy query: every rule, then the score, the fired / selecting bit masks and the
    # lane of the rules that always select, as column sums; subexpressions run once.
    scored = (
        valid.lazy()
        .select("__row", "id", *vector_exprs(pack))
        .with_columns(
            pl.sum_horizontal(
                [
                    pl.when(pl.col(f"__rule_{i}")).then(rule.score).otherwise(0)
                    for i, rule in enumerate(rules)
                ]
                or [pl.lit(0)]
            )
            .cast(pl.Int64)
            .alias("score"),
            pl.max_horizontal([*rank_terms, pl.lit(0, dtype=pl.Int8)])
            .cast(pl.Int8)
            .alias("__rank"),
            *[bits(list(range(len(rules))), k).alias(f"fired_{k}") for k in words],
            *[bits(always, k).alias(f"selected_{k}") for k in words],
        )
        .collect(engine=ENGINE)
    )
    ids = scored.get_column("id")
    hashes = id_hashes(ids)
    score = scored.get_column("score").to_numpy()
    rank = scored.get_column("__rank").to_numpy().copy()
    selected_words = {k: scored.get_column(f"selected_{k}").to_numpy().copy() for k in words}
    final_streaks = dict(streaks or {})
    for i in (
        sampled
    ):  # rules that sample their hits: a seeded draw and the max-hits guarantee, in order
        rule = rules[i]
        hits = scored.get_column(f"__rule_{i}").to_numpy()
        drawn = draw_many(hashes, seed=config.seed, salt=rule_salt(rule.id)) < rule.select_rate
        chosen, final_streaks[rule.id] = streak_select(
            hits, drawn, max_hits=rule.max_hits, streak=final_streaks.get(rule.id, 0)
        )
        rank = np.maximum(rank, np.where(chosen, RANK[rule.lane], 0).astype(np.int8))  # type: ignore[index]
        selected_words[i // _WORD] |= np.where(chosen, np.int64(1) << np.int64(i % _WORD), 0)
    for lane in ("blue", "yellow", "red"):
        limit = config.thresholds.get(lane)
        if limit is not None:
            rank = np.maximum(rank, np.where(score >= limit, RANK[lane], 0).astype(np.int8))
    random = draw_many(hashes, seed=config.seed, salt=RANDOM_SALT) < config.random_rate
    rank = np.maximum(rank, np.where(random, RANK[config.random_lane], 0).astype(np.int8))
    topped: np.ndarray | None = None
    if quotas:  # on the lane ranks, before the lanes are spelled out
        rank, topped = quota_ranks(rank, score, hashes, np.zeros(n, dtype=bool), config=config)
    columns: dict[str, Any] = {
        "row": scored.get_column("__row"),
        "id": ids,
        "lane": lane_names(rank),
        "score": scored.get_column("score"),
        "random": pl.Series(random, dtype=pl.Boolean),
        "topped_up": pl.Series(np.zeros(n, dtype=bool) if topped is None else topped),
    }
    for k in words:
        columns[f"fired_{k}"] = scored.get_column(f"fired_{k}")
        columns[f"selected_{k}"] = pl.Series(selected_words[k], dtype=pl.Int64)
    decisions = pl.DataFrame(columns)
    return BatchResult(
        decisions=decisions, errors=errors_frame([]), pack=pack, streaks=final_streaks
    )


def lane_names(rank: np.ndarray) -> pl.Series:
    """Lane names of an array of lane ranks."""
    return pl.Series("lane", LANES, dtype=pl.String).gather(np.asarray(rank, dtype=np.uint32))


def expand(result: BatchResult) -> pl.DataFrame:
    """The decisions with ``rules`` (fired rule ids), ``reasons`` and ``action`` spelled out.

    The reasons are the same lines, in the same order, as the online
    :class:`.lanes.Decision` gives (joined with ``"; "``), plus the top-up
    line. They depend only on which rules fired and selected, the random draw,
    the top-up and the lane, so each distinct combination (a few hundred in
    a million declarations) is explained once and joined back.
    """
    pack, config = result.pack, result.pack.lanes
    frame = result.decisions
    masks = [c for c in frame.columns if c.startswith(("fired_", "selected_"))]
    key = [*masks, "random", "topped_up", "lane"]
    combos = frame.select(key).unique(maintain_order=True)
    rules_text, reasons_text = [], []
    for combo in combos.iter_rows(named=True):
        fired = []
        for i, rule in enumerate(pack.rules):
            word, bit = i // _WORD, 1 << (i % _WORD)
            if combo[f"fired_{word}"] & bit:
                selected = bool(combo[f"selected_{word}"] & bit)
                fired.append(FiredRule(rule.id, rule.reason, rule.score, rule.lane, selected))
        score = sum(f.score for f in fired)
        lines = list(
            explain(
                fired=fired, score=score, config=config, random=combo["random"], lane=combo["lane"]
            )
        )
        if combo["topped_up"]:
            rate = config.expected_rates.get(combo["lane"], 0.0)
            lines = [x for x in lines if x != "No rule fired: release"]
            lines.append(f"Topped up to the {combo['lane']} lane's expected rate ({rate:.1%})")
        rules_text.append(";".join(f.id for f in fired))
        reasons_text.append("; ".join(lines))
    combos = combos.with_columns(
        pl.Series("rules", rules_text, dtype=pl.String),
        pl.Series("reasons", reasons_text, dtype=pl.String),
    )
    out = frame.join(combos, on=key, how="left", maintain_order="left", nulls_equal=True)
    out = out.with_columns(
        pl.col("lane").replace_strict(LANE_MEANING, return_dtype=pl.String).alias("action")
    )
    return out.select([c for c in out.columns if c not in masks])


# --------------------------------------------------------------------------- files


def file_format(path: Path) -> str:
    """``csv``, ``parquet`` or ``jsonl`` from a file's suffix."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataFormatError(
            f"unknown file type {path.suffix!r}: use {', '.join(FORMATS)}", path=path
        )
    return fmt


def read_declarations(path: str | Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Reads a CSV, Parquet or JSON-lines file of declarations.

    Every field comes back as text, which validation reads as it reads a CSV,
    with each row's number in ``__row``: row N is the file's Nth declaration
    (a CSV's header and blank lines are not rows). A UTF-8 byte-order mark is
    skipped. Problems found reading carry the row and, in their message, the
    file's line:

    * a row that cannot be parsed at all (a CSV row with the wrong number of
      fields, a line that is not a JSON object) is left out;
    * a field that cannot be read is null in the frame, and the row is still
      returned, so that validation reports its other problems as online: text
      that is not UTF-8, and in JSON lines a value whose type the field refuses
      online (:func:`.declaration.type_problem`: ``"hs_code": 901`` has lost the
      leading zero of ``0901``; true/false, arrays and objects are not text).
      Pass the problems to :func:`validate_frame` (or :func:`score_frame`), which
      does not score a row they name.

    Returns:
        ``(frame, problems)``: the readable rows and the errors table.

    Raises:
        NotFoundError: If the file does not exist.
        DataFormatError: If the file type is unknown, or a CSV has no header.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError("declarations file not found", path=path)
    fmt = file_format(path)
    if fmt == "parquet":
        frame = pl.read_parquet(path)
        return frame.with_columns(
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("__row")
        ), errors_frame([])
    if fmt == "csv":
        return _read_csv(path)
    return _read_jsonl(path)


_BOM = b"\xef\xbb\xbf"


def _lines(source: Path | bytes) -> pl.LazyFrame:
    """The lines of a text file as polars splits them, column ``line`` (no quoting; a blank
    line is null)."""
    return pl.scan_csv(
        source,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        new_columns=["line"],
        infer_schema=False,
    )


def _read_csv(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    # polars reads a clean file; anything it would read differently from the csv module
    # (quoted line breaks, short or long rows, CR-only line ends) goes to the exact reader.
    try:
        frame = pl.read_csv(path, infer_schema=False)
        lines = _lines(path).collect().get_column("line")
    except pl.exceptions.PolarsError:
        return _read_csv_python(path)
    if lines.len() != frame.height + 1 or "\r" in (lines[0] or "").rstrip("\r"):
        return _read_csv_python(path)  # a line break in a quoted field, or CR-only line ends
    body = lines.slice(1)
    # polars fills a short row with nulls; count separators to catch it (quoted lines exactly, in Python).
    ragged = body.str.count_matches(",", literal=True) != len(frame.columns) - 1
    if ragged.any():
        return _read_csv_python(path)
    blank = body.is_null()  # a row of nulls in the frame; the csv module skips the line
    if blank.any():
        frame = frame.filter(~blank)
    return frame.with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("__row")
    ), errors_frame([])


def _read_csv_python(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    problems: list[Problem] = []
    rows: list[list[str | None]] = []
    numbers: list[int] = []
    # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name.
    # Bytes that are not UTF-8 come through as lone surrogates, found per field below.
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataFormatError("empty file: no header", path=path, line=1) from None
        for name in header:
            if (detail := _not_unicode(name)) is not None:
                raise DataFormatError(
                    f"header: not UTF-8 text ({detail}): {_shown(name)!r}", path=path, line=1
                )
        id_at = header.index("id") if "id" in header else None
        row = 0
        try:
            for fields in reader:
                if not fields:
                    continue  # a blank line
                row += 1
                if len(fields) != len(header):
                    problems.append(
                        Problem(
                            row,
                            _shown(fields[0]) if fields else None,
                            "(row)",
                            _shown(",".join(fields))[:200],
                            f"line {reader.line_num}: expected {len(header)} fields, got {len(fields)}",
                        )
                    )
                    continue
                ident = (fields[id_at].strip(STRIP) or None) if id_at is not None else None
                ident = None if ident is None or _not_unicode(ident) else ident
                values: list[str | None] = []
                for name, value in zip(header, fields, strict=True):
                    if (detail := _not_unicode(value)) is not None:
                        problems.append(
                            Problem(
                                row,
                                ident,
                                name,
                                _shown(value)[:200],
                                f"line {reader.line_num}: not UTF-8 text ({detail})",
                            )
                        )
                        values.append(None)
                    else:
                        values.append(value or None)
                rows.append(values)
                numbers.append(row)
        except csv.Error as exc:
            problems.append(
                Problem(
                    row + 1,
                    None,
                    "(row)",
                    "",
                    f"line {reader.line_num}: unreadable CSV: {exc}; the rest of the file was not read",
                )
            )
    data = {name: [r[j] for r in rows] for j, name in enumerate(header)}
    frame = pl.DataFrame(data, schema={name: pl.String for name in header})
    return frame.with_columns(pl.Series("__row", numbers, dtype=pl.Int64)), errors_frame(problems)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _not_unicode(text: str) -> str | None:
    """What is wrong with text read with ``surrogateescape`` (or from JSON escapes), or None."""
    found = _SURROGATE.search(text)
    if found is None:
        return None
    code = ord(found.group())
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as surrogateescape keeps it
        return f"byte 0x{code - 0xDC00:02X}"
    return f"lone surrogate U+{code:04X}"


def _shown(text: str) -> str:
    """``text`` with every undecodable byte or lone surrogate shown as U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def _json_patterns() -> tuple[str, str]:
    """The regexes of :func:`_read_jsonl`'s fast path: ``(exact, check)``.

    ``exact`` matches what only the exact reader reads as online does: a value of a
    type its field refuses (:func:`.declaration.type_problem`: in a field that must be
    text, anything but a string or null; elsewhere true / false, and a fraction where
    only an integer may stand, as in ``id``), any array or object, and a backslash
    before a key's closing quote (an escaped key, or an escaped quote before a colon,
    which could hide one). ``check`` matches those or a key that is not a field, the
    ``exact`` alternatives first, so that :meth:`polars.Expr.str.extract_all` gives
    every match of both in one pass. A key's closing quote is the only unescaped quote
    followed by a colon, so text inside a string cannot pass for a key.
    """
    ws = "[ \\t\\r]*"

    def one_of(names: list[str]) -> str:
        return "(?:" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + ")"

    def other_than(words: list[str]) -> str:
        # A trie of the words, each node also matching every way out of it: the strings
        # without a quote that are none of the words.
        children: dict[str, list[str]] = {}
        for word in words:
            if word:
                children.setdefault(word[0], []).append(word[1:])
        ways = [] if "" in words else [""]
        ways.append(f'[^"{re.escape("".join(sorted(children)))}][^"]*')
        ways += [re.escape(c) + other_than(rest) for c, rest in sorted(children.items())]
        return "(?:" + "|".join(ways) + ")"

    text_only = [n for n in FIELD_NAMES if FIELD_TYPES[n] == DATE or n in TEXT_ONLY]
    integer_text = [n for n in FIELD_NAMES if FIELD_TYPES[n] == TEXT and n not in TEXT_ONLY]
    numbers = [n for n in FIELD_NAMES if FIELD_TYPES[n] == NUMBER]
    exact = "|".join(
        [
            f'"{one_of(text_only)}"{ws}:{ws}[^"n \\t\\r]',
            f'"{one_of(integer_text)}"{ws}:{ws}(?:[^"n \\t\\r0-9-]|-?[0-9]+[.eE])',
            f'"{one_of(numbers)}"{ws}:{ws}[^"n \\t\\r0-9-]',
            f'"[^"]*"{ws}:{ws}[\\[{{]',
            f'\\\\"?[^"]*"{ws}:',
        ]
    )
    return exact, f'{exact}|"{other_than(list(FIELD_NAMES))}"{ws}:'


_JSON_EXACT, _JSON_CHECK = _json_patterns()
_JSON_EXACT_TOKEN = re.compile(_JSON_EXACT)


def _read_jsonl(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    schema = {name: pl.String for name in FIELD_NAMES}
    source: Path | bytes = path
    with path.open("rb") as fh:
        if fh.read(len(_BOM)) == _BOM:
            source = path.read_bytes()[len(_BOM) :]  # polars refuses a byte-order mark
    # One regex pass over the lines decides the path: polars' text schema would write a
    # number, true/false or an array as text, and it drops the keys that are not fields.
    try:
        found = (
            _lines(source)
            .select(pl.col("line").str.extract_all(_JSON_CHECK).explode().drop_nulls().unique())
            .collect(engine="streaming")  # in parallel, without holding every line
            .to_series()
            .to_list()
        )
        if any(_JSON_EXACT_TOKEN.match(t) or "\\" in t for t in found):
            return _read_jsonl_python(path)  # it reports each by line, as online
        frame = pl.read_ndjson(source, schema=schema)
    except pl.exceptions.PolarsError:
        return _read_jsonl_python(path)
    unknown = sorted({key[1 : key.rindex('"')] for key in found})  # each '"KEY":'
    return frame.with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("__row")
    ), errors_frame([_unknown_key(k) for k in unknown])


def _unknown_key(key: str) -> Problem:
    return Problem(0, None, key, "", f"unknown field '{key}'{suggest(key, FIELD_NAMES)}: ignored")


def _read_jsonl_python(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    problems: list[Problem] = []
    records: list[dict[str, str | None]] = []
    numbers: list[int] = []
    unknown: set[str] = set()
    row = 0
    with path.open("rb") as fh:
        for line_number, raw in enumerate(fh, 1):
            if line_number == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            line = raw.decode("utf-8", errors="surrogateescape")
            if not line.strip():
                continue
            row += 1
            where = f"line {line_number}"
            try:
                obj = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                detail = _not_unicode(line)
                message = f"{where}: not valid JSON: {exc.msg} at column {exc.colno}"
                if "\r" in line.rstrip("\r\n"):  # JSON text holds no raw CR
                    message += " (a CR inside the line: JSON lines end with LF or CRLF)"
                problems.append(
                    Problem(
                        row,
                        None,
                        "(row)",
                        _shown(line.strip())[:200],
                        f"{where}: not UTF-8 text ({detail})" if detail else message,
                    )
                )
                continue
            if not isinstance(obj, dict):
                problems.append(
                    Problem(
                        row,
                        None,
                        "(row)",
                        _shown(line.strip())[:200],
                        f"{where}: expected a JSON object",
                    )
                )
                continue
            record, found = _json_record(obj, row, where)
            problems += found
            unknown.update(k for k in obj if k not in FIELD_TYPES and _not_unicode(k) is None)
            records.append(record)
            numbers.append(row)
    problems += [_unknown_key(k) for k in sorted(unknown)]
    frame = (
        pl.DataFrame(records, schema={name: pl.String for name in FIELD_NAMES})
        if records
        else pl.DataFrame(schema={name: pl.String for name in FIELD_NAMES})
    )
    return frame.with_columns(pl.Series("__row", numbers, dtype=pl.Int64)), errors_frame(problems)


def _json_record(
    obj: dict[str, Any], row: int, where: str
) -> tuple[dict[str, str | None], list[Problem]]:
    """One JSON object's fields as text, and the problems of the fields that cannot be read
    (null in the text): a value of a type the field refuses online, a key or text that is
    not UTF-8."""
    values: dict[str, str | None] = dict.fromkeys(FIELD_NAMES)
    found: list[tuple[str, str, str]] = []  # field, value shown, message
    for key, value in obj.items():
        if (detail := _not_unicode(key)) is not None:
            found.append(
                (_shown(key), _shown(_json_text(value) or ""), f"not UTF-8 text ({detail})")
            )
        elif key not in FIELD_TYPES or value is None:
            continue
        elif isinstance(value, str):
            if (detail := _not_unicode(value)) is not None:
                found.append((key, _shown(value), f"not UTF-8 text ({detail})"))
            else:
                values[key] = value
        elif (problem := type_problem(key, value)) is not None:
            found.append((key, _json_text(value) or "", problem))
        else:
            values[key] = _json_text(value)
    ident = (values["id"] or "").strip(STRIP) or None
    problems = [Problem(row, ident, f, v[:200], f"{where}: {m}") for f, v, m in found]
    return values, problems


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)


def score_file(
    pack: RulePack,
    path: str | Path,
    *,
    quotas: bool = True,
) -> BatchResult:
    """Reads and scores a file; the problems found reading join the validation problems."""
    frame, read_problems = read_declarations(path)
    return score_frame(pack, frame, quotas=quotas, row_column="__row", read_problems=read_problems)


TEXT_COLUMNS = frozenset(
    {name for name, kind in SCHEMA.items() if kind == TEXT} | {"decision_id", "rules", "reasons"}
)
"""Columns read as text whatever they look like: identifiers such as ``000101``, AWBs,
HS codes, postal codes and phone numbers lose their leading zeros as numbers."""


def read_frame(path: str | Path) -> pl.DataFrame:
    """Reads a CSV, Parquet or JSON-lines table (for decisions and outcomes files).

    :data:`TEXT_COLUMNS` are read as text; the other columns' types are inferred.

    Raises:
        NotFoundError: If the file does not exist.
        DataFormatError: If it cannot be parsed as its suffix says.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError("file not found", path=path)
    fmt = file_format(path)
    text = dict.fromkeys(TEXT_COLUMNS, pl.String)
    try:
        if fmt == "parquet":
            frame = pl.read_parquet(path)
            return frame.with_columns(
                pl.col(c).cast(pl.String) for c in frame.columns if c in TEXT_COLUMNS
            )
        if fmt == "csv":
            return pl.read_csv(path, infer_schema_length=None, schema_overrides=text)
        names = pl.scan_ndjson(path, infer_schema_length=None).collect_schema().names()
        return pl.read_ndjson(
            path,
            infer_schema_length=None,
            schema_overrides={c: t for c, t in text.items() if c in names},
        )
    except pl.exceptions.PolarsError as exc:
        raise DataFormatError(f"unreadable {fmt}: {exc}", path=path) from None


def write_frame(frame: pl.DataFrame, path: str | Path) -> Path:
    """Writes a frame as CSV, Parquet or JSON lines, by the path's suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = file_format(path)
    if fmt == "parquet":
        frame.write_parquet(path)
    elif fmt == "csv":
        frame.write_csv(path)
    else:
        frame.write_ndjson(path)
    return path


def errors_path(out: str | Path) -> Path:
    """Where the errors table of ``out`` is written: ``NAME.errors.csv`` beside it."""
    out = Path(out)
    return out.with_name(out.stem + ".errors.csv")
