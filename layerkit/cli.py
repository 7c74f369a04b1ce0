"""The command line: parse, call one core function, render. No logic lives here."""

from __future__ import annotations

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

# rich's progress and table modules are imported where they are drawn: a no-op build must
# finish in well under a second, and it draws neither a spinner nor (with --json) a table.

from layerkit import recipe as recipes
from layerkit.build import Artifact, Context, build_recipe, lock_recipe
from layerkit.container import DockerEngine
from layerkit.errors import LayerkitError
from layerkit.inspection import inspect_layer
from layerkit.quota import mib
from layerkit.verify import verify

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
    as_json: AsJson = False,
) -> None:
    """Build deterministic layer ZIPs from recipes, from fitting wheels or in a container."""
    loaded = _recipes(names, recipes_dir)
    artifacts: list[Artifact] = []
    with _reporting(as_json) as reporter:
        ctx = _context(reporter, index_url, extra_index_url, ca_bundle, strategy, image, network)
        for recipe in loaded:
            artifacts += build_recipe(
                recipe,
                ctx,
                out_dir,
                locked=locked,
                upgrade=upgrade,
                upgrade_packages=tuple(upgrade_package or ()),
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
        raise typer.Exit(3)


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
    engine = None if native else DockerEngine.connect(os.environ)
    reports = []
    for zip_path in zips:
        for result in verify(zip_path, engine=engine, image=image, network=network, native=native):
            reports.append({"zip": str(zip_path), **result.as_dict()})
    return reports


def _render_verification(reports: list[dict[str, Any]]) -> None:
    for report in reports:
        failed = {m: e for m, e in report["modules"].items() if e != "ok"}
        mark = "[green]ok[/]" if report["ok"] else "[red]FAILED[/]"
        out.print(
            f"{mark} {report['zip']} {report['target']} in {report['where']}: "
            f"{len(report['modules']) - len(failed)}/{len(report['modules'])} imported"
        )
        for module, error in failed.items():
            out.print(f"    {module}: {error}", markup=False, highlight=False)


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
        raise typer.Exit(3)


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
        raise typer.Exit(3)


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
    # A CI runner stops jobs with SIGTERM: unwind as for Ctrl-C, so containers are removed.
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
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        err.print("interrupted: nothing was written")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
