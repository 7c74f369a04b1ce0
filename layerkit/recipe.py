"""Recipes: TOML files that describe a layer, read into frozen dataclasses.

Every rejection names the file, the key path and what is allowed, so that a user can
fix the recipe without reading layerkit's source.
"""

from __future__ import annotations

import datetime
import difflib
import re
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from layerkit import log, quota
from layerkit.errors import RecipeError
from layerkit.files import parse_toml
from layerkit.names import canonical
from layerkit.targets import (
    ARCHITECTURES,
    RUNTIME_PROVIDED,
    RUNTIMES,
    Target,
    lifecycle_of,
)

LAYER_NAME = re.compile(rf"[A-Za-z0-9_-]{{1,{quota.LAYER_NAME_LIMIT}}}")
# publish appends a content marker of at most this many characters to the Description.
DESCRIPTION_RESERVED = 32
DESCRIPTION_LIMIT = quota.DESCRIPTION_LIMIT - DESCRIPTION_RESERVED
# Paths under /opt that belong to others: python/ holds the packages, layerkit/ the manifest.
RESERVED_TARGETS = ("python", "layerkit")


# Every recipe field says what it changes (the tests walk them all):
# - the build key: a field is in it unless declared out (`out_of_key`), so a new key that changes
#   the layer's bytes can never be forgotten and let a stale cached artifact be reused;
# - the lock: a field that changes resolution is declared with `lock=True`, and lockfile.py's
#   input hash covers exactly those (a lock is committed: it must not go stale by accident).


def in_key(default: Any = MISSING, *, lock: bool = False) -> Any:
    return field(default=default, metadata={"build_key": True, "lock": lock})


def out_of_key(why: str, default: Any = MISSING, *, lock: bool = False) -> Any:
    return field(default=default, metadata={"build_key": False, "why": why, "lock": lock})


@dataclass(frozen=True)
class FileSpec:
    """A `[[files]]` entry: a file or folder of the recipe and where it lands under /opt."""

    source: Path  # absolute, resolved against the recipe's folder
    target: PurePosixPath  # relative to /opt


@dataclass(frozen=True)
class Slim:
    """`[slim]`: what is left out of the layer, and whether it ships bytecode."""

    tests: bool = in_key(True)  # drop tests/ and test/ folders inside packages
    stubs: bool = in_key(True)  # drop *.pyi type stubs, never read at run time
    strip: bool = in_key(False)  # strip debug symbols from shared objects
    keep: tuple[str, ...] = in_key(())  # archive path prefixes that slimming must leave alone
    # ship hash-based .pyc for the target's Python, so cold starts compile nothing
    bytecode: bool = in_key(True)


@dataclass(frozen=True)
class BuildSettings:
    """`[build]`: how the layer is built; none of it changes the layer's bytes."""

    # The build image per target; {runtime}, {python} and {arch} are filled in.
    image: str = out_of_key(
        "in the key as the backend chosen for each target",
        "public.ecr.aws/sam/build-{runtime}:latest-{arch}",
    )
    # a Docker network mode for build containers, e.g. "host"
    network: str | None = out_of_key(
        "where the build container's traffic goes, not what it makes", None
    )
    # check the lock against OSV before building (as `build --audit`)
    audit: bool = out_of_key("a check before the build; it adds nothing to the layer", False)


_PUBLISH = "publishing settings: where and to whom the same bytes go"


@dataclass(frozen=True)
class PublishSettings:
    """`[publish]`: where the layer is published and who may use it."""

    regions: tuple[str, ...] = out_of_key(_PUBLISH, ())  # empty: the session's region
    principals: tuple[str, ...] = out_of_key(_PUBLISH, ())  # accounts, root ARNs, or "*" (public)
    # an AWS Organizations ID: all its accounts
    organization: str | None = out_of_key(_PUBLISH, None)
    # SSM parameter with the latest ARN; "" for none
    parameter: str = out_of_key(_PUBLISH, "/layers/{layer}/latest")
    s3_bucket: str | None = out_of_key(_PUBLISH, None)  # for ZIPs over 50 MB; {region} filled in
    align_versions: bool = out_of_key(_PUBLISH, False)  # the same version number everywhere
    public: bool = out_of_key(_PUBLISH, False)  # principals may hold "*": every AWS account
    signing_profile: str | None = out_of_key(_PUBLISH, None)  # AWS Signer profile to sign with


# Patterns for re.fullmatch, compiled (and cached by re) when a recipe has [publish] values
# to check: a no-op build of a recipe without them does not pay for them.
REGION = r"[a-z]{2}(-[a-z]+)+-\d"
PRINCIPAL = r"\*|\d{12}|arn:aws(-[a-z]+)*:iam::\d{12}:root"
SIGNING_PROFILE = r"[a-zA-Z0-9_]{2,64}"  # Signer's profileName
ORGANIZATION = r"o-[a-z0-9]{10,32}"


@dataclass(frozen=True)
class Recipe:
    """A recipe as loaded and checked: every key with its default filled in."""

    path: Path = out_of_key("where the recipe is, which differs between clones")
    name: str = in_key()
    description: str = in_key()
    license: str = in_key()
    runtimes: tuple[str, ...] = in_key()
    architectures: tuple[str, ...] = in_key()
    requirements: tuple[str, ...] = in_key(lock=True)
    requirements_file: Path | None = out_of_key(
        "an absolute path; its text is in the lock's input hash, and so in each lock", lock=True
    )
    exclude: frozenset[str] = in_key()
    no_binary: tuple[str, ...] = in_key(lock=True)  # compiled from source in the container
    files: tuple[FileSpec, ...] = out_of_key(
        "absolute paths; the files' content and mode are keyed"
    )
    slim: Slim = in_key()
    build: BuildSettings = in_key()
    publish: PublishSettings = out_of_key(_PUBLISH)

    @property
    def stem(self) -> str:
        return self.path.name.removesuffix(".toml")

    @property
    def targets(self) -> list[Target]:
        return [
            Target(RUNTIMES[runtime], arch)
            for arch in self.architectures
            for runtime in self.runtimes
        ]

    def lock_path(self, target: Target) -> Path:
        return self.path.with_name(f"{self.stem}.{target.id}.lock.txt")

    def requirements_text(self) -> str:
        """The requirements as the resolver reads them."""
        if self.requirements_file is not None:
            return self.requirements_file.read_text(encoding="utf-8")
        return "".join(f"{line}\n" for line in self.requirements)


def check_requirements(recipe: Recipe) -> None:
    """Refuse a requirement that is not one, naming it.

    Asked before the requirements are resolved, or when a lock does not match them, not at
    load: a lock that matches proves they parsed when it was written (its input hash covers
    them), and a no-op build should not import packaging's parser (some 30 ms) to learn it.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    for line in recipe.requirements:
        try:
            Requirement(line)
        except InvalidRequirement as exc:
            raise RecipeError(
                str(recipe.path),
                "python.requirements",
                f"{line!r} is not a valid requirement: {exc}.",
            ) from None


def build_key_data(settings: Any) -> dict[str, Any]:
    """The recipe's part of the build key: every field not declared out, recursively."""
    data: dict[str, Any] = {}
    for f in fields(settings):
        if not f.metadata.get("build_key", True):
            continue
        value = getattr(settings, f.name)
        if is_dataclass(value):
            data[f.name] = build_key_data(value)
        elif isinstance(value, (tuple, list)):
            data[f.name] = list(value)
        elif isinstance(value, (set, frozenset)):
            data[f.name] = sorted(value)
        elif value is None or isinstance(value, (str, int, float, bool)):
            data[f.name] = value
        else:  # a path would make the key, and so the bytes, differ between clones
            raise TypeError(f"{f.name}: declare what a {type(value).__name__} does to the key")
    return data


_SCHEMA: dict[str, set[str]] = {
    "layer": {"name", "description", "license", "runtimes", "architectures"},
    "python": {
        "requirements",
        "requirements-file",
        "exclude",
        "exclude-runtime-provided",
        "no-binary",
    },
    "build": {"image", "network", "audit"},
    "publish": {
        "regions",
        "principals",
        "organization",
        "parameter",
        "s3-bucket",
        "align-versions",
        "public",
        "signing-profile",
    },
    "slim": {"tests", "stubs", "strip", "keep", "bytecode"},
    "files": {"source", "target"},
}


def _unknown(path: str, key: str, allowed: set[str], section: str) -> RecipeError:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" Perhaps you meant `{close[0]}`?" if close else ""
    where = f"[{section}]" if section else "the top level"
    return RecipeError(
        path,
        f"{section + '.' if section else ''}{key}",
        f"unknown key in {where}.{hint} Allowed: {', '.join(sorted(allowed))}.",
    )


class _Reader:
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path, self.data, self.shown = path, data, str(path)

    def fail(self, key: str, problem: str) -> RecipeError:
        return RecipeError(self.shown, key, problem)

    def table(self, name: str) -> dict[str, Any]:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(name, f"must be a table ([{name}]), got {type(value).__name__}.")
        for key in value:
            if key not in _SCHEMA[name]:
                raise _unknown(self.shown, key, _SCHEMA[name], name)
        return value

    def get(
        self, table: dict[str, Any], section: str, key: str, kind: type, default: Any = None
    ) -> Any:
        if key not in table:
            return default
        value = table[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            raise self.fail(
                f"{section}.{key}",
                f"must be a {kind.__name__}, got {type(value).__name__} ({value!r}).",
            )
        return value

    def strings(self, table: dict[str, Any], section: str, key: str) -> list[str]:
        values = self.get(table, section, key, list, [])
        for item in values:
            if not isinstance(item, str):
                raise self.fail(f"{section}.{key}", f"must be a list of strings, has {item!r}.")
        return list(values)

    def choices(
        self, table: dict[str, Any], key: str, allowed: dict[str, Any], advice: str
    ) -> tuple[str, ...]:
        values = self.strings(table, "layer", key)
        if not values:
            raise self.fail(f"layer.{key}", f"is required: a list of {advice}.")
        for value in values:
            if value not in allowed:
                close = difflib.get_close_matches(value, allowed, n=1)
                hint = f" Perhaps you meant {close[0]!r}?" if close else ""
                raise self.fail(
                    f"layer.{key}",
                    f"{value!r} is not a Lambda {advice[:-1]}.{hint} "
                    f"Allowed: {', '.join(allowed)}.",
                )
        if len(set(values)) != len(values):
            raise self.fail(f"layer.{key}", f"lists a value twice: {values}.")
        return tuple(values)


def load(path: Path, today: Callable[[], datetime.date] = datetime.date.today) -> Recipe:
    """Read and validate a recipe; raise RecipeError naming the key at fault."""
    try:
        data = parse_toml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(str(path), "", "no such recipe file.") from None
    except UnicodeDecodeError:
        raise RecipeError(
            str(path), "", "is not UTF-8 text (TOML files are UTF-8): save it as UTF-8."
        ) from None
    except ValueError as exc:  # tomllib's TOMLDecodeError
        raise RecipeError(str(path), "", f"is not valid TOML: {exc}.") from None
    except IsADirectoryError:
        raise RecipeError(str(path), "", "is a folder: name a recipe's .toml file.") from None
    except OSError as exc:
        raise RecipeError(str(path), "", f"cannot be read: {exc.strerror or exc}.") from None
    reader = _Reader(path, data)
    for key in data:
        if key not in _SCHEMA:
            raise _unknown(str(path), key, set(_SCHEMA), "")

    layer = reader.table("layer")
    name = reader.get(layer, "layer", "name", str)
    if name is None:
        raise reader.fail("layer.name", "is required: the Lambda LayerName.")
    if not LAYER_NAME.fullmatch(name):
        raise reader.fail(
            "layer.name",
            f"{name!r} is not a valid LayerName: use 1 to 140 letters, digits, '-' or '_'.",
        )
    description = reader.get(layer, "layer", "description", str, "")
    if len(description) > DESCRIPTION_LIMIT:
        raise reader.fail(
            "layer.description",
            f"has {len(description)} characters; at most {DESCRIPTION_LIMIT} are allowed "
            f"(Lambda's limit is 256 and layerkit keeps {DESCRIPTION_RESERVED} for its "
            "content marker).",
        )
    license_ = reader.get(layer, "layer", "license", str, "")
    if len(license_) > quota.LICENSE_LIMIT:
        raise reader.fail(
            "layer.license",
            f"has {len(license_)} characters; Lambda allows at most {quota.LICENSE_LIMIT}.",
        )
    runtimes = reader.choices(layer, "runtimes", RUNTIMES, "Python runtimes")
    architectures = reader.choices(layer, "architectures", ARCHITECTURES, "architectures")
    for runtime in runtimes:
        lifecycle = lifecycle_of(runtime)
        stage = lifecycle.stage(today()) if lifecycle else None
        if stage is not None:
            log.warning(
                "%s: layer.runtimes: %s was %s. Lambda no longer patches it: move the "
                "recipe to a supported runtime.",
                path, runtime, stage,
            )  # fmt: skip

    python = reader.table("python")
    requirements = reader.strings(python, "python", "requirements")
    requirements_file = reader.get(python, "python", "requirements-file", str)
    if requirements and requirements_file:
        raise reader.fail("python", "give either `requirements` or `requirements-file`, not both.")
    req_file: Path | None = None
    if requirements_file is not None:
        req_file = (path.parent / requirements_file).resolve()
        if not req_file.is_file():
            raise reader.fail(
                "python.requirements-file",
                f"{requirements_file!r} does not exist (looked for {req_file}).",
            )
        try:
            req_file.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            raise reader.fail(
                "python.requirements-file",
                f"{requirements_file!r} cannot be read as UTF-8 text: save it as UTF-8.",
            ) from None
    exclude: set[str] = {canonical(n) for n in reader.strings(python, "python", "exclude")}
    if reader.get(python, "python", "exclude-runtime-provided", bool, False):
        exclude |= RUNTIME_PROVIDED

    no_binary = tuple(sorted(canonical(n) for n in reader.strings(python, "python", "no-binary")))
    build_table = reader.table("build")
    image = reader.get(build_table, "build", "image", str, BuildSettings.image)
    try:
        image.format(runtime="python3.12", python="3.12", arch="x86_64")
    except (KeyError, IndexError, ValueError):
        raise reader.fail(
            "build.image",
            f"{image!r} may use only the placeholders {{runtime}}, {{python}} and {{arch}}.",
        ) from None
    build = BuildSettings(
        image,
        reader.get(build_table, "build", "network", str),
        reader.get(build_table, "build", "audit", bool, False),
    )

    publish = _publish(reader)

    slim_table = reader.table("slim")
    slim = Slim(
        tests=reader.get(slim_table, "slim", "tests", bool, True),
        stubs=reader.get(slim_table, "slim", "stubs", bool, True),
        strip=reader.get(slim_table, "slim", "strip", bool, False),
        keep=tuple(reader.strings(slim_table, "slim", "keep")),
        bytecode=reader.get(slim_table, "slim", "bytecode", bool, True),
    )

    files = _files(reader)
    return Recipe(
        path=path,
        name=name,
        description=description,
        license=license_,
        runtimes=runtimes,
        architectures=architectures,
        requirements=tuple(requirements),
        requirements_file=req_file,
        exclude=frozenset(exclude),
        no_binary=no_binary,
        files=files,
        slim=slim,
        build=build,
        publish=publish,
    )


def _publish(reader: _Reader) -> PublishSettings:
    table = reader.table("publish")
    regions = reader.strings(table, "publish", "regions")
    for region in regions:
        if not re.fullmatch(REGION, region):
            raise reader.fail("publish.regions", f"{region!r} is not an AWS region name.")
    principals = reader.strings(table, "publish", "principals")
    for principal in principals:
        if not re.fullmatch(PRINCIPAL, principal):
            raise reader.fail(
                "publish.principals",
                f"{principal!r} is not a principal Lambda accepts: use a 12-digit account "
                "ID, arn:aws:iam::<account>:root, or '*' for everyone (with public = true).",
            )
    organization = reader.get(table, "publish", "organization", str)
    if organization is not None and not re.fullmatch(ORGANIZATION, organization):
        raise reader.fail(
            "publish.organization", f"{organization!r} is not an organization ID (o-…)."
        )
    parameter = reader.get(table, "publish", "parameter", str, PublishSettings.parameter)
    if parameter and not parameter.startswith("/"):
        raise reader.fail("publish.parameter", f"{parameter!r} must start with '/'.")
    profile = reader.get(table, "publish", "signing-profile", str)
    if profile is not None and not re.fullmatch(SIGNING_PROFILE, profile):
        raise reader.fail(
            "publish.signing-profile",
            f"{profile!r} is not a Signer profile name (2 to 64 letters, digits or _).",
        )
    return PublishSettings(
        regions=tuple(regions),
        principals=tuple(principals),
        organization=organization,
        parameter=parameter,
        s3_bucket=reader.get(table, "publish", "s3-bucket", str),
        align_versions=reader.get(table, "publish", "align-versions", bool, False),
        public=reader.get(table, "publish", "public", bool, False),
        signing_profile=profile,
    )


def _files(reader: _Reader) -> tuple[FileSpec, ...]:
    entries = reader.data.get("files", [])
    if not isinstance(entries, list):
        raise reader.fail("files", "must be an array of tables ([[files]]).")
    specs: list[FileSpec] = []
    for index, entry in enumerate(entries):
        key = f"files[{index}]"
        if not isinstance(entry, dict):
            raise reader.fail(key, "must be a table with `source` and `target`.")
        for name in entry:
            if name not in _SCHEMA["files"]:
                raise _unknown(reader.shown, name, _SCHEMA["files"], key)
        source = reader.get(entry, key, "source", str)
        target = reader.get(entry, key, "target", str)
        if source is None or target is None:
            raise reader.fail(key, "needs both `source` (relative to the recipe) and `target`.")
        source_path = (reader.path.parent / source).resolve()
        if not source_path.exists():
            raise reader.fail(
                f"{key}.source", f"{source!r} does not exist (looked for {source_path})."
            )
        target_path = PurePosixPath(target)
        if target_path.is_absolute() or ".." in target_path.parts or not target_path.parts:
            raise reader.fail(
                f"{key}.target",
                f"{target!r} must be a relative path inside /opt, without '..' "
                "(for example 'etc/app/config.json').",
            )
        if target_path.parts[0] in RESERVED_TARGETS:
            raise reader.fail(
                f"{key}.target",
                f"{target!r} lands in /opt/{target_path.parts[0]}/, which layerkit owns "
                "(python/ holds the packages, where a file would shadow them; layerkit/ the "
                "manifest). Choose another folder, such as 'etc/' or 'share/'.",
            )
        specs.append(FileSpec(source_path, target_path))
    return tuple(specs)


def find(name_or_path: str, recipes_dir: Path) -> Path:
    """A recipe given as a path, or as a name looked up in recipes/."""
    as_path = Path(name_or_path)
    if as_path.suffix == ".toml" or as_path.exists():
        return as_path
    candidate = recipes_dir / f"{name_or_path}.toml"
    if candidate.exists():
        return candidate
    known = sorted(p.stem for p in recipes_dir.glob("*.toml"))
    close = difflib.get_close_matches(name_or_path, known, n=1)
    hint = f" Perhaps you meant {close[0]!r}?" if close else ""
    raise RecipeError(
        name_or_path,
        "",
        f"no such recipe: not a file, and not a name in {recipes_dir}/.{hint} "
        f"Known: {', '.join(known) or 'none'}.",
    )


def discover(recipes_dir: Path) -> list[Path]:
    found = sorted(recipes_dir.glob("*.toml"))
    if not found:
        raise RecipeError(
            str(recipes_dir), "", "holds no *.toml recipes; name a recipe file to build."
        )
    return found


def recipes_named(names: list[str] | None, recipes_dir: Path) -> list[Recipe]:
    """The recipes named (files, or names in recipes_dir); none named means every recipe."""
    if not names:
        return [load(p) for p in discover(recipes_dir)]
    return [load(find(name, recipes_dir)) for name in names]
