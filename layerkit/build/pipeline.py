"""`layerkit lock` and `layerkit build`: from a recipe to deterministic layer ZIPs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from layerkit import quota
from layerkit.build import archive, backends, lock, native
from layerkit.build.archive import Entry
from layerkit.build.artifact_cache import ArtifactCache, BuildStatus, Summary
from layerkit.build.backends import Backend
from layerkit.build.bytecode import (
    Compiled,
    Compiler,
    HostCompiler,
    add_bytecode,
    cache_tag,
)
from layerkit.build.context import Context
from layerkit.build.install import Installed, fetch, install, runtime_overlap_warning, shipped
from layerkit.build.lock import LockedDist, LockedTarget
from layerkit.errors import BuildError, StaleLockError, VulnerableError
from layerkit.files import sha256_of, write_atomic
from layerkit.layer import manifest, sbom
from layerkit.recipe import Recipe, build_key_data
from layerkit.targets import Target
from layerkit.version import __version__

if TYPE_CHECKING:
    from layerkit import osv

log = logging.getLogger("layerkit")

# Bump when the same inputs would produce different bytes, so cached artifacts are not reused.
BUILD_FORMAT = 6

Locks = dict[str, LockedTarget]  # by target id


@dataclass(frozen=True)
class Artifact:
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
        existing = lock.read(recipe, target)
        state = lock.status(recipe, target, existing.lock if existing else None)
        wanted = refresh or upgrade or bool(upgrade_packages) or state != "fresh"
        if wanted and check:
            reason = {
                "missing": "does not exist",
                "stale": "is stale: the recipe's requirements changed since it was written",
            }.get(state, "would change")
            raise StaleLockError(str(path), reason, f"layerkit lock {recipe.stem}")
        if wanted:
            action = {
                "missing": "does not exist: writing it",
                "stale": "is stale (the recipe changed): refreshing it",
            }.get(state, "resolving again")
            log.info("%s %s", path, action)
            ctx.report(target.id, "resolving")
            resolved = backends.resolve(recipe, target, ctx, upgrade, upgrade_packages)
            lock.write(recipe, target, resolved)
            existing = lock.read(recipe, target)
        assert existing is not None
        locks[target.id] = existing
    return locks


@dataclass(frozen=True)
class _Group:
    artifact: str
    targets: tuple[Target, ...]

    @property
    def pythons(self) -> list[str]:
        return [
            f"{major}.{minor}" for major, minor in sorted({t.runtime.python for t in self.targets})
        ]


def _groups(recipe: Recipe, locks: Locks) -> list[_Group]:
    """One ZIP for all targets when they ship the same wheels, else one per architecture."""

    def content(target: Target) -> frozenset[tuple[str, str, tuple[str, ...]]]:
        dists = shipped(locks[target.id].lock, recipe.exclude)
        return frozenset((d.key, d.version, d.hashes) for d in dists)

    targets = recipe.targets
    if len({content(t) for t in targets}) == 1:
        return [_Group(recipe.name, tuple(targets))]
    return [
        _Group(f"{recipe.name}-{arch}", tuple(t for t in targets if t.architecture == arch))
        for arch in recipe.architectures
    ]


def _site_packages(target: Target) -> str:
    return f"python/lib/python{target.runtime.python_version}/site-packages"


@dataclass(frozen=True)
class _File:
    """A data or config file as it lands in the layer."""

    path: str  # in the ZIP, relative to /opt
    source: Path
    mode: int
    sha256: str


def _recipe_files(recipe: Recipe) -> list[_File]:
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
            found.append(_File(str(target_path), source, mode, sha256_of(source)))
    return sorted(found, key=lambda f: f.path)


def _build_key(
    recipe: Recipe,
    group: _Group,
    locks: Locks,
    files: list[_File],
    chosen: dict[str, Backend],
    compilers: dict[str, Compiler],
) -> str:
    data = {
        "strategies": {t: backend.name for t, backend in chosen.items()},
        "format": BUILD_FORMAT,
        "layerkit": __version__,
        # Every recipe field but those declared not to change the bytes (recipe.py).
        "recipe": build_key_data(recipe),
        "artifact": group.artifact,
        "bytecode": sorted(compilers),
        "targets": {t.id: locks[t.id].sha256 for t in group.targets},
        "files": [[f.path, f.sha256, f.mode] for f in files],
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


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
        key = _build_key(recipe, group, locks, files, chosen, compilers)
        dest = out_dir / f"{group.artifact}.zip"
        found = cache.find(dest, key)
        if found is None:
            for target_id, backend in chosen.items():
                log.info("%s (%s): building with %s", group.artifact, target_id, backend.why)
            job = _Job(recipe, group, locks, files, key, chosen, compilers)
            summary, status = _assemble(job, ctx, cache.path(key)), BuildStatus.built
            cache.keep(key, summary, dest)
        else:
            summary, status = found
        sidecar = sbom.beside(dest)
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
    with zipfile.ZipFile(zip_path) as layer:
        text = sbom.read_from(layer)
    if text is not None:
        write_atomic(sidecar, text)


def _compilers(
    recipe: Recipe,
    group: _Group,
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


def _shared(group: _Group, files: dict[tuple[str, str], Path]) -> set[str]:
    """The distributions that go once into python/, which every Python version imports.

    With one Python version, all of them. With several, those that install the very same
    wheel for every target (pure Python, or abi3): the rest go to each version's
    python/lib/pythonX.Y/site-packages, which comes first on that version's sys.path.
    """
    keys = [{key for tid, key in files if tid == t.id} for t in group.targets]
    common = set.intersection(*keys) if keys else set()
    if len(group.pythons) == 1:
        return common
    first = group.targets[0].id
    return {
        key
        for key in common
        if files[(first, key)].suffix == ".whl"
        and all(files[(t.id, key)] == files[(first, key)] for t in group.targets)
    }


@dataclass
class _Installs:
    """What a layer's targets install: the shared part once, the rest per target."""

    shared: list[Installed]  # under python/
    own: dict[str, list[Installed]]  # target id -> under its site-packages

    def of(self, target: Target) -> list[Installed]:
        return self.shared + self.own[target.id]

    def site_packages(self, target: Target) -> str:
        return _site_packages(target) if self.own[target.id] else "python"

    def all(self) -> list[list[Installed]]:
        return [self.shared, *self.own.values()]


@dataclass(frozen=True)
class _Job:
    """Everything one ZIP is made from: its build key is a digest of exactly this."""

    recipe: Recipe
    group: _Group
    locks: Locks
    files: list[_File]
    key: str
    chosen: dict[str, Backend]  # target id -> where it is installed
    compilers: dict[str, Compiler]  # Python version -> its bytecode compiler


def _assemble(job: _Job, ctx: Context, dest: Path) -> Summary:
    """Write the artifact to dest and summarise it."""
    recipe, group, locks, files = job.recipe, job.group, job.locks, job.files
    chosen, compilers = job.chosen, job.compilers
    plan = [(t, d) for t in group.targets for d in shipped(locks[t.id].lock, recipe.exclude)]
    on_host = [(t, d) for t, d in plan if not chosen[t.id].builds_sdists]
    warning = runtime_overlap_warning({d.key for _, d in plan})
    if warning:
        log.warning("%s: %s", group.artifact, warning)

    def progress(done: int, total: int) -> None:
        ctx.report(group.artifact, f"downloading {done}/{total} wheels")

    found = fetch(on_host, ctx.index, ctx.wheels, None, progress)
    in_container = [(t, d) for t, d in plan if chosen[t.id].builds_sdists]
    found |= fetch(in_container, ctx.index, ctx.wheels, frozenset(recipe.no_binary), progress)
    shared = _shared(group, found)
    first = group.targets[0]
    installs = _Installs(
        shared=_install(
            recipe, first, [d for t, d in plan if t == first and d.key in shared], "python",
            found, chosen[first.id], ctx, group.artifact,
        ),
        own={
            t.id: _install(
                recipe, t, [d for tt, d in plan if tt == t and d.key not in shared],
                _site_packages(t), found, chosen[t.id], ctx, group.artifact,
            )
            for t in group.targets
        },
    )  # fmt: skip
    for python, compiler in compilers.items():
        ctx.report(group.artifact, f"compiling bytecode for Python {python}")
        _add_bytecode(installs, group, python, compiler, ctx.cache_root)
    entries = _merge(installs.all())
    if recipe.slim.strip:
        entries = native.strip(entries, group.targets[0])
    compiled = {e.path for part in installs.all() for i in part if i.sdist for e in i.entries}
    native.check(entries, group.artifact, group.targets, compiled)

    generated = [(f.path, f.source.read_bytes(), f.mode) for f in files]
    built_with = {t: backend.name for t, backend in chosen.items()}
    layer_manifest = _manifest(job, installs, built_with)
    # What the layer adds to a function's 250 MiB, the manifest itself aside: audits read it.
    content = sum(e.size for e in entries) + sum(len(data) for _, data, _ in generated)
    layer_manifest = dataclasses.replace(layer_manifest, unzipped_bytes=content)
    manifest_bytes = manifest.dumps(layer_manifest)
    generated.append((manifest.path_for(recipe.name), manifest_bytes, 0o644))
    bom = sbom.for_build(layer_manifest, manifest_bytes, ctx.cache_root)
    generated.append((sbom.path_for(recipe.name), bom, 0o644))
    unzipped = sum(e.size for e in entries) + sum(len(data) for _, data, _ in generated)
    sizes: dict[str, int] = {}
    for dists in installs.all():
        for item in dists:
            sizes[item.name] = sizes.get(item.name, 0) + item.size
    largest = sorted(sizes.items(), key=lambda item: -item[1])
    quota.check(f"{group.artifact}.zip", unzipped, largest)
    ctx.report(group.artifact, "zipping")
    entries += archive.compress_all(generated)
    return Summary(len(entries), unzipped, archive.write(entries, dest))


def _install(
    recipe: Recipe,
    target: Target,
    dists: list[LockedDist],
    site: str,
    found: dict[tuple[str, str], Path],
    backend: Backend,
    ctx: Context,
    artifact: str,
) -> list[Installed]:
    """Each distribution as installed under `site`.

    A wheel is unpacked here whatever the backend; the backend builds the sdists.
    """
    files = {d.key: found[(target.id, d.key)] for d in dists}
    wheels = [d for d in dists if files[d.key].suffix == ".whl"]
    sdists = [d for d in dists if files[d.key].suffix != ".whl"]
    if wheels:
        ctx.report(artifact, f"installing {target.id}")
    result = [install(files[d.key], d, site, recipe.slim) for d in wheels]
    if sdists:
        ctx.report(artifact, f"compiling for {target.id} in {backend.name}")
        sdist_files = {d.key: files[d.key] for d in sdists}
        result += backend.compile_sdists(target, sdist_files, sdists, site, recipe.slim)
    return result


def _add_bytecode(
    installs: _Installs, group: _Group, python: str, compiler: Compiler, cache_root: Path
) -> None:
    """Add CPython `python`'s pyc to what its targets import: the shared part and their own."""
    # The shared part serves every version; a target's own part only its version (in a
    # layer for both architectures, the targets of one version share one install).
    parts = [("python", installs.shared)]
    for target in group.targets:
        site = _site_packages(target)
        if target.runtime.python_version == python and site not in dict(parts):
            parts.append((site, installs.own[target.id]))
    items = [Compiled(i, site) for site, part in parts for i in part]
    with_pyc = iter(add_bytecode(items, compiler, cache_root))  # one compiler run
    for _, part in parts:
        part[:] = [next(with_pyc) for _ in part]


def _merge(installed: list[list[Installed]]) -> list[Entry]:
    """All entries; where two distributions ship the same path, the first one wins."""
    chosen: dict[str, tuple[Entry, str]] = {}
    for dists in installed:
        for dist in sorted(dists, key=lambda d: d.name.lower()):
            for entry in dist.entries:
                if entry.path not in chosen:
                    chosen[entry.path] = (entry, dist.name)
                    continue
                first, owner = chosen[entry.path]
                if (first.crc, first.size) != (entry.crc, entry.size):
                    log.warning(
                        "%s and %s both ship %s with different content; keeping %s's",
                        owner,
                        dist.name,
                        entry.path,
                        owner,
                    )
    return [entry for entry, _ in chosen.values()]


def _manifest(job: _Job, installs: _Installs, built_with: dict[str, str]) -> manifest.LayerManifest:
    recipe, group, locks, compilers = job.recipe, job.group, job.locks, job.compilers
    targets = {}
    shared = {i.name for i in installs.shared}
    for target in group.targets:
        site = installs.site_packages(target)
        python = target.runtime.python_version
        targets[target.id] = manifest.TargetContent(
            lock="sha256:" + locks[target.id].sha256,
            built_with=built_with[target.id],
            site_packages=site,
            bytecode=cache_tag(python) if python in compilers else None,
            distributions=tuple(
                manifest.Distribution(
                    name=d.name,
                    version=d.version,
                    license=d.license,
                    size=d.size,
                    wheel=d.wheel,
                    sha256=d.sha256,
                    top_level=d.top_level,
                    site_packages="python" if d.name in shared else site,
                    sdist=d.sdist,
                    sdist_sha256=d.sdist_sha256,
                )
                for d in sorted(installs.of(target), key=lambda d: d.name.lower())
            ),
        )
    return manifest.LayerManifest(
        layer=recipe.name,
        artifact=group.artifact,  # the LayerName it is published as
        description=recipe.description,
        license=recipe.license,
        layerkit=__version__,
        build_key=job.key,
        runtimes=tuple(sorted({t.runtime.name for t in group.targets})),
        architectures=tuple(sorted({t.architecture for t in group.targets})),
        excluded=tuple(sorted(recipe.exclude)),
        targets=targets,
        files=tuple(manifest.RecipeFile(f.path, f.sha256, oct(f.mode)) for f in job.files),
    )


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
        from layerkit.registry import Registry

        registry = Registry(registry_path)
        for a in made:
            registry.record_build(
                a.recipe, a.name, a.sha256, list(a.targets), manifest.read(a.path)
            )
    return artifacts
