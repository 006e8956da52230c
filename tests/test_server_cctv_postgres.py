"""CCTV re-identification on a real PostgreSQL (``CV_TEST_POSTGRES_URL``, set by
``tests/services.sh``): the migration, the append-only audit log, the frame to
sighting to alert path with its verdict, and video sources across a restart and
across two server processes.

Without the variable these tests skip with the reason shown, except under
``CI=true``, where a missing database is a failure.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pg_helpers
import pytest
import server_cctv_helpers as ch
import server_helpers as h
from sqlalchemy import select, text

from cv.inference_server import db


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh schema of the test PostgreSQL, dropped afterwards."""
    with pg_helpers.postgres_schema("cv_cctv") as url:
        yield url


def test_migration_and_append_only_audit_log_on_postgres(pg_url: str) -> None:
    engine = db.make_engine(pg_url)
    db.migrate(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_log (at, actor, action) VALUES (now(), 'a', 'enrol')"))
    for sql in ("UPDATE audit_log SET actor = 'b'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(Exception, match="audit_log is append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT actor FROM audit_log")).scalars().all() == ["a"]
        version = conn.execute(text("SELECT value FROM counters WHERE name = 'watchlist_version'"))
        assert version.scalar_one() == 0

    h.alembic(engine, "downgrade", "0001")
    with engine.connect() as conn:
        tables = (
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            )
            .scalars()
            .all()
        )
    assert "audit_log" not in tables and "scans" in tables
    db.migrate(engine)
    engine.dispose()


def test_frames_to_sighting_alert_and_verdict_on_postgres(
    pg_url: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    models = tmp_path_factory.getbasetemp() / "cctv-models"
    models.mkdir(exist_ok=True)
    settings = ch.cctv_settings(tmp_path, models, database_url=pg_url)
    with ch.ThreadServer(settings) as server:
        assert server.services.engine.dialect.name == "postgresql"
        tokens = h.make_tokens(server.app)
        http = httpx.Client(base_url=server.base, timeout=60)

        def post(path: str, who: str = "admin", **kwargs: Any) -> httpx.Response:
            return http.post(path, headers=tokens[who], **kwargs)

        camera = {
            "id": "pg-cam",
            "site": "ICN-T1",
            "location": "hall",
            "purpose": "customs-control",
        }
        assert post("/v1/cameras", json=camera).status_code == 201
        person = ch.person("a")
        files = [("images", ("ref.png", ch.png(person), "image/png"))]
        r = post("/v1/watchlist/entries", files=files, data=ch.enrol_form())
        assert r.status_code == 201, r.text
        t0 = time.time()
        for i in range(4):
            r = http.post(
                "/v1/cameras/pg-cam/frames",
                content=ch.png(person),
                params={"timestamp": t0 + i / 10},
                headers={**tokens["camera"], "Content-Type": "image/png"},
            )
            assert r.status_code == 200, r.text
        sightings = http.get("/v1/sightings", headers=tokens["inspector"]).json()["sightings"]
        (sighting,) = sightings
        alert = http.get(f"/v1/alerts/{sighting['alert_seq']}", headers=tokens["inspector"]).json()
        assert alert["alert_kind"] == "reid" and alert["boxes"][0]["category"] == "W-17"
        r = post(f"/v1/alerts/{sighting['alert_seq']}/reject", "inspector", json={"note": "no"})
        assert r.status_code == 200
        got = http.get(f"/v1/sightings/{sighting['id']}", headers=tokens["inspector"]).json()
        assert got["state"] == "rejected"
        actions = [
            e["action"] for e in http.get("/v1/audit", headers=tokens["admin"]).json()["entries"]
        ]
        assert actions == ["camera", "enrol", "search", "match", "reject"]
        assert post("/v1/admin/cctv/purge").status_code == 200


def test_video_sources_survive_a_restart_on_postgres(
    pg_url: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The source columns (migrations 0003 and 0006) on PostgreSQL: kept, restored,
    finished, set again to the same through a second app on the database (the first
    stops its worker) and deleted through the app that runs no worker of it."""
    import cv2

    from cv.inference_server.auth import create_token

    models = tmp_path_factory.getbasetemp() / "cctv-models"
    models.mkdir(exist_ok=True)
    person = ch.person("c", 144, 240)
    video = tmp_path / "hall.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (144, 240))
    for _ in range(6):
        writer.write(cv2.cvtColor(person, cv2.COLOR_RGB2BGR))
    writer.release()
    settings = ch.cctv_settings(tmp_path, models, database_url=pg_url)
    with ch.ThreadServer(settings) as server:
        with server.services.sessions() as session:
            secret = create_token(session, name="pg-sources-admin", role="admin")
        http = httpx.Client(
            base_url=server.base, timeout=60, headers={"Authorization": f"Bearer {secret}"}
        )
        for cam, source in (("pg-once", {"realtime": False}), ("pg-loop", {"loop": True})):
            body = {"id": cam, "site": "ICN-T1", "location": "hall", "purpose": "customs-control"}
            assert http.post("/v1/cameras", json=body).status_code == 201
            r = http.put(f"/v1/cameras/{cam}/source", json={"url": str(video), **source})
            assert r.status_code == 200, r.text
        ch.wait_for(
            lambda: http.get("/v1/cameras/pg-once/source").json()["state"] == "finished",
            90,
            "the file to be read",
        )
    other = ch.cctv_settings(tmp_path, models, database_url=pg_url, cctv_restore_sources=False)
    with ch.ThreadServer(settings) as server, ch.ThreadServer(other) as second:
        auth = {"Authorization": f"Bearer {secret}"}
        http = httpx.Client(base_url=server.base, timeout=60, headers=auth)
        once = http.get("/v1/cameras/pg-once/source").json()
        assert once["state"] == "finished" and once["frames"] == 6
        ch.wait_for(
            lambda: http.get("/v1/cameras/pg-loop/source").json()["frames"] > 0, 60, "the restart"
        )
        assert http.delete("/v1/cameras/pg-once/source").status_code == 200
        # The same source set again through the second process (migration 0006's
        # source_generation): the first stops its worker, one worker reads the camera.
        second_http = httpx.Client(base_url=second.base, timeout=60, headers=auth)
        r = second_http.put("/v1/cameras/pg-loop/source", json={"url": str(video), "loop": True})
        assert r.status_code == 200, r.text
        ch.wait_for(
            lambda: http.get("/v1/cameras/pg-loop/source").status_code == 404,
            30,
            "the first process's worker to stop at its next maintenance round",
        )
        assert len(ch.source_threads("pg-loop")) == 1
        assert second_http.get("/v1/cameras/pg-loop/source").json()["state"] == "running"
        # A DELETE through the process that runs none: the other one stops its worker.
        r = http.delete("/v1/cameras/pg-loop/source")
        assert r.status_code == 200 and r.json()["state"] == "removed"
        ch.wait_for(
            lambda: second_http.get("/v1/cameras/pg-loop/source").status_code == 404,
            30,
            "the worker to stop at its process's next maintenance round",
        )
        assert ch.source_threads("pg-loop") == []
    engine = db.make_engine(pg_url)
    with db.session_factory(engine)() as session:
        ids = ["pg-once", "pg-loop"]
        urls = session.scalars(select(db.Camera.source_url).where(db.Camera.id.in_(ids))).all()
    engine.dispose()
    assert urls == [None, None]  # DELETE forgets them
