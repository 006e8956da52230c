"""Physics core: attenuation model, Beer–Lambert compositing, profiles, rendering."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from cv.errors import ConfigError, NotFoundError
from cv.materials import (
    AVOGADRO,
    E_HIGH_KEV,
    E_LOW_KEV,
    MATERIALS,
    klein_nishina_cross_section,
    mass_attenuation,
)
from cv.xray import (
    DEFAULT_PROFILE,
    DualEnergy,
    add_material,
    composite,
    hue_of,
    list_profiles,
    load_profile,
    material_ratio,
    profile_from_yaml,
    render_grey,
    render_pseudocolor,
    transmission,
)


def slab(name: str, thickness: float, size: int = 16) -> DualEnergy:
    im = DualEnergy.empty(size, size)
    add_material(im, MATERIALS[name], np.full((size, size), thickness, np.float32))
    return im


def test_klein_nishina_tends_to_thomson_at_low_energy() -> None:
    thomson = 8 * math.pi / 3 * (2.8179403262e-13) ** 2  # 6.6525e-25 cm²
    assert klein_nishina_cross_section(0.01) == pytest.approx(thomson, rel=1e-3)
    # Known value at 100 keV: 0.4927 barn per electron (Hubbell's tables).
    assert klein_nishina_cross_section(100.0) == pytest.approx(0.4927e-24, rel=0.01)


def test_water_compton_part_matches_hand_value() -> None:
    # Water at 90 keV: N_A * Z/A * sigma_KN = 6.022e23 * 0.555 * ~0.508e-24 = ~0.170 cm²/g,
    # plus a photo-electric part 28 * 0.555 * 7.4^3 / 90^3 = ~0.0086 cm²/g.
    compton = AVOGADRO * 0.555 * klein_nishina_cross_section(90.0)
    photo = 28.0 * 0.555 * 7.4**3 / 90.0**3
    assert photo == pytest.approx(0.00858, rel=0.01)
    assert mass_attenuation(7.4, 90.0, z_over_a=0.555) == pytest.approx(compton + photo)
    assert 0.16 < compton < 0.18


def test_ratio_rises_with_z_eff() -> None:
    zs = np.linspace(5, 82, 40)
    r = [mass_attenuation(z, E_LOW_KEV) / mass_attenuation(z, E_HIGH_KEV) for z in zs]
    assert all(b > a for a, b in itertools.pairwise(r))
    by_z = sorted(MATERIALS.values(), key=lambda m: m.z_eff)
    groups = {"organic": 0, "inorganic": 1, "metal": 2}
    for a, b in itertools.pairwise(by_z):
        if groups[b.group] > groups[a.group]:
            assert b.ratio > a.ratio, (a.name, b.name)
    assert max(m.ratio for m in MATERIALS.values() if m.group == "organic") < 1.6
    assert min(m.ratio for m in MATERIALS.values() if m.group == "metal") > 5.0


def test_ratio_of_slab_is_independent_of_thickness() -> None:
    for t in (0.1, 1.0, 5.0):
        r = material_ratio(slab("aluminium", t))
        assert np.allclose(r, MATERIALS["aluminium"].ratio, rtol=1e-5)


def test_adding_material_never_raises_transmission() -> None:
    rng = np.random.default_rng(0)
    names = list(MATERIALS)
    im = DualEnergy.empty(24, 24)
    for _ in range(200):
        before = transmission(im)
        m = MATERIALS[names[int(rng.integers(len(names)))]]
        h, w = (int(v) for v in rng.integers(1, 24, 2))
        t = rng.uniform(0, 3, (h, w)).astype(np.float32)
        add_material(im, m, t, x=int(rng.integers(-10, 24)), y=int(rng.integers(-10, 24)))
        after = transmission(im)
        assert (after[0] <= before[0]).all() and (after[1] <= before[1]).all()


def test_add_material_clips_at_the_edge_and_adds_exact_line_integrals() -> None:
    im = DualEnergy.empty(4, 4)
    add_material(im, MATERIALS["steel"], np.full((2, 3), 0.5, np.float32), x=2, y=-1)
    expected = np.zeros((4, 4), np.float32)
    expected[0, 2:4] = np.float32(MATERIALS["steel"].mu_high) * np.float32(0.5)
    np.testing.assert_array_equal(im.high, expected)
    assert im.low[0, 3] == pytest.approx(MATERIALS["steel"].mu_low * 0.5, rel=1e-6)


def test_composite_with_empty_changes_nothing_and_adds_otherwise() -> None:
    rng = np.random.default_rng(1)
    a = DualEnergy(
        rng.uniform(0, 5, (8, 9)).astype(np.float32), rng.uniform(0, 2, (8, 9)).astype(np.float32)
    )
    same = composite(a, DualEnergy.empty(8, 9))
    np.testing.assert_array_equal(same.low, a.low)
    np.testing.assert_array_equal(same.high, a.high)
    twice = composite(a, a)
    np.testing.assert_array_equal(twice.high, a.high + a.high)
    with pytest.raises(ValueError):
        composite(a, DualEnergy.empty(3, 3))


def test_steel_renders_blue_and_organics_orange_in_default_profile() -> None:
    p = load_profile(DEFAULT_PROFILE)
    rng = np.random.default_rng(2)
    steel = render_pseudocolor(*_pair(slab("steel", 0.2, 32)), p, rng)
    water = render_pseudocolor(*_pair(slab("water", 5.0, 32)), p, rng)
    glass = render_pseudocolor(*_pair(slab("glass", 1.0, 32)), p, None)
    inner = (slice(4, -4), slice(4, -4))
    hs, hw, hg = (float(np.median(hue_of(x[inner]))) for x in (steel, water, glass))
    assert 200 <= hs <= 250  # blue
    assert 15 <= hw <= 45  # orange
    assert 60 <= hg <= 160  # green / yellow-green: mixed
    assert steel[inner][..., 2].mean() > steel[inner][..., 0].mean() + 60


def _pair(im: DualEnergy) -> tuple[np.ndarray, np.ndarray]:
    return im.low, im.high


def test_air_is_background_and_dense_metal_near_black() -> None:
    for name in list_profiles():
        p = load_profile(name)
        air = render_pseudocolor(*_pair(DualEnergy.empty(8, 8)), p, None)
        assert (air == np.array(p.background, np.uint8)).all()
        lead = render_pseudocolor(*_pair(slab("lead", 0.6, 8)), p, None)
        assert lead.max() < 50
        # Brightness falls as material is added: thicker steel is darker.
        thin = render_pseudocolor(*_pair(slab("steel", 0.1, 8)), p, None).astype(int).sum()
        thick = render_pseudocolor(*_pair(slab("steel", 0.4, 8)), p, None).astype(int).sum()
        assert thick < thin


def test_render_grey_depths() -> None:
    p = load_profile("hires")
    im = slab("aluminium", 1.0, 8)
    g8 = render_grey(im.low, im.high, p, None)
    g16 = render_grey(im.low, im.high, p, None, dtype="uint16")
    assert g8.dtype == np.uint8 and g8.shape == (8, 8)
    assert g16.dtype == np.uint16
    air = render_grey(*_pair(DualEnergy.empty(4, 4)), p, None)
    assert (air == 255).all() and g8.max() < 255
    assert abs(int(g16[0, 0]) / 257 - int(g8[0, 0])) <= 1


def test_every_builtin_profile_loads_and_profiles_differ() -> None:
    names = list_profiles()
    assert len(names) >= 4
    profiles = [load_profile(n) for n in names]
    assert [p.name for p in profiles] == names
    assert len({(p.organic, p.metal, p.background) for p in profiles}) == len(profiles)
    assert min(p.resolution_scale for p in profiles) < 0.75
    assert max(p.noise for p in profiles) >= 3 * min(p.noise for p in profiles)


def test_user_profile_by_path(tmp_path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text("metal: [0, 0, 255]\nnoise: 0.02\n")
    p = load_profile(f)
    assert p.name == "mine" and p.metal == (0, 0, 255) and p.noise == 0.02


def test_bad_profile_field_names_file_line_and_field(tmp_path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("description: x\nnoise: 0.01\nblur_sigma: -3\n")
    with pytest.raises(ConfigError) as e:
        profile_from_yaml(f)
    assert e.value.field == "blur_sigma" and e.value.line == 3
    assert str(f) in str(e.value)
    f.write_text("organic: [300, 0, 0]\n")
    with pytest.raises(ConfigError, match="organic"):
        load_profile(f)
    f.write_text("colour: red\n")
    with pytest.raises(ConfigError) as e:
        load_profile(f)
    assert e.value.field == "colour"
    f.write_text("noise: [1,\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_profile(f)
    with pytest.raises(NotFoundError):
        load_profile("no-such-profile")
