"""What the online engine remembers: past declarations, decisions, outcomes, sampling streaks.

The anti-splitting and repeat-buyer rules need the history of declarations:
online they read it here, in batch they are group-bys over the batch
(:mod:`.batch`), with the same meaning:

* ``sum_value_same_awb()``: the customs value in USD of every declaration
  with the same AWB / B/L, this one included; null without an AWB;
* ``sum_value_same_supplier_day()``: the same, for the same supplier, the same
  consignee (``consignee_key``) and the same purchase date; null if any is missing;
* ``count_same_buyer(N days)`` / ``sum_value_same_buyer(N days)``: the
  consignee's declarations arriving in the N days up to and including this
  one's arrival date; null without a consignee or an arrival date.

Sums are taken in integer cents, so they are exact and the same in any order.
A declaration already in the history (same id) is counted once.

Two implementations share the :class:`History` interface: :class:`MemoryHistory`
(tests, the CLI, a single process) and :class:`SqlHistory` (SQLAlchemy Core,
SQLite by default, the same portable SQL on PostgreSQL), which the server
will share between its workers.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .declaration import CENTS, ID_LENGTH, NAME_LENGTH
from .lanes import Decision

if TYPE_CHECKING:
    import polars as pl

IN_CHUNK = 500
"""Values per SQL ``IN (...)`` list or bulk statement: under every database's parameter limit."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of inspecting a selected declaration.

    Attributes:
        decision_id: The decision (declaration id) it answers.
        found: Whether anything irregular was found.
        what: What was found (free text or a taxonomy class), if anything.
    """

    decision_id: str
    found: bool
    what: str | None = None


class History(Protocol):
    """Storage the online engine reads and writes."""

    def add(self, row: Mapping[str, Any]) -> None:
        """Remembers a normalised declaration (replacing one with the same id)."""

    def aggregates(
        self, row: Mapping[str, Any], wanted: Mapping[str, tuple[str, int]]
    ) -> dict[str, float | None]:
        """The aggregation values of ``row`` over the history, by column name."""

    def hit(self, rule_id: str, *, drawn: bool, max_hits: int | None) -> bool:
        """Counts one hit of a sampling rule; returns whether it selects."""

    def find(self, *, awb: str | None = None, bag_tag: str | None = None) -> str | None:
        """The id of the latest declaration with this AWB or bag tag."""

    def declaration(self, declaration_id: str) -> dict[str, Any] | None:
        """A remembered declaration's values."""

    def record_decision(self, decision: Decision) -> None:
        """Stores a decision (replacing an earlier one for the same declaration)."""

    def record_decisions(self, decisions: Iterable[Decision]) -> None:
        """Stores many decisions at once, as :meth:`record_decision` would one by one."""

    def store(self, rows: Iterable[Mapping[str, Any]], decisions: Iterable[Decision]) -> None:
        """Remembers declarations and stores their decisions together: all or nothing."""

    def decision(self, declaration_id: str) -> Decision | None:
        """The stored decision of a declaration."""

    def record_outcome(self, outcome: Outcome) -> None:
        """Stores an inspection outcome against its decision."""

    def decisions_frame(self) -> pl.DataFrame:
        """Decisions as a frame: id, lane, score, random, rules (';'-joined fired ids)."""

    def outcomes_frame(self) -> pl.DataFrame:
        """Outcomes as a frame: decision_id, found, what."""


def _agg_value(name: str, cents: list[int]) -> float:
    return float(len(cents)) if name == "count_same_buyer" else sum(cents) / 100.0


class _StreakMixin:
    _streaks: dict[str, int]

    def hit(self, rule_id: str, *, drawn: bool, max_hits: int | None) -> bool:
        if drawn:
            self._streaks[rule_id] = 0
            return True
        streak = self._streaks.get(rule_id, 0) + 1
        if max_hits is not None and streak >= max_hits + 1:
            self._streaks[rule_id] = 0
            return True
        self._streaks[rule_id] = streak
        return False


class MemoryHistory(_StreakMixin):
    """An in-process history, indexed for the aggregations."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        self._by_awb: dict[str, dict[str, int | None]] = defaultdict(dict)
        self._by_supplier_day: dict[tuple[Any, ...], dict[str, int | None]] = defaultdict(dict)
        self._by_buyer: dict[str, dict[str, tuple[float | None, int | None]]] = defaultdict(dict)
        self._by_bag: dict[str, str] = {}
        self._awb_latest: dict[str, str] = {}
        self._decisions: dict[str, Decision] = {}
        self._outcomes: list[Outcome] = []
        self._streaks = {}

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: Mapping[str, Any]) -> None:
        ident = row["id"]
        if ident in self._rows:
            self._forget(self._rows[ident])
        kept = dict(row)
        self._rows[ident] = kept
        cents = row.get(CENTS)
        if row.get("awb") is not None:
            self._by_awb[row["awb"]][ident] = cents
            self._awb_latest[row["awb"]] = ident
        key = _supplier_day_key(row)
        if key is not None:
            self._by_supplier_day[key][ident] = cents
        if row.get("consignee_key") is not None:
            self._by_buyer[row["consignee_key"]][ident] = (row.get("arrival_date"), cents)
        if row.get("bag_tag") is not None:
            self._by_bag[row["bag_tag"]] = ident

    def add_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Remembers many normalised declarations."""
        for row in rows:
            self.add(row)

    def _forget(self, row: Mapping[str, Any]) -> None:
        ident = row["id"]
        if row.get("awb") is not None:
            self._by_awb[row["awb"]].pop(ident, None)
        key = _supplier_day_key(row)
        if key is not None:
            self._by_supplier_day[key].pop(ident, None)
        if row.get("consignee_key") is not None:
            self._by_buyer[row["consignee_key"]].pop(ident, None)

    def aggregates(
        self, row: Mapping[str, Any], wanted: Mapping[str, tuple[str, int]]
    ) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        ident, own = row["id"], row.get(CENTS)
        for column, (name, days) in wanted.items():
            if name == "sum_value_same_awb":
                if row.get("awb") is None:
                    out[column] = None
                    continue
                others = [c for i, c in self._by_awb.get(row["awb"], {}).items() if i != ident]
            elif name == "sum_value_same_supplier_day":
                key = _supplier_day_key(row)
                if key is None:
                    out[column] = None
                    continue
                others = [c for i, c in self._by_supplier_day.get(key, {}).items() if i != ident]
            else:
                arrival = row.get("arrival_date")
                if row.get("consignee_key") is None or arrival is None:
                    out[column] = None
                    continue
                lo = arrival - days
                entries = self._by_buyer.get(row["consignee_key"], {})
                others = [
                    c
                    for i, (d, c) in entries.items()
                    if i != ident and d is not None and lo < d <= arrival
                ]
                if name == "count_same_buyer":
                    out[column] = float(len(others) + 1)
                    continue
            out[column] = (sum(c for c in others if c is not None) + (own or 0)) / 100.0
        return out

    def find(self, *, awb: str | None = None, bag_tag: str | None = None) -> str | None:
        if awb is not None and awb in self._awb_latest:
            return self._awb_latest[awb]
        if bag_tag is not None:
            return self._by_bag.get(bag_tag)
        return None

    def declaration(self, declaration_id: str) -> dict[str, Any] | None:
        row = self._rows.get(declaration_id)
        return None if row is None else dict(row)

    def record_decision(self, decision: Decision) -> None:
        self._decisions[decision.declaration_id] = decision

    def record_decisions(self, decisions: Iterable[Decision]) -> None:
        for decision in decisions:
            self.record_decision(decision)

    def store(self, rows: Iterable[Mapping[str, Any]], decisions: Iterable[Decision]) -> None:
        self.add_many(rows)
        self.record_decisions(decisions)

    def decision(self, declaration_id: str) -> Decision | None:
        return self._decisions.get(declaration_id)

    def record_outcome(self, outcome: Outcome) -> None:
        if outcome.decision_id not in self._decisions:
            from cv.errors import NotFoundError

            raise NotFoundError(
                f"no decision for declaration {outcome.decision_id!r}", field="decision_id"
            )
        self._outcomes.append(outcome)

    def decisions_frame(self) -> pl.DataFrame:
        return _decisions_frame(
            (d.declaration_id, d.lane, d.score, d.random, ";".join(f.id for f in d.fired))
            for d in self._decisions.values()
        )

    def outcomes_frame(self) -> pl.DataFrame:
        return _outcomes_frame((o.decision_id, o.found, o.what) for o in self._outcomes)


def _supplier_day_key(row: Mapping[str, Any]) -> tuple[Any, ...] | None:
    key = (row.get("supplier"), row.get("consignee_key"), row.get("purchase_date"))
    return None if None in key else key


def _decisions_frame(rows: Iterable[tuple[Any, ...]]) -> pl.DataFrame:
    import polars as pl

    return pl.DataFrame(
        list(rows),
        schema={
            "id": pl.String,
            "lane": pl.String,
            "score": pl.Int64,
            "random": pl.Boolean,
            "rules": pl.String,
        },
        orient="row",
    )


def _outcomes_frame(rows: Iterable[tuple[Any, ...]]) -> pl.DataFrame:
    import polars as pl

    return pl.DataFrame(
        list(rows),
        schema={"decision_id": pl.String, "found": pl.Boolean, "what": pl.String},
        orient="row",
    )


class SqlHistory(_StreakMixin):
    """The history in a SQL database through SQLAlchemy Core (portable SQL only).

    Args:
        url: SQLAlchemy database URL; ``sqlite:///risk.db`` or ``sqlite://``
            (in memory) for one machine, ``postgresql+psycopg://...`` for many.

    Sampling streaks are kept per process (as in :class:`MemoryHistory`) and
    written to the ``risk_streaks`` table so that a restarted server resumes them.

    A row written again replaces the stored one by an upsert (``INSERT ... ON
    CONFLICT (id) DO UPDATE`` on PostgreSQL and SQLite), so that processes sharing
    the database may write the same declaration at once: the later write wins,
    neither fails.
    """

    def __init__(self, url: str = "sqlite://") -> None:
        import sqlalchemy as sa

        self._sa = sa
        self.engine = sa.create_engine(url)
        meta = sa.MetaData()
        self.declarations = sa.Table(
            "risk_declarations",
            meta,
            sa.Column("id", sa.String(ID_LENGTH), primary_key=True),
            sa.Column("awb", sa.String(ID_LENGTH), index=True),
            sa.Column("bag_tag", sa.String(ID_LENGTH), index=True),
            sa.Column("supplier", sa.String(NAME_LENGTH)),
            sa.Column("consignee_key", sa.String(NAME_LENGTH)),
            sa.Column("purchase_day", sa.Integer),
            sa.Column("arrival_day", sa.Integer),
            sa.Column("cents", sa.BigInteger),
            sa.Column("seq", sa.Integer),
            sa.Column("data", sa.Text, nullable=False),
            sa.Index("ix_risk_decl_supplier_day", "supplier", "consignee_key", "purchase_day"),
            sa.Index("ix_risk_decl_buyer", "consignee_key", "arrival_day"),
        )
        self.decisions = sa.Table(
            "risk_decisions",
            meta,
            sa.Column("id", sa.String(ID_LENGTH), primary_key=True),
            sa.Column("pack", sa.String(120), nullable=False),
            sa.Column("lane", sa.String(8), nullable=False),
            sa.Column("score", sa.Integer, nullable=False),
            sa.Column("random", sa.Boolean, nullable=False),
            sa.Column("rules", sa.Text, nullable=False),
            sa.Column("data", sa.Text, nullable=False),
        )
        self.outcomes = sa.Table(
            "risk_outcomes",
            meta,
            sa.Column("n", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("decision_id", sa.String(ID_LENGTH), nullable=False, index=True),
            sa.Column("found", sa.Boolean, nullable=False),
            sa.Column("what", sa.Text),
        )
        self.streaks = sa.Table(
            "risk_streaks",
            meta,
            sa.Column("rule_id", sa.String(120), primary_key=True),
            sa.Column("streak", sa.Integer, nullable=False),
        )
        meta.create_all(self.engine)
        with self.engine.connect() as conn:
            self._streaks = {r.rule_id: r.streak for r in conn.execute(sa.select(self.streaks))}
            self._seq = conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(self.declarations.c.seq), 0))
            ).scalar_one()

    def add(self, row: Mapping[str, Any]) -> None:
        self.add_many([row])

    def add_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Remembers many normalised declarations in one transaction."""
        values = self._declaration_values(rows)
        if values:
            with self.engine.begin() as conn:
                self._upsert(conn, self.declarations, values)

    def store(self, rows: Iterable[Mapping[str, Any]], decisions: Iterable[Decision]) -> None:
        """Remembers declarations and stores their decisions in one transaction: if any
        write fails, none is kept, and what was stored before is unchanged."""
        declarations = self._declaration_values(rows)
        decided = self._decision_values(decisions)
        with self.engine.begin() as conn:
            self._upsert(conn, self.declarations, declarations)
            self._upsert(conn, self.decisions, decided)

    def _declaration_values(self, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        values: dict[str, dict[str, Any]] = {}  # of two rows for one id, the later
        for row in rows:
            self._seq += 1
            values[row["id"]] = {
                "id": row["id"],
                "awb": row.get("awb"),
                "bag_tag": row.get("bag_tag"),
                "supplier": row.get("supplier"),
                "consignee_key": row.get("consignee_key"),
                "purchase_day": _int(row.get("purchase_date")),
                "arrival_day": _int(row.get("arrival_date")),
                "cents": row.get(CENTS),
                "seq": self._seq,
                "data": json.dumps(dict(row), default=str),
            }
        return list(values.values())

    def _upsert(self, conn: Any, table: Any, values: list[dict[str, Any]]) -> None:
        """Inserts rows, replacing any stored with the same key, :data:`IN_CHUNK` a statement.

        An upsert, not delete-then-insert: a row another process inserts meanwhile
        (uncommitted) makes this write wait for it, then replace it, where an insert
        after a delete would fail on the duplicate key and lose the whole transaction.
        """
        sa = self._sa
        key = [c.name for c in table.primary_key]
        dialect = conn.dialect.name
        if dialect in ("postgresql", "sqlite"):
            if dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert
            statement = insert(table)
            statement = statement.on_conflict_do_update(
                index_elements=key,
                set_={
                    c.name: statement.excluded[c.name] for c in table.columns if c.name not in key
                },
            )
        else:  # no portable upsert: replace within the transaction
            statement = None
        for start in range(0, len(values), IN_CHUNK):
            chunk = values[start : start + IN_CHUNK]
            if statement is not None:
                conn.execute(statement, chunk)
                continue
            [column] = table.primary_key
            conn.execute(table.delete().where(column.in_([v[column.name] for v in chunk])))
            conn.execute(sa.insert(table), chunk)

    def aggregates(
        self, row: Mapping[str, Any], wanted: Mapping[str, tuple[str, int]]
    ) -> dict[str, float | None]:
        sa, t = self._sa, self.declarations
        out: dict[str, float | None] = {}
        own = row.get(CENTS) or 0
        with self.engine.connect() as conn:
            for column, (name, days) in wanted.items():
                where = [t.c.id != row["id"]]
                if name == "sum_value_same_awb":
                    if row.get("awb") is None:
                        out[column] = None
                        continue
                    where.append(t.c.awb == row["awb"])
                elif name == "sum_value_same_supplier_day":
                    key = _supplier_day_key(row)
                    if key is None:
                        out[column] = None
                        continue
                    where += [
                        t.c.supplier == key[0],
                        t.c.consignee_key == key[1],
                        t.c.purchase_day == _int(key[2]),
                    ]
                else:
                    arrival = row.get("arrival_date")
                    if row.get("consignee_key") is None or arrival is None:
                        out[column] = None
                        continue
                    where += [
                        t.c.consignee_key == row["consignee_key"],
                        t.c.arrival_day > _int(arrival) - days,
                        t.c.arrival_day <= _int(arrival),
                    ]
                if name == "count_same_buyer":
                    n = conn.execute(
                        sa.select(sa.func.count()).select_from(t).where(*where)
                    ).scalar_one()
                    out[column] = float(n + 1)
                else:
                    total = conn.execute(
                        sa.select(sa.func.coalesce(sa.func.sum(t.c.cents), 0)).where(*where)
                    ).scalar_one()
                    out[column] = (int(total) + own) / 100.0
        return out

    def prior_frame(self, batch: pl.DataFrame) -> pl.DataFrame:
        """The stored declarations a batch's aggregations count, as the batch engine's ``prior``.

        Those sharing an AWB or a consignee with a declaration of ``batch`` (every
        aggregation groups by one or the other), with the columns
        :func:`.batch.add_aggregates` reads.
        """
        import polars as pl

        sa, t = self._sa, self.declarations
        awbs = batch.get_column("awb").drop_nulls().unique().to_list()
        buyers = batch.get_column("consignee_key").drop_nulls().unique().to_list()
        columns = (
            t.c.id,
            t.c.awb,
            t.c.supplier,
            t.c.consignee_key,
            t.c.purchase_day,
            t.c.arrival_day,
        )
        found: dict[str, tuple[Any, ...]] = {}
        with self.engine.connect() as conn:
            for column, values in ((t.c.awb, awbs), (t.c.consignee_key, buyers)):
                for start in range(0, len(values), IN_CHUNK):
                    query = sa.select(*columns, t.c.cents).where(
                        column.in_(values[start : start + IN_CHUNK])
                    )
                    found.update((r[0], tuple(r)) for r in conn.execute(query))
        schema = {
            "id": pl.String,
            "awb": pl.String,
            "supplier": pl.String,
            "consignee_key": pl.String,
            "purchase_date": pl.Float64,
            "arrival_date": pl.Float64,
            CENTS: pl.Int64,
        }
        return pl.DataFrame(list(found.values()), schema=schema, orient="row")

    def hit(self, rule_id: str, *, drawn: bool, max_hits: int | None) -> bool:
        selected = super().hit(rule_id, drawn=drawn, max_hits=max_hits)
        with self.engine.begin() as conn:
            self._upsert(
                conn, self.streaks, [{"rule_id": rule_id, "streak": self._streaks[rule_id]}]
            )
        return selected

    def find(self, *, awb: str | None = None, bag_tag: str | None = None) -> str | None:
        sa, t = self._sa, self.declarations
        for column, value in ((t.c.awb, awb), (t.c.bag_tag, bag_tag)):
            if value is None:
                continue
            with self.engine.connect() as conn:
                found = conn.execute(
                    sa.select(t.c.id).where(column == value).order_by(t.c.seq.desc()).limit(1)
                ).scalar_one_or_none()
            if found is not None:
                return found
        return None

    def declaration(self, declaration_id: str) -> dict[str, Any] | None:
        sa, t = self._sa, self.declarations
        with self.engine.connect() as conn:
            data = conn.execute(
                sa.select(t.c.data).where(t.c.id == declaration_id)
            ).scalar_one_or_none()
        return None if data is None else json.loads(data)

    def record_decision(self, decision: Decision) -> None:
        self.record_decisions([decision])

    def record_decisions(self, decisions: Iterable[Decision]) -> None:
        """Stores many decisions in one transaction, :data:`IN_CHUNK` rows a statement.

        Each replaces the stored decision of its declaration (of two for one declaration,
        the later). A failure writes none of them: the decisions stored before stay whole.
        """
        values = self._decision_values(decisions)
        if values:
            with self.engine.begin() as conn:
                self._upsert(conn, self.decisions, values)

    @staticmethod
    def _decision_values(decisions: Iterable[Decision]) -> list[dict[str, Any]]:
        values = {
            d.declaration_id: {
                "id": d.declaration_id,
                "pack": f"{d.pack_id}@{d.pack_version}",
                "lane": d.lane,
                "score": d.score,
                "random": d.random,
                "rules": ";".join(f.id for f in d.fired),
                "data": json.dumps(d.to_dict()),
            }
            for d in decisions
        }
        return list(values.values())

    def decision(self, declaration_id: str) -> Decision | None:
        sa, t = self._sa, self.decisions
        with self.engine.connect() as conn:
            data = conn.execute(
                sa.select(t.c.data).where(t.c.id == declaration_id)
            ).scalar_one_or_none()
        return None if data is None else Decision.from_dict(json.loads(data))

    def record_outcome(self, outcome: Outcome) -> None:
        sa = self._sa
        with self.engine.begin() as conn:
            known = conn.execute(
                sa.select(self.decisions.c.id).where(self.decisions.c.id == outcome.decision_id)
            ).scalar_one_or_none()
            if known is None:
                from cv.errors import NotFoundError

                raise NotFoundError(
                    f"no decision for declaration {outcome.decision_id!r}", field="decision_id"
                )
            conn.execute(
                sa.insert(self.outcomes).values(
                    decision_id=outcome.decision_id, found=outcome.found, what=outcome.what
                )
            )

    def decisions_frame(self) -> pl.DataFrame:
        sa, t = self._sa, self.decisions
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.id, t.c.lane, t.c.score, t.c.random, t.c.rules)).all()
        return _decisions_frame(tuple(r) for r in rows)

    def outcomes_frame(self) -> pl.DataFrame:
        sa, t = self._sa, self.outcomes
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.decision_id, t.c.found, t.c.what).order_by(t.c.n)
            ).all()
        return _outcomes_frame(tuple(r) for r in rows)


def _int(days: float | None) -> int | None:
    return None if days is None else int(days)
