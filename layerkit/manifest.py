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
