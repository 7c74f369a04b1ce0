"""The command line: parse, call one core function, render. No logic lives here.

No `from __future__ import annotations` here: typer reads every command's annotations at
start-up, and evaluating them from strings costs a tenth of a no-op build.
"""

import copy
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer.models import CommandInfo

from layerkit import log, settings
from layerkit.builder.context import Context, Strategy
from layerkit.builder.pipeline import build_all, lock_recipe
from layerkit.cli import options as opt
from layerkit.cli import render
from layerkit.errors import ExitCode, LayerkitError
from layerkit.quota import DIRECT_UPLOAD_LIMIT
from layerkit.recipe import recipes_named
from layerkit.settings import IndexStrategy
from layerkit.version import __version__

if TYPE_CHECKING:
    import logging

    from layerkit.account.scan import Scope

# The AWS, audit, registry and verify modules, and rich's tables and progress, are imported
# by the commands that use them: a no-op build must finish in well under a second.

app = typer.Typer(
    name="layerkit",
    help="Build, publish and audit AWS Lambda layers for Python.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,  # locals can hold credentials
    add_completion=False,
)
_state = {"debug": False}


def _context(
    reporter: render.Reporter,
    index_url: str | None = None,
    extra_index_url: list[str] | None = None,
    ca_bundle: str | None = None,
    strategy: Strategy = Strategy.auto,
    image: str | None = None,
    network: str | None = None,
    require_bytecode: bool = False,
    index_strategy: IndexStrategy | None = None,
    audit: bool = False,
    osv_db: Path | None = None,
) -> Context:
    return Context.from_environment(
        os.environ,
        index_url=index_url,
        extra_index_urls=tuple(extra_index_url or ()),
        ca_bundle=ca_bundle,
        report=reporter,
        strategy=strategy,
        image=image,
        network=network,
        require_bytecode=require_bytecode,
        index_strategy=index_strategy.value if index_strategy else None,
        audit=audit,
        osv_db=osv_db,
    )


def _registry_path(flag: Path | None) -> Path:
    return settings.resolve(settings.REGISTRY, os.environ, flag=flag)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option(help="Show tracebacks and every command run.")] = False,
) -> None:
    _state["debug"] = debug


@app.command()
def lock(
    names: opt.RecipesArg = None,
    recipes_dir: opt.RecipesDir = Path("recipes"),
    check: opt.CheckOnly = False,
    upgrade: opt.Upgrade = False,
    upgrade_package: opt.UpgradePackage = None,
    index_url: opt.IndexUrl = None,
    extra_index_url: opt.ExtraIndexUrl = None,
    ca_bundle: opt.CaBundle = None,
    index_strategy: opt.IndexStrategy = None,
    strategy: opt.StrategyOption = Strategy.auto,
    image: opt.Image = None,
    network: opt.Network = None,
) -> None:
    """Resolve recipes for their targets into lock files beside them."""
    loaded = recipes_named(names, recipes_dir)
    with render.reporting(False) as reporter:
        ctx = _context(
            reporter, index_url, extra_index_url, ca_bundle, strategy, image, network,
            index_strategy=index_strategy,
        )  # fmt: skip
        for recipe in loaded:
            lock_recipe(
                recipe, ctx, check=check, refresh=not check, upgrade=upgrade,
                upgrade_packages=tuple(upgrade_package or ()),
            )  # fmt: skip
    for recipe in loaded:
        for target in recipe.targets:
            render.out.print(f"{'fresh' if check else 'written'}: {recipe.lock_path(target)}")


@app.command()
def build(
    names: opt.RecipesArg = None,
    recipes_dir: opt.RecipesDir = Path("recipes"),
    out_dir: opt.OutDir = Path("dist"),
    locked: opt.Locked = False,
    upgrade: opt.Upgrade = False,
    upgrade_package: opt.UpgradePackage = None,
    index_url: opt.IndexUrl = None,
    extra_index_url: opt.ExtraIndexUrl = None,
    ca_bundle: opt.CaBundle = None,
    index_strategy: opt.IndexStrategy = None,
    strategy: opt.StrategyOption = Strategy.auto,
    image: opt.Image = None,
    network: opt.Network = None,
    verify: opt.Verify = False,
    runtime_image: opt.RuntimeImage = None,
    native: opt.Native = False,
    require_bytecode: opt.RequireBytecode = False,
    audit: opt.BuildAudit = False,
    osv_db: opt.OsvDb = None,
    registry_path: opt.RegistryPath = None,
    as_json: opt.AsJson = False,
) -> None:
    """Build deterministic layer ZIPs from recipes, from fitting wheels or in a container."""
    loaded = recipes_named(names, recipes_dir)
    with render.reporting(as_json) as reporter:
        ctx = _context(
            reporter, index_url, extra_index_url, ca_bundle, strategy, image, network,
            require_bytecode, index_strategy, audit, osv_db,
        )  # fmt: skip
        artifacts = build_all(
            loaded, ctx, out_dir, _registry_path(registry_path), locked=locked,
            upgrade=upgrade, upgrade_packages=tuple(upgrade_package or ()),
        )  # fmt: skip
    reports = None
    if verify:
        from layerkit.builder.verify import verify_all

        zips = [a.path for a in artifacts]
        reports = verify_all(
            zips, image=runtime_image, network=network, native=native, env=os.environ
        )
    render.built(artifacts, reports, as_json)
    if not all(r.ok for r in reports or ()):
        raise typer.Exit(ExitCode.CANNOT_BUILD)


@app.command(name="verify")
def verify_command(
    layers: Annotated[list[str], typer.Argument(help="Layer ZIPs, or recipes to build first.")],
    recipes_dir: opt.RecipesDir = Path("recipes"),
    out_dir: opt.OutDir = Path("dist"),
    runtime_image: opt.RuntimeImage = None,
    network: opt.Network = None,
    native: opt.Native = False,
    as_json: opt.AsJson = False,
) -> None:
    """Import every module of a layer in the runtime it is for; exit 3 if any fails."""
    from layerkit.builder.verify import verify_all

    zips = [Path(name) for name in layers if name.endswith(".zip")]
    names = [name for name in layers if not name.endswith(".zip")]
    if names:
        with render.reporting(as_json) as reporter:
            ctx = _context(reporter, network=network)
            built = build_all(recipes_named(names, recipes_dir), ctx, out_dir, None)
            zips += [a.path for a in built]
    reports = verify_all(zips, image=runtime_image, network=network, native=native, env=os.environ)
    render.verification(reports, as_json)
    if not all(r.ok for r in reports):
        raise typer.Exit(ExitCode.CANNOT_BUILD)


@app.command()
def publish(
    layers: Annotated[
        list[str] | None,
        typer.Argument(help="Recipes (built with --locked if needed) or ZIPs from `build`."),
    ] = None,
    recipes_dir: opt.RecipesDir = Path("recipes"),
    out_dir: opt.OutDir = Path("dist"),
    region: opt.Regions = None,
    profile: opt.Profile = None,
    dry_run: opt.DryRun = False,
    s3_bucket: opt.S3Bucket = None,
    create_bucket: opt.CreateBucket = False,
    direct_upload_limit: opt.DirectUploadLimit = DIRECT_UPLOAD_LIMIT,
    require_bytecode: opt.RequireBytecode = False,
    align_versions: Annotated[
        bool,
        typer.Option(
            "--align-versions",
            help="Publish the same content as fillers in regions behind, so that the new "
            "version has one number everywhere (or [publish] align-versions = true).",
        ),
    ] = False,
    public: Annotated[
        bool,
        typer.Option(
            "--public",
            help="Allow principals = ['*']: every AWS account can read the layer "
            "(or [publish] public = true).",
        ),
    ] = False,
    signing_profile: Annotated[
        str | None,
        typer.Option(
            "--signing-profile",
            help="Sign with this AWS Signer profile (in the first region) and publish the "
            "signed ZIP everywhere (or [publish] signing-profile; needs --s3-bucket).",
        ),
    ] = None,
    signing_wait: Annotated[
        float | None,
        typer.Option(
            "--signing-wait", min=1, help="Seconds to wait for the signing job (default 600)."
        ),
    ] = None,
    registry_path: opt.RegistryPath = None,
    as_json: opt.AsJson = False,
) -> None:
    """Publish a layer version in every region, only where the content is new."""
    from layerkit.account.clients import Clients
    from layerkit.registry import Registry
    from layerkit.workflows import PublishFlags, build_and_publish

    with render.reporting(as_json) as reporter:
        done = build_and_publish(
            layers or [], recipes_dir=recipes_dir, out_dir=out_dir,
            ctx=_context(reporter, require_bytecode=require_bytecode),
            clients=Clients(profile=profile), regions=region,
            dry_run=dry_run, create_bucket=create_bucket,
            registry=Registry(_registry_path(registry_path)), direct_limit=direct_upload_limit,
            flags=PublishFlags(s3_bucket, align_versions, public, signing_profile, signing_wait),
        )  # fmt: skip
    render.published(done, dry_run, as_json)
    if done.failed:
        raise typer.Exit(ExitCode.AWS)


registry_app = typer.Typer(help="The local record of builds and published versions.")
app.add_typer(registry_app, name="registry")


@registry_app.command("sync")
def registry_sync(
    region: opt.Regions = None,
    profile: opt.Profile = None,
    registry_path: opt.RegistryPath = None,
    as_json: opt.AsJson = False,
) -> None:
    """Rebuild the registry's versions from the account: every layer, every version."""
    from layerkit.account.clients import Clients
    from layerkit.account.publish import regions_for
    from layerkit.account.sync import sync
    from layerkit.registry import Registry

    clients = Clients(profile=profile)
    found = sync(regions_for(region, (), clients), clients)
    Registry(_registry_path(registry_path)).record_versions(found)
    render.synced(found, as_json)


@app.command(name="ls")
def list_versions(
    layer: Annotated[str | None, typer.Argument(help="Only this layer.")] = None,
    region: Annotated[str | None, typer.Option(help="Only this region.")] = None,
    registry_path: opt.RegistryPath = None,
    as_json: opt.AsJson = False,
) -> None:
    """Layers and versions per region, with sizes and content hashes (from the registry)."""
    from layerkit.registry import Registry

    found = Registry(_registry_path(registry_path)).versions(layer, region)
    render.versions(found, as_json)


@app.command()
def show(
    spec: Annotated[str, typer.Argument(help="NAME or NAME:VERSION")],
    registry_path: opt.RegistryPath = None,
    as_json: opt.AsJson = False,
) -> None:
    """A layer version: where it is published, and what it contains."""
    from layerkit.registry import Registry

    found = Registry(_registry_path(registry_path)).version(spec)
    render.version_content(found, as_json)


@app.command(name="diff")
def diff_versions(
    old: Annotated[str, typer.Argument(help="NAME:A")],
    new: Annotated[str, typer.Argument(help="NAME:B")],
    registry_path: opt.RegistryPath = None,
    as_json: opt.AsJson = False,
) -> None:
    """Distributions added, removed, upgraded and downgraded between two versions."""
    from layerkit.registry import Registry

    changes = Registry(_registry_path(registry_path)).diff(old, new)
    render.changes(changes, as_json)


def _scope(
    region: list[str] | None,
    profile: str | None,
    role_arn: list[str] | None,
    organization: bool = False,
    role_name: str = "OrganizationAccountAccessRole",
    owner_tag: list[str] | None = None,
    aggregator: str | None = None,
) -> "Scope":
    from layerkit.account.scan import Scope
    from layerkit.targets import lifecycles

    lifecycles()  # a LAYERKIT_RUNTIMES_FILE that does not parse is named before any call
    owner_tags = settings.resolve(settings.OWNER_TAGS, os.environ, flag=tuple(owner_tag or ()))
    return Scope(
        profile, tuple(role_arn or ()), organization, role_name, tuple(region or ()), owner_tags,
        aggregator=aggregator,
    )  # fmt: skip


@app.command()
def audit(
    region: opt.Regions = None,
    profile: opt.Profile = None,
    role_arn: opt.RoleArns = None,
    organization: opt.Organization = False,
    role_name: opt.RoleName = "OrganizationAccountAccessRole",
    owner_tag: opt.OwnerTags = None,
    config_aggregator: Annotated[
        str | None,
        typer.Option(
            "--config-aggregator",
            help="Find the organisation's functions with one AWS Config aggregator query, "
            "then read only the accounts and regions that have some (through --role-name).",
        ),
    ] = None,
    package: opt.Package = None,
    vulnerabilities: opt.Vulnerabilities = False,
    osv_db: opt.OsvDb = None,
    fail_on: opt.FailOn = None,
    registry_path: opt.RegistryPath = None,
    as_json: opt.AsJson = False,
    as_csv: opt.AsCsv = False,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write the audit as a self-contained page to FILE."),
    ] = None,
) -> None:
    """Which functions, in which regions and accounts, use which layer versions."""
    from layerkit import osv
    from layerkit.account.audit import gates, run
    from layerkit.registry import Registry

    gated = gates(fail_on)
    cache_root = settings.resolve(settings.CACHE_DIR, os.environ)
    source = None
    if vulnerabilities or osv_db or "vulnerable" in gated:
        source = osv.source(osv_db, dict(os.environ), cache_root)  # reads --osv-db now
    scope = _scope(region, profile, role_arn, organization, role_name, owner_tag, config_aggregator)
    registry = Registry(_registry_path(registry_path))
    done = run(scope, registry, cache_root, package, gated, vulnerabilities=source)
    render.audited(done, as_json, as_csv)
    if html is not None:
        from layerkit.cli import pages

        note = render.inventory_note(done.report.inventory) if done.report.inventory else ""
        pages.write_page(html, pages.render("audit.html", v=pages.audit_view(done.report, note)))
        render.err.print(f"wrote {html}")
    if done.gated:
        render.err.print(f"audit: found {', '.join(done.gated)} (--fail-on)")
        raise typer.Exit(ExitCode.GATE)
    if done.report.failures:
        raise typer.Exit(ExitCode.AWS)


@app.command()
def rollout(
    layer: opt.LayerName,
    to: opt.ToVersion = None,
    region: opt.Regions = None,
    profile: opt.Profile = None,
    role_arn: opt.RoleArns = None,
    only: opt.Only = None,
    exclude: opt.Exclude = None,
    parallel: opt.Parallel = 1,
    dry_run: opt.DryRun = False,
    aliases: opt.Aliases = False,
    canary: opt.Canary = None,
    promote: opt.Promote = False,
    abort: opt.Abort = False,
    owner_tag: opt.OwnerTags = None,
    allow_drift: opt.AllowDrift = False,
    registry_path: opt.RegistryPath = None,
    as_json: opt.AsJson = False,
) -> None:
    """Move functions on an older version of a layer to a newer one, keeping the rest;
    with --aliases, the aliases serving traffic too (optionally as a canary first).
    Functions a stack or Terraform owns are left to it unless --allow-drift."""
    from layerkit.account.rollout import Mode, run
    from layerkit.account.rollout import Status as RolloutStatus
    from layerkit.registry import Registry

    mode = Mode(
        aliases or promote or abort or canary is not None, canary, promote, abort, allow_drift
    )
    results = run(
        _scope(region, profile, role_arn, owner_tag=owner_tag), layer, to, set(only or ()),
        set(exclude or ()), parallel, dry_run, Registry(_registry_path(registry_path)), mode,
    )  # fmt: skip
    render.rollout(results, layer, as_json)
    if any(r.status == RolloutStatus.failed for r in results):
        raise typer.Exit(ExitCode.AWS)
    if any(r.status == RolloutStatus.refused for r in results):
        raise typer.Exit(ExitCode.GATE)


@app.command()
def bump(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files and folders of IaC sources (default: the current folder)."),
    ] = None,
    layer: Annotated[
        list[str] | None, typer.Option("--layer", help="Only this layer (repeatable).")
    ] = None,
    to: Annotated[int | None, typer.Option("--to", min=1, help="Pin this version instead.")] = None,
    region: Annotated[
        list[str] | None,
        typer.Option(
            "--region",
            help="A region the code deploys to, for ARNs whose region is a placeholder "
            "(repeatable; default: where the registry saw the layer published).",
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Change nothing; exit 7 if anything is behind.")
    ] = False,
    listing: Annotated[
        bool, typer.Option("--list", help="Only list the references found; ask no account.")
    ] = False,
    show_diff: Annotated[bool, typer.Option("--diff", help="Print a unified diff.")] = False,
    profile: opt.Profile = None,
    registry_path: opt.RegistryPath = None,
    as_json: opt.AsJson = False,
) -> None:
    """Move the layer version ARNs in SAM, CloudFormation, CDK, Serverless and Terraform
    sources (any text file) to the newest version; only the version digits change."""
    from layerkit.iac.sources import collect

    sources = collect(paths or [Path(".")])
    if listing:
        render.references(sources, set(layer or ()), as_json)
        return
    from layerkit.account import bump as bumping
    from layerkit.account.clients import Clients
    from layerkit.registry import Registry

    registry = _registry_path(registry_path)
    published = bumping.published_regions(
        [(v.layer, v.region) for v in Registry(registry).versions()] if registry.exists() else []
    )
    bumps = bumping.plan(
        sources, Clients(profile=profile), regions=list(region or ()), published=published,
        layers=set(layer or ()), to=to,
    )  # fmt: skip
    if not check:
        bumps = bumping.apply(bumps, sources)
    render.bumped(bumps, sources, show_diff, as_json)
    stuck = {bumping.Status.refused, bumping.Status.unknown, bumping.Status.skipped}
    if any(b.status in stuck for b in bumps) or (
        check and any(b.status == bumping.Status.behind for b in bumps)
    ):
        raise typer.Exit(ExitCode.GATE)


@app.command()
def prune(
    layer: Annotated[str, typer.Argument(help="The layer name.")],
    keep: opt.Keep = 3,
    region: opt.Regions = None,
    profile: opt.Profile = None,
    role_arn: opt.RoleArns = None,
    yes: opt.Yes = False,
    registry_path: opt.RegistryPath = None,
    as_json: opt.AsJson = False,
) -> None:
    """Delete old versions of a layer that no scanned function version references."""
    from layerkit.account.prune import prune as cut
    from layerkit.registry import Registry

    registry = Registry(_registry_path(registry_path))
    done = cut(_scope(region, profile, role_arn), layer, keep, yes, registry)
    render.prune(done, as_json)


@app.command()
def report(
    layer: Annotated[
        str,
        typer.Argument(
            help="A layer ZIP, a recipe (built first, --locked), or a published layer as "
            "the registry records it: NAME or NAME:VERSION."
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="The page to write.")],
    recipes_dir: opt.RecipesDir = Path("recipes"),
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help="Where a recipe's ZIPs go (-o is the page).")
    ] = Path("dist"),
    vulnerabilities: opt.Vulnerabilities = False,
    osv_db: opt.OsvDb = None,
    with_sbom: Annotated[bool, typer.Option("--sbom", help="Include the SBOM.")] = False,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Measure cold imports with each target's Python (as `verify --native`).",
        ),
    ] = False,
    registry_path: opt.RegistryPath = None,
) -> None:
    """A layer's size and contents as one self-contained page: what its bytes are, against
    the 250 MiB a function shares with its layers."""
    from layerkit import osv
    from layerkit.cli import pages
    from layerkit.layer import manifest as manifests
    from layerkit.layer import sbom as boms
    from layerkit.layer.breakdown import breakdown
    from layerkit.layer.inspection import inspect_layer

    cache_root = settings.resolve(settings.CACHE_DIR, os.environ)
    source = osv.source(osv_db, dict(os.environ), cache_root) if vulnerabilities or osv_db else None
    recipe = Path(layer) if layer.endswith(".toml") else recipes_dir / f"{layer}.toml"
    if Path(layer).is_dir():
        raise typer.BadParameter(
            f"{layer} is a folder: give a layer ZIP, a recipe, or a published NAME[:VERSION].",
            param_hint="LAYER",
        )
    views = []
    if layer.endswith(".zip") or (Path(layer).is_file() and not layer.endswith(".toml")):
        zips = [Path(layer)]
    elif recipe.exists():
        with render.reporting(False) as reporter:
            built = build_all(recipes_named([str(recipe)], recipes_dir), _context(reporter),
                              out_dir, None, locked=True)  # fmt: skip
        zips = [a.path for a in built]
    else:
        from layerkit.registry import Registry

        found = Registry(_registry_path(registry_path)).version(layer)
        newest = max(found, key=lambda v: v.version)
        if newest.manifest is None:
            from layerkit.errors import UserError

            raise UserError(
                f"{newest.arn} has no layerkit manifest in the registry: download its ZIP "
                "and run `layerkit report ZIP`."
            )
        zips = []
        views.append(pages.layer_view(
            f"{layer} ({newest.arn})", newest.manifest, None,
            advisories=pages.advisories(
                source, [(d.name, d.version) for d in newest.manifest.distributions().values()]
            ),
            sbom=boms.of_manifest(newest.manifest).decode() if with_sbom else "",
            zipped=newest.size,
        ))  # fmt: skip
    for zip_path in zips:
        found_manifest = manifests.read(zip_path)
        verified = []
        if verify:
            from layerkit.builder.verify import verify_all

            verified = verify_all([zip_path], image=None, network=None, native=True,
                                  env=os.environ)  # fmt: skip
        inspection = inspect_layer(zip_path)
        dists = found_manifest.distributions().values() if found_manifest else (
            inspection.distributions)  # fmt: skip
        shipped = [(d.name, d.version) for d in dists]
        views.append(pages.layer_view(
            str(zip_path), found_manifest, breakdown(zip_path), inspection, verified,
            pages.advisories(source, shipped),
            boms.of_zip(zip_path).decode() if with_sbom else "",
        ))  # fmt: skip
    pages.write_page(output, pages.render("report.html", views=views))
    render.err.print(f"wrote {output}")


@app.command()
def catalog(
    output: Annotated[Path, typer.Option("-o", "--output", help="The folder to write.")],
    registry_path: opt.RegistryPath = None,
) -> None:
    """A static site of the registry's layers (for S3 or GitHub Pages): the latest ARN per
    region, runtime and architecture, and a page per version with its contents, its
    changes and its SBOM."""
    from layerkit.cli import pages
    from layerkit.layer import sbom as boms
    from layerkit.registry import Registry

    if output.exists() and not output.is_dir():
        raise typer.BadParameter(
            f"{output} is a file: give a folder for the site.", param_hint="-o"
        )
    contents = pages.contents_of(Registry(_registry_path(registry_path)).versions())
    recorded = [(layer, c) for layer, found in contents.items() for c in found if c.manifest]
    made = boms.of_manifests(
        [c.manifest for _, c in recorded if c.manifest],
        settings.resolve(settings.CACHE_DIR, os.environ),
    )
    sboms = {
        (layer, c.sha256): data.decode() for (layer, c), data in zip(recorded, made, strict=True)
    }
    written = pages.write_catalog(output, contents, sboms)
    render.err.print(f"wrote {len(written)} pages under {output}")


@app.command()
def inspect(
    zip_path: Annotated[Path, typer.Argument(help="A layer ZIP (built by layerkit or not).")],
    as_json: opt.AsJson = False,
) -> None:
    """Show what a layer ZIP contains: distributions, sizes, Python versions, architectures."""
    from layerkit.layer.inspection import inspect_layer

    report = inspect_layer(zip_path)
    render.inspection(report, as_json)
    if report.problems:
        raise typer.Exit(ExitCode.CANNOT_BUILD)


@app.command()
def sbom(
    layer: opt.LayerRef,
    fmt: opt.SbomFormat = "json",
    registry_path: opt.RegistryPath = None,
) -> None:
    """Print a layer's CycloneDX 1.6 SBOM: from a ZIP, or a published NAME[:VERSION]."""
    from layerkit.layer import sbom as boms

    if fmt not in boms.FORMATS:
        raise typer.BadParameter(f"{fmt!r}: use json or xml.", param_hint="--format")
    if Path(layer).suffix == ".zip" or Path(layer).exists():
        text = boms.of_zip(Path(layer), fmt)
    else:
        from layerkit.registry import Registry

        found = Registry(_registry_path(registry_path)).newest_manifest(layer)
        text = boms.of_manifest(found, fmt)
    render.raw(text)


def _app_for(args: list[str]) -> typer.Typer:
    """The app with only the command that args run, when they name one after --debug.

    typer turns every command's signature into click parameters at each start: some 20 ms
    for the commands a no-op build does not run. `layerkit --help`, and a name that is no
    command, still see them all.
    """
    name = next((a for a in args if a not in ("--debug", "--no-debug")), None)
    commands = [c for c in app.registered_commands if _command_name(c) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if not commands and not groups:
        return app
    only = copy.copy(app)
    only.registered_commands, only.registered_groups = commands, groups
    return only


def _command_name(command: CommandInfo) -> str | None:
    if command.name:
        return command.name
    # typer's own rule for a command named by its function
    return command.callback.__name__.lower().replace("_", "-") if command.callback else None


def _show_log(logger: "logging.Logger") -> None:
    from layerkit.cli import logs  # with logging, when the first message comes

    logs.show(logger, debug=_state["debug"])


def main(argv: Sequence[str] | None = None) -> int:
    # A CI runner stops jobs with SIGTERM: unwind as for Ctrl-C (typer exits 130), so that
    # containers are removed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        # Standalone mode: typer reports usage errors itself and exits with code 2.
        args = list(argv) if argv is not None else sys.argv[1:]
        with log.configured_on_first_use(_show_log):
            _app_for(args)(args=args, prog_name="layerkit")
    except LayerkitError as exc:
        if _state["debug"]:
            render.error(traceback.format_exc())
        render.error(f"error: {exc}")
        return exc.exit_code
    except SystemExit as exc:
        if isinstance(exc.code, int):
            return exc.code
        return ExitCode.OK if exc.code is None else ExitCode.FAILED
    except Exception as exc:  # a bug: one paragraph, never a bare traceback
        if _state["debug"]:
            render.error(traceback.format_exc())
        render.error(
            f"internal error: {type(exc).__name__}: {exc}. This is a bug in layerkit "
            f"{__version__}, not something in your input. Run the command again with --debug "
            "(`layerkit --debug …`) to see where it happened, and report it with that output."
        )
        return ExitCode.FAILED
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
