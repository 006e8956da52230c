"""Synthetic people for the CCTV generator: identities and how to draw them.

An :class:`Identity` fixes everything that stays the same about a person from one
camera to the next: build and height, skin tone, hair, the upper garment's colour and
pattern (solid, stripes, checks, a logo on the chest), the lower garment, shoes, a
bag (backpack, shoulder bag, wheeled suitcase) and a hat. Colours are named entries
of small palettes, so that many identities share colours, and a share of identities
are derived from an earlier one by changing two visible attributes: the re-ID task
then has hard negatives, as real crowds do.

:func:`draw_person` draws one person standing on ``foot`` with a given pixel height,
seen from one of :data:`VIEWS`, in a walking :class:`Pose`. What shows depends on the
view, as on a real camera: a backpack is a big patch seen from the back and only two
straps from the front, a chest logo only shows from the front, a face from the front
and side. Drawing is plain OpenCV (anti-aliased polygons and ellipses at sub-pixel
precision), a few hundred microseconds per person.

Colours are RGB ``uint8`` triples throughout (the image contract of :mod:`cv.image`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

RGB = tuple[int, int, int]
Colour = tuple[int, ...]
View = Literal["front", "back", "left", "right"]
VIEWS: tuple[View, ...] = ("front", "back", "left", "right")
"""Viewpoints: facing the camera, facing away, walking to the image's left or right."""

CLOTHING: dict[str, RGB] = {
    "black": (26, 26, 30),
    "charcoal": (62, 62, 68),
    "grey": (128, 128, 132),
    "light grey": (190, 190, 192),
    "white": (236, 236, 232),
    "navy": (30, 40, 92),
    "blue": (40, 82, 172),
    "light blue": (122, 170, 222),
    "denim": (62, 88, 132),
    "teal": (28, 122, 122),
    "green": (42, 112, 52),
    "olive": (102, 106, 46),
    "khaki": (182, 162, 112),
    "beige": (212, 192, 160),
    "brown": (112, 72, 42),
    "burgundy": (112, 26, 42),
    "red": (192, 32, 36),
    "orange": (230, 122, 32),
    "yellow": (232, 202, 44),
    "pink": (232, 142, 172),
    "purple": (102, 52, 132),
}
"""Garment colours by name."""

_UPPER_WEIGHTS = {
    "black": 3.0, "charcoal": 1.5, "grey": 2.0, "light grey": 1.0, "white": 2.5, "navy": 2.0,
    "blue": 1.5, "light blue": 1.0, "teal": 0.6, "green": 0.8, "olive": 0.6, "khaki": 0.6,
    "beige": 0.8, "brown": 0.6, "burgundy": 0.6, "red": 1.0, "orange": 0.5, "yellow": 0.5,
    "pink": 0.6, "purple": 0.5,
}  # fmt: skip
_LOWER_WEIGHTS = {
    "black": 3.0, "charcoal": 1.2, "grey": 1.2, "navy": 1.5, "denim": 3.0, "blue": 0.6,
    "khaki": 1.2, "beige": 0.8, "brown": 0.6, "olive": 0.5, "white": 0.3, "light grey": 0.4,
    "burgundy": 0.2, "red": 0.2,
}  # fmt: skip
_SHOE_WEIGHTS = {"black": 3.0, "white": 2.0, "brown": 1.0, "grey": 0.8, "navy": 0.5, "red": 0.3}
_BAG_WEIGHTS = {
    "black": 3.0, "charcoal": 1.0, "grey": 1.0, "navy": 1.0, "brown": 1.0, "red": 0.5,
    "blue": 0.5, "green": 0.4, "beige": 0.5, "pink": 0.3, "orange": 0.3, "purple": 0.3,
}  # fmt: skip
HAIR: dict[str, RGB] = {
    "black": (22, 19, 17),
    "dark brown": (52, 36, 26),
    "brown": (98, 66, 40),
    "blond": (202, 172, 112),
    "grey": (162, 160, 158),
    "auburn": (132, 56, 30),
}
"""Hair colours by name."""
_HAIR_WEIGHTS = {
    "black": 4.0,
    "dark brown": 2.5,
    "brown": 1.5,
    "blond": 1.0,
    "grey": 0.7,
    "auburn": 0.4,
}
SKIN: tuple[RGB, ...] = (
    (246, 214, 190),
    (234, 190, 160),
    (214, 164, 126),
    (184, 134, 96),
    (140, 96, 64),
    (96, 64, 44),
)
"""Skin tones, light to dark."""

HAIR_STYLES = ("short", "long", "ponytail", "bald")
UPPER_PATTERNS = ("solid", "stripes", "checks", "logo")
LOGO_SHAPES = ("circle", "square", "triangle", "bar")
LOWER_KINDS = ("trousers", "shorts", "skirt")
BAGS = ("none", "backpack", "shoulder_bag", "suitcase")
HATS = ("none", "cap", "beanie")
_DERIVED_CHANGES = ("bag", "hat", "pattern", "lower", "hair", "upper")


@dataclass(frozen=True, slots=True)
class Identity:
    """Everything about a person's look that stays the same between cameras.

    Attributes:
        pid: Person id (1-based; 0 for a distractor, whose id carries no meaning).
        build: Width factor of the body (0.85 slim .. 1.25 broad).
        height: Relative height (0.9 .. 1.08); taller people look slimmer in a crop.
        skin: Skin colour.
        hair: Hair style, one of :data:`HAIR_STYLES`.
        hair_colour: Name in :data:`HAIR`.
        upper: Upper garment colour name in :data:`CLOTHING`.
        pattern: Upper garment pattern, one of :data:`UPPER_PATTERNS`.
        pattern_colour: Colour name of the stripes, checks or logo.
        logo: Shape of the chest logo (used when ``pattern`` is ``logo``).
        sleeves: ``long`` or ``short``.
        lower: Lower garment, one of :data:`LOWER_KINDS`.
        lower_colour: Its colour name.
        shoes: Shoe colour name.
        bag: One of :data:`BAGS`.
        bag_colour: The bag's colour name.
        bag_side: ``1`` or ``-1``: the side the shoulder bag or suitcase is on.
        hat: One of :data:`HATS`.
        hat_colour: The hat's colour name.
        shade: Per-identity tint of every garment colour (the same "navy" differs a
            little from one jacket to another), RGB offsets in grey levels.
    """

    pid: int
    build: float
    height: float
    skin: RGB
    hair: str
    hair_colour: str
    upper: str
    pattern: str
    pattern_colour: str
    logo: str
    sleeves: str
    lower: str
    lower_colour: str
    shoes: str
    bag: str
    bag_colour: str
    bag_side: int
    hat: str
    hat_colour: str
    shade: tuple[int, int, int] = (0, 0, 0)

    def summary(self) -> dict[str, object]:
        """The appearance in words and numbers (for manifests and scene files)."""
        d = asdict(self)
        d["skin"] = list(self.skin)
        d["shade"] = list(self.shade)
        return d


def _pick(rng: np.random.Generator, weights: dict[str, float], exclude: str = "") -> str:
    names = [n for n in weights if n != exclude]
    p = np.array([weights[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def make_identity(pid: int, rng: np.random.Generator) -> Identity:
    """A random identity.

    Args:
        pid: Its person id.
        rng: Source of randomness; the same state gives the same identity.
    """
    pattern = str(rng.choice(UPPER_PATTERNS, p=[0.5, 0.2, 0.12, 0.18]))
    upper = _pick(rng, _UPPER_WEIGHTS)
    long_hair = rng.random() < 0.4
    hair = "long" if long_hair else str(rng.choice(["short", "bald"], p=[0.92, 0.08]))
    if long_hair and rng.random() < 0.35:
        hair = "ponytail"
    return Identity(
        pid=pid,
        build=float(rng.uniform(0.85, 1.25)),
        height=float(rng.uniform(0.9, 1.08)),
        skin=SKIN[int(rng.integers(0, len(SKIN)))],
        hair=hair,
        hair_colour=_pick(rng, _HAIR_WEIGHTS),
        upper=upper,
        pattern=pattern,
        pattern_colour=_pick(rng, _UPPER_WEIGHTS, exclude=upper),
        logo=str(rng.choice(LOGO_SHAPES)),
        sleeves="long" if rng.random() < 0.65 else "short",
        lower=str(rng.choice(LOWER_KINDS, p=[0.75, 0.12, 0.13])),
        lower_colour=_pick(rng, _LOWER_WEIGHTS),
        shoes=_pick(rng, _SHOE_WEIGHTS),
        bag=str(rng.choice(BAGS, p=[0.35, 0.3, 0.2, 0.15])),
        bag_colour=_pick(rng, _BAG_WEIGHTS),
        bag_side=1 if rng.random() < 0.5 else -1,
        hat=str(rng.choice(HATS, p=[0.75, 0.15, 0.1])),
        hat_colour=_pick(rng, _BAG_WEIGHTS),
        shade=tuple(int(v) for v in rng.integers(-12, 13, 3)),  # type: ignore[arg-type]
    )


def derive_identity(base: Identity, pid: int, rng: np.random.Generator) -> Identity:
    """A look-alike of ``base``: two visible attributes changed, the rest kept.

    Used to make the re-ID task non-trivial: two people in the same navy jacket and
    jeans, one with a backpack, one with a cap.
    """
    fresh = make_identity(pid, rng)
    changes = rng.choice(len(_DERIVED_CHANGES), size=2, replace=False)
    new = replace(base, pid=pid, build=fresh.build, height=fresh.height, skin=fresh.skin)
    for k in changes.tolist():
        what = _DERIVED_CHANGES[k]
        if what == "bag":
            bag = str(rng.choice([b for b in BAGS if b != base.bag]))
            new = replace(new, bag=bag, bag_colour=fresh.bag_colour)
        elif what == "hat":
            hat = str(rng.choice([h for h in HATS if h != base.hat]))
            new = replace(new, hat=hat, hat_colour=fresh.hat_colour)
        elif what == "pattern":
            pattern = str(rng.choice([p for p in UPPER_PATTERNS if p != base.pattern]))
            new = replace(new, pattern=pattern, pattern_colour=fresh.pattern_colour)
        elif what == "lower":
            new = replace(new, lower_colour=_pick(rng, _LOWER_WEIGHTS, exclude=base.lower_colour))
        elif what == "hair":
            new = replace(new, hair=fresh.hair, hair_colour=fresh.hair_colour)
        else:
            new = replace(new, upper=_pick(rng, _UPPER_WEIGHTS, exclude=base.upper))
    return new


def make_identities(
    n: int, seed: int, *, first_pid: int = 1, derived: float = 0.3, stream: int = 0
) -> list[Identity]:
    """``n`` identities with pids ``first_pid ..``, a share of them look-alikes.

    Identity ``i`` draws from ``SeedSequence([seed, 101, stream, i])``; a look-alike
    copies an earlier identity of the same list, so the list is the unit of
    determinism.

    Args:
        n: How many.
        seed: Seed of the run.
        first_pid: Person id of the first identity.
        derived: Share of identities derived from an earlier one.
        stream: Separates independent lists drawn from one seed (train, test, ...).
    """
    out: list[Identity] = []
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 101, stream, i]))
        pid = first_pid + i
        if out and rng.random() < derived:
            base = out[int(rng.integers(0, len(out)))]
            out.append(derive_identity(base, pid, rng))
        else:
            out.append(make_identity(pid, rng))
    return out


# ------------------------------------------------------------------- drawing


@dataclass(frozen=True, slots=True)
class Pose:
    """A walking pose.

    Attributes:
        phase: Position in the walking cycle, radians.
        stride: 0 standing still .. 1 a full stride.
        arm: Arm swing amplitude, 0 .. 1.
        lean: Forward lean in side views, fraction of the height.
    """

    phase: float = 0.0
    stride: float = 1.0
    arm: float = 1.0
    lean: float = 0.0


def random_pose(rng: np.random.Generator) -> Pose:
    """A random moment of a walk (or, sometimes, standing)."""
    standing = rng.random() < 0.15
    return Pose(
        phase=float(rng.uniform(0, 2 * math.pi)),
        stride=float(rng.uniform(0.0, 0.3) if standing else rng.uniform(0.6, 1.0)),
        arm=float(rng.uniform(0.3, 1.0)),
        lean=float(rng.uniform(-0.005, 0.02)),
    )


_SHADOW = 0.72
"""Brightness of the far limbs in side views, in the body's shadow."""


def _c(rgb: RGB, shade: tuple[int, int, int] = (0, 0, 0), k: float = 1.0) -> Colour:
    return tuple(int(min(255, max(0, (v + s) * k))) for v, s in zip(rgb, shade, strict=True))


class Painter:
    """Anti-aliased drawing on an RGB image, and optionally of the body into a mask.

    Coordinates are float pixels of the image. The mask, when given, covers the
    image region starting at ``origin`` and records the person's body (not a
    suitcase standing beside them), to measure boxes and visibility.

    Args:
        image: ``(H, W, 3) uint8`` RGB, drawn on in place.
        mask: ``(h, w) uint8`` body mask, drawn on in place, or ``None``.
        origin: ``(x, y)`` of the mask's top-left pixel in image coordinates.
    """

    _SHIFT = 4
    _ONE = 16

    def __init__(
        self,
        image: NDArray[np.uint8],
        mask: NDArray[np.uint8] | None = None,
        origin: tuple[int, int] = (0, 0),
    ) -> None:
        self.image = image
        self.mask = mask
        self.origin = np.array(origin, dtype=np.float64)

    def _fix(self, pts: NDArray[np.float64]) -> NDArray[np.int32]:
        return np.round(pts * self._ONE).astype(np.int32)

    def poly(self, pts: NDArray[np.float64] | list, colour: Colour, body: bool = True) -> None:
        """A filled polygon."""
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        cv2.fillPoly(self.image, [self._fix(p)], colour, cv2.LINE_AA, self._SHIFT)
        if body and self.mask is not None:
            cv2.fillPoly(self.mask, [self._fix(p - self.origin)], 1, cv2.LINE_8, self._SHIFT)

    def ellipse(
        self,
        centre: tuple[float, float],
        axes: tuple[float, float],
        colour: Colour,
        *,
        start: float = 0.0,
        end: float = 360.0,
        angle: float = 0.0,
        body: bool = True,
    ) -> None:
        """A filled ellipse (or sector, from ``start`` to ``end`` degrees)."""
        ax = (max(1, round(axes[0] * self._ONE)), max(1, round(axes[1] * self._ONE)))
        c = np.array(centre, dtype=np.float64)
        cv2.ellipse(
            self.image, tuple(self._fix(c).tolist()), ax, angle, start, end, colour, -1,
            cv2.LINE_AA, self._SHIFT,
        )  # fmt: skip
        if body and self.mask is not None:
            cv2.ellipse(
                self.mask, tuple(self._fix(c - self.origin).tolist()), ax, angle, start, end, 1,
                -1, cv2.LINE_8, self._SHIFT,
            )  # fmt: skip

    def limb(
        self,
        p0: tuple[float, float],
        p1: tuple[float, float],
        w0: float,
        w1: float,
        colour: Colour,
        *,
        body: bool = True,
        caps: bool = True,
    ) -> None:
        """A tapered segment from ``p0`` (width ``w0``) to ``p1`` (width ``w1``), round ends."""
        a, b = np.array(p0, dtype=np.float64), np.array(p1, dtype=np.float64)
        d = b - a
        n = float(np.hypot(*d))
        if n < 1e-6:
            return
        nx = np.array([-d[1], d[0]]) / n
        self.poly(
            [a + nx * w0 / 2, b + nx * w1 / 2, b - nx * w1 / 2, a - nx * w0 / 2], colour, body
        )
        if caps:
            self.ellipse(tuple(a), (w0 / 2, w0 / 2), colour, body=body)
            self.ellipse(tuple(b), (w1 / 2, w1 / 2), colour, body=body)

    def line(
        self,
        p0: tuple[float, float],
        p1: tuple[float, float],
        width: float,
        colour: Colour,
    ) -> None:
        """A straight band (straps, handles); part of the body mask."""
        self.limb(p0, p1, width, width, colour, caps=False)


def _pattern_fill(
    image: NDArray[np.uint8],
    region: NDArray[np.float64],
    kind: str,
    colour: Colour,
    period: float,
    phase: float,
) -> None:
    """Stripes or checks of ``colour`` inside the polygon ``region`` (image pixels)."""
    h, w = image.shape[:2]
    x0 = max(math.floor(region[:, 0].min()), 0)
    y0 = max(math.floor(region[:, 1].min()), 0)
    x1 = min(math.ceil(region[:, 0].max()) + 1, w)
    y1 = min(math.ceil(region[:, 1].max()) + 1, h)
    if x1 <= x0 or y1 <= y0 or period < 2.0:
        return
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(m, [np.round((region - (x0, y0)) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    thick = max(1.0, period * (0.45 if kind == "stripes" else 0.25))
    rows = ((np.arange(y0, y1) + phase) % period) < thick
    sel = m.astype(bool) & rows[:, None]
    if kind == "checks":
        cols = ((np.arange(x0, x1) + phase) % period) < thick
        sel |= m.astype(bool) & cols[None, :]
    image[y0:y1, x0:x1][sel] = colour


def _logo(p: Painter, shape: str, centre: tuple[float, float], r: float, colour: Colour) -> None:
    cx, cy = centre
    if shape == "circle":
        p.ellipse(centre, (r, r), colour)
    elif shape == "square":
        p.poly([(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)], colour)
    elif shape == "triangle":
        p.poly([(cx, cy - r * 1.2), (cx + r * 1.2, cy + r), (cx - r * 1.2, cy + r)], colour)
    else:
        p.poly([(cx - 2 * r, cy - r * 0.45), (cx + 2 * r, cy - r * 0.45),
                (cx + 2 * r, cy + r * 0.45), (cx - 2 * r, cy + r * 0.45)], colour)  # fmt: skip


def draw_person(
    painter: Painter,
    ident: Identity,
    view: View,
    pose: Pose,
    foot: tuple[float, float],
    height: float,
) -> tuple[float, float, float, float]:
    """Draws ``ident`` standing with the feet at ``foot``, ``height`` pixels tall.

    Args:
        painter: Where to draw.
        ident: Who.
        view: From where the camera sees them.
        pose: The moment of the walk.
        foot: ``(x, y)`` image pixels of the point between the feet, on the floor.
        height: Pixel height from the floor to the top of the head.

    Returns:
        The nominal ``xyxy`` box of the body (feet to head, shoulders or stride
        wide), before any clipping to the image.
    """
    return _Body(painter, ident, view, pose, foot, height).draw()


class _Body:
    """One person being drawn: body coordinates, colours, and the parts in order.

    Body coordinates are fractions of the height: ``y`` from the top of the head
    (0) to the soles (1), ``x`` from the body's axis towards the image's right for
    front and back views and towards the facing direction for side views; widths
    scale with the build (``at(..., widen=True)``).
    """

    def __init__(
        self,
        painter: Painter,
        ident: Identity,
        view: View,
        pose: Pose,
        foot: tuple[float, float],
        height: float,
    ) -> None:
        self.p = painter
        self.ident = ident
        self.view = view
        self.pose = pose
        self.fx, self.fy = foot
        self.h = height
        self.top = self.fy - height
        self.wf = ident.build / ident.height
        self.side = view in ("left", "right")
        self.d = -1.0 if view == "left" else 1.0
        self.s = math.sin(pose.phase) * pose.stride
        self.bob = abs(math.cos(pose.phase)) * pose.stride * 0.008 * height
        sh = ident.shade
        self.skin = _c(ident.skin)
        self.upper = _c(CLOTHING[ident.upper], sh)
        self.lower = _c(CLOTHING[ident.lower_colour], sh)
        self.shoes = _c(CLOTHING[ident.shoes], sh)
        self.hair = _c(HAIR[ident.hair_colour])
        self.bag = _c(CLOTHING[ident.bag_colour], sh)
        self.hat = _c(CLOTHING[ident.hat_colour], sh)
        self.pattern = _c(CLOTHING[ident.pattern_colour], sh)

    def at(self, x: float, y: float, widen: bool = True) -> tuple[float, float]:
        """Image point of body point ``(x, y)``."""
        return (
            self.fx + self.d * x * self.h * (self.wf if widen else 1.0),
            self.top + self.bob + y * self.h,
        )

    def draw(self) -> tuple[float, float, float, float]:
        ident, p, at, h, view = self.ident, self.p, self.at, self.h, self.view
        # Suitcase first: it stands beside or behind the person and is not the body.
        if ident.bag == "suitcase":
            self.suitcase()
        # Back layer: long hair behind the shoulders, a backpack's sides.
        if view == "front" and ident.hair in ("long", "ponytail"):
            p.poly(
                [at(-0.058, 0.05), at(0.058, 0.05), at(0.06, 0.215), at(-0.06, 0.215)], self.hair
            )
        if view == "front" and ident.bag == "backpack":
            p.poly([at(-0.128, 0.19), at(0.128, 0.19), at(0.125, 0.42), at(-0.125, 0.42)],
                   _c(self.bag, k=0.8))  # fmt: skip
        if self.side:
            self.side_legs()
            # The far arm goes behind the torso.
            self.arm((0.0, 0.19), -self.s * self.pose.arm, k=_SHADOW)
        else:
            self.front_legs()
        self.torso()
        if ident.bag == "backpack":
            self.backpack()
        elif ident.bag == "shoulder_bag":
            self.shoulder_bag()
        if self.side:
            self.arm((0.0, 0.19), self.s * self.pose.arm)
        else:
            for sign in (-1.0, 1.0):
                self.arm((0.115 * sign, 0.185), sign * self.s * self.pose.arm)
        self.head()
        if ident.hat != "none":
            self.headwear()
        wf, s = self.wf, self.s
        half = 0.135 * h * wf if not self.side else max(0.1 * h * wf, abs(s) * 0.14 * h + 0.05 * h)
        return (self.fx - half, self.top, self.fx + half, self.fy)

    def torso(self) -> None:
        ident, p, at, h = self.ident, self.p, self.at, self.h
        p.poly([at(-0.022, 0.10, False), at(0.022, 0.10, False), at(0.022, 0.17, False),
                at(-0.022, 0.17, False)], self.skin)  # fmt: skip
        if self.side:
            torso = [at(-0.065, 0.15), at(0.045, 0.15), at(0.07, 0.2), at(0.068, 0.33),
                     at(0.062, 0.50), at(-0.068, 0.50), at(-0.07, 0.3), at(-0.078, 0.18)]  # fmt: skip
            lean = self.pose.lean * h * self.d
            torso = [(x + lean * (0.5 - (y - self.top) / h) * 2, y) for x, y in torso]
        else:
            torso = [at(-0.085, 0.145), at(0.085, 0.145), at(0.125, 0.175), at(0.115, 0.30),
                     at(0.106, 0.505), at(-0.106, 0.505), at(-0.115, 0.30), at(-0.125, 0.175)]  # fmt: skip
        p.poly(torso, self.upper)
        if ident.pattern in ("stripes", "checks"):
            _pattern_fill(
                p.image, np.array(torso), ident.pattern, self.pattern, 0.045 * h, self.fy * 0.37
            )
        elif ident.pattern == "logo" and self.view == "front":
            _logo(p, ident.logo, at(0.035, 0.245), 0.028 * h, self.pattern)
        elif ident.pattern == "logo" and self.side:
            _logo(p, ident.logo, at(0.035, 0.245), 0.012 * h, self.pattern)
        if not self.side:  # the neckline
            p.poly([at(-0.03, 0.145, False), at(0.03, 0.145, False), at(0.0, 0.175, False)],
                   self.skin if self.view == "front" else self.upper)  # fmt: skip

    def front_legs(self) -> None:
        p, at, h, wf, s = self.p, self.at, self.h, self.wf, self.s
        kind, lower, skin = self.ident.lower, self.lower, self.skin
        for sign in (-1.0, 1.0):
            lift = 0.025 * max(0.0, s * sign)
            hip = at(0.052 * sign, 0.50)
            knee = at(0.056 * sign, 0.72 - lift * 0.5)
            ankle = at(0.05 * sign, 0.955 - lift)
            thigh = lower if kind in ("trousers", "shorts") else skin
            calf = lower if kind == "trousers" else skin
            p.limb(hip, knee, 0.085 * h * wf, 0.065 * h * wf, thigh)
            p.limb(knee, ankle, 0.065 * h * wf, 0.05 * h * wf, calf)
            p.ellipse(at(0.055 * sign, 0.975 - lift), (0.038 * h * wf, 0.022 * h), self.shoes)
        if kind == "skirt":
            p.poly([at(-0.1, 0.47), at(0.1, 0.47), at(0.145, 0.70), at(-0.145, 0.70)], lower)
        else:
            p.poly([at(-0.104, 0.47), at(0.104, 0.47), at(0.105, 0.56), at(-0.105, 0.56)], lower)

    def side_legs(self) -> None:
        p, at, h, wf, s = self.p, self.at, self.h, self.wf, self.s
        kind, lower, skin = self.ident.lower, self.lower, self.skin
        for order, sign in enumerate((-1.0, 1.0)):  # far leg first
            k = _SHADOW if order == 0 else 1.0
            reach = 0.14 * s * sign
            lift = 0.03 * max(0.0, -s * sign)
            hip = at(0.0, 0.50)
            knee = at(reach * 0.55 + 0.015, 0.72 - lift)
            ankle = at(reach, 0.955 - lift)
            thigh = _c(lower if kind in ("trousers", "shorts") else skin, k=k)
            calf = _c(lower if kind == "trousers" else skin, k=k)
            p.limb(hip, knee, 0.085 * h * wf, 0.062 * h * wf, thigh)
            p.limb(knee, ankle, 0.062 * h * wf, 0.048 * h * wf, calf)
            p.ellipse(at(reach + 0.03, 0.975 - lift), (0.055 * h, 0.02 * h), _c(self.shoes, k=k))
        if kind == "skirt":
            p.poly([at(-0.07, 0.47), at(0.065, 0.47), at(0.11, 0.70), at(-0.11, 0.70)], lower)
        else:
            p.poly([at(-0.07, 0.47), at(0.064, 0.47), at(0.07, 0.56), at(-0.072, 0.56)], lower)

    def arm(self, shoulder: tuple[float, float], swing: float, *, k: float = 1.0) -> None:
        p, h, wf = self.p, self.h, self.wf
        sx, sy = shoulder
        if self.side:
            elbow = (sx + 0.07 * swing, sy + 0.145)
            hand = (sx + 0.16 * swing + 0.01, sy + 0.27 - 0.02 * abs(swing))
        else:
            out = 0.018 if sx > 0 else -0.018
            elbow = (sx + out, sy + 0.145 - 0.01 * abs(swing))
            hand = (sx + out * 0.6 + 0.012 * swing, sy + 0.285 - 0.03 * abs(swing))
        sleeve = _c(self.upper, k=k)
        skin = _c(self.skin, k=k)
        ps, pe, ph = self.at(*shoulder), self.at(*elbow), self.at(*hand)
        if self.ident.sleeves == "short":
            mid = ((ps[0] + pe[0]) / 2, (ps[1] + pe[1]) / 2)
            p.limb(ps, pe, 0.05 * h * wf, 0.04 * h * wf, skin)
            p.limb(ps, mid, 0.056 * h * wf, 0.05 * h * wf, sleeve)
            p.limb(pe, ph, 0.04 * h * wf, 0.034 * h * wf, skin)
        else:
            p.limb(ps, pe, 0.052 * h * wf, 0.044 * h * wf, sleeve)
            p.limb(pe, ph, 0.044 * h * wf, 0.038 * h * wf, sleeve)
        p.ellipse(ph, (0.022 * h, 0.024 * h), skin)

    def head(self) -> None:
        ident, p, at, h, view = self.ident, self.p, self.at, self.h, self.view
        skin, hair = self.skin, self.hair
        bald = ident.hair == "bald"
        if view == "front":
            if not bald:
                p.ellipse(at(0.0, 0.058, False), (0.048 * h, 0.056 * h), hair)
                p.ellipse(at(0.0, 0.077, False), (0.04 * h, 0.049 * h), skin)
            else:
                p.ellipse(at(0.0, 0.066, False), (0.044 * h, 0.06 * h), skin)
            if h >= 70:
                eye = _c(skin, k=0.35)
                for sign in (-1.0, 1.0):
                    p.ellipse(
                        at(0.015 * sign, 0.07, False), (0.005 * h, 0.004 * h), eye, body=False
                    )
        elif view == "back":
            p.ellipse(at(0.0, 0.064, False), (0.046 * h, 0.062 * h), skin if bald else hair)
            if ident.hair == "long":
                p.poly([at(-0.052, 0.06, False), at(0.052, 0.06, False), at(0.058, 0.24, False),
                        at(-0.058, 0.24, False)], hair)  # fmt: skip
            elif ident.hair == "ponytail":
                p.ellipse(at(0.0, 0.15, False), (0.018 * h, 0.05 * h), hair)
        else:
            p.ellipse(at(0.008, 0.068, False), (0.042 * h, 0.058 * h), skin)
            p.ellipse(at(0.044, 0.072, False), (0.01 * h, 0.012 * h), skin)  # nose
            if not bald:
                p.ellipse(at(-0.006, 0.056, False), (0.044 * h, 0.05 * h), hair, start=150, end=390)
                p.ellipse(at(-0.018, 0.07, False), (0.03 * h, 0.045 * h), hair)
                if ident.hair == "long":
                    p.poly([at(-0.05, 0.05, False), at(-0.005, 0.05, False), at(-0.01, 0.23, False),
                            at(-0.062, 0.23, False)], hair)  # fmt: skip
                elif ident.hair == "ponytail":
                    p.ellipse(at(-0.058, 0.1, False), (0.016 * h, 0.045 * h), hair, angle=20)
            if h >= 70:
                p.ellipse(
                    at(0.028, 0.066, False), (0.004 * h, 0.004 * h), _c(skin, k=0.35), body=False
                )

    def headwear(self) -> None:
        p, at, h, colour = self.p, self.at, self.h, self.hat
        if self.ident.hat == "cap":
            p.ellipse(at(0.0, 0.042, False), (0.05 * h, 0.036 * h), colour, start=180, end=360)
            if self.view == "front":
                p.ellipse(at(0.0, 0.043, False), (0.054 * h, 0.011 * h), _c(colour, k=0.8))
            elif self.side:
                p.poly([at(0.02, 0.034, False), at(0.088, 0.038, False), at(0.088, 0.046, False),
                        at(0.02, 0.046, False)], _c(colour, k=0.8))  # fmt: skip
        else:
            p.ellipse(at(0.0, 0.052, False), (0.051 * h, 0.046 * h), colour, start=180, end=360)
            p.poly([at(-0.051, 0.046, False), at(0.051, 0.046, False), at(0.051, 0.062, False),
                    at(-0.051, 0.062, False)], _c(colour, k=0.85))  # fmt: skip

    def backpack(self) -> None:
        p, at, h, colour = self.p, self.at, self.h, self.bag
        if self.view == "back":
            p.poly([at(-0.09, 0.17), at(0.09, 0.17), at(0.098, 0.2), at(0.095, 0.43),
                    at(-0.095, 0.43), at(-0.098, 0.2)], colour)  # fmt: skip
            p.poly([at(-0.065, 0.3), at(0.065, 0.3), at(0.068, 0.41), at(-0.068, 0.41)],
                   _c(colour, k=0.78))  # fmt: skip
        elif self.view == "front":
            for sign in (-1.0, 1.0):
                p.line(at(0.06 * sign, 0.15), at(0.075 * sign, 0.36), 0.022 * h, _c(colour, k=0.9))
        else:
            p.poly([at(-0.07, 0.17), at(-0.155, 0.19), at(-0.165, 0.42), at(-0.07, 0.43)], colour)
            p.poly([at(-0.15, 0.27), at(-0.178, 0.28), at(-0.178, 0.4), at(-0.158, 0.41)],
                   _c(colour, k=0.78))  # fmt: skip
            p.line(at(-0.02, 0.15), at(0.01, 0.34), 0.02 * h, _c(colour, k=0.9))

    def shoulder_bag(self) -> None:
        p, at, h, colour = self.p, self.at, self.h, self.bag
        if not self.side:
            sgn = float(self.ident.bag_side) * (-1.0 if self.view == "back" else 1.0)
            p.line(at(-0.07 * sgn, 0.15), at(0.11 * sgn, 0.45), 0.016 * h, _c(colour, k=0.85))
            p.poly([at(0.08 * sgn, 0.43), at(0.19 * sgn, 0.43), at(0.19 * sgn, 0.57),
                    at(0.08 * sgn, 0.57)], colour)  # fmt: skip
        else:
            p.line(at(0.0, 0.15), at(0.02, 0.44), 0.016 * h, _c(colour, k=0.85))
            p.poly([at(-0.06, 0.43), at(0.07, 0.43), at(0.07, 0.57), at(-0.06, 0.57)], colour)

    def suitcase(self) -> None:
        p, at, h, colour = self.p, self.at, self.h, self.bag
        dark = _c(colour, k=0.7)
        if self.side:  # trailing behind
            x0, x1, y0 = -0.32, -0.17, 0.62
            p.poly([at(x0, y0), at(x1, y0), at(x1, 0.97), at(x0, 0.97)], colour, body=False)
            p.line(at(x1 - 0.01, y0), at(-0.02, 0.45), 0.012 * h, dark)
            for x in (x0 + 0.02, x1 - 0.02):
                p.ellipse(at(x, 0.98), (0.012 * h, 0.012 * h), (20, 20, 20), body=False)
        else:  # beside, on the hand's side
            sgn = float(self.ident.bag_side) * (-1.0 if self.view == "back" else 1.0)
            xa, xb = sorted((0.13 * sgn, 0.27 * sgn))
            p.poly([at(xa, 0.63), at(xb, 0.63), at(xb, 0.98), at(xa, 0.98)], colour, body=False)
            p.poly([at(xa + 0.015, 0.68), at(xa + 0.025, 0.68), at(xa + 0.025, 0.95),
                    at(xa + 0.015, 0.95)], dark, body=False)  # fmt: skip
            xm = (xa + xb) / 2
            p.poly([at(xm - 0.006, 0.47), at(xm + 0.006, 0.47), at(xm + 0.006, 0.63),
                    at(xm - 0.006, 0.63)], dark, body=False)  # fmt: skip
