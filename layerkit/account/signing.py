"""Signed layers: the ZIP signed once by AWS Signer, the signed bytes published everywhere.

A function with a code signing configuration accepts only layers signed by a profile it
allows; with `Enforce` an unsigned one blocks its deploy. Signer signs S3 objects only, in
a versioned bucket, so (as Datadog's release pipeline does) the unsigned ZIP goes to the
first region's bucket, one signing job with the profile signs it (polled, with a bounded
wait), and the signed object is copied to each region's bucket and published there.

The content marker stays the unsigned ZIP's SHA-256: an unchanged layer is neither signed
nor published again. Everything is checked before anything is published: a profile that
is missing, cancelled or revoked, a job that fails or outlasts the wait, stop the publish
in every region.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from layerkit import log
from layerkit.account.clients import Clients
from layerkit.account.gateways import Objects, Signer
from layerkit.account.model import SigningProfile
from layerkit.errors import AWSError, UserError

PLATFORM = "AWSLambda-SHA384-ECDSA"  # the only Signer platform Lambda accepts
POLL_SECONDS = 3


@dataclass(frozen=True)
class Signed:
    """The signed ZIP, in the signing region's bucket, and what signed it."""

    bucket: str
    key: str
    sha256: str  # of the signed bytes: the CodeSha256 Lambda will report
    size: int
    job_id: str
    job_arn: str
    profile_version_arn: str


def checked_profile(name: str, region: str, *, clients: Clients) -> SigningProfile:
    """The signing profile, refused unless it exists, is active and signs Lambda code."""
    profile = Signer(clients, region).profile(name)
    if profile is None:
        raise UserError(
            f"The signing profile {name} does not exist in {region} (Signer profiles are "
            f"regional; layerkit signs in the first publish region). Create it with platform "
            f"{PLATFORM}, or fix --signing-profile / [publish] signing-profile; nothing was "
            "published."
        )
    if profile.status != "Active":
        raise UserError(
            f"The signing profile {name} in {region} is {profile.status}: it can sign "
            "nothing. Use an active profile; nothing was published."
        )
    if profile.platform != PLATFORM:
        raise UserError(
            f"The signing profile {name} in {region} is for {profile.platform}; Lambda "
            f"accepts only {PLATFORM}. Use a profile for that platform; nothing was published."
        )
    return profile


def sign_zip(
    path: Path,
    key: str,
    bucket: str,
    region: str,
    profile: SigningProfile,
    clients: Clients,
    *,
    create_bucket: bool,
    wait_seconds: float,
) -> Signed:
    """Upload the unsigned ZIP to the signing region's bucket (under a key of its hash, so
    a retry reuses it) and sign it there."""
    objects = Objects(clients, region)
    objects.ensure_bucket(bucket, create_bucket)
    if objects.size(bucket, key) != path.stat().st_size:
        objects.upload(path, bucket, key, lambda count: None)
    return sign((bucket, key), profile, clients, region, wait_seconds=wait_seconds)


def sign(
    source: tuple[str, str],
    profile: SigningProfile,
    clients: Clients,
    region: str,
    *,
    wait_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Signed:
    """Sign the uploaded ZIP (bucket, key in `region`) with the profile: start one job,
    poll it until it succeeds, fails or outlasts `wait_seconds`."""
    bucket, key = source
    objects, signer = Objects(clients, region), Signer(clients, region)
    if not objects.versioned(bucket):
        raise UserError(
            f"The bucket {bucket} in {region} does not keep versions, and Signer signs only "
            "objects of a versioned bucket. Turn versioning on (aws s3api "
            f"put-bucket-versioning --bucket {bucket} --versioning-configuration "
            "Status=Enabled); nothing was published."
        )
    prefix = key.rsplit("/", 1)[0] + "/signed-"
    job_id = signer.start(profile.name, (bucket, key, objects.version_id(bucket, key)), prefix)
    started = clock()
    log.info("signing %s with %s: job %s", key, profile.name, job_id)
    while True:
        job = signer.job(job_id)
        if job.status == "Succeeded" and job.signed is not None:
            break
        if job.status == "Failed":
            reason = job.reason or "no reason given"
            raise AWSError(
                f"The signing job {job_id} ({profile.name}) failed: {reason}. Nothing was "
                "published."
            )
        waited = clock() - started
        if waited > wait_seconds:
            raise AWSError(
                f"The signing job {job_id} ({profile.name}) is still {job.status} after "
                f"{waited:.0f} s (the wait is {wait_seconds:.0f} s: --signing-wait). Nothing was "
                "published; run again to start a new job, or wait longer."
            )
        log.info("signing: job %s %s after %.0f s", job_id, job.status, waited)
        sleep(POLL_SECONDS)
    if job.profile_version and not profile.version_arn.endswith(f"/{job.profile_version}"):
        raise AWSError(
            f"The signing job {job_id} was signed by version {job.profile_version} of "
            f"{profile.name}, not the current {profile.version_arn}: the profile changed "
            "meanwhile. Run again; nothing was published."
        )
    sha256, size = objects.sha256(*job.signed)
    return Signed(
        job.signed[0], job.signed[1], sha256, size, job_id, job.job_arn, profile.version_arn
    )
