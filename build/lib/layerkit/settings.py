"""Where a setting comes from, decided in one place (as cibuildwheel's _resolve_cascade).

Precedence, highest first: a command-line flag, then an environment variable, then the
recipe, then layerkit's default. An empty value (None, "", an empty list) is unset.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def cascade(
    *,
    flag: T | None = None,
    env: T | None = None,
    recipe: T | None = None,
    default: T | None = None,
) -> T | None:
    for value in (flag, env, recipe):
        if value is not None and value != "" and value != [] and value != ():
            return value
    return default
