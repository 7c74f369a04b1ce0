"""The command line's vocabulary: every option and argument the commands share, with its
help, so that the same flag means the same thing in every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from layerkit.builder.context import Strategy
from layerkit.settings import IndexStrategy as IndexStrategyChoice

RecipesArg = Annotated[
    list[str] | None,
    typer.Argument(help="Recipe files or names in --recipes-dir; none means every recipe."),
]
RecipesDir = Annotated[Path, typer.Option(help="Where recipes are found by name.")]
OutDir = Annotated[Path, typer.Option("--out-dir", "-o", help="Where ZIPs go.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Upgrade = Annotated[bool, typer.Option(help="Resolve every package to its newest version.")]
UpgradePackage = Annotated[
    list[str] | None,
    typer.Option("--upgrade-package", "-P", help="Upgrade this package only (repeatable)."),
]
IndexUrl = Annotated[
    str | None, typer.Option(help="Package index (default: pip's configuration, then PyPI).")
]
ExtraIndexUrl = Annotated[list[str] | None, typer.Option(help="Additional index (repeatable).")]
StrategyOption = Annotated[
    Strategy,
    typer.Option(
        help="wheels: fitting wheels only, no Docker. container: resolve and compile in the "
        "build image. auto: container when Docker is there and something needs compiling."
    ),
]
Image = Annotated[
    str | None,
    typer.Option(
        help="Build image, overriding the recipe's; {runtime}, {python} and {arch} are "
        "filled in (default public.ecr.aws/sam/build-{runtime}:latest-{arch})."
    ),
]
Network = Annotated[
    str | None, typer.Option(help="Docker network mode for build containers, e.g. host.")
]
RequireBytecode = Annotated[
    bool,
    typer.Option(
        "--require-bytecode",
        help="Fail instead of warning when no interpreter of a target's Python can compile "
        "its bytecode (for CI; or LAYERKIT_REQUIRE_BYTECODE=1).",
    ),
]
CaBundle = Annotated[
    str | None, typer.Option(help="CA bundle for TLS-intercepting proxies (default: PIP_CERT).")
]
RuntimeImage = Annotated[
    str | None,
    typer.Option(
        "--runtime-image",
        help="Image to import in; {runtime}, {python} and {arch} are filled in "
        "(default public.ecr.aws/lambda/python:{python}-{arch}).",
    ),
]
Native = Annotated[
    bool,
    typer.Option(help="Import with this host's pythonX.Y instead of in the runtime image."),
]
Regions = Annotated[
    list[str] | None,
    typer.Option("--region", help="AWS region (repeatable); default: the recipe's, then AWS's."),
]
Profile = Annotated[str | None, typer.Option(help="AWS profile (default: the standard chain).")]
RegistryPath = Annotated[
    Path | None,
    typer.Option("--registry", help="SQLite registry (default ~/.local/share/layerkit)."),
]
RoleArns = Annotated[
    list[str] | None,
    typer.Option("--role-arn", help="Also scan the account of this role (repeatable)."),
]
OwnerTags = Annotated[
    list[str] | None,
    typer.Option(
        "--owner-tag",
        help="A tag key that marks who deploys a function, e.g. Terraform's default_tags "
        "ManagedBy (repeatable, or LAYERKIT_OWNER_TAGS=K1,K2); CloudFormation stacks are "
        "known without it.",
    ),
]
AllowDrift = Annotated[
    bool,
    typer.Option(
        "--allow-drift",
        help="Also move functions a stack or Terraform owns (their next deploy undoes it).",
    ),
]
Organization = Annotated[
    bool, typer.Option("--organization", help="Scan every account of the AWS Organization.")
]
RoleName = Annotated[str, typer.Option(help="Role assumed in each organization account.")]
CheckOnly = Annotated[
    bool, typer.Option("--check", help="Only check that every lock is fresh; write nothing.")
]
Locked = Annotated[
    bool, typer.Option(help="Refuse a missing or stale lock instead of writing it (for CI).")
]
Verify = Annotated[
    bool, typer.Option("--verify", help="Then import every module in the runtime image.")
]
DryRun = Annotated[bool, typer.Option(help="Show the plan; change nothing.")]
S3Bucket = Annotated[
    str | None,
    typer.Option(help="Bucket for ZIPs over 50 MB; {region} is filled in (or LAYERKIT_S3_BUCKET)."),
]
CreateBucket = Annotated[bool, typer.Option(help="Create that bucket if missing.")]
DirectUploadLimit = Annotated[
    int, typer.Option(hidden=True, help="Bytes above which uploads go through S3.")
]
Package = Annotated[
    str | None, typer.Option(help='Functions shipping a matching distribution: "urllib3<2.2.2".')
]
FailOn = Annotated[
    str | None,
    typer.Option(
        help="Exit 7 when found (any of): outdated, deleted, oversize, incompatible, "
        "deprecated, shadowed, unsigned, exposed, vulnerable (which checks --vulnerabilities)."
    ),
]
AsCsv = Annotated[bool, typer.Option("--csv", help="Print every reference as CSV.")]
LayerName = Annotated[str, typer.Argument(help="The layer name (in the scanned accounts).")]
ToVersion = Annotated[int | None, typer.Option("--to", help="Version (default: the latest).")]
Only = Annotated[list[str] | None, typer.Option(help="Only these functions.")]
Exclude = Annotated[list[str] | None, typer.Option(help="Not these functions.")]
Parallel = Annotated[int, typer.Option(help="Functions updated at once.")]
Keep = Annotated[int, typer.Option(help="Never delete the newest N versions.")]
Yes = Annotated[bool, typer.Option("--yes", help="Delete; without it, only show.")]
Aliases = Annotated[
    bool,
    typer.Option(
        "--aliases",
        help="Also move the aliases that serve traffic: publish a version with the new layer "
        "and point each alias at it (refused when $LATEST holds unreleased changes).",
    ),
]
Canary = Annotated[
    float | None,
    typer.Option(
        help="With --aliases: send PERCENT of each alias's traffic to the new version, "
        "leaving the alias on its own."
    ),
]
Promote = Annotated[
    bool, typer.Option("--promote", help="Move canaried aliases fully onto their new version.")
]
Abort = Annotated[
    bool, typer.Option("--abort", help="End canaries: aliases stay on the version they serve.")
]
IndexStrategy = Annotated[
    IndexStrategyChoice | None,
    typer.Option(
        help="first-index (default): each project from the first index that has it, against "
        "dependency confusion. unsafe-best-match: any version from any index. Or set "
        "LAYERKIT_INDEX_STRATEGY (read by every command).",
    ),
]
Vulnerabilities = Annotated[
    bool,
    typer.Option(
        "--vulnerabilities",
        help="Check every distribution of every layer version in use against OSV.",
    ),
]
OsvDb = Annotated[
    Path | None,
    typer.Option(
        "--osv-db",
        help="Check offline against OSV's PyPI export (a folder of advisories, or all.zip) "
        "instead of OSV's API (LAYERKIT_OSV_URL for a mirror).",
    ),
]
BuildAudit = Annotated[
    bool,
    typer.Option(
        "--audit",
        help="Refuse to build (exit 7) when a lock ships a known vulnerability (OSV); "
        "also `[build] audit = true` in a recipe.",
    ),
]
SbomFormat = Annotated[str, typer.Option("--format", help="json or xml (CycloneDX 1.6).")]
LayerRef = Annotated[
    str,
    typer.Argument(
        help="A layer ZIP, or a published layer as the registry records it: NAME (its newest "
        "version) or NAME:VERSION."
    ),
]
