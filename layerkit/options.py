"""The command line's vocabulary: every option and argument the commands share, with its
help, so that the same flag means the same thing in every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from layerkit.build import Strategy

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
        envvar="LAYERKIT_REQUIRE_BYTECODE",
        help="Fail instead of warning when no interpreter of a target's Python can compile "
        "its bytecode (for CI).",
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
Organization = Annotated[
    bool, typer.Option("--organization", help="Scan every account of the AWS Organization.")
]
RoleName = Annotated[str, typer.Option(help="Role assumed in each organization account.")]
