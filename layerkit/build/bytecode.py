"""Bytecode for the target's Python, so that a cold start compiles nothing.

Lambda extracts a layer into a read-only /opt, and every cold start is a new sandbox:
Python can never write, let alone keep, the bytecode it compiles there. A `.py` shipped
without its `.pyc` is compiled again on every cold start (about 2 s for numpy, pandas,
pydantic and cryptography on python3.11). So each `.py` gets its
`__pycache__/NAME.cpython-XY.pyc`, made by an interpreter of the target's exact minor
version (the magic number changes with every minor version; the architecture does not
matter).

The pyc are hash-based and unchecked (PEP 552): a timestamp pyc is checked against the
source's mtime and size, and a ZIP's extraction does not keep mtimes, so it would be
stale; a checked-hash pyc makes Python read and hash every source on every import. A
layer version is immutable, so there is nothing to check.

Compiling is cached per (wheel SHA-256, compiler): a ZIP of the wheel's bytecode, whose
compressed members are copied into layers as they are, like a wheel's (see archive.py).
The compiler runs with a fixed hash seed and compiles every file on its own, so the
bytes do not depend on the process or on the other files compiled with it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from layerkit import runner
from layerkit.build import archive
from layerkit.build.archive import Entry
from layerkit.build.container import BuildContainer
from layerkit.build.install import Installed
from layerkit.errors import ToolError
from layerkit.files import write_atomic
from layerkit.runner import run

log = logging.getLogger("layerkit")

# Run by the target's interpreter: python COMPILE WORK compiles each WORK/src/UNIT/**.py
# into WORK/pyc/UNIT/ at the path importlib looks for (`__pycache__/NAME.cpython-XY.pyc`),
# on every core, and prints a summary. A file's bytecode depends on that file alone (and on
# its path, recorded in the code object), not on the process or the files compiled before.
COMPILE = r"""
import concurrent.futures, importlib.util, json, os, py_compile, sys

def compile_one(job):
    path, relative, target = job
    try:
        # dfile: the name recorded in the code object. Python replaces it with the real path
        # when it loads the pyc beside its source; the path in site-packages keeps the
        # bytes the same whatever the folder the build ran in.
        py_compile.compile(
            path, cfile=target, dfile=relative, doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    except py_compile.PyCompileError:
        return relative  # e.g. Python 2 examples: shipped as source only
    return None

if __name__ == "__main__":
    work = sys.argv[1]
    jobs = []
    for unit in sorted(os.listdir(os.path.join(work, "src"))):
        src, out = os.path.join(work, "src", unit), os.path.join(work, "pyc", unit)
        for folder, _, names in sorted(os.walk(src)):
            for name in sorted(n for n in names if n.endswith(".py")):
                relative = os.path.relpath(os.path.join(folder, name), src)
                target = os.path.join(out, importlib.util.cache_from_source(relative))
                jobs.append((os.path.join(folder, name), relative, target))
    results = None
    if len(jobs) >= 64 and (os.cpu_count() or 1) > 1:
        try:
            with concurrent.futures.ProcessPoolExecutor() as pool:
                results = list(pool.map(compile_one, jobs, chunksize=16))
        except (OSError, NotImplementedError):
            pass  # no process pools here (no /dev/shm in some containers): one by one
    failed = [r for r in (results if results is not None else map(compile_one, jobs)) if r]
    print("LAYERKIT-BYTECODE " + json.dumps({"failed": failed}))
"""

PROBE = "import sys; print(sys.implementation.cache_tag, '%d.%d.%d' % sys.version_info[:3])"


@dataclass(frozen=True)
class Interpreter:
    """A CPython on this host."""

    path: Path
    version: str  # "3.11.7"

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


class Compiler(Protocol):
    """Compiles for one CPython minor version. Bytecode is cached and keyed by that version
    alone: the format is fixed per minor version (its magic number), whoever compiles it."""

    @property
    def python(self) -> str:
        """The minor version it compiles for: "3.11"."""
        ...

    def compile(self, work: Path) -> list[str]:
        """Compile work/src/**.py into work/pyc/; return the sources that did not compile."""
        ...


def _summary(output: str, where: str) -> list[str]:
    for line in output.splitlines():
        if line.startswith("LAYERKIT-BYTECODE "):
            failed: list[str] = json.loads(line.removeprefix("LAYERKIT-BYTECODE "))["failed"]
            return failed
    raise ToolError(f"compiling bytecode with {where}", 0, f"no summary in:\n{output[-2000:]}")


@dataclass(frozen=True)
class HostCompiler:
    """The target's Python on this machine."""

    interpreter: Interpreter

    @property
    def python(self) -> str:
        return self.interpreter.minor

    def compile(self, work: Path) -> list[str]:
        script = work / "compile.py"
        script.write_text(COMPILE, encoding="utf-8")
        # No PYTHON* variable of the caller's reaches it, a fixed hash seed (set and
        # frozenset constants), no site-packages.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONHASHSEED"] = "0"
        output = run([str(self.interpreter.path), "-s", "-S", str(script), str(work)], env=env)
        return _summary(output.stdout, str(self.interpreter.path))


@dataclass(frozen=True)
class ImageCompiler:
    """The build image's Python, when the target is built in a container."""

    container: BuildContainer

    @property
    def python(self) -> str:
        return self.container.python

    def compile(self, work: Path) -> list[str]:
        (work / "compile.py").write_text(COMPILE, encoding="utf-8")
        output = self.container.run(
            work, "PYTHONHASHSEED=0 python3 -s -S /work/compile.py /work\n", "compiling bytecode"
        )
        return _summary(output, self.container.image)


def cache_tag(python: str) -> str:
    """importlib's tag for CPython X.Y: cpython-311."""
    return "cpython-" + python.replace(".", "")


# --- finding the interpreter ----------------------------------------------------------


def find_interpreter(
    python: str, env: Mapping[str, str], cache_root: Path, uv_binary: str | None
) -> Interpreter | None:
    """A CPython `python` ("3.11") on this host: on PATH, in pyenv, or one uv knows.

    pyenv's shims are skipped: they are shell scripts that fail for versions not selected.
    What each candidate is gets asked once and remembered by its path, size and mtime,
    so a build that changes nothing starts no interpreter.
    """
    pyenv_root = Path(env.get("PYENV_ROOT") or Path(env.get("HOME", "~")).expanduser() / ".pyenv")
    shims = pyenv_root / "shims"
    candidates: list[Path] = []
    for folder in env.get("PATH", "").split(os.pathsep):
        if folder and Path(folder) != shims:
            candidates.append(Path(folder) / f"python{python}")
    patches = (pyenv_root / "versions").glob(f"{python}.*/bin/python{python}")
    candidates += sorted(patches, key=lambda p: _numeric(p.parent.parent.name), reverse=True)
    probes = _Probes(cache_root / "interpreters.json")
    for candidate in candidates:
        found = probes.ask(candidate)
        if found is not None and found.minor == python:
            probes.save()
            return found
    if uv_binary is not None:
        # uv's managed Pythons (`uv python install 3.13`), and whatever else uv can see.
        where = runner.output([uv_binary, "python", "find", "--no-python-downloads", python],
                              env=env)  # fmt: skip
        if where:
            found = probes.ask(Path(where))
            if found is not None and found.minor == python:
                probes.save()
                return found
    probes.save()
    return None


def _numeric(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


class _Probes:
    """What each interpreter on this host is, kept in the cache beside the wheels."""

    def __init__(self, path: Path) -> None:
        self.path, self.changed = path, False
        try:
            self.known: dict[str, list[object]] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.known = {}

    def ask(self, candidate: Path) -> Interpreter | None:
        try:
            real = candidate.resolve(strict=True)
            stat = real.stat()
        except OSError:
            return None
        if not os.access(real, os.X_OK) or not real.is_file():
            return None
        stamp = [stat.st_size, stat.st_mtime_ns]
        remembered = self.known.get(str(real))
        if remembered is not None and remembered[:2] == stamp:
            version = remembered[2]
            return Interpreter(candidate, str(version)) if version else None
        words = (runner.output([str(candidate), "-I", "-S", "-c", PROBE], timeout=30) or "").split()
        version = ""
        if len(words) >= 2 and words[0].startswith("cpython-"):
            version = words[1]  # only CPython: Lambda runs CPython's bytecode
        self.known[str(real)] = [*stamp, version]
        self.changed = True
        return Interpreter(candidate, version) if version else None

    def save(self) -> None:
        if not self.changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(self.known, indent=1, sort_keys=True))
        self.changed = False


# --- adding bytecode to installed distributions ----------------------------------------


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
