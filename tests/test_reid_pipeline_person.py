"""The person detector: its recipe, its trainer's guard, and the shipped model directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from cv.cli import main
from cv.errors import ConfigError
from cv.models.cctv import default_detector_dir
from cv.training.config import XrayTrainConfig
from cv.training.person import (
    PersonSynthSpec,
    PersonTrainConfig,
    RequirePersonClass,
    load_person_config,
    person_config,
)
from cv.training.xray import RunInfo

RECIPE = Path(__file__).parents[1] / "training" / "configs" / "person-yolo11n-synth.yaml"


def test_shipped_recipe_is_valid_and_keeps_people_upright() -> None:
    cfg = load_person_config(RECIPE)
    assert isinstance(cfg, PersonTrainConfig) and isinstance(cfg, XrayTrainConfig)
    assert isinstance(cfg.synth, PersonSynthSpec) and cfg.imgsz == 320
    assert cfg.augment.flip_p == 0 and cfg.augment.rot90_p == 0 and cfg.augment.tip_p == 0
    assert cfg.synth_cache == Path("data/cache/person")


def test_person_defaults_and_spec_keys() -> None:
    cfg = person_config({"synth": {"images": 10}})
    assert (cfg.imgsz, cfg.name, cfg.augment.flip_p) == (320, "person", 0.0)
    a, b = PersonSynthSpec(images=10), PersonSynthSpec(images=11)
    assert a.key() != b.key() and a.key() == PersonSynthSpec(images=10).key()
    with pytest.raises(ConfigError, match="unknown field"):
        person_config({"synth": {"images": 10, "profiles": ["teal"]}})


def test_a_dataset_without_person_is_refused(tmp_path: Path) -> None:
    cfg = person_config({"synth": {"images": 4}})
    run = RunInfo(
        run_dir=tmp_path,
        config=cfg,
        classes=("gun", "knife"),
        data_yaml=tmp_path / "data.yaml",
        dataset="x",
        device="cpu",
        command=None,
    )
    with pytest.raises(ConfigError, match="no 'person' class"):
        RequirePersonClass().on_train_start(run)
    RequirePersonClass().on_train_start(
        RunInfo(tmp_path, cfg, ("person",), tmp_path / "d.yaml", "x", "cpu", None)
    )


def test_cli_train_person_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["train", "person", "--data", str(tmp_path), "--synth-images", "3"])
    assert code == 2 and "not both" in capsys.readouterr().err
    code = main(["train", "person", "--data", str(tmp_path / "gone"), "--out", str(tmp_path)])
    assert code == 5 and "gone" in capsys.readouterr().err


def test_the_shipped_person_detector_is_a_complete_model_directory() -> None:
    from cv.models.load import load_record

    d = default_detector_dir()
    record = load_record(d)  # verifies every file's sha256
    assert record.classes == ["person"] and record.input_size == 320
    assert {"state_dict", "onnx"} <= set(record.files)
    assert (d / "MODEL_CARD.md").is_file()
    assert record.metrics.get("heldout", {}).get("AP50", 0) > 0.5


def test_a_tiny_person_training_run_gives_a_loadable_detector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cv.models.load import load_detector

    monkeypatch.chdir(tmp_path)  # the synthetic set is cached under ./data/cache
    args = ["train", "person", "--synth-images", "8", "--epochs", "1", "--imgsz", "64"]
    assert main([*args, "--batch", "4", "--workers", "0", "--out", str(tmp_path / "runs")]) == 0
    detector = load_detector(tmp_path / "runs" / "person" / "best", runtime="torch")
    assert detector.record.classes == ["person"]
