"""Hosting the X-ray detector: load, warm up, serve, swap without downtime.

A :class:`ModelHost` holds one served model (``xray``) as a :class:`LoadedModel`:
the detector, its weights record (classes, per-class alert thresholds, version)
and the :class:`~cv.inference_server.batcher.Batcher` in front of it.

A swap follows the order serving systems are asked for (Triton's most-reported
gap): load the new version, warm it up with one full batch, switch atomically
(one assignment on the event loop: the next request goes to the new batcher),
let the old batcher finish every request it had queued, then drop the old
detector. No request in flight fails because of a swap.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cv.errors import ConfigError, NotFoundError
from cv.inference_server import metrics
from cv.inference_server.batcher import Batcher, Inference
from cv.inference_server.risk import NEAR_MISS_FACTOR
from cv.models.runtime import Detector
from cv.models.weights import WeightsRecord

log = logging.getLogger(__name__)

SERVED_NAME = "xray"
"""The name the X-ray detector is served under (``/v2/models/xray``)."""

DEFAULT_CONF = 0.25
"""Score floor of stored detections when no alert threshold is lower (see :func:`score_floor`)."""


class ModelNotReady(Exception):
    """No model is loaded (start-up failed to load one, or none was configured)."""


@dataclass(slots=True)
class LoadedModel:
    """A model that serves requests.

    Attributes:
        detector: The runtime.
        record: Its weights record.
        batcher: The batcher in front of it.
        model_dir: Where it was loaded from.
        loaded_at: When it started serving (UTC).
        shown_floor: Scores a scan shows: above the lowest alert threshold
            (:func:`score_floor` at factor 1), computed once for the model.
    """

    detector: Detector
    record: WeightsRecord
    batcher: Batcher
    model_dir: Path
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    shown_floor: float = field(init=False)

    def __post_init__(self) -> None:
        self.shown_floor = score_floor(self.record.thresholds, factor=1.0)

    @property
    def thresholds(self) -> dict[str, float]:
        """Per-class alert thresholds from the model's evaluation."""
        return self.record.thresholds


def score_floor(thresholds: dict[str, float], *, factor: float = NEAR_MISS_FACTOR) -> float:
    """The batcher's ``conf``: scores from :data:`DEFAULT_CONF`, or from the lowest score
    an alert can be raised at, up are kept.

    An alert fires at a class's threshold, and for a high-risk declaration fusion
    counts an unexplained detection from ``factor`` (:data:`.risk.NEAR_MISS_FACTOR`)
    times it, so the lowest such score is ``factor × min(thresholds)``; a floor
    above it would drop those detections before fusion sees them. Decoding keeps
    scores strictly above ``conf`` and the rules keep a score equal to their
    floor, so the floor lies one step below, in float32: the network's scores are
    float32, and NumPy compares them with ``conf`` in their own type.

    Args:
        thresholds: The model's per-class alert thresholds.
        factor: Share of a threshold from which a detection may still alert;
            ``1.0`` gives the floor of the thresholds themselves.
    """
    lowest = np.float32(min([DEFAULT_CONF, *(factor * t for t in thresholds.values())]))
    return float(np.nextafter(lowest, np.float32(0.0)))


def load_and_warm_up(
    model_dir: Path,
    *,
    runtime: str,
    max_batch: int,
    precision: str = "f32",
    threads: int | None = None,
) -> tuple[Detector, WeightsRecord]:
    """Loads a model directory and runs one full batch through it (blocking: use a thread).

    The first run of a session allocates its memory and picks kernels; doing it
    here keeps that cost out of the first real request's latency.

    Raises:
        NotFoundError, DataFormatError, DataValidationError, ConfigError: As
            :func:`cv.models.load.load_detector`.
    """
    from cv.models.load import load_detector

    # No spinning: idle inference threads would steal the cores that decode uploads.
    detector = load_detector(
        model_dir,
        runtime=runtime,  # type: ignore[arg-type]
        max_batch=max_batch,
        spin_wait=False,
        precision=precision,  # type: ignore[arg-type]
        threads=threads,
    )
    size = detector.input_size
    blank: list[NDArray[np.uint8]] = [
        np.full((size, size, 3), 114, dtype=np.uint8) for _ in range(max_batch)
    ]
    detector.predict(blank, conf=DEFAULT_CONF)
    return detector, detector.record


def _shown(path: object, limit: int = 120) -> str:
    text = str(path)
    return text if len(text) <= limit else text[:limit] + "…"


def _unusable_dir(exc: OSError) -> Exception:
    """The error naming ``model_dir`` for a path the file system refuses (404 / 422)."""
    where = _shown(exc.filename) if exc.filename else "the model directory"
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return NotFoundError(f"{where} does not exist", field="model_dir")
    return ConfigError(f"cannot read {where}: {exc.strerror or exc}", field="model_dir")


class ModelHost:
    """Serves one model under :data:`SERVED_NAME` and swaps it without downtime.

    Args:
        runtime: ``onnx``, ``openvino`` or ``torch``.
        max_batch: Largest batch.
        max_wait_ms: Longest a request waits for its batch to fill.
        queue_size: Requests that may wait before new ones get 429.
        precision: For ``openvino``: ``f32``, ``bf16`` or ``auto``.
        instances: Batches that compute at once (see :class:`Batcher`).
        threads: The runtime's threads per batch (ONNX Runtime, OpenVINO). By
            default ONNX Runtime gets the physical cores shared out among the
            instances (its session runs them at once) and OpenVINO all of them (its
            one infer request takes the instances' batches in turn, so only their
            letterboxing and decoding overlap).
    """

    def __init__(
        self,
        *,
        runtime: str,
        max_batch: int,
        max_wait_ms: float,
        queue_size: int,
        precision: str = "f32",
        instances: int = 1,
        threads: int | None = None,
    ) -> None:
        from cv.models.runtime import physical_cores

        self.runtime = runtime
        self.precision = precision
        self.instances = instances
        shared = 1 if runtime == "openvino" else instances
        self.threads = threads or max(1, physical_cores() // shared)
        self.max_batch = max_batch
        self.max_wait_ms = max_wait_ms
        self.queue_size = queue_size
        self._active: LoadedModel | None = None
        self._swap_lock = asyncio.Lock()
        self.last_error: str | None = None

    @property
    def ready(self) -> bool:
        """Whether a model serves requests."""
        return self._active is not None

    @property
    def active(self) -> LoadedModel:
        """The model that serves requests now.

        Raises:
            ModelNotReady: If none is loaded.
        """
        if self._active is None:
            why = f" ({self.last_error})" if self.last_error else ""
            raise ModelNotReady(f"no X-ray model is loaded{why}")
        return self._active

    def submit(self, image: NDArray[np.uint8], *, deadline: float) -> asyncio.Future[Inference]:
        """Queues an image on the active model's batcher (see :meth:`Batcher.submit`).

        Raises:
            ModelNotReady: If no model is loaded.
            QueueFull: If the batcher's queue is full.
        """
        return self.active.batcher.submit(image, deadline=deadline)

    async def load(self, model_dir: Path) -> LoadedModel:
        """Loads, warms up and switches to ``model_dir``; drains and drops the old model.

        Args:
            model_dir: A model directory (``model.json`` + its ONNX graph / weights).

        Returns:
            The model now serving.

        Raises:
            NotFoundError, DataFormatError, DataValidationError, ConfigError: If the
                directory cannot be loaded (a path the file system refuses, too long
                or unreadable, is a ``ConfigError`` naming ``model_dir``); the old
                model keeps serving.
        """
        async with self._swap_lock:
            try:
                model_dir = Path(model_dir).resolve()
            except ValueError as exc:  # an embedded NUL byte
                raise ConfigError(f"not a usable path ({exc})", field="model_dir") from None
            except OSError as exc:  # a folder on the way the server may not enter
                raise _unusable_dir(exc) from None
            try:
                detector, record = await asyncio.to_thread(
                    load_and_warm_up,
                    model_dir,
                    runtime=self.runtime,
                    max_batch=self.max_batch,
                    precision=self.precision,
                    threads=self.threads,
                )
            except OSError as exc:
                # A name too long, a folder the server may not read: bad input, not a
                # fault of the server.
                raise _unusable_dir(exc) from None
            batcher = Batcher(
                detector,
                label=SERVED_NAME,
                max_batch=self.max_batch,
                max_wait_ms=self.max_wait_ms,
                queue_size=self.queue_size,
                conf=score_floor(record.thresholds),
                instances=self.instances,
            )
            batcher.start()
            new = LoadedModel(detector, record, batcher, model_dir)
            old, self._active = self._active, new  # the switch: new requests go to `new`
            self.last_error = None
            metrics.MODEL_INFO.labels(SERVED_NAME, record.name, str(record.version)).set(1)
            log.info("serving model %s version %d from %s", record.name, record.version, model_dir)
            if old is not None:
                await self._retire(old)
            return new

    async def _retire(self, old: LoadedModel) -> None:
        await old.batcher.drain()  # every request it had queued completes
        now = self._active
        if now is None or (now.record.name, now.record.version) != (
            old.record.name,
            old.record.version,
        ):
            metrics.MODEL_INFO.labels(SERVED_NAME, old.record.name, str(old.record.version)).set(0)
        # Dropping the last references frees the runtime's memory.
        old.batcher.detector = None  # type: ignore[assignment]
        old.detector = None  # type: ignore[assignment]
        log.info("unloaded model %s version %d", old.record.name, old.record.version)

    async def stop(self) -> None:
        """Finishes queued requests and unloads the model."""
        async with self._swap_lock:
            old, self._active = self._active, None
            if old is not None:
                await self._retire(old)
