"""Declaration risk engine: rule packs as data, lanes with reasons, fusion with X-ray detections.

Public API (no web framework here; the inference server's routes call these)::

    from cv.models.risk import Engine, load_pack, DEFAULT_PACK
    engine = Engine(load_pack(DEFAULT_PACK))
    decision = engine.decide({"id": "D1", "kind": "list", "value": 180, "currency": "USD", ...})
    decision.lane, decision.reasons

    from cv.models.risk import score_file, expand
    result = score_file(engine.pack, "declarations.parquet")   # batch, vectorised

Modules: :mod:`.expr` (the condition language), :mod:`.declaration` (schema,
validation, currency), :mod:`.pack` (loading and validation), :mod:`.online`
and :mod:`.vector` (the two backends), :mod:`.lanes` (selection),
:mod:`.history` (aggregations, decisions, outcomes), :mod:`.batch`,
:mod:`.engine`, :mod:`.feedback` (per-rule report), :mod:`.fusion` (X-ray).
Submodules import polars or SQLAlchemy only where they need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "DEFAULT_PACK": ".pack",
    "RulePack": ".pack",
    "RulePackError": ".pack",
    "PackNotInForce": ".pack",
    "load_pack": ".pack",
    "load_pack_text": ".pack",
    "Engine": ".engine",
    "Decision": ".lanes",
    "DeclarationError": ".declaration",
    "MemoryHistory": ".history",
    "SqlHistory": ".history",
    "Outcome": ".history",
    "BatchResult": ".batch",
    "score_frame": ".batch",
    "score_file": ".batch",
    "expand": ".batch",
    "FusedResult": ".fusion",
    "fuse": ".fusion",
    "rule_report": ".feedback",
}

__all__ = [
    "DEFAULT_PACK",
    "BatchResult",
    "Decision",
    "DeclarationError",
    "Engine",
    "FusedResult",
    "MemoryHistory",
    "Outcome",
    "PackNotInForce",
    "RulePack",
    "RulePackError",
    "SqlHistory",
    "expand",
    "fuse",
    "load_pack",
    "load_pack_text",
    "rule_report",
    "score_file",
    "score_frame",
]

if TYPE_CHECKING:
    from .batch import BatchResult, expand, score_file, score_frame
    from .declaration import DeclarationError
    from .engine import Engine
    from .feedback import rule_report
    from .fusion import FusedResult, fuse
    from .history import MemoryHistory, Outcome, SqlHistory
    from .lanes import Decision
    from .pack import (
        DEFAULT_PACK,
        PackNotInForce,
        RulePack,
        RulePackError,
        load_pack,
        load_pack_text,
    )


def __getattr__(name: str) -> Any:
    # Lazy, so `import cv.models.risk` stays cheap and pulls in polars only when used.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module, __name__), name)
