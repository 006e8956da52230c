"""CCTV in the server, hardened: frame times in a window, one worker per video source,
streams that come back, embedder ids that survive a re-export, searches that
compare like with like, and video-source changes in the audit log.

Real servers (uvicorn in a thread, ``server_cctv_helpers``) with the tiny untrained
models on SQLite; the migration is also run on PostgreSQL when
``CV_TEST_POSTGRES_URL`` is set (``tests/services.sh``).
"""

from __future__ import annotations

import functools
import re
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pg_helpers
import pytest
import server_cctv_helpers as ch
import server_helpers as h
from sqlalchemy import select, text

from cv.errors import DataValidationError
from cv.inference_server import cctv, db

CONTROL = ch.CONTROL
DAY = 86400.0


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ch.models_base(tmp_path_factory)


class Client(ch.Client):
    """HTTP calls to one server with one token per role."""

    @property
    def service(self) -> cctv.CctvService:
        return self.server.services.cctv

    def frame(self, camera_id: str, image: np.ndarray, timestamp: Any) -> httpx.Response:
        return self.http.post(
            f"/v1/cameras/{camera_id}/frames",
            content=ch.png(image),
            params={"timestamp": timestamp},
            headers={**self.tokens["camera"], "Content-Type": "image/png"},
        )

    def audit(self, **params: Any) -> list[dict[str, Any]]:
        r = self.request("GET", "/v1/audit", params={"limit": 1000, **params})
        assert r.status_code == 200, r.text
        return r.json()["entries"]

    def tracks(self, camera_id: str) -> list[db.ReidTrack]:
        with self.server.services.sessions() as session:
            rows = select(db.ReidTrack).where(db.ReidTrack.camera_id == camera_id)
            return list(session.scalars(rows.order_by(db.ReidTrack.id)))


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, models: Path) -> Iterator[Client]:
    tmp = tmp_path_factory.mktemp("cctv-hardening")
    with ch.ThreadServer(ch.cctv_settings(tmp, models)) as server:
        yield Client(server, h.make_tokens(server.app))


class VideoHost:
    """A folder served over HTTP: OpenCV reads a file from it as a live stream."""

    def __init__(self, folder: Path, port: int = 0) -> None:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


# --------------------------------------------------------------------------- frame times


def test_check_frame_time_window() -> None:
    now = 1_790_000_000.0
    ok = cctv.check_frame_time(now - 29 * DAY, now=now, retention_days=30)
    assert ok.timestamp() == pytest.approx(now - 29 * DAY)
    assert cctv.check_frame_time(now + cctv.FRAME_AHEAD_S, now=now, retention_days=30)
    cases = {
        now * 1000: "milliseconds",
        now * 1e6: "microseconds",
        now * 1e9: "nanoseconds",
        now + 400 * DAY: "ahead of the server's clock",
        now - 31 * DAY: "retention period (30 days)",
        1e300: "not a date",
        float("inf"): "not a date",
    }
    for t, words in cases.items():
        with pytest.raises(DataValidationError, match="accepted window") as caught:
            cctv.check_frame_time(t, now=now, retention_days=30)
        assert caught.value.field == "timestamp" and words in str(caught.value), t
    hint = "it looks like milliseconds since the epoch: send seconds (1790000000.000)"
    with pytest.raises(DataValidationError, match=re.escape(hint)):
        cctv.check_frame_time(now * 1000, now=now, retention_days=30)


def test_a_refused_frame_time_leaves_the_camera_working(srv: Client) -> None:
    srv.camera("ts-1")
    person = ch.person("a")
    now = time.time()
    assert srv.frame("ts-1", person, f"{now:.3f}").status_code == 200
    # Epoch milliseconds: a 422 naming the field, the window and the likely unit ...
    r = srv.frame("ts-1", person, f"{(now + 0.1) * 1000:.0f}")
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == "timestamp"
    assert "accepted window" in body["detail"] and "milliseconds" in body["detail"]
    # ... and the camera is not stuck: the next right frame goes through.
    r = srv.frame("ts-1", person, f"{now + 0.2:.3f}")
    assert r.status_code == 200, r.text
    for bad in (
        f"{now + 400 * DAY:.3f}",  # a plausible date, but a year ahead
        f"{now - 40 * DAY:.3f}",  # older than the 30-day retention
        "9999-12-31T23:59:59",
        "1e300",
    ):
        r = srv.frame("ts-1", person, bad)
        assert r.status_code == 422 and r.json()["field"] == "timestamp", (bad, r.text)
    # A clock a little ahead is accepted.
    r = srv.frame("ts-1", person, f"{time.time() + 60:.3f}")
    assert r.status_code == 200, r.text
    assert srv.frame("ts-1", person, f"{time.time() + 61:.3f}").status_code == 200


def test_purge_goes_by_when_a_row_was_stored_too(tmp_path: Path) -> None:
    """Rows that carry a time in the future (stored before frame times were checked)
    do not outlive the retention period."""
    from cv.inference_server.storage import ImageStore

    engine = db.make_engine(f"sqlite:///{tmp_path / 'cv.db'}")
    db.migrate(engine)
    sessions = db.session_factory(engine)
    now = db.utcnow()
    future, stored = now + timedelta(days=400), now - timedelta(days=40)
    vec = np.ones(4, np.float32).tobytes()
    with sessions() as session:
        session.add(db.Camera(id="fut-1", site="ICN", location="T1", purpose=CONTROL))
        session.flush()
        for track_id, created in ((1, stored), (2, now)):
            session.add(
                db.ReidTrack(
                    camera_id="fut-1",
                    track_id=track_id,
                    first_seen=future,
                    last_seen=future,
                    embedding=vec,
                    dim=4,
                    matched=False,
                    created_at=created,
                )
            )
        session.commit()
    with sessions() as session:
        report = cctv.purge(session, ImageStore(tmp_path / "images"), now=now, retention_days=30)
    with sessions() as session:
        left = [t.track_id for t in session.scalars(select(db.ReidTrack))]
    assert report.tracks == 1 and left == [2]
    engine.dispose()


def test_an_unpaced_file_source_never_runs_ahead_of_the_clock(srv: Client, tmp_path: Path) -> None:
    # 40 frames at 1 frame/s: 40 s of video, read in a few seconds.
    video = ch.write_video(tmp_path / "slow.mp4", ch.person("c", 144, 240), frames=40, fps=1.0)
    srv.camera("unpaced-1")
    r = srv.request(
        "PUT", "/v1/cameras/unpaced-1/source", json={"url": str(video), "realtime": False}
    )
    assert r.status_code == 200, r.text
    ch.wait_for(
        lambda: srv.source("unpaced-1").json()["state"] == "finished", 120, "the file to be read"
    )
    assert srv.source("unpaced-1").json()["frames"] == 40
    done = time.time()
    (track,) = srv.tracks("unpaced-1")
    first, last = (
        cctv.as_utc(track.first_seen).timestamp(),
        cctv.as_utc(track.last_seen).timestamp(),
    )
    assert last <= done + 0.5  # never in the future
    assert last - first == pytest.approx(39.0, abs=0.01)  # spaced by the file's frame rate


# --------------------------------------------------------------------------- one worker per source


def test_concurrent_source_changes_leave_one_worker_that_delete_stops(
    srv: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = ch.write_video(tmp_path / "loop.mp4", ch.person("c", 144, 240))
    srv.camera("race-1")
    # The three PUTs of a round have opened their video before any goes on.
    barrier = threading.Barrier(3)
    open_source = srv.service._open_source

    def opened_together(*args: Any, **kwargs: Any) -> Any:
        worker = open_source(*args, **kwargs)
        barrier.wait(timeout=30)
        return worker

    monkeypatch.setattr(srv.service, "_open_source", opened_together)
    codes: list[int] = []
    status_codes: list[int] = []
    stop_polling = threading.Event()

    def put() -> None:
        with httpx.Client(base_url=srv.server.base, timeout=60) as http:
            body = {"url": str(video), "realtime": True, "loop": True}
            r = http.put("/v1/cameras/race-1/source", json=body, headers=srv.tokens["admin"])
            codes.append(r.status_code)

    def poll() -> None:  # status() iterates the sources while they change
        with httpx.Client(base_url=srv.server.base, timeout=60) as http:
            while not stop_polling.is_set():
                r = http.get("/v1/cctv/status", headers=srv.tokens["admin"])
                status_codes.append(r.status_code)

    poller = threading.Thread(target=poll)
    poller.start()
    for _ in range(3):
        puts = [threading.Thread(target=put) for _ in range(3)]
        for t in puts:
            t.start()
        for t in puts:
            t.join()
    assert codes == [200] * 9
    ch.wait_for(lambda: srv.source("race-1").json()["frames"] > 0, 60, "the source")
    assert len(ch.source_threads("race-1")) == 1
    r = srv.request("DELETE", "/v1/cameras/race-1/source")
    assert r.status_code == 200 and r.json()["state"] == "stopped"
    assert ch.source_threads("race-1") == []  # stopped and waited for, not left reading
    stop_polling.set()
    poller.join()
    assert status_codes and set(status_codes) == {200}
    assert srv.source("race-1").status_code == 404
    live = srv.request("GET", "/v1/cctv/status").json()
    assert "race-1" not in {s["camera_id"] for s in live["sources"]}
    assert "race-1" not in live["cameras_live"]  # its open tracks were stored
    # Every PUT that answered 200 is one "source set" line; the DELETE one "source removed".
    events = [
        a["detail"]["event"]
        for a in srv.audit(camera_id="race-1", action="camera")
        if a["detail"]["event"].startswith("source")
    ]
    assert events == ["source set"] * 9 + ["source removed"]


def test_restoring_sources_while_they_are_set_starts_one_worker(
    srv: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = ch.write_video(tmp_path / "hall.mp4", ch.person("c", 144, 240))
    srv.camera("restore-race-1")
    service = srv.service
    with srv.server.services.sessions() as session:  # kept from before a restart
        camera = session.get(db.Camera, "restore-race-1")
        camera.source_url, camera.source_loop = str(video), True
        session.commit()
    # Two restores (as at start-up) and a PUT have opened the video before any goes on.
    barrier = threading.Barrier(3)
    open_source = service._open_source

    def opened_together(camera_id: str, *args: Any, **kwargs: Any) -> Any:
        worker = open_source(camera_id, *args, **kwargs)
        if camera_id == "restore-race-1":
            barrier.wait(timeout=30)
        return worker

    launch = service._launch

    def slow_launch(*args: Any) -> Any:  # a wide gap between the check and the launch
        time.sleep(0.2)
        return launch(*args)

    monkeypatch.setattr(service, "_open_source", opened_together)
    monkeypatch.setattr(service, "_launch", slow_launch)
    runs = [threading.Thread(target=service.restore_sources) for _ in range(2)]
    runs.append(
        threading.Thread(
            target=service.start_source,
            args=("restore-race-1", str(video)),
            kwargs={"realtime": True, "loop": True},
        )
    )
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    assert len(ch.source_threads("restore-race-1")) == 1
    assert service.source_status("restore-race-1").state in ("starting", "running")
    service.stop_source("restore-race-1")
    assert ch.source_threads("restore-race-1") == []


# --------------------------------------------------------------------------- streams


def test_a_stream_that_drops_is_opened_again_until_stopped(
    srv: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cctv, "RECONNECT_FIRST_S", 0.2)
    monkeypatch.setattr(cctv, "RECONNECT_MAX_S", 0.4)
    ch.write_video(tmp_path / "live.mp4", ch.person("c", 144, 240))
    host = VideoHost(tmp_path)
    try:
        srv.camera("live-1")
        r = srv.request("PUT", "/v1/cameras/live-1/source", json={"url": host.url("live.mp4")})
        assert r.status_code == 200, r.text
        # Each time the "stream" ends (12 frames), the worker opens it again.
        again = ch.wait_for(
            lambda: (s := srv.source("live-1").json())["reconnects"] >= 2 and s,
            60,
            "the stream to be opened again",
        )
        assert again["frames"] >= 24 and again["state"] in ("running", "reconnecting")
        # The tracks of each run of the stream were ended and stored.
        assert len(srv.tracks("live-1")) >= 2
        # The camera goes away: the worker keeps trying, and says why.
        host.close()
        down = ch.wait_for(
            lambda: (
                (s := srv.source("live-1").json())["state"] == "reconnecting"
                and s["error"]
                and "DataFormatError" in s["error"]
                and s
            ),
            30,
            "the worker to report the stream down",
        )
        assert "cannot open" in down["error"]
        time.sleep(1.0)
        assert srv.source("live-1").json()["state"] == "reconnecting"
        assert len(ch.source_threads("live-1")) == 1
        # It comes back on the same address: frames flow again.
        host = VideoHost(tmp_path, port=host.port)
        frames = down["frames"]
        ch.wait_for(
            lambda: srv.source("live-1").json()["frames"] > frames, 30, "the stream to come back"
        )
        r = srv.request("DELETE", "/v1/cameras/live-1/source")
        assert r.status_code == 200 and r.json()["state"] == "stopped"
        assert ch.source_threads("live-1") == []
    finally:
        host.close()


def test_a_kept_stream_that_does_not_answer_at_start_up_is_tried_again(
    tmp_path: Path, models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cctv, "RECONNECT_FIRST_S", 0.2)
    monkeypatch.setattr(cctv, "RECONNECT_MAX_S", 0.4)
    folder = tmp_path / "videos"
    folder.mkdir()
    ch.write_video(folder / "live.mp4", ch.person("c", 144, 240))
    port = h.free_port()
    url = f"http://127.0.0.1:{port}/live.mp4"
    settings = ch.cctv_settings(tmp_path, models)
    ch.kept_source(settings, "kept-live-1", url, active=True)
    with ch.ThreadServer(settings) as server:
        client = Client(server, h.make_tokens(server.app))
        status = client.source("kept-live-1").json()
        assert status["state"] == "reconnecting" and "cannot open" in status["error"]
        host = VideoHost(folder, port=port)
        try:
            ch.wait_for(lambda: client.source("kept-live-1").json()["frames"] > 0, 60, "the stream")
            assert client.request("DELETE", "/v1/cameras/kept-live-1/source").status_code == 200
            assert ch.source_threads("kept-live-1") == []
        finally:
            host.close()


# --------------------------------------------------------------------------- embedder ids


def fake_embedder(files: dict[str, str], sha256: dict[str, str]) -> Any:
    record = SimpleNamespace(name="reid-x", version=3, files=files, sha256=sha256)
    return SimpleNamespace(record=record)


def test_the_embedder_id_follows_the_weights_not_the_graph() -> None:
    files = {"state_dict": "model.safetensors", "onnx": "model.onnx"}
    one = fake_embedder(files, {"model.safetensors": "f" * 64, "model.onnx": "1" * 64})
    two = fake_embedder(files, {"model.safetensors": "f" * 64, "model.onnx": "0" * 64})
    assert cctv.embedder_id_of(one) == cctv.embedder_id_of(two) == "reid-x@3:" + "f" * 12
    # What earlier servers called them: the smallest hash of any file.
    assert cctv.legacy_embedder_id_of(one) == "reid-x@3:" + "1" * 12
    # No weights file in the record: its smallest file hash, as before.
    graph_only = fake_embedder({"onnx": "model.onnx"}, {"model.onnx": "2" * 64})
    assert cctv.embedder_id_of(graph_only) == "reid-x@3:" + "2" * 12


def test_re_exporting_the_onnx_graph_keeps_the_embedder_id(models: Path, tmp_path: Path) -> None:
    from cv.models.reid import export_reid_onnx, load_embedder
    from cv.models.weights import read_record

    folder = tmp_path / "reid"
    shutil.copytree(ch.make_embedder_dir(models), folder)
    export_reid_onnx(folder, opset=17)
    before = load_embedder(folder, runtime="onnx")
    graph = read_record(folder).sha256["model.onnx"]
    export_reid_onnx(folder, opset=18)
    after = load_embedder(folder, runtime="onnx")
    assert read_record(folder).sha256["model.onnx"] != graph  # another graph ...
    assert cctv.embedder_id_of(after) == cctv.embedder_id_of(before)  # ... the same id


def test_entries_under_the_old_style_id_keep_matching(
    tmp_path: Path, models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry stored under the id earlier servers gave the loaded files is renamed at
    start-up: it is in the index, and stays there after any later re-export."""
    settings = ch.cctv_settings(tmp_path, models)
    with ch.ThreadServer(settings) as server:
        tokens = h.make_tokens(server.app)
        client = Client(server, tokens)
        files = [("images", ("ref.png", ch.png(ch.person("a")), "image/png"))]
        r = client.request("POST", "/v1/watchlist/entries", files=files, data=ch.enrol_form())
        assert r.status_code == 201, r.text
        entry_id, current = r.json()["id"], r.json()["embedder"]
        other_id = client.request(
            "POST", "/v1/watchlist/entries", files=files, data=ch.enrol_form(label="W-OTHER")
        ).json()["id"]
    legacy = current.rsplit(":", 1)[0] + ":0123456789ab"
    engine = db.make_engine(settings.database_url)
    with db.session_factory(engine)() as session:
        session.get(db.WatchlistEntry, entry_id).embedder = legacy
        session.get(db.WatchlistEntry, other_id).embedder = "another-model@1:abcdefabcdef"
        session.commit()
    # A server whose files earlier servers called `legacy`.
    monkeypatch.setattr(cctv, "legacy_embedder_id_of", lambda embedder: legacy)
    with ch.ThreadServer(settings) as server:
        client = Client(server, tokens)
        index = client.request("GET", "/v1/cctv/status").json()["index"]
        assert index["entries"] == 1 and index["other_embedder"] == 1
        assert client.service.indexed_entries().keys() == {entry_id}
    with db.session_factory(engine)() as session:
        assert session.get(db.WatchlistEntry, entry_id).embedder == current
        assert session.get(db.WatchlistEntry, other_id).embedder == "another-model@1:abcdefabcdef"
    engine.dispose()


# --------------------------------------------------------------------------- migration 0004


def _migration_roundtrip(url: str) -> None:
    engine = db.make_engine(url)
    h.alembic(engine, "upgrade", "0003")
    old, new = "reid-osnet-erase@1:56928858fc15", "reid-osnet-erase@1:5f3c27704c92"
    insert = text(
        "INSERT INTO watchlist_entries (id, label, list_name, authorised_by, reason, "
        "legal_basis, created_by, created_at, expires_at, embedder) VALUES (:id, 'W', 'l', "
        "'a', 'r', 'b', 'admin', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, :embedder)"
    )
    with engine.begin() as conn:
        conn.execute(insert, {"id": "wl-shipped", "embedder": old})
        conn.execute(insert, {"id": "wl-custom", "embedder": "site-model@2:0123456789ab"})
    db.migrate(engine)
    query = text("SELECT id, embedder FROM watchlist_entries ORDER BY id")
    with engine.connect() as conn:
        assert dict(conn.execute(query).all()) == {
            "wl-custom": "site-model@2:0123456789ab",
            "wl-shipped": new,
        }
        conn.execute(text("SELECT embedder FROM reid_tracks")).all()  # the column exists
    h.alembic(engine, "downgrade", "0003")
    with engine.connect() as conn:
        assert dict(conn.execute(query).all())["wl-shipped"] == old
        with pytest.raises(Exception, match="embedder"):
            conn.execute(text("SELECT embedder FROM reid_tracks")).all()
    db.migrate(engine)
    engine.dispose()


def test_migration_0004_on_sqlite(tmp_path: Path) -> None:
    _migration_roundtrip(f"sqlite:///{tmp_path / 'm.db'}")


def test_migration_0004_on_postgres() -> None:
    with pg_helpers.postgres_schema("cv_m0004") as url:
        _migration_roundtrip(url)


# --------------------------------------------------------------------------- search


def test_search_compares_only_tracks_of_the_entry_s_embedder(srv: Client) -> None:
    person = ch.person("green")
    files = [("images", ("ref.png", ch.png(person), "image/png"))]
    r = srv.request("POST", "/v1/watchlist/entries", files=files, data=ch.enrol_form(label="W-EMB"))
    assert r.status_code == 201, r.text
    entry = r.json()
    srv.camera("emb-1")
    t0 = time.time()
    for i in range(4):
        assert srv.frame("emb-1", person, f"{t0 + i / 10:.3f}").status_code == 200
    srv.camera("emb-1", fps=11.0)  # the track ends and is stored
    (track,) = srv.tracks("emb-1")
    assert track.embedder == entry["embedder"] == srv.service.models.embedder_id
    # The same person's embedding under another model's name, and one stored before
    # tracks named their model: neither is compared.
    with srv.server.services.sessions() as session:
        for embedder in ("another-model@1:abcdefabcdef", None):
            session.add(
                db.ReidTrack(
                    camera_id="emb-1",
                    track_id=track.track_id + 100,
                    first_seen=track.first_seen,
                    last_seen=track.last_seen,
                    frames=track.frames,
                    embedding=track.embedding,
                    dim=track.dim,
                    matched=False,
                    embedder=embedder,
                )
            )
        session.commit()
    body = {"reason": "where did W-EMB go?", "camera_id": "emb-1"}
    r = srv.request("POST", f"/v1/watchlist/entries/{entry['id']}/search", json=body)
    assert r.status_code == 200, r.text
    assert [hit["track_row"] for hit in r.json()["tracks"]] == [track.id]
    (line,) = srv.audit(action="search", entry_id=entry["id"])
    assert line["detail"]["tracks_searched"] == 1 and line["detail"]["tracks_other_embedder"] == 2

    # An entry of another model: refused with 409 by the route, and the refusal is audited.
    with srv.server.services.sessions() as session:
        session.get(db.WatchlistEntry, entry["id"]).embedder = "another-model@1:abcdefabcdef"
        session.commit()
    r = srv.request("POST", f"/v1/watchlist/entries/{entry['id']}/search", json=body)
    assert r.status_code == 409 and r.json()["field"] == "embedder"
    assert "enrol the person again" in r.json()["detail"]
    refused = srv.audit(action="search", entry_id=entry["id"])[-1]
    assert "another-model@1" in refused["detail"]["refused"]


# --------------------------------------------------------------------------- audit


def test_setting_and_removing_a_source_is_audited(srv: Client, tmp_path: Path) -> None:
    video = ch.write_video(tmp_path / "hall.mp4", ch.person("c", 144, 240))
    srv.camera("aud-1")
    # A source that cannot be opened changes nothing, and is not audited.
    r = srv.request("PUT", "/v1/cameras/aud-1/source", json={"url": str(tmp_path / "no.mp4")})
    assert r.status_code == 404
    r = srv.request("PUT", "/v1/cameras/aud-1/source", json={"url": str(video), "realtime": False})
    assert r.status_code == 200, r.text
    ch.wait_for(lambda: srv.source("aud-1").json()["state"] == "finished", 90, "the file")
    assert srv.request("DELETE", "/v1/cameras/aud-1/source").status_code == 200
    lines = [
        a
        for a in srv.audit(camera_id="aud-1", action="camera")
        if a["detail"]["event"].startswith("source")
    ]
    assert [a["detail"]["event"] for a in lines] == ["source set", "source removed"]
    assert {a["actor"] for a in lines} == {"test-admin"}  # the routes name the admin
    set_, removed = (a["detail"] for a in lines)
    assert set_ == {"event": "source set", "url": str(video), "realtime": False, "loop": False}
    assert removed["url"] == str(video) and removed["frames"] == 12
    assert removed["state"] == "finished"

    # With the admin named (what the routes pass), a replaced source shows what it was.
    service = srv.service
    service.start_source("aud-1", str(video), realtime=True, loop=True, actor="ops-admin")
    service.start_source("aud-1", str(video), realtime=False, actor="ops-admin")
    service.stop_source("aud-1", actor="dpo-admin")
    *_, first, second, gone = srv.audit(camera_id="aud-1", action="camera")
    assert [first["actor"], second["actor"], gone["actor"]] == [
        "ops-admin",
        "ops-admin",
        "dpo-admin",
    ]
    assert "before" not in first["detail"]
    assert second["detail"]["before"] == {"url": str(video), "realtime": True, "loop": True}
    assert gone["detail"]["event"] == "source removed"
    assert ch.source_threads("aud-1") == []


def test_the_audit_log_keeps_no_stream_password() -> None:
    assert (
        cctv.redact_url("rtsp://cam:s3cr:et@10.0.0.7:554/stream?x=1")
        == "rtsp://cam:***@10.0.0.7:554/stream?x=1"
    )
    assert cctv.redact_url("rtsp://cam@10.0.0.7/live") == "rtsp://cam@10.0.0.7/live"
    assert cctv.redact_url("/videos/a@b:c.mp4") == "/videos/a@b:c.mp4"
    assert cctv.redact_url("http://u:p@[::1]:80/a") == "http://u:***@[::1]:80/a"
