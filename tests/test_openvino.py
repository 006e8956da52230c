"""The OpenVINO runtime: the same graph, the same detections as ONNX Runtime in FP32,
close ones in bfloat16, and clear errors."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from cv.errors import ConfigError, DataValidationError
from cv.evaluation.bench_detector import synthetic_images
from cv.models.load import (
    default_model_dir,
    load_detector,
    load_onnx_detector,
    load_openvino_detector,
)
from cv.models.runtime import OpenVinoDetector
from cv.models.weights import read_record, write_record

pytest.importorskip("openvino")


def _box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return synthetic_images(4, size=512, seed=3)


def test_f32_reproduces_onnx_runtime(images: list[np.ndarray]) -> None:
    ort_det = load_onnx_detector(default_model_dir())
    ov_det = load_openvino_detector(default_model_dir(), precision="f32")
    assert isinstance(ov_det, OpenVinoDetector) and ov_det.precision == "f32"
    assert ov_det.runtime == "openvino"
    # Batch 1 and a batch of 3 through the dynamic batch axis.
    for batch in (images[:1], images[:3]):
        x, _ = ort_det.preprocess(batch)
        a, b = ort_det.infer(x), ov_det.infer(x)
        assert a.shape == b.shape == (len(batch), 4 + 13, ov_det.output_dims[2])
        np.testing.assert_allclose(b, a, atol=2e-3, rtol=1e-3)
    ref = ort_det.predict(images, conf=0.25)
    got = ov_det.predict(images, conf=0.25)
    assert sum(map(len, ref)) > 0
    for r_img, g_img in zip(ref, got, strict=True):
        assert [d.category for d in g_img] == [d.category for d in r_img]
        for r, g in zip(r_img, g_img, strict=True):
            assert g.score == pytest.approx(r.score, abs=1e-3)
            assert _box_iou(r.box, g.box) > 0.999


def test_bf16_keeps_the_confident_detections(images: list[np.ndarray]) -> None:
    from cv.models.runtime import openvino_core

    if "BF16" not in openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        with pytest.raises(ConfigError, match="bfloat16"):
            load_openvino_detector(default_model_dir(), precision="bf16")
        return
    ref = load_onnx_detector(default_model_dir()).predict(images, conf=0.2)
    det = load_openvino_detector(default_model_dir(), precision="bf16")
    assert det.precision == "bf16"
    got = det.predict(images, conf=0.2)
    confident = [(i, d) for i, dets in enumerate(ref) for d in dets if d.score >= 0.5]
    assert confident
    for i, d in confident:
        # bfloat16 keeps 8 bits of mantissa: each confident box is still found,
        # same class, nearly the same place and score.
        best = max(
            (g for g in got[i] if g.category == d.category),
            key=lambda g: _box_iou(g.box, d.box),
            default=None,
        )
        assert best is not None, (i, d)
        assert _box_iou(best.box, d.box) > 0.9
        assert best.score == pytest.approx(d.score, abs=0.1)


def test_every_model_compiles_on_one_core() -> None:
    # A Core per model crashed a later PyTorch training run in the same process.
    from cv.models.runtime import openvino_core

    core = openvino_core()
    a = load_openvino_detector(default_model_dir(), precision="f32")
    b = load_openvino_detector(default_model_dir(), precision="f32", max_batch=2)
    assert openvino_core() is core
    x, _ = a.preprocess(synthetic_images(1, size=128))
    np.testing.assert_array_equal(a.infer(x), b.infer(x))


def test_load_detector_dispatches_and_names_runtimes() -> None:
    det = load_detector(default_model_dir(), runtime="openvino", precision="f32")
    assert isinstance(det, OpenVinoDetector)
    with pytest.raises(ConfigError, match="onnx, openvino, torch"):
        load_detector(default_model_dir(), runtime="tensorflow")  # type: ignore[arg-type]


def test_unknown_precision_is_named() -> None:
    with pytest.raises(ConfigError, match="fp8") as err:
        load_openvino_detector(default_model_dir(), precision="fp8")  # type: ignore[arg-type]
    assert err.value.field == "precision"


def test_missing_openvino_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from cv.models import runtime

    monkeypatch.setattr(runtime, "_OV_CORE", None)  # as in a process that never loaded it
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.raises(ConfigError, match="pip install openvino"):
        load_openvino_detector(default_model_dir())


def test_graph_with_other_classes_is_refused_by_both_runtimes(tmp_path: Path) -> None:
    d = tmp_path / "m"
    shutil.copytree(default_model_dir(), d)
    record = read_record(d)
    fewer = record.classes[:-1]
    thresholds = {k: v for k, v in record.thresholds.items() if k in fewer}
    write_record(record.model_copy(update={"classes": fewer, "thresholds": thresholds}), d)
    for load in (load_onnx_detector, load_openvino_detector):
        with pytest.raises(DataValidationError, match="predicts 13 classes") as err:
            load(d)
        assert err.value.path == str(d / "model.onnx")


def test_eval_cli_on_openvino_matches_onnx_runtime(tmp_path: Path, capsys) -> None:
    import json

    from cv.cli import main
    from cv.datasets.synth import generate

    data = tmp_path / "data"
    generate(
        data, n_images=6, size=(256, 256), clean_fraction=0.2, splits=(0.0, 0.0, 1.0),
        seed=11, workers=1,
    )  # fmt: skip
    figures = {}
    for runtime in ("onnx", "openvino"):
        out = tmp_path / runtime
        args = ["eval", "xray", "--data", str(data), "--model", str(default_model_dir())]
        code = main([*args, "--runtime", runtime, "--precision", "f32", "--out", str(out)])
        assert code == 0, capsys.readouterr().err
        preds = json.loads((out / "predictions.json").read_text())
        figures[preds["model"]["runtime"]] = json.loads((out / "metrics.json").read_text())
    assert set(figures) == {"onnx", "openvino (f32)"}
    a = figures["onnx"]["coco"]["summary"]
    b = figures["openvino (f32)"]["coco"]["summary"]
    assert b["AP50"] == pytest.approx(a["AP50"], abs=1e-3)
    assert b["AP"] == pytest.approx(a["AP"], abs=1e-3)
    code = main(["eval", "xray", "--data", str(data), "--model", str(default_model_dir()),
                 "--runtime", "tflite", "--out", str(tmp_path / "x")])  # fmt: skip
    assert code == 2 and "onnx, openvino, torch" in capsys.readouterr().err
    code = main(["eval", "xray", "--data", str(data), "--model", str(default_model_dir()),
                 "--precision", "bf16", "--out", str(tmp_path / "y")])  # fmt: skip
    assert code == 2 and "--runtime openvino only" in capsys.readouterr().err
