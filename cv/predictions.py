"""The predictions file: what a detector said about a set of images.

One JSON document, so that evaluation never needs the model::

    {
      "format": "customs-vision-predictions",
      "version": 1,
      "model": {...},            # the weights record's summary (name, classes, ...)
      "classes": ["gun", ...],   # the model's class list, class_id = position
      "images": [
        {"file": "images/test/000001.png", "width": 640, "height": 640,
         "detections": [{"box": [x1, y1, x2, y2], "category": "gun",
                         "class_id": 0, "score": 0.93}, ...]},
        ...
      ]
    }

``file`` is matched against ``ImageRecord.file`` of the ground-truth dataset.
Boxes are ``xyxy`` absolute pixels, 0-based (see :mod:`cv.boxes`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from cv.errors import DataFormatError, NotFoundError
from cv.records import Detection

FORMAT = "customs-vision-predictions"
VERSION = 1


@dataclass(slots=True)
class ImagePredictions:
    """The detections of one image.

    Attributes:
        file: The image's path as the ground-truth dataset records it.
        width: Image width in pixels.
        height: Image height in pixels.
        detections: What the model found, any order.
    """

    file: str
    width: int
    height: int
    detections: list[Detection] = field(default_factory=list)


@dataclass(slots=True)
class Predictions:
    """A model's detections over a set of images.

    Attributes:
        classes: The model's class list; ``Detection.class_id`` indexes it.
        images: One entry per image, including images with no detection.
        model: Summary of the model that produced them (name, input size, ...).
    """

    classes: list[str]
    images: list[ImagePredictions]
    model: dict[str, Any] = field(default_factory=dict)

    def by_file(self) -> dict[str, ImagePredictions]:
        """The entries keyed by ``file``."""
        return {im.file: im for im in self.images}


def write_predictions(predictions: Predictions, path: str | PathLike[str]) -> Path:
    """Writes ``predictions`` as one JSON document; returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "model": predictions.model,
        "classes": list(predictions.classes),
        "images": [
            {
                "file": im.file,
                "width": im.width,
                "height": im.height,
                "detections": [
                    {
                        "box": [round(float(v), 3) for v in d.box],
                        "category": d.category,
                        "class_id": d.class_id,
                        "score": round(float(d.score), 6),
                    }
                    for d in im.detections
                ],
            }
            for im in predictions.images
        ],
    }
    p.write_text(json.dumps(doc, separators=(",", ":")))
    return p


def _field(obj: Mapping[str, Any], key: str, path: Path, where: str) -> Any:
    if key not in obj:
        raise DataFormatError(f"missing key {key!r}", path=path, field=where)
    return obj[key]


def _brief(value: Any) -> str:
    """A value as the message shows it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _object(value: Any, path: Path, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise DataFormatError(f"must be an object, got {_brief(value)}", path=path, field=where)
    return value


def _list(value: Any, path: Path, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise DataFormatError(f"must be a list, got {_brief(value)}", path=path, field=where)
    return value


def _number(value: Any, path: Path, where: str) -> float:
    # bool is an int to Python, not a number to a reader of the file.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DataFormatError(
            f"must be a finite number, got {_brief(value)}", path=path, field=where
        )
    return float(value)


def _integer(value: Any, path: Path, where: str, *, minimum: int) -> int:
    number = _number(value, path, where)
    if not number.is_integer() or number < minimum:
        raise DataFormatError(
            f"must be an integer >= {minimum}, got {_brief(value)}", path=path, field=where
        )
    return int(number)


def read_predictions(path: str | PathLike[str]) -> Predictions:
    """Reads a predictions file written by :func:`write_predictions`.

    Raises:
        NotFoundError: If the file does not exist.
        DataFormatError: If it is not valid JSON or a key is missing or mistyped;
            the message names the JSON path at fault (``images[3].detections[0].box``).
    """
    p = Path(path)
    if not p.is_file():
        raise NotFoundError("predictions file does not exist", path=p)
    try:
        doc = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"not valid JSON ({exc.msg})", path=p, line=exc.lineno) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DataFormatError(f"not a {FORMAT} file", path=p, field="format")
    classes = _field(doc, "classes", p, "classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise DataFormatError("must be a list of class names", path=p, field="classes")
    model = _object(doc.get("model") or {}, p, "model")
    images: list[ImagePredictions] = []
    for i, entry in enumerate(_list(_field(doc, "images", p, "images"), p, "images")):
        where = f"images[{i}]"
        im = _object(entry, p, where)
        file = _field(im, "file", p, f"{where}.file")
        if not isinstance(file, str) or not file:
            raise DataFormatError(
                f"must be an image path, got {_brief(file)}", path=p, field=f"{where}.file"
            )
        width = _integer(_field(im, "width", p, f"{where}.width"), p, f"{where}.width", minimum=1)
        height = _integer(
            _field(im, "height", p, f"{where}.height"), p, f"{where}.height", minimum=1
        )
        dets = []
        det_list = _list(
            _field(im, "detections", p, f"{where}.detections"), p, f"{where}.detections"
        )
        for j, det in enumerate(det_list):
            dw = f"{where}.detections[{j}]"
            d = _object(det, p, dw)
            box = _field(d, "box", p, f"{dw}.box")
            if not (isinstance(box, list) and len(box) == 4):
                raise DataFormatError("must be [x1, y1, x2, y2]", path=p, field=f"{dw}.box")
            x1, y1, x2, y2 = (_number(v, p, f"{dw}.box[{k}]") for k, v in enumerate(box))
            class_id = _integer(
                _field(d, "class_id", p, f"{dw}.class_id"), p, f"{dw}.class_id", minimum=0
            )
            if class_id >= len(classes):
                raise DataFormatError(
                    f"class_id {class_id} is outside the {len(classes)} classes",
                    path=p,
                    field=f"{dw}.class_id",
                )
            category = d.get("category", classes[class_id])
            if not isinstance(category, str):
                raise DataFormatError(
                    f"must be a class name, got {_brief(category)}", path=p, field=f"{dw}.category"
                )
            dets.append(
                Detection(
                    box=(x1, y1, x2, y2),
                    category=category,
                    class_id=class_id,
                    score=_number(_field(d, "score", p, f"{dw}.score"), p, f"{dw}.score"),
                )
            )
        images.append(ImagePredictions(file=file, width=width, height=height, detections=dets))
    return Predictions(classes=classes, images=images, model=dict(model))
