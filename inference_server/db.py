"""Storage schema and sessions: SQLite embedded by default, PostgreSQL by URL.

Tables, in the order a scan flows through them::

    scans        one uploaded image and its metadata, stored before inference
    detections   what the model found in a scan (xyxy pixels, class, score)
    alerts       the durable outbox: one row per alert, ``seq`` strictly increasing
                 in commit order; handhelds resume from the last ``seq`` they saw
    alert_events the audit trail of each alert: delivered, acknowledged, confirmed,
                 rejected, re-sent, escalated (who and when)
    tokens       API tokens: role and sha256 of the secret, never the secret
    counters     named counters; ``alert_seq`` hands out alert sequence numbers

CCTV re-identification (:mod:`.cctv`), from a camera to a sighting::

    cameras            a camera, its site and location, its declared purpose and
                       whether that purpose allows watch-list matching
    watchlist_entries  a person on a watch list and the authorisation behind it:
                       who authorised it, why, on what legal basis, until when
    watchlist_vectors  the entry's appearance embeddings (one per enrolment image)
    reid_tracks        a person tracked on a camera: embedding and best crop, deleted
                       after the retention period unless the track matched an entry
    sightings          a track that matched an entry: a *candidate* until an
                       inspector confirms or rejects it; raises a ``reid`` alert
    audit_log          append-only record of every enrolment, revocation, expiry,
                       search, match, verdict and purge (database triggers refuse
                       UPDATE and DELETE on it)

The schema is created and upgraded by Alembic (``inference_server/migrations``);
:func:`migrate` runs it to head. Only portable SQL types are used so the same
code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    event,
    false,
    true,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker


def utcnow() -> datetime:
    """Timezone-aware now, in UTC (the only time zone stored)."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A stored or given time as aware UTC (SQLite hands back naive UTC; naive means UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""


class Scan(Base):
    """One uploaded X-ray image and its metadata.

    ``status`` moves ``pending`` -> ``done``, or ``pending`` -> ``failed`` after
    ``attempts`` reach the retry limit. A scan is committed as ``pending`` before
    inference, so a crash loses nothing: pending scans are inferred on restart.
    """

    __tablename__ = "scans"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    lane: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # cabin_bag | hold_bag | parcel
    bag_tag: Mapped[str | None] = mapped_column(String(64), index=True)
    awb: Mapped[str | None] = mapped_column(String(64), index=True)
    declaration_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    image_sha256: Mapped[str] = mapped_column(String(64), index=True)
    image_path: Mapped[str] = mapped_column(Text)  # relative to the data dir
    content_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    model_name: Mapped[str | None] = mapped_column(String(128))
    model_version: Mapped[int | None] = mapped_column(Integer)
    queue_ms: Mapped[float | None] = mapped_column(Float)
    compute_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    inferred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    detections: Mapped[list[Detection]] = relationship(
        back_populates="scan", cascade="all, delete-orphan", order_by="Detection.id"
    )


class Detection(Base):
    """One detected object in a scan: ``xyxy`` pixels of the original image, 0-based."""

    __tablename__ = "detections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(String(64))
    class_id: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)

    scan: Mapped[Scan] = relationship(back_populates="detections")


class Alert(Base):
    """The durable outbox of alerts to handhelds.

    ``seq`` comes from the ``alert_seq`` counter, taken with a row lock inside the
    inserting transaction, so sequence numbers are strictly increasing **in commit
    order** on SQLite and PostgreSQL alike: a handheld that has seen ``seq = n`` has
    seen every alert below ``n`` that it is subscribed to.

    ``payload`` holds what a handheld shows: scan id, site, lane, boxes, classes,
    scores, overlay URL and the reasons (model thresholds, declaration risk).
    ``state``: ``open`` -> ``acknowledged`` -> ``confirmed`` | ``rejected``;
    ``escalated`` is set when the acknowledgement deadline passes.
    """

    __tablename__ = "alerts"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    scan_id: Mapped[str | None] = mapped_column(ForeignKey("scans.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="xray")  # xray | reid | risk
    site: Mapped[str] = mapped_column(String(64), index=True)
    lane: Mapped[str] = mapped_column(String(64), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)
    escalated: Mapped[bool] = mapped_column(default=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ack_deadline: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    # The inspector's verdict: confirmed / rejected, with corrected boxes if any.
    verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    resend_count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_alerts_site_lane_seq", "site", "lane", "seq"),)


class AlertEvent(Base):
    """One step in an alert's life, kept for audit."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_seq: Mapped[int] = mapped_column(ForeignKey("alerts.seq"), index=True)
    event: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Token(Base):
    """An API token: its role and the sha256 of its secret (the secret is shown once).

    ``expires_at`` (``None``: never) is set when the token is made; from then on the
    token is refused as a revoked one is.
    """

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # scanner | reader | inspector | admin
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Counter(Base):
    """A named counter, incremented under a row lock."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


# -- CCTV re-identification -------------------------------------------------------------


class Camera(Base):
    """A CCTV camera and the purpose it was declared for.

    ``watchlist_allowed`` is derived from ``purpose`` when the camera is registered
    (:data:`cv.inference_server.cctv.PURPOSES`); only such cameras feed the
    watch-list matcher. ``location`` is the camera's place at the site (a hall, a
    belt, a gate) and becomes the ``lane`` of its alerts.

    ``source_*`` describe the camera's video source (a file or stream URL a worker
    reads), so that the server starts it again after a restart: its URL (``None``
    when it has none), pacing and looping, and for a file read to its end without
    looping, when it finished and the worker's last status (it is not read again).
    ``source_generation`` counts the sets and removals of the source: every ``PUT``
    and ``DELETE`` adds one in the transaction that makes it, and a worker reads
    the camera only while the generation it was started with is still the kept
    one, so that a process whose source was set again through another process
    (even to the same URL and settings) stops its worker.
    """

    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    location: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(32))
    watchlist_allowed: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    source_url: Mapped[str | None] = mapped_column(Text)
    source_realtime: Mapped[bool] = mapped_column(default=True, server_default=true())
    source_loop: Mapped[bool] = mapped_column(default=False, server_default=false())
    source_finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source_report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    source_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    fps: Mapped[float] = mapped_column(Float, default=10.0)
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WatchlistEntry(Base):
    """A person on a watch list, with the authorisation that put them there.

    An entry is *active* while ``revoked_at`` is empty and ``expires_at`` lies in the
    future; only active entries are in the search index and can match. When an
    entry ends (revoked, or expired: ``expired_at`` records when the server noticed)
    its vectors and reference crops are deleted; the row and its audit trail stay.
    """

    __tablename__ = "watchlist_entries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(128))
    list_name: Mapped[str] = mapped_column(String(64), index=True)
    authorised_by: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    expired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The embedder (record name and version) the vectors were made with.
    embedder: Mapped[str] = mapped_column(String(160))

    vectors: Mapped[list[WatchlistVector]] = relationship(
        back_populates="entry", cascade="all, delete-orphan", order_by="WatchlistVector.id"
    )


class WatchlistVector(Base):
    """One appearance embedding of an entry: float32, L2-normalised, from one image."""

    __tablename__ = "watchlist_vectors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(
        ForeignKey("watchlist_entries.id", ondelete="CASCADE"), index=True
    )
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    dim: Mapped[int] = mapped_column(Integer)
    image_sha256: Mapped[str] = mapped_column(String(64))
    # The person box in the enrolment image (xyxy pixels) and the stored crop.
    box: Mapped[list[float]] = mapped_column(JSON)
    crop_path: Mapped[str | None] = mapped_column(Text)

    entry: Mapped[WatchlistEntry] = relationship(back_populates="vectors")


class ReidTrack(Base):
    """A finished track on a camera: its mean embedding and best crop.

    Kept for ``reid_retention_days`` and then deleted with its crop, unless it
    matched a watch-list entry (``matched``). ``embedder`` names the re-ID model
    that made the embedding (as ``WatchlistEntry.embedder``); rows stored before
    migration 0004 have none.
    """

    __tablename__ = "reid_tracks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"), index=True)
    track_id: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    frames: Mapped[int] = mapped_column(Integer, default=0)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    dim: Mapped[int] = mapped_column(Integer)
    crop_path: Mapped[str | None] = mapped_column(Text)
    matched: Mapped[bool] = mapped_column(default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    embedder: Mapped[str | None] = mapped_column(String(160))

    __table_args__ = (Index("ix_reid_tracks_camera_track", "camera_id", "track_id"),)


class Sighting(Base):
    """A track that matched a watch-list entry: a candidate until an inspector decides.

    ``state``: ``candidate`` -> ``confirmed`` (the same person) | ``rejected`` (not
    the same person). ``box`` is ``xyxy`` pixels of the stored frame.
    """

    __tablename__ = "sightings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("watchlist_entries.id"), index=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"), index=True)
    track_id: Mapped[int] = mapped_column(Integer)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    similarity: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    box: Mapped[list[float]] = mapped_column(JSON)
    frame_path: Mapped[str | None] = mapped_column(Text)
    crop_path: Mapped[str | None] = mapped_column(Text)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="candidate", index=True)
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    alert_seq: Mapped[int | None] = mapped_column(ForeignKey("alerts.seq"), index=True)
    images_purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEntry(Base):
    """One line of the append-only audit log of the re-identification system.

    Who (``actor``: a token name, or ``system``), when, what (``action``), on which
    list / entry, with which input (an image's sha256, a camera and track), and the
    details. Database triggers refuse UPDATE and DELETE on this table.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16), index=True)
    list_name: Mapped[str | None] = mapped_column(String(64))
    entry_id: Mapped[str | None] = mapped_column(String(32), index=True)
    camera_id: Mapped[str | None] = mapped_column(String(64))
    track_id: Mapped[int | None] = mapped_column(Integer)
    sighting_id: Mapped[int | None] = mapped_column(Integer)
    input_sha256: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout.

    SQLite files are created with their parent folder.
    """
    # A local SQLite file needs no liveness check at every checkout; a server does.
    kwargs: dict[str, Any] = {"pool_pre_ping": not url.startswith("sqlite")}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    return engine


def masked_url(url: Any) -> str:
    """A database URL (text or SQLAlchemy ``URL``) as text, its password shown as ``***``."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def open_existing(url: str, *, tables: Sequence[str], what: str) -> Engine:
    """An engine on an existing server database that holds ``tables``.

    Unlike :func:`make_engine` alone, this never creates an SQLite file and does not
    migrate: for commands that read what a server wrote (exports).

    Args:
        url: The database URL.
        tables: Tables the caller reads.
        what: What those tables hold, for the error (``"CCTV tables"``).

    Raises:
        NotFoundError: If the SQLite file does not exist, the database cannot be
            reached, or it lacks one of ``tables`` (not a server database, or one never
            migrated).
    """
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from cv.errors import NotFoundError

    shown = masked_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if not path or path == ":memory:" or not Path(path).is_file():
            raise NotFoundError("no server database here (is --db right?)", path=path or shown)
    engine = make_engine(url)
    try:
        present = set(inspect(engine).get_table_names())
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise NotFoundError(f"cannot open the server database: {reason}", path=shown) from None
    missing = [t for t in tables if t not in present]
    if missing:
        engine.dispose()
        raise NotFoundError(
            f"not a customs-vision server database with {what} (no {', '.join(missing)}); "
            "give the server's CV_SERVER_DATABASE_URL, or run `customs-vision serve migrate`",
            path=shown,
        )
    return engine


def session_factory(engine: Engine) -> sessionmaker:
    """Sessions bound to ``engine`` that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def migrate(engine: Engine) -> None:
    """Creates or upgrades the schema to the newest Alembic revision."""
    # Alembic narrates every step at INFO, from its import on (its plugins); a server
    # start or a CLI call should not.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
