"""Synthetic CCTV generator: determinism, held-out cameras, sequences, person detection, CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from cv.cli import main
from cv.datasets.cctv import (
    generate_person_detection,
    generate_reid_dataset,
    generate_sequences,
    market_name,
    render_person,
)
from cv.datasets.cctv_camera import camera_for
from cv.datasets.cctv_people import VIEWS, Pose, make_identities, make_identity
from cv.datasets.cctv_scenes import (
    Actor,
    Geometry,
    Pillar,
    render_scene,
    render_scene_crop,
    walking_view,
)
from cv.datasets.reid import read_market1501
from cv.errors import ConfigError
from cv.image import read_image

SMALL = {
    "identities": 12,
    "cameras": 4,
    "train_cameras": 2,
    "images_per_camera": 2,
    "size": (128, 64),
    "progress": False,
}


def digests(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def test_market_names() -> None:
    assert market_name(2, 1, 451, 3) == "0002_c1s1_000451_03.jpg"
    assert market_name(-1, 6, 12) == "-1_c6s1_000012_01.jpg"
    assert market_name(0, 4, 7) == "0000_c4s1_000007_01.jpg"


def test_render_person_every_view_and_deterministic() -> None:
    ident = make_identity(5, np.random.default_rng(1))
    for view in VIEWS:
        a = render_person(ident, view, np.random.default_rng(3))
        b = render_person(ident, view, np.random.default_rng(3))
        assert a.shape == (256, 128, 3) and a.dtype == np.uint8
        assert np.array_equal(a, b)
    cam = camera_for(0, 2)
    c = render_person(ident, "front", np.random.default_rng(3), size=(128, 64), camera=cam)
    assert c.shape == (128, 64, 3)
    with pytest.raises(ConfigError):
        render_person(ident, "up", np.random.default_rng(0))  # type: ignore[arg-type]


def test_identities_are_deterministic_and_some_look_alike() -> None:
    a = make_identities(200, 7)
    assert a == make_identities(200, 7)
    assert a != make_identities(200, 8)
    # Look-alikes share the upper garment colour with another identity.
    same_top = sum(
        1
        for i, x in enumerate(a)
        for y in a[:i]
        if (x.upper, x.lower_colour) == (y.upper, y.lower_colour)
    )
    assert same_top > 20


def test_reid_dataset_same_bytes_whatever_the_workers(tmp_path: Path) -> None:
    one = generate_reid_dataset(tmp_path / "one", seed=3, workers=1, **SMALL)
    two = generate_reid_dataset(tmp_path / "two", seed=3, workers=2, **SMALL)
    skip = ("manifest.json",)
    assert digests(one, skip) == digests(two, skip)
    m1 = json.loads((one / "manifest.json").read_text())
    m2 = json.loads((two / "manifest.json").read_text())
    for m in (m1, m2):
        m.pop("seconds")
        m.pop("crops_per_second")
        m["options"].pop("workers")
    assert m1 == m2
    other = generate_reid_dataset(tmp_path / "other", seed=4, workers=1, **SMALL)
    assert digests(one, skip) != digests(other, skip)


def test_reid_dataset_held_out_cameras_and_identities(tmp_path: Path) -> None:
    root = generate_reid_dataset(tmp_path / "ds", seed=0, workers=1, distractors=5, junk=3, **SMALL)
    ds = read_market1501(root)
    assert {s.camid for s in ds.train} <= {1, 2}
    assert {s.camid for s in ds.query} | {s.camid for s in ds.gallery} <= {3, 4}
    train_ids = set(ds.train_pids())
    assert train_ids == set(range(1, 7))
    test_ids = {s.pid for s in ds.query}
    assert test_ids == set(range(7, 13)) and not test_ids & train_ids
    assert sum(1 for s in ds.gallery if s.pid == 0) == 5
    assert sum(1 for s in ds.gallery if s.pid == -1) == 3
    # Every query has a true match from another camera in the gallery.
    for q in ds.query:
        assert any(g.pid == q.pid and g.camid != q.camid for g in ds.gallery)
    # One query per identity and camera.
    assert len({(s.pid, s.camid) for s in ds.query}) == len(ds.query)
    img = read_image(ds.train[0].path)
    assert img.shape == (128, 64, 3)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["test_cameras"] == [3, 4]
    assert manifest["counts"]["bounding_box_train"]["images"] == len(ds.train)
    assert len(manifest["identities"]) == 12 and len(manifest["cameras"]) == 4
    summary = ds.summary()
    assert summary["gallery"]["distractors"] == 5 and summary["gallery"]["junk"] == 3


def test_single_image_per_camera_still_gives_matches(tmp_path: Path) -> None:
    opts = {**SMALL, "images_per_camera": 1}
    ds = read_market1501(
        generate_reid_dataset(tmp_path / "ds", workers=1, junk=0, distractors=0, **opts)
    )
    assert ds.query
    for q in ds.query:
        assert any(g.pid == q.pid and g.camid != q.camid for g in ds.gallery)


def test_reid_dataset_refuses_bad_options_and_old_output(tmp_path: Path) -> None:
    generate_reid_dataset(tmp_path / "ds", workers=1, **SMALL)
    with pytest.raises(ConfigError, match="already holds"):
        generate_reid_dataset(tmp_path / "ds", workers=1, **SMALL)
    generate_reid_dataset(tmp_path / "ds", workers=1, overwrite=True, **{**SMALL, "identities": 4})
    assert len(read_market1501(tmp_path / "ds").train_pids()) == 2
    bad = [
        {"cameras": 10},
        {"cameras": 4, "train_cameras": 3},
        {"identities": 1},
        {"identities": 10, "train_identities": 10},
        {"images_per_camera": 0},
        {"size": (16, 8)},
    ]
    for b in bad:
        with pytest.raises(ConfigError):
            generate_reid_dataset(tmp_path / "bad", workers=1, **{**SMALL, **b})


def test_scene_crops_are_cut_from_frames_at_the_persons_size(tmp_path: Path) -> None:
    cam = camera_for(0, 1)
    ident = make_identity(3, np.random.default_rng(0))
    a = render_scene_crop(ident, cam, np.random.default_rng(5))
    b = render_scene_crop(ident, cam, np.random.default_rng(5))
    assert np.array_equal(a, b)
    heights = [render_scene_crop(ident, cam, np.random.default_rng(i)).shape[0] for i in range(12)]
    # Frame pixels, not a fixed crop size: as small as the person was in the frame.
    assert min(heights) >= 30 and max(heights) <= 720 and len(set(heights)) > 6
    assert all(
        h > w
        for h, w, _ in (
            render_scene_crop(ident, cam, np.random.default_rng(i)).shape for i in range(3)
        )
    )

    root = generate_reid_dataset(tmp_path / "scenes", seed=2, workers=1, source="scenes", **SMALL)
    ds = read_market1501(root)
    shapes = {read_image(s.path).shape[:2] for s in ds.train}
    assert len(shapes) > 3 and (128, 64) not in shapes
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["options"]["source"] == "scenes"
    # Junk stays at crop scale; mixed draws people both ways.
    assert all(read_image(s.path).shape[:2] == (128, 64) for s in ds.gallery if s.pid < 0)
    mixed = read_market1501(
        generate_reid_dataset(tmp_path / "mixed", seed=2, workers=1, source="mixed", **SMALL)
    )
    sizes = [read_image(s.path).shape[:2] == (128, 64) for s in mixed.train]
    assert any(sizes) and not all(sizes)
    with pytest.raises(ConfigError, match="source must be one of"):
        generate_reid_dataset(tmp_path / "bad", workers=1, source="video", **SMALL)


def test_scene_visibility_and_boxes_are_exact() -> None:
    geom = Geometry(width=320, height=180, horizon=50.0, focal=250.0, cam_height=3.0)
    bg = np.zeros((180, 320, 3), np.uint8)
    ident = make_identity(1, np.random.default_rng(0))
    alone = Actor(1, ident, 0.0, 8.0, "front", Pose())
    _, labels = render_scene(bg, geom, [alone], [])
    (lab,) = labels
    assert lab.visibility == pytest.approx(1.0)
    x0, y0, x1, y1 = lab.box
    fx, fy = geom.foot(0.0, 8.0)
    assert x0 < fx < x1 and y1 == pytest.approx(fy, abs=2)
    assert y1 - y0 == pytest.approx(geom.pixels(1.75 * ident.height, 8.0), rel=0.06)
    # A pillar nearer to the camera, wider than the person, hides them fully.
    _, labels = render_scene(bg, geom, [alone], [Pillar(0.0, 6.0, 1.5, (90, 90, 90))])
    assert labels[0].visibility == 0.0
    # The nearer of two people at the same spot hides most of the farther one.
    far = Actor(2, ident, 0.0, 9.0, "back", Pose())
    _, labels = render_scene(bg, geom, [far, alone], [])
    vis = {lab.key: lab.visibility for lab in labels}
    assert vis[1] == pytest.approx(1.0) and vis[2] < 0.3
    # Half outside the frame: the box is clipped, the visible share halves or so.
    edge = Actor(3, ident, geom.half_width(8.0), 8.0, "front", Pose())
    _, labels = render_scene(bg, geom, [edge], [])
    assert labels[0].box[2] == 320 and 0.3 < labels[0].visibility < 0.7


def test_view_follows_the_walking_direction() -> None:
    assert walking_view(0.0, -1.0) == "front"
    assert walking_view(0.0, 1.0) == "back"
    assert walking_view(1.0, 0.1) == "right"
    assert walking_view(-1.0, -0.2) == "left"


def read_gt(path: Path) -> np.ndarray:
    rows = [list(map(float, line.split(","))) for line in path.read_text().splitlines() if line]
    return np.array(rows).reshape(-1, 10)


def test_sequences_videos_ground_truth_and_enrolment(tmp_path: Path) -> None:
    out = generate_sequences(
        tmp_path / "seq",
        cameras=2,
        seconds=3.0,
        fps=5,
        size=(320, 180),
        people=6,
        multi_camera=1.0,
        enrol=2,
        seed=1,
        workers=1,
        progress=False,
    )
    scene = json.loads((out / "scene.json").read_text())
    assert scene["frames"] == 15 and len(scene["cameras"]) == 2
    total = 0
    for cam in scene["cameras"]:
        assert {"id", "site", "location", "purpose", "fps", "size"} <= set(cam)
        cap = cv2.VideoCapture(str(out / cam["video"]))
        n = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            assert frame.shape == (180, 320, 3)
            n += 1
        cap.release()
        assert n == scene["frames"]
        gt = read_gt(out / cam["gt"])
        total += len(gt)
        if len(gt):
            assert gt[:, 0].min() >= 1 and gt[:, 0].max() <= n
            assert (gt[:, 2] >= 0).all() and (gt[:, 3] >= 0).all()
            assert (gt[:, 2] + gt[:, 4] <= 320).all() and (gt[:, 3] + gt[:, 5] <= 180).all()
            assert (gt[:, 4] > 0).all() and (gt[:, 5] >= 10).all()
            assert (gt[:, 6:] == [1, -1, -1, -1]).all()
            assert set(gt[:, 1].astype(int)) <= {i["pid"] for i in scene["identities"]}
            # One box per person and frame.
            assert len({(int(f), int(i)) for f, i in gt[:, :2]}) == len(gt)
    assert total > 0
    assert len(scene["enrolled"]) == 3  # 2 who appear + 1 who never does
    assert [e["appears"] for e in scene["enrolled"]] == [True, True, False]
    for e in scene["enrolled"]:
        assert len(e["files"]) == 3
        for f in e["files"]:
            assert read_image(out / f).shape == (256, 128, 3)
    visits = [i for i in scene["identities"] if i["visits"]]
    assert visits and all(v["first_frame"] <= v["last_frame"] for i in visits for v in i["visits"])


def test_sequences_same_bytes_whatever_the_workers(tmp_path: Path) -> None:
    opts = {"cameras": 2, "seconds": 1.0, "fps": 5, "size": (160, 96), "people": 4, "seed": 2}
    a = generate_sequences(tmp_path / "a", workers=1, progress=False, **opts)
    b = generate_sequences(tmp_path / "b", workers=2, progress=False, **opts)
    assert digests(a, ("scene.json",)) == digests(b, ("scene.json",))
    # A new run into the same folder must be asked for, and leaves no old camera behind.
    with pytest.raises(ConfigError, match="already holds"):
        generate_sequences(a, workers=1, progress=False, **opts)
    generate_sequences(a, workers=1, progress=False, overwrite=True, **{**opts, "cameras": 1})
    assert sorted(p.name for p in a.glob("cam*")) == ["cam1", "cam1.mp4"]


def test_person_detection_dataset(tmp_path: Path) -> None:
    data_yaml = generate_person_detection(
        tmp_path / "det", images=10, size=320, empty=0.2, seed=0, workers=1, progress=False
    )
    doc = yaml.safe_load(data_yaml.read_text())
    assert (
        doc["names"] == {0: "person"}
        and doc["train"] == "images/train"
        and doc["val"] == "images/val"
    )
    root = data_yaml.parent
    images = sorted((root / "images").rglob("*.jpg"))
    assert len(images) == 10
    n_boxes = 0
    empty = 0
    for img in images:
        label = root / "labels" / img.parent.name / (img.stem + ".txt")
        assert label.is_file()
        rows = [line.split() for line in label.read_text().splitlines() if line.strip()]
        empty += not rows
        for r in rows:
            assert r[0] == "0" and len(r) == 5
            cx, cy, w, h = map(float, r[1:])
            assert 0 < w <= 1 and 0 < h <= 1
            assert cx - w / 2 >= -1e-6 and cx + w / 2 <= 1 + 1e-6
            assert cy - h / 2 >= -1e-6 and cy + h / 2 <= 1 + 1e-6
        n_boxes += len(rows)
        assert read_image(img).shape == (180, 320, 3)
    assert empty >= 2 and n_boxes > 10
    coco = [json.loads(p.read_text()) for p in sorted((root / "annotations").glob("*.json"))]
    assert [c["name"] for c in coco[0]["categories"]] == ["person"]
    assert sum(len(c["annotations"]) for c in coco) == n_boxes
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["counts"]["boxes"] == n_boxes


def test_cli_reid_synth(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    args = ["reid", "synth", "--out", str(out), "--identities", "8", "--cameras", "3"]
    args += [
        "--train-cameras",
        "1",
        "--images-per-camera",
        "2",
        "--size",
        "64x32",
        "--workers",
        "1",
    ]
    assert main(args) == 0
    ds = read_market1501(out / "reid")
    assert {s.camid for s in ds.train} == {1}
    assert main(args) == 2  # refuses to mix into the earlier output
    assert (
        main(
            [
                *args,
                "--overwrite",
                "--no-crops",
                "--detection",
                "3",
                "--sequences",
                "--seconds",
                "0.5",
            ]
        )
        == 0
    )
    assert (out / "person-detection" / "data.yaml").is_file()
    assert (out / "sequences" / "cam2.mp4").is_file()
    assert main(["reid", "synth", "--out", str(out), "--no-crops"]) == 2
    assert main(["reid", "synth", "--out", str(tmp_path / "x"), "--size", "big"]) == 2
