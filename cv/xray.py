"""Dual-energy X-ray physics: line integrals, Beer–Lambert compositing, scanner profiles
and pseudo-colour rendering.

A scan is held as two ``float32`` maps of **line integrals** ``L(E) = Σ μ_i(E) · t_i``
(dimensionless, ``μ`` in 1/cm and ``t`` in cm), one per energy channel
(:data:`cv.materials.E_LOW_KEV`, :data:`cv.materials.E_HIGH_KEV`). Transmission is
``T = exp(-L)``; stacking materials multiplies transmissions, so compositing adds line
integrals. Air is ``L = 0`` (``T = 1``).

Rendering turns the pair into what a scanner shows. The material signal is
``R = L_low / L_high`` (= ``ln T_low / ln T_high``), which rises with effective atomic
number; it picks the hue (orange organic, green mixed, blue metal). The high-energy
line integral sets the brightness (dense metal turns near-black) and how far the colour
departs from the background. How exactly is a :class:`ScannerProfile`: palettes, curves,
resolution, blur and noise differ between vendors, and a detector should see several.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import yaml
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cv.errors import ConfigError, NotFoundError
from cv.materials import Material

FloatMap = NDArray[np.float32]
"""``(H, W)`` float32 map."""
RGB = tuple[int, int, int]

DEFAULT_PROFILE = "saturated"
"""The built-in profile used where none is named (the classic orange / green / blue look)."""
MAX_ATTENUATION = 14.0
"""Largest high-energy line integral the renderer tells apart (``T ≈ 8e-7``)."""
_RATIO_MIN, _RATIO_MAX, _RATIO_BINS = 1.0, 8.5, 96
_ATT_BINS = 512
_L_FLOOR = MAX_ATTENUATION * 2
_T_FLOOR = float(np.exp(-_L_FLOOR))
_NOISE_SEED = 0x5EED_C0DE
_NOISE_MIN_SIDE = 1024


# --------------------------------------------------------------------------- images


@dataclass(slots=True)
class DualEnergy:
    """A dual-energy scan as line integrals.

    Attributes:
        low: ``(H, W)`` float32 line integrals at the low energy (>= 0).
        high: ``(H, W)`` float32 line integrals at the high energy (>= 0).
    """

    low: FloatMap
    high: FloatMap

    @classmethod
    def empty(cls, height: int, width: int) -> DualEnergy:
        """An all-air image (every line integral 0)."""
        return cls(
            np.zeros((height, width), np.float32),
            np.zeros((height, width), np.float32),
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``."""
        return self.low.shape  # type: ignore[return-value]

    def copy(self) -> DualEnergy:
        """A deep copy."""
        return DualEnergy(self.low.copy(), self.high.copy())


def composite(*images: DualEnergy) -> DualEnergy:
    """Stacks scans of the same size: transmissions multiply, so line integrals add.

    Raises:
        ValueError: If no image is given or the sizes differ.
    """
    if not images:
        raise ValueError("composite() needs at least one image")
    shape = images[0].shape
    out = images[0].copy()
    for im in images[1:]:
        if im.shape != shape:
            raise ValueError(f"cannot composite images of sizes {shape} and {im.shape}")
        out.low += im.low
        out.high += im.high
    return out


def clip_patch(
    shape: tuple[int, int], patch_shape: tuple[int, int], x: int, y: int
) -> tuple[slice, slice, slice, slice] | None:
    """Image and patch slices of a patch whose top-left corner is at ``(x, y)``."""
    h, w = shape
    ph, pw = patch_shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + pw, w), min(y + ph, h)
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1), slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)


def add_material(
    image: DualEnergy, material: Material, thickness: FloatMap, *, x: int = 0, y: int = 0
) -> None:
    """Adds a layer of ``material`` to ``image`` in place.

    Args:
        image: The scan to add to.
        material: What the layer is made of.
        thickness: ``(h, w)`` float32 path length through the layer in cm (>= 0),
            one value per pixel of the patch.
        x: Column of the patch's left edge in ``image`` (may be negative or run
            past the edge: the outside part is dropped).
        y: Row of the patch's top edge.
    """
    sl = clip_patch(image.shape, thickness.shape, x, y)
    if sl is None:
        return
    iy, ix, py, px = sl
    t = thickness[py, px]
    image.low[iy, ix] += np.float32(material.mu_low) * t
    image.high[iy, ix] += np.float32(material.mu_high) * t


def add_line_integrals(
    image: DualEnergy, low: FloatMap, high: FloatMap, *, x: int = 0, y: int = 0
) -> None:
    """Adds a patch of precomputed line integrals to ``image`` in place.

    Args:
        image: The scan to add to.
        low: ``(h, w)`` float32 low-energy line integrals of the patch.
        high: ``(h, w)`` float32 high-energy line integrals of the patch (same shape).
        x: Column of the patch's left edge in ``image`` (parts outside are dropped).
        y: Row of the patch's top edge.
    """
    sl = clip_patch(image.shape, high.shape, x, y)
    if sl is None:
        return
    iy, ix, py, px = sl
    image.low[iy, ix] += low[py, px]
    image.high[iy, ix] += high[py, px]


def line_integrals(material: Material, thickness: float | FloatMap) -> tuple[float, float]:
    """``(L_low, L_high)`` of ``thickness`` cm of ``material`` (scalar thickness only)."""
    t = float(np.asarray(thickness))
    return material.mu_low * t, material.mu_high * t


def transmission(image: DualEnergy) -> tuple[FloatMap, FloatMap]:
    """``(T_low, T_high) = exp(-L)``: the fraction of photons that get through."""
    return np.exp(-image.low), np.exp(-image.high)


def material_ratio(image: DualEnergy, *, min_attenuation: float = 1e-3) -> FloatMap:
    """``R = ln T_low / ln T_high`` per pixel; 0 where the high-energy line integral is
    below ``min_attenuation`` (air)."""
    out = np.zeros(image.shape, np.float32)
    m = image.high > min_attenuation
    out[m] = image.low[m] / image.high[m]
    return out


# ------------------------------------------------------------------------- profiles


class ScannerProfile(BaseModel):
    """How one kind of scanner shows a dual-energy scan.

    Attributes:
        name: Short name (the YAML file's stem for built-in profiles).
        description: One line for ``customs-vision data profiles``.
        background: RGB of air (nothing in the beam).
        organic: RGB hue of organics (low ``R``), at full colour.
        mixed: RGB hue of mixed / light inorganic material.
        metal: RGB hue of metals (high ``R``).
        organic_ratio: ``R`` at and below which the hue is pure ``organic``.
        metal_ratio: ``R`` at and above which the hue is pure ``metal``; ``mixed`` sits
            half way between the two.
        half_attenuation: High-energy line integral at which brightness halves.
        gamma: Steepness of the brightness curve
            ``1 / (1 + (L / half_attenuation) ** gamma)``: larger is harsher.
        contrast: How fast colour replaces the background as attenuation grows:
            colourfulness is ``1 - exp(-contrast · L)``.
        saturation: Largest colourfulness, 0-1 (pale palettes are below 1).
        resolution_scale: Detector resolution relative to the image grid, 0.25-1
            (below 1 the scan is sampled coarser and scaled back up).
        blur_sigma: Gaussian point-spread function, in detector pixels.
        noise: Standard deviation of detector noise at full transmission; it scales
            with ``sqrt(T)`` like photon noise.
        channel_noise: Extra noise of the low-energy channel alone, which makes the
            material ratio (the hue) noisy.
        stripe_noise: Gain spread between detector elements (faint streaks along
            the belt direction).
        hue_shift: Degrees added to the hue of the three anchors.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    background: RGB = (250, 250, 248)
    organic: RGB = (255, 150, 40)
    mixed: RGB = (60, 200, 70)
    metal: RGB = (40, 90, 230)
    organic_ratio: float = Field(default=1.7, gt=1.0)
    metal_ratio: float = Field(default=4.3, gt=1.0)
    half_attenuation: float = Field(default=2.0, gt=0)
    gamma: float = Field(default=1.6, gt=0.2, le=6)
    contrast: float = Field(default=3.0, gt=0)
    saturation: float = Field(default=1.0, gt=0, le=1)
    resolution_scale: float = Field(default=1.0, ge=0.25, le=1.0)
    blur_sigma: float = Field(default=0.6, ge=0, le=5)
    noise: float = Field(default=0.01, ge=0, le=0.2)
    channel_noise: float = Field(default=0.0, ge=0, le=0.2)
    stripe_noise: float = Field(default=0.0, ge=0, le=0.1)
    hue_shift: float = Field(default=0.0, ge=-60, le=60)

    @model_validator(mode="after")
    def _check(self) -> ScannerProfile:
        for key in ("background", "organic", "mixed", "metal"):
            if any(not 0 <= c <= 255 for c in getattr(self, key)):
                raise ValueError(f"{key}: RGB values must lie in 0..255")
        if self.metal_ratio <= self.organic_ratio:
            raise ValueError("metal_ratio must be greater than organic_ratio")
        return self


def _profiles_dir() -> Path:
    return Path(str(resources.files("cv"))) / "profiles"


def list_profiles() -> list[str]:
    """Names of the built-in scanner profiles, sorted."""
    return sorted(p.stem for p in _profiles_dir().glob("*.yaml"))


def _yaml_line(path: Path, key: str) -> int | None:
    """1-based line of a top-level ``key:`` in a YAML file, for error messages."""
    try:
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.split("#", 1)[0].strip().startswith(f"{key}:"):
                return i
    except OSError:
        return None
    return None


def profile_from_yaml(path: str | PathLike[str]) -> ScannerProfile:
    """Reads and validates a scanner profile from a YAML file.

    The profile's ``name`` defaults to the file's stem.

    Raises:
        NotFoundError: If the file does not exist.
        ConfigError: If it is not YAML, not a mapping, or a field is invalid (the
            message names the file, line and field).
    """
    p = Path(path)
    if not p.is_file():
        raise NotFoundError("scanner profile file does not exist", path=p)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"not valid YAML ({exc})", path=p, line=line) from None
    if not isinstance(data, dict):
        raise ConfigError("a scanner profile must be a YAML mapping", path=p)
    data.setdefault("name", p.stem)
    try:
        return ScannerProfile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(x) for x in err["loc"]]
        field = ".".join(loc) if loc else None
        line = _yaml_line(p, loc[0]) if loc else None
        raise ConfigError(err["msg"], path=p, line=line, field=field) from None


def load_profile(name_or_path: str | PathLike[str]) -> ScannerProfile:
    """A built-in profile by name, or a user's profile from a YAML file path.

    Raises:
        NotFoundError: If it is neither a built-in name nor an existing file.
        ConfigError: If the file is invalid.
    """
    s = str(name_or_path)
    builtin = _profiles_dir() / f"{s}.yaml"
    if "/" not in s and not s.endswith((".yaml", ".yml")) and builtin.is_file():
        return profile_from_yaml(builtin)
    p = Path(s)
    if p.is_file():
        return profile_from_yaml(p)
    raise NotFoundError(
        f"no scanner profile {s!r}: not a built-in ({', '.join(list_profiles())}) nor a YAML file"
    )


# ------------------------------------------------------------------------ rendering


def _shift_hue(rgb: RGB, degrees: float) -> np.ndarray:
    h, s, v = colorsys.rgb_to_hsv(*(c / 255.0 for c in rgb))
    r, g, b = colorsys.hsv_to_rgb((h + degrees / 360.0) % 1.0, s, v)
    return np.array([r, g, b]) * 255.0


def _attenuation_axis() -> np.ndarray:
    # Square-root spacing: most of the visible detail is at small attenuation.
    return (np.arange(_ATT_BINS) / (_ATT_BINS - 1)) ** 2 * MAX_ATTENUATION


def brightness(attenuation: np.ndarray, profile: ScannerProfile) -> np.ndarray:
    """The profile's brightness curve, 1 for air falling towards 0 for dense metal."""
    a = np.asarray(attenuation, np.float64) / profile.half_attenuation
    return 1.0 / (1.0 + np.power(np.maximum(a, 0), profile.gamma))


@lru_cache(maxsize=64)
def _palette_lut(profile: ScannerProfile) -> np.ndarray:
    """``(ratio bins · attenuation bins, 3)`` uint8 colour table of a profile."""
    ratios = np.linspace(_RATIO_MIN, _RATIO_MAX, _RATIO_BINS)
    anchors = np.stack(
        [_shift_hue(c, profile.hue_shift) for c in (profile.organic, profile.mixed, profile.metal)]
    )
    r_mid = (profile.organic_ratio + profile.metal_ratio) / 2
    xs = [profile.organic_ratio, r_mid, profile.metal_ratio]
    hue = np.stack([np.interp(ratios, xs, anchors[:, c]) for c in range(3)], axis=1)
    att = _attenuation_axis()
    colour = profile.saturation * (1.0 - np.exp(-profile.contrast * att))
    value = brightness(att, profile)
    bg = np.array(profile.background, np.float64)
    rgb = bg[None, None, :] * (1 - colour[None, :, None]) + hue[:, None, :] * colour[None, :, None]
    rgb = rgb * value[None, :, None]
    # Material never brightens a channel: keep every colour at or below air.
    rgb = np.minimum(rgb, bg[None, None, :])
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8).reshape(-1, 3)


@lru_cache(maxsize=2)
def _noise_field(side: int) -> NDArray[np.float32]:
    """``(2, side, side)`` float32 standard-normal noise, the same in every process.

    Drawing fresh Gaussian noise for every scan costs more than the rest of the
    rendering; slicing this fixed field at a random offset and orientation (drawn from
    the scan's own generator) is as random to a detector and stays deterministic.
    """
    rng = np.random.default_rng(np.random.SeedSequence([_NOISE_SEED, side]))
    return rng.standard_normal((2, side, side), dtype=np.float32)


def _noise_patch(
    rng: np.random.Generator, channel: int, shape: tuple[int, int]
) -> NDArray[np.float32]:
    """An ``shape`` view of standard-normal noise at a random offset and flip."""
    h, w = shape
    side = max(_NOISE_MIN_SIDE, -(-(max(h, w) + 256) // 256) * 256)
    field = _noise_field(side)[channel]
    oy, ox, flip = rng.integers(0, side - h + 1), rng.integers(0, side - w + 1), rng.integers(0, 4)
    patch = field[oy : oy + h, ox : ox + w]
    if flip & 1:
        patch = patch[::-1]
    if flip & 2:
        patch = patch[:, ::-1]
    return patch


def _detected(
    image: DualEnergy, profile: ScannerProfile, rng: np.random.Generator | None
) -> tuple[FloatMap, FloatMap]:
    """What the detector measures: line integrals after resolution, blur and noise."""
    h, w = image.shape
    out = []
    small = (
        max(1, round(w * profile.resolution_scale)),
        max(1, round(h * profile.resolution_scale)),
    )
    stripes = None
    if rng is not None and profile.stripe_noise > 0:
        stripes = 1 + rng.standard_normal(small[0], dtype=np.float32) * profile.stripe_noise
    for k, lmap in enumerate((image.low, image.high)):
        t = cv2.exp(-lmap)
        if small != (w, h):
            t = cv2.resize(t, small, interpolation=cv2.INTER_AREA)
        if profile.blur_sigma > 0:
            t = cv2.GaussianBlur(t, (0, 0), profile.blur_sigma)
        if rng is not None:
            sigma = profile.noise + (profile.channel_noise if k == 0 else 0.0)
            if sigma > 0:
                # Photon noise: its standard deviation grows as sqrt(T).
                n = _noise_patch(rng, k, t.shape)
                t = t + n * cv2.sqrt(t) * np.float32(sigma)
            if stripes is not None:
                t = t * stripes[None, :]
        if small != (w, h):
            t = cv2.resize(t, (w, h), interpolation=cv2.INTER_LINEAR)
        np.clip(t, _T_FLOOR, 1.0, out=t)
        lo = cv2.log(t)
        np.negative(lo, out=lo)
        out.append(lo)
    return out[0], out[1]


def render_pseudocolor(
    low: FloatMap, high: FloatMap, profile: ScannerProfile, rng: np.random.Generator | None
) -> NDArray[np.uint8]:
    """Renders a dual-energy scan in the profile's pseudo-colours.

    Args:
        low: ``(H, W)`` float32 low-energy line integrals.
        high: ``(H, W)`` float32 high-energy line integrals.
        profile: The scanner's look.
        rng: Source of detector noise; ``None`` renders without noise (library
            cut-outs, tests).

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    lo, hi = _detected(DualEnergy(low, high), profile, rng)
    ratio = lo / np.maximum(hi, np.float32(1e-4))
    # Where the low channel is at the detector floor the ratio is unmeasurable, and
    # only dense metal gets there: show it as metal rather than as a falsely low ratio.
    ratio[lo >= np.float32(_L_FLOOR * 0.999)] = _RATIO_MAX
    r_idx = (ratio - _RATIO_MIN) * np.float32((_RATIO_BINS - 1) / (_RATIO_MAX - _RATIO_MIN))
    np.clip(r_idx, 0, _RATIO_BINS - 1, out=r_idx)
    a_idx = np.sqrt(np.clip(hi, 0, MAX_ATTENUATION) * np.float32(1 / MAX_ATTENUATION))
    a_idx *= np.float32(_ATT_BINS - 1)
    idx = (r_idx + np.float32(0.5)).astype(np.int32) * _ATT_BINS + (a_idx + 0.5).astype(np.int32)
    return np.take(_palette_lut(profile), idx, axis=0)


def render_grey(
    low: FloatMap,
    high: FloatMap,
    profile: ScannerProfile,
    rng: np.random.Generator | None,
    *,
    energy: Literal["low", "high"] = "high",
    dtype: Literal["uint8", "uint16"] = "uint8",
) -> NDArray:
    """Renders one energy channel as a grey-scale image (single-energy scanners).

    Args:
        low: ``(H, W)`` float32 low-energy line integrals.
        high: ``(H, W)`` float32 high-energy line integrals.
        profile: Resolution, blur, noise and brightness curve; its palette is unused
            except the background's lightness.
        rng: Source of detector noise, or ``None``.
        energy: Which channel to show.
        dtype: ``uint8`` or ``uint16``.

    Returns:
        ``(H, W)`` grey image; air is the background's lightness.
    """
    lo, hi = _detected(DualEnergy(low, high), profile, rng)
    lmap = hi if energy == "high" else lo
    top = 255 if dtype == "uint8" else 65535
    bg = float(np.mean(profile.background)) / 255.0 * top
    att = _attenuation_axis()
    curve = brightness(att, profile).astype(np.float32) * np.float32(bg)
    a_idx = np.sqrt(np.clip(lmap, 0, MAX_ATTENUATION) * np.float32(1 / MAX_ATTENUATION))
    a_idx *= np.float32(_ATT_BINS - 1)
    values = np.take(curve, (a_idx + 0.5).astype(np.int32))
    return np.rint(values).astype(np.uint8 if dtype == "uint8" else np.uint16)


def hue_of(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Hue in degrees 0-360 of RGB pixels (``(..., 3)`` uint8), for checks and tests."""
    arr = np.asarray(rgb, np.uint8).reshape(-1, 1, 3)
    hsv = cv2.cvtColor(arr, cv2.COLOR_RGB2HSV_FULL)
    return (hsv[..., 0].astype(np.float32) * (360.0 / 256.0)).reshape(np.shape(rgb)[:-1])
