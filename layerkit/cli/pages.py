"""Pages people look at: a layer's size and contents, the audit, and the registry's
catalog, as self-contained HTML (inline CSS, JS and SVG; nothing loaded from anywhere).

Everything shown comes from a layer or an account, so every page is a Jinja2 template
with autoescape on: a description holding `<script>` is shown as text, never run. The
pages are made from plain view values built here, so the templates only lay them out;
the same inputs give the same bytes (nothing depends on the clock or the machine).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layerkit import quota
from layerkit.errors import UserError
from layerkit.files import write_atomic
from layerkit.layer.breakdown import OTHER, Breakdown, Part
from layerkit.layer.manifest import LayerManifest, diff
from layerkit.targets import RUNTIMES, split_id

if TYPE_CHECKING:
    import jinja2

    from layerkit import osv
    from layerkit.account.audit import Report
    from layerkit.builder.verify import TargetResult
    from layerkit.layer.inspection import Inspection
    from layerkit.osv import Advisory
    from layerkit.registry import Version

WIDTH, HEIGHT = 960.0, 540.0  # the treemap's drawing: the whole of it is the 250 MiB quota
FREE = "left for the function and other layers"


@dataclass(frozen=True)
class Box:
    """One rectangle of a treemap, its area proportional to `size`."""

    name: str
    label: str
    size: int
    x: float
    y: float
    w: float
    h: float
    kind: str  # dist, other, free, folder

    def caption(self, size: float = 12) -> str:
        """The longest text that fits the box (about 0.55 em a character), or none."""
        if self.h < size * 1.5:
            return ""
        for text in (f"{self.label} · {mib(self.size)}", f"{self.name} · {mib(self.size)}",
                     self.name):  # fmt: skip
            if len(text) * size * 0.58 + 10 <= self.w:
                return text
        return ""


def squarify(items: Sequence[tuple[str, int]], x: float, y: float, w: float, h: float
             ) -> list[tuple[str, int, float, float, float, float]]:  # fmt: skip
    """Bruls, Huizing and van Wijk's squarified treemap: rows of boxes laid along the
    shorter side, each row kept while it makes its boxes squarer. Areas are exact."""
    items = [(name, size) for name, size in items if size > 0]
    total = sum(size for _, size in items)
    if not items or w <= 0 or h <= 0:
        return []
    scale = w * h / total
    placed: list[tuple[str, int, float, float, float, float]] = []
    rest = list(items)

    def worst(row: list[tuple[str, int]], side: float) -> float:
        area = sum(s for _, s in row) * scale
        return max(max(side * side * s * scale / area**2, area**2 / (side * side * s * scale))
                   for _, s in row)  # fmt: skip

    while rest:
        side = min(w, h)
        row, rest = [rest[0]], rest[1:]
        while rest and worst([*row, rest[0]], side) <= worst(row, side):
            row, rest = [*row, rest[0]], rest[1:]
        area = sum(s for _, s in row) * scale
        if w >= h:  # a column on the left
            width, top = area / h, y
            for name, size in row:
                placed.append((name, size, x, top, width, size * scale / width))
                top += size * scale / width
            x, w = x + width, w - width
        else:  # a row along the top
            height, left = area / w, x
            for name, size in row:
                placed.append((name, size, left, y, size * scale / height, height))
                left += size * scale / height
            y, h = y + height, h - height
    return placed


def mib(size: int) -> str:
    return quota.mib(size)


# One layer


@dataclass(frozen=True)
class DistributionRow:
    name: str
    version: str
    license: str
    size: int
    bytecode: int
    built: str  # wheel, sdist (compiled in the build image), or "" when not known
    targets: tuple[str, ...]


@dataclass(frozen=True)
class TargetRow:
    target: str
    python: str
    architecture: str
    glibc: str
    bytecode: str  # coverage of the sources, for this Python
    imports: str  # cold import times, when verify measured them


@dataclass(frozen=True)
class LayerView:
    title: str
    source: str  # the ZIP, or NAME:VERSION from the registry
    description: str
    unzipped: int
    zipped: int | None
    bytecode: int | None
    boxes: tuple[Box, ...]
    inside: tuple[Box, ...]  # the largest distribution, by folder
    largest: str
    distributions: tuple[DistributionRow, ...]
    targets: tuple[TargetRow, ...]
    vulnerabilities: tuple[tuple[str, str, str, str], ...] = ()  # id, package, version, summary
    checked_vulnerabilities: bool = False
    sbom: str = ""

    @property
    def share(self) -> float:
        return self.unzipped / quota.UNZIPPED_LIMIT

    @property
    def left(self) -> int:
        return quota.UNZIPPED_LIMIT - self.unzipped


def treemap(parts: Sequence[Part], unzipped: int, inside: Sequence[Part]
            ) -> tuple[tuple[Box, ...], tuple[Box, ...], str]:  # fmt: skip
    """The boxes of each part and of what is left of the quota, and inside the largest
    distribution its folders."""
    items = [(p.name, p.size) for p in parts]
    left = quota.UNZIPPED_LIMIT - unzipped
    if left > 0:
        items.append((FREE, left))
    placed = squarify(items, 0, 0, WIDTH, HEIGHT)
    version = {p.name: p.version for p in parts}
    boxes = tuple(
        Box(name, f"{name} {version.get(name, '')}".strip(), size, x, y, w, h,
            "free" if name == FREE else "other" if name == OTHER else "dist")
        for name, size, x, y, w, h in placed
    )  # fmt: skip
    largest = next((b for b in boxes if b.kind == "dist"), None)
    folders: tuple[Box, ...] = ()
    if largest is not None and inside:
        pad = 4.0
        folders = tuple(
            Box(name, name, size, x, y, w, h, "folder")
            for name, size, x, y, w, h in squarify(
                [(p.name, p.size) for p in inside], largest.x + pad, largest.y + pad + 14,
                max(largest.w - 2 * pad, 0), max(largest.h - 2 * pad - 14, 0),
            )
        )  # fmt: skip
    return boxes, folders, largest.name if largest else ""


def advisories(
    source: osv.Source | None, shipped: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], list[Advisory]] | None:
    """The known vulnerabilities of what the layer ships, (name, version) pairs; None when
    none were asked for."""
    if source is None:
        return None
    from layerkit.names import canonical

    return source.advisories({(canonical(name), version) for name, version in shipped})


def layer_view(
    source: str,
    layer_manifest: LayerManifest | None,
    found: Breakdown | None,
    inspection: Inspection | None = None,
    verified: Sequence[TargetResult] = (),
    advisories: Mapping[tuple[str, str], Sequence[Advisory]] | None = None,
    sbom: str = "",
    zipped: int | None = None,
) -> LayerView:
    """A layer as the report page shows it: from its ZIP (`found`, `inspection`), or from
    the registry's manifest alone (no ZIP: sizes per distribution as recorded)."""
    from layerkit.names import canonical

    recorded = layer_manifest.distributions() if layer_manifest else {}
    dists = {canonical(d.name): d for d in recorded.values()}
    in_targets: dict[str, list[str]] = {}
    for target_id, target in (layer_manifest.targets if layer_manifest else {}).items():
        for d in target.distributions:
            in_targets.setdefault(canonical(d.name), []).append(target_id)
    if found is not None:
        parts, inside, unzipped = list(found.parts), list(found.inside), found.unzipped
        zipped, bytecode = found.zipped, found.bytecode
    else:
        parts = sorted((Part(d.name, d.version, d.size, 0) for d in dists.values()),
                       key=lambda p: (-p.size, p.name))  # fmt: skip
        inside, bytecode = [], None
        unzipped = (layer_manifest.unzipped_bytes if layer_manifest else None) or sum(
            p.size for p in parts
        )
    boxes, folders, largest = treemap(parts, unzipped, inside)
    rows = []
    for p in parts:
        if p.name == OTHER:
            continue
        dist = dists.get(canonical(p.name))
        built = ("sdist" if dist.sdist else "wheel") if dist else ""
        rows.append(DistributionRow(
            p.name, p.version, dist.license if dist else "", p.size, p.bytecode, built,
            tuple(sorted(in_targets.get(canonical(p.name), ()))),
        ))  # fmt: skip
    targets = []
    timed = {r.target: r for r in verified}
    for target_id in sorted(layer_manifest.targets if layer_manifest else ()):
        runtime, architecture = split_id(target_id)
        known = RUNTIMES.get(runtime)
        python = known.python_version if known else ""
        coverage = "not known"
        if inspection is not None and known:
            tag = f"cpython-{known.python[0]}{known.python[1]}"
            cover = inspection.bytecode.tags.get(tag)
            sources = inspection.bytecode.sources
            coverage = f"{cover.sources} of {sources} sources ({cover.kind})" if cover else (
                f"none of {sources} sources")  # fmt: skip
        result = timed.get(target_id)
        imports = "not measured (report --verify)"
        if result is not None and result.total_seconds is not None:
            slowest = sorted(result.seconds.items(), key=lambda i: -i[1])[:3]
            imports = f"{result.total_seconds:.2f} s in all; " + ", ".join(
                f"{m} {s:.2f} s" for m, s in slowest
            )
        targets.append(TargetRow(
            target_id, python, architecture,
            ".".join(map(str, known.glibc)) if known else "", coverage, imports,
        ))  # fmt: skip
    vulnerabilities = tuple(
        (a.id, name, version, a.summary)
        for (name, version), found_advisories in sorted((advisories or {}).items())
        for a in found_advisories
    )
    return LayerView(
        title=layer_manifest.artifact if layer_manifest else Path(source).name,
        source=source,
        description=layer_manifest.description if layer_manifest else "",
        unzipped=unzipped, zipped=zipped, bytecode=bytecode,
        boxes=boxes, inside=folders, largest=largest,
        distributions=tuple(rows), targets=tuple(targets),
        vulnerabilities=vulnerabilities, checked_vulnerabilities=advisories is not None,
        sbom=sbom,
    )  # fmt: skip


# The audit


@dataclass(frozen=True)
class UseRow:
    layer: str
    version: int
    arn: str
    function: str
    qualifier: str
    aliases: str
    region: str
    account: str
    owner: str
    marks: tuple[str, ...]  # outdated, deleted, foreign, and each finding's kind
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class AuditView:
    rows: tuple[UseRow, ...]
    unused: tuple[tuple[str, str, str], ...]  # arn, region, size
    failures: tuple[tuple[str, str, str], ...]  # account, region, error
    exposed: tuple[tuple[str, str], ...]  # arn, reason
    chart: tuple[tuple[str, tuple[tuple[int, int], ...]], ...]  # layer -> (version, uses)
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    layers: tuple[str, ...]
    marks: tuple[str, ...]
    inventory: str = ""

    @property
    def counts(self) -> list[tuple[str, int]]:
        """Each mark, with how many uses carry it."""
        return [(m, sum(m in u.marks for u in self.rows)) for m in self.marks]


def audit_view(rep: Report, inventory: str = "") -> AuditView:
    # per (account, region, function, qualifier, layer); a layer of "" is about the function
    by_use: dict[tuple[str, str, str, str, str], list[tuple[str, str]]] = {}
    aliases: dict[tuple[str, str, str, str], tuple[str, ...]] = {}
    for f in rep.findings:
        aliases[(f.account, f.region, f.function, f.qualifier)] = f.aliases
        key = (f.account, f.region, f.function, f.qualifier, f.layer)
        by_use.setdefault(key, []).append((f.kind.value, f.reason))
    vulnerable = {(u.account, u.region, u.function, u.qualifier, u.layer)
                  for v in rep.vulnerable for u in v.functions}  # fmt: skip
    rows = []
    for r in rep.references:
        use = (r.account, r.region, r.function, r.version, r.arn)
        found = [*by_use.get(use, []), *by_use.get((*use[:4], ""), [])]
        marks = [r.status.value] if r.status.value != "current" else []
        marks += sorted({kind for kind, _ in found})
        if use in vulnerable:
            marks.append("vulnerable")
        reasons = [f"{kind}: {reason}" for kind, reason in found]
        if r.status.value == "outdated":
            reasons.insert(0, f"outdated: {r.behind} behind version {r.latest}")
        rows.append(UseRow(
            r.layer, r.layer_version, r.arn, r.function, r.version,
            ", ".join(aliases.get(use[:4], ())), r.region, r.account, r.managed_by or "",
            tuple(marks), tuple(reasons),
        ))  # fmt: skip
    rows.sort(key=lambda u: (u.layer, -u.version, u.account, u.region, u.function, u.qualifier))
    uses: dict[str, dict[int, int]] = {}
    for u in rows:
        per = uses.setdefault(u.layer, {})
        per[u.version] = per.get(u.version, 0) + 1
    return AuditView(
        rows=tuple(rows),
        unused=tuple((u.arn, u.region, mib(u.size)) for u in rep.unused),
        failures=tuple((f.account, f.region, f.error) for f in rep.failures),
        exposed=tuple((e.arn, e.reason) for e in rep.exposed),
        chart=tuple((layer, tuple(sorted(per.items()))) for layer, per in sorted(uses.items())),
        accounts=tuple(sorted({u.account for u in rows})),
        regions=tuple(sorted({u.region for u in rows})),
        layers=tuple(sorted({u.layer for u in rows})),
        marks=tuple(sorted({m for u in rows for m in u.marks})),
        inventory=inventory,
    )


# The catalog


@dataclass(frozen=True)
class Published:
    arn: str
    region: str
    version: int
    created: str


@dataclass(frozen=True)
class Content:
    """One content of a layer (one ZIP), wherever and under whatever numbers it is."""

    layer: str
    sha256: str
    page: str  # its file name under layers/<layer>/
    description: str
    runtimes: tuple[str, ...]
    architectures: tuple[str, ...]
    published: tuple[Published, ...]
    manifest: LayerManifest | None
    changes: Mapping[str, Sequence[Any]] = field(default_factory=dict)  # from the previous
    previous: str = ""  # the previous content's page

    @property
    def label(self) -> str:
        return ", ".join(f"{p.region} v{p.version}" for p in self.published)


_MARKER = re.compile(r"\s*\[lk:[0-9a-f]+(:filler)?\]$")  # publish's content marker


def contents_of(versions: Iterable[Version]) -> dict[str, list[Content]]:
    """Layer -> its contents, oldest first: registry rows with one SHA-256 are one page."""
    grouped: dict[tuple[str, str], list[Version]] = {}
    for v in versions:
        grouped.setdefault((v.layer, v.sha256 or v.arn), []).append(v)
    layers: dict[str, list[Content]] = {}
    for (layer, sha256), rows in grouped.items():
        rows.sort(key=lambda v: (v.region, v.version))
        first = min(rows, key=lambda v: (v.created, v.version))
        manifest = next((v.manifest for v in rows if v.manifest), None)
        layers.setdefault(layer, []).append(Content(
            layer, sha256, f"{sha256[:16]}.html", _MARKER.sub("", first.description),
            first.runtimes,
            first.architectures,
            tuple(Published(v.arn, v.region, v.version, v.created) for v in rows), manifest,
        ))  # fmt: skip
    for layer, found in layers.items():
        # by when it was first published; within a second (records say seconds), by number
        found.sort(key=lambda c: (min(p.created for p in c.published),
                                  max(p.version for p in c.published), c.sha256))  # fmt: skip
        linked = []
        for before, content in zip([None, *found[:-1]], found, strict=True):
            changes: Mapping[str, Sequence[Any]] = {}
            if before is not None and before.manifest and content.manifest:
                changes = diff(before.manifest, content.manifest)
            linked.append(Content(
                **{**content.__dict__, "changes": changes,
                   "previous": before.page if before else ""}
            ))  # fmt: skip
        layers[layer] = linked
    return dict(sorted(layers.items()))


def latest_rows(contents: Sequence[Content]) -> list[tuple[str, str, str, str]]:
    """(region, runtimes, architectures, ARN) of the newest version in each region."""
    newest: dict[str, tuple[int, Content, Published]] = {}
    for content in contents:
        for p in content.published:
            if p.region not in newest or p.version > newest[p.region][0]:
                newest[p.region] = (p.version, content, p)
    return [
        (region, ", ".join(c.runtimes), ", ".join(c.architectures), p.arn)
        for region, (_, c, p) in sorted(newest.items())
    ]


# Rendering


def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("layerkit.cli", "templates"),
        autoescape=True,  # every value is someone else's text: escaped unless marked safe
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["mib"] = mib
    env.filters["tojson_text"] = lambda value: json.dumps(value, sort_keys=True)
    return env


def render(template: str, **values: Any) -> str:
    return _environment().get_template(template).render(quota=quota.UNZIPPED_LIMIT, **values)


def write_page(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text.encode("utf-8"))
    except OSError as exc:
        raise UserError(
            f"Cannot write {path}: {exc.strerror or exc}. Give a file in a folder you can "
            "write (-o / --html)."
        ) from None


def write_catalog(out: Path, contents: Mapping[str, Sequence[Content]],
                  sboms: Mapping[tuple[str, str], str]) -> list[Path]:  # fmt: skip
    """The index and a page per content of each layer, with its SBOM beside it."""
    env = _environment()
    written = []
    index = out / "index.html"
    write_page(index, env.get_template("catalog.html").render(
        layers=[(name, latest_rows(found), found) for name, found in contents.items()],
        quota=quota.UNZIPPED_LIMIT,
    ))  # fmt: skip
    written.append(index)
    page = env.get_template("version.html")
    for layer, found in contents.items():
        for content in found:
            sbom = sboms.get((layer, content.sha256), "")
            path = out / "layers" / layer / content.page
            if sbom:
                write_page(path.with_suffix(".cdx.json"), sbom)
            write_page(path, page.render(content=content, sbom=bool(sbom),
                                         quota=quota.UNZIPPED_LIMIT))  # fmt: skip
            written.append(path)
    return written
