from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes"


@pytest.fixture(autouse=True, scope="session")
def isolated_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test reads the machine's pip or uv configuration or reaches an AWS account."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("PIP_", "UV_", "AWS_", "LAYERKIT_")):
                patch.delenv(name)
        patch.setenv("PIP_CONFIG_FILE", os.devnull)
        patch.setenv("AWS_CONFIG_FILE", os.devnull)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        # no instance metadata service either: a test without credentials fails at once,
        # instead of asking 169.254.169.254 (or a proxy) for them
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        # One wheel and artifact cache per test session: tests that mean "cold" make their own.
        shared = tmp_path_factory.getbasetemp() / "shared-cache"
        patch.setenv("LAYERKIT_CACHE_DIR", str(shared / "layerkit"))
        patch.setenv("UV_CACHE_DIR", str(shared / "uv"))
        yield


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the shipped recipes in a fresh folder, as a user's repository."""
    shutil.copytree(RECIPES, tmp_path / "recipes", ignore=shutil.ignore_patterns("*.lock.txt"))
    return tmp_path


def layerkit(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    check: bool = True,
    umask: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI the way a user does, in a separate process."""
    result = subprocess.run(
        [sys.executable, "-m", "layerkit", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=None if umask is None else lambda: os.umask(umask) and None,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"layerkit {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def write_recipe(project: Path, name: str, text: str) -> Path:
    path = project / "recipes" / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A real moto server over HTTP on a free loopback port, for the whole session."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url: str, project: Path) -> dict[str, str]:
    """The environment of a CI job: fake credentials, moto's endpoint, a fresh account."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))
    return {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "LAYERKIT_REGISTRY": str(project / "registry.sqlite"),
    }
