"""Scan routes: upload a scan and get its detections; read scans, images, overlays.

::

    POST /v1/scans                      scanner or admin: multipart ``image`` + fields
    GET  /v1/scans?site=&lane=&status=&since=&limit=&cursor=
    GET  /v1/scans/{id}
    GET  /v1/scans/{id}/detections
    GET  /v1/scans/{id}/image           the image as uploaded
    GET  /v1/scans/{id}/overlay.png     the image with the detections drawn

Reading needs a reader, inspector or admin token. The routes only translate
HTTP to :class:`~cv.inference_server.scans.ScanService` calls and back; the
service's errors become HTTP answers in :mod:`cv.inference_server.app`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from cv.inference_server import alerts, scans
from cv.inference_server.db import Detection as DetectionRow
from cv.inference_server.db import Scan, as_utc
from cv.inference_server.deps import Reader, Scanner, ServicesDep, SessionDep

router = APIRouter(prefix="/v1/scans", tags=["scans"])

ScanId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
Name = Annotated[str, Form(min_length=1, max_length=64)]
OptionalName = Annotated[str | None, Form(min_length=1, max_length=64)]


class DetectionOut(BaseModel):
    """One detection: ``box`` is ``[x1, y1, x2, y2]`` pixels of the original image, 0-based."""

    box: list[float]
    category: str
    class_id: int
    score: float


class ScanOut(BaseModel):
    """A scan's metadata, status and links."""

    id: str
    site: str
    lane: str
    kind: str
    bag_tag: str | None
    awb: str | None
    declaration_ref: str | None
    status: str
    attempts: int
    error: str | None
    width: int
    height: int
    content_type: str
    image_sha256: str
    model_name: str | None
    model_version: int | None
    queue_ms: float | None
    compute_ms: float | None
    created_at: datetime
    inferred_at: datetime | None
    image_url: str
    overlay_url: str


class Timing(BaseModel):
    """Milliseconds waiting in the batcher's queue, and of the batch's compute."""

    queue_ms: float
    compute_ms: float


class ScanResult(BaseModel):
    """The answer to an upload: the scan, its detections, its alert (if any), timings."""

    scan: ScanOut
    detections: list[DetectionOut]
    alert: dict[str, Any] | None
    timing: Timing


class ScanPage(BaseModel):
    """One page of scans, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[ScanOut]
    next_cursor: str | None


def scan_out(scan: Scan) -> ScanOut:
    """The API form of a scan row."""
    return ScanOut(
        id=scan.id,
        site=scan.site,
        lane=scan.lane,
        kind=scan.kind,
        bag_tag=scan.bag_tag,
        awb=scan.awb,
        declaration_ref=scan.declaration_ref,
        status=scan.status,
        attempts=scan.attempts,
        error=scan.error,
        width=scan.width,
        height=scan.height,
        content_type=scan.content_type,
        image_sha256=scan.image_sha256,
        model_name=scan.model_name,
        model_version=scan.model_version,
        queue_ms=scan.queue_ms,
        compute_ms=scan.compute_ms,
        created_at=as_utc(scan.created_at),
        inferred_at=None if scan.inferred_at is None else as_utc(scan.inferred_at),
        image_url=f"/v1/scans/{scan.id}/image",
        overlay_url=scans.overlay_url(scan.id),
    )


def detection_out(row: DetectionRow) -> DetectionOut:
    """The API form of a detection row."""
    return DetectionOut(
        box=[row.x1, row.y1, row.x2, row.y2],
        category=row.category,
        class_id=row.class_id,
        score=row.score,
    )


def _required_reference(kind: str, bag_tag: str | None, awb: str | None) -> None:
    # A hold bag is traced by its bag tag, a parcel by its air waybill; a cabin
    # bag has neither, so both stay optional for it.
    if kind == "hold_bag" and not bag_tag:
        raise HTTPException(422, detail="bag_tag: required for kind 'hold_bag'")
    if kind == "parcel" and not awb:
        raise HTTPException(422, detail="awb: required for kind 'parcel' (the air waybill)")


@router.post("", response_model=ScanResult, status_code=status.HTTP_201_CREATED)
async def post_scan(
    request: Request,
    services: ServicesDep,
    principal: Scanner,
    image: Annotated[UploadFile, File(description="PNG, JPEG or TIFF (8- or 16-bit) X-ray image")],
    site: Name,
    lane: Name,
    kind: Annotated[Literal["cabin_bag", "hold_bag", "parcel"], Form()],
    scan_id: Annotated[ScanId | None, Form()] = None,
    bag_tag: OptionalName = None,
    awb: OptionalName = None,
    declaration_ref: OptionalName = None,
) -> ScanResult:
    """Stores a scan, infers it and answers with its detections and alert (if any).

    Errors: 413 too large, 415 not a PNG / JPEG / TIFF, 422 corrupt image or bad
    field, 409 duplicate ``scan_id``, 429 queue full (``Retry-After``), 504
    deadline passed (the scan is stored and inferred later), 503 no model loaded
    or inference failed (stored and retried).
    """
    _required_reference(kind, bag_tag, awb)
    meta = scans.ScanMeta(
        scan_id=scan_id or uuid.uuid4().hex,
        site=site,
        lane=lane,
        kind=kind,
        bag_tag=bag_tag,
        awb=awb,
        declaration_ref=declaration_ref,
    )
    request.state.scan_id = meta.scan_id
    data = await image.read()
    outcome = await services.scans.submit(data, meta)
    return ScanResult(
        scan=scan_out(outcome.scan),
        detections=[detection_out(d) for d in outcome.detections],
        alert=None if outcome.alert is None else alerts.alert_message(outcome.alert),
        timing=Timing(queue_ms=outcome.queue_ms, compute_ms=outcome.compute_ms),
    )


@router.get("", response_model=ScanPage)
def list_scans(
    request: Request,
    session: SessionDep,
    principal: Reader,
    site: str | None = None,
    lane: str | None = None,
    status: Literal["pending", "done", "failed"] | None = None,
    since: Annotated[datetime | None, Query(description="ISO 8601; naive means UTC")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> ScanPage:
    """Scans, newest first, filtered by site, lane, status and creation time."""
    if since is not None:
        try:
            since = as_utc(since)
        except OverflowError:
            raise HTTPException(
                422, detail=f"since: {since.isoformat()} is out of range (years 1 to 9999 in UTC)"
            ) from None
    try:
        rows, next_cursor = scans.list_scans(
            session,
            site=site,
            lane=lane,
            status=status,
            since=since,
            limit=limit,
            cursor=cursor,
        )
    except ValueError:
        raise HTTPException(
            422, detail="cursor: not a cursor from a previous page's next_cursor"
        ) from None
    return ScanPage(items=[scan_out(s) for s in rows], next_cursor=next_cursor)


@router.get("/{scan_id}", response_model=ScanOut)
def get_scan(request: Request, scan_id: str, session: SessionDep, principal: Reader) -> ScanOut:
    """One scan's metadata and status."""
    request.state.scan_id = scan_id
    return scan_out(scans.get_scan(session, scan_id))


@router.get("/{scan_id}/detections", response_model=list[DetectionOut])
def get_detections(
    request: Request, scan_id: str, session: SessionDep, principal: Reader
) -> list[DetectionOut]:
    """A scan's detections, highest score first."""
    request.state.scan_id = scan_id
    scan = scans.get_scan(session, scan_id)
    return [detection_out(d) for d in sorted(scan.detections, key=lambda d: -d.score)]


@router.get("/{scan_id}/image", response_class=FileResponse)
def get_image(
    request: Request, scan_id: str, session: SessionDep, services: ServicesDep, principal: Reader
) -> FileResponse:
    """The scan's image exactly as uploaded."""
    request.state.scan_id = scan_id
    scan = scans.get_scan(session, scan_id)
    return FileResponse(services.images.path(scan.image_path), media_type=scan.content_type)


@router.get("/{scan_id}/overlay.png", response_class=Response)
def get_overlay(
    request: Request, scan_id: str, session: SessionDep, services: ServicesDep, principal: Reader
) -> Response:
    """The scan's image with its detections drawn, labelled with class and score."""
    request.state.scan_id = scan_id
    scan = scans.get_scan(session, scan_id)
    png = scans.overlay_png(services.images, scan, scan.detections)
    # A finished scan's overlay never changes; one still pending will gain boxes.
    cache = "private, max-age=3600" if scan.status == "done" else "no-store"
    return Response(png, media_type="image/png", headers={"Cache-Control": cache})
