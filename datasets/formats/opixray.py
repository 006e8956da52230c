"""OPIXray: one TXT file of boxes per image, 1-based corner pixels.

Layout (HiXray shares it, see :mod:`cv.datasets.formats.hixray`)::

    OPIXray/train/train_annotation/009000.txt   009000.jpg Straight_Knife 763 486 840 549
    OPIXray/train/train_image/009000.jpg
    OPIXray/test/test_annotation/...   test/test_image/...
    OPIXray/test/test_knife-1.txt ... test_knife-3.txt   image ids per occlusion level

Each line is ``name class x1 y1 x2 y2``: the first and last pixel covered,
counted from 1 (the reference evaluation subtracts 1). Boxes may reach past the
image; they are clipped and the clip recorded. The split is the ``train`` /
``test`` folder; an image listed in ``test_knife-N.txt`` gets subset ``OLN`` and
occlusion level N on its objects. An image without a TXT file is a clean bag.
"""

from __future__ import annotations

import os
import re
from os import PathLike
from pathlib import Path

from cv.boxes import corners1_to_xyxy
from cv.datasets.classmap import ClassMap, resolve_class_map
from cv.datasets.formats.common import (
    InvalidBoxes,
    Problems,
    SourceProblems,
    add_object,
    index_images,
    make_dataset,
    parse_number,
    raise_or_record,
    read_size,
    recording_problems,
    relative_file,
    split_from_parts,
    text_rows,
)
from cv.datasets.formats.registry import register_reader
from cv.errors import DataFormatError, NotFoundError
from cv.log import progress
from cv.records import Dataset, ImageRecord

_OCCLUSION_LIST = re.compile(r".*-([123])\.txt$", re.IGNORECASE)
_COLUMNS = ("name", "class", "x1", "y1", "x2", "y2")


def _named_dirs(root: Path, word: str) -> list[Path]:
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames.sort()
        for d in dirnames:
            if word in d.casefold():
                found.append(Path(dirpath) / d)
    return found


def _annotation_dirs(root: Path) -> list[Path]:
    return _named_dirs(root, "annotation")


def _occlusion_levels(root: Path, annotation_dirs: list[Path]) -> dict[str, int]:
    """Image stem to occlusion level, from the ``*-1/2/3.txt`` lists."""
    levels: dict[str, int] = {}
    skip = set(annotation_dirs)
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) in skip:
            dirnames[:] = []
            continue
        for fname in sorted(filenames):
            m = _OCCLUSION_LIST.match(fname)
            if not m:
                continue
            level = int(m.group(1))
            for _, fields in text_rows(Path(dirpath) / fname):
                levels[Path(fields[0]).stem] = level
    return levels


def read_txt_dataset(
    path: Path,
    *,
    name: str,
    class_map: ClassMap,
    invalid_boxes: InvalidBoxes = "raise",
    problems: Problems = "raise",
    source_problems: SourceProblems | None = None,
) -> Dataset:
    """Reads the OPIXray / HiXray TXT layout (shared by both readers).

    Raises:
        NotFoundError: If ``path`` is not a folder, or a TXT file has no image
            (unless listed in ``source_problems``).
        DataFormatError: If a line does not have the six fields, or a corner is not
            a number; the message names file, line and field (unless ``problems``
            is ``record``).
        UnknownClassError: If a class is not in the class map (likewise).
    """
    root = Path(path)
    if not root.is_dir():
        raise NotFoundError(f"{name}: expected the dataset folder", path=root)
    ann_dirs = _annotation_dirs(root)
    if not ann_dirs:
        raise DataFormatError(
            f"{name}: no '*annotation*' folder of TXT files under this folder", path=root
        )
    levels = _occlusion_levels(root, ann_dirs)

    # Each folder holding an annotation and / or an image folder is one part
    # (train, test); an image folder without annotations holds clean bags.
    parents = sorted({d.parent for d in ann_dirs} | {d.parent for d in _named_dirs(root, "image")})
    jobs: list[tuple[Path, Path | None, Path]] = []  # (image, txt, part folder)
    for parent in parents:
        children = [d for d in sorted(parent.iterdir()) if d.is_dir()]
        image_dirs = [d for d in children if "image" in d.name.casefold()]
        part_ann = [d for d in children if "annotation" in d.name.casefold()]
        images = index_images([*image_dirs, *part_ann])
        txts = {p.stem: p for d in part_ann for p in sorted(d.glob("*.txt"))}
        named: set[Path] = set()
        for stem, txt in txts.items():
            img = images.get(stem)
            if img is None:
                # The name column may still name an image with another stem.
                first = next(text_rows(txt), None)
                img = None if first is None else images.get(Path(first[1][0]).stem)
            if img is None:
                raise_or_record(
                    NotFoundError(
                        f"no image for this annotation file (looked for {stem}.* in "
                        f"{', '.join(str(d) for d in image_dirs) or parent})",
                        path=txt,
                    ),
                    source_problems,
                    problems,
                )
                continue
            named.add(img)
            jobs.append((img, txt, parent))
        jobs.extend((img, None, parent) for img in images.values() if img not in named)

    records: list[ImageRecord] = []
    with progress() as bar:
        task = bar.add_task(f"reading {name}", total=len(jobs))
        for img, txt, parent in sorted(jobs, key=lambda j: str(j[0])):
            rel_parts = parent.relative_to(root).parts
            rec = ImageRecord(
                file=relative_file(img, root),
                width=0,
                height=0,
                split=split_from_parts(rel_parts),
                source=name,
            )
            read_size(rec, img, problems)
            level = levels.get(img.stem)
            if level is not None:
                rec.subset = f"OL{level}"
            if txt is not None:
                _read_txt(txt, rec, class_map, invalid_boxes, problems, level)
            records.append(rec)
            bar.advance(task)
    return make_dataset(name, records, root=root, class_map=class_map)


def _read_txt(
    txt: Path,
    rec: ImageRecord,
    class_map: ClassMap,
    invalid_boxes: InvalidBoxes,
    problems: Problems,
    level: int | None,
) -> None:
    for line, fields in text_rows(txt):
        with recording_problems(rec, problems):
            if len(fields) != 6:
                raise DataFormatError(
                    f"expected 6 whitespace-separated fields 'name class x1 y1 x2 y2', "
                    f"got {len(fields)}",
                    path=txt,
                    line=line,
                    field=_COLUMNS[min(len(fields), 5)] if len(fields) < 6 else "columns",
                )
            corners = [
                parse_number(v, path=txt, line=line, field=f)
                for v, f in zip(fields[2:], _COLUMNS[2:], strict=True)
            ]
            box = corners1_to_xyxy(corners)[0]
            add_object(
                rec,
                tuple(box.tolist()),
                fields[1],
                class_map=class_map,
                path=txt,
                line=line,
                field="class",
                invalid_boxes=invalid_boxes,
                occlusion_level=level,
            )


def detect_txt_layout(path: Path, map_name: str) -> bool:
    """Whether ``path`` has the TXT layout and its first class is in map ``map_name``."""
    if not path.is_dir():
        return False
    for ann_dir in _annotation_dirs(path):
        for txt in sorted(ann_dir.glob("*.txt")):
            row = next(text_rows(txt), None)
            if row is None or len(row[1]) != 6:
                continue
            cmap = resolve_class_map(None, default=map_name)
            return row[1][1].strip().casefold() in cmap.targets
    return False


def _detect(path: Path) -> bool:
    return detect_txt_layout(path, "opixray")


@register_reader("opixray", detect=_detect)
def read_opixray(
    path: Path,
    *,
    class_map: ClassMap | str | PathLike[str] | None = None,
    invalid_boxes: InvalidBoxes = "raise",
    problems: Problems = "raise",
    source_problems: SourceProblems | None = None,
) -> Dataset:
    """OPIXray from its own folders (TXT boxes, occlusion lists OL1-OL3).

    Args:
        path: The OPIXray folder (holding ``train/`` and ``test/``).
        class_map: Map of OPIXray's class names; by default the shipped ``opixray`` map.
        invalid_boxes: ``raise`` on an empty or outside box, or ``drop`` it with a trace.
        problems: ``raise`` at an unknown class or malformed line, or ``record`` it
            with a trace and read on.
        source_problems: Under ``record``, where an annotation file without an
            image is listed (it raises without this list).
    """
    return read_txt_dataset(
        path,
        name="opixray",
        class_map=resolve_class_map(class_map, default="opixray"),
        invalid_boxes=invalid_boxes,
        problems=problems,
        source_problems=source_problems,
    )
