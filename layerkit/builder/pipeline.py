"""`layerkit lock` and `layerkit build`: from a recipe to deterministic layer ZIPs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from layerkit import log, quota
from layerkit.builder import backends, lockfile
from layerkit.builder.artifact_cache import ArtifactCache, BuildStatus
from layerkit.builder.backends import Backend
from layerkit.builder.compilers import Compiler, HostCompiler
from layerkit.builder.context import Context
from layerkit.builder.lockfile import LockState, shipped
from layerkit.builder.plan import Group, Job, Locks, RecipeFile
from layerkit.errors import BuildError, StaleLockError, VulnerableError
from layerkit.files import sha256_of, write_atomic
from layerkit.layer import sbom_beside
from layerkit.recipe import Recipe, check_requirements
from layerkit.targets import Target

if TYPE_CHECKING:
    from layerkit import osv


@dataclass(frozen=True)
class Artifact:
    """A layer ZIP that `layerkit build` made or found current, as reported."""

    recipe: str
    name: str
    path: Path
    sha256: str
    targets: tuple[str, ...]
    files: int
    unzipped: int
    zipped: int
    status: BuildStatus
    notes: tuple[str, ...] = ()


def lock_recipe(
    recipe: Recipe,
    ctx: Context,
    *,
    check: bool = False,
    refresh: bool = False,
    upgrade: bool = False,
    upgrade_packages: tuple[str, ...] = (),
) -> Locks:
    """Make sure every target has a fresh lock; return each lock with its file's SHA-256.

    check: refuse a missing or stale lock instead of writing one (`--locked`).
    refresh: resolve again even when the lock is fresh (`layerkit lock`).
    """
    locks: Locks = {}
    for target in recipe.targets:
        path = recipe.lock_path(target)
        existing = lockfile.read(recipe, target)
        state = lockfile.status(recipe, target, existing.lock if existing else None)
        wanted = refresh or upgrade or bool(upgrade_packages) or state != LockState.fresh
        if wanted:
            check_requirements(recipe)  # a bad one is named before a stale lock is
        if wanted and check:
            reason = {
                LockState.missing: "does not exist",
                LockState.stale: "is stale: the recipe's requirements changed since it was written",
            }.get(state, "would change")
            raise StaleLockError(str(path), reason, f"layerkit lock {recipe.stem}")
        if wanted:
            action = {
                LockState.missing: "does not exist: writing it",
                LockState.stale: "is stale (the recipe changed): refreshing it",
            }.get(state, "resolving again")
            log.info("%s %s", path, action)
            ctx.report(target.id, "resolving")
            resolved = backends.resolve(recipe, target, ctx, upgrade, upgrade_packages)
            lockfile.write(recipe, target, resolved)
            existing = lockfile.read(recipe, target)
        assert existing is not None
        locks[target.id] = existing
    return locks


def _groups(recipe: Recipe, locks: Locks) -> list[Group]:
    """One ZIP for all targets when they ship the same wheels, else one per architecture."""

    def content(target: Target) -> frozenset[tuple[str, str, tuple[str, ...]]]:
        dists = shipped(locks[target.id].lock, recipe.exclude)
        return frozenset((d.key, d.version, d.hashes) for d in dists)

    targets = recipe.targets
    if len({content(t) for t in targets}) == 1:
        return [Group(recipe.name, tuple(targets))]
    return [
        Group(f"{recipe.name}-{arch}", tuple(t for t in targets if t.architecture == arch))
        for arch in recipe.architectures
    ]


def _recipe_files(recipe: Recipe) -> list[RecipeFile]:
    """Every data and config file of the recipe, sorted by where it lands."""
    found = []
    for spec in recipe.files:
        sources = (
            [(spec.target, spec.source)]
            if spec.source.is_file()
            else [
                (spec.target / p.relative_to(spec.source).as_posix(), p)
                for p in sorted(spec.source.rglob("*"))
                if p.is_file()
            ]
        )
        for target_path, source in sources:
            mode = 0o755 if source.stat().st_mode & 0o111 else 0o644
            found.append(RecipeFile(str(target_path), source, mode, sha256_of(source)))
    return sorted(found, key=lambda f: f.path)


def build_recipe(
    recipe: Recipe,
    ctx: Context,
    out_dir: Path,
    *,
    locked: bool = False,
    upgrade: bool = False,
    upgrade_packages: tuple[str, ...] = (),
) -> list[Artifact]:
    locks = lock_recipe(
        recipe, ctx, check=locked, upgrade=upgrade, upgrade_packages=upgrade_packages
    )
    if ctx.audit or recipe.build.audit:
        _refuse_vulnerable(recipe, locks, ctx)
    files = _recipe_files(recipe)
    cache = ArtifactCache(ctx.cache_root)
    artifacts = []
    for group in _groups(recipe, locks):
        chosen = {t.id: backends.choose(recipe, t, locks[t.id].lock, ctx) for t in group.targets}
        compilers = _compilers(recipe, group, chosen, ctx)
        job = Job(recipe, group, locks, files, chosen, compilers)
        dest = out_dir / f"{group.artifact}.zip"
        found = cache.find(dest, job.key)
        if found is None:
            for target_id, backend in chosen.items():
                log.info("%s (%s): building with %s", group.artifact, target_id, backend.why)
            from layerkit.builder.assemble import assemble  # only when something is written

            summary, status = assemble(job, ctx, cache.path(job.key)), BuildStatus.built
            cache.keep(job.key, summary, dest)
        else:
            summary, status = found
        sidecar = sbom_beside(dest)
        if status != BuildStatus.unchanged or not sidecar.exists():
            _write_sidecar(dest, sidecar)
        ctx.report(group.artifact, status.value)
        zipped = dest.stat().st_size
        artifacts.append(
            Artifact(
                recipe=recipe.stem,
                name=group.artifact,
                path=dest,
                sha256=summary.sha256,
                targets=tuple(t.id for t in group.targets),
                files=summary.files,
                unzipped=summary.unzipped,
                zipped=zipped,
                status=status,
                notes=quota.check(dest.name, summary.unzipped, [], zipped).notes,
            )
        )
    return artifacts


def _refuse_vulnerable(recipe: Recipe, locks: Locks, ctx: Context) -> None:
    """`build --audit`: no ZIP from a lock that ships a known vulnerability."""

    shipping: dict[osv.Package, list[str]] = {}
    for target in recipe.targets:
        for dist in shipped(locks[target.id].lock, recipe.exclude):
            shipping.setdefault((dist.key, dist.version), []).append(target.id)
    ctx.report(recipe.stem, f"checking {len(shipping)} distributions against OSV")
    found = ctx.vulnerabilities().advisories(shipping)
    if not found:
        return
    lines = [
        f"{name} {version} ({', '.join(shipping[(name, version)])}): {a.id} ({a.severity})"
        + (f", fixed in {', '.join(a.fixed)}" if a.fixed else ", no fixed version yet")
        for (name, version), advisories in sorted(found.items())
        for a in advisories
    ]
    upgrades = " ".join(f"--upgrade-package {name}" for name in sorted({n for n, _ in found}))
    raise VulnerableError(
        f"{recipe.path}: the lock ships known vulnerabilities, so nothing was built: "
        f"{'; '.join(lines)}. Upgrade them (`layerkit lock {recipe.stem} {upgrades}`, with "
        "a fixed version allowed by the requirements), or build without "
        "--audit and `[build] audit`."
    )


def _write_sidecar(zip_path: Path, sidecar: Path) -> None:
    """dist/NAME.cdx.json: the SBOM inside the ZIP, for scanners that read files."""
    import zipfile  # a no-op build writes no sidecar

    from layerkit.layer import sbom

    with zipfile.ZipFile(zip_path) as layer:
        text = sbom.read_from(layer)
    if text is not None:
        write_atomic(sidecar, text)


def _compilers(
    recipe: Recipe,
    group: Group,
    chosen: dict[str, Backend],
    ctx: Context,
) -> dict[str, Compiler]:
    """The bytecode compiler for each Python version of the layer.

    This host's interpreter of that version, else the build image of a target built in a
    container. A version with neither ships without bytecode, which is said, or refused
    with --require-bytecode.
    """
    if not recipe.slim.bytecode:
        return {}
    compilers: dict[str, Compiler] = {}
    for target in group.targets:
        python = target.runtime.python_version
        if python in compilers:
            continue
        interpreter = ctx.interpreter(python)
        fallback = chosen[target.id].compiler()
        if interpreter is not None:
            compilers[python] = HostCompiler(interpreter)
        elif fallback is not None:
            compilers[python] = fallback
    for python in group.pythons:
        if python in compilers or not ctx.first_time(f"bytecode {python}"):
            continue
        runtimes = ", ".join(
            sorted({t.runtime.name for t in group.targets if t.runtime.python_version == python})
        )
        problem = (
            f"{recipe.stem}: no Python {python} on this machine (looked on PATH, in pyenv and "
            f"with `uv python find`) to compile bytecode for {runtimes}"
        )
        fix = (
            f"Install it (`uv python install {python}`), build in the build image "
            "(`--strategy container`), or set `bytecode = false` under [slim] to ship "
            "without bytecode on purpose."
        )
        if ctx.require_bytecode:
            raise BuildError(f"{problem}, and --require-bytecode is set. {fix}")
        log.warning(
            "%s: the layer ships without it, and every cold start compiles its modules "
            "again (seconds for large packages such as pandas). %s",
            problem,
            fix,
        )
    return compilers


def build_all(
    recipes: list[Recipe],
    ctx: Context,
    out_dir: Path,
    registry_path: Path | None,
    *,
    locked: bool = False,
    upgrade: bool = False,
    upgrade_packages: tuple[str, ...] = (),
) -> list[Artifact]:
    """`layerkit build`: every recipe, and a record of each artifact made in the registry
    at registry_path, if any (a no-op records nothing, and does not open it)."""
    artifacts = [
        artifact
        for recipe in recipes
        for artifact in build_recipe(
            recipe, ctx, out_dir, locked=locked, upgrade=upgrade, upgrade_packages=upgrade_packages
        )
    ]
    made = [a for a in artifacts if a.status != BuildStatus.unchanged]
    if made and registry_path is not None:
        from layerkit.layer import manifest  # a no-op records nothing
        from layerkit.registry import Registry

        registry = Registry(registry_path)
        for a in made:
            registry.record_build(
                a.recipe, a.name, a.sha256, list(a.targets), manifest.read(a.path)
            )
    return artifacts
