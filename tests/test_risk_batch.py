"""Batch files: CSV, Parquet and JSON lines; bad rows reported with row and field, the rest scored."""

from __future__ import annotations

import polars as pl
import pytest

from cv.datasets.declarations import (
    clean_declaration,
    corrupt,
    generate_declarations,
    write_declarations,
)
from cv.errors import DataFormatError
from cv.models.risk.batch import expand, read_declarations, score_file, score_frame
from cv.models.risk.declaration import DeclarationError, normalize
from cv.models.risk.engine import Engine
from cv.models.risk.pack import DEFAULT_PACK, load_pack

PACK = load_pack(DEFAULT_PACK)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_every_format_scores_the_same(tmp_path, suffix):
    frame = generate_declarations(400, seed=5)
    path, truth = write_declarations(frame, tmp_path / f"decl{suffix}")
    assert truth is not None and pl.read_csv(truth).height == 400
    result = score_file(PACK, path)
    assert result.errors.height == 0 and result.decisions.height == 400
    reference = score_frame(PACK, frame.drop("planted"))
    assert expand(result).drop("row").equals(expand(reference).drop("row"))


def test_corrupted_csv_reports_each_bad_value_and_scores_the_rest(tmp_path):
    frame, truth = corrupt(generate_declarations(500, seed=6).drop("planted"), rate=0.05, seed=1)
    path = tmp_path / "bad.csv"
    frame.write_csv(path)
    result = score_file(PACK, path)
    errors = result.errors
    bad_rows = set(truth.get_column("row"))
    assert set(errors.get_column("row")) == bad_rows
    for row, field, message in truth.iter_rows():
        hits = errors.filter((pl.col("row") == row) & (pl.col("field") == field))
        assert hits.height >= 1, (row, field)
        assert any(message in m for m in hits.get_column("message")), (row, field, hits)
    # nothing silently dropped: every row is either scored or reported
    assert result.decisions.height + len(bad_rows) == 500
    assert set(result.decisions.get_column("row")).isdisjoint(bad_rows)


def test_unparseable_csv_rows_are_reported_with_their_row(tmp_path):
    good = clean_declaration(id="A")
    header = ",".join(good)

    def line(ident: str) -> str:
        return ",".join(str(v) for v in clean_declaration(id=ident, awb=f"AWB-{ident}").values())

    text = "\n".join([header, line("A"), line("B") + ",extra", line("C"), "D,list"]) + "\n"
    path = tmp_path / "ragged.csv"
    path.write_text(text, encoding="utf-8")
    frame, problems = read_declarations(path)
    assert frame.get_column("__row").to_list() == [1, 3]
    assert problems.select("row", "field").rows() == [(2, "(row)"), (4, "(row)")]
    n = len(good)
    assert f"line 3: expected {n} fields, got {n + 1}" in problems.get_column("message")[0]
    assert f"line 5: expected {n} fields, got 2" in problems.get_column("message")[1]
    result = score_file(PACK, path)
    assert result.decisions.get_column("id").to_list() == ["A", "C"]
    assert result.errors.select("row", "field").rows() == [(2, "(row)"), (4, "(row)")]


def test_jsonl_with_a_broken_line_and_an_unknown_key(tmp_path):
    path = tmp_path / "d.jsonl"
    import json

    lines = [
        json.dumps(clean_declaration(id="A")),
        '{"id": "B", "kind": ',
        json.dumps(dict(clean_declaration(id="C"), valeu=3)),
        json.dumps(["not", "an", "object"]),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = score_file(PACK, path)
    assert result.decisions.get_column("id").to_list() == ["A", "C"]
    rows = result.errors.select("row", "field").rows()
    assert (0, "valeu") in rows and (2, "(row)") in rows and (4, "(row)") in rows
    unknown = result.errors.filter(pl.col("field") == "valeu").get_column("message")[0]
    assert "did you mean 'value'?" in unknown


def test_duplicate_ids_and_unknown_columns_in_a_frame():
    frame = pl.DataFrame(
        [clean_declaration(id="A"), clean_declaration(id="A", awb="X"), clean_declaration(id="B")],
        infer_schema_length=None,
    ).with_columns(pl.lit(1).alias("vlaue"))
    result = score_frame(PACK, frame)
    assert result.decisions.get_column("id").to_list() == ["A", "B"]
    assert result.errors.select("row", "field", "message").rows() == [
        (0, "vlaue", "unknown column 'vlaue' (did you mean 'value'?): ignored"),
        (2, "id", "duplicate declaration id A"),
    ]


def test_online_errors_name_every_field():
    with pytest.raises(DeclarationError) as err:
        normalize(
            clean_declaration(value=-3, currency="XYZ", arrival_date="03/05/2026", colour="red"),
            rates=PACK.rates,
        )
    fields = {p.field for p in err.value.problems}
    assert fields == {"value", "currency", "arrival_date", "colour"}
    messages = " | ".join(p.message for p in err.value.problems)
    assert "negative value" in messages and "unknown currency 'XYZ'" in messages
    assert "malformed date '03/05/2026': write YYYY-MM-DD" in messages
    assert err.value.exit_code == 4
    with pytest.raises(DeclarationError, match="missing declaration id"):
        Engine(PACK).decide({"kind": "list", "value": 1, "currency": "USD"})


def test_generator_columns_follow_the_schema():
    from cv.datasets.declarations import COLUMNS
    from cv.models.risk.declaration import FIELD_NAMES

    assert COLUMNS == FIELD_NAMES


def test_unknown_file_type(tmp_path):
    path = tmp_path / "d.xlsx"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(DataFormatError, match="unknown file type"):
        read_declarations(path)


def test_prior_history_counts_in_batch_aggregations():
    prior_rows = [clean_declaration(id="P", awb="AWB-S", value=80, supplier="Other")]
    prior = pl.DataFrame(prior_rows, infer_schema_length=None)
    from cv.models.risk.declaration import normalize_frame

    prior_valid, _ = normalize_frame(prior, rates=PACK.rates)
    batch = pl.DataFrame(
        [clean_declaration(id="N", awb="AWB-S", value=80)], infer_schema_length=None
    )
    without = expand(score_frame(PACK, batch, quotas=False)).get_column("rules").to_list()
    with_prior = (
        expand(score_frame(PACK, batch, prior=prior_valid, quotas=False))
        .get_column("rules")
        .to_list()
    )
    assert without == [""] and with_prior == ["split-same-awb"]
