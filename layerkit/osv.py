"""Known vulnerabilities of PyPI distributions, from OSV (https://osv.dev).

Two sources answer the same question, "which advisories affect NAME==VERSION":
- `Service`: OSV's API, `POST /v1/querybatch` (1,000 queries a request, following each
  query's `next_page_token`), then `GET /v1/vulns/ID` for each advisory found, kept in the
  cache by ID and modification time. LAYERKIT_OSV_URL points it at a mirror.
- `Database`: OSV's PyPI export, offline: a folder of advisories (one JSON each) or the
  export's `all.zip` itself, matched here by OSV's own rules (`affected[].versions`, and
  ECOSYSTEM ranges: introduced, fixed, last_affected).
An advisory filed twice (a GHSA and the PYSEC that aliases it) is reported once.
"""

from __future__ import annotations

import json
import urllib.parse
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from packaging.version import InvalidVersion, Version

from layerkit.errors import OsvError, UserError
from layerkit.files import write_atomic
from layerkit.http import Client, HttpError
from layerkit.names import canonical
from layerkit.settings import OSV_URL, resolve

ECOSYSTEM = "PyPI"
BATCH = 1000  # OSV's limit of queries per querybatch request

Package = tuple[str, str]  # (canonical name, version)


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    summary: str
    severity: str  # GitHub's rating (LOW … CRITICAL), else the CVSS vector, else "unknown"
    fixed: tuple[str, ...]  # versions of the package that fix it

    @property
    def url(self) -> str:
        return f"https://osv.dev/vulnerability/{self.id}"


class Source(Protocol):
    def advisories(self, packages: Iterable[Package]) -> dict[Package, list[Advisory]]: ...


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _affected_entries(record: dict[str, Any], name: str) -> Iterator[dict[str, Any]]:
    for entry in record.get("affected", ()):
        package = entry.get("package", {})
        if (
            package.get("ecosystem") == ECOSYSTEM
            and canonical(str(package.get("name", ""))) == name
        ):
            yield entry


def _in_range(version: Version, events: list[dict[str, str]]) -> bool:
    """OSV's evaluation of one ECOSYSTEM range: walk its events in version order."""
    ordered = []
    for event in events:
        (kind, text), *_ = event.items()
        at = Version("0") if text == "0" else _version(text)
        if at is not None:
            ordered.append((at, kind))
    affected = False
    for at, kind in sorted(ordered, key=lambda e: e[0]):
        if kind == "introduced" and version >= at:
            affected = True
        elif (kind == "fixed" and version >= at) or (kind == "last_affected" and version > at):
            affected = False
    return affected


def affects(record: dict[str, Any], name: str, version: str) -> bool:
    if record.get("withdrawn"):
        return False
    parsed = _version(version)
    for entry in _affected_entries(record, name):
        if version in entry.get("versions", ()):
            return True
        for found in entry.get("ranges", ()):
            ecosystem = found.get("type") == "ECOSYSTEM"
            if ecosystem and parsed is not None and _in_range(parsed, found.get("events", [])):
                return True
    return False


def advisory(record: dict[str, Any], name: str) -> Advisory:
    fixed = sorted(
        {
            event["fixed"]
            for entry in _affected_entries(record, name)
            for found in entry.get("ranges", ())
            for event in found.get("events", ())
            if "fixed" in event and found.get("type") == "ECOSYSTEM"
        },
        key=lambda v: (_version(v) or Version("0"), v),
    )
    rating = (record.get("database_specific") or {}).get("severity")
    vectors = [s.get("score", "") for s in record.get("severity", ()) if s.get("score")]
    return Advisory(
        id=str(record["id"]),
        aliases=tuple(sorted(record.get("aliases", ()))),
        summary=str(record.get("summary") or record.get("details", "")[:120]).strip(),
        severity=str(rating or (vectors[0] if vectors else "unknown")),
        fixed=tuple(fixed),
    )


def _once(found: list[Advisory]) -> list[Advisory]:
    """One advisory per vulnerability: a PYSEC aliasing a kept GHSA (or back) is dropped."""
    kept: list[Advisory] = []
    seen: set[str] = set()
    for item in sorted(found, key=lambda a: a.id):
        if item.id in seen or seen & set(item.aliases):
            continue
        kept.append(item)
        seen |= {item.id, *item.aliases}
    return kept


class Database:
    """OSV's offline PyPI export: a folder of advisories, or its all.zip."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.by_name: dict[str, list[dict[str, Any]]] = {}
        for where, text in self._documents():
            try:
                record = json.loads(text)
                names = {
                    canonical(str(e["package"]["name"]))
                    for e in record.get("affected", ())
                    if e.get("package", {}).get("ecosystem") == ECOSYSTEM
                }
                str(record["id"])  # an advisory without an id is not one
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise UserError(
                    f"--osv-db: {where} is not an OSV advisory ({exc}). Give a folder of "
                    "OSV JSON files or OSV's PyPI all.zip."
                ) from None
            for name in names:
                self.by_name.setdefault(name, []).append(record)

    def _documents(self) -> Iterator[tuple[str, bytes]]:
        if self.path.is_dir():
            files = sorted(self.path.rglob("*.json"))
            if not files:
                raise UserError(f"--osv-db: {self.path} holds no *.json advisories.")
            for file in files:
                yield str(file), file.read_bytes()
        elif self.path.is_file():
            try:
                with zipfile.ZipFile(self.path) as export:
                    for name in sorted(export.namelist()):
                        if name.endswith(".json"):
                            yield f"{self.path}: {name}", export.read(name)
            except zipfile.BadZipFile:
                raise UserError(
                    f"--osv-db: {self.path} is neither a folder nor OSV's all.zip."
                ) from None
        else:
            raise UserError(f"--osv-db: {self.path} does not exist.")

    def advisories(self, packages: Iterable[Package]) -> dict[Package, list[Advisory]]:
        found = {}
        for name, version in set(packages):
            hits = [
                advisory(r, name) for r in self.by_name.get(name, ()) if affects(r, name, version)
            ]
            if hits:
                found[(name, version)] = _once(hits)
        return found


class Service:
    """OSV's API: querybatch for the IDs, then each advisory, cached by ID and modification."""

    def __init__(self, url: str, cache_root: Path, http: Client | None = None) -> None:
        self.url = url.rstrip("/")
        self.cache = cache_root / "osv"
        self.http = http or Client()

    def _call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = self.url + path
        try:
            if body is None:
                reply = self.http.get(url)
            else:
                reply = self.http.post_json(url, json.dumps(body).encode())
            data = json.loads(reply.body)
        except (HttpError, ValueError) as exc:
            raise OsvError(
                f"OSV at {self.url} did not answer {path}: {exc}. Check the network, or "
                "check offline with --osv-db (OSV's PyPI export)."
            ) from None
        if not isinstance(data, dict):
            raise OsvError(f"OSV at {self.url} answered {path} with something not JSON.")
        return data

    def _ids(self, packages: list[Package]) -> dict[Package, dict[str, str]]:
        """Advisory ID -> modified, per package, from querybatch (every page)."""
        found: dict[Package, dict[str, str]] = {p: {} for p in packages}
        pending: list[tuple[Package, str | None]] = [(p, None) for p in packages]
        while pending:
            batch, pending = pending[:BATCH], pending[BATCH:]
            queries = [
                {"package": {"name": name, "ecosystem": ECOSYSTEM}, "version": version,
                 **({"page_token": token} if token else {})}
                for (name, version), token in batch
            ]  # fmt: skip
            results = self._call("/v1/querybatch", {"queries": queries}).get("results", [])
            if len(results) != len(batch):
                raise OsvError(
                    f"OSV at {self.url} answered {len(results)} results to {len(batch)} queries."
                )
            for (package, _), result in zip(batch, results, strict=True):
                for vuln in result.get("vulns") or ():
                    found[package][str(vuln["id"])] = str(vuln.get("modified", ""))
                if result.get("next_page_token"):
                    pending.append((package, str(result["next_page_token"])))
        return found

    def _record(self, vuln_id: str, modified: str) -> dict[str, Any]:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{vuln_id}@{modified}")
        cached = self.cache / f"{safe}.json"
        if modified and cached.exists():
            try:
                data: dict[str, Any] = json.loads(cached.read_bytes())
                return data
            except ValueError:
                cached.unlink()
        record = self._call(f"/v1/vulns/{urllib.parse.quote(vuln_id)}")
        if modified:
            write_atomic(cached, json.dumps(record))
        return record

    def advisories(self, packages: Iterable[Package]) -> dict[Package, list[Advisory]]:
        ids = self._ids(sorted(set(packages)))
        wanted = sorted({(i, m) for found in ids.values() for i, m in found.items()})
        with ThreadPoolExecutor(max_workers=8) as pool:
            records = dict(
                zip(
                    (i for i, _ in wanted),
                    pool.map(lambda w: self._record(*w), wanted),
                    strict=True,
                )
            )
        result = {}
        for (name, version), found in ids.items():
            if found:
                result[(name, version)] = _once([advisory(records[i], name) for i in found])
        return result


def source(osv_db: Path | None, env: Mapping[str, str], cache_root: Path) -> Source:
    """The offline export when one is given, else OSV's API (or LAYERKIT_OSV_URL)."""
    if osv_db is not None:
        return Database(osv_db)
    return Service(resolve(OSV_URL, env), cache_root)
