"""COCO detection metrics, computed by faster-coco-eval, and the confusion matrix.

:func:`evaluate` builds the COCO ground truth and results in memory from a
:class:`~cv.records.Dataset` and a :class:`~cv.predictions.Predictions` and runs
faster-coco-eval's ``COCOeval_faster`` (the C++ port of pycocotools' ``COCOeval``,
same numbers) with ``iouType="bbox"``: AP@[.5:.95], AP50, AP75, AP and AR per COCO
object size, per class, per occlusion level and per dataset subset, and the
precision-recall curves. Nothing of COCOeval is re-implemented here.

:func:`confusion_matrix` is ours: COCO has no confusion matrix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from cv.boxes import as_boxes
from cv.evaluation.matching import (
    IGNORED,
    UNMATCHED,
    Pair,
    greedy_match,
    pair_images,
    resolve_classes,
)
from cv.predictions import Predictions
from cv.records import Annotation, Dataset

if TYPE_CHECKING:
    from faster_coco_eval import COCOeval_faster

log = logging.getLogger(__name__)

OCCLUSION_LEVELS: tuple[int, ...] = (1, 2, 3)
BACKGROUND = "background"

# COCOeval.stats, in its order (pycocotools' summarize()).
_STATS_KEYS: tuple[str, ...] = (
    "AP",
    "AP50",
    "AP75",
    "AP_small",
    "AP_medium",
    "AP_large",
    "AR1",
    "AR10",
    "AR100",
    "AR_small",
    "AR_medium",
    "AR_large",
)


@dataclass(slots=True)
class PRCurve:
    """A class's precision at COCO's 101 recall points, at IoU 0.5.

    Attributes:
        recall: The 101 recall points 0, 0.01, ..., 1.
        precision: Interpolated precision at each recall point (0 past the
            highest recall reached).
    """

    recall: list[float]
    precision: list[float]


@dataclass(slots=True)
class ConfusionMatrix:
    """Counts of ground-truth class (rows) against predicted class (columns).

    The last row and column are :data:`BACKGROUND`: a detection in the background
    row matched no object (a false alarm); a ground truth in the background
    column was not found (a miss).

    Attributes:
        labels: The classes, then ``background``.
        matrix: ``(K + 1) x (K + 1)`` counts, rows ground truth, columns predicted.
        score_threshold: The least score of a counted detection, one for all
            classes or one per class.
        iou_threshold: The least IoU of a match.
    """

    labels: list[str]
    matrix: list[list[int]]
    score_threshold: float | dict[str, float]
    iou_threshold: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "labels": self.labels,
            "matrix": self.matrix,
            "rows": "ground truth",
            "columns": "predicted",
            "score_threshold": self.score_threshold,
            "iou_threshold": self.iou_threshold,
        }


@dataclass(slots=True)
class DetectionMetrics:
    """COCO metrics of one model on one dataset.

    Undefined values (a class, size, level or subset without ground truth) are
    ``None``, where COCOeval writes -1.

    Attributes:
        classes: The evaluated classes, in COCO category order.
        stats: COCOeval's twelve summary figures by name (see :meth:`summary`).
        per_class: Per class ``AP``, ``AP50``, ``AP75`` and ``n_gt`` (objects).
        per_occlusion: Per occlusion level 1-3, ``AP``, ``AP50`` and ``n_gt``;
            only levels that occur. See :func:`evaluate` for how.
        per_subset: Per ``ImageRecord.subset``, ``AP``, ``AP50``, ``AP75``,
            ``n_images`` and ``n_gt``.
        pr_curves: Per class precision-recall curve at IoU 0.5.
        confusion: The confusion matrix at IoU 0.5 and a score threshold.
        n_images: Images evaluated.
        n_gt: Ground-truth objects of the evaluated classes, crowd regions excluded.
        n_detections: Detections of the evaluated classes.
    """

    classes: list[str]
    stats: dict[str, float | None]
    per_class: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    per_occlusion: dict[int, dict[str, float | int | None]] = field(default_factory=dict)
    per_subset: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    pr_curves: dict[str, PRCurve] = field(default_factory=dict)
    confusion: ConfusionMatrix | None = None
    n_images: int = 0
    n_gt: int = 0
    n_detections: int = 0

    def summary(self) -> dict[str, float | None]:
        """``AP``, ``AP50``, ``AP75``, ``AP_small/medium/large``, ``AR1/10/100`` and
        ``AR_small/medium/large``, as COCOeval's ``summarize()`` prints them."""
        return dict(self.stats)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy of everything."""
        return {
            "summary": self.summary(),
            "classes": self.classes,
            "n_images": self.n_images,
            "n_gt": self.n_gt,
            "n_detections": self.n_detections,
            "per_class": self.per_class,
            "per_occlusion": {str(k): v for k, v in self.per_occlusion.items()},
            "per_subset": self.per_subset,
            "pr_curves": {
                c: {"recall": p.recall, "precision": p.precision} for c, p in self.pr_curves.items()
            },
            "confusion": None if self.confusion is None else self.confusion.to_dict(),
        }


def _defined(value: float) -> float | None:
    """COCOeval's -1 ("no ground truth") as ``None``."""
    return None if value < 0 else float(value)


def _mean_defined(values: NDArray[np.float64]) -> float | None:
    """Mean of the entries that are not -1, as COCOeval's summarize() takes it."""
    ok = values[values > -1]
    return float(ok.mean()) if ok.size else None


def _xywh(box: tuple[float, float, float, float]) -> list[float]:
    x1, y1, x2, y2 = box
    return [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]


def _coco_ground_truth(
    pairs: Sequence[Pair],
    classes: Sequence[str],
    *,
    ignore: Callable[[Annotation], bool] | None = None,
) -> dict[str, Any]:
    """The COCO ground-truth document of ``pairs``.

    Image ids are positions + 1 in ``pairs``; category ids positions + 1 in
    ``classes``; annotation ids count from 1, because COCOeval uses id 0 as its
    "unmatched" marker. An annotation becomes a crowd (ignore) region when it is
    one already or when ``ignore`` says so.
    """
    cat_id = {c: i + 1 for i, c in enumerate(classes)}
    images, annotations = [], []
    for i, pair in enumerate(pairs, start=1):
        rec = pair.record
        images.append({"id": i, "width": rec.width, "height": rec.height, "file_name": rec.file})
        for ann in rec.annotations:
            if ann.category not in cat_id:
                continue
            bbox = _xywh(ann.box)
            crowd = ann.iscrowd or (ignore is not None and ignore(ann))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i,
                    "category_id": cat_id[ann.category],
                    "bbox": bbox,
                    "area": bbox[2] * bbox[3],
                    "iscrowd": int(crowd),
                }
            )
    categories = [{"id": i, "name": c} for c, i in cat_id.items()]
    return {"images": images, "annotations": annotations, "categories": categories}


def _coco_results(pairs: Sequence[Pair], classes: Sequence[str]) -> list[dict[str, Any]]:
    """The COCO results list: detections of the evaluated classes, ``xywh`` boxes."""
    cat_id = {c: i + 1 for i, c in enumerate(classes)}
    return [
        {
            "image_id": i,
            "category_id": cat_id[d.category],
            "bbox": _xywh(d.box),
            "score": float(d.score),
        }
        for i, pair in enumerate(pairs, start=1)
        for d in pair.predicted.detections
        if d.category in cat_id
    ]


def _run_cocoeval(gt_doc: dict[str, Any], results: list[dict[str, Any]]) -> COCOeval_faster:
    """Runs COCOeval (bbox) over every image of ``gt_doc`` and returns it, summarised."""
    from faster_coco_eval import COCO, COCOeval_faster

    quiet = log.debug
    gt = COCO(gt_doc, print_function=quiet)
    # loadRes writes ids and areas into the result dicts: give it copies.
    dt = gt.loadRes([dict(r) for r in results])
    ev = COCOeval_faster(gt, dt, iouType="bbox", print_function=quiet)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return ev


def _ap_figures(ev: COCOeval_faster, k: int | None = None) -> dict[str, float | None]:
    """AP, AP50 and AP75 over all sizes at 100 detections, for class ``k`` or all."""
    precision = ev.eval["precision"]  # [T, R, K, A, M]
    p = precision[:, :, :, 0, -1] if k is None else precision[:, :, k : k + 1, 0, -1]
    iou = list(np.round(ev.params.iouThrs, 2))
    return {
        "AP": _mean_defined(p),
        "AP50": _mean_defined(p[iou.index(0.5)]),
        "AP75": _mean_defined(p[iou.index(0.75)]),
    }


def evaluate(
    dataset: Dataset,
    predictions: Predictions,
    *,
    classes: Sequence[str] | None = None,
    allow_extra: bool = False,
    confusion_threshold: float | Mapping[str, float] = 0.25,
) -> DetectionMetrics:
    """COCO metrics of ``predictions`` against ``dataset``, by faster-coco-eval.

    Boxes go from ``xyxy`` (0-based pixels) to COCO ``[x, y, w, h]``; an object's
    COCO area (for the small / medium / large buckets at 32² and 96² pixels) is
    its box area. Crowd annotations (``Annotation.iscrowd``) are COCO ignore
    regions everywhere.

    Per occlusion level L (1, 2, 3 from ``Annotation.occlusion_level``): every
    image is evaluated, and every ground-truth object whose level is not L
    (another level, or no level at all) is marked ``iscrowd=1``, which COCOeval
    treats as an ignore region: it is not counted in recall, and a detection that
    matches it (IoU computed as intersection over the detection's own area, COCO's
    crowd rule) and matches no level-L object is neither a true nor a false
    positive. Detections that match nothing stay false positives, so a level's AP
    also pays for false alarms on clean images. Levels with no object are left out.

    Per subset s (``ImageRecord.subset``, e.g. PIDray ``easy`` / ``hard`` /
    ``hidden``): COCOeval runs on the images of that subset alone, their objects
    and their detections. Images without a subset belong to no subset figure.

    Args:
        dataset: The ground truth.
        predictions: The model's detections, one entry per image.
        classes: Classes to evaluate; by default every class of ``dataset``.
            Detections of other classes are left out.
        allow_extra: Accept predictions for images that are not in ``dataset``.
        confusion_threshold: Score threshold of the confusion matrix, one for all
            classes or one per class (see :func:`confusion_matrix`).

    Raises:
        DataValidationError: If an image has no predictions, or a ground-truth
            class is not one the model knows.
    """
    pairs = pair_images(dataset, predictions, allow_extra=allow_extra)
    names = resolve_classes(dataset, predictions, classes)
    gt_doc = _coco_ground_truth(pairs, names)
    results = _coco_results(pairs, names)
    log.info(
        "COCO evaluation: %d images, %d objects, %d detections, %d classes",
        len(pairs),
        len(gt_doc["annotations"]),
        len(results),
        len(names),
    )
    ev = _run_cocoeval(gt_doc, results)
    stats = {k: _defined(float(v)) for k, v in zip(_STATS_KEYS, ev.stats[:12], strict=True)}

    n_gt_class = {c: 0 for c in names}
    for ann in gt_doc["annotations"]:
        if not ann["iscrowd"]:
            n_gt_class[names[ann["category_id"] - 1]] += 1
    per_class: dict[str, dict[str, float | int | None]] = {}
    pr_curves: dict[str, PRCurve] = {}
    recall_points = [float(r) for r in ev.params.recThrs]
    for k, c in enumerate(names):
        per_class[c] = {**_ap_figures(ev, k), "n_gt": n_gt_class[c]}
        curve = ev.eval["precision"][0, :, k, 0, -1]
        if (curve > -1).any():
            pr_curves[c] = PRCurve(recall_points, [max(float(v), 0.0) for v in curve])

    per_occlusion: dict[int, dict[str, float | int | None]] = {}
    for level in OCCLUSION_LEVELS:
        level_doc = _coco_ground_truth(
            pairs, names, ignore=lambda a, lv=level: a.occlusion_level != lv
        )
        n = sum(1 for a in level_doc["annotations"] if not a["iscrowd"])
        if n == 0:
            continue
        log.info("COCO evaluation: occlusion level %d (%d objects)", level, n)
        figures = _ap_figures(_run_cocoeval(level_doc, results))
        per_occlusion[level] = {"AP": figures["AP"], "AP50": figures["AP50"], "n_gt": n}

    per_subset: dict[str, dict[str, float | int | None]] = {}
    subsets = sorted({p.record.subset for p in pairs if p.record.subset is not None})
    for subset in subsets:
        # Only that subset's images, ground truth and detections: the same numbers as
        # COCOeval's params.imgIds, without carrying the other subsets through loadRes.
        sub = [p for p in pairs if p.record.subset == subset]
        sub_doc = _coco_ground_truth(sub, names)
        n = sum(1 for a in sub_doc["annotations"] if not a["iscrowd"])
        log.info("COCO evaluation: subset %s (%d images)", subset, len(sub))
        figures = _ap_figures(_run_cocoeval(sub_doc, _coco_results(sub, names)))
        per_subset[subset] = {**figures, "n_images": len(sub), "n_gt": n}

    return DetectionMetrics(
        classes=names,
        stats=stats,
        per_class=per_class,
        per_occlusion=per_occlusion,
        per_subset=per_subset,
        pr_curves=pr_curves,
        confusion=_confusion(pairs, names, score_threshold=confusion_threshold, iou_threshold=0.5),
        n_images=len(pairs),
        n_gt=sum(n_gt_class.values()),
        n_detections=len(results),
    )


def confusion_matrix(
    dataset: Dataset,
    predictions: Predictions,
    *,
    classes: Sequence[str] | None = None,
    score_threshold: float | Mapping[str, float] = 0.25,
    iou_threshold: float = 0.5,
    allow_extra: bool = False,
) -> ConfusionMatrix:
    """Ground-truth class against predicted class, from matched detections.

    Per image, detections of the evaluated classes with a score at or above the
    threshold (of their class, when thresholds are per class) are matched in two
    passes, each greedy by falling score (:func:`~cv.evaluation.matching.greedy_match`):

    1. same class: a detection takes the unmatched object of its own class with
       the highest IoU ≥ ``iou_threshold`` (a diagonal count);
    2. any class: a detection left over takes the unmatched object of any class
       with the highest IoU ≥ ``iou_threshold`` (an off-diagonal count: the object
       was found but called something else).

    A detection still unmatched counts in the background row (false alarm),
    unless it overlaps a crowd region, when it is not counted; an object still
    unmatched counts in the background column (miss). Crowd regions are never
    counted as objects. The background-background cell is always 0.

    Args:
        dataset: The ground truth.
        predictions: The model's detections.
        classes: Classes to count; by default every class of ``dataset``.
        score_threshold: One threshold, or one per class (a class missing from the
            mapping uses 0.25).
        iou_threshold: Least IoU of a match.
        allow_extra: Accept predictions for images that are not in ``dataset``.

    Raises:
        DataValidationError: As :func:`evaluate`.
    """
    pairs = pair_images(dataset, predictions, allow_extra=allow_extra)
    names = resolve_classes(dataset, predictions, classes)
    return _confusion(pairs, names, score_threshold=score_threshold, iou_threshold=iou_threshold)


def _confusion(
    pairs: Sequence[Pair],
    classes: Sequence[str],
    *,
    score_threshold: float | Mapping[str, float],
    iou_threshold: float,
) -> ConfusionMatrix:
    index = {c: i for i, c in enumerate(classes)}
    bg = len(classes)
    m = np.zeros((bg + 1, bg + 1), dtype=np.int64)

    def threshold(c: str) -> float:
        if isinstance(score_threshold, Mapping):
            return float(score_threshold.get(c, 0.25))
        return float(score_threshold)

    for pair in pairs:
        gts = [a for a in pair.record.annotations if a.category in index]
        dets = sorted(
            (
                d
                for d in pair.predicted.detections
                if d.category in index and d.score >= threshold(d.category)
            ),
            key=lambda d: -d.score,
        )
        gt_boxes = as_boxes([a.box for a in gts]) if gts else np.zeros((0, 4))
        gt_cls = np.array([index[a.category] for a in gts], dtype=np.int64)
        crowd = np.array([a.iscrowd for a in gts], dtype=bool)
        gt_done = crowd.copy()
        det_cls = np.array([index[d.category] for d in dets], dtype=np.int64)
        det_boxes = as_boxes([d.box for d in dets]) if dets else np.zeros((0, 4))
        det_done = np.zeros(len(dets), dtype=bool)

        for k in np.unique(det_cls):
            di = np.flatnonzero(det_cls == k)
            gi = np.flatnonzero(gt_cls == k)
            match = greedy_match(
                det_boxes[di], gt_boxes[gi], crowd[gi], iou_threshold=iou_threshold
            )
            for d, g in zip(di, match, strict=True):
                if g >= 0:
                    m[k, k] += 1
                    gt_done[gi[g]] = True
                    det_done[d] = True
                elif g == IGNORED:
                    det_done[d] = True

        left = np.flatnonzero(~det_done)
        # Pass 2 sees the unmatched objects of every class, and crowd regions as ignore.
        gi = np.flatnonzero(~gt_done | crowd)
        match = greedy_match(det_boxes[left], gt_boxes[gi], crowd[gi], iou_threshold=iou_threshold)
        for d, g in zip(left, match, strict=True):
            if g >= 0:
                m[gt_cls[gi[g]], det_cls[d]] += 1
                gt_done[gi[g]] = True
            elif g == UNMATCHED:
                m[bg, det_cls[d]] += 1
        for g in np.flatnonzero(~gt_done):
            m[gt_cls[g], bg] += 1

    thr: float | dict[str, float] = (
        {c: threshold(c) for c in classes}
        if isinstance(score_threshold, Mapping)
        else float(score_threshold)
    )
    return ConfusionMatrix(
        labels=[*classes, BACKGROUND],
        matrix=m.tolist(),
        score_threshold=thr,
        iou_threshold=iou_threshold,
    )
