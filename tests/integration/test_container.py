"""The container strategy on a real Docker engine, with the Debian build image that
.ci/docker-up makes (Python 3.11, like the python3.11 runtime). Nothing here is skipped:
without an engine these tests fail."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from layerkit.builder.lockfile import parse
from layerkit.layer.inspection import inspect_layer
from tests.conftest import layerkit, write_recipe

pytestmark = pytest.mark.network

IMAGE = os.environ.get("LAYERKIT_TEST_IMAGE", "layerkit-test-build:bookworm")
CA = "/etc/ssl/certs/ca-certificates.crt"
# This machine intercepts TLS: pip in a container reaches PyPI only with the host's CA
# bundle, found from PIP_CERT as users behind corporate proxies set it.
CONTAINER = ["--image", IMAGE, "--network", "host"]
ENV = {"PIP_CERT": CA}


def recipe(requirements: str, extra: str = "", arch: str = "x86_64") -> str:
    return (
        f'[layer]\nname = "demo"\nruntimes = ["python3.11"]\narchitectures = ["{arch}"]\n'
        f"[python]\nrequirements = {requirements}\n{extra}"
    )


@pytest.fixture(scope="module", autouse=True)
def engine() -> None:
    result = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False)
    assert result.returncode == 0, f"no {IMAGE} on a running Docker engine: run .ci/docker-up"


def build(project: Path, *args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    result = layerkit(
        "build", "demo", *CONTAINER, "--json", *args, cwd=project, env={**ENV, **(env or {})}
    )
    artifacts: list[dict[str, Any]] = json.loads(result.stdout)
    return artifacts


def layer_manifest(project: Path, artifact: dict[str, Any]) -> dict[str, Any]:
    with zipfile.ZipFile(project / artifact["path"]) as zipped:
        data: dict[str, Any] = json.loads(zipped.read("layerkit/demo.json"))
    return data


def labelled_containers() -> list[str]:
    result = subprocess.run(
        ["docker", "ps", "-a", "-q", "--filter", "label=layerkit"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.split()


def test_a_c_extension_is_compiled_in_the_image_and_imports_there(project: Path) -> None:
    write_recipe(project, "demo", recipe('["markupsafe", "idna"]', 'no-binary = ["markupsafe"]\n'))
    [artifact] = build(project)
    lock = parse((project / "recipes" / "demo.python3.11-x86_64.lock.txt").read_text())
    assert lock.strategy == "container"
    zip_path = project / artifact["path"]
    with zipfile.ZipFile(zip_path) as zipped:
        names = zipped.namelist()
    assert "python/markupsafe/_speedups.cpython-311-x86_64-linux-gnu.so" in names
    assert inspect_layer(zip_path).problems == ()
    wheels = {d["name"]: d["wheel"] for d in layer_manifest(project, artifact)["targets"]
              ["python3.11-x86_64"]["distributions"]}  # fmt: skip
    assert wheels["markupsafe"].endswith("-cp311-cp311-linux_x86_64.whl")  # built here
    assert layer_manifest(project, artifact)["targets"]["python3.11-x86_64"]["built_with"] == IMAGE
    # The SBOM names the sdist it was compiled from, by the hash the lock pinned.
    with zipfile.ZipFile(zip_path) as zipped:
        bom = json.loads(zipped.read("layerkit/demo.cdx.json"))
    [component] = [c for c in bom["components"] if c["name"].lower() == "markupsafe"]
    [pinned] = [d for d in lock.dists if d.key == "markupsafe"]
    assert component["hashes"][0]["content"] in pinned.hashes
    files = [p["value"] for p in component["properties"] if p["name"] == "layerkit:file"]
    assert files[0].endswith(".tar.gz")

    verified = layerkit("verify", str(zip_path), "--runtime-image", IMAGE, "--json", cwd=project)
    [report] = json.loads(verified.stdout)
    assert report["ok"]
    assert report["modules"]["markupsafe"] == "ok"
    assert labelled_containers() == []


def test_a_second_container_build_needs_no_network(project: Path) -> None:
    # MarkupSafe from its sdist: the second build must run the compiler in the container.
    write_recipe(project, "demo", recipe('["markupsafe"]', 'no-binary = ["markupsafe"]\n'))
    cache = {"LAYERKIT_CACHE_DIR": str(project / "cache")}
    [first] = build(project, "--strategy", "container", env=cache)
    (project / "dist" / "demo.zip").unlink()
    # Neither the finished ZIP nor the wheel compiled last time is kept: the compiler must
    # run again, in a container without network.
    for kept in ("artifacts", "built"):
        shutil.rmtree(project / "cache" / kept)
    # No network at all, on the host (the index URL leads nowhere) or in the container:
    # the second build can only succeed from what the first one cached.
    offline = layerkit(
        "build", "demo", "--image", IMAGE, "--network", "none", "--locked", "--json",
        "--index-url", "http://127.0.0.1:9/simple", cwd=project, env={**ENV, **cache},
    )  # fmt: skip
    [second] = json.loads(offline.stdout)
    assert second["status"] == "built"
    assert layer_manifest(project, second)["targets"] == layer_manifest(project, first)["targets"]
    built = layer_manifest(project, second)["targets"]["python3.11-x86_64"]
    assert built["built_with"] == IMAGE
    [markupsafe] = built["distributions"]
    assert markupsafe["wheel"].endswith("-cp311-cp311-linux_x86_64.whl")  # compiled offline


def test_the_two_strategies_agree_on_a_recipe_of_wheels(project: Path) -> None:
    write_recipe(project, "demo", recipe('["requests", "attrs"]'))
    layerkit("lock", "demo", "--strategy", "wheels", cwd=project)
    lock_file = project / "recipes" / "demo.python3.11-x86_64.lock.txt"
    on_host = {d.key: d.version for d in parse(lock_file.read_text()).dists}
    [from_wheels] = build(project, "--strategy", "wheels", "-o", "wheels")
    layerkit("lock", "demo", "--strategy", "container", *CONTAINER, cwd=project, env=ENV)
    in_image = parse(lock_file.read_text())
    assert in_image.strategy == "container"
    assert {d.key: d.version for d in in_image.dists} == on_host
    [from_container] = build(project, "--strategy", "container", "-o", "container")

    def contents(artifact: dict[str, Any]) -> set[tuple[str, str]]:
        target = layer_manifest(project, artifact)["targets"]["python3.11-x86_64"]
        return {(d["name"].lower(), d["version"]) for d in target["distributions"]}

    assert contents(from_wheels) == contents(from_container)


def test_auto_resolves_in_the_image_when_a_package_has_no_wheel(project: Path) -> None:
    write_recipe(project, "demo", recipe('["docopt==0.6.2"]'))
    result = layerkit("build", "demo", *CONTAINER, cwd=project, env=ENV)
    assert "not everything has a wheel, resolving in the build image" in result.stderr
    assert f"building with {IMAGE}: the lock was resolved in the build image" in result.stderr
    with zipfile.ZipFile(project / "dist" / "demo.zip") as zipped:
        assert "python/docopt.py" in zipped.namelist()


def test_arm64_on_an_x86_64_engine_falls_back_to_wheels_and_says_so(project: Path) -> None:
    write_recipe(project, "demo", recipe('["PyYAML==6.0.2"]', arch="arm64"))
    result = layerkit("build", "demo", "--strategy", "container", *CONTAINER, cwd=project, env=ENV)
    assert f"{IMAGE} is built for amd64, but python3.11-arm64 needs arm64" in result.stderr
    report = inspect_layer(project / "dist" / "demo.zip")
    assert report.architectures == ("aarch64",)
    assert report.problems == ()


def test_a_missing_image_says_how_to_get_one(project: Path) -> None:
    write_recipe(project, "demo", recipe('["idna"]'))
    result = layerkit(
        "build", "demo", "--strategy", "container", "--image", "no-such-image:1",
        cwd=project, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "docker pull no-such-image:1" in result.stderr
    assert "--strategy wheels" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_engine_is_a_clear_error(project: Path) -> None:
    write_recipe(project, "demo", recipe('["idna"]'))
    result = layerkit(
        "build", "demo", "--strategy", "container", cwd=project, check=False,
        env={"DOCKER_HOST": f"unix://{project}/no-docker.sock"},
    )  # fmt: skip
    assert result.returncode == 5
    assert "No Docker engine answers" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_compile_failure_names_the_package_and_shows_the_last_lines(project: Path) -> None:
    # psycopg2 from source needs PostgreSQL's pg_config, which the image does not have.
    write_recipe(project, "demo", recipe('["psycopg2==2.9.10"]', 'no-binary = ["psycopg2"]\n'))
    result = layerkit("build", "demo", *CONTAINER, cwd=project, check=False, env=ENV)
    assert result.returncode == 3
    assert "pg_config" in result.stderr
    assert f"in {IMAGE}" in result.stderr
    assert not (project / "dist").exists()
    assert labelled_containers() == []


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_build_leaves_no_container(project: Path, stop: signal.Signals) -> None:
    write_recipe(project, "demo", recipe('["markupsafe"]', 'no-binary = ["markupsafe"]\n'))
    process = subprocess.Popen(
        [sys.executable, "-m", "layerkit", "build", "demo", *CONTAINER, "--upgrade"],
        cwd=project, env={**os.environ, **ENV, "LAYERKIT_CACHE_DIR": str(project / "cache")},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not labelled_containers():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no build container started"
        time.sleep(0.1)
    process.send_signal(stop)
    process.wait(timeout=60)
    assert process.returncode != 0
    assert labelled_containers() == []
    assert not (project / "dist").exists()


def test_verify_reports_a_module_that_does_not_import(project: Path, tmp_path: Path) -> None:
    write_recipe(project, "demo", recipe('["idna"]'))
    [artifact] = build(project, "--strategy", "wheels")
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(project / artifact["path"]) as good, zipfile.ZipFile(broken, "w") as bad:
        for info in good.infolist():
            if info.filename != "python/idna/core.py":
                bad.writestr(info, good.read(info))
    result = layerkit(
        "verify", str(broken), "--runtime-image", IMAGE, "--json", cwd=project, check=False
    )
    assert result.returncode == 3
    [report] = json.loads(result.stdout)
    assert not report["ok"]
    assert "idna" in report["modules"] and report["modules"]["idna"] != "ok"


def test_verify_runs_natively_with_the_targets_python_on_this_host(project: Path) -> None:
    from tests.layers import interpreter

    write_recipe(project, "demo", recipe('["idna", "PyYAML==6.0.2"]'))
    [artifact] = build(project, "--strategy", "wheels")
    path = f"{interpreter('3.11').parent}:{os.environ['PATH']}"
    result = layerkit(
        "verify", artifact["path"], "--native", "--json", cwd=project, env={"PATH": path}
    )
    [report] = json.loads(result.stdout)
    assert report["ok"]
    assert report["where"].endswith("python3.11")
    assert report["modules"] == {"idna": "ok", "_yaml": "ok", "yaml": "ok"}


NEW_GLIBC_C = """#define _GNU_SOURCE
#include <Python.h>
#include <sys/mman.h>
static PyObject *make(PyObject *self, PyObject *args) {
    return PyLong_FromLong(memfd_create("layerkit", 0));  /* GLIBC_2.27 */
}
static PyMethodDef methods[] = {{"make", make, METH_NOARGS, ""}, {NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "newglibc", NULL, -1, methods};
PyMODINIT_FUNC PyInit_newglibc(void) { return PyModule_Create(&module); }
"""


@pytest.fixture
def new_glibc_index(tmp_path: Path) -> Iterator[str]:
    """A local index with one sdist whose extension calls memfd_create (glibc 2.27)."""
    import functools
    import hashlib
    import http.server
    import io
    import tarfile
    import threading

    folder = tmp_path / "index" / "simple" / "newglibc"
    folder.mkdir(parents=True)
    sdist = folder / "newglibc-1.0.tar.gz"
    files = {
        "setup.py": "from setuptools import Extension, setup\n"
        'setup(name="newglibc", version="1.0", '
        'ext_modules=[Extension("newglibc", ["newglibc.c"])])\n',
        "newglibc.c": NEW_GLIBC_C,
        "PKG-INFO": "Metadata-Version: 1.0\nName: newglibc\nVersion: 1.0\n",
    }
    with tarfile.open(sdist, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"newglibc-1.0/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    (folder / "index.html").write_text(f'<a href="{sdist.name}#sha256={digest}">{sdist.name}</a>')
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "index")
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()


def test_an_extension_needing_a_newer_glibc_than_the_runtime_is_refused(
    project: Path, new_glibc_index: str
) -> None:
    """Debian bookworm (glibc 2.36) compiles for python3.11, whose runtime has glibc 2.26."""
    write_recipe(project, "demo", recipe('["newglibc"]', 'no-binary = ["newglibc"]\n'))
    result = layerkit(
        "build", "demo", *CONTAINER, "--extra-index-url", new_glibc_index,
        cwd=project, env=ENV, check=False,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "GLIBC_2.27" in result.stderr and "glibc 2.26" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "dist").exists()
    assert labelled_containers() == []
