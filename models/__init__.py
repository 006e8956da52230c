"""Detector builders, runtimes (PyTorch, ONNX Runtime), loading, prediction and export.

Names are loaded on first use, so ``import cv.models`` stays free of torch,
onnxruntime and ultralytics.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "register_model": "cv.models.registry",
    "build_model": "cv.models.registry",
    "list_models": "cv.models.registry",
    "Detector": "cv.models.runtime",
    "TorchDetector": "cv.models.runtime",
    "OnnxDetector": "cv.models.runtime",
    "LetterboxMeta": "cv.models.runtime",
    "letterbox": "cv.models.runtime",
    "unletterbox": "cv.models.runtime",
    "decode": "cv.models.runtime",
    "nms": "cv.models.runtime",
    "load_detector": "cv.models.load",
    "load_record": "cv.models.load",
    "save_model": "cv.models.load",
    "init_model_dir": "cv.models.load",
    "build_torch_model": "cv.models.load",
    "predict_dataset": "cv.models.predict",
    "export_onnx": "cv.models.export",
    "export_fp16": "cv.models.export",
    "quantize_int8": "cv.models.export",
    "parity_check": "cv.models.export",
    "ParityReport": "cv.models.export",
    "ParityError": "cv.models.export",
    "write_triton_repository": "cv.models.triton",
    "WeightsRecord": "cv.models.weights",
    "read_record": "cv.models.weights",
    "write_record": "cv.models.weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cv.models' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
