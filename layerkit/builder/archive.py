"""A deterministic ZIP writer that reuses the compressed bytes inside wheels.

Same entries in, same bytes out: entries are sorted by path, every timestamp is
1980-01-01 00:00, modes are 0644 or 0755, and nothing of the host (paths, users,
umask, mtimes) is recorded. A wheel is already a ZIP of deflated members, so its
members are copied with their CRCs and sizes instead of being inflated and deflated
again; only what layerkit itself produces is compressed, in parallel, each entry on
its own so the output does not depend on the number of workers.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
import zipfile
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from layerkit import files
from layerkit.errors import BuildError

STORED, DEFLATED = 0, 8
COMPRESSION_LEVEL = 6
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01
_DOS_TIME = 0
_MADE_BY = (3 << 8) | 20  # Unix, ZIP 2.0
_NEEDED = 20
_ZIP64_NEEDED = 45
_UTF8 = 0x800


@dataclass(frozen=True)
class WheelMember:
    """A member of a wheel to be copied as it is stored there."""

    wheel: Path
    header_offset: int


@dataclass(frozen=True)
class Entry:
    path: str
    mode: int
    crc: int
    size: int
    compressed_size: int
    method: int
    data: bytes | WheelMember


def mode_of(external_attr: int) -> int:
    """0755 for anything with an execute bit, 0644 for everything else."""
    return 0o755 if (int(external_attr) >> 16) & 0o111 else 0o644


def compress(path: str, data: bytes, mode: int) -> Entry:
    packer = zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED, -15)
    packed = packer.compress(data) + packer.flush()
    crc = zlib.crc32(data)
    if len(packed) >= len(data):
        return Entry(path, mode, crc, len(data), len(data), STORED, data)
    return Entry(path, mode, crc, len(data), len(packed), DEFLATED, packed)


def compress_all(items: Iterable[tuple[str, bytes, int]], workers: int = 2) -> list[Entry]:
    """Compress entries in parallel; zlib releases the GIL, and each entry stands alone."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda item: compress(*item), items))


def wheel_entry(wheel: Path, info: zipfile.ZipInfo, path: str) -> Entry:
    """An entry that copies a wheel member's stored bytes under a new path."""
    if info.compress_type not in (STORED, DEFLATED):
        with zipfile.ZipFile(wheel) as archive:
            return compress(path, archive.read(info), mode_of(info.external_attr))
    return Entry(
        path=path,
        mode=mode_of(info.external_attr),
        crc=info.CRC,
        size=info.file_size,
        compressed_size=info.compress_size,
        method=info.compress_type,
        data=WheelMember(wheel, info.header_offset),
    )


def read_member(entry: Entry) -> bytes:
    """The uncompressed content of an entry."""
    raw = _raw_bytes(entry, {})
    return zlib.decompress(raw, -15) if entry.method == DEFLATED else raw


def head(entry: Entry, count: int, handles: dict[Path, BinaryIO]) -> bytes:
    """The first `count` uncompressed bytes of an entry, inflating no more than needed."""
    if isinstance(entry.data, bytes):
        raw = entry.data
    else:
        handle = _handle(entry.data.wheel, handles)
        handle.seek(_data_offset(handle, entry.data.header_offset))
        raw = handle.read(min(entry.compressed_size, 4096))
    if entry.method == STORED:
        return raw[:count]
    return zlib.decompressobj(-15).decompress(raw, count)


def _handle(wheel: Path, handles: dict[Path, BinaryIO]) -> BinaryIO:
    if wheel not in handles:
        handles[wheel] = wheel.open("rb")
    return handles[wheel]


def _data_offset(handle: BinaryIO, header_offset: int) -> int:
    handle.seek(header_offset)
    header = handle.read(30)
    if header[:4] != b"PK\x03\x04":
        raise ValueError(f"no local file header at offset {header_offset}")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return header_offset + 30 + int(name_length) + int(extra_length)


def _raw_bytes(entry: Entry, handles: dict[Path, BinaryIO]) -> bytes:
    if isinstance(entry.data, bytes):
        return entry.data
    handle = _handle(entry.data.wheel, handles)
    handle.seek(_data_offset(handle, entry.data.header_offset))
    return handle.read(entry.compressed_size)


class _HashingWriter:
    """Writes and hashes in 1 MiB chunks: a layer has thousands of small members."""

    def __init__(self, target: BinaryIO) -> None:
        self.target, self.digest, self.offset = target, hashlib.sha256(), 0
        self.pending = bytearray()

    def write(self, data: bytes) -> None:
        self.pending += data
        self.offset += len(data)
        if len(self.pending) >= 1 << 20:
            self.flush()

    def flush(self) -> None:
        self.target.write(self.pending)
        self.digest.update(self.pending)
        self.pending.clear()


def write(entries: list[Entry], dest: Path) -> str:
    """Write the ZIP atomically and return its SHA-256."""
    ordered = sorted(entries, key=lambda e: e.path.encode())
    for first, second in itertools.pairwise(ordered):
        if first.path == second.path:
            raise ValueError(f"two entries for {first.path}")
    handles: dict[Path, BinaryIO] = {}
    try:
        with files.atomic(dest) as tmp:
            digest = _write_zip(ordered, tmp, handles)
    except BaseException as exc:
        # A full disk, Ctrl-C: the partial file is gone (files.atomic), dest is as it was.
        if isinstance(exc, OSError):
            raise BuildError(
                f"Cannot write {dest}: {exc.strerror or exc}. Free some space (or point "
                "--out-dir / LAYERKIT_CACHE_DIR elsewhere) and build again; nothing was left "
                "half-written."
            ) from None
        raise
    finally:
        for handle in handles.values():
            handle.close()
    return digest


def _write_zip(ordered: list[Entry], tmp: IO[bytes], handles: dict[Path, BinaryIO]) -> str:
    out = _HashingWriter(tmp)  # type: ignore[arg-type]
    central = bytearray()
    for entry in ordered:
        name = entry.path.encode()
        flags = 0 if entry.path.isascii() else _UTF8
        offset = out.offset
        fields = (
            entry.method, _DOS_TIME, _DOS_DATE, entry.crc,
            entry.compressed_size, entry.size, len(name),
        )  # fmt: skip
        out.write(struct.pack("<4sHH", b"PK\x03\x04", _NEEDED, flags))
        out.write(struct.pack("<HHHIIIHH", *fields, 0) + name)
        out.write(_raw_bytes(entry, handles))
        central += struct.pack("<4sHHH", b"PK\x01\x02", _MADE_BY, _NEEDED, flags)
        central += struct.pack("<HHHIIIHHHHHII", *fields, 0, 0, 0, 0,
                               (0o100000 | entry.mode) << 16, offset)  # fmt: skip
        central += name
    start = out.offset
    out.write(bytes(central))
    _write_end(out, len(ordered), len(central), start)
    out.flush()
    return out.digest.hexdigest()


def _write_end(out: _HashingWriter, count: int, size: int, start: int) -> None:
    if start + size > 0xFFFFFFFF:
        raise ValueError("layer ZIPs over 4 GiB are not supported (Lambda allows 250 MB)")
    if count > 0xFFFF:
        record = out.offset
        out.write(struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, _MADE_BY, _ZIP64_NEEDED,
                              0, 0, count, count, size, start))  # fmt: skip
        out.write(struct.pack("<4sIQI", b"PK\x06\x07", 0, record, 1))
        count = 0xFFFF
    out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, size, start, 0))
