"""Where a layer's unzipped bytes go: per distribution (its RECORD's files), its bytecode,
and the recipe's own files; inside the largest distribution, per top-level folder. What
`layerkit report` draws against the 250 MiB a function shares with its layers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from layerkit.files import open_zip
from layerkit.layer.inspection import check_paths
from layerkit.layer.metadata import distributions_in


@dataclass(frozen=True)
class Part:
    name: str
    version: str  # empty for what is not a distribution
    size: int  # unzipped bytes
    bytecode: int  # of them, __pycache__/*.pyc


@dataclass(frozen=True)
class Breakdown:
    parts: tuple[Part, ...]  # largest first; files of no distribution as "(other files)"
    inside: tuple[Part, ...]  # the largest distribution by top-level folder, largest first
    unzipped: int
    zipped: int

    @property
    def bytecode(self) -> int:
        return sum(p.bytecode for p in self.parts)


OTHER = "(other files)"  # data and config from the recipe, the manifest, loose modules


def breakdown(zip_path: Path) -> Breakdown:
    with open_zip(zip_path) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        check_paths([i.filename for i in infos], zip_path)
        sizes = {i.filename: i.file_size for i in infos}
        owner: dict[str, tuple[str, str]] = {}  # file -> (distribution, version)
        for folder, meta in distributions_in(archive):
            record = f"{folder}/RECORD"
            site = str(folder.parent)
            prefix = "" if site == "." else f"{site}/"
            rows = archive.read(record).decode("utf-8", "replace").splitlines() if (
                record in sizes) else []  # fmt: skip
            for row in rows:
                path = prefix + row.split(",")[0]
                if path in sizes:
                    owner.setdefault(path, (meta.name, meta.version))
            for name in sizes:  # a distribution's bytecode is not always in its RECORD
                if name.startswith(f"{folder}/"):
                    owner.setdefault(name, (meta.name, meta.version))
        tops = _owned_folders(owner)
    totals: dict[tuple[str, str], list[int]] = {}
    for name, size in sizes.items():
        total = totals.setdefault(_owner(name, owner, tops) or (OTHER, ""), [0, 0])
        total[0] += size
        total[1] += size if "/__pycache__/" in name else 0
    parts = sorted(
        (Part(name, version, size, pyc) for (name, version), (size, pyc) in totals.items()),
        key=lambda p: (-p.size, p.name),
    )
    largest = next((p for p in parts if p.name != OTHER), None)
    inside: dict[str, list[int]] = {}
    if largest is not None:
        for name, size in sizes.items():
            if _owner(name, owner, tops) == (largest.name, largest.version):
                total = inside.setdefault(_inner_folder(name), [0, 0])
                total[0] += size
                total[1] += size if "/__pycache__/" in name else 0
    return Breakdown(
        parts=tuple(parts),
        inside=tuple(
            sorted(
                (Part(f, "", s, b) for f, (s, b) in inside.items()), key=lambda p: (-p.size, p.name)
            )
        ),
        unzipped=sum(sizes.values()),
        zipped=zip_path.stat().st_size,
    )


def _owner(
    name: str, owner: dict[str, tuple[str, str]], tops: dict[str, tuple[str, str]]
) -> tuple[str, str] | None:
    """Whose a file is: its RECORD's, its package folder's, or for a top-level module's
    bytecode (site/__pycache__/six.cpython-312.pyc) the module's."""
    found = owner.get(name) or tops.get(_package_of(name))
    if found is None and "/__pycache__/" in name:
        folder, _, file = name.rpartition("/__pycache__/")
        found = owner.get(f"{folder}/{file.split('.')[0]}.py")
    return found


def _package_of(name: str) -> str:
    """The site-packages path of the top-level package a file is in (site/top)."""
    parts = PurePosixPath(name).parts
    if "site-packages" in parts[:-1]:
        i = parts.index("site-packages")
        return "/".join(parts[: i + 2])
    if parts[0] == "python" and len(parts) > 2:
        return "/".join(parts[:2])
    return name


def _owned_folders(owner: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """Top-level package folders and who owns them, for files a RECORD does not list."""
    found: dict[str, tuple[str, str]] = {}
    for name, key in owner.items():
        if ".dist-info/" not in name:
            found.setdefault(_package_of(name), key)
    return found


def _inner_folder(name: str) -> str:
    """A file's folder one level inside its package (numpy/core), or the package."""
    package = _package_of(name)
    rest = PurePosixPath(name[len(package) :].lstrip("/")).parts
    top = package.rsplit("/", 1)[-1]
    if ".dist-info" in top or len(rest) <= 1:
        return top
    return f"{top}/{rest[0]}"
