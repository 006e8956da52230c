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

The schema is created and upgraded by Alembic (``inference_server/migrations``);
:func:`migrate` runs it to head. Only portable SQL types are used so the same
code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
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
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker


def utcnow() -> datetime:
    """Timezone-aware now, in UTC (the only time zone stored)."""
    return datetime.now(UTC)


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
    """An API token: its role and the sha256 of its secret (the secret is shown once)."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # scanner | reader | inspector | admin
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Counter(Base):
    """A named counter, incremented under a row lock."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout.

    SQLite files are created with their parent folder.
    """
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
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


def session_factory(engine: Engine) -> sessionmaker:
    """Sessions bound to ``engine`` that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def migrate(engine: Engine) -> None:
    """Creates or upgrades the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    # Alembic narrates every step at INFO; a server start or a CLI call should not.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
