"""The server on the OpenVINO runtime: the same uploads, alerts, metadata and swaps
as on ONNX Runtime."""

from __future__ import annotations

import pytest
import server_helpers as h
from fastapi.testclient import TestClient

pytest.importorskip("openvino")


def _post(client, tokens, scan_id: str):
    return client.post(
        "/v1/scans",
        files={"image": ("scan.png", h.png_bytes(96, 80, seed=5), "image/png")},
        data=h.scan_form(scan_id=scan_id),
        headers=tokens["scanner"],
    )


def test_server_serves_and_swaps_on_openvino(tmp_path):
    from cv.inference_server.app import create_app

    models = tmp_path / "models"
    always = h.make_tiny_model_dir(models, name="always", thresholds=h.ALERT_ALWAYS)
    v2 = h.make_tiny_model_dir(models, name="v2", thresholds=h.ALERT_ALWAYS, version=2)
    settings = h.server_settings(tmp_path, always, runtime="openvino", precision="f32")
    app = create_app(settings)
    with TestClient(app) as client:
        tokens = h.make_tokens(app)
        meta = client.get("/v2/models/xray").json()
        assert meta["platform"] == "openvino_onnx"
        assert meta["inputs"][0]["name"] == "images"
        # The output columns come from the compiled graph: 64 + 16 + 4 anchors.
        assert meta["outputs"][0]["shape"] == [-1, 6, 84]

        r = _post(client, tokens, "ov-1")
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["scan"]["status"] == "done" and body["timing"]["compute_ms"] > 0
        # Thresholds of 1e-4 alert on any box: the untrained model gives some.
        assert body["detections"] and body["alert"] is not None

        # The same scan through ONNX Runtime gives the same boxes (FP32 both).
        from cv.inference_server.modelhost import score_floor
        from cv.models.load import load_onnx_detector

        pixels = h.gradient_rgb(96, 80, seed=5)
        floor = score_floor(dict.fromkeys(h.CLASSES, h.ALERT_ALWAYS))
        ref = load_onnx_detector(always).predict([pixels], conf=floor, multi_label=True)[0]
        assert [d["category"] for d in body["detections"]] == [d.category for d in ref]

        r = client.post(
            "/v1/admin/models/xray", json={"model_dir": str(v2)}, headers=tokens["admin"]
        )
        assert r.status_code == 200, r.text
        assert r.json()["versions"] == ["2"]
        r = _post(client, tokens, "ov-2")
        assert r.status_code == 201 and r.json()["scan"]["model_version"] == 2


def test_unknown_runtime_or_precision_is_refused(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="runtime"):
        h.server_settings(tmp_path, tmp_path, runtime="tensorflow")
    with pytest.raises(ValidationError, match="precision"):
        h.server_settings(tmp_path, tmp_path, precision="fp8")
    # bfloat16 asked of ONNX Runtime is named, not silently ignored.
    with pytest.raises(ValidationError, match="applies to runtime openvino only"):
        h.server_settings(tmp_path, tmp_path, precision="bf16")


def test_serve_run_names_a_bad_runtime_before_starting(capsys):
    from cv.cli import main

    assert main(["serve", "run", "--runtime", "tflite"]) == 2
    err = capsys.readouterr().err
    assert "runtime" in err and "onnx|openvino|torch" in err
    assert main(["serve", "run", "--runtime", "openvino", "--precision", "fp8"]) == 2
    assert "precision" in capsys.readouterr().err


def test_cctv_models_serve_on_openvino(tmp_path):
    # The person detector and the re-ID embedder both run on OpenVINO: an enrolled
    # person seen by a camera becomes a sighting, as on ONNX Runtime.
    import time

    import httpx
    import server_cctv_helpers as ch

    settings = ch.cctv_settings(tmp_path, tmp_path / "models", onnx=True, reid_runtime="openvino")
    with ch.ThreadServer(settings) as server:
        tokens = h.make_tokens(server.app)
        http = httpx.Client(base_url=server.base, timeout=60)
        status = http.get("/v1/cctv/status", headers=tokens["admin"]).json()
        assert status["ready"] and status["runtime"] == "openvino (f32)"
        models = server.services.cctv.models
        assert models.detector.label == "openvino (f32)"
        body = {
            "id": "gate-1",
            "site": "ICN-T1",
            "location": "gate 1",
            "purpose": "customs-control",
        }
        assert http.post("/v1/cameras", json=body, headers=tokens["admin"]).status_code == 201
        person = ch.person("a")
        files = [("images", ("ref.png", ch.png(person), "image/png"))]
        r = http.post(
            "/v1/watchlist/entries", files=files, data=ch.enrol_form(), headers=tokens["admin"]
        )
        assert r.status_code == 201, r.text
        t0 = time.time()
        for i in range(4):
            r = http.post(
                "/v1/cameras/gate-1/frames",
                content=ch.png(person),
                params={"timestamp": f"{t0 + i / 10:.3f}"},
                headers={**tokens["camera"], "Content-Type": "image/png"},
            )
            assert r.status_code == 200, r.text
        r = http.get("/v1/sightings", params={"camera_id": "gate-1"}, headers=tokens["inspector"])
        (sighting,) = r.json()["sightings"]
        assert sighting["similarity"] > 0.99


def test_cctv_precision_needs_the_openvino_runtime(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="reid_precision bf16 applies to reid_runtime"):
        h.server_settings(tmp_path, tmp_path, reid_precision="bf16")
    with pytest.raises(ValidationError, match="reid_runtime"):
        h.server_settings(tmp_path, tmp_path, reid_runtime="tflite")
