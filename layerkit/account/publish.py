"""`layerkit publish`: a new layer version only when the content is new, in every region.

plan() reads each region once (ListLayerVersions, paginated) and decides, per region,
whether the ZIP's content is already published: layers cannot be tagged, so each version
carries a short content marker at the end of its Description ("[lk:<sha256 prefix>]").
execute() carries the plan out, the regions concurrently, and returns each region's
outcome: one failing region does not hide the others.

Two CI jobs publishing the same content at the same moment create one version: before
publishing, a job creates an SSM parameter named after the content with Overwrite=False,
a conditional write that only one caller wins. The winner looks again (the other may have
finished in between), publishes and deletes the parameter; the others wait for the
version to appear and report it as unchanged.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path

from layerkit import log, quota
from layerkit.account import signing
from layerkit.account.clients import Clients
from layerkit.account.gateways import Layers, Objects, Parameters
from layerkit.account.guard import STALE_SECONDS, Guard
from layerkit.account.model import (
    LayerArn,
    LayerCode,
    LayerVersion,
    SigningProfile,
    account_of,
    partition_of,
)
from layerkit.account.signing import Signed
from layerkit.errors import AWSError, CredentialsError, LayerkitError, QuotaError, UserError
from layerkit.files import open_zip, sha256_of
from layerkit.layer.manifest import LayerManifest
from layerkit.recipe import SIGNING_PROFILE, PublishSettings
from layerkit.registry import Registry, Signing, Version, git_commit, now, who
from layerkit.settings import cascade

MARKER_LENGTH = 24  # hex digits of the ZIP's SHA-256: 96 bits


@dataclass(frozen=True)
class Layer:
    """A built ZIP, ready to publish as one layer."""

    name: str  # the LayerName
    path: Path
    sha256: str
    unzipped: int
    zipped: int
    runtimes: tuple[str, ...]
    architectures: tuple[str, ...]
    description: str
    license: str
    manifest: LayerManifest

    @property
    def marker(self) -> str:
        return f"[lk:{self.sha256[:MARKER_LENGTH]}]"

    @property
    def full_description(self) -> str:
        return f"{self.description} {self.marker}".strip()


@dataclass(frozen=True)
class Grant:
    statement_id: str
    principal: str
    organization: str | None = None


def grants(settings: PublishSettings) -> list[Grant]:
    """The lambda:GetLayerVersion grants a recipe asks for, with stable statement IDs."""
    wanted = []
    for principal in settings.principals:
        if principal == "*":
            wanted.append(Grant("public", "*"))
        else:
            account = account_of(principal) if principal.startswith("arn:") else principal
            wanted.append(Grant(f"account-{account}", account))
    if settings.organization:
        wanted.append(Grant(f"org-{settings.organization}", "*", settings.organization))
    return wanted


@dataclass(frozen=True)
class Action:
    """What publishing does in one region."""

    region: str
    layer: str
    publish: bool  # False: the content is already there, as existing_arn
    existing_arn: str | None
    route: str | None  # direct, s3, or signed (the signed object, through S3)
    s3_location: tuple[str, str] | None
    grants: tuple[Grant, ...]
    parameter: str | None
    newest: int = 0  # the region's newest version number of the layer, before publishing
    target: int | None = None  # --align-versions: the number the new content must land as
    fillers: int = 0  # --align-versions: versions published first to reach target - 1
    note: str | None = None  # what alignment cannot do here
    signing_profile: str | None = None  # signed with it before publishing


class PublishStatus(str, Enum):
    published = "published"
    unchanged = "unchanged"  # the content was there already
    failed = "failed"


@dataclass
class Outcome:
    region: str
    layer: str
    status: PublishStatus
    arn: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    signing: Signing | None = None  # how the version this run published was signed


@dataclass(frozen=True)
class Region:
    """The gateways of one region, made once and handed to each step of a publish."""

    name: str
    layers: Layers
    parameters: Parameters
    objects: Objects

    @classmethod
    def of(cls, clients: Clients, name: str) -> Region:
        return cls(name, Layers(clients, name), Parameters(clients, name), Objects(clients, name))


def check_before_any_call(layer: Layer) -> None:
    """Limits moto does not enforce and AWS enforces only after an upload."""
    quota.check(layer.path.name, layer.unzipped, [])
    if len(layer.full_description) > quota.DESCRIPTION_LIMIT:
        raise UserError(
            f"{layer.name}: the Description would have {len(layer.full_description)} "
            f"characters with layerkit's content marker; Lambda allows "
            f"{quota.DESCRIPTION_LIMIT}. Shorten [layer] description."
        )
    if len(layer.license) > quota.LICENSE_LIMIT:
        raise UserError(
            f"{layer.name}: the licence has over {quota.LICENSE_LIMIT} characters (Lambda's limit)."
        )


# Partitions whose Lambda refuses a grant to every AWS account. The isolated (ISO)
# partitions are closed to accounts outside them; aws-cn and aws-us-gov accept public
# layers (vendors publish public GovCloud and China layers), so they are not listed.
PUBLIC_REFUSED = frozenset({"aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f"})


def check_settings(name: str, settings: PublishSettings, regions: list[str]) -> None:
    """What a publish asks for that AWS would refuse, or that would share the layer with
    the world by a typo: said before any API call."""
    partitions = sorted({partition_of(r) for r in regions})
    if len(partitions) > 1:
        spread = ", ".join(f"{r} ({partition_of(r)})" for r in regions)
        raise UserError(
            f"{name}: the regions span partitions ({spread}). Accounts and credentials do "
            "not cross partitions: publish each partition in its own job (--region)."
        )
    if "*" in settings.principals:
        if not settings.public:
            raise UserError(
                f"{name}: principals holds '*', which lets every AWS account in the world "
                "read the layer (its code and its configuration). If that is meant, say so "
                "with public = true under [publish] (or --public); else list account IDs or "
                "an organization. Nothing was published."
            )
        refused = [r for r in regions if partition_of(r) in PUBLIC_REFUSED]
        if refused:
            raise UserError(
                f"{name}: a public grant (principals = ['*']) is refused in "
                f"{', '.join(refused)} ({partition_of(refused[0])}): grant accounts or an "
                "organization there instead. Nothing was published."
            )
    for principal in settings.principals:
        if principal.startswith("arn:") and partitions and principal.split(":")[1] != partitions[0]:
            raise UserError(
                f"{name}: the principal {principal} is in the {principal.split(':')[1]} "
                f"partition, the regions in {partitions[0]}: an account of one partition "
                "cannot use a layer of another. Nothing was published."
            )
    if settings.signing_profile and not re.fullmatch(SIGNING_PROFILE, settings.signing_profile):
        raise UserError(
            f"{name}: {settings.signing_profile!r} is not a Signer profile name (2 to 64 "
            "letters, digits or _): check --signing-profile or LAYERKIT_SIGNING_PROFILE."
        )
    if settings.signing_profile and not settings.s3_bucket:
        raise UserError(
            f"{name}: signing with {settings.signing_profile} needs an S3 bucket (Signer "
            "signs only S3 objects, in a versioned bucket): name one with --s3-bucket, "
            "LAYERKIT_S3_BUCKET or `s3-bucket` under [publish] ({region} is filled in)."
        )


def plan(
    layer: Layer,
    regions: list[str],
    settings: PublishSettings,
    clients: Clients,
    direct_limit: int = quota.DIRECT_UPLOAD_LIMIT,
) -> list[Action]:
    check_before_any_call(layer)
    check_settings(layer.name, settings, regions)

    def one(region: str) -> Action:
        listed = Region.of(clients, region).layers.versions(layer.name)
        existing = _with_content(layer, listed)
        route, s3_location = None, None
        if existing is None:
            route = "direct" if layer.zipped <= direct_limit else "s3"
            if settings.signing_profile:
                route = "signed"  # the signed object, copied to the region's bucket
            if route != "direct":
                if not settings.s3_bucket:
                    raise UserError(
                        f"{layer.path.name} is {quota.mib(layer.zipped)} zipped, over the "
                        f"direct upload limit ({quota.mib(direct_limit)}): it must go through "
                        "S3. Name a bucket: --s3-bucket, LAYERKIT_S3_BUCKET, or `s3-bucket` "
                        "under [publish] ({region} is filled in)."
                    )
                bucket = settings.s3_bucket.format(region=region)
                suffix = ".signed.zip" if route == "signed" else ".zip"
                s3_location = (bucket, f"layerkit/{layer.name}/{layer.sha256}{suffix}")
        parameter = settings.parameter.format(layer=layer.name) if settings.parameter else None
        return Action(
            region, layer.name, existing is None, existing, route, s3_location,
            tuple(grants(settings)), parameter, max((v.arn.version for v in listed), default=0),
            signing_profile=settings.signing_profile if existing is None else None,
        )  # fmt: skip

    with ThreadPoolExecutor(max_workers=max(1, len(regions))) as pool:
        actions = list(pool.map(one, regions))
    return aligned(layer, actions) if settings.align_versions else actions


MAX_FILLERS = 50  # versions published in one run to align the numbers (Powertools' bound)


def aligned(layer: Layer, actions: list[Action]) -> list[Action]:
    """--align-versions: the number the new content lands as in every region, and how many
    filler versions (the same content) each region behind needs first.

    The number is the one the content already has where it is published, else one above
    the highest region's newest. A region already past it cannot be brought back: it is
    published as usual and said so. As Powertools' partition balancer does, at most
    MAX_FILLERS fillers are published in one run."""
    publishing = [a for a in actions if a.publish]
    if not publishing:
        return actions
    already = sorted({LayerArn.parse(a.existing_arn).version for a in actions if a.existing_arn})
    target = already[-1] if already else max(a.newest for a in publishing) + 1
    planned = []
    for a in actions:
        if not a.publish:
            note = None
            if a.existing_arn and LayerArn.parse(a.existing_arn).version != target:
                note = f"has this content as {a.existing_arn}: a published version cannot move"
            planned.append(replace(a, note=note))
        elif a.newest >= target:
            note = (
                f"ahead: its newest version is {a.newest}, past {target}; it cannot be "
                "brought back, so this content lands there with another number"
            )
            planned.append(replace(a, note=note))
        else:
            planned.append(replace(a, target=target, fillers=target - 1 - a.newest))
    total = sum(a.fillers for a in planned)
    if total > MAX_FILLERS:
        spread = ", ".join(f"{a.region}: {a.fillers}" for a in planned if a.fillers)
        raise UserError(
            f"{layer.name}: aligning the version numbers at {target} would publish {total} "
            f"filler versions ({spread}), over {MAX_FILLERS} in one run. Run without "
            "--align-versions, or align the regions in steps; nothing was published."
        )
    return planned


def filler_description(layer: Layer) -> str:
    """A filler carries the content marker (so sync, audit and prune know it as
    layerkit's), changed so that publish never takes it for the content itself."""
    return f"layerkit filler: aligns version numbers across regions {layer.marker[:-1]}:filler]"


def _with_content(layer: Layer, listed: list[LayerVersion]) -> str | None:
    """The newest version of the layer in a listing that holds this content."""
    found = [v.arn for v in listed if v.description.endswith(layer.marker)]
    return str(max(found)) if found else None


def _find_existing(layer: Layer, region: Region) -> str | None:
    """The newest version of the layer in the region with this content, from one listing."""
    return _with_content(layer, region.layers.versions(layer.name))


def execute(
    layer: Layer,
    actions: list[Action],
    clients: Clients,
    *,
    create_bucket: bool = False,
    progress: Callable[[str, int, int], None] = lambda region, done, total: None,
    wait_seconds: float = 300,
    sleep: Callable[[float], None] = time.sleep,
    stale_after: float = STALE_SECONDS,
    signed: Signed | None = None,
) -> list[Outcome]:
    stopping = threading.Event()

    def one(action: Action) -> Outcome:
        outcome = Outcome(action.region, action.layer, PublishStatus.unchanged, action.existing_arn)
        region = Region.of(clients, action.region)
        try:
            if action.publish:
                guard = Guard(
                    region.parameters,
                    f"/layerkit/publishing/{layer.name}/{layer.sha256[:MARKER_LENGTH]}",
                    stale_after,
                )
                arn = _publish_guarded(
                    layer, action, region, create_bucket, progress, wait_seconds, sleep,
                    outcome, guard, stopping, signed,
                )  # fmt: skip
                outcome.arn = arn
            assert outcome.arn is not None
            _converge_grants(outcome.arn, action, region)
            if action.parameter:
                _point(action.parameter, outcome.arn, region)
        except LayerkitError as exc:
            outcome.status, outcome.error = PublishStatus.failed, str(exc)
        return outcome

    pool = ThreadPoolExecutor(max_workers=max(1, len(actions)))
    try:
        futures = [pool.submit(one, action) for action in actions]
        return [future.result() for future in futures]
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM from a CI runner (see cli.app.main)
        stopping.set()  # each region stops at its next step and releases its guard
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class Stopped(LayerkitError):
    """The job was asked to stop (SIGTERM, Ctrl-C) while publishing."""


def _publish_guarded(
    layer: Layer,
    action: Action,
    gateways: Region,
    create_bucket: bool,
    progress: Callable[[str, int, int], None],
    wait_seconds: float,
    sleep: Callable[[float], None],
    outcome: Outcome,
    guard: Guard,
    stopping: threading.Event,
    signed: Signed | None = None,
) -> str:
    region = action.region

    def go_on() -> None:
        if stopping.is_set():
            raise Stopped(
                f"{region}: stopped before publishing {layer.name}; nothing was published."
            )

    deadline = time.monotonic() + wait_seconds
    while not guard.take():
        # Another job is publishing this very content, and refreshing its guard: wait.
        existing = _find_existing(layer, gateways)
        if existing is not None:
            outcome.notes.append("published meanwhile by another job")
            return existing
        if time.monotonic() > deadline:
            raise AWSError(
                f"Another job has been publishing {layer.name} ({layer.marker}) in {region} "
                f"for over {wait_seconds:.0f} s and is still working (its guard under "
                f"{guard.path} is refreshed). Run again when it has finished."
            )
        go_on()
        sleep(2)
    if guard.replaced:
        note = f"took over the guard of a job that stopped ({guard.replaced})"
        log.warning("%s: %s", region, note)
        outcome.notes.append(note)
    with guard.kept():
        existing = _find_existing(layer, gateways)
        if existing is not None:
            outcome.notes.append("published meanwhile by another job")
            return existing
        _check_account(layer, gateways)
        go_on()

        def uploading(region: str, done: int, total: int) -> None:
            go_on()  # an S3 upload stops at its next chunk
            progress(region, done, total)

        content = _upload(layer, action, gateways.objects, create_bucket, uploading, signed)
        go_on()
        if not guard.still_held():
            raise AWSError(
                f"{region}: another job took over the publish guard of {layer.name} while "
                "this one was stalled; it publishes the version, this job does not."
            )
        expected = signed.sha256 if signed else layer.sha256  # Lambda's CodeSha256
        if action.target is not None:
            _fill(layer, action.target, gateways, content, outcome, go_on, expected)
        arn = gateways.layers.publish(
            layer.name, layer.full_description, content, layer.runtimes, layer.architectures,
            layer.license,
        )  # fmt: skip
        outcome.status = PublishStatus.published
        if action.target is not None:
            _check_aligned(layer, arn, action.target, gateways, expected)
        elif signed is not None:
            _check_code(arn, expected, gateways)
        if signed is not None:
            outcome.signing = Signing(signed.profile_version_arn, signed.job_arn, signed.sha256)
        return str(arn)


def _fill(
    layer: Layer,
    target: int,
    gateways: Region,
    content: LayerCode,
    outcome: Outcome,
    go_on: Callable[[], None],
    expected: str,
) -> None:
    """Publish the same content as fillers until the region's newest is target - 1. Before
    each, the newest must be the one before it; after each, the number and CodeSha256
    must be the expected ones: anything else is another publisher, and the region stops."""
    while True:
        newest = max((v.arn.version for v in gateways.layers.versions(layer.name)), default=0)
        if newest == target - 1:
            return
        if newest >= target:
            raise AWSError(
                f"{gateways.name}: {layer.name} reached version {newest} while aligning at "
                f"{target}: another publish came in between. Nothing more was published; "
                "run again to align at a new number."
            )
        go_on()
        arn = gateways.layers.publish(
            layer.name, filler_description(layer), content, layer.runtimes,
            layer.architectures, layer.license,
        )  # fmt: skip
        _check_aligned(layer, arn, newest + 1, gateways, expected)
        outcome.notes.append(f"filler {arn}")


def _check_aligned(
    layer: Layer, arn: LayerArn, number: int, gateways: Region, expected: str
) -> None:
    if arn.version != number:
        raise AWSError(
            f"{gateways.name}: {layer.name} was published as version {arn.version}, not "
            f"{number}: another publish came in between. Run again to align at a new number."
        )
    _check_code(arn, expected, gateways)


def _check_code(arn: LayerArn, expected: str, gateways: Region) -> None:
    """The published version holds the bytes sent (the ZIP, or its signed copy)."""
    sha256 = gateways.layers.content(arn).sha256
    if sha256 != expected:
        raise AWSError(f"{gateways.name}: {arn} has CodeSha256 {sha256}, not {expected}.")


def _check_account(layer: Layer, gateways: Region) -> None:
    """The account's live limits and remaining code storage, before any upload."""
    region = gateways.name
    limits = gateways.layers.limits()
    if limits is None:
        log.warning("%s: cannot read the account's Lambda limits; using AWS's defaults", region)
        return
    if layer.unzipped > limits.unzipped:
        raise QuotaError(
            f"{layer.name} is {layer.unzipped:,} bytes unzipped; the account in {region} allows "
            f"{limits.unzipped:,} for a function and its layers."
        )
    total, used = limits.storage_total, limits.storage_used
    if total is not None and used is not None and layer.zipped > total - used:
        raise QuotaError(
            f"{layer.name} ({layer.zipped:,} bytes zipped) does not fit the code storage left "
            f"in {region}: {total - used:,} of {total:,} bytes. Delete unused "
            "versions (layerkit prune) or ask AWS to raise the quota."
        )


def _upload(
    layer: Layer,
    action: Action,
    objects: Objects,
    create_bucket: bool,
    progress: Callable[[str, int, int], None],
    signed: Signed | None = None,
) -> LayerCode:
    if action.route == "direct":
        return LayerCode(zip_bytes=layer.path.read_bytes())
    assert action.s3_location is not None
    bucket, key = action.s3_location
    objects.ensure_bucket(bucket, create_bucket)
    if action.route == "signed":
        assert signed is not None, "a signed route is executed with the signed object"
        if (bucket, key) != (signed.bucket, signed.key) and objects.size(
            bucket, key
        ) != signed.size:
            objects.copy_from((signed.bucket, signed.key), bucket, key)
        return LayerCode(s3=(bucket, key))
    if objects.size(bucket, key) != layer.zipped:
        # The key is the content's hash: a retry reuses an earlier upload.
        sent = 0

        def advance(count: int) -> None:
            nonlocal sent
            sent += count
            progress(action.region, sent, layer.zipped)

        objects.upload(layer.path, bucket, key, advance)
    return LayerCode(s3=(bucket, key))


def _converge_grants(arn: str, action: Action, region: Region) -> None:
    """Make the version's policy hold exactly the recipe's grants."""
    layers, version = region.layers, LayerArn.parse(arn)
    present = layers.statement_ids(version)
    wanted = {g.statement_id: g for g in action.grants}
    for sid in sorted(present - set(wanted)):
        layers.revoke(version, sid)
    for sid in sorted(set(wanted) - present):
        layers.grant(version, sid, wanted[sid].principal, wanted[sid].organization)


def _point(parameter: str, arn: str, region: Region) -> None:
    """Point the SSM parameter at the version ARN, writing only when it changes."""
    if region.parameters.get(parameter) != arn:
        region.parameters.put(parameter, arn)


def versions_published(layer: Layer, outcomes: list[Outcome], cwd: Path) -> list[Version]:
    """Registry rows for the versions this publish created or found."""
    rows = []
    commit = git_commit(cwd)
    for outcome in outcomes:
        if outcome.arn is None:
            continue
        arn = LayerArn.parse(outcome.arn)
        rows.append(
            Version(
                arn=outcome.arn,
                layer=layer.name,
                region=outcome.region,
                account=arn.account,
                version=arn.version,
                sha256=layer.sha256,
                size=layer.zipped,
                description=layer.full_description,
                runtimes=layer.runtimes,
                architectures=layer.architectures,
                created=now(),
                manifest=layer.manifest,
                by=who(),
                git_commit=commit,
                signing=outcome.signing,
            )
        )
    return rows


def layer_from_zip(path: Path) -> Layer:
    """A built ZIP and what its manifest says about it; built by layerkit or refused."""
    from layerkit.layer import manifest

    with open_zip(path) as zipped:
        found = manifest.read_from(zipped)
        unzipped = sum(i.file_size for i in zipped.infolist())
    if found is None or not found.artifact:
        raise UserError(
            f"{path} has no layerkit manifest naming its layer: publish ZIPs made by "
            "`layerkit build`, or publish the recipe."
        )
    return Layer(
        name=found.artifact,
        path=path,
        sha256=sha256_of(path),
        unzipped=unzipped,
        zipped=path.stat().st_size,
        runtimes=found.runtimes,
        architectures=found.architectures,
        description=found.description,
        license=found.license,
        manifest=found,
    )


@dataclass
class Run:
    """What `layerkit publish` did: the plan per layer, and with no dry run, the outcomes."""

    plans: list[tuple[Layer, list[Action]]]
    outcomes: list[Outcome]
    api_calls: dict[str, int]

    @property
    def failed(self) -> bool:
        return any(o.status == PublishStatus.failed for o in self.outcomes)


def run(
    work: list[tuple[Layer, PublishSettings]],
    *,
    clients: Clients,
    regions: list[str] | None,
    dry_run: bool,
    create_bucket: bool,
    registry: Registry,
    stale_after: float = STALE_SECONDS,
    direct_limit: int = quota.DIRECT_UPLOAD_LIMIT,
    signing_wait: float = 600,
) -> Run:
    """Publish built layers, each with its recipe's settings: plan every layer in every
    region (and check its signing profile), then unless dry_run sign what must be signed,
    carry the plans out and record them. Signing comes first for every layer: a job that
    fails leaves nothing published."""
    plans, signing_in = [], []
    profiles: dict[tuple[str, str], SigningProfile] = {}
    for layer, settings in work:
        where = regions_for(regions, settings.regions, clients)
        actions = plan(layer, where, settings, clients, direct_limit)
        plans.append((layer, actions))
        needed = settings.signing_profile and any(a.publish for a in actions)
        if needed and settings.signing_profile:
            key = (settings.signing_profile, where[0])  # Signer profiles are regional
            if key not in profiles:
                profiles[key] = signing.checked_profile(*key, clients=clients)
            signing_in.append((layer, settings, where[0], profiles[key]))
    outcomes: list[Outcome] = []
    if not dry_run:
        signed = {
            layer.name: signing.sign_zip(
                layer.path,
                f"layerkit/{layer.name}/{layer.sha256}.zip",
                str(settings.s3_bucket).format(region=region),
                region,
                profile,
                clients,
                create_bucket=create_bucket,
                wait_seconds=signing_wait,
            )
            for layer, settings, region, profile in signing_in
        }
        for layer, actions in plans:
            done = execute(
                layer, actions, clients, create_bucket=create_bucket, stale_after=stale_after,
                signed=signed.get(layer.name),
            )  # fmt: skip
            registry.record_versions(versions_published(layer, done, Path.cwd()))
            outcomes += done
    return Run(plans, outcomes, clients.calls)


def regions_for(flags: list[str] | None, recipe: tuple[str, ...], clients: Clients) -> list[str]:
    """--region, else the recipe's regions, else the session's region."""
    found = cascade(flag=flags, recipe=list(recipe))
    if found:
        return found
    default = clients.default_region()
    if default is None:
        raise CredentialsError(
            "No AWS region: pass --region, set AWS_REGION, or list `regions` under [publish]."
        )
    return [default]
