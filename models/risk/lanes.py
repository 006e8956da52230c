"""Lanes and selection, ASYCUDA-style: criteria, random compliance sampling, quotas.

Lanes, by precedence: **red** (physical examination) > **yellow** (documentary
check) > **blue** (post-clearance audit) > **green** (release). A declaration's
lane is the highest of:

1. the lanes of the rules that fired *and selected* it. A rule with a
   ``select_rate`` below 1 selects only that share of its hits (a seeded draw),
   but never lets more than ``max_hits_without_selection`` hits in a row go
   unselected: the next one is selected;
2. the lane whose score threshold the score reaches (score = the sum of the
   weights of every rule that fired);
3. the random lane, when the declaration is drawn for the random compliance
   sample (drawn independently of the criteria, so the sample measures the
   whole flow; the decision says it is random).

Every draw is ``u = H(declaration id, seed, salt)`` in [0, 1), a 64-bit hash
(FNV-1a over the id's UTF-8 bytes, mixed with the seed and salt by the
SplitMix64 finaliser) computed the same way online (:func:`draw`) and in
batch (:func:`draw_many`), so a declaration gets the same draw wherever it is
scored and whenever it is re-scored.

Quotas (expected selection rates per lane) need the whole day's flow, so they
are applied to a batch (:func:`apply_quotas`): red first, then yellow, then
blue, each lane below its expected rate is topped up with the highest-scoring
declarations still green, labelled as a top-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import polars as pl

LANES = ("green", "blue", "yellow", "red")
"""Lane names; the index is the precedence (red highest)."""
RANK = {name: i for i, name in enumerate(LANES)}
LANE_MEANING = {
    "red": "physical examination",
    "yellow": "documentary check",
    "blue": "post-clearance audit",
    "green": "release",
}

_MASK = (1 << 64) - 1
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3


def _fnv(data: bytes) -> int:
    h = _FNV_OFFSET
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & _MASK
    return h


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _salt_key(seed: int, salt: str) -> int:
    return _mix((seed & _MASK) ^ _fnv(salt.encode()))


def draw(declaration_id: str, *, seed: int, salt: str) -> float:
    """The reproducible uniform draw in [0, 1) of one declaration for one purpose."""
    h = _mix(_fnv(declaration_id.encode()) ^ _salt_key(seed, salt))
    return (h >> 11) / float(1 << 53)


def id_hashes(ids: pl.Series) -> np.ndarray:
    """FNV-1a 64-bit hash of each id's UTF-8 bytes, vectorised over byte positions.

    The ids' bytes come out of polars as one flat array. Ordered longest first,
    the ids still being hashed at byte ``j`` are a prefix of that order, so each
    byte position is one slice and one gather for every id at once.
    """
    import polars as pl

    text = ids.cast(pl.String)
    lengths = text.str.len_bytes().fill_null(0).to_numpy().astype(np.int64)
    flat = (
        text.cast(pl.Binary)
        .cast(pl.List(pl.UInt8))
        .explode(empty_as_null=False, keep_nulls=False)
        .to_numpy()
    )
    n = len(lengths)
    longest = int(lengths.max()) if n else 0
    prime = np.uint64(_FNV_PRIME)
    if n and int(lengths.min()) == longest:  # one length, as most ids have: a strided view
        h = np.full(n, np.uint64(_FNV_OFFSET), dtype=np.uint64)
        columns = flat.reshape(n, longest)
        for j in range(longest):
            h = (h ^ columns[:, j]) * prime  # wraps modulo 2**64
        return h
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    order = np.argsort(-lengths)
    first = starts[order]
    longer = n - np.searchsorted(np.sort(lengths), np.arange(longest), side="right")
    h_sorted = np.full(n, np.uint64(_FNV_OFFSET), dtype=np.uint64)
    for j in range(longest):
        k = int(longer[j])
        h_sorted[:k] = (h_sorted[:k] ^ flat[first[:k] + j]) * prime
    h = np.empty(n, dtype=np.uint64)
    h[order] = h_sorted
    return h


def _mix_array(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def draw_many(hashes: np.ndarray, *, seed: int, salt: str) -> np.ndarray:
    """:func:`draw` for many declarations at once, from their :func:`id_hashes`."""
    h = _mix_array(hashes ^ np.uint64(_salt_key(seed, salt)))
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


RANDOM_SALT = "random"


def rule_salt(rule_id: str) -> str:
    """Salt of a rule's sampling draw."""
    return f"rule:{rule_id}"


@dataclass(frozen=True, slots=True)
class LaneConfig:
    """Selectivity settings of a pack.

    Attributes:
        thresholds: Lane to the score from which a declaration goes to it.
        expected_rates: Lane to the share of declarations it should receive.
        random_rate: Minimum share drawn at random for compliance measurement.
        random_lane: Lane a random selection goes to.
        seed: Seed of every draw.
        max_hits_without_selection: Default for rules that sample their hits.
    """

    thresholds: dict[str, int] = field(default_factory=dict)
    expected_rates: dict[str, float] = field(default_factory=dict)
    random_rate: float = 0.0
    random_lane: str = "red"
    seed: int = 0
    max_hits_without_selection: int | None = None

    def score_lane(self, score: int) -> str:
        """The highest lane whose threshold ``score`` reaches."""
        for lane in ("red", "yellow", "blue"):
            limit = self.thresholds.get(lane)
            if limit is not None and score >= limit:
                return lane
        return "green"


@dataclass(frozen=True, slots=True)
class FiredRule:
    """A rule that fired on a declaration.

    Attributes:
        id: Rule id.
        reason: The rule's plain-language reason for the officer.
        score: The weight it added.
        lane: The lane it asks for, if any.
        selected: Whether it selected the declaration into ``lane``
            (False when the rule samples its hits and this one was not drawn).
    """

    id: str
    reason: str
    score: int
    lane: str | None
    selected: bool


@dataclass(frozen=True, slots=True)
class Decision:
    """The lane of one declaration and why.

    Attributes:
        declaration_id: The declaration's id (also the decision's id).
        lane: ``red``, ``yellow``, ``blue`` or ``green``.
        score: Sum of the weights of the rules that fired.
        random: Whether the declaration was drawn for the random compliance sample.
        topped_up: Whether a quota top-up put it in its lane.
        fired: Every rule that fired, in pack order, with its reason.
        reasons: Readable lines explaining the lane, for the officer.
        pack_id: Id of the pack that decided.
        pack_version: Version of that pack.
    """

    declaration_id: str
    lane: str
    score: int
    random: bool
    topped_up: bool
    fired: tuple[FiredRule, ...]
    reasons: tuple[str, ...]
    pack_id: str
    pack_version: str

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready form (for the server and the CLI)."""
        return {
            "declaration_id": self.declaration_id,
            "lane": self.lane,
            "score": self.score,
            "random": self.random,
            "topped_up": self.topped_up,
            "fired": [
                {
                    "id": f.id,
                    "reason": f.reason,
                    "score": f.score,
                    "lane": f.lane,
                    "selected": f.selected,
                }
                for f in self.fired
            ],
            "reasons": list(self.reasons),
            "pack": f"{self.pack_id}@{self.pack_version}",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        """The decision :meth:`to_dict` wrote."""
        pack_id, _, version = str(data["pack"]).rpartition("@")
        return cls(
            declaration_id=str(data["declaration_id"]),
            lane=str(data["lane"]),
            score=int(data["score"]),
            random=bool(data["random"]),
            topped_up=bool(data["topped_up"]),
            fired=tuple(
                FiredRule(f["id"], f["reason"], int(f["score"]), f["lane"], bool(f["selected"]))
                for f in data["fired"]
            ),
            reasons=tuple(data["reasons"]),
            pack_id=pack_id,
            pack_version=version,
        )


def explain(
    *,
    fired: Sequence[FiredRule],
    score: int,
    config: LaneConfig,
    random: bool,
    lane: str,
) -> tuple[str, ...]:
    """The readable lines of a decision: each rule, the score, the random draw."""
    lines = []
    for rule in fired:
        if rule.lane and rule.selected:
            lines.append(f"[{rule.id}] {rule.reason} -> {rule.lane}")
        elif rule.lane:
            lines.append(f"[{rule.id}] {rule.reason} (hit, not sampled for {rule.lane} this time)")
        else:
            lines.append(f"[{rule.id}] {rule.reason} (+{rule.score})")
    score_lane = config.score_lane(score)
    if score_lane != "green":
        lines.append(
            f"Score {score} reaches the {score_lane} threshold ({config.thresholds[score_lane]})"
        )
    if random:
        lines.append(
            f"Random compliance sample ({config.random_rate:.2%} of declarations) -> "
            f"{config.random_lane}"
        )
    if lane == "green" and not lines:
        lines.append("No rule fired: release")
    return tuple(lines)


def streak_select(
    hits: np.ndarray, drawn: np.ndarray, *, max_hits: int | None, streak: int = 0
) -> tuple[np.ndarray, int]:
    """Which hits of a sampling rule select, in order, with the max-hits guarantee.

    Args:
        hits: Boolean per declaration: the rule fired.
        drawn: Boolean per declaration: its draw fell under the rule's rate.
        max_hits: Hits in a row that may go unselected; None for no limit.
        streak: Unselected hits in a row before the first declaration.

    Returns:
        The selected mask and the unselected streak after the last declaration.
        The online engine keeps the same streak one hit at a time
        (:meth:`.history.History.hit`), so both agree on the same sequence.
    """
    selected = np.zeros(len(hits), dtype=bool)
    idx = np.flatnonzero(hits)
    if len(idx) == 0:
        return selected, streak
    d = drawn[idx]
    if max_hits is None:
        selected[idx] = d
        last = np.flatnonzero(d)
        final = len(idx) - 1 - int(last[-1]) if len(last) else streak + len(idx)
        return selected, final
    undrawn = ~d
    count = np.cumsum(undrawn)
    base = np.maximum.accumulate(np.where(d, count, 0))
    seen_drawn = np.cumsum(d) > 0
    k = count - base + np.where(seen_drawn, 0, streak)
    forced = undrawn & (k % (max_hits + 1) == 0)
    sel = d | forced
    selected[idx] = sel
    final = int(k[-1] % (max_hits + 1)) if undrawn[-1] else 0
    return selected, final


def apply_quotas(decisions: pl.DataFrame, *, config: LaneConfig) -> pl.DataFrame:
    """Tops lanes up to their expected rates over a scored batch.

    Red is filled first, then yellow, then blue. A lane below
    ``round(rate * n)`` declarations takes the highest-scoring green ones
    (ties broken by a seeded draw), which get ``topped_up = True``; the
    reasons written out say so. Criteria and random selections are never
    removed, so a lane may end above its rate; the batch summary reports that.

    Args:
        decisions: Scored batch with ``id``, ``lane``, ``score`` and
            ``topped_up`` columns.
        config: The pack's lane settings.
    """
    import polars as pl

    if decisions.height == 0 or not any(config.expected_rates.values()):
        return decisions
    rank = decisions.get_column("lane").replace_strict(RANK, return_dtype=pl.Int8).to_numpy()
    rank, topped = quota_ranks(
        rank,
        decisions.get_column("score").to_numpy(),
        id_hashes(decisions.get_column("id")),
        decisions.get_column("topped_up").to_numpy(),
        config=config,
    )
    if topped is None:
        return decisions
    return decisions.with_columns(
        pl.Series("lane", rank, dtype=pl.Int8).replace_strict(
            dict(enumerate(LANES)), return_dtype=pl.String
        ),
        pl.Series("topped_up", topped, dtype=pl.Boolean),
    )


def quota_ranks(
    rank: np.ndarray,
    score: np.ndarray,
    hashes: np.ndarray,
    topped_up: np.ndarray,
    *,
    config: LaneConfig,
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`apply_quotas` on arrays: lane ranks (:data:`RANK`) and top-up flags.

    Args:
        rank: Each declaration's lane rank.
        score: Each declaration's score.
        hashes: The declarations' :func:`id_hashes` (the ties' draw).
        topped_up: Each declaration's top-up flag so far.
        config: The pack's lane settings.

    Returns:
        The new ranks and top-up flags (copies), or ``(rank, None)`` when no
        lane needs topping up.
    """
    n = len(rank)
    if n == 0 or not any(config.expected_rates.values()):
        return rank, None
    missing = {}
    for name in ("red", "yellow", "blue"):
        target = int(np.floor(config.expected_rates.get(name, 0.0) * n + 0.5))
        missing[name] = max(0, target - int(np.count_nonzero(rank == RANK[name])))
    wanted = sum(missing.values())
    green = np.flatnonzero(rank == 0)
    if wanted == 0 or len(green) == 0:
        return rank, None
    tie = draw_many(hashes[green], seed=config.seed, salt="top-up")
    # Scores are whole numbers, so -score + tie sorts by score (high first), then by the draw.
    key = -score[green].astype(np.float64) + tie
    wanted = min(wanted, len(green))
    top = (
        np.argpartition(key, wanted - 1)[:wanted] if wanted < len(green) else np.arange(len(green))
    )
    top = top[np.argsort(key[top], kind="stable")]
    chosen = green[top]
    rank = rank.copy()
    topped = np.array(topped_up, dtype=bool, copy=True)
    start = 0
    for name in ("red", "yellow", "blue"):
        take = chosen[start : start + missing[name]]
        rank[take] = RANK[name]
        topped[take] = True
        start += missing[name]
    return rank, topped
