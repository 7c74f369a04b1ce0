"""The manifest every layer carries at /opt/layerkit/NAME.json: what it contains.

Later commands (inspect, publish, audit) read a layer's content from the layer itself.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

MANIFEST_DIR = "layerkit"
FORMAT = 1


def path_for(layer: str) -> str:
    return f"{MANIFEST_DIR}/{layer}.json"


def dumps(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def read(zip_path: Path) -> dict[str, Any] | None:
    """The manifest inside a layer ZIP, or None when it has none (not built by layerkit)."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            return read_from(archive)
    except (OSError, zipfile.BadZipFile):
        return None


def read_from(archive: zipfile.ZipFile) -> dict[str, Any] | None:
    names = [
        n
        for n in archive.namelist()
        if n.startswith(f"{MANIFEST_DIR}/") and n.endswith(".json") and n.count("/") == 1
    ]
    if len(names) != 1:
        return None
    try:
        data = json.loads(archive.read(names[0]))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def distributions(layer_manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every distribution in a manifest by name, across its targets (the first one wins)."""
    found: dict[str, dict[str, Any]] = {}
    for target in layer_manifest.get("targets", {}).values():
        for dist in target.get("distributions", []):
            found.setdefault(str(dist["name"]).lower(), dist)
    return found


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Distributions added, removed, upgraded and downgraded from old to new, with sizes."""
    from packaging.version import InvalidVersion, Version

    before, after = distributions(old), distributions(new)
    changes: dict[str, list[dict[str, Any]]] = {
        "added": [], "removed": [], "upgraded": [], "downgraded": [],
    }  # fmt: skip
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a is None and b is not None:
            changes["added"].append({"name": name, "version": b["version"], "size": b["size"]})
        elif b is None and a is not None:
            changes["removed"].append({"name": name, "version": a["version"], "size": a["size"]})
        elif a is not None and b is not None and a["version"] != b["version"]:
            try:
                newer = Version(b["version"]) > Version(a["version"])
            except InvalidVersion:
                newer = str(b["version"]) > str(a["version"])
            changes["upgraded" if newer else "downgraded"].append(
                {"name": name, "from": a["version"], "to": b["version"],
                 "size_change": b["size"] - a["size"]}
            )  # fmt: skip
    return changes
