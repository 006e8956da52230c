"""Training the person detector of the CCTV pipeline: the detector trainer on people.

The person detector is an ordinary YOLO detector model directory with one class,
``person``. It is trained by the same trainer core as the X-ray detector
(:func:`cv.training.xray.train_xray`: run folder, hooks, ``best/`` and ``last/``
model directories, ``metrics.csv``, resume); only the recipe differs:

* the data is a synthetic CCTV person-detection set
  (:func:`cv.datasets.cctv.generate_person_detection`), described by
  :class:`PersonSynthSpec`, generated once into ``data/cache/person/<spec hash>``;
  or any YOLO / COCO dataset with a ``person`` class (``data``);
* a small input (320 px) so that the detector runs at video rate on a CPU;
* no flips or 90° rotations by default: people stand upright and a vertical flip
  (the X-ray recipe flips both ways with one probability) teaches the detector
  upside-down people it will never see.

:class:`PersonTrainConfig` is :class:`~cv.training.config.XrayTrainConfig` with
these defaults and a person synthetic spec; one YAML file per experiment
(``training/configs/person-*.yaml``).
"""

from __future__ import annotations

import hashlib
import json
from os import PathLike
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cv.errors import ConfigError
from cv.training.config import AugmentConfig, XrayTrainConfig, load_config, validate_config
from cv.training.xray import RunInfo, TrainHook, TrainResult, train_xray

PERSON = "person"
"""The class a person detector must have."""

PERSON_CACHE = Path("data/cache/person")
"""Default folder of generated person-detection sets, one sub-folder per spec hash."""


class PersonSynthSpec(BaseModel):
    """A synthetic person-detection set (:func:`cv.datasets.cctv.generate_person_detection`).

    Attributes:
        images: Number of frames (all splits), people-free frames included.
        size: Frame width in pixels (frames are 16:9).
        people: Inclusive range of people in a frame that is not empty.
        empty: Share of frames with nobody in them.
        seed: Generator seed.
        splits: ``[train, val, test]`` ratios.
    """

    model_config = ConfigDict(extra="forbid")

    images: int = Field(default=3000, ge=1)
    size: int = Field(default=640, ge=64)
    people: tuple[int, int] = (1, 10)
    empty: float = Field(default=0.1, ge=0, le=1)
    seed: int = 0
    splits: tuple[float, float, float] = (0.9, 0.1, 0.0)

    def key(self) -> str:
        """A short hash of everything that changes the generated images."""
        doc = {"generator": "cctv-person", **self.model_dump(mode="json")}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]

    def generate(self, out: Path) -> Path:
        """Generates the set into ``out`` (called once by the trainer's cache).

        Returns:
            Its ``data.yaml``.
        """
        from cv.datasets.cctv import generate_person_detection

        generate_person_detection(
            out,
            images=self.images,
            size=self.size,
            people=self.people,
            empty=self.empty,
            seed=self.seed,
            splits=self.splits,
        )
        manifest = out / "manifest.json"
        if not manifest.is_file():
            # The trainer's cache takes a folder with a manifest as finished.
            manifest.write_text(
                json.dumps({"generator": "cctv-person", "spec": self.model_dump(mode="json")})
            )
        return out / "data.yaml"


def _person_augment() -> AugmentConfig:
    return AugmentConfig(flip_p=0.0, rot90_p=0.0, tip_p=0.0)


class PersonTrainConfig(XrayTrainConfig):
    """One person-detector training run: :class:`XrayTrainConfig` with a person
    synthetic spec and the person defaults (320 px input, no flips or rotations).

    Attributes:
        synth: A synthetic person-detection set to generate (once, cached).
        synth_cache: Folder of cached person sets.
    """

    synth: PersonSynthSpec | None = None  # type: ignore[assignment]
    synth_cache: Path = PERSON_CACHE
    imgsz: int = Field(default=320, ge=32)
    augment: AugmentConfig = Field(default_factory=_person_augment)
    name: str = Field(default="person", min_length=1)


def load_person_config(
    path: str | PathLike[str], *, overrides: dict[str, Any] | None = None
) -> PersonTrainConfig:
    """Reads a person experiment YAML (see :func:`cv.training.config.load_config`).

    Raises:
        NotFoundError: If the file does not exist.
        ConfigError: Naming the file, line and field of the first error.
    """
    return load_config(path, overrides=overrides, model=PersonTrainConfig)


def person_config(doc: dict[str, Any]) -> PersonTrainConfig:
    """Validates a mapping of settings into :class:`PersonTrainConfig`.

    Raises:
        ConfigError: Naming the field of the first error.
    """
    return validate_config(doc, model=PersonTrainConfig)


def train_person(
    config: PersonTrainConfig,
    *,
    resume: bool = False,
    command: str | None = None,
    hooks: tuple[TrainHook, ...] = (),
) -> TrainResult:
    """Trains a person detector as ``config`` says (see :func:`cv.training.xray.train_xray`).

    Raises:
        ConfigError: If the dataset has no ``person`` class, or as ``train_xray``.
        NotFoundError: As ``train_xray``.
    """
    return train_xray(config, resume=resume, command=command, hooks=(RequirePersonClass(), *hooks))


class RequirePersonClass(TrainHook):
    """Stops a run whose dataset has no ``person`` class (the CCTV pipeline needs it)."""

    def on_train_start(self, run: RunInfo) -> None:
        """Raises ConfigError unless ``person`` is one of the dataset's classes."""
        if PERSON not in run.classes:
            raise ConfigError(
                f"the dataset has no {PERSON!r} class (it has {list(run.classes)}); "
                "a person detector needs one",
                path=run.data_yaml,
                field="names",
            )


def read_person_dataset(data: str | PathLike[str], *, split: str = "test") -> Any:
    """A YOLO person dataset (``data.yaml`` with the class ``person``) as a
    :class:`cv.records.Dataset`, restricted to one split (``all`` keeps every image).

    ``person`` is not an X-ray taxonomy class, so the YOLO reader is given a class
    map that keeps it as it is.

    Raises:
        NotFoundError: If ``data.yaml`` or a split folder is missing, or the split
            has no images.
        DataFormatError: If a label line is malformed.
    """
    from dataclasses import replace

    from cv.datasets.classmap import ClassMap
    from cv.datasets.formats.yolo import read_yolo
    from cv.errors import NotFoundError

    ds = read_yolo(Path(data), class_map=ClassMap(name=PERSON, targets={PERSON: PERSON}))
    ds.classes = [PERSON]
    if split != "all":
        images = [im for im in ds.images if im.split == split]
        if not images:
            present = sorted({str(im.split) for im in ds.images})
            raise NotFoundError(
                f"no images of split {split!r}; the dataset has {', '.join(present)}",
                path=data,
                field="split",
            )
        ds = replace(ds, images=images)
    return ds


def evaluate_person(
    model_dir: str | PathLike[str],
    data: str | PathLike[str],
    *,
    split: str = "test",
    runtime: str = "onnx",
    batch: int = 8,
    progress: bool = True,
) -> dict[str, Any]:
    """COCO AP of a person detector on a YOLO person dataset (faster-coco-eval).

    Args:
        model_dir: The detector's model directory.
        data: The dataset's ``data.yaml`` (e.g. a held-out set generated with
            another seed).
        split: The split to evaluate (``all`` for every image).
        runtime: ``onnx`` or ``torch``.
        batch: Images per network run.
        progress: Show a progress bar.

    Returns:
        ``AP``, ``AP50``, ``AP75``, the size buckets and recalls (COCO), ``images``,
        ``objects`` and ``dataset``.
    """
    from cv.evaluation.detection import evaluate
    from cv.models.load import load_detector
    from cv.models.predict import predict_dataset

    ds = read_person_dataset(data, split=split)
    det = load_detector(model_dir, runtime=runtime)  # type: ignore[arg-type]
    if PERSON not in det.classes:
        raise ConfigError(
            f"the model has no {PERSON!r} class (it has {det.classes})", field="model"
        )
    preds = predict_dataset(det, ds, batch_size=batch, check=False, progress=progress)
    metrics = evaluate(ds, preds, classes=[PERSON])
    return {
        **metrics.summary(),
        "images": len(ds.images),
        "objects": sum(len(im.annotations) for im in ds.images),
        "dataset": f"{data} ({split})",
    }
