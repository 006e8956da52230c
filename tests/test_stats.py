"""Tests of cv.datasets.stats against hand-counted values."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from cv.datasets.stats import SIZE_BUCKETS, dataset_stats, render_tables
from cv.image import read_image
from cv.records import Annotation, Dataset, ImageRecord
from cv.taxonomy import NAMES

TRACE_NAMES = (
    "invalid_boxes_left_out",
    "objects_of_dropped_classes",
    "boxes_clipped",
    "objects_of_unknown_classes",
    "malformed_entries_left_out",
    "images_with_unreadable_header",
    "objects_in_unreadable_images",
    "positive_images_without_boxes",
    "orphan_entries_left_out",
)


def _hand_built() -> Dataset:
    """Five images whose every number below was counted by hand.

    Box areas sit on both sides of COCO's boundaries: 1023 (small) and 1024
    (medium) around 32², 9215 (medium) and 9216 (large) around 96².
    """
    return Dataset(
        "hand",
        [
            ImageRecord(
                "a.png",
                100,
                100,
                [
                    Annotation((0, 0, 31, 33), "gun", occlusion_level=2),  # 1023: small
                    Annotation((0, 0, 32, 32), "knife", occlusion=0.7),  # 1024: medium, OL3
                ],
                split="train",
            ),
            ImageRecord(
                "b.png",
                200,
                100,
                [
                    Annotation((10, 10, 106, 106), "gun"),  # 9216: large
                    Annotation((0, 0, 95, 97), "gun"),  # 9215: medium
                ],
                split="train",
            ),
            ImageRecord("c.png", 100, 100, [], split="val"),
            ImageRecord(
                "d.png",
                100,
                100,
                [
                    Annotation((0, 0, 10, 10), "knife", occlusion=0.1, concealment="lining"),
                    Annotation((5, 5, 5, 9), "gun"),  # zero width: invalid
                ],
                split="test",
                subset="hard",
            ),
            ImageRecord("e.png", 50, 40, [Annotation((0, 0, 50, 40), "rifle")]),  # 2000: medium
        ],
    )


def test_counts_per_class_and_split() -> None:
    s = dataset_stats(_hand_built())
    assert (s.images, s.annotations, s.clean_images) == (5, 7, 1)
    assert s.classes == ["gun", "knife", "rifle"]
    assert s.splits == ["train", "val", "test", "unassigned"]
    assert s.images_per_split == {"train": 2, "val": 1, "test": 1, "unassigned": 1}
    assert s.clean_images_per_split == {"train": 0, "val": 1, "test": 0, "unassigned": 0}
    assert s.boxes_per_class == {
        "gun": {"train": 3, "val": 0, "test": 1, "unassigned": 0},
        "knife": {"train": 1, "val": 0, "test": 1, "unassigned": 0},
        "rifle": {"train": 0, "val": 0, "test": 0, "unassigned": 1},
    }
    assert s.images_per_class == {
        "gun": {"train": 2, "val": 0, "test": 1, "unassigned": 0},
        "knife": {"train": 1, "val": 0, "test": 1, "unassigned": 0},
        "rifle": {"train": 0, "val": 0, "test": 0, "unassigned": 1},
    }
    assert s.boxes_per_image == {0: 1, 1: 1, 2: 3}
    assert s.images_per_source == {"": 5}
    assert s.reader_traces == dict.fromkeys(TRACE_NAMES, 0)
    assert s.unknown_classes == {}


def test_reader_traces_are_counted() -> None:
    ds = _hand_built()
    ds.images[0].meta = {"clipped": [0, 1], "dropped": ["Hammer"]}
    ds.images[2].meta = {"invalid": [{"name": "Gun", "box": [0, 0, 0, 0], "reason": "empty"}]}
    assert dataset_stats(ds).reader_traces == {
        **dict.fromkeys(TRACE_NAMES, 0),
        "invalid_boxes_left_out": 1,
        "objects_of_dropped_classes": 1,
        "boxes_clipped": 2,
    }


def test_unreadable_images_have_no_size_and_left_out_objects_are_not_clean() -> None:
    from cv.datasets.formats import summarize

    def rec(name: str, w: int, h: int, **meta: object) -> ImageRecord:
        return ImageRecord(name, w, h, [], split="train", meta=dict(meta))

    where = {"path": "a.txt", "line": 1, "field": "class", "reason": "bad"}
    ds = Dataset(
        "traced",
        [
            ImageRecord("a.png", 100, 50, [Annotation((1, 1, 9, 9), "gun")], split="train"),
            rec("b.png", 0, 0, unreadable=["unreadable image header (x)"], unplaced=["Gun"]),
            rec("c.png", 100, 50, unknown=[{**where, "name": "Rifle"}]),
            rec("d.png", 100, 50, malformed=[where]),
            rec("e.png", 80, 40, missing_boxes=[where]),
            rec("f.png", 100, 50, invalid=[{"name": "gun", "box": [0, 0, 0, 0], "reason": "x"}]),
            rec("g.png", 100, 50),  # the one clean bag
        ],
    )
    s = dataset_stats(ds)
    assert s.image_sizes == {"100x50": 5, "80x40": 1}
    assert s.images_without_size == 1
    assert (s.image_dimensions["width"]["min"], s.image_dimensions["height"]["min"]) == (80, 40)
    assert s.clean_images_per_split == {"train": 1}
    assert s.clean_images == summarize(ds).clean_images == 1
    assert s.reader_traces["objects_in_unreadable_images"] == 1
    assert summarize(ds).unplaced == 1
    md = s.to_markdown()
    assert "| Clean images (no object) | 1 |" in md
    assert "1 images whose header cannot be read have no size" in md
    assert s.to_dict()["images_without_size"] == 1


def test_an_entry_read_for_two_images_is_one_malformed_entry() -> None:
    from cv.datasets.formats import summarize

    trace = {"path": "s1.json", "line": None, "field": "objects", "reason": "not a list"}
    ds = Dataset(
        "dv",
        [
            ImageRecord("s1_OL.png", 10, 10, [], meta={"malformed": [dict(trace)]}),
            ImageRecord("s1_SD.png", 10, 10, [], meta={"malformed": [dict(trace)]}),
            ImageRecord(
                "s2_OL.png", 10, 10, [], meta={"malformed": [{**trace, "path": "s2.json"}]}
            ),
        ],
    )
    assert dataset_stats(ds).reader_traces["malformed_entries_left_out"] == 2
    assert summarize(ds).malformed == 2


def test_subsets() -> None:
    s = dataset_stats(_hand_built())
    assert s.subsets == ["hard"]
    assert s.images_per_subset == {"hard": 1}
    assert s.clean_images_per_subset == {"hard": 0}
    assert s.boxes_per_class_subset == {
        "gun": {"hard": 1},
        "knife": {"hard": 1},
        "rifle": {"hard": 0},
    }


def test_box_size_buckets_at_the_coco_boundaries() -> None:
    s = dataset_stats(_hand_built())
    assert s.box_sizes == {
        "gun": {"small": 1, "medium": 1, "large": 1, "invalid": 1},
        "knife": {"small": 1, "medium": 1, "large": 0, "invalid": 0},
        "rifle": {"small": 0, "medium": 1, "large": 0, "invalid": 0},
    }
    assert s.size_totals() == {"small": 2, "medium": 3, "large": 1, "invalid": 1}
    # sqrt(area): 31.98, 32, 96, 95.99, 10, 44.7; bins are [low, high)
    assert {(lo, hi): n for lo, hi, n in s.box_side_histogram if n} == {
        (8, 16): 1,
        (16, 32): 1,
        (32, 64): 2,
        (64, 96): 1,
        (96, 128): 1,
    }


def test_box_and_image_dimensions() -> None:
    s = dataset_stats(_hand_built())
    # valid widths 31, 32, 96, 95, 10, 50; heights 33, 32, 96, 97, 10, 40
    assert s.box_dimensions["width_px"]["min"] == 10
    assert s.box_dimensions["width_px"]["max"] == 96
    assert s.box_dimensions["width_px"]["median"] == pytest.approx(41.0)
    assert s.box_dimensions["height_px"]["max"] == 97
    # relative: 0.31, 0.32, 0.48, 0.475, 0.1, 1.0
    assert s.box_dimensions["width_rel"]["min"] == pytest.approx(0.1)
    assert s.box_dimensions["width_rel"]["max"] == pytest.approx(1.0)
    assert s.box_dimensions["height_rel"]["max"] == pytest.approx(1.0)
    assert s.image_sizes == {"100x100": 3, "50x40": 1, "200x100": 1}
    assert s.image_dimensions["width"]["max"] == 200
    assert s.image_dimensions["height"]["min"] == 40


def test_occlusion_and_concealment() -> None:
    s = dataset_stats(_hand_built())
    assert s.occlusion == {
        "gun": {"1": 0, "2": 1, "3": 0, "unknown": 3},
        "knife": {"1": 1, "2": 0, "3": 1, "unknown": 0},
        "rifle": {"1": 0, "2": 0, "3": 0, "unknown": 1},
    }
    assert s.concealment == {
        "gun": {"lining": 0},
        "knife": {"lining": 1},
        "rifle": {"lining": 0},
    }


def test_declared_classes_without_boxes_get_rows() -> None:
    ds = _hand_built()
    ds.classes = ["knife", "gun", "laptop"]
    s = dataset_stats(ds)
    assert s.classes == ["gun", "knife", "laptop", "rifle"]
    assert s.boxes_per_class["laptop"] == {"train": 0, "val": 0, "test": 0, "unassigned": 0}


def test_empty_dataset() -> None:
    s = dataset_stats(Dataset("empty", []))
    assert (s.images, s.annotations, s.classes, s.splits) == (0, 0, [], [])
    assert s.box_dimensions["width_px"]["median"] is None
    assert s.concealment == {}


def test_json_and_markdown(tmp_path: Path) -> None:
    s = dataset_stats(_hand_built())
    data = json.loads(s.write_json(tmp_path / "stats.json").read_text())
    assert data["box_size_totals"] == {"small": 2, "medium": 3, "large": 1, "invalid": 1}
    assert data["boxes_per_image"] == {"0": 1, "1": 1, "2": 3}
    assert data["boxes_per_class"]["gun"]["train"] == 3
    assert data["box_side_histogram"][-1] == {"low": 1024, "high": None, "count": 0}

    md = s.write_markdown(tmp_path / "stats.md").read_text()
    for row in (
        "| Images | 5 |",
        "| Clean images (no object) | 1 |",
        "| Class | train | val | test | unassigned | Total | Images with it |",
        "| gun | 3 | 0 | 1 | 0 | 4 | 3 |",
        "| knife | 1 | 0 | 1 | 0 | 2 | 2 |",
        "| train | 2 | 0 | 4 |",
        "| val | 1 | 1 | 0 |",
        "| hard | 1 | 0 | 2 |",
        "| gun | 1 | 1 | 1 | 1 |",
        "| **all** | 2 | 3 | 1 | 1 |",
        "| Class | OL1 | OL2 | OL3 | unknown |",
        "| gun | 0 | 1 | 0 | 3 |",
        "| knife | 1 | 0 | 1 | 0 |",
        "| Class | lining |",
        "| 2 | 3 |",
        "| 100x100 | 3 |",
    ):
        assert row in md, row


def test_plot_writes_a_decodable_png(tmp_path: Path) -> None:
    path = dataset_stats(_hand_built()).plot(tmp_path / "out" / "stats.png")
    image = read_image(path)
    height, width = image.shape[:2]
    assert width >= 1000 and height >= 700
    assert image.std() > 10  # panels drawn, not a blank canvas
    empty = dataset_stats(Dataset("empty", [])).plot(tmp_path / "empty.png")
    assert read_image(empty).shape[2] == 3


def test_rich_tables() -> None:
    tables = render_tables(dataset_stats(_hand_built()))
    assert len(tables) == 4
    console = Console(record=True, width=160)
    for t in tables:
        console.print(t)
    text = console.export_text()
    assert "rifle" in text and "unassigned" in text and "OL3" in text


def test_100k_annotations_take_about_a_second() -> None:
    rng = random.Random(0)
    images = []
    total = 0
    while total < 100_000:
        anns = []
        for _ in range(rng.randint(0, 4)):
            x, y, w, h = rng.uniform(0, 900), rng.uniform(0, 700), rng.uniform(1, 300), 40.0
            anns.append(Annotation((x, y, x + w, y + h), rng.choice(NAMES[:12])))
        total += len(anns)
        split = rng.choice(("train", "val", "test"))
        images.append(ImageRecord(f"{len(images)}.png", 1225, 954, anns, split=split))
    ds = Dataset("big", images)
    start = time.perf_counter()
    s = dataset_stats(ds)
    elapsed = time.perf_counter() - start
    assert s.annotations == total
    assert sum(s.total_boxes(c) for c in s.classes) == total
    assert sum(sum(s.box_sizes[c][b] for b in SIZE_BUCKETS) for c in s.classes) == total
    assert elapsed < 3.0, f"{elapsed:.2f} s for {total} annotations"


def test_cli_stats_writes_its_three_files(tmp_path: Path) -> None:
    from cv.cli import main
    from cv.datasets.formats.coco import write_coco
    from cv.image import write_image

    ds = _hand_built()
    ds.images = [r for r in ds.images if r.annotations and r.annotations[0].category != "rifle"]
    for i, rec in enumerate(ds.images):
        write_image(tmp_path / "ds" / rec.file, np.full((rec.height, rec.width, 3), i, np.uint8))
    ds.root = tmp_path / "ds"
    # The reader leaves out the zero-width box of d.png as invalid, with a trace.
    ann = write_coco(ds, tmp_path / "ds" / "annotations.json")
    assert main(["data", "stats", str(ann), "--out", str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert data["images"] == 3
    assert data["boxes_per_class"]["gun"] == {"train": 3, "test": 0}
    assert data["reader_traces"]["invalid_boxes_left_out"] == 1
    md = (tmp_path / "out" / "stats.md").read_text()
    assert "| gun | 3 | 0 | 3 | 2 |" in md
    assert "| Reader: invalid boxes left out | 1 |" in md
    assert read_image(tmp_path / "out" / "stats.png").std() > 10

    assert main(["data", "stats", str(ann)]) == 0  # default: stats/ beside the file
    assert (tmp_path / "ds" / "stats" / "stats.md").is_file()


def test_cli_stats_counts_what_it_can_and_names_the_unknown_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cv.cli import main
    from cv.image import write_image

    root = tmp_path / "OPIXray"
    ann = root / "train/train_annotation"
    ann.mkdir(parents=True)
    for i in range(1, 5):
        rng = np.random.default_rng(i)
        write_image(
            root / f"train/train_image/{i:06d}.jpg", rng.integers(0, 256, (50, 100, 3), np.uint8)
        )
    (ann / "000001.txt").write_text("000001.jpg Scissor 1 1 10 10\n")
    (ann / "000002.txt").write_text("000002.jpg Scissor 1 1 10 10\n000002.jpg Gun 5 5 20 20\n")
    (ann / "000003.txt").write_text("000003.jpg Gun 5 5 20 20\n000003.jpg Hammer 1 1 9 9\n")
    (ann / "000004.txt").write_text("000004.jpg Scissor 1 x 10 10\n")
    out = tmp_path / "stats"
    assert main(["data", "stats", str(root), "--format", "opixray", "--out", str(out)]) == 0
    data = json.loads((out / "stats.json").read_text())
    assert data["boxes_per_class"]["scissors"] == {"train": 2}
    assert data["unknown_classes"] == {
        "Gun": {"objects": 2, "first_seen": "train/train_annotation/000002.txt:2: class"},
        "Hammer": {"objects": 1, "first_seen": "train/train_annotation/000003.txt:2: class"},
    }
    traces = data["reader_traces"]
    assert (traces["objects_of_unknown_classes"], traces["malformed_entries_left_out"]) == (3, 1)
    md = (out / "stats.md").read_text()
    assert "| Gun | 2 | train/train_annotation/000002.txt:2: class |" in md
    err = capsys.readouterr().err
    assert "Gun x2, Hammer x1" in err and "--class-map FILE" in err
    assert "1 annotation entries or files could not be read" in err and "data check" in err

    # An image whose header cannot be read: its object is counted as not read,
    # and it has no size.
    (root / "train/train_image/000001.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    assert main(["data", "stats", str(root), "--format", "opixray", "--out", str(out)]) == 0
    data = json.loads((out / "stats.json").read_text())
    assert data["reader_traces"]["objects_in_unreadable_images"] == 1
    assert data["image_sizes"] == {"100x50": 3}
    assert data["images_without_size"] == 1
    err = capsys.readouterr().err
    assert (
        "2 annotation entries or files could not be read and are not counted (1 of them "
        "objects in images whose header cannot be read)"
    ) in " ".join(err.split())
    pixels = np.random.default_rng(1).integers(0, 256, (50, 100, 3), np.uint8)
    write_image(root / "train/train_image/000001.jpg", pixels)

    cmap = tmp_path / "mine.yaml"
    cmap.write_text("map:\n  Scissor: scissors\n  Gun: gun\n  Hammer: hammer\n")
    args = ["data", "stats", str(root), "--format", "opixray", "--out", str(out)]
    assert main([*args, "--class-map", str(cmap)]) == 0
    data = json.loads((out / "stats.json").read_text())
    assert data["unknown_classes"] == {}
    assert {c: n["train"] for c, n in data["boxes_per_class"].items()} == {
        "gun": 2,
        "scissors": 2,
        "hammer": 1,
    }
