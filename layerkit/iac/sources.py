"""The files bump reads: everything under the given paths but generated and vendored trees.

In a git checkout, git itself lists the files (`git ls-files --cached --others
--exclude-standard`), so whatever `.gitignore` ignores is left out exactly as git leaves it
out; elsewhere the tree is walked. Either way the trees tools generate or vendor are never
read (`node_modules`, `cdk.out`, `.aws-sam`, `.terraform`, virtual environments…), nor
Terraform's state files, and
symbolic links are never followed: one inside the paths points at a file that is read
under its own name, and one out of them (or broken, or a loop) is reported.

A file is decoded only if it holds the bytes `:layer:`, which is what makes 10,000 files
a fraction of a second: most are read and dropped without a regular expression.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from layerkit.errors import UserError
from layerkit.iac.references import MARKER
from layerkit.runner import output

GENERATED = frozenset({
    ".git", "node_modules", "cdk.out", ".aws-sam", ".terraform", ".serverless",
    ".venv", "venv", "__pycache__", ".tox", ".nox", ".mypy_cache", ".ruff_cache",
    ".pytest_cache",
})  # fmt: skip
# Files tools write, not sources: Terraform's state records what was applied, and a bump
# there would make Terraform believe the account already has the new layer.
GENERATED_FILES = (".tfstate", ".tfstate.backup")


@dataclass(frozen=True)
class Source:
    path: Path
    data: bytes  # as read: a rewrite checks that the file still holds exactly these
    text: str


@dataclass(frozen=True)
class Skipped:
    path: Path
    why: str


@dataclass
class Sources:
    read: list[Source]  # the files that may hold a reference
    skipped: list[Skipped]
    files: int  # every file looked at


def _generated(relative: Path) -> bool:
    return relative.name.endswith(GENERATED_FILES) or any(
        part in GENERATED for part in relative.parts[:-1]
    )


def _listed_by_git(root: Path) -> list[Path] | None:
    listing = output(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    )
    if listing is None:
        return None  # not a git checkout (or no git): walk instead
    names = [name for name in listing.split("\0") if name]
    # A virtual environment that .gitignore does not name is still one (git lists it).
    venvs = tuple(name.removesuffix("pyvenv.cfg") for name in names if name.endswith("pyvenv.cfg"))
    return [
        root / name for name in names if not name.startswith(venvs) and not _generated(Path(name))
    ]


def _walked(root: Path) -> Iterator[Path]:
    for folder, dirs, names in os.walk(root):  # never descends into a linked folder
        dirs[:] = sorted(
            d for d in dirs
            if d not in GENERATED and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg"))
        )  # fmt: skip
        for name in sorted(names):
            if not name.endswith(GENERATED_FILES):
                yield Path(folder, name)
        for d in dirs:
            if os.path.islink(os.path.join(folder, d)):
                yield Path(folder, d)  # reported below, not followed


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def collect(paths: list[Path]) -> Sources:
    """Every file under the paths that may hold a layer ARN, and what could not be read."""
    for given in paths:
        if given.is_symlink() and not given.exists():
            raise UserError(
                f"{given} is a broken symbolic link, or a loop: give the folder or file it "
                "should point at."
            )
        if not given.exists():
            raise UserError(
                f"{given} does not exist. Give files or folders that hold your templates "
                "(`layerkit bump infra/ template.yaml`), or none for the current folder."
            )
    roots = [p.resolve() for p in paths]
    found = Sources([], [], 0)
    seen: set[Path] = set()
    for given in paths:
        if given.is_file():
            candidates: list[Path] | Iterator[Path] = [given.resolve()]  # given: followed
        else:
            listed = _listed_by_git(given)
            candidates = listed if listed is not None else _walked(given)
        for path in candidates:
            if path.is_symlink():
                target = Path(os.path.realpath(path))
                if not target.exists():
                    found.skipped.append(Skipped(path, "a broken symbolic link, or a loop"))
                elif not _inside(target, roots):
                    found.skipped.append(
                        Skipped(path, f"a symbolic link out of the given paths (to {target})")
                    )
                continue  # a link inside the paths: its target is read under its own name
            # the same file under two spellings (`bump . infra/`) is read once
            if path.resolve() in seen or not path.is_file():
                continue  # a tracked file deleted from the work tree, a submodule
            seen.add(path.resolve())
            found.files += 1
            _read(path, found)
    return found


def _read(path: Path, found: Sources) -> None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        found.skipped.append(Skipped(path, f"cannot be read: {exc.strerror or exc}"))
        return
    if MARKER not in data:
        return
    if b"\0" in data[:8192]:
        found.skipped.append(Skipped(path, "a binary file that holds ':layer:'; not rewritten"))
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        found.skipped.append(Skipped(path, "not UTF-8 text; not rewritten"))
        return
    found.read.append(Source(path, data, text))
