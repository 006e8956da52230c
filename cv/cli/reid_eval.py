"""``customs-vision eval reid`` (alias ``reid eval``): evaluate a re-ID embedder.

Market-1501 ranking (CMC, mAP, mINP), TPR at fixed false-match rates, and the
watch-list match threshold; writes the report of
:func:`cv.evaluation.reid.write_reid_report` and, on request, stores the
threshold and the figures in the model's ``model.json`` through the same code
path as ``eval xray --save-thresholds / --save-metrics``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cv.cli.eval import app as eval_app
from cv.cli.reid import app

# Results (tables) go to stdout so they can be piped; messages go to stderr.
_out = Console()

_RUNTIMES = ("onnx", "torch")


def eval_reid_command(
    model: Path = typer.Option(
        ..., "--model", help="Re-ID model directory (model.json; model.onnx for --runtime onnx)."
    ),
    data: Path = typer.Option(
        ..., "--data", help="Re-ID dataset folder (Market-1501 or MSMT17 layout)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Report folder (default: CV_RUNS_DIR/eval/reid-<dataset name>)."
    ),
    runtime: str = typer.Option("onnx", "--runtime", help="onnx or torch."),
    fpr: float = typer.Option(
        1e-3,
        "--fpr",
        min=0.0,
        max=1.0,
        help="False-match rate at which the match threshold is chosen.",
    ),
    verify: str = typer.Option(
        "images",
        "--verify",
        help="Verification pairs and the threshold against gallery 'images' or 'tracklets' "
        "(a person's gallery images on one camera averaged, as the watch-list matcher "
        "averages a track's crops). Ranking is per image either way.",
    ),
    batch: int = typer.Option(64, "--batch", min=1, help="Crops per embedder call."),
    max_rank: int = typer.Option(50, "--max-rank", min=1, help="Length of the CMC curve."),
    save_threshold: bool = typer.Option(
        False,
        "--save-threshold",
        help="Store the match threshold in the model's model.json (thresholds.match), which "
        "the watch-list matcher uses. Choose it on data from the site's cameras, not the test set.",
    ),
    save_metrics: str | None = typer.Option(
        None,
        "--save-metrics",
        help="Store the headline figures in the model's model.json under this name "
        "(e.g. heldout-synth).",
    ),
) -> None:
    """Evaluate a re-ID embedder: CMC, mAP, mINP, TPR at FPR, the match threshold, report."""
    from rich.table import Table

    from cv.cli.eval import _save_to_model
    from cv.datasets.reid import read_reid
    from cv.errors import ConfigError, NotFoundError
    from cv.evaluation.reid import evaluate_embedder, query_and_gallery, write_reid_report
    from cv.log import console
    from cv.models.reid import load_embedder, read_reid_record
    from cv.settings import get_settings

    if verify not in ("images", "tracklets"):
        raise ConfigError(f"--verify must be images or tracklets, got {verify!r}", field="--verify")
    if runtime not in _RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}; use onnx or torch", field="--runtime")
    if not data.exists():
        raise NotFoundError("re-ID dataset folder does not exist", path=data, field="--data")
    # The record first: a model that is not a re-ID embedder fails before anything loads.
    read_reid_record(model)
    dataset = read_reid(data)
    query_and_gallery(dataset)  # an empty query set fails before the model loads
    embedder = load_embedder(model, runtime=runtime)  # type: ignore[arg-type]
    out_dir = out if out is not None else get_settings().runs_dir / "eval" / f"reid-{dataset.name}"
    console.print(
        f"evaluating {model} ({runtime}) on {dataset.name}: {len(dataset.query)} query, "
        f"{len(dataset.gallery)} gallery images"
    )
    report = evaluate_embedder(
        embedder,
        dataset,
        batch=batch,
        target_fpr=fpr,
        max_rank=max_rank,
        verify=verify,
        progress=True,
    )
    path = write_reid_report(out_dir, report)
    if save_threshold or save_metrics:
        _save_to_model(
            model,
            thresholds={"match": report.threshold} if save_threshold else None,
            operating_point=f"fpr={fpr:g}" + (" per tracklet" if verify == "tracklets" else ""),
            metrics_name=save_metrics,
            figures=report.figures(),
        )

    m, v = report.metrics, report.verification
    ranking = Table(
        title=f"re-ID ranking: {m.num_valid_queries} queries, {m.num_gallery} gallery images "
        f"({dataset.name})"
    )
    for c in ("rank-1", "rank-5", "rank-10", "mAP", "mINP"):
        ranking.add_column(c, justify="right")
    ranking.add_row(*(f"{m.rank(k):.3f}" for k in (1, 5, 10)), f"{m.mAP:.3f}", f"{m.mINP:.3f}")
    pairs = Table(title=f"verification: {v.n_pos} positive, {v.n_neg} negative pairs")
    for c in ("FPR target", "threshold", "FPR", "TPR"):
        pairs.add_column(c, justify="right")
    for p in v.points:
        star = "" if p.resolved else "*"
        pairs.add_row(
            f"{p.fpr_target:g}{star}", f"{p.threshold:.4f}", f"{p.fpr:.2e}", f"{p.tpr:.3f}"
        )
    _out.print(ranking)
    _out.print(pairs)
    _out.print(f"match threshold: {report.threshold:.4f} (cosine similarity) at FPR {fpr:g}")
    if not all(p.resolved for p in v.points):
        console.print(
            f"[yellow]note:[/] * fewer than 1/FPR negative pairs ({v.n_neg}): the threshold "
            "is above every negative, the FPR is not resolved"
        )
    console.print(f"report: {path}")


app.command("eval")(eval_reid_command)
eval_app.command("reid")(eval_reid_command)
