"""Audit of 5,000 functions across 3 regions against a moto server.

layerkit against the hand-written script people use today (list the functions, then
`GetFunctionConfiguration` for each, one region after another), in the same run. Also
each region alone, to show the regions run concurrently. Run from the repository root:

    python bench/audit_speed.py [--functions 5000] [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from build_speed import OUT, clean_env, fresh, moto_server

REGIONS = ["eu-west-1", "us-east-1", "ap-southeast-2"]


def small_zip(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("handler.py", text)
    return buffer.getvalue()


def make_fleet(endpoint: str, functions: int) -> None:
    def client(service: str, region: str) -> Any:
        return boto3.client(
            service, region_name=region, endpoint_url=endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip

    code = small_zip("def handle(event, context):\n    return 1\n")
    for region in REGIONS:
        role = client("iam", region).create_role(
            RoleName=f"exec-{region}", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        lam = client("lambda", region)
        layers = {
            (name, v): lam.publish_layer_version(
                LayerName=name, Content={"ZipFile": small_zip(f"{name}{v}")}
            )["LayerVersionArn"]
            for name, count in (("base", 4), ("extra", 2))
            for v in range(1, count + 1)
        }
        per_region = functions // len(REGIONS) + (1 if REGIONS.index(region) < functions % 3 else 0)

        def create(number: int, lam: Any = lam, role: str = role, layers: Any = layers) -> None:
            chosen = [layers[("base", 1 + number % 4)]]
            if number % 3 == 0:
                chosen.append(layers[("extra", 1 + number % 2)])
            lam.create_function(
                FunctionName=f"fn-{number:05d}", Runtime="python3.12", Role=role,
                Handler="handler.handle", Code={"ZipFile": code}, Layers=chosen,
            )  # fmt: skip

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(create, range(per_region)))


def naive_script(endpoint: str) -> tuple[float, int]:
    """List the functions, then ask each for its configuration, region after region."""
    calls = 0
    start = time.perf_counter()
    for region in REGIONS:
        lam = boto3.client(
            "lambda", region_name=region, endpoint_url=endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        names = []
        for page in lam.get_paginator("list_functions").paginate():
            calls += 1
            names += [f["FunctionName"] for f in page["Functions"]]
        for name in names:
            lam.get_function_configuration(FunctionName=name)
            calls += 1
    return time.perf_counter() - start, calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--functions", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with moto_server() as endpoint:
        started = time.perf_counter()
        make_fleet(endpoint, args.functions)
        print(f"fleet of {args.functions} functions made in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)  # fmt: skip
        project = fresh("audit-project")
        env = {
            **clean_env(), "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "LAYERKIT_REGISTRY": str(project / "registry.sqlite"),
        }  # fmt: skip

        def audit(regions: list[str]) -> tuple[float, dict[str, Any]]:
            flags = [arg for region in regions for arg in ("--region", region)]
            start = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", "layerkit", "audit", *flags, "--json"],
                cwd=project, env=env, check=True, capture_output=True, text=True,
            )  # fmt: skip
            return time.perf_counter() - start, json.loads(result.stdout)

        ours = [audit(REGIONS) for _ in range(args.runs)]
        alone = {
            region: statistics.median(audit([region])[0] for _ in range(3)) for region in REGIONS
        }
        naive = [naive_script(endpoint) for _ in range(args.runs)]

    times = [t for t, _ in ours]
    report = ours[-1][1]
    results = {
        "layerkit": times, "calls": report["api_calls"], "references": len(report["references"]),
        "outdated": len(report["outdated"]), "alone": alone,
        "naive": [t for t, _ in naive], "naive_calls": naive[-1][1],
    }  # fmt: skip
    (OUT / "audit_speed.json").write_text(json.dumps(results, indent=2))
    calls = report["api_calls"]
    print("| method | median (s) | runs (s) | API calls |\n|---|---|---|---|")
    print(f"| layerkit audit, 3 regions | {statistics.median(times):.2f} | "
          f"{', '.join(f'{t:.2f}' for t in times)} | {sum(calls.values())}: "
          f"{', '.join(f'{k} {v}' for k, v in sorted(calls.items()))} |")  # fmt: skip
    slow = results["naive"]
    print(f"| list + GetFunctionConfiguration per function | {statistics.median(slow):.2f} | "
          f"{', '.join(f'{t:.2f}' for t in slow)} | {results['naive_calls']} |")  # fmt: skip
    print()
    print(
        f"- each region alone: {', '.join(f'{r} {t:.2f} s' for r, t in alone.items())}; "
        f"sum {sum(alone.values()):.2f} s"
    )
    print(f"- {results['references']} references, {results['outdated']} outdated")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
