"""The publish guard from the holder's side, on the moto server: the holder keeps its guard
fresh, refuses to publish once it was taken over, deletes it when stopped, and reports a
version another job published meanwhile. The waits are driven through the `sleep` and
`progress` hooks and bounded polls, never fixed sleeps."""

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
from layerkit.account.publish import PublishStatus, execute, layer_from_zip, plan
from layerkit.recipe import PublishSettings
from tests.conftest import layerkit
from tests.fleet import client
from tests.integration.test_publish import REGIONS, files_recipe, versions
from tests.proxy import proxy

REGION = REGIONS[0]


@pytest.fixture
def env(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in aws.items():
        monkeypatch.setenv(key, value)
    return aws


def built(project: Path, content: str) -> Path:
    files_recipe(project, content)
    [artifact] = json.loads(layerkit("build", "conf", "--json", cwd=project).stdout)
    return project / str(artifact["path"])


def guards(aws: dict[str, str]) -> list[dict[str, Any]]:
    ssm = client(aws, "ssm", REGION)
    found: list[dict[str, Any]] = ssm.get_parameters_by_path(
        Path="/layerkit/publishing/", Recursive=True
    )["Parameters"]
    return found


def test_a_holder_slower_than_the_stale_window_keeps_its_guard(env: dict[str, str]) -> None:
    parameters = Parameters(Clients(), REGION)
    path = "/layerkit/publishing/slow/abc"
    holder = Guard(parameters, path, stale_after=1.0)  # it rewrites every 0.25 s
    other = Guard(parameters, path, stale_after=1.0)
    assert holder.take()
    first = parameters.under(path)[f"{path}/1"].modified
    with holder.kept():
        # the holder works for several stale windows; the other job never takes over
        started, refused = time.monotonic(), 0
        while time.monotonic() - started < 3.0:
            assert not other.take()
            refused += 1
        assert parameters.under(path)[f"{path}/1"].modified > first  # the heartbeat
        assert holder.still_held()
    assert refused > 1
    assert parameters.under(path) == {}  # deleted when the block ended


def test_a_guard_taken_over_before_publishing_publishes_nothing(
    env: dict[str, str], project: Path
) -> None:
    layer = layer_from_zip(built(project, '{"taken": true}'))
    clients = Clients()
    settings = PublishSettings(s3_bucket="layers-{region}")
    # through S3, so that the upload's progress is the moment another job takes over
    actions = plan(layer, [REGION], settings, clients, direct_limit=0)
    parameters = Parameters(clients, REGION)
    taken = threading.Event()

    def take_over(region: str, done: int, total: int) -> None:
        if not taken.is_set():
            taken.set()
            [mine] = parameters.under(f"/layerkit/publishing/conf/{layer.marker[4:-1]}")
            parameters.create(mine.rsplit("/", 1)[0] + "/2", "a job that took over")

    [outcome] = execute(layer, actions, clients, create_bucket=True, progress=take_over)
    assert taken.is_set()
    assert outcome.status == PublishStatus.failed
    assert "another job took over the publish guard" in str(outcome.error)
    assert versions(env, REGION) == []


def test_a_version_published_while_waiting_is_unchanged_with_a_note(
    env: dict[str, str], project: Path
) -> None:
    zip_path = built(project, '{"meanwhile": true}')
    layer = layer_from_zip(zip_path)
    clients = Clients()
    actions = plan(layer, [REGION], PublishSettings(), clients)
    parameters = Parameters(clients, REGION)
    # a live holder: its guard is fresh for the whole test (an hour's stale window)
    parameters.create(f"/layerkit/publishing/conf/{layer.marker[4:-1]}/1", "another job pid 9")
    lam = client(env, "lambda", REGION)
    waited: list[float] = []

    def other_job_publishes(seconds: float) -> None:
        waited.append(seconds)
        if len(waited) == 2:  # after a first look found nothing
            lam.publish_layer_version(
                LayerName="conf", Description=layer.full_description,
                Content={"ZipFile": zip_path.read_bytes()},
            )  # fmt: skip

    [outcome] = execute(
        layer, actions, clients, sleep=other_job_publishes, stale_after=3600, wait_seconds=30
    )
    assert outcome.status == PublishStatus.unchanged
    assert "published meanwhile by another job" in outcome.notes
    assert str(outcome.arn).endswith(":layer:conf:1")
    assert len(versions(env, REGION)) == 1


@pytest.fixture
def slow_publish(aws: dict[str, str]) -> Iterator[tuple[str, threading.Event, threading.Event]]:
    """(URL, reached, release): a proxy to moto that holds the upload of a layer's ZIP to
    S3 until released, then forwards it: an upload under way when the job is stopped."""
    reached, release = threading.Event(), threading.Event()

    def hold(handler: Any, body: bytes) -> bool:
        if handler.command == "PUT" and "/layerkit/conf/" in handler.path:
            reached.set()
            release.wait(60)
        return False  # then forwarded

    with proxy(aws["AWS_ENDPOINT_URL"], hold) as url:
        yield url, reached, release
        release.set()


def test_sigterm_during_a_held_upload_deletes_the_guard(
    aws: dict[str, str],
    project: Path,
    slow_publish: tuple[str, threading.Event, threading.Event],
) -> None:
    built(project, '{"stopped": true}')
    url, reached, release = slow_publish
    job = subprocess.Popen(
        [sys.executable, "-m", "layerkit", "publish", "conf", "--region", REGION,
         "--direct-upload-limit", "0", "--s3-bucket", "layers-{region}", "--create-bucket"],
        cwd=project, env={**os.environ, **aws, "AWS_ENDPOINT_URL": url},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert reached.wait(60), "the upload never reached S3"
    assert len(guards(aws)) == 1  # held while the upload is under way
    job.send_signal(signal.SIGTERM)
    release.set()  # the call under way finishes; the job stops at its next step
    _, stderr = job.communicate(timeout=60)
    assert job.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert guards(aws) == []
    assert versions(aws, REGION) == []  # stopped before PublishLayerVersion
