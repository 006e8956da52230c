"""Plain helpers for the risk-rule tests: the default pack, clean declarations, and
the rules a list of declarations fires, online and in batch.

Test modules import it as ``import risk_helpers`` (``tests/conftest.py`` puts the
tests folder on ``sys.path``).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from cv.datasets.declarations import clean_declaration
from cv.models.risk.batch import expand, score_frame
from cv.models.risk.declaration import normalize
from cv.models.risk.engine import Engine
from cv.models.risk.pack import DEFAULT_PACK, load_pack

PACK = load_pack(DEFAULT_PACK)
"""The default Korean pack."""


def clean(kind: str = "list", **changes: Any) -> dict:
    """A declaration of ``kind`` that breaks no rule, with ``changes``."""
    return clean_declaration(kind, **changes)


def frame_of(records: list[dict]) -> pl.DataFrame:
    """The declarations as one polars frame (a column per field any of them has)."""
    columns = sorted({k for r in records for k in r})
    return pl.DataFrame([{k: r.get(k) for k in columns} for r in records], infer_schema_length=None)


def fired_online(records: list[dict]) -> list[set[str]]:
    """Rule ids fired on each declaration, one by one (the engine with a history)."""
    engine = Engine(PACK)
    for r in records:  # the history holds every declaration before any is decided, as a batch does
        engine.history.add(normalize(r, rates=PACK.rates))
    return [{f.id for f in engine.decide(r).fired} for r in records]


def fired_batch(records: list[dict]) -> list[set[str]]:
    """Rule ids fired on each declaration in batch (polars)."""
    result = score_frame(PACK, frame_of(records), quotas=False)
    assert result.errors.height == 0, result.errors
    return [set(filter(None, x.split(";"))) for x in expand(result).get_column("rules").to_list()]


def fired(records: list[dict]) -> list[set[str]]:
    """Rule ids fired on each declaration; online and batch must agree."""
    online, batch = fired_online(records), fired_batch(records)
    assert online == batch
    return online
