"""`eval reid` end to end: a real (untrained) OSNet over a synthetic Market-1501 set,
the report files, the threshold and figures saved into model.json, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cv.cli import main
from cv.datasets.reid import read_reid
from cv.evaluation.reid import (
    evaluate_embedder,
    evaluate_rank,
    threshold_at_fpr,
    tracklet_means,
    verification_pairs,
)
from cv.models.reid import init_embedder_dir, load_embedder
from cv.models.weights import read_record


@pytest.fixture(scope="module")
def reid_set(tmp_path_factory):
    """A tiny synthetic set (query, gallery, distractors, junk) and an untrained embedder."""
    from cv.datasets.cctv import generate_reid_dataset

    root = tmp_path_factory.mktemp("reid")
    data = generate_reid_dataset(
        root / "data",
        identities=10,
        train_identities=4,
        cameras=4,
        train_cameras=2,
        images_per_camera=2,
        size=(64, 32),
        distractors=3,
        junk=2,
        seed=0,
        progress=False,
    )
    model = init_embedder_dir(
        root / "model", architecture="osnet_x0_25", num_ids=4, input_hw=(64, 32), seed=0
    )
    return data, model


def test_evaluate_embedder_matches_the_protocol_on_its_embeddings(reid_set):
    data, model = reid_set
    dataset = read_reid(data)
    assert any(s.pid == -1 for s in dataset.gallery) and any(s.pid == 0 for s in dataset.gallery)
    embedder = load_embedder(model, runtime="torch", device="cpu")
    report = evaluate_embedder(embedder, dataset, batch=8, progress=False)

    # Recompute from the embeddings directly: the report is the protocol on them.
    from cv.image import read_image

    query = [s for s in dataset.query if s.pid != -1]
    gallery = [s for s in dataset.gallery if s.pid != -1]
    q = embedder.embed([read_image(s.path) for s in query])
    g = embedder.embed([read_image(s.path) for s in gallery])
    ids = (
        [s.pid for s in query],
        [s.pid for s in gallery],
        [s.camid for s in query],
        [s.camid for s in gallery],
    )
    m = evaluate_rank(1.0 - q @ g.T, *ids)
    assert report.metrics.mAP == pytest.approx(m.mAP, abs=1e-6)
    np.testing.assert_allclose(report.metrics.cmc, m.cmc)
    assert report.metrics.num_junk_gallery == sum(1 for s in dataset.gallery if s.pid == -1)
    pos, neg = verification_pairs(q @ g.T, *ids)
    assert report.verification.n_pos == len(pos) and report.verification.n_neg == len(neg)
    assert report.threshold == pytest.approx(threshold_at_fpr(neg, 1e-3), abs=1e-6)
    assert report.threshold_fpr <= 1e-3
    assert report.dataset["distractors"] == 3
    assert report.model["architecture"] == "osnet_x0_25" and report.model["dim"] == embedder.dim
    figures = report.figures()
    assert set(figures) >= {"rank1", "mAP", "mINP", "TPR@FPR0.001", "match_threshold"}

    # Tracklets: the same ranking, verification against per-(person, camera) means.
    tr = evaluate_embedder(embedder, dataset, batch=8, verify="tracklets", progress=False)
    np.testing.assert_allclose(tr.metrics.cmc, report.metrics.cmc)
    t, t_pids, t_cams = tracklet_means(g, ids[1], ids[3])
    pos, neg = verification_pairs(q @ t.T, ids[0], t_pids, ids[2], t_cams)
    assert tr.verification.n_pos == len(pos) and tr.verification.n_neg == len(neg)
    assert tr.threshold == pytest.approx(threshold_at_fpr(neg, 1e-3), abs=1e-6)
    assert tr.dataset["verify"] == "tracklets" and tr.dataset["tracklets"] == len(t_pids)


def test_eval_reid_cli_writes_the_report_and_saves_into_the_model(reid_set, tmp_path, capsys):
    data, model = reid_set
    out = tmp_path / "report"
    args = ["eval", "reid", "--model", str(model), "--data", str(data), "--out", str(out)]
    code = main(
        [
            *args,
            "--runtime",
            "torch",
            "--fpr",
            "0.01",
            "--save-threshold",
            "--save-metrics",
            "synth",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "rank-1" in captured.out and "match threshold" in captured.out
    for name in ("metrics.json", "cmc.png", "similarity.png", "report.md"):
        assert (out / name).is_file(), name
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["threshold"]["target_fpr"] == 0.01
    assert doc["ranking"]["num_valid_queries"] > 0 and len(doc["ranking"]["cmc"]) > 0
    record = read_record(model)  # the hashes still verify after the rewrite
    assert record.thresholds == {"match": doc["threshold"]["match"]}
    assert record.metrics["operating_point"] == "fpr=0.01"
    assert record.metrics["synth"]["mAP"] == doc["ranking"]["mAP"]
    assert "Watch-list match threshold" in (out / "report.md").read_text()

    # The alias under `reid`.
    code = main(["reid", "eval", "--model", str(model), "--data", str(data), "--out", str(out)])
    assert code == 5  # --runtime onnx by default, and this model has no ONNX graph
    assert "reid export" in capsys.readouterr().err


def test_eval_reid_bad_input(reid_set, tmp_path, capsys):
    data, model = reid_set
    # A dataset folder that does not exist.
    code = main(["eval", "reid", "--model", str(model), "--data", str(tmp_path / "nope")])
    assert code == 5
    assert "does not exist" in capsys.readouterr().err

    # A model that is not a re-ID embedder (an X-ray detector's record).
    from cv.models.load import init_model_dir

    detector = tmp_path / "detector"
    init_model_dir(detector, architecture="yolo11n", classes=["gun"], input_size=64)
    code = main(["eval", "reid", "--model", str(detector), "--data", str(data)])
    assert code == 4
    assert "not a re-ID embedder" in capsys.readouterr().err

    # An empty query set.
    empty = tmp_path / "empty"
    for folder in ("bounding_box_train", "bounding_box_test", "query"):
        (empty / folder).mkdir(parents=True)
    for f in (data / "bounding_box_test").iterdir():
        (empty / "bounding_box_test" / f.name).write_bytes(f.read_bytes())
    code = main(["eval", "reid", "--model", str(model), "--data", str(empty), "--runtime", "torch"])
    assert code == 4
    assert "query set is empty" in capsys.readouterr().err

    # --save-metrics into a model is fine without --save-threshold, a bad runtime is not.
    code = main(["eval", "reid", "--model", str(model), "--data", str(data), "--runtime", "tf"])
    assert code == 2
    assert "--runtime" in capsys.readouterr().err
    # An unknown verification mode is named before the model loads.
    code = main(["eval", "reid", "--model", str(model), "--data", str(data), "--verify", "tracks"])
    assert code == 2
    assert "--verify must be images or tracklets" in capsys.readouterr().err
