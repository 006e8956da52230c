"""``customs-vision data``: generate, convert, check and describe X-ray datasets.

Each command lives in the module of its part and registers itself on
:data:`app` when imported below. The data toolkit's benchmarks register on
``customs-vision bench`` (:mod:`cv.cli.bench`).
"""

from __future__ import annotations

import typer

app = typer.Typer(
    help="X-ray datasets: synthetic generation, threat image projection, conversion "
    "from the public datasets' own files, validation and statistics.",
    no_args_is_help=True,
)

CLASS_MAP_OPTION = typer.Option(
    None, "--class-map", help="Your own class-map YAML instead of the shipped one."
)
"""``--class-map``, as ``data check``, ``data stats`` and ``data convert`` take it."""
IMAGE_ROOT_OPTION = typer.Option(
    None,
    "--image-root",
    help="Folder the COCO file_name entries are relative to, where it cannot be guessed.",
)
"""``--image-root``, as ``data check`` and ``data convert`` take it."""


def check_image_root(name: str) -> None:
    """Refuses ``--image-root`` for a registered format whose reader takes none.

    Raises:
        ConfigError: Naming the formats that take it.
    """
    from cv.datasets.formats import READERS, formats_taking
    from cv.errors import ConfigError

    takers = formats_taking("image_root")
    if name in READERS and name not in takers:
        raise ConfigError(
            f"the {name} reader finds its images itself; --image-root applies to "
            f"{', '.join(takers)}",
            field="--image-root",
        )


# Imported for their side effect: each registers its commands.
from cv.cli import data_check, data_convert, data_feedback, data_synth, demo  # noqa: E402, F401
