"""A secret in an index URL never leaves layerkit: a real HTTPS index on this machine fails
in several ways while layerkit locks, builds, publishes and resolves in a container.

The secret is a `?token=` query, which neither pip nor uv masks (they mask only a URL's
`user:password@`), so that what keeps it out of every output, --debug included, is
layerkit's own redaction. The index's certificate is signed by a CA of the test's own,
as a company's is, so that uv and pip reach the index and meet each failure: each mode
then has its own message.
"""

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
PYPI = "https://pypi.org/simple"


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


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """(CA, server certificate, server key): a CA of our own and a leaf for 127.0.0.1."""
    ca, ca_key = folder / "ca.pem", folder / "ca-key.pem"
    cert, key, request = folder / "cert.pem", folder / "key.pem", folder / "cert.csr"
    (folder / "leaf.ext").write_text(
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    for command in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=layerkit test CA", "-keyout", str(ca_key), "-out", str(ca)],
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(request)],
        ["x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "1", "-extfile", str(folder / "leaf.ext"),
         "-out", str(cert)],
    ):  # fmt: skip
        subprocess.run(["openssl", *command], check=True, capture_output=True)
    return ca, cert, key


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(URL with a secret token, CA bundle) of a local HTTPS index whose failure is settable."""
    folder = tmp_path_factory.mktemp("index")
    ca, cert, key = _certificates(folder)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    yield f"https://127.0.0.1:{port}/simple/?token={SECRET}", ca
    server.shutdown()


def _kept(result: subprocess.CompletedProcess[str], *said: str) -> str:
    """The failure's message, checked to hold no secret and to say what happened."""
    shown = result.stdout + result.stderr
    assert result.returncode != 0, shown
    assert SECRET not in shown
    assert "?token=***" in shown  # the index is named, its token masked
    for text in said:
        assert text in shown, shown
    return shown


TINY = (
    '[layer]\nname = "tiny"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
    '[python]\nrequirements = ["six"]\n'
)
# what each failure says, when uv locks and when layerkit's own client downloads
LOCKING = {"401": "401 Unauthorized", "500": "500 Internal Server Error",
           "broken": "Missing `Content-Type` header"}  # fmt: skip
BUILDING = {"401": "answered 401", "500": "answered 500",
            "broken": "the answer was cut short"}  # fmt: skip


@pytest.mark.network  # downloads from PyPI
@pytest.mark.parametrize("mode", ["401", "500", "broken"])
def test_lock_and_build_against_a_failing_index_never_show_the_token(
    project: Path, index: tuple[str, Path], mode: str
) -> None:
    url, ca = index
    _Failing.mode = mode
    write_recipe(project, "tiny", TINY)
    flags = ["--index-url", url, "--ca-bundle", str(ca)]
    locking = layerkit("--debug", "lock", "tiny", *flags, cwd=project, check=False)
    # --debug shows it all; each is the index's fault, not the requirements'
    _kept(locking, LOCKING[mode], "The package index could not be read", "Traceback (most")
    assert locking.returncode == 5
    layerkit("lock", "tiny", cwd=project)  # from PyPI, so that the build downloads
    cold = {"LAYERKIT_CACHE_DIR": str(project / "cold-cache")}
    building = layerkit("--debug", "build", "tiny", *flags, cwd=project, env=cold, check=False)
    _kept(building, BUILDING[mode])
    assert building.returncode == 5
    if mode != "401":  # a 4xx is an answer; 5xx and bodies cut short are retried
        assert "after 5 attempts" in building.stderr


@pytest.mark.network  # downloads from PyPI
def test_publish_time_downloads_never_show_the_token(
    project: Path, index: tuple[str, Path], aws: dict[str, str]
) -> None:
    url, ca = index
    _Failing.mode = "500"
    write_recipe(project, "tiny", TINY + '[publish]\nregions = ["eu-west-1"]\n')
    layerkit("lock", "tiny", cwd=project)
    env = {**aws, "LAYERKIT_CACHE_DIR": str(project / "cold-cache"), "PIP_INDEX_URL": url,
           "PIP_CERT": str(ca)}  # fmt: skip
    _kept(layerkit("--debug", "publish", "tiny", "--json", cwd=project, env=env, check=False),
          "answered 500")  # fmt: skip


@pytest.mark.network
def test_a_container_failing_after_pip_tools_is_installed_never_shows_the_token(
    project: Path, index: tuple[str, Path]
) -> None:
    """pip-tools comes from PyPI (an extra index); the requirement exists only on the
    failing private index, so pip-compile fails there, naming it: with the token, unless
    layerkit masks it."""
    url, ca = index
    _Failing.mode = "404"  # the private project is not there: pip says so, and names the index
    # this machine's CAs (PyPI is reached through its TLS-intercepting proxy) and the index's
    system = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    bundle = project / "bundle.pem"
    bundle.write_text(system.read_text() + ca.read_text())
    write_recipe(
        project, "tiny",
        '[layer]\nname = "tiny"\nruntimes = ["python3.11"]\narchitectures = ["x86_64"]\n'
        '[python]\nrequirements = ["layerkit-private-only-package"]\n',
    )  # fmt: skip
    result = layerkit(
        "--debug", "lock", "tiny", "--strategy", "container", "--image", IMAGE,
        "--network", "host", "--index-url", url, "--extra-index-url", PYPI,
        "--ca-bundle", str(bundle), cwd=project, check=False,
    )  # fmt: skip
    shown = _kept(result, "layerkit-private-only-package")
    assert "pip-compile" in shown or "piptools" in shown  # it got past installing pip-tools
