"""Synthetic CCTV cameras: what each one does to the picture, and what it looks at.

A :class:`Camera` is drawn once from the run's seed and its number, and then applies
the same characteristics to everything it sees: white balance (a colour cast),
exposure, contrast and gamma, an illumination gradient, the resolution it really
resolves (crops are down-sampled and up-sampled again), optical blur, sensor noise
and JPEG quality; plus its scene: wall and floor colours, floor tiles, wall fixtures,
where the floor meets the wall, how often something stands between it and a
person, and which viewpoints it mostly gets (a camera over an exit sees backs).

A camera that is not among the training cameras is just another draw from the same
distribution, so a model trained on some cameras meets new casts, exposures and
backgrounds on the others, as it would at a new site.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import cv2
import numpy as np
from numpy.typing import NDArray

from cv.datasets.cctv_people import RGB, VIEWS, View

_WALLS: tuple[RGB, ...] = (
    (200, 198, 190),
    (176, 180, 186),
    (214, 206, 186),
    (150, 156, 160),
    (190, 176, 160),
    (120, 128, 136),
    (222, 222, 218),
    (168, 178, 168),
)
_FLOORS: tuple[RGB, ...] = (
    (150, 146, 138),
    (110, 108, 104),
    (172, 162, 146),
    (92, 96, 100),
    (186, 182, 172),
    (124, 112, 96),
    (140, 132, 120),
)
_ACCENTS: tuple[RGB, ...] = (
    (30, 90, 160),
    (200, 170, 30),
    (60, 60, 64),
    (160, 40, 40),
    (40, 120, 80),
    (230, 230, 230),
)


@dataclass(frozen=True, slots=True)
class Camera:
    """One camera's characteristics (see the module docstring).

    Attributes:
        index: 1-based camera number (the ``c<k>`` of Market-1501 names).
        gains: White-balance gains per RGB channel.
        brightness: Exposure factor.
        contrast: Contrast factor around mid-grey.
        gamma: Output gamma (> 1 darkens mid-tones).
        light: Horizontal illumination gradient, -0.5 .. 0.5 of the mean level.
        resolution: Fraction of a crop's pixels the camera really resolves.
        blur: Gaussian blur sigma in pixels of a 256-pixel-high crop.
        noise: Sensor noise sigma in grey levels.
        jpeg_quality: JPEG quality of what it writes.
        wall: Wall colour.
        floor: Floor colour.
        accent: Colour of wall fixtures (signs, doors, rails).
        tile: Floor tile size as a fraction of the crop height.
        horizon: Where the floor meets the wall, fraction of the crop height.
        occlusion: Probability that something partly hides a person in a crop.
        views: Probability of each of :data:`~cv.datasets.cctv_people.VIEWS`.
        texture: Strength of the wall and floor texture, grey levels.
    """

    index: int
    gains: tuple[float, float, float]
    brightness: float
    contrast: float
    gamma: float
    light: float
    resolution: float
    blur: float
    noise: float
    jpeg_quality: int
    wall: RGB
    floor: RGB
    accent: RGB
    tile: float
    horizon: float
    occlusion: float
    views: tuple[float, float, float, float]
    texture: float

    def to_dict(self) -> dict[str, object]:
        """The characteristics as JSON-ready values."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float):
                d[k] = round(v, 4)
            elif isinstance(v, tuple):
                d[k] = [round(x, 4) if isinstance(x, float) else x for x in v]
        return d

    def draw_view(self, rng: np.random.Generator) -> View:
        """A viewpoint, drawn from this camera's distribution."""
        return VIEWS[int(rng.choice(4, p=np.array(self.views)))]


def make_camera(index: int, rng: np.random.Generator, *, quality: str = "cctv") -> Camera:
    """A random camera.

    Args:
        index: Its 1-based number.
        rng: Source of randomness.
        quality: ``cctv`` (the full range of casts, blur, noise and resolution) or
            ``enrol`` (a well-lit, sharp camera, as at an e-gate or a desk).
    """
    good = quality == "enrol"
    cast = 0.04 if good else 0.13
    gains = np.exp(rng.uniform(-cast, cast, 3))
    gains /= gains.mean() ** 0.5  # keep the overall level near the exposure factor
    views = rng.dirichlet([2.0, 2.0, 1.2, 1.2])
    return Camera(
        index=index,
        gains=tuple(float(g) for g in gains),  # type: ignore[arg-type]
        brightness=float(np.exp(rng.uniform(-0.05, 0.05) if good else rng.uniform(-0.35, 0.25))),
        contrast=float(rng.uniform(0.95, 1.1) if good else rng.uniform(0.75, 1.15)),
        gamma=float(np.exp(rng.uniform(-0.05, 0.05) if good else rng.uniform(-0.25, 0.25))),
        light=float(rng.uniform(-0.05, 0.05) if good else rng.uniform(-0.35, 0.35)),
        resolution=float(rng.uniform(0.85, 1.0) if good else rng.uniform(0.3, 0.95)),
        blur=float(rng.uniform(0.0, 0.4) if good else rng.uniform(0.0, 1.4)),
        noise=float(rng.uniform(0.5, 2.0) if good else rng.uniform(1.0, 9.0)),
        jpeg_quality=int(rng.integers(88, 96) if good else rng.integers(45, 92)),
        wall=_ACCENTS[5] if good else _WALLS[int(rng.integers(0, len(_WALLS)))],
        floor=_FLOORS[int(rng.integers(0, len(_FLOORS)))],
        accent=_ACCENTS[int(rng.integers(0, len(_ACCENTS)))],
        tile=float(rng.uniform(0.08, 0.3)),
        horizon=float(rng.uniform(0.45, 0.75)),
        occlusion=0.0 if good else float(rng.uniform(0.05, 0.3)),
        views=tuple(float(v) for v in views),  # type: ignore[arg-type]
        texture=float(rng.uniform(2.0, 10.0)),
    )


def camera_for(seed: int, index: int, *, stream: int = 0, quality: str = "cctv") -> Camera:
    """Camera ``index`` of a run: drawn from ``SeedSequence([seed, 202, stream, index])``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 202, stream, index]))
    return make_camera(index, rng, quality=quality)


# ------------------------------------------------------------------ backgrounds


@lru_cache(maxsize=64)
def _texture(cam: Camera, size: int = 512) -> NDArray[np.int16]:
    """A camera's fixed low-frequency texture (stains, tile shading), cached."""
    rng = np.random.default_rng(np.random.SeedSequence([cam.index, 303, int(cam.texture * 1000)]))
    small = rng.standard_normal((size // 8, size // 8)).astype(np.float32)
    big = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    fine = rng.standard_normal((size, size)).astype(np.float32) * 0.35
    return np.round((big + fine) * cam.texture).astype(np.int16)


def draw_background(
    cam: Camera,
    width: int,
    height: int,
    rng: np.random.Generator,
    *,
    horizon: float | None = None,
    vanish_x: float | None = None,
    scale: float | None = None,
) -> NDArray[np.uint8]:
    """Wall and floor as the camera sees them behind a person.

    Args:
        cam: The camera.
        width: Image width in pixels.
        height: Image height in pixels.
        rng: Source of the per-image variation (shifts, fixtures).
        horizon: Row where floor meets wall; by default the camera's, jittered.
        vanish_x: Column of the floor lines' vanishing point; by default random.
        scale: Pixels per tile at the bottom row; by default from the camera.

    Returns:
        ``(height, width, 3) uint8`` RGB.
    """
    hy = round(height * (cam.horizon + rng.uniform(-0.08, 0.08)) if horizon is None else horizon)
    hy = min(max(hy, 1), height - 1)
    img = np.empty((height, width, 3), np.uint8)
    # Wall: vertical gradient, darker towards the ceiling.
    grad = np.linspace(0.82, 1.0, hy, dtype=np.float32)[:, None]
    img[:hy] = np.clip(np.array(cam.wall, np.float32)[None, :] * grad, 0, 255).astype(np.uint8)[
        :, None, :
    ]
    img[hy:] = cam.floor
    # Wall fixtures: doors, signs, panels, a rail.
    for _ in range(int(rng.integers(0, 4))):
        w = int(rng.uniform(0.15, 0.6) * min(width, height))
        x = int(rng.uniform(-0.2, 1.0) * width)
        y1 = int(hy - rng.uniform(0.0, 0.1) * height)
        y0 = int(y1 - rng.uniform(0.2, 0.9) * hy)
        colour = cam.accent if rng.random() < 0.4 else tuple(int(v * 0.85) for v in cam.wall)
        cv2.rectangle(img, (x, y0), (x + w, y1), colour, -1)
    if rng.random() < 0.5:
        y = int(hy - rng.uniform(0.25, 0.6) * hy)
        cv2.rectangle(
            img,
            (0, y),
            (width, y + max(1, height // 90)),
            tuple(int(v * 0.7) for v in cam.wall),
            -1,
        )
    # Skirting board and floor tiles in perspective.
    cv2.rectangle(
        img, (0, hy - max(1, height // 80)), (width, hy), tuple(int(v * 0.6) for v in cam.floor), -1
    )
    line = tuple(int(v * 0.78) for v in cam.floor)
    vx = rng.uniform(-0.5, 1.5) * width if vanish_x is None else vanish_x
    tile = cam.tile * height if scale is None else scale
    depth = height - hy
    if depth > 2:
        # Rows at equal steps of distance: image rows go as 1 / distance.
        t = tile / depth
        z = 1.0 + rng.uniform(0.0, 1.0) * t
        while depth / z >= 2.0:
            y = int(hy + depth / z)
            cv2.line(img, (0, y), (width, y), line, 1)
            z += t
        # Columns: lines through the vanishing point, ``tile`` apart on the bottom row.
        x = rng.uniform(0.0, tile) - tile * math.ceil(abs(vx) / tile + 4)
        while x < width + abs(vx) + 4 * tile:
            cv2.line(img, (int(vx), hy), (int(x), height), line, 1)
            x += tile
        img[hy - max(1, height // 80) : hy] = tuple(int(v * 0.6) for v in cam.floor)
    # Texture, shifted per image.
    tex = _texture(cam)
    ty = int(rng.integers(0, max(1, tex.shape[0] - height))) if height < tex.shape[0] else 0
    tx = int(rng.integers(0, max(1, tex.shape[1] - width))) if width < tex.shape[1] else 0
    t = tex[ty : ty + height, tx : tx + width]
    if t.shape[:2] != (height, width):
        t = cv2.resize(t.astype(np.float32), (width, height)).astype(np.int16)
    return np.clip(img.astype(np.int16) + t[..., None], 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- camera effects


def _lut(cam: Camera, brightness: float) -> NDArray[np.uint8]:
    x = np.arange(256, dtype=np.float64) / 255.0
    x = (x - 0.5) * cam.contrast + 0.5
    out = np.empty((1, 256, 3), np.uint8)
    for c in range(3):
        v = np.clip(x * cam.gains[c] * brightness, 0.0, 1.0) ** cam.gamma
        out[0, :, c] = np.round(v * 255.0).astype(np.uint8)
    return out


def apply_camera(
    image: NDArray[np.uint8],
    cam: Camera,
    rng: np.random.Generator,
    *,
    ref_height: int = 256,
    jitter: float = 1.0,
) -> NDArray[np.uint8]:
    """What ``cam`` makes of a clean picture: resolution, blur, colour, light, noise.

    Args:
        image: ``(H, W, 3) uint8`` RGB, not changed.
        cam: The camera.
        rng: Source of the per-image jitter and the noise.
        ref_height: Image height at which ``cam.blur`` and ``cam.resolution`` hold as
            they are (a 256-pixel crop); a whole frame, whose people are smaller
            than a crop's, passes more to get a milder blur and down-sampling.
        jitter: Scale of the per-image variation of exposure and resolution
            (0 for frames of one video, which share one exposure).

    Returns:
        A new ``(H, W, 3) uint8`` RGB image (JPEG compression happens on writing).
    """
    h, w = image.shape[:2]
    out = image
    r = min(1.0, cam.resolution * ref_height / 256) * math.exp(rng.uniform(-0.15, 0.15) * jitter)
    if r < 0.97:
        small = cv2.resize(
            out, (max(4, round(w * r)), max(4, round(h * r))), interpolation=cv2.INTER_AREA
        )
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    sigma = cam.blur * h / ref_height
    if sigma > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    out = cv2.LUT(out, _lut(cam, cam.brightness * math.exp(rng.normal(0.0, 0.08) * jitter)))
    f = out.astype(np.float32)
    if abs(cam.light) > 0.02:
        ramp = 1.0 + cam.light * np.linspace(-0.5, 0.5, w, dtype=np.float32)
        f *= ramp[None, :, None]
    if cam.noise > 0:
        f += rng.standard_normal(f.shape, dtype=np.float32) * np.float32(cam.noise)
    return np.clip(f, 0, 255).astype(np.uint8)
