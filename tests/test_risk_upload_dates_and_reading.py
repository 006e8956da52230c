"""The risk engine's batch side, through the CLI, the HTTP API and the engine.

* A. the server's batch upload decides a file as ``risk score --no-quotas`` does:
  its aggregations are taken over the whole file plus the stored history; its
  decisions are stored in bulk, all or none;
* B. validity dates: a rule or a pack that ends before it starts is refused at
  load; ``risk check`` and ``PUT /v1/risk/pack`` refuse a pack not in force today;
  a declaration arriving outside the pack's dates is not decided, in both engines;
* C. ``risk report`` keeps zero-padded ids (``000101``) as text, so outcomes join;
* D. a row that is not UTF-8 text is a problem of that row, the rest is scored;
  ``risk decide @missing.json`` is a not-found error naming the file.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
import server_helpers as h
from fastapi.testclient import TestClient

from cv.cli import main
from cv.datasets.declarations import clean_declaration, generate_declarations, write_declarations
from cv.models.risk.batch import errors_path, read_frame, score_frame
from cv.models.risk.declaration import FIELD_NAMES, DeclarationError, normalize_frame
from cv.models.risk.engine import Engine
from cv.models.risk.history import IN_CHUNK, SqlHistory
from cv.models.risk.pack import (
    DEFAULT_PACK,
    PackNotInForce,
    RulePackError,
    load_pack,
    load_pack_text,
)

DEFAULT = load_pack(DEFAULT_PACK)

DATED_PACK = """\
id: dated
version: "1"
{dates}rates: {{USD: 1.0}}
rules:
  - id: over-100
    reason: Worth more than USD 100.
    when: total_usd > 100
    lane: red
    score: 10
"""


def dated_pack(start: str | None = None, end: str | None = None) -> str:
    dates = "".join(
        f"{key}: {value}\n" for key, value in (("valid_from", start), ("valid_to", end)) if value
    )
    return DATED_PACK.format(dates=dates)


def write_csv(records: list[dict], path: Path) -> Path:
    """Declarations as a CSV of text, as a risk analyst's export holds them."""
    frame = pl.DataFrame(
        {
            name: [None if r.get(name) is None else str(r[name]) for r in records]
            for name in FIELD_NAMES
        },
        schema=dict.fromkeys(FIELD_NAMES, pl.String),
    )
    frame.write_csv(path)
    return path


def split_parts(*ids: str, awb: str = "AWB-SPLIT", **changes) -> list[dict]:
    """List-clearance parts of one AWB, USD 105 each (goods 100 + shipping 5): each under
    the USD 150 de minimis, two together over it."""
    return [clean_declaration(id=i, awb=awb, value=100, **changes) for i in ids]


@pytest.fixture
def server(tmp_path):
    """A fresh server (its own SQLite database) with no X-ray model: the risk routes only."""
    from cv.inference_server.app import create_app

    app = create_app(h.server_settings(tmp_path / "server", tmp_path / "no-model"))
    with TestClient(app) as client:
        yield client, h.make_tokens(app)


def upload(client, tokens, name: str, data: bytes):
    return client.post(
        "/v1/risk/declarations/batch",
        files={"file": (name, data, "application/octet-stream")},
        headers=tokens["reader"],
    )


def risk_score(path: Path, out: Path, *extra: str) -> tuple[dict[str, dict], pl.DataFrame]:
    """``customs-vision risk score`` without quotas: decisions by id, and the errors table."""
    assert main(["risk", "score", str(path), "--out", str(out), "--no-quotas", *extra]) == 0
    decisions = {r["id"]: r for r in read_frame(out).iter_rows(named=True)}
    return decisions, pl.read_csv(errors_path(out), infer_schema=False)


def assert_same_decisions(body: dict, decisions: dict[str, dict]) -> None:
    online = {d["declaration_id"]: d for d in body["decisions"]}
    assert set(online) == set(decisions)
    for ident, d in online.items():
        b = decisions[ident]
        assert (d["lane"], d["score"], d["random"]) == (b["lane"], b["score"], b["random"]), ident
        assert ";".join(f["id"] for f in d["fired"]) == (b["rules"] or ""), ident
        assert "; ".join(d["reasons"]) == b["reasons"], ident


# --------------------------------------------------------------------------- A: upload = risk score


def test_an_upload_selects_every_part_of_a_split_consignment_as_risk_score_does(server, tmp_path):
    client, tokens = server
    path = write_csv(split_parts("S1", "S2"), tmp_path / "split.csv")
    r = upload(client, tokens, "split.csv", path.read_bytes())
    assert r.status_code == 200, r.text
    body = r.json()
    decisions, errors = risk_score(path, tmp_path / "scored.csv")
    assert_same_decisions(body, decisions)
    # The first part is selected too: the sum over the AWB counts the whole file.
    for d in body["decisions"]:
        assert d["lane"] == "yellow" and "split-same-awb" in [f["id"] for f in d["fired"]]
    assert body["errors"] == [] and errors.height == 0
    stored = client.get("/v1/risk/declarations/S1", headers=tokens["reader"]).json()
    assert stored["lane"] == "yellow"


def test_a_generated_file_gets_the_same_lanes_and_reasons_from_both(server, tmp_path):
    client, tokens = server
    frame = generate_declarations(400, seed=11, violation_rate=0.3)
    path, _ = write_declarations(frame, tmp_path / "generated.csv")
    body = upload(client, tokens, path.name, path.read_bytes()).json()
    decisions, errors = risk_score(path, tmp_path / "scored.csv")
    assert_same_decisions(body, decisions)
    assert [(e["row"], e["field"]) for e in body["errors"]] == [
        (int(row), field) for row, field in errors.select("row", "field").iter_rows()
    ]
    fired = {rule for d in decisions.values() for rule in (d["rules"] or "").split(";")}
    assert any(rule.startswith("split-") for rule in fired)  # aggregations were exercised


def test_an_upload_stores_its_decisions_in_bulk_not_row_by_row(server, tmp_path):
    import sqlalchemy as sa

    client, tokens = server
    n = 2 * IN_CHUNK + 1
    path, _ = write_declarations(generate_declarations(n, seed=12), tmp_path / "many.csv")
    inserts = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO risk_decisions"):
            inserts.append(statement)

    history = client.app.state.services.risk.engine.history
    sa.event.listen(history.engine, "before_cursor_execute", count)
    try:
        body = upload(client, tokens, path.name, path.read_bytes()).json()
    finally:
        sa.event.remove(history.engine, "before_cursor_execute", count)
    assert body["summary"]["scored"] == n and body["errors"] == []
    assert len(inserts) <= 3  # a statement per chunk of IN_CHUNK rows, not one per row
    last = body["decisions"][-1]
    stored = client.get(f"/v1/risk/declarations/{last['declaration_id']}", headers=tokens["reader"])
    assert stored.json()["lane"] == last["lane"]


def test_a_bulk_write_of_decisions_that_fails_stores_none_and_loses_none(database_url):
    import sqlalchemy as sa

    store = SqlHistory(database_url)
    red = Engine(DEFAULT).decide(
        clean_declaration("express", id="X", pccc="P100000000001"), remember=False
    )
    store.record_decisions(replace(red, declaration_id=f"D{i}") for i in range(2 * IN_CHUNK))
    before = store.decisions_frame().sort("id")
    again = [replace(red, declaration_id=f"D{i}", lane="green") for i in range(2 * IN_CHUNK)]
    again[IN_CHUNK + 3] = replace(red, declaration_id="BAD", lane=None)  # the database refuses it
    with pytest.raises(sa.exc.IntegrityError):
        store.record_decisions(again)
    # the first chunk's replacements are rolled back with the rest
    assert store.decisions_frame().sort("id").equals(before)
    store.engine.dispose()


def test_an_upload_counts_the_stored_history_as_risk_score_counts_a_prior(database_url, tmp_path):
    from cv.inference_server.risk import RiskService

    first, second = split_parts("H1", "H2")
    service = RiskService.open(database_url)
    try:
        alone = service.decide(first)  # USD 105 on the AWB so far: under the de minimis
        assert "split-same-awb" not in [f.id for f in alone.fired]
        path = write_csv([second], tmp_path / "second.csv")
        outcome = service.decide_batch(path)
        [(row, decision)] = outcome.decisions
        assert row == 1 and "split-same-awb" in [f.id for f in decision.fired]
        # The batch engine, given the stored declaration as its prior, decides the same.
        prior, _ = normalize_frame(
            pl.read_csv(write_csv([first], tmp_path / "first.csv"), infer_schema=False),
            rates=DEFAULT.rates,
        )
        batch = score_frame(
            DEFAULT, pl.read_csv(path, infer_schema=False), prior=prior, quotas=False
        )
        assert batch.decisions.get_column("lane").to_list() == [decision.lane]
        assert service.decision("H2") == decision
    finally:
        service.close()


# --------------------------------------------------------------------------- B: validity dates


def test_a_rule_that_ends_before_it_starts_is_refused_naming_the_rule(tmp_path):
    text = dated_pack() + (
        "  - id: late-rule\n"
        "    reason: Never fires.\n"
        "    when: total_usd > 1\n"
        "    score: 5\n"
        "    valid_from: 2026-03-01\n"
        "    valid_to: 2026-02-01\n"
    )
    with pytest.raises(RulePackError) as err:
        load_pack_text(text, path=tmp_path / "pack.yaml")
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'pack.yaml'}:15:15: rules[1].valid_to:")
    assert "rule 'late-rule' ends (2026-02-01) before it starts (valid_from 2026-03-01)" in message

    with pytest.raises(RulePackError) as err:
        load_pack_text(dated_pack("2026-01-01", "2025-01-01"), path=tmp_path / "pack.yaml")
    assert err.value.field == "valid_to" and "(2025-01-01) before it starts" in str(err.value)


def test_risk_check_reports_the_window_against_today(tmp_path, capsys):
    expired = tmp_path / "expired.yaml"
    expired.write_text(dated_pack("2019-01-01", "2019-12-31"), encoding="utf-8")
    assert main(["risk", "check", str(expired)]) == 2
    printed = capsys.readouterr().err
    assert "valid from 2019-01-01 to 2019-12-31" in printed
    assert "expired on 2019-12-31" in printed and "pack is valid" not in printed
    assert main(["risk", "check", str(expired), "--future"]) == 2  # expired all the same

    future = tmp_path / "future.yaml"
    future.write_text(dated_pack("2099-01-01"), encoding="utf-8")
    assert main(["risk", "check", str(future)]) == 2
    assert "it starts on 2099-01-01" in capsys.readouterr().err
    assert main(["risk", "check", str(future), "--future"]) == 0
    assert "not in force until 2099-01-01" in capsys.readouterr().err

    assert main(["risk", "check", str(DEFAULT_PACK)]) == 0
    assert "pack is valid and in force today" in capsys.readouterr().err


def test_a_declaration_outside_the_packs_dates_is_not_decided_in_either_engine(tmp_path):
    path = tmp_path / "pack.yaml"
    path.write_text(dated_pack("2019-01-01", "2019-12-31"), encoding="utf-8")
    expired = load_pack(path)
    record = clean_declaration(id="LATE", value=500)  # arrives 2026-03-05
    with pytest.raises(DeclarationError) as err:
        Engine(expired).decide(record)
    [problem] = err.value.problems
    assert (problem.field, problem.value) == ("arrival_date", "2026-03-05")
    assert "rule pack dated@1 is valid from 2019-01-01 to 2019-12-31" in problem.message
    undated = clean_declaration(id="UNDATED", value=500, arrival_date=None)
    assert Engine(expired).decide(undated).lane == "red"  # no date: the rules still apply

    frame = pl.read_csv(write_csv([record, undated], tmp_path / "d.csv"), infer_schema=False)
    result = score_frame(expired, frame, quotas=False)
    assert result.decisions.get_column("id").to_list() == ["UNDATED"]
    assert result.errors.rows() == [(1, "LATE", "arrival_date", "2026-03-05", problem.message)]
    # Loading is fine (re-scoring history with its own pack); activating it is not.
    engine = Engine(DEFAULT)
    with pytest.raises(PackNotInForce):
        engine.load_pack(path)
    assert engine.pack is DEFAULT


def test_put_refuses_a_pack_not_in_force_today_unless_staged_for_a_future_date(server):
    client, tokens = server
    admin = tokens["admin"]
    before = client.get("/v1/risk/pack", headers=admin).json()["label"]
    r = client.put("/v1/risk/pack", content=dated_pack("2019-01-01", "2019-12-31"), headers=admin)
    assert r.status_code == 422
    body = r.json()
    assert body["field"] == "valid_to" and "expired on 2019-12-31" in body["detail"]
    assert client.get("/v1/risk/pack", headers=admin).json()["label"] == before

    future = dated_pack("2099-01-01")
    r = client.put("/v1/risk/pack", content=future, headers=admin)
    assert r.status_code == 422 and r.json()["field"] == "valid_from"
    assert "starts on 2099-01-01" in r.json()["detail"]
    r = client.put("/v1/risk/pack?future=true", content=future, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["in_force"] is False and r.json()["valid_from"] == "2099-01-01"
    # Staged: a declaration arriving before its first day is refused, naming the dates.
    record = clean_declaration(id="EARLY", value=500)
    r = client.post("/v1/risk/declarations", json=record, headers=tokens["reader"])
    assert r.status_code == 422 and r.json()["field"] == "arrival_date"
    assert "valid from 2099-01-01" in r.json()["problems"][0]["message"]


def test_a_stored_pack_that_has_expired_gives_way_to_the_file_pack(tmp_path):
    from cv.inference_server.risk import RiskService

    url = f"sqlite:///{tmp_path / 'risk.db'}"
    service = RiskService.open(url)
    text = dated_pack("2019-01-01", "2019-12-31")
    service.pack_log.add(load_pack_text(text, path=DEFAULT_PACK), text=text, actor="test")
    service.close()
    service = RiskService.open(url)
    try:
        assert service.pack.label == DEFAULT.label
    finally:
        service.close()


# --------------------------------------------------------------------------- C: ids stay text


def test_report_joins_the_outcomes_of_zero_padded_ids(tmp_path, capsys):
    records = [
        clean_declaration(id="000101", value=500),  # over the de minimis: yellow
        clean_declaration(id="000102"),
    ]
    decisions_path = tmp_path / "decisions.csv"
    decisions, _ = risk_score(write_csv(records, tmp_path / "d.csv"), decisions_path)
    assert set(decisions) == {"000101", "000102"}
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text("decision_id,found,what\n000101,true,undeclared goods\n", encoding="utf-8")
    report = tmp_path / "report.md"
    args = ["--decisions", str(decisions_path), "--outcomes", str(outcomes), "--out", str(report)]
    assert main(["risk", "report", *args]) == 0
    result = json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))
    assert result["overall"] == {"inspected": 1, "finds": 1, "hit_rate": 1.0}
    rules = {r["rule"]: r for r in result["rules"]}
    assert rules["list-over-deminimis"]["finds"] == 1


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_identifier_columns_are_read_as_text(tmp_path, suffix):
    frame = pl.DataFrame(
        {
            "id": ["000101"],
            "awb": ["0012345"],
            "hs_code": ["0901"],
            "consignee_postal": ["04524"],
            "score": [30],
        }
    )
    path = tmp_path / f"decisions{suffix}"
    frame.write_csv(path) if suffix == ".csv" else frame.write_ndjson(path)
    read = read_frame(path)
    assert read.row(0) == ("000101", "0012345", "0901", "04524", 30)


# --------------------------------------------------------------------------- D: bad bytes, bad paths

BAD_CSV = (
    b"id,kind,value,currency,description\n"
    b"L1,list,10,USD,caf\xe9\n"  # Latin-1, not UTF-8
    b"L2,list,10,USD,tea\n"
)
BAD_JSONL = (
    b'{"id": "J1", "kind": "list", "value": 10, "currency": "USD", "description": "caf\xe9"}\n'
    b'{"id": "J2", "kind": "list", "value": 10, "currency": "USD"}\n'
    b'\xff{"id": "J3"}\n'
)


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("bad.csv", BAD_CSV, [(1, "L1", "description")]),
        ("bad.jsonl", BAD_JSONL, [(1, "J1", "description"), (3, None, "(row)")]),
    ],
)
def test_a_row_that_is_not_utf8_is_reported_and_the_rest_is_scored(
    tmp_path, capsys, name, data, expected
):
    path = tmp_path / name
    path.write_bytes(data)
    decisions, errors = risk_score(path, tmp_path / "scored.csv")
    assert len(decisions) == 1
    assert [(int(r), i, f) for r, i, f in errors.select("row", "id", "field").iter_rows()] == (
        expected
    )
    assert all("not UTF-8 text" in m for m in errors.get_column("message"))
    assert "rejected rows" in capsys.readouterr().err


def test_an_upload_with_a_byte_that_is_not_utf8_scores_the_other_rows(server):
    client, tokens = server
    r = upload(client, tokens, "latin1.csv", BAD_CSV)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [d["declaration_id"] for d in body["decisions"]] == ["L2"]
    [error] = body["errors"]
    assert (error["row"], error["id"], error["field"]) == (1, "L1", "description")
    assert error["message"] == "line 2: not UTF-8 text (byte 0xE9)"
    assert error["value"] == "caf\ufffd"


def test_decide_at_a_missing_file_names_it(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert main(["risk", "decide", f"@{missing}"]) == 5
    assert f"{missing}: declaration file not found" in capsys.readouterr().err
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"id": "X", "description": "caf\xe9"}')
    assert main(["risk", "decide", f"@{latin}"]) == 3
    assert "not UTF-8 text (byte 0xE9" in capsys.readouterr().err
