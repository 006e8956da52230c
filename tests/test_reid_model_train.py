"""Re-ID training: losses, PK sampler, schedule, config, and tiny real training runs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from cv.errors import ConfigError, DataValidationError, NotFoundError
from cv.training.reid import (
    PKSampler,
    ReidTrainConfig,
    batch_hard_mining,
    id_loss,
    load_reid_config,
    lr_at,
    pairwise_distances,
    reid_transforms,
    train_reid,
    triplet_loss,
)

TINY_SYNTH = {
    "identities": 14,
    "train_identities": 8,
    "cameras": 4,
    "train_cameras": 2,
    "images_per_camera": 2,
    "size": [64, 32],
    "seed": 3,
    "workers": 1,
}


def test_batch_hard_triplet_picks_the_hardest_pairs() -> None:
    import torch

    # Points on a line; ids 0, 0, 0, 1, 1. Worked by hand:
    # anchor x=0: positives at 1, 5 -> hardest 5 (idx 2); negatives at 2, 9 -> hardest 2 (idx 3)
    # anchor x=2 (id 1): positive 9 (d 7); negatives 0, 1, 5 -> closest 1 (idx 1, d 1)
    x = torch.tensor([[0.0], [1.0], [5.0], [2.0], [9.0]])
    y = torch.tensor([0, 0, 0, 1, 1])
    d_ap, d_an, i_p, i_n = batch_hard_mining(pairwise_distances(x), y)
    assert i_p.tolist() == [2, 2, 0, 4, 3] and i_n.tolist() == [3, 3, 3, 1, 2]
    assert torch.allclose(d_ap, torch.tensor([5.0, 4.0, 5.0, 7.0, 7.0]), atol=1e-4)
    assert torch.allclose(d_an, torch.tensor([2.0, 1.0, 3.0, 1.0, 4.0]), atol=1e-4)
    # max(0, ap - an + 0.3): 3.3, 3.3, 2.3, 6.3, 3.3 -> mean 3.7
    assert math.isclose(float(triplet_loss(x, y, margin=0.3)), 3.7, abs_tol=1e-4)
    # Well separated: no loss.
    far = torch.tensor([[0.0], [0.1], [10.0], [10.1]])
    assert float(triplet_loss(far, torch.tensor([0, 0, 1, 1]), margin=0.3)) == 0.0


def test_label_smoothing_id_loss() -> None:
    import torch

    logits = torch.tensor([[2.0, 0.0, 0.0]])
    logp = np.log(np.exp([2.0, 0.0, 0.0]) / np.exp([2.0, 0.0, 0.0]).sum())
    target = 0.9 * np.array([1.0, 0.0, 0.0]) + 0.1 / 3
    want = -(target * logp).sum()  # 0.3729
    got = float(id_loss(logits, torch.tensor([0]), smoothing=0.1))
    assert math.isclose(got, want, abs_tol=1e-5) and math.isclose(got, 0.37286, abs_tol=1e-4)


def test_pk_sampler() -> None:
    # 7 ids with 1..7 images: fewer than K are drawn again.
    labels = [pid for pid in range(7) for _ in range(pid + 1)]
    sampler = PKSampler(labels, p=3, k=4, seed=5)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0
    for b in batches:
        ids = [labels[i] for i in b]
        assert len(b) == 12 and len(set(ids)) == 3
        assert all(ids.count(pid) == 4 for pid in set(ids))
    assert list(sampler) == batches  # the same epoch repeats
    sampler.set_epoch(1)
    assert list(sampler) != batches
    with pytest.raises(DataValidationError, match="p=8"):
        PKSampler(labels, p=8, k=4)


def test_lr_schedule() -> None:
    kw = {"total": 100, "warmup": 10, "base": 1.0, "factor": 0.1, "min_ratio": 0.01}
    assert math.isclose(lr_at(0, **kw), 0.1)
    assert math.isclose(lr_at(10, **kw), 1.0)
    assert lr_at(5, **kw) < lr_at(9, **kw) < 1.0
    assert lr_at(50, **kw) < lr_at(20, **kw)
    assert math.isclose(lr_at(100, **kw), 0.01)


def test_augmentation_keeps_the_size() -> None:
    t = reid_transforms(
        (64, 32),
        erasing_p=1.0,
        gray_p=0.5,
        blur_p=0.5,
        gain_p=1,
        gamma_p=1,
        downscale_p=1,
        noise_p=1,
        jpeg_p=1,
    )
    t.set_random_seed(0)
    img = np.random.default_rng(0).integers(0, 256, (64, 32, 3), np.uint8)
    out = t(image=img)["image"]
    assert out.shape == (64, 32, 3) and out.dtype == np.uint8


def test_config_errors_name_field_and_line(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text("model: osnet_x0_25\nsynth:\n  identities: 20\nepochs: 0\n")
    with pytest.raises(ConfigError, match=r"x\.yaml:4: epochs"):
        load_reid_config(f)
    f.write_text("data: somewhere\naugment:\n  flip: 0.5\n")
    with pytest.raises(ConfigError, match=r"x\.yaml:3: augment\.flip: unknown field"):
        load_reid_config(f)
    f.write_text("synth:\n  cameras: 4\n  train_cameras: 3\n")
    with pytest.raises(ConfigError, match="two cameras"):
        load_reid_config(f)
    with pytest.raises(ConfigError, match="exactly one of"):
        load_reid_config(None, overrides={})
    with pytest.raises(NotFoundError):
        load_reid_config(tmp_path / "missing.yaml")
    # A command-line source replaces the file's.
    f.write_text("synth:\n  identities: 20\nepochs: 3\n")
    cfg = load_reid_config(f, overrides={"data": tmp_path, "epochs": 5})
    assert cfg.synth is None and cfg.data == tmp_path and cfg.epochs == 5
    with pytest.raises(ConfigError, match="not a re-ID model"):
        train_reid(ReidTrainConfig(model="yolo11n", data=tmp_path))


def test_shipped_configs_validate() -> None:
    configs = sorted(Path(__file__).parents[1].glob("training/configs/reid-*.yaml"))
    assert configs
    for c in configs:
        assert load_reid_config(c).model == "osnet_x0_25"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One epoch through the CLI on a generated tiny synthetic set, validated on held-out ids."""
    import yaml

    from cv.cli import main

    tmp = tmp_path_factory.mktemp("reid-train")
    cfg = {
        "model": "osnet_x0_25",
        "feature_dim": 32,
        "synth": TINY_SYNTH,
        "synth_cache": str(tmp / "cache"),
        "input_hw": [64, 32],
        "epochs": 1,
        "p": 3,
        "k": 2,
        "val_every": 1,
        "val_identities": 2,
        "workers": 0,
        "device": "cpu",
        "out": str(tmp / "runs"),
        "name": "tiny",
    }
    (tmp / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "reid", "--config", str(tmp / "tiny.yaml")]) == 0
    return tmp


def test_tiny_run_writes_a_loadable_model(tiny_run: Path) -> None:
    from cv.models.reid import load_embedder, read_reid_record

    run = tiny_run / "runs" / "tiny"
    for name in ("config.yaml", "metrics.csv", "metrics.png", "train.log", "weights/resume.pt"):
        assert (run / name).is_file(), name
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert len(rows) == 1 and rows[0]["epoch"] == "1"
    assert 0.0 <= float(rows[0]["mAP"]) <= 1.0 and float(rows[0]["loss"]) > 0
    record = read_reid_record(run / "best")
    assert record.task == "reid-embed" and record.input_hw == (64, 32)
    assert len(record.classes) == 6  # 8 training ids, 2 held out for validation
    assert record.metrics["split"] == "holdout" and "mAP" in record.metrics
    assert record.training["epochs_done"] == 1 and record.recipe["config"]["seed"] == 0
    assert "onnx_parity" in record.metrics  # best/ was exported
    crops = [np.full((80, 40, 3), v, np.uint8) for v in (30, 200)]
    emb = load_embedder(run / "best").embed(crops)
    assert emb.shape == (2, 32)
    assert load_embedder(run / "last", runtime="torch", device="cpu").dim == 32


def test_resume_extends_the_run(tiny_run: Path) -> None:
    from cv.cli import main
    from cv.models.reid import read_reid_record

    out = tiny_run / "runs"
    args = ["reid", "train", "--resume", "--out", str(out), "--name", "tiny", "--epochs", "2"]
    assert main([*args, "--no-export"]) == 0
    rows = list(csv.DictReader((out / "tiny" / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert read_reid_record(out / "tiny" / "last").training["epochs_done"] == 2
    # Nothing to resume from: a clear error and its exit code.
    assert main(["reid", "train", "--resume", "--out", str(out), "--name", "nothing"]) == 5


def test_training_on_a_dataset_folder(tiny_run: Path) -> None:
    """A folder read_reid reads (the cached synthetic set), validated on its query/gallery."""
    cache = next(p for p in (tiny_run / "cache").iterdir() if p.is_dir())
    cfg = ReidTrainConfig(
        model="resnet18_bnneck",
        feature_dim=16,
        data=cache,
        input_hw=(64, 32),
        epochs=1,
        p=4,
        k=2,
        val_every=1,
        export=False,
        workers=1,
        device="cpu",
        out=tiny_run / "runs",
        name="folder",
    )
    result = train_reid(cfg, progress=False)
    assert result.val_name == "test" and "rank1" in result.best()
    assert (result.best_dir / "model.safetensors").is_file()
    assert not (result.best_dir / "model.onnx").exists()
