"""``customs-vision data export-feedback``: inspectors' verdicts as a labelled dataset."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from cv.cli.data import app
from cv.errors import ConfigError
from cv.log import console


def parse_time(value: str | None, *, field: str = "since") -> datetime | None:
    """An ISO 8601 date or time given on the command line (``None`` stays ``None``)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(
            f"expected a date or time like 2024-05-01 or 2024-05-01T08:00, got {value!r}",
            field=field,
        ) from None


@app.command("export-feedback")
def export_feedback_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder to write."),
    db: str | None = typer.Option(
        None, "--db", help="Server database URL; default CV_SERVER_DATABASE_URL."
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Server image folder; default CV_SERVER_DATA_DIR."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only alerts resolved from this date or time on (UTC)."
    ),
    site: list[str] = typer.Option(
        [], "--site", help="Only alerts of this site; repeat for several."
    ),
) -> None:
    """Write confirmed alerts (labelled) and rejected ones (hard negatives) as YOLO + COCO."""
    from cv.inference_server.feedback import export_feedback
    from cv.inference_server.settings import ServerSettings

    when = parse_time(since)
    if db is None or data_dir is None:
        settings = ServerSettings()
        db = db or settings.database_url
        data_dir = data_dir or settings.data_dir
    ds = export_feedback(db, data_dir, out, since=when, sites=site or None)
    boxes = sum(len(r.annotations) for r in ds.images)
    negatives = sum(not r.annotations for r in ds.images)
    console.print(
        f"wrote {len(ds.images)} images ({boxes} boxes, {negatives} hard negatives) to {out}"
    )
