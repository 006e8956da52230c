"""``customs-vision reid train`` / ``train reid`` and ``reid export``: the re-ID embedder."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from cv.cli.reid import app
from cv.cli.train import app as train_app


def _hw(value: str | None) -> list[int] | None:
    """``"256,128"`` -> ``[256, 128]``."""
    if value is None:
        return None
    from cv.errors import ConfigError

    parts = [v.strip() for v in value.replace("x", ",").split(",") if v.strip()]
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ConfigError(f"give HEIGHT,WIDTH such as 256,128, got {value!r}", field="input_hw")
    return [int(p) for p in parts]


def train_command(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Experiment YAML (e.g. training/configs/reid-*.yaml); options override it.",
    ),
    data: Path | None = typer.Option(
        None, "--data", help="A re-ID dataset folder (Market-1501 / MSMT17 layout)."
    ),
    synth_identities: int | None = typer.Option(
        None, "--synth-identities", min=2, help="Train on a synthetic set of N people (all splits)."
    ),
    synth_train_identities: int | None = typer.Option(
        None, "--synth-train-identities", min=1, help="People in the synthetic training split."
    ),
    synth_cameras: int | None = typer.Option(
        None, "--synth-cameras", min=2, help="Cameras of the synthetic set."
    ),
    synth_train_cameras: int | None = typer.Option(
        None, "--synth-train-cameras", min=1, help="Cameras the training split is seen by."
    ),
    synth_images: int | None = typer.Option(
        None, "--synth-images-per-camera", min=1, help="Crops per person and camera."
    ),
    synth_seed: int | None = typer.Option(None, "--synth-seed", help="Seed of the synthetic set."),
    model: str | None = typer.Option(
        None, "--model", help="osnet_x0_25 (default), osnet_x1_0, resnet18_bnneck, resnet50_bnneck."
    ),
    feature_dim: int | None = typer.Option(None, "--feature-dim", min=1, help="Embedding size."),
    input_hw: str | None = typer.Option(
        None, "--input-hw", help="Network input HEIGHT,WIDTH (default 256,128)."
    ),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Epochs (default 30)."),
    p: int | None = typer.Option(None, "--p", min=2, help="Identities per batch (default 16)."),
    k: int | None = typer.Option(None, "--k", min=2, help="Images per identity (default 4)."),
    lr: float | None = typer.Option(None, "--lr", min=0.0, help="Peak learning rate."),
    val_every: int | None = typer.Option(
        None, "--val-every", min=0, help="Validate every N epochs (0: never; default 5)."
    ),
    val_identities: int | None = typer.Option(
        None,
        "--val-identities",
        min=0,
        help="Training identities held out for validation (0: the dataset's query/gallery).",
    ),
    erasing_p: float | None = typer.Option(
        None, "--erasing-p", min=0.0, max=1.0, help="Random erasing probability (default 0)."
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=0, help="Data-loader workers (default 1)."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=0, help="PyTorch CPU threads (0: one per core)."
    ),
    device: str | None = typer.Option(
        None, "--device", help="auto, cpu, cuda or cuda:N (default auto)."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Training seed (default 0)."),
    name: str | None = typer.Option(
        None, "--name", help="Run name: the folder OUT/NAME (default reid)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Folder of runs (default runs/train)."),
    export: bool | None = typer.Option(
        None, "--export/--no-export", help="Export best/ to ONNX at the end (default on)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run OUT/NAME from its last epoch."
    ),
) -> None:
    """Train a person re-ID embedder (ID + triplet loss, PK batches) into OUT/NAME."""
    import os

    # Idle OpenMP threads sleep instead of spinning. On a CPU shared with other work
    # spinning threads fight for the cores: a training step of osnet_x0_25 measured
    # 16.6 s with spinning and 2.2 s without while two other jobs ran. Read when
    # torch loads, so it is set before the first torch import.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from rich.table import Table

    from cv.cli.train import resume_config
    from cv.errors import ConfigError
    from cv.log import console
    from cv.training.reid import load_reid_config, train_reid

    synth = {
        "synth.identities": synth_identities,
        "synth.train_identities": synth_train_identities,
        "synth.cameras": synth_cameras,
        "synth.train_cameras": synth_train_cameras,
        "synth.images_per_camera": synth_images,
        "synth.seed": synth_seed,
    }
    if data is not None and any(v is not None for v in synth.values()):
        raise ConfigError("give --data or --synth-* options, not both", field="data")
    overrides: dict[str, object] = {
        "data": data,
        **synth,
        "model": model,
        "feature_dim": feature_dim,
        "input_hw": _hw(input_hw),
        "epochs": epochs,
        "p": p,
        "k": k,
        "lr": lr,
        "val_every": val_every,
        "val_identities": val_identities,
        "augment.erasing_p": erasing_p,
        "workers": workers,
        "threads": threads,
        "device": device,
        "seed": seed,
        "name": name,
        "out": out,
        "export": export,
    }
    if resume:
        keep = frozenset({"epochs", "workers", "threads", "device", "val_every", "export"})
        config, overrides = resume_config(
            config, overrides, out=out, name=name or "reid", keep=keep
        )
    cfg = load_reid_config(config, overrides=overrides)
    command = "customs-vision " + shlex.join(sys.argv[1:]) if sys.argv else None
    result = train_reid(cfg, resume=resume, command=command)

    best = result.best()
    table = Table(title=f"{cfg.model} on {cfg.run_dir}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("epochs", str(len(result.history)))
    table.add_row("time", f"{result.seconds:.0f} s")
    if best and "mAP" in best:
        table.add_row("best epoch", f"{best['epoch']:.0f}")
        for key in ("rank1", "rank5", "mAP", "mINP"):
            table.add_row(f"{result.val_name} {key}", f"{best.get(key, float('nan')):.3f}")
    table.add_row("best model", str(result.best_dir))
    table.add_row("last model", str(result.last_dir))
    table.add_row("metrics", str(result.run_dir / "metrics.csv"))
    console.print(table)


app.command("train")(train_command)
train_app.command("reid")(train_command)


@app.command("export")
def export_command(
    model_dir: Path = typer.Argument(
        ..., help="Re-ID model directory (model.json + model.safetensors)."
    ),
    opset: int = typer.Option(17, "--opset", min=11, help="ONNX opset version."),
    images: Path | None = typer.Option(
        None,
        "--images",
        help="Folder of person crops (or a re-ID dataset) for the parity check; "
        "generated test crops by default.",
    ),
    count: int = typer.Option(16, "--count", min=2, help="Crops the parity check uses."),
    atol: float = typer.Option(
        1e-4, "--atol", min=0.0, help="Largest |onnx - torch| per embedding element."
    ),
    min_cosine: float = typer.Option(
        0.9999, "--min-cosine", min=-1.0, max=1.0, help="Smallest cosine similarity per crop."
    ),
) -> None:
    """Export a re-ID embedder to ONNX (dynamic batch) and prove parity with PyTorch."""
    from cv.log import console
    from cv.models.reid import export_reid_onnx, read_reid_record

    crops = None if images is None else _folder_crops(images, count)
    out = export_reid_onnx(
        model_dir, opset=opset, parity_images=crops, atol=atol, min_cosine=min_cosine
    )
    report = read_reid_record(model_dir).metrics["onnx_parity"]
    console.print(
        f"wrote {out}: parity [green]passed[/] on {report['crops']} crops "
        f"(batches {report['batches']}): max |Δ| {report['max_abs_diff']:.2g} "
        f"(atol {atol:g}), min cosine {report['min_cosine']:.6f} (≥ {min_cosine})",
        highlight=False,
    )


def _folder_crops(folder: Path, count: int) -> list[object]:
    """Up to ``count`` crops spread evenly over the images under ``folder``."""
    import numpy as np

    from cv.errors import NotFoundError
    from cv.image import IMAGE_SUFFIXES, read_image

    if not folder.is_dir():
        raise NotFoundError("parity image folder does not exist", path=folder, field="--images")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise NotFoundError("no images in the parity image folder", path=folder, field="--images")
    picks = np.unique(np.linspace(0, len(files) - 1, min(count, len(files))).astype(int))
    return [read_image(files[i]) for i in picks]
