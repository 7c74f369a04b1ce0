"""Real Terraform (1.11, hashicorp/aws from the machine's filesystem mirror) against the moto
server: `bump` gives Terraform exactly one in-place change, a layer built from a recipe in
another clone plans nothing, and rollout leaves Terraform's functions to Terraform.

The provider reaches moto through `endpoints {}`; the CLI configuration written here points
`provider_installation` at the mirror (LAYERKIT_TEST_TF_MIRROR, default /opt/tf-plugins),
as `.ci/run` checks it exists. The functions carry Terraform's `default_tags`, the mark
users give their functions, read back through moto's Tagging API.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import layerkit, write_recipe
from tests.fleet import client, execution_role, zipped

MIRROR = Path(os.environ.get("LAYERKIT_TEST_TF_MIRROR", "/opt/tf-plugins"))
REGION = "eu-west-1"

PROVIDER = """\
variable "region" {{ default = "{region}" }}
provider "aws" {{
  region                      = var.region
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  endpoints {{
    lambda = "{endpoint}"
    iam    = "{endpoint}"
    sts    = "{endpoint}"
  }}
  default_tags {{ tags = {{ ManagedBy = "terraform" }} }}
}}
data "aws_caller_identity" "current" {{}}
"""

FUNCTION = """\
resource "aws_lambda_function" "api" {
  function_name    = "api"
  role             = "%s"
  handler          = "h.handle"
  runtime          = "python3.12"
  filename         = "fn.zip"
  source_code_hash = filebase64sha256("fn.zip")
  layers = [
    # pinned; `layerkit bump` moves it
    "arn:aws:lambda:${var.region}:${data.aws_caller_identity.current.account_id}:layer:x:1",
  ]
}
"""


def terraform(folder: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["terraform", args[0], "-no-color", *args[1:]], cwd=folder, capture_output=True,
        text=True, check=False, env={**os.environ, "TF_CLI_CONFIG_FILE": str(folder / "cli.tfrc"),
                                     "TF_IN_AUTOMATION": "1"},
    )  # fmt: skip
    if check and result.returncode not in (0,):
        raise AssertionError(f"terraform {' '.join(args)}: {result.stdout}\n{result.stderr}")
    return result


def stack(
    tmp_path: Path, aws: dict[str, str], body: str, files: dict[str, bytes] | None = None
) -> Path:
    """A Terraform folder with the provider and `body`, initialised and applied."""
    folder = tmp_path / "infra"
    folder.mkdir()
    for name, data in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    (folder / "cli.tfrc").write_text(
        "provider_installation {\n  filesystem_mirror {\n"
        f'    path    = "{MIRROR}"\n    include = ["registry.terraform.io/hashicorp/aws"]\n'
        "  }\n}\n"
    )
    (folder / "main.tf").write_text(
        PROVIDER.format(region=REGION, endpoint=aws["AWS_ENDPOINT_URL"]) + body
    )
    (folder / "fn.zip").write_bytes(zipped())
    terraform(folder, "init", "-input=false")
    terraform(folder, "apply", "-input=false", "-auto-approve")
    return folder


def changes(folder: Path) -> list[tuple[str, list[str], list[str]]]:
    """Each resource Terraform would change: its address, actions and changed attributes."""
    plan = terraform(folder, "plan", "-input=false", "-out", "plan.bin")
    assert plan.returncode == 0, plan.stderr
    shown: dict[str, Any] = json.loads(terraform(folder, "show", "-json", "plan.bin").stdout)
    found = []
    for rc in shown.get("resource_changes", []):
        if rc["change"]["actions"] == ["no-op"] or rc["mode"] == "data":
            continue
        before, after = rc["change"]["before"] or {}, rc["change"]["after"] or {}
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        found.append((rc["address"], rc["change"]["actions"], changed))
    return found


def layers_of(aws: dict[str, str], name: str) -> list[str]:
    config = client(aws, "lambda", REGION).get_function_configuration(FunctionName=name)
    return [layer["Arn"] for layer in config["Layers"]]


@pytest.fixture
def applied(tmp_path: Path, aws: dict[str, str]) -> Path:
    """A Terraform stack with function api on layer x:1, and x:2 published since."""
    if shutil.which("terraform") is None or not MIRROR.is_dir():
        raise AssertionError(f"terraform and its provider mirror ({MIRROR}) are needed")
    lam = client(aws, "lambda", REGION)
    for _ in range(2):
        lam.publish_layer_version(LayerName="x", Content={"ZipFile": zipped()})
    return stack(tmp_path, aws, FUNCTION % execution_role(aws))


def test_rollout_leaves_terraforms_function_to_terraform_and_bump_moves_it(
    applied: Path, aws: dict[str, str]
) -> None:
    """One story, one stack: rollout refuses the function Terraform owns; forced, the
    drift is real (Terraform plans to undo it); bump is the way, and gives Terraform
    exactly one in-place change, then nothing."""
    refused = layerkit("rollout", "x", "--region", REGION, "--owner-tag", "ManagedBy",
                       cwd=applied, env=aws, check=False)  # fmt: skip
    assert refused.returncode == 7
    assert "owned by ManagedBy=terraform" in refused.stdout
    assert layers_of(aws, "api") == [f"arn:aws:lambda:{REGION}:123456789012:layer:x:1"]
    assert changes(applied) == []

    forced = layerkit("rollout", "x", "--region", REGION, "--owner-tag", "ManagedBy",
                      "--allow-drift", cwd=applied, env=aws)  # fmt: skip
    assert "drift: ManagedBy=terraform will put its own layers back" in forced.stdout
    assert changes(applied) == [("aws_lambda_function.api", ["update"], ["layers"])]
    terraform(applied, "apply", "-input=false", "-auto-approve")  # the owner puts x:1 back
    assert layers_of(aws, "api") == [f"arn:aws:lambda:{REGION}:123456789012:layer:x:1"]

    state_before = (applied / "terraform.tfstate").read_bytes()
    layerkit("bump", "--region", REGION, cwd=applied, env=aws)
    assert ":layer:x:2" in (applied / "main.tf").read_text()
    assert "# pinned; `layerkit bump` moves it" in (applied / "main.tf").read_text()
    assert (applied / "terraform.tfstate").read_bytes() == state_before  # state is not a source

    assert changes(applied) == [("aws_lambda_function.api", ["update"], ["layers"])]
    terraform(applied, "apply", "-input=false", "-auto-approve")
    assert layers_of(aws, "api") == [f"arn:aws:lambda:{REGION}:123456789012:layer:x:2"]
    assert changes(applied) == []


def test_a_layer_built_in_another_clone_plans_no_change(
    tmp_path: Path, aws: dict[str, str]
) -> None:
    def build(clone: Path) -> Path:
        (clone / "recipes").mkdir(parents=True)
        (clone / "recipes" / "settings.json").write_text('{"a": 1}\n')
        os.utime(clone / "recipes" / "settings.json", (len(clone.name) * 1e8,) * 2)
        write_recipe(
            clone, "conf",
            '[layer]\nname = "conf"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
            '[[files]]\nsource = "settings.json"\ntarget = "etc/conf/settings.json"\n',
        )  # fmt: skip
        layerkit("build", "conf", cwd=clone, env={"LAYERKIT_CACHE_DIR": str(clone / "cache")})
        return clone / "dist" / "conf.zip"

    first = build(tmp_path / "clone-a")
    body = (
        'resource "aws_lambda_layer_version" "conf" {\n'
        '  layer_name          = "conf"\n'
        '  filename            = "dist/conf.zip"\n'
        '  source_code_hash    = filebase64sha256("dist/conf.zip")\n'
        '  compatible_runtimes = ["python3.12"]\n'
        "}\n"
    )
    applied = stack(tmp_path, aws, body, {"dist/conf.zip": first.read_bytes()})
    assert changes(applied) == []

    second = build(tmp_path / "clone-b")  # another path, other file times, a cold cache
    shutil.copy(second, applied / "dist" / "conf.zip")
    assert changes(applied) == []
    published = client(aws, "lambda", REGION).list_layer_versions(LayerName="conf")
    assert len(published["LayerVersions"]) == 1
