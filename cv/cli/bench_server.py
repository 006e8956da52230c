"""``customs-vision bench server``: scans/s and upload-to-alert latency through the server."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cv.cli.bench import app


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


@app.command("server")
def server(
    model: Path | None = typer.Option(
        None,
        help="Model directory to serve and time bare; default: the shipped "
        "models/zoo/xray-yolo11n, else an untrained yolo11n exported to a temporary folder.",
    ),
    url: str | None = typer.Option(
        None, help="Drive this running server instead of starting one (needs the tokens)."
    ),
    scanner_token: str | None = typer.Option(
        None, envvar="CV_BENCH_SCANNER_TOKEN", help="With --url: a scanner token."
    ),
    inspector_token: str | None = typer.Option(
        None, envvar="CV_BENCH_INSPECTOR_TOKEN", help="With --url: an inspector token."
    ),
    images: int = typer.Option(32, min=1, help="Synthetic scans posted (cycled)."),
    size: int = typer.Option(640, min=64, help="Side of the synthetic scans in pixels."),
    uploaders: int = typer.Option(8, min=1, max=64, help="Concurrent uploaders (throughput)."),
    seconds: float = typer.Option(20.0, min=1.0, max=600.0, help="Measured throughput seconds."),
    warmup: float = typer.Option(3.0, min=0.0, max=60.0, help="Unmeasured seconds before."),
    handhelds: int = typer.Option(50, min=1, max=500, help="Open SSE streams (latency)."),
    latency_scans: int = typer.Option(100, min=1, max=5000, help="Uploads in the latency phase."),
    rate: float | None = typer.Option(
        None, min=0.1, help="Uploads/s in the latency phase (default: half the throughput, ≤ 10)."
    ),
    max_batch: int | None = typer.Option(None, min=1, help="The started server's largest batch."),
    max_wait_ms: float | None = typer.Option(None, min=0.0, help="Its batch wait in ms."),
    runtime: str = typer.Option(
        "onnx", help="The started server's runtime: onnx or openvino (or torch)."
    ),
    precision: str = typer.Option("f32", help="With --runtime openvino: f32, bf16 or auto."),
    instances: int | None = typer.Option(
        None, min=1, max=16, help="The started server's model instances (its default: 2)."
    ),
    threads: int | None = typer.Option(
        None, min=1, help="Its runtime threads per batch (default: cores / instances)."
    ),
    out: Path | None = typer.Option(None, help="Write the figures as JSON here."),
) -> None:
    """Server vs the bare ONNX Runtime session (and its own runtime's bare run), and
    p50 / p99 upload-to-alert latency."""
    import logging

    from rich.table import Table

    from cv.errors import ConfigError
    from cv.evaluation.bench_server import bench_server
    from cv.log import console

    # A log line per request would cost the client CPU that the server needs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    tokens = None
    if url is not None:
        if not (scanner_token and inspector_token):
            raise ConfigError(
                "--url needs --scanner-token and --inspector-token", field="scanner_token"
            )
        tokens = {"scanner": scanner_token, "inspector": inspector_token}
    result = bench_server(
        model,
        url=url,
        tokens=tokens,
        images=images,
        size=size,
        uploaders=uploaders,
        seconds=seconds,
        warmup_s=warmup,
        handhelds=handhelds,
        latency_scans=latency_scans,
        rate=rate,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        runtime=runtime,
        precision=precision,
        instances=instances,
        threads=threads,
    )
    tp, bare, one, lat = (
        result["throughput"],
        result["bare_batch"],
        result["bare_batch1"],
        result["latency"],
    )
    table = Table(
        title=f"inference server over HTTP on loopback, {result['images']} scans "
        f"{result['size']}×{result['size']} px, model input {result['input_size']} px "
        f"({result['model']}), server runtime {result['runtime']}"
    )
    for col in ("what", "measured", "ratio", "target"):
        table.add_column(col, justify="right")
    table.add_row(
        f"(a) server, {tp['uploaders']} uploaders, {tp['seconds']:g} s",
        f"{tp['scans_per_s']:.2f} scans/s",
        "",
        "",
    )
    table.add_row(
        f"(b) bare ORT session.run, batch {bare['batch']} (server's mean "
        f"{tp['mean_batch']:.2f}), letterboxed tensors",
        f"{bare['images_per_s']:.2f} images/s",
        f"(a) = {result['ratio_vs_bare']:.2f} of (b)",
        f"≥ {result['target_vs_bare']:g}",
    )
    own, own_one = result["bare_own_batch"], result["bare_own_batch1"]
    if runtime != "onnx":
        table.add_row(
            f"(b') bare {result['runtime']} infer, batch {own['batch']}",
            f"{own['images_per_s']:.2f} images/s",
            f"(a) = {result['ratio_vs_own_bare']:.2f} of (b')",
            "",
        )
    table.add_row(
        f"(c) bare {result['runtime']}, batch 1 (median)",
        f"{own_one['batch_ms_p50']:.1f} ms",
        "" if runtime == "onnx" else f"ORT: {one['batch_ms_p50']:.1f} ms",
        "",
    )
    table.add_row(
        f"(d) upload → alert at all {lat['handhelds']} handhelds, p50 / p99",
        f"{_ms(lat['all_ms']['p50'])} / {_ms(lat['all_ms']['p99'])} ms",
        "-" if result["latency_ratio"] is None else f"p99 = {result['latency_ratio']:.2f}× target",
        f"≤ 2 × (c) + 50 = {result['latency_target_ms']:.1f} ms",
    )
    table.add_row(
        "(e) upload → alert at the first handheld, p50 / p99",
        f"{_ms(lat['first_ms']['p50'])} / {_ms(lat['first_ms']['p99'])} ms",
        "",
        "",
    )
    table.add_row(
        "(f) upload answered (201), p50 / p99",
        f"{_ms(lat['upload_answer_ms']['p50'])} / {_ms(lat['upload_answer_ms']['p99'])} ms",
        "",
        "",
    )
    console.print(table)
    notes = [
        f"latency phase: {lat['scans']} uploads at {lat['rate']:.2f}/s, "
        f"{lat['alerting_scans']} alerted, {lat['incomplete_deliveries']} not delivered to "
        f"every handheld, {lat['upload_failures']} failed uploads",
        f"throughput phase: {tp['scans']} scans counted, {tp['rejected_429']} answered 429, "
        f"{tp['errors']} other errors",
    ]
    if result["alert_all"]:
        notes.append(
            f"latency model: thresholds {result['alert_all']['threshold']:.3g} on every class, "
            f"{result['alert_all']['boxes_per_alert']:.1f} boxes per alert"
        )
    else:
        notes.append("latency counts only the scans that alerted (a running server's thresholds)")
    if tp["server_cpu_ms_per_scan"] is not None:
        notes.append(
            f"CPU per scan: server {tp['server_cpu_ms_per_scan']:.1f} ms "
            f"({tp['server_cores']:.2f} cores busy), this client "
            f"{tp['client_cpu_ms_per_scan']:.1f} ms; bare {result['runtime']} "
            f"{own['cpu_ms_per_image']:.1f} ms per image ({own['cores']:.2f} cores busy)"
        )
    notes.append(
        f"decoding one PNG upload: {result['decode_ms']:.1f} ms; a server doing nothing but "
        f"the model and the decode on the same cores: at most "
        f"{result['ratio_model_and_decode_only']:.2f} of the bare run"
    )
    for note in notes:
        console.print(note, highlight=False)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str))
        console.print(f"figures written to {out}", highlight=False)
