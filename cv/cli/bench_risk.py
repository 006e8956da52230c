"""``customs-vision bench risk``: the declaration risk engine's speed figures."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cv.cli.bench import app
from cv.log import console


@app.command("risk")
def bench_risk_cmd(
    batch: int = typer.Option(1_000_000, "--batch", min=1000, help="Declarations scored in batch."),
    online: int = typer.Option(
        20_000, "--online", min=100, help="Declarations decided one by one."
    ),
    baseline: int = typer.Option(
        2_000, "--baseline", min=100, help="Declarations for the rule-engine baseline."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated declarations."),
    out: Path | None = typer.Option(None, "--out", help="Also write the figures as JSON here."),
) -> None:
    """Batch declarations/s, online p50/p99 and the ratio to a per-record rule library."""
    from cv.evaluation.bench_risk import TARGET_BATCH_PER_S, TARGET_RATIO_TO_BASELINE, bench_risk

    r = bench_risk(n_batch=batch, n_online=online, n_baseline=baseline, seed=seed)
    console.print(
        f"{r['pack']} ({r['rules']} rules), polars {r['polars']}\n"
        f"batch: {r['batch_declarations']} declarations in {r['batch_seconds']:.3f} s "
        f"({r['batch_cpu_seconds']:.2f} CPU-s on {r['cpu_count']} cores): "
        f"[bold]{r['batch_per_s']:,.0f} declarations/s[/] "
        f"({r['batch_ratio_to_target']:.2f} x the target of {TARGET_BATCH_PER_S:,.0f}/s); "
        f"reasons spelled out in {r['expand_seconds']:.3f} s more "
        f"({r['batch_with_reasons_per_s']:,.0f}/s with them)\n"
        f"re-scoring validated declarations: {r['rescore_seconds']:.3f} s "
        f"({r['rescore_cpu_seconds']:.2f} CPU-s): "
        f"[bold]{r['rescore_per_s']:,.0f} declarations/s[/] "
        f"({r['rescore_ratio_to_target']:.2f} x the target)\n"
        f"online: p50 {r['online_p50_ms']:.3f} ms, p99 {r['online_p99_ms']:.3f} ms over "
        f"{r['online_declarations']} declarations\n"
        f"baseline ({r['baseline']}, {r['baseline_rules_translated']}/{r['rules']} rules, "
        f"{r['baseline_sample']} records): {r['baseline_per_s']:,.0f} declarations/s, "
        f"agreement {r['baseline_agreement']:.1%}\n"
        f"batch / baseline: [bold]{r['ratio_batch_to_baseline']:,.0f} x[/] "
        f"({r['ratio_to_baseline_target']:.1f} x the target of {TARGET_RATIO_TO_BASELINE:g} x); "
        f"re-scoring / baseline: {r['ratio_rescore_to_baseline']:,.0f} x"
    )
    for item in r["baseline_untranslatable"]:
        console.print(f"  not expressible in rule-engine: {item}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(r, indent=2), encoding="utf-8")
