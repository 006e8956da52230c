"""Korean AI-Hub hazardous-item X-ray images: COCO-style JSON with its own class names.

AI-Hub ships COCO-style JSON, often one file per image or per batch, beside
folders of colour and grey images. Every ``*.json`` under the folder that looks
like COCO is read; images are looked for in ``images/``, the dataset folder, then
beside each JSON. The shipped class map covers the class names we could verify;
an unknown name fails with the file and the map to edit.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from cv.datasets.classmap import ClassMap, resolve_class_map
from cv.datasets.formats.coco import MissingImages, categories_in_map, read_coco_dataset
from cv.datasets.formats.common import InvalidBoxes, Problems, SourceProblems
from cv.datasets.formats.registry import register_reader
from cv.records import Dataset


def _detect(path: Path) -> bool:
    return categories_in_map(path, "aihub")


@register_reader("aihub", detect=_detect)
def read_aihub(
    path: Path,
    *,
    class_map: ClassMap | str | PathLike[str] | None = None,
    image_root: Path | None = None,
    missing_images: MissingImages = "keep",
    invalid_boxes: InvalidBoxes = "raise",
    problems: Problems = "raise",
    source_problems: SourceProblems | None = None,
) -> Dataset:
    """AI-Hub from its own COCO JSON files.

    Args:
        path: The dataset folder, or one of its JSON files.
        class_map: Map of AI-Hub's class names; by default the shipped ``aihub`` map.
        image_root: The folder the files' ``file_name`` entries are relative to;
            guessed by default (see :func:`~cv.datasets.formats.coco.read_coco_dataset`).
        missing_images: ``keep`` the records of a file whose images no folder
            looked in holds, or ``raise`` naming the folders.
        invalid_boxes: ``raise`` on an empty or outside box, or ``drop`` it with a trace.
        problems: ``raise`` at an unknown category or malformed annotation, or
            ``record`` it with a trace on its image and read on.
        source_problems: Under ``record``, where an annotation file that cannot be
            read as COCO, a malformed image entry (that image is left out) and an
            annotation that names no image are listed (they raise without this list).
    """
    return read_coco_dataset(
        path,
        name="aihub",
        class_map=resolve_class_map(class_map, default="aihub"),
        image_root=image_root,
        missing_images=missing_images,
        invalid_boxes=invalid_boxes,
        problems=problems,
        source_problems=source_problems,
    )
