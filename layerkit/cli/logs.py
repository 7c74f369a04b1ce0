"""Where layerkit's log goes on the command line: stderr, warnings and errors saying so.

Imported with logging when the first message comes (see layerkit.log), not at start-up.
"""

from __future__ import annotations

import logging

from layerkit.cli import render


class LogHandler(logging.Handler):
    """layerkit's log on stderr: warnings and errors say so, the rest is plain text."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = {logging.WARNING: "warning: ", logging.ERROR: "error: "}.get(record.levelno, "")
        render.error(prefix + record.getMessage())


def show(logger: logging.Logger, debug: bool) -> None:
    """Messages from INFO up (from DEBUG with --debug) on stderr, unless the program that
    runs the command line has a handler of its own on the logger."""
    if not logger.handlers:
        logger.addHandler(LogHandler())
        logger.propagate = False
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
