"""The evaluation figures: PR curves, confusion matrix, detection rate against false alarms.

Matplotlib is imported inside each function, with the Agg backend, so that
importing :mod:`cv.evaluation` stays light and works without a display.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from cv.evaluation.detection import ConfusionMatrix, PRCurve
    from cv.evaluation.screening import ScreeningMetrics


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | PathLike[str]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    _pyplot().close(fig)
    return p


def plot_pr_curves(
    path: str | PathLike[str],
    *,
    curves: Mapping[str, PRCurve],
    ap50: Mapping[str, float | int | None],
) -> Path:
    """Draws every class's precision-recall curve at IoU 0.5 into one PNG.

    Args:
        path: The PNG to write.
        curves: Per class curve, from :class:`~cv.evaluation.detection.DetectionMetrics`.
        ap50: Per class AP50, shown in the legend.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("tab20")
    for i, (name, curve) in enumerate(curves.items()):
        ap = ap50.get(name)
        label = f"{name} ({ap:.3f})" if ap is not None else name
        ax.plot(curve.recall, curve.precision, lw=1.6, color=cmap(i % 20), label=label)
    if curves:
        mean = np.mean([c.precision for c in curves.values()], axis=0)
        defined = [v for v in ap50.values() if v is not None]
        ax.plot(
            next(iter(curves.values())).recall,
            mean,
            lw=3,
            color="black",
            label=f"all classes ({np.mean(defined):.3f})" if defined else "all classes",
        )
    else:
        ax.text(0.5, 0.5, "no class with ground truth", ha="center", va="center")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
    ax.set_title("Precision-recall at IoU 0.5 (COCO 101-point), legend: AP50")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_confusion(path: str | PathLike[str], *, confusion: ConfusionMatrix) -> Path:
    """Draws the confusion matrix: colour by share of each ground-truth row, counts written.

    Args:
        path: The PNG to write.
        confusion: The matrix (rows ground truth, columns predicted).
    """
    plt = _pyplot()
    m = np.asarray(confusion.matrix, dtype=np.float64)
    n = len(confusion.labels)
    rows = m.sum(axis=1, keepdims=True)
    # Colour by row share so rare classes are as readable as common ones; the
    # background row (false alarms) has no total to divide by and uses its own maximum.
    share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    if m[-1].max() > 0:
        share[-1] = m[-1] / m[-1].max()
    side = max(5.0, 0.55 * n + 2)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if m[i, j] > 0:
                ax.text(
                    j,
                    i,
                    f"{int(m[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if share[i, j] > 0.5 else "black",
                )
    ax.set_xticks(range(n), confusion.labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), confusion.labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    thr = confusion.score_threshold
    thr_text = "per-class thresholds" if isinstance(thr, dict) else f"score ≥ {thr:g}"
    ax.set_title(f"Confusion matrix ({thr_text}, IoU ≥ {confusion.iou_threshold:g})")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of ground-truth row")
    fig.tight_layout()
    return _save(fig, path)


def plot_dr_far(path: str | PathLike[str], *, screening: ScreeningMetrics) -> Path:
    """Draws bag-level detection rate against false-alarm rate, log x, targets marked.

    Args:
        path: The PNG to write.
        screening: The screening metrics.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    if not screening.defined:
        ax.text(0.5, 0.5, screening.note or "undefined", ha="center", va="center", wrap=True)
        ax.set_axis_off()
        return _save(fig, path)
    lo = min(0.5 / screening.n_clean, 0.005)
    # A log axis cannot show a rate of 0: those points sit on the left edge.
    far = np.maximum(np.asarray(screening.curve["far"]), lo)
    for key, label, style in (
        ("detection_rate", "detection rate", "-"),
        ("detection_rate_localised", "localised detection rate", "--"),
    ):
        dr = np.asarray(screening.curve[key])
        ax.step(far, dr, where="post", ls=style, lw=1.8, label=label)
    for p in screening.points:
        ax.axvline(p.far_target, color="grey", lw=0.8, ls=":")
        ax.plot([p.far_target], [p.detection_rate], "o", color="crimson")
        ax.annotate(
            f"{p.detection_rate:.3f} @ {p.far_target:.0%}",
            (p.far_target, p.detection_rate),
            textcoords="offset points",
            xytext=(4, -12),
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set(xlim=(lo, 1.0), ylim=(0, 1.02))
    ax.set_xlabel(f"false-alarm rate (share of {screening.n_clean} clean bags; 0 at the left edge)")
    ax.set_ylabel(f"detection rate (share of {screening.n_threat} threat bags)")
    ax.set_title("Bag-level screening: detection rate at false-alarm rate")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
