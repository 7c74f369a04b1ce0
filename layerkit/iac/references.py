"""Layer version ARNs as they are written in sources, and the one edit bump makes to them.

Sources are read as text, not parsed: one scanner serves YAML with short-form tags
(`!Sub`, which a plain YAML loader rejects), JSON, HCL, Python, TypeScript and `.env`
files alike, and the only bytes an edit changes are a version's digits.

The region, account and partition fields may be placeholders, as each tool writes them:
`${AWS::Region}` (Fn::Sub), `${var.region}` (Terraform), `${aws:region}` (Serverless),
`{self.region}` (a Python f-string), `${this.region}` (a JS template literal). A layer name
or version that is itself an expression (`…-${var.arch}:4`, `…:${var.version}`) is found
and reported as one bump cannot move, as is anything else that looks like a layer ARN but
is not one it understands: nothing that might be a reference is skipped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ${…} (Fn::Sub, Terraform, Serverless, JS template literals) or {…} (Python f-strings).
_PLACEHOLDER = r"\$\{[^}\n]*\}|\{[^}\n]*\}"
_ARN = re.compile(
    rf"arn:(?P<partition>aws(?:-[a-z]+)*|{_PLACEHOLDER})"
    rf":lambda:(?P<region>[a-z]{{2}}(?:-[a-z]+)+-\d+|{_PLACEHOLDER})"
    rf":(?P<account>\d{{12}}|{_PLACEHOLDER})"
    rf":layer:(?P<name>(?:[A-Za-z0-9_-]|{_PLACEHOLDER})+)"
    rf":(?P<version>\d+|{_PLACEHOLDER})(?![A-Za-z0-9_])"
)
# Anything shaped like a layer version ARN, understood or not: the safety net. Wildcards
# are patterns (an IAM policy's Resource), and a layer ARN without a version names no version.
_LOOSE = re.compile(
    r"arn:[^\s:\"'`*]{0,40}:lambda:[^\s\"'`*]{0,120}?:layer:[^\s\"'`*:]+:[^\s\"'`*]"
)
_NAME_OR_VERSION = re.compile(_PLACEHOLDER)
MARKER = b":layer:"  # a file without it has no reference: skipped without decoding


@dataclass(frozen=True)
class Written:
    """One layer version ARN as a source writes it."""

    line: int
    arn: str  # as written
    partition: str | None  # None: a placeholder (then it follows the region)
    region: str | None  # None: a placeholder (the regions the code deploys to)
    account: str | None  # None: a placeholder (the credentials' account)
    layer: str
    version: int | None  # None: an expression bump cannot move
    start: int  # where the version's digits are in the text
    end: int
    problem: str | None = None  # why bump cannot move it

    @property
    def placeholders(self) -> bool:
        return self.region is None or self.account is None


def _literal(value: str) -> str | None:
    return None if _NAME_OR_VERSION.fullmatch(value) else value


def find(text: str) -> list[Written]:
    """Every layer version ARN in the text, in order, with what bump cannot move."""
    found: list[Written] = []
    covered: set[int] = set()
    for match in _ARN.finditer(text):
        covered.add(match.start())
        name, version = match["name"], match["version"]
        problem = None
        if _NAME_OR_VERSION.search(name):
            problem = f"the layer name {name!r} is an expression"
        elif not version.isdigit():
            problem = f"the version {version!r} is an expression"
        found.append(
            Written(
                line=text.count("\n", 0, match.start()) + 1,
                arn=match[0],
                partition=_literal(match["partition"]),
                region=_literal(match["region"]),
                account=_literal(match["account"]),
                layer=name,
                version=int(version) if version.isdigit() else None,
                start=match.start("version"),
                end=match.end("version"),
                problem=problem,
            )
        )
    for loose in _LOOSE.finditer(text):
        if loose.start() in covered:
            continue
        line_end = text.find("\n", loose.start())
        shown = text[loose.start() : line_end if line_end != -1 else len(text)].strip()[:160]
        found.append(
            Written(
                line=text.count("\n", 0, loose.start()) + 1,
                arn=shown,
                partition=None,
                region=None,
                account=None,
                layer="?",
                version=None,
                start=loose.start(),
                end=loose.start(),
                problem="it looks like a layer ARN but is not one bump can read",
            )
        )
    return sorted(found, key=lambda w: w.start)


def rewrite(text: str, versions: dict[Written, int]) -> str:
    """The text with each reference's version replaced; every other byte kept."""
    pieces, position = [], 0
    for written in sorted(versions, key=lambda w: w.start):
        pieces += [text[position : written.start], str(versions[written])]
        position = written.end
    pieces.append(text[position:])
    return "".join(pieces)
