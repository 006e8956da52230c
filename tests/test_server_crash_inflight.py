"""A kill -9 between storing a scan and alerting on it loses nothing (real processes).

The server (``python -m uvicorn --factory cv.inference_server.app:create_app``) serves a
tiny model whose thresholds make every scan alert, with batches of two that wait up
to a minute to fill. Two scans posted together fill a batch and alert at once; a
third waits alone in the batcher, stored as ``pending`` but not yet inferred, and
the server is killed with SIGKILL right then: no test hook, and the database shows
that the crash landed between the commit of the scan and its alert. Restarted on
the same database and image store, the server infers the scan, and a handheld that
reconnects with the last id it saw receives the scan's alert.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import server_helpers as helpers
from sqlalchemy import func, select

from cv.inference_server import db
from cv.inference_server.auth import create_token


def _post(base: str, scanner: str, scan_id: str, seed: int) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/scans",
        files={"image": (f"{scan_id}.png", helpers.png_bytes(seed=seed), "image/png")},
        data=helpers.scan_form(scan_id=scan_id),
        headers={"Authorization": f"Bearer {scanner}"},
        timeout=60,
    )


def test_a_kill_between_storing_and_alerting_loses_nothing(tmp_path):
    model_dir = helpers.make_tiny_model_dir(tmp_path / "models", thresholds=helpers.ALERT_ALWAYS)
    url = f"sqlite:///{tmp_path / 'server.db'}"
    engine = db.make_engine(url)
    db.migrate(engine)
    sessions = db.session_factory(engine)
    with sessions() as session:
        scanner = create_token(session, name="xray-1", role="scanner")
        inspector = create_token(session, name="handheld-1", role="inspector")
    env = {
        **os.environ,
        "CV_SERVER_DATABASE_URL": url,
        "CV_SERVER_DATA_DIR": str(tmp_path / "images"),
        "CV_SERVER_MODEL_DIR": str(model_dir),
        "CV_SERVER_REID_MODEL_DIR": str(tmp_path / "no-reid-model"),  # X-ray only
        "CV_SERVER_SSE_KEEPALIVE_S": "1",
        "CV_SERVER_REQUEST_TIMEOUT_S": "60",
    }
    headers = {"Authorization": f"Bearer {inspector}"}

    # First life: a batch runs when two scans wait, or after a minute.
    first, base = helpers.serve_process(
        tmp_path, {**env, "CV_SERVER_MAX_BATCH": "2", "CV_SERVER_MAX_WAIT_MS": "60000"}
    )
    lost: list[BaseException] = []
    try:
        with (
            httpx.Client(base_url=base, headers=headers, timeout=30) as client,
            client.stream("GET", "/v1/alerts/stream", params={"last_id": 0}) as stream,
        ):
            lines = stream.iter_lines()
            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(lambda n: _post(base, scanner, f"scan-{n}", n), (1, 2)))
            assert [r.status_code for r in answers] == [201, 201], [r.text for r in answers]
            assert sorted(r.json()["alert"]["seq"] for r in answers) == [1, 2]
            assert sorted(a["id"] for a in helpers.sse_new_alerts(lines, 2)) == [1, 2]
            last_id = 2  # what the handheld saw

        def doomed() -> None:
            try:
                lost.append(AssertionError(_post(base, scanner, "scan-3", 3).text))
            except httpx.TransportError as exc:  # the server died under the request
                lost.append(exc)

        poster = threading.Thread(target=doomed)
        poster.start()
        end = time.monotonic() + 20
        while True:  # stored: the upload's row is committed; its batch waits for a partner
            r = httpx.get(f"{base}/v1/scans/scan-3", headers=headers, timeout=5)
            if r.status_code == 200:
                assert r.json()["status"] == "pending", r.text
                break
            assert time.monotonic() < end, "scan-3 was never stored"
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
        poster.join(30)
        assert lost and isinstance(lost[0], httpx.TransportError), lost
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    # The crash landed between storing and alerting: stored, pending, no alert.
    with sessions() as session:
        scan = session.get(db.Scan, "scan-3")
        assert (scan.status, scan.attempts) == ("pending", 0)
        assert (tmp_path / "images" / scan.image_path).is_file()
        assert session.scalar(select(func.max(db.Alert.seq))) == 2
    engine.dispose()

    second, base = helpers.serve_process(tmp_path, {**env, "CV_SERVER_MAX_WAIT_MS": "2"})
    try:
        resume = {**headers, "Last-Event-ID": str(last_id)}
        with (
            httpx.Client(base_url=base, headers=resume, timeout=30) as client,
            client.stream("GET", "/v1/alerts/stream") as stream,
        ):
            # Start-up recovery infers the scan; its alert comes next, nothing before it again.
            (alert,) = helpers.sse_new_alerts(stream.iter_lines(), 1)
            assert alert["id"] == 3 and alert["scan_id"] == "scan-3", alert
            assert alert["boxes"] and alert["overlay_url"] == "/v1/scans/scan-3/overlay.png"
            scan = client.get("/v1/scans/scan-3").json()
            assert (scan["status"], scan["attempts"]) == ("done", 1), scan
            assert client.get("/v1/scans/scan-3/detections").json()
    finally:
        helpers.stop_process(second)
