"""`layerkit registry sync`: the registry's versions read back from the account.

The registry lives on one disk, so it must never be the only record: this rebuilds it
from Lambda itself, reading the content marker of each Description and, where the layer
can be downloaded, the manifest inside it.
"""

from __future__ import annotations

import io
import zipfile
from concurrent.futures import ThreadPoolExecutor

from layerkit import log
from layerkit.account.clients import Clients
from layerkit.account.gateways import Layers
from layerkit.http import Client, HttpError
from layerkit.layer import manifest
from layerkit.layer.manifest import LayerManifest
from layerkit.registry import Signing, Version


def sync(regions: list[str], clients: Clients, download: bool = True) -> list[Version]:
    """Every layer version in the regions, read from the account: what `registry sync`
    stores. For layerkit's versions the manifest is read from the layer itself when its
    content can be downloaded."""

    def one(region: str) -> list[Version]:
        layers = Layers(clients, region)
        found = []
        for name, listed in layers.everything(region).items():
            for item in listed:
                content = layers.content(item.arn)
                ours = "[lk:" in item.description
                found.append(
                    Version(
                        arn=str(item.arn),
                        layer=name,
                        region=region,
                        account=item.arn.account,
                        version=item.arn.version,
                        sha256=content.sha256,
                        size=content.size,
                        description=item.description,
                        runtimes=item.runtimes,
                        architectures=item.architectures,
                        created=item.created,
                        manifest=_remote_manifest(content.location) if download and ours else None,
                        signing=Signing(content.signer, content.signing_job, content.sha256)
                        if content.signer
                        else None,
                    )
                )
        return found

    with ThreadPoolExecutor(max_workers=max(1, len(regions))) as pool:
        return [v for versions in pool.map(one, regions) for v in versions]


def _remote_manifest(location: str) -> LayerManifest | None:
    """The manifest inside a layer, from the presigned URL GetLayerVersion gives."""
    if not location.startswith("https://"):
        return None  # moto answers s3://, a real account a presigned https URL
    try:
        data = Client().get(location).body
        with zipfile.ZipFile(io.BytesIO(data)) as zipped:
            return manifest.read_from(zipped)
    except (HttpError, zipfile.BadZipFile) as exc:
        log.warning("cannot read the manifest of a layer from Lambda's URL: %s", exc)
        return None
