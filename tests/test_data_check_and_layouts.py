"""``data check`` reports every unknown class and malformed line; COCO's own layout
converts; the YOLO ``data.yaml`` always has the ``train:`` and ``val:`` ultralytics
requires, and a test-only source converts to a folder for evaluation only.

Fixtures are the public datasets' real layouts, built tiny: OPIXray's
``train/train_annotation`` + ``train/train_image`` and ``test/test_knife-N.txt``,
COCO 2017's ``annotations/instances_train2017.json`` + ``train2017/``, PIDray's
``annotations/xray_*.json``, SIXray's VOC XML, GDXray's ``ground_truth.txt``. Every
image is 100 x 50 and has its own pixels, so no duplicate-image finding gets in
the way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from cv.cli import main
from cv.datasets.classmap import UnknownClassError
from cv.datasets.formats import load_dataset, read_yolo, summarize, write_yolo
from cv.errors import ConfigError, DataFormatError, NotFoundError
from cv.image import write_image
from cv.records import Dataset, ImageRecord

W, H = 100, 50


def _img(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    return write_image(path, rng.integers(0, 256, (H, W, 3), dtype=np.uint8))


def _cli(*args: object) -> int:
    return main([str(a) for a in args])


def _record(ds: Dataset, file: str) -> ImageRecord:
    return next(r for r in ds.images if r.file == file)


# --- 1. data check: unknown classes and malformed lines are reported, every one ------


def _opixray(root: Path) -> Path:
    """OPIXray's own layout with two unknown classes (Gun, Hammer) and two bad lines."""
    for i, split in enumerate(("train", "train", "test", "test", "train"), start=1):
        _img(root / f"{split}/{split}_image/{i:06d}.jpg", seed=i)
    ann = {"train": root / "train/train_annotation", "test": root / "test/test_annotation"}
    for folder in ann.values():
        folder.mkdir(parents=True)
    (ann["train"] / "000001.txt").write_text("000001.jpg Straight_Knife 11 21 30 40\n")
    # A known class on line 1 is kept; the unknown one on line 2 is reported.
    (ann["train"] / "000002.txt").write_text(
        "000002.jpg Scissor 1 1 10 10\n000002.jpg Gun 5 5 20 20\n"
    )
    (ann["test"] / "000003.txt").write_text("000003.jpg Folding_Knife 50 10 60 20\n")
    (ann["test"] / "000004.txt").write_text("000004.jpg Hammer 5 5 20 20\n")
    # Line 1: five fields; line 2: a corner that is not a number; line 3 is sound.
    (ann["train"] / "000005.txt").write_text(
        "000005.jpg Scissor 1 1 10\n"
        "000005.jpg Scissor 1 x 10 10\n"
        "000005.jpg Utility_Knife 2 2 12 12\n"
    )
    (root / "test/test_knife-2.txt").write_text("000003\n")
    return root


def _findings(report_json: Path) -> list[tuple[str, str, str]]:
    data = json.loads(report_json.read_text())
    return [(f["code"], f["file"], f["message"]) for f in data["findings"]]


def test_check_reports_every_unknown_class_and_malformed_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _opixray(tmp_path / "OPIXray")
    assert _cli("data", "check", root, "--workers", "1") == 4
    report = root / "check" / "report.json"
    assert report.is_file()
    assert _findings(report) == [
        (
            "unknown_class_in_source",
            "test/test_image/000004.jpg",
            "test/test_annotation/000004.txt:1: class: unknown class 'Hammer'",
        ),
        (
            "unknown_class_in_source",
            "train/train_image/000002.jpg",
            "train/train_annotation/000002.txt:2: class: unknown class 'Gun'",
        ),
        (
            "malformed_in_source",
            "train/train_image/000005.jpg",
            "train/train_annotation/000005.txt:1: y2: expected 6 whitespace-separated "
            "fields 'name class x1 y1 x2 y2', got 5",
        ),
        (
            "malformed_in_source",
            "train/train_image/000005.jpg",
            "train/train_annotation/000005.txt:2: y1: expected a number, got 'x'",
        ),
    ]
    data = json.loads(report.read_text())
    assert data["counts"] == {"unknown_class_in_source": 2, "malformed_in_source": 2}
    # The sound lines of those files are read (Scissor, Utility_Knife): 4 boxes in all.
    assert data["annotations"] == 4
    md = (root / "check" / "report.md").read_text()
    assert "unknown class 'Gun'" in md and "unknown class 'Hammer'" in md
    assert "| `unknown_class_in_source` | error | 2 |" in md
    err = capsys.readouterr().err
    assert "Gun x1, Hammer x1" in err and "--class-map FILE" in err


def test_check_with_a_class_map_of_the_users(tmp_path: Path) -> None:
    root = _opixray(tmp_path / "OPIXray")
    (root / "train/train_annotation/000005.txt").write_text("000005.jpg Scissor 1 1 10 10\n")
    cmap = tmp_path / "mine.yaml"
    cmap.write_text(
        "map:\n  Folding_Knife: knife\n  Straight_Knife: knife\n  Scissor: scissors\n"
        "  Gun: gun\n  Hammer: hammer\n"
    )
    out = tmp_path / "report"
    assert _cli("data", "check", root, "--class-map", cmap, "--report", out) == 0
    data = json.loads((out / "report.json").read_text())
    assert data["findings"] == [] and data["annotations"] == 6
    assert data["classes"] == ["gun", "knife", "scissors", "hammer"]


def test_strict_check_convert_and_the_reader_still_fail_fast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _opixray(tmp_path / "OPIXray")
    where = r"test/test_annotation/000004\.txt:1: class: unknown class 'Hammer'"
    assert _cli("data", "check", root, "--strict") == 4
    assert "000004.txt:1: class: unknown class 'Hammer'" in capsys.readouterr().err
    assert _cli("data", "convert", root, "--out", tmp_path / "out") == 4
    assert "000004.txt:1: class: unknown class 'Hammer'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with pytest.raises(UnknownClassError, match=where) as caught:
        load_dataset(root)
    assert caught.value.name == "Hammer" and caught.value.exit_code == 4
    (root / "test/test_annotation/000004.txt").write_text("000004.jpg Scissor 5 5 20\n")
    with pytest.raises(DataFormatError, match=r"000004\.txt:1: y2: expected 6"):
        load_dataset(root)


def test_recorded_traces_and_summary(tmp_path: Path) -> None:
    root = _opixray(tmp_path / "OPIXray")
    ds = load_dataset(root, problems="record")
    rec = _record(ds, "train/train_image/000002.jpg")
    assert [a.original_name for a in rec.annotations] == ["Scissor"]
    assert rec.meta["unknown"] == [
        {
            "name": "Gun",
            "path": str(root / "train/train_annotation/000002.txt"),
            "line": 2,
            "field": "class",
        }
    ]
    bad = _record(ds, "train/train_image/000005.jpg")
    assert [(m["line"], m["field"]) for m in bad.meta["malformed"]] == [(1, "y2"), (2, "y1")]
    # The occlusion list still applies to the records that were read.
    assert _record(ds, "test/test_image/000003.jpg").subset == "OL2"
    stats = summarize(ds)
    assert (dict(stats.unknown), stats.malformed) == ({"Gun": 1, "Hammer": 1}, 2)


def _coco_doc(images: list[dict[str, Any]], anns: list[dict[str, Any]], cats: list[str]) -> str:
    return json.dumps(
        {
            "images": images,
            "annotations": [{"id": i + 1, "iscrowd": 0, **a} for i, a in enumerate(anns)],
            "categories": [{"id": i + 1, "name": c} for i, c in enumerate(cats)],
        }
    )


def test_pidray_records_unknown_categories_and_bad_boxes_per_image(tmp_path: Path) -> None:
    root = tmp_path / "pidray"
    _img(root / "train/t1.png", 1)
    _img(root / "train/t2.png", 2)
    (root / "annotations").mkdir(parents=True)
    (root / "annotations/xray_train.json").write_text(
        _coco_doc(
            [
                {"id": 1, "file_name": "t1.png", "width": W, "height": H},
                {"id": 2, "file_name": "t2.png", "width": W, "height": H},
            ],
            [
                {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                {"image_id": 1, "category_id": 2, "bbox": [1, 2, 3, 4]},
                {"image_id": 2, "category_id": 1, "bbox": [1, 2, 3]},
                {"image_id": 2, "category_id": 9, "bbox": [1, 2, 3, 4]},
            ],
            ["Baton", "Crowbar"],
        )
    )
    with pytest.raises(UnknownClassError, match=r"categories\[1\]\.name: unknown class 'Crowbar'"):
        load_dataset(root)
    ds = load_dataset(root, problems="record")
    t1, t2 = _record(ds, "train/t1.png"), _record(ds, "train/t2.png")
    assert [a.category for a in t1.annotations] == ["baton"]
    assert [(u["name"], u["field"]) for u in t1.meta["unknown"]] == [("Crowbar", "annotations[1]")]
    assert t2.annotations == []
    assert [(m["field"], m["reason"][:22]) for m in t2.meta["malformed"]] == [
        ("annotations[2].bbox", "bbox must be a list of"),
        ("annotations[3].category_id", "category_id 9 is not a"),
    ]


def test_sixray_gdxray_yolo_record_their_problems(tmp_path: Path) -> None:
    six = tmp_path / "SIXray"
    _img(six / "P00001.jpg", 1)
    (six / "P00001.xml").write_text(
        "<annotation><object><name>Gun</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
        "<xmax>10</xmax><ymax>10</ymax></bndbox></object>"
        "<object><name>Bazooka</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
        "<xmax>10</xmax><ymax>10</ymax></bndbox></object>"
        "<object><name>Knife</name><bndbox><xmin>1</xmin></bndbox></object></annotation>"
    )
    ds = load_dataset(six, fmt="sixray", problems="record")
    rec = ds.images[0]
    assert [a.category for a in rec.annotations] == ["gun"]
    assert [(u["name"], u["field"]) for u in rec.meta["unknown"]] == [("Bazooka", "object[1]")]
    assert [m["field"] for m in rec.meta["malformed"]] == ["object[2].bndbox.ymin"]

    gdx = tmp_path / "Baggage"
    _img(gdx / "B0046/B0046_0001.png", 2)
    (gdx / "B0046/ground_truth.txt").write_text("1 11 20 21 40\n1 11 20 x 40\n1 1 2 3 4 Rifle\n")
    ds = load_dataset(gdx, problems="record")
    rec = ds.images[0]
    assert len(rec.annotations) == 1
    assert [(m["line"], m["field"]) for m in rec.meta["malformed"]] == [(2, "y1")]
    assert [(u["name"], u["line"]) for u in rec.meta["unknown"]] == [("Rifle", 3)]

    yolo = tmp_path / "yolo"
    _img(yolo / "images/train/a.png", 3)
    (yolo / "labels/train").mkdir(parents=True)
    (yolo / "labels/train/a.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2\n0 0.5 0.5\n")
    (yolo / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [gun, Rifle]\n")
    with pytest.raises(UnknownClassError, match=r"a\.txt:2: class: unknown class 'Rifle'"):
        load_dataset(yolo)
    rec = load_dataset(yolo, problems="record").images[0]
    assert [a.category for a in rec.annotations] == ["gun"]
    assert [(u["name"], u["line"]) for u in rec.meta["unknown"]] == [("Rifle", 2)]
    assert [(m["line"], m["field"]) for m in rec.meta["malformed"]] == [(3, "columns")]


def test_pixray_and_dvxray_record_their_problems(tmp_path: Path) -> None:
    pix = tmp_path / "PIXray"
    _img(pix / "a.png", 1)
    objects = [
        {"label": "Gun", "polygon": [[1, 1], [10, 1], [10, 10]]},
        {"label": "Catapult", "bbox": [1, 1, 5, 5]},
        {"label": "Knife", "polygon": [[1, 1]]},
    ]
    (pix / "a.json").write_text(json.dumps({"objects": objects}))
    with pytest.raises(UnknownClassError, match=r"a\.json: objects\[1\]: unknown class"):
        load_dataset(pix, fmt="pixray")
    rec = load_dataset(pix, fmt="pixray", problems="record").images[0]
    assert [a.category for a in rec.annotations] == ["gun"]
    assert [u["name"] for u in rec.meta["unknown"]] == ["Catapult"]
    assert [m["field"] for m in rec.meta["malformed"]] == ["objects[2].polygon"]

    dv = tmp_path / "DvXray"
    _img(dv / "s1_OL.png", 2)
    _img(dv / "s1_SD.png", 3)
    (dv / "s1.json").write_text('{"objects": [')
    with pytest.raises(DataFormatError, match=r"s1\.json:1: not valid JSON"):
        load_dataset(dv, fmt="dvxray")
    ds = load_dataset(dv, fmt="dvxray", problems="record")
    # The scan's one bad file leaves both views unlabelled: both are reported.
    assert [(r.view, len(r.meta["malformed"])) for r in ds.images] == [("OL", 1), ("SD", 1)]


# --- 2. COCO's own layout, and --image-root --------------------------------------------


def _coco2017(root: Path) -> Path:
    """``annotations/instances_{train,val}2017.json`` beside ``train2017/`` and ``val2017/``."""
    _img(root / "train2017/000000000009.jpg", 1)
    _img(root / "train2017/000000000025.jpg", 2)
    _img(root / "val2017/000000000139.jpg", 3)
    (root / "annotations").mkdir(parents=True)
    images = [
        {"id": 9, "file_name": "000000000009.jpg", "width": W, "height": H},
        {"id": 25, "file_name": "000000000025.jpg", "width": W, "height": H},
    ]
    anns = [{"image_id": 9, "category_id": 2, "bbox": [10, 5, 20, 15]}]
    (root / "annotations/instances_train2017.json").write_text(
        _coco_doc(images, anns, ["gun", "knife"])
    )
    (root / "annotations/instances_val2017.json").write_text(
        _coco_doc(
            [{"id": 139, "file_name": "000000000139.jpg", "width": W, "height": H}],
            [{"image_id": 139, "category_id": 1, "bbox": [0, 0, 50, 25]}],
            ["gun", "knife"],
        )
    )
    return root


def test_coco_2017_layout_reads_from_the_folder_and_from_a_file(tmp_path: Path) -> None:
    root = _coco2017(tmp_path / "coco")
    ds = load_dataset(root)
    assert sorted((r.file, r.split) for r in ds.images) == [
        ("train2017/000000000009.jpg", "train"),
        ("train2017/000000000025.jpg", "train"),
        ("val2017/000000000139.jpg", "val"),
    ]
    assert all(ds.image_path(r).is_file() for r in ds.images)
    one = load_dataset(root / "annotations/instances_train2017.json")
    assert [r.file for r in one.images] == [
        "train2017/000000000009.jpg",
        "train2017/000000000025.jpg",
    ]
    assert one.root == root
    assert [(a.category, a.box) for a in one.images[0].annotations] == [
        ("knife", (10.0, 5.0, 30.0, 20.0))
    ]


def test_coco_2017_layout_converts_and_checks(tmp_path: Path) -> None:
    root = _coco2017(tmp_path / "coco")
    out = tmp_path / "out"
    ann = root / "annotations/instances_train2017.json"
    assert _cli("data", "convert", ann, "--out", out, "--images", "copy") == 0
    # knife (10, 5, 30, 20) in 100 x 50: cx .2, cy .25, w .2, h .3; classes keep the file's order.
    row = [float(v) for v in (out / "labels/train/000000000009.txt").read_text().split()]
    assert row == pytest.approx([1, 0.2, 0.25, 0.2, 0.3])
    assert (out / "images/train/000000000025.jpg").is_file()
    report = tmp_path / "report"
    assert _cli("data", "check", root, "--report", report, "--workers", "1") == 0
    assert json.loads((report / "report.json").read_text())["findings"] == []


def test_images_nowhere_to_be_guessed_name_where_the_reader_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _coco2017(tmp_path / "coco")
    pics = tmp_path / "elsewhere" / "pics"
    pics.parent.mkdir()
    (root / "train2017").rename(pics)
    ann = root / "annotations/instances_train2017.json"
    with pytest.raises(NotFoundError) as caught:
        load_dataset(ann, missing_images="raise")
    message = str(caught.value)
    for place in (root / "annotations", root / "train2017", root):
        assert f"{place}," in message or f"{place};" in message
    assert "'000000000009.jpg'" in message and "--image-root DIR" in message
    # By default the records are kept: ground truth for precomputed predictions
    # needs no pixels.
    assert len(load_dataset(ann).images) == 2

    assert _cli("data", "convert", ann, "--out", tmp_path / "out") == 5
    assert "found none of the images this file lists" in capsys.readouterr().err
    assert _cli("data", "check", root, "--report", tmp_path / "r0") == 5
    assert "name the image folder with --image-root DIR" in capsys.readouterr().err
    assert _cli("data", "convert", ann, "--out", tmp_path / "out", "--image-root", pics) == 0
    assert (tmp_path / "out/labels/train/000000000009.txt").is_file()
    report = tmp_path / "report"
    args = ("data", "check", ann, "--image-root", pics, "--report", report, "--workers", "1")
    assert _cli(*args) == 0
    # --image-root is for the COCO-based readers only.
    opx = _opixray(tmp_path / "OPIXray")
    assert _cli("data", "check", opx, "--image-root", pics) == 2
    assert "--image-root applies to aihub, clcxray, coco, pidray" in capsys.readouterr().err


def test_a_malformed_file_says_so_before_its_images_are_missed(tmp_path: Path) -> None:
    bad = tmp_path / "annotations" / "instances_train2017.json"
    bad.parent.mkdir()
    bad.write_text(
        _coco_doc(
            [{"id": 1, "file_name": "a.png", "width": W, "height": H}],
            [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}],
            ["gun"],
        )
    )
    with pytest.raises(DataFormatError, match=r"annotations\[0\]\.bbox: bbox must be"):
        load_dataset(bad)


# --- 3. data.yaml always has train: and val: ---------------------------------------------


def _two_split_dataset(root: Path, splits: tuple[str | None, ...]) -> Dataset:
    recs = [
        ImageRecord(
            str(_img(root / f"src/{i}.png", i).relative_to(root)),
            W,
            H,
            split=split,  # type: ignore[arg-type]
        )
        for i, split in enumerate(splits)
    ]
    return Dataset("t", recs, root=root, classes=["gun"])


@pytest.mark.parametrize(
    ("splits", "val", "commented"),
    [
        (("train", "test", "test"), "images/test", True),
        (("train", None), "images/train", True),
        (("train", "val", "test"), "images/val", False),
    ],
)
def test_data_yaml_val(
    tmp_path: Path, splits: tuple[str | None, ...], val: str, commented: bool
) -> None:
    ds = _two_split_dataset(tmp_path, splits)
    text = write_yolo(ds, tmp_path / "yolo").read_text()
    assert yaml.safe_load(text)["val"] == val
    lines = text.splitlines()
    before_val = lines[lines.index(f"val: {val}") - 1]
    assert before_val.startswith("# The source has no val split") is commented
    # Read back, every image keeps its own split.
    back = read_yolo(tmp_path / "yolo")
    assert sorted(r.split for r in back.images) == sorted(s or "train" for s in splits)


def test_opixray_converts_to_a_data_yaml_ultralytics_accepts(tmp_path: Path) -> None:
    root = _opixray(tmp_path / "OPIXray")
    (root / "train/train_annotation/000002.txt").write_text("000002.jpg Scissor 1 1 10 10\n")
    (root / "test/test_annotation/000004.txt").write_text("000004.jpg Scissor 5 5 20 20\n")
    (root / "train/train_annotation/000005.txt").write_text("000005.jpg Scissor 1 1 10 10\n")
    out = tmp_path / "out"
    assert _cli("data", "convert", root, "--out", out) == 0
    data_yaml = out / "data.yaml"
    doc = yaml.safe_load(data_yaml.read_text())
    assert (doc["train"], doc["val"], doc["test"]) == ("images/train", "images/test", "images/test")
    back = read_yolo(data_yaml)
    assert sorted(r.split for r in back.images) == ["test", "test", "train", "train", "train"]

    checked = _ultralytics_check(data_yaml)
    assert checked["val"] == str((out / "images/test").resolve())
    assert checked["names"] == {0: "knife", 1: "scissors"}
    # The same file without the val line, as this toolkit used to write it, is refused.
    old = out / "old.yaml"
    old.write_text("".join(x for x in data_yaml.read_text().splitlines(True) if "val" not in x))
    with pytest.raises(SyntaxError, match="'val:' key missing"):
        _ultralytics_check(old)


def test_a_test_only_source_converts_for_evaluation_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cv.predictions import ImagePredictions, Predictions, write_predictions
    from cv.records import Detection
    from cv.training.config import XrayTrainConfig
    from cv.training.xray import resolve_data

    root = tmp_path / "OPIXray"
    (root / "test/test_annotation").mkdir(parents=True)
    for i in (1, 2):
        _img(root / f"test/test_image/{i:06d}.jpg", seed=i)
        (root / f"test/test_annotation/{i:06d}.txt").write_text(
            f"{i:06d}.jpg Scissor 11 21 30 40\n"
        )
    out = tmp_path / "out"
    assert _cli("data", "convert", root, "--out", out) == 0
    err = capsys.readouterr().err
    assert "the source has no train split" in err and "evaluation only" in err
    data_yaml = out / "data.yaml"
    text = data_yaml.read_text()
    doc = yaml.safe_load(text)
    assert (doc["train"], doc["val"], doc["test"]) == (None, "images/test", "images/test")
    lines = text.splitlines()
    assert lines[lines.index("train: null") - 1].startswith(
        "# The source has no train split: this folder is for evaluation only"
    )
    # ultralytics validates on it (it refuses a file without the train key) ...
    assert _ultralytics_check(data_yaml)["val"] == str((out / "images/test").resolve())
    old = out / "old.yaml"
    old.write_text("".join(x for x in text.splitlines(True) if "train" not in x))
    with pytest.raises(SyntaxError, match="'train:' key missing"):
        _ultralytics_check(old)
    # ... train xray refuses it, naming why ...
    with pytest.raises(ConfigError, match="the dataset has no train split"):
        resolve_data(XrayTrainConfig(data=data_yaml), tmp_path / "run")
    # The folder itself is read as COCO and converted into the run; the error still
    # names the user's folder, not the run's copy.
    with pytest.raises(ConfigError, match="the dataset has no train split") as refused:
        resolve_data(XrayTrainConfig(data=out), tmp_path / "run2")
    assert refused.value.path == str(out) or Path(str(refused.value.path)) == out
    # ... and eval xray evaluates it, from its COCO files or from data.yaml.
    assert [r.split for r in read_yolo(data_yaml).images] == ["test", "test"]
    box = Detection((10.0, 20.0, 30.0, 40.0), "scissors", 1, 0.9)
    preds = Predictions(
        ["knife", "scissors"],
        [ImagePredictions(f"images/test/{i:06d}.jpg", W, H, [box]) for i in (1, 2)],
    )
    pred_path = write_predictions(preds, tmp_path / "predictions.json")
    for data in (out, data_yaml):
        report = tmp_path / "eval" / data.name
        args = ("eval", "xray", "--data", data, "--predictions", pred_path, "--out", report)
        assert _cli(*args) == 0
        assert json.loads((report / "metrics.json").read_text())["coco"]["n_images"] == 2


def _ultralytics_check(data_yaml: Path) -> dict[str, Any]:
    """ultralytics' own ``check_det_dataset``, made sure not to reach the network."""
    from cv.models.ultra import ultralytics

    ultralytics()  # offline environment first
    import ultralytics.data.utils as data_utils
    import ultralytics.utils.downloads as downloads

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"ultralytics tried the network: {args} {kwargs}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(downloads, "safe_download", no_network)
        mp.setattr(downloads, "is_url", no_network)
        mp.setattr(data_utils, "safe_download", no_network)
        # It looks for a font for its plots at the end, downloading it when missing.
        mp.setattr(data_utils, "check_font", lambda *a, **k: None)
        return data_utils.check_det_dataset(str(data_yaml), autodownload=False)
