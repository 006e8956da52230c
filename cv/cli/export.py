"""``customs-vision export``: Export models: ONNX (FP32 / FP16 / INT8) with a parity check, Triton model repositories."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Export models: ONNX (FP32 / FP16 / INT8) with a parity check, Triton model repositories.",
    no_args_is_help=True,
)
