"""The CCTV pipeline: tracks on a generated sequence, watch-list sightings, video in and out,
bad input, the CLI, and the IDF1 used by ``bench reid``.

Models are real: the shipped person detector (ONNX) for tracking quality, tiny
untrained networks from the registered builders elsewhere.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from cv.cli import main
from cv.errors import ConfigError, DataFormatError, DataValidationError, NotFoundError
from cv.evaluation.bench_reid import idf1, read_mot
from cv.models.cctv import (
    CameraPipeline,
    MultiCameraPipeline,
    TrackSummary,
    WatchlistMatcher,
    default_detector_dir,
    load_watchlist,
    run_video,
)
from cv.models.gallery import VectorIndex

SECONDS = 5
FPS = 10


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sequence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two cameras, 5 s at 10 fps, 640 × 360, eight people, enrolment crops."""
    from cv.datasets.cctv import generate_sequences

    out = tmp_path_factory.mktemp("seq") / "seq"
    return generate_sequences(
        out,
        cameras=2,
        seconds=SECONDS,
        fps=FPS,
        people=8,
        enrol=2,
        enrol_absent=1,
        enrol_images=2,
        seed=3,
        workers=1,
        progress=False,
    )


@pytest.fixture(scope="module")
def detector():
    from cv.models.load import load_detector

    return load_detector(default_detector_dir(), spin_wait=False)


@pytest.fixture(scope="module")
def embedder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped re-ID embedder (ONNX); an exported untrained osnet_x0_25 without it.

    The pipeline's tests need an embedder's speed and contract, not its accuracy.
    """
    from cv.models.reid import default_model_dir, export_reid_onnx, init_embedder_dir, parity_crops

    shipped = default_model_dir()
    if (shipped / "model.json").is_file() and (shipped / "model.onnx").is_file():
        return shipped
    d = init_embedder_dir(tmp_path_factory.mktemp("emb") / "osnet", num_ids=4)
    export_reid_onnx(d, parity_images=parity_crops(2))
    return d


@pytest.fixture(scope="module")
def embedder(embedder_dir: Path):
    from cv.models.reid import load_embedder

    return load_embedder(embedder_dir, spin_wait=False)


def _frames(video: Path, n: int | None = None) -> list[np.ndarray]:
    from cv.models.cctv import VideoReader

    out = []
    with VideoReader(video) as r:
        for f in r:
            out.append(f.copy())
            if n is not None and len(out) >= n:
                break
    return out


def _summary(cam: str, tid: int, vec: np.ndarray, n: int = 3) -> TrackSummary:
    v = (vec / np.linalg.norm(vec)).astype(np.float32)
    return TrackSummary(
        camera_id=cam,
        track_id=tid,
        first_time=0.0,
        last_time=1.0,
        frames=n,
        embedding=v,
        embeddings=n,
        best_crop=np.zeros((8, 4, 3), np.uint8),
        best_box=(0, 0, 4, 8),
        best_time=0.5,
        best_quality=1.0,
        last_box=(1, 2, 5, 10),
    )


# ----------------------------------------------------------------------------- matcher


def test_matcher_one_sighting_per_entry_camera_track_and_none_below() -> None:
    rng = np.random.default_rng(0)
    entries = rng.normal(size=(3, 16)).astype(np.float32)
    entries /= np.linalg.norm(entries, axis=1, keepdims=True)
    index = VectorIndex(16, backend="exact")
    index.add(["alice", "bob", "carol"], entries)
    m = WatchlistMatcher(index, threshold=0.8, labels={"alice": "Entry A"})
    near_a = entries[0] + 0.1 * rng.normal(size=16).astype(np.float32)
    far = rng.normal(size=16).astype(np.float32)
    frame = np.full((20, 20, 3), 7, np.uint8)

    first = m.match([_summary("c1", 1, near_a), _summary("c1", 2, far)], frame=frame, time=4.0)
    assert [(s.entry_key, s.camera_id, s.track_id, s.label) for s in first] == [
        ("alice", "c1", 1, "Entry A")
    ]
    s = first[0]
    assert s.similarity >= 0.8 and s.time == 4.0 and s.box == (1, 2, 5, 10)
    assert s.frame is not None and s.frame is not frame and s.crop is not None
    assert s.to_dict()["label"] == "Entry A" and "frame" not in s.to_dict()
    # Once per (entry, camera, track): again nothing; another track or camera: again one.
    assert m.match([_summary("c1", 1, near_a)]) == []
    assert len(m.match([_summary("c1", 3, near_a)])) == 1
    assert len(m.match([_summary("c2", 1, near_a)])) == 1
    assert m.best_match("c1", 1)[0] == "alice" and m.best_match("c1", 2) is None
    # A track with fewer averaged crops than asked for waits.
    strict = WatchlistMatcher(index, threshold=0.8, min_embeddings=5)
    assert strict.match([_summary("c1", 1, near_a, n=3)]) == []
    # Nothing at or above a threshold no one reaches.
    assert WatchlistMatcher(index, threshold=0.999).match([_summary("c1", 9, near_a)]) == []
    # An empty watch-list matches nothing.
    assert WatchlistMatcher(VectorIndex(16), threshold=0.1).match([_summary("c", 1, far)]) == []


def test_matcher_threshold_comes_from_the_embedder(embedder) -> None:
    index = VectorIndex(embedder.dim, backend="exact")
    saved = dict(embedder.record.thresholds)
    try:
        embedder.record.thresholds.pop("match", None)
        with pytest.raises(ConfigError, match="no calibrated 'match' threshold"):
            WatchlistMatcher.for_embedder(index, embedder)
        embedder.record.thresholds["match"] = 0.61
        assert WatchlistMatcher.for_embedder(index, embedder).threshold == pytest.approx(0.61)
        assert WatchlistMatcher.for_embedder(index, embedder, threshold=0.3).threshold == 0.3
        with pytest.raises(ConfigError, match="8-d vectors"):
            WatchlistMatcher.for_embedder(VectorIndex(8), embedder)
    finally:
        embedder.record.thresholds.clear()
        embedder.record.thresholds.update(saved)
    with pytest.raises(ConfigError, match="threshold"):
        WatchlistMatcher(index, threshold=1.5)


# ----------------------------------------------------------------------------- pipeline


def test_tracks_follow_the_ground_truth_of_a_generated_sequence(sequence, detector, embedder):
    """The shipped person detector + ByteTrack: IDF1 and box recall against gt.txt."""
    gt: dict[int, list] = {}
    pred: dict[int, list] = {}
    done = []
    for k, cam in enumerate(("cam1", "cam2")):
        pipe = CameraPipeline(cam, detector=detector, embedder=embedder, fps=FPS)
        for i, frame in enumerate(_frames(sequence / f"{cam}.mp4")):
            r = pipe.process(frame, i / FPS)
            assert r.frame_index == i + 1
            # Frames of the two cameras kept apart; ids made distinct per camera.
            pred[1000 * k + i + 1] = [(100 * k + tb.track_id, tb.box) for tb in r.tracks]
        for f, items in read_mot(sequence / cam / "gt.txt").items():
            gt[1000 * k + f] = [(100 * k + g, b) for g, b in items]
        done += pipe.finished_tracks(flush=True)
        assert pipe.live_tracks() == []
    m = idf1(gt, pred)
    assert m["gt_boxes"] > 150
    assert m["recall"] >= 0.9, m
    assert m["idf1"] >= 0.9, m
    assert done and all(s.finished for s in done)
    with_emb = [s for s in done if s.embedding is not None]
    assert with_emb
    for s in with_emb:
        assert abs(float(np.linalg.norm(s.embedding)) - 1) < 1e-4
        assert s.best_crop is not None and s.best_crop.dtype == np.uint8
        assert s.first_time <= s.best_time <= s.last_time


def test_batched_cameras_match_separate_runs_and_sightings_come_once(
    sequence, detector, embedder
) -> None:
    frames1 = _frames(sequence / "cam1.mp4", 25)
    frames2 = _frames(sequence / "cam2.mp4", 25)
    index, labels = load_watchlist(sequence / "enrol", embedder)
    # Threshold -1: every embedded track matches every entry, exactly once each.
    matcher = WatchlistMatcher(index, threshold=-1.0, labels=labels, k=len(labels))
    multi = MultiCameraPipeline(["cam1", "cam2"], detector=detector, embedder=embedder)
    solo = CameraPipeline("cam1", detector=detector, embedder=embedder)
    sightings = []
    for i, (a, b) in enumerate(zip(frames1, frames2, strict=True)):
        ra, _ = multi.process_batch([("cam1", a, i / FPS), ("cam2", b, i / FPS)])
        rs = solo.process(a, i / FPS)
        # Batch 2 and batch 1 may differ in float rounding, not in tracks.
        assert [t.track_id for t in ra.tracks] == [t.track_id for t in rs.tracks]
        if ra.tracks:
            boxes = np.array([t.box for t in ra.tracks]), np.array([t.box for t in rs.tracks])
            assert np.allclose(*boxes, atol=0.1)
    # The same frames again through a matcher-equipped pipeline.
    with_m = MultiCameraPipeline(
        ["cam1", "cam2"], detector=detector, embedder=embedder, matcher=matcher
    )
    for i, (a, b) in enumerate(zip(frames1, frames2, strict=True)):
        for r in with_m.process_batch([("cam1", a, i / FPS), ("cam2", b, i / FPS)]):
            sightings += r.sightings
            for tb in r.tracks:
                assert (tb.entry_key is None) == (tb.similarity is None)
    keys = [(s.entry_key, s.camera_id, s.track_id) for s in sightings]
    assert keys and len(keys) == len(set(keys))
    tracks = {(s.camera_id, s.track_id) for s in sightings}
    assert len(keys) == len(tracks) * len(labels)
    assert set(with_m.timings) == {"detect", "track", "embed", "match"}


def test_cameras_run_from_threads(sequence, detector, embedder) -> None:
    frames = _frames(sequence / "cam2.mp4", 8)
    multi = MultiCameraPipeline(["a", "b"], detector=detector, embedder=embedder)
    errors: list[BaseException] = []

    def feed(cam: str) -> None:
        try:
            for i, f in enumerate(frames):
                multi.process(cam, f, i / FPS)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=feed, args=(c,)) for c in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert multi.camera("a").tracker.frame_index == multi.camera("b").tracker.frame_index == 8


# ----------------------------------------------------------------------------- video


def test_run_video_writes_a_readable_mp4_and_the_sightings(
    sequence, detector, embedder, tmp_path: Path
) -> None:
    index, labels = load_watchlist(sequence / "enrol", embedder)
    matcher = WatchlistMatcher(index, threshold=-1.0, labels=labels)
    seen = []
    res = run_video(
        sequence / "cam1.mp4",
        camera_id="cam1",
        detector=detector,
        embedder=embedder,
        matcher=matcher,
        out_video=tmp_path / "out" / "annotated.mp4",
        sightings_path=tmp_path / "out" / "sightings.json",
        max_frames=20,
        on_frame=seen.append,
    )
    assert res.frames == 20 == len(seen) and res.fps == FPS and res.video_seconds == 2.0
    cap = cv2.VideoCapture(str(res.out_video))
    n, shape = 0, None
    while True:
        ok, img = cap.read()
        if not ok:
            break
        n, shape = n + 1, img.shape
    cap.release()
    assert n == 20 and shape == (360, 640, 3)
    doc = json.loads(res.sightings_path.read_text())
    assert len(doc["sightings"]) == len(res.sightings) > 0
    first = doc["sightings"][0]
    assert {"entry_key", "camera_id", "track_id", "time", "similarity", "box"} <= set(first)
    images = res.sightings_path.parent / doc["images"]
    assert (images / first["frame"]).is_file() and (images / first["crop"]).is_file()
    assert all(t.finished for t in res.tracks)


# ----------------------------------------------------------------------------- bad input


def test_bad_input_gives_clear_errors(sequence, detector, embedder, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="video file does not exist"):
        run_video(tmp_path / "none.mp4", camera_id="c", detector=detector, embedder=embedder)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(DataFormatError, match=r"junk\.mp4"):
        run_video(junk, camera_id="c", detector=detector, embedder=embedder)
    multi = MultiCameraPipeline(["gate-1"], detector=detector, embedder=embedder)
    frame = _frames(sequence / "cam1.mp4", 1)[0]
    with pytest.raises(NotFoundError, match="unknown camera 'gate-9'; known cameras: gate-1"):
        multi.process("gate-9", frame, 0.0)
    with pytest.raises(DataValidationError, match=r"frame \(camera gate-1\): must be uint8"):
        multi.process("gate-1", frame.astype(np.float32), 0.0)
    with pytest.raises(DataValidationError, match=r"must have shape \(H, W, 3\)"):
        multi.process("gate-1", frame[..., 0], 0.0)
    multi.process("gate-1", frame, 5.0)
    with pytest.raises(DataValidationError, match="earlier than the previous"):
        multi.process("gate-1", frame, 4.0)
    with pytest.raises(ConfigError, match="already in the pipeline"):
        multi.add_camera("gate-1")
    with pytest.raises(DataValidationError, match="more than once"):
        pipe = multi.camera("gate-1")
        from cv.models.cctv import process_frames

        process_frames([(pipe, frame, 6.0), (pipe, frame, 6.1)])
    with pytest.raises(NotFoundError, match="no watch-list entries"):
        load_watchlist(tmp_path, embedder)


def test_a_detector_without_person_is_refused(tmp_path: Path, embedder) -> None:
    from cv.models.load import init_model_dir, load_detector

    init_model_dir(tmp_path / "xray", architecture="yolo11n", classes=["gun"], input_size=64)
    det = load_detector(tmp_path / "xray", runtime="torch", device="cpu")
    with pytest.raises(ConfigError, match="no class 'person'"):
        CameraPipeline("c", detector=det, embedder=embedder)


# ----------------------------------------------------------------------------- CLI


def test_cli_reid_run(sequence, embedder_dir: Path, tmp_path: Path, capsys) -> None:
    out, sj = tmp_path / "a.mp4", tmp_path / "s.json"
    code = main(
        [
            "reid",
            "run",
            str(sequence / "cam2.mp4"),
            "--camera",
            "cam2",
            "--embedder",
            str(embedder_dir),
            "--watchlist",
            str(sequence / "enrol"),
            "--threshold",
            "-1",
            "--max-frames",
            "15",
            "--out",
            str(out),
            "--sightings",
            str(sj),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert out.is_file() and sj.is_file() and "real-time factor" in err
    code = main(["reid", "run", str(tmp_path / "gone.mp4"), "--camera", "c"])
    assert code == 5 and "gone.mp4" in capsys.readouterr().err
    code = main(["reid", "run", str(out), "--camera", "c", "--tracker", "sort"])
    assert code == 2


# ----------------------------------------------------------------------------- IDF1


def test_idf1_on_a_hand_worked_case(tmp_path: Path) -> None:
    box_a, box_b = (0, 0, 10, 20), (50, 0, 60, 20)
    gt = {f: [(1, box_a), (2, box_b)] for f in range(1, 5)}
    # Track 7 follows gt 1 throughout; gt 2 is split over tracks 8 (2 frames) and 9 (2).
    pred = {1: [(7, box_a), (8, box_b)], 2: [(7, box_a), (8, box_b)]}
    pred |= {3: [(7, box_a), (9, box_b)], 4: [(7, box_a), (9, box_b)]}
    m = idf1(gt, pred)
    assert m["idf1"] == pytest.approx(2 * 6 / 16) and m["recall"] == 1.0
    assert (m["gt_ids"], m["pred_ids"]) == (2, 3)
    mot = tmp_path / "gt.txt"
    mot.write_text("1,1,0,0,10,20,1,-1,-1,-1\n2,1,1,0,10,20,1,-1,-1,-1\n")
    assert read_mot(mot) == {1: [(1, (0, 0, 10, 20))], 2: [(1, (1, 0, 11, 20))]}
    mot.write_text("1,1,a,0,10,20\n")
    with pytest.raises(DataFormatError, match=r"gt\.txt:1"):
        read_mot(mot)


# ----------------------------------------------------------------------------- bench


def test_bench_reid_runs_all_three_parts(embedder_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            "reid",
            "--detector",
            str(default_detector_dir()),
            "--embedder",
            str(embedder_dir),
            "--crops",
            "16",
            "--entries",
            "500",
            "--queries",
            "20",
            "--seconds",
            "2",
            "--people",
            "3",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["embedding"]["crops_per_s"] > 0 and doc["embedding"]["ratio"] > 0
    assert doc["search"]["p99_ms"] > 0 and doc["search"]["entries"] == 500
    p = doc["pipeline"]
    assert p["cameras"] == 2 and p["frames"] == 20 and p["realtime_factor"] > 0
    assert set(p["ms_per_frame"]) == {"decode", "detect", "track", "embed", "match"}
    assert "real time" in err
    w = p["watchlist"]
    assert w["entries"] >= 1 and w["correct"] + w["wrong"] == w["sightings"] == p["sightings"]
    assert 0 <= w["visits_found"] <= w["visits"]


def test_sighting_quality_by_hand() -> None:
    from cv.evaluation.bench_reid import sighting_quality

    gt = {
        "cam1": {1: [(5, (10, 10, 30, 60)), (7, (50, 10, 70, 60))], 2: [(5, (12, 10, 32, 60))]},
        "cam2": {1: [(7, (0, 0, 20, 50))], 3: [(5, (0, 0, 20, 50))]},
    }
    found = [
        ("cam1", 1, "0005", (11, 10, 31, 60)),  # right person
        ("cam1", 2, "0005", (50, 10, 70, 60)),  # nobody of pid 5 under the box
        ("cam2", 1, "0005", (0, 0, 20, 50)),  # pid 7, not 5
    ]
    q = sighting_quality(found, gt, enrolled={"0005": "0005", "0009": "0009"}, frames=3)
    assert q == {
        "entries": 2,
        "sightings": 3,
        "correct": 1,
        "wrong": 2,
        "visits": 2,  # pid 5 on cam1 and cam2 (pid 9 never walks by)
        "visits_found": 1,
    }
    # Ground truth after the last processed frame does not count as a visit.
    assert sighting_quality([], gt, enrolled={"0005": "0005"}, frames=2)["visits"] == 1


def test_bench_reid_on_openvino_finds_what_onnx_runtime_finds(
    embedder_dir: Path, tmp_path: Path, capsys
) -> None:
    pytest.importorskip("openvino")
    docs = {}
    for runtime in ("onnx", "openvino"):
        out = tmp_path / f"{runtime}.json"
        args = ["bench", "reid", "--detector", str(default_detector_dir())]
        args += ["--embedder", str(embedder_dir), "--crops", "16", "--skip", "b"]
        args += ["--seconds", "2", "--people", "3", "--runtime", runtime, "--out", str(out)]
        assert main(args) == 0, capsys.readouterr().err
        docs[runtime] = json.loads(out.read_text())
    onnx, ov = docs["onnx"], docs["openvino"]
    assert ov["embedding"]["runtime"] == "openvino (f32)" and ov["embedding"]["crops_per_s"] > 0
    assert (onnx["pipeline"]["runtime"], ov["pipeline"]["runtime"]) == ("onnx", "openvino (f32)")
    # FP32 OpenVINO gives ONNX Runtime's numbers: the same tracks and sightings.
    for key in ("tracks", "sightings", "crops_embedded"):
        assert ov["pipeline"][key] == onnx["pipeline"][key], key
    assert main(["bench", "reid", "--precision", "bf16", "--skip", "b,c"]) == 2
    assert "applies to runtime openvino only" in capsys.readouterr().err
