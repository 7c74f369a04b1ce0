"""Every setting layerkit reads, declared once, and where each value comes from.

`SETTINGS` is the table (as cibuildwheel's defaults table): a setting's flag, environment
variable, recipe key, default and parser. `resolve` is the one cascade (as cibuildwheel's
`_resolve_cascade`): a command-line flag, then the environment variable, then the recipe,
then the default. An empty value (None, "", an empty list) is unset. A variable that does
not parse is named, with what it accepts, before any work starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Generic, TypeVar

from layerkit.errors import UserError

T = TypeVar("T")
Env = Mapping[str, str]


@dataclass(frozen=True)
class Setting(Generic[T]):
    """A setting: where it is read from, its default, and how its text is read."""

    variable: str  # the environment variable
    flag: str | None  # the command-line option, when there is one
    recipe_key: str | None  # the recipe key, when there is one
    default: Callable[[Env], T]  # from the environment: XDG folders depend on HOME
    parse: Callable[[str], T]  # the variable's text; ValueError says what it accepts


def _home(env: Env) -> Path:
    return Path(env.get("HOME", "~")).expanduser()


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise ValueError("give a number of seconds above 0")
    return seconds


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"use one of {', '.join(allowed)}")
        return text

    return parse


def _boolean(text: str) -> bool:
    words = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    if text.lower() not in words:
        raise ValueError("use 1/true/yes or 0/false/no")
    return words[text.lower()]


class IndexStrategy(str, Enum):
    """Which index a project comes from when several have it (uv's names)."""

    first_index = "first-index"  # the first that has it: no dependency confusion
    unsafe_best_match = "unsafe-best-match"  # any version from any index


CACHE_DIR: Setting[Path] = Setting(
    "LAYERKIT_CACHE_DIR", None, None,
    lambda env: Path(env.get("XDG_CACHE_HOME") or _home(env) / ".cache") / "layerkit",
    Path,
)  # fmt: skip
REGISTRY: Setting[Path] = Setting(
    "LAYERKIT_REGISTRY", "--registry", None,
    lambda env: Path(env.get("XDG_DATA_HOME") or _home(env) / ".local/share")
    / "layerkit" / "registry.sqlite",
    Path,
)  # fmt: skip
INDEX_STRATEGY: Setting[str] = Setting(
    "LAYERKIT_INDEX_STRATEGY", "--index-strategy", None,
    lambda env: IndexStrategy.first_index.value, _choice(*(s.value for s in IndexStrategy)),
)  # fmt: skip
REQUIRE_BYTECODE: Setting[bool] = Setting(
    "LAYERKIT_REQUIRE_BYTECODE", "--require-bytecode", None,
    lambda env: False, _boolean,
)  # fmt: skip
S3_BUCKET: Setting[str | None] = Setting(
    "LAYERKIT_S3_BUCKET", "--s3-bucket", "publish.s3-bucket", lambda env: None, str
)
ALIGN_VERSIONS: Setting[bool] = Setting(
    "LAYERKIT_ALIGN_VERSIONS", "--align-versions", "publish.align-versions",
    lambda env: False, _boolean,
)  # fmt: skip
SIGNING_PROFILE: Setting[str | None] = Setting(
    "LAYERKIT_SIGNING_PROFILE", "--signing-profile", "publish.signing-profile",
    lambda env: None, str,
)  # fmt: skip
SIGNING_WAIT_SECONDS: Setting[float] = Setting(
    "LAYERKIT_SIGNING_WAIT_SECONDS", "--signing-wait", None, lambda env: 600.0, _positive_seconds
)
PUBLIC: Setting[bool] = Setting(
    "LAYERKIT_PUBLIC", "--public", "publish.public", lambda env: False, _boolean
)
GUARD_STALE_SECONDS: Setting[float] = Setting(
    "LAYERKIT_GUARD_STALE_SECONDS", None, None,
    lambda env: 60.0, _positive_seconds,
)  # fmt: skip


def _tag_keys(text: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    if not keys:
        raise ValueError("give tag keys separated by commas, e.g. ManagedBy,Owner")
    return keys


OWNER_TAGS: Setting[tuple[str, ...]] = Setting(
    "LAYERKIT_OWNER_TAGS", "--owner-tag", None, lambda env: (), _tag_keys
)
OSV_URL: Setting[str] = Setting(
    "LAYERKIT_OSV_URL", None, None, lambda env: "https://api.osv.dev", str
)
# Runtime lifecycle dates over the built-in table (targets.lifecycles reads and checks it).
RUNTIMES_FILE: Setting[Path | None] = Setting(
    "LAYERKIT_RUNTIMES_FILE", None, None, lambda env: None, Path
)

SETTINGS: tuple[Setting[Any], ...] = (
    CACHE_DIR, REGISTRY, INDEX_STRATEGY, REQUIRE_BYTECODE, S3_BUCKET, ALIGN_VERSIONS,
    SIGNING_PROFILE, SIGNING_WAIT_SECONDS, PUBLIC,
    GUARD_STALE_SECONDS, OWNER_TAGS, OSV_URL, RUNTIMES_FILE,
)  # fmt: skip


def _unset(value: object) -> bool:
    return value is None or value == "" or value == [] or value == ()


def resolve(setting: Setting[T], env: Env, *, flag: T | None = None, recipe: T | None = None) -> T:
    """The setting's value: the flag, else the variable, else the recipe, else the default."""
    if not _unset(flag):
        return flag  # type: ignore[return-value]  # narrowed by _unset
    text = env.get(setting.variable, "")
    if text:
        try:
            return setting.parse(text)
        except ValueError as exc:
            raise UserError(f"{setting.variable}={text!r}: {exc}.") from None
    if not _unset(recipe):
        return recipe  # type: ignore[return-value]
    return setting.default(env)


def cascade(
    *,
    flag: T | None = None,
    recipe: T | None = None,
    default: T | None = None,
) -> T | None:
    """A flag over a recipe's value over a default, for options with no variable."""
    for value in (flag, recipe):
        if not _unset(value):
            return value
    return default
