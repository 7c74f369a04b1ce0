"""The account side's domain values: what the gateways return and the rest of the wing
reads. No boto3 here: these are plain data, so scans can be built by hand in tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from layerkit.errors import UserError


def partition_of(region: str) -> str:
    """The AWS partition a region is in: aws, aws-cn, aws-us-gov, or an ISO partition."""
    for prefix, partition in (
        ("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"), ("us-isob-", "aws-iso-b"),
        ("us-iso-", "aws-iso"),
    ):  # fmt: skip
        if region.startswith(prefix):
            return partition
    return "aws"


@dataclass(frozen=True, order=True)
class LayerArn:
    """A layer version's ARN: arn:PARTITION:lambda:REGION:ACCOUNT:layer:NAME:VERSION. The
    partition follows from the region."""

    region: str
    account: str
    layer: str
    version: int

    @classmethod
    def parse(cls, text: str) -> LayerArn:
        parts = text.split(":")
        if (
            len(parts) != 8
            or parts[0] != "arn"
            or parts[2] != "lambda"
            or parts[5] != "layer"
            or parts[1] != partition_of(parts[3])
        ):
            raise UserError(f"{text!r} is not a layer version ARN.")
        try:
            return cls(parts[3], parts[4], parts[6], int(parts[7]))
        except ValueError:
            raise UserError(f"{text!r} is not a layer version ARN.") from None

    def at(self, version: int) -> LayerArn:
        return LayerArn(self.region, self.account, self.layer, version)

    def __str__(self) -> str:
        return (
            f"arn:{partition_of(self.region)}:lambda:{self.region}:{self.account}"
            f":layer:{self.layer}:{self.version}"
        )


# CloudFormation tags what its stacks create, so SAM, CDK and Serverless functions too.
STACK_TAG = "aws:cloudformation:stack-name"


def owner_of(tags: dict[str, str], owner_tags: tuple[str, ...]) -> str | None:
    """Who deploys a function, from its tags: its CloudFormation stack, else the first of
    the tag keys the user names as ownership markers (Terraform's `default_tags`)."""
    if STACK_TAG in tags:
        return f"CloudFormation stack {tags[STACK_TAG]}"
    for key in owner_tags:
        if key in tags:
            return f"{key}={tags[key]}"
    return None


def account_of(arn: str) -> str:
    """The account field of any ARN (a role's, an account root's)."""
    return arn.split(":")[4]


@dataclass(frozen=True)
class LayerVersion:
    arn: LayerArn
    description: str
    runtimes: tuple[str, ...]
    architectures: tuple[str, ...]
    created: str


@dataclass(frozen=True)
class LayerContent:
    sha256: str  # hex (Lambda gives CodeSha256 in base64)
    size: int  # zipped
    location: str  # a presigned https URL on AWS (moto: s3://)
    signer: str = ""  # the SigningProfileVersionArn, when signed
    signing_job: str = ""


@dataclass(frozen=True)
class LayerCode:
    """Where PublishLayerVersion takes a ZIP from: its bytes, or an S3 object."""

    zip_bytes: bytes | None = None
    s3: tuple[str, str] | None = None  # (bucket, key)


@dataclass(frozen=True)
class SigningProfile:
    name: str
    status: str  # Active, Canceled or Revoked
    platform: str  # AWSLambda-SHA384-ECDSA for Lambda code
    version_arn: str  # what Lambda records as a layer's SigningProfileVersionArn


@dataclass(frozen=True)
class SigningJob:
    job_id: str
    status: str  # InProgress, Failed or Succeeded
    reason: str
    signed: tuple[str, str] | None  # (bucket, key) of the signed object, once Succeeded
    profile_version: str  # the profile version that signed: the end of its version ARN
    job_arn: str


@dataclass(frozen=True)
class CodeSigningConfig:
    """Which signing profiles a function's layers must be signed by, and what Lambda does
    with one that is not: Enforce refuses the deploy, Warn logs it."""

    arn: str
    allowed: tuple[str, ...]  # signing profile version ARNs
    enforce: bool

    @property
    def policy(self) -> str:
        return "Enforce" if self.enforce else "Warn"


@dataclass(frozen=True)
class PolicyStatement:
    """One statement of a layer version's resource policy: whom it lets use the version."""

    sid: str
    allows: bool  # Effect Allow (the default), not Deny
    principal: str  # "*", an account ID or an ARN; the first, if a statement names several
    organization: str | None  # the organization it is limited to (aws:PrincipalOrgID)

    @classmethod
    def from_json(cls, statement: dict[str, Any]) -> PolicyStatement:
        """From the policy JSON GetLayerVersionPolicy returns."""
        principal = statement.get("Principal", "")
        if isinstance(principal, dict):
            principal = principal.get("AWS", "")
        if isinstance(principal, list):
            principal = principal[0] if principal else ""
        equals = (statement.get("Condition") or {}).get("StringEquals") or {}
        organization = equals.get("aws:PrincipalOrgID") or statement.get("OrganizationId")
        return cls(
            sid=str(statement.get("Sid", "")),
            allows=statement.get("Effect", "Allow") == "Allow",
            principal=str(principal),
            organization=str(organization) if organization else None,
        )


@dataclass(frozen=True)
class AccountLimits:
    unzipped: int  # a function and its layers, unzipped
    storage_total: int | None  # code storage of the region
    storage_used: int | None


# Configuration keys that say nothing about what a version runs: bookkeeping, state, and
# what Lambda itself manages. Every other key is part of a release (see FunctionVersion).
_NOT_RELEASED = {
    "Layers", "Version", "FunctionArn", "LastModified", "RevisionId", "State", "StateReason",
    "StateReasonCode", "LastUpdateStatus", "LastUpdateStatusReason",
    "LastUpdateStatusReasonCode", "MasterArn", "RuntimeVersionConfig", "CodeSize",
    "ResponseMetadata",  # of the call, when read with GetFunctionConfiguration
}  # fmt: skip


def _released(key: str, value: Any) -> Any:
    """What of a configuration value the user chose: Lambda reports SnapStart's
    OptimizationStatus On for published versions and Off for $LATEST."""
    if key == "SnapStart" and isinstance(value, dict):
        return {"ApplyOn": value.get("ApplyOn")}
    return value


def release_of(config: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """What a configuration releases, layers and bookkeeping aside, as sorted (key, JSON)
    pairs: two versions with the same release run the same code the same way."""
    return tuple(
        sorted(
            (key, json.dumps(_released(key, value), sort_keys=True, default=str))
            for key, value in config.items()
            if key not in _NOT_RELEASED and value not in (None, "", [], {})
        )
    )


@dataclass(frozen=True)
class FunctionVersion:
    account: str
    region: str
    name: str
    version: str  # $LATEST or a published number
    layers: tuple[str, ...]  # layer version ARNs, in order
    code_size: int  # zipped
    runtime: str = ""  # empty for container images
    architecture: str = "x86_64"
    # Everything else the configuration says, as sorted (key, JSON) pairs: two versions
    # with the same `release` run the same code the same way, but for their layers.
    release: tuple[tuple[str, str], ...] = ()
    revision: str = ""
    code_sha256: str = ""
    # each layer's SigningProfileVersionArn, in the order of `layers` ("" when unsigned)
    layer_signers: tuple[str, ...] = ()

    @property
    def signers(self) -> dict[str, str]:
        """Layer version ARN -> the profile version that signed it ("" for none)."""
        return dict(zip(self.layers, self.layer_signers, strict=False))

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    def differences(self, other: FunctionVersion) -> list[str]:
        """The configuration keys, layers aside, in which the two versions differ."""
        mine, theirs = dict(self.release), dict(other.release)
        return sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))


@dataclass(frozen=True)
class Recorded:
    """A function as AWS Config recorded it: $LATEST, its tags, and when."""

    function: FunctionVersion
    tags: dict[str, str]
    captured: str  # configurationItemCaptureTime


@dataclass(frozen=True)
class Alias:
    function: str
    name: str
    version: str  # the version it serves
    weights: tuple[tuple[str, float], ...] = ()  # canary: other versions and their share

    @property
    def canary(self) -> str | None:
        """The version a canary routes to, if any."""
        return self.weights[0][0] if self.weights else None


@dataclass(frozen=True)
class UpdateStatus:
    state: str  # Successful, InProgress or Failed
    reason: str
    revision: str = ""


@dataclass(frozen=True)
class Parameter:
    value: str
    modified: float  # epoch seconds, as SSM recorded the last write
