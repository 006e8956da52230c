"""Rule packs as data: load a YAML pack and its reference files, validate it completely, compile it.

A pack is a directory (or one YAML file with files beside it)::

    id: kr-default
    version: "2026.1"
    valid_from: 2025-03-01
    rates: {file: rates.csv}               # or inline {USD: 1.0, KRW: 0.00072}
    lists:                                 # reference lists, kept apart from rules
      stolen_codes: {file: lists/stolen_codes.csv, column: code}
    tables:                                # text key -> number, e.g. the value-control file
      value_control: {file: value_control.csv, key: hs6, value: unit_price_usd}
    lanes:
      thresholds: {red: 100, yellow: 60, blue: 40}
      expected_rates: {red: 0.02, yellow: 0.04, blue: 0.01}
      random: {rate: 0.005, lane: red, seed: 2026}
      max_hits_without_selection: 20
    rules:
      - id: pccc-stolen
        reason: The personal clearance code was reported stolen.
        when: pccc in @stolen_codes
        lane: red
        score: 80
    fusion: {...}                          # see models/risk/fusion.py; default: the default pack's

Loading reads every file and checks everything before anything is used:
unknown keys, types, files, list contents, every condition's syntax and types
against the declaration schema, every regular expression in both engines.
The first fault raises :class:`RulePackError` naming file, line, column and
the field (``pack.yaml:41:18: rules[3].when: unknown field 'valeu' (did you
mean 'value'?)``). A pack that fails to load is never half-used: the engine
keeps serving the previous one (:class:`.engine.Engine`).
"""

from __future__ import annotations

import csv
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from cv.errors import ConfigError, NotFoundError

from .declaration import KINDS, SCHEMA, to_date
from .expr import (
    BOOL,
    DATE,
    EPOCH_ORDINAL,
    LIST_NUMBER,
    LIST_TEXT,
    TEXT,
    Binary,
    Call,
    ExprError,
    Field,
    In,
    IsNull,
    ListLit,
    Literal,
    Node,
    Scope,
    TextOp,
    check,
    check_regex,
    parse,
    suggest,
    text_pattern,
    walk,
)
from .fusion import FUSION_KEYS, FusionConfig, parse_fusion
from .lanes import LANES, LaneConfig
from .online import compile_online

PACKS_DIR = Path(__file__).parent / "packs"
DEFAULT_PACK = PACKS_DIR / "kr" / "pack.yaml"


class RulePackError(ConfigError):
    """A rule pack or one of its reference files is invalid.

    Args:
        message: What is wrong.
        path: The file at fault.
        line: 1-based line.
        column: 1-based column.
        field: The key path at fault (``rules[3].when``).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | PathLike[str] | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, path=path, line=line, field=field)
        self.column = column
        if path is not None and line is not None and column is not None:
            where = f"{path}:{line}:{column}"
            self.args = (f"{where}: {field}: {message}" if field else f"{where}: {message}",)


class PackNotInForce(RulePackError):
    """A valid pack whose validity dates exclude the day it would serve (activation refused)."""


# --------------------------------------------------------------------------- YAML with positions


@dataclass(slots=True)
class _Y:
    """A YAML value with where it starts (1-based) and, for scalars, its node."""

    value: Any
    line: int
    column: int
    node: Any = None


class _Source:
    """One YAML file, composed into positioned values."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text

    def error(self, y: _Y | None, where: str, message: str) -> RulePackError:
        if y is None:
            return RulePackError(message, path=self.path, field=where)
        return RulePackError(message, path=self.path, line=y.line, column=y.column, field=where)

    def load(self) -> _Y:
        try:
            root = yaml.compose(self.text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            column = mark.column + 1 if mark else None
            raise RulePackError(
                f"YAML syntax error: {exc.problem or exc}", path=self.path, line=line, column=column
            ) from None
        if root is None:
            raise RulePackError("the pack is empty", path=self.path, line=1, column=1)
        return self._convert(root, yaml.SafeLoader(""))

    def _convert(self, node: Any, loader: yaml.SafeLoader) -> _Y:
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, _Y] = {}
            keys: dict[str, _Y] = {}
            for key_node, value_node in node.value:
                key = self._convert(key_node, loader)
                if not isinstance(key.value, str):
                    raise self.error(key, "", f"keys must be text, got {key.value!r}")
                if key.value in out:
                    raise self.error(key, key.value, "duplicate key")
                keys[key.value] = key
                out[key.value] = self._convert(value_node, loader)
            y = _Y(out, line, column, node)
            y.node = (node, keys)
            return y
        if isinstance(node, yaml.SequenceNode):
            return _Y([self._convert(v, loader) for v in node.value], line, column, node)
        try:
            value = loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise RulePackError(
                f"unreadable value: {exc}", path=self.path, line=line, column=column
            ) from None
        return _Y(value, line, column, node)

    def expression_source(self, y: _Y) -> tuple[str, int, int]:
        """The condition's text as written in the file, and where it starts.

        Plain and block scalars are read from the file itself, so positions in
        a multi-line condition are exact; quoted scalars use their value.
        """
        node = y.node
        style = getattr(node, "style", None)
        start, end = node.start_mark, node.end_mark
        if style is None:
            return self.text[start.index : end.index], start.line + 1, start.column + 1
        if style in ("|", ">"):
            body_start = self.text.index("\n", start.index) + 1
            return self.text[body_start : end.index], start.line + 2, 1
        return str(y.value), start.line + 1, start.column + 2


def _plain(y: _Y) -> Any:
    """The plain Python value of a positioned YAML value."""
    if isinstance(y.value, dict):
        return {k: _plain(v) for k, v in y.value.items()}
    if isinstance(y.value, list):
        return [_plain(v) for v in y.value]
    return y.value


def _keys(
    src: _Source, y: _Y, where: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
) -> dict[str, _Y]:
    if not isinstance(y.value, dict):
        raise src.error(y, where, f"expected a mapping with keys {', '.join(allowed)}")
    _, key_marks = y.node
    for key in y.value:
        if key not in allowed:
            raise src.error(
                key_marks[key],
                f"{where}.{key}" if where else key,
                f"unknown key '{key}'{suggest(key, allowed)}; allowed: {', '.join(allowed)}",
            )
    for key in required:
        if key not in y.value:
            raise src.error(y, where or "pack", f"missing required key '{key}'")
    return y.value


def _text(src: _Source, y: _Y, where: str) -> str:
    if isinstance(y.value, bool) or not isinstance(y.value, str | int | float):
        raise src.error(y, where, f"expected text, got {type(y.value).__name__}")
    text = str(y.value).strip()
    if not text:
        raise src.error(y, where, "must not be empty")
    return text


def _number(
    src: _Source,
    y: _Y,
    where: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    integer: bool = False,
) -> float:
    v = y.value
    if (
        isinstance(v, bool)
        or not isinstance(v, int | float)
        or (integer and not isinstance(v, int))
    ):
        raise src.error(
            y, where, f"expected {'a whole number' if integer else 'a number'}, got {v!r}"
        )
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise src.error(y, where, f"must be between {lo} and {hi}, got {v!r}")
    return v


def _date(src: _Source, y: _Y, where: str) -> date:
    v = y.value
    if isinstance(v, date):
        return v
    if isinstance(v, str):
        try:
            return date.fromisoformat(v)
        except ValueError:
            pass
    raise src.error(y, where, f"expected a date YYYY-MM-DD, got {v!r}")


def _lane(src: _Source, y: _Y, where: str, *, green: bool = False) -> str:
    lane = _text(src, y, where)
    allowed = LANES if green else LANES[1:]
    if lane not in allowed:
        raise src.error(
            y, where, f"unknown lane '{lane}'{suggest(lane, allowed)}; lanes: {', '.join(allowed)}"
        )
    return lane


# --------------------------------------------------------------------------- the compiled pack


@dataclass(slots=True)
class Rule:
    """One compiled rule.

    Attributes:
        id: Unique id.
        reason: Plain-language reason shown to the officer.
        when: The condition as written.
        node: The checked tree, with the rule's kinds and validity folded in.
        lane: Lane it selects into, if any.
        score: Weight added to the score when it fires.
        select_rate: Share of hits that select (seeded draw); 1 selects every hit.
        max_hits: Hits in a row that may go unselected when sampling.
        line: Line of the rule in the pack file.
        evaluate: The online closure.
    """

    id: str
    reason: str
    when: str
    node: Node
    lane: str | None
    score: int
    select_rate: float
    max_hits: int | None
    line: int
    evaluate: Callable[[Any], Any] = field(repr=False, default=lambda r: None)


@dataclass(slots=True)
class RulePack:
    """A validated, compiled rule pack.

    Attributes:
        id: Pack id.
        version: Pack version.
        description: What the pack is for.
        valid_from: First day the pack may be activated.
        valid_to: Last day, if any.
        path: The pack file.
        sha256: Hash of the pack file and every file it names, in order.
        rates: USD per unit of each currency.
        lists: Reference lists by name (text or numbers).
        list_types: ``list[text]`` or ``list[number]`` by list name.
        tables: Reference tables by name (text key to number).
        lanes: Selectivity settings.
        rules: The rules, in file order.
        aggregates: Column name to (aggregation name, window days) used by the rules.
        fusion: How declared goods explain X-ray detections.
    """

    id: str
    version: str
    description: str
    valid_from: date | None
    valid_to: date | None
    path: Path
    sha256: str
    rates: dict[str, float]
    lists: dict[str, frozenset[Any]]
    list_types: dict[str, str]
    tables: dict[str, dict[str, float]]
    lanes: LaneConfig
    rules: list[Rule]
    aggregates: dict[str, tuple[str, int]]
    fusion: FusionConfig

    @property
    def label(self) -> str:
        """``id@version``."""
        return f"{self.id}@{self.version}"

    def is_valid_on(self, day: date) -> bool:
        """Whether the pack may be used on ``day``."""
        return self._outside(day) is None

    def _outside(self, day: date) -> str | None:
        """Where ``day`` lies outside the validity dates: ``early``, ``late``, or None (inside)."""
        if self.valid_from and day < self.valid_from:
            return "early"
        if self.valid_to and day > self.valid_to:
            return "late"
        return None

    @property
    def validity(self) -> str:
        """The validity window in words: ``valid from 2025-03-01 to 2026-02-28``."""
        start = "any date" if self.valid_from is None else self.valid_from.isoformat()
        end = "no end date" if self.valid_to is None else self.valid_to.isoformat()
        return f"valid from {start} to {end}"

    def in_force_problem(self, day: date) -> str | None:
        """Why the pack is not in force on ``day``, naming its dates; None when it is."""
        side = self._outside(day)
        if side is None:
            return None
        why = (
            f"it starts on {self.valid_from}"
            if side == "early"
            else f"it expired on {self.valid_to}"
        )
        return f"rule pack {self.label} is not in force on {day}: {why} ({self.validity})"

    def require_in_force(self, day: date, *, future: bool = False) -> None:
        """Refuses to activate a pack whose validity dates exclude ``day`` (today, usually).

        Args:
            day: The day the pack would start serving.
            future: The pack is meant for a later date: a pack not in force yet is
                accepted (declarations arriving before its ``valid_from`` are then
                refused one by one); an expired pack is refused all the same.

        Raises:
            PackNotInForce: Naming the pack's dates.
        """
        problem = self.in_force_problem(day)
        if problem is None:
            return
        if self._outside(day) == "late":
            raise PackNotInForce(problem, path=self.path, field="valid_to")
        if not future:
            hint = " (activate it as a future pack to stage it now)"
            raise PackNotInForce(problem + hint, path=self.path, field="valid_from")

    def declaration_problem(self, arrival: float | None) -> str | None:
        """Why the pack may not decide a declaration arriving on ``arrival`` (days since
        1970-01-01), or None. A declaration without an arrival date is decided, as a rule's
        own dates let it through: a missing date never hides a violation."""
        day = to_date(arrival)
        side = None if day is None else self._outside(day)
        if side is None:
            return None
        when = "before the pack starts" if side == "early" else "after the pack expired"
        return (
            f"arrival date {day} is {when}: rule pack {self.label} is {self.validity}; "
            "decide it with the pack in force on that date"
        )

    def validity_days(self) -> tuple[float | None, float | None]:
        """The first and last day of the pack's validity in days since 1970-01-01 (None: open)."""
        return (
            None if self.valid_from is None else float(self.valid_from.toordinal() - EPOCH_ORDINAL),
            None if self.valid_to is None else float(self.valid_to.toordinal() - EPOCH_ORDINAL),
        )


_TOP_KEYS = (
    "id",
    "version",
    "description",
    "valid_from",
    "valid_to",
    "rates",
    "lists",
    "tables",
    "lanes",
    "rules",
    "fusion",
)
_RULE_KEYS = (
    "id",
    "reason",
    "when",
    "lane",
    "score",
    "select_rate",
    "max_hits_without_selection",
    "kinds",
    "valid_from",
    "valid_to",
    "tags",
)


def load_pack(path: str | PathLike[str]) -> RulePack:
    """Loads, validates and compiles a rule pack.

    Args:
        path: The pack's YAML file, or a directory holding ``pack.yaml``.

    Raises:
        NotFoundError: If the pack file does not exist.
        RulePackError: On the first fault found, with file, line, column and field.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "pack.yaml"
    if not p.is_file():
        raise NotFoundError("rule pack not found", path=p)
    return load_pack_text(p.read_text(encoding="utf-8"), path=p)


def load_pack_text(text: str, *, path: str | PathLike[str]) -> RulePack:
    """Loads a pack from its YAML text (as the server receives it on PUT).

    Args:
        text: The YAML.
        path: Where it is taken to live: names in errors, and the folder that
            reference files are relative to.

    Raises:
        RulePackError: On the first fault found.
    """
    p = Path(path)
    src = _Source(p, text)
    root = src.load()
    top = _keys(src, root, "", _TOP_KEYS, ("id", "version", "rules"))
    digest = hashlib.sha256(text.encode())
    pack_id = _text(src, top["id"], "id")
    version = _text(src, top["version"], "version")
    description = _text(src, top["description"], "description") if "description" in top else ""
    valid_from = _date(src, top["valid_from"], "valid_from") if "valid_from" in top else None
    valid_to = _date(src, top["valid_to"], "valid_to") if "valid_to" in top else None
    if valid_from and valid_to and valid_to < valid_from:
        raise src.error(
            top["valid_to"],
            "valid_to",
            f"the pack ends ({valid_to}) before it starts (valid_from {valid_from})",
        )
    base = p.parent

    rates = _load_rates(src, top.get("rates"), base, digest)
    lists, list_types = _load_lists(src, top.get("lists"), base, digest)
    tables = _load_tables(src, top.get("tables"), base, digest)
    lanes = _load_lanes(src, top.get("lanes"))
    fusion = _load_fusion(src, top, default=_default_fusion_or_error)
    scope = Scope(fields=dict(SCHEMA), lists=list_types, tables=set(tables))
    rules = _load_rules(src, top["rules"], scope, lists, tables, lanes)
    aggregates: dict[str, tuple[str, int]] = {}
    for rule in rules:
        for node in walk(rule.node):
            if isinstance(node, Call) and node.agg_column:
                days = int(node.args[0].value) if node.args else 0  # type: ignore[attr-defined]
                aggregates[node.agg_column] = (node.name, days)
    return RulePack(
        id=pack_id,
        version=version,
        description=description,
        valid_from=valid_from,
        valid_to=valid_to,
        path=p,
        sha256=digest.hexdigest(),
        rates=rates,
        lists=lists,
        list_types=list_types,
        tables=tables,
        lanes=lanes,
        rules=rules,
        aggregates=aggregates,
        fusion=fusion,
    )


def _load_fusion(
    src: _Source, top: dict[str, _Y], *, default: Callable[[], FusionConfig]
) -> FusionConfig:
    """The pack's ``fusion`` section; ``default`` is called only for keys it leaves out."""
    section = _plain(top["fusion"]) if "fusion" in top else None
    complete = isinstance(section, dict) and all(key in section for key in FUSION_KEYS)
    return parse_fusion(
        section,
        default=FusionConfig() if complete else default(),
        error=lambda m, w: src.error(top.get("fusion"), f"fusion{w}", m),
    )


def _default_fusion_or_error() -> FusionConfig:
    """:func:`default_fusion`, its failures as a :class:`RulePackError` naming the default pack."""
    try:
        return default_fusion()
    except (OSError, UnicodeDecodeError, RulePackError) as exc:
        raise RulePackError(
            f"the fusion keys this pack leaves out come from the default pack, which cannot "
            f"be read: {exc}",
            path=DEFAULT_PACK,
            field="fusion",
        ) from exc


@functools.cache
def default_fusion() -> FusionConfig:
    """The default pack's ``fusion`` section, which a pack takes for the section, or any key of
    it, that it leaves out: the goods-to-classes table lives in one place, as data.

    Raises:
        OSError: If the default pack cannot be read.
        RulePackError: If its fusion section is invalid.
    """
    src = _Source(DEFAULT_PACK, DEFAULT_PACK.read_text(encoding="utf-8"))
    return _load_fusion(src, _keys(src, src.load(), "", _TOP_KEYS), default=FusionConfig)


def _file(src: _Source, y: _Y, where: str, base: Path, digest: Any) -> Path:
    name = _text(src, y, where)
    path = (base / name).resolve()
    if not path.is_file():
        raise src.error(y, where, f"file not found: {path}")
    digest.update(path.read_bytes())
    return path


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        rows = []
        for row in reader:
            if None in row:
                raise RulePackError(
                    "row has more fields than the header", path=path, line=reader.line_num
                )
            rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items()}))
    return header, rows


def _load_rates(src: _Source, y: _Y | None, base: Path, digest: Any) -> dict[str, float]:
    if y is None:
        return {"USD": 1.0}
    if isinstance(y.value, dict) and "file" in y.value:
        spec = _keys(src, y, "rates", ("file",))
        path = _file(src, spec["file"], "rates.file", base, digest)
        header, rows = _read_csv(path)
        for needed in ("currency", "usd_per_unit"):
            if needed not in header:
                raise RulePackError(f"missing column '{needed}'", path=path, line=1)
        rates = {}
        for line, row in rows:
            try:
                rate = float(row["usd_per_unit"])
            except ValueError:
                raise RulePackError(
                    f"not a number: {row['usd_per_unit']!r}",
                    path=path,
                    line=line,
                    field="usd_per_unit",
                ) from None
            if not rate > 0:
                raise RulePackError(
                    "a rate must be positive", path=path, line=line, field="usd_per_unit"
                )
            rates[row["currency"].upper()] = rate
        return rates
    if not isinstance(y.value, dict):
        raise src.error(
            y, "rates", "expected {file: rates.csv} or a mapping CURRENCY: usd_per_unit"
        )
    return {code.upper(): _number(src, v, f"rates.{code}", lo=1e-12) for code, v in y.value.items()}


def _load_lists(
    src: _Source, y: _Y | None, base: Path, digest: Any
) -> tuple[dict[str, frozenset[Any]], dict[str, str]]:
    lists: dict[str, frozenset[Any]] = {}
    types: dict[str, str] = {}
    if y is None:
        return lists, types
    if not isinstance(y.value, dict):
        raise src.error(y, "lists", "expected a mapping of list name to {file: ...}")
    for name, spec_y in y.value.items():
        where = f"lists.{name}"
        spec = _keys(src, spec_y, where, ("file", "column", "type", "description"), ("file",))
        kind = _text(src, spec["type"], f"{where}.type") if "type" in spec else "text"
        if kind not in ("text", "number"):
            raise src.error(spec["type"], f"{where}.type", "expected text or number")
        path = _file(src, spec["file"], f"{where}.file", base, digest)
        values = _list_values(src, spec, where, path)
        if kind == "number":
            numbers = []
            for line, v in values:
                try:
                    numbers.append(float(v))
                except ValueError:
                    raise RulePackError(f"not a number: {v!r}", path=path, line=line) from None
            lists[name] = frozenset(numbers)
            types[name] = LIST_NUMBER
        else:
            lists[name] = frozenset(v for _, v in values)
            types[name] = LIST_TEXT
    return lists, types


def _list_values(
    src: _Source, spec: dict[str, _Y], where: str, path: Path
) -> list[tuple[int, str]]:
    if path.suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            raise RulePackError(
                f"YAML syntax error: {exc.problem}", path=path, line=mark.line + 1 if mark else None
            ) from None
        if not isinstance(data, list) or not all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in data
        ):
            raise RulePackError("expected a YAML list of text or numbers", path=path, line=1)
        return [(0, str(v).strip()) for v in data if str(v).strip()]
    if path.suffix == ".csv":
        header, rows = _read_csv(path)
        column = (
            _text(src, spec["column"], f"{where}.column")
            if "column" in spec
            else (header[0] if header else "")
        )
        if column not in header:
            raise RulePackError(
                f"no column '{column}'{suggest(column, header)}; columns: {', '.join(header)}",
                path=path,
                line=1,
            )
        return [(line, row[column]) for line, row in rows if row[column]]
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        (i, v.strip())
        for i, v in enumerate(lines, 1)
        if v.strip() and not v.lstrip().startswith("#")
    ]


def _load_tables(
    src: _Source, y: _Y | None, base: Path, digest: Any
) -> dict[str, dict[str, float]]:
    tables: dict[str, dict[str, float]] = {}
    if y is None:
        return tables
    if not isinstance(y.value, dict):
        raise src.error(y, "tables", "expected a mapping of table name to {file, key, value}")
    for name, spec_y in y.value.items():
        where = f"tables.{name}"
        spec = _keys(
            src, spec_y, where, ("file", "key", "value", "description"), ("file", "key", "value")
        )
        path = _file(src, spec["file"], f"{where}.file", base, digest)
        key, value = (
            _text(src, spec["key"], f"{where}.key"),
            _text(src, spec["value"], f"{where}.value"),
        )
        header, rows = _read_csv(path)
        for needed, y_needed in ((key, spec["key"]), (value, spec["value"])):
            if needed not in header:
                raise src.error(
                    y_needed,
                    where,
                    f"{path.name} has no column '{needed}'{suggest(needed, header)}",
                )
        table: dict[str, float] = {}
        for line, row in rows:
            try:
                table[row[key]] = float(row[value])
            except ValueError:
                raise RulePackError(
                    f"not a number: {row[value]!r}", path=path, line=line, field=value
                ) from None
        tables[name] = table
    return tables


def _load_lanes(src: _Source, y: _Y | None) -> LaneConfig:
    if y is None:
        return LaneConfig()
    spec = _keys(
        src, y, "lanes", ("thresholds", "expected_rates", "random", "max_hits_without_selection")
    )
    thresholds: dict[str, int] = {}
    if "thresholds" in spec:
        t = _keys(src, spec["thresholds"], "lanes.thresholds", ("red", "yellow", "blue"))
        thresholds = {
            k: int(_number(src, v, f"lanes.thresholds.{k}", integer=True)) for k, v in t.items()
        }
        ordered = [thresholds[k] for k in ("blue", "yellow", "red") if k in thresholds]
        if ordered != sorted(ordered):
            raise src.error(
                spec["thresholds"],
                "lanes.thresholds",
                "thresholds must rise from blue to yellow to red",
            )
    rates: dict[str, float] = {}
    if "expected_rates" in spec:
        r = _keys(src, spec["expected_rates"], "lanes.expected_rates", ("red", "yellow", "blue"))
        rates = {
            k: float(_number(src, v, f"lanes.expected_rates.{k}", lo=0, hi=1)) for k, v in r.items()
        }
        if sum(rates.values()) > 1:
            raise src.error(
                spec["expected_rates"], "lanes.expected_rates", "rates add up to more than 1"
            )
    random_rate, random_lane, seed = 0.0, "red", 0
    if "random" in spec:
        r = _keys(src, spec["random"], "lanes.random", ("rate", "lane", "seed"))
        if "rate" in r:
            random_rate = float(_number(src, r["rate"], "lanes.random.rate", lo=0, hi=1))
        if "lane" in r:
            random_lane = _lane(src, r["lane"], "lanes.random.lane")
        if "seed" in r:
            seed = int(_number(src, r["seed"], "lanes.random.seed", integer=True))
    max_hits = None
    if "max_hits_without_selection" in spec:
        max_hits = int(
            _number(
                src,
                spec["max_hits_without_selection"],
                "lanes.max_hits_without_selection",
                lo=0,
                integer=True,
            )
        )
    return LaneConfig(thresholds, rates, random_rate, random_lane, seed, max_hits)


def _load_rules(
    src: _Source,
    y: _Y,
    scope: Scope,
    lists: dict[str, frozenset[Any]],
    tables: dict[str, dict[str, float]],
    lanes: LaneConfig,
) -> list[Rule]:
    if not isinstance(y.value, list) or not y.value:
        raise src.error(y, "rules", "expected a list of rules")
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, ry in enumerate(y.value):
        where = f"rules[{i}]"
        spec = _keys(src, ry, where, _RULE_KEYS, ("id", "reason", "when"))
        rule_id = _text(src, spec["id"], f"{where}.id")
        if rule_id in seen:
            raise src.error(
                spec["id"], f"{where}.id", f"duplicate rule id (first on line {seen[rule_id]})"
            )
        seen[rule_id] = ry.line
        reason = _text(src, spec["reason"], f"{where}.reason")
        when_y = spec["when"]
        when = _text(src, when_y, f"{where}.when")
        lane = _lane(src, spec["lane"], f"{where}.lane") if "lane" in spec else None
        score = (
            int(_number(src, spec["score"], f"{where}.score", lo=-1000, hi=1000, integer=True))
            if "score" in spec
            else 0
        )
        if lane is None and "score" not in spec:
            raise src.error(ry, where, "a rule needs a lane, a score or both")
        select_rate = (
            float(_number(src, spec["select_rate"], f"{where}.select_rate", lo=0, hi=1))
            if "select_rate" in spec
            else 1.0
        )
        max_hits = lanes.max_hits_without_selection
        if "max_hits_without_selection" in spec:
            max_hits = int(
                _number(
                    src,
                    spec["max_hits_without_selection"],
                    f"{where}.max_hits_without_selection",
                    lo=0,
                    integer=True,
                )
            )
        if "valid_from" in spec and "valid_to" in spec:
            start = _date(src, spec["valid_from"], f"{where}.valid_from")
            end = _date(src, spec["valid_to"], f"{where}.valid_to")
            if end < start:
                raise src.error(
                    spec["valid_to"],
                    f"{where}.valid_to",
                    f"rule '{rule_id}' ends ({end}) before it starts (valid_from {start}): "
                    "it would never fire",
                )
        text, line, column = src.expression_source(when_y)
        try:
            node = parse(text, line=line, column=column)
            node = _scoped(node, src, spec, where)
            node_type = check(node, scope)
            if node_type != BOOL:
                raise ExprError(
                    f"a condition must be true or false, this one is {node_type}",
                    node.line,
                    node.column,
                )
            _check_patterns(node, lists)
        except ExprError as exc:
            raise RulePackError(
                exc.message, path=src.path, line=exc.line, column=exc.column, field=f"{where}.when"
            ) from None
        rule = Rule(
            id=rule_id,
            reason=reason,
            when=when,
            node=node,
            lane=lane,
            score=score,
            select_rate=select_rate,
            max_hits=max_hits,
            line=ry.line,
        )
        rule.evaluate = compile_online(node, lists=lists, tables=tables)
        rules.append(rule)
    return rules


def _scoped(node: Node, src: _Source, spec: dict[str, _Y], where: str) -> Node:
    """Folds the rule's ``kinds`` and validity dates into its condition.

    A declaration without an arrival date is checked by every rule whatever
    its validity dates, so that a missing date never hides a violation.
    """
    line, column = node.line, node.column
    guards: list[Node] = []
    if "kinds" in spec:
        ky = spec["kinds"]
        if not isinstance(ky.value, list) or not ky.value:
            raise src.error(
                ky, f"{where}.kinds", f"expected a list of kinds from {', '.join(KINDS)}"
            )
        kinds = []
        for k in ky.value:
            name = _text(src, k, f"{where}.kinds")
            if name not in KINDS:
                raise src.error(k, f"{where}.kinds", f"unknown kind '{name}'{suggest(name, KINDS)}")
            kinds.append(Literal(k.line, k.column, value=name, kind=TEXT))
        guards.append(
            In(
                ky.line,
                ky.column,
                operand=Field(ky.line, ky.column, name="kind"),
                items=ListLit(ky.line, ky.column, items=kinds),
            )
        )
    for key, op in (("valid_from", ">="), ("valid_to", "<=")):
        if key in spec:
            day = _date(src, spec[key], f"{where}.{key}")
            y = spec[key]
            arrival = Field(y.line, y.column, name="arrival_date")
            bound = Literal(
                y.line,
                y.column,
                value=float(day.toordinal() - EPOCH_ORDINAL),
                kind=DATE,
            )
            guards.append(
                Binary(
                    y.line,
                    y.column,
                    op="or",
                    left=IsNull(
                        y.line, y.column, operand=Field(y.line, y.column, name="arrival_date")
                    ),
                    right=Binary(y.line, y.column, op=op, left=arrival, right=bound),
                )
            )
    for guard in reversed(guards):
        node = Binary(line, column, op="and", left=guard, right=node)
    return node


def _check_patterns(node: Node, lists: dict[str, frozenset[Any]]) -> None:
    """Compiles every text test's final pattern in both engines (list items included)."""
    for n in walk(node):
        if isinstance(n, TextOp) and not isinstance(n.pattern, Literal):
            values = sorted(str(v) for v in lists[n.pattern.name])  # type: ignore[union-attr]
            if values:
                regex = text_pattern(n.op, values)
                if regex is not None:
                    check_regex(regex, line=n.pattern.line, column=n.pattern.column)  # type: ignore[union-attr]


__all__ = [
    "DEFAULT_PACK",
    "PackNotInForce",
    "Rule",
    "RulePack",
    "RulePackError",
    "load_pack",
    "load_pack_text",
]
