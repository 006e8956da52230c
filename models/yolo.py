"""YOLO detector builders, made by ultralytics from their YAML (never downloaded).

Each builder returns ultralytics' ``DetectionModel`` with freshly initialised
weights. Its tensor contract, in eval mode:

* input ``(N, 3, S, S) float32`` in ``[0, 1]``, RGB, ``S`` a multiple of 32;
* output (the first element of the tuple the model returns; the only output
  in export mode) ``(N, 4 + nc, A) float32``: rows 0-3 are the box centre
  ``cx, cy`` and size ``w, h`` in input pixels, rows ``4:`` the per-class scores
  after the sigmoid, for ``A = (S/8)² + (S/16)² + (S/32)²`` anchor points.

RT-DETR is not registered: its head gives ``(N, queries, 4 + nc)`` normalised
boxes (another decoder) and its training on this 2-core CPU is far too slow to
be a default.
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
    """Builds an ultralytics ``DetectionModel`` from its YAML name.

    Args:
        cfg: ultralytics model YAML name (``yolo11n.yaml``); the scale letter in
            the name picks the width and depth.
        num_classes: Number of classes ``nc``.
        seed: Seed of the weight initialisation; the same seed gives the same
            weights. ``None`` uses torch's global generator as it stands.
        class_names: Names stored on the model (``model.names``); by default
            ``"0"``, ``"1"``, ...

    Raises:
        ValueError: If ``class_names`` does not have ``num_classes`` entries.
    """
    import torch

    from cv.models.ultra import detection_model_class, model_yaml

    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    model_cls = detection_model_class()
    if seed is None:
        model = model_cls(model_yaml(cfg), nc=num_classes, verbose=False)
    else:
        # A private generator state: building a model must not move the caller's RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = model_cls(model_yaml(cfg), nc=num_classes, verbose=False)
    if class_names is not None:
        model.names = dict(enumerate(class_names))
    return model


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
