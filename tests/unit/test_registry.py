"""The registry file across layerkit versions."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from layerkit.errors import UserError
from layerkit.registry import _MIGRATIONS, SCHEMA_VERSION, Registry, Signing, Version


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
        db.executescript(_MIGRATIONS[1])
    Registry(path).record_versions([version(1)])
    assert [v.version for v in Registry(path).versions("web")] == [1]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_schema_1_registry_keeps_its_rows_and_gains_signing(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(_MIGRATIONS[1] + "PRAGMA user_version = 1;")
        db.execute(
            "INSERT INTO versions (arn, layer, region, account, version) VALUES (?, ?, ?, ?, ?)",
            (version(1).arn, "web", "eu-west-1", "111122223333", 1),
        )
    registry = Registry(path)
    assert [(v.version, v.signing) for v in registry.versions("web")] == [(1, None)]
    signed = Signing("arn:aws:signer:eu-west-1:1:/signing-profiles/p/abc", "job", "cd" * 32)
    registry.record_versions([replace(version(2), signing=signed)])
    registry.record_versions([version(2)])  # found again unchanged: keeps how it was signed
    assert registry.versions("web")[-1].signing == signed


def test_a_registry_from_a_newer_layerkit_is_refused_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(UserError, match="written by a newer layerkit"):
        Registry(path).versions()


def _record_many(path: str, worker: int) -> None:
    registry = Registry(Path(path))
    for n in range(25):
        registry.record_versions([version(worker * 1000 + n)])


def test_processes_writing_at_once_lose_no_record(tmp_path: Path) -> None:
    from multiprocessing import get_context

    path = tmp_path / "registry.sqlite"
    with get_context("spawn").Pool(4) as pool:
        pool.starmap(_record_many, [(str(path), worker) for worker in range(4)])
    assert len(Registry(path).versions("web")) == 100
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("kind", ["folder", "corrupt", "empty"])
def test_an_unreadable_registry_is_named_with_the_way_back(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "registry.sqlite"
    if kind == "folder":
        path.mkdir()
    elif kind == "corrupt":
        path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    else:
        path.write_bytes(b"")
    if kind == "empty":  # an empty file is a new database: it is simply used
        assert Registry(path).versions() == []
        return
    with pytest.raises(UserError) as raised:
        Registry(path).versions()
    assert str(path) in str(raised.value) and "layerkit registry sync" in str(raised.value)
