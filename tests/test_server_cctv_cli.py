"""``customs-vision serve purge``: retention enforced from the command line, audited."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from sqlalchemy import select

from cv.cli import main
from cv.inference_server import db


def test_serve_purge_deletes_old_unmatched_tracks_only(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'cv.db'}"
    engine = db.make_engine(url)
    db.migrate(engine)
    sessions = db.session_factory(engine)
    now = db.utcnow()
    crop = tmp_path / "images" / "cctv" / "old.jpg"
    crop.parent.mkdir(parents=True)
    crop.write_bytes(b"\xff\xd8 not needed to be a real jpeg")
    vec = np.ones(4, np.float32).tobytes()
    with sessions() as session:
        session.add(db.Camera(id="gate-1", site="ICN", location="T1", purpose="customs-control"))
        session.flush()
        old = now - timedelta(days=40)
        for track_id, matched, seen in ((1, False, old), (2, True, old), (3, False, now)):
            session.add(
                db.ReidTrack(
                    camera_id="gate-1",
                    track_id=track_id,
                    first_seen=seen,
                    last_seen=seen,
                    embedding=vec,
                    dim=4,
                    crop_path="old.jpg" if track_id == 1 else None,  # relative to the store
                    matched=matched,
                )
            )
        session.commit()

    args = ["serve", "purge", "--db", url, "--data-dir", str(tmp_path / "images")]
    assert main([*args, "--retention-days", "30", "--actor", "dpo"]) == 0
    with sessions() as session:
        left = sorted(t.track_id for t in session.scalars(select(db.ReidTrack)))
        audit = session.scalars(select(db.AuditEntry).where(db.AuditEntry.action == "purge")).all()
    # The 40-day-old unmatched track went; the matched one and today's stay.
    assert left == [2, 3] and not crop.exists()
    assert [a.actor for a in audit] == ["dpo"]
    assert main([*args, "--retention-days", "0"]) == 2  # a retention must be positive
