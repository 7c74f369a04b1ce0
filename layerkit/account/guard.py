"""The concurrency guard of a publish: one job publishes a given content in a region.

The guard is an SSM parameter under /layerkit/publishing/LAYER/MARKER/, named by a
generation number and created with Overwrite=False, a conditional write only one caller
wins. Its holder rewrites it every HEARTBEAT_SECONDS while it works, and deletes it when
done, also when stopped by SIGTERM or Ctrl-C. A job killed outright (SIGKILL, a lost
runner) cannot, so a guard not rewritten for `stale_after` seconds (SSM's LastModifiedDate)
is taken over: the next job creates the next generation, again with Overwrite=False, so
of two jobs taking over at once exactly one wins, and the other waits for it. The holder
checks, just before it publishes, that no later generation exists: a holder that was
only slow (a suspended machine) stops instead of publishing twice.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from layerkit.account.gateways import Parameters
from layerkit.errors import AWSError
from layerkit.registry import who

HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 60.0  # well above the heartbeat: clocks of CI runners may differ a little


class Guard:
    def __init__(
        self,
        parameters: Parameters,
        path: str,
        stale_after: float = STALE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.parameters, self.path = parameters, path.rstrip("/")
        self.stale_after, self.clock = stale_after, clock
        self.holder = f"{who()}@{socket.gethostname()} pid {os.getpid()} {uuid.uuid4().hex[:8]}"
        self.name: str | None = None  # the generation this job holds
        self.replaced: str | None = None  # whose stale guard was taken over, and how old

    def take(self) -> bool:
        """True when this job now holds the guard."""
        held = self.parameters.under(self.path)
        generations = sorted(held, key=_generation)
        if not generations:
            return self._create(1)
        newest = held[generations[-1]]
        age = self.clock() - newest.modified
        if age < self.stale_after:
            return False  # someone is working: wait for them
        if not self._create(_generation(generations[-1]) + 1):
            return False  # another job took it over first
        self.replaced = f"{newest.value}, not refreshed for {age:.0f} s"
        for name in generations:
            self.parameters.delete(name)
        return True

    def _create(self, generation: int) -> bool:
        name = f"{self.path}/{generation}"
        if self.parameters.create(name, self.holder):
            self.name = name
            return True
        return False

    def still_held(self) -> bool:
        """False when a later generation exists: another job took this guard over."""
        assert self.name is not None
        mine = _generation(self.name)
        return all(_generation(name) <= mine for name in self.parameters.under(self.path))

    @contextmanager
    def kept(self) -> Iterator[None]:
        """Hold the guard for the block: rewrite it every HEARTBEAT_SECONDS, delete it at
        the end, however the block ends."""
        assert self.name is not None
        name, stop = self.name, threading.Event()
        every = min(HEARTBEAT_SECONDS, self.stale_after / 4)

        def beat() -> None:
            while not stop.wait(every):
                with suppress(AWSError):  # a missed beat is retried; the next one may work
                    self.parameters.put(name, self.holder)

        beating = threading.Thread(target=beat, name="layerkit-guard", daemon=True)
        beating.start()
        try:
            yield
        finally:
            stop.set()
            beating.join()
            self.parameters.delete(name)


def _generation(name: str) -> int:
    tail = name.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0
