"""Every partition, and who can read a layer: publish, grants, audit, rollout, prune and
sync in GovCloud and China on the moto server (which answers both), public grants only
when asked for, and the `exposed` finding from GetLayerVersionPolicy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import layerkit, write_recipe
from tests.fleet import client, zipped

PARTITIONS = [("aws-us-gov", ["us-gov-west-1", "us-gov-east-1"]),
              ("aws-cn", ["cn-north-1", "cn-northwest-1"])]  # fmt: skip


def recipe(project: Path, content: str, publish: str) -> None:
    (project / "recipes" / "settings.json").write_text(content)
    write_recipe(
        project, "conf",
        '[layer]\nname = "conf"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
        '[[files]]\nsource = "settings.json"\ntarget = "etc/settings.json"\n'
        f"[publish]\n{publish}",
    )  # fmt: skip
    layerkit("lock", "conf", cwd=project)


def run(project: Path, env: dict[str, str], *args: str, check: bool = True) -> Any:
    result = layerkit(*args, "--json", cwd=project, env=env, check=check)
    if result.returncode != 0:
        return result
    return json.loads(result.stdout)


@pytest.mark.parametrize(("partition", "regions"), PARTITIONS, ids=[p for p, _ in PARTITIONS])
def test_the_whole_loop_works_in_another_partition(
    project: Path, aws: dict[str, str], partition: str, regions: list[str]
) -> None:
    env = {**aws, "AWS_DEFAULT_REGION": regions[0]}
    home, other = regions
    recipe(project, '{"v": 1}', f"regions = {json.dumps(regions)}\n"
           f'principals = ["arn:{partition}:iam::111122223333:root"]\n')  # fmt: skip
    first = run(project, env, "publish", "conf")
    arns = {o["region"]: o["arn"] for o in first["outcomes"]}
    assert arns == {r: f"arn:{partition}:lambda:{r}:123456789012:layer:conf:1" for r in regions}
    lam = client(env, "lambda", home)
    policy = json.loads(lam.get_layer_version_policy(LayerName="conf", VersionNumber=1)["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["account-111122223333"]
    pointer = client(env, "ssm", other).get_parameter(Name="/layers/conf/latest")
    assert pointer["Parameter"]["Value"] == arns[other]

    iam = client(env, "iam", home)  # IAM is per partition
    role = iam.create_role(RoleName="exec", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    assert role.startswith(f"arn:{partition}:iam::")
    lam.create_function(
        FunctionName="api", Runtime="python3.12", Role=role, Handler="h.handle",
        Code={"ZipFile": zipped()}, Layers=[arns[home]],
    )  # fmt: skip
    recipe(project, '{"v": 2}', f"regions = {json.dumps(regions)}\n")
    second = run(project, env, "publish", "conf")
    assert {o["arn"] for o in second["outcomes"]} == {a[:-1] + "2" for a in arns.values()}

    audit = run(project, env, "audit", "--region", home, "--region", other)
    [outdated] = audit["outdated"]
    assert (outdated["arn"], outdated["latest"]) == (arns[home], 2)
    assert audit["failures"] == []

    rolled = run(project, env, "rollout", "conf", "--region", home)
    assert [(r["function"], r["status"]) for r in rolled] == [("api", "updated")]
    layers = lam.get_function_configuration(FunctionName="api")["Layers"]
    assert [layer["Arn"] for layer in layers] == [f"{arns[home][:-1]}2"]

    pruned = run(project, env, "prune", "conf", "--keep", "1", "--region", other, "--yes")
    assert [c["arn"] for c in pruned["deleted"]] == [arns[other]]
    assert (
        client(env, "lambda", other).list_layer_versions(LayerName="conf")["LayerVersions"][0][
            "LayerVersionArn"
        ]
        == f"{arns[other][:-1]}2"
    )

    synced = run(project, env, "registry", "sync", "--region", home, "--region", other)
    assert {v["arn"] for v in synced} == {arns[home], f"{arns[home][:-1]}2", f"{arns[other][:-1]}2"}


def test_a_publish_across_partitions_is_refused_before_any_call(
    project: Path, aws: dict[str, str]
) -> None:
    recipe(project, "{}", 'regions = ["eu-west-1", "us-gov-west-1"]\n')
    result = layerkit("publish", "conf", cwd=project, env=aws, check=False)
    assert result.returncode == 2, result.stderr
    said = " ".join(result.stderr.split())
    assert "eu-west-1 (aws), us-gov-west-1 (aws-us-gov)" in said
    assert "Traceback" not in said
    for region in ("eu-west-1", "us-gov-west-1"):
        assert client(aws, "lambda", region).list_layers()["Layers"] == []


def test_a_principal_of_another_partition_is_refused(project: Path, aws: dict[str, str]) -> None:
    recipe(project, "{}", 'regions = ["us-gov-west-1"]\n'
           'principals = ["arn:aws:iam::111122223333:root"]\n')  # fmt: skip
    result = layerkit("publish", "conf", cwd=project, env=aws, check=False)
    assert result.returncode == 2
    assert "arn:aws:iam::111122223333:root is in the aws partition" in " ".join(
        result.stderr.split()
    )
    assert client(aws, "lambda", "us-gov-west-1").list_layers()["Layers"] == []


def test_everyone_needs_public_true_and_is_then_granted(project: Path, aws: dict[str, str]) -> None:
    recipe(project, "{}", 'regions = ["eu-west-1"]\nprincipals = ["*"]\n')
    refused = layerkit("publish", "conf", cwd=project, env=aws, check=False)
    assert refused.returncode == 2
    said = " ".join(refused.stderr.split())
    assert "principals holds '*'" in said and "public = true" in said and "--public" in said
    assert client(aws, "lambda", "eu-west-1").list_layers()["Layers"] == []
    published = run(project, aws, "publish", "conf", "--public")
    [outcome] = published["outcomes"]
    lam = client(aws, "lambda", "eu-west-1")
    policy = json.loads(lam.get_layer_version_policy(LayerName="conf", VersionNumber=1)["Policy"])
    assert [(s["Sid"], s["Principal"]) for s in policy["Statement"]] == [("public", "*")]
    assert outcome["status"] == "published"


def test_audit_reports_versions_anyone_can_read_and_gates_on_them(
    project: Path, aws: dict[str, str]
) -> None:
    lam = client(aws, "lambda", "eu-west-1")
    for _ in range(3):
        lam.publish_layer_version(LayerName="secrets", Content={"ZipFile": zipped()})
    lam.add_layer_version_permission(
        LayerName="secrets", VersionNumber=2, StatementId="oops", Action="lambda:GetLayerVersion",
        Principal="*",
    )  # fmt: skip
    lam.add_layer_version_permission(
        LayerName="secrets", VersionNumber=3, StatementId="org", Action="lambda:GetLayerVersion",
        Principal="*", OrganizationId="o-abcdef1234",
    )  # fmt: skip
    lam.add_layer_version_permission(
        LayerName="secrets", VersionNumber=3, StatementId="partner",
        Action="lambda:GetLayerVersion", Principal="444455556666",
    )  # fmt: skip
    report = run(project, aws, "audit", "--region", "eu-west-1")
    [found] = report["exposed"]
    assert found["arn"].endswith(":layer:secrets:2") and found["statement"] == "oops"
    assert "every AWS account" in found["reason"]
    assert report["api_calls"]["GetLayerVersionPolicy"] == 3  # one per own version
    gated = layerkit(
        "audit", "--region", "eu-west-1", "--fail-on", "exposed", cwd=project, env=aws,
        check=False,
    )  # fmt: skip
    assert gated.returncode == 7 and "exposed" in gated.stdout + gated.stderr


def test_with_organization_an_account_or_organization_outside_it_is_exposed(
    project: Path, aws: dict[str, str]
) -> None:
    org = client(aws, "organizations", "us-east-1")
    org_id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    lam = client(aws, "lambda", "eu-west-1")
    lam.publish_layer_version(LayerName="deps", Content={"ZipFile": zipped()})
    for sid, options in (
        ("ours", {"Principal": "*", "OrganizationId": org_id}),
        ("theirs", {"Principal": "*", "OrganizationId": "o-zzzzzzzzzz"}),
        ("partner", {"Principal": "444455556666"}),
    ):
        lam.add_layer_version_permission(
            LayerName="deps", VersionNumber=1, StatementId=sid, Action="lambda:GetLayerVersion",
            **options,
        )  # fmt: skip
    report = run(project, aws, "audit", "--region", "eu-west-1", "--organization")
    reasons = {e["statement"]: e["reason"] for e in report["exposed"]}
    assert set(reasons) == {"theirs", "partner"}
    assert f"organization o-zzzzzzzzzz, not {org_id}" in reasons["theirs"]
    assert f"account 444455556666, outside {org_id}" in reasons["partner"]


def test_organization_accounts_are_assumed_in_the_credentials_partition(
    aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from layerkit.account.scan import accounts_to_scan

    for name, value in {**aws, "AWS_DEFAULT_REGION": "us-gov-west-1"}.items():
        monkeypatch.setenv(name, value)
    org = client(aws, "organizations", "us-gov-west-1")
    org.create_organization(FeatureSet="ALL")
    org.create_account(AccountName="app", Email="app@example.com")
    accounts = accounts_to_scan(None, [], True, "Auditor")
    roles = [c.role_arn for c in accounts.values() if c.role_arn]
    assert len(roles) == 1
    assert roles[0].startswith("arn:aws-us-gov:iam::") and roles[0].endswith(":role/Auditor")
