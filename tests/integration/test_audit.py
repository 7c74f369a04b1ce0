"""audit, rollout and prune against a generated fleet on a real moto server; paging,
other accounts' layers and failing accounts with botocore's Stubber; prune's safety as a
property over any fleet."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from layerkit.account.audit import NearLayerLimit, report
from layerkit.account.clients import Clients
from layerkit.account.model import FunctionVersion
from layerkit.account.prune import prune_candidates
from layerkit.account.scan import Scan, scan_region
from layerkit.errors import UserError
from tests.conftest import layerkit

REGIONS = ["eu-west-1", "us-east-1"]
PER_REGION = 60
ACCOUNT, OTHER = "123456789012", "222222222222"


def code() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("handler.py", "def handle(event, context):\n    return 1\n")
    return buffer.getvalue()


def layer_zip(tag: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("python/mod.py", f"TAG = {tag!r}\n")
    return buffer.getvalue()


def session(env: dict[str, str], role: str | None = None) -> boto3.Session:
    base = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    if role is None:
        return base
    sts = base.client("sts", region_name="us-east-1", endpoint_url=env["AWS_ENDPOINT_URL"])
    creds = sts.assume_role(RoleArn=role, RoleSessionName="fleet")["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def lam(env: dict[str, str], region: str, role: str | None = None) -> Any:
    return session(env, role).client(
        "lambda", region_name=region, endpoint_url=env["AWS_ENDPOINT_URL"]
    )


def layers_of(fn: int) -> list[tuple[str, int]]:
    """The fleet's spec: which layer versions function number fn uses, in order."""
    return [
        [("base", 4)],
        [("base", 1), ("extra", 2)],
        [("base", 2)],  # base:2 is deleted after the functions are made
        [("extra", 1), ("base", 3)],
    ][fn % 4]


LATEST = {"base": 4, "extra": 2}


@pytest.fixture
def fleet(aws: dict[str, str]) -> dict[str, Any]:
    role = f"arn:aws:iam::{OTHER}:role/audit"
    for region in REGIONS:
        client = lam(aws, region)
        iam = session(aws).client("iam", region_name=region, endpoint_url=aws["AWS_ENDPOINT_URL"])
        try:
            execution = iam.create_role(RoleName="exec", AssumeRolePolicyDocument="{}")["Role"][
                "Arn"
            ]
        except iam.exceptions.EntityAlreadyExistsException:
            execution = iam.get_role(RoleName="exec")["Role"]["Arn"]
        arns = {}
        for name, count in (("base", 4), ("extra", 2), ("orphan", 3)):
            for v in range(1, count + 1):
                reply = client.publish_layer_version(
                    LayerName=name, Content={"ZipFile": layer_zip(f"{name}{v}")}
                )
                arns[(name, v)] = reply["LayerVersionArn"]
        for fn in range(PER_REGION):
            name = f"fn-{fn:03d}"
            client.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=execution,
                Handler="handler.handle",
                Code={"ZipFile": code()},
                Layers=[arns[layer] for layer in layers_of(fn)],
            )
            if fn % 10 == 0:  # a published version behind an alias keeps the old layers
                client.publish_version(FunctionName=name)
                client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
        client.delete_layer_version(LayerName="base", VersionNumber=2)
    other = lam(aws, "eu-west-1", role)
    team = [
        other.publish_layer_version(LayerName="team", Content={"ZipFile": layer_zip(f"t{v}")})[
            "LayerVersionArn"
        ]
        for v in (1, 2)
    ]
    other_iam = session(aws, role).client(
        "iam", region_name="eu-west-1", endpoint_url=aws["AWS_ENDPOINT_URL"]
    )
    execution = other_iam.create_role(RoleName="exec", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    for fn in range(10):
        other.create_function(
            FunctionName=f"team-{fn}",
            Runtime="python3.12",
            Role=execution,
            Handler="handler.handle",
            Code={"ZipFile": code()},
            Layers=[team[fn % 2]],
        )
    return {"role": role}


def run_audit(
    project: Path, aws: dict[str, str], fleet: dict[str, Any], *args: str, check: bool = True
) -> Any:
    regions = [arg for region in REGIONS for arg in ("--region", region)]
    return layerkit(
        "audit", *regions, "--role-arn", fleet["role"], *args, cwd=project, env=aws, check=check
    )


def test_the_audit_report_matches_the_fleet_and_gates_ci(
    project: Path, aws: dict[str, str], fleet: dict[str, Any]
) -> None:
    rep = json.loads(run_audit(project, aws, fleet, "--json").stdout)
    # Expected, from the spec alone: every configuration ($LATEST and published 1) per function.
    configs = [
        (fn, v)
        for fn in range(PER_REGION)
        for v in (["$LATEST", "1"] if fn % 10 == 0 else ["$LATEST"])
    ]
    refs = [(fn, v, layer) for fn, v in configs for layer in layers_of(fn)]
    expected_deleted = [r for r in refs if r[2] == ("base", 2)]
    expected_outdated = [r for r in refs if r not in expected_deleted and r[2][1] < LATEST[r[2][0]]]
    own = [r for r in rep["references"] if r["account"] == ACCOUNT]
    assert len(own) == len(refs) * len(REGIONS)
    assert len([r for r in rep["outdated"] if r["account"] == ACCOUNT]) == len(
        expected_outdated
    ) * len(REGIONS)
    assert len(rep["deleted"]) == len(expected_deleted) * len(REGIONS)
    behind = sorted({r["behind"] for r in rep["outdated"] if r["layer"] == "base"})
    assert behind == [1, 3]  # base:3 and base:1 against base:4
    assert {r["version"] for r in own} == {"$LATEST", "1"}
    unused = {(r["account"], r["region"], r["layer"], r["version"]) for r in rep["unused"]}
    assert unused == {(ACCOUNT, region, "orphan", v) for region in REGIONS for v in (1, 2, 3)}
    assert all(r["size"] > 0 for r in rep["unused"])
    team = [r for r in rep["references"] if r["account"] == OTHER]
    assert len(team) == 10
    assert len([r for r in rep["outdated"] if r["account"] == OTHER]) == 5  # team:1 behind team:2
    assert rep["failures"] == []

    # The same fleet, read again (audit changes nothing): the gate for CI, and the CSV.
    gated = run_audit(project, aws, fleet, "--fail-on", "deleted", check=False)
    assert gated.returncode == 7
    assert "found deleted" in gated.stderr
    rows = run_audit(project, aws, fleet, "--csv").stdout.strip().splitlines()
    assert rows[0].startswith("account,region,function,version,layer")
    per_region = sum(len(layers_of(fn)) * (2 if fn % 10 == 0 else 1) for fn in range(PER_REGION))
    assert len(rows) - 1 == per_region * len(REGIONS) + 10  # + the other account's 10


def test_rollout_moves_latest_configurations_and_keeps_the_other_layers(
    project: Path, aws: dict[str, str], fleet: dict[str, Any]
) -> None:
    planned = json.loads(
        layerkit(
            "rollout", "base", "--region", "eu-west-1", "--dry-run", "--json", cwd=project, env=aws
        ).stdout
    )
    expected = {f"fn-{fn:03d}" for fn in range(PER_REGION) if layers_of(fn) != [("base", 4)]}
    assert {p["function"] for p in planned} == expected
    done = json.loads(
        layerkit(
            "rollout",
            "base",
            "--region",
            "eu-west-1",
            "--exclude",
            "fn-001",
            "--parallel",
            "4",
            "--json",
            cwd=project,
            env=aws,
        ).stdout
    )
    assert {d["status"] for d in done} == {"updated"}
    client = lam(aws, "eu-west-1")

    def layers(name: str, qualifier: str = "$LATEST") -> list[str]:
        config = client.get_function_configuration(FunctionName=name, Qualifier=qualifier)
        return [layer["Arn"].split(":", 6)[-1] for layer in config.get("Layers", [])]

    assert layers("fn-003") == ["extra:1", "base:4"]  # order kept, extra untouched
    assert layers("fn-002") == ["base:4"]  # off the deleted version
    assert layers("fn-001") == ["base:1", "extra:2"]  # excluded
    assert layers("fn-010", "1") == ["base:2"]  # a published version is never changed
    assert layers("fn-011", "$LATEST") == ["extra:1", "base:4"]
    assert layers("fn-013", "$LATEST") == ["base:4", "extra:2"]


def test_prune_deletes_only_unreferenced_old_versions(
    project: Path, aws: dict[str, str], fleet: dict[str, Any]
) -> None:
    shown = json.loads(
        layerkit(
            "prune",
            "orphan",
            "--keep",
            "1",
            "--region",
            "eu-west-1",
            "--json",
            cwd=project,
            env=aws,
        ).stdout
    )
    assert [r["version"] for r in shown["would_delete"]] == [1, 2]
    assert shown["bytes_freed"] > 0
    listed = lam(aws, "eu-west-1").list_layer_versions(LayerName="orphan")["LayerVersions"]
    assert sorted(v["Version"] for v in listed) == [1, 2, 3]  # a dry run deletes nothing
    nothing = json.loads(
        layerkit(
            "prune", "base", "--keep", "1", "--region", "eu-west-1", "--json", cwd=project, env=aws
        ).stdout
    )
    assert nothing["would_delete"] == []  # base:1 and base:3 are in use, base:4 is the newest
    layerkit(
        "prune", "orphan", "--keep", "1", "--region", "eu-west-1", "--yes", cwd=project, env=aws
    )
    left = lam(aws, "eu-west-1").list_layer_versions(LayerName="orphan")["LayerVersions"]
    assert [v["Version"] for v in left] == [3]
    other_region = lam(aws, "us-east-1").list_layer_versions(LayerName="orphan")["LayerVersions"]
    assert sorted(v["Version"] for v in other_region) == [1, 2, 3]  # not scanned: untouched


def test_prune_refuses_when_a_region_could_not_be_scanned() -> None:
    failed = Scan(OTHER, "eu-west-1", error="AccessDenied")
    fine = Scan(ACCOUNT, "eu-west-1", layers={"orphan": [1, 2, 3]})
    with pytest.raises(UserError) as refused:
        prune_candidates([fine, failed], "orphan", keep=1)
    assert f"{OTHER} eu-west-1" in str(refused.value) and "could not be scanned" in str(
        refused.value
    )
    assert [r.version for r in prune_candidates([fine], "orphan", keep=1)] == [1, 2]


# Properties and the cases moto cannot hold.


@st.composite
def fleets(draw: st.DrawFn) -> tuple[list[Scan], int]:
    scans = []
    for region in draw(st.lists(st.sampled_from(REGIONS), min_size=1, max_size=2, unique=True)):
        versions = sorted(draw(st.sets(st.integers(1, 30), max_size=12)))
        functions = []
        for i in range(draw(st.integers(0, 15))):
            used = draw(st.lists(st.integers(1, 30), max_size=3))
            arns = tuple(f"arn:aws:lambda:{region}:{ACCOUNT}:layer:lay:{v}" for v in used)
            functions.append(
                FunctionVersion(
                    ACCOUNT, region, f"f{i}", draw(st.sampled_from(["$LATEST", "1"])), arns, 1
                )
            )
        scans.append(Scan(ACCOUNT, region, functions, {"lay": versions}))
    return scans, draw(st.integers(0, 5))


@given(fleets())
def test_prune_never_deletes_a_referenced_or_recent_version(case: tuple[list[Scan], int]) -> None:
    scans, keep = case
    referenced = {arn for s in scans for fn in s.functions for arn in fn.layers}
    for row in prune_candidates(scans, "lay", keep):
        assert row.arn not in referenced
        versions = next(s.layers["lay"] for s in scans if s.region == row.region)
        assert row.version not in sorted(versions, reverse=True)[:keep]


def test_scanning_follows_every_page_and_groups_other_accounts_layers() -> None:
    clients = Clients()
    client = clients.client("lambda", "eu-west-1")
    foreign = (
        "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-x86_64:7"
    )
    with Stubber(client) as stub:
        for page, marker in enumerate([None, "a", "b"]):
            reply: dict[str, Any] = {
                "Functions": [
                    {
                        "FunctionName": f"p{page}",
                        "Version": "$LATEST",
                        "CodeSize": 1,
                        "Layers": [{"Arn": foreign, "CodeSize": 9}],
                    }
                ]
            }
            if page < 2:
                reply["NextMarker"] = ["a", "b"][page]
            expected = {"FunctionVersion": "ALL", **({"Marker": marker} if marker else {})}
            stub.add_response("list_functions", reply, expected)
        stub.add_response("list_code_signing_configs", {"CodeSigningConfigs": []}, {})
        stub.add_response("list_layers", {"Layers": []}, {})
        with Stubber(clients.client("resourcegroupstaggingapi", "eu-west-1")) as tagging:
            # the functions' tags: every page of one GetResources for the region
            for page, token in enumerate(["", "t1"]):
                arn = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:p{page}"
                tags = [{"Key": "aws:cloudformation:stack-name", "Value": f"stack{page}"}]
                tagging.add_response(
                    "get_resources",
                    {"ResourceTagMappingList": [{"ResourceARN": arn, "Tags": tags}],
                     "PaginationToken": "" if page else "t1"},
                    {"ResourceTypeFilters": ["lambda:function"],
                     **({"PaginationToken": token} if token else {})},
                )  # fmt: skip
            found = scan_region(clients, ACCOUNT, "eu-west-1")
            tagging.assert_no_pending_responses()
        stub.assert_no_pending_responses()
    assert found.owners == {
        "p0": "CloudFormation stack stack0",
        "p1": "CloudFormation stack stack1",
    }
    assert [f.name for f in found.functions] == ["p0", "p1", "p2"]
    rep = report([found], {})
    assert rep.foreign == {"017000801446": (foreign,)}
    assert {r.status for r in rep.references} == {"foreign"}


def test_an_account_that_cannot_be_read_is_reported_and_the_rest_go_on() -> None:
    denied = Clients()
    with Stubber(denied.client("lambda", "eu-west-1")) as stub:
        stub.add_client_error(
            "list_functions", service_error_code="AccessDeniedException", service_message="no"
        )
        failed = scan_region(denied, OTHER, "eu-west-1")
    fine = Scan(
        ACCOUNT,
        "eu-west-1",
        [
            FunctionVersion(
                ACCOUNT,
                "eu-west-1",
                "f",
                "$LATEST",
                ("arn:aws:lambda:eu-west-1:123456789012:layer:lay:1",),
                1,
            )
        ],
        {"lay": [1, 2]},
    )
    rep = report([failed, fine], {})
    assert rep.failures[0].account == OTHER and "Access denied" in rep.failures[0].error
    assert len(rep.outdated) == 1


def test_functions_near_the_layer_and_size_limits_are_reported() -> None:
    arns = tuple(f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:l{i}:1" for i in range(5))
    scans = [
        Scan(
            ACCOUNT,
            "eu-west-1",
            [FunctionVersion(ACCOUNT, "eu-west-1", "big", "$LATEST", arns, 1)],
            {f"l{i}": [1] for i in range(5)},
        )
    ]
    rep = report(scans, {arns[0]: 150_000_000, arns[1]: 120_000_000})
    assert rep.layer_limit == (NearLayerLimit(ACCOUNT, "eu-west-1", "big:$LATEST", layers=5),)
    [over] = rep.oversize
    assert over.over and over.layers_unzipped == 270_000_000
    assert over.unknown_layers == arns[2:]


@pytest.mark.network  # downloads from PyPI
def test_the_package_view_finds_functions_shipping_a_distribution(
    project: Path, aws: dict[str, str]
) -> None:
    recipe = (
        '[layer]\nname = "http"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
        '[python]\nrequirements = ["urllib3==2.2.1"]\n[publish]\nregions = ["eu-west-1"]\n'
    )
    (project / "recipes" / "http.toml").write_text(recipe)
    layerkit("lock", "http", cwd=project)
    published = json.loads(layerkit("publish", "http", "--json", cwd=project, env=aws).stdout)
    [outcome] = published["outcomes"]
    client = lam(aws, "eu-west-1")
    iam = session(aws).client("iam", region_name="eu-west-1", endpoint_url=aws["AWS_ENDPOINT_URL"])
    execution = iam.create_role(RoleName="exec", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    for name, layers in (("uses-http", [outcome["arn"]]), ("plain", [])):
        client.create_function(
            FunctionName=name, Runtime="python3.12", Role=execution, Handler="handler.handle",
            Code={"ZipFile": code()}, Layers=layers,
        )  # fmt: skip
    found = json.loads(
        layerkit(
            "audit", "--region", "eu-west-1", "--package", "urllib3<2.2.2", "--json",
            cwd=project, env=aws,
        ).stdout
    )  # fmt: skip
    assert [(m["function"], m["package"], m["package_version"]) for m in found["matches"]] == [
        ("uses-http", "urllib3", "2.2.1")
    ]
    newer = json.loads(
        layerkit(
            "audit", "--region", "eu-west-1", "--package", "urllib3>=2.3", "--json",
            cwd=project, env=aws,
        ).stdout
    )  # fmt: skip
    assert newer["matches"] == []


def test_another_accounts_layer_is_read_once_from_its_zip(tmp_path: Path) -> None:
    import http.server
    import threading

    from layerkit.account.audit import layer_contents, package_matches

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr(
            "python/urllib3-1.26.5.dist-info/METADATA", "Name: urllib3\nVersion: 1.26.5\n"
        )
    served: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(buffer.getvalue())

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    arn = "arn:aws:lambda:eu-west-1:999999999999:layer:vendor:3"
    functions = [
        FunctionVersion(ACCOUNT, "eu-west-1", f"f{i}", "$LATEST", (arn,), 1) for i in range(3)
    ]
    rep = report([Scan(ACCOUNT, "eu-west-1", functions, {})], {})
    clients = Clients()
    with Stubber(clients.client("lambda", "eu-west-1")) as stub:
        stub.add_response(
            "get_layer_version_by_arn",
            {"Content": {"CodeSha256": base64.b64encode(
                hashlib.sha256(buffer.getvalue()).digest()).decode(), "CodeSize": 10,
                         "Location": f"http://127.0.0.1:{server.server_port}/layer.zip"}},
            {"Arn": arn},
        )  # fmt: skip
        contents = layer_contents({ACCOUNT: clients}, {}, tmp_path)
        matches = package_matches(rep.references, "urllib3<2", contents)
    server.shutdown()
    assert [m.reference.function for m in matches] == ["f0", "f1", "f2"]
    assert served == ["/layer.zip"]  # one download for three functions
    assert list((tmp_path / "layers").iterdir())  # cached by CodeSha256 for the next audit


def test_organization_scans_every_member_account(project: Path, aws: dict[str, str]) -> None:
    orgs = session(aws).client(
        "organizations", region_name="us-east-1", endpoint_url=aws["AWS_ENDPOINT_URL"]
    )
    orgs.create_organization(FeatureSet="ALL")
    status = orgs.create_account(AccountName="team", Email="team@example.com")
    member = status["CreateAccountStatus"]["AccountId"]
    role = f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole"
    client = lam(aws, "eu-west-1", role)
    iam = session(aws, role).client(
        "iam", region_name="eu-west-1", endpoint_url=aws["AWS_ENDPOINT_URL"]
    )
    execution = iam.create_role(RoleName="exec", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    layer = client.publish_layer_version(LayerName="m", Content={"ZipFile": layer_zip("m")})
    client.create_function(
        FunctionName="member-fn", Runtime="python3.12", Role=execution, Handler="handler.handle",
        Code={"ZipFile": code()}, Layers=[layer["LayerVersionArn"]],
    )  # fmt: skip
    rep = json.loads(
        layerkit(
            "audit", "--organization", "--region", "eu-west-1", "--json", cwd=project, env=aws
        ).stdout
    )
    assert [(r["account"], r["function"]) for r in rep["references"]] == [(member, "member-fn")]
    assert rep["failures"] == []


def test_regions_and_accounts_are_scanned_at_the_same_time() -> None:
    import threading

    from layerkit.account.scan import scan

    regions = ["eu-west-1", "us-east-1", "ap-southeast-2"]
    accounts = {ACCOUNT: Clients(), OTHER: Clients()}
    # Every (account, region)'s first call waits here until all six are in flight: a scan
    # that went account by account, or region by region, would never get past it.
    barrier = threading.Barrier(len(regions) * len(accounts), timeout=10)
    stubs = []
    for clients in accounts.values():
        for region in regions:
            client = clients.client("lambda", region)
            client.meta.events.register(
                "before-parameter-build.lambda.ListFunctions", lambda **_: barrier.wait() and None
            )
            stub = Stubber(client)
            stub.add_response("list_functions", {"Functions": []}, {"FunctionVersion": "ALL"})
            stub.add_response("list_layers", {"Layers": []}, {})
            stub.activate()
            stubs.append(stub)
    scans = scan(accounts, regions)
    assert [(s.account, s.error) for s in scans] == [
        (account, None) for account in accounts for _ in regions
    ]
    assert not barrier.broken


def test_a_failed_update_is_reported_and_the_rest_go_on() -> None:
    from layerkit.account.rollout import Update
    from layerkit.account.rollout import apply as apply_rollout

    old = ("arn:aws:lambda:eu-west-1:123456789012:layer:base:1",)
    new = ("arn:aws:lambda:eu-west-1:123456789012:layer:base:4",)
    updates = [Update(ACCOUNT, "eu-west-1", name, old, new) for name in ("a", "b", "c")]
    clients = Clients()
    waits: list[float] = []
    with Stubber(clients.client("lambda", "eu-west-1")) as stub:
        stub.add_client_error(
            "update_function_configuration",
            service_error_code="InvalidParameterValueException",
            service_message="Layer conflict",
        )
        stub.add_response(
            "update_function_configuration", {}, {"FunctionName": "b", "Layers": list(new)}
        )
        stub.add_response(
            "get_function_configuration", {"LastUpdateStatus": "InProgress"}, {"FunctionName": "b"}
        )
        stub.add_response(
            "get_function_configuration", {"LastUpdateStatus": "Successful"}, {"FunctionName": "b"}
        )
        stub.add_response(
            "update_function_configuration", {}, {"FunctionName": "c", "Layers": list(new)}
        )
        stub.add_response(
            "get_function_configuration",
            {"LastUpdateStatus": "Failed", "LastUpdateStatusReason": "EniLimitExceeded"},
            {"FunctionName": "c"},
        )
        results = apply_rollout(updates, {ACCOUNT: clients}, sleep=waits.append)
    assert [r.status for r in results] == ["failed", "updated", "failed"]
    assert "Layer conflict" in str(results[0].error) and "left as it was" in str(results[0].error)
    assert "EniLimitExceeded" in str(results[2].error)
    assert waits == [1]  # b was waited for until its update finished


def test_a_region_that_cannot_be_scanned_exits_6_and_the_rest_is_reported(
    project: Path, aws: dict[str, str]
) -> None:
    """A proxy in front of moto answers every Lambda call for us-east-1 with AccessDenied,
    as an SCP that denies a region does; eu-west-1 goes through."""
    from tests.proxy import proxy

    def deny(handler: Any, body: bytes) -> bool:
        if "/us-east-1/lambda/" not in handler.headers.get("Authorization", ""):
            return False
        denied = b'{"Type": "User", "Message": "denied by an SCP"}'
        handler.send_response(403)
        handler.send_header("x-amzn-ErrorType", "AccessDeniedException")
        handler.send_header("Content-Length", str(len(denied)))
        handler.end_headers()
        handler.wfile.write(denied)
        return True

    lam(aws, "eu-west-1").publish_layer_version(LayerName="l", Content={"ZipFile": code()})
    with proxy(aws["AWS_ENDPOINT_URL"], deny) as url:
        done = layerkit(
            "audit", "--region", "eu-west-1", "--region", "us-east-1", "--json", cwd=project,
            env={**aws, "AWS_ENDPOINT_URL": url}, check=False,
        )  # fmt: skip
    assert done.returncode == 6, done.stderr
    report = json.loads(done.stdout)
    [failure] = report["failures"]
    assert failure["region"] == "us-east-1" and "Access denied" in failure["error"]
    assert [u["region"] for u in report["unused"]] == ["eu-west-1"]  # the rest was scanned
