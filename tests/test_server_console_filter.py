"""The reader console's site / lane filter, in real headless Chromium: what is typed
applies only when submitted, and the submitted filter is kept across a reload.

The server runs without a model (the console only reads scans); the scans are
stored as a second server process would store them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import server_helpers as helpers

from cv.inference_server import db
from cv.inference_server.storage import ImageStore

pytestmark = pytest.mark.slow

SCANS = {  # id -> (site, lane)
    "t1-a": ("ICN-T1", "L1"),
    "t1-b": ("ICN-T1", "L2"),
    "cargo-a": ("ICN-CARGO", "C1"),
    "cargo-b": ("ICN-CARGO", "C2"),
}


def store_scans(url: str, data_dir: Path) -> None:
    from cv.image import encode_png

    stored = ImageStore(data_dir).save(
        encode_png(np.full((120, 160, 3), 128, np.uint8)), "image/png"
    )
    engine = db.make_engine(url)
    try:
        with db.session_factory(engine)() as session, session.begin():
            for scan_id, (site, lane) in SCANS.items():
                session.add(
                    db.Scan(
                        id=scan_id,
                        site=site,
                        lane=lane,
                        kind="cabin_bag",
                        image_sha256=stored.sha256,
                        image_path=stored.path,
                        content_type="image/png",
                        width=160,
                        height=120,
                        status="done",
                        attempts=1,
                    )
                )
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server without a model holding :data:`SCANS`; ``(base URL, reader token)``."""
    tmp = tmp_path_factory.mktemp("console-filter")
    url, secrets = helpers.sqlite_with_tokens(tmp / "server.db", {"reader-1": "reader"})
    reader = secrets["reader-1"]
    store_scans(url, tmp / "images")
    env = {
        **os.environ,
        "CV_SERVER_DATABASE_URL": url,
        "CV_SERVER_DATA_DIR": str(tmp / "images"),
        "CV_SERVER_MODEL_DIR": str(tmp / "no-model"),
        "CV_SERVER_REID_MODEL_DIR": str(tmp / "no-reid-model"),
    }
    proc, base = helpers.serve_process(tmp, env)
    try:
        yield base, reader
    finally:
        helpers.stop_process(proc)


def shown(page: Any) -> set[str]:
    return set(page.eval_on_selector_all("#scans li", "els => els.map(e => e.dataset.id)"))


def wait_shown(page: Any, ids: set[str], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while shown(page) != ids:
        assert time.monotonic() < deadline, (shown(page), ids)
        time.sleep(0.1)


def test_typing_does_not_filter_and_a_submitted_filter_survives_a_reload(
    browser: Any, server: tuple[str, str]
) -> None:
    base, reader = server
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=base)
    r = context.request.post("/v1/session", data={"token": reader})
    assert r.status == 200, r.text()
    page = context.new_page()
    polled: list[dict[str, list[str]]] = []  # the query of every scan-list poll

    def on_request(request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.path == "/v1/scans":
            polled.append(parse_qs(parts.query))

    page.on("request", on_request)
    page.goto("/console")
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    wait_shown(page, set(SCANS))

    # Half a site typed, not submitted: the feed and the polls stay unfiltered.
    page.fill("#site", "ICN-T")
    typed_at = len(polled)
    page.wait_for_timeout(3500)  # three polls or so (events arrive while Playwright waits)
    assert len(polled) > typed_at, "the console stopped polling"
    assert all("site" not in q for q in polled[typed_at:]), polled[typed_at:]
    assert shown(page) == set(SCANS)
    assert "site=" not in page.url
    assert page.evaluate("localStorage.getItem('cv.console.site')") in (None, "")

    # Submitted: filtered, in the address bar and remembered.
    page.fill("#site", "ICN-CARGO")
    page.click("#filter button[type=submit]")
    wait_shown(page, {"cargo-a", "cargo-b"})
    assert "site=ICN-CARGO" in page.url
    assert page.evaluate("localStorage.getItem('cv.console.site')") == "ICN-CARGO"

    # Another site typed over it, not submitted: the submitted filter stays in force.
    page.fill("#site", "ICN-T1")
    typed_at = len(polled)
    page.wait_for_timeout(2500)
    assert all(q.get("site") == ["ICN-CARGO"] for q in polled[typed_at:]), polled[typed_at:]
    assert shown(page) == {"cargo-a", "cargo-b"}

    # A reload keeps the submitted filter (from the address bar)...
    page.reload()
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    wait_shown(page, {"cargo-a", "cargo-b"})
    assert page.input_value("#site") == "ICN-CARGO"
    # ...and so does opening the console afresh (from this browser's storage).
    page.goto("/console")
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    wait_shown(page, {"cargo-a", "cargo-b"})
    assert page.input_value("#site") == "ICN-CARGO"

    # Clearing applies at once.
    page.click("#clear")
    wait_shown(page, set(SCANS))
    assert page.evaluate("localStorage.getItem('cv.console.site')") == ""
    context.close()
