"""The evaluation report files and ``customs-vision eval xray``, error paths included."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cv.cli import main
from cv.datasets.formats import write_coco
from cv.evaluation.detection import evaluate
from cv.evaluation.report import write_report
from cv.evaluation.screening import choose_thresholds, screening
from cv.evaluation.voc import voc_ap50
from cv.predictions import ImagePredictions, Predictions, write_predictions
from cv.records import Annotation, Dataset, Detection, ImageRecord

CLASSES = ["gun", "knife", "laptop"]


def _world(seed: int = 0) -> tuple[Dataset, Predictions]:
    """60 test images (a third clean) and 10 train images, three subsets, all levels.

    Each object gets a detection jittered by a few pixels with a high score, with a
    class confusion now and then; every image gets a low-score false alarm.
    """
    rng = np.random.default_rng(seed)
    records, entries = [], []
    for i in range(70):
        anns, dets = [], []
        n = 0 if i % 3 == 0 else int(rng.integers(1, 3))
        for k in range(n):
            cls = CLASSES[int(rng.integers(0, 3))]
            x = 20.0 + 150 * k
            box = (x, 30.0, x + float(rng.integers(20, 120)), 30.0 + float(rng.integers(20, 120)))
            anns.append(Annotation(box, cls, occlusion_level=int(rng.integers(1, 4))))
            j = rng.normal(0, 2, 4)
            pred_cls = cls if rng.random() > 0.1 else CLASSES[(CLASSES.index(cls) + 1) % 3]
            dets.append(
                Detection(
                    tuple(float(v) for v in np.add(box, j)),  # type: ignore[arg-type]
                    pred_cls,
                    CLASSES.index(pred_cls),
                    float(rng.uniform(0.5, 1.0)),
                )
            )
        fa = CLASSES[int(rng.integers(0, 3))]
        dets.append(
            Detection(
                (400.0, 400.0, 440.0, 430.0), fa, CLASSES.index(fa), float(rng.uniform(0, 0.6))
            )
        )
        split = "train" if i >= 60 else "test"
        subset = None if split == "train" else ("easy", "hard", "hidden")[i % 3]
        records.append(
            ImageRecord(f"images/{i:03d}.png", 480, 480, anns, split=split, subset=subset)
        )
        entries.append(ImagePredictions(f"images/{i:03d}.png", 480, 480, dets))
    ds = Dataset("world", records, classes=list(CLASSES))
    preds = Predictions(list(CLASSES), entries, model={"name": "jitter", "input_size": 640})
    return ds, preds


def _test_part(ds: Dataset) -> Dataset:
    return Dataset(ds.name, [im for im in ds.images if im.split == "test"], classes=ds.classes)


def test_report_files_are_written_and_non_trivial(tmp_path):
    full, preds = _world()
    ds = _test_part(full)
    detection = evaluate(ds, preds, allow_extra=True)
    voc = voc_ap50(ds, preds, allow_extra=True)
    screen = screening(ds, preds, allow_extra=True)
    chosen = choose_thresholds(ds, preds, mode="far", target=0.05, allow_extra=True)
    report = write_report(
        tmp_path / "rep",
        detection=detection,
        voc=voc,
        screening=screen,
        thresholds=chosen,
        dataset_name="world",
        model_summary=preds.model,
    )
    assert report == tmp_path / "rep" / "report.md"
    for name in ("pr_curves.png", "confusion_matrix.png", "dr_far.png"):
        data = (tmp_path / "rep" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, name
    doc = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert doc["coco"]["summary"]["AP50"] == detection.summary()["AP50"]
    assert doc["voc"]["AP50"] == voc["AP50"]
    assert [p["far_target"] for p in doc["screening"]["points"]] == [0.01, 0.05, 0.1, 0.2]
    assert doc["thresholds"]["thresholds"] == chosen.thresholds()
    assert set(doc["coco"]["per_occlusion"]) == {"1", "2", "3"}
    assert set(doc["coco"]["per_subset"]) == {"easy", "hard", "hidden"}
    md = report.read_text()
    for heading in (
        "## Summary",
        "## Per class",
        "## Per object size",
        "## Per occlusion level",
        "## Per subset",
        "## Screening (bag level)",
        "## Operating thresholds",
        "## Confusion matrix",
    ):
        assert heading in md
    assert "| knife |" in md and "| hidden |" in md and "5%" in md


def test_report_says_when_screening_is_undefined(tmp_path):
    full, preds = _world()
    threat_only = Dataset(
        "threats",
        [im for im in full.images if any(a.category != "laptop" for a in im.annotations)],
        classes=list(CLASSES),
    )
    screen = screening(threat_only, preds, allow_extra=True)
    report = write_report(
        tmp_path,
        detection=evaluate(threat_only, preds, allow_extra=True),
        voc=voc_ap50(threat_only, preds, allow_extra=True),
        screening=screen,
        thresholds=None,
        dataset_name="threats",
        model_summary={},
    )
    assert "**Undefined:** no clean bags" in report.read_text()
    assert json.loads((tmp_path / "metrics.json").read_text())["screening"]["note"] == screen.note


def _files(tmp_path: Path) -> tuple[Path, Path, Dataset, Predictions]:
    ds, preds = _world()
    ds.root = tmp_path
    data = write_coco(ds, tmp_path / "annotations.json")
    pred_path = write_predictions(preds, tmp_path / "predictions.json")
    return data, pred_path, ds, preds


def test_cli_eval_xray_from_a_predictions_file(tmp_path, capsys):
    data, pred_path, ds, preds = _files(tmp_path)
    out = tmp_path / "out"
    code = main(
        [
            "eval",
            "xray",
            "--data",
            str(data),
            "--predictions",
            str(pred_path),
            "--out",
            str(out),
            "--operating-point",
            "recall=0.8",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "VOC AP50" in captured.out and "DR@5%" in captured.out and "knife" in captured.out
    assert "report:" in captured.err
    doc = json.loads((out / "metrics.json").read_text())
    # --split test (the default) evaluates the 60 test images, not the 10 train ones.
    assert doc["coco"]["n_images"] == 60
    expected = evaluate(_test_part(ds), preds, allow_extra=True).summary()
    assert doc["coco"]["summary"] == expected
    assert doc["thresholds"]["mode"] == "recall" and doc["thresholds"]["target"] == 0.8
    assert all(v["reached"] for v in doc["thresholds"]["per_class"].values())
    assert isinstance(doc["coco"]["confusion"]["score_threshold"], dict)

    code = main(
        ["eval", "xray", "--data", str(data), "--predictions", str(pred_path), "--out",
         str(out), "--split", "all", "--classes", "knife"]
    )  # fmt: skip
    assert code == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["coco"]["n_images"] == 70 and doc["coco"]["classes"] == ["knife"]
    # By default thresholds are chosen the way the server alerts: per clean bag.
    assert doc["thresholds"]["mode"] == "bag-far" and doc["thresholds"]["target"] == 0.05
    assert doc["thresholds"]["bag"]["far"] <= 0.05


def test_cli_eval_xray_default_operating_point_without_clean_bags(tmp_path, capsys):
    """Public datasets hold a threat in every image: the default falls back to per class."""
    ds, preds = _world()
    ds = Dataset(ds.name, [im for im in ds.images if im.annotations], classes=ds.classes)
    ds.root = tmp_path
    data = write_coco(ds, tmp_path / "annotations.json")
    pred_path = write_predictions(preds, tmp_path / "predictions.json")
    out = tmp_path / "out"
    code = main(
        ["eval", "xray", "--data", str(data), "--predictions", str(pred_path), "--out", str(out)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "no clean bag" in captured.err
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["thresholds"]["mode"] == "far" and doc["thresholds"]["target"] == 0.05
    assert doc["thresholds"].get("bag") is None


def test_cli_error_paths_exit_with_their_codes(tmp_path, capsys):
    data, pred_path, ds, preds = _files(tmp_path)
    base = ["eval", "xray", "--out", str(tmp_path / "o")]

    # Missing dataset -> 5.
    assert main([*base, "--data", str(tmp_path / "nope"), "--predictions", str(pred_path)]) == 5
    assert "nope" in capsys.readouterr().err

    # A corrupt predictions file -> 3, naming the file.
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main([*base, "--data", str(data), "--predictions", str(bad)]) == 3
    assert "bad.json" in capsys.readouterr().err

    # Classes that do not match the model -> 4, naming the class and the model's classes.
    narrow = Predictions(["gun"], [ImagePredictions(im.file, 480, 480) for im in ds.images])
    narrow_path = write_predictions(narrow, tmp_path / "narrow.json")
    assert main([*base, "--data", str(data), "--predictions", str(narrow_path)]) == 4
    err = capsys.readouterr().err
    assert "not one the model knows" in err and "model classes: gun" in err

    # An image without predictions -> 4, naming the image.
    missing = Predictions(list(CLASSES), [e for e in preds.images if e.file != "images/004.png"])
    missing_path = write_predictions(missing, tmp_path / "missing.json")
    assert main([*base, "--data", str(data), "--predictions", str(missing_path)]) == 4
    assert "images/004.png" in capsys.readouterr().err

    # Bad arguments -> 2.
    assert main([*base, "--data", str(data)]) == 2
    assert main([*base, "--data", str(data), "--predictions", str(pred_path),
                 "--operating-point", "precision=0.5"]) == 2  # fmt: skip
    assert "far=RATE, bag-far=RATE or recall=RATE" in capsys.readouterr().err
    assert main([*base, "--data", str(data), "--predictions", str(pred_path),
                 "--split", "val"]) == 5  # fmt: skip
    assert "no images of split 'val'" in capsys.readouterr().err


def test_cli_model_with_corrupt_weights_gives_a_clear_message(tmp_path, capsys):
    data, _, _, _ = _files(tmp_path)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.json").write_text("{ this is not a record")
    code = main(["eval", "xray", "--data", str(data), "--model", str(model_dir)])
    err = capsys.readouterr().err
    assert code in (2, 3), err
    assert "model.json" in err
