"""Class maps: from a dataset's own class names to the customs taxonomy.

A class map is a YAML file with a ``map`` section whose keys are a dataset's
original class names and whose values are taxonomy names (:data:`cv.taxonomy.NAMES`),
or ``null`` to drop that class on purpose::

    dataset: opixray
    map:
      Folding_Knife: knife
      Scissor: scissors

Keys match case-insensitively after trimming whitespace, because the public
datasets spell one class several ways (SIXray ``Gun``/``gun``/``GUN``). The shipped
maps live in ``datasets/class_maps/<dataset>.yaml``; users pass their own file
wherever a map is accepted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from os import PathLike
from pathlib import Path

import yaml

from cv.errors import ConfigError, DataValidationError, NotFoundError
from cv.taxonomy import NAMES, is_category


class UnknownClassError(DataValidationError):
    """A class name that the class map does not know.

    A :class:`~cv.errors.DataValidationError` (exit code 4) that also carries the
    name, so that a reader reading leniently (``data check``) can record it.

    Args:
        message: What is wrong and how to fix it.
        name: The class name as the source writes it.
        path: The annotation file it was read from.
        line: Its 1-based line in ``path``, when the file is text.
        field: The object or field it was read from.
    """

    def __init__(
        self,
        message: str,
        *,
        name: str,
        path: str | PathLike[str] | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, path=path, line=line, field=field)
        self.name = name


def normalize_name(name: str) -> str:
    """The key a class name is matched by: trimmed and case-folded."""
    return name.strip().casefold()


@dataclass(slots=True)
class ClassMap:
    """A validated mapping from original class names to taxonomy names.

    Attributes:
        name: What the map is called (the dataset, or the file stem).
        targets: Normalised original name to taxonomy name, or ``None`` to drop.
        source: The YAML file the map came from; ``None`` for the identity map.
        identity: Whether taxonomy names map to themselves and nothing else is known.
        dropped: How many objects each original name dropped so far (by ``None``).
    """

    name: str
    targets: dict[str, str | None]
    source: Path | None = None
    identity: bool = False
    dropped: Counter[str] = field(default_factory=Counter)

    @classmethod
    def identity_map(cls) -> ClassMap:
        """The map that accepts taxonomy names as they are (generic COCO / YOLO)."""
        return cls(name="taxonomy", targets={n: n for n in NAMES}, identity=True)

    def map(
        self,
        original_name: str,
        *,
        path: str | PathLike[str] | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> str | None:
        """The taxonomy name of ``original_name``, or ``None`` if the map drops it.

        Args:
            original_name: The class name as the dataset writes it.
            path: The annotation file it was read from, for the error message.
            line: Its 1-based line in ``path``, when the file is text.
            field: The object or field it was read from (``object[2].name``).

        Raises:
            UnknownClassError: If the name is not in the map; the message says
                which class-map file to edit.
        """
        key = normalize_name(original_name)
        try:
            target = self.targets[key]
        except KeyError:
            raise UnknownClassError(
                f"unknown class {original_name!r}: {self.how_to_fix()}",
                name=original_name,
                path=path,
                line=line,
                field=field or "class",
            ) from None
        if target is None:
            self.dropped[original_name] += 1
        return target

    def how_to_fix(self) -> str:
        """One sentence telling the user which file to edit for an unknown name."""
        if self.source is None:
            return (
                "it is not a customs taxonomy class; pass a class map with --class-map FILE "
                f"mapping it to one of: {', '.join(NAMES)}"
            )
        return (
            f"add it to the class map {self.source} (map it to a taxonomy class, or to null "
            "to drop it), or pass your own map with --class-map FILE"
        )

    def classes(self) -> list[str]:
        """The taxonomy names this map can produce, in taxonomy order."""
        produced = {t for t in self.targets.values() if t is not None}
        return [n for n in NAMES if n in produced]


def shipped_class_maps() -> list[str]:
    """Names of the class maps shipped in ``datasets/class_maps``."""
    folder = resources.files("cv.datasets").joinpath("class_maps")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_class_map(name_or_path: str | PathLike[str]) -> ClassMap:
    """Loads and validates a class map.

    Args:
        name_or_path: A shipped map's name (``opixray``) or the path of a YAML file.

    Raises:
        NotFoundError: If there is no such file or shipped map.
        ConfigError: If the file is not a valid class map; the message names the
            file, the line and the key at fault.
    """
    text = str(name_or_path)
    path = Path(text)
    # A bare name is a shipped map even when a folder of that name (the dataset
    # itself, often) lies in the working directory.
    if path.suffix.lower() in (".yaml", ".yml") or "/" in text or path.is_file():
        if not path.is_file():
            raise NotFoundError("class-map file does not exist", path=path)
        return _parse_class_map(path.read_text(encoding="utf-8"), path)
    resource = resources.files("cv.datasets").joinpath("class_maps", f"{text}.yaml")
    if not resource.is_file():
        raise NotFoundError(
            f"no class map called {text!r}; shipped maps: {', '.join(shipped_class_maps())} "
            "(or give the path of a YAML file)"
        )
    with resources.as_file(resource) as shipped:
        return _parse_class_map(resource.read_text(encoding="utf-8"), Path(shipped))


def _parse_class_map(text: str, path: Path) -> ClassMap:
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"not valid YAML ({getattr(exc, 'problem', exc)})",
            path=path,
            line=None if mark is None else mark.line + 1,
        ) from None
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError("a class map is a mapping with a 'map' section", path=path)
    sections = {k.value: (k, v) for k, v in root.value if isinstance(k, yaml.ScalarNode)}
    unknown = set(sections) - {"dataset", "description", "map"}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(
            "unknown top-level key; allowed: dataset, description, map",
            path=path,
            line=sections[key][0].start_mark.line + 1,
            field=key,
        )
    if "map" not in sections:
        raise ConfigError("missing the 'map' section", path=path, field="map")
    map_key, map_node = sections["map"]
    if not isinstance(map_node, yaml.MappingNode):
        raise ConfigError(
            "'map' must be a mapping of original name to taxonomy name",
            path=path,
            line=map_key.start_mark.line + 1,
            field="map",
        )
    targets: dict[str, str | None] = {}
    for key_node, value_node in map_node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode) or not key_node.value.strip():
            raise ConfigError("class names must be non-empty strings", path=path, line=line)
        original = key_node.value
        target = _scalar_target(value_node, path=path, line=line, key=original)
        norm = normalize_name(original)
        if norm in targets and targets[norm] != target:
            raise ConfigError(
                f"{original!r} is mapped twice (names match case-insensitively) "
                f"to {targets[norm]!r} and {target!r}",
                path=path,
                line=line,
                field=original,
            )
        targets[norm] = target
    dataset_name = sections["dataset"][1].value if "dataset" in sections else path.stem
    return ClassMap(name=str(dataset_name), targets=targets, source=path)


def _scalar_target(node: yaml.Node, *, path: Path, line: int, key: str) -> str | None:
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(
            "the target must be a taxonomy class name or null", path=path, line=line, field=key
        )
    # `null`, `~` and an empty value all mean "drop this class on purpose".
    if node.tag == "tag:yaml.org,2002:null" or node.value in ("", "~", "null", "Null", "NULL"):
        return None
    target = node.value.strip()
    if not is_category(target):
        raise ConfigError(
            f"target {target!r} is not a taxonomy class; use one of: {', '.join(NAMES)}, "
            "or null to drop the class",
            path=path,
            line=line,
            field=key,
        )
    return target


def resolve_class_map(
    class_map: ClassMap | str | PathLike[str] | None, *, default: str | None
) -> ClassMap:
    """The class map a reader uses.

    Args:
        class_map: A loaded map, a shipped map's name, a YAML path, or ``None``.
        default: The shipped map used when ``class_map`` is ``None``; ``None`` gives
            the identity map (taxonomy names only).
    """
    if isinstance(class_map, ClassMap):
        return class_map
    if class_map is not None:
        return load_class_map(class_map)
    if default is None:
        return ClassMap.identity_map()
    return load_class_map(default)
