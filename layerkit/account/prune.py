"""`layerkit prune`: delete old layer versions that no scanned function version uses.

A version is deleted only when it is neither one of the newest `keep` nor referenced by
any function version in any scanned account or region, and only when every scan
succeeded: an account or region that could not be read may hold its only reference.
"""

from __future__ import annotations

from dataclasses import dataclass

from layerkit.account.clients import Clients
from layerkit.account.gateways import Layers
from layerkit.account.model import LayerArn
from layerkit.account.scan import Scan, Scope
from layerkit.errors import UserError
from layerkit.registry import Registry, recorded


@dataclass(frozen=True)
class Candidate:
    """A version prune deletes (or, in a dry run, would)."""

    account: str
    region: str
    layer: str
    version: int
    arn: str
    size: int = 0  # zipped: the code storage it frees


@dataclass(frozen=True)
class Pruned:
    candidates: list[Candidate]
    deleted: bool  # False: a dry run

    @property
    def bytes_freed(self) -> int:
        return sum(c.size for c in self.candidates)


def plan_prune(versions: list[int], referenced: set[int], keep: int) -> list[int]:
    """Versions safe to delete: never one of the newest `keep`, never a referenced one."""
    newest = set(sorted(versions, reverse=True)[:keep])
    return sorted(v for v in versions if v not in newest and v not in referenced)


def prune_candidates(scans: list[Scan], layer: str, keep: int) -> list[Candidate]:
    """What `prune` would delete. Refused when any scan failed."""
    failed = [f"{s.account} {s.region}" for s in scans if s.error]
    if failed:
        raise UserError(
            f"Cannot prune {layer}: {', '.join(failed)} could not be scanned, and a function "
            "there may use any version. Fix access, or scan fewer regions (--region)."
        )
    # A version is referenced by its ARN, from any scanned account or region.
    used = {arn for s in scans for fn in s.functions for arn in fn.layers}
    found = []
    for s in scans:
        versions = s.layers.get(layer, [])
        arn = {v: str(LayerArn(s.region, s.account, layer, v)) for v in versions}
        referenced = {v for v in versions if arn[v] in used}
        for v in plan_prune(versions, referenced, keep):
            found.append(Candidate(s.account, s.region, layer, v, arn[v]))
    return found


def with_sizes(
    candidates: list[Candidate], accounts: dict[str, Clients], known: dict[str, int]
) -> list[Candidate]:
    """Each candidate with its zipped size: from the registry, else GetLayerVersion."""
    sized = []
    for c in candidates:
        size = known.get(c.arn)
        if size is None:
            layers = Layers(accounts[c.account], c.region)
            size = layers.content(LayerArn.parse(c.arn)).size
        sized.append(Candidate(c.account, c.region, c.layer, c.version, c.arn, size))
    return sized


def prune(scope: Scope, layer: str, keep: int, delete: bool, registry: Registry) -> Pruned:
    """`layerkit prune`: the versions deleted (or, without delete, that would be)."""
    accounts, scans = scope.scan()
    candidates = with_sizes(
        prune_candidates(scans, layer, keep), accounts, recorded(registry.versions()).zipped
    )
    if delete:
        for c in candidates:
            Layers(accounts[c.account], c.region).delete(LayerArn.parse(c.arn))
    return Pruned(candidates, delete)
