"""Inspectors' verdicts become labelled data for retraining.

A confirmed alert becomes an image labelled with the inspector's corrected boxes
(or the alert's boxes when none were given); a rejected alert becomes an image
with **no** boxes, a hard negative (what the model wrongly flagged is kept in the
record's ``meta``). The dataset is written like ``customs-vision data synth``
writes its own, so the data toolkit and training read it as they are::

    out_dir/images/train/alert-<seq>.<ext>   a copy of the scan image
    out_dir/labels/train/alert-<seq>.txt     YOLO labels (empty for a rejection)
    out_dir/data.yaml                        YOLO dataset file
    out_dir/annotations/train.json           COCO, with ``meta`` per image
    out_dir/manifest.json                    the alerts: verdicts, who, when

All images go to the ``train`` split: feedback is added to a training set, and the
held-out sets stay the curated ones.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cv.errors import NotFoundError
from cv.inference_server import db
from cv.records import Annotation, Dataset, ImageRecord

log = logging.getLogger(__name__)

SPLIT = "train"


def _utc(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return db.as_utc(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else _utc(value).isoformat()


def _clip(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    # Model boxes may overshoot the image by a rounding error; YOLO labels may not.
    x1, y1, x2, y2 = (float(v) for v in box)
    return (
        min(max(x1, 0.0), width),
        min(max(y1, 0.0), height),
        min(max(x2, 0.0), width),
        min(max(y2, 0.0), height),
    )


def export_feedback(
    database_url: str,
    data_dir: Path,
    out_dir: Path,
    *,
    since: datetime | date | None = None,
    sites: Sequence[str] | None = None,
) -> Dataset:
    """Writes confirmed and rejected alerts as a labelled dataset.

    Args:
        database_url: The server's database (SQLAlchemy URL).
        data_dir: The server's image folder (``CV_SERVER_DATA_DIR``).
        out_dir: The dataset folder to write.
        since: Only alerts resolved at or after this time (a date means its midnight,
            UTC; naive times are UTC).
        sites: Only alerts of these sites.

    Returns:
        The dataset written; ``root`` is ``out_dir``.

    Raises:
        NotFoundError: If no resolved alert matches, or none of their images exist.
    """
    out_dir = Path(out_dir)
    data_dir = Path(data_dir)
    engine = db.open_existing(database_url, tables=("alerts", "scans"), what="scans and alerts")
    try:
        with db.session_factory(engine)() as session:
            query = (
                select(db.Alert, db.Scan)
                .join(db.Scan, db.Scan.id == db.Alert.scan_id)
                .where(db.Alert.state.in_(("confirmed", "rejected")))
            )
            if since is not None:
                query = query.where(db.Alert.resolved_at >= _utc(since))
            if sites:
                query = query.where(db.Alert.site.in_(list(sites)))
            rows = session.execute(query.order_by(db.Alert.seq)).all()
    finally:
        engine.dispose()
    if not rows:
        raise NotFoundError(
            "no confirmed or rejected alerts match"
            + (f" since {_iso(_utc(since))}" if since is not None else "")
            + (f" at sites {', '.join(sites)}" if sites else ""),
            path=db.masked_url(database_url),
        )

    # A scan alerted twice (say by the detector and the risk engine) is one image: the
    # verdict given last is the one kept.
    latest: dict[str, tuple[db.Alert, db.Scan]] = {}
    for alert, scan in rows:
        kept = latest.get(scan.id)
        if kept is None or _utc(alert.resolved_at) >= _utc(kept[0].resolved_at):  # type: ignore[arg-type]
            latest[scan.id] = (alert, scan)
    chosen = sorted(latest.values(), key=lambda pair: pair[0].seq)

    (out_dir / "images" / SPLIT).mkdir(parents=True, exist_ok=True)
    records: list[ImageRecord] = []
    entries: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for alert, scan in chosen:
        src = data_dir / scan.image_path
        if not src.is_file():
            log.warning("alert %d: image %s is missing; skipped", alert.seq, src)
            skipped.append({"seq": alert.seq, "scan_id": scan.id, "reason": f"missing {src}"})
            continue
        file = f"images/{SPLIT}/alert-{alert.seq:08d}{src.suffix.lower()}"
        shutil.copyfile(src, out_dir / file)
        verdict = alert.verdict or {}
        model_boxes = alert.payload.get("boxes", [])
        corrected = verdict.get("boxes")
        confirmed = alert.state == "confirmed"
        labels = (corrected or model_boxes) if confirmed else []
        annotations = []
        for b in labels:
            box = _clip(b["box"], scan.width, scan.height)
            if box[2] > box[0] and box[3] > box[1]:
                annotations.append(
                    Annotation(box=box, category=b["category"], original_name=b["category"])
                )
        meta: dict[str, object] = {
            "alert_seq": alert.seq,
            "scan_id": scan.id,
            "site": alert.site,
            "lane": alert.lane,
            "verdict": alert.state,
            "resolved_by": alert.resolved_by,
            "resolved_at": _iso(alert.resolved_at),
            "note": verdict.get("note"),
        }
        if confirmed:
            meta["corrected"] = corrected is not None
        else:
            meta["rejected_boxes"] = model_boxes
        records.append(
            ImageRecord(
                file=file,
                width=scan.width,
                height=scan.height,
                annotations=annotations,
                split=SPLIT,
                source="feedback",
                meta=meta,
            )
        )
        entries.append(
            {
                **meta,
                "file": file,
                "image_sha256": scan.image_sha256,
                "acknowledged_by": alert.acknowledged_by,
                "acknowledged_at": _iso(alert.acknowledged_at),
                "created_at": _iso(alert.created_at),
                "model_boxes": model_boxes,
                "labels": [{"box": list(a.box), "category": a.category} for a in annotations],
            }
        )
    if not records:
        raise NotFoundError(
            f"none of the {len(chosen)} resolved alerts' images exist under the data folder",
            path=data_dir,
        )

    from cv.datasets.formats import write_coco, write_yolo

    dataset = Dataset(name="feedback", images=records, root=out_dir)
    dataset.classes = dataset.used_classes()
    write_yolo(dataset, out_dir, classes=dataset.classes)
    write_coco(
        dataset, out_dir / "annotations" / f"{SPLIT}.json", classes=dataset.classes, split=SPLIT
    )
    manifest = {
        "name": dataset.name,
        "database": db.masked_url(database_url),
        "exported_at": datetime.now(UTC).isoformat(),
        "since": None if since is None else _iso(_utc(since)),
        "sites": list(sites) if sites else None,
        "classes": dataset.classes,
        "counts": {
            "images": len(records),
            "confirmed": sum(e["verdict"] == "confirmed" for e in entries),
            "rejected": sum(e["verdict"] == "rejected" for e in entries),
            "boxes": sum(len(r.annotations) for r in records),
            "skipped": len(skipped),
        },
        "alerts": entries,
        "skipped": skipped,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return dataset
