"""`layerkit audit`, `rollout` and `prune`: which functions use which layer versions.

A scan reads, per account and region, every function configuration with one paginated
`ListFunctions(FunctionVersion=ALL)` (each published version included, with its Layers)
and the account's own layers with `ListLayers`/`ListLayerVersions`: no call per
function. Accounts and regions are scanned concurrently, with a bound; one that fails
is reported and the rest go on. The report is a pure function of the scans.
"""

from __future__ import annotations

import io
import logging
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from layerkit.aws import Clients
from layerkit.errors import AWSError, LayerkitError, UserError
from layerkit.gateways import Account, Functions, FunctionVersion, LayerArn, Layers
from layerkit.manifest import LayerManifest
from layerkit.metadata import parse_metadata
from layerkit.quota import UNZIPPED_LIMIT, WARN_FRACTION
from layerkit.registry import Registry, Version

log = logging.getLogger("layerkit")

LAYERS_PER_FUNCTION = 5
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


def scan_region(clients: Clients, account: str, region: str) -> Scan:
    scan = Scan(account, region)
    try:
        scan.functions = Functions(clients, account, region).every_version()
        for name, versions in Layers(clients, region).everything(f"{account} {region}").items():
            scan.layers[name] = sorted(v.arn.version for v in versions)
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

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def report(scans: list[Scan], unzipped: dict[str, int]) -> Report:
    """Everything the audit tells, from the scans alone. `unzipped`: layer version ARN ->
    unzipped bytes, known from layerkit's manifests (others are reported as unknown)."""
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
    return Report(
        references, outdated, deleted, unused,
        {owner: sorted(arns) for owner, arns in sorted(foreign.items())},
        layer_limit, oversize, failures,
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
    import urllib.request

    any_clients = next(iter(accounts.values()))

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
            cached.parent.mkdir(parents=True, exist_ok=True)
            with urllib.request.urlopen(location, timeout=120) as reply:
                cached.write_bytes(reply.read())
        return distributions_of(cached.read_bytes())

    return contents


# Rollout


@dataclass(frozen=True)
class Update:
    account: str
    region: str
    function: str
    old_layers: tuple[str, ...]
    new_layers: tuple[str, ...]


def plan_rollout(
    scans: list[Scan], layer: str, to_version: int | None, only: set[str], exclude: set[str]
) -> list[Update]:
    """$LATEST functions on an older version of the layer; published versions are immutable."""
    updates = []
    for s in scans:
        target = to_version or max(s.layers.get(layer, [0]) or [0])
        if not target:
            continue
        for fn in s.functions:
            if fn.version != "$LATEST" or (only and fn.name not in only) or fn.name in exclude:
                continue
            new = []
            for arn in fn.layers:
                region, owner, name, number = parse_arn(arn)
                if name == layer and owner == s.account and number < target:
                    arn = f"arn:aws:lambda:{region}:{owner}:layer:{name}:{target}"
                new.append(arn)
            if tuple(new) != fn.layers:
                updates.append(Update(s.account, s.region, fn.name, fn.layers, tuple(new)))
    return updates


def apply_rollout(
    updates: list[Update],
    accounts: dict[str, Clients],
    parallel: int = 1,
    sleep: Callable[[float], None] = time.sleep,
    timeout: float = 300,
) -> list[dict[str, Any]]:
    """Update each function, keeping every other layer and the order, and wait for it."""

    def one(update: Update) -> dict[str, Any]:
        functions = Functions(accounts[update.account], update.account, update.region)
        result = {"account": update.account, "region": update.region, "function": update.function,
                  "layers": list(update.new_layers)}  # fmt: skip
        try:
            functions.set_layers(update.function, update.new_layers)
            deadline = time.monotonic() + timeout
            while True:
                status = functions.update_status(update.function)
                if status.state == "Successful":
                    result["status"] = "updated"
                    break
                if status.state == "Failed" or time.monotonic() > deadline:
                    reason = status.reason or "timed out waiting"
                    result.update(
                        status="failed", error=f"the update {status.state.lower()}: {reason}"
                    )
                    break
                sleep(1)
        except AWSError as exc:
            result.update(status="failed", error=f"{exc} The function was left as it was.")
        return result

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(one, updates))


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


GATES = ("outdated", "deleted", "oversize")


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
    scope: Scope, registry: Registry, cache_root: Path, package: str | None, fail_on: set[str]
) -> Audit:
    """`layerkit audit`: scan, report, the storage of unused versions, the package view."""
    accounts, scans = scope.scan()
    zipped, unzipped, manifests = known_sizes(registry.versions())
    rep = report(scans, unzipped)
    add_storage(rep.unused, accounts, zipped)
    if package:
        rep.matches = package_matches(rep, package, layer_contents(accounts, manifests, cache_root))
    found = {"outdated": rep.outdated, "deleted": rep.deleted,
             "oversize": [o for o in rep.oversize if o["over"]]}  # fmt: skip
    calls: dict[str, int] = {}
    for clients in accounts.values():
        for name, count in clients.calls.items():
            calls[name] = calls.get(name, 0) + count
    return Audit(rep, [gate for gate in sorted(fail_on) if found[gate]], calls)


def rollout(
    scope: Scope,
    layer: str,
    to_version: int | None,
    only: set[str],
    exclude: set[str],
    parallel: int,
    dry_run: bool,
) -> list[dict[str, Any]]:
    """`layerkit rollout`: each function moved (or, dry, to be moved) and how it went."""
    accounts, scans = scope.scan()
    updates = plan_rollout(scans, layer, to_version, only, exclude)
    if not dry_run:
        return apply_rollout(updates, accounts, parallel)
    return [{"account": u.account, "region": u.region, "function": u.function,
             "layers": list(u.new_layers), "status": "planned"} for u in updates]  # fmt: skip


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
