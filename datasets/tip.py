"""Threat image projection (TIP): inserting threat items into existing scans.

Airports keep screeners alert by projecting stored threat images into real bag
images. In image space Beer–Lambert says that stacking multiplies transmissions, so
a cut-out of the threat rendered alone on air projects as

    ``I_out = I_bag · I_threat / I_air``

per colour channel, in linear floats (``I / 255``). The factor ``I_threat / I_air`` is
clipped to at most 1, so projecting never brightens a pixel.

A threat library is a folder of cut-outs (``<id>.png``: the threat rendered alone,
noise-free, by a scanner profile) and ``library.json`` listing each one's class, box
inside the cut-out, profile and air colour.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cv.datasets import shapes as S
from cv.errors import ConfigError, DataFormatError, NotFoundError
from cv.image import read_image, write_image
from cv.log import progress
from cv.records import SPLITS, Annotation, Dataset, ImageRecord
from cv.taxonomy import category_id
from cv.xray import DualEnergy, ScannerProfile, list_profiles, load_profile, render_pseudocolor

LIBRARY_FILE = "library.json"


@dataclass(frozen=True, slots=True)
class Cutout:
    """One threat of a library.

    Attributes:
        file: PNG path, relative to the library folder.
        category: Taxonomy class.
        box: ``xyxy`` box of the threat inside the cut-out image.
        air: RGB of air in the cut-out.
        profile: Scanner profile it was rendered with.
    """

    file: str
    category: str
    box: tuple[float, float, float, float]
    air: tuple[int, int, int]
    profile: str


@dataclass(frozen=True, slots=True)
class ThreatLibrary:
    """A loaded threat library.

    Attributes:
        root: Its folder.
        cutouts: Its threats.
    """

    root: Path
    cutouts: tuple[Cutout, ...]

    def image(self, cutout: Cutout) -> NDArray[np.uint8]:
        """The cut-out's RGB image."""
        return read_image(self.root / cutout.file)


def make_threat_library(
    out_dir: Path,
    *,
    n: int,
    classes: Sequence[str] | None = None,
    profiles: Sequence[str | ScannerProfile] | None = None,
    seed: int = 0,
    px_per_mm: tuple[float, float] = (0.75, 1.25),
) -> Path:
    """Renders ``n`` threat cut-outs, each alone on air, and writes the library.

    Args:
        out_dir: Library folder (created).
        n: Number of cut-outs.
        classes: Taxonomy classes to draw from; by default every generated class.
        profiles: Scanner profiles (names, paths or profiles); by default all built-in.
        seed: Seed; cut-out ``i`` uses ``SeedSequence([seed, i])``.
        px_per_mm: Range of pixels per mm to render at.

    Returns:
        The path of ``library.json``.

    Raises:
        ConfigError: If ``n`` < 1 or a class is unknown.
    """
    from cv.datasets.synth import TARGET_CLASSES

    if n < 1:
        raise ConfigError(f"library size must be >= 1, got {n}", field="images")
    cls = list(classes or TARGET_CLASSES)
    bad = [c for c in cls if c not in S.TARGET_BUILDERS]
    if bad:
        raise ConfigError(
            f"cannot render class(es) {bad}; known: {', '.join(TARGET_CLASSES)}", field="classes"
        )
    profs = [
        p if isinstance(p, ScannerProfile) else load_profile(p)
        for p in (profiles or list_profiles())
    ]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    with progress() as bar:
        task = bar.add_task("rendering threats", total=n)
        for i in range(n):
            rng = np.random.default_rng(np.random.SeedSequence([seed, i]))
            category = cls[int(rng.integers(0, len(cls)))]
            profile = profs[int(rng.integers(0, len(profs)))]
            shape = S.TARGET_BUILDERS[category](rng)
            scale = float(rng.uniform(*px_per_mm))
            radius = max(
                float(
                    np.abs(np.concatenate([p for part in shape.parts for p in part.polygons])).max()
                ),
                1.0,
            )
            side = int(2 * radius * scale) + 16
            image = DualEnergy.empty(side, side)
            placed = S.rasterise(
                shape,
                image,
                scale=scale,
                angle=float(rng.uniform(0, 360)),
                center=(side / 2, side / 2),
                rng=rng,
            )
            box = placed.box(side, side)
            assert box is not None
            # A few pixels of margin keep the blurred edge of the threat in the cut-out.
            m = 4
            x0, y0 = max(int(box[0]) - m, 0), max(int(box[1]) - m, 0)
            x1, y1 = min(int(box[2]) + m, side), min(int(box[3]) + m, side)
            rgb = render_pseudocolor(image.low, image.high, profile, None)[y0:y1, x0:x1]
            name = f"{i:06d}_{category}.png"
            write_image(out_dir / name, rgb)
            entries.append(
                {
                    "file": name,
                    "category": category,
                    "box": [box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0],
                    "air": list(profile.background),
                    "profile": profile.name,
                }
            )
            bar.advance(task)
    path = out_dir / LIBRARY_FILE
    path.write_text(json.dumps({"seed": seed, "threats": entries}, indent=1), encoding="utf-8")
    return path


def load_library(path: Path) -> ThreatLibrary:
    """Reads a threat library folder (or its ``library.json``).

    Raises:
        NotFoundError: If there is no ``library.json``.
        DataFormatError: If it is malformed (the message names the entry and field).
    """
    p = Path(path)
    if p.is_dir():
        p = p / LIBRARY_FILE
    if not p.is_file():
        raise NotFoundError("threat library not found (no library.json)", path=p)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
        items = doc["threats"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataFormatError(f"not a threat library ({exc})", path=p) from None
    cutouts = []
    for k, e in enumerate(items):
        try:
            cutouts.append(
                Cutout(
                    file=str(e["file"]),
                    category=str(e["category"]),
                    box=tuple(float(v) for v in e["box"]),  # type: ignore[arg-type]
                    air=tuple(int(v) for v in e["air"]),  # type: ignore[arg-type]
                    profile=str(e.get("profile", "")),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(f"bad entry ({exc})", path=p, field=f"threats[{k}]") from None
    if not cutouts:
        raise DataFormatError("threat library is empty", path=p, field="threats")
    return ThreatLibrary(root=p.parent, cutouts=tuple(cutouts))


def project_threat(
    scan_rgb: NDArray[np.uint8],
    cutout_rgb: NDArray[np.uint8],
    *,
    air_rgb: Sequence[int],
    position: tuple[int, int],
    cutout_box: Sequence[float] | None = None,
) -> tuple[NDArray[np.uint8], tuple[float, float, float, float] | None]:
    """Projects one cut-out into a scan (Beer–Lambert in image space).

    Args:
        scan_rgb: ``(H, W, 3)`` uint8 RGB scan (not modified).
        cutout_rgb: ``(h, w, 3)`` uint8 RGB threat rendered alone on air.
        air_rgb: The cut-out's air colour.
        position: ``(x, y)`` of the cut-out's top-left corner in the scan; parts
            outside the scan are dropped.
        cutout_box: ``xyxy`` box of the threat inside the cut-out; by default the
            extent of the pixels darker than air.

    Returns:
        ``(image, box)``: the new scan and the threat's ``xyxy`` box in it, clipped to
        the scan (``None`` if the threat falls outside it).
    """
    if scan_rgb.ndim != 3 or scan_rgb.shape[2] != 3 or scan_rgb.dtype != np.uint8:
        raise ValueError(f"scan must be (H, W, 3) uint8 RGB, got {scan_rgb.shape} {scan_rgb.dtype}")
    air = np.maximum(np.asarray(air_rgb, np.float32), 1.0)
    factor = np.minimum(cutout_rgb.astype(np.float32) / air, 1.0)
    if cutout_box is None:
        ys, xs = np.nonzero((factor < 1.0 - 1.5 / 255).any(axis=2))
        if len(xs) == 0:
            return scan_rgb.copy(), None
        cutout_box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    h, w = scan_rgb.shape[:2]
    ch, cw = cutout_rgb.shape[:2]
    x, y = position
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + cw, w), min(y + ch, h)
    out = scan_rgb.copy()
    if x0 < x1 and y0 < y1:
        f = factor[y0 - y : y1 - y, x0 - x : x1 - x]
        region = out[y0:y1, x0:x1].astype(np.float32) * f
        out[y0:y1, x0:x1] = np.clip(np.rint(region), 0, 255).astype(np.uint8)
    bx0 = min(max(cutout_box[0] + x, 0), w)
    by0 = min(max(cutout_box[1] + y, 0), h)
    bx1 = min(max(cutout_box[2] + x, 0), w)
    by1 = min(max(cutout_box[3] + y, 0), h)
    if bx1 <= bx0 or by1 <= by0:
        return out, None
    return out, (float(bx0), float(by0), float(bx1), float(by1))


def bag_region(scan_rgb: NDArray[np.uint8], *, tolerance: int = 18) -> NDArray[np.bool_]:
    """Pixels that are not background: farther than ``tolerance`` from the colour of the
    scan's border (the median of its outermost rows and columns)."""
    border = np.concatenate([scan_rgb[0], scan_rgb[-1], scan_rgb[:, 0], scan_rgb[:, -1]])
    bg = np.median(border, axis=0)
    return np.abs(scan_rgb.astype(np.int16) - bg.astype(np.int16)).max(axis=2) > tolerance


def project_into_scan(
    scan: NDArray[np.uint8],
    library: ThreatLibrary,
    *,
    n_threats: int,
    rng: np.random.Generator,
    tries: int = 20,
) -> tuple[NDArray[np.uint8], list[Annotation]]:
    """Projects ``n_threats`` random library threats into a scan.

    Each threat is placed where its box lies inside the bag region (non-background
    pixels) when such a place is found in ``tries`` random positions; otherwise at
    the position with the most of its box inside the bag.

    Returns:
        ``(image, annotations)``; annotations are in ``plain_view`` with unknown
        occlusion.
    """
    h, w = scan.shape[:2]
    region = bag_region(scan)
    integral = np.pad(region.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    ys, xs = np.nonzero(region)
    if len(xs):
        rx0, rx1, ry0, ry1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    else:
        rx0, rx1, ry0, ry1 = 0, w, 0, h
    out = scan
    anns: list[Annotation] = []
    for _ in range(n_threats):
        cut = library.cutouts[int(rng.integers(0, len(library.cutouts)))]
        img = library.image(cut)
        bx0, by0, bx1, by1 = (round(v) for v in cut.box)
        best, best_score = (0, 0), -1.0
        # Search inside the bag's bounding rectangle when the box fits in it.
        lo_x, hi_x = (rx0 - bx0, rx1 - bx1) if rx1 - rx0 >= bx1 - bx0 else (-bx0, w - bx1)
        lo_y, hi_y = (ry0 - by0, ry1 - by1) if ry1 - ry0 >= by1 - by0 else (-by0, h - by1)
        for _ in range(tries):
            x = int(rng.integers(lo_x, max(hi_x, lo_x) + 1))
            y = int(rng.integers(lo_y, max(hi_y, lo_y) + 1))
            X0, Y0 = min(max(x + bx0, 0), w), min(max(y + by0, 0), h)
            X1, Y1 = min(max(x + bx1, 0), w), min(max(y + by1, 0), h)
            area = max((X1 - X0) * (Y1 - Y0), 1)
            inside = integral[Y1, X1] - integral[Y0, X1] - integral[Y1, X0] + integral[Y0, X0]
            score = inside / area
            if score > best_score:
                best, best_score = (x, y), score
            if score >= 0.98:
                break
        out, box = project_threat(out, img, air_rgb=cut.air, position=best, cutout_box=cut.box)
        if box is not None:
            anns.append(
                Annotation(
                    box=box,
                    category=cut.category,
                    original_name=cut.category,
                    concealment="plain_view",
                )
            )
    return (out if out is not scan else scan.copy()), anns


def run_tip(
    scans: Path,
    library: Path,
    out_dir: Path,
    *,
    threats: tuple[int, int] = (1, 2),
    seed: int = 0,
    split: str = "train",
    clean: float = 0.0,
) -> Dataset:
    """Projects library threats into every scan of a file or folder and writes the result
    like ``data synth`` (``images/<split>/``, YOLO, ``annotations/<split>.json``).

    With ``clean``, that share of the scans (drawn per scan) is written as it is,
    without a threat: a set of a site's own clean bags becomes a calibration set of
    clean and threat bags from its own scanner, on which ``eval xray`` chooses
    thresholds per clean bag.

    Raises:
        NotFoundError: If ``scans`` has no images or the library is missing.
        ImageReadError: If a scan cannot be read.
        ConfigError: If ``threats``, ``split`` or ``clean`` is invalid.
    """
    from cv.datasets.formats.coco import write_coco
    from cv.datasets.formats.yolo import write_yolo
    from cv.image import IMAGE_SUFFIXES

    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}", field="split")
    if threats[0] < 1 or threats[1] < threats[0]:
        raise ConfigError(f"threats must be a range 1 <= lo <= hi, got {threats}", field="threats")
    if not 0.0 <= clean <= 1.0:
        raise ConfigError(f"clean must be a share in [0, 1], got {clean}", field="clean")
    scans = Path(scans)
    if scans.is_dir():
        files = sorted(p for p in scans.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    elif scans.exists():
        files = [scans]
    else:
        raise NotFoundError("scan file or folder does not exist", path=scans)
    if not files:
        raise NotFoundError("no scan images in folder", path=scans)
    lib = load_library(library)
    out_dir = Path(out_dir)
    records: list[ImageRecord] = []
    with progress() as bar:
        task = bar.add_task("projecting threats", total=len(files))
        for i, f in enumerate(files):
            scan = read_image(f)
            # Its own stream, so that the projected scans do not change with ``clean``.
            left_clean = np.random.default_rng(np.random.SeedSequence([seed, i, 1])).random()
            if left_clean < clean:
                img, anns = scan, []
            else:
                rng = np.random.default_rng(np.random.SeedSequence([seed, i]))
                n = int(rng.integers(threats[0], threats[1] + 1))
                img, anns = project_into_scan(scan, lib, n_threats=n, rng=rng)
            name = f"images/{split}/{i:06d}_{f.stem}.png"
            write_image(out_dir / name, img)
            records.append(
                ImageRecord(
                    file=name,
                    width=img.shape[1],
                    height=img.shape[0],
                    annotations=anns,
                    split=split,
                    source="tip",  # type: ignore[arg-type]
                    meta={"scan": str(f), "seed": [seed, i]},
                )
            )
            bar.advance(task)
    classes = sorted({c.category for c in lib.cutouts}, key=lambda c: category_id(c))
    ds = Dataset(name="tip", images=records, root=out_dir, classes=classes)
    write_yolo(ds, out_dir, classes=classes)
    write_coco(ds, out_dir / "annotations" / f"{split}.json", classes=classes, split=split)
    return ds
