"""Feedback: inspection outcomes against decisions, per-rule hit rates, random-sample compliance.

Officers record what each inspection found (:meth:`.engine.Engine.record_outcome`,
or an outcomes CSV). The report says, per rule: how many declarations it fired
on (hits), how many of those went to an inspection lane (selected), how many
were inspected with a recorded outcome, how many found something (finds) and
the hit rate (finds / inspected). The random compliance sample, drawn
independently of the rules, gives the compliance rate of the whole flow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from cv.errors import DataFormatError, NotFoundError

OUTCOME_COLUMNS = ("decision_id", "found", "what")


@dataclass(frozen=True, slots=True)
class RuleReport:
    """The per-rule table and the random-sample figures.

    Attributes:
        rules: One row per rule: rule, hits, selected, inspected, finds, hit_rate.
        decisions: Number of decisions.
        random: Random-sample figures: drawn, inspected, finds, compliance_rate.
        overall: All inspected decisions: inspected, finds, hit_rate.
    """

    rules: pl.DataFrame
    decisions: int
    random: dict[str, Any]
    overall: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "decisions": self.decisions,
            "rules": self.rules.to_dicts(),
            "random_sample": self.random,
            "overall": self.overall,
        }

    def to_markdown(self) -> str:
        """A Markdown report."""
        lines = [
            "# Risk rules: hits and finds",
            "",
            f"Decisions: {self.decisions}. Inspected with an outcome: {self.overall['inspected']}, "
            f"finds: {self.overall['finds']}, hit rate: {_pct(self.overall['hit_rate'])}.",
            "",
            f"Random compliance sample: {self.random['drawn']} drawn, {self.random['inspected']} "
            f"inspected, {self.random['finds']} finds, compliance rate "
            f"{_pct(self.random['compliance_rate'])}.",
            "",
            "| rule | hits | selected | inspected | finds | hit rate |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in self.rules.iter_rows(named=True):
            lines.append(
                f"| {r['rule']} | {r['hits']} | {r['selected']} | {r['inspected']} | "
                f"{r['finds']} | {_pct(r['hit_rate'])} |"
            )
        return "\n".join(lines) + "\n"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def rule_report(
    decisions: pl.DataFrame, outcomes: pl.DataFrame, *, rule_ids: list[str] | None = None
) -> RuleReport:
    """Builds the per-rule report.

    Args:
        decisions: ``id``, ``lane``, ``random`` and ``rules`` (fired rule ids
            joined by ``;``), as written by ``risk score`` or kept in the history.
        outcomes: ``decision_id``, ``found`` (bool), ``what``; the latest
            outcome of a decision counts.
        rule_ids: Rules to list even with no hit (the pack's rules, in order).
    """
    col = pl.col
    latest = (
        outcomes.with_row_index("__n")
        .sort("__n")
        .group_by("decision_id", maintain_order=True)
        .last()
        .select(col("decision_id").alias("id"), col("found").cast(pl.Boolean))
    )
    joined = decisions.select("id", "lane", "random", "rules").join(latest, on="id", how="left")
    per_decision = joined.with_columns(
        (col("lane") != "green").alias("selected"),
        col("found").is_not_null().alias("inspected"),
        col("found").fill_null(False).alias("find"),
    )
    exploded = (
        per_decision.with_columns(col("rules").fill_null("").str.split(";").alias("rule"))
        .explode("rule")
        .filter(col("rule") != "")
    )
    table = exploded.group_by("rule").agg(
        pl.len().alias("hits"),
        col("selected").sum().alias("selected"),
        col("inspected").sum().alias("inspected"),
        col("find").sum().alias("finds"),
    )
    if rule_ids:
        order = pl.DataFrame({"rule": rule_ids, "__order": list(range(len(rule_ids)))})
        table = (
            order.join(table, on="rule", how="full", coalesce=True)
            .sort("__order", nulls_last=True)
            .drop("__order")
        )
    else:
        table = table.sort("hits", descending=True)
    table = table.with_columns(
        [col(c).fill_null(0).cast(pl.Int64) for c in ("hits", "selected", "inspected", "finds")]
    ).with_columns(
        pl.when(col("inspected") > 0).then(col("finds") / col("inspected")).alias("hit_rate")
    )
    random = per_decision.filter(col("random"))
    r_inspected = int(random.get_column("inspected").sum())
    r_finds = int(random.get_column("find").sum())
    inspected = int(per_decision.get_column("inspected").sum())
    finds = int(per_decision.get_column("find").sum())
    return RuleReport(
        rules=table,
        decisions=decisions.height,
        random={
            "drawn": random.height,
            "inspected": r_inspected,
            "finds": r_finds,
            "compliance_rate": (1 - r_finds / r_inspected) if r_inspected else None,
        },
        overall={
            "inspected": inspected,
            "finds": finds,
            "hit_rate": finds / inspected if inspected else None,
        },
    )


def read_outcomes(path: str | Path) -> pl.DataFrame:
    """Reads an outcomes CSV: ``decision_id``, ``found`` (true/false, yes/no, 1/0), ``what``.

    Raises:
        NotFoundError: If the file does not exist.
        DataFormatError: On a missing column or an unreadable ``found``, with the row.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError("outcomes file not found", path=path)
    frame = pl.read_csv(path, infer_schema=False)
    for name in ("decision_id", "found"):
        if name not in frame.columns:
            raise DataFormatError(f"missing column '{name}'", path=path, line=1)
    words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    found = frame.get_column("found").str.strip_chars().str.to_lowercase()
    parsed = found.replace_strict(words, default=None, return_dtype=pl.Boolean)
    bad = frame.with_row_index("__i").filter(parsed.is_null())
    if bad.height:
        first = bad.row(0, named=True)
        raise DataFormatError(
            f"found must be true or false, got {first['found']!r}",
            path=path,
            line=int(first["__i"]) + 2,
            field="found",
        )
    what = (
        frame.get_column("what")
        if "what" in frame.columns
        else pl.Series("what", [None] * frame.height, dtype=pl.String)
    )
    return pl.DataFrame(
        {"decision_id": frame.get_column("decision_id"), "found": parsed, "what": what}
    )


def read_decisions(path: str | Path) -> pl.DataFrame:
    """Reads a decisions file written by ``risk score`` (CSV, Parquet or JSON lines).

    Raises:
        DataFormatError: If a column the report needs is missing.
    """
    from .batch import read_frame

    frame = read_frame(path)
    for name in ("id", "lane", "random", "rules"):
        if name not in frame.columns:
            raise DataFormatError(
                f"missing column '{name}': not a decisions file", path=path, line=1
            )
    return frame.with_columns(
        pl.col("id").cast(pl.String),
        pl.col("random")
        .cast(pl.String)
        .str.to_lowercase()
        .is_in(pl.Series(["true", "1"]).implode()),
        pl.col("rules").cast(pl.String).fill_null(""),
    )


def write_report(report: RuleReport, out: str | Path) -> tuple[Path, Path]:
    """Writes ``out`` as Markdown and the same path with ``.json`` as JSON."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    md = out if out.suffix == ".md" else out.with_suffix(".md")
    md.write_text(report.to_markdown(), encoding="utf-8")
    js = md.with_suffix(".json")
    js.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    return md, js
