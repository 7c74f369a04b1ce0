"""The shipped recipes, built from real PyPI, work where Lambda will run them."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.tags import Tag
from packaging.utils import parse_wheel_filename

from layerkit.layer.inspection import inspect_layer
from tests.conftest import RECIPES, layerkit
from tests.layers import extract, import_all, runtime_packages

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    project = tmp_path_factory.mktemp("project")
    shutil.copytree(RECIPES, project / "recipes", ignore=shutil.ignore_patterns("*.lock.txt"))
    result = layerkit("build", "--json", cwd=project)
    artifacts = {a["artifact"]: a for a in json.loads(result.stdout)}
    return {"project": project, "artifacts": artifacts, "stderr": result.stderr}


# Lambda's python3.12 and python3.13 run on Amazon Linux 2023: glibc 2.34 (LAMBDA_FACTS).
# The manylinux names before PEP 600, by the glibc they stand for.
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def fits_al2023_arm64(tag: Tag, python: str) -> bool:
    """A wheel tag that runs on arm64 Lambda for this Python: read from the tag itself, not
    from the ranking the code under test computes."""
    major, minor = (int(p) for p in python.split("."))
    platform = tag.platform
    if platform != "any":
        found = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", platform)
        legacy = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)", platform)
        if found:
            glibc, arch = (int(found[1]), int(found[2])), found[3]
        elif legacy:
            glibc, arch = LEGACY_MANYLINUX[legacy[1]], legacy[2]
        else:
            return False  # musllinux, linux_*, macOS, Windows
        if arch != "aarch64" or glibc > (2, 34):
            return False
    if tag.interpreter.startswith("py"):
        return tag.interpreter in ("py3", f"py{major}{minor}") and tag.abi == "none"
    if tag.abi == "abi3":
        return tag.interpreter.startswith("cp3") and int(tag.interpreter[3:]) <= minor
    return tag.interpreter == f"cp{major}{minor}" and tag.abi in (f"cp{major}{minor}", "none")


def manifest_of(zip_path: str, name: str) -> dict[str, Any]:
    with zipfile.ZipFile(zip_path) as layer:
        data: dict[str, Any] = json.loads(layer.read(f"layerkit/{name}.json"))
    return data


def test_every_recipe_builds_one_zip_per_architecture_with_a_lock_per_target(
    built: dict[str, Any],
) -> None:
    assert sorted(built["artifacts"]) == [
        "app-config",
        "data-arm64",
        "data-x86_64",
        "http-client-arm64",
        "http-client-x86_64",
    ]
    locks = sorted(p.name for p in (built["project"] / "recipes").glob("*.lock.txt"))
    assert len(locks) == 9
    assert "data.python3.13-arm64.lock.txt" in locks
    # the build said it wrote the missing locks
    assert "data.python3.12-x86_64.lock.txt does not exist: writing it" in built["stderr"]


@pytest.mark.parametrize(
    ("artifact", "layer", "version"),
    [
        ("data-x86_64", "data", "3.12"),
        ("data-x86_64", "data", "3.13"),
        ("http-client-x86_64", "http-client", "3.12"),
        ("http-client-x86_64", "http-client", "3.13"),
    ],
)
def test_every_module_imports_on_the_target_python_with_only_the_layer_and_the_runtime(
    built: dict[str, Any], tmp_path: Path, artifact: str, layer: str, version: str
) -> None:
    zip_path = built["artifacts"][artifact]["path"]
    opt = extract(built["project"] / zip_path, tmp_path / "opt")
    runtime = runtime_packages(version, tmp_path.parent / f"runtime-{version}")
    results = import_all(opt, runtime, layer, f"python{version}-x86_64", version)
    assert results, "the layer ships no modules"
    assert all(outcome == "ok" for outcome in results.values()), results


def test_the_data_layer_leaves_out_what_the_runtime_provides(built: dict[str, Any]) -> None:
    data = manifest_of(built["project"] / built["artifacts"]["data-x86_64"]["path"], "data")
    shipped = {d["name"] for d in data["targets"]["python3.12-x86_64"]["distributions"]}
    assert {"numpy", "pandas", "pydantic", "pydantic-core", "cryptography", "cffi"} <= shipped
    assert not shipped & {"python-dateutil", "six", "boto3", "botocore", "urllib3"}
    versions = data["targets"]["python3.12-x86_64"]["site_packages"]
    assert versions == "python/lib/python3.12/site-packages"


@pytest.mark.parametrize("artifact", ["data-arm64", "http-client-arm64", "app-config"])
def test_arm64_layers_hold_only_aarch64_code_from_wheels_that_fit_glibc_2_34(
    built: dict[str, Any], artifact: str
) -> None:
    zip_path = built["project"] / built["artifacts"][artifact]["path"]
    report = inspect_layer(zip_path)
    assert report.problems == ()
    assert report.shared_objects > 0
    assert report.architectures == ("aarch64",)
    layer = manifest_of(zip_path, artifact.removesuffix("-arm64"))
    for target_id, content in layer["targets"].items():
        python = target_id.split("-")[0].removeprefix("python")
        for dist in content["distributions"]:
            tags = parse_wheel_filename(dist["wheel"])[3]
            assert any(fits_al2023_arm64(tag, python) for tag in tags), (target_id, dist["wheel"])


def test_data_and_config_files_land_under_opt_with_their_modes(built: dict[str, Any]) -> None:
    zip_path = built["project"] / built["artifacts"]["app-config"]["path"]
    with zipfile.ZipFile(zip_path) as layer:
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in layer.infolist()}
        assert b"log_level: INFO" in layer.read("etc/app/settings.yaml")
    assert modes["bin/healthcheck"] == 0o755
    assert modes["share/app/countries.csv"] == 0o644
    assert "share/app/currencies.json" in modes
    # a single Python version and architecture: packages go straight into python/
    assert "python/yaml/__init__.py" in modes
    assert "layerkit/app-config.json" in modes


def test_the_manifest_records_every_distribution_with_version_licence_and_size(
    built: dict[str, Any],
) -> None:
    zip_path = built["project"] / built["artifacts"]["http-client-x86_64"]["path"]
    layer = manifest_of(zip_path, "http-client")
    assert layer["layer"] == "http-client"
    assert layer["runtimes"] == ["python3.12", "python3.13"]
    assert layer["architectures"] == ["x86_64"]
    for target_id, content in layer["targets"].items():
        lock_file = built["project"] / "recipes" / f"http-client.{target_id}.lock.txt"
        assert content["lock"].startswith("sha256:")
        names = {d["name"].lower() for d in content["distributions"]}
        assert {"requests", "pyyaml", "urllib3", "idna", "certifi"} <= names
        for dist in content["distributions"]:
            assert dist["version"] in lock_file.read_text()
            assert dist["size"] > 0 and dist["license"]
    # dist-info survives slimming, so importlib.metadata works (checked by the import test)
    with zipfile.ZipFile(zip_path) as zipped:
        assert any(n.endswith(".dist-info/METADATA") for n in zipped.namelist())
        names = set(zipped.namelist())
    # the only bytecode is layerkit's, for the layer's Pythons, each beside its source
    pyc = [n for n in names if n.endswith(".pyc")]
    assert pyc
    for name in pyc:
        folder, _, file = name.rpartition("/__pycache__/")
        stem, tag, _ = file.rsplit(".", 2)
        assert tag in ("cpython-312", "cpython-313"), name
        assert f"{folder}/{stem}.py" in names, name


def test_a_second_build_rebuilds_nothing(built: dict[str, Any]) -> None:
    project = built["project"]
    before = {p: p.stat().st_mtime_ns for p in (project / "dist").glob("*.zip")}
    again = json.loads(layerkit("build", "--json", cwd=project).stdout)
    assert {a["status"] for a in again} == {"unchanged"}
    assert {p: p.stat().st_mtime_ns for p in (project / "dist").glob("*.zip")} == before
    assert {a["sha256"] for a in again} == {a["sha256"] for a in built["artifacts"].values()}


def test_the_shipped_recipes_build_clean(built: dict[str, Any], tmp_path: Path) -> None:
    """No warning about the examples themselves: the README's first command, on the
    committed locks, and every shipped recipe freshly locked."""
    warnings = [line for line in built["stderr"].splitlines() if line.startswith("warning:")]
    assert warnings == []
    shutil.copytree(RECIPES, tmp_path / "recipes")  # with the committed locks
    quick_start = layerkit("build", "http-client", cwd=tmp_path)
    assert "warning" not in quick_start.stderr, quick_start.stderr
