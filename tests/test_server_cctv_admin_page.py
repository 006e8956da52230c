"""The watch-list admin page and the console's sightings panel, in real headless Chromium.

A real server (uvicorn in a thread, tiny real re-ID models, see ``server_cctv_helpers``)
gets its cameras over HTTP; the page enrols a person through its form (a refused
submission shows the server's error by its field and keeps what was typed), lists
the entry, revokes it with a reason and shows the audit line. A non-admin token is
refused with a message. Camera frames of an enrolled person make a sighting that
the reader console's sightings panel shows live to an inspector, and not to a reader.
A camera's stream is listed without its password.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import server_cctv_helpers as ch
import server_helpers as h

pytestmark = pytest.mark.slow

SHOTS = Path(os.environ.get("CV_TEST_SCREENSHOTS", "/tmp/pages"))
DESKTOP = {"viewport": {"width": 1440, "height": 1000}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    models = tmp_path_factory.getbasetemp() / "cctv-models"
    models.mkdir(exist_ok=True)
    settings = ch.cctv_settings(tmp_path_factory.mktemp("cctv-admin-page"), models)
    with ch.ThreadServer(settings) as srv:
        yield srv, h.make_tokens(srv.app)


def secret(tokens: dict[str, dict[str, str]], role: str) -> str:
    return tokens[role]["Authorization"].removeprefix("Bearer ")


def register(http: httpx.Client, tokens: Any, camera_id: str, purpose: str) -> None:
    camera = {"id": camera_id, "site": "ICN-T2", "location": "exit 4", "purpose": purpose}
    r = http.post("/v1/cameras", json=camera, headers=tokens["admin"])
    assert r.status_code == 201, r.text


def labels(http: httpx.Client, tokens: Any, label: str = "W-42") -> list[dict[str, Any]]:
    """The stored watch-list entries called ``label``."""
    r = http.get("/v1/watchlist/entries", headers=tokens["admin"])
    return [e for e in r.json()["entries"] if e["label"] == label]


def local_input(when: datetime) -> str:
    """A ``datetime-local`` input's value: local wall-clock time to the minute."""
    return when.strftime("%Y-%m-%dT%H:%M")


def test_watchlist_page_enrols_refuses_by_field_and_revokes(
    server: Any, browser: Any, tmp_path: Path
) -> None:
    srv, tokens = server
    http = httpx.Client(base_url=srv.base, timeout=60)
    register(http, tokens, "exit-4", "customs-control")
    register(http, tokens, "hall-cam", "crowd-counting")
    photo = tmp_path / "front.png"
    photo.write_bytes(ch.png(ch.person("a")))

    context = browser.new_context(**DESKTOP, base_url=srv.base)
    page = context.new_page()
    page.goto("/watchlist")
    page.fill("#token", secret(tokens, "admin"))
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)

    cameras = page.inner_text("#cameras tr[data-id='exit-4']").lower()
    assert "icn-t2" in cameras and "exit 4" in cameras and "customs-control" in cameras
    assert "yes" in cameras and "none" in cameras  # feeds the watch list; no video source
    assert "no" in page.inner_text("#cameras tr[data-id='hall-cam']").split()

    typed = {
        "#f-label": "W-42",
        "#f-list": "customs-high-risk",
        "#f-authorised": "Chief Inspector Kim, ICN customs",
        "#f-reason": "suspected courier of undeclared gold",
        "#f-legal": "Customs Act art. 265 (test)",
    }
    for selector, value in typed.items():
        page.fill(selector, value)
    page.fill("#f-expires", local_input(datetime.now() - timedelta(days=2)))
    page.set_input_files("#f-images", str(photo))
    page.click("#enrol-submit")
    # The server's answer names the field; it shows beside that field, and nothing typed is lost.
    page.wait_for_selector("#enrol-error:has-text('is not in the future')", timeout=10_000)
    assert page.inner_text("#enrol-error").startswith("expires_at: ")
    assert "is not in the future" in page.inner_text(".field-error[data-for=expires_at]")
    assert page.get_attribute("#f-expires", "aria-invalid") == "true"
    for selector, value in typed.items():
        assert page.input_value(selector) == value, selector
    assert page.eval_on_selector("#f-images", "e => e.files.length") == 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "watchlist-enrol-error-desktop.png"))
    assert labels(http, tokens) == []  # refused: nothing stored

    page.fill("#f-expires", local_input(datetime.now() + timedelta(days=3)))
    page.click("#enrol-submit")
    page.wait_for_selector("#enrol-done:has-text('Enrolled W-42')", timeout=15_000)
    assert page.input_value("#f-label") == "" and page.inner_text("#enrol-error") == ""
    assert page.get_attribute("#f-expires", "aria-invalid") is None
    (entry,) = labels(http, tokens)
    assert entry["list_name"] == "customs-high-risk"
    assert entry["authorised_by"] == "Chief Inspector Kim, ICN customs"
    row = f"#entries tr[data-id='{entry['id']}']"
    page.wait_for_selector(f"{row}[data-state=active]", timeout=10_000)
    text = page.inner_text(row)
    for value in typed.values():
        assert value in text
    page.wait_for_function(
        f'() => document.querySelector("{row} img.thumb").naturalWidth > 0', timeout=10_000
    )
    page.screenshot(path=str(SHOTS / "watchlist-desktop.png"), full_page=True)

    page.click(f"{row} button[data-revoke]")
    page.wait_for_selector("#revoke-dialog[open]")
    page.click("#revoke-submit")  # no reason: refused before anything is sent
    assert "reason: required" in page.inner_text("#revoke-error")
    page.fill("#revoke-reason", "authorisation withdrawn by the prosecutor")
    page.click("#revoke-submit")
    page.wait_for_selector(f"{row}[data-state=revoked]", timeout=10_000)
    assert page.query_selector("#revoke-dialog[open]") is None
    assert "authorisation withdrawn by the prosecutor" in page.inner_text(row)
    assert page.query_selector(f"{row} button[data-revoke]") is None
    # The audit log, newest first: the revocation on top, the enrolment below it.
    page.wait_for_selector("#audit tbody tr:first-child[data-action=revoke]", timeout=10_000)
    top = page.inner_text("#audit tbody tr:first-child")
    assert entry["id"] in top and "test-admin" in top and "authorisation withdrawn" in top
    actions = page.eval_on_selector_all("#audit tbody tr", "rs => rs.map(r => r.dataset.action)")
    assert actions.index("revoke") < actions.index("enrol")

    page.select_option("#state-filter", "active")
    page.wait_for_selector(row, state="detached", timeout=10_000)
    page.select_option("#state-filter", "revoked")
    page.wait_for_selector(row, timeout=10_000)
    context.close()

    # What the page reads: the audit log newest first, paging back with before_id.
    def audit(**params: Any) -> httpx.Response:
        return http.get("/v1/audit", params=params, headers=tokens["admin"])

    newest = audit(order="desc", limit=2).json()["entries"]
    assert [a["action"] for a in newest] == ["revoke", "enrol"]
    older = audit(order="desc", before_id=newest[-1]["id"], action="camera").json()["entries"]
    assert [a["camera_id"] for a in older][:2] == ["hall-cam", "exit-4"]
    r = audit(before_id=newest[-1]["id"])
    assert r.status_code == 422 and r.json()["field"] == "before_id"


def test_watchlist_page_refuses_a_non_admin_token(server: Any, browser: Any) -> None:
    srv, tokens = server
    context = browser.new_context(**DESKTOP, base_url=srv.base)
    page = context.new_page()
    page.goto("/watchlist")
    page.fill("#token", secret(tokens, "inspector"))
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#signin-error:has-text('needs an admin token')", timeout=10_000)
    assert "inspector token" in page.inner_text("#signin-error")
    assert page.is_hidden("#admin-view") and page.is_visible("#signin")

    # Signed in elsewhere as a reader (the cookie): the page says why instead of loading.
    assert context.request.post("/v1/session", data={"token": secret(tokens, "reader")}).ok
    page.goto("/watchlist")
    page.wait_for_selector("#signin-error:has-text('reader token')", timeout=10_000)
    assert page.is_hidden("#admin-view")
    context.close()


def test_console_lists_sightings_live_for_inspectors_only(server: Any, browser: Any) -> None:
    srv, tokens = server
    http = httpx.Client(base_url=srv.base, timeout=60)
    register(http, tokens, "belt-7", "customs-control")
    person = ch.person("c")
    files = [("images", ("ref.png", ch.png(person), "image/png"))]
    form = ch.enrol_form(label="W-77")
    r = http.post("/v1/watchlist/entries", files=files, data=form, headers=tokens["admin"])
    assert r.status_code == 201, r.text

    reader = browser.new_context(**DESKTOP, base_url=srv.base)
    assert reader.request.post("/v1/session", data={"token": secret(tokens, "reader")}).ok
    reader_page = reader.new_page()
    reader_page.goto("/console")
    reader_page.wait_for_selector("#conn[data-state=live]", timeout=15_000)

    context = browser.new_context(**DESKTOP, base_url=srv.base)
    assert context.request.post("/v1/session", data={"token": secret(tokens, "inspector")}).ok
    page = context.new_page()
    page.goto("/console")
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    page.wait_for_selector("#s-conn:has-text('live')", timeout=15_000)
    assert page.is_visible("#sightings-panel")

    t0 = time.time()
    for i in range(4):
        r = http.post(
            "/v1/cameras/belt-7/frames",
            content=ch.png(person),
            params={"timestamp": t0 + i / 10},
            headers={**tokens["camera"], "Content-Type": "image/png"},
        )
        assert r.status_code == 200, r.text
    item = page.wait_for_selector("#sightings li[data-state=candidate]", timeout=20_000)
    text = item.inner_text()
    assert "W-77" in text and "camera belt-7" in text and "1.00" in text
    assert "candidate" in text.lower()
    page.wait_for_function(
        "() => document.querySelector('#sightings li img.thumb').naturalWidth > 0",
        timeout=10_000,
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "console-sightings-desktop.png"))

    # An inspector's verdict (here through the API) reaches the panel on the stream.
    sighting_id = item.get_attribute("data-id")
    r = http.post(f"/v1/sightings/{sighting_id}/confirm", headers=tokens["inspector"])
    assert r.status_code == 200, r.text
    page.wait_for_selector(
        f"#sightings li[data-id='{sighting_id}'][data-state=confirmed]", timeout=10_000
    )

    # A reader's console has no sightings panel (readers may not read sightings).
    assert reader_page.is_hidden("#sightings-panel")
    assert reader_page.query_selector("#sightings li") is None
    reader.close()

    # The watch-list page lists it too, with its crop, for the admin.
    assert context.request.post("/v1/session", data={"token": secret(tokens, "admin")}).ok
    page.goto("/watchlist")
    listed = page.wait_for_selector(f"#sightings li[data-id='{sighting_id}']", timeout=10_000)
    text = listed.inner_text().lower()
    assert "w-77" in text and "camera belt-7" in text and "confirmed" in text
    context.close()


def test_watchlist_page_shows_a_stream_without_its_password(
    server: Any, browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv, tokens = server
    http = httpx.Client(base_url=srv.base, timeout=60)
    register(http, tokens, "gate-9", "customs-control")
    released = threading.Event()

    class QuietStream:  # opens, then waits for a frame until the test ends
        def __init__(self, source: str, *, fps: float | None = None) -> None:
            self.fps, self.frame_count = 10.0, None

        def __iter__(self) -> Any:
            released.wait(30)
            return iter(())

        def close(self) -> None:
            pass

    monkeypatch.setattr("cv.models.cctv.VideoReader", QuietStream)
    body = {"url": "rtsp://cam:s3cret-pw@10.0.0.5/stream1"}
    r = http.put("/v1/cameras/gate-9/source", json=body, headers=tokens["admin"])
    assert r.status_code == 200, r.text
    try:
        context = browser.new_context(**DESKTOP, base_url=srv.base)
        assert context.request.post("/v1/session", data={"token": secret(tokens, "admin")}).ok
        page = context.new_page()
        page.goto("/watchlist")
        row = page.wait_for_selector("#cameras tr[data-id='gate-9']", timeout=15_000)
        assert "rtsp://cam:***@10.0.0.5/stream1" in row.inner_text()
        assert "s3cret" not in page.content()
        context.close()
    finally:
        released.set()
        assert http.delete("/v1/cameras/gate-9/source", headers=tokens["admin"]).status_code == 200
