"""``customs-vision eval``: COCO and VOC AP, screening detection rate at fixed false-alarm rates.

``eval xray`` evaluates an X-ray detector from a saved predictions file (no model
needed) or by running a model directory first, and writes the report of
:func:`cv.evaluation.report.write_report`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer
from rich.console import Console

from cv.errors import ConfigError, NotFoundError
from cv.log import console
from cv.models.load import check_runtime_options

if TYPE_CHECKING:
    from rich.table import Table

    from cv.evaluation.detection import DetectionMetrics
    from cv.evaluation.screening import BagOperatingPoint, OperatingMode, ScreeningMetrics
    from cv.predictions import Predictions
    from cv.records import Dataset

app = typer.Typer(
    help="Evaluate models: COCO and VOC AP, screening detection rate at fixed false-alarm rates.",
    no_args_is_help=True,
)

# Results (tables) go to stdout so they can be piped; messages go to stderr.
_out = Console()


def parse_operating_point(text: str) -> tuple[OperatingMode, float]:
    """``far=0.05``, ``bag-far=0.05`` or ``recall=0.95`` as ``(mode, target)``.

    Raises:
        ConfigError: If it is neither.
    """
    mode, sep, value = text.partition("=")
    mode = mode.strip().lower()
    try:
        target = float(value)
    except ValueError:
        target = float("nan")
    from cv.evaluation.screening import OPERATING_MODES

    if not sep or mode not in OPERATING_MODES or not 0.0 <= target <= 1.0:
        raise ConfigError(
            f"expected far=RATE, bag-far=RATE or recall=RATE with RATE in [0, 1], got {text!r}",
            field="--operating-point",
        )
    return cast("OperatingMode", mode), target


def parse_class_weights(text: str | None) -> dict[str, float]:
    """``gun=4,gun_part=4,knife=2`` as a class -> weight mapping (empty for ``None``).

    Raises:
        ConfigError: If an entry is not ``CLASS=NUMBER`` or names a class twice.
    """
    weights: dict[str, float] = {}
    for entry in (text or "").split(","):
        if not entry.strip():
            continue
        name, sep, value = entry.partition("=")
        name = name.strip()
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not sep or not name or weight != weight:
            raise ConfigError(
                f"expected CLASS=WEIGHT entries separated by commas, got {entry.strip()!r}",
                field="--class-weights",
            )
        if name in weights:
            raise ConfigError(f"class {name!r} is weighted twice", field="--class-weights")
        weights[name] = weight
    return weights


def select_split(dataset: Dataset, split: str) -> Dataset:
    """The images of ``split``; ``all`` keeps every image.

    A dataset whose images carry no split at all is evaluated whole, with a note,
    because a single annotation file (a COCO test JSON) is often the test set itself.
    """
    from dataclasses import replace

    if split == "all":
        return dataset
    present = sorted({im.split for im in dataset.images if im.split is not None})
    if not present:
        n = len(dataset.images)
        console.print(f"[yellow]note:[/] the dataset assigns no splits; evaluating all {n} images")
        return dataset
    images = [im for im in dataset.images if im.split == split]
    if not images:
        raise NotFoundError(
            f"no images of split {split!r}; the dataset has {', '.join(present)} "
            "(or use --split all)",
            field="--split",
        )
    return replace(dataset, images=images)


def _predict(
    dataset: Dataset,
    model: Path | None,
    *,
    runtime: str,
    batch: int,
    out: Path,
    precision: str = "f32",
) -> Predictions:
    from cv.models.load import load_detector
    from cv.predictions import write_predictions

    if model is None:
        raise ConfigError("give --model DIR or --predictions FILE", field="--model")
    # Loading checks the record and the weights' sha256 before anything runs.
    detector = load_detector(model, runtime=runtime, precision=precision)  # type: ignore[arg-type]
    from cv.models.predict import predict_dataset

    predictions = predict_dataset(
        detector, dataset, batch_size=batch, conf=0.001, iou=0.6, progress=True
    )
    path = write_predictions(predictions, out / "predictions.json")
    console.print(f"predictions: {path}")
    return predictions


def default_operating_point(clean_bags: int) -> str:
    """Where thresholds are chosen unless told: 5 % of clean bags alarm, the way the
    server's alerts fire; 5 % per class on sets without clean bags (the public
    datasets, whose every image holds a threat)."""
    if clean_bags > 0:
        return "bag-far=0.05"
    console.print(
        "[yellow]no clean bag among the evaluated images:[/] thresholds are chosen at "
        "far=0.05 per class; per-class rates add up, so together the classes alarm "
        "on more than 5 % of clean bags"
    )
    return "far=0.05"


def _summary_tables(
    *, detection: DetectionMetrics, voc: dict[str, Any], screening: ScreeningMetrics
) -> list[Table]:
    from rich.table import Table

    s = detection.summary()

    def num(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    head = Table(title=f"X-ray detection: {detection.n_images} images, {detection.n_gt} objects")
    cols = ["AP", "AP50", "AP75", "VOC AP50", "DR@1%", "DR@5%", "DR@10%", "DR@20%"]
    for c in cols:
        head.add_column(c, justify="right")
    dr = [screening.at(x) for x in (0.01, 0.05, 0.10, 0.20)]
    head.add_row(
        num(s["AP"]),
        num(s["AP50"]),
        num(s["AP75"]),
        num(voc["AP50"]),
        *(num(p.detection_rate) if p is not None else "n/a" for p in dr),
    )
    per = Table(title="Per class")
    per.add_column("class")
    for c in ("objects", "AP50", "VOC AP50"):
        per.add_column(c, justify="right")
    for name, v in detection.per_class.items():
        per.add_row(name, str(v["n_gt"]), num(v["AP50"]), num(voc["per_class"].get(name)))
    return [head, per]


@app.command("xray")
def xray(
    data: Path = typer.Option(
        ..., "--data", help="Ground-truth dataset folder or annotation file."
    ),
    fmt: str | None = typer.Option(
        None, "--format", help="Dataset format name; detected from the files by default."
    ),
    predictions: Path | None = typer.Option(
        None, "--predictions", help="A saved predictions file (no model needed)."
    ),
    model: Path | None = typer.Option(
        None, "--model", help="A model directory to run first (writes predictions.json)."
    ),
    runtime: str = typer.Option(
        "onnx", "--runtime", help="Runtime for --model: onnx, openvino or torch."
    ),
    precision: str = typer.Option(
        "f32", "--precision", help="With --runtime openvino: f32, bf16 or auto."
    ),
    batch: int = typer.Option(8, "--batch", min=1, help="Images per batch for --model."),
    out: Path | None = typer.Option(
        None, "--out", help="Report folder (default: CV_RUNS_DIR/eval/<dataset name>)."
    ),
    split: str = typer.Option(
        "test", "--split", help="Evaluate the images of this split (train, val, test, or all)."
    ),
    operating_point: str | None = typer.Option(
        None,
        "--operating-point",
        help="Where per-class thresholds are chosen: far=RATE (false alarms per image "
        "without the class), bag-far=RATE (false alarms per clean bag, all classes "
        "together: what the server's alerts do) or recall=RATE. Default: bag-far=0.05, "
        "or far=0.05 when the evaluated images hold no clean bag.",
    ),
    class_weights: str | None = typer.Option(
        None,
        "--class-weights",
        help="With bag-far: each class's share of the false-alarm budget, e.g. "
        "gun=4,gun_part=4,knife=2 (class c is held to weight × the common rate; "
        "classes not named weigh 1).",
    ),
    classes: str | None = typer.Option(
        None, "--classes", help="Comma-separated classes to evaluate (default: the dataset's)."
    ),
    allow_extra: bool = typer.Option(
        False,
        "--allow-extra",
        help="Accept predictions for images outside the evaluated set (always so with a split).",
    ),
    save_thresholds: bool = typer.Option(
        False,
        "--save-thresholds",
        help="With --model: store the chosen per-class thresholds in its model.json "
        "(the server alerts with them). Choose them on validation data, not the test set.",
    ),
    save_metrics: str | None = typer.Option(
        None,
        "--save-metrics",
        help="With --model: store the headline figures in its model.json under this name "
        "(e.g. heldout-teal).",
    ),
) -> None:
    """Evaluate an X-ray detector: COCO AP, VOC AP50, screening DR at FAR, thresholds, report."""
    from cv.datasets.formats import load_dataset
    from cv.evaluation.detection import confusion_matrix, evaluate
    from cv.evaluation.report import write_report
    from cv.evaluation.screening import (
        bag_alarms,
        check_class_weights,
        choose_thresholds,
        count_clean_bags,
        screening,
    )
    from cv.evaluation.voc import voc_ap50
    from cv.predictions import read_predictions
    from cv.settings import get_settings

    if (predictions is None) == (model is None):
        raise ConfigError(
            "give exactly one of --predictions FILE or --model DIR", field="--predictions"
        )
    if (save_thresholds or save_metrics) and model is None:
        raise ConfigError(
            "--save-thresholds and --save-metrics write into a model: give --model DIR",
            field="--model",
        )
    check_runtime_options(runtime, precision)
    split = split.strip().lower()
    if split not in ("train", "val", "test", "all"):
        raise ConfigError(f"unknown split {split!r}; use train, val, test or all", field="--split")
    if operating_point is not None:
        parse_operating_point(operating_point)  # a typo fails before any work
    weights = parse_class_weights(class_weights)
    wanted = None if classes is None else [c.strip() for c in classes.split(",") if c.strip()]

    full = load_dataset(data, fmt=fmt)
    if weights and (wanted or full.classes):  # before the model runs; default mode bag-far
        mode_asked = parse_operating_point(operating_point)[0] if operating_point else "bag-far"
        check_class_weights(weights, wanted or full.classes, mode_asked)
    dataset = select_split(full, split)
    out_dir = (
        out if out is not None else get_settings().runs_dir / "eval" / (full.name or "dataset")
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    if predictions is not None:
        preds = read_predictions(predictions)
    else:
        preds = _predict(
            dataset, model, runtime=runtime, batch=batch, out=out_dir, precision=precision
        )
    # Predictions made for the whole dataset legitimately cover the other splits.
    extra = allow_extra or len(dataset.images) < len(full.images)

    console.print(f"evaluating {len(dataset.images)} images of {full.name or data}")
    detection = evaluate(dataset, preds, classes=wanted, allow_extra=extra)
    voc = voc_ap50(dataset, preds, classes=wanted, allow_extra=extra)
    screen = screening(dataset, preds, allow_extra=extra)
    if operating_point is None:
        operating_point = default_operating_point(
            count_clean_bags(dataset, preds, classes=wanted, allow_extra=extra)
        )
    mode, target = parse_operating_point(operating_point)
    chosen = choose_thresholds(
        dataset,
        preds,
        mode=mode,
        target=target,
        classes=wanted,
        allow_extra=extra,
        class_weights=weights,
    )
    # What the model's own thresholds (those the server alerts with) do here, read
    # before --save-thresholds replaces them.
    at_model = None
    if model is not None:
        from cv.models.weights import read_record

        served = read_record(model, verify=False).thresholds
        if served:
            at_model = bag_alarms(dataset, preds, served, allow_extra=extra)
    # The confusion matrix at the thresholds the server would alert with, where chosen.
    confusion = confusion_matrix(
        dataset,
        preds,
        classes=wanted,
        score_threshold=chosen.thresholds() or 0.25,
        allow_extra=extra,
    )
    report = write_report(
        out_dir,
        detection=detection,
        voc=voc,
        screening=screen,
        thresholds=chosen,
        dataset_name=f"{full.name or data} ({split})",
        model_summary=preds.model,
        confusion=confusion,
        model_thresholds=at_model,
    )
    if model is not None and (save_thresholds or save_metrics):
        _save_to_model(
            model,
            thresholds=chosen.thresholds() if save_thresholds else None,
            operating_point=operating_point,
            bag=chosen.bag,
            metrics_name=save_metrics,
            figures={
                **detection.summary(),
                "VOC_AP50": voc.get("AP50"),
                **{f"DR@FAR{round(p.far_target * 100)}": p.detection_rate for p in screen.points},
                "images": len(dataset.images),
                "dataset": f"{full.name or data} ({split})",
                **({"at_model_thresholds": at_model.to_dict()} if at_model else {}),
            },
        )
    for table in _summary_tables(detection=detection, voc=voc, screening=screen):
        _out.print(table)
    if not screen.defined:
        console.print(f"[yellow]screening:[/] {screen.note}")
    if chosen.bag is not None:
        b = chosen.bag
        console.print(
            f"thresholds at {operating_point}: {b.class_rates()}; "
            f"together they alarm on {b.far:.3f} of {b.clean_bags} clean bags and "
            f"{b.detection_rate:.3f} of {b.threat_bags} other bags"
        )
    if at_model is not None:
        console.print(f"at the model's own thresholds: {at_model.describe()}")
    console.print(f"report: {report}")


def _save_to_model(
    model_dir: Path,
    *,
    thresholds: dict[str, float] | None,
    operating_point: str,
    metrics_name: str | None,
    figures: dict[str, object],
    bag: BagOperatingPoint | None = None,
) -> None:
    """Writes thresholds and / or figures into ``model.json`` (its hashes re-checked)."""
    from cv.models.weights import read_record, write_record

    record = read_record(model_dir)
    if thresholds is not None:
        record.thresholds = dict(thresholds)
        record.metrics["operating_point"] = operating_point
        # What the thresholds do together per bag (mode bag-far), where chosen.
        if bag is not None:
            record.metrics["operating_point_bag"] = asdict(bag)
        else:
            record.metrics.pop("operating_point_bag", None)
        console.print(f"saved {len(thresholds)} thresholds ({operating_point}) to {model_dir}")
    if metrics_name:
        record.metrics[metrics_name] = figures
        console.print(f"saved figures as {metrics_name!r} to {model_dir}")
    write_record(record, model_dir)


# Imported for its side effect: registers `eval person`.
from cv.cli import reid_pipeline  # noqa: E402, F401
