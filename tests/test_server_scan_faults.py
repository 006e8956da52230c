"""Faults on the scan path after inference, and the score floor that fusion needs.

* Recording a result fails (a database error in ``finish``): the scanner gets a 503
  naming the scan, the scan is marked failed and the retry loop finishes it,
  detections and alert included, without a restart; if even marking it failed
  fails, the next retry round still takes it.
* A ``pending`` scan nobody will finish (older than the request deadline plus a
  margin, never retried) is taken by the retry loop, once, by one process.
* The batcher's score floor lets a detection between ``NEAR_MISS_FACTOR ×`` its
  threshold and the threshold reach fusion, so a high-risk declaration alerts on
  it; without one it neither alerts nor shows among the scan's detections.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import server_helpers as h
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.exc import OperationalError


@pytest.fixture(scope="module")
def alert_model(tmp_path_factory):
    return h.make_tiny_model_dir(
        tmp_path_factory.mktemp("models"), name="alerting", thresholds=h.ALERT_ALWAYS
    )


def post(client, tokens, scan_id, seed=0, **fields):
    return client.post(
        "/v1/scans",
        files={"image": ("scan.png", h.png_bytes(seed=seed), "image/png")},
        data=h.scan_form(scan_id=scan_id, **fields),
        headers=tokens["scanner"],
    )


def get_scan(client, tokens, scan_id):
    return client.get(f"/v1/scans/{scan_id}", headers=tokens["reader"]).json()


def wait_for_status(client, tokens, scan_id, status, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        scan = get_scan(client, tokens, scan_id)
        if scan["status"] == status:
            return scan
        time.sleep(0.1)
    raise AssertionError(f"scan {scan_id} did not reach {status!r}: {scan}")


def dropped_connection() -> OperationalError:
    """What SQLAlchemy raises when PostgreSQL's connection drops in the middle of a commit."""
    return OperationalError(
        "UPDATE scans SET status=%(status)s WHERE scans.id = %(id)s",
        {"status": "done", "id": "secret-parameter"},
        Exception("server closed the connection unexpectedly"),
    )


def fail_once(monkeypatch, service, name):
    """Makes ``service.<name>`` raise :func:`dropped_connection` on its first call only."""
    real = getattr(service, name)
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 1:
            raise dropped_connection()
        return real(*args, **kwargs)

    monkeypatch.setattr(service, name, flaky)
    return calls


def assert_finished_with_alert(client, tokens, scan_id):
    from cv.inference_server.scans import alert_of

    detections = client.get(f"/v1/scans/{scan_id}/detections", headers=tokens["reader"]).json()
    assert detections  # thresholds of 1e-4: the untrained model gives boxes, and they alert
    with client.app.state.services.sessions() as session:
        alert = alert_of(session, scan_id)
        assert alert is not None and alert.payload["boxes"]


@pytest.fixture()
def server(tmp_path, alert_model):
    from cv.inference_server.app import create_app

    app = create_app(h.server_settings(tmp_path, alert_model))
    with TestClient(app) as client:
        # Retry rounds every 0.1 s once the first (2 s) pause is over.
        app.state.services.scans.retry_interval_s = 0.1
        yield client, h.make_tokens(app)


# --------------------------------------------------------------------------- recording fails


def test_a_result_that_cannot_be_recorded_is_a_503_and_the_scan_is_finished_later(
    server, monkeypatch
):
    client, tokens = server
    service = client.app.state.services.scans
    calls = fail_once(monkeypatch, service, "finish")

    r = post(client, tokens, "unrecorded-1")
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["scan_id"] == "unrecorded-1"
    assert "is stored; its inference result could not be recorded" in body["detail"]
    assert "will be retried" in body["detail"] and "GET /v1/scans/unrecorded-1" in body["detail"]
    assert "secret-parameter" not in body["detail"]  # the statement's values stay in the log
    scan = get_scan(client, tokens, "unrecorded-1")
    assert (scan["status"], scan["attempts"]) == ("failed", 1)
    assert scan["error"].startswith("recording the result failed: OperationalError")

    # No restart: the retry loop infers it again and this time the result is recorded.
    scan = wait_for_status(client, tokens, "unrecorded-1", "done")
    assert scan["attempts"] == 2 and scan["error"] is None
    assert calls == ["unrecorded-1", "unrecorded-1"]
    assert_finished_with_alert(client, tokens, "unrecorded-1")
    # The scanner's retry of the same id: the scan exists (and is done).
    assert post(client, tokens, "unrecorded-1").status_code == 409


def test_if_even_marking_it_failed_fails_the_next_round_takes_it(server, monkeypatch):
    client, tokens = server
    service = client.app.state.services.scans
    fail_once(monkeypatch, service, "finish")
    fail_once(monkeypatch, service, "fail")

    r = post(client, tokens, "unrecorded-2", seed=1)
    assert r.status_code == 503 and r.json()["scan_id"] == "unrecorded-2", r.text
    # Nothing could be written: still pending, never attempted as far as the row knows.
    scan = get_scan(client, tokens, "unrecorded-2")
    assert (scan["status"], scan["attempts"]) == ("pending", 0)

    scan = wait_for_status(client, tokens, "unrecorded-2", "done")
    assert scan["attempts"] == 2  # the lost attempt counts, then the one that was recorded
    assert_finished_with_alert(client, tokens, "unrecorded-2")


# --------------------------------------------------------------------------- orphaned pending


def store_pending(service, scan_id, *, age_s=0.0, seed=0):
    """Commits a scan as ``pending`` exactly as ``POST /v1/scans`` does, with no inference."""
    from cv.inference_server import uploads
    from cv.inference_server.db import Scan, utcnow
    from cv.inference_server.scans import ScanMeta

    image = uploads.validate(h.png_bytes(seed=seed), max_bytes=10**7, max_pixels=10**7)
    service.store(image, ScanMeta(scan_id, "ICN-T1", "L3", "cabin_bag"))
    if age_s:
        with service.sessions() as session, session.begin():
            session.execute(
                update(Scan)
                .where(Scan.id == scan_id)
                .values(created_at=utcnow() - timedelta(seconds=age_s))
            )


def test_a_pending_scan_older_than_the_deadline_is_taken_by_the_retry_loop(server, monkeypatch):
    from cv.inference_server.scans import ORPHAN_MARGIN_S

    client, tokens = server
    service = client.app.state.services.scans
    # Wait for a round after the start-up one, so that what follows is not start-up recovery.
    real_round, rounds = service.retry_round, []

    async def counted(*, recover_pending=False):
        rounds.append(recover_pending)
        return await real_round(recover_pending=recover_pending)

    monkeypatch.setattr(service, "retry_round", counted)
    end = time.monotonic() + 10
    while not rounds:
        assert time.monotonic() < end, "the retry loop did not run"
        time.sleep(0.05)

    past_deadline = service.request_timeout_s + ORPHAN_MARGIN_S + 5
    store_pending(service, "orphan-old", age_s=past_deadline, seed=2)
    store_pending(service, "orphan-young", seed=3)  # may still be inferred by its request

    scan = wait_for_status(client, tokens, "orphan-old", "done")
    assert scan["attempts"] == 2  # the claim counts the attempt whose result was lost
    assert_finished_with_alert(client, tokens, "orphan-old")
    seen = len(rounds)
    while len(rounds) < seen + 3:  # a few more rounds leave the young one alone
        time.sleep(0.05)
    scan = get_scan(client, tokens, "orphan-young")
    assert (scan["status"], scan["attempts"]) == ("pending", 0)
    assert not any(rounds)


def test_an_orphan_is_claimed_by_one_process_only(tmp_path):
    """Two services on one database (two server processes): one claims, the other does not."""
    from cv.inference_server import db
    from cv.inference_server.scans import ORPHAN_MARGIN_S, ScanService
    from cv.inference_server.storage import ImageStore

    engine = db.make_engine(f"sqlite:///{tmp_path / 'shared.db'}")
    db.migrate(engine)
    sessions = db.session_factory(engine)

    def process():
        return ScanService(
            sessions=sessions,
            store=ImageStore(tmp_path / "images"),
            models=None,
            alert_service=None,
            request_timeout_s=10.0,
            max_upload_bytes=10**7,
            max_pixels=10**7,
            inference_retries=3,
            ack_deadline_s=60.0,
        )

    first, second = process(), process()
    store_pending(first, "shared-orphan", age_s=10.0 + ORPHAN_MARGIN_S + 5)
    assert first._claim_due(False) == ["shared-orphan"]
    assert second._claim_due(False) == []
    assert first._claim_due(False) == []  # in flight here; and attempted, so nobody's orphan
    with sessions() as session:
        scan = session.get(db.Scan, "shared-orphan")
        assert (scan.status, scan.attempts) == ("pending", 1)
    engine.dispose()


# --------------------------------------------------------------------------- the score floor

CLASSES = ["knife", "gun", "battery"]
THRESHOLD = 0.2
"""Below :data:`~cv.inference_server.modelhost.DEFAULT_CONF`: the floor follows the thresholds."""
# One anchor per object: cx, cy, w, h (input pixels of the 64-pixel network), then class scores.
# The gun lies between NEAR_MISS_FACTOR × THRESHOLD (0.10) and THRESHOLD.
SCRIPT = [
    (16.0, 20.0, 10.0, 12.0, {"knife": 0.90}),
    (44.0, 40.0, 12.0, 8.0, {"gun": 0.15}),
]


def scripted_model_dir(base: Path) -> Path:
    """A model directory whose ONNX graph answers :data:`SCRIPT` for any batch of images."""
    return h.scripted_model_dir(base, SCRIPT, CLASSES, threshold=THRESHOLD, name="scripted-low")


def test_the_score_floor_lies_one_float32_step_below_the_lowest_near_miss():
    from cv.inference_server.modelhost import DEFAULT_CONF, score_floor
    from cv.inference_server.risk import NEAR_MISS_FACTOR
    from cv.models.weights import read_record

    shipped = read_record(Path(__file__).parents[1] / "models/zoo/xray-yolo11n", verify=False)
    for thresholds in (shipped.thresholds, dict.fromkeys(CLASSES, THRESHOLD), {"gun": 0.9}):
        lowest = min(DEFAULT_CONF, NEAR_MISS_FACTOR * min(thresholds.values()))
        floor = score_floor(thresholds)
        # Decoding keeps scores above the floor; fusion counts a score equal to its floor.
        assert np.float32(floor) < np.float32(lowest)
        assert np.nextafter(np.float32(floor), np.float32(1.0)) == np.float32(lowest)
    gun = shipped.thresholds["gun"]
    assert (
        score_floor(shipped.thresholds) < NEAR_MISS_FACTOR * gun < min(shipped.thresholds.values())
    )


def test_a_near_miss_below_the_lowest_threshold_reaches_fusion(tmp_path):
    from cv.inference_server.app import create_app

    app = create_app(h.server_settings(tmp_path, scripted_model_dir(tmp_path / "models")))
    with TestClient(app) as client:
        tokens = h.make_tokens(app)
        # A stolen clearance code sends it red; the knife set explains the knife, not the gun.
        r = client.post(
            "/v1/risk/declarations",
            json={
                "id": "D-LOW",
                "kind": "list",
                "value": 40,
                "currency": "USD",
                "description": "knife set",
                "hs_code": "8211",
                "consignee_name": "Kim Minji",
                "pccc": "P100000000001",
            },
            headers=tokens["reader"],
        )
        assert r.status_code == 201 and r.json()["lane"] == "red", r.text

        red = post(client, tokens, "low-red", declaration_ref="D-LOW")
        assert red.status_code == 201, red.text
        body = red.json()
        assert sorted(b["category"] for b in body["alert"]["boxes"]) == ["gun", "knife"]
        assert (
            "gun 0.15 counted from half its operating point (0.10): declaration D-LOW is red "
            "and does not explain it"
        ) in body["alert"]["reasons"]
        # The box that alerted is among the scan's detections, so the overlay draws it.
        assert sorted(d["category"] for d in body["detections"]) == ["gun", "knife"]

        # Without a declaration the gun is below every threshold: no alert on it, and the
        # scan shows what reaches the lowest threshold only, as before.
        plain = post(client, tokens, "low-plain")
        assert plain.status_code == 201, plain.text
        body = plain.json()
        assert [b["category"] for b in body["alert"]["boxes"]] == ["knife"]
        assert [d["category"] for d in body["detections"]] == ["knife"]
        stored = client.get("/v1/scans/low-plain/detections", headers=tokens["reader"]).json()
        assert [d["category"] for d in stored] == ["knife"]
