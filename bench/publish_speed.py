"""Publishing an unchanged layer to 3 regions, the common CI case, against a moto server.

layerkit against what a plain CI step does (`aws lambda publish-layer-version` in each
region on every run): wall time, API calls, and the layer versions each leaves behind.
Run from the repository root, after `pip install -e '.[dev]'`:

    python bench/publish_speed.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import boto3
from build_speed import OUT, clean_env, fresh, moto_server

REGIONS = ["eu-west-1", "us-east-1", "ap-southeast-2"]
RECIPE = """\
[layer]
name = "http-client"
description = "requests and PyYAML for our services"
runtimes = ["python3.12"]
architectures = ["x86_64"]

[python]
requirements = ["requests>=2.32", "PyYAML~=6.0"]
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    (OUT / "trash").mkdir(parents=True, exist_ok=True)
    with moto_server() as endpoint:
        aws = {
            "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }  # fmt: skip
        project = fresh("publish-project")
        (project / "recipes").mkdir()
        (project / "recipes" / "http-client.toml").write_text(RECIPE)
        env = {**clean_env(LAYERKIT_CACHE_DIR=str(fresh("publish-cache"))), **aws,
               "LAYERKIT_REGISTRY": str(project / "registry.sqlite")}  # fmt: skip
        lk = [sys.executable, "-m", "layerkit"]
        subprocess.run([*lk, "build", "http-client", "--json"], cwd=project, env=env,
                       check=True, capture_output=True)  # fmt: skip
        zip_path = project / "dist" / "http-client.zip"
        regions = [arg for region in REGIONS for arg in ("--region", region)]
        command = [*lk, "publish", str(zip_path), *regions, "--json"]
        subprocess.run(command, cwd=project, env=env, check=True, capture_output=True)

        ours: list[float] = []
        calls: dict[str, int] = {}
        for _ in range(args.runs):
            start = time.perf_counter()
            result = subprocess.run(command, cwd=project, env=env, check=True,
                                    capture_output=True, text=True)  # fmt: skip
            ours.append(time.perf_counter() - start)
            report = json.loads(result.stdout)
            assert {o["status"] for o in report["outcomes"]} == {"unchanged"}
            calls = report["api_calls"]

        naive: list[float] = []
        data = zip_path.read_bytes()
        for _ in range(args.runs):
            start = time.perf_counter()
            for region in REGIONS:
                boto3.client(
                    "lambda", region_name=region, endpoint_url=endpoint,
                    aws_access_key_id="testing", aws_secret_access_key="testing",
                ).publish_layer_version(LayerName="naive", Content={"ZipFile": data})  # fmt: skip
            naive.append(time.perf_counter() - start)
        left = {
            name: len(boto3.client(
                "lambda", region_name="eu-west-1", endpoint_url=endpoint,
                aws_access_key_id="testing", aws_secret_access_key="testing",
            ).list_layer_versions(LayerName=name)["LayerVersions"])
            for name in ("http-client", "naive")
        }  # fmt: skip

    results = {"layerkit": ours, "naive": naive, "calls": calls, "versions": left,
               "zip_bytes": zip_path.stat().st_size}  # fmt: skip
    (OUT / "publish_speed.json").write_text(json.dumps(results, indent=2))
    print("| method | median (s) | runs (s) | API calls per run | versions after all runs |")
    print("|---|---|---|---|---|")
    print(
        f"| layerkit publish (unchanged) | {statistics.median(ours):.2f} | "
        f"{', '.join(f'{t:.2f}' for t in ours)} | {sum(calls.values())}: "
        f"{', '.join(f'{k} {v}' for k, v in sorted(calls.items()))} | {left['http-client']} |"
    )
    print(
        f"| publish-layer-version in each region | {statistics.median(naive):.2f} | "
        f"{', '.join(f'{t:.2f}' for t in naive)} | {len(REGIONS)} PublishLayerVersion, "
        f"{len(REGIONS)} uploads of {results['zip_bytes']:,} B | {left['naive']} |"
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
