"""layerkit's log: where messages go is decided once, at the first message, and only
while the command line runs."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from layerkit import log


def test_the_command_lines_set_up_runs_once_at_the_first_message_even_from_threads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[logging.Logger] = []
    start = threading.Barrier(8)

    def set_up(logger: logging.Logger) -> None:
        time.sleep(0.05)  # long enough for the other threads' messages to arrive meanwhile
        seen.append(logger)

    def say(i: int) -> None:
        start.wait()
        log.warning("region %d", i)

    with caplog.at_level(logging.WARNING, logger="layerkit"), log.configured_on_first_use(set_up):
        assert seen == []  # nothing said yet: nothing set up
        threads = [threading.Thread(target=say, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert seen == [logging.getLogger("layerkit")]
    assert sorted(r.getMessage() for r in caplog.records) == [f"region {i}" for i in range(8)]


def test_a_message_after_the_command_line_returned_is_left_to_the_program() -> None:
    seen: list[logging.Logger] = []
    with log.configured_on_first_use(seen.append):
        pass  # a command that said nothing (a no-op build)
    log.info("from a program that uses layerkit as a library")
    assert seen == []
