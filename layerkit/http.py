"""The one HTTP client: every URL layerkit opens (index pages and files, OSV, the presigned
URLs of layer ZIPs) goes through `Client`.

What a flaky network needs, in one place: a timeout on every read, the CA bundle of a
TLS-intercepting proxy, credentials in a URL sent as a Basic header (and never shown),
and retries with backoff on what is worth retrying — a refused or dropped connection, a
timeout, a 5xx, a 429, a body cut short — never on another 4xx, which will not change.
A request gives up after 5 attempts or when its budget is spent (90 s by default), so an
index that is down is named within that time instead of hanging a CI job. Downloads land
through `files.atomic`: an interrupted one leaves nothing behind.

The HTTP and TLS modules are imported when a request is made: a build from cached wheels
never makes one.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from layerkit import files
from layerkit.errors import ExitCode, LayerkitError
from layerkit.redaction import redact

if TYPE_CHECKING:
    import ssl

TIMEOUT = 60.0  # seconds without a byte before an attempt is abandoned
BUDGET = 90.0  # seconds a request may spend on retries before it gives up
ATTEMPTS = 5  # a refused connection is refused again quickly: ~8 s of backoff, then say so
_FIRST_BACKOFF, _MAX_BACKOFF = 0.5, 8.0
_CHUNK = 1 << 20
T = TypeVar("T")


class HttpError(LayerkitError):
    """A URL could not be read: `status` is the HTTP status, None when no answer came."""

    exit_code = ExitCode.TOOL

    def __init__(self, url: str, status: int | None, reason: str, attempts: int) -> None:
        self.url, self.status, self.reason, self.attempts = redact(url), status, reason, attempts
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.status is None:
            return f"could not reach {self.url}: {self.reason}{self.tries}"
        return f"{self.url} answered {self.status} {self.reason}{self.tries}"

    @property
    def tries(self) -> str:
        """ " (after N attempts)" when it was retried, for messages that quote the error."""
        return f" (after {self.attempts} attempts)" if self.attempts > 1 else ""

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500


@dataclass(frozen=True)
class Reply:
    body: bytes
    content_type: str
    url: str  # after redirects


@dataclass
class Client:
    cafile: str | None = None
    timeout: float = TIMEOUT
    budget: float = BUDGET
    attempts: int = ATTEMPTS
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _context: ssl.SSLContext | None = field(default=None, init=False, repr=False)
    # Downloads run on several threads at once: the CA bundle is loaded once, not per thread.
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Reply:
        return self._retrying(url, lambda reply: Reply(*reply), headers)

    def post_json(self, url: str, body: bytes) -> Reply:
        return self._retrying(
            url, lambda reply: Reply(*reply), {"Content-Type": "application/json"}, body
        )

    def download(self, url: str, dest: Path, expected_sha256: str | None = None) -> str:
        """Stream url into dest (atomically); return its SHA-256. With expected_sha256,
        a file that does not match is not kept, and `Mismatch` is raised."""

        def save(reply: Any) -> str:
            digest = hashlib.sha256()
            try:
                with files.atomic(dest) as out:
                    for chunk in _chunks(reply, url):
                        digest.update(chunk)
                        out.write(chunk)
                    found = digest.hexdigest()
                    if expected_sha256 is not None and found != expected_sha256:
                        raise Mismatch(found)  # leaves the block: nothing is kept
            except OSError as exc:  # the disk, not the network: _chunks wraps those
                raise _WriteFailed(exc) from exc
            return found

        try:
            return self._retrying(url, save, None, stream=True)
        except _WriteFailed as exc:
            raise exc.error from None

    # The machinery

    def _retrying(
        self,
        url: str,
        handle: Callable[[Any], T],
        headers: Mapping[str, str] | None,
        data: bytes | None = None,
        stream: bool = False,
    ) -> T:
        deadline = self.clock() + self.budget
        backoff, attempt = _FIRST_BACKOFF, 0
        while True:
            attempt += 1
            try:
                return self._once(url, handle, headers, data, stream, deadline)
            except HttpError as exc:
                failed = exc
            local = url.startswith("file:")  # a missing file does not appear by waiting
            spent = attempt >= self.attempts or self.clock() + backoff >= deadline
            if local or spent or not failed.retryable:
                raise HttpError(url, failed.status, failed.reason, attempt) from None
            self.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def _once(
        self,
        url: str,
        handle: Callable[[Any], T],
        headers: Mapping[str, str] | None,
        data: bytes | None,
        stream: bool,
        deadline: float,
    ) -> T:
        import http.client
        import urllib.error
        import urllib.request

        target, sent = _with_credentials(url, headers)
        request = urllib.request.Request(target, data=data, headers=sent)
        timeout = max(1.0, min(self.timeout, deadline - self.clock()))
        try:
            with urllib.request.urlopen(
                request, timeout=timeout, context=self._tls(target)
            ) as reply:
                if stream:
                    return handle(reply)
                content_type = reply.headers.get("Content-Type", "") if reply.headers else ""
                return handle((reply.read(), content_type, reply.geturl()))
        except urllib.error.HTTPError as exc:
            raise HttpError(url, exc.code, str(exc.reason), 1) from None
        except urllib.error.URLError as exc:
            raise HttpError(url, None, str(exc.reason), 1) from None
        except (OSError, http.client.HTTPException) as exc:
            raise _failed(url, exc) from None

    def _tls(self, url: str) -> ssl.SSLContext | None:
        if not url.startswith("https:"):
            return None
        with self._lock:
            if self._context is None:
                import ssl

                self._context = ssl.create_default_context(cafile=self.cafile)
            return self._context


def _chunks(reply: Any, url: str) -> Iterator[bytes]:
    """The body, a chunk at a time; a connection that fails mid-body is an HttpError, so
    that it is retried and never mistaken for a failing disk."""
    import http.client

    while True:
        try:
            chunk = reply.read(_CHUNK)
        except (OSError, http.client.HTTPException) as exc:
            raise _failed(url, exc) from None
        if not chunk:
            # http.client ends a body cut short without an error when read in chunks: what
            # the Content-Length promised and did not come is the sign.
            if getattr(reply, "length", None):
                raise HttpError(url, None, f"the answer was cut short ({reply.length} bytes "
                                "missing)", 1)  # fmt: skip
            return
        yield chunk


def _failed(url: str, exc: Exception) -> HttpError:
    """A connection that failed, timed out or was cut short, as a retryable HttpError."""
    import http.client

    if isinstance(exc, http.client.IncompleteRead):
        return HttpError(url, None, f"the answer was cut short ({exc!r})", 1)
    return HttpError(url, None, str(exc) or type(exc).__name__, 1)


class _WriteFailed(Exception):
    """A download's file could not be written (carried past the retries, then re-raised)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class Mismatch(Exception):
    """A download's SHA-256 is not the expected one (raised by `Client.download`)."""

    def __init__(self, found: str) -> None:
        super().__init__(found)
        self.found = found


def _with_credentials(url: str, headers: Mapping[str, str] | None) -> tuple[str, dict[str, str]]:
    """user:password in a URL become a Basic Authorization header, off the URL."""
    sent = {"User-Agent": "layerkit", **(headers or {})}
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file" and url.endswith("/"):
        url += "index.html"
    if not parts.username:
        return url, sent
    token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
    sent["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), sent
