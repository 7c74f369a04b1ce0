"""Writing one layer ZIP: wheels fetched and installed into the python/ tree, sdists
compiled by the target's backend, bytecode added, native code checked, the manifest and
SBOM made, the ZIP written deterministically. A no-op build never imports this module:
the pipeline decides from the build key alone that nothing needs writing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from layerkit import log, quota
from layerkit.builder import archive, native
from layerkit.builder.archive import Entry
from layerkit.builder.artifact_cache import Summary
from layerkit.builder.backends import Backend
from layerkit.builder.bytecode import Compiled, add_bytecode
from layerkit.builder.compilers import Compiler, cache_tag
from layerkit.builder.context import Context
from layerkit.builder.install import Installed, fetch, install, runtime_overlap_warning
from layerkit.builder.lockfile import LockedDist, shipped
from layerkit.builder.plan import Group, Job, site_packages
from layerkit.layer import manifest, sbom
from layerkit.recipe import Recipe
from layerkit.targets import Target
from layerkit.version import __version__


def _shared(group: Group, files: dict[tuple[str, str], Path]) -> set[str]:
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
        return site_packages(target) if self.own[target.id] else "python"

    def all(self) -> list[list[Installed]]:
        return [self.shared, *self.own.values()]


def assemble(job: Job, ctx: Context, dest: Path) -> Summary:
    """Write the artifact to dest and summarise it."""
    recipe, group, locks, files = job.recipe, job.group, job.locks, job.files
    chosen, compilers = job.chosen, job.compilers
    plan = [(t, d) for t in group.targets for d in shipped(locks[t.id].lock, recipe.exclude)]
    on_host = [(t, d) for t, d in plan if not chosen[t.id].builds_sdists]
    warnings = {
        runtime_overlap_warning(
            {d.key: d.version for t, d in plan if t.runtime.python_version == python}, python
        )
        for python in group.pythons
    }
    for warning in sorted(w for w in warnings if w):
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
                site_packages(t), found, chosen[t.id], ctx, group.artifact,
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
    compiled = {
        e.path for part in installs.all() for i in part if i.compiled_here for e in i.entries
    }
    native.check(entries, group.artifact, group.targets, compiled)

    generated = [(f.path, f.source.read_bytes(), f.mode) for f in files]
    layer_manifest = _manifest(job, installs)
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
    installs: _Installs, group: Group, python: str, compiler: Compiler, cache_root: Path
) -> None:
    """Add CPython `python`'s pyc to what its targets import: the shared part and their own."""
    # The shared part serves every version; a target's own part only its version (in a
    # layer for both architectures, the targets of one version share one install).
    parts = [("python", installs.shared)]
    for target in group.targets:
        site = site_packages(target)
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


def _manifest(job: Job, installs: _Installs) -> manifest.LayerManifest:
    recipe, group, locks, compilers = job.recipe, job.group, job.locks, job.compilers
    targets = {}
    shared = {i.name for i in installs.shared}
    for target in group.targets:
        site = installs.site_packages(target)
        python = target.runtime.python_version
        targets[target.id] = manifest.TargetContent(
            lock="sha256:" + locks[target.id].sha256,
            built_with=job.chosen[target.id].name,
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
