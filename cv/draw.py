"""Drawing boxes and labels on images (reader console, alerts, reports)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from cv.boxes import as_boxes

# A fixed, high-contrast palette (RGB); X-ray images are orange/green/blue, so
# labels use magenta, yellow, red, white and cyan first.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 0, 255),
    (255, 255, 0),
    (255, 40, 40),
    (255, 255, 255),
    (0, 255, 255),
    (255, 128, 0),
    (160, 60, 255),
    (0, 255, 120),
)


def color_for(index: int) -> tuple[int, int, int]:
    """The palette colour for class index ``index``."""
    return PALETTE[index % len(PALETTE)]


def draw_boxes(
    image: NDArray[np.uint8],
    boxes: ArrayLike,
    labels: Sequence[str] | None = None,
    *,
    class_ids: Sequence[int] | None = None,
    scores: Sequence[float] | None = None,
    thickness: int | None = None,
) -> NDArray[np.uint8]:
    """Returns a copy of ``image`` with ``xyxy`` boxes and their labels drawn.

    Args:
        image: ``(H, W, 3) uint8`` RGB, or ``(H, W)`` grey (drawn in colour).
        boxes: ``(N, 4)`` ``xyxy`` pixels, 0-based.
        labels: Text for each box (class names).
        class_ids: Colour index for each box; by default the label decides.
        scores: Confidence for each box, appended to the label.
        thickness: Line width; by default scaled to the image size.
    """
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image.copy()
    if out.dtype != np.uint8:
        out = (out >> 8).astype(np.uint8)
    b = as_boxes(boxes)
    h, w = out.shape[:2]
    lw = thickness or max(1, round(min(h, w) / 320))
    scale = max(0.35, min(h, w) / 1200)
    names = {}
    for i, (x1, y1, x2, y2) in enumerate(b):
        label = labels[i] if labels is not None else ""
        cid = class_ids[i] if class_ids is not None else names.setdefault(label, len(names))
        color = color_for(cid)
        p1 = (round(x1), round(y1))
        p2 = (round(x2) - 1, round(y2) - 1)
        cv2.rectangle(out, p1, p2, color, lw, cv2.LINE_8)
        text = label
        if scores is not None:
            text = f"{label} {scores[i]:.2f}".strip()
        if text:
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            ty = p1[1] - 2 if p1[1] - th - base - 2 >= 0 else p1[1] + th + base + 2
            cv2.rectangle(out, (p1[0], ty - th - base), (p1[0] + tw + 2, ty + 1), color, -1)
            cv2.putText(
                out,
                text,
                (p1[0] + 1, ty - base + 1),
                cv2.FONT_HERSHEY_SIMPLEX,
                scale,
                (0, 0, 0),
                1,
                cv2.LINE_AA,
            )
    return out
