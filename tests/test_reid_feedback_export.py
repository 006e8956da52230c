"""``reid export-feedback``: inspectors' verdicts on sightings as a re-ID training set.

A real server (``server_cctv_helpers``: uvicorn in a thread, tiny untrained models,
SQLite) gets four cameras and five watch-list entries, frames of those people, and
inspectors' verdicts over HTTP; then it stops and the export reads its database and
image store. The untrained detector finds one "person" over each whole frame, so a
frame is its person's crop (see the helpers).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import server_cctv_helpers as ch
import server_helpers as h
from sqlalchemy import select, update

from cv.cli import main
from cv.datasets.cctv import market_name
from cv.datasets.reid import parse_market_name, read_market1501
from cv.errors import ConfigError, NotFoundError
from cv.inference_server import db
from cv.inference_server.feedback_reid import (
    camera_slot,
    export_reid_feedback,
    open_database,
)
from cv.inference_server.storage import ImageStore

HIGH_RISK = "customs-high-risk"


@dataclass
class Site:
    """The stopped server's files and what the fixture made in them."""

    root: Path
    url: str
    data_dir: Path
    entries: dict[str, str]  # label -> entry id
    sightings: dict[tuple[str, str], int]  # (label, camera) -> sighting id

    def copy(self, dest: Path) -> Site:
        """The same database and images under ``dest`` (to break them safely)."""
        shutil.copytree(self.root, dest)
        return Site(
            dest,
            f"sqlite:///{dest / 'server.db'}",
            dest / "images",
            self.entries,
            self.sightings,
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """Entries W-A, W-R (list customs-high-risk), W-G (list transit), W-B and W-X;
    confirmed: W-A on fb-gate and fb-belt, W-R on fb-gate, W-G on fb-belt, W-X on
    fb-hall (then W-X is revoked); rejected: W-R on fb-exit; candidate: W-B on fb-exit."""
    models = tmp_path_factory.getbasetemp() / "cctv-models"
    models.mkdir(exist_ok=True)
    root = tmp_path_factory.mktemp("reid-feedback-site")
    settings = ch.cctv_settings(root, models)
    with ch.ThreadServer(settings) as server:
        tokens = h.make_tokens(server.app)
        http = httpx.Client(base_url=server.base, timeout=60)

        def post(path: str, who: str = "admin", **kwargs: Any) -> httpx.Response:
            r = http.post(path, headers=tokens[who], **kwargs)
            assert r.status_code in (200, 201), r.text
            return r

        for cam in ("fb-gate", "fb-belt", "fb-exit", "fb-hall"):
            body = {"id": cam, "site": "ICN-T1", "location": f"{cam}-hall"}
            post("/v1/cameras", json={**body, "purpose": "customs-control"})
        looks = {"W-A": "a", "W-R": "red", "W-G": "green", "W-B": "blue", "W-X": "b"}
        entries = {}
        for label, kind in looks.items():
            form = ch.enrol_form(label=label, list_name="transit" if label == "W-G" else HIGH_RISK)
            files = [("images", (f"{label}.png", ch.png(ch.person(kind)), "image/png"))]
            entries[label] = post("/v1/watchlist/entries", files=files, data=form).json()["id"]

        # Per camera, one person after another; the second in a smaller frame starts
        # a new track (see ch.SMALL).
        plan = {
            "fb-gate": ("W-A", "W-R"),
            "fb-belt": ("W-A", "W-G"),
            "fb-exit": ("W-R", "W-B"),
            "fb-hall": ("W-X",),
        }
        for cam, labels in plan.items():
            t = time.time()
            for i, label in enumerate(labels):
                image = ch.person(looks[label], *((160, 240) if i == 0 else ch.SMALL))
                for _ in range(4):
                    r = http.post(
                        f"/v1/cameras/{cam}/frames",
                        content=ch.png(image),
                        params={"timestamp": f"{t:.3f}"},
                        headers={**tokens["camera"], "Content-Type": "image/png"},
                    )
                    assert r.status_code == 200, r.text
                    t += 0.1
        r = http.get("/v1/sightings", params={"limit": 100}, headers=tokens["inspector"])
        found = r.json()["sightings"]
        sightings = {(s["label"], s["camera_id"]): s for s in found}
        assert len(found) == len(sightings) == 7, sorted(sightings)

        # "Same person" through the alert on a handheld, and through the sighting route.
        post(f"/v1/alerts/{sightings['W-A', 'fb-gate']['alert_seq']}/confirm", "inspector")
        for key in (("W-A", "fb-belt"), ("W-R", "fb-gate"), ("W-G", "fb-belt"), ("W-X", "fb-hall")):
            post(f"/v1/sightings/{sightings[key]['id']}/confirm", "inspector")
        post(f"/v1/sightings/{sightings['W-R', 'fb-exit']['id']}/reject", "inspector")
        post(f"/v1/watchlist/entries/{entries['W-X']}/revoke", json={"reason": "case closed"})
        http.close()
    return Site(
        root,
        settings.database_url,
        Path(settings.data_dir),
        entries,
        {key: s["id"] for key, s in sightings.items()},
    )


def export(site: Site, out: Path, **kwargs: Any) -> Any:
    """``export_reid_feedback`` on the site's database and store."""
    engine = open_database(site.url)
    try:
        with db.session_factory(engine)() as session:
            return export_reid_feedback(
                session, ImageStore(site.data_dir / "cctv"), out, **{"actor": "dpo-lee", **kwargs}
            )
    finally:
        engine.dispose()


def export_lines(site: Site) -> list[db.AuditEntry]:
    engine = db.make_engine(site.url)
    try:
        with db.session_factory(engine)() as session:
            query = select(db.AuditEntry).where(db.AuditEntry.action == "export")
            return list(session.scalars(query.order_by(db.AuditEntry.id)))
    finally:
        engine.dispose()


def by_pid(out: Path) -> dict[int, list[int]]:
    """pid -> sorted cameras of its crops, as read_market1501 reads them."""
    ds = read_market1501(out)
    assert ds.query == [] and ds.gallery == []
    cams: dict[int, list[int]] = {}
    for s in ds.train:
        cams.setdefault(s.pid, []).append(s.camid)
    return {pid: sorted(c) for pid, c in sorted(cams.items())}


# --------------------------------------------------------------------------- the export


def test_confirmed_sightings_read_back_as_market1501(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "export"
    stale = out / ".reid-feedback-partial-dead"  # what a killed export leaves behind
    stale.mkdir(parents=True)
    (stale / "0001_c2s1_000001_01.jpg").write_bytes(b"a crop")
    result = export(site, out, retention_days=30)
    # pid = rank by enrolment: W-A 1, W-R 2, W-G 3 (W-B 4 has only a candidate, W-X 5
    # was revoked). Cameras sorted by id: fb-belt c2, fb-gate c3; references are c1.
    assert by_pid(out) == {1: [1, 2, 3], 2: [1, 3], 3: [1, 2]}
    assert (result.identities, result.references, result.sightings) == (3, 3, 4)
    assert result.negatives == 0 and result.skipped == [] and result.ended_entries == 1
    assert result.cameras == {"fb-belt": "c2s1", "fb-gate": "c3s1"} and not result.folded
    assert "--p 3" in result.hint
    assert not (out / "negatives").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left, old or new

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == result.manifest
    assert manifest["kind"] == "reid-feedback" and "PERSONAL DATA" in manifest["notice"]
    assert "retention policy" in manifest["notice"]
    assert manifest["exported_by"] == "dpo-lee" and manifest["database"] == site.url
    assert manifest["counts"] == {
        "identities": 3,
        "references": 3,
        "sightings": 4,
        "negatives": 0,
        "images": 7,
        "skipped": 0,
        "ended_entries_left_out": 1,
        "entries_without_crops": 0,
    }
    e = site.entries
    assert {
        pid: (v["entry_id"], v["label"], v["list_name"]) for pid, v in manifest["pids"].items()
    } == {
        "0001": (e["W-A"], "W-A", HIGH_RISK),
        "0002": (e["W-R"], "W-R", HIGH_RISK),
        "0003": (e["W-G"], "W-G", "transit"),
    }
    assert manifest["pids"]["0001"]["cameras"] == ["fb-belt", "fb-gate"]
    assert manifest["cameras"]["c2s1"]["camera_id"] == "fb-belt"
    assert manifest["cameras"]["c1s1"]["camera_id"] is None
    assert manifest["filters"]["include_rejected"] is False and manifest["filters"]["since"] is None
    assert manifest["time_range"]["first_seen"] <= manifest["time_range"]["last_seen"]
    assert manifest["negatives"]["folder"] is None and manifest["negatives"]["delete_by"] is None
    # Each file names its sighting; candidates and rejected sightings are not there.
    s = site.sightings
    files = {f["sighting_id"]: f for f in manifest["files"] if f["kind"] == "sighting"}
    assert sorted(files) == sorted(
        s[k]
        for k in (("W-A", "fb-gate"), ("W-A", "fb-belt"), ("W-R", "fb-gate"), ("W-G", "fb-belt"))
    )
    first = files[s["W-A", "fb-gate"]]
    assert first["file"] == f"bounding_box_train/{market_name(1, 3, s['W-A', 'fb-gate'])}"
    assert first["resolved_by"] == "test-inspector" and (out / first["file"]).is_file()

    (line,) = export_lines(site)
    assert line.actor == "dpo-lee" and line.list_name is None
    d = line.detail
    assert (d["entries"], d["sightings"], d["references"], d["negatives"]) == (3, 4, 3, 0)
    assert d["include_rejected"] is False and d["out"] == str(out.absolute())
    assert d["entry_ids"] == sorted(e[k] for k in ("W-A", "W-R", "W-G"))
    assert d["sighting_ids"] == sorted(files)


def test_rejected_sightings_are_hard_negatives_outside_the_training_split(
    site: Site, tmp_path: Path
) -> None:
    out = tmp_path / "with-negatives"
    result = export(site, out, include_rejected=True, include_ended=True, retention_days=30)
    # W-X (revoked: its reference crop is gone) joins as pid 5; fb-exit and fb-hall
    # join the cameras: fb-belt c2, fb-exit c3, fb-gate c4, fb-hall c5.
    assert result.cameras == {
        "fb-belt": "c2s1",
        "fb-exit": "c3s1",
        "fb-gate": "c4s1",
        "fb-hall": "c5s1",
    }
    assert by_pid(out) == {1: [1, 2, 4], 2: [1, 4], 3: [1, 2], 5: [5]}
    (negative,) = sorted((out / "negatives").iterdir())
    rejected = site.sightings["W-R", "fb-exit"]
    assert negative.name == market_name(0, 3, rejected)
    assert parse_market_name(negative.name) == (0, 3, rejected)
    manifest = result.manifest
    (record,) = [f for f in manifest["files"] if f["kind"] == "negative"]
    assert record["sighting_id"] == rejected
    assert record["confused_with"] == {"entry_id": site.entries["W-R"], "label": "W-R", "pid": 2}
    assert manifest["negatives"]["folder"] == "negatives"
    seen = datetime.fromisoformat(record["seen_at"])
    assert manifest["negatives"]["delete_by"] == (seen + timedelta(days=30)).isoformat()
    assert manifest["pids"]["0005"]["state"] == "revoked"
    assert manifest["pids"]["0005"]["references"] == 0
    assert manifest["counts"]["ended_entries_left_out"] == 0
    # The candidate of W-B is never exported, in any form.
    candidate = site.sightings["W-B", "fb-exit"]
    assert all(f.get("sighting_id") != candidate for f in manifest["files"])

    line = export_lines(site)[-1]
    assert line.detail["include_rejected"] is True and line.detail["negatives"] == 1
    assert rejected in line.detail["sighting_ids"]


def test_filters_and_nothing_to_export(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = len(export_lines(site))
    result = export(site, tmp_path / "transit", list_name="transit")
    assert by_pid(tmp_path / "transit") == {3: [1, 2]}
    assert result.hint.startswith("1 identity: PK batches need at least 2")
    assert result.manifest["filters"]["list_name"] == "transit"
    assert export_lines(site)[-1].list_name == "transit"

    tomorrow = datetime.now(UTC) + timedelta(days=1)
    for kwargs in ({"since": tomorrow}, {"until": tomorrow - timedelta(days=7)}):
        out = tmp_path / "none"
        with pytest.raises(NotFoundError, match="no confirmed sightings to export"):
            export(site, out, **kwargs)
        assert not out.exists()  # nothing half-written
    in_window = export(site, tmp_path / "window", since=tomorrow.date() - timedelta(days=2))
    assert in_window.identities == 3
    with pytest.raises(ConfigError, match="must come after since"):
        export(site, tmp_path / "x", since=tomorrow, until=tomorrow)
    with pytest.raises(ConfigError, match="actor"):
        export(site, tmp_path / "x", actor="  ")

    # A failure half-way through the copying: no folder, no audit line.
    import cv.inference_server.feedback_reid as module

    copied: list[Path] = []
    copyfile = shutil.copyfile

    def copy_then_fail(src: Path, dst: Path) -> None:
        if len(copied) == 3:
            raise OSError(28, "No space left on device")
        copied.append(Path(copyfile(src, dst)))

    monkeypatch.setattr(module.shutil, "copyfile", copy_then_fail)
    with pytest.raises(OSError, match="No space left"):
        export(site, tmp_path / "full")
    assert len(copied) == 3 and not (tmp_path / "full").exists()
    assert len(export_lines(site)) == before + 2  # failures are not exports


def test_a_missing_crop_is_skipped_by_name(
    site: Site, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = site.copy(tmp_path / "site")
    green = broken.sightings["W-G", "fb-belt"]
    engine = db.make_engine(broken.url)
    with db.session_factory(engine)() as session:
        crop = broken.data_dir / "cctv" / session.get(db.Sighting, green).crop_path
    crop.unlink()
    with caplog.at_level(logging.WARNING, logger="cv.inference_server.feedback_reid"):
        result = export(broken, tmp_path / "out")
    assert f"sighting {green}: stored crop {crop} is missing; skipped" in caplog.text
    assert result.skipped == [
        {"sighting_id": green, "path": str(crop), "reason": "stored crop file is missing"}
    ]
    # W-G had no other crop: no identity without a camera crop, and the manifest says so.
    assert by_pid(tmp_path / "out") == {1: [1, 2, 3], 2: [1, 3]}
    assert result.manifest["entries_without_crops"] == [broken.entries["W-G"]]
    assert result.manifest["counts"]["skipped"] == 1

    # No crop left at all: an error, and no folder.
    for p in (broken.data_dir / "cctv").rglob("*.jpg"):
        p.unlink()
    with pytest.raises(NotFoundError, match="none of the 4 confirmed sightings' crops exist"):
        export(broken, tmp_path / "empty")
    assert not (tmp_path / "empty").exists()

    # Every entry ended: said so, with the way to export them anyway.
    with db.session_factory(engine)() as session:
        session.execute(update(db.WatchlistEntry).values(revoked_at=db.utcnow()))
        session.commit()
    engine.dispose()
    with pytest.raises(NotFoundError, match=r"revoked or has expired .*--include-ended"):
        export(broken, tmp_path / "ended")


def test_more_than_eight_cameras_fold_into_sequences(site: Site, tmp_path: Path) -> None:
    assert [camera_slot(r) for r in (0, 7, 8, 9, 16)] == [(2, 1), (9, 1), (2, 2), (3, 2), (2, 3)]
    many = site.copy(tmp_path / "site")
    engine = db.make_engine(many.url)
    with db.session_factory(engine)() as session:
        template = session.get(db.Sighting, many.sightings["W-A", "fb-gate"])
        for i in range(8):  # 2 + 8 = 10 cameras with confirmed W-A sightings
            cam = f"zz-{i}"
            session.add(db.Camera(id=cam, site="ICN-T2", location=cam, purpose="customs-control"))
            session.flush()
            session.add(
                db.Sighting(
                    entry_id=template.entry_id,
                    camera_id=cam,
                    track_id=1,
                    seen_at=template.seen_at,
                    similarity=0.995,
                    threshold=0.99,
                    box=template.box,
                    crop_path=template.crop_path,
                    width=template.width,
                    height=template.height,
                    state="confirmed",
                    resolved_by="kim",
                )
            )
        session.commit()
    engine.dispose()
    result = export(many, tmp_path / "out")
    assert result.folded and result.manifest["cameras_folded"] is True
    # Sorted: fb-belt, fb-gate, zz-0 .. zz-7; the ninth and tenth start sequence 2.
    assert result.cameras["fb-belt"] == "c2s1" and result.cameras["zz-5"] == "c9s1"
    assert result.cameras["zz-6"] == "c2s2" and result.cameras["zz-7"] == "c3s2"
    assert result.manifest["cameras"]["c2s2"]["camera_id"] == "zz-6"
    assert by_pid(tmp_path / "out")[1] == [1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9]


# --------------------------------------------------------------------------- the command


def test_cli_export_then_train_reid_on_it(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from typer.testing import CliRunner

    from cv.cli import app

    help_text = CliRunner().invoke(app, ["reid", "export-feedback", "--help"]).output
    assert "personal data" in help_text and "retention policy" in help_text

    out = tmp_path / "feedback"
    base = ["reid", "export-feedback", "--db", site.url, "--data-dir", str(site.data_dir)]
    before = len(export_lines(site))
    assert main([*base, "--out", str(out), "--actor", "dpo-kim", "--include-rejected"]) == 0
    said = capsys.readouterr().err
    assert "wrote 3 identities (3 reference crops, 4 confirmed sighting crops" in said
    assert "wrote 1 rejected sighting (hard negatives)" in said
    assert "personal data" in said and "delete negatives/ by" in said
    assert "train with --p 3" in said
    assert export_lines(site)[-1].actor == "dpo-kim"

    # An export is there: refused without --overwrite, untouched, not audited.
    stamp = (out / "manifest.json").read_text()
    assert main([*base, "--out", str(out)]) == 2
    assert "already holds bounding_box_train, negatives, manifest.json" in capsys.readouterr().err
    assert (out / "manifest.json").read_text() == stamp
    assert len(export_lines(site)) == before + 1
    assert main([*base, "--out", str(out), "--overwrite", "--since", "2000-01-01"]) == 0
    assert not (out / "negatives").exists()  # replaced by an export without negatives
    assert len(export_lines(site)) == before + 2
    assert main([*base, "--out", str(tmp_path / "x"), "--since", "last week"]) == 2

    # One epoch of a tiny embedder on the export.
    args = ["train", "reid", "--data", str(out), "--model", "osnet_x0_25", "--feature-dim", "16"]
    args += ["--input-hw", "64,32", "--epochs", "1", "--p", "3", "--k", "2", "--val-every", "0"]
    args += ["--workers", "0", "--device", "cpu", "--no-export"]
    assert main([*args, "--out", str(tmp_path / "runs"), "--name", "site"]) == 0
    from cv.models.reid import read_reid_record

    record = read_reid_record(tmp_path / "runs" / "site" / "last")
    assert record.classes == ["1", "2", "3"] and record.training["epochs_done"] == 1


def test_cli_database_errors(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = ["--out", str(tmp_path / "out"), "--data-dir", str(site.data_dir)]
    absent = tmp_path / "nowhere.db"
    assert main(["reid", "export-feedback", "--db", f"sqlite:///{absent}", *out]) == 5
    assert "no server database here" in capsys.readouterr().err
    assert not absent.exists()  # not created by looking

    other = tmp_path / "other.db"
    import sqlite3

    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (x TEXT)")
    assert main(["reid", "export-feedback", "--db", f"sqlite:///{other}", *out]) == 5
    said = capsys.readouterr().err
    assert "not a customs-vision server database" in said and "serve migrate" in said

    url = f"postgresql+psycopg://exporter:s3cret@127.0.0.1:{h.free_port()}/cv"
    assert main(["reid", "export-feedback", "--db", url, *out]) == 5
    said = capsys.readouterr().err
    assert "cannot open the server database" in said and "exporter:***@" in said
    assert "s3cret" not in said

    no_store = ["--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "no-images")]
    assert main(["reid", "export-feedback", "--db", site.url, *no_store]) == 5
    assert "no CCTV image store here" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
