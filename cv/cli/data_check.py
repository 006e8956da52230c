"""``customs-vision data check`` and ``customs-vision data stats``.

``check`` decodes every image and validates every annotation, prints a summary,
writes ``report.json`` and ``report.md``, and exits 4 when there are errors.
``stats`` describes a dataset from its records alone and writes ``stats.md``,
``stats.json`` and ``stats.png``. Both read any format that
:func:`cv.datasets.formats.load_dataset` knows, and both read on past what a
reader cannot take (unknown classes, malformed entries, unreadable images),
reporting it instead of stopping at the first.
"""

from __future__ import annotations

import inspect
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from cv.cli.data import CLASS_MAP_OPTION, IMAGE_ROOT_OPTION, app, check_image_root
from cv.errors import DataValidationError
from cv.log import console
from cv.settings import get_settings

if TYPE_CHECKING:
    from collections import Counter

    from cv.datasets.formats.common import SourceProblems
    from cv.records import Dataset

# Results (tables) go to stdout so they can be piped; messages and errors go
# to stderr through cv.log's console.
_out = Console()


def _beside(path: Path, folder: str) -> Path:
    """The default output folder for a dataset at ``path``.

    A dataset given as a file (``data.yaml``, a COCO JSON) gets ``folder`` next
    to the file; one given as a directory gets it inside, so that two datasets
    in one parent folder do not overwrite each other's reports.
    """
    return path / folder if path.is_dir() else path.parent / folder


def _load_leniently(
    path: Path,
    fmt: str | None,
    *,
    lenient: bool,
    source_problems: SourceProblems | None = None,
    need_images: bool = False,
    class_map: Path | None = None,
    image_root: Path | None = None,
) -> Dataset:
    """Loads a dataset, leaving what a reader cannot take out with a trace when ``lenient``.

    Readers raise at the first invalid box, unknown class or malformed line by
    default. To list every fault, a reader that can is asked to leave invalid
    boxes out with a trace in ``ImageRecord.meta`` instead (the check reports each
    one as ``invalid_box_in_source`` and the stats count them), and, given a
    ``source_problems`` list, unknown class names, malformed lines, unreadable
    images and the rest of what the reader records too (``unknown_class_in_source``,
    ``malformed_in_source``, ...), with what belongs to no image (an entry naming
    an image that does not exist, a file that cannot be parsed) listed in
    ``source_problems``. With ``need_images`` a COCO-based reader that finds none
    of a file's images raises, naming the folders it looked in.

    Raises:
        ConfigError: If ``image_root`` is given for a format whose reader takes none.
    """
    from cv.datasets.formats import READERS, detect_format, load_dataset

    name = detect_format(path) if fmt is None else fmt.strip().lower()
    entry = READERS.get(name)
    accepted = set() if entry is None else set(inspect.signature(entry.read).parameters)
    options: dict[str, object] = {}
    if lenient and "invalid_boxes" in accepted:
        options["invalid_boxes"] = "drop"
    if lenient and source_problems is not None and "problems" in accepted:
        options["problems"] = "record"
        if "source_problems" in accepted:
            options["source_problems"] = source_problems
    if need_images and "missing_images" in accepted:
        options["missing_images"] = "raise"
    if image_root is not None:
        check_image_root(name)
        options["image_root"] = image_root
    return load_dataset(path, fmt=name, class_map=class_map, **options)


@app.command("check")
def check(
    path: Path = typer.Argument(..., help="Dataset folder or annotation file."),
    fmt: str | None = typer.Option(
        None, "--format", help="Dataset format name; detected from the files by default."
    ),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first error (exit 4)."),
    classes: str | None = typer.Option(
        None,
        "--classes",
        help="Comma-separated taxonomy names that annotations must belong to.",
    ),
    class_map: Path | None = CLASS_MAP_OPTION,
    image_root: Path | None = IMAGE_ROOT_OPTION,
    report: Path | None = typer.Option(
        None,
        "--report",
        help="Folder for report.json and report.md (default: check/ inside a dataset folder, beside a dataset file).",
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        help="Processes decoding images (default: CV_WORKERS, else one per core).",
    ),
    fix_out: Path | None = typer.Option(
        None, "--fix-out", help="Write the dataset without what has errors here, as COCO JSON."
    ),
    fix_drop: str = typer.Option(
        "image",
        "--fix-drop",
        help="What --fix-out leaves out for a bad box: the whole 'image' or only the "
        "'annotation' (the object is then unlabelled in its image).",
    ),
    show: int = typer.Option(20, "--show", min=0, help="Findings to print."),
) -> None:
    """Validate a dataset: images, sizes, boxes, classes, duplicates."""
    from cv.datasets.check import check_dataset, clean_dataset, findings_table, summary_table
    from cv.datasets.formats import summarize

    if fix_drop not in ("image", "annotation"):
        raise typer.BadParameter("must be 'image' or 'annotation'", param_hint="--fix-drop")
    allowed = None if classes is None else [c.strip() for c in classes.split(",") if c.strip()]
    n_workers = workers if workers is not None else get_settings().resolved_workers()

    found: SourceProblems = []
    dataset = _load_leniently(
        path,
        fmt,
        lenient=not strict,
        source_problems=found,
        need_images=True,  # images nowhere to be found: one clear error, not N findings
        class_map=class_map,
        image_root=image_root,
    )
    result = check_dataset(
        dataset, strict=strict, classes=allowed, workers=n_workers, source_problems=found
    )

    left_out = None
    if fix_out is not None:
        from cv.datasets.formats.coco import write_coco

        drop = "annotation" if fix_drop == "annotation" else "image"
        cleaned, left_out = clean_dataset(dataset, result, drop=drop)
        write_coco(cleaned, fix_out)
        console.print(
            f"cleaned dataset: {len(cleaned.images)} of {len(dataset.images)} images, "
            f"{len(left_out)} items left out -> {fix_out}"
        )

    out_dir = report if report is not None else _beside(path, "check")
    json_path = result.write_json(out_dir / "report.json", left_out=left_out)
    md_path = result.write_markdown(out_dir / "report.md", left_out=left_out)

    _out.print(summary_table(result))
    if result.findings and show:
        _out.print(findings_table(result, limit=show))
    console.print(f"report: {md_path} and {json_path}")
    _tell_unknown(summarize(dataset).unknown)
    if not result.ok:
        raise DataValidationError(
            f"{len(result.errors)} errors and {len(result.warnings)} warnings in "
            f"{result.images} images; see the report",
            path=md_path,
        )
    console.print(f"[green]ok[/]: no errors, {len(result.warnings)} warnings")


@app.command("stats")
def stats(
    path: Path = typer.Argument(..., help="Dataset folder or annotation file."),
    fmt: str | None = typer.Option(
        None, "--format", help="Dataset format name; detected from the files by default."
    ),
    class_map: Path | None = CLASS_MAP_OPTION,
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Folder for stats.md, stats.json, stats.png (default: stats/ inside a dataset folder, beside a dataset file).",
    ),
) -> None:
    """Describe a dataset: counts per class and split, box sizes, occlusion, image sizes."""
    from cv.datasets.stats import dataset_stats, render_tables

    # Lenient like `check`: what the reader leaves out (invalid boxes, unknown
    # classes, malformed entries) is counted in the stats, not a reason to stop.
    found: SourceProblems = []
    dataset = _load_leniently(path, fmt, lenient=True, source_problems=found, class_map=class_map)
    result = dataset_stats(dataset, source_problems=found)
    out_dir = out if out is not None else _beside(path, "stats")
    written = [
        result.write_markdown(out_dir / "stats.md"),
        result.write_json(out_dir / "stats.json"),
        result.plot(out_dir / "stats.png"),
    ]
    for table in render_tables(result):
        _out.print(table)
    console.print("wrote " + ", ".join(str(p) for p in written))
    _tell_unknown(Counter({n: int(u["objects"]) for n, u in result.unknown_classes.items()}))
    # Objects in images whose header cannot be read were read but cannot be
    # placed without a size: they are as missing from the counts as the rest.
    unplaced = result.reader_traces["objects_in_unreadable_images"]
    unread = unplaced + sum(
        result.reader_traces[k] for k in ("malformed_entries_left_out", "orphan_entries_left_out")
    )
    if unread:
        of_them = (
            f" ({unplaced} of them objects in images whose header cannot be read)"
            if unplaced
            else ""
        )
        console.print(
            f"{unread} annotation entries or files could not be read and are not "
            f"counted{of_them}; `customs-vision data check {path}` lists each with its "
            "file and line",
            highlight=False,
        )


def _tell_unknown(unknown: Counter[str]) -> None:
    """Names the classes the class map does not know, and how to map them."""
    if unknown:
        names = ", ".join(f"{n or '(empty)'} x{k}" for n, k in sorted(unknown.items()))
        console.print(
            f"classes the class map does not know: {names}; map them to taxonomy classes "
            "(or to null to drop them) in a class-map YAML and pass it with --class-map FILE",
            highlight=False,
        )
