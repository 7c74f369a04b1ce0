"""Container builds: layerkit cold and warm against an uncached `pip install -r` in the
same image, which is the work `sam build --use-container` does.

The data set (numpy, pandas, pydantic, cryptography) and MarkupSafe compiled from source,
for python3.11 x86_64, in the test build image that .ci/docker-up makes. Run from the
repository root, with the engine up:

    python bench/container_speed.py [--runs 5] [--image layerkit-test-build:bookworm]

It writes bench/out/container_speed.json and prints the Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from build_speed import OUT, clean_env, fresh

CA = "/etc/ssl/certs/ca-certificates.crt"
# The data set at the versions layerkit locks for python3.11 (the test image is Debian 12,
# whose glibc 2.36 would let pip-compile pick releases Amazon Linux 2 cannot load), plus
# one C extension compiled from source, so that the container has real work.
RECIPE = """\
[layer]
name = "data311"
runtimes = ["python3.11"]
architectures = ["x86_64"]

[python]
requirements = ["numpy==2.2.6", "pandas==2.3.2", "pydantic", "cryptography", "markupsafe"]
no-binary = ["markupsafe"]
"""


def timed(command: list[str], **kwargs: object) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", default="layerkit-test-build:bookworm")
    args = parser.parse_args(argv)
    (OUT / "trash").mkdir(parents=True, exist_ok=True)

    project = fresh("container-project")
    (project / "recipes").mkdir()
    (project / "recipes" / "data311.toml").write_text(RECIPE)
    container = ["--strategy", "container", "--image", args.image, "--network", "host"]
    env = clean_env(PIP_CERT=CA, LAYERKIT_CACHE_DIR=str(fresh("container-lock-cache")))
    subprocess.run(
        [sys.executable, "-m", "layerkit", "lock", "data311", *container],
        cwd=project, env=env, check=True, capture_output=True,
    )  # fmt: skip
    lock = project / "recipes" / "data311.python3.11-x86_64.lock.txt"
    pins = "".join(
        line.split(" ")[0] + "\n" for line in lock.read_text().splitlines() if "==" in line
    )

    build = [sys.executable, "-m", "layerkit", "build", "data311", "--locked", *container]
    times: dict[str, list[float]] = {"cold": [], "warm": [], "pip install -r, no cache": []}
    for run in range(args.runs):
        cache = fresh(f"container-cache-{run}")
        env = clean_env(PIP_CERT=CA, LAYERKIT_CACHE_DIR=str(cache))
        out = fresh(f"container-cold-{run}")
        times["cold"].append(timed([*build, "-o", str(out)], cwd=project, env=env))
        (cache / "artifacts").rename(OUT / "trash" / f"artifacts-{time.monotonic_ns()}")
        out = fresh(f"container-warm-{run}")
        times["warm"].append(timed([*build, "-o", str(out)], cwd=project, env=env))

        work = fresh(f"container-peer-{run}")
        (work / "requirements.txt").write_text(pins)
        peer = [
            "docker", "run", "--rm", "--network", "host",
            "-v", f"{work}:/work", "-v", f"{CA}:/ca.pem:ro", "-e", "PIP_CERT=/ca.pem",
            args.image, "python3", "-m", "pip", "install", "--quiet", "--no-cache-dir",
            "--no-binary", "markupsafe", "-r", "/work/requirements.txt", "--target", "/work/python",
        ]  # fmt: skip
        times["pip install -r, no cache"].append(timed(peer))

    medians = {k: statistics.median(v) for k, v in times.items()}
    (OUT / "container_speed.json").write_text(json.dumps({"runs": times, "medians": medians}))
    print("| method | median (s) | runs (s) |\n|---|---|---|")
    for name, values in times.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {name} | {medians[name]:.2f} | {shown} |")
    speedup = medians["pip install -r, no cache"] / medians["warm"]
    print(f"\n- warm layerkit container build is {speedup:.1f}x faster than the uncached install")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
