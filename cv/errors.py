"""Errors: one type per kind of failure, each naming what is at fault.

Every error raised on purpose by customs-vision derives from
:class:`CustomsVisionError`. The CLI turns them into a one-line message and the
error's ``exit_code``; anything else is a bug and keeps its traceback.

Messages name the place at fault as ``path:line: field: reason`` (the parts that
are known), so a user can open the file at the right line.
"""

from __future__ import annotations

from os import PathLike


def format_location(
    path: str | PathLike[str] | None = None,
    line: int | None = None,
    field: str | None = None,
) -> str:
    """Joins the known parts of a location as ``path:line: field``."""
    where = ""
    if path is not None:
        where = str(path)
        if line is not None:
            where += f":{line}"
    elif line is not None:
        where = f"line {line}"
    if field:
        where = f"{where}: {field}" if where else field
    return where


class CustomsVisionError(Exception):
    """Base of all deliberate errors.

    Args:
        message: What is wrong, in words a user can act on.
        path: The file at fault, if any.
        line: The 1-based line in ``path``, if known.
        field: The field, key or column at fault, if known.
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        path: str | PathLike[str] | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = message
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        where = format_location(path, line, field)
        super().__init__(f"{where}: {message}" if where else message)


class ConfigError(CustomsVisionError):
    """A settings, profile, class-map or experiment file is invalid."""

    exit_code = 2


class DataFormatError(CustomsVisionError):
    """A dataset or annotation file cannot be parsed as its format says."""

    exit_code = 3


class ImageReadError(DataFormatError):
    """An image file is missing, truncated or not decodable."""


class DataValidationError(CustomsVisionError):
    """Data parsed, but breaks a rule (box outside the image, unknown class, ...)."""

    exit_code = 4


class NotFoundError(CustomsVisionError):
    """A file, directory, dataset or model that was asked for does not exist."""

    exit_code = 5
