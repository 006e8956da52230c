"""COCO JSON: the generic reader and our writer.

COCO boxes are ``[x, y, w, h]`` in 0-based absolute pixels (see :mod:`cv.boxes`).
Our writer adds keys that COCO tools ignore, so that our own files round-trip
without loss:

* ``images[]``: ``split``, ``subset``, ``source``, ``view``, ``meta``;
* ``annotations[]``: ``original_name``, ``occlusion``, ``occlusion_level``,
  ``concealment``;
* ``categories[]``: ``supercategory`` is the taxonomy group.

``file_name`` is written relative to the JSON file's folder when the image's
place is known, which is also where the reader looks by default.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from cv.boxes import xywh_to_xyxy, xyxy_to_xywh
from cv.datasets.classmap import ClassMap, resolve_class_map
from cv.datasets.formats.common import (
    InvalidBoxes,
    add_object,
    make_dataset,
    relative_file,
    split_from_parts,
)
from cv.datasets.formats.registry import register_reader
from cv.errors import DataFormatError, DataValidationError, NotFoundError
from cv.image import read_image_size
from cv.records import SPLITS, Dataset, ImageRecord, Split
from cv.taxonomy import category, is_category


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
        # Unknown names fail here, before any image is read, naming the category.
        target = class_map.targets.get(cname.strip().casefold(), "")
        if target == "":
            class_map.map(cname, path=json_path, field=f"categories[{i}].name")
        if target and target not in mapped_order:
            mapped_order.append(target)

    records: dict[int, ImageRecord] = {}
    for i, im in enumerate(images):
        where = f"images[{i}]"
        iid = _require(im, "id", int, path=json_path, where=where)
        fname = _require(im, "file_name", str, path=json_path, where=where)
        if iid in records:
            raise DataFormatError(
                f"image id {iid} appears twice", path=json_path, field=f"{where}.id"
            )
        img_path = Path(os.path.normpath(image_root.absolute() / fname))
        w, h = im.get("width"), im.get("height")
        if w is None or h is None:
            # Some exports leave the size out; the image header has it.
            w, h = read_image_size(img_path)
        if not isinstance(w, int) or not isinstance(h, int) or w <= 0 or h <= 0:
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
        records[iid] = ImageRecord(
            file=relative_file(img_path, root.absolute()),
            width=w,
            height=h,
            split=rec_split,
            subset=subset if subset is not None else im.get("subset"),
            source=im.get("source") or source,
            view=im.get("view"),
            meta=dict(meta) if isinstance(meta, dict) else {},
        )

    # Validate every bbox field first, then convert all boxes in one call.
    raw_boxes: list[list[float]] = []
    for i, ann in enumerate(anns):
        bbox = ann.get("bbox") if isinstance(ann, dict) else None
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
        ):
            raise DataFormatError(
                f"bbox must be a list of 4 numbers [x, y, w, h], got {bbox!r}",
                path=json_path,
                field=f"annotations[{i}].bbox",
            )
        raw_boxes.append(bbox)
    xyxy = xywh_to_xyxy(np.array(raw_boxes, dtype=np.float64).reshape(-1, 4)).tolist()
    for i, ann in enumerate(anns):
        where = f"annotations[{i}]"
        iid = _require(ann, "image_id", int, path=json_path, where=where)
        cid = _require(ann, "category_id", int, path=json_path, where=where)
        rec = records.get(iid)
        if rec is None:
            raise DataFormatError(
                f"image_id {iid} is not among the images", path=json_path, field=f"{where}.image_id"
            )
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


def guess_image_root(json_path: Path, doc: Any, candidates: Sequence[Path]) -> Path:
    """The first of ``candidates`` (then the JSON's folder) holding the file's first image.

    Datasets ship their COCO files in ``annotations/`` and the images in a folder
    named after the split or subset; ``file_name`` is relative to that folder.
    """
    images = doc.get("images") if isinstance(doc, dict) else None
    first = images[0].get("file_name") if images and isinstance(images[0], dict) else None
    if isinstance(first, str):
        for cand in [*candidates, json_path.parent]:
            if (cand / first).is_file():
                return cand
    return candidates[0] if candidates else json_path.parent


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
) -> Dataset:
    """Reads several COCO files into one dataset (building block of the COCO-based readers).

    Args:
        files: The JSON files.
        name: Dataset name, stored as each record's ``source``.
        root: Dataset root; record files are relative to it.
        class_map: Maps category names to taxonomy names.
        image_roots: Per file, the folder its ``file_name`` is relative to, or a
            function of the file and its parsed JSON giving it (default: the
            file's folder).
        splits: Per file, the split of its records (default: the image's ``split``
            key, else the split the file name says).
        subsets: Per file, the subset of its records.
        invalid_boxes: What to do with empty or outside boxes.
    """
    records: list[ImageRecord] = []
    order: list[str] = []
    for k, f in enumerate(files):
        doc = load_json(f)
        split = splits[k] if splits is not None else None
        recs, mapped = coco_records(
            doc,
            json_path=f,
            image_root=(
                f.parent
                if image_roots is None
                else image_roots(f, doc)
                if callable(image_roots)
                else image_roots[k]
            ),
            root=root,
            class_map=class_map,
            source=name,
            split=split,
            subset=subsets[k] if subsets is not None else None,
            invalid_boxes=invalid_boxes,
        )
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
    invalid_boxes: InvalidBoxes = "raise",
) -> Dataset:
    """A dataset shipped as COCO JSON files with an image folder (CLCXray, AI-Hub).

    The images are looked for in ``images/``, ``JPEGImages/``, the dataset folder,
    then beside each JSON file; the split is the one its file name says, if any.
    """
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"{name}: dataset path does not exist", path=path)
    files = coco_files(path)
    if not files:
        raise NotFoundError(f"{name}: no COCO JSON file here", path=path)
    root = path.parent if path.is_file() else path
    if root.name == "annotations":
        root = root.parent
    candidates = [root / "images", root / "JPEGImages", root]
    return read_coco_files(
        files,
        name=name,
        root=root,
        class_map=class_map,
        image_roots=lambda f, doc: guess_image_root(f, doc, candidates),
        invalid_boxes=invalid_boxes,
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
    invalid_boxes: InvalidBoxes = "raise",
) -> Dataset:
    """Generic COCO JSON (also our own files, which round-trip losslessly).

    Args:
        path: A COCO JSON file, or a folder whose ``*.json`` files are all COCO.
        image_root: Folder the ``file_name`` entries are relative to; by default
            each JSON file's own folder.
        class_map: Map of category names; by default the names must be taxonomy
            names (identity map).
        split: Split of every record; by default the image's ``split`` key, else the
            split its file name says (``instances_train.json`` is ``train``).
        name: Dataset name; by default the file or folder stem.
        invalid_boxes: ``raise`` on an empty or outside box, or ``drop`` it with a trace.

    Raises:
        NotFoundError: If ``path`` does not exist or a folder holds no JSON file.
        DataFormatError: If a file is not COCO; the message names file and field.
        DataValidationError: If a category is not in the class map.
    """
    path = Path(path)
    if not path.exists():
        raise NotFoundError("COCO path does not exist", path=path)
    files = [path] if path.is_file() else coco_files(path)
    if not files:
        raise NotFoundError("no COCO *.json file in this folder", path=path)
    cmap = resolve_class_map(class_map, default=None)
    root = image_root if image_root is not None else (path.parent if path.is_file() else path)
    return read_coco_files(
        files,
        name=name or (path.stem if path.is_file() else path.name),
        root=root,
        class_map=cmap,
        image_roots=[image_root] * len(files) if image_root is not None else None,
        splits=[split] * len(files) if split is not None else None,
        invalid_boxes=invalid_boxes,
    )
