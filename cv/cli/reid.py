"""``customs-vision reid``: CCTV re-identification of watch-listed travellers.

Synthetic CCTV data, training and evaluation of the re-ID embedder, ONNX export,
and running a video file through the per-camera pipeline (person detection,
tracking, embedding, watch-list matching) with an annotated output video.
Each part's commands live in their own module and register on :data:`app` when
imported below; ``train reid``, ``eval reid`` and ``bench reid`` register on
their groups from the same modules.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    help="CCTV re-identification: synthetic data, train, evaluate, export, run a video.",
    no_args_is_help=True,
)

# Imported for their side effect: each registers its commands.
from cv.cli import reid_data, reid_eval, reid_feedback, reid_model, reid_pipeline  # noqa: E402, F401
