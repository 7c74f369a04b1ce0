"""What people see: progress, tables and lines for every command, and JSON for machines.

The core returns data; this module is the only one that prints it. rich is imported by the
functions that draw tables and progress, so a no-op build never loads it.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from layerkit.quota import mib
from layerkit.redaction import redact

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from layerkit.account.attach import Finding
    from layerkit.account.audit import Audit, Report
    from layerkit.account.publish import Action, Outcome, Run
    from layerkit.build.pipeline import Artifact
    from layerkit.layer.manifest import Change
    from layerkit.registry import Version

# Piped output is read by people in CI logs too: give tables room instead of 80 columns.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)  # messages are paragraphs: let the terminal wrap


class LogHandler(logging.Handler):
    """layerkit's log on stderr: warnings and errors say so, the rest is plain text."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = {logging.WARNING: "warning: ", logging.ERROR: "error: "}.get(record.levelno, "")
        error(prefix + record.getMessage())


def synced(found: list[Version], as_json: bool) -> None:
    if as_json:
        print_json([v.as_dict() for v in found])
    else:
        out.print(f"synced {len(found)} layer versions")


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


def built(artifacts_: list[Artifact], reports: list[dict[str, Any]] | None, as_json: bool) -> None:
    """`layerkit build`: the artifacts, with their verification when there was one."""
    if as_json:
        data = [a.as_dict() for a in artifacts_]
        for item in data if reports is not None else []:
            item["verification"] = [r for r in reports or () if r["zip"] == item["path"]]
        print_json(data)
    else:
        artifacts(artifacts_)
        verification(reports or [])


def artifacts(built: list[Artifact]) -> None:
    from rich.table import Table

    table = Table("artifact", "targets", "files", "unzipped", "zipped", "sha256", "")
    for a in built:
        table.add_row(
            str(a.path),
            "\n".join(a.targets),
            str(a.files),
            mib(a.unzipped),
            mib(a.zipped),
            a.sha256[:12],
            a.status,
        )
    out.print(table)
    for a in built:
        for note in a.notes:
            err.print(f"note: {note}")


def verification(reports: list[dict[str, Any]], as_json: bool = False) -> None:
    if as_json:
        print_json(reports)
        return
    if not reports:
        return
    from rich.table import Table

    table = Table("layer", "target", "imported", "cold import", "slowest alone", "where")
    for report in reports:
        failed = sum(1 for e in report["modules"].values() if e != "ok")
        imported = f"{len(report['modules']) - failed}/{len(report['modules'])}"
        total = report["total_import_seconds"]
        table.add_row(
            Path(report["zip"]).name,
            report["target"],
            f"[green]{imported}[/]" if report["ok"] else f"[red]{imported} FAILED[/]",
            "—" if total is None else f"{total:.2f} s",
            "\n".join(f"{s['module']} {s['seconds']:.2f} s" for s in report["slowest"]),
            report["where"],
        )
    out.print(table)
    for report in reports:
        for module, error in report["modules"].items():
            if error != "ok":
                line(f"{report['target']}: {module}: {error}")


def published(done: Run, dry_run: bool, as_json: bool) -> None:
    """`layerkit publish`: the plan with --dry-run, else what was done."""
    actions = [a for _, planned in done.plans for a in planned]
    if dry_run and as_json:
        print_json([a.as_dict() for a in actions])
    elif dry_run:
        publish_plan(actions)
    elif as_json:
        print_json({"outcomes": [o.as_dict() for o in done.outcomes], "api_calls": done.api_calls})
    else:
        publish_outcomes(done.outcomes)


def publish_plan(actions: list[Action]) -> None:
    for item in (a.as_dict() for a in actions):
        line(
            f"{item['region']}: {item['layer']}: {item['action']}"
            + (f" via {item['route']}" if item["route"] else f" ({item['existing_arn']})")
            + f"; grants: {', '.join(item['grants']) or 'none'}; "
            f"parameter: {item['parameter'] or 'none'}"
        )


def publish_outcomes(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        line(f"{o.region}: {o.layer}: {o.status}: {o.arn if o.status != 'failed' else o.error}")


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


def audited(done: Audit, as_json: bool, as_csv: bool) -> None:
    if as_json:
        print_json({**done.report.as_dict(), "api_calls": done.api_calls})
    elif as_csv:
        audit_csv(done.report)
    else:
        audit(done.report)


def audit(rep: Report) -> None:
    from rich.table import Table

    from layerkit.account.attach import KINDS

    usage: dict[str, list[str]] = {}
    for r in rep.references:
        usage.setdefault(r["arn"], []).append(f"{r['function']}:{r['version']} ({r['region']})")
    table = Table("layer version", "status", "functions")
    status = {r["arn"]: r["status"] for r in rep.references}
    for arn, functions in sorted(usage.items()):
        shown = ", ".join(functions[:5]) + (
            f" … +{len(functions) - 5}" if len(functions) > 5 else ""
        )
        table.add_row(arn, status[arn], f"{len(functions)}: {shown}")
    out.print(table)
    sections = [
        ("outdated", [f"{r['function']}:{r['version']} ({r['account']} {r['region']}) uses "
                      f"{r['layer']}:{r['layer_version']}, {r['behind']} behind {r['latest']}"
                      for r in rep.outdated]),
        ("deleted versions still in use", [f"{r['function']}:{r['version']} ({r['region']}) "
                                           f"uses {r['arn']}" for r in rep.deleted]),
        ("unused versions", [f"{r['arn']} ({mib(r.get('size', 0))})" for r in rep.unused]),
        ("other accounts' layers", [f"{owner}: {len(arns)} layer versions"
                                    for owner, arns in rep.foreign.items()]),
        ("at or near the 5-layer limit", [f"{r['function']} ({r['region']}): {r['layers']}"
                                          for r in rep.layer_limit]),
        ("at or near 250 MiB unzipped", [f"{r['function']} ({r['region']}): layers "
                                         f"{mib(r['layers_unzipped'])}; {r['note']}"
                                         for r in rep.oversize]),
        ("could not scan", [f"{r['account']} {r['region']}: {r['error']}" for r in rep.failures]),
        ("package matches", [f"{r['function']}:{r['version']} ({r['region']}) via {r['arn']}: "
                             f"{r['package']} {r['package_version']}" for r in rep.matches]),
        *((kind, [_finding(f) for f in rep.of_kind(kind)]) for kind in KINDS),
        ("vulnerable", [_vulnerable(v) for v in rep.vulnerable]),
    ]  # fmt: skip
    for title, lines in sections:
        if lines:
            out.print(f"[bold]{title}[/] ({len(lines)})")
            for text in lines:
                line(f"  {text}")
    freed = sum(r.get("size", 0) for r in rep.unused)
    out.print(f"unused versions take {mib(freed)} of code storage")


def _vulnerable(v: dict[str, Any]) -> str:
    fixed = f"fixed in {', '.join(v['fixed'])}" if v["fixed"] else "no fixed version yet"
    functions = [f"{f['function']}:{f['qualifier']} ({f['account']} {f['region']})"
                 for f in v["functions"]]  # fmt: skip
    shown = ", ".join(functions[:5]) + (f" … +{len(functions) - 5}" if len(functions) > 5 else "")
    return (
        f"{v['id']} ({v['severity']}) {v['package']} {v['version']}, {fixed}: "
        f"{len(v['layers'])} layer versions, {len(functions)} functions: {shown or 'none'}"
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
               "layer_version", "status", "behind", "arn", "findings", "reasons",
               "vulnerabilities"]  # fmt: skip
    advisories: dict[str, list[str]] = {}
    for v in rep.vulnerable:
        for arn in v["layers"]:
            advisories.setdefault(arn, []).append(f"{v['id']} {v['package']} {v['version']}")
    about: dict[tuple[str, str, str, str], list[Finding]] = {}
    for f in rep.findings:
        about.setdefault((f.account, f.region, f.function, f.qualifier), []).append(f)
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for r in rep.references:
        found = [
            f
            for f in about.get((r["account"], r["region"], r["function"], r["version"]), [])
            if f.layer in ("", r["arn"])
        ]
        kinds = sorted({f.kind for f in found})
        writer.writerow(
            {
                **r,
                "findings": ";".join(kinds),
                "reasons": " | ".join(f.reason for f in found),
                "vulnerabilities": ";".join(advisories.get(r["arn"], [])),
            }
        )


def rollout(results: list[dict[str, Any]], layer: str, as_json: bool = False) -> None:
    if as_json:
        print_json(results)
        return
    for r in results:
        why = f"; {r.get('error') or r.get('reason')}" if r.get("error") or r.get("reason") else ""
        where = f"{r['function']}:{r['alias']}" if r.get("alias") else r["function"]
        version = f" as version {r['version']}" if r.get("version") else ""
        weight = f" ({r['weight']:.0%} of traffic)" if r.get("weight") is not None else ""
        action = f" {r['action']}" if r.get("action") else ""
        line(f"{r['status']}{action}: {where} ({r['region']}){version}{weight} -> "
             f"{', '.join(r['layers'])}{why}")  # fmt: skip
    if not results:
        out.print(f"no function uses an older version of {layer}")


def prune(rows: list[dict[str, Any]], deleted: bool, as_json: bool = False) -> None:
    if as_json:
        freed = sum(r["size"] for r in rows)
        print_json({"deleted" if deleted else "would_delete": rows, "bytes_freed": freed})
        return
    for r in rows:
        out.print(f"{'deleted' if deleted else 'would delete'}: {r['arn']} ({mib(r['size'])})")
    verb = "freed" if deleted else "would free (run with --yes to delete)"
    freed = sum(r["size"] for r in rows)
    out.print(f"{len(rows)} versions, {mib(freed)} of code storage {verb}")


def inspection(report: dict[str, Any], as_json: bool = False) -> None:
    if as_json:
        print_json(report)
        return
    from rich.table import Table

    out.print(
        f"[bold]{report['path']}[/]  layer: {report['layer'] or '(no layerkit manifest)'}  "
        f"files: {report['files']}  unzipped: {mib(report['unzipped'])}  "
        f"zipped: {mib(report['zipped'])}  quota headroom: {mib(report['quota_headroom'])}"
    )
    out.print(
        f"Python: {', '.join(report['python_versions']) or 'any'}  "
        f"architectures: {', '.join(report['architectures'])}"
    )
    bytecode = report["bytecode"]
    caveat = {"timestamp": ", valid only where extraction keeps file times"}
    covered = [
        f"{tag} for {t['sources']}/{bytecode['sources']} sources ({t['kind']}"
        f"{caveat.get(t['kind'], '')})"
        for tag, t in bytecode["tags"].items()
    ]
    out.print(
        "bytecode: " + ("; ".join(covered) if covered else "none")
        if covered or not bytecode["sources"]
        else f"bytecode: none, so every cold start compiles its {bytecode['sources']} sources"
    )
    dists = Table("distribution", "version", "size", "site-packages")
    for d in report["distributions"]:
        dists.add_row(d["name"], d["version"], mib(d["size"]) if d["size"] else "?", d["site"])
    out.print(dists)
    largest = Table("largest files", "size")
    for f in report["largest_files"]:
        largest.add_row(f["path"], mib(f["size"]))
    out.print(largest)
    for problem in report["problems"]:
        err.print(f"[red]problem:[/] {problem}")
