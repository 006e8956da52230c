"""Typed records shared by every part: one annotated image, one dataset.

These are the "one model" every converter reads into and every writer writes
from. Boxes are ``xyxy`` absolute pixels, 0-based (see :mod:`cv.boxes`).
Plain slotted dataclasses rather than pydantic models: a converter builds
hundreds of thousands of them and they are validated by :mod:`cv.datasets.check`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")

ConcealmentMode = Literal[
    "plain_view", "false_bottom", "lining", "inside_electronics", "under_metal"
]
CONCEALMENT_MODES: tuple[ConcealmentMode, ...] = (
    "plain_view",
    "false_bottom",
    "lining",
    "inside_electronics",
    "under_metal",
)


def occlusion_level(fraction: float) -> int:
    """Occlusion level 1-3 (OPIXray's OL1-OL3) from the hidden fraction of an object.

    Level 1 is no or slight occlusion (< 25 % hidden), level 2 partial
    (25-60 %), level 3 heavy (>= 60 %).
    """
    if fraction < 0.25:
        return 1
    if fraction < 0.60:
        return 2
    return 3


@dataclass(slots=True)
class Annotation:
    """One object in one image.

    Attributes:
        box: ``(x1, y1, x2, y2)`` absolute pixels, 0-based, continuous.
        category: Taxonomy class name (:mod:`cv.taxonomy`).
        original_name: The class name in the source dataset, kept verbatim.
        occlusion: Fraction of the object hidden behind denser material, when known.
        occlusion_level: 1-3, from the dataset's own lists or from ``occlusion``.
        concealment: How the object is concealed, when known (synthetic data).
        iscrowd: COCO's crowd flag, kept for round trips.
    """

    box: tuple[float, float, float, float]
    category: str
    original_name: str = ""
    occlusion: float | None = None
    occlusion_level: int | None = None
    concealment: ConcealmentMode | None = None
    iscrowd: bool = False


@dataclass(slots=True)
class ImageRecord:
    """One image and its annotations.

    Attributes:
        file: Path of the image, relative to the dataset's image root or absolute.
        width: Width in pixels.
        height: Height in pixels.
        annotations: Objects in the image; empty for a clean bag.
        split: ``train``, ``val`` or ``test``, when assigned.
        subset: The dataset's own test subset (PIDray ``easy``/``hard``/``hidden``,
            OPIXray ``OL1``...), when it has one.
        source: Dataset the image comes from (``opixray``, ``synthetic``, ...).
        view: Scanner view for multi-view datasets (DvXray ``OL``/``SD``).
        meta: Anything else worth keeping (scanner profile, bag kind, seed...).
    """

    file: str
    width: int
    height: int
    annotations: list[Annotation] = field(default_factory=list)
    split: Split | None = None
    subset: str | None = None
    source: str = ""
    view: str | None = None
    meta: dict[str, object] = field(default_factory=dict)


@dataclass(slots=True)
class Dataset:
    """A set of annotated images in the customs taxonomy.

    Attributes:
        name: Short name (``opixray``, ``synthetic-demo``...).
        images: The images, in a stable order.
        root: Directory that relative ``ImageRecord.file`` paths are relative to.
        classes: Taxonomy names used by this dataset, in the order a detector
            trained on it numbers them.
    """

    name: str
    images: list[ImageRecord]
    root: Path | None = None
    classes: list[str] = field(default_factory=list)

    def image_path(self, record: ImageRecord) -> Path:
        """Absolute path of ``record``'s image file."""
        p = Path(record.file)
        return p if p.is_absolute() or self.root is None else self.root / p

    def used_classes(self) -> list[str]:
        """Taxonomy names that occur in annotations, in taxonomy order."""
        from cv.taxonomy import NAMES

        seen = {a.category for im in self.images for a in im.annotations}
        return [n for n in NAMES if n in seen]


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object, whatever runtime produced it.

    Attributes:
        box: ``(x1, y1, x2, y2)`` absolute pixels in the **original** image,
            0-based, continuous (see :mod:`cv.boxes`).
        category: Class name (a taxonomy name for X-ray models).
        class_id: Index of ``category`` in the model's class list.
        score: Confidence in ``[0, 1]``.
    """

    box: tuple[float, float, float, float]
    category: str
    class_id: int
    score: float
