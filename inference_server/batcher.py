"""The micro-batcher in front of a model: bounded queue, batches, deadlines.

Requests wait in a bounded :class:`asyncio.Queue`. One task per model waits for
a free instance, takes the first waiting request, then collects more until it has
``max_batch`` or ``max_wait_ms`` has passed since the first (``max_wait_ms = 0``
takes only what is already waiting, like Triton's default), drops the requests
whose deadline has passed, and runs the rest as one batch in one of the model's
worker threads (ONNX Runtime, OpenVINO and PyTorch release the GIL, so the event
loop keeps serving). While a batch computes, the next one fills.

``instances`` batches may compute at once, each in its own worker thread on the
one loaded model (Triton's instance count): while one batch is in letterboxing or
decoding, where a runtime's thread pool is idle, another keeps the cores busy.
On a 2-core machine two instances of one thread each kept 1.71 cores busy where one
of two threads kept 1.60, and served about 6 % more scans per second (six
alternating runs; the README has the figures).

Admission: a full queue refuses at once (:class:`QueueFull`, answered 429 with
``Retry-After``) rather than growing a backlog that would miss every deadline.
A request whose deadline passes before its batch runs gets :class:`DeadlineExceeded`
(answered 504). Queue time and compute time are measured separately.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cv.inference_server import metrics
from cv.models.runtime import Detector
from cv.records import Detection

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The batcher's queue is full; try again after ``retry_after_s``."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the inference queue is full; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class DeadlineExceeded(Exception):
    """The request's deadline passed before its batch ran."""


class BatcherClosed(Exception):
    """The batcher has been closed (its model was swapped out) and takes no more requests."""


@dataclass(frozen=True, slots=True)
class Inference:
    """The result of one image's inference.

    Attributes:
        detections: What the model found, ``xyxy`` pixels of the original image.
        queue_ms: Milliseconds from submission to the start of its batch.
        compute_ms: Milliseconds its batch took in the detector.
        batch_size: Images in its batch.
    """

    detections: list[Detection]
    queue_ms: float
    compute_ms: float
    batch_size: int


@dataclass(slots=True)
class _Request:
    image: NDArray[np.uint8]
    deadline: float  # loop.time()
    submitted: float  # time.perf_counter()
    future: asyncio.Future[Inference]


_STOP = object()


class Batcher:
    """Batches requests to one detector.

    Args:
        detector: The loaded model.
        label: Name used in metrics and logs (``xray``).
        max_batch: Largest batch.
        max_wait_ms: Longest the first request of a batch waits for others.
        queue_size: Requests that may wait; beyond it :meth:`submit` raises
            :class:`QueueFull`.
        conf: Score floor passed to the detector (the lowest alert threshold
            or lower, so no alert-worthy detection is cut).
        instances: Batches that may compute at once (the detector's runtime must
            allow concurrent calls: ONNX Runtime's session does, OpenVINO's
            request takes them in turn).
    """

    def __init__(
        self,
        detector: Detector,
        *,
        label: str,
        max_batch: int,
        max_wait_ms: float,
        queue_size: int,
        conf: float,
        instances: int = 1,
    ) -> None:
        self.detector = detector
        self.label = label
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000
        self.conf = conf
        if instances < 1:
            raise ValueError(f"instances must be at least 1, got {instances}")
        self.instances = instances
        self._queue: asyncio.Queue[_Request | object] = asyncio.Queue(maxsize=queue_size)
        # A thread per instance; the runtime's own pool works inside each batch.
        self._executor = ThreadPoolExecutor(
            max_workers=instances, thread_name_prefix=f"infer-{label}"
        )
        self._free: asyncio.Semaphore | None = None  # made on the loop, in start()
        self._computing: dict[asyncio.Task[None], list[_Request]] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._batch_seconds = 0.05  # running mean of a batch's compute time, for Retry-After

    def start(self) -> None:
        """Starts the batching task on the running event loop."""
        self._free = asyncio.Semaphore(self.instances)
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"batcher-{self.label}"
        )

    @property
    def depth(self) -> int:
        """Requests waiting."""
        return self._queue.qsize()

    def submit(self, image: NDArray[np.uint8], *, deadline: float) -> asyncio.Future[Inference]:
        """Queues one image; the returned future resolves to its :class:`Inference`.

        Args:
            image: ``(H, W, 3) uint8`` RGB.
            deadline: ``loop.time()`` after which the request is not worth computing.

        Raises:
            QueueFull: If the queue is full.
            BatcherClosed: If the batcher is draining or stopped.
        """
        if self._closed:
            raise BatcherClosed(f"model {self.label!r} is being swapped out")
        loop = asyncio.get_running_loop()
        request = _Request(image, deadline, time.perf_counter(), loop.create_future())
        try:
            self._queue.put_nowait(request)
        except asyncio.QueueFull:
            metrics.REJECTED.labels(self.label, "queue_full").inc()
            raise QueueFull(self.retry_after_s()) from None
        metrics.QUEUE_DEPTH.labels(self.label).set(self._queue.qsize())
        return request.future

    def check_room(self) -> None:
        """Raises :class:`QueueFull` now if :meth:`submit` would (admission before work)."""
        if self._queue.full():
            metrics.REJECTED.labels(self.label, "queue_full").inc()
            raise QueueFull(self.retry_after_s())

    def retry_after_s(self) -> int:
        """Whole seconds until the queue has likely drained (at least 1)."""
        batches = math.ceil(max(1, self._queue.qsize()) / self.max_batch)
        return max(1, math.ceil(batches * self._batch_seconds / self.instances))

    async def drain(self) -> None:
        """Stops taking requests, finishes every queued one, then stops the worker."""
        if self._closed:
            return
        self._closed = True
        await self._queue.put(_STOP)
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        free = self._free
        assert free is not None
        stopping = False
        while not stopping:
            # A batch is collected only once an instance can run it: what arrives
            # meanwhile joins it, as it did while the single instance computed.
            await free.acquire()
            first = await self._queue.get()
            if first is _STOP:
                free.release()
                break
            batch: list[_Request] = [first]  # type: ignore[list-item]
            until = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                left = until - loop.time()
                try:
                    item = (
                        self._queue.get_nowait()
                        if left <= 0
                        else await asyncio.wait_for(self._queue.get(), left)
                    )
                except (asyncio.QueueEmpty, TimeoutError):
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            metrics.QUEUE_DEPTH.labels(self.label).set(self._queue.qsize())
            task = loop.create_task(self._run_batch(batch, loop))
            self._computing[task] = batch
            task.add_done_callback(self._computed)
        if self._computing:  # draining: every batch still computing finishes first
            await asyncio.gather(*self._computing, return_exceptions=True)

    def _computed(self, task: asyncio.Task[None]) -> None:
        batch = self._computing.pop(task)
        assert self._free is not None
        self._free.release()
        error = None if task.cancelled() else task.exception()
        if task.cancelled() or error is not None:
            # Whatever ended the batch, no request of it is left waiting for an answer.
            if error is not None:
                log.error("a batch of %s ended in an error", self.label, exc_info=error)
            for r in batch:
                if not r.future.done():
                    if error is None:
                        r.future.cancel()
                    else:
                        r.future.set_exception(error)

    async def _run_batch(self, batch: list[_Request], loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        live: list[_Request] = []
        for r in batch:
            if r.future.done():  # the caller gave up (disconnected)
                continue
            if r.deadline <= now:
                metrics.REJECTED.labels(self.label, "deadline").inc()
                r.future.set_exception(
                    DeadlineExceeded("the request's deadline passed while it waited for inference")
                )
                continue
            live.append(r)
        if not live:
            return
        started = time.perf_counter()
        try:
            results = await loop.run_in_executor(
                self._executor, self._predict, [r.image for r in live]
            )
            if len(results) != len(live):
                raise RuntimeError(
                    f"the runtime answered {len(results)} results for a batch of {len(live)}"
                )
        except Exception as exc:  # the model's own error, handed to every request of the batch
            metrics.INFERENCE_FAILURES.labels(self.label).inc()
            log.error("inference of a batch of %d failed: %s", len(live), exc)
            for r in live:
                if not r.future.done():
                    r.future.set_exception(exc)
            return
        compute_s = time.perf_counter() - started
        self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * compute_s
        metrics.COMPUTE_DURATION.labels(self.label).observe(compute_s)
        metrics.BATCH_SIZE.labels(self.label).observe(len(live))
        for r, detections in zip(live, results, strict=True):
            queue_s = started - r.submitted
            metrics.QUEUE_DURATION.labels(self.label).observe(queue_s)
            if not r.future.done():
                r.future.set_result(
                    Inference(detections, queue_s * 1000, compute_s * 1000, len(live))
                )

    def _predict(self, images: Sequence[NDArray[np.uint8]]) -> list[list[Detection]]:
        # Multi-label, as in the evaluation that chose the alert thresholds: an anchor
        # whose best class is below its threshold may still alert on another class.
        return self.detector.predict(images, conf=self.conf, multi_label=True)
