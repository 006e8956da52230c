"""Benchmark of dataset conversion: COCO JSON -> our model -> YOLO labels + COCO.

The target is 100,000 annotations in under 10 s on a 2-core machine, so that a
whole public dataset converts in about the time it takes to read its files.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

_CLASSES = ("gun", "knife", "scissors", "power_bank", "lighter")


def build_coco_fixture(
    folder: Path,
    *,
    n_annotations: int,
    per_image: int,
    width: int = 640,
    height: int = 480,
    seed: int = 0,
) -> Path:
    """Writes a COCO file of ``n_annotations`` random boxes and its (tiny) images.

    Every image is a hard link to one small PNG (a copy where links are not
    possible): the benchmark times annotation handling, not image bytes.

    Returns:
        The COCO JSON path.
    """
    from cv.image import write_image

    n_images = -(-n_annotations // per_image)
    img_dir = folder / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    proto = write_image(folder / "proto.png", np.zeros((8, 8), dtype=np.uint8))
    for i in range(n_images):
        target = img_dir / f"{i:07d}.png"
        try:
            os.link(proto, target)
        except OSError:
            target.write_bytes(proto.read_bytes())
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, width - 60, n_annotations)
    y = rng.uniform(0, height - 60, n_annotations)
    w = rng.uniform(4, 60, n_annotations)
    h = rng.uniform(4, 60, n_annotations)
    cat = rng.integers(1, len(_CLASSES) + 1, n_annotations)
    doc: dict[str, Any] = {
        "images": [
            {"id": i + 1, "file_name": f"images/{i:07d}.png", "width": width, "height": height}
            for i in range(n_images)
        ],
        "annotations": [
            {
                "id": k + 1,
                "image_id": k // per_image + 1,
                "category_id": int(cat[k]),
                "bbox": [float(x[k]), float(y[k]), float(w[k]), float(h[k])],
                "area": float(w[k] * h[k]),
                "iscrowd": 0,
            }
            for k in range(n_annotations)
        ],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(_CLASSES)],
    }
    path = folder / "instances_train.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def bench_convert(
    n_annotations: int = 100_000,
    *,
    per_image: int = 10,
    target_s: float = 10.0,
    workdir: Path | None = None,
) -> dict[str, float | int]:
    """Times reading a COCO file into our model and writing YOLO + COCO from it.

    Args:
        n_annotations: Annotations in the generated COCO file.
        per_image: Annotations per image.
        target_s: The time to beat, in seconds.
        workdir: Folder for the files; a temporary one (removed after) by default.

    Returns:
        ``annotations``, ``images``, ``read_s``, ``yolo_s``, ``coco_s``, ``seconds``
        (the three together), ``annotations_per_s``, ``target_s`` and
        ``ratio_to_target`` (seconds / target; below 1 meets it).
    """
    from cv.datasets.formats import read_coco, write_coco, write_yolo

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        folder = Path(tmp)
        src = build_coco_fixture(folder / "src", n_annotations=n_annotations, per_image=per_image)
        t0 = time.perf_counter()
        dataset = read_coco(src)
        t1 = time.perf_counter()
        write_yolo(dataset, folder / "yolo", images="symlink")
        t2 = time.perf_counter()
        write_coco(dataset, folder / "out" / "instances_train.json")
        t3 = time.perf_counter()
        n_images = len(dataset.images)
    seconds = t3 - t0
    return {
        "annotations": n_annotations,
        "images": n_images,
        "read_s": t1 - t0,
        "yolo_s": t2 - t1,
        "coco_s": t3 - t2,
        "seconds": seconds,
        "annotations_per_s": n_annotations / seconds,
        "target_s": target_s,
        "ratio_to_target": seconds / target_s,
    }
