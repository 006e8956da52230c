"""The scan service: store, infer, record detections, raise the alert.

This is the scan-to-alert path, in the order it runs (``POST /v1/scans`` calls
:meth:`ScanService.submit`):

1. :func:`cv.inference_server.uploads.validate` checks and decodes the upload
   (4xx for bad input, before anything is stored);
2. :meth:`ScanService.store` writes the image to the content-addressed
   :class:`~cv.inference_server.storage.ImageStore` and commits the scan row as
   ``pending`` **before** inference, so a crash from here on loses nothing;
3. :meth:`ScanService.infer` queues the decoded image on the model host's batcher
   and waits for its detections (or a deadline, 504);
4. :meth:`ScanService.finish` writes the detections, marks the scan ``done`` and
   calls :func:`cv.inference_server.alerts.raise_alert` in the **same
   transaction** (one commit per scan): detections above the model's per-class
   thresholds become an alert in the outbox. A scan linked to a declaration
   (reference, AWB or bag tag) is first fused with it (:mod:`.risk`): the
   declaration's risk raises the alert's priority and adds its reasons, and
   detections it does not explain raise its lane (stored after the commit);
5. after the commit, the alert service is told the new sequence number and
   pushes it to subscribed handhelds.

An inference failure, a missed deadline or a failure to record the result (a
database error in step 4) marks the scan ``failed`` with the error; a background
loop re-infers failed scans until ``inference_retries`` attempts are spent. It
also takes scans left ``pending``: at start-up those a crash left, and on every
round the orphans, whose result nobody will record (marking them failed failed
too, or their request was cancelled; see :meth:`ScanService._claim_orphans`).
So no scan stays ``pending`` for good.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cv.image import decode_image
from cv.inference_server import alerts, metrics, uploads
from cv.inference_server.batcher import DeadlineExceeded, Inference, QueueFull
from cv.inference_server.db import Alert, Scan, as_utc, utcnow
from cv.inference_server.db import Detection as DetectionRow
from cv.inference_server.modelhost import LoadedModel, ModelHost, ModelNotReady
from cv.inference_server.risk import RiskService, ScanFusion
from cv.inference_server.storage import ImageStore
from cv.records import Detection

log = logging.getLogger(__name__)

KINDS = ("cabin_bag", "hold_bag", "parcel")
ORPHAN_MARGIN_S = 60.0
"""Seconds past its request deadline after which a never-retried ``pending`` scan counts as
orphaned: its inference has started by the deadline, and a batch's compute plus the
result's commit (SQLite waits up to 30 s for its lock) fit in this margin."""


class DuplicateScan(Exception):
    """A scan with this id exists already (409)."""


class ScanNotFound(Exception):
    """No scan with this id (404)."""


class InferenceFailed(Exception):
    """Inference raised; the scan is stored as ``failed`` and will be retried (503)."""

    def __init__(self, scan_id: str, error: str) -> None:
        super().__init__(self._message(scan_id, error) + ": GET /v1/scans/" + scan_id)
        self.scan_id = scan_id

    @staticmethod
    def _message(scan_id: str, error: str) -> str:
        return (
            f"inference of scan {scan_id} failed ({error}); the scan is stored and will be retried"
        )


class ResultNotRecorded(InferenceFailed):
    """Inference ran but its result could not be written (a database error); the scan is
    stored and will be retried (503, as an inference failure)."""

    @staticmethod
    def _message(scan_id: str, error: str) -> str:
        return (
            f"scan {scan_id} is stored; its inference result could not be recorded ({error}), "
            "it will be retried"
        )


class ScanDeadline(Exception):
    """The scan's deadline passed before inference; it is stored and will be retried (504)."""

    def __init__(self, scan_id: str, timeout_s: float) -> None:
        super().__init__(
            f"scan {scan_id} was not inferred within its {timeout_s:g} s deadline; it is "
            "stored and will be inferred later: GET /v1/scans/" + scan_id
        )
        self.scan_id = scan_id


@dataclass(frozen=True, slots=True)
class ScanMeta:
    """What the scanner says about a scan (the form fields of ``POST /v1/scans``)."""

    scan_id: str
    site: str
    lane: str
    kind: str
    bag_tag: str | None = None
    awb: str | None = None
    declaration_ref: str | None = None


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    """A scan after inference: its row, detection rows, alert (if any) and timings."""

    scan: Scan
    detections: list[DetectionRow]
    alert: Alert | None
    queue_ms: float
    compute_ms: float


def overlay_url(scan_id: str) -> str:
    """Where a scan's overlay PNG is served (relative to the server)."""
    return f"/v1/scans/{scan_id}/overlay.png"


class ScanService:
    """Stores scans, infers them through the model host and raises alerts.

    Args:
        sessions: Database sessions.
        store: The image store.
        models: The model host (its active batcher infers).
        alert_service: Told each new alert's sequence number after its commit
            (``notify(seq)``).
        request_timeout_s: Deadline of one request's inference.
        max_upload_bytes: Largest accepted image file.
        max_pixels: Largest accepted width × height.
        inference_retries: Inference attempts before a scan stays ``failed``.
        ack_deadline_s: Seconds an inspector has to acknowledge an alert.
        retry_interval_s: Pause between rounds of the retry loop.
        risk: The declaration risk service; scans linked to a declaration are
            fused with it before their alert is raised (:mod:`.risk`).
    """

    def __init__(
        self,
        *,
        sessions: sessionmaker,
        store: ImageStore,
        models: ModelHost,
        alert_service: Any,
        request_timeout_s: float,
        max_upload_bytes: int,
        max_pixels: int,
        inference_retries: int,
        ack_deadline_s: float,
        retry_interval_s: float = 2.0,
        risk: RiskService | None = None,
    ) -> None:
        self.sessions = sessions
        self.images = store
        self.models = models
        self.alert_service = alert_service
        self.request_timeout_s = request_timeout_s
        self.max_upload_bytes = max_upload_bytes
        self.max_pixels = max_pixels
        self.inference_retries = inference_retries
        self.ack_deadline_s = ack_deadline_s
        self.retry_interval_s = retry_interval_s
        self.risk = risk
        # Scans this process is inferring now; the retry loop leaves them alone.
        self._in_flight: set[str] = set()
        # Scans whose failure could not even be recorded: still ``pending``, they are
        # taken by the next retry round (touched on the event loop only).
        self._unrecorded: set[str] = set()
        self._started = utcnow()
        self._retry_task: asyncio.Task[None] | None = None

    # -- the scan-to-alert path -------------------------------------------------

    async def submit(self, data: bytes, meta: ScanMeta) -> ScanOutcome:
        """Validates, stores and infers one uploaded scan; raises its alert.

        Raises:
            HTTPException: 413 / 415 / 422 for a bad image (see :mod:`uploads`).
            ModelNotReady: No model is loaded (nothing stored).
            QueueFull: The batcher's queue is full (nothing stored).
            DuplicateScan: The scan id exists.
            ScanDeadline: The deadline passed first (stored; retried later).
            InferenceFailed: The model raised (stored as failed; retried later).
        """
        deadline = asyncio.get_running_loop().time() + self.request_timeout_s
        image = await asyncio.to_thread(
            uploads.validate, data, max_bytes=self.max_upload_bytes, max_pixels=self.max_pixels
        )
        metrics.UPLOAD_BYTES.observe(len(data))
        # Refuse before storing when the queue is already full: a 429 stores nothing,
        # so the scanner's retry of the same scan id is not a duplicate.
        self.models.active.batcher.check_room()
        if meta.scan_id in self._in_flight:
            raise DuplicateScan(f"scan {meta.scan_id!r} is being processed already")
        self._in_flight.add(meta.scan_id)
        try:
            await asyncio.to_thread(self.store, image, meta)
            return await self.infer(meta.scan_id, image.pixels, deadline=deadline)
        finally:
            self._in_flight.discard(meta.scan_id)

    def store(self, image: uploads.ValidImage, meta: ScanMeta) -> Scan:
        """Saves the image and commits the scan row as ``pending`` (blocking).

        Raises:
            DuplicateScan: If a scan with this id exists.
        """
        stored = self.images.save(image.data, image.content_type)
        scan = Scan(
            id=meta.scan_id,
            site=meta.site,
            lane=meta.lane,
            kind=meta.kind,
            bag_tag=meta.bag_tag,
            awb=meta.awb,
            declaration_ref=meta.declaration_ref,
            image_sha256=stored.sha256,
            image_path=stored.path,
            content_type=image.content_type,
            width=image.width,
            height=image.height,
            status="pending",
            attempts=0,
        )
        with self.sessions() as session:
            session.add(scan)
            try:
                session.commit()
            except IntegrityError:
                raise DuplicateScan(f"a scan with id {meta.scan_id!r} exists already") from None
        metrics.SCANS.labels("stored").inc()
        return scan

    async def infer(
        self, scan_id: str, pixels: NDArray[np.uint8], *, deadline: float, fresh: bool = True
    ) -> ScanOutcome:
        """Runs a stored ``pending`` scan through the active model and finishes it.

        Args:
            scan_id: The scan, committed as ``pending``.
            pixels: Its decoded image.
            deadline: ``loop.time()`` by which inference must start.
            fresh: The scan was stored by the request now waiting: if it cannot be
                queued, its row is removed so that the scanner may send it again.

        Raises:
            QueueFull, ModelNotReady: The scan could not be queued.
            ScanDeadline: The deadline passed before inference (scan marked failed).
            InferenceFailed: The model raised (scan marked failed).
            ResultNotRecorded: Writing the result failed (scan marked failed).
        """
        try:
            model = self.models.active
            inference = await model.batcher.submit(pixels, deadline=deadline)
        except (QueueFull, ModelNotReady):
            if fresh:
                await asyncio.to_thread(self._forget_pending, scan_id)
            raise
        except DeadlineExceeded:
            await self._fail(scan_id, "deadline exceeded before inference")
            raise ScanDeadline(scan_id, self.request_timeout_s) from None
        except Exception as exc:  # the runtime's own error types
            error = f"{type(exc).__name__}: {exc}"
            await self._fail(scan_id, error)
            raise InferenceFailed(scan_id, error) from exc
        try:
            outcome = await asyncio.to_thread(self.finish, scan_id, inference, model)
        except ScanNotFound:
            raise
        except Exception as exc:  # the database's: a lock timeout, a dropped connection
            log.exception("recording the result of scan %s failed", scan_id)
            # The first line only: SQLAlchemy's further lines hold the statement and its values.
            error = f"recording the result failed: {type(exc).__name__}: "
            error += (str(exc).splitlines() or [""])[0]
            await self._fail(scan_id, error)
            raise ResultNotRecorded(scan_id, error) from exc
        if outcome.alert is not None:
            self.alert_service.notify(outcome.alert.seq)
        return outcome

    def finish(self, scan_id: str, inference: Inference, model: LoadedModel) -> ScanOutcome:
        """Writes detections, marks the scan done and raises its alert, in one commit.

        Only a ``pending`` scan is finished; if another path finished it first
        (a retry racing a late answer), its stored outcome is returned unchanged.
        """
        with self.sessions() as session, session.begin():
            # The write comes first so that SQLite takes its write lock at once.
            claimed = session.execute(
                update(Scan)
                .where(Scan.id == scan_id, Scan.status == "pending")
                .values(
                    status="done",
                    attempts=Scan.attempts + 1,
                    error=None,
                    model_name=model.record.name,
                    model_version=model.record.version,
                    queue_ms=inference.queue_ms,
                    compute_ms=inference.compute_ms,
                    inferred_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            scan = session.get(Scan, scan_id, populate_existing=True)
            if scan is None:
                raise ScanNotFound(f"scan {scan_id!r} vanished while it was inferred")
            if not claimed:
                return self._outcome(session, scan)
            # Fusion with the scan's declaration: its risk raises the alert's priority and
            # adds reasons; what it does not explain will raise its lane (recorded below).
            fused = self._fuse(scan, inference.detections, model.thresholds)
            if fused is not None:
                scan.declaration_ref = fused.declaration_id  # the link, found by AWB / bag tag
            # The batcher's floor is low enough for fusion's near misses (half a threshold);
            # the scan shows what reaches the lowest threshold, and what fusion counted.
            shown = model.shown_floor
            counted = () if fused is None else fused.counted
            rows = [
                detection_row(scan_id, d)
                for d in inference.detections
                if d.score > shown or d in counted
            ]
            session.add_all(rows)
            alert = alerts.raise_alert(
                session,
                scan=scan,
                detections=inference.detections,
                thresholds=model.thresholds if fused is None else fused.thresholds,
                overlay_url=overlay_url(scan_id),
                ack_deadline_s=self.ack_deadline_s,
                reasons=() if fused is None else fused.reasons,
                priority=1 if fused is None else fused.priority,
            )
        if fused is not None:  # after the commit: the risk history is another connection
            self.risk.record_fusion(fused)  # type: ignore[union-attr]
        metrics.SCANS.labels("done").inc()
        return ScanOutcome(scan, rows, alert, inference.queue_ms, inference.compute_ms)

    def _fuse(
        self, scan: Scan, detections: Sequence[Detection], thresholds: dict[str, float]
    ) -> ScanFusion | None:
        if self.risk is None:
            return None
        return self.risk.fuse_scan(
            scan_id=scan.id,
            declaration_ref=scan.declaration_ref,
            awb=scan.awb,
            bag_tag=scan.bag_tag,
            detections=detections,
            thresholds=thresholds,
        )

    async def _fail(self, scan_id: str, error: str) -> None:
        """:meth:`fail`, and if even that fails, leaves the scan to the next retry round."""
        try:
            await asyncio.to_thread(self.fail, scan_id, error)
        except Exception:
            self._unrecorded.add(scan_id)
            log.exception(
                "could not mark scan %s failed (%s); it stays pending and will be retried",
                scan_id,
                error,
                extra={"scan_id": scan_id},
            )

    def fail(self, scan_id: str, error: str) -> None:
        """Marks a ``pending`` scan failed, counting the attempt (blocking)."""
        with self.sessions() as session, session.begin():
            session.execute(
                update(Scan)
                .where(Scan.id == scan_id, Scan.status == "pending")
                .values(status="failed", attempts=Scan.attempts + 1, error=error)
                .execution_options(synchronize_session=False)
            )
        metrics.SCANS.labels("failed").inc()
        log.warning("scan %s failed: %s", scan_id, error, extra={"scan_id": scan_id})

    def _forget_pending(self, scan_id: str) -> None:
        with self.sessions() as session, session.begin():
            session.execute(
                delete(Scan)
                .where(Scan.id == scan_id, Scan.status == "pending", Scan.attempts == 0)
                .execution_options(synchronize_session=False)
            )

    def _outcome(self, session: Session, scan: Scan) -> ScanOutcome:
        return ScanOutcome(
            scan,
            list(scan.detections),
            alert_of(session, scan.id),
            scan.queue_ms or 0.0,
            scan.compute_ms or 0.0,
        )

    # -- retries and start-up recovery ------------------------------------------

    async def start(self) -> None:
        """Starts the retry loop; its first round re-infers scans a crash left pending."""
        self._started = utcnow()
        self._retry_task = asyncio.get_running_loop().create_task(
            self._retry_loop(), name="scan-retries"
        )

    async def stop(self) -> None:
        """Stops the retry loop."""
        if self._retry_task is not None:
            self._retry_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry_task
            self._retry_task = None

    async def _retry_loop(self) -> None:
        recover = True
        while True:
            try:
                await self.retry_round(recover_pending=recover)
                recover = False
            except ModelNotReady:
                pass  # nothing can be inferred until a model is loaded; try again later
            except Exception:
                log.exception("scan retry round failed; trying again later")
            await asyncio.sleep(self.retry_interval_s)

    async def retry_round(self, *, recover_pending: bool = False) -> int:
        """Re-infers failed scans with attempts left, and orphaned pending ones.

        Args:
            recover_pending: Also take scans left ``pending`` from before this
                process started (a crash between storing and finishing).

        Returns:
            How many scans were re-inferred successfully.
        """
        self.models.active  # noqa: B018 -- raises ModelNotReady before claiming anything
        unrecorded = frozenset(self._unrecorded)
        ids = await asyncio.to_thread(self._claim_due, recover_pending, unrecorded)
        self._unrecorded -= unrecorded  # claimed now, or no longer pending
        done = 0
        batch = max(1, self.models.max_batch)
        for start in range(0, len(ids), batch):
            results = await asyncio.gather(
                *(self._reinfer(i) for i in ids[start : start + batch]), return_exceptions=True
            )
            done += sum(1 for r in results if isinstance(r, ScanOutcome))
        return done

    def _claim_due(
        self, recover_pending: bool, unrecorded: frozenset[str] = frozenset()
    ) -> list[str]:
        """Claims the scans to re-infer now and returns their ids.

        Those are: due ``failed`` scans, flipped back to ``pending``; orphaned
        ``pending`` ones (see :meth:`_claim_orphans`); and, on recovery, every
        ``pending`` scan from before this process started.
        """
        with self.sessions() as session, session.begin():
            due = select(Scan.id).where(
                Scan.status == "failed", Scan.attempts < self.inference_retries
            )
            ids = [
                i
                for i in session.scalars(due.order_by(Scan.created_at))
                if i not in self._in_flight
            ]
            claimed = []
            for scan_id in ids:
                # Conditional update: another worker process may claim it first.
                if session.execute(
                    update(Scan)
                    .where(Scan.id == scan_id, Scan.status == "failed")
                    .values(status="pending")
                    .execution_options(synchronize_session=False)
                ).rowcount:
                    claimed.append(scan_id)
            if recover_pending:
                stale = select(Scan.id).where(
                    Scan.status == "pending", Scan.created_at < self._started
                )
                claimed += [
                    i for i in session.scalars(stale.order_by(Scan.created_at)) if i not in claimed
                ]
            claimed += self._claim_orphans(session, unrecorded, skip=set(claimed))
        claimed = [i for i in claimed if i not in self._in_flight]
        self._in_flight.update(claimed)
        if claimed:
            log.info("re-inferring %d scans", len(claimed))
        return claimed

    def _claim_orphans(
        self, session: Session, unrecorded: frozenset[str], *, skip: set[str]
    ) -> list[str]:
        """Claims ``pending`` scans that nobody will finish: ``unrecorded`` ones, and
        never-retried ones older than the request deadline plus :data:`ORPHAN_MARGIN_S`.

        Only ``attempts == 0`` counts as never retried: a retried scan is ``pending``
        while the process that claimed it (maybe another one) re-infers it, without
        a deadline. Each claim is a conditional update that counts the attempt whose
        result was lost, so of several server processes exactly one takes a scan.
        """
        cutoff = utcnow() - timedelta(seconds=self.request_timeout_s + ORPHAN_MARGIN_S)
        orphans = select(Scan.id, Scan.attempts).where(
            Scan.status == "pending",
            or_(Scan.id.in_(unrecorded), and_(Scan.attempts == 0, Scan.created_at < cutoff)),
        )
        claimed = []
        for scan_id, attempts in session.execute(orphans.order_by(Scan.created_at)).all():
            if scan_id in skip or scan_id in self._in_flight:
                continue
            if session.execute(
                update(Scan)
                .where(Scan.id == scan_id, Scan.status == "pending", Scan.attempts == attempts)
                .values(attempts=attempts + 1)
                .execution_options(synchronize_session=False)
            ).rowcount:
                claimed.append(scan_id)
        return claimed

    async def _reinfer(self, scan_id: str) -> ScanOutcome:
        try:
            pixels = await asyncio.to_thread(self._pixels_of, scan_id)
            while True:
                try:
                    # No client waits for a retry, so it has no deadline to miss.
                    return await self.infer(scan_id, pixels, deadline=math.inf, fresh=False)
                except QueueFull:
                    # Live uploads come first; wait for room rather than spend an attempt.
                    await asyncio.sleep(0.05)
                except ModelNotReady:
                    await asyncio.to_thread(self._unclaim, scan_id)
                    raise
        finally:
            self._in_flight.discard(scan_id)

    def _unclaim(self, scan_id: str) -> None:
        """Hands a claimed scan back to the retry loop without spending an attempt."""
        with self.sessions() as session, session.begin():
            session.execute(
                update(Scan)
                .where(Scan.id == scan_id, Scan.status == "pending", Scan.attempts > 0)
                .values(status="failed")
                .execution_options(synchronize_session=False)
            )

    def _pixels_of(self, scan_id: str) -> NDArray[np.uint8]:
        with self.sessions() as session:
            scan = session.get(Scan, scan_id)
            if scan is None:
                raise ScanNotFound(scan_id)
            rel = scan.image_path
        return decode_image(self.images.read(rel), mode="rgb", name=scan_id)


# -- rows and reads ---------------------------------------------------------------


def detection_row(scan_id: str, d: Detection) -> DetectionRow:
    """The database row of one detection."""
    x1, y1, x2, y2 = d.box
    return DetectionRow(
        scan_id=scan_id,
        category=d.category,
        class_id=d.class_id,
        score=d.score,
        x1=x1,
        y1=y1,
        x2=x2,
        y2=y2,
    )


def get_scan(session: Session, scan_id: str) -> Scan:
    """The scan called ``scan_id``.

    Raises:
        ScanNotFound: If there is none.
    """
    scan = session.get(Scan, scan_id)
    if scan is None:
        raise ScanNotFound(f"no scan with id {scan_id!r}")
    return scan


def encode_cursor(scan: Scan) -> str:
    """The keyset cursor just after ``scan`` in newest-first order (opaque to clients)."""
    raw = f"{as_utc(scan.created_at).isoformat()}|{scan.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """``(created_at, id)`` of a cursor from :func:`encode_cursor`.

    Raises:
        ValueError: If the cursor is not one of ours.
    """
    padded = cursor + "=" * (-len(cursor) % 4)
    at, _, scan_id = base64.urlsafe_b64decode(padded.encode()).decode().partition("|")
    if not scan_id:
        raise ValueError("cursor: not a cursor from a previous page's next_cursor")
    return as_utc(datetime.fromisoformat(at)), scan_id


def list_scans(
    session: Session,
    *,
    site: str | None = None,
    lane: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Scan], str | None]:
    """One page of scans, newest first, filtered; keyset pagination by (created_at, id).

    Returns:
        The scans and the cursor of the next page (``None`` on the last page).

    Raises:
        ValueError: If ``cursor`` is not valid.
    """
    query = select(Scan)
    if site is not None:
        query = query.where(Scan.site == site)
    if lane is not None:
        query = query.where(Scan.lane == lane)
    if status is not None:
        query = query.where(Scan.status == status)
    if since is not None:
        query = query.where(Scan.created_at >= as_utc(since))
    if cursor:
        at, last_id = decode_cursor(cursor)
        query = query.where(
            or_(Scan.created_at < at, and_(Scan.created_at == at, Scan.id < last_id))
        )
    query = query.order_by(Scan.created_at.desc(), Scan.id.desc()).limit(limit + 1)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1]) if more and rows else None)


def alert_of(session: Session, scan_id: str) -> Alert | None:
    """The X-ray alert raised for a scan, if any."""
    return session.scalar(select(Alert).where(Alert.scan_id == scan_id).order_by(Alert.seq))


def overlay_png(store: ImageStore, scan: Scan, detections: Sequence[DetectionRow]) -> bytes:
    """The scan's image with its detections drawn (class and score labels), as PNG."""
    from cv.draw import draw_boxes
    from cv.image import encode_png

    image = decode_image(store.read(scan.image_path), mode="rgb", name=scan.id)
    boxes = np.array([[d.x1, d.y1, d.x2, d.y2] for d in detections], dtype=np.float64)
    drawn = draw_boxes(
        image,
        boxes.reshape(-1, 4),
        [d.category for d in detections],
        class_ids=[d.class_id for d in detections],
        scores=[d.score for d in detections],
    )
    return encode_png(drawn)
