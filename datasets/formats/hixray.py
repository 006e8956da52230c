"""HiXray: the OPIXray TXT layout (one TXT per image, 1-based corners) with 8 classes.

Layout: ``HiXray/train/train_annotation/*.txt`` beside ``train/train_image/``,
and the same under ``test/``. See :mod:`cv.datasets.formats.opixray` for the line
format; HiXray has no occlusion lists.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from cv.datasets.classmap import ClassMap, resolve_class_map
from cv.datasets.formats.common import InvalidBoxes, Problems, SourceProblems
from cv.datasets.formats.opixray import detect_txt_layout, read_txt_dataset
from cv.datasets.formats.registry import register_reader
from cv.records import Dataset


def _detect(path: Path) -> bool:
    return detect_txt_layout(path, "hixray")


@register_reader("hixray", detect=_detect)
def read_hixray(
    path: Path,
    *,
    class_map: ClassMap | str | PathLike[str] | None = None,
    invalid_boxes: InvalidBoxes = "raise",
    problems: Problems = "raise",
    source_problems: SourceProblems | None = None,
) -> Dataset:
    """HiXray from its own folders (TXT boxes, train / test folders).

    Args:
        path: The HiXray folder (holding ``train/`` and ``test/``).
        class_map: Map of HiXray's class names; by default the shipped ``hixray`` map.
        invalid_boxes: ``raise`` on an empty or outside box, or ``drop`` it with a trace.
        problems: ``raise`` at an unknown class or malformed line, or ``record`` it
            with a trace and read on.
        source_problems: Under ``record``, where an annotation file without an
            image is listed (it raises without this list).
    """
    return read_txt_dataset(
        path,
        name="hixray",
        class_map=resolve_class_map(class_map, default="hixray"),
        invalid_boxes=invalid_boxes,
        problems=problems,
        source_problems=source_problems,
    )
