"""The CycloneDX SBOM in every layer: built from real PyPI packages, validated with the
CycloneDX library's own schema validator, the same bytes from a cold cache elsewhere, and
the same document from `layerkit sbom` for a ZIP and for a version published to moto."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from layerkit.builder.lockfile import parse
from tests.conftest import layerkit, write_recipe

RECIPE = """\
[layer]
name = "http"
license = "Apache-2.0"
runtimes = ["python3.12"]
architectures = ["x86_64", "arm64"]
[python]
requirements = ["urllib3==2.2.1", "certifi==2026.10.19.post1"]
[publish]
regions = ["eu-west-1"]
[[files]]
source = "files/settings.json"
target = "etc/app/settings.json"
"""


def validate(text: bytes, fmt: str = "json") -> str | None:
    """None when `text` is valid CycloneDX 1.6 by the CycloneDX library's own validator."""
    from cyclonedx.schema import OutputFormat, SchemaVersion
    from cyclonedx.validation import make_schemabased_validator

    validator = make_schemabased_validator(
        OutputFormat.JSON if fmt == "json" else OutputFormat.XML, SchemaVersion.V1_6
    )
    error = validator.validate_str(text.decode())
    return None if error is None else str(error)


def components(bom: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for component in bom["components"]:
        found.setdefault(component["name"], []).append(component)
    return found


def props(component: dict[str, Any], name: str) -> list[str]:
    return sorted(p["value"] for p in component.get("properties", []) if p["name"] == name)


@pytest.fixture
def built(project: Path) -> Path:
    (project / "recipes" / "files").mkdir(exist_ok=True)
    (project / "recipes" / "files" / "settings.json").write_text('{"retries": 3}\n')
    write_recipe(project, "http", RECIPE)
    layerkit("build", "http", cwd=project)
    return project


@pytest.mark.network
def test_every_layer_carries_a_valid_cyclonedx_sbom_of_what_it_ships(built: Path) -> None:
    # Pure Python for both architectures: one ZIP, each wheel serving both targets.
    zip_path = built / "dist" / "http.zip"
    with zipfile.ZipFile(zip_path) as layer:
        inside = layer.read("layerkit/http.cdx.json")
    assert (built / "dist" / "http.cdx.json").read_bytes() == inside
    assert validate(inside) is None  # the CycloneDX 1.6 JSON schema
    bom = json.loads(inside)
    assert bom["specVersion"] == "1.6"
    assert bom["metadata"]["timestamp"].startswith("1980-01-01")  # no wall clock
    assert bom["metadata"]["component"]["name"] == "http"

    found = components(bom)
    for arch in ("x86_64", "arm64"):
        lock = parse((built / "recipes" / f"http.python3.12-{arch}.lock.txt").read_text())
        for dist in lock.dists:
            [component] = found[dist.name]
            assert component["purl"] == f"pkg:pypi/{dist.key}@{dist.version}"
            # The exact wheel installed: one of the lock's hashes.
            [digest] = [h["content"] for h in component["hashes"] if h["alg"] == "SHA-256"]
            assert digest in dist.hashes
            assert props(component, "layerkit:target") == [
                "python3.12-arm64", "python3.12-x86_64"
            ]  # fmt: skip
            assert props(component, "layerkit:target:python") == ["3.12"]
            assert props(component, "layerkit:target:architecture") == ["arm64", "x86_64"]
            assert props(component, "layerkit:target:glibc") == ["2.34"]
    # An SPDX id where the metadata gives one (License-Expression, or a License field that
    # is one); else the licence as the metadata names it (urllib3 2.2.1: a classifier).
    assert found["certifi"][0]["licenses"] == [{"license": {"id": "MPL-2.0"}}]
    assert found["urllib3"][0]["licenses"] == [{"license": {"name": "MIT License"}}]
    [settings] = found["/opt/etc/app/settings.json"]
    assert settings["type"] == "file"
    expected = hashlib.sha256(b'{"retries": 3}\n').hexdigest()
    assert settings["hashes"] == [{"alg": "SHA-256", "content": expected}]

    # `layerkit sbom ZIP` prints it as it is; as XML it is valid CycloneDX 1.6 XML.
    printed = layerkit("sbom", str(zip_path), cwd=built).stdout
    assert printed.encode() == inside
    xml = layerkit("sbom", str(zip_path), "--format", "xml", cwd=built).stdout.encode()
    assert validate(xml, "xml") is None
    assert b"pkg:pypi/urllib3@2.2.1" in xml


@pytest.mark.network
def test_the_sbom_is_the_same_bytes_from_another_folder_and_a_cold_cache(
    built: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "recipes").mkdir()
    for name in ("http.toml", "http.python3.12-x86_64.lock.txt", "http.python3.12-arm64.lock.txt"):
        (elsewhere / "recipes" / name).write_bytes((built / "recipes" / name).read_bytes())
    (elsewhere / "recipes" / "files").mkdir()
    (elsewhere / "recipes" / "files" / "settings.json").write_text('{"retries": 3}\n')
    cold = {"LAYERKIT_CACHE_DIR": str(elsewhere / "cache"), "UV_CACHE_DIR": str(elsewhere / "uv")}
    layerkit("build", "http", "--locked", cwd=elsewhere, env=cold)
    for name in ("dist/http.cdx.json", "dist/http.zip"):
        assert (elsewhere / name).read_bytes() == (built / name).read_bytes()


@pytest.mark.network
def test_a_removed_sidecar_comes_back_on_a_no_op_build(built: Path) -> None:
    sidecar = built / "dist" / "http.cdx.json"
    kept = sidecar.read_bytes()
    sidecar.unlink()
    again = json.loads(layerkit("build", "http", "--json", cwd=built).stdout)
    assert {a["status"] for a in again} == {"unchanged"}
    assert sidecar.read_bytes() == kept


@pytest.mark.network
def test_sbom_of_a_published_version_is_the_one_its_zip_carries(
    built: Path, aws: dict[str, str]
) -> None:
    published = json.loads(layerkit("publish", "http", "--json", cwd=built, env=aws).stdout)
    [outcome] = published["outcomes"]
    with zipfile.ZipFile(built / "dist" / "http.zip") as layer:
        inside = layer.read("layerkit/http.cdx.json")
    version = outcome["arn"].rsplit(":", 1)[1]
    by_version = layerkit("sbom", f"http:{version}", cwd=built, env=aws)
    assert by_version.stdout.encode() == inside
    assert layerkit("sbom", "http", cwd=built, env=aws).stdout.encode() == inside
    missing = layerkit("sbom", "http:99", cwd=built, env=aws, check=False)
    assert missing.returncode == 2 and "not in the registry" in missing.stderr


def test_a_layer_from_another_tool_gets_an_sbom_from_its_dist_info(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as layer:
        layer.writestr(
            "python/urllib3-1.26.5.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: urllib3\nVersion: 1.26.5\nLicense: MIT\n",
        )
        layer.writestr("python/urllib3/__init__.py", "")
    zip_path = tmp_path / "vendor.zip"
    zip_path.write_bytes(buffer.getvalue())
    printed = layerkit("sbom", str(zip_path), cwd=tmp_path).stdout.encode()
    assert validate(printed) is None
    [component] = json.loads(printed)["components"]
    assert component["purl"] == "pkg:pypi/urllib3@1.26.5"
    assert component["licenses"] == [{"license": {"id": "MIT"}}]

    for bad in (tmp_path / "missing.zip", tmp_path):
        result = layerkit("sbom", str(bad), cwd=tmp_path, check=False)
        assert result.returncode == 2 and "Traceback" not in result.stderr
