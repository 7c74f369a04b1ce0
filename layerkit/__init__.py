"""layerkit: build, publish and audit AWS Lambda layers for Python.

The public API is what this module exports; everything else may change.
"""

from layerkit.build import Artifact, build_recipe, lock_recipe
from layerkit.context import Context
from layerkit.errors import LayerkitError
from layerkit.inspection import inspect_layer
from layerkit.recipe import Recipe, load
from layerkit.version import __version__

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
