"""Pairing ground truth with predictions, class checks and greedy box matching.

Every metric in :mod:`cv.evaluation` starts here: the ground-truth images of a
:class:`~cv.records.Dataset` are paired with the entries of a
:class:`~cv.predictions.Predictions` by ``ImageRecord.file == ImagePredictions.file``,
and the classes the model knows are checked against the classes the data uses.
Boxes are ``xyxy`` absolute pixels, 0-based (see :mod:`cv.boxes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cv.boxes import box_iou
from cv.errors import DataValidationError
from cv.predictions import ImagePredictions, Predictions
from cv.records import Dataset, ImageRecord

UNMATCHED = -1
"""Match code of a detection that matched no ground truth (a false positive)."""
IGNORED = -2
"""Match code of a detection that only matched an ignored ground-truth region."""


@dataclass(frozen=True, slots=True)
class Pair:
    """One ground-truth image and what the model said about it.

    Attributes:
        record: The ground-truth image.
        predicted: The model's entry for the same ``file``.
    """

    record: ImageRecord
    predicted: ImagePredictions


def pair_images(
    dataset: Dataset, predictions: Predictions, *, allow_extra: bool = False
) -> list[Pair]:
    """Pairs every image of ``dataset`` with its predictions entry, in dataset order.

    Args:
        dataset: The ground truth.
        predictions: The model's detections.
        allow_extra: Accept predictions for images that are not in ``dataset`` (a
            predictions file made for the whole dataset, evaluated on one split).

    Raises:
        DataValidationError: If an image has no predictions entry, an image appears
            twice in the predictions, or (unless ``allow_extra``) the predictions
            name an image the dataset does not have; the message names the file.
    """
    by_file: dict[str, ImagePredictions] = {}
    for entry in predictions.images:
        if entry.file in by_file:
            raise DataValidationError(
                "the predictions list this image twice", field=f"images[file={entry.file!r}]"
            )
        by_file[entry.file] = entry
    pairs = []
    for record in dataset.images:
        entry = by_file.get(record.file)
        if entry is None:
            raise DataValidationError(
                f"image {record.file!r} of dataset {dataset.name!r} has no entry in the "
                f"predictions ({len(predictions.images)} images); predict every image "
                "of the evaluated set",
                field="images",
            )
        pairs.append(Pair(record, entry))
    if not allow_extra and len(by_file) > len(pairs):
        known = {r.file for r in dataset.images}
        extra = [f for f in by_file if f not in known]
        raise DataValidationError(
            f"the predictions have {len(extra)} images that dataset {dataset.name!r} does "
            f"not have, first {extra[0]!r}; evaluate on the set they were made for",
            field="images",
        )
    return pairs


def dataset_classes(dataset: Dataset) -> list[str]:
    """The classes a dataset declares, or the ones its annotations use."""
    declared = list(dataset.classes)
    used = {a.category for im in dataset.images for a in im.annotations}
    return declared + sorted(used - set(declared)) if declared else dataset.used_classes()


def resolve_classes(
    dataset: Dataset, predictions: Predictions, classes: Sequence[str] | None = None
) -> list[str]:
    """The classes to evaluate, checked against the model's classes.

    By default every class the dataset declares or annotates. With ``classes``
    given, only those are evaluated; ground truth and detections of other classes
    are left out of the per-class metrics.

    Raises:
        DataValidationError: If a ground-truth class (or a requested class) is not
            one the model knows; the message names the class and the model's classes.
    """
    known = set(predictions.classes)
    wanted = list(dict.fromkeys(classes)) if classes is not None else dataset_classes(dataset)
    used = {a.category for im in dataset.images for a in im.annotations}
    check = wanted if classes is not None else sorted(used | set(wanted))
    missing = [c for c in check if c not in known]
    if missing:
        raise DataValidationError(
            f"class {missing[0]!r} of the data is not one the model knows "
            f"(model classes: {', '.join(predictions.classes) or 'none'}); "
            "the classes do not match the model",
            field="classes",
        )
    if not wanted:
        raise DataValidationError(
            f"dataset {dataset.name!r} has no classes to evaluate", field="classes"
        )
    return wanted


def is_difficult(record: ImageRecord) -> set[int]:
    """Indices of the annotations that a VOC reader marked ``difficult``."""
    marked = record.meta.get("difficult", [])
    return {int(i) for i in marked} if isinstance(marked, list) else set()


def greedy_match(
    det_boxes: NDArray[np.float64],
    gt_boxes: NDArray[np.float64],
    gt_ignore: NDArray[np.bool_],
    *,
    iou_threshold: float,
) -> NDArray[np.int64]:
    """Matches detections, already sorted by falling score, to ground truth.

    The COCO rule at one IoU threshold: each detection in turn takes the
    unmatched, not-ignored ground truth with which its IoU is highest and at
    least ``iou_threshold``; failing that, a detection that overlaps an ignored
    region that much is ignored; else it is a false positive.

    Args:
        det_boxes: ``(D, 4)`` detection boxes, highest score first.
        gt_boxes: ``(G, 4)`` ground-truth boxes.
        gt_ignore: ``(G,)`` whether each ground truth is an ignore region.
        iou_threshold: Least IoU of a match.

    Returns:
        ``(D,)`` the matched ground-truth index, :data:`UNMATCHED` or :data:`IGNORED`.
    """
    out = np.full(len(det_boxes), UNMATCHED, dtype=np.int64)
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return out
    iou = box_iou(det_boxes, gt_boxes)
    taken = np.zeros(len(gt_boxes), dtype=bool)
    for d in range(len(det_boxes)):
        candidates = np.where(~gt_ignore & ~taken, iou[d], -1.0)
        g = int(np.argmax(candidates))
        if candidates[g] >= iou_threshold:
            out[d] = g
            taken[g] = True
        elif gt_ignore.any() and iou[d][gt_ignore].max() >= iou_threshold:
            out[d] = IGNORED
    return out
