"""Each set of a camera's video source has its own identity (``cameras.source_generation``,
migration 0006): a source set again through another server process, even to the very
same URL and settings, stops the worker of the process that read it before, so that
one worker reads the camera.

Two real servers (uvicorn in threads, ``server_cctv_helpers``) on one SQLite file
with real video files, as the README asks of several processes: one restores the
kept sources. The migration's round trip also runs on PostgreSQL when
``CV_TEST_POSTGRES_URL`` is set (``tests/services.sh``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pg_helpers
import pytest
import server_cctv_helpers as ch
import server_helpers as h
from sqlalchemy import select, text

from cv.inference_server import db

LOOP = {"realtime": True, "loop": True}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ch.models_base(tmp_path_factory)


def generation(server: ch.ThreadServer, camera_id: str) -> int:
    with server.services.sessions() as session:
        return session.scalar(select(db.Camera.source_generation).where(db.Camera.id == camera_id))


def only_worker_is(owner: ch.Client, other: ch.Client, camera_id: str) -> None:
    """``other`` stops its worker of the camera at its next maintenance round, and
    ``owner``'s runs on: one worker reads the camera."""
    ch.wait_for(lambda: other.source(camera_id).status_code == 404, 30, "the old worker to stop")
    time.sleep(1.0)  # three more maintenance rounds of each process
    assert len(ch.source_threads(camera_id)) == 1
    assert owner.source(camera_id).json()["state"] == "running"
    assert other.source(camera_id).status_code == 404


def test_the_same_source_set_again_through_another_process(tmp_path: Path, models: Path) -> None:
    hall = str(ch.write_video(tmp_path / "hall.mp4", ch.person("c", 144, 240)))
    settings = ch.cctv_settings(tmp_path, models)
    other = ch.cctv_settings(tmp_path, models, cctv_restore_sources=False)
    with ch.ThreadServer(settings) as server_a, ch.ThreadServer(other) as server_b:
        a = ch.Client(server_a, h.make_tokens(server_a.app))
        b = ch.Client(server_b, a.tokens)
        a.camera("same-1")
        assert generation(server_a, "same-1") == 0
        body = {"url": hall, **LOOP}

        # Through A, then again through A: A's own worker is replaced, never stopped
        # by its own maintenance round.
        assert a.request("PUT", "/v1/cameras/same-1/source", json=body).status_code == 200
        assert a.request("PUT", "/v1/cameras/same-1/source", json=body).status_code == 200
        assert generation(server_a, "same-1") == 2
        ch.wait_for(lambda: a.source("same-1").json()["frames"] > 2, 60, "A's worker")
        time.sleep(1.0)
        assert a.source("same-1").json()["state"] == "running"
        assert len(ch.source_threads("same-1")) == 1

        # The very same source sent again through B (a "restart the stream"): B reads
        # it now, and A stops its worker.
        assert b.request("PUT", "/v1/cameras/same-1/source", json=body).status_code == 200
        assert generation(server_a, "same-1") == 3
        only_worker_is(b, a, "same-1")

        # DELETE and PUT of the same source through A within one of B's maintenance
        # periods: B's worker stops all the same.
        r = a.request("DELETE", "/v1/cameras/same-1/source")
        assert r.status_code == 200 and r.json()["state"] == "removed"
        assert a.request("PUT", "/v1/cameras/same-1/source", json=body).status_code == 200
        assert generation(server_a, "same-1") == 5
        only_worker_is(a, b, "same-1")

        r = a.request("DELETE", "/v1/cameras/same-1/source")
        assert r.status_code == 200 and r.json()["state"] == "stopped"
        assert ch.source_threads("same-1") == []
        assert generation(server_a, "same-1") == 6


def test_a_restored_source_set_again_through_another_process(tmp_path: Path, models: Path) -> None:
    """A source restored at start-up reads the generation kept; a PUT of the same
    source through another process moves it, and the restoring process stops."""
    hall = str(ch.write_video(tmp_path / "hall.mp4", ch.person("c", 144, 240)))
    settings = ch.cctv_settings(tmp_path, models)
    with ch.ThreadServer(settings) as server:
        tokens = h.make_tokens(server.app)
        a = ch.Client(server, tokens)
        a.camera("same-2")
        r = a.request("PUT", "/v1/cameras/same-2/source", json={"url": hall, **LOOP})
        assert r.status_code == 200, r.text
    other = ch.cctv_settings(tmp_path, models, cctv_restore_sources=False)
    with ch.ThreadServer(settings) as server_a, ch.ThreadServer(other) as server_b:
        a, b = ch.Client(server_a, tokens), ch.Client(server_b, tokens)
        ch.wait_for(lambda: a.source("same-2").json()["frames"] > 2, 60, "the restart")
        assert generation(server_a, "same-2") == 1  # a restart sets nothing
        r = b.request("PUT", "/v1/cameras/same-2/source", json={"url": hall, **LOOP})
        assert r.status_code == 200, r.text
        only_worker_is(b, a, "same-2")
        assert b.request("DELETE", "/v1/cameras/same-2/source").status_code == 200
        assert ch.source_threads("same-2") == []


# --------------------------------------------------------------------------- migration 0006


def _migration_roundtrip(url: str) -> None:
    engine = db.make_engine(url)
    h.alembic(engine, "upgrade", "0005")
    insert = text(
        "INSERT INTO cameras (id, site, location, purpose, watchlist_allowed, active, "
        "source_url, fps, created_at, updated_at) VALUES (:id, 'ICN-T1', 'hall', "
        "'customs-control', :yes, :yes, :url, 10.0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    with engine.begin() as conn:
        conn.execute(insert, {"id": "cam-kept", "yes": True, "url": "rtsp://10.0.0.5/live"})
        conn.execute(insert, {"id": "cam-none", "yes": True, "url": None})
    db.migrate(engine)
    query = text("SELECT id, source_generation FROM cameras ORDER BY id")
    with engine.connect() as conn:
        # The sources kept before are generation 0; the next PUT or DELETE moves it.
        assert conn.execute(query).all() == [("cam-kept", 0), ("cam-none", 0)]
    with db.session_factory(engine)() as session:
        session.add(db.Camera(id="cam-new", site="s", location="l", purpose="customs-control"))
        session.commit()
        assert session.get(db.Camera, "cam-new").source_generation == 0
    h.alembic(engine, "downgrade", "0005")
    with engine.connect() as conn, pytest.raises(Exception, match="source_generation"):
        conn.execute(query).all()
    with engine.connect() as conn:
        kept = text("SELECT id, source_url FROM cameras ORDER BY id")
        assert conn.execute(kept).all()[0] == ("cam-kept", "rtsp://10.0.0.5/live")
    db.migrate(engine)
    with engine.connect() as conn:
        assert {g for _, g in conn.execute(query).all()} == {0}
    engine.dispose()


def test_migration_0006_on_sqlite(tmp_path: Path) -> None:
    _migration_roundtrip(f"sqlite:///{tmp_path / 'm.db'}")


def test_migration_0006_on_postgres() -> None:
    with pg_helpers.postgres_schema("cv_m0006") as url:
        _migration_roundtrip(url)
