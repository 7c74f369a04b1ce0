"""The CPython interpreters on this host, found once and remembered.

A layer's bytecode is compiled by the target's own Python version (magic numbers differ
per minor version), and `verify --native` imports with it. What each candidate is gets
asked once and kept in the cache by its path, size and mtime.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from layerkit import runner
from layerkit.files import write_atomic

PROBE = "import sys; print(sys.implementation.cache_tag, '%d.%d.%d' % sys.version_info[:3])"


@dataclass(frozen=True)
class Interpreter:
    """A CPython on this host."""

    path: Path
    version: str  # "3.11.7"

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


def find_interpreter(
    python: str, env: Mapping[str, str], cache_root: Path, uv_binary: Callable[[], str] | None
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
        where = runner.output([uv_binary(), "python", "find", "--no-python-downloads", python],
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
