"""``bench detector`` runs all three paths on the same images and reports ratios."""

from __future__ import annotations

from pathlib import Path

import pytest

from cv.evaluation.bench_detector import bench_detector, synthetic_images
from cv.models.export import export_onnx
from cv.models.load import init_model_dir


def _tiny_model(tmp_path: Path) -> tuple[Path, list]:
    """An exported, untrained 64 px yolo11n and three 64 px scans."""
    d = tmp_path / "m"
    init_model_dir(d, architecture="yolo11n", classes=["gun", "knife"], input_size=64)
    export_onnx(d)
    return d, synthetic_images(3, size=64)


@pytest.mark.slow
def test_bench_detector_small(tmp_path: Path) -> None:
    d, images = _tiny_model(tmp_path)
    assert [im.shape for im in images] == [(64, 64, 3)] * 3
    r = bench_detector(d, images=images, warmup=1)
    assert r["images"] == 3 and r["untrained"] is False
    assert r["input_size"] == 64  # both paths run the network at the model's input size
    for key in ("ultralytics_ips", "ours_ips", "bare_ips"):
        assert r[key] > 0
    assert r["ratio_vs_ultralytics"] == pytest.approx(r["ours_ips"] / r["ultralytics_ips"])
    assert r["ratio_vs_bare"] == pytest.approx(r["ours_ips"] / r["bare_ips"])
    assert r["providers"][-1] == "CPUExecutionProvider"
    # OpenVINO's paths on the same graph: FP32 always, bfloat16 where the CPU has it.
    ov = r["openvino"]
    assert set(ov) in ({"f32"}, {"f32", "bf16"})
    assert ("bf16" in ov) == ("bfloat16" not in r["openvino_note"])
    for fig in ov.values():
        assert fig["ips"] > 0 and fig["bare_ips"] > 0
        assert fig["ratio_vs_ultralytics"] == pytest.approx(fig["ips"] / r["ultralytics_ips"])
        assert fig["ratio_vs_bare"] == pytest.approx(fig["ips"] / fig["bare_ips"])
        assert fig["ratio_vs_ours"] == pytest.approx(fig["ips"] / r["ours_ips"])


@pytest.mark.slow
def test_bench_detector_int8_path(tmp_path: Path) -> None:
    from cv.errors import NotFoundError
    from cv.models.export import quantize_int8

    d, images = _tiny_model(tmp_path)
    with pytest.raises(NotFoundError, match="--int8"):
        bench_detector(d, images=images, warmup=0, int8=True)
    quantize_int8(d, images)
    r = bench_detector(d, images=images, warmup=0, int8=True)
    assert r["int8_ips"] > 0
    assert r["ratio_int8_vs_ultralytics"] == pytest.approx(r["int8_ips"] / r["ultralytics_ips"])
    assert r["ratio_int8_vs_ours"] == pytest.approx(r["int8_ips"] / r["ours_ips"])
    plain = bench_detector(d, images=images, warmup=0, openvino=False)
    assert "int8_ips" not in plain and plain["openvino"] is None


def test_cli_bench_detector_registered() -> None:
    from cv.cli.bench import app

    names = {c.name for c in app.registered_commands}
    assert "detector" in names
