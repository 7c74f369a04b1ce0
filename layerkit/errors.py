"""Every failure layerkit reports, each with its exit code.

The CLI turns a LayerkitError into one paragraph and its exit code in one place
(cli.main); everything else raises. Exit codes:

  2  the user's input is wrong (recipe, lock, arguments): fix it and run again
  3  the layer cannot be built as asked (no fitting wheel, over the quota)
  4  integrity: a downloaded or cached file does not match the lock's hash
  5  a tool or the network failed (uv, the package index)
"""

from __future__ import annotations


class LayerkitError(Exception):
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UserError(LayerkitError):
    """Input the user can fix: a recipe, a lock, an argument."""

    exit_code = 2


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

    exit_code = 3


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


class IntegrityError(LayerkitError):
    exit_code = 4


class ToolError(LayerkitError):
    """An external program or the network failed."""

    exit_code = 5

    def __init__(self, command: str, returncode: int, stderr_tail: str) -> None:
        self.command, self.returncode, self.stderr_tail = command, returncode, stderr_tail
        super().__init__(f"`{command}` failed with exit code {returncode}:\n{stderr_tail}")


class PackageIndexError(LayerkitError):
    """The package index could not be read (network, auth, missing project)."""

    exit_code = 5
