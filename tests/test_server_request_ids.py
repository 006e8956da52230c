"""Request ids and secrets in the server's structured logs.

Every HTTP request gets an id (the client's ``X-Request-ID`` when plain, else a new
one): it is echoed as a header, put in error bodies and on every JSON log line
written while the request is handled. API token secrets passed in query strings
(EventSource and WebSocket clients) never reach the log: checked on a real
``serve run`` process with a real WebSocket client.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import time

import httpx
import pytest
import server_helpers as h
from fastapi.testclient import TestClient

from cv.inference_server.logs import JsonFormatter, RedactSecrets, redact

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """An app without a model (nothing here infers), with two routes of the test's own."""
    from cv.inference_server.app import create_app

    tmp = tmp_path_factory.mktemp("request-ids")
    app = create_app(h.server_settings(tmp, tmp / "no-model"))

    @app.get("/test/boom")
    def boom() -> None:
        raise RuntimeError("a fault of the server")

    @app.get("/test/log")
    def write_log() -> dict[str, str]:  # a plain def: runs in a worker thread
        logging.getLogger("cv.test.route").info("handled in a thread")
        return {"ok": "yes"}

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, h.make_tokens(app)


@pytest.fixture
def json_log():
    """The JSON lines the server writes while the test runs, as dicts."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(x) for x in stream.getvalue().splitlines() if x.startswith("{")]

    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def access_line(lines: list[dict], path: str) -> dict:
    found = [x for x in lines if x["logger"] == "cv.inference_server.access" and x["path"] == path]
    assert len(found) == 1, lines
    return found[0]


def test_a_request_gets_an_id_echoed_and_on_its_log_lines(served, json_log):
    client, _ = served
    r = client.get("/test/log")
    assert r.status_code == 200
    request_id = r.headers["x-request-id"]
    assert GENERATED.fullmatch(request_id)
    lines = json_log()
    assert access_line(lines, "/test/log")["request_id"] == request_id
    (route_line,) = [x for x in lines if x["logger"] == "cv.test.route"]
    assert route_line["request_id"] == request_id  # written in a worker thread
    # Each request its own id; nothing logged outside a request carries one.
    assert client.get("/test/log").headers["x-request-id"] != request_id
    logging.getLogger("cv.test.route").warning("outside any request")
    assert "request_id" not in json_log()[-1]


def test_a_plain_client_request_id_is_kept_and_an_odd_one_replaced(served, json_log):
    client, _ = served
    mine = "scanner-7.lane3:0042_a"
    assert (
        client.get("/v2/health/live", headers={"X-Request-ID": mine}).headers["x-request-id"]
        == mine
    )
    assert access_line(json_log(), "/v2/health/live")["request_id"] == mine
    for odd in ("x" * 65, "a b", "<script>", "-leading-dash", "é".encode("latin-1")):
        echoed = client.get("/v2/health/live", headers={"X-Request-ID": odd}).headers[
            "x-request-id"
        ]
        assert GENERATED.fullmatch(echoed), odd


def test_error_bodies_name_the_request_id(served, json_log):
    client, tokens = served
    # 401 (an HTTPException), 422 (validation), 404 (a service's error), 503 (no model).
    answers = [
        client.get("/v1/scans"),
        client.get("/v1/scans", params={"limit": 0}, headers=tokens["reader"]),
        client.get("/v1/scans/nope", headers=tokens["reader"]),
        client.get("/v1/admin/models/xray", headers=tokens["admin"]),
    ]
    assert [r.status_code for r in answers] == [401, 422, 404, 503]
    for r in answers:
        assert r.json()["request_id"] == r.headers["x-request-id"], r.text
    assert answers[0].headers["www-authenticate"] == "Bearer"  # headers kept

    r = client.get("/test/boom", headers={"X-Request-ID": "case-1234"})
    assert r.status_code == 500
    body = r.json()
    assert body["request_id"] == "case-1234" and r.headers["x-request-id"] == "case-1234"
    assert "RuntimeError" in body["detail"] and "case-1234" in body["detail"]
    lines = json_log()
    (fault,) = [x for x in lines if x["message"].startswith("unhandled error on GET /test/boom")]
    assert fault["request_id"] == "case-1234" and "a fault of the server" in fault["exception"]
    access = access_line(lines, "/test/boom")
    assert access["status"] == 500 and access["request_id"] == "case-1234"


def test_token_values_are_masked_and_the_rest_kept():
    line = '127.0.0.1:45390 - "WebSocket /v1/alerts/ws?site=ICN&token=cvt_Ab-9_x&lane=L3" 403'
    assert redact(line) == (
        '127.0.0.1:45390 - "WebSocket /v1/alerts/ws?site=ICN&token=***&lane=L3" 403'
    )
    assert redact("GET /v1/alerts/stream?token=cvt_abc HTTP/1.1") == (
        "GET /v1/alerts/stream?token=*** HTTP/1.1"
    )
    assert redact("Bearer cvt_abcDEF123") == "Bearer cvt_***"
    assert redact("nothing secret here") == "nothing secret here"


def test_a_websocket_token_never_reaches_the_log_of_serve_run(tmp_path):
    """A real ``serve run`` (JSON logs on stderr, uvicorn's handshake lines routed to
    them) with real WebSocket and SSE clients passing ``?token=``."""
    from websockets.sync.client import connect

    url, secrets = h.sqlite_with_tokens(tmp_path / "server.db", {"handheld-ws": "inspector"})
    secret = secrets["handheld-ws"]

    port = h.free_port()
    env = {
        **os.environ,
        "CV_SERVER_DATA_DIR": str(tmp_path / "images"),
        "CV_SERVER_REID_MODEL_DIR": str(tmp_path / "no-reid-model"),
        "CV_SERVER_SSE_KEEPALIVE_S": "1",
    }
    cmd = [sys.executable, "-m", "cv.cli", "serve", "run", "--port", str(port)]
    cmd += ["--model", str(tmp_path / "no-model"), "--db", url]
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        h.wait_live(proc, base, log_path, timeout=60)
        ws_url = f"ws://127.0.0.1:{port}/v1/alerts/ws?site=ICN-T1&token={secret}"
        with connect(ws_url, open_timeout=10) as ws:
            hello = json.loads(ws.recv(timeout=10))
            assert hello["event"] == "hello", hello
        # A refused one (unknown token) is logged too.
        with connect(
            f"ws://127.0.0.1:{port}/v1/alerts/ws?token=cvt_unknown0", open_timeout=10
        ) as ws:
            assert json.loads(ws.recv(timeout=10))["event"] == "error"
        with httpx.stream(
            "GET", f"{base}/v1/alerts/stream", params={"token": secret}, timeout=10
        ) as stream:
            assert stream.status_code == 200
            next(stream.iter_lines())
        time.sleep(0.5)  # the handshake lines are written
    finally:
        proc.terminate()
        proc.wait(30)
    text = log_path.read_text(errors="replace")
    assert secret not in text and secret[4:] not in text and "cvt_unknown0" not in text
    lines = [json.loads(x) for x in text.splitlines() if x.startswith("{")]
    handshakes = [x["message"] for x in lines if "WebSocket /v1/alerts/ws" in x["message"]]
    assert len(handshakes) >= 2, text
    assert any("?site=ICN-T1&token=***" in m for m in handshakes), handshakes
