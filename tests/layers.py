"""Proving that a built layer works: extract it as Lambda does and import from it."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

from uv import find_uv_bin

# Lambda's sys.path: the function, then the layer, then the runtime's own packages. The
# modules are what the extracted tree holds (folders with __init__.py, .py files, extension
# modules), found here and not taken from the manifest that the code under test wrote.
IMPORT_CHECK = """
import importlib, importlib.metadata, json, os, sys
opt, runtime, manifest, target = sys.argv[1:5]
m = json.load(open(manifest))
site = m["targets"][target]["site_packages"]
trees = [f"{opt}/{site}", f"{opt}/python"]
sys.path[:0] = [*trees, runtime]
modules = set()
for tree in trees:
    for entry in os.listdir(tree) if os.path.isdir(tree) else ():
        path = os.path.join(tree, entry)
        if entry.endswith((".dist-info", ".data")) or entry in ("__pycache__", "bin", "lib"):
            continue
        if os.path.isdir(path) and os.path.exists(os.path.join(path, "__init__.py")):
            modules.add(entry)
        elif entry.endswith(".py"):
            modules.add(entry[:-3])
        elif entry.endswith(".so"):
            modules.add(entry.split(".")[0])
results = {}
for module in sorted(modules):
    try:
        importlib.import_module(module)
        results[module] = "ok"
    except Exception as exc:
        results[module] = repr(exc)
for d in m["targets"][target]["distributions"]:
    assert importlib.metadata.version(d["name"]) == d["version"], d["name"]
    origin = importlib.metadata.distribution(d["name"]).locate_file("")
    assert str(origin).startswith(opt), (d["name"], str(origin))
print(json.dumps(results))
"""


def interpreter(version: str) -> Path:
    """pyenv's interpreter for a Python version; CI machines have 3.9 to 3.13."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(root.glob(f"{version}.*/bin/python{version}"))
    if not found:
        raise AssertionError(f"no Python {version} under {root}: install it with pyenv")
    return found[-1]


def extract(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as layer:
        layer.extractall(dest)
    return dest


def runtime_packages(version: str, dest: Path) -> Path:
    """A stand-in for /var/runtime: what every Lambda Python runtime ships (boto3's stack)."""
    if not dest.exists():
        subprocess.run(
            [find_uv_bin(), "pip", "install", "--no-config", "--quiet", "--target", str(dest),
             "--python-version", version, "--python-platform", "x86_64-manylinux_2_17",
             "--python", str(interpreter(version)), "boto3"],
            check=True,
        )  # fmt: skip
    return dest


def import_all(opt: Path, runtime: Path, name: str, target: str, version: str) -> dict[str, str]:
    result = subprocess.run(
        [str(interpreter(version)), "-I", "-S", "-c", IMPORT_CHECK,
         str(opt), str(runtime), str(opt / "layerkit" / f"{name}.json"), target],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    imported: dict[str, str] = json.loads(result.stdout)
    return imported
