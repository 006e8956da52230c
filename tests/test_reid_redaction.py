"""Bystanders in a sighting's frame: pixelated, the matched person kept as the camera saw them.

:func:`redact_bystanders` on hand-made frames, then the pipeline end to end with a
scripted person detector (fixed boxes: the matched traveller, a tracked
bystander, and a detection too weak to start a track) and an embedder that
turns a crop's pixels into its vector, so that the same crop always matches.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from cv.errors import ConfigError, DataValidationError
from cv.models.cctv import CameraPipeline, TrackSummary, WatchlistMatcher, redact_bystanders
from cv.models.gallery import VectorIndex
from cv.records import Detection

H, W = 160, 240
KEEP = (10.0, 12.0, 90.0, 150.0)
"""The matched traveller."""
NEIGHBOUR = (130.0, 20.0, 180.0, 140.0)
"""A tracked bystander."""
PASSER_BY = (196.0, 60.0, 232.0, 130.0)
"""A detection too weak to start a track."""


def scene(seed: int = 0) -> np.ndarray:
    """A grey frame with a different noise texture in each person's box."""
    rng = np.random.default_rng(seed)
    frame = np.full((H, W, 3), 120, np.uint8)
    for box in (KEEP, NEIGHBOUR, PASSER_BY):
        x0, y0, x1, y1 = (int(v) for v in box)
        frame[y0:y1, x0:x1] = rng.integers(0, 256, (y1 - y0, x1 - x0, 3), dtype=np.uint8)
    return frame


def region(image: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
    x0, y0, x1, y1 = (int(v) for v in box)
    return image[y0:y1, x0:x1]


def detail(image: np.ndarray) -> float:
    """Mean absolute difference of horizontally neighbouring pixels: texture left."""
    return float(np.abs(np.diff(image.astype(np.int16), axis=1)).mean())


# --------------------------------------------------------------------------- the function


def test_other_people_are_pixelated_and_the_matched_one_is_untouched() -> None:
    frame = scene()
    before = frame.copy()
    out, n = redact_bystanders(frame, KEEP, [KEEP, NEIGHBOUR, PASSER_BY, NEIGHBOUR])
    assert n == 2  # the kept box and the repeated one do not count
    assert np.array_equal(frame, before)  # the input is not changed
    assert out is not frame and out.shape == frame.shape and out.dtype == np.uint8
    assert np.array_equal(region(out, KEEP), region(frame, KEEP))
    for box in (NEIGHBOUR, PASSER_BY):
        got, was = region(out, box), region(frame, box)
        assert (got != was).any(axis=2).mean() > 0.9
        assert detail(got) < 0.2 * detail(was)
    # A cell is one flat colour: the neighbour (126 px tall with its margin): 16-px cells.
    cell = region(out, NEIGHBOUR)[20:35, 20:35]
    assert len(np.unique(cell.reshape(-1, 3), axis=0)) <= 4
    # Pixels far from every person stay as they were.
    assert np.array_equal(out[:, 100:120], frame[:, 100:120])


def test_where_boxes_overlap_the_matched_person_wins() -> None:
    frame = scene(1)
    overlapping = (60.0, 40.0, 150.0, 140.0)  # covers the right part of KEEP
    out, n = redact_bystanders(frame, KEEP, [overlapping])
    assert n == 1
    assert np.array_equal(region(out, KEEP), region(frame, KEEP))
    outside = (92, 45, 148, 138)  # the part of the bystander outside KEEP
    assert detail(region(out, outside)) < 0.3 * detail(region(frame, outside))
    # A box wholly inside the matched person's box changes nothing.
    inside = (20.0, 30.0, 60.0, 100.0)
    out, n = redact_bystanders(frame, KEEP, [inside])
    assert n == 0 and np.array_equal(out, frame)


def test_edge_cases_of_the_function() -> None:
    frame = scene(2)
    # Fractional boxes are widened to whole pixels, boxes past the edge clipped,
    # boxes wholly outside the frame skipped.
    out, n = redact_bystanders(frame, (10.4, 12.6, 89.5, 149.2), [(200.5, -10, 400, 170)])
    assert n == 1 and np.array_equal(region(out, KEEP), region(frame, KEEP))
    out, n = redact_bystanders(frame, KEEP, [(300, 10, 400, 50), (5, 5, 5, 9)])
    assert n == 0 and np.array_equal(out, frame)
    # No box to keep: every box is redacted.
    out, n = redact_bystanders(frame, None, [KEEP])
    assert n == 1 and detail(region(out, KEEP)) < 0.2 * detail(region(frame, KEEP))
    # A tiny, distant person (6 x 10 px; 8 x 12 with the margin) becomes two 8-px patches.
    out, _ = redact_bystanders(frame, None, [(200, 70, 206, 80)])
    assert len(np.unique(out[69:81, 199:207].reshape(-1, 3), axis=0)) == 2
    with pytest.raises(DataValidationError, match="uint8"):
        redact_bystanders(frame.astype(np.float32), KEEP, [])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cells"):
        redact_bystanders(frame, KEEP, [NEIGHBOUR], cells=0)


def test_what_is_redacted_survives_no_jpeg_and_no_sharpening() -> None:
    """Irreversible: the stored JPEG, sharpened, holds no more detail than its cells."""
    frame = scene(3)
    out, _ = redact_bystanders(frame, KEEP, [NEIGHBOUR])
    ok, jpeg = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    stored = cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED)
    sharpen = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32)
    recovered = cv2.filter2D(stored, -1, sharpen)
    original = region(frame, NEIGHBOUR).astype(np.float32)
    error = np.abs(region(recovered, NEIGHBOUR).astype(np.float32) - original).mean()
    assert error > 50  # uniform noise: guessing the mean is off by 64 on average


# --------------------------------------------------------------------------- the pipeline


class ScriptedDetector:
    """A person detector that finds the same three people in every frame."""

    classes = ("person",)
    input_size = 32
    max_batch = 4
    record = SimpleNamespace(
        preprocessing=SimpleNamespace(pad_value=114, letterbox=True, color="RGB", scale=1 / 255)
    )
    people = ((KEEP, 0.9), (NEIGHBOUR, 0.9), (PASSER_BY, 0.2))

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        return np.zeros((len(tensor), 5, 1), np.float32)

    def postprocess(
        self, raw: np.ndarray, metas: list[Any], *, conf: float, **_: Any
    ) -> list[list[Detection]]:
        found = [Detection(box=b, category="person", class_id=0, score=s) for b, s in self.people]
        return [[d for d in found if d.score >= conf] for _ in metas]


class PixelEmbedder:
    """A crop's pixels, shrunk to 8 x 4, as its vector: the same crop, the same vector."""

    dim = 96

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        vecs = [cv2.resize(c, (4, 8), interpolation=cv2.INTER_AREA) for c in crops]
        out = np.stack(vecs).reshape(len(crops), -1).astype(np.float32) - 127.5
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def pipeline(frame: np.ndarray, *, redact: bool) -> CameraPipeline:
    embedder = PixelEmbedder()
    index = VectorIndex(embedder.dim, backend="exact")
    index.add(["wl-1"], embedder.embed([region(frame, KEEP)]))
    matcher = WatchlistMatcher(index, threshold=0.999, labels={"wl-1": "W-1"})
    matcher.redact_bystanders = redact
    return CameraPipeline(
        "gate-1",
        detector=ScriptedDetector(),  # type: ignore[arg-type]
        embedder=embedder,  # type: ignore[arg-type]
        matcher=matcher,
        min_track_frames=2,
        tracker_params={"track_high_thresh": 0.5, "new_track_thresh": 0.6},
    )


def sightings_of(pipe: CameraPipeline, frame: np.ndarray) -> list:
    found = []
    for i in range(4):
        result = pipe.process(frame, i / 10)
        found += result.sightings
    return found


def test_a_sighting_frame_keeps_the_match_and_pixelates_tracked_and_untracked_people() -> None:
    frame = scene(4)
    pipe = pipeline(frame, redact=True)
    tracked = {tb.box for tb in pipe.process(frame, 0.0).tracks}
    assert tracked == {KEEP, NEIGHBOUR}  # the passer-by is only a detection
    (s,) = sightings_of(pipe, frame)
    assert s.entry_key == "wl-1" and s.box == KEEP and s.redacted == 2
    assert s.to_dict()["redacted"] == 2
    assert s.frame is not None and s.frame is not frame
    assert np.array_equal(region(s.frame, KEEP), region(frame, KEEP))
    for box in (NEIGHBOUR, PASSER_BY):
        assert detail(region(s.frame, box)) < 0.2 * detail(region(frame, box))
    # The crop is the matched person's own, never redacted.
    assert s.crop is not None and np.array_equal(s.crop, region(frame, KEEP))


def test_without_redaction_the_frame_is_stored_as_seen() -> None:
    frame = scene(5)
    (s,) = sightings_of(pipeline(frame, redact=False), frame)
    assert s.redacted is None and s.frame is not None
    assert np.array_equal(s.frame, frame)


def test_the_matcher_redacts_by_default_and_keeps_each_track_apart() -> None:
    frame = scene(6)
    embedder = PixelEmbedder()
    index = VectorIndex(embedder.dim, backend="exact")
    index.add(["a", "b"], embedder.embed([region(frame, KEEP), region(frame, NEIGHBOUR)]))
    matcher = WatchlistMatcher(index, threshold=0.999)
    assert matcher.redact_bystanders is True

    def summary(tid: int, box: tuple[float, float, float, float]) -> TrackSummary:
        vec = embedder.embed([region(frame, box)])[0]
        return TrackSummary("c", tid, 0.0, 1.0, 3, vec, 3, None, None, None, 0.0, box)

    boxes = {1: KEEP, 2: NEIGHBOUR}
    found = matcher.match([summary(1, KEEP), summary(2, NEIGHBOUR)], frame=frame, boxes=boxes)
    by_track = {s.track_id: s for s in found}
    assert set(by_track) == {1, 2}
    one, two = by_track[1], by_track[2]
    assert one.redacted == two.redacted == 1  # each other's bystander; people= defaults to boxes
    assert np.array_equal(region(one.frame, KEEP), region(frame, KEEP))
    assert np.array_equal(region(two.frame, NEIGHBOUR), region(frame, NEIGHBOUR))
    assert detail(region(one.frame, NEIGHBOUR)) < 0.2 * detail(region(frame, NEIGHBOUR))
    assert detail(region(two.frame, KEEP)) < 0.2 * detail(region(frame, KEEP))
