"""Running a detector over a dataset into a predictions file.

Evaluation reads the :class:`cv.predictions.Predictions` this writes and never
needs the model (see :mod:`cv.predictions`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from cv.errors import DataValidationError
from cv.image import read_image
from cv.log import progress as make_progress
from cv.predictions import ImagePredictions, Predictions

if TYPE_CHECKING:
    from cv.models.runtime import Detector
    from cv.records import Dataset


def check_classes(detector: Detector, dataset: Dataset) -> None:
    """Checks that every class the dataset annotates is one the model predicts.

    Raises:
        DataValidationError: Naming the dataset's classes the model does not know.
    """
    wanted = dataset.classes or dataset.used_classes()
    unknown = [c for c in wanted if c not in detector.classes]
    if unknown:
        raise DataValidationError(
            f"dataset {dataset.name!r} has classes {unknown} that the model "
            f"{detector.record.name!r} does not predict (its classes: {detector.classes})",
            path=dataset.root,
            field="classes",
        )


def predict_dataset(
    detector: Detector,
    dataset: Dataset,
    *,
    batch_size: int = 8,
    conf: float = 0.001,
    iou: float = 0.6,
    max_det: int = 300,
    check: bool = True,
    progress: bool = True,
) -> Predictions:
    """Runs ``detector`` over every image of ``dataset``.

    Images are read (:func:`cv.image.read_image`, RGB) on a background thread
    while the previous batch runs, since decoding PNGs and inference overlap well.

    Args:
        detector: Any runtime (:func:`cv.models.load.load_detector`).
        dataset: The images; ``ImageRecord.file`` is kept as the key evaluation
            matches on.
        batch_size: Images per network run.
        conf: Minimum score; low by default because AP integrates over all scores.
        iou: NMS IoU threshold.
        max_det: Most detections per image.
        check: Refuse a dataset whose classes the model does not predict
            (:func:`check_classes`).
        progress: Show a progress bar (on a terminal).

    Raises:
        DataValidationError: If ``check`` and the classes do not match.
        NotFoundError, ImageReadError: If an image is missing or unreadable.
    """
    if check:
        check_classes(detector, dataset)
    records = dataset.images
    batches = [records[i : i + batch_size] for i in range(0, len(records), batch_size)]
    images: list[ImagePredictions] = []

    def read(batch: list) -> list:
        return [read_image(dataset.image_path(r)) for r in batch]

    with ThreadPoolExecutor(max_workers=1) as pool, make_progress(disable=not progress) as bar:
        task = bar.add_task(f"predict {dataset.name}", total=len(records))
        pending = pool.submit(read, batches[0]) if batches else None
        for k, batch in enumerate(batches):
            pixels = pending.result() if pending is not None else []
            pending = pool.submit(read, batches[k + 1]) if k + 1 < len(batches) else None
            dets = detector.predict(pixels, conf=conf, iou=iou, max_det=max_det, multi_label=True)
            for record, arr, found in zip(batch, pixels, dets, strict=True):
                h, w = arr.shape[:2]
                images.append(
                    ImagePredictions(file=record.file, width=w, height=h, detections=found)
                )
            bar.advance(task, len(batch))
    rec = detector.record
    model = {
        "name": rec.name,
        "architecture": rec.architecture,
        "version": rec.version,
        "input_size": rec.input_size,
        "runtime": detector.label,
        "conf": conf,
        "iou": iou,
        "sha256": dict(rec.sha256),
    }
    return Predictions(classes=list(detector.classes), images=images, model=model)
