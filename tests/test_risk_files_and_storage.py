"""Reading declaration files as online reads a record, and storing an upload all or nothing.

* A. JSON lines: a value of a type its field refuses online (a number for an HS code,
  true / false, an array, an object, a fraction for an id) is refused in batch too, and
  the rest of the record is still validated, so the row's problems are online's;
* B. byte-order marks, blank lines, CR-only line ends and keys first seen late in a
  file are read the same by the fast and the exact readers;
* C. a pack with a complete ``fusion`` section does not read the default pack, and a
  default pack that cannot be read is a pack error naming it;
* D. an upload's declarations and decisions are written in one transaction, as upserts
  that a concurrent writer of the same declaration cannot make fail.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import pg_helpers
import polars as pl
import pytest
import server_helpers as h
from fastapi.testclient import TestClient
from risk_helpers import (
    PACK,
    clean,
)

import cv.models.risk.batch as batch
import cv.models.risk.pack as pack_module
from cv.models.risk.batch import read_declarations, score_file
from cv.models.risk.declaration import DeclarationError, normalize
from cv.models.risk.engine import Engine
from cv.models.risk.history import IN_CHUNK, SqlHistory
from cv.models.risk.pack import RulePackError, load_pack


def write_jsonl(path: Path, lines: list[str], *, prefix: bytes = b"") -> Path:
    path.write_bytes(prefix + ("\n".join(lines) + "\n").encode("utf-8"))
    return path


def online_fields(record: dict) -> set[str] | None:
    """The fields online refuses in ``record`` (None: accepted)."""
    try:
        normalize(record, rates=PACK.rates)
    except DeclarationError as err:
        return {p.field for p in err.problems}
    return None


def batch_fields(errors: pl.DataFrame) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for row, field in errors.filter(pl.col("row") > 0).select("row", "field").iter_rows():
        out.setdefault(row, set()).add(field)
    return out


@pytest.fixture
def path_taken():
    """Which JSON-lines reader ran: ``["exact"]`` when the exact (Python) reader did."""
    taken: list[str] = []
    exact = batch._read_jsonl_python

    def spy(path):
        taken.append("exact")
        return exact(path)

    with mock.patch.object(batch, "_read_jsonl_python", side_effect=spy):
        yield taken


# --------------------------------------------------------------------------- A: JSON lines


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("awb", True),
        ("consignee_postal", [4524]),
        ("consignee_phone", {"n": "010"}),
        ("hs_code", 901),
        ("supplier", True),
        ("description", 1.5),
        ("consignee_name", ["KIM"]),
        ("id", 6.5),
        ("kind", False),
        ("value", True),
        ("quantity", {"n": 1}),
        ("arrival_date", 20260301),
    ],
)
def test_a_json_value_of_a_type_online_refuses_is_refused_in_batch(
    tmp_path, path_taken, field, value
):
    record = dict(clean(id="B1"), **{field: value})
    path = write_jsonl(tmp_path / "d.jsonl", [json.dumps(clean(id="A1")), json.dumps(record)])
    result = score_file(PACK, path, quotas=False)
    assert result.decisions.get_column("id").to_list() == ["A1"]
    assert batch_fields(result.errors) == {2: online_fields(record)}
    first = result.errors.filter(pl.col("field") == field).row(0, named=True)
    assert first["message"].startswith("line 2: ") and path_taken == ["exact"]


def test_numbers_stay_where_online_takes_them_and_the_fast_path_reads_them(tmp_path, path_taken):
    record = clean(id=None, value=12.5, quantity=2, traveller_age=None)
    record["id"] = 17
    path = write_jsonl(tmp_path / "d.jsonl", [json.dumps(record), json.dumps(clean(id="B"))])
    assert online_fields(record) is None
    result = score_file(PACK, path, quotas=False)
    assert result.errors.height == 0 and result.decisions.get_column("id").to_list() == ["17", "B"]
    assert path_taken == []


def test_a_code_given_as_a_number_does_not_hide_the_rows_other_problems(tmp_path):
    record = {"id": "B4", "kind": "list", "value": "abc", "currency": "XXX", "hs_code": 901}
    path = write_jsonl(tmp_path / "d.jsonl", [json.dumps(record)])
    result = score_file(PACK, path, quotas=False)
    assert online_fields(record) == {"hs_code", "value", "currency"}
    assert batch_fields(result.errors) == {1: {"hs_code", "value", "currency"}}
    assert result.errors.select("row", "id", "field").rows()[0] == (1, "B4", "hs_code")


def test_a_row_refused_at_reading_is_not_scored_in_the_server_or_the_cli(tmp_path):
    from cv.cli import main
    from cv.inference_server.risk import RiskService

    lines = [json.dumps(clean(id="A")), json.dumps(clean(id="B", awb=True, value=-1))]
    path = write_jsonl(tmp_path / "d.jsonl", lines)
    service = RiskService.open(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        outcome = service.decide_batch(path)
    finally:
        service.close()
    assert [d.declaration_id for _, d in outcome.decisions] == ["A"]
    # the type refused at reading, then what validation finds: a negative, hence missing, value
    assert [(p.row, p.field) for p in outcome.problems] == [(2, "awb"), (2, "value"), (2, "value")]
    out = tmp_path / "scored.csv"
    assert main(["risk", "score", str(path), "--out", str(out), "--no-quotas"]) == 0
    errors = pl.read_csv(batch.errors_path(out), infer_schema=False)
    assert errors.select("row", "field").rows() == [("2", "awb"), ("2", "value"), ("2", "value")]
    assert pl.read_csv(out, infer_schema=False).get_column("id").to_list() == ["A"]


def test_a_key_written_with_an_escape_is_read_by_the_exact_reader(tmp_path, path_taken):
    escaped = json.dumps(clean(id="B", hs_code=None))[:-1] + ', "hs\\u005fcode": 901}'
    assert json.loads(escaped)["hs_code"] == 901
    path = write_jsonl(tmp_path / "d.jsonl", [json.dumps(clean(id="A")), escaped])
    result = score_file(PACK, path, quotas=False)
    assert path_taken == ["exact"]
    assert result.errors.select("row", "field").rows() == [(2, "hs_code")]


# --------------------------------------------------------------------------- B: the readers agree


def test_a_json_lines_file_with_a_byte_order_mark_keeps_its_first_row(tmp_path, path_taken):
    lines = [json.dumps(clean(id="A")), json.dumps(clean(id="B"))]
    path = write_jsonl(tmp_path / "bom.jsonl", lines, prefix=b"\xef\xbb\xbf")
    frame, problems = read_declarations(path)
    assert frame.select("__row", "id").rows() == [(1, "A"), (2, "B")] and problems.height == 0
    assert path_taken == []
    # and the exact reader, which a number in a code field sends it to
    path = write_jsonl(
        tmp_path / "bom.jsonl",
        [*lines, json.dumps(clean(id="C", hs_code=901))],
        prefix=b"\xef\xbb\xbf",
    )
    frame, problems = read_declarations(path)
    assert frame.select("__row", "id").rows() == [(1, "A"), (2, "B"), (3, "C")]
    assert problems.select("row", "field").rows() == [(3, "hs_code")] and path_taken == ["exact"]


CSV_HEADER = b"id,kind,value,currency,hs_code,description\n"


@pytest.mark.parametrize("description", [b"coffee", b'"coffee, ground"'], ids=["fast", "exact"])
def test_a_csv_with_a_byte_order_mark_scores_every_row(tmp_path, description):
    path = tmp_path / "excel.csv"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + CSV_HEADER
        + b"A,list,10,USD,0901,"
        + description
        + b"\nB,list,10,USD,0902,tea\n"
    )
    result = score_file(PACK, path, quotas=False)
    assert result.errors.height == 0 and result.decisions.get_column("id").to_list() == ["A", "B"]


@pytest.mark.parametrize("description", [b"coffee", b'"coffee, ground"'], ids=["fast", "exact"])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_blank_lines_in_a_csv_are_skipped_by_both_readers(tmp_path, description, newline):
    rows = [
        CSV_HEADER.rstrip(b"\n"),
        b"A,list,10,USD,0901," + description,
        b"",
        b"B,list,-1,USD,0902,tea",
        b"",
        b"C,list,10,USD,0903,tea",
        b"",
    ]
    path = tmp_path / "blank.csv"
    path.write_bytes(newline.join(rows))
    frame, problems = read_declarations(path)
    assert frame.select("__row", "id").rows() == [(1, "A"), (2, "B"), (3, "C")]
    assert problems.height == 0
    result = score_file(PACK, path, quotas=False)
    assert result.decisions.get_column("id").to_list() == ["A", "C"]
    assert set(result.errors.select("row", "id", "field").rows()) == {(2, "B", "value")}


def test_a_ragged_row_after_a_blank_line_names_its_real_line(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_bytes(CSV_HEADER + b"A,list,10,USD,0901,tea\n\nB,list\nC,list,10,USD,0903,tea\n")
    frame, problems = read_declarations(path)
    assert frame.select("__row", "id").rows() == [(1, "A"), (3, "C")]
    [(row, message)] = problems.select("row", "message").rows()
    assert row == 2 and message.startswith("line 4: ")


def test_a_csv_with_cr_only_line_ends_is_read(tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes(
        CSV_HEADER.replace(b"\n", b"\r") + b"A,list,10,USD,0901,tea\rB,list,10,USD,0902,tea\r"
    )
    result = score_file(PACK, path, quotas=False)
    assert result.errors.height == 0 and result.decisions.get_column("id").to_list() == ["A", "B"]


def test_an_unknown_key_first_seen_late_in_a_file_is_reported(tmp_path, path_taken):
    lines = [json.dumps({"id": f"A{i}", "kind": "list", "hs_code": "0901"}) for i in range(1500)]
    lines.append(json.dumps({"id": "Z", "kind": "list", "hs_code": "0901", "hscode": "0902"}))
    frame, problems = read_declarations(write_jsonl(tmp_path / "late.jsonl", lines))
    assert frame.height == 1501 and path_taken == []
    assert problems.select("row", "field", "message").rows() == [
        (0, "hscode", "unknown field 'hscode' (did you mean 'hs_code'?): ignored")
    ]


def test_text_that_looks_like_a_key_is_not_an_unknown_key(tmp_path, path_taken):
    record = clean(id="A", description='colour": "red', supplier="a\\b")
    frame, problems = read_declarations(write_jsonl(tmp_path / "d.jsonl", [json.dumps(record)]))
    assert problems.height == 0
    assert frame.select("description", "supplier").row(0) == ('colour": "red', "a\\b")


def test_the_cli_decides_a_json_file_with_a_byte_order_mark(tmp_path, capsys):
    from cv.cli import main

    path = tmp_path / "one.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(clean(id="BOM1")).encode())
    assert main(["risk", "decide", f"@{path}"]) == 0
    assert json.loads(capsys.readouterr().out)["declaration_id"] == "BOM1"


def test_the_server_decides_a_posted_declaration_with_a_byte_order_mark(tmp_path):
    from cv.inference_server.app import create_app

    app = create_app(h.server_settings(tmp_path / "server", tmp_path / "no-model"))
    with TestClient(app) as client:
        r = client.post(
            "/v1/risk/declarations",
            content=b"\xef\xbb\xbf" + json.dumps(clean(id="BOM2")).encode(),
            headers={**h.make_tokens(app)["reader"], "content-type": "application/json"},
        )
    assert r.status_code == 201, r.text
    assert r.json()["declaration_id"] == "BOM2"


# --------------------------------------------------------------------------- C: fusion defaults

FUSION = """\
fusion:
  min_detection_score: 0.5
  threat_lane: red
  other_lane: yellow
  personal_effects: [phone]
  explains:
    - {name: e, classes: [battery], hs: ["8507"], keywords: [battery]}
"""


def own_pack(folder: Path, fusion: str) -> Path:
    path = folder / "pack.yaml"
    path.write_text(
        'id: mine\nversion: "1"\nrates: {USD: 1.0}\nrules:\n'
        '  - {id: big, reason: big, score: 50, when: "value > 100"}\n' + fusion,
        encoding="utf-8",
    )
    return path


def test_a_complete_fusion_section_does_not_read_the_default_pack(tmp_path):
    pack_module.default_fusion.cache_clear()
    missing = tmp_path / "gone" / "pack.yaml"
    try:
        with mock.patch.object(pack_module, "DEFAULT_PACK", missing):
            pack = load_pack(own_pack(tmp_path, FUSION))
            assert pack.fusion.personal_effects == ("phone",)
            with pytest.raises(RulePackError) as err:
                load_pack(own_pack(tmp_path, "fusion: {threat_lane: red}\n"))
    finally:
        pack_module.default_fusion.cache_clear()
    assert err.value.path == str(missing) and err.value.field == "fusion"
    assert "default pack" in str(err.value) and "No such file" in str(err.value)


# --------------------------------------------------------------------------- D: storing


def refuse_decisions(engine):
    """Makes the next write of decisions fail, as a full disk would."""
    import sqlalchemy as sa

    def refuse(conn, cursor, statement, *args):
        if statement.startswith("INSERT INTO risk_decisions"):
            raise RuntimeError("disk full (injected)")

    sa.event.listen(engine, "before_cursor_execute", refuse)
    return lambda: sa.event.remove(engine, "before_cursor_execute", refuse)


def stored(history: SqlHistory) -> tuple[int, int]:
    import sqlalchemy as sa

    with history.engine.connect() as conn:
        return tuple(
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (history.declarations, history.decisions)
        )


def test_an_upload_whose_decisions_cannot_be_written_stores_nothing(database_url, tmp_path):
    from cv.datasets.declarations import generate_declarations, write_declarations
    from cv.inference_server.risk import BatchNotStored, RiskService

    service = RiskService.open(database_url)
    history = service.engine.history
    try:
        service.decide(clean(id="BEFORE"))
        path, _ = write_declarations(
            generate_declarations(2 * IN_CHUNK + 1, seed=3), tmp_path / "u.csv"
        )
        stop = refuse_decisions(history.engine)
        try:
            with pytest.raises(BatchNotStored, match="nothing stored"):
                service.decide_batch(path)
        finally:
            stop()
        assert stored(history) == (1, 1)  # the declaration decided before, alone
        # a single declaration is stored whole or not at all too
        stop = refuse_decisions(history.engine)
        try:
            with pytest.raises(RuntimeError):
                service.decide(clean(id="ALONE"))
        finally:
            stop()
        assert stored(history) == (1, 1) and history.declaration("ALONE") is None
    finally:
        service.close()


def test_an_upload_the_database_refuses_is_a_503_saying_nothing_was_stored(tmp_path):
    from cv.inference_server.app import create_app

    app = create_app(h.server_settings(tmp_path / "server", tmp_path / "no-model"))
    with TestClient(app) as client:
        tokens = h.make_tokens(app)
        history = app.state.services.risk.engine.history
        stop = refuse_decisions(history.engine)
        try:
            r = client.post(
                "/v1/risk/declarations/batch",
                files={"file": ("u.jsonl", json.dumps(clean(id="U1")).encode(), "text/plain")},
                headers=tokens["reader"],
            )
        finally:
            stop()
        assert r.status_code == 503, r.text
        assert "nothing stored" in r.json()["detail"] and "RuntimeError" in r.json()["detail"]
        assert client.get("/v1/risk/declarations/U1", headers=tokens["reader"]).status_code == 404
        assert history.declaration("U1") is None


@pytest.mark.parametrize("write", ["record_decisions", "store"])
def test_a_bulk_write_waits_for_a_concurrent_writer_of_the_same_declaration(write):
    """Another process writing one of the upload's ids (uncommitted) makes the upload's
    upsert wait, then replace it: delete-then-insert failed the whole upload there.
    PostgreSQL only: SQLite lets one writer at a time, so the race cannot happen there."""
    with pg_helpers.postgres_schema() as database_url:
        _concurrent_writer(database_url, write)


def _concurrent_writer(database_url: str, write: str) -> None:
    import sqlalchemy as sa

    upload, other = SqlHistory(database_url), SqlHistory(database_url)
    red = Engine(PACK).decide(clean("express", id="X", pccc="P100000000001"), remember=False)
    decisions = [replace(red, declaration_id=f"U{i}") for i in range(2 * IN_CHUNK + 7)]
    rows = [normalize(clean(id=f"U{i}"), rates=PACK.rates) for i in range(len(decisions))]
    green = replace(red, declaration_id="U7", lane="green")
    holding = threading.Event()

    def write_u7_slowly():
        with other.engine.begin() as conn:
            for table, row in (
                (other.declarations, {"id": "U7", "seq": 0, "data": json.dumps(rows[7])}),
                (
                    other.decisions,
                    {"id": "U7", "pack": "kr@1", "lane": "green", "score": 0, "random": False}
                    | {"rules": "", "data": json.dumps(green.to_dict())},
                ),
            ):
                conn.execute(sa.insert(table), [row])
            holding.set()
            time.sleep(0.5)  # a slow commit: the upload's write of U7 waits for it

    writer = threading.Thread(target=write_u7_slowly)
    writer.start()
    try:
        assert holding.wait(10)
        if write == "store":
            upload.store(rows, decisions)
        else:
            upload.record_decisions(decisions)
    finally:
        writer.join()
    assert stored(upload) == (len(rows) if write == "store" else 1, len(decisions))
    assert upload.decision("U7").lane == red.lane  # the later write wins
    for history in (upload, other):
        history.engine.dispose()
