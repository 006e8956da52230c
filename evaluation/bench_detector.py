"""Benchmark of the detector runtimes (not a timed test).

On the same images, in one process, at batch 1, after a warm-up:

(a) ultralytics' own ``YOLO.predict`` on the PyTorch model (our weights), with
    the torch thread count its device set-up chooses (``cores - 1``, so 1 on a
    2-core machine); also measured with torch on all physical cores (a');
(b) our :class:`~cv.models.runtime.OnnxDetector` full path: letterbox,
    ONNX Runtime, decoding, NMS, un-letterbox;
(c) the bare ONNX Runtime ``session.run`` on input tensors made beforehand;
(d) with ``int8``: the same full path as (b) on the INT8 graph
    (``model.int8.onnx``, ONNX Runtime static quantisation; for the untrained
    model it is calibrated on the first 16 benchmark images);
(e) when OpenVINO is installed: our :class:`~cv.models.runtime.OpenVinoDetector`
    full path on the same ``model.onnx`` in FP32 and, on CPUs with bfloat16
    (AVX-512 BF16, AMX), in bfloat16, each with its bare ``infer`` beside it.

Targets: (b) at least :data:`TARGET_VS_ULTRALYTICS` times (a), and (b) at least
:data:`TARGET_VS_BARE` of (c) (what pre- and post-processing may cost). (d) is
reported against (a) too: it is what a deployment that accepts INT8's accuracy
change (reported by ``customs-vision export onnx --int8 --eval``) gets. (e) is
held to the same targets; bfloat16 changes the scores slightly (the README has
its measured effect on AP and detection rates).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

TARGET_VS_ULTRALYTICS = 2.5
TARGET_VS_BARE = 0.9


def synthetic_images(n: int, *, size: int = 640, seed: int = 0) -> list[NDArray[np.uint8]]:
    """``n`` synthetic ``size × size`` scans (RGB), profiles taken in turn."""
    from cv.datasets.synth import make_scan
    from cv.xray import list_profiles, load_profile

    profiles = [load_profile(p) for p in list_profiles()]
    return [
        make_scan(seed + i, size=(size, size), profile=profiles[i % len(profiles)])[0]
        for i in range(n)
    ]


def dataset_images(path: str | Path, n: int) -> list[NDArray[np.uint8]]:
    """The first ``n`` images of a dataset any reader understands (RGB)."""
    from cv.datasets.formats import load_dataset
    from cv.image import read_image

    ds = load_dataset(Path(path))
    return [read_image(ds.image_path(r)) for r in ds.images[:n]]


def untrained_model_dir(out_dir: Path, *, input_size: int = 640) -> Path:
    """An exported, untrained yolo11n over the 13 synthetic target classes."""
    from cv.datasets.synth import TARGET_CLASSES
    from cv.models.export import export_onnx
    from cv.models.load import init_model_dir

    init_model_dir(
        out_dir, architecture="yolo11n", classes=list(TARGET_CLASSES), input_size=input_size
    )
    export_onnx(out_dir)
    return out_dir


def _block_rates(
    fns: Sequence[Callable[[int], Any]],
    n: int,
    warmup: int,
    setups: Sequence[Callable[[], None]] | None = None,
) -> list[float]:
    """Images per second of each ``fn(i)`` over ``i < n``.

    Each path runs in its own block (after ``warmup`` untimed calls and its
    ``setup``), because interleaving call by call makes torch's and ONNX Runtime's
    spinning thread pools fight over the cores and slows every path. The blocks
    run twice, forwards then backwards, so a slow drift in machine load falls on
    all paths alike.
    """
    setups = setups or [lambda: None] * len(fns)
    spent = [0.0] * len(fns)
    order = list(range(len(fns)))
    for k in order + order[::-1]:
        setups[k]()
        for i in range(warmup):
            fns[k](i % n)
        t0 = time.perf_counter()
        for i in range(n):
            fns[k](i)
        spent[k] += time.perf_counter() - t0
    return [2 * n / s for s in spent]


def bench_detector(
    model_dir: str | Path | None = None,
    *,
    images: Sequence[NDArray[np.uint8]] | None = None,
    n_images: int = 100,
    scan_size: int = 640,
    untrained_input_size: int = 640,
    conf: float = 0.25,
    iou: float = 0.45,
    warmup: int = 5,
    int8: bool = False,
    openvino: bool = True,
) -> dict[str, Any]:
    """Times (a) ultralytics predict, (b) our ONNX path, (c) the bare ORT session,
    and with ``int8`` (d) our path on the INT8 graph.

    Args:
        model_dir: An exported model directory; ``None`` builds and exports an
            untrained yolo11n into a temporary folder.
        images: ``(H, W, 3) uint8`` RGB images; ``n_images`` synthetic scans by default.
        n_images: Number of synthetic scans when ``images`` is not given.
        scan_size: Side of the synthetic scans.
        untrained_input_size: Network input side of the untrained model (``model_dir``
            None). Both paths always run the network at the model's own input size.
        conf: Score threshold of both (a) and (b).
        iou: NMS IoU threshold of both.
        warmup: Untimed calls before each measurement.
        int8: Also time (d); a given ``model_dir`` needs its ``model.int8.onnx``.
        openvino: Also time (e) when the openvino package is installed.

    Returns:
        ``images``, ``model``, ``untrained``, ``input_size``, ``ultralytics_ips`` (its
        own threads), ``ultralytics_all_cores_ips``, ``ours_ips``, ``bare_ips``,
        ``ratio_vs_ultralytics``, ``ratio_vs_ultralytics_all_cores``,
        ``ratio_vs_bare``, the targets, ``torch_threads`` (ultralytics' own choice),
        ``physical_cores``, ``ort_threads`` and ``providers``; with ``int8`` also
        ``int8_ips``, ``ratio_int8_vs_ultralytics``,
        ``ratio_int8_vs_ultralytics_all_cores`` and ``ratio_int8_vs_ours``;
        ``openvino``: per precision (``f32``, ``bf16``) ``ips``, ``bare_ips``,
        ``ratio_vs_ultralytics``, ``ratio_vs_ultralytics_all_cores``,
        ``ratio_vs_bare``, ``ratio_vs_ours`` (our ONNX Runtime path), or ``None``
        when OpenVINO is not installed; ``openvino_note`` says what was left out.

    Raises:
        NotFoundError: If ``int8`` and ``model_dir`` has no INT8 graph.
    """
    import torch

    from cv.models.load import build_torch_model, load_onnx_detector
    from cv.models.runtime import physical_cores
    from cv.models.ultra import yolo_for_model

    imgs = list(images) if images is not None else synthetic_images(n_images, size=scan_size)
    with tempfile.TemporaryDirectory(prefix="cv-bench-detector-") as tmp:
        untrained = model_dir is None
        d = (
            Path(model_dir)
            if model_dir is not None
            else untrained_model_dir(Path(tmp) / "m", input_size=untrained_input_size)
        )
        onnx_det = load_onnx_detector(d, max_batch=1)
        int8_det = _int8_detector(d, imgs, untrained) if int8 else None
        model, record = build_torch_model(d)
        yolo = yolo_for_model(model)
        # ultralytics takes NumPy images as OpenCV BGR; convert before timing.
        bgr = [np.ascontiguousarray(im[..., ::-1]) for im in imgs]
        device = "cuda:0" if torch.cuda.is_available() else "cpu"

        # Same network input for both: ultralytics at the model's own input size.
        imgsz = record.input_size

        def ultra(i: int) -> None:
            yolo.predict(bgr[i], imgsz=imgsz, conf=conf, iou=iou, device=device, verbose=False)

        paths: list[Callable[[int], Any]] = [ultra, ultra]
        paths += [_full_path(onnx_det, imgs, conf=conf, iou=iou), _bare_path(onnx_det, imgs)]
        if int8_det is not None:
            paths.append(_full_path(int8_det, imgs, conf=conf, iou=iou))
        ov_dets, ov_note = _openvino_detectors(d) if openvino else ({}, "not asked for")
        for det in ov_dets.values():
            paths += [_full_path(det, imgs, conf=conf, iou=iou), _bare_path(det, imgs)]
        ultra(0)  # sets the predictor up, which sets torch to its own thread count
        own_threads = torch.get_num_threads()
        cores = physical_cores()
        rates = _block_rates(
            paths,
            len(imgs),
            warmup,
            setups=[
                lambda: torch.set_num_threads(own_threads),
                lambda: torch.set_num_threads(cores),
            ]
            + [lambda: None] * (len(paths) - 2),
        )
        ultra_ips, ultra_all_ips, ours_ips, bare_ips = rates[:4]
        torch.set_num_threads(own_threads)
        opts = onnx_det.session.get_session_options()
        extra: dict[str, Any] = {}
        if int8_det is not None:
            int8_ips = rates[4]
            extra = {
                "int8_ips": int8_ips,
                "ratio_int8_vs_ultralytics": int8_ips / ultra_ips,
                "ratio_int8_vs_ultralytics_all_cores": int8_ips / ultra_all_ips,
                "ratio_int8_vs_ours": int8_ips / ours_ips,
            }
        ov_rates = rates[5:] if int8_det is not None else rates[4:]
        ov: dict[str, Any] = {}
        for k, precision in enumerate(ov_dets):
            full, bare_ov = ov_rates[2 * k], ov_rates[2 * k + 1]
            ov[precision] = {
                "ips": full,
                "bare_ips": bare_ov,
                "ratio_vs_ultralytics": full / ultra_ips,
                "ratio_vs_ultralytics_all_cores": full / ultra_all_ips,
                "ratio_vs_bare": full / bare_ov,
                "ratio_vs_ours": full / ours_ips,
            }
        extra["openvino"] = ov or None
        extra["openvino_note"] = ov_note
        return {
            "images": len(imgs),
            "model": str(d) if not untrained else "untrained yolo11n (13 classes, temporary)",
            "architecture": record.architecture,
            "untrained": untrained,
            "input_size": record.input_size,
            "conf": conf,
            "ultralytics_ips": ultra_ips,
            "ultralytics_all_cores_ips": ultra_all_ips,
            "ratio_vs_ultralytics_all_cores": ours_ips / ultra_all_ips,
            "ours_ips": ours_ips,
            "bare_ips": bare_ips,
            "ratio_vs_ultralytics": ours_ips / ultra_ips,
            "ratio_vs_bare": ours_ips / bare_ips,
            "target_vs_ultralytics": TARGET_VS_ULTRALYTICS,
            "target_vs_bare": TARGET_VS_BARE,
            "torch_threads": own_threads,
            "physical_cores": cores,
            "ort_threads": opts.intra_op_num_threads,
            "providers": list(onnx_det.providers),
            **extra,
        }


def _openvino_detectors(model_dir: Path) -> tuple[dict[str, Any], str]:
    """OpenVINO detectors on ``model_dir``'s graph, by precision, and a note on
    what was left out (``""`` when nothing was)."""
    from cv.errors import ConfigError
    from cv.models.load import load_openvino_detector

    dets: dict[str, Any] = {}
    notes: list[str] = []
    for precision in ("f32", "bf16"):
        try:
            dets[precision] = load_openvino_detector(model_dir, precision=precision, max_batch=1)
        except ConfigError as exc:
            notes.append(f"OpenVINO {precision}: {exc.reason}")
    return dets, "; ".join(notes)


def _full_path(
    det: Any, imgs: Sequence[NDArray[np.uint8]], *, conf: float, iou: float
) -> Callable[[int], None]:
    """Our whole path on image ``i``: letterbox, the network, decoding, NMS."""

    def full(i: int) -> None:
        det.predict([imgs[i]], conf=conf, iou=iou)

    return full


def _bare_path(det: Any, imgs: Sequence[NDArray[np.uint8]]) -> Callable[[int], None]:
    """The network alone (``session.run`` / OpenVINO's ``infer``) on image ``i``'s
    input tensor, made beforehand."""
    tensors = [det.preprocess([im])[0] for im in imgs]

    def bare(i: int) -> None:
        det.infer(tensors[i])

    return bare


def _int8_detector(model_dir: Path, images: Sequence[NDArray[np.uint8]], untrained: bool) -> Any:
    """Our detector on ``model_dir``'s INT8 graph; the untrained model's is made
    here, calibrated on the first 16 images."""
    from cv.errors import NotFoundError
    from cv.models.export import INT8_FILE, quantize_int8
    from cv.models.load import load_onnx_detector

    if untrained:
        quantize_int8(model_dir, list(images[:16]))
    elif not (model_dir / INT8_FILE).is_file():
        raise NotFoundError(
            f"no {INT8_FILE} in the model directory; run `customs-vision export onnx "
            f"{model_dir} --int8 --calib DATASET` first",
            path=model_dir / INT8_FILE,
        )
    return load_onnx_detector(model_dir, onnx_file=INT8_FILE, max_batch=1)
