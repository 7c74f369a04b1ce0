"""What one build is made of, shared by the pipeline (which decides) and the assembly
(which writes): the groups of targets that share a ZIP, the recipe's files, one job."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from layerkit.builder.lockfile import LockedTarget
from layerkit.recipe import Recipe, build_key_data
from layerkit.targets import Target
from layerkit.version import __version__

if TYPE_CHECKING:
    from layerkit.builder.backends import Backend
    from layerkit.builder.compilers import Compiler

Locks = dict[str, LockedTarget]  # by target id

# Bump when the same inputs would produce different bytes, so cached artifacts are not reused.
BUILD_FORMAT = 6


@dataclass(frozen=True)
class Group:
    """The targets that share one ZIP, and its name."""

    artifact: str
    targets: tuple[Target, ...]

    @property
    def pythons(self) -> list[str]:
        return [
            f"{major}.{minor}" for major, minor in sorted({t.runtime.python for t in self.targets})
        ]


@dataclass(frozen=True)
class RecipeFile:
    """A data or config file as it lands in the layer."""

    path: str  # in the ZIP, relative to /opt
    source: Path
    mode: int
    sha256: str


@dataclass(frozen=True)
class Job:
    """Everything one ZIP is made from: its build key is a digest of exactly this."""

    recipe: Recipe
    group: Group
    locks: Locks
    files: list[RecipeFile]
    chosen: dict[str, Backend]  # target id -> where it is installed
    compilers: dict[str, Compiler]  # Python version -> its bytecode compiler

    @cached_property
    def key(self) -> str:
        data = {
            "strategies": {t: backend.name for t, backend in self.chosen.items()},
            "format": BUILD_FORMAT,
            "layerkit": __version__,
            # Every recipe field but those declared not to change the bytes (recipe.py).
            "recipe": build_key_data(self.recipe),
            "artifact": self.group.artifact,
            "bytecode": sorted(self.compilers),
            "targets": {t.id: self.locks[t.id].sha256 for t in self.group.targets},
            "files": [[f.path, f.sha256, f.mode] for f in self.files],
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def site_packages(target: Target) -> str:
    return f"python/lib/python{target.runtime.python_version}/site-packages"
