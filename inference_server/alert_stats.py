"""How the alerts fare with the inspectors: the figures a shift supervisor reads.

Over a time window (alerts *raised* in it), optionally one site or lane:

* how many alerts were raised, are still open or acknowledged, were confirmed or
  rejected, escalated (acknowledgement deadline missed) or re-sent;
* **precision**: confirmed / (confirmed + rejected), the share of decided alerts
  that found something. It says nothing of threats that raised no alert: only
  bags that alerted get a verdict;
* time from raising to acknowledgement and to verdict (median and 90th percentile);
* the same counts per class (the alert's highest-scoring box) and per lane.

Kinds: ``xray`` (a scan's detections) and ``reid`` (a watch-list sighting). The
declaration risk engine raises no alerts of its own: a risky declaration lowers
the thresholds of its scan, raises the alert's priority and adds its reasons to
the X-ray alert, so those alerts are counted under ``xray``.

A class whose alerts are mostly rejected is where a site would raise the
threshold (``eval xray --class-weights`` on its own calibration data) or add
training data (``data export-feedback`` turns these verdicts into a dataset).

Served at ``GET /v1/alerts/stats`` and printed by ``customs-vision serve alert-stats``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from cv.errors import ConfigError
from cv.inference_server import db

KINDS: tuple[str, ...] = ("xray", "reid")
"""Alert kinds, as stored in ``alerts.kind``."""
_NOT_A_KIND = {
    "risk": "declaration risk raises no alerts of its own: it raises the priority of "
    "X-ray alerts and adds their reasons, so they are counted under kind 'xray'",
}


@dataclass(slots=True)
class AlertCounts:
    """Alerts by state, and what happened on the way.

    Attributes:
        raised: Alerts raised.
        open: Not acknowledged yet.
        acknowledged: Acknowledged, no verdict yet.
        confirmed: An inspector found what the alert pointed at.
        rejected: An inspector found nothing (a false alarm).
        escalated: Not acknowledged before the deadline (whatever happened next).
        resent: Delivered again to handhelds at least once.
    """

    raised: int = 0
    open: int = 0
    acknowledged: int = 0
    confirmed: int = 0
    rejected: int = 0
    escalated: int = 0
    resent: int = 0

    @property
    def precision(self) -> float | None:
        """Confirmed over decided alerts; ``None`` before any verdict."""
        decided = self.confirmed + self.rejected
        return self.confirmed / decided if decided else None

    def add(self, alert: db.Alert) -> None:
        self.raised += 1
        if alert.state in ("open", "acknowledged", "confirmed", "rejected"):
            setattr(self, alert.state, getattr(self, alert.state) + 1)
        self.escalated += int(bool(alert.escalated))
        self.resent += int((alert.resend_count or 0) > 0)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "precision": self.precision}


@dataclass(slots=True)
class Durations:
    """Seconds from raising an alert to a later step, over the alerts that reached it."""

    n: int = 0
    p50_s: float | None = None
    p90_s: float | None = None

    @classmethod
    def of(cls, seconds: Iterable[float]) -> Durations:
        s = np.asarray(list(seconds), dtype=np.float64)
        if not s.size:
            return cls()
        return cls(int(s.size), float(np.percentile(s, 50)), float(np.percentile(s, 90)))


@dataclass(slots=True)
class AlertStats:
    """The figures of :func:`alert_stats` (see the module docstring)."""

    kind: str
    since: datetime | None
    until: datetime | None
    site: str | None
    lane: str | None
    total: AlertCounts = field(default_factory=AlertCounts)
    to_acknowledge: Durations = field(default_factory=Durations)
    to_verdict: Durations = field(default_factory=Durations)
    per_class: dict[str, AlertCounts] = field(default_factory=dict)
    per_lane: dict[str, AlertCounts] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (times as ISO 8601)."""
        return {
            "kind": self.kind,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "site": self.site,
            "lane": self.lane,
            "total": self.total.to_dict(),
            "to_acknowledge": asdict(self.to_acknowledge),
            "to_verdict": asdict(self.to_verdict),
            "per_class": {c: v.to_dict() for c, v in self.per_class.items()},
            "per_lane": {k: v.to_dict() for k, v in self.per_lane.items()},
        }


def _top_class(alert: db.Alert) -> str | None:
    """The class of an X-ray alert's highest-scoring box."""
    boxes = (alert.payload or {}).get("boxes") or []
    scored = [b for b in boxes if isinstance(b, dict) and "category" in b]
    if not scored:
        return None
    return str(max(scored, key=lambda b: float(b.get("score", 0.0)))["category"])


def _utc(value: datetime | None, name: str) -> datetime | None:
    """``value`` in UTC; a time whose UTC falls outside years 1-9999 is refused."""
    if value is None:
        return None
    try:
        return db.as_utc(value)
    except OverflowError:
        raise ConfigError(
            f"{value.isoformat()} is out of range (years 1 to 9999 in UTC)", field=name
        ) from None


def alert_stats(
    session: Session,
    *,
    kind: str = "xray",
    site: str | None = None,
    lane: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AlertStats:
    """Counts, precision and response times of the alerts raised in ``[since, until)``.

    Args:
        session: A database session.
        kind: ``xray`` or ``reid`` alerts.
        site: Only this site's alerts.
        lane: Only this lane's alerts.
        since: Raised at or after this time (naive times are UTC).
        until: Raised before this time.

    Raises:
        ConfigError: If the kind is unknown, a time is out of range or the window is empty.
    """
    if kind not in KINDS:
        why = _NOT_A_KIND.get(kind, f"unknown alert kind {kind!r}")
        raise ConfigError(f"{why}; kinds: {', '.join(KINDS)}", field="kind")
    since = _utc(since, "since")
    until = _utc(until, "until")
    if since is not None and until is not None and until <= since:
        raise ConfigError(
            f"the window is empty: until ({until.isoformat()}) is not after since "
            f"({since.isoformat()})",
            field="until",
        )
    query = select(db.Alert).where(db.Alert.kind == kind)
    if site is not None:
        query = query.where(db.Alert.site == site)
    if lane is not None:
        query = query.where(db.Alert.lane == lane)
    if since is not None:
        query = query.where(db.Alert.created_at >= since)
    if until is not None:
        query = query.where(db.Alert.created_at < until)

    out = AlertStats(kind=kind, since=since, until=until, site=site, lane=lane)
    to_ack: list[float] = []
    to_verdict: list[float] = []
    for alert in session.scalars(query.order_by(db.Alert.seq).execution_options(yield_per=1000)):
        out.total.add(alert)
        out.per_lane.setdefault(f"{alert.site} · {alert.lane}", AlertCounts()).add(alert)
        if kind == "xray":
            top = _top_class(alert)
            if top is not None:
                out.per_class.setdefault(top, AlertCounts()).add(alert)
        created = db.as_utc(alert.created_at)
        if alert.acknowledged_at is not None:
            to_ack.append((db.as_utc(alert.acknowledged_at) - created).total_seconds())
        if alert.resolved_at is not None and alert.state in ("confirmed", "rejected"):
            to_verdict.append((db.as_utc(alert.resolved_at) - created).total_seconds())
    out.to_acknowledge = Durations.of(to_ack)
    out.to_verdict = Durations.of(to_verdict)
    out.per_class = dict(sorted(out.per_class.items(), key=lambda kv: -kv[1].raised))
    out.per_lane = dict(sorted(out.per_lane.items()))
    return out
