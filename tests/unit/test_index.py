from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from layerkit.builder.index import PYPI, PackageIndex, WheelCache, settings_from
from layerkit.errors import IntegrityError, PackageIndexError
from layerkit.redaction import redact


def test_index_settings_follow_pip_config_then_environment_then_flags(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\nindex-url = https://mirror.example/simple\n"
        "extra-index-url = https://a.example/simple https://b.example/simple\n"
        "find-links = /opt/wheels\nconstraint = /etc/c.txt\n"
    )
    env = {"PIP_CONFIG_FILE": str(conf), "HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path)}
    from_file = settings_from(env)
    assert from_file.index_url == "https://mirror.example/simple"
    assert from_file.extra_index_urls == ("https://a.example/simple", "https://b.example/simple")
    from_env = settings_from({**env, "PIP_INDEX_URL": "https://env.example/simple"})
    assert from_env.index_url == "https://env.example/simple"
    from_flag = settings_from(env, index_url="https://flag.example/simple")
    assert from_flag.index_url == "https://flag.example/simple"


def test_pip_config_file_devnull_means_pypi(tmp_path: Path) -> None:
    settings = settings_from({"PIP_CONFIG_FILE": "/dev/null", "HOME": str(tmp_path)})
    assert settings.index_url == PYPI
    assert settings.extra_index_urls == ()


def test_credentials_never_appear_in_redacted_urls() -> None:
    url = "https://aws:eyJ0b2tlbiI6@my-domain-111122223333.d.codeartifact.eu-west-1.amazonaws.com/pypi/r/simple/"
    assert "eyJ0b2tlbiI6" not in redact(url)
    assert redact(url).startswith("https://***@my-domain-111122223333")


def local_index(root: Path, project: str, filename: str, data: bytes) -> str:
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    (files / filename).write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    page = root / "simple" / project
    page.mkdir(parents=True)
    (page / "index.html").write_text(
        f'<html><body><a href="../../files/{filename}#sha256={sha}">{filename}</a></body></html>'
    )
    return f"file://{root}/simple"


def test_a_file_index_is_read_and_a_download_is_verified(tmp_path: Path) -> None:
    data = b"wheel bytes"
    url = local_index(tmp_path / "idx", "demo", "demo-1.0-py3-none-any.whl", data)
    index = PackageIndex(settings_from({"PIP_CONFIG_FILE": "/dev/null"}, index_url=url))
    [found] = index.files("Demo")
    assert found.sha256 == hashlib.sha256(data).hexdigest()
    cache = WheelCache(tmp_path / "cache")
    dest = cache.path(found.sha256, found.filename)
    index.download(found, found.sha256, dest)
    assert cache.verified(found.sha256) == dest
    with pytest.raises(IntegrityError, match="the lock expects"):
        index.download(found, "0" * 64, tmp_path / "other.whl")
    assert not (tmp_path / "other.whl").exists()
    with pytest.raises(PackageIndexError, match="No index has a project named 'missing'"):
        index.files("missing")


def test_a_cached_file_changed_on_disk_is_not_used(tmp_path: Path) -> None:
    cache = WheelCache(tmp_path)
    sha = hashlib.sha256(b"good").hexdigest()
    path = cache.path(sha, "x-1.0-py3-none-any.whl")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"tampered")
    assert cache.verified(sha) is None
    assert not path.exists()
