"""Detector runtimes: one interface, PyTorch (research), ONNX Runtime and OpenVINO (serving).

The runtimes share the NumPy code around the network, so they differ only in
:meth:`Detector.infer`:

1. :func:`letterbox` each image (resize keeping the aspect, pad with 114 to a
   square of ``input_size``) and stack them into one ``(N, 3, S, S) float32``
   tensor in ``[0, 1]``, RGB (:meth:`Detector.preprocess`);
2. run the network: raw head output ``(N, 4 + nc, A) float32``, rows 0-3 the box
   centre and size ``cx, cy, w, h`` in input pixels, rows ``4:`` the class
   scores in ``[0, 1]`` (:meth:`Detector.infer`; see :mod:`cv.models.yolo`);
3. :func:`decode` the candidates above ``conf``, run class-aware :func:`nms`,
   map the boxes back to the original image (:func:`unletterbox`) and clip them
   (:meth:`Detector.postprocess`).

Results are :class:`cv.records.Detection`: ``xyxy`` absolute pixels in the
original image, 0-based, with the class name, class index and score.
"""

from __future__ import annotations

import abc
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import cv2
import numpy as np
from numpy.typing import NDArray

from cv.errors import ConfigError, DataValidationError
from cv.records import Detection

if TYPE_CHECKING:
    import torch

    from cv.models.weights import Preprocessing, WeightsRecord

PAD_VALUE = 114
"""Grey of the letterbox padding, as ultralytics trains with."""

MAX_NMS_CANDIDATES = 30000
"""Candidates kept (highest scores first) before NMS, as ultralytics does."""

CLASS_OFFSET = 7680.0
"""Per-class box shift for class-aware NMS in one pass; larger than any input side."""


@dataclass(frozen=True, slots=True)
class LetterboxMeta:
    """How one original image was placed into the square network input.

    A point ``x`` in the original image lies at ``x * scale_x + pad_x`` in the
    input (likewise for ``y``).

    Attributes:
        width: Original image width in pixels.
        height: Original image height in pixels.
        scale_x: Resized width over original width.
        scale_y: Resized height over original height.
        pad_x: Left padding in input pixels.
        pad_y: Top padding in input pixels.
    """

    width: int
    height: int
    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int


def letterbox(
    image: NDArray[np.uint8], size: int, *, pad_value: int = PAD_VALUE, keep_aspect: bool = True
) -> tuple[NDArray[np.uint8], LetterboxMeta]:
    """Resizes an image into a ``size × size`` square, padding the rest.

    The longer side becomes ``size`` (aspect kept); the shorter is centred and
    padded with ``pad_value`` on both sides (the odd pixel goes bottom / right).

    Args:
        image: ``(H, W, 3) uint8``, any colour order (kept).
        size: Side of the square output.
        pad_value: Grey level of the padding.
        keep_aspect: False resizes to the square directly (no padding).

    Returns:
        The ``(size, size, 3) uint8`` image and its :class:`LetterboxMeta`.
    """
    h, w = image.shape[:2]
    if keep_aspect:
        r = min(size / w, size / h)
        new_w, new_h = max(1, round(w * r)), max(1, round(h * r))
    else:
        new_w, new_h = size, size
    resized = image
    if (new_w, new_h) != (w, h):
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    if (new_w, new_h) == (size, size):
        out = np.ascontiguousarray(resized)
    else:
        out = np.full((size, size, 3), pad_value, dtype=np.uint8)
        out[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    meta = LetterboxMeta(
        width=w, height=h, scale_x=new_w / w, scale_y=new_h / h, pad_x=pad_x, pad_y=pad_y
    )
    return out, meta


def unletterbox(boxes: NDArray[np.floating], meta: LetterboxMeta) -> NDArray[np.float64]:
    """Maps ``xyxy`` boxes from network-input pixels to the original image, clipped.

    Args:
        boxes: ``(K, 4)`` ``xyxy`` in input pixels.
        meta: Where the image was placed (:func:`letterbox`).

    Returns:
        ``(K, 4) float64`` ``xyxy`` in original pixels, clipped to
        ``[0, width] × [0, height]``.
    """
    out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    out[:, 0::2] = (out[:, 0::2] - meta.pad_x) / meta.scale_x
    out[:, 1::2] = (out[:, 1::2] - meta.pad_y) / meta.scale_y
    np.clip(out[:, 0::2], 0.0, meta.width, out=out[:, 0::2])
    np.clip(out[:, 1::2], 0.0, meta.height, out=out[:, 1::2])
    return out


def decode(
    raw: NDArray[np.floating],
    *,
    conf: float,
    class_mask: NDArray[np.bool_] | None = None,
    multi_label: bool = False,
    max_candidates: int = MAX_NMS_CANDIDATES,
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int64]]:
    """Candidate boxes of one image from the raw head output.

    Args:
        raw: ``(4 + nc, A)``: ``cx, cy, w, h`` in input pixels, then class scores.
        conf: Keep candidates scoring strictly above this.
        class_mask: ``(nc,)`` bool, the classes to keep; all by default.
        multi_label: One candidate per (anchor, class) above ``conf`` instead of
            only the best class of each anchor (slightly higher AP at low ``conf``).
        max_candidates: Keep at most this many, highest scores first.

    Returns:
        ``boxes (K, 4)`` ``xyxy`` input pixels, ``scores (K,)``, ``class_ids (K,)``.
    """
    scores_all = raw[4:]
    if class_mask is not None:
        scores_all = np.where(class_mask[:, None], scores_all, 0.0)
    if multi_label:
        cls, idx = np.nonzero(scores_all > conf)
        scores = scores_all[cls, idx]
    else:
        cls_best = scores_all.argmax(axis=0)
        best = np.take_along_axis(scores_all, cls_best[None], axis=0)[0]
        idx = np.flatnonzero(best > conf)
        cls, scores = cls_best[idx], best[idx]
    if len(scores) > max_candidates:
        top = np.argpartition(-scores, max_candidates)[:max_candidates]
        idx, cls, scores = idx[top], cls[top], scores[top]
    cxcywh = raw[:4, idx].T.astype(np.float32, copy=False)
    half = cxcywh[:, 2:] / 2
    boxes = np.concatenate([cxcywh[:, :2] - half, cxcywh[:, :2] + half], axis=1)
    return boxes, scores.astype(np.float32, copy=False), cls.astype(np.int64, copy=False)


def nms(
    boxes: NDArray[np.floating],
    scores: NDArray[np.floating],
    class_ids: NDArray[np.integer] | None = None,
    *,
    iou: float,
    max_det: int = 300,
) -> NDArray[np.int64]:
    """Greedy non-maximum suppression, class-aware when ``class_ids`` is given.

    Boxes of different classes never suppress each other: each class is shifted
    by :data:`CLASS_OFFSET` so that one pass handles all classes. The IoU of the
    kept box against all remaining ones is one vectorised step, so the Python
    loop runs once per kept box, never per pair.

    Args:
        boxes: ``(K, 4)`` ``xyxy``.
        scores: ``(K,)``.
        class_ids: ``(K,)`` class index of each box, or ``None`` for class-agnostic.
        iou: Suppress boxes whose IoU with a kept, higher-scoring box is above this.
        max_det: Keep at most this many.

    Returns:
        Indices of the kept boxes, highest score first.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(b) == 0 or max_det <= 0:
        return np.zeros(0, dtype=np.int64)
    if class_ids is not None:
        b = b + (np.asarray(class_ids, dtype=np.float64) * CLASS_OFFSET)[:, None]
    areas = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_det:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        if not rest.size:
            break
        lt = np.maximum(b[i, :2], b[rest, :2])
        rb = np.minimum(b[i, 2:], b[rest, 2:])
        wh = np.clip(rb - lt, 0, None)
        inter = wh[:, 0] * wh[:, 1]
        union = areas[i] + areas[rest] - inter
        overlap = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def check_image(image: Any, index: int) -> NDArray[np.uint8]:
    """Checks one input image against the contract ``(H, W, 3) uint8``.

    Raises:
        DataValidationError: Naming the image's position in the batch.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        got = getattr(image, "dtype", type(image).__name__)
        raise DataValidationError(f"must be a uint8 array, got {got}", field=f"images[{index}]")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise DataValidationError(
            f"must have shape (H, W, 3) RGB, got {image.shape}", field=f"images[{index}]"
        )
    return image


def preprocess(
    images: Sequence[NDArray[np.uint8]], *, size: int, preprocessing: Preprocessing
) -> tuple[NDArray[np.float32], list[LetterboxMeta]]:
    """Letterboxes and stacks images into the network input.

    Args:
        images: Each ``(H, W, 3) uint8`` RGB, any size.
        size: Square input side ``S``.
        preprocessing: The weights record's preprocessing (colour order, letterbox,
            pad value, scale).

    Returns:
        ``(N, 3, S, S) float32`` in ``[0, 1]`` (times ``preprocessing.scale``), in
        the record's colour order, and one :class:`LetterboxMeta` per image.
    """
    batch = np.empty((len(images), 3, size, size), dtype=np.float32)
    metas = []
    for i, image in enumerate(images):
        square, meta = letterbox(
            check_image(image, i),
            size,
            pad_value=preprocessing.pad_value,
            keep_aspect=preprocessing.letterbox,
        )
        if preprocessing.color == "BGR":
            square = square[..., ::-1]
        # HWC uint8 -> CHW float32 scaled, written straight into the batch.
        np.multiply(square.transpose(2, 0, 1), np.float32(preprocessing.scale), out=batch[i])
        metas.append(meta)
    return batch, metas


class Detector(abc.ABC):
    """A detector with its weights record, whatever runs the network.

    Subclasses implement :meth:`infer`; everything around it is shared NumPy code,
    so that every runtime gives the same detections on the same images.

    Attributes:
        record: The model's weights record (classes, input size, preprocessing).
        classes: Class names; ``Detection.class_id`` indexes this list.
        input_size: Square network input side in pixels.
        max_batch: Largest batch handed to :meth:`infer` at once.
    """

    runtime: str = ""

    def __init__(self, record: WeightsRecord, *, max_batch: int = 16) -> None:
        self.record = record
        self.classes: list[str] = list(record.classes)
        self.input_size: int = record.input_size
        self.max_batch = max(1, max_batch)

    @property
    def label(self) -> str:
        """What runs the model, for records and reports (``openvino (bf16)``, ``onnx``)."""
        return self.runtime

    def preprocess(
        self, images: Sequence[NDArray[np.uint8]]
    ) -> tuple[NDArray[np.float32], list[LetterboxMeta]]:
        """Letterboxes and stacks images into the network input (see :func:`preprocess`)."""
        return preprocess(images, size=self.input_size, preprocessing=self.record.preprocessing)

    @abc.abstractmethod
    def infer(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        """Runs the network.

        Args:
            tensor: ``(N, 3, S, S) float32`` from :meth:`preprocess`.

        Returns:
            Raw head output ``(N, 4 + nc, A) float32`` (see the module docstring).
        """

    def class_mask(self, classes: Sequence[str] | None) -> NDArray[np.bool_] | None:
        """The ``(nc,)`` mask of the named classes, or ``None`` for all.

        Raises:
            ConfigError: If a name is not one of the model's classes.
        """
        if classes is None:
            return None
        unknown = [c for c in classes if c not in self.classes]
        if unknown:
            raise ConfigError(
                f"unknown classes {unknown}; the model has {self.classes}", field="classes"
            )
        wanted = set(classes)
        return np.array([c in wanted for c in self.classes], dtype=bool)

    def postprocess(
        self,
        raw: NDArray[np.floating],
        metas: Sequence[LetterboxMeta],
        *,
        conf: float = 0.25,
        iou: float = 0.45,
        max_det: int = 300,
        classes: Sequence[str] | None = None,
        multi_label: bool = False,
    ) -> list[list[Detection]]:
        """Decodes, suppresses and un-letterboxes the raw output of a batch.

        Args:
            raw: ``(N, 4 + nc, A)`` from :meth:`infer`.
            metas: One per image, from :meth:`preprocess`.
            conf: Minimum score.
            iou: NMS IoU threshold (class-aware).
            max_det: Most detections per image.
            classes: Keep only these class names; all by default.
            multi_label: See :func:`decode`.

        Returns:
            Per image, its detections, highest score first.

        Raises:
            DataValidationError: If ``raw`` does not have ``4 + len(classes)`` rows.
        """
        nc = len(self.classes)
        if raw.ndim != 3 or raw.shape[1] != 4 + nc or raw.shape[0] != len(metas):
            raise DataValidationError(
                f"raw output has shape {raw.shape}; expected ({len(metas)}, {4 + nc}, anchors) "
                f"for {nc} classes",
                field="raw",
            )
        mask = self.class_mask(classes)
        out: list[list[Detection]] = []
        for raw_i, meta in zip(raw, metas, strict=True):
            boxes, scores, cls = decode(raw_i, conf=conf, class_mask=mask, multi_label=multi_label)
            keep = nms(boxes, scores, cls, iou=iou, max_det=max_det)
            xyxy = unletterbox(boxes[keep], meta)
            out.append(
                [
                    Detection(
                        box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                        category=self.classes[c],
                        class_id=int(c),
                        score=float(s),
                    )
                    for b, c, s in zip(xyxy, cls[keep], scores[keep], strict=True)
                ]
            )
        return out

    def predict(
        self,
        images: Sequence[NDArray[np.uint8]],
        *,
        conf: float = 0.25,
        iou: float = 0.45,
        max_det: int = 300,
        classes: Sequence[str] | None = None,
        multi_label: bool = False,
    ) -> list[list[Detection]]:
        """Detects objects in images of any sizes, in batches of :attr:`max_batch`.

        Args:
            images: Each ``(H, W, 3) uint8`` RGB.
            conf: Minimum score.
            iou: NMS IoU threshold (class-aware).
            max_det: Most detections per image.
            classes: Keep only these class names; all by default.
            multi_label: See :func:`decode`.

        Returns:
            Per image, its detections (``xyxy`` original pixels), highest score first.
        """
        results: list[list[Detection]] = []
        for start in range(0, len(images), self.max_batch):
            chunk = images[start : start + self.max_batch]
            tensor, metas = self.preprocess(chunk)
            raw = self.infer(tensor)
            results.extend(
                self.postprocess(
                    raw,
                    metas,
                    conf=conf,
                    iou=iou,
                    max_det=max_det,
                    classes=classes,
                    multi_label=multi_label,
                )
            )
        return results


def resolve_torch_device(device: str = "auto") -> str:
    """``auto`` is ``cuda`` when a GPU is visible, else ``cpu``; others pass through."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def raw_head_output(output: Any, input_size: int | None = None) -> torch.Tensor:
    """The ``(N, 4 + nc, A)`` tensor from what an ultralytics model returns in eval mode.

    In eval mode the YOLO Detect head returns ``(decoded, raw_feature_dict)``; in
    export mode only ``decoded``. The RT-DETR decoder returns ``(top_k, raw)`` with
    ``raw = (boxes, logits, enc_boxes, enc_logits, dn_meta)``: the last decoder
    layer's boxes (``cx, cy, w, h`` as fractions of the input side) and class
    logits per query, made into the same contract here, one column per query.

    Args:
        output: The model's eval-mode output.
        input_size: The square input side in pixels (RT-DETR boxes are fractions).
    """
    if isinstance(output, (tuple, list)) and _is_detr_raw(output[1] if len(output) > 1 else None):
        import torch

        if input_size is None:
            raise ValueError("an RT-DETR output needs the input size to give pixel boxes")
        boxes, logits = output[1][0][-1], output[1][1][-1]
        return torch.cat([boxes * input_size, logits.sigmoid()], dim=-1).transpose(1, 2)
    return output[0] if isinstance(output, (tuple, list)) else output


def _is_detr_raw(raw: Any) -> bool:
    """Whether ``raw`` is the RT-DETR decoder's ``(boxes, logits, enc_boxes,
    enc_logits, dn_meta)`` (YOLO's is a dict of feature maps)."""
    return isinstance(raw, (tuple, list)) and len(raw) == 5 and getattr(raw[0], "ndim", 0) == 4


class TorchDetector(Detector):
    """PyTorch runtime (research, fine-tuning, parity checks).

    Args:
        model: The network from a registered builder, weights loaded.
        record: Its weights record.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``...
        fuse: Fold batch norms into convolutions for inference (faster, same
            results within float rounding).
        max_batch: Largest batch per forward pass.
    """

    runtime = "torch"

    def __init__(
        self,
        model: torch.nn.Module,
        record: WeightsRecord,
        *,
        device: str = "auto",
        fuse: bool = True,
        max_batch: int = 16,
    ) -> None:
        super().__init__(record, max_batch=max_batch)
        self.device = resolve_torch_device(device)
        model = model.eval()
        if fuse and hasattr(model, "fuse"):
            model = model.fuse(verbose=False)
        self.model = model.to(self.device)

    def infer(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        """Runs the network in inference mode (see :meth:`Detector.infer`)."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(tensor)).to(self.device)
            y = raw_head_output(self.model(x), x.shape[-1])
            return y.float().cpu().numpy()


def physical_cores() -> int:
    """Physical CPU cores available to this process (threads beyond them do not help)."""
    try:
        import psutil

        cores = psutil.cpu_count(logical=False)
    except ImportError:
        cores = None
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or logical or 1, logical or 1))


def default_providers() -> list[str]:
    """ONNX Runtime execution providers to use: TensorRT and CUDA when present, then CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    preferred = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
    return [p for p in preferred if p in available] + ["CPUExecutionProvider"]


def make_session(
    path: str | os.PathLike[str],
    *,
    providers: Sequence[str] | None = None,
    intra_op_threads: int | None = None,
    spin_wait: bool = True,
) -> Any:
    """An ONNX Runtime inference session tuned for serving.

    Args:
        path: The ``.onnx`` file.
        providers: Execution providers in order of preference; by default
            :func:`default_providers`.
        intra_op_threads: Threads inside one operator; by default the physical
            cores (hyper-threads only add contention in convolutions).
        spin_wait: Let idle intra-op threads spin for the next job. Fastest for a
            process that only runs the model; a server that also decodes uploads on
            the same cores loses about a third of its CPU to the spinning.

    Raises:
        ConfigError: If a provider asked for is not available in this onnxruntime.
    """
    import onnxruntime as ort

    chosen = list(providers) if providers is not None else default_providers()
    missing = [p for p in chosen if p not in ort.get_available_providers()]
    if missing:
        raise ConfigError(
            f"execution providers {missing} are not available; "
            f"this onnxruntime has {ort.get_available_providers()}",
            field="providers",
        )
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = intra_op_threads or physical_cores()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if not spin_wait:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=opts, providers=chosen)


class OnnxDetector(Detector):
    """ONNX Runtime runtime (serving).

    Args:
        session: An ``onnxruntime.InferenceSession`` on the exported graph
            (input ``images (N, 3, S, S)``, output ``(N, 4 + nc, A)``), see
            :func:`make_session`.
        record: Its weights record.
        max_batch: Largest batch per session run.
    """

    runtime = "onnx"

    def __init__(self, session: Any, record: WeightsRecord, *, max_batch: int = 16) -> None:
        super().__init__(record, max_batch=max_batch)
        self.session = session
        inp = session.get_inputs()[0]
        self.input_name: str = inp.name
        self.output_name: str = session.get_outputs()[0].name
        # An FP16 graph takes float16 input; the NumPy side stays float32.
        self.input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        self.providers: list[str] = list(session.get_providers())
        self.output_dims: list[int | None] = [
            d if isinstance(d, int) else None for d in session.get_outputs()[0].shape
        ]

    def infer(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        """Runs the session (see :meth:`Detector.infer`)."""
        x = tensor if tensor.dtype == self.input_dtype else tensor.astype(self.input_dtype)
        (y,) = self.session.run([self.output_name], {self.input_name: x})
        return y if y.dtype == np.float32 else y.astype(np.float32)


OpenVinoPrecision = Literal["auto", "f32", "bf16"]
OPENVINO_PRECISIONS: tuple[str, ...] = get_args(OpenVinoPrecision)


_OV_CORE: Any = None
_OV_CORE_LOCK = threading.Lock()


def openvino_core() -> Any:
    """The process's one ``openvino.Core``.

    OpenVINO loads its CPU plugin once per Core. With a Core per model, a process that
    had held two compiled models at once later crashed (a segmentation fault while
    PyTorch trained in the same process); with one shared Core it does not.
    """
    global _OV_CORE
    with _OV_CORE_LOCK:
        if _OV_CORE is None:
            import openvino as ov

            _OV_CORE = ov.Core()
        return _OV_CORE


def compile_openvino(
    path: str | os.PathLike[str],
    *,
    precision: OpenVinoPrecision = "f32",
    threads: int | None = None,
) -> Any:
    """The exported ONNX graph compiled by OpenVINO for this machine's CPU.

    OpenVINO reads ``model.onnx`` itself (no conversion step, no extra file) and
    compiles it for the CPU it runs on. In FP32 it gives ONNX Runtime's numbers
    (to about 1e-4) about 1.3 times faster on this project's 2-core reference
    machine; on CPUs with AVX-512 BF16 or AMX, bfloat16 is about 2.2 times ONNX
    Runtime's speed, with scores that move slightly (the README has the measured
    effect on AP and detection rates).

    Args:
        path: The ``.onnx`` file.
        precision: ``f32`` (the default): the numbers the thresholds were chosen
            on; ``bf16``: bfloat16, refused on CPUs without it; ``auto``: OpenVINO's
            own choice for the CPU (bfloat16 where the CPU has it, else FP32).
        threads: Inference threads; the physical cores by default.

    Raises:
        ConfigError: If OpenVINO is not installed, or the precision is unknown or not
            supported by this CPU.
    """
    try:
        core = openvino_core()
    except ImportError:
        raise ConfigError(
            "the openvino runtime needs the openvino package (pip install openvino)",
            field="runtime",
        ) from None
    if precision not in OPENVINO_PRECISIONS:
        raise ConfigError(
            f"unknown OpenVINO precision {precision!r}; use one of {', '.join(OPENVINO_PRECISIONS)}",
            field="precision",
        )
    config: dict[str, Any] = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": threads or physical_cores(),
    }
    if precision == "f32":
        config["INFERENCE_PRECISION_HINT"] = "f32"
    elif precision == "bf16":
        capabilities = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        if "BF16" not in capabilities:
            raise ConfigError(
                f"this CPU has no bfloat16 support (OpenVINO lists {', '.join(capabilities)}); "
                "use precision auto or f32",
                field="precision",
            )
        config["INFERENCE_PRECISION_HINT"] = "bf16"
    return core.compile_model(core.read_model(str(path)), "CPU", config)


class OpenVinoRequest:
    """One infer request on a compiled model, used by one thread at a time.

    The server's batcher runs a detector from one worker, a swap warms the new model
    up on its own, and the CCTV workers share the embedder: the lock keeps them apart.

    Attributes:
        precision: What the network runs in: ``bf16`` or ``f32``.
    """

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        hint = str(compiled.get_property("INFERENCE_PRECISION_HINT")).lower()
        self.precision: str = "bf16" if "bf16" in hint or "bfloat16" in hint else "f32"
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()

    def __call__(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        """The first output for ``tensor`` (float32, copied out of the request)."""
        x = np.ascontiguousarray(tensor, dtype=np.float32)
        with self._lock:
            self._request.infer({0: x})
            # The output tensor's memory belongs to the request: copy it out.
            return np.array(self._request.get_output_tensor(0).data, dtype=np.float32, copy=True)


class OpenVinoDetector(Detector):
    """OpenVINO runtime (CPU serving) on the same exported ONNX graph.

    Args:
        compiled: A compiled model from :func:`compile_openvino`.
        record: Its weights record.
        max_batch: Largest batch per inference.

    Attributes:
        precision: What the convolutions run in: ``bf16`` or ``f32``.
        output_dims: The graph's output shape, ``None`` for dynamic axes.
    """

    runtime = "openvino"

    def __init__(self, compiled: Any, record: WeightsRecord, *, max_batch: int = 16) -> None:
        super().__init__(record, max_batch=max_batch)
        self.compiled = compiled
        self._run = OpenVinoRequest(compiled)
        self.precision: str = self._run.precision
        self.input_name: str = compiled.input(0).get_any_name()
        self.output_dims: list[int | None] = [
            d.get_length() if d.is_static else None for d in compiled.output(0).get_partial_shape()
        ]

    @property
    def label(self) -> str:
        """``openvino (f32)`` or ``openvino (bf16)``: the precision changes the scores."""
        return f"{self.runtime} ({self.precision})"

    def infer(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        """Runs the compiled model (see :meth:`Detector.infer`)."""
        return self._run(tensor)
