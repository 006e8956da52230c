"""The risk engine: the active pack (hot-swappable), online decisions, batches, outcomes, fusion.

:class:`Engine` is what the inference server will hold, one per process: its
routes are thin calls to :meth:`Engine.decide`, :meth:`Engine.score_frame`,
:meth:`Engine.load_pack` (PUT, admin only), :meth:`Engine.record_outcome` and
:meth:`Engine.fuse_scan`. Loading a pack validates it completely before the
swap, so a bad pack raises and the previous pack keeps serving; so does a pack
whose validity dates exclude today (unless it is activated as a future pack).
A declaration whose arrival date lies outside the active pack's validity is
not decided (:func:`check_in_window`), online as in batch.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import date
from os import PathLike
from typing import Any

from cv.errors import NotFoundError
from cv.records import Detection

from .declaration import DeclarationError, Problem, normalize, to_date
from .fusion import FusedResult, fuse
from .history import History, MemoryHistory, Outcome
from .lanes import RANDOM_SALT, RANK, Decision, FiredRule, draw, explain, rule_salt
from .pack import RulePack, load_pack, load_pack_text


def check_in_window(pack: RulePack, row: Mapping[str, Any]) -> None:
    """Refuses a normalised declaration whose arrival date is outside the pack's validity.

    The rules in force on the day the goods arrived are the ones that may
    select them; a pack outside that day gives no decision, so the declaration
    is reported (field ``arrival_date``) to be decided with the right pack.

    Raises:
        DeclarationError: Naming the arrival date and the pack's dates.
    """
    message = pack.declaration_problem(row.get("arrival_date"))
    if message is not None:
        day = to_date(row["arrival_date"])
        raise DeclarationError([Problem(0, row.get("id"), "arrival_date", str(day), message)])


def decide_row(pack: RulePack, row: Mapping[str, Any], *, history: History) -> Decision:
    """The decision for one normalised declaration whose aggregations are in ``row``.

    Args:
        pack: The compiled pack.
        row: Values from :func:`.declaration.normalize` plus the pack's
            aggregation columns.
        history: Keeps the sampling streaks of rules that sample their hits.
    """
    config = pack.lanes
    ident = row["id"]
    fired: list[FiredRule] = []
    score = 0
    rank = 0
    for rule in pack.rules:
        if rule.evaluate(row) is not True:
            continue
        score += rule.score
        selected = False
        if rule.lane is not None:
            if rule.select_rate >= 1:
                selected = True
            else:
                drawn = draw(ident, seed=config.seed, salt=rule_salt(rule.id)) < rule.select_rate
                selected = history.hit(rule.id, drawn=drawn, max_hits=rule.max_hits)
            if selected:
                rank = max(rank, RANK[rule.lane])
        fired.append(FiredRule(rule.id, rule.reason, rule.score, rule.lane, selected))
    rank = max(rank, RANK[config.score_lane(score)])
    random = draw(ident, seed=config.seed, salt=RANDOM_SALT) < config.random_rate
    if random:
        rank = max(rank, RANK[config.random_lane])
    lane = ("green", "blue", "yellow", "red")[rank]
    return Decision(
        declaration_id=ident,
        lane=lane,
        score=score,
        random=random,
        topped_up=False,
        fired=tuple(fired),
        reasons=explain(fired=fired, score=score, config=config, random=random, lane=lane),
        pack_id=pack.id,
        pack_version=pack.version,
    )


class Engine:
    """Holds the active rule pack and the history; decides declarations.

    Args:
        pack: The pack to start with.
        history: Where declarations, decisions and outcomes are kept; an
            in-memory one by default.
    """

    def __init__(self, pack: RulePack, *, history: History | None = None) -> None:
        self._pack = pack
        self._lock = threading.Lock()
        self.history: History = history if history is not None else MemoryHistory()

    @property
    def pack(self) -> RulePack:
        """The active pack."""
        return self._pack

    def load_pack(
        self, path: str | PathLike[str], *, today: date | None = None, future: bool = False
    ) -> RulePack:
        """Validates the pack at ``path`` and makes it active.

        Args:
            path: The pack file or folder.
            today: The day it starts serving (default: today).
            future: Accept a pack not in force yet (:meth:`.pack.RulePack.require_in_force`).

        Raises:
            RulePackError: If the pack is invalid; the active pack is unchanged.
            PackNotInForce: If its validity dates exclude ``today``; likewise.
        """
        pack = load_pack(path)
        pack.require_in_force(today or date.today(), future=future)
        return self.swap(pack)

    def load_pack_text(
        self,
        text: str,
        *,
        path: str | PathLike[str],
        today: date | None = None,
        future: bool = False,
    ) -> RulePack:
        """Validates a pack from its YAML text (the server's PUT) and makes it active.

        Args:
            text: The pack's YAML.
            path: Where it is taken to live (reference files resolve beside it).
            today: The day it starts serving (default: today).
            future: Accept a pack not in force yet.

        Raises:
            RulePackError: If the pack is invalid; the active pack is unchanged.
            PackNotInForce: If its validity dates exclude ``today``; likewise.
        """
        pack = load_pack_text(text, path=path)
        pack.require_in_force(today or date.today(), future=future)
        return self.swap(pack)

    def swap(self, pack: RulePack) -> RulePack:
        """Makes an already validated pack active; returns the previous one."""
        with self._lock:
            previous, self._pack = self._pack, pack
        return previous

    def decide(self, record: Mapping[str, Any], *, remember: bool = True) -> Decision:
        """Validates and decides one declaration.

        Args:
            record: The declaration's fields (see :data:`.declaration.FIELDS`).
            remember: Add it to the history (so later declarations' aggregations
                count it) and store the decision.

        Raises:
            DeclarationError: Listing every problem with the record, or naming
                the arrival date when it is outside the pack's validity.
        """
        pack = self._pack  # one pack for the whole decision, even if swapped meanwhile
        row = normalize(record, rates=pack.rates)
        check_in_window(pack, row)
        if pack.aggregates:
            row.update(self.history.aggregates(row, pack.aggregates))
        decision = decide_row(pack, row, history=self.history)
        if remember:
            self.history.store([row], [decision])
        return decision

    def record_outcome(self, decision_id: str, *, found: bool, what: str | None = None) -> None:
        """Records what an inspection of a selected declaration found.

        Raises:
            NotFoundError: If no decision has that id.
        """
        self.history.record_outcome(Outcome(decision_id, found, what))

    def fuse_scan(
        self,
        detections: Sequence[Detection],
        *,
        awb: str | None = None,
        bag_tag: str | None = None,
    ) -> FusedResult:
        """Links a scan to its declaration by AWB or bag tag and fuses the two.

        Raises:
            NotFoundError: If no remembered declaration has that AWB or bag tag.
        """
        ident = self.history.find(awb=awb, bag_tag=bag_tag)
        if ident is None:
            raise NotFoundError(
                f"no declaration with {'AWB ' + awb if awb else 'bag tag ' + str(bag_tag)}",
                field="awb" if awb else "bag_tag",
            )
        row = self.history.declaration(ident)
        decision = self.history.decision(ident)
        assert row is not None
        pack = self._pack
        if decision is None:  # remembered without a decision: decide it now
            if pack.aggregates:
                row.update(self.history.aggregates(row, pack.aggregates))
            decision = decide_row(pack, row, history=self.history)
        result = fuse(decision, row, detections, config=pack.fusion)
        self.history.record_decision(result.decision)
        return result
