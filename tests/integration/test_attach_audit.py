"""The attach-time audit on a real moto server, against a fleet whose findings are known in
advance: layerkit layers built from PyPI and published (so the registry holds their
manifests), functions that cannot use them, and functions that can (no false positives)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import layerkit, write_recipe
from tests.fleet import client, execution_role, zipped

REGION = "eu-west-1"


def lam(env: dict[str, str]) -> Any:
    return client(env, "lambda", REGION)


def code() -> bytes:
    return zipped()


@pytest.mark.network  # downloads from PyPI
def test_attach_time_findings_match_the_fleet(project: Path, aws: dict[str, str]) -> None:
    for name, requirements in (("net-a", '["idna==3.10"]'), ("net-b", '["idna==3.7", "six"]')):
        write_recipe(
            project, name,
            f'[layer]\nname = "{name}"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
            f'[python]\nrequirements = {requirements}\n[publish]\nregions = ["{REGION}"]\n',
        )  # fmt: skip
    layerkit("lock", "net-a", "net-b", cwd=project)
    published = json.loads(
        layerkit("publish", "net-a", "net-b", "--json", cwd=project, env=aws).stdout
    )
    arn = {o["layer"]: o["arn"] for o in published["outcomes"]}
    client = lam(aws)
    role = execution_role(aws)
    old_layer = client.publish_layer_version(
        LayerName="legacy",
        Content={"ZipFile": code()},
        CompatibleRuntimes=["python3.8", "python3.9"],
    )["LayerVersionArn"]

    def function(name: str, runtime: str, layers: list[str], arch: str = "x86_64") -> None:
        client.create_function(
            FunctionName=name, Runtime=runtime, Role=role, Handler="h.handle",
            Code={"ZipFile": code()}, Layers=layers, Architectures=[arch],
        )  # fmt: skip

    function("fine", "python3.12", [arn["net-a"]])
    function("fine-b", "python3.12", [arn["net-b"]])
    function("arm", "python3.12", [arn["net-a"]], arch="arm64")
    client.publish_version(FunctionName="arm")
    client.create_alias(FunctionName="arm", Name="live", FunctionVersion="1")
    function("newer", "python3.13", [arn["net-a"]])
    function("old", "python3.9", [old_layer])
    function("both", "python3.12", [arn["net-a"], arn["net-b"]])

    result = layerkit("audit", "--region", REGION, "--json", cwd=project, env=aws)
    report = json.loads(result.stdout)

    def found(kind: str) -> set[tuple[str, str, str]]:
        return {(f["function"], f["qualifier"], f["layer"]) for f in report[kind]}

    assert found("incompatible") == {
        ("arm", "$LATEST", arn["net-a"]),
        ("arm", "1", arn["net-a"]),
        ("newer", "$LATEST", arn["net-a"]),
    }
    assert found("deprecated") == {("old", "$LATEST", ""), ("old", "$LATEST", old_layer)}
    assert found("shadowed") == {("both", "$LATEST", arn["net-b"])}
    by = {(f["function"], f["qualifier"]): f for f in report["incompatible"]}
    assert by[("arm", "1")]["aliases"] == ["live"]  # the alias serving it is named
    assert "arm64" in by[("arm", "1")]["reason"]
    assert "python3.12" in by[("newer", "$LATEST")]["reason"]
    [shadow] = report["shadowed"]
    assert "idna" in shadow["reason"] and f"{arn['net-b']}'s copy" in shadow["reason"]
    assert all(f["account"] and f["region"] == REGION for k in ("incompatible",
               "deprecated", "shadowed") for f in report[k])  # fmt: skip

    gated = layerkit("audit", "--region", REGION, "--fail-on", "incompatible", cwd=project,
                     env=aws, check=False)  # fmt: skip
    assert gated.returncode == 7 and "found incompatible" in gated.stderr
    assert "incompatible (3)" in gated.stdout  # the table's section
    rows = list(csv.DictReader(io.StringIO(
        layerkit("audit", "--region", REGION, "--csv", cwd=project, env=aws).stdout
    )))  # fmt: skip
    flagged = {(r["function"], r["version"], r["findings"]) for r in rows if r["findings"]}
    assert flagged == {
        ("arm", "$LATEST", "incompatible"),
        ("arm", "1", "incompatible"),
        ("newer", "$LATEST", "incompatible"),
        ("old", "$LATEST", "deprecated"),
        ("both", "$LATEST", "shadowed"),
    }


def test_rollout_refuses_a_layer_the_function_cannot_import(
    project: Path, aws: dict[str, str]
) -> None:
    """The fit check before any update, from what Lambda says (CompatibleRuntimes)."""
    client = lam(aws)
    role = execution_role(aws)
    first = client.publish_layer_version(LayerName="lib", Content={"ZipFile": code()})
    client.publish_layer_version(
        LayerName="lib", Content={"ZipFile": code()}, CompatibleRuntimes=["python3.12"]
    )
    client.create_function(
        FunctionName="f313", Runtime="python3.13", Role=role, Handler="h.handle",
        Code={"ZipFile": code()}, Layers=[first["LayerVersionArn"]],
    )  # fmt: skip
    result = layerkit("rollout", "lib", "--region", REGION, "--json", cwd=project, env=aws,
                      check=False)  # fmt: skip
    assert result.returncode == 7
    [refused] = json.loads(result.stdout)
    assert refused["status"] == "refused" and "python3.13" in refused["reason"]
    config = client.get_function_configuration(FunctionName="f313")
    assert [layer["Arn"] for layer in config["Layers"]] == [first["LayerVersionArn"]]
