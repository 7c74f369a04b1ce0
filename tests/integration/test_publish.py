"""Publishing against a real moto server over HTTP, reached through AWS_ENDPOINT_URL with
fake credentials; paging and what moto lacks are tested with botocore's Stubber."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from layerkit.account.clients import Clients, translated
from layerkit.account.publish import Layer, Region, _check_account, _find_existing
from layerkit.account.sync import sync
from layerkit.errors import AWSError, QuotaError
from layerkit.layer.manifest import LayerManifest
from tests.conftest import layerkit, write_recipe

REGIONS = ["eu-west-1", "us-east-1"]


def client(service: str, region: str, env: dict[str, str]) -> Any:
    return boto3.client(
        service, region_name=region, endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip


def files_recipe(project: Path, content: str, publish: str = "") -> None:
    (project / "recipes" / "settings.json").write_text(content)
    write_recipe(
        project,
        "conf",
        '[layer]\nname = "conf"\ndescription = "shared settings"\nlicense = "MIT"\n'
        'runtimes = ["python3.12"]\narchitectures = ["arm64"]\n'
        '[[files]]\nsource = "settings.json"\ntarget = "etc/conf/settings.json"\n'
        f"[publish]\nregions = {json.dumps(REGIONS)}\n{publish}",
    )
    layerkit("lock", "conf", cwd=project)  # publish builds with --locked, as CI does


def publish(project: Path, env: dict[str, str], *args: str, check: bool = True) -> dict[str, Any]:
    result = layerkit("publish", "conf", "--json", *args, cwd=project, env=env, check=check)
    if not check and result.returncode != 0 and not result.stdout:
        return {"returncode": result.returncode, "stderr": result.stderr}
    data: dict[str, Any] = json.loads(result.stdout)
    data["returncode"], data["stderr"] = result.returncode, result.stderr
    return data


def versions(env: dict[str, str], region: str, layer: str = "conf") -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = client("lambda", region, env).list_layer_versions(
        LayerName=layer
    )["LayerVersions"]
    return listed


def test_publishing_twice_makes_one_version_and_the_second_run_uploads_nothing(
    project: Path, aws: dict[str, str]
) -> None:
    files_recipe(project, '{"a": 1}')
    first = publish(project, aws)
    assert {o["status"] for o in first["outcomes"]} == {"published"}
    # moto has no GetAccountSettings: the live-limit check says it falls back to AWS's
    # defaults (the check itself is tested with the Stubber below).
    assert "cannot read the account's Lambda limits; using AWS's defaults" in first["stderr"]
    second = publish(project, aws)
    assert {o["status"] for o in second["outcomes"]} == {"unchanged"}
    assert [o["arn"] for o in second["outcomes"]] == [o["arn"] for o in first["outcomes"]]
    assert second["api_calls"]["ListLayerVersions"] == len(REGIONS)
    assert "PublishLayerVersion" not in second["api_calls"]
    for region in REGIONS:
        [version] = versions(aws, region)
        assert version["Description"].startswith("shared settings [lk:")
        assert version["CompatibleArchitectures"] == ["arm64"]
        assert version["CompatibleRuntimes"] == ["python3.12"]
        assert version["LicenseInfo"] == "MIT"


def test_changing_one_file_publishes_a_new_version_and_moves_the_latest_pointer(
    project: Path, aws: dict[str, str]
) -> None:
    files_recipe(project, '{"a": 1}')
    publish(project, aws)
    files_recipe(project, '{"a": 2}')
    second = publish(project, aws)
    assert {o["status"] for o in second["outcomes"]} == {"published"}
    for region in REGIONS:
        assert [v["Version"] for v in versions(aws, region)] == [1, 2] or sorted(
            v["Version"] for v in versions(aws, region)
        ) == [1, 2]
        latest = client("ssm", region, aws).get_parameter(Name="/layers/conf/latest")
        assert latest["Parameter"]["Value"].endswith(":layer:conf:2")


def test_permissions_converge_to_the_recipe_on_every_publish(
    project: Path, aws: dict[str, str]
) -> None:
    files_recipe(project, "{}", 'principals = ["111122223333", "*"]\npublic = true\n')
    publish(project, aws)

    def statements(region: str) -> set[str]:
        return set(grants(region))

    def grants(region: str) -> dict[str, tuple[str, str | None]]:
        """Sid -> (principal, organization), as the policy holds them."""
        policy = client("lambda", region, aws).get_layer_version_policy(
            LayerName="conf", VersionNumber=1
        )["Policy"]
        found = {}
        for statement in json.loads(policy)["Statement"]:
            org = statement.get("OrganizationId") or statement.get("Condition", {}).get(
                "StringEquals", {}
            ).get("aws:PrincipalOrgID")
            principal = statement["Principal"]
            principal = (
                principal.get("AWS", principal) if isinstance(principal, dict) else principal
            )
            assert statement["Action"] == "lambda:GetLayerVersion"
            found[statement["Sid"]] = (str(principal), org)
        return found

    assert statements("us-east-1") == {"account-111122223333", "public"}
    first = grants("us-east-1")
    assert "111122223333" in first["account-111122223333"][0]
    assert first["public"] == ("*", None)  # everyone, with no organization condition
    files_recipe(
        project, "{}", 'principals = ["arn:aws:iam::444455556666:root"]\n'
        'organization = "o-abcdef1234"\n',
    )  # fmt: skip
    again = publish(project, aws)
    assert {o["status"] for o in again["outcomes"]} == {"unchanged"}
    for region in REGIONS:
        assert statements(region) == {"account-444455556666", "org-o-abcdef1234"}
        now = grants(region)
        assert "444455556666" in now["account-444455556666"][0]
        assert now["account-444455556666"][1] is None
        assert now["org-o-abcdef1234"] == ("*", "o-abcdef1234")  # any principal, in the org


def test_over_the_direct_upload_limit_the_zip_goes_through_s3(
    project: Path, aws: dict[str, str]
) -> None:
    files_recipe(project, json.dumps({"data": list(range(2000))}))
    refused = publish(project, aws, "--direct-upload-limit", "1000", check=False)
    assert refused["returncode"] == 2
    assert "--s3-bucket" in refused["stderr"]
    done = publish(
        project, aws, "--direct-upload-limit", "1000", "--s3-bucket", "layers-{region}",
        "--create-bucket",
    )  # fmt: skip
    assert {o["status"] for o in done["outcomes"]} == {"published"}
    objects = client("s3", "us-east-1", aws).list_objects_v2(Bucket="layers-us-east-1")
    [key] = [o["Key"] for o in objects["Contents"]]
    assert key.startswith("layerkit/conf/") and key.endswith(".zip")


def test_a_real_zip_over_50_mb_is_uploaded_through_s3(project: Path, aws: dict[str, str]) -> None:
    (project / "recipes" / "blob.bin").write_bytes(os.urandom(55 * 1024 * 1024))
    write_recipe(
        project, "conf",
        '[layer]\nname = "conf"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
        '[[files]]\nsource = "blob.bin"\ntarget = "share/blob.bin"\n'
        '[publish]\nregions = ["eu-west-1"]\ns3-bucket = "big-{region}"\n',
    )  # fmt: skip
    layerkit("lock", "conf", cwd=project)
    planned = layerkit("publish", "conf", "--dry-run", "--json", cwd=project, env=aws)
    [action] = json.loads(planned.stdout)
    assert (action["action"], action["route"]) == ("publish", "s3")
    done = publish(project, aws, "--create-bucket")
    [outcome] = done["outcomes"]
    assert outcome["status"] == "published"
    head = client("s3", "eu-west-1", aws).list_objects_v2(Bucket="big-eu-west-1")["Contents"][0]
    assert head["Size"] > 50 * 1024 * 1024


def test_one_region_failing_does_not_hide_the_other(project: Path, aws: dict[str, str]) -> None:
    files_recipe(project, json.dumps({"data": list(range(2000))}), 's3-bucket = "only-{region}"\n')
    client("s3", "eu-west-1", aws).create_bucket(
        Bucket="only-eu-west-1", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    result = publish(project, aws, "--direct-upload-limit", "1000", check=False)
    assert result["returncode"] == 6
    by_region = {o["region"]: o for o in result["outcomes"]}
    assert by_region["eu-west-1"]["status"] == "published"
    assert by_region["us-east-1"]["status"] == "failed"
    assert "only-us-east-1" in by_region["us-east-1"]["error"]
    assert "--create-bucket" in by_region["us-east-1"]["error"]


def test_two_jobs_publishing_the_same_content_at_once_make_one_version(
    project: Path, aws: dict[str, str]
) -> None:
    files_recipe(project, '{"race": true}')
    layerkit("build", "conf", cwd=project)  # both jobs then publish the same ZIP
    command = [sys.executable, "-m", "layerkit", "publish", "conf", "--json"]
    env = {**os.environ, **aws}
    jobs = [
        subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [json.loads(job.communicate(timeout=120)[0]) for job in jobs]
    for region in REGIONS:
        assert len(versions(aws, region)) == 1
    statuses = sorted(o["status"] for r in results for o in r["outcomes"])
    assert statuses.count("published") == len(REGIONS)
    assert statuses.count("unchanged") == len(REGIONS)


def test_limits_are_enforced_before_any_api_call(project: Path, tmp_path: Path) -> None:
    nowhere = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1",
    }  # fmt: skip
    big = tmp_path / "big.zip"
    manifest = {"artifact": "big", "runtimes": ["python3.12"], "architectures": ["x86_64"]}
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("layerkit/big.json", json.dumps(manifest))
        zipped.writestr("share/zeros.bin", bytes(300 * 1024 * 1024))
    result = layerkit("publish", str(big), cwd=project, env=nowhere, check=False)
    assert result.returncode == 3
    assert "262,144,000 bytes" in result.stderr
    files_recipe(project, "{}")
    recipe_file = project / "recipes" / "conf.toml"
    recipe_file.write_text(recipe_file.read_text().replace("shared settings", "d" * 300))
    result = layerkit("publish", "conf", cwd=project, env=nowhere, check=False)
    assert result.returncode == 2
    assert "layer.description" in result.stderr


def test_the_registry_rebuilt_from_the_account_matches_the_local_one(
    project: Path, aws: dict[str, str]
) -> None:
    files_recipe(project, '{"a": 1}')
    publish(project, aws)
    files_recipe(project, '{"a": 2}')
    publish(project, aws)
    local = json.loads(layerkit("ls", "--json", cwd=project, env=aws).stdout)
    fresh = {**aws, "LAYERKIT_REGISTRY": str(project / "rebuilt.sqlite")}
    regions = [arg for region in REGIONS for arg in ("--region", region)]
    layerkit("registry", "sync", *regions, cwd=project, env=fresh)
    rebuilt = json.loads(layerkit("ls", "--json", cwd=project, env=fresh).stdout)
    fields = ("arn", "layer", "region", "version", "sha256", "size", "description")

    def rows(data: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
        return {tuple(item[f] for f in fields) for item in data}

    assert len(local) == 2 * len(REGIONS)
    assert rows(rebuilt) == rows(local)


@pytest.mark.network  # downloads from PyPI
def test_show_and_diff_read_what_each_version_contains(project: Path, aws: dict[str, str]) -> None:
    def recipe(requirements: str) -> None:
        write_recipe(
            project, "conf",
            '[layer]\nname = "conf"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
            f'[python]\nrequirements = {requirements}\n[publish]\nregions = ["eu-west-1"]\n',
        )  # fmt: skip
        layerkit("lock", "conf", cwd=project)

    recipe('["idna==3.6"]')
    publish(project, aws)
    recipe('["idna==3.7", "six"]')
    publish(project, aws)
    shown = json.loads(layerkit("show", "conf:2", "--json", cwd=project, env=aws).stdout)
    assert shown[0]["arn"].endswith(":layer:conf:2")
    changes = json.loads(
        layerkit("diff", "conf:1", "conf:2", "--json", cwd=project, env=aws).stdout
    )
    assert [c["name"] for c in changes["added"]] == ["six"]
    assert [(c["name"], c["from"], c["to"]) for c in changes["upgraded"]] == [
        ("idna", "3.6", "3.7")
    ]
    assert changes["removed"] == [] and changes["downgraded"] == []


# Paging and what moto cannot do: botocore's Stubber on layerkit's own clients.


def stubbed_layer(tmp_path: Path) -> Layer:
    path = tmp_path / "x.zip"
    path.write_bytes(b"zip")
    built = LayerManifest("demo", "demo")
    return Layer("demo", path, "ab" * 32, 1000, 3, ("python3.12",), ("x86_64",), "", "", built)


def page(versions: list[int], marker: str | None, description: str = "old") -> dict[str, Any]:
    reply: dict[str, Any] = {
        "LayerVersions": [
            {"LayerVersionArn": f"arn:aws:lambda:eu-west-1:123456789012:layer:demo:{v}",
             "Version": v, "Description": description}
            for v in versions
        ]
    }  # fmt: skip
    if marker:
        reply["NextMarker"] = marker
    return reply


def test_the_content_is_found_on_any_page_of_versions(tmp_path: Path) -> None:
    layer = stubbed_layer(tmp_path)
    clients = Clients()
    lam = clients.client("lambda", "eu-west-1")
    with Stubber(lam) as stub:
        stub.add_response("list_layer_versions", page([9, 8], "m1"), {"LayerName": "demo"})
        stub.add_response(
            "list_layer_versions", page([7, 6], "m2"), {"LayerName": "demo", "Marker": "m1"}
        )
        stub.add_response(
            "list_layer_versions", page([5], None, f"x {layer.marker}"),
            {"LayerName": "demo", "Marker": "m2"},
        )  # fmt: skip
        assert _find_existing(layer, Region.of(clients, "eu-west-1")) == (
            "arn:aws:lambda:eu-west-1:123456789012:layer:demo:5"
        )
        stub.assert_no_pending_responses()


def test_sync_follows_every_page_of_layers(tmp_path: Path) -> None:
    clients = Clients()
    lam = clients.client("lambda", "eu-west-1")
    with Stubber(lam) as stub:
        stub.add_response("list_layers", {"Layers": [{"LayerName": "a"}], "NextMarker": "n"}, {})
        stub.add_response("list_layers", {"Layers": [{"LayerName": "b"}]}, {"Marker": "n"})
        for name in ("a", "b"):  # every layer's versions are listed first ...
            stub.add_response(
                "list_layer_versions",
                {"LayerVersions": [{"LayerVersionArn": f"arn:aws:lambda:eu-west-1:1:layer:{name}:1",
                                    "Version": 1, "Description": "theirs"}]},
                {"LayerName": name},
            )  # fmt: skip
        for name in ("a", "b"):  # ... then each version's content is read
            stub.add_response(
                "get_layer_version",
                {"Content": {"CodeSha256": "q83v", "CodeSize": 3, "Location": "s3://"}},
                {"LayerName": name, "VersionNumber": 1},
            )
        found = sync(["eu-west-1"], clients)
        stub.assert_no_pending_responses()
    assert [(v.layer, v.sha256, v.size) for v in found] == [("a", "abcdef", 3), ("b", "abcdef", 3)]


def test_live_account_limits_refuse_a_layer_that_would_not_fit(tmp_path: Path) -> None:
    layer = stubbed_layer(tmp_path)
    clients = Clients()
    with Stubber(clients.client("lambda", "eu-west-1")) as stub:
        stub.add_response(
            "get_account_settings",
            {"AccountLimit": {"TotalCodeSize": 1000, "CodeSizeUnzipped": 262144000},
             "AccountUsage": {"TotalCodeSize": 999}},
        )  # fmt: skip
        with pytest.raises(QuotaError, match="does not fit the code storage left in eu-west-1"):
            _check_account(layer, Region.of(clients, "eu-west-1"))


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("AccessDeniedException", "Access denied: lambda:PublishLayerVersion on demo"),
        ("ExpiredTokenException", "credentials have expired"),
        ("CodeStorageExceededException", "code storage (75 GB by default) is full"),
        ("TooManyRequestsException", "still throttled after retries"),
    ],
)
def test_aws_errors_say_what_failed_and_what_to_do(code: str, expected: str) -> None:
    clients = Clients()
    lam = clients.client("lambda", "eu-west-1")
    with Stubber(lam) as stub:
        stub.add_client_error(
            "publish_layer_version", service_error_code=code, service_message="no"
        )
        with (
            pytest.raises(AWSError, match=re.escape(expected)),
            translated("lambda:PublishLayerVersion", "demo in eu-west-1"),
        ):
            lam.publish_layer_version(LayerName="demo", Content={"ZipFile": b"x"})


def test_missing_credentials_are_one_clear_message(project: Path) -> None:
    files_recipe(project, "{}")
    env = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "eu-west-1"}
    result = layerkit("publish", "conf", cwd=project, env=env, check=False)
    assert result.returncode == 2
    assert "No AWS credentials were found" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_build_is_recorded_with_who_and_which_commit(project: Path) -> None:
    import sqlite3

    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run(
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com", "commit", "-q",
         "--allow-empty", "-m", "start"],
        cwd=project, check=True,
    )  # fmt: skip
    files_recipe(project, "{}")
    env = {"LAYERKIT_REGISTRY": str(project / "registry.sqlite")}
    [built] = json.loads(layerkit("build", "conf", "--json", cwd=project, env=env).stdout)
    layerkit("build", "conf", cwd=project, env=env)  # unchanged: nothing to record
    with sqlite3.connect(project / "registry.sqlite") as db:
        rows = db.execute("SELECT artifact, sha256, by, git_commit FROM builds").fetchall()
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert [(r[0], r[1], r[3]) for r in rows] == [("conf", built["sha256"], head)]
    assert rows[0][2]


def test_registry_sync_reads_each_manifest_from_the_layers_own_url(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lambda gives a presigned HTTPS URL for a version's ZIP (moto gives s3://, which sync
    cannot read): here a local HTTPS server with a CA of the test's own serves the ZIP, as
    GetLayerVersion's Location, through botocore's Stubber."""
    import base64
    import functools
    import hashlib
    import http.server
    import ssl
    import threading

    from tests.integration.test_secrets import _certificates

    files_recipe(project, '{"synced": true}')
    [artifact] = json.loads(layerkit("build", "conf", "--json", cwd=project).stdout)
    served = tmp_path / "served"
    served.mkdir()
    data = (project / artifact["path"]).read_bytes()
    (served / "conf.zip").write_bytes(data)
    ca, cert, key = _certificates(tmp_path)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    arn = "arn:aws:lambda:eu-west-1:123456789012:layer:conf:1"
    clients = Clients()
    try:
        with Stubber(clients.client("lambda", "eu-west-1")) as stub:
            stub.add_response("list_layers", {"Layers": [{"LayerName": "conf"}]}, {})
            stub.add_response(
                "list_layer_versions",
                {"LayerVersions": [{"LayerVersionArn": arn, "Version": 1,
                                    "Description": "shared settings [lk:abc]"}]},
                {"LayerName": "conf"},
            )  # fmt: skip
            stub.add_response(
                "get_layer_version",
                {"Content": {"Location": f"https://127.0.0.1:{server.server_address[1]}/conf.zip",
                             "CodeSha256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
                             "CodeSize": len(data)}},
                {"LayerName": "conf", "VersionNumber": 1},
            )  # fmt: skip
            [version] = sync(["eu-west-1"], clients)
    finally:
        server.shutdown()
    assert version.manifest is not None
    assert version.manifest.layer == "conf"
    assert version.sha256 == hashlib.sha256(data).hexdigest()
    assert version.manifest.to_json() == json.loads(
        zipfile.ZipFile(project / artifact["path"]).read("layerkit/conf.json")
    )
