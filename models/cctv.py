"""The per-camera CCTV pipeline: people, tracks, track embeddings, watch-list sightings.

For each frame of a camera, :class:`CameraPipeline`:

1. detects people with a person detector (:class:`cv.models.runtime.Detector`,
   class ``person``, run at its small input size, e.g. 320 px);
2. tracks them (:class:`cv.models.tracking.Tracker`, ByteTrack by default);
3. crops and embeds a track only when it is due: confirmed for
   ``min_track_frames`` frames, not hidden behind another person, and either never
   embedded, embedded ``embed_every`` frames ago, or moved enough since its last
   embedding (IoU of the boxes below ``reembed_iou``); at most
   ``max_embeds_per_frame`` crops per frame, the longest-waiting first;
4. aggregates each track's embeddings: the running mean of the L2-normalised
   embeddings, normalised again, and keeps the track's best crop (largest,
   least covered by other people, highest detector score, not cut by the frame
   edge);
5. hands the tracks whose embedding changed to a :class:`WatchlistMatcher`, which
   searches the watch-list :class:`~cv.models.gallery.VectorIndex` and turns a
   similarity at or above the calibrated threshold into a :class:`Sighting`, once
   per (entry, camera, track). A sighting is a *candidate* for an inspector to
   confirm, never a decision. The frame it carries shows the matched person
   only: every other person detected in it is pixelated
   (:func:`redact_bystanders`; data minimisation, an option of the matcher).

Several cameras share one detector, one embedder and one matcher through
:class:`MultiCameraPipeline`, whose :meth:`~MultiCameraPipeline.process_batch`
detects the frames of several cameras in one batch and embeds their crops in
one batch. :func:`run_video` runs one video file or stream (an RTSP / HTTP URL,
anything OpenCV's ``VideoCapture`` opens) and writes an annotated MP4 and the
sightings.

Tensor contract: frames are ``(H, W, 3) uint8`` **RGB**; boxes are ``xyxy``
absolute pixels of the frame, 0-based; times are seconds (any origin, not
decreasing within a camera). Embeddings are ``float32``, L2-normalised.

Thread safety: every camera has a lock held for the whole of one frame, so frames
of one camera are processed one at a time and in order; different cameras may be
processed from different threads. The matcher has its own lock. This module
imports nothing of the server.

Driving it (a server, a worker reading a stream)::

    detector = load_detector(default_detector_dir(), spin_wait=False)
    embedder = load_embedder(default_embedder_dir(), spin_wait=False)
    matcher = WatchlistMatcher.for_embedder(index, embedder, labels=labels)
    cams = MultiCameraPipeline(["gate-3"], detector=detector, embedder=embedder,
                               matcher=matcher, fps=10)
    result = cams.process("gate-3", rgb_frame, t)     # one posted JPEG, decoded
    for s in result.sightings: ...                    # candidates: store, alert
    for tr in cams.finished_tracks(): ...             # store / expire embeddings
    matcher.set_index(new_index, labels)              # after enrolment or expiry
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time as _time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from numpy.typing import NDArray

from cv.errors import (
    ConfigError,
    DataFormatError,
    DataValidationError,
    NotFoundError,
)
from cv.models.tracking import Track, Tracker

if TYPE_CHECKING:
    from cv.models.gallery import VectorIndex
    from cv.models.reid import Embedder
    from cv.models.runtime import Detector, LetterboxMeta
    from cv.records import Detection

log = logging.getLogger(__name__)

PERSON = "person"
"""The detector class the pipeline tracks."""

MATCH_THRESHOLD_KEY = "match"
"""Key of the calibrated cosine-similarity threshold in an embedder's ``record.thresholds``."""

STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
"""Sources that :func:`run_video` opens as network streams rather than files."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class TrackBox:
    """One confirmed track in one frame (for drawing and for the server's live view).

    Attributes:
        track_id: The track's id within its camera.
        box: ``xyxy`` frame pixels.
        score: Detector score.
        embedded: Whether the track's crop was embedded in this frame.
        entry_key: The watch-list entry the track matched (best similarity), if any.
        label: That entry's display label.
        similarity: That match's cosine similarity.
    """

    track_id: int
    box: tuple[float, float, float, float]
    score: float
    embedded: bool = False
    entry_key: str | None = None
    label: str | None = None
    similarity: float | None = None


@dataclass(frozen=True, slots=True)
class TrackSummary:
    """A track as a whole: its aggregated embedding and its best view.

    Attributes:
        camera_id: The camera.
        track_id: The track's id within the camera.
        first_time: Time of its first confirmed frame.
        last_time: Time of its last frame.
        frames: Frames it was seen in.
        embedding: ``(D,) float32``, the mean of its L2-normalised crop embeddings,
            normalised again; ``None`` when no crop has been embedded.
        embeddings: Number of crops averaged into ``embedding``.
        best_crop: ``(h, w, 3) uint8`` RGB, the best-quality crop seen (a copy).
        best_box: ``xyxy`` of that crop in its frame.
        best_time: Time of that frame.
        best_quality: Its quality score (see :func:`crop_quality`).
        last_box: ``xyxy`` in the track's last frame.
        finished: Whether the tracker has dropped the track (it left or was lost).
    """

    camera_id: str
    track_id: int
    first_time: float
    last_time: float
    frames: int
    embedding: NDArray[np.float32] | None
    embeddings: int
    best_crop: NDArray[np.uint8] | None
    best_box: tuple[float, float, float, float] | None
    best_time: float | None
    best_quality: float
    last_box: tuple[float, float, float, float]
    finished: bool = False


@dataclass(frozen=True, slots=True)
class Sighting:
    """A candidate sighting of a watch-list entry: for an inspector to confirm.

    Attributes:
        entry_key: The watch-list entry's key in the index.
        camera_id: The camera.
        track_id: The track that matched.
        time: Time of the frame in which it matched.
        similarity: Cosine similarity of the track's aggregated embedding to the entry.
        box: ``xyxy`` of the person in ``frame``.
        crop: ``(h, w, 3) uint8`` RGB, the track's best crop so far.
        frame: ``(H, W, 3) uint8`` RGB, the frame in which it matched (a copy).
        label: The entry's display label (its key when no label is known).
        threshold: The threshold the similarity passed.
        redacted: People other than the matched one pixelated in ``frame``
            (:func:`redact_bystanders`); ``None`` when the frame was kept as it was
            (redaction off, or no frame).
    """

    entry_key: str
    camera_id: str
    track_id: int
    time: float
    similarity: float
    box: tuple[float, float, float, float]
    crop: NDArray[np.uint8] | None
    frame: NDArray[np.uint8] | None
    label: str = ""
    threshold: float = 0.0
    redacted: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The sighting without its images, JSON-ready."""
        return {
            "entry_key": self.entry_key,
            "label": self.label or self.entry_key,
            "camera_id": self.camera_id,
            "track_id": self.track_id,
            "time": round(self.time, 3),
            "similarity": round(self.similarity, 4),
            "threshold": round(self.threshold, 4),
            "box": [round(v, 1) for v in self.box],
            "redacted": self.redacted,
        }


@dataclass(slots=True)
class FrameResult:
    """What one frame of one camera gave.

    Attributes:
        camera_id: The camera.
        time: The frame's time.
        frame_index: 1-based index of the frame in the camera's sequence.
        tracks: The confirmed tracks in the frame.
        detections: People detected (before tracking).
        embedded: Crops embedded for this frame.
        updated: Summaries of the tracks whose embedding changed in this frame.
        sightings: New sightings raised by this frame (when the pipeline has a matcher).
    """

    camera_id: str
    time: float
    frame_index: int
    tracks: list[TrackBox]
    detections: int = 0
    embedded: int = 0
    updated: list[TrackSummary] = field(default_factory=list)
    sightings: list[Sighting] = field(default_factory=list)


# --------------------------------------------------------------------------- helpers


def check_frame(frame: Any, *, field: str = "frame") -> NDArray[np.uint8]:
    """Checks a frame against the contract ``(H, W, 3) uint8`` RGB.

    Raises:
        DataValidationError: Naming ``field`` and what was given instead.
    """
    if not isinstance(frame, np.ndarray):
        raise DataValidationError(
            f"must be a NumPy (H, W, 3) uint8 RGB array, got {type(frame).__name__}", field=field
        )
    if frame.dtype != np.uint8:
        raise DataValidationError(f"must be uint8 (RGB 0-255), got {frame.dtype}", field=field)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 8 or frame.shape[1] < 8:
        raise DataValidationError(
            f"must have shape (H, W, 3) RGB with H, W >= 8, got {frame.shape}", field=field
        )
    return frame


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def occlusion(box: Sequence[float], others: Sequence[Sequence[float]]) -> float:
    """Fraction of ``box`` covered by ``others`` (the largest single overlap, 0-1).

    Another person overlapping the box is what spoils a re-ID crop most; the
    largest overlap is a cheap, conservative stand-in for the covered area.
    """
    area = max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])
    if area <= 0:
        return 1.0
    worst = 0.0
    for o in others:
        ix = min(box[2], o[2]) - max(box[0], o[0])
        iy = min(box[3], o[3]) - max(box[1], o[1])
        if ix > 0 and iy > 0:
            worst = max(worst, ix * iy / area)
    return min(1.0, worst)


def crop_quality(
    box: Sequence[float], score: float, *, covered: float, frame_hw: tuple[int, int]
) -> float:
    """How good a crop is for re-identification: larger, visible, confident, whole.

    ``score × sqrt(area) × (1 - covered)``, halved when the box touches the frame
    edge (the person is cut off).

    Args:
        box: ``xyxy`` frame pixels.
        score: Detector score.
        covered: Fraction hidden behind other people (:func:`occlusion`).
        frame_hw: ``(height, width)`` of the frame.
    """
    w = max(0.0, box[2] - box[0])
    h = max(0.0, box[3] - box[1])
    q = score * math.sqrt(w * h) * (1.0 - covered)
    fh, fw = frame_hw
    if box[0] <= 1 or box[1] <= 1 or box[2] >= fw - 1 or box[3] >= fh - 1:
        q *= 0.5
    return float(q)


def l2_normalise(v: NDArray[np.floating]) -> NDArray[np.float32]:
    """``v / ||v||`` along the last axis, as float32 (zero rows stay zero)."""
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


REDACT_CELLS = 8
"""Cells along the longer side of a redacted person's box (about 30 px cells on a
person 240 px tall: a face becomes one flat patch)."""

REDACT_MIN_CELL = 8
"""Smallest cell side in pixels, so that small, distant people are not left legible."""


def _pixel_span(box: Sequence[float], frame_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """``box`` widened to whole pixels (as :func:`cv.models.reid.crop_box` does) and
    clipped to the frame: ``(x0, y0, x1, y1)``, ends exclusive; empty when outside."""
    h, w = frame_hw
    x0 = min(max(math.floor(box[0]), 0), w)
    y0 = min(max(math.floor(box[1]), 0), h)
    x1 = min(max(math.ceil(box[2]), x0), w)
    y1 = min(max(math.ceil(box[3]), y0), h)
    return x0, y0, x1, y1


def redact_bystanders(
    frame: NDArray[np.uint8],
    keep_box: Sequence[float] | None,
    other_boxes: Iterable[Sequence[float]],
    *,
    cells: int = REDACT_CELLS,
    min_cell: int = REDACT_MIN_CELL,
    pad: float = 0.05,
) -> tuple[NDArray[np.uint8], int]:
    """A copy of ``frame`` in which every person but one is pixelated beyond recognition.

    Each box of ``other_boxes``, grown by ``pad`` of its width and height on every
    side (detector boxes are tight; hair and hands stick out), is replaced by the
    mean colours of a coarse grid: ``cells`` cells along its longer side, each at
    least ``min_cell`` pixels. The detail inside a cell is averaged away, so no
    processing of the stored image brings a face or a pattern back (unlike a
    light blur). The pixels of ``keep_box``, the matched person, are then put
    back as they were: where boxes overlap, the kept person wins.

    Args:
        frame: ``(H, W, 3) uint8`` (any colour order); not changed.
        keep_box: ``xyxy`` frame pixels of the person to keep sharp; ``None``
            redacts every box.
        other_boxes: ``xyxy`` frame pixels of everybody else (tracked or only
            detected); may include ``keep_box`` itself or repeat a box.
        cells: Cells along the longer side of a redacted box.
        min_cell: Smallest cell side in pixels.
        pad: Margin added to each redacted box, as a fraction of its size.

    Returns:
        The redacted copy, and how many boxes were redacted (distinct boxes with
        at least one pixel outside ``keep_box``).

    Raises:
        DataValidationError: If ``frame`` is not ``(H, W, 3) uint8``.
        ConfigError: If ``cells`` or ``min_cell`` is below 1 or ``pad`` is negative.
    """
    check_frame(frame)
    if cells < 1 or min_cell < 1 or pad < 0:
        raise ConfigError(
            f"cells and min_cell must be >= 1 and pad >= 0, got {cells}, {min_cell}, {pad}",
            field="redaction",
        )
    hw = (int(frame.shape[0]), int(frame.shape[1]))
    kx0, ky0, kx1, ky1 = (0, 0, 0, 0) if keep_box is None else _pixel_span(keep_box, hw)
    out = frame.copy()
    redacted = 0
    for box in dict.fromkeys(tuple(float(v) for v in b) for b in other_boxes):
        x0, y0, x1, y1 = _pixel_span(box, hw)
        if x1 <= x0 or y1 <= y0:
            continue  # outside the frame
        if kx0 <= x0 and ky0 <= y0 and x1 <= kx1 and y1 <= ky1:
            continue  # the kept person's own box, or wholly inside it: the kept person wins
        dx, dy = pad * (box[2] - box[0]), pad * (box[3] - box[1])
        x0, y0, x1, y1 = _pixel_span((box[0] - dx, box[1] - dy, box[2] + dx, box[3] + dy), hw)
        region = frame[y0:y1, x0:x1]
        rh, rw = region.shape[:2]
        cell = max(min_cell, math.ceil(max(rh, rw) / cells))
        grid = (max(1, math.ceil(rw / cell)), max(1, math.ceil(rh / cell)))
        small = cv2.resize(region, grid, interpolation=cv2.INTER_AREA)
        out[y0:y1, x0:x1] = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_NEAREST)
        redacted += 1
    if kx1 > kx0 and ky1 > ky0:
        out[ky0:ky1, kx0:kx1] = frame[ky0:ky1, kx0:kx1]
    return out, redacted


# --------------------------------------------------------------------------- matcher


class WatchlistMatcher:
    """Matches track embeddings against a watch-list index; one sighting per
    (entry, camera, track).

    Args:
        index: The watch-list vectors, keyed by entry (several vectors per key allowed).
        threshold: Cosine similarity at or above which a track matches an entry;
            normally the embedder's calibrated ``record.thresholds["match"]`` (see
            :meth:`for_embedder`).
        labels: Entry key -> display label; the key by default.
        k: Entries looked up per track (a track may match more than one entry).
        min_embeddings: Crops a track's embedding must average before it is
            matched (one crop is a noisy view).
        redact_bystanders: Pixelate every other person in a sighting's frame
            (:func:`redact_bystanders`), so that a stored sighting keeps nobody but
            the person it is about. On by default: data minimisation.

    Raises:
        ConfigError: If the threshold is not in ``[-1, 1]`` or ``k < 1``.
    """

    def __init__(
        self,
        index: VectorIndex,
        *,
        threshold: float,
        labels: Mapping[str, str] | None = None,
        k: int = 3,
        min_embeddings: int = 1,
        redact_bystanders: bool = True,
    ) -> None:
        if not -1.0 <= threshold <= 1.0:
            raise ConfigError(
                f"a cosine-similarity threshold lies in [-1, 1], got {threshold}", field="threshold"
            )
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}", field="k")
        self.index = index
        self.threshold = float(threshold)
        self.labels: dict[str, str] = dict(labels or {})
        self.k = k
        self.min_embeddings = max(1, min_embeddings)
        self.redact_bystanders = bool(redact_bystanders)
        self._lock = threading.Lock()
        self._emitted: dict[tuple[str, int], set[str]] = {}
        self._best: dict[tuple[str, int], tuple[str, float]] = {}

    @classmethod
    def for_embedder(
        cls,
        index: VectorIndex,
        embedder: Embedder,
        *,
        threshold: float | None = None,
        labels: Mapping[str, str] | None = None,
        k: int = 3,
        min_embeddings: int = 1,
        redact_bystanders: bool = True,
    ) -> WatchlistMatcher:
        """A matcher with the embedder's calibrated threshold unless one is given.

        Raises:
            ConfigError: If no threshold is given and the embedder's record has none
                (calibrate it with ``customs-vision eval reid --save-threshold``), or
                the index's dimension differs from the embedder's.
        """
        if threshold is None:
            threshold = embedder.record.thresholds.get(MATCH_THRESHOLD_KEY)
            if threshold is None:
                raise ConfigError(
                    f"the embedder {embedder.record.name!r} has no calibrated "
                    f"'{MATCH_THRESHOLD_KEY}' threshold; run `customs-vision eval reid "
                    "--save-threshold` on it or give a threshold",
                    field="threshold",
                )
        dim = getattr(index, "dim", None)
        if dim is not None and dim != embedder.dim:
            raise ConfigError(
                f"the watch-list index holds {dim}-d vectors but the embedder makes "
                f"{embedder.dim}-d ones",
                field="index",
            )
        return cls(
            index,
            threshold=threshold,
            labels=labels,
            k=k,
            min_embeddings=min_embeddings,
            redact_bystanders=redact_bystanders,
        )

    def set_index(self, index: VectorIndex, labels: Mapping[str, str] | None = None) -> None:
        """Replaces the watch-list (after enrolment, revocation or expiry)."""
        with self._lock:
            self.index = index
            if labels is not None:
                self.labels = dict(labels)

    def search(self, embedding: NDArray[np.float32]) -> list[tuple[str, float]]:
        """The entries at or above the threshold for one embedding, best first."""
        if len(self.index) == 0:
            return []
        q = l2_normalise(np.asarray(embedding, dtype=np.float32).reshape(1, -1))
        with self._lock:
            hits = self.index.search(q, k=self.k)[0]
        return [(key, float(sim)) for key, sim in hits if sim >= self.threshold]

    def match(
        self,
        tracks: Iterable[TrackSummary],
        *,
        frame: NDArray[np.uint8] | None = None,
        time: float | None = None,
        boxes: Mapping[int, tuple[float, float, float, float]] | None = None,
        people: Iterable[Sequence[float]] | None = None,
    ) -> list[Sighting]:
        """Matches tracks; returns the sightings not raised before.

        Args:
            tracks: Track summaries (with embeddings) of one or more cameras.
            frame: The frame the tracks are in now (copied into each sighting; with
                :attr:`redact_bystanders`, one copy per matched track, with
                everybody else pixelated).
            time: Its time; each track's ``last_time`` by default.
            boxes: Track id -> box in ``frame``; each track's ``last_box`` by default.
            people: Every person's box in ``frame``, tracked or only detected (the
                bystanders to redact); the boxes of ``boxes`` by default.

        Returns:
            One new :class:`Sighting` per (entry, camera, track) whose similarity is
            at or above the threshold for the first time.
        """
        out: list[Sighting] = []
        boxes = boxes or {}
        others = list(boxes.values()) if people is None else list(people)
        frames: dict[tuple[str, int], tuple[NDArray[np.uint8], int | None]] = {}
        plain: NDArray[np.uint8] | None = None
        for tr in tracks:
            if tr.embedding is None or tr.embeddings < self.min_embeddings:
                continue
            hits = self.search(tr.embedding)
            if not hits:
                continue
            key = (tr.camera_id, tr.track_id)
            with self._lock:
                self._best[key] = hits[0]
            for entry, sim in hits:
                with self._lock:
                    done = self._emitted.setdefault(key, set())
                    if entry in done:
                        continue
                    done.add(entry)
                box = boxes.get(tr.track_id, tr.last_box)
                if frame is not None and key not in frames:
                    if self.redact_bystanders:
                        frames[key] = redact_bystanders(frame, box, others)
                    else:  # one copy, shared by the frame's sightings
                        plain = frame.copy() if plain is None else plain
                        frames[key] = (plain, None)
                stored, redacted = frames.get(key, (None, None))
                out.append(
                    Sighting(
                        entry_key=entry,
                        camera_id=tr.camera_id,
                        track_id=tr.track_id,
                        time=tr.last_time if time is None else time,
                        similarity=sim,
                        box=box,
                        crop=tr.best_crop,
                        frame=stored,
                        label=self.labels.get(entry, entry),
                        threshold=self.threshold,
                        redacted=redacted,
                    )
                )
        return out

    def best_match(self, camera_id: str, track_id: int) -> tuple[str, float] | None:
        """The best entry (key, similarity) a live track has matched, if any."""
        with self._lock:
            return self._best.get((camera_id, track_id))

    def forget(self, camera_id: str, track_id: int) -> None:
        """Drops what is kept about a finished track (its ids are never reused)."""
        with self._lock:
            self._best.pop((camera_id, track_id), None)
            self._emitted.pop((camera_id, track_id), None)


def load_watchlist(
    folder: str | PathLike[str], embedder: Embedder, *, backend: str = "auto"
) -> tuple[VectorIndex, dict[str, str]]:
    """Enrols a folder of person crops: ``<label>/*.jpg`` (or png), one entry per label.

    Each image is taken as a crop of the person (as the re-ID embedder expects);
    every image becomes one vector of its entry.

    Returns:
        The index (keys are the folder names) and key -> label.

    Raises:
        NotFoundError: If the folder does not exist or holds no label folders with images.
        ImageReadError: If an image cannot be read (the file is named).
    """
    from cv.image import IMAGE_SUFFIXES, read_image
    from cv.models.gallery import VectorIndex

    root = Path(folder)
    if not root.is_dir():
        raise NotFoundError("watch-list folder does not exist", path=root)
    index = VectorIndex(embedder.dim, backend=backend)
    labels: dict[str, str] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            continue
        vecs = embedder.embed([read_image(p) for p in files])
        index.add([sub.name] * len(files), l2_normalise(vecs))
        labels[sub.name] = sub.name
    if not labels:
        raise NotFoundError(
            "no watch-list entries: expected sub-folders <label>/ holding person crops "
            f"({', '.join(IMAGE_SUFFIXES)})",
            path=root,
        )
    return index, labels


# --------------------------------------------------------------------------- pipeline


@dataclass(slots=True)
class _TrackState:
    track_id: int
    first_time: float
    last_time: float
    last_box: tuple[float, float, float, float]
    frames: int = 0
    emb_sum: NDArray[np.float32] | None = None
    emb_count: int = 0
    last_embed_frame: int = -(10**9)
    last_embed_box: tuple[float, float, float, float] | None = None
    best_crop: NDArray[np.uint8] | None = None
    best_box: tuple[float, float, float, float] | None = None
    best_time: float | None = None
    best_quality: float = -1.0

    def summary(self, camera_id: str, *, finished: bool = False) -> TrackSummary:
        emb = None
        if self.emb_sum is not None and self.emb_count:
            emb = l2_normalise(self.emb_sum / self.emb_count)
        return TrackSummary(
            camera_id=camera_id,
            track_id=self.track_id,
            first_time=self.first_time,
            last_time=self.last_time,
            frames=self.frames,
            embedding=emb,
            embeddings=self.emb_count,
            best_crop=self.best_crop,
            best_box=self.best_box,
            best_time=self.best_time,
            best_quality=self.best_quality,
            last_box=self.last_box,
            finished=finished,
        )


@dataclass(slots=True)
class _Pending:
    """One camera's frame between tracking and embedding."""

    camera: CameraPipeline
    frame: NDArray[np.uint8]
    time: float
    tracks: list[Track]
    # Every person detected in the frame, tracked or not: the bystanders of a sighting.
    people: list[tuple[float, float, float, float]] = field(default_factory=list)
    crops: list[NDArray[np.uint8]] = field(default_factory=list)
    crop_meta: list[tuple[int, tuple[float, float, float, float], float]] = field(
        default_factory=list
    )


class _BatchPreprocessor:
    """Letterboxes frames into a reused input buffer (no allocation per frame).

    Keeps no reference to its detector (it is the value of a weak-keyed cache).
    """

    def __init__(self) -> None:
        self._buf: NDArray[np.float32] | None = None
        self._lock = threading.Lock()

    def detect(
        self, det: Detector, frames: Sequence[NDArray[np.uint8]], *, conf: float, iou: float
    ) -> list[list[Detection]]:
        from cv.models.runtime import letterbox

        pre = det.record.preprocessing
        size = det.input_size
        out: list[list[Detection]] = []
        with self._lock:
            for start in range(0, len(frames), det.max_batch):
                chunk = frames[start : start + det.max_batch]
                n = len(chunk)
                if self._buf is None or self._buf.shape[0] < n:
                    self._buf = np.empty((max(n, 2), 3, size, size), dtype=np.float32)
                metas: list[LetterboxMeta] = []
                for i, f in enumerate(chunk):
                    square, meta = letterbox(
                        f, size, pad_value=pre.pad_value, keep_aspect=pre.letterbox
                    )
                    if pre.color == "BGR":
                        square = square[..., ::-1]
                    np.multiply(square.transpose(2, 0, 1), np.float32(pre.scale), out=self._buf[i])
                    metas.append(meta)
                raw = det.infer(self._buf[:n])
                out.extend(det.postprocess(raw, metas, conf=conf, iou=iou, classes=[PERSON]))
        return out


_BATCHERS: weakref.WeakKeyDictionary[Any, _BatchPreprocessor] = weakref.WeakKeyDictionary()
_BATCHERS_LOCK = threading.Lock()


def _batcher_for(detector: Detector) -> _BatchPreprocessor:
    """The one input buffer of a detector, shared by every camera that uses it (so
    their frames can be detected in one batch)."""
    with _BATCHERS_LOCK:
        b = _BATCHERS.get(detector)
        if b is None:
            b = _BATCHERS[detector] = _BatchPreprocessor()
        return b


class CameraPipeline:
    """Detection, tracking, embedding and aggregation for one camera.

    Args:
        camera_id: The camera's id (any string; the server's camera id).
        detector: A person detector (a model directory with class ``person``,
            loaded by :func:`cv.models.load.load_detector`).
        embedder: The re-ID embedder (:func:`cv.models.reid.load_embedder`).
        tracker_kind: ``bytetrack`` or ``botsort``.
        fps: The camera's frame rate (for the tracker's lost-track buffer).
        min_track_frames: Frames a track must have been matched in before it is
            embedded (short tracks are often false detections).
        matcher: The watch-list matcher; without one no sightings are raised. It
            is given every person detected in the frame, tracked or not, to
            redact from a sighting's frame (:attr:`WatchlistMatcher.redact_bystanders`).
        conf: Detector score threshold (low: ByteTrack uses low-score boxes to keep
            tracks alive; new tracks need ``new_track_thresh``).
        iou: Detector NMS IoU.
        embed_every: Re-embed a track every this many frames.
        reembed_iou: ... or sooner (after 2 frames) when its box overlaps its last
            embedded box by less than this IoU (it moved or changed pose).
        max_embeds_per_frame: Most crops embedded per frame of this camera.
        max_covered: Crops more hidden than this behind other people are not embedded.
        min_crop_height: Crops lower than this (pixels) are not embedded.
        tracker_params: Overrides of the tracker's settings (see :class:`Tracker`).
        max_finished: Finished track summaries kept until :meth:`finished_tracks`
            collects them (the oldest are dropped beyond it).

    Raises:
        ConfigError: If the detector has no ``person`` class, or a setting is invalid.
    """

    def __init__(
        self,
        camera_id: str,
        *,
        detector: Detector,
        embedder: Embedder,
        tracker_kind: str = "bytetrack",
        fps: float = 10,
        min_track_frames: int = 3,
        matcher: WatchlistMatcher | None = None,
        conf: float = 0.1,
        iou: float = 0.6,
        embed_every: int = 5,
        reembed_iou: float = 0.5,
        max_embeds_per_frame: int = 8,
        max_covered: float = 0.4,
        min_crop_height: int = 32,
        tracker_params: Mapping[str, Any] | None = None,
        max_finished: int = 1000,
    ) -> None:
        if PERSON not in detector.classes:
            raise ConfigError(
                f"the person detector has no class {PERSON!r}; its classes are {detector.classes}",
                field="detector",
            )
        if min_track_frames < 1 or embed_every < 1 or max_embeds_per_frame < 0:
            raise ConfigError(
                "min_track_frames and embed_every must be >= 1, max_embeds_per_frame >= 0",
                field="pipeline",
            )
        self.camera_id = str(camera_id)
        self.detector = detector
        self.embedder = embedder
        self.matcher = matcher
        self.fps = float(fps)
        self.min_track_frames = min_track_frames
        self.conf = conf
        self.iou = iou
        self.embed_every = embed_every
        self.reembed_iou = reembed_iou
        self.max_embeds_per_frame = max_embeds_per_frame
        self.max_covered = max_covered
        self.min_crop_height = min_crop_height
        self.tracker = Tracker(tracker_kind, fps=fps, **dict(tracker_params or {}))
        self.lock = threading.RLock()
        self._pre = _batcher_for(detector)
        self._tracks: dict[int, _TrackState] = {}
        self._finished: deque[TrackSummary] = deque(maxlen=max_finished)
        self._last_time: float | None = None

    # -- the public per-frame call

    def process(self, frame: NDArray[np.uint8], t: float) -> FrameResult:
        """Runs one frame through the pipeline.

        Args:
            frame: ``(H, W, 3) uint8`` RGB.
            t: The frame's time in seconds; not earlier than the previous frame's.

        Returns:
            The frame's tracks, the track summaries that changed and new sightings.

        Raises:
            DataValidationError: If the frame is not ``(H, W, 3) uint8`` or ``t`` is
                not finite or goes back in time.
        """
        return process_frames([(self, frame, t)])[0]

    def finished_tracks(self, *, flush: bool = False) -> list[TrackSummary]:
        """Summaries of the tracks that ended since the last call (collected once).

        Args:
            flush: Also end every live track now (end of a video or stream).
        """
        with self.lock:
            if flush:
                for tid in list(self._tracks):
                    self._finish(tid)
                self.tracker.reset(keep_ids=True)
            out = list(self._finished)
            self._finished.clear()
        return out

    def live_tracks(self) -> list[TrackSummary]:
        """Summaries of the tracks alive now."""
        with self.lock:
            return [s.summary(self.camera_id) for s in self._tracks.values()]

    # -- stages (called by process_frames with the lock held)

    def _check(self, frame: Any, t: Any) -> float:
        check_frame(frame, field=f"frame (camera {self.camera_id})")
        try:
            tf = float(t)
        except (TypeError, ValueError):
            raise DataValidationError(
                f"must be a time in seconds, got {t!r}", field=f"t (camera {self.camera_id})"
            ) from None
        if not math.isfinite(tf):
            raise DataValidationError(
                f"must be finite, got {t!r}", field=f"t (camera {self.camera_id})"
            )
        if self._last_time is not None and tf < self._last_time:
            raise DataValidationError(
                f"frame time {tf} is earlier than the previous frame's {self._last_time}; "
                "frames of one camera must come in order",
                field=f"t (camera {self.camera_id})",
            )
        return tf

    def _track(self, frame: NDArray[np.uint8], t: float, dets: list[Detection]) -> _Pending:
        from cv.models.reid import crop_box

        self._last_time = t
        tracks = self.tracker.update(dets, frame)
        fi = self.tracker.frame_index
        h, w = frame.shape[:2]
        pending = _Pending(
            camera=self,
            frame=frame,
            time=t,
            tracks=tracks,
            people=[d.box for d in dets],
        )
        due: list[tuple[int, int, Track, float]] = []
        boxes = [tr.box for tr in tracks]
        for i, tr in enumerate(tracks):
            st = self._tracks.get(tr.track_id)
            if st is None:
                st = _TrackState(tr.track_id, first_time=t, last_time=t, last_box=tr.box)
                self._tracks[tr.track_id] = st
            st.frames += 1
            st.last_time = t
            st.last_box = tr.box
            if tr.length < self.min_track_frames:
                continue
            if tr.box[3] - tr.box[1] < self.min_crop_height or tr.box[2] - tr.box[0] < 4:
                continue
            covered = occlusion(tr.box, boxes[:i] + boxes[i + 1 :])
            if covered > self.max_covered:
                continue
            since = fi - st.last_embed_frame
            moved = st.last_embed_box is not None and _iou(st.last_embed_box, tr.box) < (
                self.reembed_iou
            )
            if st.emb_count == 0 or since >= self.embed_every or (moved and since >= 2):
                q = crop_quality(tr.box, tr.score, covered=covered, frame_hw=(h, w))
                due.append((0 if st.emb_count == 0 else 1, -since, tr, q))
        due.sort(key=lambda d: (d[0], d[1]))
        for _, _, tr, q in due[: self.max_embeds_per_frame]:
            pending.crops.append(crop_box(frame, tr.box))
            pending.crop_meta.append((tr.track_id, tr.box, q))
        return pending

    def _aggregate(self, pending: _Pending, embeddings: NDArray[np.float32]) -> FrameResult:
        fi = self.tracker.frame_index
        updated: list[TrackSummary] = []
        embedded_ids: set[int] = set()
        for (tid, box, q), crop, vec in zip(
            pending.crop_meta, pending.crops, embeddings, strict=True
        ):
            st = self._tracks[tid]
            v = l2_normalise(vec)
            st.emb_sum = v.copy() if st.emb_sum is None else st.emb_sum + v
            st.emb_count += 1
            st.last_embed_frame = fi
            st.last_embed_box = box
            if q > st.best_quality:
                st.best_quality = q
                st.best_crop = crop  # crop_box copies: safe from frame-buffer reuse
                st.best_box = box
                st.best_time = pending.time
            embedded_ids.add(tid)
            updated.append(st.summary(self.camera_id))
        sightings: list[Sighting] = []
        if self.matcher is not None and updated:
            sightings = self.matcher.match(
                updated,
                frame=pending.frame,
                time=pending.time,
                boxes={tr.track_id: tr.box for tr in pending.tracks},
                people=pending.people + [tr.box for tr in pending.tracks],
            )
        self._collect_finished()
        boxes: list[TrackBox] = []
        for tr in pending.tracks:
            best = (
                None
                if self.matcher is None
                else self.matcher.best_match(self.camera_id, tr.track_id)
            )
            boxes.append(
                TrackBox(
                    track_id=tr.track_id,
                    box=tr.box,
                    score=tr.score,
                    embedded=tr.track_id in embedded_ids,
                    entry_key=None if best is None else best[0],
                    label=None
                    if best is None or self.matcher is None
                    else self.matcher.labels.get(best[0], best[0]),
                    similarity=None if best is None else best[1],
                )
            )
        return FrameResult(
            camera_id=self.camera_id,
            time=pending.time,
            frame_index=fi,
            tracks=boxes,
            detections=len(pending.people),
            embedded=len(pending.crops),
            updated=updated,
            sightings=sightings,
        )

    def _collect_finished(self) -> None:
        alive = self.tracker.alive_ids()
        for tid in [tid for tid in self._tracks if tid not in alive]:
            self._finish(tid)

    def _finish(self, tid: int) -> None:
        st = self._tracks.pop(tid)
        if st.frames >= self.min_track_frames:
            self._finished.append(st.summary(self.camera_id, finished=True))
        if self.matcher is not None:
            self.matcher.forget(self.camera_id, tid)


def process_frames(
    items: Sequence[tuple[CameraPipeline, NDArray[np.uint8], float]],
    *,
    timings: dict[str, float] | None = None,
) -> list[FrameResult]:
    """Processes one frame each of several cameras, batching the networks.

    Frames are detected in one batch per detector and crops embedded in one batch
    per embedder, so two cameras cost little more than one. Each camera's lock is
    held throughout (taken in camera-id order, so concurrent calls cannot deadlock).

    Args:
        items: ``(pipeline, frame, time)`` per camera; a camera at most once.
        timings: When given, seconds spent per stage (``detect``, ``track``,
            ``embed``, ``match``) are added to it (benchmarks).

    Returns:
        One :class:`FrameResult` per item, in order.

    Raises:
        DataValidationError: A bad frame or time (the camera is named), or a camera
            given twice.
    """
    cams = [p for p, _, _ in items]
    if len({id(c) for c in cams}) != len(cams):
        raise DataValidationError("a camera appears more than once in one batch", field="items")
    ordered = sorted(cams, key=lambda c: c.camera_id)
    for c in ordered:
        c.lock.acquire()
    clock = _time.perf_counter
    t0 = clock()
    try:
        times = [c._check(f, t) for c, f, t in items]
        # Detect: one batch per distinct detector (normally one for all cameras).
        dets: list[list[Detection] | None] = [None] * len(items)
        groups: dict[tuple[int, float, float], list[int]] = {}
        for i, c in enumerate(cams):
            groups.setdefault((id(c._pre), c.conf, c.iou), []).append(i)
        for idxs in groups.values():
            c0 = cams[idxs[0]]
            found = c0._pre.detect(
                c0.detector, [items[i][1] for i in idxs], conf=c0.conf, iou=c0.iou
            )
            for i, d in zip(idxs, found, strict=True):
                dets[i] = d
        t1 = clock()
        pendings = [c._track(items[i][1], times[i], dets[i] or []) for i, c in enumerate(cams)]
        t2 = clock()
        # Embed: one batch per distinct embedder.
        vecs: list[NDArray[np.float32]] = [np.zeros((0, 0), np.float32)] * len(items)
        egroups: dict[int, list[int]] = {}
        for i, c in enumerate(cams):
            egroups.setdefault(id(c.embedder), []).append(i)
        for idxs in egroups.values():
            crops = [crop for i in idxs for crop in pendings[i].crops]
            if not crops:
                continue
            out = cams[idxs[0]].embedder.embed(crops)
            start = 0
            for i in idxs:
                n = len(pendings[i].crops)
                vecs[i] = out[start : start + n]
                start += n
        t3 = clock()
        results = [
            c._aggregate(pendings[i], vecs[i] if len(pendings[i].crops) else _EMPTY)
            for i, c in enumerate(cams)
        ]
        if timings is not None:
            for key, dt in (
                ("detect", t1 - t0),
                ("track", t2 - t1),
                ("embed", t3 - t2),
                ("match", clock() - t3),
            ):
                timings[key] = timings.get(key, 0.0) + dt
        return results
    finally:
        for c in reversed(ordered):
            c.lock.release()


_EMPTY = np.zeros((0, 0), dtype=np.float32)


class MultiCameraPipeline:
    """Several cameras sharing one detector, one embedder and one matcher.

    Args:
        camera_ids: The cameras to start with.
        detector: The person detector.
        embedder: The re-ID embedder.
        matcher: The watch-list matcher, shared by all cameras (optional).
        fps: Default frame rate of the cameras.
        **pipeline_kwargs: Further :class:`CameraPipeline` settings, for every camera.
    """

    def __init__(
        self,
        camera_ids: Iterable[str] = (),
        *,
        detector: Detector,
        embedder: Embedder,
        matcher: WatchlistMatcher | None = None,
        fps: float = 10,
        **pipeline_kwargs: Any,
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.matcher = matcher
        self.fps = fps
        self.pipeline_kwargs = pipeline_kwargs
        self.timings: dict[str, float] = {}
        self._cameras: dict[str, CameraPipeline] = {}
        self._lock = threading.Lock()
        for cid in camera_ids:
            self.add_camera(cid)

    @property
    def camera_ids(self) -> list[str]:
        """The cameras, sorted."""
        with self._lock:
            return sorted(self._cameras)

    def add_camera(self, camera_id: str, *, fps: float | None = None) -> CameraPipeline:
        """Adds a camera (its own tracker and tracks); returns its pipeline.

        Raises:
            ConfigError: If the camera is already there.
        """
        with self._lock:
            if camera_id in self._cameras:
                raise ConfigError(
                    f"camera {camera_id!r} is already in the pipeline", field="camera"
                )
            pipe = CameraPipeline(
                camera_id,
                detector=self.detector,
                embedder=self.embedder,
                matcher=self.matcher,
                fps=fps or self.fps,
                **self.pipeline_kwargs,
            )
            self._cameras[camera_id] = pipe
            return pipe

    def remove_camera(self, camera_id: str) -> list[TrackSummary]:
        """Removes a camera; returns its tracks, all finished.

        Raises:
            NotFoundError: If the camera is not in the pipeline.
        """
        pipe = self.camera(camera_id)
        with self._lock:
            self._cameras.pop(camera_id, None)
        return pipe.finished_tracks(flush=True)

    def camera(self, camera_id: str) -> CameraPipeline:
        """The pipeline of one camera.

        Raises:
            NotFoundError: If the camera is not in the pipeline (the known ones are listed).
        """
        with self._lock:
            pipe = self._cameras.get(camera_id)
            known = sorted(self._cameras)
        if pipe is None:
            raise NotFoundError(
                f"unknown camera {camera_id!r}; known cameras: {', '.join(known) or 'none'}",
                field="camera_id",
            )
        return pipe

    def process(self, camera_id: str, frame: NDArray[np.uint8], t: float) -> FrameResult:
        """Processes one frame of one camera (see :meth:`CameraPipeline.process`)."""
        return self.camera(camera_id).process(frame, t)

    def process_batch(
        self, items: Sequence[tuple[str, NDArray[np.uint8], float]]
    ) -> list[FrameResult]:
        """Processes one frame each of several cameras in one batch (see :func:`process_frames`).

        Seconds per stage add up in :attr:`timings`.
        """
        return process_frames(
            [(self.camera(cid), f, t) for cid, f, t in items], timings=self.timings
        )

    def finished_tracks(self, *, flush: bool = False) -> list[TrackSummary]:
        """Finished tracks of every camera (see :meth:`CameraPipeline.finished_tracks`)."""
        out: list[TrackSummary] = []
        for cid in self.camera_ids:
            out.extend(self.camera(cid).finished_tracks(flush=flush))
        return out


# --------------------------------------------------------------------------- drawing


_TRACK_COLOURS = (0, 1, 4, 5, 6, 7)
"""Palette indices (cv.draw) of unmatched tracks; 2 (red) marks watch-list matches."""


def annotate(frame: NDArray[np.uint8], result: FrameResult) -> NDArray[np.uint8]:
    """A copy of ``frame`` with each track's box and id; matched tracks in red with
    the watch-list label and similarity."""
    from cv.draw import draw_boxes

    if not result.tracks:
        return frame.copy()
    labels, colours = [], []
    for tb in result.tracks:
        if tb.entry_key is not None:
            labels.append(f"#{tb.track_id} {tb.label} {tb.similarity:.2f}")
            colours.append(2)
        else:
            labels.append(f"#{tb.track_id}")
            colours.append(_TRACK_COLOURS[tb.track_id % len(_TRACK_COLOURS)])
    return draw_boxes(frame, [tb.box for tb in result.tracks], labels, class_ids=colours)


# --------------------------------------------------------------------------- video


def is_stream(source: str | PathLike[str]) -> bool:
    """Whether ``source`` is a network stream URL (RTSP, HTTP...) rather than a file."""
    return str(source).lower().startswith(STREAM_PREFIXES)


class VideoReader:
    """Frames of a video file or stream as RGB arrays, reusing two buffers.

    The frame yielded is overwritten by the next one: copy it to keep it.

    Args:
        source: A video file, or a stream URL (``rtsp://...``).
        fps: Frame rate to assume when the source does not say (streams often do not).

    Raises:
        NotFoundError: If a file source does not exist.
        DataFormatError: If OpenCV cannot open or decode it.
    """

    def __init__(self, source: str | PathLike[str], *, fps: float | None = None) -> None:
        self.source = str(source)
        self.stream = is_stream(source)
        if not self.stream:
            p = Path(source)
            if not p.is_file():
                raise NotFoundError("video file does not exist", path=p)
        self._cap = cv2.VideoCapture(self.source)
        if not self._cap.isOpened():
            self._cap.release()
            raise DataFormatError(
                "OpenCV cannot open this video (unknown format, corrupt file or "
                "unreachable stream)",
                path=self.source,
            )
        got = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = float(fps) if fps else (got if 0 < got < 1000 else 10.0)
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count: int | None = n if n > 0 and not self.stream else None
        self._bgr: NDArray[np.uint8] | None = None
        self._rgb: NDArray[np.uint8] | None = None

    def __iter__(self) -> Iterator[NDArray[np.uint8]]:
        first = True
        while True:
            ok, bgr = self._cap.read(self._bgr)
            if not ok or bgr is None:
                if first:
                    raise DataFormatError("no frame could be decoded", path=self.source)
                return
            first = False
            self._bgr = bgr
            if self._rgb is None or self._rgb.shape != bgr.shape:
                self._rgb = np.empty_like(bgr)
            cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=self._rgb)
            yield self._rgb

    def close(self) -> None:
        """Releases the capture."""
        self._cap.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoWriter:
    """Writes RGB frames to an MP4 file (OpenCV, ``mp4v``).

    Raises:
        DataFormatError: If OpenCV cannot open the file for writing.
    """

    def __init__(self, path: str | PathLike[str], *, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fourcc = cv2.VideoWriter.fourcc(*"mp4v")
        self._w = cv2.VideoWriter(str(self.path), fourcc, float(fps), size)
        if not self._w.isOpened():
            raise DataFormatError("OpenCV cannot write an MP4 video here", path=self.path)

    def write(self, rgb: NDArray[np.uint8]) -> None:
        """Appends one frame."""
        self._w.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        """Finishes the file."""
        self._w.release()


@dataclass(slots=True)
class VideoRunResult:
    """What :func:`run_video` did.

    Attributes:
        source: The video file or stream.
        camera_id: The camera id the frames were processed under.
        frames: Frames processed.
        video_seconds: Seconds of video processed (frames / fps).
        wall_seconds: Wall time of the processing.
        fps: Frame rate used.
        tracks: Summaries of every track (all finished at the end).
        sightings: The sightings raised.
        out_video: The annotated video, when written.
        sightings_path: The sightings JSON, when written.
    """

    source: str
    camera_id: str
    frames: int
    video_seconds: float
    wall_seconds: float
    fps: float
    tracks: list[TrackSummary]
    sightings: list[Sighting]
    out_video: Path | None = None
    sightings_path: Path | None = None

    @property
    def realtime_factor(self) -> float:
        """Seconds of video processed per wall second."""
        return self.video_seconds / self.wall_seconds if self.wall_seconds > 0 else float("inf")


def write_sightings(
    sightings: Sequence[Sighting], path: str | PathLike[str], *, images: bool = True
) -> Path:
    """Writes sightings as JSON; with ``images``, their frame and crop as JPEG files
    in ``<stem>_images/`` beside it, named in the JSON.

    Returns:
        The JSON file.
    """
    from cv.image import write_image

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    img_dir = p.with_name(p.stem + "_images")
    docs = []
    for i, s in enumerate(sightings):
        doc = s.to_dict()
        if images:
            stem = f"{i:04d}_{s.camera_id}_t{s.track_id}_{s.entry_key}"
            stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)
            if s.frame is not None:
                doc["frame"] = str(write_image(img_dir / f"{stem}_frame.jpg", s.frame).name)
            if s.crop is not None:
                doc["crop"] = str(write_image(img_dir / f"{stem}_crop.jpg", s.crop).name)
        docs.append(doc)
    out = {"sightings": docs, "images": img_dir.name if images and sightings else None}
    p.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return p


def run_video(
    source: str | PathLike[str],
    *,
    camera_id: str,
    detector: Detector,
    embedder: Embedder,
    matcher: WatchlistMatcher | None = None,
    out_video: str | PathLike[str] | None = None,
    sightings_path: str | PathLike[str] | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
    start_time: float = 0.0,
    on_frame: Callable[[FrameResult], None] | None = None,
    **pipeline_kwargs: Any,
) -> VideoRunResult:
    """Runs a video file or stream through a :class:`CameraPipeline`.

    Args:
        source: A video file OpenCV reads (MP4, AVI...) or a stream URL (``rtsp://``).
        camera_id: The camera the video comes from.
        detector: The person detector.
        embedder: The re-ID embedder.
        matcher: The watch-list matcher; without it, tracks only.
        out_video: Write an annotated MP4 here (boxes, track ids, matched labels and
            similarities).
        sightings_path: Write the sightings here as JSON (images beside it).
        fps: Frame rate, when the source does not give it (or to override it).
        max_frames: Stop after this many frames (a stream runs until it ends otherwise).
        start_time: Time of the first frame (e.g. the recording's epoch seconds);
            frame ``i`` is at ``start_time + i / fps``.
        on_frame: Called with each frame's result (progress bars, live views).
        **pipeline_kwargs: Further :class:`CameraPipeline` settings.

    Returns:
        Counts, timings, every track's summary and the sightings.

    Raises:
        NotFoundError: If the video file does not exist.
        DataFormatError: If it cannot be opened or decoded, or the output cannot be written.
    """
    reader = VideoReader(source, fps=fps)
    pipe = CameraPipeline(
        camera_id,
        detector=detector,
        embedder=embedder,
        matcher=matcher,
        fps=reader.fps,
        **pipeline_kwargs,
    )
    writer: VideoWriter | None = None
    sightings: list[Sighting] = []
    tracks: list[TrackSummary] = []
    n = 0
    t0 = _time.perf_counter()
    try:
        for frame in reader:
            if writer is None and out_video is not None:
                h, w = frame.shape[:2]
                writer = VideoWriter(out_video, fps=reader.fps, size=(w, h))
            result = pipe.process(frame, start_time + n / reader.fps)
            n += 1
            sightings.extend(result.sightings)
            tracks.extend(pipe.finished_tracks())
            if writer is not None:
                writer.write(annotate(frame, result))
            if on_frame is not None:
                on_frame(result)
            if max_frames is not None and n >= max_frames:
                break
    finally:
        reader.close()
        if writer is not None:
            writer.close()
    tracks.extend(pipe.finished_tracks(flush=True))
    wall = _time.perf_counter() - t0
    written = None
    if sightings_path is not None:
        written = write_sightings(sightings, sightings_path)
    return VideoRunResult(
        source=str(source),
        camera_id=str(camera_id),
        frames=n,
        video_seconds=n / reader.fps,
        wall_seconds=wall,
        fps=reader.fps,
        tracks=sorted(tracks, key=lambda s: s.track_id),
        sightings=sightings,
        out_video=None if writer is None else Path(out_video),  # type: ignore[arg-type]
        sightings_path=written,
    )


# --------------------------------------------------------------------------- defaults

DEFAULT_DETECTOR_NAME = "person-yolo11n"


def default_detector_dir() -> Path:
    """Where the shipped person detector lives: ``models/zoo/person-yolo11n``."""
    return Path(__file__).resolve().parent / "zoo" / DEFAULT_DETECTOR_NAME


def default_embedder_dir() -> Path:
    """Where the shipped re-ID embedder lives: ``models/zoo/reid-osnet``."""
    from cv.models.reid import default_model_dir

    return default_model_dir()
