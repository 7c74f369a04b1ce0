"""The GitHub Action, the README's workflow and the pre-commit hook, as CI and developers
run them: actionlint on the workflow (which uses this repository's action.yml as a local
action), the action's steps executed in order as the runner would, publishing to moto, and
`pre-commit try-repo` in a scratch git repository."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, layerkit, write_recipe

ACTIONLINT = Path(sys.executable).with_name("actionlint")
RECIPE = (
    '[layer]\nname = "http"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
    '[python]\nrequirements = ["urllib3==2.2.2"]\n[publish]\nregions = ["eu-west-1"]\n'
)


def readme_workflow() -> str:
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- workflow:start -->")[1].split("<!-- workflow:end -->")[0]
    return block.split("```yaml\n", 1)[1].rsplit("```", 1)[0]


def actionlint(repo: Path, workflow: str) -> subprocess.CompletedProcess[str]:
    (repo / ".github" / "workflows").mkdir(parents=True, exist_ok=True)
    (repo / ".github" / "workflows" / "layers.yml").write_text(workflow)
    return subprocess.run(
        [str(ACTIONLINT), "-no-color"], cwd=repo, capture_output=True, text=True, check=False
    )


def test_actionlint_passes_on_the_readme_workflow_and_the_action(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    shutil.copy(REPO / "action.yml", tmp_path / "action.yml")
    # The workflow as users write it, with this checkout's action.yml as the local action.
    workflow = readme_workflow().replace("layerkit/layerkit@v1", "./")
    assert "uses: ./" in workflow
    result = actionlint(tmp_path, workflow)
    assert result.returncode == 0, result.stdout + result.stderr

    # The control: actionlint reads the action's inputs, so a wrong one fails.
    broken = actionlint(tmp_path, workflow.replace("regions: eu-west-1", "region: eu-west-1"))
    assert broken.returncode == 1
    assert 'input "region" is not defined' in broken.stdout


EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


def evaluate(text: str, context: dict[str, str]) -> str:
    """The expressions the action's run steps use; any other makes the test fail, so the
    test is updated with the action."""

    def value(match: re.Match[str]) -> str:
        assert match.group(1) in context, f"unsupported expression in action.yml: {match[0]}"
        return context[match.group(1)]

    return EXPRESSION.sub(value, text)


def checkout(dest: Path) -> Path:
    """The action as the runner checks it out: this repository's files, none of what a
    build leaves in the working tree (pip installing from it writes build/ there)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.decode().split("\0")):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


def run_action(
    inputs: dict[str, str], workspace: Path, env: dict[str, str], temp: Path
) -> dict[str, str]:
    """action.yml's steps in order, as GitHub's runner runs a composite action: inputs with
    their defaults, `shell: bash` as `bash --noprofile --norc -eo pipefail`, GITHUB_PATH,
    GITHUB_ENV and GITHUB_OUTPUT honoured. Returns the action's outputs."""
    action = yaml.safe_load((REPO / "action.yml").read_text())
    given = {name: spec.get("default", "") for name, spec in action["inputs"].items()}
    given.update(inputs)
    context = {f"inputs.{name}": value for name, value in given.items()}
    action_path = checkout(temp / "action")
    context |= {"github.action_path": str(action_path), "runner.temp": str(temp)}
    files = {name: temp / name.lower() for name in ("GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_ENV")}
    for path in files.values():
        path.write_text("")
    process_env = {**os.environ, **env, "RUNNER_TEMP": str(temp)}
    process_env |= {name: str(path) for name, path in files.items()}
    step_outputs: dict[str, dict[str, str]] = {}
    for step in action["runs"]["steps"]:
        uses = step.get("uses", "")
        if uses.startswith("actions/setup-python@"):
            # What setup-python does: that Python first on PATH.
            version = evaluate(step["with"]["python-version"], context)
            [python] = sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}"))
            process_env["PATH"] = f"{python.parent}{os.pathsep}{process_env['PATH']}"
            continue
        if uses.startswith("actions/cache@"):
            # GitHub's to run; what it saves is checked below (the cache path is filled).
            assert (
                "hashFiles(format('{0}/**/*.lock.txt', inputs.recipes-dir))"
                in (step["with"]["key"])
            )
            continue
        assert not uses, f"a step the test does not know how to run: {uses}"
        step_env = {k: evaluate(str(v), context) for k, v in step.get("env", {}).items()}
        script = temp / "step.sh"
        script.write_text(evaluate(step["run"], context))
        files["GITHUB_OUTPUT"].write_text("")
        subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace, env={**process_env, **step_env}, check=True,
        )  # fmt: skip
        for added in files["GITHUB_PATH"].read_text().splitlines():
            process_env["PATH"] = f"{added}{os.pathsep}{process_env['PATH']}"
        files["GITHUB_PATH"].write_text("")
        for line in files["GITHUB_ENV"].read_text().splitlines():
            name, _, value = line.partition("=")
            process_env[name] = value
        if "id" in step:
            step_outputs[step["id"]] = parse_outputs(files["GITHUB_OUTPUT"].read_text())
    for step_id, outputs in step_outputs.items():
        context |= {f"steps.{step_id}.outputs.{k}": v for k, v in outputs.items()}
    return {name: evaluate(spec["value"], context) for name, spec in action["outputs"].items()}


def parse_outputs(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT's two forms: name=value, and name<<DELIMITER … DELIMITER."""
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            for item in lines:
                if item == delimiter:
                    break
                body.append(item)
            outputs[name] = "\n".join(body)
        else:
            name, _, value = line.partition("=")
            outputs[name] = value
    return outputs


@pytest.mark.network
def test_the_actions_steps_publish_to_moto_and_output_the_arns(
    project: Path, aws: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    write_recipe(project, "http", RECIPE)
    layerkit("lock", "http", cwd=project)
    temp = tmp_path_factory.mktemp("runner-temp")
    inputs = {"recipes": "http", "regions": "eu-west-1 us-east-1"}
    outputs = run_action(inputs, project, aws, temp)
    arns = json.loads(outputs["arns"])
    assert sorted(arn.split(":")[3] for arn in arns) == ["eu-west-1", "us-east-1"]
    assert all(arn.endswith(":layer:http:1") for arn in arns)
    result: dict[str, Any] = json.loads(outputs["result"])
    assert {o["status"] for o in result["outcomes"]} == {"published"}
    assert list((temp / "layerkit-cache" / "artifacts").glob("*.zip"))  # what actions/cache saves

    # A second run of the workflow, with its cache restored, finds the content published:
    # same ARNs, nothing new. (The same runner temp: its venv is reused, as one suffices.)
    again = run_action(inputs, project, aws, temp)
    assert sorted(json.loads(again["arns"])) == sorted(arns)
    assert {o["status"] for o in json.loads(again["result"])["outcomes"]} == {"unchanged"}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.mark.network
def test_the_pre_commit_hooks_fail_on_a_stale_lock_and_on_a_template_behind(
    tmp_path: Path, aws: dict[str, str]
) -> None:
    """Both hooks of .pre-commit-hooks.yaml, from one hook environment (pre-commit
    try-repo installs layerkit once): `lock --check` and `bump --check` (on moto)."""
    from tests.fleet import client, zipped

    lam = client(aws, "lambda", "eu-west-1")
    for _ in range(2):
        lam.publish_layer_version(LayerName="deps", Content={"ZipFile": zipped()})
    repo = tmp_path / "team"
    (repo / "recipes").mkdir(parents=True)
    write_recipe(repo, "http", RECIPE)
    layerkit("lock", "http", cwd=repo)
    template = repo / "template.yaml"
    arn = "arn:aws:lambda:eu-west-1:123456789012:layer:deps:{}\n"
    template.write_text(
        "Resources:\n  Fn:\n    Properties:\n      Layers:\n        - " + arn.format(2)
    )
    env = {
        **os.environ, **aws, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit"),
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
    }  # fmt: skip
    git(repo, "init", "-q")
    git(repo, "add", ".")

    def hooks() -> subprocess.CompletedProcess[str]:
        git(repo, "add", ".")
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), "--all-files"],
            cwd=repo, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip

    fresh = hooks()
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "layerkit lock --check" in fresh.stdout and "layerkit bump --check" in fresh.stdout
    assert "Failed" not in fresh.stdout

    recipe = repo / "recipes" / "http.toml"
    good = recipe.read_text()
    recipe.write_text(good.replace("urllib3==2.2.2", "urllib3==2.2.3"))
    stale = hooks()
    assert stale.returncode == 1
    assert "http.python3.12-x86_64.lock.txt is stale" in stale.stdout
    assert "Run `layerkit lock http`" in stale.stdout

    recipe.write_text(good)
    template.write_text(template.read_text().replace(arn.format(2), arn.format(1)))
    behind = hooks()
    assert behind.returncode == 1, behind.stdout + behind.stderr
    assert "1 → 2" in behind.stdout
    assert "deps:1" in template.read_text()  # --check changes nothing
