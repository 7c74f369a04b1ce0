"""`layerkit inspect`: what is inside any layer ZIP, ours or not, without extracting it."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from layerkit import quota
from layerkit.errors import UserError
from layerkit.files import open_zip
from layerkit.layer import elf, manifest
from layerkit.layer.metadata import distributions_in, wheel_tags
from layerkit.targets import ARCHITECTURES, RUNTIMES

_SITE = re.compile(r"^python/lib/python(\d+\.\d+)/site-packages$")
_CPYTHON_SO = re.compile(r"\.cpython-(\d)(\d+)")


def check_paths(names: list[str], zip_path: Path) -> None:
    for name in names:
        path = PurePosixPath(name.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name):
            raise UserError(
                f"{zip_path}: refusing to read a ZIP with the unsafe path {name!r} (absolute "
                "or with '..'): extracting it would write outside /opt. Nothing was extracted."
            )


@dataclass(frozen=True)
class InstalledDist:
    name: str
    version: str
    site: str  # the folder its *.dist-info is in
    size: int | None  # unzipped, from its RECORD; None without one


@dataclass(frozen=True)
class LargeFile:
    path: str
    size: int


@dataclass(frozen=True)
class Coverage:
    """The bytecode of one interpreter (cpython-311): for how many sources, of which kind."""

    sources: int
    kind: str  # timestamp, unchecked-hash, checked-hash or unknown


@dataclass(frozen=True)
class Bytecode:
    sources: int  # .py files in the layer
    tags: Mapping[str, Coverage]


@dataclass(frozen=True)
class SharedObject:
    path: str
    machine: str
    glibc: int | None  # the newest GLIBC_2.N it needs


@dataclass(frozen=True)
class Inspection:
    path: str
    layer: str | None  # from layerkit's manifest; None for another tool's ZIP
    files: int
    unzipped: int
    zipped: int
    quota_headroom: int
    python_versions: tuple[str, ...]
    architectures: tuple[str, ...]
    distributions: tuple[InstalledDist, ...]
    largest_files: tuple[LargeFile, ...]
    shared_objects: int
    bytecode: Bytecode
    problems: tuple[str, ...]


def inspect_layer(zip_path: Path) -> Inspection:
    with open_zip(zip_path) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        check_paths([i.filename for i in infos], zip_path)
        sizes = {i.filename: i.file_size for i in infos}
        layer_manifest = manifest.read_from(archive)

        dists = []
        python_versions: set[str] = set()
        wheel_machines: set[str] = set()
        for folder, meta in distributions_in(archive):
            site = str(folder.parent)
            found = _SITE.match(site)
            if found:
                python_versions.add(found.group(1))
            record = f"{folder}/RECORD"
            size = None
            if record in sizes:
                rows = archive.read(record).decode("utf-8", "replace").splitlines()
                prefix = "" if site == "." else f"{site}/"
                size = sum(sizes.get(prefix + row.split(",")[0], 0) for row in rows if row)
            wheel_file = f"{folder}/WHEEL"
            if wheel_file in sizes:
                for tag in wheel_tags(archive.read(wheel_file).decode("utf-8", "replace")):
                    wheel_machines |= {m for m in ("x86_64", "aarch64") if tag.platform.endswith(m)}
            dists.append(InstalledDist(meta.name, meta.version, site, size))

        shared: list[SharedObject] = []
        for info in infos:
            if not elf.is_shared_object(info.filename):
                continue
            data = archive.read(info)
            machine = elf.machine(data)
            if machine is None:
                continue
            abi = _CPYTHON_SO.search(PurePosixPath(info.filename).name)
            if abi:
                python_versions.add(f"{abi.group(1)}.{abi.group(2)}")
            shared.append(SharedObject(info.filename, machine, elf.glibc_needs(data)))
        bytecode = _bytecode(archive, set(sizes))

    if layer_manifest:
        expected = {ARCHITECTURES[a] for a in layer_manifest.architectures}
        runtimes = [RUNTIMES[r] for r in layer_manifest.runtimes if r in RUNTIMES]
    else:
        expected = wheel_machines
        runtimes = [r for r in RUNTIMES.values() if r.python_version in python_versions]
    glibc_limit = min((r.glibc[1] for r in runtimes), default=None)
    problems = []
    for so in shared:
        if expected and so.machine not in expected:
            wanted = ", ".join(sorted(expected))
            problems.append(f"{so.path} is {so.machine}, but the layer is for {wanted}")
        if glibc_limit is not None and so.glibc is not None and so.glibc > glibc_limit:
            problems.append(
                f"{so.path} needs GLIBC_2.{so.glibc}, newer than the runtime's 2.{glibc_limit}"
            )
    unzipped = sum(sizes.values())
    return Inspection(
        path=str(zip_path),
        layer=layer_manifest.layer if layer_manifest else None,
        files=len(infos),
        unzipped=unzipped,
        zipped=zip_path.stat().st_size,
        quota_headroom=quota.UNZIPPED_LIMIT - unzipped,
        python_versions=tuple(sorted(python_versions, key=lambda v: tuple(map(int, v.split("."))))),
        architectures=tuple(sorted({so.machine for so in shared})) or ("any",),
        distributions=tuple(sorted(dists, key=lambda d: (d.name.lower(), d.site))),
        largest_files=tuple(
            LargeFile(p, s) for p, s in sorted(sizes.items(), key=lambda i: -i[1])[:10]
        ),
        shared_objects=len(shared),
        bytecode=bytecode,
        problems=tuple(problems),
    )


# PEP 552: the flags word after the magic number.
_PYC_KINDS = {0b00: "timestamp", 0b01: "unchecked-hash", 0b11: "checked-hash"}


def _bytecode(archive: zipfile.ZipFile, names: set[str]) -> Bytecode:
    """How many of the layer's sources have bytecode, per interpreter (cpython-311), and of
    which kind. Sources without it are compiled again on every cold start."""
    sources = sum(1 for name in names if name.endswith(".py"))
    counts: dict[str, int] = {}
    kinds: dict[str, str] = {}
    for name in sorted(names):
        folder, found, file = name.rpartition("/__pycache__/")
        parts = file.split(".")
        if not found or len(parts) != 3 or parts[2] != "pyc":  # no .opt-1.pyc: Lambda runs -O0
            continue
        if f"{folder}/{parts[0]}.py" not in names:
            continue
        counts[parts[1]] = counts.get(parts[1], 0) + 1
        if parts[1] not in kinds:
            with archive.open(name) as pyc:
                flags = int.from_bytes(pyc.read(8)[4:8], "little")
            kinds[parts[1]] = _PYC_KINDS.get(flags, "unknown")
    return Bytecode(sources, {tag: Coverage(counts[tag], kinds[tag]) for tag in counts})
