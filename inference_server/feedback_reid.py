"""Inspectors' verdicts on CCTV sightings become a re-ID dataset for fine-tuning.

A sighting that an inspector **confirmed** ("the same person") is a crop of a
watch-listed person on one of the site's own cameras, with a human-checked
identity: exactly what fine-tuning the embedder on the site's cameras needs. The
export is written in the Market-1501 layout that :func:`cv.datasets.reid.read_market1501`
and ``customs-vision train reid --data`` read::

    out/bounding_box_train/0001_c1s1_000007_01.jpg   pid 1, an enrolment reference crop
    out/bounding_box_train/0001_c2s1_000042_01.jpg   pid 1, confirmed sighting 42 on camera 2
    out/negatives/0000_c3s1_000051_01.jpg            rejected sighting 51 (--include-rejected)
    out/manifest.json                                pids, cameras, files, filters, who, counts

* **pids**: every watch-list entry with at least one exported confirmed sighting
  is one person id: the entry's rank by enrolment time among all the database's
  entries (from 1), so an entry keeps its pid across exports of the same database.
* **cameras**: ``c1`` holds the enrolment reference crops (a different camera from
  every CCTV camera); the sightings' cameras, sorted by id, get ``c2`` .. ``c9``.
  Market-1501 names hold one camera digit, so a site with more than 8 cameras is
  *folded*: the ninth camera is ``c2s2``, the tenth ``c3s2`` and so on (the
  sequence digit tells them apart; ``manifest.json`` maps every ``(camera, sequence)``
  to its camera id). Readers that look at the camera digit only then see two real
  cameras as one: the Market-1501 protocol drops same-camera gallery matches, so
  that only ever removes true cross-camera pairs from an evaluation, never adds
  a same-camera one.
* **rejected sightings** (``include_rejected``) are hard negatives: a person the
  matcher wrongly took for a watch-listed one. Market-1501 would call each a
  distractor (pid ``0000``), but training drops distractors
  (:meth:`cv.datasets.reid.ReidDataset.is_identity`), so they go to ``negatives/``
  (named with pid ``0000``), each with the pid it was confused with in the manifest.
* **never exported**: candidates (not yet verified) and, unless ``include_ended``,
  entries that were revoked or have expired: when an entry ends the server deletes
  its reference crops and vectors, and its person should not live on in training
  data by default. (A rejected sighting shows somebody else, so it is exported
  whatever the state of the entry it was mistaken for.)

**Privacy.** The export is personal data (biometric: body shape, clothing, gait
cut from CCTV frames). It falls under the site's retention policy; rejected
sightings are people who matched nobody, whose images the server itself deletes
after ``reid_retention_days``. Every export writes one ``export`` line to the
audit log (who, how many entries and sightings, which, whether rejected ones were
included, where to), in the database before the files are published.

Nothing is half-written: the files are copied into a staging folder inside
``out`` and moved into place only after everything was copied and the audit line
was committed. A stored crop that is missing is skipped with a warning (named by
sighting id and path) and counted in the summary.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cv.datasets.reid import MARKET_SPLITS
from cv.errors import ConfigError, NotFoundError
from cv.inference_server import cctv, db
from cv.inference_server.storage import ImageStore
from cv.log import progress as progress_bar

log = logging.getLogger(__name__)

TRAIN_FOLDER = MARKET_SPLITS["train"]
"""The Market-1501 training split, where identities go."""
NEGATIVES_FOLDER = "negatives"
"""Rejected sightings (hard negatives), outside every Market-1501 split."""
MANIFEST = "manifest.json"
"""The export's description."""
KIND = "reid-feedback"
"""``manifest.json``'s ``kind``: marks a folder this module wrote."""

REFERENCE_CAMERA = 1
"""Camera index of the enrolment reference crops."""
FIRST_CAMERA = 2
"""Camera index of the first CCTV camera."""
CAMERA_SLOTS = 8
"""CCTV camera indices in one sequence (``c2`` .. ``c9``: Market names hold one digit)."""

MIN_IDENTITIES = 2
"""Fewest identities PK batches can be made of (``train reid --p`` is at least 2)."""
DEFAULT_P = 16
"""``train reid``'s default identities per batch."""

NOTICE = (
    "PERSONAL DATA. This folder holds crops of people cut from CCTV frames: biometric "
    "personal data. It falls under the site's retention policy for CCTV data: keep it only "
    "for the stated purpose (fine-tuning the re-ID embedder), only as long as the policy "
    "allows, and delete it (and copies) when that time is up. Rejected sightings "
    "(negatives/) are people who matched nobody; the server deletes its own copies of them "
    "after its retention period. The export is recorded in the audit log."
)
"""What every export says about itself (in ``manifest.json`` and the CLI's help)."""

_TABLES = ("cameras", "watchlist_entries", "watchlist_vectors", "sightings", "audit_log")


def open_database(database_url: str) -> Engine:
    """An engine on an existing server database that holds the CCTV tables
    (:func:`cv.inference_server.db.open_existing`)."""
    return db.open_existing(database_url, tables=_TABLES, what="CCTV tables")


def _utc(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return db.as_utc(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else db.as_utc(value).isoformat()


def camera_slot(rank: int) -> tuple[int, int]:
    """``(camera index, sequence)`` of the ``rank``-th CCTV camera (0-based, sorted by id).

    ``c2s1`` .. ``c9s1`` for the first eight; from the ninth on the indices start
    again with the next sequence (``c2s2``...), see the module docstring.
    """
    return FIRST_CAMERA + rank % CAMERA_SLOTS, 1 + rank // CAMERA_SLOTS


@dataclass(slots=True)
class ReidFeedbackExport:
    """What an export wrote.

    Attributes:
        out: The dataset folder.
        identities: Person ids written (entries).
        references: Enrolment reference crops written (camera 1).
        sightings: Confirmed sighting crops written.
        negatives: Rejected sighting crops written to ``negatives/``.
        skipped: One ``{"sighting_id" | "vector_id", "path", "reason"}`` per image
            that was left out (missing file, images purged, no crop stored).
        ended_entries: Entries left out because they were revoked or had expired.
        cameras: Camera id -> ``"c<index>s<sequence>"``.
        folded: Whether more than 8 cameras share the 8 camera digits.
        hint: What ``train reid`` needs for this many identities, or ``None``.
        manifest: The ``manifest.json`` written.
    """

    out: Path
    identities: int
    references: int
    sightings: int
    negatives: int
    skipped: list[dict[str, Any]] = field(default_factory=list)
    ended_entries: int = 0
    cameras: dict[str, str] = field(default_factory=dict)
    folded: bool = False
    hint: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict)


def training_hint(identities: int) -> str | None:
    """What ``train reid`` needs for an export of ``identities`` people, or ``None``."""
    if identities < MIN_IDENTITIES:
        return (
            f"{identities} identity: PK batches need at least {MIN_IDENTITIES}; add more "
            "confirmed sightings, or train on this folder together with another re-ID set"
        )
    if identities < DEFAULT_P:
        return (
            f"{identities} identities: fewer than train reid's default of {DEFAULT_P} per "
            f"batch; train with --p {identities} or fewer (at least {MIN_IDENTITIES})"
        )
    return None


def _taken(out: Path) -> list[str]:
    names = (*MARKET_SPLITS.values(), NEGATIVES_FOLDER, MANIFEST)
    return [
        n
        for n in names
        if (out / n).exists() and (not (out / n).is_dir() or any((out / n).iterdir()))
    ]


@dataclass(slots=True)
class _Copy:
    src: Path
    dst: str  # relative to out
    record: dict[str, Any]


def export_reid_feedback(
    session: Session,
    store: ImageStore,
    out: str | Path,
    *,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    list_name: str | None = None,
    include_rejected: bool = False,
    include_ended: bool = False,
    actor: str,
    overwrite: bool = False,
    retention_days: float | None = None,
    progress: bool | None = None,
) -> ReidFeedbackExport:
    """Writes confirmed (and optionally rejected) sightings as a Market-1501 re-ID set.

    Reads the database, copies the stored crops, writes ``manifest.json``, adds one
    ``export`` line to the audit log and commits it, then moves the files into
    ``out`` (see the module docstring for the layout and the rules).

    Args:
        session: A session on the server's database (this commits the audit line).
        store: The server's CCTV image store (``CV_SERVER_DATA_DIR/cctv``).
        out: The dataset folder to write.
        since: Only sightings seen at or after this time (a date means its midnight;
            naive times are UTC).
        until: Only sightings seen before this time.
        list_name: Only entries of this watch list.
        include_rejected: Also write rejected sightings to ``negatives/``.
        include_ended: Also export entries that were revoked or have expired.
        actor: Who exports (for the audit log and the manifest).
        overwrite: Replace an earlier export in ``out``.
        retention_days: The server's ``reid_retention_days``, recorded in the manifest
            with the date by which the negatives should be deleted.
        progress: Show a progress bar; ``None`` shows it when stderr is a terminal.

    Returns:
        What was written.

    Raises:
        ConfigError: If ``actor`` is empty or too long, the time range is empty, or
            ``out`` already holds a dataset and ``overwrite`` is false.
        NotFoundError: If no confirmed sighting matches, or none of their crops
            exist in the store. Nothing is written then.
    """
    out = Path(out)
    actor = actor.strip()
    if not actor or len(actor) > 64:
        raise ConfigError("say who exports, in 1 to 64 characters", field="actor")
    start = None if since is None else _utc(since)
    end = None if until is None else _utc(until)
    if start is not None and end is not None and end <= start:
        raise ConfigError(
            f"until ({end.isoformat()}) must come after since ({start.isoformat()})",
            field="until",
        )
    if out.exists() and not out.is_dir():
        raise ConfigError("exists and is not a folder", path=out)
    taken = _taken(out) if out.is_dir() else []
    if taken and not overwrite:
        raise ConfigError(
            f"already holds {', '.join(taken)}; choose a new folder or replace it (--overwrite)",
            path=out,
        )

    now = db.utcnow()
    database = db.masked_url(session.get_bind().url)
    filters = {
        "since": _iso(start),
        "until": _iso(end),
        "time_field": "seen_at (when the camera saw the person)",
        "list_name": list_name,
        "include_rejected": include_rejected,
        "include_ended": include_ended,
    }
    described = ", ".join(
        [f"{k} {_iso(v)}" for k, v in (("since", start), ("until", end)) if v is not None]
        + ([f"list {list_name!r}"] if list_name else [])
    )

    # The pid of an entry is its rank by enrolment among all entries: stable over exports.
    order = session.execute(
        select(db.WatchlistEntry.id).order_by(db.WatchlistEntry.created_at, db.WatchlistEntry.id)
    ).scalars()
    pid_of = {entry_id: i for i, entry_id in enumerate(order, start=1)}

    states = ("confirmed", "rejected") if include_rejected else ("confirmed",)
    query = (
        select(db.Sighting, db.WatchlistEntry)
        .join(db.WatchlistEntry, db.WatchlistEntry.id == db.Sighting.entry_id)
        .where(db.Sighting.state.in_(states))
    )
    if start is not None:
        query = query.where(db.Sighting.seen_at >= start)
    if end is not None:
        query = query.where(db.Sighting.seen_at < end)
    if list_name is not None:
        query = query.where(db.WatchlistEntry.list_name == list_name)
    rows = session.execute(query.order_by(db.Sighting.id)).all()
    confirmed = [(s, e) for s, e in rows if s.state == "confirmed"]
    rejected = [(s, e) for s, e in rows if s.state == "rejected"]
    if not confirmed:
        raise NotFoundError(
            "no confirmed sightings to export" + (f" ({described})" if described else ""),
            path=database,
        )
    ended = {e.id for _, e in confirmed if cctv.entry_state(e, now) != "active"}
    if not include_ended:
        confirmed = [(s, e) for s, e in confirmed if e.id not in ended]
        if not confirmed:
            raise NotFoundError(
                f"every confirmed sighting{f' ({described})' if described else ''} belongs to an "
                f"entry that was revoked or has expired ({len(ended)} entries); --include-ended "
                "exports them too",
                path=database,
            )

    skipped: list[dict[str, Any]] = []

    def usable(kind: str, key: int, rel: str | None, purged: datetime | None) -> Path | None:
        what = f"{kind}_id"
        if rel is None:
            reason = (
                f"images deleted at the end of the retention period ({_iso(purged)})"
                if purged is not None
                else "no crop was stored"
            )
            log.info("%s %d: %s; skipped", kind, key, reason)
            skipped.append({what: key, "path": None, "reason": reason})
            return None
        src = store.root / rel
        if not src.is_file():
            log.warning("%s %d: stored crop %s is missing; skipped", kind, key, src)
            skipped.append({what: key, "path": str(src), "reason": "stored crop file is missing"})
            return None
        return src

    # Confirmed crops first: an entry whose crops are all missing is no identity.
    crops: dict[str, list[tuple[db.Sighting, Path]]] = {}
    for sighting, entry in confirmed:
        src = usable("sighting", sighting.id, sighting.crop_path, sighting.images_purged_at)
        if src is not None:
            crops.setdefault(entry.id, []).append((sighting, src))
    if not crops:
        raise NotFoundError(
            f"none of the {len(confirmed)} confirmed sightings' crops exist in the image store",
            path=store.root,
        )
    entries = {e.id: e for _, e in confirmed if e.id in crops}
    dropped = sorted({e.id for _, e in confirmed} - set(entries))
    negatives: list[tuple[db.Sighting, db.WatchlistEntry, Path]] = []
    for sighting, entry in rejected:
        src = usable("sighting", sighting.id, sighting.crop_path, sighting.images_purged_at)
        if src is not None:
            negatives.append((sighting, entry, src))

    from cv.datasets.cctv import market_name

    camera_ids = sorted(
        {s.camera_id for v in crops.values() for s, _ in v} | {s.camera_id for s, _, _ in negatives}
    )
    slots = {cam: camera_slot(rank) for rank, cam in enumerate(camera_ids)}
    cameras = {
        c.id: c for c in session.scalars(select(db.Camera).where(db.Camera.id.in_(camera_ids)))
    }

    copies: list[_Copy] = []
    identities: dict[str, dict[str, Any]] = {}
    for entry_id in sorted(entries, key=lambda i: pid_of[i]):
        entry, pid = entries[entry_id], pid_of[entry_id]
        references = 0
        for vector in entry.vectors:
            src = usable("vector", vector.id, vector.crop_path, None)
            if src is None:
                continue
            name = market_name(pid, REFERENCE_CAMERA, vector.id)
            copies.append(
                _Copy(
                    src,
                    f"{TRAIN_FOLDER}/{Path(name).with_suffix(src.suffix.lower())}",
                    {"pid": pid, "kind": "reference", "entry_id": entry_id, "vector_id": vector.id},
                )
            )
            references += 1
        for sighting, src in crops[entry_id]:
            cam, seq = slots[sighting.camera_id]
            name = market_name(pid, cam, sighting.id, sequence=seq)
            copies.append(
                _Copy(
                    src,
                    f"{TRAIN_FOLDER}/{Path(name).with_suffix(src.suffix.lower())}",
                    {
                        "pid": pid,
                        "kind": "sighting",
                        "entry_id": entry_id,
                        "sighting_id": sighting.id,
                        "camera_id": sighting.camera_id,
                        "seen_at": _iso(sighting.seen_at),
                        "similarity": round(sighting.similarity, 4),
                        "resolved_by": sighting.resolved_by,
                        "resolved_at": _iso(sighting.resolved_at),
                    },
                )
            )
        identities[f"{pid:04d}"] = {
            "entry_id": entry_id,
            "label": entry.label,
            "list_name": entry.list_name,
            "state": cctv.entry_state(entry, now),
            "references": references,
            "sightings": len(crops[entry_id]),
            "cameras": sorted({s.camera_id for s, _ in crops[entry_id]}),
        }
    for sighting, entry, src in negatives:
        cam, seq = slots[sighting.camera_id]
        name = market_name(0, cam, sighting.id, sequence=seq)
        confused = pid_of[entry.id] if entry.id in entries else None
        copies.append(
            _Copy(
                src,
                f"{NEGATIVES_FOLDER}/{Path(name).with_suffix(src.suffix.lower())}",
                {
                    "pid": 0,
                    "kind": "negative",
                    "sighting_id": sighting.id,
                    "camera_id": sighting.camera_id,
                    "seen_at": _iso(sighting.seen_at),
                    "similarity": round(sighting.similarity, 4),
                    "resolved_by": sighting.resolved_by,
                    "resolved_at": _iso(sighting.resolved_at),
                    "confused_with": {
                        "entry_id": entry.id,
                        "label": entry.label,
                        "pid": confused,
                    },
                },
            )
        )

    n_refs = sum(c.record["kind"] == "reference" for c in copies)
    n_sightings = sum(c.record["kind"] == "sighting" for c in copies)
    seen = [s.seen_at for v in crops.values() for s, _ in v] + [s.seen_at for s, _, _ in negatives]
    delete_by = None
    if negatives and retention_days is not None:
        first = min(db.as_utc(s.seen_at) for s, _, _ in negatives)
        delete_by = (first + timedelta(days=retention_days)).isoformat()
    folded = len(camera_ids) > CAMERA_SLOTS
    hint = training_hint(len(identities))
    manifest: dict[str, Any] = {
        "kind": KIND,
        "layout": "market1501",
        "notice": NOTICE,
        "exported_at": now.isoformat(),
        "exported_by": actor,
        "database": database,
        "image_store": str(store.root),
        "server_retention_days": retention_days,
        "filters": filters,
        "time_range": {
            "first_seen": _iso(min(seen)),
            "last_seen": _iso(max(seen)),
        },
        "counts": {
            "identities": len(identities),
            "references": n_refs,
            "sightings": n_sightings,
            "negatives": len(negatives),
            "images": len(copies),
            "skipped": len(skipped),
            "ended_entries_left_out": 0 if include_ended else len(ended),
            "entries_without_crops": len(dropped),
        },
        "pids": identities,
        "cameras": {
            "c1s1": {"camera_id": None, "what": "enrolment reference crops"},
            **{
                f"c{cam}s{seq}": {
                    "camera_id": cam_id,
                    "site": getattr(cameras.get(cam_id), "site", None),
                    "location": getattr(cameras.get(cam_id), "location", None),
                }
                for cam_id, (cam, seq) in slots.items()
            },
        },
        "cameras_folded": folded,
        "negatives": {
            "folder": NEGATIVES_FOLDER if include_rejected else None,
            "meaning": "rejected sightings: a person the matcher wrongly took for a "
            "watch-listed one (an inspector said: not the same person). Each is its own "
            "distractor (pid 0000), not a training identity; 'confused_with' names the "
            "entry it was mistaken for.",
            "delete_by": delete_by,
        },
        "training": {
            "command": f"customs-vision train reid --data {out}",
            "min_identities": MIN_IDENTITIES,
            "hint": hint,
        },
        "files": [{"file": c.dst, **c.record} for c in copies],
        "skipped": skipped,
        "entries_without_crops": dropped,
    }

    # Stage everything inside out (same file system: the moves below are renames).
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f".{KIND}-partial-*"):  # left by a killed export: personal data too
        shutil.rmtree(stale, ignore_errors=True)
    stage = out / f".{KIND}-partial-{secrets.token_hex(4)}"
    published = False
    try:
        (stage / TRAIN_FOLDER).mkdir(parents=True)
        if include_rejected:
            (stage / NEGATIVES_FOLDER).mkdir()
        with progress_bar(disable=None if progress is None else not progress) as bar:
            task = bar.add_task("copying re-ID crops", total=len(copies))
            for c in copies:
                shutil.copyfile(c.src, stage / c.dst)
                bar.advance(task)
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")

        cctv.audit(
            session,
            actor=actor,
            action="export",
            list_name=list_name,
            detail={
                "what": "re-ID feedback dataset (personal data)",
                "out": str(out.absolute()),
                "entries": len(identities),
                "sightings": n_sightings,
                "references": n_refs,
                "negatives": len(negatives),
                "include_rejected": include_rejected,
                "include_ended": include_ended,
                "skipped": len(skipped),
                "since": _iso(start),
                "until": _iso(end),
                "entry_ids": sorted(entries),
                "sighting_ids": sorted(
                    c.record["sighting_id"] for c in copies if "sighting_id" in c.record
                ),
            },
            at=now,
        )
        session.commit()

        for name in _taken(out):
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
        for item in sorted(stage.iterdir()):
            item.rename(out / item.name)
        published = True
    except BaseException:
        session.rollback()
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created and not published:
            shutil.rmtree(out, ignore_errors=True)

    return ReidFeedbackExport(
        out=out,
        identities=len(identities),
        references=n_refs,
        sightings=n_sightings,
        negatives=len(negatives),
        skipped=skipped,
        ended_entries=0 if include_ended else len(ended),
        cameras={cam_id: f"c{cam}s{seq}" for cam_id, (cam, seq) in slots.items()},
        folded=folded,
        hint=hint,
        manifest=manifest,
    )


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def summary_lines(result: ReidFeedbackExport) -> Sequence[str]:
    """What the CLI says about an export, one line each."""
    cameras = {cam for pid in result.manifest["pids"].values() for cam in pid["cameras"]}
    lines = [
        f"wrote {_count(result.identities, 'identity', 'identities')} "
        f"({_count(result.references, 'reference crop')}, "
        f"{_count(result.sightings, 'confirmed sighting crop')} on "
        f"{_count(len(cameras), 'camera')}"
        + (", folded into c2..c9 by sequence" if result.folded else "")
        + f") to {result.out / TRAIN_FOLDER}"
    ]
    if result.negatives:
        lines.append(
            f"wrote {_count(result.negatives, 'rejected sighting')} (hard negatives) to "
            f"{result.out / NEGATIVES_FOLDER}"
        )
    if result.skipped:
        lines.append(f"skipped {_count(len(result.skipped), 'image')} (listed in manifest.json)")
    if result.ended_entries:
        ended = _count(
            result.ended_entries, "revoked or expired entry", "revoked or expired entries"
        )
        lines.append(f"left out {ended} (--include-ended exports them)")
    if result.hint:
        lines.append(f"training: {result.hint}")
    delete_by = result.manifest["negatives"]["delete_by"]
    if delete_by:
        when = datetime.fromisoformat(delete_by).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(f"delete negatives/ by {when}: the server's retention period ends then")
    lines.append(
        "this export is personal data under the site's retention policy; it was recorded "
        "in the audit log"
    )
    return lines
