"""Layers ship bytecode for their target Pythons, so that a cold start compiles nothing."""

from __future__ import annotations

import json
import re
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import layerkit, write_recipe
from tests.integration.test_container import ENV, IMAGE
from tests.layers import extract, interpreter

pytestmark = pytest.mark.network

TWO_PYTHONS = (
    '[layer]\nname = "web"\nruntimes = ["python3.12", "python3.13"]\n'
    'architectures = ["x86_64"]\n'
    '[python]\nrequirements = ["requests", "PyYAML"]\n'
)
PURE = ["certifi", "idna", "requests", "urllib3"]  # the same py3-none-any wheel for both


def build(project: Path, *args: str, **kwargs: Any) -> dict[str, Any]:
    [artifact] = json.loads(layerkit("build", *args, "--json", cwd=project, **kwargs).stdout)
    assert isinstance(artifact, dict)
    return artifact


def magic(version: str) -> bytes:
    """The pyc magic number of CPython `version`, asked of that interpreter."""
    code = "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"
    out = subprocess.run(
        [str(interpreter(version)), "-I", "-c", code], capture_output=True, text=True, check=True
    )
    return bytes.fromhex(out.stdout)


def sources_and_bytecode(zip_path: Path) -> tuple[set[str], dict[str, bytes]]:
    with zipfile.ZipFile(zip_path) as layer:
        names = set(layer.namelist())
        pyc = {n: layer.read(n)[:16] for n in names if n.endswith(".pyc")}
    return {n for n in names if n.endswith(".py")}, pyc


def imports_every_module(opt: Path, version: str, layer: str) -> subprocess.CompletedProcess[str]:
    manifest = json.loads((opt / "layerkit" / f"{layer}.json").read_text())
    target = manifest["targets"][f"python{version}-x86_64"]
    modules = ",".join(m for d in target["distributions"] for m in d["top_level"])
    code = (
        "import importlib, sys\n"
        "sys.path[:0] = sys.argv[2:]\n"
        "for m in sys.argv[1].split(','): importlib.import_module(m)\n"
    )
    return subprocess.run(
        [str(interpreter(version)), "-B", "-I", "-S", "-c", code, modules,
         str(opt / target["site_packages"]), str(opt / "python")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def two_pythons(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    project = tmp_path_factory.mktemp("bytecode")
    (project / "recipes").mkdir()
    write_recipe(project, "web", TWO_PYTHONS)
    artifact = build(project, "web")
    return {"project": project, "zip": project / artifact["path"], "artifact": artifact}


def test_every_source_has_unchecked_hash_bytecode_of_each_python_that_imports_it(
    two_pythons: dict[str, Any],
) -> None:
    sources, pyc = sources_and_bytecode(two_pythons["zip"])
    magics = {"3.12": magic("3.12"), "3.13": magic("3.13")}
    for source in sources:
        folder, _, file = source.rpartition("/")
        if folder.startswith("python/lib/python3."):
            versions = [folder.split("/")[2].removeprefix("python")]
        else:
            versions = ["3.12", "3.13"]  # python/ is on every version's sys.path
        for version in versions:
            name = f"{folder}/__pycache__/{file[:-3]}.cpython-{version.replace('.', '')}.pyc"
            assert name in pyc, f"{source} has no bytecode for {version}"
            header = pyc[name]
            assert header[:4] == magics[version], name
            # PEP 552 flags: bit 0 hash-based, bit 1 check_source; unchecked is 0b01
            assert int.from_bytes(header[4:8], "little") == 0b01, name
    assert len(pyc) > len(sources)  # the shared sources have one pyc per version


def test_pure_distributions_go_once_into_python_and_the_rest_per_version(
    two_pythons: dict[str, Any],
) -> None:
    with zipfile.ZipFile(two_pythons["zip"]) as layer:
        names = layer.namelist()
        manifest = json.loads(layer.read("layerkit/web.json"))
    for package in PURE:
        assert f"python/{package}/__init__.py" in names
        assert not any(f"site-packages/{package}/" in n for n in names), package
    for version in ("3.12", "3.13"):
        site = f"python/lib/python{version}/site-packages"
        assert f"{site}/yaml/__init__.py" in names  # PyYAML's wheels differ per version
        target = manifest["targets"][f"python{version}-x86_64"]
        assert target["site_packages"] == site
        assert target["bytecode"] == f"cpython-{version.replace('.', '')}"
        where = {d["name"].lower(): d["site_packages"] for d in target["distributions"]}
        assert where["requests"] == "python" and where["pyyaml"] == site


@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_the_layer_imports_without_compiling_a_single_source(
    two_pythons: dict[str, Any], tmp_path: Path, version: str
) -> None:
    opt = extract(two_pythons["zip"], tmp_path / "opt")
    # Every source now raises if it is ever compiled: only the shipped bytecode can import.
    for source in opt.rglob("*.py"):
        source.write_text("raise RuntimeError('compiled from source at import')\n")
    result = imports_every_module(opt, version, "web")
    assert result.returncode == 0, result.stderr


def test_without_bytecode_the_same_check_catches_every_compile(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    (project / "recipes").mkdir(parents=True)
    write_recipe(project, "web", TWO_PYTHONS + "[slim]\nbytecode = false\n")
    artifact = build(project, "web")
    _, pyc = sources_and_bytecode(project / artifact["path"])
    assert pyc == {}
    opt = extract(project / artifact["path"], tmp_path / "opt")
    for source in opt.rglob("*.py"):
        source.write_text("raise RuntimeError('compiled from source at import')\n")
    result = imports_every_module(opt, "3.12", "web")
    assert result.returncode != 0
    assert "compiled from source at import" in result.stderr


def test_bytecode_is_the_same_bytes_from_another_folder_and_a_cold_cache(
    two_pythons: dict[str, Any], tmp_path: Path
) -> None:
    other = tmp_path / "elsewhere" / "checkout"
    (other / "recipes").mkdir(parents=True)
    for lock in (two_pythons["project"] / "recipes").iterdir():
        (other / "recipes" / lock.name).write_bytes(lock.read_bytes())
    env = {"LAYERKIT_CACHE_DIR": str(tmp_path / "cold-cache")}
    again = build(other, "web", "--locked", env=env, umask=0o077)
    assert again["status"] == "built"
    assert again["sha256"] == two_pythons["artifact"]["sha256"]
    assert (other / again["path"]).read_bytes() == two_pythons["zip"].read_bytes()


def test_bytecode_is_compiled_once_per_wheel_and_python_and_reused_by_other_recipes(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    (project / "recipes").mkdir(parents=True)
    write_recipe(project, "web", TWO_PYTHONS)
    env = {"LAYERKIT_CACHE_DIR": str(tmp_path / "cache")}
    layerkit("build", "web", cwd=project, env=env)
    # The oracle is the lock: one cache entry per locked wheel and Python, each named by
    # the wheel's locked SHA-256.
    kept: dict[Path, int] = {}
    for version in ("3.12", "3.13"):
        lock = (project / "recipes" / f"web.python{version}-x86_64.lock.txt").read_text()
        hashes = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", lock))
        tag = f"cpython-{version.replace('.', '')}"
        entries = sorted((tmp_path / "cache" / "bytecode" / tag).glob("*.zip"))
        assert len(entries) == len(hashes)
        assert {e.name[:64] for e in entries} == hashes
        kept |= {e: e.stat().st_mtime_ns for e in entries}
    # Another recipe with the same wheels, for one of the versions: nothing is compiled.
    write_recipe(
        project, "other", TWO_PYTHONS.replace('"web"', '"other"').replace(', "python3.13"', "")
    )
    layerkit("build", "other", cwd=project, env=env)
    after = sorted((tmp_path / "cache" / "bytecode").glob("*/*.zip"))
    assert {e: e.stat().st_mtime_ns for e in after} == kept  # none added, none rewritten
    with zipfile.ZipFile(project / "dist" / "other.zip") as layer:
        assert "python/requests/__pycache__/api.cpython-312.pyc" in layer.namelist()


def hidden_pythons(tmp_path: Path) -> dict[str, str]:
    """An environment in which no interpreter can be found: no PATH, pyenv or uv Pythons."""
    empty = tmp_path / "no-pythons"
    empty.mkdir(exist_ok=True)
    return {
        "PATH": str(empty),
        "PYENV_ROOT": str(empty),
        "UV_PYTHON_INSTALL_DIR": str(empty),
        "VIRTUAL_ENV": "",
        "LAYERKIT_CACHE_DIR": str(tmp_path / "cache"),
    }


def test_no_interpreter_for_the_target_warns_with_the_cost_and_the_fix(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "recipes").mkdir(parents=True)
    write_recipe(project, "web", TWO_PYTHONS.replace('"python3.12", "python3.13"', '"python3.14"'))
    env = hidden_pythons(tmp_path)
    built = layerkit("build", "web", "--json", cwd=project, env=env)
    assert "no Python 3.14 on this machine" in built.stderr
    assert "every cold start compiles its modules again" in built.stderr
    assert "uv python install 3.14" in built.stderr
    _, pyc = sources_and_bytecode(project / json.loads(built.stdout)[0]["path"])
    assert pyc == {}

    (project / "dist" / "web.zip").unlink()
    refused = layerkit("build", "web", "--require-bytecode", cwd=project, env=env, check=False)
    assert refused.returncode == 3
    assert "--require-bytecode" in refused.stderr and "Traceback" not in refused.stderr
    assert not (project / "dist" / "web.zip").exists()
    by_env = layerkit(
        "build", "web", cwd=project, env={**env, "LAYERKIT_REQUIRE_BYTECODE": "1"}, check=False
    )
    assert by_env.returncode == 3


def test_verify_reports_each_modules_cold_import_time_and_the_slowest(
    two_pythons: dict[str, Any],
) -> None:
    started = time.perf_counter()
    result = layerkit(
        "verify", "--native", "--json", str(two_pythons["zip"]), cwd=two_pythons["project"]
    )
    wall = time.perf_counter() - started  # the test's own clock: every import ran inside it
    reports = json.loads(result.stdout)
    assert (
        sum(sum(r["import_seconds"].values()) + r["total_import_seconds"] for r in reports) < wall
    )
    assert {r["target"] for r in reports} == {"python3.12-x86_64", "python3.13-x86_64"}
    for report in reports:
        assert report["ok"], report
        seconds = report["import_seconds"]
        assert set(seconds) == set(report["modules"])
        assert all(s > 0 for s in seconds.values())
        # all of them together import the slowest one too (its dependencies included);
        # a wrong unit (ms) or a constant is far outside these bounds
        assert report["total_import_seconds"] > 0.3 * max(seconds.values())
        assert report["total_import_seconds"] < 1.5 * sum(seconds.values()) + 0.05
        slowest = [s["module"] for s in report["slowest"]]
        assert slowest[0] == max(seconds, key=lambda m: seconds[m])
        assert seconds["requests"] >= seconds["idna"]  # requests imports idna, and more
    table = layerkit("verify", "--native", str(two_pythons["zip"]), cwd=two_pythons["project"])
    assert "cold import" in table.stdout and "requests" in table.stdout


def test_the_build_image_compiles_when_the_host_has_no_such_python(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "recipes").mkdir(parents=True)
    recipe = (
        '[layer]\nname = "img"\nruntimes = ["python3.11"]\narchitectures = ["x86_64"]\n'
        f'[python]\nrequirements = ["idna"]\n[build]\nimage = "{IMAGE}"\nnetwork = "host"\n'
    )
    write_recipe(project, "img", recipe)
    env = {**hidden_pythons(tmp_path), **ENV}
    built = build(project, "img", "--strategy", "container", "--require-bytecode", env=env)
    _, pyc = sources_and_bytecode(project / built["path"])
    assert "python/idna/__pycache__/core.cpython-311.pyc" in pyc
    assert all(header[:4] == magic("3.11") for header in pyc.values())
