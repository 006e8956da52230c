"""Synthetic CCTV data: re-ID crops, multi-camera sequences, person detection scenes.

Everything is drawn with NumPy and OpenCV from a seed; the same seed gives the same
bytes whatever the number of worker processes, because every image draws from its
own ``SeedSequence`` of the run's seed and its index.

* :func:`generate_reid_dataset` writes re-ID crops in the Market-1501 layout that
  :func:`cv.datasets.reid.read_market1501` reads. Training identities are seen only
  by the training cameras; query and gallery hold other identities, seen only by
  the remaining (held-out) cameras, plus distractors (pid ``0000``) and junk crops
  (pid ``-1``) in the gallery, as in Market-1501.
* :func:`generate_sequences` writes short multi-camera videos with ground-truth
  tracks, a scene description and enrolment crops for a watch-list.
* :func:`generate_person_detection` writes camera frames with and without people as
  a YOLO + COCO dataset with the single class ``person``.

The people (:mod:`cv.datasets.cctv_people`), the cameras
(:mod:`cv.datasets.cctv_camera`), the crops (:mod:`cv.datasets.cctv_crops`) and the
scenes (:mod:`cv.datasets.cctv_scenes`) each live in their own module.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cv.datasets.cctv_camera import Camera, camera_for
from cv.datasets.cctv_crops import render_crop, render_junk
from cv.datasets.cctv_people import VIEWS, Identity, View, make_identities, make_identity
from cv.datasets.cctv_run import (
    GENERATOR_VERSION,
    prepare_out,
    resolve_workers,
    run_jobs,
    tool_version,
)
from cv.datasets.cctv_scenes import (
    generate_person_detection,
    generate_sequences,
    render_scene_crop,
)
from cv.errors import ConfigError

__all__ = [
    "GENERATOR_VERSION",
    "MARKET_FOLDERS",
    "REID_SOURCES",
    "generate_person_detection",
    "generate_reid_dataset",
    "generate_sequences",
    "market_name",
    "render_person",
]

MARKET_FOLDERS = ("bounding_box_train", "query", "bounding_box_test")
"""The Market-1501 folders :func:`generate_reid_dataset` writes."""

REID_SOURCES = ("crops", "scenes", "mixed")
"""How :func:`generate_reid_dataset` draws a person crop: at crop scale
(:func:`~cv.datasets.cctv_crops.render_crop`), cut out of a camera frame
(:func:`~cv.datasets.cctv_scenes.render_scene_crop`), or each crop either way."""

_MAX_CAMERAS = 9  # Market-1501 names hold the camera as one digit (c1..c9)
_MAX_PID = 9999  # and the person id as four


def market_name(pid: int, camera: int, frame: int, box: int = 1, sequence: int = 1) -> str:
    """A Market-1501 file name, ``pppp_cXsY_ffffff_bb.jpg`` (junk is ``-1_...``)."""
    p = "-1" if pid < 0 else f"{pid:04d}"
    return f"{p}_c{camera}s{sequence}_{frame:06d}_{box:02d}.jpg"


def render_person(
    identity: Identity,
    view: View,
    rng: np.random.Generator,
    *,
    size: tuple[int, int] = (256, 128),
    camera: Camera | None = None,
) -> NDArray[np.uint8]:
    """A crop of ``identity`` seen from ``view``.

    Args:
        identity: Who (see :func:`cv.datasets.cctv_people.make_identity`).
        view: One of :data:`~cv.datasets.cctv_people.VIEWS`.
        rng: Source of the pose, placement and camera noise.
        size: ``(height, width)`` in pixels.
        camera: The camera that sees them, with its background, occluders and
            degradation; by default a clean drawing on a neutral background.

    Returns:
        ``(height, width, 3) uint8`` RGB.
    """
    if view not in VIEWS:
        raise ConfigError(f"view must be one of {', '.join(VIEWS)}, got {view!r}", field="view")
    if camera is None:
        neutral = camera_for(0, 0, quality="enrol")
        return render_crop(
            identity, neutral, rng, size=size, view=view, occlusion=False, effects=False
        )
    return render_crop(identity, camera, rng, size=size, view=view)


# ------------------------------------------------------------------ re-ID crops


@dataclass(frozen=True, slots=True)
class _CropJob:
    index: int
    seed: int
    path: str
    kind: str  # "person", "distractor" or "junk"
    identity: Identity | None
    camera: Camera
    size: tuple[int, int]
    source: str = "crops"


def _crop_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, 505, index]).generate_state(1)[0])


def _run_crop(job: _CropJob) -> None:
    from cv.image import write_image

    rng = np.random.default_rng(job.seed)
    if job.kind == "junk":
        img = render_junk(job.camera, rng, size=job.size)
    else:
        ident = job.identity if job.identity is not None else make_identity(0, rng)
        scene = job.source == "scenes" or (job.source == "mixed" and rng.random() < 0.5)
        if scene:
            img = render_scene_crop(ident, job.camera, rng)
        else:
            img = render_crop(ident, job.camera, rng, size=job.size)
    quality = int(np.clip(job.camera.jpeg_quality + rng.integers(-5, 6), 30, 98))
    write_image(job.path, img, jpeg_quality=quality)


def generate_reid_dataset(
    out: str | PathLike[str],
    *,
    identities: int = 1000,
    train_identities: int | None = None,
    cameras: int = 8,
    train_cameras: int = 4,
    images_per_camera: int = 4,
    size: tuple[int, int] = (256, 128),
    distractors: int | None = None,
    junk: int | None = None,
    derived: float = 0.3,
    source: str = "crops",
    seed: int = 0,
    workers: int = 0,
    overwrite: bool = False,
    progress: bool | None = True,
) -> Path:
    """Writes a synthetic re-ID dataset in the Market-1501 layout.

    Identities ``1 .. train_identities`` are seen only by cameras
    ``1 .. train_cameras`` and go to ``bounding_box_train/``; the other identities are
    seen only by the remaining cameras. Each identity is seen by 2 or more cameras of
    its group (all of them at most), ``images_per_camera`` crops each. Of a test
    identity's crops in one camera, the first is a query and the rest go to the
    gallery (with a single crop per camera, the first camera's crop is the query), so
    every query has a true match in another camera. Distractors (pid ``0000``, each
    crop a person of its own) and junk crops (pid ``-1``: background, a torso too
    close, a person too small) join the gallery.

    Files are ``pppp_cXs1_ffffff_01.jpg`` with the frame number unique in the run;
    ``manifest.json`` holds the options, seed, cameras, identities and counts.

    Args:
        out: Output folder (created).
        identities: Number of identities (train + test), at most 9999.
        train_identities: Identities for training; by default half.
        cameras: Number of cameras, 3 .. 9.
        train_cameras: Cameras seen in training (``1 .. train_cameras``); at least
            two cameras must be left for query and gallery.
        images_per_camera: Crops per identity and camera.
        size: ``(height, width)`` of a crop.
        distractors: Distractor crops in the gallery; by default 10 % of the
            gallery's identity crops.
        junk: Junk crops in the gallery; by default 2 % of them.
        derived: Share of identities that are look-alikes of an earlier one.
        source: ``crops``: people drawn at crop scale, ``size`` each; ``scenes``:
            people cut out of camera frames by a detector-like box, at the size they
            had in the frame (36-300 pixels tall), as the CCTV pipeline sees them;
            ``mixed``: each crop one way or the other, even odds (enrolment photos
            against camera cut-outs). Junk crops are drawn at crop scale.
        seed: Seed of the run.
        workers: Worker processes; 0 means one per CPU core, 1 runs in this process.
        overwrite: Replace an earlier dataset in ``out``.
        progress: Show a progress bar; ``None`` shows it when stderr is a terminal.

    Returns:
        ``out``, the dataset root.

    Raises:
        ConfigError: If an option is out of range, or ``out`` holds a dataset and
            ``overwrite`` is false.
    """
    t0 = time.perf_counter()
    n_train = identities // 2 if train_identities is None else train_identities
    _check_reid_options(
        identities, n_train, cameras, train_cameras, images_per_camera, size, derived
    )
    if source not in REID_SOURCES:
        raise ConfigError(
            f"source must be one of {', '.join(REID_SOURCES)}, got {source!r}", field="source"
        )
    n_workers = resolve_workers(workers)
    out = Path(out)
    prepare_out(out, (*MARKET_FOLDERS, "manifest.json"), overwrite=overwrite)
    h, w = int(size[0]), int(size[1])

    people = make_identities(identities, seed, derived=derived)
    cams = [camera_for(seed, k) for k in range(1, cameras + 1)]
    train_cams = list(range(1, train_cameras + 1))
    test_cams = list(range(train_cameras + 1, cameras + 1))

    # (folder, pid, camera, kind, identity) per crop, in a fixed order.
    plan: list[tuple[str, int, int, str, Identity | None]] = []
    seen: dict[int, list[int]] = {}
    for ident in people:
        train = ident.pid <= n_train
        group = train_cams if train else test_cams
        rng = np.random.default_rng(np.random.SeedSequence([seed, 404, ident.pid]))
        k = int(rng.integers(min(2, len(group)), len(group) + 1))
        chosen = sorted(int(c) for c in rng.choice(group, size=k, replace=False))
        seen[ident.pid] = chosen
        for j, cam in enumerate(chosen):
            for i in range(images_per_camera):
                if train:
                    folder = "bounding_box_train"
                elif images_per_camera > 1:
                    folder = "query" if i == 0 else "bounding_box_test"
                else:
                    folder = "query" if j == 0 else "bounding_box_test"
                plan.append((folder, ident.pid, cam, "person", ident))
    gallery = sum(1 for p in plan if p[0] == "bounding_box_test")
    n_distractors = round(0.1 * gallery) if distractors is None else distractors
    n_junk = round(0.02 * gallery) if junk is None else junk
    if n_distractors < 0 or n_junk < 0:
        raise ConfigError("distractors and junk must be >= 0", field="distractors")
    extra = np.random.default_rng(np.random.SeedSequence([seed, 406]))
    for kind, n, pid in (("distractor", n_distractors, 0), ("junk", n_junk, -1)):
        for cam in extra.choice(test_cams, size=n).tolist():
            plan.append(("bounding_box_test", pid, int(cam), kind, None))
    if len(plan) > 999_999:
        raise ConfigError(
            f"{len(plan)} crops do not fit Market-1501's six-digit frame numbers; "
            "use fewer identities or images per camera",
            field="identities",
        )

    for folder in MARKET_FOLDERS:
        (out / folder).mkdir(parents=True, exist_ok=True)
    jobs = [
        _CropJob(
            index=i,
            seed=_crop_seed(seed, i),
            path=str(out / folder / market_name(pid, cam, i + 1)),
            kind=kind,
            identity=ident,
            camera=cams[cam - 1],
            size=(h, w),
            source=source,
        )
        for i, (folder, pid, cam, kind, ident) in enumerate(plan)
    ]
    run_jobs(jobs, _run_crop, workers=n_workers, label="rendering re-ID crops", show=progress)

    counts: dict[str, dict[str, int]] = {}
    for folder in MARKET_FOLDERS:
        rows = [p for p in plan if p[0] == folder]
        counts[folder] = {
            "images": len(rows),
            "ids": len({p[1] for p in rows if p[1] > 0}),
            "cameras": len({p[2] for p in rows}),
            "distractors": sum(1 for p in rows if p[1] == 0),
            "junk": sum(1 for p in rows if p[1] < 0),
        }
    seconds = time.perf_counter() - t0
    manifest = {
        "tool": "customs-vision reid synth",
        "version": tool_version(),
        "generator_version": GENERATOR_VERSION,
        "layout": "market1501",
        "options": {
            "identities": identities,
            "train_identities": n_train,
            "cameras": cameras,
            "train_cameras": train_cameras,
            "images_per_camera": images_per_camera,
            "size": [h, w],
            "distractors": n_distractors,
            "junk": n_junk,
            "derived": derived,
            "source": source,
            "seed": seed,
            "workers": n_workers,
        },
        "seed": seed,
        "train_cameras": train_cams,
        "test_cameras": test_cams,
        "counts": counts,
        "seconds": round(seconds, 3),
        "crops_per_second": round(len(plan) / max(seconds, 1e-9), 1),
        "cameras": [c.to_dict() for c in cams],
        "identities": [{**p.summary(), "cameras": seen[p.pid]} for p in people],
        "views": list(VIEWS),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return out


def _check_reid_options(
    identities: int,
    n_train: int,
    cameras: int,
    train_cameras: int,
    images_per_camera: int,
    size: tuple[int, int],
    derived: float,
) -> None:
    if not 2 <= identities <= _MAX_PID:
        raise ConfigError(
            f"identities must lie in 2..{_MAX_PID}, got {identities}", field="identities"
        )
    if not 1 <= n_train < identities:
        raise ConfigError(
            f"train identities must lie in 1..{identities - 1} (some must be left for testing), "
            f"got {n_train}",
            field="train_identities",
        )
    if not 3 <= cameras <= _MAX_CAMERAS:
        raise ConfigError(
            f"cameras must lie in 3..{_MAX_CAMERAS} (Market-1501 names hold one digit), got {cameras}",
            field="cameras",
        )
    if not 1 <= train_cameras <= cameras - 2:
        raise ConfigError(
            f"train cameras must lie in 1..{cameras - 2}: at least two held-out cameras are "
            f"needed for query and gallery, got {train_cameras} of {cameras}",
            field="train_cameras",
        )
    if images_per_camera < 1:
        raise ConfigError(
            f"images per camera must be >= 1, got {images_per_camera}", field="images_per_camera"
        )
    if len(size) != 2 or min(size) < 32:
        raise ConfigError(
            f"crop size (height, width) must be at least 32 x 32, got {size}", field="size"
        )
    if not 0.0 <= derived < 1.0:
        raise ConfigError(f"derived share must lie in [0, 1), got {derived}", field="derived")
