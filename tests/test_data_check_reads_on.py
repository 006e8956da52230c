"""``data check`` reports what used to stop it, and checks the rest.

A GDXray row naming an image that does not exist, a COCO annotation whose
``image_id`` names no image, a COCO file that is not JSON, an annotation file
without an image (OPIXray, EDS, PIXray, SIXray), a SIXray positive image
without its XML and an image with a truncated header are each one finding
naming the file (and line or field), and the sound part of the dataset is still
read and checked. Conversion, ``--strict`` and the readers' defaults still stop
at the first. Every fixture is a public dataset's own layout, built tiny; every
image is 100 x 50 with its own pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cv.cli import main
from cv.datasets.formats import load_dataset
from cv.errors import DataFormatError, DataValidationError, ImageReadError, NotFoundError
from cv.image import write_image

W, H = 100, 50


def _img(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    return write_image(path, rng.integers(0, 256, (H, W, 3), dtype=np.uint8))


def _truncate(path: Path) -> Path:
    """Cuts an image file inside its header."""
    path.write_bytes(path.read_bytes()[:20])
    return path


def _cli(*args: object) -> int:
    return main([str(a) for a in args])


def _check(path: Path, report: Path, *args: object) -> tuple[int, dict]:
    code = _cli("data", "check", path, "--report", report, "--workers", "1", *args)
    return code, json.loads((report / "report.json").read_text())


def _findings(data: dict) -> list[tuple[str, int | None, str, str]]:
    return [(f["code"], f["image_index"], f["file"], f["message"]) for f in data["findings"]]


def _coco(images: list[dict], anns: list[dict]) -> str:
    return json.dumps(
        {
            "images": images,
            "annotations": [{"id": i + 1, "iscrowd": 0, **a} for i, a in enumerate(anns)],
            "categories": [{"id": 1, "name": "gun"}],
        }
    )


def test_gdxray_rows_without_an_image_are_reported(tmp_path: Path) -> None:
    gdx = tmp_path / "Baggage"
    _img(gdx / "B0046/B0046_0001.png", 1)
    _img(gdx / "B0046/B0046_0002.png", 2)
    # Line 2 names image 7, which the series does not have; line 3's number is no number.
    (gdx / "B0046/ground_truth.txt").write_text(
        "1 11 20 21 40\n7 1 2 3 4\nx 1 2 3 4\n2 11 20 21 40 Rifle\n"
    )
    code, data = _check(gdx, tmp_path / "r")
    assert code == 4
    assert _findings(data) == [
        (
            "orphan_in_source",
            None,
            "B0046/ground_truth.txt",
            "B0046/ground_truth.txt:2: k: no image B0046_0007.png for this row",
        ),
        (
            "orphan_in_source",
            None,
            "B0046/ground_truth.txt",
            "B0046/ground_truth.txt:3: k: expected a number, got 'x'",
        ),
        (
            "unknown_class_in_source",
            1,
            "B0046/B0046_0002.png",
            "B0046/ground_truth.txt:4: class: unknown class 'Rifle'",
        ),
    ]
    assert (data["images"], data["annotations"]) == (2, 1)
    md = (tmp_path / "r/report.md").read_text()
    assert "|  | `B0046/ground_truth.txt` |  | error | `orphan_in_source` |" in md

    # --fix-out keeps the sound image; the orphan rows are already out of the dataset.
    fixed = tmp_path / "fixed.json"
    assert _cli("data", "check", gdx, "--report", tmp_path / "r2", "--fix-out", fixed) == 4
    images = json.loads(fixed.read_text())["images"]
    assert [im["file_name"] for im in images] == ["Baggage/B0046/B0046_0001.png"]

    # Conversion, --strict and the reader's default still stop at the first.
    assert _cli("data", "convert", gdx, "--out", tmp_path / "out") == 5
    assert _cli("data", "check", gdx, "--strict", "--report", tmp_path / "r3") == 5
    with pytest.raises(NotFoundError, match=r"ground_truth\.txt:2: k: no image"):
        load_dataset(gdx)
    with pytest.raises(NotFoundError, match=r"ground_truth\.txt:2: k: no image"):
        load_dataset(gdx, problems="record")  # no list to record it in


def test_coco_orphan_annotations_and_a_broken_file_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "coco"
    _img(root / "a.png", 1)
    _img(root / "b.png", 2)
    (root / "annotations").mkdir(parents=True)
    (root / "annotations/instances_train.json").write_text(
        _coco(
            [
                {"id": 1, "file_name": "../a.png", "width": W, "height": H},
                {"id": 2, "file_name": "../b.png", "width": W, "height": H},
            ],
            [
                {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                {"image_id": 5, "category_id": 1, "bbox": [1, 2, 3, 4]},
                {"category_id": 1, "bbox": [1, 2, 3, 4]},
                {"image_id": 2, "category_id": 1, "bbox": [5, 5, 10, 10]},
            ],
        )
    )
    (root / "annotations/instances_test.json").write_text('{"images": [\n  {"id": 1,\n')
    code, data = _check(root / "annotations", tmp_path / "r", "--format", "coco")
    assert code == 4
    assert _findings(data) == [
        (
            "orphan_in_source",
            None,
            "annotations/instances_test.json",
            "annotations/instances_test.json:3: not valid JSON (Expecting property name "
            "enclosed in double quotes)",
        ),
        (
            "orphan_in_source",
            None,
            "annotations/instances_train.json",
            "annotations/instances_train.json: annotations[1].image_id: image_id 5 is not "
            "among the images",
        ),
        (
            "orphan_in_source",
            None,
            "annotations/instances_train.json",
            "annotations/instances_train.json: annotations[2].image_id: missing 'image_id'",
        ),
    ]
    # The sound file's images and annotations are all checked.
    assert (data["images"], data["annotations"]) == (2, 2)

    with pytest.raises(DataFormatError, match=r"instances_test\.json:3: not valid JSON"):
        load_dataset(root / "annotations", fmt="coco")
    one = root / "annotations/instances_train.json"
    with pytest.raises(DataFormatError, match=r"annotations\[1\]\.image_id: image_id 5"):
        load_dataset(one, problems="record")


def test_sixray_positive_without_boxes_and_xml_without_image(tmp_path: Path) -> None:
    six = tmp_path / "SIXray"
    _img(six / "P00001.jpg", 1)
    _img(six / "P00002.jpg", 2)
    (six / "P00002.xml").write_text(
        "<annotation><object><name>Gun</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
        "<xmax>10</xmax><ymax>10</ymax></bndbox></object></annotation>"
    )
    (six / "P00009.xml").write_text("<annotation></annotation>")
    (six / "labels.csv").write_text("name,Gun,Knife\nP00001,1,1\nP00002,1,0\n")
    code, data = _check(six, tmp_path / "r", "--format", "sixray")
    assert code == 4
    assert _findings(data) == [
        (
            "orphan_in_source",
            None,
            "P00009.xml",
            "P00009.xml: no image P00009.* for this annotation file",
        ),
        (
            "boxes_missing_in_source",
            0,
            "P00001.jpg",
            "labels.csv:2: name: image P00001 is positive (Gun, Knife) in the image-level "
            "labels but has no XML file of boxes",
        ),
    ]
    assert data["annotations"] == 1
    with pytest.raises(NotFoundError, match=r"P00009\.xml: no image"):
        load_dataset(six, fmt="sixray")
    (six / "P00009.xml").unlink()
    with pytest.raises(DataValidationError, match=r"labels\.csv:2: name: image P00001"):
        load_dataset(six, fmt="sixray")


def test_truncated_image_headers_are_reported_and_their_annotations_read(
    tmp_path: Path,
) -> None:
    opx = tmp_path / "OPIXray"
    (opx / "train/train_annotation").mkdir(parents=True)
    _img(opx / "train/train_image/000001.jpg", 1)
    (opx / "train/train_annotation/000001.txt").write_text("000001.jpg Scissor 11 21 30 40\n")
    _truncate(_img(opx / "train/train_image/000002.jpg", 2))
    (opx / "train/train_annotation/000002.txt").write_text(
        "000002.jpg Scissor 11 21 30 40\n000002.jpg Gun 1 1 5 5\n"
    )
    code, data = _check(opx, tmp_path / "r", "--format", "opixray")
    assert code == 4
    # One finding for the image (no invalid size, no invalid boxes for want of a
    # size), and its annotation file is still read: its unknown class is reported.
    assert [(c, i, f) for c, i, f, _ in _findings(data)] == [
        ("unreadable_image", 1, "train/train_image/000002.jpg"),
        ("unknown_class_in_source", 1, "train/train_image/000002.jpg"),
    ]
    assert data["annotations"] == 1
    ds = load_dataset(opx, fmt="opixray", problems="record")
    rec = ds.images[1]
    assert (rec.width, rec.height, rec.annotations) == (0, 0, [])
    assert rec.meta["unreadable"][0].startswith("unreadable image header")
    with pytest.raises(ImageReadError, match=r"000002\.jpg: unreadable image header"):
        load_dataset(opx, fmt="opixray")

    # COCO without sizes reads them from the headers.
    root = tmp_path / "coco"
    _img(root / "a.png", 1)
    _truncate(_img(root / "b.png", 2))
    (root / "train.json").write_text(
        _coco(
            [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}],
            [{"image_id": 2, "category_id": 1, "bbox": [1, 2, 3, 4]}],
        )
    )
    code, data = _check(root / "train.json", tmp_path / "r2")
    assert code == 4
    assert [(c, f) for c, _, f, _ in _findings(data)] == [("unreadable_image", "b.png")]


def test_annotation_files_without_an_image_in_other_layouts(tmp_path: Path) -> None:
    opx = tmp_path / "OPIXray"
    _img(opx / "test/test_image/000001.jpg", 1)
    (opx / "test/test_annotation").mkdir(parents=True)
    (opx / "test/test_annotation/000001.txt").write_text("000001.jpg Scissor 11 21 30 40\n")
    (opx / "test/test_annotation/000002.txt").write_text("000002.jpg Scissor 11 21 30 40\n")

    eds = tmp_path / "EDS"
    _img(eds / "images/1.jpg", 2)
    (eds / "labels").mkdir(parents=True)
    for stem in ("1", "2"):
        (eds / f"labels/{stem}.xml").write_text(
            "<annotation><object><name>knife</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
            "<xmax>10</xmax><ymax>10</ymax></bndbox></object></annotation>"
        )

    pix = tmp_path / "PIXray"
    _img(pix / "a.png", 3)
    for stem in ("a", "b"):
        (pix / f"{stem}.json").write_text('{"objects": [{"label": "Gun", "bbox": [1, 1, 5, 5]}]}')

    for path, fmt, orphan in (
        (opx, "opixray", "test/test_annotation/000002.txt"),
        (eds, "eds", "labels/2.xml"),
        (pix, "pixray", "b.json"),
    ):
        code, data = _check(path, tmp_path / f"r-{fmt}", "--format", fmt)
        assert code == 4, fmt
        assert [(c, f) for c, _, f, _ in _findings(data)] == [("orphan_in_source", orphan)]
        assert (data["images"], data["annotations"]) == (1, 1), fmt
        with pytest.raises(NotFoundError, match="no image"):
            load_dataset(path, fmt=fmt)

    # A DvXray scan whose side view is missing: that view is reported missing.
    dv = tmp_path / "DvXray"
    _img(dv / "s1_OL.png", 4)
    (dv / "s1.json").write_text('{"objects": [{"label": "Gun"}]}')
    code, data = _check(dv, tmp_path / "r-dv", "--format", "dvxray")
    assert [(c, f) for c, _, f, _ in _findings(data)] == [("missing_image", "s1_SD.png")]
    with pytest.raises(NotFoundError, match="the SD view of scan s1 is missing"):
        load_dataset(dv, fmt="dvxray")


def test_coco_bad_image_entries_are_left_out_one_by_one(tmp_path: Path) -> None:
    root = tmp_path / "coco"
    names = ["a", "b", "c", "d", "e", "f", "g"]
    for seed, stem in enumerate(names):
        _img(root / f"{stem}.png", seed)
    images = [
        {"id": k + 1, "file_name": f"{s}.png", "width": W, "height": H} for k, s in enumerate(names)
    ]
    images[1]["width"] = 0
    images[2]["height"] = str(H)
    images[3]["split"] = "training"
    images[5]["id"] = 5  # f.png takes e.png's id
    anns = [{"image_id": iid, "category_id": 1, "bbox": [1, 2, 3, 4]} for iid in (1, 2, 3, 4, 5, 7)]
    (root / "train.json").write_text(_coco(images, anns))
    fixed = tmp_path / "fixed.json"
    code, data = _check(root / "train.json", tmp_path / "r", "--fix-out", fixed)
    assert code == 4
    # Every bad entry is reported, the annotations of a left-out entry name it,
    # and the sound entries are read and checked.
    assert _findings(data) == [
        (
            "orphan_in_source",
            None,
            "train.json",
            "train.json: images[1].width: width and height must be positive integers, got 0 x 50",
        ),
        (
            "orphan_in_source",
            None,
            "train.json",
            "train.json: images[2].width: width and height must be positive integers, "
            "got 100 x '50'",
        ),
        (
            "orphan_in_source",
            None,
            "train.json",
            "train.json: images[3].split: split 'training' is not one of train, val, test",
        ),
        (
            "orphan_in_source",
            None,
            "train.json",
            "train.json: images[5].id: image id 5 appears twice",
        ),
        (
            "orphan_in_source",
            None,
            "train.json",
            "train.json: annotations[1].image_id: image_id 2 names images[1] ('b.png'), "
            "which is left out for its own fault",
        ),
        (
            "orphan_in_source",
            None,
            "train.json",
            "train.json: annotations[2].image_id: image_id 3 names images[2] ('c.png'), "
            "which is left out for its own fault",
        ),
        (
            "orphan_in_source",
            None,
            "train.json",
            "train.json: annotations[3].image_id: image_id 4 names images[3] ('d.png'), "
            "which is left out for its own fault",
        ),
        # Which of the two images id 5's annotations belong to is unknown: the kept one is an error.
        (
            "malformed_in_source",
            1,
            "e.png",
            "train.json: images[4].id: image id 5 appears twice (again in images[5], left out): "
            "its annotations may belong to either image",
        ),
    ]
    assert (data["images"], data["annotations"]) == (3, 3)
    fixed_doc = json.loads(fixed.read_text())
    assert [im["file_name"] for im in fixed_doc["images"]] == ["coco/a.png", "coco/g.png"]
    assert len(fixed_doc["annotations"]) == 2

    # The reader's default still stops at the first bad entry, as it always did.
    with pytest.raises(
        DataFormatError,
        match=r"train\.json: images\[1\]\.width: width and height must be positive integers",
    ):
        load_dataset(root / "train.json")
    with pytest.raises(DataFormatError, match=r"images\[1\]\.width"):
        load_dataset(root / "train.json", problems="record")  # no list to record it in
    for k in (1, 2, 3):
        images[k] = {"id": k + 1, "file_name": f"{names[k]}.png", "width": W, "height": H}
    (root / "train.json").write_text(_coco(images, anns))
    with pytest.raises(
        DataFormatError, match=r"train\.json: images\[5\]\.id: image id 5 appears twice$"
    ):
        load_dataset(root / "train.json")


def test_coco_image_id_of_the_wrong_type_is_the_images_fault(tmp_path: Path) -> None:
    root = tmp_path / "coco"
    for k in (1, 2, 3):
        _img(root / f"{k}.png", k)
    images = [{"id": k, "file_name": f"{k}.png", "width": W, "height": H} for k in (1, 2, 3)]
    anns = [
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},
        {"image_id": "2", "category_id": 1, "bbox": [10, 10, 20, 20]},
        {"image_id": 3.0, "category_id": 1, "bbox": [10, 10, 20, 20]},
        {"image_id": "9", "category_id": 1, "bbox": [10, 10, 20, 20]},
    ]
    (root / "a.json").write_text(_coco(images, anns))
    fixed = tmp_path / "fixed.json"
    code, data = _check(root / "a.json", tmp_path / "r", "--fix-out", fixed)
    assert code == 4
    assert _findings(data) == [
        (
            "orphan_in_source",
            None,
            "a.json",
            "a.json: annotations[3].image_id: 'image_id' has the wrong type (str)",
        ),
        (
            "malformed_in_source",
            1,
            "2.png",
            "a.json: annotations[1].image_id: 'image_id' has the wrong type (str): '2' would be "
            "image 2, but COCO tools match ids exactly; its object is left out",
        ),
        (
            "malformed_in_source",
            2,
            "3.png",
            "a.json: annotations[2].image_id: 'image_id' has the wrong type (float): 3.0 would "
            "be image 3, but COCO tools match ids exactly; its object is left out",
        ),
    ]
    # The images whose object is unlabelled are not in the cleaned dataset...
    assert [im["file_name"] for im in json.loads(fixed.read_text())["images"]] == ["coco/1.png"]
    # ... nor counted as clean bags.
    assert _cli("data", "stats", root / "a.json", "--out", tmp_path / "st") == 0
    stats = json.loads((tmp_path / "st/stats.json").read_text())
    assert stats["clean_images"] == 0
    assert stats["reader_traces"]["malformed_entries_left_out"] == 2
    assert stats["reader_traces"]["orphan_entries_left_out"] == 1

    with pytest.raises(
        DataFormatError,
        match=r"a\.json: annotations\[1\]\.image_id: 'image_id' has the wrong type \(str\)$",
    ):
        load_dataset(root / "a.json")


def test_coco_images_that_are_no_list_are_a_format_error(tmp_path: Path) -> None:
    root = tmp_path / "coco"
    root.mkdir()
    (root / "a.json").write_text(
        json.dumps({"images": 5, "categories": [{"id": 1, "name": "gun"}]})
    )
    code, data = _check(root / "a.json", tmp_path / "r")
    assert code == 4
    assert _findings(data) == [
        ("orphan_in_source", None, "a.json", "a.json: images: 'images' has the wrong type (int)")
    ]
    assert _cli("data", "convert", root / "a.json", "--out", tmp_path / "out") == 3
    assert _cli("data", "stats", root / "a.json", "--out", tmp_path / "st") == 0
    with pytest.raises(
        DataFormatError, match=r"a\.json: images: 'images' has the wrong type \(int\)"
    ):
        load_dataset(root / "a.json")


def test_dvxray_scan_without_its_overhead_view(tmp_path: Path) -> None:
    dv = tmp_path / "DvXray"
    _img(dv / "s1_OL.png", 1)
    _img(dv / "s1_SD.png", 2)
    _img(dv / "s2_SD.png", 3)
    for scan in ("s1", "s2"):
        (dv / f"{scan}.json").write_text('{"objects": [{"label": "Gun"}]}')
    with pytest.raises(NotFoundError, match=r"s2_OL\.png: the OL view of scan s2 is missing"):
        load_dataset(dv, fmt="dvxray")
    assert _cli("data", "convert", dv, "--format", "dvxray", "--out", tmp_path / "out") == 5
    fixed = tmp_path / "fixed.json"
    # The default report folder (check/ inside the dataset) holds JSON files of no scan.
    code = _cli("data", "check", dv, "--format", "dvxray", "--workers", "1", "--fix-out", fixed)
    assert code == 4
    data = json.loads((dv / "check/report.json").read_text())
    assert [(c, f) for c, _, f, _ in _findings(data)] == [("missing_image", "s2_OL.png")]
    assert data["images"] == 4
    assert [im["file_name"] for im in json.loads(fixed.read_text())["images"]] == [
        "DvXray/s1_OL.png",
        "DvXray/s1_SD.png",
        "DvXray/s2_SD.png",
    ]
    # Read again with the report beside the scans: still the same four views.
    ds = load_dataset(dv, fmt="dvxray", problems="record")
    assert [r.file for r in ds.images] == ["s1_OL.png", "s1_SD.png", "s2_OL.png", "s2_SD.png"]


def test_dvxray_malformed_file_is_counted_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dv = tmp_path / "DvXray"
    for seed, scan in enumerate(("s1", "s2")):
        _img(dv / f"{scan}_OL.png", 2 * seed)
        _img(dv / f"{scan}_SD.png", 2 * seed + 1)
    (dv / "s1.json").write_text('{"objects": 5}')
    (dv / "s2.json").write_text('{"objects": [{"label": "Gun"}]}')
    out = tmp_path / "st"
    assert _cli("data", "stats", dv, "--format", "dvxray", "--out", out) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["reader_traces"]["malformed_entries_left_out"] == 1
    assert stats["clean_images"] == 0
    err = capsys.readouterr().err
    assert "1 annotation entries or files could not be read" in err
    # The check reports the file on each view: both are unlabelled by it.
    assert _check(dv, tmp_path / "r", "--format", "dvxray")[0] == 4
    data = json.loads((tmp_path / "r/report.json").read_text())
    assert [(c, f) for c, _, f, _ in _findings(data)] == [
        ("malformed_in_source", "s1_OL.png"),
        ("malformed_in_source", "s1_SD.png"),
    ]
