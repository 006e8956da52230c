"""Alert streams end when their token is revoked; sequence numbers and ids out of range are 4xx.

The revocation tests run the alert router in a real uvicorn server on 127.0.0.1 (as
``test_server_alerts`` does), revoke with ``customs-vision serve token revoke`` and
raise alerts the way the scan service does. The range tests use the whole app
(``create_app``, a tiny model) through ``TestClient``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from types import SimpleNamespace

import httpx
import pytest
import server_helpers as h
from fastapi import HTTPException
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from test_server_alerts import live_server, raise_for, sse_events
from typer.testing import CliRunner
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from cv.inference_server import api_alerts
from cv.inference_server.alerts import AlertMessage
from cv.inference_server.api_alerts import MAX_ID
from cv.inference_server.auth import Principal, create_token

# --------------------------------------------------------------------------- revoked tokens


def revoke(live, name: str) -> None:
    """Revokes a token as an admin does: ``customs-vision serve token revoke``."""
    from cv.cli.serve import app

    url = str(live.app.state.services.engine.url)
    r = CliRunner().invoke(app, ["token", "revoke", name, "--db", url])
    assert r.exit_code == 0, r.output


def collect(response: httpx.Response, into: list[dict]) -> threading.Thread:
    """Reads an event stream into ``into`` on a thread, until the stream ends."""

    def read() -> None:
        try:
            for event in sse_events(response):
                into.append(event)
        except httpx.HTTPError as exc:  # a torn connection is not an orderly end
            into.append({"error": repr(exc)})

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_sse_stream_of_a_revoked_token_ends_before_the_next_alert(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="cv.inference_server.api_alerts")
    with live_server(tmp_path) as live:
        with live.sessions() as session:
            other = create_token(session, name="inspector-2", role="inspector")
        with (
            httpx.Client(base_url=live.url, timeout=10) as client,
            client.stream("GET", "/v1/alerts/stream", headers=live.headers()) as revoked,
            client.stream(
                "GET", "/v1/alerts/stream", headers={"Authorization": f"Bearer {other}"}
            ) as kept,
        ):
            assert revoked.status_code == kept.status_code == 200
            got: list[dict] = []
            reader = collect(revoked, got)
            kept_events = sse_events(kept)
            assert next(kept_events)["event"] == "hello"
            # Keep-alives flow while the token is valid (waited for: a busy machine is slow).
            deadline = time.monotonic() + 15
            while not any("comment" in e for e in got) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert any("comment" in e for e in got) and reader.is_alive()

            revoke(live, "inspector-1")
            time.sleep(0.5)  # longer than the re-check interval (the 0.3 s keep-alive)
            seq = raise_for(live.sessions, "rv1", service=live.service)
            reader.join(5)
            assert not reader.is_alive(), "the revoked token's stream is still open"
            # The other inspector's stream gets the alert; the revoked one never did.
            alert = next(e for e in kept_events if e.get("event") == "alert")
            assert alert["id"] == str(seq)
        assert got[0]["event"] == "hello"
        assert not [e for e in got if e.get("event") == "alert" or "error" in e], got
        assert "closed the stream of token 'inspector-1'" in caplog.text
        assert "revoked" in caplog.text

        # Reconnecting, as a browser does, is refused.
        r = httpx.get(f"{live.url}/v1/alerts/stream", headers=live.headers(), timeout=10)
        assert r.status_code == 401


def test_websocket_of_a_revoked_token_closes_with_1008_before_the_next_alert(tmp_path):
    with live_server(tmp_path) as live:
        port = live.url.rsplit(":", 1)[1]
        url = f"ws://127.0.0.1:{port}/v1/alerts/ws?token={live.tokens['inspector']}"
        with ws_connect(url) as ws:
            assert json.loads(ws.recv(timeout=10))["event"] == "hello"
            assert json.loads(ws.recv(timeout=10))["event"] == "keepalive"
            revoke(live, "inspector-1")
            time.sleep(0.5)
            raise_for(live.sessions, "rv2", service=live.service)
            received = []
            deadline = time.monotonic() + 5
            with pytest.raises(ConnectionClosed):
                while time.monotonic() < deadline:
                    received.append(json.loads(ws.recv(timeout=10)))
            assert ws.close_code == 1008 and "revoked" in ws.close_reason
        assert [m for m in received if m["event"] == "alert"] == [], received
        assert received[-1]["event"] == "error" and "revoked" in received[-1]["detail"]


def test_a_busy_stream_checks_its_token_between_alerts_too(monkeypatch):
    # Alerts back to back: no keep-alive ever comes, the check falls due all the same.
    inspector = Principal("handheld-1", "inspector")
    holder = {"principal": inspector}

    def get_principal(connection, services):
        if holder["principal"] is None:
            raise HTTPException(401, detail="API token revoked at 2026-11-22T10:00:00+00:00")
        return holder["principal"]

    monkeypatch.setattr(api_alerts, "get_principal", get_principal)
    closed = []

    class Service:
        async def stream(self, **filters):
            try:
                yield AlertMessage(event="hello", data={})
                for seq in range(1, 100):
                    yield AlertMessage(event="alert", data={"seq": seq}, id=seq, seq=seq)
            finally:
                closed.append(True)

    connection = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(services=None)))
    connection.url = SimpleNamespace(path="/v1/alerts/stream")
    access = api_alerts.StreamAccess(connection, inspector, "alerts:read", every_s=0.0)

    async def read() -> list[int]:
        seqs = []
        stream = api_alerts.guarded_stream(Service(), access, site=None, lane=None, last_id=None)
        with pytest.raises(api_alerts.StreamAccessEnded, match="revoked"):
            async for message in stream:
                seqs.append(message.seq)
                if message.seq == 2:
                    holder["principal"] = None  # revoked
        return seqs

    assert asyncio.run(read()) == [0, 1, 2]
    assert closed == [True]  # the service's stream was closed (unsubscribed)
    # A token whose role no longer may read ends it too.
    holder["principal"] = Principal("handheld-1", "reader")
    access.checked = 0.0
    with pytest.raises(api_alerts.StreamAccessEnded, match="alerts:read"):
        asyncio.run(access.check())


# --------------------------------------------------------------------------- ranges


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from cv.inference_server.app import create_app

    model_dir = h.make_tiny_model_dir(tmp_path_factory.mktemp("models"), name="quiet")
    tmp = tmp_path_factory.mktemp("ranges")
    app = create_app(h.server_settings(tmp, model_dir))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, h.make_tokens(app)


TOO_BIG = [MAX_ID + 1, 1099511627776, 2**70]


@pytest.mark.parametrize("number", TOO_BIG)
@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/v1/alerts/{n}", "seq"),
        ("POST", "/v1/alerts/{n}/ack", "seq"),
        ("POST", "/v1/alerts/{n}/confirm", "seq"),
        ("POST", "/v1/alerts/{n}/reject", "seq"),
        ("GET", "/v1/alerts?after_seq={n}", "after_seq"),
        ("GET", "/v1/alerts/stream?last_id={n}", "last_id"),
        ("GET", "/v1/sightings/{n}", "sighting_id"),
        ("GET", "/v1/sightings/{n}/frame", "sighting_id"),
        ("GET", "/v1/sightings/{n}/crop", "sighting_id"),
        ("POST", "/v1/sightings/{n}/confirm", "sighting_id"),
        ("POST", "/v1/sightings/{n}/reject", "sighting_id"),
        ("GET", "/v1/sightings?before_id={n}", "before_id"),
        ("GET", "/v1/sightings/stream?last_id={n}", "last_id"),
        ("GET", "/v1/audit?after_id={n}", "after_id"),
        ("GET", "/v1/audit?order=desc&before_id={n}", "before_id"),
    ],
)
def test_numbers_beyond_32_bits_are_422_naming_the_parameter(server, method, path, field, number):
    client, tokens = server
    r = client.request(method, path.format(n=number), headers=tokens["admin"])
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field, r.text
    assert r.json()["detail"].startswith(f"{field}:")


def test_the_largest_id_is_a_plain_404(server):
    client, tokens = server
    for path in (f"/v1/alerts/{MAX_ID}", f"/v1/sightings/{MAX_ID}"):
        r = client.get(path, headers=tokens["admin"])
        assert r.status_code == 404, r.text
    r = client.post(f"/v1/alerts/{MAX_ID}/ack", headers=tokens["inspector"])
    assert r.status_code == 404, r.text
    r = client.get("/v1/alerts", params={"after_seq": MAX_ID}, headers=tokens["admin"])
    assert r.status_code == 200 and r.json()["alerts"] == []
    r = client.get("/v1/alerts/-1", headers=tokens["admin"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "seq"


@pytest.mark.parametrize("header", [str(MAX_ID + 1), str(2**70), "1e3", "+5", "1_0", "-1", "x"])
@pytest.mark.parametrize("path", ["/v1/alerts/stream", "/v1/sightings/stream"])
def test_bad_last_event_id_header_is_422_naming_it(server, path, header):
    client, tokens = server
    r = client.get(path, headers={**tokens["inspector"], "Last-Event-ID": header})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("Last-Event-ID:"), r.text


@pytest.mark.parametrize("last_id", [str(MAX_ID + 1), str(2**70), "-3", "1_0", "x"])
def test_websocket_last_id_out_of_range_closes_with_1008_and_the_reason(server, last_id):
    client, tokens = server
    secret = tokens["inspector"]["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"/v1/alerts/ws?last_id={last_id}&token={secret}") as ws:
        msg = ws.receive_json()
        assert msg["event"] == "error" and msg["detail"].startswith("last_id:"), msg
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1008 and closed.value.reason.startswith("last_id:")
