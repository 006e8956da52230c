"""Export: the FP16 graph's parity check at its stated tolerance and
its accuracy change; INT8 calibrates on train / val images and the accuracy
change is measured on the test split (else val, else all), as ``eval xray`` picks."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import export_helpers
import numpy as np
import pytest

from cv.cli import main
from cv.errors import NotFoundError
from cv.models.export import (
    FP16_BOX_ATOL,
    FP16_MIN_IOU,
    FP16_SCORE_ATOL,
    Fp16ParityReport,
    ParityError,
    fp16_parity_check,
    parity_check,
)
from cv.models.load import init_model_dir
from cv.models.weights import read_record
from cv.records import Dataset, ImageRecord

CLASSES = export_helpers.CLASSES
CONF = 0.63


_images = export_helpers.sample_images


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny yolo11n (64 px) that detects untrained, exported with its FP16 graph."""
    return export_helpers.detecting_tiny_model(tmp_path_factory.mktemp("fp16") / "m")


# ----------------------------------------------------------------------------- FP16 parity


def test_fp16_parity_check_passes_and_states_its_tolerance(exported: Path) -> None:
    report = fp16_parity_check(exported, _images(), conf=CONF)
    assert isinstance(report, Fp16ParityReport) and report.passed and not report.problems
    assert report.onnx_file == "model.fp16.onnx"
    assert report.detections_torch == report.detections_onnx == report.matched > 0
    facts = report.to_dict()
    assert (facts["atol"], facts["score_atol"], facts["iou_required"]) == (
        FP16_BOX_ATOL,
        FP16_SCORE_ATOL,
        FP16_MIN_IOU,
    )


def test_fp16_parity_check_fails_on_a_mismatched_graph(exported: Path, tmp_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    from cv.models.weights import write_record

    d = tmp_path / "m"
    shutil.copytree(exported, d)
    g = onnx.load(str(d / "model.fp16.onnx"))
    # Class-logit biases shifted by 0.5: scores move by about 0.1, far beyond 0.02.
    shifted = 0
    for init in g.graph.initializer:
        if ".cv3." in init.name and init.name.endswith("bias") and tuple(init.dims) == (3,):
            arr = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array((arr + 0.5).astype(arr.dtype), init.name))
            shifted += 1
    assert shifted == 3
    onnx.save(g, str(d / "model.fp16.onnx"))
    write_record(read_record(d, verify=False), d)
    report = fp16_parity_check(d, _images(), conf=CONF, raise_on_failure=False)
    assert not report.passed and report.worst_excess > 1
    assert any("raw scores differ" in p for p in report.problems)
    with pytest.raises(ParityError, match="FP16 graph does not reproduce") as e:
        fp16_parity_check(d, _images(), conf=CONF)
    assert e.value.path == str(d / "model.fp16.onnx")


def test_fp16_parity_check_fails_on_non_finite_outputs(exported: Path, monkeypatch) -> None:
    from cv.models.runtime import OnnxDetector

    real = OnnxDetector.infer

    def overflow(self, tensor):
        y = real(self, tensor)
        y[:, :4, ::3] = np.inf
        return y

    monkeypatch.setattr(OnnxDetector, "infer", overflow)
    report = fp16_parity_check(exported, _images(), conf=0.99, raise_on_failure=False)
    assert not report.passed
    assert any("non-finite raw outputs" in p for p in report.problems)


@pytest.mark.slow
def test_default_model_fp16_needs_its_own_tolerance(tmp_path: Path) -> None:
    """On the shipped model, FP16 rounds raw boxes by a fraction of a pixel: beyond
    FP32's 1e-3, within FP16's tolerance, with the same detections."""
    from cv.datasets.synth import generate
    from cv.image import read_image
    from cv.models.export import export_fp16
    from cv.models.load import default_model_dir

    src = default_model_dir()
    if not (src / "model.safetensors").is_file():
        pytest.fail(f"the default model is missing from {src}")
    d = tmp_path / "m"
    shutil.copytree(src, d)  # never write into models/zoo
    export_fp16(d)
    ds = generate(
        tmp_path / "ds", n_images=8, size=(384, 384), seed=3, workers=1, show_progress=False
    )
    images = [read_image(ds.image_path(im)) for im in ds.images]
    fp32_tolerance = parity_check(d, images, onnx_file="model.fp16.onnx", raise_on_failure=False)
    assert not fp32_tolerance.passed and fp32_tolerance.max_abs_diff > 0.1
    report = fp16_parity_check(d, images)
    assert report.passed and report.detections_torch > 0
    assert report.max_abs_diff < FP16_BOX_ATOL + 1e-2 * 384
    assert report.max_score_diff < FP16_SCORE_ATOL and report.min_iou >= FP16_MIN_IOU


# ----------------------------------------------------------------------------- splits


def _ds(*splits: str | None) -> Dataset:
    return Dataset(
        "s",
        [ImageRecord(f"{i}.png", 8, 8, [], split=s) for i, s in enumerate(splits)],
        classes=list(CLASSES),
    )


def test_calibration_takes_train_and_val_images_only(tmp_path: Path) -> None:
    from cv.cli.export import _calibration_part

    part, splits = _calibration_part(_ds("train", "test", "val", "test", "train"), tmp_path)
    assert splits == ["train", "val"] and [im.file for im in part.images] == [
        "0.png",
        "2.png",
        "4.png",
    ]
    part, splits = _calibration_part(_ds("val", "test"), tmp_path)
    assert splits == ["val"] and [im.file for im in part.images] == ["0.png"]
    part, splits = _calibration_part(_ds(None, None), tmp_path)  # no splits assigned
    assert splits == ["all"] and len(part.images) == 2
    with pytest.raises(NotFoundError, match=r"no train or val images.*has test") as e:
        _calibration_part(_ds("test", "test"), tmp_path / "heldout")
    assert e.value.field == "--calib" and e.value.path == str(tmp_path / "heldout")


def test_evaluation_takes_test_else_val_else_all() -> None:
    from cv.cli.export import _evaluation_part

    part, split = _evaluation_part(_ds("train", "test", "val", "test"))
    assert split == "test" and [im.file for im in part.images] == ["1.png", "3.png"]
    part, split = _evaluation_part(_ds("train", "val", "train"))
    assert split == "val" and [im.file for im in part.images] == ["1.png"]
    part, split = _evaluation_part(_ds("train", "train"))
    assert split == "all" and len(part.images) == 2
    part, split = _evaluation_part(_ds(None, None, None))
    assert split == "all" and len(part.images) == 3


# ----------------------------------------------------------------------------- CLI


def _synth(root: Path, n_images: int, splits: tuple[float, float, float], seed: int) -> Dataset:
    """A synthetic 96 px gun / knife set at ``root``."""
    from cv.datasets.synth import generate

    return generate(
        root,
        n_images=n_images,
        size=(96, 96),
        classes=("gun", "knife"),
        splits=splits,
        seed=seed,
        workers=1,
        show_progress=False,
    )


@pytest.fixture(scope="module")
def split_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """A 20-image synthetic set with train, val and test splits; images per split."""
    root = tmp_path_factory.mktemp("splits") / "ds"
    ds = _synth(root, n_images=20, splits=(0.5, 0.25, 0.25), seed=1)
    counts = {s: sum(im.split == s for im in ds.images) for s in ("train", "val", "test")}
    assert all(counts.values())
    return root, counts


@pytest.mark.slow
def test_cli_records_the_splits_and_the_fp16_accuracy_change(
    tmp_path: Path, split_set: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture
) -> None:
    data, counts = split_set
    d = tmp_path / "m"
    init_model_dir(d, architecture="yolo11n", classes=["gun", "knife"], input_size=64)
    args = ["export", "onnx", str(d), "--half", "--int8", "--calib", str(data), "--eval", str(data)]
    code = main([*args, "--calib-images", "100"])
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert code == 0, out
    facts = read_record(d).metrics["export"]
    assert facts["parity"]["passed"] is True
    fp16 = facts["fp16"]
    assert fp16["parity"]["passed"] is True and fp16["parity"]["onnx_file"] == "model.fp16.onnx"
    assert set(fp16["fp32"]) >= {"AP", "AP50"} and set(fp16["fp16"]) >= {"AP", "AP50"}
    assert (fp16["eval_split"], fp16["eval_images"]) == ("test", counts["test"])
    int8 = facts["int8"]
    # Every train and val image calibrated (100 asked for), no test image.
    assert int8["calib_splits"] == ["train", "val"]
    assert int8["calib_images"] == counts["train"] + counts["val"]
    assert (int8["eval_split"], int8["eval_images"]) == ("test", counts["test"])
    assert int8["fp32"] == fp16["fp32"] and set(int8["int8"]) >= {"AP", "AP50"}
    text = " ".join(out.split())  # rich wraps long lines
    assert f"measured on {counts['test']} images of {data} (test split)" in text
    assert (
        f"of the {counts['train'] + counts['val']} images of {data} (train and val splits)" in text
    )
    assert "FP16 accuracy change" in text and "scores 0.02" in text


@pytest.mark.slow
def test_cli_refuses_to_calibrate_on_test_images_only(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    test_only = tmp_path / "test-only"
    _synth(test_only, n_images=3, splits=(0.0, 0.0, 1.0), seed=2)
    d = tmp_path / "m"
    init_model_dir(d, architecture="yolo11n", classes=["gun", "knife"], input_size=64)
    code = main(["export", "onnx", str(d), "--int8", "--calib", str(test_only)])
    err = capsys.readouterr().err
    assert code == NotFoundError.exit_code, err
    assert "no train or val images to calibrate" in err and "test-only" in err
    assert not (d / "model.onnx").exists()  # refused before exporting


@pytest.mark.slow
def test_cli_fails_when_the_fp16_graph_is_out_of_tolerance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import cv.models.export as export_module

    strict = functools.partial(
        export_module.fp16_parity_check, box_atol=1e-9, box_rtol=0.0, score_atol=1e-9
    )
    monkeypatch.setattr(export_module, "fp16_parity_check", strict)
    d = tmp_path / "m"
    init_model_dir(d, architecture="yolo11n", classes=["gun", "knife"], input_size=64)
    code = main(["export", "onnx", str(d), "--half"])
    err = capsys.readouterr().err
    assert code == ParityError.exit_code and "model.fp16.onnx" in err
    # Handled: the error is the last thing said (a logging handler of an earlier test
    # may print its own "Logging error" traceback before it under xdist).
    assert err.strip().splitlines()[-1].startswith("error:")
    facts = json.loads((d / "model.json").read_text())["metrics"]["export"]
    assert facts["parity"]["passed"] is True and facts["fp16"]["parity"]["passed"] is False
