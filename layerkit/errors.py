"""Every failure layerkit reports, and every exit code it uses.

The CLI turns a LayerkitError into one paragraph and its exit code in one place
(cli.app.main); everything else raises. A command that finishes but reports a failure (a
region that failed, a gate that found something) exits with one of these codes too.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # a LayerkitError without a more precise kind
    USER = 2  # the user's input is wrong (recipe, lock, arguments): fix it and run again
    CANNOT_BUILD = 3  # the layer cannot be built as asked, or a layer has problems
    INTEGRITY = 4  # a downloaded or cached file does not match the lock's hash
    TOOL = 5  # a tool, Docker or the network failed (uv, the engine, the package index)
    AWS = 6  # AWS refused or failed (a region, an account)
    GATE = 7  # `audit --fail-on` found what it gates on; `rollout` refused a change;
    # `build --audit` found a known vulnerability


class LayerkitError(Exception):
    exit_code = ExitCode.FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UserError(LayerkitError):
    """Input the user can fix: a recipe, a lock, an argument."""

    exit_code = ExitCode.USER


class RecipeError(UserError):
    def __init__(self, path: str, key: str, problem: str) -> None:
        self.path, self.key, self.problem = path, key, problem
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {problem}")


class StaleLockError(UserError):
    def __init__(self, lock_path: str, reason: str, fix: str) -> None:
        self.lock_path = lock_path
        super().__init__(f"{lock_path} {reason}. Run `{fix}` and commit the lock file.")


class BuildError(LayerkitError):
    """The layer cannot be built as asked."""

    exit_code = ExitCode.CANNOT_BUILD


class NoFittingWheelError(BuildError):
    def __init__(self, package: str, version: str, target: str, found: list[str]) -> None:
        self.package, self.version, self.target = package, version, target
        seen = ", ".join(found[:6]) + (" …" if len(found) > 6 else "") if found else "no files"
        super().__init__(
            f"No wheel of {package}=={version} fits {target} (the index has: {seen}). "
            "It has to be compiled for the target, which needs a container build "
            "(`layerkit build --strategy container`); or pin a version that ships a "
            "manylinux wheel for this Python and architecture."
        )


class ResolutionError(BuildError):
    WHEELS_ONLY = (
        "using wheels only",
        "Loosen the requirement named above, pin a version with a wheel for this target, "
        "or build it from source in a container (`--strategy container`).",
    )

    def __init__(self, target: str, detail: str, how: tuple[str, str] = WHEELS_ONLY) -> None:
        self.target = target
        quoted = "\n".join(f"  | {line.removeprefix('error: ')}" for line in detail.splitlines())
        where, advice = how
        super().__init__(
            f"The requirements cannot be resolved for {target} {where}:\n{quoted}\n{advice}"
        )


class QuotaError(BuildError):
    pass


class OsvError(LayerkitError):
    """OSV's API (or its mirror) did not answer, or answered nonsense."""

    exit_code = ExitCode.TOOL


class VulnerableError(LayerkitError):
    """`build --audit` found a known vulnerability in what the lock ships."""

    exit_code = ExitCode.GATE


class IntegrityError(LayerkitError):
    exit_code = ExitCode.INTEGRITY


class ToolError(LayerkitError):
    """An external program or the network failed."""

    exit_code = ExitCode.TOOL

    def __init__(self, command: str, returncode: int, stderr_tail: str) -> None:
        self.command, self.returncode, self.stderr_tail = command, returncode, stderr_tail
        super().__init__(f"`{command}` failed with exit code {returncode}:\n{stderr_tail}")


class PackageIndexError(LayerkitError):
    """The package index could not be read (network, auth, missing project)."""

    exit_code = ExitCode.TOOL


class ContainerError(LayerkitError):
    """The engine is missing or refused, or a command in a container failed."""

    exit_code = ExitCode.TOOL


class ArchitectureError(ContainerError):
    """The engine cannot run the target's architecture: wheels may still serve."""


class ImageMissingError(ContainerError):
    exit_code = ExitCode.USER

    def __init__(self, image: str) -> None:
        self.image = image
        super().__init__(
            f"The image {image} is not on this Docker engine. Pull it with "
            f"`docker pull {image}`, name another with --image (or `image` under [build] "
            "in the recipe), or build without Docker: `--strategy wheels`."
        )


class CommandFailedError(ContainerError):
    exit_code = ExitCode.CANNOT_BUILD

    def __init__(self, what: str, image: str, exit_status: int, tail: str) -> None:
        self.what, self.image, self.exit_status, self.tail = what, image, exit_status, tail
        super().__init__(
            f"{what} failed in {image} (exit status {exit_status}). Its last lines:\n{tail}"
        )


class AWSError(LayerkitError):
    exit_code = ExitCode.AWS

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class CredentialsError(AWSError):
    exit_code = ExitCode.USER
