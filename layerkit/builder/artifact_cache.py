"""The artifact cache: built ZIPs by build key, and what a no-op build needs to know of them.

`cache/artifacts/KEY.zip` is a finished layer; `KEY.json` beside it holds its file count,
unzipped size and SHA-256 with the size and mtime it had, so that a no-op build whose
`dist/` ZIP is a hard link of it reads and hashes nothing. Only this module knows that
layout: the pipeline asks `find` once and hands what it built to `keep`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from layerkit import files, log
from layerkit.errors import BuildError, UserError
from layerkit.files import sha256_of, write_atomic


class BuildStatus(str, Enum):
    built = "built"
    cached = "cached"  # copied from the artifact cache
    unchanged = "unchanged"  # dist/ already held it


@dataclass(frozen=True)
class Summary:
    """What a build reports of a ZIP, known without reading it again."""

    files: int
    unzipped: int  # bytes
    sha256: str


@dataclass(frozen=True)
class ArtifactCache:
    """The cache of finished ZIPs, by build key."""

    root: Path  # the cache folder; artifacts live under root/artifacts

    def path(self, key: str) -> Path:
        return self.root / "artifacts" / f"{key}.zip"

    def find(self, dest: Path, key: str) -> tuple[Summary, BuildStatus] | None:
        """dest made current from the cache, and how: unchanged (it was already), cached
        (copied from the cache); None when it must be built. A damaged cached artifact is
        dropped."""
        cached = self.path(key)
        found = _linked(dest, cached) or _summary_of(dest, key)
        if found is not None:
            return found, BuildStatus.unchanged
        if not cached.exists():
            return None
        _place(cached, dest)
        found = _linked(dest, cached) or _summary_of(dest, key)
        if found is None:
            log.warning("%s: damaged artifact in the cache; building it again", cached)
            cached.unlink()
            return None
        return found, BuildStatus.cached

    def keep(self, key: str, summary: Summary, dest: Path) -> None:
        """Record a freshly written artifact (at path(key)) and put it at dest."""
        cached = self.path(key)
        stat = cached.stat()
        record = [summary.files, summary.unzipped, summary.sha256, stat.st_size, stat.st_mtime_ns]
        write_atomic(cached.with_suffix(".json"), json.dumps(record))
        _place(cached, dest)


def _summary_of(path: Path, key: str) -> Summary | None:
    """The summary of a ZIP built from exactly this key, else None."""
    if not path.exists():
        return None
    import zipfile  # a no-op build whose dist/ ZIP is the cached one opens nothing

    from layerkit.layer import manifest

    try:
        with zipfile.ZipFile(path) as zipped:
            infos = zipped.infolist()
            found = manifest.read_from(zipped)
    except (zipfile.BadZipFile, OSError, UserError):
        return None  # damaged, or not a layer: built again
    if found is None or found.build_key != key:
        return None
    return Summary(len(infos), sum(i.file_size for i in infos), sha256_of(path))


def _linked(dest: Path, cached: Path) -> Summary | None:
    """The summary of dest when it is the cached artifact itself (a hard link, see _place)
    as it was written: a no-op build then reads and hashes nothing."""
    try:
        if not os.path.samefile(dest, cached):
            return None
        files, unzipped, sha256, size, mtime = json.loads(
            cached.with_suffix(".json").read_text(encoding="utf-8")
        )
        stat = cached.stat()
    except (OSError, ValueError):
        return None
    if (stat.st_size, stat.st_mtime_ns) != (size, mtime):
        return None  # changed in place since: read it again
    return Summary(int(files), int(unzipped), str(sha256))


def _place(cached: Path, dest: Path) -> None:
    try:
        files.link_or_copy(cached, dest)
    except OSError as exc:
        raise BuildError(
            f"Cannot write {dest}: {exc.strerror or exc}. Free some space or choose another "
            "--out-dir; nothing was left half-written."
        ) from None
