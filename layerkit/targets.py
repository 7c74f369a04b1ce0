"""Lambda's Python runtimes as plain data, and what each one accepts.

A target is one runtime on one architecture: it fixes the Python version, the glibc
the wheels may need and the CPU the shared objects must be built for.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layerkit.errors import UserError

if TYPE_CHECKING:
    from packaging.tags import Tag


@dataclass(frozen=True)
class Runtime:
    """A Lambda Python runtime: its interpreter, its OS and that OS's glibc."""

    name: str
    python: tuple[int, int]
    os: str
    glibc: tuple[int, int]

    @property
    def python_version(self) -> str:
        return f"{self.python[0]}.{self.python[1]}"


# From the Lambda runtimes page (see LAMBDA_FACTS.md): Amazon Linux 2 ships glibc 2.26,
# Amazon Linux 2023 ships glibc 2.34.
RUNTIMES: dict[str, Runtime] = {
    r.name: r
    for r in (
        Runtime("python3.9", (3, 9), "Amazon Linux 2", (2, 26)),
        Runtime("python3.10", (3, 10), "Amazon Linux 2", (2, 26)),
        Runtime("python3.11", (3, 11), "Amazon Linux 2", (2, 26)),
        Runtime("python3.12", (3, 12), "Amazon Linux 2023", (2, 34)),
        Runtime("python3.13", (3, 13), "Amazon Linux 2023", (2, 34)),
        Runtime("python3.14", (3, 14), "Amazon Linux 2023", (2, 34)),
    )
}


@dataclass(frozen=True)
class Lifecycle:
    """A runtime's end of support, in Lambda's three steps, and where the dates come from:
    AWS moves them (python3.9 went from 2025-10-31 to 2025-12-15), so every warning says
    the date it relies on and its source."""

    deprecated: datetime.date | None  # no more patches or support
    block_create: datetime.date | None  # no new functions on it
    block_update: datetime.date | None  # no more updates to functions on it
    source: str  # a page, or the LAYERKIT_RUNTIMES_FILE that overrode it
    checked: datetime.date | None  # when the source was read

    def stage(self, today: datetime.date) -> str | None:
        """What has happened by `today`, with the dates, or None while supported."""
        if self.deprecated is None or self.deprecated > today:
            return None
        said = f"deprecated on {self.deprecated}"
        for step, date in (("creating functions", self.block_create),
                           ("updating functions", self.block_update)):  # fmt: skip
            if date is not None:
                said += f"; {step} is blocked {'since' if date <= today else 'from'} {date}"
        return f"{said} (dates from {self.cited})"

    @property
    def cited(self) -> str:
        return f"{self.source}, read {self.checked}" if self.checked else self.source


RUNTIMES_PAGE = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html"
# When the rows below were checked: against stored copies of that page and of the pages
# that track it (endoflife.date/aws-lambda, AWS's deprecation notices), since the live page
# cannot be reached from where layerkit is built. Say so in every warning: `read` is a day.
_READ = datetime.date(2026, 12, 2)


def _dates(
    deprecated: str, block_create: str, block_update: str
) -> tuple[datetime.date, datetime.date, datetime.date]:
    day = datetime.date.fromisoformat
    return day(deprecated), day(block_create), day(block_update)


# Lambda's runtimes page, "Supported runtimes" and "Deprecated runtimes": deprecation,
# block function create, block function update. python3.10 and python3.11 were first
# given 2026-06-30, then moved (3.10 to 2026-10-31, 3.11 to 2027-06-30); the page's
# newer dates are these. A date AWS moves again is one LAYERKIT_RUNTIMES_FILE away.
LIFECYCLES: dict[str, Lifecycle] = {
    name: Lifecycle(*_dates(*dates), source=RUNTIMES_PAGE, checked=_READ)
    for name, dates in {
        "python2.7": ("2021-07-15", "2022-05-30", "2022-07-15"),
        "python3.6": ("2022-07-18", "2022-08-29", "2022-09-29"),
        "python3.7": ("2023-12-04", "2024-01-09", "2024-02-28"),
        "python3.8": ("2024-10-14", "2025-02-28", "2025-03-31"),
        "python3.9": ("2025-12-15", "2026-06-01", "2026-07-01"),
        "python3.10": ("2026-10-31", "2026-11-30", "2027-01-15"),
        "python3.11": ("2027-06-30", "2027-07-31", "2027-08-31"),
        "python3.12": ("2028-10-31", "2028-11-30", "2029-01-10"),
        "python3.13": ("2029-06-30", "2029-07-31", "2029-08-31"),
        "python3.14": ("2029-06-30", "2029-07-31", "2029-08-31"),
    }.items()
}

RUNTIMES_FILE = "LAYERKIT_RUNTIMES_FILE"  # declared with the other settings in settings.py
_OVERLAY_KEYS = {"deprecated": "deprecated", "block-create": "block_create",
                 "block-update": "block_update"}  # fmt: skip
_overlays: dict[tuple[str, float], dict[str, Lifecycle]] = {}


def lifecycles(env: os._Environ[str] | dict[str, str] | None = None) -> dict[str, Lifecycle]:
    """Every runtime's lifecycle: the table above, with LAYERKIT_RUNTIMES_FILE's tables
    over it (one per runtime identifier; `deprecated`, `block-create`, `block-update` as
    TOML dates). A file that does not parse is named, with the key, before any work."""
    path_text = (os.environ if env is None else env).get(RUNTIMES_FILE, "")
    if not path_text:
        return LIFECYCLES
    path = Path(path_text).expanduser()
    try:
        key = (path_text, path.stat().st_mtime)
    except OSError:
        raise UserError(
            f"{RUNTIMES_FILE}={path_text!r}: there is no such file. Point it at a TOML file "
            "with a [python3.11] table (deprecated, block-create, block-update), or unset it."
        ) from None
    if key not in _overlays:
        _overlays[key] = _overlay(path)
    return _overlays[key]


def _overlay(path: Path) -> dict[str, Lifecycle]:
    from layerkit.files import parse_toml

    try:
        data = parse_toml(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and TOMLDecodeError too
        raise UserError(f"{path} ({RUNTIMES_FILE}) is not valid TOML: {exc}.") from None
    found = dict(LIFECYCLES)
    for runtime, table in _runtime_tables(data):
        if not isinstance(table, dict):
            raise UserError(
                f"{path} ({RUNTIMES_FILE}): {runtime} must be a table, like "
                f"[{runtime}] with deprecated = 2027-06-30."
            )
        changes: dict[str, datetime.date] = {}
        for name, value in table.items():
            if name not in _OVERLAY_KEYS:
                raise UserError(
                    f"{path} ({RUNTIMES_FILE}): {runtime}.{name} is not a lifecycle date; "
                    f"use {', '.join(_OVERLAY_KEYS)}."
                )
            if not isinstance(value, datetime.date) or isinstance(value, datetime.datetime):
                raise UserError(
                    f"{path} ({RUNTIMES_FILE}): {runtime}.{name} = {value!r} is not a TOML "
                    "date: write it bare, like 2027-06-30."
                )
            changes[_OVERLAY_KEYS[name]] = value
        base = found.get(runtime, Lifecycle(None, None, None, "", None))
        found[runtime] = replace(base, **changes, source=str(path), checked=None)
    return found


def _runtime_tables(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """(runtime identifier, its table): TOML reads [python3.11] as python3 -> 11, so
    tables of tables are joined back with dots."""
    found = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and any(isinstance(v, dict) for v in value.values()):
            found += _runtime_tables(value, f"{name}.")
        else:
            found.append((name, value))
    return found


def lifecycle_of(runtime: str) -> Lifecycle | None:
    return lifecycles().get(runtime)


# Lambda's architecture name -> the machine name in wheel tags and `uname -m`.
ARCHITECTURES: dict[str, str] = {"x86_64": "x86_64", "arm64": "aarch64"}

# The glibc levels uv's --python-platform knows. A runtime whose glibc is not among them
# resolves at the highest one below it: never too new, at worst a slightly older version.
_UV_GLIBC_LEVELS = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)

RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
)
# What the runtime's botocore requires of the packages it shares with a layer (botocore's
# setup.cfg, the same since 1.31.62, older than the botocore of every runtime in the table).
# A layer that ships one of them in these ranges is imported by the runtime's botocore
# safely. s3transfer moves with boto3's own version: shipped without boto3, it always warns.
BOTOCORE_ACCEPTS = {
    "urllib3": ">=1.25.4,!=2.2.0,<3",
    "jmespath": ">=0.7.1,<2.0.0",
    "python-dateutil": ">=2.1,<3.0.0",
    "six": ">=1.5",  # python-dateutil's
}
BOTOCORE_ACCEPTS_BEFORE_3_10 = {**BOTOCORE_ACCEPTS, "urllib3": ">=1.25.4,<1.27"}


@dataclass(frozen=True)
class Target:
    """What a layer is built for: a runtime on one architecture."""

    runtime: Runtime
    architecture: str  # Lambda's name: x86_64 or arm64

    @property
    def id(self) -> str:
        return f"{self.runtime.name}-{self.architecture}"

    @property
    def machine(self) -> str:
        return ARCHITECTURES[self.architecture]

    def describe(self) -> str:
        glibc = ".".join(map(str, self.runtime.glibc))
        return f"{self.runtime.name} {self.architecture} (glibc {glibc})"

    @property
    def uv_platform(self) -> str:
        level = max(m for m in _UV_GLIBC_LEVELS if m <= self.runtime.glibc[1])
        return f"{self.machine}-manylinux_2_{level}"

    @cached_property
    def platforms(self) -> list[str]:
        """Every manylinux platform tag the runtime's glibc accepts, best first.

        pip and uv take platform tags literally, so every level must be listed: a list
        with only manylinux2014 misses wheels such as numpy >= 2.3's manylinux_2_28 ones.
        """
        major, newest = self.runtime.glibc
        oldest = 17 if self.machine == "aarch64" else 5
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        tags: list[str] = []
        for minor in range(newest, oldest - 1, -1):
            tags.append(f"manylinux_{major}_{minor}_{self.machine}")
            if minor in legacy and (minor == 17 or self.machine == "x86_64"):
                tags.append(f"{legacy[minor]}_{self.machine}")
        return tags

    @cached_property
    def tag_priority(self) -> dict[Tag, int]:
        """Each tag the target accepts, mapped to its rank (0 is the most specific)."""
        from packaging.tags import compatible_tags, cpython_tags  # only to choose wheels

        version = self.runtime.python
        interpreter = f"cp{version[0]}{version[1]}"
        ordered = [
            *cpython_tags(version, abis=[interpreter], platforms=self.platforms),
            *compatible_tags(version, interpreter=interpreter, platforms=self.platforms),
        ]
        return {tag: rank for rank, tag in reversed(list(enumerate(ordered)))}


def split_id(target_id: str) -> tuple[str, str]:
    """(runtime, architecture) of a target id (`Target.id`, e.g. python3.12-arm64)."""
    runtime, _, architecture = target_id.rpartition("-")
    return runtime, architecture


def target(runtime: str, architecture: str) -> Target:
    return Target(RUNTIMES[runtime], architecture)
