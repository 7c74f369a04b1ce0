"""The registry: every build and published layer version, in SQLite.

It lives on one disk (default ~/.local/share/layerkit/registry.sqlite, or --registry,
or LAYERKIT_REGISTRY), so it must never be the only record: `layerkit registry sync`
rebuilds the versions from the account itself, reading the content marker of the
Description and, where the layer can be downloaded, the manifest inside it.
"""

from __future__ import annotations

import datetime
import getpass
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerkit import runner
from layerkit.errors import UserError
from layerkit.layer.manifest import Change, LayerManifest, diff

# PRAGMA user_version: which migrations a registry file has had. A newer layerkit runs the
# missing ones; an older one refuses a newer file rather than misread it.
SCHEMA_VERSION = 2
BUSY_SECONDS = 30
_SCHEMA_1 = """
CREATE TABLE IF NOT EXISTS builds (
    id INTEGER PRIMARY KEY,
    recipe TEXT NOT NULL,
    artifact TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    targets TEXT NOT NULL,
    manifest TEXT,
    at TEXT NOT NULL,
    by TEXT NOT NULL,
    git_commit TEXT
);
CREATE TABLE IF NOT EXISTS versions (
    arn TEXT PRIMARY KEY,
    layer TEXT NOT NULL,
    region TEXT NOT NULL,
    account TEXT NOT NULL,
    version INTEGER NOT NULL,
    sha256 TEXT,
    size INTEGER,
    description TEXT,
    runtimes TEXT,
    architectures TEXT,
    created TEXT,
    manifest TEXT,
    by TEXT,
    git_commit TEXT
);
"""
# Each schema version's migration from the one before; a new file runs them all.
_MIGRATIONS = {
    1: _SCHEMA_1,
    2: "ALTER TABLE versions ADD COLUMN signing TEXT;",  # JSON of Signing
}


@dataclass(frozen=True)
class Signing:
    """How a published version was signed (AWS Signer): what Lambda checks a function's
    code signing configuration against."""

    profile_version_arn: str
    job_arn: str
    signed_sha256: str  # the signed ZIP's: Lambda's CodeSha256 of the version

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Version:
    arn: str
    layer: str
    region: str
    account: str
    version: int
    sha256: str | None
    size: int | None
    description: str
    runtimes: tuple[str, ...]
    architectures: tuple[str, ...]
    created: str
    manifest: LayerManifest | None = None
    by: str | None = None
    git_commit: str | None = None
    signing: Signing | None = None

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["runtimes"], data["architectures"] = list(self.runtimes), list(self.architectures)
        data["manifest"] = self.manifest.to_json() if self.manifest else None
        data["signing"] = self.signing.as_dict() if self.signing else None
        return data


@dataclass(frozen=True)
class Recorded:
    """What the registry knows of layer versions beyond what Lambda says, by ARN."""

    zipped: dict[str, int]
    unzipped: dict[str, int]  # from the manifest: what the layer adds to a function
    manifests: dict[str, LayerManifest]


def recorded(versions: list[Version]) -> Recorded:
    return Recorded(
        zipped={v.arn: v.size for v in versions if v.size is not None},
        unzipped={
            v.arn: v.manifest.unzipped_bytes
            for v in versions
            if v.manifest and v.manifest.unzipped_bytes is not None
        },
        manifests={v.arn: v.manifest for v in versions if v.manifest},
    )


def _stored(manifest: LayerManifest | None) -> str | None:
    return json.dumps(manifest.to_json()) if manifest else None


def who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def git_commit(cwd: Path) -> str | None:
    """The commit checked out where layerkit runs, when that is a git repository."""
    if not any((folder / ".git").exists() for folder in (cwd, *cwd.parents)):
        return None  # not a repository: no need to start git
    return runner.output(["git", "rev-parse", "HEAD"], cwd=cwd) or None


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class Registry:
    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection in one transaction. Builds and publishes may write at once (CI
        runners sharing a disk, parallel jobs): WAL lets readers go on while one writes,
        and writers wait for each other up to BUSY_SECONDS instead of failing."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=BUSY_SECONDS)) as db:
                db.row_factory = sqlite3.Row
                db.execute("PRAGMA journal_mode=WAL")  # kept in the file: set once
                self._migrate(db)
                with db:  # one transaction
                    yield db
        except sqlite3.DatabaseError as exc:
            raise self._unreadable(exc) from None
        except OSError as exc:
            raise UserError(
                f"Cannot use the registry {self.path}: {exc.strerror or exc}. Point --registry "
                "(or LAYERKIT_REGISTRY) at a file in a folder you can write."
            ) from None

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise UserError(
                f"{self.path} was written by a newer layerkit (registry schema {version}; "
                f"this one knows {SCHEMA_VERSION}). Upgrade layerkit, or point --registry "
                "elsewhere and run `layerkit registry sync`."
            )
        if version < SCHEMA_VERSION:
            with db:  # two processes opening a new file at once: one migrates, one waits
                db.execute("BEGIN IMMEDIATE")
                version = int(db.execute("PRAGMA user_version").fetchone()[0])  # the other's?
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in filter(str.strip, _MIGRATIONS[step].split(";")):
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _unreadable(self, exc: sqlite3.DatabaseError) -> UserError:
        if "locked" in str(exc) or "busy" in str(exc):
            return UserError(
                f"The registry {self.path} stayed locked by another layerkit for "
                f"{BUSY_SECONDS} s ({exc}). Run again when it has finished."
            )
        what = "is a folder, not a file" if self.path.is_dir() else f"cannot be read ({exc})"
        return UserError(
            f"The registry {self.path} {what}. It is only a local record: move it aside and "
            "run `layerkit registry sync` to rebuild it from the account, or point "
            "--registry (or LAYERKIT_REGISTRY) at another file."
        )

    def record_build(
        self,
        recipe: str,
        artifact: str,
        sha256: str,
        targets: list[str],
        manifest: LayerManifest | None,
    ) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO builds (recipe, artifact, sha256, targets, manifest, at, by,"
                " git_commit) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (recipe, artifact, sha256, json.dumps(targets), _stored(manifest), now(),
                 who(), git_commit(Path.cwd())),
            )  # fmt: skip

    def record_versions(self, versions: list[Version]) -> None:
        with self._db() as db:
            for v in versions:
                db.execute(
                    "INSERT INTO versions (arn, layer, region, account, version,"
                    " sha256, size, description, runtimes, architectures, created, manifest,"
                    " by, git_commit, signing)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    # a version found again unchanged keeps how it was signed
                    " ON CONFLICT(arn) DO UPDATE SET layer=excluded.layer,"
                    " region=excluded.region, account=excluded.account,"
                    " version=excluded.version, sha256=excluded.sha256, size=excluded.size,"
                    " description=excluded.description, runtimes=excluded.runtimes,"
                    " architectures=excluded.architectures, created=excluded.created,"
                    " manifest=excluded.manifest, by=excluded.by,"
                    " git_commit=excluded.git_commit,"
                    " signing=COALESCE(excluded.signing, versions.signing)",
                    (v.arn, v.layer, v.region, v.account, v.version, v.sha256, v.size,
                     v.description, json.dumps(v.runtimes), json.dumps(v.architectures),
                     v.created, _stored(v.manifest), v.by,
                     v.git_commit, json.dumps(v.signing.as_dict()) if v.signing else None),
                )  # fmt: skip

    def versions(self, layer: str | None = None, region: str | None = None) -> list[Version]:
        query, args = "SELECT * FROM versions WHERE 1=1", list[str]()
        if layer:
            query, args = query + " AND layer = ?", [*args, layer]
        if region:
            query, args = query + " AND region = ?", [*args, region]
        with self._db() as db:
            rows = db.execute(query + " ORDER BY layer, region, version", args).fetchall()
        return [
            Version(
                arn=r["arn"],
                layer=r["layer"],
                region=r["region"],
                account=r["account"],
                version=r["version"],
                sha256=r["sha256"],
                size=r["size"],
                description=r["description"],
                runtimes=tuple(json.loads(r["runtimes"] or "[]")),
                architectures=tuple(json.loads(r["architectures"] or "[]")),
                created=r["created"],
                manifest=LayerManifest.from_json(json.loads(r["manifest"]), str(self.path))
                if r["manifest"] and r["manifest"] != "null"
                else None,
                by=r["by"],
                git_commit=r["git_commit"],
                signing=Signing(**json.loads(r["signing"])) if r["signing"] else None,
            )
            for r in rows
        ]

    def version(self, spec: str) -> list[Version]:
        """NAME (every version) or NAME:VERSION, as recorded."""
        name, _, number = spec.partition(":")
        found = self.versions(name)
        if number:
            found = [v for v in found if str(v.version) == number]
        if not found:
            raise UserError(
                f"{spec} is not in the registry: publish it, or run `layerkit registry sync`."
            )
        return found

    def newest_manifest(self, spec: str) -> LayerManifest:
        """The manifest of NAME's newest version (or of NAME:VERSION), as recorded."""
        newest = max(self.version(spec), key=lambda v: v.version)
        if newest.manifest is None:
            raise UserError(
                f"{newest.arn} has no layerkit manifest in the registry (built by another "
                "tool, or recorded without one): download its ZIP and run `layerkit sbom ZIP`."
            )
        return newest.manifest

    def diff(self, old: str, new: str) -> dict[str, list[Change]]:
        """Distributions added, removed, upgraded and downgraded from version old to new."""
        manifests = []
        for spec in (old, new):
            found = next((v.manifest for v in self.version(spec) if v.manifest), None)
            if found is None:
                raise UserError(f"{spec} has no manifest in the registry (not built by layerkit).")
            manifests.append(found)
        return diff(manifests[0], manifests[1])
