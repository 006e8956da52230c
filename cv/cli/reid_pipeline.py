"""``customs-vision reid run``, ``train person``, ``eval person`` and ``bench reid``.

``reid run`` sends a video file or an RTSP stream through the per-camera pipeline
(person detection, tracking, re-ID embedding, watch-list matching) and writes an
annotated MP4 and the sightings. ``train person`` trains the person detector and
``eval person`` measures its COCO AP on a person dataset; ``bench reid`` measures embedding throughput, watch-list search latency and the
end-to-end real-time factor of two cameras.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cv.cli.bench import app as bench_app
from cv.cli.eval import app as eval_app
from cv.cli.reid import app
from cv.cli.train import app as train_app

if TYPE_CHECKING:
    from cv.models.reid import Embedder
    from cv.models.runtime import Detector


def load_models(
    detector_dir: Path | None, embedder_dir: Path | None, *, runtime: str = "onnx"
) -> tuple[Detector, Embedder]:
    """The person detector and the re-ID embedder (the shipped ones by default).

    ONNX Runtime threads do not spin between runs: the two sessions take turns on
    the same cores, and a spinning idle pool would slow the other one down.

    Raises:
        NotFoundError: If a model directory is missing (the shipped default included).
    """
    from cv.models.cctv import default_detector_dir, default_embedder_dir
    from cv.models.load import load_detector
    from cv.models.reid import load_embedder

    det = load_detector(
        detector_dir or default_detector_dir(),
        runtime=runtime,  # type: ignore[arg-type]
        spin_wait=False,
        max_batch=4,
    )
    emb = load_embedder(embedder_dir or default_embedder_dir(), runtime=runtime, spin_wait=False)
    return det, emb


@app.command("run")
def run(
    video: str = typer.Argument(..., help="Video file (MP4, AVI...) or stream URL (rtsp://...)."),
    camera: str = typer.Option(..., "--camera", help="Camera id the video comes from."),
    detector: Path | None = typer.Option(
        None,
        "--detector",
        help="Person detector model directory (default: models/zoo/person-yolo11n).",
    ),
    embedder: Path | None = typer.Option(
        None, "--embedder", help="Re-ID embedder model directory (default: models/zoo/reid-osnet)."
    ),
    watchlist: Path | None = typer.Option(
        None,
        "--watchlist",
        help="Folder of <label>/*.jpg person crops, one entry per label; none: tracks only.",
    ),
    threshold: float | None = typer.Option(
        None,
        "--threshold",
        min=-1.0,
        max=1.0,
        help="Match threshold (cosine similarity) (default: the embedder's calibrated 'match').",
    ),
    out: Path | None = typer.Option(None, "--out", help="Write the annotated MP4 here."),
    sightings: Path | None = typer.Option(
        None, "--sightings", help="Write the sightings JSON here (frames and crops beside it)."
    ),
    tracker: str = typer.Option("bytetrack", "--tracker", help="bytetrack or botsort."),
    fps: float | None = typer.Option(
        None,
        "--fps",
        min=0.1,
        help="Frame rate when the source does not say (default: the video's).",
    ),
    max_frames: int | None = typer.Option(
        None, "--max-frames", min=1, help="Stop after this many frames (streams run until cut)."
    ),
    runtime: str = typer.Option("onnx", "--runtime", help="onnx or torch."),
) -> None:
    """Run a video or stream through the CCTV pipeline: tracks, watch-list sightings, annotated video.

    A sighting is a candidate for an inspector to confirm, never a decision.
    """
    from rich.table import Table

    from cv.errors import ConfigError
    from cv.log import console, progress
    from cv.models.cctv import VideoReader, WatchlistMatcher, load_watchlist, run_video

    if tracker not in ("bytetrack", "botsort"):
        raise ConfigError(f"unknown tracker {tracker!r}; use bytetrack or botsort", field="tracker")
    # Open the source first: a wrong path fails before the models load.
    with VideoReader(video, fps=fps) as probe:
        total = probe.frame_count
    det, emb = load_models(detector, embedder, runtime=runtime)
    matcher = None
    if watchlist is not None:
        index, labels = load_watchlist(watchlist, emb)
        matcher = WatchlistMatcher.for_embedder(index, emb, threshold=threshold, labels=labels)
        console.print(
            f"watch-list: {len(labels)} entries ({len(index)} vectors), "
            f"threshold {matcher.threshold:.3f}",
            highlight=False,
        )
    elif threshold is not None:
        raise ConfigError("--threshold needs --watchlist", field="threshold")
    if max_frames is not None and total is not None:
        total = min(total, max_frames)

    with progress() as bar:
        task = bar.add_task(f"camera {camera}", total=total)

        def on_frame(result: Any) -> None:
            bar.advance(task)
            for s in result.sightings:
                console.print(
                    f"[bold red]candidate sighting[/] {s.label} on camera {s.camera_id} "
                    f"track {s.track_id} at {s.time:.1f} s (similarity {s.similarity:.3f})",
                    highlight=False,
                )

        result = run_video(
            video,
            camera_id=camera,
            detector=det,
            embedder=emb,
            matcher=matcher,
            out_video=out,
            sightings_path=sightings,
            fps=fps,
            max_frames=max_frames,
            tracker_kind=tracker,
            on_frame=on_frame,
        )

    table = Table(title=f"camera {camera}: {video}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("frames", f"{result.frames} at {result.fps:g} fps")
    table.add_row("video time", f"{result.video_seconds:.1f} s")
    table.add_row("wall time", f"{result.wall_seconds:.1f} s")
    table.add_row("real-time factor", f"{result.realtime_factor:.2f}×")
    table.add_row("tracks", str(len(result.tracks)))
    table.add_row("sightings (candidates)", str(len(result.sightings)))
    if result.out_video:
        table.add_row("annotated video", str(result.out_video))
    if result.sightings_path:
        table.add_row("sightings", str(result.sightings_path))
    console.print(table)
    if result.sightings:
        st = Table(title="candidate sightings (to be confirmed by an inspector)")
        for col in ("entry", "track", "time s", "similarity"):
            st.add_column(col)
        for s in result.sightings:
            st.add_row(s.label, str(s.track_id), f"{s.time:.1f}", f"{s.similarity:.3f}")
        console.print(st)


@train_app.command("person")
def train_person_command(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Experiment YAML (training/configs/person-*.yaml); options override it.",
    ),
    data: Path | None = typer.Option(
        None, "--data", help="A dataset with a 'person' class (YOLO data.yaml / folder, COCO)."
    ),
    synth_images: int | None = typer.Option(
        None, "--synth-images", min=1, help="Train on N generated synthetic CCTV scenes."
    ),
    synth_seed: int | None = typer.Option(None, "--synth-seed", help="Seed of the synthetic set."),
    synth_size: int | None = typer.Option(
        None, "--synth-size", min=64, help="Side of the synthetic scenes in pixels."
    ),
    model: str | None = typer.Option(None, "--model", help="Registered model (default yolo11n)."),
    imgsz: int | None = typer.Option(None, "--imgsz", min=32, help="Input side (default 320)."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Epochs (default 100)."),
    batch: int | None = typer.Option(None, "--batch", min=1, help="Batch size (default 16)."),
    workers: int | None = typer.Option(None, "--workers", min=0, help="Data-loader workers."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, 0 or 0,1."),
    seed: int | None = typer.Option(None, "--seed", help="Training seed (default 0)."),
    name: str | None = typer.Option(None, "--name", help="Run name (default person)."),
    out: Path | None = typer.Option(None, "--out", help="Folder of runs (default runs/train)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run OUT/NAME."),
) -> None:
    """Train the CCTV person detector (YOLO through ultralytics, class 'person'), offline."""
    from cv.cli.train import resume_config, show_detector_run
    from cv.errors import ConfigError
    from cv.training.config import apply_overrides
    from cv.training.person import load_person_config, person_config, train_person

    synth_given = any(v is not None for v in (synth_images, synth_seed, synth_size))
    if data is not None and synth_given:
        raise ConfigError("give --data or --synth-* options, not both", field="data")
    overrides: dict[str, object] = {
        "data": data,
        "synth.images": synth_images,
        "synth.seed": synth_seed,
        "synth.size": synth_size,
        "model": model,
        "imgsz": imgsz,
        "epochs": epochs,
        "batch": batch,
        "workers": workers,
        "device": device,
        "seed": seed,
        "name": name,
        "out": out,
    }
    if resume:
        config, overrides = resume_config(config, overrides, out=out, name=name or "person")
    if config is not None:
        cfg = load_person_config(config, overrides=overrides)
    else:
        cfg = person_config(apply_overrides({}, overrides))
    command = "customs-vision " + shlex.join(sys.argv[1:]) if sys.argv else None
    result = train_person(cfg, resume=resume, command=command)
    show_detector_run(cfg.model, cfg.run_dir, result)


@eval_app.command("person")
def eval_person_command(
    model: Path = typer.Option(..., "--model", help="Person detector model directory."),
    data: Path = typer.Option(
        ..., "--data", help="YOLO person dataset: its data.yaml (e.g. `reid synth --detection`)."
    ),
    split: str = typer.Option("test", "--split", help="train, val, test or all."),
    runtime: str = typer.Option("onnx", "--runtime", help="onnx or torch."),
    batch: int = typer.Option(8, "--batch", min=1, help="Images per network run."),
    save_metrics: str | None = typer.Option(
        None, "--save-metrics", help="Store the figures in the model's model.json under this name."
    ),
) -> None:
    """Evaluate a person detector: COCO AP, AP50, AP75 and recalls on a person dataset."""
    from rich.table import Table

    from cv.errors import ConfigError
    from cv.log import console
    from cv.models.load import load_record
    from cv.models.weights import write_record
    from cv.training.person import evaluate_person

    if split not in ("train", "val", "test", "all"):
        raise ConfigError(f"unknown split {split!r}; use train, val, test or all", field="split")
    if runtime not in ("onnx", "torch"):
        raise ConfigError(f"unknown runtime {runtime!r}; use onnx or torch", field="runtime")
    figures = evaluate_person(model, data, split=split, runtime=runtime, batch=batch)
    table = Table(
        title=f"person detection: {figures['images']} images, {figures['objects']} people"
    )
    keys = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR100")
    for k in keys:
        table.add_column(k, justify="right")
    table.add_row(*(f"{figures[k]:.3f}" if figures.get(k) is not None else "n/a" for k in keys))
    console.print(table)
    if save_metrics:
        record = load_record(model)
        record.metrics[save_metrics] = figures
        write_record(record, model)
        console.print(f"saved the figures as {save_metrics!r} to {model}/model.json")


@bench_app.command("reid")
def bench_reid_command(
    detector: Path | None = typer.Option(
        None, "--detector", help="Person detector (default: models/zoo/person-yolo11n)."
    ),
    embedder: Path | None = typer.Option(
        None, "--embedder", help="Re-ID embedder (default: models/zoo/reid-osnet)."
    ),
    untrained: bool = typer.Option(
        False,
        "--untrained",
        help="Use untrained models of the same architectures where a shipped one is missing "
        "(yolo11n at 320 px, osnet_x0_25 at 256×128), so the bench always runs.",
    ),
    crops: int = typer.Option(512, min=1, help="(a) crops embedded."),
    batch: int = typer.Option(32, min=1, help="(a) embedding batch size."),
    entries: int = typer.Option(100_000, min=1, help="(b) watch-list entries."),
    queries: int = typer.Option(1000, min=1, help="(b) searches timed one by one."),
    backend: str = typer.Option("auto", help="(b) index backend: auto, faiss or exact."),
    cameras: int = typer.Option(2, min=1, max=16, help="(c) cameras."),
    fps: int = typer.Option(10, min=1, max=120, help="(c) frames per second of each camera."),
    seconds: float = typer.Option(20.0, min=1.0, help="(c) seconds of video per camera."),
    people: int = typer.Option(6, min=1, help="(c) people walking through each sequence."),
    seed: int = typer.Option(0, help="(c) seed of the synthetic sequences."),
    skip: str = typer.Option("", help="Parts to skip, comma separated (a, b, c)."),
    runtime: str = typer.Option("onnx", help="(a), (c): what runs the networks, onnx or openvino."),
    precision: str = typer.Option("f32", help="With --runtime openvino: f32, bf16 or auto."),
    out: Path | None = typer.Option(None, "--out", help="Write the figures as JSON here."),
) -> None:
    """Re-ID speed: (a) embedding crops/s, (b) watch-list search p50/p99, (c) 2-camera real time."""
    from rich.table import Table

    from cv.evaluation.bench_reid import (
        TARGET_CROPS_PER_S,
        TARGET_REALTIME,
        TARGET_SEARCH_P99_MS,
        bench_reid,
    )
    from cv.log import console

    skipped = {s.strip().lower() for s in skip.split(",") if s.strip()}
    result = bench_reid(
        detector_dir=detector,
        embedder_dir=embedder,
        untrained=untrained,
        crops=crops,
        batch=batch,
        entries=entries,
        queries=queries,
        backend=backend,
        cameras=cameras,
        fps=fps,
        seconds=seconds,
        people=people,
        seed=seed,
        parts=tuple(p for p in ("a", "b", "c") if p not in skipped),
        runtime=runtime,
        precision=precision,
    )
    table = Table(title="bench reid (this machine, CPU)")
    for col in ("figure", "measured", "target", "ratio"):
        table.add_column(col, justify="right" if col != "figure" else "left")
    if "embedding" in result:
        e = result["embedding"]
        table.add_row(
            f"(a) embed {e['architecture']}, {e['runtime']}, {e['input']}",
            f"{e['crops_per_s']:.0f} crops/s",
            f"≥ {TARGET_CROPS_PER_S} crops/s",
            f"{e['ratio']:.2f}×",
        )
    if "search" in result:
        s = result["search"]
        table.add_row(
            f"(b) search {s['entries']:,} entries, {s.get('kind', s.get('backend', '?'))}",
            f"p50 {s['p50_ms']:.2f}, p99 {s['p99_ms']:.2f} ms",
            f"p99 ≤ {TARGET_SEARCH_P99_MS} ms",
            f"{s['ratio']:.2f}×",
        )
    if "pipeline" in result:
        p = result["pipeline"]
        table.add_row(
            f"(c) {p['cameras']} cameras × {p['fps']:g} fps, end to end, {p['runtime']}",
            f"{p['realtime_factor']:.2f}× real time",
            f"≥ {TARGET_REALTIME}×",
            f"{p['realtime_factor'] / TARGET_REALTIME:.2f}×",
        )
    console.print(table)
    if "pipeline" in result:
        p = result["pipeline"]
        console.print(
            f"(c) {p['frames']} frames per camera in {p['wall_s']:.1f} s; per step (one "
            "frame of every camera): "
            + ", ".join(f"{k} {v:.1f} ms" for k, v in p["ms_per_frame"].items())
            + f"; {p['crops_embedded']} crops embedded, {p['tracks']} tracks, "
            f"{p['sightings']} sightings"
            + (f", IDF1 {p['idf1']:.3f}" if p.get("idf1") is not None else ""),
            highlight=False,
        )
        w = p.get("watchlist")
        if w:
            console.print(
                f"(c) watch list of {w['entries']}: {w['sightings']} sightings, {w['correct']} of "
                f"the right person, {w['wrong']} wrong; enrolled people found in "
                f"{w['visits_found']} of their {w['visits']} camera visits",
                highlight=False,
            )
    for note in result.get("notes", []):
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
        console.print(f"wrote {out}")
