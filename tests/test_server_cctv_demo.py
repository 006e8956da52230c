"""The CCTV part of ``serve run --demo``: cameras, a watch-list entry and looping sources.

The server (uvicorn in a thread, tiny untrained re-ID models) starts with the demo
feed on. A short synthetic two-camera sequence is generated beforehand where the
demo keeps it, so the demo reuses it instead of making its 30-second one. The
untrained embedder cannot tell people apart, so a low match threshold makes every
track a sighting: what is tested is the wiring, from the demo's cameras to re-ID
alerts on the stream the handhelds follow.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import server_cctv_helpers as ch
import server_helpers as h

from cv.inference_server.demo import cctv_demo_dir


def test_demo_plays_two_cameras_with_an_enrolled_traveller(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from cv.datasets.cctv import generate_sequences

    models = tmp_path_factory.getbasetemp() / "cctv-models"
    models.mkdir(exist_ok=True)
    settings = ch.cctv_settings(
        tmp_path, models, demo_feed=True, bootstrap_tokens=True, reid_match_threshold=0.5
    )
    scene = generate_sequences(
        cctv_demo_dir(settings.data_dir),
        cameras=2,
        seconds=3,
        fps=10,
        size=(320, 180),
        people=2,
        enrol=1,
        enrol_absent=0,
        enrol_images=2,
        seed=0,
        workers=1,
        progress=False,
    )
    server = ch.ThreadServer(settings)
    server.app.state.base_url = server.base  # where the X-ray feed would post
    with server:
        tokens = h.make_tokens(server.app)
        http = httpx.Client(base_url=server.base, timeout=30)

        def get(path: str, who: str = "admin", **params: object) -> dict:
            r = http.get(path, params=params, headers=tokens[who])
            assert r.status_code == 200, r.text
            return r.json()

        with ch.stream(server.base, "/v1/alerts/stream", tokens["inspector"], last_id=0) as events:
            alert = ch.next_event(events, "alert", timeout=60)["data"]
        assert alert["alert_kind"] == "reid" and alert["label"].startswith("DEMO-")
        assert alert["site"] == "ICN-T1 (synthetic)" and alert["camera_id"] in ("cam1", "cam2")

        cameras = {c["id"]: c for c in get("/v1/cameras")["cameras"]}
        assert set(cameras) == {"cam1", "cam2"}
        assert all(c["purpose"] == "customs-control" for c in cameras.values())
        (entry,) = get("/v1/watchlist/entries", list_name="demo")["entries"]
        assert entry["authorised_by"] == "demo" and entry["state"] == "active"
        assert entry["created_by"] == "demo" and entry["images"] >= 1
        sources = get("/v1/cctv/status")["sources"]
        assert {s["camera_id"] for s in sources} == {"cam1", "cam2"}
        assert all(s["loop"] and s["realtime"] and s["state"] == "running" for s in sources)
        assert {a["actor"] for a in get("/v1/audit", action="enrol")["entries"]} == {"demo"}
    assert (scene / "scene.json").is_file()
