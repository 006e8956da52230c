"""The one import point of ultralytics (AGPL-3.0), always offline.

ultralytics checks the network at import (``ONLINE``), auto-installs missing
packages, syncs usage events and downloads weights or fonts when a ``*.pt`` name
is given. None of that may happen here: this module sets ``YOLO_OFFLINE=1`` and
``YOLO_AUTOINSTALL=false`` and points ``YOLO_CONFIG_DIR`` (its settings file)
at a writable folder of ours **before** the first import, then turns event
sync off. It also sets ``OMP_NUM_THREADS`` to the physical cores when unset,
because ultralytics would otherwise set it to 1 for the whole process, and gives
``PIL.Image.open`` back its own function (see :func:`_undo_pil_patch`). Models are
only ever built from their YAML (``yolo11n.yaml``), never from ``*.pt`` names.

Every other module reaches ultralytics through :func:`ultralytics` or
:func:`yolo_class`, so its quirks stay in one place.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

CONFIG_DIR_NAME = "customs-vision-ultralytics"
"""Folder under the system temp dir that holds ultralytics' settings file."""

_module: ModuleType | None = None


def offline_environment() -> dict[str, str]:
    """Sets (if unset) and returns the environment ultralytics must see before import.

    ``YOLO_CONFIG_DIR`` is kept when the user has set it; the offline flags are
    always forced, because a user's ``YOLO_OFFLINE=0`` must not make a run download.
    """
    from cv.models.runtime import physical_cores

    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    # ultralytics sets OMP_NUM_THREADS=1 at import when unset, which silently
    # makes every later torch op in the process single-threaded; use the cores.
    os.environ.setdefault("OMP_NUM_THREADS", str(physical_cores()))
    if not os.environ.get("YOLO_CONFIG_DIR"):
        config_dir = Path(tempfile.gettempdir()) / CONFIG_DIR_NAME
        config_dir.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    keys = ("YOLO_OFFLINE", "YOLO_AUTOINSTALL", "YOLO_CONFIG_DIR", "OMP_NUM_THREADS")
    return {k: os.environ[k] for k in keys}


def ultralytics() -> ModuleType:
    """The imported ``ultralytics`` package, offline (see the module docstring)."""
    global _module
    if _module is None:
        offline_environment()
        import ultralytics as ul
        from ultralytics.utils import SETTINGS

        # Event sync is already off while offline; writing it keeps it off for
        # any later process that reads the same settings file.
        if SETTINGS.get("sync", False):
            SETTINGS.update(sync=False)
        _undo_pil_patch()
        _module = ul
    return _module


def _undo_pil_patch() -> None:
    """Gives ``PIL.Image.open`` back its own function.

    ultralytics replaces it, for the whole process, with a wrapper that on any file
    Pillow cannot identify tries to install and import ``pi-heif`` (HEIF photos). Here
    that is never installed, so a corrupt or non-image file became a
    ``ModuleNotFoundError`` instead of the :class:`~cv.errors.ImageReadError` naming
    the file that our readers promise. The patch module is imported first, so that it
    cannot apply itself later.
    """
    from PIL import Image
    from ultralytics.utils import patches

    original = getattr(patches, "_image_open", None)
    if original is not None and Image.open is getattr(patches, "image_open", None):
        Image.open = original


def yolo_class() -> type[Any]:
    """``ultralytics.YOLO``, for its trainer and its own ``predict``."""
    return ultralytics().YOLO


def detection_model_class() -> type[Any]:
    """``ultralytics.nn.tasks.DetectionModel``: a YOLO network built from its YAML."""
    ultralytics()
    from ultralytics.nn.tasks import DetectionModel

    return DetectionModel


def rtdetr_model_class() -> type[Any]:
    """``ultralytics.nn.tasks.RTDETRDetectionModel``."""
    ultralytics()
    from ultralytics.nn.tasks import RTDETRDetectionModel

    return RTDETRDetectionModel


def model_yaml(name: str) -> str:
    """Checks that ``name`` is a YAML model config and returns it.

    Raises:
        ValueError: If ``name`` is a ``*.pt`` weights name, which ultralytics
            would try to download.
    """
    if not name.endswith((".yaml", ".yml")):
        raise ValueError(f"ultralytics models are built from YAML only, not {name!r}")
    return name


def build_from_yaml(
    model_class: type[Any],
    cfg: str,
    *,
    num_classes: int,
    seed: int | None = 0,
    class_names: Sequence[str] | None = None,
) -> Any:
    """A freshly initialised ultralytics network from its YAML name.

    Args:
        model_class: :func:`detection_model_class` or :func:`rtdetr_model_class`.
        cfg: The YAML name (``yolo11n.yaml``); the scale letter picks width and depth.
        num_classes: Number of classes ``nc``.
        seed: Seed of the weight initialisation; the same seed gives the same
            weights. ``None`` uses torch's global generator as it stands.
        class_names: Names stored on the model (``model.names``); by default
            ``"0"``, ``"1"``, ...

    Raises:
        ValueError: If ``class_names`` does not have ``num_classes`` entries, or
            ``cfg`` is not a YAML name.
    """
    import torch

    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    if seed is None:
        model = model_class(model_yaml(cfg), nc=num_classes, verbose=False)
    else:
        # A private generator state: building a model must not move the caller's RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = model_class(model_yaml(cfg), nc=num_classes, verbose=False)
    if class_names is not None:
        model.names = dict(enumerate(class_names))
    return model


def yolo_for_model(model: Any) -> Any:
    """An ultralytics ``YOLO`` object around an already built (and loaded) network.

    ``YOLO`` is built from the network's own YAML (no download), then its freshly
    made network is replaced by ``model``, so ultralytics' ``predict``, ``val`` and
    ``train`` run on our weights.

    Args:
        model: A ``DetectionModel`` or ``RTDETRDetectionModel`` from a registered
            builder (it carries its YAML in ``model.yaml``).
    """
    ul = ultralytics()
    from ultralytics.cfg import DEFAULT_CFG_DICT

    cfg = model.yaml.get("yaml_file") or "yolo11n.yaml"
    if isinstance(model, rtdetr_model_class()):
        # RT-DETR's own wrapper: its predictor reads set predictions, without NMS.
        yolo = ul.RTDETR(model_yaml(str(cfg)))
    else:
        yolo = yolo_class()(model_yaml(str(cfg)), task="detect", verbose=False)
    yolo.model = model
    model.args = {**DEFAULT_CFG_DICT, **yolo.overrides}
    model.task = "detect"
    return yolo


TRACKER_KINDS: tuple[str, ...] = ("bytetrack", "botsort")
"""The multi-object trackers of ultralytics that :mod:`cv.models.tracking` wraps."""


def _check_tracker_kind(kind: str) -> None:
    if kind not in TRACKER_KINDS:
        raise ValueError(f"unknown tracker {kind!r}; use one of {', '.join(TRACKER_KINDS)}")


def tracker_class(kind: str) -> type[Any]:
    """``ultralytics.trackers.BYTETracker`` (``bytetrack``) or ``BOTSORT`` (``botsort``).

    Raises:
        ValueError: If ``kind`` is neither.
    """
    _check_tracker_kind(kind)
    ultralytics()
    from ultralytics.trackers import BOTSORT, BYTETracker

    return BYTETracker if kind == "bytetrack" else BOTSORT


def tracker_defaults(kind: str) -> dict[str, Any]:
    """The settings of ultralytics' own tracker YAML (``cfg/trackers/<kind>.yaml``).

    Read from the file shipped inside the installed package (never looked up on
    the network), so the defaults follow the installed ultralytics.

    Raises:
        ValueError: If ``kind`` is not a known tracker.
    """
    import yaml

    _check_tracker_kind(kind)
    path = Path(ultralytics().__file__).parent / "cfg" / "trackers" / f"{kind}.yaml"
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))


def tracker_args(values: dict[str, Any]) -> Any:
    """The namespace ultralytics' trackers take as ``args`` (``IterableSimpleNamespace``)."""
    ultralytics()
    from ultralytics.utils import IterableSimpleNamespace

    return IterableSimpleNamespace(**values)
