"""Who owns a function: audit names its stack or owner tag, and rollout leaves it to them.

moto's CloudFormation neither passes `Layers` through nor tags what it creates, so the
tags CloudFormation puts on a stack's functions are put on moto's functions directly. The
Tagging API's denial (and the ListTags fallback) is something moto cannot do on purpose:
botocore's Stubber does.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from botocore.stub import Stubber

from layerkit.account.clients import Clients
from layerkit.account.gateways import Tags
from tests.conftest import layerkit
from tests.fleet import client, execution_role, zipped

REGION = "eu-west-1"


def fleet(env: dict[str, str]) -> str:
    """Three functions on layer x:1 (x:2 published): one a CloudFormation stack made, one
    Terraform's (its default_tags), one nobody's."""
    lam = client(env, "lambda", REGION)
    for _ in range(2):
        arn = lam.publish_layer_version(LayerName="x", Content={"ZipFile": zipped()})
    v1 = str(arn["LayerVersionArn"]).rsplit(":", 1)[0] + ":1"
    role = execution_role(env)
    for name, tags in (
        ("api", {"aws:cloudformation:stack-name": "api-prod", "lambda:createdBy": "SAM"}),
        ("worker", {"ManagedBy": "terraform", "Team": "data"}),
        ("script", {}),
    ):
        lam.create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler="h.handle",
            Code={"ZipFile": zipped()}, Layers=[v1], Tags=tags,
        )  # fmt: skip
    return v1


def test_audit_names_each_functions_owner_in_one_call_per_region(
    aws: dict[str, str], project: Path
) -> None:
    fleet(aws)
    done = layerkit("audit", "--region", REGION, "--owner-tag", "ManagedBy", "--json",
                    cwd=project, env=aws)  # fmt: skip
    report = json.loads(done.stdout)
    owners = {r["function"]: r["managed_by"] for r in report["references"]}
    assert owners == {
        "api": "CloudFormation stack api-prod", "worker": "ManagedBy=terraform", "script": None,
    }  # fmt: skip
    assert report["api_calls"]["GetResources"] == 1  # one region, one page
    assert "ListTags" not in report["api_calls"]

    # the variable names the same keys; without one, Terraform's function is nobody's
    by_env = layerkit("audit", "--region", REGION, "--csv", cwd=project,
                      env={**aws, "LAYERKIT_OWNER_TAGS": "Team, ManagedBy"})  # fmt: skip
    rows = {r["function"]: r["managed_by"] for r in csv.DictReader(io.StringIO(by_env.stdout))}
    assert rows == {"api": "CloudFormation stack api-prod", "worker": "Team=data", "script": ""}
    plain = json.loads(layerkit("audit", "--region", REGION, "--json", cwd=project,
                                env=aws).stdout)  # fmt: skip
    assert {r["function"]: r["managed_by"] for r in plain["references"]}["worker"] is None


def test_rollout_leaves_owned_functions_to_their_owners(aws: dict[str, str], project: Path) -> None:
    v1 = fleet(aws)
    lam = client(aws, "lambda", REGION)
    done = layerkit("rollout", "x", "--region", REGION, "--owner-tag", "ManagedBy", "--json",
                    cwd=project, env=aws, check=False)  # fmt: skip
    assert done.returncode == 7
    results = {r["function"]: r for r in json.loads(done.stdout)}
    assert results["script"]["status"] == "updated"
    for name, owner in (
        ("api", "CloudFormation stack api-prod"),
        ("worker", "ManagedBy=terraform"),
    ):
        assert results[name]["status"] == "refused"
        assert results[name]["owner"] == owner
        assert (
            "layerkit bump" in results[name]["reason"]
            and "--allow-drift" in results[name]["reason"]
        )
        layers = lam.get_function_configuration(FunctionName=name)["Layers"]
        assert [layer["Arn"] for layer in layers] == [v1]  # untouched

    forced = layerkit("rollout", "x", "--region", REGION, "--owner-tag", "ManagedBy",
                      "--allow-drift", cwd=project, env=aws)  # fmt: skip
    assert "drift: CloudFormation stack api-prod will put its own layers back" in forced.stdout
    for name in ("api", "worker"):
        layers = lam.get_function_configuration(FunctionName=name)["Layers"]
        assert [layer["Arn"] for layer in layers] == [v1[:-1] + "2"]


def test_tags_fall_back_to_list_tags_where_the_tagging_api_is_denied() -> None:
    clients = Clients()
    tagging = clients.client("resourcegroupstaggingapi", REGION)
    lam = clients.client("lambda", REGION)
    with Stubber(tagging) as denied, Stubber(lam) as listing:
        denied.add_client_error("get_resources", "AccessDeniedException", http_status_code=403)
        for name, tags in (("api", {"aws:cloudformation:stack-name": "s"}), ("script", {})):
            arn = f"arn:aws:lambda:{REGION}:123456789012:function:{name}"
            listing.add_response("list_tags", {"Tags": tags}, {"Resource": arn})
        found = Tags(clients, "123456789012", REGION).of_functions(["api", "script"])
        denied.assert_no_pending_responses()
        listing.assert_no_pending_responses()
    assert found == {"api": {"aws:cloudformation:stack-name": "s"}, "script": {}}
