"""Code signing in the audit and the rollout: which functions would refuse which layers.

moto has no code signing configurations (ListCodeSigningConfigs,
ListFunctionsByCodeSigningConfig), so the scan's calls are botocore's Stubber, paging
included; what is judged of them is the same code audit and rollout run."""

from __future__ import annotations

from typing import Any

from botocore.stub import Stubber

from layerkit.account.audit import report
from layerkit.account.clients import Clients
from layerkit.account.gateways import CodeSigning
from layerkit.account.model import CodeSigningConfig, FunctionVersion
from layerkit.account.rollout import Known, Mode, plan
from layerkit.account.scan import scan_region

ACCOUNT = "123456789012"
RELEASE = f"arn:aws:signer:eu-west-1:{ACCOUNT}:/signing-profiles/release/a1b2c3d4e5"
OTHER = f"arn:aws:signer:eu-west-1:{ACCOUNT}:/signing-profiles/sandbox/f6e5d4c3b2"
LAYER = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:deps"
ENFORCE = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:code-signing-config:csc-0enforce0000000"
WARN = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:code-signing-config:csc-0warn000000000"


def config_item(arn: str, policy: str) -> dict[str, Any]:
    return {"CodeSigningConfigId": arn.rsplit(":", 1)[1], "CodeSigningConfigArn": arn,
            "AllowedPublishers": {"SigningProfileVersionArns": [RELEASE]},
            "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": policy},
            "LastModified": "2026-12-01T00:00:00Z"}  # fmt: skip


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{name}"


def expect_configs(stub: Stubber) -> None:
    """Two configurations over two pages; the Enforce one's functions over two pages."""
    stub.add_response("list_code_signing_configs",
                      {"CodeSigningConfigs": [config_item(ENFORCE, "Enforce")], "NextMarker": "m"},
                      {})  # fmt: skip
    stub.add_response(
        "list_code_signing_configs",
        {"CodeSigningConfigs": [config_item(WARN, "Warn")]},
        {"Marker": "m"},
    )
    stub.add_response("list_functions_by_code_signing_config",
                      {"FunctionArns": [function_arn("strict")], "NextMarker": "n"},
                      {"CodeSigningConfigArn": ENFORCE})  # fmt: skip
    stub.add_response("list_functions_by_code_signing_config",
                      {"FunctionArns": [function_arn("signed")]},
                      {"CodeSigningConfigArn": ENFORCE, "Marker": "n"})  # fmt: skip
    stub.add_response(
        "list_functions_by_code_signing_config",
        {"FunctionArns": [function_arn("lenient")]},
        {"CodeSigningConfigArn": WARN},
    )


def test_each_configuration_is_read_once_and_its_functions_page_by_page() -> None:
    clients = Clients()
    with Stubber(clients.client("lambda", "eu-west-1")) as stub:
        expect_configs(stub)
        found = CodeSigning(clients, "eu-west-1").of_functions()
        stub.assert_no_pending_responses()
    assert {name: (c.arn, c.enforce) for name, c in found.items()} == {
        "strict": (ENFORCE, True), "signed": (ENFORCE, True), "lenient": (WARN, False)}  # fmt: skip
    assert found["strict"].allowed == (RELEASE,)
    # the Stubber answers exactly 2 + 3 calls in this order: any other call would fail


def configuration(name: str, version: str, layers: list[tuple[str, str | None]]) -> dict[str, Any]:
    return {"FunctionName": name, "Version": version, "Runtime": "python3.12", "CodeSize": 1,
            "Layers": [{"Arn": arn, "CodeSize": 1,
                        **({"SigningProfileVersionArn": by} if by else {})}
                       for arn, by in layers]}  # fmt: skip


def test_audit_says_which_functions_would_refuse_which_layers() -> None:
    clients = Clients()
    functions = [
        configuration("strict", "$LATEST", [(f"{LAYER}:3", None)]),  # unsigned, Enforce
        configuration("strict", "1", [(f"{LAYER}:3", None)]),  # a published version: deployed
        configuration("signed", "$LATEST", [(f"{LAYER}:4", RELEASE)]),  # allowed
        configuration("lenient", "$LATEST", [(f"{LAYER}:4", OTHER)]),  # another profile, Warn
        configuration("free", "$LATEST", [(f"{LAYER}:3", None)]),  # no configuration
    ]
    with Stubber(clients.client("lambda", "eu-west-1")) as stub:
        stub.add_response("list_functions", {"Functions": functions}, {"FunctionVersion": "ALL"})
        expect_configs(stub)
        stub.add_response("list_aliases", {"Aliases": []}, {"FunctionName": "strict"})
        stub.add_response("list_layers", {"Layers": []}, {})
        with Stubber(clients.client("resourcegroupstaggingapi", "eu-west-1")) as tagging:
            tagging.add_response("get_resources", {"ResourceTagMappingList": []},
                                 {"ResourceTypeFilters": ["lambda:function"]})  # fmt: skip
            scanned = scan_region(clients, ACCOUNT, "eu-west-1")
        stub.assert_no_pending_responses()
    assert scanned.error is None, scanned.error
    rep = report([scanned], {})
    found = {(f.function, f.qualifier): f for f in rep.of_kind("unsigned")}
    assert set(found) == {("strict", "$LATEST"), ("lenient", "$LATEST")}
    strict, lenient = found[("strict", "$LATEST")], found[("lenient", "$LATEST")]
    assert strict.layer == f"{LAYER}:3"
    assert "unsigned" in strict.reason and ENFORCE in strict.reason
    assert "Enforce: the function's next deploy fails" in strict.reason
    assert f"signed by {OTHER}" in lenient.reason and "Warn: it deploys" in lenient.reason
    assert rep.found("unsigned")


def latest(name: str, layers: tuple[str, ...], signers: tuple[str, ...]) -> FunctionVersion:
    return FunctionVersion(ACCOUNT, "eu-west-1", name, "$LATEST", layers, 1, "python3.12",
                           layer_signers=signers)  # fmt: skip


def test_rollout_refuses_an_unsigned_layer_on_an_enforcing_function_only() -> None:
    functions = [latest(n, (f"{LAYER}:3",), (RELEASE,)) for n in ("strict", "lenient", "free")]
    code_signing = {
        (ACCOUNT, "eu-west-1", "strict"): CodeSigningConfig(ENFORCE, (RELEASE,), True),
        (ACCOUNT, "eu-west-1", "lenient"): CodeSigningConfig(WARN, (RELEASE,), False),
    }

    def updates(signer: str) -> dict[str, str | None]:
        known = Known({}, {}, {}, code_signing, {f"{LAYER}:4": signer})
        done = plan(functions, [], ACCOUNT, "deps", 4, known, Mode(), lambda name: True)
        return {u.function: u.refused for u in done}

    unsigned = updates("")
    assert set(unsigned) == {"strict", "lenient", "free"}
    assert unsigned["lenient"] is None and unsigned["free"] is None
    assert unsigned["strict"] is not None and f"{LAYER}:4: unsigned" in unsigned["strict"]
    assert "CodeVerificationFailedException" in unsigned["strict"]
    assert updates(RELEASE) == {"strict": None, "lenient": None, "free": None}
    assert updates(OTHER)["strict"] is not None  # signed, but by a profile it does not allow
