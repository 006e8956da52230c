"""``customs-vision reid`` commands (model)."""

from __future__ import annotations

from cv.cli.reid import app  # noqa: F401
