"""Putting locked distributions into a layer's python/ tree, straight from their wheels.

Nothing is unpacked to disk: each wheel member becomes a ZIP entry under the target's
site-packages (see archive.py), minus what slimming drops.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shlex
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import parse_wheel_filename

from layerkit import files, log
from layerkit.builder.archive import Entry, wheel_entry
from layerkit.builder.container import BUILD_REQUIREMENTS, BuildContainer
from layerkit.builder.index import IndexFile, PackageIndex, WheelCache
from layerkit.builder.lock import best_wheel, choose_wheel
from layerkit.builder.lockfile import LockedDist
from layerkit.errors import IntegrityError
from layerkit.files import sha256_of
from layerkit.layer.metadata import parse_metadata
from layerkit.recipe import Slim
from layerkit.targets import (
    BOTOCORE_ACCEPTS,
    BOTOCORE_ACCEPTS_BEFORE_3_10,
    RUNTIME_PROVIDED,
    Target,
)


@dataclass(frozen=True)
class Installed:
    """One distribution as it lands in the layer."""

    name: str
    version: str
    license: str
    wheel: str
    sha256: str
    size: int  # bytes it adds to the layer, unzipped
    top_level: tuple[str, ...]
    entries: tuple[Entry, ...]
    sdist: str = ""  # compiled in the build image from this sdist, with its SHA-256
    sdist_sha256: str = ""

    @property
    def compiled_here(self) -> bool:
        """Built from its sdist in the build image (its shared objects were made here)."""
        return bool(self.sdist)


def runtime_overlap_warning(shipped: dict[str, str], python: str) -> str | None:
    """Shipping part of the runtime's boto3 stack makes the runtime's botocore import our
    copies: a warning when one of them is outside what botocore accepts. shipped: the
    layer's distributions (canonical name -> version) for one Python version."""
    from packaging.specifiers import SpecifierSet

    partial = shipped.keys() & RUNTIME_PROVIDED
    if not partial or partial == RUNTIME_PROVIDED:
        return None
    accepts = (
        BOTOCORE_ACCEPTS_BEFORE_3_10
        if tuple(map(int, python.split("."))) < (3, 10)
        else BOTOCORE_ACCEPTS
    )
    risky = sorted(
        name
        for name in partial
        if name not in accepts or shipped[name] not in SpecifierSet(accepts[name])
    )
    if not risky:
        return None
    shown = ", ".join(
        f"{name} {shipped[name]}"
        + (f" (botocore accepts {accepts[name]})" if name in accepts else "")
        for name in risky
    )
    return (
        f"for Python {python} the layer ships {shown} without boto3 and botocore: layers "
        "come before the runtime on sys.path, so the runtime's botocore will import the "
        "layer's copies. Pin versions botocore accepts, add boto3 to the layer, or leave "
        "them to the runtime (`exclude-runtime-provided = true`)."
    )


def pick(
    files: list[IndexFile], dist: LockedDist, target: Target, no_binary: frozenset[str] | None
) -> IndexFile | None:
    """The file of a locked distribution to install for a target.

    no_binary None: wheels only, the one the target ranks highest. Otherwise (a container
    build) that wheel too, unless the distribution is listed in no_binary or has no
    fitting wheel: then its sdist, which the build image compiles.
    """
    allowed = [f for f in files if f.sha256 in dist.hashes]
    if no_binary is None or dist.key not in no_binary:
        wheel = best_wheel(allowed, dist.version, None, target)
        if wheel is not None or no_binary is None:
            return wheel
    sdists = sorted(
        (f for f in allowed if f.filename.endswith((".tar.gz", ".zip"))),
        key=lambda f: f.filename,
    )
    return sdists[0] if sdists else None


def fetch(
    dists: list[tuple[Target, LockedDist]],
    index: PackageIndex,
    cache: WheelCache,
    no_binary: frozenset[str] | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> dict[tuple[str, str], Path]:
    """The file for each (target id, distribution key) (see `pick`): from the cache, else
    downloaded and checked against the lock's hash.

    A lock written by layerkit's resolver names one file per distribution. A lock with
    several hashes (pip-compile's) is narrowed by `pick` among the files already cached,
    and only when none of them will do, among the index's.
    """
    found: dict[tuple[str, str], Path] = {}
    missing: list[tuple[Target, LockedDist]] = []

    def from_cache(item: tuple[Target, LockedDist]) -> Path | None:
        target, dist = item
        cached = [IndexFile(path.name, "", sha) for sha in dist.hashes if (path := cache.find(sha))]
        chosen = pick(cached, dist, target, no_binary)
        return cache.verified(chosen.sha256) if chosen and chosen.sha256 else None

    # Re-hashing cached files runs on every core: hashlib releases the GIL.
    with ThreadPoolExecutor(max_workers=4) as pool:
        for item, path in zip(dists, pool.map(from_cache, dists), strict=True):
            if path is not None:
                found[(item[0].id, item[1].key)] = path
            else:
                missing.append(item)
    done = 0

    def download(item: tuple[Target, LockedDist]) -> tuple[tuple[str, str], Path]:
        nonlocal done
        target, dist = item
        files = index.files(dist.name)
        chosen = pick(files, dist, target, no_binary)
        if chosen is None or chosen.sha256 is None:
            # raises the error that says why
            choose_wheel(files, dist, target, index.page_of(dist.name))
            raise AssertionError("unreachable: choose_wheel found what pick did not")
        path = cache.verified(chosen.sha256)
        if path is None:
            path = cache.path(chosen.sha256, chosen.filename)
            index.download(chosen, chosen.sha256, path)
        done += 1
        progress(done, len(missing))
        return (target.id, dist.key), path

    if missing:
        progress(0, len(missing))
        with ThreadPoolExecutor(max_workers=8) as pool:
            found.update(pool.map(download, missing))
    return found


def _slimmed(path: str, slim: Slim) -> bool:
    """Whether slimming drops a site-packages path. Never touches *.dist-info."""
    if any(path.startswith(prefix) for prefix in slim.keep):
        return False
    parts = path.split("/")
    if parts[0].endswith(".dist-info"):
        return False
    if "__pycache__" in parts or path.endswith((".pyc", ".pyo")):
        return True
    # tests/ inside a package is never imported by the package itself; a top-level
    # tests/ is a packaging mistake that several distributions make and collide on.
    if slim.tests and ("tests" in parts[:-1] or "test" in parts[:-1]):
        return True
    return slim.stubs and path.endswith(".pyi")


def _top_level(paths: list[str]) -> tuple[str, ...]:
    names = set()
    for path in paths:
        first, _, rest = path.partition("/")
        if first.endswith((".dist-info", ".data")):
            continue
        if rest:
            if path.endswith((".py", ".so")):
                names.add(first)
        elif first.endswith(".py"):
            names.add(first[:-3])
        elif first.endswith(".so"):
            names.add(first.split(".")[0])
    return tuple(sorted(n for n in names if n.isidentifier()))


def install(wheel: Path, dist: LockedDist, site_packages: str, slim: Slim) -> Installed:
    """The entries a wheel contributes under `site_packages` (e.g. 'python')."""
    entries: list[Entry] = []
    kept: list[str] = []
    size = 0
    metadata = ""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            path = info.filename
            if path.endswith("/"):
                continue
            parts = path.split("/")
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    log.debug("%s: leaving out %s (not importable)", wheel.name, path)
                    continue
                parts = parts[2:]
                path = "/".join(parts)
            if path.startswith("/") or ".." in parts or "\\" in path:
                raise IntegrityError(f"{wheel.name} has an unsafe path: {info.filename!r}")
            if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                metadata = archive.read(info).decode("utf-8", "replace")
            if _slimmed(path, slim):
                continue
            kept.append(path)
            size += info.file_size
            entries.append(wheel_entry(wheel, info, f"{site_packages}/{path}"))
    return Installed(
        name=dist.name,
        version=dist.version,
        license=parse_metadata(metadata).license,
        wheel=wheel.name,
        sha256=wheel.parent.name,
        size=size,
        top_level=_top_level(kept),
        entries=tuple(entries),
    )


def install_in_container(
    target_id: str,
    files: dict[str, Path],
    dists: list[LockedDist],
    container: BuildContainer,
    site_packages: str,
    slim: Slim,
    cache_root: Path,
) -> list[Installed]:
    """Locked sdists compiled into wheels in the build image, then installed like any wheel.

    The wheels are kept under cache/built by (sdist SHA-256, image, platform, Python): a
    rebuild compiles nothing. Compiling again (the cache emptied, another image) needs no
    network either: the build requirements (setuptools…) are kept as wheels under
    cache/build-requirements. `--require-hashes` refuses any file the lock does not name;
    `--no-deps` builds exactly these distributions.
    """
    built = {d.key: _built_wheel(cache_root, container, files[d.key]) for d in dists}
    missing = [d for d in dists if built[d.key] is None]
    if missing:
        with tempfile.TemporaryDirectory(prefix="layerkit-compile-") as tmp:
            work = Path(tmp)
            (work / "dists").mkdir()
            for d in missing:
                shutil.copyfile(files[d.key], work / "dists" / files[d.key].name)
            # The files themselves, not name==version: pip must compile exactly these, and
            # not prefer a wheel from the index that fits the image but needs a newer glibc
            # than the runtime has.
            requirements = "".join(
                f"./dists/{files[d.key].name} "
                + " ".join(f"--hash=sha256:{h}" for h in d.hashes)
                + "\n"
                for d in missing
            )
            (work / "requirements.txt").write_text(requirements, encoding="utf-8")
            container.run(
                work, _compile_script(container, [files[d.key] for d in missing]),
                f"pip install of the {target_id} lock",
            )  # fmt: skip
            made: dict[str, Path] = {
                parse_wheel_filename(w.name)[0]: w  # already canonical
                for w in (work / "wheels").glob("*.whl")
            }
            for d in missing:
                if d.key not in made:
                    raise IntegrityError(f"pip built no wheel for {d.name} in {container.image}.")
                built[d.key] = _keep_built(cache_root, container, files[d.key], made[d.key])
    installed = []
    for d in dists:
        wheel = built[d.key]
        assert wheel is not None
        # The manifest's sha256 is that of a downloaded wheel: a compiled one has none, and
        # names its sdist instead (the wheel cache keeps each file under its SHA-256).
        sdist = files[d.key]
        compiled = install(wheel, d, site_packages, slim)
        installed.append(
            dataclasses.replace(
                compiled, sha256="", sdist=sdist.name, sdist_sha256=sdist.parent.name
            )
        )
    return installed


def build_requirements(sdist: Path) -> list[str]:
    """The sdist's [build-system] requires, from its pyproject.toml (PEP 517/518), or the
    setuptools that pip assumes without one. Requirements a backend adds while building
    (get_requires_for_build_wheel) are not known before: the index gives those."""
    import tarfile

    from layerkit.files import parse_toml

    legacy = ["setuptools>=40.8.0", "wheel"]
    try:
        if sdist.name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as archive:
                names = [n for n in archive.namelist() if n.count("/") == 1]
                found = next((n for n in names if n.endswith("/pyproject.toml")), None)
                text = archive.read(found) if found else None
        else:
            with tarfile.open(sdist) as archive:
                member = next(
                    (m for m in archive.getmembers()
                     if m.name.count("/") == 1 and m.name.endswith("/pyproject.toml")),
                    None,
                )  # fmt: skip
                handle = archive.extractfile(member) if member else None
                text = handle.read() if handle else None
        if text is None:
            return legacy
        requires = parse_toml(text.decode("utf-8")).get("build-system", {}).get("requires")
    except (OSError, tarfile.TarError, zipfile.BadZipFile, UnicodeDecodeError, ValueError):
        return legacy
    return [str(r) for r in requires] if isinstance(requires, list) else legacy


def _compile_script(container: BuildContainer, sdists: list[Path]) -> str:
    """pip wheel for the sdists, with their build requirements from the kept wheels: when
    online, those are downloaded there first (a failure leaves pip to the index), so that
    compiling again later, even with --network none, needs no index."""
    requires = sorted({r for sdist in sdists for r in build_requirements(sdist)})
    kept = f"PIP_FIND_LINKS={BUILD_REQUIREMENTS}"
    script = ""
    if container.offline:
        kept += " PIP_NO_INDEX=1"
    elif requires:
        script += (
            f"python3 -m pip download --only-binary :all: -d {BUILD_REQUIREMENTS} "
            f"{shlex.join(requires)} || true\n"
        )
    return script + (
        f"{kept} python3 -m pip wheel --require-hashes --no-deps --use-pep517 -w wheels "
        "-r requirements.txt\n"
    )


def _built_folder(cache_root: Path, container: BuildContainer, sdist: Path) -> Path:
    key = "\n".join((sha256_of(sdist), container.image, container.platform, container.python))
    digest = hashlib.sha256(key.encode()).hexdigest()
    return cache_root / "built" / digest[:2] / digest


def _built_wheel(cache_root: Path, container: BuildContainer, sdist: Path) -> Path | None:
    """The wheel compiled before; None when there is none, or it is damaged (then it is
    dropped, and compiled again)."""
    folder = _built_folder(cache_root, container, sdist)
    for wheel in sorted(folder.glob("*.whl")) if folder.is_dir() else []:
        try:
            with zipfile.ZipFile(wheel):
                return wheel
        except (zipfile.BadZipFile, OSError):
            log.warning("damaged compiled wheel %s in the cache: compiling it again", wheel)
            wheel.unlink(missing_ok=True)
    return None


def _keep_built(cache_root: Path, container: BuildContainer, sdist: Path, wheel: Path) -> Path:
    """Copy a compiled wheel into the cache atomically: a reader sees all of it or none."""
    kept = _built_folder(cache_root, container, sdist) / wheel.name
    with files.atomic(kept) as out, wheel.open("rb") as source:
        shutil.copyfileobj(source, out)
    return kept
