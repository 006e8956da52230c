"""`eval xray --model ... --save-thresholds --save-metrics` writes into model.json."""

from __future__ import annotations

import json

import pytest

from cv.cli import main
from cv.datasets.synth import generate
from cv.models.weights import read_record


@pytest.mark.slow
def test_thresholds_and_figures_land_in_the_model_record(tmp_path, capsys):
    from cv.models.export import export_onnx
    from cv.models.load import init_model_dir

    model_dir = tmp_path / "model"
    init_model_dir(model_dir, architecture="yolo11n", classes=["gun", "knife"], input_size=64)
    export_onnx(model_dir)
    data = tmp_path / "data"
    generate(
        data, n_images=8, size=(96, 96), classes=["gun", "knife"], clean_fraction=0.25,
        splits=(0.0, 0.0, 1.0), seed=5, workers=1,
    )  # fmt: skip
    out = tmp_path / "report"
    args = ["eval", "xray", "--data", str(data), "--model", str(model_dir), "--out", str(out)]
    code = main([*args, "--save-thresholds", "--save-metrics", "heldout"])
    assert code == 0, capsys.readouterr().err
    record = read_record(model_dir)  # hashes still verify after the rewrite
    report = json.loads((out / "metrics.json").read_text())
    assert record.thresholds == report["thresholds"]["thresholds"]
    # The set has clean bags, so the default is the server's way: 5 % of clean bags.
    assert record.metrics["operating_point"] == "bag-far=0.05"
    assert record.metrics["operating_point_bag"]["clean_bags"] == 2
    saved = record.metrics["heldout"]
    assert saved["AP50"] == report["coco"]["summary"]["AP50"]
    assert saved["images"] == 8

    # Run again, the model's own thresholds (those just saved) are measured as they are:
    # on the data they were chosen on, they give the operating point they were chosen at.
    capsys.readouterr()
    code = main([*args, "--save-metrics", "again"])
    assert code == 0, capsys.readouterr().err
    at = read_record(model_dir).metrics["again"]["at_model_thresholds"]
    bag = record.metrics["operating_point_bag"]
    assert (at["clean_bags"], at["threat_bags"]) == (bag["clean_bags"], bag["threat_bags"])
    assert (at["far"], at["detection_rate"]) == (bag["far"], bag["detection_rate"])
    assert json.loads((out / "metrics.json").read_text())["at_model_thresholds"] == at
    assert "At the thresholds the model already carried" in (out / "report.md").read_text()

    # Per class, asked for: no bag figures are kept.
    code = main([*args, "--save-thresholds", "--operating-point", "far=0.05"])
    assert code == 0, capsys.readouterr().err
    record = read_record(model_dir)
    assert record.metrics["operating_point"] == "far=0.05"
    assert "operating_point_bag" not in record.metrics

    # Per bag: the thresholds together hold the clean bags' false alarms to the target.
    code = main([*args, "--save-thresholds", "--operating-point", "bag-far=0.5"])
    assert code == 0, capsys.readouterr().err
    record = read_record(model_dir)
    report = json.loads((out / "metrics.json").read_text())
    assert record.metrics["operating_point"] == "bag-far=0.5"
    assert record.thresholds == report["thresholds"]["thresholds"]
    bag = record.metrics["operating_point_bag"]
    assert bag == report["thresholds"]["bag"] and bag["far"] <= 0.5
    assert bag["clean_bags"] + bag["threat_bags"] == 8
    assert "clean bags" in (out / "report.md").read_text()

    # A site's policy: guns get three times the others' share of the budget.
    code = main(
        [*args, "--save-thresholds", "--operating-point", "bag-far=0.5", "--class-weights", "gun=3"]
    )
    assert code == 0, capsys.readouterr().err
    bag = read_record(model_dir).metrics["operating_point_bag"]
    assert bag["weights"] == {"gun": 3.0} and bag["far"] <= 0.5
    assert "weights: gun 3; the others 1" in (out / "report.md").read_text()
    for bad in ("gun", "gun=3,gun=2", "pistol=2"):
        assert main([*args, "--operating-point", "bag-far=0.5", "--class-weights", bad]) == 2
        assert "--class-weights" in capsys.readouterr().err or bad == "pistol=2"

    # Without --model there is nothing to write into.
    preds = out / "predictions.json"
    code = main(
        ["eval", "xray", "--data", str(data), "--predictions", str(preds), "--save-thresholds"]
    )
    assert code == 2
    assert "--model" in capsys.readouterr().err
