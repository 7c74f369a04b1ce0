from __future__ import annotations

import datetime
import logging
from pathlib import Path, PurePosixPath

import pytest

from layerkit.builder.context import Context
from layerkit.builder.pipeline import lock_recipe
from layerkit.errors import RecipeError
from layerkit.recipe import find, load
from layerkit.targets import RUNTIME_PROVIDED
from tests.conftest import RECIPES, layerkit

GOOD = """
[layer]
name = "http-client"
description = "requests for our services"
runtimes = ["python3.12", "python3.13"]
architectures = ["x86_64", "arm64"]

[python]
requirements = ["requests>=2.32"]
exclude = ["Boto3"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


def error(tmp_path: Path, text: str) -> RecipeError:
    with pytest.raises(RecipeError) as caught:
        load(write(tmp_path, text))
    return caught.value


def test_a_good_recipe_loads_with_one_target_per_runtime_and_architecture(tmp_path: Path) -> None:
    recipe = load(write(tmp_path, GOOD))
    assert [t.id for t in recipe.targets] == [
        "python3.12-x86_64",
        "python3.13-x86_64",
        "python3.12-arm64",
        "python3.13-arm64",
    ]
    assert recipe.exclude == {"boto3"}  # names are normalised as pip does
    assert recipe.lock_path(recipe.targets[0]).name == "r.python3.12-x86_64.lock.txt"


def test_every_shipped_recipe_is_valid() -> None:
    names = sorted(p.stem for p in RECIPES.glob("*.toml"))
    assert len(names) >= 3
    for name in names:
        load(RECIPES / f"{name}.toml")


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    exc = error(tmp_path, GOOD.replace("runtimes =", "runtime ="))
    assert exc.key == "layer.runtime"
    assert "Perhaps you meant `runtimes`?" in str(exc)
    assert str(exc).startswith(str(tmp_path / "r.toml"))


def test_unknown_section_is_rejected(tmp_path: Path) -> None:
    exc = error(tmp_path, GOOD + "\n[pyhton]\nrequirements = []\n")
    assert "Perhaps you meant `python`?" in str(exc)


def test_wrong_type_names_the_key_and_the_type(tmp_path: Path) -> None:
    exc = error(tmp_path, GOOD.replace('requirements = ["requests>=2.32"]', 'requirements = "x"'))
    assert exc.key == "python.requirements"
    assert "must be a list" in str(exc)


def test_unknown_runtime_lists_what_is_allowed(tmp_path: Path) -> None:
    exc = error(tmp_path, GOOD.replace('"python3.13"', '"python3.31"'))
    assert exc.key == "layer.runtimes"
    assert "'python3.31' is not a Lambda Python runtime" in str(exc)
    assert "python3.12" in str(exc)


def test_unknown_architecture_suggests_arm64(tmp_path: Path) -> None:
    exc = error(tmp_path, GOOD.replace('"arm64"', '"aarch64"'))
    assert exc.key == "layer.architectures"
    assert "Allowed: x86_64, arm64" in str(exc)


def test_deprecated_runtime_is_a_warning_with_its_dates_and_their_source(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, GOOD.replace('"python3.13"', '"python3.10"'))
    with caplog.at_level(logging.WARNING, logger="layerkit"):
        load(path, today=lambda: datetime.date(2026, 12, 2))
    said = " ".join(caplog.text.split())
    assert "python3.10 was deprecated on 2026-10-31" in said
    assert "creating functions is blocked since 2026-11-30" in said
    assert "updating functions is blocked from 2027-01-15" in said
    assert "docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html, read 2026-12-02" in said
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="layerkit"):
        load(path, today=lambda: datetime.date(2026, 10, 30))
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("../etc/passwd", "must be a relative path inside /opt"),
        ("/etc/app.json", "must be a relative path inside /opt"),
        ("python/requests/__init__.py", "would shadow them"),
        ("layerkit/x.json", "which layerkit owns"),
    ],
)
def test_file_targets_stay_inside_opt_and_out_of_python(
    tmp_path: Path, target: str, problem: str
) -> None:
    (tmp_path / "app.json").write_text("{}")
    files = f'\n[[files]]\nsource = "app.json"\ntarget = "{target}"\n'
    exc = error(tmp_path, GOOD + files)
    assert exc.key == "files[0].target"
    assert problem in str(exc)


def test_a_missing_source_file_names_where_it_was_looked_for(tmp_path: Path) -> None:
    exc = error(tmp_path, GOOD + '\n[[files]]\nsource = "nope.json"\ntarget = "etc/x.json"\n')
    assert exc.key == "files[0].source"
    assert str(tmp_path / "nope.json") in str(exc)


def test_file_targets_are_kept_relative_to_opt(tmp_path: Path) -> None:
    (tmp_path / "app.json").write_text("{}")
    recipe = load(
        write(tmp_path, GOOD + '\n[[files]]\nsource = "app.json"\ntarget = "etc/a.json"\n')
    )
    assert recipe.files[0].target == PurePosixPath("etc/a.json")
    assert recipe.files[0].source == tmp_path / "app.json"


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"),
    [
        ('"http-client"', '"http client"', "layer.name", "not a valid LayerName"),
        ('"http-client"', '"' + "x" * 141 + '"', "layer.name", "1 to 140"),
        ('"requests for our services"', '"' + "d" * 225 + '"', "layer.description", "at most 224"),
    ],
)
def test_values_over_the_api_limits_are_refused(
    tmp_path: Path, old: str, new: str, key: str, problem: str
) -> None:
    exc = error(tmp_path, GOOD.replace(old, new))
    assert exc.key == key
    assert problem in str(exc)


@pytest.mark.parametrize("locked", [True, False])
def test_an_invalid_requirement_is_named_before_any_lock_is_judged_or_written(
    tmp_path: Path, locked: bool
) -> None:
    # Checked where requirements are resolved, not at load: a lock that matches the recipe
    # proves they parsed (its input hash covers them), so a no-op build never imports the
    # parser. Without a lock, --locked must name the requirement, not "the lock is missing".
    recipe = load(write(tmp_path, GOOD.replace('"requests>=2.32"', '"requests>>2"')))
    ctx = Context.from_environment({"LAYERKIT_CACHE_DIR": str(tmp_path / "cache")})
    with pytest.raises(RecipeError) as caught:
        lock_recipe(recipe, ctx, check=locked)
    assert caught.value.key == "python.requirements"
    assert "'requests>>2' is not a valid requirement" in str(caught.value)
    assert not list(tmp_path.glob("*.lock.txt"))


def test_license_over_512_characters_is_refused(tmp_path: Path) -> None:
    exc = error(tmp_path, GOOD.replace("description =", f'license = "{"l" * 513}"\ndescription ='))
    assert exc.key == "layer.license"


def test_requirements_and_requirements_file_are_exclusive(tmp_path: Path) -> None:
    (tmp_path / "r.in").write_text("requests\n")
    exc = error(tmp_path, GOOD.replace("[python]", '[python]\nrequirements-file = "r.in"'))
    assert "not both" in str(exc)


def test_exclude_runtime_provided_excludes_the_whole_set(tmp_path: Path) -> None:
    recipe = load(write(tmp_path, GOOD + "exclude-runtime-provided = true\n"))
    assert recipe.exclude == RUNTIME_PROVIDED | {"boto3"}


def test_invalid_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    exc = error(tmp_path, "[layer\nname=1")
    assert "is not valid TOML" in str(exc)


def test_a_recipe_is_found_by_name_with_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "http-client.toml").write_text(GOOD)
    assert find("http-client", tmp_path) == tmp_path / "http-client.toml"
    with pytest.raises(RecipeError, match="Perhaps you meant 'http-client'"):
        find("http-clinet", tmp_path)


def test_the_cli_reports_a_bad_recipe_in_one_paragraph_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "bad.toml").write_text(GOOD.replace('"arm64"', '"arm"'))
    result = layerkit("build", "bad", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: recipes/bad.toml: layer.architectures: 'arm'")
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize(
    "name", ["Foo.Bar_baz", "zope.interface", "PyYAML", "typing__extensions", "a-_.b", "x"]
)
def test_names_are_compared_as_packaging_compares_them(name: str) -> None:
    from packaging.utils import canonicalize_name

    from layerkit.names import canonical

    assert canonical(name) == canonicalize_name(name)
