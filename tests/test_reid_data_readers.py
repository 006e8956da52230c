"""Re-ID dataset readers: Market-1501, DukeMTMC-reID and MSMT17 layouts on hand-made trees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cv.datasets.reid import (
    detect_reid_layout,
    parse_market_name,
    read_market1501,
    read_msmt17,
    read_reid,
)
from cv.errors import DataFormatError, NotFoundError
from cv.image import write_image

TINY = np.full((8, 4, 3), 128, np.uint8)


def touch_image(path: Path) -> Path:
    return write_image(path, TINY)


def market_tree(root: Path) -> Path:
    for name in ("0002_c1s1_000451_03.jpg", "0002_c2s1_000500_01.jpg", "0007_c3s2_001200_02.jpg"):
        touch_image(root / "bounding_box_train" / name)
    touch_image(root / "query" / "0010_c1s1_000100_01.jpg")
    for name in (
        "0010_c2s1_000200_01.jpg",
        "0010_c1s1_000101_01.jpg",
        "0000_c1s1_000151_01.jpg",
        "0000_c4s1_000152_01.jpg",
        "-1_c1s1_000401_03.jpg",
    ):
        touch_image(root / "bounding_box_test" / name)
    (root / "bounding_box_test" / "Thumbs.db").write_bytes(b"\x00\x01")
    (root / "bounding_box_test" / "readme.txt").write_text("not an image")
    (root / "gt_bbox").mkdir()
    touch_image(root / "gt_bbox" / "whatever_name.jpg")  # ignored folder
    return root


def test_market_names_parse() -> None:
    assert parse_market_name("0002_c1s1_000451_03.jpg") == (2, 1, 451)
    assert parse_market_name("-1_c3s2_000401_03.jpg") == (-1, 3, 401)
    assert parse_market_name("0001_c2_f0046182.jpg") == (1, 2, 46182)
    assert parse_market_name("0001_c2.jpg") is None
    assert parse_market_name("cat.jpg") is None


def test_market_reader_reads_ids_cameras_junk_and_distractors(tmp_path: Path) -> None:
    ds = read_market1501(market_tree(tmp_path / "Market-1501-v15.09.15"))
    assert ds.name == "market1501"
    assert [(s.pid, s.camid, s.frame) for s in ds.train] == [(2, 1, 451), (2, 2, 500), (7, 3, 1200)]
    assert [(s.pid, s.camid) for s in ds.query] == [(10, 1)]
    gallery = sorted((s.pid, s.camid) for s in ds.gallery)
    assert gallery == [(-1, 1), (0, 1), (0, 4), (10, 1), (10, 2)]
    assert ds.train_pids() == [2, 7]
    assert ds.pid_labels() == {2: 0, 7: 1}
    assert ds.summary() == {
        "train": {"ids": 2, "images": 3, "cameras": 3, "distractors": 0, "junk": 0},
        "query": {"ids": 1, "images": 1, "cameras": 1, "distractors": 0, "junk": 0},
        "gallery": {"ids": 1, "images": 5, "cameras": 3, "distractors": 2, "junk": 1},
    }
    # read_reid finds the unpacked folder one level down.
    again = read_reid(tmp_path)
    assert again.root == tmp_path / "Market-1501-v15.09.15"
    assert len(again.gallery) == 5


def test_duke_names_in_market_folders(tmp_path: Path) -> None:
    touch_image(tmp_path / "bounding_box_train" / "0001_c2_f0046182.jpg")
    touch_image(tmp_path / "query" / "0005_c1_f0000100.jpg")
    touch_image(tmp_path / "bounding_box_test" / "0005_c3_f0000200.jpg")
    ds = read_reid(tmp_path)
    assert ds.name == "dukemtmc"
    assert (ds.train[0].pid, ds.train[0].camid, ds.train[0].frame) == (1, 2, 46182)


def test_market_bad_name_names_the_file(tmp_path: Path) -> None:
    market_tree(tmp_path)
    bad = touch_image(tmp_path / "query" / "person_12.jpg")
    with pytest.raises(DataFormatError) as err:
        read_market1501(tmp_path)
    assert str(bad) in str(err.value)
    assert "pppp_cXsY_ffffff_bb.jpg" in str(err.value)


def test_market_missing_split_is_empty(tmp_path: Path) -> None:
    touch_image(tmp_path / "query" / "0010_c1s1_000100_01.jpg")
    touch_image(tmp_path / "bounding_box_test" / "0010_c2s1_000100_01.jpg")
    ds = read_market1501(tmp_path)
    assert ds.train == [] and len(ds.query) == 1


def msmt_tree(root: Path, *, version: int = 1, pid0_in_query: bool = True) -> Path:
    train, test = ("train", "test") if version == 1 else ("mask_train_v2", "mask_test_v2")
    lists = {
        "list_train.txt": [
            (train, "0000/0000_000_01_0303morning_0015_0.jpg", 0),
            (train, "0000/0000_001_05_0303morning_0020_1.jpg", 0),
            (train, "0001/0001_000_12_0303noon_0101_0.jpg", 1),
        ],
        "list_val.txt": [(train, "0001/0001_001_03_0303noon_0102_0.jpg", 1)],
        "list_query.txt": [
            (test, "0000/0000_000_02_0113morning_0001_0.jpg", 0 if pid0_in_query else 3)
        ],
        "list_gallery.txt": [
            (test, "0000/0000_001_15_0113morning_0002_0.jpg", 0 if pid0_in_query else 3),
            (test, "0002/0002_000_04_0113noon_0003_0.jpg", 2),
        ],
    }
    for list_name, rows in lists.items():
        lines = []
        for folder, rel, pid in rows:
            touch_image(root / folder / rel)
            lines.append(f"{rel} {pid}")
        (root / list_name).write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize("version", [1, 2])
def test_msmt17_reader_v1_and_v2(tmp_path: Path, version: int) -> None:
    root = msmt_tree(tmp_path / "msmt17" / f"MSMT17_V{version}", version=version)
    assert detect_reid_layout(tmp_path) == "msmt17"
    ds = read_reid(tmp_path)
    assert ds.name == "msmt17" and ds.root == root
    assert [(s.pid, s.camid) for s in ds.train] == [(0, 1), (0, 5), (1, 12)]
    assert [(s.pid, s.camid) for s in ds.val] == [(1, 3)]
    assert [(s.pid, s.camid) for s in ds.query] == [(0, 2)]
    assert sorted((s.pid, s.camid) for s in ds.gallery) == [(0, 15), (2, 4)]
    train_folder = "train" if version == 1 else "mask_train_v2"
    assert ds.train[0].path == root / train_folder / "0000/0000_000_01_0303morning_0015_0.jpg"
    # MSMT17's pid 0 is a person: it is no distractor.
    assert ds.distractor_pid is None
    assert ds.train_pids() == [0, 1]
    assert ds.summary()["gallery"] == {
        "ids": 2,
        "images": 2,
        "cameras": 2,
        "distractors": 0,
        "junk": 0,
    }


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("0002/0002_000_04_0113noon_0003_0.jpg", "expected 'relative/path.jpg pid', got 1 fields"),
        ("0002/0002_000_04_0113noon_0003_0.jpg two", "person id must be an integer"),
        ("0002/0002.jpg 2", "cannot read the camera"),
        ("0002/0002_000_04_0113noon_0003_0.jpg -3", "person id must be >= 0"),
    ],
)
def test_msmt17_bad_line_names_list_and_line(tmp_path: Path, line: str, expected: str) -> None:
    root = msmt_tree(tmp_path)
    gallery = root / "list_gallery.txt"
    gallery.write_text(gallery.read_text() + line + "\n")
    with pytest.raises(DataFormatError) as err:
        read_msmt17(root)
    assert f"{gallery}:3" in str(err.value)
    assert expected in str(err.value)


def test_msmt17_missing_image_names_list_and_line(tmp_path: Path) -> None:
    root = msmt_tree(tmp_path)
    (root / "list_query.txt").write_text(
        "0000/0000_000_02_0113morning_0001_0.jpg 0\n0009/0009_000_02_x_0001_0.jpg 9\n"
    )
    with pytest.raises(NotFoundError) as err:
        read_msmt17(root)
    assert f"{root / 'list_query.txt'}:2" in str(err.value)
    # Without the check, the listed paths are taken as they are.
    assert len(read_msmt17(root, check_files=False).query) == 2


def test_unknown_layout_says_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    touch_image(tmp_path / "images" / "a.jpg")
    with pytest.raises(NotFoundError) as err:
        read_reid(tmp_path)
    msg = str(err.value)
    for folder in (
        "bounding_box_train",
        "bounding_box_test",
        "query",
        "list_train.txt",
        "mask_train_v2",
    ):
        assert folder in msg
    with pytest.raises(NotFoundError):
        read_reid(tmp_path / "missing")
    with pytest.raises(NotFoundError):
        read_msmt17(tmp_path)
    with pytest.raises(NotFoundError):
        read_market1501(tmp_path)
