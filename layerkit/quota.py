"""Lambda's limits, in one place, and the size check made before anything is written or
uploaded (moto enforces none of them, and AWS some only after an upload)."""

from __future__ import annotations

from dataclasses import dataclass

from layerkit.errors import QuotaError

UNZIPPED_LIMIT = 262_144_000  # function + all its layers, unzipped (250 MiB)
DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024  # Content.ZipFile; larger goes through S3
LAYERS_PER_FUNCTION = 5
DESCRIPTION_LIMIT = 256  # a layer version's Description
LICENSE_LIMIT = 512  # a layer version's LicenseInfo
LAYER_NAME_LIMIT = 140  # LayerName: letters, digits, '-' and '_'
WARN_FRACTION = 0.8


@dataclass(frozen=True)
class SizeReport:
    """A layer's sizes against Lambda's quotas, with what is worth saying about them."""

    unzipped: int
    zipped: int | None
    notes: tuple[str, ...]


def mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


def check(
    artifact: str,
    unzipped: int,
    largest: list[tuple[str, int]],
    zipped: int | None = None,
) -> SizeReport:
    """Raise QuotaError when the layer alone cannot fit; return the notes worth showing.

    `largest` lists (distribution, unzipped bytes), biggest first.
    """
    if unzipped >= UNZIPPED_LIMIT:
        top = ", ".join(f"{name} {mib(size)}" for name, size in largest[:10])
        raise QuotaError(
            f"{artifact} would be {unzipped:,} bytes unzipped ({mib(unzipped)}); Lambda "
            f"refuses a function whose code and layers exceed {UNZIPPED_LIMIT:,} bytes. "
            f"Largest distributions: {top}. To shrink it: exclude what the runtime already "
            "provides (`exclude-runtime-provided = true` under [python]), set `strip = true` "
            "under [slim], split the layer in two, or ship the function as a container image."
        )
    notes = []
    if unzipped >= WARN_FRACTION * UNZIPPED_LIMIT:
        notes.append(
            f"{artifact} uses {unzipped / UNZIPPED_LIMIT:.0%} of the 250 MiB unzipped quota, "
            "which a function shares with its code and every other layer."
        )
    if zipped is not None and zipped > DIRECT_UPLOAD_LIMIT:
        notes.append(
            f"{artifact} is {mib(zipped)} zipped, over the 50 MB direct upload: "
            "it will be uploaded through S3."
        )
    return SizeReport(unzipped, zipped, tuple(notes))
