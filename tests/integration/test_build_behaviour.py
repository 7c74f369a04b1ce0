"""What users rely on from build to build: same bytes, fresh locks, caches, integrity."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from layerkit.builder.lockfile import Lock, LockedDist, input_hash, parse
from layerkit.recipe import load
from tests.conftest import RECIPES, layerkit, write_recipe
from tests.unit.test_index import local_index
from tests.wheels import make_wheel

SMALL = (
    '[layer]\nname = "small"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
    '[python]\nrequirements = ["idna"]\n'
)


def build(project: Path, *args: str, **kwargs: Any) -> list[dict[str, Any]]:
    result = layerkit("build", *args, "--json", cwd=project, **kwargs)
    artifacts: list[dict[str, Any]] = json.loads(result.stdout)
    return artifacts


@pytest.mark.network
def test_the_same_recipe_and_lock_give_the_same_bytes_anywhere(tmp_path: Path) -> None:
    first, second = tmp_path / "laptop", tmp_path / "ci" / "checkout"
    shutil.copytree(RECIPES, first / "recipes", ignore=shutil.ignore_patterns("*.lock.txt"))
    [a] = build(first, "app-config", env={"LAYERKIT_CACHE_DIR": str(tmp_path / "cache-a")})

    # Another checkout: other folder, umask 077 modes, other mtimes, [[files]] reordered,
    # an empty cache so every wheel is downloaded again, run later.
    shutil.copytree(first / "recipes", second / "recipes")
    recipe_file = second / "recipes" / "app-config.toml"
    head, *files = recipe_file.read_text().split("[[files]]")
    recipe_file.write_text(head + "".join("[[files]]" + f for f in reversed(files)))
    for path in (second / "recipes").rglob("*"):
        if path.is_file():
            path.chmod(0o700 if os.access(path, os.X_OK) else 0o600)
            os.utime(path, (1_000_000_000, 1_000_000_000))
    env = {"LAYERKIT_CACHE_DIR": str(tmp_path / "cache-b")}
    result = layerkit(
        "build", "app-config", "--locked", "--json", "-o", "out", cwd=second, env=env, umask=0o077
    )
    [b] = json.loads(result.stdout)
    assert b["status"] == "built"
    assert a["sha256"] == b["sha256"]
    assert (first / a["path"]).read_bytes() == (second / b["path"]).read_bytes()


@pytest.mark.network
def test_build_writes_a_missing_lock_and_refreshes_a_stale_one_saying_so(project: Path) -> None:
    write_recipe(project, "small", SMALL)
    first = layerkit("build", "small", cwd=project)
    assert "small.python3.12-x86_64.lock.txt does not exist: writing it" in first.stderr
    zip_path = project / "dist" / "small.zip"
    original = zip_path.read_bytes()

    write_recipe(project, "small", SMALL.replace('["idna"]', '["idna", "six"]'))
    refused = layerkit("build", "small", "--locked", cwd=project, check=False)
    assert refused.returncode == 2
    assert "small.python3.12-x86_64.lock.txt is stale" in refused.stderr
    assert "Run `layerkit lock small`" in refused.stderr
    assert zip_path.read_bytes() == original  # nothing half-written

    refreshed = layerkit("build", "small", cwd=project)
    assert "is stale (the recipe changed): refreshing it" in refreshed.stderr
    assert zip_path.read_bytes() != original


def test_locked_refuses_a_missing_lock_with_the_command_to_fix_it(project: Path) -> None:
    write_recipe(project, "small", SMALL)
    result = layerkit("build", "small", "--locked", cwd=project, check=False)
    assert result.returncode == 2
    assert "does not exist. Run `layerkit lock small` and commit the lock file." in result.stderr
    assert not (project / "dist").exists()


@pytest.mark.network
def test_lock_keeps_pinned_versions_until_asked_to_upgrade(project: Path) -> None:
    write_recipe(project, "small", SMALL.replace('["idna"]', '["idna==3.6"]'))
    layerkit("lock", "small", cwd=project)
    write_recipe(project, "small", SMALL)  # the pin is relaxed: the lock keeps 3.6
    layerkit("lock", "small", cwd=project)
    lock_file = project / "recipes" / "small.python3.12-x86_64.lock.txt"
    [kept] = parse(lock_file.read_text()).dists
    assert kept.version == "3.6"
    assert len(kept.hashes) == 1
    layerkit("lock", "small", "--upgrade-package", "idna", cwd=project)
    [upgraded] = parse(lock_file.read_text()).dists
    assert upgraded.version != "3.6"
    assert upgraded.hashes != kept.hashes


@pytest.mark.network
def test_an_unchanged_build_is_a_no_op_and_a_deleted_zip_comes_back_from_the_cache(
    project: Path,
) -> None:
    write_recipe(project, "small", SMALL)
    env = {"LAYERKIT_CACHE_DIR": str(project / "cache")}
    [built] = build(project, "small", env=env)
    assert built["status"] == "built"
    [again] = build(project, "small", env=env)
    assert again["status"] == "unchanged"
    (project / "dist" / "small.zip").unlink()
    [restored] = build(project, "small", env=env)
    assert restored["status"] == "cached"
    assert restored["sha256"] == built["sha256"]


@pytest.mark.network
def test_wheels_are_reused_across_recipes_without_the_index(project: Path) -> None:
    write_recipe(project, "small", SMALL)
    build(project, "small")
    write_recipe(project, "other", SMALL.replace('"small"', '"other"'))
    lock = (project / "recipes" / "small.python3.12-x86_64.lock.txt").read_text()
    (project / "recipes" / "other.python3.12-x86_64.lock.txt").write_text(lock)
    # Nothing listens on port 9: any index request would fail the build.
    [other] = build(project, "other", "--locked", "--index-url", "http://127.0.0.1:9/simple")
    assert other["status"] == "built"


def test_a_layer_over_the_unzipped_quota_is_refused_before_anything_is_written(
    project: Path,
) -> None:
    (project / "recipes" / "big.bin").write_bytes(b"")
    os.truncate(project / "recipes" / "big.bin", 262_144_000)
    write_recipe(
        project,
        "big",
        '[layer]\nname = "big"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
        '[[files]]\nsource = "big.bin"\ntarget = "share/big.bin"\n',
    )
    cache = project / "cache"
    result = layerkit(
        "build", "big", cwd=project, check=False, env={"LAYERKIT_CACHE_DIR": str(cache)}
    )
    assert result.returncode == 3
    assert "262,144,000 bytes" in result.stderr
    assert not (project / "dist").exists()
    assert not list(cache.rglob("*.zip"))


def locked_demo(project: Path, index_root: Path) -> tuple[str, Path]:
    """A recipe locked against a local index that serves one real wheel."""
    wheel = make_wheel(project / "wheels", "demo", "1.0", {"demo/__init__.py": b"X = 1\n"})
    url = local_index(index_root, "demo", wheel.name, wheel.read_bytes())
    path = write_recipe(project, "demo", SMALL.replace('"small"', '"demo"').replace("idna", "demo"))
    recipe = load(path)
    [target] = recipe.targets
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    lock = Lock(target.id, input_hash(recipe, target), (LockedDist("demo", "1.0", (sha,), ()),))
    recipe.lock_path(target).write_text(lock.render(target, "demo"))
    return url, index_root / "files" / wheel.name


def test_a_wheel_that_differs_from_the_lock_fails_the_build(project: Path) -> None:
    url, served = locked_demo(project, project / "index")
    env = {"LAYERKIT_CACHE_DIR": str(project / "cache")}
    served.write_bytes(served.read_bytes() + b"tampered")
    result = layerkit(
        "build", "demo", "--locked", "--index-url", url, cwd=project, check=False, env=env
    )
    assert result.returncode == 4
    assert "the lock expects" in result.stderr
    assert not (project / "dist").exists()


def test_a_lock_whose_hash_was_edited_fails_the_build(project: Path) -> None:
    url, _ = locked_demo(project, project / "index")
    env = {"LAYERKIT_CACHE_DIR": str(project / "cache")}
    lock_file = project / "recipes" / "demo.python3.12-x86_64.lock.txt"
    text = lock_file.read_text()
    sha = parse(text).dists[0].hashes[0]
    lock_file.write_text(text.replace(sha, "f" * 64))
    result = layerkit(
        "build", "demo", "--locked", "--index-url", url, cwd=project, check=False, env=env
    )
    assert result.returncode == 4
    assert "match the hashes in the python3.12-x86_64 lock" in result.stderr
    lock_file.write_text(text)
    [built] = build(project, "demo", "--locked", "--index-url", url, env=env)
    assert built["status"] == "built"


@pytest.mark.network
def test_lock_check_passes_a_fresh_lock_and_refuses_a_stale_one(project: Path) -> None:
    write_recipe(project, "small", SMALL)
    layerkit("lock", "small", cwd=project)
    assert layerkit("lock", "small", "--check", cwd=project).returncode == 0
    write_recipe(project, "small", SMALL.replace('["idna"]', '["idna", "six"]'))
    stale = layerkit("lock", "small", "--check", cwd=project, check=False)
    assert stale.returncode == 2
    assert "is stale" in stale.stderr


@pytest.mark.network
def test_a_requirements_file_is_locked_and_named_as_the_source(project: Path) -> None:
    (project / "recipes" / "small.in").write_text("# shared with our tests\nidna\n")
    write_recipe(
        project,
        "small",
        SMALL.replace('requirements = ["idna"]', 'requirements-file = "small.in"'),
    )
    layerkit("lock", "small", cwd=project)
    lock_file = project / "recipes" / "small.python3.12-x86_64.lock.txt"
    assert "# via -r small.in" in lock_file.read_text()
    assert str(project) not in lock_file.read_text()
    (project / "recipes" / "small.in").write_text("idna\nsix\n")
    stale = layerkit("build", "small", "--locked", cwd=project, check=False)
    assert stale.returncode == 2


@pytest.mark.network
def test_strip_shrinks_shared_objects_and_the_layer_still_imports(
    project: Path, tmp_path: Path
) -> None:
    from tests.layers import extract, import_all

    recipe = (
        '[layer]\nname = "yaml"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
        '[python]\nrequirements = ["PyYAML==6.0.2"]\n'
    )
    write_recipe(project, "yaml", recipe)
    [plain] = build(project, "yaml", "-o", "plain")
    write_recipe(project, "yaml", recipe + "[slim]\nstrip = true\n")
    [stripped] = build(project, "yaml", "-o", "stripped")
    assert stripped["sha256"] != plain["sha256"]
    assert stripped["unzipped"] < plain["unzipped"]
    opt = extract(project / stripped["path"], tmp_path / "opt")
    results = import_all(opt, tmp_path / "no-runtime", "yaml", "python3.12-x86_64", "3.12")
    assert results == {"_yaml": "ok", "yaml": "ok"}


@pytest.mark.network
def test_a_new_description_rebuilds_the_zip_that_carries_it(project: Path) -> None:
    write_recipe(
        project, "small", SMALL.replace('name = "small"', 'name = "small"\ndescription = "one"')
    )
    [first] = build(project, "small")
    write_recipe(
        project, "small", SMALL.replace('name = "small"', 'name = "small"\ndescription = "two"')
    )
    [second] = build(project, "small")
    assert second["status"] == "built"
    assert second["sha256"] != first["sha256"]
    with zipfile.ZipFile(project / second["path"]) as zipped:
        assert json.loads(zipped.read("layerkit/small.json"))["description"] == "two"


@pytest.mark.network
def test_a_no_op_build_never_reports_a_stale_hash_for_a_zip_changed_in_place(
    project: Path,
) -> None:
    write_recipe(project, "small", SMALL)
    env = {"LAYERKIT_CACHE_DIR": str(project / "cache")}
    [built] = build(project, "small", env=env)
    zip_path = project / "dist" / "small.zip"
    with zip_path.open("ab") as changed:  # e.g. a tool that rewrites the ZIP in place
        changed.write(b"\0" * 100)
    [again] = build(project, "small", env=env)
    assert again["sha256"] == hashlib.sha256(zip_path.read_bytes()).hexdigest()
    assert again["sha256"] != built["sha256"]
