"""Evaluation numbers on hand-built predictions against hand-worked answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cv.errors import ConfigError, DataValidationError
from cv.evaluation.detection import confusion_matrix, evaluate
from cv.evaluation.screening import (
    choose_thresholds,
    count_clean_bags,
    operating_thresholds,
    screening,
)
from cv.evaluation.voc import all_point_ap, ranked_ap, voc_ap50
from cv.predictions import ImagePredictions, Predictions
from cv.records import Annotation, Dataset, Detection, ImageRecord

CLASSES = ["gun", "knife"]
BOX = (0.0, 0.0, 100.0, 100.0)
# Shifted right by 25 px: overlap 75 x 100, union 125 x 100, IoU exactly 0.6.
SHIFTED = (25.0, 0.0, 125.0, 100.0)


def _gt(file: str, *objects: tuple[tuple[float, float, float, float], str], **kw) -> ImageRecord:
    anns = []
    for box, cls, *rest in objects:
        anns.append(Annotation(box, cls, occlusion_level=rest[0] if rest else None))
    return ImageRecord(file, 400, 400, anns, **kw)


def _det(box: tuple[float, float, float, float], cls: str, score: float) -> Detection:
    return Detection(box, cls, CLASSES.index(cls), score)


def _preds(dets: dict[str, list[Detection]]) -> Predictions:
    return Predictions(
        classes=list(CLASSES),
        images=[ImagePredictions(f, 400, 400, d) for f, d in dets.items()],
        model={"name": "hand-made"},
    )


def _dataset(*records: ImageRecord) -> Dataset:
    return Dataset("hand", list(records), classes=["knife"])


def test_perfect_predictions_score_one():
    ds = _dataset(
        _gt("a.png", (BOX, "knife")),
        _gt(
            "b.png", ((200.0, 200.0, 260.0, 240.0), "knife"), ((10.0, 300.0, 30.0, 320.0), "knife")
        ),
        _gt("clean.png"),
    )
    preds = _preds(
        {
            im.file: [_det(a.box, a.category, 0.9 - 0.1 * i) for i, a in enumerate(im.annotations)]
            for im in ds.images
        }
    )
    m = evaluate(ds, preds)
    s = m.summary()
    assert s["AP"] == s["AP50"] == s["AP75"] == 1.0
    assert s["AR100"] == 1.0
    assert m.per_class["knife"] == {"AP": 1.0, "AP50": 1.0, "AP75": 1.0, "n_gt": 3}
    # 20 x 20 = 400 px is small, 60 x 40 = 2400 medium, 100 x 100 = 10000 large.
    assert s["AP_small"] == s["AP_medium"] == s["AP_large"] == 1.0
    assert voc_ap50(ds, preds)["AP50"] == 1.0
    assert m.pr_curves["knife"].precision == [1.0] * 101
    assert m.confusion is not None and m.confusion.matrix == [[3, 0], [0, 0]]


def test_shifted_box_scores_what_iou_says():
    ds = _dataset(_gt("a.png", (BOX, "knife")))
    preds = _preds({"a.png": [_det(SHIFTED, "knife", 0.8)]})
    s = evaluate(ds, preds).summary()
    # IoU 0.6 passes the thresholds .50, .55, .60 and fails the other seven.
    assert s["AP50"] == 1.0
    assert s["AP75"] == 0.0
    assert s["AP"] == pytest.approx(3 / 10, abs=1e-12)
    assert voc_ap50(ds, preds)["AP50"] == 1.0


def test_two_objects_one_prediction_caps_recall_at_half():
    ds = _dataset(_gt("a.png", (BOX, "knife"), ((200.0, 200.0, 300.0, 300.0), "knife")))
    preds = _preds({"a.png": [_det(BOX, "knife", 0.9)]})
    s = evaluate(ds, preds).summary()
    assert s["AR100"] == 0.5
    # Precision 1 at the recall points 0, 0.01, ..., 0.50 and 0 beyond: 51 of 101.
    assert s["AP50"] == pytest.approx(51 / 101)
    # VOC all-point: precision 1 over recall [0, 0.5].
    assert voc_ap50(ds, preds)["AP50"] == pytest.approx(0.5)


def test_voc_all_point_ap_of_a_hand_ranked_list():
    # TP, FP, TP of 3 objects: recall 1/3, 1/3, 2/3; precision 1, 1/2, 2/3.
    # Envelope: 1 up to recall 1/3, 2/3 up to 2/3. AP = 1/3 * 1 + 1/3 * 2/3 = 5/9.
    assert ranked_ap([1, 0, 1], [0, 1, 0], 3) == pytest.approx(5 / 9)
    assert all_point_ap([1 / 3, 1 / 3, 2 / 3], [1.0, 0.5, 2 / 3]) == pytest.approx(5 / 9)
    # The same list through voc_ap50: three images, one object each, the third missed;
    # the FP is a box on nothing.
    ds = _dataset(
        _gt("a.png", (BOX, "knife")), _gt("b.png", (BOX, "knife")), _gt("c.png", (BOX, "knife"))
    )
    preds = _preds(
        {
            "a.png": [_det(BOX, "knife", 0.9)],
            "b.png": [_det((300.0, 300.0, 350.0, 350.0), "knife", 0.8), _det(BOX, "knife", 0.7)],
            "c.png": [],
        }
    )
    voc = voc_ap50(ds, preds)
    assert voc["per_class"]["knife"] == pytest.approx(5 / 9)
    assert voc["n_gt"] == {"knife": 3}
    with pytest.raises(ValueError, match="undefined"):
        ranked_ap([], [], 0)


def test_voc_duplicates_are_false_positives_and_difficult_objects_ignored():
    ds = _dataset(_gt("a.png", (BOX, "knife"), ((200.0, 200.0, 300.0, 300.0), "knife")))
    ds.images[0].meta["difficult"] = [1]
    # The duplicate (second hit on BOX) is a FP; the hit on the difficult object is ignored.
    preds = _preds(
        {
            "a.png": [
                _det(BOX, "knife", 0.9),
                _det((200.0, 200.0, 300.0, 300.0), "knife", 0.8),
                _det(BOX, "knife", 0.7),
            ]
        }
    )
    assert voc_ap50(ds, preds)["per_class"]["knife"] == 1.0  # TP, (ignored), FP after recall 1
    # Counting difficult objects: TP, TP, FP of 2 -> AP 1.
    both = voc_ap50(ds, preds, use_difficult=True)
    assert both["per_class"]["knife"] == 1.0 and both["n_gt"] == {"knife": 2}
    # Dropping the second detection: without difficult AP stays 1; with it, recall caps at 0.5.
    preds.images[0].detections.pop(1)
    assert voc_ap50(ds, preds, use_difficult=True)["per_class"]["knife"] == pytest.approx(0.5)


def test_per_occlusion_level_treats_other_levels_as_ignore_regions():
    far = (200.0, 200.0, 300.0, 300.0)
    ds = _dataset(
        # Level 1 found exactly, level 2 missed, level 3 found at IoU 0.6; one object
        # without a level, found exactly, is ignored by every level.
        _gt("a.png", (BOX, "knife", 1), (far, "knife", 2)),
        _gt("b.png", (BOX, "knife", 3), (far, "knife")),
    )
    preds = _preds(
        {
            "a.png": [_det(BOX, "knife", 0.9)],
            "b.png": [_det(SHIFTED, "knife", 0.8), _det(far, "knife", 0.7)],
        }
    )
    m = evaluate(ds, preds)
    assert m.per_occlusion[1] == {"AP": 1.0, "AP50": 1.0, "n_gt": 1}
    # Level 2: its only object is missed; every detection lies on an ignore region.
    assert m.per_occlusion[2] == {"AP": 0.0, "AP50": 0.0, "n_gt": 1}
    assert m.per_occlusion[3]["AP50"] == 1.0
    assert m.per_occlusion[3]["AP"] == pytest.approx(0.3)
    assert m.per_occlusion[3]["n_gt"] == 1
    assert m.n_gt == 4


def test_occlusion_levels_that_do_not_occur_are_left_out():
    ds = _dataset(_gt("a.png", (BOX, "knife", 2)))
    m = evaluate(ds, _preds({"a.png": [_det(BOX, "knife", 0.9)]}))
    assert list(m.per_occlusion) == [2]


def test_per_subset_evaluates_the_images_of_each_subset():
    ds = _dataset(
        _gt("e1.png", (BOX, "knife"), subset="easy"),
        _gt("e2.png", (BOX, "knife"), subset="easy"),
        _gt("h1.png", (BOX, "knife"), ((200.0, 200.0, 300.0, 300.0), "knife"), subset="hard"),
        _gt("x.png", (BOX, "knife"), subset="hidden"),
        _gt("none.png", (BOX, "knife")),
    )
    preds = _preds(
        {
            "e1.png": [_det(BOX, "knife", 0.9)],
            "e2.png": [_det(BOX, "knife", 0.9)],
            "h1.png": [_det(BOX, "knife", 0.9)],
            "x.png": [_det(SHIFTED, "knife", 0.9)],
            "none.png": [],
        }
    )
    m = evaluate(ds, preds)
    assert list(m.per_subset) == ["easy", "hard", "hidden"]
    assert m.per_subset["easy"] == {"AP": 1.0, "AP50": 1.0, "AP75": 1.0, "n_images": 2, "n_gt": 2}
    assert m.per_subset["hard"]["AP50"] == pytest.approx(51 / 101)
    assert (m.per_subset["hard"]["n_images"], m.per_subset["hard"]["n_gt"]) == (1, 2)
    assert m.per_subset["hidden"]["AP"] == pytest.approx(0.3)
    assert m.n_images == 5


def test_confusion_matrix_counts_hits_confusions_misses_and_false_alarms():
    ds = Dataset(
        "hand",
        [
            _gt("a.png", (BOX, "knife"), ((200.0, 200.0, 300.0, 300.0), "gun")),
            _gt("b.png", (BOX, "gun")),
        ],
        classes=CLASSES,
    )
    preds = _preds(
        {
            # knife found; the gun called a knife; a false alarm gun; a low-score gun not counted.
            "a.png": [
                _det(BOX, "knife", 0.9),
                _det((200.0, 200.0, 300.0, 300.0), "knife", 0.8),
                _det((300.0, 0.0, 350.0, 50.0), "gun", 0.6),
                _det((200.0, 200.0, 300.0, 300.0), "gun", 0.1),
            ],
            "b.png": [],  # the gun missed
        }
    )
    cm = confusion_matrix(ds, preds, score_threshold=0.25)
    assert cm.labels == ["gun", "knife", "background"]
    # rows: ground truth gun, knife, background; columns: predicted gun, knife, background
    assert cm.matrix == [[0, 1, 1], [0, 1, 0], [1, 0, 0]]
    # Per-class thresholds: the low-score gun now counts and takes the gun in the
    # same-class pass, so the knife on the gun is left over as a false alarm.
    per_class = confusion_matrix(ds, preds, score_threshold={"gun": 0.05, "knife": 0.5})
    assert per_class.matrix == [[1, 0, 1], [0, 1, 0], [1, 1, 0]]
    assert per_class.score_threshold == {"gun": 0.05, "knife": 0.5}


def _screening_set() -> tuple[Dataset, Predictions]:
    clean = [0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50]
    threat = [0.95, 0.90, 0.85, 0.80, 0.70, 0.60, 0.48, 0.40, 0.30, None]
    records, dets = [], {}
    for i, s in enumerate(clean):
        records.append(_gt(f"clean{i}.png"))
        dets[f"clean{i}.png"] = [_det((10.0, 10.0, 50.0, 50.0), "knife", s)]
    for i, s in enumerate(threat):
        records.append(_gt(f"threat{i}.png", (BOX, "knife")))
        # The 0.85 detection is on the wrong place: it alarms but is not localised.
        box = (250.0, 250.0, 300.0, 300.0) if s == 0.85 else BOX
        dets[f"threat{i}.png"] = [] if s is None else [_det(box, "knife", s)]
    return _dataset(*records), _preds(dets)


def test_screening_detection_rate_at_false_alarm_rates():
    ds, preds = _screening_set()
    sm = screening(ds, preds)
    assert (sm.n_clean, sm.n_threat, sm.defined) == (10, 10, True)
    # Thresholds lie halfway between neighbouring scores (not on a score, where
    # rounding would flip it). 10 %: at most one clean bag may alarm, so t must be
    # above 0.45; the next score is the threat bag's 0.48: t = 0.465 (clean 0.50
    # alarms: FAR 1/10). Threat bags >= 0.48: 7.
    p10 = sm.at(0.10)
    assert p10 is not None
    assert (p10.threshold, p10.far, p10.detection_rate) == (pytest.approx(0.465), 0.1, 0.7)
    assert p10.detection_rate_localised == pytest.approx(0.6)
    # 1 % and 5 %: no clean bag may alarm: t between 0.50 and 0.60 -> 6/10.
    for x in (0.01, 0.05):
        p = sm.at(x)
        assert p is not None
        assert (p.threshold, p.far, p.detection_rate) == (pytest.approx(0.55), 0.0, 0.6)
    # 20 %: two clean bags may alarm: t = 0.425 (clean 0.45, 0.50 alarm); threat >= 0.45: 7.
    p20 = sm.at(0.20)
    assert p20 is not None
    assert (p20.threshold, p20.far, p20.detection_rate) == (pytest.approx(0.425), 0.2, 0.7)
    # The curve runs from the top (nothing alarms) down to every bag with a detection.
    assert sm.curve["far"][0] == 0.0 and sm.curve["detection_rate"][0] == 0.0
    assert sm.curve["far"][-1] == 1.0 and sm.curve["detection_rate"][-1] == 0.9
    assert sm.curve["threshold"][-1] == 0.05


def test_screening_without_clean_bags_is_undefined():
    ds = _dataset(_gt("a.png", (BOX, "knife")), _gt("b.png", (BOX, "knife")))
    sm = screening(ds, _preds({"a.png": [_det(BOX, "knife", 0.9)], "b.png": []}))
    assert not sm.defined and sm.points == [] and sm.curve == {}
    assert "no clean bags" in (sm.note or "") and "undefined" in (sm.note or "")
    assert sm.to_dict()["points"] == []


def test_screening_checks_its_inputs():
    ds, preds = _screening_set()
    with pytest.raises(ConfigError, match="outside"):
        screening(ds, preds, far_points=(1.5,))
    with pytest.raises(DataValidationError, match="none of the threat classes"):
        screening(ds, preds, threat_classes=["laptop"])


def _random_set(seed: int) -> tuple[Dataset, Predictions]:
    """Images with 0-2 objects of gun / knife; each object gets an exact detection with
    probability 0.8, and every image 0-3 false alarms in an empty corner."""
    rng = np.random.default_rng(seed)
    records, dets = [], {}
    for i in range(120):
        objs, found = [], []
        for k in range(int(rng.integers(0, 3))):
            cls = CLASSES[int(rng.integers(0, 2))]
            box = (10.0 + 120 * k, 10.0, 100.0 + 120 * k, 100.0)
            objs.append((box, cls))
            if rng.random() < 0.8:
                found.append(_det(box, cls, float(rng.uniform(0.3, 1.0))))
        for _ in range(int(rng.integers(0, 4))):
            cls = CLASSES[int(rng.integers(0, 2))]
            found.append(_det((300.0, 300.0, 350.0, 350.0), cls, float(rng.uniform(0.0, 0.9))))
        records.append(_gt(f"{i}.png", *objs))
        dets[f"{i}.png"] = found
    return Dataset("random", records, classes=list(CLASSES)), _preds(dets)


@pytest.mark.parametrize("target", [0.0, 0.05, 0.2])
def test_far_thresholds_reach_their_target_on_the_data_they_were_chosen_on(target):
    ds, preds = _random_set(1)
    chosen = choose_thresholds(ds, preds, mode="far", target=target)
    assert chosen.thresholds() == operating_thresholds(ds, preds, mode="far", target=target)
    for c in CLASSES:
        t = chosen.per_class[c].threshold
        negatives = [
            max((d.score for d in ip.detections if d.category == c), default=-math.inf)
            for im, ip in zip(ds.images, preds.images, strict=True)
            if not any(a.category == c for a in im.annotations)
        ]
        fired = sum(s >= t for s in negatives) / len(negatives)
        assert fired <= target and chosen.per_class[c].achieved == pytest.approx(fired)
        # The lowest such score: the next lower score of class c breaks the target.
        lower = [
            d.score for ip in preds.images for d in ip.detections if d.category == c and d.score < t
        ]
        if lower:
            assert sum(s >= max(lower) for s in negatives) / len(negatives) > target


@pytest.mark.parametrize("target", [0.5, 0.8, 0.95])
def test_recall_thresholds_reach_their_target_on_the_data_they_were_chosen_on(target):
    ds, preds = _random_set(2)
    chosen = choose_thresholds(ds, preds, mode="recall", target=target)

    def recall(c: str, t: float) -> float:
        objects = [(im.file, a.box) for im in ds.images for a in im.annotations if a.category == c]
        hit = {
            (ip.file, d.box)
            for ip in preds.images
            for d in ip.detections
            if d.category == c and d.score >= t
        }
        return sum(o in hit for o in objects) / len(objects)

    for c in CLASSES:
        ct = chosen.per_class[c]
        if target <= 0.8:
            assert ct.reached and recall(c, ct.threshold) >= target
            assert ct.achieved == pytest.approx(recall(c, ct.threshold))
            # The highest such threshold: just above it the recall falls short.
            assert recall(c, math.nextafter(ct.threshold, 1.0)) < target
        else:
            # About 80 % of objects have a detection at all: 95 % cannot be reached.
            assert not ct.reached
            assert ct.achieved == pytest.approx(recall(c, 0.0))


def _bag_alarms(
    ds: Dataset, preds: Predictions, thresholds: dict[str, float]
) -> tuple[float, float]:
    """(share of clean bags, share of other bags) on which some class fires."""
    clean, threat = [], []
    for im, ip in zip(ds.images, preds.images, strict=True):
        fires = any(d.score >= thresholds.get(d.category, math.inf) for d in ip.detections)
        (threat if im.annotations else clean).append(fires)
    return sum(clean) / len(clean), sum(threat) / len(threat)


@pytest.mark.parametrize("target", [0.0, 0.05, 0.2])
def test_bag_far_thresholds_reach_their_target_per_bag(target, tmp_path):
    from cv.predictions import read_predictions, write_predictions

    ds, preds = _random_set(4)
    chosen = choose_thresholds(ds, preds, mode="bag-far", target=target)
    assert chosen.mode == "bag-far" and set(chosen.per_class) == set(CLASSES)
    far, dr = _bag_alarms(ds, preds, chosen.thresholds())
    # Saved (scores rounded to 6 decimals) and read back, the same bags alarm: no
    # threshold sits on an observed score.
    saved = read_predictions(write_predictions(preds, tmp_path / "predictions.json"))
    assert _bag_alarms(ds, saved, chosen.thresholds()) == (far, dr)
    bag = chosen.bag
    assert bag is not None and far <= target
    assert (bag.far, bag.detection_rate) == (pytest.approx(far), pytest.approx(dr))
    assert bag.clean_bags + bag.threat_bags == len(ds.images)
    # Every class is held to the common rate by mode far's rule...
    per_class = choose_thresholds(ds, preds, mode="far", target=bag.class_rate)
    assert per_class.thresholds() == chosen.thresholds()
    # ...and it is the largest such rate: the next rate that occurs breaks the target.
    negatives = {c: chosen.per_class[c].n for c in CLASSES}
    higher = sorted(
        k / n for n in negatives.values() for k in range(n + 1) if k / n > bag.class_rate
    )
    if higher:
        looser = choose_thresholds(ds, preds, mode="far", target=higher[0]).thresholds()
        assert _bag_alarms(ds, preds, looser)[0] > target
    # Per class at the same rate would alarm on more clean bags: the rates add up.
    if target > 0:
        naive = choose_thresholds(ds, preds, mode="far", target=target).thresholds()
        assert _bag_alarms(ds, preds, naive)[0] > far


def test_bag_far_class_weights_share_the_budget_by_weight():
    ds, preds = _random_set(4)
    even = choose_thresholds(ds, preds, mode="bag-far", target=0.1)
    weighted = choose_thresholds(
        ds, preds, mode="bag-far", target=0.1, class_weights={"gun": 4.0, "knife": 1.0}
    )
    bag = weighted.bag
    assert bag is not None and bag.weights == {"gun": 4.0}  # weight 1 is the default
    far, dr = _bag_alarms(ds, preds, weighted.thresholds())
    assert far <= 0.1 and (bag.far, bag.detection_rate) == (pytest.approx(far), pytest.approx(dr))
    # Each class is held to weight × the common rate, by mode far's rule...
    for c, w in {"gun": 4.0, "knife": 1.0}.items():
        alone = choose_thresholds(ds, preds, mode="far", target=min(1.0, w * bag.class_rate))
        assert weighted.per_class[c].threshold == alone.per_class[c].threshold
    # ... so guns alarm more easily and knives less than with equal rates.
    assert weighted.per_class["gun"].threshold <= even.per_class["gun"].threshold
    assert weighted.per_class["knife"].threshold >= even.per_class["knife"].threshold
    assert weighted.per_class["gun"].achieved > weighted.per_class["knife"].achieved
    # The common rate is the largest that keeps the target.
    n = {c: weighted.per_class[c].n for c in CLASSES}
    rates = sorted(
        {k / (n[c] * w) for c, w in {"gun": 4.0, "knife": 1.0}.items() for k in range(n[c] + 1)}
    )
    above = rates[rates.index(bag.class_rate) + 1]
    looser = {
        c: choose_thresholds(ds, preds, mode="far", target=min(1.0, w * above))
        .per_class[c]
        .threshold
        for c, w in {"gun": 4.0, "knife": 1.0}.items()
    }
    assert _bag_alarms(ds, preds, looser)[0] > 0.1


def test_class_weights_are_checked():
    ds, preds = _random_set(4)
    with pytest.raises(ConfigError, match="bag-far"):
        choose_thresholds(ds, preds, mode="far", target=0.1, class_weights={"gun": 2.0})
    with pytest.raises(ConfigError, match="pistol"):
        choose_thresholds(ds, preds, mode="bag-far", target=0.1, class_weights={"pistol": 2.0})
    with pytest.raises(ConfigError, match="positive"):
        choose_thresholds(ds, preds, mode="bag-far", target=0.1, class_weights={"gun": 0.0})


def test_bag_far_needs_clean_bags_and_is_reported():
    only_threats = _dataset(_gt("a.png", (BOX, "knife")), _gt("b.png", (BOX, "knife")))
    p = _preds({"a.png": [_det(BOX, "knife", 0.9)], "b.png": [_det(BOX, "knife", 0.2)]})
    with pytest.raises(DataValidationError, match="clean bags"):
        choose_thresholds(only_threats, p, mode="bag-far", target=0.05)
    assert count_clean_bags(only_threats, p) == 0
    # Chosen for gun only, the knife bags are clean with respect to it.
    assert count_clean_bags(only_threats, p, classes=["gun"]) == 2
    ds, preds = _screening_set()
    chosen = choose_thresholds(ds, preds, mode="bag-far", target=0.10)
    # One class: the bag rate is the class's rate; as in screening at 10 %, t = 0.465.
    assert chosen.thresholds() == {"knife": pytest.approx(0.465)}
    d = chosen.to_dict()
    assert d["bag"]["far"] == pytest.approx(0.1) and d["bag"]["detection_rate"] == 0.7


def test_thresholds_check_mode_and_target_and_skip_classes_without_data():
    ds, preds = _random_set(3)
    with pytest.raises(ConfigError, match="mode"):
        choose_thresholds(ds, preds, mode="precision", target=0.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="target"):
        choose_thresholds(ds, preds, mode="recall", target=0.0)
    only_knife = _dataset(_gt("a.png", (BOX, "knife")))
    p = _preds({"a.png": [_det(BOX, "knife", 0.9)]})
    chosen = choose_thresholds(only_knife, p, mode="far", target=0.05)
    assert chosen.per_class == {} and "no image without" in chosen.skipped["knife"]


def test_missing_predictions_extra_images_and_unknown_classes_are_named():
    ds = _dataset(_gt("a.png", (BOX, "knife")), _gt("b.png", (BOX, "knife")))
    with pytest.raises(DataValidationError, match=r"image 'b\.png' of dataset 'hand' has no entry"):
        evaluate(ds, _preds({"a.png": []}))
    extra = _preds({"a.png": [], "b.png": [], "z.png": []})
    with pytest.raises(DataValidationError, match=r"first 'z\.png'"):
        voc_ap50(ds, extra)
    assert evaluate(ds, extra, allow_extra=True).n_images == 2
    drugs = _dataset(_gt("a.png", (BOX, "drugs")))
    with pytest.raises(DataValidationError, match=r"'drugs'.*model classes: gun, knife"):
        evaluate(drugs, _preds({"a.png": []}))
    with pytest.raises(DataValidationError, match=r"'drugs'"):
        choose_thresholds(drugs, _preds({"a.png": []}), mode="far", target=0.1)
