"""What spans both wings: a build followed by a publish.

The build wing never talks to AWS and the account wing never builds; a command that does
both (`layerkit publish RECIPE`) is composed here, above them, from each wing's own
functions. Nothing else lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from layerkit.account.clients import Clients
from layerkit.account.publish import Layer, Run, layer_from_zip, run
from layerkit.builder.context import Context
from layerkit.builder.pipeline import build_recipe
from layerkit.recipe import PublishSettings, recipes_named
from layerkit.registry import Registry
from layerkit.settings import (
    ALIGN_VERSIONS,
    GUARD_STALE_SECONDS,
    PUBLIC,
    S3_BUCKET,
    SIGNING_PROFILE,
    SIGNING_WAIT_SECONDS,
    resolve,
)


@dataclass(frozen=True)
class PublishFlags:
    """The publish options given on the command line, over each recipe's [publish]."""

    s3_bucket: str | None = None
    align_versions: bool = False
    public: bool = False
    signing_profile: str | None = None
    signing_wait: float | None = None


def build_and_publish(
    names: list[str],
    *,
    recipes_dir: Path,
    out_dir: Path,
    ctx: Context,
    clients: Clients,
    regions: list[str] | None,
    dry_run: bool,
    create_bucket: bool,
    registry: Registry,
    direct_limit: int,
    flags: PublishFlags = PublishFlags(),
) -> Run:
    """`layerkit publish`: ZIPs as they are, and recipes built first with --locked (a
    publish never resolves anew); every layer then published with its recipe's settings."""
    work: list[tuple[Layer, PublishSettings]] = [
        (layer_from_zip(Path(n)), PublishSettings()) for n in names if n.endswith(".zip")
    ]
    recipe_names = [n for n in names if not n.endswith(".zip")]
    if recipe_names or not names:
        for recipe in recipes_named(recipe_names, recipes_dir):
            for artifact in build_recipe(recipe, ctx, out_dir, locked=True):
                work.append((layer_from_zip(artifact.path), recipe.publish))
    work = [
        (layer, replace(
            settings,
            s3_bucket=resolve(S3_BUCKET, ctx.env, flag=flags.s3_bucket,
                              recipe=settings.s3_bucket),
            align_versions=resolve(ALIGN_VERSIONS, ctx.env, flag=flags.align_versions or None,
                                   recipe=settings.align_versions or None),
            public=resolve(PUBLIC, ctx.env, flag=flags.public or None,
                           recipe=settings.public or None),
            signing_profile=resolve(SIGNING_PROFILE, ctx.env, flag=flags.signing_profile,
                                    recipe=settings.signing_profile),
        ))
        for layer, settings in work
    ]  # fmt: skip
    return run(
        work, clients=clients, regions=regions, dry_run=dry_run, create_bucket=create_bucket,
        registry=registry, stale_after=resolve(GUARD_STALE_SECONDS, ctx.env),
        direct_limit=direct_limit,
        signing_wait=resolve(SIGNING_WAIT_SECONDS, ctx.env, flag=flags.signing_wait),
    )  # fmt: skip
