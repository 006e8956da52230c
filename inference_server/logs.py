"""Structured logs: one JSON object per line, on stderr.

Log aggregators (Loki, Elasticsearch, CloudWatch) parse JSON lines without
configuration, so the server logs that way rather than through rich's console
handler. The access log is one line per request (``logger = cv.inference_server.access``)
with method, path, status, milliseconds, scan id and token name as fields.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

ACCESS_LOGGER = "cv.inference_server.access"

# Attributes every LogRecord has; anything else was passed through ``extra=`` and
# becomes a field of the JSON line.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
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
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log would duplicate ours, without scan ids and tokens.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def log_request(
    *,
    method: str,
    path: str,
    status: int,
    ms: float,
    scan_id: str | None = None,
    token: str | None = None,
) -> None:
    """Writes the access-log line of one request."""
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
