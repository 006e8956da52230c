"""Logging and progress conventions.

Modules log through ``logging.getLogger(__name__)``; only entry points call
:func:`setup_logging`. Long work shows a rich progress bar made by
:func:`progress`, which stays quiet when stderr is not a terminal unless asked.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


def setup_logging(level: str = "INFO") -> None:
    """Sends log records to stderr through rich, once per process."""
    root = logging.getLogger()
    if any(isinstance(h, RichHandler) for h in root.handlers):
        root.setLevel(level)
        return
    handler = RichHandler(console=console, show_path=False, rich_tracebacks=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


@contextmanager
def run_log(path: Path, *also: logging.Logger) -> Iterator[None]:
    """Writes the records of a run (training) to ``path`` while the block runs.

    The file gets the root logger's records and those of ``also`` (a library's own
    logger that does not propagate), and our ``cv`` loggers pass ``INFO`` to it even
    when nothing configured logging (a run started from Python, not the CLI);
    everything is as before afterwards.
    """
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    loggers = (logging.getLogger(), *also)
    ours = logging.getLogger("cv")
    level = ours.level
    if ours.getEffectiveLevel() > logging.INFO:
        ours.setLevel(logging.INFO)
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()
        ours.setLevel(level)


def progress(*, disable: bool | None = None) -> Progress:
    """A progress bar with count, rate and time left, drawn on stderr.

    Args:
        disable: Hide it; by default hidden when stderr is not a terminal.
    """
    if disable is None:
        disable = not sys.stderr.isatty()
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
    )
