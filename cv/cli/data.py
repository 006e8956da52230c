"""``customs-vision data``: generate, convert, check and describe X-ray datasets.

Each command lives in the module of its part and registers itself on
:data:`app` (or :data:`bench_app` for benchmarks) when imported below.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    help="X-ray datasets: synthetic generation, threat image projection, conversion "
    "from the public datasets' own files, validation and statistics.",
    no_args_is_help=True,
)
bench_app = typer.Typer(
    help="Benchmarks of the data toolkit (images/s, seconds).", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")

# Imported for their side effect: each registers its commands on `app`/`bench_app`.
from cv.cli import data_check, data_convert, data_synth  # noqa: E402, F401
