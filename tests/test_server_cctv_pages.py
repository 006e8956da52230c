"""A re-ID alert on the handheld page, in real headless Chromium against a real server.

The server (uvicorn in a thread, tiny real re-ID models, see ``server_cctv_helpers``)
gets a watch-list entry and camera frames of that person over HTTP; the handheld
shows the sighting's alert as a re-ID candidate, draws the person's box over the
camera frame, shows the enrolment photo beside the camera's crop, and its "Same
person" button confirms the sighting.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import server_cctv_helpers as ch
import server_helpers as h
from browser_helpers import PHONE, is_box, scan_pixel

pytestmark = pytest.mark.slow

SHOTS = Path(os.environ.get("CV_TEST_SCREENSHOTS", "/tmp/pages"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    models = tmp_path_factory.getbasetemp() / "cctv-models"
    models.mkdir(exist_ok=True)
    settings = ch.cctv_settings(tmp_path_factory.mktemp("cctv-pages"), models)
    with ch.ThreadServer(settings) as srv:
        yield srv, h.make_tokens(srv.app)


def test_handheld_shows_a_reid_alert_and_confirms_the_same_person(
    server: Any, browser: Any
) -> None:

    srv, tokens = server
    http = httpx.Client(base_url=srv.base, timeout=60)
    camera = {"id": "belt-1", "site": "ICN-T1", "location": "belt 1", "purpose": "customs-control"}
    assert http.post("/v1/cameras", json=camera, headers=tokens["admin"]).status_code == 201
    person = ch.person("a")
    files = [("images", ("ref.png", ch.png(person), "image/png"))]
    r = http.post(
        "/v1/watchlist/entries", files=files, data=ch.enrol_form(), headers=tokens["admin"]
    )
    assert r.status_code == 201, r.text

    context = browser.new_context(**PHONE, is_mobile=True, has_touch=True, base_url=srv.base)
    secret = tokens["inspector"]["Authorization"].removeprefix("Bearer ")
    assert context.request.post("/v1/session", data={"token": secret}).status == 200
    page = context.new_page()
    page.goto("/handheld")
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)

    t0 = time.time()
    for i in range(4):
        r = http.post(
            "/v1/cameras/belt-1/frames",
            content=ch.png(person),
            params={"timestamp": t0 + i / 10},
            headers={**tokens["camera"], "Content-Type": "image/png"},
        )
        assert r.status_code == 200, r.text
    item = page.wait_for_selector("#alerts li[data-kind='reid']", timeout=20_000)
    text = item.inner_text().lower()
    assert "watch-list w-17" in text and "1.00" in text
    assert "re-id · candidate" in text and "camera belt-1" in text
    assert "icn-t1 · belt 1" in text
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "handheld-reid-list-phone.png"))

    item.click()
    page.wait_for_selector("#d-image-note:has-text('person box drawn to scale')", timeout=10_000)
    assert page.inner_text("#d-notice") == "candidate — confirm identity before any action"
    assert page.inner_text("#confirm") == "Same person"
    assert page.inner_text("#reject") == "Not the same person"
    assert page.is_hidden("#d-correct") and page.is_visible("#d-compare")
    assert "camera belt-1" in page.inner_text("#d-image-note")
    facts = page.inner_text("#d-meta")
    assert "customs-high-risk" in facts and "belt-1" in facts and "threshold 0.99" in facts
    reasons = page.inner_text("#d-reasons")
    assert "watch-list W-17: similarity 1.00 >= threshold 0.99, camera belt-1" in reasons
    page.wait_for_function(
        "() => ['d-ref', 'd-crop'].every(id => document.getElementById(id).naturalWidth > 0)",
        timeout=10_000,
    )
    # The person's box, the whole 160 x 240 frame here, drawn just inside its edges.
    width, height = page.evaluate(
        "() => { const c = document.getElementById('scan'); return [c.width, c.height]; }"
    )
    assert abs(width / height - 160 / 240) < 0.01

    def pixel(x: float, y: float) -> tuple[int, ...]:
        return scan_pixel(page, x, y)

    assert is_box(pixel(3, height / 2)) and is_box(pixel(width - 4, height / 2))
    assert not is_box(pixel(width / 2, height / 2))
    page.screenshot(path=str(SHOTS / "handheld-reid-alert-phone.png"))

    page.click("#confirm")
    page.wait_for_selector("#d-state:has-text('confirmed')", timeout=10_000)
    (sighting,) = http.get(
        "/v1/sightings", params={"camera_id": "belt-1"}, headers=tokens["inspector"]
    ).json()["sightings"]
    assert sighting["state"] == "confirmed" and sighting["resolved_by"] == "test-inspector"
    audit = http.get("/v1/audit", params={"action": "confirm"}, headers=tokens["admin"]).json()[
        "entries"
    ]
    assert [a["sighting_id"] for a in audit] == [sighting["id"]]
    context.close()
