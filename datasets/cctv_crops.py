"""Person crops as a CCTV camera and a person detector would produce them.

A crop is what a detector's box cut out of a camera frame: the person fills most
of its height, off-centre by a few pixels and scaled a little differently each
time, over the camera's wall and floor, sometimes partly hidden by a pillar,
another passer-by or a luggage cart, and then degraded by the camera (see
:func:`cv.datasets.cctv_camera.apply_camera`).
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from cv.datasets.cctv_camera import Camera, apply_camera, draw_background
from cv.datasets.cctv_people import (
    CLOTHING,
    Identity,
    Painter,
    View,
    draw_person,
    make_identity,
    random_pose,
)

OCCLUDERS = ("pillar", "person", "cart")
"""What can stand between a camera and a person in a crop."""


def _pillar(img: NDArray[np.uint8], cam: Camera, rng: np.random.Generator) -> None:
    """A shaded pillar covering one side of the crop."""
    w = img.shape[1]
    width = rng.uniform(0.18, 0.38) * w
    left = rng.random() < 0.5
    x0, x1 = (0.0, width) if left else (w - width, float(w))
    base = np.array(cam.wall, np.float32) * rng.uniform(0.7, 1.05)
    # Cylinder shading across the pillar.
    xs = np.arange(int(x0), int(np.ceil(x1)))
    t = (xs - x0) / max(x1 - x0, 1.0)
    shade = 0.75 + 0.35 * np.sin(np.pi * np.clip(t, 0, 1))
    band = np.clip(base[None, :] * shade[:, None], 0, 255).astype(np.uint8)
    img[:, xs[0] : xs[-1] + 1] = band[None, :, :]


def _cart(img: NDArray[np.uint8], rng: np.random.Generator) -> None:
    """A luggage cart with suitcases in front of the legs."""
    h, w = img.shape[:2]
    top = rng.uniform(0.55, 0.75) * h
    x0 = rng.uniform(-0.3, 0.2) * w
    x1 = x0 + rng.uniform(0.7, 1.1) * w
    p = Painter(img)
    metal = (int(rng.integers(120, 190)),) * 3
    p.poly(
        [(x0, top + 0.12 * h), (x1, top + 0.12 * h), (x1, top + 0.14 * h), (x0, top + 0.14 * h)],
        metal,
    )
    p.poly([(x0, 0.95 * h), (x1, 0.95 * h), (x1, 0.965 * h), (x0, 0.965 * h)], metal)
    for x in (x0 + 0.05 * w, x1 - 0.05 * w):
        p.line((x, top + 0.12 * h), (x, 0.96 * h), 0.02 * w, metal)
        p.ellipse((x, 0.975 * h), (0.03 * w, 0.03 * w), (25, 25, 25))
    # Luggage on the cart.
    x = x0 + 0.03 * w
    while x < x1 - 0.1 * w:
        bw = rng.uniform(0.25, 0.5) * w
        bh = rng.uniform(0.12, 0.3) * h
        name = list(CLOTHING)[int(rng.integers(0, len(CLOTHING)))]
        colour = CLOTHING[name]
        y1 = top + 0.12 * h
        p.poly([(x, y1 - bh), (x + bw, y1 - bh), (x + bw, y1), (x, y1)], colour)
        cv2.line(img, (int(x), int(y1 - bh)), (int(x + bw), int(y1 - bh)), (0, 0, 0), 1)
        x += bw + rng.uniform(0.0, 0.05) * w


def render_crop(
    ident: Identity,
    cam: Camera,
    rng: np.random.Generator,
    *,
    size: tuple[int, int] = (256, 128),
    view: View | None = None,
    occlusion: bool = True,
    effects: bool = True,
) -> NDArray[np.uint8]:
    """One crop of ``ident`` seen by ``cam``.

    Args:
        ident: Who.
        cam: The camera (background, viewpoints, occluders, degradation).
        rng: Source of everything that varies from one crop to the next.
        size: ``(height, width)`` of the crop in pixels.
        view: The viewpoint; by default drawn from the camera's distribution.
        occlusion: Allow an occluder (with the camera's probability).
        effects: Apply the camera's degradation; ``False`` gives the clean drawing.

    Returns:
        ``(height, width, 3) uint8`` RGB.
    """
    h, w = size
    img = draw_background(cam, w, h, rng)
    if view is None:
        view = cam.draw_view(rng)
    pose = random_pose(rng)
    person_h = h * rng.uniform(0.8, 0.93)
    foot = (w / 2 + rng.uniform(-0.07, 0.07) * w, h * rng.uniform(0.95, 0.995))
    occluder = None
    if occlusion and rng.random() < cam.occlusion:
        occluder = OCCLUDERS[int(rng.choice(3, p=[0.4, 0.35, 0.25]))]
    behind = occluder == "person" and rng.random() < 0.4
    if behind:
        _passer_by(img, cam, rng, w, h, behind=True)
    draw_person(Painter(img), ident, view, pose, foot, person_h)
    if occluder == "pillar":
        _pillar(img, cam, rng)
    elif occluder == "person" and not behind:
        _passer_by(img, cam, rng, w, h, behind=False)
    elif occluder == "cart":
        _cart(img, rng)
    return apply_camera(img, cam, rng, ref_height=256) if effects else img


def _passer_by(
    img: NDArray[np.uint8], cam: Camera, rng: np.random.Generator, w: int, h: int, *, behind: bool
) -> None:
    """Someone else walking by: smaller and behind, or nearer and in front, off-centre."""
    other = make_identity(0, rng)
    side = -1.0 if rng.random() < 0.5 else 1.0
    scale = rng.uniform(0.7, 0.9) if behind else rng.uniform(0.95, 1.15)
    foot = (
        w / 2 + side * rng.uniform(0.45, 0.75) * w,
        h * (rng.uniform(0.75, 0.9) if behind else 1.05),
    )
    draw_person(Painter(img), other, cam.draw_view(rng), random_pose(rng), foot, h * 0.88 * scale)


def render_junk(
    cam: Camera, rng: np.random.Generator, *, size: tuple[int, int] = (256, 128)
) -> NDArray[np.uint8]:
    """A bad detection (Market-1501's junk, pid -1): background, or a fragment of a body.

    Args:
        cam: The camera.
        rng: Source of randomness.
        size: ``(height, width)`` of the crop.
    """
    h, w = size
    img = draw_background(cam, w, h, rng)
    kind = rng.random()
    if kind < 0.6:
        # Too close: a torso or legs filling the crop.
        who = make_identity(0, rng)
        ph = h * rng.uniform(2.0, 3.2)
        foot = (w / 2 + rng.uniform(-0.3, 0.3) * w, h + rng.uniform(-0.2, 1.4) * h)
        draw_person(Painter(img), who, cam.draw_view(rng), random_pose(rng), foot, ph)
    elif kind < 0.8:
        # Too loose: a small person at the edge of a large box.
        who = make_identity(0, rng)
        foot = (rng.uniform(-0.1, 1.1) * w, h * rng.uniform(0.6, 1.0))
        draw_person(
            Painter(img),
            who,
            cam.draw_view(rng),
            random_pose(rng),
            foot,
            h * rng.uniform(0.25, 0.45),
        )
    elif kind < 0.9:
        _cart(img, rng)
    return apply_camera(img, cam, rng, ref_height=256)
