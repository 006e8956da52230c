"""SIXray: VOC XML per positive image, an image-level CSV, and many clean bags.

Layout: ``P00001.xml`` beside ``P00001.jpg`` (or anywhere under the dataset
folder, matched by stem), negatives ``N*.jpg`` without XML, and CSV files
``name,Gun,Knife,Wrench,Pliers,Scissors`` of image-level labels (1 positive).

Class names are inconsistent in case (the class map matches case-insensitively)
and some ``<name>`` are empty: an empty name is resolved from the CSV when the
image has exactly one positive class there, and is an error otherwise. A CSV
whose file name says ``train`` / ``test`` gives the split of the images it lists.
An image the CSV marks positive must have an XML file of boxes: without boxes its
threats would be learnt as background.
"""

from __future__ import annotations

import csv
import io
from os import PathLike
from pathlib import Path

from cv.datasets.classmap import ClassMap, UnknownClassError, resolve_class_map
from cv.datasets.formats.common import (
    InvalidBoxes,
    Problems,
    SourceProblems,
    add_object,
    make_dataset,
    raise_or_record,
    read_size,
    recording_problems,
    relative_file,
    split_from_parts,
    trace_of,
)
from cv.datasets.formats.registry import register_reader
from cv.datasets.formats.voc import VocObject, read_voc_objects
from cv.errors import DataFormatError, DataValidationError, NotFoundError
from cv.image import IMAGE_SUFFIXES
from cv.log import progress
from cv.records import Dataset, ImageRecord, Split


class _CsvRow:
    __slots__ = ("line", "path", "positives", "split")

    def __init__(self, path: Path, line: int, positives: list[str], split: Split | None) -> None:
        self.path, self.line, self.positives, self.split = path, line, positives, split


def _read_label_csvs(root: Path) -> dict[str, _CsvRow]:
    rows: dict[str, _CsvRow] = {}
    for path in sorted(root.rglob("*.csv")):
        text = path.read_text(encoding="utf-8-sig", errors="replace")
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if not header or header[0].strip().casefold() != "name":
            continue  # not an image-level label file
        classes = [h.strip() for h in header[1:]]
        split = split_from_parts(path.stem.replace("-", "_").split("_"))
        for line, row in enumerate(reader, start=2):
            if not row or not row[0].strip():
                continue
            if len(row) != len(header):
                raise DataFormatError(
                    f"expected {len(header)} columns ({','.join(header)}), got {len(row)}",
                    path=path,
                    line=line,
                    field="columns",
                )
            positives = []
            for cls, value in zip(classes, row[1:], strict=True):
                try:
                    flag = float(value)
                except ValueError:
                    raise DataFormatError(
                        f"expected a number, got {value!r}", path=path, line=line, field=cls
                    ) from None
                if flag > 0:
                    positives.append(cls)
            rows[Path(row[0].strip()).stem] = _CsvRow(path, line, positives, split)
    return rows


def _detect(path: Path) -> bool:
    if not path.is_dir():
        return False
    for csv_path in path.glob("*.csv"):
        with csv_path.open(encoding="utf-8-sig", errors="replace") as f:
            header = f.readline().strip().casefold().split(",")
        if header[:2] == ["name", "gun"]:
            return True
    return any(p.name.upper().startswith("P") for p in path.rglob("P*.xml"))


@register_reader("sixray", detect=_detect)
def read_sixray(
    path: Path,
    *,
    class_map: ClassMap | str | PathLike[str] | None = None,
    invalid_boxes: InvalidBoxes = "raise",
    problems: Problems = "raise",
    source_problems: SourceProblems | None = None,
) -> Dataset:
    """SIXray from its own files (VOC XML boxes, image-level CSV, clean bags).

    Args:
        path: The SIXray folder.
        class_map: Map of SIXray's class names; by default the shipped ``sixray`` map.
        invalid_boxes: ``raise`` on an empty or outside box, or ``drop`` it with a trace.
        problems: ``raise`` at an unknown (or unresolvable empty) class name, a
            malformed XML file or object, an unreadable image or a positive image
            without boxes, or ``record`` it with a trace on its image (a positive
            image without boxes in ``record.meta["missing_boxes"]``) and read on.
        source_problems: Under ``record``, where an XML file without an image is
            listed (it raises without this list).

    Raises:
        NotFoundError: If an XML file has no image (unless listed in ``source_problems``).
        DataFormatError: If a CSV file, or (unless ``problems`` is ``record``) an
            XML file is malformed.
        UnknownClassError: If a class is unknown or an empty name cannot be
            resolved (likewise).
        DataValidationError: If the CSV marks an image positive that has no XML
            boxes (likewise).
    """
    root = Path(path)
    if not root.is_dir():
        raise NotFoundError("sixray: expected the dataset folder", path=root)
    cmap = resolve_class_map(class_map, default="sixray")
    labels = _read_label_csvs(root)
    images: dict[str, Path] = {}
    xmls: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        suffix = p.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            images.setdefault(p.stem, p)
        elif suffix == ".xml":
            xmls.setdefault(p.stem, p)
    for stem, xml in xmls.items():
        if stem not in images:
            raise_or_record(
                NotFoundError(f"no image {stem}.* for this annotation file", path=xml),
                source_problems,
                problems,
            )

    records: list[ImageRecord] = []
    with progress() as bar:
        task = bar.add_task("reading sixray", total=len(images))
        for stem, img in sorted(images.items()):
            label = labels.get(stem)
            rec = ImageRecord(
                file=relative_file(img, root),
                width=0,
                height=0,
                split=label.split if label else None,
                source="sixray",
            )
            read_size(rec, img, problems)
            if label is not None and label.positives:
                rec.meta["image_labels"] = list(label.positives)
            xml = xmls.get(stem)
            if xml is not None:
                _read_objects(xml, rec, label, cmap, invalid_boxes, problems)
            elif label is not None and label.positives:
                error = DataValidationError(
                    f"image {stem} is positive ({', '.join(label.positives)}) in the image-level "
                    "labels but has no XML file of boxes",
                    path=label.path,
                    line=label.line,
                    field="name",
                )
                if problems == "raise":
                    raise error
                rec.meta["missing_boxes"] = [trace_of(error)]
            records.append(rec)
            bar.advance(task)
    return make_dataset("sixray", records, root=root, class_map=cmap)


def _read_objects(
    xml: Path,
    rec: ImageRecord,
    label: _CsvRow | None,
    cmap: ClassMap,
    invalid_boxes: InvalidBoxes,
    problems: Problems,
) -> None:
    for obj in read_voc_objects(xml, rec, problems):
        with recording_problems(rec, problems):
            _read_object(xml, obj, rec, label, cmap, invalid_boxes)


def _read_object(
    xml: Path,
    obj: VocObject,
    rec: ImageRecord,
    label: _CsvRow | None,
    cmap: ClassMap,
    invalid_boxes: InvalidBoxes,
) -> None:
    field = f"object[{obj.index}].name"
    category = None
    if not obj.name.strip():
        positives = label.positives if label is not None else []
        if len(positives) != 1:
            where = (
                f"{label.path}:{label.line} lists {len(positives)} positive classes "
                f"({', '.join(positives) or 'none'})"
                if label is not None
                else "the image is in no image-level CSV"
            )
            raise UnknownClassError(
                f"empty class name that cannot be resolved: {where}; "
                "write the name into the XML file",
                name=obj.name,
                path=xml,
                field=field,
            )
        category = positives[0]
        rec.meta.setdefault("name_from_csv", []).append(obj.index)
    ann = add_object(
        rec,
        obj.box,
        obj.name,
        category=category,
        class_map=cmap,
        path=xml,
        field=f"object[{obj.index}]",
        invalid_boxes=invalid_boxes,
    )
    if ann is not None and obj.difficult:
        rec.meta.setdefault("difficult", []).append(len(rec.annotations) - 1)
