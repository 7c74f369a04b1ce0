"""Lambda's Python runtimes as plain data, and what each one accepts.

A target is one runtime on one architecture: it fixes the Python version, the glibc
the wheels may need and the CPU the shared objects must be built for.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.tags import Tag


@dataclass(frozen=True)
class Runtime:
    name: str
    python: tuple[int, int]
    os: str
    glibc: tuple[int, int]
    deprecated: datetime.date | None = None

    @property
    def python_version(self) -> str:
        return f"{self.python[0]}.{self.python[1]}"


# From the Lambda runtimes page (see LAMBDA_FACTS.md): Amazon Linux 2 ships glibc 2.26,
# Amazon Linux 2023 ships glibc 2.34.
RUNTIMES: dict[str, Runtime] = {
    r.name: r
    for r in (
        Runtime("python3.9", (3, 9), "Amazon Linux 2", (2, 26), datetime.date(2025, 12, 15)),
        Runtime("python3.10", (3, 10), "Amazon Linux 2", (2, 26), datetime.date(2026, 6, 30)),
        Runtime("python3.11", (3, 11), "Amazon Linux 2", (2, 26), datetime.date(2026, 6, 30)),
        Runtime("python3.12", (3, 12), "Amazon Linux 2023", (2, 34)),
        Runtime("python3.13", (3, 13), "Amazon Linux 2023", (2, 34)),
        Runtime("python3.14", (3, 14), "Amazon Linux 2023", (2, 34)),
    )
}

# Python runtimes Lambda no longer offers, with the date each was deprecated.
RETIRED_RUNTIMES: dict[str, datetime.date] = {
    "python2.7": datetime.date(2021, 7, 15),
    "python3.6": datetime.date(2022, 7, 18),
    "python3.7": datetime.date(2023, 12, 4),
    "python3.8": datetime.date(2024, 10, 14),
}

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
