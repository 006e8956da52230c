"""Commands registered on ``customs-vision bench``; filled in by its part."""

from __future__ import annotations
