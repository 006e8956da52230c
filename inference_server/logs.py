"""Structured logs: one JSON object per line, on stderr.

Log aggregators (Loki, Elasticsearch, CloudWatch) parse JSON lines without
configuration, so the server logs that way rather than through rich's console
handler. The access log is one line per request (``logger = cv.inference_server.access``)
with method, path, status, milliseconds, scan id, token name and request id as fields.

Request ids: the request-observing middleware (:class:`~.app.ObserveRequests`)
takes the client's ``X-Request-ID`` (when short and plain, see
:func:`request_id_from`) or makes one, and handles the request in
:func:`request_context`; every JSON line written meanwhile carries it as
``request_id``, and the answer echoes it (header, and the body of errors), so a
user's report of a failed request finds its log lines.

Secrets: browsers' EventSource and WebSocket clients pass their API token in the
query string (``?token=cvt_...``), and uvicorn logs every WebSocket handshake with
its query string. :class:`RedactSecrets` masks token values in every record before
it is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

ACCESS_LOGGER = "cv.inference_server.access"

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

# `token=<value>` in a query string (the value ends at `&`, a space or a quote), and
# API token secrets anywhere (`cvt_` + URL-safe base64).
_TOKEN_PARAM = re.compile(r"(?i)(token=)[^&\s\"']+")
_SECRET = re.compile(r"cvt_[A-Za-z0-9_-]+")
MASK = "***"
UVICORN_LOGGERS = ("uvicorn.error", "uvicorn.access")
"""uvicorn's loggers: the handshake of every WebSocket goes to ``uvicorn.error``."""

# Attributes every LogRecord has; anything else was passed through ``extra=`` and
# becomes a field of the JSON line.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class _Request:
    """The request being handled; ``id`` is cleared when it ends."""

    __slots__ = ("id",)

    def __init__(self, request_id: str) -> None:
        self.id: str | None = request_id


# A task started while a request is handled (a model swap starts a batcher) copies
# this context; clearing `id` at the request's end keeps its later lines unlabelled.
_CURRENT: ContextVar[_Request | None] = ContextVar("cv_request", default=None)


@contextmanager
def request_context(request_id: str) -> Iterator[None]:
    """Labels every log line written inside the block with ``request_id``."""
    current = _Request(request_id)
    token = _CURRENT.set(current)
    try:
        yield
    finally:
        current.id = None
        _CURRENT.reset(token)


def current_request_id() -> str | None:
    """The id of the request being handled here, if any."""
    current = _CURRENT.get()
    return None if current is None else current.id


def error_body(detail: Any, request_id: str | None, **extra: Any) -> dict[str, Any]:
    """Every error answer's body: ``detail``, ``extra`` fields and the request's id, which
    finds the request's log lines."""
    body = {"detail": detail, **extra}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def request_id_from(header: str | None) -> str:
    """The client's request id when it is 1-64 letters, digits or ``._:-``; else a new one.

    A longer or odd value is replaced rather than logged: it would let a client
    write what it likes into the log.
    """
    if header and _REQUEST_ID_OK.fullmatch(header):
        return header
    return uuid.uuid4().hex


def redact(text: str) -> str:
    """``text`` with token values in query strings and API token secrets masked."""
    return _SECRET.sub("cvt_" + MASK, _TOKEN_PARAM.sub(r"\g<1>" + MASK, text))


class RedactSecrets(logging.Filter):
    """Masks API token secrets in a record's message (the rest of the line stays).

    Put on a handler it sees every record written through it; put on a logger
    (uvicorn's), the records made on that logger, whichever handler writes them.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def redact_uvicorn_logs() -> None:
    """Masks token secrets in uvicorn's records, however its logging is configured
    (``create_app`` calls this; idempotent)."""
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id is not None:
            line["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)


def setup_json_logging(level: str = "INFO") -> None:
    """Sends every log record to stderr as JSON lines (the server's entry point calls this).

    Replaces the root logger's handlers, so that uvicorn's and our records share
    one format; idempotent.
    """
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets())  # whatever logger a secret reaches
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log would duplicate ours, without scan ids and tokens.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    redact_uvicorn_logs()


def log_request(
    *,
    method: str,
    path: str,
    status: int,
    ms: float,
    scan_id: str | None = None,
    token: str | None = None,
) -> None:
    """Writes the access-log line of one request (the path without its query string)."""
    logging.getLogger(ACCESS_LOGGER).info(
        "%s %s %d",
        method,
        path,
        status,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "ms": round(ms, 2),
            "scan_id": scan_id,
            "token": token,
        },
    )
