"""YOLO and COCO writers, and the generic YOLO / COCO readers, on hand-worked numbers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from cv.datasets.formats import read_coco, read_yolo, write_coco, write_yolo
from cv.errors import DataFormatError, DataValidationError, NotFoundError
from cv.image import write_image
from cv.records import Annotation, Dataset, ImageRecord


def _dataset(root: Path) -> Dataset:
    write_image(root / "src" / "a.jpg", np.zeros((50, 100, 3), np.uint8))
    write_image(root / "src" / "b.png", np.zeros((50, 100, 3), np.uint8))
    a = ImageRecord(
        "src/a.jpg",
        100,
        50,
        [
            Annotation((0, 0, 10, 20), "knife", "Straight_Knife", occlusion_level=2),
            Annotation((90, 40, 100, 50), "scissors", "Scissor", occlusion=0.3),
        ],
        split="test",
        subset="OL2",
        source="opixray",
        meta={"clipped": [1]},
    )
    b = ImageRecord("src/b.png", 100, 50, [], split=None, source="opixray", view="OL")
    return Dataset("t", [a, b], root=root, classes=["knife", "scissors"])


def _floats(line: str) -> list[float]:
    return [float(v) for v in line.split()]


def test_write_yolo_numbers_and_layout(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    data_yaml = write_yolo(ds, tmp_path / "yolo")
    doc = yaml.safe_load(data_yaml.read_text())
    assert doc == {
        "path": str((tmp_path / "yolo").absolute()),
        "train": "images/train",
        "val": "images/test",  # no val split: the test split stands in (ultralytics needs one)
        "test": "images/test",
        "names": {0: "knife", 1: "scissors"},
    }
    lines = (tmp_path / "yolo/labels/test/a.txt").read_text().splitlines()
    # (0,0,10,20) in 100x50 -> cx .05, cy .2, w .1, h .4
    assert _floats(lines[0]) == pytest.approx([0, 0.05, 0.2, 0.1, 0.4], abs=1e-9)
    # (90,40,100,50) -> cx .95, cy .9, w .1, h .2
    assert _floats(lines[1]) == pytest.approx([1, 0.95, 0.9, 0.1, 0.2], abs=1e-9)
    # A clean bag (split None -> train) gets an empty label file.
    assert (tmp_path / "yolo/labels/train/b.txt").read_text() == ""
    link = tmp_path / "yolo/images/train/b.png"
    assert link.is_symlink() and os.readlink(link) == str((tmp_path / "src/b.png").absolute())


def test_write_yolo_copy_and_in_place(tmp_path: Path) -> None:
    out = tmp_path / "yolo"
    write_image(out / "images" / "train" / "x.png", np.zeros((10, 20), np.uint8))
    rec = ImageRecord(
        "images/train/x.png", 20, 10, [Annotation((2, 3, 4, 5), "gun")], split="train"
    )
    ds = Dataset("s", [rec], root=out)
    before = os.stat(out / "images/train/x.png")
    write_yolo(ds, out, images="copy")
    after = os.stat(out / "images/train/x.png")
    # Already at its target place: neither copied nor linked.
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    assert _floats((out / "labels/train/x.txt").read_text()) == pytest.approx(
        [0, 0.15, 0.4, 0.1, 0.2]
    )
    ds2 = _dataset(tmp_path)
    write_yolo(ds2, tmp_path / "copied", images="copy")
    copied = tmp_path / "copied/images/test/a.jpg"
    assert copied.is_file() and not copied.is_symlink()


def test_write_yolo_rejects_bad_input(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    with pytest.raises(DataValidationError, match="'scissors' is not among"):
        write_yolo(ds, tmp_path / "y1", classes=["knife"])
    ds.images[0].annotations[0].box = (-5, 0, 10, 20)
    with pytest.raises(DataValidationError, match=r"src/a.jpg: box: .*outside"):
        write_yolo(ds, tmp_path / "y2")
    ds = _dataset(tmp_path)
    ds.images[1].file = "src/missing.png"
    with pytest.raises(NotFoundError, match=r"missing\.png"):
        write_yolo(ds, tmp_path / "y3")


def test_write_coco_numbers_and_round_trip(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    path = write_coco(ds, tmp_path / "coco" / "all.json")
    doc = json.loads(path.read_text())
    assert [c["name"] for c in doc["categories"]] == ["knife", "scissors"]
    assert [c["supercategory"] for c in doc["categories"]] == ["blade", "blade"]
    assert doc["images"][0]["file_name"] == "../src/a.jpg"
    assert doc["images"][0]["subset"] == "OL2" and doc["images"][1]["view"] == "OL"
    assert [a["bbox"] for a in doc["annotations"]] == [[0, 0, 10, 20], [90, 40, 10, 10]]
    assert [a["area"] for a in doc["annotations"]] == [200, 100]
    assert doc["annotations"][0]["original_name"] == "Straight_Knife"
    assert doc["annotations"][1]["category_id"] == 2
    # Clean bag: an image with no annotation.
    assert {a["image_id"] for a in doc["annotations"]} == {1}
    back = read_coco(path)
    assert [Path(back.image_path(r)).resolve() for r in back.images] == [
        (tmp_path / "src/a.jpg").resolve(),
        (tmp_path / "src/b.png").resolve(),
    ]
    a, b = back.images
    assert a.annotations == ds.images[0].annotations
    assert (a.split, a.subset, a.source, a.meta) == ("test", "OL2", "opixray", {"clipped": [1]})
    assert (b.split, b.view, b.annotations) == (None, "OL", [])
    assert back.classes == ["knife", "scissors"]
    only_test = json.loads(write_coco(ds, tmp_path / "t.json", split="test").read_text())
    assert len(only_test["images"]) == 1


def test_yolo_round_trip(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    back = read_yolo(write_yolo(ds, tmp_path / "yolo"))
    by_file = {r.file: r for r in back.images}
    a = by_file["images/test/a.jpg"]
    assert [x.box for x in a.annotations] == [
        pytest.approx((0, 0, 10, 20), abs=1e-4),
        pytest.approx((90, 40, 100, 50), abs=1e-4),
    ]
    assert [x.category for x in a.annotations] == ["knife", "scissors"]
    assert by_file["images/train/b.png"].annotations == []
    assert back.classes == ["knife", "scissors"]


def test_read_yolo_errors(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    out = tmp_path / "yolo"
    write_yolo(ds, out)
    (out / "labels/test/a.txt").write_text("0 0.5 0.5 0.1\n")
    with pytest.raises(DataFormatError, match=r"labels/test/a.txt:1: columns: expected"):
        read_yolo(out)
    (out / "labels/test/a.txt").write_text("0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DataFormatError, match=r"a.txt:2: class: class id 7"):
        read_yolo(out)
    (out / "labels/test/a.txt").write_text("0 0.5 abc 0.1 0.1\n")
    with pytest.raises(DataFormatError, match=r"a.txt:1: cy: expected a number"):
        read_yolo(out)
    with pytest.raises(NotFoundError, match=r"data\.yaml"):
        read_yolo(tmp_path / "src")


def test_read_coco_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(DataFormatError, match=r"bad.json:2: not valid JSON"):
        read_coco(bad)
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}],
        "categories": [{"id": 1, "name": "gun"}],
    }
    bad.write_text(json.dumps(doc))
    with pytest.raises(DataFormatError, match=r"bad.json: annotations\[0\].bbox: bbox must be"):
        read_coco(bad)
    doc["annotations"][0]["bbox"] = [1, 2, 3, 4]
    doc["annotations"][0]["image_id"] = 9
    bad.write_text(json.dumps(doc))
    with pytest.raises(DataFormatError, match=r"annotations\[0\].image_id: image_id 9"):
        read_coco(bad)
    del doc["images"][0]["file_name"]
    bad.write_text(json.dumps(doc))
    with pytest.raises(DataFormatError, match=r"images\[0\].file_name: missing"):
        read_coco(bad)
    doc["images"][0]["file_name"] = "a.png"
    doc["annotations"][0]["image_id"] = 1
    doc["categories"][0]["name"] = "Pistol"
    bad.write_text(json.dumps(doc))
    with pytest.raises(
        DataValidationError, match=r"categories\[0\].name: unknown class 'Pistol'.*--class-map"
    ):
        read_coco(bad)
    with pytest.raises(NotFoundError):
        read_coco(tmp_path / "nope.json")
