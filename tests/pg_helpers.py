"""A fresh PostgreSQL schema for a test module (``CV_TEST_POSTGRES_URL``, set by
``tests/services.sh``, which ``make test`` runs the suite under).

Without the variable a test using it skips with the reason shown, except under
``CI=true``, where a missing database is a failure: CI must test PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

PG_URL = os.environ.get("CV_TEST_POSTGRES_URL")


@contextlib.contextmanager
def postgres_schema(prefix: str = "cv_test") -> Iterator[str]:
    """Yields a database URL whose ``search_path`` is a new schema, dropped afterwards:
    the tests see an empty database, and others' data is untouched."""
    if not PG_URL:
        why = "CV_TEST_POSTGRES_URL is not set: no PostgreSQL to test against"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why} (CI=true requires it)")
        pytest.skip(why)
    from sqlalchemy import text

    from cv.inference_server.db import make_engine

    engine = make_engine(PG_URL)
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
