"""The server core on a real PostgreSQL (``CV_TEST_POSTGRES_URL``, set by ``.ci/run``).

Without the variable these tests skip with the reason shown, except under
``CI=true``, where a missing database is a failure: CI must test PostgreSQL.
"""

from __future__ import annotations

import pg_helpers
import pytest
import server_helpers as h
from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def pg_url():
    with pg_helpers.postgres_schema() as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory, pg_url):
    from cv.inference_server.app import create_app

    tmp = tmp_path_factory.mktemp("pg")
    model = h.make_tiny_model_dir(tmp / "models", name="pg", thresholds=h.ALERT_ALWAYS)
    app = create_app(h.server_settings(tmp, model, database_url=pg_url))
    with TestClient(app) as client:
        yield client, h.make_tokens(app), app


def post(client, tokens, scan_id, seed=0):
    return client.post(
        "/v1/scans",
        files={"image": ("s.png", h.png_bytes(seed=seed), "image/png")},
        data=h.scan_form(scan_id=scan_id),
        headers=tokens["scanner"],
    )


def test_postgres_is_used(server):
    _, _, app = server
    assert app.state.services.engine.dialect.name == "postgresql"


def test_scan_to_alert_on_postgres(server):
    client, tokens, _ = server
    r = post(client, tokens, "pg-1")
    assert r.status_code == 201, r.text
    assert r.json()["scan"]["status"] == "done" and r.json()["alert"]["seq"] >= 1
    assert post(client, tokens, "pg-1").status_code == 409
    assert client.get("/v2/health/ready").json() == {"ready": True}


def test_listing_pages_on_postgres(server):
    client, tokens, _ = server
    ids = [f"pg-list-{i}" for i in range(4)]
    for i, scan_id in enumerate(ids):
        assert post(client, tokens, scan_id, seed=i).status_code == 201
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/scans", params=params, headers=tokens["reader"]).json()
        seen += [s["id"] for s in page["items"] if s["id"].startswith("pg-list-")]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]


def test_concurrent_alerts_get_distinct_seqs(server):
    """Scans finishing at once each take their own alert number under PostgreSQL's row lock."""
    from concurrent.futures import ThreadPoolExecutor

    client, tokens, _ = server
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: post(client, tokens, f"pg-burst-{i}", seed=i), range(8)))
    assert [r.status_code for r in answers] == [201] * 8
    seqs = [r.json()["alert"]["seq"] for r in answers]
    assert len(set(seqs)) == 8


def test_alert_figures_on_postgres(server):
    """Time windows compare with PostgreSQL's timestamptz; verdicts count per class."""
    from datetime import UTC, datetime, timedelta

    client, tokens, _ = server
    seqs = []
    for i in range(3):
        r = client.post(
            "/v1/scans",
            files={"image": ("s.png", h.png_bytes(seed=20 + i), "image/png")},
            data=h.scan_form(scan_id=f"pg-stats-{i}", site="PG-STATS"),
            headers=tokens["scanner"],
        )
        assert r.status_code == 201, r.text
        seqs.append(r.json()["alert"]["seq"])
    inspector = tokens["inspector"]
    assert (
        client.post(f"/v1/alerts/{seqs[0]}/confirm", json={}, headers=inspector).status_code == 200
    )
    assert (
        client.post(f"/v1/alerts/{seqs[1]}/reject", json={}, headers=inspector).status_code == 200
    )
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    r = client.get(
        "/v1/alerts/stats", params={"site": "PG-STATS", "since": since}, headers=inspector
    )
    assert r.status_code == 200, r.text
    total = r.json()["total"]
    assert (total["raised"], total["confirmed"], total["rejected"]) == (3, 1, 1)
    assert total["precision"] == 0.5 and r.json()["to_verdict"]["n"] == 2
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = client.get(
        "/v1/alerts/stats", params={"site": "PG-STATS", "since": future}, headers=inspector
    )
    assert r.json()["total"]["raised"] == 0


def test_events_committed_out_of_id_order_are_still_delivered(server):
    """PostgreSQL hands an event its id at insert, not at commit: an escalation round
    that commits after an acknowledgement holds the lower id. The pump must deliver
    it once it commits, not step past it."""
    from cv.inference_server import alerts, db

    client, tokens, app = server
    services = app.state.services
    seqs = []
    for i in range(2):
        r = post(client, tokens, f"pg-gap-{i}", seed=40 + i)
        assert r.status_code == 201, r.text
        seqs.append(r.json()["alert"]["seq"])
    # A pump of its own (not started): the app's pump runs on its own schedule.
    pump = alerts.AlertService(services.settings, services.sessions)
    pump._last_seq, pump._last_event = pump._high_water()

    slow = services.sessions()  # the escalation round: inserted, not yet committed
    slow.add(db.AlertEvent(alert_seq=seqs[0], event="resent", data={"n": 1}))
    slow.flush()
    with services.sessions() as fast:  # the acknowledgement, committed first
        alerts.acknowledge(fast, seqs[1], actor="pg-test")
    first, _ = pump._fetch_new()
    assert [(m.event, m.seq) for m in first] == [("update", seqs[1])]
    slow.commit()
    slow.close()
    late, _ = pump._fetch_new()
    assert [(m.event, m.seq, m.data.get("resent")) for m in late] == [("alert", seqs[0], True)]
    assert not pump._event_gaps
    again, _ = pump._fetch_new()
    assert again == []
