"""Loading a model directory into a runnable :class:`~cv.models.runtime.Detector`.

The record (``model.json``) is read first and every file it names is checked
against its sha256, so corrupt or swapped weights fail before anything runs.
The PyTorch runtime builds the network with the registered builder named by
``record.architecture`` and loads ``model.safetensors`` strictly; the ONNX
runtime opens ``model.onnx`` in an ONNX Runtime session, the OpenVINO runtime
compiles the same file for the CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar, get_args

from cv.errors import DataFormatError, DataValidationError, NotFoundError
from cv.models.weights import WeightsRecord, read_record

if TYPE_CHECKING:
    import torch

    from cv.models.runtime import (
        Detector,
        OnnxDetector,
        OpenVinoDetector,
        OpenVinoPrecision,
        TorchDetector,
    )

T = TypeVar("T")

Runtime = Literal["onnx", "openvino", "torch"]
RUNTIMES: tuple[str, ...] = get_args(Runtime)

STATE_DICT_ROLE = "state_dict"
"""Role of the safetensors file in ``WeightsRecord.files``."""
ONNX_ROLE = "onnx"
"""Role of the FP32 ONNX graph in ``WeightsRecord.files``."""
STATE_DICT_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"


def _model_dir(model_dir: str | PathLike[str]) -> Path:
    d = Path(model_dir)
    if not d.exists():
        raise NotFoundError("model directory does not exist", path=d)
    if not d.is_dir():
        raise NotFoundError("not a model directory (expected a folder with model.json)", path=d)
    return d


def load_record(model_dir: str | PathLike[str]) -> WeightsRecord:
    """Reads and verifies ``model.json`` of a model directory (sha256 of every file).

    Raises:
        NotFoundError: If the directory, its record or a named file is missing.
        ConfigError: If the record is invalid.
        DataFormatError: If a file does not match its sha256.
    """
    return read_record(_model_dir(model_dir), verify=True)


def build_torch_model(
    model_dir: str | PathLike[str], record: WeightsRecord | None = None
) -> tuple[torch.nn.Module, WeightsRecord]:
    """Builds the record's architecture and loads its safetensors weights strictly.

    Returns:
        The network in eval mode, on the CPU, and its record.

    Raises:
        NotFoundError: If the directory or its weights are missing.
        DataFormatError: If the weights are corrupt, or do not fit the network
            built for the record's classes (the message says which).
    """
    from cv.models.registry import build_model
    from cv.models.weights import load_state_dict

    d = _model_dir(model_dir)
    record = record or read_record(d, verify=True)
    name = record.files.get(STATE_DICT_ROLE)
    if name is None:
        raise NotFoundError(
            f"model.json names no {STATE_DICT_ROLE!r} file (safetensors weights)",
            path=d / "model.json",
        )
    model = build_model(
        record.architecture, num_classes=len(record.classes), class_names=record.classes
    )
    _check_class_count(model, d / name, len(record.classes))
    load_state_dict(model, d / name)
    return model.eval(), record


def _check_class_count(model: torch.nn.Module, weights: Path, num_classes: int) -> None:
    """Says plainly when the weights were trained for another number of classes."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(weights), framework="pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataFormatError(f"not a readable safetensors file ({exc})", path=weights) from None
    head = getattr(model, "model", [None])[-1]
    nc_model = getattr(head, "nc", None)
    if nc_model is None:
        return
    # The class-logit layers are the head parameters whose first axis is nc: YOLO's
    # cv3 convolutions, RT-DETR's score heads.
    for key, tensor in model.state_dict().items():
        class_layer = ".cv3." in key or "score_head." in key
        if class_layer and key.endswith(".bias") and tensor.shape[0] == nc_model:
            got = shapes.get(key)
            if got is not None and got[0] != num_classes:
                raise DataValidationError(
                    f"the weights predict {got[0]} classes but model.json lists "
                    f"{num_classes}: the classes do not match the model",
                    path=weights,
                    field=key,
                )
            return


def load_torch_detector(
    model_dir: str | PathLike[str], *, device: str = "auto", max_batch: int = 16
) -> TorchDetector:
    """A :class:`~cv.models.runtime.TorchDetector` on a model directory's safetensors."""
    from cv.models.runtime import TorchDetector

    model, record = build_torch_model(model_dir)
    return TorchDetector(model, record, device=device, max_batch=max_batch)


def load_onnx_detector(
    model_dir: str | PathLike[str],
    *,
    providers: Sequence[str] | None = None,
    onnx_file: str | None = None,
    max_batch: int = 16,
    intra_op_threads: int | None = None,
    spin_wait: bool = True,
) -> OnnxDetector:
    """An :class:`~cv.models.runtime.OnnxDetector` on a model directory's ONNX graph.

    Args:
        model_dir: The model directory.
        providers: ONNX Runtime execution providers; TensorRT / CUDA when present,
            else CPU by default.
        onnx_file: Graph file in the directory; ``model.onnx`` (the record's
            ``onnx`` role) by default, ``model.int8.onnx`` / ``model.fp16.onnx``
            for the quantised variants.
        max_batch: Largest batch per session run.
        intra_op_threads: Threads per operator; physical cores by default.
        spin_wait: Let idle ONNX Runtime threads spin (see
            :func:`cv.models.runtime.make_session`).

    Raises:
        NotFoundError: If the directory or the graph is missing (run
            ``customs-vision export onnx``).
        DataFormatError: If the graph is corrupt.
        DataValidationError: If its output does not fit the record's classes.
    """
    from cv.models.runtime import OnnxDetector, make_session

    record, path = _verified_graph(model_dir, onnx_file)
    session = open_graph(
        "ONNX Runtime",
        path,
        lambda p: make_session(
            p, providers=providers, intra_op_threads=intra_op_threads, spin_wait=spin_wait
        ),
    )
    detector = OnnxDetector(session, record, max_batch=max_batch)
    _check_graph_classes(detector.output_dims, record, path)
    return detector


def open_graph(engine: str, path: Path, opener: Callable[[Path], T]) -> T:
    """``opener(path)``, the engine's own errors for an unreadable graph (ONNX Runtime's
    untyped Fail / InvalidGraph, OpenVINO's RuntimeError) turned into a
    :class:`~cv.errors.DataFormatError` naming the file; our own errors pass."""
    try:
        return opener(path)
    except Exception as exc:
        if exc.__class__.__module__.startswith("cv."):
            raise
        raise DataFormatError(f"{engine} cannot load the graph ({exc})", path=path) from None


def _verified_graph(
    model_dir: str | PathLike[str], onnx_file: str | None
) -> tuple[WeightsRecord, Path]:
    """The record and the ONNX graph it names, both checked against their sha256."""
    d = _model_dir(model_dir)
    record = read_record(d, verify=True)
    name = onnx_file or record.files.get(ONNX_ROLE, ONNX_FILE)
    path = d / name
    if not path.is_file():
        raise NotFoundError(
            f"no ONNX graph {name} in the model directory; "
            f"run `customs-vision export onnx {d}` first",
            path=path,
        )
    if name not in record.sha256:
        raise DataValidationError(
            f"{name} is not listed in model.json, so it cannot be verified; "
            "re-run `customs-vision export onnx`",
            path=path,
        )
    return record, path


def _check_graph_classes(
    out_shape: Sequence[int | None], record: WeightsRecord, path: Path
) -> None:
    """The graph's output ``(N, 4 + nc, A)`` must have the record's class count."""
    nc_graph = out_shape[1] - 4 if len(out_shape) == 3 and isinstance(out_shape[1], int) else None
    if nc_graph is not None and nc_graph != len(record.classes):
        raise DataValidationError(
            f"the graph predicts {nc_graph} classes but model.json lists "
            f"{len(record.classes)}: the classes do not match the model",
            path=path,
        )


def load_openvino_detector(
    model_dir: str | PathLike[str],
    *,
    precision: OpenVinoPrecision = "f32",
    onnx_file: str | None = None,
    max_batch: int = 16,
    threads: int | None = None,
) -> OpenVinoDetector:
    """An :class:`~cv.models.runtime.OpenVinoDetector` on a model directory's ONNX graph.

    Args:
        model_dir: The model directory.
        precision: ``f32`` (default), ``bf16`` or ``auto`` (bfloat16 where the CPU
            has it); see :func:`cv.models.runtime.compile_openvino`.
        onnx_file: Graph file in the directory; ``model.onnx`` by default.
        max_batch: Largest batch per inference.
        threads: Inference threads; physical cores by default.

    Raises:
        NotFoundError: If the directory or the graph is missing.
        DataFormatError: If OpenVINO cannot read or compile the graph.
        DataValidationError: If its output does not fit the record's classes.
        ConfigError: If OpenVINO is not installed or the precision is not available.
    """
    from cv.models.runtime import OpenVinoDetector, compile_openvino

    record, path = _verified_graph(model_dir, onnx_file)
    compiled = open_graph(
        "OpenVINO", path, lambda p: compile_openvino(p, precision=precision, threads=threads)
    )
    detector = OpenVinoDetector(compiled, record, max_batch=max_batch)
    _check_graph_classes(detector.output_dims, record, path)
    return detector


def check_runtime_options(
    runtime: str, precision: str, *, precisions: Sequence[str] | None = None
) -> None:
    """Checks a command's ``--runtime`` and ``--precision`` before anything loads.

    Args:
        runtime: One of :data:`RUNTIMES`.
        precision: ``f32``, or another OpenVINO precision with runtime ``openvino``.
        precisions: The known precisions, when ``precision`` itself is to be checked
            here too (else compiling the model refuses an unknown one).

    Raises:
        ConfigError: If either is unknown, or a precision is given to another runtime.
    """
    from cv.errors import ConfigError

    if runtime not in RUNTIMES:
        raise ConfigError(
            f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}", field="--runtime"
        )
    if precisions is not None and precision not in precisions:
        raise ConfigError(
            f"unknown precision {precision!r}; use one of {', '.join(precisions)}",
            field="--precision",
        )
    if precision != "f32" and runtime != "openvino":
        raise ConfigError(
            f"--precision {precision} applies to --runtime openvino only", field="--precision"
        )


def load_detector(
    model_dir: str | PathLike[str],
    *,
    runtime: Runtime = "onnx",
    device: str = "auto",
    providers: Sequence[str] | None = None,
    max_batch: int = 16,
    spin_wait: bool = True,
    precision: OpenVinoPrecision = "f32",
    threads: int | None = None,
) -> Detector:
    """Loads a model directory for inference.

    Args:
        model_dir: Folder with ``model.json`` and the files it names.
        runtime: ``onnx`` (ONNX Runtime, serving), ``openvino`` (OpenVINO on the
            CPU, serving) or ``torch`` (PyTorch).
        device: For ``torch``: ``auto`` (CUDA when available), ``cpu``, ``cuda``...
        providers: For ``onnx``: execution providers in order of preference.
        max_batch: Largest batch handed to the network at once.
        spin_wait: For ``onnx``: let idle threads spin; a server sharing its cores
            with request handling turns it off.
        precision: For ``openvino``: ``f32`` (default), ``bf16`` or ``auto``.
        threads: For ``onnx`` and ``openvino``: threads per inference (physical
            cores by default); PyTorch's pool is process-wide and left as it is.

    Raises:
        NotFoundError: Missing directory, record, weights or ONNX graph.
        DataFormatError: Corrupt weights (sha256 mismatch, unreadable file).
        DataValidationError: The record's classes do not match the weights.
        ConfigError: Unknown runtime or architecture, invalid record.
    """
    from cv.errors import ConfigError

    if runtime == "onnx":
        return load_onnx_detector(
            model_dir,
            providers=providers,
            max_batch=max_batch,
            spin_wait=spin_wait,
            intra_op_threads=threads,
        )
    if runtime == "openvino":
        return load_openvino_detector(
            model_dir, precision=precision, max_batch=max_batch, threads=threads
        )
    if runtime == "torch":
        return load_torch_detector(model_dir, device=device, max_batch=max_batch)
    raise ConfigError(
        f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}", field="runtime"
    )


def save_model(
    model: torch.nn.Module, record: WeightsRecord, model_dir: str | PathLike[str]
) -> WeightsRecord:
    """Writes a model directory: ``model.safetensors`` and ``model.json``.

    The record's ``files`` gains the ``state_dict`` role; files it already names
    (an ONNX graph from an earlier export) are kept and re-hashed, so export again
    after saving new weights.

    Returns:
        The record as written (sha256 filled in).
    """
    from cv.models.weights import save_state_dict, write_record

    d = Path(model_dir)
    d.mkdir(parents=True, exist_ok=True)
    save_state_dict(model, d / STATE_DICT_FILE)
    record.files = {**record.files, STATE_DICT_ROLE: STATE_DICT_FILE}
    write_record(record, d)
    return record


def init_model_dir(
    model_dir: str | PathLike[str],
    *,
    architecture: str,
    classes: Sequence[str],
    input_size: int,
    name: str | None = None,
    seed: int = 0,
) -> WeightsRecord:
    """Writes a model directory holding an untrained network (tests, benchmarks).

    Args:
        model_dir: Folder to create.
        architecture: Registered builder name (``yolo11n``).
        classes: Class names.
        input_size: Square input side in pixels (a multiple of 32).
        name: Model name; ``<architecture>-untrained`` by default.
        seed: Seed of the weight initialisation.
    """
    from cv.models.registry import build_model

    model = build_model(
        architecture, num_classes=len(classes), seed=seed, class_names=list(classes)
    )
    record = WeightsRecord(
        name=name or f"{architecture}-untrained",
        architecture=architecture,
        classes=list(classes),
        input_size=input_size,
        recipe={"trained": False, "seed": seed},
    )
    return save_model(model, record, model_dir)


DEFAULT_MODEL_NAME = "xray-yolo11n"


def default_model_dir() -> Path:
    """Where the shipped default X-ray detector lives: ``models/zoo/xray-yolo11n``.

    It may not exist (before the default model is trained); callers check.
    """
    return Path(__file__).resolve().parent / "zoo" / DEFAULT_MODEL_NAME
