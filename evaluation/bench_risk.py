"""Benchmark of the declaration risk engine (not a timed test).

Three figures on generated declarations with the default Korean pack:

* **batch throughput**: :func:`cv.models.risk.batch.score_frame` over a frame
  already in memory (file reading excluded): validation, currency conversion,
  aggregations, every rule, lanes and quotas; the reasons spelled out for
  writing (:func:`~cv.models.risk.batch.expand`) are timed apart; validation
  alone (:func:`~cv.models.risk.declaration.normalize_frame`); and the
  re-scoring of an already validated history after a rule change
  (:func:`~cv.models.risk.batch.score_normalized`: aggregations, rules, lanes);
* **online latency**: :meth:`cv.models.risk.engine.Engine.decide` per
  declaration (validation, history aggregations, rules, lane, remembering it),
  p50 and p99;
* **baseline**: the same rules evaluated per record by the ``rule-engine``
  library (its own typed grammar, no eval), translated from our trees
  (:func:`to_rule_engine`), on a sample, extrapolated to declarations per
  second. The baseline is given our already-validated values and our
  aggregation results, so it only evaluates conditions: a generous baseline.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np

from cv.models.risk.expr import (
    Binary,
    Call,
    Field,
    In,
    IsNull,
    ListLit,
    ListRef,
    Literal,
    Node,
    TextOp,
    Unary,
    escape_regex,
    text_pattern,
)

TARGET_BATCH_PER_S = 1_000_000.0
TARGET_RATIO_TO_BASELINE = 50.0


class Untranslatable(Exception):
    """A condition rule-engine's grammar cannot express."""


def to_rule_engine(
    node: Node, *, lists: dict[str, Any], tables: dict[str, dict[str, float]]
) -> str:
    """Our checked tree as a rule-engine expression (dates as epoch-day numbers).

    Raises:
        Untranslatable: For constructs rule-engine lacks (``coalesce``).
    """

    def s(n: Node) -> str:
        return to_rule_engine(n, lists=lists, tables=tables)

    if isinstance(node, Literal):
        if node.value is None:
            return "null"
        if isinstance(node.value, bool):
            return "true" if node.value else "false"
        if isinstance(node.value, str):
            return json.dumps(node.value)
        return repr(float(node.value))  # type: ignore[arg-type]
    if isinstance(node, Field):
        return node.name
    if isinstance(node, ListRef):
        return "[" + ", ".join(json.dumps(v) for v in sorted(lists[node.name])) + "]"
    if isinstance(node, ListLit):
        return "[" + ", ".join(s(i) for i in node.items) + "]"
    if isinstance(node, Unary):
        return f"not ({s(node.operand)})" if node.op == "not" else f"-({s(node.operand)})"  # type: ignore[arg-type]
    if isinstance(node, Binary):
        return f"({s(node.left)} {node.op} {s(node.right)})"  # type: ignore[arg-type]
    if isinstance(node, In):
        inner = f"({s(node.operand)} in {s(node.items)})"  # type: ignore[arg-type]
        return f"not {inner}" if node.negate else inner
    if isinstance(node, TextOp):
        values = (
            sorted(lists[node.pattern.name])
            if isinstance(node.pattern, ListRef)
            else [node.pattern.value]
        )  # type: ignore[union-attr]
        regex = text_pattern(node.op, [str(v) for v in values])
        if regex is None:
            (needle,) = values
            regex = {
                "contains": escape_regex(str(needle)),
                "startswith": "^" + escape_regex(str(needle)),
                "endswith": escape_regex(str(needle)) + "$",
            }[node.op]
        return f"({s(node.operand)} =~~ {json.dumps(regex)})"  # type: ignore[arg-type]
    if isinstance(node, IsNull):
        return f"({s(node.operand)} {'!=' if node.negate else '=='} null)"  # type: ignore[arg-type]
    if isinstance(node, Call):
        if node.agg_column:
            return node.agg_column.lstrip("_")
        args = node.args
        if node.name == "lower":
            return f"{s(args[0])}.as_lower"
        if node.name == "upper":
            return f"{s(args[0])}.as_upper"
        if node.name == "len":
            return f"{s(args[0])}.length"
        if node.name == "abs":
            return f"$abs({s(args[0])})"
        if node.name in ("min", "max"):
            return f"${node.name}([{', '.join(s(a) for a in args)}])"
        if node.name == "days_between":
            return f"({s(args[1])} - {s(args[0])})"
        if node.name == "lookup":
            table = tables[args[0].name]  # type: ignore[attr-defined]
            mapping = (
                "{" + ", ".join(f"{json.dumps(k)}: {float(v)!r}" for k, v in table.items()) + "}"
            )
            return f"{mapping}&[{s(args[1])}]"
        raise Untranslatable(f"{node.name}() has no rule-engine equivalent")
    raise Untranslatable(type(node).__name__)


def bench_risk(
    *,
    n_batch: int = 1_000_000,
    n_online: int = 20_000,
    n_baseline: int = 2_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Measures batch throughput, online latency and the rule-engine baseline.

    Returns:
        The figures, with the ratios to the targets and to the baseline.
    """
    import polars as pl

    from cv.datasets.declarations import generate_declarations
    from cv.models.risk.batch import expand, score_frame, score_normalized
    from cv.models.risk.declaration import normalize, normalize_frame
    from cv.models.risk.engine import Engine
    from cv.models.risk.pack import DEFAULT_PACK, load_pack

    pack = load_pack(DEFAULT_PACK)
    frame = generate_declarations(n_batch, seed=seed).drop("planted")

    score_frame(
        pack, frame.head(1000)
    )  # warm-up: first-call costs (regex compilation, thread pool)
    t0, c0 = time.perf_counter(), time.process_time()
    result = score_frame(pack, frame)
    batch_s, batch_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    expand(result)
    expand_s = time.perf_counter() - t0
    batch_rate = n_batch / batch_s
    t0, c0 = time.perf_counter(), time.process_time()
    valid, _ = normalize_frame(frame, rates=pack.rates)
    validate_s, validate_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    score_normalized(pack, valid)
    rescore_s, rescore_cpu = time.perf_counter() - t0, time.process_time() - c0
    rescore_rate = n_batch / rescore_s

    records = [
        {k: v for k, v in r.items() if v is not None}
        for r in frame.head(n_online).iter_rows(named=True)
    ]
    engine = Engine(pack)
    for r in records[:200]:  # warm-up
        engine.decide(r, remember=False)
    latencies = np.empty(len(records))
    for i, r in enumerate(records):
        t0 = time.perf_counter()
        engine.decide(r)
        latencies[i] = time.perf_counter() - t0

    import rule_engine

    context = rule_engine.Context(default_value=None)
    compiled, untranslatable = [], []
    for rule in pack.rules:
        try:
            text = to_rule_engine(rule.node, lists=pack.lists, tables=pack.tables)
            compiled.append((rule.id, rule_engine.Rule(text, context=context)))
        except (Untranslatable, rule_engine.errors.EngineError) as exc:
            untranslatable.append(f"{rule.id}: {exc}")
    sample = frame.head(n_baseline)
    rows = []
    history = Engine(pack).history
    normalized = [
        normalize({k: v for k, v in r.items() if v is not None}, rates=pack.rates)
        for r in sample.iter_rows(named=True)
    ]
    for row in normalized:
        history.add(row)
    for row in normalized:
        row.update(history.aggregates(row, pack.aggregates))
        rows.append({(k.lstrip("_") if k.startswith("__agg") else k): v for k, v in row.items()})
    fired_baseline: list[set[str]] = []
    t0 = time.perf_counter()
    for row in rows:
        fired = set()
        for rule_id, rule in compiled:
            try:
                if rule.matches(row):
                    fired.add(rule_id)
            except rule_engine.errors.EngineError:
                pass  # rule-engine raises on a null operand; we count that as not fired
        fired_baseline.append(fired)
    baseline_s = time.perf_counter() - t0
    baseline_rate = n_baseline / baseline_s
    ours = score_frame(pack, sample, quotas=False)
    ours_rules = expand(ours).get_column("rules").to_list()
    translated = {rid for rid, _ in compiled}
    agree = sum(
        set(filter(None, mine.split(";"))) & translated == theirs
        for mine, theirs in zip(ours_rules, fired_baseline, strict=True)
    )
    return {
        "pack": pack.label,
        "rules": len(pack.rules),
        "batch_declarations": n_batch,
        "batch_seconds": batch_s,
        "batch_per_s": batch_rate,
        "batch_ratio_to_target": batch_rate / TARGET_BATCH_PER_S,
        # CPU seconds of all this process's threads: what the work costs whatever else runs.
        "batch_cpu_seconds": batch_cpu,
        "rescore_cpu_seconds": rescore_cpu,
        # Validation alone (every field, all of them returned), the other part of the batch.
        "validate_seconds": validate_s,
        "validate_cpu_seconds": validate_cpu,
        "cpu_count": os.cpu_count(),
        "rescore_seconds": rescore_s,
        "rescore_per_s": rescore_rate,
        "rescore_ratio_to_target": rescore_rate / TARGET_BATCH_PER_S,
        "ratio_rescore_to_baseline": rescore_rate / baseline_rate,
        "expand_seconds": expand_s,
        "batch_with_reasons_per_s": n_batch / (batch_s + expand_s),
        "online_declarations": len(records),
        "online_p50_ms": float(np.percentile(latencies, 50) * 1e3),
        "online_p99_ms": float(np.percentile(latencies, 99) * 1e3),
        "baseline": "rule-engine " + getattr(rule_engine, "__version__", "?"),
        "baseline_sample": n_baseline,
        "baseline_rules_translated": len(compiled),
        "baseline_untranslatable": untranslatable,
        "baseline_per_s": baseline_rate,
        "baseline_agreement": agree / n_baseline,
        "ratio_batch_to_baseline": batch_rate / baseline_rate,
        "ratio_to_baseline_target": (batch_rate / baseline_rate) / TARGET_RATIO_TO_BASELINE,
        "online_per_s_single_thread": 1.0 / float(np.mean(latencies)),
        "polars": pl.__version__,
    }
