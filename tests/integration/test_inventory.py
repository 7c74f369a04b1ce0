"""The organisation's inventory from AWS Config: one aggregator query finds the functions,
and only the accounts and regions that have some are read directly. moto does not answer
SelectAggregateResourceConfig, so the config client is botocore's Stubber (paging, the
query); everything read directly is the moto server's fleet, and the report must equal a
direct scan of that fleet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from layerkit.account.audit import report
from layerkit.account.clients import Clients
from layerkit.account.gateways import INVENTORY_PAGE, INVENTORY_QUERY
from layerkit.account.scan import scan, scan_inventory
from layerkit.cli.render import report_json
from layerkit.errors import AWSError, UserError
from tests.conftest import layerkit
from tests.fleet import client, execution_role, zipped

ACCOUNT = "123456789012"
POPULATED = ("eu-west-1", "us-east-1")
EMPTY = "eu-central-1"  # enabled, no function: the direct scan reads it, the inventory not


@pytest.fixture
def fleet(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Functions in two regions (published versions, an alias, tags, layers outdated and
    current), none in a third; what Config would record of each, as query rows."""
    for name, value in aws.items():
        monkeypatch.setenv(name, value)
    role = execution_role(aws)
    rows = []
    for region in POPULATED:
        lam = client(aws, "lambda", region)
        arns = [
            lam.publish_layer_version(LayerName="deps", Content={"ZipFile": zipped(f"m{n}.py")},
                                      CompatibleRuntimes=["python3.12"])["LayerVersionArn"]
            for n in range(3)
        ]  # fmt: skip
        for name, layers, tags in (
            ("api", [arns[0]], {"aws:cloudformation:stack-name": "api-stack"}),
            ("worker", [arns[2]], {}),
        ):
            created = lam.create_function(
                FunctionName=name, Runtime="python3.12", Role=role, Handler="h.handle",
                Code={"ZipFile": zipped()}, Layers=layers, Tags=tags,
            )  # fmt: skip
            rows.append({
                "accountId": ACCOUNT, "awsRegion": region, "resourceName": name,
                "configuration": {"runtime": "python3.12", "architectures": ["x86_64"],
                                  "codeSize": created["CodeSize"],
                                  "layers": [{"arn": a, "codeSize": 1} for a in layers]},
                "tags": [{"key": k, "value": v} for k, v in tags.items()],
                "configurationItemCaptureTime": "2026-12-01T03:00:00.000Z",
            })  # fmt: skip
        lam.publish_version(FunctionName="api")
        lam.update_function_configuration(FunctionName="api", Layers=[arns[1]])
        lam.create_alias(FunctionName="api", Name="live", FunctionVersion="1")
    return rows


def expect_query(stub: Stubber, rows: list[dict[str, Any]], aggregator: str = "org") -> None:
    """The rows over two pages, as Config gives them: JSON strings, a NextToken."""
    half = len(rows) // 2
    for page, (part, token) in enumerate(((rows[:half], "t2"), (rows[half:], None))):
        stub.add_response(
            "select_aggregate_resource_config",
            {"Results": [json.dumps(r) for r in part], **({"NextToken": token} if token else {})},
            {"Expression": INVENTORY_QUERY, "ConfigurationAggregatorName": aggregator,
             "Limit": INVENTORY_PAGE, **({"NextToken": "t2"} if page else {})},
        )  # fmt: skip


def comparable(scans: list[Any]) -> dict[str, Any]:
    return report_json(report(sorted(scans, key=lambda s: (s.account, s.region)), {}))


def test_the_inventory_gives_the_report_a_direct_scan_gives(fleet: list[dict[str, Any]]) -> None:
    direct_clients = Clients()
    direct = scan({ACCOUNT: direct_clients}, [*POPULATED, EMPTY])
    clients = Clients()
    with Stubber(clients.client("config", "eu-west-1")) as stub:
        expect_query(stub, fleet)
        accounts, found, note = scan_inventory(clients, "org", "Role", (), (), False)
        stub.assert_no_pending_responses()
    assert sorted(s.region for s in found) == sorted(POPULATED)  # the empty region: no call
    assert list(accounts) == [ACCOUNT]
    assert (note.functions, note.places, note.oldest) == (4, 2, "2026-12-01T03:00:00.000Z")
    expected = comparable([s for s in direct if s.region != EMPTY])
    assert comparable(found) == expected
    assert [r["function"] for r in expected["outdated"]] == ["api", "api", "api", "api"]
    assert {r["managed_by"] for r in expected["references"] if r["function"] == "api"} == {
        "CloudFormation stack api-stack"
    }
    assert direct_clients.calls["ListFunctions"] == 3  # the empty region too
    assert clients.calls["ListFunctions"] == 2
    assert "GetResources" not in clients.calls  # the tags came from Config


def test_the_query_fits_configs_limit() -> None:
    assert len(INVENTORY_QUERY) <= 4096 and INVENTORY_PAGE == 100


def test_a_region_that_cannot_be_read_reports_what_config_recorded(
    fleet: list[dict[str, Any]],
) -> None:
    clients = Clients()
    with (
        Stubber(clients.client("config", "eu-west-1")) as config,
        Stubber(clients.client("lambda", "us-east-1")) as denied,
    ):
        expect_query(config, fleet)
        denied.add_client_error("list_functions", "AccessDeniedException", "denied by an SCP")
        _, found, _ = scan_inventory(clients, "org", "Role", (), (), False)
    [failed] = [s for s in found if s.region == "us-east-1"]
    assert failed.error is not None and "lambda:ListFunctions" in failed.error
    assert sorted(f.name for f in failed.functions) == ["api", "worker"]  # Config's record
    rep = report(found, {})
    assert [f.region for f in rep.failures] == ["us-east-1"]
    assert {r.region for r in rep.references} == set(POPULATED)


@pytest.mark.parametrize(
    ("code", "kind", "said"),
    [("NoSuchConfigurationAggregatorException", UserError,
      "There is no AWS Config aggregator org in eu-west-1"),
     ("AccessDeniedException", AWSError,
      "Access denied: config:SelectAggregateResourceConfig on the aggregator org")],
)  # fmt: skip
def test_a_missing_aggregator_or_permission_is_an_error_never_a_direct_scan(
    fleet: list[dict[str, Any]], code: str, kind: type[Exception], said: str
) -> None:
    clients = Clients()
    with Stubber(clients.client("config", "eu-west-1")) as stub:
        stub.add_client_error("select_aggregate_resource_config", code, "no")
        with pytest.raises(kind, match=said):
            scan_inventory(clients, "org", "Role", (), (), False)
    assert "ListFunctions" not in clients.calls


def test_the_command_says_which_aggregator_failed_and_scans_nothing(
    project: Path, aws: dict[str, str]
) -> None:
    # the moto server has no aggregator query: the command fails naming it, exit 6
    result = layerkit("audit", "--config-aggregator", "org", cwd=project, env=aws, check=False)
    assert result.returncode == 6, result.stderr
    said = " ".join(result.stderr.split())
    assert "config:SelectAggregateResourceConfig on the aggregator org" in said
    assert "Traceback" not in said
    both = layerkit("audit", "--config-aggregator", "org", "--organization", cwd=project,
                    env=aws, check=False)  # fmt: skip
    assert both.returncode == 2 and "leave out --organization" in " ".join(both.stderr.split())
