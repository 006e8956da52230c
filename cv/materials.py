"""Materials and their X-ray attenuation at the two energies of a dual-energy scanner.

The attenuation model is deliberately simple but physical. The mass attenuation
coefficient of a material of effective atomic number ``Z`` at photon energy ``E``
(keV) is the sum of two terms, both proportional to the electrons per unit mass
``Z/A`` (``N_A · Z/A`` electrons per gram):

* **photo-electric absorption**, ``K · (Z/A) · Z³ / E³`` (per atom it grows as
  ``Z⁴``; per electron as ``Z³``), dominant for metals at low energy;
* **Compton scattering**, ``N_A · (Z/A) · σ_KN(E)``, with ``σ_KN`` the
  Klein–Nishina total cross-section of one free electron, nearly independent of ``Z``.

``K`` is set so that iron at 60 keV absorbs about 1 cm²/g photo-electrically,
which puts water, aluminium and iron within ~15 % of tabulated values between
40 and 100 keV. Because the photo-electric term falls as ``E⁻³`` and the Compton
term barely moves, the ratio of line integrals ``R = ln T_low / ln T_high``
rises monotonically with ``Z``: about 1.5 for organics, 2.5-3 for light
inorganics, 5-6 for iron and copper and towards 8 for lead. That ratio is what
a dual-energy scanner colours by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

AVOGADRO = 6.02214076e23
"""Avogadro's number, 1/mol."""
ELECTRON_RADIUS_CM = 2.8179403262e-13
"""Classical electron radius, cm."""
ELECTRON_REST_KEV = 510.99895
"""Electron rest energy m_e c², keV."""
PHOTO_CONSTANT = 28.0
"""``K`` of the photo-electric term, cm²/g · keV³ (see the module docstring)."""

E_LOW_KEV = 45.0
"""Effective energy of the low-energy channel, keV."""
E_HIGH_KEV = 90.0
"""Effective energy of the high-energy channel, keV."""

MaterialGroup = Literal["organic", "inorganic", "metal"]


def klein_nishina_cross_section(energy_kev: float) -> float:
    """Total Klein–Nishina cross-section of one free electron, cm².

    Args:
        energy_kev: Photon energy in keV (> 0).
    """
    k = energy_kev / ELECTRON_REST_KEV
    a = 1.0 + 2.0 * k
    term1 = (1.0 + k) / k**2 * (2.0 * (1.0 + k) / a - math.log(a) / k)
    term2 = math.log(a) / (2.0 * k)
    term3 = (1.0 + 3.0 * k) / a**2
    return 2.0 * math.pi * ELECTRON_RADIUS_CM**2 * (term1 + term2 - term3)


def mass_attenuation(z_eff: float, energy_kev: float, *, z_over_a: float = 0.5) -> float:
    """Mass attenuation coefficient ``μ/ρ`` in cm²/g (photo-electric + Compton).

    Args:
        z_eff: Effective atomic number.
        energy_kev: Photon energy in keV.
        z_over_a: Electrons per nucleon ``Z/A`` (0.5 for most elements, more for
            hydrogen-rich organics, about 0.4 for lead).
    """
    photo = PHOTO_CONSTANT * z_over_a * z_eff**3 / energy_kev**3
    compton = AVOGADRO * z_over_a * klein_nishina_cross_section(energy_kev)
    return photo + compton


@dataclass(frozen=True, slots=True)
class Material:
    """A material as the scanner sees it.

    Attributes:
        name: Short key (``steel``, ``cotton``...).
        z_eff: Effective atomic number.
        density: Density in g/cm³ (bulk density for fibrous and powdered goods).
        z_over_a: Electrons per nucleon.
        group: ``organic`` (Z_eff < 10), ``inorganic`` (light inorganic, 10-18) or
            ``metal``.
    """

    name: str
    z_eff: float
    density: float
    z_over_a: float = 0.5
    group: MaterialGroup = "organic"

    def mu(self, energy_kev: float) -> float:
        """Linear attenuation coefficient ``μ`` in 1/cm at ``energy_kev``."""
        return mass_attenuation(self.z_eff, energy_kev, z_over_a=self.z_over_a) * self.density

    @property
    def mu_low(self) -> float:
        """``μ`` at the low-energy channel, 1/cm."""
        return self.mu(E_LOW_KEV)

    @property
    def mu_high(self) -> float:
        """``μ`` at the high-energy channel, 1/cm."""
        return self.mu(E_HIGH_KEV)

    @property
    def ratio(self) -> float:
        """``R = ln T_low / ln T_high`` of any thickness of this material alone."""
        return self.mu_low / self.mu_high


def _m(name: str, z: float, rho: float, za: float, group: MaterialGroup) -> Material:
    return Material(name=name, z_eff=z, density=rho, z_over_a=za, group=group)


MATERIALS: dict[str, Material] = {
    m.name: m
    for m in (
        # Organics. Densities of fibrous goods are bulk densities (fabric with air).
        _m("cotton", 6.9, 0.35, 0.53, "organic"),
        _m("paper", 6.9, 0.85, 0.53, "organic"),
        _m("cardboard", 6.9, 0.25, 0.53, "organic"),
        _m("plastic", 6.2, 1.05, 0.54, "organic"),
        _m("rubber", 6.4, 1.15, 0.54, "organic"),
        _m("leather", 7.0, 0.9, 0.53, "organic"),
        _m("wood", 6.9, 0.6, 0.53, "organic"),
        _m("water", 7.4, 1.0, 0.555, "organic"),
        _m("sugar", 7.0, 0.9, 0.53, "organic"),
        _m("drug", 7.0, 1.15, 0.53, "organic"),
        _m("butane", 5.3, 0.58, 0.58, "organic"),
        # Light inorganics.
        _m("glass", 12.5, 2.5, 0.5, "inorganic"),
        _m("aluminium", 13.0, 2.7, 0.482, "inorganic"),
        _m("circuit_board", 14.0, 1.9, 0.5, "inorganic"),
        _m("lithium_cell", 16.0, 2.4, 0.49, "inorganic"),
        # Metals.
        _m("steel", 26.0, 7.85, 0.466, "metal"),
        _m("copper", 29.0, 8.96, 0.456, "metal"),
        _m("brass", 29.5, 8.5, 0.457, "metal"),
        _m("lead", 82.0, 11.35, 0.396, "metal"),
        _m("tungsten", 74.0, 19.3, 0.402, "metal"),
    )
}
"""The built-in materials by name."""


def material(name: str) -> Material:
    """The built-in material called ``name``.

    Raises:
        KeyError: If there is none (the message lists the known names).
    """
    try:
        return MATERIALS[name]
    except KeyError:
        raise KeyError(f"unknown material {name!r}; known: {', '.join(MATERIALS)}") from None
