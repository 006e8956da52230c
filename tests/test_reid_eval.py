"""The re-ID protocol (CMC, mAP, mINP) and verification, on cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from cv.errors import DataValidationError
from cv.evaluation import reid
from cv.evaluation.reid import evaluate_rank, threshold_at_fpr, verification, verification_pairs

# The gallery of the hand-worked cases: (pid, camera).
#   g0 pid 1 cam 2      g1 pid 2 cam 2      g2 pid 1 cam 3      g3 pid 3 cam 2
#   g4 pid 1 cam 1      g5 pid 0 cam 2 (distractor)             g6 pid -1 cam 2 (junk)
G_PIDS = [1, 2, 1, 3, 1, 0, -1]
G_CAMS = [2, 2, 3, 2, 1, 2, 2]
#                   g0    g1    g2    g3    g4    g5    g6
DIST = [
    [0.30, 0.10, 0.50, 0.20, 0.05, 0.60, 0.00],  # q0 pid 1 cam 1
    [0.20, 0.15, 0.70, 0.80, 0.60, 0.10, 0.05],  # q1 pid 2 cam 1
    [0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70],  # q2 pid 3 cam 2
    [0.00, 0.30, 0.01, 0.40, 0.02, 0.50, 0.60],  # q3 pid 1 cam 2
    [0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70],  # q4 pid -1 (junk query)
    [0.10, 0.20, 0.30, 0.40, 0.50, 0.05, 0.70],  # q5 pid 0 (distractor query)
]
Q_PIDS = [1, 2, 3, 1, -1, 0]
Q_CAMS = [1, 1, 2, 2, 1, 1]
# q0: g6 is junk (dropped, although nearest) and g4 is pid 1 on camera 1 (removed).
#     Ranked: g1 .10, g3 .20, g0 .30 (hit), g2 .50 (hit), g5 .60.
#     First hit at rank 3; AP = (1/3 + 2/4) / 2 = 5/12; INP = 2 hits / rank 4 = 1/2.
# q1: ranked: g5 .10 (distractor, kept, no match), g1 .15 (hit), g0, g4, g2, g3.
#     First hit at rank 2; AP = 1/2; INP = 1/2.
# q2: its only pid-3 image g3 is on its own camera: removed, no true match: skipped.
# q3: g0 (pid 1, cam 2) is removed. Ranked: g2 .01 (hit), g4 .02 (hit), ...
#     First hit at rank 1; AP = (1/1 + 2/2) / 2 = 1; INP = 2/2 = 1.
# q4, q5: junk and distractor queries have no identity: not evaluated.
# Evaluated: q0, q1, q3. CMC@1 = 1/3, CMC@2 = 2/3, CMC@3.. = 1;
# mAP = (5/12 + 1/2 + 1) / 3 = 23/36; mINP = (1/2 + 1/2 + 1) / 3 = 2/3.


def _hand() -> reid.ReidMetrics:
    return evaluate_rank(np.array(DIST), Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=50)


def test_hand_worked_cmc_map_minp():
    m = _hand()
    assert m.num_valid_queries == 3
    assert m.num_skipped_queries == 1  # q2
    assert m.num_unlabelled_queries == 2  # q4, q5
    assert m.num_queries == 6
    assert m.num_gallery == 6 and m.num_junk_gallery == 1
    assert len(m.cmc) == 6  # max_rank clipped to the gallery after junk
    assert m.cmc.tolist() == pytest.approx([1 / 3, 2 / 3, 1, 1, 1, 1])
    assert m.rank(1) == pytest.approx(1 / 3)
    assert m.rank(5) == 1.0 and m.rank(100) == 1.0
    assert m.mAP == pytest.approx(23 / 36)
    assert m.mINP == pytest.approx(2 / 3)
    d = m.to_dict()
    assert d["rank1"] == pytest.approx(1 / 3) and d["mAP"] == pytest.approx(23 / 36)
    assert len(d["cmc"]) == 6


def test_single_query_same_camera_removal_and_junk():
    # q0 alone: without the protocol's removals g6 (junk) and g4 (same pid, same
    # camera) would make it a rank-1 hit.
    m = evaluate_rank(np.array(DIST[:1]), Q_PIDS[:1], G_PIDS, Q_CAMS[:1], G_CAMS)
    assert m.cmc[:4].tolist() == [0, 0, 1, 1]
    assert m.mAP == pytest.approx(5 / 12)
    assert m.mINP == pytest.approx(0.5)
    # The same query on camera 9: g4 is now a true match at rank 2 (after junk g6):
    # ranked g4 .05 (hit), g1, g3, g0 (hit), g2 (hit) -> AP = (1/1 + 2/4 + 3/5) / 3.
    m = evaluate_rank(np.array(DIST[:1]), [1], G_PIDS, [9], G_CAMS)
    assert m.rank(1) == 1.0
    assert m.mAP == pytest.approx((1 + 2 / 4 + 3 / 5) / 3)
    assert m.mINP == pytest.approx(3 / 5)


def test_distractors_stay_in_the_gallery():
    # q1: the distractor g5 is ranked first and pushes the hit to rank 2.
    m = evaluate_rank(np.array(DIST[1:2]), [2], G_PIDS, [1], G_CAMS)
    assert m.rank(1) == 0.0 and m.rank(2) == 1.0
    assert m.mAP == pytest.approx(0.5)
    # Without a distractor id (MSMT17 numbers people from 0) pid 0 is a person:
    # q5 (pid 0, cam 1) finds g5 (pid 0, cam 2) first.
    m = evaluate_rank(np.array(DIST[5:6]), [0], G_PIDS, [1], G_CAMS, distractor_pid=None)
    assert m.num_valid_queries == 1 and m.rank(1) == 1.0 and m.mAP == 1.0


def test_perfect_ranking_scores_one():
    rng = np.random.default_rng(0)
    g_pids = np.repeat(np.arange(1, 21), 4)
    g_cams = np.tile([1, 2, 3, 4], 20)
    q_pids = np.arange(1, 21)
    q_cams = np.full(20, 5)
    # Each query's own images first (in random order), then everyone else.
    dist = rng.uniform(1.0, 2.0, size=(20, 80))
    for i, pid in enumerate(q_pids):
        dist[i, g_pids == pid] = rng.uniform(0.0, 0.5, size=4)
    m = evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=10)
    assert m.cmc.tolist() == [1.0] * 10
    assert m.mAP == 1.0 and m.mINP == 1.0


def test_no_query_with_a_true_match_is_an_error():
    with pytest.raises(DataValidationError, match="no query has a true match"):
        evaluate_rank(np.array(DIST[2:3]), [3], G_PIDS, [2], G_CAMS)


def test_bad_inputs_are_named():
    with pytest.raises(DataValidationError, match="q_pids"):
        evaluate_rank(np.zeros((2, 3)), [1], [1, 2, 3], [1, 1], [1, 2, 3])
    with pytest.raises(DataValidationError, match="not finite"):
        evaluate_rank(np.array([[0.1, np.nan]]), [1], [1, 2], [1], [2, 2])
    with pytest.raises(DataValidationError, match="integer"):
        evaluate_rank(np.zeros((1, 2)), [1.5], [1, 2], [1], [2, 2])


def _reference(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """A per-query loop in the shape of torchreid's eval_market1501 (plus mINP)."""
    keep_g = g_pids != -1
    distmat, g_pids, g_camids = distmat[:, keep_g], g_pids[keep_g], g_camids[keep_g]
    cmcs, aps, inps = [], [], []
    for i in range(len(q_pids)):
        if q_pids[i] <= 0:
            continue
        order = np.argsort(distmat[i], kind="stable")
        remove = (g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i])
        raw = (g_pids[order] == q_pids[i])[~remove].astype(int)
        if not raw.any():
            continue
        cmc = raw.cumsum()
        inps.append(cmc[np.flatnonzero(raw).max()] / (np.flatnonzero(raw).max() + 1))
        cmc[cmc > 1] = 1
        cmcs.append(cmc[:max_rank])
        prec = raw.cumsum() / np.arange(1, len(raw) + 1)
        aps.append((prec * raw).sum() / raw.sum())
    return np.mean(cmcs, axis=0), np.mean(aps), np.mean(inps), len(cmcs)


@pytest.mark.parametrize("seed", range(4))
def test_vectorised_equals_a_per_query_loop(seed, monkeypatch):
    # Small chunks, so that several query blocks are ranked and joined.
    monkeypatch.setattr(reid, "_CHUNK_ELEMENTS", 100)
    rng = np.random.default_rng(seed)
    ng, nq = 60, 25
    g_pids = rng.integers(-1, 12, size=ng)
    g_cams = rng.integers(1, 4, size=ng)
    q_pids = rng.integers(0, 12, size=nq)
    q_cams = rng.integers(1, 4, size=nq)
    dist = rng.permutation(nq * ng).reshape(nq, ng) / (nq * ng)  # no ties
    cmc, mAP, mINP, n = _reference(dist, q_pids, g_pids, q_cams, g_cams, 20)
    m = evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=20)
    assert m.num_valid_queries == n
    np.testing.assert_allclose(m.cmc, cmc)
    assert m.mAP == pytest.approx(mAP) and m.mINP == pytest.approx(mINP)


# ------------------------------------------------------------------ verification


def test_verification_pairs_follow_the_protocol():
    sims = 1.0 - np.array(DIST)
    pos, neg = verification_pairs(sims, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS)
    # q0 (pid 1 cam 1): positives g0, g2 (g4 same camera: out); negatives g1, g3, g5.
    # q1 (pid 2 cam 1): positive g1; negatives g0, g2, g3, g4, g5.
    # q2 (pid 3 cam 2): g3 same camera: out; negatives g0, g1, g2, g4, g5.
    # q3 (pid 1 cam 2): positives g2, g4 (g0 same camera: out); negatives g1, g3, g5.
    # q4, q5: no identity; g6 (junk) never counts.
    assert len(pos) == 5 and len(neg) == 16
    assert sorted(pos.tolist()) == pytest.approx([0.5, 0.7, 0.85, 0.98, 0.99])


# Negatives, by hand: 10 of them. Positives: 4.
POS = [0.9, 0.8, 0.7, 0.4]
NEG = [0.85, 0.6, 0.5, 0.3, 0.2, 0.1, 0.0, -0.1, -0.2, -0.3]


def _next32(v: float) -> float:
    return float(np.nextafter(np.float32(v), np.float32(1.0)))


def test_threshold_at_fpr_by_hand():
    # FPR 0.1 allows 1 of 10 negatives: 0.85 may match, 0.6 may not -> threshold 0.85.
    assert threshold_at_fpr(NEG, 0.1) == 0.85
    # FPR 0.2 allows 2: 0.85 and 0.6 match, 0.5 may not -> 0.6.
    assert threshold_at_fpr(NEG, 0.2) == 0.6
    # FPR 0.05 allows none: just above the highest negative.
    t = threshold_at_fpr(NEG, 0.05)
    assert t == _next32(0.85) and t > 0.85
    assert np.float32(0.85) < np.float32(t)  # also above it where compared in float32
    # FPR 1: everything may match: the lowest negative.
    assert threshold_at_fpr(NEG, 1.0) == -0.3
    # Ties: 2 of 4 allowed, but three share 0.5 -> none of them may match.
    assert threshold_at_fpr([0.5, 0.5, 0.5, 0.1], 0.5) == _next32(0.5)
    assert threshold_at_fpr([0.5, 0.5, 0.5, 0.1], 0.75) == 0.5


def test_verification_by_hand():
    v = verification(POS, NEG, fprs=(0.05, 0.1, 0.2))
    p05, p10, p20 = v.points
    assert (p10.threshold, p10.fpr, p10.tpr) == (0.85, 0.1, 0.25)  # only 0.9 matches
    assert (p20.threshold, p20.fpr, p20.tpr) == (0.6, 0.2, 0.75)  # 0.9, 0.8, 0.7
    assert p05.fpr == 0.0 and p05.tpr == 0.25
    assert p10.resolved and p20.resolved and not p05.resolved  # 0.05 * 10 < 1
    # AUC: 0.9 beats 10 negatives, 0.8 and 0.7 beat 9, 0.4 beats 7: 35 / 40.
    assert v.auc == pytest.approx(35 / 40)
    assert (v.n_pos, v.n_neg) == (4, 10)
    assert v.hist_pos.sum() == 4 and v.hist_neg.sum() == 10
    assert v.at(0.1) is p10 and v.at(0.3) is None
    d = v.to_dict()
    assert d["TPR@FPR0.1"] == 0.25 and d["points"][2]["threshold"] == 0.6


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("fpr", [1e-5, 1e-4, 1e-3, 1e-2, 0.1])
def test_threshold_reaches_its_fpr_on_the_data_it_was_chosen_on(fpr, dtype):
    rng = np.random.default_rng(1)
    # Rounded: many ties. In float32 (as embeddings give them) comparisons with the
    # threshold happen in float32.
    neg = np.round(rng.normal(0.1, 0.15, size=50_000), 3).astype(dtype)
    pos = rng.normal(0.7, 0.1, size=2_000).astype(dtype)
    t = threshold_at_fpr(neg, fpr)
    reached = np.mean(neg >= t)
    assert reached <= fpr
    # And it is the lowest such threshold: the next lower similarity exceeds the rate.
    below = neg[neg < t]
    assert below.size == 0 or np.mean(neg >= below.max()) > fpr
    p = verification(pos, neg, fprs=(fpr,)).points[0]
    assert p.threshold == t and p.fpr == reached and p.resolved == (fpr * neg.size >= 1)
    assert p.tpr == pytest.approx(np.mean(pos >= t))


def test_threshold_needs_negatives():
    with pytest.raises(DataValidationError, match="negative"):
        threshold_at_fpr([], 1e-3)
    with pytest.raises(DataValidationError, match="rate"):
        threshold_at_fpr(NEG, 2.0)
    with pytest.raises(DataValidationError, match="finite"):
        verification(POS, [0.1, float("nan")])


def test_tracklet_means_pool_a_person_per_camera_and_keep_distractors_single():
    e = np.array([[1, 0], [0, 1], [1, 0], [0.6, 0.8], [1, 0], [0, 1], [0, 1]], dtype=np.float32)
    pids = [1, 1, 2, 1, 0, 0, -1]
    cams = [1, 1, 1, 2, 1, 1, 1]
    vecs, t_pids, t_cams = reid.tracklet_means(e, pids, cams)
    # (1, cam 1) pools rows 0 and 1; (2, 1); (1, 2); then the two distractors and junk alone.
    assert t_pids.tolist() == [1, 2, 1, 0, 0, -1]
    assert t_cams.tolist() == [1, 1, 2, 1, 1, 1]
    np.testing.assert_allclose(vecs[0], [2**-0.5, 2**-0.5], atol=1e-6)
    np.testing.assert_allclose(vecs[2], [0.6, 0.8], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-6)
    # MSMT17: pid 0 is a person, so its images on one camera pool too.
    _, t_pids, _ = reid.tracklet_means(e, pids, cams, distractor_pid=None)
    assert t_pids.tolist() == [1, 2, 1, 0, -1]
