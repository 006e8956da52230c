"""EDS (Endogenous Shift): VOC XML in ``labels/<id>.xml``, from three scanners.

Layout: ``<domain>/labels/<id>.xml`` beside ``<domain>/images/<id>.jpg`` (one
folder per scanner), or a single ``labels/`` + ``images/`` pair. Boxes are VOC
1-based corners. The scanner (domain) is the folder that holds ``labels/`` and is
kept in ``ImageRecord.meta["domain"]``: cross-scanner evaluation needs it.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from cv.datasets.classmap import ClassMap, resolve_class_map
from cv.datasets.formats.common import (
    InvalidBoxes,
    Problems,
    SourceProblems,
    add_object,
    index_images,
    make_dataset,
    raise_or_record,
    read_size,
    recording_problems,
    relative_file,
    split_from_parts,
)
from cv.datasets.formats.registry import register_reader
from cv.datasets.formats.voc import read_voc_objects
from cv.errors import DataFormatError, NotFoundError
from cv.log import progress
from cv.records import Dataset, ImageRecord


def _label_dirs(root: Path) -> list[Path]:
    dirs = [root / "labels"] if (root / "labels").is_dir() else []
    dirs += sorted(p for p in root.glob("*/labels") if p.is_dir())
    dirs += sorted(p for p in root.glob("*/*/labels") if p.is_dir())
    return [d for d in dirs if any(d.glob("*.xml"))]


def _detect(path: Path) -> bool:
    return path.is_dir() and bool(_label_dirs(path))


@register_reader("eds", detect=_detect)
def read_eds(
    path: Path,
    *,
    class_map: ClassMap | str | PathLike[str] | None = None,
    invalid_boxes: InvalidBoxes = "raise",
    problems: Problems = "raise",
    source_problems: SourceProblems | None = None,
) -> Dataset:
    """EDS from its own folders (VOC XML in ``labels/``, one folder per scanner).

    Args:
        path: The EDS folder.
        class_map: Map of EDS's class names; by default the shipped ``eds`` map.
        invalid_boxes: ``raise`` on an empty or outside box, or ``drop`` it with a trace.
        problems: ``raise`` at an unknown class, a malformed XML file or object or
            an unreadable image, or ``record`` it with a trace on its image and read on.
        source_problems: Under ``record``, where an annotation file without an
            image is listed (it raises without this list).

    Raises:
        NotFoundError: If an XML file has no image (unless listed in ``source_problems``).
        DataFormatError: If there is no ``labels/`` folder or (unless ``problems``
            is ``record``) an XML file is malformed.
        UnknownClassError: If a class is not in the class map (likewise).
    """
    root = Path(path)
    if not root.is_dir():
        raise NotFoundError("eds: expected the dataset folder", path=root)
    label_dirs = _label_dirs(root)
    if not label_dirs:
        raise DataFormatError("eds: no 'labels/' folder of XML files here", path=root)
    cmap = resolve_class_map(class_map, default="eds")
    jobs: list[tuple[Path, Path, Path]] = []
    for labels in label_dirs:
        image_dirs = [d for d in sorted(labels.parent.iterdir()) if d.is_dir() and d != labels]
        images = index_images([*image_dirs, labels])
        for xml in sorted(labels.glob("*.xml")):
            img = images.get(xml.stem)
            if img is None:
                raise_or_record(
                    NotFoundError(
                        f"no image {xml.stem}.* beside labels/ (looked in "
                        f"{', '.join(d.name for d in image_dirs) or 'no folder'})",
                        path=xml,
                    ),
                    source_problems,
                    problems,
                )
                continue
            jobs.append((xml, img, labels))

    records: list[ImageRecord] = []
    with progress() as bar:
        task = bar.add_task("reading eds", total=len(jobs))
        for xml, img, labels in jobs:
            domain_parts = labels.parent.relative_to(root).parts
            rec = ImageRecord(
                file=relative_file(img, root),
                width=0,
                height=0,
                split=split_from_parts(domain_parts),
                source="eds",
            )
            read_size(rec, img, problems)
            if domain_parts:
                rec.meta["domain"] = "/".join(domain_parts)
            _read_objects(xml, rec, cmap, invalid_boxes, problems)
            records.append(rec)
            bar.advance(task)
    return make_dataset("eds", records, root=root, class_map=cmap)


def _read_objects(
    xml: Path, rec: ImageRecord, cmap: ClassMap, invalid_boxes: InvalidBoxes, problems: Problems
) -> None:
    for obj in read_voc_objects(xml, rec, problems):
        with recording_problems(rec, problems):
            ann = add_object(
                rec,
                obj.box,
                obj.name,
                class_map=cmap,
                path=xml,
                field=f"object[{obj.index}]",
                invalid_boxes=invalid_boxes,
            )
            if ann is not None and obj.difficult:
                rec.meta.setdefault("difficult", []).append(len(rec.annotations) - 1)
