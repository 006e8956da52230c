"""Tokens that expire; WebSocket connect-time checks; request ids on every error body;
``serve run`` against a database it cannot reach.

The whole app (``create_app``, no model: nothing here infers) answers through
``TestClient``; streams that outlive their token run the alert router in a real
uvicorn server (``test_server_alerts.live_server``); ``serve run`` runs as a real
process. The migration is also run on PostgreSQL when ``CV_TEST_POSTGRES_URL`` is set
(``tests/services.sh``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
import traceback
from datetime import datetime, timedelta

import httpx
import pg_helpers
import pytest
import server_helpers as h
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update
from starlette.websockets import WebSocketDisconnect
from test_server_alerts import live_server
from test_server_stream_fixes import collect
from typer.testing import CliRunner
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from cv.inference_server import db
from cv.inference_server.app import bootstrap_tokens
from cv.inference_server.auth import (
    authenticate,
    create_token,
    expiry_text,
    hash_secret,
    revoke_token,
)

MAX_UPLOAD = 1000


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The whole app without a model: client, one token per role, the session factory."""
    from cv.inference_server.app import create_app

    tmp = tmp_path_factory.mktemp("tokens-ops")
    app = create_app(h.server_settings(tmp, tmp / "no-model", max_upload_bytes=MAX_UPLOAD))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, h.make_tokens(app), app.state.services.sessions


def expired_token(sessions, name: str, role: str = "inspector") -> str:
    """A token made to last a day, then moved to have expired a minute ago; its secret."""
    with sessions() as session:
        secret = create_token(session, name=name, role=role, expires_in=timedelta(days=1))
        session.execute(
            update(db.Token)
            .where(db.Token.name == name)
            .values(expires_at=db.utcnow() - timedelta(minutes=1))
        )
        session.commit()
    return secret


def ws_refusal(client: TestClient, url: str) -> tuple[str, WebSocketDisconnect]:
    """The error message and the close of a WebSocket the server refuses."""
    with client.websocket_connect(url) as ws:
        msg = ws.receive_json()
        assert msg["event"] == "error", msg
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    return msg["detail"], closed.value


# --------------------------------------------------------------------------- expiry


def test_cli_makes_tokens_that_expire_lists_them_and_names_the_option_in_refusals(tmp_path):
    from cv.cli.serve import app

    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    def create(name: str, *more: str):
        return runner.invoke(app, ["token", "create", name, "--role", "inspector", *more])

    # A new database: the list says how to make the first token, without Alembic's chatter.
    r = runner.invoke(app, ["token", "list", "--db", url])
    assert r.exit_code == 0 and r.output.startswith("no tokens yet: make one with"), r.output
    assert "setup plugin" not in r.output
    assert create("audit-1", "--db", url).exit_code == 0
    lifetimes = {
        "90d": timedelta(days=90),
        "12h": timedelta(hours=12),
        "30m": timedelta(minutes=30),
    }
    before = db.utcnow()
    for given in lifetimes:
        r = create(f"contractor-{given}", "--expires-in", given, "--db", url)
        assert r.exit_code == 0, r.output
    listed = runner.invoke(app, ["token", "list", "--db", url]).output
    for given, lifetime in lifetimes.items():
        line = next(x for x in listed.splitlines() if x.startswith(f"contractor-{given}\t"))
        expires = datetime.fromisoformat(line.rsplit("\texpires: ", 1)[1])
        assert abs(expires - (before + lifetime)) < timedelta(seconds=30), line
    assert "audit-1\tinspector\t" in listed and listed.count("expires: never") == 1, listed
    for bad in ("1y", "0d", "12", "-30m", "90 days", "1000000d", ""):
        r = create("contractor-bad", "--expires-in", bad, "--db", url)
        assert r.exit_code != 0, bad
        assert str(r.exception).startswith("--expires-in: expected a whole number"), r.exception


def test_an_expired_token_is_401_saying_so(served):
    client, _, sessions = served
    secret = expired_token(sessions, "expired-reader", role="reader")
    r = client.get("/v1/scans", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 401, r.text
    assert r.json()["detail"].startswith("API token expired at "), r.text
    assert r.json()["request_id"] == r.headers["x-request-id"]
    assert r.headers["www-authenticate"] == "Bearer"
    with sessions() as session:
        assert authenticate(session, secret) is None
        # A token whose expiry is ahead works.
        live = create_token(session, name="later-reader", role="reader", expires_in=timedelta(1))
    r = client.get("/v1/scans", headers={"Authorization": f"Bearer {live}"})
    assert r.status_code == 200, r.text
    # An unknown one is still told apart.
    r = client.get("/v1/scans", headers={"Authorization": "Bearer cvt_nothing"})
    assert r.json()["detail"] == "unknown API token"


def test_a_revoked_token_is_401_saying_when_it_was_revoked(served):
    # Sign-in and every route tell a revoked token from an unknown one (a typo).
    client, _, sessions = served
    with sessions() as session:
        secret = create_token(session, name="revoked-inspector", role="inspector")
        revoke_token(session, name="revoked-inspector")
        revoked_at = session.scalar(
            select(db.Token.revoked_at).where(db.Token.name == "revoked-inspector")
        )
    said = f"API token revoked at {expiry_text(revoked_at)}"
    r = client.get("/v1/scans", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 401 and r.json()["detail"] == said, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.post("/v1/session", json={"token": secret})
    assert r.status_code == 401 and "set-cookie" not in r.headers
    assert r.json()["detail"] == f"token: {said}", r.text
    detail, closed = ws_refusal(client, f"/v1/alerts/ws?token={secret}")
    assert detail == said and closed.code == 1008
    for unknown in ("cvt_typo", "not-even-a-token"):
        r = client.post("/v1/session", json={"token": unknown})
        assert r.status_code == 401 and r.json()["detail"] == "token: unknown API token"
    # A token that was revoked and had an expiry: revoked is what is said.
    with sessions() as session:
        both = create_token(session, name="revoked-expired", role="reader", expires_in=timedelta(1))
        revoke_token(session, name="revoked-expired")
    r = client.get("/v1/scans", headers={"Authorization": f"Bearer {both}"})
    assert r.json()["detail"].startswith("API token revoked at "), r.text


def test_the_pages_sign_in_refuses_an_expired_token_saying_so(served):
    # The handheld page shows the detail, so the inspector knows to ask for a new token.
    client, _, sessions = served
    secret = expired_token(sessions, "expired-page-user")
    r = client.post("/v1/session", json={"token": secret})
    assert r.status_code == 401 and "set-cookie" not in r.headers
    assert r.json()["detail"].startswith("token: API token expired at "), r.text


def test_a_websocket_with_an_expired_token_is_refused_saying_so(served):
    client, _, sessions = served
    secret = expired_token(sessions, "expired-handheld")
    detail, closed = ws_refusal(client, f"/v1/alerts/ws?token={secret}")
    assert detail.startswith("API token expired at "), detail
    assert closed.code == 1008 and "expired" in closed.reason


def test_bootstrap_tokens_never_expire(tmp_path):
    url, _ = h.sqlite_with_tokens(tmp_path / "boot.db", {})
    engine = db.make_engine(url)
    sessions = db.session_factory(engine)
    assert set(bootstrap_tokens(sessions)) == {"scanner", "reader", "inspector", "admin"}
    with sessions() as session:
        assert [t.expires_at for t in session.scalars(select(db.Token))] == [None] * 4
    engine.dispose()


def test_open_streams_end_when_their_token_expires(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="cv.inference_server.api_alerts")
    with live_server(tmp_path) as live:
        with live.sessions() as session:
            secret = create_token(
                session, name="shift-1", role="inspector", expires_in=timedelta(seconds=2.5)
            )
        port = live.url.rsplit(":", 1)[1]
        with (
            httpx.Client(base_url=live.url, timeout=10) as client,
            client.stream("GET", "/v1/alerts/stream", params={"token": secret}) as sse,
            ws_connect(f"ws://127.0.0.1:{port}/v1/alerts/ws?token={secret}") as ws,
        ):
            assert sse.status_code == 200
            got: list[dict] = []
            reader = collect(sse, got)
            assert json.loads(ws.recv(timeout=10))["event"] == "hello"
            received = []
            with pytest.raises(ConnectionClosed):
                while True:  # keep-alives until the token expires
                    received.append(json.loads(ws.recv(timeout=10)))
            assert ws.close_code == 1008 and "expired" in ws.close_reason
            assert received[-1]["event"] == "error", received
            assert received[-1]["detail"].startswith("the API token expired at ")
            reader.join(10)
            assert not reader.is_alive(), "the expired token's SSE stream is still open"
        assert got[0]["event"] == "hello" and not [e for e in got if "error" in e], got
        assert "closed the stream of token 'shift-1': the API token expired" in caplog.text
        # Reconnecting, as a browser does, is refused saying why.
        r = httpx.get(f"{live.url}/v1/alerts/stream", params={"token": secret}, timeout=10)
        assert r.status_code == 401 and "expired" in r.json()["detail"]


def _migration_roundtrip(url: str) -> None:
    engine = db.make_engine(url)
    h.alembic(engine, "upgrade", "0004")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tokens (name, role, secret_sha256, created_at) "
                "VALUES ('old-one', 'reader', 'abc', CURRENT_TIMESTAMP)"
            )
        )
    db.migrate(engine)
    query = text("SELECT name, expires_at FROM tokens")
    with engine.connect() as conn:
        assert conn.execute(query).all() == [("old-one", None)]  # made before: never expires
    h.alembic(engine, "downgrade", "0004")
    with engine.connect() as conn, pytest.raises(Exception, match="expires_at"):
        conn.execute(query).all()
    db.migrate(engine)
    with db.session_factory(engine)() as session:
        secret = create_token(session, name="new-one", role="reader", expires_in=timedelta(1))
        assert authenticate(session, secret).expires_at > db.utcnow()
    engine.dispose()


def test_migration_0005_on_sqlite(tmp_path):
    _migration_roundtrip(f"sqlite:///{tmp_path / 'm.db'}")


def test_migration_0005_on_postgres():
    with pg_helpers.postgres_schema("cv_m0005") as url:
        _migration_roundtrip(url)


def _downgrade_fails_closed(url: str) -> None:
    """Downgrading 0005 revokes every token that has an expiry: an older server knows
    only ``revoked_at`` and would take them for ever."""
    engine = db.make_engine(url)
    db.migrate(engine)
    sessions = db.session_factory(engine)
    with sessions() as session:
        secrets = {
            name: create_token(session, name=name, role="admin", expires_in=lifetime)
            for name, lifetime in (
                ("forever", None),
                ("expired", timedelta(hours=12)),
                ("later", timedelta(days=30)),
                ("revoked-first", timedelta(hours=12)),
            )
        }
        expired_at = db.utcnow() - timedelta(days=1)
        session.execute(
            update(db.Token)
            .where(db.Token.name.in_(["expired", "revoked-first"]))
            .values(expires_at=expired_at)
        )
        session.commit()
        revoke_token(session, name="revoked-first")
        revoked_first = session.scalar(
            select(db.Token.revoked_at).where(db.Token.name == "revoked-first")
        )
        assert {n for n, s in secrets.items() if authenticate(session, s)} == {"forever", "later"}
    before = db.utcnow()
    h.alembic(engine, "downgrade", "0004")
    after = db.utcnow()
    with engine.connect() as conn:
        revoked = dict(conn.execute(text("SELECT name, revoked_at FROM tokens")).all())
        # What the 0004-era server checked (auth.authenticate then).
        live = {
            name
            for name, secret in secrets.items()
            if conn.execute(
                text("SELECT 1 FROM tokens WHERE secret_sha256 = :h AND revoked_at IS NULL"),
                {"h": hash_secret(secret)},
            ).first()
        }
    assert live == {"forever"}

    def at(value):  # SQLite gives text back, PostgreSQL an aware datetime
        return db.as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)

    assert revoked["forever"] is None
    assert abs(at(revoked["expired"]) - expired_at) < timedelta(seconds=1)  # at its expiry
    assert before <= at(revoked["later"]) <= after  # at the downgrade: fail closed
    assert abs(at(revoked["revoked-first"]) - db.as_utc(revoked_first)) < timedelta(seconds=1)
    db.migrate(engine)  # and up again: still refused, now as revoked
    with sessions() as session:
        assert {n for n, s in secrets.items() if authenticate(session, s)} == {"forever"}
    engine.dispose()


def test_downgrading_0005_revokes_tokens_that_expire_on_sqlite(tmp_path):
    _downgrade_fails_closed(f"sqlite:///{tmp_path / 'd.db'}")


def test_downgrading_0005_revokes_tokens_that_expire_on_postgres():
    with pg_helpers.postgres_schema("cv_d0005") as url:
        _downgrade_fails_closed(url)


# --------------------------------------------------------------------------- WebSocket checks


def test_a_websocket_reads_its_token_off_the_event_loop(served, monkeypatch):
    client, tokens, sessions = served
    services = client.app.state.services
    on_loop: list[str] = []

    def watched():
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a worker thread: what blocking work should run on
            return sessions()
        on_loop.append("".join(traceback.format_stack(limit=6)))
        return sessions()

    monkeypatch.setattr(services, "sessions", watched)
    secret = tokens["inspector"]["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"/v1/alerts/ws?token={secret}") as ws:
        assert ws.receive_json()["event"] == "hello"
    assert on_loop == [], on_loop[0]


@pytest.mark.parametrize("name", ["site", "lane"])
def test_websocket_site_and_lane_take_the_sse_limits(served, name):
    client, tokens, _ = served
    secret = tokens["inspector"]["Authorization"].removeprefix("Bearer ")
    detail, closed = ws_refusal(client, f"/v1/alerts/ws?{name}={'x' * 65}&token={secret}")
    assert detail == f"{name}: at most 64 characters, got 65"
    assert closed.code == 1008 and closed.reason == detail
    with client.websocket_connect(f"/v1/alerts/ws?{name}={'x' * 64}&token={secret}") as ws:
        assert ws.receive_json()["event"] == "hello"
    # The SSE route refuses the same, naming the parameter.
    r = client.get("/v1/alerts/stream", params={name: "x" * 65}, headers=tokens["inspector"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == name


# --------------------------------------------------------------------------- request ids


def test_the_upload_limit_s_413_names_the_request_id(served):
    client, tokens, _ = served
    r = client.post(
        "/v1/scans",
        content=bytes(MAX_UPLOAD + 200_000),
        headers={**tokens["scanner"], "Content-Type": "image/png", "X-Request-ID": "big-1"},
    )
    assert r.status_code == 413, r.text
    assert r.json()["detail"].startswith("request body of ")  # refused before it was read
    assert r.json()["request_id"] == r.headers["x-request-id"] == "big-1"


def test_the_ready_probe_s_503_names_the_request_id(served):
    client, _, _ = served
    r = client.get("/v2/health/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["ready"] is False and "model 'xray' not loaded" in body["detail"]
    assert body["request_id"] == r.headers["x-request-id"]


# --------------------------------------------------------------------------- serve run


def test_serve_run_against_a_database_it_cannot_reach_is_one_line(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    urls = {
        "postgresql+psycopg://nobody:hunter2@127.0.0.1:1/x": (
            "cannot reach the database at postgresql+psycopg://nobody:***@127.0.0.1:1/x: ",
            "Connection refused",
        ),
        f"sqlite:///{tmp_path / 'a-file' / 'server.db'}": (
            f"cannot reach the database at sqlite:///{tmp_path / 'a-file' / 'server.db'}: ",
            f"cannot make the folder {tmp_path / 'a-file'}",
        ),
    }
    env = {**os.environ, "CV_SERVER_DATA_DIR": str(tmp_path / "images")}
    cmd = [sys.executable, "-m", "cv.cli", "serve", "run", "--model", str(tmp_path / "no-model")]
    procs = {
        url: subprocess.Popen(
            [*cmd, "--port", str(h.free_port()), "--db", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
        for url in urls
    }
    deadline = time.monotonic() + 60
    for url, proc in procs.items():
        out = proc.communicate(timeout=max(1, deadline - time.monotonic()))[0].decode()
        assert proc.returncode == 2, out
        assert "Traceback" not in out and "hunter2" not in out, out
        errors = [x for x in out.splitlines() if x.startswith("error:")]
        assert len(errors) == 1, out
        where, why = urls[url]
        assert where in errors[0] and why in errors[0], out
