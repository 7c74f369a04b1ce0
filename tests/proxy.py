"""An HTTP proxy in front of the moto server, for what moto cannot do on purpose: hold a
call (a slow upload), or answer one itself (a region an SCP denies)."""

from __future__ import annotations

import http.client
import http.server
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Given the request's handler and body: True when it answered the request itself.
Intercept = Callable[[http.server.BaseHTTPRequestHandler, bytes], bool]


@contextmanager
def proxy(upstream: str, intercept: Intercept) -> Iterator[str]:
    """A proxy's URL: each request goes to `intercept` first, then to `upstream` as it was."""
    target = urllib.parse.urlsplit(upstream)

    class Handler(http.server.BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if intercept(self, body):
                return
            connection = http.client.HTTPConnection(target.netloc, timeout=60)
            connection.request(self.command, self.path, body, dict(self.headers))
            reply = connection.getresponse()
            data = reply.read()
            self.send_response(reply.status)
            for key, value in reply.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
