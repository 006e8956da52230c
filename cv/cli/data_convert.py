"""``customs-vision data convert`` and ``bench convert``.

Convert reads a public dataset from its own files into the one model
(:mod:`cv.datasets.formats`) and writes it as a YOLO folder and / or COCO JSON,
then prints what it holds and what was left out (dropped by the class map,
clipped, invalid). A source without a train split (a test set on its own)
converts to a folder for evaluation only, and convert says so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cv import log
from cv.cli.bench import app as bench_app
from cv.cli.data import CLASS_MAP_OPTION, IMAGE_ROOT_OPTION, app, check_image_root
from cv.datasets.formats.common import DEFAULT_SPLIT_RATIOS
from cv.errors import ConfigError

_TARGETS = ("yolo", "coco")
_IMAGE_MODES = ("symlink", "copy", "hardlink")


def _parse_ratios(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(
            f"expected three numbers like 0.8,0.1,0.1, got {text!r}", field="--split-ratios"
        ) from None
    if len(values) != 3 or any(v < 0 for v in values) or abs(sum(values) - 1) > 1e-6:
        raise ConfigError(
            f"expected three non-negative numbers summing to 1, got {text!r}",
            field="--split-ratios",
        )
    return values  # type: ignore[return-value]


@app.command("convert")
def convert(
    src: Path = typer.Argument(..., help="The dataset's folder or annotation file."),
    fmt: str | None = typer.Option(
        None,
        "--format",
        "-f",
        help="Source format (opixray, pidray, coco, ...); detected if left out.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    to: str = typer.Option("yolo,coco", "--to", help="Outputs, comma separated: yolo, coco."),
    class_map: Path | None = CLASS_MAP_OPTION,
    image_root: Path | None = IMAGE_ROOT_OPTION,
    images: str = typer.Option(
        "symlink", "--images", help="How YOLO gets the images: symlink, copy or hardlink."
    ),
    split_ratios: str = typer.Option(
        ",".join(f"{r:g}" for r in DEFAULT_SPLIT_RATIOS),
        "--split-ratios",
        help="train,val,test fractions for images the source gives no split.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of that random split."),
    gdxray_columns: str | None = typer.Option(
        None, "--gdxray-columns", help="GDXray box column order: x1x2y1y2 (default) or x1y1x2y2."
    ),
    invalid_boxes: str = typer.Option(
        "raise", "--invalid-boxes", help="Empty or outside boxes: raise, or drop them with a count."
    ),
) -> None:
    """Convert a public X-ray dataset from its own files to YOLO and / or COCO."""
    from cv.datasets.formats import (
        detect_format,
        formats_taking,
        load_dataset,
        summarize,
        write_coco,
        write_yolo,
        yolo_layout,
    )
    from cv.datasets.formats.common import assign_splits

    targets = [t.strip().lower() for t in to.split(",") if t.strip()]
    bad = [t for t in targets if t not in _TARGETS]
    if not targets or bad:
        raise ConfigError(f"--to takes yolo and/or coco, got {to!r}", field="--to")
    if images not in _IMAGE_MODES:
        raise ConfigError(
            f"--images takes {', '.join(_IMAGE_MODES)}, got {images!r}", field="--images"
        )
    if invalid_boxes not in ("raise", "drop"):
        raise ConfigError(
            f"--invalid-boxes takes raise or drop, got {invalid_boxes!r}", field="--invalid-boxes"
        )
    ratios = _parse_ratios(split_ratios)
    name = fmt.strip().lower() if fmt else detect_format(src)
    options: dict[str, object] = {"invalid_boxes": invalid_boxes}
    if gdxray_columns is not None:
        if name != "gdxray":
            raise ConfigError(
                "--gdxray-columns applies to --format gdxray only", field="--gdxray-columns"
            )
        options["columns"] = gdxray_columns
    if image_root is not None:
        check_image_root(name)
        options["image_root"] = image_root
    if name in formats_taking("missing_images"):
        options["missing_images"] = "raise"  # the YOLO copy needs the pixels
    dataset = load_dataset(src, fmt=name, class_map=class_map, **options)
    assigned = assign_splits(dataset, ratios=ratios, seed=seed)

    written: list[Path] = []
    coco_source = dataset
    if "yolo" in targets:
        written.append(write_yolo(dataset, out, images=images))  # type: ignore[arg-type]
        # Point the COCO files at the YOLO copies, so the output folder stands alone.
        coco_source = dataclasses.replace(
            dataset,
            root=out,
            images=[
                dataclasses.replace(rec, file=f"images/{split}/{fname}")
                for rec, (split, fname) in zip(dataset.images, yolo_layout(dataset), strict=True)
            ],
        )
    if "coco" in targets:
        for split in sorted({rec.split or "train" for rec in coco_source.images}):
            recs = [r for r in coco_source.images if (r.split or "train") == split]
            part = dataclasses.replace(coco_source, images=recs)
            written.append(
                write_coco(
                    part, out / "annotations" / f"{split}.json", classes=dataset.classes or None
                )
            )

    stats = summarize(dataset)
    console = Console()
    table = Table(title=f"{name}: {src}", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("images", str(stats.images))
    table.add_row("  clean (no object)", str(stats.clean_images))
    for split, n in sorted(stats.per_split.items()):
        table.add_row(f"  split {split}", str(n))
    if assigned:
        table.add_row(f"  split given here (seed {seed})", str(assigned))
    table.add_row("boxes", str(stats.boxes))
    for cls, n in sorted(stats.per_class.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(f"  {cls}", str(n))
    for orig, n in sorted(stats.dropped.items()):
        table.add_row(f"dropped by class map: {orig or '(empty)'}", str(n))
    table.add_row("boxes clipped to the image", str(stats.clipped))
    table.add_row("invalid boxes dropped", str(stats.invalid))
    if stats.unboxed:
        table.add_row("images with labels but no boxes", str(stats.unboxed))
    console.print(table)
    for p in written:
        console.print(f"wrote {p}", highlight=False)
    if not any(rec.split == "train" for rec in dataset.images):
        log.console.print(
            f"[yellow]note:[/] the source has no train split: {out} is for evaluation only "
            f"(customs-vision eval xray --data {out}, ultralytics val); train xray refuses it",
            highlight=False,
        )


@bench_app.command("convert")
def bench_convert_cmd(
    annotations: int = typer.Option(
        100_000, "--annotations", min=1, help="Annotations to convert."
    ),
    per_image: int = typer.Option(10, "--per-image", min=1, help="Annotations per image."),
) -> None:
    """Time COCO -> model -> YOLO + COCO on a generated file (target: 100k annotations < 10 s)."""
    from cv.evaluation.bench_convert import bench_convert

    r = bench_convert(annotations, per_image=per_image)
    console = Console()
    console.print(
        f"converted {r['annotations']:,} annotations in {r['images']:,} images in "
        f"{r['seconds']:.2f} s (read {r['read_s']:.2f} s, YOLO {r['yolo_s']:.2f} s, "
        f"COCO {r['coco_s']:.2f} s): {r['annotations_per_s']:,.0f} annotations/s; "
        f"{r['ratio_to_target']:.2f} x the {r['target_s']:.0f} s target",
        highlight=False,
    )
