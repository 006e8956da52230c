"""``customs-vision bench detector``: ultralytics predict vs our ONNX Runtime path."""

from __future__ import annotations

from pathlib import Path

import typer

from cv.cli.bench import app


@app.command("detector")
def detector(
    model: Path | None = typer.Option(
        None,
        help="Exported model directory; default: the shipped models/zoo/xray-yolo11n, "
        "else an untrained yolo11n exported to a temporary folder.",
    ),
    data: Path | None = typer.Option(None, help="Dataset to take images from (any format)."),
    images: int = typer.Option(100, min=1, help="Number of images (synthetic scans)."),
    scan_size: int = typer.Option(640, min=32, help="Side of the synthetic scans."),
    untrained: int | None = typer.Option(
        None,
        "--untrained",
        min=32,
        help="Time an untrained yolo11n at this network input size instead of a model "
        "(e.g. 640 for the issue's 640 px figure).",
    ),
    conf: float = typer.Option(0.25, min=0.0, max=1.0, help="Score threshold of both paths."),
    warmup: int = typer.Option(5, min=0, help="Untimed calls before measuring."),
    int8: bool = typer.Option(
        False,
        "--int8",
        help="Also time our path on the INT8 graph (model.int8.onnx; made and "
        "calibrated on the benchmark images for --untrained).",
    ),
    openvino: bool = typer.Option(
        True,
        "--openvino/--no-openvino",
        help="Also time our path on OpenVINO (FP32, and bfloat16 where the CPU has it).",
    ),
) -> None:
    """Images/s of ultralytics' predict (PyTorch), our ONNX Runtime and OpenVINO paths
    and their bare runs."""
    from rich.table import Table

    from cv.evaluation.bench_detector import bench_detector, dataset_images
    from cv.log import console
    from cv.models.load import default_model_dir

    model_dir = model
    if model_dir is None and untrained is None and default_model_dir().is_dir():
        model_dir = default_model_dir()
    if model_dir is None:
        console.print(
            "[yellow]no shipped model: timing an untrained yolo11n (13 classes) exported "
            "to a temporary folder[/]"
        )
    pixels = dataset_images(data, images) if data is not None else None
    result = bench_detector(
        model_dir,
        images=pixels,
        n_images=images,
        scan_size=scan_size,
        untrained_input_size=untrained or 640,
        conf=conf,
        warmup=warmup,
        int8=int8,
        openvino=openvino,
    )
    table = Table(
        title=f"detector, batch 1, {result['images']} images, network input "
        f"{result['input_size']} px, "
        f"conf {conf:g} ({result['model']})"
    )
    for col in ("path", "images/s", "ratio", "target"):
        table.add_column(col, justify="right")
    table.add_row(
        f"(a) ultralytics predict, PyTorch, its {result['torch_threads']} thread(s)",
        f"{result['ultralytics_ips']:.2f}",
        "",
        "",
    )
    table.add_row(
        f"(a') ultralytics predict, PyTorch, {result['physical_cores']} threads",
        f"{result['ultralytics_all_cores_ips']:.2f}",
        "",
        "",
    )
    table.add_row(
        "(b) ours: ONNX Runtime, full path",
        f"{result['ours_ips']:.2f}",
        f"{result['ratio_vs_ultralytics']:.2f}× (a), "
        f"{result['ratio_vs_ultralytics_all_cores']:.2f}× (a')",
        f"≥ {result['target_vs_ultralytics']:g}×",
    )
    table.add_row(
        "(c) bare ORT session.run",
        f"{result['bare_ips']:.2f}",
        f"(b) = {result['ratio_vs_bare']:.2f} of (c)",
        f"≥ {result['target_vs_bare']:g}",
    )
    if "int8_ips" in result:
        table.add_row(
            "(d) ours on the INT8 graph, full path",
            f"{result['int8_ips']:.2f}",
            f"{result['ratio_int8_vs_ultralytics']:.2f}× (a), "
            f"{result['ratio_int8_vs_ultralytics_all_cores']:.2f}× (a'), "
            f"{result['ratio_int8_vs_ours']:.2f}× (b)",
            f"≥ {result['target_vs_ultralytics']:g}× (a)",
        )
    names = {"f32": "FP32", "bf16": "bfloat16"}
    for precision, fig in (result.get("openvino") or {}).items():
        table.add_row(
            f"(e) ours: OpenVINO {names[precision]}, full path",
            f"{fig['ips']:.2f}",
            f"{fig['ratio_vs_ultralytics']:.2f}× (a), "
            f"{fig['ratio_vs_ultralytics_all_cores']:.2f}× (a'), {fig['ratio_vs_ours']:.2f}× (b)",
            f"≥ {result['target_vs_ultralytics']:g}× (a)",
        )
        table.add_row(
            f"(e') bare OpenVINO {names[precision]} infer",
            f"{fig['bare_ips']:.2f}",
            f"(e) = {fig['ratio_vs_bare']:.2f} of (e')",
            f"≥ {result['target_vs_bare']:g}",
        )
    console.print(table)
    if result.get("openvino_note"):
        console.print(f"[yellow]note:[/] {result['openvino_note']}", highlight=False)
    console.print(
        f"ORT intra-op threads {result['ort_threads']}, providers {', '.join(result['providers'])}",
        highlight=False,
    )
