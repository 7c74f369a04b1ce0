"""Every recipe field has decided what it changes: the build key (which artifact a build
reuses) and the lock's input hash (whether a committed lock is stale). A field added
without a decision fails here; a field in the key that does not change it, or a field
declared out of it that does, fails too."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from layerkit.builder.lockfile import input_hash
from layerkit.recipe import BuildSettings, PublishSettings, Recipe, Slim, build_key_data, load
from layerkit.targets import target
from tests.conftest import RECIPES

NESTED = {Slim, BuildSettings, PublishSettings}


def fields_of(cls: type, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field[Any], type]]:
    """(dotted path, field, its type) for every field, nested settings included."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        yield prefix + f.name, f, kind
        if kind in NESTED:
            yield from fields_of(kind, f"{prefix}{f.name}.")


def changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, str) or value is None:
        return f"{value or ''}other"
    if isinstance(value, frozenset):
        return value | {"other"}
    if isinstance(value, tuple):
        return (*value, "other")
    raise AssertionError(f"no change known for {value!r}")


def variant(recipe: Recipe, path: str, tmp_path: Path) -> Recipe:
    """The recipe with one leaf field changed."""
    head, _, name = path.rpartition(".")
    if path == "requirements_file":
        other = tmp_path / "other.txt"
        other.write_text("six\n")
        return dataclasses.replace(recipe, requirements_file=other)
    if path == "path":
        return dataclasses.replace(recipe, path=tmp_path / "elsewhere" / recipe.path.name)
    if path == "files":
        return dataclasses.replace(recipe, files=())
    if not head:
        return dataclasses.replace(recipe, **{name: changed(getattr(recipe, name))})
    settings = getattr(recipe, head)
    inner = dataclasses.replace(settings, **{name: changed(getattr(settings, name))})
    return dataclasses.replace(recipe, **{head: inner})


@pytest.fixture
def recipe() -> Recipe:
    return load(RECIPES / "app-config.toml")  # it has files, so `files` is not empty


def test_every_recipe_field_declares_what_it_changes() -> None:
    undecided = [
        path
        for path, f, _ in fields_of(Recipe)
        if "build_key" not in f.metadata or "lock" not in f.metadata
    ]
    assert undecided == []  # use recipe.in_key() or recipe.out_of_key("why") for each


def test_a_field_out_of_the_key_says_why() -> None:
    for path, f, _ in fields_of(Recipe):
        if not f.metadata["build_key"]:
            assert f.metadata["why"], path


LEAVES = [path for path, _, kind in fields_of(Recipe) if kind not in NESTED]


@pytest.mark.parametrize("path", LEAVES)
def test_a_field_changes_the_build_key_exactly_when_it_is_in_it(
    recipe: Recipe, path: str, tmp_path: Path
) -> None:
    declared = {p: f.metadata["build_key"] for p, f, _ in fields_of(Recipe)}
    parts = path.split(".")
    in_key = all(declared[".".join(parts[: i + 1])] for i in range(len(parts)))
    before, after = build_key_data(recipe), build_key_data(variant(recipe, path, tmp_path))
    assert (before != after) == in_key, path


@pytest.mark.parametrize("path", LEAVES)
def test_a_field_changes_the_lock_input_exactly_when_it_says_so(
    recipe: Recipe, path: str, tmp_path: Path
) -> None:
    lock = {p: f.metadata["lock"] for p, f, _ in fields_of(Recipe)}
    of = target("python3.12", "x86_64")
    before, after = input_hash(recipe, of), input_hash(variant(recipe, path, tmp_path), of)
    assert (before != after) == lock[path], path
