"""The predictions file and the weights record: round trips and every error path."""

from __future__ import annotations

import json

import pytest
import torch

from cv.errors import ConfigError, DataFormatError, NotFoundError
from cv.models.weights import (
    WeightsRecord,
    load_state_dict,
    read_record,
    save_state_dict,
    write_record,
)
from cv.predictions import ImagePredictions, Predictions, read_predictions, write_predictions
from cv.records import Detection


def _preds() -> Predictions:
    det = Detection((1.5, 2.0, 30.0, 40.25), "knife", 1, 0.875)
    return Predictions(
        classes=["gun", "knife"],
        images=[ImagePredictions("a.png", 64, 48, [det]), ImagePredictions("b.png", 64, 48)],
        model={"name": "m"},
    )


def test_predictions_round_trip(tmp_path):
    path = write_predictions(_preds(), tmp_path / "p.json")
    back = read_predictions(path)
    assert back.classes == ["gun", "knife"] and back.model == {"name": "m"}
    assert back.by_file()["a.png"].detections == [
        Detection((1.5, 2.0, 30.0, 40.25), "knife", 1, 0.875)
    ]
    assert back.by_file()["b.png"].detections == []


def test_predictions_errors_name_the_json_path(tmp_path):
    with pytest.raises(NotFoundError):
        read_predictions(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  oops")
    with pytest.raises(DataFormatError, match=r"bad\.json:2"):
        read_predictions(bad)
    doc = json.loads(write_predictions(_preds(), tmp_path / "p.json").read_text())
    doc["images"][0]["detections"][0]["class_id"] = 7
    bad.write_text(json.dumps(doc))
    with pytest.raises(DataFormatError, match=r"images\[0\]\.detections\[0\]\.class_id"):
        read_predictions(bad)
    del doc["images"][0]["detections"][0]["box"]
    bad.write_text(json.dumps(doc))
    with pytest.raises(DataFormatError, match=r"detections\[0\]\.box: missing key"):
        read_predictions(bad)


def test_weights_record_round_trip_and_corruption(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    save_state_dict(net, tmp_path / "model.safetensors")
    rec = WeightsRecord(
        name="t", architecture="tiny", classes=["gun"], input_size=64,
        files={"state_dict": "model.safetensors"},
    )  # fmt: skip
    write_record(rec, tmp_path)
    back = read_record(tmp_path)
    assert (
        back.classes == ["gun"]
        and back.sha256["model.safetensors"] == rec.sha256["model.safetensors"]
    )
    fresh = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    load_state_dict(fresh, tmp_path / "model.safetensors")
    assert torch.equal(fresh[0].weight, net[0].weight)

    wrong = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3))
    with pytest.raises(DataFormatError, match="do not fit"):
        load_state_dict(wrong, tmp_path / "model.safetensors")

    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[:-10])
    with pytest.raises(DataFormatError, match="sha256"):
        read_record(tmp_path)
    with pytest.raises(DataFormatError, match="safetensors"):
        load_state_dict(fresh, tmp_path / "model.safetensors")


def test_weights_record_validation_names_the_field(tmp_path):
    (tmp_path / "model.json").write_text(
        json.dumps({"name": "x", "architecture": "y", "classes": [], "input_size": -1})
    )
    with pytest.raises(ConfigError, match="input_size"):
        read_record(tmp_path)
    with pytest.raises(NotFoundError, match=r"model\.json"):
        read_record(tmp_path / "nowhere")
