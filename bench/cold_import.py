"""Cold import of a layer: layerkit's hash-based bytecode against what other tools ship.

The data set (numpy, pandas, pydantic, cryptography) for python3.11 x86_64, every tool
installing the same wheels (layerkit's lock, with its hashes; aws-lambda-builders the same
pins, which it resolves to the same manylinux2014 wheels). Each layer is zipped as the
tool's users zip it, extracted into a fresh folder, and imported in a fresh
`python3.11 -B -I -S` with only that folder on sys.path: -B because Lambda's /opt is
read-only, so nothing compiled at import is kept.
Run from the repository root, after `pip install -e '.[dev,bench]'`:

    python bench/cold_import.py [--runs 11]

Layers are extracted twice: with `unzip`, which keeps the files' times, and with Python's
`zipfile`, which does not. Timestamp-based pyc (pip's, uv's) are only valid when the times
survive; layerkit's are unchecked-hash pyc and need no times. The runs alternate between
layers, and the table gives medians. Writes bench/out/cold_import.json and prints the
Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from build_speed import OUT, RECIPE, clean_env, fresh, lambda_builders, zip_tree
from uv import find_uv_bin

# What a handler of this layer imports. pydantic imports its modules lazily: BaseModel
# loads them.
MEASURE = """
import sys, time
sys.path[:0] = sys.argv[1:]
start = time.perf_counter()
import numpy, pandas
from pydantic import BaseModel
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric import ec, rsa
print(time.perf_counter() - start)
"""


def python311() -> Path:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(root.glob("3.11.*/bin/python3.11"))
    if not found:
        raise SystemExit("needs pyenv's Python 3.11 (pyenv install 3.11)")
    return found[-1]


def layerkit_layer(project: Path, bytecode: bool) -> Path:
    recipe = RECIPE if bytecode else RECIPE + "\n[slim]\nbytecode = false\n"
    (project / "recipes" / "data311.toml").write_text(recipe)
    out = fresh(f"cold-layerkit-{bytecode}")
    env = clean_env(LAYERKIT_CACHE_DIR=str(OUT / "cold-cache"))
    subprocess.run(
        [sys.executable, "-m", "layerkit", "build", "data311", "--locked", "-o", str(out)],
        cwd=project, env=env, check=True, capture_output=True,
    )  # fmt: skip
    return out / "data311.zip"


def pip_layer(lock: Path, python: Path) -> Path:
    """pip with the lock's hashes: exactly layerkit's wheels (the host would otherwise pick
    ones for its own, newer glibc, which python3.11's Amazon Linux 2 cannot load)."""
    work = fresh("cold-pip")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--require-hashes",
         "--only-binary", ":all:", "--target", str(work / "python"), "-r", str(lock)],
        env=clean_env(), check=True,
    )  # fmt: skip
    zip_tree(work, work / "layer.zip")
    return work / "layer.zip"


def uv_layer(lock: Path, python: Path, compile_bytecode: bool) -> Path:
    work = fresh(f"cold-uv-{compile_bytecode}")
    subprocess.run(
        [find_uv_bin(), "pip", "install", "--quiet", "--no-deps", "--require-hashes",
         "--only-binary", ":all:", "--target", str(work / "python"), "--python", str(python),
         "--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_17",
         *(["--compile-bytecode"] if compile_bytecode else []), "-r", str(lock)],
        env=clean_env(UV_CACHE_DIR=str(OUT / "cold-uv-cache")), check=True,
    )  # fmt: skip
    zip_tree(work, work / "layer.zip")
    return work / "layer.zip"


def lambda_builders_layer(pins: Path, python: Path) -> Path:
    work = fresh("cold-alb")
    lambda_builders(work, pins.read_text(), clean_env(PATH=f"{python.parent}:{os.environ['PATH']}"))
    return work / "layer.zip"


def extract(layer: Path, dest: Path, keep_times: bool) -> Path:
    if dest.exists():
        dest.rename(OUT / "trash" / f"{dest.name}-{time.monotonic_ns()}")
    if keep_times:
        subprocess.run(["unzip", "-q", str(layer), "-d", str(dest)], check=True)
    else:
        with zipfile.ZipFile(layer) as archive:
            archive.extractall(dest)
    return dest


def cold_import(python: Path, opt: Path) -> float:
    site = opt / "python"
    result = subprocess.run(
        [str(python), "-B", "-I", "-S", "-c", MEASURE, str(site)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(result.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args(argv)
    (OUT / "trash").mkdir(parents=True, exist_ok=True)
    python = python311()

    project = fresh("cold-project")
    (project / "recipes").mkdir()
    (project / "recipes" / "data311.toml").write_text(RECIPE)
    subprocess.run(
        [sys.executable, "-m", "layerkit", "lock", "data311"], cwd=project,
        env=clean_env(LAYERKIT_CACHE_DIR=str(OUT / "cold-cache")), check=True, capture_output=True,
    )  # fmt: skip
    lock = project / "recipes" / "data311.python3.11-x86_64.lock.txt"
    pins = OUT / "cold-pins.txt"
    pins.write_text(
        "".join(line.split(" ")[0] + "\n" for line in lock.read_text().splitlines() if "==" in line)
    )

    layers = {
        "layerkit": layerkit_layer(project, bytecode=True),
        "layerkit, bytecode = false": layerkit_layer(project, bytecode=False),
        "pip install --target": pip_layer(lock, python),
        "uv pip install --target --compile-bytecode": uv_layer(lock, python, True),
        "uv pip install --target": uv_layer(lock, python, False),
        "aws-lambda-builders": lambda_builders_layer(pins, python),
    }
    times: dict[str, dict[str, list[float]]] = {
        name: {"unzip": [], "zipfile": []} for name in layers
    }
    for _ in range(args.runs):
        for name, layer in layers.items():
            for how in ("unzip", "zipfile"):
                opt = extract(layer, OUT / "cold-opt", keep_times=how == "unzip")
                times[name][how].append(cold_import(python, opt))
    sizes = {name: layer.stat().st_size for name, layer in layers.items()}
    unzipped = {
        name: sum(i.file_size for i in zipfile.ZipFile(layer).infolist())
        for name, layer in layers.items()
    }
    medians = {name: {k: statistics.median(v) for k, v in t.items()} for name, t in times.items()}
    (OUT / "cold_import.json").write_text(
        json.dumps(
            {"runs": times, "medians": medians, "zipped": sizes, "unzipped": unzipped}, indent=2
        )
    )

    print("| layer | cold import, unzip (times kept) | cold import, zipfile (times lost) "
          "| ZIP | unzipped |\n|---|---|---|---|---|")  # fmt: skip
    for name in layers:
        m = medians[name]
        print(
            f"| {name} | {m['unzip']:.2f} s | {m['zipfile']:.2f} s | "
            f"{sizes[name] / 1e6:.1f} MB | {unzipped[name] / 1e6:.1f} MB |"
        )
    ours = medians["layerkit"]
    peers = [n for n in layers if not n.startswith("layerkit")]
    fastest = min(peers, key=lambda n: medians[n]["unzip"])
    print()
    print(f"- fastest peer (times kept): {fastest}")
    print(
        f"- cold import, layerkit / {fastest}: {ours['unzip'] / medians[fastest]['unzip']:.2f} "
        f"(times kept), {ours['zipfile'] / medians[fastest]['zipfile']:.2f} (times lost)"
    )
    print(f"- ZIP, layerkit / {fastest}: {sizes['layerkit'] / sizes[fastest]:.0%}")
    print("\nEvery run (s):")
    for name in layers:
        for how in ("unzip", "zipfile"):
            print(f"- {name}, {how}: {', '.join(f'{t:.2f}' for t in times[name][how])}")
    shutil.rmtree(OUT / "trash", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
