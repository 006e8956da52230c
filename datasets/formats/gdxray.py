"""GDXray Baggage: grey-scale series ``Bssss`` with one ``ground_truth.txt`` each.

Layout: ``Baggage/B0046/B0046_0001.png`` ... and ``Baggage/B0046/ground_truth.txt``,
one row per box: ``k x1 x2 y1 y2``, where ``k`` is the image number and the
corners are 1-based pixels. The column order is uncertain (the reference code's
comment and its plotting disagree), so it is an option: ``x1x2y1y2`` (default)
or ``x1y1x2y2``. A row may end with a class name; otherwise the class is the
series' (:data:`SERIES_NAMES`). Series without ``ground_truth.txt`` are not
annotated and are skipped, with a log line naming how many.

The detection split of the GDXray papers is applied when those series are
present: train B0049-B0051, test B0046-B0048.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Literal

from cv.boxes import corners1_to_xyxy
from cv.datasets.classmap import ClassMap, resolve_class_map
from cv.datasets.formats.common import (
    InvalidBoxes,
    Problems,
    SourceProblems,
    add_object,
    make_dataset,
    parse_number,
    read_size,
    recording_problems,
    recording_source_problems,
    relative_file,
    text_rows,
)
from cv.datasets.formats.registry import register_reader
from cv.errors import ConfigError, DataFormatError, DataValidationError, NotFoundError
from cv.log import progress
from cv.records import Dataset, ImageRecord, Split

log = logging.getLogger(__name__)

Columns = Literal["x1x2y1y2", "x1y1x2y2"]

SERIES_NAMES: dict[str, str] = {
    # The detection series of the GDXray baggage experiments, one threat kind
    # each (unverified: taken from the papers' descriptions, not the files).
    "B0046": "handgun",
    "B0047": "shuriken",
    "B0048": "razor blade",
    "B0049": "handgun",
    "B0050": "shuriken",
    "B0051": "razor blade",
}
DETECTION_SPLIT: dict[str, Split] = {
    "B0049": "train",
    "B0050": "train",
    "B0051": "train",
    "B0046": "test",
    "B0047": "test",
    "B0048": "test",
}
_SERIES = re.compile(r"^B\d{4}$")
_GT = "ground_truth.txt"


def _series_dirs(root: Path) -> list[Path]:
    if _SERIES.match(root.name):
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and _SERIES.match(p.name))


def _detect(path: Path) -> bool:
    return path.is_dir() and any((d / _GT).is_file() for d in _series_dirs(path))


@register_reader("gdxray", detect=_detect)
def read_gdxray(
    path: Path,
    *,
    class_map: ClassMap | str | PathLike[str] | None = None,
    columns: Columns = "x1x2y1y2",
    series_names: Mapping[str, str] | None = None,
    invalid_boxes: InvalidBoxes = "raise",
    problems: Problems = "raise",
    source_problems: SourceProblems | None = None,
) -> Dataset:
    """GDXray Baggage from its own series folders.

    Args:
        path: The ``Baggage`` folder (holding ``Bssss`` series), or one series folder.
        class_map: Map of the class names; by default the shipped ``gdxray`` map.
        columns: Order of the four box columns after ``k``.
        series_names: Class name of each series' boxes where a row names none;
            default :data:`SERIES_NAMES`.
        invalid_boxes: ``raise`` on an empty or outside box, or ``drop`` it with a trace.
        problems: ``raise`` at an unknown class, malformed row or unreadable
            image, or ``record`` it with a trace on the row's image and read on.
        source_problems: Under ``record``, where a row whose image number is not
            one of the series' images is listed (it raises without this list).

    Raises:
        ConfigError: If ``columns`` is not one of the two orders.
        NotFoundError: If a row names an image that does not exist (unless listed
            in ``source_problems``).
        DataFormatError: If a row is malformed (file, line and field named; likewise).
        UnknownClassError: If a class is not in the class map (unless ``problems``
            is ``record``).
        DataValidationError: If a series has no class name.
    """
    if columns not in ("x1x2y1y2", "x1y1x2y2"):
        raise ConfigError(
            f"columns must be x1x2y1y2 or x1y1x2y2, got {columns!r}", field="gdxray-columns"
        )
    path = Path(path)
    if not path.is_dir():
        raise NotFoundError("gdxray: expected the Baggage folder or a series folder", path=path)
    root = path.parent if _SERIES.match(path.name) else path
    names = dict(SERIES_NAMES if series_names is None else series_names)
    cmap = resolve_class_map(class_map, default="gdxray")
    series = _series_dirs(path)
    annotated = [d for d in series if (d / _GT).is_file()]
    if not annotated:
        raise DataFormatError(f"gdxray: no Bssss/{_GT} here", path=path)
    if len(annotated) < len(series):
        log.info(
            "gdxray: %d of %d series have no %s and are skipped (not annotated)",
            len(series) - len(annotated),
            len(series),
            _GT,
        )
    # The papers' detection split only makes sense when its series are there.
    use_split = any(d.name in DETECTION_SPLIT for d in annotated)
    labels = ("x1", "x2", "y1", "y2") if columns == "x1x2y1y2" else ("x1", "y1", "x2", "y2")
    records: list[ImageRecord] = []
    with progress() as bar:
        task = bar.add_task("reading gdxray", total=len(annotated))
        for sdir in annotated:
            records.extend(
                _read_series(
                    sdir,
                    root,
                    cmap,
                    labels,
                    names.get(sdir.name),
                    invalid_boxes,
                    problems,
                    source_problems,
                    use_split,
                )
            )
            bar.advance(task)
    return make_dataset("gdxray", records, root=root, class_map=cmap)


def _read_series(
    sdir: Path,
    root: Path,
    cmap: ClassMap,
    labels: tuple[str, str, str, str],
    series_name: str | None,
    invalid_boxes: InvalidBoxes,
    problems: Problems,
    source_problems: SourceProblems | None,
    use_split: bool,
) -> list[ImageRecord]:
    gt = sdir / _GT
    by_number: dict[int, ImageRecord] = {}
    for img in sorted(sdir.glob(f"{sdir.name}_*.png")):
        try:
            number = int(img.stem.rsplit("_", 1)[1])
        except ValueError:
            continue  # not a series image (a mask or a thumbnail)
        rec = ImageRecord(
            file=relative_file(img, root),
            width=0,
            height=0,
            split=DETECTION_SPLIT.get(sdir.name) if use_split else None,
            source="gdxray",
            meta={"series": sdir.name},
        )
        read_size(rec, img, problems)
        by_number[number] = rec
    for line, fields in text_rows(gt):
        owner = _image_of_row(fields, by_number)
        # A row naming none of the series' images (_read_row raises at it) is a
        # problem of the source: there is no image to record it on.
        context = (
            recording_source_problems(source_problems, problems)
            if owner is None
            else recording_problems(owner, problems)
        )
        with context:
            _read_row(gt, line, fields, by_number, cmap, labels, series_name, invalid_boxes)
    return [by_number[n] for n in sorted(by_number)]


def _image_of_row(fields: list[str], by_number: dict[int, ImageRecord]) -> ImageRecord | None:
    """The image a row's first field numbers, if it numbers one."""
    try:
        k = float(fields[0])
    except ValueError:
        return None
    return by_number.get(int(k)) if k.is_integer() else None


def _read_row(
    gt: Path,
    line: int,
    fields: list[str],
    by_number: dict[int, ImageRecord],
    cmap: ClassMap,
    labels: tuple[str, str, str, str],
    series_name: str | None,
    invalid_boxes: InvalidBoxes,
) -> None:
    series = gt.parent.name
    if len(fields) not in (5, 6):
        raise DataFormatError(
            f"expected 'k {' '.join(labels)}' (5 numbers, optionally a class name), "
            f"got {len(fields)} fields",
            path=gt,
            line=line,
            field="columns",
        )
    k = parse_number(fields[0], path=gt, line=line, field="k")
    if k != int(k) or k < 1:
        raise DataFormatError(
            f"image number must be a positive integer, got {fields[0]}",
            path=gt,
            line=line,
            field="k",
        )
    rec = by_number.get(int(k))
    if rec is None:
        raise NotFoundError(
            f"no image {series}_{int(k):04d}.png for this row", path=gt, line=line, field="k"
        )
    vals = dict(
        zip(
            labels,
            (
                parse_number(v, path=gt, line=line, field=f)
                for v, f in zip(fields[1:5], labels, strict=True)
            ),
            strict=True,
        )
    )
    name = fields[5] if len(fields) == 6 else series_name
    if name is None:
        raise DataValidationError(
            f"series {series} has no class name: add a 6th column, or pass series_names",
            path=gt,
            line=line,
            field="class",
        )
    box = corners1_to_xyxy([vals["x1"], vals["y1"], vals["x2"], vals["y2"]])[0]
    add_object(
        rec,
        tuple(box.tolist()),
        name,
        class_map=cmap,
        path=gt,
        line=line,
        invalid_boxes=invalid_boxes,
    )
