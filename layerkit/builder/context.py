"""The collaborators of a lock or build, made once per command from its settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from layerkit.builder.interpreters import Interpreter, find_interpreter
from layerkit.settings import CACHE_DIR, INDEX_STRATEGY, REQUIRE_BYTECODE, resolve

if TYPE_CHECKING:
    from layerkit import osv
    from layerkit.builder.images import Containers
    from layerkit.builder.index import PackageIndex, WheelCache

Reporter = Callable[[str, str], None]


class Strategy(str, Enum):
    """Where targets are resolved and installed: chosen once, per command."""

    auto = "auto"  # wheels on the host; the build image when something must be compiled
    wheels = "wheels"  # fitting wheels only, no Docker
    container = "container"  # resolve and compile in the target's build image


@dataclass
class Context:
    """Collaborators of a build, made once per command, each when first needed: a build
    whose locks and artifacts are current reads no pip configuration and starts no engine."""

    cache_root: Path
    env: dict[str, str]
    index_url: str | None = None  # --index-url, over pip's configuration
    extra_index_urls: tuple[str, ...] = ()
    ca_bundle: str | None = None
    index_strategy: str = "first-index"  # resolved: flag, LAYERKIT_INDEX_STRATEGY, default
    image: str | None = None  # overrides the recipe's [build] image
    network: str | None = None  # overrides the recipe's [build] network
    report: Reporter = field(default=lambda label, message: None)
    strategy: Strategy = Strategy.auto
    require_bytecode: bool = False  # no interpreter for a target's Python is an error
    audit: bool = False  # check every lock against OSV before building (or [build] audit)
    osv_db: Path | None = None  # OSV's offline export; None asks OSV's API
    _said: set[str] = field(default_factory=set, init=False, repr=False)
    _interpreters: dict[str, Interpreter | None] = field(
        default_factory=dict, init=False, repr=False
    )
    _osv: osv.Source | None = field(default=None, init=False, repr=False)

    @cached_property
    def uv_binary(self) -> str:
        """uv's executable, looked up when first needed (a no-op build never runs it)."""
        from uv import find_uv_bin

        return find_uv_bin()

    @cached_property
    def index(self) -> PackageIndex:
        """The package index, from pip's configuration and the flags."""
        from layerkit.builder.index import PackageIndex, settings_from

        return PackageIndex(
            settings_from(
                self.env, self.index_url, self.extra_index_urls, self.ca_bundle,
                self.index_strategy,
            )
        )  # fmt: skip

    @cached_property
    def containers(self) -> Containers:
        from layerkit.builder.images import Containers

        return Containers(
            self.env, self.cache_root, self.index.settings, image=self.image, network=self.network
        )

    @property
    def wheels(self) -> WheelCache:
        from layerkit.builder.index import WheelCache

        return WheelCache(self.cache_root)

    def first_time(self, what: str) -> bool:
        """True the first time it is asked about `what`: a warning is said once per command,
        though locking and building ask the same question."""
        if what in self._said:
            return False
        self._said.add(what)
        return True

    def vulnerabilities(self) -> osv.Source:
        """OSV, made once per command: an offline export is read once for every recipe."""
        if self._osv is None:
            from layerkit import osv

            self._osv = osv.source(self.osv_db, self.env, self.cache_root)
        return self._osv

    def interpreter(self, python: str) -> Interpreter | None:
        """This host's CPython `python` ("3.11"), looked for once per command."""
        if python not in self._interpreters:
            self._interpreters[python] = find_interpreter(
                python, self.env, self.cache_root, lambda: self.uv_binary
            )
        return self._interpreters[python]

    @classmethod
    def from_environment(
        cls,
        env: Mapping[str, str],
        *,
        index_url: str | None = None,
        extra_index_urls: tuple[str, ...] = (),
        ca_bundle: str | None = None,
        report: Reporter | None = None,
        strategy: Strategy = Strategy.auto,
        image: str | None = None,
        network: str | None = None,
        require_bytecode: bool = False,
        index_strategy: str | None = None,
        audit: bool = False,
        osv_db: Path | None = None,
    ) -> Context:
        ctx = cls(
            cache_root=resolve(CACHE_DIR, env),
            env=dict(env),
            index_url=index_url,
            extra_index_urls=extra_index_urls,
            ca_bundle=ca_bundle,
            # resolved now, so that a bad variable is named before any work
            index_strategy=resolve(INDEX_STRATEGY, env, flag=index_strategy),
            image=image,
            network=network,
            report=report or (lambda label, message: None),
            strategy=strategy,
            require_bytecode=resolve(REQUIRE_BYTECODE, env, flag=require_bytecode or None),
            audit=audit,
            osv_db=osv_db,
        )
        if osv_db is not None:
            ctx.vulnerabilities()  # a bad --osv-db is named before any work
        return ctx
