"""An organisation's audit two ways: every account and region scanned directly, or one
AWS Config aggregator query first and only the places with functions read.

Measured on a moto server: the calls each way makes for an empty region and for a
region with functions, and the time per call, side by side, alternating, medians. moto has
no aggregator query, so its pages are served by botocore's Stubber from the fleet itself.
Then, on paper, the same figures for 1,000 accounts x 17 regions. Run from the repository
root:

    python bench/inventory_calls.py [--functions 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.stub import Stubber
from build_speed import moto_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from layerkit.account.clients import Clients
from layerkit.account.gateways import INVENTORY_PAGE, INVENTORY_QUERY
from layerkit.account.scan import MAX_WORKERS, scan, scan_inventory

ACCOUNT = "123456789012"
POPULATED = ["eu-west-1", "us-east-1"]
EMPTY = ["eu-central-1", "ap-southeast-2", "us-west-2", "sa-east-1"]


def small_zip() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("h.py", "def handle(e, c):\n    return 1\n")
    return buffer.getvalue()


def make_fleet(endpoint: str, functions: int) -> list[dict[str, Any]]:
    """`functions` per populated region on 2 versions of a layer, a tenth with a published
    version and an alias; returns what Config would record, as query rows."""

    def client(service: str, region: str) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=endpoint)

    role = client("iam", "us-east-1").create_role(RoleName="exec", AssumeRolePolicyDocument="{}")[
        "Role"
    ]["Arn"]
    code, rows = small_zip(), []
    for region in POPULATED:
        lam = client("lambda", region)
        arns = [
            lam.publish_layer_version(LayerName="deps", Content={"ZipFile": code})[
                "LayerVersionArn"
            ]
            for _ in range(2)
        ]
        for n in range(functions):
            name, layers = f"fn{n}", [arns[n % 2]]
            tags = {"aws:cloudformation:stack-name": f"stack{n % 7}"}
            lam.create_function(
                FunctionName=name, Runtime="python3.12", Role=role, Handler="h.handle",
                Code={"ZipFile": code}, Layers=layers, Tags=tags,
            )  # fmt: skip
            if n % 10 == 0:
                lam.publish_version(FunctionName=name)
                lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
            rows.append({
                "accountId": ACCOUNT, "awsRegion": region, "resourceName": name,
                "configuration": {"runtime": "python3.12", "architectures": ["x86_64"],
                                  "layers": [{"arn": a, "codeSize": 1} for a in layers]},
                "tags": [{"key": k, "value": v} for k, v in tags.items()],
                "configurationItemCaptureTime": "2026-12-01T03:00:00.000Z",
            })  # fmt: skip
    return rows


def direct() -> tuple[float, dict[str, int], dict[str, int]]:
    """Seconds, calls in all regions, calls in one empty region."""
    clients = Clients()
    started = time.perf_counter()
    scan({ACCOUNT: clients}, POPULATED + EMPTY)
    seconds = time.perf_counter() - started
    empty = Clients()
    scan({ACCOUNT: empty}, EMPTY[:1])
    return seconds, clients.calls, empty.calls


def inventory(rows: list[dict[str, Any]]) -> tuple[float, dict[str, int]]:
    clients = Clients()
    pages = [rows[i : i + INVENTORY_PAGE] for i in range(0, len(rows), INVENTORY_PAGE)]
    with Stubber(clients.client("config", "eu-west-1")) as stub:
        for n, page in enumerate(pages):
            token = {"NextToken": f"t{n + 1}"} if n + 1 < len(pages) else {}
            stub.add_response(
                "select_aggregate_resource_config",
                {"Results": [json.dumps(r) for r in page], **token},
                {"Expression": INVENTORY_QUERY, "ConfigurationAggregatorName": "org",
                 "Limit": INVENTORY_PAGE, **({"NextToken": f"t{n}"} if n else {})},
            )  # fmt: skip
        started = time.perf_counter()
        scan_inventory(clients, "org", "Role", (), (), False)
        seconds = time.perf_counter() - started
    calls = dict(clients.calls)
    calls["SelectAggregateResourceConfig"] = len(pages)  # Stubber answers before counting
    return seconds, calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--functions", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    for name in list(os.environ):
        if name.startswith(("AWS_", "LAYERKIT_")):
            del os.environ[name]
    with moto_server() as endpoint:
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="eu-west-1",
        )  # fmt: skip
        rows = make_fleet(endpoint, args.functions)
        times: dict[str, list[float]] = {"direct": [], "inventory": []}
        for _ in range(args.runs):  # alternating, so both see the same machine
            seconds, direct_calls, empty_calls = direct()
            times["direct"].append(seconds)
            seconds, inventory_calls = inventory(rows)
            times["inventory"].append(seconds)
    medians = {k: statistics.median(v) for k, v in times.items()}
    total = {"direct": sum(direct_calls.values()), "inventory": sum(inventory_calls.values())}
    per_call = {k: medians[k] / total[k] for k in medians}
    print(f"fleet: {args.functions} functions in each of {POPULATED}; {EMPTY} empty")
    for way in ("direct", "inventory"):
        calls = direct_calls if way == "direct" else inventory_calls
        runs = ", ".join(f"{t:.2f}" for t in times[way])
        print(f"{way}: median {medians[way]:.2f} s ({runs}); {total[way]} calls {calls}; "
              f"{per_call[way] * 1000:.1f} ms a call")  # fmt: skip
    print(f"an empty region, scanned directly: {empty_calls}")
    # On paper: 1,000 accounts x 17 regions, functions in 2 regions of each account, as
    # many per populated region as here; the per-region calls as measured above.
    accounts, regions, populated = 1000, 17, 2
    per_empty = sum(empty_calls.values())
    per_place_direct = (total["direct"] - per_empty * len(EMPTY)) / len(POPULATED)
    config_pages = inventory_calls["SelectAggregateResourceConfig"]
    per_place_inventory = (total["inventory"] - config_pages) / len(POPULATED)
    functions = accounts * populated * args.functions
    scaled = {
        "direct": accounts * (regions - populated) * per_empty
        + accounts * populated * per_place_direct
        + accounts,  # + AssumeRole per account
        "inventory": math.ceil(functions / INVENTORY_PAGE)
        + accounts * populated * per_place_inventory
        + accounts,
    }
    print(f"on paper, {accounts} accounts x {regions} regions, {functions} functions:")
    for way, calls in scaled.items():
        hours = calls * per_call["direct"] / MAX_WORKERS / 3600
        print(f"  {way}: {calls:,.0f} calls; at {per_call['direct'] * 1000:.1f} ms a call "
              f"and {MAX_WORKERS} at once, {hours:.2f} h; at 50 ms a call (AWS), "
              f"{calls * 0.05 / MAX_WORKERS / 3600:.2f} h")  # fmt: skip


if __name__ == "__main__":
    main()
