"""Every reader on fixture files in its dataset's own format, with boxes worked out by hand.

Each fixture image is 100 x 50 (width x height), so a box that swaps x and y or
is off by one pixel gives different numbers from the ones written here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cv.datasets.formats import (
    READERS,
    detect_format,
    load_dataset,
    register_reader,
    write_coco,
    write_yolo,
)
from cv.errors import ConfigError, DataFormatError, DataValidationError, NotFoundError
from cv.image import write_image
from cv.records import Dataset, ImageRecord

W, H = 100, 50


def _img(path: Path, *, dtype: type = np.uint8) -> Path:
    arr = np.zeros((H, W), dtype) if dtype is np.uint16 else np.zeros((H, W, 3), dtype)
    return write_image(path, arr)


def _boxes(ds: Dataset, file: str) -> list[tuple[str, tuple[float, ...]]]:
    rec = next(r for r in ds.images if r.file == file)
    return [(a.category, a.box) for a in rec.annotations]


def _record(ds: Dataset, file: str) -> ImageRecord:
    return next(r for r in ds.images if r.file == file)


def _yolo_and_coco(
    ds: Dataset, out: Path, file: str
) -> tuple[list[list[float]], list[list[float]]]:
    """Writes ``ds`` both ways; returns the YOLO rows and COCO bboxes of ``file``."""
    write_yolo(ds, out / "yolo")
    rec = _record(ds, file)
    label = out / "yolo" / "labels" / (rec.split or "train") / (Path(file).stem + ".txt")
    rows = [[float(v) for v in line.split()] for line in label.read_text().splitlines()]
    doc = json.loads(write_coco(ds, out / "coco.json").read_text())
    index = ds.images.index(rec) + 1
    bboxes = [a["bbox"] for a in doc["annotations"] if a["image_id"] == index]
    return rows, bboxes


# --- OPIXray / HiXray ---------------------------------------------------------------


def _opixray(root: Path) -> Path:
    _img(root / "train/train_image/009000.jpg")
    (root / "train/train_annotation").mkdir(parents=True)
    (root / "train/train_annotation/009000.txt").write_text(
        "009000.jpg Straight_Knife 1 1 10 20\n009000.jpg Scissor 91 41 120 60\n"
    )
    _img(root / "test/test_image/009001.jpg")
    _img(root / "test/test_image/009002.jpg")
    (root / "test/test_annotation").mkdir(parents=True)
    (root / "test/test_annotation/009001.txt").write_text("009001.jpg Folding_Knife 11 21 30 40\n")
    (root / "test/test_knife-2.txt").write_text("009001\n")
    return root


def test_opixray(tmp_path: Path) -> None:
    root = _opixray(tmp_path / "OPIXray")
    assert detect_format(root) == "opixray"
    ds = load_dataset(root)
    assert ds.classes == ["knife", "scissors"]
    # 1-based corners (1,1)-(10,20) -> xyxy (0,0,10,20); the second is clipped.
    assert _boxes(ds, "train/train_image/009000.jpg") == [
        ("knife", (0.0, 0.0, 10.0, 20.0)),
        ("scissors", (90.0, 40.0, 100.0, 50.0)),
    ]
    train = _record(ds, "train/train_image/009000.jpg")
    assert (train.split, train.meta["clipped"]) == ("train", [1])
    assert [a.original_name for a in train.annotations] == ["Straight_Knife", "Scissor"]
    occluded = _record(ds, "test/test_image/009001.jpg")
    assert (occluded.split, occluded.subset) == ("test", "OL2")
    assert occluded.annotations[0].box == (10.0, 20.0, 30.0, 40.0)
    assert occluded.annotations[0].occlusion_level == 2
    clean = _record(ds, "test/test_image/009002.jpg")
    assert (clean.annotations, clean.split, clean.subset) == ([], "test", None)
    rows, bboxes = _yolo_and_coco(ds, tmp_path / "out", "train/train_image/009000.jpg")
    assert rows == [
        pytest.approx([0, 0.05, 0.2, 0.1, 0.4]),
        pytest.approx([1, 0.95, 0.9, 0.1, 0.2]),
    ]
    assert bboxes == [[0, 0, 10, 20], [90, 40, 10, 10]]
    assert (tmp_path / "out/yolo/labels/test/009002.txt").read_text() == ""


def test_opixray_errors(tmp_path: Path) -> None:
    root = _opixray(tmp_path / "OPIXray")
    txt = root / "train/train_annotation/009000.txt"
    txt.write_text("009000.jpg Straight_Knife 1 1 10 20\n009000.jpg Scissor 1 1 10\n")
    with pytest.raises(DataFormatError, match=r"009000.txt:2: y2: expected 6"):
        load_dataset(root, fmt="opixray")
    txt.write_text("009000.jpg Straight_Knife 1 one 10 20\n")
    with pytest.raises(DataFormatError, match=r"009000.txt:1: y1: expected a number, got 'one'"):
        load_dataset(root, fmt="opixray")
    txt.write_text("009000.jpg Bread_Knife 1 1 10 20\n")
    with pytest.raises(DataValidationError) as err:
        load_dataset(root, fmt="opixray")
    msg = str(err.value)
    assert "009000.txt:1: class: unknown class 'Bread_Knife'" in msg
    assert "class_maps/opixray.yaml" in msg
    txt.write_text("009000.jpg Straight_Knife 200 1 210 20\n")
    with pytest.raises(DataValidationError, match=r"009000.txt:1: class: box lies outside"):
        load_dataset(root, fmt="opixray")
    dropped = load_dataset(root, fmt="opixray", invalid_boxes="drop")
    assert (
        _record(dropped, "train/train_image/009000.jpg")
        .meta["invalid"][0]["reason"]
        .startswith("box lies outside")
    )
    (root / "train/train_annotation/009999.txt").write_text("009999.jpg Scissor 1 1 2 2\n")
    with pytest.raises(NotFoundError, match=r"009999\.txt: no image"):
        load_dataset(root, fmt="opixray", invalid_boxes="drop")


def test_hixray_and_user_class_map(tmp_path: Path) -> None:
    root = tmp_path / "HiXray"
    _img(root / "train/train_image/a1.jpg")
    (root / "train/train_annotation").mkdir(parents=True)
    (root / "train/train_annotation/a1.txt").write_text(
        "a1.jpg Portable_Charger_1 5 6 25 16\na1.jpg Water 1 1 100 50\n"
    )
    assert detect_format(root) == "hixray"
    ds = load_dataset(root)
    assert _boxes(ds, "train/train_image/a1.jpg") == [
        ("power_bank", (4.0, 5.0, 25.0, 16.0)),
        ("bottle", (0.0, 0.0, 100.0, 50.0)),
    ]
    rows, bboxes = _yolo_and_coco(ds, tmp_path / "out", "train/train_image/a1.jpg")
    # classes in taxonomy order: power_bank (0), bottle (6 of 8 HiXray targets).
    assert ds.classes.index("power_bank") == rows[0][0]
    assert rows[0][1:] == pytest.approx([0.145, 0.21, 0.21, 0.22])
    assert bboxes == [[4, 5, 21, 11], [0, 0, 100, 50]]
    user_map = tmp_path / "mine.yaml"
    user_map.write_text("map:\n  portable_charger_1: battery\n  WATER: null\n")
    mine = load_dataset(root, fmt="hixray", class_map=user_map)
    rec = mine.images[0]
    assert [(a.category, a.original_name) for a in rec.annotations] == [
        ("battery", "Portable_Charger_1")
    ]
    assert rec.meta["dropped"] == ["Water"]


# --- SIXray / EDS (VOC XML) ---------------------------------------------------------


def _voc(path: Path, objects: list[tuple[str, tuple[int, int, int, int]]]) -> None:
    body = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b in objects
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><filename>{path.stem}.jpg</filename>{body}</annotation>")


def _sixray(root: Path) -> Path:
    _img(root / "P00001.jpg")
    _voc(root / "P00001.xml", [("GUN", (5, 6, 25, 36)), ("", (1, 1, 10, 10))])
    _img(root / "N00001.jpg")
    (root / "train.csv").write_text(
        "name,Gun,Knife,Wrench,Pliers,Scissors\nP00001,1,-1,-1,-1,-1\nN00001,-1,-1,-1,-1,-1\n"
    )
    return root


def test_sixray(tmp_path: Path) -> None:
    root = _sixray(tmp_path / "SIXray")
    assert detect_format(root) == "sixray"
    ds = load_dataset(root)
    # The empty name is resolved from the CSV (Gun is the only positive class).
    assert _boxes(ds, "P00001.jpg") == [
        ("gun", (4.0, 5.0, 25.0, 36.0)),
        ("gun", (0.0, 0.0, 10.0, 10.0)),
    ]
    rec = _record(ds, "P00001.jpg")
    assert [a.original_name for a in rec.annotations] == ["GUN", ""]
    assert (rec.split, rec.meta["name_from_csv"]) == ("train", [1])
    assert _record(ds, "N00001.jpg").annotations == []
    rows, bboxes = _yolo_and_coco(ds, tmp_path / "out", "P00001.jpg")
    assert rows[0] == pytest.approx([0, 0.145, 0.41, 0.21, 0.62])
    assert bboxes == [[4, 5, 21, 31], [0, 0, 10, 10]]


def test_sixray_errors(tmp_path: Path) -> None:
    root = _sixray(tmp_path / "SIXray")
    (root / "train.csv").write_text(
        "name,Gun,Knife,Wrench,Pliers,Scissors\nP00001,1,1,-1,-1,-1\nN00001,-1,-1,-1,-1,-1\n"
    )
    with pytest.raises(DataValidationError) as err:
        load_dataset(root, fmt="sixray")
    assert "P00001.xml: object[1].name: empty class name" in str(err.value)
    assert "train.csv:2 lists 2 positive classes (Gun, Knife)" in str(err.value)
    (root / "train.csv").write_text("name,Gun,Knife,Wrench,Pliers,Scissors\nP00001,1,x,-1,-1,-1\n")
    with pytest.raises(DataFormatError, match=r"train.csv:2: Knife: expected a number"):
        load_dataset(root, fmt="sixray")
    (root / "train.csv").unlink()
    _voc(root / "P00001.xml", [("gun", (5, 6, 25, 36))])
    (root / "P00001.xml").write_text(
        (root / "P00001.xml").read_text().replace("<xmin>5</xmin>", "")
    )
    with pytest.raises(DataFormatError, match=r"P00001.xml: object\[0\].bndbox.xmin: missing"):
        load_dataset(root, fmt="sixray")
    (root / "P00001.xml").write_text("<annotation>\n<object>\n</annotation>")
    with pytest.raises(DataFormatError, match=r"P00001.xml:3: not valid XML"):
        load_dataset(root, fmt="sixray")


def test_eds(tmp_path: Path) -> None:
    root = tmp_path / "EDS"
    _img(root / "scanner1/images/0001.jpg")
    _voc(root / "scanner1/labels/0001.xml", [("smallelectronicequipmen", (2, 3, 12, 13))])
    assert detect_format(root) == "eds"
    ds = load_dataset(root)
    assert _boxes(ds, "scanner1/images/0001.jpg") == [("electronics", (1.0, 2.0, 12.0, 13.0))]
    assert ds.images[0].meta["domain"] == "scanner1"
    rows, bboxes = _yolo_and_coco(ds, tmp_path / "out", "scanner1/images/0001.jpg")
    assert rows[0][1:] == pytest.approx([0.065, 0.15, 0.11, 0.22])
    assert bboxes == [[1, 2, 11, 11]]
    _voc(root / "scanner1/labels/0001.xml", [("toaster", (2, 3, 12, 13))])
    with pytest.raises(
        DataValidationError, match=r"0001.xml: object\[0\]: unknown class 'toaster'.*eds.yaml"
    ):
        load_dataset(root)


# --- COCO-based: PIDray, CLCXray, AI-Hub, generic -----------------------------------


def _coco(path: Path, images: list[dict], anns: list[dict], cats: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "images": images,
        "annotations": [{"id": i + 1, "iscrowd": 0, **a} for i, a in enumerate(anns)],
        "categories": [{"id": i + 1, "name": c} for i, c in enumerate(cats)],
    }
    path.write_text(json.dumps(doc))


def test_pidray_2021(tmp_path: Path) -> None:
    root = tmp_path / "pidray"
    _img(root / "train/t1.png")
    _img(root / "hard/h1.png")
    cats = ["Baton", "Pliers", "Hammer", "Powerbank"]
    _coco(
        root / "annotations/xray_train.json",
        [{"id": 7, "file_name": "t1.png", "width": W, "height": H}],
        [{"image_id": 7, "category_id": 4, "bbox": [10, 5, 20, 15]}],
        cats,
    )
    _coco(
        root / "annotations/xray_test_hard.json",
        [{"id": 1, "file_name": "h1.png", "width": W, "height": H}],
        [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 50]}],
        cats,
    )
    assert detect_format(root) == "pidray"
    ds = load_dataset(root)
    assert _boxes(ds, "train/t1.png") == [("power_bank", (10.0, 5.0, 30.0, 20.0))]
    hard = _record(ds, "hard/h1.png")
    assert (hard.split, hard.subset, hard.annotations[0].category) == ("test", "hard", "baton")
    assert _record(ds, "train/t1.png").subset is None
    rows, bboxes = _yolo_and_coco(ds, tmp_path / "out", "train/t1.png")
    assert rows[0][0] == ds.classes.index("power_bank")
    assert rows[0][1:] == pytest.approx([0.2, 0.25, 0.2, 0.3])
    assert bboxes == [[10, 5, 20, 15]]


def test_pidray_2023_subset_from_folder(tmp_path: Path) -> None:
    root = tmp_path / "pidray23"
    _img(root / "train/a.png")
    _img(root / "test/hidden/b.png")
    _coco(
        root / "annotations/train.json",
        [{"id": 1, "file_name": "a.png", "width": W, "height": H}],
        [],
        ["Gun"],
    )
    _coco(
        root / "annotations/test.json",
        [{"id": 1, "file_name": "hidden/b.png", "width": W, "height": H}],
        [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}],
        ["Gun"],
    )
    ds = load_dataset(root, fmt="pidray")
    b = _record(ds, "test/hidden/b.png")
    assert (b.split, b.subset, b.annotations[0].box) == ("test", "hidden", (1.0, 2.0, 4.0, 6.0))
    assert _record(ds, "train/a.png").annotations == []


def test_clcxray_16bit_size_from_header(tmp_path: Path) -> None:
    root = tmp_path / "clcxray"
    _img(root / "images/c1.png", dtype=np.uint16)
    _coco(
        root / "annotations/instances_test.json",
        [{"id": 1, "file_name": "c1.png"}],  # no width/height: read from the 16-bit header
        [{"image_id": 1, "category_id": 2, "bbox": [50, 10, 50, 40]}],
        ["blade", "SwissArmyKnife", "VacuumCup"],
    )
    assert detect_format(root) == "clcxray"
    ds = load_dataset(root)
    rec = ds.images[0]
    assert (rec.file, rec.width, rec.height, rec.split) == ("images/c1.png", W, H, "test")
    assert [(a.category, a.original_name, a.box) for a in rec.annotations] == [
        ("knife", "SwissArmyKnife", (50.0, 10.0, 100.0, 50.0))
    ]
    rows, _ = _yolo_and_coco(ds, tmp_path / "out", "images/c1.png")
    assert rows[0][1:] == pytest.approx([0.75, 0.6, 0.5, 0.8])


def test_aihub(tmp_path: Path) -> None:
    root = tmp_path / "aihub"
    _img(root / "images/x1.png")
    _coco(
        root / "labels/x1.json",
        [{"id": 1, "file_name": "x1.png", "width": W, "height": H}],
        [{"image_id": 1, "category_id": 1, "bbox": [3, 4, 10, 6]}],
        ["Smartphone"],
    )
    assert detect_format(root) == "aihub"
    ds = load_dataset(root)
    assert _boxes(ds, "images/x1.png") == [("phone", (3.0, 4.0, 13.0, 10.0))]


def test_generic_coco_is_detected_and_identity_mapped(tmp_path: Path) -> None:
    _img(tmp_path / "g.png")
    path = tmp_path / "instances_val.json"
    _coco(
        path,
        [{"id": 1, "file_name": "g.png", "width": W, "height": H}],
        [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}],
        ["gun"],
    )
    assert detect_format(path) == "coco"
    ds = load_dataset(path)
    assert (ds.images[0].split, _boxes(ds, "g.png")) == ("val", [("gun", (0.0, 0.0, 1.0, 1.0))])


# --- GDXray ---------------------------------------------------------------------------


def _gdxray(root: Path) -> Path:
    _img(root / "B0046/B0046_0001.png")
    _img(root / "B0046/B0046_0002.png")
    (root / "B0046/ground_truth.txt").write_text("1.0000e+00 11 20 21 40\n")
    _img(root / "B0049/B0049_0001.png")
    (root / "B0049/ground_truth.txt").write_text("1 1 10 20 40 shuriken\n")
    _img(root / "B0001/B0001_0001.png")  # no ground truth: not annotated, skipped
    return root


def test_gdxray(tmp_path: Path) -> None:
    root = _gdxray(tmp_path / "Baggage")
    assert detect_format(root) == "gdxray"
    ds = load_dataset(root)
    assert [r.file for r in ds.images] == [
        "B0046/B0046_0001.png",
        "B0046/B0046_0002.png",
        "B0049/B0049_0001.png",
    ]
    # k x1 x2 y1 y2 = 1 11 20 21 40 -> corners (11,21)-(20,40) -> xyxy (10,20,20,40)
    assert _boxes(ds, "B0046/B0046_0001.png") == [("gun", (10.0, 20.0, 20.0, 40.0))]
    assert _record(ds, "B0046/B0046_0001.png").annotations[0].original_name == "handgun"
    assert _boxes(ds, "B0049/B0049_0001.png") == [("blade", (0.0, 19.0, 10.0, 40.0))]
    assert [r.split for r in ds.images] == ["test", "test", "train"]
    other = load_dataset(root, columns="x1y1x2y2")
    # the same row read as x1 y1 x2 y2 = 11 20 21 40 -> xyxy (10,19,21,40)
    assert _boxes(other, "B0046/B0046_0001.png") == [("gun", (10.0, 19.0, 21.0, 40.0))]
    rows, _ = _yolo_and_coco(ds, tmp_path / "out", "B0046/B0046_0001.png")
    assert rows[0][1:] == pytest.approx([0.15, 0.6, 0.1, 0.4])
    with pytest.raises(ConfigError, match="columns must be"):
        load_dataset(root, columns="xyxy")
    (root / "B0046/ground_truth.txt").write_text("1 11 20 21\n")
    with pytest.raises(
        DataFormatError, match=r"B0046/ground_truth.txt:1: columns: expected 'k x1 x2 y1 y2'"
    ):
        load_dataset(root)
    (root / "B0046/ground_truth.txt").write_text("3 11 20 21 40\n")
    with pytest.raises(NotFoundError, match=r"ground_truth.txt:1: k: no image B0046_0003.png"):
        load_dataset(root)


# --- PIXray / DvXray --------------------------------------------------------------------


def test_pixray(tmp_path: Path) -> None:
    root = tmp_path / "PIXray"
    _img(root / "train/p1.png")
    (root / "train/p1.json").write_text(
        json.dumps({"objects": [{"label": "Razor_blade", "polygon": [[10, 5], [30, 5], [20, 25]]}]})
    )
    assert detect_format(root) == "pixray"
    ds = load_dataset(root)
    assert _boxes(ds, "train/p1.png") == [("blade", (10.0, 5.0, 30.0, 25.0))]
    assert ds.images[0].split == "train"
    rows, bboxes = _yolo_and_coco(ds, tmp_path / "out", "train/p1.png")
    assert rows[0][1:] == pytest.approx([0.2, 0.3, 0.2, 0.4])
    assert bboxes == [[10, 5, 20, 20]]
    (root / "train/p1.json").write_text(
        json.dumps({"objects": [{"label": "Gun", "polygon": [[1, 2]]}]})
    )
    with pytest.raises(DataFormatError, match=r"p1.json: objects\[0\].polygon: polygon must be"):
        load_dataset(root, fmt="pixray")
    (root / "train/p1.json").write_text(json.dumps({"things": []}))
    with pytest.raises(DataFormatError, match=r"p1.json: objects: missing 'objects'"):
        load_dataset(root, fmt="pixray")


def test_dvxray(tmp_path: Path) -> None:
    root = tmp_path / "DvXray"
    for sid in ("s1", "s2", "s3"):
        _img(root / f"{sid}_OL.png")
        _img(root / f"{sid}_SD.png")
    (root / "s1.json").write_text(
        json.dumps(
            {
                "objects": [
                    {
                        "label": "Bat",
                        "OL": {"polygon": [[1, 2], [11, 2], [11, 12]]},
                        "SD": {"bbox": [5, 5, 15, 25]},
                    }
                ]
            }
        )
    )
    (root / "s2.json").write_text(json.dumps({"objects": "None"}))
    (root / "s3.json").write_text(json.dumps({"objects": [{"label": "Dart"}]}))
    assert detect_format(root) == "dvxray"
    ds = load_dataset(root)
    assert len(ds.images) == 6
    assert _boxes(ds, "s1_OL.png") == [("baton", (1.0, 2.0, 11.0, 12.0))]
    assert _boxes(ds, "s1_SD.png") == [("baton", (5.0, 5.0, 15.0, 25.0))]
    assert [(r.view, r.meta["pair"]) for r in ds.images[:2]] == [("OL", "s1"), ("SD", "s1")]
    assert (
        _record(ds, "s2_OL.png").annotations == []
        and "image_labels" not in _record(ds, "s2_OL.png").meta
    )
    assert _record(ds, "s3_SD.png").meta["image_labels"] == ["dart"]
    rows, bboxes = _yolo_and_coco(ds, tmp_path / "out", "s1_SD.png")
    assert rows[0][1:] == pytest.approx([0.1, 0.3, 0.1, 0.4])
    assert bboxes == [[5, 5, 10, 20]]


# --- registry -------------------------------------------------------------------------


def test_registry_errors(tmp_path: Path) -> None:
    assert {
        "opixray",
        "hixray",
        "sixray",
        "eds",
        "pidray",
        "clcxray",
        "gdxray",
        "pixray",
        "dvxray",
        "aihub",
        "coco",
        "yolo",
    } <= set(READERS)
    with pytest.raises(ValueError, match="already registered"):
        register_reader("coco")(lambda path, *, class_map=None: None)
    with pytest.raises(
        ConfigError, match=r"unknown dataset format 'voc2'; known formats: aihub, clcxray"
    ):
        load_dataset(tmp_path, fmt="voc2")
    with pytest.raises(NotFoundError, match="nowhere: dataset path does not exist"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        DataFormatError, match="cannot tell the dataset format; pass it with --format"
    ):
        load_dataset(tmp_path / "empty")
    root = _opixray(tmp_path / "OPIXray")
    with pytest.raises(ConfigError, match="takes no option 'columns'"):
        load_dataset(root, fmt="opixray", columns="x1y1x2y2")
