"""What a distribution says about itself: its METADATA and WHEEL files, read in one place.

METADATA goes through `packaging.metadata` (lenient: a layer ships what its wheels say,
and layerkit only reports it), wheel tags through `packaging.tags`.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from packaging.tags import Tag, parse_tag

if TYPE_CHECKING:
    from packaging.metadata import RawMetadata


@dataclass(frozen=True)
class Metadata:
    name: str
    version: str
    license: str  # an SPDX expression where the distribution gives one


def parse_metadata(text: str) -> Metadata:
    # packaging.metadata loads the email parser: a no-op build reads no METADATA.
    from packaging.metadata import parse_email

    raw, _ = parse_email(text)
    return Metadata(
        name=str(raw.get("name", "")),
        version=str(raw.get("version", "")),
        license=_license(raw),
    )


def _license(raw: RawMetadata) -> str:
    """The licence as short as it can be said: the SPDX expression, a one-line License
    field, else the classifiers; never a licence's full text."""
    if raw.get("license_expression"):
        return raw["license_expression"]
    declared = raw.get("license", "").strip()
    if declared and "\n" not in declared and len(declared) <= 80:
        return declared
    classifiers = raw.get("classifiers", [])
    found = [c.split(" :: ")[-1] for c in classifiers if c.startswith("License ::")]
    return "; ".join(found) or ("see distribution" if declared else "unknown")


def distributions_in(archive: zipfile.ZipFile) -> Iterator[tuple[PurePosixPath, Metadata]]:
    """Each installed distribution in a ZIP (its `*.dist-info` folder, and what its METADATA
    says), in path order; paths with '..' are never read."""
    for name in sorted(archive.namelist()):
        path = PurePosixPath(name)
        in_dist_info = path.name == "METADATA" and path.parent.name.endswith(".dist-info")
        if in_dist_info and ".." not in path.parts:
            yield path.parent, parse_metadata(archive.read(name).decode("utf-8", "replace"))


def wheel_tags(text: str) -> list[Tag]:
    """Every tag a WHEEL file declares (its `Tag:` lines, compressed sets expanded), in order."""
    tags: list[Tag] = []
    for line in text.splitlines():
        if line.startswith("Tag:"):
            tags += sorted(parse_tag(line[4:].strip()), key=str)
    return tags
