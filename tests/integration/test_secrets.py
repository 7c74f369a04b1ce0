"""An index URL's password never leaves layerkit: a real HTTPS index on this machine, at
https://user:SECRET@127.0.0.1:PORT/simple, fails in several ways while layerkit locks,
builds, publishes and builds in a container; SECRET appears in no output, --debug included."""

from __future__ import annotations

import http.server
import os
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import layerkit, write_recipe

SECRET = "S3cr3tT0ken"
IMAGE = os.environ.get("LAYERKIT_TEST_IMAGE", "layerkit-test-build:bookworm")


class _Failing(http.server.BaseHTTPRequestHandler):
    mode = "401"

    def do_GET(self) -> None:
        if self.mode == "broken":  # promises a body it never sends
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n<html>")
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_response(int(self.mode))
        self.send_header("WWW-Authenticate", 'Basic realm="index"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(URL with credentials, CA bundle) of a local HTTPS index whose failure is settable."""
    folder = tmp_path_factory.mktemp("index")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    yield f"https://user:{SECRET}@127.0.0.1:{port}/simple", cert
    server.shutdown()


def _assert_secret_kept(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr  # --debug shows it...
    assert SECRET not in result.stdout + result.stderr  # ...without the password
    assert "***@127.0.0.1" in result.stdout + result.stderr  # and says which index


@pytest.mark.parametrize("mode", ["401", "500", "broken"])
def test_lock_and_build_against_a_failing_index_never_show_the_password(
    project: Path, index: tuple[str, Path], mode: str
) -> None:
    url, cert = index
    _Failing.mode = mode
    write_recipe(
        project, "tiny",
        '[layer]\nname = "tiny"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
        '[python]\nrequirements = ["six"]\n',
    )  # fmt: skip
    flags = ["--index-url", url, "--ca-bundle", str(cert)]
    _assert_secret_kept(layerkit("--debug", "lock", "tiny", *flags, cwd=project, check=False))
    layerkit("lock", "tiny", cwd=project)  # from PyPI, so that the build downloads
    cold = {"LAYERKIT_CACHE_DIR": str(project / "cold-cache")}
    _assert_secret_kept(
        layerkit("--debug", "build", "tiny", "--json", *flags, cwd=project, env=cold,
                 check=False)
    )  # fmt: skip


def test_publish_time_downloads_never_show_the_password(
    project: Path, index: tuple[str, Path], aws: dict[str, str]
) -> None:
    url, cert = index
    _Failing.mode = "500"
    write_recipe(
        project, "tiny",
        '[layer]\nname = "tiny"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
        '[python]\nrequirements = ["six"]\n[publish]\nregions = ["eu-west-1"]\n',
    )  # fmt: skip
    layerkit("lock", "tiny", cwd=project)
    env = {**aws, "LAYERKIT_CACHE_DIR": str(project / "cold-cache"), "PIP_INDEX_URL": url,
           "PIP_CERT": str(cert)}  # fmt: skip
    _assert_secret_kept(layerkit("--debug", "publish", "tiny", "--json", cwd=project, env=env,
                                 check=False))  # fmt: skip


@pytest.mark.network
def test_a_container_resolving_against_a_failing_index_never_shows_the_password(
    project: Path, index: tuple[str, Path]
) -> None:
    url, cert = index
    _Failing.mode = "401"
    write_recipe(
        project, "tiny",
        '[layer]\nname = "tiny"\nruntimes = ["python3.11"]\narchitectures = ["x86_64"]\n'
        '[python]\nrequirements = ["six"]\n',
    )  # fmt: skip
    result = layerkit(
        "--debug", "lock", "tiny", "--strategy", "container", "--image", IMAGE,
        "--network", "host", "--index-url", url, "--ca-bundle", str(cert),
        cwd=project, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert SECRET not in result.stdout + result.stderr
    assert "127.0.0.1" in result.stderr  # the failure is shown, with the index named
