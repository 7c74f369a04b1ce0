"""Containers: a small engine interface, and the Docker engine behind it.

Every container layerkit starts carries the label `layerkit` and is removed on every
path out of `run`: success, failure, Ctrl-C (KeyboardInterrupt) and SIGTERM (the CLI
turns it into KeyboardInterrupt).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from layerkit import log
from layerkit.errors import (
    CommandFailedError,
    ContainerError,
    ImageMissingError,
)
from layerkit.redaction import redact

if TYPE_CHECKING:
    import docker


LABEL = "layerkit"
RUN_LABEL = "layerkit.run"
_TAIL_LINES = 30
# Docker's names for the architectures, as in `docker image inspect` and --platform.
DOCKER_ARCHITECTURES = {"x86_64": "amd64", "arm64": "arm64"}


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class Run:
    """One command in one container."""

    image: str
    script: str  # run by /bin/sh -c
    mounts: tuple[Mount, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None  # e.g. linux/arm64
    network: str | None = None  # e.g. host
    what: str = "the command"  # for messages: "pip install", "pip-compile"


class ContainerEngine(Protocol):
    def version(self) -> str: ...

    def image_architecture(self, image: str) -> str:
        """Docker's name for the image's architecture; ImageMissingError when absent."""
        ...

    def run(self, run: Run) -> str:
        """Run to completion and return the output; CommandFailedError on failure."""
        ...


class DockerEngine:
    """The Docker engine through docker-py: DOCKER_HOST, or the current docker context."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    @classmethod
    def connect(cls, env: Mapping[str, str]) -> DockerEngine:
        import docker
        from docker.errors import DockerException

        try:
            if env.get("DOCKER_HOST"):
                client = docker.DockerClient(base_url=env["DOCKER_HOST"])
            else:
                from docker.context import ContextAPI

                context = ContextAPI.get_current_context()
                client = docker.DockerClient(base_url=context.Host if context else None)
            client.ping()
        except DockerException as exc:
            raise ContainerError(
                f"No Docker engine answers ({exc}). Start Docker (or set DOCKER_HOST), or "
                "build without it: `--strategy wheels`."
            ) from None
        return cls(client)

    def version(self) -> str:
        return str(self.client.version().get("Version", "unknown"))

    def image_architecture(self, image: str) -> str:
        from docker.errors import ImageNotFound

        try:
            return str(self.client.images.get(image).attrs.get("Architecture", "unknown"))
        except ImageNotFound:
            raise ImageMissingError(image) from None

    def run(self, run: Run) -> str:
        from docker.errors import APIError

        self.image_architecture(run.image)  # a clear error before anything starts
        volumes = {
            str(m.source): {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
            for m in run.mounts
        }
        options: dict[str, Any] = {
            "volumes": volumes,
            "environment": dict(run.env),
            # The run's own label finds its container when an interrupt lands while Docker
            # is creating it, before create() has returned it.
            "labels": {LABEL: "build", RUN_LABEL: uuid.uuid4().hex},
            "working_dir": "/work",
            # Build and runtime images differ in entrypoints (the Lambda ones start the
            # runtime interface client): every command runs through sh instead.
            "entrypoint": ["/bin/sh", "-c"],
        }
        if run.platform:
            options["platform"] = run.platform
        if run.network:
            options["network_mode"] = run.network
        log.debug("running in %s: %s", run.image, run.script)
        try:
            container = self.client.containers.create(run.image, [run.script], **options)
        except APIError as exc:
            raise ContainerError(f"Docker refused to create a container: {exc}") from None
        except BaseException:  # Ctrl-C or SIGTERM during the call: Docker may have made it
            self._remove_run(options["labels"][RUN_LABEL])
            raise
        try:
            container.start()
            status = container.wait()
            logs: bytes = container.logs(stdout=True, stderr=True)
            output = logs.decode("utf-8", "replace")
        finally:
            container.remove(force=True)
        code = int(status.get("StatusCode", 1))
        if code != 0:
            raise CommandFailedError(run.what, run.image, code, redact(tail(output)))
        return output

    def _remove_run(self, run_id: str) -> None:
        found = self.client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
        for container in found:
            container.remove(force=True)


def tail(output: str) -> str:
    """The last lines worth reading: pip's and the compiler's, without Python tracebacks
    (pip-tools ends a failed build with one), whose final summary line is kept."""
    kept: list[str] = []
    in_traceback = False
    for line in output.strip().splitlines():
        if line.startswith("Traceback (most recent call last):"):
            in_traceback = True
        elif in_traceback and not line.startswith((" ", "\t")):
            in_traceback = False
            kept.append(line)
        elif not in_traceback and not line.startswith("The above exception was"):
            kept.append(line)
    return "\n".join([line for line in kept if line.strip()][-_TAIL_LINES:])


PIP_TOOLS = "pip-tools==7.6.2"


BUILD_REQUIREMENTS = "/layerkit/build-requirements"


@dataclass(frozen=True)
class BuildContainer:
    """Where a target is resolved and compiled: its image, mounts, network and index."""

    engine: ContainerEngine
    image: str
    python: str  # "3.12": the image must run exactly this Python
    platform: str  # linux/amd64 or linux/arm64
    network: str | None
    pip_cache: Path  # on the host, one per image and architecture
    ca_bundle: Path | None
    index_env: Mapping[str, str]
    # on the host: wheels of the build requirements (setuptools…) that compiling sdists
    # needs, kept so that compiling again needs no index (BUILD_REQUIREMENTS inside)
    build_requirements: Path

    @property
    def offline(self) -> bool:
        return self.network == "none"

    def run(self, work: Path, script: str, what: str) -> str:
        """Run a shell script with /work mounted; every file it makes belongs to the caller."""
        self.pip_cache.mkdir(parents=True, exist_ok=True)
        self.build_requirements.mkdir(parents=True, exist_ok=True)
        mounts = [
            Mount(work, "/work"),
            Mount(self.pip_cache, "/layerkit/pip-cache"),
            Mount(self.build_requirements, BUILD_REQUIREMENTS),
        ]
        env = {
            **self.index_env,
            "PIP_CACHE_DIR": "/layerkit/pip-cache",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_ROOT_USER_ACTION": "ignore",
        }
        if not log.debugging():
            env["PIP_QUIET"] = "1"  # with --debug, pip says what it downloads and builds
        if self.ca_bundle is not None:
            mounts.append(Mount(self.ca_bundle, "/layerkit/ca.pem", read_only=True))
            env.update(PIP_CERT="/layerkit/ca.pem", SSL_CERT_FILE="/layerkit/ca.pem")
        want = self.python
        prelude = (
            "set -e\n"
            f"trap 'chown -R {os.getuid()}:{os.getgid()} /work /layerkit/pip-cache "
            f"{BUILD_REQUIREMENTS}' EXIT\n"
            "have=$(python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])')\n"
            f'if [ "$have" != "{want}" ]; then\n'
            f'  echo "{self.image} runs Python $have, the target needs Python {want}: '
            f'use an image with Python {want} (--image)" >&2; exit 97\n'
            "fi\n"
        )
        output = self.engine.run(
            Run(
                image=self.image,
                script=prelude + script,
                mounts=tuple(mounts),
                env=env,
                platform=self.platform,
                network=self.network,
                what=what,
            )
        )
        log.debug("%s in %s:\n%s", what, self.image, redact(output))
        return output
