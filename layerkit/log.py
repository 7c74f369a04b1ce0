"""layerkit's messages for people: `log.info(...)`, `log.warning(...)`, `log.debug(...)`.

They are records of the standard logging module, under the logger named "layerkit", so a
program that uses layerkit as a library sees them as it sees any other. logging itself (with
the string module it imports) is loaded by the first message, not at start-up: a no-op
build says nothing. The command line decides where messages go with
`configured_on_first_use`, which acts once, at that first message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

NAME = "layerkit"

_first_use: list[Callable[[logging.Logger], None]] = []
_first_use_lock = threading.Lock()  # publish logs from a thread per region


@contextmanager
def configured_on_first_use(configure: Callable[[logging.Logger], None]) -> Iterator[None]:
    """Within the block, configure runs on layerkit's logger before the first message (if
    one comes), once."""
    with _first_use_lock:
        _first_use.append(configure)
    try:
        yield
    finally:
        with _first_use_lock:
            if configure in _first_use:
                _first_use.remove(configure)


def logger() -> logging.Logger:
    import logging

    found = logging.getLogger(NAME)
    if _first_use:
        with _first_use_lock:
            while _first_use:
                _first_use.pop(0)(found)
    return found


def debug(message: str, *args: object) -> None:
    logger().debug(message, *args)


def info(message: str, *args: object) -> None:
    logger().info(message, *args)


def warning(message: str, *args: object) -> None:
    logger().warning(message, *args)


def debugging() -> bool:
    """Whether debug messages are shown (`layerkit --debug`)."""
    import logging

    return logger().isEnabledFor(logging.DEBUG)
