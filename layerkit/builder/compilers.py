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

This module says who compiles (this host's interpreter, or the build image's); adding the
pyc to installed distributions, and their cache, is bytecode.py's. The compiler runs with
a fixed hash seed and compiles every file on its own, so the
bytes do not depend on the process or on the other files compiled with it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from layerkit.builder.interpreters import Interpreter
from layerkit.errors import ToolError
from layerkit.runner import run

if TYPE_CHECKING:
    from layerkit.builder.container import BuildContainer

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
