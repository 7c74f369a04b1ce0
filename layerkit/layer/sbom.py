"""The CycloneDX 1.6 bill of materials every layer carries at /opt/layerkit/NAME.cdx.json.

Made with the CycloneDX project's own library from the layer's manifest: one component per
distribution file (purl, SHA-256 of the exact wheel or sdist, licence, the targets it serves
as properties), one file component per recipe file. The ZIP is deterministic, so is its
SBOM: the serial number is derived from the build key and the timestamp is the date every
entry of the ZIP carries (1980-01-01), never the wall clock.

cyclonedx-python-lib costs about 70 ms to import (BENCHMARKS.md): it is imported only where
an SBOM is made or converted, never on a no-op build, and a build keeps each SBOM in the
cache by its manifest, so a rebuild of the same content does not import it either.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from layerkit.errors import UserError
from layerkit.files import open_zip, write_atomic
from layerkit.layer import SBOM_SUFFIX, manifest
from layerkit.layer.manifest import MANIFEST_DIR, Distribution, LayerManifest, TargetContent
from layerkit.layer.metadata import distributions_in
from layerkit.names import canonical
from layerkit.targets import RUNTIMES, split_id
from layerkit.version import __version__

if TYPE_CHECKING:
    from cyclonedx.model.bom import Bom


FORMATS = ("json", "xml")
# The date of every entry in a layerkit ZIP (archive.py), so the SBOM says nothing the ZIP doesn't.
TIMESTAMP = datetime.datetime(1980, 1, 1, tzinfo=datetime.timezone.utc)
# Distributions whose metadata names no licence: no licence is better than a made-up one.
_NO_LICENSE = frozenset({"", "unknown", "see distribution"})


def path_for(layer: str) -> str:
    return f"{MANIFEST_DIR}/{layer}{SBOM_SUFFIX}"


def make(layer: LayerManifest) -> Bom:
    """The BOM of a layer, from its manifest alone: the same manifest, the same BOM."""
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.tool import ToolRepository
    from packageurl import PackageURL

    licenses = LicenseFactory()
    by_ref: dict[str, Component] = {}
    for target_id, content in sorted(layer.targets.items()):
        runtime_name, architecture = split_id(target_id)
        runtime = RUNTIMES.get(runtime_name)
        for dist in content.distributions:
            filename, sha256 = (
                (dist.sdist, dist.sdist_sha256) if dist.sdist else (dist.wheel, dist.sha256)
            )
            ref = f"pypi/{canonical(dist.name)}@{dist.version}/{filename or 'unknown'}"
            component = by_ref.get(ref)
            if component is None:
                component = Component(
                    type=ComponentType.LIBRARY,
                    name=dist.name,
                    version=dist.version,
                    bom_ref=ref,
                    purl=PackageURL("pypi", name=canonical(dist.name), version=dist.version),
                    hashes=[HashType(alg=HashAlgorithm.SHA_256, content=sha256)] if sha256 else [],
                    licenses=[]
                    if dist.license in _NO_LICENSE
                    else [licenses.make_from_string(dist.license)],
                    properties=[Property(name="layerkit:file", value=filename)] if filename else [],
                )
                by_ref[ref] = component
            if not target_id:  # a foreign layer: its targets are not known
                continue
            component.properties.update(
                [
                    Property(name="layerkit:target", value=target_id),
                    Property(name="layerkit:target:architecture", value=architecture),
                    Property(
                        name="layerkit:target:python", value=runtime_name.removeprefix("python")
                    ),
                    Property(
                        name="layerkit:site-packages",
                        value=dist.site_packages or content.site_packages,
                    ),
                ]
            )
            if runtime is not None:
                glibc = ".".join(map(str, runtime.glibc))
                component.properties.add(Property(name="layerkit:target:glibc", value=glibc))
    for file in layer.files:
        by_ref[f"file/{file.path}"] = Component(
            type=ComponentType.FILE,
            name=f"/opt/{file.path}",
            bom_ref=f"file/{file.path}",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=file.sha256)],
            properties=[Property(name="layerkit:mode", value=file.mode)],
        )
    subject = Component(
        type=ComponentType.LIBRARY,
        name=layer.artifact or layer.layer,
        bom_ref=f"layer/{layer.artifact or layer.layer}",
        description=layer.description or None,
        licenses=[licenses.make_from_string(layer.license)] if layer.license else [],
        properties=[Property(name="layerkit:build-key", value=layer.build_key)]
        + [Property(name="layerkit:runtime", value=r) for r in layer.runtimes]
        + [Property(name="layerkit:architecture", value=a) for a in layer.architectures],
    )
    # layerkit only: naming the library's own version too would make the bytes depend on it.
    tool = Component(
        type=ComponentType.APPLICATION, name="layerkit", version=layer.layerkit or __version__
    )
    bom = Bom(
        components=by_ref.values(),
        serial_number=uuid.uuid5(
            uuid.NAMESPACE_URL, f"layerkit:{layer.build_key}:{layer.artifact}"
        ),
        metadata=BomMetaData(
            timestamp=TIMESTAMP,
            component=subject,
            tools=ToolRepository(components=[tool]),
        ),
    )
    bom.register_dependency(subject, list(by_ref.values()))
    return bom


def for_build(layer: LayerManifest, manifest_bytes: bytes, cache_root: Path) -> bytes:
    """The JSON SBOM of a layer being built, kept in the cache by its manifest's bytes (which
    hold the build key): making one imports cyclonedx-python-lib, about 70 ms, a quarter of a
    warm build. A damaged entry is made again."""
    cached = _cache_path(cache_root, manifest_bytes)
    data = _read_cached(cached)
    if data is None:
        data = dumps(make(layer))
        write_atomic(cached, data)
    return data


def _cache_path(cache_root: Path, manifest_bytes: bytes) -> Path:
    return cache_root / "sbom" / f"{hashlib.sha256(manifest_bytes).hexdigest()}{SBOM_SUFFIX}"


def _read_cached(path: Path) -> bytes | None:
    """A cached SBOM, or None when there is none or it is damaged (made again)."""
    try:
        data = path.read_bytes()
        json.loads(data)
    except (OSError, ValueError):
        return None
    return data


def of_manifests(layers: list[LayerManifest], cache_root: Path) -> list[bytes]:
    """The JSON SBOMs of many recorded layers (the catalog), from the build's cache where a
    build made them, the rest made on every CPU (about 10 ms each) and kept there."""
    from concurrent.futures import ProcessPoolExecutor

    paths = [_cache_path(cache_root, manifest.dumps(layer)) for layer in layers]
    found = {path: data for path in set(paths) if (data := _read_cached(path)) is not None}
    missing = {path: layer for path, layer in zip(paths, layers, strict=True) if path not in found}
    if missing:
        with ProcessPoolExecutor() as pool:
            made = pool.map(of_manifest, missing.values(), chunksize=32)
            for path, data in zip(missing, made, strict=True):
                write_atomic(path, data)
                found[path] = data
    return [found[path] for path in paths]


def dumps(bom: Bom, fmt: str = "json") -> bytes:
    """The BOM as CycloneDX 1.6 JSON or XML, the same bytes for the same BOM."""
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat, SchemaVersion

    output = make_outputter(
        bom, OutputFormat.JSON if fmt == "json" else OutputFormat.XML, SchemaVersion.V1_6
    )
    text = output.output_as_string(indent=2)
    if fmt == "json":  # key order as well as content, so equal BOMs are equal bytes
        text = json.dumps(json.loads(text), indent=2, sort_keys=True)
    return (text.rstrip("\n") + "\n").encode()


def read_from(archive: zipfile.ZipFile) -> bytes | None:
    """The SBOM a layerkit ZIP carries, or None (an older layerkit, or not layerkit's)."""
    names = [
        n for n in archive.namelist()
        if n.startswith(f"{MANIFEST_DIR}/") and n.endswith(SBOM_SUFFIX) and n.count("/") == 1
    ]  # fmt: skip
    return archive.read(names[0]) if len(names) == 1 else None


def of_zip(zip_path: Path, fmt: str = "json") -> bytes:
    """`layerkit sbom ZIP`: the SBOM the layer carries; for a layer without one (an older
    layerkit's, or not layerkit's), one made from its manifest or its *.dist-info."""
    with open_zip(zip_path) as archive:
        stored = read_from(archive)
        if stored is not None:
            return convert(stored, fmt, str(zip_path))
        layer = manifest.read_from(archive) or _from_dist_info(archive, zip_path.stem)
    return dumps(make(layer), fmt)


def of_manifest(layer: LayerManifest, fmt: str = "json") -> bytes:
    """`layerkit sbom NAME[:VERSION]`: from the manifest the registry recorded at publish,
    which is the manifest in the ZIP, so the SBOM is the one the ZIP carries."""
    return dumps(make(layer), fmt)


def _from_dist_info(archive: zipfile.ZipFile, name: str) -> LayerManifest:
    """A manifest of what a foreign layer's *.dist-info say: names, versions, licences."""
    found = [
        Distribution(meta.name, meta.version, meta.license, site_packages=str(folder.parent))
        for folder, meta in distributions_in(archive)
    ]
    content = TargetContent(lock="", built_with="", site_packages="python", bytecode=None,
                            distributions=tuple(found))  # fmt: skip
    return LayerManifest(layer=name, artifact=name, targets={"": content})


def convert(text: bytes, fmt: str, where: str = "the layer") -> bytes:
    """A stored JSON SBOM in `fmt`."""
    if fmt == "json":
        return text
    from cyclonedx.model.bom import Bom

    try:
        bom = Bom.from_json(json.loads(text))  # type: ignore[attr-defined]
    except (ValueError, TypeError, KeyError) as exc:
        raise UserError(f"{where}: its SBOM cannot be read as CycloneDX JSON: {exc}.") from None
    return dumps(bom, fmt)
