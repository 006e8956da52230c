"""``customs-vision reid synth``: synthetic CCTV data.

Writes, under ``--out``: ``reid/`` (re-ID crops in the Market-1501 layout, train
cameras and held-out cameras), ``sequences/`` with ``--sequences`` (multi-camera
videos with ground-truth tracks and enrolment crops) and ``person-detection/`` with
``--detection N`` (frames with people as a YOLO + COCO dataset, class ``person``).
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from cv.cli.reid import app
from cv.errors import ConfigError
from cv.log import console
from cv.settings import get_settings


def _say(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True)


def _size(value: str, field: str) -> tuple[int, int]:
    """``"256x128"`` or ``"256,128"`` -> ``(256, 128)``."""
    parts = [v.strip() for v in value.replace("x", ",").split(",") if v.strip()]
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ConfigError(f"expected AxB such as 256x128, got {value!r}", field=field)
    return int(parts[0]), int(parts[1])


@app.command("synth")
def synth(
    out: Path = typer.Option(
        ..., "--out", help="Output folder (reid/, sequences/, person-detection/)."
    ),
    crops: bool = typer.Option(
        True, "--crops/--no-crops", help="Write re-ID crops (Market-1501 layout) to OUT/reid."
    ),
    identities: int = typer.Option(1000, "--identities", min=2, help="Identities, train + test."),
    train_identities: int = typer.Option(
        0, "--train-identities", min=0, help="Identities for training; 0: half."
    ),
    cameras: int = typer.Option(8, "--cameras", min=3, max=9, help="Cameras of the re-ID crops."),
    train_cameras: int = typer.Option(
        4, "--train-cameras", min=1, help="Cameras seen in training; the others are held out."
    ),
    images_per_camera: int = typer.Option(
        4, "--images-per-camera", min=1, help="Crops per identity and camera."
    ),
    size: str = typer.Option("256x128", "--size", help="Crop HEIGHTxWIDTH."),
    source: str = typer.Option(
        "crops",
        "--source",
        help="How people are drawn: crops (at crop scale), scenes (cut out of camera "
        "frames, as the CCTV pipeline sees them) or mixed (each crop either way).",
    ),
    distractors: int = typer.Option(
        -1, "--distractors", min=-1, help="Distractor crops (pid 0000); -1: 10 % of the gallery."
    ),
    junk: int = typer.Option(
        -1, "--junk", min=-1, help="Junk crops (pid -1); -1: 2 % of the gallery."
    ),
    sequences: bool = typer.Option(
        False,
        "--sequences",
        help="Also write multi-camera videos with ground truth to OUT/sequences.",
    ),
    seq_cameras: int = typer.Option(2, "--seq-cameras", min=1, help="Cameras of the sequences."),
    seconds: float = typer.Option(20.0, "--seconds", min=0.1, help="Length of each video."),
    fps: int = typer.Option(10, "--fps", min=1, max=120, help="Frames per second of the videos."),
    frame_size: str = typer.Option("640x360", "--frame-size", help="Video WIDTHxHEIGHT."),
    people: int = typer.Option(12, "--people", min=1, help="People walking through the sequences."),
    enrol: int = typer.Option(
        4, "--enrol", min=0, help="Identities of the sequences with enrolment crops."
    ),
    detection: int = typer.Option(
        0,
        "--detection",
        min=0,
        help="Also write N frames with people as a detection dataset to OUT/person-detection.",
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same bytes."),
    workers: int = typer.Option(
        0, "--workers", min=0, help="Worker processes; 0: settings (CV_WORKERS), else one per core."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace earlier output in OUT."),
) -> None:
    """Generate synthetic CCTV data: re-ID crops, multi-camera sequences, person detection."""
    import json

    from cv.datasets.cctv import (
        generate_person_detection,
        generate_reid_dataset,
        generate_sequences,
    )

    if not (crops or sequences or detection):
        raise ConfigError("nothing to write: drop --no-crops, or add --sequences or --detection N")
    n_workers = workers or get_settings().resolved_workers()

    if crops:
        t0 = time.perf_counter()
        root = generate_reid_dataset(
            out / "reid",
            identities=identities,
            train_identities=train_identities or None,
            cameras=cameras,
            train_cameras=train_cameras,
            images_per_camera=images_per_camera,
            size=_size(size, "size"),
            source=source,
            distractors=None if distractors < 0 else distractors,
            junk=None if junk < 0 else junk,
            seed=seed,
            workers=n_workers,
            overwrite=overwrite,
            progress=None,
        )
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        tr, q, g = (
            manifest["counts"][k] for k in ("bounding_box_train", "query", "bounding_box_test")
        )
        _say(
            f"re-ID crops (Market-1501) in {root}: train {tr['ids']} ids / {tr['images']} crops "
            f"(cameras {manifest['train_cameras']}); query {q['images']}, gallery {g['images']} "
            f"(held-out cameras {manifest['test_cameras']}; {g['distractors']} distractors, "
            f"{g['junk']} junk; source {source}); {manifest['crops_per_second']:.0f} crops/s, "
            f"{time.perf_counter() - t0:.1f} s"
        )
    if sequences:
        t0 = time.perf_counter()
        root = generate_sequences(
            out / "sequences",
            cameras=seq_cameras,
            seconds=seconds,
            fps=fps,
            size=_size(frame_size, "frame_size"),
            people=people,
            enrol=min(enrol, people),
            seed=seed,
            workers=n_workers,
            overwrite=overwrite,
            progress=None,
        )
        scene = json.loads((root / "scene.json").read_text(encoding="utf-8"))
        multi = sum(1 for i in scene["identities"] if len(i["visits"]) > 1)
        _say(
            f"sequences in {root}: {len(scene['cameras'])} videos x {scene['frames']} frames at {fps} fps "
            f"({', '.join(c['video'] for c in scene['cameras'])}), "
            f"{sum(c['boxes'] for c in scene['cameras'])} ground-truth boxes, "
            f"{multi} people in several cameras, {len(scene['enrolled'])} enrolled (enrol/); "
            f"{time.perf_counter() - t0:.1f} s"
        )
    if detection:
        t0 = time.perf_counter()
        data_yaml = generate_person_detection(
            out / "person-detection",
            images=detection,
            seed=seed,
            workers=n_workers,
            overwrite=overwrite,
            progress=None,
        )
        manifest = json.loads((data_yaml.parent / "manifest.json").read_text(encoding="utf-8"))
        c = manifest["counts"]
        _say(
            f"person detection (YOLO + COCO) in {data_yaml.parent}, train from {data_yaml}: "
            f"{detection} frames ({', '.join(f'{k} {v}' for k, v in c['images_per_split'].items() if v)}), "
            f"{c['boxes']} people, {c['empty_images']} empty frames; {time.perf_counter() - t0:.1f} s"
        )
