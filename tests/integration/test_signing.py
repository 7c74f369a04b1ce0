"""Signed layers: the ZIP goes to a versioned bucket, one Signer job signs it, the signed
object is copied to each region's bucket and published there, and the registry records
how. S3, Lambda, SSM and Signer's profiles are the moto server's; moto has no signing
jobs (StartSigningJob, DescribeSigningJob), so those, and a profile that does not exist
(moto answers 500), are botocore's Stubber on the signer client."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from layerkit.account import signing
from layerkit.account.clients import Clients
from layerkit.account.publish import Layer, layer_from_zip, run
from layerkit.account.sync import sync
from layerkit.errors import AWSError, UserError
from layerkit.recipe import PublishSettings
from layerkit.registry import Registry
from tests.conftest import layerkit, write_recipe
from tests.fleet import client

REGIONS = ("eu-west-1", "us-east-1")
ACCOUNT = "123456789012"
PROFILE_ARN = f"arn:aws:signer:eu-west-1:{ACCOUNT}:/signing-profiles/release/a1b2c3d4e5"
SIGNED_KEY = "layerkit/conf/signed-job-1.zip"


@pytest.fixture
def layer(project: Path, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Layer:
    """A built layer, buckets in both regions (the first versioned), and this process
    pointed at the moto server."""
    for name, value in aws.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(signing, "POLL_SECONDS", 0.01)
    (project / "recipes" / "s.json").write_text('{"signed": true}')
    write_recipe(
        project, "conf",
        '[layer]\nname = "conf"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
        '[[files]]\nsource = "s.json"\ntarget = "etc/s.json"\n',
    )  # fmt: skip
    layerkit("build", "conf", cwd=project, env=aws)
    for region in REGIONS:
        s3 = client(aws, "s3", region)
        options = {} if region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}  # fmt: skip
        s3.create_bucket(Bucket=f"lk-{region}", **options)
    client(aws, "s3", "eu-west-1").put_bucket_versioning(
        Bucket="lk-eu-west-1", VersioningConfiguration={"Status": "Enabled"}
    )
    return layer_from_zip(project / "dist" / "conf.zip")


def signed_bytes(layer: Layer) -> bytes:
    """What Signer would write: the ZIP with a signature added (here, in its comment)."""
    buffer = io.BytesIO(layer.path.read_bytes())
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.comment = b"signature"
    return buffer.getvalue()


def settings(regions: tuple[str, ...] = REGIONS) -> PublishSettings:
    return PublishSettings(regions=regions, s3_bucket="lk-{region}", signing_profile="release")


def profile_reply(status: str = "Active") -> dict[str, Any]:
    return {"profileName": "release", "status": status, "platformId": signing.PLATFORM,
            "profileVersion": "a1b2c3d4e5", "profileVersionArn": PROFILE_ARN}  # fmt: skip


def expect_job(stub: Stubber, layer: Layer, polls: list[dict[str, Any]]) -> None:
    stub.add_response("get_signing_profile", profile_reply(), {"profileName": "release"})
    key = f"layerkit/conf/{layer.sha256}.zip"
    stub.add_response(
        "start_signing_job", {"jobId": "job-1", "jobOwner": ACCOUNT},
        {"source": {"s3": {"bucketName": "lk-eu-west-1", "key": key, "version": ANY}},
         "destination": {"s3": {"bucketName": "lk-eu-west-1", "prefix": "layerkit/conf/signed-"}},
         "profileName": "release", "clientRequestToken": ANY},
    )  # fmt: skip
    for reply in polls:
        stub.add_response("describe_signing_job", reply, {"jobId": "job-1"})


SUCCEEDED = {"jobId": "job-1", "status": "Succeeded", "profileVersion": "a1b2c3d4e5",
             "jobOwner": ACCOUNT,
             "signedObject": {"s3": {"bucketName": "lk-eu-west-1", "key": SIGNED_KEY}}}  # fmt: skip
IN_PROGRESS = {"jobId": "job-1", "status": "InProgress", "jobOwner": ACCOUNT}


def published(aws: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    return {
        r: client(aws, "lambda", r).list_layer_versions(LayerName="conf")["LayerVersions"]
        for r in REGIONS
    }


def test_the_signed_zip_is_what_every_region_publishes_and_the_registry_records(
    layer: Layer, aws: dict[str, str], project: Path
) -> None:
    signed = signed_bytes(layer)
    client(aws, "s3", "eu-west-1").put_object(Bucket="lk-eu-west-1", Key=SIGNED_KEY, Body=signed)
    clients, registry = Clients(), Registry(Path(aws["LAYERKIT_REGISTRY"]))
    with Stubber(clients.client("signer", "eu-west-1")) as stub:
        expect_job(stub, layer, [IN_PROGRESS, IN_PROGRESS, SUCCEEDED])
        done = run([(layer, settings())], clients=clients, regions=None, dry_run=False,
                   create_bucket=False, registry=registry)  # fmt: skip
        stub.assert_no_pending_responses()
    assert {o.status.value for o in done.outcomes} == {"published"}, done.outcomes
    signed_sha = hashlib.sha256(signed).hexdigest()
    assert signed_sha != layer.sha256
    for region in REGIONS:
        code = client(aws, "lambda", region).get_layer_version(LayerName="conf", VersionNumber=1)
        assert base64.b64decode(code["Content"]["CodeSha256"]).hex() == signed_sha
        assert code["Description"].endswith(layer.marker)  # the unsigned ZIP's marker
    copied = client(aws, "s3", "us-east-1").get_object(
        Bucket="lk-us-east-1", Key=f"layerkit/conf/{layer.sha256}.signed.zip"
    )
    assert copied["Body"].read() == signed
    for version in registry.versions("conf"):
        assert version.sha256 == layer.sha256
        assert version.signing is not None
        assert version.signing.profile_version_arn == PROFILE_ARN
        assert version.signing.job_arn == f"arn:aws:signer:eu-west-1:{ACCOUNT}:/signing-jobs/job-1"
        assert version.signing.signed_sha256 == signed_sha
    shown = layerkit("show", "conf", cwd=project, env=aws).stdout
    assert f"signed by {PROFILE_ARN}" in " ".join(shown.split())

    # unchanged content: neither signed nor published again (a Stubber with no responses
    # fails any signer call)
    again_clients = Clients()
    with Stubber(again_clients.client("signer", "eu-west-1")):
        again = run([(layer, settings())], clients=again_clients, regions=None, dry_run=False,
                    create_bucket=False, registry=registry)  # fmt: skip
    assert {o.status.value for o in again.outcomes} == {"unchanged"}
    assert registry.versions("conf")[0].signing is not None  # kept, though found again
    assert [len(v) for v in published(aws).values()] == [1, 1]


@pytest.mark.parametrize(
    ("polls", "wait", "said"),
    [
        (
            [IN_PROGRESS, {**IN_PROGRESS, "status": "Failed", "statusReason": "key revoked"}],
            60,
            "The signing job job-1 (release) failed: key revoked",
        ),
        ([IN_PROGRESS] * 40, 0.05, "job-1 (release) is still InProgress after"),
    ],
    ids=["failed", "too-slow"],
)
def test_a_job_that_fails_or_outlasts_the_wait_publishes_nothing_anywhere(
    layer: Layer, aws: dict[str, str], polls: list[dict[str, Any]], wait: float, said: str
) -> None:
    clients = Clients()
    stub = Stubber(clients.client("signer", "eu-west-1"))
    expect_job(stub, layer, polls)
    with stub, pytest.raises(AWSError) as raised:
        run([(layer, settings())], clients=clients, regions=None, dry_run=False,
            create_bucket=False, registry=Registry(Path(aws["LAYERKIT_REGISTRY"])),
            signing_wait=wait)  # fmt: skip
    assert said in str(raised.value) and "Nothing was published" in str(raised.value)
    assert published(aws) == {r: [] for r in REGIONS}


def test_a_profile_that_does_not_exist_is_named_and_nothing_is_uploaded(
    layer: Layer, aws: dict[str, str]
) -> None:
    clients = Clients()
    with Stubber(clients.client("signer", "eu-west-1")) as stub:
        stub.add_client_error("get_signing_profile", "ResourceNotFoundException", "no profile")
        with pytest.raises(UserError, match="signing profile release does not exist in eu-west-1"):
            run([(layer, settings())], clients=clients, regions=None, dry_run=False,
                create_bucket=False, registry=Registry(Path(aws["LAYERKIT_REGISTRY"])))  # fmt: skip
    assert published(aws) == {r: [] for r in REGIONS}
    listed = client(aws, "s3", "eu-west-1").list_objects_v2(Bucket="lk-eu-west-1")
    assert listed.get("KeyCount", 0) == 0


def test_an_unversioned_bucket_is_named(layer: Layer, aws: dict[str, str]) -> None:
    clients = Clients()
    with Stubber(clients.client("signer", "us-east-1")) as stub:
        stub.add_response("get_signing_profile", profile_reply(), {"profileName": "release"})
        with pytest.raises(UserError, match="lk-us-east-1 in us-east-1 does not keep versions"):
            run([(layer, settings(regions=("us-east-1", "eu-west-1")))], clients=clients,
                regions=None, dry_run=False, create_bucket=False,
                registry=Registry(Path(aws["LAYERKIT_REGISTRY"])))  # fmt: skip
    assert published(aws) == {r: [] for r in REGIONS}


@pytest.mark.parametrize(
    ("setup", "said"),
    [("cancel", "The signing profile release in eu-west-1 is Canceled"),
     ("other-platform", "is for AWSIoTDeviceManagement-SHA256-ECDSA; Lambda accepts only")],
)  # fmt: skip
def test_a_cancelled_or_foreign_profile_on_the_real_server_stops_the_command(
    layer: Layer, aws: dict[str, str], project: Path, setup: str, said: str
) -> None:
    signer = client(aws, "signer", "eu-west-1")
    platform = "AWSIoTDeviceManagement-SHA256-ECDSA" if setup == "other-platform" else None
    signer.put_signing_profile(profileName="release", platformId=platform or signing.PLATFORM)
    if setup == "cancel":
        signer.cancel_signing_profile(profileName="release")
    result = layerkit(
        "publish", "dist/conf.zip", "--region", "eu-west-1", "--region", "us-east-1",
        "--signing-profile", "release", "--s3-bucket", "lk-{region}", cwd=project, env=aws,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert said in message and "nothing was published" in message
    assert "Traceback" not in message
    assert published(aws) == {r: [] for r in REGIONS}


def test_signing_without_a_bucket_is_refused_before_any_call(
    layer: Layer, aws: dict[str, str], project: Path
) -> None:
    result = layerkit(
        "publish", "dist/conf.zip", "--region", "eu-west-1", "--signing-profile", "release",
        cwd=project, env={**aws, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "needs an S3 bucket" in " ".join(result.stderr.split())


def test_registry_sync_reads_how_a_version_was_signed() -> None:
    clients = Clients()
    arn = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:conf:3"
    job = f"arn:aws:signer:eu-west-1:{ACCOUNT}:/signing-jobs/job-9"
    with Stubber(clients.client("lambda", "eu-west-1")) as stub:
        stub.add_response("list_layers", {"Layers": [{"LayerName": "conf"}]}, {})
        stub.add_response(
            "list_layer_versions",
            {"LayerVersions": [{"LayerVersionArn": arn, "Version": 3, "Description": "x"}]},
            {"LayerName": "conf"},
        )
        stub.add_response(
            "get_layer_version",
            {"LayerVersionArn": arn, "Version": 3,
             "Content": {"CodeSha256": base64.b64encode(b"\x01" * 32).decode(), "CodeSize": 9,
                         "SigningProfileVersionArn": PROFILE_ARN, "SigningJobArn": job}},
            {"LayerName": "conf", "VersionNumber": 3},
        )  # fmt: skip
        [found] = sync(["eu-west-1"], clients, download=False)
    assert found.signing is not None
    assert (found.signing.profile_version_arn, found.signing.job_arn) == (PROFILE_ARN, job)
    assert found.signing.signed_sha256 == "01" * 32
