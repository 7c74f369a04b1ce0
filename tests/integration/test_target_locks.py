"""Locks are resolved for the target, not the host, and builds refuse what would not load."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

from layerkit.builder.index import PackageIndex, settings_from
from layerkit.builder.lockfile import parse
from layerkit.layer.inspection import inspect_layer
from tests.conftest import layerkit, write_recipe
from tests.layers import extract, import_all, interpreter, runtime_packages

pytestmark = pytest.mark.network

DATA_SET = '["numpy", "pandas", "pydantic", "cryptography"]'


def recipe(runtimes: str, requirements: str = DATA_SET) -> str:
    return (
        f'[layer]\nname = "data"\nruntimes = {runtimes}\narchitectures = ["x86_64"]\n'
        f"[python]\nrequirements = {requirements}\n"
    )


def pins(lock_file: Path) -> dict[str, str]:
    return {d.key: d.version for d in parse(lock_file.read_text()).dists}


def test_the_same_requirements_lock_differently_for_python3_11_and_python3_12(
    project: Path,
) -> None:
    write_recipe(project, "data", recipe('["python3.11", "python3.12"]'))
    layerkit("lock", "data", cwd=project)
    py311 = pins(project / "recipes" / "data.python3.11-x86_64.lock.txt")
    py312 = pins(project / "recipes" / "data.python3.12-x86_64.lock.txt")
    # numpy >= 2.3 ships only manylinux_2_28 wheels for x86_64: too new for Amazon Linux 2.
    assert py311["numpy"] != py312["numpy"]
    assert py311["numpy"].startswith("2.2.")


def test_a_python3_11_lock_holds_only_wheels_that_fit_glibc_2_26(project: Path) -> None:
    write_recipe(project, "data", recipe('["python3.11"]'))
    layerkit("lock", "data", cwd=project)
    lock = parse((project / "recipes" / "data.python3.11-x86_64.lock.txt").read_text())
    index = PackageIndex(settings_from({"PIP_CONFIG_FILE": "/dev/null"}))
    for dist in lock.dists:
        [locked_hash] = dist.hashes  # layerkit locks exactly one file per target
        [file] = [f for f in index.files(dist.name) if f.sha256 == locked_hash]
        for tag in parse_wheel_filename(file.filename)[3]:
            level = re.match(r"manylinux_2_(\d+)_", tag.platform)
            assert level is None or int(level.group(1)) <= 26, file.filename
            assert "musllinux" not in tag.platform and "aarch64" not in tag.platform


def test_the_python3_11_layer_imports_and_needs_no_newer_glibc(
    project: Path, tmp_path: Path
) -> None:
    write_recipe(project, "data", recipe('["python3.11"]'))
    [artifact] = json.loads(layerkit("build", "data", "--json", cwd=project).stdout)
    zip_path = project / artifact["path"]
    assert inspect_layer(zip_path).problems == ()
    opt = extract(zip_path, tmp_path / "opt")
    runtime = runtime_packages("3.11", tmp_path / "runtime")
    results = import_all(opt, runtime, "data", "python3.11-x86_64", "3.11")
    assert {"numpy", "pandas", "pydantic", "cryptography"} <= set(results)
    assert set(results.values()) == {"ok"}


def test_a_version_without_a_fitting_wheel_is_refused_with_the_way_out(project: Path) -> None:
    write_recipe(project, "data", recipe('["python3.11"]', '["numpy==2.3.5"]'))
    result = layerkit("build", "data", cwd=project, check=False)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "python3.11 x86_64 (glibc 2.26)" in result.stderr
    assert "numpy" in result.stderr and "--strategy container" in result.stderr
    assert not (project / "dist").exists()
    assert not list((project / "recipes").glob("data.*.lock.txt"))


def test_an_sdist_only_package_is_refused_with_the_way_out(project: Path) -> None:
    write_recipe(project, "cli", recipe('["python3.12"]', '["docopt==0.6.2"]'))
    result = layerkit("lock", "cli", cwd=project, check=False)
    assert result.returncode == 3
    assert "docopt" in result.stderr
    assert "container" in result.stderr


def test_an_import_check_alone_would_pass_a_layer_that_fails_on_lambda(
    project: Path, tmp_path: Path
) -> None:
    """What a host-side `pip install --target` gives: numpy 2.3 for Python 3.11 imports here
    (this machine has glibc 2.36) but needs GLIBC_2.27+, which Amazon Linux 2 lacks. The
    tag check keeps it out of layerkit's lock (test above); the ELF check catches it in any ZIP.
    """
    from uv import find_uv_bin

    from layerkit.runner import run

    tree = tmp_path / "peer"
    run([find_uv_bin(), "pip", "install", "--no-config", "--quiet", "--no-deps",
         "--target", str(tree / "python"), "--python", str(interpreter("3.11")),
         "--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28",
         "--only-binary", ":all:", "numpy==2.3.5"])  # fmt: skip
    zip_path = tmp_path / "peer.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as layer:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                layer.write(path, path.relative_to(tree).as_posix())
    imported = run([str(interpreter("3.11")), "-I", "-S", "-c",
                    f"import sys; sys.path.insert(0, {str(tree / 'python')!r}); "
                    "import numpy; print(numpy.__version__)"])  # fmt: skip
    assert imported.stdout.strip() == "2.3.5"

    result = layerkit("inspect", str(zip_path), "--json", cwd=tmp_path, check=False)
    assert result.returncode == 3
    problems = json.loads(result.stdout)["problems"]
    assert problems
    assert all("newer than the runtime's 2.26" in p for p in problems)
