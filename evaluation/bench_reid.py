"""Benchmark of the CCTV re-identification path (not a timed test).

In one process, on this machine, after a warm-up, three figures, each as a ratio
to its target from issue #6:

(a) **embedding throughput**: person crops per second through the light embedder
    (``osnet_x0_25``, ONNX Runtime, 256 × 128 input), resizing and normalisation
    included; target :data:`TARGET_CROPS_PER_S`;
(b) **watch-list search latency**: p50 / p99 of one query against
    :data:`DEFAULT_ENTRIES` entries
    (:func:`cv.evaluation.bench_reid_search.bench_search`); target p99 at most
    :data:`TARGET_SEARCH_P99_MS`;
(c) **end to end**: a synthetic sequence of several cameras at 10 fps
    (:func:`cv.datasets.cctv.generate_sequences`) decoded from its MP4 files and
    processed frame by frame (detection, tracking, embedding, watch-list matching)
    with the cameras' frames batched together (:class:`cv.models.cctv.MultiCameraPipeline`);
    the real-time factor is the seconds of video (per camera, all cameras at once)
    processed per wall second; target at least :data:`TARGET_REALTIME`. Tracking
    quality against the ground truth (IDF1, :func:`idf1`) is reported with it.

Speed does not depend on the weights, so where a shipped model is missing
``untrained=True`` builds an untrained one of the same architecture; the result
says which models ran.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cv.errors import NotFoundError

log = logging.getLogger(__name__)

TARGET_CROPS_PER_S = 300.0
TARGET_SEARCH_P99_MS = 5.0
TARGET_REALTIME = 1.0
DEFAULT_ENTRIES = 100_000
LIGHT_ARCHITECTURE = "osnet_x0_25"
DETECTOR_INPUT = 320
"""Input side of the untrained stand-in person detector (the shipped one's)."""

Box = tuple[float, float, float, float]


# --------------------------------------------------------------------------- tracking quality


def read_mot(path: str | Path) -> dict[int, list[tuple[int, Box]]]:
    """Reads a MOT ``gt.txt`` / results file: frame -> ``[(id, xyxy)]``.

    Lines are ``frame,id,x,y,w,h,...`` with 1-based frames and top-left boxes.

    Raises:
        NotFoundError: If the file does not exist.
        DataFormatError: If a line is not numbers (the line is named).
    """
    from cv.errors import DataFormatError

    p = Path(path)
    if not p.is_file():
        raise NotFoundError("MOT file does not exist", path=p)
    out: dict[int, list[tuple[int, Box]]] = {}
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            f, i, x, y, w, h = (float(v) for v in line.split(",")[:6])
        except ValueError:
            raise DataFormatError("expected frame,id,x,y,w,h,...", path=p, line=n) from None
        out.setdefault(int(f), []).append((int(i), (x, y, x + w, y + h)))
    return out


def _iou_matrix(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def idf1(
    gt: Mapping[int, Sequence[tuple[int, Box]]],
    pred: Mapping[int, Sequence[tuple[int, Box]]],
    *,
    iou: float = 0.5,
) -> dict[str, float]:
    """Identity F1 (Ristani et al. 2016) and detection recall / precision of tracks.

    Each ground-truth identity is matched to at most one predicted track (and the
    other way round) so that the frames in which the two overlap with IoU at or
    above ``iou`` are as many as possible (linear assignment); IDF1 is twice those
    frames over all ground-truth plus all predicted boxes.

    Args:
        gt: frame -> ``[(identity, xyxy)]``.
        pred: frame -> ``[(track id, xyxy)]`` (same frame numbering).
        iou: Overlap at which a predicted box covers a ground-truth box.

    Returns:
        ``idf1``, ``idp``, ``idr``, ``recall`` and ``precision`` (per-frame
        one-to-one box matching, identities ignored), ``gt_ids``, ``pred_ids``,
        ``gt_boxes``, ``pred_boxes``.
    """
    from scipy.optimize import linear_sum_assignment

    gids = sorted({i for v in gt.values() for i, _ in v})
    pids = sorted({i for v in pred.values() for i, _ in v})
    gi = {g: k for k, g in enumerate(gids)}
    pi = {p: k for k, p in enumerate(pids)}
    overlap = np.zeros((len(gids), len(pids)))
    n_gt = sum(len(v) for v in gt.values())
    n_pred = sum(len(v) for v in pred.values())
    tp = 0
    for f, g_items in gt.items():
        p_items = pred.get(f, [])
        if not g_items or not p_items:
            continue
        m = _iou_matrix(
            np.array([b for _, b in g_items], dtype=np.float64),
            np.array([b for _, b in p_items], dtype=np.float64),
        )
        ok = m >= iou
        for r, c in zip(*np.nonzero(ok), strict=True):
            overlap[gi[g_items[r][0]], pi[p_items[c][0]]] += 1
        rows, cols = linear_sum_assignment(-m)
        tp += int(np.sum(m[rows, cols] >= iou))
    idtp = 0.0
    if overlap.size:
        rows, cols = linear_sum_assignment(-overlap)
        idtp = float(overlap[rows, cols].sum())
    total = n_gt + n_pred
    return {
        "idf1": 2 * idtp / total if total else 0.0,
        "idp": idtp / n_pred if n_pred else 0.0,
        "idr": idtp / n_gt if n_gt else 0.0,
        "recall": tp / n_gt if n_gt else 0.0,
        "precision": tp / n_pred if n_pred else 0.0,
        "gt_ids": len(gids),
        "pred_ids": len(pids),
        "gt_boxes": n_gt,
        "pred_boxes": n_pred,
    }


# --------------------------------------------------------------------------- models


def untrained_detector_dir(out_dir: Path, *, input_size: int = DETECTOR_INPUT) -> Path:
    """An exported, untrained ``yolo11n`` person detector (class ``person``)."""
    from cv.models.export import export_onnx
    from cv.models.load import init_model_dir

    init_model_dir(out_dir, architecture="yolo11n", classes=["person"], input_size=input_size)
    export_onnx(out_dir)
    return out_dir


def untrained_embedder_dir(out_dir: Path, *, architecture: str = LIGHT_ARCHITECTURE) -> Path:
    """An exported, untrained re-ID embedder (256 × 128 input)."""
    from cv.models.reid import init_embedder_dir

    return init_embedder_dir(out_dir, architecture=architecture, export=True)


def resolve_models(
    detector_dir: Path | None,
    embedder_dir: Path | None,
    *,
    untrained: bool,
    work_dir: Path,
) -> tuple[Path, Path, list[str]]:
    """The detector and embedder directories to time, and notes on what stands in.

    Raises:
        NotFoundError: If a model is missing and ``untrained`` is false.
    """
    from cv.models.cctv import default_detector_dir, default_embedder_dir

    notes: list[str] = []
    det = detector_dir or default_detector_dir()
    emb = embedder_dir or default_embedder_dir()
    if not (det / "model.json").is_file() or not (det / "model.onnx").is_file():
        if not untrained:
            raise NotFoundError(
                "no exported person detector here; give --detector or --untrained", path=det
            )
        notes.append(
            f"no person detector at {det}: an untrained yolo11n at {DETECTOR_INPUT} px ran"
        )
        det = untrained_detector_dir(work_dir / "detector")
    if not (emb / "model.json").is_file() or not (emb / "model.onnx").is_file():
        if not untrained:
            raise NotFoundError(
                "no exported re-ID embedder here; give --embedder or --untrained", path=emb
            )
        notes.append(f"no re-ID embedder at {emb}: an untrained {LIGHT_ARCHITECTURE} ran")
        emb = untrained_embedder_dir(work_dir / "embedder")
    return det, emb, notes


# --------------------------------------------------------------------------- (a) embedding


def bench_embedding(
    embedder_dir: Path,
    *,
    crops: int = 512,
    batch: int = 32,
    warmup: int = 1,
    repeats: int = 3,
    runtime: str = "onnx",
    precision: str = "f32",
) -> dict[str, Any]:
    """Crops/s of an embedder (ONNX Runtime by default, or OpenVINO with ``runtime``,
    ``precision``), resizing and normalising included.

    The crops are person-like images of 96-320 px height (several sizes, as a
    detector gives them), embedded ``batch`` at a time; the median of ``repeats``
    timed passes is reported (a shared machine's other work spreads single passes).
    """
    from cv.models.reid import load_embedder, parity_crops

    emb = load_embedder(embedder_dir, runtime=runtime, precision=precision)  # type: ignore[arg-type]
    pool = parity_crops(min(crops, 64), seed=1)
    data = [pool[i % len(pool)] for i in range(crops)]
    for _ in range(warmup):
        emb.embed(data[: max(batch, 8)], batch=batch)
    passes = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        emb.embed(data, batch=batch)
        passes.append(time.perf_counter() - t0)
    dt = float(np.median(passes))
    rate = crops / dt
    h, w = emb.input_hw
    return {
        "architecture": emb.record.architecture,
        "runtime": emb.label,
        "input": f"{h}×{w}",
        "dim": emb.dim,
        "crops": crops,
        "batch": batch,
        "seconds": dt,
        "passes_s": passes,
        "crops_per_s": rate,
        "ms_per_crop": 1000 * dt / crops,
        "target": TARGET_CROPS_PER_S,
        "ratio": rate / TARGET_CROPS_PER_S,
    }


# --------------------------------------------------------------------------- (b) search


def bench_watchlist(
    dim: int, *, entries: int = DEFAULT_ENTRIES, queries: int = 1000, backend: str = "auto"
) -> dict[str, Any]:
    """p50 / p99 of one watch-list search (:func:`cv.evaluation.bench_reid_search.bench_search`)."""
    from cv.evaluation.bench_reid_search import bench_search

    doc = dict(bench_search(n=entries, dim=dim, queries=queries, backend=backend))  # type: ignore[arg-type]
    p99 = float(doc["p99_ms"])
    doc["entries"] = entries
    doc["target_p99_ms"] = TARGET_SEARCH_P99_MS
    doc["ratio"] = TARGET_SEARCH_P99_MS / p99 if p99 > 0 else float("inf")
    return doc


# --------------------------------------------------------------------------- (c) pipeline


def _camera_folders(root: Path) -> list[tuple[Path, Path | None]]:
    """(video, gt.txt or None) per camera of a generated sequence folder, sorted."""
    videos = sorted(root.rglob("cam*.mp4"))
    if not videos:
        raise NotFoundError("no cam*.mp4 videos in the generated sequence", path=root)
    out = []
    for v in videos:
        gt = v.parent / v.stem / "gt.txt"  # cam<k>.mp4 and cam<k>/gt.txt
        out.append((v, gt if gt.is_file() else None))
    return out


def enrol_folder(root: Path) -> Path | None:
    """The generator's watch-list enrolment folder (``enrol/<pid>/*.jpg``), if any."""
    for cand in sorted(root.rglob("enrol")):
        if cand.is_dir() and any(p.is_dir() for p in cand.iterdir()):
            return cand
    return None


def bench_pipeline(
    detector_dir: Path,
    embedder_dir: Path,
    *,
    sequence_dir: Path,
    threshold: float | None = None,
    max_frames: int | None = None,
    runtime: str = "onnx",
    precision: str = "f32",
) -> dict[str, Any]:
    """Processes a generated multi-camera sequence end to end, all cameras batched.

    Args:
        detector_dir: The person detector (exported).
        embedder_dir: The re-ID embedder (exported).
        sequence_dir: Output of :func:`cv.datasets.cctv.generate_sequences`.
        threshold: Watch-list match threshold; the embedder's calibrated one, else 0.5.
        max_frames: Stop after this many frames per camera.
        runtime: What runs both networks: ``onnx`` or ``openvino``.
        precision: With ``openvino``: ``f32``, ``bf16`` or ``auto``.

    Returns:
        Frames per camera, wall time, real-time factor, milliseconds per step (one
        frame of every camera) and stage (``ms_per_frame``), crops embedded, tracks,
        sightings, and IDF1 against the ground truth.
    """
    from cv.models.cctv import MultiCameraPipeline, VideoReader, WatchlistMatcher, load_watchlist
    from cv.models.load import load_detector
    from cv.models.reid import load_embedder

    det = load_detector(
        detector_dir,
        spin_wait=False,
        max_batch=8,
        runtime=runtime,  # type: ignore[arg-type]
        precision=precision,  # type: ignore[arg-type]
    )
    emb = load_embedder(
        embedder_dir,
        spin_wait=False,
        runtime=runtime,  # type: ignore[arg-type]
        precision=precision,  # type: ignore[arg-type]
    )
    cams = _camera_folders(sequence_dir)
    matcher = None
    enrol = enrol_folder(sequence_dir)
    entries = 0
    if enrol is not None:
        index, labels = load_watchlist(enrol, emb)
        entries = len(labels)
        thr = threshold if threshold is not None else emb.record.thresholds.get("match")
        # Uncalibrated (an untrained stand-in): matching still runs, at an arbitrary 0.5.
        matcher = WatchlistMatcher(index, threshold=0.5 if thr is None else thr, labels=labels)
    ids = [v.stem for v, _ in cams]
    readers = [VideoReader(v) for v, _ in cams]
    fps = readers[0].fps
    multi = MultiCameraPipeline(ids, detector=det, embedder=emb, matcher=matcher, fps=fps)
    # Warm-up on a black frame (session start-up is not what is measured).
    warm = MultiCameraPipeline(["warm"], detector=det, embedder=emb, fps=fps)
    warm.process("warm", np.zeros((readers[0].height, readers[0].width, 3), np.uint8), 0.0)
    pred: dict[str, dict[int, list[tuple[int, Box]]]] = {i: {} for i in ids}
    frames = 0
    sightings = 0
    found: list[tuple[str, int, str, Box]] = []  # camera, frame, entry label, box
    crops = 0
    decode_s = 0.0
    iters = [iter(r) for r in readers]
    t0 = time.perf_counter()
    try:
        while max_frames is None or frames < max_frames:
            td = time.perf_counter()
            batch = []
            for cid, it in zip(ids, iters, strict=True):
                f = next(it, None)
                if f is not None:
                    batch.append((cid, f, frames / fps))
            decode_s += time.perf_counter() - td
            if not batch:
                break
            frames += 1
            for r in multi.process_batch(batch):
                crops += r.embedded
                sightings += len(r.sightings)
                found += [(r.camera_id, frames, sg.label, sg.box) for sg in r.sightings]
                pred[r.camera_id][frames] = [(tb.track_id, tb.box) for tb in r.tracks]
    finally:
        for r in readers:
            r.close()
    wall = time.perf_counter() - t0
    tracks = multi.finished_tracks(flush=True)
    video_s = frames / fps
    per_frame = {k: 1000 * v / max(frames, 1) for k, v in multi.timings.items()}
    per_frame = {"decode": 1000 * decode_s / max(frames, 1), **per_frame}
    doc: dict[str, Any] = {
        "cameras": len(ids),
        "runtime": emb.label,
        "fps": fps,
        "frames": frames,
        "video_s": video_s,
        "wall_s": wall,
        "realtime_factor": video_s / wall if wall > 0 else float("inf"),
        "ms_per_frame": per_frame,
        "crops_embedded": crops,
        "tracks": len(tracks),
        "watchlist_entries": entries,
        "sightings": sightings,
        "idf1": None,
    }
    per_cam = {}
    for (_, gt_path), cid in zip(cams, ids, strict=True):
        if gt_path is None:
            continue
        gt = {f: v for f, v in read_mot(gt_path).items() if f <= frames}
        per_cam[cid] = idf1(gt, pred[cid])
    if per_cam:
        gt_n = sum(m["gt_boxes"] for m in per_cam.values())
        pr_n = sum(m["pred_boxes"] for m in per_cam.values())
        idtp = sum(m["idr"] * m["gt_boxes"] for m in per_cam.values())
        doc["idf1"] = 2 * idtp / (gt_n + pr_n) if gt_n + pr_n else 0.0
        doc["tracking"] = per_cam
        if enrol is not None:
            gts = {cid: read_mot(g) for (_, g), cid in zip(cams, ids, strict=True) if g}
            doc["watchlist"] = sighting_quality(found, gts, enrolled=labels, frames=frames)
    return doc


def sighting_quality(
    found: list[tuple[str, int, str, Box]],
    gt: dict[str, dict[int, list[tuple[int, Box]]]],
    *,
    enrolled: dict[str, str],
    frames: int,
    iou: float = 0.5,
) -> dict[str, Any]:
    """How right the watch-list sightings of a generated sequence were.

    A sighting is *correct* when the ground-truth person under its box (IoU ≥
    ``iou`` in that frame) is the enrolled person it names (entry labels are the
    generator's zero-padded pids); each (camera, enrolled person) that walked through
    a camera is a *visit*, *found* when a correct sighting of it was raised there.

    Args:
        found: ``(camera, frame, entry label, box)`` per sighting (frames 1-based).
        gt: Camera -> frame -> ``[(pid, box)]`` (:func:`read_mot`).
        enrolled: Entry key -> label, the watch list.
        frames: Frames processed per camera (later ground truth is not counted).
        iou: Overlap at which a sighting's box is the ground-truth person's.
    """
    pids = {int(label) for label in enrolled.values() if label.isdigit()}
    correct = wrong = 0
    hit: set[tuple[str, int]] = set()
    for cam, frame, label, box in found:
        people = gt.get(cam, {}).get(frame, [])
        under = None
        if people:
            ious = _iou_matrix(np.array([box], float), np.array([b for _, b in people], float))[0]
            j = int(np.argmax(ious))
            under = people[j][0] if ious[j] >= iou else None
        if label.isdigit() and under == int(label):
            correct += 1
            hit.add((cam, under))
        else:
            wrong += 1
    visits = {
        (cam, pid)
        for cam, by_frame in gt.items()
        for f, people in by_frame.items()
        if f <= frames
        for pid, _ in people
        if pid in pids
    }
    return {
        "entries": len(enrolled),
        "sightings": len(found),
        "correct": correct,
        "wrong": wrong,
        "visits": len(visits),
        "visits_found": len(visits & hit),
    }


def bench_reid(
    *,
    detector_dir: Path | None = None,
    embedder_dir: Path | None = None,
    untrained: bool = False,
    crops: int = 512,
    batch: int = 32,
    entries: int = DEFAULT_ENTRIES,
    queries: int = 1000,
    backend: str = "auto",
    cameras: int = 2,
    fps: int = 10,
    seconds: float = 20.0,
    people: int = 6,
    seed: int = 0,
    parts: Sequence[str] = ("a", "b", "c"),
    work_dir: Path | None = None,
    runtime: str = "onnx",
    precision: str = "f32",
) -> dict[str, Any]:
    """Runs the three parts of the benchmark (see the module docstring).

    Args:
        detector_dir: Person detector; the shipped one by default.
        embedder_dir: Re-ID embedder; the shipped one by default.
        untrained: Build untrained stand-ins for missing models instead of failing.
        crops: (a) crops embedded.
        batch: (a) crops per network run.
        entries: (b) watch-list entries.
        queries: (b) searches timed.
        backend: (b) index backend.
        cameras: (c) cameras.
        fps: (c) frames per second.
        seconds: (c) seconds of video per camera.
        people: (c) people per sequence.
        seed: (c) generator seed.
        parts: Which of ``a``, ``b``, ``c`` to run.
        work_dir: Where generated models and sequences go (a temporary folder by default).
        runtime: What runs the networks in (a) and (c): ``onnx`` (the issue's
            baseline) or ``openvino``.
        precision: With ``openvino``: ``f32``, ``bf16`` or ``auto``.

    Returns:
        ``embedding``, ``search``, ``pipeline`` (those run), ``models`` and ``notes``.
    """
    from cv.models.weights import read_record

    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-reid-")
        work_dir = Path(tmp.name)
    try:
        det, emb, notes = resolve_models(
            detector_dir, embedder_dir, untrained=untrained, work_dir=work_dir
        )
        result: dict[str, Any] = {
            "models": {"detector": str(det), "embedder": str(emb)},
            "notes": notes,
        }
        if "a" in parts:
            light = emb
            arch = read_record(emb, verify=False).architecture
            if arch != LIGHT_ARCHITECTURE:
                notes.append(
                    f"(a) times the light {LIGHT_ARCHITECTURE} (untrained; speed does not "
                    f"depend on the weights), not the {arch} given"
                )
                light = untrained_embedder_dir(work_dir / "light-embedder")
            result["embedding"] = bench_embedding(
                light, crops=crops, batch=batch, runtime=runtime, precision=precision
            )
        if "b" in parts:
            result["search"] = bench_watchlist(
                _embedder_dim(emb), entries=entries, queries=queries, backend=backend
            )
        if "c" in parts:
            from cv.datasets.cctv import generate_sequences

            seq = work_dir / "sequences"
            generate_sequences(
                seq,
                cameras=cameras,
                seconds=seconds,
                fps=int(fps),
                people=people,
                enrol=min(4, people),
                seed=seed,
                progress=None,
            )
            result["pipeline"] = bench_pipeline(
                det, emb, sequence_dir=seq, runtime=runtime, precision=precision
            )
        return result
    finally:
        if tmp is not None:
            tmp.cleanup()


def _embedder_dim(model_dir: Path) -> int:
    from cv.models.reid import load_embedder

    return load_embedder(model_dir, runtime="onnx").dim
