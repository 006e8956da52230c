"""Builders, the registry, loading a model directory and its error paths, predict."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from cv.errors import ConfigError, DataFormatError, DataValidationError, NotFoundError
from cv.models.load import build_torch_model, init_model_dir, load_detector, save_model
from cv.models.registry import build_model, list_models, register_model
from cv.models.weights import read_record

CLASSES = ["gun", "knife", "scissors"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tiny") / "m"
    init_model_dir(d, architecture="yolo11n", classes=CLASSES, input_size=64)
    return d


def test_import_is_lazy() -> None:
    import subprocess

    code = (
        "import sys, cv.models, cv.models.registry; "
        "print('torch' in sys.modules, 'ultralytics' in sys.modules, cv.models.list_models())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names = "['osnet_x0_25', 'osnet_x1_0', 'resnet18_bnneck', 'resnet50_bnneck', "
    names += "'rtdetr-l', 'yolo11n', 'yolo11s', 'yolov8n']"
    assert out.stdout.strip() == f"False False {names}"


def test_registry_duplicate_and_unknown() -> None:
    assert {"yolo11n", "yolo11s", "yolov8n"} <= set(list_models())
    with pytest.raises(ValueError, match="already registered"):
        register_model("yolo11n")(lambda **_: None)
    with pytest.raises(ConfigError, match="unknown model 'yolo99'"):
        build_model("yolo99", num_classes=3)
    with pytest.raises(ConfigError, match="num_classes"):
        build_model("yolo11n", num_classes=0)


@pytest.mark.parametrize("name", ["yolo11n", "yolo11s", "yolov8n"])
def test_every_builder_runs_with_the_raw_contract(name: str) -> None:
    import torch

    from cv.models.runtime import raw_head_output

    model = build_model(name, num_classes=2, seed=0).eval()
    with torch.no_grad():
        y = raw_head_output(model(torch.zeros(2, 3, 64, 64)))
    # A = 8² + 4² + 2² anchors for strides 8, 16, 32 at 64 px.
    assert tuple(y.shape) == (2, 4 + 2, 84)
    assert float(y[:, 4:].min()) >= 0.0 and float(y[:, 4:].max()) <= 1.0


def test_builder_is_deterministic_for_a_seed() -> None:
    import torch

    a = build_model("yolo11n", num_classes=3, seed=7).state_dict()
    b = build_model("yolo11n", num_classes=3, seed=7).state_dict()
    c = build_model("yolo11n", num_classes=3, seed=8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    named = build_model("yolo11n", num_classes=3, class_names=CLASSES)
    assert named.names == {0: "gun", 1: "knife", 2: "scissors"}


def test_torch_detector_loads_and_predicts(model_dir: Path) -> None:
    det = load_detector(model_dir, runtime="torch", device="auto")
    assert det.classes == CLASSES and det.input_size == 64 and det.runtime == "torch"
    out = det.predict([np.zeros((50, 100, 3), np.uint8), np.zeros((70, 30, 3), np.uint8)])
    assert len(out) == 2 and all(isinstance(x, list) for x in out)


def test_missing_model_dir(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="model directory does not exist"):
        load_detector(tmp_path / "nope", runtime="torch")
    with pytest.raises(NotFoundError, match=r"model\.json"):
        load_detector(tmp_path, runtime="torch")


def test_no_onnx_says_to_export(model_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "m"
    shutil.copytree(model_dir, d)
    with pytest.raises(NotFoundError, match="customs-vision export onnx"):
        load_detector(d, runtime="onnx")


def test_corrupt_safetensors_fails_sha256(model_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "m"
    shutil.copytree(model_dir, d)
    weights = d / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="sha256") as err:
        load_detector(d, runtime="torch")
    assert "model.safetensors" in str(err.value)


def test_truncated_safetensors_with_matching_record_is_unreadable(
    model_dir: Path, tmp_path: Path
) -> None:
    from cv.models.weights import write_record

    d = tmp_path / "m"
    shutil.copytree(model_dir, d)
    (d / "model.safetensors").write_bytes(b"not safetensors")
    write_record(read_record(d, verify=False), d)  # a record that "agrees" with the bad file
    with pytest.raises(DataFormatError, match="safetensors"):
        load_detector(d, runtime="torch")


def test_classes_not_matching_the_weights(model_dir: Path, tmp_path: Path) -> None:
    from cv.models.weights import write_record

    d = tmp_path / "m"
    shutil.copytree(model_dir, d)
    record = read_record(d)
    record.classes = ["gun", "knife"]
    write_record(record, d)
    with pytest.raises(DataValidationError, match=r"3 classes but model\.json lists 2"):
        load_detector(d, runtime="torch")


def test_unknown_runtime(model_dir: Path) -> None:
    with pytest.raises(ConfigError, match="unknown runtime"):
        load_detector(model_dir, runtime="tflite")  # type: ignore[arg-type]


def test_save_model_round_trip(tmp_path: Path, model_dir: Path) -> None:
    import torch

    model, record = build_torch_model(model_dir)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    record.name = "changed"
    save_model(model, record, tmp_path / "copy")
    again, rec2 = build_torch_model(tmp_path / "copy")
    assert rec2.name == "changed"
    assert torch.equal(next(again.parameters()), next(model.parameters()))


def test_predict_dataset_and_class_check(model_dir: Path, tmp_path: Path) -> None:
    from cv.image import write_image
    from cv.models.predict import predict_dataset
    from cv.records import Annotation, Dataset, ImageRecord

    rng = np.random.default_rng(0)
    records = []
    for i, (w, h) in enumerate([(80, 40), (64, 64), (30, 90)]):
        write_image(tmp_path / f"{i}.png", rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        records.append(
            ImageRecord(
                file=f"{i}.png", width=w, height=h, annotations=[Annotation((1, 1, 9, 9), "gun")]
            )
        )
    ds = Dataset(name="t", images=records, root=tmp_path, classes=["gun"])
    det = load_detector(model_dir, runtime="torch", device="cpu")
    preds = predict_dataset(det, ds, batch_size=2, conf=0.0, progress=False)
    assert preds.classes == CLASSES
    assert [(p.file, p.width, p.height) for p in preds.images] == [
        ("0.png", 80, 40),
        ("1.png", 64, 64),
        ("2.png", 30, 90),
    ]
    assert all(len(p.detections) > 0 for p in preds.images)  # conf 0 keeps candidates
    for p in preds.images:
        for d in p.detections:
            assert 0 <= d.box[0] <= d.box[2] <= p.width and 0 <= d.box[1] <= d.box[3] <= p.height
    assert preds.model["runtime"] == "torch"
    ds.classes = ["gun", "banana"]
    with pytest.raises(DataValidationError, match="banana"):
        predict_dataset(det, ds, progress=False)
