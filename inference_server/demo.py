"""The demo scan feed: synthetic bags and parcels posted to the server's own API.

``customs-vision serve run --demo`` (``CV_SERVER_DEMO_FEED=true``) starts a
:class:`DemoFeed` in the app's lifespan (:func:`start_demo_feed`). It plays the
X-ray machines of an airport and an express-cargo centre: at ``demo_rate`` scans
per second, steadily, it posts one synthetic scan to ``POST /v1/scans`` **over
HTTP**, exactly as a scanner would, so every demo scan walks the whole
scan-to-alert path (validation, storage, batcher, detections, outbox, push to the
handhelds) and the reader console and the handheld page show it.

What it posts (:data:`LANES`): cabin bags at the security checkpoints and hold
bags at the hold-baggage screening of ICN-T1 and ICN-T2, express parcels at
ICN-CARGO. Each lane is one scanner with its own look (scanner profile) and image
size. Hold bags carry an IATA bag tag, parcels an air waybill with its check
digit, some scans a declaration reference (:func:`scan_fields`). A share of the
scans is clean (:data:`CLEAN_FRACTION`), the rest hide one to three items to find.

Images come from :func:`cv.datasets.synth.make_scan` in a worker thread of their
own, never on the event loop (:class:`ScanPool`): a small pool is made at start
(the first scan goes out as soon as it exists), then one scan is renewed for each
one taken, so the feed keeps changing. Every post has a new scan id; the
content-addressed image store keeps one copy of an image posted twice.

Transient errors do not stop it (:meth:`DemoFeed.post`): until the server listens
(the lifespan runs before uvicorn binds its socket) and while no model is loaded,
it waits (:meth:`DemoFeed.wait_until_ready`: asked in process, so a server without
a model gets no stream of readiness probes in its log); a 429 or a 503 with ``Retry-After`` (nothing was stored) is retried with
the same scan id after that many seconds; a 504 means the scan is stored and will
be inferred later; a broken connection drops that scan and the next one follows
on schedule. :meth:`DemoFeed.stop` cancels it at shutdown.

CCTV (:class:`CctvDemo`): when the re-ID models are loaded (``demo_cctv``, on by
default), the demo also plays two customs-control cameras. It generates a
synthetic two-camera sequence once (:func:`cv.datasets.cctv.generate_sequences`,
kept beside the server's data folder), registers its cameras, enrols one of the
travellers who walk through them on a ``demo`` watch list (authorised by "demo",
expiring in a day, audited like any enrolment), and starts a looping video
source per camera, so re-ID sightings reach the handheld next to the X-ray
alerts. The cameras' videos go through the same worker an RTSP camera would.

Tokens (:func:`demo_tokens`): the feed posts with the scanner bootstrap token. On a
database that had tokens already (so no bootstrap tokens were made), it creates
its own ``demo-<role>-<run>`` tokens for a scanner, a reader and an inspector, and
revokes them when it stops. As soon as the server listens, it prints the console and
handheld addresses with the reader and inspector tokens, so that a person can
sign in at once (printed, never logged, like the bootstrap tokens), saying so
when no model is loaded yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np
from sqlalchemy.orm import sessionmaker

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
"""Where the feed posts when the app was not told its address (uvicorn's default port)."""

CLEAN_FRACTION = 0.5
"""Share of demo scans with nothing to find."""
POOL_SIZE = 12
"""Scans kept ready; each one taken is replaced by a new one in the background."""
MAX_RETRY_AFTER_S = 30.0
"""Longest wait the feed accepts from a ``Retry-After`` header."""
READY_POLL_S = 1.0
"""First wait between readiness checks; over HTTP each wait doubles up to :data:`READY_POLL_MAX_S`."""
READY_POLL_MAX_S = 30.0

SIGN_IN_PAGES: tuple[tuple[str, str, str], ...] = (
    ("reader console", "/console", "reader"),
    ("handheld", "/handheld", "inspector"),
    ("watch list", "/watchlist", "admin"),
)
"""(label, path, role) of the pages printed with a token (routes of :mod:`.pages`)."""

DEMO_ROLES = ("scanner", "reader", "inspector", "admin")
"""Roles the demo needs: the feed itself, the console's reader, the handheld's inspector,
the watch-list page's admin."""


@dataclass(frozen=True, slots=True)
class Lane:
    """One X-ray machine of the demo.

    Attributes:
        site: Airport terminal or cargo centre.
        lane: The machine's lane at that site.
        kind: What it scans: ``cabin_bag``, ``hold_bag`` or ``parcel``.
        containers: Container kinds of :func:`cv.datasets.synth.make_scan` it sees.
        profile: Its scanner profile (the look of its images).
        size: ``(width, height)`` of its images in pixels.
        weight: How often it scans, relative to the other lanes.
    """

    site: str
    lane: str
    kind: str
    containers: tuple[str, ...]
    profile: str
    size: tuple[int, int]
    weight: float


_CABIN = ("backpack", "soft_bag")
_HOLD = ("suitcase", "soft_bag")
_PARCEL = ("parcel",)

LANES: tuple[Lane, ...] = (
    Lane("ICN-T1", "SEC-A1", "cabin_bag", _CABIN, "saturated", (800, 600), 2.0),
    Lane("ICN-T1", "SEC-A2", "cabin_bag", _CABIN, "pale", (800, 600), 1.0),
    Lane("ICN-T1", "HBS-1", "hold_bag", _HOLD, "hires", (960, 640), 2.0),
    Lane("ICN-T2", "SEC-B1", "cabin_bag", _CABIN, "teal", (800, 600), 1.0),
    Lane("ICN-T2", "HBS-2", "hold_bag", _HOLD, "saturated", (960, 640), 1.0),
    Lane("ICN-CARGO", "EXP-1", "parcel", _PARCEL, "noisy", (800, 640), 2.0),
    Lane("ICN-CARGO", "EXP-2", "parcel", _PARCEL, "pale", (800, 640), 1.0),
)
"""The demo's machines: two terminals (checkpoints and hold baggage) and a cargo centre."""

# IATA numeric airline codes: Korean Air, Asiana; cargo also FedEx and UPS.
_AIRLINES = ("180", "988")
_CARRIERS = ("180", "988", "023", "406")


# -- what a scan looks like ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoScan:
    """One synthetic scan ready to post.

    Attributes:
        png: The image, PNG-encoded.
        lane: The machine that "took" it.
        threats: Classes of the items hidden in it (empty: a clean scan).
    """

    png: bytes
    lane: Lane
    threats: tuple[str, ...]


@functools.lru_cache(maxsize=16)
def _profile(name: str) -> Any:
    from cv.xray import load_profile

    return load_profile(name)


def make_demo_scan(
    seed: int, *, clean_fraction: float = CLEAN_FRACTION, lanes: Sequence[Lane] = LANES
) -> DemoScan:
    """Makes one synthetic scan of a lane drawn by weight (blocking: run it in a thread).

    Args:
        seed: Seed of the scan; the same seed gives the same scan.
        clean_fraction: Probability that it hides nothing.
        lanes: The lanes to draw from.
    """
    from cv.datasets.synth import make_scan
    from cv.image import encode_png

    rng = np.random.default_rng(seed)
    weights = np.array([lane.weight for lane in lanes], dtype=np.float64)
    lane = lanes[int(rng.choice(len(lanes), p=weights / weights.sum()))]
    clean = bool(rng.random() < clean_fraction)
    container = str(rng.choice(lane.containers))
    image, record = make_scan(
        rng, size=lane.size, profile=_profile(lane.profile), container=container, clean=clean
    )
    threats = tuple(a.category for a in record.annotations)
    return DemoScan(png=encode_png(image), lane=lane, threats=threats)


def awb_number(carrier: str, serial7: int) -> str:
    """An air waybill number ``CCC-SSSSSSSD``: the carrier prefix and 7 digits + check digit.

    The check digit is the 7-digit serial modulo 7 (IATA's rule).
    """
    return f"{carrier}-{serial7:07d}{serial7 % 7}"


def scan_fields(lane: Lane, scan_id: str, rng: np.random.Generator) -> dict[str, str]:
    """The form fields of ``POST /v1/scans`` for one scan of ``lane``.

    Hold bags always carry their bag tag (an IATA licence plate: ``0``, the airline's
    numeric code, a 6-digit serial) and parcels their air waybill, as the API
    requires; some cabin bags are matched to a boarding pass' bag tag too. About
    half the parcels and a few hold bags carry a declaration reference.
    """
    fields = {"scan_id": scan_id, "site": lane.site, "lane": lane.lane, "kind": lane.kind}
    year = datetime.now(UTC).year % 100
    if lane.kind == "hold_bag" or (lane.kind == "cabin_bag" and rng.random() < 0.1):
        fields["bag_tag"] = f"0{rng.choice(_AIRLINES)}{int(rng.integers(0, 1_000_000)):06d}"
    if lane.kind == "parcel":
        fields["awb"] = awb_number(str(rng.choice(_CARRIERS)), int(rng.integers(0, 10_000_000)))
        if rng.random() < 0.5:
            # An import declaration number: declarant code, year, serial.
            declarant = int(rng.integers(10_000, 100_000))
            fields["declaration_ref"] = (
                f"{declarant}-{year:02d}-{int(rng.integers(0, 10_000_000)):07d}"
            )
    elif lane.kind == "hold_bag" and rng.random() < 0.1:
        # A traveller's customs declaration (goods to declare).
        fields["declaration_ref"] = f"TD-{year:02d}-{int(rng.integers(0, 10_000_000)):07d}"
    return fields


# -- the pool of ready scans ---------------------------------------------------------


class ScanPool:
    """Synthetic scans made in a worker thread: a small pool, renewed as scans are taken.

    Args:
        size: Scans kept ready.
        seed: Seed of the first scan; later scans take the following seeds.
        clean_fraction: Share of clean scans.
    """

    def __init__(
        self, *, size: int = POOL_SIZE, seed: int = 0, clean_fraction: float = CLEAN_FRACTION
    ) -> None:
        self.size = max(1, size)
        self.seed = seed
        self.clean_fraction = clean_fraction
        self._scans: list[DemoScan] = []
        self._next = 0
        self._made = 0
        self._ready = asyncio.Event()
        self._wanted = asyncio.Event()
        # One thread of its own: making scans never takes the server's worker threads.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-scans")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts making scans in the background."""
        self._task = asyncio.get_running_loop().create_task(self._fill(), name="demo-scan-pool")

    async def take(self) -> DemoScan:
        """The next scan (waits only until the very first one exists)."""
        await self._ready.wait()
        scan = self._scans[self._next % len(self._scans)]
        self._next += 1
        self._wanted.set()
        return scan

    async def stop(self) -> None:
        """Stops making scans."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)

    async def _fill(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if len(self._scans) >= self.size:
                # Full: renew one scan per scan taken (the one just taken, which
                # comes round again last).
                await self._wanted.wait()
                self._wanted.clear()
            make = functools.partial(
                make_demo_scan, self.seed + self._made, clean_fraction=self.clean_fraction
            )
            try:
                scan = await loop.run_in_executor(self._executor, make)
            except Exception:
                log.exception("demo feed: making a synthetic scan failed; trying the next seed")
                self._made += 1
                await asyncio.sleep(1.0)
                continue
            if len(self._scans) < self.size:
                self._scans.append(scan)
            else:
                self._scans[(self._next - 1) % self.size] = scan
            self._made += 1
            self._ready.set()


# -- the feed ------------------------------------------------------------------------


_LOOPBACK = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}


def local_url(base_url: str) -> str:
    """``base_url`` with a wildcard host replaced by loopback: ``0.0.0.0`` by
    ``127.0.0.1``, ``[::]`` by ``[::1]``.

    A server listening on every interface is reached by the feed on loopback.
    """
    parts = urlsplit(base_url)
    loopback = _LOOPBACK.get(parts.hostname or "")
    if loopback is not None:
        netloc = f"{loopback}:{parts.port}" if parts.port else loopback
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts).rstrip("/")


def sign_in_text(base_url: str, tokens: Mapping[str, str]) -> str:
    """The lines that tell a person where to sign in, with which token."""
    lines = ["demo: sign in with these links (the token is in the link; demo tokens only)"]
    for label, path, role in SIGN_IN_PAGES:
        if role in tokens:
            lines.append(f"  {label:<15} {base_url}{path}?token={tokens[role]}")
    return "\n".join(lines)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(value)))
    except ValueError:
        return 1.0  # an HTTP date: not sent by our server; wait a little and retry


class DemoFeed:
    """Posts synthetic scans to a server at a steady rate, over HTTP.

    Args:
        base_url: The server's address (``http://127.0.0.1:8000``).
        scanner_token: A token that may post scans.
        rate: Scans per second. The feed posts one scan at a time, so a server
            slower than ``1 / rate`` per scan gets them as fast as it answers.
        pool: Where the scans come from.
        sign_in: Printed once the server listens (addresses with tokens), if given.
        not_ready: Why the server cannot infer yet, ``None`` once it can, asked in
            process; without it the feed asks ``/v2/health/ready`` over HTTP.
        run: Short id of this run, part of every scan id (ids stay unique across
            restarts on the same database).
        timeout_s: Timeout of one upload.
    """

    def __init__(
        self,
        *,
        base_url: str,
        scanner_token: str,
        rate: float,
        pool: ScanPool,
        sign_in: str | None = None,
        not_ready: Callable[[], str | None] | None = None,
        run: str | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate: must be > 0 scans/s, got {rate}")
        self.base_url = base_url.rstrip("/")
        self.scanner_token = scanner_token
        self.period_s = 1.0 / rate
        self.pool = pool
        self.sign_in = sign_in
        self.not_ready = not_ready
        self.run = run or secrets.token_hex(3)
        self.timeout_s = timeout_s
        self.counts = {"posted": 0, "alerts": 0, "deferred": 0, "retried": 0, "failed": 0}
        self._rng = np.random.default_rng(pool.seed)
        self._sent = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Starts the pool and the posting task on the running loop."""
        self.pool.start()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="demo-feed")

    async def stop(self) -> None:
        """Stops posting (an upload in flight is abandoned) and stops the pool."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.pool.stop()
        log.info("demo feed stopped: %s", self.counts)

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.scanner_token}"}
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=self.timeout_s
        ) as client:
            await self.wait_until_listening(client)
            why = await self.why_not_ready(client)
            if self.sign_in:
                # Printed, not logged: the secrets must not end up in log storage.
                waiting = (
                    f"\ndemo: no X-ray model is loaded yet ({why}); scans start once one is "
                    "(POST /v1/admin/models/xray)"
                    if why
                    else ""
                )
                print(self.sign_in + waiting, flush=True)
            if why:
                await self.wait_until_ready(client, why)
            log.info("demo feed posting %.3g scans/s to %s", 1 / self.period_s, self.base_url)
            loop = asyncio.get_running_loop()
            next_at = loop.time()
            while True:
                scan = await self.pool.take()
                try:
                    await self.post(client, scan)
                except Exception:  # a demo that stops on a surprise shows nothing more
                    self.counts["failed"] += 1
                    log.exception("demo feed: posting a scan failed unexpectedly")
                next_at += self.period_s
                now = loop.time()
                if next_at < now:
                    next_at = now  # fell behind (slow server): no burst to catch up
                await asyncio.sleep(next_at - now)

    async def wait_until_listening(self, client: httpx.AsyncClient) -> None:
        """Waits until the server answers HTTP (the lifespan runs before it listens)."""
        while True:
            try:
                await client.get("/v2/health/live")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.2)

    async def why_not_ready(self, client: httpx.AsyncClient) -> str | None:
        """Why the server cannot infer yet, or ``None`` once it can."""
        if self.not_ready is not None:
            return self.not_ready()
        try:
            response = await client.get("/v2/health/ready")
        except httpx.TransportError as exc:
            return f"not answering ({exc!r})"
        if response.status_code == 200:
            return None
        return str(_json_or_empty(response).get("detail") or response.text[:200])

    async def wait_until_ready(self, client: httpx.AsyncClient, why: str | None = None) -> None:
        """Waits until the server can infer: asked in process every :data:`READY_POLL_S`,
        or over HTTP with a doubling wait (a readiness probe is an access-log line)."""
        if why is None:
            why = await self.why_not_ready(client)
        if why is None:
            return
        log.info("demo feed waits for the server to be ready: %s", why)
        wait = READY_POLL_S
        while True:
            await asyncio.sleep(wait)
            if await self.why_not_ready(client) is None:
                return
            if self.not_ready is None:
                wait = min(2 * wait, READY_POLL_MAX_S)

    async def post(self, client: httpx.AsyncClient, scan: DemoScan) -> None:
        """Posts one scan, retrying it while the server says to (429, 503 + Retry-After)."""
        self._sent += 1
        scan_id = f"demo-{self.run}-{self._sent:06d}"
        fields = scan_fields(scan.lane, scan_id, self._rng)
        files = {"image": (f"{scan_id}.png", scan.png, "image/png")}
        retried = False
        while True:
            try:
                response = await client.post("/v1/scans", data=fields, files=files)
            except httpx.TransportError as exc:
                # The server restarts or stops, or timed out: this scan may or may not be
                # stored, so it is not sent again; the next one follows on schedule.
                self.counts["failed"] += 1
                log.warning("demo feed: posting %s failed (%r)", scan_id, exc)
                await asyncio.sleep(1.0)
                return
            code = response.status_code
            if code == 201:
                self.counts["posted"] += 1
                if response.json().get("alert") is not None:
                    self.counts["alerts"] += 1
                return
            wait = _retry_after(response)
            if code in (429, 503) and wait is not None:
                # Queue full or no model: nothing was stored, so the same id is retried.
                self.counts["retried"] += 1
                retried = True
                await asyncio.sleep(wait)
                continue
            if code == 504 or (code == 503 and "scan_id" in _json_or_empty(response)):
                self.counts["deferred"] += 1  # stored; the server infers it later
                return
            if code == 409 and retried:
                self.counts["posted"] += 1  # an earlier attempt of ours was stored after all
                return
            self.counts["failed"] += 1
            log.warning("demo feed: %s refused with %d: %s", scan_id, code, response.text[:300])
            return


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# -- wiring into the app ----------------------------------------------------------------


def _model_not_ready(models: Any) -> str | None:
    """Why the server's :class:`~.modelhost.ModelHost` cannot infer, ``None`` once it can."""
    if models.ready:
        return None
    return models.last_error or "no model loaded"


def demo_tokens(
    sessions: sessionmaker, bootstrap: Mapping[str, str], *, run: str
) -> tuple[dict[str, str], list[str]]:
    """The secrets the demo uses, by role: the bootstrap ones, else new demo tokens.

    Args:
        sessions: Database sessions.
        bootstrap: Role -> secret of the bootstrap tokens made at this start (empty
            when the database had tokens already).
        run: Short id of this run, part of the new tokens' names.

    Returns:
        Role -> secret for every role in :data:`DEMO_ROLES`, and the names of the
        tokens created here (to revoke when the demo stops).
    """
    from cv.inference_server.auth import create_token

    tokens = {role: bootstrap[role] for role in DEMO_ROLES if role in bootstrap}
    created: list[str] = []
    with sessions() as session:
        for role in DEMO_ROLES:
            if role not in tokens:
                name = f"demo-{role}-{run}"
                tokens[role] = create_token(session, name=name, role=role)
                created.append(name)
    return tokens, created


def revoke_tokens(sessions: sessionmaker, names: Sequence[str]) -> None:
    """Revokes the named tokens (those :func:`demo_tokens` created)."""
    from cv.inference_server.auth import revoke_token

    with sessions() as session:
        for name in names:
            revoke_token(session, name=name)


# -- the CCTV cameras -------------------------------------------------------------------

CCTV_SEED = 0
"""Seed of the demo's synthetic CCTV sequence (made once, then reused)."""
CCTV_SECONDS = 30.0
"""Length of each demo camera's video; the sources loop it."""
CCTV_PEOPLE = 8
"""Travellers walking past the demo cameras."""
DEMO_ACTOR = "demo"
"""Who the demo's cameras and watch-list entry are recorded as (audit log)."""


def cctv_demo_dir(data_dir: Path) -> Path:
    """Where the demo's CCTV sequence is kept: beside the server's image folder."""
    return Path(data_dir).parent / "demo-cctv"


def make_cctv_scene(out: Path, *, seed: int = CCTV_SEED) -> dict[str, Any]:
    """The demo's two-camera sequence and its ``scene.json`` (blocking; made once).

    Returns:
        The parsed ``scene.json``.
    """
    import json

    scene_file = out / "scene.json"
    if not scene_file.is_file():
        from cv.datasets.cctv import generate_sequences

        generate_sequences(
            out,
            cameras=2,
            seconds=CCTV_SECONDS,
            fps=10,
            people=CCTV_PEOPLE,
            enrol=1,
            enrol_absent=0,
            seed=seed,
            workers=1,
            overwrite=True,
            progress=False,
        )
    return json.loads(scene_file.read_text(encoding="utf-8"))


ENROL_SCENE = (640, 360)
"""``(width, height)`` of the scene an enrolment crop is placed in (the cameras' size)."""
ENROL_PERSON_HEIGHT = 120
"""Height in pixels of the person in that scene: what the demo cameras see."""


def enrolment_photo(crop: np.ndarray) -> bytes:
    """A reference crop shown as a person in a plain scene, at the size cameras see people.

    The person detector was trained on CCTV scenes; given a crop that is nothing but
    the person, it finds heads and legs rather than the person. Scaled down to
    :data:`ENROL_PERSON_HEIGHT` pixels on a :data:`ENROL_SCENE` background, the
    crop is found whole.
    """
    import cv2

    from cv.image import encode_png

    h, w = crop.shape[:2]
    ph = ENROL_PERSON_HEIGHT
    pw = max(1, round(w * ph / h))
    small = cv2.resize(crop, (pw, ph), interpolation=cv2.INTER_AREA)
    width, height = ENROL_SCENE
    canvas = np.full((height, width, 3), 114, dtype=np.uint8)
    top, left = (height - ph) // 2, (width - pw) // 2
    canvas[top : top + ph, left : left + pw] = small
    return encode_png(canvas)


class CctvDemo:
    """The demo's CCTV part: its cameras, its watch-list entry and the looping sources.

    Args:
        cctv: The server's :class:`~cv.inference_server.cctv.CctvService` (models loaded).
        out: Where the synthetic sequence is (made if missing).
    """

    def __init__(self, cctv: Any, out: Path) -> None:
        self.cctv = cctv
        self.out = out
        self.cameras: list[str] = []
        self.entry_id: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Sets the cameras up in the background (the first run generates the videos)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="demo-cctv")

    async def _run(self) -> None:
        try:
            scene = await asyncio.to_thread(make_cctv_scene, self.out)
            await asyncio.to_thread(self._register, scene)
            await self._enrol(scene)
            for camera_id, video in self._videos(scene):
                await asyncio.to_thread(
                    self.cctv.start_source, camera_id, str(video), realtime=True, loop=True
                )
            log.info(
                "demo CCTV: cameras %s play %s; watch-list entry %s",
                ", ".join(self.cameras),
                self.out,
                self.entry_id,
            )
        except asyncio.CancelledError:
            raise
        except Exception:  # the X-ray demo goes on without its cameras
            log.exception("demo CCTV: setting the cameras up failed")

    def _videos(self, scene: dict[str, Any]) -> list[tuple[str, Path]]:
        return [
            (c["id"], self.out / c["video"]) for c in scene["cameras"] if c["id"] in self.cameras
        ]

    def _register(self, scene: dict[str, Any]) -> None:
        from cv.inference_server.cctv import PURPOSES, register_camera

        with self.cctv.sessions() as session:
            for cam in scene["cameras"]:
                register_camera(
                    session,
                    camera_id=cam["id"],
                    site=cam["site"][:64],
                    location=cam["location"][:64],
                    purpose=cam["purpose"],
                    fps=float(cam["fps"]),
                    actor=DEMO_ACTOR,
                )
                if PURPOSES.get(cam["purpose"]):
                    self.cameras.append(cam["id"])

    async def _enrol(self, scene: dict[str, Any]) -> None:
        from datetime import timedelta

        from cv.errors import DataValidationError
        from cv.image import read_image
        from cv.inference_server.cctv import Authorisation, list_entries
        from cv.inference_server.db import utcnow

        person = next(e for e in scene["enrolled"] if e["appears"])
        label = f"DEMO-{person['pid']:04d}"

        def active_entry() -> str | None:
            with self.cctv.sessions() as session:
                rows = list_entries(session, now=utcnow(), state="active", list_name="demo")
                return next((e.id for e in rows if e.label == label), None)

        self.entry_id = await asyncio.to_thread(active_entry)
        if self.entry_id is not None:
            return  # enrolled by an earlier run on this database, still valid
        photos = [
            (Path(rel).name, enrolment_photo(read_image(self.out / rel))) for rel in person["files"]
        ]
        auth = Authorisation(
            label=label,
            list_name="demo",
            authorised_by=DEMO_ACTOR,
            reason="synthetic traveller of the demo",
            legal_basis="none: synthetic data, for demonstration only",
            expires_at=utcnow() + timedelta(days=1),
        )
        while photos:
            try:
                entry = await self.cctv.enrol(auth, photos, actor=DEMO_ACTOR)
            except DataValidationError as exc:
                # A view the person detector misses: enrol from the others.
                bad = [
                    i for i in range(len(photos)) if (exc.field or "").startswith(f"images[{i}]")
                ]
                if not bad:
                    raise
                photos = [p for i, p in enumerate(photos) if i not in bad]
                continue
            self.entry_id = entry.id
            return
        raise RuntimeError(f"no enrolment photo of {label} shows a person to the detector")

    async def stop(self) -> None:
        """Stops the setup if still running and the cameras' sources."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for camera_id in self.cameras:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.cctv.stop_source, camera_id)


def start_cctv_demo(services: Any) -> CctvDemo | None:
    """Starts the CCTV part of the demo when it is on and the re-ID models are loaded."""
    cctv = services.extra.get("cctv")
    if not services.settings.demo_cctv or cctv is None:
        return None
    if not cctv.ready:
        log.info("demo CCTV is off: %s", cctv.not_ready)
        return None
    demo = CctvDemo(cctv, cctv_demo_dir(services.data_dir))
    demo.start()
    return demo


class DemoRun:
    """A running demo feed, its cameras and the tokens it created, stopped as one
    (see :func:`start_demo_feed`)."""

    def __init__(
        self,
        feed: DemoFeed,
        sessions: sessionmaker,
        created: list[str],
        cctv: CctvDemo | None = None,
    ) -> None:
        self.feed = feed
        self.sessions = sessions
        self.created = created
        self.cctv = cctv

    async def stop(self) -> None:
        """Stops the feed and the cameras, and revokes the tokens it created."""
        if self.cctv is not None:
            await self.cctv.stop()
        await self.feed.stop()
        if self.created:
            await asyncio.to_thread(revoke_tokens, self.sessions, self.created)


async def start_demo_feed(app: Any, services: Any) -> DemoRun:
    """Starts the demo feed of a starting app (called by the lifespan when ``demo_feed``).

    The feed posts to ``app.state.base_url`` (set by ``customs-vision serve run``:
    loopback for a server on every interface), else to :data:`DEFAULT_BASE_URL`;
    its sign-in links name ``app.state.link_base`` (the machine's LAN address for a
    server on every interface), else the same.

    Args:
        app: The FastAPI app.
        services: Its services (settings, sessions, ``bootstrap_tokens`` if made).
    """
    settings = services.settings
    base_url = getattr(app.state, "base_url", None) or DEFAULT_BASE_URL
    link_base = getattr(app.state, "link_base", None) or base_url
    # The access log has a line per upload already; httpx's own would double it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    run = secrets.token_hex(3)
    tokens, created = await asyncio.to_thread(
        demo_tokens, services.sessions, services.extra.get("bootstrap_tokens") or {}, run=run
    )
    feed = DemoFeed(
        base_url=local_url(base_url),
        scanner_token=tokens["scanner"],
        rate=settings.demo_rate,
        pool=ScanPool(size=POOL_SIZE, seed=secrets.randbelow(2**31)),
        sign_in=sign_in_text(link_base.rstrip("/"), tokens),
        not_ready=functools.partial(_model_not_ready, services.models),
        run=run,
    )
    await feed.start()
    return DemoRun(feed, services.sessions, created, cctv=start_cctv_demo(services))
