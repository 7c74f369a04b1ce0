"""Real wheel files made on the spot, for tests that need no index."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

ELF_X86_64 = b"\x7fELF\x02\x01\x01" + b"\x00" * 11 + b"\x3e\x00" + b"\x00" * 44
ELF_AARCH64 = b"\x7fELF\x02\x01\x01" + b"\x00" * 11 + b"\xb7\x00" + b"\x00" * 44


def elf_needing(machine: int, versions: list[str], rodata: bytes = b"") -> bytes:
    """A 64-bit little-endian shared object whose version-needs section (.gnu.version_r)
    asks libc.so.6 for `versions`, with `rodata` as other content of the file."""
    strings = b"\0libc.so.6\0" + b"".join(v.encode() + b"\0" for v in versions)
    names = [strings.index(v.encode()) for v in versions]
    need = struct.pack("<HHIII", 1, len(versions), 1, 16, 0) + b"".join(
        struct.pack("<IHHII", 0, 0, 0, name, 16 if n < len(names) - 1 else 0)
        for n, name in enumerate(names)
    )
    strings_at, need_at = 64, 64 + len(strings)
    rodata_at = need_at + len(need)
    table_at = rodata_at + len(rodata)
    header = (
        b"\x7fELF\x02\x01\x01"
        + bytes(9)
        + struct.pack("<HHIQQQIHHHHHH", 3, machine, 1, 0, 0, table_at, 0, 64, 0, 0, 64, 3, 0)
    )
    section = "<IIQQQQIIQQ"
    table = (
        bytes(64)
        + struct.pack(section, 0, 3, 0, 0, strings_at, len(strings), 0, 0, 1, 0)
        + struct.pack(section, 0, 0x6FFFFFFE, 0, 0, need_at, len(need), 1, 1, 4, 0)
    )
    return header + strings + need + rodata + table


def make_wheel(
    folder: Path,
    name: str,
    version: str,
    files: dict[str, bytes],
    tag: str = "py3-none-any",
    executable: tuple[str, ...] = (),
    license: str = "MIT",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-{tag}.whl"
    info = f"{name}-{version}.dist-info"
    contents = {
        **files,
        f"{info}/METADATA": (
            f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\n"
            f"License-Expression: {license}\n"
        ).encode(),
        f"{info}/WHEEL": f"Wheel-Version: 1.0\nTag: {tag}\n".encode(),
    }
    record = "".join(f"{p},,\n" for p in contents) + f"{info}/RECORD,,\n"
    contents[f"{info}/RECORD"] = record.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for member, data in contents.items():
            entry = zipfile.ZipInfo(member, date_time=(2024, 5, 6, 7, 8, 9))
            entry.external_attr = (0o100755 if member in executable else 0o100644) << 16
            wheel.writestr(entry, data, zipfile.ZIP_DEFLATED)
    return path
