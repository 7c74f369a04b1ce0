"""A cancelled CI job never blocks the next publish: the guard of a job killed with SIGKILL
is taken over once it goes unrefreshed, SIGTERM stops a waiting job at once, and of two
jobs taking over at once exactly one wins. On a real moto server; the slow upload comes
from a real HTTP proxy in front of it that holds PublishLayerVersion back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from layerkit.account.clients import Clients
from layerkit.account.gateways import Parameters
from layerkit.account.guard import Guard
from tests.conftest import layerkit
from tests.fleet import client
from tests.integration.test_publish import REGIONS, files_recipe, versions
from tests.proxy import proxy

STALE = "1"  # seconds, instead of 60, so that the test does not wait a minute


@pytest.fixture
def holding_proxy(aws: dict[str, str]) -> Iterator[tuple[str, threading.Event]]:
    """(URL, reached): a proxy to moto that never answers PublishLayerVersion."""
    reached, release = threading.Event(), threading.Event()

    def hold(handler: Any, body: bytes) -> bool:
        if handler.command == "POST" and handler.path.startswith("/2018-10-31/layers/"):
            reached.set()
            release.wait(120)  # the caller is killed meanwhile; nothing is forwarded
            handler.close_connection = True
            return True
        return False

    with proxy(aws["AWS_ENDPOINT_URL"], hold) as url:
        yield url, reached
        release.set()


def test_a_publish_killed_between_guard_and_version_does_not_block_the_next(
    project: Path, aws: dict[str, str], holding_proxy: tuple[str, threading.Event]
) -> None:
    files_recipe(project, '{"killed": true}')
    layerkit("build", "conf", cwd=project)
    url, reached = holding_proxy
    env = {**os.environ, **aws, "AWS_ENDPOINT_URL": url, "LAYERKIT_GUARD_STALE_SECONDS": STALE}
    job = subprocess.Popen(
        [sys.executable, "-m", "layerkit", "publish", "conf", "--region", REGIONS[0]],
        cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert reached.wait(60), "the publish never reached PublishLayerVersion"
    ssm = client(aws, "ssm", REGIONS[0])
    [held] = ssm.get_parameters_by_path(Path="/layerkit/publishing/", Recursive=True)["Parameters"]
    job.send_signal(signal.SIGKILL)
    job.wait()

    again = layerkit(
        "publish", "conf", "--region", REGIONS[0], "--json", cwd=project,
        env={**aws, "LAYERKIT_GUARD_STALE_SECONDS": STALE},
    )  # fmt: skip
    [outcome] = json.loads(again.stdout)["outcomes"]
    assert outcome["status"] == "published"
    assert any("took over the guard" in note for note in outcome["notes"])
    assert held["Value"].split(" pid ")[0] in again.stderr  # whose guard it replaced
    assert len(versions(aws, REGIONS[0])) == 1
    left = ssm.get_parameters_by_path(Path="/layerkit/publishing/", Recursive=True)
    assert left["Parameters"] == []  # the stale guard and the new one are both gone


def test_sigterm_stops_a_job_waiting_for_a_guard_at_once(
    project: Path, aws: dict[str, str]
) -> None:
    files_recipe(project, '{"waiting": true}')
    built = json.loads(layerkit("build", "conf", "--json", cwd=project).stdout)
    marker = built[0]["sha256"][:24]
    ssm = client(aws, "ssm", REGIONS[0])
    name = f"/layerkit/publishing/conf/{marker}/1"
    ssm.put_parameter(Name=name, Value="someone else pid 1", Type="String")
    refreshing, stop = threading.Event(), threading.Event()

    def holder() -> None:  # a live job: it keeps its guard fresh
        while not stop.wait(0.5):
            ssm.put_parameter(Name=name, Value="someone else pid 1", Type="String",
                              Overwrite=True)  # fmt: skip
            refreshing.set()

    threading.Thread(target=holder, daemon=True).start()
    try:
        job = subprocess.Popen(
            [sys.executable, "-m", "layerkit", "publish", "conf", "--region", REGIONS[0]],
            cwd=project, env={**os.environ, **aws, "LAYERKIT_GUARD_STALE_SECONDS": STALE},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert refreshing.wait(10)
        # Longer than STALE: the job is waiting by now, and a live holder is never taken over.
        time.sleep(float(STALE) * 2.5)
        assert job.poll() is None
        job.send_signal(signal.SIGTERM)
        _, stderr = job.communicate(timeout=30)
    finally:
        stop.set()
    assert job.returncode == 130
    assert "Traceback" not in stderr
    assert versions(aws, REGIONS[0]) == []
    value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    assert value == "someone else pid 1"  # the live holder's guard was not taken


def test_of_two_jobs_taking_over_a_stale_guard_exactly_one_wins(
    aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in aws.items():
        monkeypatch.setenv(key, value)
    parameters = Parameters(Clients(), REGIONS[0])
    path = "/layerkit/publishing/race/abc"
    parameters.create(f"{path}/1", "dead job pid 7")
    # until the dead job's guard is stale (by SSM's own LastModifiedDate); the one a winner
    # makes is fresh
    written = parameters.under(path)[f"{path}/1"].modified
    while time.time() - written < 1.2:
        time.sleep(0.05)
    guards = [Guard(parameters, path, stale_after=1.0) for _ in range(2)]
    barrier = threading.Barrier(2)
    won: list[bool] = []

    def take(guard: Guard) -> None:
        barrier.wait()
        won.append(guard.take())

    threads = [threading.Thread(target=take, args=(g,)) for g in guards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False, True]
    [winner] = [g for g in guards if g.name]
    assert winner.replaced is not None and "dead job pid 7" in winner.replaced
    assert list(parameters.under(path)) == [f"{path}/2"]
    assert winner.still_held()
