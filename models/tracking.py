"""Multi-object tracking of detections within one camera: ultralytics' ByteTrack or BoT-SORT.

:class:`Tracker` wraps ``BYTETracker`` / ``BOTSORT`` (reached through
:mod:`cv.models.ultra`, the one import point of ultralytics) behind our records:
it takes one frame's :class:`cv.records.Detection` list and returns the
:class:`Track` of each detection that belongs to a confirmed track, with a stable
integer id (1, 2, ... per tracker).

Settings start from the tracker YAML shipped inside the installed ultralytics
(``cfg/trackers/bytetrack.yaml`` / ``botsort.yaml``) and take our keyword
overrides. Two differ on purpose:

* ``track_buffer`` (frames a lost track is kept for re-finding) is derived from
  ``lost_s`` seconds and the camera's ``fps``: ultralytics' value assumes 30 fps,
  CCTV often runs at 10.
* BoT-SORT's global motion compensation (``gmc_method``) is off: CCTV cameras are
  fixed, and optical flow on every frame costs CPU. Its appearance re-ID
  (``with_reid``) is off unless an ``encoder`` is given (see :class:`Tracker`).

A tracker is not thread-safe; one camera, one tracker, frames in order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cv.errors import ConfigError, DataValidationError
from cv.records import Detection

TRACKER_KINDS: tuple[str, ...] = ("bytetrack", "botsort")
"""Accepted ``kind`` values."""

DEFAULT_LOST_S = 2.0
"""Seconds a lost track is kept for re-finding (people pass behind each other)."""

Encoder = Callable[[NDArray[np.uint8], NDArray[np.float64]], Sequence[NDArray[np.float32]]]
"""BoT-SORT appearance encoder: ``(frame RGB, boxes (K, 5) cx, cy, w, h, idx) -> K features``."""


@dataclass(frozen=True, slots=True)
class Track:
    """One confirmed track in one frame.

    Attributes:
        track_id: Stable id of the track within its tracker (1, 2, ...).
        box: ``(x1, y1, x2, y2)`` absolute pixels of the original frame, 0-based:
            the matched detection's box (not the Kalman-smoothed one).
        score: The matched detection's score.
        det_index: Index of the matched detection in the list given to
            :meth:`Tracker.update`.
        category: The detection's class name.
        length: Frames the track has been matched in so far (1 on its first frame).
    """

    track_id: int
    box: tuple[float, float, float, float]
    score: float
    det_index: int
    category: str
    length: int


class _Detections:
    """The detection "results" object ultralytics' trackers read.

    They take ``conf``, ``cls``, ``xywh`` (centre, size) and ``xyxy`` arrays, boolean
    indexing and ``len``; ultralytics' own ``Boxes`` after ``.cpu().numpy()``.
    """

    __slots__ = ("cls", "conf", "xywh", "xyxy")

    def __init__(self, xyxy: NDArray[np.float32], conf: NDArray[np.float32], cls: NDArray) -> None:
        self.xyxy = xyxy
        self.conf = conf
        self.cls = cls
        wh = xyxy[:, 2:4] - xyxy[:, 0:2]
        self.xywh = np.concatenate([xyxy[:, 0:2] + wh / 2, wh], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, mask: Any) -> _Detections:
        return _Detections(self.xyxy[mask], self.conf[mask], self.cls[mask])


def _check_detections(detections: Sequence[Detection]) -> None:
    for i, d in enumerate(detections):
        if not isinstance(d, Detection):
            raise DataValidationError(
                f"must be a cv.records.Detection, got {type(d).__name__}", field=f"detections[{i}]"
            )
        x1, y1, x2, y2 = d.box
        if not all(math.isfinite(v) for v in d.box) or x2 < x1 or y2 < y1:
            raise DataValidationError(
                f"box must be finite xyxy with x2 >= x1 and y2 >= y1, got {d.box}",
                field=f"detections[{i}].box",
            )


class Tracker:
    """ByteTrack or BoT-SORT over our detections.

    Args:
        kind: ``bytetrack`` or ``botsort``.
        fps: Frames per second of the camera (turns ``lost_s`` into frames).
        lost_s: Seconds a lost track is kept for re-finding; ignored when
            ``track_buffer`` is given in frames.
        encoder: BoT-SORT only: an appearance encoder (see :data:`Encoder`); giving
            one turns ``with_reid`` on. Every detection of every frame is encoded,
            which costs far more than IoU tracking.
        **params: Overrides of ultralytics' tracker settings (``track_high_thresh``,
            ``track_low_thresh``, ``new_track_thresh``, ``track_buffer``,
            ``match_thresh``, ``fuse_score``; for BoT-SORT also ``gmc_method``,
            ``proximity_thresh``, ``appearance_thresh``).

    Raises:
        ConfigError: Unknown kind or setting, a non-positive ``fps``, or an encoder
            for ByteTrack.
    """

    def __init__(
        self,
        kind: str = "bytetrack",
        *,
        fps: float = 10,
        lost_s: float = DEFAULT_LOST_S,
        encoder: Encoder | None = None,
        **params: Any,
    ) -> None:
        from cv.models.ultra import tracker_args, tracker_class, tracker_defaults

        if kind not in TRACKER_KINDS:
            raise ConfigError(
                f"unknown tracker {kind!r}; use one of {', '.join(TRACKER_KINDS)}", field="tracker"
            )
        if not fps > 0:
            raise ConfigError(f"fps must be positive, got {fps}", field="fps")
        if encoder is not None and kind != "botsort":
            raise ConfigError("an appearance encoder needs kind='botsort'", field="encoder")
        values = tracker_defaults(kind)
        unknown = sorted(set(params) - (set(values) - {"tracker_type", "with_reid", "model"}))
        if unknown:
            allowed = sorted(set(values) - {"tracker_type", "with_reid", "model"})
            raise ConfigError(
                f"unknown {kind} settings {unknown}; known: {', '.join(allowed)}", field="tracker"
            )
        values["track_buffer"] = max(1, round(lost_s * fps))
        if kind == "botsort":
            values["gmc_method"] = "none"
            values["with_reid"] = False
        values.update(params)
        self.kind = kind
        self.fps = float(fps)
        self.settings: dict[str, Any] = values
        self._impl = tracker_class(kind)(args=tracker_args(values))
        if encoder is not None:
            # Not ultralytics' own encoders (they load or download models): ours,
            # called with the frame and the (cx, cy, w, h, idx) boxes.
            self._impl.args.with_reid = True
            self._impl.args.model = "customs-vision"
            self._impl.encoder = encoder
        self._categories: list[str] = []

    @property
    def frame_index(self) -> int:
        """Frames given to :meth:`update` so far."""
        return int(self._impl.frame_id)

    def update(
        self, detections: Sequence[Detection], frame: NDArray[np.uint8] | None = None
    ) -> list[Track]:
        """Advances the tracker by one frame.

        Args:
            detections: The frame's detections (``xyxy`` original pixels).
            frame: The frame, ``(H, W, 3) uint8`` RGB; needed only for BoT-SORT's
                motion compensation or appearance encoder.

        Returns:
            The confirmed tracks matched in this frame, in detection order. A new
            object's track is confirmed on its second consecutive frame (on the
            tracker's very first frame, at once).

        Raises:
            DataValidationError: If a detection is not a ``Detection`` with a finite
                ``xyxy`` box, or ``frame`` is not ``(H, W, 3) uint8``.
        """
        _check_detections(detections)
        if frame is not None and (
            not isinstance(frame, np.ndarray)
            or frame.dtype != np.uint8
            or frame.ndim != 3
            or frame.shape[2] != 3
        ):
            got = getattr(frame, "dtype", type(frame).__name__)
            shape = getattr(frame, "shape", None)
            raise DataValidationError(
                f"must be an (H, W, 3) uint8 RGB array, got {got} {shape}", field="frame"
            )
        for d in detections:
            if d.category not in self._categories:
                self._categories.append(d.category)
        n = len(detections)
        xyxy = np.array([d.box for d in detections], dtype=np.float32).reshape(n, 4)
        conf = np.array([d.score for d in detections], dtype=np.float32)
        cls = np.array([self._categories.index(d.category) for d in detections], dtype=np.float32)
        out = self._impl.update(_Detections(xyxy, conf, cls), frame)
        lengths = {t.track_id: t.tracklet_len for t in self._impl.tracked_stracks}
        tracks = []
        for row in out:
            idx = int(row[7])
            d = detections[idx]
            tid = int(row[4])
            tracks.append(
                Track(
                    track_id=tid,
                    box=d.box,
                    score=d.score,
                    det_index=idx,
                    category=d.category,
                    length=int(lengths.get(tid, 0)) + 1,
                )
            )
        tracks.sort(key=lambda t: t.det_index)
        return tracks

    def alive_ids(self) -> set[int]:
        """Ids of tracks that are tracked or lost but still re-findable."""
        pools = (self._impl.tracked_stracks, self._impl.lost_stracks)
        return {int(t.track_id) for pool in pools for t in pool if t.is_activated}

    def reset(self, *, keep_ids: bool = False) -> None:
        """Forgets every track.

        Args:
            keep_ids: Go on numbering from the last id instead of starting again at
                1, so that a camera's track ids stay unique across the reset.
        """
        ids = self._impl._ids
        self._impl.reset()
        if keep_ids:
            self._impl._ids = ids
