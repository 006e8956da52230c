"""Shared set-up of the tests that really train an X-ray detector (tiny runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cv.training.config import XrayTrainConfig


def tiny_xray_config(
    root: Path, *, model: str, imgsz: int, name: str, **extra: Any
) -> XrayTrainConfig:
    """One epoch on 12 synthetic 128 px scans (8 train, 4 val) on the CPU, under ``root``.

    Args:
        root: Folder for the synthetic cache and the run.
        model: Registered architecture.
        imgsz: Network input side.
        name: Run name.
        **extra: Further config fields (``augment``, ...).
    """
    return XrayTrainConfig(
        model=model,
        synth={"images": 12, "size": 128, "seed": 0, "workers": 1, "splits": [0.67, 0.33, 0]},
        synth_cache=root / "cache",
        imgsz=imgsz,
        epochs=1,
        batch=4,
        workers=0,
        cache="ram",
        device="cpu",
        out=root / "runs",
        name=name,
        **extra,
    )
