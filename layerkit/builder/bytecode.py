"""Adding bytecode to installed distributions, through a compiler (compilers.py).

Compiling is cached per (wheel SHA-256, compiler): a ZIP of the wheel's bytecode, whose
compressed members are copied into layers as they are, like a wheel's (see archive.py).
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from layerkit import log
from layerkit.builder import archive
from layerkit.builder.archive import Entry
from layerkit.builder.compilers import Compiler, cache_tag
from layerkit.builder.install import Installed


@dataclass(frozen=True)
class Compiled:
    """An installed distribution to add bytecode to."""

    installed: Installed
    site_packages: str  # the prefix of its entries, e.g. "python"

    def sources(self) -> list[tuple[str, Entry]]:
        """(path in site-packages, entry) of every `.py` it ships, slimming done."""
        prefix = f"{self.site_packages}/"
        return [
            (entry.path.removeprefix(prefix), entry)
            for entry in self.installed.entries
            if entry.path.endswith(".py")
        ]

    def cache_name(self) -> str | None:
        """Its name in the bytecode cache: the wheel's SHA-256 and which sources it ships
        (another slimming ships others). None when it was compiled from source."""
        if not self.installed.sha256:
            return None
        paths = "\n".join(sorted(path for path, _ in self.sources()))
        return f"{self.installed.sha256}-{hashlib.sha256(paths.encode()).hexdigest()[:16]}.zip"


def add_bytecode(items: list[Compiled], compiler: Compiler, cache_root: Path) -> list[Installed]:
    """Each distribution with a pyc beside every `.py` it ships, for the compiler's Python.

    Wheels' bytecode comes from the cache, and what is missing is compiled in one run of
    the compiler; distributions compiled from source are compiled every time.
    """
    folder = cache_root / "bytecode" / cache_tag(compiler.python)
    stores = [folder / name if (name := item.cache_name()) else None for item in items]
    cached = [_cached(store) for store in stores]
    pending = [n for n, found in enumerate(cached) if found is None]
    compiled = _compile([(items[n], stores[n]) for n in pending], compiler) if pending else []
    pyc = dict(zip(pending, compiled, strict=True))
    return [
        _with(item, found if found is not None else pyc[number])
        for number, (item, found) in enumerate(zip(items, cached, strict=True))
    ]


def _cached(store: Path | None) -> list[Entry] | None:
    """The cached bytecode; None when there is none, or the entry is damaged (then it is
    dropped, and compiled again)."""
    if store is None or not store.exists():
        return None
    try:
        return _from_cache(store)
    except (zipfile.BadZipFile, OSError):
        log.warning("damaged bytecode cache entry %s: compiling it again", store)
        store.unlink(missing_ok=True)
        return None


def _with(item: Compiled, pyc: list[Entry]) -> Installed:
    """The distribution plus its bytecode, under its site-packages."""
    added = tuple(replace(entry, path=f"{item.site_packages}/{entry.path}") for entry in pyc)
    return replace(
        item.installed,
        entries=item.installed.entries + added,
        size=item.installed.size + sum(e.size for e in added),
    )


def _from_cache(store: Path) -> list[Entry]:
    with zipfile.ZipFile(store) as cached:
        return [archive.wheel_entry(store, info, info.filename) for info in cached.infolist()]


def _compile(pending: list[tuple[Compiled, Path | None]], compiler: Compiler) -> list[list[Entry]]:
    """Compile the distributions in one run; store wheels' bytecode in the cache."""
    result = []
    with tempfile.TemporaryDirectory(prefix="layerkit-bytecode-") as tmp:
        work = Path(tmp)
        for number, (item, _) in enumerate(pending):
            for path, entry in item.sources():
                dest = work / "src" / str(number) / path
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(archive.read_member(entry))
        # Only compiled extensions, no source: nothing to start an interpreter for.
        failed = compiler.compile(work) if (work / "src").exists() else []
        if failed:
            log.info("%d files do not compile and are shipped as source only", len(failed))
            log.debug("not compiled: %s", ", ".join(failed))
        for number, (_, store) in enumerate(pending):
            root = work / "pyc" / str(number)
            files = sorted(root.rglob("*.pyc")) if root.exists() else []
            entries = archive.compress_all(
                (p.relative_to(root).as_posix(), p.read_bytes(), 0o644) for p in files
            )
            if store is not None:
                store.parent.mkdir(parents=True, exist_ok=True)
                archive.write(entries, store)
            result.append(entries)
    return result
