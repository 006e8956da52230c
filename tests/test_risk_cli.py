"""``customs-vision risk generate | score | check | decide | report`` and ``bench risk``."""

from __future__ import annotations

import json

import polars as pl

import cv.cli.bench_risk  # noqa: F401  registers `bench risk` until cv/cli/bench.py imports it
from cv.cli import main
from cv.datasets.declarations import clean_declaration
from cv.models.risk.pack import DEFAULT_PACK


def test_generate_score_and_report(tmp_path, capsys):
    data = tmp_path / "decl.parquet"
    assert main(["risk", "generate", "--out", str(data), "--n", "2000", "--seed", "4"]) == 0
    out = tmp_path / "scored.csv"
    assert main(["risk", "score", str(data), "--out", str(out)]) == 0
    printed = capsys.readouterr().err
    assert "scored 2000" in printed and "rejected rows 0" in printed
    decisions = pl.read_csv(out)
    assert decisions.columns == [
        "row",
        "id",
        "lane",
        "score",
        "random",
        "topped_up",
        "rules",
        "reasons",
        "action",
    ]
    assert (tmp_path / "scored.errors.csv").exists()
    truth = pl.read_csv(tmp_path / "decl.truth.csv")
    joined = decisions.join(truth, on="id").filter(pl.col("planted").is_not_null())
    assert (
        joined.filter(
            ~pl.col("rules").fill_null("").str.contains(pl.col("planted"), literal=True)
        ).height
        == 0
    )
    # officers inspect every red declaration; planted ones are finds
    red = decisions.join(truth, on="id").filter(pl.col("lane") == "red")
    outcomes = tmp_path / "outcomes.csv"
    red.select(
        pl.col("id").alias("decision_id"),
        pl.col("planted").is_not_null().alias("found"),
        pl.col("planted").alias("what"),
    ).write_csv(outcomes)
    report = tmp_path / "report.md"
    assert (
        main(
            [
                "risk",
                "report",
                "--decisions",
                str(out),
                "--outcomes",
                str(outcomes),
                "--pack",
                str(DEFAULT_PACK),
                "--out",
                str(report),
            ]
        )
        == 0
    )
    text = report.read_text(encoding="utf-8")
    assert "| pccc-stolen |" in text and "Random compliance sample" in text
    assert json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))["decisions"] == 2000


def test_score_reports_bad_rows_and_scores_the_rest(tmp_path, capsys):
    path = tmp_path / "d.csv"
    rows = [
        clean_declaration(id="A"),
        clean_declaration(id="B", value="abc"),
        clean_declaration(id="C", currency="XYZ"),
    ]
    pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String)).write_csv(path)
    out = tmp_path / "o.jsonl"
    assert main(["risk", "score", str(path), "--out", str(out), "--no-quotas"]) == 0
    assert "rejected rows 2" in capsys.readouterr().err
    assert [json.loads(x)["id"] for x in out.read_text(encoding="utf-8").splitlines()] == ["A"]
    errors = pl.read_csv(tmp_path / "o.errors.csv")
    assert errors.select("row", "id", "field").rows() == [
        (2, "B", "value"),
        (2, "B", "value"),
        (3, "C", "currency"),
    ]


def test_check_prints_the_rules_or_refuses_with_file_line_column(tmp_path, capsys):
    assert main(["risk", "check", str(DEFAULT_PACK)]) == 0
    assert "pack is valid" in capsys.readouterr().err
    bad = tmp_path / "pack.yaml"
    bad.write_text(
        'id: x\nversion: "1"\nrules:\n  - id: a\n    reason: r\n    lane: red\n    when: totl_usd > 1\n',
        encoding="utf-8",
    )
    assert main(["risk", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:7:11: rules[0].when: unknown field 'totl_usd'" in err.replace("\n", "")


def test_decide_prints_json(capsys):
    record = json.dumps(clean_declaration(id="J1", value=300))
    assert main(["risk", "decide", record]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["lane"] == "yellow" and decision["fired"][0]["id"] == "list-over-deminimis"
    assert (
        main(
            [
                "risk",
                "decide",
                json.dumps({"id": "J2", "kind": "list", "value": -1, "currency": "USD"}),
            ]
        )
        == 4
    )


def test_bench_risk_runs_on_a_small_sample(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = [
        "bench",
        "risk",
        "--batch",
        "5000",
        "--online",
        "300",
        "--baseline",
        "200",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["batch_declarations"] == 5000 and figures["online_p99_ms"] > 0
    assert figures["baseline_rules_translated"] >= 20 and figures["baseline_agreement"] > 0.9
    assert "declarations/s" in capsys.readouterr().err
