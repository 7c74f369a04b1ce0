"""`layerkit rollout`: move functions onto a newer version of a layer, and the aliases that
serve their traffic with them.

Published function versions are immutable, and production traffic goes to aliases that
point at them. So an alias moves in four steps: `$LATEST` gets the new layer set (every
other layer kept, in order), the update is waited for, `$LATEST` is published as a version
(with Lambda's CodeSha256 and RevisionId preconditions), and the alias is pointed at it,
or, for a canary, given a share of traffic to it. The alias is the last thing touched: a
failure before it leaves the alias serving what it served. An alias whose version differs
from `$LATEST` in anything but its layers is refused: publishing `$LATEST` would release
work nobody released.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import Enum

from layerkit.account import attach
from layerkit.account.clients import Clients
from layerkit.account.gateways import Functions, Layers
from layerkit.account.model import (
    Alias,
    CodeSigningConfig,
    FunctionVersion,
    LayerArn,
    LayerVersion,
)
from layerkit.account.scan import Scope, code_signing_of
from layerkit.errors import AWSError, UserError
from layerkit.layer.manifest import LayerManifest
from layerkit.registry import Registry, recorded


@dataclass(frozen=True)
class Update:
    """One change to one function. With no alias, `$LATEST`'s layers (the plain rollout)."""

    account: str
    region: str
    function: str
    old_layers: tuple[str, ...]
    new_layers: tuple[str, ...]
    alias: str | None = None
    action: str = "update"  # update, release, canary, promote or abort
    serving: str = "$LATEST"  # the version the alias serves now
    to_version: str | None = None  # promote: the canary's version
    weight: float | None = None  # canary: the share of traffic, 0 to 1
    refused: str | None = None  # why it will not be done
    owner: str | None = None  # the stack or tag that deploys the function, if any


class Status(str, Enum):
    planned = "planned"  # a dry run
    refused = "refused"
    updated = "updated"  # $LATEST's layers
    released = "released"  # an alias moved to a new version
    canaried = "canaried"
    promoted = "promoted"
    aborted = "aborted"
    failed = "failed"


@dataclass(frozen=True)
class Result:
    """What became of one update."""

    update: Update
    status: Status
    version: str | None = None  # the version the alias now serves, or canaries to
    error: str | None = None  # why it failed, and what was left as it was

    @property
    def reason(self) -> str | None:
        return self.update.refused


@dataclass(frozen=True)
class Known:
    """What is known of layer versions beyond the function's configuration."""

    declared: Mapping[str, LayerVersion]  # by ARN: CompatibleRuntimes/Architectures
    manifests: Mapping[str, LayerManifest]  # by ARN, for layerkit's layers
    unzipped: Mapping[str, int]  # by ARN, from manifests
    # (account, region, function) -> its code signing configuration
    code_signing: Mapping[tuple[str, str, str], CodeSigningConfig] = field(default_factory=dict)
    signers: Mapping[str, str] = field(default_factory=dict)  # layer ARN -> who signed it

    def problems(self, fn: FunctionVersion, layers: tuple[str, ...]) -> list[str]:
        config = self.code_signing.get((fn.account, fn.region, fn.name))
        return attach.problems_with(
            fn, layers, self.declared, self.manifests, self.unzipped, (config, self.signers)
        )


@dataclass(frozen=True)
class Mode:
    aliases: bool = False
    canary: float | None = None  # percent
    promote: bool = False
    abort: bool = False
    allow_drift: bool = False  # move functions their stack or Terraform owns


def _moved(layers: tuple[str, ...], layer: str, account: str, target: int) -> tuple[str, ...]:
    """The layer set with the account's older versions of `layer` replaced by `target`."""
    new = []
    for text in layers:
        arn = LayerArn.parse(text)
        if arn.layer == layer and arn.account == account and arn.version < target:
            text = str(arn.at(target))
        new.append(text)
    return tuple(new)


def _version_of(layers: tuple[str, ...], layer: str) -> int:
    versions = [a.version for a in map(LayerArn.parse, layers) if a.layer == layer]
    return max(versions, default=0)


def plan(
    functions: list[FunctionVersion],
    aliases: list[Alias],
    account: str,
    layer: str,
    target: int,
    known: Known,
    mode: Mode,
    wanted: Callable[[str], bool],
) -> list[Update]:
    """What rollout would do in one account and region, refusals included."""
    by_version = {(fn.name, fn.version): fn for fn in functions}
    by_function: dict[str, list[Alias]] = {}
    for alias in aliases:
        by_function.setdefault(alias.function, []).append(alias)
    updates = []
    for latest in (fn for fn in functions if fn.version == "$LATEST" and wanted(fn.name)):
        name = latest.name
        served = [a for a in by_function.get(name, []) if a.version != "$LATEST"]
        if mode.promote or mode.abort:
            for alias in served:
                canary = by_version.get((name, alias.canary or ""))
                serving = by_version.get((name, alias.version))
                if canary is None or serving is None:
                    continue
                if _version_of(canary.layers, layer) <= _version_of(serving.layers, layer):
                    continue  # a canary of something else: not ours to settle
                updates.append(Update(
                    latest.account, latest.region, name, serving.layers, canary.layers,
                    alias=alias.name, action="promote" if mode.promote else "abort",
                    serving=alias.version, to_version=canary.version,
                ))  # fmt: skip
            continue
        if not (mode.aliases and served):
            new = _moved(latest.layers, layer, account, target)
            if new != latest.layers:
                problems = known.problems(latest, new)
                updates.append(Update(
                    latest.account, latest.region, name, latest.layers, new,
                    refused="; ".join(problems) or None,
                ))  # fmt: skip
            continue
        for alias in served:
            serving = by_version.get((name, alias.version))
            if serving is None:
                continue
            new = _moved(serving.layers, layer, account, target)
            if new == serving.layers:
                continue
            update = Update(
                latest.account, latest.region, name, serving.layers, new, alias=alias.name,
                action="canary" if mode.canary is not None else "release",
                serving=alias.version,
                weight=None if mode.canary is None else mode.canary / 100,
            )  # fmt: skip
            updates.append(replace(update, refused=_refusal(latest, serving, alias, new, known)))
    return updates


def _owned(update: Update, owner: str | None, allow_drift: bool) -> Update:
    """A function its stack or Terraform owns is its owner's to change: moving it here
    lasts until the owner's next deploy, which puts its own layers back (or fails on
    drift)."""
    if owner is None:
        return update
    if allow_drift or update.refused is not None:
        return replace(update, owner=owner)
    return replace(
        update,
        owner=owner,
        refused=f"owned by {owner}: its next deploy would put the old layer back. Change the "
        "layer in its source (`layerkit bump` rewrites the template's ARN) and deploy it, "
        "or pass --allow-drift to move it here anyway",
    )


def _refusal(
    latest: FunctionVersion,
    serving: FunctionVersion,
    alias: Alias,
    new: tuple[str, ...],
    known: Known,
) -> str | None:
    if alias.canary is not None:
        return (
            f"a canary to version {alias.canary} is in progress on {alias.name}: settle it "
            "first with --promote or --abort"
        )
    differences = latest.differences(serving)
    if differences:
        return (
            f"$LATEST differs from version {serving.version} in {', '.join(differences)}: "
            "publishing it would release changes nobody released. Release or revert them, "
            "then roll out again."
        )
    return "; ".join(known.problems(serving, new)) or None


def apply(
    updates: list[Update],
    accounts: dict[str, Clients],
    parallel: int = 1,
    sleep: Callable[[float], None] = time.sleep,
    timeout: float = 300,
) -> list[Result]:
    """Carry the updates out, one function's after another (its aliases share $LATEST),
    functions in parallel. Refused updates are reported and not touched."""
    per_function: dict[tuple[str, str, str], list[Update]] = {}
    for update in updates:
        per_function.setdefault((update.account, update.region, update.function), []).append(update)

    def one_function(group: list[Update]) -> list[Result]:
        first = group[0]
        functions = Functions(accounts[first.account], first.account, first.region)
        return [_apply(u, functions, sleep, timeout) for u in group]

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        done = list(pool.map(one_function, per_function.values()))
    return [result for group in done for result in group]


class _Failed(Exception):
    pass


def _apply(
    update: Update, functions: Functions, sleep: Callable[[float], None], timeout: float
) -> Result:
    if update.refused:
        return Result(update, Status.refused)
    name = update.function
    try:
        if update.action == "update":
            _set_layers(functions, name, update.new_layers, sleep, timeout)
            return Result(update, Status.updated)
        assert update.alias is not None
        if update.action in ("promote", "abort"):
            version = update.to_version if update.action == "promote" else update.serving
            assert version is not None
            functions.point_alias(name, update.alias, version)
            done = Status.promoted if update.action == "promote" else Status.aborted
            return Result(update, done, version)
        # release or canary: check $LATEST again, as it may have changed since the scan.
        latest = functions.version(name)
        serving = functions.version(name, update.serving)
        differences = latest.differences(serving)
        if differences:
            why = f"$LATEST now differs from version {update.serving} in {', '.join(differences)}"
            return Result(replace(update, refused=why), Status.refused)
        if latest.layers != update.new_layers:
            _set_layers(functions, name, update.new_layers, sleep, timeout)
            latest = functions.version(name)
        published = functions.publish_version(name, latest.code_sha256, latest.revision)
        if functions.version(name, published).layers != update.new_layers:
            raise _Failed(f"version {published} does not carry the new layers")
        if update.action == "canary":
            assert update.weight is not None
            functions.point_alias(name, update.alias, update.serving, {published: update.weight})
            return Result(update, Status.canaried, published)
        functions.point_alias(name, update.alias, published)
        return Result(update, Status.released, published)
    except (AWSError, _Failed) as exc:
        where = "The function was left as it was."
        if update.alias:
            where = f"The alias {update.alias} still serves version {update.serving}."
        return Result(update, Status.failed, error=f"{exc} {where}")


def _set_layers(
    functions: Functions,
    name: str,
    layers: tuple[str, ...],
    sleep: Callable[[float], None],
    timeout: float,
) -> None:
    """Update $LATEST's layers and wait until Lambda has finished the update."""
    functions.set_layers(name, layers)
    deadline = time.monotonic() + timeout
    while True:
        status = functions.update_status(name)
        if status.state == "Successful":
            return
        if status.state == "Failed" or time.monotonic() > deadline:
            reason = status.reason or "timed out waiting"
            raise _Failed(f"the update {status.state.lower()}: {reason}")
        sleep(1)


def run(
    scope: Scope,
    layer: str,
    to_version: int | None,
    only: set[str],
    exclude: set[str],
    parallel: int,
    dry_run: bool,
    registry: Registry,
    mode: Mode,
) -> list[Result]:
    """`layerkit rollout`: each change made (or, dry, planned or refused) and how it went."""
    if sum((mode.canary is not None, mode.promote, mode.abort)) > 1:
        raise UserError("--canary, --promote and --abort are steps of their own: give one.")
    if mode.canary is not None and not 0 < mode.canary < 100:
        raise UserError(f"--canary {mode.canary:g}: give a percentage between 0 and 100.")

    def wanted(name: str) -> bool:
        return (not only or name in only) and name not in exclude

    accounts, scans = scope.scan()
    found = recorded(registry.versions())
    declared = {arn: v for s in scans for arn, v in s.declared.items()}
    targets = [(s, to_version or max(s.layers.get(layer) or [0])) for s in scans]
    signers = {arn: who for s in scans for fn in s.functions for arn, who in fn.signers.items()}
    for s, target in targets:  # who signed the version rolled to, where signing is enforced
        arn = LayerArn(s.region, s.account, layer, target)
        if target and any(c.enforce for c in s.code_signing.values()) and str(arn) not in signers:
            signers[str(arn)] = Layers(accounts[s.account], s.region).content(arn).signer
    known = Known(declared, found.manifests, found.unzipped, code_signing_of(scans), signers)
    updates = []
    for s, target in targets:
        if target:
            updates += [
                _owned(u, s.owners.get(u.function), mode.allow_drift)
                for u in plan(s.functions, s.aliases, s.account, layer, target, known, mode, wanted)
            ]
    if dry_run:
        return [Result(u, Status.refused if u.refused else Status.planned) for u in updates]
    return apply(updates, accounts, parallel)
