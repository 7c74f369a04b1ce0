"""The manifest every layer carries at /opt/layerkit/NAME.json: what it contains.

Later commands (verify, inspect, publish, the registry, audit) read a layer's content from
the layer itself, as these types. The JSON is the stored form: `to_json`/`from_json` are
the only places that know its keys. Reading is lenient about keys an older layerkit did not
write, and refuses a format newer than this layerkit knows.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerkit.errors import UserError

MANIFEST_DIR = "layerkit"
FORMAT = 1


def path_for(layer: str) -> str:
    return f"{MANIFEST_DIR}/{layer}.json"


@dataclass(frozen=True)
class Distribution:
    name: str
    version: str
    license: str = ""
    size: int = 0  # bytes it adds to the layer, unzipped, bytecode included
    wheel: str = ""
    sha256: str = ""  # of the wheel; empty when compiled from an sdist in the build image
    top_level: tuple[str, ...] = ()
    site_packages: str | None = None  # where it is installed; None in older manifests
    sdist: str = ""  # the sdist it was compiled from in the build image, with its SHA-256
    sdist_sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name, "version": self.version, "license": self.license,
            "size": self.size, "wheel": self.wheel, "sha256": self.sha256,
            "top_level": list(self.top_level),
        }  # fmt: skip
        if self.site_packages is not None:
            data["site_packages"] = self.site_packages
        if self.sdist:
            data["sdist"], data["sdist_sha256"] = self.sdist, self.sdist_sha256
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Distribution:
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            license=str(data.get("license", "")),
            size=int(data.get("size", 0)),
            wheel=str(data.get("wheel", "")),
            sha256=str(data.get("sha256", "")),
            top_level=tuple(data.get("top_level", ())),
            site_packages=data.get("site_packages"),
            sdist=str(data.get("sdist", "")),
            sdist_sha256=str(data.get("sdist_sha256", "")),
        )


@dataclass(frozen=True)
class TargetContent:
    """What one target (runtime and architecture) imports from the layer."""

    lock: str  # "sha256:" of the lock file
    built_with: str  # "wheels", or the build image
    site_packages: str  # the tree first on this target's sys.path (then python/)
    bytecode: str | None  # the cache tag of the bytecode shipped for it ("cpython-312")
    distributions: tuple[Distribution, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "lock": self.lock,
            "built_with": self.built_with,
            "site_packages": self.site_packages,
            "bytecode": self.bytecode,
            "distributions": [d.to_json() for d in self.distributions],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TargetContent:
        return cls(
            lock=str(data.get("lock", "")),
            built_with=str(data.get("built_with", "")),
            site_packages=str(data.get("site_packages", "python")),
            bytecode=data.get("bytecode"),
            distributions=tuple(Distribution.from_json(d) for d in data.get("distributions", ())),
        )


@dataclass(frozen=True)
class RecipeFile:
    """A data or config file of the recipe, as it lands under /opt."""

    path: str
    sha256: str
    mode: str  # octal, "0o644"


@dataclass(frozen=True)
class LayerManifest:
    layer: str  # the recipe's layer name
    artifact: str  # the LayerName it is published as (NAME or NAME-ARCH)
    runtimes: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    description: str = ""
    license: str = ""
    layerkit: str = ""
    build_key: str = ""
    excluded: tuple[str, ...] = ()
    targets: dict[str, TargetContent] = field(default_factory=dict)
    files: tuple[RecipeFile, ...] = ()
    # What the layer adds to a function's 250 MiB, the manifest itself aside; audits read it.
    unzipped_bytes: int | None = None

    def distributions(self) -> dict[str, Distribution]:
        """Every distribution by lower-case name, across targets (the first one wins)."""
        found: dict[str, Distribution] = {}
        for target in self.targets.values():
            for dist in target.distributions:
                found.setdefault(dist.name.lower(), dist)
        return found

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT,
            "layer": self.layer,
            "artifact": self.artifact,
            "description": self.description,
            "license": self.license,
            "layerkit": self.layerkit,
            "build_key": self.build_key,
            "runtimes": list(self.runtimes),
            "architectures": list(self.architectures),
            "excluded": list(self.excluded),
            "targets": {name: t.to_json() for name, t in self.targets.items()},
            "files": [{"path": f.path, "sha256": f.sha256, "mode": f.mode} for f in self.files],
        }
        if self.unzipped_bytes is not None:
            data["unzipped_bytes"] = self.unzipped_bytes
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "the manifest") -> LayerManifest:
        found = data.get("format", FORMAT)
        if not isinstance(found, int) or found > FORMAT:
            raise UserError(
                f"{where} is in manifest format {found!r}, newer than this layerkit reads "
                f"({FORMAT}): upgrade layerkit."
            )
        try:
            return cls(
                layer=str(data.get("layer", data.get("artifact", ""))),
                artifact=str(data.get("artifact", "")),
                runtimes=tuple(data.get("runtimes", ())),
                architectures=tuple(data.get("architectures", ())),
                description=str(data.get("description", "")),
                license=str(data.get("license", "")),
                layerkit=str(data.get("layerkit", "")),
                build_key=str(data.get("build_key", "")),
                excluded=tuple(data.get("excluded", ())),
                targets={
                    str(name): TargetContent.from_json(content)
                    for name, content in data.get("targets", {}).items()
                },
                files=tuple(
                    RecipeFile(str(f["path"]), str(f["sha256"]), str(f["mode"]))
                    for f in data.get("files", ())
                ),
                unzipped_bytes=data.get("unzipped_bytes"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UserError(
                f"{where} is not a layerkit manifest this version can read: {exc}."
            ) from None


def dumps(manifest: LayerManifest) -> bytes:
    return (json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n").encode()


def read(zip_path: Path) -> LayerManifest | None:
    """The manifest inside a layer ZIP, or None when it has none (not built by layerkit)."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            return read_from(archive)
    except (OSError, zipfile.BadZipFile):
        return None


def read_from(archive: zipfile.ZipFile) -> LayerManifest | None:
    names = [
        n
        for n in archive.namelist()
        if n.startswith(f"{MANIFEST_DIR}/")
        and n.endswith(".json")
        and n.count("/") == 1
        and not n.endswith(".cdx.json")  # the SBOM beside it (sbom.py)
    ]
    if len(names) != 1:
        return None
    try:
        data = json.loads(archive.read(names[0]))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return LayerManifest.from_json(data, f"{archive.filename}: {names[0]}")


@dataclass(frozen=True)
class Change:
    name: str
    version: str | None = None  # added or removed
    before: str | None = None  # upgraded or downgraded
    after: str | None = None
    size_change: int = 0

    def to_json(self) -> dict[str, Any]:
        if self.version is not None:
            return {"name": self.name, "version": self.version, "size": self.size_change}
        return {"name": self.name, "from": self.before, "to": self.after,
                "size_change": self.size_change}  # fmt: skip


def diff(old: LayerManifest, new: LayerManifest) -> dict[str, list[Change]]:
    """Distributions added, removed, upgraded and downgraded from old to new, with sizes."""
    from packaging.version import InvalidVersion, Version

    before, after = old.distributions(), new.distributions()
    changes: dict[str, list[Change]] = {
        "added": [], "removed": [], "upgraded": [], "downgraded": [],
    }  # fmt: skip
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a is None and b is not None:
            changes["added"].append(Change(name, version=b.version, size_change=b.size))
        elif b is None and a is not None:
            changes["removed"].append(Change(name, version=a.version, size_change=a.size))
        elif a is not None and b is not None and a.version != b.version:
            try:
                newer = Version(b.version) > Version(a.version)
            except InvalidVersion:
                newer = b.version > a.version
            changes["upgraded" if newer else "downgraded"].append(
                Change(name, before=a.version, after=b.version, size_change=b.size - a.size)
            )
    return changes
