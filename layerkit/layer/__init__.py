"""What a built layer is and says: its manifest, its SBOM, what any ZIP contains.

Both wings read layers; this package imports neither of them.
"""

from pathlib import Path

SBOM_SUFFIX = ".cdx.json"


def sbom_beside(zip_path: Path) -> Path:
    """dist/NAME.cdx.json for dist/NAME.zip, the SBOM for scanners that read files. Here and
    not in sbom.py, so that a no-op build can ask where it is without importing how one is
    made."""
    return zip_path.with_name(zip_path.stem + SBOM_SUFFIX)
