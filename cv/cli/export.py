"""``customs-vision export``: Export models: ONNX (FP32 / FP16 / INT8) with a parity check, Triton model repositories."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from cv.records import Dataset

app = typer.Typer(
    help="Export models: ONNX (FP32 / FP16 / INT8) with a parity check, Triton model repositories.",
    no_args_is_help=True,
)

PARITY_IMAGES = 8
"""Images the parity check runs on after every export."""

CALIB_SPLITS = ("train", "val")
"""Splits INT8 calibrates on: never the test images its accuracy is measured on."""


def _load(path: Path, *, what: str) -> Dataset:
    """The dataset at ``path``, which must hold images."""
    from cv.datasets.formats import load_dataset
    from cv.errors import NotFoundError

    if not path.exists():
        raise NotFoundError(f"{what} dataset does not exist", path=path)
    ds = load_dataset(path)
    if not ds.images:
        raise NotFoundError(f"{what} dataset has no images", path=path)
    return ds


def _spread(ds: Dataset, n: int) -> list[Any]:
    """Up to ``n`` of the dataset's images (RGB), spread evenly over it."""
    import numpy as np

    from cv.image import read_image

    picks = np.unique(np.linspace(0, len(ds.images) - 1, min(n, len(ds.images))).astype(int))
    return [read_image(ds.image_path(ds.images[i])) for i in picks]


def _calibration_part(ds: Dataset, path: Path) -> tuple[Dataset, list[str]]:
    """The images of ``ds`` that calibrate INT8 (:data:`CALIB_SPLITS`), and their
    splits; all of them (``["all"]``) when the dataset assigns no splits.

    Raises:
        NotFoundError: If the dataset has splits, but none of :data:`CALIB_SPLITS`.
    """
    from dataclasses import replace

    from cv.errors import NotFoundError

    present = {im.split for im in ds.images if im.split is not None}
    if not present:
        return ds, ["all"]
    images = [im for im in ds.images if im.split in CALIB_SPLITS]
    if not images:
        raise NotFoundError(
            f"no train or val images to calibrate INT8 on; the dataset has "
            f"{', '.join(sorted(present))} (its test images are for evaluation)",
            path=path,
            field="--calib",
        )
    return replace(ds, images=images), [s for s in CALIB_SPLITS if s in present]


def _evaluation_part(ds: Dataset) -> tuple[Dataset, str]:
    """The images the accuracy change is measured on, chosen as ``eval xray
    --split`` chooses them: the test split if there is one, else val, else all."""
    from cv.cli.eval import select_split

    present = {im.split for im in ds.images if im.split is not None}
    split = next((s for s in ("test", "val") if s in present), "all")
    return select_split(ds, split), split


def _describe(splits: list[str], ds: Dataset, path: Path) -> str:
    """``N images of PATH (test split)``, as the output says where images came from."""
    which = "all splits" if splits == ["all"] else " and ".join(splits) + " split"
    return f"{len(ds.images)} images of {path} ({which}{'s' if len(splits) > 1 else ''})"


def _synthetic_images(n: int, size: int) -> list[Any]:
    from cv.evaluation.bench_detector import synthetic_images

    return synthetic_images(n, size=size, seed=10_000)


def _print_parity(title: str, report: Any) -> None:
    from rich.table import Table

    from cv.log import console
    from cv.models.export import Fp16ParityReport

    table = Table(title=title)
    for col in ("images", "max |Δ| raw", "max rel Δ", "× tolerance", "dets torch/onnx", "min IoU"):
        table.add_column(col, justify="right")
    table.add_row(
        str(report.images),
        f"{report.max_abs_diff:.3g}",
        f"{report.max_rel_diff:.3g}",
        f"{report.worst_excess:.3g}",
        f"{report.detections_torch}/{report.detections_onnx}",
        f"{report.min_iou:.4f}",
    )
    console.print(table)
    verdict = (
        "[green]passed[/]" if report.passed else "[red]FAILED[/]: " + "; ".join(report.problems)
    )
    if isinstance(report, Fp16ParityReport):
        tolerance = (
            f"boxes {report.atol:g} px + {report.rtol:g}·|torch|, scores "
            f"{report.score_atol:g}, detections IoU >= {report.iou_required:g}"
        )
    else:
        tolerance = f"atol={report.atol:g}, rtol={report.rtol:g}"
    console.print(f"parity ({tolerance}): {verdict}", highlight=False)


def _accuracy(model_dir: Path, onnx_file: str, dataset: Any, batch: int) -> dict[str, Any]:
    # Evaluation is imported here, at the edge: models never import evaluation.
    from cv.evaluation.detection import evaluate
    from cv.models.load import load_onnx_detector
    from cv.models.predict import predict_dataset

    det = load_onnx_detector(model_dir, onnx_file=onnx_file, max_batch=batch)
    preds = predict_dataset(det, dataset, batch_size=batch)
    return evaluate(dataset, preds).summary()


@app.command("onnx")
def onnx_command(
    model_dir: Path = typer.Argument(..., help="Model directory (model.json + model.safetensors)."),
    opset: int = typer.Option(17, min=11, help="ONNX opset version."),
    half: bool = typer.Option(
        False,
        "--half",
        help="Also write model.fp16.onnx (for GPUs), parity-checked at FP16's tolerance.",
    ),
    int8: bool = typer.Option(
        False, "--int8", help="Also write model.int8.onnx (static quantisation; needs --calib)."
    ),
    calib: Path | None = typer.Option(
        None, help="Dataset whose train and val images calibrate INT8."
    ),
    calib_images: int = typer.Option(64, min=1, help="Calibration images taken from --calib."),
    eval_data: Path | None = typer.Option(
        None,
        "--eval",
        help="Dataset to report the FP16 / INT8 accuracy change on (AP, AP50), on its test "
        "split (else val, else all).",
    ),
    simplify: bool = typer.Option(False, "--simplify", help="Simplify the graph with onnxslim."),
    atol: float = typer.Option(1e-3, help="Parity: absolute tolerance on raw outputs."),
    rtol: float = typer.Option(1e-3, help="Parity: relative tolerance on raw outputs."),
    batch: int = typer.Option(8, min=1, help="Batch size of the accuracy evaluation."),
) -> None:
    """Export to ONNX (dynamic batch), check parity with PyTorch; optional FP16 and INT8.

    The parity check runs PyTorch and ONNX Runtime on the same images (from --eval,
    else --calib, else synthetic scans) and exits non-zero beyond the tolerance
    (--atol / --rtol for FP32; FP16 has its own, stated in cv.models.export).
    INT8 calibrates on the train and val images of --calib; the accuracy change is
    measured on the test split of --eval (else val, else all).
    """
    from cv.errors import ConfigError
    from cv.log import console
    from cv.models.export import FP16_FILE, export_onnx, fp16_parity_check, parity_check
    from cv.models.load import load_record
    from cv.models.weights import write_record

    if int8 and calib is None:
        raise ConfigError("--int8 needs --calib PATH (a dataset to calibrate on)", field="calib")
    record = load_record(model_dir)
    calib_ds = None if calib is None else _load(calib, what="--calib")
    calib_part = None if calib_ds is None or not int8 else _calibration_part(calib_ds, calib)
    eval_ds = None if eval_data is None else _load(eval_data, what="--eval")
    out = export_onnx(model_dir, opset=opset, half=half, simplify=simplify)
    console.print(f"wrote {out}" + (f" and {model_dir / FP16_FILE}" if half else ""))

    if eval_ds is not None:
        check_images = _spread(eval_ds, PARITY_IMAGES)
    elif calib_ds is not None:
        check_images = _spread(calib_ds, PARITY_IMAGES)
    else:
        check_images = _synthetic_images(PARITY_IMAGES, record.input_size)
    report = parity_check(model_dir, check_images, atol=atol, rtol=rtol, raise_on_failure=False)
    _print_parity("PyTorch vs ONNX Runtime (FP32)", report)
    export_facts: dict[str, Any] = {"opset": opset, "parity": report.to_dict()}
    failed = [] if report.passed else [(out.name, report.problems)]

    # The FP32 accuracy every other precision is compared with, measured once.
    baseline: dict[str, Any] = {}
    eval_part = None
    if report.passed and (half or int8):
        if eval_ds is not None and eval_data is not None:
            eval_part, split = _evaluation_part(eval_ds)
            console.print(
                f"accuracy changes measured on {_describe([split], eval_part, eval_data)}",
                highlight=False,
            )
            baseline = {
                "eval": str(eval_data),
                "eval_split": split,
                "eval_images": len(eval_part.images),
                "fp32": _accuracy(model_dir, out.name, eval_part, batch),
            }
        else:
            console.print("[yellow]no --eval dataset: the accuracy change is not measured[/]")

    if report.passed and half:
        h_report = fp16_parity_check(model_dir, check_images, raise_on_failure=False)
        _print_parity("PyTorch (FP32) vs ONNX Runtime (FP16)", h_report)
        if not h_report.passed:
            failed.append((FP16_FILE, h_report.problems))
        export_facts["fp16"] = {
            "parity": h_report.to_dict(),
            **_accuracy_change("FP16", model_dir, FP16_FILE, eval_part, baseline, batch),
        }

    if report.passed and int8:
        from cv.models.export import quantize_int8

        assert calib is not None and calib_part is not None
        calib_set, calib_splits = calib_part
        calib_pixels = _spread(calib_set, calib_images)
        q = quantize_int8(model_dir, calib_pixels)
        console.print(
            f"wrote {q} (calibrated on {len(calib_pixels)} of the "
            f"{_describe(calib_splits, calib_set, calib)})",
            highlight=False,
        )
        q_report = parity_check(
            model_dir, check_images, onnx_file=q.name, atol=atol, rtol=rtol, raise_on_failure=False
        )
        console.print(
            f"INT8 vs PyTorch: raw outputs differ by up to {q_report.max_abs_diff:.3g} "
            "(expected: quantisation is not exact)",
            highlight=False,
        )
        export_facts["int8"] = {
            "calib": str(calib),
            "calib_splits": calib_splits,
            "calib_images": len(calib_pixels),
            **_accuracy_change("INT8", model_dir, q.name, eval_part, baseline, batch),
        }

    record = load_record(model_dir)
    record.metrics = {**record.metrics, "export": export_facts}
    write_record(record, model_dir)
    if failed:
        from cv.models.export import ParityError

        name, problems = failed[0]
        raise ParityError(
            "ONNX Runtime does not reproduce PyTorch: " + "; ".join(problems[:3]),
            path=model_dir / name,
        )


def _accuracy_change(
    label: str,
    model_dir: Path,
    onnx_file: str,
    dataset: Dataset | None,
    baseline: dict[str, Any],
    batch: int,
) -> dict[str, Any]:
    """The ``baseline`` facts (where, FP32 accuracy) with the accuracy of ``onnx_file``
    under ``label.lower()``, the change printed; nothing without an eval dataset."""
    if dataset is None:
        return {}
    acc = _accuracy(model_dir, onnx_file, dataset, batch)
    _print_accuracy(label, baseline["fp32"], acc, baseline["eval"], baseline["eval_split"])
    return {**baseline, label.lower(): acc}


def _print_accuracy(
    label: str, fp32: dict[str, Any], other: dict[str, Any], data: str, split: str
) -> None:
    from rich.table import Table

    from cv.log import console

    table = Table(title=f"{label} accuracy change on {data} ({split})")
    for col in ("metric", "FP32", label, "change"):
        table.add_column(col, justify="right")
    for key in ("AP", "AP50", "AP75"):
        a, b = fp32.get(key), other.get(key)
        change = "n/a" if a is None or b is None else f"{b - a:+.4f}"
        table.add_row(
            key,
            "n/a" if a is None else f"{a:.4f}",
            "n/a" if b is None else f"{b:.4f}",
            change,
        )
    console.print(table)


@app.command("triton")
def triton_command(
    model_dir: Path = typer.Argument(..., help="Exported model directory (with model.onnx)."),
    repo: Path = typer.Option(..., help="Triton model repository folder (created)."),
    name: str | None = typer.Option(
        None, help="Model name in the repository; default: record name."
    ),
    version: int = typer.Option(1, min=1, help="Version folder number."),
    max_batch: int = typer.Option(16, min=1, help="Largest batch Triton forms."),
    preferred: str = typer.Option("4,8", help="Preferred batch sizes, comma separated."),
    max_queue_delay_us: int = typer.Option(2000, min=0, help="Longest wait for a batch (µs)."),
    instances: int = typer.Option(1, min=1, help="Model instances per device."),
    gpu: bool = typer.Option(False, "--gpu", help="KIND_GPU instances (default KIND_CPU)."),
    backend: str = typer.Option(
        "onnxruntime", help="Triton backend: onnxruntime (CPU or GPU) or openvino (CPU only)."
    ),
) -> None:
    """Write a Triton model repository (config.pbtxt with dynamic batching, version folder)."""
    from cv.errors import ConfigError
    from cv.log import console
    from cv.models.load import load_record
    from cv.models.triton import write_triton_repository

    try:
        sizes = [int(s) for s in preferred.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"not a list of integers: {preferred!r}", field="preferred") from None
    record = load_record(model_dir)
    root = write_triton_repository(
        model_dir,
        repo,
        name=name or record.name,
        version=version,
        max_batch_size=max_batch,
        preferred_batch_sizes=[s for s in sizes if s <= max_batch],
        max_queue_delay_us=max_queue_delay_us,
        instance_count=instances,
        kind="KIND_GPU" if gpu else "KIND_CPU",
        backend=backend,  # type: ignore[arg-type]  # checked there
    )
    console.print(f"wrote {root / 'config.pbtxt'} and {root / str(version) / 'model.onnx'}")
