"""The demo's start: sign-in links as soon as the server listens (with or without a
model), readiness asked without flooding the log, and addresses that work for
wildcard and IPv6 hosts (``serve run --host ::``, ``--host 0.0.0.0``)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import server_helpers as h
import uvicorn
from fastapi import FastAPI, Response

from cv.cli.serve import http_base, link_bases, loopback_base
from cv.inference_server.demo import DemoFeed, ScanPool, local_url

# -- addresses ---------------------------------------------------------------------------


def test_addresses_bracket_ipv6_and_reach_wildcards_on_loopback():
    assert http_base("127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert http_base("::1", 8000) == "http://[::1]:8000"
    assert http_base("fe80::1%eth0", 80) == "http://[fe80::1%eth0]:80"
    assert http_base("scanner-gw.local", 80) == "http://scanner-gw.local:80"
    assert loopback_base("::", 18935) == "http://[::1]:18935"
    assert loopback_base("0.0.0.0", 18935) == "http://127.0.0.1:18935"
    assert loopback_base("192.168.4.2", 18935) == "http://192.168.4.2:18935"
    assert local_url("http://[::]:18935") == "http://[::1]:18935"
    assert local_url("http://0.0.0.0:18935/") == "http://127.0.0.1:18935"
    assert local_url("http://[::1]:18935") == "http://[::1]:18935"


def test_links_of_a_wildcard_host_name_the_machine_then_loopback():
    assert link_bases("::1", 5) == ["http://[::1]:5"]
    assert link_bases("10.1.2.3", 5) == ["http://10.1.2.3:5"]
    for host, loopback in (("0.0.0.0", "http://127.0.0.1:5"), ("::", "http://[::1]:5")):
        bases = link_bases(host, 5)
        assert bases[-1] == loopback
        assert all(b.startswith("http://") and b.endswith(":5") for b in bases)
        assert not any(w in b for b in bases for w in ("0.0.0.0", "[::]", "http://:"))
        if socket.gethostname() not in ("", "localhost"):
            assert f"http://{socket.gethostname()}:5" in bases


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 on this machine")
def test_a_port_in_use_on_every_interface_is_a_named_error():
    from cv.cli.serve import listen_everywhere
    from cv.errors import ConfigError

    with socket.socket(socket.AF_INET) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConfigError, match=r"host: cannot listen on \[::\]:\d+"):
            listen_everywhere(taken.getsockname()[1]).close()


# -- the feed's start against a server that has no model yet ----------------------------


def _unready_server() -> tuple[FastAPI, dict]:
    app = FastAPI()
    state = {"ready": False, "ready_calls": 0, "posts": 0}

    @app.get("/v2/health/ready")
    def ready() -> Response:
        state["ready_calls"] += 1
        if state["ready"]:
            return Response('{"ready": true}')
        return Response('{"ready": false, "detail": "no X-ray model is loaded"}', status_code=503)

    @app.post("/v1/scans")
    def post() -> Response:
        state["posts"] += 1
        return Response(json.dumps({"alert": None}), status_code=201)

    return app, state


def _feed_scenario(capsys, *, in_process: bool) -> tuple[dict, str]:
    port = h.free_port()
    app, state = _unready_server()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    printed: list[str] = []

    async def scenario() -> None:
        feed = DemoFeed(
            base_url=f"http://127.0.0.1:{port}",
            scanner_token="cvt_test",
            rate=20.0,
            pool=ScanPool(size=2, seed=5),
            sign_in="demo: SIGN-IN LINKS",
            not_ready=(lambda: None if state["ready"] else "no model loaded")
            if in_process
            else None,
            run="t2",
        )
        await feed.start()
        deadline = time.monotonic() + 30
        while "SIGN-IN LINKS" not in "".join(printed):
            assert time.monotonic() < deadline, "no sign-in links while the model is missing"
            await asyncio.sleep(0.05)
            printed.append(capsys.readouterr().out)
        await asyncio.sleep(6.0)  # the model is still missing
        assert state["posts"] == 0
        state["waiting_calls"] = state["ready_calls"]
        state["ready"] = True
        deadline = time.monotonic() + 30
        while state["posts"] < 2:
            assert time.monotonic() < deadline, state
            await asyncio.sleep(0.1)
        await feed.stop()

    try:
        asyncio.run(scenario())
    finally:
        server.should_exit = True
        thread.join(10)
    return state, "".join(printed) + capsys.readouterr().out


def test_links_are_printed_at_once_and_readiness_backs_off_over_http(capsys):
    state, printed = _feed_scenario(capsys, in_process=False)
    assert "demo: SIGN-IN LINKS\ndemo: no X-ray model is loaded yet" in printed
    assert "(no X-ray model is loaded)" in printed  # the server's reason
    # Asked at 0, 1, 3 s (then 7 s...): not once a second for ever.
    assert 2 <= state["waiting_calls"] <= 4, state


def test_in_process_readiness_sends_no_probes(capsys):
    state, printed = _feed_scenario(capsys, in_process=True)
    assert "no X-ray model is loaded yet (no model loaded)" in printed
    assert state["ready_calls"] == 0


# -- serve run --demo on every interface, without a model at first -----------------------


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_serve_run_demo_on_every_interface_without_a_model(tmp_path):
    """``serve run --demo --host ::`` with a model directory that is not there: the
    sign-in links come at once, name an address a phone can open, and work; no
    readiness probes fill the log; a model swapped in starts the feed (posting on
    ``[::1]``)."""
    model_dir = h.make_tiny_model_dir(tmp_path / "models")
    port = h.free_port()
    out = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "cv.cli", "serve", "run", "--demo", "--demo-rate", "4"]
    cmd += ["--host", "::", "--port", str(port), "--model", str(tmp_path / "no-model")]
    cmd += ["--db", f"sqlite:///{tmp_path / 'server.db'}"]
    env = {
        **os.environ,
        "CV_SERVER_DATA_DIR": str(tmp_path / "images"),
        "CV_SERVER_REID_MODEL_DIR": str(tmp_path / "no-reid-model"),
    }
    with open(out, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        links = h.demo_links(proc, out, timeout=90)
        text = out.read_text()
        assert "demo: no X-ray model is loaded yet" in text
        assert f"http://[::1]:{port}" in text and "http://:::" not in text
        handheld, inspector = links["handheld"]
        assert handheld.startswith(link_bases("::", port)[0])
        assert httpx.get(handheld, params={"token": inspector}, timeout=10).status_code == 200
        base = f"http://[::1]:{port}"
        # `::` is every address, IPv4 included.
        assert httpx.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=10).status_code == 200
        time.sleep(4)  # no model: the feed waits, asking in process
        probes = [
            line
            for line in out.read_text().splitlines()
            if line.startswith("{") and json.loads(line).get("path") == "/v2/health/ready"
        ]
        assert probes == []

        admin = {"Authorization": f"Bearer {links['watch list'][1]}"}
        r = httpx.post(
            f"{base}/v1/admin/models/xray",
            json={"model_dir": str(model_dir)},
            headers=admin,
            timeout=60,
        )
        assert r.status_code == 200, r.text
        reader = {"Authorization": f"Bearer {links['reader console'][1]}"}
        deadline = time.monotonic() + 60
        while True:
            items = httpx.get(f"{base}/v1/scans", headers=reader, timeout=10).json()["items"]
            if sum(s["status"] == "done" for s in items) >= 2:
                break
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.5)
        assert "demo feed: posting" not in out.read_text()  # no failed posts
    finally:
        h.stop_process(proc, 30)
