"""X-ray augmentation through albumentations, threat image projection included.

What varies between X-ray scans, and so what a detector must not depend on:

* **Orientation.** Bags lie on the belt any way round, and the scanner draws the
  belt's direction to the left or right: horizontal and vertical flips and 90°
  rotations are all label-preserving (X-ray images have no "up").
* **Scanner palette and curve.** Vendors map the dual-energy ratio to slightly
  different hues and brightness curves (see ``cv/profiles/*.yaml``): hue,
  saturation, brightness and contrast jitter within about that spread.
* **Detector noise and focus.** Gaussian noise and a slight blur.
* **Threat image projection (TIP).** Threat cut-outs from a library
  (:mod:`cv.datasets.tip`) multiplied into the bag (Beer–Lambert in image space),
  with their boxes added: :class:`ThreatProjection`.

The tensor contract of :func:`xray_compose`'s pipeline: ``image`` is ``(H, W, 3)``
uint8 **RGB**; ``bboxes`` is a float array ``(N, 5)`` of ``x1, y1, x2, y2, class_id``
in absolute pixels, 0-based, continuous (albumentations' ``pascal_voc`` format with
the class id carried as an extra column, so a transform that adds objects can add
their classes too). Everything is seeded through the ``Compose``'s ``seed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np
from numpy.typing import NDArray

from cv.datasets.tip import Cutout, ThreatLibrary, bag_region, load_library, project_threat


class ThreatProjection(A.DualTransform):
    """Projects 1..``max_threats`` library cut-outs into the image and adds their boxes.

    A cut-out is resized by ``scale`` (the ratio of the training image size to the
    size of the scans the library was rendered for), then placed with its centre on
    a random pixel of the bag (the non-background region, :func:`bag_region`) and
    multiplied in (:func:`project_threat`: never brightens a pixel). Cut-outs whose
    class is not in ``classes`` are never drawn; the new box's class id is the
    index of the cut-out's class in ``classes``.

    Args:
        library: Threat library folder (``library.json`` + cut-outs).
        classes: The dataset's class names in id order.
        scale: Resize factor of the cut-outs.
        max_threats: Most cut-outs projected into one image.
        p: Probability of projecting into an image.
    """

    def __init__(
        self,
        library: str,
        classes: Sequence[str],
        scale: float = 1.0,
        max_threats: int = 1,
        p: float = 0.3,
    ) -> None:
        super().__init__(p=p)
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        if max_threats < 1:
            raise ValueError(f"max_threats must be >= 1, got {max_threats}")
        self.library = str(library)
        self.classes = list(classes)
        self.scale = float(scale)
        self.max_threats = int(max_threats)
        # Loaded on first use: the transform is serialised (A.to_dict) and sent to
        # data-loader and DDP workers, which each read the library once.
        self._lib: ThreatLibrary | None = None
        self._usable: list[Cutout] = []
        self._images: dict[str, NDArray[np.uint8]] = {}

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        """Init arguments that ``A.to_dict`` stores (the library by path)."""
        return ("library", "classes", "scale", "max_threats")

    def _load(self) -> None:
        if self._lib is not None:
            return
        self._lib = load_library(Path(self.library))
        wanted = set(self.classes)
        self._usable = [c for c in self._lib.cutouts if c.category in wanted]

    def _cutout_image(self, cut: Cutout) -> NDArray[np.uint8]:
        img = self._images.get(cut.file)
        if img is None:
            assert self._lib is not None
            img = self._lib.image(cut)
            if self.scale != 1.0:
                h, w = img.shape[:2]
                size = (max(round(w * self.scale), 1), max(round(h * self.scale), 1))
                img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            self._images[cut.file] = img
        return img

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        """Draws the cut-outs and their places and projects them (image and boxes)."""
        self._load()
        image: NDArray[np.uint8] = data["image"]
        h, w = image.shape[:2]
        out = image
        boxes: list[tuple[float, float, float, float, float]] = []
        if not self._usable:
            return {"tip_image": out, "tip_boxes": np.zeros((0, 5), np.float32)}
        rng = self.random_generator
        region = bag_region(image)
        ys, xs = np.nonzero(region)
        n = int(rng.integers(1, self.max_threats + 1))
        for _ in range(n):
            cut = self._usable[int(rng.integers(0, len(self._usable)))]
            img = self._cutout_image(cut)
            bx0, by0, bx1, by1 = (v * self.scale for v in cut.box)
            if len(xs):
                k = int(rng.integers(0, len(xs)))
                cx, cy = float(xs[k]), float(ys[k])
            else:
                cx, cy = float(rng.uniform(0, w)), float(rng.uniform(0, h))
            position = (round(cx - (bx0 + bx1) / 2), round(cy - (by0 + by1) / 2))
            out, box = project_threat(
                out, img, air_rgb=cut.air, position=position, cutout_box=(bx0, by0, bx1, by1)
            )
            if box is not None and box[2] - box[0] >= 1 and box[3] - box[1] >= 1:
                boxes.append((*box, float(self.classes.index(cut.category))))
        arr = np.array(boxes, np.float32).reshape(-1, 5)
        # Boxes inside the pipeline are normalised (albumentations' own format).
        arr[:, [0, 2]] /= w
        arr[:, [1, 3]] /= h
        return {"tip_image": out, "tip_boxes": arr}

    def apply(self, img: NDArray[np.uint8], tip_image: NDArray[np.uint8], **params: Any) -> Any:
        """The image with the threats projected in."""
        return tip_image

    def apply_to_bboxes(self, bboxes: np.ndarray, tip_boxes: np.ndarray, **params: Any) -> Any:
        """The boxes with the projected threats' boxes appended (class id last)."""
        if bboxes.ndim != 2 or bboxes.shape[1] != 5:
            raise ValueError(
                "ThreatProjection needs bboxes as (N, 5) arrays of x1, y1, x2, y2, class_id, "
                f"got shape {bboxes.shape}"
            )
        return np.concatenate([bboxes, tip_boxes.astype(bboxes.dtype)], axis=0)


def xray_transforms(
    *,
    flip_p: float = 0.5,
    rot90_p: float = 0.5,
    colour_p: float = 0.5,
    hue_shift: float = 12.0,
    saturation: float = 25.0,
    brightness: float = 0.15,
    contrast: float = 0.15,
    noise_p: float = 0.3,
    noise_std: tuple[float, float] = (0.01, 0.04),
    blur_p: float = 0.1,
    tip_library: str | Path | None = None,
    tip_classes: Sequence[str] = (),
    tip_p: float = 0.3,
    tip_scale: float = 1.0,
    tip_max: int = 1,
) -> list[A.BasicTransform]:
    """The X-ray transforms, in order: TIP, geometry, colour, noise, blur.

    Projection comes first so the projected threats are flipped, rotated and
    jittered like the rest of the scan.

    Args:
        flip_p: Probability of a horizontal flip, and separately of a vertical one.
        rot90_p: Probability of a rotation by a random multiple of 90°.
        colour_p: Probability of each of the colour jitters (HSV, brightness/contrast).
        hue_shift: Largest hue shift (albumentations' ``hue_shift_limit``).
        saturation: Largest saturation shift (``sat_shift_limit``).
        brightness: Largest brightness change, a fraction of the range.
        contrast: Largest contrast change, a fraction.
        noise_p: Probability of Gaussian detector noise.
        noise_std: Range of the noise's standard deviation, a fraction of 255.
        blur_p: Probability of a slight Gaussian blur.
        tip_library: Threat library folder; no projection when ``None``.
        tip_classes: The dataset's class names in id order (for TIP's class ids).
        tip_p: Probability of projecting threats into an image.
        tip_scale: Resize factor of the cut-outs (see :class:`ThreatProjection`).
        tip_max: Most threats projected into one image.

    Returns:
        The transforms, for :func:`xray_compose`.
    """
    transforms: list[A.BasicTransform] = []
    if tip_library is not None and tip_p > 0:
        transforms.append(
            ThreatProjection(
                library=str(tip_library),
                classes=list(tip_classes),
                scale=tip_scale,
                max_threats=tip_max,
                p=tip_p,
            )
        )
    transforms += [
        A.HorizontalFlip(p=flip_p),
        A.VerticalFlip(p=flip_p),
        A.RandomRotate90(p=rot90_p),
        A.HueSaturationValue(
            hue_shift_limit=hue_shift, sat_shift_limit=saturation, val_shift_limit=0, p=colour_p
        ),
        A.RandomBrightnessContrast(
            brightness_limit=brightness, contrast_limit=contrast, p=colour_p
        ),
        A.GaussNoise(std_range=noise_std, p=noise_p),
        A.GaussianBlur(blur_limit=(3, 3), sigma_limit=(0.3, 0.9), p=blur_p),
    ]
    return transforms


def xray_compose(transforms: Sequence[A.BasicTransform], *, seed: int | None = None) -> A.Compose:
    """Composes transforms for ``(image, bboxes)`` pairs (contract in the module docstring).

    Boxes are clipped to the image; boxes that a transform makes smaller than one
    pixel are dropped.
    """
    return A.Compose(
        list(transforms),
        bbox_params=A.BboxParams(format="pascal_voc", clip=True, min_width=1, min_height=1),
        seed=seed,
    )


def augment(
    compose: A.Compose,
    image: NDArray[np.uint8],
    boxes: NDArray[np.floating],
    class_ids: NDArray[np.integer],
) -> tuple[NDArray[np.uint8], NDArray[np.float32], NDArray[np.int64]]:
    """Runs a pipeline from :func:`xray_compose` on one image.

    Args:
        compose: The pipeline.
        image: ``(H, W, 3)`` uint8 RGB.
        boxes: ``(N, 4)`` ``xyxy`` absolute pixels, 0-based; clipped to the image,
            and boxes smaller than a pixel are dropped before augmenting.
        class_ids: ``(N,)`` class ids.

    Returns:
        ``(image, boxes, class_ids)`` after augmentation, in the same conventions.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    b = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
    keep = ((b[:, 2] - b[:, 0]) >= 1) & ((b[:, 3] - b[:, 1]) >= 1)
    ids = np.asarray(class_ids).reshape(-1)[keep].astype(np.float32)
    bboxes = np.concatenate([b[keep], ids[:, None]], axis=1)
    out = compose(image=image, bboxes=bboxes)
    ob = np.asarray(out["bboxes"], np.float32).reshape(-1, 5)
    return out["image"], ob[:, :4], np.rint(ob[:, 4]).astype(np.int64)
