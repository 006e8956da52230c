"""Person re-identification embedders: builders, runtimes, model directories, ONNX export.

A re-ID embedder turns a person crop into a vector; two crops of the same person,
seen by different cameras, give vectors with a high cosine similarity.

**Builders** (registered by name, see :mod:`cv.models.registry`):
``osnet_x0_25`` (0.14 M parameters without the classifier; torchreid's 0.2 M
includes a 512-d ``fc`` layer, optional here), ``osnet_x1_0`` (1.9 M),
``resnet18_bnneck`` (11.2 M), ``resnet50_bnneck`` (23.5 M). ``build_model(name,
num_classes=N, feature_dim=D)``; the networks are in :mod:`cv.models.reid_nets`.

**Tensor contract** of every network (and of the exported graph):

* input ``(N, 3, H, W) float32``, RGB, ``(x / 255 - mean) / std`` with the
  ImageNet mean and std (``record.preprocessing``), ``H × W = record.input_hw``
  (``256 × 128``); each crop is resized to it (no letterbox: people are tall);
* eval mode output ``(N, D) float32``, the BNNeck embedding, L2-normalised;
* train mode output ``(logits (N, C), features (N, D))``, features before the BNNeck.

**Runtimes**: :class:`TorchEmbedder` (research, training-time validation) and
:class:`OnnxEmbedder` (serving; ONNX Runtime with TensorRT / CUDA when present,
else CPU) share :meth:`Embedder.embed`, which takes RGB uint8 crops of any size.

**Model directory**: ``model.json`` (a :class:`~cv.models.weights.WeightsRecord`
with task ``reid-embed``; ``classes`` are the training identities, ``recipe
["model_kwargs"]`` the builder's extra arguments such as ``feature_dim``,
``thresholds["match"]`` the calibrated cosine-similarity match threshold),
``model.safetensors`` (loaded strictly) and ``model.onnx`` (dynamic batch axis,
written by :func:`export_reid_onnx` after a parity check).

Importing this module is cheap (no torch, no OpenCV): it only registers the builders.
"""

from __future__ import annotations

import abc
import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from cv.errors import ConfigError, DataValidationError, NotFoundError
from cv.models.registry import register_model

if TYPE_CHECKING:
    import torch

    from cv.models.reid_nets import ReidNet
    from cv.models.runtime import OpenVinoPrecision
    from cv.models.weights import WeightsRecord

log = logging.getLogger(__name__)

TASK = "reid-embed"
"""``WeightsRecord.task`` of a re-ID embedder."""
INPUT_HW: tuple[int, int] = (256, 128)
"""``(height, width)`` of the network input of the shipped embedders."""
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
INPUT_NAME = "images"
OUTPUT_NAME = "embeddings"
STATE_DICT_ROLE = "state_dict"
ONNX_ROLE = "onnx"
STATE_DICT_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"
DEFAULT_MODEL_NAME = "reid-osnet"

PARITY_ATOL = 1e-4
"""Largest ``|onnx - torch|`` allowed in any embedding element. Embeddings are
unit vectors of a few hundred elements (each about 0.05); float32 rounding across
kernels stays near 1e-6, a wrong graph is off by 1e-2 or more."""
PARITY_MIN_COSINE = 0.9999
"""Smallest cosine similarity allowed between a crop's two embeddings."""
PARITY_CROPS = 16
"""Crops the parity check runs on when none are given."""


# --------------------------------------------------------------------------- builders


def _build(make: Any, seed: int | None) -> torch.nn.Module:
    import torch

    if seed is None:
        return make()
    # A private generator state: building a model must not move the caller's RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def _check_dim(feature_dim: int | None) -> None:
    if feature_dim is not None and feature_dim < 1:
        raise ConfigError(f"feature_dim must be at least 1, got {feature_dim}", field="feature_dim")


@register_model("osnet_x0_25")
def osnet_x0_25(
    *,
    num_classes: int,
    feature_dim: int | None = None,
    seed: int | None = 0,
    class_names: Sequence[str] | None = None,
) -> torch.nn.Module:
    """OSNet ×0.25 (stage widths 16, 64, 96, 128; 0.14 M parameters without the classifier).

    Args:
        num_classes: Training identities (classifier outputs).
        feature_dim: Embedding size ``D``; ``None`` (the default) embeds the 128
            trunk channels directly. Another size adds torchreid's ``fc`` layer
            (``Linear`` + BN + ReLU), which trained far worse from scratch here
            (rank-1 0.08 against 0.40 after 300 steps on the synthetic set).
        seed: Seed of the weight initialisation (``None``: torch's global generator).
        class_names: Accepted for the registry's common signature; unused.
    """
    from cv.models.reid_nets import osnet

    _check_dim(feature_dim)
    return _build(
        lambda: osnet(channels=(16, 64, 96, 128), num_classes=num_classes, feature_dim=feature_dim),
        seed,
    )


@register_model("osnet_x1_0")
def osnet_x1_0(
    *,
    num_classes: int,
    feature_dim: int | None = None,
    seed: int | None = 0,
    class_names: Sequence[str] | None = None,
) -> torch.nn.Module:
    """OSNet ×1.0 (stage widths 64, 256, 384, 512; 1.9 M parameters without the classifier).

    Args: as :func:`osnet_x0_25` (``None`` embeds the 512 trunk channels).
    """
    from cv.models.reid_nets import osnet

    _check_dim(feature_dim)
    return _build(
        lambda: osnet(
            channels=(64, 256, 384, 512), num_classes=num_classes, feature_dim=feature_dim
        ),
        seed,
    )


@register_model("resnet18_bnneck")
def resnet18_bnneck(
    *,
    num_classes: int,
    feature_dim: int | None = None,
    seed: int | None = 0,
    class_names: Sequence[str] | None = None,
) -> torch.nn.Module:
    """torchvision ResNet-18 trunk (no pretrained weights), last stride 1, GAP, BNNeck.

    Args: as :func:`osnet_x0_25`; ``feature_dim`` ``None`` keeps the trunk's 512.
    """
    from cv.models.reid_nets import resnet_bnneck

    _check_dim(feature_dim)
    return _build(lambda: resnet_bnneck(18, num_classes=num_classes, feature_dim=feature_dim), seed)


@register_model("resnet50_bnneck")
def resnet50_bnneck(
    *,
    num_classes: int,
    feature_dim: int | None = None,
    seed: int | None = 0,
    class_names: Sequence[str] | None = None,
) -> torch.nn.Module:
    """torchvision ResNet-50 trunk (no pretrained weights), last stride 1, GAP, BNNeck (BoT).

    Args: as :func:`osnet_x0_25`; ``feature_dim`` ``None`` keeps the trunk's 2048.
    """
    from cv.models.reid_nets import resnet_bnneck

    _check_dim(feature_dim)
    return _build(lambda: resnet_bnneck(50, num_classes=num_classes, feature_dim=feature_dim), seed)


REID_MODELS: tuple[str, ...] = ("osnet_x0_25", "osnet_x1_0", "resnet18_bnneck", "resnet50_bnneck")
"""The registered re-ID builders."""


# --------------------------------------------------------------------------- records


def make_reid_record(
    *,
    name: str,
    architecture: str,
    classes: Sequence[str],
    input_hw: tuple[int, int] = INPUT_HW,
    feature_dim: int | None = None,
    recipe: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> WeightsRecord:
    """The weights record of a re-ID embedder (task ``reid-embed``).

    Args:
        name: Model name (``reid-osnet``).
        architecture: Registered builder name.
        classes: The training identities (the classifier's outputs), as strings.
        input_hw: ``(height, width)`` of the network input.
        feature_dim: The builder's ``feature_dim``, stored in
            ``recipe["model_kwargs"]`` so the network is rebuilt the same way;
            ``None`` is the builder's default.
        recipe: Training configuration and command.
        training: Facts of the run.
        metrics: Evaluation figures.
    """
    from cv.models.weights import Preprocessing, WeightsRecord

    recipe = dict(recipe or {})
    kwargs = dict(recipe.get("model_kwargs") or {})
    if feature_dim is not None:
        kwargs["feature_dim"] = feature_dim
    recipe["model_kwargs"] = kwargs
    return WeightsRecord(
        name=name,
        architecture=architecture,
        task=TASK,
        classes=[str(c) for c in classes],
        input_size=input_hw[0],
        input_hw=input_hw,
        preprocessing=Preprocessing(
            color="RGB",
            letterbox=False,
            pad_value=0,
            scale=1 / 255,
            mean=list(IMAGENET_MEAN),
            std=list(IMAGENET_STD),
        ),
        recipe=recipe,
        training=dict(training or {}),
        metrics=dict(metrics or {}),
    )


def _input_hw(record: WeightsRecord) -> tuple[int, int]:
    if record.input_hw is not None:
        return (int(record.input_hw[0]), int(record.input_hw[1]))
    return (record.input_size, record.input_size)


def _check_task(record: WeightsRecord, model_dir: Path) -> None:
    if record.task != TASK:
        raise DataValidationError(
            f"this is a {record.task!r} model, not a re-ID embedder (task {TASK!r})",
            path=model_dir / "model.json",
            field="task",
        )


def _model_dir(model_dir: str | PathLike[str]) -> Path:
    d = Path(model_dir)
    if not d.is_dir():
        raise NotFoundError(
            "re-ID model directory does not exist (a folder with model.json)", path=d
        )
    return d


def read_reid_record(model_dir: str | PathLike[str], *, verify: bool = True) -> WeightsRecord:
    """Reads ``model.json`` of a re-ID model directory and checks its task.

    Raises:
        NotFoundError: If the directory, the record or a named file is missing.
        ConfigError: If the record is invalid.
        DataFormatError: If a file does not match its sha256 (corrupt weights).
        DataValidationError: If the record is not a re-ID embedder's.
    """
    from cv.models.weights import read_record

    d = _model_dir(model_dir)
    record = read_record(d, verify=verify)
    _check_task(record, d)
    return record


def default_model_dir() -> Path:
    """Where the shipped default embedder lives: ``models/zoo/reid-osnet`` (may not exist)."""
    return Path(__file__).resolve().parent / "zoo" / DEFAULT_MODEL_NAME


# --------------------------------------------------------------------------- crops


def crop_box(frame: NDArray[np.uint8], box: Sequence[float]) -> NDArray[np.uint8]:
    """The part of ``frame`` inside an ``xyxy`` box, clipped to the frame.

    The box is in absolute pixels, 0-based, ``x2`` / ``y2`` exclusive edges; it is
    widened to whole pixels (floor of the top-left, ceiling of the bottom-right).

    Args:
        frame: ``(H, W, 3) uint8`` image (colour order kept).
        box: ``(x1, y1, x2, y2)``.

    Returns:
        A contiguous copy of the crop (it does not change when the frame buffer is
        reused by a video reader).

    Raises:
        DataValidationError: If the frame is not ``(H, W, 3)`` or the box has no
            pixels inside the frame.
    """
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
        got = getattr(frame, "shape", type(frame).__name__)
        raise DataValidationError(f"frame must be (H, W, 3), got {got}", field="frame")
    if len(box) != 4:
        raise DataValidationError(f"box must be (x1, y1, x2, y2), got {box!r}", field="box")
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(np.isfinite([x1, y1, x2, y2])):
        raise DataValidationError(f"box has non-finite coordinates {box!r}", field="box")
    c1, r1 = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
    c2, r2 = min(w, int(np.ceil(x2))), min(h, int(np.ceil(y2)))
    if c2 <= c1 or r2 <= r1:
        raise DataValidationError(
            f"box {tuple(round(v, 1) for v in (x1, y1, x2, y2))} has no pixels inside "
            f"the {w}×{h} frame",
            field="box",
        )
    return np.ascontiguousarray(frame[r1:r2, c1:c2])


def resize_crop(crop: NDArray[np.uint8], input_hw: tuple[int, int]) -> NDArray[np.uint8]:
    """Resizes a crop to ``(height, width)`` with bilinear interpolation (a no-op when
    it already has that size). Training and inference both resize through here."""
    import cv2

    h, w = input_hw
    if crop.shape[0] == h and crop.shape[1] == w:
        return crop
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)


def _check_crop(crop: Any, index: int) -> NDArray[np.uint8]:
    if not isinstance(crop, np.ndarray) or crop.dtype != np.uint8:
        got = getattr(crop, "dtype", type(crop).__name__)
        raise DataValidationError(f"must be a uint8 array, got {got}", field=f"crops[{index}]")
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] < 1 or crop.shape[1] < 1:
        raise DataValidationError(
            f"must have shape (H, W, 3) RGB, got {crop.shape}", field=f"crops[{index}]"
        )
    return crop


def normalise_batch(
    batch: NDArray[np.uint8],
    *,
    mean: Sequence[float],
    std: Sequence[float],
    scale: float = 1 / 255,
    bgr: bool = False,
) -> NDArray[np.float32]:
    """``(N, H, W, 3) uint8`` -> ``(N, 3, H, W) float32`` ``(x·scale - mean) / std``, vectorised.

    Args:
        batch: Crops already at the network's input size, RGB.
        mean: Per-channel mean (in the network's colour order).
        std: Per-channel standard deviation.
        scale: Factor applied before the normalisation (``1/255``).
        bgr: The network takes BGR (the channels are reversed first).
    """
    if bgr:
        batch = batch[..., ::-1]
    a = np.asarray(scale, np.float32) / np.asarray(std, np.float32)
    b = np.asarray(mean, np.float32) / np.asarray(std, np.float32)
    # One fused multiply-add over the whole batch, then one transposing copy.
    x = batch.astype(np.float32) * a - b
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


# --------------------------------------------------------------------------- runtimes


class Embedder(abc.ABC):
    """A re-ID embedder with its weights record, whatever runs the network.

    Subclasses implement :meth:`infer`; pre-processing and batching are shared, so
    every runtime gives the same embeddings for the same crops.

    Attributes:
        record: The weights record (input size, preprocessing, match threshold).
        dim: Embedding size ``D``.
        input_hw: ``(height, width)`` of the network input.
        runtime: ``torch``, ``onnx`` or ``openvino``.
    """

    runtime: str = ""

    def __init__(self, record: WeightsRecord, *, dim: int) -> None:
        self.record = record
        self.dim = int(dim)
        self.input_hw = _input_hw(record)

    @property
    def label(self) -> str:
        """What runs the network, in words (``onnx``, ``torch``, ``openvino (bf16)``)."""
        return self.runtime

    @property
    def match_threshold(self) -> float | None:
        """The calibrated cosine-similarity match threshold (``thresholds["match"]``), if any."""
        return self.record.thresholds.get("match")

    def preprocess(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """Resizes crops to :attr:`input_hw` and normalises them into one batch.

        Args:
            crops: Each ``(H, W, 3) uint8`` RGB, any size.

        Returns:
            ``(N, 3, H, W) float32`` as the network takes it.

        Raises:
            DataValidationError: If a crop is not ``(H, W, 3) uint8`` (its index is named).
        """
        h, w = self.input_hw
        batch = np.empty((len(crops), h, w, 3), dtype=np.uint8)
        for i, crop in enumerate(crops):
            batch[i] = resize_crop(_check_crop(crop, i), (h, w))
        pre = self.record.preprocessing
        return normalise_batch(
            batch,
            mean=pre.mean or (0.0, 0.0, 0.0),
            std=pre.std or (1.0, 1.0, 1.0),
            scale=pre.scale,
            bgr=pre.color == "BGR",
        )

    @abc.abstractmethod
    def infer(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        """Runs the network on ``(N, 3, H, W) float32``; returns ``(N, D) float32``."""

    def embed(self, crops: Sequence[NDArray[np.uint8]], *, batch: int = 64) -> NDArray[np.float32]:
        """Embeds person crops.

        Args:
            crops: Each ``(H, W, 3) uint8`` RGB, any size (see :func:`crop_box`).
            batch: Crops per network run.

        Returns:
            ``(N, D) float32``, each row L2-normalised; ``(0, D)`` for no crops.

        Raises:
            DataValidationError: If a crop is not ``(H, W, 3) uint8`` or ``batch < 1``.
        """
        if batch < 1:
            raise DataValidationError(f"batch must be at least 1, got {batch}", field="batch")
        out = np.empty((len(crops), self.dim), dtype=np.float32)
        for start in range(0, len(crops), batch):
            chunk = crops[start : start + batch]
            y = self.infer(self.preprocess(chunk))
            if y.shape != (len(chunk), self.dim):
                raise DataValidationError(
                    f"the network returned {y.shape}, expected ({len(chunk)}, {self.dim})",
                    field="embeddings",
                )
            out[start : start + len(chunk)] = y
        # The networks normalise already; this keeps the contract for any graph.
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, np.maximum(norms, 1e-12), out=out)
        return out


class TorchEmbedder(Embedder):
    """PyTorch runtime (research, validation during training, parity checks).

    Args:
        model: A network from a registered re-ID builder, weights loaded.
        record: Its weights record.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``...
        channels_last: Run convolutions in channels-last memory order (about 1.5×
            faster for OSNet on CPU).
    """

    runtime = "torch"

    def __init__(
        self,
        model: torch.nn.Module,
        record: WeightsRecord,
        *,
        device: str = "auto",
        channels_last: bool = True,
    ) -> None:
        import torch

        from cv.models.runtime import resolve_torch_device

        dim = getattr(model, "feature_dim", None)
        if dim is None:
            raise DataValidationError(
                "the model has no feature_dim: not a re-ID network", field="model"
            )
        super().__init__(record, dim=dim)
        self.device = resolve_torch_device(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.eval().to(self.device, memory_format=self.memory_format)

    def infer(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        """Runs the network in inference mode (see :meth:`Embedder.infer`)."""
        import torch

        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                x = torch.from_numpy(np.ascontiguousarray(tensor)).to(self.device)
                y = self.model(x.contiguous(memory_format=self.memory_format))
                return y.float().cpu().numpy()
        finally:
            self.model.train(was_training)


class OnnxEmbedder(Embedder):
    """ONNX Runtime runtime (serving).

    Args:
        session: An ``onnxruntime.InferenceSession`` on the exported graph (input
            ``images (N, 3, H, W)``, output ``embeddings (N, D)``), see
            :func:`cv.models.runtime.make_session`.
        record: Its weights record.
    """

    runtime = "onnx"

    def __init__(self, session: Any, record: WeightsRecord) -> None:
        inp, out = session.get_inputs()[0], session.get_outputs()[0]
        if len(out.shape) != 2 or not isinstance(out.shape[1], int):
            raise DataValidationError(
                f"the graph's output has shape {out.shape}; a re-ID embedder gives (N, D)",
                field="embeddings",
            )
        super().__init__(record, dim=out.shape[1])
        self.session = session
        self.input_name: str = inp.name
        self.output_name: str = out.name
        self.providers: list[str] = list(session.get_providers())

    def infer(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        """Runs the session (see :meth:`Embedder.infer`)."""
        (y,) = self.session.run([self.output_name], {self.input_name: tensor})
        return y if y.dtype == np.float32 else y.astype(np.float32)


class OpenVinoEmbedder(Embedder):
    """OpenVINO runtime (CPU serving) on the same exported ONNX graph.

    Args:
        compiled: A compiled model from :func:`cv.models.runtime.compile_openvino`.
        record: Its weights record.

    Attributes:
        precision: What the network runs in: ``bf16`` or ``f32``.
    """

    runtime = "openvino"

    def __init__(self, compiled: Any, record: WeightsRecord) -> None:
        shape = compiled.output(0).get_partial_shape()
        if shape.rank.get_length() != 2 or not shape[1].is_static:
            raise DataValidationError(
                f"the graph's output has shape {shape}; a re-ID embedder gives (N, D)",
                field="embeddings",
            )
        from cv.models.runtime import OpenVinoRequest

        super().__init__(record, dim=shape[1].get_length())
        self.compiled = compiled
        self._run = OpenVinoRequest(compiled)
        self.precision: str = self._run.precision

    @property
    def label(self) -> str:
        """``openvino (f32)`` or ``openvino (bf16)``: the precision moves the embeddings."""
        return f"{self.runtime} ({self.precision})"

    def infer(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        """Runs the compiled model (see :meth:`Embedder.infer`)."""
        return self._run(tensor)


# --------------------------------------------------------------------------- model directories


def build_reid_model(
    model_dir: str | PathLike[str], record: WeightsRecord | None = None
) -> tuple[ReidNet, WeightsRecord]:
    """Builds the record's architecture and loads its safetensors weights strictly.

    Returns:
        The network in eval mode, on the CPU, and its record.

    Raises:
        NotFoundError: If the directory, the record or the weights are missing.
        ConfigError: If the record names an unknown architecture.
        DataFormatError: If the weights are corrupt or do not fit the network.
        DataValidationError: If the record is not a re-ID embedder's.
    """
    from cv.models.registry import build_model
    from cv.models.weights import load_state_dict

    d = _model_dir(model_dir)
    record = record or read_reid_record(d)
    _check_task(record, d)
    name = record.files.get(STATE_DICT_ROLE)
    if name is None:
        raise NotFoundError(
            f"model.json names no {STATE_DICT_ROLE!r} file (safetensors weights)",
            path=d / "model.json",
        )
    kwargs = dict(record.recipe.get("model_kwargs") or {})
    model = build_model(record.architecture, num_classes=len(record.classes), seed=0, **kwargs)
    load_state_dict(model, d / name)
    return model.eval(), record  # type: ignore[return-value]


def save_embedder(
    model: torch.nn.Module, model_dir: str | PathLike[str], *, record: WeightsRecord
) -> Path:
    """Writes a model directory: ``model.safetensors`` and ``model.json``.

    An ONNX graph the directory held is removed (it was exported from other
    weights); run :func:`export_reid_onnx` again.

    Args:
        model: A re-ID network (its ``state_dict`` is saved).
        model_dir: Folder to write (created).
        record: Its record (:func:`make_reid_record`); ``task`` must be ``reid-embed``.

    Returns:
        The model directory.

    Raises:
        DataValidationError: If the record is not a re-ID record.
    """
    from cv.models.weights import save_state_dict, write_record

    d = Path(model_dir)
    _check_task(record, d)
    d.mkdir(parents=True, exist_ok=True)
    stale = record.files.get(ONNX_ROLE)
    if stale:
        (d / stale).unlink(missing_ok=True)
    record.files = {k: v for k, v in record.files.items() if k != ONNX_ROLE}
    save_state_dict(model, d / STATE_DICT_FILE)
    record.files = {**record.files, STATE_DICT_ROLE: STATE_DICT_FILE}
    write_record(record, d)
    return d


def init_embedder_dir(
    model_dir: str | PathLike[str],
    *,
    architecture: str = "osnet_x0_25",
    num_ids: int = 8,
    input_hw: tuple[int, int] = INPUT_HW,
    feature_dim: int | None = None,
    seed: int = 0,
    export: bool = False,
) -> Path:
    """Writes a model directory holding an untrained embedder (tests, benchmarks).

    Args:
        model_dir: Folder to create.
        architecture: Registered re-ID builder name.
        num_ids: Identities of the (untrained) classifier.
        input_hw: ``(height, width)`` of the network input.
        feature_dim: Embedding size; the builder's default when ``None``.
        seed: Seed of the weight initialisation.
        export: Also export ``model.onnx`` (with its parity check).
    """
    from cv.models.registry import build_model

    kwargs = {} if feature_dim is None else {"feature_dim": feature_dim}
    model = build_model(architecture, num_classes=num_ids, seed=seed, **kwargs)
    record = make_reid_record(
        name=f"{architecture}-untrained",
        architecture=architecture,
        classes=[str(i) for i in range(num_ids)],
        input_hw=input_hw,
        feature_dim=feature_dim,
        recipe={"trained": False, "seed": seed},
    )
    d = save_embedder(model, model_dir, record=record)
    if export:
        export_reid_onnx(d)
    return d


def load_embedder(
    model_dir: str | PathLike[str] | None = None,
    *,
    runtime: Literal["onnx", "openvino", "torch"] = "onnx",
    device: str = "auto",
    threads: int | None = None,
    providers: Sequence[str] | None = None,
    spin_wait: bool = True,
    precision: OpenVinoPrecision = "f32",
) -> Embedder:
    """Loads a re-ID model directory for inference.

    Args:
        model_dir: Folder with ``model.json`` and the files it names; the shipped
            default (:func:`default_model_dir`) when ``None``.
        runtime: ``onnx`` (ONNX Runtime, serving), ``openvino`` (OpenVINO on the
            CPU, serving) or ``torch`` (PyTorch).
        device: For ``torch``: ``auto`` (CUDA when available), ``cpu``, ``cuda``...
        threads: For ``onnx`` and ``openvino``: inference threads (physical cores
            by default). For ``torch`` on CPU: ``torch.set_num_threads``.
        providers: For ``onnx``: execution providers in order of preference
            (TensorRT, CUDA when present, then CPU by default).
        spin_wait: For ``onnx``: let idle threads spin (fastest when the process
            only embeds; turn off when it shares its cores with other work).
        precision: For ``openvino``: ``f32`` (default), ``bf16`` or ``auto``
            (see :func:`cv.models.runtime.compile_openvino`).

    Raises:
        NotFoundError: Missing directory, record, weights or ONNX graph.
        DataFormatError: Corrupt weights or graph (sha256 mismatch, unreadable file).
        DataValidationError: Not a re-ID model (task), or a graph that is not ``(N, D)``.
        ConfigError: Unknown runtime or architecture, invalid record.
    """
    d = _model_dir(default_model_dir() if model_dir is None else model_dir)
    if runtime == "torch":
        model, record = build_reid_model(d)
        if threads:
            import torch

            torch.set_num_threads(threads)
        return TorchEmbedder(model, record, device=device)
    if runtime not in ("onnx", "openvino"):
        raise ConfigError(
            f"unknown runtime {runtime!r}; use 'onnx', 'openvino' or 'torch'", field="runtime"
        )
    if precision != "f32" and runtime != "openvino":
        raise ConfigError(
            f"precision {precision} applies to runtime openvino only", field="precision"
        )
    from cv.models.load import open_graph
    from cv.models.runtime import compile_openvino, make_session

    record = read_reid_record(d)
    name = record.files.get(ONNX_ROLE)
    path = d / (name or ONNX_FILE)
    if name is None or not path.is_file():
        raise NotFoundError(
            f"no ONNX graph in the model directory; run `customs-vision reid export {d}` first",
            path=path,
        )
    if runtime == "openvino":
        compiled = open_graph(
            "OpenVINO", path, lambda p: compile_openvino(p, precision=precision, threads=threads)
        )
        return OpenVinoEmbedder(compiled, record)
    session = open_graph(
        "ONNX Runtime",
        path,
        lambda p: make_session(
            p, providers=providers, intra_op_threads=threads, spin_wait=spin_wait
        ),
    )
    return OnnxEmbedder(session, record)


# --------------------------------------------------------------------------- export


@dataclass(slots=True)
class ReidParityReport:
    """How closely ONNX Runtime reproduces PyTorch on the same crops.

    Attributes:
        crops: Number of crops compared.
        batches: Batch sizes the graph ran with (proves the dynamic batch axis).
        max_abs_diff: Largest ``|onnx - torch|`` over all embedding elements.
        min_cosine: Smallest cosine similarity between a crop's two embeddings.
        atol: Tolerance on ``max_abs_diff``.
        min_cosine_required: Tolerance on ``min_cosine``.
        passed: Both within tolerance.
        problems: What failed, in words.
    """

    crops: int
    batches: list[int]
    max_abs_diff: float
    min_cosine: float
    atol: float
    min_cosine_required: float
    passed: bool
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return asdict(self)


def parity_crops(n: int = PARITY_CROPS, *, seed: int = 0) -> list[NDArray[np.uint8]]:
    """Deterministic person-like test crops of several sizes for the parity check.

    Each is a tall crop with a background, a coloured 'torso' and 'legs', and
    noise, so the network's activations spread over a realistic range (a constant
    image would exercise little of it).
    """
    rng = np.random.default_rng(seed)
    crops = []
    for i in range(n):
        h = int(rng.integers(96, 320))
        w = max(24, int(h * rng.uniform(0.35, 0.6)))
        img = np.empty((h, w, 3), dtype=np.float32)
        img[:] = rng.uniform(40, 200, 3)
        x0, x1 = int(w * 0.25), int(w * 0.75)
        img[int(h * 0.15) : int(h * 0.55), x0:x1] = rng.uniform(0, 255, 3)
        img[int(h * 0.55) : int(h * 0.95), x0:x1] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 12 + 2 * (i % 4), img.shape)
        crops.append(np.clip(img, 0, 255).astype(np.uint8))
    return crops


def check_reid_parity(
    model_dir: str | PathLike[str],
    crops: Sequence[NDArray[np.uint8]] | None = None,
    *,
    atol: float = PARITY_ATOL,
    min_cosine: float = PARITY_MIN_COSINE,
    raise_on_failure: bool = True,
) -> ReidParityReport:
    """Embeds the same crops with PyTorch and ONNX Runtime (CPU) and compares.

    The ONNX graph runs the crops as one batch of one and the rest as another batch,
    so a graph whose batch axis is not dynamic fails here.

    Args:
        model_dir: Model directory with safetensors weights and ``model.onnx``.
        crops: ``(H, W, 3) uint8`` RGB crops; :func:`parity_crops` by default.
        atol: Largest ``|onnx - torch|`` allowed per element.
        min_cosine: Smallest cosine similarity allowed per crop.
        raise_on_failure: Raise :class:`~cv.models.export.ParityError` on failure.

    Raises:
        ParityError: When out of tolerance and ``raise_on_failure``.
        DataValidationError: If ``crops`` is empty.
    """
    from cv.models.export import ParityError

    crops = list(parity_crops() if crops is None else crops)
    if not crops:
        raise DataValidationError("the parity check needs at least one crop", field="crops")
    torch_emb = load_embedder(model_dir, runtime="torch", device="cpu")
    onnx_emb = load_embedder(model_dir, runtime="onnx", providers=["CPUExecutionProvider"])
    tensor = torch_emb.preprocess(crops)
    et = torch_emb.infer(tensor).astype(np.float64)
    batches = [1, len(crops) - 1] if len(crops) > 1 else [1]
    eo = np.concatenate([onnx_emb.infer(tensor[:1]), onnx_emb.infer(tensor[1:])])[: len(crops)]
    eo = eo.astype(np.float64)
    problems: list[str] = []
    if et.shape != eo.shape:
        problems.append(f"embedding shapes differ: torch {et.shape}, onnx {eo.shape}")
        max_diff, min_cos = float("inf"), -1.0
    else:
        max_diff = float(np.abs(eo - et).max())
        cos = (eo * et).sum(1) / np.maximum(
            np.linalg.norm(eo, axis=1) * np.linalg.norm(et, axis=1), 1e-12
        )
        min_cos = float(cos.min())
        if max_diff > atol:
            problems.append(f"embeddings differ by up to {max_diff:.3g} (atol {atol:g})")
        if min_cos < min_cosine:
            problems.append(f"cosine similarity down to {min_cos:.6f} (required {min_cosine})")
    report = ReidParityReport(
        crops=len(crops),
        batches=batches,
        max_abs_diff=max_diff,
        min_cosine=min_cos,
        atol=atol,
        min_cosine_required=min_cosine,
        passed=not problems,
        problems=problems,
    )
    if problems and raise_on_failure:
        raise ParityError(
            "ONNX Runtime does not reproduce PyTorch: " + "; ".join(problems),
            path=Path(model_dir) / ONNX_FILE,
        )
    return report


def export_reid_onnx(
    model_dir: str | PathLike[str],
    *,
    opset: int = 17,
    parity_images: Sequence[NDArray[np.uint8]] | None = None,
    atol: float = PARITY_ATOL,
    min_cosine: float = PARITY_MIN_COSINE,
) -> Path:
    """Exports a re-ID model directory's network to ``model.onnx`` and proves parity.

    Graph contract: input ``images (batch, 3, H, W) float32`` (normalised as the
    record says), output ``embeddings (batch, D) float32``, L2-normalised;
    ``batch`` is dynamic. The graph is added to ``model.json`` and the parity
    figures to ``metrics["onnx_parity"]``. When the check fails the graph is
    removed again, so no unproven graph is ever served.

    Args:
        model_dir: Folder with ``model.json`` and ``model.safetensors``.
        opset: ONNX opset version.
        parity_images: ``(H, W, 3) uint8`` RGB crops for the parity check;
            :func:`parity_crops` by default.
        atol: Largest ``|onnx - torch|`` allowed per embedding element.
        min_cosine: Smallest cosine similarity allowed per crop.

    Returns:
        Path of ``model.onnx``.

    Raises:
        NotFoundError, DataFormatError, DataValidationError: As :func:`build_reid_model`.
        ParityError: If ONNX Runtime and PyTorch disagree beyond the tolerance.
    """
    import onnx
    import torch

    from cv.models.weights import write_record

    d = _model_dir(model_dir)
    model, record = build_reid_model(d)
    h, w = _input_hw(record)
    dummy = torch.zeros(2, 3, h, w)
    out = d / ONNX_FILE
    with torch.no_grad():
        dim = int(model(dummy).shape[1])
        # The TorchScript-based exporter (as cv.models.export uses); its deprecation
        # notice is expected.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*legacy TorchScript.*")
            torch.onnx.export(
                model,
                (dummy,),
                str(out),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    graph = onnx.load(str(out))
    dims = graph.graph.output[0].type.tensor_type.shape.dim
    dims[1].Clear()
    dims[1].dim_value = dim
    meta = {
        "name": record.name,
        "architecture": record.architecture,
        "task": record.task,
        "input_hw": json.dumps([h, w]),
        "embedding_dim": str(dim),
        "preprocessing": record.preprocessing.model_dump_json(),
    }
    del graph.metadata_props[:]
    for k, v in meta.items():
        prop = graph.metadata_props.add()
        prop.key, prop.value = k, v
    onnx.checker.check_model(graph)
    onnx.save(graph, str(out))
    record.files = {**record.files, ONNX_ROLE: ONNX_FILE}
    write_record(record, d)
    try:
        report = check_reid_parity(d, parity_images, atol=atol, min_cosine=min_cosine)
    except Exception:
        record.files = {k: v for k, v in record.files.items() if k != ONNX_ROLE}
        record.metrics.pop("onnx_parity", None)
        write_record(record, d)
        out.unlink(missing_ok=True)
        raise
    record.metrics["onnx_parity"] = report.to_dict()
    write_record(record, d)
    log.info(
        "exported %s (opset %d, dynamic batch): max |Δ| %.2g, min cosine %.6f on %d crops",
        out,
        opset,
        report.max_abs_diff,
        report.min_cosine,
        report.crops,
    )
    return out
