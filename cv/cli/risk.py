"""``customs-vision risk``: score declarations into inspection lanes with reasons."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Declaration risk engine: score declarations into lanes, check rule packs, "
    "report per-rule hit rates.",
    no_args_is_help=True,
)
