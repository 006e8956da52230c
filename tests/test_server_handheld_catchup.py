"""The handheld page catches up on state changes it missed, in real headless Chromium.

Built on ``test_server_pages`` (its server process, browser and phone context): an
alert a colleague confirms while this handheld's stream is down shows as confirmed
after the page reconnects by itself, and a verdict the server refuses (409) shows the
alert's real state and who handled it.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import test_server_pages as pages
from test_server_pages import SHOTS, Server, World, phone, seqs_shown

pytestmark = pytest.mark.slow

# The page tests' server process (a tiny model whose every scan alerts).
world = pages.world


def act(world: World, base: str, seq: int, action: str, who: str = "inspector2") -> dict:
    r = httpx.post(f"{base}/v1/alerts/{seq}/{action}", headers=world.headers(who), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_handheld_shows_alerts_resolved_while_its_stream_was_down(
    browser: Any, world: World
) -> None:
    context = phone(browser, world, sign_in_as="inspector")
    page = context.new_page()
    page.goto("/handheld")
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    page.evaluate("window.__samePage = true")  # a reload would lose it
    seqs = [world.post_scan(f"cu-{n}")["alert"]["seq"] for n in (1, 2, 3)]
    for seq in seqs:
        page.wait_for_selector(f"#alerts li[data-seq='{seq}'].state-open", timeout=20_000)
    confirmed, acknowledged, untouched = seqs

    world.server.kill()
    page.wait_for_selector("#conn:not([data-state=live])", timeout=15_000)
    # Meanwhile colleagues act through a second server process on the same database.
    other = Server(world.server.tmp, world.server.env).start()
    try:
        act(world, other.base, confirmed, "confirm")
        act(world, other.base, acknowledged, "ack")
    finally:
        other.stop()
    assert page.is_visible(f"#alerts li[data-seq='{confirmed}'].state-open")

    world.server.start()  # same port: the page reconnects by itself
    page.wait_for_selector(f"#alerts li[data-seq='{confirmed}'].state-confirmed", timeout=30_000)
    page.wait_for_selector(f"#alerts li[data-seq='{acknowledged}'].state-acknowledged")
    page.wait_for_selector(f"#alerts li[data-seq='{untouched}'].state-open")
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    assert page.evaluate("window.__samePage") is True
    shown = seqs_shown(page)
    assert len(shown) == len(set(shown)), shown

    # Not actionable any more, and it says who resolved it.
    page.click(f"#alerts li[data-seq='{confirmed}']")
    page.wait_for_selector("#d-state:has-text('confirmed')")
    assert page.is_disabled("#ack") and page.is_disabled("#confirm")
    assert page.is_disabled("#reject")
    assert "handheld-2" in page.inner_text("#d-meta")
    page.click("#back")
    page.click(f"#alerts li[data-seq='{acknowledged}']")
    page.wait_for_selector("#d-state:has-text('acknowledged')")
    assert page.is_disabled("#ack") and page.is_enabled("#confirm")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "handheld-caught-up.png"))
    context.close()


def test_a_verdict_on_an_alert_handled_meanwhile_shows_who_handled_it(
    browser: Any, world: World
) -> None:
    seq = world.post_scan("cu-409")["alert"]["seq"]
    epoch = httpx.get(f"{world.server.base}/v1/alerts", headers=world.headers("inspector")).json()
    context = phone(browser, world, sign_in_as="inspector")
    page = context.new_page()
    # A stream that says hello and then stays silent for ten minutes: the page hears
    # of no update, as on a flaky hall Wi-Fi that holds the connection but drops data.
    hello = json.dumps({"epoch": epoch["epoch"], "last_seq": seq, "resume_after": None})
    streams = []

    def silent_stream(route: Any) -> None:
        streams.append(route.request.url)
        route.fulfill(
            status=200,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"},
            body=f"retry: 600000\nevent: hello\ndata: {hello}\n\n",
        )

    page.route("**/v1/alerts/stream*", silent_stream)
    page.goto("/handheld")
    page.click(f"#alerts li[data-seq='{seq}'].state-open", timeout=20_000)
    page.wait_for_selector("#d-state:has-text('open')")

    act(world, world.server.base, seq, "confirm")  # a colleague was quicker
    assert page.is_enabled("#reject")
    page.click("#reject")
    page.wait_for_selector("#d-error:has-text('Already confirmed by handheld-2')", timeout=10_000)
    page.wait_for_selector("#d-state:has-text('confirmed')")
    assert page.is_disabled("#confirm") and page.is_disabled("#reject")
    assert world.alert(seq)["state"] == "confirmed"  # the refused verdict changed nothing
    page.click("#back")
    page.wait_for_selector(f"#alerts li[data-seq='{seq}'].state-confirmed")
    assert len(streams) == 1, streams  # the page heard nothing but that hello
    context.close()
