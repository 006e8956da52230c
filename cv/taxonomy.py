"""The customs taxonomy: the one set of class names every dataset is mapped onto.

Each public dataset names its classes its own way (``Straight_Knife``, ``knife``,
``Knife``, ...). Converters map them onto these names through a class-map file
(see ``datasets/class_maps/``) and keep the original name beside the mapped one.
Ids are positions in :data:`CATEGORIES`, stable across releases: new categories
are appended, never inserted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Group = Literal[
    "weapon", "blade", "tool", "explosive", "energy", "contraband", "liquid", "electronics", "other"
]


@dataclass(frozen=True, slots=True)
class Category:
    """One class of the customs taxonomy.

    Attributes:
        name: Lower-case snake-case name, the key everywhere.
        group: Broad kind, for per-group reporting.
        threat: Whether an inspector must be alerted when it is found.
        description: What belongs in this class.
    """

    name: str
    group: Group
    threat: bool
    description: str


CATEGORIES: tuple[Category, ...] = (
    Category("gun", "weapon", True, "Firearms, whole: handguns, rifles, replicas."),
    Category("gun_part", "weapon", True, "Firearm parts: barrel, slide, frame, magazine."),
    Category("bullet", "weapon", True, "Ammunition: cartridges and bullets."),
    Category(
        "knife",
        "blade",
        True,
        "Knives of every kind: folding, straight, utility, multi-tool, dagger.",
    ),
    Category("blade", "blade", True, "Loose blades: razor blades, saw blades, shuriken."),
    Category("scissors", "blade", True, "Scissors."),
    Category("wrench", "tool", True, "Wrenches and spanners."),
    Category("pliers", "tool", True, "Pliers."),
    Category("hammer", "tool", True, "Hammers."),
    Category("screwdriver", "tool", True, "Screwdrivers."),
    Category("baton", "weapon", True, "Batons, bats and clubs."),
    Category("handcuffs", "weapon", True, "Handcuffs."),
    Category("dart", "weapon", True, "Darts."),
    Category("sprayer", "explosive", True, "Spray cans and pressurised sprayers."),
    Category("pressure_vessel", "explosive", True, "Pressure vessels and gas cylinders."),
    Category("fireworks", "explosive", True, "Fireworks and pyrotechnics."),
    Category("lighter", "energy", True, "Lighters, metal or non-metallic."),
    Category("battery", "energy", True, "Loose batteries and cells."),
    Category("power_bank", "energy", True, "Power banks and portable chargers."),
    Category("drugs", "contraband", True, "Drug packages: organic bricks and powder pouches."),
    Category("cash", "contraband", True, "Bundles of banknotes."),
    Category("laptop", "electronics", False, "Laptops."),
    Category("phone", "electronics", False, "Mobile phones."),
    Category("tablet", "electronics", False, "Tablets."),
    Category("electronics", "electronics", False, "Other small electronic equipment."),
    Category("bottle", "liquid", False, "Bottles, cans, cartons and flasks of liquid."),
    Category("cosmetic", "liquid", False, "Cosmetics and toiletries."),
    Category("umbrella", "other", False, "Umbrellas."),
)

NAMES: tuple[str, ...] = tuple(c.name for c in CATEGORIES)
_INDEX = {name: i for i, name in enumerate(NAMES)}


def category(name: str) -> Category:
    """The category called ``name``.

    Raises:
        KeyError: If ``name`` is not in the taxonomy.
    """
    return CATEGORIES[_INDEX[name]]


def category_id(name: str) -> int:
    """The stable id of the category called ``name`` (its position)."""
    return _INDEX[name]


def is_category(name: str) -> bool:
    """Whether ``name`` is a taxonomy class name."""
    return name in _INDEX
