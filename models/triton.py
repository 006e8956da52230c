"""A Triton Inference Server model repository for an exported detector.

For users who outgrow one machine: Triton serves the same ``model.onnx`` with
its ONNX Runtime backend (CPU or GPU) or its OpenVINO backend (CPU only; the
fastest CPU path measured here), batching requests dynamically. Layout::

    <repo>/<name>/config.pbtxt
    <repo>/<name>/customs-vision.json      classes, input size, preprocessing
    <repo>/<name>/<version>/model.onnx

Clients send the letterboxed tensor (``images``, see :mod:`cv.models.export`)
and decode ``output0`` with :meth:`cv.models.runtime.Detector.postprocess`;
``customs-vision.json`` beside the config names the classes and preprocessing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Literal

from cv.errors import ConfigError, NotFoundError
from cv.models.export import INPUT_NAME, OUTPUT_NAME
from cv.models.load import ONNX_FILE, ONNX_ROLE, load_record

Kind = Literal["KIND_CPU", "KIND_GPU"]
Backend = Literal["onnxruntime", "openvino"]
BACKENDS: tuple[Backend, ...] = ("onnxruntime", "openvino")


def _dims(shape: Sequence[int]) -> str:
    return "[ " + ", ".join(str(int(d)) for d in shape) + " ]"


def triton_config(
    *,
    name: str,
    input_size: int,
    output_shape: Sequence[int],
    max_batch_size: int,
    preferred_batch_sizes: Sequence[int],
    max_queue_delay_us: int,
    instance_count: int,
    kind: Kind,
    backend: Backend = "onnxruntime",
) -> str:
    """The text of ``config.pbtxt`` (protobuf text format).

    Args:
        name: Model name in the repository.
        input_size: Square input side ``S``.
        output_shape: ``(4 + nc, A)``, the output without its batch axis.
        max_batch_size: Largest batch Triton forms; dims below omit the batch axis.
        preferred_batch_sizes: Batch sizes the scheduler aims for.
        max_queue_delay_us: Longest a request waits for a batch to fill.
        instance_count: Model instances per device.
        kind: ``KIND_CPU`` or ``KIND_GPU``.
        backend: ``onnxruntime`` (the ``onnxruntime_onnx`` platform) or ``openvino``
            (which reads the ONNX graph itself: its file is named, as the backend
            has no default for ONNX; the full config is written, as it completes none).
    """
    preferred = ", ".join(str(int(b)) for b in preferred_batch_sizes)
    if backend == "openvino":
        runner = 'backend: "openvino"\ndefault_model_filename: "model.onnx"\n'
    else:
        runner = 'platform: "onnxruntime_onnx"\n'
    return (
        f'name: "{name}"\n'
        f"{runner}"
        f"max_batch_size: {max_batch_size}\n"
        "input [\n"
        "  {\n"
        f'    name: "{INPUT_NAME}"\n'
        "    data_type: TYPE_FP32\n"
        "    format: FORMAT_NCHW\n"
        f"    dims: {_dims((3, input_size, input_size))}\n"
        "  }\n"
        "]\n"
        "output [\n"
        "  {\n"
        f'    name: "{OUTPUT_NAME}"\n'
        "    data_type: TYPE_FP32\n"
        f"    dims: {_dims(output_shape)}\n"
        "  }\n"
        "]\n"
        "dynamic_batching {\n"
        f"  preferred_batch_size: [ {preferred} ]\n"
        f"  max_queue_delay_microseconds: {max_queue_delay_us}\n"
        "}\n"
        "instance_group [\n"
        "  {\n"
        f"    count: {instance_count}\n"
        f"    kind: {kind}\n"
        "  }\n"
        "]\n"
    )


def write_triton_repository(
    model_dir: str | PathLike[str],
    repo_dir: str | PathLike[str],
    *,
    name: str,
    version: int = 1,
    max_batch_size: int = 16,
    preferred_batch_sizes: Sequence[int] = (4, 8),
    max_queue_delay_us: int = 2000,
    instance_count: int = 1,
    kind: Kind = "KIND_CPU",
    backend: Backend = "onnxruntime",
) -> Path:
    """Writes ``<repo>/<name>/config.pbtxt`` and ``<version>/model.onnx``, plus our metadata.

    Args:
        model_dir: An exported model directory (``model.onnx`` with a dynamic batch axis).
        repo_dir: The Triton model repository (created; other models in it are kept).
        name: The model's name in the repository.
        version: Version folder number (≥ 1).
        max_batch_size: Largest batch Triton forms.
        preferred_batch_sizes: Batch sizes the dynamic batcher aims for (each ≤ max).
        max_queue_delay_us: Longest wait for a batch to fill, in microseconds.
        instance_count: Model instances per device.
        kind: ``KIND_CPU`` or ``KIND_GPU``.
        backend: ``onnxruntime`` or ``openvino`` (``KIND_CPU`` only). OpenVINO runs
            in bfloat16 on CPUs that have it unless told otherwise; thresholds
            chosen on FP32 scores then move a little (see the README).

    Returns:
        The model's folder ``<repo>/<name>``.

    Raises:
        NotFoundError: If the model directory or its ONNX graph is missing.
        ConfigError: If the graph has a fixed batch axis or an option is out of range.
    """
    import onnx

    if version < 1:
        raise ConfigError(f"version must be at least 1, got {version}", field="version")
    if max_batch_size < 1 or any(not 1 <= b <= max_batch_size for b in preferred_batch_sizes):
        raise ConfigError(
            f"preferred batch sizes {list(preferred_batch_sizes)} must lie in "
            f"[1, max_batch_size={max_batch_size}]",
            field="preferred_batch_sizes",
        )
    if kind not in ("KIND_CPU", "KIND_GPU"):
        raise ConfigError(f"kind must be KIND_CPU or KIND_GPU, got {kind!r}", field="kind")
    if backend not in BACKENDS:
        raise ConfigError(
            f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}", field="backend"
        )
    if backend == "openvino" and kind != "KIND_CPU":
        raise ConfigError("Triton's OpenVINO backend runs on the CPU only (KIND_CPU)", field="kind")
    d = Path(model_dir)
    record = load_record(d)
    src = d / record.files.get(ONNX_ROLE, ONNX_FILE)
    if not src.is_file():
        raise NotFoundError(f"no ONNX graph; run `customs-vision export onnx {d}` first", path=src)
    graph = onnx.load(str(src), load_external_data=False)
    in_dims = graph.graph.input[0].type.tensor_type.shape.dim
    out_dims = graph.graph.output[0].type.tensor_type.shape.dim
    if in_dims[0].dim_value:  # a number, not a named dynamic axis
        raise ConfigError(
            "the graph has a fixed batch axis; export it with a dynamic batch axis",
            path=src,
            field="images.shape[0]",
        )
    output_shape = [dim.dim_value for dim in out_dims[1:]]
    model_root = Path(repo_dir) / name
    version_dir = model_root / str(version)
    version_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, version_dir / "model.onnx")
    (model_root / "config.pbtxt").write_text(
        triton_config(
            name=name,
            input_size=record.input_size,
            output_shape=output_shape,
            max_batch_size=max_batch_size,
            preferred_batch_sizes=preferred_batch_sizes,
            max_queue_delay_us=max_queue_delay_us,
            instance_count=instance_count,
            kind=kind,
            backend=backend,
        )
    )
    (model_root / "customs-vision.json").write_text(
        json.dumps(
            {
                "name": record.name,
                "architecture": record.architecture,
                "classes": record.classes,
                "input_size": record.input_size,
                "preprocessing": record.preprocessing.model_dump(mode="json"),
                "version": version,
                "backend": backend,
            },
            indent=2,
        )
        + "\n"
    )
    return model_root
