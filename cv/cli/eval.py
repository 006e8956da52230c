"""``customs-vision eval``: Evaluate models: COCO and VOC AP, screening detection rate at fixed false-alarm rates."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Evaluate models: COCO and VOC AP, screening detection rate at fixed false-alarm rates.",
    no_args_is_help=True,
)
