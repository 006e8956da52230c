"""X-ray detector training: config errors, a tiny real run that loads and predicts,
resume, the CLI's error paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from train_helpers import tiny_xray_config

from cv.cli import main
from cv.errors import ConfigError, DataFormatError, NotFoundError
from cv.training.config import XrayTrainConfig, load_config
from cv.training.xray import (
    METRIC_COLUMNS,
    TrainResult,
    cpu_bf16_supported,
    git_commit,
    read_metrics,
    train_xray,
)

# ----------------------------------------------------------------------------- config


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_field_names_file_line_and_field(tmp_path: Path) -> None:
    f = _write(tmp_path / "e.yaml", "model: yolo11n\nsynth:\n  images: 10\n  colour: red\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert e.value.path == str(f) and e.value.line == 4 and e.value.field == "synth.colour"
    assert "unknown field" in str(e.value)


def test_bad_type_names_file_line_and_field(tmp_path: Path) -> None:
    f = _write(tmp_path / "e.yaml", "synth: {images: 10}\n\nepochs: many\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert (e.value.line, e.value.field) == (3, "epochs")
    assert "many" in str(e.value) and str(f) in str(e.value)


def test_data_and_synth_are_exclusive_and_one_is_needed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one of 'data'"):
        load_config(_write(tmp_path / "a.yaml", "epochs: 3\n"))
    with pytest.raises(ConfigError, match="exactly one of 'data'"):
        load_config(_write(tmp_path / "b.yaml", "data: x\nsynth: {images: 3}\n"))


def test_overrides_replace_the_file_and_the_source(tmp_path: Path) -> None:
    f = _write(tmp_path / "c.yaml", "synth: {images: 10, seed: 3}\nepochs: 5\n")
    cfg = load_config(f, overrides={"epochs": 2, "augment.tip_p": 0.5, "synth.images": 4})
    assert (cfg.epochs, cfg.augment.tip_p, cfg.synth.images, cfg.synth.seed) == (2, 0.5, 4, 3)
    cfg = load_config(f, overrides={"data": tmp_path})
    assert cfg.synth is None and cfg.data == tmp_path


def test_cache_is_one_of_three(tmp_path: Path) -> None:
    assert (
        load_config(_write(tmp_path / "r.yaml", "synth: {images: 4}\ncache: ram\n")).cache == "ram"
    )
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path / "c.yaml", "synth: {images: 4}\ncache: gpu\n"))
    assert (e.value.line, e.value.field) == (2, "cache")


def test_missing_config_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_config(tmp_path / "none.yaml")
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path / "bad.yaml", "epochs: 3\nsynth: [1\n"))
    assert e.value.line is not None


def test_shipped_recipe_is_valid() -> None:
    recipe = Path(__file__).parents[1] / "training" / "configs" / "xray-yolo11n-synth.yaml"
    cfg = load_config(recipe)
    assert cfg.model == "yolo11n" and cfg.synth is not None
    assert "teal" not in cfg.synth.profiles and len(cfg.synth.profiles) == 4


def test_synth_key_ignores_workers() -> None:
    a = XrayTrainConfig(synth={"images": 5, "workers": 1}).synth
    b = XrayTrainConfig(synth={"images": 5, "workers": 2}).synth
    c = XrayTrainConfig(synth={"images": 6}).synth
    assert a.key() == b.key() != c.key()


def test_missing_dataset_and_unknown_model(tmp_path: Path) -> None:
    cfg = XrayTrainConfig(data=tmp_path / "nowhere", out=tmp_path, name="r")
    with pytest.raises(NotFoundError) as e:
        train_xray(cfg)
    assert "nowhere" in str(e.value)
    cfg = XrayTrainConfig(data=tmp_path, model="yolo99x", out=tmp_path, name="r")
    with pytest.raises(ConfigError, match=r"registered models: .*yolo11n"):
        train_xray(cfg)


def test_git_commit_says_when_tracked_files_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    import cv.training.xray as xray_module

    def git(*args: str) -> str:
        cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args]
        return subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "code.py")
    git("commit", "-q", "-m", "first")
    head = git("rev-parse", "HEAD").strip()
    monkeypatch.setattr(xray_module, "__file__", str(tmp_path / "code.py"))
    (tmp_path / "notes.txt").write_text("untracked files do not count\n")
    assert git_commit() == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit() == f"{head}+modified"
    monkeypatch.setattr(xray_module, "__file__", "/")  # no checkout there
    assert git_commit() is None


def test_resume_without_a_run_is_not_found(tmp_path: Path) -> None:
    cfg = XrayTrainConfig(synth={"images": 4}, out=tmp_path, name="none")
    with pytest.raises(NotFoundError, match="no checkpoint"):
        train_xray(cfg, resume=True)


def test_cli_errors_have_their_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["train", "xray", "--data", str(tmp_path / "gone"), "--out", str(tmp_path)])
    assert code == 5 and "gone" in capsys.readouterr().err
    code = main(
        ["train", "xray", "--data", str(tmp_path), "--model", "nope", "--out", str(tmp_path)]
    )
    assert code == 2 and "yolo11n" in capsys.readouterr().err
    bad = _write(tmp_path / "bad.yaml", "synth: {images: 4}\nepochs: -1\n")
    assert main(["train", "xray", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:2" in err and "epochs" in err


# ----------------------------------------------------------------------------- a tiny real run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[XrayTrainConfig, TrainResult]:
    import logging

    from cv.datasets.tip import make_threat_library

    root = tmp_path_factory.mktemp("train")
    # As when train_xray is called from Python, not the CLI: nothing has set the root
    # logger to INFO, and train.log must still hold the run's INFO lines.
    logging.getLogger().setLevel(logging.WARNING)
    lib = root / "tiplib"
    make_threat_library(lib, n=3, classes=["knife", "gun"], profiles=["saturated"], seed=0)
    cfg = tiny_xray_config(
        root,
        model="yolo11n",
        imgsz=128,
        name="tiny",
        augment={"tip_library": lib, "tip_p": 0.5},
    )
    return cfg, train_xray(cfg, command="pytest tiny run")


@pytest.mark.slow
def test_tiny_run_writes_the_run_folder(tiny_run: tuple[XrayTrainConfig, TrainResult]) -> None:
    cfg, result = tiny_run
    run = result.run_dir
    for name in ("config.yaml", "metrics.csv", "metrics.png", "train.log"):
        assert (run / name).is_file(), name
    assert XrayTrainConfig.model_validate(yaml.safe_load((run / "config.yaml").read_text())) == cfg
    assert len(result.history) == 1 and set(result.history[0]) >= {"epoch", "mAP50", "time_s"}
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert tuple(header) == METRIC_COLUMNS
    record = json.loads((result.best_dir / "model.json").read_text())
    assert record["architecture"] == "yolo11n" and record["input_size"] == 128
    assert record["recipe"]["command"] == "pytest tiny run"
    assert record["training"]["epochs_done"] == 1 and record["training"]["seed"] == 0
    # amp is on by default: a CPU with native bfloat16 trains under autocast.
    bf16 = cpu_bf16_supported()
    assert record["training"]["precision"] == ("bfloat16" if bf16 else "float32")
    assert ("bfloat16 autocast on the CPU" in (run / "train.log").read_text()) is bf16
    names = yaml.safe_load((cfg.synth_cache / cfg.synth.key() / "data.yaml").read_text())["names"]
    assert record["classes"] == [names[i] for i in sorted(names)]
    # Our weights are a state dict; ultralytics' pickles stay in weights/ for resume only.
    assert record["files"] == {"state_dict": "model.safetensors"}
    assert record["training"]["commit"] == git_commit()  # taken as the run started


@pytest.mark.slow
def test_tiny_run_models_load_and_predict(tiny_run: tuple[XrayTrainConfig, TrainResult]) -> None:
    from cv.models.load import load_detector

    _, result = tiny_run
    scan = np.full((128, 128, 3), 240, np.uint8)
    for d in (result.best_dir, result.last_dir):
        det = load_detector(d, runtime="torch", device="cpu")
        out = det.predict([scan], conf=0.0)
        assert len(out) == 1
        assert all(0 <= x <= 128 for dd in out[0] for x in dd.box)


@pytest.mark.slow
def test_corrupt_weights_are_caught(
    tiny_run: tuple[XrayTrainConfig, TrainResult], tmp_path: Path
) -> None:
    import shutil

    from cv.models.load import load_detector

    _, result = tiny_run
    d = tmp_path / "broken"
    shutil.copytree(result.last_dir, d)
    f = d / "model.safetensors"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(DataFormatError, match="sha256"):
        load_detector(d, runtime="torch", device="cpu")


@pytest.mark.slow
def test_resume_adds_an_epoch(tiny_run: tuple[XrayTrainConfig, TrainResult]) -> None:
    _, result = tiny_run
    resumed = load_config(result.run_dir / "config.yaml", overrides={"epochs": 2})
    again = train_xray(resumed, resume=True)
    assert [r["epoch"] for r in again.history] == [1.0, 2.0]
    assert json.loads((again.last_dir / "model.json").read_text())["training"]["epochs_done"] == 2
    assert read_metrics(again.run_dir / "metrics.csv") == again.history


@pytest.mark.slow
def test_resume_with_other_classes_is_refused(
    tiny_run: tuple[XrayTrainConfig, TrainResult], tmp_path: Path
) -> None:
    cfg, _ = tiny_run
    data = tmp_path / "other"
    (data / "images" / "train").mkdir(parents=True)
    (data / "images" / "val").mkdir(parents=True)
    (data / "data.yaml").write_text(
        yaml.safe_dump(
            {"path": str(data), "train": "images/train", "val": "images/val", "names": {0: "cash"}}
        )
    )
    other = cfg.model_copy(update={"data": data, "synth": None})
    with pytest.raises(ConfigError, match="do not match"):
        train_xray(other, resume=True)


def test_sources_without_a_val_split_never_validate_on_training_images(tmp_path: Path) -> None:
    # A converted source with no splits gets data convert's random split; a data.yaml
    # whose val is its train split is refused rather than trained with no real check.
    from cv.datasets.formats import load_dataset, write_coco
    from cv.image import write_image
    from cv.records import Annotation, Dataset, ImageRecord
    from cv.training.xray import resolve_data

    src = tmp_path / "coco"
    records = []
    for i in range(10):
        write_image(src / f"{i:03d}.png", np.zeros((32, 32, 3), np.uint8))
        records.append(ImageRecord(f"{i:03d}.png", 32, 32, [Annotation((2, 2, 9, 9), "gun")]))
    write_coco(Dataset("unsplit", records, classes=["gun"], root=src), src / "instances.json")
    assert {r.split for r in load_dataset(src).images} == {None}
    cfg = XrayTrainConfig(data=src, out=tmp_path / "runs", name="r")
    data_yaml, classes, _ = resolve_data(cfg, tmp_path / "runs" / "r")
    doc = yaml.safe_load(data_yaml.read_text())
    assert classes == ["gun"] and doc["val"] != doc["train"]
    assert any((data_yaml.parent / "labels" / "val").iterdir())

    only_train = tmp_path / "only-train"
    (only_train / "images" / "train").mkdir(parents=True)
    (only_train / "data.yaml").write_text(
        yaml.safe_dump({"path": str(only_train), "train": "images/train",
                        "val": "images/train", "names": {0: "gun"}})
    )  # fmt: skip
    cfg = XrayTrainConfig(data=only_train, out=tmp_path / "runs", name="r2")
    with pytest.raises(ConfigError, match="val split is its train split"):
        resolve_data(cfg, tmp_path / "runs" / "r2")
