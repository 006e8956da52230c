"""``customs-vision reid export-feedback``: verdicts on CCTV sightings as a re-ID dataset."""

from __future__ import annotations

import getpass
from datetime import datetime
from pathlib import Path

import typer

from cv.cli.reid import app
from cv.errors import ConfigError, NotFoundError
from cv.log import console


def _time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(
            f"expected a date or time like 2024-05-01 or 2024-05-01T08:00, got {value!r}",
            field=field,
        ) from None


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in a bare container
        return "cli"


@app.command(
    "export-feedback",
    epilog="The export is PERSONAL DATA (crops of people from CCTV): it falls under the "
    "site's retention policy for CCTV data, is to be used only to fine-tune the re-ID "
    "embedder, and must be deleted when the policy says. Every export is recorded in the "
    "audit log (who, how many entries and sightings, where to).",
)
def export_feedback_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder to write."),
    db: str | None = typer.Option(
        None, "--db", help="Server database URL; default CV_SERVER_DATABASE_URL."
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Server image folder; default CV_SERVER_DATA_DIR."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only sightings seen from this date or time on (UTC)."
    ),
    until: str | None = typer.Option(
        None, "--until", help="Only sightings seen before this date or time (UTC)."
    ),
    list_name: str | None = typer.Option(None, "--list", help="Only entries of this watch list."),
    include_rejected: bool = typer.Option(
        False,
        "--include-rejected",
        help="Also write rejected sightings (people who matched nobody) to negatives/ "
        "as hard negatives.",
    ),
    include_ended: bool = typer.Option(
        False, "--include-ended", help="Also export entries that were revoked or have expired."
    ),
    actor: str | None = typer.Option(
        None, "--actor", help="Who exports, for the audit log; default cli:<user name>."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier export in OUT."),
) -> None:
    """Write confirmed CCTV sightings as a Market-1501 re-ID set: personal data.

    Each watch-list entry with a confirmed sighting is one person id: its
    enrolment reference crops under camera 1, its confirmed sightings' crops
    under cameras 2..9, one per CCTV camera (a site with more cameras reuses
    the digits with the next sequence: c2s2...). Candidates are never exported.
    manifest.json maps pids to entries and camera digits to cameras.

    Train on it with `customs-vision train reid --data OUT --p N`: PK batches
    need N identities (at least 2; the default N is 16).
    """
    from pydantic import ValidationError

    from cv.inference_server.db import session_factory
    from cv.inference_server.feedback_reid import (
        export_reid_feedback,
        open_database,
        summary_lines,
    )
    from cv.inference_server.settings import ServerSettings
    from cv.inference_server.storage import ImageStore

    start, end = _time(since, "since"), _time(until, "until")
    try:
        settings = ServerSettings()
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(err["msg"], field=".".join(str(x) for x in err["loc"])) from None
    db = db or settings.database_url
    data_dir = data_dir or settings.data_dir
    store_dir = Path(data_dir) / "cctv"
    if not store_dir.is_dir():
        raise NotFoundError("no CCTV image store here (is --data-dir right?)", path=store_dir)

    engine = open_database(db)
    try:
        with session_factory(engine)() as session:
            result = export_reid_feedback(
                session,
                ImageStore(store_dir),
                out,
                since=start,
                until=end,
                list_name=list_name,
                include_rejected=include_rejected,
                include_ended=include_ended,
                actor=actor or _default_actor(),
                overwrite=overwrite,
                retention_days=settings.reid_retention_days,
            )
    finally:
        engine.dispose()
    for line in summary_lines(result):
        console.print(line, highlight=False, soft_wrap=True)
