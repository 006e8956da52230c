"""``customs-vision reid`` commands (pipeline)."""

from __future__ import annotations

from cv.cli.reid import app  # noqa: F401
