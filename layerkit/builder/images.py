"""Which build image serves a target, and whether this engine can run its platform."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from layerkit.builder.container import (
    DOCKER_ARCHITECTURES,
    BuildContainer,
    ContainerEngine,
    DockerEngine,
    Run,
)
from layerkit.builder.index import IndexSettings
from layerkit.errors import ArchitectureError, ContainerError
from layerkit.recipe import BuildSettings, Recipe
from layerkit.settings import cascade
from layerkit.targets import Target


@dataclass
class Containers:
    """The build containers of one command: which image serves a target, and whether the
    engine can run its platform (asked once per platform, as emulation may be missing)."""

    env: Mapping[str, str]
    cache_root: Path
    index: IndexSettings
    image: str | None = None  # overrides the recipe's [build] image
    network: str | None = None  # overrides the recipe's [build] network
    connect: Callable[[Mapping[str, str]], ContainerEngine] = DockerEngine.connect
    _engine: ContainerEngine | None = field(default=None, init=False, repr=False)
    _runs_on: dict[str, bool] = field(default_factory=dict, init=False, repr=False)

    def engine(self) -> ContainerEngine:
        if self._engine is None:
            self._engine = self.connect(self.env)
        return self._engine

    def for_target(self, recipe: Recipe, target: Target) -> BuildContainer:
        """The target's build container; ContainerError when there can be none."""
        engine = self.engine()
        template = cascade(flag=self.image, recipe=recipe.build.image) or BuildSettings.image
        runtime = target.runtime
        image = template.format(
            runtime=runtime.name, python=runtime.python_version, arch=target.architecture
        )
        wanted = DOCKER_ARCHITECTURES[target.architecture]
        found = engine.image_architecture(image)
        if found != wanted:
            raise ArchitectureError(
                f"{image} is built for {found}, but {target.id} needs {wanted}: name an "
                f"image for {wanted} with --image"
            )
        platform_name = f"linux/{wanted}"
        if platform_name not in self._runs_on:
            # Another architecture runs only under emulation (binfmt/QEMU): try it once.
            try:
                engine.run(Run(image, "true", platform=platform_name, what="a test run"))
                self._runs_on[platform_name] = True
            except ContainerError:
                self._runs_on[platform_name] = False
        if not self._runs_on[platform_name]:
            raise ArchitectureError(
                f"this Docker engine cannot run {platform_name} containers (no binfmt/QEMU "
                "emulation)"
            )
        cert = self.index.cert
        return BuildContainer(
            engine=engine,
            image=image,
            python=target.runtime.python_version,
            platform=platform_name,
            network=cascade(flag=self.network, recipe=recipe.build.network),
            pip_cache=self.cache_root / "pip" / re.sub(r"[^A-Za-z0-9_.-]", "_", image),
            build_requirements=self.cache_root
            / "build-requirements"
            / re.sub(r"[^A-Za-z0-9_.-]", "_", f"{image}-{platform_name}"),
            ca_bundle=Path(cert) if cert else None,
            index_env=self.index.pip_env(),
        )
