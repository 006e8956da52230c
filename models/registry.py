"""Model builders registered by name: the public way to make a network.

A builder is a function with keyword-only, typed arguments that returns a
``torch.nn.Module`` with freshly initialised weights (``num_classes`` outputs).
Weights are loaded afterwards, strictly, from a model directory
(:func:`cv.models.load.load_detector`). Builders register with
:func:`register_model`; a duplicate name raises, so two builders can never
shadow each other.

Importing this module registers the built-in builders (:mod:`cv.models.yolo`,
:mod:`cv.models.rtdetr`, :mod:`cv.models.reid`)
without importing torch or ultralytics: those load when a model is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from cv.errors import ConfigError

if TYPE_CHECKING:
    import torch

Builder = TypeVar("Builder", bound=Callable[..., Any])

_BUILDERS: dict[str, Callable[..., torch.nn.Module]] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Registers the decorated builder under ``name``.

    Raises:
        ValueError: If a builder is already registered under ``name``.
    """

    def decorator(fn: Builder) -> Builder:
        if name in _BUILDERS:
            raise ValueError(f"a model builder named {name!r} is already registered")
        _BUILDERS[name] = fn
        return fn

    return decorator


def get_builder(name: str) -> Callable[..., torch.nn.Module]:
    """The builder registered under ``name``.

    Raises:
        ConfigError: If no builder has that name (the message lists the known ones).
    """
    if name not in _BUILDERS:
        raise ConfigError(
            f"unknown model {name!r}; registered models: {', '.join(list_models())}",
            field="architecture",
        )
    return _BUILDERS[name]


def build_model(name: str, *, num_classes: int, **kwargs: Any) -> torch.nn.Module:
    """Builds the registered model ``name`` with ``num_classes`` outputs.

    Args:
        name: Registered builder name (see :func:`list_models`).
        num_classes: Number of classes the detector predicts.
        **kwargs: Further keyword arguments of that builder (``seed``, ``class_names``).

    Raises:
        ConfigError: If ``name`` is unknown or ``num_classes`` is not positive.
    """
    if num_classes < 1:
        raise ConfigError(f"num_classes must be at least 1, got {num_classes}", field="classes")
    return get_builder(name)(num_classes=num_classes, **kwargs)


def list_models() -> list[str]:
    """Names of the registered builders, sorted."""
    return sorted(_BUILDERS)


# Registers the built-in builders; yolo.py imports torch lazily inside each builder.
from cv.models import reid as _reid  # noqa: E402, F401
from cv.models import rtdetr as _rtdetr  # noqa: E402, F401
from cv.models import yolo as _yolo  # noqa: E402, F401
