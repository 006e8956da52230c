"""RT-DETR through the same stack as YOLO: registry, training, both runtimes, export."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from train_helpers import tiny_xray_config

from cv.models.registry import build_model, list_models
from cv.models.rtdetr import is_detr
from cv.training.xray import TrainResult, train_xray

pytestmark = pytest.mark.slow

SIDE = 64


def test_rtdetr_is_registered_and_built_from_its_yaml() -> None:
    assert "rtdetr-l" in list_models() and is_detr("rtdetr-l") and not is_detr("yolo11n")
    model = build_model("rtdetr-l", num_classes=3, class_names=["gun", "knife", "cash"])
    assert type(model).__name__ == "RTDETRDetectionModel"
    assert model.names == {0: "gun", 1: "knife", 2: "cash"}
    # The same seed gives the same weights.
    again = build_model("rtdetr-l", num_classes=3)
    a, b = model.state_dict(), again.state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in list(a)[:20])


@pytest.fixture(scope="module")
def tiny_rtdetr(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    root = tmp_path_factory.mktemp("rtdetr")
    cfg = tiny_xray_config(root, model="rtdetr-l", imgsz=SIDE, name="tiny-rtdetr")
    return train_xray(cfg, command="pytest rtdetr")


def test_rtdetr_trains_and_records_its_run(tiny_rtdetr: TrainResult) -> None:
    import json

    record = json.loads((tiny_rtdetr.best_dir / "model.json").read_text())
    assert record["architecture"] == "rtdetr-l" and record["input_size"] == SIDE
    with open(tiny_rtdetr.run_dir / "metrics.csv", newline="") as f:
        row = next(csv.DictReader(f))
    # Its GIoU loss fills the box-loss column; it has no distribution focal loss.
    assert float(row["train_box_loss"]) > 0 and float(row["train_cls_loss"]) > 0
    assert row["train_dfl_loss"] == ""


def test_rtdetr_runs_in_both_runtimes_with_one_contract(
    tiny_rtdetr: TrainResult, tmp_path: Path
) -> None:
    import shutil

    from cv.models.export import export_onnx, parity_check
    from cv.models.load import load_detector

    d = tmp_path / "model"
    shutil.copytree(tiny_rtdetr.best_dir, d)
    export_onnx(d)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (90, 120, 3), dtype=np.uint8) for _ in range(3)]
    raws = {}
    for runtime in ("torch", "onnx"):
        det = load_detector(d, runtime=runtime, device="cpu")
        tensor, _ = det.preprocess(images)
        raws[runtime] = det.infer(tensor)
        # One column per object query: 4 box rows in input pixels, then class scores.
        n, rows, queries = raws[runtime].shape
        assert (n, rows) == (3, 4 + len(det.classes)) and 0 < queries <= 300
        assert raws[runtime][:, 4:].min() >= 0.0 and raws[runtime][:, 4:].max() <= 1.0
        out = det.predict(images, conf=0.0, max_det=20)
        assert len(out) == 3 and all(len(o) <= 20 for o in out)
        for o in out:
            for x1, y1, x2, y2 in (dd.box for dd in o):
                assert 0 <= x1 <= x2 <= 120 and 0 <= y1 <= y2 <= 90
    np.testing.assert_allclose(raws["onnx"], raws["torch"], atol=1e-3, rtol=1e-3)
    # An untrained set predictor scores its queries almost alike, so box matching
    # at conf 0 would test tie-breaking; the raw outputs are what must agree.
    report = parity_check(d, images, conf=0.99)
    assert report.passed and report.max_abs_diff < 1e-3


def test_rtdetr_metadata_states_its_query_columns(tiny_rtdetr: TrainResult, tmp_path: Path) -> None:
    import shutil
    from types import SimpleNamespace

    from cv.inference_server.api_health import model_metadata
    from cv.models.export import export_onnx
    from cv.models.load import load_detector

    d = tmp_path / "model"
    shutil.copytree(tiny_rtdetr.best_dir, d)
    export_onnx(d)
    det = load_detector(d, runtime="onnx")
    loaded = SimpleNamespace(
        record=det.record,
        detector=det,
        batcher=SimpleNamespace(max_batch=4),
        loaded_at=SimpleNamespace(isoformat=lambda: "now"),
        model_dir=d,
    )
    meta = model_metadata(loaded)  # type: ignore[arg-type]
    queries = det.session.get_outputs()[0].shape[2]
    assert meta["outputs"][0]["shape"] == [-1, 4 + len(det.classes), queries]
