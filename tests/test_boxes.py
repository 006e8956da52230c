"""Box conventions, checked against boxes worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from cv import boxes as B


def test_corners1_is_detectron2_voc_rule():
    # VOC box covering pixel columns 1..10 and rows 1..20 (1-based, inclusive)
    # is the first 10 columns and 20 rows: xyxy (0, 0, 10, 20), width 10.
    np.testing.assert_array_equal(B.corners1_to_xyxy([1, 1, 10, 20]), [[0, 0, 10, 20]])
    np.testing.assert_array_equal(B.xyxy_to_corners1([[0, 0, 10, 20]]), [[1, 1, 10, 20]])


def test_coco_xywh_round_trip():
    np.testing.assert_array_equal(B.xywh_to_xyxy([5, 7, 10, 3]), [[5, 7, 15, 10]])
    np.testing.assert_array_equal(B.xyxy_to_xywh([[5, 7, 15, 10]]), [[5, 7, 10, 3]])


def test_yolo_normalised_in_non_square_image():
    # xyxy (0, 0, 10, 20) in a 100 x 50 image: centre (5, 10), size 10 x 20.
    yolo = B.xyxy_to_cxcywhn([[0, 0, 10, 20]], 100, 50)
    np.testing.assert_allclose(yolo, [[0.05, 0.2, 0.1, 0.4]])
    np.testing.assert_allclose(B.cxcywhn_to_xyxy(yolo, 100, 50), [[0, 0, 10, 20]])


def test_x_and_y_are_not_swapped():
    # A wide box stays wide through every conversion.
    wide = np.array([[10.0, 40.0, 90.0, 50.0]])
    for there, back in [
        (B.xyxy_to_xywh, B.xywh_to_xyxy),
        (B.xyxy_to_corners1, B.corners1_to_xyxy),
    ]:
        np.testing.assert_array_equal(back(there(wide)), wide)
    y = B.xyxy_to_cxcywhn(wide, 200, 100)
    assert y[0, 2] > y[0, 3] * 1.5  # w (80/200) vs h (10/100)


def test_polygon_box_is_extent():
    np.testing.assert_array_equal(B.polygon_to_xyxy([[3, 4], [10, 2], [7, 9]]), [3, 2, 10, 9])
    with pytest.raises(ValueError):
        B.polygon_to_xyxy([])


def test_clip_and_area_and_validity():
    clipped = B.clip_xyxy([[-5, -2, 120, 40]], 100, 50)
    np.testing.assert_array_equal(clipped, [[0, 0, 100, 40]])
    np.testing.assert_array_equal(B.box_area([[0, 0, 10, 20], [5, 5, 1, 1]]), [200, 0])
    np.testing.assert_array_equal(
        B.is_valid_xyxy([[0, 0, 1, 1], [0, 0, 0, 1], [0, 0, np.nan, 2]]), [True, False, False]
    )


def test_iou_matches_hand_value():
    # Two 10x10 boxes overlapping by 5x10: IoU = 50 / (100 + 100 - 50) = 1/3.
    iou = B.box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(iou, [[1 / 3, 0.0]])


def test_bad_shape_is_refused():
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        B.as_boxes([[1, 2, 3]])
    assert B.as_boxes([]).shape == (0, 4)
