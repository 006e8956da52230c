"""The handheld page and the reader console, in real headless Chromium against a real server.

A uvicorn process (``create_app``) runs a tiny model whose thresholds make every
scan alert; Playwright drives Debian's Chromium (``executable_path``; Playwright's
own browser download does not work here). Browser APIs that have no effect in a
headless browser (``navigator.vibrate``, Web Audio) are counted by an init script.

Chromium is found as :mod:`browser_helpers` says (the ``browser`` fixture is in
``conftest.py``).
Screenshots for people to look at go to ``CV_TEST_SCREENSHOTS`` (default
``/tmp/pages``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import server_helpers as helpers
from browser_helpers import PHONE, is_box, scan_pixel

from cv.inference_server import alerts, db
from cv.inference_server.auth import create_token
from cv.inference_server.storage import ImageStore
from cv.records import Detection

pytestmark = pytest.mark.slow

GREY = 128
SHOTS = Path(os.environ.get("CV_TEST_SCREENSHOTS", "/tmp/pages"))

# Counts what a headless browser cannot make felt or heard.
COUNT_SIGNALS = """
window.__signals = { vibrate: 0, tones: 0 };
Navigator.prototype.vibrate = function () { window.__signals.vibrate += 1; return true; };
const realStart = AudioScheduledSourceNode.prototype.start;
AudioScheduledSourceNode.prototype.start = function (...args) {
  window.__signals.tones += 1;
  return realStart.apply(this, args);
};
"""


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Polls ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.1)


# --------------------------------------------------------------------------- the server


@dataclass
class Server:
    """One ``uvicorn --factory cv.inference_server.app:create_app`` process."""

    tmp: Path
    env: dict[str, str]
    port: int = field(default_factory=helpers.free_port)
    proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        cmd = [sys.executable, "-m", "uvicorn", "--factory", "cv.inference_server.app:create_app"]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port)]
        log_path = self.tmp / f"server-{self.port}.log"
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=self.env, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT
            )

        def up() -> bool:
            assert self.proc.poll() is None, log_path.read_text()
            try:
                return httpx.get(f"{self.base}/v2/health/ready", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, 120, "the server to start")  # model load and warm-up on a busy machine
        return self

    def kill(self) -> None:
        """SIGKILL: the connections drop without a goodbye."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class World:
    """The server under test, its database and the tokens of each role."""

    server: Server
    url: str
    data_dir: Path
    tokens: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def post_scan(
        self, scan_id: str, *, site: str = "ICN-T1", lane: str = "L3", base: str = ""
    ) -> dict:
        files = {
            "image": (f"{scan_id}.png", helpers.png_bytes(320, 240, seed=len(scan_id)), "image/png")
        }
        r = httpx.post(
            f"{base or self.server.base}/v1/scans",
            files=files,
            data=helpers.scan_form(scan_id=scan_id, site=site, lane=lane, bag_tag=f"T-{scan_id}"),
            headers=self.headers("scanner"),
            timeout=60,
        )
        assert r.status_code == 201, r.text
        return r.json()

    def alert(self, seq: int) -> dict:
        r = httpx.get(f"{self.server.base}/v1/alerts/{seq}", headers=self.headers("inspector"))
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("pages")
    # As `eval xray --save-thresholds` records an operating point (the figures made up).
    operating_point = {
        "operating_point": "bag-far=0.05",
        "operating_point_bag": {
            "class_rate": 0.0075,
            "far": 0.049,
            "detection_rate": 0.841,
            "clean_bags": 122,
            "threat_bags": 478,
        },
    }
    model_dir = helpers.make_tiny_model_dir(
        tmp / "models", thresholds=helpers.ALERT_ALWAYS, metrics=operating_point
    )
    url = f"sqlite:///{tmp / 'server.db'}"
    engine = db.make_engine(url)
    db.migrate(engine)
    names = {
        "scanner": ("xray-1", "scanner"),
        "inspector": ("handheld-1", "inspector"),
        "inspector2": ("handheld-2", "inspector"),
        "reader": ("reader-1", "reader"),
    }
    with db.session_factory(engine)() as session:
        tokens = {who: create_token(session, name=n, role=r) for who, (n, r) in names.items()}
    engine.dispose()
    env = {
        **os.environ,
        "CV_SERVER_DATABASE_URL": url,
        "CV_SERVER_DATA_DIR": str(tmp / "images"),
        "CV_SERVER_MODEL_DIR": str(model_dir),
        "CV_SERVER_SSE_KEEPALIVE_S": "1",
        "CV_SERVER_ALERT_ACK_DEADLINE_S": "3600",  # no re-sends during the tests
    }
    server = Server(tmp, env).start()
    try:
        yield World(server, url, tmp / "images", tokens)
    finally:
        server.stop()


def phone(browser: Any, world: World, *, sign_in_as: str | None = None) -> Any:
    """A 390×844 @3x touch context counting vibrations and tones, optionally signed in."""
    context = browser.new_context(
        **PHONE, is_mobile=True, has_touch=True, base_url=world.server.base
    )
    context.add_init_script(COUNT_SIGNALS)
    if sign_in_as:
        r = context.request.post("/v1/session", data={"token": world.tokens[sign_in_as]})
        assert r.status == 200, r.text()
    return context


def commit_alert(world: World, scan_id: str, box: tuple[float, float, float, float]) -> int:
    """Stores a grey 320×240 scan with one knife at ``box`` and raises its alert.

    Done as a second server process would (the scan service's ``finish``: the
    detections and the alert in one commit), so the box is exactly where the
    test says; the running server's pump delivers it.
    """
    from cv.image import encode_png

    stored = ImageStore(world.data_dir).save(
        encode_png(np.full((240, 320, 3), GREY, np.uint8)), "image/png"
    )
    detection = Detection(box, "knife", 1, 0.91)
    engine = db.make_engine(world.url)
    try:
        with db.session_factory(engine)() as session, session.begin():
            scan = db.Scan(
                id=scan_id,
                site="ICN-T1",
                lane="L3",
                kind="cabin_bag",
                image_sha256=stored.sha256,
                image_path=stored.path,
                content_type="image/png",
                width=320,
                height=240,
                status="done",
                attempts=1,
            )
            session.add(scan)
            session.flush()
            x1, y1, x2, y2 = box
            session.add(
                db.Detection(
                    scan_id=scan_id,
                    category="knife",
                    class_id=1,
                    score=0.91,
                    x1=x1,
                    y1=y1,
                    x2=x2,
                    y2=y2,
                )
            )
            alert = alerts.raise_alert(
                session,
                scan=scan,
                detections=[detection],
                thresholds={"knife": 0.5},
                overlay_url=f"/v1/scans/{scan_id}/overlay.png",
                ack_deadline_s=3600,
            )
            seq = alert.seq
    finally:
        engine.dispose()
    return seq


def seqs_shown(page: Any) -> list[int]:
    return [
        int(s)
        for s in page.eval_on_selector_all("#alerts li", "els => els.map(e => e.dataset.seq)")
    ]


# --------------------------------------------------------------------------- plain HTTP


def test_pages_static_files_and_sign_in_cookie(world: World) -> None:
    base = world.server.base
    page = httpx.get(f"{base}/handheld")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/handheld.js" defer></script>' in page.text
    assert httpx.get(f"{base}/console").status_code == 200
    js = httpx.get(f"{base}/static/handheld.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{base}/static/style.css").headers["content-type"].startswith("text/css")
    for bad in ("missing.js", "pages.py", "..%2Fpages.py"):
        r = httpx.get(f"{base}/static/{bad}")
        assert r.status_code == 404 and "detail" in r.json(), bad

    with httpx.Client(base_url=base) as client:
        r = client.post("/v1/session", json={"token": "cvt_not-a-token"})
        assert r.status_code == 401 and r.json()["detail"] == "token: unknown API token"
        r = client.post("/v1/session", json={})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "token"
        assert client.get("/v1/session").status_code == 401

        r = client.post("/v1/session", json={"token": world.tokens["reader"]})
        assert r.json() == {"name": "reader-1", "role": "reader", "permissions": ["scans:read"]}
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("cv_token=cvt_")
        for attribute in ("HttpOnly", "SameSite=strict", "Max-Age=43200", "Path=/"):
            assert attribute in cookie, cookie
        # The cookie alone now authenticates API calls, as it does for <img> and EventSource.
        assert client.get("/v1/session").json()["name"] == "reader-1"
        assert client.get("/v1/scans", params={"limit": 1}).status_code == 200
        assert client.get("/v1/alerts").status_code == 403  # a reader gets no alerts

        r = client.delete("/v1/session")
        assert r.status_code == 204 and 'cv_token=""' in r.headers["set-cookie"]
        assert "Max-Age=0" in r.headers["set-cookie"]
        assert client.get("/v1/session").status_code == 401


# --------------------------------------------------------------------------- handheld


def test_handheld_signs_in_and_signals_a_live_alert(browser: Any, world: World) -> None:
    context = phone(browser, world)
    page = context.new_page()
    page.goto("/handheld")
    page.wait_for_selector("#signin-form")
    page.fill("#token", world.tokens["reader"])
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("text=the handheld needs an inspector token")
    page.fill("#token", world.tokens["inspector"])
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    assert page.text_content("#who") == "Signed in as handheld-1 (inspector)"
    # The inspector sees what the alerts' thresholds do, as the reader console does.
    page.wait_for_function(
        "() => document.getElementById('model-info').textContent.includes('clean bags')",
        timeout=10_000,
    )
    info = page.inner_text("#model-info")
    assert "4.9 % of clean bags" in info and "84.1 % of bags with threats" in info, info

    t0 = time.monotonic()
    answer = world.post_scan("hh-live-1")
    seq = answer["alert"]["seq"]
    item = page.wait_for_selector(f"#alerts li[data-seq='{seq}']", timeout=20_000)
    arrived_s = time.monotonic() - t0
    text = item.inner_text()
    top = max(answer["alert"]["boxes"], key=lambda b: b["score"])
    assert top["category"] in text.lower() and f"{top['score']:.2f}" in text
    assert "ICN-T1 · L3" in text and "T-hh-live-1" in text and "open" in text.lower()
    signals = page.evaluate("window.__signals")
    assert signals["vibrate"] >= 1 and signals["tones"] >= 2, signals  # two-tone beep
    assert page.evaluate("localStorage.getItem('cv.handheld.lastId')") == str(seq)
    assert arrived_s < 20

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "handheld-phone.png"))

    # Someone else rejects it: the list changes live, without a buzz.
    before = page.evaluate("window.__signals.vibrate")
    r = httpx.post(
        f"{world.server.base}/v1/alerts/{seq}/reject", headers=world.headers("inspector2")
    )
    assert r.status_code == 200
    page.wait_for_selector(f"#alerts li[data-seq='{seq}'].state-rejected", timeout=10_000)
    assert page.evaluate("window.__signals.vibrate") == before

    # A reload stays signed in (the cookie) and follows the stream again.
    page.reload()
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    assert page.is_hidden("#signin")
    page.click("#signout")
    page.wait_for_selector("#signin-form")
    assert not [c for c in context.cookies() if c["name"] == "cv_token"]
    context.close()


def test_sign_in_link_signs_in_and_leaves_the_address_bar(browser: Any, world: World) -> None:
    # `serve run --demo` prints links with ?token=...: one click signs in, and the
    # token does not stay in the address bar (history, screenshots, shoulder surfers).
    context = phone(browser, world)
    page = context.new_page()
    page.goto(f"/handheld?token={world.tokens['inspector']}")
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    assert "token" not in page.url
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["cv_token"]["value"] == world.tokens["inspector"]
    context.close()
    # An unknown token in a link leaves the sign-in form, and the address bar clean.
    context = phone(browser, world)
    page = context.new_page()
    page.goto("/console?token=cvt_unknown")
    page.wait_for_selector("#signin-form")
    assert "token" not in page.url
    context.close()


def test_handheld_draws_the_box_to_scale_and_sends_verdicts(browser: Any, world: World) -> None:
    context = phone(browser, world, sign_in_as="inspector")
    page = context.new_page()
    page.goto("/handheld")
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    box = (120.0, 60.0, 200.0, 140.0)
    seq = commit_alert(world, "hh-box-1", box)
    page.click(f"#alerts li[data-seq='{seq}']", timeout=15_000)
    page.wait_for_selector("#d-image-note:has-text('drawn to scale')", timeout=10_000)

    # 390 px wide screen, 12 px padding each side: the 320×240 scan is shown 366 px wide,
    # on a 3x screen a 1098 × 824 canvas: 3.43125 canvas pixels per image pixel.
    size = page.evaluate(
        "() => { const c = document.getElementById('scan'); const r = c.getBoundingClientRect();"
        " return [c.width, c.height, r.width, r.height]; }"
    )
    assert size == [1098, 824, 366, 274.5]
    s = 1098 / 320

    def pixel(x: float, y: float) -> tuple[int, ...]:
        return scan_pixel(page, x, y)

    x1, y1, x2, y2 = (v * s for v in box)  # 411.75, 205.875, 686.25, 480.375
    mid_x, mid_y = (x1 + x2) / 2, (y1 + y2) / 2
    # The 9-canvas-pixel stroke lies just inside the box's edges.
    for x, y in ((x1 + 3, mid_y), (x2 - 4, mid_y), (mid_x, y1 + 4), (mid_x, y2 - 4)):
        assert is_box(pixel(x, y)), (x, y, pixel(x, y))
    for x, y in (
        (x1 - 6, mid_y),
        (x2 + 6, mid_y),
        (mid_x, y2 + 6),
        (mid_x, mid_y),
        (300 * s, 220 * s),
    ):
        assert pixel(x, y) == (GREY, GREY, GREY), (x, y, pixel(x, y))
    assert "knife" in page.inner_text("#d-boxes") and "0.91" in page.inner_text("#d-boxes")
    assert "knife 0.91 >= operating point 0.50" in page.inner_text("#d-reasons")

    # Redraw the box by dragging from image pixel (40, 30) to (100, 90).
    page.click("#redraw")
    rect = page.evaluate("() => document.getElementById('scan').getBoundingClientRect().toJSON()")
    k = rect["width"] / 320
    page.mouse.move(rect["left"] + 40 * k, rect["top"] + 30 * k)
    page.mouse.down()
    page.mouse.move(rect["left"] + 100 * k, rect["top"] + 90 * k, steps=5)
    page.mouse.up()
    assert page.text_content("#d-corrected") == "corrected box 40, 30, 100, 90"
    page.screenshot(path=str(SHOTS / "handheld-alert-phone.png"))

    page.click("#ack")
    state = wait_for(
        lambda: world.alert(seq)["state"] == "acknowledged" and world.alert(seq), 10, "ack"
    )
    assert state["acknowledged_by"] == "handheld-1"
    page.wait_for_selector("#ack:disabled")
    page.click("#confirm")
    state = wait_for(
        lambda: world.alert(seq)["state"] == "confirmed" and world.alert(seq), 10, "confirm"
    )
    assert state["resolved_by"] == "handheld-1"
    (corrected,) = state["verdict"]["boxes"]
    assert corrected["category"] == "knife"
    assert corrected["box"] == pytest.approx([40, 30, 100, 90], abs=1.0)
    page.wait_for_selector("#d-state:has-text('confirmed')")
    assert page.is_disabled("#confirm") and page.is_disabled("#reject")
    page.click("#back")
    page.wait_for_selector(f"#alerts li[data-seq='{seq}'].state-confirmed")
    context.close()


def test_handheld_catches_up_after_the_server_comes_back(browser: Any, world: World) -> None:
    context = phone(browser, world, sign_in_as="inspector")
    page = context.new_page()
    page.goto("/handheld")
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    page.evaluate("window.__samePage = true")  # a reload would lose it
    first = world.post_scan("hh-gone-1")["alert"]["seq"]
    page.wait_for_selector(f"#alerts li[data-seq='{first}']", timeout=20_000)
    buzzes = page.evaluate("window.__signals.vibrate")

    world.server.kill()
    page.wait_for_selector("#conn:not([data-state=live])", timeout=15_000)
    # Meanwhile a second server process on the same database takes two scans.
    other = Server(world.server.tmp, world.server.env).start()
    try:
        missed = [world.post_scan(f"hh-gone-{n}", base=other.base)["alert"]["seq"] for n in (2, 3)]
    finally:
        other.stop()
    assert missed == [first + 1, first + 2]
    assert not set(missed) & set(seqs_shown(page))

    world.server.start()  # same port, same database: the page finds it again by itself
    for seq in missed:
        page.wait_for_selector(f"#alerts li[data-seq='{seq}']", timeout=30_000)
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    shown = seqs_shown(page)
    assert len(shown) == len(set(shown)), shown  # nothing twice
    assert {first, *missed} <= set(shown)
    assert page.evaluate("window.__samePage") is True
    assert page.evaluate("window.__signals.vibrate") > buzzes
    assert page.evaluate("localStorage.getItem('cv.handheld.lastId')") == str(missed[-1])

    # And it is live again.
    after = world.post_scan("hh-gone-4")["alert"]["seq"]
    page.wait_for_selector(f"#alerts li[data-seq='{after}']", timeout=20_000)
    shown = seqs_shown(page)
    assert len(shown) == len(set(shown)), shown
    context.close()


# --------------------------------------------------------------------------- console


def test_console_shows_the_feed_with_overlays_and_filters_by_lane(
    browser: Any, world: World
) -> None:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, base_url=world.server.base
    )
    page = context.new_page()
    page.goto("/console")
    page.fill("#token", world.tokens["reader"])
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)

    c1 = world.post_scan("con-c1", site="ICN-CARGO", lane="C1")
    c2 = world.post_scan("con-c2", site="ICN-CARGO", lane="C2")
    page.wait_for_selector("#scans li[data-id='con-c1']", timeout=15_000)
    page.wait_for_selector("#scans li[data-id='con-c2']", timeout=15_000)
    # The newest scan is shown large, as the server's overlay, with its detections' scores.
    page.wait_for_function(
        "() => { const i = document.getElementById('c-image');"
        " return i.src.endsWith('/v1/scans/con-c2/overlay.png?v=done') && i.naturalWidth === 320; }",
        timeout=10_000,
    )
    top = c2["detections"][0]
    first_row = page.inner_text("#c-detections tbody tr:first-child")
    assert top["category"] in first_row.lower() and f"{top['score']:.2f}" in first_row
    assert "ICN-CARGO · C2" in page.inner_text("#c-title")
    # What the served model's alert thresholds do, as measured when they were chosen.
    page.wait_for_function(
        "() => document.getElementById('model-info').textContent.includes('clean bags')",
        timeout=10_000,
    )
    info = page.inner_text("#model-info")
    assert "tiny-tiny v1" in info and "4.9 % of clean bags" in info, info
    assert "84.1 % of bags with threats" in info and "bag-far=0.05 on 600 scans" in info
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "console-desktop.png"))

    page.fill("#lane", "C1")
    page.click("#filter button[type=submit]")
    page.wait_for_selector("#scans li[data-id='con-c2']", state="detached", timeout=10_000)
    page.wait_for_selector("#scans li[data-id='con-c1']", timeout=10_000)
    lanes = page.eval_on_selector_all("#scans li", "els => els.map(e => e.dataset.lane)")
    assert set(lanes) == {"C1"}, lanes
    assert "lane=C1" in page.url
    world.post_scan("con-c2b", site="ICN-CARGO", lane="C2")
    world.post_scan("con-c1b", site="ICN-CARGO", lane="C1")
    page.wait_for_selector("#scans li[data-id='con-c1b']", timeout=15_000)
    assert page.query_selector("#scans li[data-id='con-c2b']") is None
    assert "ICN-CARGO · C1" in page.inner_text("#c-title")  # follows the newest of its lane
    assert c1["scan"]["lane"] == "C1"
    context.close()

    small = browser.new_context(**PHONE, is_mobile=True, has_touch=True, base_url=world.server.base)
    r = small.request.post("/v1/session", data={"token": world.tokens["reader"]})
    assert r.status == 200
    page = small.new_page()
    page.goto("/console?site=ICN-CARGO")
    page.wait_for_selector("#scans li[data-id='con-c1b']", timeout=15_000)
    page.wait_for_function(
        "() => document.getElementById('c-image').naturalWidth > 0", timeout=10_000
    )
    page.screenshot(path=str(SHOTS / "console-phone.png"))
    small.close()
