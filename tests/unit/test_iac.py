"""Finding layer version ARNs in IaC sources as each tool writes them, and rewriting only
their version digits. The snippets are shaped like public templates of each tool."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from layerkit.errors import UserError
from layerkit.iac.references import find, rewrite
from layerkit.iac.sources import collect

POWERTOOLS = "017000801446"

# (source text, region as written or None for a placeholder, account or None, layer)
WRITTEN = [
    # SAM / CloudFormation, short-form !Sub (a plain YAML loader rejects the tag)
    ("Layers:\n  - !Sub arn:aws:lambda:${AWS::Region}:017000801446:layer:"
     "AWSLambdaPowertoolsPythonV3-python312-x86_64:7\n", None, POWERTOOLS),
    ('{"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:layer:deps:3"}',
     None, None),
    # Terraform
    ('layers = ["arn:aws:lambda:${var.region}:017000801446:layer:AWSLambdaPowertoolsPythonV3'
     '-python312-arm64:7"]', None, POWERTOOLS),
    ('layers = ["arn:aws:lambda:${data.aws_region.current.name}:'
     '${data.aws_caller_identity.current.account_id}:layer:deps:3"]', None, None),
    ('layers = ["arn:aws:lambda:${local.region}:123456789012:layer:deps:3"]', None, "123456789012"),
    # Serverless
    ("layers:\n  - arn:aws:lambda:${aws:region}:017000801446:layer:"
     "AWSLambdaPowertoolsPythonV3-python313-x86_64:7\n", None, POWERTOOLS),
    ("  - arn:aws:lambda:${self:provider.region}:123456789012:layer:deps:3\n", None,
     "123456789012"),
    # CDK, Python f-strings
    ('f"arn:aws:lambda:{self.region}:017000801446:layer:AWSLambdaPowertoolsPythonV3'
     '-python312-x86_64:7"', None, POWERTOOLS),
    ('f"arn:aws:lambda:{Aws.REGION}:{Aws.ACCOUNT_ID}:layer:deps:3"', None, None),
    ('f"arn:aws:lambda:{stack.region}:123456789012:layer:deps:3"', None, "123456789012"),
    # CDK, TypeScript template literals
    ("`arn:aws:lambda:${cdk.Stack.of(this).region}:017000801446:layer:"
     "AWSLambdaPowertoolsTypeScriptV2:7`", None, POWERTOOLS),
    ("`arn:aws:lambda:${props?.env?.region}:123456789012:layer:deps:3`", None, "123456789012"),
    ("`arn:aws:lambda:${this.region}:${this.account}:layer:deps:3`", None, None),
    ("`arn:aws:lambda:${region}:123456789012:layer:deps:3`", None, "123456789012"),
    # literal, every partition
    ("LAYER=arn:aws:lambda:eu-west-1:123456789012:layer:deps:3\n", "eu-west-1", "123456789012"),
    ('"arn:aws-cn:lambda:cn-north-1:123456789012:layer:deps:3"', "cn-north-1", "123456789012"),
    ("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:layer:deps:3", "us-gov-west-1",
     "123456789012"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "region", "account"), WRITTEN)
def test_each_tools_way_of_writing_an_arn_is_found_with_its_placeholders(
    text: str, region: str | None, account: str | None
) -> None:
    [found] = find(text)
    assert found.problem is None
    assert found.region == region
    assert found.account == account
    assert found.version in {3, 7}
    assert text[found.start : found.end] == str(found.version)
    moved = rewrite(text, {found: 42})
    # only the version's digits changed
    assert moved == text[: found.start] + "42" + text[found.end :]


def test_expressions_in_the_name_or_version_are_reported_never_skipped() -> None:
    text = (
        'a = "arn:aws:lambda:${var.region}:017000801446:layer:'
        'AWSLambdaPowertoolsPythonV3-python312-${var.architecture}:4"\n'
        'b = "arn:aws:lambda:${var.region}:017000801446:layer:'
        'AWSLambdaPowertoolsPythonV3-python312-x86_64:${var.powertools_version}"\n'
        'c = format("arn:aws:lambda:%s:%s:layer:deps:3", var.region, var.account)\n'
    )
    found = find(text)
    assert [f.line for f in found] == [1, 2, 3]
    assert "layer name" in str(found[0].problem)
    assert found[1].problem == "the version '${var.powertools_version}' is an expression"
    assert "not one bump can read" in str(found[2].problem)
    assert all(f.version is None or f.problem for f in found)


def test_a_rewrite_keeps_every_other_byte() -> None:
    text = (
        "\ufeff# comment ü\r\n"
        "Layers:\r\n"
        "  - 'arn:aws:lambda:eu-west-1:123456789012:layer:deps:9'  # pinned\r\n"
        '  - "arn:aws:lambda:eu-west-1:123456789012:layer:deps:10"\r\n'
        "  - arn:aws:lambda:eu-west-1:123456789012:layer:other:1\r\n"
    )
    first, second, third = find(text)
    moved = rewrite(text, {first: 12, second: 12})
    assert moved == text.replace("deps:9'", "deps:12'").replace('deps:10"', 'deps:12"')
    assert third.version == 1
    # an unversioned layer ARN (an IAM policy's resource) is not a reference
    assert find("Resource: arn:aws:lambda:eu-west-1:123456789012:layer:deps\n") == []
    # digits that go on are not a version: nothing is cut in half, and it is reported
    [odd] = find("arn:aws:lambda:eu-west-1:123456789012:layer:deps:3abc")
    assert odd.version is None and odd.problem
    # a policy's wildcard pattern is not a reference either
    assert find("Resource: arn:aws:lambda:*:123456789012:layer:deps:*\n") == []


def test_generated_vendored_and_ignored_trees_are_never_read(tmp_path: Path) -> None:
    arn = "arn:aws:lambda:eu-west-1:123456789012:layer:deps:1\n"
    for folder in ("infra", "node_modules/x", "cdk.out", ".aws-sam/build", ".terraform/m",
                   ".serverless", "env", "ignored"):  # fmt: skip
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "t.yaml").write_text(arn)
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    for state in ("terraform.tfstate", "terraform.tfstate.backup"):  # what was applied
        (tmp_path / "infra" / state).write_text(arn)
    (tmp_path / ".gitignore").write_text("ignored/\n")

    walked = sorted(s.path.relative_to(tmp_path).as_posix() for s in collect([tmp_path]).read)
    # outside git, the walk knows the generated trees but not .gitignore
    assert walked == ["ignored/t.yaml", "infra/t.yaml"]

    os.system(f"git -C {tmp_path} init -q")
    listed = sorted(s.path.relative_to(tmp_path).as_posix() for s in collect([tmp_path]).read)
    assert listed == ["infra/t.yaml"]


def test_links_are_not_followed_and_bad_files_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = b"arn:aws:lambda:eu-west-1:123456789012:layer:deps:1\n"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "t.yaml").write_bytes(arn)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "real.yaml").write_bytes(arn)
    (tree / "inside.yaml").symlink_to(tree / "real.yaml")
    (tree / "out.yaml").symlink_to(outside / "t.yaml")
    (tree / "loop").symlink_to(tree / "loop")
    (tree / "linked-dir").symlink_to(outside)
    (tree / "latin1.yaml").write_bytes(b"# caf\xe9\n" + arn)
    (tree / "blob.bin").write_bytes(b"\0\1" + arn)
    (tree / "unreadable.yaml").write_bytes(arn)
    (tree / "unreadable.yaml").chmod(0)

    found = collect([tree])
    readable = ["real.yaml"] + (["unreadable.yaml"] if os.geteuid() == 0 else [])  # root reads all
    assert sorted(s.path.name for s in found.read) == readable
    why = {s.path.name: s.why for s in found.skipped}
    assert "out of the given paths" in why["out.yaml"]
    assert "out of the given paths" in why["linked-dir"]
    assert "loop" in why["loop"]
    assert "not UTF-8" in why["latin1.yaml"]
    assert "binary" in why["blob.bin"]
    if os.geteuid() != 0:
        assert "cannot be read" in why["unreadable.yaml"]
    assert "inside.yaml" not in why  # its target is read under its own name

    # overlapping paths, spelt two ways, read each file once; a link given by name is
    # followed (here to the same file)
    monkeypatch.chdir(tmp_path)
    twice = collect([Path("tree"), tree / "real.yaml", tree / "inside.yaml"])
    assert [s.path.name for s in twice.read].count("real.yaml") == 1
    assert collect([tree / "inside.yaml"]).read[0].path == tree / "real.yaml"

    with pytest.raises(UserError, match="nowhere does not exist"):
        collect([tmp_path / "nowhere"])
    with pytest.raises(UserError, match="loop is a broken symbolic link, or a loop"):
        collect([tree / "loop"])
