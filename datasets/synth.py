"""Synthetic dual-energy X-ray scans of bags and parcels, with exact ground truth.

One scan is composed in the line-integral domain (:mod:`cv.xray`): a container
(soft bag, suitcase, backpack or parcel) with its walls, frame and handles; everyday
clutter (clothes, shoes, books, bottles, electronics, cables, ...); and 0..n objects
to find, each concealed in one of :data:`cv.records.CONCEALMENT_MODES`. It is then
rendered through a scanner profile.

Ground truth per object:

* ``box``: the tight ``xyxy`` box of the pixels the object covers (its visible
  outline, not the rotated patch it was drawn on);
* ``occlusion``: the fraction of the object's pixels at which **everything else in
  the beam attenuates more than the object itself**, i.e. where the high-energy line
  integral of all other material exceeds the object's own (``L_rest > L_object``).
  Such a pixel's signal is dominated by other material, so the object is hidden
  there. ``occlusion_level`` follows :func:`cv.records.occlusion_level`;
* ``concealment``: the mode used, with its physical effect:

  - ``plain_view``: dropped among the clutter, where the bag is least crowded;
  - ``false_bottom``: near a wall, under a panel of aluminium, board or plastic;
  - ``lining``: pressed flat against the bag's outline under padded lining;
  - ``inside_electronics``: inside the housing of a laptop, with its board, chips
    and cells over it;
  - ``under_metal``: a plate of dense metal (steel, brass, lead or tungsten foil)
    covers a random fraction of the object, thick enough to out-attenuate it.

**Determinism**: image ``i`` of a run with seed ``s`` uses its own generator seeded by
``np.random.SeedSequence([s, i])``, and splits and clean bags are drawn from a
separate seed, so the output is byte-identical whatever the number of workers.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from cv.datasets import shapes as S
from cv.errors import ConfigError
from cv.image import write_image
from cv.materials import MATERIALS, Material
from cv.records import (
    CONCEALMENT_MODES,
    SPLITS,
    Annotation,
    ConcealmentMode,
    Dataset,
    ImageRecord,
    Split,
    occlusion_level,
)
from cv.xray import (
    DualEnergy,
    ScannerProfile,
    add_line_integrals,
    add_material,
    clip_patch,
    list_profiles,
    load_profile,
    render_grey,
    render_pseudocolor,
)

TARGET_CLASSES: tuple[str, ...] = tuple(S.TARGET_BUILDERS)
"""Taxonomy classes the generator can place, in taxonomy order."""

CONCEALMENT_WEIGHTS: dict[str, float] = {
    "plain_view": 0.40,
    "false_bottom": 0.15,
    "lining": 0.15,
    "inside_electronics": 0.15,
    "under_metal": 0.15,
}
"""How often each concealment mode is drawn."""

_BAG_KINDS = ("soft_bag", "suitcase", "backpack")
_CLUTTER_WEIGHTS = {
    "bag": {
        "clothes": 5.0,
        "shoe": 1.0,
        "book": 0.8,
        "bottle": 1.0,
        "laptop": 0.5,
        "phone": 0.6,
        "cable": 1.0,
        "charger": 0.6,
        "toiletry": 1.0,
        "coins_keys": 0.7,
        "metal_frame": 0.6,
        "packing": 0.0,
    },
    "parcel": {
        "clothes": 1.5,
        "shoe": 0.8,
        "book": 1.2,
        "bottle": 0.6,
        "laptop": 0.3,
        "phone": 0.5,
        "cable": 0.6,
        "charger": 0.5,
        "toiletry": 0.7,
        "coins_keys": 0.1,
        "metal_frame": 0.2,
        "packing": 2.0,
    },
}
_MAX_ELECTRONICS_MM = (420.0, 320.0)

PERCEIVABLE_CONTRAST = 0.07
"""Smallest contrast ``1 - exp(-L_object)`` an object must add to a pixel (7 % of the
local high-energy transmission) for that pixel to show it."""
PERCEIVABLE_OWN = float(-np.log1p(-PERCEIVABLE_CONTRAST))
"""The same floor as the object's own high-energy line integral."""
PERCEIVABLE_MAX_ATTENUATION = 5.0
"""Total high-energy line integral (``T ≈ 0.7 %``) beyond which a pixel is too dark and
noisy for an object's contrast to show."""
PERCEIVABLE_FRACTION = 0.4
"""Share of an object's pixels that must show it for it to be labelled (and placed)."""


def perceivable_fraction(image: DualEnergy, placed: S.Placed) -> float:
    """Fraction of ``placed``'s pixels where it is perceivable in ``image``.

    A pixel shows the object when the object's own high-energy line integral gives at
    least :data:`PERCEIVABLE_CONTRAST` contrast and the total there stays below
    :data:`PERCEIVABLE_MAX_ATTENUATION`. Pixels outside the scan count as not shown.
    """
    n = int(placed.mask.sum())
    if n == 0:
        return 0.0
    sl = clip_patch(image.shape, placed.mask.shape, placed.x, placed.y)
    if sl is None:
        return 0.0
    iy, ix, py, px = sl
    own, mask = placed.own_high[py, px], placed.mask[py, px]
    rest = image.high[iy, ix] - own
    return _visibility(rest, own, mask)[1] * int(mask.sum()) / n


@dataclass(slots=True)
class PlacedTarget:
    """An object to find, as placed in a scene.

    Attributes:
        placed: Where it went, with its mask and own line integral.
        concealment: How it is hidden.
    """

    placed: S.Placed
    concealment: ConcealmentMode


@dataclass(slots=True)
class Scene:
    """A composed scan before rendering.

    Attributes:
        image: Line integrals of everything.
        container: Container kind.
        targets: The objects to find.
        scale: Pixels per mm.
    """

    image: DualEnergy
    container: str
    targets: list[PlacedTarget] = field(default_factory=list)
    scale: float = 1.0

    def annotations(self) -> list[Annotation]:
        """Ground truth of the targets (see the module docstring for the definitions)."""
        h, w = self.image.shape
        out = []
        for t in self.targets:
            p = t.placed
            box = p.box(w, h)
            if box is None:
                continue
            out.append(
                Annotation(
                    box=box,
                    category=p.shape.category or p.shape.kind,
                    original_name=p.shape.category or p.shape.kind,
                    occlusion=round(self.occlusion(p), 4),
                    occlusion_level=occlusion_level(self.occlusion(p)),
                    concealment=t.concealment,
                )
            )
        return out

    def perceivable(self, placed: S.Placed) -> float:
        """Fraction of ``placed``'s pixels where it is perceivable (see
        :func:`perceivable_fraction`); pixels outside the scan count as not."""
        return perceivable_fraction(self.image, placed)

    def occlusion(self, placed: S.Placed) -> float:
        """Fraction of ``placed``'s in-image pixels where ``L_rest > L_object``."""
        h, w = self.image.shape
        y0, x0 = max(placed.y, 0), max(placed.x, 0)
        y1 = min(placed.y + placed.mask.shape[0], h)
        x1 = min(placed.x + placed.mask.shape[1], w)
        sub = (slice(y0 - placed.y, y1 - placed.y), slice(x0 - placed.x, x1 - placed.x))
        mask = placed.mask[sub]
        n = int(mask.sum())
        if n == 0:
            return 0.0
        own = placed.own_high[sub]
        rest = self.image.high[y0:y1, x0:x1] - own
        return float(((rest > own) & mask).sum()) / n


# ------------------------------------------------------------------- placement


def _extent_radius(shape: S.Shape) -> float:
    """Largest distance (mm) of any outline point from the shape's origin."""
    pts = np.concatenate([p for part in shape.parts for p in part.polygons])
    pad = max((part.stroke / 2 for part in shape.parts), default=0.0)
    return float(np.hypot(pts[:, 0], pts[:, 1]).max() + pad)


class _Room:
    """Free positions inside a container's interior."""

    def __init__(self, interior_px: NDArray[np.float64], height: int, width: int) -> None:
        mask = np.zeros((height, width), np.uint8)
        cv2.fillPoly(mask, [np.rint(interior_px).astype(np.int32)], 1)
        self.inside = mask.astype(bool)
        self.dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
        ys, xs = np.nonzero(mask)
        self.points = np.stack([xs, ys], axis=1)
        self.largest = float(self.dist.max())

    def candidates(self, rng: np.random.Generator, n: int) -> NDArray[np.int64]:
        """``n`` random interior pixels ``(x, y)``."""
        return self.points[rng.integers(0, len(self.points), n)]

    def pick(
        self, rng: np.random.Generator, radius: float, *, n: int = 24, near_wall: bool = False
    ) -> tuple[int, int]:
        """A position at least ``radius`` px from the interior's edge when there is one;
        with ``near_wall`` the one closest to that distance (hugging the wall)."""
        c = self.candidates(rng, n)
        d = self.dist[c[:, 1], c[:, 0]]
        ok = d >= radius
        if not ok.any():
            i = int(np.argmax(d))
        elif near_wall:
            i = int(np.flatnonzero(ok)[np.argmin(d[ok])])
        else:
            i = int(np.flatnonzero(ok)[0])
        return int(c[i, 0]), int(c[i, 1])

    def contains(self, mask: NDArray[np.bool_], x: int, y: int) -> bool:
        """Whether every pixel of ``mask`` placed at ``(x, y)`` lies in the interior."""
        h, w = mask.shape
        if x < 0 or y < 0 or y + h > self.inside.shape[0] or x + w > self.inside.shape[1]:
            return False
        return not (mask & ~self.inside[y : y + h, x : x + w]).any()


@dataclass(slots=True)
class _Stamp:
    """An object rasterised once, ready to be tried at several positions.

    ``low``/``high`` are the object's own line integrals over its patch and
    ``(ox, oy)`` the pixel of the patch where the shape's origin lies.
    """

    shape: S.Shape
    low: NDArray[np.float32]
    high: NDArray[np.float32]
    mask: NDArray[np.bool_]
    ox: int
    oy: int

    def at(self, pos: tuple[int, int]) -> tuple[int, int]:
        """Top-left corner of the patch when the origin is at ``pos``."""
        return pos[0] - self.ox, pos[1] - self.oy

    def placed(self, pos: tuple[int, int]) -> S.Placed:
        x, y = self.at(pos)
        return S.Placed(shape=self.shape, x=x, y=y, mask=self.mask, own_high=self.high)


def _stamp(
    rng: np.random.Generator, shape: S.Shape, *, scale: float, angle: float, factor: float = 1.0
) -> _Stamp:
    """Rasterises ``shape`` on its own, to be positioned later by integer shifts."""
    stroke = max((part.stroke for part in shape.parts), default=0.0)
    r = math.ceil((_extent_radius(shape) + stroke) * scale) + 6
    scratch = DualEnergy.empty(2 * r + 1, 2 * r + 1)
    p = S.rasterise(
        shape, scratch, scale=scale, angle=angle, center=(r, r), rng=rng, thickness_factor=factor
    )
    h, w = p.mask.shape
    sub = (slice(p.y, p.y + h), slice(p.x, p.x + w))
    return _Stamp(shape, scratch.low[sub].copy(), p.own_high, p.mask, r - p.x, r - p.y)


def _visibility(
    rest: NDArray[np.float32], own: NDArray[np.float32], mask: NDArray[np.bool_]
) -> tuple[float, float]:
    """``(occlusion, perceivable)`` fractions of an object's pixels, given the
    high-energy line integral of everything else (``rest``) and of the object (``own``)
    over its patch (see :func:`perceivable_fraction`)."""
    n = int(mask.sum())
    if n == 0:
        return 1.0, 0.0
    occluded = ((rest > own) & mask).sum()
    seen = (own >= PERCEIVABLE_OWN) & (rest + own <= PERCEIVABLE_MAX_ATTENUATION) & mask
    return float(occluded) / n, float(seen.sum()) / n


def _rest_at(image: DualEnergy, st: _Stamp, x: int, y: int) -> NDArray[np.float32] | None:
    h, w = st.mask.shape
    ih, iw = image.shape
    if x < 0 or y < 0 or x + w > iw or y + h > ih:
        return None
    return image.high[y : y + h, x : x + w]


def _shape_centre(shape: S.Shape) -> tuple[float, float]:
    x0, y0, x1, y1 = shape.extent()
    return (x0 + x1) / 2, (y0 + y1) / 2


def _rotate(v: tuple[float, float], angle: float) -> tuple[float, float]:
    a = math.radians(angle)
    return v[0] * math.cos(a) - v[1] * math.sin(a), v[0] * math.sin(a) + v[1] * math.cos(a)


def _plate_mask(
    rng: np.random.Generator, mask: NDArray[np.bool_], fraction: float
) -> tuple[NDArray[np.bool_], int, int]:
    """A plate over ``fraction`` of ``mask``'s pixels: the part of the object's dilated
    bounding rectangle on one side of a random straight cut.

    Returns:
        The plate's mask and its top-left corner relative to ``mask``'s.
    """
    ys, xs = np.nonzero(mask)
    theta = rng.uniform(0, 2 * np.pi)
    d = np.array([math.cos(theta), math.sin(theta)])
    cut = float(np.quantile(xs * d[0] + ys * d[1], fraction))
    m = int(rng.integers(4, 16))
    x0, x1 = int(xs.min()) - m, int(xs.max()) + 1 + m
    y0, y1 = int(ys.min()) - m, int(ys.max()) + 1 + m
    gy, gx = np.mgrid[y0:y1, x0:x1]
    # Pixel centres on the far side of the cut stay uncovered; ties go under the plate,
    # which matches the quantile's "at most" reading.
    return (gx * d[0] + gy * d[1]) <= cut, x0, y0


_PLATES: tuple[tuple[str, float, float, float], ...] = (
    # material, thickness range in cm, how often
    ("aluminium", 0.1, 0.6, 0.35),  # sheet, tool tray, laptop stand
    ("steel", 0.05, 0.3, 0.35),  # sheet, tray, book-end
    ("steel", 0.3, 0.8, 0.15),  # a heavy book-end or tool: thinned if it hides all
    ("brass", 0.05, 0.2, 0.12),  # book-end, plaque
    ("lead", 0.01, 0.04, 0.08),  # foil wrap
)


def _cover_plate(
    rng: np.random.Generator,
    image: DualEnergy,
    placed: S.Placed,
    fraction: float,
    *,
    attenuation: float | None = None,
) -> None:
    """Lays a metal plate over ``fraction`` of ``placed``'s pixels.

    Args:
        rng: Source of the cut direction, margin and (by default) the plate.
        image: The scan, changed in place.
        placed: The object to cover.
        fraction: Share of the object's pixels under the plate.
        attenuation: High-energy line integral of the plate; by default a realistic
            sheet, tray or book-end from :data:`_PLATES` (thin enough that the
            object often shows through).
    """
    if not placed.mask.any():
        return
    plate, x0, y0 = _plate_mask(rng, placed.mask, fraction)
    metal, t = _plate_material(rng)
    if attenuation is not None:
        t = attenuation / metal.mu_high
    add_material(
        image, metal, plate.astype(np.float32) * np.float32(t), x=placed.x + x0, y=placed.y + y0
    )


def _plate_material(rng: np.random.Generator) -> tuple[Material, float]:
    p = np.array([w for *_, w in _PLATES])
    name, lo, hi, _ = _PLATES[int(rng.choice(len(_PLATES), p=p / p.sum()))]
    return MATERIALS[name], float(rng.uniform(lo, hi))


def _panel(
    rng: np.random.Generator, mask: NDArray[np.bool_], *, lining: bool
) -> tuple[Material, NDArray[np.float32], int, int]:
    """A false-bottom panel or padded lining over an object's neighbourhood.

    Returns:
        Material, thickness patch (cm) and its top-left corner relative to ``mask``'s.
    """
    ys, xs = np.nonzero(mask)
    m = int(rng.integers(8, 40))
    x0, x1 = int(xs.min()) - m, int(xs.max()) + 1 + m
    y0, y1 = int(ys.min()) - m, int(ys.max()) + 1 + m
    patch = np.ones((y1 - y0, x1 - x0), np.float32)
    if lining:
        material, t = MATERIALS["plastic"], rng.uniform(0.3, 1.0)
        patch *= np.float32(0.85) + np.float32(0.3) * rng.random(patch.shape, dtype=np.float32)
    else:
        name = str(rng.choice(["aluminium", "wood", "plastic"]))
        material = MATERIALS[name]
        t = {
            "aluminium": rng.uniform(0.1, 0.4),
            "wood": rng.uniform(0.5, 1.5),
            "plastic": rng.uniform(0.4, 1.2),
        }[name]
    return material, patch * np.float32(t), x0, y0


def _choose_mode(
    rng: np.random.Generator,
    category: str,
    size_mm: tuple[float, float],
    allowed: Sequence[str],
    room_mm: float = math.inf,
) -> ConcealmentMode:
    modes = [m for m in allowed]
    if "inside_electronics" in modes and (
        category in ("battery", "power_bank")  # laptops' own cells would blur the class
        or size_mm[0] + 40 > _MAX_ELECTRONICS_MM[0]
        or size_mm[1] + 40 > _MAX_ELECTRONICS_MM[1]
        # The host device must fit in the container (its interior's largest inscribed
        # circle, in mm, bounds the host's half diagonal).
        or math.hypot(size_mm[0] + 40, size_mm[1] + 40) / 2 > room_mm
    ):
        modes.remove("inside_electronics")
    if not modes:
        modes = ["plain_view"]
    w = np.array([CONCEALMENT_WEIGHTS[m] for m in modes])
    return modes[int(rng.choice(len(modes), p=w / w.sum()))]  # type: ignore[return-value]


def _positions(
    rng: np.random.Generator,
    room: _Room,
    st: _Stamp,
    radius: float,
    taken: list[tuple[float, float, float]],
    *,
    n: int,
    apart: bool,
) -> list[tuple[int, int]]:
    """Up to ``n`` candidate origins at which the stamp lies wholly inside the room (and,
    with ``apart``, away from the targets already placed), in random order."""
    out = []
    c = room.candidates(rng, 8 * n)
    d = room.dist[c[:, 1], c[:, 0]]
    for (px, py), dist in zip(c.tolist(), d.tolist(), strict=True):
        if dist < 0.5 * radius:
            continue
        if apart and any(
            math.hypot(px - tx, py - ty) < 0.8 * (radius + tr) for tx, ty, tr in taken
        ):
            continue
        x, y = st.at((px, py))
        if room.contains(st.mask, x, y):
            out.append((px, py))
            if len(out) == n:
                break
    return out


@dataclass(slots=True)
class _Layer:
    """Line integrals to add to the scan at ``(x, y)`` (a target, its cover or host)."""

    low: NDArray[np.float32]
    high: NDArray[np.float32]
    x: int
    y: int

    def scaled(self, factor: float) -> _Layer:
        f = np.float32(factor)
        return _Layer(self.low * f, self.high * f, self.x, self.y)

    def high_over(self, x: int, y: int, shape: tuple[int, int]) -> NDArray[np.float32]:
        """This layer's high-energy line integral over a patch of ``shape`` at ``(x, y)``."""
        out = np.zeros(shape, np.float32)
        sl = clip_patch(shape, self.high.shape, self.x - x, self.y - y)
        if sl is not None:
            iy, ix, py, px = sl
            out[iy, ix] = self.high[py, px]
        return out

    def add_to(self, image: DualEnergy) -> None:
        add_line_integrals(image, self.low, self.high, x=self.x, y=self.y)


def _material_layer(
    material: Material, thickness: NDArray[np.float32], x: int, y: int, room: _Room
) -> _Layer:
    """A layer of ``material``, cut to the container's interior."""
    h, w = thickness.shape
    inside = np.zeros((h, w), np.float32)
    sl = clip_patch(room.inside.shape, (h, w), x, y)
    if sl is not None:
        iy, ix, py, px = sl
        inside[py, px] = room.inside[iy, ix]
    t = thickness * inside
    return _Layer(t * np.float32(material.mu_low), t * np.float32(material.mu_high), x, y)


def _try_covers(
    image: DualEnergy,
    st: _Stamp,
    pos: tuple[int, int],
    covers: list[_Layer],
    *,
    thin: bool,
) -> tuple[list[_Layer], float] | None:
    """Checks the target at ``pos`` under ``covers``; with ``thin``, thins the covers
    (up to 5 times) until the target is perceivable.

    Returns:
        The covers as used and the target's occlusion, or ``None`` if it stays hidden.
    """
    x, y = st.at(pos)
    base = _rest_at(image, st, x, y)
    if base is None:
        return None
    for _ in range(6 if thin else 1):
        rest = base.copy()
        for c in covers:
            rest += c.high_over(x, y, st.mask.shape)
        occ, seen = _visibility(rest, st.high, st.mask)
        if seen >= PERCEIVABLE_FRACTION:
            return covers, occ
        covers = [c.scaled(0.6) for c in covers]
    return None


def _place_target(
    rng: np.random.Generator,
    image: DualEnergy,
    room: _Room,
    shape: S.Shape,
    mode: ConcealmentMode,
    *,
    scale: float,
    factor: float,
    taken: list[tuple[float, float, float]],
) -> tuple[_Stamp, tuple[int, int], list[_Layer]] | None:
    """Finds where and how a target goes so that it lies in the container and stays
    perceivable; nothing is added to ``image`` yet.

    Returns:
        The target's stamp, its origin and the layers (cover, host) that go with it; or
        ``None`` if no placement works, even at a smaller size.
    """
    obj_scale = scale
    x0, y0, x1, y1 = shape.extent()
    for attempt in range(6):
        if attempt in (3, 5):
            obj_scale *= 0.85  # too big for this container: a smaller one of its kind
        angle = float(rng.uniform(0, 360))
        st = _stamp(rng, shape, scale=obj_scale, angle=angle, factor=factor)
        radius = _extent_radius(shape) * obj_scale
        apart = attempt < 4
        if mode == "inside_electronics":
            got = _place_in_host(
                rng, image, room, st, (x1 - x0, y1 - y0), obj_scale, angle, taken, apart
            )
            if got is not None:
                return got
            continue
        cands = _positions(
            rng, room, st, radius, taken, n=16 if mode == "plain_view" else 5, apart=apart
        )
        if mode in ("false_bottom", "lining"):
            cands.sort(key=lambda p: room.dist[p[1], p[0]])  # hugging the wall first
        best = None
        for pos in cands:
            x, y = st.at(pos)
            covers: list[_Layer] = []
            if mode in ("false_bottom", "lining"):
                mat, t, dx, dy = _panel(rng, st.mask, lining=mode == "lining")
                covers = [_material_layer(mat, t, x + dx, y + dy, room)]
            elif mode == "under_metal":
                plate, dx, dy = _plate_mask(rng, st.mask, float(rng.uniform(0.3, 0.9)))
                metal, t = _plate_material(rng)
                covers = [
                    _material_layer(
                        metal, plate.astype(np.float32) * np.float32(t), x + dx, y + dy, room
                    )
                ]
            got = _try_covers(image, st, pos, covers, thin=mode != "plain_view")
            if got is None:
                continue
            if mode != "plain_view":
                return st, pos, got[0]
            # Not deliberately concealed: of a few spots, the least covered one.
            if best is None or got[1] < best[0]:
                best = (got[1], pos)
        if best is not None:
            return st, best[1], []
    return None


def _place_in_host(
    rng: np.random.Generator,
    image: DualEnergy,
    room: _Room,
    st: _Stamp,
    size_mm: tuple[float, float],
    scale: float,
    angle: float,
    taken: list[tuple[float, float, float]],
    apart: bool,
) -> tuple[_Stamp, tuple[int, int], list[_Layer]] | None:
    """Places a target inside a laptop or tablet that fits in the container."""
    # The largest host that still fits: a laptop where there is room, a tablet or a
    # small device in a small parcel, never less than the target plus a margin.
    lw, lh = float(rng.uniform(290, 360)), float(rng.uniform(200, 250))
    fit = 2 * room.largest / scale / math.hypot(lw, lh)
    shrink = min(1.0, fit * 0.98)
    lw, lh = max(lw * shrink, size_mm[0] + 40), max(lh * shrink, size_mm[1] + 40)
    host_shape = S.laptop(rng, w=lw, h=lh)
    host = _stamp(rng, host_shape, scale=scale, angle=angle)
    off = _rotate(_shape_centre(st.shape), angle)
    radius = _extent_radius(host_shape) * scale
    for hpos in _positions(rng, room, host, radius, taken, n=4, apart=apart):
        pos = (round(hpos[0] - off[0] * scale), round(hpos[1] - off[1] * scale))
        hx, hy = host.at(hpos)
        layer = _Layer(host.low, host.high, hx, hy)
        got = _try_covers(image, st, pos, [layer], thin=False)
        if got is not None:
            return st, pos, [layer]
    return None


def compose_scene(
    rng: np.random.Generator,
    *,
    width: int,
    height: int,
    container: str,
    targets: Sequence[str],
    concealment: Sequence[str] = CONCEALMENT_MODES,
    clutter: tuple[int, int] | None = None,
) -> Scene:
    """Composes one scan's line integrals: container, clutter and targets.

    Args:
        rng: The scan's generator.
        width: Image width in pixels.
        height: Image height in pixels.
        container: One of :data:`cv.datasets.shapes.CONTAINER_KINDS`.
        targets: Taxonomy classes to place, one object each.
        concealment: Concealment modes to draw from.
        clutter: Range of clutter items; by default 6-14 in bags, 2-6 in parcels.
    """
    image = DualEnergy.empty(height, width)
    box = S.container(rng, container)
    angle = float(rng.uniform(-8, 8)) + (180.0 if rng.random() < 0.5 else 0.0)
    a = math.radians(angle)
    ext_w = box.width * abs(math.cos(a)) + box.height * abs(math.sin(a))
    ext_h = box.width * abs(math.sin(a)) + box.height * abs(math.cos(a))
    fill = rng.uniform(0.80, 0.94)
    scale = fill * min(width / ext_w, height / ext_h)
    cx = width / 2 + rng.uniform(-0.5, 0.5) * (width - ext_w * scale)
    cy = height / 2 + rng.uniform(-0.5, 0.5) * (height - ext_h * scale)
    S.rasterise(box.shape, image, scale=scale, angle=angle, center=(cx, cy), rng=rng)
    c, s = math.cos(a), math.sin(a)
    interior = box.interior @ (np.array([[c, -s], [s, c]]) * scale).T + [cx, cy]
    room = _Room(interior, height, width)
    scene = Scene(image=image, container=container, scale=scale)

    lo, hi = clutter or ((2, 6) if container == "parcel" else (6, 14))
    weights = _CLUTTER_WEIGHTS["parcel" if container == "parcel" else "bag"]
    kinds = list(weights)
    p = np.array([weights[k] for k in kinds])
    for _ in range(int(rng.integers(lo, hi + 1))):
        kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
        item = S.CLUTTER_BUILDERS[kind](rng)
        pos = room.pick(rng, 0.6 * _extent_radius(item) * scale)
        S.rasterise(item, image, scale=scale, angle=float(rng.uniform(0, 360)), center=pos, rng=rng)

    taken: list[tuple[float, float, float]] = []
    own_low: list[NDArray[np.float32]] = []
    for category in targets:
        shape = S.TARGET_BUILDERS[category](rng)
        x0, y0, x1, y1 = shape.extent()
        mode = _choose_mode(rng, category, (x1 - x0, y1 - y0), concealment, room.largest / scale)
        factor = 1.0
        if mode == "lining" and category in ("cash", "drugs", "knife", "battery"):
            factor = float(rng.uniform(0.5, 0.8))  # pressed flat in the lining
        got = _place_target(rng, image, room, shape, mode, scale=scale, factor=factor, taken=taken)
        if got is None:
            continue
        st, pos, layers = got
        x, y = st.at(pos)
        add_line_integrals(image, st.low, st.high, x=x, y=y)
        for layer in layers:
            layer.add_to(image)
        taken.append((pos[0], pos[1], _extent_radius(shape) * scale))
        scene.targets.append(PlacedTarget(placed=st.placed(pos), concealment=mode))
        own_low.append(st.low)
    # A later target's cover may have buried an earlier one: such a target is taken out
    # of the scan altogether, so that nothing unlabelled remains.
    keep = []
    for t, low in zip(scene.targets, own_low, strict=True):
        if scene.perceivable(t.placed) >= PERCEIVABLE_FRACTION:
            keep.append(t)
        else:
            p = t.placed
            add_line_integrals(image, -low, -p.own_high, x=p.x, y=p.y)
            np.maximum(image.low, 0, out=image.low)
            np.maximum(image.high, 0, out=image.high)
    scene.targets = keep
    return scene


# ------------------------------------------------------------------- one scan


def _as_rng(seed_or_rng: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    return np.random.default_rng(seed_or_rng)


def image_seed(seed: int, index: int) -> int:
    """The seed of image ``index`` in a run with ``seed`` (what :func:`make_scan` takes)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0])


def make_scan(
    seed_or_rng: int | np.random.Generator,
    *,
    size: tuple[int, int] = (640, 640),
    profile: ScannerProfile,
    container: str | None = None,
    parcel_fraction: float = 0.3,
    clean: bool = False,
    threats: tuple[int, int] = (1, 3),
    classes: Sequence[str] = TARGET_CLASSES,
    concealment: Sequence[str] = CONCEALMENT_MODES,
    grey: bool = False,
    file: str = "",
) -> tuple[NDArray, ImageRecord]:
    """Makes one synthetic scan in memory.

    Args:
        seed_or_rng: Seed of the scan (see :func:`image_seed`) or a generator.
        size: ``(width, height)`` in pixels.
        profile: The scanner's look.
        container: Container kind; by default a parcel with probability
            ``parcel_fraction``, else a bag kind at random.
        parcel_fraction: Probability of a parcel when ``container`` is ``None``.
        clean: No objects to find.
        threats: Inclusive range of the number of objects to find.
        classes: Taxonomy classes to draw them from.
        concealment: Concealment modes to draw from.
        grey: Render a single-energy grey-scale image instead of pseudo-colour.
        file: The record's file path.

    Returns:
        ``(image, record)``: ``(H, W, 3)`` uint8 RGB (or ``(H, W)`` uint8 grey) and its
        ground truth; ``record.meta`` holds the profile and container kind.
    """
    rng = _as_rng(seed_or_rng)
    width, height = size
    # Drawn even when the container is given, so that the rest of the scan does not
    # depend on whether it was.
    drawn = "parcel" if rng.random() < parcel_fraction else str(rng.choice(_BAG_KINDS))
    container = container or drawn
    n = 0 if clean else int(rng.integers(threats[0], threats[1] + 1))
    chosen = [str(classes[int(i)]) for i in rng.integers(0, len(classes), n)]
    scene = compose_scene(
        rng,
        width=width,
        height=height,
        container=container,
        targets=chosen,
        concealment=concealment,
    )
    if grey:
        img = render_grey(scene.image.low, scene.image.high, profile, rng)
    else:
        img = render_pseudocolor(scene.image.low, scene.image.high, profile, rng)
    record = ImageRecord(
        file=file,
        width=width,
        height=height,
        annotations=scene.annotations(),
        source="synthetic",
        meta={"profile": profile.name, "container": container, "px_per_mm": round(scene.scale, 5)},
    )
    return img, record


# --------------------------------------------------------------------- a dataset


def parse_splits(ratios: Sequence[float]) -> tuple[float, float, float]:
    """Validates ``(train, val, test)`` ratios: three numbers >= 0 that sum to 1.

    Raises:
        ConfigError: If they do not.
    """
    r = tuple(float(x) for x in ratios)
    if len(r) != 3 or any(x < 0 or not math.isfinite(x) for x in r) or abs(sum(r) - 1) > 1e-6:
        raise ConfigError(
            f"split ratios must be three numbers >= 0 summing to 1 (train, val, test), got "
            f"{list(ratios)}",
            field="splits",
        )
    return r  # type: ignore[return-value]


def _check_classes(classes: Sequence[str]) -> list[str]:
    if not classes:
        raise ConfigError("at least one class is needed", field="classes")
    bad = [c for c in classes if c not in S.TARGET_BUILDERS]
    if bad:
        raise ConfigError(
            f"cannot generate class(es) {', '.join(map(repr, bad))}; known: "
            f"{', '.join(TARGET_CLASSES)}",
            field="classes",
        )
    # Taxonomy order, whatever order they were given in.
    return [c for c in TARGET_CLASSES if c in set(classes)]


def _resolve_profiles(profiles: Sequence[str | ScannerProfile] | None) -> list[ScannerProfile]:
    items = list(profiles) if profiles else list_profiles()
    if not items:
        raise ConfigError("no scanner profiles given", field="profiles")
    return [p if isinstance(p, ScannerProfile) else load_profile(p) for p in items]


def _assign(
    n: int, seed: int, splits: tuple[float, float, float], clean: float
) -> tuple[list[Split], set[int]]:
    """Split of each image and the set of clean images, drawn from their own seed."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, n, 7]))
    n_train = round(splits[0] * n)
    n_val = min(round(splits[1] * n), n - n_train)
    order = rng.permutation(n)
    names: list[Split] = ["test"] * n
    for k, i in enumerate(order):
        names[int(i)] = "train" if k < n_train else "val" if k < n_train + n_val else "test"
    clean_ids = {int(i) for i in rng.permutation(n)[: round(clean * n)]}
    return names, clean_ids


@dataclass(frozen=True, slots=True)
class _Job:
    index: int
    seed: int
    out_dir: str
    file: str
    split: Split
    clean: bool
    profiles: tuple[ScannerProfile, ...]
    size: tuple[int, int]
    containers: tuple[str, ...] | None
    parcel_fraction: float
    threats: tuple[int, int]
    classes: tuple[str, ...]
    grey: bool


def _run_job(job: _Job) -> ImageRecord:
    """Makes and writes one image (runs in a worker process)."""
    # Profile and container come from their own stream, so that make_scan(seed) with
    # the recorded profile and container remakes the image.
    pick = np.random.default_rng(np.random.SeedSequence([job.seed, 1]))
    profile = job.profiles[int(pick.integers(0, len(job.profiles)))]
    container = None
    if job.containers:
        container = str(job.containers[int(pick.integers(0, len(job.containers)))])
    img, rec = make_scan(
        job.seed,
        size=job.size,
        profile=profile,
        container=container,
        parcel_fraction=job.parcel_fraction,
        clean=job.clean,
        threats=job.threats,
        classes=job.classes,
        grey=job.grey,
        file=job.file,
    )
    write_image(Path(job.out_dir) / job.file, img, png_fast=True)
    rec.split = job.split
    rec.meta["seed"] = job.seed
    rec.meta["index"] = job.index
    return rec


def generate(
    out_dir: Path,
    *,
    n_images: int,
    size: tuple[int, int] = (640, 640),
    profiles: Sequence[str | ScannerProfile] | None = None,
    seed: int = 0,
    workers: int = 0,
    containers: Sequence[str] | None = None,
    parcel_fraction: float = 0.3,
    clean_fraction: float = 0.2,
    threats: tuple[int, int] = (1, 3),
    classes: Sequence[str] = TARGET_CLASSES,
    splits: Sequence[float] = (0.8, 0.1, 0.1),
    grey: bool = False,
    name: str = "synthetic",
    show_progress: bool | None = None,
) -> Dataset:
    """Generates a synthetic X-ray dataset on disk.

    Writes ``images/<split>/<index>.png``, YOLO labels and ``data.yaml``, COCO JSON per
    split (``annotations/<split>.json``) and ``manifest.json`` under ``out_dir``.

    Args:
        out_dir: Output folder (created).
        n_images: Number of scans.
        size: ``(width, height)`` in pixels.
        profiles: Scanner profile names, YAML paths or profiles; by default every
            built-in one. Each image draws one.
        seed: Seed of the run; the same seed gives byte-identical output.
        workers: Worker processes; 0 means one per CPU core.
        containers: Container kinds to draw from; by default a parcel with
            probability ``parcel_fraction``, else a bag kind.
        parcel_fraction: Share of parcels when ``containers`` is not given.
        clean_fraction: Share of images with no object to find.
        threats: Inclusive range of objects to find per non-clean image.
        classes: Taxonomy classes to place.
        splits: ``(train, val, test)`` ratios.
        grey: Single-energy grey-scale images instead of pseudo-colour.
        name: The dataset's name.
        show_progress: Show a progress bar; by default when stderr is a terminal.

    Returns:
        The dataset; ``root`` is ``out_dir`` and record files are relative to it.

    Raises:
        ConfigError: If an option is invalid.
    """
    from cv.datasets.formats.coco import write_coco
    from cv.datasets.formats.yolo import write_yolo
    from cv.log import progress

    t0 = time.perf_counter()
    if n_images < 1:
        raise ConfigError(f"number of images must be >= 1, got {n_images}", field="images")
    width, height = int(size[0]), int(size[1])
    if min(width, height) < 64:
        raise ConfigError(
            f"image size must be at least 64 x 64, got {width} x {height}", field="size"
        )
    ratios = parse_splits(splits)
    cls = _check_classes(classes)
    profs = _resolve_profiles(profiles)
    if not 0 <= clean_fraction <= 1:
        raise ConfigError(f"clean fraction must lie in [0, 1], got {clean_fraction}", field="clean")
    if not 0 <= parcel_fraction <= 1:
        raise ConfigError(
            f"parcel fraction must lie in [0, 1], got {parcel_fraction}", field="parcels"
        )
    lo, hi = int(threats[0]), int(threats[1])
    if lo < 1 or hi < lo:
        raise ConfigError(
            f"threats per bag must be a range 1 <= lo <= hi, got {lo}-{hi}", field="threats"
        )
    if containers:
        bad = [c for c in containers if c not in S.CONTAINER_KINDS]
        if bad:
            raise ConfigError(
                f"unknown container kind(s) {bad}; known: {', '.join(S.CONTAINER_KINDS)}",
                field="containers",
            )
    n_workers = workers or max(1, os.cpu_count() or 1)

    out_dir = Path(out_dir)
    split_of, clean_ids = _assign(n_images, seed, ratios, clean_fraction)
    jobs = [
        _Job(
            index=i,
            seed=image_seed(seed, i),
            out_dir=str(out_dir),
            file=f"images/{split_of[i]}/{i:06d}.png",
            split=split_of[i],
            clean=i in clean_ids,
            profiles=tuple(profs),
            size=(width, height),
            containers=tuple(containers) if containers else None,
            parcel_fraction=parcel_fraction,
            threats=(lo, hi),
            classes=tuple(cls),
            grey=grey,
        )
        for i in range(n_images)
    ]
    records: list[ImageRecord] = []
    with progress(disable=None if show_progress is None else not show_progress) as bar:
        task = bar.add_task("generating scans", total=n_images)
        if n_workers == 1 or n_images == 1:
            for job in jobs:
                records.append(_run_job(job))
                bar.advance(task)
        else:
            with ProcessPoolExecutor(max_workers=n_workers) as pool:
                chunk = max(1, min(16, n_images // (n_workers * 4)))
                for rec in pool.map(_run_job, jobs, chunksize=chunk):
                    records.append(rec)
                    bar.advance(task)
    dataset = Dataset(name=name, images=records, root=out_dir, classes=cls)
    write_yolo(dataset, out_dir, classes=cls)
    for split in SPLITS:
        if any(r.split == split for r in records):
            write_coco(dataset, out_dir / "annotations" / f"{split}.json", classes=cls, split=split)
    _write_manifest(
        out_dir / "manifest.json",
        dataset,
        options={
            "n_images": n_images,
            "size": [width, height],
            "seed": seed,
            "workers": n_workers,
            "containers": list(containers) if containers else None,
            "parcel_fraction": parcel_fraction,
            "clean_fraction": clean_fraction,
            "threats": [lo, hi],
            "classes": cls,
            "splits": list(ratios),
            "grey": grey,
            "name": name,
        },
        profiles=profs,
        seconds=time.perf_counter() - t0,
    )
    return dataset


def summarise(dataset: Dataset) -> dict[str, dict[str, int]]:
    """Counts of objects per class, split, occlusion level and concealment, and of
    images per split and container."""
    c: dict[str, Counter[str]] = {
        k: Counter()
        for k in (
            "class",
            "split",
            "occlusion_level",
            "concealment",
            "images_per_split",
            "container",
            "profile",
        )
    }
    for rec in dataset.images:
        c["images_per_split"][str(rec.split)] += 1
        c["container"][str(rec.meta.get("container"))] += 1
        c["profile"][str(rec.meta.get("profile"))] += 1
        for a in rec.annotations:
            c["class"][a.category] += 1
            c["split"][str(rec.split)] += 1
            c["occlusion_level"][str(a.occlusion_level)] += 1
            c["concealment"][str(a.concealment)] += 1
    c["images_per_split"]["clean"] = sum(1 for r in dataset.images if not r.annotations)
    return {k: dict(sorted(v.items())) for k, v in c.items()}


def _write_manifest(
    path: Path,
    dataset: Dataset,
    *,
    options: dict[str, object],
    profiles: Sequence[ScannerProfile],
    seconds: float,
) -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        tool_version = version("customs-vision")
    except PackageNotFoundError:
        tool_version = "unknown"
    doc = {
        "tool": "customs-vision data synth",
        "version": tool_version,
        "options": options,
        "profiles": [p.model_dump(mode="json") for p in profiles],
        "counts": summarise(dataset),
        "seconds": round(seconds, 3),
        "images": [
            {
                "file": r.file,
                "split": r.split,
                "seed": r.meta.get("seed"),
                "profile": r.meta.get("profile"),
                "container": r.meta.get("container"),
                "objects": len(r.annotations),
            }
            for r in dataset.images
        ],
    }
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
