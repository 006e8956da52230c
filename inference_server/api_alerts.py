"""Alert routes: the live streams to handhelds, the alert list, and inspectors' verdicts.

Streams (inspector or admin token, as ``Authorization: Bearer`` or ``?token=``,
since browsers' ``EventSource`` and ``WebSocket`` cannot set headers)::

    GET /v1/alerts/stream?site=&lane=&last_id=      Server-Sent Events
    WS  /v1/alerts/ws?site=&lane=&last_id=&token=   the same messages as JSON

On the SSE stream every message is an event:

* ``event: hello`` first, with ``retry: 3000`` and ``data: {"epoch", "last_seq", ...}``.
  A client that stored a different epoch has a last id from another database: it
  drops it and reconnects without one.
* ``event: alert`` with ``id: <seq>``: a new alert (``data`` as
  :func:`cv.inference_server.alerts.alert_message`). The browser sends the last id
  back as ``Last-Event-ID`` when it reconnects (``?last_id=`` for a first connect
  or clients that cannot set headers; the header wins), and the stream replays
  every alert after it, in ``seq`` order, in its current state.
* ``event: alert`` **without** ``id:`` and ``"resent": true``: an alert nobody
  acknowledged in time, sent again (it is escalated).
* ``event: update`` without ``id:``: a state change (``"change"``: acknowledged,
  confirmed, rejected, escalated). Having no id, neither moves the resume point.
* ``: keep-alive`` comment lines after ``sse_keepalive_s`` of silence.

An open stream checks its token again at every keep-alive and before any message
sent more than :data:`TOKEN_RECHECK_S` seconds after the last check: once the token
is revoked (or no longer holds the permission) the stream ends, and nothing more
reaches it. An expired token's stream ends before the first message after its expiry
(that check needs no database). The SSE stream just closes (the browser's reconnect
then gets a 401); the WebSocket sends an ``error`` message and closes with code
1008. Each is logged.

On the WebSocket each message is ``{"event": ..., "id": seq | null, "data": {...}}``.
A bad token, ``last_id``, or a ``site`` or ``lane`` longer than :data:`FILTER_MAX`
(the SSE route's limits) answers ``{"event": "error", "detail": ...}``, the detail
naming the parameter, and closes with code 1008.

Actions (inspector or admin) record an audit event with the token's name::

    POST /v1/alerts/{seq}/ack       open -> acknowledged (stops re-sends)
    POST /v1/alerts/{seq}/confirm   open | acknowledged -> confirmed; optional
                                    {"boxes": [{"box": [x1, y1, x2, y2], "category"}],
                                     "note": "..."} corrects the boxes
    POST /v1/alerts/{seq}/reject    open | acknowledged -> rejected; {"note": "..."}

On a re-ID alert (``alert_kind`` ``reid``) confirm means "the same person" and
reject "not the same person": its sighting takes the verdict, with an audit line,
in the same commit (:func:`cv.inference_server.cctv.stage_verdict`).

An unknown seq answers 404, an action the state does not allow 409, a bad box or
class 422 naming the field (``boxes[0].box``). Sequence numbers (paths, ``after_seq``,
``last_id``, ``Last-Event-ID``) outside ``0..``:data:`MAX_ID` answer 422 naming the
parameter.

``GET /v1/alerts/stats?since=&until=&site=&lane=&kind=`` (inspector or admin): how
the alerts fared with the inspectors (:mod:`cv.inference_server.alert_stats`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, WebSocket, status
from fastapi.requests import HTTPConnection, Request
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.datastructures import QueryParams
from starlette.websockets import WebSocketDisconnect

from cv.errors import ConfigError, CustomsVisionError, DataValidationError, NotFoundError
from cv.inference_server import alert_stats, alerts, cctv
from cv.inference_server.auth import Principal, expiry_text
from cv.inference_server.deps import (
    AlertReader,
    Inspector,
    Services,
    SessionDep,
    get_principal,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

MAX_ID = 2**31 - 1
"""The largest alert seq or row id a route takes. The columns are 32-bit integers
on PostgreSQL (and SQLite binds at most 64 bits), so a larger number would reach the
database as an error: it is refused as bad input, naming the parameter."""

TOKEN_RECHECK_S = 5.0
"""An open stream checks its token again before a message once this long has passed
since the last check (and at every keep-alive): a revoked token receives nothing sent
later than this after its revocation."""


def get_alert_service(connection: HTTPConnection) -> alerts.AlertService:
    """The app's :class:`~cv.inference_server.alerts.AlertService` (``services.alerts``)."""
    return connection.app.state.services.alerts


AlertServiceDep = Annotated[alerts.AlertService, Depends(get_alert_service)]

FILTER_MAX = 64
"""Longest ``site`` or ``lane`` filter (the scans' columns)."""

Site = Annotated[str | None, Query(max_length=FILTER_MAX, description="Only alerts of this site.")]
Lane = Annotated[str | None, Query(max_length=FILTER_MAX, description="Only alerts of this lane.")]
Seq = Annotated[int, Path(ge=0, le=MAX_ID, description="The alert's sequence number.")]
LastId = Annotated[
    int | None, Query(ge=0, le=MAX_ID, description="Resume after this seq (the header wins).")
]


class BoxIn(BaseModel):
    """A corrected box: ``xyxy`` pixels of the original image, 0-based."""

    box: tuple[float, float, float, float]
    category: str = Field(max_length=64)


class ConfirmIn(BaseModel):
    """Body of ``confirm``: corrected boxes (replace the model's) and a note."""

    boxes: list[BoxIn] | None = None
    note: str | None = Field(default=None, max_length=2000)


class RejectIn(BaseModel):
    """Body of ``reject``."""

    note: str | None = Field(default=None, max_length=2000)


def _http_error(exc: CustomsVisionError) -> HTTPException:
    code = status.HTTP_409_CONFLICT
    if isinstance(exc, NotFoundError):
        code = status.HTTP_404_NOT_FOUND
    elif isinstance(exc, DataValidationError):
        code = status.HTTP_422_UNPROCESSABLE_CONTENT
    return HTTPException(code, detail=str(exc))


def parse_seq(text: str) -> int | None:
    """An alert seq written as plain digits within ``0..MAX_ID``, else ``None``."""
    text = text.strip()
    # Digits only: int() would also take "+5", "1_0" and other scripts' digits.
    if not re.fullmatch(r"[0-9]{1,10}", text):
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def _seq_error(name: str, text: str) -> str:
    return f"{name}: expected an alert seq (an integer from 0 to {MAX_ID}), got {text[:40]!r}"


def _resume_point(header: str | None, query: int | None) -> int | None:
    if header is None or not header.strip():
        return query
    value = parse_seq(header)
    if value is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail=_seq_error("Last-Event-ID", header)
        )
    return value


def _sse(message: alerts.AlertMessage) -> ServerSentEvent:
    if message.event == "keepalive":
        return ServerSentEvent(comment="keep-alive")
    return ServerSentEvent(
        data=json.dumps(message.data, separators=(",", ":")),
        event=message.event,
        id=None if message.id is None else str(message.id),
        retry=alerts.RETRY_MS if message.event == "hello" else None,
    )


class StreamAccessEnded(Exception):
    """The token of an open stream no longer may read it (revoked, expired, or lost the
    permission)."""


@dataclass
class StreamAccess:
    """Who holds an open stream, checked again while the stream stays open.

    Attributes:
        connection: The stream's request or WebSocket (it carries the token).
        principal: Who the token was when the stream opened.
        permission: What the stream needs (``alerts:read``, ``sightings:read``).
        every_s: Longest time between two checks.
    """

    connection: HTTPConnection
    principal: Principal
    permission: str
    every_s: float
    checked: float = field(default_factory=time.monotonic)

    def due(self, message: alerts.AlertMessage) -> bool:
        """Whether to check before passing ``message`` on: at every keep-alive (an idle
        stream), once ``every_s`` has passed (a busy one), and once the token has
        expired (known without the database)."""
        return (
            message.event == "keepalive"
            or time.monotonic() - self.checked >= self.every_s
            or self.principal.expired()
        )

    async def check(self) -> None:
        """Checks the token's expiry, then reads the token again.

        A database that cannot be read now keeps the stream open until the next
        check: while it is down no alert can be committed for the stream to carry,
        and closing every stream at once would only bring every client back together.

        Raises:
            StreamAccessEnded: If the token has expired, is revoked or unknown, or lacks
                the permission now.
        """
        self.checked = time.monotonic()
        if self.principal.expired():
            reason = f"the API token expired at {expiry_text(self.principal.expires_at)}"
        else:
            services: Services = self.connection.app.state.services
            try:
                now = await asyncio.to_thread(get_principal, self.connection, services)
            except HTTPException as exc:  # refused now: auth says why (revoked, and when)
                reason = f"the {exc.detail}"
            except Exception as exc:
                log.warning("could not check the token of an open stream again: %r", exc)
                return
            else:
                if now.name == self.principal.name and now.may(self.permission):
                    return
                reason = f"role {now.role!r} may no longer do this (needs {self.permission!r})"
        log.warning(
            "closed the stream of token %r: %s",
            self.principal.name,
            reason,
            extra={"token": self.principal.name, "path": self.connection.url.path},
        )
        raise StreamAccessEnded(reason)


def stream_access(
    connection: HTTPConnection, principal: Principal, permission: str
) -> StreamAccess:
    """The :class:`StreamAccess` of a stream just opened by ``principal``."""
    settings = connection.app.state.services.settings
    every_s = min(TOKEN_RECHECK_S, settings.sse_keepalive_s)
    return StreamAccess(connection, principal, permission, every_s)


async def guarded_stream(
    service: alerts.AlertService,
    access: StreamAccess,
    *,
    site: str | None,
    lane: str | None,
    last_id: int | None,
) -> AsyncIterator[alerts.AlertMessage]:
    """The service's stream, checking ``access`` at every keep-alive and every ``every_s``.

    Raises:
        StreamAccessEnded: When the token may no longer read; the service's stream is
            closed first.
    """
    messages = service.stream(site=site, lane=lane, last_id=last_id)
    async with contextlib.aclosing(messages):
        async for message in messages:
            if message.event != "hello" and access.due(message):
                await access.check()
            yield message


@router.get("/stream", response_class=EventSourceResponse)
async def stream_alerts(
    request: Request,
    principal: AlertReader,
    service: AlertServiceDep,
    site: Site = None,
    lane: Lane = None,
    last_id: LastId = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """Server-Sent Events: replay after the last id, then live alerts and updates."""
    return event_stream(
        service,
        site=site,
        lane=lane,
        resume=_resume_point(last_event_id, last_id),
        access=stream_access(request, principal, "alerts:read"),
    )


def event_stream(
    service: alerts.AlertService,
    *,
    site: str | None,
    lane: str | None,
    resume: int | None,
    access: StreamAccess,
    kind: str | None = None,
) -> EventSourceResponse:
    """The SSE response of the alert stream; with ``kind`` (``reid``...), only the
    alerts and updates of that kind (hello and keep-alive messages always pass).
    It ends when ``access`` no longer holds (the browser's reconnect then gets a 401)."""

    async def events() -> Any:
        try:
            async for message in guarded_stream(
                service, access, site=site, lane=lane, last_id=resume
            ):
                if (
                    kind is not None
                    and message.event in ("alert", "update")
                    and message.data.get("alert_kind") != kind
                ):
                    continue
                yield _sse(message)
        except StreamAccessEnded:
            return  # logged by the check

    # Keep-alives come from the stream itself (only when idle), so no library pings.
    return EventSourceResponse(events(), ping=0, headers={"Cache-Control": "no-store"})


@router.websocket("/ws")
async def alerts_ws(websocket: WebSocket) -> None:
    """WebSocket: the same messages as the SSE stream, as JSON objects."""
    services: Services = websocket.app.state.services
    await websocket.accept()
    params = websocket.query_params
    try:
        # A database query: off the event loop, which every open stream shares.
        principal = await asyncio.to_thread(get_principal, websocket, services)
    except HTTPException as exc:
        await _refuse(websocket, exc.detail)
        return
    error = _ws_refusal(principal, params)
    if error is not None:
        await _refuse(websocket, error)
        return
    last_id = parse_seq(params["last_id"]) if params.get("last_id") else None
    service: alerts.AlertService = services.alerts
    access = stream_access(websocket, principal, "alerts:read")
    try:
        async for message in guarded_stream(
            service, access, site=params.get("site"), lane=params.get("lane"), last_id=last_id
        ):
            await websocket.send_json(
                {"event": message.event, "id": message.id, "data": message.data}
            )
    except WebSocketDisconnect:
        return
    except StreamAccessEnded as exc:
        await _refuse(websocket, str(exc))
        return
    await websocket.close(code=1001)  # the server is stopping; the client resumes elsewhere


def _ws_refusal(principal: Principal, params: QueryParams) -> str | None:
    """Why a WebSocket's caller or query parameters are refused (what the SSE route's
    dependencies and ``Query`` checks refuse), naming the parameter; ``None`` if not."""
    if not principal.may("alerts:read"):
        return f"role {principal.role!r} may not do this (needs 'alerts:read')"
    for name in ("site", "lane"):
        value = params.get(name)
        if value is not None and len(value) > FILTER_MAX:
            return f"{name}: at most {FILTER_MAX} characters, got {len(value)}"
    text = params.get("last_id")
    if text and parse_seq(text) is None:
        return _seq_error("last_id", text)
    return None


async def _refuse(websocket: WebSocket, detail: str) -> None:
    """Tells a WebSocket client why, then closes with 1008 (policy violation)."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_json({"event": "error", "detail": detail})
        # A close reason is at most 123 bytes of UTF-8.
        await websocket.close(code=1008, reason=detail.encode()[:120].decode(errors="ignore"))


@router.get("")
def list_alerts(
    _: AlertReader,
    session: SessionDep,
    service: AlertServiceDep,
    site: Site = None,
    lane: Lane = None,
    state: Annotated[
        str | None, Query(description=f"Comma-separated states: {', '.join(alerts.STATES)}.")
    ] = None,
    after_seq: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Alerts after ``after_seq`` in ``seq`` order, with the history epoch."""
    states = None
    if state:
        states = [s.strip() for s in state.split(",") if s.strip()]
        bad = [s for s in states if s not in alerts.STATES]
        if bad:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail=f"state: unknown state(s) {bad}; states: {', '.join(alerts.STATES)}",
            )
    rows = alerts.list_alerts(
        session, site=site, lane=lane, states=states, after_seq=after_seq, limit=limit
    )
    return {"epoch": service.epoch, "alerts": [alerts.alert_message(a) for a in rows]}


@router.get("/stats")
def alert_figures(
    _: AlertReader,
    session: SessionDep,
    site: Site = None,
    lane: Lane = None,
    kind: Annotated[
        str, Query(description=f"Alert kind: {', '.join(alert_stats.KINDS)}.")
    ] = "xray",
    since: Annotated[
        datetime | None, Query(description="Raised at or after this time (ISO 8601; UTC if naive).")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Raised before this time (ISO 8601; UTC if naive).")
    ] = None,
) -> dict[str, Any]:
    """How the alerts fared: counts by state, precision, response times, per class and lane."""
    try:
        figures = alert_stats.alert_stats(
            session, kind=kind, site=site, lane=lane, since=since, until=until
        )
    except ConfigError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    return figures.to_dict()


@router.get("/{seq}")
def get_alert(_: AlertReader, session: SessionDep, seq: Seq) -> dict[str, Any]:
    """One alert in its current state, with its audit trail."""
    try:
        alert = alerts.get_alert(session, seq)
    except NotFoundError as exc:
        raise _http_error(exc) from None
    events = [alerts.event_record(e) for e in alerts.alert_events(session, seq)]
    return {**alerts.alert_message(alert), "events": events}


@router.post("/{seq}/ack")
def acknowledge(
    principal: Inspector, session: SessionDep, service: AlertServiceDep, seq: Seq
) -> dict[str, Any]:
    """Acknowledge an open alert: someone is on it, so it is not re-sent."""
    try:
        alert = alerts.acknowledge(session, seq, actor=principal.name)
    except CustomsVisionError as exc:
        raise _http_error(exc) from None
    service.notify()
    return alerts.alert_message(alert)


@router.post("/{seq}/confirm")
def confirm(
    principal: Inspector,
    session: SessionDep,
    service: AlertServiceDep,
    seq: Seq,
    body: ConfirmIn | None = None,
) -> dict[str, Any]:
    """Confirm an alert (a real find), with corrected boxes if the model's were off."""
    body = body or ConfirmIn()
    boxes = None if body.boxes is None else [b.model_dump() for b in body.boxes]
    try:
        # A re-ID alert's sighting follows its verdict in the same commit.
        cctv.stage_verdict(session, seq, verdict="confirmed", actor=principal.name, note=body.note)
        alert = alerts.confirm(session, seq, actor=principal.name, boxes=boxes, note=body.note)
    except CustomsVisionError as exc:
        raise _http_error(exc) from None
    service.notify()
    return alerts.alert_message(alert)


@router.post("/{seq}/reject")
def reject(
    principal: Inspector,
    session: SessionDep,
    service: AlertServiceDep,
    seq: Seq,
    body: RejectIn | None = None,
) -> dict[str, Any]:
    """Reject an alert (a false alarm); it becomes a hard negative for retraining."""
    body = body or RejectIn()
    try:
        cctv.stage_verdict(session, seq, verdict="rejected", actor=principal.name, note=body.note)
        alert = alerts.reject(session, seq, actor=principal.name, note=body.note)
    except CustomsVisionError as exc:
        raise _http_error(exc) from None
    service.notify()
    return alerts.alert_message(alert)
