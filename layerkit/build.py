"""`layerkit lock` and `layerkit build`: from a recipe to deterministic layer ZIPs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO

from layerkit import archive, elf, lock, manifest, quota
from layerkit.archive import Entry
from layerkit.bytecode import (
    Compiled,
    Compiler,
    HostCompiler,
    ImageCompiler,
    Interpreter,
    add_bytecode,
    cache_tag,
    find_interpreter,
)
from layerkit.container import (
    DOCKER_ARCHITECTURES,
    BuildContainer,
    ContainerEngine,
    DockerEngine,
    Run,
)
from layerkit.errors import (
    ArchitectureError,
    BuildError,
    ContainerError,
    NoFittingWheelError,
    ResolutionError,
    StaleLockError,
)
from layerkit.index import PackageIndex, WheelCache, cache_dir, settings_from
from layerkit.install import (
    Installed,
    fetch,
    install,
    install_in_container,
    runtime_overlap_warning,
    shipped,
)
from layerkit.lock import Lock, LockedDist
from layerkit.recipe import BuildSettings, Recipe
from layerkit.runner import run
from layerkit.settings import cascade
from layerkit.targets import Target
from layerkit.version import __version__

log = logging.getLogger("layerkit")

# Bump when the same inputs would produce different bytes, so cached artifacts are not reused.
BUILD_FORMAT = 3

Reporter = Callable[[str, str], None]


class Strategy(str, Enum):
    """Where targets are resolved and installed: chosen once, per command."""

    auto = "auto"  # wheels on the host; the build image when something must be compiled
    wheels = "wheels"  # fitting wheels only, no Docker
    container = "container"  # resolve and compile in the target's build image


@dataclass
class Context:
    """Collaborators of a build, made once per command."""

    index: PackageIndex
    cache_root: Path
    env: dict[str, str]
    uv_binary: str
    report: Reporter = field(default=lambda label, message: None)
    strategy: Strategy = Strategy.auto
    image: str | None = None  # overrides the recipe's [build] image
    network: str | None = None  # overrides the recipe's [build] network
    connect: Callable[[Mapping[str, str]], ContainerEngine] = DockerEngine.connect
    _engine: ContainerEngine | None = field(default=None, init=False, repr=False)
    _runs_on: dict[str, bool] = field(default_factory=dict, init=False, repr=False)
    require_bytecode: bool = False  # no interpreter for a target's Python is an error
    _said: set[str] = field(default_factory=set, init=False, repr=False)
    _interpreters: dict[str, Interpreter | None] = field(
        default_factory=dict, init=False, repr=False
    )

    @property
    def wheels(self) -> WheelCache:
        return WheelCache(self.cache_root)

    def first_time(self, what: str) -> bool:
        """True the first time it is asked about `what`: a warning is said once per command,
        though locking and building ask the same question."""
        if what in self._said:
            return False
        self._said.add(what)
        return True

    def interpreter(self, python: str) -> Interpreter | None:
        """This host's CPython `python` ("3.11"), looked for once per command."""
        if python not in self._interpreters:
            self._interpreters[python] = find_interpreter(
                python, self.env, self.cache_root, self.uv_binary
            )
        return self._interpreters[python]

    def engine(self) -> ContainerEngine:
        if self._engine is None:
            self._engine = self.connect(self.env)
        return self._engine

    def build_container(self, recipe: Recipe, target: Target) -> BuildContainer:
        """The target's build container; ContainerError when there can be none."""
        engine = self.engine()
        template = cascade(flag=self.image, recipe=recipe.build.image) or BuildSettings.image
        runtime = target.runtime
        image = template.format(
            runtime=runtime.name, python=runtime.python_version, arch=target.architecture
        )
        wanted = DOCKER_ARCHITECTURES[target.architecture]
        found = engine.image_architecture(image)
        if found != wanted:
            raise ArchitectureError(
                f"{image} is built for {found}, but {target.id} needs {wanted}: name an "
                f"image for {wanted} with --image"
            )
        platform_name = f"linux/{wanted}"
        if platform_name not in self._runs_on:
            # Another architecture runs only under emulation (binfmt/QEMU): try it once.
            try:
                engine.run(Run(image, "true", platform=platform_name, what="a test run"))
                self._runs_on[platform_name] = True
            except ContainerError:
                self._runs_on[platform_name] = False
        if not self._runs_on[platform_name]:
            raise ArchitectureError(
                f"this Docker engine cannot run {platform_name} containers (no binfmt/QEMU "
                "emulation)"
            )
        cert = self.index.settings.cert
        return BuildContainer(
            engine=engine,
            image=image,
            python=target.runtime.python_version,
            platform=platform_name,
            network=cascade(flag=self.network, recipe=recipe.build.network),
            pip_cache=self.cache_root / "pip" / re.sub(r"[^A-Za-z0-9_.-]", "_", image),
            ca_bundle=Path(cert) if cert else None,
            index_env=self.index.settings.pip_env(),
        )

    @classmethod
    def from_environment(
        cls,
        env: Mapping[str, str],
        *,
        index_url: str | None = None,
        extra_index_urls: tuple[str, ...] = (),
        ca_bundle: str | None = None,
        report: Reporter | None = None,
        strategy: Strategy = Strategy.auto,
        image: str | None = None,
        network: str | None = None,
        require_bytecode: bool = False,
    ) -> Context:
        from uv import find_uv_bin

        settings = settings_from(env, index_url, extra_index_urls, ca_bundle)
        return cls(
            index=PackageIndex(settings),
            cache_root=cache_dir(env),
            env=dict(env),
            uv_binary=find_uv_bin(),
            report=report or (lambda label, message: None),
            strategy=strategy,
            image=image,
            network=network,
            require_bytecode=require_bytecode,
        )


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
    status: str  # built, cached (copied from the artifact cache) or unchanged
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "artifact": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "targets": list(self.targets),
            "files": self.files,
            "unzipped": self.unzipped,
            "zipped": self.zipped,
            "status": self.status,
            "notes": list(self.notes),
        }


def lock_recipe(
    recipe: Recipe,
    ctx: Context,
    *,
    check: bool = False,
    refresh: bool = False,
    upgrade: bool = False,
    upgrade_packages: tuple[str, ...] = (),
) -> dict[str, tuple[Lock, str]]:
    """Make sure every target has a fresh lock; return each lock with its file's SHA-256.

    check: refuse a missing or stale lock instead of writing one (`--locked`).
    refresh: resolve again even when the lock is fresh (`layerkit lock`).
    """
    locks: dict[str, tuple[Lock, str]] = {}
    for target in recipe.targets:
        path = recipe.lock_path(target)
        existing = lock.read(recipe, target)
        state = lock.status(recipe, target, existing[0] if existing else None)
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
            resolved = _resolve(recipe, target, ctx, upgrade, upgrade_packages)
            lock.write(recipe, target, resolved)
            existing = lock.read(recipe, target)
        assert existing is not None
        locks[target.id] = existing
    return locks


def _resolve(
    recipe: Recipe,
    target: Target,
    ctx: Context,
    upgrade: bool,
    upgrade_packages: tuple[str, ...],
) -> Lock:
    """uv with wheels only, unless the recipe or the strategy needs the build image."""

    def with_uv() -> Lock:
        return lock.resolve(
            recipe,
            target,
            ctx.index,
            upgrade=upgrade,
            upgrade_packages=upgrade_packages,
            uv_binary=ctx.uv_binary,
            env=ctx.env,
        )

    if ctx.strategy == Strategy.wheels or (ctx.strategy == Strategy.auto and not recipe.no_binary):
        try:
            return with_uv()
        except (ResolutionError, NoFittingWheelError) as exc:
            container = None
            if ctx.strategy == Strategy.auto:
                container = _container_for(recipe, target, ctx, required=False)
            if container is None:
                raise
            log.info("%s: not everything has a wheel, resolving in the build image:\n%s",
                     target.id, exc)  # fmt: skip
    else:
        container = _container_for(recipe, target, ctx, required=True)
        if container is None:
            return with_uv()
    return lock.resolve_in_container(
        recipe, target, container, upgrade=upgrade, upgrade_packages=upgrade_packages
    )


def _container_for(
    recipe: Recipe, target: Target, ctx: Context, *, required: bool
) -> BuildContainer | None:
    """The target's build container, or None when wheels must do instead.

    An engine that cannot run the target's architecture is never fatal, unless the recipe
    compiles something (no-binary): it is said, and the target is built from wheels. Any
    other failure (no engine, no image) is fatal only when a container is required.
    """
    try:
        return ctx.build_container(recipe, target)
    except ArchitectureError as exc:
        if recipe.no_binary:
            raise
        if ctx.first_time(f"architecture {target.id}"):
            log.warning("%s: %s; building %s from wheels", recipe.stem, exc, target.id)
    except ContainerError as exc:
        if required:
            raise
        log.debug("no build container for %s: %s", target.id, exc)
    return None


def _strategy(
    recipe: Recipe, target: Target, locked: Lock, ctx: Context
) -> tuple[BuildContainer | None, str]:
    """Where the target is installed, and why: None means from wheels on the host."""
    if ctx.strategy == Strategy.wheels:
        return None, "wheels, as asked (--strategy wheels)"
    if recipe.no_binary:
        why = f"compiling {', '.join(recipe.no_binary)} from source (no-binary)"
    elif locked.strategy == "container":
        why = "the lock was resolved in the build image"
    elif ctx.strategy == Strategy.container:
        why = "as asked (--strategy container)"
    else:
        return None, "wheels: every locked distribution has a wheel for the target"
    required = ctx.strategy == Strategy.container or bool(recipe.no_binary)
    container = _container_for(recipe, target, ctx, required=required)
    if container is None:
        return None, "wheels: no build container for this target"
    return container, f"{container.image}: {why}"


@dataclass(frozen=True)
class _Group:
    artifact: str
    targets: tuple[Target, ...]

    @property
    def pythons(self) -> list[str]:
        return [
            f"{major}.{minor}" for major, minor in sorted({t.runtime.python for t in self.targets})
        ]


def _groups(recipe: Recipe, locks: dict[str, tuple[Lock, str]]) -> list[_Group]:
    """One ZIP for all targets when they ship the same wheels, else one per architecture."""

    def content(target: Target) -> frozenset[tuple[str, str, tuple[str, ...]]]:
        dists = shipped(locks[target.id][0], recipe.exclude)
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
            found.append(_File(str(target_path), source, mode, archive.sha256_of(source)))
    return sorted(found, key=lambda f: f.path)


def _build_key(
    recipe: Recipe,
    group: _Group,
    locks: dict[str, tuple[Lock, str]],
    files: list[_File],
    strategies: dict[str, tuple[BuildContainer | None, str]],
    compilers: dict[str, Compiler],
) -> str:
    data = {
        "strategies": {t: c.image if c else "wheels" for t, (c, _) in strategies.items()},
        "format": BUILD_FORMAT,
        "layerkit": __version__,
        "layer": recipe.name,
        # Everything the manifest holds comes from these keys: a change must rebuild.
        "artifact": group.artifact,
        "description": recipe.description,
        "license": recipe.license,
        "bytecode": recipe.slim.bytecode and sorted(compilers),
        "targets": {t.id: locks[t.id][1] for t in group.targets},
        "exclude": sorted(recipe.exclude),
        "slim": [recipe.slim.tests, recipe.slim.stubs, recipe.slim.strip, list(recipe.slim.keep)],
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
    files = _recipe_files(recipe)
    artifacts = []
    for group in _groups(recipe, locks):
        strategies = {t.id: _strategy(recipe, t, locks[t.id][0], ctx) for t in group.targets}
        compilers = _compilers(recipe, group, strategies, ctx)
        key = _build_key(recipe, group, locks, files, strategies, compilers)
        dest = out_dir / f"{group.artifact}.zip"
        cached = ctx.cache_root / "artifacts" / f"{key}.zip"
        summary = _linked(dest, cached) or _existing(dest, key)
        if summary is not None:
            status = "unchanged"
        elif cached.exists():
            _publish(cached, dest)
            status, summary = "cached", _linked(dest, cached) or _existing(dest, key)
        else:
            for target_id, (_, why) in strategies.items():
                log.info("%s (%s): building with %s", group.artifact, target_id, why)
            summary = _assemble(
                recipe, group, locks, files, key, ctx, cached, strategies, compilers
            )
            _remember(cached, summary)
            _publish(cached, dest)
            status = "built"
        assert summary is not None
        files_count, unzipped, sha256 = summary
        ctx.report(group.artifact, status)
        zipped = dest.stat().st_size
        artifacts.append(
            Artifact(
                recipe=recipe.stem,
                name=group.artifact,
                path=dest,
                sha256=sha256,
                targets=tuple(t.id for t in group.targets),
                files=files_count,
                unzipped=unzipped,
                zipped=zipped,
                status=status,
                notes=quota.check(dest.name, unzipped, [], zipped).notes,
            )
        )
    return artifacts


def _existing(path: Path, key: str) -> tuple[int, int, str] | None:
    """(files, unzipped bytes, SHA-256) of a ZIP built from exactly this key, else None."""
    if not path.exists():
        return None
    with zipfile.ZipFile(path) as zipped:
        infos = zipped.infolist()
        found = manifest.read_from(zipped)
        if found is None or found.build_key != key:
            return None
    return len(infos), sum(i.file_size for i in infos), archive.sha256_of(path)


def _remember(cached: Path, summary: tuple[int, int, str]) -> None:
    """Keep an artifact's summary beside it, with the size and mtime it was written with."""
    stat = cached.stat()
    record = [*summary, stat.st_size, stat.st_mtime_ns]
    tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, cached.with_suffix(".json"))


def _linked(dest: Path, cached: Path) -> tuple[int, int, str] | None:
    """(files, unzipped bytes, SHA-256) of dest when it is the cached artifact itself (a hard
    link, see _publish) as it was written: a no-op build then reads and hashes nothing."""
    try:
        if not os.path.samefile(dest, cached):
            return None
        files, unzipped, sha256, size, mtime = json.loads(
            cached.with_suffix(".json").read_text(encoding="utf-8")
        )
        stat = cached.stat()
    except (OSError, ValueError):
        return None
    if (stat.st_size, stat.st_mtime_ns) != (size, mtime):
        return None  # changed in place since: read it again
    return int(files), int(unzipped), str(sha256)


def _publish(cached: Path, dest: Path) -> None:
    """Put a cached artifact at dest atomically, as a hard link when the disk allows.

    A link is safe: layerkit only ever replaces files by renaming over them, so neither
    copy is modified in place.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        os.link(cached, tmp)
    except OSError:
        shutil.copyfile(cached, tmp)
    os.replace(tmp, dest)


def _compilers(
    recipe: Recipe,
    group: _Group,
    strategies: dict[str, tuple[BuildContainer | None, str]],
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
        container = strategies[target.id][0]
        if interpreter is not None:
            compilers[python] = HostCompiler(interpreter)
        elif container is not None:
            compilers[python] = ImageCompiler(container)
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


def _assemble(
    recipe: Recipe,
    group: _Group,
    locks: dict[str, tuple[Lock, str]],
    files: list[_File],
    key: str,
    ctx: Context,
    dest: Path,
    strategies: dict[str, tuple[BuildContainer | None, str]],
    compilers: dict[str, Compiler],
) -> tuple[int, int, str]:
    """Write the artifact to dest; return (files, unzipped bytes, SHA-256)."""
    plan = [(t, d) for t in group.targets for d in shipped(locks[t.id][0], recipe.exclude)]
    on_host = [(t, d) for t, d in plan if strategies[t.id][0] is None]
    warning = runtime_overlap_warning({d.key for _, d in plan})
    if warning:
        log.warning("%s: %s", group.artifact, warning)

    def progress(done: int, total: int) -> None:
        ctx.report(group.artifact, f"downloading {done}/{total} wheels")

    found = fetch(on_host, ctx.index, ctx.wheels, None, progress)
    in_container = [(t, d) for t, d in plan if strategies[t.id][0] is not None]
    found |= fetch(in_container, ctx.index, ctx.wheels, frozenset(recipe.no_binary), progress)
    shared = _shared(group, found)
    first = group.targets[0]
    installs = _Installs(
        shared=_install(
            recipe, first, [d for t, d in plan if t == first and d.key in shared], "python",
            found, strategies[first.id][0], ctx, group.artifact,
        ),
        own={
            t.id: _install(
                recipe, t, [d for tt, d in plan if tt == t and d.key not in shared],
                _site_packages(t), found, strategies[t.id][0], ctx, group.artifact,
            )
            for t in group.targets
        },
    )  # fmt: skip
    for python, compiler in compilers.items():
        ctx.report(group.artifact, f"compiling bytecode for Python {python}")
        _add_bytecode(installs, group, python, compiler, ctx.cache_root)
    entries = _merge(installs.all())
    if recipe.slim.strip:
        entries = _strip(entries, group.targets[0])
    _check_shared_objects(entries, group)

    generated = [(f.path, f.source.read_bytes(), f.mode) for f in files]
    built_with = {t: c.image if c else "wheels" for t, (c, _) in strategies.items()}
    layer_manifest = _manifest(recipe, group, locks, installs, files, key, built_with, compilers)
    # What the layer adds to a function's 250 MiB, the manifest itself aside: audits read it.
    content = sum(e.size for e in entries) + sum(len(data) for _, data, _ in generated)
    layer_manifest = dataclasses.replace(layer_manifest, unzipped_bytes=content)
    generated.append((manifest.path_for(recipe.name), manifest.dumps(layer_manifest), 0o644))
    unzipped = sum(e.size for e in entries) + sum(len(data) for _, data, _ in generated)
    sizes: dict[str, int] = {}
    for dists in installs.all():
        for item in dists:
            sizes[item.name] = sizes.get(item.name, 0) + item.size
    largest = sorted(sizes.items(), key=lambda item: -item[1])
    quota.check(f"{group.artifact}.zip", unzipped, largest)
    ctx.report(group.artifact, "zipping")
    entries += archive.compress_all(generated)
    return len(entries), unzipped, archive.write(entries, dest)


def _install(
    recipe: Recipe,
    target: Target,
    dists: list[LockedDist],
    site: str,
    found: dict[tuple[str, str], Path],
    container: BuildContainer | None,
    ctx: Context,
    artifact: str,
) -> list[Installed]:
    """Each distribution as installed under `site`.

    A wheel is unpacked here whatever the strategy; the build image compiles the sdists.
    """
    files = {d.key: found[(target.id, d.key)] for d in dists}
    wheels = [d for d in dists if files[d.key].suffix == ".whl"]
    sdists = [d for d in dists if files[d.key].suffix != ".whl"]
    if wheels:
        ctx.report(artifact, f"installing {target.id}")
    result = [install(files[d.key], d, site, recipe.slim) for d in wheels]
    if sdists:
        assert container is not None, "fetch picks sdists for container targets only"
        ctx.report(artifact, f"compiling for {target.id} in {container.image}")
        result += install_in_container(
            target.id,
            {d.key: files[d.key] for d in sdists},
            sdists,
            container,
            site,
            recipe.slim,
        )
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


def _check_shared_objects(entries: list[Entry], group: _Group) -> None:
    """Every shared object must be built for the group's architecture, and what the build
    image compiled must not need a newer glibc than the runtime has: guards behind tags."""
    glibc = min(t.runtime.glibc[1] for t in group.targets)
    for entry in entries:
        if isinstance(entry.data, bytes) and elf.is_shared_object(entry.path):
            needs = elf.glibc_needs(archive.read_member(entry)) or 0
            if needs > glibc:
                raise BuildError(
                    f"{entry.path} was compiled against GLIBC_2.{needs}, but "
                    f"{group.targets[0].runtime.name} has glibc 2.{glibc}: the build image "
                    "is newer than the runtime. Build in the runtime's own build image "
                    "(public.ecr.aws/sam/build-<runtime>), or one with the same glibc."
                )
    machine = group.targets[0].machine
    if len({t.machine for t in group.targets}) > 1:
        machine = ""  # a layer for both architectures must carry no native code at all
    handles: dict[Path, BinaryIO] = {}
    try:
        for entry in entries:
            if not elf.is_shared_object(entry.path):
                continue
            found = elf.machine(archive.head(entry, elf.HEADER_SIZE, handles))
            if found is not None and found != machine:
                raise BuildError(
                    f"{entry.path} is a {found} shared object, but {group.artifact} is for "
                    f"{machine or 'every architecture'}. The wheel that ships it is tagged "
                    "wrongly; pin another version or build in a container."
                )
    finally:
        for handle in handles.values():
            handle.close()


def _strip_tool(machine: str) -> str:
    candidates = [f"{machine}-linux-gnu-strip", "llvm-strip"]
    if platform.machine() == machine:
        candidates.insert(0, "strip")
    for tool in candidates:
        if shutil.which(tool):
            return tool
    raise BuildError(
        f"`strip = true` needs a strip for {machine} ({' or '.join(candidates)}), and none "
        "is on PATH. Install binutils (for another architecture: binutils-aarch64-linux-gnu "
        "or llvm), or set `strip = false` under [slim]."
    )


def _strip(entries: list[Entry], target: Target) -> list[Entry]:
    tool = _strip_tool(target.machine)
    result = []
    with tempfile.TemporaryDirectory(prefix="layerkit-strip-") as tmp:
        for number, entry in enumerate(entries):
            if not elf.is_shared_object(entry.path):
                result.append(entry)
                continue
            scratch = Path(tmp) / str(number)
            scratch.write_bytes(archive.read_member(entry))
            run([tool, "--strip-unneeded", str(scratch)])
            result.append(archive.compress(entry.path, scratch.read_bytes(), entry.mode))
    return result


def _manifest(
    recipe: Recipe,
    group: _Group,
    locks: dict[str, tuple[Lock, str]],
    installs: _Installs,
    files: list[_File],
    key: str,
    built_with: dict[str, str],
    compilers: dict[str, Compiler],
) -> manifest.LayerManifest:
    targets = {}
    shared = {i.name for i in installs.shared}
    for target in group.targets:
        site = installs.site_packages(target)
        python = target.runtime.python_version
        targets[target.id] = manifest.TargetContent(
            lock="sha256:" + locks[target.id][1],
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
        build_key=key,
        runtimes=tuple(sorted({t.runtime.name for t in group.targets})),
        architectures=tuple(sorted({t.architecture for t in group.targets})),
        excluded=tuple(sorted(recipe.exclude)),
        targets=targets,
        files=tuple(manifest.RecipeFile(f.path, f.sha256, oct(f.mode)) for f in files),
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
    made = [a for a in artifacts if a.status != "unchanged"]
    if made and registry_path is not None:
        from layerkit.registry import Registry

        registry = Registry(registry_path)
        for a in made:
            registry.record_build(
                a.recipe, a.name, a.sha256, list(a.targets), manifest.read(a.path)
            )
    return artifacts
