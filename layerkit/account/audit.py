"""`layerkit audit`: which functions use which layer versions, and what is wrong with that.

The scans (scan.py) are read once; `report` turns them, with what the registry knows and
what was found inside the layers (package matches, known vulnerabilities), into one
`Report`, built complete and never changed after. Every row is a frozen dataclass; the
command line makes JSON, CSV and tables of them.
"""

from __future__ import annotations

import datetime
import io
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from packaging.requirements import Requirement

from layerkit import log, osv
from layerkit.account import attach
from layerkit.account.attach import Finding
from layerkit.account.clients import Clients
from layerkit.account.gateways import Account, Layers
from layerkit.account.model import LayerArn, account_of
from layerkit.account.scan import InventoryNote, Scan, Scope, api_calls, code_signing_of
from layerkit.errors import AWSError, UserError
from layerkit.http import Client, HttpError, Mismatch
from layerkit.layer.manifest import LayerManifest
from layerkit.layer.metadata import distributions_in
from layerkit.names import canonical
from layerkit.quota import LAYERS_PER_FUNCTION, UNZIPPED_LIMIT, WARN_FRACTION
from layerkit.registry import Registry, recorded

Contents = Callable[[str], list[tuple[str, str]] | None]  # layer version ARN -> (name, version)


class Status(str, Enum):
    """A reference's standing against the owner's layer versions."""

    current = "current"
    outdated = "outdated"  # a newer version of the layer exists
    deleted = "deleted"  # the version no longer exists (it still works where attached)
    foreign = "foreign"  # another account's layer: its versions cannot be listed


@dataclass(frozen=True)
class Reference:
    """One function version using one layer version."""

    account: str
    region: str
    function: str
    version: str  # the function version: $LATEST or a number
    layer: str
    owner: str  # the layer's account
    layer_version: int
    arn: str
    status: Status
    behind: int = 0  # versions behind the newest, when outdated
    latest: int | None = None  # the newest version, when outdated
    managed_by: str | None = None  # the function's stack or owner tag: change it there


@dataclass(frozen=True)
class Unused:
    account: str
    region: str
    layer: str
    version: int
    arn: str
    size: int  # zipped: the code storage it takes


@dataclass(frozen=True)
class NearLayerLimit:
    account: str
    region: str
    function: str  # name:version
    layers: int


@dataclass(frozen=True)
class Oversize:
    account: str
    region: str
    function: str  # name:version
    layers_unzipped: int  # the known layers' unzipped bytes
    over: bool  # over Lambda's limit on the layers alone
    unknown_layers: tuple[str, ...]  # layers whose size is not known
    note: str = "the function's own unzipped code is not known from the API"


@dataclass(frozen=True)
class ScanFailure:
    account: str
    region: str
    error: str


@dataclass(frozen=True)
class PackageMatch:
    reference: Reference
    package: str
    package_version: str


@dataclass(frozen=True)
class Use:
    """A function version using a layer version (for a vulnerability)."""

    function: str
    qualifier: str
    region: str
    account: str
    layer: str


@dataclass(frozen=True)
class Vulnerable:
    advisory: osv.Advisory
    package: str
    version: str
    layers: tuple[str, ...]
    functions: tuple[Use, ...]


@dataclass(frozen=True)
class Exposed:
    """A layer version of a scanned account that someone outside may read."""

    account: str
    region: str
    arn: str
    statement: str  # the policy statement's Sid
    principal: str
    reason: str


@dataclass(frozen=True)
class Organization:
    """With --organization: which accounts are inside, and the organization's ID."""

    id: str
    accounts: frozenset[str]


def exposed(scans: Sequence[Scan], organization: Organization | None) -> list[Exposed]:
    """Own layer versions whose policy grants `*` (every AWS account), or with
    --organization, an account or organization outside it; with the statement that does."""
    found = []
    for s in scans:
        for arn, statements in sorted(s.policies.items()):
            for statement in statements:
                if not statement.allows:
                    continue
                principal, org = statement.principal, statement.organization
                reason = None
                if principal == "*" and org is None:
                    reason = "granted to every AWS account (principal *, no organization)"
                elif organization is not None and principal == "*" and org != organization.id:
                    reason = f"granted to organization {org}, not {organization.id}"
                elif organization is not None and principal != "*":
                    account = account_of(principal) if principal.startswith("arn:") else principal
                    if account not in organization.accounts:
                        reason = f"granted to account {account}, outside {organization.id}"
                if reason:
                    found.append(
                        Exposed(s.account, s.region, arn, statement.sid, principal, reason)
                    )
    return found


@dataclass(frozen=True)
class Report:
    references: tuple[Reference, ...]
    unused: tuple[Unused, ...]
    foreign: Mapping[str, tuple[str, ...]]  # account -> its layer versions in use
    layer_limit: tuple[NearLayerLimit, ...]
    oversize: tuple[Oversize, ...]
    failures: tuple[ScanFailure, ...]
    findings: tuple[Finding, ...] = ()  # attach-time: see attach.py
    matches: tuple[PackageMatch, ...] = ()  # with --package
    vulnerable: tuple[Vulnerable, ...] = ()  # with --vulnerabilities
    exposed: tuple[Exposed, ...] = ()
    inventory: InventoryNote | None = None  # with --config-aggregator

    @property
    def outdated(self) -> list[Reference]:
        return [r for r in self.references if r.status == Status.outdated]

    @property
    def deleted(self) -> list[Reference]:
        return [r for r in self.references if r.status == Status.deleted]

    def of_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def found(self, gate: str) -> bool:
        """Whether the report holds what the --fail-on gate `gate` looks for."""
        if gate == "outdated":
            return bool(self.outdated)
        if gate == "deleted":
            return bool(self.deleted)
        if gate == "oversize":
            return any(o.over for o in self.oversize)
        if gate == "vulnerable":
            return bool(self.vulnerable)
        if gate == "exposed":
            return bool(self.exposed)
        return bool(self.of_kind(gate))


def references(scans: Sequence[Scan]) -> list[Reference]:
    """Every (function version, layer version) pair of the scans, with its standing."""
    own = {
        (s.account, s.region, name): versions for s in scans for name, versions in s.layers.items()
    }
    scanned_accounts = {s.account for s in scans if s.error is None}
    found = []
    for s in scans:
        for fn in s.functions:
            for arn in fn.layers:
                parsed = LayerArn.parse(arn)
                versions = own.get((parsed.account, parsed.region, parsed.layer))
                status, behind, latest = Status.current, 0, None
                if parsed.account not in scanned_accounts:
                    status = Status.foreign
                elif versions is None or parsed.version not in versions:
                    status = Status.deleted
                elif parsed.version < max(versions):
                    status, latest = Status.outdated, max(versions)
                    behind = latest - parsed.version
                found.append(
                    Reference(
                        fn.account, fn.region, fn.name, fn.version, parsed.layer,
                        parsed.account, parsed.version, arn, status, behind, latest,
                        s.owners.get(fn.name),
                    )
                )  # fmt: skip
    return found


def unused_versions(scans: Sequence[Scan]) -> list[LayerArn]:
    """The scanned accounts' own layer versions that no scanned function version uses."""
    used = {arn for s in scans for fn in s.functions for arn in fn.layers}
    return [
        arn
        for s in sorted(scans, key=lambda s: (s.account, s.region))
        for name, versions in sorted(s.layers.items())
        for arn in (LayerArn(s.region, s.account, name, v) for v in versions)
        if str(arn) not in used
    ]


def report(
    scans: Sequence[Scan],
    unzipped: Mapping[str, int],
    manifests: Mapping[str, LayerManifest] | None = None,
    today: datetime.date | None = None,
    *,
    sizes: Mapping[str, int] | None = None,
    matches: Sequence[PackageMatch] = (),
    vulnerable: Sequence[Vulnerable] = (),
    organization: Organization | None = None,
    inventory: InventoryNote | None = None,
) -> Report:
    """Everything the audit tells, from the scans and what else was read. `unzipped`:
    layer version ARN -> unzipped bytes, and `manifests`, known from layerkit's manifests
    (other layers are judged by what Lambda says of them); `sizes`: the zipped size of
    unused versions."""
    refs = references(scans)
    foreign: dict[str, set[str]] = {}
    for r in refs:
        if r.status == Status.foreign:
            foreign.setdefault(r.owner, set()).add(r.arn)
    layer_limit, oversize = [], []
    for s in scans:
        for fn in s.functions:
            if len(fn.layers) >= LAYERS_PER_FUNCTION - 1:
                layer_limit.append(NearLayerLimit(fn.account, fn.region, fn.label, len(fn.layers)))
            total = sum(unzipped[a] for a in fn.layers if a in unzipped)
            if total >= WARN_FRACTION * UNZIPPED_LIMIT:
                unknown = tuple(a for a in fn.layers if a not in unzipped)
                oversize.append(
                    Oversize(fn.account, fn.region, fn.label, total, total >= UNZIPPED_LIMIT,
                             unknown)
                )  # fmt: skip
    unused = tuple(
        Unused(arn.account, arn.region, arn.layer, arn.version, str(arn),
               (sizes or {}).get(str(arn), 0))
        for arn in unused_versions(scans)
    )  # fmt: skip
    declared = {arn: v for s in scans for arn, v in s.declared.items()}
    serving: dict[tuple[str, str, str], tuple[str, ...]] = {}
    for s in scans:
        for alias in s.aliases:
            for version in (alias.version, *(v for v, _ in alias.weights)):
                key = (s.region, alias.function, version)
                serving[key] = (*serving.get(key, ()), alias.name)
    findings = attach.findings(
        [fn for s in scans for fn in s.functions], serving, declared, manifests or {},
        today or datetime.date.today(), code_signing_of(list(scans)),
    )  # fmt: skip
    return Report(
        references=tuple(refs),
        unused=unused,
        foreign={owner: tuple(sorted(arns)) for owner, arns in sorted(foreign.items())},
        layer_limit=tuple(layer_limit),
        oversize=tuple(oversize),
        failures=tuple(ScanFailure(s.account, s.region, s.error) for s in scans if s.error),
        findings=tuple(findings),
        matches=tuple(matches),
        vulnerable=tuple(vulnerable),
        exposed=tuple(exposed(scans, organization)),
        inventory=inventory,
    )


def storage(
    versions: Sequence[LayerArn], accounts: dict[str, Clients], known: Mapping[str, int]
) -> dict[str, int]:
    """The code storage each version takes: from the registry, else GetLayerVersion."""
    sizes = {}
    for arn in versions:
        size = known.get(str(arn))
        if size is None:
            size = Layers(accounts[arn.account], arn.region).content(arn).size
        sizes[str(arn)] = size
    return sizes


def distributions_of(zip_bytes: bytes) -> list[tuple[str, str]]:
    """(name, version) of every *.dist-info in a layer ZIP, read without extracting it."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as layer:
        return [(meta.name, meta.version) for _, meta in distributions_in(layer)]


def package_matches(
    refs: Sequence[Reference], requirement: str, contents: Contents
) -> list[PackageMatch]:
    """References whose layer ships a distribution matching e.g. "urllib3<2.2.2"."""
    wanted = Requirement(requirement)
    key = canonical(wanted.name)
    cache: dict[str, list[tuple[str, str]] | None] = {}
    matches = []
    for ref in refs:
        if ref.arn not in cache:
            cache[ref.arn] = contents(ref.arn)
        for name, version in cache[ref.arn] or ():
            if canonical(name) == key and wanted.specifier.contains(version, prereleases=True):
                matches.append(PackageMatch(ref, name, version))
    return matches


def layer_contents(
    accounts: dict[str, Clients], manifests: Mapping[str, LayerManifest], cache_root: Path
) -> Contents:
    """What a layer version ships: its manifest when layerkit built it, else its ZIP,
    downloaded once and kept by CodeSha256."""
    any_clients = next(iter(accounts.values()))
    http = Client()

    def contents(arn: str) -> list[tuple[str, str]] | None:
        if arn in manifests:
            return [(d.name, d.version) for d in manifests[arn].distributions().values()]
        version = LayerArn.parse(arn)
        layers = Layers(accounts.get(version.account) or any_clients, version.region)
        try:
            content = layers.content(version, own=False)
        except AWSError as exc:
            log.warning("cannot read %s: %s", arn, exc)
            return None
        cached = cache_root / "layers" / f"{content.sha256}.zip"
        if not cached.exists():
            location = content.location
            if not location.startswith(("https://", "http://")):
                log.warning("cannot download %s (no URL from Lambda)", arn)
                return None
            try:  # CodeSha256 is the ZIP's: a download that does not match is not kept
                http.download(location, cached, content.sha256)
            except (HttpError, Mismatch) as exc:
                log.warning("cannot download %s: %s", arn, exc)
                return None
        return distributions_of(cached.read_bytes())

    return contents


def vulnerable(
    refs: Sequence[Reference], contents: Contents, source: osv.Source
) -> list[Vulnerable]:
    """Per advisory and affected distribution: the layer versions in use that ship it and
    the functions (name, qualifier, region, account) that use them."""
    shipping: dict[str, set[osv.Package]] = {}
    for arn in sorted({r.arn for r in refs}):
        found = contents(arn)
        if found is not None:
            shipping[arn] = {(canonical(n), v) for n, v in found}
    advisories = source.advisories(set().union(*shipping.values()) if shipping else ())
    layers: dict[tuple[str, str, str], list[str]] = {}
    uses: dict[tuple[str, str, str], list[Use]] = {}
    by_id: dict[tuple[str, str, str], osv.Advisory] = {}
    for arn, packages in shipping.items():
        for package in sorted(packages & advisories.keys()):
            for advisory in advisories[package]:
                key = (advisory.id, *package)
                by_id[key] = advisory
                layers.setdefault(key, []).append(arn)
                uses.setdefault(key, []).extend(
                    Use(r.function, r.version, r.region, r.account, arn)
                    for r in refs
                    if r.arn == arn
                )
    return [
        Vulnerable(by_id[key], key[1], key[2], tuple(layers[key]), tuple(uses[key]))
        for key in sorted(by_id)
    ]


# The command, as the CLI runs it


GATES = ("outdated", "deleted", "oversize", *attach.KINDS, "vulnerable", "exposed")


@dataclass(frozen=True)
class Audit:
    report: Report
    gated: list[str]  # the --fail-on gates that found something
    api_calls: dict[str, int]


def gates(text: str | None) -> set[str]:
    found = {g.strip() for g in (text or "").split(",") if g.strip()}
    unknown = found - set(GATES)
    if unknown:
        raise UserError(f"--fail-on: unknown {', '.join(sorted(unknown))}; use {', '.join(GATES)}.")
    return found


def run(
    scope: Scope,
    registry: Registry,
    cache_root: Path,
    package: str | None,
    fail_on: set[str],
    today: datetime.date | None = None,
    vulnerabilities: osv.Source | None = None,
) -> Audit:
    """`layerkit audit`: scan, the storage of unused versions, the package view, and, given
    an OSV source, the known vulnerabilities of every layer version in use; one report."""
    note = None
    if scope.aggregator:
        accounts, scans, note = replace(scope, policies=True).inventory()
    else:
        accounts, scans = replace(scope, policies=True).scan()
    organization = None
    if scope.organization:
        base = next(iter(accounts.values()))  # the credentials' own account comes first
        organization = Organization(Account(base).organization_id(), frozenset(accounts))
    known = recorded(registry.versions())
    refs = references(scans)
    contents = layer_contents(accounts, known.manifests, cache_root)
    rep = report(
        scans, known.unzipped, known.manifests, today,
        sizes=storage(unused_versions(scans), accounts, known.zipped),
        matches=package_matches(refs, package, contents) if package else (),
        vulnerable=vulnerable(refs, contents, vulnerabilities) if vulnerabilities else (),
        organization=organization, inventory=note,
    )  # fmt: skip
    return Audit(rep, [gate for gate in sorted(fail_on) if rep.found(gate)], api_calls(accounts))
