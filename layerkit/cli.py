"""The command line: parse, call one core function, render. No logic lives here."""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from layerkit import options as opt
from layerkit import render
from layerkit.build import Context, Strategy, build_all, lock_recipe
from layerkit.errors import ExitCode, LayerkitError
from layerkit.inspection import inspect_layer
from layerkit.quota import DIRECT_UPLOAD_LIMIT
from layerkit.recipe import recipes_named

if TYPE_CHECKING:
    from layerkit.audit import Scope

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
    )


def _registry_path(flag: Path | None) -> Path:
    from layerkit.registry import path_for

    return path_for(flag, os.environ)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option(help="Show tracebacks and every command run.")] = False,
) -> None:
    _state["debug"] = debug
    logging.getLogger("layerkit").setLevel(logging.DEBUG if debug else logging.INFO)


@app.command()
def lock(
    names: opt.RecipesArg = None,
    recipes_dir: opt.RecipesDir = Path("recipes"),
    check: Annotated[
        bool, typer.Option(help="Only check that every lock is fresh; write nothing.")
    ] = False,
    upgrade: opt.Upgrade = False,
    upgrade_package: opt.UpgradePackage = None,
    index_url: opt.IndexUrl = None,
    extra_index_url: opt.ExtraIndexUrl = None,
    ca_bundle: opt.CaBundle = None,
    strategy: opt.StrategyOption = Strategy.auto,
    image: opt.Image = None,
    network: opt.Network = None,
) -> None:
    """Resolve recipes for their targets into lock files beside them."""
    loaded = recipes_named(names, recipes_dir)
    with render.reporting(False) as reporter:
        ctx = _context(reporter, index_url, extra_index_url, ca_bundle, strategy, image, network)
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
    locked: Annotated[
        bool,
        typer.Option(help="Refuse a missing or stale lock instead of writing it (for CI)."),
    ] = False,
    upgrade: opt.Upgrade = False,
    upgrade_package: opt.UpgradePackage = None,
    index_url: opt.IndexUrl = None,
    extra_index_url: opt.ExtraIndexUrl = None,
    ca_bundle: opt.CaBundle = None,
    strategy: opt.StrategyOption = Strategy.auto,
    image: opt.Image = None,
    network: opt.Network = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Then import every module in the runtime image.")
    ] = False,
    runtime_image: opt.RuntimeImage = None,
    native: opt.Native = False,
    require_bytecode: opt.RequireBytecode = False,
    registry_path: opt.RegistryPath = None,
    as_json: opt.AsJson = False,
) -> None:
    """Build deterministic layer ZIPs from recipes, from fitting wheels or in a container."""
    loaded = recipes_named(names, recipes_dir)
    with render.reporting(as_json) as reporter:
        ctx = _context(
            reporter, index_url, extra_index_url, ca_bundle, strategy, image, network,
            require_bytecode,
        )  # fmt: skip
        artifacts = build_all(
            loaded, ctx, out_dir, _registry_path(registry_path), locked=locked,
            upgrade=upgrade, upgrade_packages=tuple(upgrade_package or ()),
        )  # fmt: skip
    reports = []
    if verify:
        from layerkit.verify import verify_all

        zips = [a.path for a in artifacts]
        reports = verify_all(
            zips, image=runtime_image, network=network, native=native, env=os.environ
        )
    if as_json:
        data = [a.as_dict() for a in artifacts]
        for item in data if verify else []:
            item["verification"] = [r for r in reports if r["zip"] == item["path"]]
        render.print_json(data)
    else:
        render.artifacts(artifacts)
        render.verification(reports)
    if not all(r["ok"] for r in reports):
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
    from layerkit.verify import verify_all

    zips = [Path(name) for name in layers if name.endswith(".zip")]
    names = [name for name in layers if not name.endswith(".zip")]
    if names:
        with render.reporting(as_json) as reporter:
            ctx = _context(reporter, network=network)
            built = build_all(recipes_named(names, recipes_dir), ctx, out_dir, None)
            zips += [a.path for a in built]
    reports = verify_all(zips, image=runtime_image, network=network, native=native, env=os.environ)
    if as_json:
        render.print_json(reports)
    else:
        render.verification(reports)
    if not all(r["ok"] for r in reports):
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
    require_bytecode: opt.RequireBytecode = False,
    registry_path: opt.RegistryPath = None,
    as_json: opt.AsJson = False,
) -> None:
    """Publish a layer version in every region, only where the content is new."""
    from layerkit.aws import Clients
    from layerkit.publish import run
    from layerkit.registry import Registry

    with render.reporting(as_json) as reporter:
        done = run(
            layers or [], recipes_dir=recipes_dir, out_dir=out_dir,
            ctx=_context(reporter, require_bytecode=require_bytecode),
            clients=Clients(profile=profile), regions=region, s3_bucket=s3_bucket,
            dry_run=dry_run, create_bucket=create_bucket,
            registry=Registry(_registry_path(registry_path)), direct_limit=direct_upload_limit,
        )  # fmt: skip
    if dry_run and as_json:
        render.print_json([a.as_dict() for _, actions in done.plans for a in actions])
    elif dry_run:
        render.publish_plan([a for _, actions in done.plans for a in actions])
    elif as_json:
        outcomes = [o.as_dict() for o in done.outcomes]
        render.print_json({"outcomes": outcomes, "api_calls": done.api_calls})
    else:
        render.publish_outcomes(done.outcomes)
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
    from layerkit.aws import Clients
    from layerkit.publish import regions_for
    from layerkit.registry import Registry, sync

    clients = Clients(profile=profile)
    found = sync(regions_for(region, (), clients), clients)
    Registry(_registry_path(registry_path)).record_versions(found)
    if as_json:
        render.print_json([v.as_dict() for v in found])
    else:
        render.out.print(f"synced {len(found)} layer versions")


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
    if as_json:
        render.print_json(
            [{k: v for k, v in x.as_dict().items() if k != "manifest"} for x in found]
        )
    else:
        render.versions(found)


@app.command()
def show(
    spec: Annotated[str, typer.Argument(help="NAME or NAME:VERSION")],
    registry_path: opt.RegistryPath = None,
    as_json: opt.AsJson = False,
) -> None:
    """A layer version: where it is published, and what it contains."""
    from layerkit.registry import Registry

    found = Registry(_registry_path(registry_path)).version(spec)
    if as_json:
        render.print_json([v.as_dict() for v in found])
    else:
        render.version_content(found)


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
    found = {kind: [c.to_json() for c in items] for kind, items in changes.items()}
    if as_json:
        render.print_json(found)
    else:
        render.changes(found)


def _scope(
    region: list[str] | None,
    profile: str | None,
    role_arn: list[str] | None,
    organization: bool = False,
    role_name: str = "OrganizationAccountAccessRole",
) -> Scope:
    from layerkit.audit import Scope

    return Scope(profile, tuple(role_arn or ()), organization, role_name, tuple(region or ()))


@app.command()
def audit(
    region: opt.Regions = None,
    profile: opt.Profile = None,
    role_arn: opt.RoleArns = None,
    organization: opt.Organization = False,
    role_name: opt.RoleName = "OrganizationAccountAccessRole",
    package: Annotated[
        str | None,
        typer.Option(help='Functions shipping a matching distribution: "urllib3<2.2.2".'),
    ] = None,
    fail_on: Annotated[
        str | None, typer.Option(help="Exit 7 when found: outdated,deleted,oversize (any of).")
    ] = None,
    registry_path: opt.RegistryPath = None,
    as_json: opt.AsJson = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print every reference as CSV.")] = False,
) -> None:
    """Which functions, in which regions and accounts, use which layer versions."""
    from layerkit.audit import gates, run
    from layerkit.index import cache_dir
    from layerkit.registry import Registry

    gated = gates(fail_on)
    scope = _scope(region, profile, role_arn, organization, role_name)
    registry = Registry(_registry_path(registry_path))
    done = run(scope, registry, cache_dir(os.environ), package, gated)
    if as_json:
        render.print_json({**done.report.as_dict(), "api_calls": done.api_calls})
    elif as_csv:
        render.audit_csv(done.report)
    else:
        render.audit(done.report)
    if done.gated:
        render.err.print(f"audit: found {', '.join(done.gated)} (--fail-on)")
        raise typer.Exit(ExitCode.GATE)
    if done.report.failures:
        raise typer.Exit(ExitCode.AWS)


@app.command()
def rollout(
    layer: Annotated[str, typer.Argument(help="The layer name (in the scanned accounts).")],
    to: Annotated[int | None, typer.Option("--to", help="Version (default: the latest).")] = None,
    region: opt.Regions = None,
    profile: opt.Profile = None,
    role_arn: opt.RoleArns = None,
    only: Annotated[list[str] | None, typer.Option(help="Only these functions.")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Not these functions.")] = None,
    parallel: Annotated[int, typer.Option(help="Functions updated at once.")] = 1,
    dry_run: Annotated[bool, typer.Option(help="Show the plan; change nothing.")] = False,
    as_json: opt.AsJson = False,
) -> None:
    """Move functions on an older version of a layer to a newer one, keeping the rest."""
    from layerkit.audit import rollout as roll

    scope = _scope(region, profile, role_arn)
    results = roll(scope, layer, to, set(only or ()), set(exclude or ()), parallel, dry_run)
    if as_json:
        render.print_json(results)
    else:
        render.rollout(results, layer)
    if any(r["status"] == "failed" for r in results):
        raise typer.Exit(ExitCode.AWS)


@app.command()
def prune(
    layer: Annotated[str, typer.Argument(help="The layer name.")],
    keep: Annotated[int, typer.Option(help="Never delete the newest N versions.")] = 3,
    region: opt.Regions = None,
    profile: opt.Profile = None,
    role_arn: opt.RoleArns = None,
    yes: Annotated[bool, typer.Option("--yes", help="Delete; without it, only show.")] = False,
    registry_path: opt.RegistryPath = None,
    as_json: opt.AsJson = False,
) -> None:
    """Delete old versions of a layer that no scanned function version references."""
    from layerkit.audit import prune as cut
    from layerkit.registry import Registry

    registry = Registry(_registry_path(registry_path))
    rows = cut(_scope(region, profile, role_arn), layer, keep, yes, registry)
    if as_json:
        freed = sum(r["size"] for r in rows)
        render.print_json({"deleted" if yes else "would_delete": rows, "bytes_freed": freed})
    else:
        render.prune(rows, deleted=yes)


@app.command()
def inspect(
    zip_path: Annotated[Path, typer.Argument(help="A layer ZIP (built by layerkit or not).")],
    as_json: opt.AsJson = False,
) -> None:
    """Show what a layer ZIP contains: distributions, sizes, Python versions, architectures."""
    report = inspect_layer(zip_path)
    if as_json:
        render.print_json(report)
    else:
        render.inspection(report)
    if report["problems"]:
        raise typer.Exit(ExitCode.CANNOT_BUILD)


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        prefix = {logging.WARNING: "warning: ", logging.ERROR: "error: "}.get(record.levelno, "")
        render.err.print(prefix + record.getMessage(), markup=False, highlight=False)


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
        render.err.print(f"error: {exc}", markup=False, highlight=False)
        return exc.exit_code
    except SystemExit as exc:
        if isinstance(exc.code, int):
            return exc.code
        return ExitCode.OK if exc.code is None else ExitCode.FAILED
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
