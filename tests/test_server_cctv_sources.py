"""CCTV in the server: video sources that survive a restart, and sighting frames that
keep nobody but the matched traveller.

Real servers (uvicorn in a thread, ``server_cctv_helpers``) with the tiny untrained
models, on SQLite. The restart test starts a server twice on the same database and
image store; the redaction test gives the person detector fixed boxes, so that a
frame holds a traveller and bystanders.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import server_cctv_helpers as ch
import server_helpers as h
from sqlalchemy import select

from cv.inference_server import db
from cv.inference_server.cctv import as_utc
from cv.records import Detection

CONTROL = ch.CONTROL


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ch.models_base(tmp_path_factory)


class Client(ch.Client):
    """HTTP calls to one server with tokens made once per database."""

    def put_source(self, camera_id: str, url: Path, **fields: Any) -> dict[str, Any]:
        r = self.request("PUT", f"/v1/cameras/{camera_id}/source", json={"url": str(url), **fields})
        assert r.status_code == 200, r.text
        return r.json()

    def state(self, camera_id: str) -> str | None:
        r = self.source(camera_id)
        return r.json()["state"] if r.status_code == 200 else None


def cameras(settings: Any) -> dict[str, db.Camera]:
    engine = db.make_engine(settings.database_url)
    try:
        with db.session_factory(engine)() as session:
            return {c.id: c for c in session.scalars(select(db.Camera))}
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- restart


def test_video_sources_start_again_after_a_restart(tmp_path: Path, models: Path) -> None:
    video = ch.write_video(tmp_path / "hall.mp4", ch.person("c", 144, 240))
    doomed = ch.write_video(tmp_path / "doomed.mp4", ch.person("b", 144, 240))
    settings = ch.cctv_settings(tmp_path, models)

    with ch.ThreadServer(settings) as server:
        one = Client(server, h.make_tokens(server.app))
        for cam in ("loop-1", "once-1", "gone-1", "del-1"):
            one.camera(cam)
        one.put_source("loop-1", video, realtime=True, loop=True)
        one.put_source("once-1", video, realtime=False)
        one.put_source("gone-1", doomed, realtime=True, loop=True)
        one.put_source("del-1", video, realtime=True, loop=True)
        assert one.request("DELETE", "/v1/cameras/del-1/source").status_code == 200
        ch.wait_for(lambda: one.state("once-1") == "finished", 90, "the file to be read")
        assert one.source("once-1").json()["frames"] == 12
        ch.wait_for(lambda: one.source("loop-1").json()["frames"] > 0, 60, "the looping source")
        tokens = one.tokens
    # A clean stop keeps the sources; a file read to its end is recorded as such.
    kept = cameras(settings)
    assert kept["loop-1"].source_url == str(video) and kept["loop-1"].source_loop
    assert kept["once-1"].source_finished_at is not None and not kept["once-1"].source_realtime
    assert kept["once-1"].source_report["frames"] == 12
    assert kept["gone-1"].source_finished_at is None
    assert kept["del-1"].source_url is None

    doomed.unlink()  # this source cannot be opened at the next start
    started = time.time()
    with ch.ThreadServer(settings) as server:
        two = Client(server, tokens)
        assert two.http.get("/v1/cctv/ready").json() == {"ready": True}
        # The looping file plays again, as it was set.
        loop = ch.wait_for(
            lambda: (s := two.source("loop-1").json())["frames"] > 0 and s, 60, "the restart"
        )
        assert loop["state"] == "running" and loop["loop"] and loop["realtime"]
        assert loop["url"] == str(video) and loop["error"] is None
        # The file that had been read to its end is not read again: its last status shows.
        once = two.source("once-1").json()
        assert once["state"] == "finished" and once["frames"] == 12 and once["loop"] is False
        assert once["started_at"] is not None and once["stopped_at"] is not None
        # The missing file: state error with the reason, and the server serves.
        gone = two.source("gone-1").json()
        assert gone["state"] == "error" and gone["frames"] == 0
        assert "not restarted" in gone["error"] and "does not exist" in gone["error"]
        # The source deleted before the restart stays deleted.
        assert two.source("del-1").status_code == 404
        status = two.request("GET", "/v1/cctv/status").json()
        assert {s["camera_id"]: s["state"] for s in status["sources"]} == {
            "loop-1": "running",
            "once-1": "finished",
            "gone-1": "error",
        }
        time.sleep(0.5)
        assert two.source("once-1").json()["frames"] == 12  # still not re-read

        # DELETE forgets a source for good, whatever its state; PUT replaces one.
        r = two.request("DELETE", "/v1/cameras/gone-1/source")
        assert r.status_code == 200 and r.json()["state"] == "error"
        r = two.request("DELETE", "/v1/cameras/loop-1/source")
        assert r.status_code == 200 and r.json()["state"] == "stopped"
        assert two.put_source("once-1", video, realtime=False)["state"] in ("starting", "running")
        ch.wait_for(lambda: two.state("once-1") == "finished", 90, "the file to be read again")
        assert two.source("once-1").json()["started_at"] > loop["started_at"]
        assert two.request("GET", "/v2/health/live").json() == {"live": True}
    after = cameras(settings)
    assert after["loop-1"].source_url is None and after["gone-1"].source_url is None
    assert after["once-1"].source_url == str(video)
    finished = after["once-1"].source_finished_at
    assert finished is not None and as_utc(finished).timestamp() >= started


def test_a_source_of_a_camera_deactivated_meanwhile_shows_why(tmp_path: Path, models: Path) -> None:
    video = ch.write_video(tmp_path / "hall.mp4", ch.person("a", 144, 240))
    settings = ch.cctv_settings(tmp_path, models)
    # A camera with a source, deactivated by hand.
    ch.kept_source(settings, "off-1", str(video), active=False)
    with ch.ThreadServer(settings) as server:
        client = Client(server, h.make_tokens(server.app))
        status = client.source("off-1").json()
        assert status["state"] == "error" and "inactive" in status["error"]
        assert status["realtime"] is True and status["loop"] is False  # the columns' defaults
        client.camera("off-1", active=True)
        client.put_source("off-1", video, realtime=False)
        ch.wait_for(lambda: client.state("off-1") == "finished", 90, "the file to be read")


# --------------------------------------------------------------------------- redaction

H, W = 160, 240
TRAVELLER = (10.0, 12.0, 90.0, 150.0)
BYSTANDERS = ((130.0, 20.0, 180.0, 140.0), (196.0, 60.0, 232.0, 130.0))


def hall_scene() -> np.ndarray:
    """The enrolled traveller (a colour gradient) and two bystanders (noise)."""
    frame = np.full((H, W, 3), 120, np.uint8)
    x0, y0, x1, y1 = (int(v) for v in TRAVELLER)
    frame[y0:y1, x0:x1] = ch.person("a", x1 - x0, y1 - y0)
    rng = np.random.default_rng(7)
    for box in BYSTANDERS:
        x0, y0, x1, y1 = (int(v) for v in box)
        frame[y0:y1, x0:x1] = rng.integers(0, 256, (y1 - y0, x1 - x0, 3), dtype=np.uint8)
    return frame


def region(image: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
    x0, y0, x1, y1 = (int(v) for v in box)
    return image[y0:y1, x0:x1].astype(np.int16)


def detail(image: np.ndarray) -> float:
    return float(np.abs(np.diff(image, axis=1)).mean())


def test_a_stored_sighting_frame_shows_the_traveller_and_hides_the_bystanders(
    tmp_path: Path, models: Path
) -> None:
    from cv.image import decode_image
    from cv.inference_server.cctv import encode_jpeg

    with ch.ThreadServer(ch.cctv_settings(tmp_path, models)) as server:
        client = Client(server, h.make_tokens(server.app))
        assert client.request("GET", "/v1/cctv/status").json()["redact_bystanders"] is True
        # The untrained detector sees one person filling the frame; here it sees three.
        people = [TRAVELLER, *BYSTANDERS]

        def postprocess(raw: Any, metas: Any, **_: Any) -> list[list[Detection]]:
            found = [Detection(box=b, category="person", class_id=0, score=0.9) for b in people]
            return [list(found) for _ in metas]

        server.services.cctv.models.detector.postprocess = postprocess
        scene = hall_scene()
        files = [("images", ("ref.png", ch.png(scene), "image/png"))]  # the largest: the traveller
        r = client.request("POST", "/v1/watchlist/entries", files=files, data=ch.enrol_form())
        assert r.status_code == 201, r.text
        client.camera("hall-1")
        t0 = time.time()
        for i in range(4):
            r = client.http.post(
                "/v1/cameras/hall-1/frames",
                content=ch.png(scene),
                params={"timestamp": f"{t0 + i / 10:.3f}"},
                headers={**client.tokens["camera"], "Content-Type": "image/png"},
            )
            assert r.status_code == 200, r.text
        r = client.request("GET", "/v1/sightings", "inspector", params={"camera_id": "hall-1"})
        sightings = {tuple(s["box"]): s for s in r.json()["sightings"]}
        sighting = sightings[TRAVELLER]  # (a bystander may match the untrained model too)
        frame = client.request("GET", sighting["frame_url"], "inspector")
        assert frame.status_code == 200
        stored = decode_image(frame.content).astype(np.int16)
        assert stored.shape == (H, W, 3)
        original = scene.astype(np.int16)
        # The traveller's pixels went into the JPEG as the camera saw them: the same
        # JPEG blocks as the unredacted frame's.
        as_seen = decode_image(encode_jpeg(scene)).astype(np.int16)
        assert np.abs(region(stored, TRAVELLER) - region(as_seen, TRAVELLER)).max() <= 2
        for box in BYSTANDERS:
            assert detail(region(stored, box)) < 0.25 * detail(region(original, box)), box
        r = client.request("GET", "/v1/audit", params={"action": "match", "camera_id": "hall-1"})
        match = next(e for e in r.json()["entries"] if e["sighting_id"] == sighting["id"])
        assert match["detail"]["bystanders_redacted"] == 2
        # The crop is the traveller's own and stays as seen.
        crop = client.request("GET", sighting["crop_url"], "inspector")
        got = decode_image(crop.content).astype(np.int16)
        x0, y0, x1, y1 = (int(v) for v in TRAVELLER)
        own = decode_image(encode_jpeg(scene[y0:y1, x0:x1])).astype(np.int16)
        assert np.abs(got - own).max() <= 2
