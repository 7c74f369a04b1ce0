"""AWS behind gateways: the only code that calls boto3 clients.

Each gateway speaks the domain (model.py's values: layer versions, function
configurations, parameters, objects) in one account and region, pages through every
listing, and raises layerkit's errors (clients.translated names the action and the
resource). "Not found" is an answer, not an error: `None`, `False` or an empty set.
Clients come from clients.Clients, which makes and counts them, so tests can stub them
with botocore's Stubber.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from layerkit.account.clients import Clients, translated
from layerkit.account.model import (
    AccountLimits,
    Alias,
    CodeSigningConfig,
    FunctionVersion,
    LayerArn,
    LayerCode,
    LayerContent,
    LayerVersion,
    Parameter,
    PolicyStatement,
    Recorded,
    SigningJob,
    SigningProfile,
    UpdateStatus,
    partition_of,
    release_of,
)
from layerkit.errors import AWSError, UserError
from layerkit.quota import UNZIPPED_LIMIT

# Error codes that mean "there is none", per service.
_ABSENT = {"ResourceNotFoundException", "ParameterNotFound", "404", "NoSuchBucket", "NoSuchKey"}


_DENIED = {"AccessDeniedException", "AccessDenied"}


def _absent(exc: AWSError) -> bool:
    return exc.code in _ABSENT


class Layers:
    """Lambda layers and their versions in one account and region."""

    def __init__(self, clients: Clients, region: str) -> None:
        self.region, self._lambda = region, clients.client("lambda", region)

    def names(self, where: str) -> list[str]:
        with translated("lambda:ListLayers", where):
            return [
                str(layer["LayerName"])
                for page in self._lambda.get_paginator("list_layers").paginate()
                for layer in page.get("Layers", [])
            ]

    def versions(self, name: str) -> list[LayerVersion]:
        with translated("lambda:ListLayerVersions", f"{name} in {self.region}"):
            pages = self._lambda.get_paginator("list_layer_versions").paginate(LayerName=name)
            return [_layer_version(item) for page in pages for item in page["LayerVersions"]]

    def everything(self, where: str) -> dict[str, list[LayerVersion]]:
        """Every layer the account owns in the region, with all its versions."""
        return {name: self.versions(name) for name in self.names(where)}

    def content(self, arn: LayerArn, *, own: bool = True) -> LayerContent:
        """Where a version's ZIP is, and its hash and size. own: the version belongs to this
        gateway's account (read by name); else by ARN, which works across accounts."""
        with translated("lambda:GetLayerVersion", str(arn)):
            if own:
                reply = self._lambda.get_layer_version(
                    LayerName=arn.layer, VersionNumber=arn.version
                )
            else:
                reply = self._lambda.get_layer_version_by_arn(Arn=str(arn))
        content = reply["Content"]
        return LayerContent(
            sha256=base64.b64decode(str(content.get("CodeSha256", ""))).hex(),
            size=int(content.get("CodeSize", 0)),
            location=str(content.get("Location", "")),
            signer=str(content.get("SigningProfileVersionArn") or ""),
            signing_job=str(content.get("SigningJobArn") or ""),
        )

    def available(self, arn: LayerArn) -> bool:
        """Whether the caller may use this version (of any account): "not found" and
        "access denied" alike are "no", since another account's deleted version and one
        not shared with you look the same from here."""
        try:
            with translated("lambda:GetLayerVersion", str(arn)):
                self._lambda.get_layer_version_by_arn(Arn=str(arn))
        except AWSError as exc:
            if _absent(exc) or exc.code in _DENIED:
                return False
            raise
        return True

    def publish(
        self,
        name: str,
        description: str,
        code: LayerCode,
        runtimes: tuple[str, ...],
        architectures: tuple[str, ...],
        license: str,
    ) -> LayerArn:
        content: dict[str, Any] = (
            {"ZipFile": code.zip_bytes}
            if code.s3 is None
            else {"S3Bucket": code.s3[0], "S3Key": code.s3[1]}
        )
        with translated("lambda:PublishLayerVersion", f"{name} in {self.region}"):
            reply = self._lambda.publish_layer_version(
                LayerName=name, Description=description, Content=content,
                CompatibleRuntimes=list(runtimes), CompatibleArchitectures=list(architectures),
                LicenseInfo=license,
            )  # fmt: skip
        return LayerArn.parse(str(reply["LayerVersionArn"]))

    def delete(self, arn: LayerArn) -> None:
        with translated("lambda:DeleteLayerVersion", str(arn)):
            self._lambda.delete_layer_version(LayerName=arn.layer, VersionNumber=arn.version)

    def statement_ids(self, arn: LayerArn) -> set[str]:
        """The statement IDs of the version's policy; none when it has no policy."""
        return {s.sid for s in self.policy(arn)}

    def policy(self, arn: LayerArn) -> list[PolicyStatement]:
        """The statements of the version's resource policy (who may use it); none when it
        has no policy."""
        try:
            with translated("lambda:GetLayerVersionPolicy", _where(arn)):
                reply = self._lambda.get_layer_version_policy(
                    LayerName=arn.layer, VersionNumber=arn.version
                )
        except AWSError as exc:
            if _absent(exc):
                return []
            raise
        statements = json.loads(reply["Policy"]).get("Statement", [])
        listed = [statements] if isinstance(statements, dict) else list(statements)
        return [PolicyStatement.from_json(s) for s in listed]

    def grant(self, arn: LayerArn, sid: str, principal: str, organization: str | None) -> None:
        options = {"OrganizationId": organization} if organization else {}
        with translated("lambda:AddLayerVersionPermission", _where(arn)):
            self._lambda.add_layer_version_permission(
                LayerName=arn.layer, VersionNumber=arn.version, StatementId=sid,
                Action="lambda:GetLayerVersion", Principal=principal, **options,
            )  # fmt: skip

    def revoke(self, arn: LayerArn, sid: str) -> None:
        with translated("lambda:RemoveLayerVersionPermission", _where(arn)):
            self._lambda.remove_layer_version_permission(
                LayerName=arn.layer, VersionNumber=arn.version, StatementId=sid
            )

    def limits(self) -> AccountLimits | None:
        """The account's live limits in the region; None where they cannot be read (no
        permission, or an endpoint without the call)."""
        try:
            with translated("lambda:GetAccountSettings", self.region):
                settings = self._lambda.get_account_settings()
        except AWSError as exc:
            if exc.code in {"AccessDeniedException", "AccessDenied", "404", "UnknownOperation"}:
                return None
            raise
        limits, usage = settings.get("AccountLimit", {}), settings.get("AccountUsage", {})
        total, used = limits.get("TotalCodeSize"), usage.get("TotalCodeSize")
        return AccountLimits(
            unzipped=int(limits.get("CodeSizeUnzipped", UNZIPPED_LIMIT)),
            storage_total=None if total is None else int(total),
            storage_used=None if used is None else int(used),
        )


def _layer_version(item: dict[str, Any]) -> LayerVersion:
    return LayerVersion(
        arn=LayerArn.parse(str(item["LayerVersionArn"])),
        description=str(item.get("Description", "")),
        runtimes=tuple(item.get("CompatibleRuntimes", ())),
        architectures=tuple(item.get("CompatibleArchitectures", ())),
        created=str(item.get("CreatedDate", "")),
    )


def _where(arn: LayerArn) -> str:
    return f"{arn.layer}:{arn.version} in {arn.region}"


class Functions:
    """Lambda function configurations in one account and region."""

    def __init__(self, clients: Clients, account: str, region: str) -> None:
        self.account, self.region = account, region
        self._lambda = clients.client("lambda", region)

    def every_version(self) -> list[FunctionVersion]:
        """Every function with every published version, and their layers, in one listing."""
        with translated("lambda:ListFunctions", f"{self.account} {self.region}"):
            pages = self._lambda.get_paginator("list_functions").paginate(FunctionVersion="ALL")
            return [self._version(f) for page in pages for f in page.get("Functions", [])]

    def _version(self, config: dict[str, Any]) -> FunctionVersion:

        return FunctionVersion(
            account=self.account,
            region=self.region,
            name=str(config["FunctionName"]),
            version=str(config.get("Version", "$LATEST")),
            layers=tuple(str(layer["Arn"]) for layer in config.get("Layers", [])),
            code_size=int(config.get("CodeSize", 0)),
            runtime=str(config.get("Runtime") or ""),
            architecture=str((config.get("Architectures") or ["x86_64"])[0]),
            release=release_of(config),
            revision=str(config.get("RevisionId", "")),
            code_sha256=str(config.get("CodeSha256", "")),
            layer_signers=tuple(
                str(layer.get("SigningProfileVersionArn") or "")
                for layer in config.get("Layers", [])
            ),
        )

    def version(self, name: str, qualifier: str = "$LATEST") -> FunctionVersion:
        with translated("lambda:GetFunctionConfiguration", f"{name}:{qualifier}"):
            config = self._lambda.get_function_configuration(FunctionName=name, Qualifier=qualifier)
        return self._version(config)

    def aliases(self, name: str) -> list[Alias]:
        with translated("lambda:ListAliases", f"{name} in {self.region}"):
            pages = self._lambda.get_paginator("list_aliases").paginate(FunctionName=name)
            return [
                Alias(
                    function=name,
                    name=str(item["Name"]),
                    version=str(item["FunctionVersion"]),
                    weights=tuple(
                        sorted(
                            (str(v), float(w))
                            for v, w in (
                                (item.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
                                or {}
                            ).items()
                        )
                    ),
                )
                for page in pages
                for item in page.get("Aliases", [])
            ]

    def publish_version(self, name: str, code_sha256: str, revision: str) -> str:
        """Publish $LATEST as a version; the preconditions make Lambda refuse it if $LATEST
        changed since it was read (code or configuration)."""
        options = {"RevisionId": revision} if revision else {}
        with translated("lambda:PublishVersion", name):
            reply = self._lambda.publish_version(
                FunctionName=name, CodeSha256=code_sha256, **options
            )
        return str(reply["Version"])

    def point_alias(
        self, name: str, alias: str, version: str, weights: dict[str, float] | None = None
    ) -> None:
        """Serve `version` from the alias, with `weights` of traffic to other versions
        (none: no canary)."""
        with translated("lambda:UpdateAlias", f"{name}:{alias}"):
            self._lambda.update_alias(
                FunctionName=name, Name=alias, FunctionVersion=version,
                RoutingConfig={"AdditionalVersionWeights": weights or {}},
            )  # fmt: skip

    def set_layers(self, name: str, layers: tuple[str, ...]) -> None:
        with translated("lambda:UpdateFunctionConfiguration", name):
            self._lambda.update_function_configuration(FunctionName=name, Layers=list(layers))

    def update_status(self, name: str) -> UpdateStatus:
        with translated("lambda:GetFunctionConfiguration", name):
            config = self._lambda.get_function_configuration(FunctionName=name)
        return UpdateStatus(
            str(config.get("LastUpdateStatus", "Successful")),
            str(config.get("LastUpdateStatusReason", "")),
            str(config.get("RevisionId", "")),
        )


class CodeSigning:
    """Lambda's code signing configurations in one account and region."""

    def __init__(self, clients: Clients, region: str) -> None:
        self.region, self._lambda = region, clients.client("lambda", region)

    def of_functions(self) -> dict[str, CodeSigningConfig]:
        """Function name -> its code signing configuration: each configuration read once
        (one paginated ListCodeSigningConfigs), then the functions of each; no call per
        function. An endpoint without the API (moto) has none."""
        try:
            with translated("lambda:ListCodeSigningConfigs", self.region):
                pages = self._lambda.get_paginator("list_code_signing_configs").paginate()
                configs = [c for page in pages for c in page.get("CodeSigningConfigs", [])]
        except AWSError as exc:
            if exc.code in {"404", "UnknownOperation"}:
                return {}
            raise
        found = {}
        for item in configs:
            policies = item.get("CodeSigningPolicies") or {}
            config = CodeSigningConfig(
                arn=str(item["CodeSigningConfigArn"]),
                allowed=tuple(
                    (item.get("AllowedPublishers") or {}).get("SigningProfileVersionArns", ())
                ),
                enforce=policies.get("UntrustedArtifactOnDeployment", "Warn") == "Enforce",
            )
            with translated("lambda:ListFunctionsByCodeSigningConfig", config.arn):
                pages = self._lambda.get_paginator("list_functions_by_code_signing_config")
                for page in pages.paginate(CodeSigningConfigArn=config.arn):
                    for arn in page.get("FunctionArns", []):
                        found[str(arn).split(":")[6]] = config
        return found


# Every function of the aggregator's accounts and regions, with what the audit reads of
# $LATEST: one query, at most 4,096 characters (Config's limit; a test holds it to that).
INVENTORY_QUERY = (
    "SELECT accountId, awsRegion, resourceName, configuration.runtime, "
    "configuration.architectures, configuration.layers, configuration.codeSize, tags, "
    "configurationItemCaptureTime WHERE resourceType = 'AWS::Lambda::Function'"
)
INVENTORY_PAGE = 100  # Config's largest Limit


class Inventory:
    """AWS Config's aggregated inventory, through an aggregator in one region."""

    def __init__(self, clients: Clients, region: str) -> None:
        self.region, self._config = region, clients.client("config", region)

    def functions(self, aggregator: str) -> list[Recorded]:
        """Every Lambda function Config recorded across the aggregator's accounts and
        regions ($LATEST only: Config does not record published versions or aliases)."""
        found, token = [], ""
        while True:
            options = {"NextToken": token} if token else {}
            try:
                with translated(
                    "config:SelectAggregateResourceConfig", f"the aggregator {aggregator}"
                ):
                    reply = self._config.select_aggregate_resource_config(
                        Expression=INVENTORY_QUERY, ConfigurationAggregatorName=aggregator,
                        Limit=INVENTORY_PAGE, **options,
                    )  # fmt: skip
            except AWSError as exc:
                if exc.code == "NoSuchConfigurationAggregatorException":
                    raise UserError(
                        f"There is no AWS Config aggregator {aggregator} in {self.region}: "
                        "name one `aws configservice describe-configuration-aggregators` "
                        "lists there (--config-aggregator), or leave the option out to scan "
                        "the accounts directly."
                    ) from None
                raise
            found += [_recorded(json.loads(row)) for row in reply.get("Results", [])]
            token = str(reply.get("NextToken") or "")
            if not token:
                return found


def _recorded(row: dict[str, Any]) -> Recorded:
    config = row.get("configuration") or {}
    layers = config.get("layers") or []
    function = FunctionVersion(
        account=str(row["accountId"]),
        region=str(row["awsRegion"]),
        name=str(row["resourceName"]),
        version="$LATEST",
        layers=tuple(str(layer["arn"]) for layer in layers),
        code_size=int(config.get("codeSize") or 0),
        runtime=str(config.get("runtime") or ""),
        architecture=str((config.get("architectures") or ["x86_64"])[0]),
        layer_signers=tuple(str(layer.get("signingProfileVersionArn") or "") for layer in layers),
    )
    tags = {str(t["key"]): str(t["value"]) for t in row.get("tags") or []}
    return Recorded(function, tags, str(row.get("configurationItemCaptureTime") or ""))


class Tags:
    """Resource tags in one account and region."""

    def __init__(self, clients: Clients, account: str, region: str) -> None:
        self.account, self.region, self._clients = account, region, clients

    def of_functions(self, names: list[str]) -> dict[str, dict[str, str]]:
        """Each function's tags (by name): every tagged function of the region from one
        paginated GetResources, or, where the Tagging API is denied, ListTags per function."""
        try:
            with translated("tag:GetResources", f"Lambda functions in {self.region}"):
                tagging = self._clients.client("resourcegroupstaggingapi", self.region)
                pages = tagging.get_paginator("get_resources").paginate(
                    ResourceTypeFilters=["lambda:function"]
                )
                return {
                    str(item["ResourceARN"]).split(":")[6]: {
                        str(t["Key"]): str(t["Value"]) for t in item.get("Tags", [])
                    }
                    for page in pages
                    for item in page.get("ResourceTagMappingList", [])
                }
        except AWSError as exc:
            if exc.code not in _DENIED:
                raise
        functions = self._clients.client("lambda", self.region)
        found = {}
        for name in names:
            arn = (
                f"arn:{partition_of(self.region)}:lambda:{self.region}:{self.account}"
                f":function:{name}"
            )
            with translated("lambda:ListTags", arn):
                found[name] = dict(functions.list_tags(Resource=arn).get("Tags", {}))
        return found


class Parameters:
    """SSM parameters in one region."""

    def __init__(self, clients: Clients, region: str) -> None:
        self.region, self._ssm = region, clients.client("ssm", region)

    def get(self, name: str) -> str | None:
        try:
            with translated("ssm:GetParameter", f"{name} in {self.region}"):
                return str(self._ssm.get_parameter(Name=name)["Parameter"]["Value"])
        except AWSError as exc:
            if _absent(exc):
                return None
            raise

    def put(self, name: str, value: str) -> None:
        with translated("ssm:PutParameter", f"{name} in {self.region}"):
            self._ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)

    def create(self, name: str, value: str) -> bool:
        """Create the parameter only if it does not exist (a conditional write): True when
        this call made it, False when it was there already."""
        try:
            with translated("ssm:PutParameter", f"{name} in {self.region}"):
                self._ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=False)
        except AWSError as exc:
            if exc.code == "ParameterAlreadyExists":
                return False
            raise
        return True

    def delete(self, name: str) -> None:
        """Delete the parameter; one already gone is not an error."""
        try:
            with translated("ssm:DeleteParameter", f"{name} in {self.region}"):
                self._ssm.delete_parameter(Name=name)
        except AWSError as exc:
            if not _absent(exc):
                raise

    def under(self, path: str) -> dict[str, Parameter]:
        """The parameters directly under a path, by name."""
        with translated("ssm:GetParametersByPath", f"{path} in {self.region}"):
            pages = self._ssm.get_paginator("get_parameters_by_path").paginate(Path=path)
            return {
                str(p["Name"]): Parameter(str(p["Value"]), p["LastModifiedDate"].timestamp())
                for page in pages
                for p in page.get("Parameters", [])
            }


class Objects:
    """S3 in one region: where ZIPs too large for a direct upload go."""

    def __init__(self, clients: Clients, region: str) -> None:
        self.region, self._s3 = region, clients.client("s3", region)

    def bucket_exists(self, bucket: str) -> bool:
        try:
            with translated("s3:HeadBucket", bucket):
                self._s3.head_bucket(Bucket=bucket)
        except AWSError as exc:
            if _absent(exc):
                return False
            raise
        return True

    def ensure_bucket(self, bucket: str, create: bool) -> None:
        """The bucket exists, or is created when `create` (--create-bucket)."""
        if self.bucket_exists(bucket):
            return
        if not create:
            raise AWSError(
                f"The S3 bucket {bucket} for {self.region} does not exist. Create it, or "
                "pass --create-bucket."
            )
        self.create_bucket(bucket)

    def create_bucket(self, bucket: str) -> None:
        options = {}
        if self.region != "us-east-1":
            options["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        with translated("s3:CreateBucket", bucket):
            self._s3.create_bucket(Bucket=bucket, **options)

    def size(self, bucket: str, key: str) -> int | None:
        """The object's size; None when there is none (or it cannot be read)."""
        try:
            with translated("s3:HeadObject", f"s3://{bucket}/{key}"):
                return int(self._s3.head_object(Bucket=bucket, Key=key).get("ContentLength", -1))
        except AWSError:
            return None  # uploading again is always safe: the key is the content's hash

    def upload(self, path: Path, bucket: str, key: str, progress: Callable[[int], None]) -> None:
        from boto3.s3.transfer import TransferConfig

        with translated("s3:PutObject", f"s3://{bucket}/{key}"):
            self._s3.upload_file(
                str(path), bucket, key, Callback=progress,
                Config=TransferConfig(multipart_threshold=16 * 1024 * 1024),
            )  # fmt: skip

    def versioned(self, bucket: str) -> bool:
        with translated("s3:GetBucketVersioning", bucket):
            status = self._s3.get_bucket_versioning(Bucket=bucket).get("Status")
        return bool(status == "Enabled")

    def version_id(self, bucket: str, key: str) -> str:
        """The object's current version ID (what a signing job names as its source)."""
        with translated("s3:HeadObject", f"s3://{bucket}/{key}"):
            return str(self._s3.head_object(Bucket=bucket, Key=key).get("VersionId") or "")

    def copy_from(self, source: tuple[str, str], bucket: str, key: str) -> None:
        """Copy an object (of any region's bucket) into this region's bucket."""
        with translated("s3:CopyObject", f"s3://{source[0]}/{source[1]} to s3://{bucket}/{key}"):
            self._s3.copy({"Bucket": source[0], "Key": source[1]}, bucket, key)

    def sha256(self, bucket: str, key: str) -> tuple[str, int]:
        """The object's SHA-256 (hex) and size, read through once."""
        digest, size = hashlib.sha256(), 0
        with translated("s3:GetObject", f"s3://{bucket}/{key}"):
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"]
            for chunk in iter(lambda: body.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size


class Signer:
    """AWS Signer in one region: signing profiles and signing jobs."""

    def __init__(self, clients: Clients, region: str) -> None:
        self.region, self._signer = region, clients.client("signer", region)

    def profile(self, name: str) -> SigningProfile | None:
        try:
            with translated("signer:GetSigningProfile", f"{name} in {self.region}"):
                reply = self._signer.get_signing_profile(profileName=name)
        except AWSError as exc:
            if _absent(exc):
                return None
            raise
        return SigningProfile(
            name=name,
            status=str(reply.get("status", "")),
            platform=str(reply.get("platformId", "")),
            version_arn=str(reply.get("profileVersionArn", "")),
        )

    def start(self, profile: str, source: tuple[str, str, str], prefix: str) -> str:
        """Start a signing job of the S3 object (bucket, key, version ID); the signed object
        goes to the same bucket under `prefix`. Returns the job ID."""
        bucket, key, version = source
        # the same object version and profile make the same request: a retry is one job
        token = hashlib.sha256(f"{bucket}/{key}@{version}:{profile}".encode()).hexdigest()
        with translated("signer:StartSigningJob", f"s3://{bucket}/{key} with {profile}"):
            reply = self._signer.start_signing_job(
                source={"s3": {"bucketName": bucket, "key": key, "version": version}},
                destination={"s3": {"bucketName": bucket, "prefix": prefix}},
                profileName=profile, clientRequestToken=token[:64],
            )  # fmt: skip
        return str(reply["jobId"])

    def job(self, job_id: str) -> SigningJob:
        with translated("signer:DescribeSigningJob", job_id):
            reply = self._signer.describe_signing_job(jobId=job_id)
        signed = (reply.get("signedObject") or {}).get("s3") or {}
        return SigningJob(
            job_id=job_id,
            status=str(reply.get("status", "")),
            reason=str(reply.get("statusReason", "")),
            signed=(str(signed["bucketName"]), str(signed["key"])) if signed else None,
            profile_version=str(reply.get("profileVersion", "")),
            job_arn=_job_arn(self.region, reply),
        )


def _job_arn(region: str, reply: dict[str, Any]) -> str:
    """Signer's job ARN: DescribeSigningJob gives the parts, not the ARN itself."""
    return (
        f"arn:{partition_of(region)}:signer:{region}:{reply.get('jobOwner', '')}"
        f":/signing-jobs/{reply.get('jobId', '')}"
    )


class Account:
    """What the credentials' account can see: its regions and its organization."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        self.region = clients.default_region() or "us-east-1"

    def regions(self) -> list[str]:
        with translated("ec2:DescribeRegions", "the account"):
            found = self.clients.client("ec2", self.region).describe_regions()["Regions"]
        return sorted(str(r["RegionName"]) for r in found)

    def organization_id(self) -> str:
        with translated("organizations:DescribeOrganization", "the organization"):
            client = self.clients.client("organizations", self.region)
            return str(client.describe_organization()["Organization"]["Id"])

    def organization_accounts(self) -> list[str]:
        """The IDs of the organization's active accounts."""
        with translated("organizations:ListAccounts", "the organization"):
            client = self.clients.client("organizations", self.region)
            pages = client.get_paginator("list_accounts").paginate()
            return [a["Id"] for page in pages for a in page["Accounts"] if a["Status"] == "ACTIVE"]
