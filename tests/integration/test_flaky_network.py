"""The one HTTP client against real local servers that fail: every other request a 503, a
429 or a body cut short; an index that is down; a layer download that is interrupted.

The index serves real wheel files (made here) through a real HTTP server on loopback, so
the whole path runs: layerkit's index reader, its downloads into the wheel cache, the
build and its deterministic ZIP.
"""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from layerkit.errors import ExitCode
from layerkit.http import Client, HttpError
from tests.conftest import layerkit, write_recipe

RECIPE = (
    '[layer]\nname = "flaky"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
    '[python]\nrequirements = ["tiny-a", "tiny-b"]\n'
)


def make_wheel(folder: Path, name: str, version: str, body: str) -> Path:
    wheel = folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    module, info = name.replace("-", "_"), f"{name.replace('-', '_')}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{module}/__init__.py", body)
        archive.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return wheel


@pytest.fixture(scope="module")
def index_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PEP 503 index of two small projects, with hashes in the links."""
    root = tmp_path_factory.mktemp("index")
    for name, body in (("tiny-a", "A = 1\n" * 2000), ("tiny-b", "B = 2\n" * 2000)):
        folder = root / "simple" / name
        folder.mkdir(parents=True)
        wheel = make_wheel(folder, name, "1.0", body)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        (folder / "index.html").write_text(
            f'<a href="{wheel.name}#sha256={digest}">{wheel.name}</a>'
        )
    return root


class Server:
    """A real HTTP server on loopback serving `root`; `mode` makes every other request fail."""

    def __init__(self, root: Path, mode: str = "healthy") -> None:
        self.root, self.mode, self.requests, self.failed = root, mode, 0, 0
        self.lock = threading.Lock()  # requests come on several threads at once
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:  # uv asks before it downloads; never failed here
                path = server.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(path.stat().st_size))
                self.end_headers()

            def do_GET(self) -> None:
                with server.lock:
                    server.requests += 1
                    number = server.requests
                path = server.root / self.path.lstrip("/")
                if path.is_dir():
                    path = path / "index.html"
                if not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                kind = server.mode.removeprefix("always-")
                fail = server.mode.startswith("always-") or (
                    server.mode != "healthy" and number % 2 == 1
                )
                if fail and kind in ("503", "429"):
                    with server.lock:
                        server.failed += 1
                    self.send_error(int(kind))
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                content_type = "text/html" if path.suffix == ".html" else "application/zip"
                self.send_header("Content-Type", content_type)
                self.end_headers()
                if fail and kind == "truncated":
                    with server.lock:
                        server.failed += 1
                    self.wfile.write(body[: len(body) // 2])  # then the connection closes
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


Serve = Callable[..., Server]


@pytest.fixture
def serve(index_root: Path) -> Iterator[Serve]:
    started: list[Server] = []

    def start(mode: str = "healthy") -> Server:
        started.append(Server(index_root, mode))
        return started[-1]

    yield start
    for server in started:
        server.close()


def build(project: Path, index: str, cache: Path, *args: str, check: bool = True) -> str:
    result = layerkit(
        "build", "flaky", "--json", *args, cwd=project, check=check,
        env={"PIP_INDEX_URL": f"{index}/simple", "LAYERKIT_CACHE_DIR": str(cache)},
    )  # fmt: skip
    return result.stdout if check else result.stderr


@pytest.mark.parametrize("mode", ["503", "429", "truncated"])
def test_a_flaky_index_gives_the_same_zip_as_a_healthy_one(
    project: Path, tmp_path: Path, serve: Serve, mode: str
) -> None:
    write_recipe(project, "flaky", RECIPE)
    healthy = serve()
    build(project, healthy.url, tmp_path / "cache-healthy")  # locks and builds
    expected = (project / "dist" / "flaky.zip").read_bytes()
    (project / "dist" / "flaky.zip").unlink()

    flaky = serve(mode)
    build(project, flaky.url, tmp_path / "cache-flaky", "--locked")  # a cold cache
    assert flaky.failed >= 2  # the page and the downloads were each failed once at least
    assert (project / "dist" / "flaky.zip").read_bytes() == expected


def test_an_index_that_answers_503_every_time_is_named_with_the_attempts(
    project: Path, tmp_path: Path, serve: Serve
) -> None:
    write_recipe(project, "flaky", RECIPE)
    build(project, serve().url, tmp_path / "cache")
    (project / "dist" / "flaky.zip").unlink()
    broken = serve("always-503")
    stderr = build(project, broken.url, tmp_path / "cold", "--locked", check=False)
    assert "The package index answered 503" in stderr and broken.url in stderr
    assert "(after 5 attempts)" in stderr
    assert "Traceback" not in stderr
    assert not (project / "dist" / "flaky.zip").exists()


def test_an_index_that_is_down_is_named_and_exits_5(project: Path, tmp_path: Path) -> None:
    write_recipe(project, "flaky", RECIPE)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = layerkit(
        "lock", "flaky", cwd=project, check=False, env={"PIP_INDEX_URL": f"{down}/simple"}
    )
    assert result.returncode == ExitCode.TOOL
    assert down in result.stderr and "Traceback" not in result.stderr


def test_the_retry_budget_bounds_a_request_however_many_attempts_remain() -> None:
    """The clock and sleep are injected: a request that keeps failing gives up once the
    next backoff would pass the budget, without waiting for real."""
    now = [0.0]
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        now[0] += seconds

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/x"
    client = Client(budget=3.0, attempts=100, sleep=sleep, clock=lambda: now[0])
    with pytest.raises(HttpError) as failed:
        client.get(url)
    assert waited == [0.5, 1.0]  # a third backoff (2 s) would end past the 3 s budget
    assert failed.value.attempts == 3 and failed.value.status is None


def test_a_client_error_is_not_retried(serve: Serve) -> None:
    server = serve()
    with pytest.raises(HttpError) as failed:
        Client(sleep=lambda s: None).get(f"{server.url}/simple/no-such-project/")
    assert failed.value.status == 404 and failed.value.attempts == 1
    assert server.requests == 1


def test_an_interrupted_download_leaves_no_file(tmp_path: Path, serve: Serve) -> None:
    """Every answer is cut short: after the retries nothing is in the cache folder, neither
    the file nor a temporary one."""
    server = serve("always-truncated")
    dest = tmp_path / "layers" / "abc.zip"
    with pytest.raises(HttpError) as failed:
        Client(sleep=lambda s: None).download(
            f"{server.url}/simple/tiny-a/tiny_a-1.0-py3-none-any.whl", dest
        )
    assert "cut short" in str(failed.value) and failed.value.attempts == 5
    assert server.requests == 5
    assert list(dest.parent.iterdir()) == []
