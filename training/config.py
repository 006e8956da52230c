"""The experiment file of an X-ray detector training: one YAML, one typed model.

A run is described by one YAML file validated into :class:`XrayTrainConfig`
(unknown keys are errors). The data comes either from a dataset the toolkit wrote
(``data``: a YOLO ``data.yaml`` / folder, or COCO), or from a synthetic spec
(``synth``) that is generated once into a cache folder keyed by the spec's hash.
Relative paths are relative to the working directory, as on the command line.

Errors name the file, the YAML line and the field (``recipe.yaml:7: epochs: ...``).
"""

from __future__ import annotations

import hashlib
import json
from os import PathLike
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cv.errors import ConfigError, NotFoundError

SYNTH_CACHE = Path("data/cache/synth")
"""Default folder of generated synthetic sets, one sub-folder per spec hash."""


class SynthSpec(BaseModel):
    """A synthetic training set (:func:`cv.datasets.synth.generate`'s options).

    Attributes:
        images: Number of scans (all splits).
        size: Image side in pixels.
        profiles: Scanner profile names or YAML paths; empty means every built-in one.
        seed: Generator seed.
        parcels: Share of express parcels.
        clean: Share of scans with nothing to find.
        threats: Objects to find per non-clean scan, ``[lo, hi]``.
        splits: ``[train, val, test]`` ratios.
        classes: Classes to place; empty means every class the generator knows.
        workers: Worker processes (0: one per core); does not change the output.
    """

    model_config = ConfigDict(extra="forbid")

    images: int = Field(default=2000, ge=1)
    size: int = Field(default=640, ge=64)
    profiles: list[str] = Field(default_factory=list)
    seed: int = 0
    parcels: float = Field(default=0.3, ge=0, le=1)
    clean: float = Field(default=0.2, ge=0, le=1)
    threats: tuple[int, int] = (1, 3)
    splits: tuple[float, float, float] = (0.8, 0.1, 0.1)
    classes: list[str] = Field(default_factory=list)
    workers: int = Field(default=0, ge=0)

    def key(self) -> str:
        """A short hash of everything that changes the generated images."""
        doc = self.model_dump(mode="json", exclude={"workers"})
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]


class AugmentConfig(BaseModel):
    """Augmentation settings (see :mod:`cv.training.augment`).

    The first group are our albumentations transforms; ``mosaic``, ``scale`` and
    ``translate`` are ultralytics' own geometric steps, which run before ours.

    Attributes:
        flip_p: Probability of a horizontal flip, and separately a vertical one.
        rot90_p: Probability of a rotation by a multiple of 90°.
        colour_p: Probability of each colour jitter.
        hue_shift: Largest hue shift (albumentations' ``hue_shift_limit``).
        saturation: Largest saturation shift.
        brightness: Largest brightness change (fraction).
        contrast: Largest contrast change (fraction).
        noise_p: Probability of Gaussian detector noise.
        noise_std: Range of the noise standard deviation (fraction of 255).
        blur_p: Probability of a slight blur.
        tip_library: Threat library folder for on-the-fly threat image projection.
        tip_p: Probability of projecting threats into a training image.
        tip_max: Most threats projected into one image.
        tip_scale: Cut-out resize factor; by default the training size over the
            long side of the training images.
        mosaic: Probability of ultralytics' 4-image mosaic.
        scale: ultralytics' random scale gain (± fraction).
        translate: ultralytics' random translation (± fraction).
    """

    model_config = ConfigDict(extra="forbid")

    flip_p: float = Field(default=0.5, ge=0, le=1)
    rot90_p: float = Field(default=0.5, ge=0, le=1)
    colour_p: float = Field(default=0.5, ge=0, le=1)
    hue_shift: float = Field(default=12.0, ge=0, le=90)
    saturation: float = Field(default=25.0, ge=0, le=100)
    brightness: float = Field(default=0.15, ge=0, le=1)
    contrast: float = Field(default=0.15, ge=0, le=1)
    noise_p: float = Field(default=0.3, ge=0, le=1)
    noise_std: tuple[float, float] = (0.01, 0.04)
    blur_p: float = Field(default=0.1, ge=0, le=1)
    tip_library: Path | None = None
    tip_p: float = Field(default=0.3, ge=0, le=1)
    tip_max: int = Field(default=1, ge=1)
    tip_scale: float | None = Field(default=None, gt=0)
    mosaic: float = Field(default=1.0, ge=0, le=1)
    scale: float = Field(default=0.5, ge=0, lt=1)
    translate: float = Field(default=0.1, ge=0, le=0.5)


class XrayTrainConfig(BaseModel):
    """One X-ray detector training run.

    Attributes:
        model: Registered model name (``customs-vision`` lists them; ``yolo11n``...).
        data: A dataset the toolkit reads: a YOLO ``data.yaml`` or its folder, or
            COCO; anything other than YOLO is converted into the run folder.
        synth: A synthetic set to generate (once, cached) and train on.
        synth_cache: Folder of cached synthetic sets.
        imgsz: Square network input side in pixels (a multiple of 32).
        epochs: Epochs to train.
        batch: Images per batch (over all GPUs).
        workers: Data-loader worker processes per GPU (ultralytics uses 0 on CPU).
        cache: Keep the training images decoded: ``ram`` (resized to ``imgsz``, in
            memory; saves a PNG decode per image per epoch) or ``disk`` (``.npy``
            files beside the images, full size); ``none`` reads every image each time.
        optimizer: ultralytics optimizer name (``auto``, ``SGD``, ``AdamW``...).
        lr0: Initial learning rate (ignored by ``optimizer: auto``, which picks its own).
        nbs: Nominal batch size: gradients are accumulated over ``nbs / batch``
            batches before each optimizer step. ultralytics' 64 suits long GPU runs;
            short CPU runs from scratch learn far faster with ``nbs = batch``
            (one step per batch).
        warmup_epochs: Epochs of learning-rate warm-up.
        cos_lr: Cosine learning-rate decay instead of linear.
        seed: Seed of everything random in training.
        device: ``auto`` (GPU 0 when present, else CPU), ``cpu``, ``0`` or ``0,1``
            (several GPUs: ultralytics DDP).
        patience: Epochs without improvement before stopping early.
        close_mosaic: Last epochs trained without mosaic.
        amp: bfloat16 mixed precision on GPUs that support it and on CPUs with
            native bfloat16 (AVX-512 BF16 or AMX); full precision elsewhere.
        augment: Augmentation settings.
        out: Folder of runs.
        name: Run name; the run folder is ``out/name``.
    """

    model_config = ConfigDict(extra="forbid")

    model: str = "yolo11n"
    data: Path | None = None
    synth: SynthSpec | None = None
    synth_cache: Path = SYNTH_CACHE
    imgsz: int = Field(default=640, ge=32)
    epochs: int = Field(default=100, ge=1)
    batch: int = Field(default=16, ge=1)
    workers: int = Field(default=2, ge=0)
    cache: Literal["none", "ram", "disk"] = "none"
    optimizer: str = "auto"
    lr0: float = Field(default=0.01, gt=0)
    nbs: int = Field(default=64, ge=1)
    warmup_epochs: float = Field(default=3.0, ge=0)
    cos_lr: bool = False
    seed: int = 0
    device: str = "auto"
    patience: int = Field(default=50, ge=0)
    close_mosaic: int = Field(default=10, ge=0)
    amp: bool = True
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    out: Path = Path("runs/train")
    name: str = Field(default="xray", min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> XrayTrainConfig:
        if (self.data is None) == (self.synth is None):
            raise ValueError("give exactly one of 'data' (a dataset path) or 'synth' (a spec)")
        if self.imgsz % 32:
            raise ValueError(f"imgsz must be a multiple of 32, got {self.imgsz}")
        return self

    @property
    def run_dir(self) -> Path:
        """The run folder, ``out/name``."""
        return self.out / self.name


def node_line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or of its deepest existing parent)."""
    line = None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(key):
                    line = k.start_mark.line + 1
                    node = v
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


ConfigT = TypeVar("ConfigT", bound=BaseModel)


def validate_config(
    doc: dict[str, Any],
    *,
    path: str | PathLike[str] | None = None,
    root: yaml.Node | None = None,
    model: type[ConfigT] = XrayTrainConfig,  # type: ignore[assignment]
) -> ConfigT:
    """Validates a mapping into :class:`XrayTrainConfig` (or another experiment model).

    Args:
        doc: The settings.
        path: The file they came from, for error messages.
        root: The file's YAML node tree, for line numbers in error messages.
        model: The config class: ``XrayTrainConfig``, a detector recipe built on
            it (``cv.training.person.PersonTrainConfig``) or the re-ID trainer's
            ``cv.training.reid.ReidTrainConfig``.

    Raises:
        ConfigError: Naming the file, line and field of the first error.
    """
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        field = ".".join(str(x) for x in loc) or None
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif "input" in err and err["type"] != "missing" and not isinstance(err["input"], dict):
            msg = f"{msg} (got {err['input']!r})"
        raise ConfigError(msg, path=path, line=node_line(root, loc), field=field) from None


def load_config(
    path: str | PathLike[str],
    *,
    overrides: dict[str, Any] | None = None,
    model: type[ConfigT] = XrayTrainConfig,  # type: ignore[assignment]
) -> ConfigT:
    """Reads an experiment YAML file, applies overrides, and validates it.

    Args:
        path: The YAML file.
        overrides: Values that replace the file's (the command line's options);
            nested with dotted keys (``augment.tip_p``, ``synth.images``).
        model: The config class (see :func:`validate_config`).

    Raises:
        NotFoundError: If the file does not exist.
        ConfigError: If it is not valid YAML or a field is invalid (file, line and
            field are named).
    """
    p = Path(path)
    if not p.is_file():
        raise NotFoundError("experiment config file does not exist", path=p)
    text = p.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"not valid YAML ({getattr(exc, 'problem', exc)})",
            path=p,
            line=None if mark is None else mark.line + 1,
        ) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError("an experiment file must be a mapping of fields", path=p, line=1)
    return validate_config(apply_overrides(doc, overrides or {}), path=p, root=root, model=model)


def apply_overrides(doc: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``doc`` with dotted-key ``overrides`` set (``None`` values are skipped).

    Setting ``data`` drops ``synth`` and the other way round, so a command-line
    source replaces the file's.
    """
    out = json.loads(json.dumps(doc, default=str))
    for key, value in overrides.items():
        if value is None:
            continue
        parts = key.split(".")
        if parts[0] == "data":
            out.pop("synth", None)
        if parts[0] == "synth" and "data" in out:
            out.pop("data")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = str(value) if isinstance(value, Path) else value
    return out


def dump_config(config: XrayTrainConfig, path: str | PathLike[str]) -> Path:
    """Writes the resolved config as YAML (every field, defaults included)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    doc = config.model_dump(mode="json")
    p.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return p
