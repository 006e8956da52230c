"""Commands registered on ``customs-vision data``; filled in by its part."""

from __future__ import annotations
