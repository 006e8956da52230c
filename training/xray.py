"""Training the X-ray detector: a small trainer core over ultralytics.

The core is :func:`train_xray`: it resolves the data (a toolkit dataset, or a
synthetic spec generated once into a cache), writes the run folder, and calls
**hooks** at named events (:class:`TrainHook`: ``on_train_start``,
``on_epoch_end``, ``on_train_end``). Our run-folder outputs are hooks too
(:class:`MetricsWriter`, :class:`ModelDirWriter`). The YOLO training loop itself is
ultralytics' (AGPL-3.0): a thin trainer subclass and its callbacks bridge to our
hooks, and every ultralytics quirk is handled here and nowhere else:

* **Offline.** ultralytics is imported only through :mod:`cv.models.ultra` (offline
  flags, private settings folder). Its dataset check looks for ``Arial.ttf`` and
  asks the network for it when missing, so a local font (matplotlib's DejaVu Sans)
  is put in its settings folder under that name first. Its AMP check on a GPU
  downloads ``yolo26n.pt``; we never run it (bfloat16 autocast where the GPU has
  it, else full precision). It refuses bfloat16 on a CPU; where the CPU has native
  bfloat16 (AVX-512 BF16, AMX) our trainer turns CPU autocast on itself (epochs 1.47×
  faster on the development machine's CPU). Cloud logging callbacks are removed. Its own plots
  are off; ``metrics.png`` is ours.
* **Augmentation.** ultralytics' pipeline is mosaic → random affine → its
  ``Albumentations`` step → HSV → flips. Our training dataset subclass replaces
  that ``Albumentations`` step with :class:`XrayAugmentStep`, which runs our
  albumentations pipeline (:mod:`cv.training.augment`: TIP, flips, 90° rotations,
  colour, noise, blur) on the mosaic, and ultralytics' own HSV and flips are set
  to zero (one way to do a thing). Replacing the step inside
  ``build_transforms`` (not after building the dataset) keeps it when ultralytics
  rebuilds the transforms at ``close_mosaic``. Our transforms travel as
  ultralytics' ``augmentations`` argument (``A.to_dict``), so they reach DDP
  workers and are stored in checkpoints for resume.
* **Weights.** The EMA weights ultralytics keeps (``trainer.ema.ema``) are saved
  as a plain safetensors state dict with its ``model.json`` (``best/``, ``last/``);
  ultralytics' pickled ``weights/*.pt`` stay in the run folder only for resume.
* **Resume.** ultralytics strips the optimizer from ``last.pt`` when training
  ends, so the full checkpoint of each epoch is also kept as ``weights/resume.pt``;
  ``resume`` continues an interrupted run, and with more ``epochs`` than were
  trained it extends a finished one (with no more, it is refused by name, not by
  ultralytics' assertion). ``training.time_s`` in ``model.json`` adds the earlier
  sessions' time to this one's.
* **Multi-GPU.** ``device="0,1"`` makes ultralytics launch its own DDP workers
  (``torch.distributed.run``); the hooks run in the rank-0 worker and write the
  run folder, from which the result is read back.
* **RT-DETR** (``model: rtdetr-l``) trains through ultralytics' RT-DETR trainer,
  with the same data, augmentation and hooks; its validator scores set
  predictions. Its GIoU loss fills the box-loss columns of ``metrics.csv``.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from cv.errors import ConfigError, DataFormatError, NotFoundError
from cv.log import run_log
from cv.training.config import XrayTrainConfig, dump_config

if TYPE_CHECKING:
    import albumentations as A
    import torch

log = logging.getLogger(__name__)

METRIC_COLUMNS: tuple[str, ...] = (
    "epoch",
    "time_s",
    "train_box_loss",
    "train_cls_loss",
    "train_dfl_loss",
    "val_box_loss",
    "val_cls_loss",
    "val_dfl_loss",
    "precision",
    "recall",
    "mAP50",
    "mAP50-95",
    "lr",
)
"""Columns of ``metrics.csv``, one row per epoch (``epoch`` counts from 1)."""

_ULTRA_KEYS = {
    "train/box_loss": "train_box_loss",
    "train/cls_loss": "train_cls_loss",
    "train/dfl_loss": "train_dfl_loss",
    "val/box_loss": "val_box_loss",
    "val/cls_loss": "val_cls_loss",
    "val/dfl_loss": "val_dfl_loss",
    "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall",
    "metrics/mAP50(B)": "mAP50",
    "metrics/mAP50-95(B)": "mAP50-95",
    # RT-DETR's losses: its box regression is GIoU (+ L1, left out of the table),
    # and it has no distribution focal loss, so its dfl columns stay empty.
    "train/giou_loss": "train_box_loss",
    "val/giou_loss": "val_box_loss",
}


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a hook knows about the run.

    Attributes:
        run_dir: The run folder.
        config: The resolved configuration.
        classes: Class names in id order.
        data_yaml: The YOLO ``data.yaml`` trained on.
        dataset: A description of the dataset (path, or the synthetic spec's key).
        device: The device string given to ultralytics (``cpu``, ``0``, ``0,1``).
        command: The command line that started the run, when known.
        precision: ``bfloat16`` (autocast) or ``float32``: what the forward and
            backward passes ran in.
        commit: The code's commit when the run started (:func:`git_commit`).
    """

    run_dir: Path
    config: XrayTrainConfig
    classes: tuple[str, ...]
    data_yaml: Path
    dataset: str
    device: str
    command: str | None
    precision: str = "float32"
    commit: str | None = None


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """One epoch's figures (the columns of :data:`METRIC_COLUMNS`).

    Attributes:
        epoch: 1-based epoch number.
        values: Column name -> value.
        is_best: Whether this epoch has the best fitness so far (0.1 mAP50 + 0.9 mAP50-95).
        elapsed_s: Training seconds so far, over all sessions of a resumed run.
    """

    epoch: int
    values: dict[str, float]
    is_best: bool
    elapsed_s: float


@dataclass(slots=True)
class TrainResult:
    """What a training run produced.

    Attributes:
        run_dir: The run folder.
        best_dir: Model directory of the best epoch (``model.json`` + safetensors).
        last_dir: Model directory of the last epoch.
        history: Rows of ``metrics.csv``.
        seconds: Wall time of this call.
    """

    run_dir: Path
    best_dir: Path
    last_dir: Path
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def best(self) -> dict[str, float]:
        """The row of the epoch with the highest mAP50-95 (empty when no epoch ran)."""
        return max(self.history, key=lambda r: r.get("mAP50-95", 0.0), default={})


class TrainHook:
    """Base of training hooks; override the events needed. Hooks run in the process
    that trains (the rank-0 worker under DDP), so they must be picklable."""

    def on_train_start(self, run: RunInfo) -> None:
        """Called once, after the data and model are set up."""

    def on_epoch_end(self, run: RunInfo, record: EpochRecord, model: torch.nn.Module) -> None:
        """Called after each epoch's validation with the EMA model being trained."""

    def on_train_end(self, run: RunInfo) -> None:
        """Called once when training has finished."""


class MetricsWriter(TrainHook):
    """Appends each epoch to ``metrics.csv`` and redraws ``metrics.png``."""

    def on_epoch_end(self, run: RunInfo, record: EpochRecord, model: torch.nn.Module) -> None:
        """Appends the row (header first when the file is new) and replots."""
        path = run.run_dir / "metrics.csv"
        new = not path.exists()
        with path.open("a", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
            if new:
                w.writeheader()
            w.writerow({k: record.values.get(k, "") for k in METRIC_COLUMNS})
        plot_metrics(path, run.run_dir / "metrics.png")


class ModelDirWriter(TrainHook):
    """Writes ``last/`` every epoch and ``best/`` when an epoch is the best so far,
    as model directories (:mod:`cv.models.weights`)."""

    def on_epoch_end(self, run: RunInfo, record: EpochRecord, model: torch.nn.Module) -> None:
        """Saves the EMA weights with their record."""
        write_model_dir(run, record, model, run.run_dir / "last")
        if record.is_best:
            write_model_dir(run, record, model, run.run_dir / "best")


def write_model_dir(
    run: RunInfo, record: EpochRecord, model: torch.nn.Module, out_dir: Path
) -> Path:
    """Writes one model directory (``model.safetensors`` + ``model.json``) of the
    EMA weights, with the epoch's validation figures and the run's recipe."""
    from cv.models.load import save_model
    from cv.models.weights import RECORD_FILE, Preprocessing, WeightsRecord

    v = record.values
    record_ = WeightsRecord(
        name=run.config.name,
        architecture=run.config.model,
        classes=list(run.classes),
        input_size=run.config.imgsz,
        preprocessing=Preprocessing(color="RGB", letterbox=True, pad_value=114),
        metrics={
            "epoch": record.epoch,
            "AP50": v.get("mAP50"),
            "AP": v.get("mAP50-95"),
            "precision": v.get("precision"),
            "recall": v.get("recall"),
            "split": "val",
        },
        recipe={"config": run.config.model_dump(mode="json"), "command": run.command},
        training={
            "time_s": round(record.elapsed_s, 1),
            "epochs_done": record.epoch,
            "device": run.device,
            "precision": run.precision,
            "seed": run.config.seed,
            "dataset": run.dataset,
            "commit": run.commit,
        },
    )
    save_model(model, record_, out_dir)
    return out_dir / RECORD_FILE


def plot_metrics(csv_path: Path, png_path: Path) -> Path:
    """Draws losses, precision / recall and mAP per epoch from ``metrics.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(csv_path)
    ep = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for key in METRIC_COLUMNS[2:8]:
        axes[0].plot(ep, [r.get(key, np.nan) for r in rows], label=key, marker=".")
    axes[0].set_title("losses")
    for key in ("precision", "recall"):
        axes[1].plot(ep, [r.get(key, np.nan) for r in rows], label=key, marker=".")
    axes[1].set_title("validation P / R")
    for key in ("mAP50", "mAP50-95"):
        axes[2].plot(ep, [r.get(key, np.nan) for r in rows], label=key, marker=".")
    axes[2].set_title("validation mAP")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[1].set_ylim(0, 1)
    axes[2].set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


def read_metrics(csv_path: Path) -> list[dict[str, float]]:
    """The rows of a ``metrics.csv`` as floats (empty cells left out)."""
    if not csv_path.is_file():
        return []
    with csv_path.open(encoding="utf-8") as f:
        return [
            {k: float(v) for k, v in row.items() if v not in ("", None)}
            for row in csv.DictReader(f)
        ]


# --------------------------------------------------------------------------- data


def resolve_data(config: XrayTrainConfig, run_dir: Path) -> tuple[Path, list[str], str]:
    """The YOLO ``data.yaml`` to train on, its classes, and a description of it.

    A synthetic spec is generated into ``synth_cache/<spec hash>/`` unless it is
    there already. A YOLO dataset is used in place; another format is converted
    into ``run_dir/data``. A dataset without a ``val`` split validates on ``test``.

    Raises:
        NotFoundError: If the dataset path does not exist.
        ConfigError: If the dataset has neither a ``val`` nor a ``test`` split, or
            no ``train`` split.
        DataFormatError: If its files cannot be read as their format.
    """
    from cv.datasets.formats import detect_format, load_dataset, write_yolo
    from cv.datasets.formats.common import DEFAULT_SPLIT_RATIOS, assign_splits

    if config.synth is not None:
        data_yaml = _synth_dataset(config)
        where = data_yaml  # what errors about the dataset name
        desc = f"synthetic {config.synth.key()} {config.synth.model_dump_json()}"
    else:
        assert config.data is not None
        path = Path(config.data)
        if not path.exists():
            raise NotFoundError("dataset does not exist", path=path, field="data")
        fmt = detect_format(path)
        if fmt == "yolo":
            data_yaml = path if path.is_file() else path / "data.yaml"
            where = data_yaml
        else:
            log.info("converting the %s dataset at %s to YOLO in %s", fmt, path, run_dir / "data")
            ds = load_dataset(path, fmt=fmt)
            # Sources without splits (SIXray, PIXray, DvXray...) get data convert's default
            # random split, so validation never runs on training images.
            assigned = assign_splits(ds, ratios=DEFAULT_SPLIT_RATIOS, seed=config.seed)
            if assigned:
                log.info(
                    "%d images had no split: split %s at random (seed %d)",
                    assigned, "/".join(f"{r:g}" for r in DEFAULT_SPLIT_RATIOS), config.seed,
                )  # fmt: skip
            data_yaml = write_yolo(ds, run_dir / "data", images="symlink")
            where = path  # the user's folder, not the run's converted copy
        desc = str(path.absolute())
    doc = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or "names" not in doc:
        raise DataFormatError("data.yaml has no 'names'", path=data_yaml, field="names")
    names = doc["names"]
    classes = [str(names[k]) for k in sorted(names)] if isinstance(names, dict) else list(names)
    if not doc.get("train"):
        raise ConfigError("the dataset has no train split", path=where, field="train")
    if doc.get("val") and doc.get("val") == doc.get("train"):
        raise ConfigError(
            "the dataset's val split is its train split: validation would measure the "
            "training images; give it a val or test split (data convert --split-ratios)",
            path=where,
            field="val",
        )
    if not doc.get("val"):
        if not doc.get("test"):
            raise ConfigError(
                "the dataset has neither a val nor a test split to validate on",
                path=where,
                field="val",
            )
        log.warning("%s has no val split: validating on its test split", data_yaml)
        doc["val"] = doc["test"]
        doc["path"] = str(Path(str(doc.get("path") or data_yaml.parent)).absolute())
        run_dir.mkdir(parents=True, exist_ok=True)
        data_yaml = run_dir / "data.yaml"
        data_yaml.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return data_yaml, classes, desc


def _synth_dataset(config: XrayTrainConfig) -> Path:
    spec = config.synth
    assert spec is not None
    folder = config.synth_cache / spec.key()
    data_yaml = folder / "data.yaml"
    if data_yaml.is_file() and (folder / "manifest.json").is_file():
        log.info("reusing the synthetic set in %s", folder)
        return data_yaml
    # Generated beside the cache entry and renamed, so an interrupted generation
    # is never mistaken for a finished set.
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("generating %d synthetic images into %s", spec.images, folder)
    make = getattr(spec, "generate", None)
    if callable(make):
        # A spec of another generator (people for the person detector,
        # cv.training.person) writes its own YOLO set.
        make(tmp)
    else:
        _generate_xray(spec, tmp)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    # data.yaml names the folder it was written in; point it at the final one.
    doc = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    doc["path"] = str(folder.absolute())
    data_yaml.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return data_yaml


def _generate_xray(spec: Any, out: Path) -> None:
    from cv.datasets.synth import TARGET_CLASSES, generate

    generate(
        out,
        n_images=spec.images,
        size=(spec.size, spec.size),
        profiles=spec.profiles or None,
        seed=spec.seed,
        workers=spec.workers,
        parcel_fraction=spec.parcels,
        clean_fraction=spec.clean,
        threats=spec.threats,
        classes=spec.classes or TARGET_CLASSES,
        splits=spec.splits,
    )


def _train_image_side(data_yaml: Path) -> int | None:
    """The long side of the first training image (for scaling TIP cut-outs)."""
    from cv.image import IMAGE_SUFFIXES, read_image_size

    doc = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    base = Path(str(doc.get("path") or data_yaml.parent))
    train = doc["train"][0] if isinstance(doc["train"], list) else doc["train"]
    folder = Path(train) if Path(train).is_absolute() else base / train
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                w, h = read_image_size(p)
                return max(w, h)
    return None


# --------------------------------------------------------------------------- augmentation


def build_transforms(
    config: XrayTrainConfig, *, classes: Sequence[str], data_yaml: Path
) -> list[A.BasicTransform]:
    """Our albumentations transforms for this config (:func:`cv.training.augment.xray_transforms`).

    Raises:
        NotFoundError: If the TIP library does not exist.
    """
    from cv.datasets.tip import load_library
    from cv.training.augment import xray_transforms

    a = config.augment
    scale = 1.0
    if a.tip_library is not None:
        lib = load_library(a.tip_library)  # fails early, naming the path
        if not any(c.category in classes for c in lib.cutouts):
            log.warning("no cut-out of %s is of a class the dataset has: TIP is off", a.tip_library)
        if a.tip_scale is not None:
            scale = a.tip_scale
        else:
            side = _train_image_side(data_yaml)
            scale = config.imgsz / side if side else 1.0
    return xray_transforms(
        flip_p=a.flip_p,
        rot90_p=a.rot90_p,
        colour_p=a.colour_p,
        hue_shift=a.hue_shift,
        saturation=a.saturation,
        brightness=a.brightness,
        contrast=a.contrast,
        noise_p=a.noise_p,
        noise_std=a.noise_std,
        blur_p=a.blur_p,
        tip_library=None if a.tip_library is None else a.tip_library.absolute(),
        tip_classes=list(classes),
        tip_p=a.tip_p,
        tip_scale=scale,
        tip_max=a.tip_max,
    )


class XrayAugmentStep:
    """Our albumentations pipeline as a step of ultralytics' training transforms.

    It takes the place of ultralytics' ``Albumentations`` step and works on its label
    dict: ``img`` (``(H, W, 3)`` uint8 **BGR**, as ultralytics loads it), ``cls``
    ``(N, 1)`` and ``instances`` (boxes). Boxes and classes may be added (TIP).

    Args:
        transforms: Our transforms, or their ``A.to_dict`` forms.
    """

    def __init__(self, transforms: Sequence[Any]) -> None:
        import albumentations as A

        from cv.training import augment as _augment  # registers ThreatProjection for from_dict

        items = [A.from_dict(t) if isinstance(t, dict) else t for t in transforms]
        self.compose = _augment.xray_compose(items)

    def __call__(self, labels: dict[str, Any]) -> dict[str, Any]:
        """Augments one label dict in place and returns it."""
        import torch
        from ultralytics.utils.instance import Instances

        from cv.training.augment import augment

        # Like ultralytics' own step: seed from torch so every data-loader worker
        # differs and a seeded run repeats.
        seed = torch.initial_seed() % (2**32)
        if self.compose.seed != seed:
            self.compose.set_random_seed(seed)
        img = labels["img"]
        h, w = img.shape[:2]
        inst = labels["instances"]
        inst.convert_bbox("xyxy")
        inst.denormalize(w, h)
        cls = labels["cls"].reshape(-1)
        rgb = np.ascontiguousarray(img[..., ::-1])
        out, boxes, ids = augment(self.compose, rgb, inst.bboxes, cls)
        labels["img"] = np.ascontiguousarray(out[..., ::-1])
        labels["cls"] = ids.astype(np.float32).reshape(-1, 1)
        labels["instances"] = Instances(boxes, bbox_format="xyxy", normalized=False)
        return labels


# --------------------------------------------------------------------------- ultralytics bridge


def _offline_fonts() -> None:
    """Puts a local font where ultralytics looks for ``Arial.ttf`` (else it asks the network)."""
    from matplotlib import font_manager
    from ultralytics.utils import USER_CONFIG_DIR

    src = Path(font_manager.findfont("DejaVu Sans", fallback_to_default=True))
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        dst = Path(USER_CONFIG_DIR) / name
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)


def cpu_bf16_supported() -> bool:
    """Whether this CPU runs bfloat16 natively (AVX-512 BF16 or AMX), so that
    autocast to bfloat16 speeds training up rather than emulating it."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _trainer_class(architecture: str, *, cpu_bf16: bool = False) -> type[Any]:
    """Our ``DetectionTrainer`` subclass for a registered architecture.

    Made per call (and so pickled by value when ultralytics sends it to DDP workers,
    architecture included). ``cpu_bf16`` trains under CPU bfloat16 autocast.
    """
    from cv.models.rtdetr import is_detr
    from cv.models.ultra import ultralytics

    ultralytics()
    from ultralytics.data.augment import Albumentations
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.models.rtdetr.train import RTDETRTrainer
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.utils import colorstr

    # RT-DETR's trainer brings its validator (set predictions, no NMS); its loss
    # lives in the model. Both read the same YOLO-format data.
    base_trainer = RTDETRTrainer if is_detr(architecture) else DetectionTrainer

    class XrayDataset(YOLODataset):
        """ultralytics' YOLO dataset with our augmentation step in its pipeline."""

        def build_transforms(self, hyp: Any) -> Any:
            transforms = super().build_transforms(hyp)
            if self.augment and getattr(hyp, "augmentations", None):
                steps = transforms.transforms
                for i, t in enumerate(steps):
                    if isinstance(t, Albumentations):
                        steps[i] = XrayAugmentStep(hyp.augmentations)
                        break
                else:
                    # Mosaic's Compose nests the rest; the step sits at the top level.
                    raise RuntimeError("ultralytics' Albumentations step not found")
            return transforms

    class XrayTrainer(base_trainer):  # type: ignore[valid-type, misc]
        """Builds the model from our registry and the training set with our augmentation."""

        arch = architecture
        bf16_on_cpu = cpu_bf16

        def __init__(self, cfg: Any = None, overrides: Any = None, _callbacks: Any = None) -> None:
            from ultralytics.cfg import DEFAULT_CFG

            super().__init__(cfg or DEFAULT_CFG, overrides, _callbacks)
            # Cloud logging (platform, events) never runs: training stays offline.
            for event, fns in self.callbacks.items():
                self.callbacks[event] = [
                    f
                    for f in fns
                    if not getattr(f, "__module__", "").startswith("ultralytics.utils.callbacks")
                    and not getattr(f, "__module__", "").startswith("ultralytics.utils.events")
                ]

        def check_resume(self, overrides: dict[str, Any]) -> None:
            super().check_resume(overrides)
            # Extending a run: more epochs than the checkpoint was trained for.
            if self.resume and overrides.get("epochs"):
                self.args.epochs = int(overrides["epochs"])

        def resume_training(self, ckpt: Any) -> None:
            # train_xray refuses a finished run before building the trainer; this
            # catches a checkpoint saved after the run folder's last record (the
            # process stopped in between), where ultralytics would only assert.
            if ckpt is not None and self.resume:
                done = int(ckpt.get("epoch", -1)) + 1
                if done >= self.epochs:
                    raise finished_run_error(Path(self.save_dir), done)
            super().resume_training(ckpt)

        def _setup_train(self) -> None:
            super()._setup_train()
            if self.device.type != "cpu":
                return
            import torch

            if self.bf16_on_cpu:
                # ultralytics refuses bfloat16 autocast off CUDA; with ``amp`` set
                # to True its loop enters ``torch.autocast("cpu")``, whose default
                # dtype is bfloat16. The weights, optimizer and EMA stay float32,
                # and bfloat16 has float32's range, so no loss scaling is needed.
                self.amp = True
                self.scaler = torch.amp.GradScaler("cpu", enabled=False)
            # oneDNN's convolutions run faster on NHWC tensors: 1.25x a training
            # step of YOLO11n at 384 px under bfloat16 on this CPU. Parameters keep
            # their identity (the optimizer still holds them); saved weights are
            # made contiguous again (save_state_dict).
            self.model.to(memory_format=torch.channels_last)
            if self.ema is not None:
                self.ema.ema.to(memory_format=torch.channels_last)

        def preprocess_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
            batch = super().preprocess_batch(batch)
            if self.device.type == "cpu":
                import torch

                batch["img"] = batch["img"].contiguous(memory_format=torch.channels_last)
            return batch

        def get_model(self, cfg: Any = None, weights: Any = None, verbose: bool = True) -> Any:
            from cv.models.registry import build_model

            model = build_model(
                self.arch,
                num_classes=self.data["nc"],
                seed=self.args.seed,
                class_names=[self.data["names"][i] for i in range(self.data["nc"])],
            )
            if weights:
                model.load(weights)
            return model

        def build_dataset(
            self, img_path: str, mode: str = "train", batch: int | None = None
        ) -> Any:
            if mode != "train":
                return super().build_dataset(img_path, mode, batch)
            from ultralytics.utils.torch_utils import unwrap_model

            gs = max(int(unwrap_model(self.model).stride.max()), 32)
            return XrayDataset(
                img_path=img_path,
                imgsz=self.args.imgsz,
                batch_size=batch,
                augment=True,
                hyp=self.args,
                rect=bool(self.args.rect),
                cache=self.args.cache or None,
                single_cls=self.args.single_cls or False,
                stride=gs,
                pad=0.0,
                prefix=colorstr("train: "),
                task=self.args.task,
                classes=self.args.classes,
                data=self.data,
                fraction=self.args.fraction,
            )

    return XrayTrainer


class _Bridge:
    """ultralytics callbacks -> our hook events (picklable for DDP)."""

    def __init__(self, run: RunInfo, hooks: Sequence[TrainHook], *, prior_s: float = 0.0) -> None:
        self.run = run
        self.hooks = list(hooks)
        self.t0 = time.time()
        # Training seconds of the run's earlier sessions (resume), so that the
        # recorded time is the run's, not this process's.
        self.prior_s = prior_s
        self.done: set[int] = set()

    def on_pretrain_routine_end(self, trainer: Any) -> None:
        from ultralytics.utils import RANK

        if RANK in {-1, 0}:
            self.t0 = time.time()
            for h in self.hooks:
                h.on_train_start(self.run)

    def on_model_save(self, trainer: Any) -> None:
        # The full checkpoint (optimizer included) that resume needs, kept from the strip.
        shutil.copyfile(trainer.last, trainer.wdir / "resume.pt")

    def on_fit_epoch_end(self, trainer: Any) -> None:
        from ultralytics.utils import RANK

        epoch = trainer.epoch + 1
        # ultralytics calls this once more after training to report the best
        # checkpoint's validation (as epoch + 1); that is not a training epoch.
        if RANK not in {-1, 0} or epoch in self.done or epoch > trainer.epochs:
            return
        self.done.add(epoch)
        raw = {
            **trainer.label_loss_items(trainer.tloss, prefix="train"),
            **trainer.metrics,
        }
        values = {ours: float(raw[k]) for k, ours in _ULTRA_KEYS.items() if k in raw}
        values["epoch"] = epoch
        values["time_s"] = round(float(getattr(trainer, "epoch_time", 0.0) or 0.0), 2)
        values["lr"] = float(next(iter(trainer.lr.values()))) if trainer.lr else float("nan")
        record = EpochRecord(
            epoch=epoch,
            values=values,
            is_best=trainer.best_fitness is not None and trainer.fitness == trainer.best_fitness,
            elapsed_s=self.prior_s + time.time() - self.t0,
        )
        for h in self.hooks:
            h.on_epoch_end(self.run, record, trainer.ema.ema)

    def on_train_end(self, trainer: Any) -> None:
        for h in self.hooks:
            h.on_train_end(self.run)


# --------------------------------------------------------------------------- core


def resolve_device(device: str) -> str:
    """ultralytics' device string: ``auto`` is GPU 0 when there is one, else ``cpu``.

    Raises:
        ConfigError: If GPUs are asked for and none is available.
    """
    import torch

    d = device.strip().lower()
    if d == "auto":
        return "0" if torch.cuda.is_available() else "cpu"
    if d == "cpu":
        return d
    ids = [x.strip() for x in d.removeprefix("cuda:").split(",") if x.strip()]
    if not ids or not all(x.isdigit() for x in ids):
        raise ConfigError(f"device must be auto, cpu, 0 or 0,1,..., got {device!r}", field="device")
    n = torch.cuda.device_count()
    if any(int(x) >= n for x in ids):
        raise ConfigError(
            f"device {device!r} asked for, but this machine has {n} GPU(s)", field="device"
        )
    return ",".join(ids)


def check_model_name(name: str) -> None:
    """Raises ConfigError (listing the registered models) if ``name`` is not registered."""
    from cv.models.registry import list_models

    if name not in list_models():
        raise ConfigError(
            f"unknown model {name!r}; registered models: {', '.join(list_models())}",
            field="model",
        )


def finished_run_error(run_dir: Path, done: int) -> ConfigError:
    """The error of resuming a run that has trained all its epochs already."""
    return ConfigError(
        f"run {run_dir.name} finished after {done} epochs; "
        f"pass --epochs > {done} to train it further",
        path=run_dir,
        field="epochs",
    )


def _check_resume(run_dir: Path, classes: Sequence[str], epochs: int) -> float:
    """Checks that a run can resume on a dataset with ``classes`` up to ``epochs``, as
    its ``last/model.json`` tells (nothing to check before any epoch ended), and
    returns the training seconds of its earlier sessions."""
    from cv.models.weights import read_record

    last = run_dir / "last"
    if not (last / "model.json").is_file():
        return 0.0
    rec = read_record(last, verify=False)
    if list(rec.classes) != list(classes):
        raise ConfigError(
            f"the dataset's classes {list(classes)} do not match the model's "
            f"{list(rec.classes)} in {last}; resume with the run's own dataset",
            path=last / "model.json",
            field="classes",
        )
    done = int(rec.training.get("epochs_done") or 0)
    if done and epochs <= done:
        raise finished_run_error(run_dir, done)
    return float(rec.training.get("time_s") or 0.0)


def train_xray(
    config: XrayTrainConfig,
    *,
    resume: bool = False,
    command: str | None = None,
    hooks: Sequence[TrainHook] = (),
) -> TrainResult:
    """Trains an X-ray detector as ``config`` says, into ``config.out / config.name``.

    The run folder gets ``config.yaml`` (resolved), ``metrics.csv`` and
    ``metrics.png`` (per epoch), ``best/`` and ``last/`` model directories (our
    format), ``train.log``, and ultralytics' ``weights/`` (its checkpoints, for resume).

    Args:
        config: The experiment.
        resume: Continue the run in the run folder from its last checkpoint; the
            folder's ``config.yaml`` is used, except ``epochs`` (more epochs extend
            a finished run), ``device``, ``batch`` and ``workers``.
        command: The command line, recorded in each ``model.json``.
        hooks: More hooks, called after the built-in ones.

    Returns:
        The run folder, model directories and metrics history.

    Raises:
        NotFoundError: If the dataset, the TIP library, or (resume) the run's
            checkpoint does not exist.
        ConfigError: If the model is not registered, the device is not there, or
            (resume) the dataset's classes differ from the run's or the run has
            trained ``epochs`` epochs already.
    """
    from cv.models.ultra import ultralytics

    t0 = time.time()
    run_dir = config.run_dir
    ckpt = run_dir / "weights" / "resume.pt"
    if resume and not ckpt.is_file():
        raise NotFoundError("no checkpoint to resume from in the run folder", path=ckpt)
    check_model_name(config.model)
    device = resolve_device(config.device)
    run_dir.mkdir(parents=True, exist_ok=True)
    ultralytics()
    with run_log(run_dir / "train.log", logging.getLogger("ultralytics")):
        data_yaml, classes, dataset = resolve_data(config, run_dir)
        prior_s = _check_resume(run_dir, classes, config.epochs) if resume else 0.0
        dump_config(config, run_dir / "config.yaml")
        transforms = build_transforms(config, classes=classes, data_yaml=data_yaml)
        _offline_fonts()
        precision = _precision(config, device)
        cpu_bf16 = precision == "bfloat16" and device == "cpu"
        if cpu_bf16:
            log.info("bfloat16 autocast on the CPU (it has native bfloat16)")
        run = RunInfo(
            run_dir=run_dir,
            config=config,
            classes=tuple(classes),
            data_yaml=data_yaml,
            dataset=dataset,
            device=device,
            command=command,
            precision=precision,
            commit=git_commit(),
        )
        bridge = _Bridge(run, [MetricsWriter(), ModelDirWriter(), *hooks], prior_s=prior_s)
        if not resume:
            # A fresh run starts a fresh history.
            for stale in ("metrics.csv", "metrics.png"):
                (run_dir / stale).unlink(missing_ok=True)
        overrides = _overrides(
            config, data_yaml=data_yaml, device=device, precision=precision, transforms=transforms
        )
        if resume:
            overrides["resume"] = str(ckpt)
        trainer = _trainer_class(config.model, cpu_bf16=cpu_bf16)(overrides=overrides)
        for event in (
            "on_pretrain_routine_end",
            "on_model_save",
            "on_fit_epoch_end",
            "on_train_end",
        ):
            trainer.add_callback(event, getattr(bridge, event))
        log.info("training %s on %s (%s) into %s", config.model, dataset, device, run_dir)
        trainer.train()
    return TrainResult(
        run_dir=run_dir,
        best_dir=run_dir / "best",
        last_dir=run_dir / "last",
        history=read_metrics(run_dir / "metrics.csv"),
        seconds=time.time() - t0,
    )


def _precision(config: XrayTrainConfig, device: str) -> str:
    """What the forward and backward passes run in: ``bfloat16`` when ``amp`` is on
    and the device has native bfloat16 (a GPU through ultralytics' own AMP, a CPU
    through our trainer's autocast), else ``float32``."""
    import torch

    if not config.amp:
        return "float32"
    native = cpu_bf16_supported() if device == "cpu" else torch.cuda.is_bf16_supported()
    return "bfloat16" if native else "float32"


def _overrides(
    config: XrayTrainConfig,
    *,
    data_yaml: Path,
    device: str,
    precision: str,
    transforms: Sequence[Any],
) -> dict[str, Any]:

    a = config.augment
    # ultralytics takes bfloat16 on a GPU only; on a CPU our trainer turns it on.
    amp: bool | str = "bf16" if precision == "bfloat16" and device != "cpu" else False
    return {
        "task": "detect",
        "mode": "train",
        # ultralytics needs a model name for its args; ours is built by get_model.
        "model": f"{config.model}.yaml",
        "pretrained": False,
        "data": str(data_yaml.absolute()),
        "imgsz": config.imgsz,
        "epochs": config.epochs,
        "batch": config.batch,
        "workers": config.workers,
        "cache": False if config.cache == "none" else config.cache,
        "optimizer": config.optimizer,
        "lr0": config.lr0,
        "nbs": config.nbs,
        "warmup_epochs": config.warmup_epochs,
        "cos_lr": config.cos_lr,
        "seed": config.seed,
        "deterministic": True,
        "device": device,
        "patience": config.patience,
        "close_mosaic": config.close_mosaic,
        "amp": amp,
        "save_dir": str(config.run_dir.absolute()),
        "exist_ok": True,
        "plots": False,
        "val": True,
        "verbose": True,
        "mosaic": a.mosaic,
        "scale": a.scale,
        "translate": a.translate,
        "degrees": 0.0,
        # Flips and colour jitter are ours (XrayAugmentStep); ultralytics' are off.
        "fliplr": 0.0,
        "flipud": 0.0,
        "hsv_h": 0.0,
        "hsv_s": 0.0,
        "hsv_v": 0.0,
        "augmentations": list(transforms),
    }


def git_commit() -> str | None:
    """The code's commit hash, with ``+modified`` when tracked files differ from it
    (what trained is then not exactly that commit); ``None`` outside a git checkout.

    Taken once when a run starts: commits made while it trains are not its code.
    """

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args],
                capture_output=True,
                text=True,
                timeout=5,
                cwd=Path(__file__).resolve().parent,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    if not head:
        return None
    changed = git("status", "--porcelain", "--untracked-files=no")
    return f"{head}+modified" if changed else head
