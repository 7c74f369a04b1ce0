"""The package index: where distributions come from, and the wheel cache they land in.

layerkit honours the index settings of the user's pip configuration (index-url,
extra-index-url, cert) from the same files and variables pip reads, so a private index
such as CodeArtifact works as it does with pip. It deliberately ignores find-links,
constraints and every other pip setting: a layer must be reproducible from its lock and
its index, not from whatever wheels lie on one machine.

The HTTP and TLS modules are imported by the methods that go to the network: a build
from cached wheels never does, and those imports cost a tenth of a no-op build.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import json
import logging
import os
import re
import tempfile
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from layerkit.archive import sha256_of
from layerkit.errors import IntegrityError, PackageIndexError, UserError
from layerkit.redaction import redact

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("layerkit")

PYPI = "https://pypi.org/simple"


class IndexStrategy(str, Enum):
    """Which index a project comes from when several have it (uv's names)."""

    first_index = "first-index"  # the first that has it: no dependency confusion
    unsafe_best_match = "unsafe-best-match"  # any version from any index


INDEX_STRATEGIES = tuple(s.value for s in IndexStrategy)
_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
_TIMEOUT = 60


@dataclass(frozen=True)
class IndexSettings:
    index_url: str = PYPI
    extra_index_urls: tuple[str, ...] = ()
    cert: str | None = None  # CA bundle for TLS-intercepting proxies
    trusted_hosts: tuple[str, ...] = ()
    # first-index: a project comes from the first index that has it, which guards against
    # dependency confusion (uv's default). unsafe-best-match: any version from any index.
    strategy: str = "first-index"

    @property
    def urls(self) -> tuple[str, ...]:
        """In uv's order of priority: the extra indexes, then the index."""
        return (*self.extra_index_urls, self.index_url)

    def pip_env(self) -> dict[str, str]:
        """The same settings for a pip elsewhere (a build container). Holds credentials:
        never log it."""
        env = {"PIP_INDEX_URL": self.index_url}
        if self.extra_index_urls:
            env["PIP_EXTRA_INDEX_URL"] = " ".join(self.extra_index_urls)
        if self.trusted_hosts:
            env["PIP_TRUSTED_HOST"] = " ".join(self.trusted_hosts)
        return env


def _pip_config_files(env: Mapping[str, str]) -> list[Path]:
    """The files pip reads, in pip's order (later ones win)."""
    override = env.get("PIP_CONFIG_FILE")
    if override == os.devnull:
        return []
    home = Path(env.get("HOME", "~")).expanduser()
    xdg_config = Path(env.get("XDG_CONFIG_HOME", home / ".config"))
    dirs = env.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    files = [Path(d) / "pip" / "pip.conf" for d in dirs]
    files += [Path("/etc/pip.conf"), home / ".pip" / "pip.conf", xdg_config / "pip" / "pip.conf"]
    if "VIRTUAL_ENV" in env:
        files.append(Path(env["VIRTUAL_ENV"]) / "pip.conf")
    if override:
        files.append(Path(override))
    return files


_HONOURED = ("index-url", "extra-index-url", "cert", "trusted-host")


def _not_a_file(path: Path, env: Mapping[str, str]) -> bool:
    return str(path) == env.get("PIP_CONFIG_FILE") and path.exists() and not path.is_file()


def settings_from(
    env: Mapping[str, str],
    index_url: str | None = None,
    extra_index_urls: tuple[str, ...] = (),
    cert: str | None = None,
    strategy: str | None = None,
) -> IndexSettings:
    """Index settings by precedence: pip config files, then PIP_* variables, then flags."""
    found: dict[str, str] = {}
    parser = configparser.ConfigParser(interpolation=None)
    for path in _pip_config_files(env):
        if path.is_file():
            try:
                parser.read(path, encoding="utf-8")
            except (UnicodeDecodeError, configparser.Error) as exc:
                reason = "is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc
                raise UserError(
                    f"The pip configuration {path} cannot be read ({reason}). layerkit reads "
                    "its index-url, extra-index-url and cert as pip does: fix the file, or "
                    "set PIP_CONFIG_FILE to another one (/dev/null for none)."
                ) from None
        elif _not_a_file(path, env):
            raise UserError(
                f"PIP_CONFIG_FILE={path} is not a file. Point it at pip's configuration "
                "file, or at /dev/null for none."
            )
        for section in ("global", "install", "download"):
            if parser.has_section(section):
                for key in _HONOURED:
                    if parser.has_option(section, key):
                        found[key] = parser.get(section, key)
    for key in _HONOURED:
        variable = "PIP_" + key.upper().replace("-", "_")
        if env.get(variable):
            found[key] = env[variable]
    extras = tuple(found.get("extra-index-url", "").split()) + extra_index_urls
    return IndexSettings(
        index_url=index_url or found.get("index-url", PYPI),
        extra_index_urls=tuple(dict.fromkeys(extras)),
        cert=cert or found.get("cert"),
        trusted_hosts=tuple(found.get("trusted-host", "").split()),
        strategy=strategy or "first-index",
    )


@dataclass(frozen=True)
class IndexFile:
    filename: str
    url: str
    sha256: str | None
    yanked: bool = False


@dataclass
class PackageIndex:
    """Reads a PEP 503/691 simple index (https:// or file://)."""

    settings: IndexSettings

    @cached_property
    def _context(self) -> ssl.SSLContext:
        import ssl

        return ssl.create_default_context(cafile=self.settings.cert)

    def _open(self, url: str, accept: str) -> tuple[bytes, str, str]:
        import urllib.request

        parts = urllib.parse.urlsplit(url)
        headers = {"Accept": accept, "User-Agent": "layerkit"}
        if parts.username:
            token = f"{urllib.parse.unquote(parts.username)}:"
            token += urllib.parse.unquote(parts.password or "")
            headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
            netloc = parts.hostname or ""
            if parts.port:
                netloc += f":{parts.port}"
            url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        if parts.scheme == "file" and url.endswith("/"):
            url += "index.html"
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=_TIMEOUT, context=self._context) as reply:
            content_type = reply.headers.get("Content-Type", "") if reply.headers else ""
            return reply.read(), content_type, reply.geturl()

    def files(self, project: str) -> list[IndexFile]:
        """The files of a project: from the first index that has it, or with
        unsafe-best-match from every index (as uv does)."""
        import http.client
        import urllib.error

        name = canonicalize_name(project)
        found: list[IndexFile] = []
        for base in self.settings.urls:
            page = f"{base.rstrip('/')}/{name}/"
            try:
                body, content_type, final_url = self._open(page, _ACCEPT)
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    continue
                raise PackageIndexError(
                    f"The package index answered {exc.code} for {redact(page)}. "
                    "Check the index URL and its credentials (pip's index-url, "
                    "PIP_INDEX_URL or --index-url)."
                ) from None
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                if page.startswith("file:"):
                    continue
                reason = getattr(exc, "reason", exc)
                raise PackageIndexError(
                    f"Could not reach the package index at {redact(page)}: {reason}. "
                    "Check the network, a proxy (HTTPS_PROXY) or the CA bundle "
                    "(--ca-bundle, PIP_CERT)."
                ) from None
            try:
                listed = _parse(body, content_type, final_url)
            except (ValueError, KeyError, TypeError):
                raise PackageIndexError(
                    f"The package index at {redact(page)} answered with a page that is not a "
                    "package index page (PEP 503 HTML or PEP 691 JSON). Check the index URL."
                ) from None
            if self.settings.strategy == "first-index":
                return listed
            seen = {f.filename for f in found}
            found += [f for f in listed if f.filename not in seen]
        if found:
            return found
        raise PackageIndexError(
            f"No index has a project named {project!r} "
            f"(searched {', '.join(redact(u) for u in self.settings.urls)})."
        )

    def download(self, file: IndexFile, expected_sha256: str, dest: Path) -> None:
        """Fetch a file into dest, refusing it unless its SHA-256 is the expected one."""
        import http.client
        import urllib.error
        import urllib.request

        dest.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        try:
            with tempfile.NamedTemporaryFile(
                dir=dest.parent, delete=False, prefix=".download-"
            ) as tmp:
                part = Path(tmp.name)
                request = urllib.request.Request(file.url, headers={"User-Agent": "layerkit"})
                with urllib.request.urlopen(
                    request, timeout=_TIMEOUT, context=self._context
                ) as reply:
                    while chunk := reply.read(1 << 20):
                        digest.update(chunk)
                        tmp.write(chunk)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            Path(tmp.name).unlink(missing_ok=True)
            raise PackageIndexError(
                f"Downloading {file.filename} from {redact(file.url)} failed: "
                f"{getattr(exc, 'reason', exc)}."
            ) from None
        if digest.hexdigest() != expected_sha256:
            part.unlink()
            raise IntegrityError(
                f"{file.filename} from {redact(file.url)} has SHA-256 {digest.hexdigest()}, "
                f"but the lock expects {expected_sha256}. The index served a different file "
                "than the one locked: do not trust it; re-lock only if the change is expected."
            )
        os.replace(part, dest)


def _parse(body: bytes, content_type: str, page_url: str) -> list[IndexFile]:
    if "json" in content_type:
        data = json.loads(body)
        return [
            IndexFile(
                filename=f["filename"],
                url=urllib.parse.urljoin(page_url, f["url"]),
                sha256=f.get("hashes", {}).get("sha256"),
                yanked=bool(f.get("yanked")),
            )
            for f in data.get("files", [])
        ]
    from html.parser import HTMLParser

    links: list[tuple[str, dict[str, str | None]]] = []

    class LinkParser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            attributes = dict(attrs)
            if tag == "a" and attributes.get("href"):
                links.append((str(attributes["href"]), attributes))

    LinkParser().feed(body.decode("utf-8", "replace"))
    files = []
    for href, attributes in links:
        url, _, fragment = href.partition("#")
        match = re.fullmatch(r"sha256=([0-9a-f]{64})", fragment)
        files.append(
            IndexFile(
                filename=urllib.parse.unquote(url.rsplit("/", 1)[-1]),
                url=urllib.parse.urljoin(page_url, url),
                sha256=match.group(1) if match else None,
                yanked="data-yanked" in attributes,
            )
        )
    return files


def cache_dir(env: Mapping[str, str]) -> Path:
    if env.get("LAYERKIT_CACHE_DIR"):
        return Path(env["LAYERKIT_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".cache")
    return Path(base) / "layerkit"


@dataclass(frozen=True)
class WheelCache:
    """Downloaded distributions, stored by SHA-256 and shared by every recipe and target."""

    root: Path

    def path(self, sha256: str, filename: str) -> Path:
        return self.root / "wheels" / sha256[:2] / sha256 / filename

    def find(self, sha256: str) -> Path | None:
        folder = self.root / "wheels" / sha256[:2] / sha256
        if folder.is_dir():
            for entry in folder.iterdir():
                if not entry.name.startswith("."):  # not a download in progress
                    return entry
        return None

    def verified(self, sha256: str) -> Path | None:
        """A cached file, re-hashed: a file changed on disk is dropped, never used."""
        found = self.find(sha256)
        if found is None:
            return None
        if sha256_of(found) != sha256:
            log.warning("cached %s does not match its hash; downloading it again", found.name)
            found.unlink()
            return None
        return found
