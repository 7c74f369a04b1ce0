"""Shared objects in a layer: the guards that run behind the wheel tags, and stripping."""

from __future__ import annotations

import platform
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from layerkit.builder import archive
from layerkit.builder.archive import Entry
from layerkit.errors import BuildError
from layerkit.layer import elf
from layerkit.runner import run
from layerkit.targets import Target


def check(
    entries: list[Entry], artifact: str, targets: Sequence[Target], compiled: set[str]
) -> None:
    """Every shared object must be built for the group's architecture, and what the build
    image compiled (the paths in `compiled`) must not need a newer glibc than the runtime
    has: guards behind the tags, which downloaded wheels already carry."""
    glibc = min(t.runtime.glibc[1] for t in targets)
    for entry in entries:
        if entry.path in compiled and elf.is_shared_object(entry.path):
            needs = elf.glibc_needs(archive.read_member(entry)) or 0
            if needs > glibc:
                raise BuildError(
                    f"{entry.path} was compiled against GLIBC_2.{needs}, but "
                    f"{targets[0].runtime.name} has glibc 2.{glibc}: the build image "
                    "is newer than the runtime. Build in the runtime's own build image "
                    "(public.ecr.aws/sam/build-<runtime>), or one with the same glibc."
                )
    machine = targets[0].machine
    if len({t.machine for t in targets}) > 1:
        machine = ""  # a layer for both architectures must carry no native code at all
    handles: dict[Path, BinaryIO] = {}
    try:
        for entry in entries:
            if not elf.is_shared_object(entry.path):
                continue
            found = elf.machine(archive.head(entry, elf.HEADER_SIZE, handles))
            if found is not None and found != machine:
                raise BuildError(
                    f"{entry.path} is a {found} shared object, but {artifact} is for "
                    f"{machine or 'every architecture'}. The wheel that ships it is tagged "
                    "wrongly; pin another version or build in a container."
                )
    finally:
        for handle in handles.values():
            handle.close()


def _strip_tool(machine: str) -> str:
    candidates = [f"{machine}-linux-gnu-strip", "llvm-strip"]
    if platform.machine() == machine:
        candidates.insert(0, "strip")
    for tool in candidates:
        if shutil.which(tool):
            return tool
    raise BuildError(
        f"`strip = true` needs a strip for {machine} ({' or '.join(candidates)}), and none "
        "is on PATH. Install binutils (for another architecture: binutils-aarch64-linux-gnu "
        "or llvm), or set `strip = false` under [slim]."
    )


def strip(entries: list[Entry], target: Target) -> list[Entry]:
    tool = _strip_tool(target.machine)
    result = []
    with tempfile.TemporaryDirectory(prefix="layerkit-strip-") as tmp:
        for number, entry in enumerate(entries):
            if not elf.is_shared_object(entry.path):
                result.append(entry)
                continue
            scratch = Path(tmp) / str(number)
            scratch.write_bytes(archive.read_member(entry))
            run([tool, "--strip-unneeded", str(scratch)])
            result.append(archive.compress(entry.path, scratch.read_bytes(), entry.mode))
    return result
