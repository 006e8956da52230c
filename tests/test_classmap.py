"""Class maps: shipped maps, validation, case-insensitive matching, drops."""

from __future__ import annotations

from pathlib import Path

import pytest

from cv.datasets.classmap import ClassMap, load_class_map, shipped_class_maps
from cv.errors import ConfigError, DataValidationError, NotFoundError
from cv.taxonomy import NAMES


def test_every_shipped_map_loads_onto_the_taxonomy() -> None:
    names = shipped_class_maps()
    assert {
        "opixray",
        "hixray",
        "sixray",
        "eds",
        "pidray",
        "clcxray",
        "gdxray",
        "pixray",
        "dvxray",
        "aihub",
    } <= set(names)
    for name in names:
        cmap = load_class_map(name)
        assert cmap.source is not None and cmap.source.name == f"{name}.yaml"
        assert all(t is None or t in NAMES for t in cmap.targets.values())


@pytest.mark.parametrize(
    ("dataset", "original", "target"),
    [
        ("opixray", "Multi-tool_Knife", "knife"),
        ("opixray", "Scissor", "scissors"),
        ("hixray", "Portable_Charger_2", "power_bank"),
        ("hixray", "Nonmetallic_Lighter", "lighter"),
        ("pidray", "HandCuffs", "handcuffs"),
        ("pidray", "Powerbank", "power_bank"),
        ("eds", "smallelectronicequipmen", "electronics"),
        ("dvxray", "Saw_blade", "blade"),
        ("dvxray", "Pressure_vessel", "pressure_vessel"),
        ("gdxray", "razor blade", "blade"),
        ("sixray", "  gUN ", "gun"),
    ],
)
def test_shipped_targets(dataset: str, original: str, target: str) -> None:
    assert load_class_map(dataset).map(original, path="x.txt") == target


def test_null_drops_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("dataset: mine\nmap:\n  Gun: gun\n  Toy: null\n")
    cmap = load_class_map(path)
    assert (cmap.name, cmap.map("TOY", path="a.txt"), cmap.map("toy", path="a.txt")) == (
        "mine",
        None,
        None,
    )
    assert cmap.dropped == {"TOY": 1, "toy": 1}
    assert cmap.classes() == ["gun"]


def test_bad_target_names_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("map:\n  Gun: gun\n  Pistol: handgun\n")
    with pytest.raises(ConfigError) as err:
        load_class_map(path)
    assert str(err.value).startswith(f"{path}:3: Pistol: target 'handgun' is not a taxonomy class")
    assert err.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("map: [a, b]\n", r"m.yaml:1: map: 'map' must be a mapping"),
        ("classes:\n  a: gun\n", r"m.yaml:1: classes: unknown top-level key"),
        ("dataset: x\n", r"m.yaml: map: missing the 'map' section"),
        ("map:\n  Gun: gun\n  GUN: knife\n", r"m.yaml:3: GUN: 'GUN' is mapped twice"),
        ("map:\n  Gun: [gun]\n", r"m.yaml:2: Gun: the target must be"),
        ("map:\n  a: gun\n b: x\n", r"m.yaml:3: not valid YAML"),
    ],
)
def test_malformed_maps(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        load_class_map(path)


def test_unknown_name_says_which_file_to_edit() -> None:
    cmap = load_class_map("pidray")
    with pytest.raises(DataValidationError) as err:
        cmap.map("Crowbar", path="ann.json", field="categories[3].name")
    msg = str(err.value)
    assert msg.startswith("ann.json: categories[3].name: unknown class 'Crowbar'")
    assert "class_maps/pidray.yaml" in msg and "--class-map" in msg
    identity = ClassMap.identity_map()
    assert identity.map(" KNIFE ", path="a.txt") == "knife"
    with pytest.raises(
        DataValidationError, match=r"a.txt:4: class: unknown class 'Kn1fe': .*--class-map"
    ):
        identity.map("Kn1fe", path="a.txt", line=4)


def test_missing_maps() -> None:
    with pytest.raises(NotFoundError, match="no class map called 'nope'; shipped maps: aihub"):
        load_class_map("nope")
    with pytest.raises(NotFoundError, match=r"missing\.yaml: class-map file does not exist"):
        load_class_map("missing.yaml")
