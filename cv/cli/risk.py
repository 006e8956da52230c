"""``customs-vision risk``: score declarations into inspection lanes with reasons.

``score`` a file of declarations with a rule pack, ``check`` a pack, ``decide``
one declaration, ``generate`` synthetic declarations with planted violations,
``report`` per-rule hits and finds from decisions and inspection outcomes.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from cv.errors import DataFormatError, NotFoundError
from cv.log import console, progress

app = typer.Typer(
    help="Declaration risk engine: score declarations into lanes, check rule packs, "
    "report per-rule hit rates.",
    no_args_is_help=True,
)

_PACK_HELP = "Rule pack: a pack.yaml or its folder (default: the built-in Korean pack)."


def _pack_path(pack: Path | None) -> Path:
    from cv.models.risk.pack import DEFAULT_PACK

    return pack if pack is not None else DEFAULT_PACK


@app.command()
def score(
    file: Path = typer.Argument(..., help="Declarations: .csv, .parquet or .jsonl."),
    out: Path = typer.Option(..., "--out", help="Decisions file (.csv, .parquet or .jsonl)."),
    pack: Path | None = typer.Option(None, "--pack", help=_PACK_HELP),
    quotas: bool = typer.Option(
        True, "--quotas/--no-quotas", help="Top lanes up to their expected rates."
    ),
) -> None:
    """Score a file of declarations: one decision per row with lane, score, rules and reasons.

    Rows with problems (unreadable, missing or mistyped fields, unknown currency,
    negative values, malformed dates) go to OUT's NAME.errors.csv with their row
    and field; every other row is scored.
    """
    from cv.models.risk.batch import (
        errors_path,
        expand,
        read_declarations,
        score_frame,
        write_frame,
    )
    from cv.models.risk.pack import load_pack

    with progress() as bar:
        task = bar.add_task("loading pack", total=4)
        rules = load_pack(_pack_path(pack))
        bar.update(task, advance=1, description="reading declarations")
        frame, read_problems = read_declarations(file)
        bar.update(task, advance=1, description=f"scoring {frame.height} declarations")
        result = score_frame(
            rules, frame, quotas=quotas, row_column="__row", read_problems=read_problems
        )
        bar.update(task, advance=1, description="writing decisions")
        write_frame(expand(result), out)
        errors = errors_path(out)
        write_frame(result.errors, errors)
        bar.update(task, advance=1, description="done")
    summary = result.summary()
    table = Table(title=f"{file.name} scored with {summary['pack']}")
    table.add_column("lane")
    table.add_column("declarations", justify="right")
    table.add_column("share", justify="right")
    table.add_column("expected", justify="right")
    for lane, count in summary["lanes"].items():
        expected = summary["expected_rates"].get(lane)
        table.add_row(
            lane,
            str(count),
            f"{summary['lane_rates'][lane]:.2%}",
            "" if expected is None else f"{expected:.2%}",
        )
    console.print(table)
    console.print(
        f"scored {summary['scored']}, random sample {summary['random']}, topped up "
        f"{summary['topped_up']}; rejected rows {summary['rejected_rows']} "
        f"({summary['problems']} problems in {errors})"
    )
    console.print(f"decisions: {out}")


@app.command()
def check(
    pack: Path = typer.Argument(..., help="The pack.yaml (or its folder) to validate."),
    future: bool = typer.Option(
        False,
        "--future",
        help="The pack is meant for a later date: one not in force yet passes "
        "(as PUT /v1/risk/pack?future=true accepts it).",
    ),
) -> None:
    """Validate a rule pack completely: syntax, fields, lists, regexes, lanes, dates (exit 2 if
    invalid).

    The pack's validity dates are checked against today, as the server's PUT
    checks them: a pack that has expired, or (without --future) is not in force
    yet, exits 2 naming its dates.
    """
    from datetime import date

    from cv.models.risk.pack import load_pack

    rules = load_pack(pack)
    table = Table(title=f"{rules.label}: {len(rules.rules)} rules")
    table.add_column("rule")
    table.add_column("lane")
    table.add_column("score", justify="right")
    table.add_column("reason")
    for rule in rules.rules:
        lane = rule.lane or ""
        if rule.select_rate < 1:
            lane += f" ({rule.select_rate:.0%})"
        table.add_row(rule.id, lane, str(rule.score), rule.reason)
    console.print(table)
    lists = ", ".join(f"{name} ({len(values)})" for name, values in rules.lists.items())
    console.print(f"lists: {lists or 'none'}")
    console.print(
        f"tables: {', '.join(f'{k} ({len(v)})' for k, v in rules.tables.items()) or 'none'}"
    )
    console.print(f"currencies: {', '.join(sorted(rules.rates))}")
    console.print(f"{rules.validity}; sha256 {rules.sha256[:16]}")
    today = date.today()
    if rules.in_force_problem(today) is None:
        console.print(f"[green]pack is valid and in force today ({today})[/]")
        return
    rules.require_in_force(today, future=future)  # raises unless it is a future pack
    console.print(
        f"[yellow]pack is valid; not in force until {rules.valid_from} (today is {today}): "
        "a future pack[/]"
    )


@app.command()
def decide(
    declaration: str = typer.Argument(..., help="One declaration as JSON, or @FILE holding it."),
    pack: Path | None = typer.Option(None, "--pack", help=_PACK_HELP),
) -> None:
    """Decide one declaration and print the decision as JSON."""
    from cv.models.risk.engine import Engine
    from cv.models.risk.pack import load_pack

    text = _read_argument(declaration)
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            f"not valid JSON: {exc.msg}", line=exc.lineno, field=f"column {exc.colno}"
        ) from None
    if not isinstance(record, dict):
        raise DataFormatError("expected one JSON object")
    decision = Engine(load_pack(_pack_path(pack))).decide(record)
    typer.echo(json.dumps(decision.to_dict(), indent=2, ensure_ascii=False))


def _read_argument(declaration: str) -> str:
    """The JSON text of ``decide``'s argument: itself, or the file ``@FILE`` names."""
    if not declaration.startswith("@"):
        return declaration
    source = Path(declaration[1:])
    if not source.is_file():
        raise NotFoundError("declaration file not found", path=source)
    try:
        return source.read_text(encoding="utf-8-sig")  # a byte-order mark is not JSON
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"not UTF-8 text (byte 0x{exc.object[exc.start]:02X} at offset {exc.start})",
            path=source,
        ) from None


@app.command()
def generate(
    out: Path = typer.Option(..., "--out", help="Declarations file (.csv, .parquet or .jsonl)."),
    n: int = typer.Option(10_000, "--n", min=1, help="Number of declarations."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generator."),
    violation_rate: float = typer.Option(
        0.05, "--violation-rate", min=0.0, max=1.0, help="Share with a planted violation."
    ),
) -> None:
    """Generate synthetic declarations with planted violations (truth in NAME.truth.csv)."""
    from cv.datasets.declarations import generate_declarations, write_declarations

    with progress() as bar:
        task = bar.add_task("generating", total=2)
        frame = generate_declarations(n, seed=seed, violation_rate=violation_rate)
        bar.update(task, advance=1, description="writing")
        path, truth = write_declarations(frame, out)
        bar.update(task, advance=1, description="done")
    planted = frame.get_column("planted").is_not_null().sum()
    console.print(
        f"{n} declarations ({planted} with a planted violation) in {path}; truth in {truth}"
    )


@app.command()
def report(
    decisions: Path = typer.Option(None, "--decisions", help="Decisions written by `risk score`."),
    outcomes: Path = typer.Option(
        None, "--outcomes", help="Outcomes CSV: decision_id, found, what."
    ),
    db: str = typer.Option(None, "--db", help="Or a history database URL (sqlite:///risk.db)."),
    pack: Path | None = typer.Option(
        None, "--pack", help="List every rule of this pack, hits or not."
    ),
    out: Path = typer.Option(
        Path("runs/risk/report.md"), "--out", help="Markdown report; JSON beside it."
    ),
) -> None:
    """Per-rule hits, selections, finds and hit rate, and the random-sample compliance rate."""
    from cv.errors import ConfigError
    from cv.models.risk.feedback import read_decisions, read_outcomes, rule_report, write_report
    from cv.models.risk.pack import load_pack

    if db:
        from cv.models.risk.history import SqlHistory

        history = SqlHistory(db)
        frame, outcome_frame = history.decisions_frame(), history.outcomes_frame()
    elif decisions is not None and outcomes is not None:
        frame = read_decisions(decisions)
        outcome_frame = read_outcomes(outcomes)
    else:
        raise ConfigError("give --decisions and --outcomes, or --db", field="report")
    rule_ids = [r.id for r in load_pack(pack).rules] if pack else None
    result = rule_report(frame, outcome_frame, rule_ids=rule_ids)
    md, js = write_report(result, out)
    table = Table(title="rules")
    for name in ("rule", "hits", "selected", "inspected", "finds", "hit rate"):
        table.add_column(name, justify="left" if name == "rule" else "right")
    for r in result.rules.iter_rows(named=True):
        rate = "n/a" if r["hit_rate"] is None else f"{r['hit_rate']:.1%}"
        table.add_row(
            r["rule"],
            str(r["hits"]),
            str(r["selected"]),
            str(r["inspected"]),
            str(r["finds"]),
            rate,
        )
    console.print(table)
    rnd = result.random
    rate = "n/a" if rnd["compliance_rate"] is None else f"{rnd['compliance_rate']:.1%}"
    console.print(
        f"random sample: {rnd['drawn']} drawn, {rnd['inspected']} inspected, compliance {rate}"
    )
    console.print(f"report: {md} and {js}")
