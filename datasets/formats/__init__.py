"""Dataset formats: readers of the public X-ray datasets' own files, and writers.

Every reader returns a :class:`cv.records.Dataset` in the customs taxonomy and is
registered by name in :data:`READERS`; :func:`load_dataset` picks one by name or
detects the format from the files. The writers produce a YOLO folder that
ultralytics trains on (:func:`write_yolo`) and COCO JSON (:func:`write_coco`).
"""

from __future__ import annotations

# Imported for their side effect: each module registers its readers.
from cv.datasets.formats import (
    aihub,
    clcxray,
    coco,
    dvxray,
    eds,
    gdxray,
    hixray,
    opixray,
    pidray,
    pixray,
    sixray,
    yolo,
)
from cv.datasets.formats.coco import read_coco, write_coco
from cv.datasets.formats.common import Summary, summarize
from cv.datasets.formats.registry import (
    READERS,
    ReaderEntry,
    detect_format,
    formats_taking,
    known_formats,
    load_dataset,
    register_reader,
)
from cv.datasets.formats.yolo import read_yolo, write_yolo, yolo_layout

__all__ = [
    "READERS",
    "ReaderEntry",
    "Summary",
    "aihub",
    "clcxray",
    "coco",
    "detect_format",
    "dvxray",
    "eds",
    "formats_taking",
    "gdxray",
    "hixray",
    "known_formats",
    "load_dataset",
    "opixray",
    "pidray",
    "pixray",
    "read_coco",
    "read_yolo",
    "register_reader",
    "sixray",
    "summarize",
    "write_coco",
    "write_yolo",
    "yolo",
    "yolo_layout",
]
