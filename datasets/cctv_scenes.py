"""Camera frames with people on a floor: multi-camera sequences and detection scenes.

A camera looks level at a flat floor (:class:`Geometry`, a pinhole at a few metres'
height), so a person's pixel height and the row of their feet follow from their
distance. People walk straight paths across the floor at walking speed and are
drawn far to near, so that nearer people and pillars hide farther ones; a label map
of who covers which pixel gives each person's visible fraction.

Ground truth boxes are the tight box of a person's body (bags worn included, a
suitcase beside them not), clipped to the frame, for people of whom at least
:data:`MIN_VISIBILITY` shows. Boxes are ``xyxy`` 0-based pixels as everywhere in the
toolkit; ``gt.txt`` writes them MOT-style as ``x, y, w, h`` of the same 0-based
pixels (MOTChallenge itself counts from 1).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from cv.datasets.cctv_camera import Camera, apply_camera, camera_for, draw_background, make_camera
from cv.datasets.cctv_people import (
    Identity,
    Painter,
    Pose,
    View,
    draw_person,
    make_identities,
    make_identity,
    random_pose,
)
from cv.datasets.cctv_run import (
    GENERATOR_VERSION,
    prepare_out,
    resolve_workers,
    run_jobs,
    tool_version,
)
from cv.errors import ConfigError, DataFormatError

MIN_VISIBILITY = 0.25
"""Share of a person's body that must show (not hidden, inside the frame) to be labelled."""
MIN_BOX_HEIGHT = 10
"""Smallest labelled box height, pixels."""
PERSON_METRES = 1.75
"""Height of a person of relative height 1.0."""

SITE = "ICN-T1 (synthetic)"
LOCATIONS = (
    "arrivals hall, baggage belt 3",
    "customs green channel",
    "immigration exit",
    "baggage belt 5",
    "customs red channel",
    "arrivals hall exit",
    "transfer corridor",
    "baggage claim entrance",
    "duty-free arrivals",
)
PURPOSES = ("customs-control", "customs-control", "passenger-flow")
"""Declared purpose of cameras 1, 2, 3, ... (cycled): a purpose such as
``passenger-flow`` need not allow watch-list matching."""


@dataclass(frozen=True, slots=True)
class Geometry:
    """A camera looking level at a flat floor.

    Attributes:
        width: Frame width, pixels.
        height: Frame height, pixels.
        horizon: Row of the horizon (the camera's optical axis).
        focal: Focal length, pixels.
        cam_height: Camera height above the floor, metres.
    """

    width: int
    height: int
    horizon: float
    focal: float
    cam_height: float

    def foot(self, x: float, z: float) -> tuple[float, float]:
        """Image point of the floor point ``x`` metres right, ``z`` metres ahead."""
        return (
            self.width / 2 + self.focal * x / z,
            self.horizon + self.focal * self.cam_height / z,
        )

    def pixels(self, metres: float, z: float) -> float:
        """Pixel size of ``metres`` at distance ``z``."""
        return self.focal * metres / z

    def z_near(self) -> float:
        """Distance of the floor at the bottom row."""
        return self.focal * self.cam_height / (self.height - self.horizon)

    def half_width(self, z: float) -> float:
        """Half the floor width the frame shows at distance ``z``, metres."""
        return self.width / 2 * z / self.focal


def make_geometry(width: int, height: int, rng: np.random.Generator) -> Geometry:
    """A random CCTV geometry: horizon in the upper third, 55-80 degrees wide, 2.6-4 m up."""
    hfov = math.radians(rng.uniform(55, 80))
    return Geometry(
        width=width,
        height=height,
        horizon=height * rng.uniform(0.15, 0.38),
        focal=width / 2 / math.tan(hfov / 2),
        cam_height=rng.uniform(2.6, 4.0),
    )


@dataclass(slots=True)
class Actor:
    """A person at one moment: who, where on the floor, seen how."""

    key: int
    identity: Identity
    x: float
    z: float
    view: View
    pose: Pose


@dataclass(frozen=True, slots=True)
class Pillar:
    """A square pillar standing on the floor, ``width`` metres wide."""

    x: float
    z: float
    width: float
    colour: tuple[int, int, int]


@dataclass(slots=True)
class Labelled:
    """A drawn person's ground truth."""

    key: int
    box: tuple[int, int, int, int]
    visibility: float


def render_scene(
    background: NDArray[np.uint8], geom: Geometry, actors: list[Actor], pillars: list[Pillar]
) -> tuple[NDArray[np.uint8], list[Labelled]]:
    """Draws ``actors`` and ``pillars`` far to near over a copy of ``background``.

    Returns:
        The clean frame (before camera effects) and, for every actor whose body
        reaches into the frame, the body box clipped to the frame and its visible
        fraction.
    """
    img = background.copy()
    h, w = img.shape[:2]
    owner = np.zeros((h, w), np.int32)
    items: list[tuple[float, int, int]] = [(a.z, 0, i) for i, a in enumerate(actors)]
    items += [(p.z, 1, j) for j, p in enumerate(pillars)]
    items.sort(key=lambda t: (-t[0], t[1], t[2]))
    drawn: dict[int, tuple[int, tuple[int, int, int, int]]] = {}
    for _, kind, i in items:
        if kind == 1:
            _draw_pillar(img, owner, geom, pillars[i])
            continue
        a = actors[i]
        fx, fy = geom.foot(a.x, a.z)
        ph = geom.pixels(PERSON_METRES * a.identity.height, a.z)
        x0, x1 = math.floor(fx - 0.45 * ph), math.ceil(fx + 0.45 * ph)
        y0, y1 = math.floor(fy - 1.05 * ph), math.ceil(fy + 0.06 * ph)
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h or ph < 4:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        draw_person(Painter(img, mask, (x0, y0)), a.identity, a.view, a.pose, (fx, fy), ph)
        total = int(np.count_nonzero(mask))
        if total == 0:
            continue
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        sub = mask[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0].astype(bool)
        if not sub.any():
            continue
        owner[cy0:cy1, cx0:cx1][sub] = i + 1
        rows = np.flatnonzero(sub.any(axis=1))
        cols = np.flatnonzero(sub.any(axis=0))
        box = (
            cx0 + int(cols[0]),
            cy0 + int(rows[0]),
            cx0 + int(cols[-1]) + 1,
            cy0 + int(rows[-1]) + 1,
        )
        drawn[i] = (total, box)
    counts = np.bincount(owner.ravel(), minlength=len(actors) + 1)
    out = [
        Labelled(key=actors[i].key, box=box, visibility=float(counts[i + 1]) / total)
        for i, (total, box) in sorted(drawn.items())
    ]
    return img, out


def _draw_pillar(
    img: NDArray[np.uint8], owner: NDArray[np.int32], geom: Geometry, p: Pillar
) -> None:
    h, w = img.shape[:2]
    fx, fy = geom.foot(p.x, p.z)
    half = geom.pixels(p.width, p.z) / 2
    x0, x1 = max(0, math.floor(fx - half)), min(w, math.ceil(fx + half))
    y1 = min(h, int(fy))
    if x1 <= x0 or y1 <= 0:
        return
    t = (np.arange(x0, x1) - (fx - half)) / max(2 * half, 1.0)
    shade = 0.7 + 0.4 * np.sin(np.pi * np.clip(t, 0.0, 1.0))
    band = np.clip(np.array(p.colour, np.float32)[None, :] * shade[:, None], 0, 255).astype(
        np.uint8
    )
    img[:y1, x0:x1] = band[None]
    owner[:y1, x0:x1] = 0


def walking_view(dx: float, dz: float) -> View:
    """The view of a person walking ``(dx, dz)`` on the floor (``dz < 0``: towards the camera)."""
    angle = math.degrees(math.atan2(dx, -dz))
    if abs(angle) <= 40:
        return "front"
    if abs(angle) >= 140:
        return "back"
    return "right" if dx > 0 else "left"


def _pillars(geom: Geometry, cam: Camera, rng: np.random.Generator, n: int) -> list[Pillar]:
    out = []
    for _ in range(n):
        z = rng.uniform(geom.z_near() * 1.2, geom.z_near() * 3.0)
        x = rng.uniform(-0.8, 0.8) * geom.half_width(z)
        colour = tuple(int(v * rng.uniform(0.75, 1.0)) for v in cam.wall)
        out.append(Pillar(x=x, z=z, width=rng.uniform(0.4, 0.8), colour=colour))  # type: ignore[arg-type]
    return out


def scene_background(cam: Camera, geom: Geometry, rng: np.random.Generator) -> NDArray[np.uint8]:
    """The camera's empty scene: wall above the horizon-ish line, tiled floor below."""
    # The wall stands some metres behind the far end of the walkway.
    wall_z = geom.z_near() * rng.uniform(3.5, 6.0)
    wall_row = geom.foot(0.0, wall_z)[1]
    tile = geom.pixels(rng.uniform(0.5, 1.0), geom.z_near())
    return draw_background(
        cam, geom.width, geom.height, rng, horizon=wall_row, vanish_x=geom.width / 2, scale=tile
    )


# -------------------------------------------------------------------- sequences


@dataclass(slots=True)
class Visit:
    """One pass of a person through one camera's view."""

    camera: int
    start: float
    end: float
    path: tuple[tuple[float, float], tuple[float, float]]
    speed: float
    phase: float

    def at(self, t: float) -> tuple[float, float, float]:
        """``(x, z, metres walked)`` at time ``t``."""
        (x0, z0), (x1, z1) = self.path
        u = (t - self.start) / max(self.end - self.start, 1e-9)
        length = math.hypot(x1 - x0, z1 - z0)
        return x0 + (x1 - x0) * u, z0 + (z1 - z0) * u, u * length


@dataclass(slots=True)
class _Person:
    identity: Identity
    visits: list[Visit] = field(default_factory=list)


def _path(
    geom: Geometry, rng: np.random.Generator
) -> tuple[tuple[float, float], tuple[float, float]]:
    zn = geom.z_near()
    zf = zn * rng.uniform(3.0, 4.0)
    kind = rng.choice(4, p=[0.35, 0.25, 0.25, 0.15])
    sign = 1.0 if rng.random() < 0.5 else -1.0
    if kind == 0:  # across the view
        z = rng.uniform(zn * 1.15, zf * 0.85)
        dz = rng.uniform(-0.15, 0.15) * z
        half = geom.half_width(z) + 0.8
        return (-sign * half, z), (sign * (geom.half_width(z + dz) + 0.8), z + dz)
    far = (rng.uniform(-0.6, 0.6) * geom.half_width(zf), zf)
    near = (rng.uniform(-0.5, 0.5) * geom.half_width(zn), zn * 0.7)
    if kind == 3:  # diagonal, from one side far to the other side near
        far = (sign * geom.half_width(zf) * rng.uniform(0.7, 1.0), zf * rng.uniform(0.6, 1.0))
        near = (-sign * geom.half_width(zn) * rng.uniform(0.6, 1.1), zn * 0.8)
    return (near, far) if kind == 2 else (far, near)


def _itineraries(
    people: list[Identity],
    geoms: list[Geometry],
    seconds: float,
    rng: np.random.Generator,
    *,
    multi: float,
) -> list[_Person]:
    out = []
    n_cams = len(geoms)
    for ident in people:
        person = _Person(identity=ident)
        k = 1
        if n_cams > 1 and rng.random() < multi:
            k = int(rng.integers(2, n_cams + 1))
        cams = [int(c) for c in rng.permutation(n_cams)[:k]]
        legs = []
        for c in cams:
            path = _path(geoms[c], rng)
            speed = rng.uniform(1.0, 1.6)
            (x0, z0), (x1, z1) = path
            legs.append((c, path, speed, math.hypot(x1 - x0, z1 - z0) / speed))
        total = sum(d for *_, d in legs) + 2.5 * (k - 1)
        t = rng.uniform(-0.25 * legs[0][3], max(seconds - total, 0.0) + 0.25 * legs[-1][3])
        for c, path, speed, dur in legs:
            person.visits.append(
                Visit(
                    camera=c,
                    start=t,
                    end=t + dur,
                    path=path,
                    speed=speed,
                    phase=rng.uniform(0, 6.3),
                )
            )
            t += dur + rng.uniform(1.0, 4.0)
        out.append(person)
    return out


@dataclass(frozen=True, slots=True)
class _CameraJob:
    index: int
    seed: int
    out: str
    camera: Camera
    geometry: Geometry
    fps: int
    frames: int
    people: tuple[tuple[Identity, tuple[Visit, ...]], ...]
    pillars: tuple[Pillar, ...]


def _run_camera(job: _CameraJob) -> dict[str, object]:
    """Renders one camera's video and ground truth (runs in a worker process)."""
    out = Path(job.out)
    k = job.index + 1
    bg = scene_background(job.camera, job.geometry, np.random.default_rng([job.seed, 602, k]))
    video = out / f"cam{k}.mp4"
    w, h = job.geometry.width, job.geometry.height
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), float(job.fps), (w, h))
    if not writer.isOpened():
        raise DataFormatError(
            "OpenCV cannot write an mp4v video here (no FFmpeg backend?)", path=video
        )
    lines: list[str] = []
    seen: dict[int, list[int]] = {}
    try:
        for f in range(job.frames):
            t = f / job.fps
            actors = []
            for ident, visits in job.people:
                for v in visits:
                    if v.start <= t <= v.end:
                        x, z, walked = v.at(t)
                        (x0, z0), (x1, z1) = v.path
                        pose = Pose(phase=v.phase + walked / 1.4 * 2 * math.pi, stride=1.0, arm=0.8)
                        actors.append(
                            Actor(ident.pid, ident, x, z, walking_view(x1 - x0, z1 - z0), pose)
                        )
            frame, labels = render_scene(bg, job.geometry, actors, list(job.pillars))
            rng = np.random.default_rng([job.seed, 603, k, f])
            frame = apply_camera(frame, job.camera, rng, ref_height=512, jitter=0.0)
            writer.write(np.ascontiguousarray(frame[..., ::-1]))
            for lab in sorted(labels, key=lambda lab: lab.key):
                x0, y0, x1, y1 = lab.box
                if lab.visibility < MIN_VISIBILITY or y1 - y0 < MIN_BOX_HEIGHT:
                    continue
                lines.append(f"{f + 1},{lab.key},{x0},{y0},{x1 - x0},{y1 - y0},1,-1,-1,-1")
                seen.setdefault(lab.key, []).append(f + 1)
    finally:
        writer.release()
    (out / f"cam{k}").mkdir(parents=True, exist_ok=True)
    (out / f"cam{k}" / "gt.txt").write_text(
        "\n".join(lines) + ("\n" if lines else ""), encoding="ascii"
    )
    cap = cv2.VideoCapture(str(video))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    if n != job.frames:
        raise DataFormatError(
            f"the video reads back with {n} frames instead of {job.frames}", path=video
        )
    return {
        "camera": k,
        "boxes": len(lines),
        "seen": {str(p): [v[0], v[-1], len(v)] for p, v in seen.items()},
    }


def generate_sequences(
    out: str | PathLike[str],
    *,
    cameras: int = 2,
    seconds: float = 20.0,
    fps: int = 10,
    size: tuple[int, int] = (640, 360),
    people: int = 12,
    multi_camera: float = 0.5,
    enrol: int = 4,
    enrol_absent: int = 1,
    enrol_images: int = 3,
    seed: int = 0,
    workers: int = 0,
    overwrite: bool = False,
    progress: bool | None = True,
) -> Path:
    """Writes short multi-camera CCTV videos with ground-truth tracks.

    Layout::

        out/scene.json          cameras (id, site, location, purpose, fps, size, video,
                                gt, characteristics), identities (appearance, visits
                                per camera with first / last frame), enrolled ids
        out/cam<k>.mp4          OpenCV VideoWriter, mp4v
        out/cam<k>/gt.txt       MOT: frame (1-based), id, x, y, w, h, 1, -1, -1, -1
                                (0-based pixels; id = the global person id)
        out/enrol/<pid>/*.jpg   reference crops of some identities from an enrolment
                                camera (well lit, other views), for a watch-list

    Cameras do not overlap; a person walks through one camera's view or, with
    probability ``multi_camera``, through several, one after the other with a few
    seconds between. ``enrol_absent`` enrolled identities appear in no camera (a
    watch-list entry that must not match).

    Args:
        out: Output folder (created).
        cameras: Number of cameras.
        seconds: Length of every video.
        fps: Frames per second.
        size: ``(width, height)`` of the frames.
        people: Identities walking through (pids ``1 .. people``).
        multi_camera: Share of people who pass more than one camera.
        enrol: Identities (among those who appear) with enrolment crops.
        enrol_absent: Extra identities with enrolment crops who never appear.
        enrol_images: Crops per enrolled identity.
        seed: Seed of the run.
        workers: Worker processes (one camera each); 0 means one per CPU core.
        overwrite: Replace an earlier output in ``out``.
        progress: Show a progress bar; ``None`` shows it when stderr is a terminal.

    Returns:
        ``out``.

    Raises:
        ConfigError: If an option is out of range or ``out`` holds an earlier output.
        DataFormatError: If OpenCV cannot write or read back the video.
    """
    from cv.datasets.cctv_crops import render_crop
    from cv.image import write_image

    t0 = time.perf_counter()
    width, height = int(size[0]), int(size[1])
    if not 1 <= cameras <= 99:
        raise ConfigError(f"cameras must lie in 1..99, got {cameras}", field="cameras")
    if seconds <= 0 or not 1 <= fps <= 120:
        raise ConfigError(
            f"need seconds > 0 and 1 <= fps <= 120, got {seconds} s at {fps} fps", field="fps"
        )
    if min(width, height) < 64 or width % 2 or height % 2:
        raise ConfigError(
            f"frame size must be even and at least 64 x 64, got {width} x {height}", field="size"
        )
    if people < 1 or not 0 <= multi_camera <= 1:
        raise ConfigError("need people >= 1 and multi_camera in [0, 1]", field="people")
    if not 0 <= enrol <= people or enrol_absent < 0 or enrol_images < 1:
        raise ConfigError(
            f"need 0 <= enrol <= people ({people}), enrol_absent >= 0, enrol_images >= 1",
            field="enrol",
        )
    out = Path(out)
    # Every camera of an earlier run counts, so that none is left behind beside fewer new ones.
    names = {f"cam{k}{ext}" for k in range(1, cameras + 1) for ext in ("", ".mp4")}
    if out.is_dir():
        names |= {p.name for p in out.glob("cam*") if re.fullmatch(r"cam\d+(\.mp4)?", p.name)}
    prepare_out(out, ("scene.json", "enrol", *sorted(names)), overwrite=overwrite)
    n_workers = resolve_workers(workers)
    frames = max(1, round(seconds * fps))

    layout = np.random.default_rng(np.random.SeedSequence([seed, 601]))
    cams = [camera_for(seed, k, stream=5) for k in range(1, cameras + 1)]
    geoms = [make_geometry(width, height, layout) for _ in range(cameras)]
    pillars = [
        _pillars(g, c, layout, int(layout.integers(0, 3))) for g, c in zip(geoms, cams, strict=True)
    ]
    identities = make_identities(people + enrol_absent, seed, derived=0.2, stream=5)
    walkers = _itineraries(identities[:people], geoms, frames / fps, layout, multi=multi_camera)

    jobs = [
        _CameraJob(
            index=c,
            seed=seed,
            out=str(out),
            camera=cams[c],
            geometry=geoms[c],
            fps=fps,
            frames=frames,
            people=tuple(
                (p.identity, tuple(v for v in p.visits if v.camera == c))
                for p in walkers
                if any(v.camera == c for v in p.visits)
            ),
            pillars=tuple(pillars[c]),
        )
        for c in range(cameras)
    ]
    results = run_jobs(
        jobs, _run_camera, workers=min(n_workers, cameras), label="rendering cameras", show=progress
    )

    # Enrolment crops: identities seen in the most cameras first, then absent ones.
    seen_in: dict[int, list[int]] = {}
    for r in results:
        for pid in r["seen"]:
            seen_in.setdefault(int(pid), []).append(int(r["camera"]))
    present = sorted(seen_in, key=lambda p: (-len(seen_in[p]), p))
    chosen = present[:enrol] + [i.pid for i in identities[people:]]
    enrol_cam = camera_for(seed, 0, stream=6, quality="enrol")
    enrolled = []
    for pid in chosen:
        ident = identities[pid - 1]
        rng = np.random.default_rng(np.random.SeedSequence([seed, 607, pid]))
        files = []
        for j in range(enrol_images):
            view: View = ("front", "left" if rng.random() < 0.5 else "right", "back")[j % 3]
            img = render_crop(ident, enrol_cam, rng, view=view, occlusion=False)
            rel = f"enrol/{pid:04d}/{j + 1:02d}_{view}.jpg"
            write_image(out / rel, img, jpeg_quality=enrol_cam.jpeg_quality)
            files.append(rel)
        enrolled.append({"pid": pid, "appears": pid in seen_in, "files": files})

    by_cam = {int(r["camera"]): r for r in results}
    scene = {
        "tool": "customs-vision reid synth --sequences",
        "version": tool_version(),
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "fps": fps,
        "seconds": frames / fps,
        "frames": frames,
        "size": [width, height],
        "gt_format": "MOT: frame (1-based), id, x, y, w, h (0-based pixels, top-left corner), 1, -1, -1, -1",
        "min_visibility": MIN_VISIBILITY,
        "cameras": [
            {
                "id": f"cam{k}",
                "index": k,
                "site": SITE,
                "location": LOCATIONS[(k - 1) % len(LOCATIONS)],
                "purpose": PURPOSES[(k - 1) % len(PURPOSES)],
                "fps": fps,
                "size": [width, height],
                "video": f"cam{k}.mp4",
                "gt": f"cam{k}/gt.txt",
                "frames": frames,
                "boxes": by_cam[k]["boxes"],
                "geometry": {
                    "horizon": round(geoms[k - 1].horizon, 2),
                    "focal": round(geoms[k - 1].focal, 2),
                    "height_m": round(geoms[k - 1].cam_height, 3),
                },
                "characteristics": cams[k - 1].to_dict(),
            }
            for k in range(1, cameras + 1)
        ],
        "identities": [
            {
                "pid": ident.pid,
                "appearance": ident.summary(),
                "visits": [
                    {
                        "camera": f"cam{c}",
                        "first_frame": by_cam[c]["seen"][str(ident.pid)][0],
                        "last_frame": by_cam[c]["seen"][str(ident.pid)][1],
                        "frames": by_cam[c]["seen"][str(ident.pid)][2],
                    }
                    for c in sorted(
                        seen_in.get(ident.pid, []),
                        key=lambda c: by_cam[c]["seen"][str(ident.pid)][0],
                    )
                ],
            }
            for ident in identities
        ],
        "enrolled": enrolled,
        "seconds_to_generate": round(time.perf_counter() - t0, 3),
    }
    (out / "scene.json").write_text(json.dumps(scene, indent=1), encoding="utf-8")
    return out


# ------------------------------------------------------------ person detection


@dataclass(frozen=True, slots=True)
class _SceneJob:
    index: int
    seed: int
    path: str
    size: tuple[int, int]
    people: int


def _run_scene(job: _SceneJob) -> tuple[int, int, list[tuple[tuple[int, int, int, int], float]]]:
    """Renders and writes one detection scene; returns its size and labelled boxes."""
    from cv.image import write_image

    rng = np.random.default_rng(job.seed)
    w, h = job.size
    cam = make_camera(0, rng)
    geom = make_geometry(w, h, rng)
    bg = scene_background(cam, geom, rng)
    pillars = _pillars(geom, cam, rng, int(rng.choice(3, p=[0.55, 0.3, 0.15])))
    actors = []
    zn = geom.z_near()
    for i in range(job.people):
        z = zn * math.exp(rng.uniform(math.log(0.8), math.log(6.0)))
        x = rng.uniform(-1.05, 1.05) * geom.half_width(z)
        ident = make_identity(0, rng)
        actors.append(
            Actor(
                i,
                ident,
                x,
                z,
                ("front", "back", "left", "right")[int(rng.integers(0, 4))],
                random_pose(rng),
            )
        )
    img, labels = render_scene(bg, geom, actors, pillars)
    img = apply_camera(img, cam, rng, ref_height=512, jitter=0.5)
    quality = int(np.clip(cam.jpeg_quality + 10, 50, 95))
    write_image(job.path, img, jpeg_quality=quality)
    kept = [
        (lab.box, round(1.0 - lab.visibility, 4))
        for lab in labels
        if lab.visibility >= MIN_VISIBILITY and lab.box[3] - lab.box[1] >= MIN_BOX_HEIGHT
    ]
    return w, h, kept


def generate_person_detection(
    out: str | PathLike[str],
    *,
    images: int = 2000,
    size: int = 640,
    people: tuple[int, int] = (1, 10),
    empty: float = 0.1,
    seed: int = 0,
    splits: tuple[float, float, float] = (0.9, 0.1, 0.0),
    workers: int = 0,
    overwrite: bool = False,
    progress: bool | None = True,
) -> Path:
    """Writes CCTV frames with people as a detection dataset with the class ``person``.

    Same layout as the X-ray generator (:func:`cv.datasets.synth.generate`):
    ``images/<split>/<index>.jpg``, YOLO labels and ``data.yaml`` (``names: {0: person}``)
    that ultralytics trains on as they are, COCO files ``annotations/<split>.json``
    and ``manifest.json``. Every frame comes from a camera of its own (geometry,
    colour cast, noise...). A person is labelled with the box of the whole body,
    clipped to the frame, when at least :data:`MIN_VISIBILITY` of it shows.

    Train from ``out/data.yaml`` (the file): the folder itself holds COCO files too,
    which the toolkit's format detection reads first, and ``person`` is not an X-ray
    taxonomy class.

    Args:
        out: Output folder (created).
        images: Number of frames.
        size: Frame width; frames are 16:9.
        people: Inclusive range of people per frame that is not empty.
        empty: Share of frames with nobody in them.
        seed: Seed of the run.
        splits: ``(train, val, test)`` ratios.
        workers: Worker processes; 0 means one per CPU core.
        overwrite: Replace an earlier output in ``out``.
        progress: Show a progress bar; ``None`` shows it when stderr is a terminal.

    Returns:
        The path of ``data.yaml``.

    Raises:
        ConfigError: If an option is out of range or ``out`` holds an earlier output.
    """
    from cv.datasets.formats.coco import write_coco
    from cv.datasets.formats.yolo import write_yolo
    from cv.datasets.synth import parse_splits
    from cv.records import SPLITS, Annotation, Dataset, ImageRecord

    t0 = time.perf_counter()
    if images < 1:
        raise ConfigError(f"images must be >= 1, got {images}", field="images")
    if size < 64:
        raise ConfigError(f"frame width must be >= 64, got {size}", field="size")
    lo, hi = int(people[0]), int(people[1])
    if lo < 1 or hi < lo:
        raise ConfigError(
            f"people per frame must be a range 1 <= lo <= hi, got {lo}-{hi}", field="people"
        )
    if not 0 <= empty <= 1:
        raise ConfigError(f"empty share must lie in [0, 1], got {empty}", field="empty")
    ratios = parse_splits(splits)
    width = int(size) // 2 * 2
    height = round(width * 9 / 16 / 2) * 2
    n_workers = resolve_workers(workers)
    out = Path(out)
    prepare_out(
        out, ("images", "labels", "annotations", "data.yaml", "manifest.json"), overwrite=overwrite
    )

    assign = np.random.default_rng(np.random.SeedSequence([seed, 701, images]))
    order = assign.permutation(images)
    n_train = round(ratios[0] * images)
    n_val = min(round(ratios[1] * images), images - n_train)
    split_of = ["test"] * images
    for rank, i in enumerate(order.tolist()):
        split_of[i] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    empties = set(assign.permutation(images)[: round(empty * images)].tolist())
    counts = assign.integers(lo, hi + 1, images)
    jobs = [
        _SceneJob(
            index=i,
            seed=int(np.random.SeedSequence([seed, 702, i]).generate_state(1)[0]),
            path=str(out / "images" / split_of[i] / f"{i:06d}.jpg"),
            size=(width, height),
            people=0 if i in empties else int(counts[i]),
        )
        for i in range(images)
    ]
    for s in set(split_of):
        (out / "images" / s).mkdir(parents=True, exist_ok=True)
    results = run_jobs(
        jobs, _run_scene, workers=n_workers, label="rendering person scenes", show=progress
    )

    records = []
    for job, (w, h, boxes) in zip(jobs, results, strict=True):
        rec = ImageRecord(
            file=f"images/{split_of[job.index]}/{job.index:06d}.jpg",
            width=w,
            height=h,
            split=split_of[job.index],  # type: ignore[arg-type]
            source="synthetic-cctv",
            meta={"seed": job.seed, "people_drawn": job.people},
        )
        for box, occ in boxes:
            rec.annotations.append(
                Annotation(
                    box=tuple(float(v) for v in box),
                    category="person",
                    original_name="person",
                    occlusion=occ,
                )  # type: ignore[arg-type]
            )
        records.append(rec)
    dataset = Dataset(name="synthetic-cctv-person", images=records, root=out, classes=["person"])
    data_yaml = write_yolo(dataset, out, classes=["person"], images="symlink")
    for s in SPLITS:
        if any(r.split == s for r in records):
            write_coco(dataset, out / "annotations" / f"{s}.json", classes=["person"], split=s)
    per_split = {s: sum(1 for r in records if r.split == s) for s in SPLITS}
    manifest = {
        "tool": "customs-vision reid synth --detection",
        "version": tool_version(),
        "generator_version": GENERATOR_VERSION,
        "options": {
            "images": images,
            "size": [width, height],
            "people": [lo, hi],
            "empty": empty,
            "seed": seed,
            "splits": list(ratios),
            "workers": n_workers,
            "min_visibility": MIN_VISIBILITY,
            "min_box_height": MIN_BOX_HEIGHT,
        },
        "counts": {
            "images_per_split": per_split,
            "empty_images": sum(1 for r in records if not r.annotations),
            "boxes": sum(len(r.annotations) for r in records),
        },
        "seconds": round(time.perf_counter() - t0, 3),
        "train_from": str(data_yaml),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return data_yaml


# ------------------------------------------------------------ re-ID crops cut from scenes

SCENE_CROP_FRAMES = ((640, 360), (960, 540), (1280, 720))
"""Frame sizes a scene crop is cut from (``width, height``): people 40-300 pixels tall."""


def render_scene_crop(
    ident: Identity,
    cam: Camera,
    rng: np.random.Generator,
    *,
    min_visibility: float = 0.6,
    min_height: int = 36,
    attempts: int = 8,
) -> NDArray[np.uint8]:
    """``ident`` walking through ``cam``'s scene, cut out as a person detector would.

    A frame of 640 × 360 to 1280 × 720 pixels is drawn with the person walking
    somewhere on the floor (other walkers and pillars around them, some in front),
    passed through the camera's whole-frame degradation and a video codec's loss (a
    JPEG round trip), and the person's box is cut out with a detector's error (a few
    per cent on each side), at the frame's own pixels: a crop is as small as the
    person was. This is the domain the CCTV pipeline embeds, unlike
    :func:`cv.datasets.cctv_crops.render_crop`, which draws the person at crop scale.

    Args:
        ident: Who.
        cam: The camera (colours, lighting, noise, blur, viewpoints).
        rng: Source of everything that varies.
        min_visibility: Share of the body that must show; placements hiding more are
            drawn again.
        min_height: Shortest acceptable box, pixels.
        attempts: Placements tried before the last one is taken as it is.

    Returns:
        ``(h, w, 3) uint8`` RGB at the person's size in the frame.
    """
    width, height = SCENE_CROP_FRAMES[int(rng.choice(3, p=[0.45, 0.3, 0.25]))]
    geom = make_geometry(width, height, rng)
    bg = scene_background(cam, geom, rng)
    zn = geom.z_near()
    crop: NDArray[np.uint8] | None = None
    for attempt in range(attempts):
        # The person: somewhere on the walkway, walking in some direction.
        z = zn * math.exp(rng.uniform(math.log(0.85), math.log(4.0)))
        if geom.pixels(PERSON_METRES * ident.height, z) < min_height and attempt < attempts - 1:
            continue
        x = rng.uniform(-0.7, 0.7) * geom.half_width(z)
        heading = rng.uniform(-math.pi, math.pi)
        view = walking_view(math.sin(heading), -math.cos(heading))
        if rng.random() < 0.25:
            view = cam.draw_view(rng)
        pose = Pose(
            phase=float(rng.uniform(0, 2 * math.pi)),
            stride=float(rng.uniform(0.7, 1.0)),
            arm=float(rng.uniform(0.5, 0.9)),
        )
        actors = [Actor(1, ident, x, z, view, pose)]
        for k in range(int(rng.choice(4, p=[0.35, 0.3, 0.2, 0.15]))):
            oz = z * math.exp(rng.uniform(-0.5, 0.5))
            ox = x + rng.uniform(-1.2, 1.2)
            actors.append(
                Actor(2 + k, make_identity(0, rng), ox, oz, cam.draw_view(rng), random_pose(rng))
            )
        pillars = _pillars(geom, cam, rng, int(rng.choice(3, p=[0.6, 0.3, 0.1])))
        frame, labels = render_scene(bg, geom, actors, pillars)
        target = next((lab for lab in labels if lab.key == 1), None)
        if target is None or (target.visibility < min_visibility and attempt < attempts - 1):
            continue
        x0, y0, x1, y1 = target.box
        if y1 - y0 < min_height and attempt < attempts - 1:
            continue
        frame = apply_camera(frame, cam, rng, ref_height=512, jitter=0.5)
        # A video codec's loss, then a detector's box: each side off by a few per cent.
        quality = int(np.clip(cam.jpeg_quality + rng.integers(-15, 6), 30, 95))
        ok, enc = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            frame = cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)
        bw, bh = x1 - x0, y1 - y0
        e = rng.normal(0.0, 0.05, 4) * np.array([bw, bh, bw, bh])
        e[:2] -= np.array([bw, bh]) * rng.uniform(0.0, 0.06)  # detectors box a little loose
        e[2:] += np.array([bw, bh]) * rng.uniform(0.0, 0.06)
        cx0 = int(np.clip(round(x0 + e[0]), 0, width - 2))
        cy0 = int(np.clip(round(y0 + e[1]), 0, height - 2))
        cx1 = int(np.clip(round(x1 + e[2]), cx0 + 2, width))
        cy1 = int(np.clip(round(y1 + e[3]), cy0 + 2, height))
        crop = np.ascontiguousarray(frame[cy0:cy1, cx0:cx1])
        break
    if crop is None:  # nobody visible in any placement: a last, unoccluded one
        z = zn * 1.5
        actors = [Actor(1, ident, 0.0, z, cam.draw_view(rng), random_pose(rng))]
        frame, labels = render_scene(bg, geom, actors, [])
        frame = apply_camera(frame, cam, rng, ref_height=512, jitter=0.5)
        x0, y0, x1, y1 = labels[0].box
        crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
    return crop
