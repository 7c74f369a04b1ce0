"""OSV matching on real advisories (tests/data/osv), offline and through a local server that
speaks OSV's querybatch API as documented (https://google.github.io/osv.dev/post-v1-querybatch/)."""

from __future__ import annotations

import http.server
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from layerkit import osv
from layerkit.errors import OsvError, UserError

DATA = Path(__file__).resolve().parent.parent / "data" / "osv"


def ids(
    found: dict[osv.Package, list[osv.Advisory]], version: str, name: str = "urllib3"
) -> list[str]:
    return [a.id for a in found.get((name, version), [])]


# Read off the advisories by hand (the oracle both paths are held to):
# GHSA-34jh: urllib3 <1.26.19 and 2.0.0..<2.2.2; GHSA-g4mx (= PYSEC-2023-212): <1.26.18 and
# 2.0.0..<2.0.7; GHSA-w596: py up to and including 1.11.0 (last_affected, no fix).
TABLE = [
    ("urllib3", "1.26.5", ["GHSA-34jh-p97f-mpxf", "GHSA-g4mx-q9vg-27p4"]),
    ("urllib3", "1.26.18", ["GHSA-34jh-p97f-mpxf"]),
    ("urllib3", "1.26.19", []),
    ("urllib3", "2.0.6", ["GHSA-34jh-p97f-mpxf", "GHSA-g4mx-q9vg-27p4"]),
    ("urllib3", "2.0.7", ["GHSA-34jh-p97f-mpxf"]),
    ("urllib3", "2.2.1", ["GHSA-34jh-p97f-mpxf"]),
    ("urllib3", "2.2.2", []),
    ("py", "1.4.0", ["GHSA-w596-4wvx-j9j6"]),
    ("py", "1.11.0", ["GHSA-w596-4wvx-j9j6"]),
    ("py", "1.11.1", []),
]


@pytest.mark.parametrize(("name", "version", "expected"), TABLE)
def test_the_offline_export_matches_ranges_as_osv_does(
    name: str, version: str, expected: list[str]
) -> None:
    found = osv.Database(DATA).advisories([(name, version)])
    # PYSEC-2023-212 aliases GHSA-g4mx-q9vg-27p4: one vulnerability, reported once.
    assert ids(found, version, name) == expected


def test_an_advisory_gives_its_severity_and_fixed_versions() -> None:
    found = osv.Database(DATA).advisories([("urllib3", "2.2.1"), ("requests", "2.0.0")])
    [advisory] = found[("urllib3", "2.2.1")]
    assert advisory.severity == "MODERATE"
    assert advisory.fixed == ("1.26.19", "2.2.2")
    assert advisory.aliases == ("CVE-2024-37891",)
    assert advisory.url == "https://osv.dev/vulnerability/GHSA-34jh-p97f-mpxf"
    assert ("requests", "2.0.0") not in found


def test_a_record_with_explicit_versions_and_no_severity_rating_is_read() -> None:
    record = json.loads((DATA / "PYSEC-2023-212.json").read_text())
    assert osv.affects(record, "urllib3", "1.26.17")
    assert not osv.affects(record, "urllib3", "1.26.18")
    assert osv.advisory(record, "urllib3").severity.startswith("CVSS:3.1/")
    assert not osv.affects({**record, "withdrawn": "2024-01-01T00:00:00Z"}, "urllib3", "1.26.17")


def test_the_export_zip_is_read_as_the_folder_is(tmp_path: Path) -> None:
    export = tmp_path / "all.zip"
    with zipfile.ZipFile(export, "w") as zipped:
        for path in DATA.glob("*.json"):
            zipped.write(path, path.name)
    assert osv.Database(export).advisories([("urllib3", "2.0.6")]) == osv.Database(DATA).advisories(
        [("urllib3", "2.0.6")]
    )


def test_a_bad_osv_db_is_named(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.json").write_text('{"affected": []}')
    (tmp_path / "notzip").write_text("hello")
    for path, said in (
        (tmp_path / "missing", "does not exist"),
        (tmp_path / "empty", r"no \*\.json"),
        (tmp_path / "bad", "not an OSV advisory"),
        (tmp_path / "notzip", "neither a folder nor"),
    ):
        with pytest.raises(UserError, match=said):
            osv.Database(path)


class OsvServer:
    """OSV's API as documented: querybatch answers IDs and `modified` only, at most
    `page` per query with a next_page_token; GET /v1/vulns/ID the whole advisory."""

    def __init__(self, answers: dict[tuple[str, str], list[str]], page: int = 1) -> None:
        self.answers, self.page = answers, page
        self.requests: list[tuple[str, Any]] = []
        records = {p.stem: json.loads(p.read_text()) for p in DATA.glob("*.json")}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body))
                results = []
                for query in body["queries"]:
                    assert query["package"]["ecosystem"] == "PyPI"
                    found = outer.answers.get((query["package"]["name"], query["version"]), [])
                    start = int(query.get("page_token", 0))
                    chunk = found[start : start + outer.page]
                    result: dict[str, Any] = {}
                    if chunk:
                        result["vulns"] = [
                            {"id": i, "modified": records[i]["modified"]} for i in chunk
                        ]
                    if start + outer.page < len(found):
                        result["next_page_token"] = str(start + outer.page)
                    results.append(result)
                self.reply({"results": results})

            def do_GET(self) -> None:
                outer.requests.append((self.path, None))
                self.reply(records[self.path.rsplit("/", 1)[1]])

            def reply(self, data: Any) -> None:
                payload = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> OsvServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


@pytest.fixture
def served() -> Iterator[OsvServer]:
    answers = {
        ("urllib3", "1.26.5"): ["GHSA-34jh-p97f-mpxf", "GHSA-g4mx-q9vg-27p4", "PYSEC-2023-212"],
        ("urllib3", "2.2.1"): ["GHSA-34jh-p97f-mpxf"],
    }
    with OsvServer(answers) as server:
        yield server


def test_the_online_service_follows_pages_and_caches_advisories(
    served: OsvServer, tmp_path: Path
) -> None:
    service = osv.Service(served.url, tmp_path)
    wanted = [("urllib3", "1.26.5"), ("urllib3", "2.2.1"), ("idna", "3.7")]
    found = service.advisories(wanted)
    assert ids(found, "1.26.5") == ["GHSA-34jh-p97f-mpxf", "GHSA-g4mx-q9vg-27p4"]
    assert ids(found, "2.2.1") == ["GHSA-34jh-p97f-mpxf"]
    assert found[("urllib3", "2.2.1")][0].fixed == ("1.26.19", "2.2.2")
    batches = [body for path, body in served.requests if path == "/v1/querybatch"]
    assert len(batches[0]["queries"]) == 3  # one request for every package
    assert [q["page_token"] for b in batches[1:] for q in b["queries"]] == ["1", "2"]
    fetched = sorted(path for path, body in served.requests if body is None)
    assert fetched == [f"/v1/vulns/{i}" for i in sorted(
        ["GHSA-34jh-p97f-mpxf", "GHSA-g4mx-q9vg-27p4", "PYSEC-2023-212"])]  # fmt: skip

    served.requests.clear()
    assert osv.Service(served.url, tmp_path).advisories(wanted) == found
    assert [path for path, body in served.requests if body is None] == []  # from the cache


def _affected(record: dict[str, Any], name: str, version: str) -> bool:
    """The server's own matching, written apart from layerkit's: explicit versions, else
    each ECOSYSTEM range as an interval [introduced, fixed) or [introduced, last_affected]."""
    from packaging.version import Version

    at = Version(version)
    for affected in record["affected"]:
        if affected["package"]["name"] != name:
            continue
        if affected.get("versions"):
            return version in affected["versions"]
        for events in (r["events"] for r in affected.get("ranges", []) if r["type"] == "ECOSYSTEM"):
            starts = [Version(e["introduced"]) for e in events if "introduced" in e]
            ends = [(Version(e.get("fixed") or e["last_affected"]), "fixed" in e)
                    for e in events if "fixed" in e or "last_affected" in e]  # fmt: skip
            for start, (end, fixed) in zip(
                starts, ends + [(None, False)] * len(starts), strict=False
            ):
                if at >= start and (end is None or at < end or (not fixed and at == end)):
                    return True
    return False


def test_online_matches_the_same_table(tmp_path: Path) -> None:
    """The server decides what matches from the records themselves (not told the IDs), and
    layerkit's online path gives what the hand-made table says."""
    records = {p.stem: json.loads(p.read_text()) for p in DATA.glob("*.json")}
    answers = {
        (name, version): sorted(i for i, r in records.items() if _affected(r, name, version))
        for name, version, _ in TABLE
    }
    with OsvServer(answers) as server:
        found = osv.Service(server.url, tmp_path).advisories([(n, v) for n, v, _ in TABLE])
    for name, version, expected in TABLE:
        assert ids(found, version, name) == expected, (name, version)


def test_osv_that_does_not_answer_is_named(tmp_path: Path) -> None:
    with pytest.raises(OsvError, match=r"127\.0\.0\.1:9 did not answer.*--osv-db"):
        osv.Service("http://127.0.0.1:9", tmp_path).advisories([("urllib3", "2.2.1")])
