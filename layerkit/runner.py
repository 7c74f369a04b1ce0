"""The one place layerkit runs other programs."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from layerkit import log
from layerkit.errors import ToolError
from layerkit.redaction import redact

_TAIL_LINES = 25


def run(
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; raise ToolError with the tail of its stderr on failure."""
    shown = shlex.join(redact(part) for part in command)
    log.debug("running %s", shown)
    result = _completed(command, cwd, env, None)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-_TAIL_LINES:])
        raise ToolError(shown, result.returncode, redact(tail))
    return result


def output(
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> str | None:
    """A probe's stdout, stripped; None when it cannot start, fails or times out. For
    questions whose "no" is an answer (is this a git checkout? which Python is this?)."""
    log.debug("probing %s", shlex.join(redact(part) for part in command))
    try:
        result = _completed(command, cwd, env, timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _completed(
    command: Sequence[str],
    cwd: Path | None,
    env: Mapping[str, str] | None,
    timeout: float | None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
