"""`layerkit audit`, `rollout` and `prune`: which functions use which layer versions.

A scan reads, per account and region, every function configuration with one paginated
`ListFunctions(FunctionVersion=ALL)` (each published version included, with its Layers)
and the account's own layers with `ListLayers`/`ListLayerVersions`: no call per
function. Accounts and regions are scanned concurrently, with a bound; one that fails
is reported and the rest go on. The report is a pure function of the scans.
"""

from __future__ import annotations

import datetime
import io
import logging
import zipfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from layerkit import osv
from layerkit.account import attach
from layerkit.account.attach import Finding
from layerkit.account.clients import Clients
from layerkit.account.gateways import (
    Account,
    Alias,
    Functions,
    FunctionVersion,
    LayerArn,
    Layers,
    LayerVersion,
)
from layerkit.errors import AWSError, LayerkitError, UserError
from layerkit.http import Client, HttpError, Mismatch
from layerkit.layer.manifest import LayerManifest
from layerkit.layer.metadata import parse_metadata
from layerkit.quota import LAYERS_PER_FUNCTION, UNZIPPED_LIMIT, WARN_FRACTION
from layerkit.registry import Registry, Version

log = logging.getLogger("layerkit")

MAX_WORKERS = 8


def parse_arn(arn: str) -> tuple[str, str, str, int]:
    """(region, account, layer name, version) of a layer version ARN."""
    parsed = LayerArn.parse(arn)
    return parsed.region, parsed.account, parsed.layer, parsed.version


@dataclass
class Scan:
    account: str
    region: str
    functions: list[FunctionVersion] = field(default_factory=list)
    layers: dict[str, list[int]] = field(default_factory=dict)  # own layer -> versions
    error: str | None = None
    aliases: list[Alias] = field(default_factory=list)
    declared: dict[str, LayerVersion] = field(default_factory=dict)  # own versions by ARN


def scan_region(clients: Clients, account: str, region: str) -> Scan:
    scan = Scan(account, region)
    try:
        functions = Functions(clients, account, region)
        scan.functions = functions.every_version()
        # Aliases point at published versions: only functions that have some can have one
        # that matters ($LATEST's aliases see what $LATEST sees).
        published = sorted({fn.name for fn in scan.functions if fn.version != "$LATEST"})
        scan.aliases = [alias for name in published for alias in functions.aliases(name)]
        for name, versions in Layers(clients, region).everything(f"{account} {region}").items():
            scan.layers[name] = sorted(v.arn.version for v in versions)
            scan.declared.update((str(v.arn), v) for v in versions)
    except LayerkitError as exc:
        scan.error = str(exc)
    return scan


def scan(accounts: dict[str, Clients], regions: list[str]) -> list[Scan]:
    jobs = [
        (account, clients, region) for account, clients in accounts.items() for region in regions
    ]
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, max(1, len(jobs)))) as pool:
        return list(pool.map(lambda job: scan_region(job[1], job[0], job[2]), jobs))


def accounts_to_scan(
    profile: str | None, role_arns: list[str] | None, organization: bool, role_name: str
) -> dict[str, Clients]:
    """Account ID -> its clients: the current credentials' account, the accounts of the
    given roles, and with `organization` every active account of the AWS Organization,
    through `role_name`."""
    base = Clients(profile=profile)
    accounts = {base.account(): base}
    arns = list(role_arns or [])
    if organization:
        ids = Account(base).organization_accounts()
        arns += [f"arn:aws:iam::{i}:role/{role_name}" for i in ids if i not in accounts]
    for arn in arns:
        accounts[arn.split(":")[4]] = Clients(profile=profile, role_arn=arn)
    return accounts


def regions_to_scan(flags: list[str] | None, clients: Clients) -> list[str]:
    """The regions asked for, else every region enabled for the account."""
    if flags:
        return flags
    return Account(clients).regions()


@dataclass
class Report:
    references: list[dict[str, Any]]
    outdated: list[dict[str, Any]]
    deleted: list[dict[str, Any]]
    unused: list[dict[str, Any]]
    foreign: dict[str, list[str]]
    layer_limit: list[dict[str, Any]]
    oversize: list[dict[str, Any]]
    failures: list[dict[str, str]]
    matches: list[dict[str, Any]] = field(default_factory=list)
    vulnerable: list[dict[str, Any]] = field(default_factory=list)  # with --vulnerabilities
    findings: list[Finding] = field(default_factory=list)  # attach-time: see attach.py

    def of_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "findings"}
        for kind in attach.KINDS:
            data[kind] = [f.to_json() for f in self.of_kind(kind)]
        return data


def report(
    scans: list[Scan],
    unzipped: dict[str, int],
    manifests: Mapping[str, LayerManifest] | None = None,
    today: datetime.date | None = None,
) -> Report:
    """Everything the audit tells, from the scans alone. `unzipped`: layer version ARN ->
    unzipped bytes, and `manifests`, known from layerkit's manifests (other layers are
    judged by what Lambda says of them)."""
    own = {
        (s.account, s.region, name): versions for s in scans for name, versions in s.layers.items()
    }
    scanned_accounts = {s.account for s in scans if s.error is None}
    references, outdated, deleted = [], [], []
    foreign: dict[str, set[str]] = {}
    used: set[str] = set()
    layer_limit, oversize = [], []
    for s in scans:
        for fn in s.functions:
            for arn in fn.layers:
                region, owner, name, number = parse_arn(arn)
                used.add(arn)
                row = {
                    "account": fn.account, "region": fn.region, "function": fn.name,
                    "version": fn.version, "layer": name, "owner": owner,
                    "layer_version": number, "arn": arn, "status": "current", "behind": 0,
                }  # fmt: skip
                versions = own.get((owner, region, name))
                if owner not in scanned_accounts:
                    row["status"] = "foreign"
                    foreign.setdefault(owner, set()).add(arn)
                elif versions is None or number not in versions:
                    row["status"] = "deleted"
                    deleted.append(row)
                elif number < max(versions):
                    row["status"], row["behind"] = "outdated", max(versions) - number
                    row["latest"] = max(versions)
                    outdated.append(row)
                references.append(row)
            entry = {"account": fn.account, "region": fn.region, "function": fn.label}
            if len(fn.layers) >= LAYERS_PER_FUNCTION - 1:
                layer_limit.append({**entry, "layers": len(fn.layers)})
            known = [unzipped[a] for a in fn.layers if a in unzipped]
            unknown = [a for a in fn.layers if a not in unzipped]
            total = sum(known)
            if total >= WARN_FRACTION * UNZIPPED_LIMIT:
                oversize.append(
                    {**entry, "layers_unzipped": total, "over": total >= UNZIPPED_LIMIT,
                     "unknown_layers": unknown,
                     "note": "the function's own unzipped code is not known from the API"}
                )  # fmt: skip
    unused = [
        {"account": account, "region": region, "layer": name, "version": v,
         "arn": f"arn:aws:lambda:{region}:{account}:layer:{name}:{v}"}
        for (account, region, name), versions in sorted(own.items())
        for v in versions
        if f"arn:aws:lambda:{region}:{account}:layer:{name}:{v}" not in used
    ]  # fmt: skip
    failures = [
        {"account": s.account, "region": s.region, "error": s.error} for s in scans if s.error
    ]
    declared = {arn: v for s in scans for arn, v in s.declared.items()}
    serving: dict[tuple[str, str, str], tuple[str, ...]] = {}
    for s in scans:
        for alias in s.aliases:
            for version in (alias.version, *(v for v, _ in alias.weights)):
                key = (s.region, alias.function, version)
                serving[key] = (*serving.get(key, ()), alias.name)
    findings = attach.findings(
        [fn for s in scans for fn in s.functions], serving, declared, manifests or {},
        today or datetime.date.today(),
    )  # fmt: skip
    return Report(
        references, outdated, deleted, unused,
        {owner: sorted(arns) for owner, arns in sorted(foreign.items())},
        layer_limit, oversize, failures, findings=findings,
    )  # fmt: skip


def add_storage(
    rows: list[dict[str, Any]], accounts: dict[str, Clients], sizes: dict[str, int]
) -> None:
    """The code storage each version takes: from the registry, else GetLayerVersion."""
    for row in rows:
        if row["arn"] in sizes:
            row["size"] = sizes[row["arn"]]
            continue
        layers = Layers(accounts[row["account"]], row["region"])
        row["size"] = layers.content(LayerArn.parse(row["arn"])).size


def distributions_of(zip_bytes: bytes) -> list[tuple[str, str]]:
    """(name, version) of every *.dist-info in a layer ZIP, read without extracting it."""
    found = []
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as layer:
        for name in layer.namelist():
            if name.endswith(".dist-info/METADATA") and ".." not in name.split("/"):
                meta = parse_metadata(layer.read(name).decode("utf-8", "replace"))
                found.append((meta.name, meta.version))
    return found


def package_matches(
    rep: Report,
    requirement: str,
    contents: Callable[[str], list[tuple[str, str]] | None],
) -> list[dict[str, Any]]:
    """References whose layer ships a distribution matching e.g. "urllib3<2.2.2"."""
    wanted = Requirement(requirement)
    key = canonicalize_name(wanted.name)
    cache: dict[str, list[tuple[str, str]] | None] = {}
    matches = []
    for row in rep.references:
        if row["arn"] not in cache:
            cache[row["arn"]] = contents(row["arn"])
        found = cache[row["arn"]]
        if found is None:
            continue
        for name, version in found:
            if canonicalize_name(name) == key and wanted.specifier.contains(
                version, prereleases=True
            ):
                matches.append({**row, "package": name, "package_version": version})
    return matches


def layer_contents(
    accounts: dict[str, Clients], manifests: dict[str, LayerManifest], cache_root: Path
) -> Callable[[str], list[tuple[str, str]] | None]:
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
    rep: Report, contents: Callable[[str], list[tuple[str, str]] | None], source: osv.Source
) -> list[dict[str, Any]]:
    """Per advisory and affected distribution: the layer versions in use that ship it and
    the functions (name, qualifier, region, account) that use them."""
    shipping: dict[str, set[osv.Package]] = {}
    for arn in sorted({row["arn"] for row in rep.references}):
        found = contents(arn)
        if found is not None:
            shipping[arn] = {(canonicalize_name(n), v) for n, v in found}
    advisories = source.advisories(set().union(*shipping.values()) if shipping else ())
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for arn, packages in shipping.items():
        for package in sorted(packages & advisories.keys()):
            for advisory in advisories[package]:
                row = rows.setdefault(
                    (advisory.id, *package),
                    {**advisory.to_json(), "package": package[0], "version": package[1],
                     "layers": [], "functions": []},
                )  # fmt: skip
                row["layers"].append(arn)
                row["functions"] += [
                    {"function": r["function"], "qualifier": r["version"],
                     "region": r["region"], "account": r["account"], "layer": arn}
                    for r in rep.references if r["arn"] == arn
                ]  # fmt: skip
    return [rows[key] for key in sorted(rows)]


# Prune


def plan_prune(versions: list[int], referenced: set[int], keep: int) -> list[int]:
    """Versions safe to delete: never one of the newest `keep`, never a referenced one."""
    newest = set(sorted(versions, reverse=True)[:keep])
    return sorted(v for v in versions if v not in newest and v not in referenced)


def prune_candidates(scans: list[Scan], layer: str, keep: int) -> list[dict[str, Any]]:
    """What `prune` would delete. Refused when any scan failed: an account or region that
    could not be read may hold the only reference to a version."""
    failed = [f"{s.account} {s.region}" for s in scans if s.error]
    if failed:
        raise UserError(
            f"Cannot prune {layer}: {', '.join(failed)} could not be scanned, and a function "
            "there may use any version. Fix access, or scan fewer regions (--region)."
        )
    # A version is referenced by its ARN, from any scanned account or region.
    used = {arn for s in scans for fn in s.functions for arn in fn.layers}
    rows = []
    for s in scans:
        versions = s.layers.get(layer, [])
        prefix = f"arn:aws:lambda:{s.region}:{s.account}:layer:{layer}:"
        referenced = {v for v in versions if f"{prefix}{v}" in used}
        for v in plan_prune(versions, referenced, keep):
            rows.append({"account": s.account, "region": s.region, "layer": layer,
                         "version": v, "arn": f"{prefix}{v}"})  # fmt: skip
    return rows


def apply_prune(rows: list[dict[str, Any]], accounts: dict[str, Clients]) -> None:
    for row in rows:
        Layers(accounts[row["account"]], row["region"]).delete(LayerArn.parse(row["arn"]))


def known_sizes(
    versions: list[Version],
) -> tuple[dict[str, int], dict[str, int], dict[str, LayerManifest]]:
    """From the registry: zipped size, unzipped size and manifest per layer version ARN."""
    zipped = {v.arn: v.size for v in versions if v.size is not None}
    unzipped = {
        v.arn: v.manifest.unzipped_bytes
        for v in versions
        if v.manifest and v.manifest.unzipped_bytes is not None
    }
    manifests = {v.arn: v.manifest for v in versions if v.manifest}
    return zipped, unzipped, manifests


# The commands, as the CLI runs them


GATES = ("outdated", "deleted", "oversize", *attach.KINDS, "vulnerable")


@dataclass(frozen=True)
class Scope:
    """Which accounts and regions a command scans."""

    profile: str | None = None
    role_arns: tuple[str, ...] = ()
    organization: bool = False
    role_name: str = "OrganizationAccountAccessRole"
    regions: tuple[str, ...] = ()

    def scan(self) -> tuple[dict[str, Clients], list[Scan]]:
        accounts = accounts_to_scan(
            self.profile, list(self.role_arns), self.organization, self.role_name
        )
        regions = regions_to_scan(list(self.regions), next(iter(accounts.values())))
        return accounts, scan(accounts, regions)


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
    """`layerkit audit`: scan, report, the storage of unused versions, the package view,
    and, given an OSV source, the known vulnerabilities of every layer version in use."""
    accounts, scans = scope.scan()
    zipped, unzipped, manifests = known_sizes(registry.versions())
    rep = report(scans, unzipped, manifests, today)
    add_storage(rep.unused, accounts, zipped)
    contents = layer_contents(accounts, manifests, cache_root)
    if package:
        rep.matches = package_matches(rep, package, contents)
    if vulnerabilities is not None:
        rep.vulnerable = vulnerable(rep, contents, vulnerabilities)
    found = {"outdated": rep.outdated, "deleted": rep.deleted,
             "oversize": [o for o in rep.oversize if o["over"]],
             **{kind: rep.of_kind(kind) for kind in attach.KINDS},
             "vulnerable": rep.vulnerable}  # fmt: skip
    calls: dict[str, int] = {}
    for clients in accounts.values():
        for name, count in clients.calls.items():
            calls[name] = calls.get(name, 0) + count
    return Audit(rep, [gate for gate in sorted(fail_on) if found[gate]], calls)


def prune(
    scope: Scope, layer: str, keep: int, delete: bool, registry: Registry
) -> list[dict[str, Any]]:
    """`layerkit prune`: the versions deleted (or, without delete, that would be), with sizes."""
    accounts, scans = scope.scan()
    rows = prune_candidates(scans, layer, keep)
    add_storage(rows, accounts, known_sizes(registry.versions())[0])
    if delete:
        apply_prune(rows, accounts)
    return rows
