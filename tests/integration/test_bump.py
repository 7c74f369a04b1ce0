"""`layerkit bump` on a moto server: the ARNs in a repository's IaC sources move to the
newest version, byte for byte, and what cannot be known or agreed is left and reported.

The sources are shaped like public ones of each tool: a SAM template with short-form
`!Sub` (which a plain YAML loader rejects) and a literal ARN, a CloudFormation JSON
template with Fn::Sub, serverless.yml with `${aws:region}`, Terraform with `${var.region}`
and `${data.aws_caller_identity…}`, a CDK app in Python (f-strings) and in TypeScript
(template literals), and a `.env` file. Another account's public layer cannot be listed:
its probing runs against botocore's Stubber, since moto keeps layers per account.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.stub import Stubber

from layerkit.account.bump import Newest, Question, probe
from layerkit.account.clients import Clients
from layerkit.account.model import LayerArn
from tests.conftest import layerkit
from tests.fleet import client, zipped

ACCOUNT = "123456789012"  # moto's
POWERTOOLS = "017000801446"


def publish(env: dict[str, str], name: str, region: str, times: int) -> None:
    lam = client(env, "lambda", region)
    for _ in range(times):
        lam.publish_layer_version(LayerName=name, Content={"ZipFile": zipped()})


# A plain CloudFormation template, Fn::Sub in its long form.
STACK = {
    "Resources": {
        "Fn": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": "app.handler",
                "Runtime": "python3.12",
                "Role": "arn:aws:iam::123456789012:role/exec",
                "Code": {"ZipFile": "def handler(e, c):\n    return 1\n"},
                "Layers": [
                    {"Fn::Sub": "arn:aws:lambda:${AWS::Region}:${AWS::AccountId}:layer:deps:2"}
                ],
            },
        }
    }
}


def sources(root: Path) -> dict[str, str]:
    files = {
        "sam/template.yaml": (
            "AWSTemplateFormatVersion: '2010-09-09'\n"
            "Transform: AWS::Serverless-2016-10-31\n"
            "Resources:\n"
            "  Fn:\n"
            "    Type: AWS::Serverless::Function\n"
            "    Properties:\n"
            "      Handler: app.handler\n"
            "      Runtime: python3.12\n"
            "      CodeUri: src/\n"
            "      Layers:\n"
            "        - !Sub arn:aws:lambda:${AWS::Region}:${AWS::AccountId}:layer:deps:1\n"
            "        - arn:aws:lambda:eu-west-1:123456789012:layer:tools:1   # pinned by hand\n"
        ),
        "cfn/stack.json": json.dumps(STACK, indent=2) + "\n",
        "serverless.yml": (
            "functions:\n  api:\n    handler: app.handler\n    layers:\n"
            "      - arn:aws:lambda:${aws:region}:123456789012:layer:deps:1\n"
        ),
        "infra/main.tf": (
            'resource "aws_lambda_function" "api" {\n'
            "  layers = [\n"
            '    "arn:aws:lambda:${var.region}:${data.aws_caller_identity.current.account_id}'
            ':layer:deps:1",\n'
            "  ]\n}\n"
        ),
        "cdk/app.py": (
            "layer = LayerVersion.from_layer_version_arn(\n"
            '    self, "Deps", f"arn:aws:lambda:{self.region}:{self.account}:layer:deps:1"\n)\n'
        ),
        "cdk/lib/stack.ts": (
            "const deps = LayerVersion.fromLayerVersionArn(this, 'Deps',\n"
            "  `arn:aws:lambda:${cdk.Stack.of(this).region}:123456789012:layer:deps:2`);\r\n"
        ),
        ".env": "DEPS_LAYER=arn:aws:lambda:eu-west-1:123456789012:layer:deps:1\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text.encode())
    return files


def test_bump_moves_every_reference_and_only_its_digits(
    aws: dict[str, str], tmp_path: Path
) -> None:
    publish(aws, "deps", "eu-west-1", 3)
    publish(aws, "tools", "eu-west-1", 2)
    repo = tmp_path / "repo"
    before = sources(repo)

    check = layerkit("bump", "--check", "--region", "eu-west-1", cwd=repo, env=aws, check=False)
    assert check.returncode == 7, check.stderr
    assert {p: (repo / p).read_bytes().decode() for p in before} == before  # --check writes nothing

    done = layerkit("bump", "--region", "eu-west-1", "--json", cwd=repo, env=aws)
    bumps = json.loads(done.stdout)
    assert {(b["file"], b["from"], b["to"], b["status"]) for b in bumps} == {
        ("sam/template.yaml", 1, 3, "bumped"), ("sam/template.yaml", 1, 2, "bumped"),
        ("cfn/stack.json", 2, 3, "bumped"), ("serverless.yml", 1, 3, "bumped"),
        ("infra/main.tf", 1, 3, "bumped"), ("cdk/app.py", 1, 3, "bumped"),
        ("cdk/lib/stack.ts", 2, 3, "bumped"), (".env", 1, 3, "bumped"),
    }  # fmt: skip
    for name, text in before.items():
        after = (repo / name).read_bytes().decode()
        expected = (
            text.replace("layer:deps:1", "layer:deps:3")
            .replace("layer:deps:2", "layer:deps:3")
            .replace("layer:tools:1", "layer:tools:2")
        )
        assert after == expected, name  # comments, quotes, CRLF and layout kept

    again = layerkit("bump", "--check", "--region", "eu-west-1", cwd=repo, env=aws)
    assert "current" in again.stdout


def test_cfn_lint_accepts_the_rewritten_templates(aws: dict[str, str], tmp_path: Path) -> None:
    publish(aws, "deps", "eu-west-1", 2)
    publish(aws, "tools", "eu-west-1", 2)
    repo = tmp_path / "repo"
    sources(repo)
    layerkit("bump", "--region", "eu-west-1", cwd=repo, env=aws)
    assert "layer:deps:2" in (repo / "sam/template.yaml").read_text()
    lint = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--regions", "eu-west-1", "--",
         "sam/template.yaml", "cfn/stack.json"],
        cwd=repo, capture_output=True, text=True, check=False,
    )  # fmt: skip
    # cfn-lint exits 0 when clean, 4 for warnings only; 2 and 6 are errors
    assert lint.returncode in {0, 4}, lint.stdout + lint.stderr


def test_regions_that_disagree_are_refused_with_each_version(
    aws: dict[str, str], tmp_path: Path
) -> None:
    publish(aws, "deps", "eu-west-1", 3)
    publish(aws, "deps", "us-east-1", 2)
    repo = tmp_path / "repo"
    (repo / "infra").mkdir(parents=True)
    tf = repo / "infra" / "main.tf"
    tf.write_text('layers = ["arn:aws:lambda:${var.region}:123456789012:layer:deps:1"]\n')
    literal = repo / "config.json"
    literal.write_text('{"layer": "arn:aws:lambda:us-east-1:123456789012:layer:deps:1"}\n')

    done = layerkit(
        "bump", "--region", "eu-west-1", "--region", "us-east-1", "--json",
        cwd=repo, env=aws, check=False,
    )  # fmt: skip
    assert done.returncode == 7
    by_file = {b["file"]: b for b in json.loads(done.stdout)}
    refused = by_file["infra/main.tf"]
    assert refused["status"] == "refused"
    assert "eu-west-1 has 3, us-east-1 has 2" in refused["why"]
    assert "--align-versions" in refused["why"]
    assert "deps:1" in tf.read_text()  # left as it is
    # a literal region is its own answer
    assert by_file["config.json"]["status"] == "bumped"
    assert "deps:2" in literal.read_text()


def test_pins_expressions_and_what_cannot_be_known(aws: dict[str, str], tmp_path: Path) -> None:
    publish(aws, "deps", "eu-west-1", 3)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.tf").write_text(
        'x = "arn:aws:lambda:eu-west-1:123456789012:layer:deps:1"\n'
        'y = "arn:aws:lambda:eu-west-1:123456789012:layer:deps-${var.arch}:1"\n'
        'z = "arn:aws:lambda:eu-west-1:123456789012:layer:gone:4"\n'
        'w = "arn:aws:lambda:${var.region}:123456789012:layer:deps:1"\n'
    )
    done = layerkit("bump", "--to", "2", "--json", cwd=repo, env=aws, check=False)
    assert done.returncode == 7
    rows = {b["line"]: b for b in json.loads(done.stdout)}
    assert (rows[1]["status"], rows[1]["to"]) == ("bumped", 2)
    assert rows[2]["status"] == "refused" and "is an expression" in rows[2]["why"]
    assert rows[3]["status"] == "unknown" and "no layer gone in eu-west-1" in rows[3]["why"]
    assert rows[4]["status"] == "unknown" and "--region" in rows[4]["why"]
    text = (repo / "a.tf").read_text()
    assert 'deps:2"' in text and "deps-${var.arch}:1" in text and "gone:4" in text

    missing = layerkit("bump", "--to", "9", "--json", "a.tf", cwd=repo, env=aws, check=False)
    assert missing.returncode == 7
    assert "--to 9: that version is not available in eu-west-1" in missing.stdout


def test_no_credentials_and_no_path_are_one_message(aws: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("- arn:aws:lambda:eu-west-1:123456789012:layer:deps:1\n")
    nowhere = layerkit("bump", "missing/", cwd=tmp_path, env=aws, check=False)
    assert nowhere.returncode == 2
    assert "missing does not exist" in nowhere.stderr and "Traceback" not in nowhere.stderr
    anonymous = {k: v for k, v in aws.items() if not k.startswith("AWS_ACCESS")}
    anonymous.update(AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")
    unknown = layerkit("bump", cwd=tmp_path, env=anonymous, check=False)
    assert unknown.returncode == 2, unknown.stderr  # credentials are the user's to fix
    assert "No AWS credentials" in unknown.stderr
    assert "deps:1" in (tmp_path / "t.yaml").read_text()


def test_a_file_changed_while_bump_ran_is_left_alone(aws: dict[str, str], tmp_path: Path) -> None:
    from layerkit.account import bump
    from layerkit.iac.sources import collect

    publish(aws, "deps", "eu-west-1", 2)
    path = tmp_path / "t.yaml"
    path.write_text("- arn:aws:lambda:eu-west-1:123456789012:layer:deps:1\n")
    with pytest.MonkeyPatch.context() as env:
        for key, value in aws.items():
            env.setenv(key, value)
        found = collect([tmp_path])
        planned = bump.plan(found, Clients(), regions=[], published={}, layers=set(), to=None)
        path.write_text("- arn:aws:lambda:eu-west-1:123456789012:layer:deps:1  # edited\n")
        [result] = bump.apply(planned, found)
    assert result.status == bump.Status.skipped and "changed while bump ran" in str(result.why)
    assert path.read_text().endswith("# edited\n")


def test_another_accounts_layer_is_probed_not_listed() -> None:
    """Powertools' layer cannot be listed from another account: GetLayerVersion upward,
    doubling then bisecting. Versions 7 to 12 exist for us; 13 is not found, others deny."""
    clients = Clients()
    lam = clients.client("lambda", "eu-west-1")
    arn = LayerArn("eu-west-1", POWERTOOLS, "AWSLambdaPowertoolsPythonV3-python312-x86_64", 7)
    exists = set(range(7, 13))
    asked: list[int] = []
    with Stubber(lam) as stub:
        # the probe's order: 7, then 8, 9, 11, 15 (missing), then bisect 13, 12
        for version in (7, 8, 9, 11, 15, 13, 12):
            params = {"Arn": str(arn.at(version))}
            asked.append(version)
            if version in exists:
                stub.add_response("get_layer_version_by_arn", {"Version": version}, params)
            elif version == 13:
                stub.add_client_error("get_layer_version_by_arn", "ResourceNotFoundException",
                                      expected_params=params)  # fmt: skip
            else:
                stub.add_client_error("get_layer_version_by_arn", "AccessDeniedException",
                                      http_status_code=403, expected_params=params)  # fmt: skip
        answer = Newest(clients, ACCOUNT).answer(Question("eu-west-1", POWERTOOLS, arn.layer, 7))
        stub.assert_no_pending_responses()
    assert answer.newest == 12
    assert "a gap of deleted versions" in str(answer.why)
    assert len(asked) == 7  # a handful of calls, not one per version

    # the probe alone, on a plain set: every start finds the last of a run
    available = set(range(1, 40))
    for start in range(1, 40):
        assert probe(lambda a: a.version in available, arn.at(start)) == 39
    assert probe(lambda a: False, arn) is None


def test_another_accounts_version_not_shared_is_unknown_not_guessed() -> None:
    clients = Clients()
    arn = LayerArn("eu-west-1", "210987654321", "internal-deps", 3)
    with Stubber(clients.client("lambda", "eu-west-1")) as stub:
        stub.add_client_error("get_layer_version_by_arn", "AccessDeniedException",
                              http_status_code=403, expected_params={"Arn": str(arn)})  # fmt: skip
        answer = Newest(clients, ACCOUNT).answer(Question("eu-west-1", arn.account, arn.layer, 3))
    assert answer.newest is None
    assert "not available to these credentials (deleted, or not shared with you)" in str(answer.why)


def test_every_partition_and_the_diff(aws: dict[str, str], tmp_path: Path) -> None:
    publish(aws, "gov", "us-gov-west-1", 2)
    publish(aws, "cn", "cn-north-1", 3)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "gov.tf").write_text(
        'layers = ["arn:aws-us-gov:lambda:us-gov-west-1:123456789012:layer:gov:1"]\n'
    )
    (repo / "cn.yaml").write_text(
        "Layers:\n  - !Sub arn:${AWS::Partition}:lambda:cn-north-1:${AWS::AccountId}:layer:cn:1\n"
    )
    check = layerkit("bump", "--check", "--diff", cwd=repo, env=aws, check=False)
    assert check.returncode == 7
    assert '-layers = ["arn:aws-us-gov:lambda:us-gov-west-1:123456789012:layer:gov:1"]' in (
        check.stdout
    )
    assert '+layers = ["arn:aws-us-gov:lambda:us-gov-west-1:123456789012:layer:gov:2"]' in (
        check.stdout
    )
    assert "+  - !Sub arn:${AWS::Partition}:lambda:cn-north-1:${AWS::AccountId}:layer:cn:3" in (
        check.stdout
    )
    layerkit("bump", cwd=repo, env=aws)
    assert "layer:gov:2" in (repo / "gov.tf").read_text()
    assert "layer:cn:3" in (repo / "cn.yaml").read_text()


def test_a_file_that_cannot_be_rewritten_is_named_and_left(
    aws: dict[str, str], tmp_path: Path
) -> None:
    publish(aws, "deps", "eu-west-1", 2)
    repo = tmp_path / "repo"
    repo.mkdir()
    arn = b"arn:aws:lambda:eu-west-1:123456789012:layer:deps:1\n"
    (repo / "ok.yaml").write_bytes(arn)
    (repo / "latin1.yaml").write_bytes(b"# caf\xe9\n" + arn)
    (repo / "layer.zip").write_bytes(b"PK\x03\x04\0\0" + arn)
    done = layerkit("bump", "--json", cwd=repo, env=aws, check=False)
    assert done.returncode == 7
    rows = {Path(b["file"]).name: b for b in json.loads(done.stdout)}
    assert rows["ok.yaml"]["status"] == "bumped"
    assert rows["latin1.yaml"]["status"] == "skipped" and "not UTF-8" in rows["latin1.yaml"]["why"]
    assert rows["layer.zip"]["status"] == "skipped" and "binary" in rows["layer.zip"]["why"]
    assert (repo / "latin1.yaml").read_bytes() == b"# caf\xe9\n" + arn
    assert (repo / "layer.zip").read_bytes() == b"PK\x03\x04\0\0" + arn


def test_placeholder_regions_come_from_where_the_registry_saw_the_layer_published(
    aws: dict[str, str], project: Path
) -> None:
    from tests.integration.test_publish import files_recipe
    from tests.integration.test_publish import publish as publish_recipe

    files_recipe(project, '{"a": 1}')  # conf, published to eu-west-1 and us-east-1
    publish_recipe(project, aws)
    (project / "recipes" / "settings.json").write_text('{"a": 2}')
    layerkit("lock", "conf", cwd=project)
    publish_recipe(project, aws)  # conf:2 in both; the registry records where
    publish(aws, "other", "eu-west-1", 2)
    template = project / "template.yaml"
    template.write_text(
        "Layers:\n"
        "  - !Sub arn:aws:lambda:${AWS::Region}:${AWS::AccountId}:layer:conf:1\n"
        "  - arn:aws:lambda:eu-west-1:123456789012:layer:other:1\n"
    )
    done = layerkit("bump", "template.yaml", "--layer", "conf", "--json", cwd=project, env=aws)
    [row] = json.loads(done.stdout)  # --layer: the other layer is not looked at
    assert (row["layer"], row["regions"], row["to"]) == ("conf", ["eu-west-1", "us-east-1"], 2)
    assert template.read_text().count(":1\n") == 1  # other:1 left as it was


def test_one_listing_per_layer_and_region_whatever_the_references(
    aws: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from layerkit.account import bump
    from layerkit.iac.sources import collect

    publish(aws, "deps", "eu-west-1", 3)
    publish(aws, "tools", "eu-west-1", 2)
    for key, value in aws.items():
        monkeypatch.setenv(key, value)
    repo = tmp_path / "repo"
    sources(repo)  # 7 references to deps (versions 1 and 2) and 1 to tools, in 7 files
    clients = Clients()
    planned = bump.plan(
        collect([repo]), clients, regions=["eu-west-1"], published={}, layers=set(), to=None
    )
    assert len(planned) == 8
    assert clients.calls["ListLayerVersions"] == 2  # deps and tools, once each
