"""``customs-vision train``: Train models: the X-ray detector (more to come)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(help="Train models: the X-ray detector (more to come).", no_args_is_help=True)


def _csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


@app.command("xray")
def xray(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Experiment YAML (e.g. training/configs/*.yaml); options override it.",
    ),
    data: Path | None = typer.Option(
        None, "--data", help="A dataset the toolkit reads (YOLO data.yaml / folder, COCO, ...)."
    ),
    synth_images: int | None = typer.Option(
        None, "--synth-images", min=1, help="Train on N generated synthetic scans instead."
    ),
    synth_profiles: str | None = typer.Option(
        None, "--synth-profiles", help="Scanner profiles of the synthetic scans, comma separated."
    ),
    synth_seed: int | None = typer.Option(None, "--synth-seed", help="Seed of the synthetic set."),
    synth_size: int | None = typer.Option(
        None, "--synth-size", min=64, help="Side of the synthetic scans in pixels."
    ),
    model: str | None = typer.Option(
        None, "--model", help="Registered model name (default yolo11n)."
    ),
    imgsz: int | None = typer.Option(
        None, "--imgsz", min=32, help="Network input side (default 640)."
    ),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Epochs (default 100)."),
    batch: int | None = typer.Option(None, "--batch", min=1, help="Batch size (default 16)."),
    workers: int | None = typer.Option(
        None, "--workers", min=0, help="Data-loader workers (default 2)."
    ),
    device: str | None = typer.Option(
        None, "--device", help="auto, cpu, 0 or 0,1 (several GPUs: DDP) (default auto)."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Training seed (default 0)."),
    name: str | None = typer.Option(
        None, "--name", help="Run name: the folder OUT/NAME (default xray)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Folder of runs (default runs/train)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run OUT/NAME from its last checkpoint."
    ),
    tip_library: Path | None = typer.Option(
        None, "--tip-library", help="Threat library for on-the-fly threat image projection."
    ),
    tip_p: float | None = typer.Option(
        None, "--tip-p", min=0.0, max=1.0, help="Probability of projecting threats (default 0.3)."
    ),
) -> None:
    """Train the X-ray threat detector (YOLO through ultralytics), offline, into OUT/NAME."""

    from cv.errors import ConfigError
    from cv.training.config import apply_overrides, load_config, validate_config
    from cv.training.xray import train_xray

    synth_given = any(v is not None for v in (synth_images, synth_profiles, synth_seed, synth_size))
    if data is not None and synth_given:
        raise ConfigError("give --data or --synth-* options, not both", field="data")
    overrides: dict[str, object] = {
        "data": data,
        "synth.images": synth_images,
        "synth.profiles": _csv(synth_profiles),
        "synth.seed": synth_seed,
        "synth.size": synth_size,
        "model": model,
        "imgsz": imgsz,
        "epochs": epochs,
        "batch": batch,
        "workers": workers,
        "device": device,
        "seed": seed,
        "name": name,
        "out": out,
        "augment.tip_library": tip_library,
        "augment.tip_p": tip_p,
    }
    if resume:
        config, overrides = resume_config(config, overrides, out=out, name=name or "xray")
    if config is not None:
        cfg = load_config(config, overrides=overrides)
    else:
        cfg = validate_config(apply_overrides({}, overrides))
    command = "customs-vision " + shlex.join(sys.argv[1:]) if sys.argv else None
    result = train_xray(cfg, resume=resume, command=command)
    show_detector_run(cfg.model, cfg.run_dir, result)


RESUMABLE = frozenset({"epochs", "batch", "workers", "device"})
"""Options that may change when a run is resumed; the rest come from its config."""


def resume_config(
    config: Path | None,
    overrides: dict[str, object],
    *,
    out: Path | None,
    name: str,
    keep: frozenset[str] = RESUMABLE,
) -> tuple[Path, dict[str, object]]:
    """The config and overrides of a resumed run: the run's own resolved
    ``config.yaml`` (unless one is given) and only the options in ``keep``."""
    if config is None:
        config = (out or Path("runs/train")) / name / "config.yaml"
    return config, {k: v for k, v in overrides.items() if k in keep}


def show_detector_run(model: str, run_dir: Path, result: Any) -> None:
    """Prints a detector training run's summary table (``train xray``, ``train person``)."""
    from rich.table import Table

    from cv.log import console

    best = result.best()
    table = Table(title=f"{model} on {run_dir}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("epochs", str(len(result.history)))
    table.add_row("time", f"{result.seconds:.0f} s")
    if best:
        table.add_row("best epoch", f"{best['epoch']:.0f}")
        for key in ("precision", "recall", "mAP50", "mAP50-95"):
            table.add_row(f"val {key}", f"{best.get(key, float('nan')):.3f}")
    table.add_row("best model", str(result.best_dir))
    table.add_row("last model", str(result.last_dir))
    table.add_row("metrics", str(result.run_dir / "metrics.csv"))
    console.print(table)


# Imported for its side effect: registers `train reid`.
import cv.cli.reid_model  # noqa: E402, F401

# Imported for its side effect: registers `train person`.
from cv.cli import reid_pipeline  # noqa: E402, F401
