"""The artifact cache: built ZIPs by build key, and what a no-op build needs to know of them.

`cache/artifacts/KEY.zip` is a finished layer; `KEY.json` beside it holds its file count,
unzipped size and SHA-256 with the size and mtime it had, so that a no-op build whose
`dist/` ZIP is a hard link of it reads and hashes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

from layerkit.layer import manifest
from layerkit.errors import BuildError, UserError
from layerkit.files import sha256_of, write_atomic

Summary = tuple[int, int, str]  # files, unzipped bytes, SHA-256


def summary_of(path: Path, key: str) -> Summary | None:
    """(files, unzipped bytes, SHA-256) of a ZIP built from exactly this key, else None."""
    if not path.exists():
        return None
    try:
        with zipfile.ZipFile(path) as zipped:
            infos = zipped.infolist()
            found = manifest.read_from(zipped)
    except (zipfile.BadZipFile, OSError, UserError):
        return None  # damaged, or not a layer: built again
    if found is None or found.build_key != key:
        return None
    return len(infos), sum(i.file_size for i in infos), sha256_of(path)


def remember(cached: Path, summary: Summary) -> None:
    """Keep an artifact's summary beside it, with the size and mtime it was written with."""
    stat = cached.stat()
    record = [*summary, stat.st_size, stat.st_mtime_ns]
    write_atomic(cached.with_suffix(".json"), json.dumps(record))


def linked(dest: Path, cached: Path) -> Summary | None:
    """(files, unzipped bytes, SHA-256) of dest when it is the cached artifact itself (a hard
    link, see place) as it was written: a no-op build then reads and hashes nothing."""
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
    return int(files), int(unzipped), str(sha256)


def place(cached: Path, dest: Path) -> None:
    """Put a cached artifact at dest atomically, as a hard link when the disk allows.

    A link is safe: layerkit only ever replaces files by renaming over them, so neither
    copy is modified in place.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        try:
            os.link(cached, tmp)
        except OSError:
            shutil.copyfile(cached, tmp)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BuildError(
            f"Cannot write {dest}: {exc.strerror or exc}. Free some space or choose another "
            "--out-dir; nothing was left half-written."
        ) from None
