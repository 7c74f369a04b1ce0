"""Known vulnerabilities of the layers in use and of a lock before it is built: real layers
from PyPI published to moto, real OSV advisories offline (tests/data/osv), and OSV's API
played by a local server (no service is reachable from CI)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from tests.conftest import layerkit, write_recipe
from tests.integration.test_audit import code, lam, session
from tests.unit.test_osv import DATA, OsvServer

OLD, FIXED = "urllib3==2.2.1", "urllib3==2.2.2"


def recipe(requirement: str, extra: str = "") -> str:
    return (
        '[layer]\nname = "http"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
        f'[python]\nrequirements = ["{requirement}"]\n[publish]\nregions = ["eu-west-1"]\n'
        f"{extra}"
    )


@pytest.mark.network
def test_audit_names_each_advisory_the_functions_and_layers_that_ship_it(
    project: Path, aws: dict[str, str]
) -> None:
    write_recipe(project, "http", recipe(OLD))
    layerkit("lock", "http", cwd=project)
    published = json.loads(layerkit("publish", "http", "--json", cwd=project, env=aws).stdout)
    old_arn = published["outcomes"][0]["arn"]
    write_recipe(project, "http", recipe(FIXED))
    layerkit("lock", "http", cwd=project)
    published = json.loads(layerkit("publish", "http", "--json", cwd=project, env=aws).stdout)
    fixed_arn = published["outcomes"][0]["arn"]

    client = lam(aws, "eu-west-1")
    iam = session(aws).client("iam", region_name="eu-west-1", endpoint_url=aws["AWS_ENDPOINT_URL"])
    execution = iam.create_role(RoleName="exec", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    for name, layers in (("old", [old_arn]), ("fixed", [fixed_arn]), ("plain", [])):
        client.create_function(
            FunctionName=name, Runtime="python3.12", Role=execution, Handler="handler.handle",
            Code={"ZipFile": code()}, Layers=layers, Publish=name == "old",
        )  # fmt: skip

    args = ["audit", "--region", "eu-west-1", "--vulnerabilities", "--osv-db", str(DATA)]
    found = json.loads(layerkit(*args, "--json", cwd=project, env=aws).stdout)
    [row] = found["vulnerable"]
    assert (row["id"], row["package"], row["version"]) == (
        "GHSA-34jh-p97f-mpxf",
        "urllib3",
        "2.2.1",
    )
    assert row["severity"] == "MODERATE" and row["fixed"] == ["1.26.19", "2.2.2"]
    assert row["layers"] == [old_arn]
    assert sorted((f["function"], f["qualifier"]) for f in row["functions"]) == [
        ("old", "$LATEST"), ("old", "1")
    ]  # fmt: skip
    assert {(f["region"], f["account"]) for f in row["functions"]} == {
        ("eu-west-1", "123456789012")
    }

    table = layerkit(*args, cwd=project, env=aws).stdout
    assert "GHSA-34jh-p97f-mpxf (MODERATE) urllib3 2.2.1, fixed in 1.26.19, 2.2.2" in table
    rows = list(csv.DictReader(io.StringIO(layerkit(*args, "--csv", cwd=project, env=aws).stdout)))
    by_function = {(r["function"], r["version"]): r["vulnerabilities"] for r in rows}
    assert by_function[("old", "$LATEST")] == "GHSA-34jh-p97f-mpxf urllib3 2.2.1"
    assert by_function[("fixed", "$LATEST")] == ""

    gated = layerkit(*args, "--fail-on", "vulnerable", cwd=project, env=aws, check=False)
    assert gated.returncode == 7 and "vulnerable" in gated.stderr
    # --fail-on vulnerable checks without --vulnerabilities: a gate never passes unchecked.
    implied = layerkit(
        "audit", "--region", "eu-west-1", "--osv-db", str(DATA), "--fail-on", "vulnerable",
        cwd=project, env=aws, check=False,
    )  # fmt: skip
    assert implied.returncode == 7

    # Online: the same answer from OSV's API (a local server speaking querybatch).
    with OsvServer({("urllib3", "2.2.1"): ["GHSA-34jh-p97f-mpxf"]}) as server:
        online = layerkit(
            "audit", "--region", "eu-west-1", "--vulnerabilities", "--json",
            cwd=project, env={**aws, "LAYERKIT_OSV_URL": server.url},
        )  # fmt: skip
    assert json.loads(online.stdout)["vulnerable"] == found["vulnerable"]


@pytest.mark.network
def test_build_audit_refuses_a_vulnerable_lock_before_building(project: Path) -> None:
    write_recipe(project, "http", recipe(OLD))
    layerkit("lock", "http", cwd=project)
    refused = layerkit("build", "http", "--audit", "--osv-db", str(DATA), cwd=project, check=False)
    assert refused.returncode == 7
    assert "urllib3 2.2.1 (python3.12-x86_64): GHSA-34jh-p97f-mpxf (MODERATE)" in refused.stderr
    assert "--upgrade-package urllib3" in refused.stderr and "Traceback" not in refused.stderr
    assert not (project / "dist").exists()

    # The recipe's setting does the same, here against OSV's API.
    write_recipe(project, "http", recipe(OLD, "[build]\naudit = true\n"))
    with OsvServer({("urllib3", "2.2.1"): ["GHSA-34jh-p97f-mpxf"]}) as server:
        online = layerkit(
            "build", "http", cwd=project, env={"LAYERKIT_OSV_URL": server.url}, check=False
        )
    assert online.returncode == 7 and "GHSA-34jh-p97f-mpxf" in online.stderr
    down = layerkit(
        "build", "http", cwd=project, env={"LAYERKIT_OSV_URL": "http://127.0.0.1:9"}, check=False
    )
    assert down.returncode == 5 and "--osv-db" in down.stderr and "Traceback" not in down.stderr
    assert not (project / "dist").exists()

    write_recipe(project, "http", recipe(FIXED, "[build]\naudit = true\n"))
    layerkit("lock", "http", cwd=project)
    layerkit("build", "http", "--osv-db", str(DATA), cwd=project)
    assert (project / "dist" / "http.zip").exists()


def test_another_tools_layer_is_checked_from_its_dist_info() -> None:
    from layerkit import osv
    from layerkit.account.audit import distributions_of, report, vulnerable
    from layerkit.account.model import FunctionVersion
    from layerkit.account.scan import Scan

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr(
            "python/urllib3-1.26.5.dist-info/METADATA", "Name: urllib3\nVersion: 1.26.5\n"
        )
    arn = "arn:aws:lambda:eu-west-1:999999999999:layer:vendor:3"
    rep = report(
        [Scan("123456789012", "eu-west-1",
              [FunctionVersion("123456789012", "eu-west-1", "f", "$LATEST", (arn,), 1)], {})],
        {},
    )  # fmt: skip
    rows = vulnerable(
        rep.references, lambda _: distributions_of(buffer.getvalue()), osv.Database(DATA)
    )
    assert [(r.advisory.id, r.version, r.layers) for r in rows] == [
        ("GHSA-34jh-p97f-mpxf", "1.26.5", (arn,)),
        ("GHSA-g4mx-q9vg-27p4", "1.26.5", (arn,)),
    ]
    assert rows[1].advisory.fixed == ("1.26.18", "2.0.7")
    assert [(f.function, f.qualifier) for f in rows[0].functions] == [("f", "$LATEST")]
