"""The demo scan feed: real ``customs-vision serve run --demo`` processes, and the feed's
retries against a real HTTP server that refuses at first.

The end-to-end test runs the README's main job with a tiny model whose thresholds
make every scan alert, signs in with the printed links' tokens, and watches scans
and alerts arrive through the HTTP API and the SSE stream; then it restarts the
server on the same database (no bootstrap tokens any more: the demo makes its own
and revokes them at shutdown).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import server_helpers as helpers
import uvicorn
from fastapi import FastAPI, Request, Response
from sqlalchemy import select

from cv.image import decode_image
from cv.inference_server import db
from cv.inference_server.demo import (
    LANES,
    DemoFeed,
    ScanPool,
    awb_number,
    make_demo_scan,
    scan_fields,
)

SITES = {lane.site for lane in LANES}


# -- metadata and images -----------------------------------------------------------------


def test_awb_check_digit_and_fields_follow_the_api_rules():
    assert awb_number("180", 1234567) == "180-12345675"  # 1234567 mod 7 = 5
    rng = np.random.default_rng(0)
    for lane in LANES:
        for n in range(20):
            fields = scan_fields(lane, f"demo-x-{n}", rng)
            assert fields["site"] == lane.site and fields["kind"] == lane.kind
            assert all(1 <= len(v) <= 64 for v in fields.values())
            if lane.kind == "hold_bag":
                assert re.fullmatch(r"0\d{3}\d{6}", fields["bag_tag"])
            if lane.kind == "parcel":
                _, serial = fields["awb"].split("-")
                assert int(serial[:7]) % 7 == int(serial[7])


def test_demo_scans_are_decodable_pngs_clean_or_with_threats():
    loaded = make_demo_scan(3, clean_fraction=0.0)
    image = decode_image(loaded.png, mode="rgb", name="demo")
    assert (image.shape[1], image.shape[0]) == loaded.lane.size
    assert loaded.threats  # 1-3 items hidden
    assert make_demo_scan(3, clean_fraction=1.0).threats == ()
    assert make_demo_scan(7).png == make_demo_scan(7).png  # a seed makes one scan


# -- the feed against a server that refuses at first ------------------------------------


def _refusing_server() -> tuple[FastAPI, list[dict[str, str]]]:
    """Not ready twice, then a full queue (429, Retry-After) once, then it accepts."""
    app = FastAPI()
    seen: list[dict[str, str]] = []
    state = {"ready_calls": 0}

    @app.get("/v2/health/ready")
    def ready() -> Response:
        state["ready_calls"] += 1
        if state["ready_calls"] <= 2:
            return Response('{"ready": false}', status_code=503)
        return Response('{"ready": true}')

    @app.post("/v1/scans")
    async def post(request: Request) -> Response:
        form = await request.form()
        image = form["image"]
        fields = {k: v for k, v in form.items() if k != "image"}
        fields["auth"] = request.headers["authorization"]
        fields["png"] = str((await image.read())[:4] == b"\x89PNG")
        seen.append(fields)
        if len(seen) == 1:
            return Response(
                '{"detail": "queue full"}', status_code=429, headers={"Retry-After": "1"}
            )
        return Response(json.dumps({"alert": None}), status_code=201)

    return app, seen


def test_feed_waits_for_the_server_and_retries_a_full_queue_with_the_same_scan_id():
    port = helpers.free_port()
    app, seen = _refusing_server()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))

    async def scenario() -> DemoFeed:
        feed = DemoFeed(
            base_url=f"http://127.0.0.1:{port}",
            scanner_token="cvt_test",
            rate=20.0,
            pool=ScanPool(size=2, seed=11),
            run="t1",
        )
        await feed.start()
        await asyncio.sleep(1.0)  # the feed finds nobody listening and keeps trying
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while feed.counts["posted"] < 4:
            assert time.monotonic() < deadline, feed.counts
            await asyncio.sleep(0.1)
        await feed.stop()
        server.should_exit = True
        await asyncio.to_thread(thread.join, 10)
        return feed

    feed = asyncio.run(scenario())
    assert feed.counts["retried"] == 1 and feed.counts["failed"] == 0
    first, again = seen[0], seen[1]
    assert first["scan_id"] == again["scan_id"] == "demo-t1-000001"  # 429 stores nothing
    assert len({s["scan_id"] for s in seen}) == len(seen) - 1
    assert all(s["auth"] == "Bearer cvt_test" and s["png"] == "True" for s in seen)
    assert all(s["site"] in SITES for s in seen)


# -- the main job, end to end -----------------------------------------------------------


def _start(tmp_path: Path, model_dir: Path, url: str, name: str) -> tuple[subprocess.Popen, str]:
    port = helpers.free_port()
    out = tmp_path / f"{name}.log"
    cmd = [sys.executable, "-m", "cv.cli", "serve", "run", "--demo", "--demo-rate", "4"]
    cmd += ["--port", str(port), "--model", str(model_dir), "--db", url]
    env = {**os.environ, "CV_SERVER_DATA_DIR": str(tmp_path / "images")}
    env["CV_SERVER_SSE_KEEPALIVE_S"] = "1"
    with open(out, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    return proc, out


def _stop(proc: subprocess.Popen, out: Path) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("the server did not stop within 30 s of SIGTERM") from None
    text = out.read_text(errors="replace")
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert code in (0, -signal.SIGTERM), text
    assert "Application shutdown complete" in text
    return text


def _check_scans(base: str, reader: str) -> list[dict]:
    page = httpx.get(
        f"{base}/v1/scans", params={"limit": 100}, headers={"Authorization": f"Bearer {reader}"}
    ).json()
    scans = [s for s in page["items"] if s["status"] == "done"]
    for s in scans:
        assert s["id"].startswith("demo-") and s["site"] in SITES
        assert s["kind"] != "hold_bag" or s["bag_tag"]
        assert s["kind"] != "parcel" or s["awb"]
    return scans


def test_serve_run_demo_feeds_scans_and_alerts_to_a_handheld(tmp_path):
    model_dir = helpers.make_tiny_model_dir(tmp_path / "models", thresholds=helpers.ALERT_ALWAYS)
    url = f"sqlite:///{tmp_path / 'server.db'}"

    proc, out = _start(tmp_path, model_dir, url, "first")
    try:
        links = helpers.demo_links(proc, out)
        handheld_url, inspector = links["handheld"]
        console_url, reader = links["reader console"]
        base = handheld_url.rsplit("/", 1)[0]
        assert httpx.get(handheld_url, timeout=10).status_code == 200
        assert httpx.get(console_url, timeout=10).status_code == 200
        watchlist_url, admin = links["watch list"]
        assert httpx.get(watchlist_url, timeout=10).status_code == 200
        me = httpx.post(f"{base}/v1/session", json={"token": admin}, timeout=10).json()
        assert me["role"] == "admin"
        # A handheld signed in with the printed inspector token gets the demo's alerts.
        with (
            httpx.Client(timeout=30) as client,
            client.stream("GET", f"{base}/v1/alerts/stream", params={"token": inspector}) as s,
        ):
            alerts = helpers.sse_new_alerts(s.iter_lines(), 3, timeout=60)
        assert all(a["scan_id"].startswith("demo-") and a["site"] in SITES for a in alerts)
        assert all(a["boxes"] and a["overlay_url"].endswith("/overlay.png") for a in alerts)
        assert len(_check_scans(base, reader)) >= 3
    finally:
        if proc.poll() is None:
            text = _stop(proc, out)
    assert "bootstrap API tokens" in text and "demo feed stopped" in text

    # Restarted on the same database: tokens exist, so the demo makes its own.
    proc, out = _start(tmp_path, model_dir, url, "second")
    try:
        links = helpers.demo_links(proc, out)
        _, reader2 = links["reader console"]
        assert reader2 != reader
        base = links["handheld"][0].rsplit("/", 1)[0]
        deadline = time.monotonic() + 60
        runs: set[str] = set()
        while len(runs) < 2:  # scans of the second run join the first run's
            assert time.monotonic() < deadline, runs
            time.sleep(0.5)
            runs = {s["id"].split("-")[1] for s in _check_scans(base, reader2)}
    finally:
        if proc.poll() is None:
            text = _stop(proc, out)
    assert "bootstrap API tokens" not in text
    engine = db.make_engine(url)
    with db.session_factory(engine)() as session:
        demo = session.scalars(select(db.Token).where(db.Token.name.like("demo-%"))).all()
        boot = session.scalars(select(db.Token).where(db.Token.name.like("bootstrap-%"))).all()
    engine.dispose()
    assert sorted(t.role for t in demo) == ["admin", "inspector", "reader", "scanner"]
    assert all(t.revoked_at is not None for t in demo)  # revoked when the demo stopped
    assert all(t.revoked_at is None for t in boot)
