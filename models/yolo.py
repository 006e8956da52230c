"""YOLO detector builders, made by ultralytics from their YAML (never downloaded).

Each builder returns ultralytics' ``DetectionModel`` with freshly initialised
weights. Its tensor contract, in eval mode:

* input ``(N, 3, S, S) float32`` in ``[0, 1]``, RGB, ``S`` a multiple of 32;
* output (the first element of the tuple the model returns; the only output
  in export mode) ``(N, 4 + nc, A) float32``: rows 0-3 are the box centre
  ``cx, cy`` and size ``w, h`` in input pixels, rows ``4:`` the per-class scores
  after the sigmoid, for ``A = (S/8)² + (S/16)² + (S/32)²`` anchor points.

RT-DETR (:mod:`cv.models.rtdetr`) is brought to the same contract, one column
per object query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from cv.models.registry import register_model

if TYPE_CHECKING:
    import torch


def build_yolo(
    cfg: str, *, num_classes: int, seed: int | None = 0, class_names: Sequence[str] | None = None
) -> torch.nn.Module:
    """Builds an ultralytics ``DetectionModel`` from its YAML name (see
    :func:`cv.models.ultra.build_from_yaml` for the arguments)."""
    from cv.models.ultra import build_from_yaml, detection_model_class

    return build_from_yaml(
        detection_model_class(), cfg, num_classes=num_classes, seed=seed, class_names=class_names
    )


@register_model("yolo11n")
def yolo11n(
    *, num_classes: int, seed: int | None = 0, class_names: Sequence[str] | None = None
) -> torch.nn.Module:
    """YOLO11 nano (2.6 M parameters, 6.5 GFLOPs at 640 px)."""
    return build_yolo("yolo11n.yaml", num_classes=num_classes, seed=seed, class_names=class_names)


@register_model("yolo11s")
def yolo11s(
    *, num_classes: int, seed: int | None = 0, class_names: Sequence[str] | None = None
) -> torch.nn.Module:
    """YOLO11 small (9.4 M parameters, 21.5 GFLOPs at 640 px)."""
    return build_yolo("yolo11s.yaml", num_classes=num_classes, seed=seed, class_names=class_names)


@register_model("yolov8n")
def yolov8n(
    *, num_classes: int, seed: int | None = 0, class_names: Sequence[str] | None = None
) -> torch.nn.Module:
    """YOLOv8 nano (3.0 M parameters, 8.7 GFLOPs at 640 px), the common baseline."""
    return build_yolo("yolov8n.yaml", num_classes=num_classes, seed=seed, class_names=class_names)
