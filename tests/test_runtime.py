"""The NumPy side of the detector runtimes: letterbox, decoding, NMS, postprocess."""

from __future__ import annotations

import numpy as np
import pytest

from cv.errors import ConfigError, DataValidationError
from cv.models.runtime import (
    Detector,
    LetterboxMeta,
    decode,
    letterbox,
    nms,
    preprocess,
    unletterbox,
)
from cv.models.weights import Preprocessing, WeightsRecord


def test_letterbox_wide_image_hand_worked() -> None:
    # 100 × 50 into 64: scale 0.64, resized 64 × 32, 16 rows of padding above and below.
    img = np.full((50, 100, 3), 200, dtype=np.uint8)
    out, meta = letterbox(img, 64)
    assert out.shape == (64, 64, 3)
    assert meta == LetterboxMeta(
        width=100, height=50, scale_x=0.64, scale_y=0.64, pad_x=0, pad_y=16
    )
    assert (out[:16] == 114).all() and (out[48:] == 114).all()
    assert (out[16:48] == 200).all()


def test_letterbox_tall_odd_padding() -> None:
    # 30 wide × 60 tall into 64: scale 64/60, resized 32 × 64, pad 16 left, 16 right.
    out, meta = letterbox(np.zeros((60, 30, 3), np.uint8), 64)
    assert (meta.pad_x, meta.pad_y) == (16, 0)
    assert meta.scale_x == pytest.approx(32 / 30) and meta.scale_y == pytest.approx(64 / 60)
    assert (out[:, :16] == 114).all() and (out[:, 48:] == 114).all()
    assert (out[:, 16:48] == 0).all()


def test_unletterbox_round_trip_exact() -> None:
    meta = LetterboxMeta(width=100, height=50, scale_x=0.64, scale_y=0.64, pad_x=0, pad_y=16)
    original = np.array([[10.0, 5.0, 60.0, 45.0], [0.0, 0.0, 100.0, 50.0]])
    in_input = original.copy()
    in_input[:, 0::2] = in_input[:, 0::2] * 0.64 + 0
    in_input[:, 1::2] = in_input[:, 1::2] * 0.64 + 16
    np.testing.assert_allclose(in_input[0], [6.4, 19.2, 38.4, 44.8])
    np.testing.assert_allclose(unletterbox(in_input, meta), original, atol=1e-9)


def test_unletterbox_clips_to_image() -> None:
    meta = LetterboxMeta(width=100, height=50, scale_x=0.64, scale_y=0.64, pad_x=0, pad_y=16)
    # A box reaching into the padding: y from 10 (padding) to 60 (padding).
    out = unletterbox(np.array([[-5.0, 10.0, 70.0, 60.0]]), meta)
    np.testing.assert_allclose(out, [[0.0, 0.0, 100.0, 50.0]])


def test_nms_suppresses_overlaps_keeps_others() -> None:
    boxes = np.array(
        [[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10.5]], dtype=float
    )
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    # IoU(box0, box1) = 90 / 110 = 0.818; box3 contains box0: IoU = 100/105.
    keep = nms(boxes, scores, iou=0.5)
    assert keep.tolist() == [3, 2]
    # With a threshold above 0.952, nothing overlaps enough to be suppressed.
    assert nms(boxes, scores, iou=0.96).tolist() == [3, 0, 1, 2]


def test_nms_is_class_aware() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10]], dtype=float)
    scores = np.array([0.9, 0.8])
    assert nms(boxes, scores, np.array([0, 1]), iou=0.5).tolist() == [0, 1]
    assert nms(boxes, scores, np.array([1, 1]), iou=0.5).tolist() == [0]
    assert nms(boxes, scores, None, iou=0.5).tolist() == [0]


def test_nms_max_det_and_empty() -> None:
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(5)], dtype=float)
    scores = np.array([0.1, 0.5, 0.3, 0.9, 0.2])
    assert nms(boxes, scores, iou=0.5, max_det=2).tolist() == [3, 1]
    assert nms(np.zeros((0, 4)), np.zeros(0), iou=0.5).tolist() == []


def _raw(nc: int, anchors: list[tuple[float, float, float, float, list[float]]]) -> np.ndarray:
    raw = np.zeros((4 + nc, len(anchors)), dtype=np.float32)
    for j, (cx, cy, w, h, scores) in enumerate(anchors):
        raw[:4, j] = [cx, cy, w, h]
        raw[4:, j] = scores
    return raw


def test_decode_hand_built() -> None:
    raw = _raw(
        3,
        [
            (32, 32, 10, 20, [0.1, 0.8, 0.3]),  # class 1 at 0.8
            (5, 5, 4, 4, [0.2, 0.1, 0.1]),  # below conf 0.25
            (40, 10, 8, 8, [0.3, 0.0, 0.6]),  # class 2 at 0.6 (and class 0 at 0.3)
        ],
    )
    boxes, scores, cls = decode(raw, conf=0.25)
    np.testing.assert_allclose(boxes, [[27, 22, 37, 42], [36, 6, 44, 14]])
    np.testing.assert_allclose(scores, [0.8, 0.6])
    assert cls.tolist() == [1, 2]
    _, scores_ml, cls_ml = decode(raw, conf=0.25, multi_label=True)
    assert sorted(
        zip(cls_ml.tolist(), np.round(scores_ml.astype(float), 3).tolist(), strict=True)
    ) == [
        (0, 0.3),
        (1, 0.8),
        (2, 0.3),
        (2, 0.6),
    ]
    _, _, cls_masked = decode(raw, conf=0.25, class_mask=np.array([True, False, True]))
    assert cls_masked.tolist() == [2, 2]


class _FixedDetector(Detector):
    """A detector whose network output is given: exercises the shared NumPy code."""

    def __init__(self, record: WeightsRecord, raw: np.ndarray) -> None:
        super().__init__(record)
        self.raw = raw

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        return np.repeat(self.raw[None], len(tensor), axis=0)


def _record(**kw: object) -> WeightsRecord:
    return WeightsRecord(
        name="t", architecture="yolo11n", classes=["gun", "knife", "scissors"], input_size=64, **kw
    )


def test_postprocess_gives_detection_in_original_pixels() -> None:
    # Image 100 × 50 -> scale 0.64, pad_y 16. A box centred (32, 32) 12.8 × 6.4 in the
    # input is x 25.6..38.4, y 28.8..35.2 -> original x 40..60, y 20..30.
    raw = _raw(3, [(32, 32, 12.8, 6.4, [0.0, 0.9, 0.0]), (32, 32, 12.0, 6.0, [0.0, 0.7, 0.0])])
    det = _FixedDetector(_record(), raw)
    (found,) = det.predict([np.zeros((50, 100, 3), np.uint8)], conf=0.25, iou=0.5)
    assert len(found) == 1  # the second box is suppressed (IoU 0.88)
    d = found[0]
    assert (d.category, d.class_id) == ("knife", 1)
    assert d.score == pytest.approx(0.9)
    np.testing.assert_allclose(d.box, (40, 20, 60, 30), atol=1e-4)
    assert det.predict([np.zeros((50, 100, 3), np.uint8)], classes=["gun"]) == [[]]


def test_predict_batches_and_checks_inputs() -> None:
    raw = _raw(3, [(32, 32, 10, 10, [0.9, 0.0, 0.0])])
    det = _FixedDetector(_record(), raw)
    det.max_batch = 2
    out = det.predict([np.zeros((64, 64, 3), np.uint8)] * 5)
    assert [len(x) for x in out] == [1] * 5
    with pytest.raises(DataValidationError, match=r"images\[1\]"):
        det.predict([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)])
    with pytest.raises(DataValidationError, match="uint8"):
        det.predict([np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ConfigError, match="unknown classes"):
        det.predict([np.zeros((8, 8, 3), np.uint8)], classes=["banana"])
    with pytest.raises(DataValidationError, match="raw output has shape"):
        det.postprocess(np.zeros((1, 5, 10), np.float32), [None])  # type: ignore[list-item]


def test_preprocess_contract() -> None:
    img = np.zeros((50, 100, 3), np.uint8)
    img[..., 0] = 255  # pure red
    x, metas = preprocess([img], size=64, preprocessing=Preprocessing())
    assert x.shape == (1, 3, 64, 64) and x.dtype == np.float32
    assert x[0, 0, 32, 32] == 1.0 and x[0, 2, 32, 32] == 0.0
    assert x[0, 0, 0, 0] == pytest.approx(114 / 255)
    assert metas[0].pad_y == 16
    xb, _ = preprocess([img], size=64, preprocessing=Preprocessing(color="BGR"))
    assert xb[0, 2, 32, 32] == 1.0 and xb[0, 0, 32, 32] == 0.0


def test_server_sessions_do_not_spin(tmp_path) -> None:
    # The server turns ONNX Runtime's spinning off: its threads share the cores that
    # decode uploads. The shipped default model is a real graph to open.
    from cv.models.load import default_model_dir, load_onnx_detector

    spinning = load_onnx_detector(default_model_dir())
    quiet = load_onnx_detector(default_model_dir(), spin_wait=False)
    key = "session.intra_op.allow_spinning"
    assert quiet.session.get_session_options().get_session_config_entry(key) == "0"
    # Left at ONNX Runtime's default (spinning), the entry is simply absent.
    with pytest.raises(RuntimeError, match="allow_spinning"):
        spinning.session.get_session_options().get_session_config_entry(key)
