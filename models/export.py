"""Export to ONNX (FP32, FP16, INT8) and the parity check that proves it.

The graph is traced from the strict safetensors model through
:class:`RawOutputModel`, a wrapper whose only output is the raw head tensor, so
that the serving graph and the PyTorch model end in the same place and share the
NumPy decoding of :mod:`cv.models.runtime`. Graph contract:

* input ``images``: ``(batch, 3, S, S) float32`` in ``[0, 1]``, RGB, letterboxed;
* output ``output0``: ``(batch, 4 + nc, A) float32``, ``cx, cy, w, h`` in input
  pixels then class scores in ``[0, 1]``; ``batch`` is a dynamic axis.

Each written graph is added to ``model.json`` (``files`` and ``sha256``).
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from cv.boxes import box_iou
from cv.errors import ConfigError, CustomsVisionError, DataValidationError
from cv.models.load import ONNX_FILE, ONNX_ROLE, build_torch_model, load_record
from cv.models.weights import WeightsRecord, write_record

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
INPUT_NAME = "images"
OUTPUT_NAME = "output0"
FP16_FILE = "model.fp16.onnx"
INT8_FILE = "model.int8.onnx"

PARITY_ATOL = 1e-3
"""Raw outputs may differ by ``atol + rtol·|torch|``: float32 rounding across
kernels stays near 1e-4 in pixels and 1e-6 in scores; a wrong graph is far off."""
PARITY_RTOL = 1e-3
PARITY_MIN_IOU = 0.99
"""Matched PyTorch / ONNX detections must overlap at least this much."""

# The FP16 graph's tolerance. Half precision keeps 11 significant bits: raw box
# outputs (cx, cy, w, h in input pixels, up to a few hundred) are rounded to steps
# of 0.25 px above 256 before any arithmetic error, so FP32's 1e-3 cannot hold.
# On the default model (384 px) over the 600 held-out teal scans, PyTorch FP32 and
# the FP16 graph differed by up to 1.7 px in raw boxes (0.56 of the bound below)
# and 0.004 in scores. Every raw candidate is held to that; the detections are
# then compared for being the same objects: near-tied candidates of one object may
# swap places in NMS (once in 600 scans, keeping a box at IoU 0.64 with PyTorch's),
# so a match needs the NMS threshold's overlap, not FP32's 0.99.
FP16_BOX_ATOL = 1.0
"""FP16 parity: raw boxes may differ by ``FP16_BOX_ATOL + FP16_BOX_RTOL·|torch|`` pixels."""
FP16_BOX_RTOL = 1e-2
FP16_SCORE_ATOL = 2e-2
"""FP16 parity: raw class scores, and matched detections' scores, may differ by this much."""
FP16_MIN_IOU = 0.5
"""FP16 parity: matched PyTorch / FP16 detections (same class) must overlap this much."""


class ParityError(CustomsVisionError):
    """PyTorch and ONNX Runtime disagree beyond the stated tolerance."""

    exit_code = 1


def _raw_output_model(model: torch.nn.Module) -> torch.nn.Module:
    """Wraps ``model`` so that its only output is the raw head tensor (see module doc)."""
    import torch

    from cv.models.runtime import raw_head_output

    class RawOutputModel(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return raw_head_output(self.inner(images), images.shape[-1])

    return RawOutputModel(model).eval()


def _add_file(record: WeightsRecord, model_dir: Path, role: str, name: str) -> None:
    record.files = {**record.files, role: name}
    write_record(record, model_dir)


def export_onnx(
    model_dir: str | PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
    half: bool = False,
    simplify: bool = False,
) -> Path:
    """Exports a model directory's safetensors network to ``model.onnx``.

    Args:
        model_dir: Folder with ``model.json`` and ``model.safetensors``.
        opset: ONNX opset version.
        dynamic_batch: Make the batch axis dynamic (else fixed at 1).
        half: Also write ``model.fp16.onnx`` (FP16 weights and arithmetic, FP32
            input and output), for GPUs.
        simplify: Run onnxslim on the graph (needs the ``onnxslim`` package).

    Returns:
        Path of ``model.onnx``.

    Raises:
        NotFoundError, DataFormatError, DataValidationError: As
            :func:`cv.models.load.build_torch_model`.
        ConfigError: If the input size is not a multiple of 32 or onnxslim is
            asked for and not installed.
    """
    import onnx
    import torch

    d = Path(model_dir)
    record = load_record(d)
    if record.input_size % 32:
        raise ConfigError(
            f"input size {record.input_size} is not a multiple of 32 (the network's stride)",
            path=d / "model.json",
            field="input_size",
        )
    model, record = build_torch_model(d, record)
    wrapper = _raw_output_model(model.fuse(verbose=False) if hasattr(model, "fuse") else model)
    dummy = torch.zeros(1, 3, record.input_size, record.input_size)
    out = d / ONNX_FILE
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    with torch.no_grad():
        out_shape = tuple(wrapper(dummy).shape)
        # The TorchScript-based exporter (as ultralytics uses): the dynamo one needs
        # onnxscript, and here the head's anchor grid (fixed by the square input
        # size) folds into constants. Its deprecation notice is expected.
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", "You are using the legacy TorchScript", DeprecationWarning
            )
            torch.onnx.export(
                wrapper,
                (dummy,),
                str(out),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes=axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    graph = onnx.load(str(out))
    if simplify:
        graph = _simplify(graph)
    # Tracing leaves the output's class and anchor axes symbolic; they are fixed
    # by the input size, and Triton and the class check read them.
    dims = graph.graph.output[0].type.tensor_type.shape.dim
    for dim, size in zip(dims[1:], out_shape[1:], strict=True):
        dim.Clear()
        dim.dim_value = size
    _set_metadata(graph, record)
    onnx.checker.check_model(graph)
    onnx.save(graph, str(out))
    _add_file(record, d, ONNX_ROLE, ONNX_FILE)
    log.info("exported %s (opset %d, dynamic batch %s)", out, opset, dynamic_batch)
    if half:
        export_fp16(d)
    return out


def _simplify(graph: Any) -> Any:
    try:
        import onnxslim
    except ImportError:
        raise ConfigError(
            "--simplify needs the onnxslim package (pip install onnxslim)", field="simplify"
        ) from None
    return onnxslim.slim(graph)


def _set_metadata(graph: Any, record: WeightsRecord) -> None:
    """Stores the class names and input size in the graph, for tools that read only it."""
    meta = {
        "name": record.name,
        "architecture": record.architecture,
        "classes": json.dumps(record.classes),
        "input_size": str(record.input_size),
        "preprocessing": record.preprocessing.model_dump_json(),
    }
    del graph.metadata_props[:]
    for k, v in meta.items():
        prop = graph.metadata_props.add()
        prop.key, prop.value = k, v


def export_fp16(model_dir: str | PathLike[str]) -> Path:
    """Writes ``model.fp16.onnx`` from ``model.onnx``: FP16 inside, FP32 input and output.

    Keeping FP32 at the edges lets the same NumPy pre- and post-processing feed
    both graphs; the casts cost nothing next to the convolutions on a GPU.
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    d = Path(model_dir)
    record = load_record(d)
    src = d / record.files.get(ONNX_ROLE, ONNX_FILE)
    graph = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    out = d / FP16_FILE
    onnx.save(graph, str(out))
    _add_file(record, d, "onnx_fp16", FP16_FILE)
    return out


def quantize_int8(
    model_dir: str | PathLike[str],
    calibration_images: Sequence[NDArray[np.uint8]],
    *,
    per_channel: bool = True,
) -> Path:
    """Writes ``model.int8.onnx``: ONNX Runtime static QDQ quantisation of ``model.onnx``.

    Only convolutions are quantised (weights signed per channel, activations
    unsigned, calibrated by min-max on ``calibration_images``). The head's box decoding after the
    last convolutions stays FP32: its output mixes pixel coordinates (0 to S)
    and scores (0 to 1) in one tensor, which one INT8 scale cannot hold.

    Args:
        model_dir: Model directory with an exported ``model.onnx``.
        calibration_images: ``(H, W, 3) uint8`` RGB images like those served
            (a few dozen suffice).
        per_channel: Per-output-channel weight scales (better accuracy).

    Raises:
        DataValidationError: If no calibration image is given.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader

    from cv.models.runtime import preprocess

    if not calibration_images:
        raise DataValidationError("INT8 calibration needs at least one image", field="calib")
    d = Path(model_dir)
    record = load_record(d)
    src = d / record.files.get(ONNX_ROLE, ONNX_FILE)
    graph = onnx.load(str(src))
    # The DFL convolution turns box-bin probabilities into distances: keep it exact.
    exclude = [n.name for n in graph.graph.node if n.op_type == "Conv" and "dfl" in n.name]

    class Reader(CalibrationDataReader):
        """Feeds letterboxed calibration images to the calibrator, one at a time."""

        def __init__(self) -> None:
            self._it = iter(calibration_images)

        def get_next(self) -> dict[str, NDArray[np.float32]] | None:
            image = next(self._it, None)
            if image is None:
                return None
            tensor, _ = preprocess(
                [image], size=record.input_size, preprocessing=record.preprocessing
            )
            return {INPUT_NAME: tensor}

        def rewind(self) -> None:
            self._it = iter(calibration_images)

    reader = Reader()
    out = d / INT8_FILE
    # The quantiser logs every bias copy and scale change at INFO on the root logger.
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        _quantize(src, out, reader, per_channel=per_channel, exclude=exclude)
    finally:
        root.setLevel(level)
    _add_file(record, d, "onnx_int8", INT8_FILE)
    return out


def _quantize(src: Path, out: Path, reader: Any, *, per_channel: bool, exclude: list[str]) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="cv-int8-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out),
            reader,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv"],
            per_channel=per_channel,
            # Unsigned activations with signed weights (U8S8) is ONNX Runtime's fast
            # x86 path: on the 2-core AVX-512 VNNI development CPU, the default model
            # at 384 px ran about twice as fast as with signed activations (S8S8).
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )


@dataclass(slots=True)
class ParityReport:
    """How closely ONNX Runtime reproduces PyTorch on the same input tensors.

    Attributes:
        onnx_file: The graph compared.
        images: Number of images compared.
        max_abs_diff: Largest ``|onnx - torch|`` over the raw outputs.
        max_rel_diff: Largest ``|onnx - torch| / max(|torch|, 1e-6)`` over raw
            elements whose torch value is not tiny (above ``atol``).
        worst_excess: Largest ``|onnx - torch| / (atol + rtol·|torch|)``; above 1
            fails.
        detections_torch: Detections PyTorch made.
        detections_onnx: Detections ONNX Runtime made.
        matched: Detections matched one-to-one (same class, IoU ≥ ``min_iou``).
        min_iou: Lowest IoU among matched pairs (1.0 when none).
        max_score_diff: Largest score difference among matched pairs.
        atol: Absolute tolerance used.
        rtol: Relative tolerance used.
        passed: Raw outputs within tolerance and every detection matched.
        problems: What failed, in words.
    """

    onnx_file: str
    images: int
    max_abs_diff: float
    max_rel_diff: float
    worst_excess: float
    detections_torch: int
    detections_onnx: int
    matched: int
    min_iou: float
    max_score_diff: float
    atol: float
    rtol: float
    passed: bool
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return asdict(self)


def _match_detections(
    a: Sequence[Any], b: Sequence[Any], min_iou: float
) -> tuple[int, float, float]:
    """Greedy one-to-one matching of two detection lists by class and IoU."""
    if not a or not b:
        return 0, 1.0, 0.0
    boxes_a = np.array([x.box for x in a])
    boxes_b = np.array([x.box for x in b])
    iou = box_iou(boxes_a, boxes_b)
    same = np.array([x.class_id for x in a])[:, None] == np.array([x.class_id for x in b])[None]
    iou = np.where(same, iou, 0.0)
    matched, worst_iou, worst_score = 0, 1.0, 0.0
    used = np.zeros(len(b), dtype=bool)
    for i in range(len(a)):  # a is sorted by score; one vectorised row per detection
        row = np.where(used, -1.0, iou[i])
        j = int(row.argmax())
        if row[j] >= min_iou:
            used[j] = True
            matched += 1
            worst_iou = min(worst_iou, float(row[j]))
            worst_score = max(worst_score, abs(a[i].score - b[j].score))
    return matched, worst_iou, worst_score


def _raw_outputs(
    model_dir: str | PathLike[str], images: Sequence[NDArray[np.uint8]], onnx_file: str | None
) -> tuple[Any, Any, NDArray[np.float32], NDArray[np.float32], list[Any]]:
    """PyTorch's and the graph's raw outputs on the same letterboxed tensors:
    ``(torch_det, onnx_det, raw_torch, raw_onnx, metas)``."""
    from cv.models.load import load_onnx_detector, load_torch_detector

    if not images:
        raise DataValidationError("the parity check needs at least one image", field="images")
    torch_det = load_torch_detector(model_dir, device="cpu")
    onnx_det = load_onnx_detector(
        model_dir, providers=["CPUExecutionProvider"], onnx_file=onnx_file
    )
    raw_t, raw_o, metas = [], [], []
    for start in range(0, len(images), 8):
        tensor, m = torch_det.preprocess(images[start : start + 8])
        raw_t.append(torch_det.infer(tensor))
        raw_o.append(onnx_det.infer(tensor))
        metas.extend(m)
    return torch_det, onnx_det, np.concatenate(raw_t), np.concatenate(raw_o), metas


@dataclass(slots=True)
class _DetectionParity:
    detections_torch: int = 0
    detections_onnx: int = 0
    matched: int = 0
    min_iou: float = 1.0
    max_score_diff: float = 0.0


def _compare_detections(
    torch_det: Any,
    onnx_det: Any,
    raw: tuple[NDArray[np.float32], NDArray[np.float32]],
    metas: list[Any],
    *,
    conf: float,
    iou: float,
    min_iou: float,
    slack: float,
    problems: list[str],
) -> _DetectionParity:
    """Both runtimes' detections matched one to one (same class, IoU ≥ ``min_iou``),
    leaving aside those within ``slack`` of ``conf``, which rounding may put on either
    side; an image where some do not match is added to ``problems``."""
    out = _DetectionParity()
    det_t = torch_det.postprocess(raw[0], metas, conf=conf, iou=iou)
    det_o = onnx_det.postprocess(raw[1], metas, conf=conf, iou=iou)
    for i, (a, b) in enumerate(zip(det_t, det_o, strict=True)):
        a_sure = [x for x in a if x.score > conf + slack]
        b_sure = [x for x in b if x.score > conf + slack]
        out.detections_torch += len(a)
        out.detections_onnx += len(b)
        m, w_iou, w_score = _match_detections(a_sure, b, min_iou)
        m_back, _, _ = _match_detections(b_sure, a, min_iou)
        out.matched += m
        out.min_iou = min(out.min_iou, w_iou)
        out.max_score_diff = max(out.max_score_diff, w_score)
        if m < len(a_sure) or m_back < len(b_sure):
            problems.append(
                f"image {i}: torch made {len(a)} detections, onnx {len(b)}, "
                f"only {m} matched at IoU >= {min_iou}"
            )
    return out


def _nonfinite(
    raw: tuple[NDArray[np.float32], NDArray[np.float32]], why: str, problems: list[str]
) -> None:
    """Adds to ``problems`` where the graph's raw outputs are not finite but torch's are."""
    rt, ro = raw
    bad = ~np.isfinite(ro) & np.isfinite(rt)
    if bad.any():
        problems.append(
            f"onnx gave {int(bad.sum())} non-finite raw outputs ({why}) where torch's are finite"
        )


_R = TypeVar("_R", bound="ParityReport")


def _finish_report(
    report_cls: type[_R],
    model_dir: str | PathLike[str],
    what: str,
    *,
    raise_on_failure: bool,
    dets: _DetectionParity,
    problems: list[str],
    **fields: Any,
) -> _R:
    """The report of a parity check from its figures and ``dets``; raises
    :class:`ParityError` (``what`` does not reproduce PyTorch) on failure when asked."""
    report = report_cls(
        **fields,
        detections_torch=dets.detections_torch,
        detections_onnx=dets.detections_onnx,
        matched=dets.matched,
        min_iou=dets.min_iou,
        max_score_diff=dets.max_score_diff,
        passed=not problems,
        problems=problems,
    )
    if problems and raise_on_failure:
        raise ParityError(
            f"{what} does not reproduce PyTorch: " + "; ".join(problems[:3]),
            path=Path(model_dir) / report.onnx_file,
        )
    return report


def parity_check(
    model_dir: str | PathLike[str],
    images: Sequence[NDArray[np.uint8]],
    *,
    atol: float = PARITY_ATOL,
    rtol: float = PARITY_RTOL,
    min_iou: float = PARITY_MIN_IOU,
    conf: float = 0.25,
    iou: float = 0.45,
    onnx_file: str | None = None,
    raise_on_failure: bool = True,
) -> ParityReport:
    """Runs PyTorch and ONNX Runtime (CPU) on the same letterboxed tensors and compares.

    Raw outputs must satisfy ``|onnx - torch| ≤ atol + rtol·|torch|`` element-wise,
    and every detection of one runtime must match one of the other (same class,
    IoU ≥ ``min_iou``), leaving aside detections within ``atol`` of ``conf``,
    which float rounding may put on either side.

    Args:
        model_dir: Model directory with safetensors weights and an ONNX graph.
        images: ``(H, W, 3) uint8`` RGB images.
        atol: Absolute tolerance on raw outputs.
        rtol: Relative tolerance on raw outputs.
        min_iou: Lowest IoU for a matched detection pair.
        conf: Score threshold of the compared detections.
        iou: NMS IoU threshold.
        onnx_file: Graph to check; ``model.onnx`` by default.
        raise_on_failure: Raise :class:`ParityError` when the check fails.

    Raises:
        ParityError: When out of tolerance and ``raise_on_failure``.
    """
    torch_det, onnx_det, rt, ro, metas = _raw_outputs(model_dir, images, onnx_file)
    problems: list[str] = []
    if rt.shape != ro.shape:
        problems.append(f"raw output shapes differ: torch {rt.shape}, onnx {ro.shape}")
        diff = np.full(1, np.inf)
        excess = np.full(1, np.inf)
        rel = np.full(1, np.inf)
    else:
        diff = np.abs(ro.astype(np.float64) - rt)
        mag = np.abs(rt.astype(np.float64))
        excess = diff / (atol + rtol * mag)
        big = mag > atol
        rel = diff[big] / mag[big] if big.any() else np.zeros(1)
        _nonfinite((rt, ro), "NaN or inf", problems)
    worst = float(excess.max())
    if not worst <= 1.0:  # NaN compares False either way: a NaN output fails here too
        problems.append(
            f"raw outputs differ by up to {float(diff.max()):.3g} "
            f"({worst:.3g} times the tolerance atol={atol:g} + rtol={rtol:g}·|torch|)"
        )
    dets = _DetectionParity()
    if rt.shape == ro.shape:
        dets = _compare_detections(
            torch_det, onnx_det, (rt, ro), metas,
            conf=conf, iou=iou, min_iou=min_iou, slack=atol, problems=problems,
        )  # fmt: skip
    return _finish_report(
        ParityReport,
        model_dir,
        "ONNX Runtime",
        raise_on_failure=raise_on_failure,
        dets=dets,
        problems=problems,
        onnx_file=onnx_file or ONNX_FILE,
        images=len(images),
        max_abs_diff=float(diff.max()),
        max_rel_diff=float(rel.max()),
        worst_excess=worst,
        atol=atol,
        rtol=rtol,
    )


@dataclass(slots=True)
class Fp16ParityReport(ParityReport):
    """A :class:`ParityReport` of the FP16 graph, whose tolerance has three parts.

    ``atol`` and ``rtol`` bound the raw box rows (pixels); ``max_rel_diff`` is
    taken over them. ``worst_excess`` is the larger of the boxes' and the scores'.

    Attributes:
        score_atol: Bound on raw class scores and on matched detections' scores.
        iou_required: Lowest IoU of a matched detection pair.
    """

    score_atol: float = FP16_SCORE_ATOL
    iou_required: float = FP16_MIN_IOU


def fp16_parity_check(
    model_dir: str | PathLike[str],
    images: Sequence[NDArray[np.uint8]],
    *,
    box_atol: float = FP16_BOX_ATOL,
    box_rtol: float = FP16_BOX_RTOL,
    score_atol: float = FP16_SCORE_ATOL,
    min_iou: float = FP16_MIN_IOU,
    conf: float = 0.25,
    iou: float = 0.45,
    onnx_file: str = FP16_FILE,
    raise_on_failure: bool = True,
) -> Fp16ParityReport:
    """Runs PyTorch (FP32) and the FP16 graph (ONNX Runtime, CPU) on the same
    letterboxed tensors and compares them at half precision's tolerance.

    Raw outputs must satisfy ``|fp16 - torch| ≤ box_atol + box_rtol·|torch|`` on the
    box rows and ``≤ score_atol`` on the class scores, and be finite where torch's
    are. Every detection of one runtime scoring above ``conf + score_atol`` must
    match one of the other (same class, IoU ≥ ``min_iou``), with scores within
    ``score_atol``. What this proves is that the detections are the same; the
    accuracy change is measured on a dataset (``customs-vision export onnx --half
    --eval``).

    Args:
        model_dir: Model directory with safetensors weights and the FP16 graph.
        images: ``(H, W, 3) uint8`` RGB images.
        box_atol: Absolute tolerance on raw boxes, in input pixels.
        box_rtol: Relative tolerance on raw boxes.
        score_atol: Absolute tolerance on raw and detection scores.
        min_iou: Lowest IoU for a matched detection pair.
        conf: Score threshold of the compared detections.
        iou: NMS IoU threshold.
        onnx_file: Graph to check; ``model.fp16.onnx`` by default.
        raise_on_failure: Raise :class:`ParityError` when the check fails.

    Raises:
        ParityError: When out of tolerance and ``raise_on_failure``.
        DataValidationError: If no image is given.
    """
    torch_det, onnx_det, rt, ro, metas = _raw_outputs(model_dir, images, onnx_file)
    problems: list[str] = []
    max_abs = max_rel = worst = float("inf")
    dets = _DetectionParity()
    if rt.shape != ro.shape:
        problems.append(f"raw output shapes differ: torch {rt.shape}, onnx {ro.shape}")
    else:
        diff = np.abs(ro.astype(np.float64) - rt)
        mag = np.abs(rt[:, :4].astype(np.float64))
        box_excess = diff[:, :4] / (box_atol + box_rtol * mag)
        score_excess = diff[:, 4:] / score_atol
        big = mag > box_atol
        max_abs = float(diff.max())
        max_rel = float((diff[:, :4][big] / mag[big]).max()) if big.any() else 0.0
        worst = max(float(box_excess.max()), float(score_excess.max()))
        _nonfinite((rt, ro), "NaN or inf; FP16 overflows above 65504", problems)
        if not float(box_excess.max()) <= 1.0:  # NaN fails too
            problems.append(
                f"raw boxes differ by up to {float(diff[:, :4].max()):.3g} px "
                f"(beyond {box_atol:g} px + {box_rtol:g}·|torch|)"
            )
        if not float(score_excess.max()) <= 1.0:
            problems.append(
                f"raw scores differ by up to {float(diff[:, 4:].max()):.3g} (beyond {score_atol:g})"
            )
        dets = _compare_detections(
            torch_det, onnx_det, (rt, ro), metas,
            conf=conf, iou=iou, min_iou=min_iou, slack=score_atol, problems=problems,
        )  # fmt: skip
        if dets.max_score_diff > score_atol:
            problems.append(
                f"matched detections' scores differ by up to {dets.max_score_diff:.3g} "
                f"(beyond {score_atol:g})"
            )
    return _finish_report(
        Fp16ParityReport,
        model_dir,
        "the FP16 graph",
        raise_on_failure=raise_on_failure,
        dets=dets,
        problems=problems,
        onnx_file=onnx_file,
        images=len(images),
        max_abs_diff=max_abs,
        max_rel_diff=max_rel,
        worst_excess=worst,
        atol=box_atol,
        rtol=box_rtol,
        score_atol=score_atol,
        iou_required=min_iou,
    )
