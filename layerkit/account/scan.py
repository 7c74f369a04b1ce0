"""Reading an account: per account and region, every function version and the account's
own layers, for audit, rollout and prune alike.

A scan reads every function configuration with one paginated `ListFunctions
(FunctionVersion=ALL)` (each published version included, with its Layers), the aliases of
functions that have published versions, and the account's own layers with
`ListLayers`/`ListLayerVersions`: no call per function version. Accounts and regions are
scanned concurrently, with a bound; one that fails is recorded as such and the rest go on.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from layerkit.account.clients import Clients
from layerkit.account.gateways import (
    Account,
    CodeSigning,
    Functions,
    Inventory,
    Layers,
    Tags,
)
from layerkit.account.model import (
    Alias,
    CodeSigningConfig,
    FunctionVersion,
    LayerVersion,
    PolicyStatement,
    Recorded,
    account_of,
    owner_of,
    partition_of,
)
from layerkit.errors import LayerkitError, UserError

MAX_WORKERS = 8


@dataclass
class Scan:
    account: str
    region: str
    functions: list[FunctionVersion] = field(default_factory=list)
    layers: dict[str, list[int]] = field(default_factory=dict)  # own layer -> versions
    error: str | None = None
    aliases: list[Alias] = field(default_factory=list)
    declared: dict[str, LayerVersion] = field(default_factory=dict)  # own versions by ARN
    owners: dict[str, str] = field(default_factory=dict)  # function -> who deploys it
    # own versions' policy statements, by ARN (read for audit's `exposed`)
    policies: dict[str, list[PolicyStatement]] = field(default_factory=dict)
    code_signing: dict[str, CodeSigningConfig] = field(default_factory=dict)  # by function


def scan_region(
    clients: Clients,
    account: str,
    region: str,
    owner_tags: tuple[str, ...] = (),
    policies: bool = False,
    recorded: list[Recorded] | None = None,
) -> Scan:
    """One account and region. `recorded`: what AWS Config recorded there (the functions'
    tags, so no tagging call; and, if the region cannot be read, what the report shows)."""
    scan = Scan(account, region)
    try:
        functions = Functions(clients, account, region)
        scan.functions = functions.every_version()
        names = sorted({fn.name for fn in scan.functions})
        if recorded is not None:
            tagged = {r.function.name: r.tags for r in recorded}
        else:
            tagged = Tags(clients, account, region).of_functions(names) if names else {}
        for name, tags in tagged.items():
            owner = owner_of(tags, owner_tags)
            if owner is not None:
                scan.owners[name] = owner
        if names:
            scan.code_signing = CodeSigning(clients, region).of_functions()
        # Aliases point at published versions: only functions that have some can have one
        # that matters ($LATEST's aliases see what $LATEST sees).
        published = sorted({fn.name for fn in scan.functions if fn.version != "$LATEST"})
        scan.aliases = [alias for name in published for alias in functions.aliases(name)]
        layers = Layers(clients, region)
        for name, versions in layers.everything(f"{account} {region}").items():
            scan.layers[name] = sorted(v.arn.version for v in versions)
            scan.declared.update((str(v.arn), v) for v in versions)
            if policies:  # one GetLayerVersionPolicy per own version: who may read it
                scan.policies.update((str(v.arn), layers.policy(v.arn)) for v in versions)
    except LayerkitError as exc:
        scan.error = str(exc)
        if recorded is not None:  # what Config recorded, rather than nothing
            scan.functions = [r.function for r in recorded]
    return scan


def scan(
    accounts: dict[str, Clients],
    regions: list[str],
    owner_tags: tuple[str, ...] = (),
    policies: bool = False,
) -> list[Scan]:
    jobs = [
        (account, clients, region) for account, clients in accounts.items() for region in regions
    ]
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, max(1, len(jobs)))) as pool:
        return list(pool.map(lambda j: scan_region(j[1], j[0], j[2], owner_tags, policies), jobs))


@dataclass(frozen=True)
class InventoryNote:
    """What the organisation's inventory said, for the report."""

    aggregator: str
    functions: int  # recorded by Config
    places: int  # (account, region) pairs with functions: the only ones read directly
    oldest: str  # the oldest configurationItemCaptureTime among them


def scan_inventory(
    base: Clients,
    aggregator: str,
    role_name: str,
    regions: tuple[str, ...],
    owner_tags: tuple[str, ...],
    policies: bool,
) -> tuple[dict[str, Clients], list[Scan], InventoryNote]:
    """The organisation's functions from one AWS Config aggregator query, then, only in the
    (account, region) pairs where Config recorded functions, a direct read of every
    published version, alias and own layer (Config records $LATEST only). Regions with no
    function cost no call."""
    recorded = Inventory(base, base.default_region() or "us-east-1").functions(aggregator)
    if regions:
        recorded = [r for r in recorded if r.function.region in regions]
    places: dict[tuple[str, str], list[Recorded]] = {}
    for r in recorded:
        places.setdefault((r.function.account, r.function.region), []).append(r)
    own = base.account()
    partition = partition_of(base.default_region() or "us-east-1")
    accounts = {own: base}
    for account in sorted({a for a, _ in places} - {own}):
        role = f"arn:{partition}:iam::{account}:role/{role_name}"
        accounts[account] = Clients(profile=base.profile, role_arn=role)
    jobs = sorted(places)
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, max(1, len(jobs)))) as pool:
        scans = list(
            pool.map(
                lambda j: scan_region(accounts[j[0]], j[0], j[1], owner_tags, policies, places[j]),
                jobs,
            )
        )
    oldest = min((r.captured for r in recorded if r.captured), default="")
    return accounts, scans, InventoryNote(aggregator, len(recorded), len(places), oldest)


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
        partition = partition_of(base.default_region() or "us-east-1")
        arns += [f"arn:{partition}:iam::{i}:role/{role_name}" for i in ids if i not in accounts]
    for arn in arns:
        accounts[account_of(arn)] = Clients(profile=profile, role_arn=arn)
    return accounts


def regions_to_scan(flags: list[str] | None, clients: Clients) -> list[str]:
    """The regions asked for, else every region enabled for the account."""
    if flags:
        return flags
    return Account(clients).regions()


@dataclass(frozen=True)
class Scope:
    """Which accounts and regions a command scans."""

    profile: str | None = None
    role_arns: tuple[str, ...] = ()
    organization: bool = False
    role_name: str = "OrganizationAccountAccessRole"
    regions: tuple[str, ...] = ()
    owner_tags: tuple[str, ...] = ()  # tag keys that mark who deploys a function
    policies: bool = False  # read own layer versions' policies (audit's `exposed`)
    aggregator: str | None = None  # AWS Config aggregator: the organisation's inventory

    def scan(self) -> tuple[dict[str, Clients], list[Scan]]:
        probe = Clients(profile=self.profile)  # makes no call: botocore's list of regions
        for region in self.regions:  # named before any call, not as an endpoint unreachable
            probe.check_region("lambda", region)
        accounts = accounts_to_scan(
            self.profile, list(self.role_arns), self.organization, self.role_name
        )
        regions = regions_to_scan(list(self.regions), next(iter(accounts.values())))
        return accounts, scan(accounts, regions, self.owner_tags, self.policies)

    def inventory(self) -> tuple[dict[str, Clients], list[Scan], InventoryNote]:
        """With an aggregator: the places AWS Config recorded functions in, read there."""
        assert self.aggregator is not None
        if self.organization or self.role_arns:
            raise UserError(
                "--config-aggregator finds the accounts itself (the aggregator's): leave out "
                "--organization and --role-arn, or leave out --config-aggregator."
            )
        base = Clients(profile=self.profile)
        for region in self.regions:
            base.check_region("lambda", region)
        return scan_inventory(
            base, self.aggregator, self.role_name, self.regions, self.owner_tags, self.policies
        )


def code_signing_of(scans: list[Scan]) -> dict[tuple[str, str, str], CodeSigningConfig]:
    """(account, region, function) -> its code signing configuration, across the scans."""
    return {
        (s.account, s.region, name): config
        for s in scans
        for name, config in s.code_signing.items()
    }


def api_calls(accounts: dict[str, Clients]) -> dict[str, int]:
    """The API calls made through every account's clients, by operation."""
    calls: dict[str, int] = {}
    for clients in accounts.values():
        for name, count in clients.calls.items():
            calls[name] = calls.get(name, 0) + count
    return calls
