"""``customs-vision export``: Export models: ONNX (FP32 / FP16 / INT8) with a parity check, Triton model repositories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    help="Export models: ONNX (FP32 / FP16 / INT8) with a parity check, Triton model repositories.",
    no_args_is_help=True,
)

PARITY_IMAGES = 8
"""Images the parity check runs on after every export."""


def _dataset_images(path: Path, n: int, *, what: str) -> tuple[Any, list[Any]]:
    """A dataset and up to ``n`` of its images (RGB), spread evenly over it."""
    import numpy as np

    from cv.datasets.formats import load_dataset
    from cv.errors import NotFoundError
    from cv.image import read_image

    if not path.exists():
        raise NotFoundError(f"{what} dataset does not exist", path=path)
    ds = load_dataset(path)
    if not ds.images:
        raise NotFoundError(f"{what} dataset has no images", path=path)
    picks = np.unique(np.linspace(0, len(ds.images) - 1, min(n, len(ds.images))).astype(int))
    return ds, [read_image(ds.image_path(ds.images[i])) for i in picks]


def _synthetic_images(n: int, size: int) -> list[Any]:
    from cv.evaluation.bench_detector import synthetic_images

    return synthetic_images(n, size=size, seed=10_000)


def _print_parity(title: str, report: Any) -> None:
    from rich.table import Table

    from cv.log import console

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
    console.print(
        f"parity (atol={report.atol:g}, rtol={report.rtol:g}): {verdict}", highlight=False
    )


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
    half: bool = typer.Option(False, "--half", help="Also write model.fp16.onnx (for GPUs)."),
    int8: bool = typer.Option(
        False, "--int8", help="Also write model.int8.onnx (static quantisation; needs --calib)."
    ),
    calib: Path | None = typer.Option(None, help="Dataset whose images calibrate INT8."),
    calib_images: int = typer.Option(64, min=1, help="Calibration images taken from --calib."),
    eval_data: Path | None = typer.Option(
        None, "--eval", help="Dataset to report the INT8 accuracy change on (AP, AP50)."
    ),
    simplify: bool = typer.Option(False, "--simplify", help="Simplify the graph with onnxslim."),
    atol: float = typer.Option(1e-3, help="Parity: absolute tolerance on raw outputs."),
    rtol: float = typer.Option(1e-3, help="Parity: relative tolerance on raw outputs."),
    batch: int = typer.Option(8, min=1, help="Batch size of the accuracy evaluation."),
) -> None:
    """Export to ONNX (dynamic batch), check parity with PyTorch; optional FP16 and INT8.

    The parity check runs PyTorch and ONNX Runtime on the same images (from --eval,
    else --calib, else synthetic scans) and exits non-zero beyond the tolerance.
    """
    from cv.errors import ConfigError
    from cv.log import console
    from cv.models.export import export_onnx, parity_check, quantize_int8
    from cv.models.load import load_record
    from cv.models.weights import write_record

    if int8 and calib is None:
        raise ConfigError("--int8 needs --calib PATH (a dataset to calibrate on)", field="calib")
    record = load_record(model_dir)
    out = export_onnx(model_dir, opset=opset, half=half, simplify=simplify)
    console.print(f"wrote {out}" + (f" and {model_dir / 'model.fp16.onnx'}" if half else ""))

    eval_ds = None
    if eval_data is not None:
        eval_ds, check_images = _dataset_images(eval_data, PARITY_IMAGES, what="--eval")
    elif calib is not None:
        _, check_images = _dataset_images(calib, PARITY_IMAGES, what="--calib")
    else:
        check_images = _synthetic_images(PARITY_IMAGES, record.input_size)
    report = parity_check(model_dir, check_images, atol=atol, rtol=rtol, raise_on_failure=False)
    _print_parity("PyTorch vs ONNX Runtime (FP32)", report)
    export_facts: dict[str, Any] = {"opset": opset, "parity": report.to_dict()}

    if report.passed and int8:
        assert calib is not None
        _, calib_pixels = _dataset_images(calib, calib_images, what="--calib")
        q = quantize_int8(model_dir, calib_pixels)
        console.print(f"wrote {q} (calibrated on {len(calib_pixels)} images of {calib})")
        q_report = parity_check(
            model_dir, check_images, onnx_file=q.name, atol=atol, rtol=rtol, raise_on_failure=False
        )
        console.print(
            f"INT8 vs PyTorch: raw outputs differ by up to {q_report.max_abs_diff:.3g} "
            "(expected: quantisation is not exact)",
            highlight=False,
        )
        int8_facts: dict[str, Any] = {"calib": str(calib), "calib_images": len(calib_pixels)}
        if eval_ds is not None:
            fp32 = _accuracy(model_dir, "model.onnx", eval_ds, batch)
            i8 = _accuracy(model_dir, q.name, eval_ds, batch)
            int8_facts.update(eval=str(eval_data), fp32=fp32, int8=i8)
            _print_accuracy(fp32, i8, eval_data)
        else:
            console.print("[yellow]no --eval dataset: the INT8 accuracy change is not measured[/]")
        export_facts["int8"] = int8_facts

    record = load_record(model_dir)
    record.metrics = {**record.metrics, "export": export_facts}
    write_record(record, model_dir)
    if not report.passed:
        from cv.models.export import ParityError

        raise ParityError(
            "ONNX Runtime does not reproduce PyTorch: " + "; ".join(report.problems[:3]),
            path=out,
        )


def _print_accuracy(fp32: dict[str, Any], int8: dict[str, Any], data: Path) -> None:
    from rich.table import Table

    from cv.log import console

    table = Table(title=f"INT8 accuracy change on {data}")
    for col in ("metric", "FP32", "INT8", "change"):
        table.add_column(col, justify="right")
    for key in ("AP", "AP50", "AP75"):
        a, b = fp32.get(key), int8.get(key)
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
    )
    console.print(f"wrote {root / 'config.pbtxt'} and {root / str(version) / 'model.onnx'}")
