"""`publish --align-versions` on a moto server: regions at different version numbers get
filler versions of the same content first, so that the new content has one number in
every region, and a template's `${AWS::Region}` ARN is right in all of them."""

from __future__ import annotations

import json
from pathlib import Path

from layerkit.account import publish as publishing
from tests.conftest import layerkit
from tests.integration.test_publish import REGIONS, files_recipe, publish, versions


def behind(aws: dict[str, str], region: str, count: int) -> None:
    """Versions of conf published by someone else, before layerkit."""
    from tests.fleet import client, zipped

    lam = client(aws, "lambda", region)
    for _ in range(count):
        lam.publish_layer_version(LayerName="conf", Content={"ZipFile": zipped()})


def test_regions_behind_are_filled_so_the_content_lands_as_one_number(
    project: Path, aws: dict[str, str]
) -> None:
    behind(aws, "eu-west-1", 4)
    behind(aws, "us-east-1", 1)
    files_recipe(project, '{"a": 1}', "align-versions = true\n")

    plan = json.loads(layerkit("publish", "conf", "--dry-run", "--json", cwd=project,
                               env=aws).stdout)  # fmt: skip
    assert {(a["region"], a["newest"], a["target"], a["fillers"]) for a in plan} == {
        ("eu-west-1", 4, 5, 0), ("us-east-1", 1, 5, 3),
    }  # fmt: skip
    assert len(versions(aws, "us-east-1")) == 1  # a dry run publishes nothing

    done = publish(project, aws)
    arns = {o["region"]: o["arn"] for o in done["outcomes"]}
    assert {arn.rsplit(":", 1)[1] for arn in arns.values()} == {"5"}
    us = sorted(versions(aws, "us-east-1"), key=lambda v: v["Version"])
    assert [v["Version"] for v in us] == [1, 2, 3, 4, 5]
    # the fillers carry the content marker (sync, audit and prune know them as layerkit's)
    # in a form publish never takes for the content itself
    marker = us[-1]["Description"][-len("[lk:") - publishing.MARKER_LENGTH - 1 :]
    for filler in us[1:4]:
        assert filler["Description"].endswith(marker[:-1] + ":filler]")
    assert us[4]["Description"].endswith(marker)
    assert len(versions(aws, "eu-west-1")) == 5  # already one below: no filler there

    again = publish(project, aws)
    assert {o["status"] for o in again["outcomes"]} == {"unchanged"}
    assert len(versions(aws, "us-east-1")) == 5


def test_too_many_fillers_publish_nothing_and_a_region_ahead_is_reported(
    project: Path, aws: dict[str, str]
) -> None:
    files_recipe(project, '{"a": 2}')
    publish(project, aws)  # conf:1 in both
    behind(aws, "us-east-1", 3)  # us-east-1 at 4
    (project / "recipes" / "settings.json").write_text('{"a": 3}')
    layerkit("lock", "conf", cwd=project)

    # the new content lands as 5 in us-east-1 and eu-west-1 is filled up to it
    done = publish(project, aws, "--align-versions")
    assert {o["arn"].rsplit(":", 1)[1] for o in done["outcomes"]} == {"5"}
    assert [v["Version"] for v in versions(aws, "eu-west-1")] == [5, 4, 3, 2, 1]

    # content that is already published as a lower number somewhere cannot be moved there
    behind(aws, "eu-west-1", 60)
    (project / "recipes" / "settings.json").write_text('{"a": 4}')
    layerkit("lock", "conf", cwd=project)
    refused = layerkit("publish", "conf", "--align-versions", cwd=project, env=aws, check=False)
    assert refused.returncode == 2
    assert "would publish 60 filler versions (us-east-1: 60), over 50" in refused.stderr
    assert "nothing was published" in refused.stderr
    assert len(versions(aws, "us-east-1")) == 5

    # published in one region only, the content has a number; a region past it is ahead
    publish(project, aws, "--region", REGIONS[0])  # conf:66 in eu-west-1
    behind(aws, "us-east-1", 70)  # now at 75: past 66
    plan = json.loads(layerkit("publish", "conf", "--dry-run", "--json", "--align-versions",
                               cwd=project, env=aws).stdout)  # fmt: skip
    ahead = {a["region"]: a for a in plan}["us-east-1"]
    assert ahead["target"] is None and "ahead: its newest version is 75, past 66" in ahead["note"]
    done = publish(project, aws, "--align-versions")
    assert {o["region"]: o["arn"].rsplit(":", 1)[1] for o in done["outcomes"]} == {
        "eu-west-1": "66", "us-east-1": "76",
    }  # fmt: skip
