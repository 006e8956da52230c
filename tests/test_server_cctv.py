"""CCTV re-identification in the server, over real HTTP, with tiny real models (SQLite).

A uvicorn server runs ``create_app`` in a thread with an untrained ``osnet_x0_25``
embedder and an untrained ``person`` detector (see ``server_cctv_helpers``): the
detector finds one "person" covering each frame, so the same scene always gives
the same embedding. Every test uses cameras of its own.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import server_cctv_helpers as ch
import server_helpers as h
from sqlalchemy import func, select, text

from cv.inference_server import db

CONTROL = "customs-control"


class Srv:
    """The server under test, a client and one token per role."""

    def __init__(self, server: ch.ThreadServer) -> None:
        self.server = server
        self.tokens = h.make_tokens(server.app)
        self.http = httpx.Client(base_url=server.base, timeout=60)

    @property
    def services(self) -> Any:
        return self.server.services

    def get(self, path: str, who: str = "admin", **params: Any) -> httpx.Response:
        return self.http.get(path, params=params, headers=self.tokens[who])

    def post(self, path: str, who: str = "admin", **kwargs: Any) -> httpx.Response:
        return self.http.post(path, headers=self.tokens[who], **kwargs)

    def camera(self, camera_id: str, purpose: str = CONTROL, **fields: Any) -> dict:
        body = {"id": camera_id, "site": "ICN-T1", "location": f"{camera_id}-hall", **fields}
        r = self.post("/v1/cameras", json={**body, "purpose": purpose})
        assert r.status_code in (200, 201), r.text
        return r.json()

    def revoke_all(self) -> None:
        """Revokes every active entry: the tests share one server, and an untrained
        embedder matches any enrolled person of the same look."""
        for e in self.get("/v1/watchlist/entries", state="active").json()["entries"]:
            r = self.post(f"/v1/watchlist/entries/{e['id']}/revoke", json={"reason": "test"})
            assert r.status_code == 200, r.text

    def enrol(self, image: np.ndarray, name: str = "ref.png", **fields: str) -> httpx.Response:
        files = [("images", (name, ch.png(image), "image/png"))]
        return self.post("/v1/watchlist/entries", files=files, data=ch.enrol_form(**fields))

    def frame(
        self, camera_id: str, image: np.ndarray | bytes, t: float, who: str = "camera"
    ) -> httpx.Response:
        data = image if isinstance(image, bytes) else ch.png(image)
        return self.http.post(
            f"/v1/cameras/{camera_id}/frames",
            content=data,
            params={"timestamp": f"{t:.3f}"},
            headers={**self.tokens[who], "Content-Type": "image/png"},
        )

    def frames(self, camera_id: str, image: np.ndarray, n: int, t0: float) -> float:
        for i in range(n):
            r = self.frame(camera_id, image, t0 + i / 10)
            assert r.status_code == 200, r.text
        return t0 + n / 10

    def sightings(self, **filters: Any) -> list[dict]:
        r = self.get("/v1/sightings", "inspector", **filters)
        assert r.status_code == 200, r.text
        return r.json()["sightings"]

    def audit(self, **filters: Any) -> list[dict]:
        r = self.get("/v1/audit", **{"limit": 1000, **filters})
        assert r.status_code == 200, r.text
        return r.json()["entries"]

    def counts(self) -> dict[str, int]:
        tables = ("watchlist_entries", "watchlist_vectors", "audit_log", "sightings", "reid_tracks")
        with self.services.sessions() as session:
            out = {t: session.scalar(text(f"SELECT count(*) FROM {t}")) for t in tables}
        out["files"] = sum(1 for p in self.services.cctv.store.root.rglob("*") if p.is_file())
        return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ch.models_base(tmp_path_factory)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, models: Path) -> Any:
    tmp = tmp_path_factory.mktemp("cctv")
    with ch.ThreadServer(ch.cctv_settings(tmp, models)) as server:
        yield Srv(server)


# --------------------------------------------------------------------------- schema


def test_migration_creates_the_tables_and_the_audit_log_is_append_only(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    db.migrate(engine)
    with engine.begin() as conn:
        names = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master"))}
        conn.execute(
            text("INSERT INTO audit_log (at, actor, action) VALUES ('2026-01-01', 'a', 'enrol')")
        )
    assert {
        "cameras",
        "watchlist_entries",
        "watchlist_vectors",
        "sightings",
        "reid_tracks",
    } <= names
    assert {"audit_log_no_update", "audit_log_no_delete"} <= names
    for sql in ("UPDATE audit_log SET actor = 'b'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="audit_log is append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT actor FROM audit_log")).scalars().all() == ["a"]

    h.alembic(engine, "downgrade", "0001")
    with engine.begin() as conn:
        names = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master"))}
        counters = conn.execute(text("SELECT name FROM counters")).scalars().all()
    assert "audit_log" not in names and "cameras" not in names and "scans" in names
    assert counters == ["alert_seq"]
    db.migrate(engine)  # and up again
    engine.dispose()


# --------------------------------------------------------------------------- roles


def test_roles_of_the_cctv_routes(srv: Srv) -> None:
    srv.camera("role-cam")
    assert srv.http.get("/v1/sightings").status_code == 401
    r = srv.post("/v1/cameras", "inspector", json={"id": "x"})
    assert r.status_code == 403 and "'admin'" in r.json()["detail"]
    r = srv.post("/v1/watchlist/entries", "inspector", data=ch.enrol_form())
    assert r.status_code == 403
    for who in ("scanner", "reader", "inspector"):
        r = srv.frame("role-cam", ch.person("b"), time.time(), who=who)
        assert r.status_code == 403 and "frames:write" in r.json()["detail"], who
    r = srv.frame("role-cam", ch.person("b"), time.time())
    assert r.status_code == 200 and "sightings" not in r.json()  # a device learns nothing
    for who in ("camera", "reader", "scanner"):
        assert srv.get("/v1/sightings", who).status_code == 403, who
    assert srv.get("/v1/sightings", "inspector").status_code == 200
    assert srv.get("/v1/audit", "inspector").status_code == 403
    assert srv.get("/v1/cctv/status", "inspector").status_code == 403
    assert srv.http.get("/v1/cctv/ready").json() == {"ready": True}


# --------------------------------------------------------------------------- enrolment


def test_enrolment_errors_name_the_problem_and_store_nothing(srv: Srv) -> None:
    before = srv.counts()
    image = ch.person("c", 100, 150)

    r = srv.enrol(image, authorised_by=None)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "authorised_by"
    r = srv.enrol(image, reason="   ")
    assert r.status_code == 422 and r.json()["field"] == "reason"
    assert "who authorised it, why" in r.json()["detail"]
    r = srv.enrol(image, expires_at=ch.in_days(-1))
    assert r.status_code == 422 and r.json()["field"] == "expires_at"
    assert "is not in the future" in r.json()["detail"]
    r = srv.enrol(image, expires_at=ch.in_days(120))
    assert r.status_code == 422 and "more than 90 days ahead" in r.json()["detail"]
    r = srv.enrol(image, expires_at="next tuesday")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "expires_at"
    r = srv.post("/v1/watchlist/entries", data=ch.enrol_form())
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "images"
    files = [
        ("images", ("ok.png", ch.png(image), "image/png")),
        ("images", ("notes.txt", b"not a photo of anybody", "image/png")),
    ]
    r = srv.post("/v1/watchlist/entries", files=files, data=ch.enrol_form())
    assert r.status_code == 415 and r.json()["detail"].startswith("images[1] (notes.txt): not a")
    files[1] = ("images", ("cut.png", ch.png(image)[:300], "image/png"))
    r = srv.post("/v1/watchlist/entries", files=files, data=ch.enrol_form())
    assert r.status_code == 422 and r.json()["detail"].startswith("images[1] (cut.png):")

    assert srv.counts() == before


def test_an_image_without_a_person_is_refused_by_name(tmp_path: Path, models: Path) -> None:
    # Here a person needs a detector score of 0.5, which the untrained detector never gives.
    settings = ch.cctv_settings(tmp_path, models, enrol_person_conf=0.5)
    with ch.ThreadServer(settings) as server:
        one = Srv(server)
        files = [
            ("images", ("front.png", ch.png(ch.person("a")), "image/png")),
            ("images", ("empty-hall.png", ch.png(ch.person("b")), "image/png")),
        ]
        r = one.post("/v1/watchlist/entries", files=files, data=ch.enrol_form())
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "images[0] (front.png)"
        assert "no person found in this image" in r.json()["detail"]
        assert one.counts() == {
            "watchlist_entries": 0,
            "watchlist_vectors": 0,
            "audit_log": 0,
            "sightings": 0,
            "reid_tracks": 0,
            "files": 0,
        }


# --------------------------------------------------------------------------- cameras


def test_only_cameras_whose_purpose_allows_it_feed_the_watch_list(srv: Srv) -> None:
    assert srv.camera("safety-1", purpose="safety")["watchlist_allowed"] is False
    assert srv.camera("count-1", purpose="crowd-counting")["watchlist_allowed"] is False
    assert srv.camera("gate-1")["watchlist_allowed"] is True
    r = srv.post(
        "/v1/cameras", json={"id": "x-1", "site": "S", "location": "L", "purpose": "marketing"}
    )
    assert r.status_code == 422 and r.json()["field"] == "purpose"
    assert "customs-control, safety, crowd-counting" in r.json()["detail"]

    for cam in ("safety-1", "count-1"):
        r = srv.frame(cam, ch.person("a"), time.time())
        assert r.status_code == 403, r.text
        assert "does not allow watch-list matching" in r.json()["detail"]
        r = srv.http.put(
            f"/v1/cameras/{cam}/source",
            json={"url": "/nonexistent.mp4"},
            headers=srv.tokens["admin"],
        )
        assert r.status_code == 403
    srv.camera("gate-1", active=False)
    r = srv.frame("gate-1", ch.person("a"), time.time())
    assert r.status_code == 403 and "inactive" in r.json()["detail"]

    r = srv.frame("nowhere-7", ch.person("a"), time.time())
    assert r.status_code == 404 and "unknown camera 'nowhere-7'" in r.json()["detail"]
    srv.camera("gate-2")
    r = srv.frame("gate-2", b"GIF89a not a frame", time.time())
    assert r.status_code == 415 and "not a PNG, JPEG or TIFF" in r.json()["detail"]
    r = srv.frame("gate-2", ch.png(ch.person("a"))[:200], time.time())
    assert r.status_code == 422 and r.json()["detail"].startswith("image:")
    r = srv.http.post(
        "/v1/cameras/gate-2/frames",
        content=ch.png(ch.person("a")),
        params={"timestamp": "yesterday-ish"},
        headers=srv.tokens["camera"],
    )
    assert r.status_code == 422 and r.json()["field"] == "timestamp"
    # Frames of one camera come in time order.
    now = time.time()
    assert srv.frame("gate-2", ch.person("b"), now + 1).status_code == 200
    r = srv.frame("gate-2", ch.person("b"), now)
    assert r.status_code == 422 and "earlier than the previous frame" in r.json()["detail"]

    with srv.services.sessions() as session:
        for table in (db.ReidTrack, db.Sighting):
            n = session.scalar(
                select(func.count())
                .select_from(table)
                .where(table.camera_id.in_(["safety-1", "count-1"]))
            )
            assert n == 0
    cams = {c["id"]: c for c in srv.get("/v1/cameras").json()["cameras"]}
    assert cams["safety-1"]["purpose"] == "safety" and not cams["gate-1"]["active"]
    events = [e["detail"]["event"] for e in srv.audit(action="camera", camera_id="gate-1")]
    assert events == ["registered", "updated"]


# --------------------------------------------------------------------------- the path


def test_enrol_frames_sighting_alert_on_the_stream_and_confirm(srv: Srv) -> None:
    srv.camera("belt-3", location="belt 3", site="ICN-T2")
    person = ch.person("a")
    r = srv.enrol(person, name="passport-photo.png")
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["state"] == "active" and entry["images"] == 1
    assert entry["authorised_by"] == "Chief Inspector Kim, ICN customs"
    (enrolled,) = srv.audit(action="enrol", entry_id=entry["id"])
    assert enrolled["actor"] == "test-admin" and enrolled["list_name"] == "customs-high-risk"
    assert enrolled["detail"]["legal_basis"] == "Customs Act art. 265 (test)"
    assert enrolled["input_sha256"] == enrolled["detail"]["images"][0]["sha256"]

    newest = srv.get("/v1/alerts", "inspector", limit=1000).json()["alerts"]
    after = max([a["seq"] for a in newest], default=0)
    with (
        ch.stream(
            srv.server.base, "/v1/sightings/stream", srv.tokens["inspector"], last_id=after
        ) as events,
    ):
        assert next(events)["event"] == "hello"
        t0 = time.time()
        srv.frames("belt-3", ch.person("b", *ch.SMALL), 3, t0)  # somebody else first: no match
        srv.frames("belt-3", person, 4, t0 + 1)
        alert = ch.next_event(events, "alert")
    data = alert["data"]
    assert alert["id"] == str(data["seq"])
    assert data["alert_kind"] == "reid" and data["state"] == "open" and data["candidate"] is True
    assert data["notice"] == "candidate — confirm identity before any action"
    assert (data["site"], data["lane"], data["camera_id"]) == ("ICN-T2", "belt 3", "belt-3")
    assert data["entry_id"] == entry["id"] and data["label"] == "W-17"
    assert (data["width"], data["height"]) == (160, 240)
    (box,) = data["boxes"]
    assert box["category"] == "W-17" and box["score"] == pytest.approx(1.0, abs=1e-4)
    assert box["box"][2] > box["box"][0] and box["box"][3] <= 240
    (reason,) = data["reasons"]
    assert reason.startswith("watch-list W-17: similarity 1.00 >= threshold 0.99, camera belt-3, ")
    assert reason.endswith(" UTC")
    seen = datetime.fromisoformat(data["seen_at"])
    assert t0 + 1 <= seen.timestamp() <= t0 + 1.4  # the frame's time, not the server's

    (sighting,) = srv.sightings(camera_id="belt-3")
    assert sighting["id"] == data["sighting_id"] and sighting["state"] == "candidate"
    frame = srv.get(data["image_url"], "inspector")
    assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
    from cv.image import decode_image

    assert decode_image(frame.content).shape == (240, 160, 3)
    assert srv.get(data["crop_url"], "inspector").status_code == 200
    assert srv.get(data["reference_url"], "inspector").status_code == 200
    assert srv.get(data["image_url"], "camera").status_code == 403
    (match,) = srv.audit(action="match", camera_id="belt-3")
    assert match["actor"] == "system" and match["sighting_id"] == sighting["id"]
    assert match["detail"]["source"] == "test-camera" and match["entry_id"] == entry["id"]

    # The stream resumes after an id like the alert stream (Last-Event-ID).
    headers = {**srv.tokens["inspector"], "Last-Event-ID": str(data["seq"] - 1)}
    with ch.stream(srv.server.base, "/v1/sightings/stream", headers) as events:
        assert next(events)["event"] == "hello"
        again = ch.next_event(events, "alert")
        assert again["id"] == str(data["seq"])

    # The inspector on the handheld: "same person", through the alert.
    r = srv.post(f"/v1/alerts/{data['seq']}/confirm", "inspector", json={"note": "met at belt 3"})
    assert r.status_code == 200 and r.json()["state"] == "confirmed"
    r = srv.get(f"/v1/sightings/{sighting['id']}", "inspector")
    assert r.json()["state"] == "confirmed" and r.json()["resolved_by"] == "test-inspector"
    (confirmed,) = srv.audit(action="confirm", camera_id="belt-3")
    assert confirmed["actor"] == "test-inspector" and confirmed["sighting_id"] == sighting["id"]
    assert confirmed["detail"]["meaning"] == "same person"
    assert confirmed["detail"]["note"] == "met at belt 3"
    r = srv.post(f"/v1/alerts/{data['seq']}/reject", "inspector")
    assert r.status_code == 409
    assert srv.get(f"/v1/sightings/{sighting['id']}", "inspector").json()["state"] == "confirmed"
    assert len(srv.audit(action="reject", camera_id="belt-3")) == 0

    # Once per (entry, camera, track): more frames of the same track raise nothing new.
    srv.frames("belt-3", person, 3, t0 + 2)
    assert len(srv.sightings(camera_id="belt-3")) == 1


def test_reject_through_the_sighting_route(srv: Srv) -> None:
    srv.camera("exit-9")
    person = ch.person("green")
    assert srv.enrol(person, label="W-21").status_code == 201
    srv.frames("exit-9", person, 4, time.time())
    (sighting,) = srv.sightings(camera_id="exit-9")
    assert sighting["label"] == "W-21"
    r = srv.post(
        f"/v1/sightings/{sighting['id']}/reject", "inspector", json={"note": "different coat"}
    )
    assert r.status_code == 200 and r.json()["state"] == "rejected"
    alert = srv.get(f"/v1/alerts/{sighting['alert_seq']}", "inspector").json()
    assert alert["state"] == "rejected" and alert["resolved_by"] == "test-inspector"
    (rejected,) = srv.audit(action="reject", camera_id="exit-9")
    assert rejected["detail"]["meaning"] == "not the same person"
    r = srv.post(f"/v1/sightings/{sighting['id']}/confirm", "inspector")
    assert r.status_code == 409
    assert srv.post("/v1/sightings/999999/confirm", "inspector").status_code == 404


def test_expired_and_revoked_entries_never_match(srv: Srv) -> None:
    srv.revoke_all()
    person = ch.person("c")
    # Long enough for enrolment and the first frames on a loaded CI machine.
    expires = datetime.now(UTC) + timedelta(seconds=6)
    r = srv.enrol(person, label="W-EXP", expires_at=expires.isoformat())
    assert r.status_code == 201, r.text
    entry = r.json()
    srv.camera("exp-1")
    srv.frames("exp-1", person, 4, time.time())
    assert [s["label"] for s in srv.sightings(camera_id="exp-1")] == ["W-EXP"]

    # It expires by itself: the maintenance loop records it and empties the index.
    expired = ch.wait_for(lambda: srv.audit(action="expire", entry_id=entry["id"]), 30, "expiry")
    assert expired[0]["actor"] == "system" and expired[0]["detail"]["vectors_deleted"] == 1
    got = srv.get(f"/v1/watchlist/entries/{entry['id']}").json()
    assert got["state"] == "expired" and got["expired_at"] and got["reference_url"] is None
    status = srv.get("/v1/cctv/status").json()
    indexed = srv.services.cctv.indexed_entries()
    assert entry["id"] not in indexed and status["index"]["entries"] == len(indexed)
    srv.camera("exp-2")
    srv.frames("exp-2", person, 4, time.time())
    assert srv.sightings(camera_id="exp-2") == []
    assert srv.get(f"/v1/watchlist/entries/{entry['id']}/reference", "inspector").status_code == 404

    # Revoked: out of the index at once.
    other = ch.person("c", 130, 230)
    entry = srv.enrol(other, label="W-REV").json()
    r = srv.post(f"/v1/watchlist/entries/{entry['id']}/revoke", json={"reason": "case closed"})
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    assert r.json()["revoked_by"] == "test-admin" and r.json()["images"] == 0
    srv.camera("rev-1")
    srv.frames("rev-1", other, 4, time.time())
    assert srv.sightings(camera_id="rev-1") == []
    r = srv.post(f"/v1/watchlist/entries/{entry['id']}/revoke", json={"reason": "again"})
    assert r.status_code == 409 and "revoked already" in r.json()["detail"]
    (revoked,) = srv.audit(action="revoke", entry_id=entry["id"])
    assert revoked["detail"] == {"reason": "case closed", "vectors_deleted": 1}
    states = {e["id"]: e["state"] for e in srv.get("/v1/watchlist/entries").json()["entries"]}
    assert states[entry["id"]] == "revoked"
    active = srv.get("/v1/watchlist/entries", state="active").json()["entries"]
    assert entry["id"] not in {e["id"] for e in active}


def test_retention_deletes_unmatched_tracks_and_keeps_matched_ones(srv: Srv) -> None:
    person = ch.person("red")
    entry = srv.enrol(person, label="W-RET").json()
    now = time.time()
    srv.camera("ret-1")
    t = srv.frames("ret-1", person, 4, now)
    t = srv.frames("ret-1", ch.person("b", *ch.SMALL), 4, t)  # nobody on the list
    srv.camera("ret-1", fps=12.0)  # updating a camera ends its tracks: both are stored
    (kept,) = srv.sightings(camera_id="ret-1")
    # A second camera sees the same person, but the inspector says: not the same person.
    srv.camera("ret-2")
    srv.frames("ret-2", person, 4, now)
    (wrong,) = srv.sightings(camera_id="ret-2")
    assert srv.post(f"/v1/sightings/{wrong['id']}/reject", "inspector").status_code == 200
    srv.camera("ret-2", fps=12.0)
    # 40 days pass (a camera can no longer post frames older than the retention period).
    ago = timedelta(days=40)
    with srv.services.sessions() as session:
        cams = ["ret-1", "ret-2"]
        for track in session.scalars(select(db.ReidTrack).where(db.ReidTrack.camera_id.in_(cams))):
            track.first_seen, track.last_seen = track.first_seen - ago, track.last_seen - ago
        for seen in session.scalars(select(db.Sighting).where(db.Sighting.camera_id.in_(cams))):
            seen.seen_at = seen.seen_at - ago
        session.commit()

    def tracks(camera: str) -> list[db.ReidTrack]:
        with srv.services.sessions() as session:
            rows = select(db.ReidTrack).where(db.ReidTrack.camera_id == camera)
            return list(session.scalars(rows))

    def purged() -> bool:
        return len(tracks("ret-1")) == 1 and not tracks("ret-2")

    # The maintenance loop purges by itself; an admin can run it at once.
    r = srv.post("/v1/admin/cctv/purge")
    assert r.status_code == 200 and r.json()["retention_days"] == 30
    ch.wait_for(purged, 10, "the purge")
    (matched,) = tracks("ret-1")
    assert matched.matched and matched.crop_path
    assert (srv.services.cctv.store.root / matched.crop_path).is_file()
    with srv.services.sessions() as session:
        left = session.scalar(
            select(func.count())
            .select_from(db.ReidTrack)
            .where(db.ReidTrack.last_seen < datetime.now(UTC) - timedelta(days=30))
            .where(db.ReidTrack.matched.is_(False))
        )
    assert left == 0
    purges = srv.audit(action="purge")
    assert sum(p["detail"]["tracks"] for p in purges) >= 2, purges
    assert any(p["actor"] == "test-admin" for p in purges)
    # The confirmed-or-candidate sighting keeps its images; the rejected one loses them.
    assert srv.get(f"/v1/sightings/{kept['id']}/frame", "inspector").status_code == 200
    gone = srv.get(f"/v1/sightings/{wrong['id']}", "inspector").json()
    assert gone["frame_url"] is None and gone["images_purged_at"] and gone["state"] == "rejected"
    r = srv.get(f"/v1/sightings/{wrong['id']}/frame", "inspector")
    assert r.status_code == 404 and "deleted past retention" in r.json()["detail"]
    assert entry["id"]


def test_a_video_file_source_feeds_its_camera(srv: Srv, tmp_path: Path) -> None:
    srv.revoke_all()
    import cv2

    person = ch.person("c", 144, 240)
    video = tmp_path / "hall.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (144, 240))
    for _ in range(12):
        writer.write(cv2.cvtColor(person, cv2.COLOR_RGB2BGR))
    writer.release()
    assert srv.enrol(person, label="W-VID").status_code == 201
    srv.camera("vid-1")

    put = srv.http.put
    r = put(
        "/v1/cameras/vid-1/source",
        json={"url": str(tmp_path / "missing.mp4")},
        headers=srv.tokens["admin"],
    )
    assert r.status_code == 404 and "does not exist" in r.json()["detail"]
    r = put(
        "/v1/cameras/vid-1/source",
        json={"url": str(video), "realtime": False},
        headers=srv.tokens["admin"],
    )
    assert r.status_code == 200 and r.json()["fps"] == 10.0
    status = ch.wait_for(
        lambda: (s := srv.get("/v1/cameras/vid-1/source").json())["state"] == "finished" and s,
        90,
        "the video to be read",
    )
    assert status["frames"] == 12 and status["sightings"] >= 1 and status["error"] is None
    assert [s["label"] for s in srv.sightings(camera_id="vid-1")] == ["W-VID"]
    match = srv.audit(action="match", camera_id="vid-1")[0]
    assert match["detail"]["source"].startswith("source:") and match["detail"]["source"].endswith(
        "hall.mp4"
    )
    r = srv.http.delete("/v1/cameras/vid-1/source", headers=srv.tokens["admin"])
    assert r.status_code == 200 and r.json()["state"] == "finished"
    assert srv.get("/v1/cameras/vid-1/source").status_code == 404


def test_audit_log_query(srv: Srv) -> None:
    # Lines of its own: under xdist this test may run before the module's others.
    srv.camera("audit-q1")
    srv.camera("audit-q2")
    rows = srv.audit()
    assert rows and [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert {r["action"] for r in rows} <= {
        "enrol",
        "revoke",
        "expire",
        "search",
        "match",
        "confirm",
        "reject",
        "purge",
        "camera",
    }
    first = rows[0]["id"]
    assert all(r["id"] > first for r in srv.audit(after_id=first))
    r = srv.get("/v1/audit", action="delete")
    assert r.status_code == 422 and r.json()["field"] == "action"
    assert all(r["actor"] == "test-admin" for r in srv.audit(actor="test-admin"))


def test_retrospective_search_is_audited(srv: Srv) -> None:
    person = ch.person("blue")
    entry = srv.enrol(person, label="W-SEARCH").json()
    srv.camera("srch-1")
    srv.frames("srch-1", person, 4, time.time())
    srv.camera("srch-1", fps=11.0)  # the track ends and is stored
    r = srv.post(f"/v1/watchlist/entries/{entry['id']}/search", json={"camera_id": "srch-1"})
    assert r.status_code == 422  # no reason given
    r = srv.post(
        f"/v1/watchlist/entries/{entry['id']}/search",
        json={"reason": "where did W-SEARCH go?", "camera_id": "srch-1"},
    )
    assert r.status_code == 200, r.text
    (hit,) = r.json()["tracks"]
    assert hit["camera_id"] == "srch-1" and hit["similarity"] >= 0.99
    (searched,) = srv.audit(action="search", entry_id=entry["id"])
    assert searched["actor"] == "test-admin" and searched["detail"]["tracks_searched"] == 1


def test_without_reid_models_cctv_answers_503(tmp_path: Path, models: Path) -> None:
    settings = ch.cctv_settings(tmp_path, models, reid_model_dir=tmp_path / "no-such-model")
    with ch.ThreadServer(settings) as server:
        one = Srv(server)
        r = one.http.get("/v1/cctv/ready")
        assert r.status_code == 503
        assert "no re-ID embedder model directory" in r.json()["detail"]
        r = one.frame("any", ch.person("a"), time.time())
        assert r.status_code == 503 and "CCTV re-identification is not available" in r.text
        r = one.enrol(ch.person("a"))
        assert r.status_code == 503
        assert one.get("/v1/cctv/status").json()["ready"] is False
        assert one.http.get("/v2/health/live").json() == {"live": True}
        # Cameras can still be registered, and the audit log read.
        one.camera("cam-1")
        assert one.audit(action="camera")
