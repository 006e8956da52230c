"""``customs-vision bench``: speed figures, each printed as a ratio to its baseline or target.

Benchmarks are commands, not timed tests: each runs in one process on this
machine and prints what it measured. Each command lives in the module of its
part and registers itself on :data:`app` when imported below.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Benchmarks: synthetic generation, conversion, detector runtimes, ...",
    no_args_is_help=True,
)

# Imported for their side effect: each registers its commands on `app`.
from cv.cli import bench_detector, bench_risk, bench_server, reid_pipeline  # noqa: E402, F401
