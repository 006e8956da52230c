"""Parametric objects for synthetic X-ray scans, and their rasterisation.

An object (:class:`Shape`) is a list of :class:`Part` s, each an outline in
millimetres in the object's own frame, a material and a thickness profile. Every
builder draws its proportions from a random generator, so each call gives a
different knife, bag or laptop. :func:`rasterise` places a shape in a scan (scale,
rotation, position) and turns each part into a thickness patch (cm) covering only
the object's bounding rectangle; :func:`cv.xray.add_material` then adds it to the
scan's line integrals.

Builders return shapes centred near the origin. Targets (taxonomy classes) are in
:data:`TARGET_BUILDERS`; clutter that must never look like a target (loose cells,
blades, ...) is kept out of :data:`CLUTTER_BUILDERS` on purpose.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from cv.materials import MATERIALS, Material
from cv.xray import DualEnergy, add_material

Points = NDArray[np.float64]
"""``(N, 2)`` float64 points ``(x, y)`` in millimetres."""
Profile = Literal["flat", "round", "tube"]


@dataclass(slots=True)
class Part:
    """One piece of one material.

    Attributes:
        polygons: Closed outlines in mm (object frame); several outlines combine
            even-odd, so an inner outline is a hole. Open polylines when ``stroke`` > 0.
        material: What the part is made of.
        thickness: Path length through the part in cm at its thickest.
        profile: ``flat`` (constant), ``round`` (a solid cylinder or pad whose
            thickness falls to 0 at the outline over ``edge`` mm) or ``tube`` (a
            hollow cylinder with walls ``wall`` of the radius ``edge``).
        edge: Rounding distance in mm (``round``/``tube``); 0 uses half the part's
            narrowest width.
        wall: Wall fraction of a ``tube``, 0-1.
        texture: Amplitude 0-1 of a smooth random thickness variation (folds,
            crumpled paper).
        stroke: Line width in mm when the part is an open polyline (cable, zip).
        holes: Outlines cut out of the part after filling (jaw of a wrench).
    """

    polygons: list[Points]
    material: Material
    thickness: float
    profile: Profile = "flat"
    edge: float = 0.0
    wall: float = 0.2
    texture: float = 0.0
    stroke: float = 0.0
    holes: list[Points] = field(default_factory=list)


@dataclass(slots=True)
class Shape:
    """A whole object.

    Attributes:
        kind: What it is (``knife``, ``laptop``, ``suitcase``...).
        parts: Its pieces.
        category: Taxonomy class when it is an object to find, else ``None``.
    """

    kind: str
    parts: list[Part]
    category: str | None = None

    def extent(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of all outlines in mm (strokes included)."""
        pts = np.concatenate([p for part in self.parts for p in part.polygons])
        pad = max((part.stroke / 2 for part in self.parts), default=0.0)
        return (
            float(pts[:, 0].min() - pad),
            float(pts[:, 1].min() - pad),
            float(pts[:, 0].max() + pad),
            float(pts[:, 1].max() + pad),
        )


@dataclass(slots=True)
class Placed:
    """A shape rasterised into a scan.

    Attributes:
        shape: The shape.
        x: Column of the patch's left edge in the scan.
        y: Row of the patch's top edge.
        mask: ``(h, w)`` bool: pixels the object covers.
        own_high: ``(h, w)`` float32 high-energy line integral of the object alone.
    """

    shape: Shape
    x: int
    y: int
    mask: NDArray[np.bool_]
    own_high: NDArray[np.float32]

    def box(self, width: int, height: int) -> tuple[float, float, float, float] | None:
        """Tight ``xyxy`` box of the covered pixels inside a ``width × height`` scan."""
        ys, xs = np.nonzero(self.mask)
        if len(xs) == 0:
            return None
        x1, x2 = max(self.x + int(xs.min()), 0), min(self.x + int(xs.max()) + 1, width)
        y1, y2 = max(self.y + int(ys.min()), 0), min(self.y + int(ys.max()) + 1, height)
        if x2 <= x1 or y2 <= y1:
            return None
        return float(x1), float(y1), float(x2), float(y2)


M = MATERIALS

# --------------------------------------------------------------------- geometry


def rect(w: float, h: float, cx: float = 0.0, cy: float = 0.0) -> Points:
    """Axis-aligned rectangle ``w × h`` mm centred on ``(cx, cy)``."""
    return np.array(
        [
            [cx - w / 2, cy - h / 2],
            [cx + w / 2, cy - h / 2],
            [cx + w / 2, cy + h / 2],
            [cx - w / 2, cy + h / 2],
        ]
    )


def rounded_rect(w: float, h: float, r: float, cx: float = 0.0, cy: float = 0.0) -> Points:
    """Rectangle with corners rounded to radius ``r`` mm."""
    r = max(0.0, min(r, w / 2, h / 2))
    pts = []
    for (sx, sy), a0 in (((1, 1), 0), ((-1, 1), 90), ((-1, -1), 180), ((1, -1), 270)):
        ccx, ccy = cx + sx * (w / 2 - r), cy + sy * (h / 2 - r)
        for a in np.radians(np.linspace(a0, a0 + 90, 5)):
            pts.append([ccx + r * math.cos(a), ccy + r * math.sin(a)])
    return np.array(pts)


def ellipse(ax: float, ay: float, cx: float = 0.0, cy: float = 0.0, n: int = 24) -> Points:
    """Ellipse with semi-axes ``ax``, ``ay`` mm."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], axis=1)


def blob(rng: np.random.Generator, ax: float, ay: float, wobble: float, n: int = 28) -> Points:
    """Irregular closed outline around an ellipse (clothes, pouches)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    k = np.arange(1, 4)
    coef = rng.normal(0, wobble / k, size=(2, 3))
    phase = rng.uniform(0, 2 * np.pi, size=(2, 3))
    r = 1 + (coef[0][:, None] * np.sin(k[:, None] * t + phase[0][:, None])).sum(0)
    r = np.clip(r, 0.45, 1.6)
    return np.stack([ax * r * np.cos(t), ay * r * np.sin(t)], axis=1)


def transform(points: Points, *, angle: float = 0.0, dx: float = 0.0, dy: float = 0.0) -> Points:
    """Rotates ``points`` by ``angle`` degrees about the origin, then shifts them."""
    a = math.radians(angle)
    c, s = math.cos(a), math.sin(a)
    rot = np.array([[c, -s], [s, c]])
    return points @ rot.T + np.array([dx, dy])


def smooth_path(rng: np.random.Generator, length: float, n: int = 12, bend: float = 0.5) -> Points:
    """A smooth random open path of about ``length`` mm starting at the origin."""
    step = length / n
    heading = np.cumsum(rng.normal(0, bend, n))
    xy = np.stack([np.cos(heading), np.sin(heading)], axis=1) * step
    return np.vstack([[0.0, 0.0], np.cumsum(xy, axis=0)])


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


# ------------------------------------------------------------------ rasterising


def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: int) -> NDArray[np.float32]:
    """Smooth random field of zero mean and unit-ish amplitude over ``h × w`` pixels."""
    gh, gw = max(2, h * cells // max(h, w, 1) + 2), max(2, w * cells // max(h, w, 1) + 2)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _part_thickness(
    part: Part,
    pix: list[NDArray[np.int32]],
    holes: list[NDArray[np.int32]],
    shape: tuple[int, int],
    scale: float,
    rng: np.random.Generator,
) -> NDArray[np.float32]:
    """Thickness patch (cm) of one part, already in patch pixel coordinates."""
    mask = np.zeros(shape, np.uint8)
    if part.stroke > 0:
        width = max(1, round(part.stroke * scale))
        cv2.polylines(mask, pix, False, 1, thickness=width, lineType=cv2.LINE_8)
    else:
        cv2.fillPoly(mask, pix, 1, lineType=cv2.LINE_8)
    if holes:
        cv2.fillPoly(mask, holes, 0, lineType=cv2.LINE_8)
    t = mask.astype(np.float32)
    if part.profile != "flat" and part.stroke == 0 and mask.any():
        dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
        radius = part.edge * scale if part.edge > 0 else float(dist.max())
        radius = max(radius, 1.0)
        x = np.clip(1.0 - dist / np.float32(radius), 0, 1)  # 1 at the edge, 0 inside
        outer = np.sqrt(np.clip(1.0 - x * x, 0, 1))
        if part.profile == "tube":
            inner_r = 1.0 - part.wall
            inner = np.sqrt(np.clip(inner_r * inner_r - x * x, 0, None))
            # Chord through the walls, normalised so that its peak (at the inner radius) is 1.
            t = (outer - inner) * np.float32(1.0 / math.sqrt(1.0 - inner_r * inner_r)) * mask
        else:
            t = outer * mask
    if part.texture > 0 and mask.any():
        f = _smooth_field(rng, shape[0], shape[1], 6)
        t = t * np.clip(1.0 + np.float32(part.texture) * f, 0.15, None)
    return (t * np.float32(part.thickness)).astype(np.float32)


def rasterise(
    shape: Shape,
    image: DualEnergy,
    *,
    scale: float,
    angle: float,
    center: tuple[float, float],
    rng: np.random.Generator,
    thickness_factor: float = 1.0,
) -> Placed:
    """Adds ``shape`` to ``image`` and returns where it went.

    Args:
        shape: The object, in mm.
        image: The scan; its line integrals are increased in place.
        scale: Pixels per mm.
        angle: Rotation in degrees (counter-clockwise in ``x`` right, ``y`` down).
        center: ``(x, y)`` pixel position of the object's origin.
        rng: Source of texture randomness.
        thickness_factor: Multiplies every part's thickness (items pressed flat).

    Returns:
        The placement, with the object's mask and own high-energy line integral over
        its bounding patch.
    """
    a = math.radians(angle)
    c, s = math.cos(a), math.sin(a)
    rot = np.array([[c, -s], [s, c]]) * scale
    moved = [
        ([p @ rot.T + center for p in part.polygons], [h @ rot.T + center for h in part.holes])
        for part in shape.parts
    ]
    allpts = np.concatenate([p for polys, _ in moved for p in polys])
    pad = max((part.stroke * scale for part in shape.parts), default=0.0) + 2
    x0 = math.floor(allpts[:, 0].min() - pad)
    y0 = math.floor(allpts[:, 1].min() - pad)
    x1 = math.ceil(allpts[:, 0].max() + pad) + 1
    y1 = math.ceil(allpts[:, 1].max() + pad) + 1
    ph, pw = y1 - y0, x1 - x0
    mask = np.zeros((ph, pw), bool)
    own = np.zeros((ph, pw), np.float32)
    for part, (polys, holes) in zip(shape.parts, moved, strict=True):
        # Each part is drawn on its own bounding rectangle only: containers are big
        # and most of their parts are thin.
        pts = np.concatenate(polys)
        ppad = part.stroke * scale / 2 + 2
        px0 = max(math.floor(pts[:, 0].min() - ppad), x0)
        py0 = max(math.floor(pts[:, 1].min() - ppad), y0)
        px1 = min(math.ceil(pts[:, 0].max() + ppad) + 1, x1)
        py1 = min(math.ceil(pts[:, 1].max() + ppad) + 1, y1)
        origin = np.array([px0, py0])
        pix = [np.rint(p - origin).astype(np.int32) for p in polys]
        hpix = [np.rint(h - origin).astype(np.int32) for h in holes]
        t = _part_thickness(part, pix, hpix, (py1 - py0, px1 - px0), scale, rng)
        if thickness_factor != 1.0:
            t *= np.float32(thickness_factor)
        add_material(image, part.material, t, x=px0, y=py0)
        sub = (slice(py0 - y0, py1 - y0), slice(px0 - x0, px1 - x0))
        own[sub] += np.float32(part.material.mu_high) * t
        mask[sub] |= t > 0
    return Placed(shape=shape, x=x0, y=y0, mask=mask, own_high=own)


# ---------------------------------------------------------------------- targets


def gun(rng: np.random.Generator) -> Shape:
    """A handgun: slide, frame, grip, trigger guard (pistol), or a revolver."""
    parts: list[Part] = []
    if rng.random() < 0.75:
        ls, hs = _u(rng, 150, 210), _u(rng, 26, 38)
        bevel = _u(rng, 4, 12)
        slide = np.array(
            [
                [-ls / 2, -hs],
                [ls / 2 - bevel, -hs],
                [ls / 2, -hs + bevel],
                [ls / 2, 0],
                [-ls / 2, 0],
            ]
        )
        parts.append(Part([slide], M["steel"], _u(rng, 0.7, 1.1), texture=0.05))
        parts.append(Part([rect(ls * 0.9, hs * 0.25, 0, -hs * 0.5)], M["steel"], 0.35))
        frame = rect(ls * _u(rng, 0.75, 0.95), _u(rng, 10, 16), -ls * 0.02, 6)
        polymer = rng.random() < 0.5
        fmat = M["plastic"] if polymer else M["steel"]
        ft = _u(rng, 2.2, 3.0) if polymer else _u(rng, 0.6, 0.9)
        parts.append(Part([frame], fmat, ft))
        gl, gw, slant = _u(rng, 85, 120), _u(rng, 26, 36), _u(rng, 10, 25)
        gx = -ls / 2 + gw * 0.6
        off = gl * math.tan(math.radians(slant))
        grip = np.array(
            [
                [gx - gw / 2, 8],
                [gx + gw / 2, 8],
                [gx + gw / 2 - off, 8 + gl],
                [gx - gw / 2 - off - 4, 8 + gl],
            ]
        )
        parts.append(Part([grip], fmat, ft, profile="round", edge=6))
        mag = np.array(
            [
                [gx - gw / 4, 14],
                [gx + gw / 4, 14],
                [gx + gw / 4 - off, 6 + gl],
                [gx - gw / 4 - off, 6 + gl],
            ]
        )
        parts.append(Part([mag], M["steel"], _u(rng, 0.25, 0.45)))
        tx = gx + gw / 2 + _u(rng, 14, 22)
        outer = rounded_rect(_u(rng, 34, 44), _u(rng, 22, 30), 9, tx, 20)
        inner = rounded_rect(26, 15, 6, tx, 19)
        parts.append(Part([outer, inner], fmat, ft * 0.6))
        trig = np.array([[tx - 3, 12], [tx + 2, 12], [tx - 1, 26], [tx - 5, 25]])
        parts.append(Part([trig], M["steel"], 0.5))
    else:
        lb = _u(rng, 60, 150)
        parts.append(
            Part([rect(lb, 14, lb / 2 + 25, -8)], M["steel"], 1.2, profile="tube", wall=0.4)
        )
        parts.append(
            Part([rounded_rect(44, 36, 8, 0, -6)], M["steel"], 2.6, profile="round", edge=12)
        )
        parts.append(Part([rect(70, 12, 5, -20)], M["steel"], 0.8))
        grip = np.array([[-24, 8], [0, 8], [-22, 95], [-50, 88]])
        parts.append(
            Part(
                [grip],
                M["wood"] if rng.random() < 0.5 else M["rubber"],
                3.0,
                profile="round",
                edge=8,
            )
        )
        parts.append(Part([np.array([[-18, 6], [-6, 6], [-24, 70], [-32, 68]])], M["steel"], 0.6))
        outer = rounded_rect(34, 24, 9, 14, 20)
        parts.append(Part([outer, rounded_rect(24, 14, 6, 14, 19)], M["steel"], 0.5))
    return Shape("gun", parts, "gun")


def gun_part(rng: np.random.Generator) -> Shape:
    """A loose firearm part: barrel, slide, magazine or frame."""
    kind = rng.choice(["barrel", "slide", "magazine", "frame"])
    if kind == "barrel":
        lb, d = _u(rng, 90, 220), _u(rng, 12, 22)
        parts = [
            Part([rect(lb, d)], M["steel"], d / 10, profile="tube", wall=0.45),
            Part(
                [rect(_u(rng, 18, 30), d * 1.3, -lb / 2 + 12)],
                M["steel"],
                d / 10 * 0.9,
                profile="round",
            ),
        ]
    elif kind == "slide":
        ls, hs = _u(rng, 140, 200), _u(rng, 24, 34)
        # The ejection port is a window through the top wall.
        port = rect(ls * 0.22, hs * 0.35, ls * 0.05, -hs * 0.1)
        parts = [
            Part([rounded_rect(ls, hs, 4)], M["steel"], _u(rng, 0.7, 1.0), holes=[port]),
            Part([rect(ls * 0.9, hs * 0.3, 0, hs * 0.15)], M["steel"], 0.4),
        ]
    elif kind == "magazine":
        lm, wm = _u(rng, 90, 130), _u(rng, 24, 32)
        body = np.array(
            [[-wm / 2, -lm / 2], [wm / 2, -lm / 2], [wm / 2 + 8, lm / 2], [-wm / 2 + 8, lm / 2]]
        )
        parts = [
            Part([body], M["steel"], _u(rng, 0.35, 0.55)),
            Part([rect(wm + 8, 10, 4, lm / 2 + 3)], M["plastic"], 2.0),
            Part([rect(wm * 0.6, lm * 0.85, 2, 2)], M["steel"], 0.2),
        ]
    else:
        lf = _u(rng, 150, 190)
        frame = np.array(
            [
                [-lf / 2, -6],
                [lf / 2, -6],
                [lf / 2, 8],
                [-lf / 2 + 40, 12],
                [-lf / 2 + 24, 110],
                [-lf / 2 - 6, 104],
                [-lf / 2, 10],
            ]
        )
        parts = [
            Part([frame], M["plastic"], _u(rng, 2.0, 3.0), profile="round", edge=6),
            Part([rect(lf * 0.8, 4, 0, -4)], M["steel"], 0.5),
            Part([rect(10, 30, -lf / 2 + 55, 20)], M["steel"], 0.4),
        ]
    return Shape("gun_part", parts, "gun_part")


def _blade(rng: np.random.Generator, length: float, width: float) -> Points:
    """Outline of a blade from ``x = 0`` (handle) to the tip at ``x = length``."""
    style = rng.choice(["drop", "clip", "spear", "tanto", "curved"])
    tip_y = {"drop": -0.15, "clip": -0.2, "spear": 0.0, "tanto": -0.35, "curved": 0.35}[style]
    tip_y *= width
    top = [(0.0, -width / 2), (length * _u(rng, 0.55, 0.8), -width / 2)]
    if style == "clip":
        top.append((length * 0.88, -width * 0.25))
    if style == "tanto":
        top.append((length * 0.95, -width / 2))
    top.append((length, tip_y))
    k = _u(rng, 2.0, 5.0) if style != "spear" else 1.6
    xs = np.linspace(1, 0, 14)
    bottom = [(length * x, width / 2 - (width / 2 - tip_y) * x**k) for x in xs]
    if style == "spear":
        bottom = [(length * x, width / 2 * (1 - x**k) + tip_y * x**k) for x in xs]
    if rng.random() < 0.2:  # serrations near the handle
        bottom = [
            (x, y - (2.5 if i % 2 and x < length * 0.4 else 0.0)) for i, (x, y) in enumerate(bottom)
        ]
    return np.array(top + bottom)


def knife(rng: np.random.Generator) -> Shape:
    """A knife: straight, folding (open or closed), utility or dagger."""
    style = rng.choice(["fixed", "folding", "utility", "dagger"], p=[0.4, 0.25, 0.2, 0.15])
    parts: list[Part] = []
    if style == "utility":
        lh, wh = _u(rng, 110, 160), _u(rng, 18, 26)
        parts.append(
            Part(
                [rounded_rect(lh, wh, 6, -lh / 2)],
                M["plastic"] if rng.random() < 0.6 else M["aluminium"],
                1.4,
                profile="round",
                edge=5,
            )
        )
        lb = _u(rng, 25, 45)
        blade = np.array(
            [[-20, -wh / 2 + 3], [lb, -wh / 2 + 3], [lb - 10, wh / 2 - 2], [-20, wh / 2 - 2]]
        )
        parts.append(Part([blade], M["steel"], 0.12))
        parts.append(Part([rect(lh * 0.6, 4, -lh / 2, 0)], M["steel"], 0.3))
        return Shape("knife", parts, "knife")
    lb, wb = _u(rng, 70, 210), _u(rng, 14, 38)
    if style == "dagger":
        blade = np.array(
            [
                [0, -wb / 2],
                [lb * 0.7, -wb / 2 * 0.8],
                [lb, 0],
                [lb * 0.7, wb / 2 * 0.8],
                [0, wb / 2],
            ]
        )
    else:
        blade = _blade(rng, lb, wb)
    bt = _u(rng, 0.15, 0.35)
    lh, wh = _u(rng, 80, 130), _u(rng, 18, 28)
    hmat = rng.choice(["plastic", "wood", "rubber", "steel", "aluminium"])
    ht = {"steel": 0.35, "aluminium": 0.9}.get(hmat, _u(rng, 1.2, 2.0))
    if style == "folding" and rng.random() < 0.4:
        # Closed: the blade lies inside the handle.
        parts.append(Part([rounded_rect(lh, wh, 7, -lh / 2)], M[hmat], ht, profile="round", edge=5))
        parts.append(
            Part(
                [transform(blade * [min(1, lh * 0.85 / lb), 0.7], angle=180, dx=-6)], M["steel"], bt
            )
        )
        parts.append(Part([ellipse(4, 4, -lh + 8, 0, 12)], M["steel"], 0.8))
        return Shape("knife", parts, "knife")
    parts.append(Part([blade], M["steel"], bt, texture=0.05))
    parts.append(Part([rounded_rect(lh, wh, 7, -lh / 2)], M[hmat], ht, profile="round", edge=5))
    if rng.random() < 0.5:
        parts.append(Part([rect(_u(rng, 5, 9), wb + _u(rng, 8, 22), -2)], M["steel"], 0.6))
    if hmat in ("wood", "plastic", "rubber"):
        parts.append(Part([rect(lh * 0.85, 3, -lh / 2)], M["steel"], 0.3))
        for i in range(int(rng.integers(2, 4))):
            parts.append(Part([ellipse(2.5, 2.5, -lh * (0.2 + 0.3 * i), 0, 10)], M["brass"], 1.2))
    return Shape("knife", parts, "knife")


def scissors(rng: np.random.Generator) -> Shape:
    """Scissors: two blades crossing at a pivot, two finger loops; open or closed."""
    lb, wb = _u(rng, 55, 120), _u(rng, 8, 14)
    open_angle = _u(rng, 0, 40) if rng.random() < 0.6 else _u(rng, 0, 4)
    loops_plastic = rng.random() < 0.65
    parts: list[Part] = []
    for sign in (-1, 1):
        blade = np.array(
            [[-6, -wb / 2], [lb * 0.6, -wb * 0.4], [lb, 0], [lb * 0.2, wb / 2], [-6, wb / 2]]
        )
        blade = transform(blade, angle=sign * open_angle / 2)
        parts.append(Part([blade], M["steel"], _u(rng, 0.2, 0.3)))
        shank = transform(rect(30, 7, -18, sign * 6), angle=sign * open_angle / 2)
        parts.append(Part([shank], M["steel"], 0.3))
        lx, ly = -48, sign * 16
        ro, ri = (_u(rng, 15, 22), _u(rng, 10, 13))
        loop = [
            transform(ellipse(ro, ro * 0.75, lx, ly), angle=sign * open_angle / 2),
            transform(ellipse(ri, ri * 0.7, lx, ly), angle=sign * open_angle / 2),
        ]
        if loops_plastic:
            parts.append(Part(loop, M["plastic"], 1.0, profile="round", edge=3))
        else:
            parts.append(Part(loop, M["steel"], 0.35))
    parts.append(Part([ellipse(3.5, 3.5, 0, 0, 12)], M["steel"], 0.9))
    return Shape("scissors", parts, "scissors")


def wrench(rng: np.random.Generator) -> Shape:
    """A wrench: combination (open end + ring), double open end, or adjustable."""
    ls, ws = _u(rng, 100, 260), _u(rng, 11, 22)
    t = _u(rng, 0.45, 0.8)
    parts: list[Part] = [Part([rounded_rect(ls, ws, ws / 3)], M["steel"], t)]
    style = rng.choice(["combination", "open", "adjustable"])
    r = ws * _u(rng, 1.0, 1.4)
    # Open jaw at the right end: a disc with a slot cut in.
    jaw = ellipse(r, r, ls / 2 + r * 0.6, 0, 20)
    slot = transform(rect(r * 2.2, r * 0.9, ls / 2 + r * 1.5, 0), angle=_u(rng, -20, 20))
    parts.append(Part([jaw], M["steel"], t * 1.1, holes=[slot]))
    if style == "combination":
        ring = [
            ellipse(r * 0.95, r * 0.95, -ls / 2 - r * 0.5, 0, 20),
            ellipse(r * 0.55, r * 0.55, -ls / 2 - r * 0.5, 0, 6),
        ]
        parts.append(Part(ring, M["steel"], t * 1.2))
    elif style == "open":
        jaw2 = ellipse(r * 0.85, r * 0.85, -ls / 2 - r * 0.5, 0, 20)
        slot2 = rect(r * 2, r * 0.8, -ls / 2 - r * 1.3, 0)
        parts.append(Part([jaw2], M["steel"], t * 1.1, holes=[slot2]))
    else:
        parts.append(Part([rect(r * 1.2, r * 0.8, ls / 2 - r * 0.2, r * 0.9)], M["steel"], t))
        parts.append(
            Part([ellipse(r * 0.35, r * 0.35, ls / 2 - r * 0.3, r * 0.2, 10)], M["steel"], t * 1.6)
        )
    return Shape("wrench", parts, "wrench")


def pliers(rng: np.random.Generator) -> Shape:
    """Pliers: two handles, jaws and a pivot; open or closed."""
    lh, lj = _u(rng, 90, 140), _u(rng, 35, 70)
    open_angle = _u(rng, 0, 30) if rng.random() < 0.5 else _u(rng, 0, 3)
    coated = rng.random() < 0.7
    parts: list[Part] = []
    for sign in (-1, 1):
        a = sign * open_angle / 2
        handle = np.array([[-4, sign * 2], [-lh, sign * 14], [-lh, sign * 24], [-4, sign * 10]])
        handle = transform(handle, angle=a)
        parts.append(Part([handle], M["steel"], 0.5))
        if coated:
            grip = transform(rect(lh * 0.75, 15, -lh * 0.6, sign * 16), angle=a)
            parts.append(Part([grip], M["rubber"], 1.4, profile="round", edge=5))
        jaw = np.array([[-2, 0], [lj, sign * 2.5], [lj, sign * 7], [0, sign * 13]])
        parts.append(Part([transform(jaw, angle=-a)], M["steel"], _u(rng, 0.7, 1.0)))
    parts.append(Part([ellipse(9, 9, 0, 0, 14)], M["steel"], 1.1))
    return Shape("pliers", parts, "pliers")


def hammer(rng: np.random.Generator) -> Shape:
    """A hammer: steel head (claw or ball-peen) on a wooden, steel or fibreglass handle."""
    lh, wh = _u(rng, 230, 340), _u(rng, 22, 32)
    hmat = rng.choice(["wood", "steel", "plastic"])
    ht = {"wood": 2.6, "steel": 0.45, "plastic": 2.4}[str(hmat)]
    parts = [
        Part(
            [rounded_rect(lh, wh, 8, -lh / 2 + 10)],
            M[hmat],
            ht,
            profile="tube" if hmat == "steel" else "round",
            edge=8,
        )
    ]
    head_l, head_w = _u(rng, 95, 135), _u(rng, 24, 34)
    head = rounded_rect(head_w, head_l * 0.6, 4, 0, -head_l * 0.2)
    parts.append(Part([head], M["steel"], _u(rng, 1.8, 2.6), profile="round", edge=6))
    if rng.random() < 0.6:
        claw = np.array(
            [
                [-head_w / 2, head_l * 0.08],
                [head_w / 2, head_l * 0.08],
                [head_w * 0.3, head_l * 0.45],
                [-head_w * 0.1, head_l * 0.5],
            ]
        )
        parts.append(Part([claw], M["steel"], 1.4))
    else:
        parts.append(
            Part(
                [ellipse(head_w * 0.45, head_l * 0.14, 0, head_l * 0.18, 14)],
                M["steel"],
                2.4,
                profile="round",
            )
        )
    return Shape("hammer", parts, "hammer")


def bullet(rng: np.random.Generator) -> Shape:
    """One cartridge: brass case and lead/copper bullet (pistol or rifle)."""
    rifle = rng.random() < 0.35
    d = _u(rng, 7.5, 11.5) if not rifle else _u(rng, 9, 12)
    lc = _u(rng, 16, 25) if not rifle else _u(rng, 38, 55)
    parts = [Part([rect(lc, d, -lc / 2)], M["brass"], d / 10 * 0.35, profile="tube", wall=0.3)]
    parts.append(Part([rect(1.6, d * 1.05, -lc - 0.8)], M["brass"], d / 10 * 0.6, profile="round"))
    lb = _u(rng, 8, 14) if not rifle else _u(rng, 16, 24)
    db = d * (0.95 if not rifle else 0.65)
    tip = (
        [[0, -db / 2]]
        + [[lb * math.sin(t), -db / 2 * math.cos(t)] for t in np.linspace(0.2, np.pi - 0.2, 9)]
        + [[0, db / 2]]
    )
    parts.append(
        Part(
            [np.array(tip)],
            M["lead"] if rng.random() < 0.5 else M["copper"],
            db / 10 * 0.8,
            profile="round",
        )
    )
    return Shape("bullet", parts, "bullet")


def _cylinder_cell(length: float, diameter: float, cx: float = 0.0, cy: float = 0.0) -> list[Part]:
    """A cylindrical cell lying flat: steel can, electrode roll and cap."""
    return [
        Part(
            [rect(length, diameter, cx, cy)],
            M["steel"],
            diameter / 10 * 0.12,
            profile="tube",
            wall=0.08,
        ),
        Part(
            [rect(length * 0.92, diameter * 0.88, cx, cy)],
            M["lithium_cell"],
            diameter / 10 * 0.85,
            profile="round",
        ),
        Part([rect(2.0, diameter * 0.4, cx + length / 2 + 0.8, cy)], M["steel"], 0.3),
    ]


def battery(rng: np.random.Generator) -> Shape:
    """A loose battery: cylindrical cell (18650, AA, C), 9 V block or pouch cell."""
    kind = rng.choice(["18650", "AA", "C", "9V", "pouch"], p=[0.3, 0.3, 0.1, 0.15, 0.15])
    if kind == "9V":
        parts = [
            Part([rounded_rect(26, 46, 2)], M["steel"], 0.15),
            Part([rect(22, 40)], M["lithium_cell"], 1.5),
            Part([ellipse(4, 3, -6, -25, 10)], M["steel"], 0.5),
            Part([rect(7, 5, 6, -25)], M["steel"], 0.5),
        ]
    elif kind == "pouch":
        w, h = _u(rng, 35, 70), _u(rng, 50, 100)
        parts = [
            Part([rounded_rect(w, h, 3)], M["lithium_cell"], _u(rng, 0.5, 0.9)),
            Part([rect(w, h * 0.08, 0, -h / 2 + h * 0.04)], M["aluminium"], 0.3),
            Part([rect(5, 8, -w / 4, -h / 2 - 3)], M["aluminium"], 0.05),
            Part([rect(5, 8, w / 4, -h / 2 - 3)], M["copper"], 0.03),
        ]
    else:
        length, dia = {"18650": (65, 18), "AA": (50, 14.5), "C": (50, 26)}[str(kind)]
        parts = _cylinder_cell(length, dia)
    return Shape("battery", parts, "battery")


def power_bank(rng: np.random.Generator) -> Shape:
    """A power bank: case around a row of cylindrical cells or a pouch, board and ports."""
    n = int(rng.integers(1, 5))
    cells_cyl = rng.random() < 0.6
    if cells_cyl:
        w, h = 70.0, n * 19.0 + 6
    else:
        w, h = _u(rng, 80, 140), _u(rng, 50, 75)
    case_mat = M["aluminium"] if rng.random() < 0.4 else M["plastic"]
    parts = [
        Part(
            [rounded_rect(w + 22, h + 4, 5)], case_mat, 0.2 if case_mat.name == "aluminium" else 0.5
        )
    ]
    if cells_cyl:
        for i in range(n):
            parts += _cylinder_cell(65, 18, -8, -h / 2 + 3 + 9.5 + i * 19)
    else:
        parts.append(Part([rounded_rect(w, h, 3, -6)], M["lithium_cell"], _u(rng, 0.8, 1.6)))
    parts.append(Part([rect(14, h * 0.8, w / 2 + 2)], M["circuit_board"], 0.3))
    for i in range(int(rng.integers(1, 3))):
        parts.append(Part([rect(6, 12, w / 2 + 9, -h / 4 + i * 14)], M["steel"], 0.4))
    return Shape("power_bank", parts, "power_bank")


def lighter(rng: np.random.Generator) -> Shape:
    """A lighter: disposable (plastic body with liquid fuel) or metal (petrol, box)."""
    if rng.random() < 0.65:
        w, h = _u(rng, 20, 26), _u(rng, 60, 82)
        parts = [
            Part([rounded_rect(w, h, 5)], M["plastic"], 1.0, profile="tube", wall=0.25),
            Part(
                [rounded_rect(w - 3, h * _u(rng, 0.3, 0.75), 4, 0, h / 2 * 0.25)],
                M["butane"],
                1.1,
                profile="round",
            ),
            Part([rect(w * 0.9, 12, 0, -h / 2 - 4)], M["steel"], 0.25),
            Part([ellipse(4, 4, 0, -h / 2 - 2, 12)], M["steel"], 0.6),
            Part([rect(3, 14, 0, -h / 2 + 4)], M["brass"], 0.3),
        ]
    else:
        w, h = _u(rng, 36, 40), _u(rng, 54, 60)
        parts = [
            Part([rounded_rect(w, h, 5)], M["steel"], 0.2),
            Part([rect(w - 4, h * 0.7, 0, h * 0.12)], M["steel"], 0.15),
            Part([rect(w - 6, h * 0.6, 0, h * 0.15)], M["cotton"], 2.5),
            Part([ellipse(4, 4, -w / 4, -h / 2 + 6, 12)], M["steel"], 0.7),
            Part([rect(6, 10, w / 5, -h / 2 + 5)], M["steel"], 0.4),
        ]
    return Shape("lighter", parts, "lighter")


def drugs(rng: np.random.Generator) -> Shape:
    """Drugs: a pressed brick wrapped in tape, or a powder pouch."""
    if rng.random() < 0.6:
        w, h = _u(rng, 120, 240), _u(rng, 90, 160)
        t = _u(rng, 2.5, 5.0)
        parts = [
            Part([rounded_rect(w, h, 10)], M["drug"], t, profile="round", edge=12, texture=0.05),
            Part([rounded_rect(w + 4, h + 4, 12)], M["plastic"], 0.15),
        ]
        for _ in range(int(rng.integers(1, 4))):
            band = transform(
                rect(w * 1.1, _u(rng, 14, 40)), angle=_u(rng, -70, 70), dy=_u(rng, -h / 3, h / 3)
            )
            parts.append(Part([band], M["plastic"], 0.12, holes=[]))
        # The tape must not stick out of the package outline.
        for p in parts[2:]:
            p.polygons[0][:, 0] = np.clip(p.polygons[0][:, 0], -w / 2, w / 2)
            p.polygons[0][:, 1] = np.clip(p.polygons[0][:, 1], -h / 2, h / 2)
    else:
        ax, ay = _u(rng, 30, 80), _u(rng, 25, 60)
        outline = blob(rng, ax, ay, 0.12, 24)
        mat = M["drug"] if rng.random() < 0.6 else M["sugar"]
        parts = [
            Part([outline], mat, _u(rng, 0.8, 2.2), profile="round", texture=0.15),
            Part([outline * 1.02], M["plastic"], 0.06),
        ]
    return Shape("drugs", parts, "drugs")


def cash(rng: np.random.Generator) -> Shape:
    """A bundle of banknotes with a paper band."""
    w, h = _u(rng, 140, 165), _u(rng, 62, 80)
    t = _u(rng, 0.6, 2.0)
    parts = [Part([rect(w, h)], M["paper"], t, texture=0.04)]
    bx = _u(rng, -w / 5, w / 5)
    parts.append(Part([rect(_u(rng, 25, 40), h, bx)], M["paper"], 0.12))
    if rng.random() < 0.3:  # a rubber band instead of (or as well as) the paper band
        parts.append(Part([rect(4, h, -bx / 2)], M["rubber"], 0.4))
    return Shape("cash", parts, "cash")


TARGET_BUILDERS: dict[str, Callable[[np.random.Generator], Shape]] = {
    "gun": gun,
    "gun_part": gun_part,
    "knife": knife,
    "scissors": scissors,
    "wrench": wrench,
    "pliers": pliers,
    "hammer": hammer,
    "bullet": bullet,
    "battery": battery,
    "power_bank": power_bank,
    "lighter": lighter,
    "drugs": drugs,
    "cash": cash,
}
"""Builders of the objects to find, by taxonomy class name."""


# ---------------------------------------------------------------------- clutter


def clothes(rng: np.random.Generator) -> Shape:
    """A folded garment: a large soft organic layer with folds."""
    ax, ay = _u(rng, 70, 200), _u(rng, 60, 150)
    mat = M["cotton"] if rng.random() < 0.7 else M["leather"]
    if mat.name == "cotton":
        # A folded T-shirt or shirt is a few mm of cotton; a pile of them a few cm.
        t = _u(rng, 0.3, 1.2) if rng.random() < 0.6 else _u(rng, 1.5, 4.0)
    else:
        t = _u(rng, 0.2, 0.6)  # a leather jacket or trousers, folded
    parts = [
        Part([blob(rng, ax, ay, 0.1)], mat, t, profile="round", edge=25, texture=_u(rng, 0.35, 0.7))
    ]
    if rng.random() < 0.35:  # buttons or a metal zip on the garment
        if rng.random() < 0.5:
            for i in range(int(rng.integers(3, 7))):
                parts.append(
                    Part([ellipse(5, 5, -ax * 0.2, -ay * 0.5 + i * 20, 10)], M["plastic"], 0.3)
                )
        else:
            parts.append(
                Part(
                    [smooth_path(rng, ay * 1.2, 6, 0.15) - [0, ay * 0.6]],
                    M["steel"],
                    0.08,
                    stroke=5,
                )
            )
    return Shape("clothes", parts)


def shoe(rng: np.random.Generator) -> Shape:
    """A shoe: rubber sole, leather upper, sometimes a steel shank and eyelets."""
    length, width = _u(rng, 230, 300), _u(rng, 80, 105)
    t = np.linspace(0, 2 * np.pi, 28, endpoint=False)
    narrow = 1 - 0.25 * np.exp(-(((t - np.pi / 2) % np.pi - np.pi / 2) ** 2) / 0.3)
    sole = np.stack([length / 2 * np.cos(t), width / 2 * np.sin(t) * narrow], axis=1)
    parts = [
        Part([sole], M["rubber"], _u(rng, 1.5, 3.0), profile="round", edge=8, texture=0.1),
        Part([sole * 0.85], M["leather"], _u(rng, 2.0, 5.0), profile="round", edge=20),
    ]
    if rng.random() < 0.4:
        parts.append(Part([rect(length * 0.3, 10, -length * 0.1)], M["steel"], 0.15))
    if rng.random() < 0.5:
        for i in range(int(rng.integers(4, 8))):
            for sgn in (-1, 1):
                parts.append(
                    Part([ellipse(2, 2, length * 0.1 + i * 9, sgn * 14, 8)], M["brass"], 0.1)
                )
    return Shape("shoe", parts)


def book(rng: np.random.Generator) -> Shape:
    """A book or magazine."""
    w, h = _u(rng, 120, 240), _u(rng, 150, 300)
    parts = [Part([rect(w, h)], M["paper"], _u(rng, 0.8, 4.0), texture=0.03)]
    parts.append(Part([rect(6, h, -w / 2 + 3)], M["paper"], 0.4))
    return Shape("book", parts)


def bottle(rng: np.random.Generator) -> Shape:
    """A bottle (plastic or glass) or a can, with liquid."""
    kind = rng.choice(["plastic", "glass", "can"], p=[0.5, 0.25, 0.25])
    if kind == "can":
        w, h = _u(rng, 52, 66), _u(rng, 90, 160)
        parts = [
            Part([rounded_rect(h, w, 4)], M["aluminium"], 0.25, profile="tube", wall=0.04),
            Part([rect(h * 0.95, w * 0.95)], M["water"], w / 10 * 0.9, profile="round"),
        ]
        return Shape("bottle", parts)
    w, h = _u(rng, 50, 90), _u(rng, 150, 300)
    body = rounded_rect(h * 0.75, w, w * 0.3, -h * 0.1)
    neck = np.array(
        [
            [h * 0.25, -w / 2 + 4],
            [h * 0.38, -w * 0.16],
            [h * 0.5, -w * 0.16],
            [h * 0.5, w * 0.16],
            [h * 0.38, w * 0.16],
            [h * 0.25, w / 2 - 4],
        ]
    )
    wall_mat, wall_t = (M["glass"], _u(rng, 0.6, 1.0)) if kind == "glass" else (M["plastic"], 0.3)
    parts = [
        Part([body], wall_mat, wall_t * w / 60, profile="tube", wall=0.08),
        Part([neck], wall_mat, wall_t * 0.8, profile="round"),
    ]
    fill = _u(rng, 0.4, 1.0)
    lx0 = -h * 0.1 - h * 0.75 / 2 + 3
    liquid = rect(h * 0.75 * fill - 6, w - 6, lx0 + (h * 0.75 * fill - 6) / 2)
    parts.append(Part([liquid], M["water"], w / 10 * 0.95, profile="round"))
    parts.append(Part([rect(14, w * 0.4, h * 0.5 + 6)], M["plastic"], 2.0))
    return Shape("bottle", parts)


def laptop(rng: np.random.Generator, *, w: float | None = None, h: float | None = None) -> Shape:
    """A laptop or tablet: case, board with chips, built-in battery cells, screen, screws."""
    w = w or _u(rng, 290, 360)
    h = h or _u(rng, 200, 250)
    alu = rng.random() < 0.6
    parts = [
        Part(
            [rounded_rect(w, h, 10)], M["aluminium"] if alu else M["plastic"], 0.25 if alu else 0.8
        ),
        Part([rect(w * 0.92, h * 0.85)], M["glass"], 0.08),
        Part([rect(w * 0.85, h * 0.45, 0, -h * 0.18)], M["plastic"], 0.6),
    ]
    bx, by = _u(rng, -0.15, 0.15) * w, -h * 0.15
    parts.append(Part([rect(w * 0.45, h * 0.3, bx, by)], M["circuit_board"], 0.18))
    for _ in range(int(rng.integers(3, 7))):
        parts.append(
            Part(
                [
                    rect(
                        _u(rng, 8, 25),
                        _u(rng, 8, 25),
                        bx + _u(rng, -0.18, 0.18) * w,
                        by + _u(rng, -0.1, 0.1) * h,
                    )
                ],
                M["copper"],
                0.05,
            )
        )
    n = int(rng.integers(2, 5))
    cw = w * 0.8 / n
    for i in range(n):
        parts.append(
            Part(
                [rect(cw - 4, h * 0.28, -w * 0.4 + cw * (i + 0.5), h * 0.28)],
                M["lithium_cell"],
                0.55,
            )
        )
    parts.append(Part([rect(w * 0.25, 8, bx, by - h * 0.1)], M["copper"], 0.12))
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(
                Part([ellipse(2.5, 2.5, sx * (w / 2 - 8), sy * (h / 2 - 8), 8)], M["steel"], 0.6)
            )
        parts.append(Part([rect(30, 8, sx * w * 0.3, -h / 2 + 5)], M["steel"], 0.4))
    return Shape("laptop", parts)


def phone(rng: np.random.Generator) -> Shape:
    """A phone or small tablet: glass, frame, battery, board, camera."""
    tablet = rng.random() < 0.3
    w, h = (
        (_u(rng, 150, 190), _u(rng, 220, 260)) if tablet else (_u(rng, 65, 80), _u(rng, 135, 165))
    )
    outer = rounded_rect(w, h, 9)
    parts = [
        Part([outer], M["glass"], 0.12),
        Part([outer, rounded_rect(w - 5, h - 5, 7)], M["aluminium"], 0.7),
        Part([rect(w * 0.75, h * 0.5, 0, h * 0.1)], M["lithium_cell"], 0.45),
        Part([rect(w * 0.8, h * 0.22, 0, -h * 0.32)], M["circuit_board"], 0.15),
        Part([rect(w * 0.25, h * 0.06, 0, -h * 0.32)], M["copper"], 0.06),
        Part([ellipse(5, 5, -w * 0.3, -h * 0.42, 12)], M["steel"], 0.4),
    ]
    return Shape("phone", parts)


def cable(rng: np.random.Generator) -> Shape:
    """A cable: plastic sheath with a copper core, plugs at the ends."""
    path = smooth_path(rng, _u(rng, 200, 700), int(rng.integers(10, 22)), _u(rng, 0.3, 0.8))
    path = path - path.mean(0)
    w = _u(rng, 3, 6)
    parts = [
        Part([path], M["plastic"], 0.4, stroke=w),
        Part([path], M["copper"], 0.03, stroke=max(1.0, w / 3)),
    ]
    for end in (path[0], path[-1]):
        parts.append(Part([rect(12, 10, *end)], M["steel"], 0.3))
    return Shape("cable", parts)


def charger(rng: np.random.Generator) -> Shape:
    """A mains charger: plastic box, transformer and pins (no cells)."""
    w, h = _u(rng, 35, 70), _u(rng, 35, 90)
    parts = [
        Part([rounded_rect(w, h, 6)], M["plastic"], _u(rng, 2.0, 3.5), profile="round", edge=6),
        Part([rect(w * 0.45, h * 0.35, 0, 0)], M["steel"], 0.5),
        Part(
            [ellipse(w * 0.3, h * 0.22, 0, 0, 16), ellipse(w * 0.18, h * 0.12, 0, 0, 12)],
            M["copper"],
            0.3,
        ),
        Part([rect(w * 0.8, h * 0.3, 0, h * 0.3)], M["circuit_board"], 0.2),
    ]
    for sx in (-1, 1):
        parts.append(Part([rect(4, 18, sx * 9, -h / 2 - 8)], M["brass"], 0.3))
    return Shape("charger", parts)


def toiletry(rng: np.random.Generator) -> Shape:
    """A tube, jar or toothbrush."""
    kind = rng.choice(["tube", "jar", "toothbrush"])
    if kind == "tube":
        w, h = _u(rng, 30, 55), _u(rng, 100, 190)
        return Shape(
            "toiletry",
            [
                Part([rounded_rect(h, w, 10)], M["plastic"], 0.2),
                Part(
                    [rounded_rect(h * 0.9, w * 0.85, 8)],
                    M["water"],
                    _u(rng, 1.5, 3.0),
                    profile="round",
                ),
                Part([rect(15, w * 0.5, h / 2 + 7)], M["plastic"], 1.8),
            ],
        )
    if kind == "jar":
        r = _u(rng, 25, 45)
        return Shape(
            "toiletry",
            [
                Part(
                    [ellipse(r, r)],
                    M["glass"] if rng.random() < 0.3 else M["plastic"],
                    0.6,
                    profile="tube",
                    wall=0.1,
                ),
                Part([ellipse(r * 0.9, r * 0.9)], M["water"], 3.0),
            ],
        )
    h = _u(rng, 170, 200)
    return Shape(
        "toiletry",
        [
            Part([rounded_rect(h, 12, 5)], M["plastic"], 1.0),
            Part([rect(25, 12, h / 2 - 14)], M["plastic"], 0.6, texture=0.3),
        ],
    )


def coins_keys(rng: np.random.Generator) -> Shape:
    """A few coins and keys on a ring."""
    parts: list[Part] = []
    for _ in range(int(rng.integers(1, 6))):
        r = _u(rng, 8, 14)
        parts.append(
            Part(
                [ellipse(r, r, _u(rng, -30, 30), _u(rng, -30, 30), 16)],
                M[str(rng.choice(["steel", "brass", "copper"]))],
                _u(rng, 0.15, 0.25),
            )
        )
    if rng.random() < 0.6:
        ring = [ellipse(14, 14, 0, 0, 16), ellipse(12, 12, 0, 0, 16)]
        parts.append(Part(ring, M["steel"], 0.2))
        for _ in range(int(rng.integers(1, 4))):
            a = _u(rng, 0, 360)
            bow = [ellipse(11, 11, 22, 0, 12), ellipse(3, 3, 22, 0, 8)]
            teeth = np.array(
                [[32, -4], [80, -4], [80, 2], [74, 5], [68, 1], [60, 5], [52, 1], [44, 5], [32, 4]]
            )
            parts.append(Part([transform(p, angle=a) for p in bow], M["brass"], 0.25))
            parts.append(Part([transform(teeth, angle=a)], M["brass"], 0.25))
    return Shape("coins_keys", parts)


def metal_frame(rng: np.random.Generator) -> Shape:
    """A belt with a buckle, a pair of glasses, or a wire coat hanger."""
    kind = rng.choice(["belt", "glasses", "hanger"])
    if kind == "belt":
        path = smooth_path(rng, _u(rng, 300, 600), 12, 0.35)
        path = path - path.mean(0)
        buckle = [rounded_rect(45, 55, 6, *path[0]), rounded_rect(35, 45, 4, *path[0])]
        return Shape(
            "metal_frame",
            [Part([path], M["leather"], 0.4, stroke=35), Part(buckle, M["steel"], 0.4)],
        )
    if kind == "glasses":
        parts = []
        for sx in (-1, 1):
            parts.append(
                Part(
                    [ellipse(26, 20, sx * 30, 0, 20), ellipse(24, 18, sx * 30, 0, 20)],
                    M["steel"],
                    0.15,
                )
            )
            parts.append(Part([ellipse(24, 18, sx * 30, 0, 20)], M["plastic"], 0.3))
        parts.append(
            Part(
                [np.array([[-56, -6], [-120, -4], [56, -6], [120, -4]])], M["steel"], 0.12, stroke=2
            )
        )
        return Shape("metal_frame", parts)
    tri = np.array([[-200, 0], [0, -80], [200, 0], [-200, 0]])
    hook = np.array([[0, -80], [0, -110], [15, -125], [25, -110]])
    return Shape("metal_frame", [Part([tri, hook], M["steel"], 0.3, stroke=3, profile="flat")])


def packing(rng: np.random.Generator) -> Shape:
    """Crumpled packing paper or bubble wrap (parcels)."""
    ax, ay = _u(rng, 60, 160), _u(rng, 50, 120)
    if rng.random() < 0.6:
        return Shape(
            "packing",
            [
                Part(
                    [blob(rng, ax, ay, 0.15)],
                    M["paper"],
                    _u(rng, 0.3, 1.0),
                    profile="round",
                    edge=20,
                    texture=0.8,
                )
            ],
        )
    return Shape("packing", [Part([blob(rng, ax, ay, 0.1)], M["plastic"], 0.15, texture=0.6)])


CLUTTER_BUILDERS: dict[str, Callable[[np.random.Generator], Shape]] = {
    "clothes": clothes,
    "shoe": shoe,
    "book": book,
    "bottle": bottle,
    "laptop": laptop,
    "phone": phone,
    "cable": cable,
    "charger": charger,
    "toiletry": toiletry,
    "coins_keys": coins_keys,
    "metal_frame": metal_frame,
    "packing": packing,
}
"""Builders of everyday objects that are not targets, by kind."""


# ------------------------------------------------------------------- containers


@dataclass(slots=True)
class Container:
    """A bag or parcel.

    Attributes:
        kind: ``soft_bag``, ``suitcase``, ``backpack`` or ``parcel``.
        shape: Its walls, frame, handle, wheels...
        interior: Outline of the space inside, in mm (object frame).
        width: Outer width in mm.
        height: Outer height in mm.
    """

    kind: str
    shape: Shape
    interior: Points
    width: float
    height: float


CONTAINER_KINDS = ("soft_bag", "suitcase", "backpack", "parcel")


def container(rng: np.random.Generator, kind: str) -> Container:
    """Builds a container of ``kind`` (one of :data:`CONTAINER_KINDS`).

    Raises:
        ValueError: If ``kind`` is unknown.
    """
    if kind == "suitcase":
        w, h = _u(rng, 560, 760), _u(rng, 380, 520)
        outer = rounded_rect(w, h, 35)
        parts = [
            Part([outer], M["plastic"], _u(rng, 0.5, 0.9), texture=0.05),
            Part([outer, rounded_rect(w - 20, h - 20, 28)], M["aluminium"], _u(rng, 0.4, 0.9)),
        ]
        for i in range(int(rng.integers(3, 7))):  # shell ribs
            y = -h / 2 + h * (i + 1) / 8
            parts.append(Part([rect(w - 60, 10, 0, y)], M["plastic"], 0.4))
        # Telescopic handle: two tubes along the length, a bar at the end.
        ty = _u(rng, 50, 110)
        for sgn in (-1, 1):
            parts.append(
                Part([rect(w - 80, 20, 0, sgn * ty)], M["aluminium"], 0.8, profile="tube", wall=0.1)
            )
        parts.append(Part([rect(26, 2 * ty + 30, w / 2 - 25)], M["plastic"], 2.5, profile="round"))
        for sx in (-1, 1):  # wheels at the corners of the bottom end
            for sy in (-1, 1):
                cx, cy = -w / 2 + 30, sy * (h / 2 - 30)
                if sx > 0 and rng.random() < 0.5:
                    continue
                parts.append(
                    Part([ellipse(26, 26, cx, cy, 20)], M["rubber"], 4.0, profile="round", edge=8)
                )
                parts.append(Part([ellipse(5, 5, cx, cy, 10)], M["steel"], 4.0))
        parts.append(Part([rect(30, 18, 0, -h / 2 + 10)], M["steel"], 0.5))  # lock
        interior = rounded_rect(w - 60, h - 60, 25)
    elif kind == "parcel":
        w, h = _u(rng, 280, 560), _u(rng, 220, 420)
        outer = rect(w, h)
        wall = _u(rng, 8, 14)
        parts = [
            Part([outer], M["cardboard"], _u(rng, 0.8, 1.4)),
            Part([outer, rect(w - 2 * wall, h - 2 * wall)], M["cardboard"], _u(rng, 10, 25)),
        ]
        parts.append(Part([rect(w, h * 0.12)], M["cardboard"], 0.8))  # overlapping flaps
        parts.append(Part([rect(w, _u(rng, 45, 60))], M["plastic"], 0.12))  # tape
        if rng.random() < 0.5:
            parts.append(Part([rect(_u(rng, 45, 60), h)], M["plastic"], 0.12))
        if rng.random() < 0.3:
            for sx in (-1, 1):
                parts.append(Part([rect(3, 14, sx * w * 0.3, 0)], M["steel"], 0.1))
        interior = rect(w - 2 * wall - 10, h - 2 * wall - 10)
    elif kind in ("soft_bag", "backpack"):
        if kind == "soft_bag":
            w, h = _u(rng, 480, 700), _u(rng, 300, 440)
            outer = blob(rng, w / 2, h / 2, 0.03, 40)
            outer = np.clip(outer, [-w / 2 + 15, -h / 2 + 15], [w / 2 - 15, h / 2 - 15])
            outer = outer * [1.06, 1.06]
        else:
            w, h = _u(rng, 320, 420), _u(rng, 420, 540)
            outer = np.array(
                [
                    [-w * 0.4, -h / 2],
                    [w * 0.4, -h / 2],
                    [w / 2, -h * 0.3],
                    [w / 2, h / 2],
                    [-w / 2, h / 2],
                    [-w / 2, -h * 0.3],
                ]
            )
        fabric = M["plastic"]
        parts = [
            # Two layers of nylon fabric (top and bottom of the bag) in the beam.
            Part([outer], fabric, _u(rng, 0.15, 0.35), texture=0.3),
            Part([np.vstack([outer, outer[:1]])], fabric, 0.8, stroke=12),
        ]
        zip_path = np.array([[-w * 0.4, -h * 0.38], [0, -h * 0.42], [w * 0.4, -h * 0.38]])
        parts.append(Part([zip_path], M["steel"], 0.1, stroke=6))
        parts.append(Part([rect(12, 20, w * 0.4, -h * 0.38)], M["steel"], 0.3))  # zip pull
        if kind == "soft_bag":
            for sx in (-1, 1):
                strap = np.array(
                    [
                        [sx * w * 0.2, -h * 0.45],
                        [sx * w * 0.12, -h * 0.62],
                        [sx * w * 0.02, -h * 0.45],
                    ]
                )
                parts.append(Part([strap], M["plastic"], 0.8, stroke=30))
                parts.append(
                    Part(
                        [
                            rounded_rect(34, 22, 4, sx * w * 0.2, -h * 0.45),
                            rounded_rect(26, 14, 3, sx * w * 0.2, -h * 0.45),
                        ],
                        M["steel"],
                        0.35,
                    )
                )
            parts.append(Part([rect(w * 0.8, h * 0.7)], M["plastic"], 0.2))  # base board
        else:
            for sx in (-1, 1):
                strap = np.array(
                    [[sx * w * 0.25, -h * 0.45], [sx * w * 0.3, 0], [sx * w * 0.28, h * 0.45]]
                )
                parts.append(Part([strap], M["plastic"], 1.2, stroke=55, texture=0.2))
                parts.append(Part([rect(44, 10, sx * w * 0.28, h * 0.42)], M["plastic"], 0.8))
            if rng.random() < 0.5:  # aluminium stays in the back panel
                for sx in (-1, 1):
                    parts.append(Part([rect(14, h * 0.8, sx * w * 0.12)], M["aluminium"], 0.3))
        interior = outer * 0.86
    else:
        raise ValueError(f"unknown container kind {kind!r}; known: {', '.join(CONTAINER_KINDS)}")
    return Container(kind=kind, shape=Shape(kind, parts), interior=interior, width=w, height=h)
