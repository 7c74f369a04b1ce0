"""`layerkit bump`: move the layer version ARNs written in IaC sources to the newest version.

The sources are found and rewritten by `layerkit.iac`; this room decides each reference's
version from the account, asking each question once:

- a layer of the credentials' account: one paginated ListLayerVersions per (layer, region);
- another account's layer (the most referenced ones are public layers such as
  Powertools'), which cannot be listed: GetLayerVersion probed upward from the referenced
  version, doubling and then bisecting, so that a handful of calls finds the newest version
  the caller may use. "Not found" and "access denied" are the same answer there, and a gap
  of deleted versions could hide a newer one: the result says so.

A placeholder region stands for every region the code deploys to: those given with
--region, else those the registry saw the layer published in. Where they disagree on the
newest version, the reference is refused, not guessed. Nothing that cannot be known is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from layerkit.account.clients import Clients
from layerkit.account.gateways import Layers
from layerkit.account.model import LayerArn, partition_of
from layerkit.files import atomic
from layerkit.iac.references import Written, find, rewrite
from layerkit.iac.sources import Source, Sources

MAX_WORKERS = 8


class Status(str, Enum):
    current = "current"  # already the newest (or the --to version)
    behind = "behind"  # a newer version exists (--check, --dry-run: not written)
    bumped = "bumped"  # rewritten
    refused = "refused"  # left as it is: the regions disagree, or it cannot be moved
    unknown = "unknown"  # the newest version cannot be known from these credentials
    skipped = "skipped"  # the file could not be read or changed while bump ran


@dataclass(frozen=True)
class Bump:
    """One reference in one file, and what bump made of it."""

    path: Path
    line: int
    arn: str  # as written
    layer: str
    regions: tuple[str, ...]
    current: int | None
    to: int | None
    status: Status
    why: str | None = None
    written: Written | None = None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Question:
    region: str
    account: str
    layer: str
    start: int  # the referenced version: where a probe of another account's layer begins


@dataclass(frozen=True)
class Answer:
    newest: int | None
    why: str | None = None  # why newest is None, or what to keep in mind about it
    versions: frozenset[int] | None = None  # own layers: every version that exists


class Newest:
    """The newest version of each layer in each region, each asked once."""

    def __init__(self, clients: Clients, caller: str) -> None:
        self.clients, self.caller = clients, caller

    def answer(self, question: Question) -> Answer:
        layers = Layers(self.clients, question.region)
        if question.account == self.caller:
            versions = frozenset(v.arn.version for v in layers.versions(question.layer))
            if not versions:
                return Answer(
                    None, f"account {self.caller} has no layer {question.layer} in "
                    f"{question.region}",
                )  # fmt: skip
            return Answer(max(versions), versions=versions)
        arn = LayerArn(question.region, question.account, question.layer, question.start)
        newest = probe(layers.available, arn)
        if newest is None:
            return Answer(
                None, f"{arn} is not available to these credentials (deleted, or not shared "
                "with you), so the versions after it cannot be found",
            )  # fmt: skip
        return Answer(
            newest, f"another account's layer: {newest} is the newest these credentials may "
            "use; a gap of deleted versions would hide any after it",
        )  # fmt: skip


def probe(available: Callable[[LayerArn], bool], arn: LayerArn) -> int | None:
    """The newest available version from arn's upward: double the step until a version is
    missing, then bisect. None when arn's own version is not available."""
    if not available(arn):
        return None
    found, step = arn.version, 1
    while available(arn.at(arn.version + step)):
        found, step = arn.version + step, step * 2
    missing = arn.version + step
    while missing - found > 1:
        middle = (found + missing) // 2
        if available(arn.at(middle)):
            found = middle
        else:
            missing = middle
    return found


def _question(region: str, written: Written, caller: str) -> Question:
    """What to ask of the account for a reference: the caller's layers are listed once per
    (layer, region), whichever version each reference names; another account's are probed
    from the version referenced."""
    account = written.account or caller
    start = 0 if account == caller else (written.version or 1)
    return Question(region, account, written.layer, start)


def _regions(
    written: Written, flags: list[str], published: dict[str, list[str]]
) -> tuple[str, ...]:
    if written.region is not None:
        return (written.region,)
    return tuple(flags or published.get(written.layer, ()))


def plan(
    sources: Sources,
    clients: Clients,
    *,
    regions: list[str],
    published: dict[str, list[str]],
    layers: set[str],
    to: int | None,
) -> list[Bump]:
    """What bump would do with every reference in the sources, unwritten."""
    found = [
        (source, w)
        for source in sources.read
        for w in find(source.text)
        if not layers or w.layer in layers
    ]
    bumps = [
        Bump(s.path, 0, "", "?", (), None, None, Status.skipped, s.why) for s in sources.skipped
    ]
    movable = [(s, w) for s, w in found if w.problem is None]
    caller = clients.account() if movable else ""
    questions = {
        _question(region, w, caller)
        for _, w in movable
        for region in _regions(w, regions, published)
    }
    newest = Newest(clients, caller)
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, max(1, len(questions)))) as pool:
        answers = dict(zip(questions, pool.map(newest.answer, questions), strict=True))
    for source, w in found:
        base = Bump(
            source.path, w.line, w.arn, w.layer, _regions(w, regions, published),
            w.version, None, Status.refused, w.problem, w,
        )  # fmt: skip
        if w.problem is None:
            base = _decide(base, w, answers, caller, to)
        bumps.append(base)
    return bumps


def _decide(
    bump: Bump,
    written: Written,
    answers: dict[Question, Answer],
    caller: str,
    to: int | None,
) -> Bump:
    assert written.version is not None
    if not bump.regions:
        return replace(
            bump, status=Status.unknown,
            why="the region is a placeholder and no region is known for this layer: give "
            "the regions the code deploys to with --region",
        )  # fmt: skip
    if written.partition is not None and any(
        partition_of(r) != written.partition for r in bump.regions
    ):
        return replace(bump, why=f"partition {written.partition} does not hold {bump.regions}")
    per_region = {r: answers[_question(r, written, caller)] for r in bump.regions}
    unknown = [a.why for a in per_region.values() if a.newest is None]
    if unknown:
        return replace(bump, status=Status.unknown, why="; ".join(sorted(set(map(str, unknown)))))
    if to is not None:
        absent = [
            r for r, a in per_region.items() if a.versions is not None and to not in a.versions
        ]
        if absent or any(a.versions is None and (a.newest or 0) < to for a in per_region.values()):
            where = ", ".join(absent) or "a region these credentials can read"
            return replace(bump, why=f"--to {to}: that version is not available in {where}")
        return _moved(bump, written, to, None)
    newest = {r: a.newest for r, a in per_region.items()}
    if len(set(newest.values())) > 1:
        spread = ", ".join(f"{r} has {v}" for r, v in sorted(newest.items()))
        return replace(
            bump, why=f"the regions disagree on the newest version ({spread}): one ARN "
            "cannot be right in all of them. Align them with `layerkit publish "
            "--align-versions`, or give --region for the regions this code deploys to",
        )  # fmt: skip
    target = next(iter(newest.values()))
    assert target is not None
    if written.version > target:
        return replace(
            bump, status=Status.unknown, to=target,
            why=f"version {written.version} is newer than the newest available ({target})",
        )  # fmt: skip
    notes = {a.why for a in per_region.values() if a.why}
    gone = [r for r, a in per_region.items() if a.versions and written.version not in a.versions]
    if gone:
        notes.add(f"version {written.version} no longer exists in {', '.join(gone)}")
    return _moved(bump, written, target, "; ".join(sorted(notes)) or None)


def _moved(bump: Bump, written: Written, target: int, note: str | None) -> Bump:
    status = Status.current if written.version == target else Status.behind
    return replace(bump, to=target, status=status, why=note)


def apply(bumps: list[Bump], sources: Sources) -> list[Bump]:
    """Rewrite each file that has references behind; a file that changed while bump ran is
    left as it is. Each file is replaced whole (atomically), keeping its mode."""
    by_path = {s.path: s for s in sources.read}
    done = []
    per_file: dict[Path, list[Bump]] = {}
    for b in bumps:
        if b.status == Status.behind:
            per_file.setdefault(b.path, []).append(b)
        else:
            done.append(b)
    for path, behind in per_file.items():
        done += _write(by_path[path], behind)
    return done


def _write(source: Source, behind: list[Bump]) -> list[Bump]:
    new = rewrite(source.text, {b.written: b.to for b in behind if b.written and b.to})
    try:
        mode = os.stat(source.path).st_mode & 0o7777
        if source.path.read_bytes() != source.data:
            why = "the file changed while bump ran: run bump again"
            return [replace(b, status=Status.skipped, why=why) for b in behind]
        with atomic(source.path, mode) as handle:
            handle.write(new.encode("utf-8"))
    except OSError as exc:
        why = f"cannot be written: {exc.strerror or exc}"
        return [replace(b, status=Status.skipped, why=why) for b in behind]
    return [replace(b, status=Status.bumped) for b in behind]


def published_regions(versions: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Layer -> the regions it is published in, from the registry's (layer, region) rows."""
    found: dict[str, list[str]] = {}
    for layer, region in sorted(set(versions)):
        found.setdefault(layer, []).append(region)
    return found
