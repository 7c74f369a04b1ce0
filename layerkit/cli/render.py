"""What people see: progress, tables and lines for every command, and JSON for machines.

The core returns data; this module is the only one that prints it. rich's tables and
progress are imported by the functions that draw them, so a no-op build loads neither.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from layerkit.quota import mib
from layerkit.redaction import redact

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from layerkit.account.attach import Finding
    from layerkit.account.audit import Audit, Reference, Report, Vulnerable
    from layerkit.account.bump import Bump
    from layerkit.account.prune import Pruned
    from layerkit.account.publish import Action, Run
    from layerkit.account.rollout import Result
    from layerkit.account.scan import InventoryNote
    from layerkit.builder.pipeline import Artifact
    from layerkit.builder.verify import TargetResult
    from layerkit.iac.sources import Sources
    from layerkit.layer.inspection import Inspection
    from layerkit.layer.manifest import Change
    from layerkit.registry import Version

# Piped output is read by people in CI logs too: give tables room instead of 80 columns.
# emoji=False: a name such as `:fire:` is shown as written, and rich's emoji table (some
# 5 ms to import) is never loaded.
out = Console(width=None if sys.stdout.isatty() else 160, emoji=False)
err = Console(stderr=True, soft_wrap=True, emoji=False)  # paragraphs: the terminal wraps them


def synced(found: list[Version], as_json: bool) -> None:
    if as_json:
        print_json([v.as_dict() for v in found])
    else:
        out.print(f"synced {len(found)} layer versions")


def jsonable(value: Any) -> Any:
    """A result as JSON data: a dataclass by its fields, an enum by its value, tuples and
    sets as lists, paths as text. Results become JSON here and nowhere else."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, Path):
        return str(value)
    return value


def print_json(data: Any) -> None:
    # Plain print, not rich: rich wraps long strings at the console width.
    sys.stdout.write(redact(json.dumps(data, indent=2)) + "\n")


def raw(data: bytes) -> None:
    """A document as it is (an SBOM): no redaction, no wrapping."""
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


def line(text: str) -> None:
    out.print(redact(text), markup=False, highlight=False)


def error(text: str) -> None:
    """A message on stderr, as a paragraph the terminal wraps; never with a credential."""
    err.print(redact(text), markup=False, highlight=False)


class Reporter:
    """Shows one progress line per target or artifact on a terminal; silent otherwise."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, label: str, message: str) -> None:
        if self.progress is None:
            return  # logs and the summary say what matters; no spinner text in CI logs
        if label not in self.tasks:
            self.tasks[label] = self.progress.add_task(label, total=None)
        self.progress.update(self.tasks[label], description=f"{label}: {message}")


@contextmanager
def reporting(quiet: bool) -> Iterator[Reporter]:
    if quiet or not err.is_terminal:
        yield Reporter(None)
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        yield Reporter(progress)


def artifact_json(a: Artifact) -> dict[str, Any]:
    return {
        "recipe": a.recipe,
        "artifact": a.name,  # the LayerName it is published as
        "path": str(a.path),
        "sha256": a.sha256,
        "targets": list(a.targets),
        "files": a.files,
        "unzipped": a.unzipped,
        "zipped": a.zipped,
        "status": a.status.value,
        "notes": list(a.notes),
    }


def verification_json(r: TargetResult) -> dict[str, Any]:
    return {
        "zip": str(r.zip),
        "target": r.target,
        "where": r.where,
        "ok": r.ok,
        "modules": r.modules,
        "import_seconds": {m: round(s, 4) for m, s in sorted(r.seconds.items())},
        "total_import_seconds": None if r.total_seconds is None else round(r.total_seconds, 4),
        "slowest": [{"module": m, "seconds": round(s, 4)} for m, s in r.slowest()],
        "bytecode": r.bytecode,
        "compiled": list(r.compiled),
    }


def built(artifacts_: list[Artifact], reports: list[TargetResult] | None, as_json: bool) -> None:
    """`layerkit build`: the artifacts, with their verification when there was one."""
    if as_json:
        data = [artifact_json(a) for a in artifacts_]
        for item in data if reports is not None else []:
            item["verification"] = [
                verification_json(r) for r in reports or () if str(r.zip) == item["path"]
            ]
        print_json(data)
    else:
        artifacts(artifacts_)
        verification(reports or [])


def artifacts(built: list[Artifact]) -> None:
    """One line per artifact, its columns aligned, as compilers and package managers report
    what they built: read alike in a terminal and a CI log, and drawn without rich's table,
    whose import is a tenth of a no-op build."""
    rows = [
        (
            a.status.value,
            str(a.path),
            ", ".join(a.targets),
            f"{a.files} files",
            f"{mib(a.unzipped)} unzipped",
            f"{mib(a.zipped)} zipped",
            f"sha256 {a.sha256[:12]}",
        )
        for a in built
    ]
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    numbers = (3, 4, 5)  # right-aligned, so that sizes line up digit under digit
    for row in rows:
        cells = [
            c.rjust(w) if i in numbers else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.print("  ".join(cells).rstrip(), markup=False, highlight=False, soft_wrap=True)
    for a in built:
        for note in a.notes:
            err.print(f"note: {note}")


def verification(reports: list[TargetResult], as_json: bool = False) -> None:
    if as_json:
        print_json([verification_json(r) for r in reports])
        return
    if not reports:
        return
    from rich.table import Table

    table = Table("layer", "target", "imported", "cold import", "slowest alone", "where")
    for report in reports:
        imported = f"{len(report.modules) - len(report.failed)}/{len(report.modules)}"
        total = report.total_seconds
        table.add_row(
            report.zip.name,
            report.target,
            f"[green]{imported}[/]" if report.ok else f"[red]{imported} FAILED[/]",
            "—" if total is None else f"{total:.2f} s",
            "\n".join(f"{module} {seconds:.2f} s" for module, seconds in report.slowest()),
            report.where,
        )
    out.print(table)
    for report in reports:
        for module, outcome in report.modules.items():
            if outcome != "ok":
                line(f"{report.target}: {module}: {outcome}")
        if report.bytecode_unused:
            shown = ", ".join(report.compiled[:5]) + (" …" if len(report.compiled) > 5 else "")
            line(
                f"{report.target}: the layer ships bytecode ({report.bytecode}), yet "
                f"{len(report.compiled)} of its sources were compiled on import: {shown}. "
                "Its .pyc are not used where it runs (built for another Python, or for "
                "other paths): rebuild it for this target."
            )


def action_json(a: Action) -> dict[str, Any]:
    return {
        "region": a.region,
        "layer": a.layer,
        "action": "publish" if a.publish else "unchanged",
        "existing_arn": a.existing_arn,
        "route": a.route,
        "s3": "s3://{}/{}".format(*a.s3_location) if a.s3_location else None,
        "grants": [g.statement_id for g in a.grants],
        "parameter": a.parameter,
        **({"newest": a.newest, "target": a.target, "fillers": a.fillers, "note": a.note}
           if a.target is not None or a.note else {}),
    }  # fmt: skip


def published(done: Run, dry_run: bool, as_json: bool) -> None:
    """`layerkit publish`: the plan with --dry-run, else what was done."""
    actions = [a for _, planned in done.plans for a in planned]
    if dry_run and as_json:
        print_json([action_json(a) for a in actions])
    elif dry_run:
        for a in actions:
            how = f" via {a.route}" if a.route else f" ({a.existing_arn})"
            grants = ", ".join(g.statement_id for g in a.grants) or "none"
            verb = "publish" if a.publish else "unchanged"
            if a.target is not None:
                verb += f" as version {a.target} after {a.fillers} fillers (newest: {a.newest})"
            note = f"; {a.note}" if a.note else ""
            if a.signing_profile:
                note += f"; signed with {a.signing_profile} first"
            line(f"{a.region}: {a.layer}: {verb}{how}; grants: {grants}; "
                 f"parameter: {a.parameter or 'none'}{note}")  # fmt: skip
    elif as_json:
        print_json({"outcomes": jsonable(done.outcomes), "api_calls": done.api_calls})
    else:
        for o in done.outcomes:
            shown = o.error if o.status == "failed" else o.arn
            fillers = sum(n.startswith("filler ") for n in o.notes)
            after = f" (after {fillers} filler versions)" if fillers else ""
            line(f"{o.region}: {o.layer}: {o.status.value}: {shown}{after}")


def versions(found: list[Version], as_json: bool = False) -> None:
    if as_json:  # the manifest is for `show`
        print_json([{k: v for k, v in x.as_dict().items() if k != "manifest"} for x in found])
        return
    from rich.table import Table

    table = Table("layer", "region", "version", "zipped", "sha256", "created", "arn")
    for v in found:
        size = mib(v.size) if v.size is not None else "?"
        table.add_row(v.layer, v.region, str(v.version), size, (v.sha256 or "?")[:12],
                      v.created[:19], v.arn)  # fmt: skip
    out.print(table)


def version_content(found: list[Version], as_json: bool = False) -> None:
    if as_json:
        print_json([v.as_dict() for v in found])
        return
    for v in found:
        out.print(f"{v.arn}  {mib(v.size or 0)}  sha256 {v.sha256}  by {v.by} {v.created}")
        if v.signing:
            s = v.signing
            out.print(f"  signed by {s.profile_version_arn} (job {s.job_arn}); "
                      f"CodeSha256 {s.signed_sha256}")  # fmt: skip
    layer_manifest = next((v.manifest for v in reversed(found) if v.manifest), None)
    if layer_manifest:
        from rich.table import Table

        table = Table("distribution", "version", "licence", "size")
        for d in layer_manifest.distributions().values():
            table.add_row(d.name, d.version, d.license, mib(d.size))
        out.print(table)


def changes(changed: dict[str, list[Change]], as_json: bool = False) -> None:
    found = {kind: [c.to_json() for c in items] for kind, items in changed.items()}
    if as_json:
        print_json(found)
        return
    for kind, items in found.items():
        for item in items:
            line(f"{kind}: {json.dumps(item)}")
    if not any(found.values()):
        out.print("no differences in distributions")


# The audit


def vulnerable_json(v: Vulnerable) -> dict[str, Any]:
    a = v.advisory
    return {"id": a.id, "aliases": list(a.aliases), "summary": a.summary,
            "severity": a.severity, "fixed": list(a.fixed), "url": a.url,
            "package": v.package, "version": v.version,
            "layers": list(v.layers), "functions": jsonable(v.functions)}  # fmt: skip


def report_json(rep: Report) -> dict[str, Any]:
    from layerkit.account.attach import KINDS

    return {
        "references": jsonable(rep.references),
        "outdated": jsonable(rep.outdated),
        "deleted": jsonable(rep.deleted),
        "unused": jsonable(rep.unused),
        "foreign": jsonable(rep.foreign),
        "layer_limit": jsonable(rep.layer_limit),
        "oversize": jsonable(rep.oversize),
        "failures": jsonable(rep.failures),
        "matches": [
            {**jsonable(m.reference), "package": m.package, "package_version": m.package_version}
            for m in rep.matches
        ],
        "vulnerable": [vulnerable_json(v) for v in rep.vulnerable],
        "exposed": jsonable(rep.exposed),
        "inventory": jsonable(rep.inventory) if rep.inventory else None,
        **{kind: jsonable(rep.of_kind(kind)) for kind in KINDS},
    }


def audited(done: Audit, as_json: bool, as_csv: bool) -> None:
    if as_json:
        print_json({**report_json(done.report), "api_calls": done.api_calls})
    elif as_csv:
        audit_csv(done.report)
    else:
        audit(done.report)


def _label(r: Reference) -> str:
    return f"{r.function}:{r.version}"


def audit(rep: Report) -> None:
    from rich.table import Table

    from layerkit.account.attach import KINDS

    usage: dict[str, list[str]] = {}
    for r in rep.references:
        owner = f", {r.managed_by}" if r.managed_by else ""
        usage.setdefault(r.arn, []).append(f"{_label(r)} ({r.region}{owner})")
    table = Table("layer version", "status", "functions")
    status = {r.arn: r.status.value for r in rep.references}
    for arn, functions in sorted(usage.items()):
        shown = ", ".join(functions[:5]) + (
            f" … +{len(functions) - 5}" if len(functions) > 5 else ""
        )
        table.add_row(arn, status[arn], f"{len(functions)}: {shown}")
    out.print(table)
    sections = [
        ("outdated", [f"{_label(r)} ({r.account} {r.region}) uses {r.layer}:{r.layer_version}, "
                      f"{r.behind} behind {r.latest}" for r in rep.outdated]),
        ("deleted versions still in use", [f"{_label(r)} ({r.region}) uses {r.arn}"
                                           for r in rep.deleted]),
        ("unused versions", [f"{u.arn} ({mib(u.size)})" for u in rep.unused]),
        ("other accounts' layers", [f"{owner}: {len(arns)} layer versions"
                                    for owner, arns in rep.foreign.items()]),
        ("at or near the 5-layer limit", [f"{n.function} ({n.region}): {n.layers}"
                                          for n in rep.layer_limit]),
        ("at or near 250 MiB unzipped", [f"{o.function} ({o.region}): layers "
                                         f"{mib(o.layers_unzipped)}; {o.note}"
                                         for o in rep.oversize]),
        ("could not scan", [f"{f.account} {f.region}: {f.error}" for f in rep.failures]),
        ("package matches", [f"{_label(m.reference)} ({m.reference.region}) via "
                             f"{m.reference.arn}: {m.package} {m.package_version}"
                             for m in rep.matches]),
        *((kind, [_finding(f) for f in rep.of_kind(kind)]) for kind in KINDS),
        ("vulnerable", [_vulnerable(v) for v in rep.vulnerable]),
        ("exposed", [f"{e.arn}: {e.reason} (statement {e.statement})" for e in rep.exposed]),
    ]  # fmt: skip
    for title, lines in sections:
        if lines:
            out.print(f"[bold]{title}[/] ({len(lines)})")
            for text in lines:
                line(f"  {text}")
    freed = sum(u.size for u in rep.unused)
    out.print(f"unused versions take {mib(freed)} of code storage")
    if rep.inventory:
        out.print(inventory_note(rep.inventory))


def inventory_note(note: InventoryNote) -> str:
    return (
        f"inventory: AWS Config aggregator {note.aggregator} recorded {note.functions} "
        f"functions in {note.places} account-regions (oldest record {note.oldest or 'none'}), "
        "and only those were read directly. Config can be up to a day behind (daily "
        "recording): a function created since is missing, and unused layer versions are "
        "listed only where functions are."
    )


def _vulnerable(v: Vulnerable) -> str:
    a = v.advisory
    fixed = f"fixed in {', '.join(a.fixed)}" if a.fixed else "no fixed version yet"
    functions = [f"{f.function}:{f.qualifier} ({f.account} {f.region})" for f in v.functions]
    shown = ", ".join(functions[:5]) + (f" … +{len(functions) - 5}" if len(functions) > 5 else "")
    return (
        f"{a.id} ({a.severity}) {v.package} {v.version}, {fixed}: "
        f"{len(v.layers)} layer versions, {len(functions)} functions: {shown or 'none'}"
    )


def _finding(f: Finding) -> str:
    serving = f" (serving {', '.join(f.aliases)})" if f.aliases else ""
    layer = f" {f.layer}:" if f.layer else ":"
    return f"{f.function}:{f.qualifier}{serving} ({f.account} {f.region}){layer} {f.reason}"


def audit_csv(rep: Report) -> None:
    """One row per reference; `findings` and `reasons` carry the attach-time findings about
    that function version and layer (and about the function's runtime)."""
    import csv

    columns = ["account", "region", "function", "version", "layer", "owner",
               "layer_version", "status", "behind", "arn", "managed_by", "findings",
               "reasons", "vulnerabilities"]  # fmt: skip
    advisories: dict[str, list[str]] = {}
    for v in rep.vulnerable:
        for arn in v.layers:
            advisories.setdefault(arn, []).append(f"{v.advisory.id} {v.package} {v.version}")
    about: dict[tuple[str, str, str, str], list[Finding]] = {}
    for f in rep.findings:
        about.setdefault((f.account, f.region, f.function, f.qualifier), []).append(f)
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for r in rep.references:
        found = [
            f
            for f in about.get((r.account, r.region, r.function, r.version), [])
            if f.layer in ("", r.arn)
        ]
        writer.writerow(
            {
                **jsonable(r),
                "findings": ";".join(sorted({f.kind.value for f in found})),
                "reasons": " | ".join(f.reason for f in found),
                "vulnerabilities": ";".join(advisories.get(r.arn, [])),
            }
        )


# Rollout and prune


def rollout_json(result: Result) -> dict[str, Any]:
    u = result.update
    data: dict[str, Any] = {
        "account": u.account, "region": u.region, "function": u.function,
        "layers": list(u.new_layers), "status": result.status.value,
    }  # fmt: skip
    if u.alias is not None:
        data.update(alias=u.alias, action=u.action, serving=u.serving)
        if u.weight is not None:
            data["weight"] = u.weight
    if result.reason:
        data["reason"] = result.reason
    if result.version is not None:
        data["version"] = result.version
    if result.error is not None:
        data["error"] = result.error
    if u.owner is not None:
        data["owner"] = u.owner
    return data


def rollout(results: list[Result], layer: str, as_json: bool = False) -> None:
    if as_json:
        print_json([rollout_json(r) for r in results])
        return
    for r in results:
        u = r.update
        why = f"; {r.error or r.reason}" if r.error or r.reason else ""
        where = f"{u.function}:{u.alias}" if u.alias else u.function
        version = f" as version {r.version}" if r.version else ""
        weight = f" ({u.weight:.0%} of traffic)" if u.alias and u.weight is not None else ""
        action = f" {u.action}" if u.alias else ""
        drift = (
            f"; drift: {u.owner} will put its own layers back on its next deploy"
            if u.owner and not u.refused else ""
        )  # fmt: skip
        line(f"{r.status.value}{action}: {where} ({u.region}){version}{weight} -> "
             f"{', '.join(u.new_layers)}{why}{drift}")  # fmt: skip
    if not results:
        out.print(f"no function uses an older version of {layer}")


def references(sources: Sources, layers: set[str], as_json: bool) -> None:
    """`bump --list`: every layer version ARN found, where, and what bump cannot move."""
    from layerkit.iac.references import find

    found = [
        {"file": str(s.path), "line": w.line, "arn": w.arn, "layer": w.layer,
         "version": w.version, "problem": w.problem}
        for s in sources.read for w in find(s.text) if not layers or w.layer in layers
    ]  # fmt: skip
    skipped = [{"file": str(s.path), "why": s.why} for s in sources.skipped]
    if as_json:
        print_json({"files": sources.files, "references": found, "skipped": skipped})
        return
    for f in found:
        problem = f"  ({f['problem']})" if f["problem"] else ""
        out.print(f"{f['file']}:{f['line']}  {f['arn']}{problem}", markup=False, highlight=False)
    for s in skipped:
        line(f"skipped {s['file']}: {s['why']}")
    out.print(f"{len(found)} references in {sources.files} files")


def bumped(bumps: list[Bump], sources: Sources, show_diff: bool, as_json: bool) -> None:
    if show_diff:
        _bump_diff(bumps, sources)
    if as_json:
        print_json([
            {"file": str(b.path), "line": b.line, "arn": b.arn, "layer": b.layer,
             "regions": list(b.regions), "from": b.current, "to": b.to,
             "status": b.status.value, "why": b.why}
            for b in bumps
        ])  # fmt: skip
        return
    if not bumps:
        out.print(f"no layer version ARN in {sources.files} files")
        return
    from rich.table import Table

    table = Table("file:line", "layer", "region", "from → to", "status", "why")
    for b in bumps:
        moved = f"{b.current} → {b.to}" if b.to is not None and b.to != b.current else ""
        table.add_row(
            b.where if b.line else str(b.path), b.layer, ", ".join(b.regions) or "?",
            moved or str(b.current or ""), b.status.value, b.why or "",
        )  # fmt: skip
    out.print(table)


def _bump_diff(bumps: list[Bump], sources: Sources) -> None:
    import difflib

    from layerkit.account.bump import Status
    from layerkit.iac.references import rewrite

    moving = {Status.behind, Status.bumped}
    for source in sources.read:
        versions = {
            b.written: b.to
            for b in bumps
            if b.path == source.path and b.status in moving and b.written and b.to
        }
        if versions:
            new = rewrite(source.text, versions)
            diff = difflib.unified_diff(
                source.text.splitlines(keepends=True), new.splitlines(keepends=True),
                f"a/{source.path}", f"b/{source.path}",
            )  # fmt: skip
            raw("".join(diff).encode("utf-8"))


def prune(done: Pruned, as_json: bool = False) -> None:
    if as_json:
        key = "deleted" if done.deleted else "would_delete"
        print_json({key: jsonable(done.candidates), "bytes_freed": done.bytes_freed})
        return
    for c in done.candidates:
        out.print(f"{'deleted' if done.deleted else 'would delete'}: {c.arn} ({mib(c.size)})")
    verb = "freed" if done.deleted else "would free (run with --yes to delete)"
    out.print(f"{len(done.candidates)} versions, {mib(done.bytes_freed)} of code storage {verb}")


def inspection(report: Inspection, as_json: bool = False) -> None:
    if as_json:
        print_json(jsonable(report))
        return
    from rich.table import Table

    out.print(
        f"[bold]{report.path}[/]  layer: {report.layer or '(no layerkit manifest)'}  "
        f"files: {report.files}  unzipped: {mib(report.unzipped)}  "
        f"zipped: {mib(report.zipped)}  quota headroom: {mib(report.quota_headroom)}"
    )
    out.print(
        f"Python: {', '.join(report.python_versions) or 'any'}  "
        f"architectures: {', '.join(report.architectures)}"
    )
    bytecode = report.bytecode
    caveat = {"timestamp": ", valid only where extraction keeps file times"}
    covered = [
        f"{tag} for {t.sources}/{bytecode.sources} sources ({t.kind}{caveat.get(t.kind, '')})"
        for tag, t in bytecode.tags.items()
    ]
    out.print(
        "bytecode: " + ("; ".join(covered) if covered else "none")
        if covered or not bytecode.sources
        else f"bytecode: none, so every cold start compiles its {bytecode.sources} sources"
    )
    dists = Table("distribution", "version", "size", "site-packages")
    for d in report.distributions:
        dists.add_row(d.name, d.version, mib(d.size) if d.size else "?", d.site)
    out.print(dists)
    largest = Table("largest files", "size")
    for f in report.largest_files:
        largest.add_row(f.path, mib(f.size))
    out.print(largest)
    for problem in report.problems:
        err.print(f"[red]problem:[/] {problem}")
