"""Threat image projection: Beer–Lambert in image space, boxes, library, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cv.cli import main
from cv.datasets.tip import (
    bag_region,
    load_library,
    make_threat_library,
    project_into_scan,
    project_threat,
    run_tip,
)
from cv.errors import ConfigError, ImageReadError, NotFoundError
from cv.image import read_image, write_image

AIR = (250, 248, 252)


def cutout_with_rect() -> np.ndarray:
    """A 12 x 20 cut-out: air, with a dark orange rectangle at rows 3..7, columns 5..12."""
    c = np.empty((12, 20, 3), np.uint8)
    c[:] = AIR
    c[3:8, 5:13] = (200, 120, 40)
    return c


def test_projecting_onto_air_gives_the_cutout_and_the_right_box() -> None:
    scan = np.empty((50, 60, 3), np.uint8)
    scan[:] = AIR
    cut = cutout_with_rect()
    out, box = project_threat(scan, cut, air_rgb=AIR, position=(10, 20))
    np.testing.assert_array_equal(out[20:32, 10:30], cut)
    outside = np.ones(out.shape[:2], bool)
    outside[20:32, 10:30] = False
    assert (out[outside] == AIR).all()
    assert box == (15.0, 23.0, 23.0, 28.0)


def test_box_is_clipped_at_the_scan_edge() -> None:
    scan = np.full((30, 30, 3), 200, np.uint8)
    out, box = project_threat(scan, cutout_with_rect(), air_rgb=AIR, position=(20, -5))
    assert box == (25.0, 0.0, 30.0, 3.0)
    assert out[0, 25:30].max() < 200
    _, none = project_threat(scan, cutout_with_rect(), air_rgb=AIR, position=(40, 40))
    assert none is None


def test_projection_multiplies_and_never_brightens() -> None:
    rng = np.random.default_rng(0)
    scan = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    cut = rng.integers(0, 256, (25, 25, 3), dtype=np.uint8)  # some pixels brighter than air
    out, _ = project_threat(
        scan, cut, air_rgb=(240, 240, 240), position=(5, 5), cutout_box=(0, 0, 25, 25)
    )
    assert (out <= scan).all()
    # Hand-worked pixel: 200 * (120 / 240) = 100.
    scan2 = np.full((4, 4, 3), 200, np.uint8)
    cut2 = np.full((2, 2, 3), 120, np.uint8)
    out2, _ = project_threat(
        scan2, cut2, air_rgb=(240, 240, 240), position=(1, 1), cutout_box=(0, 0, 2, 2)
    )
    assert (out2[1:3, 1:3] == 100).all() and out2[0, 0, 0] == 200


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lib")
    make_threat_library(out, n=4, classes=["knife", "gun"], profiles=["saturated"], seed=1)
    return out


def test_library_cutouts_have_tight_boxes(library: Path) -> None:
    lib = load_library(library)
    assert len(lib.cutouts) == 4 and {c.category for c in lib.cutouts} <= {"knife", "gun"}
    for c in lib.cutouts:
        img = lib.image(c)
        dark = np.abs(img.astype(int) - np.array(c.air)).max(axis=2) > 0
        ys, xs = np.nonzero(dark)
        x1, y1, x2, y2 = c.box
        # The drawn object lies within its box, and fills it out to within the blur.
        assert xs.min() >= x1 - 3 and xs.max() < x2 + 3
        assert abs(xs.min() - x1) <= 3 and abs(ys.min() - y1) <= 3
        assert 0 <= x1 < x2 <= img.shape[1] and 0 <= y1 < y2 <= img.shape[0]


def test_project_into_scan_keeps_threats_in_the_bag(library: Path) -> None:
    scan = np.full((360, 360, 3), 250, np.uint8)
    scan[40:340, 30:330] = (230, 160, 90)  # the bag
    region = bag_region(scan)
    assert region[100, 100] and not region[5, 5]
    out, anns = project_into_scan(
        scan, load_library(library), n_threats=2, rng=np.random.default_rng(3)
    )
    assert len(anns) == 2 and (out <= scan).all()
    for a in anns:
        x1, y1, x2, y2 = a.box
        assert x1 >= 30 and x2 <= 330 and y1 >= 40 and y2 <= 340


def _bags(folder: Path, n: int, side: int) -> Path:
    """``n`` plain scans: a bag of organic colour on air, 10 px from each edge."""
    for i in range(n):
        img = np.full((side, side, 3), 250, np.uint8)
        img[10 : side - 10, 10 : side - 10] = (220, 170, 110)
        write_image(folder / f"bag{i:02d}.png", img)
    return folder


def test_run_tip_writes_yolo_and_coco(library: Path, tmp_path: Path) -> None:
    scans = _bags(tmp_path / "scans", 2, 160)
    ds = run_tip(scans, library, tmp_path / "out", threats=(1, 1), seed=4)
    assert len(ds.images) == 2 and all(len(r.annotations) == 1 for r in ds.images)
    doc = json.loads((tmp_path / "out" / "annotations" / "train.json").read_text())
    assert len(doc["annotations"]) == 2
    assert (tmp_path / "out" / "data.yaml").is_file()
    assert read_image(tmp_path / "out" / ds.images[0].file).shape == (160, 160, 3)
    rc = main(
        [
            "data",
            "tip",
            "--scans",
            str(scans / "bag00.png"),
            "--library",
            str(library),
            "--out",
            str(tmp_path / "cli"),
            "--threats",
            "2",
        ]
    )
    assert rc == 0


def test_run_tip_leaves_a_share_of_scans_clean(library: Path, tmp_path: Path) -> None:
    scans = _bags(tmp_path / "scans", 12, 120)
    all_threat = run_tip(scans, library, tmp_path / "a", threats=(1, 1), seed=2)
    mixed = run_tip(scans, library, tmp_path / "b", threats=(1, 1), seed=2, clean=0.5)
    left = [r for r in mixed.images if not r.annotations]
    assert 0 < len(left) < 12
    for r, r0 in zip(mixed.images, all_threat.images, strict=True):
        a, b = read_image(tmp_path / "b" / r.file), read_image(tmp_path / "a" / r0.file)
        if r.annotations:  # projected scans are the same as without --clean
            assert r.annotations == r0.annotations and np.array_equal(a, b)
        else:  # clean bags are the scans as they were
            assert np.array_equal(a, read_image(scans / Path(r.meta["scan"]).name))
    assert all(len(r.annotations) == 1 for r in run_tip(
        scans, library, tmp_path / "c", threats=(1, 1), seed=2, clean=0.0
    ).images)  # fmt: skip
    with pytest.raises(ConfigError, match="clean"):
        run_tip(scans, library, tmp_path / "d", clean=1.5)


def test_tip_error_paths(library: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ImageReadError):
        run_tip(bad, library, tmp_path / "o")
    with pytest.raises(NotFoundError):
        run_tip(tmp_path / "missing", library, tmp_path / "o")
    with pytest.raises(NotFoundError):
        load_library(tmp_path)
    with pytest.raises(ConfigError):
        make_threat_library(tmp_path / "l", n=1, classes=["sword"])
    assert (
        main(
            [
                "data",
                "tip",
                "--scans",
                str(bad),
                "--library",
                str(library),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 3
    )
