"""layerkit: build, publish and audit AWS Lambda layers for Python.

The public API is what this module exports; everything else may change. Each name is
imported when first used (PEP 562): `import layerkit` costs nothing, and a command that
never builds never loads the build wing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from layerkit.version import __version__

if TYPE_CHECKING:
    from layerkit.builder.context import Context
    from layerkit.builder.pipeline import Artifact, build_recipe, lock_recipe
    from layerkit.errors import LayerkitError
    from layerkit.layer.inspection import inspect_layer
    from layerkit.recipe import Recipe, load

_EXPORTS = {
    "Artifact": "layerkit.builder.pipeline",
    "Context": "layerkit.builder.context",
    "LayerkitError": "layerkit.errors",
    "Recipe": "layerkit.recipe",
    "build_recipe": "layerkit.builder.pipeline",
    "inspect_layer": "layerkit.layer.inspection",
    "load": "layerkit.recipe",
    "lock_recipe": "layerkit.builder.pipeline",
}

__all__ = [
    "Artifact",
    "Context",
    "LayerkitError",
    "Recipe",
    "__version__",
    "build_recipe",
    "inspect_layer",
    "load",
    "lock_recipe",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'layerkit' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
