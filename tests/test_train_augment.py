"""X-ray augmentation: boxes stay right under flips and 90° rotations; TIP adds a box
where the threat went."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pytest

from cv.datasets.tip import make_threat_library
from cv.training.augment import (
    ThreatProjection,
    augment,
    xray_compose,
    xray_transforms,
)


def _scan() -> tuple[np.ndarray, np.ndarray]:
    """A 60 x 100 grey bag on white air with one red object at x 10-30, y 20-50."""
    img = np.full((60, 100, 3), 250, np.uint8)
    img[5:55, 5:95] = 150
    img[20:50, 10:30] = (255, 0, 0)
    return img, np.array([[10.0, 20.0, 30.0, 50.0]])


def _red_extent(img: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero((img[..., 0] == 255) & (img[..., 1] == 0))
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_horizontal_flip_hand_worked() -> None:
    img, boxes = _scan()
    out, b, ids = augment(xray_compose([A.HorizontalFlip(p=1)], seed=0), img, boxes, np.array([3]))
    # x' = W - x: (10, 30) -> (70, 90); y unchanged.
    np.testing.assert_allclose(b, [[70, 20, 90, 50]], atol=1e-4)
    assert ids.tolist() == [3]
    assert _red_extent(out) == (70, 20, 90, 50)


def test_vertical_flip_hand_worked() -> None:
    img, boxes = _scan()
    _, b, _ = augment(xray_compose([A.VerticalFlip(p=1)], seed=0), img, boxes, np.array([0]))
    # y' = H - y: (20, 50) -> (10, 40).
    np.testing.assert_allclose(b, [[10, 10, 30, 40]], atol=1e-4)


@pytest.mark.parametrize("seed", range(4))
def test_rot90_box_follows_the_object(seed: int) -> None:
    img, boxes = _scan()
    out, b, _ = augment(xray_compose([A.RandomRotate90(p=1)], seed=seed), img, boxes, np.array([1]))
    assert out.shape in ((60, 100, 3), (100, 60, 3))
    np.testing.assert_allclose(b[0], _red_extent(out), atol=1e-4)


def test_rot90_quarter_turn_hand_worked() -> None:
    # One anticlockwise quarter turn of a W x H image: (x, y) -> (y, W - x).
    img, boxes = _scan()
    for seed in range(20):
        out, b, _ = augment(xray_compose([A.RandomRotate90(p=1)], seed=seed), img, boxes, [0])
        if out.shape[:2] == (100, 60) and np.array_equal(out, np.rot90(img, 1)):
            np.testing.assert_allclose(b, [[20, 70, 50, 90]], atol=1e-4)
            return
    pytest.fail("no seed in 0..19 gave an anticlockwise quarter turn")


def test_full_pipeline_keeps_boxes_valid_and_is_seeded() -> None:
    img, boxes = _scan()
    runs = []
    for _ in range(2):
        c = xray_compose(xray_transforms(colour_p=1, noise_p=1, blur_p=1), seed=7)
        runs.append(augment(c, img, boxes, np.array([2])))
    (o1, b1, i1), (o2, b2, _) = runs
    assert np.array_equal(o1, o2) and np.array_equal(b1, b2) and i1.tolist() == [2]
    h, w = o1.shape[:2]
    assert (b1[:, 0] >= 0).all() and (b1[:, 2] <= w).all() and (b1[:, 3] <= h).all()


def test_boxes_outside_are_clipped_and_empty_ones_dropped() -> None:
    img, _ = _scan()
    boxes = np.array([[-5.0, 10.0, 20.0, 30.0], [40.0, 40.0, 40.5, 45.0]])
    _, b, ids = augment(xray_compose([A.HorizontalFlip(p=0)], seed=0), img, boxes, np.array([0, 1]))
    np.testing.assert_allclose(b, [[0, 10, 20, 30]])
    assert ids.tolist() == [0]


def test_bad_image_is_rejected() -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        augment(
            xray_compose([A.HorizontalFlip(p=0)], seed=0),
            np.zeros((4, 4), np.uint8),
            np.zeros((0, 4)),
            [],
        )


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tiplib")
    make_threat_library(d, n=4, classes=["knife"], profiles=["saturated"], seed=0)
    return d


def test_tip_adds_a_box_where_the_threat_went(library: Path) -> None:
    img = np.full((200, 200, 3), 250, np.uint8)
    img[20:180, 20:180] = 200  # a uniform bag: every change is the threat's
    classes = ["gun", "knife"]
    tip = ThreatProjection(library=str(library), classes=classes, scale=0.5, max_threats=1, p=1)
    out, b, ids = augment(xray_compose([tip], seed=3), img, np.zeros((0, 4)), [])
    assert ids.tolist() == [1]  # knife is class 1 of the dataset
    changed = (out.astype(int) - img.astype(int)).any(axis=2)
    ys, xs = np.nonzero(changed)
    assert changed.any() and (out <= img).all()  # projection never brightens
    x0, y0, x1, y1 = b[0]
    # Every changed pixel lies in the new box (the faint rim of the object may change
    # no pixel, so the box may be a little larger than the changed region).
    assert xs.min() >= x0 - 1 and xs.max() < x1 + 1 and ys.min() >= y0 - 1 and ys.max() < y1 + 1
    changed_area = (xs.max() + 1 - xs.min()) * (ys.max() + 1 - ys.min())
    assert changed_area > 0.5 * (x1 - x0) * (y1 - y0)


def test_tip_keeps_existing_boxes_and_skips_unknown_classes(library: Path) -> None:
    img, boxes = _scan()
    only_guns = ThreatProjection(library=str(library), classes=["gun"], p=1)
    out, b, ids = augment(xray_compose([only_guns], seed=0), img, boxes, [0])
    assert np.array_equal(out, img) and ids.tolist() == [0]
    tip = ThreatProjection(library=str(library), classes=["knife"], scale=0.3, max_threats=2, p=1)
    _, b, ids = augment(xray_compose([tip, A.HorizontalFlip(p=1)], seed=1), img, boxes, [5])
    assert ids[0] == 5 and len(ids) >= 2 and set(ids[1:].tolist()) == {0}
    np.testing.assert_allclose(b[0], [70, 20, 90, 50], atol=1e-4)


def test_tip_serialises_for_workers(library: Path) -> None:
    tip = ThreatProjection(library=str(library), classes=["knife"], scale=0.5, max_threats=2, p=0.4)
    back = A.from_dict(A.to_dict(tip))
    assert isinstance(back, ThreatProjection)
    assert (back.library, back.classes, back.scale, back.max_threats, back.p) == (
        str(library),
        ["knife"],
        0.5,
        2,
        0.4,
    )


def test_ultralytics_step_adds_tip_boxes_in_bgr(library: Path) -> None:
    import albumentations as A
    from ultralytics.utils.instance import Instances

    from cv.models.ultra import ultralytics
    from cv.training.augment import ThreatProjection
    from cv.training.xray import XrayAugmentStep

    ultralytics()
    rgb = np.full((128, 128, 3), 250, np.uint8)
    rgb[10:118, 10:118] = (200, 180, 160)
    tip = ThreatProjection(library=str(library), classes=["gun", "knife"], scale=0.4, p=1)
    step = XrayAugmentStep([A.to_dict(tip)])
    labels = {
        "img": np.ascontiguousarray(rgb[..., ::-1]),
        "cls": np.array([[0.0]]),
        "instances": Instances(np.array([[0.5, 0.5, 0.2, 0.2]]), bbox_format="xywh"),
    }
    out = step(labels)
    assert out["cls"].ravel().tolist() == [0.0, 1.0]
    out["instances"].convert_bbox("xyxy")
    np.testing.assert_allclose(out["instances"].bboxes[0], [51.2, 51.2, 76.8, 76.8], atol=1e-3)
    assert out["img"].shape == (128, 128, 3) and (out["img"] <= labels["img"].max()).all()
