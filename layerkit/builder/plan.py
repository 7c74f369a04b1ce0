"""What one build is made of, shared by the pipeline (which decides) and the assembly
(which writes): the groups of targets that share a ZIP, the recipe's files, one job."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from layerkit.builder.lockfile import LockedTarget
from layerkit.recipe import Recipe
from layerkit.targets import Target

if TYPE_CHECKING:
    from layerkit.builder.backends import Backend
    from layerkit.builder.compilers import Compiler

Locks = dict[str, LockedTarget]  # by target id


@dataclass(frozen=True)
class Group:
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
    key: str
    chosen: dict[str, Backend]  # target id -> where it is installed
    compilers: dict[str, Compiler]  # Python version -> its bytecode compiler


def site_packages(target: Target) -> str:
    return f"python/lib/python{target.runtime.python_version}/site-packages"
