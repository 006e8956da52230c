"""``customs-vision data convert`` and ``bench convert`` through ``cv.cli.main``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from cv.cli import main
from cv.evaluation.bench_convert import bench_convert
from cv.image import write_image


def _opixray(root: Path) -> Path:
    write_image(root / "train/train_image/1.jpg", np.zeros((50, 100, 3), np.uint8))
    (root / "train/train_annotation").mkdir(parents=True)
    (root / "train/train_annotation/1.txt").write_text("1.jpg Straight_Knife 1 1 10 20\n")
    write_image(root / "test/test_image/2.jpg", np.zeros((50, 100, 3), np.uint8))
    return root


def test_convert_opixray_to_yolo_and_coco(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _opixray(tmp_path / "OPIXray")
    out = tmp_path / "out"
    code = main(
        ["data", "convert", str(src), "--format", "opixray", "--out", str(out), "--images", "copy"]
    )
    assert code == 0
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == {0: "knife", 1: "scissors"}
    row = [float(v) for v in (out / "labels/train/1.txt").read_text().split()]
    assert row == pytest.approx([0, 0.05, 0.2, 0.1, 0.4])
    assert (out / "labels/test/2.txt").read_text() == ""
    coco = json.loads((out / "annotations" / "train.json").read_text())
    assert coco["images"][0]["file_name"] == "../images/train/1.jpg"
    assert coco["annotations"][0]["bbox"] == [0, 0, 10, 20]
    assert (out / "annotations" / coco["images"][0]["file_name"]).is_file()
    printed = capsys.readouterr().out
    assert "images" in printed and "knife" in printed and "clipped" in printed


def test_convert_splits_a_source_without_splits(tmp_path: Path) -> None:
    src = tmp_path / "pix"
    for i in range(10):
        write_image(src / f"p{i}.png", np.zeros((8, 8, 3), np.uint8))
        (src / f"p{i}.json").write_text(
            json.dumps({"objects": [{"label": "Gun", "bbox": [1, 1, 4, 4]}]})
        )
    out = tmp_path / "out"
    args = [
        "data",
        "convert",
        str(src),
        "--out",
        str(out),
        "--to",
        "yolo",
        "--split-ratios",
        "0.6,0.2,0.2",
        "--seed",
        "3",
    ]
    assert main(args) == 0
    counts = {s: len(list((out / "labels" / s).glob("*.txt"))) for s in ("train", "val", "test")}
    assert counts == {"train": 6, "val": 2, "test": 2}


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--format", "nosuch"], 2),
        (["--to", "voc"], 2),
        (["--split-ratios", "0.5,0.6,0.1"], 2),
        (["--format", "opixray", "--gdxray-columns", "x1y1x2y2"], 2),
    ],
)
def test_convert_argument_errors(tmp_path: Path, args: list[str], code: int) -> None:
    src = _opixray(tmp_path / "OPIXray")
    assert main(["data", "convert", str(src), "--out", str(tmp_path / "o"), *args]) == code


def test_convert_exit_codes_follow_the_error_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "o")
    assert main(["data", "convert", str(tmp_path / "missing"), "--out", out]) == 5
    src = _opixray(tmp_path / "OPIXray")
    txt = src / "train/train_annotation/1.txt"
    txt.write_text("1.jpg Straight_Knife 1 1 10\n")
    assert main(["data", "convert", str(src), "-f", "opixray", "--out", out]) == 3
    assert "1.txt:1: y2: expected 6" in capsys.readouterr().err
    txt.write_text("1.jpg Spoon 1 1 10 20\n")
    assert main(["data", "convert", str(src), "-f", "opixray", "--out", out]) == 4
    assert "unknown class 'Spoon'" in capsys.readouterr().err


def test_bench_convert_small() -> None:
    r = bench_convert(2_000, per_image=10)
    assert (r["annotations"], r["images"]) == (2_000, 200)
    assert r["seconds"] == pytest.approx(r["read_s"] + r["yolo_s"] + r["coco_s"])
    assert r["ratio_to_target"] == pytest.approx(r["seconds"] / 10.0)
    assert main(["bench", "convert", "--annotations", "500"]) == 0
