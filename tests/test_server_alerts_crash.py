"""Nothing committed is lost: a server killed with SIGKILL, a new one on the same
database, and a handheld that resumes from its last id gets exactly what it missed.

Real processes: the servers are ``python -m uvicorn`` on 127.0.0.1; alerts are
committed by this test process, i.e. by another process than the server, so they
reach the handheld through the server's database poll.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import server_helpers as helpers

from cv.inference_server import alerts, db
from cv.inference_server.auth import create_token
from cv.records import Detection

# The alert router in the lifespan a server gives it, as an app factory uvicorn imports.
APP_MODULE = textwrap.dedent(
    """
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    from cv.inference_server import alerts, db
    from cv.inference_server.api_alerts import router
    from cv.inference_server.deps import Services
    from cv.inference_server.settings import ServerSettings


    def make_app() -> FastAPI:
        settings = ServerSettings()

        @asynccontextmanager
        async def lifespan(app):
            engine = db.make_engine(settings.database_url)
            db.migrate(engine)
            sessions = db.session_factory(engine)
            service = alerts.AlertService(settings, sessions)
            app.state.services = Services(
                settings=settings, engine=engine, sessions=sessions,
                data_dir=settings.data_dir, extra={"alerts": service},
            )
            await service.start()
            yield
            await service.stop()

        app = FastAPI(lifespan=lifespan)
        app.include_router(router)
        return app
    """
)


def _start(tmp_path: Path, url: str) -> tuple[subprocess.Popen, str]:
    port = helpers.free_port()
    env = {
        **os.environ,
        "CV_SERVER_DATABASE_URL": url,
        "CV_SERVER_DATA_DIR": str(tmp_path / "images"),
        "CV_SERVER_SSE_KEEPALIVE_S": "0.5",
    }
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "--app-dir", str(tmp_path)]
    cmd += ["alert_app:make_app", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # generous: the machine is busy
    while True:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            httpx.get(f"{base}/v1/alerts/1", timeout=1)  # 401: up and answering
            return proc, base
        except httpx.TransportError:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)


def _raise(sessions, scan_id: str) -> int:
    with sessions() as session:
        scan = db.Scan(
            id=scan_id,
            site="ICN",
            lane="3",
            kind="parcel",
            image_sha256="0" * 64,
            image_path=f"{scan_id}.png",
            content_type="image/png",
            width=64,
            height=64,
            status="done",
            attempts=1,
        )
        session.add(scan)
        session.flush()
        alert = alerts.raise_alert(
            session,
            scan=scan,
            detections=[Detection((1, 1, 9, 9), "gun", 0, 0.8)],
            thresholds={"gun": 0.5},
            overlay_url="/o.png",
            ack_deadline_s=600,
        )
        session.commit()
        return alert.seq


def _read_alerts(lines, until_seq: int, timeout: float = 20) -> tuple[dict, list[int]]:
    """The hello event and the alert ids up to ``until_seq``, then up to the next
    keep-alive (which only comes after a silence: nothing else was queued)."""
    hello: dict = {}
    seqs: list[int] = []
    t0 = time.monotonic()
    event: dict[str, str] = {}
    for line in lines:
        assert time.monotonic() - t0 < timeout
        if line.startswith(":"):
            if seqs and seqs[-1] >= until_seq:
                return hello, seqs
            continue
        if line:
            name, _, value = line.partition(": ")
            event[name] = value
            continue
        if event.get("event") == "hello":
            hello = event
        elif event.get("event") == "alert" and "id" in event:
            seqs.append(int(event["id"]))
        event = {}
    raise AssertionError("stream ended")


def test_sigkill_then_restart_resumes_from_last_event_id(tmp_path):
    (tmp_path / "alert_app.py").write_text(APP_MODULE)
    url = f"sqlite:///{tmp_path / 'server.db'}"
    engine = db.make_engine(url)
    db.migrate(engine)
    sessions = db.session_factory(engine)
    with sessions() as session:
        token = create_token(session, name="handheld-7", role="inspector")
    headers = {"Authorization": f"Bearer {token}"}

    first, base = _start(tmp_path, url)
    try:
        with (
            httpx.Client(base_url=base, headers=headers, timeout=10) as client,
            client.stream("GET", "/v1/alerts/stream", params={"last_id": 0}) as stream,
        ):
            lines = stream.iter_lines()
            assert [_raise(sessions, s) for s in ("k1", "k2")] == [1, 2]
            hello1, seen = _read_alerts(lines, until_seq=2)
            assert seen == [1, 2]
            # Committed while the handheld is connected, and the server then dies
            # before (or just after) delivering it: a crash at the worst moment.
            _raise(sessions, "k3")
            os.kill(first.pid, signal.SIGKILL)
            assert first.wait(10) == -signal.SIGKILL
            last_seen = seen[-1]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    # Committed while no server runs at all.
    assert [_raise(sessions, s) for s in ("k4", "k5")] == [4, 5]

    second, base = _start(tmp_path, url)
    try:
        resume = {**headers, "Last-Event-ID": str(last_seen)}
        with (
            httpx.Client(base_url=base, headers=resume, timeout=10) as client,
            client.stream("GET", "/v1/alerts/stream") as stream,
        ):
            lines = stream.iter_lines()
            hello2, missed = _read_alerts(lines, until_seq=5)
            assert missed == [3, 4, 5]  # exactly what was missed, none twice
            # Same database, same epoch: the handheld's last id still means the same.
            before, after = json.loads(hello1["data"]), json.loads(hello2["data"])
            assert after["epoch"] == before["epoch"] > 0
            assert (after["last_seq"], after["resume_after"]) == (5, last_seen)
            # Live again after the restart: the new process pushes new commits too.
            s6 = _raise(sessions, "k6")
            _, live = _read_alerts(lines, until_seq=s6)
            assert live == [6]
    finally:
        helpers.stop_process(second, 15)
    engine.dispose()
