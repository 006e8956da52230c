"""Screening metrics at bag level, and per-class score thresholds at an operating point.

Security screening is judged per bag, not per box: does the machine alarm on a
bag that holds a threat, and how often does it alarm on a clean one. TSA and
ECAC state their standards as a probability of detection at a fixed false-alarm
rate, so :func:`screening` reports exactly that:

* the **alarm score** of an image is the highest score of any detection of a
  threat class (no such detection: the image never alarms);
* a **threat bag** holds at least one ground-truth object of a threat class, a
  **clean bag** none;
* for a false-alarm rate ``x``, the threshold ``t`` is the lowest score such
  that the share of clean bags with alarm score ≥ ``t`` is at most ``x``; the
  detection rate is the share of threat bags with alarm score ≥ ``t``.

Candidate thresholds are the alarm scores that occur, plus one just above the
highest, so that a rate of 0 can always be met; between two scores that occur,
nothing changes on the data, so no other value can do better.

:func:`operating_thresholds` picks the per-class thresholds the server alerts
with (stored in ``model.json`` ``thresholds``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cv.boxes import as_boxes, box_iou
from cv.errors import ConfigError, DataValidationError
from cv.evaluation.matching import greedy_match, pair_images, resolve_classes
from cv.predictions import Predictions
from cv.records import Dataset
from cv.taxonomy import CATEGORIES

log = logging.getLogger(__name__)

FAR_POINTS: tuple[float, ...] = (0.01, 0.05, 0.10, 0.20)
OperatingMode = Literal["far", "bag-far", "recall"]
OPERATING_MODES: tuple[str, ...] = get_args(OperatingMode)
LOCALISATION_IOU = 0.5
# A count is compared with rate * n; the slack keeps float error from forbidding an
# allowed count (0.29 * 100 is 28.999999999999996, which would forbid 29 of 100).
_EPS = 1e-9


def default_threat_classes() -> list[str]:
    """The taxonomy classes flagged ``threat``."""
    return [c.name for c in CATEGORIES if c.threat]


#: How far above the highest score the "nothing alarms" candidate lies: more than a
#: predictions file's rounding (6 decimals) can move a score.
_ABOVE_ALL = 1e-6


def candidate_thresholds(scores: Iterable[float]) -> NDArray[np.float64]:
    """Thresholds that tell the distinct finite scores apart, ascending.

    The lowest distinct score, then the midpoint between each pair of neighbours,
    then one :data:`_ABOVE_ALL` above the highest, where nothing alarms (1.0 when
    there is no finite score). A midpoint fires on the same detections as the higher
    of its two scores, but does not sit on an observed score: a threshold equal to
    one would stop firing on it once the score is rounded (a predictions file keeps
    6 decimals) or moves in the last bits on another runtime.
    """
    s = np.asarray([v for v in scores if math.isfinite(v)], dtype=np.float64)
    s = np.unique(s)
    if not s.size:
        return np.array([1.0])
    return np.concatenate([s[:1], (s[:-1] + s[1:]) / 2, [s[-1] + _ABOVE_ALL]])


def share_at_or_above(scores: ArrayLike, thresholds: ArrayLike) -> NDArray[np.float64]:
    """For each threshold, the share of ``scores`` that are ≥ it (0 when empty)."""
    s = np.sort(np.asarray(scores, dtype=np.float64))
    t = np.asarray(thresholds, dtype=np.float64)
    if s.size == 0:
        return np.zeros(t.shape)
    return (s.size - np.searchsorted(s, t, side="left")) / s.size


def threshold_at_rate(
    negative_scores: ArrayLike, candidates: ArrayLike, *, rate: float
) -> tuple[float, float]:
    """The lowest candidate at which at most ``rate`` of the negatives reach it.

    Args:
        negative_scores: One score per negative (``-inf`` never reaches anything).
        candidates: Thresholds to choose from, ascending; the last one must be
            above every score (see :func:`candidate_thresholds`).
        rate: The largest share of negatives allowed at or above the threshold.

    Returns:
        The threshold and the share of negatives that reach it.

    Raises:
        ValueError: If there are no negatives (the rate is undefined).
    """
    neg = np.asarray(negative_scores, dtype=np.float64)
    if neg.size == 0:
        raise ValueError("a false-alarm rate needs at least one negative")
    cand = np.asarray(candidates, dtype=np.float64)
    counts = share_at_or_above(neg, cand) * neg.size
    ok = np.flatnonzero(counts <= rate * neg.size + _EPS)
    i = int(ok[0])  # the last candidate is above every score, so ok is never empty
    return float(cand[i]), float(counts[i] / neg.size)


@dataclass(slots=True)
class ScreeningPoint:
    """The screening figures at one false-alarm target.

    Attributes:
        far_target: The false-alarm rate asked for.
        threshold: The alarm threshold chosen for it.
        far: The share of clean bags that alarm at ``threshold`` (≤ ``far_target``).
        detection_rate: The share of threat bags that alarm at ``threshold``.
        detection_rate_localised: The share of threat bags with a threat-class
            detection ≥ ``threshold`` on one of their threat objects (IoU ≥ 0.5).
    """

    far_target: float
    threshold: float
    far: float
    detection_rate: float
    detection_rate_localised: float


@dataclass(slots=True)
class ScreeningMetrics:
    """Bag-level detection rate against false-alarm rate.

    Attributes:
        threat_classes: Classes whose objects make a bag a threat bag and whose
            detections raise the alarm.
        n_clean: Clean bags.
        n_threat: Threat bags.
        points: One per false-alarm target; empty when undefined.
        curve: ``threshold``, ``far``, ``detection_rate`` and
            ``detection_rate_localised`` at every candidate threshold, by falling
            threshold; empty when undefined.
        note: Why the figures are undefined (no clean bags, no threat bags), or
            ``None``.
    """

    threat_classes: list[str]
    n_clean: int
    n_threat: int
    points: list[ScreeningPoint] = field(default_factory=list)
    curve: dict[str, list[float]] = field(default_factory=dict)
    note: str | None = None

    @property
    def defined(self) -> bool:
        """Whether there are both clean and threat bags to measure on."""
        return self.note is None

    def at(self, far_target: float) -> ScreeningPoint | None:
        """The point computed for ``far_target``, if any."""
        for p in self.points:
            if math.isclose(p.far_target, far_target):
                return p
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "threat_classes": self.threat_classes,
            "n_clean": self.n_clean,
            "n_threat": self.n_threat,
            "note": self.note,
            "alarm": "highest score of a threat-class detection in the image",
            "localised": "a threat-class detection >= threshold with IoU >= 0.5 on a "
            "ground-truth threat object of any threat class",
            "points": [
                {
                    "far_target": p.far_target,
                    "threshold": p.threshold,
                    "far": p.far,
                    "detection_rate": p.detection_rate,
                    "detection_rate_localised": p.detection_rate_localised,
                }
                for p in self.points
            ],
            "curve": self.curve,
        }


def screening(
    dataset: Dataset,
    predictions: Predictions,
    *,
    threat_classes: Sequence[str] | None = None,
    far_points: Sequence[float] = FAR_POINTS,
    allow_extra: bool = False,
) -> ScreeningMetrics:
    """Bag-level detection rate at fixed false-alarm rates (see the module docstring).

    The localised detection rate asks more: a threat bag counts only if some
    threat-class detection with score ≥ ``t`` overlaps one of its ground-truth
    threat objects with IoU ≥ 0.5. The classes need not agree (a knife called
    scissors still sends the inspector to the right place), so any threat class
    on any threat object counts.

    Args:
        dataset: The ground truth; bags are its images.
        predictions: The model's detections.
        threat_classes: Threat classes; by default the taxonomy's ``threat`` classes.
        far_points: False-alarm rates to report, in ``[0, 1]``.
        allow_extra: Accept predictions for images that are not in ``dataset``.

    Raises:
        ConfigError: If a false-alarm rate is outside ``[0, 1]``.
        DataValidationError: If an image has no predictions, or the model knows
            none of the threat classes.
    """
    for x in far_points:
        if not 0.0 <= x <= 1.0:
            raise ConfigError(f"false-alarm rate {x} is outside [0, 1]", field="far_points")
    threats = list(threat_classes) if threat_classes is not None else default_threat_classes()
    threat_set = set(threats)
    if not threat_set & set(predictions.classes):
        raise DataValidationError(
            f"the model knows none of the threat classes ({', '.join(threats)}); model "
            f"classes: {', '.join(predictions.classes)}",
            field="threat_classes",
        )
    pairs = pair_images(dataset, predictions, allow_extra=allow_extra)
    clean, threat, localised = [], [], []
    for pair in pairs:
        dets = [d for d in pair.predicted.detections if d.category in threat_set]
        alarm = max((d.score for d in dets), default=-math.inf)
        gts = [a.box for a in pair.record.annotations if a.category in threat_set]
        if not gts:
            clean.append(alarm)
            continue
        threat.append(alarm)
        hit = -math.inf
        if dets:
            iou = box_iou(as_boxes([d.box for d in dets]), as_boxes(gts))
            on_target = iou.max(axis=1) >= LOCALISATION_IOU
            hit = max((d.score for d, ok in zip(dets, on_target, strict=True) if ok), default=hit)
        localised.append(hit)

    result = ScreeningMetrics(threat_classes=threats, n_clean=len(clean), n_threat=len(threat))
    if not clean:
        result.note = (
            "no clean bags (every image holds a threat object): the false-alarm rate is "
            "undefined, so no detection rate at a false-alarm rate can be given"
        )
        return result
    if not threat:
        result.note = "no threat bags: the detection rate is undefined"
        return result

    cand = candidate_thresholds([*clean, *threat])
    for x in far_points:
        t, far = threshold_at_rate(clean, cand, rate=x)
        result.points.append(
            ScreeningPoint(
                far_target=float(x),
                threshold=t,
                far=far,
                detection_rate=float(share_at_or_above(threat, [t])[0]),
                detection_rate_localised=float(share_at_or_above(localised, [t])[0]),
            )
        )
    desc = cand[::-1]
    result.curve = {
        "threshold": desc.tolist(),
        "far": share_at_or_above(clean, desc).tolist(),
        "detection_rate": share_at_or_above(threat, desc).tolist(),
        "detection_rate_localised": share_at_or_above(localised, desc).tolist(),
    }
    return result


@dataclass(slots=True)
class ClassThreshold:
    """The threshold of one class and what it achieves on the data it was chosen on.

    Attributes:
        threshold: Least score of an alert of this class.
        achieved: The false-alarm rate (mode ``far``) or recall (mode ``recall``)
            at ``threshold``.
        reached: Whether ``achieved`` meets the target.
        n: Negative images (mode ``far``) or objects (mode ``recall``) measured on.
    """

    threshold: float
    achieved: float
    reached: bool
    n: int


@dataclass(slots=True)
class BagOperatingPoint:
    """What a set of per-class thresholds does per bag.

    Attributes:
        class_rate: The false-alarm rate every class was held to on the images
            without it (mode ``far``'s rule, one rate for all classes); with
            ``weights``, the rate of a class of weight 1 (class c: ``weight × rate``).
        far: The share of clean bags (no object of any thresholded class) on which
            some class fires.
        detection_rate: The share of the other bags on which some class fires.
        clean_bags: Clean bags measured on.
        threat_bags: Other bags measured on.
        weights: Class -> its share of the false-alarm budget relative to the
            others, for the classes not at 1; empty when all are equal.
    """

    class_rate: float
    far: float
    detection_rate: float
    clean_bags: int
    threat_bags: int
    weights: dict[str, float] = field(default_factory=dict)

    def class_rates(self) -> str:
        """What each class is held to, in words (for reports and the console)."""
        if not self.weights:
            return f"every class at {self.class_rate:.4f} false alarms on the images without it"
        named = ", ".join(f"{c} {w:g}" for c, w in self.weights.items())
        return (
            f"each class at its weight × {self.class_rate:.4f} false alarms on the images "
            f"without it (weights: {named}; the others 1)"
        )


@dataclass(slots=True)
class OperatingThresholds:
    """Per-class thresholds chosen at one operating point.

    Attributes:
        mode: ``far`` (false alarms per image without the class), ``recall``, or
            ``bag-far`` (false alarms per bag with nothing to find).
        target: The rate asked for.
        per_class: The chosen threshold of each class that has one.
        skipped: Classes without a threshold, and why.
        bag: Mode ``bag-far`` only: what the thresholds do together on the data
            they were chosen on (see :class:`BagOperatingPoint`).
    """

    mode: OperatingMode
    target: float
    per_class: dict[str, ClassThreshold] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    bag: BagOperatingPoint | None = None

    def thresholds(self) -> dict[str, float]:
        """Class name -> threshold, as ``model.json`` stores them."""
        return {c: t.threshold for c, t in self.per_class.items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "mode": self.mode,
            "target": self.target,
            "thresholds": self.thresholds(),
            "per_class": {
                c: {
                    "threshold": t.threshold,
                    "achieved": t.achieved,
                    "reached": t.reached,
                    "n": t.n,
                }
                for c, t in self.per_class.items()
            },
            "skipped": self.skipped,
            **({"bag": asdict(self.bag)} if self.bag is not None else {}),
        }


def _class_false_alarm_inputs(
    pairs: Sequence[Any], c: str
) -> tuple[list[float], list[float], str | None]:
    """Mode ``far``'s inputs for class ``c``: each negative image's highest score of
    ``c`` (``-inf`` without one), every score of ``c``, and why ``c`` gets no
    threshold (``None`` when it can have one)."""
    negatives, scores = [], []
    for pair in pairs:
        s = [d.score for d in pair.predicted.detections if d.category == c]
        scores.extend(s)
        if not any(a.category == c for a in pair.record.annotations):
            negatives.append(max(s, default=-math.inf))
    if not negatives:
        return negatives, scores, "no image without this class to measure false alarms on"
    if not scores:
        return negatives, scores, "no detection of this class"
    return negatives, scores, None


def choose_thresholds(
    dataset: Dataset,
    predictions: Predictions,
    *,
    mode: OperatingMode,
    target: float,
    classes: Sequence[str] | None = None,
    allow_extra: bool = False,
    class_weights: Mapping[str, float] | None = None,
) -> OperatingThresholds:
    """Per-class score thresholds at an operating point, with what each achieves.

    Mode ``far``: the score of an image for class c is the highest score of a
    detection of c in it; the negatives of c are the images with no ground-truth
    object of c (crowd regions of c included as objects). The threshold is the
    lowest score at which at most ``target`` of the negatives fire. A class with
    no negative image, or no detection at all, is skipped.

    Mode ``bag-far``: the server alerts on a bag when any class reaches its
    threshold, so per-class rates add up (thirteen classes at 5 % each can alarm
    on a quarter of the clean bags). This mode holds every class to one common
    rate ``r`` by mode ``far``'s rule and takes the largest ``r`` at which at most
    ``target`` of the **clean bags** (images with no object of the classes chosen
    for) alarm. Raising ``r`` only lowers thresholds, so the bag false-alarm rate
    grows with ``r`` and the largest ``r`` is found by bisection over the rates
    that can occur. The result carries the bag-level figures (``bag``). With
    ``class_weights``, class c is held to ``w_c × r`` instead (capped at 1): a
    site that would rather open bags for guns than for lighters gives guns the
    larger share of the same bag false-alarm budget.

    Mode ``recall``: detections of c are matched to the objects of c per image,
    greedily by falling score at IoU ≥ 0.5 (COCO's rule; crowd regions ignored).
    A detection's match does not depend on detections scored below it, so the
    recall at threshold t is the share of objects matched by detections ≥ t. The
    threshold is the highest score at which that recall is ≥ ``target``. When
    the target cannot be reached, the threshold of the highest recall reached is
    kept with ``reached=False`` and a warning; a class with no object or no true
    positive is skipped.

    Args:
        dataset: The ground truth the thresholds are chosen on.
        predictions: The model's detections.
        mode: ``far``, ``bag-far`` or ``recall``.
        target: The false-alarm rate per negative image (``far``) or per clean bag
            (``bag-far``), or the recall, in ``[0, 1]``.
        classes: Classes to choose for; by default every class of ``dataset``.
        allow_extra: Accept predictions for images that are not in ``dataset``.
        class_weights: Mode ``bag-far`` only: class -> weight > 0 of its
            false-alarm rate (1 for classes not named).

    Raises:
        ConfigError: If the mode is unknown or the target outside ``[0, 1]``
            (``(0, 1]`` for recall); if weights are given for another mode, name a
            class not chosen for, or are not positive.
        DataValidationError: If an image has no predictions, or a ground-truth
            class is not one the model knows; mode ``bag-far``: if there is no
            clean bag to measure false alarms on.
    """
    if mode not in OPERATING_MODES:
        raise ConfigError(
            f"unknown operating-point mode {mode!r}; use far, bag-far or recall", field="mode"
        )
    low_ok = target > 0.0 if mode == "recall" else target >= 0.0
    if not (low_ok and target <= 1.0):
        raise ConfigError(f"{mode} target {target} is outside its range", field="target")
    pairs = pair_images(dataset, predictions, allow_extra=allow_extra)
    names = resolve_classes(dataset, predictions, classes)
    weights = check_class_weights(class_weights, names, mode)
    if mode == "bag-far":
        return _bag_thresholds(pairs, names, target=float(target), weights=weights)
    out = OperatingThresholds(mode=mode, target=float(target))
    for c in names:
        if mode == "far":
            negatives, scores, why = _class_false_alarm_inputs(pairs, c)
            if why is not None:
                out.skipped[c] = why
                continue
            t, far = threshold_at_rate(negatives, candidate_thresholds(scores), rate=target)
            out.per_class[c] = ClassThreshold(t, far, True, len(negatives))
            continue

        tp_scores: list[float] = []
        n_pos = 0
        for pair in pairs:
            gts = [a for a in pair.record.annotations if a.category == c]
            crowd = np.array([a.iscrowd for a in gts], dtype=bool)
            n_pos += int((~crowd).sum())
            dets = sorted(
                (d for d in pair.predicted.detections if d.category == c), key=lambda d: -d.score
            )
            if not dets or not gts:
                continue
            match = greedy_match(
                as_boxes([d.box for d in dets]),
                as_boxes([a.box for a in gts]),
                crowd,
                iou_threshold=LOCALISATION_IOU,
            )
            tp_scores.extend(d.score for d, m in zip(dets, match, strict=True) if m >= 0)
        if n_pos == 0:
            out.skipped[c] = "no object of this class"
            continue
        if not tp_scores:
            out.skipped[c] = "no object of this class is found at IoU 0.5"
            continue
        tp_sorted = sorted(tp_scores, reverse=True)
        need = max(1, math.ceil(target * n_pos - _EPS))
        reached = len(tp_sorted) >= need
        t = tp_sorted[need - 1] if reached else tp_sorted[-1]
        recall = sum(1 for s in tp_sorted if s >= t) / n_pos
        if not reached:
            log.warning(
                "class %s: recall %.3f is the most reached, below the target %.3f",
                c,
                recall,
                target,
            )
        out.per_class[c] = ClassThreshold(t, recall, reached, n_pos)
    for c, why in out.skipped.items():
        log.warning("class %s has no %s threshold: %s", c, mode, why)
    return out


def _split_bags(pairs: Sequence[Any], classes: set[str]) -> tuple[list[Any], list[Any]]:
    """``(clean, threat)``: the images with no object of ``classes``, and the others."""
    clean, threat = [], []
    for p in pairs:
        has_object = any(a.category in classes for a in p.record.annotations)
        (threat if has_object else clean).append(p)
    return clean, threat


@dataclass(slots=True)
class BagAlarms:
    """How given per-class thresholds alarm per bag (a bag alarms when any detection
    of a thresholded class is at or above its class's threshold).

    Attributes:
        clean_alarms: Clean bags (no object of a thresholded class) that alarm.
        clean_bags: Clean bags.
        threat_alarms: Other bags that alarm.
        threat_bags: Other bags.
    """

    clean_alarms: int
    clean_bags: int
    threat_alarms: int
    threat_bags: int

    @property
    def far(self) -> float | None:
        """Share of clean bags alarming (``None`` without clean bags)."""
        return self.clean_alarms / self.clean_bags if self.clean_bags else None

    @property
    def detection_rate(self) -> float | None:
        """Share of the other bags alarming (``None`` without any)."""
        return self.threat_alarms / self.threat_bags if self.threat_bags else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "far": self.far, "detection_rate": self.detection_rate}

    def describe(self) -> str:
        """In words, for reports and the console."""
        far = "-" if self.far is None else f"{100 * self.far:.1f} %"
        dr = "-" if self.detection_rate is None else f"{100 * self.detection_rate:.1f} %"
        return (
            f"{self.clean_alarms} of {self.clean_bags} clean bags alarm ({far}), "
            f"{self.threat_alarms} of {self.threat_bags} bags with threats ({dr})"
        )


def bag_alarms(
    dataset: Dataset,
    predictions: Predictions,
    thresholds: Mapping[str, float],
    *,
    allow_extra: bool = False,
) -> BagAlarms:
    """What ``thresholds`` (class -> score, as ``model.json`` stores them and the
    server alerts with) do per bag on ``dataset``: the figures a site wants of
    thresholds chosen elsewhere."""
    pairs = pair_images(dataset, predictions, allow_extra=allow_extra)
    return _count_alarms(*_split_bags(pairs, set(thresholds)), thresholds)


def _count_alarms(
    clean: Sequence[Any], threat: Sequence[Any], thresholds: Mapping[str, float]
) -> BagAlarms:
    """The bags of ``clean`` and ``threat`` on which some detection of a thresholded
    class is at or above its class's threshold."""

    def fires(pair: Any) -> bool:
        return any(
            d.category in thresholds and d.score >= thresholds[d.category]
            for d in pair.predicted.detections
        )

    return BagAlarms(
        clean_alarms=sum(map(fires, clean)),
        clean_bags=len(clean),
        threat_alarms=sum(map(fires, threat)),
        threat_bags=len(threat),
    )


def count_clean_bags(
    dataset: Dataset,
    predictions: Predictions,
    *,
    classes: Sequence[str] | None = None,
    allow_extra: bool = False,
) -> int:
    """The clean bags mode ``bag-far`` of :func:`choose_thresholds` would measure
    false alarms on, for the same arguments (0: that mode cannot be used)."""
    pairs = pair_images(dataset, predictions, allow_extra=allow_extra)
    clean, _ = _split_bags(pairs, set(resolve_classes(dataset, predictions, classes)))
    return len(clean)


def check_class_weights(
    weights: Mapping[str, float] | None, names: Sequence[str], mode: str
) -> dict[str, float]:
    """The class weights of mode ``bag-far`` for the classes ``names``, checked; those
    at 1 left out.

    Raises:
        ConfigError: If weights are given for another mode, name a class not in
            ``names``, or are not positive numbers.
    """
    if not weights:
        return {}
    if mode != "bag-far":
        raise ConfigError(
            f"class weights share a bag false-alarm budget: they need mode bag-far, not {mode}",
            field="class_weights",
        )
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise ConfigError(
            f"class weights name classes that get no threshold here: {unknown}; "
            f"the classes are {list(names)}",
            field="class_weights",
        )
    bad = {c: w for c, w in weights.items() if not (math.isfinite(w) and w > 0)}
    if bad:
        raise ConfigError(f"class weights must be positive numbers: {bad}", field="class_weights")
    return {c: float(w) for c, w in weights.items() if w != 1}


def _bag_thresholds(
    pairs: Sequence[Any],
    names: Sequence[str],
    *,
    target: float,
    weights: Mapping[str, float] | None = None,
) -> OperatingThresholds:
    """Mode ``bag-far`` of :func:`choose_thresholds` on paired images."""
    weights = dict(weights or {})
    wanted = set(names)
    out = OperatingThresholds(mode="bag-far", target=target)
    negatives: dict[str, list[float]] = {}
    candidates: dict[str, NDArray[np.float64]] = {}
    for c in names:
        neg, scores, why = _class_false_alarm_inputs(pairs, c)
        if why is not None:
            out.skipped[c] = why
            continue
        negatives[c], candidates[c] = neg, candidate_thresholds(scores)
    clean, threat = _split_bags(pairs, wanted)
    if not clean:
        raise DataValidationError(
            "a bag-level false-alarm rate needs clean bags (images with none of the "
            f"classes {sorted(wanted)}), and there are none",
            field="operating_point",
        )

    def rate_of(c: str, rate: float) -> float:
        return min(1.0, weights.get(c, 1.0) * rate)

    def at(rate: float) -> tuple[dict[str, tuple[float, float]], float, float]:
        chosen = {
            c: threshold_at_rate(negatives[c], candidates[c], rate=rate_of(c, rate))
            for c in negatives
        }
        alarms = _count_alarms(clean, threat, {c: t for c, (t, _) in chosen.items()})
        return chosen, alarms.far or 0.0, alarms.detection_rate or 0.0

    # Rates that can occur: k / (n w) over each class's n negatives and weight w;
    # between two of them no threshold changes. Rate 0 fires on no clean bag (every
    # clean bag is a negative of every class), so a largest feasible rate exists.
    rates = sorted(
        {
            k / (len(negatives[c]) * weights.get(c, 1.0))
            for c in negatives
            for k in range(len(negatives[c]) + 1)
        }
    )
    lo, hi = 0, len(rates) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if at(rates[mid])[1] <= target + _EPS:
            lo = mid
        else:
            hi = mid - 1
    chosen, far, dr = at(rates[lo])
    for c, (t, achieved) in chosen.items():
        out.per_class[c] = ClassThreshold(t, achieved, True, len(negatives[c]))
    out.bag = BagOperatingPoint(
        class_rate=rates[lo],
        far=far,
        detection_rate=dr,
        clean_bags=len(clean),
        threat_bags=len(threat),
        weights=weights,
    )
    for c, why in out.skipped.items():
        log.warning("class %s has no bag-far threshold: %s", c, why)
    return out


def operating_thresholds(
    dataset: Dataset,
    predictions: Predictions,
    *,
    mode: OperatingMode,
    target: float,
    classes: Sequence[str] | None = None,
    allow_extra: bool = False,
) -> dict[str, float]:
    """Per-class score thresholds at an operating point (see :func:`choose_thresholds`).

    Returns:
        Class name -> threshold, for the classes that have one; what
        ``model.json`` stores under ``thresholds`` and the server alerts with.
    """
    return choose_thresholds(
        dataset, predictions, mode=mode, target=target, classes=classes, allow_extra=allow_extra
    ).thresholds()
