"""Scans: the scan-to-alert path, reads, overlays, listing, failures, retries, recovery."""

from __future__ import annotations

import time

import numpy as np
import pytest
import server_helpers as h
from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def alert_model(tmp_path_factory):
    return h.make_tiny_model_dir(
        tmp_path_factory.mktemp("models"), name="alerting", thresholds=h.ALERT_ALWAYS
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory, alert_model):
    from cv.inference_server.app import create_app

    app = create_app(h.server_settings(tmp_path_factory.mktemp("scans"), alert_model))
    with TestClient(app) as client:
        yield client, h.make_tokens(app)


def post(client, tokens, data=None, **fields):
    return client.post(
        "/v1/scans",
        files={"image": ("scan.png", data if data is not None else h.png_bytes(), "image/png")},
        data=h.scan_form(**fields),
        headers=tokens["scanner"],
    )


def wait_for_status(client, tokens, scan_id, status, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        scan = client.get(f"/v1/scans/{scan_id}", headers=tokens["reader"]).json()
        if scan["status"] == status:
            return scan
        time.sleep(0.2)
    raise AssertionError(f"scan {scan_id} did not reach {status!r}: {scan}")


def test_scan_to_alert(server):
    client, tokens = server
    r = post(
        client,
        tokens,
        site="PUS-EXP",
        lane="belt-2",
        kind="parcel",
        awb="180-12345675",
        declaration_ref="D-1",
        scan_id="alert-1",
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["scan"]["status"] == "done" and body["scan"]["awb"] == "180-12345675"
    assert body["detections"], "an untrained model scores above 0.0001 somewhere"
    for d in body["detections"]:
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 <= x2 <= 96 and 0 <= y1 <= y2 <= 80
        assert d["category"] == h.CLASSES[d["class_id"]] and d["score"] >= 0.0001
    alert = body["alert"]
    assert alert is not None and alert["seq"] >= 1
    assert (alert["site"], alert["lane"], alert["scan_id"]) == ("PUS-EXP", "belt-2", "alert-1")
    assert alert["overlay_url"] == "/v1/scans/alert-1/overlay.png"
    # The alert is in the durable outbox, in the same commit as the scan.
    from cv.inference_server.db import Alert

    with client.app.state.services.sessions() as session:
        assert session.get(Alert, alert["seq"]).scan_id == "alert-1"


def test_reads_of_a_scan(server):
    client, tokens = server
    data = h.png_bytes(seed=3)
    body = post(client, tokens, data, scan_id="read-1").json()
    scan = client.get("/v1/scans/read-1", headers=tokens["inspector"]).json()
    assert scan == body["scan"]
    dets = client.get("/v1/scans/read-1/detections", headers=tokens["reader"]).json()
    assert sorted(dets, key=lambda d: -d["score"]) == dets
    assert len(dets) == len(body["detections"])
    image = client.get("/v1/scans/read-1/image", headers=tokens["reader"])
    assert image.content == data and image.headers["content-type"] == "image/png"
    r = client.get("/v1/scans/nope", headers=tokens["reader"])
    assert r.status_code == 404 and "nope" in r.json()["detail"]


def test_overlay_has_the_boxes_drawn(server):
    from cv.draw import color_for
    from cv.image import decode_image, encode_png

    client, tokens = server
    grey = np.full((120, 160, 3), 60, dtype=np.uint8)  # no palette colour in it
    body = post(client, tokens, encode_png(grey), scan_id="overlay-1").json()
    r = client.get("/v1/scans/overlay-1/overlay.png", headers=tokens["reader"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    overlay = decode_image(r.content)
    assert overlay.shape == (120, 160, 3)
    assert (overlay != grey).any()
    # The last box drawn is on top: its bottom edge (labels sit at the top) has its colour.
    stored = client.get("/v1/scans/overlay-1/detections", headers=tokens["reader"]).json()
    assert len(stored) == len(body["detections"]) > 0
    last = body["detections"][-1]
    x1, _, x2, y2 = (round(v) for v in last["box"])
    row = overlay[y2 - 1, x1 : x2 - 1]
    on_edge = (row == np.array(color_for(last["class_id"]), dtype=np.uint8)).all(axis=1)
    assert on_edge.mean() > 0.5


def test_list_filter_and_keyset_pages(server):
    client, tokens = server
    ids = [f"list-{i}" for i in range(5)]
    for i, scan_id in enumerate(ids):
        assert (
            post(client, tokens, h.png_bytes(seed=20 + i), scan_id=scan_id, site="GMP").status_code
            == 201
        )
    seen, cursor = [], None
    while True:
        params = {"site": "GMP", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/scans", params=params, headers=tokens["reader"]).json()
        seen += [s["id"] for s in page["items"]]
        assert len(page["items"]) <= 2
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]  # newest first, no repeats, none missed
    done = client.get(
        "/v1/scans", params={"status": "done", "site": "GMP"}, headers=tokens["reader"]
    )
    assert len(done.json()["items"]) == 5
    later = client.get(
        "/v1/scans", params={"since": "2999-01-01T00:00:00Z"}, headers=tokens["reader"]
    )
    assert later.json()["items"] == []
    r = client.get("/v1/scans", params={"cursor": "garbage"}, headers=tokens["reader"])
    assert r.status_code == 422 and r.json()["detail"].startswith("cursor:")
    r = client.get("/v1/scans", params={"limit": 0}, headers=tokens["reader"])
    assert r.status_code == 422 and "limit" in r.json()["detail"]
    r = client.get("/v1/scans", params={"status": "lost"}, headers=tokens["reader"])
    assert r.status_code == 422 and "status" in r.json()["detail"]


def test_inference_failure_is_stored_failed_then_retried(server):
    """A real ONNX Runtime error: the session is asked for an input it does not have."""
    client, tokens = server
    detector = client.app.state.services.models.active.detector
    good = detector.input_name
    detector.input_name = "no_such_input"
    try:
        r = post(client, tokens, h.png_bytes(seed=40), scan_id="fail-1")
        assert r.status_code == 503, r.text
        assert r.json()["scan_id"] == "fail-1" and "will be retried" in r.json()["detail"]
        scan = client.get("/v1/scans/fail-1", headers=tokens["reader"]).json()
        # Stored before inference: the row exists, failed, with the runtime's error.
        assert scan["status"] == "failed" and scan["attempts"] == 1
        assert "no_such_input" in scan["error"]
    finally:
        detector.input_name = good
    # The retry loop (every 2 s) infers it again and finishes it, alert included.
    scan = wait_for_status(client, tokens, "fail-1", "done")
    assert scan["attempts"] == 2 and scan["error"] is None
    from cv.inference_server.scans import alert_of

    with client.app.state.services.sessions() as session:
        assert alert_of(session, "fail-1") is not None


def test_failed_scan_stops_after_its_retries(tmp_path, alert_model):
    from cv.inference_server.app import create_app

    app = create_app(h.server_settings(tmp_path, alert_model, inference_retries=2))
    with TestClient(app) as client:
        tokens = h.make_tokens(app)
        app.state.services.models.active.detector.input_name = "broken"
        assert post(client, tokens, scan_id="doomed").status_code == 503
        end = time.monotonic() + 30
        while time.monotonic() < end:
            scan = client.get("/v1/scans/doomed", headers=tokens["reader"]).json()
            if scan["attempts"] >= 2:
                break
            time.sleep(0.2)
        time.sleep(2.5)  # one more retry round: it must not try a third time
        scan = client.get("/v1/scans/doomed", headers=tokens["reader"]).json()
        assert (scan["status"], scan["attempts"]) == ("failed", 2)


def test_pending_scans_are_inferred_after_a_restart(tmp_path, alert_model):
    """A scan committed as pending, then the process gone: the next start infers it."""
    from cv.inference_server import uploads
    from cv.inference_server.app import create_app
    from cv.inference_server.scans import ScanMeta

    settings = h.server_settings(tmp_path, alert_model)
    app = create_app(settings)
    with TestClient(app):
        image = uploads.validate(h.png_bytes(seed=50), max_bytes=10**7, max_pixels=10**7)
        # Exactly what POST /v1/scans commits before inference.
        app.state.services.scans.store(
            image, ScanMeta("crashed-1", "ICN-T2", "L1", "hold_bag", "KE123456")
        )
    app = create_app(settings)
    with TestClient(app) as client:
        tokens = h.make_tokens(app)
        scan = wait_for_status(client, tokens, "crashed-1", "done")
        assert scan["attempts"] == 1 and scan["bag_tag"] == "KE123456"
        from cv.inference_server.scans import alert_of

        with app.state.services.sessions() as session:
            assert alert_of(session, "crashed-1").site == "ICN-T2"


def test_alerts_on_a_class_that_is_not_its_anchors_best(tmp_path, alert_model):
    # The thresholds are chosen on multi-label predictions (one candidate per anchor
    # and class), so the server must alert on a class above its threshold even where
    # another class scores higher at the same anchor. Built here: class k's
    # threshold is its best score at an anchor where k is not the top class, above
    # every score of k where k is on top; a single-label server would never alert.
    import shutil

    from cv.image import decode_image
    from cv.inference_server.app import create_app
    from cv.models.load import load_detector
    from cv.models.weights import read_record, write_record

    data = h.png_bytes(seed=7)
    det = load_detector(alert_model)
    raw = det.infer(det.preprocess([decode_image(data)])[0])[0]
    scores = raw[4:]
    top = scores.argmax(axis=0)
    chosen = None
    for k in range(scores.shape[0]):
        below, on_top = scores[k][top != k], scores[k][top == k]
        if below.size and below.max() > (on_top.max() if on_top.size else 0.0):
            chosen = (k, float(below.max()))
            break
    assert chosen is not None, "no class is ever second best: pick another image"
    k, score = chosen
    model = tmp_path / "second-best"
    shutil.copytree(alert_model, model)
    record = read_record(model, verify=False)
    record.thresholds = dict.fromkeys(h.CLASSES, h.ALERT_NEVER)
    record.thresholds[h.CLASSES[k]] = score  # fires at a score equal to it
    write_record(record, model)
    app = create_app(h.server_settings(tmp_path, model))
    with TestClient(app) as client:
        r = post(client, h.make_tokens(app), data=data, scan_id="second-best")
    assert r.status_code == 201, r.text
    alert = r.json()["alert"]
    assert alert is not None and {b["category"] for b in alert["boxes"]} == {h.CLASSES[k]}
