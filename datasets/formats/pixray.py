"""PIXray: one JSON per image, ``{"objects": [{"label": ..., "polygon": [[x, y], ...]}]}``.

Layout: ``<id>.json`` beside ``<id>.png`` (or ``.jpg``), anywhere under the
dataset folder; a folder named ``train`` / ``test`` gives the split. Polygon
vertices are 0-based pixel-corner points; the box is their extent
(:func:`cv.boxes.polygon_to_xyxy`). An object may give ``"bbox": [x1, y1, x2, y2]``
(0-based) instead. The object parsing here is shared with DvXray.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from cv.boxes import polygon_to_xyxy
from cv.datasets.classmap import ClassMap, resolve_class_map
from cv.datasets.formats.coco import load_json
from cv.datasets.formats.common import (
    InvalidBoxes,
    Problems,
    SourceProblems,
    add_object,
    make_dataset,
    raise_or_record,
    read_size,
    record_problem,
    recording_problems,
    relative_file,
    split_from_parts,
)
from cv.datasets.formats.registry import register_reader
from cv.errors import DataFormatError, NotFoundError
from cv.image import IMAGE_SUFFIXES
from cv.log import progress
from cv.records import Dataset, ImageRecord

NEGATIVE = "none"
"""The label (case-folded) DvXray writes for an image with no prohibited item."""


def objects_of(
    doc: Any, path: Path, *, errors: list[DataFormatError] | None = None
) -> list[Mapping[str, Any]]:
    """The object list of a PIXray / DvXray JSON document; empty for a negative.

    Args:
        doc: The parsed JSON.
        path: Its file, for messages.
        errors: If given, a malformed object is left out and its error appended
            here instead of raised.

    Raises:
        DataFormatError: If ``objects`` is missing or not a list, or (without
            ``errors``) an object is not an object with a ``label``.
    """
    if not isinstance(doc, dict) or "objects" not in doc:
        raise DataFormatError("missing 'objects'", path=path, field="objects")
    objects = doc["objects"]
    if isinstance(objects, str) and objects.strip().casefold() == NEGATIVE:
        return []
    if not isinstance(objects, list):
        raise DataFormatError("'objects' must be a list (or \"None\")", path=path, field="objects")
    out = []
    for i, obj in enumerate(objects):
        error = None
        if not isinstance(obj, dict):
            error = DataFormatError(
                "an object must be a JSON object", path=path, field=f"objects[{i}]"
            )
        elif not isinstance(obj.get("label"), str):
            error = DataFormatError("missing 'label'", path=path, field=f"objects[{i}].label")
        if error is not None:
            if errors is None:
                raise error
            errors.append(error)
            continue
        if obj["label"].strip().casefold() == NEGATIVE:
            continue
        out.append(obj)
    return out


def read_objects(
    path: Path, problems: Problems
) -> tuple[list[Mapping[str, Any]], list[DataFormatError]]:
    """The objects of a PIXray / DvXray JSON file, and (under ``record``) what was malformed.

    With ``problems="record"`` a file that is not JSON, or has no object list,
    gives no objects and its one error; a malformed object is left out with its
    error. With ``raise`` the first of them raises.
    """
    if problems == "raise":
        return objects_of(load_json(path), path), []
    errors: list[DataFormatError] = []
    try:
        return objects_of(load_json(path), path, errors=errors), errors
    except DataFormatError as exc:
        return [], [exc]


def geometry_box(geom: Any, path: Path, where: str) -> tuple[float, float, float, float] | None:
    """The ``xyxy`` box of ``{"polygon": ...}`` or ``{"bbox": ...}``; ``None`` if neither.

    Raises:
        DataFormatError: If the polygon or bbox is malformed.
    """
    if not isinstance(geom, dict):
        return None
    if "polygon" in geom:
        pts = geom["polygon"]
        ok = (
            isinstance(pts, list)
            and len(pts) >= 2
            and all(
                isinstance(p, list)
                and len(p) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)
                for p in pts
            )
        )
        if not ok:
            raise DataFormatError(
                "polygon must be a list of at least 2 [x, y] points",
                path=path,
                field=f"{where}.polygon",
            )
        return tuple(polygon_to_xyxy(pts).tolist())  # type: ignore[return-value]
    if "bbox" in geom:
        b = geom["bbox"]
        if not (
            isinstance(b, list)
            and len(b) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in b)
        ):
            raise DataFormatError("bbox must be [x1, y1, x2, y2]", path=path, field=f"{where}.bbox")
        return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
    return None


def add_json_objects(
    rec: ImageRecord,
    objects: list[Mapping[str, Any]],
    *,
    path: Path,
    class_map: ClassMap,
    view: str | None,
    invalid_boxes: InvalidBoxes,
    problems: Problems = "raise",
) -> None:
    """Adds the objects with a box to ``rec``; label-only objects become image labels.

    The box of an object is its own ``polygon`` / ``bbox``, or for a view ``V`` of a
    multi-view image the ``polygon`` / ``bbox`` under its ``V`` key. With
    ``problems="record"`` an object of an unknown class or with a malformed box is
    left out with a trace (:func:`~cv.datasets.formats.common.recording_problems`).
    """
    for i, obj in enumerate(objects):
        with recording_problems(rec, problems):
            _add_json_object(rec, obj, f"objects[{i}]", path, class_map, view, invalid_boxes)


def _add_json_object(
    rec: ImageRecord,
    obj: Mapping[str, Any],
    where: str,
    path: Path,
    class_map: ClassMap,
    view: str | None,
    invalid_boxes: InvalidBoxes,
) -> None:
    label = obj["label"]
    box = None
    if view is not None:
        box = geometry_box(obj.get(view), path, f"{where}.{view}")
    if box is None:
        box = geometry_box(obj, path, where)
    if box is None:
        # DvXray was released with image-level labels first; keep them rather
        # than pretend the image is clean.
        mapped = class_map.map(label, path=path, field=f"{where}.label")
        if mapped is not None:
            rec.meta.setdefault("image_labels", []).append(mapped)
        else:
            rec.meta.setdefault("dropped", []).append(label)
        return
    add_object(
        rec,
        box,
        label,
        class_map=class_map,
        path=path,
        field=where,
        invalid_boxes=invalid_boxes,
    )


def _image_beside(json_path: Path, stem: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        for cand in (
            json_path.with_name(stem + suffix),
            json_path.with_name(stem + suffix.upper()),
        ):
            if cand.is_file():
                return cand
    return None


def _detect(path: Path) -> bool:
    if not path.is_dir():
        return False
    for j in sorted(path.rglob("*.json"))[:20]:
        if _image_beside(j, j.stem) is None:
            continue
        try:
            doc = load_json(j)
        except DataFormatError:
            return False
        return isinstance(doc, dict) and "objects" in doc
    return False


@register_reader("pixray", detect=_detect)
def read_pixray(
    path: Path,
    *,
    class_map: ClassMap | str | PathLike[str] | None = None,
    invalid_boxes: InvalidBoxes = "raise",
    problems: Problems = "raise",
    source_problems: SourceProblems | None = None,
) -> Dataset:
    """PIXray from its own files (per-image JSON with polygons).

    Args:
        path: The PIXray folder.
        class_map: Map of PIXray's labels; by default the shipped ``pixray`` map.
        invalid_boxes: ``raise`` on an empty or outside box, or ``drop`` it with a trace.
        problems: ``raise`` at an unknown class, a malformed file or object or an
            unreadable image, or ``record`` it with a trace on its image and read on.
        source_problems: Under ``record``, where an annotation file without an
            image is listed (it raises without this list).

    Raises:
        NotFoundError: If a JSON file has no image beside it (unless listed in
            ``source_problems``).
        DataFormatError: If a JSON file is malformed (unless ``problems`` is ``record``).
        UnknownClassError: If a label is not in the class map (likewise).
    """
    root = Path(path)
    if not root.is_dir():
        raise NotFoundError("pixray: expected the dataset folder", path=root)
    cmap = resolve_class_map(class_map, default="pixray")
    files = sorted(root.rglob("*.json"))
    records: list[ImageRecord] = []
    with progress() as bar:
        task = bar.add_task("reading pixray", total=len(files))
        for j in files:
            img = _image_beside(j, j.stem)
            if img is None:
                raise_or_record(
                    NotFoundError(f"no image {j.stem}.* beside this annotation file", path=j),
                    source_problems,
                    problems,
                )
                bar.advance(task)
                continue
            rec = ImageRecord(
                file=relative_file(img, root),
                width=0,
                height=0,
                split=split_from_parts(img.parent.relative_to(root).parts),
                source="pixray",
            )
            read_size(rec, img, problems)
            objects, errors = read_objects(j, problems)
            for error in errors:
                record_problem(rec, error)
            add_json_objects(
                rec,
                objects,
                path=j,
                class_map=cmap,
                view=None,
                invalid_boxes=invalid_boxes,
                problems=problems,
            )
            records.append(rec)
            bar.advance(task)
    return make_dataset("pixray", records, root=root, class_map=cmap)
