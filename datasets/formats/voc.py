"""Pascal VOC XML annotation files, as SIXray and EDS use them.

One XML file per image; each ``<object>`` has a ``<name>`` and a ``<bndbox>`` of
``xmin ymin xmax ymax``: the first and last pixel covered, counted from 1.
This module parses one file; the dataset readers decide where the files lie.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from cv.boxes import corners1_to_xyxy
from cv.datasets.formats.common import Problems, parse_number, record_problem, recording_problems
from cv.errors import DataFormatError
from cv.records import ImageRecord

_CORNERS = ("xmin", "ymin", "xmax", "ymax")


@dataclass(frozen=True, slots=True)
class VocObject:
    """One ``<object>`` of a VOC file.

    Attributes:
        index: Its position among the file's objects, from 0 (for messages).
        name: The ``<name>`` text, verbatim (may be empty).
        box: ``xyxy`` 0-based, converted from the 1-based corners.
        difficult: VOC's ``<difficult>`` flag.
    """

    index: int
    name: str
    box: tuple[float, float, float, float]
    difficult: bool


@dataclass(frozen=True, slots=True)
class VocFile:
    """A parsed VOC file.

    Attributes:
        filename: The ``<filename>`` text, or ``""``.
        width: ``<size><width>``, or 0 when absent.
        height: ``<size><height>``, or 0 when absent.
        objects: The objects, in file order.
        errors: Why each malformed object was left out of ``objects`` (only
            when parsed with ``keep_going``).
    """

    filename: str
    width: int
    height: int
    objects: list[VocObject]
    errors: list[DataFormatError] = field(default_factory=list)


def _text(el: ET.Element | None) -> str:
    return "" if el is None or el.text is None else el.text


def parse_voc(path: Path, *, keep_going: bool = False) -> VocFile:
    """Parses one VOC XML file.

    Args:
        path: The XML file.
        keep_going: Leave a malformed ``<object>`` out, with its error in
            ``VocFile.errors``, instead of raising.

    Raises:
        DataFormatError: If the XML is malformed (naming the line) or, unless
            ``keep_going``, a box field is missing or not a number (naming
            ``object[i].bndbox.xmin``...).
    """
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        raise DataFormatError(f"not valid XML ({exc})", path=path, line=exc.position[0]) from None
    root = tree.getroot()
    size = root.find("size")
    width = height = 0
    if size is not None:
        w, h = _text(size.find("width")).strip(), _text(size.find("height")).strip()
        if w and h:
            width = int(parse_number(w, path=path, line=None, field="size.width"))
            height = int(parse_number(h, path=path, line=None, field="size.height"))
    objects = []
    errors = []
    for i, obj in enumerate(root.iter("object")):
        try:
            objects.append(_parse_object(obj, i, path))
        except DataFormatError as exc:
            if not keep_going:
                raise
            errors.append(exc)
    return VocFile(
        filename=_text(root.find("filename")).strip(),
        width=width,
        height=height,
        objects=objects,
        errors=errors,
    )


def read_voc_objects(path: Path, record: ImageRecord, problems: Problems) -> list[VocObject]:
    """The objects of ``record``'s VOC XML file, as a dataset reader reads them.

    With ``problems="raise"`` this is :func:`parse_voc`'s objects. With
    ``record``, a malformed file or ``<object>`` is listed on ``record``
    (:func:`.common.record_problem`) and left out: a malformed file gives no objects.
    """
    voc = None
    with recording_problems(record, problems):
        voc = parse_voc(path, keep_going=problems == "record")
    if voc is None:
        return []
    for error in voc.errors:
        record_problem(record, error)
    return voc.objects


def _parse_object(obj: ET.Element, i: int, path: Path) -> VocObject:
    where = f"object[{i}]"
    bnd = obj.find("bndbox")
    if bnd is None:
        raise DataFormatError("missing <bndbox>", path=path, field=f"{where}.bndbox")
    corners = []
    for tag in _CORNERS:
        el = bnd.find(tag)
        if el is None or not _text(el).strip():
            raise DataFormatError(f"missing <{tag}>", path=path, field=f"{where}.bndbox.{tag}")
        corners.append(
            parse_number(_text(el).strip(), path=path, line=None, field=f"{where}.bndbox.{tag}")
        )
    box = corners1_to_xyxy(corners)[0]
    return VocObject(
        index=i,
        name=_text(obj.find("name")),
        box=tuple(box.tolist()),  # type: ignore[arg-type]
        difficult=_text(obj.find("difficult")).strip() == "1",
    )
