"""COCO JSON: the generic reader and our writer.

COCO boxes are ``[x, y, w, h]`` in 0-based absolute pixels (see :mod:`cv.boxes`).
Our writer adds keys that COCO tools ignore, so that our own files round-trip
without loss:

* ``images[]``: ``split``, ``subset``, ``source``, ``view``, ``meta``;
* ``annotations[]``: ``original_name``, ``occlusion``, ``occlusion_level``,
  ``concealment``;
* ``categories[]``: ``supercategory`` is the taxonomy group.

``file_name`` is written relative to the JSON file's folder when the image's
place is known, which is also where the reader looks first. Public datasets put
their JSON files in ``annotations/`` and the images in a folder named after the
split (COCO's ``annotations/instances_train2017.json`` and ``train2017/``), so the
readers also look there, in ``images/`` and in the dataset folder
(:func:`image_root_candidates`, :func:`guess_image_root`); ``image_root``
(``--image-root``) names the folder for a layout nothing guesses.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cv.boxes import xywh_to_xyxy, xyxy_to_xywh
from cv.datasets.classmap import ClassMap, resolve_class_map
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
    recording_source_problems,
    relative_file,
    split_from_parts,
)
from cv.datasets.formats.registry import register_reader
from cv.errors import DataFormatError, DataValidationError, ImageReadError, NotFoundError
from cv.records import SPLITS, Dataset, ImageRecord, Split
from cv.taxonomy import category, is_category

log = logging.getLogger(__name__)

MissingImages = Literal["keep", "raise"]
"""What a COCO-based reader does when no folder it looks in holds any image of a
file: ``keep`` the records (the file may serve as ground truth without pixels),
or ``raise`` a :class:`~cv.errors.NotFoundError` naming the folders looked in
(``data convert`` and ``data check``, which need the pixels)."""


def write_coco(
    dataset: Dataset,
    path: Path,
    *,
    classes: Sequence[str] | None = None,
    split: str | None = None,
) -> Path:
    """Writes ``dataset`` as one COCO JSON file.

    Args:
        dataset: The images and annotations to write.
        path: The JSON file to write; parent folders are created.
        classes: Taxonomy names in category-id order (ids start at 1); by default
            ``dataset.classes``, or the classes used when that is empty.
        split: Write only the records of this split.

    Returns:
        ``path``.

    Raises:
        DataValidationError: If an annotation's class is not in ``classes``.
    """
    path = Path(path)
    names = list(classes or dataset.classes or dataset.used_classes())
    cat_ids = {name: i + 1 for i, name in enumerate(names)}
    json_dir = path.parent.absolute()
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    records = [r for r in dataset.images if split is None or r.split == split]

    # One vectorised conversion for all boxes instead of one per annotation.
    all_boxes = [a.box for r in records for a in r.annotations]
    xywh = xyxy_to_xywh(np.array(all_boxes, dtype=np.float64).reshape(-1, 4)).tolist()
    k = 0
    for image_id, rec in enumerate(records, start=1):
        images.append(
            {
                "id": image_id,
                "file_name": _file_name(dataset, rec, json_dir),
                "width": rec.width,
                "height": rec.height,
                "split": rec.split,
                "subset": rec.subset,
                "source": rec.source,
                "view": rec.view,
                "meta": rec.meta,
            }
        )
        for ann in rec.annotations:
            try:
                cat_id = cat_ids[ann.category]
            except KeyError:
                raise DataValidationError(
                    f"class {ann.category!r} is not among the classes written ({', '.join(names)})",
                    path=rec.file,
                    field="category",
                ) from None
            x, y, w, h = xywh[k]
            k += 1
            annotations.append(
                {
                    "id": k,
                    "image_id": image_id,
                    "category_id": cat_id,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": int(ann.iscrowd),
                    "original_name": ann.original_name,
                    "occlusion": ann.occlusion,
                    "occlusion_level": ann.occlusion_level,
                    "concealment": ann.concealment,
                }
            )
    categories = [
        {
            "id": cat_ids[n],
            "name": n,
            "supercategory": category(n).group if is_category(n) else "other",
        }
        for n in names
    ]
    doc = {
        "info": {
            "description": f"{dataset.name}, written by customs-vision",
            "dataset": dataset.name,
        },
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"), default=_json_default, ensure_ascii=False)
    return path


def _file_name(dataset: Dataset, rec: ImageRecord, json_dir: Path) -> str:
    p = Path(rec.file)
    if not p.is_absolute():
        if dataset.root is None:
            return rec.file
        p = dataset.root.absolute() / p
    try:
        return Path(os.path.relpath(p, json_dir)).as_posix()
    except ValueError:  # another drive on Windows: no relative path exists
        return str(p)


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def load_json(path: Path) -> Any:
    """Parses a JSON file; a syntax error names the file and line.

    Raises:
        NotFoundError: If the file does not exist.
        DataFormatError: If it is not valid JSON.
    """
    if not path.is_file():
        raise NotFoundError("annotation file does not exist", path=path)
    try:
        with path.open("rb") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"not valid JSON ({exc.msg})", path=path, line=exc.lineno) from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"not UTF-8 text ({exc.reason})", path=path) from None


def _require(obj: Any, key: str, kind: type | tuple[type, ...], *, path: Path, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise DataFormatError(f"missing {key!r}", path=path, field=f"{where}.{key}".lstrip("."))
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DataFormatError(
            f"{key!r} has the wrong type ({type(value).__name__})",
            path=path,
            field=f"{where}.{key}".lstrip("."),
        )
    return value


def coco_records(
    doc: Any,
    *,
    json_path: Path,
    image_root: Path,
    root: Path,
    class_map: ClassMap,
    source: str,
    split: Split | None = None,
    subset: str | None = None,
    invalid_boxes: InvalidBoxes = "raise",
    problems: Problems = "raise",
    source_problems: SourceProblems | None = None,
) -> tuple[list[ImageRecord], list[str]]:
    """The records of one parsed COCO document.

    Args:
        doc: The parsed JSON.
        json_path: Where it came from, for messages.
        image_root: The folder ``file_name`` is relative to.
        root: The dataset root that ``ImageRecord.file`` is made relative to.
        class_map: Maps category names to taxonomy names.
        source: The dataset name stored in each record (unless the file has its own).
        split: Split of every record; otherwise the image's ``split`` key.
        subset: Subset of every record; otherwise the image's ``subset`` key.
        invalid_boxes: What to do with empty or outside boxes.
        problems: ``raise`` at the first unknown category, malformed annotation or
            unreadable image (one whose size the file leaves out), or ``record``
            each on its image and read on. Under ``record`` a malformed image entry
            (or a second entry with the same id) is left out and listed in
            ``source_problems``, the rest of the file read on; an annotation whose
            ``image_id`` has the wrong type but names an image (``"2"``, ``2.0``)
            is recorded as malformed on that image. A malformed category entry
            raises either way.
        source_problems: Under ``record``, where a malformed image entry, and an
            annotation whose ``image_id`` is missing, names no image or names an
            image entry left out, are listed (they raise without this list).

    Returns:
        The records, and the mapped class names in category order.
    """
    if not isinstance(doc, dict):
        raise DataFormatError("a COCO file is a JSON object", path=json_path)
    images = _require(doc, "images", list, path=json_path, where="")
    anns = doc.get("annotations", [])
    if not isinstance(anns, list):
        raise DataFormatError("'annotations' must be a list", path=json_path, field="annotations")
    cats = _require(doc, "categories", list, path=json_path, where="")

    cat_names: dict[int, str] = {}
    for i, cat in enumerate(cats):
        cid = _require(cat, "id", int, path=json_path, where=f"categories[{i}]")
        cname = _require(cat, "name", str, path=json_path, where=f"categories[{i}]")
        if cid in cat_names:
            raise DataFormatError(
                f"category id {cid} appears twice", path=json_path, field=f"categories[{i}].id"
            )
        cat_names[cid] = cname
    mapped_order: list[str] = []
    for i, cname in enumerate(cat_names.values()):
        target = class_map.targets.get(cname.strip().casefold(), "")
        if target == "" and problems == "raise":
            # Unknown names fail here, before any image is read, naming the category.
            # When recording, each object of such a category is recorded on its image.
            class_map.map(cname, path=json_path, field=f"categories[{i}].name")
        if target and target not in mapped_order:
            mapped_order.append(target)

    records: dict[int, ImageRecord] = {}
    entry_of: dict[int, tuple[str, str]] = {}  # id -> ("images[3]", "images[3] ('a.png')")
    left_out: set[int] = set()  # ids of the entries left out under `record`
    for i, im in enumerate(images):
        where = f"images[{i}]"
        rec = None
        # Under `record` a faulty entry is listed in source_problems and left out
        # alone; under `raise` (or without a list) it raises as ever.
        with recording_source_problems(source_problems, problems):
            rec = _image_record(
                im,
                where,
                records=records,
                entry_of=entry_of,
                left_out=left_out,
                json_path=json_path,
                image_root=image_root,
                root=root,
                source=source,
                split=split,
                subset=subset,
                problems=problems,
            )
        if rec is None:
            iid = im.get("id") if isinstance(im, dict) else None
            if isinstance(iid, int) and not isinstance(iid, bool) and iid not in records:
                left_out.add(iid)
                entry_of.setdefault(iid, (where, _entry_name(im, where)))

    # Validate every bbox field first, then convert all boxes in one call.
    raw_boxes: list[list[float]] = []
    bad_boxes: dict[int, DataFormatError] = {}
    for i, ann in enumerate(anns):
        bbox = ann.get("bbox") if isinstance(ann, dict) else None
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
        ):
            error = DataFormatError(
                f"bbox must be a list of 4 numbers [x, y, w, h], got {bbox!r}",
                path=json_path,
                field=f"annotations[{i}].bbox",
            )
            if problems == "raise":
                raise error
            bad_boxes[i] = error  # recorded on its image below
            bbox = [0.0, 0.0, 0.0, 0.0]
        raw_boxes.append(bbox)
    xyxy = xywh_to_xyxy(np.array(raw_boxes, dtype=np.float64).reshape(-1, 4)).tolist()
    for i, ann in enumerate(anns):
        where = f"annotations[{i}]"
        try:
            rec = _image_of(ann, records, entry_of, json_path, where)
        except DataFormatError as error:
            owner = _named_loosely(ann, records) if problems == "record" else None
            if owner is None:
                raise_or_record(error, source_problems, problems)
            else:
                # It names an image, but not as COCO tools read it: the image's
                # object is unlabelled, so the fault is the image's (its checks
                # and --fix-out see it), not a stray entry's.
                iid, rec = owner
                record_problem(
                    rec,
                    DataFormatError(
                        f"{error.reason}: {ann['image_id']!r} would be image {iid}, but "
                        "COCO tools match ids exactly; its object is left out",
                        path=json_path,
                        field=error.field,
                    ),
                )
            continue
        with recording_problems(rec, problems):
            if i in bad_boxes:
                raise bad_boxes[i]
            cid = _require(ann, "category_id", int, path=json_path, where=where)
            cname = cat_names.get(cid)
            if cname is None:
                raise DataFormatError(
                    f"category_id {cid} is not among the categories",
                    path=json_path,
                    field=f"{where}.category_id",
                )
            original = ann.get("original_name")
            level = ann.get("occlusion_level")
            add_object(
                rec,
                tuple(xyxy[i]),  # type: ignore[arg-type]
                original if isinstance(original, str) else cname,
                category=cname,
                class_map=class_map,
                path=json_path,
                field=where,
                invalid_boxes=invalid_boxes,
                occlusion=ann.get("occlusion"),
                occlusion_level=level if isinstance(level, int) else None,
                concealment=ann.get("concealment"),
                iscrowd=bool(ann.get("iscrowd", 0)),
            )
    return list(records.values()), mapped_order


def _image_record(
    im: Any,
    where: str,
    *,
    records: dict[int, ImageRecord],
    entry_of: dict[int, tuple[str, str]],
    left_out: set[int],
    json_path: Path,
    image_root: Path,
    root: Path,
    source: str,
    split: Split | None,
    subset: str | None,
    problems: Problems,
) -> ImageRecord:
    """The record of the image entry ``im`` (``images[i]``), added to ``records``.

    Raises:
        DataFormatError: If the entry is malformed or its id was taken by an
            earlier entry; under ``record``, a kept earlier entry of that id gets
            a ``malformed`` trace too (which image the id's annotations belong to
            is unknown).
    """
    iid = _require(im, "id", int, path=json_path, where=where)
    fname = _require(im, "file_name", str, path=json_path, where=where)
    if iid in records or iid in left_out:
        first = records.get(iid)
        if first is not None and problems == "record":
            record_problem(
                first,
                DataFormatError(
                    f"image id {iid} appears twice (again in {where}, left out): its "
                    "annotations may belong to either image",
                    path=json_path,
                    field=f"{entry_of[iid][0]}.id",
                ),
            )
        raise DataFormatError(f"image id {iid} appears twice", path=json_path, field=f"{where}.id")
    img_path = Path(os.path.normpath(image_root.absolute() / fname))
    w, h = im.get("width"), im.get("height")
    sized = w is not None and h is not None
    if sized and (not isinstance(w, int) or not isinstance(h, int) or w <= 0 or h <= 0):
        raise DataFormatError(
            f"width and height must be positive integers, got {w!r} x {h!r}",
            path=json_path,
            field=f"{where}.width",
        )
    rec_split = split if split is not None else im.get("split")
    if rec_split is not None and rec_split not in SPLITS:
        raise DataFormatError(
            f"split {rec_split!r} is not one of {', '.join(SPLITS)}",
            path=json_path,
            field=f"{where}.split",
        )
    meta = im.get("meta")
    rec = records[iid] = ImageRecord(
        file=relative_file(img_path, root.absolute()),
        width=w if sized else 0,
        height=h if sized else 0,
        split=rec_split,
        subset=subset if subset is not None else im.get("subset"),
        source=im.get("source") or source,
        view=im.get("view"),
        meta=dict(meta) if isinstance(meta, dict) else {},
    )
    entry_of[iid] = (where, _entry_name(im, where))
    if not sized:
        # Some exports leave the size out; the image header has it.
        read_size(rec, img_path, problems)
    return rec


def _entry_name(im: Any, where: str) -> str:
    """``images[3] ('a.png')``: an image entry, for messages."""
    fname = im.get("file_name") if isinstance(im, dict) else None
    return f"{where} ({fname!r})" if isinstance(fname, str) else where


def _image_of(
    ann: Any,
    records: dict[int, ImageRecord],
    entry_of: dict[int, tuple[str, str]],
    path: Path,
    where: str,
) -> ImageRecord:
    """The record an annotation's ``image_id`` names.

    Raises:
        DataFormatError: If ``image_id`` is missing, not an integer, names no
            image, or names an image entry that was left out (under ``record``).
    """
    iid = _require(ann, "image_id", int, path=path, where=where)
    rec = records.get(iid)
    if rec is None:
        entry = entry_of.get(iid)
        reason = (
            f"image_id {iid} is not among the images"
            if entry is None
            else f"image_id {iid} names {entry[1]}, which is left out for its own fault"
        )
        raise DataFormatError(reason, path=path, field=f"{where}.image_id")
    return rec


def _named_loosely(ann: Any, records: dict[int, ImageRecord]) -> tuple[int, ImageRecord] | None:
    """The image an ``image_id`` of the wrong type names when read as a number
    (``"2"``, ``2.0``), with its id; ``None`` if it names none."""
    value = ann.get("image_id") if isinstance(ann, dict) else None
    numeric = (isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value)) or (
        isinstance(value, float) and value.is_integer()
    )
    if not numeric:
        return None
    iid = int(value)  # type: ignore[arg-type]
    rec = records.get(iid)
    return None if rec is None else (iid, rec)


_IMAGES_TRIED = 1000
"""Images of a file :func:`guess_image_root` looks for at most (spread over the file)."""


def guess_image_root(
    json_path: Path, doc: Any, candidates: Sequence[Path], *, required: bool = False
) -> Path:
    """The first of ``candidates`` (then the JSON's folder) holding the file's images.

    Datasets ship their COCO files in ``annotations/`` and the images in a folder
    named after the split or subset; ``file_name`` is relative to that folder.
    The folder holding the file's first image wins; if no folder holds it, the
    next image decides, and so on. When no folder holds any, the first candidate
    is returned (a file used without its pixels, as ground truth for
    precomputed predictions, still reads), unless ``required``.

    Raises:
        NotFoundError: If ``required`` and the file lists images that no folder
            holds; the message names the folders looked in.
    """
    images = doc.get("images") if isinstance(doc, dict) else None
    # A file whose "images" is no list names no image here; reading it says why.
    names = [
        im["file_name"]
        for im in (images if isinstance(images, list) else ())
        if isinstance(im, dict) and isinstance(im.get("file_name"), str)
    ]
    places = list(dict.fromkeys([*candidates, json_path.parent]))
    tried = names[:: max(1, len(names) // _IMAGES_TRIED)]
    for name in tried:
        for place in places:
            if (place / name).is_file():
                return place
    if names:
        message = (
            f"found none of the images this file lists (the first: {names[0]!r}; "
            f"{len(tried)} of {len(names)} tried) in any folder looked in: "
            f"{', '.join(str(p) for p in places)}; name the image folder with --image-root DIR"
        )
        if required:
            raise NotFoundError(message, path=json_path)
        log.info("%s: %s", json_path, message)
    return places[0]


def image_root_candidates(json_path: Path, root: Path) -> list[Path]:
    """The folders a COCO file's images may lie in, most likely first.

    Beside ``annotations/`` (that is, in ``root``): the folders named by the words
    of the file name that name a split (COCO's ``instances_train2017.json`` and
    ``train2017/``), and by the split itself (``train/``); then, where they exist,
    the same under ``images/``, ``images/`` and ``JPEGImages/`` themselves; then
    ``root``.
    """
    words = [w for w in re.split(r"[_\-.]+", json_path.stem) if split_from_parts([w])]
    split = _split_of_file(json_path)
    named = list(dict.fromkeys([*words, *([split] if split else [])]))
    maybe = [root / "images" / w for w in named] + [root / "images", root / "JPEGImages"]
    return [root / w for w in named] + [p for p in maybe if p.is_dir()] + [root]


def dataset_root(path: Path) -> Path:
    """The dataset folder of a COCO file or folder: ``annotations/``'s parent, if in one."""
    folder = path.parent if path.is_file() else path
    return folder.parent if folder.name == "annotations" else folder


def _split_of_file(path: Path) -> Split | None:
    return split_from_parts(path.stem.replace("-", "_").split("_"))


def read_coco_files(
    files: Sequence[Path],
    *,
    name: str,
    root: Path,
    class_map: ClassMap,
    image_roots: Sequence[Path] | Callable[[Path, Any], Path] | None = None,
    splits: Sequence[Split | None] | None = None,
    subsets: Sequence[str | None] | None = None,
    invalid_boxes: InvalidBoxes = "raise",
    problems: Problems = "raise",
    source_problems: SourceProblems | None = None,
) -> Dataset:
    """Reads several COCO files into one dataset (building block of the COCO-based readers).

    Args:
        files: The JSON files.
        name: Dataset name, stored as each record's ``source``.
        root: Dataset root; record files are relative to it.
        class_map: Maps category names to taxonomy names.
        image_roots: Per file, the folder its ``file_name`` is relative to, or a
            function of the file and its parsed JSON giving it, such as one that
            calls :func:`guess_image_root` (default: the file's folder).
        splits: Per file, the split of its records (default: the image's ``split``
            key, else the split the file name says).
        subsets: Per file, the subset of its records.
        invalid_boxes: What to do with empty or outside boxes.
        problems: ``raise`` at an unknown category or malformed annotation, or
            ``record`` it on its image (see :func:`coco_records`).
        source_problems: Under ``record``, where a file that is not valid JSON or
            not a COCO document (none of its images is read), a malformed image
            entry (that image is left out) and an annotation that names no image
            (or an image left out) are listed; they raise without this list.

    Raises:
        NotFoundError: If ``image_roots`` finds no folder holding a file's images
            (after the file's own format errors, which come first).
    """
    records: list[ImageRecord] = []
    order: list[str] = []
    for k, f in enumerate(files):
        parsed: tuple[list[ImageRecord], list[str]] | None = None
        not_found: NotFoundError | None = None
        with recording_source_problems(source_problems, problems):
            doc = load_json(f)
            if image_roots is None:
                image_root = f.parent
            elif callable(image_roots):
                try:
                    image_root = image_roots(f, doc)
                except NotFoundError as exc:
                    # Reported after the file is parsed, so a malformed file says so first.
                    image_root, not_found = f.parent, exc
            else:
                image_root = image_roots[k]
            try:
                parsed = coco_records(
                    doc,
                    json_path=f,
                    image_root=image_root,
                    root=root,
                    class_map=class_map,
                    source=name,
                    split=splits[k] if splits is not None else None,
                    subset=subsets[k] if subsets is not None else None,
                    invalid_boxes=invalid_boxes,
                    problems=problems,
                    source_problems=source_problems,
                )
            except (NotFoundError, ImageReadError):
                # A size read from an image header in the wrong folder (only under
                # `raise`: `record` keeps such an image without a size).
                if not_found is not None:
                    raise not_found from None
                raise
        if parsed is None:
            continue  # listed in source_problems: the file cannot be read as COCO
        if not_found is not None:
            raise not_found
        recs, mapped = parsed
        if splits is None:
            guess = _split_of_file(f)
            for r in recs:
                if r.split is None:
                    r.split = guess
        records.extend(recs)
        order.extend(n for n in mapped if n not in order)
    dataset = make_dataset(name, records, root=root, class_map=class_map)
    # Keep the files' own category order: a detector trained on them numbers classes so.
    dataset.classes = order
    return dataset


def coco_files(path: Path) -> list[Path]:
    """``path`` if it is a JSON file, else the COCO JSON files under the folder ``path``."""
    if path.is_file():
        return [path]
    return [p for p in sorted(path.rglob("*.json")) if _is_coco_doc_file(p)]


def categories_in_map(path: Path, class_map_name: str) -> bool:
    """Whether the COCO file(s) at ``path`` name only classes of the shipped map.

    Used to tell COCO-based datasets apart by content; reads at most three files.
    """
    from cv.datasets.classmap import load_class_map

    files = coco_files(path) if path.exists() else []
    if not files:
        return False
    targets = load_class_map(class_map_name).targets
    all_taxonomy = True
    for f in files[:3]:
        try:
            doc = load_json(f)
        except DataFormatError:
            return False
        cats = doc.get("categories") if isinstance(doc, dict) else None
        if not isinstance(cats, list) or not cats:
            return False
        for c in cats:
            cname = c.get("name") if isinstance(c, dict) else None
            if not isinstance(cname, str) or cname.strip().casefold() not in targets:
                return False
            all_taxonomy = all_taxonomy and is_category(cname)
    # Files naming only taxonomy classes (ours, or already mapped) are generic COCO.
    return not all_taxonomy


def read_coco_dataset(
    path: Path,
    *,
    name: str,
    class_map: ClassMap,
    image_root: Path | None = None,
    missing_images: MissingImages = "keep",
    invalid_boxes: InvalidBoxes = "raise",
    problems: Problems = "raise",
    source_problems: SourceProblems | None = None,
) -> Dataset:
    """A dataset shipped as COCO JSON files with an image folder (CLCXray, AI-Hub).

    The images are looked for in the folders of :func:`image_root_candidates`
    (split-named folders beside ``annotations/``, ``images/``, ``JPEGImages/``,
    the dataset folder), then beside each JSON file, unless ``image_root`` names
    the folder; the split is the one its file name says, if any.

    Raises:
        NotFoundError: If the path does not exist, holds no COCO file, or (with
            ``missing_images="raise"``) no folder looked in holds a file's images.
    """
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"{name}: dataset path does not exist", path=path)
    files = coco_files(path)
    if not files:
        raise NotFoundError(f"{name}: no COCO JSON file here", path=path)
    root = dataset_root(path)
    return read_coco_files(
        files,
        name=name,
        root=root,
        class_map=class_map,
        image_roots=(
            [Path(image_root)] * len(files)
            if image_root is not None
            else lambda f, doc: guess_image_root(
                f, doc, image_root_candidates(f, root), required=missing_images == "raise"
            )
        ),
        invalid_boxes=invalid_boxes,
        problems=problems,
        source_problems=source_problems,
    )


_COCO_HEAD = re.compile(
    rb'\A(?:\xef\xbb\xbf)?\s*\{\s*"(?:info|images|licenses|annotations|categories)"'
)


def _is_coco_doc_file(path: Path) -> bool:
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    # Peek at the start only: a COCO file is an object whose first key is one of
    # COCO's own (a run manifest that merely lists "images" is not one).
    with path.open("rb") as f:
        head = f.read(4096)
    return _COCO_HEAD.match(head) is not None


def _detect_coco(path: Path) -> bool:
    if path.is_file():
        return _is_coco_doc_file(path)
    candidates = [*sorted(path.glob("*.json")), *sorted(path.glob("annotations/*.json"))]
    return any(_is_coco_doc_file(p) for p in candidates)


@register_reader("coco", detect=_detect_coco)
def read_coco(
    path: Path,
    *,
    image_root: Path | None = None,
    class_map: ClassMap | str | PathLike[str] | None = None,
    split: Split | None = None,
    name: str | None = None,
    missing_images: MissingImages = "keep",
    invalid_boxes: InvalidBoxes = "raise",
    problems: Problems = "raise",
    source_problems: SourceProblems | None = None,
) -> Dataset:
    """Generic COCO JSON (also our own files, which round-trip losslessly).

    Args:
        path: A COCO JSON file, or a folder whose ``*.json`` files are all COCO.
        image_root: Folder the ``file_name`` entries are relative to. By default
            each JSON file's own folder, else (COCO's own layout,
            ``annotations/instances_train2017.json`` beside ``train2017/``) the
            first of :func:`image_root_candidates` that holds the file's images.
        class_map: Map of category names; by default the names must be taxonomy
            names (identity map).
        split: Split of every record; by default the image's ``split`` key, else the
            split its file name says (``instances_train.json`` is ``train``).
        name: Dataset name; by default the file or folder stem.
        missing_images: Without ``image_root``, when no folder looked in holds
            any image of a file: ``keep`` its records (ground truth for
            precomputed predictions needs no pixels), or ``raise``.
        invalid_boxes: ``raise`` on an empty or outside box, or ``drop`` it with a trace.
        problems: ``raise`` at an unknown category or malformed annotation, or
            ``record`` it with a trace on its image and read on.
        source_problems: Under ``record``, where an annotation file that cannot be
            read as COCO, a malformed image entry (that image is left out, the
            rest of the file read) and an annotation that names no image (or an
            image left out) are listed (they raise without this list).

    Raises:
        NotFoundError: If ``path`` does not exist, a folder holds no JSON file, or
            (``missing_images="raise"``) no folder looked in holds a file's
            images; the message names the folders.
        DataFormatError: If a file is not COCO; the message names file and field.
        UnknownClassError: If a category is not in the class map.
    """
    path = Path(path)
    if not path.exists():
        raise NotFoundError("COCO path does not exist", path=path)
    files = [path] if path.is_file() else coco_files(path)
    if not files:
        raise NotFoundError("no COCO *.json file in this folder", path=path)
    cmap = resolve_class_map(class_map, default=None)
    root = Path(image_root) if image_root is not None else dataset_root(path)
    return read_coco_files(
        files,
        name=name or (path.stem if path.is_file() else path.name),
        root=root,
        class_map=cmap,
        image_roots=(
            [root] * len(files)
            if image_root is not None
            else lambda f, doc: guess_image_root(
                f,
                doc,
                [f.parent, *image_root_candidates(f, root)],
                required=missing_images == "raise",
            )
        ),
        splits=[split] * len(files) if split is not None else None,
        invalid_boxes=invalid_boxes,
        problems=problems,
        source_problems=source_problems,
    )
