"""Weights travel with their metadata: the model directory and its record.

A model directory holds::

    model.json          the WeightsRecord below (always)
    model.safetensors   the PyTorch state dict, for research and fine-tuning
    model.onnx          the serving graph (dynamic batch axis)
    MODEL_CARD.md       how it was made and how well it does

``model.json`` names each file with its sha256, so a truncated or swapped file is
caught before anything runs it. State dicts are loaded strictly into a model built
by its registered builder; no pickled module is ever loaded.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cv.errors import ConfigError, DataFormatError, NotFoundError

if TYPE_CHECKING:
    import torch

RECORD_FILE = "model.json"


class Preprocessing(BaseModel):
    """How an image becomes the network's input tensor.

    The input is ``(N, 3, S, S) float32`` in ``[0, 1]``, RGB, made by resizing the
    longer side to ``S`` with the aspect kept and padding with ``pad_value``
    (letterbox), unless ``letterbox`` is false (plain resize).
    """

    model_config = ConfigDict(extra="forbid")

    color: Literal["RGB", "BGR"] = "RGB"
    letterbox: bool = True
    pad_value: int = Field(default=114, ge=0, le=255)
    scale: float = 1 / 255
    layout: Literal["NCHW"] = "NCHW"
    # Per-channel normalisation after scaling, ``(x * scale - mean) / std``, in
    # ``color`` order; ``None`` means none (the YOLO detectors).
    mean: list[float] | None = None
    std: list[float] | None = None


class WeightsRecord(BaseModel):
    """Everything needed to run, trust and reproduce a set of weights.

    Attributes:
        name: Human name of this model (``xray-yolo11n-synth``).
        architecture: Registered builder name (``yolo11n``).
        task: What the model does.
        classes: Class names; output class ``i`` is ``classes[i]`` (for a re-ID
            embedder: the training identities its classifier head had).
        input_size: Square network input side ``S`` in pixels (for a non-square
            input, its height).
        input_hw: ``(height, width)`` of a non-square input (re-ID: ``(256, 128)``).
        preprocessing: See :class:`Preprocessing`.
        thresholds: Per-class score thresholds chosen at an operating point
            (used by the server to raise alerts).
        metrics: Evaluation figures (``AP50``, ``AP``, ``DR@FAR5``...).
        recipe: Training configuration and command, seed included.
        training: Facts of the run (time, device, commit, dataset).
        files: File role (``state_dict``, ``onnx``...) -> file name in the directory.
        sha256: File name -> sha256 hex digest.
        created: When the record was written (UTC, ISO 8601).
        version: Increases with each new set of weights under the same name.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    architecture: str
    task: Literal["detect", "reid-embed"] = "detect"
    classes: list[str]
    input_size: int = Field(gt=0)
    # (height, width) when the input is not square: re-ID crops are 256 x 128.
    # ``None`` means ``input_size`` by ``input_size``.
    input_hw: tuple[int, int] | None = None
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)
    thresholds: dict[str, float] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    recipe: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)
    sha256: dict[str, str] = Field(default_factory=dict)
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    version: int = Field(default=1, ge=1)


def sha256_of(path: str | PathLike[str]) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_record(record: WeightsRecord, model_dir: str | PathLike[str]) -> Path:
    """Writes ``model.json``, first hashing every file the record names.

    Raises:
        NotFoundError: If a file named in ``record.files`` is not in ``model_dir``.
    """
    d = Path(model_dir)
    d.mkdir(parents=True, exist_ok=True)
    digests = {}
    for role, name in record.files.items():
        f = d / name
        if not f.is_file():
            raise NotFoundError(f"{role} file named by the record is missing", path=f)
        digests[name] = sha256_of(f)
    record.sha256 = digests
    path = d / RECORD_FILE
    path.write_text(json.dumps(record.model_dump(mode="json"), indent=2) + "\n")
    return path


def read_record(model_dir: str | PathLike[str], *, verify: bool = True) -> WeightsRecord:
    """Reads and validates ``model.json`` of a model directory.

    Args:
        model_dir: The model directory (or its ``model.json``).
        verify: Check every named file against its sha256.

    Raises:
        NotFoundError: If the directory, the record or a named file is missing.
        ConfigError: If the record is not valid (the message names the field).
        DataFormatError: If a file's sha256 does not match (corrupt weights).
    """
    d = Path(model_dir)
    path = d if d.suffix == ".json" else d / RECORD_FILE
    d = path.parent
    if not path.is_file():
        raise NotFoundError("no model record (model.json) in the model directory", path=d)
    try:
        record = WeightsRecord.model_validate_json(path.read_text())
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ConfigError(err["msg"], path=path, field=where) from None
    if verify:
        for role, name in record.files.items():
            f = d / name
            if not f.is_file():
                raise NotFoundError(f"{role} file named by model.json is missing", path=f)
            want = record.sha256.get(name)
            if want is None:
                raise ConfigError(f"no sha256 for {name}", path=path, field="sha256")
            if sha256_of(f) != want:
                raise DataFormatError(
                    "file does not match the sha256 in model.json (corrupt or replaced weights)",
                    path=f,
                )
    return record


def save_state_dict(module: torch.nn.Module, path: str | PathLike[str]) -> Path:
    """Saves a module's state dict as safetensors (tensors made contiguous)."""
    from safetensors.torch import save_file

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    save_file(state, str(p))
    return p


def load_state_dict(module: torch.nn.Module, path: str | PathLike[str]) -> torch.nn.Module:
    """Loads safetensors weights into ``module`` strictly.

    Raises:
        DataFormatError: If the file is not safetensors, or its tensors do not fit
            the module (missing, unexpected or mis-shaped keys are named).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    try:
        state = load_file(str(p))
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataFormatError(f"not a readable safetensors file ({exc})", path=p) from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise DataFormatError(
            "weights do not fit the model built from the record: " + " ".join(first), path=p
        ) from None
    return module
