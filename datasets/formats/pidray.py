"""PIDray (2021 and 2023): COCO JSON with test subsets easy / hard / hidden.

Layouts::

    PIDray 2021: annotations/xray_train.json, xray_test_{easy,hard,hidden}.json;
                 images in train/, easy/, hard/, hidden/
    PIDray 2023: annotations/train.json, test.json; images in train/, test/

Boxes are COCO ``[x, y, w, h]``, 0-based; masks are not read. The subset comes
from the file name (2021), else from an image's ``subset`` key or a folder
``easy`` / ``hard`` / ``hidden`` in its path (2023), and is kept in
``ImageRecord.subset``: PIDray reports AP per subset.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

from cv.datasets.classmap import ClassMap, resolve_class_map
from cv.datasets.formats.coco import (
    MissingImages,
    categories_in_map,
    guess_image_root,
    read_coco_files,
)
from cv.datasets.formats.common import InvalidBoxes, Problems, SourceProblems
from cv.datasets.formats.registry import register_reader
from cv.errors import DataFormatError, NotFoundError
from cv.records import Dataset, Split

SUBSETS = ("easy", "hard", "hidden")


def _annotation_files(root: Path) -> list[Path]:
    folder = root / "annotations" if (root / "annotations").is_dir() else root
    files = sorted(folder.glob("xray_*.json"))
    if not files:
        files = [f for f in (folder / "train.json", folder / "test.json") if f.is_file()]
    return files


def _root_of(path: Path) -> Path:
    return path.parent if path.name == "annotations" else path


def _split_subset(f: Path) -> tuple[Split, str | None]:
    words = f.stem.casefold().split("_")
    subset = next((w for w in words if w in SUBSETS), None)
    return ("train" if "train" in words else "test"), subset


def _detect(path: Path) -> bool:
    if not path.is_dir():
        return False
    files = _annotation_files(path)
    if any(f.name.startswith("xray_") for f in files):
        return True
    # PIDray 2023 names its files train.json / test.json, as this toolkit's own output
    # does; tell them apart by the category names (PIDray's own, not the taxonomy's).
    return (
        path.joinpath("annotations").is_dir()
        and {f.name for f in files} == {"train.json", "test.json"}
        and categories_in_map(path / "annotations", "pidray")
    )


@register_reader("pidray", detect=_detect)
def read_pidray(
    path: Path,
    *,
    class_map: ClassMap | str | PathLike[str] | None = None,
    image_root: Path | None = None,
    missing_images: MissingImages = "keep",
    invalid_boxes: InvalidBoxes = "raise",
    problems: Problems = "raise",
    source_problems: SourceProblems | None = None,
) -> Dataset:
    """PIDray 2021 or 2023 from its own files (COCO JSON, subsets easy / hard / hidden).

    Args:
        path: The PIDray folder (holding ``annotations/``), or ``annotations/`` itself.
        class_map: Map of PIDray's class names; by default the shipped ``pidray`` map.
        image_root: The folder every file's ``file_name`` entries are relative to;
            by default guessed per file (the subset's or split's folder, ``images/``,
            the dataset folder).
        missing_images: ``keep`` the records of a file whose images no folder
            looked in holds, or ``raise`` naming the folders.
        invalid_boxes: ``raise`` on an empty or outside box, or ``drop`` it with a trace.
        problems: ``raise`` at an unknown category or malformed annotation, or
            ``record`` it with a trace on its image and read on.
        source_problems: Under ``record``, where an annotation file that cannot be
            read as COCO, a malformed image entry (that image is left out) and an
            annotation that names no image are listed (they raise without this list).

    Raises:
        NotFoundError: If there is no PIDray annotation file, or (with
            ``missing_images="raise"``) no folder looked in holds a file's images
            (the message names them).
    """
    path = Path(path)
    if not path.is_dir():
        raise NotFoundError("pidray: expected the dataset folder", path=path)
    files = _annotation_files(path)
    if not files:
        raise NotFoundError(
            "pidray: no annotations/xray_*.json (2021) or annotations/train.json, test.json (2023)",
            path=path,
        )
    root = _root_of(path)
    splits_subsets = [_split_subset(f) for f in files]

    def guess(f: Path, doc: Any) -> Path:
        split, subset = _split_subset(f)
        names = [subset, f"{split}/{subset}"] if subset else []
        return guess_image_root(
            f,
            doc,
            [root / n for n in [*names, split, "images"]] + [root],
            required=missing_images == "raise",
        )

    dataset = read_coco_files(
        files,
        name="pidray",
        root=root,
        class_map=resolve_class_map(class_map, default="pidray"),
        image_roots=guess if image_root is None else [Path(image_root)] * len(files),
        splits=[s for s, _ in splits_subsets],
        subsets=[sub for _, sub in splits_subsets],
        invalid_boxes=invalid_boxes,
        problems=problems,
        source_problems=source_problems,
    )
    for rec in dataset.images:
        if rec.subset is None and rec.split == "test":
            rec.subset = next((p for p in Path(rec.file).parts if p.casefold() in SUBSETS), None)
        if rec.subset is not None and rec.subset not in SUBSETS:
            raise DataFormatError(
                f"subset {rec.subset!r} is not one of {', '.join(SUBSETS)}",
                path=rec.file,
                field="subset",
            )
    return dataset
