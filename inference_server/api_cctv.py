"""CCTV routes: cameras and their frames, the watch list, sightings, the audit log.

Who may do what (roles in :mod:`cv.inference_server.auth`)::

    GET    /v1/cctv/ready                       anyone: 200 when the re-ID models are loaded,
                                                503 with why (the X-ray path is unaffected)
    GET    /v1/cctv/status                      admin: models, threshold, index, sources

    POST   /v1/cameras                          admin: register or update a camera
    GET    /v1/cameras                          admin (video source URLs without their password)
    GET    /v1/cameras/{id}                     admin
    POST   /v1/cameras/{id}/frames              camera or admin: one frame, JPEG / PNG as the
                                                body (?timestamp=) or multipart ``image`` (+
                                                ``timestamp``); answers the frame's tracks
    PUT    /v1/cameras/{id}/source              admin: {"url", "realtime", "loop"}: a video file
                                                or RTSP stream that a worker reads and feeds
                                                (the URL as answers show it keeps the password;
                                                another process's worker of the camera stops)
    GET    /v1/cameras/{id}/source              admin: this process's worker's status
    DELETE /v1/cameras/{id}/source              admin: forget it and stop its worker (in
                                                another process: at its next maintenance round)

    POST   /v1/watchlist/entries                admin: multipart ``images`` + label, list_name,
                                                authorised_by, reason, legal_basis, expires_at
    GET    /v1/watchlist/entries?state=&list_name=      admin
    GET    /v1/watchlist/entries/{id}                   admin
    POST   /v1/watchlist/entries/{id}/revoke            admin: {"reason"}
    POST   /v1/watchlist/entries/{id}/search            admin: {"reason", "since", "camera_id"}
                                                        retrospective search of stored tracks
    GET    /v1/watchlist/entries/{id}/reference         inspector or admin: the enrolment crop

    GET    /v1/sightings?state=&camera_id=&entry_id=&site=&since=&until=&before_id=&limit=
    GET    /v1/sightings/stream                 SSE: the alert stream, re-ID alerts only
    GET    /v1/sightings/{id}                   with its frame, crop: inspector or admin
    GET    /v1/sightings/{id}/frame | /crop
    POST   /v1/sightings/{id}/confirm | /reject inspector or admin: "same person" / "not the
                                                same person" (the same as on its alert)

    GET    /v1/audit?action=&actor=&entry_id=&camera_id=&since=&until=&after_id=&limit=  admin:
                                                oldest first; ``order=desc`` (+ ``before_id=``)
                                                for the newest first, paging back (URLs
                                                without their passwords)
    POST   /v1/admin/cctv/purge                 admin: run the retention purge now

A re-ID alert can also be confirmed or rejected through ``/v1/alerts/{seq}/confirm``
and ``/reject`` (what the handheld does): the sighting follows in the same
transaction. Bad input answers a 4xx naming the problem and stores nothing:
an unknown camera 404, a camera whose purpose forbids watch-list use 403, a
missing authorisation field or past expiry 422, an image without a person 422
naming the image, an unreadable frame 413 / 415 / 422. Without the re-ID models
the routes that need them (frames, video sources, enrolment, retrospective
search) answer 503; cameras, entries, sightings and the audit log can still be
read and cameras registered.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Header, Path, Query, Request, UploadFile, status
from fastapi.requests import HTTPConnection
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from cv.errors import DataValidationError, NotFoundError
from cv.inference_server import alerts, cctv, db
from cv.inference_server.api_alerts import (
    MAX_ID,
    AlertServiceDep,
    Lane,
    LastId,
    Site,
    _resume_point,
    event_stream,
    stream_access,
)
from cv.inference_server.auth import Principal
from cv.inference_server.deps import Admin, Camera, Inspector, SessionDep, SightingReader

router = APIRouter(tags=["cctv"])

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
Name = Annotated[str, Form(min_length=1, max_length=64)]
Text = Annotated[str, Form(min_length=1, max_length=2000)]
# Row ids are 32-bit integers on PostgreSQL: a larger one is a 422 naming the parameter.
SightingId = Annotated[int, Path(ge=0, le=MAX_ID, description="The sighting's id.")]


def get_cctv(connection: HTTPConnection) -> cctv.CctvService:
    """The app's :class:`~cv.inference_server.cctv.CctvService` (``services.cctv``)."""
    return connection.app.state.services.cctv


CctvDep = Annotated[cctv.CctvService, Depends(get_cctv)]


def ready_cctv(service: CctvDep) -> cctv.CctvService:
    """The CCTV service, once its models are loaded (503 otherwise)."""
    service.require_models()
    return service


ReadyCctv = Annotated[cctv.CctvService, Depends(ready_cctv)]


# --------------------------------------------------------------------------- readiness


@router.get("/v1/cctv/ready")
def cctv_ready(service: CctvDep) -> JSONResponse:
    """Readiness of the CCTV part (re-ID models loaded), for probes: 200 or 503 with why."""
    if service.ready:
        return JSONResponse({"ready": True})
    return JSONResponse(
        {"ready": False, "detail": service.not_ready or "re-ID models not loaded"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
    )


@router.get("/v1/cctv/status")
def cctv_status(_: Admin, service: CctvDep) -> dict[str, Any]:
    """Models, match threshold, watch-list index, live cameras and video sources."""
    return service.status()


# --------------------------------------------------------------------------- cameras


class CameraIn(BaseModel):
    """A camera to register (or update, when the id exists)."""

    id: Id
    site: str = Field(min_length=1, max_length=64)
    location: str = Field(
        min_length=1, max_length=64, description="Where at the site; the alerts' lane."
    )
    purpose: str = Field(
        min_length=1,
        max_length=32,
        description=f"Declared purpose: {', '.join(cctv.PURPOSES)}; only "
        f"{', '.join(p for p, ok in cctv.PURPOSES.items() if ok)} allows watch-list matching.",
    )
    fps: float = Field(default=10.0, gt=0, le=120)
    active: bool = True


@router.post("/v1/cameras")
def register_camera(
    body: CameraIn, principal: Admin, session: SessionDep, service: CctvDep
) -> JSONResponse:
    """Registers a camera (201) or updates it (200); the purpose sets watch-list use."""
    camera, created = cctv.register_camera(
        session,
        camera_id=body.id,
        site=body.site,
        location=body.location,
        purpose=body.purpose,
        fps=body.fps,
        active=body.active,
        actor=principal.name,
    )
    if not created:
        service.flush_camera(camera.id)  # new settings apply from the next frame
    code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return JSONResponse(cctv.camera_record(camera), status_code=code)


@router.get("/v1/cameras")
def list_cameras(_: Admin, session: SessionDep) -> dict[str, Any]:
    """Every camera, with its purpose and whether it may feed the watch list."""
    return {"cameras": [cctv.camera_record(c) for c in cctv.list_cameras(session)]}


@router.get("/v1/cameras/{camera_id}")
def get_camera(camera_id: str, _: Admin, session: SessionDep) -> dict[str, Any]:
    """One camera."""
    return cctv.camera_record(cctv.get_camera(session, camera_id))


def _track_out(track: Any) -> dict[str, Any]:
    return {
        "track_id": track.track_id,
        "box": [round(float(v), 1) for v in track.box],
        "score": round(float(track.score), 4),
        "embedded": track.embedded,
    }


@router.post("/v1/cameras/{camera_id}/frames")
async def post_frame(
    camera_id: str,
    request: Request,
    principal: Camera,
    service: ReadyCctv,
    timestamp: Annotated[
        str | None,
        Query(
            description="Capture time: epoch seconds or ISO 8601 (UTC if naive); now if left out."
        ),
    ] = None,
) -> dict[str, Any]:
    """One camera frame (JPEG or PNG) through the camera's pipeline; answers its tracks.

    The body is the image itself (``Content-Type: image/jpeg``), or a multipart
    form with ``image`` and an optional ``timestamp`` field. Frames of one camera
    must come in time order.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        image = form.get("image")
        if image is None or isinstance(image, str):
            raise DataValidationError("a multipart frame needs a file field 'image'", field="image")
        data = await image.read()
        form_time = form.get("timestamp")
        timestamp = form_time if isinstance(form_time, str) and form_time else timestamp
    else:
        data = await request.body()
    t = cctv.parse_time(timestamp, field="timestamp", default=db.utcnow().timestamp())
    pixels = await asyncio.to_thread(service.decode_frame, data)
    outcome = await service.process_frame(camera_id, pixels, t, source=principal.name)
    answer: dict[str, Any] = {
        "camera_id": outcome.camera_id,
        "time": outcome.time.isoformat(),
        "width": outcome.width,
        "height": outcome.height,
        "detections": outcome.result.detections,
        "embedded": outcome.result.embedded,
        "tracks": [_track_out(t) for t in outcome.result.tracks],
        "tracks_stored": outcome.tracks_stored,
        "ms": round(outcome.ms, 1),
    }
    # A camera device learns nothing about the watch list; people who may see
    # sightings get their ids.
    if principal.may("sightings:read"):
        answer["sightings"] = outcome.sightings
    return answer


class SourceIn(BaseModel):
    """A video source for a camera."""

    url: str = Field(
        min_length=1,
        max_length=2000,
        description="A video file on the server or rtsp:// URL; the camera's URL as answers "
        "show it (rtsp://user:***@...) keeps its stored password.",
    )
    realtime: bool = Field(
        default=True, description="Pace a file at its frame rate (streams pace themselves)."
    )
    loop: bool = Field(default=False, description="Start a file again when it ends.")


@router.put("/v1/cameras/{camera_id}/source")
async def start_source(
    camera_id: str, body: SourceIn, principal: Admin, service: ReadyCctv
) -> dict[str, Any]:
    """Starts a worker that reads the video and feeds the camera's pipeline (replaces any);
    audited. A stream that drops is reopened (state ``reconnecting``, ``reconnects``).
    Answers, like every other, show the URL without its password."""
    status_ = await asyncio.to_thread(
        service.start_source,
        camera_id,
        body.url,
        realtime=body.realtime,
        loop=body.loop,
        actor=principal.name,
    )
    return status_.to_dict()


@router.get("/v1/cameras/{camera_id}/source")
def source_status(camera_id: str, _: Admin, service: CctvDep) -> dict[str, Any]:
    """The camera's video worker in this process: state, frames read, sightings, error."""
    return service.source_status(camera_id).to_dict()


@router.delete("/v1/cameras/{camera_id}/source")
async def stop_source(camera_id: str, principal: Admin, service: CctvDep) -> dict[str, Any]:
    """Forgets the camera's video source, stops its worker and stores its open tracks;
    audited. Through a process that runs no worker of it, the state is ``removed``: the
    process that does stops it at its next maintenance round."""
    stopped = await asyncio.to_thread(service.stop_source, camera_id, actor=principal.name)
    return stopped.to_dict()


# --------------------------------------------------------------------------- watch list


@router.post("/v1/watchlist/entries", status_code=status.HTTP_201_CREATED)
async def enrol(
    principal: Admin,
    service: ReadyCctv,
    images: Annotated[
        list[UploadFile], File(description="Photos of the person (JPEG / PNG), one or more.")
    ],
    label: Annotated[str, Form(min_length=1, max_length=128)],
    authorised_by: Annotated[str, Form(min_length=1, max_length=128)],
    reason: Text,
    legal_basis: Text,
    expires_at: Annotated[datetime, Form(description="ISO 8601; naive means UTC.")],
    list_name: Name = "default",
) -> dict[str, Any]:
    """Enrols a person: each image must show a person (the largest one is embedded).

    Needs who authorised it, why, the legal basis and an expiry in the future (at
    most ``watchlist_max_days`` ahead). Nothing is stored unless every check passes.
    """
    files = [(f.filename or f"image-{i}", await f.read()) for i, f in enumerate(images)]
    auth = cctv.Authorisation(
        label=label,
        list_name=list_name,
        authorised_by=authorised_by,
        reason=reason,
        legal_basis=legal_basis,
        expires_at=expires_at,
    )
    entry = await service.enrol(auth, files, actor=principal.name)
    return cctv.entry_record(entry, db.utcnow())


@router.get("/v1/watchlist/entries")
def list_entries(
    _: Admin,
    session: SessionDep,
    state: Literal["active", "revoked", "expired"] | None = None,
    list_name: str | None = None,
) -> dict[str, Any]:
    """Entries, newest first (their vectors are never shown)."""
    now = db.utcnow()
    rows = cctv.list_entries(session, now=now, state=state, list_name=list_name)
    return {"entries": [cctv.entry_record(e, now) for e in rows]}


@router.get("/v1/watchlist/entries/{entry_id}")
def get_entry(entry_id: str, _: Admin, session: SessionDep) -> dict[str, Any]:
    """One entry with its authorisation and state."""
    return cctv.entry_record(cctv.get_entry(session, entry_id), db.utcnow())


class RevokeIn(BaseModel):
    """Why an entry is revoked."""

    reason: str = Field(min_length=1, max_length=2000)


@router.post("/v1/watchlist/entries/{entry_id}/revoke")
async def revoke(
    entry_id: str, body: RevokeIn, principal: Admin, service: CctvDep
) -> dict[str, Any]:
    """Revokes an entry: it stops matching at once; its vectors and crops are deleted."""
    entry = await asyncio.to_thread(
        service.revoke, entry_id, actor=principal.name, reason=body.reason
    )
    return cctv.entry_record(entry, db.utcnow())


class SearchIn(BaseModel):
    """A retrospective search of the stored tracks for an entry."""

    reason: str = Field(min_length=1, max_length=2000)
    since: datetime | None = None
    camera_id: str | None = Field(default=None, max_length=64)
    limit: int = Field(default=20, ge=1, le=200)


@router.post("/v1/watchlist/entries/{entry_id}/search")
def search(
    entry_id: str, body: SearchIn, principal: Admin, session: SessionDep, service: ReadyCctv
) -> dict[str, Any]:
    """Where was this entry's person seen? Stored tracks at or above the match threshold,
    made by the serving embedder (409 if the entry was enrolled with another)."""
    models = service.require_models()
    hits = cctv.search_tracks(
        session,
        entry_id=entry_id,
        actor=principal.name,
        reason=body.reason,
        threshold=models.threshold,
        embedder_id=models.embedder_id,
        now=db.utcnow(),
        since=body.since,
        camera_id=body.camera_id,
        limit=body.limit,
    )
    return {"entry_id": entry_id, "tracks": hits}


@router.get("/v1/watchlist/entries/{entry_id}/reference", response_class=FileResponse)
def reference(
    entry_id: str, _: SightingReader, session: SessionDep, service: CctvDep
) -> FileResponse:
    """The entry's first enrolment crop, for an inspector to compare with a sighting."""
    entry = cctv.get_entry(session, entry_id)
    paths = [v.crop_path for v in entry.vectors if v.crop_path]
    if not paths:
        raise NotFoundError(
            f"entry {entry_id} has no reference image (it is {cctv.entry_state(entry, db.utcnow())})",
            field="entry_id",
        )
    return FileResponse(service.store.path(paths[0]), media_type="image/jpeg")


# --------------------------------------------------------------------------- sightings


@router.get("/v1/sightings")
def list_sightings(
    _: SightingReader,
    session: SessionDep,
    state: Literal["candidate", "confirmed", "rejected"] | None = None,
    camera_id: str | None = None,
    entry_id: str | None = None,
    site: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Page back from this id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Sightings, newest first, filtered."""
    rows = cctv.list_sightings(
        session,
        state=state,
        camera_id=camera_id,
        entry_id=entry_id,
        site=site,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )
    return {"sightings": [cctv.sighting_record(s, e) for s, e in rows]}


@router.get("/v1/sightings/stream", response_class=EventSourceResponse)
async def stream_sightings(
    request: Request,
    principal: SightingReader,
    service: AlertServiceDep,
    site: Site = None,
    lane: Lane = None,
    last_id: LastId = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """Server-Sent Events: the alert stream with only its re-ID alerts (ids are alert seqs,
    so ``Last-Event-ID`` resumes it as it does the alert stream)."""
    resume = _resume_point(last_event_id, last_id)
    access = stream_access(request, principal, "sightings:read")
    return event_stream(service, site=site, lane=lane, resume=resume, access=access, kind="reid")


@router.get("/v1/sightings/{sighting_id}")
def get_sighting(sighting_id: SightingId, _: SightingReader, session: SessionDep) -> dict[str, Any]:
    """One sighting with its state and links."""
    sighting = cctv.get_sighting(session, sighting_id)
    return cctv.sighting_record(sighting, session.get(db.WatchlistEntry, sighting.entry_id))


def _image(path: str | None, what: str, sighting_id: int, service: cctv.CctvService) -> Any:
    if path is None:
        raise NotFoundError(
            f"sighting {sighting_id} has no {what} (deleted past retention)", field=what
        )
    return FileResponse(
        service.store.path(path), media_type="image/jpeg", headers={"Cache-Control": "private"}
    )


@router.get("/v1/sightings/{sighting_id}/frame", response_class=FileResponse)
def sighting_frame(
    sighting_id: SightingId, _: SightingReader, session: SessionDep, service: CctvDep
) -> FileResponse:
    """The frame in which the person matched (the alert's ``image_url``)."""
    sighting = cctv.get_sighting(session, sighting_id)
    return _image(sighting.frame_path, "frame", sighting_id, service)


@router.get("/v1/sightings/{sighting_id}/crop", response_class=FileResponse)
def sighting_crop(
    sighting_id: SightingId, _: SightingReader, session: SessionDep, service: CctvDep
) -> FileResponse:
    """The track's best crop of the person."""
    sighting = cctv.get_sighting(session, sighting_id)
    return _image(sighting.crop_path, "crop", sighting_id, service)


class VerdictIn(BaseModel):
    """An inspector's note with a verdict."""

    note: str | None = Field(default=None, max_length=2000)


def _verdict(
    session: SessionDep,
    service: alerts.AlertService,
    sighting_id: int,
    verdict: str,
    principal: Principal,
    note: str | None,
) -> dict[str, Any]:
    sighting = cctv.get_sighting(session, sighting_id)
    if sighting.alert_seq is None:
        raise NotFoundError(f"sighting {sighting_id} has no alert", field="sighting_id")
    seq = sighting.alert_seq
    cctv.stage_verdict(session, seq, verdict=verdict, actor=principal.name, note=note)
    if verdict == "confirmed":
        alerts.confirm(session, seq, actor=principal.name, note=note)
    else:
        alerts.reject(session, seq, actor=principal.name, note=note)
    service.notify()
    sighting = cctv.get_sighting(session, sighting_id)
    session.refresh(sighting)
    return cctv.sighting_record(sighting, session.get(db.WatchlistEntry, sighting.entry_id))


@router.post("/v1/sightings/{sighting_id}/confirm")
def confirm_sighting(
    sighting_id: SightingId,
    principal: Inspector,
    session: SessionDep,
    service: AlertServiceDep,
    body: VerdictIn | None = None,
) -> dict[str, Any]:
    """The same person: confirms the sighting and its alert (audited)."""
    note = None if body is None else body.note
    return _verdict(session, service, sighting_id, "confirmed", principal, note)


@router.post("/v1/sightings/{sighting_id}/reject")
def reject_sighting(
    sighting_id: SightingId,
    principal: Inspector,
    session: SessionDep,
    service: AlertServiceDep,
    body: VerdictIn | None = None,
) -> dict[str, Any]:
    """Not the same person: rejects the sighting and its alert (audited)."""
    note = None if body is None else body.note
    return _verdict(session, service, sighting_id, "rejected", principal, note)


# --------------------------------------------------------------------------- audit, purge


@router.get("/v1/audit")
def audit_log(
    _: Admin,
    session: SessionDep,
    action: Annotated[
        str | None, Query(description=f"One of: {', '.join(cctv.AUDIT_ACTIONS)}.")
    ] = None,
    actor: str | None = None,
    entry_id: str | None = None,
    camera_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    order: Annotated[
        Literal["asc", "desc"],
        Query(description="asc: oldest first after after_id; desc: the newest first."),
    ] = "asc",
    before_id: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="With order=desc: page back from this id."),
    ] = None,
) -> dict[str, Any]:
    """The CCTV audit log, oldest first after ``after_id`` (or newest first: ``order=desc``);
    every URL in a line without its password, lines written before that too
    (:func:`cv.inference_server.cctv.audit_record`)."""
    if action is not None and action not in cctv.AUDIT_ACTIONS:
        raise DataValidationError(
            f"unknown action {action!r}; actions: {', '.join(cctv.AUDIT_ACTIONS)}", field="action"
        )
    if before_id is not None and order != "desc":
        raise DataValidationError("before_id pages back: it needs order=desc", field="before_id")
    filters = {
        "action": action,
        "actor": actor,
        "entry_id": entry_id,
        "camera_id": camera_id,
        "since": since,
        "until": until,
    }
    rows = cctv.list_audit(
        session,
        after_id=after_id,
        before_id=before_id,
        newest_first=order == "desc",
        limit=limit,
        **filters,
    )
    return {"entries": [cctv.audit_record(r) for r in rows]}


@router.post("/v1/admin/cctv/purge")
async def purge_now(principal: Admin, service: CctvDep) -> dict[str, Any]:
    """Deletes now what the retention period no longer allows keeping (audited)."""
    report = await asyncio.to_thread(service.purge_now, actor=principal.name)
    return {**report.to_dict(), "retention_days": service.retention_days}
