"""`layerkit lock` and `layerkit build`: from a recipe to deterministic layer ZIPs."""

from __future__ import annotations

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
from pathlib import Path
from typing import Any, BinaryIO

from layerkit import __version__, archive, lock, manifest, quota
from layerkit.archive import Entry
from layerkit.container import (
    DOCKER_ARCHITECTURES,
    ArchitectureError,
    BuildContainer,
    ContainerEngine,
    ContainerError,
    DockerEngine,
    Run,
)
from layerkit.errors import (
    BuildError,
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
from layerkit.lock import Lock
from layerkit.recipe import Recipe
from layerkit.runner import run
from layerkit.targets import ELF_MACHINES, Target

log = logging.getLogger("layerkit")

# Bump when the same inputs would produce different bytes, so cached artifacts are not reused.
BUILD_FORMAT = 2

Reporter = Callable[[str, str], None]


@dataclass
class Context:
    """Collaborators of a build, made once per command."""

    index: PackageIndex
    cache_root: Path
    env: dict[str, str]
    uv_binary: str
    report: Reporter = field(default=lambda label, message: None)
    strategy: str = "auto"  # wheels, container or auto
    image: str | None = None  # overrides the recipe's [build] image
    network: str | None = None  # overrides the recipe's [build] network
    connect: Callable[[Mapping[str, str]], ContainerEngine] = DockerEngine.connect
    _engine: ContainerEngine | None = field(default=None, init=False, repr=False)
    _runs_on: dict[str, bool] = field(default_factory=dict, init=False, repr=False)
    _fallbacks: set[str] = field(default_factory=set, init=False, repr=False)

    @property
    def wheels(self) -> WheelCache:
        return WheelCache(self.cache_root)

    def engine(self) -> ContainerEngine:
        if self._engine is None:
            self._engine = self.connect(self.env)
        return self._engine

    def build_container(self, recipe: Recipe, target: Target) -> BuildContainer:
        """The target's build container; ContainerError when there can be none."""
        engine = self.engine()
        template = self.image or recipe.build.image
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
            network=self.network or recipe.build.network,
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
        strategy: str = "auto",
        image: str | None = None,
        network: str | None = None,
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

    if ctx.strategy == "wheels" or (ctx.strategy == "auto" and not recipe.no_binary):
        try:
            return with_uv()
        except (ResolutionError, NoFittingWheelError) as exc:
            container = None
            if ctx.strategy == "auto":
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
        if target.id not in ctx._fallbacks:  # said once, though asked when locking and building
            ctx._fallbacks.add(target.id)
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
    if ctx.strategy == "wheels":
        return None, "wheels, as asked (--strategy wheels)"
    if recipe.no_binary:
        why = f"compiling {', '.join(recipe.no_binary)} from source (no-binary)"
    elif locked.strategy == "container":
        why = "the lock was resolved in the build image"
    elif ctx.strategy == "container":
        why = "as asked (--strategy container)"
    else:
        return None, "wheels: every locked distribution has a wheel for the target"
    required = ctx.strategy == "container" or bool(recipe.no_binary)
    container = _container_for(recipe, target, ctx, required=required)
    if container is None:
        return None, "wheels: no build container for this target"
    return container, f"{container.image}: {why}"


@dataclass(frozen=True)
class _Group:
    artifact: str
    targets: tuple[Target, ...]
    flat: bool  # every target ships the same wheels: one python/ serves them all


def _groups(recipe: Recipe, locks: dict[str, tuple[Lock, str]]) -> list[_Group]:
    """One ZIP for all targets when they ship the same wheels, else one per architecture."""

    def content(target: Target) -> frozenset[tuple[str, str, tuple[str, ...]]]:
        dists = shipped(locks[target.id][0], recipe.exclude)
        return frozenset((d.key, d.version, d.hashes) for d in dists)

    targets = recipe.targets
    if len({content(t) for t in targets}) == 1:
        return [_Group(recipe.name, tuple(targets), flat=True)]
    groups = []
    for arch in recipe.architectures:
        members = tuple(t for t in targets if t.architecture == arch)
        flat = len({content(t) for t in members}) == 1
        groups.append(_Group(f"{recipe.name}-{arch}", members, flat))
    return groups


def _site_packages(target: Target, flat: bool) -> str:
    return "python" if flat else f"python/lib/python{target.runtime.python_version}/site-packages"


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
        "flat": group.flat,
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
        # With a flat layout every target ships the same wheels: one install serves all.
        installs = group.targets[:1] if group.flat else group.targets
        strategies = {t.id: _strategy(recipe, t, locks[t.id][0], ctx) for t in installs}
        key = _build_key(recipe, group, locks, files, strategies)
        dest = out_dir / f"{group.artifact}.zip"
        cached = ctx.cache_root / "artifacts" / f"{key}.zip"
        summary = _existing(dest, key)
        if summary is not None:
            status = "unchanged"
        elif cached.exists():
            _publish(cached, dest)
            status, summary = "cached", _existing(dest, key)
        else:
            for target_id, (_, why) in strategies.items():
                log.info("%s (%s): building with %s", group.artifact, target_id, why)
            summary = _assemble(recipe, group, locks, files, key, ctx, cached, strategies)
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
        if found is None or found.get("build_key") != key:
            return None
    return len(infos), sum(i.file_size for i in infos), archive.sha256_of(path)


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


def _assemble(
    recipe: Recipe,
    group: _Group,
    locks: dict[str, tuple[Lock, str]],
    files: list[_File],
    key: str,
    ctx: Context,
    dest: Path,
    strategies: dict[str, tuple[BuildContainer | None, str]],
) -> tuple[int, int, str]:
    """Write the artifact to dest; return (files, unzipped bytes, SHA-256)."""
    plan = [(t, d) for t in group.targets for d in shipped(locks[t.id][0], recipe.exclude)]
    on_host = [(t, d) for t, d in plan if t.id in strategies and strategies[t.id][0] is None]
    warning = runtime_overlap_warning({d.key for _, d in plan})
    if warning:
        log.warning("%s: %s", group.artifact, warning)

    def progress(done: int, total: int) -> None:
        ctx.report(group.artifact, f"downloading {done}/{total} wheels")

    wheels = fetch(on_host, ctx.index, ctx.wheels, None, progress)
    in_container = [(t, d) for t, d in plan if t.id in strategies and strategies[t.id][0]]
    sources = fetch(in_container, ctx.index, ctx.wheels, frozenset(recipe.no_binary), progress)
    installed: dict[str, list[Installed]] = {}
    for target in group.targets:
        if target.id not in strategies:
            continue  # flat: the first target's install serves the others
        site = _site_packages(target, group.flat)
        dists = [d for t, d in plan if t == target]
        container = strategies[target.id][0]
        if container is None:
            ctx.report(group.artifact, f"installing {target.id}")
            installed[target.id] = [
                install(wheels[(target.id, d.key)], d, site, recipe.slim) for d in dists
            ]
        else:
            # Installing a wheel is unpacking it, done here as for the wheels strategy; the
            # build image compiles the sdists.
            locked = {d.key: sources[(target.id, d.key)] for d in dists}
            wheel_dists = [d for d in dists if locked[d.key].suffix == ".whl"]
            sdists = [d for d in dists if locked[d.key].suffix != ".whl"]
            installed[target.id] = [
                install(locked[d.key], d, site, recipe.slim) for d in wheel_dists
            ]
            if sdists:
                ctx.report(group.artifact, f"compiling for {target.id} in {container.image}")
                installed[target.id] += install_in_container(
                    locks[target.id][0],
                    {d.key: locked[d.key] for d in sdists},
                    sdists,
                    container,
                    site,
                    recipe.slim,
                )
    entries = _merge(installed)
    if recipe.slim.strip:
        entries = _strip(entries, group.targets[0])
    _check_shared_objects(entries, group)

    generated = [(f.path, f.source.read_bytes(), f.mode) for f in files]
    built_with = {t: c.image if c else "wheels" for t, (c, _) in strategies.items()}
    layer_manifest = _manifest(recipe, group, locks, installed, files, key, built_with)
    # What the layer adds to a function's 250 MiB, the manifest itself aside: audits read it.
    content = sum(e.size for e in entries) + sum(len(data) for _, data, _ in generated)
    layer_manifest["unzipped_bytes"] = content
    generated.append((manifest.path_for(recipe.name), manifest.dumps(layer_manifest), 0o644))
    unzipped = sum(e.size for e in entries) + sum(len(data) for _, data, _ in generated)
    sizes: dict[str, int] = {}
    for installs in installed.values():
        for item in installs:
            sizes[item.name] = sizes.get(item.name, 0) + item.size
    largest = sorted(sizes.items(), key=lambda item: -item[1])
    quota.check(f"{group.artifact}.zip", unzipped, largest)
    ctx.report(group.artifact, "zipping")
    entries += archive.compress_all(generated)
    return len(entries), unzipped, archive.write(entries, dest)


def _merge(installed: dict[str, list[Installed]]) -> list[Entry]:
    """All entries; where two distributions ship the same path, the first one wins."""
    chosen: dict[str, tuple[Entry, str]] = {}
    for dists in installed.values():
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


def _is_shared_object(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".so") or ".so." in name


_GLIBC = re.compile(rb"GLIBC_2\.(\d+)")


def _check_shared_objects(entries: list[Entry], group: _Group) -> None:
    """Every shared object must be built for the group's architecture, and what the build
    image compiled must not need a newer glibc than the runtime has: guards behind tags."""
    glibc = min(t.runtime.glibc[1] for t in group.targets)
    for entry in entries:
        if isinstance(entry.data, bytes) and _is_shared_object(entry.path):
            needs = max(map(int, _GLIBC.findall(archive.read_member(entry))), default=0)
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
            if not _is_shared_object(entry.path):
                continue
            header = archive.head(entry, 20, handles)
            if header[:4] != b"\x7fELF":
                continue
            found = ELF_MACHINES.get(int.from_bytes(header[18:20], "little"), "unknown")
            if found != machine:
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
            if not _is_shared_object(entry.path):
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
    installed: dict[str, list[Installed]],
    files: list[_File],
    key: str,
    built_with: dict[str, str],
) -> dict[str, Any]:
    first = next(iter(installed.values()))
    first_built_with = next(iter(built_with.values()))
    targets = {}
    for target in group.targets:
        dists = installed.get(target.id, first)
        targets[target.id] = {
            "lock": "sha256:" + locks[target.id][1],
            "built_with": built_with.get(target.id, first_built_with),
            "site_packages": _site_packages(target, group.flat),
            "distributions": [
                {
                    "name": d.name,
                    "version": d.version,
                    "license": d.license,
                    "size": d.size,
                    "wheel": d.wheel,
                    "sha256": d.sha256,
                    "top_level": list(d.top_level),
                }
                for d in sorted(dists, key=lambda d: d.name.lower())
            ],
        }
    return {
        "format": manifest.FORMAT,
        "layer": recipe.name,
        "artifact": group.artifact,  # the LayerName it is published as
        "description": recipe.description,
        "license": recipe.license,
        "layerkit": __version__,
        "build_key": key,
        "runtimes": sorted({t.runtime.name for t in group.targets}),
        "architectures": sorted({t.architecture for t in group.targets}),
        "excluded": sorted(recipe.exclude),
        "targets": targets,
        "files": [{"path": f.path, "sha256": f.sha256, "mode": oct(f.mode)} for f in files],
    }
