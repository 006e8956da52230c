"""Alerts: thresholds, the outbox's sequence, SSE / WebSocket delivery, verdicts, escalation.

The delivery tests run the alert router in a real uvicorn server on 127.0.0.1 (a
thread of the test process) and raise alerts the way the scan service does:
``raise_alert`` in a transaction, commit, ``notify``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import server_helpers as helpers
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker
from websockets.sync.client import connect as ws_connect

from cv.inference_server import alerts, db
from cv.inference_server.api_alerts import router
from cv.inference_server.auth import create_token
from cv.inference_server.deps import Services
from cv.inference_server.settings import ServerSettings
from cv.records import Detection

THRESHOLDS = {"knife": 0.5, "gun": 0.3}


# --------------------------------------------------------------------------- helpers


def make_sessions(tmp_path: Path) -> tuple[str, sessionmaker]:
    url = f"sqlite:///{tmp_path / 'server.db'}"
    engine = db.make_engine(url)
    db.migrate(engine)
    return url, db.session_factory(engine)


def add_scan(
    sessions: sessionmaker, scan_id: str, *, site: str = "ICN", lane: str = "1"
) -> db.Scan:
    with sessions() as session:
        scan = db.Scan(
            id=scan_id,
            site=site,
            lane=lane,
            kind="hold_bag",
            bag_tag=f"TAG-{scan_id}",
            image_sha256="0" * 64,
            image_path=f"{scan_id}.png",
            content_type="image/png",
            width=640,
            height=480,
            status="pending",
            attempts=0,
        )
        session.add(scan)
        session.commit()
        return scan


def raise_for(
    sessions: sessionmaker,
    scan_id: str,
    *,
    site: str = "ICN",
    lane: str = "1",
    service: alerts.AlertService | None = None,
    ack_deadline_s: float = 60.0,
) -> int:
    """Stores a scan and raises its alert as the scan service does; returns the seq."""
    scan = add_scan(sessions, scan_id, site=site, lane=lane)
    with sessions() as session:
        alert = alerts.raise_alert(
            session,
            scan=scan,
            detections=[Detection((10.0, 20.0, 110.0, 220.0), "knife", 3, 0.9)],
            thresholds=THRESHOLDS,
            overlay_url=f"/v1/scans/{scan_id}/overlay.png",
            ack_deadline_s=ack_deadline_s,
        )
        assert alert is not None
        session.commit()
    if service is not None:
        service.notify(alert.seq)
    return alert.seq


def build_app(settings: ServerSettings) -> FastAPI:
    """The alert router in an app with the lifespan the server's factory gives it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = db.make_engine(settings.database_url)
        db.migrate(engine)
        sessions = db.session_factory(engine)
        service = alerts.AlertService(settings, sessions)
        app.state.services = Services(
            settings=settings,
            engine=engine,
            sessions=sessions,
            data_dir=settings.data_dir,
            extra={"alerts": service},
        )
        await service.start()
        yield
        await service.stop()
        engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.include_router(router)
    return app


@dataclass
class Live:
    url: str
    app: FastAPI
    sessions: sessionmaker
    tokens: dict[str, str]

    @property
    def service(self) -> alerts.AlertService:
        return self.app.state.services.alerts

    def headers(self, role: str = "inspector", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}", **extra}


@contextmanager
def live_server(tmp_path: Path, **overrides: object) -> Iterator[Live]:
    url, sessions = make_sessions(tmp_path)
    tokens = {}
    with sessions() as session:
        for role in ("scanner", "reader", "inspector", "admin"):
            tokens[role] = create_token(session, name=f"{role}-1", role=role)
    settings = ServerSettings(
        database_url=url, data_dir=tmp_path / "images", sse_keepalive_s=0.3, **overrides
    )
    app = build_app(settings)
    port = helpers.free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield Live(f"http://127.0.0.1:{port}", app, sessions, tokens)
    finally:
        server.should_exit = True
        thread.join(15)


def sse_events(response: httpx.Response) -> Iterator[dict]:
    """Parses an event stream into dicts: ``event``, ``id``, ``data`` (JSON), ``retry``;
    comment lines come as ``{"comment": text}``."""
    event: dict = {}
    for line in response.iter_lines():
        if line == "":
            if event:
                if "data" in event:
                    event["data"] = json.loads(event["data"])
                yield event
                event = {}
            continue
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        event[name] = event[name] + "\n" + value if name in event else value


def next_event(events: Iterator[dict], *, skip_comments: bool = True) -> dict:
    for event in events:
        if skip_comments and "comment" in event:
            continue
        return event
    raise AssertionError("stream ended")


def until_quiet(events: Iterator[dict]) -> list[dict]:
    """Events up to the next keep-alive comment: sent only after a silence, so
    everything queued before it has arrived."""
    got = []
    for event in events:
        if "comment" in event:
            return got
        got.append(event)
    raise AssertionError("stream ended")


# --------------------------------------------------------------------------- raising


def test_threshold_at_passes_below_does_not_and_unknown_classes_never(tmp_path):
    dets = [
        Detection((0, 0, 10, 10), "knife", 3, 0.5),  # exactly at the threshold: alerts
        Detection((0, 0, 10, 10), "knife", 3, 0.4999),  # just below: does not
        Detection((0, 0, 10, 10), "gun", 0, 0.31),
        Detection((0, 0, 10, 10), "laptop", 21, 0.99),  # no threshold: never
    ]
    assert alerts.passing_detections(dets, THRESHOLDS) == [dets[0], dets[2]]

    _, sessions = make_sessions(tmp_path)
    scan = add_scan(sessions, "s1", site="PUS", lane="7")
    with sessions() as session:
        none = alerts.raise_alert(
            session,
            scan=scan,
            detections=[dets[1], dets[3]],
            thresholds=THRESHOLDS,
            overlay_url="/o.png",
            ack_deadline_s=30,
        )
        assert none is None
        alert = alerts.raise_alert(
            session,
            scan=scan,
            detections=dets,
            thresholds=THRESHOLDS,
            overlay_url="/o.png",
            ack_deadline_s=30,
            reasons=["declaration risk red: undervalued"],
        )
        session.commit()
    assert alert is not None and alert.seq == 1  # the first raise took no number
    p = alert.payload
    assert (p["scan_id"], p["site"], p["lane"], p["kind"]) == ("s1", "PUS", "7", "hold_bag")
    assert (p["width"], p["height"], p["bag_tag"]) == (640, 480, "TAG-s1")
    assert p["overlay_url"] == "/o.png" and p["image_url"] == "/v1/scans/s1/image"
    assert [(b["category"], b["score"]) for b in p["boxes"]] == [("knife", 0.5), ("gun", 0.31)]
    assert p["boxes"][0]["box"] == [0.0, 0.0, 10.0, 10.0]
    assert p["reasons"] == [
        "knife 0.50 >= operating point 0.50",
        "gun 0.31 >= operating point 0.30",
        "declaration risk red: undervalued",
    ]
    with sessions() as session:
        stored = session.get(db.Alert, 1)
        assert stored.state == "open" and not stored.escalated
        deadline = alerts._aware(stored.ack_deadline) - alerts._aware(stored.created_at)
        assert deadline.total_seconds() == pytest.approx(30)
        events = alerts.alert_events(session, 1)
        assert [e.event for e in events] == ["created"]


def test_sequence_numbers_are_unique_and_increasing_under_concurrent_raisers(tmp_path):
    _, sessions = make_sessions(tmp_path)
    for t in range(4):
        for i in range(10):
            add_scan(sessions, f"t{t}-{i}")
    got: dict[int, list[int]] = {}

    def raiser(t: int) -> None:
        seqs = []
        for i in range(10):
            with sessions() as session:
                scan = session.get(db.Scan, f"t{t}-{i}")
                alert = alerts.raise_alert(
                    session,
                    scan=scan,
                    detections=[Detection((1, 1, 5, 5), "gun", 0, 0.9)],
                    thresholds=THRESHOLDS,
                    overlay_url="/o.png",
                    ack_deadline_s=60,
                )
                session.commit()
                seqs.append(alert.seq)
        got[t] = seqs

    threads = [threading.Thread(target=raiser, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for seqs in got.values():
        assert seqs == sorted(seqs) and len(set(seqs)) == 10  # each raiser sees them increase
    assert sorted(s for seqs in got.values() for s in seqs) == list(range(1, 41))
    with sessions() as session:
        counter = session.get(db.Counter, "alert_seq")
        assert counter.value == 40
        assert session.scalar(select(db.Alert.seq).order_by(db.Alert.seq.desc())) == 40


# --------------------------------------------------------------------------- delivery


def test_sse_replays_after_last_event_id_then_pushes_live_alerts_filtered(tmp_path):
    with live_server(tmp_path) as live:
        s1 = raise_for(live.sessions, "a1", site="ICN", lane="1")
        s2 = raise_for(live.sessions, "a2", site="ICN", lane="2")
        s3 = raise_for(live.sessions, "a3", site="GMP", lane="1")
        s4 = raise_for(live.sessions, "a4", site="ICN", lane="1")
        assert (s1, s2, s3, s4) == (1, 2, 3, 4)
        headers = live.headers(**{"Last-Event-ID": str(s1)})
        with (
            httpx.Client(base_url=live.url, timeout=10) as client,
            client.stream(
                "GET", "/v1/alerts/stream", params={"site": "ICN"}, headers=headers
            ) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse_events(response)
            hello = next_event(events)
            assert hello["event"] == "hello" and hello["retry"] == "3000"
            assert "id" not in hello
            assert hello["data"]["epoch"] == live.service.epoch > 0
            assert hello["data"]["last_seq"] == 4 and hello["data"]["resume_after"] == 1
            # Replay: ICN alerts after seq 1, in seq order, then the stream goes quiet.
            replay = until_quiet(events)
            assert [(e["event"], e["id"]) for e in replay] == [("alert", "2"), ("alert", "4")]
            assert replay[0]["data"]["scan_id"] == "a2"
            assert replay[0]["data"]["state"] == "open"
            assert replay[0]["data"]["escalated"] is False
            # Live: pushed at commit (notify), long before the 0.5 s poll would find it.
            t0 = time.monotonic()
            raise_for(live.sessions, "a5", site="GMP", service=live.service)  # filtered out
            s6 = raise_for(live.sessions, "a6", site="ICN", lane="9", service=live.service)
            live_events = until_quiet(events)
            assert [e["id"] for e in live_events] == [str(s6)]
            assert live_events[0]["data"]["lane"] == "9"
            assert time.monotonic() - t0 < 5  # generous: the machine is busy training
            # Keep-alive comments keep flowing while nothing happens.
            comment = next(e for e in events if "comment" in e)
            assert comment == {"comment": "keep-alive"}


def test_sse_site_and_lane_filter_query_last_id_and_default_replay(tmp_path):
    with live_server(tmp_path) as live:
        for i, (site, lane) in enumerate([("ICN", "1"), ("ICN", "2"), ("ICN", "1")]):
            raise_for(live.sessions, f"b{i}", site=site, lane=lane)
        with live.sessions() as session:
            alerts.reject(session, 1, actor="someone")
        with httpx.Client(base_url=live.url, timeout=10) as client:
            # ?last_id= for clients that cannot set headers; site and lane both filter.
            params = {"site": "ICN", "lane": "1", "last_id": "0", "token": live.tokens["admin"]}
            with client.stream("GET", "/v1/alerts/stream", params=params) as response:
                events = sse_events(response)
                assert next_event(events)["event"] == "hello"
                # The reject above, committed outside the server, may also arrive as an
                # update (no id) once the poll finds it; the replay is the alerts.
                replay = [e for e in until_quiet(events) if e["event"] == "alert"]
                assert [e["id"] for e in replay] == ["1", "3"]
                assert replay[0]["data"]["state"] == "rejected"  # replays carry current states
            # No last id at all: only the alerts still awaiting action.
            params = {"token": live.tokens["inspector"]}
            with client.stream("GET", "/v1/alerts/stream", params=params) as response:
                events = sse_events(response)
                next_event(events)
                # (The reject above, committed outside the server, may also arrive as an
                # update once the poll finds it.)
                got = [e["id"] for e in until_quiet(events) if e["event"] == "alert"]
                assert got == ["2", "3"]
            # The header wins over the query parameter.
            headers = live.headers(**{"Last-Event-ID": "2"})
            with client.stream(
                "GET", "/v1/alerts/stream", params={"last_id": 0}, headers=headers
            ) as response:
                events = sse_events(response)
                next_event(events)
                assert [e["id"] for e in until_quiet(events) if e["event"] == "alert"] == ["3"]
            bad = client.get("/v1/alerts/stream", headers=live.headers(**{"Last-Event-ID": "x"}))
            assert bad.status_code == 422 and "Last-Event-ID" in bad.json()["detail"]


def test_streams_need_an_inspector_or_admin_token(tmp_path):
    with live_server(tmp_path) as live:
        with httpx.Client(base_url=live.url, timeout=10) as client:
            assert client.get("/v1/alerts/stream").status_code == 401
            bad = client.get("/v1/alerts/stream", params={"token": "cvt_nope"})
            assert bad.status_code == 401
            for role in ("reader", "scanner"):
                r = client.get("/v1/alerts/stream", headers=live.headers(role))
                assert r.status_code == 403 and "alerts:read" in r.json()["detail"]
            r = client.post("/v1/alerts/1/ack", headers=live.headers("reader"))
            assert r.status_code == 403
        port = live.url.rsplit(":", 1)[1]
        with ws_connect(f"ws://127.0.0.1:{port}/v1/alerts/ws?token=cvt_nope") as ws:
            msg = json.loads(ws.recv(timeout=10))
            assert msg["event"] == "error" and "token" in msg["detail"]


def test_websocket_replays_and_pushes_the_same_messages(tmp_path):
    with live_server(tmp_path) as live:
        raise_for(live.sessions, "w1", site="ICN", lane="1")
        raise_for(live.sessions, "w2", site="ICN", lane="2")
        port = live.url.rsplit(":", 1)[1]
        token = live.tokens["inspector"]
        url = f"ws://127.0.0.1:{port}/v1/alerts/ws?site=ICN&lane=1&last_id=0&token={token}"
        with ws_connect(url) as ws:
            hello = json.loads(ws.recv(timeout=10))
            assert hello["event"] == "hello" and hello["data"]["epoch"] == live.service.epoch
            first = json.loads(ws.recv(timeout=10))
            assert (first["event"], first["id"], first["data"]["scan_id"]) == ("alert", 1, "w1")
            raise_for(live.sessions, "w3", site="ICN", lane="2", service=live.service)
            s4 = raise_for(live.sessions, "w4", site="ICN", lane="1", service=live.service)
            msg = json.loads(ws.recv(timeout=10))
            assert (msg["event"], msg["id"], msg["data"]["scan_id"]) == ("alert", s4, "w4")
            assert json.loads(ws.recv(timeout=10))["event"] == "keepalive"
        bad = f"ws://127.0.0.1:{port}/v1/alerts/ws?last_id=-3&token={token}"
        with ws_connect(bad) as ws:
            msg = json.loads(ws.recv(timeout=10))
            assert msg["event"] == "error" and msg["detail"].startswith("last_id")


# --------------------------------------------------------------------------- verdicts


def test_acknowledge_confirm_reject_state_machine_and_errors(tmp_path):
    with live_server(tmp_path) as live:
        s1 = raise_for(live.sessions, "v1")
        s2 = raise_for(live.sessions, "v2")
        s3 = raise_for(live.sessions, "v3")
        h = live.headers()
        with httpx.Client(base_url=live.url, timeout=10, headers=h) as client:
            with client.stream("GET", "/v1/alerts/stream", params={"last_id": s3}) as stream:
                events = sse_events(stream)
                next_event(events)  # hello; nothing to replay after s3

                r = client.post(f"/v1/alerts/{s1}/ack")
                assert r.status_code == 200
                assert r.json()["state"] == "acknowledged"
                assert r.json()["acknowledged_by"] == "inspector-1"
                update = next_event(events)
                assert update["event"] == "update" and "id" not in update  # resume point stays
                assert (update["data"]["seq"], update["data"]["change"]) == (s1, "acknowledged")

                r = client.post(f"/v1/alerts/{s1}/ack")
                assert r.status_code == 409 and "acknowledged" in r.json()["detail"]

                # Corrected boxes are checked against the 640x480 image and the taxonomy.
                outside = {"boxes": [{"box": [600, 10, 700, 50], "category": "knife"}]}
                r = client.post(f"/v1/alerts/{s1}/confirm", json=outside)
                assert r.status_code == 422 and r.json()["detail"].startswith("boxes[0].box")
                unknown = {
                    "boxes": [
                        {"box": [1, 1, 5, 5], "category": "knife"},
                        {"box": [1, 1, 5, 5], "category": "sword"},
                    ]
                }
                r = client.post(f"/v1/alerts/{s1}/confirm", json=unknown)
                assert r.status_code == 422 and r.json()["detail"].startswith("boxes[1].category")
                r = client.post(f"/v1/alerts/{s1}/confirm", json={"boxes": []})
                assert r.status_code == 422 and r.json()["detail"].startswith("boxes")
                r = client.post(f"/v1/alerts/{s1}/confirm", json={"boxes": [{"box": [1, 2]}]})
                assert r.status_code == 422  # shape errors: FastAPI's own 422, naming the field
                assert any("box" in e["loc"] for e in r.json()["detail"])

                good = {"boxes": [{"box": [12, 22, 108, 200], "category": "knife"}], "note": "ok"}
                r = client.post(f"/v1/alerts/{s1}/confirm", json=good)
                assert r.status_code == 200
                body = r.json()
                assert body["state"] == "confirmed" and body["resolved_by"] == "inspector-1"
                assert body["verdict"] == {
                    "verdict": "confirmed",
                    "boxes": [{"box": [12.0, 22.0, 108.0, 200.0], "category": "knife"}],
                    "note": "ok",
                }
                assert next_event(events)["data"]["change"] == "confirmed"

                assert client.post(f"/v1/alerts/{s1}/confirm").status_code == 409
                r = client.post(f"/v1/alerts/{s1}/reject", json={"note": "late"})
                assert r.status_code == 409 and "confirmed" in r.json()["detail"]

                # Reject straight from open; confirm without a body keeps the model's boxes.
                r = client.post(f"/v1/alerts/{s2}/reject", json={"note": "a hair dryer"})
                assert r.json()["state"] == "rejected"
                assert r.json()["verdict"]["note"] == "a hair dryer"
                r = client.post(f"/v1/alerts/{s3}/confirm")
                assert r.json()["verdict"] == {"verdict": "confirmed", "boxes": None, "note": None}

                for path in ("ack", "confirm", "reject"):
                    r = client.post(f"/v1/alerts/999/{path}")
                    assert r.status_code == 404 and "999" in r.json()["detail"]
                assert client.get("/v1/alerts/999").status_code == 404

            r = client.get(f"/v1/alerts/{s1}")
            trail = [(e["event"], e["actor"]) for e in r.json()["events"]]
            assert trail == [
                ("created", None),
                ("acknowledged", "inspector-1"),
                ("confirmed", "inspector-1"),
            ]
            listed = client.get("/v1/alerts", params={"state": "open,acknowledged"}).json()
            assert listed["alerts"] == [] and listed["epoch"] == live.service.epoch
            listed = client.get("/v1/alerts", params={"after_seq": 1, "limit": 1}).json()
            assert [a["seq"] for a in listed["alerts"]] == [2]
            r = client.get("/v1/alerts", params={"state": "closed"})
            assert r.status_code == 422 and r.json()["detail"].startswith("state")


def test_unacknowledged_alerts_are_resent_and_escalated_after_the_deadline(tmp_path):
    with live_server(tmp_path, alert_ack_deadline_s=0.5) as live:
        with (
            httpx.Client(base_url=live.url, timeout=10, headers=live.headers()) as client,
            client.stream("GET", "/v1/alerts/stream", params={"last_id": 0}) as stream,
        ):
            events = sse_events(stream)
            next_event(events)
            s1 = raise_for(live.sessions, "e1", service=live.service, ack_deadline_s=0.5)
            s2 = raise_for(live.sessions, "e2", service=live.service, ack_deadline_s=0.5)
            assert client.post(f"/v1/alerts/{s2}/ack").status_code == 200
            t0 = time.monotonic()
            seen = []
            while not any(e.get("data", {}).get("resent") for e in seen):
                seen.append(next_event(events))
                assert time.monotonic() - t0 < 15
            resend = seen[-1]
            assert resend["event"] == "alert" and "id" not in resend  # no resume move
            assert resend["data"]["seq"] == s1
            assert resend["data"]["escalated"] is True
            assert resend["data"]["resend_count"] >= 1
            escalated = [e for e in seen if e.get("data", {}).get("change") == "escalated"]
            assert [e["data"]["seq"] for e in escalated] == [s1]
        with live.sessions() as session:
            a1, a2 = session.get(db.Alert, s1), session.get(db.Alert, s2)
            assert a1.escalated and a1.state == "open"
            assert not a2.escalated and a2.resend_count == 0  # acknowledged: never re-sent
            events1 = [e.event for e in alerts.alert_events(session, s1)]
            assert events1[:3] == ["created", "escalated", "resent"]
            assert events1.count("escalated") == 1  # escalated once, re-sent every deadline


def test_resends_back_off_and_stop_after_the_cap(tmp_path):
    # Deadline 10 s: re-sent at 10 s, then 20 s later, then 40 s later... and after
    # max_resends it stays open and escalated without buzzing the handhelds again.
    _, sessions = make_sessions(tmp_path)
    seq = raise_for(sessions, "b1", ack_deadline_s=10)
    with sessions() as session:
        t0 = alerts._aware(session.get(db.Alert, seq).created_at)

    def round_at(seconds: float) -> int:
        with sessions() as session:
            return alerts.escalate_due(
                session, ack_deadline_s=10, max_resends=3, now=t0 + timedelta(seconds=seconds)
            )

    assert round_at(9) == 0
    assert round_at(11) == 1  # next deadline: 11 + 20 = 31
    assert round_at(30) == 0
    assert round_at(32) == 1  # next: 32 + 40 = 72
    assert round_at(71) == 0
    assert round_at(73) == 1  # the third and last
    assert round_at(10_000) == 0
    with sessions() as session:
        alert = session.get(db.Alert, seq)
        assert alert.state == "open" and alert.escalated and alert.resend_count == 3
        kinds = [e.event for e in alerts.alert_events(session, seq)]
        assert kinds == ["created", "escalated", "resent", "resent", "resent"]


# --------------------------------------------------------------------------- figures


def _alert_world(sessions: sessionmaker) -> dict[str, int]:
    """Six alerts on two lanes, raised an hour apart from 08:00 UTC, in every state."""
    t0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    plan = [
        # scan, lane, top class, verdict, seconds to ack, seconds to verdict
        ("f1", "1", "knife", "confirmed", 20, 60),
        ("f2", "1", "knife", "rejected", 40, 100),
        ("f3", "1", "gun", "rejected", None, 30),  # decided without an ack
        ("f4", "2", "knife", "rejected", 10, 50),
        ("f5", "2", "gun", "acknowledged", 30, None),
        ("f6", "2", "knife", "open", None, None),
    ]
    seqs = {}
    for i, (scan_id, lane, top, verdict, ack_s, verdict_s) in enumerate(plan):
        scan = add_scan(sessions, scan_id, lane=lane)
        other = "gun" if top == "knife" else "knife"
        dets = [
            Detection((10.0, 20.0, 110.0, 220.0), top, 0, 0.95),
            Detection((200.0, 20.0, 300.0, 220.0), other, 1, 0.6),
        ]
        with sessions() as session:
            alert = alerts.raise_alert(
                session, scan=scan, detections=dets, thresholds=THRESHOLDS,
                overlay_url="/o.png", ack_deadline_s=60,
            )  # fmt: skip
            assert alert is not None
            seq = alert.seq
            session.commit()
        with sessions() as session:
            if ack_s is not None:
                alerts.acknowledge(session, seq, actor="insp")
            if verdict == "confirmed":
                alerts.confirm(session, seq, actor="insp")
            elif verdict == "rejected":
                alerts.reject(session, seq, actor="insp")
            session.commit()
        created = t0 + timedelta(hours=i)
        with sessions() as session:  # the times a real shift would have recorded
            row = session.get(db.Alert, seq)
            row.created_at = created
            if ack_s is not None:
                row.acknowledged_at = created + timedelta(seconds=ack_s)
            if verdict_s is not None:
                row.resolved_at = created + timedelta(seconds=verdict_s)
            row.escalated = ack_s is None
            session.commit()
        seqs[scan_id] = seq
    return seqs


def test_alert_figures_count_states_precision_times_per_class_and_lane(tmp_path):
    from cv.errors import ConfigError
    from cv.inference_server.alert_stats import alert_stats

    _, sessions = make_sessions(tmp_path)
    _alert_world(sessions)
    with sessions() as session:
        f = alert_stats(session)
    t = f.total
    assert (t.raised, t.open, t.acknowledged, t.confirmed, t.rejected) == (6, 1, 1, 1, 3)
    assert t.escalated == 2 and t.precision == pytest.approx(1 / 4)
    # By the highest-scoring box: knife tops four alerts (one confirmed, two rejected).
    assert list(f.per_class) == ["knife", "gun"]
    assert f.per_class["knife"].raised == 4 and f.per_class["knife"].precision == pytest.approx(
        1 / 3
    )
    assert f.per_class["gun"].raised == 2 and f.per_class["gun"].precision == 0.0
    assert {k: v.raised for k, v in f.per_lane.items()} == {"ICN · 1": 3, "ICN · 2": 3}
    # Acknowledged after 20, 40, 10, 30 s; decided after 60, 100, 30, 50 s.
    assert (f.to_acknowledge.n, f.to_acknowledge.p50_s) == (4, 25.0)
    assert (f.to_verdict.n, f.to_verdict.p50_s) == (4, 55.0)
    assert f.to_verdict.p90_s == pytest.approx(88.0)

    # A window (naive times are UTC) and a lane.
    with sessions() as session:
        f = alert_stats(
            session, since=datetime(2026, 11, 2, 9, 0), until=datetime(2026, 11, 2, 11, 0)
        )
        assert f.total.raised == 2 and f.total.rejected == 2  # f2 and f3
        assert alert_stats(session, lane="2").total.raised == 3
        assert alert_stats(session, kind="reid").total.raised == 0
        assert alert_stats(session, site="PUS").total.precision is None
        with pytest.raises(ConfigError, match="until"):
            alert_stats(session, since=datetime(2026, 11, 3), until=datetime(2026, 11, 2))
        with pytest.raises(ConfigError, match="kind"):
            alert_stats(session, kind="parcel")


def test_alert_figures_over_http_and_from_the_command_line(tmp_path, capsys):
    from cv.cli import main

    with live_server(tmp_path) as live:
        _alert_world(live.sessions)
        with httpx.Client(base_url=live.url, timeout=10) as client:
            r = client.get("/v1/alerts/stats", headers=live.headers())
            assert r.status_code == 200, r.text
            doc = r.json()
            assert doc["total"]["raised"] == 6 and doc["total"]["precision"] == 0.25
            assert doc["per_class"]["knife"]["rejected"] == 2
            r = client.get(
                "/v1/alerts/stats",
                params={"since": "2026-11-02T09:00:00Z", "lane": "1"},
                headers=live.headers("admin"),
            )
            assert r.json()["total"]["raised"] == 2
            assert client.get("/v1/alerts/stats", headers=live.headers("reader")).status_code == 403
            r = client.get("/v1/alerts/stats", params={"since": "monday"}, headers=live.headers())
            assert r.status_code == 422 and "since" in r.text
            r = client.get(
                "/v1/alerts/stats",
                params={"since": "2026-11-03", "until": "2026-11-02"},
                headers=live.headers(),
            )
            assert r.status_code == 422 and "until" in r.json()["detail"]
        url = live.app.state.services.settings.database_url

    assert main(["serve", "alert-stats", "--db", url, "--json", "--lane", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["total"]["raised"] == 3 and doc["lane"] == "2"
    assert main(["serve", "alert-stats", "--db", url, "--since", "2026-11-02"]) == 0
    text = capsys.readouterr().out
    assert "knife" in text and "33.3 %" in text and "ICN · 2" in text
    assert "median 25 s" in text
    assert main(["serve", "alert-stats", "--db", url, "--since", "yesterday"]) == 2
    assert "since" in capsys.readouterr().err
