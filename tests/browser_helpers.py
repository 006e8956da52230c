"""Real headless Chromium for the page tests (Debian's, driven by Playwright).

Playwright's own browser download does not work here, so Chromium is found through
``CV_TEST_CHROMIUM`` or ``chromium`` on the PATH; without it the browser tests skip
with the reason, and fail under ``CI=true``. The ``browser`` fixture (one Chromium
per test module) is in ``conftest.py``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BOX_RGB = (255, 45, 85)  # the handheld's box colour, #ff2d55
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3}


def chromium_path() -> str:
    """Debian's Chromium, or a skip (a failure under ``CI=true``) saying how to get it."""
    path = os.environ.get("CV_TEST_CHROMIUM") or shutil.which("chromium")
    if path and Path(path).is_file():
        return path
    why = (
        "no Chromium for the page tests: `apt-get install -y chromium` "
        "or set CV_TEST_CHROMIUM to its path"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{why} (CI=true requires it)")
    pytest.skip(why)


def launch() -> Iterator[Any]:
    """A headless Chromium for as long as the generator runs (the fixture's body)."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


_READ_PIXEL = (
    "([x, y]) => Array.from(document.getElementById('scan').getContext('2d')"
    ".getImageData(x, y, 1, 1).data.slice(0, 3))"
)


def scan_pixel(page: Any, x: float, y: float) -> tuple[int, ...]:
    """The RGB of the page's ``#scan`` canvas at ``(x, y)`` (canvas pixels)."""
    return tuple(page.evaluate(_READ_PIXEL, [round(x), round(y)]))


def is_box(rgb: tuple[int, ...]) -> bool:
    """Whether a pixel is the handheld's box colour (give or take anti-aliasing)."""
    return all(abs(a - b) <= 8 for a, b in zip(rgb, BOX_RGB, strict=True))
