"""Several indexes: a project comes from the first index that has it, unless told otherwise.

A user's pip configuration adds an extra index that mirrors part of PyPI: it has `six`,
but only 1.15.0. A real local index serves that mirror; PyPI serves the rest."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import layerkit, write_recipe

RECIPE = (
    '[layer]\nname = "mirrored"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
    '[python]\nrequirements = ["six>=1.16"]\n'
)


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Path]:
    """A pip configuration whose extra index has six 1.15.0 only."""
    project = tmp_path / "index" / "simple" / "six"
    project.mkdir(parents=True)
    wheel = project / "six-1.15.0-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("six.py", "")
        info = "six-1.15.0.dist-info"
        archive.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: six\nVersion: 1.15.0\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (project / "index.html").write_text(f'<a href="{wheel.name}#sha256={digest}">{wheel.name}</a>')
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "index")
    )
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = tmp_path / "pip.conf"
    config.write_text(
        f"[global]\nextra-index-url = http://127.0.0.1:{server.server_address[1]}/simple\n"
    )
    yield config
    server.shutdown()


def test_first_index_is_kept_and_the_message_says_how_to_choose(
    project: Path, mirror: Path
) -> None:
    write_recipe(project, "mirrored", RECIPE)
    env = {"PIP_CONFIG_FILE": str(mirror)}
    refused = layerkit("lock", "mirrored", cwd=project, env=env, check=False)
    assert refused.returncode == 3
    assert "Traceback" not in refused.stderr
    assert "first index that has it" in refused.stderr
    assert "--index-strategy unsafe-best-match" in refused.stderr
    assert "LAYERKIT_INDEX_STRATEGY" in refused.stderr
    assert not (project / "recipes" / "mirrored.python3.12-x86_64.lock.txt").exists()


@pytest.mark.network
def test_unsafe_best_match_takes_the_version_from_any_index(project: Path, mirror: Path) -> None:
    write_recipe(project, "mirrored", RECIPE)
    env = {"PIP_CONFIG_FILE": str(mirror)}
    layerkit("lock", "mirrored", "--index-strategy", "unsafe-best-match", cwd=project, env=env)
    lock = (project / "recipes" / "mirrored.python3.12-x86_64.lock.txt").read_text()
    assert "six==1.17.0" in lock
    # The build reads the same setting from the environment, and finds PyPI's file.
    built = layerkit(
        "build", "mirrored", "--locked", "--json", cwd=project,
        env={**env, "LAYERKIT_INDEX_STRATEGY": "unsafe-best-match"},
    )  # fmt: skip
    [artifact] = json.loads(built.stdout)
    assert artifact["status"] == "built"
    bad = layerkit("build", "mirrored", cwd=project,
                   env={**env, "LAYERKIT_INDEX_STRATEGY": "best"}, check=False)  # fmt: skip
    assert bad.returncode == 2 and "LAYERKIT_INDEX_STRATEGY='best'" in bad.stderr


@pytest.mark.network
def test_a_committed_lock_built_through_a_partial_mirror_names_the_mirror(
    project: Path, mirror: Path, tmp_path: Path
) -> None:
    """The lock was made from PyPI (six 1.17.0); a machine whose pip configuration adds a
    mirror with six 1.15.0 only builds it: the lock is right, the index order is not."""
    write_recipe(project, "mirrored", RECIPE)
    layerkit("lock", "mirrored", cwd=project)  # PyPI only
    cold = {"PIP_CONFIG_FILE": str(mirror), "LAYERKIT_CACHE_DIR": str(tmp_path / "cold")}
    refused = layerkit("build", "mirrored", "--locked", cwd=project, env=cold, check=False)
    assert refused.returncode == 5, refused.stderr
    message = refused.stderr
    assert "/simple/six/ has six, but not version 1.17.0" in message
    assert "The lock is right" in message and "first index that has it" in message
    assert "--index-strategy unsafe-best-match" in message
    assert "The lock was edited" not in message  # the old, wrong explanation
    built = layerkit("build", "mirrored", "--locked", "--index-strategy", "unsafe-best-match",
                     cwd=project, env=cold)  # fmt: skip
    assert "built" in built.stdout
