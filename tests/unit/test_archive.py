from __future__ import annotations

import random
import zipfile
from pathlib import Path

from layerkit.builder import archive
from layerkit.builder.archive import Entry, compress_all, wheel_entry
from layerkit.files import sha256_of
from tests.wheels import make_wheel


def entries_from(wheel: Path) -> list[Entry]:
    with zipfile.ZipFile(wheel) as zipped:
        return [wheel_entry(wheel, i, f"python/{i.filename}") for i in zipped.infolist()]


def test_the_same_entries_in_any_order_give_the_same_bytes(tmp_path: Path) -> None:
    files = {f"pkg/m{i}.py": f"X = {i}\n".encode() * 50 for i in range(40)}
    wheel = make_wheel(tmp_path / "w", "pkg", "1.0", files, executable=("pkg/m3.py",))
    generated = [(f"etc/{i}.txt", b"config %d\n" % i, 0o644) for i in range(10)]
    first = entries_from(wheel) + compress_all(generated, workers=1)
    second = entries_from(wheel) + compress_all(list(reversed(generated)), workers=2)
    random.Random(7).shuffle(second)
    sha_a = archive.write(first, tmp_path / "a.zip")
    sha_b = archive.write(second, tmp_path / "b.zip")
    assert sha_a == sha_b
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert sha_a == sha256_of(tmp_path / "a.zip")


def test_copied_members_read_back_intact_with_fixed_metadata(tmp_path: Path) -> None:
    files = {"pkg/__init__.py": b"print('hi')\n" * 100, "pkg/run.sh": b"#!/bin/sh\n"}
    wheel = make_wheel(tmp_path / "w", "pkg", "1.0", files, executable=("pkg/run.sh",))
    archive.write(entries_from(wheel), tmp_path / "layer.zip")
    with zipfile.ZipFile(tmp_path / "layer.zip") as layer:
        assert layer.testzip() is None
        assert layer.read("python/pkg/__init__.py") == files["pkg/__init__.py"]
        names = layer.namelist()
        assert names == sorted(names)
        for info in layer.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            mode = (info.external_attr >> 16) & 0o777
            assert mode == (0o755 if info.filename.endswith("run.sh") else 0o644)
            assert info.compress_type == zipfile.ZIP_DEFLATED


def test_incompressible_content_is_stored_not_inflated(tmp_path: Path) -> None:
    noise = random.Random(1).randbytes(4096)
    [entry] = compress_all([("share/noise.bin", noise, 0o644)])
    assert entry.method == archive.STORED
    archive.write([entry], tmp_path / "n.zip")
    with zipfile.ZipFile(tmp_path / "n.zip") as layer:
        assert layer.read("share/noise.bin") == noise


def test_more_than_65535_entries_are_written_as_zip64(tmp_path: Path) -> None:
    entries = compress_all((f"share/f{i:06d}", b"", 0o644) for i in range(70_000))
    archive.write(entries, tmp_path / "big.zip")
    with zipfile.ZipFile(tmp_path / "big.zip") as layer:
        assert len(layer.infolist()) == 70_000
