"""Building blocks shared by the dataset readers.

Every reader turns one object of its source into an :class:`~cv.records.Annotation`
through :func:`add_object`, so the rules are the same for every dataset:

* the class name goes through the class map; a name mapped to ``null`` is dropped
  and its original name listed in ``record.meta["dropped"]``;
* a box reaching past the image is clipped to it and the annotation's index listed
  in ``record.meta["clipped"]``;
* an empty, inverted or fully outside box raises :class:`DataValidationError`, or,
  with ``invalid_boxes="drop"``, is listed in ``record.meta["invalid"]``.

A class name the map does not know, and an annotation entry that cannot be
parsed (a line with the wrong number of fields, a corner that is not a number),
raise by default, naming the file and line: conversion and training fail fast.
A reader given ``problems="record"`` (what ``data check`` and ``data stats`` use)
reads each such entry inside :func:`recording_problems` instead, which lists it in
``record.meta["unknown"]`` or ``record.meta["malformed"]`` and reads on, so that
a check reports every one. Under ``record`` an image whose header cannot be read
keeps the size 0 x 0 with the reason in ``record.meta["unreadable"]``
(:func:`read_size`), and the objects of known classes that such an image cannot
hold for want of a size are listed by name in ``record.meta["unplaced"]``. A reader
may list other faults of an image in its own trace (SIXray:
``record.meta["missing_boxes"]`` for a positive image without boxes).

A fault that belongs to no image (an entry naming an image that does not exist,
an annotation file that cannot be parsed at all) has no record to go on: under
``record`` a reader lists it in the ``source_problems`` list its caller gives
(:func:`recording_source_problems`, :func:`raise_or_record`), and raises without one.

Nothing is dropped without a trace; :func:`summarize` counts the traces, and
:func:`is_clean` tells a clean bag (no object at all) from an image whose objects
were all left out.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from cv.datasets.classmap import ClassMap, UnknownClassError
from cv.errors import (
    CustomsVisionError,
    DataFormatError,
    DataValidationError,
    ImageReadError,
    NotFoundError,
    format_location,
)
from cv.image import IMAGE_SUFFIXES, read_image_size
from cv.records import Annotation, Dataset, ImageRecord, Split

log = logging.getLogger(__name__)

InvalidBoxes = Literal["raise", "drop"]

Problems = Literal["raise", "record"]
"""What a reader does with an unknown class name or a malformed annotation entry:
``raise`` at the first one (naming file and line), or ``record`` each one in its
image's ``meta`` and read on (see :func:`recording_problems`)."""


def recording_problems(record: ImageRecord, problems: Problems) -> AbstractContextManager[None]:
    """A context for the block that reads one annotation entry of ``record``.

    With ``problems="raise"`` it does nothing. With ``record``, an unknown class
    (:class:`~cv.datasets.classmap.UnknownClassError`) or a malformed entry
    (:class:`~cv.errors.DataFormatError`) raised in the block ends the block and
    is listed in ``record.meta["unknown"]`` (``name``, ``path``, ``line``,
    ``field``) or ``record.meta["malformed"]`` (``path``, ``line``, ``field``,
    ``reason``); the entry's object is then not in ``record.annotations``. Other
    errors (invalid boxes, missing images) propagate either way.

    Args:
        record: The image the entry belongs to.
        problems: ``raise`` or ``record``.
    """
    # One shared no-op context: readers enter this once per box, 100,000s of times.
    if problems == "raise":
        return _NO_OP
    return _Recorder(
        lambda error: record_problem(record, error), (UnknownClassError, DataFormatError)
    )


_NO_OP = nullcontext()


class _Recorder(AbstractContextManager[None]):
    """Ends its block on an error of ``kinds`` (an :class:`ImageReadError` excepted:
    that one is the image's, not the annotation's) and hands it to ``keep``."""

    __slots__ = ("keep", "kinds")

    def __init__(self, keep: Callable[[Any], None], kinds: tuple[type[Exception], ...]) -> None:
        self.keep, self.kinds = keep, kinds

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if isinstance(error, self.kinds) and not isinstance(error, ImageReadError):
            self.keep(error)
            return True
        return False


def trace_of(error: CustomsVisionError) -> dict[str, object]:
    """``{"path", "line", "field", "reason"}`` of ``error``: a trace of it that
    :func:`trace_place` reads back.
    """
    return {"path": error.path, "line": error.line, "field": error.field, "reason": error.reason}


def trace_place(item: Mapping[str, object], root: Path | None) -> str:
    """``path:line: field`` of a trace, the path relative to the dataset root."""
    path = item.get("path")
    if isinstance(path, str) and root is not None:
        path = relative_file(Path(path), root)
    line = item.get("line")
    entry = item.get("field")
    return (
        format_location(
            path if isinstance(path, str) else None,
            line if isinstance(line, int) else None,
            entry if isinstance(entry, str) else None,
        )
        or "(unknown place)"
    )


def record_problem(record: ImageRecord, error: UnknownClassError | DataFormatError) -> None:
    """Lists ``error`` in ``record.meta["unknown"]`` or ``["malformed"]`` (see above)."""
    if isinstance(error, UnknownClassError):
        record.meta.setdefault("unknown", []).append(
            {"name": error.name, "path": error.path, "line": error.line, "field": error.field}
        )
    else:
        record.meta.setdefault("malformed", []).append(trace_of(error))


SourceProblems = list[dict[str, object]]
"""Faults that belong to no image, each ``{"path", "line", "field", "reason"}`` like a
``malformed`` trace: where a reader given ``problems="record"`` lists them."""


def raise_or_record(
    error: CustomsVisionError, found: SourceProblems | None, problems: Problems
) -> None:
    """Lists ``error``, a fault that belongs to no image, in ``found``; raises it
    unless ``problems`` is ``record`` and ``found`` is given.
    """
    if problems == "raise" or found is None:
        raise error
    found.append(trace_of(error))


def recording_source_problems(
    found: SourceProblems | None, problems: Problems
) -> AbstractContextManager[None]:
    """A context for a block that reads what belongs to no image yet: a whole
    annotation file, an image entry of one (a COCO ``images[i]``) that a fault may
    keep from becoming an image, or an entry that names no image of the dataset.

    With ``problems="record"`` and a ``found`` list, a malformed file or entry
    (:class:`~cv.errors.DataFormatError`) or an image that does not exist
    (:class:`~cv.errors.NotFoundError`) raised in the block ends the block and is
    listed in ``found``, as :func:`raise_or_record` lists it; otherwise it does nothing.
    """
    if problems == "raise" or found is None:
        return _NO_OP
    return _Recorder(lambda error: found.append(trace_of(error)), (DataFormatError, NotFoundError))


def read_size(record: ImageRecord, image: Path, problems: Problems) -> None:
    """Sets ``record.width`` and ``height`` from the header of its image file.

    With ``problems="record"`` an image whose header cannot be read (truncated,
    not an image, missing) keeps the size 0 x 0 and the reason is listed in
    ``record.meta["unreadable"]``; its annotation entries are still read for
    their class names and format, but their boxes cannot be placed in an image of
    unknown size and :func:`add_object` leaves them out, listing each by name in
    ``record.meta["unplaced"]``.

    Raises:
        NotFoundError: If the image does not exist (with ``raise``).
        ImageReadError: If its header cannot be read (likewise).
    """
    try:
        record.width, record.height = read_image_size(image)
    except (NotFoundError, ImageReadError) as error:
        if problems == "raise":
            raise
        record.meta.setdefault("unreadable", []).append(error.reason)


def add_object(
    record: ImageRecord,
    box: tuple[float, float, float, float],
    original_name: str,
    *,
    class_map: ClassMap,
    path: str | PathLike[str],
    line: int | None = None,
    field: str | None = None,
    category: str | None = None,
    invalid_boxes: InvalidBoxes = "raise",
    occlusion: float | None = None,
    occlusion_level: int | None = None,
    concealment: str | None = None,
    iscrowd: bool = False,
) -> Annotation | None:
    """Maps, clips and checks one object, then appends it to ``record``.

    Args:
        record: The image the object belongs to; its ``width``/``height`` bound the box.
        box: ``xyxy`` absolute pixels, 0-based (already converted from the source).
        original_name: The class name as the source writes it, kept verbatim.
        class_map: Maps ``original_name`` to a taxonomy name.
        path: The annotation file, for messages.
        line: The 1-based line in ``path`` (text formats).
        field: The object within ``path`` (``object[2]``, ``annotations[17]``).
        category: The class name to map when it differs from ``original_name``
            (an empty SIXray name resolved from the image-level CSV).
        invalid_boxes: ``raise`` on an empty or outside box, or ``drop`` it with a trace.
        occlusion: Hidden fraction, when known.
        occlusion_level: 1-3, when known.
        concealment: Concealment mode, when known.
        iscrowd: COCO's crowd flag.

    Returns:
        The annotation, or ``None`` if the class map or ``invalid_boxes`` dropped
        it, or the image's header could not be read (:func:`read_size`).

    Raises:
        UnknownClassError: If the class is not in ``class_map``.
        DataValidationError: If the box is empty or outside the image and
            ``invalid_boxes`` is ``raise``.
    """
    mapped = class_map.map(
        original_name if category is None else category, path=path, line=line, field=field
    )
    if mapped is None:
        record.meta.setdefault("dropped", []).append(original_name)
        return None
    if "unreadable" in record.meta:
        # No size to place the box in: the image is reported instead (read_size),
        # and the object listed so that counts of what was left out include it.
        record.meta.setdefault("unplaced", []).append(original_name)
        return None
    x1, y1, x2, y2 = box
    w, h = record.width, record.height
    problem = None
    if not all(math.isfinite(v) for v in box):
        problem = "box has a non-finite coordinate"
    elif x2 <= x1 or y2 <= y1:
        problem = "box is empty or inverted (x2 <= x1 or y2 <= y1)"
    else:
        cx1, cy1 = min(max(x1, 0.0), w), min(max(y1, 0.0), h)
        cx2, cy2 = min(max(x2, 0.0), w), min(max(y2, 0.0), h)
        if cx2 <= cx1 or cy2 <= cy1:
            problem = f"box lies outside the {w}x{h} image"
    if problem is not None:
        if invalid_boxes == "raise":
            raise DataValidationError(
                f"{problem}: xyxy {_fmt_box(box)} (use invalid_boxes='drop' / "
                "--invalid-boxes drop to skip such boxes with a count)",
                path=path,
                line=line,
                field=field or "box",
            )
        record.meta.setdefault("invalid", []).append(
            {"name": original_name, "box": [float(v) for v in box], "reason": problem}
        )
        return None
    if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
        record.meta.setdefault("clipped", []).append(len(record.annotations))
    ann = Annotation(
        box=(float(cx1), float(cy1), float(cx2), float(cy2)),
        category=mapped,
        original_name=original_name,
        occlusion=occlusion,
        occlusion_level=occlusion_level,
        concealment=concealment,  # type: ignore[arg-type]
        iscrowd=iscrowd,
    )
    record.annotations.append(ann)
    return ann


def _fmt_box(box: tuple[float, float, float, float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in box) + ")"


def parse_number(token: str, *, path: str | PathLike[str], line: int | None, field: str) -> float:
    """``token`` as a float, or a :class:`DataFormatError` naming the place."""
    try:
        value = float(token)
    except ValueError:
        raise DataFormatError(
            f"expected a number, got {token!r}", path=path, line=line, field=field
        ) from None
    if not math.isfinite(value):
        raise DataFormatError(
            f"expected a finite number, got {token!r}", path=path, line=line, field=field
        )
    return value


def text_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line number, whitespace-split fields)`` of each non-blank line of a text file.

    Raises:
        DataFormatError: If the file is not UTF-8 (or Latin-1) text.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Some dataset tools wrote their lists in a legacy code page; class names
        # are ASCII, so Latin-1 reads them right and never fails.
        text = raw.decode("latin-1")
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if fields:
            yield number, fields


def split_from_parts(parts: Iterable[str]) -> Split | None:
    """The split named by a folder or file name (``train_image``, ``test``, ``val2017``)."""
    for part in parts:
        low = part.casefold()
        for prefix, split in (("train", "train"), ("val", "val"), ("test", "test")):
            if low.startswith(prefix):
                return split  # type: ignore[return-value]
    return None


def index_images(folders: Iterable[Path]) -> dict[str, Path]:
    """Image files directly inside ``folders``, by file stem (first folder wins)."""
    found: dict[str, Path] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES and p.stem not in found:
                found[p.stem] = p
    return found


def relative_file(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as a POSIX string, or absolute if outside it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def make_dataset(
    name: str, records: list[ImageRecord], *, root: Path, class_map: ClassMap
) -> Dataset:
    """The dataset of ``records``, with its class list, and a log line of what was dropped.

    A shipped or user map fixes the class list (so ids do not depend on which
    classes a subset happens to contain); the identity map lists the used classes.
    """
    dataset = Dataset(name=name, images=records, root=root)
    dataset.classes = dataset.used_classes() if class_map.identity else class_map.classes()
    stats = summarize(dataset)
    if stats.dropped:
        log.info(
            "%s: dropped by the class map %s: %s",
            name,
            class_map.source or class_map.name,
            ", ".join(f"{k} x{v}" for k, v in sorted(stats.dropped.items())),
        )
    if stats.clipped:
        log.info("%s: %d boxes clipped to their image", name, stats.clipped)
    if stats.invalid:
        log.warning(
            "%s: %d invalid boxes dropped (see record.meta['invalid'])", name, stats.invalid
        )
    if stats.unknown:
        log.warning(
            "%s: objects of classes the class map does not know left out: %s "
            "(see record.meta['unknown'])",
            name,
            ", ".join(f"{k or '(empty)'} x{v}" for k, v in sorted(stats.unknown.items())),
        )
    if stats.malformed:
        log.warning(
            "%s: %d malformed annotation entries left out (see record.meta['malformed'])",
            name,
            stats.malformed,
        )
    if stats.unreadable:
        log.warning(
            "%s: %d images whose header cannot be read, kept without a size or boxes "
            "(%d objects left out; see record.meta['unreadable'] and ['unplaced'])",
            name,
            stats.unreadable,
            stats.unplaced,
        )
    return dataset


DEFAULT_SPLIT_RATIOS: tuple[float, float, float] = (0.8, 0.1, 0.1)
"""Train / val / test fractions for images a source gives no split (``data convert``,
``train xray`` on such a source)."""


def assign_splits(dataset: Dataset, *, ratios: tuple[float, float, float], seed: int) -> int:
    """Gives a random train / val / test split to the records that have none.

    Records that belong together (the two views of one DvXray scan, named by
    ``meta["pair"]``) get the same split, so no scan is in train and test at once.

    Args:
        dataset: Changed in place.
        ratios: Fractions for train, val and test; they must sum to 1.
        seed: Seed of the shuffle; the same seed gives the same split.

    Returns:
        How many records got a split.

    Raises:
        ValueError: If the ratios are negative or do not sum to 1.
    """
    import numpy as np

    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        raise ValueError(f"split ratios must be 3 non-negative numbers summing to 1, got {ratios}")
    groups: dict[str, list[ImageRecord]] = {}
    for rec in dataset.images:
        if rec.split is None:
            groups.setdefault(str(rec.meta.get("pair") or rec.file), []).append(rec)
    keys = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    n_train = round(ratios[0] * len(keys))
    n_val = round(ratios[1] * len(keys))
    for rank, i in enumerate(order.tolist()):
        split: Split = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
        for rec in groups[keys[i]]:
            rec.split = split
    return sum(len(g) for g in groups.values())


@dataclass(slots=True)
class Summary:
    """What a dataset holds and what conversion left out.

    Attributes:
        images: Number of images.
        clean_images: Clean bags (:func:`is_clean`).
        boxes: Number of annotations.
        per_class: Annotations per taxonomy class.
        per_split: Images per split (``none`` when unassigned).
        dropped: Objects dropped by the class map, per original name.
        clipped: Boxes clipped to their image.
        invalid: Boxes dropped as empty or outside the image.
        unknown: Objects left out for a class the map does not know, per original
            name (only when read with ``problems="record"``).
        malformed: Annotation entries left out as unparsable (likewise); an
            entry shared by several images (a DvXray file, read for both views)
            counts once.
        unreadable: Images whose header could not be read, kept without a size
            (likewise).
        unplaced: Objects of known classes left out of those images.
        unboxed: Images with image-level labels but no boxes (DvXray without boxes).
    """

    images: int = 0
    clean_images: int = 0
    boxes: int = 0
    per_class: Counter[str] = field(default_factory=Counter)
    per_split: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    clipped: int = 0
    invalid: int = 0
    unknown: Counter[str] = field(default_factory=Counter)
    malformed: int = 0
    unreadable: int = 0
    unplaced: int = 0
    unboxed: int = 0


NOT_CLEAN_TRACES: tuple[str, ...] = (
    "image_labels",
    "dropped",
    "invalid",
    "unknown",
    "malformed",
    "unreadable",
    "unplaced",
    "missing_boxes",
)
"""``ImageRecord.meta`` keys whose presence says the image holds an object (or may:
a fault hid it) although it has no annotation."""


def is_clean(record: ImageRecord) -> bool:
    """Whether ``record`` is a clean bag: no annotation, and no trace of an object
    the reader left out (an image-level label, a class dropped or unknown, an
    invalid or malformed entry, an unreadable header, missing boxes).
    """
    if record.annotations:
        return False
    meta = record.meta
    return not meta or not any(meta.get(k) for k in NOT_CLEAN_TRACES)


def trace_key(item: object) -> object:
    """What identifies a ``malformed`` trace: its place and reason. One entry read
    for several images (both views of a DvXray scan) leaves equal traces on each,
    which counts of entries count once.
    """
    if isinstance(item, Mapping):
        return (item.get("path"), item.get("line"), item.get("field"), item.get("reason"))
    return repr(item)


def summarize(dataset: Dataset) -> Summary:
    """Counts images, boxes per class, and the traces left by :func:`add_object`."""
    s = Summary()
    malformed: set[object] = set()
    for rec in dataset.images:
        s.images += 1
        s.per_split[rec.split or "none"] += 1
        s.boxes += len(rec.annotations)
        for ann in rec.annotations:
            s.per_class[ann.category] += 1
        meta = rec.meta
        if meta:
            s.dropped.update(meta.get("dropped", ()))  # type: ignore[arg-type]
            s.clipped += len(meta.get("clipped", ()))  # type: ignore[arg-type]
            s.invalid += len(meta.get("invalid", ()))  # type: ignore[arg-type]
            unknown = meta.get("unknown", ())
            s.unknown.update(u["name"] for u in unknown)  # type: ignore[union-attr, index]
            malformed.update(map(trace_key, meta.get("malformed", ())))  # type: ignore[arg-type]
            s.unreadable += bool(meta.get("unreadable"))
            s.unplaced += len(meta.get("unplaced", ()))  # type: ignore[arg-type]
            if meta.get("image_labels") and not rec.annotations:
                s.unboxed += 1
        s.clean_images += is_clean(rec)
    s.malformed = len(malformed)
    return s
