from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import pytest

from layerkit.errors import UserError
from layerkit.layer.inspection import Bytecode, Coverage, InstalledDist, inspect_layer
from tests.conftest import layerkit
from tests.wheels import ELF_AARCH64, ELF_X86_64, elf_needing


def layer(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zipped:
        for name, data in files.items():
            zipped.writestr(name, data)
    return path


@pytest.mark.parametrize("bad", ["../evil.py", "/etc/cron.d/evil", "python/../../evil"])
def test_a_zip_with_escaping_paths_is_refused_and_nothing_is_extracted(
    tmp_path: Path, bad: str
) -> None:
    zip_path = layer(tmp_path / "evil.zip", {"python/ok.py": b"", bad: b"boom"})
    with pytest.raises(UserError, match="unsafe path"):
        inspect_layer(zip_path)
    result = layerkit("inspect", str(zip_path), cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.zip"]


def test_an_x86_64_shared_object_in_an_arm64_layer_is_flagged(tmp_path: Path) -> None:
    manifest = {"layer": "mixed", "architectures": ["arm64"], "runtimes": ["python3.12"]}
    zip_path = layer(
        tmp_path / "mixed.zip",
        {
            "layerkit/mixed.json": json.dumps(manifest).encode(),
            "python/a/_fast.cpython-312-aarch64-linux-gnu.so": ELF_AARCH64,
            "python/b/_fast.cpython-312-x86_64-linux-gnu.so": ELF_X86_64,
        },
    )
    report = inspect_layer(zip_path)
    assert report.architectures == ("aarch64", "x86_64")
    assert report.python_versions == ("3.12",)
    assert report.problems == (
        "python/b/_fast.cpython-312-x86_64-linux-gnu.so is x86_64, but the layer is for aarch64",
    )
    assert layerkit("inspect", str(zip_path), cwd=tmp_path, check=False).returncode == 3


def test_a_shared_object_needing_a_newer_glibc_than_the_runtime_is_flagged(tmp_path: Path) -> None:
    so = elf_needing(0x3E, ["GLIBC_2.17", "GLIBC_2.28"])
    zip_path = layer(
        tmp_path / "new.zip",
        {
            "python/np/_core.cpython-311-x86_64-linux-gnu.so": so,
            "python/np-2.3.dist-info/METADATA": b"Name: np\nVersion: 2.3\n",
            "python/np-2.3.dist-info/WHEEL": b"Tag: cp311-cp311-manylinux_2_28_x86_64\n",
            "python/np-2.3.dist-info/RECORD": b"np/_core.cpython-311-x86_64-linux-gnu.so,,\n",
        },
    )
    report = inspect_layer(zip_path)
    assert report.distributions == (InstalledDist("np", "2.3", "python", len(so)),)
    assert report.problems == (
        "python/np/_core.cpython-311-x86_64-linux-gnu.so needs GLIBC_2.28, "
        "newer than the runtime's 2.26",
    )


def test_bytecode_is_counted_per_interpreter_with_its_kind(tmp_path: Path) -> None:
    header = importlib.util.MAGIC_NUMBER + (0b01).to_bytes(4, "little") + bytes(8)
    zip_path = layer(
        tmp_path / "pyc.zip",
        {
            "python/a.py": b"x = 1\n",
            "python/b.py": b"y = 2\n",
            "python/__pycache__/a.cpython-312.pyc": header,
            "python/__pycache__/a.cpython-313.pyc": header[:4] + bytes(12),
            "python/__pycache__/a.cpython-312.opt-1.pyc": header,  # never used on Lambda
            "python/__pycache__/gone.cpython-312.pyc": header,  # no source: never imported
        },
    )
    bytecode = inspect_layer(zip_path).bytecode
    assert bytecode == Bytecode(
        sources=2,
        tags={
            "cpython-312": Coverage(sources=1, kind="unchecked-hash"),
            "cpython-313": Coverage(sources=1, kind="timestamp"),
        },
    )
    shown = layerkit("inspect", str(zip_path), cwd=tmp_path).stdout
    assert "cpython-312 for 1/2 sources (unchecked-hash)" in shown


@pytest.mark.parametrize("command", ["inspect", "verify"])
def test_a_file_that_is_not_a_zip_or_a_folder_is_refused_without_a_traceback(
    tmp_path: Path, command: str
) -> None:
    (tmp_path / "cut.zip").write_bytes(b"PK\x03\x04 truncated")
    (tmp_path / "folder.zip").mkdir()
    for bad in ("cut.zip", "folder.zip"):
        args = [command, bad, *(["--native"] if command == "verify" else [])]
        result = layerkit(*args, cwd=tmp_path, check=False)
        assert result.returncode == 2, result.stderr
        assert "not a readable ZIP file" in result.stderr
        assert "Traceback" not in result.stderr
