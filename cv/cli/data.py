"""``customs-vision data``: generate, convert, check and describe X-ray datasets.

Each command lives in the module of its part and registers itself on
:data:`app` when imported below. The data toolkit's benchmarks register on
``customs-vision bench`` (:mod:`cv.cli.bench`).
"""

from __future__ import annotations

import typer

app = typer.Typer(
    help="X-ray datasets: synthetic generation, threat image projection, conversion "
    "from the public datasets' own files, validation and statistics.",
    no_args_is_help=True,
)

# Imported for their side effect: each registers its commands.
from cv.cli import data_check, data_convert, data_feedback, data_synth, demo  # noqa: E402, F401
