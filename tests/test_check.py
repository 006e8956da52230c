"""Tests of cv.datasets.check: one hand-built dataset per kind of fault."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from cv.datasets.check import (
    RULES,
    CheckReport,
    LeftOut,
    check_dataset,
    clean_dataset,
    findings_table,
    summary_table,
)
from cv.errors import ConfigError, DataValidationError
from cv.image import write_image
from cv.records import Annotation, Dataset, ImageRecord

W, H = 40, 30


def _write(root: Path, name: str, seed: int, *, width: int = W, height: int = H) -> str:
    """Writes a random RGB PNG (distinct pixels per seed) and returns its file name."""
    rng = np.random.default_rng(seed)
    write_image(root / name, rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    return name


def _good(root: Path, name: str, seed: int, *anns: Annotation, split: str = "train") -> ImageRecord:
    return ImageRecord(_write(root, name, seed), W, H, list(anns), split=split)  # type: ignore[arg-type]


def _ann(box: tuple[float, ...], category: str = "gun") -> Annotation:
    return Annotation(box=box, category=category)  # type: ignore[arg-type]


def _where(report: CheckReport) -> list[tuple[str, str, int | None]]:
    return [(f.code, f.file, f.annotation_index) for f in report.findings]


def test_sound_dataset_has_no_findings(tmp_path: Path) -> None:
    ds = Dataset(
        "good",
        [
            _good(tmp_path, "a.png", 1, _ann((0, 0, 40, 30)), _ann((5, 5, 10, 10), "knife")),
            _good(tmp_path, "b.png", 2),
            # within the 1 px tolerance on every side
            _good(tmp_path, "c.png", 3, _ann((-1, -0.5, 41, 31))),
        ],
        root=tmp_path,
    )
    report = check_dataset(ds)
    assert report.findings == []
    assert report.ok
    assert report.counts() == {}
    assert (report.images, report.annotations) == (3, 3)


def test_missing_image(tmp_path: Path) -> None:
    ds = Dataset(
        "d",
        [
            _good(tmp_path, "a.png", 1),
            ImageRecord("gone.png", W, H, [_ann((1, 1, 5, 5))]),
        ],
        root=tmp_path,
    )
    report = check_dataset(ds)
    assert _where(report) == [("missing_image", "gone.png", None)]
    assert report.findings[0].image_index == 1
    assert report.findings[0].severity == "error"
    assert not report.ok


def test_truncated_and_undecodable_images(tmp_path: Path) -> None:
    _write(tmp_path, "trunc.png", 5)
    data = (tmp_path / "trunc.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.jpg").write_text("this is not a JPEG")
    (tmp_path / "empty.png").write_bytes(b"")
    ds = Dataset(
        "d",
        [
            ImageRecord("trunc.png", W, H),
            _good(tmp_path, "ok.png", 6),
            ImageRecord("text.jpg", W, H),
            ImageRecord("empty.png", W, H),
        ],
        root=tmp_path,
    )
    report = check_dataset(ds)
    assert _where(report) == [
        ("unreadable_image", "trunc.png", None),
        ("unreadable_image", "text.jpg", None),
        ("unreadable_image", "empty.png", None),
    ]
    assert [f.image_index for f in report.findings] == [0, 2, 3]
    assert "truncated" in report.findings[0].message
    assert "0 bytes" in report.findings[2].message


def test_size_mismatch_and_invalid_size(tmp_path: Path) -> None:
    ds = Dataset(
        "d",
        [
            ImageRecord(_write(tmp_path, "a.png", 1), 50, H),
            ImageRecord(_write(tmp_path, "b.png", 2), 0, H, [_ann((1, 1, 5, 5))]),
            _good(tmp_path, "c.png", 3),
        ],
        root=tmp_path,
    )
    report = check_dataset(ds)
    assert _where(report) == [
        ("size_mismatch", "a.png", None),
        ("invalid_size", "b.png", None),
        ("size_mismatch", "b.png", None),
    ]
    assert report.findings[0].message == "recorded 50x30, decoded 40x30"


def test_box_faults_are_reported_per_annotation(tmp_path: Path) -> None:
    rec = _good(
        tmp_path,
        "a.png",
        1,
        _ann((1, 1, 10, 10)),  # 0: fine
        _ann((30, 5, 41.5, 20)),  # 1: 1.5 px beyond the right edge
        _ann((10, 10, 5, 20)),  # 2: inverted x
        _ann((10, 10, 10, 20)),  # 3: zero width
        _ann((math.nan, 1, 5, 5)),  # 4: NaN
        _ann((0, 0, math.inf, 5)),  # 5: infinite
        _ann((1, 2, 3)),  # 6: three numbers
        _ann((-2, 0, 10, 10)),  # 7: 2 px before the left edge
        _ann((0, 0, 10, 31.0)),  # 8: exactly at the tolerance: fine
    )
    report = check_dataset(Dataset("d", [rec], root=tmp_path))
    assert [(f.code, f.annotation_index) for f in report.findings] == [
        ("box_outside_image", 1),
        ("inverted_box", 2),
        ("empty_box", 3),
        ("non_finite_box", 4),
        ("non_finite_box", 5),
        ("malformed_box", 6),
        ("box_outside_image", 7),
    ]
    assert all(f.file == "a.png" and f.image_index == 0 for f in report.findings)
    assert report.counts() == {
        "malformed_box": 1,
        "non_finite_box": 2,
        "inverted_box": 1,
        "empty_box": 1,
        "box_outside_image": 2,
    }


def test_tolerance_is_an_argument(tmp_path: Path) -> None:
    rec = _good(tmp_path, "a.png", 1, _ann((0, 0, 40.5, 30)))
    ds = Dataset("d", [rec], root=tmp_path)
    assert check_dataset(ds).findings == []
    strict_edges = check_dataset(ds, tolerance=0.0)
    assert _where(strict_edges) == [("box_outside_image", "a.png", 0)]


def test_unknown_and_unexpected_classes(tmp_path: Path) -> None:
    rec = _good(
        tmp_path,
        "a.png",
        1,
        _ann((1, 1, 5, 5), "gun"),
        Annotation((1, 1, 6, 6), "rifle", original_name="Rifle"),
        _ann((1, 1, 7, 7), "knife"),
    )
    ds = Dataset("d", [rec], root=tmp_path)
    report = check_dataset(ds)
    assert _where(report) == [("unknown_class", "a.png", 1)]
    assert "'rifle'" in report.findings[0].message and "'Rifle'" in report.findings[0].message

    only_guns = check_dataset(ds, classes=["gun"])
    assert _where(only_guns) == [("unknown_class", "a.png", 1), ("unexpected_class", "a.png", 2)]
    assert only_guns.classes == ["gun"]

    # Without `classes`, the dataset's declared classes are the list.
    declared = Dataset("d", [rec], root=tmp_path, classes=["knife"])
    assert _where(check_dataset(declared)) == [
        ("unexpected_class", "a.png", 0),
        ("unknown_class", "a.png", 1),
    ]


def test_classes_outside_the_taxonomy_are_a_config_error(tmp_path: Path) -> None:
    ds = Dataset("d", [_good(tmp_path, "a.png", 1)], root=tmp_path)
    with pytest.raises(ConfigError, match="gunn") as info:
        check_dataset(ds, classes=["gun", "gunn"])
    assert info.value.field == "classes"


def test_duplicate_images_name_both_files(tmp_path: Path) -> None:
    _write(tmp_path, "a.png", 1)
    shutil.copy(tmp_path / "a.png", tmp_path / "copy.png")
    ds = Dataset(
        "d",
        [
            ImageRecord("a.png", W, H, split="train"),
            _good(tmp_path, "b.png", 2),
            ImageRecord("copy.png", W, H, split="test"),
            ImageRecord("a.png", W, H, split="train"),
        ],
        root=tmp_path,
    )
    report = check_dataset(ds)
    assert _where(report) == [
        ("duplicate_image", "copy.png", None),
        ("duplicate_image", "a.png", None),
    ]
    assert [f.image_index for f in report.findings] == [2, 3]
    assert report.findings[0].message == (
        "same pixels as image #0 'a.png' (splits train and test: leaks between splits)"
    )
    assert report.findings[1].message == "lists the same file as image #0"


def test_duplicate_annotation_is_a_warning(tmp_path: Path) -> None:
    rec = _good(
        tmp_path,
        "a.png",
        1,
        _ann((1, 1, 5, 5), "gun"),
        _ann((1, 1, 5, 5), "knife"),  # same box, other class: not a duplicate
        _ann((1.0, 1.0, 5.0, 5.0), "gun"),
    )
    report = check_dataset(Dataset("d", [rec], root=tmp_path))
    assert _where(report) == [("duplicate_annotation", "a.png", 2)]
    assert report.findings[0].severity == "warning"
    assert "annotation 0" in report.findings[0].message
    assert report.ok  # warnings only
    assert check_dataset(Dataset("d", [rec], root=tmp_path), strict=True).warnings


def test_strict_raises_on_the_first_error_in_dataset_order(tmp_path: Path) -> None:
    ds = Dataset(
        "d",
        [
            _good(tmp_path, "a.png", 1, _ann((1, 1, 5, 5)), _ann((1, 1, 5, 5))),  # warning only
            _good(tmp_path, "b.png", 2, _ann((1, 1, 5, 5)), _ann((9, 1, 5, 5))),
            ImageRecord("gone.png", W, H),
        ],
        root=tmp_path,
    )
    with pytest.raises(DataValidationError) as info:
        check_dataset(ds, strict=True)
    err = info.value
    assert err.path == str(tmp_path / "b.png")
    assert err.field == "annotations[1]"
    assert err.reason.startswith("inverted_box: ")
    assert err.exit_code == 4

    with pytest.raises(DataValidationError) as info:
        check_dataset(ds, strict=True, workers=2)
    assert (info.value.path, info.value.field) == (err.path, err.field)


def _mixed(root: Path) -> Dataset:
    """A dataset with a fault of every kind, spread over 16 images."""
    images = [_good(root, f"ok{i:02d}.png", 100 + i, _ann((1, 1, 9, 9))) for i in range(12)]
    shutil.copy(root / "ok03.png", root / "dup.png")
    (root / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    images[4].annotations.append(_ann((5, 5, 60, 9), "rifle"))
    images[7].annotations.append(_ann((1, 1, 9, 9)))
    images[9].width = 41
    images += [
        ImageRecord("dup.png", W, H, split="val"),
        ImageRecord("bad.png", W, H),
        ImageRecord("missing.png", W, H),
        _good(root, "ok99.png", 999, _ann((3, 3, 3, 8))),
    ]
    return Dataset("mixed", images, root=root)


def test_results_do_not_depend_on_the_worker_count(tmp_path: Path) -> None:
    ds = _mixed(tmp_path)
    one = check_dataset(ds, workers=1)
    two = check_dataset(ds, workers=2)
    assert one.findings == two.findings
    assert [(f.image_index, f.code, f.annotation_index) for f in one.findings] == [
        (4, "unknown_class", 1),
        (4, "box_outside_image", 1),
        (7, "duplicate_annotation", 1),
        (9, "size_mismatch", None),
        (12, "duplicate_image", None),
        (13, "unreadable_image", None),
        (14, "missing_image", None),
        (15, "empty_box", 0),
    ]


def test_report_writes_json_and_markdown(tmp_path: Path) -> None:
    ds = _mixed(tmp_path / "data")
    report = check_dataset(ds)
    data = json.loads(report.write_json(tmp_path / "out" / "report.json").read_text())
    assert data["images"] == 16 and data["annotations"] == 15
    assert data["errors"] == 7 and data["warnings"] == 1 and data["ok"] is False
    assert data["counts"]["duplicate_image"] == 1
    assert data["findings"][0] == {
        "code": "unknown_class",
        "severity": "error",
        "file": "ok04.png",
        "image_index": 4,
        "annotation_index": 1,
        "message": "class 'rifle' is not in the taxonomy",
    }
    assert "left_out" not in data

    md = report.write_markdown(tmp_path / "out" / "report.md").read_text()
    assert "| `missing_image` | error | 1 | The image file does not exist. |" in md
    assert "| `duplicate_annotation` | warning | 1 |" in md
    assert "| 14 | `missing.png` |  | error | `missing_image` |" in md
    # summary first, findings after
    assert md.index("## Summary") < md.index("## Findings")


def test_clean_dataset_leaves_out_whole_images_by_default(tmp_path: Path) -> None:
    ds = _mixed(tmp_path)
    report = check_dataset(ds)
    cleaned, left_out = clean_dataset(ds, report)
    assert [x.image_index for x in left_out] == [4, 9, 12, 13, 14, 15]
    assert all(x.annotation_index is None for x in left_out)
    assert left_out[0] == LeftOut("ok04.png", 4, None, ("box_outside_image", "unknown_class"))
    assert len(cleaned.images) == 10
    assert "ok07.png" in [r.file for r in cleaned.images]  # a warning leaves nothing out
    assert check_dataset(cleaned).ok
    assert len(ds.images) == 16  # the input is unchanged


def test_clean_dataset_can_leave_out_single_annotations(tmp_path: Path) -> None:
    ds = _mixed(tmp_path)
    report = check_dataset(ds)
    cleaned, left_out = clean_dataset(ds, report, drop="annotation")
    assert [(x.file, x.annotation_index) for x in left_out] == [
        ("ok04.png", 1),
        ("ok09.png", None),
        ("dup.png", None),
        ("bad.png", None),
        ("missing.png", None),
        ("ok99.png", 0),
    ]
    files = [r.file for r in cleaned.images]
    assert len(files) == 12 and "ok04.png" in files and "ok99.png" in files
    assert len(cleaned.images[4].annotations) == 1
    assert len(ds.images[4].annotations) == 2
    assert cleaned.images[-1].annotations == []
    assert check_dataset(cleaned).ok

    md = report.to_markdown(left_out=left_out)
    assert "4 whole images and 2 single annotations." in md
    assert "| 4 | `ok04.png` | 1 | `box_outside_image`, `unknown_class` |" in md


def test_clean_dataset_refuses_a_foreign_report(tmp_path: Path) -> None:
    ds = _mixed(tmp_path)
    report = check_dataset(ds)
    other = Dataset("x", ds.images[:3], root=tmp_path)
    with pytest.raises(ValueError, match="covers 16 images"):
        clean_dataset(other, report)


def test_rich_tables_render(tmp_path: Path) -> None:
    report = check_dataset(_mixed(tmp_path))
    console = Console(record=True, width=200)
    console.print(summary_table(report))
    console.print(findings_table(report, limit=3))
    text = console.export_text()
    assert "missing_image" in text and "duplicate_annotation" in text
    assert "... and 5 more" in text


def test_every_rule_has_a_known_severity() -> None:
    assert {r.severity for r in RULES.values()} == {"error", "warning"}
    warnings = [c for c, r in RULES.items() if r.severity == "warning"]
    assert warnings == ["class_dropped", "box_clipped", "duplicate_annotation"]


def test_what_the_reader_left_out_is_reported(tmp_path: Path) -> None:
    # The readers keep traces in `meta` (cv.datasets.formats.common): boxes they
    # dropped as invalid, classes the class map drops, annotations they clipped.
    rec = _good(tmp_path, "a.png", 1, _ann((0, 0, 40, 30)), _ann((1, 1, 5, 5), "knife"))
    rec.meta = {
        "invalid": [{"name": "Gun", "box": [50.0, 1.0, 60.0, 5.0], "reason": "box lies outside"}],
        "dropped": ["Hammer"],
        "clipped": [0],
    }
    report = check_dataset(Dataset("d", [rec, _good(tmp_path, "b.png", 2)], root=tmp_path))
    assert [(f.code, f.severity, f.annotation_index) for f in report.findings] == [
        ("invalid_box_in_source", "error", None),
        ("class_dropped", "warning", None),
        ("box_clipped", "warning", 0),
    ]
    assert report.findings[0].message == "box lies outside: 'Gun' xyxy (50, 1, 60, 5)"
    assert report.findings[1].message == "class 'Hammer' is mapped to nothing"
    cleaned, left_out = clean_dataset(
        Dataset("d", [rec, ImageRecord("b.png", W, H)], root=tmp_path), report
    )
    assert [r.file for r in cleaned.images] == ["b.png"]
    assert left_out == [LeftOut("a.png", 0, None, ("invalid_box_in_source",))]


# --- the `customs-vision data check` command -------------------------------------


def _coco(root: Path, *images: ImageRecord) -> Path:
    """Writes a COCO dataset of ``images`` (files under ``root/images``) and returns its JSON."""
    from cv.datasets.formats.coco import write_coco

    ds = Dataset("cli", list(images), root=root / "images", classes=["gun", "knife"])
    return write_coco(ds, root / "annotations.json")


def _cli(*args: str | Path) -> int:
    from cv.cli import main

    return main([str(a) for a in args])


def test_cli_check_of_a_sound_dataset_exits_0(tmp_path: Path) -> None:
    images = tmp_path / "ds" / "images"
    ann = _coco(
        tmp_path / "ds",
        _good(images, "a.png", 1, _ann((1, 1, 9, 9))),
        _good(images, "b.png", 2, _ann((2, 2, 8, 8), "knife")),
    )
    assert _cli("data", "check", ann, "--workers", "1") == 0
    data = json.loads((tmp_path / "ds" / "check" / "report.json").read_text())
    assert data["ok"] is True and data["images"] == 2 and data["findings"] == []
    assert (tmp_path / "ds" / "check" / "report.md").read_text().count("No findings.") == 1


def _faulty(tmp_path: Path) -> Path:
    images = tmp_path / "ds" / "images"
    _write(images, "a.png", 1)
    shutil.copy(images / "a.png", images / "copy.png")
    return _coco(
        tmp_path / "ds",
        ImageRecord("a.png", W, H, [_ann((1, 1, 9, 9))], split="train"),
        _good(images, "b.png", 2, _ann((30, 5, 45, 20))),  # the reader clips it
        ImageRecord("copy.png", W, H, [_ann((2, 2, 9, 9))], split="test"),
        ImageRecord("gone.png", W, H),
        _good(images, "c.png", 3, _ann((9, 2, 5, 9), "knife")),  # inverted: reader drops it
        _good(images, "d.png", 4, _ann((1, 1, 5, 5), "knife")),
    )


def test_cli_check_reports_every_fault_and_exits_4(tmp_path: Path) -> None:
    ann = _faulty(tmp_path)
    out = tmp_path / "report"
    assert _cli("data", "check", ann, "--report", out, "--workers", "2") == 4
    data = json.loads((out / "report.json").read_text())
    assert [(f["code"], f["file"], f["annotation_index"]) for f in data["findings"]] == [
        ("box_clipped", "images/b.png", 0),
        ("duplicate_image", "images/copy.png", None),
        ("missing_image", "images/gone.png", None),
        ("invalid_box_in_source", "images/c.png", None),
    ]
    assert (data["errors"], data["warnings"]) == (3, 1)
    assert "| `missing_image` | error | 1 |" in (out / "report.md").read_text()


def test_cli_check_strict_stops_at_the_first_error(tmp_path: Path) -> None:
    ann = _faulty(tmp_path)
    assert _cli("data", "check", ann, "--strict", "--workers", "1") == 4
    assert not (tmp_path / "ds" / "check").exists()


def test_cli_check_classes(tmp_path: Path) -> None:
    images = tmp_path / "ds" / "images"
    ann = _coco(
        tmp_path / "ds",
        _good(images, "a.png", 1, _ann((1, 1, 9, 9))),
        _good(images, "b.png", 2, _ann((2, 2, 8, 8), "knife")),
    )
    out = tmp_path / "r"
    assert _cli("data", "check", ann, "--classes", "gun", "--report", out, "--workers", "1") == 4
    data = json.loads((out / "report.json").read_text())
    assert [(f["code"], f["file"]) for f in data["findings"]] == [
        ("unexpected_class", "images/b.png")
    ]
    assert _cli("data", "check", ann, "--classes", "gun,gnu", "--workers", "1") == 2


def test_cli_check_fix_out_writes_the_clean_part(tmp_path: Path) -> None:
    from cv.datasets.formats.coco import read_coco

    ann = _faulty(tmp_path)
    fixed = tmp_path / "ds" / "clean.json"
    assert _cli("data", "check", ann, "--fix-out", fixed, "--workers", "1") == 4
    clean = read_coco(fixed)
    assert sorted(Path(r.file).name for r in clean.images) == ["a.png", "b.png", "d.png"]
    data = json.loads((tmp_path / "ds" / "check" / "report.json").read_text())
    assert [(x["file"], x["codes"]) for x in data["left_out"]] == [
        ("images/copy.png", ["duplicate_image"]),
        ("images/gone.png", ["missing_image"]),
        ("images/c.png", ["invalid_box_in_source"]),
    ]
    assert (
        "## Left out of the cleaned dataset"
        in (tmp_path / "ds" / "check" / "report.md").read_text()
    )
    # the clean part passes its own check
    assert _cli("data", "check", fixed, "--report", tmp_path / "r2", "--workers", "1") == 0


def test_cli_check_of_a_missing_path_exits_5(tmp_path: Path) -> None:
    assert _cli("data", "check", tmp_path / "nothing.json") == 5


def test_cli_check_image_whose_header_the_reader_cannot_read_but_whose_pixels_decode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cv.datasets.formats.common as common
    from cv.errors import ImageReadError

    root = tmp_path / "ds"
    _write(root, "a.png", 1)
    _write(root, "b.png", 2)
    # Sizes left out: the reader takes them from the image headers.
    ann = root / "train.json"
    ann.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}],
                "annotations": [
                    {"id": 1, "image_id": k, "category_id": 1, "bbox": [1, 1, 5, 5]} for k in (1, 2)
                ],
                "categories": [{"id": 1, "name": "gun"}],
            }
        )
    )
    real = common.read_image_size

    def header_of(path: str | Path) -> tuple[int, int]:
        if Path(path).name == "b.png":
            raise ImageReadError("unreadable image header (test)", path=path)
        return real(path)

    monkeypatch.setattr(common, "read_image_size", header_of)
    fixed = tmp_path / "fixed.json"
    report = tmp_path / "r"
    assert _cli("data", "check", ann, "--report", report, "--fix-out", fixed, "--workers", "1") == 4
    data = json.loads((report / "report.json").read_text())
    # One finding, about the header; no size to compare with the decoded one.
    assert [(f["code"], f["file"], f["message"]) for f in data["findings"]] == [
        (
            "unreadable_image",
            "b.png",
            "the reader cannot read its header: unreadable image header (test)",
        )
    ]
    assert [im["file_name"] for im in json.loads(fixed.read_text())["images"]] == ["ds/a.png"]
    assert [x["codes"] for x in data["left_out"]] == [["unreadable_image"]]
