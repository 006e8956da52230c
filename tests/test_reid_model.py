"""Re-ID embedders: builders, preprocessing, model directories, runtimes, ONNX export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cv.errors import ConfigError, DataFormatError, DataValidationError, NotFoundError
from cv.models.registry import build_model, list_models
from cv.models.reid import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    REID_MODELS,
    check_reid_parity,
    crop_box,
    export_reid_onnx,
    init_embedder_dir,
    load_embedder,
    make_reid_record,
    parity_crops,
    read_reid_record,
    save_embedder,
)

HW = (64, 32)
"""A tiny input size: the tests check contracts, not accuracy."""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("reid") / "m"
    return init_embedder_dir(d, num_ids=5, input_hw=HW, feature_dim=32, seed=1, export=True)


def _crops(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (int(rng.integers(20, 90)), int(rng.integers(10, 50)), 3), np.uint8)
        for _ in range(n)
    ]


def test_builders_register_lazily() -> None:
    code = (
        "import sys, cv.models.registry as r; "
        "print('torch' in sys.modules, 'cv2' in sys.modules, "
        "[m for m in r.list_models() if 'osnet' in m or 'bnneck' in m])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"False False {sorted(REID_MODELS)}"
    assert set(REID_MODELS) <= set(list_models())


@pytest.mark.parametrize("name", REID_MODELS)
def test_every_builder_keeps_the_contract(name: str) -> None:
    import torch

    model = build_model(name, num_classes=7, seed=0)
    # The same seed gives the same weights; the caller's RNG is left alone.
    state = torch.random.get_rng_state()
    again = build_model(name, num_classes=7, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)
    a, b = model.state_dict(), again.state_dict()
    assert all(torch.equal(a[key], b[key]) for key in a)
    x = torch.randn(4, 3, *HW)
    model.train()
    logits, feats = model(x)
    dim = model.feature_dim
    assert tuple(logits.shape) == (4, 7) and tuple(feats.shape) == (4, dim)
    model.eval()
    with torch.no_grad():
        emb = model(x)
    assert emb.dtype == torch.float32 and tuple(emb.shape) == (4, dim)
    assert torch.allclose(emb.norm(dim=1), torch.ones(4), atol=1e-5)


def test_sizes_and_last_stride() -> None:
    import torch

    def params(m: torch.nn.Module) -> int:
        return sum(p.numel() for n, p in m.named_parameters() if "classifier" not in n)

    small = build_model("osnet_x0_25", num_classes=10)
    assert 0.12e6 < params(small) < 0.15e6  # torchreid's 0.2 M with its 512-d fc layer
    assert small.feature_dim == 128
    assert 0.18e6 < params(build_model("osnet_x0_25", num_classes=10, feature_dim=512)) < 0.22e6
    assert 1.5e6 < params(build_model("osnet_x1_0", num_classes=10)) < 2.5e6
    r18 = build_model("resnet18_bnneck", num_classes=10)
    assert r18.feature_dim == 512
    # Last stride 1: the trunk's output stride is 16, not 32 (256 x 128 -> 16 x 8).
    with torch.no_grad():
        fmap = r18.trunk(torch.zeros(1, 3, 64, 32))
    assert tuple(fmap.shape[-2:]) == (4, 2)
    assert build_model("resnet18_bnneck", num_classes=3, feature_dim=64).feature_dim == 64
    # BNNeck's shift is frozen (BoT); the classifier has no bias.
    assert not r18.head.bn.bias.requires_grad and r18.head.classifier.bias is None
    with pytest.raises(ConfigError, match="feature_dim"):
        build_model("osnet_x0_25", num_classes=3, feature_dim=0)


def test_crop_box_clips_and_copies() -> None:
    frame = np.arange(10 * 20 * 3, dtype=np.uint8).reshape(10, 20, 3)
    crop = crop_box(frame, (2.4, 1.6, 7.2, 5.0))
    assert crop.shape == (4, 6, 3)  # x 2..8, y 1..5
    assert np.array_equal(crop, frame[1:5, 2:8])
    assert crop.base is None or not np.shares_memory(crop, frame)
    edge = crop_box(frame, (-5, -5, 3, 30))
    assert edge.shape == (10, 3, 3)
    with pytest.raises(DataValidationError, match="no pixels"):
        crop_box(frame, (25, 0, 30, 5))
    with pytest.raises(DataValidationError, match="box"):
        crop_box(frame, (1, 2, 3))
    with pytest.raises(DataValidationError, match="frame"):
        crop_box(np.zeros((10, 20), np.uint8), (0, 0, 5, 5))


def test_record_and_preprocessing(exported: Path) -> None:
    import cv2

    record = read_reid_record(exported)
    assert record.task == "reid-embed" and record.input_hw == HW
    assert record.preprocessing.mean == list(IMAGENET_MEAN)
    assert record.preprocessing.std == list(IMAGENET_STD)
    assert record.recipe["model_kwargs"] == {"feature_dim": 32}
    emb = load_embedder(exported, runtime="torch", device="cpu")
    crops = _crops(3)
    x = emb.preprocess(crops)
    assert x.shape == (3, 3, *HW) and x.dtype == np.float32
    # The vectorised batch equals the per-crop textbook formula.
    ref = cv2.resize(crops[1], (HW[1], HW[0]), interpolation=cv2.INTER_LINEAR) / 255.0
    ref = ((ref - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
    assert np.allclose(x[1], ref, atol=1e-5)
    with pytest.raises(DataValidationError, match=r"crops\[1\]"):
        emb.embed([crops[0], crops[1].astype(np.float32)])
    with pytest.raises(DataValidationError, match=r"crops\[0\]"):
        emb.embed([np.zeros((10, 10), np.uint8)])
    assert emb.embed([]).shape == (0, 32)


def test_runtimes_agree_and_batch_is_dynamic(exported: Path) -> None:
    onnx_emb = load_embedder(exported, runtime="onnx", threads=1)
    torch_emb = load_embedder(exported, runtime="torch", device="cpu")
    assert onnx_emb.dim == torch_emb.dim == 32 and onnx_emb.runtime == "onnx"
    crops = _crops(7, seed=3)
    a = onnx_emb.embed(crops, batch=3)
    b = torch_emb.embed(crops, batch=7)
    c = onnx_emb.embed(crops[:1], batch=1)
    assert a.shape == (7, 32) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.abs(a - b).max() < 1e-4 and np.abs(a[:1] - c).max() < 1e-5
    record = read_reid_record(exported)
    parity = record.metrics["onnx_parity"]
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-4 and parity["batches"] == [1, 15]


def test_openvino_runs_the_same_graph(exported: Path) -> None:
    # FP32 gives ONNX Runtime's embeddings; bfloat16 (where the CPU has it) moves them a
    # little; a precision without OpenVINO, or an unknown runtime, is a named error.
    from cv.models.runtime import openvino_core

    onnx_emb = load_embedder(exported, runtime="onnx", threads=1)
    ov = load_embedder(exported, runtime="openvino", threads=1)
    assert ov.runtime == "openvino" and ov.label == "openvino (f32)" and ov.dim == 32
    crops = _crops(7, seed=3)
    a, b = onnx_emb.embed(crops, batch=3), ov.embed(crops, batch=3)
    assert np.abs(a - b).max() < 1e-4 and ov.embed(crops[:1], batch=1).shape == (1, 32)
    if "BF16" in openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        bf = load_embedder(exported, runtime="openvino", precision="bf16", threads=1)
        assert bf.label == "openvino (bf16)"
        assert (a * bf.embed(crops, batch=3)).sum(axis=1).min() > 0.99
    with pytest.raises(ConfigError, match="applies to runtime openvino only"):
        load_embedder(exported, runtime="onnx", precision="bf16")
    with pytest.raises(ConfigError, match="unknown runtime 'tensorrt'"):
        load_embedder(exported, runtime="tensorrt")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown OpenVINO precision"):
        load_embedder(exported, runtime="openvino", precision="fp8")  # type: ignore[arg-type]


def test_round_trip_is_strict(exported: Path, tmp_path: Path) -> None:
    import torch

    from cv.models.reid import build_reid_model

    model, record = build_reid_model(exported)
    out = save_embedder(model, tmp_path / "copy", record=record.model_copy(deep=True))
    again, _ = build_reid_model(out)
    x = torch.randn(2, 3, *HW)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    # save_embedder dropped the graph exported from other weights.
    assert not (out / "model.onnx").exists() and "onnx" not in read_reid_record(out).files
    with pytest.raises(NotFoundError, match="reid export"):
        load_embedder(out)

    # A weights file for another network (same record, hashes refreshed) fails strictly.
    from cv.models.weights import save_state_dict, write_record

    other = build_model("osnet_x0_25", num_classes=5, feature_dim=16)
    save_state_dict(other, out / "model.safetensors")
    write_record(read_reid_record(out, verify=False), out)
    with pytest.raises(DataFormatError, match="do not fit"):
        load_embedder(out, runtime="torch")


def test_corrupt_missing_and_wrong_task(exported: Path, tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(exported, bad)
    data = bytearray((bad / "model.safetensors").read_bytes())
    data[-10:] = b"\x00" * 10
    (bad / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="sha256"):
        load_embedder(bad, runtime="torch")
    (bad / "model.onnx").write_bytes(b"not a graph")
    with pytest.raises(DataFormatError):
        load_embedder(bad)
    with pytest.raises(DataFormatError):
        load_embedder(bad, runtime="openvino")
    with pytest.raises(NotFoundError, match="does not exist"):
        load_embedder(tmp_path / "nowhere")
    det = tmp_path / "det"
    shutil.copytree(exported, det)
    doc = json.loads((det / "model.json").read_text())
    doc["task"] = "detect"
    (det / "model.json").write_text(json.dumps(doc))
    with pytest.raises(DataValidationError, match="not a re-ID embedder"):
        load_embedder(det)
    with pytest.raises(DataValidationError, match="task"):
        save_embedder(
            build_model("osnet_x0_25", num_classes=2),
            tmp_path / "x",
            record=make_reid_record(
                name="x", architecture="osnet_x0_25", classes=["1", "2"]
            ).model_copy(update={"task": "detect"}),
        )


def test_parity_failure_removes_the_graph(tmp_path: Path) -> None:
    from cv.models.export import ParityError

    d = init_embedder_dir(tmp_path / "m", architecture="resnet18_bnneck", num_ids=3, input_hw=HW)
    with pytest.raises(ParityError, match="cosine"):
        export_reid_onnx(d, parity_images=parity_crops(3), min_cosine=1.5)
    assert not (d / "model.onnx").exists() and "onnx" not in read_reid_record(d).files
    export_reid_onnx(d, parity_images=parity_crops(3))
    report = check_reid_parity(d, _crops(4), raise_on_failure=False)
    assert report.passed and report.min_cosine > 0.9999
    with pytest.raises(DataValidationError, match="at least one crop"):
        check_reid_parity(d, [])


def test_cli_export(exported: Path, tmp_path: Path) -> None:
    import shutil

    from cv.cli import main
    from cv.image import write_image

    d = tmp_path / "m"
    shutil.copytree(exported, d)
    crops = tmp_path / "crops"
    crops.mkdir()
    for i, c in enumerate(_crops(3)):
        write_image(crops / f"{i}.png", c)
    assert main(["reid", "export", str(d), "--images", str(crops)]) == 0
    assert read_reid_record(d).metrics["onnx_parity"]["crops"] == 3
    assert main(["reid", "export", str(tmp_path / "missing")]) == 5


def test_default_model_ships_and_loads() -> None:
    from cv.models.reid import default_model_dir

    d = default_model_dir()
    record = read_reid_record(d)  # every file checked against its sha256
    assert record.architecture == "osnet_x0_25" and record.input_hw == (256, 128)
    assert 0.0 < record.thresholds["match"] < 1.0
    held_out = record.metrics["heldout-synth"]
    assert held_out["rank1"] >= 0.90 and held_out["mAP"] >= 0.75
    assert record.metrics["onnx_parity"]["passed"]
    assert (d / "MODEL_CARD.md").is_file()
    emb = load_embedder(runtime="onnx", threads=1)
    out = emb.embed(parity_crops(2))
    assert out.shape == (2, 128) and emb.match_threshold == record.thresholds["match"]
