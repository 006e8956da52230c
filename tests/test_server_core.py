"""Server core: upload validation, roles, health, metrics, logs, errors, CLI (SQLite)."""

from __future__ import annotations

import json
import logging
import os

import pytest
import server_helpers as h
from fastapi.testclient import TestClient
from typer.testing import CliRunner

MAX_UPLOAD = 300_000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return h.make_tiny_model_dir(tmp_path_factory.mktemp("models"), name="quiet")


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_dir):
    from cv.inference_server.app import create_app

    tmp = tmp_path_factory.mktemp("core")
    app = create_app(h.server_settings(tmp, model_dir, max_upload_bytes=MAX_UPLOAD))
    with TestClient(app) as client:
        yield client, h.make_tokens(app)


def post(client, tokens, data: bytes, name="scan.png", ctype="image/png", **fields):
    return client.post(
        "/v1/scans",
        files={"image": (name, data, ctype)},
        data=h.scan_form(**fields),
        headers=tokens["scanner"],
    )


# -- uploads: every bad input is a named 4xx ---------------------------------------


def test_png_upload_is_stored_and_inferred(server):
    client, tokens = server
    r = post(client, tokens, h.png_bytes(96, 80), scan_id="core-png")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["scan"]["status"] == "done"
    assert (body["scan"]["width"], body["scan"]["height"]) == (96, 80)
    assert body["scan"]["content_type"] == "image/png"
    assert body["scan"]["model_name"] == "tiny-quiet"
    assert body["alert"] is None  # thresholds of 1.1 are never reached
    assert body["timing"]["compute_ms"] > 0 and body["timing"]["queue_ms"] >= 0


def test_jpeg_and_16bit_tiff_are_accepted(server):
    client, tokens = server
    r = post(client, tokens, h.jpeg_bytes(64, 48), name="x.jpg", ctype="image/jpeg")
    assert r.status_code == 201, r.text
    assert r.json()["scan"]["content_type"] == "image/jpeg"
    # Declared as PNG and named .png: the bytes decide the type.
    r = post(client, tokens, h.tiff16_bytes(70, 50), name="x.png", ctype="image/png")
    assert r.status_code == 201, r.text
    scan = r.json()["scan"]
    assert (scan["content_type"], scan["width"], scan["height"]) == ("image/tiff", 70, 50)


def test_empty_upload_is_422(server):
    client, tokens = server
    r = post(client, tokens, b"")
    assert r.status_code == 422
    assert "empty" in r.json()["detail"]


def test_truncated_png_is_422(server):
    client, tokens = server
    data = h.png_bytes(96, 80)
    r = post(client, tokens, data[: len(data) // 2])
    assert r.status_code == 422
    assert "truncated" in r.json()["detail"]


def test_text_file_named_png_is_415(server):
    client, tokens = server
    r = post(client, tokens, b"hello, this is not an image\n" * 10, name="bag.png")
    assert r.status_code == 415
    assert "not a PNG, JPEG or TIFF" in r.json()["detail"]


def test_enormous_pixel_count_is_refused_before_decoding(server):
    client, tokens = server
    r = post(client, tokens, h.png_header_claiming(100_000, 100_000))
    assert r.status_code == 413
    assert "100000x100000 = 10000000000 pixels" in r.json()["detail"]


def test_oversize_file_is_413(server):
    client, tokens = server
    # Over the image limit but under the body limit (which leaves room for fields).
    r = post(client, tokens, b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD + 10))
    assert r.status_code == 413
    assert f"limit of {MAX_UPLOAD} bytes" in r.json()["detail"]


def test_oversize_body_is_413_from_its_declared_length(server):
    client, tokens = server
    r = post(client, tokens, bytes(MAX_UPLOAD + 200_000))
    assert r.status_code == 413
    assert "request body" in r.json()["detail"]


def test_oversize_chunked_body_is_413_while_it_arrives(server):
    client, tokens = server

    def chunks():
        yield b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
        for _ in range(100):
            yield bytes(10_000)

    r = client.post(
        "/v1/scans",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=xyz", **tokens["scanner"]},
    )
    assert r.status_code == 413
    assert "request body" in r.json()["detail"]


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"site": None}, "site"),
        ({"kind": "suitcase"}, "kind"),
        ({"kind": "hold_bag"}, "bag_tag"),
        ({"kind": "parcel"}, "awb"),
        ({"scan_id": "../etc/passwd"}, "scan_id"),
        ({"lane": "x" * 65}, "lane"),
    ],
)
def test_field_errors_are_422_naming_the_field(server, form, field):
    client, tokens = server
    data = h.scan_form(**{k: v for k, v in form.items() if v is not None})
    for k, v in form.items():
        if v is None:
            del data[k]
    r = client.post(
        "/v1/scans",
        files={"image": ("a.png", h.png_bytes(), "image/png")},
        data=data,
        headers=tokens["scanner"],
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"{field}:") or f"{field}:" in r.json()["detail"]


def test_missing_image_is_422_naming_it(server):
    client, tokens = server
    r = client.post("/v1/scans", data=h.scan_form(), headers=tokens["scanner"])
    assert r.status_code == 422
    assert "image: Field required" in r.json()["detail"]


def test_duplicate_scan_id_is_409(server):
    client, tokens = server
    assert post(client, tokens, h.png_bytes(seed=5), scan_id="dup-1").status_code == 201
    r = post(client, tokens, h.png_bytes(seed=6), scan_id="dup-1")
    assert r.status_code == 409
    assert "dup-1" in r.json()["detail"]


def test_same_image_is_stored_once(server, tmp_path):
    client, tokens = server
    data = h.png_bytes(seed=9)
    a = post(client, tokens, data, scan_id="same-a").json()["scan"]
    b = post(client, tokens, data, scan_id="same-b").json()["scan"]
    assert a["image_sha256"] == b["image_sha256"]
    services = client.app.state.services
    files = list(services.data_dir.rglob(f"{a['image_sha256']}.png"))
    assert len(files) == 1
    assert files[0].read_bytes() == data
    assert not list(services.data_dir.rglob(".incoming-*"))


# -- roles -------------------------------------------------------------------------


def test_roles(server):
    client, tokens = server
    assert client.get("/v1/scans").status_code == 401
    bad = client.get("/v1/scans", headers={"Authorization": "Bearer cvt_nope"})
    assert bad.status_code == 401
    assert client.get("/v1/scans", headers=tokens["scanner"]).status_code == 403
    for role in ("reader", "inspector", "admin"):
        assert client.get("/v1/scans", headers=tokens[role]).status_code == 200
    r = client.post(
        "/v1/scans",
        files={"image": ("a.png", h.png_bytes(), "image/png")},
        data=h.scan_form(),
        headers=tokens["reader"],
    )
    assert r.status_code == 403
    assert "scans:write" in r.json()["detail"]
    assert client.get("/v1/admin/models/xray", headers=tokens["inspector"]).status_code == 403
    assert client.get("/v1/admin/models/xray", headers=tokens["admin"]).status_code == 200


# -- health, metadata, metrics, logs -----------------------------------------------


def test_health_and_model_metadata(server):
    client, _ = server
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/xray/ready").json()["ready"] is True
    meta = client.get("/v2/models/xray").json()
    assert meta["name"] == "xray" and meta["versions"] == ["1"]
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "images", "datatype": "FP32", "shape": [-1, 3, 64, 64]}]
    # 2 classes + 4 box rows; anchors (64/8)^2 + (64/16)^2 + (64/32)^2 = 64 + 16 + 4.
    assert meta["outputs"] == [{"name": "output0", "datatype": "FP32", "shape": [-1, 6, 84]}]
    assert meta["parameters"]["thresholds"] == {"gun": 1.1, "knife": 1.1}
    # Thresholds set by hand: no operating point is claimed for them.
    assert meta["parameters"]["operating_point"] is None
    assert meta["parameters"]["operating_point_bag"] is None
    r = client.get("/v2/models/reid")
    assert r.status_code == 404 and "reid" in r.json()["detail"]


def test_metrics_exposed(server):
    client, tokens = server
    assert post(client, tokens, h.png_bytes(seed=11)).status_code == 201
    # Its own bad upload: under xdist the module's tests may run in other processes.
    assert post(client, tokens, b"plain text, not an image").status_code == 415
    text = client.get("/metrics").text
    for name in (
        "cv_inference_queue_duration_seconds_count",
        "cv_inference_compute_duration_seconds_count",
        "cv_inference_batch_size_count",
        "cv_upload_bytes_count",
        "cv_alert_delivery_lag_seconds",
        'cv_scans_total{status="done"}',
        'cv_http_requests_total{method="POST",route="/v1/scans",status="201"}',
        'cv_http_requests_total{method="POST",route="/v1/scans",status="415"}',
    ):
        assert name in text, name


def test_access_log_line_has_scan_and_token(server, caplog):
    from cv.inference_server.logs import JsonFormatter

    client, tokens = server
    with caplog.at_level(logging.INFO, logger="cv.inference_server.access"):
        assert post(client, tokens, h.png_bytes(seed=12), scan_id="logged-1").status_code == 201
    records = [r for r in caplog.records if getattr(r, "scan_id", None) == "logged-1"]
    assert len(records) == 1
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["method"] == "POST" and line["path"] == "/v1/scans" and line["status"] == 201
    assert line["token"] == "test-scanner" and line["ms"] > 0 and line["level"] == "info"


def test_unready_without_model_then_swap_in(tmp_path, model_dir):
    from cv.inference_server.app import create_app

    app = create_app(h.server_settings(tmp_path, tmp_path / "no-such-model"))
    with TestClient(app) as client:
        tokens = h.make_tokens(app)
        r = client.get("/v2/health/ready")
        assert r.status_code == 503
        assert "model 'xray' not loaded" in r.json()["detail"]
        assert client.get("/v2/models/xray/ready").status_code == 503
        r = post(client, tokens, h.png_bytes(), scan_id="no-model")
        assert r.status_code == 503 and "does not exist" in r.json()["detail"]
        assert client.get("/v1/scans/no-model", headers=tokens["reader"]).status_code == 404
        r = client.post(
            "/v1/admin/models/xray", json={"model_dir": str(tmp_path)}, headers=tokens["admin"]
        )
        assert r.status_code == 404 and "model.json" in r.json()["detail"]
        r = client.post(
            "/v1/admin/models/xray", json={"model_dir": str(model_dir)}, headers=tokens["admin"]
        )
        assert r.status_code == 200, r.text
        assert client.get("/v2/health/ready").json() == {"ready": True}
        assert post(client, tokens, h.png_bytes(), scan_id="no-model").status_code == 201


def test_sqlite_is_the_default_database():
    from cv.inference_server.settings import ServerSettings

    assert ServerSettings(_env_file=None).database_url.startswith("sqlite:///")


def test_bootstrap_tokens_once(tmp_path, model_dir, capsys):
    from cv.inference_server.app import create_app

    settings = h.server_settings(tmp_path, model_dir, bootstrap_tokens=True)
    with TestClient(create_app(settings)) as client:
        secrets = client.app.state.services.bootstrap_tokens
        assert set(secrets) == {"scanner", "reader", "inspector", "admin"}
        headers = {"Authorization": f"Bearer {secrets['reader']}"}
        assert client.get("/v1/scans", headers=headers).status_code == 200
    assert secrets["admin"] in capsys.readouterr().out
    with TestClient(create_app(settings)) as client:
        assert client.app.state.services.bootstrap_tokens == {}


# -- CLI ---------------------------------------------------------------------------


def test_cli_tokens_and_migrate(tmp_path):
    from cv.cli.serve import app

    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    r = runner.invoke(app, ["migrate", "--db", db])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["token", "create", "lane-3-scanner", "--role", "scanner", "--db", db])
    assert r.exit_code == 0, r.output
    secret = r.output.strip()
    assert secret.startswith("cvt_")
    r = runner.invoke(app, ["token", "list", "--db", db])
    assert "lane-3-scanner\tscanner" in r.output and secret not in r.output
    r = runner.invoke(app, ["token", "create", "x", "--role", "king", "--db", db])
    assert r.exit_code != 0 and "unknown role" in str(r.exception)
    r = runner.invoke(app, ["token", "revoke", "lane-3-scanner", "--db", db])
    assert r.exit_code == 0
    from cv.inference_server.auth import authenticate
    from cv.inference_server.db import make_engine, session_factory

    with session_factory(make_engine(db))() as session:
        assert authenticate(session, secret) is None


def test_cli_run_serves_over_http(tmp_path, model_dir):
    """``serve run`` in a real process: uvicorn answers the health probes."""
    import subprocess
    import sys
    import time

    import httpx

    port = h.free_port()
    env = {**os.environ, "CV_SERVER_DATA_DIR": str(tmp_path / "images")}
    code = "import sys; from cv.cli.serve import app; app(sys.argv[1:])"
    args = ["run", "--port", str(port), "--model", str(model_dir)]
    args += ["--db", f"sqlite:///{tmp_path / 'run.db'}"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        assert ready is not None and ready.json() == {"ready": True}
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0].decode()
    assert f"http://127.0.0.1:{port}/console" in out
    # Structured logs: the access log line of the probe is JSON.
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert any(x.get("path") == "/v2/health/ready" and x.get("status") == 200 for x in lines)
