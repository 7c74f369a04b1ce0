"""verify tells a layer that works from one that does not, in the verifying interpreter.

hypothesis (PyPI) ships a top-level `_hypothesis_pytestplugin` that imports pytest, which
it requires only under its `pytest` extra: a layer of hypothesis works, and verify says
that module needs the extra instead of failing the layer. And the bytecode a layer ships
is proved used: no source of the layer is compiled while verify imports it, until a .pyc
is made unusable (a wrong magic number), which verify then names and fails.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import layerkit, write_recipe

pytestmark = pytest.mark.network

RECIPE = (
    '[layer]\nname = "prop"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
    '[python]\nrequirements = ["hypothesis"]\n'
)


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    project = tmp_path_factory.mktemp("verify")
    (project / "recipes").mkdir()
    write_recipe(project, "prop", RECIPE)
    [artifact] = json.loads(layerkit("build", "prop", "--json", cwd=project).stdout)
    return {"project": project, "zip": project / artifact["path"]}


def verify(layer: dict[str, Any], zip_path: Path) -> tuple[int, dict[str, Any]]:
    done = layerkit("verify", "--native", "--json", str(zip_path), cwd=layer["project"],
                    check=False)  # fmt: skip
    [report] = json.loads(done.stdout)
    return done.returncode, report


def test_a_module_that_needs_an_extra_does_not_fail_the_layer(layer: dict[str, Any]) -> None:
    code, report = verify(layer, layer["zip"])
    plugin = report["modules"]["_hypothesis_pytestplugin"]
    assert plugin.startswith("needs extra hypothesis[pytest]"), plugin
    assert "pytest" in plugin
    assert report["modules"]["hypothesis"] == "ok"
    assert report["ok"] and code == 0
    table = layerkit("verify", "--native", str(layer["zip"]), cwd=layer["project"])
    assert "_hypothesis_pytestplugin: needs extra hypothesis[pytest]" in table.stdout


def test_the_shipped_bytecode_is_used_and_an_unusable_pyc_fails(
    layer: dict[str, Any], tmp_path: Path
) -> None:
    code, report = verify(layer, layer["zip"])
    assert report["bytecode"] == "cpython-312"
    assert report["compiled"] == []  # every source of the layer came from its .pyc

    with zipfile.ZipFile(layer["zip"]) as original:
        names = original.namelist()
        [init_pyc] = [
            n for n in names if n.endswith("hypothesis/__pycache__/__init__.cpython-312.pyc")
        ]
        broken = tmp_path / "broken.zip"
        with zipfile.ZipFile(broken, "w") as copy:
            for info in original.infolist():
                data = original.read(info)
                if info.filename == init_pyc:
                    data = b"\0\0\r\n" + data[4:]  # a magic number no Python has
                copy.writestr(info, data)
    code, report = verify(layer, broken)
    source = init_pyc.replace("__pycache__/__init__.cpython-312.pyc", "__init__.py")
    assert report["compiled"] == [source]
    assert not report["ok"] and code == 3
    table = layerkit("verify", "--native", str(broken), cwd=layer["project"], check=False)
    assert "ships bytecode (cpython-312), yet 1 of its sources were compiled on import" in (
        table.stdout
    )
