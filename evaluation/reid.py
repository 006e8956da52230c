"""Re-ID evaluation: the Market-1501 ranking protocol, verification, the match threshold.

**Ranking** (:func:`evaluate_rank`), as torchreid's ``eval_market1501`` and
fast-reid's ``evaluate_rank`` compute it, in vectorised NumPy:

* gallery images of pid ``-1`` (junk) are dropped; distractors (pid ``0``) stay
  in the gallery as images that match no query;
* queries of pid ``-1`` or ``0`` have no identity to find and are not evaluated
  (``distractor_pid=None`` where pid 0 is a person, as in MSMT17);
* for each query, the gallery images with **the same pid and the same camera**
  are removed before ranking (finding them is not re-identification);
* a query left with no true match is skipped and counted;
* the gallery is ranked by ascending distance (a stable sort: equal distances keep
  gallery order); positions below are 1-based ranks among the remaining images;
* CMC(k) is 1 when a true match is within the first ``k``, averaged over the
  evaluated queries; AP is the mean over a query's true matches of the precision
  at each one's rank; INP = (number of true matches) / (rank of the last one)
  (fast-reid's mINP); mAP and mINP are their means over evaluated queries.

**Verification** (:func:`verification_pairs`, :func:`verification`): every
query-gallery pair with a cosine similarity is a **positive** when both images
show the same person on different cameras, a **negative** when they show
different people (gallery distractors included); pairs of the same person on
the same camera, and pairs with junk, are left out as in ranking. A pair is a
*match* when its similarity is ≥ the threshold; the false-positive rate (FPR) is
the share of negatives that match, the true-positive rate (TPR) that of positives.

**Tracklets** (:func:`tracklet_means`, ``evaluate_embedder(..., verify="tracklets")``):
the watch-list matcher compares an enrolment image with a *track's* running mean
embedding, not with one crop. Verifying on tracklets mirrors that: the gallery
images of one person on one camera are averaged into one unit vector (as video
re-ID protocols such as MARS pool a tracklet's frames), distractors stay single
images, and the pairs above are formed between query images and tracklets.
Ranking is always per image (the Market-1501 protocol).

**The match threshold** (:func:`threshold_at_fpr`) is the lowest similarity at
which at most the target share of negatives match: the watch-list match
threshold (``model.json`` ``thresholds["match"]``), chosen by default at
FPR 1e-3. With ``n`` negatives, rates below ``1 / n`` are not resolved: the
threshold is then simply above every negative (``resolved`` is false).

:func:`evaluate_embedder` runs a :class:`~cv.models.reid.Embedder` over a
:class:`~cv.datasets.reid.ReidDataset` and computes all of it;
:func:`write_reid_report` writes ``metrics.json``, ``cmc.png``,
``similarity.png`` and ``report.md``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cv.datasets.reid import DISTRACTOR_PID, JUNK_PID
from cv.errors import ConfigError, DataValidationError

if TYPE_CHECKING:
    from cv.datasets.reid import ReidDataset, ReidSample
    from cv.models.reid import Embedder

log = logging.getLogger(__name__)

FPR_POINTS: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 0.1)
DEFAULT_MATCH_FPR = 1e-3
CMC_RANKS: tuple[int, ...] = (1, 5, 10, 20)

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
CMC_FILE = "cmc.png"
SIMILARITY_FILE = "similarity.png"

# Query rows ranked at once: bounds the (rows × gallery) temporaries to a few
# tens of MB whatever the gallery size.
_CHUNK_ELEMENTS = 2_000_000
# A count is compared with rate * n; the slack keeps float error from forbidding an
# allowed count (as in cv.evaluation.screening).
_EPS = 1e-9


# ---------------------------------------------------------------------------
# Ranking: CMC, mAP, mINP
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class ReidMetrics:
    """Ranking figures of the Market-1501 protocol.

    Attributes:
        cmc: ``cmc[k - 1]`` is CMC at rank ``k``, for ``k`` up to ``max_rank``
            (clipped to the gallery size).
        mAP: Mean average precision over the evaluated queries.
        mINP: Mean inverse negative penalty over the evaluated queries.
        num_valid_queries: Queries evaluated (with at least one true match).
        num_queries: Queries given.
        num_skipped_queries: Queries with an identity but no true match left after
            same-camera removal.
        num_unlabelled_queries: Queries of a junk or distractor pid (not evaluated).
        num_gallery: Gallery images ranked (junk dropped).
        num_junk_gallery: Gallery images dropped as junk.
    """

    cmc: NDArray[np.float64]
    mAP: float
    mINP: float
    num_valid_queries: int
    num_queries: int = 0
    num_skipped_queries: int = 0
    num_unlabelled_queries: int = 0
    num_gallery: int = 0
    num_junk_gallery: int = 0

    def rank(self, k: int) -> float:
        """CMC at rank ``k`` (1-based); ranks past the curve's end keep its last value."""
        if k < 1:
            raise ValueError(f"rank must be >= 1, got {k}")
        return float(self.cmc[min(k, len(self.cmc)) - 1])

    def to_dict(self) -> dict[str, Any]:
        """Headline figures, counts and the whole CMC curve, JSON-ready."""
        return {
            **{f"rank{k}": self.rank(k) for k in CMC_RANKS},
            "mAP": float(self.mAP),
            "mINP": float(self.mINP),
            "num_valid_queries": self.num_valid_queries,
            "num_queries": self.num_queries,
            "num_skipped_queries": self.num_skipped_queries,
            "num_unlabelled_queries": self.num_unlabelled_queries,
            "num_gallery": self.num_gallery,
            "num_junk_gallery": self.num_junk_gallery,
            "cmc": [float(v) for v in self.cmc],
        }


def _ids(values: ArrayLike, name: str, n: int | None = None) -> NDArray[np.int64]:
    a = np.asarray(values)
    if a.ndim != 1:
        raise DataValidationError(f"expected a 1-D array, got shape {a.shape}", field=name)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise DataValidationError(f"expected integer ids, got {a.dtype}", field=name)
    if n is not None and a.shape[0] != n:
        raise DataValidationError(
            f"expected {n} ids to match the matrix, got {a.shape[0]}", field=name
        )
    return a.astype(np.int64, copy=False)


def _pair_matrix(
    matrix: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    name: str,
) -> tuple[
    NDArray[np.floating], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]
]:
    m = np.asarray(matrix)
    if m.ndim != 2:
        raise DataValidationError(
            f"expected a (queries, gallery) matrix, got shape {m.shape}", field=name
        )
    if not np.issubdtype(m.dtype, np.floating):
        m = m.astype(np.float64)
    nq, ng = m.shape
    out = (
        _ids(q_pids, "q_pids", nq),
        _ids(g_pids, "g_pids", ng),
        _ids(q_camids, "q_camids", nq),
        _ids(g_camids, "g_camids", ng),
    )
    if not np.isfinite(m).all():
        bad = np.argwhere(~np.isfinite(m))[0]
        raise DataValidationError(
            f"not finite at query {bad[0]}, gallery {bad[1]}: {m[bad[0], bad[1]]}", field=name
        )
    return (m, *out)


def _labelled(pids: NDArray[np.int64], distractor_pid: int | None) -> NDArray[np.bool_]:
    """Which pids name a person: junk and distractor queries have no identity to find."""
    keep = pids != JUNK_PID
    if distractor_pid is not None:
        keep &= pids != distractor_pid
    return keep


def evaluate_rank(
    distmat: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    *,
    max_rank: int = 50,
    distractor_pid: int | None = DISTRACTOR_PID,
) -> ReidMetrics:
    """CMC, mAP and mINP by the Market-1501 protocol (see the module docstring).

    Args:
        distmat: ``(Q, G)`` distances, smaller = more alike (e.g. ``1 - cosine``).
        q_pids: ``(Q,)`` person ids of the queries.
        g_pids: ``(G,)`` person ids of the gallery (``-1`` junk, ``0`` distractor).
        q_camids: ``(Q,)`` camera ids of the queries.
        g_camids: ``(G,)`` camera ids of the gallery.
        max_rank: Length of the CMC curve (clipped to the gallery size).
        distractor_pid: The pid of distractors (never a query's true match), or
            ``None`` where every pid but junk is a person (MSMT17 numbers from 0).

    Raises:
        DataValidationError: If shapes disagree, a distance is not finite, or no
            query has a true match (nothing to evaluate).
    """
    if max_rank < 1:
        raise DataValidationError(f"must be >= 1, got {max_rank}", field="max_rank")
    dist, qp, gp, qc, gc = _pair_matrix(distmat, q_pids, g_pids, q_camids, g_camids, "distmat")
    nq = dist.shape[0]
    g_keep = gp != JUNK_PID
    gp, gc = gp[g_keep], gc[g_keep]
    ng = int(gp.size)
    labelled = _labelled(qp, distractor_pid)
    q_rows = np.flatnonzero(labelled)
    max_rank = min(max_rank, ng) if ng else 0

    first_hits: list[NDArray[np.int64]] = []
    aps: list[NDArray[np.float64]] = []
    inps: list[NDArray[np.float64]] = []
    step = max(1, _CHUNK_ELEMENTS // max(ng, 1))
    for a in range(0, q_rows.size if ng else 0, step):
        rows = q_rows[a : a + step]
        d = dist[rows][:, g_keep]
        order = np.argsort(d, axis=1, kind="stable")
        sp, sc = gp[order], gc[order]
        same_pid = sp == qp[rows, None]
        keep = ~(same_pid & (sc == qc[rows, None]))
        hit = same_pid & keep
        # 0-based position among the images kept for that query.
        pos = np.cumsum(keep, axis=1, dtype=np.int64) - 1
        n_rel = hit.sum(axis=1)
        ok = n_rel > 0
        if not ok.any():
            continue
        hit, pos, n_rel = hit[ok], pos[ok], n_rel[ok]
        first_hits.append(np.where(hit, pos, ng).min(axis=1))
        # Precision at each true match: (true matches so far) / (its rank).
        so_far = np.cumsum(hit, axis=1, dtype=np.int64)
        # (pos is -1 before the first kept image; those entries are never hits.)
        precision = np.where(hit, so_far / np.maximum(pos + 1, 1), 0.0)
        aps.append(precision.sum(axis=1) / n_rel)
        last = np.where(hit, pos, -1).max(axis=1)
        inps.append(n_rel / (last + 1))

    num_valid = sum(len(f) for f in first_hits)
    if num_valid == 0:
        raise DataValidationError(
            f"no query has a true match in the gallery ({nq} queries, {int(labelled.sum())} "
            f"with an identity, {ng} gallery images after junk): nothing to evaluate",
            field="query",
        )
    first = np.concatenate(first_hits)
    cmc = (first[:, None] < np.arange(1, max_rank + 1)[None, :]).mean(axis=0)
    return ReidMetrics(
        cmc=cmc.astype(np.float64),
        mAP=float(np.concatenate(aps).mean()),
        mINP=float(np.concatenate(inps).mean()),
        num_valid_queries=num_valid,
        num_queries=nq,
        num_skipped_queries=int(q_rows.size) - num_valid,
        num_unlabelled_queries=int(nq - q_rows.size),
        num_gallery=ng,
        num_junk_gallery=int((~g_keep).sum()),
    )


# ---------------------------------------------------------------------------
# Verification: TPR at FPR, the match threshold
# ---------------------------------------------------------------------------


def verification_pairs(
    simmat: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    *,
    distractor_pid: int | None = DISTRACTOR_PID,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The similarities of positive and negative query-gallery pairs.

    Positive: same pid (not junk, not distractor), different camera. Negative:
    different pids, the query labelled and the gallery image not junk (gallery
    distractors are negatives). Same pid on the same camera is left out.

    Args:
        simmat: ``(Q, G)`` similarities, larger = more alike (cosine).
        q_pids: ``(Q,)`` query person ids.
        g_pids: ``(G,)`` gallery person ids.
        q_camids: ``(Q,)`` query camera ids.
        g_camids: ``(G,)`` gallery camera ids.
        distractor_pid: As in :func:`evaluate_rank`.

    Returns:
        ``(positives, negatives)``, 1-D float32.
    """
    sim, qp, gp, qc, gc = _pair_matrix(simmat, q_pids, g_pids, q_camids, g_camids, "simmat")
    g_keep = gp != JUNK_PID
    q_keep = _labelled(qp, distractor_pid)
    sim = sim[q_keep][:, g_keep]
    qp, qc, gp, gc = qp[q_keep], qc[q_keep], gp[g_keep], gc[g_keep]
    pos: list[NDArray[np.float32]] = []
    neg: list[NDArray[np.float32]] = []
    step = max(1, _CHUNK_ELEMENTS // max(gp.size, 1))
    for a in range(0, qp.size, step):
        s = sim[a : a + step].astype(np.float32, copy=False)
        same = qp[a : a + step, None] == gp[None, :]
        other_cam = qc[a : a + step, None] != gc[None, :]
        pos.append(s[same & other_cam])
        neg.append(s[~same])
    empty = np.zeros(0, dtype=np.float32)
    return (np.concatenate(pos) if pos else empty, np.concatenate(neg) if neg else empty)


def tracklet_means(
    embeddings: NDArray[np.floating],
    pids: ArrayLike,
    camids: ArrayLike,
    *,
    distractor_pid: int | None = DISTRACTOR_PID,
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.int64]]:
    """Gallery embeddings pooled per (person, camera): one unit vector per tracklet.

    Images of a labelled person on one camera are averaged and normalised again
    (what the CCTV pipeline does over a track's crops). Distractors and junk are
    kept one by one: each is somebody of their own.

    Args:
        embeddings: ``(G, D)`` unit vectors.
        pids: ``(G,)`` person ids.
        camids: ``(G,)`` camera ids.
        distractor_pid: As in :func:`evaluate_rank`.

    Returns:
        ``(vectors, pids, camids)`` of the tracklets, in order of first appearance.
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    gp = _ids(pids, "pids", emb.shape[0])
    gc = _ids(camids, "camids", emb.shape[0])
    labelled = _labelled(gp, distractor_pid)
    groups: dict[tuple[int, int], list[int]] = {}
    singles: list[int] = []
    for i, (p, c, lab) in enumerate(zip(gp.tolist(), gc.tolist(), labelled.tolist(), strict=True)):
        if lab:
            groups.setdefault((p, c), []).append(i)
        else:
            singles.append(i)
    vecs = [emb[idx].mean(axis=0) for idx in groups.values()] + [emb[i] for i in singles]
    out = np.stack(vecs) if vecs else np.zeros((0, emb.shape[1]), np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    out = out / np.where(norms > 0, norms, 1.0)
    keys = [*groups, *((int(gp[i]), int(gc[i])) for i in singles)]
    return (
        out.astype(np.float32),
        np.array([k[0] for k in keys], dtype=np.int64),
        np.array([k[1] for k in keys], dtype=np.int64),
    )


def _as_scores(values: ArrayLike, name: str) -> NDArray[np.floating]:
    """A flat float32 or float64 array (float32 stays float32: half the memory)."""
    a = np.asarray(values)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    a = a.ravel()
    if not np.isfinite(a).all():
        raise DataValidationError("similarities must be finite (NaN or inf found)", field=name)
    return a


def _threshold_sorted(neg_sorted: NDArray[np.floating], fpr: float) -> float:
    """:func:`threshold_at_fpr` on negatives already sorted ascending."""
    n = neg_sorted.size
    allowed = math.floor(fpr * n + _EPS)  # negatives allowed at or above the threshold
    if allowed >= n:
        return float(neg_sorted[0])
    # The (allowed + 1)-th largest must not match; the lowest similarity that
    # occurs above it is the lowest threshold that excludes it.
    v = neg_sorted[n - 1 - allowed]
    above = n - int(np.searchsorted(neg_sorted, v, side="right"))
    if above == 0:
        return _just_above(float(neg_sorted[-1]))
    return float(neg_sorted[n - above])


def _just_above(value: float) -> float:
    """The next float32 above ``value``: stays above it whether a similarity is
    compared in float32 or float64 (NumPy casts a Python float to float32 when
    comparing with float32 arrays)."""
    return float(np.nextafter(np.float32(value), np.float32(np.inf)))


def threshold_at_fpr(sims_neg: ArrayLike, fpr: float = DEFAULT_MATCH_FPR) -> float:
    """The lowest similarity threshold at which at most ``fpr`` of the negatives match.

    A pair matches when its similarity is ≥ the threshold. The threshold is one of
    the negatives' similarities, or the next float32 above the highest when not
    even one negative may match (``fpr * n < 1``), so on these negatives the achieved FPR is
    ≤ ``fpr`` and no lower threshold achieves that.

    Args:
        sims_neg: Similarities of negative pairs (different people).
        fpr: The largest share of negatives allowed to match, in ``[0, 1]``.

    Raises:
        DataValidationError: If there are no negatives, a similarity is not finite,
            or ``fpr`` is outside ``[0, 1]``.
    """
    if not 0.0 <= fpr <= 1.0:
        raise DataValidationError(f"a rate in [0, 1] is needed, got {fpr}", field="fpr")
    neg = _as_scores(sims_neg, "sims_neg")
    if neg.size == 0:
        raise DataValidationError(
            "a false-match rate needs negative pairs (two different people); there are none",
            field="sims_neg",
        )
    return _threshold_sorted(np.sort(neg), fpr)


def _share_at_or_above(sorted_scores: NDArray[np.floating], t: float) -> float:
    n = sorted_scores.size
    return (n - int(np.searchsorted(sorted_scores, t, side="left"))) / n if n else float("nan")


@dataclass(slots=True)
class VerificationPoint:
    """The verification figures at one false-positive target.

    Attributes:
        fpr_target: The FPR asked for.
        threshold: The similarity threshold chosen for it (match when ≥).
        fpr: The FPR reached on the negatives (≤ ``fpr_target``).
        tpr: The TPR at ``threshold``.
        resolved: False when there are fewer than ``1 / fpr_target`` negatives, so
            the target is met only by putting the threshold above every negative.
    """

    fpr_target: float
    threshold: float
    fpr: float
    tpr: float
    resolved: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "fpr_target": self.fpr_target,
            "threshold": self.threshold,
            "fpr": self.fpr,
            "tpr": self.tpr,
            "resolved": self.resolved,
        }


@dataclass(slots=True)
class Verification:
    """TPR at fixed FPR, ROC AUC, the ROC curve and the similarity histograms.

    Attributes:
        points: One per FPR target, in the order asked.
        n_pos: Positive pairs.
        n_neg: Negative pairs.
        auc: Area under the ROC curve (ties count half); NaN without positives.
        roc_fpr: FPR along the ROC curve (ascending), for plotting.
        roc_tpr: TPR at the same thresholds.
        hist_edges: Bin edges of the similarity histograms (cosine, -1..1).
        hist_pos: Positive pairs per bin.
        hist_neg: Negative pairs per bin.
    """

    points: list[VerificationPoint]
    n_pos: int
    n_neg: int
    auc: float
    roc_fpr: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    roc_tpr: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    hist_edges: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    hist_pos: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    hist_neg: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def at(self, fpr_target: float) -> VerificationPoint | None:
        """The point computed for ``fpr_target``, if any."""
        for p in self.points:
            if math.isclose(p.fpr_target, fpr_target, rel_tol=1e-9):
                return p
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_pos": self.n_pos,
            "n_neg": self.n_neg,
            "auc": None if math.isnan(self.auc) else self.auc,
            "points": [p.to_dict() for p in self.points],
            **{f"TPR@FPR{p.fpr_target:g}": p.tpr for p in self.points},
        }


def verification(
    sims_pos: ArrayLike,
    sims_neg: ArrayLike,
    *,
    fprs: Sequence[float] = FPR_POINTS,
    bins: int = 100,
) -> Verification:
    """TPR at each FPR target, with the threshold that reaches it (:func:`threshold_at_fpr`).

    Args:
        sims_pos: Similarities of positive pairs (same person, different camera).
        sims_neg: Similarities of negative pairs (different people).
        fprs: FPR targets.
        bins: Bins of the similarity histograms over ``[-1, 1]``.

    Raises:
        DataValidationError: If there are no negatives or a similarity is not finite.
    """
    pos = np.sort(_as_scores(sims_pos, "sims_pos"))
    neg = np.sort(_as_scores(sims_neg, "sims_neg"))
    if neg.size == 0:
        raise DataValidationError(
            "a false-match rate needs negative pairs (two different people); there are none",
            field="sims_neg",
        )
    points = []
    for target in fprs:
        if not 0.0 <= target <= 1.0:
            raise DataValidationError(f"a rate in [0, 1] is needed, got {target}", field="fprs")
        t = _threshold_sorted(neg, target)
        points.append(
            VerificationPoint(
                fpr_target=float(target),
                threshold=t,
                fpr=_share_at_or_above(neg, t),
                tpr=_share_at_or_above(pos, t),
                resolved=target * neg.size >= 1.0 - _EPS,
            )
        )
    # AUC = P(pos > neg) + P(pos == neg) / 2 (Mann-Whitney), by binary search.
    if pos.size:
        below = np.searchsorted(neg, pos, side="left").sum(dtype=np.float64)
        at_or_below = np.searchsorted(neg, pos, side="right").sum(dtype=np.float64)
        auc = float((below + at_or_below) / 2 / (pos.size * neg.size))
    else:
        auc = float("nan")
    # ROC at thresholds spaced geometrically in the number of negatives that match.
    counts = np.unique(np.geomspace(1, neg.size, num=min(400, neg.size)).astype(np.int64))
    ts = neg[neg.size - counts]
    roc_fpr = (neg.size - np.searchsorted(neg, ts, side="left")) / neg.size
    roc_tpr = (
        (pos.size - np.searchsorted(pos, ts, side="left")) / pos.size
        if pos.size
        else np.zeros_like(roc_fpr)
    )
    # FPR 0: the threshold just above every negative.
    above_all = _just_above(float(neg[-1]))
    tpr_at_zero = _share_at_or_above(pos, above_all) if pos.size else 0.0
    edges = np.linspace(-1.0, 1.0, bins + 1)
    return Verification(
        points=points,
        n_pos=int(pos.size),
        n_neg=int(neg.size),
        auc=auc,
        roc_fpr=np.concatenate([[0.0], roc_fpr]),
        roc_tpr=np.concatenate([[tpr_at_zero], roc_tpr]),
        hist_edges=edges,
        hist_pos=np.histogram(np.clip(pos, -1, 1), bins=edges)[0],
        hist_neg=np.histogram(np.clip(neg, -1, 1), bins=edges)[0],
    )


# ---------------------------------------------------------------------------
# Running an embedder over a dataset
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class ReidReport:
    """Everything :func:`evaluate_embedder` measured.

    Attributes:
        metrics: The ranking figures.
        verification: TPR at FPR and the curves.
        threshold: The match threshold (cosine similarity) at ``target_fpr``.
        target_fpr: The FPR the threshold was chosen for.
        threshold_fpr: The FPR reached at ``threshold`` on these pairs.
        threshold_tpr: The TPR at ``threshold``.
        dataset: Name and counts of the evaluated split.
        model: Summary of the embedder (name, architecture, dim, runtime).
        embedding: Images embedded, seconds and crops per second.
    """

    metrics: ReidMetrics
    verification: Verification
    threshold: float
    target_fpr: float
    threshold_fpr: float
    threshold_tpr: float
    dataset: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    embedding: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        """The headline figures, flat (what ``--save-metrics`` stores in ``model.json``)."""
        m = self.metrics
        return {
            "rank1": m.rank(1),
            "rank5": m.rank(5),
            "rank10": m.rank(10),
            "mAP": m.mAP,
            "mINP": m.mINP,
            **{f"TPR@FPR{p.fpr_target:g}": p.tpr for p in self.verification.points},
            "match_threshold": self.threshold,
            "match_fpr": self.target_fpr,
            "queries": m.num_valid_queries,
            "gallery": m.num_gallery,
            "dataset": self.dataset.get("name"),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "ranking": self.metrics.to_dict(),
            "verification": self.verification.to_dict(),
            "threshold": {
                "match": self.threshold,
                "target_fpr": self.target_fpr,
                "fpr": self.threshold_fpr,
                "tpr": self.threshold_tpr,
            },
            "embedding": self.embedding,
        }


def embed_samples(
    embedder: Embedder,
    samples: Sequence[ReidSample],
    *,
    batch: int = 64,
    progress: bool = True,
    description: str = "embedding",
) -> NDArray[np.float32]:
    """Reads each sample's image (RGB) and embeds it: ``(N, D)`` float32, L2-normalised.

    Raises:
        NotFoundError, ImageReadError: If an image is missing or unreadable.
        DataValidationError: If the embedder returns the wrong shape or non-finite values.
    """
    from cv.image import read_image
    from cv.log import progress as progress_bar

    dim = int(embedder.dim)
    out = np.empty((len(samples), dim), dtype=np.float32)
    with progress_bar(disable=None if progress else True) as bar:
        task = bar.add_task(description, total=len(samples))
        for a in range(0, len(samples), batch):
            chunk = samples[a : a + batch]
            crops = [read_image(s.path) for s in chunk]
            emb = np.asarray(embedder.embed(crops, batch=batch))
            if emb.shape != (len(chunk), dim):
                raise DataValidationError(
                    f"the embedder returned shape {emb.shape} for {len(chunk)} crops, "
                    f"expected {(len(chunk), dim)}",
                    field="embed",
                )
            if not np.isfinite(emb).all():
                bad = chunk[int(np.argwhere(~np.isfinite(emb))[0, 0])].path
                raise DataValidationError("the embedding is not finite", path=bad)
            out[a : a + len(chunk)] = emb
            bar.advance(task, len(chunk))
    return out


def _model_summary(embedder: Embedder) -> dict[str, Any]:
    record = getattr(embedder, "record", None)
    summary: dict[str, Any] = {"runtime": type(embedder).__name__, "dim": int(embedder.dim)}
    if record is not None:
        summary = {
            "name": record.name,
            "architecture": record.architecture,
            "version": record.version,
            **summary,
        }
    return summary


def query_and_gallery(dataset: ReidDataset) -> tuple[list[ReidSample], list[ReidSample]]:
    """The query and gallery samples to embed (junk left out).

    Raises:
        DataValidationError: If either is empty; the message names the dataset folder.
    """
    query = [s for s in dataset.query if s.pid != JUNK_PID]
    gallery = [s for s in dataset.gallery if s.pid != JUNK_PID]
    if not query:
        raise DataValidationError(
            f"the query set is empty ({len(dataset.query)} images, junk aside none): a re-ID "
            "evaluation searches the gallery with query/ crops (Market-1501) or "
            "list_query.txt (MSMT17)",
            path=dataset.root,
            field="query",
        )
    if not gallery:
        raise DataValidationError(
            f"the gallery is empty ({len(dataset.gallery)} images, junk aside none)",
            path=dataset.root,
            field="gallery",
        )
    return query, gallery


def evaluate_embedder(
    embedder: Embedder,
    dataset: ReidDataset,
    *,
    batch: int = 64,
    fprs: Sequence[float] = FPR_POINTS,
    target_fpr: float = DEFAULT_MATCH_FPR,
    max_rank: int = 50,
    verify: str = "images",
    progress: bool = True,
) -> ReidReport:
    """Embeds the query and gallery of ``dataset`` and evaluates ranking and verification.

    Junk images (pid ``-1``) are not embedded. Distances are ``1 - cosine``.

    Args:
        embedder: A loaded re-ID embedder (:func:`cv.models.reid.load_embedder`).
        dataset: The dataset; its ``query`` and ``gallery`` splits are used.
        batch: Crops per embedder call.
        fprs: FPR targets of the verification figures.
        target_fpr: FPR at which the match threshold is chosen.
        max_rank: Length of the CMC curve.
        verify: Verification pairs (and so the threshold) between query images and
            gallery ``images``, or gallery ``tracklets`` (:func:`tracklet_means`: what
            the watch-list matcher compares). Ranking is per image either way.
        progress: Show a progress bar.

    Raises:
        ConfigError: If ``verify`` is neither ``images`` nor ``tracklets``.
        DataValidationError: If the query or gallery split is empty (junk aside), or
            no query has a true match.
    """
    if verify not in ("images", "tracklets"):
        raise ConfigError(f"verify must be images or tracklets, got {verify!r}", field="verify")
    root = dataset.root
    query, gallery = query_and_gallery(dataset)
    t0 = time.perf_counter()
    q = embed_samples(embedder, query, batch=batch, progress=progress, description="query")
    g = embed_samples(embedder, gallery, batch=batch, progress=progress, description="gallery")
    seconds = time.perf_counter() - t0
    q_pids = np.array([s.pid for s in query], dtype=np.int64)
    g_pids = np.array([s.pid for s in gallery], dtype=np.int64)
    q_cams = np.array([s.camid for s in query], dtype=np.int64)
    g_cams = np.array([s.camid for s in gallery], dtype=np.int64)
    sims = q @ g.T
    np.clip(sims, -1.0, 1.0, out=sims)
    distractor = dataset.distractor_pid
    metrics = evaluate_rank(
        1.0 - sims, q_pids, g_pids, q_cams, g_cams, max_rank=max_rank, distractor_pid=distractor
    )
    # The junk images were never embedded: count them as the protocol's drop.
    metrics.num_junk_gallery = len(dataset.gallery) - len(gallery)
    metrics.num_unlabelled_queries += len(dataset.query) - len(query)
    metrics.num_queries = len(dataset.query)
    if verify == "tracklets":
        t, t_pids, t_cams = tracklet_means(g, g_pids, g_cams, distractor_pid=distractor)
        sims = np.clip(q @ t.T, -1.0, 1.0)
        g_pids, g_cams = t_pids, t_cams
    del q, g
    pos, neg = verification_pairs(sims, q_pids, g_pids, q_cams, g_cams, distractor_pid=distractor)
    del sims
    targets = list(fprs) if any(math.isclose(f, target_fpr) for f in fprs) else [*fprs, target_fpr]
    ver = verification(pos, neg, fprs=sorted(targets))
    chosen = ver.at(target_fpr)
    assert chosen is not None  # target_fpr is among the targets
    summary: dict[str, Any] = {
        "name": dataset.name,
        "root": str(root),
        "query": len(query),
        "gallery": len(gallery),
        "query_ids": len({s.pid for s in query if dataset.is_identity(s.pid)}),
        "gallery_ids": len({s.pid for s in gallery if dataset.is_identity(s.pid)}),
        "distractors": sum(1 for s in gallery if distractor is not None and s.pid == distractor),
        "cameras": sorted({s.camid for s in (*query, *gallery)}),
        "verify": verify,
    }
    if verify == "tracklets":
        summary["tracklets"] = int(g_pids.size)
    n = len(query) + len(gallery)
    return ReidReport(
        metrics=metrics,
        verification=ver,
        threshold=chosen.threshold,
        target_fpr=float(target_fpr),
        threshold_fpr=chosen.fpr,
        threshold_tpr=chosen.tpr,
        dataset=summary,
        model=_model_summary(embedder),
        embedding={
            "images": n,
            "seconds": seconds,
            "crops_per_s": n / seconds if seconds else None,
        },
    )


# ---------------------------------------------------------------------------
# Figures and report
# ---------------------------------------------------------------------------


def plot_cmc(path: str | PathLike[str], *, metrics: ReidMetrics, title: str = "") -> Path:
    """Draws the CMC curve (rank 1 to ``max_rank``), ranks 1, 5, 10 marked."""
    from cv.evaluation.plots import _pyplot, _save

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    ranks = np.arange(1, len(metrics.cmc) + 1)
    ax.plot(ranks, metrics.cmc, lw=2, marker="." if len(ranks) <= 60 else None)
    for k in (1, 5, 10):
        if k <= len(ranks):
            v = metrics.rank(k)
            ax.plot([k], [v], "o", color="crimson")
            ax.annotate(
                f"rank-{k} {v:.3f}", (k, v), textcoords="offset points", xytext=(6, 6), fontsize=8
            )
    lo = float(min(metrics.cmc.min(), 0.9))
    ax.set(xlim=(0.5, max(2, len(ranks)) + 0.5), ylim=(max(-0.02, lo - 0.05), 1.02))
    ax.set_xlabel("rank")
    ax.set_ylabel(f"CMC (share of {metrics.num_valid_queries} queries)")
    ax.set_title(
        title
        or f"CMC: rank-1 {metrics.rank(1):.3f}, mAP {metrics.mAP:.3f}, mINP {metrics.mINP:.3f}"
    )
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_similarity(
    path: str | PathLike[str], *, verification: Verification, threshold: float | None = None
) -> Path:
    """Draws the positive / negative similarity histograms and the ROC curve (log FPR)."""
    from cv.evaluation.plots import _pyplot, _save

    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    v = verification
    centres = (v.hist_edges[:-1] + v.hist_edges[1:]) / 2
    width = float(v.hist_edges[1] - v.hist_edges[0]) if v.hist_edges.size > 1 else 0.02
    for counts, n, label, colour in (
        (v.hist_neg, v.n_neg, f"different people ({v.n_neg} pairs)", "tab:blue"),
        (v.hist_pos, v.n_pos, f"same person, other camera ({v.n_pos} pairs)", "tab:orange"),
    ):
        if n:
            left.bar(
                centres, counts / n / width, width=width, alpha=0.55, color=colour, label=label
            )
    if threshold is not None:
        left.axvline(
            threshold, color="crimson", lw=1.2, ls="--", label=f"match threshold {threshold:.4f}"
        )
    left.set(xlabel="cosine similarity", ylabel="density", xlim=(-1, 1))
    left.set_title("Similarity of query-gallery pairs")
    left.legend(fontsize=8, loc="upper left")
    left.grid(alpha=0.3)

    # A log axis cannot show FPR 0: such points sit at the left edge, below every
    # target and below the resolution 1 / n_neg.
    targets = [p.fpr_target for p in v.points if p.fpr_target > 0]
    lo = min([0.5 / max(v.n_neg, 1), *targets]) / 2
    right.step(np.maximum(v.roc_fpr, lo), v.roc_tpr, where="post", lw=1.8)
    for i, p in enumerate(v.points):
        right.axvline(p.fpr_target, color="grey", lw=0.8, ls=":")
        if not p.resolved:
            continue  # its threshold is above every negative: the FPR-0 point
        right.plot([max(p.fpr, lo)], [p.tpr], "o", color="crimson")
        right.annotate(
            f"{p.tpr:.3f} @ {p.fpr_target:g}",
            (max(p.fpr, lo), p.tpr),
            textcoords="offset points",
            xytext=(4, -12 if i % 2 else 6),
            fontsize=8,
        )
    unresolved = [f"{p.fpr_target:g}" for p in v.points if not p.resolved]
    if unresolved:
        right.text(
            0.02,
            0.97,
            f"not resolved with {v.n_neg} negatives: FPR {', '.join(unresolved)}",
            transform=right.transAxes,
            ha="left",
            va="top",
            fontsize=8,
            color="grey",
        )
    right.set_xscale("log")
    right.set(
        xlim=(lo, 1.0),
        ylim=(0, 1.02),
        xlabel="false-positive rate (log; FPR 0 at the left edge)",
        ylabel="true-positive rate",
    )
    auc = "n/a" if math.isnan(v.auc) else f"{v.auc:.4f}"
    right.set_title(f"ROC (AUC {auc})")
    right.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return _save(fig, path)


def _markdown(report: ReidReport) -> str:
    from cv.evaluation.report import _num, _table

    m, v, d = report.metrics, report.verification, report.dataset
    model = report.model
    title_model = model.get("name") or model.get("architecture") or "re-ID embedder"
    out = [
        f"# Re-identification evaluation of {title_model} on {d.get('name') or d.get('root')}",
        "",
        f"{d.get('query')} query and {d.get('gallery')} gallery images "
        f"({d.get('query_ids')} query identities, {d.get('gallery_ids')} gallery identities, "
        f"{d.get('distractors')} distractors, cameras {d.get('cameras')}). "
        "Market-1501 protocol: junk (pid -1) dropped, distractors (pid 0) kept in the "
        "gallery, same pid on the same camera removed per query; distance = 1 - cosine.",
        "",
        "## Ranking",
        "",
    ]
    out += _table(
        ["rank-1", "rank-5", "rank-10", "rank-20", "mAP", "mINP", "queries evaluated"],
        [
            [
                *(_num(m.rank(k)) for k in CMC_RANKS),
                _num(m.mAP),
                _num(m.mINP),
                f"{m.num_valid_queries} of {m.num_queries}",
            ]
        ],
    )
    if m.num_skipped_queries or m.num_unlabelled_queries:
        out += [
            f"Not evaluated: {m.num_skipped_queries} queries with no true match on another "
            f"camera, {m.num_unlabelled_queries} junk or distractor queries.",
            "",
        ]
    out += [f"![CMC curve]({CMC_FILE})", ""]
    out += ["## Verification and the match threshold", ""]
    out += [
        f"{v.n_pos} positive pairs (same person, different camera), {v.n_neg} negative pairs "
        f"(different people, distractors included). A pair matches when its cosine similarity "
        f"is ≥ the threshold. ROC AUC {_num(None if math.isnan(v.auc) else v.auc, 4)}.",
        "",
    ]
    if report.dataset.get("verify") == "tracklets":
        out += [
            f"Pairs are query images against {report.dataset.get('tracklets')} gallery "
            "tracklets: a person's gallery images on one camera averaged into one vector, "
            "as the watch-list matcher averages a track's crops (distractors one by one).",
            "",
        ]
    out += _table(
        ["FPR target", "threshold", "FPR", "TPR", "resolved"],
        [
            [
                f"{p.fpr_target:g}",
                _num(p.threshold, 4),
                f"{p.fpr:.2e}",
                _num(p.tpr),
                "yes" if p.resolved else f"**no** (fewer than {1 / p.fpr_target:g} negatives)",
            ]
            for p in v.points
        ],
    )
    out += [
        f"**Watch-list match threshold: {report.threshold:.4f}** (cosine similarity), chosen at "
        f"FPR {report.target_fpr:g}: FPR {report.threshold_fpr:.2e}, TPR "
        f"{_num(report.threshold_tpr)} on these pairs. Choose it on data from the site's own "
        "cameras where possible; store it with `--save-threshold`.",
        "",
        f"![similarity distributions and ROC]({SIMILARITY_FILE})",
        "",
    ]
    facts = {k: val for k, val in model.items() if isinstance(val, str | int | float)}
    if facts:
        out += ["## Model", "", ", ".join(f"{k} = {val}" for k, val in facts.items()), ""]
    e = report.embedding
    if e.get("crops_per_s"):
        out += [
            f"Embedded {e['images']} images in {e['seconds']:.2f} s ({e['crops_per_s']:.1f} crops/s, reading included).",
            "",
        ]
    return "\n".join(out)


def write_reid_report(out_dir: str | PathLike[str], report: ReidReport) -> Path:
    """Writes ``metrics.json``, ``cmc.png``, ``similarity.png`` and ``report.md``.

    Returns:
        The path of ``report.md``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"created": datetime.now(UTC).isoformat(timespec="seconds"), **report.to_dict()}
    (out / METRICS_FILE).write_text(json.dumps(doc, indent=1) + "\n")
    plot_cmc(out / CMC_FILE, metrics=report.metrics)
    plot_similarity(
        out / SIMILARITY_FILE, verification=report.verification, threshold=report.threshold
    )
    path = out / REPORT_FILE
    path.write_text(_markdown(report) + "\n")
    return path
