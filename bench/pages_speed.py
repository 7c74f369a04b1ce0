"""The pages against the terminal views that answer the same questions, in the same run.

- `layerkit report ZIP -o page.html` for the data layer (numpy, pandas, pydantic,
  cryptography: 200 MiB unzipped, 10 distributions) against `layerkit inspect ZIP --json`,
  which reads the same ZIP for the terminal;
- `layerkit catalog -o DIR` of a registry of 100 layers x 20 versions in 2 regions (4,000
  versions with manifests, 2,000 pages and SBOMs) against `layerkit ls --json` of it.

Whole processes, alternating run by run, medians. Run from the repository root after a
build of the data recipe (`layerkit build data`): `python bench/pages_speed.py [--runs 5]`.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from build_speed import clean_env, fresh

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from layerkit.layer.manifest import Distribution, LayerManifest, TargetContent  # noqa: E402
from layerkit.registry import Registry, Version  # noqa: E402


def registry_of(path: Path, layers: int, versions: int) -> None:
    """A registry as `publish` leaves it: each version with a manifest of 12 distributions,
    one of them moving on every version."""
    rows = []
    for n in range(layers):
        for v in range(1, versions + 1):
            dists = tuple(
                Distribution(f"pkg{d}", f"1.{v if d == 0 else 0}", "MIT", 100_000 * (d + 1),
                             f"pkg{d}-1.0-py3-none-any.whl", f"{d:064x}", (f"pkg{d}",))
                for d in range(12)
            )  # fmt: skip
            manifest = LayerManifest(
                layer=f"layer{n}", artifact=f"layer{n}", runtimes=("python3.12",),
                architectures=("x86_64",), description=f"layer {n}",
                targets={"python3.12-x86_64": TargetContent("sha256:0", "wheels", "python",
                                                            "cpython-312", dists)},
                unzipped_bytes=sum(d.size for d in dists),
            )  # fmt: skip
            sha = hashlib.sha256(f"{n}:{v}".encode()).hexdigest()
            for region in ("eu-west-1", "us-east-1"):
                rows.append(Version(
                    arn=f"arn:aws:lambda:{region}:123456789012:layer:layer{n}:{v}",
                    layer=f"layer{n}", region=region, account="123456789012", version=v,
                    sha256=sha, size=1_000_000, description=f"layer {n} [lk:{sha[:24]}]",
                    runtimes=("python3.12",), architectures=("x86_64",),
                    created=f"2026-11-{1 + v:02d}T00:00:00+00:00", manifest=manifest,
                ))  # fmt: skip
    Registry(path).record_versions(rows)


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--zip", type=Path, default=ROOT / "dist" / "data-x86_64.zip")
    args = parser.parse_args()
    work = fresh("pages")
    registry = work / "registry.sqlite"
    registry_of(registry, 100, 20)
    env = clean_env(LAYERKIT_REGISTRY=str(registry), LAYERKIT_CACHE_DIR=str(work / "cache"))
    layerkit = [sys.executable, "-m", "layerkit"]
    commands = {
        "report": [*layerkit, "report", str(args.zip), "-o", str(work / "report.html")],
        "inspect --json": [*layerkit, "inspect", str(args.zip), "--json"],
        "catalog": [*layerkit, "catalog", "-o", str(work / "site")],
        "ls --json": [*layerkit, "ls", "--json"],
    }
    # The first catalog makes every SBOM (cyclonedx-python-lib, on every CPU) and keeps it
    # in the cache, as a build does; later ones read them back. Both are reported.
    cold = timed(commands["catalog"], env)
    print(f"| `layerkit catalog`, no SBOM in the cache | {cold:.2f} | 1 run |")
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, command in commands.items():
            if name == "catalog":
                shutil.rmtree(work / "site", ignore_errors=True)
            times[name].append(timed(command, env))
    pages = sum(1 for _ in (work / "site").rglob("*.html"))
    print(f"catalog: {pages} pages")
    for name, found in times.items():
        runs = ", ".join(f"{t:.2f}" for t in found)
        print(f"| `layerkit {name}` | {statistics.median(found):.2f} | {runs} |")


if __name__ == "__main__":
    main()
