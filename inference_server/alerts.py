"""Alerts: from a scan's detections to a push on an inspector's handheld.

The path, in the order it runs:

1. :func:`raise_alert` is called by the scan service inside the transaction that
   finishes a scan. Detections at or above their class's operating-point threshold
   make one row in the outbox (``alerts``) with the next ``alert_seq`` number.
2. The scan service commits, then calls :meth:`AlertService.notify`.
3. The service's pump wakes at once, reads the alerts above the last ``seq`` it
   fanned out (and the audit events newer than the last it saw), and puts them on
   the queue of every open stream whose site / lane filter matches. It also wakes
   every :data:`POLL_S` seconds on its own, so that alerts committed by another
   process (a second worker, a server restarted after a crash) are delivered too.
4. :meth:`AlertService.stream` is what the SSE and WebSocket routes
   (:mod:`cv.inference_server.api_alerts`) iterate: a ``hello`` with the history
   ``epoch``, a replay from the database of everything after the client's last id,
   then the live queue, de-duplicated by ``seq``.
5. Inspectors act through :func:`acknowledge`, :func:`confirm` and :func:`reject`;
   the escalation loop re-sends alerts still ``open`` after their deadline and
   marks them ``escalated``.

Delivery is at least once: every alert has a durable, strictly increasing
``seq`` (assigned in commit order), and a client resumes after the last ``seq``
it saw. Only new alerts carry an event id; state changes (``update``) and
re-sends carry none, so they never move a client's resume point backwards. A
reconnecting client gets every alert after its id with its *current* state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cv.errors import CustomsVisionError, DataValidationError, NotFoundError
from cv.inference_server import db
from cv.inference_server.metrics import ALERT_DELIVERY_LAG
from cv.inference_server.settings import ServerSettings
from cv.records import Detection
from cv.taxonomy import is_category

log = logging.getLogger(__name__)

STATES: tuple[str, ...] = ("open", "acknowledged", "confirmed", "rejected")
"""Every state an alert can be in."""
ACTIVE: tuple[str, ...] = ("open", "acknowledged")
"""States in which an inspector may still confirm or reject."""

SEQ_COUNTER = "alert_seq"
EPOCH_COUNTER = "alert_epoch"

POLL_S = 0.5
"""How often the pump looks for alerts committed by other processes."""
PAGE = 500
"""Rows read per query when replaying or pumping."""
QUEUE_MAX = 10_000
"""Messages a stream may fall behind before it is closed (the client resumes)."""
RETRY_MS = 3000
"""Reconnect delay told to SSE clients."""
MAX_RESENDS = 5
"""Re-sends of an unacknowledged alert before it is left open without buzzing again."""
EVENT_GAP_S = 60.0
"""How long the pump looks again for an event id it skipped (an uncommitted
transaction's) before taking it for rolled back."""

# Audit events that change what a handheld shows; ``created`` is the alert itself.
_UPDATE_EVENTS = ("acknowledged", "confirmed", "rejected", "escalated", "resent")


class AlertStateError(CustomsVisionError):
    """An action that the alert's current state does not allow (HTTP 409)."""


# --------------------------------------------------------------------------- raising


def passing_detections(
    detections: Sequence[Detection], thresholds: Mapping[str, float]
) -> list[Detection]:
    """The detections at or above their class's threshold; a class without one never passes."""
    return [d for d in detections if d.category in thresholds and d.score >= thresholds[d.category]]


def next_alert_seq(session: Session) -> int:
    """Takes the next alert sequence number inside ``session``'s transaction.

    One ``UPDATE ... RETURNING`` both locks the counter row and increments it: on
    PostgreSQL the row lock (the same lock ``SELECT ... FOR UPDATE`` takes) is held
    until the transaction ends, so a second raiser waits and numbers are handed out
    in commit order; SQLite takes its single write lock at the same statement. A
    read-then-write would instead fail on SQLite's WAL snapshots under concurrency.
    """
    value = session.execute(
        update(db.Counter)
        .where(db.Counter.name == SEQ_COUNTER)
        .values(value=db.Counter.value + 1)
        .returning(db.Counter.value)
    ).scalar_one_or_none()
    if value is None:
        raise CustomsVisionError(
            f"the {SEQ_COUNTER!r} counter row is missing: run the database migrations",
            field="counters",
        )
    return int(value)


def raise_alert(
    session: Session,
    *,
    scan: db.Scan,
    detections: Sequence[Detection],
    thresholds: Mapping[str, float],
    overlay_url: str,
    ack_deadline_s: float,
    reasons: Sequence[str] = (),
    priority: int = 1,
    image_url: str | None = None,
) -> db.Alert | None:
    """Adds an alert for ``scan`` to the outbox if any detection passes its threshold.

    Call inside the transaction that finishes the scan and commit it yourself
    (then :meth:`AlertService.notify`): the sequence number, the alert and its
    ``created`` event are written in that one transaction, so an alert exists
    exactly when its scan's result does.

    Args:
        session: The scan service's session, in its open transaction.
        scan: The scan the detections belong to.
        detections: The model's detections on the scan (original-image pixels).
        thresholds: Per-class operating-point score thresholds from the evaluation;
            a detection alerts when ``score >= thresholds[category]``.
        overlay_url: URL of the scan image with the boxes drawn.
        ack_deadline_s: Seconds an inspector has to acknowledge before the alert is
            re-sent and escalated.
        reasons: Further reasons (declaration risk, watch-list hits), shown as given.
        priority: Higher is more urgent.
        image_url: URL of the plain scan image; ``/v1/scans/<id>/image`` by default.

    Returns:
        The new alert, or ``None`` when no detection passes.
    """
    hits = passing_detections(detections, thresholds)
    if not hits:
        return None
    seq = next_alert_seq(session)
    now = db.utcnow()
    why = [
        f"{d.category} {d.score:.2f} >= operating point {thresholds[d.category]:.2f}" for d in hits
    ]
    payload: dict[str, Any] = {
        "scan_id": scan.id,
        "site": scan.site,
        "lane": scan.lane,
        "kind": scan.kind,
        "bag_tag": scan.bag_tag,
        "awb": scan.awb,
        "declaration_ref": scan.declaration_ref,
        "overlay_url": overlay_url,
        "image_url": image_url or f"/v1/scans/{scan.id}/image",
        "width": scan.width,
        "height": scan.height,
        "boxes": [
            {"box": [float(v) for v in d.box], "category": d.category, "score": float(d.score)}
            for d in hits
        ],
        "reasons": [*why, *reasons],
        "created_at": now.isoformat(),
    }
    alert = db.Alert(
        seq=seq,
        scan_id=scan.id,
        kind="xray",
        site=scan.site,
        lane=scan.lane,
        priority=priority,
        state="open",
        escalated=False,
        payload=payload,
        created_at=now,
        ack_deadline=now + timedelta(seconds=ack_deadline_s),
        resend_count=0,
    )
    session.add(alert)
    session.flush()  # the event's foreign key needs the alert row first
    session.add(db.AlertEvent(alert_seq=seq, event="created", at=now, data={"boxes": len(hits)}))
    session.flush()
    return alert


# --------------------------------------------------------------------------- reading


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    aware = _aware(value)
    return None if aware is None else aware.isoformat()


def alert_message(alert: db.Alert) -> dict[str, Any]:
    """What a handheld receives for ``alert``: its payload plus its current state."""
    return {
        **alert.payload,
        "seq": alert.seq,
        "alert_kind": alert.kind,
        "priority": alert.priority,
        "state": alert.state,
        "escalated": alert.escalated,
        "resend_count": alert.resend_count,
        "ack_deadline": _iso(alert.ack_deadline),
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": _iso(alert.acknowledged_at),
        "resolved_by": alert.resolved_by,
        "resolved_at": _iso(alert.resolved_at),
        "verdict": alert.verdict,
    }


def event_record(event: db.AlertEvent) -> dict[str, Any]:
    """One audit event as JSON."""
    return {"event": event.event, "actor": event.actor, "at": _iso(event.at), "data": event.data}


def alert_epoch(sessions: sessionmaker) -> int:
    """The database's history epoch, created on first use.

    A random number kept in the ``counters`` table: it stays the same for the life
    of the database and changes when the database is replaced, so a client that
    sees a new epoch knows its last id means nothing here and resyncs.
    """
    query = select(db.Counter.value).where(db.Counter.name == EPOCH_COUNTER)
    with sessions() as session:
        value = session.scalar(query)
        if value is not None:
            return int(value)
        session.add(db.Counter(name=EPOCH_COUNTER, value=secrets.randbelow(2**31 - 1) + 1))
        try:
            session.commit()
        except IntegrityError:  # another process created it first; use theirs
            session.rollback()
        return int(session.scalar(query))  # type: ignore[arg-type]


def _filtered(query: Any, site: str | None, lane: str | None) -> Any:
    if site is not None:
        query = query.where(db.Alert.site == site)
    if lane is not None:
        query = query.where(db.Alert.lane == lane)
    return query


def list_alerts(
    session: Session,
    *,
    site: str | None = None,
    lane: str | None = None,
    states: Sequence[str] | None = None,
    after_seq: int = 0,
    limit: int = 100,
) -> list[db.Alert]:
    """Alerts with ``seq > after_seq`` matching the filters, in ``seq`` order."""
    query = _filtered(select(db.Alert).where(db.Alert.seq > after_seq), site, lane)
    if states:
        query = query.where(db.Alert.state.in_(list(states)))
    return list(session.scalars(query.order_by(db.Alert.seq).limit(limit)))


def get_alert(session: Session, seq: int) -> db.Alert:
    """The alert numbered ``seq``.

    Raises:
        NotFoundError: If there is none.
    """
    alert = session.get(db.Alert, seq)
    if alert is None:
        raise NotFoundError(f"no alert with seq {seq}", field="seq")
    return alert


def alert_events(session: Session, seq: int) -> list[db.AlertEvent]:
    """The audit trail of alert ``seq``, oldest first."""
    query = select(db.AlertEvent).where(db.AlertEvent.alert_seq == seq)
    return list(session.scalars(query.order_by(db.AlertEvent.id)))


# --------------------------------------------------------------------------- acting


def _transition(
    session: Session,
    seq: int,
    *,
    allowed: Sequence[str],
    values: dict[str, Any],
    event: str,
    actor: str,
    data: dict[str, Any] | None,
) -> db.Alert:
    # A conditional UPDATE rather than read-check-write: two inspectors (or two
    # server processes) acting at once cannot both win.
    result = session.execute(
        update(db.Alert)
        .where(db.Alert.seq == seq, db.Alert.state.in_(list(allowed)))
        .values(values)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        session.rollback()
        alert = get_alert(session, seq)
        who = alert.resolved_by or alert.acknowledged_by
        raise AlertStateError(
            f"alert {seq} is {alert.state}"
            + (f" (by {who})" if who else "")
            + f"; {event} needs it to be {' or '.join(allowed)}",
            field="state",
        )
    session.add(db.AlertEvent(alert_seq=seq, event=event, actor=actor, data=data))
    session.commit()
    return session.get(db.Alert, seq, populate_existing=True)  # type: ignore[return-value]


def acknowledge(session: Session, seq: int, *, actor: str) -> db.Alert:
    """Marks an open alert acknowledged by ``actor``, which stops its re-sends.

    Raises:
        NotFoundError: If there is no such alert.
        AlertStateError: If it is not ``open``.
    """
    now = db.utcnow()
    return _transition(
        session,
        seq,
        allowed=("open",),
        values={"state": "acknowledged", "acknowledged_at": now, "acknowledged_by": actor},
        event="acknowledged",
        actor=actor,
        data=None,
    )


def check_boxes(
    boxes: Sequence[Mapping[str, Any]], *, width: int, height: int
) -> list[dict[str, Any]]:
    """Validates corrected boxes against the image and the taxonomy.

    Args:
        boxes: ``{"box": [x1, y1, x2, y2], "category": name}`` in image pixels.
        width: Image width in pixels.
        height: Image height in pixels.

    Returns:
        The boxes as plain JSON.

    Raises:
        DataValidationError: Naming the field (``boxes[i].box``, ``boxes[i].category``).
    """
    if not boxes:
        raise DataValidationError(
            "confirm needs at least one box when boxes are given; leave boxes out to keep "
            "the model's, or reject the alert",
            field="boxes",
        )
    out = []
    for i, b in enumerate(boxes):
        category = str(b.get("category", ""))
        if not is_category(category):
            raise DataValidationError(
                f"{category!r} is not a class of the customs taxonomy", field=f"boxes[{i}].category"
            )
        box = [float(v) for v in b.get("box", ())]
        if len(box) != 4:
            raise DataValidationError("a box is [x1, y1, x2, y2]", field=f"boxes[{i}].box")
        x1, y1, x2, y2 = box
        if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
            raise DataValidationError(
                f"box {box} is empty or reaches outside the {width}x{height} image",
                field=f"boxes[{i}].box",
            )
        out.append({"box": box, "category": category})
    return out


def confirm(
    session: Session,
    seq: int,
    *,
    actor: str,
    boxes: Sequence[Mapping[str, Any]] | None = None,
    note: str | None = None,
) -> db.Alert:
    """Confirms an open or acknowledged alert, with corrected boxes if given.

    Raises:
        NotFoundError: If there is no such alert.
        AlertStateError: If it is resolved already.
        DataValidationError: If a corrected box is outside the image or its class
            is not a taxonomy name.
    """
    alert = get_alert(session, seq)
    corrected = None
    if boxes is not None and alert.state in ACTIVE:  # a resolved alert answers 409 first
        width, height = int(alert.payload["width"]), int(alert.payload["height"])
        corrected = check_boxes(boxes, width=width, height=height)
    now = db.utcnow()
    verdict = {"verdict": "confirmed", "boxes": corrected, "note": note}
    return _transition(
        session,
        seq,
        allowed=ACTIVE,
        values={"state": "confirmed", "resolved_at": now, "resolved_by": actor, "verdict": verdict},
        event="confirmed",
        actor=actor,
        data={"corrected": corrected is not None, "note": note},
    )


def reject(session: Session, seq: int, *, actor: str, note: str | None = None) -> db.Alert:
    """Rejects an open or acknowledged alert (a false alarm).

    Raises:
        NotFoundError: If there is no such alert.
        AlertStateError: If it is resolved already.
    """
    now = db.utcnow()
    verdict = {"verdict": "rejected", "boxes": None, "note": note}
    return _transition(
        session,
        seq,
        allowed=ACTIVE,
        values={"state": "rejected", "resolved_at": now, "resolved_by": actor, "verdict": verdict},
        event="rejected",
        actor=actor,
        data={"note": note},
    )


def escalate_due(
    session: Session,
    *,
    ack_deadline_s: float,
    max_resends: int = MAX_RESENDS,
    now: datetime | None = None,
) -> int:
    """Re-sends and escalates the open alerts whose acknowledgement deadline passed.

    Each gets a ``resent`` event (and ``escalated`` the first time), one more
    ``resend_count`` and a new deadline, twice as far off each time
    (``ack_deadline_s`` × 2, × 4...). After ``max_resends`` re-sends an alert is left
    open and escalated, on the console's and the handhelds' lists, but no longer
    makes every handheld buzz.

    Returns:
        How many alerts were re-sent.
    """
    now = now or db.utcnow()
    due = session.execute(
        select(db.Alert.seq, db.Alert.resend_count, db.Alert.escalated)
        .where(
            db.Alert.state == "open",
            db.Alert.ack_deadline <= now,
            db.Alert.resend_count < max_resends,
        )
        .order_by(db.Alert.seq)
        .limit(PAGE)
    ).all()
    done = 0
    for seq, count, escalated in due:
        # Guarded by the resend count, so two server processes escalate an alert once.
        result = session.execute(
            update(db.Alert)
            .where(db.Alert.seq == seq, db.Alert.state == "open", db.Alert.resend_count == count)
            .values(
                escalated=True,
                resend_count=count + 1,
                ack_deadline=now + timedelta(seconds=ack_deadline_s * 2 ** (count + 1)),
            )
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            continue
        if not escalated:
            session.add(db.AlertEvent(alert_seq=seq, event="escalated", at=now))
        session.add(db.AlertEvent(alert_seq=seq, event="resent", at=now, data={"n": count + 1}))
        done += 1
    session.commit()
    return done


# --------------------------------------------------------------------------- delivery


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """One message on an alert stream.

    Attributes:
        event: ``hello`` (first, with the epoch), ``alert`` (new or re-sent),
            ``update`` (a state change) or ``keepalive``.
        data: The JSON body: for ``alert`` and ``update``, :func:`alert_message`.
        id: The event id: the ``seq`` of a new alert; ``None`` for everything else.
        seq: The alert the message is about (0 for ``hello`` and ``keepalive``).
        site: The alert's site, for filtering.
        lane: The alert's lane, for filtering.
        created_at: When the alert was committed, for the delivery-lag figure.
    """

    event: str
    data: dict[str, Any]
    id: int | None = None
    seq: int = 0
    site: str = ""
    lane: str = ""
    created_at: datetime | None = None


_CLOSE = AlertMessage(event="close", data={})


@dataclass(eq=False)
class _Subscription:
    site: str | None
    lane: str | None
    queue: asyncio.Queue[AlertMessage] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_MAX)
    )
    overflowed: bool = False

    def offer(self, message: AlertMessage) -> None:
        if message is not _CLOSE and (
            (self.site is not None and message.site != self.site)
            or (self.lane is not None and message.lane != self.lane)
        ):
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed = True


def _new_alert(alert: db.Alert) -> AlertMessage:
    return AlertMessage(
        event="alert",
        data=alert_message(alert),
        id=alert.seq,
        seq=alert.seq,
        site=alert.site,
        lane=alert.lane,
        created_at=_aware(alert.created_at),
    )


class AlertService:
    """Fans committed alerts out to the streams of this process, and escalates.

    Args:
        settings: Server settings (``alert_ack_deadline_s``, ``alert_max_resends``,
            ``sse_keepalive_s``).
        sessions: Session factory of the server's database.
        poll_s: Seconds between looks for alerts committed by other processes.
    """

    def __init__(
        self, settings: ServerSettings, sessions: sessionmaker, *, poll_s: float = POLL_S
    ) -> None:
        self.sessions = sessions
        self.ack_deadline_s = settings.alert_ack_deadline_s
        self.max_resends = settings.alert_max_resends
        self.keepalive_s = settings.sse_keepalive_s
        self.poll_s = poll_s
        self.epoch = 0
        self._subs: set[_Subscription] = set()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_seq = 0
        self._last_event = 0
        # Event ids below _last_event not seen yet -> when the gap was noticed.
        self._event_gaps: dict[int, float] = {}

    # -- life cycle

    async def start(self) -> None:
        """Reads the epoch and the current high-water marks, starts the pump and escalation."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.epoch = await asyncio.to_thread(alert_epoch, self.sessions)
        self._last_seq, self._last_event = await asyncio.to_thread(self._high_water)
        self._tasks = [
            asyncio.create_task(self._pump_loop(), name="alerts-pump"),
            asyncio.create_task(self._escalation_loop(), name="alerts-escalation"),
        ]

    async def stop(self) -> None:
        """Stops the loops and ends every open stream (clients reconnect and resume)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for sub in list(self._subs):
            try:
                sub.queue.put_nowait(_CLOSE)
            except asyncio.QueueFull:
                sub.overflowed = True  # ends the stream once it reaches the check

    def notify(self, seq: int | None = None) -> None:
        """Wakes the pump now: call after committing an alert or a state change.

        Safe from any thread (the scan service commits in worker threads).

        Args:
            seq: The alert committed, if one; informational (the pump reads them all).
        """
        if self._loop is None or self._wake is None or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._wake.set)

    @property
    def subscribers(self) -> int:
        """Streams open in this process."""
        return len(self._subs)

    # -- streams

    async def stream(
        self, *, site: str | None = None, lane: str | None = None, last_id: int | None = None
    ) -> AsyncIterator[AlertMessage]:
        """The messages one client receives, until the service stops or the client goes.

        First ``hello`` (epoch, the newest ``seq``), then a replay from the database:
        every matching alert with ``seq > last_id`` in its current state, or without a
        ``last_id`` the matching alerts still awaiting action (``open`` or
        ``acknowledged``); then live messages as they are committed, with a
        ``keepalive`` after ``sse_keepalive_s`` of silence.

        Args:
            site: Only alerts of this site.
            lane: Only alerts of this lane.
            last_id: The last alert ``seq`` the client has seen.
        """
        sub = _Subscription(site, lane)
        # Subscribe before replaying, so nothing committed meanwhile falls between.
        self._subs.add(sub)
        try:
            newest = await asyncio.to_thread(lambda: self._high_water()[0])
            yield AlertMessage(
                event="hello",
                data={
                    "epoch": self.epoch,
                    "last_seq": newest,
                    "resume_after": last_id,
                    "site": site,
                    "lane": lane,
                },
            )
            cursor = 0 if last_id is None else last_id
            active_only = last_id is None
            while True:
                page = await asyncio.to_thread(self._replay_page, site, lane, cursor, active_only)
                for message in page:
                    cursor = message.seq
                    yield message
                if len(page) < PAGE:
                    break
            while True:
                if sub.overflowed:
                    return  # the client reconnects with its last id and replays from there
                try:
                    message = await asyncio.wait_for(sub.queue.get(), self.keepalive_s)
                except TimeoutError:
                    yield AlertMessage(event="keepalive", data={})
                    continue
                if message is _CLOSE:
                    return
                if message.id is not None:
                    if message.seq <= cursor:
                        continue  # replayed already
                    cursor = message.seq
                    if message.created_at is not None:
                        lag = (db.utcnow() - message.created_at).total_seconds()
                        ALERT_DELIVERY_LAG.observe(max(lag, 0.0))
                yield message
        finally:
            self._subs.discard(sub)

    # -- database side (runs in worker threads)

    def _high_water(self) -> tuple[int, int]:
        with self.sessions() as session:
            seq = session.scalar(select(func.max(db.Alert.seq))) or 0
            event = session.scalar(select(func.max(db.AlertEvent.id))) or 0
        return int(seq), int(event)

    def _replay_page(
        self, site: str | None, lane: str | None, after: int, active_only: bool
    ) -> list[AlertMessage]:
        with self.sessions() as session:
            alerts = list_alerts(
                session,
                site=site,
                lane=lane,
                states=ACTIVE if active_only else None,
                after_seq=after,
                limit=PAGE,
            )
            return [_new_alert(a) for a in alerts]

    def _fetch_new(self) -> tuple[list[AlertMessage], bool]:
        messages: list[AlertMessage] = []
        with self.sessions() as session:
            alerts = list_alerts(session, after_seq=self._last_seq, limit=PAGE)
            for alert in alerts:
                messages.append(_new_alert(alert))
                self._last_seq = alert.seq
            events = select(db.AlertEvent, db.Alert).join(
                db.Alert, db.Alert.seq == db.AlertEvent.alert_seq
            )
            rows = session.execute(
                events.where(db.AlertEvent.id > self._last_event)
                .order_by(db.AlertEvent.id)
                .limit(PAGE)
            ).all()
            late = []
            if self._event_gaps:
                late = session.execute(
                    events.where(db.AlertEvent.id.in_(list(self._event_gaps)))
                ).all()
            for event, alert in [*late, *rows]:
                self._note_event(event.id)
                if event.event not in _UPDATE_EVENTS:
                    continue
                data = {**alert_message(alert), "change": event.event, "actor": event.actor}
                resent = event.event == "resent"
                if resent:
                    data["resent"] = True
                messages.append(
                    AlertMessage(
                        event="alert" if resent else "update",
                        data=data,
                        seq=alert.seq,
                        site=alert.site,
                        lane=alert.lane,
                    )
                )
        self._expire_event_gaps()
        return messages, len(alerts) == PAGE or len(rows) == PAGE

    def _note_event(self, event_id: int) -> None:
        """Marks an event id seen, and the ids it skipped as gaps to look at again.

        On PostgreSQL an event's id is handed out when its row is inserted, not when
        its transaction commits: an escalation round that commits after an
        acknowledgement can have the lower ids, which become visible only after the
        higher ones were read. Those skipped ids are read again until they appear.
        """
        if self._event_gaps.pop(event_id, None) is not None:
            return
        now = time.monotonic()
        for missing in range(self._last_event + 1, min(event_id, self._last_event + PAGE + 1)):
            self._event_gaps.setdefault(missing, now)
        self._last_event = max(self._last_event, event_id)

    def _expire_event_gaps(self) -> None:
        """Forgets gaps older than :data:`EVENT_GAP_S`: ids of rolled-back transactions
        (a PostgreSQL sequence does not reuse them) never appear."""
        old = time.monotonic() - EVENT_GAP_S
        for event_id in [i for i, t in self._event_gaps.items() if t < old]:
            del self._event_gaps[event_id]

    def _escalate(self) -> int:
        with self.sessions() as session:
            return escalate_due(
                session, ack_deadline_s=self.ack_deadline_s, max_resends=self.max_resends
            )

    # -- loops

    async def _pump_loop(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            # Cleared before reading: a notify that lands during the read runs another round.
            self._wake.clear()
            try:
                messages, more = await asyncio.to_thread(self._fetch_new)
            except Exception:  # the database may be briefly unavailable; keep polling
                log.exception("reading new alerts failed; retrying")
                continue
            for message in messages:
                for sub in list(self._subs):
                    sub.offer(message)
            if more:
                self._wake.set()

    async def _escalation_loop(self) -> None:
        interval = min(1.0, max(0.05, self.ack_deadline_s / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                count = await asyncio.to_thread(self._escalate)
            except Exception:
                log.exception("escalating overdue alerts failed; retrying")
                continue
            if count:
                log.info("re-sent %d unacknowledged alert(s)", count)
                self.notify()
