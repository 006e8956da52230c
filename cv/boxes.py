"""Boxes and the conversions between every convention the datasets use.

The one internal convention is **``xyxy``: absolute pixels, 0-based, continuous**.
Pixel ``(i, j)`` covers ``[i, i + 1) × [j, j + 1)``, so a box that covers pixel
columns 10..19 inclusive is ``x1 = 10, x2 = 20`` and has width 10.

The other conventions, and how they map (arrays are ``float64`` of shape ``(N, 4)``):

============================  ==========================  =============================
convention                    used by                     to ``xyxy``
============================  ==========================  =============================
1-based inclusive corners     VOC XML, OPIXray / HiXray   ``(x1 - 1, y1 - 1, x2, y2)``
                              TXT, EDS, GDXray
COCO ``[x, y, w, h]``         COCO, PIDray, CLCXray,      ``(x, y, x + w, y + h)``
0-based                       AI-Hub
YOLO ``cx cy w h``            ultralytics                 ``((cx - w/2) W, (cy - h/2) H,
normalised to ``[0, 1]``                                  (cx + w/2) W, (cy + h/2) H)``
============================  ==========================  =============================

The 1-based rule is detectron2's reading of Pascal VOC: the corners name the
first and last pixel covered, both counted from 1.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

Boxes = NDArray[np.float64]
"""``(N, 4)`` float64 array of boxes."""


def as_boxes(boxes: ArrayLike) -> Boxes:
    """Returns ``boxes`` as a float64 ``(N, 4)`` array; one box may be given flat.

    Raises:
        ValueError: If the last axis is not 4 long.
    """
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1) if arr.size else arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {arr.shape}")
    return arr


def corners1_to_xyxy(boxes: ArrayLike) -> Boxes:
    """1-based inclusive corner pixels ``(x1, y1, x2, y2)`` to ``xyxy``."""
    b = as_boxes(boxes).copy()
    b[:, :2] -= 1.0
    return b


def xyxy_to_corners1(boxes: ArrayLike) -> Boxes:
    """``xyxy`` to 1-based inclusive corner pixels (inverse of :func:`corners1_to_xyxy`)."""
    b = as_boxes(boxes).copy()
    b[:, :2] += 1.0
    return b


def xywh_to_xyxy(boxes: ArrayLike) -> Boxes:
    """COCO ``[x, y, w, h]`` (0-based) to ``xyxy``."""
    b = as_boxes(boxes).copy()
    b[:, 2:] += b[:, :2]
    return b


def xyxy_to_xywh(boxes: ArrayLike) -> Boxes:
    """``xyxy`` to COCO ``[x, y, w, h]``."""
    b = as_boxes(boxes).copy()
    b[:, 2:] -= b[:, :2]
    return b


def cxcywhn_to_xyxy(boxes: ArrayLike, width: int, height: int) -> Boxes:
    """YOLO normalised ``(cx, cy, w, h)`` to ``xyxy`` in an image of ``width × height``."""
    b = as_boxes(boxes)
    out = np.empty_like(b)
    out[:, 0] = (b[:, 0] - b[:, 2] / 2) * width
    out[:, 1] = (b[:, 1] - b[:, 3] / 2) * height
    out[:, 2] = (b[:, 0] + b[:, 2] / 2) * width
    out[:, 3] = (b[:, 1] + b[:, 3] / 2) * height
    return out


def xyxy_to_cxcywhn(boxes: ArrayLike, width: int, height: int) -> Boxes:
    """``xyxy`` to YOLO normalised ``(cx, cy, w, h)``."""
    b = as_boxes(boxes)
    out = np.empty_like(b)
    out[:, 0] = (b[:, 0] + b[:, 2]) / 2 / width
    out[:, 1] = (b[:, 1] + b[:, 3]) / 2 / height
    out[:, 2] = (b[:, 2] - b[:, 0]) / width
    out[:, 3] = (b[:, 3] - b[:, 1]) / height
    return out


def polygon_to_xyxy(points: ArrayLike) -> NDArray[np.float64]:
    """The tight ``xyxy`` box of one polygon given as ``[[x, y], ...]`` (0-based pixels).

    Polygon vertices are points on pixel corners, so the box is their extent.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        raise ValueError("polygon has no points")
    return np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()])


def clip_xyxy(boxes: ArrayLike, width: int, height: int) -> Boxes:
    """Clips ``xyxy`` boxes to the image ``[0, width] × [0, height]``."""
    b = as_boxes(boxes).copy()
    np.clip(b[:, 0::2], 0, width, out=b[:, 0::2])
    np.clip(b[:, 1::2], 0, height, out=b[:, 1::2])
    return b


def box_area(boxes: ArrayLike) -> NDArray[np.float64]:
    """Areas of ``xyxy`` boxes; inverted boxes have area 0."""
    b = as_boxes(boxes)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def box_iou(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Pairwise IoU of ``xyxy`` boxes, shape ``(len(a), len(b))``."""
    a, b = as_boxes(a), as_boxes(b)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def is_valid_xyxy(boxes: ArrayLike) -> NDArray[np.bool_]:
    """Whether each box has positive width and height and finite coordinates."""
    b = as_boxes(boxes)
    return np.isfinite(b).all(axis=1) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
