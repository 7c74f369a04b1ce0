"""Files on disk, written so that a reader never sees half of one.

Every file layerkit writes that another run may read (ZIPs, locks, caches, SBOMs, cached
downloads) goes through `atomic`: the bytes go to a uniquely named temporary file in the
same folder, which replaces the target by rename only once it is complete. A run killed
half-way, a full disk or two processes writing at once leave the old file or the new one,
never a truncated one that the next run would trust.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from layerkit.errors import UserError

# tempfile, shutil and zipfile are imported where they are used: a no-op build writes and
# opens nothing, and importing them costs a twentieth of it.
if TYPE_CHECKING:
    import zipfile


def parse_toml(text: str) -> dict[str, Any]:
    """TOML text as a table (tomllib; tomli before 3.11). Bad TOML raises a ValueError
    (tomllib's TOMLDecodeError) saying where."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    table: dict[str, Any] = tomllib.loads(text)
    return table


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def atomic(path: Path, mode: int = 0o644) -> Iterator[IO[bytes]]:
    """A binary file to write `path` through: it appears whole, with `mode`, when the block
    ends, and not at all when the block raises (the temporary file is removed)."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below on every path
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    part = Path(handle.name)
    try:
        with handle:
            yield handle
        os.chmod(part, mode)  # a temporary file is private (0600); the result is not
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write `path` whole or not at all (text is written as UTF-8)."""
    with atomic(path) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


def link_or_copy(source: Path, dest: Path) -> None:
    """Put source at dest atomically: a hard link where the disk allows, else a copy.

    A link is safe because layerkit only ever replaces files by renaming over them, so
    neither name's content is changed in place.
    """
    import shutil
    import threading

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        try:
            os.link(source, part)
        except OSError:
            shutil.copyfile(source, part)
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def open_zip(path: Path) -> zipfile.ZipFile:
    """A ZIP opened for reading, or a UserError naming the file: never a traceback."""
    import zipfile

    try:
        return zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: not a readable ZIP file ({exc}).") from None
