"""ONNX export (dynamic batch), PyTorch/ONNX parity, FP16, INT8, Triton repository, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import export_helpers
import numpy as np
import pytest

from cv.errors import ConfigError, NotFoundError
from cv.models.export import ParityError, export_onnx, parity_check, quantize_int8
from cv.models.load import init_model_dir, load_detector
from cv.models.triton import write_triton_repository
from cv.models.weights import read_record, write_record

CLASSES = export_helpers.CLASSES
CONF = 0.63


_images = export_helpers.sample_images


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`export_helpers.detecting_tiny_model`. The detection-level checks use
    ``conf=CONF`` (only the top level, whose huge boxes NMS merges into one per
    image), the raw-output checks use everything."""
    return export_helpers.detecting_tiny_model(tmp_path_factory.mktemp("exp") / "m")


def test_graph_has_dynamic_batch_and_fixed_output(exported: Path) -> None:
    import onnx

    g = onnx.load(str(exported / "model.onnx"))
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    assert dims(g.graph.input[0]) == ["batch", 3, 64, 64]
    assert dims(g.graph.output[0]) == ["batch", 7, 84]
    meta = {p.key: p.value for p in g.metadata_props}
    assert meta["classes"] == '["gun", "knife", "scissors"]'
    record = read_record(exported)
    assert record.files["onnx"] == "model.onnx" and "model.onnx" in record.sha256
    assert record.files["onnx_fp16"] == "model.fp16.onnx"


def test_onnx_matches_torch_at_batch_1_and_3(exported: Path) -> None:
    torch_det = load_detector(exported, runtime="torch", device="cpu")
    onnx_det = load_detector(exported, runtime="onnx", providers=["CPUExecutionProvider"])
    images = _images()
    x1, _ = onnx_det.preprocess(images[:1])
    x3, _ = onnx_det.preprocess(images)
    np.testing.assert_allclose(onnx_det.infer(x1), torch_det.infer(x1), atol=1e-3, rtol=1e-3)
    raw_o, raw_t = onnx_det.infer(x3), torch_det.infer(x3)
    assert raw_o.shape == (3, 7, 84)
    np.testing.assert_allclose(raw_o, raw_t, atol=1e-3, rtol=1e-3)
    det_o = onnx_det.predict(images, conf=CONF)
    det_t = torch_det.predict(images, conf=CONF)
    assert sum(map(len, det_t)) > 0
    for a, b in zip(det_o, det_t, strict=True):
        assert [d.class_id for d in a] == [d.class_id for d in b]
        np.testing.assert_allclose([d.box for d in a], [d.box for d in b], atol=1e-2)
        np.testing.assert_allclose([d.score for d in a], [d.score for d in b], atol=1e-4)


def test_parity_check_passes(exported: Path) -> None:
    report = parity_check(exported, _images(), conf=CONF)
    assert report.passed and not report.problems
    assert report.detections_torch == report.detections_onnx > 0
    assert report.matched > 0 and report.min_iou >= 0.99
    assert report.max_abs_diff < 1e-3


def test_parity_check_fails_on_a_mismatched_graph(exported: Path, tmp_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    d = tmp_path / "m"
    shutil.copytree(exported, d)
    g = onnx.load(str(d / "model.onnx"))
    # Shift the class-logit biases, as a graph made from other weights would differ.
    shifted = 0
    for init in g.graph.initializer:
        if ".cv3." in init.name and init.name.endswith("bias") and tuple(init.dims) == (3,):
            arr = numpy_helper.to_array(init) + np.float32(0.05)
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
            shifted += 1
    assert shifted == 3
    onnx.save(g, str(d / "model.onnx"))
    write_record(read_record(d, verify=False), d)  # the record now vouches for the bad graph
    with pytest.raises(ParityError, match="does not reproduce PyTorch"):
        parity_check(d, _images(), conf=CONF)
    report = parity_check(d, _images(), conf=CONF, raise_on_failure=False)
    assert not report.passed and report.worst_excess > 1


def test_parity_check_fails_on_nan_outputs(exported: Path, monkeypatch) -> None:
    # NaN compares False with any tolerance: a graph giving NaN must still fail,
    # also where no detection passes the confidence floor to show it.
    from cv.models.runtime import OnnxDetector

    real = OnnxDetector.infer

    def nan_boxes(self, tensor):
        y = real(self, tensor)
        y[:, :4, ::2] = np.nan
        return y

    monkeypatch.setattr(OnnxDetector, "infer", nan_boxes)
    report = parity_check(exported, _images(), conf=0.99, raise_on_failure=False)
    assert not report.passed
    assert any("non-finite raw outputs" in p for p in report.problems)
    with pytest.raises(ParityError, match="non-finite"):
        parity_check(exported, _images(), conf=0.99)


def test_fp16_graph_runs(exported: Path) -> None:
    from cv.models.load import load_onnx_detector

    det = load_onnx_detector(exported, onnx_file="model.fp16.onnx")
    x, _ = det.preprocess(_images())
    y = det.infer(x)
    assert y.shape == (3, 7, 84) and y.dtype == np.float32


@pytest.mark.slow
def test_int8_quantisation_runs(exported: Path, tmp_path: Path) -> None:
    import onnx

    from cv.models.load import load_onnx_detector

    d = tmp_path / "m"
    shutil.copytree(exported, d)
    out = quantize_int8(d, _images())
    assert out.name == "model.int8.onnx"
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    det = load_onnx_detector(d, onnx_file="model.int8.onnx")
    found = det.predict(_images(), conf=CONF)
    assert len(found) == 3
    assert read_record(d).files["onnx_int8"] == "model.int8.onnx"
    with pytest.raises(Exception, match="at least one image"):
        quantize_int8(d, [])


def _model_config(text: str) -> Any:
    """``config.pbtxt`` parsed with Triton's own ``ModelConfig`` schema (from
    ``tritonclient``): a field or enum value Triton does not know fails the parse."""
    import importlib.util

    from google.protobuf import text_format

    package = importlib.util.find_spec("tritonclient")
    assert package is not None and package.submodule_search_locations
    # The file alone: tritonclient.grpc's package imports grpcio, which is not needed here.
    path = Path(next(iter(package.submodule_search_locations))) / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
    assert spec is not None and spec.loader is not None
    schema = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(schema)
    return text_format.Parse(text, schema.ModelConfig())


def _check_io(cfg: Any) -> None:
    (inp,) = cfg.input
    (out,) = cfg.output
    assert (inp.name, list(inp.dims), out.name, list(out.dims)) == (
        "images",
        [3, 64, 64],
        "output0",
        [7, 84],
    )
    types = type(cfg).DESCRIPTOR.fields_by_name["input"].message_type
    assert types.fields_by_name["data_type"].enum_type.values_by_number[inp.data_type].name == (
        "TYPE_FP32"
    )


def test_triton_repository_layout(exported: Path, tmp_path: Path) -> None:
    import onnx

    root = write_triton_repository(
        exported, tmp_path / "repo", name="xray", version=3, max_batch_size=8, kind="KIND_GPU"
    )
    assert root == tmp_path / "repo" / "xray"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "3",
        "3/model.onnx",
        "config.pbtxt",
        "customs-vision.json",
    ]
    assert (root / "3" / "model.onnx").read_bytes() == (exported / "model.onnx").read_bytes()
    onnx.checker.check_model(str(root / "3" / "model.onnx"))
    cfg = _model_config((root / "config.pbtxt").read_text())
    assert (cfg.name, cfg.platform, cfg.backend, cfg.max_batch_size) == (
        "xray",
        "onnxruntime_onnx",
        "",
        8,
    )
    _check_io(cfg)
    assert list(cfg.dynamic_batching.preferred_batch_size) == [4, 8]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 2000
    (group,) = cfg.instance_group
    assert (group.count, group.kind) == (1, cfg.instance_group[0].KIND_GPU)


def test_triton_repository_for_the_openvino_backend(exported: Path, tmp_path: Path) -> None:
    # OpenVINO's backend reads the ONNX graph itself, under the file name the config
    # gives; it completes nothing of the config, so every field is written.
    root = write_triton_repository(
        exported, tmp_path / "repo", name="xray-cpu", backend="openvino", instance_count=2
    )
    cfg = _model_config((root / "config.pbtxt").read_text())
    assert (cfg.name, cfg.platform, cfg.backend, cfg.default_model_filename) == (
        "xray-cpu",
        "",
        "openvino",
        "model.onnx",
    )
    assert (root / "1" / cfg.default_model_filename).read_bytes() == (
        exported / "model.onnx"
    ).read_bytes()
    _check_io(cfg)
    (group,) = cfg.instance_group
    assert (group.count, group.kind) == (2, group.KIND_CPU)
    assert json.loads((root / "customs-vision.json").read_text())["backend"] == "openvino"
    with pytest.raises(ConfigError, match="CPU only"):
        write_triton_repository(
            exported, tmp_path / "r2", name="x", backend="openvino", kind="KIND_GPU"
        )
    with pytest.raises(ConfigError, match="backend must be one of onnxruntime, openvino"):
        write_triton_repository(exported, tmp_path / "r2", name="x", backend="tensorrt")  # type: ignore[arg-type]


def test_triton_errors(exported: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="preferred batch sizes"):
        write_triton_repository(exported, tmp_path, name="x", max_batch_size=4)
    with pytest.raises(ConfigError, match="version"):
        write_triton_repository(exported, tmp_path, name="x", version=0)
    bare = tmp_path / "bare"
    init_model_dir(bare, architecture="yolo11n", classes=CLASSES, input_size=64)
    with pytest.raises(NotFoundError, match="export onnx"):
        write_triton_repository(bare, tmp_path / "repo", name="x")


def test_export_rejects_bad_input_size(tmp_path: Path) -> None:
    d = tmp_path / "m"
    init_model_dir(d, architecture="yolo11n", classes=CLASSES, input_size=64)
    record = read_record(d)
    record.input_size = 70
    write_record(record, d)
    with pytest.raises(ConfigError, match="multiple of 32"):
        export_onnx(d)


@pytest.mark.slow
def test_cli_export_onnx_and_triton(tmp_path: Path) -> None:
    from cv.cli import main
    from cv.datasets.synth import generate

    d = tmp_path / "m"
    init_model_dir(d, architecture="yolo11n", classes=["gun", "knife"], input_size=64)
    generate(
        tmp_path / "ds",
        n_images=6,
        size=(96, 96),
        classes=("gun", "knife"),
        seed=1,
        workers=1,
        show_progress=False,
    )
    args = ["export", "onnx", str(d), "--int8", "--calib", str(tmp_path / "ds")]
    assert main([*args, "--calib-images", "4", "--eval", str(tmp_path / "ds")]) == 0
    record = read_record(d)
    facts = record.metrics["export"]
    assert facts["parity"]["passed"] is True
    assert set(facts["int8"]["fp32"]) >= {"AP", "AP50"}
    assert set(facts["int8"]["int8"]) >= {"AP", "AP50"}
    assert main(["export", "triton", str(d), "--repo", str(tmp_path / "repo"), "--gpu"]) == 0
    assert (tmp_path / "repo" / record.name / "1" / "model.onnx").is_file()
    assert main(["export", "onnx", str(d), "--int8"]) == 2  # --int8 without --calib
    assert main(["export", "onnx", str(tmp_path / "missing")]) == 5
