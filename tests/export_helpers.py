"""Plain helpers for the export tests: a tiny untrained detector that still detects.

Test modules import it as ``import export_helpers`` (``tests/conftest.py`` puts the
tests folder on ``sys.path``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ["gun", "knife", "scissors"]
"""Classes of :func:`detecting_tiny_model`."""


def sample_images() -> list[np.ndarray]:
    """Three random RGB images of different shapes (a seeded generator: always the same)."""
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for w, h in [(100, 50), (64, 64), (40, 90)]
    ]


def detecting_tiny_model(d: Path) -> Path:
    """A tiny yolo11n (:data:`CLASSES`, 64 px) at ``d`` whose class-1 bias is raised so
    that, untrained, it still makes detections to compare; exported with FP16.

    An untrained network's head sees near-zero features, so its scores take one
    value per pyramid level (the class bias): candidates of one level tie exactly,
    and float rounding may order them either way in NMS.
    """
    import torch

    from cv.models.export import export_onnx
    from cv.models.load import build_torch_model, init_model_dir, save_model

    init_model_dir(d, architecture="yolo11n", classes=CLASSES, input_size=64)
    model, record = build_torch_model(d)
    with torch.no_grad():
        # Class 1 scores sigmoid(0.0 / 0.3 / 0.7) = 0.50 / 0.57 / 0.67 at strides
        # 8 / 16 / 32; the other classes far below: no ties between classes.
        for seq, b1 in zip(model.model[-1].cv3, (0.0, 0.3, 0.7), strict=True):
            seq[-1].bias.copy_(torch.tensor([-3.0, b1, -1.0]))
    save_model(model, record, d)
    export_onnx(d, half=True)
    return d
