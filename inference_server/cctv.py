"""CCTV re-identification in the server: cameras, the watch list, sightings, safeguards.

The path of a frame, in the order it runs (``POST /v1/cameras/{id}/frames`` and
the video-source workers call :meth:`CctvService.process_frame`):

0. its time must lie in a window around the server's clock (no older than the
   retention period, at most :data:`FRAME_AHEAD_S` ahead; :func:`check_frame_time`),
   checked before anything else, so that a refused time leaves the camera as it was;
1. the camera is looked up: it must exist, be active, and have a declared
   purpose that allows watch-list matching (:data:`PURPOSES`); frames of other
   cameras are refused (:class:`CameraRefused`, HTTP 403) and nothing of them
   is processed or stored;
2. the camera's :class:`cv.models.cctv.CameraPipeline` detects people, tracks
   them, embeds their crops and aggregates each track's embedding; its
   :class:`~cv.models.cctv.WatchlistMatcher` searches the index of the *active*
   watch-list entries and turns a similarity at or above the calibrated threshold
   into a :class:`~cv.models.cctv.Sighting`, once per (entry, camera, track);
3. :func:`record_sighting` writes, in **one transaction**, the frame (every
   other person in it pixelated by the matcher) and crop, the sighting row
   (state ``candidate``), a ``reid`` alert in the durable outbox (:mod:`.alerts`:
   next ``alert_seq``, delivered to handhelds over SSE and WebSocket exactly
   like X-ray alerts) and a ``match`` line in the audit log; after the commit
   the alert service is woken;
4. tracks that ended are stored (:func:`record_tracks`): their mean embedding and
   best crop, with the embedder that made it, kept for ``reid_retention_days``
   unless they matched.

The safeguards (``../shared/facts/reid.md``, privacy and law), where they live:

* **authorisation**: :func:`check_authorisation` — an entry needs who authorised
  it, why, on what legal basis, and an expiry in the future but at most
  ``watchlist_max_days`` away; enrolment is an admin action;
* **expiry**: an entry matches only while active (:func:`is_active`, checked in
  the database when a sighting is recorded, so an expired or revoked entry never
  matches, whatever an index still holds); the maintenance loop records each
  expiry (:func:`expire_due`), deletes the entry's vectors and reference crops
  and rebuilds the index of every server process (the ``watchlist_version``
  counter);
* **audit**: :func:`audit` adds a line to ``audit_log`` for every enrolment,
  revocation, expiry, search, match, confirmation, rejection, camera change and
  purge; the database refuses UPDATE and DELETE on that table (migration 0002);
* **human confirmation**: a sighting is a ``candidate`` until an inspector
  confirms ("same person") or rejects ("not the same person") its alert
  (:func:`stage_verdict`, in the same transaction as the alert's verdict);
* **retention**: :func:`purge` deletes the embeddings and crops of tracks that
  matched nothing (or whose sightings were all rejected) and the images of
  rejected sightings once they are older than ``reid_retention_days``;
* **purpose**: only cameras whose declared purpose allows it feed the matcher;
* **minimisation**: a sighting's stored frame shows the matched person only:
  every other person detected in it is pixelated before it is stored
  (:func:`cv.models.cctv.redact_bystanders`; ``redact_bystanders``), and the
  ``match`` audit line says how many were.

Video sources (``PUT /v1/cameras/{id}/source``) are kept in the ``cameras`` table
and started again when the server starts (:meth:`CctvService.restore_sources`):
a file that cannot be opened then shows state ``error`` with the reason, a file
that was read to its end without looping is not read again, and only ``DELETE``
forgets a source. A live stream that ends, fails or does not answer is opened
again with backoff until it is stopped (state ``reconnecting``). Setting and
removing a source are camera changes, audited. One lock orders them: a camera
has at most one worker, and a replaced one has stopped before the next starts,
or, when a stalled read keeps it past :data:`SOURCE_STOP_S`, can no longer touch
the camera (:class:`_Worker`). The URL is kept as given, password included (the
worker needs it to reconnect), but every answer, audit line and log line shows
it without its password (:func:`redact_url`).

Embeddings are compared only with those of the same re-ID model: a watch-list
entry and a stored track name theirs (:func:`embedder_id_of`: name, version and
the weights file's hash, which re-exporting the ONNX graph leaves alone).

A camera's tracker lives in the server process that receives its frames: send
each camera to one process (one video source, or one gateway posting to one
worker; when several processes share a database, let only one restore the video
sources). The watch list is shared through the database: every process rebuilds
its index when the ``watchlist_version`` counter moves. So are the video sources:
a ``DELETE`` or ``PUT`` through any process changes the kept source and moves the
camera's ``source_generation``, and the process whose worker reads an earlier
generation (a source deleted, or set again, even to the same URL and settings)
stops it at its next maintenance round (:meth:`CctvService.sync_sources`).

This module knows HTTP only where :mod:`.uploads` does (its image checks answer
``HTTPException``); everything else raises the toolkit's own errors, which
:mod:`cv.inference_server.app` turns into JSON answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import HTTPException
from numpy.typing import NDArray
from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from cv.errors import (
    ConfigError,
    CustomsVisionError,
    DataFormatError,
    DataValidationError,
    NotFoundError,
)
from cv.inference_server import alerts, db, uploads
from cv.inference_server.db import as_utc
from cv.inference_server.storage import ImageStore

if TYPE_CHECKING:
    from cv.models.cctv import FrameResult, MultiCameraPipeline, TrackSummary, WatchlistMatcher
    from cv.models.cctv import Sighting as PipelineSighting
    from cv.models.gallery import VectorIndex
    from cv.models.reid import Embedder
    from cv.models.runtime import Detector

log = logging.getLogger(__name__)

PURPOSES: dict[str, bool] = {
    "customs-control": True,
    "safety": False,
    "crowd-counting": False,
    "passenger-flow": False,
}
"""Declared camera purposes and whether each allows watch-list matching.

Only ``customs-control`` cameras (customs halls, baggage reclaim, exits: places
where customs has the legal task of finding a flagged traveller) feed the
watch-list matcher. Cameras installed for safety, crowd counting or passenger
flow were put up, and signposted, for another purpose; using them to identify
people would need a purpose of their own (PIPA art. 25). They are registered so
that the inventory is complete, but their frames are refused.
"""

SIGHTING_STATES: tuple[str, ...] = ("candidate", "confirmed", "rejected")
"""A sighting is a candidate until an inspector confirms or rejects it."""

AUDIT_ACTIONS: tuple[str, ...] = (
    "enrol",
    "revoke",
    "expire",
    "search",
    "match",
    "confirm",
    "reject",
    "purge",
    "camera",
    "export",
)
"""Every action the audit log records."""

SYSTEM = "system"
"""The actor of what the server does by itself (matches, expiries, scheduled purges)."""

VERSION_COUNTER = "watchlist_version"
"""Counter bumped whenever the set of active entries changes."""

REID_PRIORITY = 2
"""Priority of re-ID alerts (X-ray alerts start at 1): a person moves on."""

CANDIDATE_NOTICE = "candidate — confirm identity before any action"
"""Shown with every re-ID alert: a match is a lead for a person to check, never a decision."""

JPEG_QUALITY = 90
"""Quality of the stored frames and crops."""

TRACK_WINDOW_S = 1.0
"""Slack when a track's time span is compared with a sighting's time."""

FRAME_AHEAD_S = 300.0
"""How far ahead of the server's clock a frame's time may lie, in seconds.

Camera clocks kept by NTP drift by well under a second; five minutes allows a
badly kept one. A time further ahead is a wrong clock or a wrong unit, and
stored as a track's ``last_seen`` it would outlive the retention period. The
earliest time accepted is ``reid_retention_days`` before now: anything older
would be due for deletion already (:func:`check_frame_time`).
"""

RECONNECT_FIRST_S = 1.0
"""Wait before reopening a live stream that dropped; doubled after each failed try..."""

RECONNECT_MAX_S = 30.0
"""... up to this many seconds between tries, until the source is stopped."""

SOURCE_STOP_S = 30.0
"""How long stopping a source waits for its worker; a read that blocks longer (a
stalled stream) is left to end by itself, fenced off from the camera."""


class CctvNotReady(Exception):
    """The re-ID models are not loaded (HTTP 503): the CCTV routes cannot work."""


class CameraRefused(Exception):
    """The camera may not be used this way: its purpose or state forbids it (HTTP 403)."""


class EntryEnded(CustomsVisionError):
    """The watch-list entry was revoked or has expired (HTTP 409)."""


class EntryOtherEmbedder(EntryEnded):
    """The entry's vectors were made by another re-ID model than the one loaded: they
    cannot be compared with its embeddings or judged by its threshold (HTTP 409, as
    :class:`EntryEnded`: the entry cannot be used until it is enrolled again)."""


# --------------------------------------------------------------------------- helpers


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def from_epoch(t: float) -> datetime:
    """Seconds since the epoch as aware UTC."""
    return datetime.fromtimestamp(t, UTC)


def check_frame_time(
    t: float, *, now: float, retention_days: float, field: str = "timestamp"
) -> datetime:
    """A frame's time as aware UTC, once it lies in the accepted window.

    The window runs from ``retention_days`` before ``now`` (older data would be
    deleted at once) to :data:`FRAME_AHEAD_S` after it. Checked before the
    camera's pipeline sees the frame, so a refused time leaves the camera as it
    was: its next frame with a right time goes through.

    Args:
        t: The frame's time, seconds since the epoch.
        now: The server's clock, seconds since the epoch.
        retention_days: The retention period (``reid_retention_days``).
        field: What the error names.

    Raises:
        DataValidationError: Naming ``field`` and the window (with a hint when the
            value looks like milliseconds, microseconds or nanoseconds).
    """
    earliest = now - retention_days * 86400.0
    latest = now + FRAME_AHEAD_S
    if math.isfinite(t) and earliest <= t <= latest:
        return from_epoch(t)
    try:
        when = from_epoch(t).isoformat(timespec="seconds")
    except (ValueError, OverflowError, OSError):
        when = "not a date"
    hint = ""
    for unit, factor in (("milliseconds", 1e3), ("microseconds", 1e6), ("nanoseconds", 1e9)):
        if math.isfinite(t) and earliest <= t / factor <= latest:
            hint = f"; it looks like {unit} since the epoch: send seconds ({t / factor:.3f})"
            break
    first = from_epoch(earliest).isoformat(timespec="seconds")
    last = from_epoch(latest).isoformat(timespec="seconds")
    raise DataValidationError(
        f"frame time {t!r} ({when}) is outside the accepted window {first} to {last}: "
        f"not older than the retention period ({retention_days:g} days) and at most "
        f"{FRAME_AHEAD_S:g} s ahead of the server's clock (seconds since the epoch or ISO "
        f"8601){hint}",
        field=field,
    )


_SECRET_PARAM = re.compile(
    r"(pass|passwd|password|passphrase|pwd|pw|secret|token|key|apikey|api_key|auth|sig|signature)$",
    re.IGNORECASE,
)
"""Query parameters whose value :func:`redact_url` masks: those whose name ends with
one of these words (``password``, ``user_pwd``, ``access_token``, ``X-Amz-Signature``),
as cameras and gateways that take their password in the query string name it."""

_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")


def _redact_param(param: str) -> str:
    name, eq, value = param.partition("=")
    if eq and value and _SECRET_PARAM.search(name):
        return f"{name}=***"
    return param


def redact_url(url: str) -> str:
    """``url`` without its password, as answers, the audit log and the log show it.

    The password of the user information (``rtsp://user:***@host/...``) and the
    value of every query parameter named like a password or a token
    (``...?user=admin&password=***``, :data:`_SECRET_PARAM`) are masked; a file
    path is left as it is. The same URL always gives the same text, which stands
    for the URL when a client sends it back (:meth:`CctvService.start_source`).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    slash = rest.find("/")
    head, after = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    userinfo, at, host = head.rpartition("@")
    if at and ":" in re.split(r"[?#]", userinfo, maxsplit=1)[0]:
        # A password holding an unencoded "#" or "?" (admin:Admin#123@cam): the user
        # information runs to the last "@" before the path. FFmpeg cannot open such a
        # URL, but its error names it, so it is masked all the same.
        rest = f"{userinfo.split(':', 1)[0]}:***@{host}{after}"
    # The authority ends at the first "/", "?" or "#" (RFC 3986, as FFmpeg reads it).
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    tail, hash_, fragment = tail.partition("#")
    path, qmark, query = tail.partition("?")
    if qmark:
        query = "&".join(_redact_param(p) for p in query.split("&"))
    return f"{scheme}://{netloc}{path}{qmark}{query}{hash_}{fragment}"


def redact_text(text: str) -> str:
    """``text`` with every URL in it passed through :func:`redact_url` (an error
    message, an audit line's ``source:<url>``). A URL runs to the next space or
    quote; punctuation that ends it (``rtsp://...: no frame``) is the sentence's."""

    def redacted(match: re.Match[str]) -> str:
        url = match.group(0)
        kept = url.rstrip(".,;:!?)]}")
        return redact_url(kept) + url[len(kept) :]

    return _URL_IN_TEXT.sub(redacted, text)


def _redact_json(value: Any) -> Any:
    """A JSON value with every URL in its strings redacted (:func:`redact_text`)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_json(v) for v in value]
    return value


def encode_jpeg(image: NDArray[np.uint8], *, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of an ``(H, W, 3) uint8`` RGB image."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def vector_bytes(vector: NDArray[np.floating]) -> bytes:
    """A vector as the little-endian float32 bytes stored in the database."""
    return np.asarray(vector, dtype="<f4").reshape(-1).tobytes()


def vector_of(data: bytes, dim: int) -> NDArray[np.float32]:
    """The ``(dim,)`` float32 vector stored as ``data``."""
    return np.frombuffer(data, dtype="<f4", count=dim).astype(np.float32)


def watchlist_allowed(purpose: str) -> bool:
    """Whether a camera of this declared purpose may feed the watch-list matcher.

    Raises:
        DataValidationError: If the purpose is not one of :data:`PURPOSES`.
    """
    if purpose not in PURPOSES:
        raise DataValidationError(
            f"unknown purpose {purpose!r}; declared purposes: {', '.join(PURPOSES)}",
            field="purpose",
        )
    return PURPOSES[purpose]


# --------------------------------------------------------------------------- audit


def audit(
    session: Session,
    *,
    actor: str,
    action: str,
    list_name: str | None = None,
    entry_id: str | None = None,
    camera_id: str | None = None,
    track_id: int | None = None,
    sighting_id: int | None = None,
    input_sha256: str | None = None,
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> db.AuditEntry:
    """Adds one line to the audit log inside ``session``'s transaction (commit it yourself).

    Args:
        session: The session whose transaction makes the audited change.
        actor: The token's name, or :data:`SYSTEM`.
        action: One of :data:`AUDIT_ACTIONS`.
        list_name: The watch list concerned.
        entry_id: The entry concerned.
        camera_id: The camera the input came from.
        track_id: The track that was the input.
        sighting_id: The sighting concerned.
        input_sha256: sha256 of the input image (enrolment image, sighting frame).
        detail: Everything else worth keeping (JSON).
        at: When; now by default.
    """
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    row = db.AuditEntry(
        at=at or db.utcnow(),
        actor=actor,
        action=action,
        list_name=list_name,
        entry_id=entry_id,
        camera_id=camera_id,
        track_id=track_id,
        sighting_id=sighting_id,
        input_sha256=input_sha256,
        detail=dict(detail) if detail is not None else None,
    )
    session.add(row)
    return row


def list_audit(
    session: Session,
    *,
    action: str | None = None,
    actor: str | None = None,
    entry_id: str | None = None,
    camera_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_id: int = 0,
    before_id: int | None = None,
    newest_first: bool = False,
    limit: int = 100,
) -> list[db.AuditEntry]:
    """Audit lines with ``after_id < id < before_id`` matching the filters, oldest
    first (to follow the log) or ``newest_first`` (to show its latest lines)."""
    query = select(db.AuditEntry).where(db.AuditEntry.id > after_id)
    if before_id is not None:
        query = query.where(db.AuditEntry.id < before_id)
    if action is not None:
        query = query.where(db.AuditEntry.action == action)
    if actor is not None:
        query = query.where(db.AuditEntry.actor == actor)
    if entry_id is not None:
        query = query.where(db.AuditEntry.entry_id == entry_id)
    if camera_id is not None:
        query = query.where(db.AuditEntry.camera_id == camera_id)
    if since is not None:
        query = query.where(db.AuditEntry.at >= as_utc(since))
    if until is not None:
        query = query.where(db.AuditEntry.at < as_utc(until))
    order = db.AuditEntry.id.desc() if newest_first else db.AuditEntry.id
    return list(session.scalars(query.order_by(order).limit(limit)))


def audit_record(row: db.AuditEntry) -> dict[str, Any]:
    """One audit line as JSON, with every URL in its detail shown without its password.

    Lines are redacted when they are written too, but the log is append-only:
    lines written by earlier versions (a ``match`` line's ``source:<url>`` with the
    password, a URL whose password was in its query string) are masked here.
    """
    return {
        "id": row.id,
        "at": _iso(row.at),
        "actor": row.actor,
        "action": row.action,
        "list_name": row.list_name,
        "entry_id": row.entry_id,
        "camera_id": row.camera_id,
        "track_id": row.track_id,
        "sighting_id": row.sighting_id,
        "input_sha256": row.input_sha256,
        "detail": None if row.detail is None else _redact_json(row.detail),
    }


# --------------------------------------------------------------------------- cameras


def register_camera(
    session: Session,
    *,
    camera_id: str,
    site: str,
    location: str,
    purpose: str,
    fps: float = 10.0,
    active: bool = True,
    actor: str,
) -> tuple[db.Camera, bool]:
    """Registers a camera, or updates it when the id exists; audited (``camera``).

    ``watchlist_allowed`` follows from the purpose. Commits.

    Returns:
        The camera and whether it was created.

    Raises:
        DataValidationError: Unknown purpose, or a frame rate that is not positive.
    """
    allowed = watchlist_allowed(purpose)
    if not (math.isfinite(fps) and 0 < fps <= 120):
        raise DataValidationError(f"must be in (0, 120] frames/s, got {fps}", field="fps")
    now = db.utcnow()
    camera = session.get(db.Camera, camera_id)
    created = camera is None
    before = None if camera is None else camera_record(camera)
    if camera is None:
        camera = db.Camera(id=camera_id, created_by=actor, created_at=now)
        session.add(camera)
    camera.site = site
    camera.location = location
    camera.purpose = purpose
    camera.watchlist_allowed = allowed
    camera.fps = float(fps)
    camera.active = active
    camera.updated_at = now
    after = {"site": site, "location": location, "purpose": purpose, "fps": fps, "active": active}
    audit(
        session,
        actor=actor,
        action="camera",
        camera_id=camera_id,
        detail={
            "event": "registered" if created else "updated",
            **after,
            "watchlist_allowed": allowed,
            **({} if before is None else {"before": {k: before[k] for k in after}}),
        },
        at=now,
    )
    session.commit()
    return camera, created


def get_camera(session: Session, camera_id: str) -> db.Camera:
    """The camera ``camera_id``.

    Raises:
        NotFoundError: If there is none.
    """
    camera = session.get(db.Camera, camera_id)
    if camera is None:
        raise NotFoundError(
            f"unknown camera {camera_id!r}; register it first (POST /v1/cameras)", field="camera_id"
        )
    return camera


def list_cameras(session: Session) -> list[db.Camera]:
    """Every camera, by id."""
    return list(session.scalars(select(db.Camera).order_by(db.Camera.id)))


def camera_record(camera: db.Camera) -> dict[str, Any]:
    """A camera as JSON."""
    return {
        "id": camera.id,
        "site": camera.site,
        "location": camera.location,
        "purpose": camera.purpose,
        "watchlist_allowed": camera.watchlist_allowed,
        "active": camera.active,
        "fps": camera.fps,
        "source_url": None if camera.source_url is None else redact_url(camera.source_url),
        "created_by": camera.created_by,
        "created_at": _iso(camera.created_at),
        "updated_at": _iso(camera.updated_at),
    }


def check_feeds_watchlist(camera: db.Camera) -> None:
    """Refuses a camera that may not feed the watch-list matcher.

    Raises:
        CameraRefused: If the camera is inactive or its purpose does not allow it.
    """
    if not camera.watchlist_allowed:
        raise CameraRefused(
            f"camera {camera.id!r} is declared for purpose {camera.purpose!r}, which does not "
            "allow watch-list matching; its frames are not processed or stored "
            f"(purposes that allow it: {', '.join(p for p, ok in PURPOSES.items() if ok)})"
        )
    if not camera.active:
        raise CameraRefused(f"camera {camera.id!r} is inactive; activate it first")


# --------------------------------------------------------------------------- watch list


@dataclass(frozen=True, slots=True)
class Authorisation:
    """What puts a person on a watch list: who decided it, why, on what basis, until when.

    Attributes:
        label: How inspectors see the entry (a case reference, not necessarily a name).
        list_name: The watch list it belongs to.
        authorised_by: Who authorised it (a person and office, a warrant number).
        reason: Why.
        legal_basis: The legal provision or decision it rests on.
        expires_at: When the authorisation ends (the entry stops matching).
    """

    label: str
    list_name: str
    authorised_by: str
    reason: str
    legal_basis: str
    expires_at: datetime


def check_authorisation(auth: Authorisation, *, now: datetime, max_days: float) -> Authorisation:
    """Checks an enrolment's authorisation; returns it with the fields trimmed.

    Raises:
        DataValidationError: Naming the field: an empty label, list, authoriser,
            reason or legal basis; an expiry that is not in the future or lies more
            than ``max_days`` ahead.
    """
    values = {}
    for name in ("label", "list_name", "authorised_by", "reason", "legal_basis"):
        value = getattr(auth, name).strip()
        if not value:
            raise DataValidationError(
                "required: a watch-list entry must record who authorised it, why and on "
                "what legal basis",
                field=name,
            )
        values[name] = value
    expires = as_utc(auth.expires_at)
    if expires <= now:
        raise DataValidationError(
            f"{expires.isoformat()} is not in the future (now {now.isoformat(timespec='seconds')})"
            "; an entry needs an expiry ahead of its enrolment",
            field="expires_at",
        )
    latest = now + timedelta(days=max_days)
    if expires > latest:
        raise DataValidationError(
            f"{expires.isoformat()} is more than {max_days:g} days ahead (latest "
            f"{latest.isoformat(timespec='seconds')}); renew the authorisation instead",
            field="expires_at",
        )
    return Authorisation(**values, expires_at=expires)


@dataclass(frozen=True, slots=True)
class EnrolmentImage:
    """One enrolment image after its person was found and embedded.

    Attributes:
        name: Its file name as uploaded.
        sha256: sha256 of its bytes.
        box: The person's ``xyxy`` box in it (the largest person found).
        crop: The person crop, ``(h, w, 3) uint8`` RGB (stored as the reference).
        vector: The crop's embedding, float32, L2-normalised.
    """

    name: str
    sha256: str
    box: tuple[float, float, float, float]
    crop: NDArray[np.uint8]
    vector: NDArray[np.float32]


def is_active(entry: db.WatchlistEntry, now: datetime) -> bool:
    """Whether an entry may match now: neither revoked nor expired."""
    return entry.revoked_at is None and as_utc(entry.expires_at) > now


def entry_state(entry: db.WatchlistEntry, now: datetime) -> str:
    """``active``, ``revoked`` or ``expired``."""
    if entry.revoked_at is not None:
        return "revoked"
    return "active" if as_utc(entry.expires_at) > now else "expired"


def entry_record(entry: db.WatchlistEntry, now: datetime) -> dict[str, Any]:
    """An entry as JSON (its vectors are never shown)."""
    return {
        "id": entry.id,
        "label": entry.label,
        "list_name": entry.list_name,
        "state": entry_state(entry, now),
        "authorised_by": entry.authorised_by,
        "reason": entry.reason,
        "legal_basis": entry.legal_basis,
        "created_by": entry.created_by,
        "created_at": _iso(entry.created_at),
        "expires_at": _iso(entry.expires_at),
        "revoked_at": _iso(entry.revoked_at),
        "revoked_by": entry.revoked_by,
        "revoke_reason": entry.revoke_reason,
        "expired_at": _iso(entry.expired_at),
        "embedder": entry.embedder,
        "images": len(entry.vectors),
        "reference_url": reference_url(entry.id)
        if any(v.crop_path for v in entry.vectors)
        else None,
    }


def reference_url(entry_id: str) -> str:
    """Where an entry's reference crop is served (for inspectors to compare)."""
    return f"/v1/watchlist/entries/{entry_id}/reference"


def get_entry(session: Session, entry_id: str) -> db.WatchlistEntry:
    """The entry ``entry_id``.

    Raises:
        NotFoundError: If there is none.
    """
    entry = session.get(db.WatchlistEntry, entry_id)
    if entry is None:
        raise NotFoundError(f"no watch-list entry {entry_id!r}", field="entry_id")
    return entry


def list_entries(
    session: Session, *, now: datetime, state: str | None = None, list_name: str | None = None
) -> list[db.WatchlistEntry]:
    """Entries, newest first, filtered by state (``active``, ``revoked``, ``expired``) and list."""
    query = select(db.WatchlistEntry)
    if list_name is not None:
        query = query.where(db.WatchlistEntry.list_name == list_name)
    if state == "active":
        query = query.where(
            db.WatchlistEntry.revoked_at.is_(None), db.WatchlistEntry.expires_at > now
        )
    elif state == "revoked":
        query = query.where(db.WatchlistEntry.revoked_at.is_not(None))
    elif state == "expired":
        query = query.where(
            db.WatchlistEntry.revoked_at.is_(None), db.WatchlistEntry.expires_at <= now
        )
    return list(session.scalars(query.order_by(db.WatchlistEntry.created_at.desc())))


def bump_version(session: Session) -> None:
    """Tells every server process that the set of active entries changed."""
    session.execute(
        update(db.Counter)
        .where(db.Counter.name == VERSION_COUNTER)
        .values(value=db.Counter.value + 1)
    )


def watchlist_version(session: Session) -> int:
    """The current value of the ``watchlist_version`` counter."""
    return int(
        session.scalar(select(db.Counter.value).where(db.Counter.name == VERSION_COUNTER)) or 0
    )


def store_enrolment(
    session: Session,
    store: ImageStore,
    *,
    auth: Authorisation,
    images: Sequence[EnrolmentImage],
    embedder_id: str,
    actor: str,
    now: datetime,
) -> db.WatchlistEntry:
    """Stores a checked enrolment: the entry, its vectors and reference crops, the audit line.

    One transaction; commits. ``auth`` must have passed :func:`check_authorisation`
    and every image must hold a person (:meth:`CctvService.embed_enrolment`).
    """
    entry = db.WatchlistEntry(
        id="wl-" + secrets.token_hex(6),
        label=auth.label,
        list_name=auth.list_name,
        authorised_by=auth.authorised_by,
        reason=auth.reason,
        legal_basis=auth.legal_basis,
        created_by=actor,
        created_at=now,
        expires_at=auth.expires_at,
        embedder=embedder_id,
    )
    saved: list[str] = []
    try:
        for image in images:
            crop = store.save(encode_jpeg(image.crop), "image/jpeg")
            saved.append(crop.path)
            entry.vectors.append(
                db.WatchlistVector(
                    vector=vector_bytes(image.vector),
                    dim=int(image.vector.shape[-1]),
                    image_sha256=image.sha256,
                    box=[float(v) for v in image.box],
                    crop_path=crop.path,
                )
            )
        session.add(entry)
        audit(
            session,
            actor=actor,
            action="enrol",
            list_name=entry.list_name,
            entry_id=entry.id,
            input_sha256=images[0].sha256,
            detail={
                "label": entry.label,
                "authorised_by": entry.authorised_by,
                "reason": entry.reason,
                "legal_basis": entry.legal_basis,
                "expires_at": _iso(entry.expires_at),
                "embedder": embedder_id,
                "images": [
                    {"name": i.name, "sha256": i.sha256, "box": [round(v, 1) for v in i.box]}
                    for i in images
                ],
            },
            at=now,
        )
        bump_version(session)
        session.commit()
    except BaseException:
        session.rollback()
        delete_unreferenced(session, store, saved)
        raise
    return entry


def _drop_vectors(session: Session, entry: db.WatchlistEntry) -> tuple[int, list[str]]:
    paths = [v.crop_path for v in entry.vectors if v.crop_path]
    count = len(entry.vectors)
    entry.vectors.clear()  # delete-orphan: the rows go with the flush
    return count, paths


def revoke_entry(
    session: Session,
    store: ImageStore,
    entry_id: str,
    *,
    actor: str,
    reason: str,
    now: datetime,
) -> db.WatchlistEntry:
    """Revokes an entry: it stops matching at once; its vectors and crops are deleted. Commits.

    Raises:
        NotFoundError: If there is no such entry.
        EntryEnded: If it was revoked or has expired already.
        DataValidationError: If the reason is empty.
    """
    if not reason.strip():
        raise DataValidationError("required: say why the entry is revoked", field="reason")
    entry = get_entry(session, entry_id)
    if not is_active(entry, now):
        raise EntryEnded(f"entry {entry_id} is {entry_state(entry, now)} already", field="state")
    entry.revoked_at = now
    entry.revoked_by = actor
    entry.revoke_reason = reason.strip()
    count, paths = _drop_vectors(session, entry)
    audit(
        session,
        actor=actor,
        action="revoke",
        list_name=entry.list_name,
        entry_id=entry.id,
        detail={"reason": entry.revoke_reason, "vectors_deleted": count},
        at=now,
    )
    bump_version(session)
    session.commit()
    delete_unreferenced(session, store, paths)
    return entry


def expire_due(session: Session, store: ImageStore, *, now: datetime) -> list[str]:
    """Records the expiry of every entry whose ``expires_at`` has passed. Commits.

    Each gets ``expired_at``, loses its vectors and reference crops, and an
    ``expire`` audit line by :data:`SYSTEM`.

    Returns:
        The ids of the entries that expired.
    """
    due = list(
        session.scalars(
            select(db.WatchlistEntry).where(
                db.WatchlistEntry.expires_at <= now,
                db.WatchlistEntry.expired_at.is_(None),
                db.WatchlistEntry.revoked_at.is_(None),
            )
        )
    )
    paths: list[str] = []
    for entry in due:
        entry.expired_at = now
        count, dropped = _drop_vectors(session, entry)
        paths += dropped
        audit(
            session,
            actor=SYSTEM,
            action="expire",
            list_name=entry.list_name,
            entry_id=entry.id,
            detail={"expires_at": _iso(entry.expires_at), "vectors_deleted": count},
            at=now,
        )
    if due:
        bump_version(session)
    session.commit()
    delete_unreferenced(session, store, paths)
    return [e.id for e in due]


@dataclass(slots=True)
class IndexSnapshot:
    """The active entries' vectors, as every matcher of this process sees them.

    Attributes:
        index: The vector index (keys are entry ids).
        labels: Entry id -> label.
        version: The ``watchlist_version`` it was built at.
        entries: Active entries in the index.
        other_embedder: Active entries whose vectors another embedder made (left
            out: they cannot be compared; re-enrol them).
    """

    index: VectorIndex
    labels: dict[str, str]
    version: int
    entries: int
    other_embedder: int


def build_index(session: Session, *, dim: int, embedder_id: str, now: datetime) -> IndexSnapshot:
    """An index of the vectors of every active entry made by ``embedder_id``."""
    from cv.models.gallery import VectorIndex

    version = watchlist_version(session)
    index = VectorIndex(dim)
    labels: dict[str, str] = {}
    other = 0
    entries = session.scalars(
        select(db.WatchlistEntry).where(
            db.WatchlistEntry.revoked_at.is_(None), db.WatchlistEntry.expires_at > now
        )
    )
    for entry in entries:
        if entry.embedder != embedder_id:
            other += 1
            continue
        vectors = [vector_of(v.vector, v.dim) for v in entry.vectors if v.dim == dim]
        if not vectors:
            continue
        index.add([entry.id] * len(vectors), np.stack(vectors))
        labels[entry.id] = entry.label
    if other:
        log.warning(
            "%d active watch-list entries were enrolled with another re-ID model than %s; "
            "they cannot match until they are enrolled again",
            other,
            embedder_id,
        )
    return IndexSnapshot(index, labels, version, len(labels), other)


# --------------------------------------------------------------------------- sightings


def reid_payload(
    *,
    sighting: db.Sighting,
    camera: db.Camera,
    entry: db.WatchlistEntry,
    created_at: datetime,
) -> dict[str, Any]:
    """What a handheld receives for a re-ID alert; drawn like an X-ray alert's boxes."""
    seen = as_utc(sighting.seen_at)
    when = seen.strftime("%Y-%m-%d %H:%M:%S UTC")
    return {
        "sighting_id": sighting.id,
        "camera_id": camera.id,
        "entry_id": entry.id,
        "label": entry.label,
        "list_name": entry.list_name,
        "site": camera.site,
        "lane": camera.location,
        "location": camera.location,
        "track_id": sighting.track_id,
        "seen_at": seen.isoformat(),
        "image_url": f"/v1/sightings/{sighting.id}/frame",
        "crop_url": f"/v1/sightings/{sighting.id}/crop",
        "reference_url": reference_url(entry.id),
        "width": sighting.width,
        "height": sighting.height,
        "boxes": [
            {
                "box": [float(v) for v in sighting.box],
                "category": entry.label,
                "score": float(sighting.similarity),
            }
        ],
        "similarity": float(sighting.similarity),
        "threshold": float(sighting.threshold),
        "reasons": [
            f"watch-list {entry.label}: similarity {sighting.similarity:.2f} >= threshold "
            f"{sighting.threshold:.2f}, camera {camera.id}, {when}"
        ],
        "candidate": True,
        "notice": CANDIDATE_NOTICE,
        "created_at": created_at.isoformat(),
    }


def record_sighting(
    session: Session,
    store: ImageStore,
    *,
    found: PipelineSighting,
    camera: db.Camera,
    ack_deadline_s: float,
    source: str,
    embedder_id: str,
) -> tuple[db.Sighting, db.Alert] | None:
    """Stores a pipeline sighting, its ``reid`` alert and a ``match`` audit line; commits.

    The entry is checked in the database first: a revoked or expired entry never
    makes a sighting, whatever an index still held.

    Args:
        session: A fresh session (this commits).
        store: Where frames and crops are stored.
        found: The matcher's sighting (frame and crop RGB, box, similarity...).
        camera: The camera it was seen on.
        ack_deadline_s: Seconds an inspector has to acknowledge the alert.
        source: Who delivered the frame (a token name, or ``source:<url>``).
        embedder_id: The embedder that made the track's embedding.

    Returns:
        The sighting and its alert, or ``None`` when the entry is no longer active.
    """
    now = db.utcnow()
    entry = session.get(db.WatchlistEntry, found.entry_key)
    if entry is None or not is_active(entry, now):
        log.info("dropped a match of %s: the entry is no longer active", found.entry_key)
        return None
    saved: list[str] = []
    try:
        frame = found.frame
        height, width = (0, 0) if frame is None else frame.shape[:2]
        frame_ref = crop_ref = None
        if frame is not None:
            frame_ref = store.save(encode_jpeg(frame), "image/jpeg")
            saved.append(frame_ref.path)
        if found.crop is not None:
            crop_ref = store.save(encode_jpeg(found.crop), "image/jpeg")
            saved.append(crop_ref.path)
        sighting = db.Sighting(
            entry_id=entry.id,
            camera_id=camera.id,
            track_id=int(found.track_id),
            seen_at=from_epoch(found.time),
            # Float rounding can put the cosine of a vector with itself a hair above 1.
            similarity=min(1.0, float(found.similarity)),
            threshold=float(found.threshold),
            box=[float(v) for v in found.box],
            frame_path=None if frame_ref is None else frame_ref.path,
            crop_path=None if crop_ref is None else crop_ref.path,
            width=int(width),
            height=int(height),
            state="candidate",
            created_at=now,
        )
        session.add(sighting)
        session.flush()  # the payload names the sighting's id
        seq = alerts.next_alert_seq(session)
        alert = db.Alert(
            seq=seq,
            scan_id=None,
            kind="reid",
            site=camera.site,
            lane=camera.location,
            priority=REID_PRIORITY,
            state="open",
            escalated=False,
            payload=reid_payload(sighting=sighting, camera=camera, entry=entry, created_at=now),
            created_at=now,
            ack_deadline=now + timedelta(seconds=ack_deadline_s),
            resend_count=0,
        )
        session.add(alert)
        session.flush()
        session.add(db.AlertEvent(alert_seq=seq, event="created", at=now, data={"boxes": 1}))
        sighting.alert_seq = seq
        audit(
            session,
            actor=SYSTEM,
            action="match",
            list_name=entry.list_name,
            entry_id=entry.id,
            camera_id=camera.id,
            track_id=sighting.track_id,
            sighting_id=sighting.id,
            input_sha256=None if frame_ref is None else frame_ref.sha256,
            detail={
                "similarity": round(float(found.similarity), 4),
                "threshold": round(float(found.threshold), 4),
                "seen_at": _iso(sighting.seen_at),
                "alert_seq": seq,
                "crop_sha256": None if crop_ref is None else crop_ref.sha256,
                "embedder": embedder_id,
                "source": source,
                # People other than the matched one pixelated in the stored frame;
                # None: the frame is stored as the camera saw it (redaction off).
                "bystanders_redacted": found.redacted,
            },
            at=now,
        )
        session.commit()
    except BaseException:
        session.rollback()
        delete_unreferenced(session, store, saved)
        raise
    return sighting, alert


def sighting_record(
    sighting: db.Sighting, entry: db.WatchlistEntry | None = None
) -> dict[str, Any]:
    """A sighting as JSON."""
    return {
        "id": sighting.id,
        "entry_id": sighting.entry_id,
        "label": None if entry is None else entry.label,
        "list_name": None if entry is None else entry.list_name,
        "camera_id": sighting.camera_id,
        "track_id": sighting.track_id,
        "seen_at": _iso(sighting.seen_at),
        "similarity": sighting.similarity,
        "threshold": sighting.threshold,
        "box": sighting.box,
        "width": sighting.width,
        "height": sighting.height,
        "state": sighting.state,
        "resolved_by": sighting.resolved_by,
        "resolved_at": _iso(sighting.resolved_at),
        "note": sighting.note,
        "alert_seq": sighting.alert_seq,
        "frame_url": None if sighting.frame_path is None else f"/v1/sightings/{sighting.id}/frame",
        "crop_url": None if sighting.crop_path is None else f"/v1/sightings/{sighting.id}/crop",
        "images_purged_at": _iso(sighting.images_purged_at),
        "created_at": _iso(sighting.created_at),
    }


def get_sighting(session: Session, sighting_id: int) -> db.Sighting:
    """The sighting ``sighting_id``.

    Raises:
        NotFoundError: If there is none.
    """
    sighting = session.get(db.Sighting, sighting_id)
    if sighting is None:
        raise NotFoundError(f"no sighting {sighting_id}", field="sighting_id")
    return sighting


def list_sightings(
    session: Session,
    *,
    state: str | None = None,
    camera_id: str | None = None,
    entry_id: str | None = None,
    site: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[tuple[db.Sighting, db.WatchlistEntry]]:
    """Sightings matching the filters, newest first (``before_id`` pages back)."""
    query = select(db.Sighting, db.WatchlistEntry).join(
        db.WatchlistEntry, db.WatchlistEntry.id == db.Sighting.entry_id
    )
    if state is not None:
        query = query.where(db.Sighting.state == state)
    if camera_id is not None:
        query = query.where(db.Sighting.camera_id == camera_id)
    if entry_id is not None:
        query = query.where(db.Sighting.entry_id == entry_id)
    if site is not None:
        query = query.join(db.Camera, db.Camera.id == db.Sighting.camera_id).where(
            db.Camera.site == site
        )
    if since is not None:
        query = query.where(db.Sighting.seen_at >= as_utc(since))
    if until is not None:
        query = query.where(db.Sighting.seen_at < as_utc(until))
    if before_id is not None:
        query = query.where(db.Sighting.id < before_id)
    rows = session.execute(query.order_by(db.Sighting.id.desc()).limit(limit)).all()
    return [(s, e) for s, e in rows]


def _track_window(sighting: db.Sighting) -> Any:
    """Rows of ``reid_tracks`` that are the sighting's track (same camera, id and time)."""
    slack = timedelta(seconds=TRACK_WINDOW_S)
    seen = as_utc(sighting.seen_at)
    return and_(
        db.ReidTrack.camera_id == sighting.camera_id,
        db.ReidTrack.track_id == sighting.track_id,
        db.ReidTrack.first_seen <= seen + slack,
        db.ReidTrack.last_seen >= seen - slack,
    )


def stage_verdict(
    session: Session, alert_seq: int, *, verdict: str, actor: str, note: str | None
) -> db.Sighting | None:
    """Applies an inspector's verdict on a re-ID alert to its sighting, without committing.

    Call before :func:`cv.inference_server.alerts.confirm` / ``reject`` on the same
    session: their commit makes the sighting's new state, its audit line and the
    alert's verdict one transaction, and a verdict the alert's state refuses
    (HTTP 409) rolls all of it back. Alerts of other kinds are left alone.

    Args:
        session: The request's session.
        alert_seq: The alert the inspector decided on.
        verdict: ``confirmed`` (the same person) or ``rejected`` (not the same person).
        actor: The inspector's token name.
        note: The inspector's note.

    Returns:
        The sighting, or ``None`` for an alert that is not a re-ID alert.
    """
    if verdict not in ("confirmed", "rejected"):
        raise ValueError(f"verdict must be confirmed or rejected, got {verdict!r}")
    alert = session.get(db.Alert, alert_seq)
    if alert is None or alert.kind != "reid":
        return None
    sighting = session.scalar(select(db.Sighting).where(db.Sighting.alert_seq == alert_seq))
    if sighting is None or sighting.state != "candidate":
        return sighting  # the alert's own state check answers the conflict
    now = db.utcnow()
    sighting.state = verdict
    sighting.resolved_by = actor
    sighting.resolved_at = now
    sighting.note = note
    entry = session.get(db.WatchlistEntry, sighting.entry_id)
    audit(
        session,
        actor=actor,
        action="confirm" if verdict == "confirmed" else "reject",
        list_name=None if entry is None else entry.list_name,
        entry_id=sighting.entry_id,
        camera_id=sighting.camera_id,
        track_id=sighting.track_id,
        sighting_id=sighting.id,
        detail={
            "alert_seq": alert_seq,
            "similarity": round(sighting.similarity, 4),
            "meaning": "same person" if verdict == "confirmed" else "not the same person",
            "note": note,
        },
        at=now,
    )
    if verdict == "rejected":
        # Not the same person: their track matched nothing after all, and falls under
        # the retention period unless another sighting of it still stands.
        standing = exists().where(
            db.Sighting.id != sighting.id,
            db.Sighting.state != "rejected",
            db.Sighting.camera_id == sighting.camera_id,
            db.Sighting.track_id == sighting.track_id,
            db.Sighting.seen_at >= db.ReidTrack.first_seen - timedelta(seconds=TRACK_WINDOW_S),
            db.Sighting.seen_at <= db.ReidTrack.last_seen + timedelta(seconds=TRACK_WINDOW_S),
        )
        session.execute(
            update(db.ReidTrack)
            .where(_track_window(sighting), ~standing)
            .values(matched=False)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return sighting


# --------------------------------------------------------------------------- tracks


def record_tracks(
    session: Session,
    store: ImageStore,
    camera_id: str,
    finished: Iterable[TrackSummary],
    *,
    embedder_id: str,
) -> int:
    """Stores the finished tracks that were embedded: mean embedding and best crop. Commits.

    A track is marked ``matched`` when a sighting of it stands (a candidate or
    confirmed one on the same camera, track id and time); others are deleted by
    :func:`purge` after the retention period. Each row names ``embedder_id``, the
    model that made its embedding (:func:`search_tracks` compares like with like).

    Returns:
        Tracks stored.
    """
    slack = timedelta(seconds=TRACK_WINDOW_S)
    saved: list[str] = []
    count = 0
    try:
        for tr in finished:
            if tr.embedding is None:
                continue  # never embedded: nothing biometric to keep
            first, last = from_epoch(tr.first_time), from_epoch(tr.last_time)
            crop_path = None
            if tr.best_crop is not None:
                crop_path = store.save(encode_jpeg(tr.best_crop), "image/jpeg").path
                saved.append(crop_path)
            matched = session.scalar(
                select(
                    exists().where(
                        db.Sighting.camera_id == camera_id,
                        db.Sighting.track_id == tr.track_id,
                        db.Sighting.state != "rejected",
                        db.Sighting.seen_at >= first - slack,
                        db.Sighting.seen_at <= last + slack,
                    )
                )
            )
            session.add(
                db.ReidTrack(
                    camera_id=camera_id,
                    track_id=int(tr.track_id),
                    first_seen=first,
                    last_seen=last,
                    frames=int(tr.frames),
                    embedding=vector_bytes(tr.embedding),
                    dim=int(tr.embedding.shape[-1]),
                    crop_path=crop_path,
                    matched=bool(matched),
                    embedder=embedder_id,
                )
            )
            count += 1
        session.commit()
    except BaseException:
        session.rollback()
        delete_unreferenced(session, store, saved)
        raise
    return count


# --------------------------------------------------------------------------- retention


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What one purge deleted.

    Attributes:
        cutoff: Data captured before this time was due.
        tracks: Unmatched tracks deleted (embedding and crop).
        sighting_images: Rejected sightings whose frame and crop were deleted.
        files: Image files removed from disk.
    """

    cutoff: datetime
    tracks: int
    sighting_images: int
    files: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "cutoff": self.cutoff.isoformat(),
            "tracks": self.tracks,
            "sighting_images": self.sighting_images,
            "files": self.files,
        }


def purge(
    session: Session,
    store: ImageStore,
    *,
    now: datetime,
    retention_days: float,
    actor: str = SYSTEM,
    always_audit: bool = False,
) -> PurgeReport:
    """Deletes what the retention period no longer allows keeping. Commits.

    * tracks last seen before ``now - retention_days`` that matched nothing (or
      whose sightings were all rejected): the row with its embedding, and its crop;
    * rejected sightings seen before the cutoff: their frame and crop (the row stays,
      with ``images_purged_at``, as the record of a false match).

    Tracks that matched (a candidate or confirmed sighting) are kept. A purge that
    deleted something, or one run by a person (``always_audit``), is audited.
    A row also falls due when it was *stored* before the cutoff, whatever time
    the camera gave it: a time in the future (which frames can no longer carry,
    :func:`check_frame_time`, but rows stored before that check may) does not
    keep data past the retention period.
    """
    cutoff = now - timedelta(days=retention_days)
    due = and_(
        or_(db.ReidTrack.last_seen < cutoff, db.ReidTrack.created_at < cutoff),
        db.ReidTrack.matched.is_(False),
    )
    paths = [p for p in session.scalars(select(db.ReidTrack.crop_path).where(due)) if p is not None]
    tracks = session.execute(
        delete(db.ReidTrack).where(due).execution_options(synchronize_session=False)
    ).rowcount
    rejected = list(
        session.scalars(
            select(db.Sighting).where(
                db.Sighting.state == "rejected",
                or_(db.Sighting.seen_at < cutoff, db.Sighting.created_at < cutoff),
                db.Sighting.images_purged_at.is_(None),
            )
        )
    )
    for sighting in rejected:
        paths += [p for p in (sighting.frame_path, sighting.crop_path) if p]
        sighting.frame_path = None
        sighting.crop_path = None
        sighting.images_purged_at = now
    if tracks or rejected or always_audit:
        audit(
            session,
            actor=actor,
            action="purge",
            detail={
                "cutoff": cutoff.isoformat(),
                "retention_days": retention_days,
                "tracks": tracks,
                "sighting_images": len(rejected),
            },
            at=now,
        )
    session.commit()
    files = delete_unreferenced(session, store, paths)
    return PurgeReport(cutoff, tracks, len(rejected), files)


def delete_unreferenced(session: Session, store: ImageStore, paths: Iterable[str]) -> int:
    """Removes stored images that no row refers to any more (content-addressed files
    may be shared).

    Returns:
        Files removed.
    """
    removed = 0
    for rel in dict.fromkeys(paths):
        used = session.scalar(
            select(
                or_(
                    exists().where(db.ReidTrack.crop_path == rel),
                    exists().where(db.Sighting.frame_path == rel),
                    exists().where(db.Sighting.crop_path == rel),
                    exists().where(db.WatchlistVector.crop_path == rel),
                )
            )
        )
        if used:
            continue
        with contextlib.suppress(FileNotFoundError):
            (store.root / rel).unlink()
            removed += 1
    session.commit()  # ends the read transaction
    return removed


# --------------------------------------------------------------------------- search


def search_tracks(
    session: Session,
    *,
    entry_id: str,
    actor: str,
    reason: str,
    threshold: float,
    now: datetime,
    since: datetime | None = None,
    camera_id: str | None = None,
    limit: int = 20,
    embedder_id: str | None = None,
) -> list[dict[str, Any]]:
    """Searches the stored tracks (within retention) for an active entry; audited. Commits.

    A retrospective search ("where was this person seen?"): every stored track
    whose embedding the entry's own embedder made is compared with the entry's
    vectors; tracks at or above ``threshold`` are returned, best first. Tracks of
    another embedder, and those stored before tracks named their embedder
    (migration 0004), are skipped and counted in the audit line
    (``tracks_other_embedder``): which model made an unnamed one is not known.

    Args:
        embedder_id: The loaded embedder (:attr:`CctvModels.embedder_id`), whose
            ``threshold`` is given: an entry that another embedder made is refused.
            ``None`` skips that check (the tracks are still compared like with like).

    Raises:
        NotFoundError: Unknown entry.
        EntryEnded: The entry is revoked or expired (its vectors are gone).
        EntryOtherEmbedder: The entry was enrolled with another embedder than
            ``embedder_id`` (HTTP 409; nothing is searched, the refusal is audited).
        DataValidationError: An empty reason.
    """
    if not reason.strip():
        raise DataValidationError("required: say why this search is made", field="reason")
    entry = get_entry(session, entry_id)
    if not is_active(entry, now):
        raise EntryEnded(f"entry {entry_id} is {entry_state(entry, now)}", field="state")

    def audited(**detail: Any) -> None:
        audit(
            session,
            actor=actor,
            action="search",
            list_name=entry.list_name,
            entry_id=entry.id,
            camera_id=camera_id,
            detail={"reason": reason.strip(), **detail},
            at=now,
        )
        session.commit()

    if embedder_id is not None and entry.embedder != embedder_id:
        why = (
            f"entry {entry_id} was enrolled with re-ID model {entry.embedder}, not the loaded "
            f"{embedder_id}: their embeddings cannot be compared; enrol the person again"
        )
        audited(refused=why)
        raise EntryOtherEmbedder(why, field="embedder")
    vectors = np.stack([vector_of(v.vector, v.dim) for v in entry.vectors])
    query = select(db.ReidTrack)
    if since is not None:
        query = query.where(db.ReidTrack.last_seen >= as_utc(since))
    if camera_id is not None:
        query = query.where(db.ReidTrack.camera_id == camera_id)
    hits: list[tuple[float, db.ReidTrack]] = []
    searched = other = 0
    for track in session.scalars(query):
        if track.embedder != entry.embedder or track.dim != vectors.shape[1]:
            other += 1
            continue
        searched += 1
        sim = float(np.max(vectors @ vector_of(track.embedding, track.dim)))
        if sim >= threshold:
            hits.append((sim, track))
    hits.sort(key=lambda h: -h[0])
    hits = hits[:limit]
    audited(
        since=_iso(since),
        tracks_searched=searched,
        tracks_other_embedder=other,
        embedder=entry.embedder,
        hits=[{"track": t.id, "similarity": round(s, 4)} for s, t in hits],
        threshold=threshold,
    )
    return [
        {
            "track_row": t.id,
            "camera_id": t.camera_id,
            "track_id": t.track_id,
            "first_seen": _iso(t.first_seen),
            "last_seen": _iso(t.last_seen),
            "similarity": round(s, 4),
            "matched": t.matched,
        }
        for s, t in hits
    ]


# --------------------------------------------------------------------------- models


@dataclass(slots=True)
class CctvModels:
    """The loaded re-ID models.

    Attributes:
        detector: The person detector (class ``person``).
        embedder: The re-ID embedder.
        threshold: Cosine similarity at which a track matches an entry.
        embedder_id: Name, version and weights hash of the embedder: vectors made
            by another embedder are not compared with its embeddings.
        reid_dir: Where the embedder was loaded from.
        person_dir: Where the detector was loaded from.
        legacy_embedder_id: The id earlier servers gave the same files
            (:func:`legacy_embedder_id_of`), when it differs from ``embedder_id``.
    """

    detector: Detector
    embedder: Embedder
    threshold: float
    embedder_id: str
    reid_dir: Path
    person_dir: Path
    legacy_embedder_id: str | None = None


def embedder_id_of(embedder: Embedder) -> str:
    """``<name>@<version>:<sha256 prefix of its weights file>``.

    The weights (the record's ``state_dict`` file) decide what an embedding means.
    The ONNX graph is made from them and changes with every export (another opset,
    another exporter) while the embeddings stay the same, so it is no part of the
    id: re-exporting keeps the watch list matching. A record without a weights
    file is known by its smallest file hash, as before (:func:`legacy_embedder_id_of`).
    """
    record = embedder.record
    from cv.models.load import STATE_DICT_ROLE

    weights = record.files.get(STATE_DICT_ROLE)
    digest = record.sha256.get(weights, "") if weights else ""
    if not digest:
        return legacy_embedder_id_of(embedder)
    return f"{record.name}@{record.version}:{digest[:12]}"[:160]


def legacy_embedder_id_of(embedder: Embedder) -> str:
    """The id servers gave an embedder before migration 0004: the smallest sha256 of
    any of its files (for the shipped model, the ONNX graph's)."""
    record = embedder.record
    digest = ""
    if record.sha256:
        digest = sorted(record.sha256.values())[0][:12]
    return f"{record.name}@{record.version}:{digest}"[:160]


def adopt_legacy_embedder_id(session: Session, *, legacy: str, current: str) -> int:
    """Renames ``legacy`` to ``current`` on the watch-list entries; commits.

    Both ids name the same files (the loaded record's, each checked against its
    sha256 when it was loaded): an entry labelled with the old-style id was made
    by exactly these weights. Renaming it, rather than accepting both ids, keeps
    it matching after the next re-export, which changes the old-style id. The
    audit log keeps the ids it was written with (it is append-only). Bumps
    ``watchlist_version`` when an entry changed, so that every process rebuilds.

    Returns:
        Entries renamed.
    """
    renamed = session.execute(
        update(db.WatchlistEntry)
        .where(db.WatchlistEntry.embedder == legacy)
        .values(embedder=current)
        .execution_options(synchronize_session=False)
    ).rowcount
    if renamed:
        bump_version(session)
        log.info("%d watch-list entries: re-ID model id %s is now %s", renamed, legacy, current)
    session.commit()
    return renamed


def load_cctv_models(
    reid_dir: Path,
    person_dir: Path,
    *,
    runtime: str,
    threshold: float | None,
    precision: str = "f32",
) -> CctvModels:
    """Loads the embedder and the person detector (blocking: call it in a thread).

    Both run on ``runtime`` (``onnx``, ``openvino`` or ``torch``); ``precision``
    applies to ``openvino``.

    Raises:
        NotFoundError: A model directory does not exist.
        ConfigError: The detector has no ``person`` class, or no match threshold
            was given and the embedder has no calibrated ``thresholds["match"]``.
        DataFormatError, DataValidationError: A model directory is broken.
    """
    for what, where in (("re-ID embedder", reid_dir), ("person detector", person_dir)):
        if not Path(where).is_dir():
            raise NotFoundError(f"no {what} model directory", path=where)
    from cv.models.cctv import MATCH_THRESHOLD_KEY, PERSON
    from cv.models.load import load_detector
    from cv.models.reid import load_embedder

    embedder = load_embedder(
        reid_dir,
        runtime=runtime,  # type: ignore[arg-type]
        spin_wait=False,
        precision=precision,  # type: ignore[arg-type]
    )
    detector = load_detector(
        person_dir,
        runtime=runtime,  # type: ignore[arg-type]
        max_batch=4,
        spin_wait=False,
        precision=precision,  # type: ignore[arg-type]
    )
    if PERSON not in detector.classes:
        raise ConfigError(
            f"the person detector has no class {PERSON!r}; its classes are {detector.classes}",
            path=person_dir,
        )
    if threshold is None:
        threshold = embedder.record.thresholds.get(MATCH_THRESHOLD_KEY)
        if threshold is None:
            raise ConfigError(
                f"the re-ID model has no calibrated {MATCH_THRESHOLD_KEY!r} threshold; run "
                "`customs-vision eval reid --save-threshold` on it or set "
                "CV_SERVER_REID_MATCH_THRESHOLD",
                path=reid_dir,
            )
    # One pass each, so the first frame does not pay for allocation and kernel choice.
    detector.predict([np.full((detector.input_size, detector.input_size, 3), 114, np.uint8)])
    embedder.embed([np.full((256, 128, 3), 114, np.uint8)])
    embedder_id, legacy = embedder_id_of(embedder), legacy_embedder_id_of(embedder)
    return CctvModels(
        detector=detector,
        embedder=embedder,
        threshold=float(threshold),
        embedder_id=embedder_id,
        reid_dir=Path(reid_dir),
        person_dir=Path(person_dir),
        legacy_embedder_id=None if legacy == embedder_id else legacy,
    )


# --------------------------------------------------------------------------- the service


@dataclass(slots=True)
class FrameOutcome:
    """What one frame gave, for the camera's answer.

    Attributes:
        camera_id: The camera.
        time: The frame's time (UTC).
        width: Frame width in pixels.
        height: Frame height in pixels.
        result: The pipeline's result (tracks, counts).
        sightings: Ids of the sightings recorded from this frame.
        tracks_stored: Finished tracks stored after this frame.
        ms: Milliseconds of processing.
    """

    camera_id: str
    time: datetime
    width: int
    height: int
    result: FrameResult
    sightings: list[int]
    tracks_stored: int
    ms: float


@dataclass(slots=True)
class SourceStatus:
    """A video source's worker, as ``GET /v1/cameras/{id}/source`` shows it.

    ``state``: ``starting``, ``running``, ``reconnecting`` (a live stream dropped or
    cannot be opened: tried again with backoff, ``error`` says why), ``finished``
    (a file read to its end), ``stopped`` or ``error`` (the worker ended on it);
    ``removed`` answers a ``DELETE`` through a process that ran no worker of the
    source (another process may: it stops at that one's next maintenance round).
    ``reconnects`` counts how often a dropped stream was opened again. ``url`` is
    the source as given; :meth:`to_dict` shows it without its password.
    """

    camera_id: str
    url: str
    realtime: bool
    loop: bool
    state: str = "starting"
    frames: int = 0
    sightings: int = 0
    fps: float = 0.0
    error: str | None = None
    started_at: datetime = field(default_factory=db.utcnow)
    stopped_at: datetime | None = None
    reconnects: int = 0

    @classmethod
    def recorded(cls, camera: db.Camera) -> SourceStatus:
        """The status a file source had when it was read to its end (after a restart)."""
        report = camera.source_report or {}
        stopped = as_utc(camera.source_finished_at or db.utcnow())
        started = report.get("started_at")
        return cls(
            camera_id=camera.id,
            url=camera.source_url or "",
            realtime=camera.source_realtime,
            loop=camera.source_loop,
            state="finished",
            frames=int(report.get("frames", 0)),
            sightings=int(report.get("sightings", 0)),
            fps=float(report.get("fps", 0.0)),
            started_at=stopped if started is None else datetime.fromisoformat(started),
            stopped_at=stopped,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "camera_id": self.camera_id,
            "url": redact_url(self.url),
            "realtime": self.realtime,
            "loop": self.loop,
            "state": self.state,
            "frames": self.frames,
            "sightings": self.sightings,
            "fps": self.fps,
            "error": self.error,
            "started_at": _iso(self.started_at),
            "stopped_at": _iso(self.stopped_at),
            "reconnects": self.reconnects,
        }


@dataclass(slots=True, eq=False)
class _Worker:
    """A camera's video source as the service holds it: its status and thread.

    A worker does nothing to its camera (a frame through the pipeline, tracks
    ended and stored, the database written) unless it is ``current``, checked
    with ``lock`` held for the whole of what it does. Whoever stops it clears
    ``current`` under the same lock once it has waited for it: a worker whose
    read blocked past :data:`SOURCE_STOP_S` then finds, when the read returns,
    that the camera is no longer its own, and ends without touching the tracks
    of the worker that replaced it.

    Attributes:
        status: What ``GET /v1/cameras/{id}/source`` shows.
        generation: The camera's ``source_generation`` when the source was set (or
            restored): the set this worker reads. Another process that sets or
            removes the source moves it, and :meth:`CctvService.sync_sources`
            stops the worker.
        stop: Set to tell the thread to end.
        thread: The thread, or ``None`` when nothing reads (a file read to its
            end, a source that could not be opened at start-up).
        lock: Held by the thread while it acts on the camera.
        current: Whether the camera is still this worker's.
    """

    status: SourceStatus
    generation: int
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    current: bool = True


def _failure(exc: BaseException, url: str) -> str:
    """``exc`` as a source's status and the log show it, ``url`` (and any other URL in
    the message) without its password."""
    return redact_text(f"{type(exc).__name__}: {exc}".replace(url, redact_url(url)))


def _source_detail(camera: db.Camera) -> dict[str, Any] | None:
    """A camera's kept video source as its audit lines show it (``None``: none)."""
    if camera.source_url is None:
        return None
    return {
        "url": redact_url(camera.source_url),
        "realtime": camera.source_realtime,
        "loop": camera.source_loop,
    }


def _next_generation(session: Session, camera: db.Camera) -> int:
    """Moves the camera's ``source_generation`` on by one in ``session``'s transaction
    (commit it yourself): the new set of its source, or its removal. Incremented in
    the database, so that two processes changing the source at once get different
    generations; the row stays locked until the commit."""
    camera.source_generation = db.Camera.source_generation + 1  # type: ignore[assignment]
    session.flush()
    return camera.source_generation  # read back after the UPDATE, in this transaction


class CctvService:
    """The server's CCTV part: per-camera pipelines, watch-list index, sightings, upkeep.

    Args:
        sessions: Database sessions.
        store: Where CCTV frames, crops and reference crops are stored (a folder of
            its own, apart from the X-ray scans).
        alert_service: Told after each committed re-ID alert (``notify(seq)``).
        models: The loaded models, or ``None`` (then every CCTV call answers 503
            with ``not_ready``).
        not_ready: Why the models are not loaded.
        ack_deadline_s: Seconds an inspector has to acknowledge an alert.
        retention_days: See :func:`purge`.
        maintenance_s: Seconds between maintenance rounds (expiry, index sync, purge).
        watchlist_max_days: Longest authorisation accepted at enrolment.
        enrol_person_conf: Detector score a person needs in an enrolment image.
        max_upload_bytes: Largest accepted image.
        max_pixels: Largest accepted width × height.
        workers: Threads that run pipelines.
        pipeline_kwargs: Further :class:`cv.models.cctv.CameraPipeline` settings.
        redact_bystanders: Pixelate every person but the matched one in a
            sighting's stored frame (:class:`cv.models.cctv.WatchlistMatcher`).
        restore_sources: Start the video sources kept in the database again when
            the service starts (:meth:`restore_sources`).
    """

    def __init__(
        self,
        *,
        sessions: sessionmaker,
        store: ImageStore,
        alert_service: Any,
        models: CctvModels | None,
        not_ready: str | None = None,
        ack_deadline_s: float = 60.0,
        retention_days: float = 30.0,
        maintenance_s: float = 5.0,
        watchlist_max_days: float = 90.0,
        enrol_person_conf: float = 0.25,
        max_upload_bytes: int = 50 * 1024 * 1024,
        max_pixels: int = 40_000_000,
        workers: int = 2,
        pipeline_kwargs: Mapping[str, Any] | None = None,
        redact_bystanders: bool = True,
        restore_sources: bool = True,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.alert_service = alert_service
        self.models = models
        self.not_ready = not_ready
        self.ack_deadline_s = ack_deadline_s
        self.retention_days = retention_days
        self.maintenance_s = maintenance_s
        self.watchlist_max_days = watchlist_max_days
        self.enrol_person_conf = enrol_person_conf
        self.max_upload_bytes = max_upload_bytes
        self.max_pixels = max_pixels
        self.pipeline_kwargs = dict(pipeline_kwargs or {})
        self.redact_bystanders = redact_bystanders
        self.restore_sources_on_start = restore_sources
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cv-cctv")
        self._snapshot: IndexSnapshot | None = None
        self._index_lock = threading.Lock()
        self._matcher: WatchlistMatcher | None = None
        self._pipeline: MultiCameraPipeline | None = None
        self._camera_lock = threading.Lock()
        # Camera -> its source's worker. Changed and read only under _sources_lock,
        # which is held from the check for a running worker to the launch of its
        # replacement: two PUTs at once cannot both launch one (the loser's worker
        # would run on, out of reach of DELETE). A worker never takes it: it is
        # held while a worker is waited for.
        self._sources: dict[str, _Worker] = {}
        self._sources_lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self.last_purge: PurgeReport | None = None

    # -- readiness

    @property
    def ready(self) -> bool:
        """Whether the models are loaded."""
        return self.models is not None

    def require_models(self) -> CctvModels:
        """The models.

        Raises:
            CctvNotReady: If they are not loaded (with why).
        """
        if self.models is None:
            raise CctvNotReady(
                "CCTV re-identification is not available: "
                + (self.not_ready or "the re-ID models are not loaded")
            )
        return self.models

    def status(self) -> dict[str, Any]:
        """Models, threshold, index and sources, for ``GET /v1/cctv/status``."""
        snap = self._snapshot
        models = self.models
        return {
            "ready": self.ready,
            "detail": None if self.ready else self.not_ready,
            "embedder": None if models is None else models.embedder_id,
            "runtime": None if models is None else models.embedder.label,
            "reid_model_dir": None if models is None else str(models.reid_dir),
            "person_model_dir": None if models is None else str(models.person_dir),
            "match_threshold": None if models is None else models.threshold,
            "index": None
            if snap is None
            else {
                "entries": snap.entries,
                "vectors": len(snap.index),
                "version": snap.version,
                "other_embedder": snap.other_embedder,
            },
            "retention_days": self.retention_days,
            "watchlist_max_days": self.watchlist_max_days,
            "redact_bystanders": self.redact_bystanders,
            "cameras_live": [] if self._pipeline is None else self._pipeline.camera_ids,
            "sources": self._source_dicts(),
            "last_purge": None if self.last_purge is None else self.last_purge.to_dict(),
        }

    # -- life cycle

    async def start(self) -> None:
        """Builds the index and the pipelines (when the models are loaded), starts the
        video sources kept in the database again, and starts upkeep."""
        if self.models is not None:
            try:
                await self._start_pipelines(self.models)
            except (CustomsVisionError, TypeError) as exc:  # bad pipeline settings
                self.models = None
                self.not_ready = f"the camera pipeline cannot start: {exc}"
                log.error("CCTV re-identification is off: %s", self.not_ready)
        if self.models is not None and self.restore_sources_on_start:
            try:
                await asyncio.to_thread(self.restore_sources)
            except Exception:  # the database may be briefly unavailable: serve anyway
                log.exception("the cameras' video sources could not be restored")
        self._task = asyncio.get_running_loop().create_task(
            self._maintenance_loop(), name="cctv-maintenance"
        )

    def _source_dicts(self) -> list[dict[str, Any]]:
        with self._sources_lock:
            return [w.status.to_dict() for w in self._sources.values()]

    def _adopt_legacy_embedder_id(self, models: CctvModels) -> None:
        if models.legacy_embedder_id is None:
            return
        with self.sessions() as session:
            adopt_legacy_embedder_id(
                session, legacy=models.legacy_embedder_id, current=models.embedder_id
            )

    async def _start_pipelines(self, models: CctvModels) -> None:
        from cv.models.cctv import MultiCameraPipeline, WatchlistMatcher

        await asyncio.to_thread(self._adopt_legacy_embedder_id, models)
        snapshot = await asyncio.to_thread(self._build_snapshot)
        self._snapshot = snapshot
        self._matcher = WatchlistMatcher(
            snapshot.index,
            threshold=models.threshold,
            labels=snapshot.labels,
            redact_bystanders=self.redact_bystanders,
        )
        self._pipeline = MultiCameraPipeline(
            detector=models.detector,
            embedder=models.embedder,
            matcher=self._matcher,
            **self.pipeline_kwargs,
        )
        # A camera's first pipeline loads the tracker (and ultralytics with it):
        # done now, so that no camera's first frame waits seconds for it.
        warm = "__warm-up__"
        await asyncio.to_thread(self._pipeline.add_camera, warm)
        await asyncio.to_thread(self._pipeline.remove_camera, warm)

    async def stop(self) -> None:
        """Stops the sources (kept in the database for the next start) and upkeep;
        stores the tracks still open."""
        await asyncio.to_thread(self._stop_all_workers)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._pipeline is not None:
            for camera_id in self._pipeline.camera_ids:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.flush_camera, camera_id)
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)

    async def _maintenance_loop(self) -> None:
        while True:
            await asyncio.sleep(self.maintenance_s)
            try:
                await asyncio.to_thread(self.maintain)
            except Exception:  # the database may be briefly unavailable; next round
                log.exception("CCTV maintenance round failed; trying again")

    def maintain(self, now: datetime | None = None) -> None:
        """One maintenance round (blocking): record expiries, sync the index and the
        video sources, purge."""
        now = now or db.utcnow()
        with self.sessions() as session:
            expired = expire_due(session, self.store, now=now)
        if expired:
            log.info("watch-list entries expired: %s", ", ".join(expired))
        self.sync_index()
        self.sync_sources()
        with self.sessions() as session:
            report = purge(session, self.store, now=now, retention_days=self.retention_days)
        if report.tracks or report.sighting_images:
            self.last_purge = report
            log.info("purged past retention: %s", report.to_dict())

    # -- the index

    def _build_snapshot(self) -> IndexSnapshot:
        models = self.require_models()
        with self.sessions() as session:
            return build_index(
                session,
                dim=models.embedder.dim,
                embedder_id=models.embedder_id,
                now=db.utcnow(),
            )

    def indexed_entries(self) -> dict[str, str]:
        """Entry id -> label of the entries this process's matcher can match now."""
        snap = self._snapshot
        return {} if snap is None else dict(snap.labels)

    def sync_index(self, *, force: bool = False) -> bool:
        """Rebuilds the index when the watch list changed (any process); returns whether it did."""
        if self.models is None or self._matcher is None:
            return False
        with self._index_lock:
            with self.sessions() as session:
                version = watchlist_version(session)
            if not force and self._snapshot is not None and self._snapshot.version == version:
                return False
            snapshot = self._build_snapshot()
            self._matcher.set_index(snapshot.index, snapshot.labels)
            self._snapshot = snapshot
        log.info("watch-list index: %d active entries (version %d)", snapshot.entries, version)
        return True

    # -- frames

    async def process_frame(
        self, camera_id: str, pixels: NDArray[np.uint8], t: float, *, source: str
    ) -> FrameOutcome:
        """Runs one frame of a camera through its pipeline, off the event loop.

        Raises:
            CctvNotReady: No models.
            NotFoundError: Unknown camera.
            CameraRefused: The camera's purpose or state forbids watch-list use.
            DataValidationError: The frame's time (``field`` ``timestamp``) lies
                outside :func:`check_frame_time`'s window, or goes back before the
                camera's last frame.
        """
        self.require_models()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self.process_frame_blocking, camera_id, pixels, t, source
        )

    def _camera_pipeline(self, camera: db.Camera) -> Any:
        assert self._pipeline is not None
        with self._camera_lock:
            if camera.id in self._pipeline.camera_ids:
                return self._pipeline.camera(camera.id)
            pipe = self._pipeline.add_camera(camera.id, fps=camera.fps)
        with self.sessions() as session:
            audit(
                session,
                actor=SYSTEM,
                action="search",
                camera_id=camera.id,
                detail={
                    "event": "watch-list matching started on this camera",
                    "entries": 0 if self._snapshot is None else self._snapshot.entries,
                    "threshold": self.require_models().threshold,
                },
            )
            session.commit()
        return pipe

    def process_frame_blocking(
        self, camera_id: str, pixels: NDArray[np.uint8], t: float, source: str
    ) -> FrameOutcome:
        """:meth:`process_frame` in the calling thread.

        The frame's time is checked first (:func:`check_frame_time`), before the
        camera's pipeline sees it: a refused time changes nothing. A video
        source's frames get theirs from the server's clock and never run ahead
        of it (:meth:`_run_source`).
        """
        models = self.require_models()
        started = time.perf_counter()
        seen = check_frame_time(t, now=time.time(), retention_days=self.retention_days)
        with self.sessions() as session:
            camera = get_camera(session, camera_id)
            check_feeds_watchlist(camera)
        pipe = self._camera_pipeline(camera)
        result = pipe.process(pixels, t)
        finished = pipe.finished_tracks()
        sighting_ids: list[int] = []
        for found in result.sightings:
            with self.sessions() as session:
                recorded = record_sighting(
                    session,
                    self.store,
                    found=found,
                    camera=camera,
                    ack_deadline_s=self.ack_deadline_s,
                    source=source,
                    embedder_id=models.embedder_id,
                )
            if recorded is None:
                self.sync_index()  # it held an entry that has ended
                continue
            sighting, alert = recorded
            sighting_ids.append(sighting.id)
            self.alert_service.notify(alert.seq)
        stored = 0
        if finished:
            with self.sessions() as session:
                stored = record_tracks(
                    session, self.store, camera.id, finished, embedder_id=models.embedder_id
                )
        height, width = pixels.shape[:2]
        return FrameOutcome(
            camera_id=camera.id,
            time=seen,
            width=int(width),
            height=int(height),
            result=result,
            sightings=sighting_ids,
            tracks_stored=stored,
            ms=(time.perf_counter() - started) * 1000,
        )

    def flush_camera(self, camera_id: str) -> int:
        """Ends a camera's live tracks and stores them (camera changed or its source stopped).

        Returns:
            Tracks stored.
        """
        return self._end_tracks(camera_id, keep_pipeline=False)

    def end_live_tracks(self, camera_id: str) -> int:
        """Ends a camera's live tracks and stores them, keeping its pipeline (its
        stream dropped: whoever is seen after the gap starts a new track).

        Returns:
            Tracks stored.
        """
        return self._end_tracks(camera_id, keep_pipeline=True)

    def _end_tracks(self, camera_id: str, *, keep_pipeline: bool) -> int:
        if self._pipeline is None or self.models is None:
            return 0
        with self._camera_lock:
            if camera_id not in self._pipeline.camera_ids:
                return 0
            if keep_pipeline:
                pipe = self._pipeline.camera(camera_id)
            else:
                finished = self._pipeline.remove_camera(camera_id)
        if keep_pipeline:
            finished = pipe.finished_tracks(flush=True)
        if not finished:
            return 0
        with self.sessions() as session:
            return record_tracks(
                session, self.store, camera_id, finished, embedder_id=self.models.embedder_id
            )

    def decode_frame(self, data: bytes) -> NDArray[np.uint8]:
        """Checks and decodes a posted frame (see :func:`cv.inference_server.uploads.validate`).

        Raises:
            HTTPException: 413 / 415 / 422 naming the problem.
        """
        return uploads.validate(
            data, max_bytes=self.max_upload_bytes, max_pixels=self.max_pixels
        ).pixels

    # -- enrolment

    def embed_enrolment(self, images: Sequence[tuple[str, bytes]]) -> list[EnrolmentImage]:
        """Finds the largest person in each image and embeds it (blocking).

        Raises:
            HTTPException: An image is too large, not an image, or corrupt (the
                detail names it: ``images[1] (b.jpg): ...``).
            DataValidationError: An image holds no person (``field`` names it).
        """
        import hashlib

        from cv.models.cctv import PERSON
        from cv.models.reid import crop_box

        models = self.require_models()
        if not images:
            raise DataValidationError("at least one image of the person is needed", field="images")
        found: list[tuple[str, str, tuple[float, float, float, float], NDArray[np.uint8]]] = []
        for i, (name, data) in enumerate(images):
            where = f"images[{i}] ({name})"
            try:
                pixels = self.decode_frame(data)
            except HTTPException as exc:
                detail = str(exc.detail).removeprefix("image: ")
                raise HTTPException(exc.status_code, detail=f"{where}: {detail}") from None
            people = models.detector.predict(
                [pixels], conf=self.enrol_person_conf, classes=[PERSON]
            )[0]
            if not people:
                raise DataValidationError(
                    "no person found in this image (person detector score >= "
                    f"{self.enrol_person_conf:g}); send photos in which the person is visible",
                    field=where,
                )
            largest = max(people, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
            crop = crop_box(pixels, largest.box)
            found.append((name, hashlib.sha256(data).hexdigest(), largest.box, crop))
        vectors = models.embedder.embed([crop for _, _, _, crop in found])
        return [
            EnrolmentImage(name, sha, box, crop, np.asarray(vec, dtype=np.float32))
            for (name, sha, box, crop), vec in zip(found, vectors, strict=True)
        ]

    async def enrol(
        self, auth: Authorisation, images: Sequence[tuple[str, bytes]], *, actor: str
    ) -> db.WatchlistEntry:
        """Checks the authorisation, finds and embeds the person in every image, then stores.

        Nothing is stored unless every check passes: the authorisation first (no
        model work for a refused enrolment), then every image.

        Raises:
            CctvNotReady: No models.
            DataValidationError: A missing authorisation field, a bad expiry, no
                image or an image without a person (the field names it).
            HTTPException: An unreadable image (named).
        """
        models = self.require_models()
        now = db.utcnow()
        checked = check_authorisation(auth, now=now, max_days=self.watchlist_max_days)
        loop = asyncio.get_running_loop()
        enrolled = await loop.run_in_executor(self._executor, self.embed_enrolment, images)

        def store() -> db.WatchlistEntry:
            with self.sessions() as session:
                entry = store_enrolment(
                    session,
                    self.store,
                    auth=checked,
                    images=enrolled,
                    embedder_id=models.embedder_id,
                    actor=actor,
                    now=now,
                )
                entry_id = entry.id
            self.sync_index()
            with self.sessions() as session:
                return self._loaded_entry(session, entry_id)

        return await asyncio.to_thread(store)

    def _loaded_entry(self, session: Session, entry_id: str) -> db.WatchlistEntry:
        entry = get_entry(session, entry_id)
        _ = list(entry.vectors)  # loaded before the session closes
        return entry

    def revoke(self, entry_id: str, *, actor: str, reason: str) -> db.WatchlistEntry:
        """Revokes an entry (blocking) and rebuilds the index at once (see :func:`revoke_entry`)."""
        with self.sessions() as session:
            revoke_entry(session, self.store, entry_id, actor=actor, reason=reason, now=db.utcnow())
        self.sync_index()
        with self.sessions() as session:
            return self._loaded_entry(session, entry_id)

    # -- video sources

    def start_source(
        self,
        camera_id: str,
        url: str,
        *,
        realtime: bool = True,
        loop: bool = False,
        actor: str = SYSTEM,
    ) -> SourceStatus:
        """Opens a video file or stream for a camera and starts a worker that feeds it.

        The source is kept with the camera, so that the server starts it again
        after a restart, until :meth:`stop_source`. It replaces the camera's
        source, if any, once it has been opened (a source that cannot be opened
        changes nothing): the old worker has been told to stop, and waited for,
        before the new one starts, whatever other requests do meanwhile. The
        change is audited (``camera``, event ``source set``, the URL without its
        password) and moves the camera's ``source_generation`` in the transaction
        that records it (another process's worker of the camera then stops:
        :meth:`sync_sources`).

        Args:
            camera_id: The camera.
            url: A video file on the server or a stream URL (``rtsp://...``). The
                kept URL as answers show it (:func:`redact_url`: its password
                masked) stands for the kept URL, password included, so that a
                client that sends back what it was shown keeps the password.
            realtime: Pace a file at its frame rate.
            loop: Read a file again from its start when it ends.
            actor: Who sets it: the admin's token name, or :data:`SYSTEM` for what
                the server does by itself (the demo).

        Raises:
            CctvNotReady: No models.
            NotFoundError: Unknown camera, or a file that does not exist.
            CameraRefused: The camera may not feed the watch list.
            DataFormatError: OpenCV cannot open the source.
        """
        self.require_models()
        url = self._with_kept_password(camera_id, url)
        # Opened before the lock is taken: a stream may take seconds to answer.
        worker = self._open_source(camera_id, url, realtime=realtime, loop=loop)
        launched = False
        try:
            with self._sources_lock:
                if camera_id in self._sources:
                    self._stop_worker(camera_id)
                now = db.utcnow()
                with self.sessions() as session:
                    camera = get_camera(session, camera_id)
                    before = _source_detail(camera)
                    camera.source_url = url
                    camera.source_realtime = realtime
                    camera.source_loop = loop
                    camera.source_finished_at = None
                    camera.source_report = None
                    camera.updated_at = now
                    generation = _next_generation(session, camera)
                    audit(
                        session,
                        actor=actor,
                        action="camera",
                        camera_id=camera_id,
                        detail={
                            "event": "source set",
                            "url": redact_url(url),
                            "realtime": realtime,
                            "loop": loop,
                            **({} if before is None else {"before": before}),
                        },
                        at=now,
                    )
                    session.commit()
                status = self._launch(worker, generation)
                launched = True
        finally:
            if not launched:
                worker[1].close()
        return status

    def _with_kept_password(self, camera_id: str, url: str) -> str:
        """``url``, or the camera's kept source URL when ``url`` is that one with its
        password masked (what answers show)."""
        with self.sessions() as session:
            camera = session.get(db.Camera, camera_id)
            kept = None if camera is None else camera.source_url
        if kept is not None and kept != url and redact_url(kept) == url:
            return kept
        return url

    def _open_source(
        self, camera_id: str, url: str, *, realtime: bool, loop: bool
    ) -> tuple[SourceStatus, Any]:
        """Checks the camera and opens the source: its status and reader.

        Raises:
            NotFoundError, CameraRefused, DataFormatError: See :meth:`start_source`;
                they name the URL without its password.
        """
        from cv.models.cctv import VideoReader

        with self.sessions() as session:
            camera = get_camera(session, camera_id)
            check_feeds_watchlist(camera)
        try:
            reader = VideoReader(url, fps=None)  # opening now gives the caller a clear error
        except (NotFoundError, DataFormatError) as exc:
            raise type(exc)(exc.reason, path=redact_url(url), field=exc.field) from None
        status = SourceStatus(camera_id=camera_id, url=url, realtime=realtime, loop=loop)
        status.fps = reader.fps
        return status, reader

    def _launch(self, worker: tuple[SourceStatus, Any], generation: int) -> SourceStatus:
        """Starts the worker thread of a source of the camera's ``generation``
        (``_sources_lock`` held); a stream's reader may be ``None``: the worker opens
        it, with backoff."""
        status, reader = worker
        kept = _Worker(status, generation)
        kept.thread = threading.Thread(
            target=self._run_source,
            args=(kept, reader),
            name=f"cctv-source-{status.camera_id}",
            daemon=True,
        )
        self._sources[status.camera_id] = kept
        kept.thread.start()
        return status

    def restore_sources(self) -> list[SourceStatus]:
        """Starts again the video sources kept in the database (blocking; at start-up).

        A file that was read to its end without looping is not read again: its
        last status is shown (``finished``). A stream that does not answer is
        tried again with backoff (``reconnecting``, with the reason). Another
        source that cannot be started (the file is gone, the camera was
        deactivated) shows state ``error`` with the reason and stays kept, to be
        tried at the next start, replaced (``PUT``) or forgotten (``DELETE``); the
        other sources and the server go on. A source set or deleted meanwhile
        (``PUT``, ``DELETE``) is left as that request made it.

        Returns:
            The status of every kept source.
        """
        from cv.models.cctv import is_stream

        with self.sessions() as session:
            cameras = list(
                session.scalars(
                    select(db.Camera)
                    .where(db.Camera.source_url.is_not(None))
                    .order_by(db.Camera.id)
                )
            )
        out: list[SourceStatus] = []
        for camera in cameras:
            url = camera.source_url or ""
            with self._sources_lock:
                running = self._sources.get(camera.id)
            if running is not None:  # started since (a PUT): leave it
                out.append(running.status)
                continue
            worker: tuple[SourceStatus, Any] | None = None
            error = None
            if camera.source_finished_at is None:
                try:
                    worker = self._open_source(
                        camera.id, url, realtime=camera.source_realtime, loop=camera.source_loop
                    )
                except Exception as exc:  # one broken source must not stop the others
                    error = exc
            with self._sources_lock:
                status = self._restore_one(camera, worker, error, retry=is_stream(url))
            if status is not None:
                out.append(status)
        return out

    def _restore_one(
        self,
        camera: db.Camera,
        worker: tuple[SourceStatus, Any] | None,
        error: Exception | None,
        *,
        retry: bool,
    ) -> SourceStatus | None:
        """Restores one kept source (``_sources_lock`` held): what it shows, or ``None``
        when a request deleted it meanwhile."""
        url = camera.source_url or ""
        generation = camera.source_generation
        with self.sessions() as session:
            kept = session.get(db.Camera, camera.id)
            still = (
                kept is not None
                and kept.source_url is not None
                and kept.source_generation == generation
            )
        running = self._sources.get(camera.id)
        if running is not None or not still:  # a PUT or a DELETE came first
            if worker is not None:
                worker[1].close()
            return None if running is None else running.status
        if worker is not None:
            log.info("video source of camera %s restarted: %s", camera.id, redact_url(url))
            return self._launch(worker, generation)
        if error is None:  # a file read to its end
            status = SourceStatus.recorded(camera)
            self._sources[camera.id] = _Worker(status, generation)
            return status
        status = SourceStatus(
            camera_id=camera.id,
            url=url,
            realtime=camera.source_realtime,
            loop=camera.source_loop,
            state="error",
            error=f"not restarted: {_failure(error, url)}",
        )
        if retry and isinstance(error, DataFormatError):  # a stream that does not answer yet
            status.state = "reconnecting"
            log.warning(
                "video source of camera %s not answering; trying again: %s",
                camera.id,
                _failure(error, url),
            )
            return self._launch((status, None), generation)
        status.stopped_at = db.utcnow()
        self._sources[camera.id] = _Worker(status, generation)
        log.warning("video source of camera %s not restarted: %s", camera.id, status.error)
        return status

    def _run_source(self, worker: _Worker, reader: Any | None) -> None:
        """A source's worker: reads frames and feeds the camera until stopped.

        Times come from the server's clock. A live stream's frame happens now. A
        file's frames are spaced by its frame rate; paced (``realtime``), each is
        read at its time; unpaced, a pass over the file is placed to end about
        now, so that its times never run ahead of the clock (where they would
        escape the retention period). A stream that ends or fails is opened
        again with backoff (:data:`RECONNECT_FIRST_S` to :data:`RECONNECT_MAX_S`)
        until the source is stopped: state ``reconnecting``, ``error`` says why,
        and its live tracks are ended and stored. A file ends ``finished`` (or is
        read again with ``loop``). What it does to the camera, it does only while
        the camera is still its own (:class:`_Worker`).
        """
        from cv.models.cctv import VideoReader, is_stream

        status, stop = worker.status, worker.stop
        name = f"source:{redact_url(status.url)}"
        stream = is_stream(status.url)
        last_t = 0.0
        delay = RECONNECT_FIRST_S
        opened = reader is not None  # (a stream kept from before may not answer at start-up)
        try:
            while not stop.is_set():
                if reader is None:  # a stream to open again
                    status.state = "reconnecting"
                    if stop.wait(delay):
                        break
                    delay = min(2 * delay, RECONNECT_MAX_S)
                    try:
                        reader = VideoReader(status.url, fps=None)
                    except Exception as exc:
                        status.error = _failure(exc, status.url)
                        continue
                    status.fps = reader.fps
                    status.reconnects += int(opened)
                    opened = True
                    status.error = None
                    log.info("video source of camera %s open again", status.camera_id)
                status.state = "running"
                base = self._pass_start(status, reader, last_t)
                frames = iter(reader)
                index = 0
                dropped = "the stream ended"
                while not stop.is_set():
                    try:
                        frame = next(frames)
                    except StopIteration:
                        break
                    except Exception as exc:
                        if not stream:
                            raise
                        dropped = _failure(exc, status.url)
                        break
                    if stream:
                        t = time.time()
                    else:
                        t = base + index / status.fps
                        wait = t - time.time()
                        if status.realtime and wait > 0 and stop.wait(wait):
                            break
                        t = min(t, time.time())
                    # Never let the clock step back (an NTP correction).
                    t = last_t = max(last_t, t)
                    with worker.lock:
                        if not worker.current:  # a read that outlasted the stop
                            break
                        outcome = self.process_frame_blocking(status.camera_id, frame, t, name)
                    index += 1
                    status.frames += 1
                    status.sightings += len(outcome.sightings)
                reader.close()
                reader = None
                if stop.is_set():
                    break
                if stream:
                    if index:
                        delay = RECONNECT_FIRST_S  # it worked for a while: try again soon
                    status.state = "reconnecting"
                    status.error = dropped
                    log.warning("video source of camera %s: %s", status.camera_id, dropped)
                    with worker.lock:
                        if worker.current:
                            self.end_live_tracks(status.camera_id)
                    continue
                if not status.loop:
                    break
                reader = VideoReader(status.url, fps=status.fps)
            status.state = "stopped" if stop.is_set() else "finished"
            if status.state == "finished":
                # A file read to its end: not read again when the server restarts.
                self._record_finished(worker)
        except Exception as exc:  # a broken file, or a frame refused: ends this worker, visibly
            status.state = "error"
            status.error = _failure(exc, status.url)
            log.exception("video source of camera %s failed", status.camera_id)
        finally:
            if reader is not None:
                reader.close()
            status.stopped_at = status.stopped_at or db.utcnow()
            with worker.lock, contextlib.suppress(Exception):
                if worker.current:
                    self.flush_camera(status.camera_id)

    @staticmethod
    def _pass_start(status: SourceStatus, reader: Any, last_t: float) -> float:
        """The time of the first frame of a pass over a file (after ``last_t``)."""
        now = time.time()
        start = now if status.realtime else now - (reader.frame_count or 0) / status.fps
        return max(start, last_t + 1 / status.fps) if last_t else start

    def _record_finished(self, worker: _Worker) -> None:
        """Keeps that a file source was read to its end (unless it was replaced since)."""
        status = worker.status
        status.stopped_at = db.utcnow()
        try:
            with worker.lock, self.sessions() as session:
                if not worker.current:
                    return
                session.execute(
                    update(db.Camera)
                    .where(
                        db.Camera.id == status.camera_id,
                        db.Camera.source_url.is_not(None),
                        db.Camera.source_generation == worker.generation,
                    )
                    .values(source_finished_at=status.stopped_at, source_report=status.to_dict())
                )
                session.commit()
        except Exception:  # the file was read all the same; it is read again after a restart
            log.exception("could not record that camera %s's video ended", status.camera_id)

    def _stop_worker(self, camera_id: str) -> SourceStatus:
        """Stops a camera's source worker and waits for it (``_sources_lock`` held);
        what the database keeps of it stays.

        A worker whose read blocks past :data:`SOURCE_STOP_S` (a stalled stream)
        ends after it; the camera is taken from it first (:class:`_Worker`) and
        its open tracks are stored here, so that a new worker starts afresh.
        """
        worker = self._sources.pop(camera_id)
        worker.stop.set()
        if worker.thread is not None:
            worker.thread.join(timeout=SOURCE_STOP_S)
        with worker.lock:  # (after the frame it may be processing)
            worker.current = False
            stalled = worker.thread is not None and worker.thread.is_alive()
        if stalled:
            log.warning("video source of camera %s is still ending", camera_id)
            self.flush_camera(camera_id)
        status = worker.status
        if status.state in ("starting", "running", "reconnecting"):
            status.state = "stopped"
        return status

    def _stop_all_workers(self) -> None:
        with self._sources_lock:
            for camera_id in list(self._sources):
                self._stop_worker(camera_id)

    def sync_sources(self) -> list[str]:
        """Stops this process's workers whose source the database no longer keeps:
        deleted, or set again through another server process (blocking; each
        maintenance round).

        A worker reads the set of the source it was started with (its
        ``generation``); every ``PUT`` and ``DELETE``, through any process, moves the
        camera's ``source_generation``. So a source set again to the very same URL
        and settings through another process stops this one's worker too: the
        other process runs the camera's one worker.

        Returns:
            The cameras whose worker stopped.
        """
        with self._sources_lock:
            if not self._sources:
                return []
            with self.sessions() as session:
                rows = session.execute(
                    select(db.Camera.id, db.Camera.source_generation).where(
                        db.Camera.id.in_(list(self._sources)), db.Camera.source_url.is_not(None)
                    )
                )
                kept = {camera_id: generation for camera_id, generation in rows}
            gone = [
                camera_id
                for camera_id, worker in self._sources.items()
                if kept.get(camera_id) != worker.generation
            ]
            for camera_id in gone:
                self._stop_worker(camera_id)
        if gone:
            log.info(
                "video sources changed through another process, stopped here: %s", ", ".join(gone)
            )
        return gone

    def stop_source(self, camera_id: str, *, actor: str = SYSTEM) -> SourceStatus:
        """Stops a camera's video source, stores its open tracks and forgets the source
        (it is not started again at the next start). Audited (``camera``, event
        ``source removed``), and the camera's ``source_generation`` moved, in the
        transaction that forgets it.

        When several server processes share the database, the source may have been
        set, or restored, by another one: it is forgotten all the same (state
        ``removed``), and the process whose worker reads it stops that worker at its
        next maintenance round (:meth:`sync_sources`).

        Args:
            camera_id: The camera.
            actor: Who removes it: the admin's token name, or :data:`SYSTEM`.

        Raises:
            NotFoundError: If the camera has no source, in this process or kept.
        """
        with self._sources_lock:
            status = self._stop_worker(camera_id) if camera_id in self._sources else None
            now = db.utcnow()
            with self.sessions() as session:
                camera = session.get(db.Camera, camera_id)
                if status is None:
                    if camera is None or camera.source_url is None:
                        raise NotFoundError(
                            f"camera {camera_id!r} has no video source", field="camera_id"
                        )
                    status = SourceStatus(
                        camera_id=camera_id,
                        url=camera.source_url,
                        realtime=camera.source_realtime,
                        loop=camera.source_loop,
                        state="removed",
                        stopped_at=now,
                    )
                if camera is not None:
                    audit(
                        session,
                        actor=actor,
                        action="camera",
                        camera_id=camera_id,
                        detail={
                            "event": "source removed",
                            "url": redact_url(camera.source_url or status.url),
                            "realtime": status.realtime,
                            "loop": status.loop,
                            "state": status.state,
                            "frames": status.frames,
                        },
                        at=now,
                    )
                    camera.source_url = None
                    camera.source_finished_at = None
                    camera.source_report = None
                    camera.updated_at = now
                    _next_generation(session, camera)
                    session.commit()
        return status

    def source_status(self, camera_id: str) -> SourceStatus:
        """The camera's video source, as this process runs it.

        Raises:
            NotFoundError: If the camera has no source in this process.
        """
        with self._sources_lock:
            kept = self._sources.get(camera_id)
        if kept is None:
            raise NotFoundError(f"camera {camera_id!r} has no video source", field="camera_id")
        return kept.status

    # -- retention, on demand

    def purge_now(self, *, actor: str) -> PurgeReport:
        """Runs the retention purge now (blocking), audited with ``actor``."""
        with self.sessions() as session:
            report = purge(
                session,
                self.store,
                now=db.utcnow(),
                retention_days=self.retention_days,
                actor=actor,
                always_audit=True,
            )
        self.last_purge = report
        return report


def parse_time(value: str | None, *, field: str, default: float | None = None) -> float:
    """A time given as epoch seconds or ISO 8601 (naive means UTC), as epoch seconds.

    Raises:
        DataValidationError: Naming ``field`` when the value is neither.
    """
    if value is None or not value.strip():
        if default is None:
            raise DataValidationError("required", field=field)
        return default
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = as_utc(datetime.fromisoformat(text.replace("Z", "+00:00"))).timestamp()
        except ValueError:
            raise DataValidationError(
                f"{value!r} is neither seconds since the epoch nor an ISO 8601 time",
                field=field,
            ) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise DataValidationError(f"{value!r} is not a valid time", field=field)
    return seconds
