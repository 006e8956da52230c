"""The risk engine in the server: declarations, batches, the pack, outcomes, and fusion with scans.

Everything goes through the real app (``create_app`` + ``TestClient``). The X-ray
side uses a *scripted* detector: a real ONNX graph, run by ONNX Runtime behind
the real batcher, whose output is the same for every image (a knife scoring
0.90, a gun scoring 0.30), so that the fusion's expectations can be worked out
by hand. Operating points: 0.5 for every class, so the knife alerts and the
gun is a near miss (at least half its operating point, below it).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import server_helpers as h
from fastapi.testclient import TestClient

CLASSES = ["knife", "gun", "battery"]
OPERATING_POINT = 0.5
# One anchor per object: cx, cy, w, h (input pixels of the 64-pixel network), then class scores.
SCRIPT = [
    (16.0, 20.0, 10.0, 12.0, {"knife": 0.90}),
    (44.0, 40.0, 12.0, 8.0, {"gun": 0.30}),
    (32.0, 32.0, 6.0, 6.0, {}),  # nothing here
]


def scripted_model_dir(base: Path) -> Path:
    """A model directory whose ONNX graph answers :data:`SCRIPT` for any batch of images."""
    return h.scripted_model_dir(base, SCRIPT, CLASSES, threshold=OPERATING_POINT, name="scripted")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return scripted_model_dir(tmp_path_factory.mktemp("risk-models"))


def start(tmp: Path, model_dir: Path):
    from cv.inference_server.app import create_app

    return create_app(h.server_settings(tmp, model_dir))


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_dir):
    app = start(tmp_path_factory.mktemp("risk-server"), model_dir)
    with TestClient(app) as client:
        yield client, h.make_tokens(app)


def declaration(**fields):
    """A clean express declaration worth USD 40, overridden by ``fields``."""
    record = {
        "kind": "express",
        "value": 40,
        "currency": "USD",
        "description": "clothes",
        "hs_code": "6109",
        "consignee_name": "Kim Minji",
    }
    record.update(fields)
    return record


def post_scan(client, tokens, **fields):
    r = client.post(
        "/v1/scans",
        files={"image": ("scan.png", h.png_bytes(), "image/png")},
        data=h.scan_form(**fields),
        headers=tokens["scanner"],
    )
    assert r.status_code == 201, r.text
    return r.json()


# --------------------------------------------------------------------------- one declaration


def test_one_declaration_is_decided_with_reasons_and_stored(server):
    client, tokens = server
    # USD 180 of list clearance, not shipped from the US: over the USD 150 de-minimis
    # (list-over-deminimis, yellow, +30); nothing else fires; score 30 < blue's 40.
    record = {
        "id": "D-OVER",
        "kind": "list",
        "value": 180,
        "currency": "USD",
        "pccc": "P123456789012",
        "description": "sneakers",
    }
    r = client.post("/v1/risk/declarations", json=record, headers=tokens["reader"])
    assert r.status_code == 201, r.text
    decision = r.json()
    assert decision["lane"] == "yellow" and decision["score"] == 30
    assert decision["random"] is False and decision["pack"] == "kr-default@2026.1"
    assert [f["id"] for f in decision["fired"]] == ["list-over-deminimis"]
    assert decision["fired"][0]["selected"] is True
    assert decision["reasons"][0].startswith("[list-over-deminimis] List clearance is limited")
    assert decision["reasons"][0].endswith("-> yellow")

    stored = client.get("/v1/risk/declarations/D-OVER", headers=tokens["inspector"]).json()
    assert stored == {**decision, "scans": []}
    r = client.get("/v1/risk/declarations/NOPE", headers=tokens["reader"])
    assert r.status_code == 404 and "NOPE" in r.json()["detail"]


def test_roles_of_the_risk_routes(server):
    client, tokens = server
    record = declaration(id="D-ROLE")
    assert client.post("/v1/risk/declarations", json=record).status_code == 401
    # A scanner may not declare goods: it could declare away what it detects.
    r = client.post("/v1/risk/declarations", json=record, headers=tokens["scanner"])
    assert r.status_code == 403
    assert client.put("/v1/risk/pack", content="x", headers=tokens["inspector"]).status_code == 403
    assert client.get("/v1/risk/pack.yaml", headers=tokens["reader"]).status_code == 403
    outcome = {"decision_id": "D-OVER", "found": True}
    r = client.post("/v1/risk/outcomes", json=outcome, headers=tokens["reader"])
    assert r.status_code == 403


def test_a_bad_declaration_is_a_422_naming_every_field(server):
    client, tokens = server
    record = {
        "id": "D-BAD",
        "kind": "list",
        "value": -5,
        "currency": "XYZ",
        "arrival_date": "2026-13-01",
        "quantity": "three",
        "valeu": 1,
    }
    r = client.post("/v1/risk/declarations", json=record, headers=tokens["reader"])
    assert r.status_code == 422
    body = r.json()
    problems = {}
    for p in body["problems"]:
        problems.setdefault(p["field"], p["message"])  # the first problem of each field
    assert set(problems) == {"valeu", "value", "currency", "arrival_date", "quantity"}
    assert "did you mean 'value'" in problems["valeu"]
    assert problems["value"].startswith("negative value")
    assert problems["currency"] == "unknown currency 'XYZ'"
    assert "no such day" in problems["arrival_date"]
    assert problems["quantity"].startswith("not a number")
    assert "declaration D-BAD: unknown field 'valeu'" in body["detail"]
    # Nothing of it was stored.
    assert client.get("/v1/risk/declarations/D-BAD", headers=tokens["reader"]).status_code == 404

    r = client.post("/v1/risk/declarations", json={"id": "D-NOKIND"}, headers=tokens["reader"])
    assert r.status_code == 422 and r.json()["field"] == "kind"
    r = client.post("/v1/risk/declarations", json=["not", "an", "object"], headers=tokens["reader"])
    assert r.status_code == 422


def test_declarations_posted_at_once_are_all_counted(server):
    """Concurrent requests share one engine; each declaration counts in the next ones' sums."""
    from concurrent.futures import ThreadPoolExecutor

    client, tokens = server

    def post(i):
        record = declaration(id=f"C-{i}", kind="list", awb="AWB-CONC", pccc=f"P2000000000{i:02d}")
        return client.post("/v1/risk/declarations", json=record, headers=tokens["reader"])

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(post, range(8)))
    assert [r.status_code for r in answers] == [201] * 8
    # 8 x USD 40 on the AWB already, + USD 10: the split rule sees USD 330 > 150.
    last = client.post(
        "/v1/risk/declarations",
        json=declaration(id="C-LAST", kind="list", awb="AWB-CONC", value=10, pccc="P200000000099"),
        headers=tokens["reader"],
    ).json()
    assert "split-same-awb" in [f["id"] for f in last["fired"]]
    assert last["lane"] == "yellow"


# --------------------------------------------------------------------------- batches


def upload(client, tokens, name, data):
    return client.post(
        "/v1/risk/declarations/batch",
        files={"file": (name, data, "application/octet-stream")},
        headers=tokens["reader"],
    )


def test_a_batch_scores_the_good_rows_and_lists_the_bad_ones_by_row_and_field(server):
    client, tokens = server
    csv = (
        "id,kind,value,currency,description,arrival_date,pccc\n"
        "B1,list,40,USD,socks,2026-03-01,P123456789012\n"  # row 1: clean -> green
        "B2,list,abc,USD,socks,2026-03-01,P123456789012\n"  # row 2: value not a number
        "B3,list,40,XYZ,socks,2026-03-01,P123456789012\n"  # row 3: unknown currency
        "B4,list,40,USD,socks,2026-3-1,P123456789012\n"  # row 4: malformed date
        "B5,list,180,USD,shoes,2026-03-01,P123456789012\n"  # row 5: over de-minimis -> yellow
        "B6,list,40,USD\n"  # row 6: too few fields
        "B7,list,-3,USD,socks,2026-03-01,P123456789012\n"  # row 7: negative value
    )
    r = upload(client, tokens, "today.csv", csv.encode())
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(d["row"], d["declaration_id"], d["lane"]) for d in body["decisions"]] == [
        (1, "B1", "green"),
        (5, "B5", "yellow"),
    ]
    assert [d["fired"][0]["id"] for d in body["decisions"][1:]] == ["list-over-deminimis"]
    errors = [(e["row"], e["field"]) for e in body["errors"]]
    # A bad value is reported twice by the library's validator: what is wrong with it,
    # then that the (now empty) value a list declaration needs is missing.
    assert errors == [
        (2, "value"),
        (2, "value"),
        (3, "currency"),
        (4, "arrival_date"),
        (6, "(row)"),
        (7, "value"),
        (7, "value"),
    ]
    by_row = {}
    for e in body["errors"]:
        by_row.setdefault(e["row"], e)
    assert by_row[2]["id"] == "B2" and by_row[2]["value"] == "abc"
    assert by_row[2]["message"] == "not a number"
    assert by_row[3]["message"] == "unknown currency 'XYZ'"
    assert by_row[4]["message"] == "malformed date: write YYYY-MM-DD"
    assert by_row[7]["message"] == "negative value"
    assert "expected 7 fields, got 4" in by_row[6]["message"]
    summary = body["summary"]
    assert summary["scored"] == 2 and summary["rejected_rows"] == 5 and summary["problems"] == 7
    assert summary["lanes"] == {"red": 0, "yellow": 1, "blue": 0, "green": 1}
    # The scored rows are stored like single declarations.
    stored = client.get("/v1/risk/declarations/B5", headers=tokens["reader"]).json()
    assert stored["lane"] == "yellow"
    assert client.get("/v1/risk/declarations/B2", headers=tokens["reader"]).status_code == 404


def test_batches_in_json_lines_and_parquet(server):
    import polars as pl

    client, tokens = server
    lines = [
        json.dumps(declaration(id="J1")),
        "{this is not json",
        json.dumps(declaration(id="J3", value=-1)),
        json.dumps(declaration(id="J4", colour="red")),
    ]
    body = upload(client, tokens, "feed.jsonl", "\n".join(lines).encode()).json()
    assert [(d["row"], d["declaration_id"]) for d in body["decisions"]] == [(1, "J1"), (4, "J4")]
    assert [(e["row"], e["field"]) for e in body["errors"]] == [
        (0, "colour"),  # the whole file: an unknown field, ignored
        (2, "(row)"),
        (3, "value"),  # negative
        (3, "value"),  # and so missing
    ]

    frame = pl.DataFrame(
        {
            "id": ["P1", "P2"],
            "kind": ["express", "express"],
            "value": [40.0, 25.0],
            "currency": ["USD", "EUR"],
        }
    )
    buf = io.BytesIO()
    frame.write_parquet(buf)
    body = upload(client, tokens, "feed.parquet", buf.getvalue()).json()
    assert [d["declaration_id"] for d in body["decisions"]] == ["P1", "P2"]
    assert body["errors"] == []

    r = upload(client, tokens, "feed.xlsx", b"PK\x03\x04")
    assert r.status_code == 422 and r.json()["detail"].startswith("file: unknown file type")
    r = upload(client, tokens, "broken.parquet", b"not parquet at all")
    assert r.status_code == 422 and "broken.parquet" in r.json()["detail"]
    r = upload(client, tokens, "empty.csv", b"")
    assert r.status_code == 422 and r.json()["detail"].startswith("file empty.csv")


# --------------------------------------------------------------------------- the pack


TINY_PACK = """\
id: tiny
version: "{version}"
rates: {{file: rates.csv}}
rules:
  - id: over-limit
    reason: Worth more than USD {limit}.
    when: total_usd > {limit}
    lane: red
    score: 10
"""


def test_get_the_active_pack(server):
    client, tokens = server
    pack = client.get("/v1/risk/pack", headers=tokens["reader"]).json()
    assert pack["label"] == "kr-default@2026.1" and len(pack["sha256"]) == 64
    rules = {r["id"]: r for r in pack["rules"]}
    assert rules["pccc-stolen"]["lane"] == "red" and rules["pccc-stolen"]["score"] == 80
    assert rules["pccc-stolen"]["reason"].startswith("The personal customs clearance code")
    assert all(r["reason"] for r in pack["rules"])
    assert pack["lanes"]["thresholds"] == {"red": 100, "yellow": 60, "blue": 40}
    assert pack["lists"]["stolen_codes"] >= 2
    text = client.get("/v1/risk/pack.yaml", headers=tokens["admin"]).text
    assert text.startswith("# Default Korean rule pack")


def test_a_bad_pack_is_refused_with_line_and_column_and_the_old_one_keeps_serving(
    tmp_path, model_dir
):
    app = start(tmp_path, model_dir)
    with TestClient(app) as client:
        tokens = h.make_tokens(app)
        admin = tokens["admin"]
        bad = TINY_PACK.format(version="1", limit=100).replace("total_usd >", "totl_usd >")
        r = client.put("/v1/risk/pack", content=bad, headers=admin)
        assert r.status_code == 422
        body = r.json()
        # "    when: totl_usd > 100" is line 7; the field starts after 10 characters.
        assert (body["file"], body["line"], body["column"]) == ("body", 7, 11)
        assert body["field"] == "rules[0].when"
        assert "unknown field 'totl_usd'" in body["message"]
        assert body["detail"].startswith("body:7:11: rules[0].when: unknown field")

        missing = TINY_PACK.format(version="1", limit=100).replace("rates.csv", "nope.csv")
        body = client.put("/v1/risk/pack", content=missing, headers=admin).json()
        assert (body["line"], body["column"], body["field"]) == (3, 15, "rates.file")
        assert "file not found" in body["message"]

        r = client.put("/v1/risk/pack", content="id: [unclosed", headers=admin)
        assert r.status_code == 422 and r.json()["line"] == 1

        r = client.post(
            "/v1/risk/declarations", json=declaration(id="K1", value=500), headers=admin
        )
        assert r.json()["pack"] == "kr-default@2026.1"  # the old pack still decides
        pack = client.get("/v1/risk/pack", headers=admin).json()
        assert pack["label"] == "kr-default@2026.1" and pack["activations"] == []


def test_a_good_pack_hot_swaps_and_survives_a_restart(tmp_path, model_dir):
    app = start(tmp_path, model_dir)
    with TestClient(app) as client:
        tokens = h.make_tokens(app)
        admin = tokens["admin"]
        r = client.put(
            "/v1/risk/pack", content=TINY_PACK.format(version="1", limit=100), headers=admin
        )
        assert r.status_code == 200, r.text
        assert r.json()["label"] == "tiny@1" and r.json()["rules"] == 1
        d = client.post(
            "/v1/risk/declarations", json=declaration(id="S1", value=150), headers=admin
        ).json()
        assert (d["lane"], d["pack"]) == ("red", "tiny@1")
        assert d["reasons"] == ["[over-limit] Worth more than USD 100. -> red"]

        # The same rule with a higher limit: the same goods now go green.
        r = client.put(
            "/v1/risk/pack", content=TINY_PACK.format(version="2", limit=200), headers=admin
        )
        assert r.status_code == 200
        d = client.post(
            "/v1/risk/declarations", json=declaration(id="S2", value=150), headers=admin
        ).json()
        assert (d["lane"], d["pack"], d["fired"]) == ("green", "tiny@2", [])
        pack = client.get("/v1/risk/pack", headers=admin).json()
        assert [a["label"] for a in pack["activations"]] == ["tiny@2", "tiny@1"]
        assert pack["activations"][0]["actor"] == "test-admin"

    # The activated pack is kept in the database: a restarted server serves it.
    app = start(tmp_path, model_dir)
    with TestClient(app) as client:
        admin = {"Authorization": tokens["admin"]["Authorization"]}
        assert client.get("/v1/risk/pack", headers=admin).json()["label"] == "tiny@2"
        assert client.get("/v1/risk/pack.yaml", headers=admin).text.startswith("id: tiny")


# --------------------------------------------------------------------------- outcomes


def test_outcomes_and_the_report(tmp_path, model_dir):
    app = start(tmp_path, model_dir)
    with TestClient(app) as client:
        tokens = h.make_tokens(app)
        reader, inspector = tokens["reader"], tokens["inspector"]
        over = {"kind": "list", "value": 180, "currency": "USD", "pccc": "P123456789012"}
        clean = {"kind": "list", "value": 40, "currency": "USD", "pccc": "P123456789012"}
        lanes = {}
        # A and B go yellow (over the de-minimis); C is clean; are clean but
        # drawn for the random compliance sample (their draws are below 0.5 %) -> red.
        for ident, record in (
            ("A", over),
            ("B", over),
            ("C", clean),
            ("R-42", clean),
            ("R-147", clean),
        ):
            d = client.post(
                "/v1/risk/declarations", json={"id": ident, **record}, headers=reader
            ).json()
            lanes[ident] = (d["lane"], d["random"])
        assert lanes == {
            "A": ("yellow", False),
            "B": ("yellow", False),
            "C": ("green", False),
            "R-42": ("red", True),
            "R-147": ("red", True),
        }
        for ident, found, what in (
            ("A", True, "undeclared batteries"),
            ("B", False, None),
            ("R-42", False, None),
            ("R-147", True, "knife"),
        ):
            body = {"decision_id": ident, "found": found, "what": what}
            r = client.post("/v1/risk/outcomes", json=body, headers=inspector)
            assert r.status_code == 201 and r.json() == body
        r = client.post(
            "/v1/risk/outcomes", json={"decision_id": "ZZZ", "found": True}, headers=inspector
        )
        assert r.status_code == 404 and r.json()["field"] == "decision_id"
        r = client.post("/v1/risk/outcomes", json={"decision_id": "A"}, headers=inspector)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "found"

        report = client.get("/v1/risk/report", headers=reader).json()
        assert report["decisions"] == 5
        rules = {row["rule"]: row for row in report["rules"]}
        assert rules["list-over-deminimis"] == {
            "rule": "list-over-deminimis",
            "hits": 2,
            "selected": 2,
            "inspected": 2,
            "finds": 1,
            "hit_rate": 0.5,
        }
        assert rules["pccc-stolen"]["hits"] == 0 and rules["pccc-stolen"]["hit_rate"] is None
        # Four inspected (A, B, R-42, R-147), two finds.
        assert report["overall"] == {"inspected": 4, "finds": 2, "hit_rate": 0.5}
        # The random sample: two drawn, both inspected, one find -> 50 % compliant.
        assert report["random_sample"] == {
            "drawn": 2,
            "inspected": 2,
            "finds": 1,
            "compliance_rate": 0.5,
        }


# --------------------------------------------------------------------------- fusion


def test_a_knife_in_declared_clothes_raises_the_lane_and_the_alert_names_the_declaration(server):
    client, tokens = server
    r = client.post(
        "/v1/risk/declarations",
        json=declaration(id="D-CLOTHES", awb="180-11111111"),
        headers=tokens["reader"],
    )
    assert r.json()["lane"] == "green"
    body = post_scan(
        client, tokens, kind="parcel", awb="180-11111111", scan_id="fuse-clothes", lane="belt-1"
    )
    assert body["scan"]["declaration_ref"] == "D-CLOTHES"  # the link found by AWB
    alert = body["alert"]
    # Only the knife reaches its operating point (the declaration is not high-risk, so the
    # 0.30 gun stays below the alert); a threat nothing declared explains: priority high (2).
    assert [b["category"] for b in alert["boxes"]] == ["knife"]
    assert alert["priority"] == 2 and alert["declaration_ref"] == "D-CLOTHES"
    assert alert["reasons"] == [
        "knife 0.90 >= operating point 0.50",
        "Declaration D-CLOTHES: green lane, score 0 (linked by awb 180-11111111)",
        "Threat detected: knife",
        "Not explained by the declaration ('clothes', HS 6109): knife",
    ]
    # The other direction: the declaration's lane is raised, with the X-ray's reason.
    stored = client.get("/v1/risk/declarations/D-CLOTHES", headers=tokens["reader"]).json()
    assert stored["lane"] == "red"
    assert stored["reasons"][-1] == (
        "X-ray: knife detected (0.90) that the declared goods ('clothes', HS 6109) "
        "do not explain -> red"
    )
    assert stored["scans"] == [
        {
            "scan_id": "fuse-clothes",
            "site": "ICN-T1",
            "lane": "belt-1",
            "status": "done",
            "alert": {"seq": alert["seq"], "priority": 2, "reasons": alert["reasons"]},
        }
    ]


def test_a_red_declaration_raises_the_alert_priority_and_lowers_the_bar_for_the_unexplained(
    server,
):
    client, tokens = server
    # A stolen clearance code sends it red; the knife set explains the knife, not the gun.
    d = client.post(
        "/v1/risk/declarations",
        json=declaration(
            id="D-RED", kind="list", pccc="P100000000001", description="knife set", hs_code="8211"
        ),
        headers=tokens["reader"],
    ).json()
    assert d["lane"] == "red" and "pccc-stolen" in [f["id"] for f in d["fired"]]
    body = post_scan(client, tokens, declaration_ref="D-RED", scan_id="fuse-red")
    alert = body["alert"]
    # Threats seen (high, 2) + a red declaration (two more): critical (3).
    assert alert["priority"] == 3
    # The 0.30 gun reaches half its operating point and the declaration does not explain it.
    assert sorted(b["category"] for b in alert["boxes"]) == ["gun", "knife"]
    reasons = alert["reasons"]
    assert "Declaration D-RED: red lane, score 80 (linked by declaration ref D-RED)" in reasons
    assert any(
        line.startswith("Declaration D-RED is red: The personal customs clearance code")
        for line in reasons
    )
    assert "Not explained by the declaration ('knife set', HS 8211): gun" in reasons
    assert "knife explained by declared knives and cutlery" in reasons
    assert (
        "gun 0.30 counted from half its operating point (0.25): declaration D-RED is red "
        "and does not explain it"
    ) in reasons
    stored = client.get("/v1/risk/declarations/D-RED", headers=tokens["reader"]).json()
    assert stored["lane"] == "red" and stored["reasons"][-1].startswith(
        "X-ray: gun detected (0.30)"
    )
    assert [s["scan_id"] for s in stored["scans"]] == ["fuse-red"]


def test_a_bag_links_to_a_traveller_by_bag_tag(server):
    client, tokens = server
    d = client.post(
        "/v1/risk/declarations",
        json={"id": "D-TRAV", "kind": "traveller", "bag_tag": "KE123456", "description": "gifts"},
        headers=tokens["reader"],
    ).json()
    assert d["lane"] == "green"
    alert = post_scan(client, tokens, kind="hold_bag", bag_tag="KE123456", scan_id="fuse-bag")[
        "alert"
    ]
    assert (
        "Declaration D-TRAV: green lane, score 0 (linked by bag tag KE123456)" in alert["reasons"]
    )
    stored = client.get("/v1/risk/declarations/D-TRAV", headers=tokens["reader"]).json()
    assert stored["lane"] == "red"


def test_a_scan_without_a_declaration_alerts_as_before(server):
    client, tokens = server
    alert = post_scan(client, tokens, kind="parcel", awb="999-00000000", scan_id="fuse-none")[
        "alert"
    ]
    assert alert["priority"] == 1 and alert["declaration_ref"] is None
    assert alert["reasons"] == ["knife 0.90 >= operating point 0.50"]


def test_a_near_miss_alone_alerts_only_for_a_high_risk_declaration(server):
    """The rule on its own: half the operating point, unexplained, high-risk declarations only."""
    from cv.inference_server.alerts import passing_detections
    from cv.records import Detection

    client, tokens = server
    for ident, pccc in (("N-RED", "P100000000001"), ("N-GREEN", "P123456789012")):
        r = client.post(
            "/v1/risk/declarations",
            json=declaration(id=ident, kind="list", pccc=pccc, awb=f"AWB-{ident}"),
            headers=tokens["reader"],
        )
        assert r.status_code == 201
    risk = client.app.state.services.risk
    weak_gun = [Detection(box=(1.0, 1.0, 9.0, 9.0), category="gun", class_id=1, score=0.3)]
    thresholds = dict.fromkeys(CLASSES, OPERATING_POINT)

    def fused(awb):
        return risk.fuse_scan(
            scan_id="unit",
            declaration_ref=None,
            awb=awb,
            bag_tag=None,
            detections=weak_gun,
            thresholds=thresholds,
        )

    red = fused("AWB-N-RED")
    assert red.thresholds["gun"] == 0.25 and red.thresholds["knife"] == 0.5  # no knife seen
    assert passing_detections(weak_gun, red.thresholds) == weak_gun  # it alerts
    assert red.result.decision.lane == "red" and red.priority == 3
    green = fused("AWB-N-GREEN")
    assert green.thresholds == thresholds and passing_detections(weak_gun, green.thresholds) == []
    assert green.result.decision.lane == "green" and green.priority == 1
    assert fused("AWB-UNKNOWN") is None
