"""What a shared object is built for: its CPU, and the newest glibc symbol version it needs.

The machine is the ELF header's e_machine. The glibc needs are read from the version-needs
section (`.gnu.version_r`, SHT_GNU_verneed), which lists exactly the symbol versions the
dynamic loader will ask of each library; a string search over the whole file would also
match text in `.rodata`. This is the check behind the wheel tags: a wheel tagged for one
architecture or glibc that carries code for another is caught here.
"""

from __future__ import annotations

import re
import struct

# e_machine values in an ELF header.
MACHINES: dict[int, str] = {0x3E: "x86_64", 0xB7: "aarch64", 0x03: "i386", 0x28: "arm"}

HEADER_SIZE = 64  # enough for e_machine and the section header table's place, 32 or 64 bit
_SHT_GNU_VERNEED = 0x6FFFFFFE
_GLIBC = re.compile(rb"GLIBC_2\.(\d+)(?:\.\d+)?")


def is_shared_object(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".so") or ".so." in name


def machine(header: bytes) -> str | None:
    """The CPU an ELF file is for ("x86_64", "aarch64", or "unknown"); None if not ELF."""
    if header[:4] != b"\x7fELF" or len(header) < 20:
        return None
    endian = "<" if header[5] == 1 else ">"
    (number,) = struct.unpack_from(endian + "H", header, 18)
    return MACHINES.get(number, "unknown")


def glibc_needs(data: bytes) -> int | None:
    """N of the newest GLIBC_2.N the object needs; None when it needs no versioned glibc
    symbol, or is not an ELF file that can be read."""
    if data[:4] != b"\x7fELF":
        return None
    try:
        return _glibc_needs(data)
    except (struct.error, IndexError):
        return None  # truncated or malformed: the loader would refuse it anyway


def _glibc_needs(data: bytes) -> int | None:
    wide, endian = data[4] == 2, "<" if data[5] == 1 else ">"
    if wide:
        (table,) = struct.unpack_from(endian + "Q", data, 0x28)
        entry_size, count = struct.unpack_from(endian + "HH", data, 0x3A)
        layout = endian + "IIQQQQII"
    else:
        (table,) = struct.unpack_from(endian + "I", data, 0x20)
        entry_size, count = struct.unpack_from(endian + "HH", data, 0x2E)
        layout = endian + "IIIIIIII"
    # (type, offset, link, info) of each section
    sections = [
        (fields[1], fields[4], fields[6], fields[7])
        for fields in (
            struct.unpack_from(layout, data, table + n * entry_size) for n in range(count)
        )
    ]
    found: list[int] = []
    for kind, offset, link, entries in sections:
        if kind != _SHT_GNU_VERNEED:
            continue
        strings = sections[link][1]
        position = offset
        for _ in range(entries):  # Elf_Verneed: version, count, file, aux, next
            _, aux_count, _, aux, following = struct.unpack_from(endian + "HHIII", data, position)
            aux_position = position + aux
            for _ in range(aux_count):  # Elf_Vernaux: hash, flags, other, name, next
                _, _, _, name, aux_next = struct.unpack_from(endian + "IHHII", data, aux_position)
                end = data.index(b"\0", strings + name)
                version = _GLIBC.fullmatch(data[strings + name : end])
                if version:
                    found.append(int(version.group(1)))
                if not aux_next:
                    break
                aux_position += aux_next
            if not following:
                break
            position += following
    return max(found, default=None)
