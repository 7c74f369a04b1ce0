"""The command line: parse, call one core function, render. No logic lives here."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

# rich's progress and table, and the AWS, audit, registry and verify modules, are imported
# by the commands that use them: a no-op build must finish in well under a second, and it
# needs none of them.

from layerkit import manifest
from layerkit import recipe as recipes
from layerkit.build import Artifact, Context, build_recipe, lock_recipe
from layerkit.errors import ExitCode, LayerkitError, UserError
from layerkit.inspection import inspect_layer
from layerkit.quota import DIRECT_UPLOAD_LIMIT, mib

if TYPE_CHECKING:
    from layerkit.audit import Report as AuditReport
    from layerkit.aws import Clients
    from layerkit.publish import Layer, Outcome
    from layerkit.recipe import PublishSettings
    from layerkit.registry import Registry, Version

app = typer.Typer(
    name="layerkit",
    help="Build, publish and audit AWS Lambda layers for Python.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,  # locals can hold credentials
    add_completion=False,
)
# Piped output is read by people in CI logs too: give tables room instead of 80 columns.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)  # messages are paragraphs: let the terminal wrap
_state = {"debug": False}

RecipesArg = Annotated[
    list[str] | None,
    typer.Argument(help="Recipe files or names in --recipes-dir; none means every recipe."),
]
RecipesDir = Annotated[Path, typer.Option(help="Where recipes are found by name.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Upgrade = Annotated[bool, typer.Option(help="Resolve every package to its newest version.")]
UpgradePackage = Annotated[
    list[str] | None,
    typer.Option("--upgrade-package", "-P", help="Upgrade this package only (repeatable)."),
]
IndexUrl = Annotated[
    str | None, typer.Option(help="Package index (default: pip's configuration, then PyPI).")
]
ExtraIndexUrl = Annotated[list[str] | None, typer.Option(help="Additional index (repeatable).")]


class Strategy(str, Enum):
    auto = "auto"
    wheels = "wheels"
    container = "container"


StrategyOption = Annotated[
    Strategy,
    typer.Option(
        help="wheels: fitting wheels only, no Docker. container: resolve and compile in the "
        "build image. auto: container when Docker is there and something needs compiling."
    ),
]
Image = Annotated[
    str | None,
    typer.Option(
        help="Build image, overriding the recipe's; {runtime}, {python} and {arch} are "
        "filled in (default public.ecr.aws/sam/build-{runtime}:latest-{arch})."
    ),
]
Network = Annotated[
    str | None, typer.Option(help="Docker network mode for build containers, e.g. host.")
]
RequireBytecode = Annotated[
    bool,
    typer.Option(
        "--require-bytecode",
        envvar="LAYERKIT_REQUIRE_BYTECODE",
        help="Fail instead of warning when no interpreter of a target's Python can compile "
        "its bytecode (for CI).",
    ),
]
CaBundle = Annotated[
    str | None, typer.Option(help="CA bundle for TLS-intercepting proxies (default: PIP_CERT).")
]


class _Reporter:
    """Shows one progress line per target or artifact on a terminal; silent otherwise."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, label: str, message: str) -> None:
        if self.progress is None:
            return  # logs and the summary say what matters; no spinner text in CI logs
        if label not in self.tasks:
            self.tasks[label] = self.progress.add_task(label, total=None)
        self.progress.update(self.tasks[label], description=f"{label}: {message}")


@contextmanager
def _reporting(quiet: bool) -> Iterator[_Reporter]:
    if quiet or not err.is_terminal:
        yield _Reporter(None)
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        yield _Reporter(progress)


def _context(
    reporter: _Reporter,
    index_url: str | None,
    extra_index_url: list[str] | None,
    ca_bundle: str | None,
    strategy: Strategy = Strategy.auto,
    image: str | None = None,
    network: str | None = None,
    require_bytecode: bool = False,
) -> Context:
    return Context.from_environment(
        os.environ,
        index_url=index_url,
        extra_index_urls=tuple(extra_index_url or ()),
        ca_bundle=ca_bundle,
        report=reporter,
        strategy=strategy.value,
        image=image,
        network=network,
        require_bytecode=require_bytecode,
    )


def _recipes(names: Sequence[str] | None, recipes_dir: Path) -> list[recipes.Recipe]:
    if not names:
        return [recipes.load(p) for p in recipes.discover(recipes_dir)]
    paths = [recipes.find(n, recipes_dir) for n in names]
    return [recipes.load(p) for p in paths]


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option(help="Show tracebacks and every command run.")] = False,
) -> None:
    _state["debug"] = debug
    logging.getLogger("layerkit").setLevel(logging.DEBUG if debug else logging.INFO)


@app.command()
def lock(
    names: RecipesArg = None,
    recipes_dir: RecipesDir = Path("recipes"),
    check: Annotated[
        bool, typer.Option(help="Only check that every lock is fresh; write nothing.")
    ] = False,
    upgrade: Upgrade = False,
    upgrade_package: UpgradePackage = None,
    index_url: IndexUrl = None,
    extra_index_url: ExtraIndexUrl = None,
    ca_bundle: CaBundle = None,
    strategy: StrategyOption = Strategy.auto,
    image: Image = None,
    network: Network = None,
) -> None:
    """Resolve recipes for their targets into lock files beside them."""
    loaded = _recipes(names, recipes_dir)
    with _reporting(False) as reporter:
        ctx = _context(reporter, index_url, extra_index_url, ca_bundle, strategy, image, network)
        written = []
        for recipe in loaded:
            lock_recipe(
                recipe,
                ctx,
                check=check,
                refresh=not check,
                upgrade=upgrade,
                upgrade_packages=tuple(upgrade_package or ()),
            )
            written += [recipe.lock_path(t) for t in recipe.targets]
    verb = "fresh" if check else "written"
    for path in written:
        out.print(f"{verb}: {path}")


@app.command()
def build(
    names: RecipesArg = None,
    recipes_dir: RecipesDir = Path("recipes"),
    out_dir: Annotated[Path, typer.Option("--out-dir", "-o", help="Where ZIPs go.")] = Path("dist"),
    locked: Annotated[
        bool,
        typer.Option(help="Refuse a missing or stale lock instead of writing it (for CI)."),
    ] = False,
    upgrade: Upgrade = False,
    upgrade_package: UpgradePackage = None,
    index_url: IndexUrl = None,
    extra_index_url: ExtraIndexUrl = None,
    ca_bundle: CaBundle = None,
    strategy: StrategyOption = Strategy.auto,
    image: Image = None,
    network: Network = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Then import every module in the runtime image.")
    ] = False,
    runtime_image: RuntimeImage = None,
    native: Native = False,
    require_bytecode: RequireBytecode = False,
    registry_path: RegistryPath = None,
    as_json: AsJson = False,
) -> None:
    """Build deterministic layer ZIPs from recipes, from fitting wheels or in a container."""
    loaded = _recipes(names, recipes_dir)
    artifacts: list[Artifact] = []
    with _reporting(as_json) as reporter:
        ctx = _context(
            reporter, index_url, extra_index_url, ca_bundle, strategy, image, network,
            require_bytecode,
        )  # fmt: skip
        for recipe in loaded:
            artifacts += build_recipe(
                recipe,
                ctx,
                out_dir,
                locked=locked,
                upgrade=upgrade,
                upgrade_packages=tuple(upgrade_package or ()),
            )
    made = [a for a in artifacts if a.status != "unchanged"]  # a no-op records nothing
    if made:
        registry = _registry(registry_path)
        for a in made:
            registry.record_build(
                a.recipe, a.name, a.sha256, list(a.targets), manifest.read(a.path)
            )
    reports = _verify([a.path for a in artifacts], runtime_image, network, native) if verify else []
    if as_json:
        data = [a.as_dict() for a in artifacts]
        if verify:
            for item in data:
                item["verification"] = [r for r in reports if r["zip"] == item["path"]]
        _print_json(data)
    else:
        _render_build(artifacts)
        _render_verification(reports)
    if not all(r["ok"] for r in reports):
        raise typer.Exit(ExitCode.CANNOT_BUILD)


def _render_build(artifacts: list[Artifact]) -> None:
    from rich.table import Table

    table = Table("artifact", "targets", "files", "unzipped", "zipped", "sha256", "")
    for a in artifacts:
        table.add_row(
            str(a.path),
            "\n".join(a.targets),
            str(a.files),
            mib(a.unzipped),
            mib(a.zipped),
            a.sha256[:12],
            a.status,
        )
    out.print(table)
    for a in artifacts:
        for note in a.notes:
            err.print(f"note: {note}")


RuntimeImage = Annotated[
    str | None,
    typer.Option(
        "--runtime-image",
        help="Image to import in; {runtime}, {python} and {arch} are filled in "
        "(default public.ecr.aws/lambda/python:{python}-{arch}).",
    ),
]
Native = Annotated[
    bool,
    typer.Option(help="Import with this host's pythonX.Y instead of in the runtime image."),
]


def _verify(
    zips: list[Path], image: str | None, network: str | None, native: bool
) -> list[dict[str, Any]]:
    from layerkit.container import DockerEngine
    from layerkit.verify import verify

    engine = None if native else DockerEngine.connect(os.environ)
    reports = []
    for zip_path in zips:
        for result in verify(zip_path, engine=engine, image=image, network=network, native=native):
            reports.append({"zip": str(zip_path), **result.as_dict()})
    return reports


def _render_verification(reports: list[dict[str, Any]]) -> None:
    if not reports:
        return
    from rich.table import Table

    table = Table("layer", "target", "imported", "cold import", "slowest alone", "where")
    for report in reports:
        failed = sum(1 for e in report["modules"].values() if e != "ok")
        imported = f"{len(report['modules']) - failed}/{len(report['modules'])}"
        total = report["total_import_seconds"]
        table.add_row(
            Path(report["zip"]).name,
            report["target"],
            f"[green]{imported}[/]" if report["ok"] else f"[red]{imported} FAILED[/]",
            "—" if total is None else f"{total:.2f} s",
            "\n".join(f"{s['module']} {s['seconds']:.2f} s" for s in report["slowest"]),
            report["where"],
        )
    out.print(table)
    for report in reports:
        for module, error in report["modules"].items():
            if error != "ok":
                out.print(f"{report['target']}: {module}: {error}", markup=False, highlight=False)


@app.command(name="verify")
def verify_command(
    layers: Annotated[list[str], typer.Argument(help="Layer ZIPs, or recipes to build first.")],
    recipes_dir: RecipesDir = Path("recipes"),
    out_dir: Annotated[Path, typer.Option("--out-dir", "-o", help="Where ZIPs go.")] = Path("dist"),
    runtime_image: RuntimeImage = None,
    network: Network = None,
    native: Native = False,
    as_json: AsJson = False,
) -> None:
    """Import every module of a layer in the runtime it is for; exit 3 if any fails."""
    zips = [Path(name) for name in layers if name.endswith(".zip")]
    names = [name for name in layers if not name.endswith(".zip")]
    if names:
        with _reporting(as_json) as reporter:
            ctx = _context(reporter, None, None, None, network=network)
            for recipe in _recipes(names, recipes_dir):
                zips += [a.path for a in build_recipe(recipe, ctx, out_dir, locked=False)]
    reports = _verify(zips, runtime_image, network, native)
    if as_json:
        _print_json(reports)
    else:
        _render_verification(reports)
    if not all(r["ok"] for r in reports):
        raise typer.Exit(ExitCode.CANNOT_BUILD)


Regions = Annotated[
    list[str] | None,
    typer.Option("--region", help="AWS region (repeatable); default: the recipe's, then AWS's."),
]
Profile = Annotated[str | None, typer.Option(help="AWS profile (default: the standard chain).")]
RegistryPath = Annotated[
    Path | None,
    typer.Option("--registry", help="SQLite registry (default ~/.local/share/layerkit)."),
]


def _registry(path: Path | None) -> Registry:
    from layerkit.registry import Registry, default_path

    return Registry(path or default_path(os.environ))


def _regions(
    flags: list[str] | None, recipe_regions: tuple[str, ...], clients: Clients
) -> list[str]:
    from layerkit.errors import CredentialsError

    regions = list(flags or recipe_regions)
    if not regions:
        default = clients.default_region()
        if default is None:
            raise CredentialsError(
                "No AWS region: pass --region, set AWS_REGION, or list `regions` under [publish]."
            )
        regions = [default]
    return regions


@app.command()
def publish(
    layers: Annotated[
        list[str] | None,
        typer.Argument(help="Recipes (built with --locked if needed) or ZIPs from `build`."),
    ] = None,
    recipes_dir: RecipesDir = Path("recipes"),
    out_dir: Annotated[Path, typer.Option("--out-dir", "-o", help="Where ZIPs go.")] = Path("dist"),
    region: Regions = None,
    profile: Profile = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan; change nothing.")] = False,
    s3_bucket: Annotated[
        str | None,
        typer.Option(
            help="Bucket for ZIPs over 50 MB; {region} is filled in (or LAYERKIT_S3_BUCKET)."
        ),
    ] = None,
    create_bucket: Annotated[bool, typer.Option(help="Create that bucket if missing.")] = False,
    direct_upload_limit: Annotated[
        int, typer.Option(hidden=True, help="Bytes above which uploads go through S3.")
    ] = DIRECT_UPLOAD_LIMIT,
    require_bytecode: RequireBytecode = False,
    registry_path: RegistryPath = None,
    as_json: AsJson = False,
) -> None:
    """Publish a layer version in every region, only where the content is new."""
    from layerkit.aws import Clients
    from layerkit.publish import execute, layer_from_zip, plan, versions_published
    from layerkit.recipe import PublishSettings

    clients = Clients(profile=profile)
    work: list[tuple[Layer, PublishSettings]] = []
    names = layers or []
    zips = [Path(n) for n in names if n.endswith(".zip")]
    recipe_names = [n for n in names if not n.endswith(".zip")]
    for zip_path in zips:
        work.append((layer_from_zip(zip_path), PublishSettings()))
    if recipe_names or not names:
        with _reporting(as_json) as reporter:
            ctx = _context(reporter, None, None, None, require_bytecode=require_bytecode)
            for recipe in _recipes(recipe_names, recipes_dir):
                for artifact in build_recipe(recipe, ctx, out_dir, locked=True):
                    work.append((layer_from_zip(artifact.path), recipe.publish))
    bucket = s3_bucket or os.environ.get("LAYERKIT_S3_BUCKET")
    plans = []
    for layer, settings in work:
        if bucket:
            settings = dataclasses.replace(settings, s3_bucket=bucket)
        regions = _regions(region, settings.regions, clients)
        plans.append((layer, plan(layer, regions, settings, clients, direct_upload_limit)))
    if dry_run:
        data = [a.as_dict() for _, actions in plans for a in actions]
        if as_json:
            _print_json(data)
        else:
            for item in data:
                out.print(
                    f"{item['region']}: {item['layer']}: {item['action']}"
                    + (f" via {item['route']}" if item["route"] else f" ({item['existing_arn']})")
                    + f"; grants: {', '.join(item['grants']) or 'none'}; "
                    f"parameter: {item['parameter'] or 'none'}"
                )
        return
    outcomes: list[Outcome] = []
    registry = _registry(registry_path)
    for layer, actions in plans:
        done = execute(layer, actions, clients, create_bucket=create_bucket)
        registry.record_versions(versions_published(layer, done, Path.cwd()))
        outcomes += done
    if as_json:
        _print_json({"outcomes": [o.as_dict() for o in outcomes], "api_calls": clients.calls})
    else:
        for o in outcomes:
            line = o.arn if o.status != "failed" else o.error
            out.print(f"{o.region}: {o.layer}: {o.status}: {line}", markup=False, highlight=False)
    if any(o.status == "failed" for o in outcomes):
        raise typer.Exit(ExitCode.AWS)


registry_app = typer.Typer(help="The local record of builds and published versions.")
app.add_typer(registry_app, name="registry")


@registry_app.command("sync")
def registry_sync(
    region: Regions = None,
    profile: Profile = None,
    registry_path: RegistryPath = None,
    as_json: AsJson = False,
) -> None:
    """Rebuild the registry's versions from the account: every layer, every version."""
    from layerkit.aws import Clients
    from layerkit.registry import sync

    clients = Clients(profile=profile)
    found = sync(_regions(region, (), clients), clients)
    _registry(registry_path).record_versions(found)
    if as_json:
        _print_json([v.as_dict() for v in found])
    else:
        out.print(f"synced {len(found)} layer versions")


@app.command(name="ls")
def list_versions(
    layer: Annotated[str | None, typer.Argument(help="Only this layer.")] = None,
    region: Annotated[str | None, typer.Option(help="Only this region.")] = None,
    registry_path: RegistryPath = None,
    as_json: AsJson = False,
) -> None:
    """Layers and versions per region, with sizes and content hashes (from the registry)."""
    found = _registry(registry_path).versions(layer, region)
    if as_json:
        _print_json([{k: v for k, v in x.as_dict().items() if k != "manifest"} for x in found])
        return
    from rich.table import Table

    table = Table("layer", "region", "version", "zipped", "sha256", "created", "arn")
    for v in found:
        size = mib(v.size) if v.size is not None else "?"
        table.add_row(v.layer, v.region, str(v.version), size, (v.sha256 or "?")[:12],
                      v.created[:19], v.arn)  # fmt: skip
    out.print(table)


def _version(spec: str, registry_path: Path | None) -> list[Version]:
    name, _, number = spec.partition(":")
    found = _registry(registry_path).versions(name)
    if number:
        found = [v for v in found if str(v.version) == number]
    if not found:
        raise UserError(
            f"{spec} is not in the registry: publish it, or run `layerkit registry sync`."
        )
    return found


@app.command()
def show(
    spec: Annotated[str, typer.Argument(help="NAME or NAME:VERSION")],
    registry_path: RegistryPath = None,
    as_json: AsJson = False,
) -> None:
    """A layer version: where it is published, and what it contains."""
    found = _version(spec, registry_path)
    if as_json:
        _print_json([v.as_dict() for v in found])
        return
    for v in found:
        out.print(f"{v.arn}  {mib(v.size or 0)}  sha256 {v.sha256}  by {v.by} {v.created}")
    layer_manifest = next((v.manifest for v in reversed(found) if v.manifest), None)
    if layer_manifest:
        from rich.table import Table

        table = Table("distribution", "version", "licence", "size")
        for d in layer_manifest.distributions().values():
            table.add_row(d.name, d.version, d.license, mib(d.size))
        out.print(table)


@app.command(name="diff")
def diff_versions(
    old: Annotated[str, typer.Argument(help="NAME:A")],
    new: Annotated[str, typer.Argument(help="NAME:B")],
    registry_path: RegistryPath = None,
    as_json: AsJson = False,
) -> None:
    """Distributions added, removed, upgraded and downgraded between two versions."""
    from layerkit.manifest import diff as diff_manifests

    manifests = []
    for spec in (old, new):
        found = next((v.manifest for v in _version(spec, registry_path) if v.manifest), None)
        if found is None:
            raise UserError(f"{spec} has no manifest in the registry (not built by layerkit).")
        manifests.append(found)
    changes = {
        kind: [c.to_json() for c in found]
        for kind, found in diff_manifests(manifests[0], manifests[1]).items()
    }
    if as_json:
        _print_json(changes)
        return
    for kind, items in changes.items():
        for item in items:
            out.print(f"{kind}: {json.dumps(item)}", markup=False, highlight=False)
    if not any(changes.values()):
        out.print("no differences in distributions")


RoleArns = Annotated[
    list[str] | None,
    typer.Option("--role-arn", help="Also scan the account of this role (repeatable)."),
]
Organization = Annotated[
    bool, typer.Option("--organization", help="Scan every account of the AWS Organization.")
]
RoleName = Annotated[str, typer.Option(help="Role assumed in each organization account.")]


@app.command()
def audit(
    region: Regions = None,
    profile: Profile = None,
    role_arn: RoleArns = None,
    organization: Organization = False,
    role_name: RoleName = "OrganizationAccountAccessRole",
    package: Annotated[
        str | None,
        typer.Option(help='Functions shipping a matching distribution: "urllib3<2.2.2".'),
    ] = None,
    fail_on: Annotated[
        str | None, typer.Option(help="Exit 7 when found: outdated,deleted,oversize (any of).")
    ] = None,
    registry_path: RegistryPath = None,
    as_json: AsJson = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print every reference as CSV.")] = False,
) -> None:
    """Which functions, in which regions and accounts, use which layer versions."""
    from layerkit.audit import (
        accounts_to_scan,
        add_storage,
        known_sizes,
        layer_contents,
        package_matches,
        regions_to_scan,
    )
    from layerkit.audit import report as audit_report
    from layerkit.audit import scan as audit_scan
    from layerkit.index import cache_dir

    gates = {g.strip() for g in (fail_on or "").split(",") if g.strip()}
    unknown = gates - {"outdated", "deleted", "oversize"}
    if unknown:
        raise UserError(
            f"--fail-on: unknown {', '.join(sorted(unknown))}; use outdated, deleted, oversize."
        )
    accounts = accounts_to_scan(profile, role_arn, organization, role_name)
    regions = regions_to_scan(region, next(iter(accounts.values())))
    scans = audit_scan(accounts, regions)
    zipped, unzipped, manifests = known_sizes(_registry(registry_path).versions())
    rep = audit_report(scans, unzipped)
    add_storage(rep, accounts, zipped)
    if package:
        cache_root = cache_dir(os.environ)
        rep.matches = package_matches(rep, package, layer_contents(accounts, manifests, cache_root))
    if as_json:
        calls: dict[str, int] = {}
        for clients in accounts.values():
            for name, count in clients.calls.items():
                calls[name] = calls.get(name, 0) + count
        _print_json({**rep.as_dict(), "api_calls": calls})
    elif as_csv:
        import csv

        columns = ["account", "region", "function", "version", "layer", "owner",
                   "layer_version", "status", "behind", "arn"]  # fmt: skip
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rep.references)
    else:
        _render_audit(rep)
    found = {"outdated": rep.outdated, "deleted": rep.deleted,
             "oversize": [o for o in rep.oversize if o["over"]]}  # fmt: skip
    failing = [gate for gate in sorted(gates) if found[gate]]
    if failing:
        err.print(f"audit: found {', '.join(failing)} (--fail-on)")
        raise typer.Exit(ExitCode.GATE)
    if rep.failures:
        raise typer.Exit(ExitCode.AWS)


def _render_audit(rep: AuditReport) -> None:
    from rich.table import Table

    usage: dict[str, list[str]] = {}
    for r in rep.references:
        usage.setdefault(r["arn"], []).append(f"{r['function']}:{r['version']} ({r['region']})")
    table = Table("layer version", "status", "functions")
    status = {r["arn"]: r["status"] for r in rep.references}
    for arn, functions in sorted(usage.items()):
        shown = ", ".join(functions[:5]) + (
            f" … +{len(functions) - 5}" if len(functions) > 5 else ""
        )
        table.add_row(arn, status[arn], f"{len(functions)}: {shown}")
    out.print(table)
    sections = [
        ("outdated", [f"{r['function']}:{r['version']} ({r['account']} {r['region']}) uses "
                      f"{r['layer']}:{r['layer_version']}, {r['behind']} behind {r['latest']}"
                      for r in rep.outdated]),
        ("deleted versions still in use", [f"{r['function']}:{r['version']} ({r['region']}) "
                                           f"uses {r['arn']}" for r in rep.deleted]),
        ("unused versions", [f"{r['arn']} ({mib(r.get('size', 0))})" for r in rep.unused]),
        ("other accounts' layers", [f"{owner}: {len(arns)} layer versions"
                                    for owner, arns in rep.foreign.items()]),
        ("at or near the 5-layer limit", [f"{r['function']} ({r['region']}): {r['layers']}"
                                          for r in rep.layer_limit]),
        ("at or near 250 MiB unzipped", [f"{r['function']} ({r['region']}): layers "
                                         f"{mib(r['layers_unzipped'])}; {r['note']}"
                                         for r in rep.oversize]),
        ("could not scan", [f"{r['account']} {r['region']}: {r['error']}" for r in rep.failures]),
        ("package matches", [f"{r['function']}:{r['version']} ({r['region']}) via {r['arn']}: "
                             f"{r['package']} {r['package_version']}" for r in rep.matches]),
    ]  # fmt: skip
    for title, lines in sections:
        if lines:
            out.print(f"[bold]{title}[/] ({len(lines)})")
            for line in lines:
                out.print(f"  {line}", markup=False, highlight=False)
    freed = sum(r.get("size", 0) for r in rep.unused)
    out.print(f"unused versions take {mib(freed)} of code storage")


@app.command()
def rollout(
    layer: Annotated[str, typer.Argument(help="The layer name (in the scanned accounts).")],
    to: Annotated[int | None, typer.Option("--to", help="Version (default: the latest).")] = None,
    region: Regions = None,
    profile: Profile = None,
    role_arn: RoleArns = None,
    only: Annotated[list[str] | None, typer.Option(help="Only these functions.")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Not these functions.")] = None,
    parallel: Annotated[int, typer.Option(help="Functions updated at once.")] = 1,
    dry_run: Annotated[bool, typer.Option(help="Show the plan; change nothing.")] = False,
    as_json: AsJson = False,
) -> None:
    """Move functions on an older version of a layer to a newer one, keeping the rest."""
    from layerkit.audit import accounts_to_scan, apply_rollout, plan_rollout, regions_to_scan
    from layerkit.audit import scan as audit_scan

    accounts = accounts_to_scan(profile, role_arn, False, "")
    regions = regions_to_scan(region, next(iter(accounts.values())))
    scans = audit_scan(accounts, regions)
    updates = plan_rollout(scans, layer, to, set(only or ()), set(exclude or ()))
    results: list[dict[str, Any]] = (
        [{"account": u.account, "region": u.region, "function": u.function,
          "layers": list(u.new_layers), "status": "planned"} for u in updates]
        if dry_run else apply_rollout(updates, accounts, parallel)
    )  # fmt: skip
    if as_json:
        _print_json(results)
    else:
        for r in results:
            out.print(f"{r['status']}: {r['function']} ({r['region']}) -> "
                      f"{', '.join(r['layers'])}{'; ' + r['error'] if r.get('error') else ''}",
                      markup=False, highlight=False)  # fmt: skip
        if not results:
            out.print(f"no function uses an older version of {layer}")
    if any(r["status"] == "failed" for r in results):
        raise typer.Exit(ExitCode.AWS)


@app.command()
def prune(
    layer: Annotated[str, typer.Argument(help="The layer name.")],
    keep: Annotated[int, typer.Option(help="Never delete the newest N versions.")] = 3,
    region: Regions = None,
    profile: Profile = None,
    role_arn: RoleArns = None,
    yes: Annotated[bool, typer.Option("--yes", help="Delete; without it, only show.")] = False,
    registry_path: RegistryPath = None,
    as_json: AsJson = False,
) -> None:
    """Delete old versions of a layer that no scanned function version references."""
    from layerkit.audit import Report as AuditReport
    from layerkit.audit import (
        accounts_to_scan,
        add_storage,
        apply_prune,
        known_sizes,
        prune_candidates,
        regions_to_scan,
    )
    from layerkit.audit import scan as audit_scan

    accounts = accounts_to_scan(profile, role_arn, False, "")
    regions = regions_to_scan(region, next(iter(accounts.values())))
    scans = audit_scan(accounts, regions)
    rows = prune_candidates(scans, layer, keep)
    zipped, _, _ = known_sizes(_registry(registry_path).versions())
    storage = AuditReport([], [], [], rows, {}, [], [], [])
    add_storage(storage, accounts, zipped)
    if yes:
        apply_prune(rows, accounts)
    freed = sum(r["size"] for r in rows)
    if as_json:
        _print_json({"deleted" if yes else "would_delete": rows, "bytes_freed": freed})
        return
    for r in rows:
        out.print(f"{'deleted' if yes else 'would delete'}: {r['arn']} ({mib(r['size'])})")
    verb = "freed" if yes else "would free (run with --yes to delete)"
    out.print(f"{len(rows)} versions, {mib(freed)} of code storage {verb}")


@app.command()
def inspect(
    zip_path: Annotated[Path, typer.Argument(help="A layer ZIP (built by layerkit or not).")],
    as_json: AsJson = False,
) -> None:
    """Show what a layer ZIP contains: distributions, sizes, Python versions, architectures."""
    report = inspect_layer(zip_path)
    if as_json:
        _print_json(report)
    else:
        _render_inspection(report)
    if report["problems"]:
        raise typer.Exit(ExitCode.CANNOT_BUILD)


def _print_json(data: Any) -> None:
    # Plain print, not rich: rich wraps long strings at the console width.
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _render_inspection(report: dict[str, Any]) -> None:
    from rich.table import Table

    out.print(
        f"[bold]{report['path']}[/]  layer: {report['layer'] or '(no layerkit manifest)'}  "
        f"files: {report['files']}  unzipped: {mib(report['unzipped'])}  "
        f"zipped: {mib(report['zipped'])}  quota headroom: {mib(report['quota_headroom'])}"
    )
    out.print(
        f"Python: {', '.join(report['python_versions']) or 'any'}  "
        f"architectures: {', '.join(report['architectures'])}"
    )
    bytecode = report["bytecode"]
    caveat = {"timestamp": ", valid only where extraction keeps file times"}
    covered = [
        f"{tag} for {t['sources']}/{bytecode['sources']} sources ({t['kind']}"
        f"{caveat.get(t['kind'], '')})"
        for tag, t in bytecode["tags"].items()
    ]
    out.print(
        "bytecode: " + ("; ".join(covered) if covered else "none")
        if covered or not bytecode["sources"]
        else f"bytecode: none, so every cold start compiles its {bytecode['sources']} sources"
    )
    dists = Table("distribution", "version", "size", "site-packages")
    for d in report["distributions"]:
        dists.add_row(d["name"], d["version"], mib(d["size"]) if d["size"] else "?", d["site"])
    out.print(dists)
    largest = Table("largest files", "size")
    for f in report["largest_files"]:
        largest.add_row(f["path"], mib(f["size"]))
    out.print(largest)
    for problem in report["problems"]:
        err.print(f"[red]problem:[/] {problem}")


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        prefix = {logging.WARNING: "warning: ", logging.ERROR: "error: "}.get(record.levelno, "")
        err.print(prefix + record.getMessage(), markup=False, highlight=False)


def main(argv: Sequence[str] | None = None) -> int:
    # A CI runner stops jobs with SIGTERM: unwind as for Ctrl-C (typer exits 130), so that
    # containers are removed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    logger = logging.getLogger("layerkit")
    if not logger.handlers:
        logger.addHandler(_Handler())
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:
        # Standalone mode: typer reports usage errors itself and exits with code 2.
        app(args=list(argv) if argv is not None else None, prog_name="layerkit")
    except LayerkitError as exc:
        if _state["debug"]:
            traceback.print_exc()
        err.print(f"error: {exc}", markup=False, highlight=False)
        return exc.exit_code
    except SystemExit as exc:
        if isinstance(exc.code, int):
            return exc.code
        return ExitCode.OK if exc.code is None else ExitCode.FAILED
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
