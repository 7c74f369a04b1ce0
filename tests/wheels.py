"""Real wheel files made on the spot, for tests that need no index."""

from __future__ import annotations

import zipfile
from pathlib import Path

ELF_X86_64 = b"\x7fELF\x02\x01\x01" + b"\x00" * 11 + b"\x3e\x00" + b"\x00" * 44
ELF_AARCH64 = b"\x7fELF\x02\x01\x01" + b"\x00" * 11 + b"\xb7\x00" + b"\x00" * 44


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
