"""VOC all-point AP50: the OPIXray / HiXray / EDS protocol.

Pascal VOC 2010 and later average the precision envelope over every recall
point reached ("all-point interpolation") rather than COCO's 101 fixed points
or VOC 2007's 11. The papers on OPIXray, HiXray and EDS report this figure
(from the ``voc_eval`` of their SSD code), so we compute it as the devkit does:

* per class, every detection of that class over all images, highest score first;
* a detection is compared with the ground truth of its class in its image and
  takes the one with the highest IoU; at IoU ≥ 0.5 (``VOCevaldet.m``'s
  ``ovmax >= minoverlap``) it is a true positive if that object is not yet
  taken, a false positive if it is (a duplicate), and neither if that object is
  ``difficult`` (or a crowd region) and difficult objects are not used; below
  0.5 it is a false positive;
* precision and recall along the ranked list; the precision envelope (the
  highest precision at this recall or any higher); AP = the sum of the envelope
  times each step in recall.

Boxes are continuous ``xyxy`` pixels (:mod:`cv.boxes`), so IoU needs none of the
``+ 1`` that the reference code adds to integer corner pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from cv.boxes import as_boxes, box_iou
from cv.evaluation.matching import is_difficult, pair_images, resolve_classes
from cv.predictions import Predictions
from cv.records import Dataset

IOU_THRESHOLD = 0.5


def all_point_ap(recall: ArrayLike, precision: ArrayLike) -> float:
    """VOC2010+ all-point interpolated AP of a ranked list.

    Args:
        recall: Recall after each detection of the ranked list (non-decreasing).
        precision: Precision after each detection.

    Returns:
        The area under the precision envelope over recall in ``[0, 1]``.
    """
    r = np.concatenate(([0.0], np.asarray(recall, dtype=np.float64), [1.0]))
    p = np.concatenate(([0.0], np.asarray(precision, dtype=np.float64), [0.0]))
    # Envelope: precision at a recall is the best precision at that recall or beyond.
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def ranked_ap(tp: ArrayLike, fp: ArrayLike, n_positives: int) -> float:
    """All-point AP from true / false positive flags of a score-ranked list.

    Args:
        tp: 1 where the detection at that rank is a true positive.
        fp: 1 where it is a false positive (ignored detections have 0 in both).
        n_positives: Objects to find (difficult ones excluded when ignored).

    Raises:
        ValueError: If ``n_positives`` is not positive (AP is undefined).
    """
    if n_positives <= 0:
        raise ValueError("AP is undefined without ground-truth objects")
    tp_c = np.cumsum(np.asarray(tp, dtype=np.float64))
    fp_c = np.cumsum(np.asarray(fp, dtype=np.float64))
    recall = tp_c / n_positives
    precision = tp_c / np.maximum(tp_c + fp_c, np.finfo(np.float64).eps)
    return all_point_ap(recall, precision)


def voc_ap50(
    dataset: Dataset,
    predictions: Predictions,
    *,
    use_difficult: bool = False,
    classes: Sequence[str] | None = None,
    allow_extra: bool = False,
) -> dict[str, Any]:
    """VOC all-point AP at IoU 0.5, per class and the mean over classes.

    Difficult objects are those a VOC reader listed in ``ImageRecord.meta
    ["difficult"]``; crowd annotations are treated the same way. A class without
    ground truth has AP ``None`` and is left out of the mean.

    Args:
        dataset: The ground truth.
        predictions: The model's detections.
        use_difficult: Count difficult objects as ordinary ones.
        classes: Classes to evaluate; by default every class of ``dataset``.
        allow_extra: Accept predictions for images that are not in ``dataset``.

    Returns:
        ``{"AP50": mean or None, "per_class": {class: AP or None},
        "n_gt": {class: objects counted}, "protocol": "..."}``.

    Raises:
        DataValidationError: If an image has no predictions, or a ground-truth
            class is not one the model knows.
    """
    pairs = pair_images(dataset, predictions, allow_extra=allow_extra)
    names = resolve_classes(dataset, predictions, classes)
    # One pass over the images, grouping by class: image index -> (boxes, skip flags).
    gts: dict[str, dict[int, tuple[list[tuple[float, ...]], list[bool]]]] = {c: {} for c in names}
    dets: dict[str, list[tuple[float, int, tuple[float, ...]]]] = {c: [] for c in names}
    for i, pair in enumerate(pairs):
        difficult = is_difficult(pair.record)
        for j, a in enumerate(pair.record.annotations):
            if a.category in gts:
                boxes, skip = gts[a.category].setdefault(i, ([], []))
                boxes.append(a.box)
                skip.append((j in difficult or a.iscrowd) and not use_difficult)
        for d in pair.predicted.detections:
            if d.category in dets:
                dets[d.category].append((d.score, i, d.box))

    per_class: dict[str, float | None] = {}
    n_gt: dict[str, int] = {}
    for c in names:
        gt_boxes = {i: as_boxes(b) for i, (b, _) in gts[c].items()}
        gt_skip = {i: np.array(k, dtype=bool) for i, (_, k) in gts[c].items()}
        n_pos = int(sum((~k).sum() for k in gt_skip.values()))
        n_gt[c] = n_pos
        if n_pos == 0:
            per_class[c] = None
            continue
        # A stable sort: equal scores keep image order, so the AP is reproducible.
        ranked = sorted(dets[c], key=lambda t: -t[0])
        tp = np.zeros(len(ranked))
        fp = np.zeros(len(ranked))
        taken = {i: np.zeros(len(b), dtype=bool) for i, b in gt_boxes.items()}
        for rank, (_, i, box) in enumerate(ranked):
            if i not in gt_boxes:
                fp[rank] = 1
                continue
            iou = box_iou(as_boxes(box), gt_boxes[i])[0]
            j = int(np.argmax(iou))
            if iou[j] >= IOU_THRESHOLD:
                if gt_skip[i][j]:
                    continue
                if taken[i][j]:
                    fp[rank] = 1
                else:
                    tp[rank] = 1
                    taken[i][j] = True
            else:
                fp[rank] = 1
        per_class[c] = ranked_ap(tp, fp, n_pos)
    defined = [v for v in per_class.values() if v is not None]
    return {
        "AP50": float(np.mean(defined)) if defined else None,
        "per_class": per_class,
        "n_gt": n_gt,
        "use_difficult": use_difficult,
        "protocol": "VOC2010+ all-point interpolated AP at IoU >= 0.5",
    }
