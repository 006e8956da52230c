"""Scan to alert through the whole server (``create_app``), in real processes.

A scanner posts scans to ``python -m uvicorn --factory cv.inference_server.app:create_app``
with a tiny model whose thresholds make every scan alert; a handheld holds an SSE
stream. The server is killed with SIGKILL and restarted on the same database; the
handheld resumes from its last id and gets exactly the alerts it missed.
"""

from __future__ import annotations

import os
import signal
import time

import httpx
import server_helpers as helpers


def _post(base: str, scanner: str, n: int) -> dict:
    files = {"image": (f"{n}.png", helpers.png_bytes(seed=n), "image/png")}
    r = httpx.post(
        f"{base}/v1/scans",
        files=files,
        data=helpers.scan_form(scan_id=f"scan-{n}", bag_tag=f"T{n}"),
        headers={"Authorization": f"Bearer {scanner}"},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_scans_alert_handheld_survives_sigkill_of_the_server(tmp_path):
    model_dir = helpers.make_tiny_model_dir(tmp_path / "models", thresholds=helpers.ALERT_ALWAYS)
    url, secrets = helpers.sqlite_with_tokens(
        tmp_path / "server.db", {"xray-1": "scanner", "handheld-1": "inspector"}
    )
    scanner, inspector = secrets["xray-1"], secrets["handheld-1"]
    env = {
        **os.environ,
        "CV_SERVER_DATABASE_URL": url,
        "CV_SERVER_DATA_DIR": str(tmp_path / "images"),
        "CV_SERVER_MODEL_DIR": str(model_dir),
        "CV_SERVER_SSE_KEEPALIVE_S": "1",
    }
    headers = {"Authorization": f"Bearer {inspector}"}

    first, base = helpers.serve_process(tmp_path, env)
    try:
        with (
            httpx.Client(base_url=base, headers=headers, timeout=30) as client,
            client.stream("GET", "/v1/alerts/stream", params={"last_id": 0, "site": "ICN-T1"}) as s,
        ):
            lines = s.iter_lines()
            posted = [_post(base, scanner, n)["alert"]["seq"] for n in (1, 2)]
            assert posted == [1, 2]
            assert [a["id"] for a in helpers.sse_new_alerts(lines, 2)] == [1, 2]
            # Pushed at commit: the next one arrives about as fast as the upload answers.
            t0 = time.monotonic()
            alert = _post(base, scanner, 3)["alert"]
            assert alert["scan_id"] == "scan-3" and alert["state"] == "open"
            assert alert["overlay_url"] == "/v1/scans/scan-3/overlay.png"
            assert [a["id"] for a in helpers.sse_new_alerts(lines, 1)] == [3]
            assert time.monotonic() - t0 < 10  # generous: the machine is busy training
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    second, base = helpers.serve_process(tmp_path, env)
    try:
        assert _post(base, scanner, 4)["alert"]["seq"] == 4  # while the handheld is away
        resume = {**headers, "Last-Event-ID": "3"}
        with (
            httpx.Client(base_url=base, headers=resume, timeout=30) as client,
            client.stream("GET", "/v1/alerts/stream") as s,
        ):
            lines = s.iter_lines()
            assert [a["id"] for a in helpers.sse_new_alerts(lines, 1)] == [4]
            assert _post(base, scanner, 5)["alert"]["seq"] == 5
            assert [a["id"] for a in helpers.sse_new_alerts(lines, 1)] == [
                5
            ]  # and nothing replayed twice in between
            r = client.post("/v1/alerts/4/confirm")
            assert r.status_code == 200 and r.json()["resolved_by"] == "handheld-1"
    finally:
        helpers.stop_process(second)
