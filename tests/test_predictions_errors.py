"""A mistyped predictions file is a DataFormatError naming the file and the JSON
path at fault, from ``read_predictions`` and from ``customs-vision eval xray``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cv.cli import main
from cv.datasets.formats import write_coco
from cv.errors import DataFormatError
from cv.predictions import ImagePredictions, Predictions, read_predictions, write_predictions
from cv.records import Annotation, Dataset, Detection, ImageRecord

CLASSES = ["gun", "knife"]


def _files(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A two-image COCO test set and the document of a valid predictions file for it."""
    box = (10.0, 10.0, 50.0, 40.0)
    images = [
        ImageRecord(f"images/{i}.png", 96, 96, [Annotation(box, "gun")], split="test")
        for i in range(2)
    ]
    ds = Dataset("tiny", images, classes=list(CLASSES))
    ds.root = tmp_path
    data = write_coco(ds, tmp_path / "annotations.json")
    preds = Predictions(
        list(CLASSES),
        [
            ImagePredictions(
                im.file,
                96,
                96,
                [
                    Detection(box, "gun", 0, 0.9),
                    Detection((60.0, 60.0, 80.0, 90.0), "knife", 1, 0.4),
                ],
            )
            for im in images
        ],
    )
    doc = json.loads(write_predictions(preds, tmp_path / "good.json").read_text())
    return data, doc


def _eval_xray(data: Path, predictions: Path, out: Path) -> int:
    """``customs-vision eval xray`` of a predictions file; its exit code."""
    args = ["--data", str(data), "--predictions", str(predictions), "--out", str(out)]
    return main(["eval", "xray", *args])


def _set(*keys: Any, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value

    return change


BAD: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("class_id is text", _set("images", 0, "detections", 0, "class_id", value="x"),
     "images[0].detections[0].class_id"),
    ("class_id is fractional", _set("images", 1, "detections", 1, "class_id", value=0.5),
     "images[1].detections[1].class_id"),
    ("score is null", _set("images", 0, "detections", 0, "score", value=None),
     "images[0].detections[0].score"),
    ("score is NaN", _set("images", 1, "detections", 0, "score", value=float("nan")),
     "images[1].detections[0].score"),
    ("score is a bool", _set("images", 0, "detections", 1, "score", value=True),
     "images[0].detections[1].score"),
    ("detection is a list", _set("images", 0, "detections", 1, value=[1, 2, 3, 4]),
     "images[0].detections[1]"),
    ("detections is null", _set("images", 1, "detections", value=None),
     "images[1].detections"),
    ("box holds text", _set("images", 0, "detections", 0, "box", 2, value="50"),
     "images[0].detections[0].box[2]"),
    ("width is text", _set("images", 1, "width", value="wide"), "images[1].width"),
    ("height is zero", _set("images", 0, "height", value=0), "images[0].height"),
    ("file is a number", _set("images", 0, "file", value=3), "images[0].file"),
    ("images is an object", _set("images", value={}), "images"),
    ("category is a number", _set("images", 0, "detections", 0, "category", value=0),
     "images[0].detections[0].category"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "change", "where"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_value_names_the_file_and_json_path(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    what: str,
    change: Callable[[dict[str, Any]], None],
    where: str,
) -> None:
    data, doc = _files(tmp_path)
    change(doc)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(DataFormatError) as e:
        read_predictions(bad)
    assert e.value.path == str(bad) and e.value.field == where

    code = _eval_xray(data, bad, tmp_path / "o")
    err = capsys.readouterr().err
    assert code == DataFormatError.exit_code, err
    assert f"bad.json: {where}:" in err
    # Handled: the error is the last thing said (a logging handler of an earlier test
    # may print its own "Logging error" traceback before it under xdist).
    assert err.strip().splitlines()[-1].startswith("error:")


def test_the_valid_file_still_evaluates(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data, doc = _files(tmp_path)
    good = tmp_path / "good.json"
    # Integral floats are integers still (another writer may emit 96.0).
    doc["images"][0]["width"] = 96.0
    good.write_text(json.dumps(doc))
    back = read_predictions(good)
    assert back.images[0].width == 96 and back.images[0].detections[0].class_id == 0
    code = _eval_xray(data, good, tmp_path / "o")
    assert code == 0, capsys.readouterr().err
