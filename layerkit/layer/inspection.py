"""`layerkit inspect`: what is inside any layer ZIP, ours or not, without extracting it."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from layerkit import quota
from layerkit.errors import UserError
from layerkit.files import open_zip
from layerkit.layer import elf, manifest
from layerkit.layer.metadata import parse_metadata, wheel_tags
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


def inspect_layer(zip_path: Path) -> dict[str, Any]:
    with open_zip(zip_path) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        check_paths([i.filename for i in infos], zip_path)
        sizes = {i.filename: i.file_size for i in infos}
        layer_manifest = manifest.read(zip_path)

        dists = []
        python_versions: set[str] = set()
        wheel_machines: set[str] = set()
        for info in infos:
            path = PurePosixPath(info.filename)
            if path.name != "METADATA" or not path.parent.name.endswith(".dist-info"):
                continue
            site = str(path.parent.parent)
            found = _SITE.match(site)
            if found:
                python_versions.add(found.group(1))
            meta = parse_metadata(archive.read(info).decode("utf-8", "replace"))
            record = f"{path.parent}/RECORD"
            size = None
            if record in sizes:
                rows = archive.read(record).decode("utf-8", "replace").splitlines()
                prefix = "" if site == "." else f"{site}/"
                size = sum(sizes.get(prefix + row.split(",")[0], 0) for row in rows if row)
            wheel_file = f"{path.parent}/WHEEL"
            if wheel_file in sizes:
                for tag in wheel_tags(archive.read(wheel_file).decode("utf-8", "replace")):
                    wheel_machines |= {m for m in ("x86_64", "aarch64") if tag.platform.endswith(m)}
            dists.append({"name": meta.name, "version": meta.version, "site": site, "size": size})

        shared: list[dict[str, Any]] = []
        for info in infos:
            if not elf.is_shared_object(info.filename):
                continue
            name = PurePosixPath(info.filename).name
            data = archive.read(info)
            machine = elf.machine(data)
            if machine is None:
                continue
            glibc = elf.glibc_needs(data)
            abi = _CPYTHON_SO.search(name)
            if abi:
                python_versions.add(f"{abi.group(1)}.{abi.group(2)}")
            shared.append({"path": info.filename, "machine": machine, "glibc": glibc})
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
        if expected and so["machine"] not in expected:
            wanted = ", ".join(sorted(expected))
            problems.append(f"{so['path']} is {so['machine']}, but the layer is for {wanted}")
        needs = so["glibc"]
        if glibc_limit is not None and isinstance(needs, int) and needs > glibc_limit:
            problems.append(
                f"{so['path']} needs GLIBC_2.{needs}, newer than the runtime's 2.{glibc_limit}"
            )
    unzipped = sum(sizes.values())
    return {
        "path": str(zip_path),
        "layer": layer_manifest.layer if layer_manifest else None,
        "files": len(infos),
        "unzipped": unzipped,
        "zipped": zip_path.stat().st_size,
        "quota_headroom": quota.UNZIPPED_LIMIT - unzipped,
        "python_versions": sorted(python_versions, key=lambda v: tuple(map(int, v.split(".")))),
        "architectures": sorted({so["machine"] for so in shared}) or ["any"],
        "distributions": sorted(dists, key=lambda d: (str(d["name"]).lower(), d["site"])),
        "largest_files": [
            {"path": p, "size": s} for p, s in sorted(sizes.items(), key=lambda i: -i[1])[:10]
        ],
        "shared_objects": len(shared),
        "bytecode": bytecode,
        "problems": problems,
    }


# PEP 552: the flags word after the magic number.
_PYC_KINDS = {0b00: "timestamp", 0b01: "unchecked-hash", 0b11: "checked-hash"}


def _bytecode(archive: zipfile.ZipFile, names: set[str]) -> dict[str, Any]:
    """How many of the layer's sources have bytecode, per interpreter (cpython-311), and of
    which kind. Sources without it are compiled again on every cold start."""
    sources = sum(1 for name in names if name.endswith(".py"))
    tags: dict[str, dict[str, Any]] = {}
    for name in sorted(names):
        folder, found, file = name.rpartition("/__pycache__/")
        parts = file.split(".")
        if not found or len(parts) != 3 or parts[2] != "pyc":  # no .opt-1.pyc: Lambda runs -O0
            continue
        if f"{folder}/{parts[0]}.py" not in names:
            continue
        tag = tags.setdefault(parts[1], {"sources": 0, "kind": None})
        tag["sources"] += 1
        if tag["kind"] is None:
            with archive.open(name) as pyc:
                flags = int.from_bytes(pyc.read(8)[4:8], "little")
            tag["kind"] = _PYC_KINDS.get(flags, "unknown")
    return {"sources": sources, "tags": tags}
