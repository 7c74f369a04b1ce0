"""The package index: where distributions come from, and the wheel cache they land in.

layerkit honours the index settings of the user's pip configuration (index-url,
extra-index-url, cert) from the same files and variables pip reads, so a private index
such as CodeArtifact works as it does with pip. It deliberately ignores find-links,
constraints and every other pip setting: a layer must be reproducible from its lock and
its index, not from whatever wheels lie on one machine.

HTTP goes through `http.Client` (retries, timeouts, the CA bundle); its modules are
imported when a request is made, so a build from cached wheels never loads them.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from layerkit import log
from layerkit.errors import BuildError, IntegrityError, PackageIndexError, UserError
from layerkit.files import sha256_of
from layerkit.names import canonical
from layerkit.redaction import redact

if TYPE_CHECKING:
    from layerkit.http import Client


PYPI = "https://pypi.org/simple"


_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"


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
    """Reads a PEP 503/691 simple index (https:// or file://) through the one HTTP client."""

    settings: IndexSettings
    # project -> the page it was taken from, with first-index: what an error names
    pages: dict[str, str] = field(default_factory=dict)

    @cached_property
    def http(self) -> Client:
        from layerkit.http import Client  # a build from cached wheels opens no URL

        return Client(cafile=self.settings.cert)

    def files(self, project: str) -> list[IndexFile]:
        """The files of a project: from the first index that has it, or with
        unsafe-best-match from every index (as uv does)."""
        from layerkit.http import HttpError

        name = canonical(project)
        found: list[IndexFile] = []
        for base in self.settings.urls:
            page = _page(base, name)
            try:
                reply = self.http.get(page, {"Accept": _ACCEPT})
            except HttpError as exc:
                if exc.status == 404 or (exc.status is None and page.startswith("file:")):
                    continue
                if exc.status is not None:
                    raise PackageIndexError(
                        f"The package index answered {exc.status} for {redact(page)}"
                        f"{exc.tries}. Check the index URL and its credentials (pip's "
                        "index-url, PIP_INDEX_URL or --index-url)."
                    ) from None
                raise PackageIndexError(
                    f"Could not reach the package index at {redact(page)}: {exc.reason}"
                    f"{exc.tries}. Check the network, a proxy (HTTPS_PROXY) or the CA "
                    "bundle (--ca-bundle, PIP_CERT)."
                ) from None
            try:
                listed = _parse(reply.body, reply.content_type, reply.url)
            except (ValueError, KeyError, TypeError):
                raise PackageIndexError(
                    f"The package index at {redact(page)} answered with a page that is not a "
                    "package index page (PEP 503 HTML or PEP 691 JSON). Check the index URL."
                ) from None
            if self.settings.strategy == "first-index":
                self.pages[name] = page
                return listed
            seen = {f.filename for f in found}
            found += [f for f in listed if f.filename not in seen]
        if found:
            return found
        raise PackageIndexError(
            f"No index has a project named {project!r} "
            f"(searched {', '.join(redact(u) for u in self.settings.urls)})."
        )

    def page_of(self, project: str) -> str | None:
        """The page a project's files came from (first-index: the first index that has
        it), once `files` has read it."""
        return self.pages.get(canonical(project))

    def download(self, file: IndexFile, expected_sha256: str, dest: Path) -> None:
        """Fetch a file into dest, refusing it unless its SHA-256 is the expected one."""
        from layerkit.http import HttpError, Mismatch

        try:
            self.http.download(file.url, dest, expected_sha256)
        except HttpError as exc:
            raise PackageIndexError(
                f"Downloading {file.filename} from {redact(file.url)} failed: "
                f"{exc.status or exc.reason}{exc.tries}."
            ) from None
        except OSError as exc:
            raise BuildError(
                f"Cannot write {dest}: {exc.strerror or exc}. Free some space, or point "
                "LAYERKIT_CACHE_DIR at another disk, and run again; nothing was left "
                "half-written."
            ) from None
        except Mismatch as exc:
            raise IntegrityError(
                f"{file.filename} from {redact(file.url)} has SHA-256 {exc.found}, "
                f"but the lock expects {expected_sha256}. The index served a different file "
                "than the one locked: do not trust it; re-lock only if the change is expected."
            ) from None


def _page(base: str, project: str) -> str:
    """The project's page under an index URL; a query the URL carries (`?token=…`, as some
    private indexes take credentials) stays at the end, as pip and uv keep it."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{project}/"))


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
