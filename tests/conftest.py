"""Shared test helpers. Tests run on CPU, offline, with fixed seeds."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Helper modules beside the tests (server_helpers) import by name; importlib mode does
# not put this folder on sys.path by itself.
sys.path.insert(0, str(Path(__file__).parent))

# Nothing in the test suite may reach the network or auto-install packages.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One real headless Chromium per test module (:mod:`browser_helpers`)."""
    import browser_helpers

    yield from browser_helpers.launch()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database for a test run twice: a SQLite file, then a throwaway PostgreSQL
    schema (:mod:`pg_helpers`; skipped, or failed under ``CI=true``, without one)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    import pg_helpers

    with pg_helpers.postgres_schema() as url:
        yield url


@pytest.fixture(autouse=True)
def _no_console_log_handler_left() -> Iterator[None]:
    """Takes off the root logger, after each test, the console handler a CLI run installs
    (``cv.log.setup_logging``), also one a module's fixture installed: left there, it would
    print every later test's log lines (the server's access log) into the test output."""
    import logging

    from rich.logging import RichHandler

    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, RichHandler)]:
        root.removeHandler(handler)
