"""Training a person re-ID embedder: the BoT / torchreid recipe in a small trainer core.

The recipe (``../shared/facts/reid.md``): ID loss with label smoothing (ε = 0.1)
on the logits after the BNNeck plus batch-hard triplet loss (margin 0.3) on the
features before it; **PK batches** (P identities × K images each, so every
anchor has positives and negatives in its batch); learning-rate warm-up then
cosine decay; AdamW; random flip, padding + random crop, colour jitter and
optional random erasing (albumentations).

The core is :func:`train_reid`. It resolves the data (a folder that
:func:`cv.datasets.reid.read_reid` reads, or a synthetic spec generated once into
a cache folder by :func:`cv.datasets.cctv.generate_reid_dataset`), writes the run
folder, and calls **hooks** at named events (:class:`ReidTrainHook`:
``on_train_start``, ``on_epoch_end``, ``on_train_end``). The run-folder outputs are
hooks too (:class:`ReidMetricsWriter`, :class:`ReidModelDirWriter`). A run folder
(``out/name``) holds::

    config.yaml        the resolved experiment
    metrics.csv        one row per epoch (losses, accuracy, lr, rank-1, mAP, ...)
    metrics.png        the same, drawn
    last/  best/       model directories (model.json + model.safetensors; best/ also
                       model.onnx when ``export`` is on), best by validation mAP
    weights/resume.pt  model + optimizer state of the last epoch (for ``resume``)
    train.log

Validation every ``val_every`` epochs uses :func:`cv.evaluation.reid.evaluate_embedder`
(Market-1501 protocol: rank-k, mAP, mINP) on identities held out of the training
split (``val_identities``), or on the dataset's own query / gallery when none are.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cv.errors import ConfigError, DataValidationError, NotFoundError
from cv.log import run_log

if TYPE_CHECKING:
    import albumentations as A
    import torch

    from cv.datasets.reid import ReidDataset, ReidSample

log = logging.getLogger(__name__)

REID_SYNTH_CACHE = Path("data/cache/reid-synth")
"""Default folder of generated synthetic re-ID sets, one sub-folder per spec hash."""


# --------------------------------------------------------------------------- config


class ReidSynthSpec(BaseModel):
    """A synthetic re-ID set (:func:`cv.datasets.cctv.generate_reid_dataset`'s options).

    Attributes:
        identities: People in all (train + test).
        train_identities: People in the training split (half by default); the rest
            are the test ids.
        cameras: Cameras in all (3 to 9).
        train_cameras: Cameras the training split is seen by; the test split is seen
            by the others (cross-camera, cross-domain evaluation).
        images_per_camera: Crops per person and camera.
        derived: Share of identities that are look-alikes of an earlier one.
        source: How people are drawn: ``crops``, ``scenes`` (cut out of camera
            frames) or ``mixed`` (see :data:`cv.datasets.cctv.REID_SOURCES`).
        size: ``(height, width)`` of the crops.
        seed: Generator seed.
        workers: Worker processes (0: one per core); does not change the output.
    """

    model_config = ConfigDict(extra="forbid")

    identities: int = Field(default=600, ge=2)
    train_identities: int | None = Field(default=None, ge=1)
    cameras: int = Field(default=8, ge=3, le=9)
    train_cameras: int = Field(default=5, ge=1)
    images_per_camera: int = Field(default=4, ge=1)
    derived: float = Field(default=0.3, ge=0, lt=1)
    source: Literal["crops", "scenes", "mixed"] = "crops"
    size: tuple[int, int] = (256, 128)
    seed: int = 0
    workers: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _splits(self) -> ReidSynthSpec:
        if self.train_identities is not None and self.train_identities >= self.identities:
            raise ValueError("train_identities must be fewer than identities (the rest are test)")
        if self.train_cameras > self.cameras - 2:
            raise ValueError(
                "train_cameras must leave at least two cameras for the test split's query "
                "and gallery"
            )
        return self

    def key(self) -> str:
        """A short hash of everything that changes the generated images."""
        # ``source`` joined later: left out at its default, earlier sets keep their keys.
        skip = {"workers"} | ({"source"} if self.source == "crops" else set())
        doc = self.model_dump(mode="json", exclude=skip)
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]


class ReidAugmentConfig(BaseModel):
    """Training augmentation (see :func:`reid_transforms`).

    Attributes:
        flip_p: Probability of a horizontal flip.
        pad: Padding in pixels before the random crop back to the input size (0: off).
        colour_p: Probability of colour jitter.
        brightness: Largest brightness change (fraction).
        contrast: Largest contrast change (fraction).
        saturation: Largest saturation change (fraction).
        hue: Largest hue shift (fraction of the hue circle, at most 0.5).
        gray_p: Probability of turning the crop grey (teaches shape over colour).
        gain_p: Probability of a white-balance change (per-channel gains).
        gain: Largest per-channel gain change (fraction).
        gamma_p: Probability of a gamma change.
        gamma: Largest gamma change (fraction).
        downscale_p: Probability of down- and up-sampling to 30-90 % (a camera
            that resolves less than its pixels).
        blur_p: Probability of a slight blur (out-of-focus cameras).
        noise_p: Probability of sensor noise.
        jpeg_p: Probability of JPEG artefacts (quality 45-95).
        erasing_p: Probability of random erasing (helps in-domain, can hurt
            cross-domain; off by default).
    """

    model_config = ConfigDict(extra="forbid")

    flip_p: float = Field(default=0.5, ge=0, le=1)
    pad: int = Field(default=10, ge=0)
    colour_p: float = Field(default=0.8, ge=0, le=1)
    brightness: float = Field(default=0.3, ge=0, le=1)
    contrast: float = Field(default=0.3, ge=0, le=1)
    saturation: float = Field(default=0.3, ge=0, le=1)
    hue: float = Field(default=0.05, ge=0, le=0.5)
    gray_p: float = Field(default=0.0, ge=0, le=1)
    gain_p: float = Field(default=0.8, ge=0, le=1)
    gain: float = Field(default=0.15, ge=0, lt=1)
    gamma_p: float = Field(default=0.5, ge=0, le=1)
    gamma: float = Field(default=0.25, ge=0, lt=1)
    downscale_p: float = Field(default=0.5, ge=0, le=1)
    blur_p: float = Field(default=0.3, ge=0, le=1)
    noise_p: float = Field(default=0.3, ge=0, le=1)
    jpeg_p: float = Field(default=0.3, ge=0, le=1)
    erasing_p: float = Field(default=0.0, ge=0, le=1)


class ReidTrainConfig(BaseModel):
    """One re-ID embedder training run.

    Attributes:
        model: Registered re-ID builder (``osnet_x0_25``, ``osnet_x1_0``,
            ``resnet18_bnneck``, ``resnet50_bnneck``).
        feature_dim: Embedding size; the builder's default when unset.
        data: A re-ID dataset folder (Market-1501 / MSMT17 layout).
        synth: A synthetic set to generate (once, cached) and train on.
        synth_cache: Folder of cached synthetic sets.
        input_hw: ``[height, width]`` of the network input.
        epochs: Epochs to train (one epoch: every identity's images about once).
        p: Identities per batch.
        k: Images per identity per batch (the batch is ``p × k``).
        lr: Peak learning rate (AdamW).
        weight_decay: AdamW's decoupled weight decay.
        warmup_epochs: Epochs of linear warm-up from ``lr × warmup_factor``.
        warmup_factor: Learning-rate factor at the first step.
        min_lr_ratio: The cosine decay ends at ``lr × min_lr_ratio``.
        label_smoothing: ε of the ID loss.
        triplet_margin: Margin of the batch-hard triplet loss.
        id_weight: Weight of the ID loss.
        triplet_weight: Weight of the triplet loss.
        val_every: Validate every this many epochs (and after the last); 0: never.
        val_identities: Training identities held out for validation (query: one
            crop per identity and camera, gallery: the rest); 0 validates on the
            dataset's own query / gallery (then ``best/`` is chosen on the test set).
        export: Export ``best/`` to ONNX (with the parity check) at the end.
        workers: Data-loader worker processes.
        threads: PyTorch CPU threads (0: its default, one per core).
        device: ``auto`` (GPU when present, else CPU), ``cpu``, ``cuda``, ``cuda:1``.
        amp: bfloat16 autocast on GPUs that have it.
        seed: Seed of everything random in training.
        augment: Augmentation settings.
        out: Folder of runs.
        name: Run name; the run folder is ``out/name``.
    """

    model_config = ConfigDict(extra="forbid")

    model: str = "osnet_x0_25"
    feature_dim: int | None = Field(default=None, ge=1)
    data: Path | None = None
    synth: ReidSynthSpec | None = None
    synth_cache: Path = REID_SYNTH_CACHE
    input_hw: tuple[int, int] = (256, 128)
    epochs: int = Field(default=30, ge=1)
    p: int = Field(default=16, ge=2)
    k: int = Field(default=4, ge=2)
    lr: float = Field(default=0.006, gt=0)
    weight_decay: float = Field(default=5e-4, ge=0)
    warmup_epochs: float = Field(default=0.5, ge=0)
    warmup_factor: float = Field(default=0.1, gt=0, le=1)
    min_lr_ratio: float = Field(default=0.01, ge=0, le=1)
    label_smoothing: float = Field(default=0.1, ge=0, lt=1)
    triplet_margin: float = Field(default=0.3, ge=0)
    id_weight: float = Field(default=1.0, ge=0)
    triplet_weight: float = Field(default=1.0, ge=0)
    val_every: int = Field(default=5, ge=0)
    val_identities: int = Field(default=0, ge=0)
    export: bool = True
    workers: int = Field(default=1, ge=0)
    threads: int = Field(default=0, ge=0)
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    augment: ReidAugmentConfig = Field(default_factory=ReidAugmentConfig)
    out: Path = Path("runs/train")
    name: str = Field(default="reid", min_length=1)

    @model_validator(mode="after")
    def _check(self) -> ReidTrainConfig:
        if (self.data is None) == (self.synth is None):
            raise ValueError("give exactly one of 'data' (a dataset folder) or 'synth' (a spec)")
        if min(self.input_hw) < 16:
            raise ValueError(f"input_hw must be at least 16 pixels each, got {self.input_hw}")
        if self.id_weight == 0 and self.triplet_weight == 0:
            raise ValueError("id_weight and triplet_weight cannot both be 0")
        return self

    @property
    def run_dir(self) -> Path:
        """The run folder, ``out/name``."""
        return self.out / self.name


def validate_reid_config(
    doc: dict[str, Any],
    *,
    path: str | PathLike[str] | None = None,
    root: yaml.Node | None = None,
) -> ReidTrainConfig:
    """Validates a mapping into :class:`ReidTrainConfig` (errors name file, line, field)."""
    from cv.training.config import validate_config

    return validate_config(doc, path=path, root=root, model=ReidTrainConfig)


def load_reid_config(
    path: str | PathLike[str] | None = None, *, overrides: dict[str, Any] | None = None
) -> ReidTrainConfig:
    """Reads an experiment YAML file (or none), applies overrides, and validates.

    Args:
        path: The YAML file; ``None`` starts from the defaults.
        overrides: Values that replace the file's (the command line's options),
            nested with dotted keys (``augment.erasing_p``, ``synth.identities``);
            ``None`` values are skipped; ``data`` replaces ``synth`` and the other
            way round.

    Raises:
        NotFoundError: If the file does not exist.
        ConfigError: If it is not valid YAML or a field is invalid (file, line and
            field are named).
    """
    from cv.training.config import apply_overrides, load_config

    if path is None:
        return validate_reid_config(apply_overrides({}, overrides or {}))
    return load_config(path, overrides=overrides, model=ReidTrainConfig)


# --------------------------------------------------------------------------- losses


def pairwise_distances(features: torch.Tensor) -> torch.Tensor:
    """``(N, N)`` Euclidean distances between the rows of ``features`` (stable at 0)."""
    import torch

    sq = features.pow(2).sum(1, keepdim=True)
    d2 = sq + sq.t() - 2.0 * features @ features.t()
    return torch.sqrt(d2.clamp(min=1e-12))


def batch_hard_mining(
    dist: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each anchor, its hardest positive (farthest same id) and hardest negative
    (closest other id).

    Args:
        dist: ``(N, N)`` distances.
        labels: ``(N,)`` identity labels.

    Returns:
        ``dist_ap (N,)``, ``dist_an (N,)`` and the indices of the chosen positive and
        negative of each anchor. An anchor without positives other than itself gets
        itself (distance 0); one without negatives gets ``inf`` (no loss).
    """
    import torch

    same = labels[:, None] == labels[None, :]
    pos = torch.where(same, dist, torch.full_like(dist, -1.0))
    dist_ap, idx_p = pos.max(dim=1)
    neg = torch.where(same, torch.full_like(dist, float("inf")), dist)
    dist_an, idx_n = neg.min(dim=1)
    return dist_ap, dist_an, idx_p, idx_n


def triplet_loss(features: torch.Tensor, labels: torch.Tensor, *, margin: float) -> torch.Tensor:
    """Batch-hard triplet loss: mean of ``max(0, d(a, p_hard) - d(a, n_hard) + margin)``.

    Args:
        features: ``(N, D)`` features (before the BNNeck).
        labels: ``(N,)`` identity labels.
        margin: The margin.
    """
    import torch.nn.functional as F

    dist_ap, dist_an, _, _ = batch_hard_mining(pairwise_distances(features.float()), labels)
    return F.relu(dist_ap - dist_an + margin).mean()


def id_loss(logits: torch.Tensor, labels: torch.Tensor, *, smoothing: float) -> torch.Tensor:
    """Cross-entropy with label smoothing: the target is ``(1 - ε)·onehot + ε / C``."""
    import torch.nn.functional as F

    return F.cross_entropy(logits.float(), labels, label_smoothing=smoothing)


# --------------------------------------------------------------------------- data


class PKSampler:
    """Batches of ``p`` identities × ``k`` images each (a batch sampler).

    Each epoch, every identity's images are shuffled and cut into groups of
    ``k`` (the last group filled up by drawing again from that identity's
    images, as is an identity with fewer than ``k``); batches take one group from
    each of ``p`` distinct identities drawn at random among those with groups left,
    until fewer than ``p`` identities have any. So every image is seen about once
    per epoch and every batch has ``k`` images of each of its identities.

    Args:
        labels: Identity label of each sample.
        p: Identities per batch.
        k: Images per identity.
        seed: Base seed; epoch ``e`` uses ``seed + e`` (see :meth:`set_epoch`).

    Raises:
        DataValidationError: If there are fewer than ``p`` identities.
    """

    def __init__(self, labels: Sequence[int], *, p: int, k: int, seed: int = 0) -> None:
        self.p, self.k, self.seed, self.epoch = p, k, seed, 0
        by_id: dict[int, list[int]] = defaultdict(list)
        for i, label in enumerate(labels):
            by_id[int(label)].append(i)
        self.by_id = dict(sorted(by_id.items()))
        if len(self.by_id) < p:
            raise DataValidationError(
                f"PK batches need at least p={p} identities; the training split has "
                f"{len(self.by_id)}",
                field="p",
            )
        self._len = len(self._batches(np.random.default_rng(seed)))

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch, so each epoch draws different (but repeatable) batches."""
        self.epoch = epoch

    def _batches(self, rng: np.random.Generator) -> list[list[int]]:
        groups: dict[int, list[list[int]]] = {}
        for pid, idx in self.by_id.items():
            order = list(rng.permutation(idx))
            short = (-len(order)) % self.k
            if short:
                order += list(rng.choice(idx, size=short, replace=True))
            groups[pid] = [order[j : j + self.k] for j in range(0, len(order), self.k)]
        batches = []
        while True:
            avail = [pid for pid, g in groups.items() if g]
            if len(avail) < self.p:
                break
            chosen = rng.choice(avail, size=self.p, replace=False)
            batches.append([int(i) for pid in chosen for i in groups[int(pid)].pop()])
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._batches(np.random.default_rng(self.seed + self.epoch))

    def __len__(self) -> int:
        return self._len


def reid_transforms(
    input_hw: tuple[int, int],
    *,
    flip_p: float = 0.5,
    pad: int = 10,
    colour_p: float = 0.8,
    brightness: float = 0.3,
    contrast: float = 0.3,
    saturation: float = 0.3,
    hue: float = 0.05,
    gray_p: float = 0.0,
    gain_p: float = 0.0,
    gain: float = 0.15,
    gamma_p: float = 0.0,
    gamma: float = 0.25,
    downscale_p: float = 0.0,
    blur_p: float = 0.0,
    noise_p: float = 0.0,
    jpeg_p: float = 0.0,
    erasing_p: float = 0.0,
) -> A.Compose:
    """The training augmentation, on ``(H, W, 3) uint8`` RGB crops already at ``input_hw``.

    Flip, zero padding by ``pad`` then a random ``input_hw`` crop (a small
    translation), colour jitter, and optionally what another camera would do to the
    picture (white balance, gamma, resolution, blur, noise, JPEG: the training
    cameras are few, so these stand in for the ones never seen), greyscale and
    random erasing. See :class:`ReidAugmentConfig` for the arguments.
    """
    import albumentations as A
    import cv2

    h, w = input_hw
    steps: list[Any] = [A.HorizontalFlip(p=flip_p)]
    if pad:
        steps += [
            A.Pad(padding=pad, fill=0, border_mode=cv2.BORDER_CONSTANT),
            A.RandomCrop(height=h, width=w),
        ]
    if colour_p:
        steps.append(
            A.ColorJitter(
                brightness=brightness, contrast=contrast, saturation=saturation, hue=hue, p=colour_p
            )
        )
    if gain_p:
        steps.append(
            A.MultiplicativeNoise(
                multiplier=(1 - gain, 1 + gain), per_channel=True, elementwise=False, p=gain_p
            )
        )
    if gamma_p:
        steps.append(A.RandomGamma(gamma_limit=(100 * (1 - gamma), 100 * (1 + gamma)), p=gamma_p))
    if gray_p:
        steps.append(A.ToGray(p=gray_p))
    if downscale_p:
        steps.append(A.Downscale(scale_range=(0.3, 0.9), p=downscale_p))
    if blur_p:
        steps.append(A.GaussianBlur(blur_limit=(3, 5), p=blur_p))
    if noise_p:
        steps.append(A.GaussNoise(std_range=(0.005, 0.035), p=noise_p))
    if jpeg_p:
        steps.append(A.ImageCompression(quality_range=(45, 95), p=jpeg_p))
    if erasing_p:
        steps.append(A.Erasing(scale=(0.02, 0.3), ratio=(0.3, 3.3), fill="random", p=erasing_p))
    return A.Compose(steps)


class ReidTrainSet:
    """Training crops as ``(uint8 (H, W, 3) RGB, label)`` pairs, augmented.

    Args:
        paths: Image files.
        labels: Identity label (``0..C-1``) of each.
        input_hw: Size every crop is resized to (before augmentation).
        transform: Augmentation applied after the resize, or ``None``.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        labels: Sequence[int],
        *,
        input_hw: tuple[int, int],
        transform: A.Compose | None,
    ) -> None:
        self.paths, self.labels = list(paths), list(labels)
        self.input_hw, self.transform = input_hw, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[NDArray[np.uint8], int]:
        from cv.image import read_image
        from cv.models.reid import resize_crop

        img = resize_crop(read_image(self.paths[i]), self.input_hw)
        if self.transform is not None:
            img = self.transform(image=img)["image"]
        return np.ascontiguousarray(img), self.labels[i]


def _collate(items: Sequence[tuple[NDArray[np.uint8], int]]) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    images = torch.from_numpy(np.stack([it[0] for it in items]))
    labels = torch.tensor([it[1] for it in items], dtype=torch.long)
    return images, labels


def _seed_worker(worker_id: int) -> None:
    """Seeds numpy and the albumentations pipeline of a data-loader worker from torch."""
    import torch

    # Not cv2.setNumThreads here: it waits forever on the thread pool inherited
    # through fork.
    seed = torch.initial_seed() % (2**32)
    np.random.seed(seed)
    info = torch.utils.data.get_worker_info()
    transform = getattr(info.dataset, "transform", None) if info is not None else None
    if transform is not None:
        transform.set_random_seed(seed)


@dataclass(slots=True)
class ReidData:
    """The resolved data of a run.

    Attributes:
        dataset: The dataset read.
        train: Training samples (junk, distractors and held-out ids removed).
        labels: Label (``0..C-1``) of each training sample.
        classes: Training identity of each label, as a string (``record.classes``).
        val: The validation dataset (query / gallery), or ``None``.
        val_name: ``holdout`` or ``test``.
        description: Where the data came from.
    """

    dataset: ReidDataset
    train: list[ReidSample]
    labels: list[int]
    classes: list[str]
    val: ReidDataset | None
    val_name: str
    description: str


def resolve_reid_data(config: ReidTrainConfig) -> ReidData:
    """Reads (or first generates) the dataset and splits off the validation identities.

    Raises:
        NotFoundError: If the dataset folder does not exist.
        DataFormatError: If it is not a re-ID layout the readers know.
        DataValidationError: If too few identities are left to train on.
    """
    from cv.datasets.reid import ReidDataset, read_reid

    if config.synth is not None:
        root = _synth_dataset(config)
        desc = f"synthetic {config.synth.key()} {config.synth.model_dump_json()}"
    else:
        assert config.data is not None
        root = Path(config.data)
        if not root.exists():
            raise NotFoundError("dataset does not exist", path=root, field="data")
        desc = str(root.absolute())
    ds = read_reid(root)
    train = [s for s in ds.train if ds.is_identity(s.pid)]
    pids = ds.train_pids()
    val: ReidDataset | None = None
    val_name = "test"
    if config.val_identities:
        if config.val_identities > len(pids) - config.p:
            raise DataValidationError(
                f"val_identities={config.val_identities} leaves fewer than p={config.p} of "
                f"the {len(pids)} training identities to train on",
                field="val_identities",
            )
        # Evenly spread over the sorted ids: repeatable, and no block of similar ids.
        pick = np.linspace(0, len(pids) - 1, config.val_identities).round().astype(int)
        held = {pids[i] for i in pick}
        query, gallery, seen = [], [], set()
        for s in train:
            if s.pid not in held:
                continue
            if (s.pid, s.camid) in seen:
                gallery.append(s)
            else:
                seen.add((s.pid, s.camid))
                query.append(s)
        val = ReidDataset(
            name=f"{ds.name}-holdout",
            root=ds.root,
            train=[],
            query=query,
            gallery=gallery,
            distractor_pid=ds.distractor_pid,
        )
        val_name = "holdout"
        train = [s for s in train if s.pid not in held]
        pids = [p for p in pids if p not in held]
    elif ds.query and ds.gallery:
        val = ds
    if len(pids) < config.p:
        raise DataValidationError(
            f"the training split has {len(pids)} identities; PK batches need p={config.p}",
            path=root,
            field="p",
        )
    index = {pid: i for i, pid in enumerate(pids)}
    return ReidData(
        dataset=ds,
        train=train,
        labels=[index[s.pid] for s in train],
        classes=[str(p) for p in pids],
        val=val,
        val_name=val_name,
        description=desc,
    )


def _synth_dataset(config: ReidTrainConfig) -> Path:
    from cv.datasets.cctv import generate_reid_dataset

    spec = config.synth
    assert spec is not None
    folder = config.synth_cache / spec.key()
    if (folder / "manifest.json").is_file():
        log.info("reusing the synthetic re-ID set in %s", folder)
        return folder
    # Generated beside the cache entry and renamed, so an interrupted generation
    # is never mistaken for a finished set.
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("generating the synthetic re-ID set %s into %s", spec.key(), folder)
    generate_reid_dataset(
        tmp,
        identities=spec.identities,
        train_identities=spec.train_identities,
        cameras=spec.cameras,
        train_cameras=spec.train_cameras,
        images_per_camera=spec.images_per_camera,
        derived=spec.derived,
        source=spec.source,
        size=spec.size,
        seed=spec.seed,
        workers=spec.workers,
        progress=None,
    )
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


# --------------------------------------------------------------------------- hooks


METRIC_COLUMNS: tuple[str, ...] = (
    "epoch",
    "time_s",
    "lr",
    "loss",
    "id_loss",
    "triplet_loss",
    "train_acc",
    "rank1",
    "rank5",
    "mAP",
    "mINP",
)
"""Columns of ``metrics.csv``, one row per epoch (``epoch`` counts from 1; the
validation columns are empty on epochs without validation)."""


@dataclass(frozen=True, slots=True)
class ReidRunInfo:
    """What a hook knows about the run.

    Attributes:
        run_dir: The run folder.
        config: The resolved configuration.
        classes: Training identities in label order.
        dataset: A description of the dataset.
        val_name: What validation runs on (``holdout``, ``test``; ``none``).
        device: The torch device trained on.
        command: The command line that started the run, when known.
        commit: The code's commit when the run started.
    """

    run_dir: Path
    config: ReidTrainConfig
    classes: tuple[str, ...]
    dataset: str
    val_name: str
    device: str
    command: str | None
    commit: str | None = None


@dataclass(frozen=True, slots=True)
class ReidEpochRecord:
    """One epoch's figures.

    Attributes:
        epoch: 1-based epoch number.
        values: Column name (:data:`METRIC_COLUMNS`) -> value.
        is_best: Whether this epoch is the best so far (validation mAP; without
            validation, every epoch is).
        elapsed_s: Training seconds so far, over all sessions of a resumed run.
    """

    epoch: int
    values: dict[str, float]
    is_best: bool
    elapsed_s: float


class ReidTrainHook:
    """Base of training hooks; override the events needed."""

    def on_train_start(self, run: ReidRunInfo) -> None:
        """Called once, after the data and the model are set up."""

    def on_epoch_end(
        self, run: ReidRunInfo, record: ReidEpochRecord, model: torch.nn.Module
    ) -> None:
        """Called after each epoch (and its validation) with the model being trained."""

    def on_train_end(self, run: ReidRunInfo) -> None:
        """Called once when training has finished."""


class ReidMetricsWriter(ReidTrainHook):
    """Appends each epoch to ``metrics.csv`` and redraws ``metrics.png``."""

    def on_epoch_end(
        self, run: ReidRunInfo, record: ReidEpochRecord, model: torch.nn.Module
    ) -> None:
        """Appends the row (header first when the file is new) and replots."""
        path = run.run_dir / "metrics.csv"
        new = not path.exists()
        with path.open("a", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
            if new:
                w.writeheader()
            w.writerow({k: _fmt(record.values.get(k)) for k in METRIC_COLUMNS})
        plot_reid_metrics(path, run.run_dir / "metrics.png")


def _fmt(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.6g}"


class ReidModelDirWriter(ReidTrainHook):
    """Writes ``last/`` every epoch and ``best/`` when an epoch is the best so far."""

    def on_epoch_end(
        self, run: ReidRunInfo, record: ReidEpochRecord, model: torch.nn.Module
    ) -> None:
        """Saves the weights with their record."""
        write_reid_model_dir(run, record, model, run.run_dir / "last")
        if record.is_best:
            write_reid_model_dir(run, record, model, run.run_dir / "best")


def write_reid_model_dir(
    run: ReidRunInfo, record: ReidEpochRecord, model: torch.nn.Module, out_dir: Path
) -> Path:
    """Writes one model directory (``model.safetensors`` + ``model.json``) with the
    epoch's validation figures and the run's recipe."""
    from cv.models.reid import make_reid_record, save_embedder

    v = record.values
    metrics: dict[str, Any] = {"epoch": record.epoch, "split": run.val_name}
    for key in ("rank1", "rank5", "mAP", "mINP"):
        if v.get(key) is not None and not math.isnan(v[key]):
            metrics[key] = round(float(v[key]), 4)
    rec = make_reid_record(
        name=run.config.name,
        architecture=run.config.model,
        classes=run.classes,
        input_hw=run.config.input_hw,
        feature_dim=run.config.feature_dim,
        recipe={"config": run.config.model_dump(mode="json"), "command": run.command},
        training={
            "time_s": round(record.elapsed_s, 1),
            "epochs_done": record.epoch,
            "device": run.device,
            "seed": run.config.seed,
            "dataset": run.dataset,
            "commit": run.commit,
        },
        metrics=metrics,
    )
    save_embedder(_unwrap(model), out_dir, record=rec)
    return out_dir


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "_orig_mod", model)


def plot_reid_metrics(csv_path: Path, png_path: Path) -> Path:
    """Draws losses, training accuracy and validation rank-1 / mAP per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cv.training.xray import read_metrics

    rows = read_metrics(csv_path)
    ep = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for key in ("loss", "id_loss", "triplet_loss"):
        axes[0].plot(ep, [r.get(key, np.nan) for r in rows], label=key, marker=".")
    axes[0].set_title("training losses")
    axes[1].plot(ep, [r.get("train_acc", np.nan) for r in rows], label="train_acc", marker=".")
    axes[1].set_title("training ID accuracy")
    for key in ("rank1", "rank5", "mAP", "mINP"):
        pts = [(r["epoch"], r[key]) for r in rows if key in r]
        if pts:
            axes[2].plot(*zip(*pts, strict=True), label=key, marker="o")
    axes[2].set_title("validation")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # validation has no points before its first epoch
            ax.legend(fontsize=7)
    axes[1].set_ylim(0, 1)
    axes[2].set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


# --------------------------------------------------------------------------- core


@dataclass(slots=True)
class ReidTrainResult:
    """What a training run produced.

    Attributes:
        run_dir: The run folder.
        best_dir: Model directory of the best epoch.
        last_dir: Model directory of the last epoch.
        history: Rows of ``metrics.csv``.
        seconds: Wall time of this call.
        val_name: What validation ran on (``holdout``, ``test``, ``none``).
    """

    run_dir: Path
    best_dir: Path
    last_dir: Path
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    val_name: str = "none"

    def best(self) -> dict[str, float]:
        """The validated row with the highest mAP (else the last row; empty when none ran)."""
        validated = [r for r in self.history if "mAP" in r]
        if validated:
            return max(validated, key=lambda r: r["mAP"])
        return self.history[-1] if self.history else {}


def resolve_device(device: str) -> str:
    """A torch device: ``auto`` is ``cuda`` when a GPU is visible, else ``cpu``.

    Raises:
        ConfigError: If a GPU is asked for and none is there.
    """
    import torch

    d = device.strip().lower()
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if d.isdigit():
        d = f"cuda:{d}"
    if d == "cpu":
        return d
    if not d.startswith("cuda"):
        raise ConfigError(
            f"device must be auto, cpu, cuda or cuda:N, got {device!r}", field="device"
        )
    if not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but no GPU is available", field="device")
    return d


def lr_at(
    step: int, *, total: int, warmup: int, base: float, factor: float, min_ratio: float
) -> float:
    """Learning rate at optimizer step ``step`` (0-based): linear warm-up from
    ``base × factor`` over ``warmup`` steps, then cosine decay to ``base × min_ratio``."""
    if step < warmup:
        return base * (factor + (1.0 - factor) * step / warmup)
    span = max(1, total - warmup)
    t = min(1.0, (step - warmup) / span)
    return base * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t)))


def validate_model(
    model: torch.nn.Module,
    run: ReidRunInfo,
    dataset: ReidDataset,
    *,
    batch: int = 64,
) -> dict[str, float]:
    """Rank-1/5, mAP and mINP of the model on a query / gallery dataset.

    The model is wrapped in a :class:`~cv.models.reid.TorchEmbedder` (eval mode,
    the same preprocessing as serving) and evaluated by
    :func:`cv.evaluation.reid.evaluate_embedder`.
    """
    from cv.evaluation.reid import evaluate_embedder
    from cv.models.reid import TorchEmbedder, make_reid_record

    rec = make_reid_record(
        name=run.config.name,
        architecture=run.config.model,
        classes=run.classes,
        input_hw=run.config.input_hw,
    )
    device = next(model.parameters()).device
    embedder = TorchEmbedder(_unwrap(model), rec, device=str(device))
    report = evaluate_embedder(embedder, dataset, batch=batch, progress=False)
    model.train()
    return _figures(report)


def _figures(report: Any) -> dict[str, float]:
    """rank1, rank5, mAP, mINP from the evaluation's report."""
    m = report.metrics
    return {
        "rank1": float(m.rank(1)),
        "rank5": float(m.rank(5)),
        "mAP": float(m.mAP),
        "mINP": float(m.mINP),
    }


def _check_resume_classes(run_dir: Path, classes: Sequence[str]) -> None:
    from cv.models.weights import read_record

    last = run_dir / "last"
    if not (last / "model.json").is_file():
        return
    rec = read_record(last, verify=False)
    if list(rec.classes) != list(classes):
        raise ConfigError(
            f"the dataset's {len(classes)} training identities do not match the "
            f"{len(rec.classes)} of the model in {last}; resume with the run's own dataset",
            path=last / "model.json",
            field="classes",
        )


def _train_epoch(
    model: torch.nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    opt: torch.optim.Optimizer,
    *,
    config: ReidTrainConfig,
    epoch: int,
    steps: int,
    schedule: Callable[[int], float],
    device: str,
    use_amp: bool,
    progress: bool | None,
) -> dict[str, float]:
    """One pass over the PK batches; returns the epoch's mean losses, accuracy and lr.

    Raises:
        DataValidationError: If the loss stops being finite (naming the step).
    """
    import torch

    from cv.log import progress as progress_bar
    from cv.models.reid import IMAGENET_MEAN, IMAGENET_STD

    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1) * 255
    model.train()
    sums: dict[str, float] = defaultdict(float)
    n_seen = correct = 0
    lr = schedule(epoch * steps)
    with progress_bar(disable=None if progress is None else not progress) as bar:
        task = bar.add_task(f"epoch {epoch + 1}/{config.epochs}", total=steps)
        for i, (images, labels) in enumerate(loader):
            lr = schedule(epoch * steps + i)
            for g in opt.param_groups:
                g["lr"] = lr
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            # NHWC uint8 -> NCHW float, normalised as the embedders do; the permuted
            # view is already in channels-last order.
            x = (images.permute(0, 3, 1, 2).float() - mean) / std
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
                logits, feats = model(x)
            l_id = id_loss(logits, labels, smoothing=config.label_smoothing)
            l_tri = triplet_loss(feats, labels, margin=config.triplet_margin)
            loss = config.id_weight * l_id + config.triplet_weight * l_tri
            if not torch.isfinite(loss):
                raise DataValidationError(
                    f"the loss became {float(loss.detach())} at epoch {epoch + 1}, "
                    f"step {i + 1}; lower the learning rate",
                    field="lr",
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n = len(labels)
            n_seen += n
            sums["loss"] += float(loss.detach()) * n
            sums["id_loss"] += float(l_id.detach()) * n
            sums["triplet_loss"] += float(l_tri.detach()) * n
            correct += int((logits.detach().argmax(1) == labels).sum())
            bar.update(task, advance=1)
    return {
        "epoch": epoch + 1,
        "lr": lr,
        **{k: v / max(1, n_seen) for k, v in sums.items()},
        "train_acc": correct / max(1, n_seen),
    }


def train_reid(
    config: ReidTrainConfig,
    *,
    resume: bool = False,
    command: str | None = None,
    hooks: Sequence[ReidTrainHook] = (),
    progress: bool | None = None,
) -> ReidTrainResult:
    """Trains a re-ID embedder as ``config`` says, into ``config.out / config.name``.

    Args:
        config: The experiment.
        resume: Continue the run in the run folder from its last epoch
            (``weights/resume.pt``); more ``epochs`` than were trained extend it.
        command: The command line, recorded in each ``model.json``.
        hooks: More hooks, called after the built-in ones.
        progress: Show a progress bar per epoch (default: when stderr is a terminal).

    Returns:
        The run folder, model directories and metrics history.

    Raises:
        NotFoundError: If the dataset or (resume) the checkpoint does not exist.
        ConfigError: If the model is not a registered re-ID builder, the device is not
            there, or (resume) the dataset's identities differ from the run's.
        DataValidationError: If the dataset has too few identities for the batches.
    """
    import torch

    from cv.models.registry import build_model
    from cv.models.reid import REID_MODELS, export_reid_onnx
    from cv.training.config import dump_config
    from cv.training.xray import git_commit, read_metrics

    t0 = time.time()
    if config.model not in REID_MODELS:
        raise ConfigError(
            f"{config.model!r} is not a re-ID model; use one of {', '.join(REID_MODELS)}",
            field="model",
        )
    run_dir = config.run_dir
    ckpt_path = run_dir / "weights" / "resume.pt"
    if resume and not ckpt_path.is_file():
        raise NotFoundError("no checkpoint to resume from in the run folder", path=ckpt_path)
    device = resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_log(run_dir / "train.log"):
        data = resolve_reid_data(config)
        if resume:
            _check_resume_classes(run_dir, data.classes)
        else:
            for stale in ("metrics.csv", "metrics.png"):
                (run_dir / stale).unlink(missing_ok=True)
            shutil.rmtree(run_dir / "best", ignore_errors=True)
        dump_config(config, run_dir / "config.yaml")  # type: ignore[arg-type]
        do_val = config.val_every > 0 and data.val is not None
        run = ReidRunInfo(
            run_dir=run_dir,
            config=config,
            classes=tuple(data.classes),
            dataset=data.description,
            val_name=data.val_name if do_val else "none",
            device=device,
            command=command,
            commit=git_commit(),
        )
        all_hooks = [ReidMetricsWriter(), ReidModelDirWriter(), *hooks]

        kwargs = {} if config.feature_dim is None else {"feature_dim": config.feature_dim}
        model = build_model(config.model, num_classes=len(data.classes), seed=config.seed, **kwargs)
        model = model.to(device, memory_format=torch.channels_last)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)

        start_epoch, best_map, elapsed_before = 0, -1.0, 0.0
        if resume:
            ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            start_epoch = int(ckpt["epoch"])
            best_map = float(ckpt["best_map"])
            elapsed_before = float(ckpt.get("elapsed_s", 0.0))
            log.info("resuming %s after epoch %d", run_dir, start_epoch)

        transform = reid_transforms(config.input_hw, **config.augment.model_dump())
        train_set = ReidTrainSet(
            [s.path for s in data.train],
            data.labels,
            input_hw=config.input_hw,
            transform=transform,
        )
        sampler = PKSampler(data.labels, p=config.p, k=config.k, seed=config.seed)
        steps_per_epoch = len(sampler)
        schedule = functools.partial(
            lr_at,
            total=steps_per_epoch * config.epochs,
            warmup=round(config.warmup_epochs * steps_per_epoch),
            base=config.lr,
            factor=config.warmup_factor,
            min_ratio=config.min_lr_ratio,
        )
        use_amp = config.amp and device.startswith("cuda") and torch.cuda.is_bf16_supported()
        log.info(
            "training %s on %d images of %d identities (%s), %d steps of %d×%d per epoch, on %s",
            config.model,
            len(train_set),
            len(data.classes),
            data.description,
            steps_per_epoch,
            config.p,
            config.k,
            device,
        )
        for h in all_hooks:
            h.on_train_start(run)
        t_train = time.time()
        for epoch in range(start_epoch, config.epochs):
            t_epoch = time.time()
            torch.manual_seed(config.seed * 1000 + epoch)
            sampler.set_epoch(epoch)
            transform.set_random_seed(config.seed * 1000 + epoch)
            loader = torch.utils.data.DataLoader(
                train_set,
                batch_sampler=sampler,
                num_workers=config.workers,
                collate_fn=_collate,
                worker_init_fn=_seed_worker,
                generator=torch.Generator().manual_seed(config.seed * 1000 + epoch),
                pin_memory=device.startswith("cuda"),
            )
            values = _train_epoch(
                model,
                loader,
                opt,
                config=config,
                epoch=epoch,
                steps=steps_per_epoch,
                schedule=schedule,
                device=device,
                use_amp=use_amp,
                progress=progress,
            )
            last_epoch = epoch + 1 == config.epochs
            if do_val and ((epoch + 1) % config.val_every == 0 or last_epoch):
                assert data.val is not None
                values.update(validate_model(model, run, data.val))
            values["time_s"] = round(time.time() - t_epoch, 2)
            is_best = "mAP" not in values and not do_val
            if "mAP" in values and values["mAP"] > best_map:
                best_map, is_best = values["mAP"], True
            elapsed = elapsed_before + time.time() - t_train
            record = ReidEpochRecord(
                epoch=epoch + 1, values=values, is_best=is_best, elapsed_s=elapsed
            )
            log.info(
                "epoch %d/%d: loss %.3f (id %.3f, triplet %.3f), acc %.3f, lr %.2g%s, %.0f s",
                epoch + 1,
                config.epochs,
                values["loss"],
                values["id_loss"],
                values["triplet_loss"],
                values["train_acc"],
                values["lr"],
                ""
                if "mAP" not in values
                else f"; {run.val_name} rank-1 {values['rank1']:.3f} mAP {values['mAP']:.3f}",
                values["time_s"],
            )
            for h in all_hooks:
                h.on_epoch_end(run, record, model)
            ckpt_path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(
                {
                    "model": _unwrap(model).state_dict(),
                    "optimizer": opt.state_dict(),
                    "epoch": epoch + 1,
                    "best_map": best_map,
                    "elapsed_s": elapsed,
                },
                ckpt_path,
            )
        if config.export and (run_dir / "best" / "model.json").is_file():
            export_reid_onnx(run_dir / "best")
        for h in all_hooks:
            h.on_train_end(run)
    return ReidTrainResult(
        run_dir=run_dir,
        best_dir=run_dir / "best",
        last_dir=run_dir / "last",
        history=read_metrics(run_dir / "metrics.csv"),
        seconds=time.time() - t0,
        val_name=run.val_name,
    )
