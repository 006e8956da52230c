"""Plain helpers for the CCTV server tests: tiny real models, scenes, a server in a thread.

The models are real but untrained: an ``osnet_x0_25`` embedder and a 64-pixel
YOLO11n ``person`` detector, both exported to ONNX. The untrained detector finds
one "person" per frame: a box over (nearly) the whole frame, with the same small
score (about 0.012) whatever the frame shows. So a frame *is* its person crop,
and the same image always gives the same embedding: enough to test enrolment,
matching, sightings and alerts end to end. :data:`PIPELINE` lowers the pipeline's
and the tracker's score thresholds below that score.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import server_helpers as h

MATCH = 0.99
"""Match threshold for the untrained embedder: the same image gives 1.0, the
different scenes of :func:`person` at most about 0.97."""

PIPELINE: dict[str, Any] = {
    "conf": 0.005,
    "min_track_frames": 2,
    "tracker_params": {
        "track_high_thresh": 0.005,
        "track_low_thresh": 0.001,
        "new_track_thresh": 0.005,
        "track_buffer": 2,
        "fuse_score": False,
    },
}
"""Camera pipeline settings under which the untrained detector's boxes become tracks."""

ENROL_CONF = 0.005
"""Enrolment's person score, below the untrained detector's constant score."""

CONTROL = "customs-control"
"""A camera purpose the server accepts."""


def models_base(tmp_path_factory: Any) -> Path:
    """The session's folder of tiny CCTV models, shared by the test modules (a
    module's ``models`` fixture returns it)."""
    base = tmp_path_factory.getbasetemp() / "cctv-models"
    base.mkdir(exist_ok=True)
    return base


def make_person_detector_dir(base: Path, *, onnx: bool = False) -> Path:
    """An untrained 64-pixel YOLO11n detector of class ``person`` (cached under ``base``).

    Args:
        base: Folder of the test session's models.
        onnx: Also export it to ONNX (about 10 s; the PyTorch runtime needs none).
    """
    from cv.models.export import export_onnx
    from cv.models.load import init_model_dir

    target = base / "person-yolo11n"
    if not (target / "model.json").is_file():
        init_model_dir(target, architecture="yolo11n", classes=["person"], input_size=64)
    if onnx and not (target / "model.onnx").is_file():
        export_onnx(target)
    return target


def make_embedder_dir(base: Path, *, onnx: bool = False) -> Path:
    """An untrained ``osnet_x0_25`` embedder (cached under ``base``); ``onnx`` also exports it."""
    from cv.models.reid import export_reid_onnx, init_embedder_dir

    target = base / "reid-osnet"
    if not (target / "model.json").is_file():
        if target.exists():
            shutil.rmtree(target)
        init_embedder_dir(target, architecture="osnet_x0_25")
    if onnx and not (target / "model.onnx").is_file():
        export_reid_onnx(target)
    return target


def person(kind: str, width: int = 160, height: int = 240) -> np.ndarray:
    """A scene standing for one person (the untrained models cannot tell more).

    ``a``: a colour gradient; ``b``: dark grey; ``c``: light grey with a stripe;
    ``red``, ``green``, ``blue``: plain colours. Under the untrained embedder the
    same kind at any size scores above :data:`MATCH`, different kinds below it.
    The "person" box is the whole frame, so a different person on the same camera
    needs a frame size whose box overlaps the last one's by an IoU under 0.2 (or
    the tracker continues the last track): :data:`SMALL` against the default.
    """
    if kind == "a":
        return h.gradient_rgb(width, height, seed=1)
    if kind == "b":
        return np.full((height, width, 3), 30, np.uint8)
    if kind == "c":
        img = np.full((height, width, 3), 200, np.uint8)
        img[height // 3 : height // 2] = (40, 90, 200)
        return img
    colours = {"red": (180, 40, 40), "green": (40, 160, 60), "blue": (30, 60, 200)}
    if kind in colours:
        return np.full((height, width, 3), colours[kind], np.uint8)
    raise ValueError(kind)


SMALL = (64, 96)
"""A frame size whose box overlaps a 160 x 240 one by an IoU of 0.16: a new track."""


def png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB image."""
    from cv.image import encode_png

    return encode_png(image)


def cctv_settings(tmp: Path, models: Path, *, onnx: bool = False, **overrides: Any) -> Any:
    """Server settings with the tiny re-ID models and SQLite under ``tmp``.

    No X-ray model (its export costs 10 s and these tests do not scan bags): the
    X-ray path stays unready, which the CCTV part does not depend on.

    Args:
        tmp: Folder of the server's database and images.
        models: Folder of the test session's models.
        onnx: Serve the re-ID models with ONNX Runtime (exports them) instead of PyTorch.
        **overrides: Further settings.
    """
    values: dict[str, Any] = {
        "reid_model_dir": make_embedder_dir(models, onnx=onnx),
        "person_model_dir": make_person_detector_dir(models, onnx=onnx),
        "reid_runtime": "onnx" if onnx else "torch",
        "reid_match_threshold": MATCH,
        "reid_pipeline": PIPELINE,
        "enrol_person_conf": ENROL_CONF,
        "reid_maintenance_s": 0.3,
        "sse_keepalive_s": 1.0,
        "alert_ack_deadline_s": 3600.0,
        "cctv_workers": 1,
    }
    values.update(overrides)
    return h.server_settings(tmp, tmp / "no-xray-model", **values)


def write_video(path: Path, image: np.ndarray, frames: int = 12, fps: float = 10.0) -> Path:
    """An MP4 file at ``path`` showing ``image`` (RGB) for ``frames`` frames."""
    import cv2

    height, width = image.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    for _ in range(frames):
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def in_days(days: float) -> str:
    """An ISO 8601 time ``days`` from now (UTC)."""
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def enrol_form(**fields: str) -> dict[str, str]:
    """Form fields of a valid enrolment, overridden by ``fields`` (``None`` drops one)."""
    form = {
        "label": "W-17",
        "list_name": "customs-high-risk",
        "authorised_by": "Chief Inspector Kim, ICN customs",
        "reason": "suspected courier of undeclared gold",
        "legal_basis": "Customs Act art. 265 (test)",
        "expires_at": in_days(1),
    }
    form.update(fields)
    return {k: v for k, v in form.items() if v is not None}


class ThreadServer:
    """``create_app(settings)`` served by uvicorn in a thread of the test process.

    Real HTTP and real event streams, and the app's services at hand.
    """

    def __init__(self, settings: Any) -> None:
        import uvicorn

        from cv.inference_server.app import create_app

        self.app = create_app(settings)
        self.port = h.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        wait_for(lambda: self.server.started, 120, "the server to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    @property
    def services(self) -> Any:
        return self.app.state.services


class Client:
    """HTTP calls to one server with one token per role (test modules add their own calls)."""

    def __init__(self, server: ThreadServer, tokens: dict[str, dict[str, str]]) -> None:
        self.server = server
        self.tokens = tokens
        self.http = httpx.Client(base_url=server.base, timeout=60)

    def request(self, method: str, path: str, who: str = "admin", **kwargs: Any) -> Any:
        return self.http.request(method, path, headers=self.tokens[who], **kwargs)

    def camera(self, camera_id: str, **fields: Any) -> None:
        body = {"id": camera_id, "site": "ICN-T1", "location": "hall", "purpose": CONTROL}
        r = self.request("POST", "/v1/cameras", json={**body, **fields})
        assert r.status_code in (200, 201), r.text

    def source(self, camera_id: str) -> httpx.Response:
        return self.request("GET", f"/v1/cameras/{camera_id}/source")


def source_threads(camera_id: str) -> list[threading.Thread]:
    """The live video-source worker threads of a camera (of every server in this process)."""
    return [
        t for t in threading.enumerate() if t.name == f"cctv-source-{camera_id}" and t.is_alive()
    ]


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Polls ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.05)


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Events of an SSE stream as ``{"event", "id", "data"}``; a comment line (the
    server's keep-alive) comes as ``{"event": None}``, so that callers can give up."""
    event: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            yield {"event": None, "id": None, "data": None}
            continue
        if line:
            name, _, value = line.partition(": ")
            event[name] = value
            continue
        if event:
            data = event.get("data")
            yield {
                "event": event.get("event"),
                "id": event.get("id"),
                "data": json.loads(data) if data else None,
            }
        event = {}


@contextlib.contextmanager
def stream(base: str, path: str, headers: dict[str, str], **params: Any) -> Iterator[Any]:
    """An open SSE stream's events."""
    with (
        httpx.Client(base_url=base, headers=headers, timeout=30) as client,
        client.stream("GET", path, params=params) as response,
    ):
        assert response.status_code == 200, response.read()
        yield sse_events(response.iter_lines())


def next_event(events: Iterator[dict[str, Any]], kind: str, timeout: float = 30) -> dict[str, Any]:
    """The next event called ``kind`` (the stream's keep-alives bound the wait)."""
    deadline = time.monotonic() + timeout
    for event in events:
        if event["event"] == kind:
            return event
        assert time.monotonic() < deadline, f"no {kind!r} event within {timeout:g} s"
    raise AssertionError("the stream ended")


def kept_source(settings: Any, camera_id: str, source_url: str, *, active: bool) -> None:
    """Writes, before any server starts, what a server leaves behind: a camera with a
    kept video source (its database migrated first)."""
    from cv.inference_server import db

    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    with db.session_factory(engine)() as session:
        now = db.utcnow()
        session.add(
            db.Camera(
                id=camera_id,
                site="ICN-T1",
                location="hall",
                purpose=CONTROL,
                watchlist_allowed=True,
                active=active,
                source_url=source_url,
                created_at=now,
                updated_at=now,
            )
        )
        session.commit()
    engine.dispose()
