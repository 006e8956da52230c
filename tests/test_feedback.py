"""Inspectors' verdicts exported as a dataset that the data toolkit reads back."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from cv.cli import data_feedback, main
from cv.datasets.formats import detect_format, load_dataset
from cv.errors import NotFoundError
from cv.image import write_image
from cv.inference_server import alerts, db
from cv.inference_server.feedback import export_feedback
from cv.records import Detection

THRESHOLDS = {"knife": 0.5, "gun": 0.5}


def _server_db(tmp_path: Path) -> tuple[str, Path]:
    """A server database with five alerts: confirmed (model boxes), confirmed with a
    corrected box, rejected, still open, and confirmed at another site."""
    url = f"sqlite:///{tmp_path / 'server.db'}"
    data_dir = tmp_path / "images"
    engine = db.make_engine(url)
    db.migrate(engine)
    sessions = db.session_factory(engine)
    specs = [("c1", "ICN"), ("c2", "ICN"), ("r1", "ICN"), ("o1", "ICN"), ("g1", "GMP")]
    for i, (scan_id, site) in enumerate(specs):
        rel = f"{i:02d}/{scan_id}.png"
        write_image(data_dir / rel, np.full((120, 160, 3), 40 * i, dtype=np.uint8))
        with sessions() as session:
            scan = db.Scan(
                id=scan_id,
                site=site,
                lane="1",
                kind="parcel",
                image_sha256=f"{i:064d}",
                image_path=rel,
                content_type="image/png",
                width=160,
                height=120,
                status="done",
                attempts=1,
            )
            session.add(scan)
            session.flush()
            alerts.raise_alert(
                session,
                scan=scan,
                detections=[
                    Detection((10, 10, 50, 60), "knife", 3, 0.9),
                    Detection((100, 20, 150, 119.5), "gun", 0, 0.7),
                    Detection((0, 0, 5, 5), "laptop", 21, 0.99),  # no threshold: not in alert
                ],
                thresholds=THRESHOLDS,
                overlay_url="/o.png",
                ack_deadline_s=60,
            )
            session.commit()
    with sessions() as session:
        alerts.acknowledge(session, 1, actor="kim")
        alerts.confirm(session, 1, actor="kim")
        corrected = [{"box": [12, 14, 48, 58], "category": "knife"}]
        alerts.confirm(session, 2, actor="lee", boxes=corrected, note="only the knife")
        alerts.reject(session, 3, actor="park", note="hair dryer and a toy")
        alerts.confirm(session, 5, actor="choi")
    engine.dispose()
    return url, data_dir


def test_export_round_trip_through_the_data_toolkit(tmp_path):
    url, data_dir = _server_db(tmp_path)
    out = tmp_path / "feedback"
    ds = export_feedback(url, data_dir, out, sites=["ICN"])
    assert [r.meta["alert_seq"] for r in ds.images] == [1, 2, 3]  # the open one is left out
    assert ds.classes == ["gun", "knife"]  # taxonomy order

    for rel in ("data.yaml", "annotations/train.json", "manifest.json"):
        assert (out / rel).is_file()
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == {0: "gun", 1: "knife"}
    labels = (out / "labels/train/alert-00000003.txt").read_text()
    assert labels == ""  # a rejection is a hard negative: an empty label file

    assert detect_format(out) == "coco"  # like a `data synth` folder
    back = load_dataset(out)
    by_file = {im.file: im for im in back.images}
    assert sorted(by_file) == [
        "images/train/alert-00000001.png",
        "images/train/alert-00000002.png",
        "images/train/alert-00000003.png",
    ]
    first = by_file["images/train/alert-00000001.png"]
    assert first.split == "train" and (first.width, first.height) == (160, 120)
    assert [(a.category, a.box) for a in first.annotations] == [
        ("knife", (10.0, 10.0, 50.0, 60.0)),
        ("gun", (100.0, 20.0, 150.0, 119.5)),
    ]
    second = by_file["images/train/alert-00000002.png"]
    assert [(a.category, a.box) for a in second.annotations] == [
        ("knife", (12.0, 14.0, 48.0, 58.0))
    ]
    assert second.meta["corrected"] is True and second.meta["note"] == "only the knife"
    negative = by_file["images/train/alert-00000003.png"]
    assert negative.annotations == []
    assert negative.meta["verdict"] == "rejected" and negative.meta["resolved_by"] == "park"
    assert [b["category"] for b in negative.meta["rejected_boxes"]] == ["knife", "gun"]
    # The images are copies of the stored scans, byte for byte.
    assert (out / first.file).read_bytes() == (data_dir / "00/c1.png").read_bytes()

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {
        "images": 3,
        "confirmed": 2,
        "rejected": 1,
        "boxes": 3,
        "skipped": 0,
    }
    who = [(a["alert_seq"], a["verdict"], a["resolved_by"]) for a in manifest["alerts"]]
    assert who == [(1, "confirmed", "kim"), (2, "confirmed", "lee"), (3, "rejected", "park")]
    assert manifest["alerts"][0]["acknowledged_by"] == "kim"


def test_since_and_site_filters_and_nothing_to_export(tmp_path):
    url, data_dir = _server_db(tmp_path)
    ds = export_feedback(url, data_dir, tmp_path / "gmp", sites=["GMP"])
    assert [r.meta["scan_id"] for r in ds.images] == ["g1"]
    yesterday = datetime.now(UTC) - timedelta(days=1)
    assert len(export_feedback(url, data_dir, tmp_path / "all", since=yesterday).images) == 4
    with pytest.raises(NotFoundError, match="no confirmed or rejected alerts"):
        export_feedback(url, data_dir, tmp_path / "none", since=datetime.now(UTC) + timedelta(1))


def test_cli_export_feedback(tmp_path):
    # Importing the module registers the command (cv/cli/data.py will import it too).
    assert data_feedback.export_feedback_cmd.__name__ == "export_feedback_cmd"
    url, data_dir = _server_db(tmp_path)
    out = tmp_path / "cli"
    args = ["data", "export-feedback", "--db", url, "--data-dir", str(data_dir), "--out", str(out)]
    assert main([*args, "--site", "ICN", "--site", "GMP", "--since", "2000-01-01"]) == 0
    assert len(load_dataset(out).images) == 4
    assert main([*args, "--since", "yesterday"]) == 2  # ConfigError names --since
    assert main([*args, "--site", "NOWHERE"]) == 5  # NotFoundError


def test_export_feedback_from_a_mistyped_database_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "typo" / "server.db"
    args = ["data", "export-feedback", "--db", f"sqlite:///{missing}", "--out", str(tmp_path / "o")]
    assert main([*args, "--data-dir", str(tmp_path)]) == 5
    assert "no server database here" in capsys.readouterr().err
    assert not missing.exists() and not missing.parent.exists()
    # A database that is not the server's (no scans or alerts tables) is named as such.
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    assert (
        main(
            [
                "data",
                "export-feedback",
                "--db",
                f"sqlite:///{other}",
                "--out",
                str(tmp_path / "o"),
                "--data-dir",
                str(tmp_path),
            ]
        )
        == 5
    )
    assert "not a customs-vision server database" in capsys.readouterr().err
