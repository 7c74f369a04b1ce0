"""Rollout through aliases, canaries and the fit check, on a real moto server.

moto stores what these tests read back: function versions with their layers and
architectures, layers' CompatibleRuntimes/CompatibleArchitectures, aliases and their
RoutingConfig. The Stubber is used only where moto cannot fail on purpose (a publish that
fails after $LATEST was updated).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from layerkit.account.clients import Clients
from layerkit.account.model import FunctionVersion
from layerkit.account.rollout import Update, apply
from tests.conftest import layerkit
from tests.fleet import client, execution_role, zipped

REGION = "eu-west-1"
ACCOUNT = "123456789012"


def lam(env: dict[str, str]) -> Any:
    return client(env, "lambda", REGION)


@pytest.fixture
def fleet(aws: dict[str, str]) -> dict[str, str]:
    """Layers base:1, base:2 (python3.12, x86_64) and extra:1; functions on base:1."""
    client = lam(aws)
    role = execution_role(aws)
    arns = {}
    for name, version in (("base", 1), ("base", 2), ("extra", 1)):
        arns[f"{name}:{version}"] = client.publish_layer_version(
            LayerName=name, Content={"ZipFile": zipped("python/m.py", f"V = {version}")},
            CompatibleRuntimes=["python3.12"], CompatibleArchitectures=["x86_64"],
        )["LayerVersionArn"]  # fmt: skip

    def function(name: str, layers: list[str], alias: str | None, arch: str = "x86_64") -> None:
        client.create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler="h.handle",
            Code={"ZipFile": zipped("h.py", "def handle(e, c):\n    return 1\n")},
            Layers=[arns[layer] for layer in layers], Architectures=[arch],
        )  # fmt: skip
        if alias:
            client.publish_version(FunctionName=name)
            client.create_alias(FunctionName=name, Name=alias, FunctionVersion="1")

    function("api", ["extra:1", "base:1"], "live")
    function("dirty", ["base:1"], "live")
    function("plain", ["base:1"], None)
    function("canary", ["base:1"], "prod")
    function("undo", ["base:1"], "prod")
    function("arm", ["base:1"], None, arch="arm64")
    # Unreleased work on dirty's $LATEST: new code nobody has published yet.
    client.update_function_code(
        FunctionName="dirty", ZipFile=zipped("h.py", "def handle(e, c):\n    return 2\n")
    )
    return arns


def rollout(project: Path, aws: dict[str, str], *args: str, code: int = 0) -> Any:
    result = layerkit(
        "rollout", "base", "--region", REGION, "--json", *args, cwd=project, env=aws, check=False
    )
    assert result.returncode == code, result.stderr
    return json.loads(result.stdout)


def layers(aws: dict[str, str], name: str, qualifier: str = "$LATEST") -> list[str]:
    config = lam(aws).get_function_configuration(FunctionName=name, Qualifier=qualifier)
    return [layer["Arn"].split(":", 6)[-1] for layer in config.get("Layers", [])]


def alias(aws: dict[str, str], name: str, alias_name: str) -> tuple[str, dict[str, float]]:
    found = lam(aws).get_alias(FunctionName=name, Name=alias_name)
    weights = (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return found["FunctionVersion"], weights


def test_aliases_move_to_a_published_version_and_unreleased_work_is_refused(
    project: Path, aws: dict[str, str], fleet: dict[str, str]
) -> None:
    plan = rollout(project, aws, "--aliases", "--dry-run", code=7)
    by = {(p["function"], p.get("alias")): p for p in plan}
    assert {k: p["status"] for k, p in by.items()} == {
        ("api", "live"): "planned",
        ("dirty", "live"): "refused",
        ("plain", None): "planned",
        ("canary", "prod"): "planned",
        ("undo", "prod"): "planned",
        ("arm", None): "refused",
    }
    assert by[("api", "live")]["action"] == "release"
    assert "CodeSha256" in by[("dirty", "live")]["reason"]
    assert "arm64" in by[("arm", None)]["reason"] and "x86_64" in by[("arm", None)]["reason"]
    assert alias(aws, "api", "live") == ("1", {})  # a dry run changes nothing

    done = rollout(
        project, aws, "--aliases", "--only", "api", "--only", "dirty", "--only", "plain",
        "--only", "arm", code=7,
    )  # fmt: skip
    by = {(d["function"], d.get("alias")): d for d in done}
    assert by[("api", "live")]["status"] == "released"
    released = by[("api", "live")]["version"]
    assert alias(aws, "api", "live") == (released, {})
    assert layers(aws, "api", released) == ["extra:1", "base:2"]  # order and the rest kept
    assert layers(aws, "api", "1") == ["extra:1", "base:1"]  # the old version is untouched
    # Refused: the alias, its version and $LATEST are all as they were.
    assert by[("dirty", "live")]["status"] == "refused"
    assert alias(aws, "dirty", "live") == ("1", {})
    assert layers(aws, "dirty") == ["base:1"]
    assert [v["Version"] for v in lam(aws).list_versions_by_function(FunctionName="dirty")[
        "Versions"]] == ["$LATEST", "1"]  # fmt: skip
    # A function without aliases: $LATEST, as before.
    assert by[("plain", None)]["status"] == "updated"
    assert layers(aws, "plain") == ["base:2"]
    # Refused before any update: an x86_64 layer on an arm64 function.
    assert by[("arm", None)]["status"] == "refused"
    assert layers(aws, "arm") == ["base:1"]


def test_a_canary_routes_a_share_then_promote_completes_it_and_abort_removes_it(
    project: Path, aws: dict[str, str], fleet: dict[str, str]
) -> None:
    only = ["--only", "canary", "--only", "undo"]
    started = rollout(project, aws, "--aliases", "--canary", "10", *only)
    assert {d["status"] for d in started} == {"canaried"}
    for name in ("canary", "undo"):
        serving, weights = alias(aws, name, "prod")
        assert serving == "1"  # the alias stays on its version
        [(new, weight)] = weights.items()
        assert weight == pytest.approx(0.1)
        assert layers(aws, name, new) == ["base:2"]
        assert layers(aws, name, "1") == ["base:1"]
    # While a canary runs, another rollout to the alias is refused.
    again = rollout(project, aws, "--aliases", "--only", "canary", "--dry-run", code=7)
    assert again[0]["status"] == "refused" and "--promote" in again[0]["reason"]

    canaried = alias(aws, "canary", "prod")[1]
    promoted = rollout(project, aws, "--promote", "--only", "canary")
    assert [d["status"] for d in promoted] == ["promoted"]
    assert alias(aws, "canary", "prod") == (next(iter(canaried)), {})

    aborted = rollout(project, aws, "--abort", "--only", "undo")
    assert [d["status"] for d in aborted] == ["aborted"]
    assert alias(aws, "undo", "prod") == ("1", {})


def test_canary_promote_and_abort_are_one_step_each(
    project: Path, aws: dict[str, str], fleet: dict[str, str]
) -> None:
    both = layerkit("rollout", "base", "--promote", "--abort", cwd=project, env=aws, check=False)
    assert both.returncode == 2 and "one" in both.stderr and "Traceback" not in both.stderr
    over = layerkit("rollout", "base", "--aliases", "--canary", "150", cwd=project, env=aws,
                    check=False)  # fmt: skip
    assert over.returncode == 2 and "--canary 150" in over.stderr


OLD = ("arn:aws:lambda:eu-west-1:123456789012:layer:base:1",)
NEW = ("arn:aws:lambda:eu-west-1:123456789012:layer:base:2",)


def config(version: str, layer_arns: tuple[str, ...], **more: Any) -> dict[str, Any]:
    return {"FunctionName": "api", "Version": version, "CodeSha256": f"code-{version}",
            "Runtime": "python3.12", "RevisionId": f"r-{version}",
            "Layers": [{"Arn": a} for a in layer_arns], **more}  # fmt: skip


def reads(stub: Stubber, qualifier: str, reply: dict[str, Any]) -> None:
    stub.add_response("get_function_configuration", reply,
                      {"FunctionName": "api", "Qualifier": qualifier})  # fmt: skip


def test_a_publish_that_fails_leaves_the_alias_on_its_version() -> None:
    """moto cannot refuse a PublishVersion: the Stubber does (Lambda's precondition failure
    when $LATEST changed between the update and the publish). The publish carries the
    CodeSha256 and RevisionId of $LATEST as read after the layer update, not before."""
    update = Update(ACCOUNT, REGION, "api", OLD, NEW, alias="live", action="release", serving="1")
    clients = Clients()
    with Stubber(clients.client("lambda", REGION)) as stub:
        reads(stub, "$LATEST", config("$LATEST", OLD, CodeSha256="code-1"))
        reads(stub, "1", config("1", OLD))
        stub.add_response("update_function_configuration", {},
                          {"FunctionName": "api", "Layers": list(NEW)})  # fmt: skip
        stub.add_response("get_function_configuration", {"LastUpdateStatus": "Successful"},
                          {"FunctionName": "api"})  # fmt: skip
        after = config("$LATEST", NEW, CodeSha256="code-1", RevisionId="r-after-update")
        reads(stub, "$LATEST", after)
        stub.add_client_error(
            "publish_version",
            service_error_code="PreconditionFailedException",
            service_message="The Revision Id provided does not match the latest Revision Id",
            expected_params={"FunctionName": "api", "CodeSha256": "code-1",
                             "RevisionId": "r-after-update"},
        )  # fmt: skip
        [result] = apply([update], {ACCOUNT: clients})
        stub.assert_no_pending_responses()  # no UpdateAlias was called
    assert result.status == "failed"
    assert "Revision Id" in str(result.error) and "still serves version 1" in str(result.error)


def test_latest_that_changed_since_the_scan_is_refused_and_nothing_moves() -> None:
    """The re-check just before publishing answers differently from the scan: someone
    changed $LATEST's timeout meanwhile. Nothing is updated, published or pointed."""
    update = Update(ACCOUNT, REGION, "api", OLD, NEW, alias="live", action="release", serving="1")
    clients = Clients()
    with Stubber(clients.client("lambda", REGION)) as stub:
        reads(stub, "$LATEST", config("$LATEST", OLD, CodeSha256="code-1", Timeout=30))
        reads(stub, "1", config("1", OLD, CodeSha256="code-1", Timeout=3))
        # any further call (update, publish, alias) would fail: the Stubber has none queued
        [result] = apply([update], {ACCOUNT: clients})
        stub.assert_no_pending_responses()
    assert result.status == "refused"
    assert result.reason == "$LATEST now differs from version 1 in Timeout"


def test_two_aliases_on_one_version_share_one_new_version(
    project: Path, aws: dict[str, str], fleet: dict[str, str]
) -> None:
    lam(aws).create_alias(FunctionName="api", Name="beta", FunctionVersion="1")
    results = rollout(project, aws, "--aliases", "--only", "api")
    assert {(r["alias"], r["status"], r["version"]) for r in results} == {
        ("live", "released", "2"), ("beta", "released", "2"),
    }  # fmt: skip
    versions = lam(aws).list_versions_by_function(FunctionName="api")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]  # one publish
    assert alias(aws, "api", "live")[0] == alias(aws, "api", "beta")[0] == "2"
    assert layers(aws, "api", "2") == ["extra:1", "base:2"]


def test_versions_differ_only_in_what_was_released() -> None:
    from layerkit.account.gateways import Functions

    def version(**config: Any) -> FunctionVersion:
        base = {"FunctionName": "f", "Runtime": "python3.12", "Handler": "h.handle"}
        return Functions(Clients(), ACCOUNT, REGION)._version(
            {**base, "CodeSha256": "abc", **config}
        )

    snap_off = {"ApplyOn": "None", "OptimizationStatus": "Off"}
    snap_on = {"ApplyOn": "None", "OptimizationStatus": "On"}
    latest = version(
        Version="$LATEST",
        RevisionId="a",
        LastModified="now",
        Layers=[{"Arn": "x"}],
        SnapStart=snap_off,
    )
    published = version(Version="7", RevisionId="b", LastModified="then", SnapStart=snap_on)
    assert latest.differences(published) == []
    changed = version(
        Version="$LATEST",
        Handler="other.handle",
        Environment={"Variables": {"A": "1"}},
        SnapStart=snap_off,
    )
    assert changed.differences(published) == ["Environment", "Handler"]
