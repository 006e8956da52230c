"""Fusion of a declaration's risk with what the X-ray saw in the same parcel or bag.

A scan is linked to its declaration by AWB or bag tag
(:meth:`.history.History.find`). Then, both ways:

* **declaration → alert**: the declaration's lane raises the priority of the
  scan's alert on the inspector's handheld (red by two levels, yellow by one),
  with the rules that fired as the reason;
* **X-ray → declaration**: each confident detection is checked against the
  goods declared. Declared goods *explain* some detector classes (a phone or
  laptop explains a battery; a knife set explains a knife), through the
  pack's ``fusion.explains`` table of HS prefixes and description keywords
  (a pack without one takes the default pack's: one table, kept as data). A
  threat the declaration does not explain sends the declaration to the threat
  lane (red by default); any other unexplained object to the documentary lane
  (yellow), each with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cv.records import Detection
from cv.taxonomy import NAMES, category, is_category

from .lanes import RANK, Decision

PRIORITIES = ("low", "normal", "high", "critical")


@dataclass(frozen=True, slots=True)
class Explains:
    """Declared goods that explain some detector classes.

    Attributes:
        name: Short name of the goods group (for reasons).
        classes: Taxonomy classes these goods explain.
        hs: HS code prefixes of these goods.
        keywords: Lower-case words or phrases of these goods in a description.
    """

    name: str
    classes: tuple[str, ...]
    hs: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FusionConfig:
    """How declarations and detections are fused.

    Attributes:
        explains: The goods-to-classes table.
        personal_effects: Classes a traveller's bag explains without declaring them.
        min_detection_score: Detections below this confidence are ignored.
        threat_lane: Lane for a declaration with an unexplained threat.
        other_lane: Lane for a declaration with another unexplained object.
    """

    explains: tuple[Explains, ...] = ()
    personal_effects: tuple[str, ...] = ()
    min_detection_score: float = 0.5
    threat_lane: str = "red"
    other_lane: str = "yellow"


FUSION_KEYS = ("explains", "personal_effects", "min_detection_score", "threat_lane", "other_lane")
"""The keys of a pack's ``fusion`` section."""


def parse_fusion(
    data: Any, *, default: FusionConfig, error: Callable[[str, str], Exception]
) -> FusionConfig:
    """Validates a pack's ``fusion`` section.

    Args:
        data: The section as plain YAML data, or None (no section: ``default``).
        default: The settings of the keys the section leaves out (the default
            pack's, :func:`.pack.default_fusion`).
        error: Builds the exception to raise from a message and a key path.
    """
    if data is None:
        return default
    if not isinstance(data, dict):
        raise error("expected a mapping", "")
    for key in data:
        if key not in FUSION_KEYS:
            raise error(f"unknown key '{key}'; allowed: {', '.join(FUSION_KEYS)}", f".{key}")

    def classes(values: Any, where: str) -> tuple[str, ...]:
        if not isinstance(values, list):
            raise error("expected a list of detector classes", where)
        for name in values:
            if not isinstance(name, str) or not is_category(name):
                raise error(f"'{name}' is not a detector class; classes: {', '.join(NAMES)}", where)
        return tuple(values)

    explains = []
    for i, item in enumerate(data.get("explains", [])):
        where = f".explains[{i}]"
        if not isinstance(item, dict) or "classes" not in item:
            raise error("expected {name, classes, hs, keywords}", where)
        unknown = set(item) - {"name", "classes", "hs", "keywords"}
        if unknown:
            raise error(f"unknown key '{sorted(unknown)[0]}'", where)
        explains.append(
            Explains(
                str(item.get("name", f"group {i}")),
                classes(item["classes"], f"{where}.classes"),
                tuple(str(h) for h in item.get("hs", [])),
                tuple(str(k).lower() for k in item.get("keywords", [])),
            )
        )
    score = data.get("min_detection_score", default.min_detection_score)
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        raise error("expected a number between 0 and 1", ".min_detection_score")
    lanes = {}
    for key in ("threat_lane", "other_lane"):
        lane = data.get(key, getattr(default, key))
        if lane not in RANK or lane == "green":
            raise error(f"unknown lane {lane!r}; lanes: red, yellow, blue", f".{key}")
        lanes[key] = lane
    return FusionConfig(
        explains=tuple(explains) if "explains" in data else default.explains,
        personal_effects=classes(
            data.get("personal_effects", list(default.personal_effects)), ".personal_effects"
        ),
        min_detection_score=float(score),
        **lanes,
    )


@dataclass(frozen=True, slots=True)
class FusedResult:
    """A declaration's decision and a scan's alert, each informed by the other.

    Attributes:
        decision: The decision with its lane raised by unexplained detections
            and the reasons added (unchanged when everything is explained).
        alert_priority: ``low``, ``normal``, ``high`` or ``critical``.
        alert_reasons: Readable lines for the handheld alert.
        explained: Detections the declared goods explain, with the goods group.
        unexplained: Confident detections nothing declared explains.
    """

    decision: Decision
    alert_priority: str
    alert_reasons: tuple[str, ...]
    explained: tuple[tuple[Detection, str], ...] = field(default=())
    unexplained: tuple[Detection, ...] = field(default=())


def explained_classes(declaration: Mapping[str, Any], *, config: FusionConfig) -> dict[str, str]:
    """Detector class to the declared goods group that explains it."""
    out: dict[str, str] = {}
    hs = str(declaration.get("hs_code") or "")
    description = str(declaration.get("description") or "").lower()
    for group in config.explains:
        by_hs = bool(hs) and any(hs.startswith(prefix) for prefix in group.hs)
        by_word = any(re.search(rf"\b{re.escape(k)}", description) for k in group.keywords)
        if by_hs or by_word:
            for name in group.classes:
                out.setdefault(name, group.name)
    if declaration.get("kind") == "traveller":
        for name in config.personal_effects:
            out.setdefault(name, "personal effects")
    return out


def fuse(
    decision: Decision,
    declaration: Mapping[str, Any],
    detections: Sequence[Detection],
    *,
    config: FusionConfig,
) -> FusedResult:
    """Checks a scan's detections against the declaration linked to it, both ways.

    Args:
        decision: The declaration's decision from the risk engine.
        declaration: The declaration's values (``kind``, ``hs_code``, ``description``).
        detections: What the detector found in the scan (taxonomy classes).
        config: The pack's fusion settings.
    """
    confident = [d for d in detections if d.score >= config.min_detection_score]
    explains = explained_classes(declaration, config=config)
    explained = tuple((d, explains[d.category]) for d in confident if d.category in explains)
    unexplained = tuple(d for d in confident if d.category not in explains)
    declared = _declared(declaration)

    # X-ray -> declaration: unexplained objects raise the lane.
    lane, reasons = decision.lane, list(decision.reasons)
    for d in unexplained:
        threat = is_category(d.category) and category(d.category).threat
        target = config.threat_lane if threat else config.other_lane
        reasons.append(
            f"X-ray: {d.category} detected ({d.score:.2f}) that the declared goods "
            f"({declared}) do not explain -> {target}"
        )
        if RANK[target] > RANK[lane]:
            lane = target
    fused_decision = (
        replace(decision, lane=lane, reasons=tuple(reasons)) if unexplained else decision
    )

    # Declaration -> alert: the declaration's risk raises the alert's priority.
    threats = [d for d in confident if is_category(d.category) and category(d.category).threat]
    level = 2 if threats else (1 if confident else 0)
    alert: list[str] = []
    if threats:
        names = ", ".join(sorted({d.category for d in threats}))
        alert.append(f"Threat detected: {names}")
    raise_by = {"red": 2, "yellow": 1}.get(decision.lane, 0)
    if raise_by:
        fired = "; ".join(f.reason for f in decision.fired if f.selected or not f.lane) or "score"
        alert.append(f"Declaration {decision.declaration_id} is {decision.lane}: {fired}")
        level += raise_by
    if unexplained:
        names = ", ".join(sorted({d.category for d in unexplained}))
        alert.append(f"Not explained by the declaration ({declared}): {names}")
        level = max(level, 2)
    for d, group in explained:
        alert.append(f"{d.category} explained by declared {group}")
    return FusedResult(
        decision=fused_decision,
        alert_priority=PRIORITIES[min(level, len(PRIORITIES) - 1)],
        alert_reasons=tuple(alert),
        explained=explained,
        unexplained=unexplained,
    )


def _declared(declaration: Mapping[str, Any]) -> str:
    description = declaration.get("description") or "nothing declared"
    hs = declaration.get("hs_code")
    return f"'{description}', HS {hs}" if hs else f"'{description}'"
