"""RT-DETR builders, made by ultralytics from their YAML (never downloaded).

RT-DETR (Zhao et al., CVPR 2024) is a transformer detector: a CNN backbone, a
hybrid encoder and a decoder whose ``Q`` object queries each predict one box and
its class scores; it is trained with a bipartite matching loss and needs no NMS.
It is here for researchers who compare detector families on the X-ray datasets;
its ~33 M parameters train far too slowly on a 2-core CPU to be the default.

Each builder returns ultralytics' ``RTDETRDetectionModel`` with freshly initialised
weights. In eval mode its decoder returns ``(top_k, raw)``; the detectors' common
tensor contract (:mod:`cv.models.yolo`) is made from ``raw`` by
:func:`cv.models.runtime.raw_head_output`: ``(N, 4 + nc, Q)`` with the boxes'
``cx, cy, w, h`` in input pixels and the per-class scores after the sigmoid, one
column per query (``Q = min(300, encoder tokens)``). The runtimes then decode
them like YOLO's anchors; their class-aware NMS rarely finds anything to remove
in a set prediction, and keeps the contract one for every model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from cv.models.registry import register_model

if TYPE_CHECKING:
    import torch

DETR_MODELS: frozenset[str] = frozenset({"rtdetr-l"})
"""Registered names whose training needs ultralytics' RT-DETR trainer (its loss and
validator)."""


def is_detr(name: str) -> bool:
    """Whether the registered model ``name`` is an RT-DETR."""
    return name in DETR_MODELS


@register_model("rtdetr-l")
def rtdetr_l(
    *, num_classes: int, seed: int | None = 0, class_names: Sequence[str] | None = None
) -> torch.nn.Module:
    """RT-DETR-L (HGNetv2 backbone, 33 M parameters, about 100 GFLOPs at 640 px); the
    arguments as :func:`cv.models.ultra.build_from_yaml`."""
    from cv.models.ultra import build_from_yaml, rtdetr_model_class

    return build_from_yaml(
        rtdetr_model_class(),
        "rtdetr-l.yaml",
        num_classes=num_classes,
        seed=seed,
        class_names=class_names,
    )
