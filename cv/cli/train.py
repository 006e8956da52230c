"""``customs-vision train``: Train models: the X-ray detector (more to come)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Train models: the X-ray detector (more to come).", no_args_is_help=True)
