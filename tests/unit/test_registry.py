"""The registry file across layerkit versions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from layerkit.errors import UserError
from layerkit.registry import _SCHEMA, SCHEMA_VERSION, Registry, Version


def version(number: int) -> Version:
    return Version(
        arn=f"arn:aws:lambda:eu-west-1:111122223333:layer:web:{number}",
        layer="web", region="eu-west-1", account="111122223333", version=number,
        sha256="ab" * 32, size=10, description="d", runtimes=("python3.12",),
        architectures=("x86_64",), created="2026-11-27",
    )  # fmt: skip


def test_a_registry_from_before_schema_versions_is_opened_and_marked(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    with sqlite3.connect(path) as db:  # what layerkit wrote before PRAGMA user_version
        db.executescript(_SCHEMA)
    Registry(path).record_versions([version(1)])
    assert [v.version for v in Registry(path).versions("web")] == [1]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_registry_from_a_newer_layerkit_is_refused_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(UserError, match="written by a newer layerkit"):
        Registry(path).versions()
