"""Resuming an X-ray training run: a finished run is refused by name, an extended
one records the whole run's training time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from train_helpers import tiny_xray_config

from cv.cli import main
from cv.errors import ConfigError
from cv.training.config import XrayTrainConfig, load_config
from cv.training.xray import TrainResult, train_xray


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[XrayTrainConfig, TrainResult]:
    """A tiny run that has trained its one epoch."""
    root = tmp_path_factory.mktemp("resume")
    cfg = tiny_xray_config(root, model="yolo11n", imgsz=64, name="done")
    return cfg, train_xray(cfg)


def _record(model_dir: Path) -> dict:
    return json.loads((model_dir / "model.json").read_text())


@pytest.mark.slow
def test_resuming_a_finished_run_is_a_config_error(
    finished_run: tuple[XrayTrainConfig, TrainResult], capsys: pytest.CaptureFixture
) -> None:
    cfg, result = finished_run
    same = load_config(result.run_dir / "config.yaml")
    with pytest.raises(ConfigError, match=r"run done finished after 1 epochs; pass --epochs > 1"):
        train_xray(same, resume=True)
    with pytest.raises(ConfigError) as e:
        train_xray(same.model_copy(update={"epochs": 1}), resume=True)
    assert e.value.path == str(result.run_dir) and e.value.field == "epochs"

    code = main(["train", "xray", "--resume", "--name", "done", "--out", str(cfg.out)])
    err = capsys.readouterr().err
    assert code == ConfigError.exit_code, err
    assert "finished after 1 epochs" in err and "--epochs > 1" in err
    assert str(result.run_dir) in err
    # Handled: the error is the last thing said (a logging handler of an earlier test
    # may print its own "Logging error" traceback before it under xdist).
    assert err.strip().splitlines()[-1].startswith("error:")
    # Refused before anything was written: the run still ends at epoch 1.
    assert _record(result.last_dir)["training"]["epochs_done"] == 1


@pytest.mark.slow
def test_a_checkpoint_newer_than_the_record_is_refused_too(
    finished_run: tuple[XrayTrainConfig, TrainResult],
) -> None:
    """The process stopped after ultralytics saved the epoch and before our record:
    the trainer's own check names the run instead of ultralytics' assertion."""
    cfg, result = finished_run
    copy = cfg.out / "stopped"
    shutil.copytree(result.run_dir, copy)
    record = _record(copy / "last")
    record["training"]["epochs_done"] = 0
    (copy / "last" / "model.json").write_text(json.dumps(record))
    stopped = load_config(copy / "config.yaml").model_copy(update={"name": "stopped"})
    with pytest.raises(ConfigError, match="run stopped finished after 1 epochs"):
        train_xray(stopped, resume=True)


@pytest.mark.slow
def test_extending_a_run_records_the_total_training_time(
    finished_run: tuple[XrayTrainConfig, TrainResult],
) -> None:
    _, result = finished_run
    # A known time for the first session, so that the sum is unmistakable.
    record = _record(result.last_dir)
    record["training"]["time_s"] = 1000.0
    (result.last_dir / "model.json").write_text(json.dumps(record))

    more = load_config(result.run_dir / "config.yaml", overrides={"epochs": 2})
    again = train_xray(more, resume=True)
    assert [r["epoch"] for r in again.history] == [1.0, 2.0]
    training = _record(again.last_dir)["training"]
    assert training["epochs_done"] == 2
    # 1000 s before, plus this session's training (no more than the call's wall time).
    assert 1000.0 < training["time_s"] <= 1000.0 + again.seconds + 0.1
