"""CCTV video sources, hardened further: stream passwords that no answer or log line
shows, a source deleted or replaced through another server process, and a stalled
read that cannot reach the worker that replaced it.

Real servers (uvicorn in a thread, ``server_cctv_helpers``) with the tiny untrained
models on SQLite. Streams are fakes in place of :class:`cv.models.cctv.VideoReader`
(:class:`Feed`): a few frames of one "person", then a read that fails or blocks
until the test lets it go. The two-process test runs two apps on one SQLite file
with real video files.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import server_cctv_helpers as ch
import server_helpers as h
from sqlalchemy import func, select

from cv.errors import DataFormatError
from cv.inference_server import cctv, db

SECRET = "s3cret-pw"
URL = f"rtsp://cam:{SECRET}@10.0.0.5/stream1"
SHOWN = "rtsp://cam:***@10.0.0.5/stream1"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ch.models_base(tmp_path_factory)


class Client(ch.Client):
    """HTTP calls to one server; every answer's text is kept, to look for a password."""

    def __init__(self, server: ch.ThreadServer, tokens: dict[str, dict[str, str]]) -> None:
        super().__init__(server, tokens)
        self.answers: list[str] = []

    def request(self, method: str, path: str, who: str = "admin", **kwargs: Any) -> Any:
        r = super().request(method, path, who, **kwargs)
        self.answers.append(r.text)
        return r

    @property
    def service(self) -> cctv.CctvService:
        return self.server.services.cctv

    def put_source(self, camera_id: str, url: str, **fields: Any) -> Any:
        return self.request("PUT", f"/v1/cameras/{camera_id}/source", json={"url": url, **fields})

    def kept_url(self, camera_id: str) -> str | None:
        with self.server.services.sessions() as session:
            return session.get(db.Camera, camera_id).source_url

    def stored_tracks(self, camera_id: str) -> int:
        with self.server.services.sessions() as session:
            rows = select(func.count()).where(db.ReidTrack.camera_id == camera_id)
            return session.scalar(rows.select_from(db.ReidTrack))


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, models: Path) -> Iterator[Client]:
    tmp = tmp_path_factory.mktemp("cctv-sources-hardening")
    with ch.ThreadServer(ch.cctv_settings(tmp, models)) as server:
        yield Client(server, h.make_tokens(server.app))


# --------------------------------------------------------------------------- fake streams


@dataclass
class Feed:
    """What a fake stream URL plays: ``frames`` frames of one person, then a read that
    blocks until ``release`` is set (``stalled`` is set when it starts) and gives one
    frame more, or fails if ``end`` is then ``"fail"``."""

    frames: int
    end: str = "stall"
    release: threading.Event = field(default_factory=threading.Event)
    stalled: threading.Event = field(default_factory=threading.Event)
    opened: list[str] = field(default_factory=list)


@pytest.fixture
def feeds(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Feed]]:
    """URL -> :class:`Feed`, read by the server in place of OpenCV; any other URL
    cannot be opened, as an unreachable camera. A stop waits 0.2 s for a stalled
    read; stalled reads are let go at the end."""
    known: dict[str, Feed] = {}
    scene = ch.person("c", 144, 240)

    class FakeReader:
        def __init__(self, source: str, *, fps: float | None = None) -> None:
            if source not in known:
                raise DataFormatError("OpenCV cannot open this video", path=source)
            self.source = source
            self.feed = known[source]
            self.feed.opened.append(source)
            self.fps = fps or 10.0
            self.frame_count = None

        def __iter__(self) -> Iterator[np.ndarray]:
            for _ in range(self.feed.frames):
                yield scene.copy()
            self.feed.stalled.set()
            self.feed.release.wait(30)
            if self.feed.end == "fail":
                raise DataFormatError("no frame could be decoded", path=self.source)
            yield scene.copy()

        def close(self) -> None:
            pass

    monkeypatch.setattr("cv.models.cctv.VideoReader", FakeReader)
    monkeypatch.setattr(cctv, "RECONNECT_FIRST_S", 0.1)
    monkeypatch.setattr(cctv, "SOURCE_STOP_S", 0.2)
    yield known
    for feed in known.values():
        feed.release.set()


# --------------------------------------------------------------------------- passwords


def test_no_answer_audit_line_or_log_line_shows_a_stream_password(
    srv: Client, feeds: dict[str, Feed], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cv")
    srv.camera("pw-1")
    files = [("images", ("ref.png", ch.png(ch.person("c", 144, 240)), "image/png"))]
    r = srv.request("POST", "/v1/watchlist/entries", files=files, data=ch.enrol_form())
    assert r.status_code == 201, r.text
    entry = r.json()["id"]
    feeds[URL] = Feed(frames=6)

    r = srv.put_source("pw-1", URL)
    assert r.status_code == 200, r.text
    assert r.json()["url"] == SHOWN
    ch.wait_for(feeds[URL].stalled.is_set, 60, "the stream's frames")
    assert srv.request("GET", "/v1/cameras/pw-1").json()["source_url"] == SHOWN
    listed = {c["id"]: c for c in srv.request("GET", "/v1/cameras").json()["cameras"]}
    assert listed["pw-1"]["source_url"] == SHOWN
    assert srv.source("pw-1").json()["url"] == SHOWN
    sources = srv.request("GET", "/v1/cctv/status").json()["sources"]
    assert SHOWN in {s["url"] for s in sources}
    assert srv.kept_url("pw-1") == URL  # the worker needs it to reconnect

    # The traveller was seen: the match line names the source without its password.
    (match, *_) = ch.wait_for(
        lambda: srv.request(
            "GET", "/v1/audit", params={"action": "match", "camera_id": "pw-1"}
        ).json()["entries"],
        30,
        "a match",
    )
    assert match["detail"]["source"] == f"source:{SHOWN}"

    # A PUT of what the page shows, with another setting, keeps the password (the
    # worker it replaces is stalled: it is left to end by itself).
    r = srv.put_source("pw-1", SHOWN, realtime=False)
    assert r.status_code == 200, r.text
    assert r.json()["url"] == SHOWN and r.json()["realtime"] is False
    assert srv.kept_url("pw-1") == URL and feeds[URL].opened == [URL, URL]
    set_ = srv.request(
        "GET", "/v1/audit", params={"action": "camera", "camera_id": "pw-1", "order": "desc"}
    ).json()["entries"][0]["detail"]
    assert set_["event"] == "source set" and set_["url"] == SHOWN
    assert set_["before"]["url"] == SHOWN

    # A stream that cannot be opened is refused without its password in the answer.
    r = srv.put_source("pw-1", f"rtsp://cam:{SECRET}@10.0.0.9/none")
    assert r.status_code == 422 and "rtsp://cam:***@10.0.0.9/none" in r.json()["detail"]

    # The stream fails, then cannot be opened again: the reasons shown name it masked.
    feeds[URL].end = "fail"
    feeds.pop(URL).release.set()
    down = ch.wait_for(
        lambda: (s := srv.source("pw-1").json())["error"] and "cannot open" in s["error"] and s,
        30,
        "the worker to report the stream down",
    )
    assert down["state"] == "reconnecting" and SHOWN in down["error"]
    assert f"{SHOWN}: no frame could be decoded" in caplog.text
    assert srv.request("DELETE", "/v1/cameras/pw-1/source").json()["url"] == SHOWN
    removed = srv.request(
        "GET", "/v1/audit", params={"action": "camera", "camera_id": "pw-1", "order": "desc"}
    ).json()["entries"][0]["detail"]
    assert removed["event"] == "source removed" and removed["url"] == SHOWN
    r = srv.request("POST", f"/v1/watchlist/entries/{entry}/revoke", json={"reason": "test over"})
    assert r.status_code == 200, r.text

    assert all(SECRET not in text for text in srv.answers)
    assert SECRET not in caplog.text


QUERY_URL = (
    f"http://10.0.0.7/flv?port=1935&app=bcs&stream=channel0_main.bcs&user=admin&password={SECRET}"
)
QUERY_SHOWN = QUERY_URL.replace(SECRET, "***")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (QUERY_URL, QUERY_SHOWN),  # Reolink, Amcrest, Dahua's HTTP streams
        (
            f"http://10.0.0.8/cgi-bin/CGIStream.cgi?cmd=GetMJStream&usr=admin&pwd={SECRET}",
            "http://10.0.0.8/cgi-bin/CGIStream.cgi?cmd=GetMJStream&usr=admin&pwd=***",
        ),
        (
            f"rtsp://cam:{SECRET}@10.0.0.5/live?passwd={SECRET}&pass={SECRET}#main",
            "rtsp://cam:***@10.0.0.5/live?passwd=***&pass=***#main",
        ),
        (
            f"https://gw.example/hls.m3u8?access_token={SECRET}&X-Amz-Signature={SECRET}&ch=1",
            "https://gw.example/hls.m3u8?access_token=***&X-Amz-Signature=***&ch=1",
        ),
        (f"http://10.0.0.9?Passphrase={SECRET}", "http://10.0.0.9?Passphrase=***"),
        # An "@" or ":" in the query is no user information.
        ("http://10.0.0.9?mail=a:b@c&token=", "http://10.0.0.9?mail=a:b@c&token="),
        # A password holding an unencoded "#" or "?" is masked whole.
        ("rtsp://admin:Admin#123@cam/live", "rtsp://admin:***@cam/live"),
        ("rtsp://admin:pa?ss@cam/live?pwd=x", "rtsp://admin:***@cam/live?pwd=***"),
        ("rtsp://admin:pa@ss@cam", "rtsp://admin:***@cam"),
        ("/videos/hall.mp4?password=x", "/videos/hall.mp4?password=x"),  # a file, as named
    ],
)
def test_passwords_in_the_query_string_are_masked(url: str, shown: str) -> None:
    assert cctv.redact_url(url) == shown
    assert cctv.redact_url(shown) == shown  # what a client sends back stays as shown
    assert cctv.redact_text(f"source:{url}: failed") == f"source:{shown}: failed"


def test_a_stream_whose_password_is_in_its_query_string(
    srv: Client, feeds: dict[str, Feed], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cv")
    srv.camera("pwq-1")
    feeds[QUERY_URL] = Feed(frames=3)
    r = srv.put_source("pwq-1", QUERY_URL)
    assert r.status_code == 200 and r.json()["url"] == QUERY_SHOWN, r.text
    assert srv.request("GET", "/v1/cameras/pwq-1").json()["source_url"] == QUERY_SHOWN
    assert srv.source("pwq-1").json()["url"] == QUERY_SHOWN
    sources = srv.request("GET", "/v1/cctv/status").json()["sources"]
    assert QUERY_SHOWN in {s["url"] for s in sources}
    assert srv.kept_url("pwq-1") == QUERY_URL

    # Sent back as shown, with another setting: the kept password stays.
    ch.wait_for(feeds[QUERY_URL].stalled.is_set, 60, "the stream's frames")
    r = srv.put_source("pwq-1", QUERY_SHOWN, loop=True)
    assert r.status_code == 200 and r.json()["url"] == QUERY_SHOWN, r.text
    assert srv.kept_url("pwq-1") == QUERY_URL and feeds[QUERY_URL].opened == [QUERY_URL] * 2
    # Another password is another URL: kept as sent.
    other = QUERY_URL.replace(SECRET, "n3w-pw")
    feeds[other] = Feed(frames=1)
    assert srv.put_source("pwq-1", other).json()["url"] == QUERY_SHOWN
    assert srv.kept_url("pwq-1") == other
    # One that cannot be opened is refused naming it masked.
    r = srv.put_source("pwq-1", QUERY_URL.replace("10.0.0.7", "10.0.0.99"))
    assert r.status_code == 422 and QUERY_SHOWN.replace("10.0.0.7", "10.0.0.99") in r.text

    assert srv.request("DELETE", "/v1/cameras/pwq-1/source").json()["url"] == QUERY_SHOWN
    lines = srv.request(
        "GET", "/v1/audit", params={"action": "camera", "camera_id": "pwq-1"}
    ).json()["entries"]
    details = [line["detail"] for line in lines if line["detail"]["event"].startswith("source")]
    assert [d["event"] for d in details] == ["source set"] * 3 + ["source removed"]
    assert {d["url"] for d in details} == {QUERY_SHOWN}
    assert {d["before"]["url"] for d in details if "before" in d} == {QUERY_SHOWN}
    assert all(SECRET not in text and "n3w-pw" not in text for text in srv.answers)
    assert SECRET not in caplog.text and "n3w-pw" not in caplog.text


def test_audit_lines_written_before_the_masking_are_answered_masked(srv: Client) -> None:
    """The audit log is append-only: what older versions wrote there (a ``match``
    line's ``source:<url>`` with the password, query-string passwords) stays in the
    database, and is masked in every answer."""
    legacy = [
        ("match", {"source": f"source:{URL}", "similarity": 0.9}),
        ("camera", {"event": "source set", "url": QUERY_URL, "before": {"url": URL}}),
        ("camera", {"event": "source removed", "url": QUERY_URL, "state": "stopped"}),
        ("camera", {"event": "note", "errors": [f"DataFormatError: {URL}: no frame"]}),
    ]
    with srv.server.services.sessions() as session:
        for action, detail in legacy:
            cctv.audit(
                session, actor=cctv.SYSTEM, action=action, camera_id="legacy-1", detail=detail
            )
        session.commit()
    r = srv.request("GET", "/v1/audit", params={"camera_id": "legacy-1"})
    assert r.status_code == 200 and SECRET not in r.text
    assert [e["detail"] for e in r.json()["entries"]] == [
        {"source": f"source:{SHOWN}", "similarity": 0.9},
        {"event": "source set", "url": QUERY_SHOWN, "before": {"url": SHOWN}},
        {"event": "source removed", "url": QUERY_SHOWN, "state": "stopped"},
        {"event": "note", "errors": [f"DataFormatError: {SHOWN}: no frame"]},
    ]
    r = srv.request("GET", "/v1/audit", params={"camera_id": "legacy-1", "order": "desc"})
    assert SECRET not in r.text
    with srv.server.services.sessions() as session:  # the lines themselves are untouched
        rows = session.scalars(select(db.AuditEntry).where(db.AuditEntry.camera_id == "legacy-1"))
        assert [row.detail for row in rows] == [detail for _, detail in legacy]


# --------------------------------------------------------------------------- processes


def test_a_source_deleted_or_replaced_through_another_process(tmp_path: Path, models: Path) -> None:
    hall = ch.write_video(tmp_path / "hall.mp4", ch.person("c", 144, 240))
    exit_ = ch.write_video(tmp_path / "exit.mp4", ch.person("b", 144, 240))
    settings = ch.cctv_settings(tmp_path, models)
    # What the README asks of several processes on one database: one restores sources.
    other = ch.cctv_settings(tmp_path, models, cctv_restore_sources=False)
    with ch.ThreadServer(settings) as server_a, ch.ThreadServer(other) as server_b:
        a = Client(server_a, h.make_tokens(server_a.app))
        b = Client(server_b, a.tokens)
        a.camera("shared-1")
        loop = {"realtime": True, "loop": True}
        assert a.put_source("shared-1", str(hall), **loop).status_code == 200
        ch.wait_for(lambda: a.source("shared-1").json()["frames"] > 2, 60, "the source")

        # B runs no worker of it (GET shows this process's), yet DELETE forgets it.
        assert b.source("shared-1").status_code == 404
        r = b.request("DELETE", "/v1/cameras/shared-1/source")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "removed" and r.json()["url"] == str(hall)
        assert a.kept_url("shared-1") is None
        # A stops its worker at its next maintenance round, and stores its tracks.
        ch.wait_for(lambda: a.source("shared-1").status_code == 404, 30, "A to stop")
        assert ch.source_threads("shared-1") == []
        assert a.stored_tracks("shared-1") >= 1
        assert b.request("DELETE", "/v1/cameras/shared-1/source").status_code == 404
        removed = a.request(
            "GET", "/v1/audit", params={"action": "camera", "camera_id": "shared-1"}
        ).json()["entries"][-1]["detail"]
        assert removed["event"] == "source removed" and removed["state"] == "removed"

        # Another source set through B: A's worker of the old one stops.
        assert a.put_source("shared-1", str(hall), **loop).status_code == 200
        assert b.put_source("shared-1", str(exit_), **loop).status_code == 200
        ch.wait_for(lambda: a.source("shared-1").status_code == 404, 30, "A to stop")
        assert len(ch.source_threads("shared-1")) == 1
        assert b.source("shared-1").json()["url"] == str(exit_)
        r = b.request("DELETE", "/v1/cameras/shared-1/source")
        assert r.status_code == 200 and r.json()["state"] == "stopped"
        assert ch.source_threads("shared-1") == []


# --------------------------------------------------------------------------- stalled reads


def test_a_read_stalled_past_the_stop_cannot_end_the_new_worker_s_tracks(
    srv: Client, feeds: dict[str, Feed]
) -> None:
    old, new = "rtsp://10.0.0.5/old", "rtsp://10.0.0.5/new"
    feeds[old] = Feed(frames=4)
    feeds[new] = Feed(frames=4)
    srv.camera("stall-1")
    assert srv.put_source("stall-1", old).status_code == 200
    ch.wait_for(feeds[old].stalled.is_set, 60, "the old stream to stall")
    # The old worker's read outlasts the stop: the new one starts all the same, and
    # the old one's open track is stored now.
    assert srv.put_source("stall-1", new).status_code == 200
    ch.wait_for(feeds[new].stalled.is_set, 60, "the new stream's frames")
    assert len(ch.source_threads("stall-1")) == 2
    stored = srv.stored_tracks("stall-1")
    assert stored == 1
    pipeline = srv.service._pipeline
    live = pipeline.camera("stall-1").live_tracks()
    assert len(live) == 1 and live[0].frames == 4

    # The old read returns a frame: the old worker ends without touching the camera.
    feeds[old].release.set()
    ch.wait_for(lambda: len(ch.source_threads("stall-1")) == 1, 30, "the old worker to end")
    assert srv.stored_tracks("stall-1") == stored
    assert [t.frames for t in pipeline.camera("stall-1").live_tracks()] == [4]
    status = srv.source("stall-1").json()
    assert status["url"] == new and status["state"] == "running" and status["frames"] == 4

    feeds[new].release.set()
    assert srv.request("DELETE", "/v1/cameras/stall-1/source").status_code == 200
    assert ch.source_threads("stall-1") == []
