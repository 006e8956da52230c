"""YOLO datasets as ultralytics reads them.

Layout::

    out_dir/data.yaml               path, train / val / test, names {id: name}
    out_dir/images/<split>/<name>   the image (copied, linked, or already there)
    out_dir/labels/<split>/<stem>.txt
                                    one line per box: ``cls cx cy w h``, normalised

Every image gets a label file, an empty one for a clean bag, so that a clean bag
is a deliberate negative rather than a missing label. Ultralytics finds a label
by replacing the last ``images`` folder of the image path with ``labels``.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import Counter
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Literal

import numpy as np
import yaml

from cv.boxes import cxcywhn_to_xyxy, polygon_to_xyxy, xyxy_to_cxcywhn
from cv.datasets.classmap import ClassMap, resolve_class_map
from cv.datasets.formats.common import (
    InvalidBoxes,
    Problems,
    add_object,
    make_dataset,
    parse_number,
    read_size,
    recording_problems,
    relative_file,
    text_rows,
)
from cv.datasets.formats.registry import register_reader
from cv.errors import (
    ConfigError,
    CustomsVisionError,
    DataFormatError,
    DataValidationError,
    NotFoundError,
)
from cv.image import IMAGE_SUFFIXES
from cv.log import progress
from cv.records import SPLITS, Dataset, ImageRecord, Split

log = logging.getLogger(__name__)

ImageMode = Literal["copy", "symlink", "hardlink"]

# Six decimals keep boxes to within 0.01 px on a 10,000 px wide scan.
_LINE = "%d %.6f %.6f %.6f %.6f"


def yolo_layout(dataset: Dataset) -> list[tuple[Split, str]]:
    """The ``(split, image file name)`` each record gets in a YOLO folder.

    The name is the image's own file name; where two images of one split share a
    stem (label files are named by stem), their relative paths are flattened with
    ``__`` instead, so neither overwrites the other.

    Raises:
        DataValidationError: If two images would still get the same label file.
    """
    first: list[tuple[Split, str]] = []
    for rec in dataset.images:
        split: Split = rec.split or "train"
        first.append((split, Path(rec.file).name))
    stems = Counter((s, Path(n).stem) for s, n in first)
    out: list[tuple[Split, str]] = []
    seen: dict[tuple[str, str], str] = {}
    for rec, (split, name) in zip(dataset.images, first, strict=True):
        if stems[(split, Path(name).stem)] > 1:
            name = Path(rec.file).as_posix().lstrip("/").replace("/", "__")
        key = (split, Path(name).stem)
        if key in seen:
            raise DataValidationError(
                f"two images of split {split!r} would share the label file "
                f"{Path(name).stem}.txt: {seen[key]} and {rec.file}; rename one",
                path=rec.file,
            )
        seen[key] = rec.file
        out.append((split, name))
    return out


def write_yolo(
    dataset: Dataset,
    out_dir: Path,
    *,
    classes: Sequence[str] | None = None,
    images: ImageMode = "symlink",
) -> Path:
    """Writes ``dataset`` as a YOLO dataset that ultralytics trains on as it is.

    Writes ``out_dir/images/<split>/...``, ``out_dir/labels/<split>/<stem>.txt`` and
    ``out_dir/data.yaml`` (``path``, the splits present, ``names`` as ``{id: name}``;
    ultralytics requires ``train`` and ``val``: without a val split, ``val`` points
    at the test images, else the train images, and without a train split,
    ``train`` is empty and the folder is for evaluation only, each under a comment
    saying so).
    A record whose image already lies at its target place is neither copied nor
    linked. Records with split ``None`` go to ``train``.

    Args:
        dataset: The images and annotations to write.
        out_dir: The YOLO dataset folder; created if needed.
        classes: Taxonomy names in id order; by default ``dataset.classes``, or the
            classes used when that is empty.
        images: How images get to ``out_dir/images``: ``symlink`` (absolute links),
            ``hardlink`` or ``copy``.

    Returns:
        The path of ``data.yaml``.

    Raises:
        DataValidationError: If a class is not in ``classes``, or a box reaches
            outside its image.
        NotFoundError: If an image file does not exist.
    """
    out_dir = Path(out_dir)
    names = list(classes or dataset.classes or dataset.used_classes())
    ids = {n: i for i, n in enumerate(names)}
    layout = yolo_layout(dataset)
    records = dataset.images

    # All boxes in one array: one vectorised conversion and range check.
    counts = [len(r.annotations) for r in records]
    n = sum(counts)
    boxes = np.empty((n, 4), dtype=np.float64)
    sizes = np.empty((n, 2), dtype=np.float64)
    cls = np.empty(n, dtype=np.int64)
    k = 0
    for rec in records:
        if rec.width <= 0 or rec.height <= 0:
            raise DataValidationError(
                f"image size must be positive, got {rec.width} x {rec.height}", path=rec.file
            )
        for ann in rec.annotations:
            try:
                cls[k] = ids[ann.category]
            except KeyError:
                raise DataValidationError(
                    f"class {ann.category!r} is not among the classes written ({', '.join(names)})",
                    path=rec.file,
                    field="category",
                ) from None
            boxes[k] = ann.box
            sizes[k] = (rec.width, rec.height)
            k += 1
    norm = xyxy_to_cxcywhn(boxes, sizes[:, 0], sizes[:, 1])  # type: ignore[arg-type]
    lo = norm[:, :2] - norm[:, 2:] / 2
    hi = norm[:, :2] + norm[:, 2:] / 2
    bad = np.flatnonzero(
        (lo < -1e-6).any(axis=1) | (hi > 1 + 1e-6).any(axis=1) | (norm[:, 2:] <= 0).any(axis=1)
    )
    if bad.size:
        j = int(bad[0])
        rec_index = int(np.searchsorted(np.cumsum(counts), j, side="right"))
        rec = records[rec_index]
        raise DataValidationError(
            f"box {tuple(boxes[j].tolist())} is empty or reaches outside the "
            f"{rec.width}x{rec.height} image (clip it first)",
            path=rec.file,
            field="box",
        )
    lines = [
        _LINE % (c, a, b, w, h) for c, (a, b, w, h) in zip(cls.tolist(), norm.tolist(), strict=True)
    ]

    for split in {s for s, _ in layout}:
        (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
        (out_dir / "labels" / split).mkdir(parents=True, exist_ok=True)
    k = 0
    with progress() as bar:
        task = bar.add_task("writing YOLO", total=len(records))
        for rec, (split, name), count in zip(records, layout, counts, strict=True):
            text = "\n".join(lines[k : k + count])
            k += count
            label = out_dir / "labels" / split / (Path(name).stem + ".txt")
            with open(label, "w", encoding="ascii") as f:
                f.write(text + "\n" if text else "")
            _place_image(dataset.image_path(rec), out_dir / "images" / split / name, images)
            bar.advance(task)

    data_yaml = out_dir / "data.yaml"
    data_yaml.write_text(_data_yaml_text(out_dir, {s for s, _ in layout}, names), encoding="utf-8")
    return data_yaml


def _data_yaml_text(out_dir: Path, present: set[Split], names: list[str]) -> str:
    """The text of ``data.yaml``: ``path``, the splits, ``names``.

    ultralytics refuses a ``data.yaml`` without ``train:`` or ``val:``, even to
    validate (``check_det_dataset``), and OPIXray, HiXray and PIDray have only
    train and test. Such a file gets ``val:`` pointing at the test images (else
    the train images) under a comment that says so; the images keep their own
    split (:func:`read_yolo` reads a ``val`` that repeats another split as that
    split). A source without a train split (a test set on its own) gets an empty
    ``train:``, which ultralytics accepts for validation and ``train xray``
    refuses, under a comment saying the folder is for evaluation only.
    """
    doc: dict[str, object] = {"path": str(out_dir.absolute())}
    comments: dict[str, str] = {}
    for split in SPLITS:
        if split in present:
            doc[split] = f"images/{split}"
        elif split == "train":
            doc["train"] = None
            comments["train"] = (
                "# The source has no train split: this folder is for evaluation only "
                "(ultralytics val, customs-vision eval xray); train is empty because "
                "ultralytics requires the key.\n"
            )
        elif split == "val":
            stand_in = next((s for s in ("test", "train") if s in present), None)
            doc["val"] = None if stand_in is None else f"images/{stand_in}"
            if stand_in is not None:
                comments["val"] = (
                    f"# The source has no val split: val is the {stand_in} split, because "
                    "ultralytics requires a val.\n"
                )
    doc["names"] = dict(enumerate(names))
    lines = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).splitlines(keepends=True)
    return "".join(comments.get(line.split(":", 1)[0], "") + line for line in lines)


def _place_image(src: Path, dst: Path, mode: ImageMode) -> None:
    if os.path.lexists(dst):
        if dst.is_symlink():
            if mode == "symlink" and Path(os.readlink(dst)) == src.absolute():
                return
            dst.unlink()
        elif src.exists() and os.path.samefile(src, dst):
            return  # the image already lies at its target place (or is a hard link to it)
        else:
            dst.unlink()
    if not src.is_file():
        raise NotFoundError("image file does not exist", path=src)
    if mode == "symlink":
        os.symlink(src.absolute(), dst)
    elif mode == "hardlink":
        try:
            os.link(src, dst)
        except OSError as exc:
            raise CustomsVisionError(
                f"cannot hard-link the image here ({exc.strerror}); images and output must be "
                "on one file system: use --images symlink or copy",
                path=dst,
            ) from None
    elif mode == "copy":
        shutil.copy2(src, dst)
    else:
        raise ConfigError(f"images must be copy, symlink or hardlink, got {mode!r}", field="images")


def _names(value: object, path: Path) -> dict[int, str]:
    if isinstance(value, list):
        return {i: str(v) for i, v in enumerate(value)}
    if isinstance(value, dict):
        try:
            return {int(k): str(v) for k, v in value.items()}
        except (TypeError, ValueError):
            raise DataFormatError(
                "names keys must be class ids", path=path, field="names"
            ) from None
    raise DataFormatError("names must be a list or a mapping {id: name}", path=path, field="names")


def _images_of(entry: str, base: Path, yaml_path: Path, split: str) -> list[Path]:
    p = Path(entry)
    p = p if p.is_absolute() else base / p
    if p.is_dir():
        return sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES)
    if p.is_file() and p.suffix.lower() == ".txt":
        # A list file: one image path per line, relative to the dataset path.
        out = []
        for _, fields in text_rows(p):
            q = Path(" ".join(fields))
            out.append(q if q.is_absolute() else base / q)
        return out
    raise NotFoundError(f"the {split} images ({entry}) do not exist", path=yaml_path, field=split)


def _entries(value: object) -> list[str]:
    """A split's ``data.yaml`` entries (one path, a list, or nothing) as a list."""
    if not value:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _label_of(image: Path) -> Path:
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _detect_yolo(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() in (".yaml", ".yml")
    # Folders this toolkit writes (synth, convert) hold COCO files beside data.yaml
    # in annotations/; those carry what YOLO cannot (occlusion, concealment, subsets,
    # original class names, exact boxes), so the folder is read as COCO.
    return (path / "data.yaml").is_file() and not any((path / "annotations").glob("*.json"))


@register_reader("yolo", detect=_detect_yolo)
def read_yolo(
    path: Path,
    *,
    class_map: ClassMap | str | PathLike[str] | None = None,
    name: str | None = None,
    invalid_boxes: InvalidBoxes = "raise",
    problems: Problems = "raise",
) -> Dataset:
    """A YOLO dataset, from its ``data.yaml`` (or the folder holding it).

    Image sizes come from the image headers. An image without a label file is a
    background image, as in ultralytics. A ``val`` that lists the same folders as
    ``train`` or ``test`` only stands in for a missing val split (ultralytics
    requires one), so its images keep the other split.

    Args:
        path: ``data.yaml`` or the folder holding it.
        class_map: Map of the ``names``; by default they must be taxonomy names.
        name: Dataset name; by default the folder name.
        invalid_boxes: ``raise`` on an empty or outside box, or ``drop`` it with a trace.
        problems: ``raise`` at an unknown class, malformed label line or
            unreadable image, or ``record`` it with a trace and read on.

    Raises:
        NotFoundError: If ``data.yaml`` or a split folder does not exist.
        DataFormatError: If ``data.yaml`` or (unless ``problems`` is ``record``) a
            label line is malformed.
        UnknownClassError: If a name is not in the class map (likewise).
    """
    path = Path(path)
    yaml_path = path if path.is_file() else path / "data.yaml"
    if not yaml_path.is_file():
        raise NotFoundError("no data.yaml here", path=yaml_path)
    try:
        doc = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataFormatError(
            f"not valid YAML ({getattr(exc, 'problem', exc)})",
            path=yaml_path,
            line=None if mark is None else mark.line + 1,
        ) from None
    if not isinstance(doc, dict):
        raise DataFormatError("data.yaml must be a mapping", path=yaml_path)
    if "names" not in doc:
        raise DataFormatError("missing 'names'", path=yaml_path, field="names")
    names = _names(doc["names"], yaml_path)
    base = Path(str(doc.get("path") or yaml_path.parent))
    if not base.is_absolute():
        base = yaml_path.parent / base
    if not base.is_dir():
        # A moved dataset keeps its old absolute `path`; its own folder still works.
        base = yaml_path.parent
    cmap = resolve_class_map(class_map, default=None)

    records: list[ImageRecord] = []
    seen: set[Path] = set()
    jobs: list[tuple[Split, Path]] = []
    entries_of = {s: _entries(doc.get(s)) for s in SPLITS}
    for split in SPLITS:
        entries = entries_of[split]
        if split == "val" and entries in (entries_of["train"], entries_of["test"]):
            # A stand-in val (ultralytics requires one; write_yolo writes one for a
            # source without val): its images keep the split they are listed under.
            continue
        for entry in entries:
            for img in _images_of(str(entry), base, yaml_path, split):
                if img not in seen:
                    seen.add(img)
                    jobs.append((split, img))
    with progress() as bar:
        task = bar.add_task("reading YOLO", total=len(jobs))
        for split, img in jobs:
            rec = ImageRecord(
                file=relative_file(img, base), width=0, height=0, split=split, source=name or ""
            )
            read_size(rec, img, problems)
            label = _label_of(img)
            if label.is_file():
                _read_label(label, rec, names, cmap, invalid_boxes, problems)
            records.append(rec)
            bar.advance(task)
    ds_name = name or base.name
    for rec in records:
        rec.source = rec.source or ds_name
    dataset = make_dataset(ds_name, records, root=base, class_map=cmap)
    mapped = [cmap.targets.get(n.strip().casefold()) for _, n in sorted(names.items())]
    dataset.classes = [m for i, m in enumerate(mapped) if m and m not in mapped[:i]]
    return dataset


def _read_label(
    label: Path,
    rec: ImageRecord,
    names: dict[int, str],
    cmap: ClassMap,
    invalid_boxes: InvalidBoxes,
    problems: Problems,
) -> None:
    for line, fields in text_rows(label):
        with recording_problems(rec, problems):
            _read_label_line(label, line, fields, rec, names, cmap, invalid_boxes)


def _read_label_line(
    label: Path,
    line: int,
    fields: list[str],
    rec: ImageRecord,
    names: dict[int, str],
    cmap: ClassMap,
    invalid_boxes: InvalidBoxes,
) -> None:
    if len(fields) < 5 or (len(fields) > 5 and len(fields) % 2 == 0):
        raise DataFormatError(
            f"expected 'cls cx cy w h' (or 'cls x1 y1 x2 y2 x3 y3 ...' for a polygon), "
            f"got {len(fields)} fields",
            path=label,
            line=line,
            field="columns",
        )
    cid = parse_number(fields[0], path=label, line=line, field="class")
    if cid != int(cid) or int(cid) not in names:
        raise DataFormatError(
            f"class id {fields[0]} is not in data.yaml's names",
            path=label,
            line=line,
            field="class",
        )
    if len(fields) == 5:
        vals = [
            parse_number(v, path=label, line=line, field=f)
            for v, f in zip(fields[1:], ("cx", "cy", "w", "h"), strict=True)
        ]
        box = cxcywhn_to_xyxy(vals, rec.width, rec.height)[0]
    else:
        pts = [parse_number(v, path=label, line=line, field="polygon") for v in fields[1:]]
        xy = np.array(pts).reshape(-1, 2) * (rec.width, rec.height)
        box = polygon_to_xyxy(xy)
    add_object(
        rec,
        tuple(box.tolist()),
        names[int(cid)],
        class_map=cmap,
        path=label,
        line=line,
        invalid_boxes=invalid_boxes,
    )
