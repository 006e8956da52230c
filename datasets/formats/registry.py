"""The registry of dataset readers, and format detection.

Each reader module registers its function with :func:`register_reader`; a
reader is called as ``reader(path, *, class_map=..., **options) -> Dataset``.
A reader may also give a ``detect(path) -> bool`` test, used by
:func:`detect_format` in the order of :data:`DETECT_ORDER` (most specific first).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from cv.errors import ConfigError, DataFormatError, NotFoundError
from cv.records import Dataset

Reader = Callable[..., Dataset]
Detector = Callable[[Path], bool]


@dataclass(frozen=True, slots=True)
class ReaderEntry:
    """One registered reader.

    Attributes:
        name: The format name (``opixray``).
        read: The reader function.
        detect: Whether a path looks like this format; ``None`` if it cannot tell.
        description: One line for ``--help`` and error messages.
    """

    name: str
    read: Reader
    detect: Detector | None
    description: str


READERS: dict[str, ReaderEntry] = {}
"""Registered readers by format name."""

# Specific layouts before the generic formats they are made of (PIDray is COCO,
# HiXray is told from OPIXray by its class names).
DETECT_ORDER: tuple[str, ...] = (
    "yolo",
    "gdxray",
    "dvxray",
    "pixray",
    "eds",
    "sixray",
    "opixray",
    "hixray",
    "pidray",
    "clcxray",
    "aihub",
    "coco",
)


def register_reader(
    name: str, *, detect: Detector | None = None, description: str = ""
) -> Callable[[Reader], Reader]:
    """Registers the decorated function as the reader of format ``name``.

    Raises:
        ValueError: If a reader of that name is already registered.
    """

    def decorate(fn: Reader) -> Reader:
        if name in READERS:
            raise ValueError(f"a reader called {name!r} is already registered")
        doc = description or (inspect.getdoc(fn) or "").split("\n", 1)[0]
        READERS[name] = ReaderEntry(name=name, read=fn, detect=detect, description=doc)
        return fn

    return decorate


def formats_taking(option: str) -> list[str]:
    """The registered format names whose readers take the keyword ``option``."""
    return sorted(
        name
        for name, entry in READERS.items()
        if option in inspect.signature(entry.read).parameters
    )


def known_formats() -> str:
    """The registered format names, comma separated."""
    return ", ".join(sorted(READERS))


def detect_format(path: Path) -> str:
    """The format of the dataset at ``path``.

    Raises:
        NotFoundError: If ``path`` does not exist.
        DataFormatError: If no reader recognises it.
    """
    if not path.exists():
        raise NotFoundError("dataset path does not exist", path=path)
    order = [n for n in DETECT_ORDER if n in READERS] + sorted(set(READERS) - set(DETECT_ORDER))
    for name in order:
        entry = READERS[name]
        if entry.detect is not None and entry.detect(path):
            return name
    raise DataFormatError(
        f"cannot tell the dataset format; pass it with --format NAME (known formats: "
        f"{known_formats()})",
        path=path,
    )


def load_dataset(
    path: str | PathLike[str],
    *,
    fmt: str | None = None,
    class_map: Any = None,
    **options: Any,
) -> Dataset:
    """Reads a dataset from its own files into the one model.

    Args:
        path: The dataset's folder or annotation file.
        fmt: A registered format name; detected from the files when ``None``.
        class_map: A :class:`~cv.datasets.classmap.ClassMap`, a shipped map's name or
            a YAML path; ``None`` uses the format's own shipped map.
        **options: Reader-specific options (``gdxray_columns="x1y1x2y2"``...).

    Raises:
        ConfigError: If ``fmt`` is not a known format, or an option is not one the
            reader takes.
        NotFoundError: If ``path`` does not exist.
    """
    p = Path(path)
    if not p.exists():
        raise NotFoundError("dataset path does not exist", path=p)
    name = detect_format(p) if fmt is None else fmt.strip().lower()
    if name not in READERS:
        raise ConfigError(
            f"unknown dataset format {fmt!r}; known formats: {known_formats()}", field="format"
        )
    reader = READERS[name].read
    accepted = {
        k
        for k, prm in inspect.signature(reader).parameters.items()
        if prm.kind is inspect.Parameter.KEYWORD_ONLY
    }
    bad = sorted(set(options) - accepted)
    if bad:
        raise ConfigError(
            f"the {name} reader takes no option {bad[0]!r}; it takes: "
            f"{', '.join(sorted(accepted - {'class_map'})) or 'none'}",
            field=bad[0],
        )
    return reader(p, class_map=class_map, **options)
