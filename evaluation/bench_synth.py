"""Benchmark of synthetic scan generation (not a timed test)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

TARGET_IMAGES_PER_S = 40.0
"""Target at 640 × 640 on a 2-core machine, PNG encoding and labels included."""


def bench_synth(n_images: int = 200, size: int = 640, workers: int = 2) -> dict[str, float]:
    """Generates ``n_images`` scans into a temporary folder and times it end to end.

    Returns:
        ``images``, ``seconds``, ``images_per_s``, ``ms_per_image_per_worker`` and
        ``ratio_to_target`` (images/s over :data:`TARGET_IMAGES_PER_S`).
    """
    from cv.datasets.synth import generate

    with tempfile.TemporaryDirectory(prefix="cv-bench-synth-") as tmp:
        t0 = time.perf_counter()
        generate(
            Path(tmp),
            n_images=n_images,
            size=(size, size),
            workers=workers,
            seed=0,
            show_progress=False,
        )
        seconds = time.perf_counter() - t0
    rate = n_images / seconds
    return {
        "images": n_images,
        "seconds": seconds,
        "images_per_s": rate,
        "ms_per_image_per_worker": 1000.0 * seconds * workers / n_images,
        "ratio_to_target": rate / TARGET_IMAGES_PER_S,
    }
