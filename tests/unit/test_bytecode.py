"""Where bytecode goes, and how the target's interpreter is found."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from layerkit.builder.interpreters import find_interpreter
from layerkit.errors import RecipeError
from layerkit.recipe import load


def fake_python(path: Path, answer: str, calls: Path) -> Path:
    """An executable that answers the probe as an interpreter would, counting its calls."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho x >> {calls}\necho '{answer}'\n")
    path.chmod(0o755)
    return path


def test_pyenv_shims_are_skipped_and_each_interpreter_is_asked_only_once(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    pyenv = tmp_path / "pyenv"
    fake_python(pyenv / "shims" / "python3.12", "cpython-312 3.12.0 shim", tmp_path / "shim")
    fake_python(pyenv / "versions" / "3.12.4" / "bin" / "python3.12", "cpython-312 3.12.4 x", calls)
    fake_python(
        pyenv / "versions" / "3.12.10" / "bin" / "python3.12", "cpython-312 3.12.10 x", calls
    )
    env = {"PATH": str(pyenv / "shims"), "PYENV_ROOT": str(pyenv), "HOME": str(tmp_path)}

    found = find_interpreter("3.12", env, tmp_path / "cache", uv_binary=None)
    assert found is not None
    assert found.version == "3.12.10"  # the newest patch release, compared as numbers
    assert not (tmp_path / "shim").exists()
    asked = calls.read_text()
    again = find_interpreter("3.12", env, tmp_path / "cache", uv_binary=None)
    assert again == found
    assert calls.read_text() == asked  # remembered by path, size and mtime

    os.utime(pyenv / "versions" / "3.12.10" / "bin" / "python3.12", (1, 1))  # replaced
    find_interpreter("3.12", env, tmp_path / "cache", uv_binary=None)
    assert len(calls.read_text()) > len(asked)


def test_an_interpreter_of_another_version_or_not_cpython_is_not_taken(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    fake_python(bin_dir / "python3.13", "pypy310 3.10.14 x", tmp_path / "calls")
    env = {"PATH": str(bin_dir), "PYENV_ROOT": str(tmp_path / "none"), "HOME": str(tmp_path)}
    assert find_interpreter("3.13", env, tmp_path / "cache", uv_binary=None) is None


def test_the_bytecode_setting_must_be_a_boolean(tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        '[layer]\nname = "r"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
        '[slim]\nbytecode = "yes"\n'
    )
    with pytest.raises(RecipeError, match=r"slim\.bytecode: must be a bool, got str"):
        load(recipe)
    recipe.write_text(recipe.read_text().replace('"yes"', "false"))
    assert load(recipe).slim.bytecode is False
