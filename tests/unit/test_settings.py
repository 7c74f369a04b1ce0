"""Settings are declared once and resolved one way: flag, environment, recipe, default."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerkit import settings
from layerkit.errors import UserError
from tests.conftest import REPO


def test_a_flag_beats_the_variable_which_beats_the_recipe_which_beats_the_default() -> None:
    env = {"LAYERKIT_S3_BUCKET": "from-env"}
    bucket = settings.S3_BUCKET
    assert settings.resolve(bucket, env, flag="from-flag", recipe="from-recipe") == "from-flag"
    assert settings.resolve(bucket, env, recipe="from-recipe") == "from-env"
    assert settings.resolve(bucket, {}, recipe="from-recipe") == "from-recipe"
    assert settings.resolve(bucket, {}) is None
    assert settings.resolve(bucket, {"LAYERKIT_S3_BUCKET": ""}, recipe="r") == "r"  # empty: unset


def test_defaults_follow_the_environment_they_are_resolved_in() -> None:
    home = {"HOME": "/home/u"}
    assert settings.resolve(settings.CACHE_DIR, home) == Path("/home/u/.cache/layerkit")
    xdg = {**home, "XDG_CACHE_HOME": "/x"}
    assert settings.resolve(settings.CACHE_DIR, xdg) == Path("/x/layerkit")
    assert settings.resolve(settings.REGISTRY, {**home, "XDG_DATA_HOME": "/d"}) == Path(
        "/d/layerkit/registry.sqlite"
    )


@pytest.mark.parametrize(
    ("setting", "text", "says"),
    [
        (settings.GUARD_STALE_SECONDS, "soon", "seconds above 0"),
        (settings.GUARD_STALE_SECONDS, "-5", "seconds above 0"),
        (settings.INDEX_STRATEGY, "best", "first-index, unsafe-best-match"),
        (settings.REQUIRE_BYTECODE, "maybe", "1/true/yes"),
    ],
)
def test_a_variable_that_does_not_parse_is_named_with_what_it_accepts(
    setting: settings.Setting[object], text: str, says: str
) -> None:
    with pytest.raises(UserError) as refused:
        settings.resolve(setting, {setting.variable: text})
    assert f"{setting.variable}={text!r}" in str(refused.value) and says in str(refused.value)


def test_the_readme_documents_every_setting_with_its_flag_and_recipe_key() -> None:
    rows = {
        line.split("|")[1].strip(" `"): line
        for line in (REPO / "README.md").read_text().splitlines()
        if line.startswith("| `LAYERKIT_")
    }
    for s in settings.SETTINGS:
        assert s.variable in rows, s.variable
        if s.flag:
            assert f"`{s.flag}`" in rows[s.variable], s.variable
        if s.recipe_key:
            section, key = s.recipe_key.split(".")
            assert f"`[{section}] {key}`" in rows[s.variable], s.variable
