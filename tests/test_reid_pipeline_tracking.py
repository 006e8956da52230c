"""The tracker over ultralytics' ByteTrack / BoT-SORT: stable ids on synthetic moving boxes."""

from __future__ import annotations

import numpy as np
import pytest

from cv.errors import ConfigError, DataValidationError
from cv.models.tracking import Tracker
from cv.records import Detection


def _det(x: float, y: float, w: float = 40, h: float = 100, score: float = 0.9) -> Detection:
    return Detection(box=(x, y, x + w, y + h), category="person", class_id=0, score=score)


def _walk(tracker: Tracker, frames: int, *, start: int = 0, with_second: int | None = None):
    """Box A walks right 6 px per frame; box B (from frame ``with_second``) walks left."""
    ids = []
    for f in range(start, start + frames):
        dets = [_det(20 + 6 * f, 60)]
        if with_second is not None and f >= with_second:
            dets.append(_det(560 - 5 * f, 200, score=0.8))
        ids.append({t.det_index: t.track_id for t in tracker.update(dets)})
    return ids


@pytest.mark.parametrize("kind", ["bytetrack", "botsort"])
def test_moving_box_keeps_its_id_and_a_new_box_gets_a_new_one(kind: str) -> None:
    tracker = Tracker(kind, fps=10)
    ids = _walk(tracker, 40, with_second=10)
    first = {frame[0] for frame in ids}
    assert first == {1}, "the moving box changed id"
    # The second box is confirmed on its second frame and keeps one id, not A's.
    assert ids[10] == {0: 1}
    second = {frame[1] for frame in ids[11:]}
    assert len(second) == 1 and second != {1}
    assert tracker.alive_ids() == {1} | second


def test_short_gap_keeps_the_id_long_absence_gets_a_new_one() -> None:
    tracker = Tracker("bytetrack", fps=10, lost_s=1.0)  # 10 frames
    assert tracker.settings["track_buffer"] == 10
    _walk(tracker, 10)
    for _ in range(4):  # hidden for 4 frames
        tracker.update([])
    back = _walk(tracker, 3, start=14)
    assert {frame[0] for frame in back} == {1}
    for _ in range(15):  # gone for longer than the buffer
        tracker.update([])
    assert tracker.alive_ids() == set()
    again = _walk(tracker, 3, start=40)
    assert again[-1][0] != 1
    tracker.reset(keep_ids=True)  # ids stay unique across a reset kept so
    assert _walk(tracker, 1)[0][0] == again[-1][0] + 1
    tracker.reset()
    assert _walk(tracker, 1)[0][0] == 1 and tracker.frame_index == 1


def test_track_fields_are_the_detection_in_original_pixels() -> None:
    tracker = Tracker("bytetrack")
    d = _det(100.5, 50.25, 33, 90, score=0.77)
    (t,) = tracker.update([_det(5, 5, score=0.05), d])  # the first is below every threshold
    assert (t.box, t.score, t.det_index, t.category, t.length) == (d.box, 0.77, 1, "person", 1)
    (t2,) = tracker.update([_det(104, 52, 33, 90)])
    assert t2.track_id == t.track_id and t2.length == 2 and tracker.frame_index == 2


def test_botsort_takes_an_appearance_encoder() -> None:
    calls = []

    def mean_colour(frame: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
        calls.append(len(boxes))
        out = []
        for cx, cy, w, h, _ in boxes:
            x1, y1 = int(max(cx - w / 2, 0)), int(max(cy - h / 2, 0))
            crop = frame[y1 : int(cy + h / 2), x1 : int(cx + w / 2)]
            out.append(crop.reshape(-1, 3).mean(0).astype(np.float32) + 1e-3)
        return out

    tracker = Tracker("botsort", encoder=mean_colour)
    frame = np.full((360, 640, 3), 40, np.uint8)
    frame[:, :320] = (200, 30, 30)
    for f in range(5):
        out = tracker.update([_det(20 + 6 * f, 60)], frame)
    assert calls and {t.track_id for t in out} == {1}
    with pytest.raises(ConfigError, match="botsort"):
        Tracker("bytetrack", encoder=mean_colour)


def test_bad_settings_and_inputs_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="unknown tracker 'sort'"):
        Tracker("sort")
    with pytest.raises(ConfigError, match=r"unknown bytetrack settings \['gmc_method'\]"):
        Tracker("bytetrack", gmc_method="orb")
    with pytest.raises(ConfigError, match="fps"):
        Tracker("bytetrack", fps=0)
    tracker = Tracker("bytetrack", match_thresh=0.7)
    assert tracker.settings["match_thresh"] == 0.7
    with pytest.raises(DataValidationError, match=r"detections\[0\].box"):
        tracker.update([_det(10, 10, -5, 20)])
    with pytest.raises(DataValidationError, match=r"detections\[0\]"):
        tracker.update([(1, 2, 3, 4)])  # type: ignore[list-item]
    with pytest.raises(DataValidationError, match="frame: must be an"):
        tracker.update([_det(1, 1)], np.zeros((10, 10, 3), np.float32))
