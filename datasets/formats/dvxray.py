"""DvXray: dual-view scans ``<id>_OL.png`` and ``<id>_SD.png`` with one ``<id>.json``.

The JSON is PIXray's ``{"objects": [{"label": ...}]}``; ``"None"`` (as the
objects or as a label) marks a negative, a clean bag. Each view becomes its own
record with ``ImageRecord.view`` ``OL`` (overhead) or ``SD`` (side) and
``meta["pair"]`` the shared id. Boxes, where the JSON has them, are read per view
from an object's ``OL`` / ``SD`` key (``{"polygon": ...}`` or ``{"bbox": [x1, y1,
x2, y2]}``, 0-based), else from the object itself. Objects with only a label are
kept as ``meta["image_labels"]``, so such an image is never taken for a clean bag.
Splits are the ``train`` / ``test`` folders when present (the authors split 80/20
at random; ``data convert --split-ratios`` makes such a split). A JSON file beside
only one of its views is a scan with the other view missing; one beside neither
is not a scan and is not read.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from cv.datasets.classmap import ClassMap, resolve_class_map
from cv.datasets.formats.common import (
    InvalidBoxes,
    Problems,
    make_dataset,
    read_size,
    record_problem,
    relative_file,
    split_from_parts,
)
from cv.datasets.formats.pixray import add_json_objects, read_objects
from cv.datasets.formats.registry import register_reader
from cv.errors import NotFoundError
from cv.log import progress
from cv.records import Dataset, ImageRecord

VIEWS = ("OL", "SD")


def _pairs(root: Path) -> list[Path]:
    """The scans' JSON files: those beside either view of their scan.

    A scan with one view missing is still a scan (the reader reports the missing
    view); a JSON file beside neither view is no scan's (a report, a manifest).
    """
    return sorted(
        p
        for p in root.rglob("*.json")
        if any(p.with_name(f"{p.stem}_{view}.png").is_file() for view in VIEWS)
    )


def _detect(path: Path) -> bool:
    return path.is_dir() and any(True for _ in path.rglob("*_OL.png")) and bool(_pairs(path))


@register_reader("dvxray", detect=_detect)
def read_dvxray(
    path: Path,
    *,
    class_map: ClassMap | str | PathLike[str] | None = None,
    invalid_boxes: InvalidBoxes = "raise",
    problems: Problems = "raise",
) -> Dataset:
    """DvXray from its own files (two views per scan, one JSON per scan).

    Args:
        path: The DvXray folder.
        class_map: Map of DvXray's labels; by default the shipped ``dvxray`` map.
        invalid_boxes: ``raise`` on an empty or outside box, or ``drop`` it with a trace.
        problems: ``raise`` at an unknown class, a malformed file or object or a
            missing or unreadable view image, or ``record`` it with a trace on
            each view's image and read on.

    A fault of the JSON file itself is recorded on both views (both are
    unlabelled by it); counts of entries count it once
    (:func:`~cv.datasets.formats.common.trace_key`).

    Raises:
        NotFoundError: If a view image (``OL`` or ``SD``) of a scan is missing
            (unless ``problems`` is ``record``).
        DataFormatError: If a JSON file is malformed (unless ``problems`` is ``record``).
        UnknownClassError: If a label is not in the class map (likewise).
    """
    root = Path(path)
    if not root.is_dir():
        raise NotFoundError("dvxray: expected the dataset folder", path=root)
    cmap = resolve_class_map(class_map, default="dvxray")
    files = _pairs(root)
    if not files:
        raise NotFoundError("dvxray: no <id>.json beside <id>_OL.png here", path=root)
    records: list[ImageRecord] = []
    with progress() as bar:
        task = bar.add_task("reading dvxray", total=len(files))
        for j in files:
            objects, errors = read_objects(j, problems)
            for view in VIEWS:
                img = j.with_name(f"{j.stem}_{view}.png")
                if not img.is_file() and problems == "raise":
                    raise NotFoundError(f"the {view} view of scan {j.stem} is missing", path=img)
                rec = ImageRecord(
                    file=relative_file(img, root),
                    width=0,
                    height=0,
                    split=split_from_parts(img.parent.relative_to(root).parts),
                    source="dvxray",
                    view=view,
                    meta={"pair": j.stem},
                )
                read_size(rec, img, problems)
                for error in errors:
                    record_problem(rec, error)
                add_json_objects(
                    rec,
                    objects,
                    path=j,
                    class_map=cmap,
                    view=view,
                    invalid_boxes=invalid_boxes,
                    problems=problems,
                )
                records.append(rec)
            bar.advance(task)
    return make_dataset("dvxray", records, root=root, class_map=cmap)
