"""Resolving a recipe for its target into a lock (lockfile.py reads and writes them).

Resolution runs `uv pip compile --python-platform --python-version --only-binary`.
Measured on this project's data set (numpy, pandas, pydantic, cryptography; warm caches):
uv 0.5 s, `pip install --dry-run --report` 3.5 s. Speed is not the deciding reason: pip's
--python-version changes tag and Requires-Python checks but evaluates environment markers
for the host (`six; platform_machine == "aarch64"` is dropped for an arm64 target built
on x86_64, `python_version` markers follow the host), while uv evaluates them for the
target. uv's platform names stop at certain glibc levels, so the resolution is capped at
the nearest one below the runtime's (see targets.uv_platform); the lock then keeps, per
distribution, the hash of the one wheel that fits the target best under the full tag list.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from layerkit.builder.container import PIP_TOOLS, BuildContainer
from layerkit.builder.index import IndexFile, PackageIndex
from layerkit.builder.lockfile import Lock, LockedDist, input_hash, parse
from layerkit.errors import (
    CommandFailedError,
    IntegrityError,
    NoFittingWheelError,
    PackageIndexError,
    ResolutionError,
    ToolError,
)
from layerkit.recipe import Recipe
from layerkit.redaction import redact
from layerkit.runner import run
from layerkit.targets import Target


def best_wheel(
    files: list[IndexFile], version: str, allowed: set[str] | None, target: Target
) -> IndexFile | None:
    """The wheel of `version` the target ranks highest, among files whose hash is allowed."""
    ranked: list[tuple[int, str, IndexFile]] = []
    for file in files:
        if file.sha256 is None or (allowed is not None and file.sha256 not in allowed):
            continue
        try:
            _, file_version, _, tags = parse_wheel_filename(file.filename)
        except InvalidWheelFilename:
            continue
        if file_version != Version(version):
            continue
        ranks = [target.tag_priority[t] for t in tags if t in target.tag_priority]
        if ranks:
            ranked.append((min(ranks), file.filename, file))
    return min(ranked, key=lambda r: (r[0], r[1]))[2] if ranked else None


def _version_of(filename: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def choose_wheel(
    files: list[IndexFile], dist: LockedDist, target: Target, page: str | None = None
) -> IndexFile:
    """The wheel a locked distribution installs for a target, or the error saying why not.
    page: the index page the files came from, when the first index that has a project
    is the only one asked."""
    chosen = best_wheel(files, dist.version, set(dist.hashes), target)
    if chosen is not None:
        return chosen
    matching = [f.filename for f in files if f.sha256 in dist.hashes]
    if not matching and page and Version(dist.version) not in map(_version_of, [
        f.filename for f in files
    ]):  # fmt: skip
        raise PackageIndexError(
            f"{redact(page)} has {dist.name}, but not version {dist.version}, which the "
            f"{target.id} lock pins. The lock is right; the order of the indexes is the "
            "cause: layerkit takes each project from the first index that has it (the extra "
            "indexes first, then the index, as uv does), which guards against dependency "
            "confusion. If every index is trusted, pass --index-strategy unsafe-best-match "
            "(or set LAYERKIT_INDEX_STRATEGY=unsafe-best-match); otherwise remove the partial "
            "mirror from pip's extra-index-url."
        )
    if not matching:
        raise IntegrityError(
            f"None of the files the index has for {dist.name}=={dist.version} match the "
            f"hashes in the {target.id} lock. The lock was edited or the index serves other "
            "files: re-lock (`layerkit lock`) only if that is expected."
        )
    raise NoFittingWheelError(dist.name, dist.version, target.describe(), matching)


# uv's words for an index it could not read (as opposed to requirements that conflict):
# unreachable, refused the credentials (uv then says the project "was not found"), or
# answered with something that is not an index page.
_UNREACHABLE = (
    "Failed to fetch", "Request failed after", "error sending request",
    "lack of valid authentication credentials", "Missing `Content-Type` header",
)  # fmt: skip


def resolve(
    recipe: Recipe,
    target: Target,
    index: PackageIndex,
    *,
    upgrade: bool = False,
    upgrade_packages: tuple[str, ...] = (),
    uv_binary: str,
    env: dict[str, str],
) -> Lock:
    """Resolve the recipe for the target and keep, per pin, the best-fitting wheel's hash."""
    if not recipe.requirements_text().strip():
        return Lock(target.id, input_hash(recipe, target))  # a layer of files only
    with tempfile.TemporaryDirectory(prefix="layerkit-lock-") as tmp:
        workdir = Path(tmp)
        if recipe.requirements_file is not None:
            requirements = str(recipe.requirements_file)
        else:
            requirements = str(workdir / f"{recipe.stem}.in")
            Path(requirements).write_text(recipe.requirements_text(), encoding="utf-8")
        output = _seed(recipe, target, workdir, upgrade)
        command = [
            uv_binary, "pip", "compile", requirements,
            "--python-version", target.runtime.python_version,
            "--python-platform", target.uv_platform,
            "--only-binary", ":all:",
            "--generate-hashes", "--no-header", "--quiet", "--no-config",
            # uv would otherwise fetch an interpreter of the target version; it needs none,
            # since --python-version and --python-platform set every marker it evaluates.
            "--python", sys.executable, "--no-python-downloads",
            "--output-file", str(output),
            "--index-url", index.settings.index_url,
            "--index-strategy", index.settings.strategy,
        ]  # fmt: skip
        for extra in index.settings.extra_index_urls:
            command += ["--extra-index-url", extra]
        command += _upgrade_options(upgrade, upgrade_packages)
        try:
            run(command, cwd=workdir, env=_uv_env(env, index))
        except ToolError as exc:
            if "but not at the requested version" in exc.stderr_tail:
                raise ResolutionError(target.describe(), exc.stderr_tail, _FIRST_INDEX) from None
            if any(sign in exc.stderr_tail for sign in _UNREACHABLE):
                quoted = "\n".join(f"  | {line}" for line in exc.stderr_tail.splitlines())
                raise PackageIndexError(
                    f"The package index could not be read while resolving for "
                    f"{target.describe()}:\n{quoted}\nCheck the index URL and its credentials "
                    "(pip's index-url, PIP_INDEX_URL or --index-url), the network, a proxy "
                    "(HTTPS_PROXY) or the CA bundle (--ca-bundle, PIP_CERT)."
                ) from None
            raise ResolutionError(target.describe(), exc.stderr_tail) from None
        resolved = parse(output.read_text(encoding="utf-8"), target.id)

    source = recipe.requirements_file or recipe.path
    with ThreadPoolExecutor(max_workers=8) as pool:
        listings = list(pool.map(lambda d: index.files(d.name), resolved.dists))
    dists = []
    for dist, files in zip(resolved.dists, listings, strict=True):
        chosen = choose_wheel(files, dist, target, index.page_of(dist.name))
        assert chosen.sha256 is not None  # best_wheel only returns hashed files
        via = _cited(dist.via, source)
        dists.append(LockedDist(dist.name, dist.version, (chosen.sha256,), via))
    return Lock(target.id, input_hash(recipe, target), tuple(dists))


def resolve_in_container(
    recipe: Recipe,
    target: Target,
    container: BuildContainer,
    *,
    upgrade: bool = False,
    upgrade_packages: tuple[str, ...] = (),
) -> Lock:
    """Resolve with pip-compile inside the target's build image: markers, wheel choice and
    sdist metadata are exactly the runtime's. The lock keeps every file's hash, so that
    pip in the container can pick a wheel or compile the sdist."""
    with tempfile.TemporaryDirectory(prefix="layerkit-lock-") as tmp:
        work = Path(tmp)
        source = recipe.requirements_file or recipe.path.with_suffix(".in")
        (work / source.name).write_text(recipe.requirements_text(), encoding="utf-8")
        output = _seed(recipe, target, work, upgrade)
        options = _upgrade_options(upgrade, upgrade_packages)
        if recipe.no_binary:
            options += ["--pip-args", f"--no-binary {','.join(recipe.no_binary)}"]
        script = (
            f"python3 -m pip install {shlex.quote(PIP_TOOLS)}\n"
            "python3 -m piptools compile --quiet --generate-hashes --allow-unsafe "
            "--no-header --no-emit-index-url --no-emit-trusted-host "
            f"--output-file lock.txt {shlex.join(options)} {shlex.quote(source.name)}\n"
        )
        try:
            container.run(work, script, "pip-compile")
        except CommandFailedError as exc:
            how = (f"in {container.image}", "Loosen or pin the requirement named above.")
            raise ResolutionError(target.describe(), exc.tail, how) from None
        resolved = parse(output.read_text(encoding="utf-8"), target.id)
    dists = tuple(
        LockedDist(d.name, d.version, d.hashes, _cited(d.via, source)) for d in resolved.dists
    )
    return Lock(target.id, input_hash(recipe, target), dists, strategy="container")


_FIRST_INDEX = (
    "using wheels only",
    "An index earlier in the order has this project, but not at a version the requirement "
    "allows, and layerkit takes each project from the first index that has it (uv's "
    "default, which guards against dependency confusion: a public index cannot replace "
    "a private package). If every index is trusted, pass --index-strategy "
    "unsafe-best-match (or set LAYERKIT_INDEX_STRATEGY) to lock, build and publish; "
    "otherwise remove the partial mirror from pip's extra-index-url.",
)


def _seed(recipe: Recipe, target: Target, work: Path, upgrade: bool) -> Path:
    """The resolver's output file, holding the current lock: both resolvers keep the
    versions already in it unless told to upgrade."""
    output = work / "lock.txt"
    previous = recipe.lock_path(target)
    if previous.exists() and not upgrade:
        output.write_text(previous.read_text(encoding="utf-8"), encoding="utf-8")
    return output


def _upgrade_options(upgrade: bool, packages: tuple[str, ...]) -> list[str]:
    """The same flags for uv and pip-compile."""
    options = ["--upgrade"] if upgrade else []
    for package in packages:
        options += ["--upgrade-package", package]
    return options


def _cited(via: tuple[str, ...], source: Path) -> tuple[str, ...]:
    """`# via` lines name the recipe's requirements by file name, never a machine's path."""
    return tuple(f"-r {source.name}" if v.startswith(("-r ", "-c ")) else v for v in via)


def _uv_env(env: dict[str, str], index: PackageIndex) -> dict[str, str]:
    """uv's environment: layerkit's index settings only, never the user's uv config."""
    clean = {k: v for k, v in env.items() if not k.startswith("UV_") or k == "UV_CACHE_DIR"}
    if index.settings.cert:
        clean["SSL_CERT_FILE"] = index.settings.cert
    return clean
