"""The evaluation report: ``metrics.json``, three PNG figures and ``report.md``.

``metrics.json`` holds every number (COCO, VOC, screening, thresholds) for
machines; ``report.md`` holds the same tables for people and links the figures.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import Any

from cv.evaluation.detection import ConfusionMatrix, DetectionMetrics
from cv.evaluation.plots import plot_confusion, plot_dr_far, plot_pr_curves
from cv.evaluation.screening import BagAlarms, OperatingThresholds, ScreeningMetrics

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
PR_FILE = "pr_curves.png"
CONFUSION_FILE = "confusion_matrix.png"
DR_FAR_FILE = "dr_far.png"


def _num(value: float | int | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return [*lines, ""]


def _thresholds_dict(
    thresholds: OperatingThresholds | Mapping[str, float] | None,
) -> dict[str, Any] | None:
    if thresholds is None:
        return None
    if isinstance(thresholds, OperatingThresholds):
        return thresholds.to_dict()
    return {"thresholds": {c: float(t) for c, t in thresholds.items()}}


def _markdown(
    *,
    detection: DetectionMetrics,
    voc: Mapping[str, Any],
    screening: ScreeningMetrics,
    thresholds: OperatingThresholds | Mapping[str, float] | None,
    confusion: ConfusionMatrix | None,
    dataset_name: str,
    model_summary: Mapping[str, Any],
    model_thresholds: BagAlarms | None = None,
) -> str:
    s = detection.summary()
    model_name = str(model_summary.get("name", "unnamed model"))
    out = [
        f"# Evaluation of {model_name} on {dataset_name}",
        "",
        f"{detection.n_images} images, {detection.n_gt} objects, {detection.n_detections} "
        f"detections, {len(detection.classes)} classes. COCO figures by faster-coco-eval "
        "(pycocotools' COCOeval); VOC AP50 all-point interpolated (VOC2010+).",
        "",
        "## Summary",
        "",
    ]
    dr = {p.far_target: p.detection_rate for p in screening.points}
    out += _table(
        ["AP", "AP50", "AP75", "VOC AP50", "AR100", "DR@1%", "DR@5%", "DR@10%", "DR@20%"],
        [
            [
                _num(s.get("AP")),
                _num(s.get("AP50")),
                _num(s.get("AP75")),
                _num(voc.get("AP50")),
                _num(s.get("AR100")),
                *(_num(dr.get(x)) for x in (0.01, 0.05, 0.10, 0.20)),
            ]
        ],
    )
    # Only the plain facts; class lists and nested records are in metrics.json.
    facts = {k: v for k, v in model_summary.items() if isinstance(v, str | int | float)}
    if facts:
        out += ["Model: " + ", ".join(f"{k} = {v}" for k, v in facts.items()), ""]

    out += ["## Per class", ""]
    voc_pc = voc.get("per_class", {})
    out += _table(
        ["class", "objects", "AP", "AP50", "AP75", "VOC AP50"],
        [
            [
                c,
                _num(v.get("n_gt")),
                _num(v.get("AP")),
                _num(v.get("AP50")),
                _num(v.get("AP75")),
                _num(voc_pc.get(c)),
            ]
            for c, v in detection.per_class.items()
        ],
    )
    out += [f"![precision-recall curves]({PR_FILE})", ""]

    out += ["## Per object size (COCO: small < 32², medium < 96², large)", ""]
    out += _table(
        ["size", "AP", "AR100"],
        [[k, _num(s.get(f"AP_{k}")), _num(s.get(f"AR_{k}"))] for k in ("small", "medium", "large")],
    )

    out += ["## Per occlusion level", ""]
    if detection.per_occlusion:
        out += [
            "Each level is evaluated on every image, with objects of the other levels (or "
            "of no level) as COCO ignore regions.",
            "",
        ]
        out += _table(
            ["level", "objects", "AP", "AP50"],
            [
                [str(k), _num(v.get("n_gt")), _num(v.get("AP")), _num(v.get("AP50"))]
                for k, v in detection.per_occlusion.items()
            ],
        )
    else:
        out += ["No object has an occlusion level.", ""]

    out += ["## Per subset", ""]
    if detection.per_subset:
        out += _table(
            ["subset", "images", "objects", "AP", "AP50", "AP75"],
            [
                [
                    k,
                    _num(v.get("n_images")),
                    _num(v.get("n_gt")),
                    _num(v.get("AP")),
                    _num(v.get("AP50")),
                    _num(v.get("AP75")),
                ]
                for k, v in detection.per_subset.items()
            ],
        )
    else:
        out += ["The dataset has no subsets.", ""]

    out += ["## Screening (bag level)", ""]
    # The taxonomy lists every threat class; name the ones this evaluation has.
    threats = [c for c in screening.threat_classes if c in detection.classes]
    out += [
        f"{screening.n_threat} threat bags, {screening.n_clean} clean bags; alarm = highest "
        f"score of a threat-class detection ({', '.join(threats) or 'none evaluated'}). "
        "Localised: a threat-class detection at or above the threshold overlaps a threat "
        "object with IoU ≥ 0.5.",
        "",
    ]
    if screening.defined:
        out += _table(
            ["FAR target", "threshold", "FAR", "detection rate", "localised DR"],
            [
                [
                    f"{p.far_target:.0%}",
                    _num(p.threshold, 4),
                    _num(p.far),
                    _num(p.detection_rate),
                    _num(p.detection_rate_localised),
                ]
                for p in screening.points
            ],
        )
    else:
        out += [f"**Undefined:** {screening.note}.", ""]
    out += [f"![detection rate against false-alarm rate]({DR_FAR_FILE})", ""]

    out += ["## Operating thresholds", ""]
    if isinstance(thresholds, OperatingThresholds):
        what = {
            "far": "false alarms per image without the class",
            "bag-far": "false alarms per clean bag, all classes together",
            "recall": "recall",
        }[thresholds.mode]
        out += [f"Chosen at {what} = {thresholds.target:g}.", ""]
        if thresholds.bag is not None:
            b = thresholds.bag
            out += [
                f"Thresholds hold {b.class_rates()}. Together they alarm on {_num(b.far)} of "
                f"{b.clean_bags} clean bags and {_num(b.detection_rate)} of "
                f"{b.threat_bags} other bags.",
                "",
            ]
        out += _table(
            ["class", "threshold", "achieved", "reached", "measured on"],
            [
                [
                    c,
                    _num(t.threshold, 4),
                    _num(t.achieved),
                    "yes" if t.reached else "**no**",
                    str(t.n),
                ]
                for c, t in thresholds.per_class.items()
            ],
        )
        if thresholds.skipped:
            out += [f"- {c}: no threshold ({why})" for c, why in thresholds.skipped.items()] + [""]
    elif thresholds:
        out += _table(["class", "threshold"], [[c, _num(t, 4)] for c, t in thresholds.items()])
    else:
        out += ["None chosen.", ""]
    if model_thresholds is not None:
        out += [
            "At the thresholds the model already carried (those a server alerts with): "
            f"{model_thresholds.describe()}.",
            "",
        ]

    out += ["## Confusion matrix", ""]
    if confusion is not None:
        thr = confusion.score_threshold
        how = "the operating thresholds" if isinstance(thr, dict) else f"score ≥ {thr:g}"
        out += [
            f"At {how} and IoU ≥ {confusion.iou_threshold:g}: detections matched to objects "
            "of their own class first, then of any class; the background row counts false "
            "alarms, the background column misses.",
            "",
            f"![confusion matrix]({CONFUSION_FILE})",
            "",
        ]
    return "\n".join(out)


def write_report(
    out_dir: str | PathLike[str],
    *,
    detection: DetectionMetrics,
    voc: Mapping[str, Any],
    screening: ScreeningMetrics,
    thresholds: OperatingThresholds | Mapping[str, float] | None,
    dataset_name: str,
    model_summary: Mapping[str, Any],
    confusion: ConfusionMatrix | None = None,
    model_thresholds: BagAlarms | None = None,
) -> Path:
    """Writes ``metrics.json``, ``pr_curves.png``, ``confusion_matrix.png``,
    ``dr_far.png`` and ``report.md`` into ``out_dir``.

    Args:
        out_dir: Folder to write into (created).
        detection: From :func:`~cv.evaluation.detection.evaluate`.
        voc: From :func:`~cv.evaluation.voc.voc_ap50`.
        screening: From :func:`~cv.evaluation.screening.screening`.
        thresholds: From :func:`~cv.evaluation.screening.choose_thresholds` (with
            what each achieves) or :func:`~cv.evaluation.screening.operating_thresholds`.
        dataset_name: Name shown in the title.
        model_summary: The model's summary (name, architecture, ...), as in the
            predictions file.
        confusion: The confusion matrix to draw; by default ``detection.confusion``.
        model_thresholds: What the evaluated model's own thresholds do per bag
            (:func:`~cv.evaluation.screening.bag_alarms`), if it has any.

    Returns:
        The path of ``report.md``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cm = confusion if confusion is not None else detection.confusion
    doc = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": dataset_name,
        "model": dict(model_summary),
        "coco": detection.to_dict(),
        "voc": dict(voc),
        "screening": screening.to_dict(),
        "thresholds": _thresholds_dict(thresholds),
        "at_model_thresholds": None if model_thresholds is None else model_thresholds.to_dict(),
    }
    if cm is not None:
        doc["coco"]["confusion"] = cm.to_dict()
    (out / METRICS_FILE).write_text(json.dumps(doc, indent=1) + "\n")
    plot_pr_curves(
        out / PR_FILE,
        curves=detection.pr_curves,
        ap50={c: v.get("AP50") for c, v in detection.per_class.items()},
    )
    if cm is not None:
        plot_confusion(out / CONFUSION_FILE, confusion=cm)
    plot_dr_far(out / DR_FAR_FILE, screening=screening)
    report = out / REPORT_FILE
    report.write_text(
        _markdown(
            detection=detection,
            voc=voc,
            screening=screening,
            thresholds=thresholds,
            confusion=cm,
            dataset_name=dataset_name,
            model_summary=model_summary,
            model_thresholds=model_thresholds,
        )
        + "\n"
    )
    return report
