"""Build speed and size: layerkit against aws-lambda-builders + zip and uv + zip.

The data set (numpy, pandas, pydantic, cryptography) for python3.11 x86_64, every tool
given the same lock. Run from the repository root, after `pip install -e '.[dev,bench]'`:

    python bench/build_speed.py [--runs 5]

It writes bench/out/build_speed.json and prints the Markdown table for BENCHMARKS.md.
Every run starts from PyPI with this machine's pip and uv configuration switched off
(PIP_CONFIG_FILE=/dev/null, UV_NO_CONFIG=1). Old outputs are moved aside, not deleted,
because deleting a large tree slows the writes that follow on these machines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from uv import find_uv_bin

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
RECIPE = """\
[layer]
name = "data311"
runtimes = ["python3.11"]
architectures = ["x86_64"]

[python]
requirements = ["numpy", "pandas", "pydantic", "cryptography"]
"""


def clean_env(**extra: str) -> dict[str, str]:
    """This machine's environment without its pip, uv and layerkit settings; the builds a
    bench makes are recorded in a registry of its own, never in the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "LAYERKIT_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, UV_NO_CONFIG="1")
    env["LAYERKIT_REGISTRY"] = str(OUT / "registry.sqlite")
    env.update(extra)
    cert = os.environ.get("SSL_CERT_FILE")
    if cert:  # this machine intercepts TLS; pip reads PIP_CERT, not SSL_CERT_FILE
        env["PIP_CERT"] = cert
    return env


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server over HTTP on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def fresh(name: str) -> Path:
    """A new empty folder; an old one of the same name is moved aside."""
    path = OUT / name
    if path.exists():
        (OUT / "trash").mkdir(parents=True, exist_ok=True)
        path.rename(OUT / "trash" / f"{name}-{time.monotonic_ns()}")
    path.mkdir(parents=True)
    return path


def zip_tree(tree: Path, dest: Path) -> None:
    subprocess.run(["zip", "-qr", str(dest), "python"], cwd=tree, check=True)


def tree_size(tree: Path) -> int:
    return sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())


def source_tree(rev: str) -> Path:
    """layerkit's source at a git revision, with its bytecode compiled (as when installed)."""
    tree = OUT / f"layerkit-{rev}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT,
                       check=True, capture_output=True)  # fmt: skip
    return tree


def layerkit_runs(
    project: Path, runs: int, trees: dict[str, Path]
) -> dict[str, dict[str, list[float]]]:
    """cold, warm and no-op builds of each source tree, alternating run by run."""
    command = [sys.executable, "-m", "layerkit", "build", "data311", "--locked"]
    for tree in trees.values():
        # PYTHONDONTWRITEBYTECODE may be set: compile layerkit itself, as an install does.
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "layerkit")],
                       check=True)  # fmt: skip
    times: dict[str, dict[str, list[float]]] = {
        name: {"cold": [], "warm": [], "noop": [], "warm_new_sbom": []} for name in trees
    }
    # The floor a no-op build is held against: the CLI's own libraries, imported alone.
    floor = [sys.executable, "-c", "import typer, rich.console"]
    times[FLOOR] = {"noop": []}
    for run in range(runs):
        for name, tree in trees.items():
            slug = name.replace(" ", "-")
            cache = fresh(f"{slug}-cache-{run}")
            # Each tree its own registry: a newer layerkit's schema is one an older refuses.
            env = clean_env(LAYERKIT_CACHE_DIR=str(cache), PYTHONPATH=str(tree),
                            LAYERKIT_REGISTRY=str(cache / "registry.sqlite"))  # fmt: skip
            out = fresh(f"{slug}-cold-{run}")
            times[name]["cold"].append(timed([*command, "-o", str(out)], project, env))
            # warm: the wheels are cached, the finished ZIP is not
            (cache / "artifacts").rename(OUT / "trash" / f"artifacts-{time.monotonic_ns()}")
            out = fresh(f"{slug}-warm-{run}")
            times[name]["warm"].append(timed([*command, "-o", str(out)], project, env))
            for _ in range(NOOP_PAIRS):
                times[name]["noop"].append(timed([*command, "-o", str(out)], project, env))
                if name == "layerkit":  # side by side with the no-op it is compared with
                    times[FLOOR]["noop"].append(timed(floor, project, env))
            # warm, with the SBOM made again (as when the manifest changed): its cost alone
            for kept in ("artifacts", "sbom"):
                if (cache / kept).exists():
                    (cache / kept).rename(OUT / "trash" / f"{kept}-{time.monotonic_ns()}")
            out = fresh(f"{slug}-warm-sbom-{run}")
            times[name]["warm_new_sbom"].append(timed([*command, "-o", str(out)], project, env))
    return times


FLOOR = "typer + rich import"
# A no-op takes a fraction of a second, and one run of it on these machines can be twice
# another: several per run, each beside the floor, so that their medians hold still.
NOOP_PAIRS = 7


def uv_runs(lock: Path, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"cold": [], "warm": []}
    for run in range(runs):
        cache = fresh(f"uv-cache-{run}")
        for kind in ("cold", "warm"):
            work = fresh(f"uv-{kind}-{run}")
            install = [
                find_uv_bin(), "pip", "install", "--quiet", "--no-deps", "--require-hashes",
                "--target", str(work / "python"), "--python", sys.executable,
                "--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_17",
                "--only-binary", ":all:", "-r", str(lock),
            ]  # fmt: skip
            env = clean_env(UV_CACHE_DIR=str(cache))
            start = time.perf_counter()
            subprocess.run(install, check=True, env=env)
            zip_tree(work, work / "layer.zip")
            times[kind].append(time.perf_counter() - start)
    return times


def lambda_builders(work: Path, pins: str, env: dict[str, str]) -> None:
    """What `sam build` runs without Docker: the python_pip workflow, then zip, in `work`."""
    from aws_lambda_builders.builder import LambdaBuilder

    (work / "src").mkdir()
    (work / "src" / "requirements.txt").write_text(pins)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        LambdaBuilder("python", "pip", None).build(
            str(work / "src"),
            str(work / "artifacts" / "python"),
            str(work / "scratch"),
            str(work / "src" / "requirements.txt"),
            runtime="python3.11",
            architecture="x86_64",
            is_building_layer=True,
        )
        zip_tree(work / "artifacts", work / "layer.zip")
    finally:
        os.environ.clear()
        os.environ.update(saved)


def lambda_builders_runs(pins: str, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"cold": [], "warm": []}
    for run in range(runs):
        cache = fresh(f"alb-cache-{run}")
        for kind in ("cold", "warm"):
            env = clean_env(PIP_CACHE_DIR=str(cache))
            env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # python3.11 for ALB
            start = time.perf_counter()
            lambda_builders(fresh(f"alb-{kind}-{run}"), pins, env)
            times[kind].append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--baseline", help="also measure layerkit at this git revision, alternating with it"
    )
    args = parser.parse_args(argv)
    (OUT / "trash").mkdir(parents=True, exist_ok=True)

    project = fresh("project")
    (project / "recipes").mkdir()
    (project / "recipes" / "data311.toml").write_text(RECIPE)
    lock_env = clean_env(LAYERKIT_CACHE_DIR=str(fresh("lock-cache")))
    subprocess.run(
        [sys.executable, "-m", "layerkit", "lock", "data311"],
        cwd=project, env=lock_env, check=True, capture_output=True,
    )  # fmt: skip
    lock = project / "recipes" / "data311.python3.11-x86_64.lock.txt"
    pins = "".join(
        line.split(" ")[0] + "\n" for line in lock.read_text().splitlines() if "==" in line
    )

    trees = {"layerkit": ROOT}
    if args.baseline:
        trees[f"layerkit at {args.baseline}"] = source_tree(args.baseline)
    results: dict[str, dict[str, list[float]]] = {
        **layerkit_runs(project, args.runs, trees),
        "uv + zip": uv_runs(lock, args.runs),
        "aws-lambda-builders + zip": lambda_builders_runs(pins, args.runs),
    }

    built = next((OUT / f"layerkit-warm-{args.runs - 1}").glob("*.zip"))
    with zipfile.ZipFile(built) as layer:
        ours_unzipped = sum(i.file_size for i in layer.infolist())
    wheels = sum(p.stat().st_size for p in (OUT / "layerkit-cache-0" / "wheels").rglob("*.whl"))
    uv_tree = tree_size(OUT / f"uv-warm-{args.runs - 1}" / "python")
    sizes = {
        "layerkit_zipped": built.stat().st_size,
        "sum_of_wheels": wheels,
        "layerkit_unzipped": ours_unzipped,
        "uv_target_unzipped": uv_tree,
        "uv_zip": (OUT / f"uv-warm-{args.runs - 1}" / "layer.zip").stat().st_size,
    }
    medians = {tool: {k: median(v) for k, v in runs.items()} for tool, runs in results.items()}
    (OUT / "build_speed.json").write_text(
        json.dumps({"runs": results, "medians": medians, "sizes": sizes}, indent=2)
    )

    alb, uv, lk = (medians[k] for k in ("aws-lambda-builders + zip", "uv + zip", "layerkit"))
    print("| method | cold (s) | warm (s) | no-op (s) | warm, SBOM made (s) |")
    print("|---|---|---|---|---|")
    for name, m in medians.items():
        nan = float("nan")
        print(
            f"| {name} | {m.get('cold', nan):.2f} | {m.get('warm', nan):.2f} "
            f"| {m.get('noop', nan):.3f} | {m.get('warm_new_sbom', nan):.2f} |"
        )
    print()
    print(f"- warm: layerkit is {alb['warm'] / lk['warm']:.1f}x faster than aws-lambda-builders")
    print(f"- cold: layerkit is {uv['cold'] / lk['cold']:.1f}x faster than uv + zip")
    paired = zip(results["layerkit"]["noop"], results[FLOOR]["noop"], strict=True)
    print(f"- no-op: {lk['noop']:.3f} s, {lk['noop'] / medians[FLOOR]['noop']:.2f}x the "
          f"typer + rich import ({medians[FLOOR]['noop']:.3f} s); pair by pair "
          f"{median([a / b for a, b in paired]):.2f}x")  # fmt: skip
    if args.baseline:
        base = medians[f"layerkit at {args.baseline}"]
        print(
            f"- against {args.baseline} (now / then): cold {lk['cold'] / base['cold']:.2f}, "
            f"warm {lk['warm'] / base['warm']:.2f}, no-op {lk['noop'] / base['noop']:.2f}; "
            f"its no-op was {base['noop'] / medians[FLOOR]['noop']:.2f}x the floor"
        )
        baseline_tree = str(trees[f"layerkit at {args.baseline}"])
        subprocess.run(
            ["git", "worktree", "remove", "--force", baseline_tree], cwd=ROOT, check=False
        )
    ours, theirs = sizes["layerkit_unzipped"], sizes["uv_target_unzipped"]
    print(
        f"- zipped {sizes['layerkit_zipped']:,} B vs wheels {sizes['sum_of_wheels']:,} B; "
        f"unzipped {ours:,} B vs uv --target {theirs:,} B ({1 - ours / theirs:.1%} smaller)"
    )
    shutil.rmtree(OUT / "trash", ignore_errors=True)
    return 0


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        sys.exit(main())
