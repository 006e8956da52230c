"""Plain helpers for the inference-server tests (no fixtures: each test module makes its own).

Test modules import it as ``import server_helpers``: ``tests/conftest.py`` puts the
tests folder on ``sys.path`` (pytest runs with ``--import-mode=importlib``, which
does not).
"""

from __future__ import annotations

import io
import re
import shutil
import socket
from pathlib import Path
from typing import Any

import numpy as np

CLASSES = ["gun", "knife"]
"""Classes of the tiny test model (taxonomy names)."""

ALERT_ALWAYS = 0.0001
"""A threshold every detection of an untrained model passes."""
ALERT_NEVER = 1.1
"""A threshold no score reaches."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (for real server processes)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tiny_model_dir(
    base: Path,
    *,
    name: str = "tiny",
    thresholds: float = ALERT_NEVER,
    version: int = 1,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """An untrained 64-pixel YOLO11n model directory exported to ONNX, with thresholds.

    The export is made once under ``base / "_export"`` and copied, so that several
    variants (thresholds, versions) cost one export.

    Args:
        base: A folder for model directories (one per test session).
        name: Folder name of this variant.
        thresholds: The alert threshold of every class.
        version: The record's version.
        metrics: Entries added to the record's metrics (an operating point, say).
    """
    from cv.models.export import export_onnx
    from cv.models.load import init_model_dir
    from cv.models.weights import read_record, write_record

    source = base / "_export"
    if not (source / "model.onnx").is_file():
        init_model_dir(source, architecture="yolo11n", classes=CLASSES, input_size=64)
        export_onnx(source)
    target = base / name
    if not target.exists():
        shutil.copytree(source, target)
        record = read_record(target, verify=False)
        record.thresholds = dict.fromkeys(CLASSES, thresholds)
        record.version = version
        record.name = f"tiny-{name}"
        record.metrics.update(metrics or {})
        write_record(record, target)
    return target


def gradient_rgb(width: int = 96, height: int = 80, seed: int = 0) -> np.ndarray:
    """A small RGB image with some structure, ``(H, W, 3) uint8``."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([(x * 255 // max(1, width - 1)), (y * 255 // max(1, height - 1)), (x ^ y) & 255])
    noise = rng.integers(0, 20, size=(3, height, width))
    return np.clip(img + noise, 0, 255).astype(np.uint8).transpose(1, 2, 0).copy()


def png_bytes(width: int = 96, height: int = 80, seed: int = 0) -> bytes:
    """A valid PNG file."""
    from cv.image import encode_png

    return encode_png(gradient_rgb(width, height, seed))


def jpeg_bytes(width: int = 96, height: int = 80) -> bytes:
    """A valid JPEG file."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(gradient_rgb(width, height)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def tiff16_bytes(width: int = 96, height: int = 80) -> bytes:
    """A valid 16-bit grey TIFF file (as X-ray detectors write)."""
    import cv2

    grey = (np.arange(width * height, dtype=np.uint32).reshape(height, width) * 7 % 65536).astype(
        np.uint16
    )
    ok, enc = cv2.imencode(".tif", grey)
    assert ok
    return enc.tobytes()


def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG that is only a signature and an IHDR chunk claiming ``width × height``."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    )


def server_settings(tmp: Path, model_dir: Path, **overrides: Any) -> Any:
    """Settings for a test server: SQLite and images under ``tmp``, the given model."""
    from cv.inference_server.settings import ServerSettings

    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp / 'server.db'}",
        "data_dir": tmp / "images",
        "model_dir": model_dir,
        "max_batch": 4,
        "max_wait_ms": 2.0,
        # The X-ray tests leave the CCTV part off (its own tests load tiny models).
        "reid_model_dir": tmp / "no-reid-model",
    }
    values.update(overrides)
    return ServerSettings(_env_file=None, **values)


def make_tokens(app: Any) -> dict[str, dict[str, str]]:
    """One token per role on a started app: role -> ``Authorization`` header."""
    from cv.inference_server.auth import ROLES, create_token

    services = app.state.services
    out = {}
    with services.sessions() as session:
        for role in ROLES:
            secret = create_token(session, name=f"test-{role}", role=role)
            out[role] = {"Authorization": f"Bearer {secret}"}
    return out


def scan_form(**fields: str) -> dict[str, str]:
    """Form fields of a valid upload, overridden by ``fields``."""
    form = {"site": "ICN-T1", "lane": "L3", "kind": "cabin_bag"}
    form.update(fields)
    return form


def serve_process(tmp_path: Path, env: dict[str, str]) -> tuple[Any, str]:
    """``python -m uvicorn --factory cv.inference_server.app:create_app`` in a process of
    its own on a free port, in ``tmp_path`` (its log there); returns ``(process, base
    URL)`` once the server answers HTTP (ready or not: a server without a model
    answers too)."""
    import subprocess
    import sys

    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "cv.inference_server.app:create_app"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    log_path = tmp_path / f"server-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115  (closed with the process)
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_live(proc, base, log_path)
    return proc, base


def wait_live(proc: Any, base: str, log_path: Path, timeout: float = 120) -> None:
    """Waits until the server process ``proc`` answers HTTP at ``base`` (its log, shown
    if it dies or never answers, at ``log_path``); 120 s covers a model's load and
    warm-up on a busy machine."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, log_path.read_text()
        try:
            httpx.get(f"{base}/v2/health/live", timeout=1)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"server did not start: {log_path.read_text()}"
            time.sleep(0.1)


def stop_process(proc: Any, timeout: float = 20) -> None:
    """SIGTERM to a server process still running, then SIGKILL if it has not stopped
    within ``timeout`` seconds."""
    import signal
    import subprocess

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sqlite_with_tokens(path: Path, tokens: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A migrated SQLite database at ``path`` holding ``tokens`` (name -> role): its URL
    and each token's secret by name."""
    from cv.inference_server import db
    from cv.inference_server.auth import create_token

    url = f"sqlite:///{path}"
    engine = db.make_engine(url)
    try:
        db.migrate(engine)
        with db.session_factory(engine)() as session:
            secrets = {
                name: create_token(session, name=name, role=role) for name, role in tokens.items()
            }
    finally:
        engine.dispose()
    return url, secrets


DEMO_LINK = re.compile(
    r"^\s+(reader console|handheld|watch list)\s+(http://\S+)\?token=(cvt_\S+)$", re.M
)
"""A sign-in link that ``serve run --demo`` prints: label, page URL, token."""


def demo_links(proc: Any, out: Path, timeout: float = 120) -> dict[str, tuple[str, str]]:
    """The three sign-in links a ``serve run --demo`` process prints to its log ``out``:
    label -> (page URL, token); waits for them (model load and warm-up take a while)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        text = out.read_text(errors="replace")
        links = {m[1]: (m[2], m[3]) for m in DEMO_LINK.finditer(text)}
        if len(links) == 3:
            return links
        assert proc.poll() is None, text
        assert time.monotonic() < deadline, text
        time.sleep(0.2)


def sse_new_alerts(lines: Any, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    """The next ``count`` new alerts on an SSE stream's lines, as ``{"id": seq, **data}``
    (updates and re-sends carry no id and are skipped)."""
    import json
    import time

    found: list[dict[str, Any]] = []
    t0 = time.monotonic()
    event: dict[str, str] = {}
    for line in lines:
        assert time.monotonic() - t0 < timeout
        if line.startswith(":"):
            continue
        if line:
            name, _, value = line.partition(": ")
            event[name] = value
            continue
        if event.get("event") == "alert" and "id" in event:
            found.append({**json.loads(event["data"]), "id": int(event["id"])})
            if len(found) == count:
                return found
        event = {}
    raise AssertionError("stream ended")


Script = list[tuple[float, float, float, float, dict[str, float]]]
"""Anchors of a scripted model: ``(cx, cy, w, h, {class: score})`` in input pixels."""


def scripted_model_dir(
    base: Path, script: Script, classes: list[str], *, threshold: float, name: str = "scripted"
) -> Path:
    """A model directory whose ONNX graph answers ``script`` for any batch of 64-pixel
    images (one raw output, repeated over the batch), every class at ``threshold``: a
    detector whose detections a test decides exactly."""
    import onnx
    from onnx import TensorProto, helper

    from cv.models.weights import WeightsRecord, write_record

    raw = np.zeros((1, 4 + len(classes), len(script)), dtype=np.float32)
    for a, (cx, cy, w, hgt, scores) in enumerate(script):
        raw[0, :4, a] = (cx, cy, w, hgt)
        for cls, score in scores.items():
            raw[0, 4 + classes.index(cls), a] = score
    nodes = [
        helper.make_node("Shape", ["images"], ["shape"]),
        helper.make_node("Slice", ["shape", "zero", "one"], ["batch"]),
        helper.make_node("Concat", ["batch", "tail"], ["out_shape"], axis=0),
        helper.make_node("Expand", ["raw", "out_shape"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "scripted",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 64, 64])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", *raw.shape[1:]])],
        initializer=[
            onnx.numpy_helper.from_array(raw, "raw"),
            onnx.numpy_helper.from_array(np.array(raw.shape[1:], dtype=np.int64), "tail"),
            onnx.numpy_helper.from_array(np.array([0], dtype=np.int64), "zero"),
            onnx.numpy_helper.from_array(np.array([1], dtype=np.int64), "one"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    target = base / name
    target.mkdir(parents=True, exist_ok=True)
    onnx.save(model, target / "model.onnx")
    record = WeightsRecord(
        name=name,
        architecture="yolo11n",
        classes=classes,
        input_size=64,
        thresholds=dict.fromkeys(classes, threshold),
        files={"onnx": "model.onnx"},
        recipe={"scripted": True},
    )
    write_record(record, target)
    return target


def alembic(engine: Any, step: str, revision: str) -> None:
    """Runs Alembic's ``upgrade`` or ``downgrade`` of the server's migrations to
    ``revision`` on ``engine`` (what ``db.migrate`` does for ``upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    from cv.inference_server import db

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, step)(cfg, revision)
