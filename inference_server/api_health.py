"""Health, model metadata and metrics, in the Open Inference Protocol (KServe v2) form.

::

    GET /v2                      server metadata
    GET /v2/health/live          the process answers (liveness probe)
    GET /v2/health/ready         database reachable and a model loaded (readiness probe)
    GET /v2/models/xray          model metadata: versions, platform, inputs, outputs
    GET /v2/models/xray/ready    the model is loaded and warmed up
    GET /metrics                 Prometheus text format

Probes and metrics need no token: Kubernetes and Prometheus call them, and they
reveal nothing about scans. An unready server answers 503 with
``{"ready": false, "detail": ..., "request_id": ...}``: the route raises
:class:`NotReady`, which :func:`cv.inference_server.app.add_error_handlers` answers
as it answers every other error.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from sqlalchemy import text

from cv.inference_server import metrics
from cv.inference_server.deps import ServicesDep
from cv.inference_server.modelhost import SERVED_NAME, LoadedModel

router = APIRouter(tags=["health"])

_PLATFORMS = {
    "onnx": "onnxruntime_onnx",
    "openvino": "openvino_onnx",
    "torch": "pytorch_libtorch",
}
_STRIDES = (8, 16, 32)  # the YOLO head's feature strides: anchors = sum((S / s)^2)


class NotReady(Exception):
    """The server cannot take scans now (the readiness probe's 503); the message says why."""


def _server_version() -> str:
    try:
        return version("customs-vision")
    except PackageNotFoundError:
        return "0+unknown"


@router.get("/v2")
def server_metadata() -> dict[str, Any]:
    """Server name, version and protocol extensions."""
    return {"name": "customs-vision", "version": _server_version(), "extensions": []}


@router.get("/v2/health/live")
def live() -> dict[str, bool]:
    """Liveness: the process serves HTTP."""
    return {"live": True}


@router.get("/v2/health/ready")
def ready(services: ServicesDep) -> dict[str, bool]:
    """Readiness: the database answers and a model is loaded.

    Raises:
        NotReady: Otherwise, saying why (a 503).
    """
    problems = []
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means not ready
        problems.append(f"database unreachable ({type(exc).__name__})")
    if not services.models.ready:
        problems.append(f"model {SERVED_NAME!r} not loaded")
    if problems:
        raise NotReady("; ".join(problems))
    return {"ready": True}


def _loaded(services: ServicesDep, name: str) -> LoadedModel:
    if name != SERVED_NAME:
        raise HTTPException(
            404, detail=f"model: no model {name!r}; this server has {SERVED_NAME!r}"
        )
    return services.models.active


def _output_columns(detector: Any, size: int) -> int:
    """Columns of the raw output: as the ONNX graph states them (RT-DETR: one per
    object query), else YOLO's anchor points at ``size``."""
    dims = getattr(detector, "output_dims", None)
    if dims is not None and len(dims) == 3 and isinstance(dims[2], int):
        return dims[2]
    return sum((size // s) ** 2 for s in _STRIDES)


def model_metadata(model: LoadedModel) -> dict[str, Any]:
    """The OIP metadata of a loaded model, plus its classes, alert thresholds and
    their operating point."""
    record, detector = model.record, model.detector
    size = record.input_size
    anchors = _output_columns(detector, size)
    return {
        "name": SERVED_NAME,
        "versions": [str(record.version)],
        "platform": _PLATFORMS.get(detector.runtime, detector.runtime),
        "inputs": [
            {
                "name": getattr(detector, "input_name", "images"),
                "datatype": "FP32",
                "shape": [-1, 3, size, size],
            }
        ],
        "outputs": [
            {
                "name": getattr(detector, "output_name", "output0"),
                "datatype": "FP32",
                "shape": [-1, 4 + len(record.classes), anchors],
            }
        ],
        "parameters": {
            "model_name": record.name,
            "architecture": record.architecture,
            "classes": record.classes,
            "thresholds": record.thresholds,
            # Where the thresholds were chosen (eval xray --save-thresholds) and, per
            # bag, the share of clean and threat bags they alarm on there.
            "operating_point": record.metrics.get("operating_point"),
            "operating_point_bag": record.metrics.get("operating_point_bag"),
            "max_batch": model.batcher.max_batch,
            "loaded_at": model.loaded_at.isoformat(),
            "model_dir": str(model.model_dir),
        },
    }


@router.get("/v2/models/{name}")
def get_model(name: str, services: ServicesDep) -> dict[str, Any]:
    """Metadata of the served model (503 while none is loaded)."""
    return model_metadata(_loaded(services, name))


@router.get("/v2/models/{name}/ready")
def model_ready(name: str, services: ServicesDep) -> dict[str, Any]:
    """200 when the model is loaded and warmed up, 503 otherwise."""
    model = _loaded(services, name)
    return {"name": name, "ready": True, "version": str(model.record.version)}


@router.get("/metrics", include_in_schema=False)
def prometheus() -> Response:
    """Every instrument of :mod:`cv.inference_server.metrics`."""
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
