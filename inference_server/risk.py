"""The server's declaration risk service: one engine, its history, its pack, and fusion with scans.

:class:`RiskService` wraps one :class:`cv.models.risk.Engine` whose history is a
:class:`cv.models.risk.SqlHistory` on the server's own database (tables
``risk_*``), so declarations, decisions and outcomes survive restarts and are
shared with the reports. The routes in :mod:`.api_risk` call it; the scan path
calls it twice in :meth:`.scans.ScanService.finish`:

1. :meth:`RiskService.fuse_scan` (reads only, inside the scan's transaction):
   the scan is linked to a declaration by ``declaration_ref``, else by AWB, else
   by bag tag; the library's :func:`cv.models.risk.fuse` then checks the
   detections against the declared goods. The answer carries the alert's
   ``priority`` and ``reasons`` (the declaration's risk) and the alert
   thresholds to use;
2. :meth:`RiskService.record_fusion` (after the scan's commit): the
   declaration's lane, raised by detections it does not explain, is stored
   with the X-ray reasons (``GET /v1/risk/declarations/{id}`` shows them).

The history is another database connection, so nothing is written to it while
the scan's transaction holds SQLite's write lock. A failure of the risk side is
logged and never costs the scan its alert.

Which detections count (the rule the server applies before fusing):

* a detection counts when it reaches its class's operating point (the model's
  per-class alert threshold); a class without one counts from the pack's
  ``fusion.min_detection_score``;
* when the declaration is **high-risk** (red lane before this scan), a detection
  the declared goods do not explain counts from **half** its class's operating
  point, and it alerts from there too: a weak knife in a parcel from a stolen
  clearance code is worth an inspector's look, a weak knife in a declared knife
  set is not. The alert says so in its reasons.

Thread safety: the engine and its history are not safe for concurrent writers,
so every write (decide, outcome, pack swap, fusion record) holds one lock;
reads (a stored decision, the fusion lookup) do not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cv.errors import DataFormatError
from cv.models.risk import DEFAULT_PACK, Engine, SqlHistory, fuse, load_pack
from cv.models.risk.declaration import Problem
from cv.models.risk.engine import decide_row
from cv.models.risk.fusion import PRIORITIES, FusedResult, FusionConfig, explained_classes
from cv.models.risk.history import Outcome
from cv.models.risk.lanes import LANES, Decision
from cv.models.risk.pack import RulePack, load_pack_text
from cv.records import Detection

log = logging.getLogger(__name__)

HIGH_RISK_LANES = ("red",)
"""Lanes whose declarations let unexplained detections count from half their operating point."""
NEAR_MISS_FACTOR = 0.5
"""Share of a class's operating point from which an unexplained detection counts for a
high-risk declaration (the batcher's score floor, :func:`.modelhost.score_floor`, lies below
it so that such detections reach fusion)."""
MAX_BATCH_ROWS = 5000
"""Most declarations one batch upload may hold (each is decided online and the lot stored in
bulk while single declarations wait); larger files go through ``customs-vision risk score``."""


@dataclass(frozen=True, slots=True)
class ScanFusion:
    """A scan fused with the declaration it is linked to.

    Attributes:
        scan_id: The scan.
        declaration_id: The linked declaration.
        linked_by: ``declaration_ref``, ``awb`` or ``bag_tag``.
        before: The declaration's decision before this scan.
        declaration: The declaration's stored values.
        counted: The detections that took part in the fusion.
        config: The fusion settings used (the pack's, with the server's score rule).
        result: The library's fused result.
        thresholds: Per-class alert thresholds for this scan's alert.
        priority: The alert's priority (``PRIORITIES`` index, at least 1).
        reasons: The alert's reasons from the declaration side.
    """

    scan_id: str
    declaration_id: str
    linked_by: str
    before: Decision
    declaration: dict[str, Any]
    counted: tuple[Detection, ...]
    config: FusionConfig
    result: FusedResult
    thresholds: dict[str, float]
    priority: int
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """A scored upload: each valid row's decision and every problem, by row.

    Attributes:
        decisions: ``(row, decision)`` in file order.
        problems: One per fault (row 0: the whole file, e.g. an unknown column).
        pack_label: The pack that decided (``id@version``).
    """

    decisions: list[tuple[int, Decision]]
    problems: list[Problem]
    pack_label: str

    def summary(self) -> dict[str, Any]:
        """Counts: scored, rejected rows, problems, per lane, random selections."""
        lanes = dict.fromkeys(reversed(LANES), 0)
        for _, decision in self.decisions:
            lanes[decision.lane] += 1
        return {
            "pack": self.pack_label,
            "scored": len(self.decisions),
            "rejected_rows": len({p.row for p in self.problems if p.row > 0}),
            "problems": len(self.problems),
            "lanes": lanes,
            "random": sum(1 for _, d in self.decisions if d.random),
        }


class RiskService:
    """One risk engine per server process, with its history in the server's database.

    Args:
        engine: The engine (its history a :class:`SqlHistory`).
        pack_log: Where activated packs are kept (:class:`PackLog`).
    """

    def __init__(self, engine: Engine, *, pack_log: PackLog, pack_text: str) -> None:
        self.engine = engine
        self.pack_log = pack_log
        self.pack_text = pack_text
        self._lock = threading.Lock()

    @classmethod
    def open(cls, database_url: str, *, pack_path: Path = DEFAULT_PACK) -> RiskService:
        """Opens the history on ``database_url`` and activates the last pack put there.

        The last pack an admin activated (``PUT /v1/risk/pack``) is stored in the
        database and comes back at start-up; if it no longer validates (a
        reference file changed) or has expired, ``pack_path`` serves and the
        reason is logged. A ``pack_path`` outside its validity dates still serves
        (the server must start), with an error logged: declarations arriving
        outside those dates are refused one by one.

        Args:
            database_url: The server's SQLAlchemy URL.
            pack_path: The pack served when none was activated (the default Korean pack).

        Raises:
            RulePackError: If ``pack_path`` does not validate.
        """
        history = SqlHistory(database_url)
        pack_log = PackLog(history.engine)
        pack = load_pack(pack_path)
        text = pack.path.read_text(encoding="utf-8")
        stored = pack_log.latest()
        today = date.today()
        if stored is not None:
            try:
                last = load_pack_text(stored["text"], path=stored["path"])
                last.require_in_force(today, future=True)  # an expired one no longer serves
                pack, text = last, stored["text"]
            except Exception as exc:  # a stored pack is only a preference; the file pack serves
                log.error(
                    "the last activated rule pack no longer serves (%s); serving %s", exc, pack.path
                )
        problem = pack.in_force_problem(today)
        if problem is not None:
            log.error("%s; declarations arriving outside its dates are refused", problem)
        log.info("risk engine serving rule pack %s", pack.label)
        return cls(Engine(pack, history=history), pack_log=pack_log, pack_text=text)

    def close(self) -> None:
        """Releases the history's database connections."""
        self.engine.history.engine.dispose()  # type: ignore[attr-defined]

    @property
    def pack(self) -> RulePack:
        """The active pack."""
        return self.engine.pack

    # -- declarations -------------------------------------------------------------

    def decide(self, record: Mapping[str, Any]) -> Decision:
        """Validates, decides and stores one declaration.

        Raises:
            DeclarationError: Listing every problem (field, value, message).
        """
        with self._lock:
            return self.engine.decide(record)

    def decision(self, declaration_id: str) -> Decision | None:
        """The stored decision of a declaration (with any X-ray reasons), or ``None``."""
        return self.engine.history.decision(declaration_id)

    def decide_batch(self, path: Path) -> BatchOutcome:
        """Validates a CSV / Parquet / JSON-lines file and decides every valid row, in order.

        The same meaning as ``customs-vision risk score --no-quotas`` on the same
        file and history: the file is validated by the library's batch validator
        (the same errors table, the pack's validity dates included), and the
        aggregations (anti-splitting sums, repeat-buyer counts) are computed over
        the **whole file** plus the stored history before any row is decided, so
        the first part of a split consignment is selected like the last. Each
        row is then decided with the online rules and stored, so that scans link
        to it, outcomes can be recorded against it and later declarations'
        aggregations count it.

        The lock is held from reading the history to storing the declarations
        and their decisions, so a declaration posted meanwhile counts the whole
        file or none of it, and no decision of the file replaces one made after
        it. Both are written in one transaction: a failure stores neither, and
        leaves every declaration and decision stored before as it was.

        Raises:
            DataFormatError: If the file type is unknown or the file has no header.
            TooManyRows: Beyond :data:`MAX_BATCH_ROWS`.
            BatchNotStored: If the database refused the write (nothing of the file is stored).
        """
        import polars as pl

        from cv.models.risk.batch import (
            add_aggregates,
            file_format,
            read_declarations,
            validate_frame,
        )

        try:
            frame, read_problems = read_declarations(path)
        except pl.exceptions.PolarsError as exc:
            raise DataFormatError(
                f"unreadable {file_format(path)} file ({type(exc).__name__}: {exc})".splitlines()[
                    0
                ],
                field="file",
            ) from None
        if frame.height > MAX_BATCH_ROWS:
            raise TooManyRows(frame.height)
        pack = self.pack  # one pack for the whole file, even if swapped meanwhile
        valid, errors = validate_frame(pack, frame, row_column="__row", read_problems=read_problems)
        problems = [Problem(**r) for r in errors.iter_rows(named=True)]
        decisions: list[tuple[int, Decision]] = []
        with self._lock:
            history = self.engine.history
            if pack.aggregates and valid.height:
                prior = history.prior_frame(valid)  # type: ignore[attr-defined]
                valid = add_aggregates(valid, pack.aggregates, prior=prior)
            rows = []
            for row in valid.iter_rows(named=True):
                number = row.pop("__row")
                decisions.append((number, decide_row(pack, row, history=history)))
                rows.append(row)
            try:
                history.store(rows, [d for _, d in decisions])
            except Exception as exc:
                log.exception("a batch of %d declarations could not be stored", len(rows))
                raise BatchNotStored(len(rows), exc) from exc
        problems.sort(key=lambda p: p.row)
        return BatchOutcome(decisions, problems, pack.label)

    def record_outcome(self, decision_id: str, *, found: bool, what: str | None) -> Outcome:
        """Records what the inspection of a declaration found.

        Raises:
            NotFoundError: If no decision has that id.
        """
        with self._lock:
            self.engine.record_outcome(decision_id, found=found, what=what)
        return Outcome(decision_id, found, what)

    def report(self) -> dict[str, Any]:
        """Per-rule hits, selections, finds and hit rates; the random sample's compliance."""
        from cv.models.risk import rule_report

        history = self.engine.history
        rule_ids = [rule.id for rule in self.pack.rules]
        report = rule_report(history.decisions_frame(), history.outcomes_frame(), rule_ids=rule_ids)
        return {"pack": self.pack.label, **report.to_dict()}

    # -- the pack -----------------------------------------------------------------

    def put_pack(self, text: str, *, actor: str, future: bool = False) -> RulePack:
        """Validates a pack's YAML and makes it active; a bad pack changes nothing.

        Its list and table files resolve against the active pack's folder. A pack
        whose validity dates exclude today is refused, unless ``future`` says it
        is meant for a later date and it is not in force *yet* (declarations
        arriving before its ``valid_from`` are then refused one by one).

        Raises:
            RulePackError: The first fault, with file, line, column and field.
            PackNotInForce: The pack's dates exclude today (naming them).
        """
        with self._lock:
            where = self.pack.path
            pack = load_pack_text(text, path=where)
            pack.require_in_force(date.today(), future=future)
            self.pack_log.add(pack, text=text, actor=actor)
            self.engine.swap(pack)
            self.pack_text = text
        log.info("rule pack %s activated by %s", pack.label, actor)
        return pack

    # -- fusion with a scan ------------------------------------------------------------

    def fuse_scan(
        self,
        *,
        scan_id: str,
        declaration_ref: str | None,
        awb: str | None,
        bag_tag: str | None,
        detections: Sequence[Detection],
        thresholds: Mapping[str, float],
    ) -> ScanFusion | None:
        """Fuses a scan with its declaration, if it has one the service decided (reads only).

        Args:
            scan_id: The scan.
            declaration_ref: The declaration the scanner named, if any.
            awb: The scan's air waybill, if any.
            bag_tag: The scan's bag tag, if any.
            detections: The model's detections on the scan.
            thresholds: The model's per-class alert thresholds.

        Returns:
            The fusion, or ``None`` when no decided declaration is linked (or the
            risk side failed: logged, the scan's own alert is unaffected).
        """
        try:
            return self._fuse_scan(scan_id, declaration_ref, awb, bag_tag, detections, thresholds)
        except Exception:
            log.exception("fusing scan %s with its declaration failed", scan_id)
            return None

    def _fuse_scan(
        self,
        scan_id: str,
        declaration_ref: str | None,
        awb: str | None,
        bag_tag: str | None,
        detections: Sequence[Detection],
        thresholds: Mapping[str, float],
    ) -> ScanFusion | None:
        link = self._link(declaration_ref, awb, bag_tag)
        if link is None:
            return None
        ident, linked_by = link
        history = self.engine.history
        declaration, before = history.declaration(ident), history.decision(ident)
        if declaration is None or before is None:
            return None
        pack = self.pack
        explains = explained_classes(declaration, config=pack.fusion)
        near_miss = before.lane in HIGH_RISK_LANES
        alert_thresholds = dict(thresholds)
        counted: list[Detection] = []
        lowered: list[str] = []
        for d in detections:
            operating = thresholds.get(d.category)
            floor = pack.fusion.min_detection_score if operating is None else operating
            if near_miss and operating is not None and d.category not in explains:
                floor = operating * NEAR_MISS_FACTOR
                alert_thresholds[d.category] = floor
                if floor <= d.score < operating:
                    lowered.append(
                        f"{d.category} {d.score:.2f} counted from half its operating point "
                        f"({floor:.2f}): declaration {ident} is {before.lane} and does not "
                        "explain it"
                    )
            if d.score >= floor:
                counted.append(d)
        # The score rule above replaces the pack's single floor for classes with an operating point.
        config = replace(pack.fusion, min_detection_score=0.0)
        result = fuse(before, declaration, counted, config=config)
        key = {"declaration_ref": declaration_ref, "awb": awb, "bag_tag": bag_tag}[linked_by]
        link_line = (
            f"Declaration {ident}: {before.lane} lane, score {before.score} "
            f"(linked by {linked_by.replace('_', ' ')} {key})"
        )
        return ScanFusion(
            scan_id=scan_id,
            declaration_id=ident,
            linked_by=linked_by,
            before=before,
            declaration=declaration,
            counted=tuple(counted),
            config=config,
            result=result,
            thresholds=alert_thresholds,
            priority=max(1, PRIORITIES.index(result.alert_priority)),
            reasons=(link_line, *result.alert_reasons, *dict.fromkeys(lowered)),
        )

    def _link(
        self, declaration_ref: str | None, awb: str | None, bag_tag: str | None
    ) -> tuple[str, str] | None:
        history = self.engine.history
        if declaration_ref and history.decision(declaration_ref) is not None:
            return declaration_ref, "declaration_ref"
        if awb:
            found = history.find(awb=awb)
            if found is not None:
                return found, "awb"
        if bag_tag:
            found = history.find(bag_tag=bag_tag)
            if found is not None:
                return found, "bag_tag"
        return None

    def record_fusion(self, fusion: ScanFusion) -> None:
        """Stores the declaration's decision as the scan left it (call after the scan's commit).

        The fusion is applied again to the decision stored *now*, so two scans of
        one declaration finishing together both leave their reasons.
        """
        try:
            with self._lock:
                history = self.engine.history
                current = history.decision(fusion.declaration_id) or fusion.before
                result = fuse(current, fusion.declaration, fusion.counted, config=fusion.config)
                if result.decision != current:
                    history.record_decision(result.decision)
        except Exception:
            log.exception(
                "recording scan %s against declaration %s failed",
                fusion.scan_id,
                fusion.declaration_id,
            )


class TooManyRows(Exception):
    """A batch upload holds more rows than :data:`MAX_BATCH_ROWS` (HTTP 413)."""

    def __init__(self, rows: int) -> None:
        super().__init__(
            f"file: {rows} declarations; one upload takes at most {MAX_BATCH_ROWS}. Split "
            "the file, or score it offline with `customs-vision risk score`"
        )


class BatchNotStored(Exception):
    """The database refused a batch upload's write: none of its declarations or decisions
    is stored, and what was stored before is unchanged (HTTP 503; the file may be sent again)."""

    def __init__(self, rows: int, cause: Exception) -> None:
        super().__init__(
            f"file: nothing stored: the database refused the write of its {rows} declarations "
            f"and their decisions ({type(cause).__name__}; see the server log), so none of "
            "them is stored and what was stored before is unchanged. Send the file again"
        )


class PackLog:
    """Every pack activated through the API, newest last (table ``risk_packs``).

    Kept beside the history (SQLAlchemy Core, portable SQL) so that an activated
    pack survives a restart and every change says who made it and when.

    Args:
        engine: The history's SQLAlchemy engine.
    """

    def __init__(self, engine: Any) -> None:
        import sqlalchemy as sa

        self._sa = sa
        self.engine = engine
        meta = sa.MetaData()
        self.table = sa.Table(
            "risk_packs",
            meta,
            sa.Column("n", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("label", sa.String(200), nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
            sa.Column("path", sa.Text, nullable=False),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("actor", sa.String(64), nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        )
        meta.create_all(engine)

    def add(self, pack: RulePack, *, text: str, actor: str) -> None:
        """Stores an activated pack's text and who activated it."""
        with self.engine.begin() as conn:
            conn.execute(
                self._sa.insert(self.table).values(
                    label=pack.label,
                    sha256=pack.sha256,
                    path=str(pack.path),
                    text=text,
                    actor=actor,
                    at=datetime.now(UTC),
                )
            )

    def latest(self) -> dict[str, Any] | None:
        """The last activated pack: label, sha256, path, text, actor, at."""
        t = self.table
        with self.engine.connect() as conn:
            row = conn.execute(self._sa.select(t).order_by(t.c.n.desc()).limit(1)).first()
        return None if row is None else dict(row._mapping)

    def history(self, limit: int = 20) -> list[dict[str, Any]]:
        """The last ``limit`` activations, newest first (without their text)."""
        t = self.table
        query = self._sa.select(t.c.label, t.c.sha256, t.c.actor, t.c.at)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.n.desc()).limit(limit)).all()
        return [dict(r._mapping) for r in rows]


def problem_dicts(problems: Iterable[Problem]) -> list[dict[str, Any]]:
    """Problems as JSON rows: row, id, field, value, message."""
    return [
        {"row": p.row, "id": p.id, "field": p.field, "value": p.value, "message": p.message}
        for p in problems
    ]


def linked_scans(session: Any, declaration_id: str) -> list[dict[str, Any]]:
    """The scans linked to a declaration, oldest first, each with its alert (if any).

    A scan is linked when it named the declaration or was matched to it by AWB
    or bag tag (the scan path then records the link in ``declaration_ref``).
    """
    from sqlalchemy import select

    from cv.inference_server.db import Alert, Scan

    query = (
        select(Scan.id, Scan.site, Scan.lane, Scan.status, Alert.seq, Alert.priority, Alert.payload)
        .outerjoin(Alert, Alert.scan_id == Scan.id)
        .where(Scan.declaration_ref == declaration_id)
        .order_by(Scan.created_at, Scan.id)
    )
    out = []
    for scan_id, site, lane, status, seq, priority, payload in session.execute(query):
        alert = None
        if seq is not None:
            alert = {"seq": seq, "priority": priority, "reasons": payload.get("reasons", [])}
        out.append(
            {"scan_id": scan_id, "site": site, "lane": lane, "status": status, "alert": alert}
        )
    return out
