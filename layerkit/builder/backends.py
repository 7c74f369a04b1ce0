"""Where a target is resolved and installed: from wheels on this host, or in its build image.

The choice is made once per target (`choose`) and then asked, never re-derived: the build
key and the manifest record its `name`, the installer asks it to compile what has no wheel,
and bytecode falls back to its interpreter. pypa/build picks `_PipBackend`/`_UvBackend`
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from layerkit import log
from layerkit.builder.compilers import Compiler, ImageCompiler
from layerkit.builder.context import Context, Strategy
from layerkit.builder.lockfile import Lock, LockedDist
from layerkit.errors import ArchitectureError, ContainerError, NoFittingWheelError, ResolutionError
from layerkit.recipe import Recipe, Slim
from layerkit.targets import Target

if TYPE_CHECKING:
    from layerkit.builder.container import BuildContainer
    from layerkit.builder.install import Installed


class Backend(Protocol):
    """How one target's distributions get installed."""

    @property
    def name(self) -> str:
        """'wheels' or the build image: part of the build key and the manifest."""

    @property
    def why(self) -> str:
        """Why this backend, for the build log."""

    @property
    def builds_sdists(self) -> bool:
        """Whether distributions without a fitting wheel can be built from source."""

    def compile_sdists(
        self, target: Target, files: dict[str, Path], dists: list[LockedDist], site: str, slim: Slim
    ) -> list[Installed]:
        """Build and install what has no wheel; wheels are unpacked on the host either way."""

    def compiler(self) -> Compiler | None:
        """A bytecode compiler of the target's Python when the host has none."""


@dataclass(frozen=True)
class Wheels:
    """Installs fitting wheels on this machine, without Docker; compiles nothing."""

    why: str
    name: str = "wheels"
    builds_sdists: bool = False

    def compile_sdists(
        self, target: Target, files: dict[str, Path], dists: list[LockedDist], site: str, slim: Slim
    ) -> list[Installed]:
        raise AssertionError("fetch picks sdists only for backends that build them")

    def compiler(self) -> Compiler | None:
        return None


@dataclass(frozen=True)
class InContainer:
    """Builds in the build image through Docker, where sdists can be compiled."""

    container: BuildContainer
    why: str
    cache_root: Path  # where compiled wheels are kept
    builds_sdists: bool = True

    @property
    def name(self) -> str:
        return self.container.image

    def compile_sdists(
        self, target: Target, files: dict[str, Path], dists: list[LockedDist], site: str, slim: Slim
    ) -> list[Installed]:
        from layerkit.builder.install import install_in_container  # only to compile

        return install_in_container(
            target.id, files, dists, self.container, site, slim, self.cache_root
        )

    def compiler(self) -> Compiler | None:
        return ImageCompiler(self.container)


def _container_for(
    recipe: Recipe, target: Target, ctx: Context, *, required: bool
) -> BuildContainer | None:
    """The target's build container, or None when wheels must do instead.

    An engine that cannot run the target's architecture is never fatal, unless the recipe
    compiles something (no-binary): it is said, and the target is built from wheels. Any
    other failure (no engine, no image) is fatal only when a container is required.
    """
    try:
        return ctx.containers.for_target(recipe, target)
    except ArchitectureError as exc:
        if recipe.no_binary:
            raise
        if ctx.first_time(f"architecture {target.id}"):
            log.warning("%s: %s; building %s from wheels", recipe.stem, exc, target.id)
    except ContainerError as exc:
        if required:
            raise
        log.debug("no build container for %s: %s", target.id, exc)
    return None


def resolve(
    recipe: Recipe,
    target: Target,
    ctx: Context,
    upgrade: bool,
    upgrade_packages: tuple[str, ...],
) -> Lock:
    """uv with wheels only, unless the recipe or the strategy needs the build image."""

    from layerkit.builder import lock  # resolving: never on a build whose locks are fresh

    def with_uv() -> Lock:
        return lock.resolve(
            recipe,
            target,
            ctx.index,
            upgrade=upgrade,
            upgrade_packages=upgrade_packages,
            uv_binary=ctx.uv_binary,
            env=ctx.env,
        )

    if ctx.strategy == Strategy.wheels or (ctx.strategy == Strategy.auto and not recipe.no_binary):
        try:
            return with_uv()
        except (ResolutionError, NoFittingWheelError) as exc:
            container = None
            if ctx.strategy == Strategy.auto:
                container = _container_for(recipe, target, ctx, required=False)
            if container is None:
                raise
            log.info("%s: not everything has a wheel, resolving in the build image:\n%s",
                     target.id, exc)  # fmt: skip
    else:
        container = _container_for(recipe, target, ctx, required=True)
        if container is None:
            return with_uv()
    return lock.resolve_in_container(
        recipe, target, container, upgrade=upgrade, upgrade_packages=upgrade_packages
    )


def choose(recipe: Recipe, target: Target, locked: Lock, ctx: Context) -> Backend:
    """Where the target is installed, and why."""
    if ctx.strategy == Strategy.wheels:
        return Wheels("wheels, as asked (--strategy wheels)")
    if recipe.no_binary:
        why = f"compiling {', '.join(recipe.no_binary)} from source (no-binary)"
    elif locked.strategy == "container":
        why = "the lock was resolved in the build image"
    elif ctx.strategy == Strategy.container:
        why = "as asked (--strategy container)"
    else:
        return Wheels("wheels: every locked distribution has a wheel for the target")
    required = ctx.strategy == Strategy.container or bool(recipe.no_binary)
    container = _container_for(recipe, target, ctx, required=required)
    if container is None:
        return Wheels("wheels: no build container for this target")
    return InContainer(container, f"{container.image}: {why}", ctx.cache_root)
